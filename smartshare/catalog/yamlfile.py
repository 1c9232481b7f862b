"""Load YAML from untrusted files, keeping enough to point at the exact line.

PyYAML alone is not enough for input from another region: it silently keeps the
last of duplicate keys (and the last of several documents), expands alias bombs
into billions of nodes once the data is walked, recurses once per level of
nesting, constructs dates, sets and binary blobs nobody asked for, and forgets
where each value came from.  Here the document is composed once (libyaml when
available), checked for those hazards on the node graph without recursion,
constructed, and the node graph is kept so that a location is computed only
when there is a problem to report.  What a file may hold is JSON's data model:
mappings with text keys, lists, strings, numbers, booleans and null.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from smartshare.catalog.diagnostics import Problem, Severity, shown_value
from smartshare.catalog.rules import MAX_FILE_BYTES
from smartshare.errors import InvalidInputError
from smartshare.state.safefs import NotRegularFileError, read_regular_file

if TYPE_CHECKING:
    from smartshare.cache import ContentMemo

# A 50-line manifest has a few hundred nodes; 100k expanded nodes only comes
# from aliases multiplying each other.
MAX_EXPANDED_NODES = 100_000
# A region's per-app values are the deepest part of any file (about 5 levels).
MAX_NESTING = 50

# types-PyYAML leaves Parser.get_event and Resolver.resolve untyped: their calls
# below carry a type: ignore[no-untyped-call].
_Loader: type[yaml.SafeLoader]
try:
    # The stubs do not make CSafeLoader a SafeLoader; it is one but for its C parser.
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
        if field is None:
            # Keys are untrusted too: a long or URL-like one is shown as shown_value shows it.
            field = ".".join(
                str(p) if isinstance(p, int) or (len(p) <= 40 and "@" not in p) else shown_value(p)
                for p in loc
            )
        return Problem(
            file=self.display,
            line=line,
            column=column,
            severity=severity,
            field=field,
            message=message,
        )


def _file_problem(display: str, message: str, line: int = 1, column: int = 1) -> InvalidInputError:
    problem = Problem(display, line, column, Severity.ERROR, "", message)
    return InvalidInputError(f"{display}: {message}", problems=[problem])


_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_MERGE = _TAG + "merge"
# Scalars the fast path builds itself (with the loader's own constructors).
_SIMPLE_SCALARS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null"))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag_problem(node: yaml.Node, loader: yaml.SafeLoader) -> str | None:
    """Why a node's tag is outside JSON's data model, or None."""
    tag = node.tag
    if tag in _SIMPLE_SCALARS if isinstance(node, yaml.ScalarNode) else tag in (_MAP, _SEQ):
        return None
    if isinstance(node, yaml.ScalarNode) and tag == loader.resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, node.value, (True, False)
    ):
        # Not written as a tag: the plain value reads as one (2001-01-01, '=').
        return f"{_shorten(node.value)} is read as a YAML {tag.removeprefix(_TAG)}; quote it"
    shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
    return (
        f"YAML tag '{_shorten(shown, quoted=False)}' is not allowed: the file may hold "
        "only mappings, lists, strings, numbers, booleans and null"
    )


def _shorten(value: str, limit: int = 40, *, quoted: bool = True) -> str:
    shown = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(shown) if quoted else shown


def _check_nodes(root: yaml.Node, display: str, loader: yaml.SafeLoader) -> None:
    """Reject what JSON cannot hold and what expands without bound, on the node graph.

    Duplicate keys, keys that are not text, tags outside JSON's data model,
    scalars that cannot be constructed (a 5000-digit integer, 2001-13-45),
    recursive aliases, nesting deeper than MAX_NESTING and alias bombs
    (more than MAX_EXPANDED_NODES nodes once aliases are expanded).  The walk
    uses its own stack: nesting a hostile file deeply costs no recursion.
    """
    sizes: dict[int, int] = {}  # expanded node count, per finished node
    heights: dict[int, int] = {}  # levels of collections, per finished node
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]

    def fail(node: yaml.Node, message: str) -> InvalidInputError:
        line, column = _mark(node)
        return _file_problem(display, message, line, column)

    while stack:
        node, finished = stack.pop()
        ident = id(node)
        children: list[yaml.Node]
        if isinstance(node, yaml.MappingNode):
            # A merge key '<<' is YAML syntax, not data: only its value is walked.
            children = [
                child
                for key, value in node.value
                for child in ((value,) if key.tag == _MERGE else (key, value))
            ]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if finished:
            on_path.discard(ident)
            total = 1 + sum(sizes[id(child)] for child in children)
            height = 0
            if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
                height = 1 + max((heights[id(child)] for child in children), default=0)
            if total > MAX_EXPANDED_NODES:
                raise fail(
                    node,
                    f"document expands to more than {MAX_EXPANDED_NODES} nodes "
                    "(YAML alias bomb?); refusing to load it",
                )
            if height > MAX_NESTING:
                raise fail(node, f"values are nested more than {MAX_NESTING} levels deep")
            sizes[ident] = total
            heights[ident] = height
            continue
        if ident in sizes:
            continue
        if ident in on_path:
            raise fail(node, "recursive YAML alias is not allowed")
        problem = _tag_problem(node, loader)
        if problem:
            raise fail(node, problem)
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(node, loader, fail)
        elif isinstance(node, yaml.MappingNode):
            _check_keys(node, fail)
        on_path.add(ident)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))


def _check_scalar(
    node: yaml.ScalarNode,
    loader: yaml.SafeLoader,
    fail: Callable[[yaml.Node, str], InvalidInputError],
) -> None:
    if node.tag == _STR:
        if _SURROGATE.search(node.value):
            raise fail(node, "a string holds an invalid Unicode escape (a lone surrogate)")
        return
    try:
        loader.construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        name = node.tag.removeprefix(_TAG)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise fail(
            node,
            f"{_shorten(node.value)} is not a valid {name} ({_shorten(reason, 80, quoted=False)})",
        ) from None


def _check_keys(
    node: yaml.MappingNode, fail: Callable[[yaml.Node, str], InvalidInputError]
) -> None:
    seen: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            if not isinstance(value_node, yaml.MappingNode | yaml.SequenceNode) or (
                isinstance(value_node, yaml.SequenceNode)
                and not all(isinstance(item, yaml.MappingNode) for item in value_node.value)
            ):
                raise fail(value_node, "a merge key '<<' takes a mapping or a list of mappings")
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            shown = _shorten(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "it"
            raise fail(key_node, f"mapping keys must be text: quote {shown}")
        first = seen.get(key_node.value)
        if first is not None:
            raise fail(
                key_node,
                f"duplicate key {_shorten(key_node.value)} (first defined on line "
                f"{first.start_mark.line + 1}); YAML would silently keep the last one",
            )
        seen[key_node.value] = key_node


def _check_events(loader: yaml.SafeLoader, display: str) -> None:
    """One document, nested at most MAX_NESTING levels: checked on the event stream.

    Composing a node graph recurses once per level in the pure-Python loader,
    so depth is checked before anything is composed.
    """
    depth = 0
    documents = 0
    while True:
        event = loader.get_event()  # type: ignore[no-untyped-call]
        if event is None:
            return
        kind = type(event)
        if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            depth += 1
            if depth > MAX_NESTING:
                line, column = event.start_mark.line + 1, event.start_mark.column + 1
                raise _file_problem(
                    display, f"values are nested more than {MAX_NESTING} levels deep", line, column
                )
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            depth -= 1
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _file_problem(
                    display,
                    "a second YAML document starts here: the file must hold exactly one "
                    "(remove the '---' line and what follows, or split the file)",
                    event.start_mark.line + 1,
                    event.start_mark.column + 1,
                )


class _NeedsCarefulLoad(Exception):
    """The fast loader met something it leaves to the careful one."""


def _fast_load(text: str) -> Any:
    """Build the data straight from libyaml's events, for the common plain document.

    Composing a node graph and constructing from it costs three times as much
    in Python calls.  Anything unusual (anchors and aliases, explicit tags,
    merge keys, complex, duplicate or non-text keys, values that do not
    resolve to a plain JSON type, deep nesting, a second document, a top level
    that is no mapping, syntax errors) raises _NeedsCarefulLoad, and
    parse_yaml takes the careful path, which checks and locates everything.
    """
    loader = _Loader(text)
    resolvers = loader.yaml_implicit_resolvers
    # A marker object: while a mapping waits for its next key.
    no_key = object()
    stack: list[tuple[Any, Any]] = []
    result: Any = None
    events = 0
    documents = 0
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
                    if tag == _STR:
                        value: Any = raw
                    elif tag in _SIMPLE_SCALARS:
                        try:
                            value = loader.construct_object(yaml.ScalarNode(tag, raw), deep=True)
                        except (ValueError, OverflowError, yaml.YAMLError):
                            raise _NeedsCarefulLoad from None
                    else:
                        raise _NeedsCarefulLoad  # a date, a merge key, '=': the careful path says
                elif plain and not raw:
                    value = None  # an empty plain scalar is null
                else:
                    if event.style == '"' and _SURROGATE.search(raw):
                        raise _NeedsCarefulLoad
                    value = raw
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag not in (None, "!", "!!"):
                    raise _NeedsCarefulLoad
                value = {} if kind is yaml.MappingStartEvent else []
                if not stack and kind is not yaml.MappingStartEvent:
                    raise _NeedsCarefulLoad
                if len(stack) >= MAX_NESTING:
                    raise _NeedsCarefulLoad
                _add_value(stack, value, no_key)
                stack.append((value, no_key))
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                result = stack.pop()[0]
                continue
            elif kind is yaml.AliasEvent:
                raise _NeedsCarefulLoad
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _NeedsCarefulLoad
                continue
            else:  # stream start and end, document end
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
        if not isinstance(value, str) or value in container:
            raise _NeedsCarefulLoad  # a key that is not text, or a duplicate
        stack[-1] = (container, value)
    else:
        container[key] = value
        stack[-1] = (container, no_key)


def _syntax_error(shown: str, exc: yaml.YAMLError) -> InvalidInputError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(filter(None, [exc.context, exc.problem]))
        return _file_problem(shown, f"YAML syntax error: {reason}", line, column)
    return _file_problem(shown, f"YAML syntax error: {exc}")


def parse_yaml(text: str, *, path: Path, display: str | None = None) -> YamlDocument:
    """Parse ``text`` as one YAML document whose top level is a mapping."""
    shown = display if display is not None else str(path)
    try:
        return YamlDocument(path=path, display=shown, data=_fast_load(text), text=text)
    except _NeedsCarefulLoad:
        pass
    scanner = _Loader(text)
    try:
        _check_events(scanner, shown)
    except yaml.YAMLError as exc:
        raise _syntax_error(shown, exc) from None
    finally:
        scanner.dispose()
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _syntax_error(shown, exc) from None
        if root is None:
            raise _file_problem(shown, "the file is empty; expected a mapping")
        if not isinstance(root, yaml.MappingNode):
            line, column = _mark(root)
            raise _file_problem(
                shown, "the top level must be a mapping (key: value pairs)", line, column
            )
        _check_nodes(root, shown, loader)
        try:
            data = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise _file_problem(shown, f"YAML error: {exc.problem}", line, column) from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, display=shown, data=data, text=text)


def load_yaml(
    path: Path,
    *,
    display: str | None = None,
    memo: ContentMemo | None = None,
    raw: bytes | None = None,
) -> YamlDocument:
    """Read (unless ``raw`` holds its bytes) and parse a YAML file, refusing files over 1 MiB.

    With a ``memo``, the data of an app manifest is kept by the digest of the
    file's bytes, and taken from there when the same bytes come again.  A
    region profile's data is not kept: it may hold a secret written inline by
    mistake, which must not be copied anywhere.
    """
    shown = display if display is not None else str(path)
    if raw is None:
        try:
            raw = read_regular_file(path, MAX_FILE_BYTES)
        except NotRegularFileError:
            raise _file_problem(shown, "not a regular file") from None
        except OSError as exc:
            raise _file_problem(shown, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _file_problem(shown, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
    digest = hashlib.sha256(raw).hexdigest() if memo is not None else ""
    known = memo.get(digest) if memo is not None else None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_problem(shown, f"the file is not UTF-8 text ({exc.reason})") from None
    if isinstance(known, dict) and known.get("kind") == "App":
        return YamlDocument(path=path, display=shown, data=known, text=text)
    doc = parse_yaml(text, path=path, display=shown)
    if memo is not None and doc.data.get("kind") == "App":
        memo.put(digest, doc.data)
    return doc
