"""Render an app's regional config from untrusted Jinja templates, and analyse them.

Templates come from another region, so they run in Jinja's immutable sandbox
with ``StrictUndefined`` (a typo fails loudly instead of rendering an empty
string), and they can only load files inside their own ``templates/`` folder.

:func:`analyse` answers "which parameters does this template use?" from the
Jinja AST alone, without rendering: validation needs it for every app, and a
catalogue of a thousand manifests shares a handful of templates, so each
template file is parsed once and the result is cached until the file changes.

Jinja is imported lazily: ``smartshare --help`` and ``list`` never need it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from smartshare.catalog.rules import relative_path_problem
from smartshare.catalog.yamlfile import MAX_FILE_BYTES
from smartshare.errors import InvalidInputError, TemplateRenderError, UnsafePathError

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from smartshare.catalog.models import AppManifest, RegionProfile

# The names every template may use: the render context.
CONTEXT_NAMES = frozenset({"region", "app", "params"})


# -- loading -----------------------------------------------------------------


class TemplateSource:
    """Reads templates from one folder and nothing outside it.

    ``FileSystemLoader(followlinks=False)`` only stops *directory walks* from
    following links; a symlinked template file (``templates/x.j2 -> /etc/shadow``)
    is still read.  Here every name is resolved and must stay inside the folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self._names: dict[str, str] = {}

    def path_of(self, name: str) -> Path:
        """The file behind template ``name``; raise UnsafePathError if it leaves the folder."""
        path = self.joined(name)
        self.confine(path, name)
        return path

    def joined(self, name: str) -> Path:
        """``name`` inside the folder, checked by its spelling only (no file system access)."""
        problem = relative_path_problem(name, folder="templates/")
        if problem:
            raise UnsafePathError(f"template name {name!r} {problem}")
        return self.real_root.joinpath(*PurePosixPath(name).parts)

    def confine(self, path: Path, name: str) -> None:
        """Raise UnsafePathError when ``path`` resolves outside the folder (symbolic links)."""
        if not path.resolve().is_relative_to(self.real_root):
            raise UnsafePathError(
                f"template '{name}' resolves outside the templates folder "
                "(a symbolic link pointing elsewhere); refusing to read it"
            )

    def name_of(self, filename: str) -> str | None:
        """The template name of a filename this source handed to Jinja."""
        return self._names.get(filename)

    def read(self, path: Path, name: str) -> str:
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise InvalidInputError(
                f"template '{name}' cannot be read: {exc.strerror or exc}"
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise InvalidInputError(
                f"template '{name}' is larger than {MAX_FILE_BYTES // 1024} KiB"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"template '{name}' is not UTF-8 text ({exc.reason})") from None

    def __call__(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        path = self.path_of(name)
        try:
            mtime = path.stat().st_mtime_ns
            source = self.read(path, name)
        except FileNotFoundError:
            return None
        filename = str(path)
        self._names[filename] = name

        def uptodate() -> bool:
            try:
                return path.stat().st_mtime_ns == mtime
            except OSError:
                return False

        return source, filename, uptodate


def template_digests(templates_dir: Path, names: Iterable[str]) -> dict[str, str | None]:
    """sha256 of each named template file, None for a missing one.

    Files are read through the same confinement as rendering, so a template
    swapped for a link that leaves the folder is refused here too.
    """
    source = TemplateSource(templates_dir.absolute())
    digests: dict[str, str | None] = {}
    for name in names:
        path = source.path_of(name)
        try:
            text = source.read(path, name)
        except FileNotFoundError:
            digests[name] = None
            continue
        digests[name] = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digests


def _tojson(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    # JSON leaves these raw, but YAML reads NEL/LS/PS as line breaks and refuses
    # C1 controls: escaping them keeps the output valid JSON *and* valid YAML.
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _toyaml(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, Mapping | list) and value:
        # Block style, as a YAML author writes it; indent it with `| indent(n)`
        # when it is not at the start of a line.
        text = yaml.safe_dump(
            value, default_flow_style=False, allow_unicode=True, sort_keys=True, width=2**31 - 1
        )
        return text.removesuffix("\n")
    text = yaml.safe_dump(
        value, default_flow_style=True, allow_unicode=True, width=2**31 - 1, sort_keys=True
    )
    text = text.removesuffix("\n").removesuffix("\n...").removesuffix("\n")
    if "\n" in text:
        # A multi-line scalar would break the indentation of the line it is
        # inserted into; JSON is YAML and always fits on one line.
        return _tojson(value)
    return text


def _shquote(value: Any) -> str:
    return shlex.quote(str(value))


def make_environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja environment for one templates folder (cached per folder)."""
    return _environment(templates_dir.absolute())


@lru_cache(maxsize=32)
def _environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    from jinja2 import FunctionLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=FunctionLoader(TemplateSource(templates_dir)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tojson"] = _tojson
    env.filters["toyaml"] = _toyaml
    env.filters["shquote"] = _shquote
    return env


def _source_of(env: ImmutableSandboxedEnvironment) -> TemplateSource:
    source = getattr(env.loader, "load_func", None)
    if not isinstance(source, TemplateSource):
        raise TypeError("expected an environment made by make_environment()")
    return source


# -- rendering ---------------------------------------------------------------


def render_context(
    *, region: RegionProfile, app: AppManifest, params: Mapping[str, object]
) -> dict[str, Any]:
    """What a template sees: ``region``, ``app`` and the resolved ``params``."""
    return {
        # The other apps' values (and their secret references) are not this app's business.
        "region": region.model_dump(mode="json", by_alias=False, exclude={"apps"}),
        "app": app.model_dump(mode="json", by_alias=False),
        "params": dict(params),
    }


def render(env: ImmutableSandboxedEnvironment, src: str, context: Mapping[str, Any]) -> str:
    """Render template ``src`` (a name inside the templates folder).

    Raises TemplateRenderError naming the template, its line and the cause;
    messages never carry parameter values, which may be secrets.
    """
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    source = _source_of(env)
    try:
        return env.get_template(src).render(dict(context))
    except InvalidInputError as exc:
        raise TemplateRenderError(f"template {src}: {exc.message}", hint=exc.hint) from None
    except TemplateNotFound as exc:
        missing = exc.name if isinstance(exc.name, str) else src
        what = "does not exist" if missing == src else f"includes '{missing}', which does not exist"
        raise TemplateRenderError(
            f"template {src} {what} in {source.root}",
            hint="check the 'src' of the template in the manifest",
        ) from None
    except TemplateSyntaxError as exc:
        where = exc.name or src
        raise TemplateRenderError(
            f"template {where}:{exc.lineno}: syntax error: {_redact(exc.message or '', context)}"
        ) from None
    except SecurityError as exc:
        where = _where(exc, source, src)
        detail = _redact(str(exc), context)
        raise TemplateRenderError(
            f"template {where}: the template tried an unsafe operation ({detail})",
            hint="templates from another region run in a sandbox; the template must be fixed",
        ) from None
    except UndefinedError as exc:
        where = _where(exc, source, src)
        raise TemplateRenderError(
            f"template {where}: undefined value: {_redact(str(exc), context)}",
            hint="declare the parameter in the manifest, give it a default, "
            "or set it in the region profile",
        ) from None
    except (TemplateError, TypeError) as exc:
        where = _where(exc, source, src)
        raise TemplateRenderError(f"template {where}: {_redact(str(exc), context)}") from None
    except Exception as exc:
        # Other errors (ValueError from int('...'), ...) tend to quote the value.
        where = _where(exc, source, src)
        raise TemplateRenderError(
            f"template {where}: rendering failed with {type(exc).__name__} "
            "(details withheld: they may contain parameter values)"
        ) from None


def _where(exc: BaseException, source: TemplateSource, fallback: str) -> str:
    """``name:line`` of the innermost template frame in the traceback."""
    found = fallback
    tb = exc.__traceback__
    while tb is not None:
        name = source.name_of(tb.tb_frame.f_code.co_filename)
        if name is not None:
            found = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _string_values(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _string_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _string_values(item)


def _redact(text: str, context: Mapping[str, Any]) -> str:
    """Remove parameter values from an error message."""
    values = sorted(set(_string_values(context.get("params"))), key=len, reverse=True)
    for value in values:
        if not value:
            continue
        for form in (repr(value), json.dumps(value, ensure_ascii=False)):
            text = text.replace(form, "'<value hidden>'")
        if len(value) >= 4:
            text = text.replace(value, "<value hidden>")
    return text


# -- static analysis ---------------------------------------------------------


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
    """What one template file uses on its own (cached per file)."""

    params: tuple[tuple[str, int], ...] = ()
    whole: tuple[int, ...] = ()
    region_fields: tuple[tuple[str, int], ...] = ()
    app_fields: tuple[tuple[str, int], ...] = ()
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
        elif key is not None:
            record(region_fields if owner == "region" else app_fields, key, line)

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
    undeclared: list[Use] = field(default_factory=list)
    issues: list[TemplateIssue] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    complete: bool = True


def analyse(env: ImmutableSandboxedEnvironment, src: str) -> TemplateUsage:
    """What template ``src`` uses, following its includes, imports and extends.

    Nothing is rendered.  Usage found in an included template is reported at
    that template's own line.  Raises InvalidInputError when ``src`` itself
    does not exist, cannot be read, or would leave the templates folder.
    """
    source = _source_of(env)
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
    # meta.find_undeclared_variables treats as separate scopes), and an included
    # template sees the variables of the one including it.  Any assignment
    # counts: a false "undefined" costs more than re-checking Jinja's scoping.
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
