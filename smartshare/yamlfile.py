"""Load YAML from untrusted files, keeping enough to point at the exact line.

PyYAML alone is not enough for input from another region: it silently keeps the
last of duplicate keys, expands alias bombs into billions of nodes once the data
is walked, and forgets where each value came from.  Here the document is
composed once (libyaml when available), checked for those hazards on the node
graph, constructed, and the node graph is kept so that a location is computed
only when there is a problem to report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smartshare.diagnostics import Problem, Severity
from smartshare.errors import InvalidInputError

MAX_FILE_BYTES = 1024 * 1024
# A 50-line manifest has a few hundred nodes; 100k expanded nodes only comes
# from aliases multiplying each other.
MAX_EXPANDED_NODES = 100_000

_Loader: type[yaml.SafeLoader]
try:
    _Loader = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

Loc = Sequence[str | int]


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its data and the node graph it came from."""

    path: Path
    display: str
    data: Any
    root: yaml.Node

    def node_at(self, loc: Loc, *, key: bool = False) -> yaml.Node:
        """The deepest node along ``loc``; with ``key`` the mapping key node of the last part."""
        node = self.root
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        node = key_node if (key and last) else value_node
                        break
                else:
                    return node
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if 0 <= part < len(node.value):
                    node = node.value[part]
                else:
                    return node
            else:
                return node
        return node

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value (or key) at ``loc``."""
        mark = self.node_at(loc, key=key).start_mark
        return mark.line + 1, mark.column + 1

    def problem(
        self,
        loc: Loc,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        key: bool = False,
        field: str | None = None,
    ) -> Problem:
        line, column = self.position(loc, key=key)
        return Problem(
            file=self.display,
            line=line,
            column=column,
            severity=severity,
            field=field if field is not None else ".".join(str(p) for p in loc),
            message=message,
        )


def _file_problem(display: str, message: str, line: int = 1, column: int = 1) -> InvalidInputError:
    problem = Problem(display, line, column, Severity.ERROR, "", message)
    return InvalidInputError(f"{display}: {message}", problems=[problem])


def _check_nodes(root: yaml.Node, display: str) -> None:
    """Reject duplicate keys, recursive aliases and alias bombs, on the node graph."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in visiting:
            mark = node.start_mark
            raise _file_problem(
                display, "recursive YAML alias is not allowed", mark.line + 1, mark.column + 1
            )
        visiting.add(ident)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                    first = seen.get(key_node.value)
                    if first is not None:
                        mark = key_node.start_mark
                        raise _file_problem(
                            display,
                            f"duplicate key '{key_node.value}' (first defined on line "
                            f"{first.start_mark.line + 1}); YAML would silently keep the last one",
                            mark.line + 1,
                            mark.column + 1,
                        )
                    seen[key_node.value] = key_node
                total += size(key_node) + size(value_node)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        visiting.discard(ident)
        if total > MAX_EXPANDED_NODES:
            mark = node.start_mark
            raise _file_problem(
                display,
                f"document expands to more than {MAX_EXPANDED_NODES} nodes "
                "(YAML alias bomb?); refusing to load it",
                mark.line + 1,
                mark.column + 1,
            )
        sizes[ident] = total
        return total

    size(root)


def parse_yaml(text: str, *, path: Path, display: str | None = None) -> YamlDocument:
    """Parse ``text`` as one YAML document whose top level is a mapping."""
    shown = display if display is not None else str(path)
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            reason = " ".join(filter(None, [exc.context, exc.problem]))
            raise _file_problem(shown, f"YAML syntax error: {reason}", line, column) from None
        except yaml.YAMLError as exc:
            raise _file_problem(shown, f"YAML syntax error: {exc}") from None
        if root is None:
            raise _file_problem(shown, "the file is empty; expected a mapping")
        if not isinstance(root, yaml.MappingNode):
            mark = root.start_mark
            raise _file_problem(
                shown,
                "the top level must be a mapping (key: value pairs)",
                mark.line + 1,
                mark.column + 1,
            )
        _check_nodes(root, shown)
        try:
            data = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise _file_problem(shown, f"YAML error: {exc.problem}", line, column) from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, display=shown, data=data, root=root)


def load_yaml(path: Path, *, display: str | None = None) -> YamlDocument:
    """Read and parse a YAML file, refusing files over 1 MiB."""
    shown = display if display is not None else str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _file_problem(shown, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _file_problem(shown, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_problem(shown, f"the file is not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, path=path, display=shown)
