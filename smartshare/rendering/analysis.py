"""What a template uses, found from the Jinja AST alone, without rendering it.

:func:`analyse` answers "which parameters does this template use?" following
includes, imports and extends: validation needs it for every app of a
catalogue, and a national catalogue holds thousands of templates, so each file
is parsed once and walked once (:class:`.analysis_walk.Walker`).  The walk
collects everything the checks need: ``params.X``, ``region.X``, ``app.X``
and ``assets.X``, names that nothing defines, names the template defines, includes and imports, and
the mistakes Jinja's compiler would refuse when the template is first
rendered (an unknown filter, a block defined twice...), so the compiler
itself, which costs ten times the parse, runs only for templates nested deep
enough for Python's own limits to matter.

Results are kept per file until it changes, and, given a memo
(:class:`TemplateAnalyser`), by the file's content: a validation run can take
them from the previous run's cache.  :func:`analyse_text` does the same for
one Jinja string of a manifest (a build argument), which stands alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.errors import InvalidInputError
from smartshare.rendering.analysis_data import Parsed
from smartshare.rendering.analysis_walk import Walker
from smartshare.rendering.sandbox import (
    TemplateSource,
    make_environment,
    source_of,
    unreadable_reason,
)

if TYPE_CHECKING:
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
    asset_fields: tuple[Use, ...] = ()
    requires_fields: tuple[Use, ...] = ()  # name: "app" or "app.output"
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


# (templates folder, name) -> (file signature, analysis, digest of the text)
_Signature = tuple[int, int, int, int, bool]
_PARSED_CACHE: dict[tuple[Path, str], tuple[_Signature, Parsed, str]] = {}


def _signature(path: Path) -> _Signature | None:
    """Which file ``path`` is and when it changed, and whether it is a regular file."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, stat.S_ISREG(st.st_mode)


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
        self._usages: dict[str, TemplateUsage] | None = None  # in a recording()

    @contextlib.contextmanager
    def recording(self) -> Iterator[set[str]]:
        """The names of the templates looked up in the block (read, missing or refused).

        In the block each template's :meth:`analyse` is made once: one app's
        checks ask for the same template more than once, and what they find
        together is what was read then.
        """
        names: set[str] = set()
        outer, self._read = self._read, names
        outer_usages, self._usages = self._usages, {}
        try:
            yield names
        finally:
            self._read = outer
            self._usages = outer_usages

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
        usages = self._usages
        if usages is not None and src in usages:
            return usages[src]
        parsed = self.parsed(src)
        if parsed is None:
            raise InvalidInputError(
                f"template '{src}' does not exist in {self.source.root}",
                hint="'src' is relative to the catalogue's templates/ folder",
            )
        out = _Collector()
        self._follow(src, parsed, frozenset(), out)
        usage = out.usage(src, looked_up=tuple(dict.fromkeys([src, *out.looked_up])))
        if usages is not None:
            usages[src] = usage
        return usage

    def read(self, name: str) -> str | None:
        """The text of file ``name`` of the folder (a schema), None when it does not exist.

        Recorded as a template read is: what was computed from it is kept
        while it holds the same.  Raises InvalidInputError for unsafe names
        and unreadable files.
        """
        if self._read is not None:
            self._read.add(name)
        source = self.source
        try:
            text = source.read(source.path_of(name), name)
        except FileNotFoundError:
            self.digests[name] = None
            return None
        self.digests[name] = content_digest(text)
        return text

    def parsed(self, name: str) -> Parsed | None:
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
        if signature is None or not signature[-1]:
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

    def analyse_text(self, text: str, name: str) -> TemplateUsage:
        """:func:`analyse_text`, its analysis kept in this analyser's memo by the text.

        A warm run then checks a manifest's Jinja strings (build arguments,
        runtime values) without importing Jinja.
        """
        parsed = _TEXT_CACHE.get(text)
        if parsed is None:
            parsed = _remember_text(text, self._parse_text(text, name, content_digest(text)))
        return _text_usage(parsed, name)

    def _parse_text(self, text: str, name: str, digest: str) -> Parsed:
        memo = self._memo
        if memo is None:
            return _parse(self.env, text, name)
        known = memo.get(digest)
        if known is not None:
            try:
                return Parsed.from_data(known)
            except (ValueError, TypeError, KeyError, IndexError):
                pass  # a damaged entry: analysed again, and written again
        parsed = _parse(self.env, text, name)
        memo.put(digest, parsed.to_data())
        return parsed

    def _follow(
        self, name: str, parsed: Parsed, outer_names: frozenset[str], out: _Collector
    ) -> None:
        inner_names = out.take(name, parsed, outer_names)
        if inner_names is None:
            return
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
    asset_fields: list[Use] = field(default_factory=list)
    requires_fields: list[Use] = field(default_factory=list)
    undeclared: list[Use] = field(default_factory=list)
    issues: list[TemplateIssue] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    complete: bool = True

    def take(self, name: str, parsed: Parsed, outer_names: frozenset[str]) -> frozenset[str] | None:
        """Add what file ``name`` uses on its own; the names its references see (None: broken)."""
        self.visited.append(name)
        if parsed.syntax_error is not None:
            line, message = parsed.syntax_error
            self.issues.append(TemplateIssue(name, line, f"template syntax error: {message}"))
            self.complete = False
            return None
        self.params.extend(Use(name, line, key) for key, line in parsed.params)
        self.whole.extend(Use(name, line, "params") for line in parsed.whole)
        self.region_fields.extend(Use(name, line, key) for key, line in parsed.region_fields)
        self.app_fields.extend(Use(name, line, key) for key, line in parsed.app_fields)
        self.asset_fields.extend(Use(name, line, key) for key, line in parsed.asset_fields)
        self.requires_fields.extend(Use(name, line, key) for key, line in parsed.requires_fields)
        # Top-level sets and imports reach the blocks of the same template (which
        # Jinja compiles as separate scopes), and an included template sees the
        # variables of the one including it.  Any assignment counts: a false
        # "undefined" costs more than re-checking Jinja's scoping.
        inner_names = outer_names | parsed.stored
        self.undeclared.extend(
            Use(name, line, key) for key, line in parsed.undeclared if key not in inner_names
        )
        return inner_names

    def usage(self, name: str, *, looked_up: tuple[str, ...]) -> TemplateUsage:
        return TemplateUsage(
            template=name,
            params=tuple(self.params),
            whole_params=tuple(self.whole),
            region_fields=tuple(self.region_fields),
            app_fields=tuple(self.app_fields),
            asset_fields=tuple(self.asset_fields),
            requires_fields=tuple(self.requires_fields),
            undeclared=tuple(self.undeclared),
            issues=tuple(sorted(set(self.issues))),
            templates=tuple(self.visited),
            looked_up=looked_up,
            complete=self.complete,
        )


def analyse(env: ImmutableSandboxedEnvironment, src: str) -> TemplateUsage:
    """What template ``src`` of ``env``'s folder uses (see :meth:`TemplateAnalyser.analyse`)."""
    return TemplateAnalyser(source_of(env).root, env=env).analyse(src)


def analyse_text(env: ImmutableSandboxedEnvironment, text: str, name: str) -> TemplateUsage:
    """What one Jinja string of a manifest uses (a build argument), named ``name``.

    Such a string is on its own: an include, import or extends in it is an
    issue.  Analyses are kept by text: a catalogue repeats its strings.
    """
    parsed = _TEXT_CACHE.get(text)
    if parsed is None:
        parsed = _remember_text(text, _parse(env, text, name))
    return _text_usage(parsed, name)


def _remember_text(text: str, parsed: Parsed) -> Parsed:
    if len(_TEXT_CACHE) >= _TEXT_CACHE_SIZE:
        _TEXT_CACHE.clear()
    _TEXT_CACHE[text] = parsed
    return parsed


def _text_usage(parsed: Parsed, name: str) -> TemplateUsage:
    out = _Collector()
    out.take(name, parsed, frozenset())
    out.issues += [
        TemplateIssue(name, ref.line, f"a {ref.kind} cannot be used here: the text stands alone")
        for ref in parsed.references
    ]
    out.complete = out.complete and not parsed.references
    usage = out.usage(name, looked_up=())
    return replace(usage, templates=())


# text -> analysis: every environment parses alike (same syntax, same globals).
_TEXT_CACHE: dict[str, Parsed] = {}
_TEXT_CACHE_SIZE = 4096

# -- parsing and the walk ------------------------------------------------------------------

# Up to this depth of nodes (the walk skips at most two leaf levels, e.g. the
# `params` of `params.get('x')`) the compiled Python stays well inside Python's
# own limits: 20 nested loops, 100 levels of indentation, 200 nested brackets,
# the recursion limit.  So the walk's checks say all that compiling would
# (tests/test_template_analysis.py compiles every construct nested this deep).
# Deeper templates are compiled as well, as rendering will.  Real templates
# are 6 to 9 deep.
COMPILE_DEPTH = 16


def _parse(env: ImmutableSandboxedEnvironment, text: str, name: str) -> Parsed:
    from jinja2 import TemplateSyntaxError
    from jinja2 import nodes as n

    from smartshare.rendering.fastlex import parser_for

    parser = walker = None
    try:
        # Parser.parse() without set_environment(): that pass over every node
        # serves constant folding, which the walk does for what it needs.
        parser = parser_for(env, text, name)
        tree = n.Template(parser.subparse(), lineno=1)
        walker = Walker(env, extends="extends" in text and tree.find(n.Extends) is not None)
        walker.walk(tree)
        if walker.max_depth > COMPILE_DEPTH:
            env.compile(text, name=name)
    except TemplateSyntaxError as exc:
        return Parsed(syntax_error=(exc.lineno, exc.message or "invalid template"))
    except (RecursionError, SyntaxError):
        # Jinja parses and compiles by recursion: a hostile depth must not crash.
        return Parsed(syntax_error=(1, "the template is nested too deeply"))
    except MemoryError:
        raise
    except Exception as exc:
        # Jinja computes literals as it reads and compiles: a number longer
        # than Python converts, an expression of literals that fails.
        failure = walker.first_failure() if walker is not None else None
        line = parser.stream.current.lineno if parser is not None else 1
        return Parsed(syntax_error=failure or (line, unreadable_reason(exc)))
    failure = walker.first_failure()
    if failure is not None:
        return Parsed(syntax_error=failure)
    return walker.result()
