"""Options shared by several commands, and how every command's ``--help`` reads."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand


class Command(TyperCommand):
    """A command whose ``--help`` lists arguments by name, without type labels.

    Options show what they take (``--region FILE``), flags nothing; typer
    would label each argument with its Python type (``<list[str]>``).
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:  # click's types are private
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = str(param.metavar or (param.name or "").upper())
                piece = name if param.required else f"[{name}]"
                pieces.append(piece + ("..." if param.nargs != 1 else ""))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def _argument_name(param: Any) -> str:
    name = str(param.metavar or (param.name or "").upper())
    return name + ("..." if param.nargs != 1 else "")


def examples(*lines: str) -> str:
    """A command's epilog: ``Examples:`` and the command lines, kept as written."""
    # "\b" keeps click from joining the lines into one paragraph.
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def at_least_one(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise typer.BadParameter("must be 1 or more")
    return value


CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        metavar="DIR",
        envvar="SMARTSHARE_CATALOG",
        help="Catalogue folder (holding manifests/ and templates/). Default: the bundled one.",
        show_default=False,
    ),
]

# plan and adopt
AppsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="APP", help="Apps to adopt (what they require comes too)."),
]
AppVersionsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="APP[@VERSION]",
        help="Apps to adopt (what they require comes too); APP@VERSION takes an older "
        "version the catalogue keeps (default: its current one).",
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every app in the catalogue.")]
RegionOption = Annotated[
    Path,
    typer.Option(
        "--region", "-r", metavar="FILE", help="Region profile (YAML) of the adopting region."
    ),
]
WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help="Folder for sources, rendered files and the lock file.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="APP.PARAM=VALUE",
        help="A value overriding the profile's (repeatable).",
        show_default=False,
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
        metavar="DIR",
        envvar="SMARTSHARE_CACHE_DIR",
        help="Git mirror cache (default: ~/.cache/smartshare).",
        show_default=False,
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        callback=at_least_one,
        help="Apps adopted at once (default: the number of CPUs).",
    ),
]
DetailOption = Annotated[
    bool, typer.Option("--detail", "-d", help="Show every detail of each app.")
]
DEFAULT_WORKSPACE = Path("smartshare-workspace")


class ListFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class RecordFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    PUBLICCODE = "publiccode"


class ValidateFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


def format_option(kind: type[StrEnum], default: StrEnum) -> Any:
    """``--format``/``-f`` with the formats of ``kind``, as ``table|json``."""
    return typer.Option(
        "--format",
        "-f",
        metavar="|".join(kind),
        help=f"Output format (default: {default}).",
        show_default=False,
    )


ListFormatOption = Annotated[ListFormat, format_option(ListFormat, ListFormat.TABLE)]
AdoptedAppArgument = Annotated[str, typer.Argument(metavar="APP", help="An adopted app.")]
