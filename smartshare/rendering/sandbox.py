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
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from smartshare.catalog.rules import relative_path_problem
from smartshare.catalog.yamlfile import MAX_FILE_BYTES
from smartshare.errors import InvalidInputError, TemplateRenderError, UnsafePathError

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from smartshare.catalog.models import AppManifest, RegionProfile

# The names every template may use: the render context.  ``requires`` holds
# the outputs of the apps an app requires (``requires.sikda.internal_url``).
CONTEXT_NAMES = frozenset({"region", "app", "params", "requires"})


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
) -> dict[str, Any]:
    """What a template sees: ``region``, ``app``, the resolved ``params`` and ``requires``.

    ``requires`` maps each app that ``app`` requires to its outputs
    (:mod:`smartshare.rendering.outputs`).
    """
    return {
        # The other apps' values (and their secret references) are not this app's business.
        "region": region.model_dump(mode="json", by_alias=False, exclude={"apps"}),
        "app": app.model_dump(mode="json", by_alias=False),
        "params": dict(params),
        "requires": {name: dict(outputs) for name, outputs in (requires or {}).items()},
    }


def render(env: ImmutableSandboxedEnvironment, src: str, context: Mapping[str, Any]) -> str:
    """Render template ``src`` (a name inside the templates folder).

    Raises TemplateRenderError naming the template, its line and the cause;
    messages never carry parameter values, which may be secrets.
    """
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    source = source_of(env)
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


def render_string(text: str, context: Mapping[str, Any], *, what: str) -> str:
    """Render one Jinja string of a manifest (an environment value, an output).

    The same sandbox, filters and strictness as template files, with no
    loader: a string cannot include a file.  ``what`` names the string in
    errors (``runtime.services.web.environment.DB_HOST of sikda``); messages
    never carry parameter values.
    """
    if not any(marker in text for marker in ("{{", "{%", "{#")):
        return text  # plain text renders as itself: no need for Jinja
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    try:
        template = _string_template(text)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"{what}: syntax error: {_redact(exc.message or '', context)}"
        ) from None
    try:
        return template.render(dict(context))
    except SecurityError as exc:
        raise TemplateRenderError(
            f"{what}: the text tried an unsafe operation ({_redact(str(exc), context)})",
            hint="manifests from another region run in a sandbox; the manifest must be fixed",
        ) from None
    except UndefinedError as exc:
        raise TemplateRenderError(
            f"{what}: undefined value: {_redact(str(exc), context)}",
            hint="it may use region, app, params (not secret ones: give those as 'secrets'), "
            "services.<service>.host|port|public_url and requires.<app>.<output>",
        ) from None
    except (TemplateError, TypeError) as exc:
        raise TemplateRenderError(f"{what}: {_redact(str(exc), context)}") from None
    except Exception as exc:
        raise TemplateRenderError(
            f"{what}: rendering failed with {type(exc).__name__} "
            "(details withheld: they may contain parameter values)"
        ) from None


@lru_cache(maxsize=4096)
def _string_template(text: str) -> Template:
    return _string_environment().from_string(text)


@lru_cache(maxsize=1)
def _string_environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters["tojson"] = _tojson
    env.filters["toyaml"] = _toyaml
    env.filters["shquote"] = _shquote
    return env


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
