"""The Jinja classes behind the sandbox: imported only when something is parsed or rendered.

- :class:`FreshModuleTemplate`: Jinja keeps the module of a template imported
  without context (``{% import 'lib.j2' as lib %}``) on the Template object,
  which the environment caches, so a namespace in it filled by one render
  was seen by the next (a runtime render's secret in an image render).  This
  template runs the imported template anew for every import.
- :class:`SecretParameter`: what an image render sees in place of a secret
  parameter's value.  Any use of it fails, naming the parameter: the value is
  not there to leak, whatever the template does (``params.items()``,
  ``params['db_' ~ 'password']``...).
- :class:`LimitedSandbox`: the immutable sandbox, whose ``*`` and ``**``
  refuse a result far larger than the output limit before making it (only
  for a clear message: the render worker's limits bound everything anyway).
- :class:`CodeCache`: compiled templates, shared by the fresh environments a
  render worker makes for each render (code objects hold no render state).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from jinja2 import BytecodeCache, StrictUndefined, Template, Undefined
from jinja2.bccache import Bucket
from jinja2.environment import TemplateModule
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from smartshare.rendering.sandbox import ValueLimitError


class FreshModuleTemplate(Template):
    """A template whose module (what ``import`` binds) is never kept between imports."""

    def _get_default_module(self, ctx: Context | None = None) -> TemplateModule:
        if ctx is not None:
            keys = ctx.globals_keys - self.globals.keys()
            if keys:
                return self.make_module({k: ctx.parent[k] for k in keys})
        return self.make_module()


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox; ``*`` and ``**`` refuse results over ``max_value_bytes``."""

    intercepted_binops = frozenset({"*", "**"})
    max_value_bytes: int | None = None

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limit = self.max_value_bytes
        if limit is not None and _too_large(operator, left, right, limit):
            raise ValueLimitError
        return super().call_binop(context, operator, left, right)


def _too_large(operator: str, left: Any, right: Any, limit: int) -> bool:
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                return len(sequence) * count > limit
        return False
    return (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left) > 1
        and right > 0
        and right * math.log2(abs(left)) > 8 * limit
    )


class SecretInImageError(UndefinedError):
    """An image template used a secret parameter."""


class SecretParameter(StrictUndefined):
    """Stands in for a secret parameter's value in an image render; fails on any use."""

    __slots__ = ()

    def __init__(self, name: str) -> None:
        super().__init__(
            hint=f"secret parameter '{name}' cannot be used by an image template: "
            "its value would be baked into the image",
            name=name,
            exc=SecretInImageError,
        )

    # Undefined's repr() is harmless, but str(params) would then show the
    # dictionary with a placeholder instead of failing.
    __repr__ = Undefined._fail_with_undefined_error


def with_secret_parameters(
    params: Mapping[str, Any], secret_names: Collection[str]
) -> dict[str, Any]:
    """``params`` with each secret parameter's value replaced by a :class:`SecretParameter`."""
    out = {name: value for name, value in params.items() if name not in secret_names}
    out.update((name, SecretParameter(name)) for name in secret_names)
    return out


def refuse_undefined(value: object) -> None:
    """Fail (as Jinja does when one is printed) if ``value`` holds an undefined value."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):
        for item in value.values():
            refuse_undefined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_undefined(item)


class CodeCache(BytecodeCache):
    """Compiled templates in memory, keyed by name and source checksum."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._code.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()
