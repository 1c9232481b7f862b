"""``smartshare adopt``: adopt apps for a region, with live progress and a summary."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AllOption,
    AppVersionsArgument,
    CacheOption,
    CatalogOption,
    Command,
    ForceOption,
    JobsOption,
    ListFormat,
    ListFormatOption,
    NoBuildOption,
    PushOption,
    RegionOption,
    SetOption,
    WorkspaceOption,
    examples,
)

if TYPE_CHECKING:
    from smartshare.adoption.events import AdoptResult, AppResult, Event
    from smartshare.console import Console
    from smartshare.errors import AdoptionFailedError


class ProgressView:
    """Live progress: one line per app with its phase; build logs with -v."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.board = console.progress()

    def __call__(self, event: Event) -> None:
        from smartshare.adoption.events import Phase

        if event.log:
            if self.console.verbose:
                self.console.log_line(event.app, event.message)
            return
        finished = event.phase in (Phase.DONE, Phase.UP_TO_DATE, Phase.FAILED, Phase.SKIPPED)
        state = event.phase.value + (f" {event.message}" if event.message and not finished else "")
        self.board.show(event.app, state, finished=finished)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def live_progress(console: Console, *, shown: bool) -> Iterator[ProgressView | None]:
    """A run's progress board (when ``shown``), SIGTERM as Ctrl-C; gives the run's event sink."""
    view = ProgressView(console)
    with sigterm_as_interrupt(), view.board if shown else contextlib.nullcontext():
        yield view if shown else None


def failed_run(message: str, *, hint: str, on_input: bool) -> AdoptionFailedError:
    """Some apps of a run failed: exit code 1 when all of them failed on wrong input."""
    from smartshare.errors import AdoptionFailedError, ExitCode

    failure = AdoptionFailedError(message, hint=hint)
    if on_input:
        failure.exit_code = ExitCode.INVALID_INPUT
    return failure


def render_summary(console: Console, result: AdoptResult) -> None:
    from smartshare.adoption.events import Outcome
    from smartshare.console import Row

    rows = []
    for r in result.results:
        details = [("image", tag) for tag in r.images]
        if r.message and r.outcome is not Outcome.UP_TO_DATE:
            details.append(("note", r.message))
        if r.hint:
            details.append(("hint", r.hint))
        rows.append(Row(cells=[r.app, r.outcome.value, r.version, r.commit[:12]], details=details))
    console.table(
        ["App", "Result", "Version", "Commit"],
        rows,
        title=f"Region '{result.region}', workspace {result.workspace}",
    )
    for r in result.results:
        if r.traceback:
            console.info(f"{r.app}: unexpected error\n{r.traceback}")
    if result.results and all(r.outcome is Outcome.UP_TO_DATE for r in result.results):
        console.line(f"All {len(result.results)} app(s) up to date; nothing to do.")


def _recorded(results: list[AppResult]) -> list[str]:
    from smartshare.adoption.events import Outcome

    return [r.app for r in results if r.outcome in (Outcome.ADOPTED, Outcome.UP_TO_DATE)]


def adopt_command(
    apps: AppVersionsArgument = None,
    region: RegionOption = ...,  # type: ignore[assignment]  # typer: ... means required
    all_apps: AllOption = False,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    jobs: JobsOption = None,
    overrides: SetOption = None,
    no_build: NoBuildOption = False,
    push: PushOption = False,
    force: ForceOption = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop starting apps after the first failure.")
    ] = False,
    cache_dir: CacheOption = None,
    output: ListFormatOption = ListFormat.TABLE,
    catalog: CatalogOption = None,
    deploy_after: Annotated[
        bool,
        typer.Option("--deploy", help="Then deploy the adopted apps ('smartshare deploy')."),
    ] = False,
) -> None:
    """Adopt apps for a region: fetch, render, build, push (if asked), record."""
    from smartshare.adoption.runner import adopt
    from smartshare.console import get_console
    from smartshare.errors import InterruptedRunError

    console = get_console()
    if deploy_after and no_build:
        from smartshare.errors import UsageError

        raise UsageError("--deploy runs the images: it cannot go with --no-build")
    with live_progress(console, shown=output is ListFormat.TABLE) as on_event:
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
            on_event=on_event,
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
        render_summary(console, result)
    recorded = _recorded(result.results)
    if result.interrupted:
        raise InterruptedRunError(
            "interrupted; the apps that finished are recorded in the lock"
            if recorded
            else "interrupted before any app finished; nothing was recorded",
            hint="run the same command again to finish the job",
        )
    if result.failed:
        names = ", ".join(r.app for r in result.failed)
        if not recorded:
            done = "nothing was recorded"
        elif len(recorded) == 1:
            done = f"{recorded[0]} is recorded in the lock"
        else:
            done = f"the other {len(recorded)} apps are recorded in the lock"
        raise failed_run(
            f"{len(result.failed)} of {len(result.results)} app(s) not adopted: {names}",
            hint=f"{done}; fix the cause and run again",
            on_input=result.failed_on_input,
        )
    if deploy_after:
        from smartshare.cli.cmd_deploy import then_deploy

        deployed = then_deploy(
            console,
            apps=apps or [],
            region=region,
            workspace=workspace,
            catalog=catalog,
            output=output,
        )
        if summary is not None:
            console.json({**summary, "deploy": deployed.as_dict()})


def register(app: typer.Typer) -> None:
    app.command(
        "adopt",
        cls=Command,
        epilog=examples(
            "smartshare adopt laksa -r manifests/regions/badung.yaml -w ws/badung",
            "smartshare adopt laksa -r badung.yaml --set laksa.site_title='LAKSA Badung'",
            "smartshare adopt laksa@2.3.0 -r badung.yaml -w ws/badung",
            "smartshare adopt --all -r badung.yaml -w ws/badung --no-build",
        ),
    )(adopt_command)
