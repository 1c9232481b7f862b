"""``smartshare show APP``: everything a region needs to decide on an app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import CatalogOption, Command, ReportFormat, examples, format_option

if TYPE_CHECKING:
    from smartshare.catalog.browse import AppDetails
    from smartshare.console import Console


def _render_text(console: Console, details: AppDetails) -> None:
    import json

    from smartshare.console import Row

    app = details.app
    console.heading(f"{app.title} ({app.name}) {app.version}, {app.maturity.value}")
    for texts in (app.summary, app.description or {}):
        for language, text in texts.items():
            console.line(text, prefix=f"  [{language}] ")
    console.line()
    pin = f" @ {app.source.commit}" if app.source.commit else ""
    console.fields(
        [
            ("Owner", f"{app.owner.name} ({app.owner.region_code})"),
            ("Contact", app.owner.contact),
            ("Licence", app.license),
            ("Category", app.category),
            ("Tags", ", ".join(app.tags) or "-"),
            ("Source", f"{app.source.repo} ({app.source.ref}{pin})"),
            ("Requires", ", ".join(app.requires) or "-"),
            ("Required by", ", ".join(details.required_by) or "-"),
            ("Manifest", details.manifest_file),
        ]
    )
    console.line()
    console.table(
        ["Image", "Context", "Dockerfile", "Target"],
        [
            Row(
                cells=[i.name, i.context, i.dockerfile, i.target or "-"],
                details=[("", f"build arg {k}={v}") for k, v in i.args.items()],
            )
            for i in app.images
        ],
        title="Images",
    )
    console.line()
    console.table(
        ["Parameter", "Type", "Required", "Secret"],
        [
            Row(
                cells=[
                    p.name,
                    p.type.value,
                    "required" if p.required else "",
                    "secret" if p.secret else "",
                ],
                details=[
                    *([("", p.description)] if p.description else []),
                    *([("", "choices: " + " | ".join(map(str, p.choices)))] if p.choices else []),
                    *(
                        [("", "default: " + json.dumps(p.default, ensure_ascii=False))]
                        if p.default is not None
                        else []
                    ),
                ],
            )
            for p in app.parameters
        ],
        title="Parameters (required ones must be given by the region; "
        "secrets as env:NAME or file:PATH)",
    )
    console.line()
    console.table(
        ["Template", "Destination", "Target"],
        [
            Row(
                cells=[t.src, t.dest, t.target.value],
                details=[("", f"checked against {t.output_schema}")] if t.output_schema else [],
            )
            for t in app.templates
        ],
        title="Templates",
    )
    if app.assets:
        console.line()
        console.table(
            ["Asset", "Types", "Max", "Destination", "Target", "Required"],
            [
                Row(
                    cells=[
                        a.name,
                        ", ".join(t.value for t in a.types),
                        f"{a.max_kb} KiB",
                        a.dest,
                        a.target.value,
                        "required" if a.required else "",
                    ],
                    details=[("", a.description)] if a.description else [],
                )
                for a in app.assets
            ],
            title="Assets (files the region gives: assets.<app>.<asset>, or branding.logo "
            "for a logo)",
        )


def show_command(
    name: Annotated[
        str, typer.Argument(metavar="APP", help="App name, as 'smartshare list' shows it.")
    ],
    output: Annotated[ReportFormat, format_option(ReportFormat, ReportFormat.TEXT)] = (
        ReportFormat.TEXT
    ),
    catalog: CatalogOption = None,
) -> None:
    """Show an app: owner, licence, source, images, parameters, templates, assets, dependencies."""
    from smartshare.catalog.browse import describe_app
    from smartshare.console import get_console

    console = get_console()
    details = describe_app(name=name, catalog_root=catalog)
    if output is ReportFormat.JSON:
        console.json(details.as_dict())
    else:
        _render_text(console, details)


def register(app: typer.Typer) -> None:
    app.command(
        "show",
        cls=Command,
        epilog=examples("smartshare show laksa", "smartshare show laksa --format json"),
    )(show_command)
