"""``smartshare down``: stop and remove the deployed stack (data volumes only when asked)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from smartshare.cli.options import DEFAULT_WORKSPACE, WorkspaceOption


def down_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    volumes: Annotated[
        bool,
        typer.Option("--volumes", help="Also delete the data volumes (asks first, or --yes)."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before deleting data volumes.")
    ] = False,
) -> None:
    """Stop and remove the region's deployed stack; data volumes are kept unless --volumes."""
    from smartshare.console import get_console
    from smartshare.deploying.inspect import down
    from smartshare.errors import UsageError

    console = get_console()
    if volumes and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "--volumes deletes the stack's data volumes, and there is no terminal to confirm",
                hint="pass --yes as well to delete them",
            )
        if not typer.confirm(
            f"Delete the data volumes of the stack deployed from {workspace}? Their data is lost.",
            err=True,
        ):
            raise UsageError("not confirmed: nothing was removed")
    result = down(workspace=workspace, volumes=volumes)
    if result.project is None:
        console.line(f"Nothing is deployed from {workspace}.")
        return
    kept = "" if volumes else "; data volumes kept"
    what = "service(s)" if result.target == "swarm" else "container(s)"
    console.line(f"Project '{result.project}' is down: {len(result.removed)} {what} removed{kept}.")


def register(app: typer.Typer) -> None:
    app.command("down")(down_command)
