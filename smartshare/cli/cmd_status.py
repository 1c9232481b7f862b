"""``smartshare status``: what a workspace holds and what drifted since it was adopted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    Command,
    DetailOption,
    ListFormat,
    ListFormatOption,
    WorkspaceOption,
    examples,
)


def _when(timestamp: str) -> str:
    """An ISO 8601 time as ``2024-05-01 10:00 UTC``: short, and foldable at its spaces."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def status_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    detail: DetailOption = False,
    output: ListFormatOption = ListFormat.TABLE,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            metavar="DIR",
            help="Catalogue to compare with (default: the one adopted from).",
        ),
    ] = None,
) -> None:
    """Show what a workspace holds and what drifted since it was adopted."""
    from smartshare.console import Row, get_console
    from smartshare.state.status import workspace_status

    console = get_console()
    status = workspace_status(workspace=workspace, catalog_root=catalog)
    if output is ListFormat.JSON:
        console.json(status.as_dict())
        return
    rows = []
    for a in status.apps:
        details = [("image", tag) for tag in a.images]
        if not a.built and a.attention is None:
            details.append(("image", "not built (--no-build)"))
        details += [("drift", line) for line in a.drift]
        if detail:
            details.append(("commit", a.commit))
            details.append(("adopted", a.adopted_at))
            details += [("digest", digest) for digest in a.digests]
        rows.append(
            Row(
                cells=[
                    a.app,
                    a.version,
                    a.commit[:12],
                    _when(a.adopted_at),
                    _when(a.deployed_at) if a.deployed_at else "no",
                    "needs attention" if a.attention else ("drifted" if a.drift else "none"),
                ],
                details=details,
            )
        )
    console.table(
        ["App", "Version", "Commit", "Adopted", "Deployed", "Drift"],
        rows,
        title=f"Workspace {status.workspace} (region '{status.region}')",
    )
    for line in status.region_drift:
        console.warning(line)


def register(app: typer.Typer) -> None:
    app.command(
        "status",
        cls=Command,
        epilog=examples(
            "smartshare status --workspace ws/badung",
            "smartshare status -w ws/badung --detail",
            "smartshare status -w ws/badung --format json",
        ),
    )(status_command)
