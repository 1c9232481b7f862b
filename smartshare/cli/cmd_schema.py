"""``smartshare schema app|region``: print the JSON Schema of a file format."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import Command, examples


def schema_command(
    # A string, checked by json_schema: its UsageError lists the kinds.
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help="app (manifests) or region (profiles).")
    ],
) -> None:
    """Print the JSON Schema of app manifests or region profiles."""
    from smartshare.catalog.schema import json_schema
    from smartshare.console import get_console

    get_console().json(json_schema(kind=kind))


def register(app: typer.Typer) -> None:
    app.command(
        "schema",
        cls=Command,
        epilog=examples(
            "smartshare schema app > schema/app.json",
            "smartshare schema region > schema/region.json",
        ),
    )(schema_command)
