"""What a template uses, found from the Jinja AST alone, without rendering it.

:func:`analyse` answers "which parameters does this template use?" following
includes, imports and extends: validation needs it for every app of a
catalogue, and a national catalogue holds thousands of templates, so each file
is parsed once and walked once (:class:`_Walker`).  The walk collects
everything the checks need: ``params.X``, ``region.X`` and ``app.X``, names
that nothing defines, names the template defines, includes and imports, and
the mistakes Jinja's compiler would refuse when the template is first
rendered (an unknown filter, a block defined twice...), so the compiler
itself, which costs ten times the parse, runs only for templates nested deep
enough for Python's own limits to matter.

Results are kept per file until it changes, and, given a memo
(:class:`TemplateAnalyser`), by the file's content: a validation run can take
them from the previous run's cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from keyword import iskeyword
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.errors import InvalidInputError
from smartshare.rendering.sandbox import (
    CONTEXT_NAMES,
    TemplateSource,
    make_environment,
    source_of,
)

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from smartshare.cache import ContentMemo


@dataclass(frozen=True, order=True)
class Use:
    """One use of a name, in the template (name inside templates/) at ``line``."""

    template: str
    line: int
    name: str


@dataclass(frozen=True, order=True)
class TemplateIssue:
    """Something wrong in a template file, found without rendering."""

    template: str
    line: int
    message: str


@dataclass(frozen=True)
class TemplateUsage:
    """What a template (with everything it includes, imports or extends) uses.

    ``params`` holds one :class:`Use` per ``params.X`` name per template;
    ``whole_params`` the places where ``params`` is used as a whole (so every
    parameter counts as used); ``undeclared`` names that are neither context
    names, Jinja globals nor local variables (rendering would fail on them).
    ``complete`` is False when a template could not be read or parsed, so the
    usage may be missing names.
    """

    template: str
    params: tuple[Use, ...] = ()
    whole_params: tuple[Use, ...] = ()
    region_fields: tuple[Use, ...] = ()
    app_fields: tuple[Use, ...] = ()
    undeclared: tuple[Use, ...] = ()
    issues: tuple[TemplateIssue, ...] = ()
    templates: tuple[str, ...] = ()
    # Every name looked up on the way, found or not: a file appearing under a
    # name that was missing (the first of an include list) changes the output.
    looked_up: tuple[str, ...] = ()
    complete: bool = True

    @property
    def param_names(self) -> frozenset[str]:
        return frozenset(use.name for use in self.params)

    @property
    def uses_all_params(self) -> bool:
        return bool(self.whole_params)


@dataclass(frozen=True)
class _Reference:
    kind: str  # include, import, extends
    line: int
    names: tuple[str, ...]  # candidates; include ['a', 'b'] takes the first that exists
    dynamic: bool
    ignore_missing: bool


@dataclass(frozen=True)
class _Parsed:
    """What one template file uses on its own (cached per file, and by content)."""

    params: tuple[tuple[str, int], ...] = ()
    whole: tuple[int, ...] = ()
    region_fields: tuple[tuple[str, int], ...] = ()
    app_fields: tuple[tuple[str, int], ...] = ()
    undeclared: tuple[tuple[str, int], ...] = ()
    stored: frozenset[str] = frozenset()
    references: tuple[_Reference, ...] = ()
    syntax_error: tuple[int, str] | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain JSON data, for the cache (:meth:`from_data` reads it back)."""
        return {
            "params": [list(item) for item in self.params],
            "whole": list(self.whole),
            "region": [list(item) for item in self.region_fields],
            "app": [list(item) for item in self.app_fields],
            "undeclared": [list(item) for item in self.undeclared],
            "stored": sorted(self.stored),
            "references": [
                [r.kind, r.line, list(r.names), r.dynamic, r.ignore_missing]
                for r in self.references
            ],
            "syntax_error": list(self.syntax_error) if self.syntax_error else None,
        }

    @classmethod
    def from_data(cls, data: Any) -> _Parsed:
        """The analysis :meth:`to_data` wrote; ValueError when ``data`` is anything else."""
        if not isinstance(data, dict):
            raise ValueError("not an analysis")
        error = data["syntax_error"]
        return cls(
            params=_name_lines(data["params"]),
            whole=tuple(_number(line) for line in _items(data["whole"])),
            region_fields=_name_lines(data["region"]),
            app_fields=_name_lines(data["app"]),
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


def _reference(value: Any) -> _Reference:
    kind, line, names, dynamic, ignore_missing = _items(value)
    if kind not in ("include", "import", "extends"):
        raise ValueError("unknown reference")
    return _Reference(
        kind=kind,
        line=_number(line),
        names=tuple(_text(name) for name in _items(names)),
        dynamic=_flag(dynamic),
        ignore_missing=_flag(ignore_missing),
    )


# (templates folder, name) -> (file signature, analysis, digest of the text)
_PARSED_CACHE: dict[tuple[Path, str], tuple[tuple[int, int, int, int], _Parsed, str]] = {}
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def content_digest(text: str) -> str:
    """The key of a template's text in a memo: what its analysis depends on."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class TemplateAnalyser:
    """Analyses the templates of one folder, each file once, by content when given a memo.

    The Jinja environment is made only when a template has to be parsed:
    with every analysis in the memo, Jinja is not even imported.
    """

    def __init__(
        self,
        templates_dir: Path,
        *,
        memo: ContentMemo | None = None,
        env: ImmutableSandboxedEnvironment | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.source = (
            source_of(env) if env is not None else TemplateSource(templates_dir.absolute())
        )
        self._env = env
        self._memo = memo
        # What each template analysed held: the digest of its text, None when
        # it does not exist; names that could not be read are left out.
        self.digests: dict[str, str | None] = {}
        self._read: set[str] | None = None

    @contextlib.contextmanager
    def recording(self) -> Iterator[set[str]]:
        """The names of the templates looked up in the block (read, missing or refused)."""
        names: set[str] = set()
        outer, self._read = self._read, names
        try:
            yield names
        finally:
            self._read = outer

    @property
    def env(self) -> ImmutableSandboxedEnvironment:
        if self._env is None:
            self._env = make_environment(self.templates_dir)
        return self._env

    def analyse(self, src: str) -> TemplateUsage:
        """What template ``src`` uses, following its includes, imports and extends.

        Nothing is rendered.  Usage found in an included template is reported
        at that template's own line.  Raises InvalidInputError when ``src``
        itself does not exist, cannot be read, or would leave the templates
        folder.
        """
        parsed = self.parsed(src)
        if parsed is None:
            raise InvalidInputError(
                f"template '{src}' does not exist in {self.source.root}",
                hint="'src' is relative to the catalogue's templates/ folder",
            )
        out = _Collector()
        self._follow(src, parsed, frozenset(), out)
        return TemplateUsage(
            template=src,
            params=tuple(out.params),
            whole_params=tuple(out.whole),
            region_fields=tuple(out.region_fields),
            app_fields=tuple(out.app_fields),
            undeclared=tuple(out.undeclared),
            issues=tuple(sorted(set(out.issues))),
            templates=tuple(out.visited),
            looked_up=tuple(dict.fromkeys([src, *out.looked_up])),
            complete=out.complete,
        )

    def parsed(self, name: str) -> _Parsed | None:
        """The analysis of one file, or None when it does not exist.

        Raises InvalidInputError for unsafe names and unreadable files.
        """
        if self._read is not None:
            self._read.add(name)
        source = self.source
        path = source.joined(name)
        signature = _signature(path)
        key = (source.real_root, name)
        cached = _PARSED_CACHE.get(key)
        if cached is not None and cached[0] == signature:
            # The very same file (device, inode) was confined when it was cached;
            # a link swapped in since then would show up as another inode.
            self.digests[name] = cached[2]
            return cached[1]
        source.confine(path, name)
        if signature is None or not path.is_file():
            self.digests[name] = None
            return None
        try:
            text = source.read(path, name)
        except FileNotFoundError:
            self.digests[name] = None
            return None
        digest = content_digest(text)
        parsed = self._parse_text(text, name, digest)
        _PARSED_CACHE[key] = (signature, parsed, digest)
        self.digests[name] = digest
        return parsed

    def _parse_text(self, text: str, name: str, digest: str) -> _Parsed:
        memo = self._memo
        if memo is None:
            return _parse(self.env, text, name)
        known = memo.get(digest)
        if known is not None:
            try:
                return _Parsed.from_data(known)
            except (ValueError, TypeError, KeyError, IndexError):
                pass  # a damaged entry: analysed again, and written again
        parsed = _parse(self.env, text, name)
        memo.put(digest, parsed.to_data())
        return parsed

    def _follow(
        self, name: str, parsed: _Parsed, outer_names: frozenset[str], out: _Collector
    ) -> None:
        out.visited.append(name)
        if parsed.syntax_error is not None:
            line, message = parsed.syntax_error
            out.issues.append(TemplateIssue(name, line, f"template syntax error: {message}"))
            out.complete = False
            return
        out.params.extend(Use(name, line, key) for key, line in parsed.params)
        out.whole.extend(Use(name, line, "params") for line in parsed.whole)
        out.region_fields.extend(Use(name, line, key) for key, line in parsed.region_fields)
        out.app_fields.extend(Use(name, line, key) for key, line in parsed.app_fields)
        # Top-level sets and imports reach the blocks of the same template (which
        # Jinja compiles as separate scopes), and an included template sees the
        # variables of the one including it.  Any assignment counts: a false
        # "undefined" costs more than re-checking Jinja's scoping.
        inner_names = outer_names | parsed.stored
        out.undeclared.extend(
            Use(name, line, key) for key, line in parsed.undeclared if key not in inner_names
        )
        for ref in parsed.references:
            if ref.dynamic:
                out.issues.append(
                    TemplateIssue(
                        name,
                        ref.line,
                        f"dynamic {ref.kind}: the template name must be a literal string "
                        "so that the template can be checked before it runs",
                    )
                )
                out.complete = False
            found = False
            for target in ref.names:
                out.looked_up.append(target)
                try:
                    child = self.parsed(target)
                except InvalidInputError as exc:
                    out.issues.append(TemplateIssue(name, ref.line, f"{ref.kind}: {exc.message}"))
                    out.complete = False
                    found = True  # reported; "does not exist" would be misleading
                    continue
                if child is None:
                    continue
                found = True
                if target not in out.visited:
                    self._follow(target, child, inner_names, out)
            if not found and ref.names and not ref.ignore_missing:
                shown = "', '".join(ref.names)
                verb = {"include": "included", "import": "imported", "extends": "extended"}
                out.issues.append(
                    TemplateIssue(
                        name, ref.line, f"{verb[ref.kind]} template '{shown}' does not exist"
                    )
                )
                out.complete = False


@dataclass
class _Collector:
    params: list[Use] = field(default_factory=list)
    whole: list[Use] = field(default_factory=list)
    region_fields: list[Use] = field(default_factory=list)
    app_fields: list[Use] = field(default_factory=list)
    undeclared: list[Use] = field(default_factory=list)
    issues: list[TemplateIssue] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    complete: bool = True


def analyse(env: ImmutableSandboxedEnvironment, src: str) -> TemplateUsage:
    """What template ``src`` of ``env``'s folder uses (see :meth:`TemplateAnalyser.analyse`)."""
    return TemplateAnalyser(source_of(env).root, env=env).analyse(src)


# -- parsing and the walk ------------------------------------------------------------------

# Up to this depth of nodes (the walk skips at most two leaf levels, e.g. the
# `params` of `params.get('x')`) the compiled Python stays well inside Python's
# own limits: 20 nested loops, 100 levels of indentation, 200 nested brackets,
# the recursion limit.  So the walk's checks say all that compiling would
# (tests/test_template_analysis.py compiles every construct nested this deep).
# Deeper templates are compiled as well, as rendering will.  Real templates
# are 6 to 9 deep.
COMPILE_DEPTH = 16


def _parse(env: ImmutableSandboxedEnvironment, text: str, name: str) -> _Parsed:
    from jinja2 import TemplateSyntaxError
    from jinja2 import nodes as n
    from jinja2.parser import Parser

    try:
        # Parser.parse() without set_environment(): that pass over every node
        # serves constant folding, which the analysis never does.
        tree = n.Template(Parser(env, text, name=name).subparse(), lineno=1)
        walker = _Walker(env, extends="extends" in text and tree.find(n.Extends) is not None)
        walker.walk(tree)
        if walker.max_depth > COMPILE_DEPTH:
            env.compile(text, name=name)
    except TemplateSyntaxError as exc:
        return _Parsed(syntax_error=(exc.lineno, exc.message or "invalid template"))
    except (RecursionError, SyntaxError):
        # Jinja parses and compiles by recursion: a hostile depth must not crash.
        return _Parsed(syntax_error=(1, "the template is nested too deeply"))
    failure = walker.first_failure()
    if failure is not None:
        return _Parsed(syntax_error=failure)
    return walker.result()


def _record(table: dict[str, int], key: str, line: int) -> None:
    if key not in table or line < table[key]:
        table[key] = line


class _Walker:
    """One pass over a parsed template, in the order Jinja's compiler visits it.

    Besides what the checks use (collected from every node), it finds what the
    compiler would refuse (``TemplateAssertionError``) with the compiler's
    message; when there are several, the one the compiler meets first.  So
    the walk follows the compiler's order and keeps what the compiler knows
    of each scope (its ``Frame``):

    - the *phase*: a block defined twice is refused before anything else,
      then the top level is compiled, then each block's body (in the order of
      the blocks in the file) as a function of its own;
    - *soft*: inside ``{% if %}`` and ``a if b else c`` an unknown filter or
      test fails only if it runs, so it is no error there (loops, macros,
      ``{% with %}``... inside are strict again);
    - the *top level* (and *root level*): ``{% extends %}`` is allowed at the
      top level only (``{% if %}`` included); once one is met at the root,
      output outside blocks is never compiled, and a second one ends the
      compilation of the statements after it;
    - *implicit* names: what Jinja defines in a scope without a ``set``:
      ``loop`` in a loop's body, ``caller``/``varargs``/``kwargs`` in a
      macro's or call block's, ``super`` in a block's, ``self`` everywhere.
    """

    def __init__(self, env: ImmutableSandboxedEnvironment, *, extends: bool) -> None:
        from jinja2 import nodes as n

        self.name_type: type[nodes.Name] = n.Name
        self.getattr_type: type[nodes.Getattr] = n.Getattr
        self.const_type: type[nodes.Const] = n.Const
        self.filters = env.filters
        self.tests = env.tests
        self.allowed = CONTEXT_NAMES | env.globals.keys()
        # what the checks use
        self.params: dict[str, int] = {}
        self.whole: list[int] = []
        self.region_fields: dict[str, int] = {}
        self.app_fields: dict[str, int] = {}
        self.loads: dict[str, int] = {}
        self.stored: set[str] = set()
        self.references: list[_Reference] = []
        # what the compiler would refuse: (phase, block number, order), line, message
        self.failures: list[tuple[tuple[int, int, int], int, str]] = []
        self.order = 0
        self.checking = True  # False where the compiler skips what it walks past
        self.exited = False  # a second {% extends %} ended the statement list
        self.blocks: set[str] = set()
        self.block_count = 0
        self.block = 0  # 0: the top level, else the number of the block being walked
        self.known_extends = False
        self.extends_seen = 0
        # Loops being walked, and whether the compiler checks them: a `loop`
        # assigned anywhere inside one fails at that loop.
        self.loops: list[tuple[tuple[int, int, int], nodes.For, bool]] = []
        self.loop_failures: dict[tuple[int, int, int], nodes.For] = {}
        # Inside a scope the compiler never enters (after a second extends):
        # its names are not looked up, so none is undefined.
        self.unentered = False
        # the scope (Jinja's Frame)
        self.soft = False
        self.toplevel = self.rootlevel = True
        self.output_check = extends
        self.implicit: frozenset[str] = _ROOT_IMPLICIT
        self.depth = 0
        self.max_depth = 0
        self.handlers = _handlers()

    # -- results ---------------------------------------------------------------------------

    def result(self) -> _Parsed:
        return _Parsed(
            params=tuple(sorted(self.params.items())),
            whole=tuple(sorted(set(self.whole))),
            region_fields=tuple(sorted(self.region_fields.items())),
            app_fields=tuple(sorted(self.app_fields.items())),
            undeclared=tuple(sorted(self.loads.items())),
            stored=frozenset(self.stored),
            references=tuple(self.references),
        )

    def first_failure(self) -> tuple[int, str] | None:
        failures = list(self.failures)
        for key, loop in self.loop_failures.items():
            # The compiler names the first `loop` assigned in the loop's subtree.
            line = next(
                name.lineno
                for name in loop.find_all(self.name_type)
                if name.ctx == "store" and name.name == "loop"
            )
            failures.append((key, line, "Can't assign to special loop variable in for-loop target"))
        if not failures:
            return None
        _, line, message = min(failures)
        return line, message

    def _key(self) -> tuple[int, int, int]:
        self.order += 1
        return (1 if self.block == 0 else 2, self.block, self.order)

    def _fail(self, line: int, message: str) -> None:
        if self.checking:
            self.failures.append((self._key(), line, message))

    # -- the walk --------------------------------------------------------------------------

    def walk(self, tree: nodes.Template) -> None:
        self.depth = self.max_depth = 1
        self._body(tree.body)

    def visit(self, node: nodes.Node) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            self.max_depth = self.depth
        handler = self.handlers.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            for child in node.iter_child_nodes():
                self.visit(child)
        self.depth -= 1

    def _body(self, children: list[Any]) -> None:
        """A list of statements, as the compiler's ``blockvisit``."""
        checking, exited = self.checking, self.exited
        self.exited = False
        for child in children:
            self.visit(child)
        if self.exited:  # the compiler's CompilerExit stops at the end of this list
            self.checking = checking
        self.exited = exited

    def _inner(
        self,
        children: list[Any],
        *,
        implicit: frozenset[str] | None = None,
        output_check: bool | None = None,
    ) -> None:
        """``children`` in an inner scope (``Frame.inner()``): strict, not the top level."""
        saved = (
            self.soft,
            self.toplevel,
            self.rootlevel,
            self.implicit,
            self.output_check,
            self.unentered,
        )
        self.soft = self.toplevel = self.rootlevel = False
        if implicit is not None:
            self.implicit = implicit
        if output_check is not None:
            self.output_check = output_check
        if not self.checking:
            self.unentered = True
        self._body(children)
        (
            self.soft,
            self.toplevel,
            self.rootlevel,
            self.implicit,
            self.output_check,
            self.unentered,
        ) = saved

    def _soft(self, children: list[Any]) -> None:
        """``children`` in a soft scope (``Frame.soft()``): unknown filters fail only when run."""
        saved = self.soft, self.rootlevel
        self.soft = True
        self.rootlevel = False
        self._body(children)
        self.soft, self.rootlevel = saved

    def _leaf(self, node: nodes.Node) -> None:
        pass

    def _output(self, node: nodes.Output) -> None:
        checking = self.checking
        if self.output_check and self.known_extends:
            self.checking = False  # a child template's output outside blocks: never compiled
        for child in node.nodes:
            self.visit(child)
        self.checking = checking

    # names

    def _load(self, name: str, line: int) -> None:
        if name == "params":
            self.whole.append(line)
        elif name not in self.allowed and name not in self.implicit and not self.unentered:
            _record(self.loads, name, line)

    def _name(self, node: nodes.Name) -> None:
        if node.ctx == "load":
            self._load(node.name, node.lineno)
            return
        self.stored.add(node.name)
        if node.ctx == "store" and node.name == "loop":
            for key, loop, checked in self.loops:
                if checked:
                    self.loop_failures[key] = loop

    def _nsref(self, node: nodes.NSRef) -> None:
        # `{% set ns.x = 1 %}` reads `ns`: it has to be defined.
        if node.name not in CONTEXT_NAMES:
            self._load(node.name, node.lineno)

    def _context_name(self, node: nodes.Node) -> str | None:
        if isinstance(node, self.name_type) and node.ctx == "load" and node.name in CONTEXT_NAMES:
            return node.name
        return None

    def _const_str(self, node: nodes.Node | None) -> str | None:
        if isinstance(node, self.const_type) and isinstance(node.value, str):
            return node.value
        return None

    def _use(self, owner: str, key: str | None, line: int) -> None:
        if owner == "params":
            if key is None:
                self.whole.append(line)
            else:
                _record(self.params, key, line)
        elif key is not None and owner == "region":
            _record(self.region_fields, key, line)
        elif key is not None and owner == "app":
            _record(self.app_fields, key, line)

    def _getattr(self, node: nodes.Getattr) -> None:
        owner = self._context_name(node.node)
        if owner is not None:
            self._use(owner, node.attr, node.lineno)
        else:
            self.visit(node.node)

    def _getitem(self, node: nodes.Getitem) -> None:
        owner = self._context_name(node.node)
        if owner is not None:
            self._use(owner, self._const_str(node.arg), node.lineno)
        else:
            self.visit(node.node)
        self.visit(node.arg)

    def _call(self, node: nodes.Call) -> None:
        callee = node.node
        if isinstance(callee, self.getattr_type):
            owner = self._context_name(callee.node)
            method = callee.attr
            if owner is not None and method in _DICT_METHODS:
                # params.get('x') reads one parameter; items()/keys()/values() read them all.
                if owner == "params":
                    key = self._const_str(node.args[0]) if node.args else None
                    self._use(owner, key if method == "get" else None, node.lineno)
                self._arguments(node)
                return
        self.visit(callee)
        self._arguments(node)

    def _arguments(self, node: nodes.Call | nodes.Filter | nodes.Test) -> None:
        for argument in node.args:
            self.visit(argument)
        # Keyword arguments named like a Python keyword are compiled after *args.
        late = any(iskeyword(str(keyword.key)) for keyword in node.kwargs)
        if not late:
            for keyword in node.kwargs:
                self.visit(keyword)
        if node.dyn_args is not None:
            self.visit(node.dyn_args)
        if late:
            for keyword in node.kwargs:
                self.visit(keyword)
        if node.dyn_kwargs is not None:
            self.visit(node.dyn_kwargs)

    def _compare(self, node: nodes.Compare) -> None:
        if len(node.ops) == 1:
            operand = node.ops[0]
            key = self._const_str(node.expr)
            if (
                operand.op in ("in", "notin")
                and key is not None
                and self._context_name(operand.expr) == "params"
            ):
                self._use("params", key, node.lineno)
                return
        self.visit(node.expr)
        for operand in node.ops:
            self.visit(operand)

    # filters and tests: the compiler looks the name up before the arguments

    def _filter(self, node: nodes.Filter) -> None:
        if not self.soft and node.name not in self.filters:
            self._fail(node.lineno, f"No filter named {node.name!r}.")
        if node.node is not None:
            self.visit(node.node)
        self._arguments(node)

    def _test(self, node: nodes.Test) -> None:
        if not self.soft and node.name not in self.tests:
            self._fail(node.lineno, f"No test named {node.name!r}.")
        self.visit(node.node)
        self._arguments(node)

    def _condexpr(self, node: nodes.CondExpr) -> None:
        saved = self.soft
        self.soft = True
        self.visit(node.expr1)
        self.visit(node.test)
        if node.expr2 is not None:
            self.visit(node.expr2)
        self.soft = saved

    # statements

    def _if(self, node: nodes.If) -> None:
        saved = self.soft, self.rootlevel
        self.soft = True
        self.rootlevel = False
        self.visit(node.test)
        self._body(node.body)
        for branch in node.elif_:
            self.visit(branch)
        self._body(node.else_)
        self.soft, self.rootlevel = saved

    def _for(self, node: nodes.For) -> None:
        if node.test is not None:
            self._inner([node.test])
        # The check for `loop` being assigned, anywhere inside: when the loop is compiled.
        self.loops.append((self._key(), node, self.checking))
        self._inner([node.target])
        if not node.recursive:
            self.visit(node.iter)
        self._inner(node.body, implicit=self.implicit | {"loop"})
        self._inner(node.else_)
        if node.recursive:
            self.visit(node.iter)
        self.loops.pop()

    def _macro(self, node: nodes.Macro) -> None:
        self.stored.add(node.name)
        self._macro_body(node)

    def _callblock(self, node: nodes.CallBlock) -> None:
        self._macro_body(node)
        self.visit(node.call)

    def _macro_body(self, node: nodes.Macro | nodes.CallBlock) -> None:
        explicit = None
        for index, argument in enumerate(node.args):
            if argument.name == "caller":
                explicit = index
        if explicit is not None and self.checking:
            from jinja2.compiler import find_undeclared

            if "caller" in find_undeclared(node.body, ("caller",)):
                try:
                    node.defaults[explicit - len(node.args)]
                except IndexError:
                    self._fail(
                        node.lineno,
                        "When defining macros or call blocks the special "
                        '"caller" argument must be omitted or be given a default.',
                    )
        # A macro's output is its return value: never skipped as a child template's.
        self._inner([*node.args, *node.defaults], output_check=False)
        self._inner(node.body, implicit=self.implicit | _MACRO_IMPLICIT, output_check=False)

    def _filterblock(self, node: nodes.FilterBlock) -> None:
        self._inner([*node.body, node.filter])

    def _with(self, node: nodes.With) -> None:
        for target, value in zip(node.targets, node.values, strict=False):
            self._inner([target])
            self.visit(value)
        self._inner(node.body)

    def _assignblock(self, node: nodes.AssignBlock) -> None:
        self._inner(node.body, output_check=False)
        self.visit(node.target)
        if node.filter is not None:
            self._inner([node.filter], output_check=False)

    def _scope(self, node: nodes.Scope) -> None:
        self._inner(node.body)

    def _block(self, node: nodes.Block) -> None:
        if node.name in self.blocks:
            # The compiler checks this first, over the whole template.
            message = f"block {node.name!r} defined twice"
            self.failures.append(((0, 0, self._key()[2]), node.lineno, message))
        self.blocks.add(node.name)
        self.block_count += 1
        # A block's body is compiled after the top level, as a function of its
        # own, whatever was skipped around it: nothing of the scopes around it
        # but `self` and `super`.
        saved = self.block, self.checking, self.exited, self.unentered
        self.block, self.checking, self.exited = self.block_count, True, False
        self.unentered = False
        self._inner(node.body, implicit=_BLOCK_IMPLICIT, output_check=False)
        self.block, self.checking, self.exited, self.unentered = saved

    def _extends(self, node: nodes.Extends) -> None:
        if not self.checking:
            self._reference(node)
            return
        if not self.toplevel:
            self._fail(node.lineno, "cannot use extend from a non top-level scope")
        elif self.extends_seen and self.known_extends:
            # "extended multiple times" at run time; the compiler stops this
            # statement list here (CompilerExit).
            self.exited = True
            self.checking = False
        else:
            self.extends_seen += 1
            if self.rootlevel:
                self.known_extends = True
        self._reference(node)

    def _reference(
        self, node: nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport
    ) -> None:
        from jinja2 import nodes as n

        self.visit(node.template)
        if isinstance(node, n.Import):
            self.stored.add(node.target)
        elif isinstance(node, n.FromImport):
            for imported in node.names:
                self.stored.add(imported[1] if isinstance(imported, tuple) else imported)
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
                value = self._const_str(item)
                if value is None:
                    dynamic = True
                else:
                    names.append(value)
        else:
            dynamic = True
        self.references.append(
            _Reference(
                kind=kind,
                line=node.lineno,
                names=tuple(names),
                dynamic=dynamic,
                ignore_missing=isinstance(node, n.Include) and node.ignore_missing,
            )
        )


@functools.cache
def _handlers() -> dict[type, Any]:
    """The walk's method for each kind of node (the others: their children are walked)."""
    from jinja2 import nodes as n

    w = _Walker
    return {
        n.Output: w._output,
        n.TemplateData: w._leaf,
        n.Const: w._leaf,
        n.Name: w._name,
        n.NSRef: w._nsref,
        n.Getattr: w._getattr,
        n.Getitem: w._getitem,
        n.Call: w._call,
        n.Compare: w._compare,
        n.Filter: w._filter,
        n.Test: w._test,
        n.CondExpr: w._condexpr,
        n.If: w._if,
        n.For: w._for,
        n.Macro: w._macro,
        n.CallBlock: w._callblock,
        n.FilterBlock: w._filterblock,
        n.With: w._with,
        n.AssignBlock: w._assignblock,
        n.Scope: w._scope,
        n.Block: w._block,
        n.Extends: w._extends,
        n.Include: w._reference,
        n.Import: w._reference,
        n.FromImport: w._reference,
    }


_ROOT_IMPLICIT = frozenset({"self"})
_BLOCK_IMPLICIT = frozenset({"self", "super"})
_MACRO_IMPLICIT = frozenset({"caller", "kwargs", "varargs"})
