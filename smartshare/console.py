"""The one console wrapper: every line smartshare shows goes through here.

Commands build results; this module decides how they look (tables and detail
lines for people, JSON for scripts, workflow annotations for CI) and where
they go (results to stdout, errors and progress to stderr, so ``--format
json`` output stays parseable).

Much of what is shown comes from another region (manifest titles, file
names, git and build output), so every string is escaped here for its sink,
whatever the caller passed: :func:`terminal_text` (and Rich markup, which is
never interpreted: text reaches Rich as :class:`rich.text.Text`),
:func:`github_data` / :func:`github_property` and :func:`json_text`.

Text output is laid out for the console's width (80 columns when it is not a
terminal): a table holds short cells only and is never wider than the
console; longer values go on detail lines under their row, folded at spaces,
or at '/' and ':' inside image references and URLs, never mid-word.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console as RichConsole
from rich.text import Text

if TYPE_CHECKING:
    from smartshare.catalog.diagnostics import Problem
    from smartshare.errors import SmartshareError


# -- escaping, one function per sink -------------------------------------------------------


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC
# starts CSI and OSC sequences, U+009B is a one-byte CSI), DEL; the Unicode
# line separators; bidirectional overrides, which reorder what is shown; and
# lone surrogates, which cannot even be encoded.
_UNSAFE = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    0x2028,
    0x2029,
    *range(0xD800, 0xE000),
]
_TERMINAL = {code: _visible(code) for code in _UNSAFE}


def _character_class(codes: list[int]) -> re.Pattern[str]:
    """A pattern matching any of ``codes`` (sorted), written as ranges."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


# Most text holds none of them: one search is cheaper than a translation.
_UNSAFE_PATTERN = _character_class(sorted(_UNSAFE))


def terminal_text(text: str, *, keep: str = "\n\t") -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``).

    ``keep`` names the controls left as they are: by default newline and
    tab; nothing, for a value that must stay on one line.
    """
    if _UNSAFE_PATTERN.search(text) is None:
        return text
    return text.translate(_terminal_table(keep))


@functools.cache
def _terminal_table(keep: str) -> dict[int, str]:
    return {**_TERMINAL, **{ord(c): c for c in keep}}


def one_line(text: str) -> str:
    """``text`` for a place that holds one line: newlines shown as ``\\x0a`` too."""
    return terminal_text(text, keep="")


def github_data(text: str) -> str:
    """The message of a workflow command (GitHub's toolkit ``escapeData``).

    Other controls are made visible first: the log viewer would act on them.
    """
    text = terminal_text(text, keep="\n\r")
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A property value of a workflow command (``escapeProperty``: also ':' and ',')."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem: Problem) -> str:
    """``problem`` as a workflow command: ``::error file=F,line=L,col=C::message``."""
    from smartshare.catalog.diagnostics import Severity

    kind = "error" if problem.severity is Severity.ERROR else "warning"
    message = f"{problem.field}: {problem.message}" if problem.field else problem.message
    properties = f"file={github_property(problem.file)},line={problem.line},col={problem.column}"
    return f"::{kind} {properties}::{github_data(message)}"


# json.dumps escapes C0 controls; with ensure_ascii=False it writes the rest as
# they are.  Outside strings JSON is ASCII, so replacing these in the output
# escapes them inside strings, where \\uXXXX means the same character.
_JSON = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}
_JSON_PATTERN = _character_class(sorted(_JSON))


def json_text(data: Any) -> str:
    """``data`` as indented JSON, readable (UTF-8) yet safe to print on a terminal."""
    return _json_safe(json.dumps(data, indent=2, ensure_ascii=False))


def _json_safe(text: str) -> str:
    return text.translate(_JSON) if _JSON_PATTERN.search(text) else text


def problems_json(valid: bool, problems: Sequence[Problem]) -> str:
    """``{"valid": ..., "problems": [...]}`` exactly as :func:`json_text` writes it.

    Built line by line: json's indenting encoder runs in Python, about 20
    microseconds a problem, and a national catalogue can have thousands.
    """
    if not problems:
        return json_text({"valid": valid, "problems": []})
    string = json.encoder.encode_basestring  # json.dumps(str, ensure_ascii=False)
    items = []
    for p in problems:
        items.append(
            f'    {{\n      "file": {string(p.file)},\n      "line": {int(p.line)},\n'
            f'      "column": {int(p.column)},\n      "severity": {string(p.severity.value)},\n'
            f'      "field": {string(p.field)},\n      "message": {string(p.message)}\n    }}'
        )
    head = '{\n  "valid": ' + ("true" if valid else "false") + ',\n  "problems": [\n'
    return _json_safe(head + ",\n".join(items) + "\n  ]\n}")


# -- folding long values -------------------------------------------------------------------

_FOLD_AFTER = "/:"  # where an image reference or a URL may be folded


def _pieces(word: str) -> list[str]:
    """``word`` cut after each '/' and ':' (the places it may be folded at)."""
    pieces, start = [], 0
    for index, char in enumerate(word):
        if char in _FOLD_AFTER:
            pieces.append(word[start : index + 1])
            start = index + 1
    if start < len(word):
        pieces.append(word[start:])
    return pieces


def _hard_cut(piece: str, width: int) -> tuple[str, str]:
    """The longest head of ``piece`` that fits ``width`` cells, and the rest."""
    end = len(piece)
    while end > 1 and cell_len(piece[:end]) > width:
        end -= 1
    return piece[:end], piece[end:]


def fold(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` cells, broken at spaces.

    A word longer than a line is folded after a '/' or ':'; only a part with
    no such place that is still longer than a line is cut where it must be.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        # A paragraph's own indentation (a quoted log line) is kept on each of its lines.
        lead = paragraph[: len(paragraph) - len(paragraph.lstrip(" "))]
        if lead and len(lead) < width // 2:
            lines += [lead + line for line in fold(paragraph.lstrip(" "), width - len(lead))]
            continue
        lines += _fold_paragraph(paragraph, max(width, 1))
    return lines


def _fold_paragraph(paragraph: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in paragraph.split():
        joined = f"{line} {word}" if line else word
        if cell_len(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
            line = ""
        if cell_len(word) <= width:
            line = word
            continue
        for piece in _pieces(word):
            if cell_len(line + piece) <= width:
                line += piece
                continue
            if line:
                lines.append(line)
            while cell_len(piece) > width:
                head, piece = _hard_cut(piece, width)
                lines.append(head)
            line = piece
    lines.append(line)
    return lines


def _min_width(text: str) -> int:
    """The narrowest a column can be without breaking a word of ``text`` mid-word."""
    return max(
        (cell_len(piece) for word in text.split() for piece in _pieces(word)),
        default=0,
    )


# -- tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A table row: short ``cells``, and ``details`` shown on lines under it.

    A detail is ``(label, value)``; the value may be long (it is folded to
    the width) and hold several lines.
    """

    cells: Sequence[str]
    details: Sequence[tuple[str, str]] = ()


_GAP = 2  # spaces between columns
_INDENT = 2  # of detail lines


def _column_widths(natural: list[int], minimum: list[int], available: int) -> list[int] | None:
    """Widths that fit ``available`` cells, or None when not even the minimums do."""
    if sum(natural) <= available:
        return natural
    if sum(minimum) > available:
        return None
    spare = available - sum(minimum)
    wanted = [n - m for n, m in zip(natural, minimum, strict=True)]
    total = sum(wanted)
    widths = [m + (w * spare) // total for m, w in zip(minimum, wanted, strict=True)]
    # What integer division left over goes to the columns that want most.
    for index in sorted(range(len(widths)), key=lambda i: natural[i] - widths[i], reverse=True):
        if sum(widths) >= available:
            break
        if widths[index] < natural[index]:
            widths[index] += 1
    return widths


def _detail_lines(details: Sequence[tuple[str, str]], width: int) -> Iterator[Text]:
    label_width = max((cell_len(label) for label, _ in details), default=0)
    for label, value in details:
        head = " " * _INDENT + one_line(label).ljust(label_width) + ("  " if label_width else "")
        lines = fold(terminal_text(value, keep="\n"), width - cell_len(head))
        yield Text.assemble((head, "dim"), lines[0])
        for line in lines[1:]:
            yield Text(" " * cell_len(head) + line)


def table_lines(
    columns: Sequence[str], rows: Iterable[Sequence[str] | Row], *, width: int
) -> list[Text]:
    """The lines of a table ``width`` cells wide: a header, then each row and its details."""
    return _table_lines(
        columns, [row if isinstance(row, Row) else Row(cells=row) for row in rows], width=width
    )


def _table_lines(columns: Sequence[str], rows: list[Row], *, width: int) -> list[Text]:
    # A column empty in every row says nothing; its width is better spent on the others.
    shown = [
        index
        for index in range(len(columns))
        if not rows or index == 0 or any(row.cells[index] for row in rows)
    ]
    header = [one_line(columns[i]) for i in shown]
    cells = [[one_line(row.cells[i]) for i in shown] for row in rows]
    natural = [max(cell_len(c) for c in column) for column in zip(header, *cells, strict=True)]
    minimum = [max(_min_width(c) for c in column) for column in zip(header, *cells, strict=True)]
    # The last column's padding is never printed.
    widths = _column_widths(natural, minimum, width - _GAP * (len(shown) - 1))
    if widths is None and len(shown) == 1:
        widths = [width]  # one word wider than the console: it cannot be helped
    if widths is None:
        # Too many columns for the width: the first one names the row, the
        # others become detail lines under it.
        return _table_lines(
            columns[:1],
            [
                Row(
                    cells=row.cells[:1],
                    details=[
                        *((columns[i].lower(), row.cells[i]) for i in shown[1:] if row.cells[i]),
                        *row.details,
                    ],
                )
                for row in rows
            ],
            width=width,
        )
    lines = [_joined([[h] for h in header], widths, style="bold")[0]]
    for row, row_cells in zip(rows, cells, strict=True):
        lines += _joined([fold(c, w) for c, w in zip(row_cells, widths, strict=True)], widths)
        lines += _detail_lines(row.details, width)
    return lines


def _joined(folded: list[list[str]], widths: list[int], *, style: str = "") -> list[Text]:
    """Folded cells side by side, line by line."""
    height = max(len(f) for f in folded)
    lines = []
    for number in range(height):
        parts = [(f[number] if number < len(f) else "") for f in folded]
        padded = [p + " " * (w - cell_len(p)) for p, w in zip(parts[:-1], widths, strict=False)]
        lines.append(Text((" " * _GAP).join([*padded, parts[-1]]).rstrip(), style=style))
    return lines


# -- the console ---------------------------------------------------------------------------


class Console:
    def __init__(self, *, width: int | None = None) -> None:
        # Never markup, emoji codes or highlighting: text is shown as it is.
        options: dict[str, Any] = {
            "highlight": False,
            "markup": False,
            "emoji": False,
            "width": width,
        }
        self.out = RichConsole(soft_wrap=False, **options)
        self.err = RichConsole(stderr=True, soft_wrap=True, **options)
        self.verbose = False

    @property
    def width(self) -> int:
        return self.out.width

    # -- results (stdout) --------------------------------------------------------------
    def line(self, text: str = "", *, prefix: str = "") -> None:
        """A paragraph after ``prefix``, folded to the width, later lines aligned with it."""
        indent = cell_len(prefix)
        lines = fold(terminal_text(text, keep="\n"), self.width - indent) if text else [""]
        self._print_lines(
            [Text(one_line(prefix) + lines[0]), *(Text(" " * indent + x) for x in lines[1:])]
        )

    def heading(self, text: str) -> None:
        self._print_lines([Text(line, style="bold") for line in fold(one_line(text), self.width)])

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """``Label:  value`` lines, values aligned and folded."""
        width = max((cell_len(label) for label, _ in pairs), default=0) + 2
        for label, value in pairs:
            head = one_line(label + ":").ljust(width)
            lines = fold(one_line(value), self.width - width)
            self._print_lines([Text(head + lines[0]), *(Text(" " * width + x) for x in lines[1:])])

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str] | Row],
        *,
        title: str | None = None,
    ) -> None:
        if title:
            self.heading(title)
        self._print_lines(table_lines(columns, rows, width=self.width))

    def problem_lines(self, problems: Iterable[Problem]) -> None:
        """``path:line:col: severity: field: message``, one line each (never folded).

        Written as they are once escaped: plain lines need nothing of Rich,
        which would cost more than the escaping for each of thousands.
        """
        text = "".join(one_line(problem.as_text()) + "\n" for problem in problems)
        if text:
            self.out.file.write(text)
            self.out.file.flush()

    def annotations(self, problems: Iterable[Problem]) -> None:
        """Problems as GitHub workflow commands."""
        self.plain("\n".join(github_annotation(p) for p in problems))

    def problems_json(self, valid: bool, problems: Sequence[Problem]) -> None:
        """A validation report as JSON (see :func:`problems_json`)."""
        self.plain(problems_json(valid, problems))

    def json(self, data: Any) -> None:
        self.plain(json_text(data))

    def plain(self, text: str) -> None:
        """Write machine-readable text exactly as given (already escaped for its format)."""
        if not text:
            return
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def _print_lines(self, lines: Sequence[Text]) -> None:
        # Laid out already: Rich must neither wrap nor crop.
        for line in lines:
            self.out.print(line, soft_wrap=True)

    # -- diagnostics (stderr) ----------------------------------------------------------
    def info(self, text: str) -> None:
        self.err.print(Text(terminal_text(text)))

    def warning(self, text: str) -> None:
        self.err.print(Text.assemble(("warning:", "yellow"), " ", _indented(text)))

    def problems(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.err.print(Text(one_line(problem.as_text())))

    def error(self, exc: SmartshareError) -> None:
        self.err.print(Text.assemble(("error:", "bold red"), " ", _indented(exc.message)))
        self.problems(getattr(exc, "problems", ()))
        if exc.hint:
            self.err.print(Text.assemble(("hint:", "cyan"), " ", _indented(exc.hint)))

    def log_line(self, source: str, text: str) -> None:
        """A line of a build or push log, above the live progress."""
        self.err.print(Text.assemble((f"{one_line(source)}:", "dim"), " ", one_line(text)))

    def progress(self) -> ProgressBoard:
        return ProgressBoard(self.err)


def _indented(text: str) -> str:
    """A message's later lines indented: nothing in it can pass for a line of its own."""
    return terminal_text(text, keep="\n\t").replace("\n", "\n  ")


class ProgressBoard:
    """Live progress on stderr: one line per key (an app) with its state.

    The lines are cleared when the board stops, also on Ctrl-C: the summary
    that follows says how each app ended.
    """

    def __init__(self, console: RichConsole) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TextColumn("{task.fields[state]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressBoard:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def show(self, key: str, state: str, *, finished: bool = False) -> None:
        with self._lock:  # apps report from their own threads
            task = self._tasks.get(key)
            if task is None:
                task = self._progress.add_task(one_line(key), total=1, state="")
                self._tasks[key] = task
        self._progress.update(task, state=one_line(state), completed=1 if finished else 0)


_console: Console | None = None


def get_console() -> Console:
    global _console
    if _console is None:
        _console = Console()
    return _console


def new_console() -> Console:
    """A console for a new command (the width is read again: ``COLUMNS`` may differ)."""
    global _console
    _console = Console()
    return _console
