"""What one template file uses on its own, as the walk found it, and its form in the cache.

:class:`Parsed` is the result of :func:`smartshare.rendering.analysis.parse`
for one file (or one Jinja string); :mod:`.analysis` follows its references
to the files they name.  :meth:`Parsed.to_data` and :meth:`Parsed.from_data`
turn it into plain JSON data and back for :mod:`smartshare.cache`: the data's
``format`` says which fields it holds, so an entry written by an older
smartshare is analysed again rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes

# Written into every entry; raised whenever Parsed's fields change.
FORMAT = 3


@dataclass(frozen=True)
class Reference:
    """An include, import or extends: the names it tries, in order."""

    kind: str  # include, import, extends
    line: int
    names: tuple[str, ...]  # candidates; include ['a', 'b'] takes the first that exists
    dynamic: bool
    ignore_missing: bool


def reference_of(
    node: nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport,
) -> Reference:
    """The templates an include, import or extends names (dynamic: not all of them literal)."""
    from jinja2 import nodes as n

    kind = {n.Extends: "extends", n.Include: "include"}.get(type(node), "import")
    target = node.template
    names: list[str] = []
    dynamic = False
    if isinstance(target, n.Const) and isinstance(target.value, str):
        names = [target.value]
    elif isinstance(target, n.Const) and isinstance(target.value, tuple | list):
        names = [v for v in target.value if isinstance(v, str)]
    elif isinstance(target, n.Tuple | n.List):
        for item in target.items:
            if isinstance(item, n.Const) and isinstance(item.value, str):
                names.append(item.value)
            else:
                dynamic = True
    else:
        dynamic = True
    return Reference(
        kind=kind,
        line=node.lineno,
        names=tuple(names),
        dynamic=dynamic,
        ignore_missing=isinstance(node, n.Include) and node.ignore_missing,
    )


@dataclass(frozen=True)
class Parsed:
    """What one template file uses on its own (cached per file, and by content)."""

    params: tuple[tuple[str, int], ...] = ()
    whole: tuple[int, ...] = ()
    region_fields: tuple[tuple[str, int], ...] = ()
    app_fields: tuple[tuple[str, int], ...] = ()
    asset_fields: tuple[tuple[str, int], ...] = ()
    requires_fields: tuple[tuple[str, int], ...] = ()  # "app" or "app.output"
    undeclared: tuple[tuple[str, int], ...] = ()
    stored: frozenset[str] = frozenset()
    references: tuple[Reference, ...] = ()
    syntax_error: tuple[int, str] | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain JSON data, for the cache (:meth:`from_data` reads it back)."""
        return {
            "format": FORMAT,
            "params": [list(item) for item in self.params],
            "whole": list(self.whole),
            "region": [list(item) for item in self.region_fields],
            "app": [list(item) for item in self.app_fields],
            "assets": [list(item) for item in self.asset_fields],
            "requires": [list(item) for item in self.requires_fields],
            "undeclared": [list(item) for item in self.undeclared],
            "stored": sorted(self.stored),
            "references": [
                [r.kind, r.line, list(r.names), r.dynamic, r.ignore_missing]
                for r in self.references
            ],
            "syntax_error": list(self.syntax_error) if self.syntax_error else None,
        }

    @classmethod
    def from_data(cls, data: Any) -> Parsed:
        """The analysis :meth:`to_data` wrote; ValueError when ``data`` is anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not an analysis of this format")
        error = data["syntax_error"]
        return cls(
            params=_name_lines(data["params"]),
            whole=tuple(_number(line) for line in _items(data["whole"])),
            region_fields=_name_lines(data["region"]),
            app_fields=_name_lines(data["app"]),
            asset_fields=_name_lines(data["assets"]),
            requires_fields=_name_lines(data["requires"]),
            undeclared=_name_lines(data["undeclared"]),
            stored=frozenset(_text(name) for name in _items(data["stored"])),
            references=tuple(_reference(item) for item in _items(data["references"])),
            syntax_error=None if error is None else (_number(error[0]), _text(error[1])),
        )


def _items(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _number(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("expected a line number")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _name_lines(value: Any) -> tuple[tuple[str, int], ...]:
    return tuple((_text(name), _number(line)) for name, line in _items(value))


def _reference(value: Any) -> Reference:
    kind, line, names, dynamic, ignore_missing = _items(value)
    if kind not in ("include", "import", "extends"):
        raise ValueError("unknown reference")
    return Reference(
        kind=kind,
        line=_number(line),
        names=tuple(_text(name) for name in _items(names)),
        dynamic=_flag(dynamic),
        ignore_missing=_flag(ignore_missing),
    )
