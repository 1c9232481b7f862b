"""``smartshare history APP``: an app's adoptions in a workspace, newest first."""

from __future__ import annotations

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AdoptedAppArgument,
    Command,
    ListFormat,
    ListFormatOption,
    WorkspaceOption,
    examples,
)


def history_command(
    app_name: AdoptedAppArgument,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    output: ListFormatOption = ListFormat.TABLE,
) -> None:
    """List an app's adoptions (the current one marked): what 'rollback' can return to."""
    from smartshare.cli.cmd_status import _when
    from smartshare.console import Row, get_console
    from smartshare.state.history import app_history

    console = get_console()
    result = app_history(workspace=workspace, app=app_name)
    if output is ListFormat.JSON:
        console.json(result.as_dict())
        return
    rows = []
    for item in result.items:
        a = item.adoption
        state = "current" if item.current else ""
        if a.attention:
            state = "needed attention"
        elif not item.baseline_kept:
            state = "baseline gone"
        details = [("image", f"{i.name} {i.digest or i.image_id or '-'}") for i in a.images]
        rows.append(
            Row(
                cells=[a.adoption_id, a.version, a.commit[:12], _when(a.adopted_at), state],
                details=details,
            )
        )
    console.table(
        ["Adoption", "Version", "Commit", "Adopted", "State"],
        rows,
        title=f"'{result.app}' in workspace {result.workspace} (newest first)",
    )


def register(app: typer.Typer) -> None:
    app.command(
        "history",
        cls=Command,
        epilog=examples(
            "smartshare history laksa --workspace ws/badung",
            "smartshare history laksa -w ws/badung --format json",
        ),
    )(history_command)
