"""Render an app's regional config from untrusted Jinja templates.

Templates come from another region, so they run in Jinja's immutable sandbox
with ``StrictUndefined`` (a typo fails loudly instead of rendering an empty
string), and they can only load files inside their own ``templates/`` folder
(:class:`TemplateSource`).  What a template uses, found without rendering it,
is :mod:`.analysis`'s business.

Jinja is imported lazily: ``smartshare --help`` and ``list`` never need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from smartshare.catalog.rules import MAX_FILE_BYTES, relative_path_problem
from smartshare.errors import InvalidInputError, TemplateRenderError, UnsafePathError
from smartshare.state.safefs import NotRegularFileError, read_regular_file

if TYPE_CHECKING:
    from jinja2 import BytecodeCache, Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from smartshare.catalog.models import AppManifest
    from smartshare.catalog.profile import RegionProfile

# The names every template may use: the render context.  ``requires`` holds
# the outputs of the apps an app requires (``requires.sikda.internal_url``),
# ``assets`` the app's assets the region supplied (``assets.logo.dest``).
CONTEXT_NAMES = frozenset({"region", "app", "params", "requires", "assets"})


# -- loading -----------------------------------------------------------------


class TemplateSource:
    """Reads templates from one folder and nothing outside it.

    ``FileSystemLoader(followlinks=False)`` only stops *directory walks* from
    following links; a symlinked template file (``templates/x.j2 -> /etc/shadow``)
    is still read.  Here every name is resolved and must stay inside the folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.real_root = root.resolve()
        except (RuntimeError, OSError):
            raise UnsafePathError(
                f"the templates folder {root} is a symbolic link loop (or points into one)"
            ) from None
        self._names: dict[str, str] = {}
        # A name's path depends on its spelling alone: each is checked and made once.
        self._joined: dict[str, Path] = {}

    def path_of(self, name: str) -> Path:
        """The file behind template ``name``; raise UnsafePathError if it leaves the folder."""
        path = self.joined(name)
        self.confine(path, name)
        return path

    def joined(self, name: str) -> Path:
        """``name`` inside the folder, checked by its spelling only (no file system access)."""
        path = self._joined.get(name)
        if path is None:
            problem = relative_path_problem(name, folder="templates/")
            if problem:
                raise UnsafePathError(f"template name {name!r} {problem}")
            path = self._joined[name] = self.real_root.joinpath(*PurePosixPath(name).parts)
        return path

    def confine(self, path: Path, name: str) -> None:
        """Raise UnsafePathError when ``path`` resolves outside the folder (symbolic links).

        ``path``: :meth:`joined`'s.  Below the folder's real path, a name with
        no ``..`` and no link in it stays inside: then only its own parts are
        looked at, not every folder above it (this runs for every template of
        a national catalogue).
        """
        if not _has_link(self.real_root, path):
            return
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError):  # RuntimeError: a loop, before Python 3.13
            raise UnsafePathError(
                f"template '{name}' is a symbolic link loop (or points into one); "
                "refusing to read it"
            ) from None
        if not resolved.is_relative_to(self.real_root):
            raise UnsafePathError(
                f"template '{name}' resolves outside the templates folder "
                "(a symbolic link pointing elsewhere); refusing to read it"
            )

    def name_of(self, filename: str) -> str | None:
        """The template name of a filename this source handed to Jinja."""
        return self._names.get(filename)

    def read(self, path: Path, name: str) -> str:
        try:
            raw = read_regular_file(path, MAX_FILE_BYTES)
        except FileNotFoundError:
            raise
        except NotRegularFileError:
            raise InvalidInputError(f"template '{name}' is not a regular file") from None
        except OSError as exc:
            raise InvalidInputError(
                f"template '{name}' cannot be read: {exc.strerror or exc}"
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise InvalidInputError(
                f"template '{name}' is larger than {MAX_FILE_BYTES // 1024} KiB"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"template '{name}' is not UTF-8 text ({exc.reason})") from None
        if "\x00" in text:
            raise InvalidInputError(f"template '{name}' holds NUL bytes: it is not a text file")
        return text

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


def _has_link(root: Path, path: Path) -> bool:
    """Whether a part of ``path`` below ``root`` is a symbolic link (or cannot be looked at)."""
    current = str(root)
    for part in path.parts[len(root.parts) :]:
        current = os.path.join(current, part)  # noqa: PTH118
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return False  # nothing there to lead elsewhere
        except OSError:
            return True
        if stat.S_ISLNK(mode):
            return True
    return False


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
    from smartshare.rendering.environment import refuse_undefined

    refuse_undefined(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    # JSON leaves these raw, but YAML reads NEL/LS/PS as line breaks and refuses
    # C1 controls: escaping them keeps the output valid JSON *and* valid YAML.
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _toyaml(value: Any) -> str:
    import yaml  # only here: a render worker need not load it otherwise

    from smartshare.rendering.environment import refuse_undefined

    refuse_undefined(value)
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


class ValueLimitError(Exception):
    """An expression would make a value larger than the output limit."""


class NotTextError(Exception):
    """An expression produced a lone surrogate, which no file encoding can hold."""


def _finalize(value: Any) -> str:
    """Every ``{{ expression }}``'s text, checked where the template's line is still known."""
    text = value if isinstance(value, str) else str(value)
    if _SURROGATE.search(text):
        raise NotTextError
    return text


def make_environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja environment for one templates folder (cached per folder).

    For parsing and analysis.  Renders of an adoption run in a render worker,
    each in an environment of its own (:func:`new_environment`).
    """
    return _environment(templates_dir.absolute())


@lru_cache(maxsize=32)
def _environment(templates_dir: Path) -> ImmutableSandboxedEnvironment:
    return new_environment(templates_dir)


def new_environment(
    templates_dir: Path,
    *,
    code_cache: BytecodeCache | None = None,
    max_value_bytes: int | None = None,
) -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment for one templates folder; nothing in it outlives it.

    ``max_value_bytes``: ``*`` and ``**`` refuse results larger than this.
    """
    from jinja2 import FunctionLoader, StrictUndefined

    from smartshare.rendering.environment import FreshModuleTemplate, LimitedSandbox

    env = LimitedSandbox(
        loader=FunctionLoader(TemplateSource(templates_dir.absolute())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
        bytecode_cache=code_cache,
    )
    env.template_class = FreshModuleTemplate
    env.max_value_bytes = max_value_bytes
    env.filters["tojson"] = _tojson
    env.filters["toyaml"] = _toyaml
    env.filters["shquote"] = _shquote
    return env


def source_of(env: ImmutableSandboxedEnvironment) -> TemplateSource:
    source = getattr(env.loader, "load_func", None)
    if not isinstance(source, TemplateSource):
        raise TypeError("expected an environment made by make_environment()")
    return source


# -- rendering ---------------------------------------------------------------


def render_context(
    *,
    region: RegionProfile,
    app: AppManifest,
    params: Mapping[str, object],
    requires: Mapping[str, Mapping[str, str]] | None = None,
    assets: Mapping[str, Mapping[str, str] | None] | None = None,
) -> dict[str, Any]:
    """What a template sees: ``region``, ``app``, the resolved ``params``, ``requires``, ``assets``.

    ``requires`` maps each app that ``app`` requires to its outputs
    (:mod:`smartshare.rendering.outputs`); ``assets`` each asset of ``app``
    to its ``dest``, ``type`` and ``media_type``, None when the region gives
    no file for it.
    """
    # The other apps' values (and their secret references) and files are not
    # this app's business; the build settings (proxy credentials) are the build
    # servers', never a file's.
    region_data = region.model_dump(
        mode="json", by_alias=False, exclude={"apps", "assets", "build"}
    )
    logo = region_data["branding"].get("logo")
    if isinstance(logo, str) and logo.startswith("file:"):
        # A file reaches the apps as their logo asset; its path here is no URL.
        region_data["branding"]["logo"] = None
    return {
        "region": region_data,
        "app": app.model_dump(mode="json", by_alias=False),
        "params": dict(params),
        "requires": {name: dict(outputs) for name, outputs in (requires or {}).items()},
        "assets": {
            name: None if given is None else dict(given) for name, given in (assets or {}).items()
        },
    }


class OutputLimitError(Exception):
    """A template's output grew past the limit."""


def unreadable_reason(exc: Exception) -> str:
    """Why Jinja could not read or compile a template, for an error other than a syntax error.

    Jinja computes literals as it reads and compiles: a number longer than
    Python converts fails, and so does an expression of literals that fails
    (``'a' ~ 'b'.c``).  Nothing of a render's context is involved: the
    message may be shown whatever the template sees.
    """
    if isinstance(exc, RecursionError):
        return "the template is nested too deeply"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a number has more digits than Python converts (4300)"
    return f"Jinja cannot compile it: {exc}"


def render(
    env: ImmutableSandboxedEnvironment,
    src: str,
    context: Mapping[str, Any],
    *,
    runtime: bool = False,
    max_bytes: int | None = None,
) -> str:
    """Render template ``src`` (a name inside the templates folder).

    Raises TemplateRenderError naming the template and its line.  ``runtime``
    says that the context holds secrets: the message is then made of the
    template's name, the line and a fixed description of what went wrong,
    never of an exception's text or anything else derived from the values
    (``params[params.password | upper]`` puts the value into Jinja's
    message).  Image renders never see secrets, so their messages keep
    Jinja's details.  Output over ``max_bytes`` (UTF-8) stops the render.
    MemoryError is left to the caller, which knows the memory limit.
    """
    from jinja2 import TemplateNotFound, TemplateSyntaxError

    source = source_of(env)
    try:
        template = env.get_template(src)
    except InvalidInputError as exc:
        raise TemplateRenderError(f"template {src}: {exc.message}", hint=exc.hint) from None
    except TemplateNotFound:
        raise TemplateRenderError(
            f"template {src} does not exist in {source.root}",
            hint="check the 'src' of the template in the manifest",
        ) from None
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"template {exc.name or src}:{exc.lineno}: syntax error: {exc.message}"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # compiling computes literals: see unreadable_reason
        raise TemplateRenderError(
            f"template {src}: {unreadable_reason(exc)}",
            hint="'smartshare validate' locates it",
        ) from None
    try:
        return _generate(template, context, max_bytes)
    except MemoryError:
        raise
    except Exception as exc:  # every failure of untrusted code is described
        from smartshare.rendering.failures import render_failure

        raise render_failure(
            exc, env=env, src=src, context=context, runtime=runtime, max_bytes=max_bytes
        ) from None


def is_template_text(text: str) -> bool:
    """Whether a string of a manifest is Jinja (else it renders as itself)."""
    return "{{" in text or "{%" in text or "{#" in text


def render_text(
    env: ImmutableSandboxedEnvironment,
    text: str,
    context: Mapping[str, Any],
    *,
    what: str,
    max_bytes: int | None = None,
) -> str:
    """Render one Jinja string of a manifest that becomes part of an image (a build argument).

    In ``env``, the environment of a render worker, with the context of an
    image render (secret parameters are placeholders that fail when used),
    so messages keep Jinja's details; ``what`` names the string in them.
    MemoryError is left to the caller, as by :func:`render`.
    """
    from jinja2 import TemplateSyntaxError

    try:
        template = env.from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{what}: syntax error: {exc.message}") from None
    except MemoryError:
        raise
    except Exception as exc:  # compiling computes literals: see unreadable_reason
        raise TemplateRenderError(f"{what}: {unreadable_reason(exc)}") from None
    try:
        return _generate(template, context, max_bytes)
    except MemoryError:
        raise
    except Exception as exc:  # every failure of untrusted code is described
        from smartshare.rendering.failures import render_failure

        failure = render_failure(
            exc, env=env, src=what, context=context, runtime=False, max_bytes=max_bytes
        )
        # Its text names a template file; this is a string of the manifest.
        raise TemplateRenderError(
            failure.message.removeprefix("template "), hint=failure.hint
        ) from None


def render_string(
    text: str, context: Mapping[str, Any], *, what: str, max_bytes: int | None = None
) -> str:
    """Render one Jinja string of a manifest's runtime (an environment value, an output).

    Called in a render worker (:meth:`.pool.RenderPool.render_runtime_strings`),
    whose limits bound what the string may cost.  The same sandbox, filters and
    strictness as template files, with no loader: a string cannot include a
    file.  ``what`` names the string in errors
    (``runtime.services.web.environment.DB_HOST of 'sikda'``).  The context of
    such strings never holds a secret (secrets reach containers as files), so
    messages may quote what Jinja says.  Output over ``max_bytes`` (UTF-8)
    stops the render; MemoryError is left to the caller, as by :func:`render`.
    """
    if not is_template_text(text):
        return text  # plain text renders as itself: no need for Jinja
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    try:
        template = _string_template(text, max_bytes)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{what}: syntax error: {exc.message or ''}") from None
    except MemoryError:
        raise
    except Exception as exc:  # compiling computes literals: see unreadable_reason
        raise TemplateRenderError(f"{what}: {unreadable_reason(exc)}") from None
    try:
        return _generate(template, context, max_bytes)
    except MemoryError:
        raise
    except RecursionError:
        raise TemplateRenderError(f"{what}: recursion too deep") from None
    except (OutputLimitError, ValueLimitError) as exc:
        from smartshare.rendering.limits import format_mib

        made = "output" if isinstance(exc, OutputLimitError) else "makes a value"
        raise TemplateRenderError(
            f"{what}: {made} larger than {format_mib(max_bytes or 0)} (the limit per string)",
            hint="a runtime string is a short value; the manifest must be fixed",
        ) from None
    except SecurityError as exc:
        raise TemplateRenderError(
            f"{what}: the text tried an unsafe operation ({exc!s})",
            hint="manifests from another region run in a sandbox; the manifest must be fixed",
        ) from None
    except UndefinedError as exc:
        raise TemplateRenderError(
            f"{what}: undefined value: {exc!s}",
            hint="it may use region, app, params (not secret ones: give those as 'secrets'), "
            "services.<service>.host|port|public_url and requires.<app>.<output>",
        ) from None
    except (TemplateError, TypeError) as exc:
        raise TemplateRenderError(f"{what}: {exc!s}") from None
    except Exception as exc:
        raise TemplateRenderError(
            f"{what}: rendering failed with {type(exc).__name__} "
            "(details withheld: they may contain parameter values)"
        ) from None


# `{{ services.web.host }}`: a name, or a dotted path of names, between `{{` and `}}`
# with whitespace as Jinja's lexer skips it.
_PRINTED_NAME = re.compile(
    r"\{\{[ \t\n\r]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t\n\r]*\}\}"
)


def substitute_names(text: str, context: Mapping[str, Any], *, max_bytes: int) -> str | None:
    """``text`` as :func:`render_string` renders it, when all it does is print names; else None.

    Most runtime strings only print a host, a port, a parameter or an output
    (``http://{{ services.web.host }}:8080``).  Those need neither Jinja nor a
    render worker: their output is made of the context's values, cut off at
    ``max_bytes``.  Anything else (a filter, an expression, a statement, a
    name that is not a key of a mapping, a value that is not a string or a
    number, output over ``max_bytes``) returns None: it is for a worker, which
    also gives the error of a string that fails.
    """
    if not is_template_text(text):
        return text
    parts: list[str] = []
    size = 0
    position = 0
    for match in _PRINTED_NAME.finditer(text):
        literal = text[position : match.start()]
        # Jinja would read `{{{ a }}` from its first brace, and writes `\r\n` as `\n`.
        if literal.endswith("{") or not _plain_literal(literal):
            return None
        value = _lookup(context, match.group(1).split("."))
        if value is None:
            return None
        size += len(literal) + len(value)
        if size > max_bytes:
            return None
        parts += (literal, value)
        position = match.end()
    rest = text[position:]
    if not _plain_literal(rest):
        return None
    rendered = "".join([*parts, rest])
    if _SURROGATE.search(rendered) or len(rendered.encode("utf-8")) > max_bytes:
        return None  # the worker says what is wrong with it
    return rendered


def _plain_literal(text: str) -> bool:
    return "\r" not in text and not is_template_text(text)


def _lookup(context: Mapping[str, Any], path: list[str]) -> str | None:
    """The text Jinja prints for ``path`` (``name.attr.attr``) in ``context``; None if unsure."""
    value: Any = context
    for name in path:
        # Jinja tries an attribute first (`params.items` is the dict's method), then the key.
        if type(value) is not dict or hasattr(value, name) or name not in value:
            return None
        value = value[name]
    if type(value) not in (str, int, float, bool):
        return None
    return str(value)


@lru_cache(maxsize=4096)
def _string_template(text: str, max_value_bytes: int | None) -> Template:
    return _string_environment(max_value_bytes).from_string(text)


@lru_cache(maxsize=4)
def _string_environment(max_value_bytes: int | None) -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined

    from smartshare.rendering.environment import LimitedSandbox

    env = LimitedSandbox(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.max_value_bytes = max_value_bytes
    env.filters["tojson"] = _tojson
    env.filters["toyaml"] = _toyaml
    env.filters["shquote"] = _shquote
    return env


def _generate(template: Template, context: Mapping[str, Any], max_bytes: int | None) -> str:
    parts: list[str] = []
    # Characters as they come (cheap), bytes at the end: UTF-8 needs at least a byte each.
    length = 0
    for part in template.generate(dict(context)):
        length += len(part)
        if max_bytes is not None and length > max_bytes:
            raise OutputLimitError
        parts.append(part)
    text = "".join(parts)
    if max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
        raise OutputLimitError
    return text
