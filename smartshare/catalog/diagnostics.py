"""Problems found in input files, located to the file, line and column."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


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
