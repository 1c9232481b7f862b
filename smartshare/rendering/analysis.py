"""What a template uses, found from the Jinja AST alone, without rendering it.

:func:`analyse` answers "which parameters does this template use?" following
includes, imports and extends: validation needs it for every app, and a
catalogue of a thousand manifests shares a handful of templates, so each
template file is parsed once and the result is cached until the file changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.errors import InvalidInputError
from smartshare.rendering.sandbox import CONTEXT_NAMES, TemplateSource, source_of

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment


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
    asset_fields: tuple[Use, ...] = ()
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
    """What one template file uses on its own (cached per file)."""

    params: tuple[tuple[str, int], ...] = ()
    whole: tuple[int, ...] = ()
    region_fields: tuple[tuple[str, int], ...] = ()
    app_fields: tuple[tuple[str, int], ...] = ()
    asset_fields: tuple[tuple[str, int], ...] = ()
    undeclared: tuple[tuple[str, int], ...] = ()
    stored: frozenset[str] = frozenset()
    references: tuple[_Reference, ...] = ()
    syntax_error: tuple[int, str] | None = None


# (templates folder, name) -> (file signature, analysis)
_PARSED_CACHE: dict[tuple[Path, str], tuple[tuple[int, int, int, int], _Parsed]] = {}
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _parse_cached(
    env: ImmutableSandboxedEnvironment, source: TemplateSource, name: str
) -> _Parsed | None:
    """The analysis of one file, or None when it does not exist.

    Raises InvalidInputError for unsafe names and unreadable files.
    """
    path = source.joined(name)
    signature = _signature(path)
    key = (source.real_root, name)
    cached = _PARSED_CACHE.get(key)
    if cached is not None and cached[0] == signature:
        # The very same file (device, inode) was confined when it was cached;
        # a link swapped in since then would show up as another inode.
        return cached[1]
    source.confine(path, name)
    if signature is None or not path.is_file():
        return None
    try:
        text = source.read(path, name)
    except FileNotFoundError:
        return None
    parsed = _parse(env, text, name)
    _PARSED_CACHE[key] = (signature, parsed)
    return parsed


def _parse(env: ImmutableSandboxedEnvironment, text: str, name: str) -> _Parsed:
    from jinja2 import TemplateSyntaxError

    try:
        parsed = _parse_tree(env, text, name)
        if parsed.syntax_error is None:
            # Rendering compiles the template to Python, which refuses some
            # templates Jinja's parser takes (blocks nested 100 deep): say so now.
            env.compile(text, name=name)
    except TemplateSyntaxError as exc:
        return _Parsed(syntax_error=(exc.lineno, exc.message or "invalid template"))
    except (RecursionError, SyntaxError):
        # Jinja parses and compiles by recursion: a hostile depth must not crash.
        return _Parsed(syntax_error=(1, "the template is nested too deeply"))
    return parsed


def _parse_tree(env: ImmutableSandboxedEnvironment, text: str, name: str) -> _Parsed:
    from jinja2 import TemplateSyntaxError, meta
    from jinja2 import nodes as n

    try:
        ast = env.parse(text, name=name)
    except TemplateSyntaxError as exc:
        return _Parsed(syntax_error=(exc.lineno, exc.message or "invalid template"))

    params: dict[str, int] = {}
    whole: list[int] = []
    region_fields: dict[str, int] = {}
    app_fields: dict[str, int] = {}
    asset_fields: dict[str, int] = {}
    fields_of = {"region": region_fields, "app": app_fields, "assets": asset_fields}

    def record(table: dict[str, int], key: str, line: int) -> None:
        if key not in table or line < table[key]:
            table[key] = line

    def context_name(node: nodes.Node) -> str | None:
        if isinstance(node, n.Name) and node.ctx == "load" and node.name in CONTEXT_NAMES:
            return node.name
        return None

    def const_str(node: nodes.Node | None) -> str | None:
        if isinstance(node, n.Const) and isinstance(node.value, str):
            return node.value
        return None

    def use(owner: str, key: str | None, line: int) -> None:
        if owner == "params":
            if key is None:
                whole.append(line)
            else:
                record(params, key, line)
        elif key is not None and owner in fields_of:
            record(fields_of[owner], key, line)

    def walk(node: nodes.Node) -> None:
        if isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            owner = context_name(node.node.node)
            if owner is not None and node.node.attr in _DICT_METHODS:
                # params.get('x') reads one parameter; items()/keys()/values() read them all.
                key = const_str(node.args[0]) if node.args else None
                if owner == "params":
                    use(owner, key if node.node.attr == "get" else None, node.lineno)
                for argument in (*node.args, *node.kwargs, node.dyn_args, node.dyn_kwargs):
                    if argument is not None:
                        walk(argument)
                return
        if isinstance(node, n.Getattr | n.Getitem):
            owner = context_name(node.node)
            if owner is not None:
                if isinstance(node, n.Getattr):
                    use(owner, node.attr, node.lineno)
                else:
                    use(owner, const_str(node.arg), node.lineno)
                    walk(node.arg)
                return
        if isinstance(node, n.Compare) and len(node.ops) == 1:
            operand = node.ops[0]
            key = const_str(node.expr)
            if (
                operand.op in ("in", "notin")
                and key is not None
                and context_name(operand.expr) == "params"
            ):
                use("params", key, node.lineno)
                return
        if context_name(node) == "params":
            whole.append(node.lineno)
            return
        for child in node.iter_child_nodes():
            walk(child)

    walk(ast)

    allowed = CONTEXT_NAMES | env.globals.keys()
    undeclared_names = meta.find_undeclared_variables(ast) - allowed
    undeclared: dict[str, int] = {}
    stored: set[str] = set()
    for node in ast.find_all(n.Name):
        if node.ctx == "load" and node.name in undeclared_names:
            record(undeclared, node.name, node.lineno)
        elif node.ctx in ("store", "param"):
            stored.add(node.name)
    for macro in ast.find_all(n.Macro):
        stored.add(macro.name)
    for imported in ast.find_all(n.Import):
        stored.add(imported.target)
    for from_import in ast.find_all(n.FromImport):
        for imported_name in from_import.names:
            stored.add(imported_name[1] if isinstance(imported_name, tuple) else imported_name)

    references: list[_Reference] = []
    for ref in ast.find_all((n.Extends, n.FromImport, n.Import, n.Include)):
        kind = {n.Extends: "extends", n.Include: "include"}.get(type(ref), "import")
        target: nodes.Expr = ref.template  # type: ignore[attr-defined]  # all four have it
        names: list[str] = []
        dynamic = False
        if isinstance(target, n.Const) and isinstance(target.value, str):
            names = [target.value]
        elif isinstance(target, n.Const) and isinstance(target.value, tuple | list):
            names = [v for v in target.value if isinstance(v, str)]
        elif isinstance(target, n.Tuple | n.List):
            for item in target.items:
                value = const_str(item)
                if value is None:
                    dynamic = True
                else:
                    names.append(value)
        else:
            dynamic = True
        references.append(
            _Reference(
                kind=kind,
                line=ref.lineno,
                names=tuple(names),
                dynamic=dynamic,
                ignore_missing=isinstance(ref, n.Include) and ref.ignore_missing,
            )
        )

    return _Parsed(
        params=tuple(sorted(params.items())),
        whole=tuple(sorted(set(whole))),
        region_fields=tuple(sorted(region_fields.items())),
        app_fields=tuple(sorted(app_fields.items())),
        asset_fields=tuple(sorted(asset_fields.items())),
        undeclared=tuple(sorted(undeclared.items())),
        stored=frozenset(stored),
        references=tuple(references),
    )


@dataclass
class _Collector:
    params: list[Use] = field(default_factory=list)
    whole: list[Use] = field(default_factory=list)
    region_fields: list[Use] = field(default_factory=list)
    app_fields: list[Use] = field(default_factory=list)
    asset_fields: list[Use] = field(default_factory=list)
    undeclared: list[Use] = field(default_factory=list)
    issues: list[TemplateIssue] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    complete: bool = True


def analyse_text(env: ImmutableSandboxedEnvironment, text: str, name: str) -> TemplateUsage:
    """What one Jinja string of a manifest uses (a build argument), named ``name``.

    Such a string is on its own: an include, import or extends in it is an
    issue.  Analyses are cached by text: a catalogue repeats its strings.
    """
    parsed = _parse_text_cached(env, text, name)
    out = _Collector()
    _follow(env, source_of(env), name, parsed, frozenset(), out, references=False)
    issues = list(out.issues)
    issues += [
        TemplateIssue(name, ref.line, f"a {ref.kind} cannot be used here: the text stands alone")
        for ref in parsed.references
    ]
    return TemplateUsage(
        template=name,
        params=tuple(out.params),
        whole_params=tuple(out.whole),
        region_fields=tuple(out.region_fields),
        app_fields=tuple(out.app_fields),
        asset_fields=tuple(out.asset_fields),
        undeclared=tuple(out.undeclared),
        issues=tuple(sorted(set(issues))),
        templates=(),
        looked_up=(),
        complete=out.complete and not parsed.references,
    )


# text -> analysis: every environment parses alike (same syntax, same globals).
_TEXT_CACHE: dict[str, _Parsed] = {}


def _parse_text_cached(env: ImmutableSandboxedEnvironment, text: str, name: str) -> _Parsed:
    parsed = _TEXT_CACHE.get(text)
    if parsed is None:
        if len(_TEXT_CACHE) > 4096:
            _TEXT_CACHE.clear()
        parsed = _TEXT_CACHE[text] = _parse(env, text, name)
    return parsed


def analyse(env: ImmutableSandboxedEnvironment, src: str) -> TemplateUsage:
    """What template ``src`` uses, following its includes, imports and extends.

    Nothing is rendered.  Usage found in an included template is reported at
    that template's own line.  Raises InvalidInputError when ``src`` itself
    does not exist, cannot be read, or would leave the templates folder.
    """
    source = source_of(env)
    parsed = _parse_cached(env, source, src)
    if parsed is None:
        raise InvalidInputError(
            f"template '{src}' does not exist in {source.root}",
            hint="'src' is relative to the catalogue's templates/ folder",
        )
    out = _Collector()
    _follow(env, source, src, parsed, frozenset(), out)
    return TemplateUsage(
        template=src,
        params=tuple(out.params),
        whole_params=tuple(out.whole),
        region_fields=tuple(out.region_fields),
        app_fields=tuple(out.app_fields),
        asset_fields=tuple(out.asset_fields),
        undeclared=tuple(out.undeclared),
        issues=tuple(sorted(set(out.issues))),
        templates=tuple(out.visited),
        looked_up=tuple(dict.fromkeys([src, *out.looked_up])),
        complete=out.complete,
    )


def _follow(
    env: ImmutableSandboxedEnvironment,
    source: TemplateSource,
    name: str,
    parsed: _Parsed,
    outer_names: frozenset[str],
    out: _Collector,
    *,
    references: bool = True,
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
    out.asset_fields.extend(Use(name, line, key) for key, line in parsed.asset_fields)
    # Top-level sets and imports reach the blocks of the same template (which
    # meta.find_undeclared_variables treats as separate scopes), and an included
    # template sees the variables of the one including it.  Any assignment
    # counts: a false "undefined" costs more than re-checking Jinja's scoping.
    inner_names = outer_names | parsed.stored
    out.undeclared.extend(
        Use(name, line, key) for key, line in parsed.undeclared if key not in inner_names
    )
    for ref in parsed.references if references else ():
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
                child = _parse_cached(env, source, target)
            except InvalidInputError as exc:
                out.issues.append(TemplateIssue(name, ref.line, f"{ref.kind}: {exc.message}"))
                out.complete = False
                found = True  # reported; "does not exist" would be misleading
                continue
            if child is None:
                continue
            found = True
            if target not in out.visited:
                _follow(env, source, target, child, inner_names, out)
        if not found and ref.names and not ref.ignore_missing:
            shown = "', '".join(ref.names)
            verb = {"include": "included", "import": "imported", "extends": "extended"}
            out.issues.append(
                TemplateIssue(name, ref.line, f"{verb[ref.kind]} template '{shown}' does not exist")
            )
            out.complete = False
