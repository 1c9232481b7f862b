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
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from smartshare.catalog.diagnostics import Problem, Severity
from smartshare.catalog.rules import MAX_FILE_BYTES
from smartshare.errors import InvalidInputError

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
    """A parsed YAML file: its data, and its text to locate values in when needed."""

    path: Path
    display: str
    data: Any
    text: str

    @cached_property
    def root(self) -> yaml.Node:
        """The node graph, composed again only when a location is asked for."""
        loader = _Loader(self.text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        if root is None:  # parse_yaml only makes documents of non-empty mappings
            raise ValueError(f"{self.display} holds no YAML document")
        return root

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


class _NeedsCarefulLoad(Exception):
    """The fast loader met something it leaves to the careful one."""


_PLAIN_STR = "tag:yaml.org,2002:str"


def _fast_load(text: str) -> Any:
    """Build the data straight from libyaml's events, for the common plain document.

    Composing a node graph and constructing from it costs three times as much
    in Python calls.  Anything unusual (anchors and aliases, explicit tags,
    merge keys, complex or duplicate keys, a top level that is no mapping,
    syntax errors) raises _NeedsCarefulLoad, and parse_yaml takes the careful
    path, which checks and locates everything.
    """
    loader = _Loader(text)
    resolvers = loader.yaml_implicit_resolvers
    # A marker object: while a mapping waits for its next key.
    no_key = object()
    stack: list[tuple[Any, Any]] = []
    result: Any = None
    events = 0
    try:
        while True:
            try:
                event = loader.get_event()  # type: ignore[no-untyped-call]
            except yaml.YAMLError:
                raise _NeedsCarefulLoad from None
            if event is None:
                break
            events += 1
            if events > MAX_EXPANDED_NODES:
                raise _NeedsCarefulLoad
            kind = type(event)
            if kind is yaml.ScalarEvent:
                if event.anchor is not None or event.tag not in (None, "!"):
                    raise _NeedsCarefulLoad
                raw = event.value
                plain = not event.style  # libyaml says "", the Python parser None
                if plain and raw and raw[0] in resolvers:
                    tag = loader.resolve(yaml.ScalarNode, raw, event.implicit)  # type: ignore[no-untyped-call]
                    if tag == _PLAIN_STR:
                        value: Any = raw
                    else:
                        value = loader.construct_object(yaml.ScalarNode(tag, raw), deep=True)
                elif plain and not raw:
                    value = None  # an empty plain scalar is null
                else:
                    value = raw
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag not in (None, "!", "!!"):
                    raise _NeedsCarefulLoad
                value = {} if kind is yaml.MappingStartEvent else []
                if not stack and kind is not yaml.MappingStartEvent:
                    raise _NeedsCarefulLoad
                _add_value(stack, value, no_key)
                stack.append((value, no_key))
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                result = stack.pop()[0]
                continue
            elif kind is yaml.AliasEvent:
                raise _NeedsCarefulLoad
            else:  # stream and document boundaries
                continue
            if not stack:
                raise _NeedsCarefulLoad  # a scalar document: not a mapping
            _add_value(stack, value, no_key)
    finally:
        loader.dispose()
    if not isinstance(result, dict):
        raise _NeedsCarefulLoad
    return result


def _add_value(stack: list[tuple[Any, Any]], value: Any, no_key: object) -> None:
    if not stack:
        return
    container, key = stack[-1]
    if isinstance(container, list):
        container.append(value)
    elif key is no_key:
        if not isinstance(value, str | int | float | bool) or value in container or value == "<<":
            raise _NeedsCarefulLoad  # complex, duplicate or merge key
        stack[-1] = (container, value)
    else:
        container[key] = value
        stack[-1] = (container, no_key)


def parse_yaml(text: str, *, path: Path, display: str | None = None) -> YamlDocument:
    """Parse ``text`` as one YAML document whose top level is a mapping."""
    shown = display if display is not None else str(path)
    try:
        return YamlDocument(path=path, display=shown, data=_fast_load(text), text=text)
    except _NeedsCarefulLoad:
        pass
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
    return YamlDocument(path=path, display=shown, data=data, text=text)


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
