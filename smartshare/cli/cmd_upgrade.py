"""``smartshare upgrade``: newer versions of adopted apps, keeping patches and hand edits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AppsArgument,
    CacheOption,
    CatalogOption,
    Command,
    JobsOption,
    ListFormat,
    ListFormatOption,
    NoBuildOption,
    PushOption,
    RegionOption,
    WorkspaceOption,
    examples,
)

if TYPE_CHECKING:
    from smartshare.console import Console
    from smartshare.upgrading.runner import UpgradeResult


def render_upgrade(console: Console, result: UpgradeResult) -> None:
    from smartshare.console import Row

    rows = []
    for a in result.apps:
        details: list[tuple[str, str]] = []
        if a.source is not None:
            details.append(
                (
                    "source",
                    f"{len(a.source.changed)} changed, {len(a.source.added)} added, "
                    f"{len(a.source.removed)} removed",
                )
            )
        # Names and results only: a runtime file's content is never shown.
        details += [
            ("file", f"{f.target}:{f.dest} {f.result.value}" + (" (hand edit)" if f.edited else ""))
            for f in a.files
            if f.result.value != "unchanged"
        ]
        details += [("parameter", f"{name} (new: its default)") for name in a.params_added]
        details += [("parameter", f"{name} (removed)") for name in a.params_removed]
        details += [("patch", name) for name in a.patches]
        details += [
            ("conflict", f"patch {c.patch}: {', '.join(c.files)}") for c in a.patch_conflicts
        ]
        if a.message:
            details.append(("note", a.message))
        if a.hint:
            details.append(("hint", a.hint))
        version = (
            a.from_version
            if a.from_version == a.to_version
            else f"{a.from_version} -> {a.to_version}"
        )
        rows.append(Row(cells=[a.app, a.outcome, version, a.to_commit[:12]], details=details))
    title = f"Region '{result.region}', workspace {result.workspace}"
    console.table(
        ["App", "Result", "Version", "Commit"],
        rows,
        title=title + (" (dry run: nothing written)" if result.dry_run else ""),
    )


def upgrade_command(
    apps: AppsArgument = None,
    region: RegionOption = ...,  # type: ignore[assignment]  # typer: ... means required
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="VERSION", help="A version the catalogue holds (default: its newest)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change per app; write nothing.")
    ] = False,
    conflict: Annotated[
        str,
        typer.Option(
            "--conflict",
            metavar="fail|markers",
            help="On a conflict: stop the app (fail), or write git's conflict markers and mark "
            "the app as needing attention (markers).",
        ),
    ] = "fail",
    resolved: Annotated[
        bool,
        typer.Option("--resolved", help="The conflict markers are resolved: build and record."),
    ] = False,
    push: PushOption = False,
    no_build: NoBuildOption = False,
    deploy_after: Annotated[
        bool, typer.Option("--deploy", help="Then deploy the upgraded apps ('smartshare deploy').")
    ] = False,
    jobs: JobsOption = None,
    cache_dir: CacheOption = None,
    output: ListFormatOption = ListFormat.TABLE,
    catalog: CatalogOption = None,
) -> None:
    """Upgrade adopted apps to a newer version, keeping the region's patches and hand edits."""
    from smartshare.cli.cmd_adopt import failed_run, live_progress
    from smartshare.console import get_console
    from smartshare.errors import InterruptedRunError
    from smartshare.upgrading.runner import upgrade

    console = get_console()
    with live_progress(console, shown=output is ListFormat.TABLE and not dry_run) as on_event:
        result = upgrade(
            apps=apps or [],
            region_file=region,
            workspace=workspace,
            catalog_root=catalog,
            to=to,
            dry_run=dry_run,
            conflict=conflict,
            resolved=resolved,
            push=push,
            build=not no_build,
            jobs=jobs,
            cache_dir=cache_dir,
            on_event=on_event,
        )
    if output is ListFormat.JSON:
        console.json(result.as_dict())
    else:
        render_upgrade(console, result)
    if result.interrupted:
        raise InterruptedRunError(
            "interrupted; an app not finished stays on its old version",
            hint="run the same command again to finish the upgrade",
        )
    if result.failed:
        names = ", ".join(a.app for a in result.failed)
        raise failed_run(
            f"{len(result.failed)} of {len(result.apps)} app(s) not upgraded: {names}",
            hint="they stay on their old version; fix the cause and run again",
            on_input=result.failed_on_input,
        )
    if deploy_after and not dry_run:
        from smartshare.cli.cmd_deploy import then_deploy

        then_deploy(
            console,
            apps=[a.app for a in result.apps],
            region=region,
            workspace=workspace,
            catalog=catalog,
            output=output,
        )


def register(app: typer.Typer) -> None:
    app.command(
        "upgrade",
        cls=Command,
        epilog=examples(
            "smartshare upgrade laksa -r manifests/regions/badung.yaml -w ws/badung --dry-run",
            "smartshare upgrade laksa -r badung.yaml -w ws/badung --to 2.4.0 --push",
            "smartshare upgrade laksa -r badung.yaml -w ws/badung --conflict markers",
            "smartshare upgrade laksa -r badung.yaml -w ws/badung --resolved",
        ),
    )(upgrade_command)
