"""Problems found in input files, located to the file, line and column."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

# A value shown in a message is cut to this many characters.
SHOWN_LENGTH = 60
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: ``file:line:col: severity: field: message``.

    ``line`` and ``column`` are 1-based; 0 means "the whole file".
    ``field`` is a dotted path into the document (``parameters.2.type``), or
    empty when the problem is not about one field.
    """

    file: str
    line: int
    column: int
    severity: Severity
    field: str
    message: str

    def as_text(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity.value}: {field}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)


@dataclass(frozen=True)
class ValidationReport:
    """What ``validate`` found.

    ``notes`` are about the run itself, not the files (the cache could not
    be written...): shown as warnings, never counted as problems.
    """

    problems: list[Problem]  # sorted by file, line, column
    files_checked: int  # manifests and region profiles (templates not counted)
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not has_errors(self.problems)


def redact_userinfo(text: str) -> str:
    """``text`` without the credentials a URL-like value may carry.

    ``user:password@`` before a host (with or without a scheme) becomes
    ``***@``, and a query string ``?...`` becomes ``?***``.
    """
    scheme = _SCHEME.match(text)
    head = scheme.group() if scheme else ""
    rest = text[len(head) :]
    end = len(rest)
    for stop in ("/", "?", "#"):
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at != -1:
        rest = "***" + rest[at:]
    if "?" in rest:
        rest = rest[: rest.index("?")] + "?***"
    return head + rest


def shown_value(value: object, limit: int = SHOWN_LENGTH) -> str:
    """An untrusted value as a message may show it: quoted, redacted, at most ``limit`` long.

    Control characters come out escaped (repr), credentials in URL-like
    values as ``***``, and a long value is cut with ``...``.
    """
    text = redact_userinfo(value) if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text) if isinstance(value, str) else text


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``; did you mean 'X'?`` for the choice closest to a misspelt ``name``, else empty."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
