"""What a failed render says, made so that it cannot show a secret.

A runtime render sees the secret parameters' values, and Jinja's messages
quote values (``params[params.password | upper]``: "'dict object' has no
attribute 'S3CRET'"), as do Python's (``TypeError: ... keyword argument
'S3CRET'``).  Replacing known values afterwards misses every transformed
form, so a runtime render's message is built only from the template's name,
the line and a fixed description; an undefined value is named from the
template's syntax tree (what the author wrote), never from the exception.
Image renders never see a secret (:mod:`.environment`'s placeholders), so
their messages keep Jinja's details, which help the template's author.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from smartshare.errors import InvalidInputError, TemplateRenderError
from smartshare.rendering.limits import format_mib
from smartshare.rendering.sandbox import (
    CONTEXT_NAMES,
    NotTextError,
    OutputLimitError,
    TemplateSource,
    ValueLimitError,
    source_of,
)

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_UNDEFINED_HINT = (
    "declare the parameter in the manifest, give it a default, or set it in the region profile"
)
_SANDBOX_HINT = "templates from another region run in a sandbox; the template must be fixed"
_NOT_TEXT = "the output is not text (a lone surrogate, which UTF-8 cannot encode)"


def render_failure(
    exc: Exception,
    *,
    env: ImmutableSandboxedEnvironment,
    src: str,
    context: Mapping[str, Any],
    runtime: bool,
    max_bytes: int | None,
) -> TemplateRenderError:
    """The error to raise for ``exc``, raised while rendering template ``src``."""
    where = _where(exc, source_of(env), src)
    if isinstance(exc, OutputLimitError):
        return TemplateRenderError(
            f"template {src}: output larger than {format_mib(max_bytes or 0)} "
            "(the limit per template)",
            hint="raise render_limits.output_mib in the settings file if the output is meant "
            "to be this large",
        )
    if isinstance(exc, ValueLimitError):
        return TemplateRenderError(
            f"template {where}: makes a value larger than {format_mib(max_bytes or 0)} "
            "(the output limit per template)"
        )
    if isinstance(exc, RecursionError):
        return TemplateRenderError(f"template {where}: recursion too deep")
    if isinstance(exc, NotTextError):
        return TemplateRenderError(f"template {where}: {_NOT_TEXT}")
    if runtime:
        return _runtime_error(exc, where, env, context)
    return _image_error(exc, where)


def _runtime_error(
    exc: Exception, where: str, env: ImmutableSandboxedEnvironment, context: Mapping[str, Any]
) -> TemplateRenderError:
    """An error of a render that saw secrets: built from names and fixed text only."""
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    if isinstance(exc, TemplateSyntaxError):
        # Raised while compiling an included template: about its source, before any value.
        return TemplateRenderError(
            f"template {exc.name or where}:{exc.lineno}: syntax error: {exc.message}"
        )
    if isinstance(exc, UndefinedError):
        name = undefined_name(env, where, context)
        what = f"undefined value '{name}'" if name else "undefined value"
        return TemplateRenderError(
            f"template {where}: {what}",
            hint=_UNDEFINED_HINT,
        )
    if isinstance(exc, TemplateNotFound | InvalidInputError):
        # The name may come from a value: it is not shown.
        return TemplateRenderError(
            f"template {where}: an included or imported template does not exist or was refused",
            hint="'smartshare validate' checks the templates without rendering them",
        )
    if isinstance(exc, SecurityError):
        return TemplateRenderError(
            f"template {where}: the template tried an unsafe operation",
            hint=_SANDBOX_HINT,
        )
    return TemplateRenderError(
        f"template {where}: rendering failed with {type(exc).__name__} "
        "(details withheld: this template sees secret values)"
    )


def _image_error(exc: Exception, where: str) -> TemplateRenderError:
    """An error of a render that saw no secret: Jinja's details help the author."""
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    from smartshare.rendering.environment import SecretInImageError

    if isinstance(exc, TemplateSyntaxError):
        return TemplateRenderError(
            f"template {exc.name or where}:{exc.lineno}: syntax error: {exc.message}"
        )
    if isinstance(exc, SecretInImageError):
        return TemplateRenderError(
            f"template {where}: {exc.message}",
            hint="use it in a runtime template (target: runtime), which is never part of an image",
        )
    if isinstance(exc, UndefinedError):
        return TemplateRenderError(
            f"template {where}: undefined value: {exc.message}",
            hint=_UNDEFINED_HINT,
        )
    if isinstance(exc, TemplateNotFound):
        missing = exc.name if isinstance(exc.name, str) else "?"
        return TemplateRenderError(
            f"template {where} includes '{missing}', which does not exist",
            hint="check the include, import or extends",
        )
    if isinstance(exc, InvalidInputError):
        return TemplateRenderError(f"template {where}: {exc.message}", hint=exc.hint)
    if isinstance(exc, SecurityError):
        return TemplateRenderError(
            f"template {where}: the template tried an unsafe operation ({exc})",
            hint=_SANDBOX_HINT,
        )
    return TemplateRenderError(f"template {where}: {type(exc).__name__}: {exc}")


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


def undefined_name(
    env: ImmutableSandboxedEnvironment, where: str, context: Mapping[str, Any]
) -> str | None:
    """The first ``params.x.y`` (or ``region.``, ``app.``) written at ``where`` that is undefined.

    Found from the template's syntax tree and the context's keys: the name is
    the one the author wrote, never a value.
    """
    from jinja2 import nodes
    from jinja2.runtime import Undefined

    name, _, line_text = where.rpartition(":")
    if not name or not line_text.isdigit():
        return None
    source = source_of(env)
    try:
        text = source.read(source.path_of(name), name)
        tree = env.parse(text)
    except Exception:  # only a better message is lost
        return None
    line = int(line_text)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        path = _written_path(node) if node.lineno == line else None
        if path is None or path[0] not in context:
            continue
        value: Any = context[path[0]]
        for depth, key in enumerate(path[1:], start=2):
            try:
                value = env.getitem(value, key)
            except Exception:  # the sandbox refused: not an undefined value
                break
            if isinstance(value, Undefined):
                return ".".join(path[:depth])
    return None


def _written_path(node: nodes.Node) -> list[str] | None:
    """``params.db.host`` as ``['params', 'db', 'host']``; None unless all of it is literal."""
    from jinja2 import nodes as n

    keys: list[str] = []
    while isinstance(node, n.Getattr | n.Getitem):
        if isinstance(node, n.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, n.Const) and isinstance(node.arg.value, str):
            keys.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, n.Name) or node.name not in CONTEXT_NAMES:
        return None
    return [node.name, *reversed(keys)]
