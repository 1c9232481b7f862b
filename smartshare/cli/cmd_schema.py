"""``smartshare schema app|region|report``: print the JSON Schema of a format."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import CatalogOption, Command, examples


def schema_command(
    # A string, checked by json_schema: its UsageError lists the kinds.
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="app (manifests), region (profiles) or report (smartshare report --format json).",
        ),
    ],
    catalog: CatalogOption = None,
) -> None:
    """Print the JSON Schema of app manifests, region profiles or adoption reports.

    A region profile's schema types each app's values (apps.<app>) by the
    parameters of the catalogue's apps: the bundled catalogue's, or --catalog's.
    """
    from smartshare.catalog.schema import json_schema
    from smartshare.console import get_console

    get_console().json(json_schema(kind=kind, catalog_root=catalog))


def register(app: typer.Typer) -> None:
    app.command(
        "schema",
        cls=Command,
        epilog=examples(
            "smartshare schema app > schema/app.json",
            "smartshare schema region > schema/region.json",
            "smartshare schema region --catalog ../other-catalogue > region.json",
            "smartshare schema report > schema/report.json",
        ),
    )(schema_command)
