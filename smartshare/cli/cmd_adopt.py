"""``smartshare adopt``: adopt apps for a region, with live progress and a summary."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AllOption,
    AppsArgument,
    CacheOption,
    CatalogOption,
    ForceOption,
    ListFormat,
    NoBuildOption,
    PushOption,
    RegionOption,
    SetOption,
    WorkspaceOption,
)

if TYPE_CHECKING:
    from smartshare.adoption.events import AdoptResult, Event
    from smartshare.console import Console


class _ProgressView:
    """Live progress: one line per app with its phase; build logs with -v."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = console.progress()
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        from smartshare.adoption.events import Phase

        if event.log:
            if self.console.verbose:
                self.progress.console.print(
                    f"[dim]{event.app}:[/dim] {event.message}", markup=True, highlight=False
                )
            return
        task = self.tasks.get(event.app)
        if task is None:
            task = self.progress.add_task(event.app, total=1, phase=event.phase.value)
            self.tasks[event.app] = task
        finished = event.phase in (Phase.DONE, Phase.UP_TO_DATE, Phase.FAILED, Phase.SKIPPED)
        phase = event.phase.value + (f" {event.message}" if event.message and not finished else "")
        self.progress.update(task, phase=phase, completed=1 if finished else 0)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _render_summary(console: Console, result: AdoptResult) -> None:
    from smartshare.adoption.events import Outcome

    console.table(
        ["App", "Result", "Version", "Commit", "Images", "Note"],
        [
            [
                r.app,
                r.outcome.value,
                r.version,
                r.commit[:12],
                "\n".join(r.images) or "-",
                (r.message + (f"\nhint: {r.hint}" if r.hint else ""))
                if r.outcome is not Outcome.UP_TO_DATE
                else "",
            ]
            for r in result.results
        ],
        title=f"Region '{result.region}', workspace {result.workspace}",
    )
    for r in result.results:
        if r.traceback:
            console.info(f"{r.app}: unexpected error\n{r.traceback}")
    if result.results and all(r.outcome is Outcome.UP_TO_DATE for r in result.results):
        console.line(f"All {len(result.results)} app(s) up to date; nothing to do.")


def adopt_command(
    apps: AppsArgument = None,
    region: RegionOption = ...,  # type: ignore[assignment]
    all_apps: AllOption = False,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Apps adopted at once (default: CPUs)."),
    ] = None,
    overrides: SetOption = None,
    no_build: NoBuildOption = False,
    push: PushOption = False,
    force: ForceOption = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop starting apps after the first failure.")
    ] = False,
    cache_dir: CacheOption = None,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
    catalog: CatalogOption = None,
    deploy_after: Annotated[
        bool,
        typer.Option("--deploy", help="Then deploy the adopted apps ('smartshare deploy')."),
    ] = False,
) -> None:
    """Adopt apps for a region: fetch, render, build, push (if asked), record."""
    from smartshare.adoption.runner import adopt
    from smartshare.console import get_console
    from smartshare.errors import AdoptionFailedError, InterruptedRunError

    console = get_console()
    if deploy_after and no_build:
        from smartshare.errors import UsageError

        raise UsageError("--deploy runs the images: it cannot go with --no-build")
    view = _ProgressView(console)
    live = view.progress if output is ListFormat.TABLE else contextlib.nullcontext()
    with _sigterm_as_interrupt(), live:
        result = adopt(
            apps=apps or [],
            all_apps=all_apps,
            region_file=region,
            workspace=workspace,
            catalog_root=catalog,
            jobs=jobs,
            overrides=overrides or [],
            build=not no_build,
            push=push,
            force=force,
            fail_fast=fail_fast,
            cache_dir=cache_dir,
            on_event=view if output is ListFormat.TABLE else None,
        )
    summary = None
    if output is ListFormat.JSON:
        summary = {
            "region": result.region,
            "workspace": str(result.workspace),
            "interrupted": result.interrupted,
            "apps": [
                {
                    "app": r.app,
                    "result": r.outcome.value,
                    "version": r.version,
                    "commit": r.commit,
                    "images": r.images,
                    "digests": r.digests,
                    "message": r.message,
                }
                for r in result.results
            ],
        }
        if not deploy_after or result.interrupted or result.failed:
            console.json(summary)
    else:
        _render_summary(console, result)
    if result.interrupted:
        raise InterruptedRunError(
            "interrupted; the apps that finished are recorded in the lock",
            hint="run the same command again to finish the job",
        )
    if result.failed:
        names = ", ".join(r.app for r in result.failed)
        raise AdoptionFailedError(
            f"{len(result.failed)} of {len(result.results)} app(s) not adopted: {names}",
            hint="the others are recorded in the lock; fix the cause and run again",
        )
    if deploy_after:
        from smartshare.cli.cmd_deploy import run_deploy

        deployed = run_deploy(
            console,
            apps=apps or [],
            region=region,
            workspace=workspace,
            catalog=catalog,
            target=None,
            dry_run=False,
            timeout=300.0,
            output=output,
        )
        if summary is not None:
            console.json({**summary, "deploy": deployed.as_dict()})


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt_command)
