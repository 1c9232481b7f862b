"""Options shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar="SMARTSHARE_CATALOG",
        help="Catalogue folder (holding manifests/ and templates/). Default: the bundled one.",
        show_default=False,
    ),
]


class ListFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class ValidateFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"
