"""``smartshare validate``: check a catalogue, or given files, for CI and authors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartshare.cli.options import (
    CatalogOption,
    Command,
    ValidateFormat,
    at_least_one,
    examples,
    format_option,
)
from smartshare.errors import ExitCode


def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH", help="Files or folders to check. Default: the whole catalogue."
        ),
    ] = None,
    output: Annotated[ValidateFormat, format_option(ValidateFormat, ValidateFormat.TEXT)] = (
        ValidateFormat.TEXT
    ),
    catalog: CatalogOption = None,
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            metavar="REF",
            help="Only what changed since git REF of the catalogue's repository, "
            "and what depends on it.",
            show_default=False,
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Neither read nor write the cache (~/.cache/smartshare)."),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            callback=at_least_one,
            help="Processes for a cold run (default: the number of CPUs).",
        ),
    ] = None,
) -> None:
    """Validate app manifests, region profiles and their templates."""
    from smartshare.catalog.location import resolve_catalog_root
    from smartshare.console import get_console
    from smartshare.errors import UsageError
    from smartshare.validation import validate_catalogue

    console = get_console()
    missing = [str(p) for p in paths or [] if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    report = validate_catalogue(
        catalog_root=resolve_catalog_root(catalog),
        paths=list(paths or []),
        changed_since=changed_since,
        use_cache=not no_cache,
        jobs=jobs,
    )
    for note in report.notes:
        console.warning(note)
    if output is ValidateFormat.JSON:
        console.problems_json(report.valid, report.problems)
    elif output is ValidateFormat.GITHUB:
        console.annotations(report.problems)
    else:
        console.problem_lines(report.problems)
        errors = sum(1 for p in report.problems if p.severity.value == "error")
        warnings = len(report.problems) - errors
        verdict = "valid" if report.valid else "invalid"
        console.info(
            f"{report.files_checked} file(s) checked: {verdict}, "
            f"{errors} error(s), {warnings} warning(s)"
        )
    if not report.valid:
        raise typer.Exit(int(ExitCode.INVALID_INPUT))


def register(app: typer.Typer) -> None:
    app.command(
        "validate",
        cls=Command,
        epilog=examples(
            "smartshare validate",
            "smartshare validate manifests/apps/laksa.yaml --format github",
            "smartshare validate manifests/regions --format json",
            "smartshare validate --changed-since origin/main --format github",
        ),
    )(validate_command)
