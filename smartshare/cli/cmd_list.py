"""``smartshare list``: the apps a catalogue offers."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import CatalogOption, Command, ListFormat, ListFormatOption, examples


def list_command(
    category: Annotated[
        str | None,
        typer.Option("--category", "-c", metavar="NAME", help="Only apps of this category."),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            "-s",
            metavar="TEXT",
            help="Match name, title, summary and tags (any language).",
        ),
    ] = None,
    output: ListFormatOption = ListFormat.TABLE,
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
    # The owner is in 'show' and in the JSON: the table keeps to what tells apps apart.
    console.table(
        ["Name", "Title", "Category", "Version", "Maturity"],
        [[a.name, a.title, a.category, a.version, a.maturity.value] for a in listing.apps],
        title=f"{len(listing.apps)} app(s)",
    )


def register(app: typer.Typer) -> None:
    app.command(
        "list",
        cls=Command,
        epilog=examples(
            "smartshare list",
            "smartshare list --search kepegawaian",
            "smartshare list --category employment --format json",
        ),
    )(list_command)
