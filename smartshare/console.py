"""The one console wrapper: every line smartshare shows goes through here.

Commands build results; this module decides how they look (rich tables for
people, JSON for scripts) and where they go (results to stdout, errors and
progress to stderr, so ``--format json`` output stays parseable).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from rich.progress import Progress

    from smartshare.catalog.diagnostics import Problem
    from smartshare.errors import SmartshareError


class Console:
    def __init__(self) -> None:
        self.out = RichConsole(highlight=False, soft_wrap=False)
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)
        self.verbose = False

    # -- results -----------------------------------------------------------
    def line(self, text: str = "", *, markup: bool = False) -> None:
        self.out.print(text if markup else escape(text), soft_wrap=True)

    def plain(self, text: str) -> None:
        """Write text exactly as given (machine-readable output)."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def json(self, data: Any) -> None:
        self.plain(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        title: str | None = None,
    ) -> None:
        table = Table(title=title, show_lines=False, header_style="bold")
        rows = [list(row) for row in rows]
        # A column empty in every row says nothing; on a narrow terminal its
        # width is better spent on the others (image names, hints).
        shown = [
            index
            for index in range(len(columns))
            if not rows or index == 0 or any(row[index] for row in rows)
        ]
        for index in shown:
            # The first column names the row: never break it mid-word.
            table.add_column(columns[index], overflow="fold", no_wrap=index == 0)
        for row in rows:
            table.add_row(*(escape(row[index]) for index in shown))
        self.out.print(table)

    # -- diagnostics -------------------------------------------------------
    def info(self, text: str) -> None:
        self.err.print(escape(text))

    def warning(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(text)}")

    def problems(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.err.print(escape(problem.as_text()), soft_wrap=True)

    def error(self, exc: SmartshareError) -> None:
        self.err.print(f"[bold red]error:[/bold red] {escape(exc.message)}", soft_wrap=True)
        self.problems(getattr(exc, "problems", ()))
        if exc.hint:
            self.err.print(f"[cyan]hint:[/cyan] {escape(exc.hint)}", soft_wrap=True)

    def progress(self) -> Progress:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[phase]}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=False,
        )


_console: Console | None = None


def get_console() -> Console:
    global _console
    if _console is None:
        _console = Console()
    return _console
