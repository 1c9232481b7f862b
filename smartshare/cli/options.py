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

# plan and adopt
AppsArgument = Annotated[
    list[str] | None, typer.Argument(help="Apps to adopt (what they require comes too).")
]
AllOption = Annotated[bool, typer.Option("--all", help="Every app in the catalogue.")]
RegionOption = Annotated[
    Path,
    typer.Option("--region", "-r", help="Region profile (YAML) of the adopting region."),
]
WorkspaceOption = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Folder for sources, rendered files and the lock file."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="APP.PARAM=VALUE, overriding the profile (repeatable).", show_default=False
    ),
]
NoBuildOption = Annotated[
    bool, typer.Option("--no-build", help="Fetch and render only; no Docker engine needed.")
]
PushOption = Annotated[bool, typer.Option("--push", help="Push images to the region's registry.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Redo every step, even if up to date.")]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="SMARTSHARE_CACHE_DIR",
        help="Git mirror cache (default: ~/.cache/smartshare).",
        show_default=False,
    ),
]
DEFAULT_WORKSPACE = Path("smartshare-workspace")


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
