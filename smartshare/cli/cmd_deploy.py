"""``smartshare deploy``: run adopted apps for a region, with progress per service."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    Command,
    ListFormat,
    RegionOption,
    WorkspaceOption,
    examples,
)

DeployCatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar="SMARTSHARE_CATALOG",
        help="Catalogue folder. Default: the one the apps were adopted from.",
        show_default=False,
    ),
]

if TYPE_CHECKING:
    from collections.abc import Sequence

    from smartshare.console import Console
    from smartshare.deploying.events import DeployEvent, DeployResult


class TargetChoice(StrEnum):
    COMPOSE = "compose"
    SWARM = "swarm"


class _DeployView:
    """Live progress: one line per container with its state; the tool's output with -v."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.board = console.progress()

    def __call__(self, event: DeployEvent) -> None:
        from smartshare.deploying.events import FINISHED_PHASES

        if event.log:
            if self.console.verbose:
                self.console.log_line(event.service, event.message)
            return
        finished = event.phase in FINISHED_PHASES
        state = event.phase.value + (f" {event.message}" if event.message else "")
        self.board.show(event.service, state, finished=finished)


def run_deploy(
    console: Console,
    *,
    apps: Sequence[str],
    region: Path,
    workspace: Path,
    catalog: Path | None,
    target: str | None,
    dry_run: bool,
    timeout: float,
    output: ListFormat,
) -> DeployResult:
    """Deploy with progress and a table (``--format table``): ``deploy``, ``adopt --deploy``."""
    from smartshare.cli.cmd_adopt import sigterm_as_interrupt
    from smartshare.deploying.runner import deploy

    view = _DeployView(console)
    table = output is ListFormat.TABLE
    live = view.board if table else contextlib.nullcontext()
    with sigterm_as_interrupt(), live:
        result = deploy(
            apps=apps,
            region_file=region,
            workspace=workspace,
            catalog_root=catalog,
            target=target,
            dry_run=dry_run,
            timeout=timeout,
            on_event=view if table else None,
        )
    if table:
        _render(console, result)
    return result


def then_deploy(
    console: Console,
    *,
    apps: Sequence[str],
    region: Path,
    workspace: Path,
    catalog: Path | None,
    output: ListFormat,
) -> DeployResult:
    """``--deploy`` of ``adopt``, ``upgrade`` and ``rollback``: on the profile's target."""
    from smartshare.deploying.runner import DEFAULT_TIMEOUT_S

    return run_deploy(
        console,
        apps=apps,
        region=region,
        workspace=workspace,
        catalog=catalog,
        target=None,
        dry_run=False,
        timeout=DEFAULT_TIMEOUT_S,
        output=output,
    )


def _render(console: Console, result: DeployResult) -> None:
    for warning in result.warnings:
        console.warning(warning)
    title = (
        f"Dry run: project '{result.project}' ({result.target}), file {result.file}"
        if result.dry_run
        else f"Project '{result.project}' ({result.target}), region '{result.region}'"
    )
    from smartshare.console import Row
    from smartshare.deploying.labels import JOB

    # A service's stack name starts with its app's (sikda-web): no App column. The
    # Kind column says "job" only, so a stack without jobs goes without it.
    console.table(
        ["Service", "Kind", "Action", "State", "Published"],
        [
            Row(
                cells=[s.service, "job" if s.kind == JOB else "", s.action, s.state, s.published],
                details=[("image", s.image[:19] if s.image.startswith("sha256:") else s.image)],
            )
            for s in result.services
        ],
        title=title,
    )
    if result.removed:
        verb = "would remove" if result.dry_run else "removed"
        console.line(f"Containers no longer in the stack ({verb}): {', '.join(result.removed)}")
    if result.dry_run:
        console.line(f"Wrote {result.file}; no container was touched.")
    elif result.up_to_date:
        console.line(f"All {len(result.services)} service(s) up to date; nothing to do.")
    else:
        console.line(f"Deployed {', '.join(result.apps)}: every service is ready.")


def deploy_command(
    apps: Annotated[
        list[str] | None,
        typer.Argument(
            help="Apps to deploy (what they require comes too). Default: every adopted app."
        ),
    ] = None,
    region: RegionOption = ...,  # type: ignore[assignment]
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    target: Annotated[
        TargetChoice | None,
        typer.Option("--target", help="Where to run (default: the profile's deploy.target)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write and check the deploy file; touch no container."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds to wait for every service to be ready."),
    ] = 300.0,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
    catalog: DeployCatalogOption = None,
) -> None:
    """Run adopted apps for a region (Docker Compose or Swarm) and wait until they are ready."""
    from smartshare.console import get_console

    console = get_console()
    result = run_deploy(
        console,
        apps=apps or [],
        region=region,
        workspace=workspace,
        catalog=catalog,
        target=target.value if target else None,
        dry_run=dry_run,
        timeout=timeout,
        output=output,
    )
    if output is ListFormat.JSON:
        console.json(result.as_dict())


def register(app: typer.Typer) -> None:
    app.command(
        "deploy",
        cls=Command,
        epilog=examples(
            "smartshare deploy -r manifests/regions/badung.yaml -w ws/badung",
            "smartshare deploy laksa -r badung.yaml -w ws/badung --dry-run",
            "smartshare deploy -r badung.yaml -w ws/badung --target swarm",
        ),
    )(deploy_command)
