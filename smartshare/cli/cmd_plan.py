"""``smartshare plan``: what ``adopt`` would do, in order, without doing it."""

from __future__ import annotations

from typing import Annotated

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


def plan_command(
    apps: AppsArgument = None,
    region: RegionOption = ...,  # type: ignore[assignment]
    all_apps: AllOption = False,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    overrides: SetOption = None,
    no_build: NoBuildOption = False,
    push: PushOption = False,
    force: ForceOption = False,
    cache_dir: CacheOption = None,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
    catalog: CatalogOption = None,
) -> None:
    """Show what 'adopt' would do, in order, without doing it."""
    from smartshare.adoption.plan import make_plan
    from smartshare.console import get_console

    console = get_console()
    plan = make_plan(
        apps=apps or [],
        all_apps=all_apps,
        region_file=region,
        workspace=workspace,
        catalog_root=catalog,
        overrides=overrides or [],
        build=not no_build,
        push=push,
        force=force,
        cache_dir=cache_dir,
    )
    if output is ListFormat.JSON:
        console.json(
            {
                "region": plan.region,
                "workspace": str(plan.workspace),
                "apps": [e.as_dict() for e in plan.entries],
            }
        )
        return
    console.table(
        ["#", "App", "Version", "Source", "Commit", "Files", "Images", "To do"],
        [
            [
                str(index),
                e.app,
                e.version,
                f"{e.source} ({e.ref})",
                e.commit[:12] + (" (pinned)" if e.pinned else ""),
                "\n".join(f"{dest} [{target}]" for dest, target in e.files) or "-",
                "\n".join(e.images),
                ", ".join(e.actions) + ("\n" + "; ".join(e.reasons) if e.reasons else "")
                if e.actions
                else "up to date",
            ]
            for index, e in enumerate(plan.entries, 1)
        ],
        title=f"Plan for region '{plan.region}' in {plan.workspace}",
    )


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
