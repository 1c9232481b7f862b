"""``smartshare report``: one adoption record per adopted app, for the apps' owners."""

from __future__ import annotations

from typing import Annotated

import typer

from smartshare.cli.options import (
    DEFAULT_WORKSPACE,
    Command,
    RecordFormat,
    WorkspaceOption,
    examples,
    format_option,
)


def report_command(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    output: Annotated[
        RecordFormat, format_option(RecordFormat, RecordFormat.TEXT)
    ] = RecordFormat.TEXT,
) -> None:
    """Report what the region adopted: one record per app (json: 'smartshare schema report')."""
    from smartshare.cli.cmd_status import _when
    from smartshare.console import get_console
    from smartshare.state.report import adoption_report, publiccode_used_by

    console = get_console()
    report = adoption_report(workspace=workspace)
    if output is RecordFormat.JSON:
        console.json(report.as_dict())
        return
    if output is RecordFormat.PUBLICCODE:
        console.plain(publiccode_used_by(report))
        return
    region = report.region
    console.heading(f"{region.title} ({region.name}, Kemendagri code {region.code})")
    for a in report.apps:
        console.line()
        console.fields(
            [
                ("App", a.app),
                ("Version", a.version),
                ("Commit", a.commit),
                ("Source", a.source),
                *[
                    ("Image", f"{t} {i.digest or i.image_id or '-'}")
                    for i in a.images
                    for t in i.tags
                ],
                ("Adopted", _when(a.adopted_at)),
                ("Upgraded", _when(a.last_upgraded_at) if a.last_upgraded_at else "never"),
                ("Patches", str(a.local_patches)),
                *(
                    [("Attention", "an upgrade waits for its conflicts")]
                    if a.needs_attention
                    else []
                ),
            ]
        )


def register(app: typer.Typer) -> None:
    app.command(
        "report",
        cls=Command,
        epilog=examples(
            "smartshare report --workspace ws/badung",
            "smartshare report -w ws/badung --format json > badung-adoptions.json",
            "smartshare report -w ws/badung --format publiccode",
        ),
    )(report_command)
