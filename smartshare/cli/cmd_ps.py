"""``smartshare ps``: each container of the deployed stack, as it runs now."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import DEFAULT_WORKSPACE, ListFormat, WorkspaceOption


def ps_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
) -> None:
    """Show each deployed service: state, health, address, image against the deployed one."""
    from smartshare.console import get_console
    from smartshare.deploying.inspect import ps

    console = get_console()
    result = ps(workspace=workspace)
    if output is ListFormat.JSON:
        console.json(result.as_dict())
        return
    if result.project is None:
        console.line(f"Nothing is deployed from {workspace}.")
        return
    console.table(
        ["Service", "App", "Kind", "State", "Health", "Published", "Image", "Drift"],
        [
            [
                s.service,
                s.app,
                s.kind,
                f"exited ({s.exit_code})" if s.state == "exited" else s.state,
                s.health or "",
                ", ".join(s.published),
                (s.image_id or "")[7:19],
                s.drift or "none",
            ]
            for s in result.services
        ],
        title=f"Project '{result.project}' ({result.target}), deployed {result.deployed_at or '-'}",
    )


def register(app: typer.Typer) -> None:
    app.command("ps")(ps_command)
