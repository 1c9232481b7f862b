"""``smartshare status``: what a workspace holds and what drifted since it was adopted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartshare.cli.options import DEFAULT_WORKSPACE, ListFormat, WorkspaceOption


def status_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog", help="Catalogue to compare with (default: the one adopted from)."
        ),
    ] = None,
) -> None:
    """Show what a workspace holds and what drifted since it was adopted."""
    from smartshare.console import get_console
    from smartshare.state.status import workspace_status

    console = get_console()
    status = workspace_status(workspace=workspace, catalog_root=catalog)
    if output is ListFormat.JSON:
        console.json(status.as_dict())
        return
    console.table(
        ["App", "Version", "Commit", "Image", "Digest", "Adopted", "Deployed", "Drift"],
        [
            [
                a.app,
                a.version,
                a.commit[:12],
                "\n".join(a.images) or ("-" if a.built else "not built (--no-build)"),
                "\n".join(d[:19] for d in a.digests) or "-",
                a.adopted_at,
                a.deployed_at or "no",
                "\n".join(a.drift) or "none",
            ]
            for a in status.apps
        ],
        title=f"Workspace {status.workspace} (region '{status.region}')",
    )
    for line in status.region_drift:
        console.warning(line)


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
