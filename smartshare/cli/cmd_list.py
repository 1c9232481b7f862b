"""``smartshare list``: the apps a catalogue offers."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import CatalogOption, ListFormat


def list_command(
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="Only apps of this category.")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", help="Match name, title, summary and tags (any language)."),
    ] = None,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.TABLE
    ),
    catalog: CatalogOption = None,
) -> None:
    """List the apps that can be shared."""
    from smartshare.catalog.browse import list_apps
    from smartshare.console import get_console

    console = get_console()
    listing = list_apps(catalog_root=catalog, category=category, search=search)
    if listing.problems:
        console.warning(
            f"{len(listing.problems)} problem(s) in the catalogue; "
            "run 'smartshare validate' for details"
        )
    if output is ListFormat.JSON:
        console.json(
            [
                {
                    "name": a.name,
                    "title": a.title,
                    "category": a.category,
                    "owner": a.owner.name,
                    "version": a.version,
                    "maturity": a.maturity.value,
                    "summary": a.summary,
                    "tags": a.tags,
                }
                for a in listing.apps
            ]
        )
        return
    console.table(
        ["Name", "Title", "Category", "Owner", "Version", "Maturity"],
        [
            [a.name, a.title, a.category, a.owner.name, a.version, a.maturity.value]
            for a in listing.apps
        ],
        title=f"{len(listing.apps)} app(s)",
    )


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
