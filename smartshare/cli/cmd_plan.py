"""``smartshare plan``: what ``adopt`` would do, in order, without doing it."""

from __future__ import annotations

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    AllOption,
    AppVersionsArgument,
    CacheOption,
    CatalogOption,
    Command,
    DetailOption,
    ForceOption,
    ListFormat,
    ListFormatOption,
    NoBuildOption,
    PushOption,
    RegionOption,
    SetOption,
    WorkspaceOption,
    examples,
)


def plan_command(
    apps: AppVersionsArgument = None,
    region: RegionOption = ...,  # type: ignore[assignment]  # typer: ... means required
    all_apps: AllOption = False,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    overrides: SetOption = None,
    no_build: NoBuildOption = False,
    push: PushOption = False,
    force: ForceOption = False,
    cache_dir: CacheOption = None,
    detail: DetailOption = False,
    output: ListFormatOption = ListFormat.TABLE,
    catalog: CatalogOption = None,
) -> None:
    """Show what 'adopt' would do, in order, without doing it."""
    from smartshare.adoption.plan import make_plan
    from smartshare.console import Row, get_console

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
                "external": [x.as_dict() for x in plan.external],
            }
        )
        return
    rows = []
    # Requirements first, as in the order of the apps: nothing of them is adopted.
    for x in plan.external:
        details = [("required by", ", ".join(x.required_by))]
        details += [("output", f"{key} = {value}") for key, value in x.outputs.items()]
        rows.append(
            Row(cells=["-", x.app, "", "", "external: the region runs it"], details=details)
        )
    for index, e in enumerate(plan.entries, 1):
        details = [("why", reason) for reason in e.reasons] if e.actions else []
        details += [("image", tag) for tag in e.images]
        details += [("patch", name) for name in e.patches]
        several = len({base.image for base in e.bases}) > 1
        details += [
            ("base", f"{base.image}: {base.describe()}" if several else base.describe())
            for base in e.bases
        ]
        if detail:
            details.append(("source", f"{e.source} ({e.ref})"))
            details.append(("commit", e.commit + (" (pinned)" if e.pinned else "")))
            details += [("file", f"{dest} ({target})") for dest, target in e.files]
        rows.append(
            Row(
                cells=[
                    str(index),
                    e.app,
                    e.version,
                    e.commit[:12],
                    ", ".join(e.actions) or "up to date",
                ],
                details=details,
            )
        )
    console.table(
        ["#", "App", "Version", "Commit", "To do"],
        rows,
        title=f"Plan for region '{plan.region}' in {plan.workspace}",
    )


def register(app: typer.Typer) -> None:
    app.command(
        "plan",
        cls=Command,
        epilog=examples(
            "smartshare plan laksa sikda -r manifests/regions/badung.yaml -w ws/badung",
            "smartshare plan --all -r manifests/regions/badung.yaml -w ws/badung --detail",
        ),
    )(plan_command)
