"""``smartshare show APP``: everything a region needs to decide on an app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smartshare.cli.options import CatalogOption, ReportFormat

if TYPE_CHECKING:
    from smartshare.catalog.browse import AppDetails
    from smartshare.console import Console


def _render_text(console: Console, details: AppDetails) -> None:
    import json

    app = details.app
    console.line(f"{app.title} ({app.name}) {app.version}, {app.maturity.value}", markup=False)
    for language, text in app.summary.items():
        console.line(f"  [{language}] {text}")
    if app.description:
        for language, text in app.description.items():
            console.line(f"  [{language}] {text}")
    console.line()
    console.line(f"Owner:      {app.owner.name} ({app.owner.region_code})")
    console.line(f"Contact:    {app.owner.contact}")
    console.line(f"Licence:    {app.license}")
    console.line(f"Category:   {app.category}")
    console.line(f"Tags:       {', '.join(app.tags) or '-'}")
    pin = f" @ {app.source.commit}" if app.source.commit else ""
    console.line(f"Source:     {app.source.repo} ({app.source.ref}{pin})")
    console.line(f"Requires:   {', '.join(app.requires) or '-'}")
    console.line(f"Required by: {', '.join(details.required_by) or '-'}")
    console.line(f"Manifest:   {details.manifest_file}")
    console.line()
    console.table(
        ["Image", "Context", "Dockerfile", "Target", "Build args"],
        [
            [
                i.name,
                i.context,
                i.dockerfile,
                i.target or "-",
                ", ".join(f"{k}={v}" for k, v in i.args.items()) or "-",
            ]
            for i in app.images
        ],
        title="Images",
    )
    console.table(
        ["Parameter", "Type", "Required", "Default", "Secret", "Description"],
        [
            [
                p.name,
                p.type.value + (f" ({' | '.join(map(str, p.choices))})" if p.choices else ""),
                "required" if p.required else "",
                "-" if p.default is None else json.dumps(p.default, ensure_ascii=False),
                "secret" if p.secret else "",
                p.description,
            ]
            for p in app.parameters
        ],
        title="Parameters (required ones must be given by the region; "
        "secrets as env:NAME or file:PATH)",
    )
    console.table(
        ["Template", "Destination", "Target"],
        [[t.src, t.dest, t.target.value] for t in app.templates],
        title="Templates",
    )


def show_command(
    name: Annotated[str, typer.Argument(help="App name, as 'smartshare list' shows it.")],
    output: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ReportFormat.TEXT
    ),
    catalog: CatalogOption = None,
) -> None:
    """Show an app: owner, licence, source, images, parameters, templates, dependencies."""
    from smartshare.catalog.browse import describe_app
    from smartshare.console import get_console

    console = get_console()
    details = describe_app(name=name, catalog_root=catalog)
    if output is ReportFormat.JSON:
        console.json(details.as_dict())
    else:
        _render_text(console, details)


def register(app: typer.Typer) -> None:
    app.command("show")(show_command)
