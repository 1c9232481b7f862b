"""``smartshare schema app|region``: print the JSON Schema of a file format."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class SchemaKind(StrEnum):
    APP = "app"
    REGION = "region"


def schema_command(
    kind: Annotated[SchemaKind, typer.Argument(help="Which file format.")],
) -> None:
    """Print the JSON Schema of app manifests or region profiles."""
    from smartshare.catalog.schema import json_schema
    from smartshare.console import get_console

    get_console().json(json_schema(kind.value))


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
