"""``smartshare rollback APP``: return an app to an earlier adoption (files, images, lock)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AdoptedAppArgument,
    CatalogOption,
    Command,
    ListFormat,
    ListFormatOption,
    WorkspaceOption,
    examples,
)


def rollback_command(
    app_name: AdoptedAppArgument,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="ADOPTION-ID",
            help="The adoption to return to ('smartshare history'; default: the previous one).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace rendered files edited by hand since.")
    ] = False,
    deploy_after: Annotated[
        bool, typer.Option("--deploy", help="Then deploy the app ('smartshare deploy').")
    ] = False,
    region: Annotated[
        Path | None,
        typer.Option(
            "--region",
            "-r",
            metavar="FILE",
            help="Region profile for --deploy (default: the one the workspace was adopted with).",
        ),
    ] = None,
    output: ListFormatOption = ListFormat.TABLE,
    catalog: CatalogOption = None,
) -> None:
    """Return an app to an earlier adoption: its files, images and lock entry."""
    from smartshare.cli.cmd_adopt import sigterm_as_interrupt
    from smartshare.console import get_console
    from smartshare.upgrading.rollback import rollback

    console = get_console()
    with sigterm_as_interrupt():
        result = rollback(app=app_name, workspace=workspace, to=to, force=force)
    if output is ListFormat.JSON and not deploy_after:
        console.json(result.as_dict())
    elif output is ListFormat.TABLE:
        console.fields(
            [
                ("App", result.app),
                ("Version", f"{result.from_version} -> {result.to_version}"),
                ("Adoption", f"{result.from_adoption or '-'} -> {result.to_adoption}"),
                ("Commit", result.commit),
                *[
                    ("Image", f"{tag} ({i.image_id[:19]}, from the {i.source})")
                    for i in result.images
                    for tag in i.tags
                ],
                ("Files", f"{len(result.files)} restored"),
                *[("Overwritten", name) for name in result.overwritten],
            ]
        )
    if deploy_after:
        from smartshare.cli.cmd_deploy import then_deploy
        from smartshare.errors import UsageError
        from smartshare.state.lockfile import read_lock

        if region is None:
            recorded = read_lock(workspace).region
            if recorded is None:
                raise UsageError("--deploy: name the region profile with --region")
            region = Path(recorded.file)
        then_deploy(
            console,
            apps=[result.app],
            region=region,
            workspace=workspace,
            catalog=catalog,
            output=output,
        )


def register(app: typer.Typer) -> None:
    app.command(
        "rollback",
        cls=Command,
        epilog=examples(
            "smartshare rollback laksa --workspace ws/badung",
            "smartshare rollback laksa -w ws/badung --to 20250101T101500Z-1a2b3c --deploy",
            "smartshare rollback laksa -w ws/badung --force --format json",
        ),
    )(rollback_command)
