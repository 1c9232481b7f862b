"""An app's parameter values for one region: defaults < profile < --set.

Secret parameters hold references (``env:NAME``, ``file:PATH``) until this
module resolves them; the resolved values live only in memory, for the
runtime templates.  Everything recorded or shown uses the references.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartshare.catalog.models import AppManifest, is_secret_reference
from smartshare.catalog.paramtypes import ParameterType, describe, json_text_problem, parse_text
from smartshare.catalog.profile import RegionProfile
from smartshare.errors import InvalidInputError, SecretResolutionError, UsageError


@dataclass(frozen=True)
class ResolvedValues:
    params: dict[str, Any]  # what templates see (secrets resolved)
    recorded: dict[str, Any]  # what may be written down (secrets as references)
    secret_names: frozenset[str]


def parse_set_options(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["laksa.site_title=Badung"]`` -> ``{"laksa": {"site_title": "Badung"}}``."""
    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        app, dot, param = key.partition(".")
        if not sep or not dot or not app or not param:
            raise UsageError(
                f"--set {item!r} is not APP.PARAM=VALUE",
                hint="for example: --set laksa.site_title='LAKSA Badung'",
            )
        overrides.setdefault(app.strip(), {})[param.strip()] = value
    return overrides


# How a --set value of a type that holds several values is written.
_SET_SYNTAX = {
    ParameterType.LIST: "; with --set, as items separated by commas (a,b) or as JSON ([...])",
    ParameterType.OBJECT: "; with --set, as JSON ({...})",
}


def resolve_secret(reference: str, *, base_dir: Path, param: str, app: str) -> str:
    kind, _, target = reference.partition(":")
    if kind == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretResolutionError(
                f"{app}.{param}: secret reference '{reference}' names an environment "
                f"variable that is not set",
                hint=f"export {target}=... before running smartshare",
            )
        return value
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise SecretResolutionError(
            f"{app}.{param}: secret reference '{reference}' cannot be read ({exc.strerror or exc})",
            hint="file: paths are relative to the region profile's folder",
        ) from None
    except UnicodeDecodeError:
        raise SecretResolutionError(
            f"{app}.{param}: secret file of reference '{reference}' is not UTF-8 text"
        ) from None


def validate_overrides(
    overrides: Mapping[str, Mapping[str, str]], apps: Mapping[str, AppManifest]
) -> None:
    for app_name, values in overrides.items():
        app = apps.get(app_name)
        if app is None:
            raise UsageError(
                f"--set names app '{app_name}', which is not being adopted",
                hint=f"adopted apps: {', '.join(sorted(apps))}",
            )
        for param in values:
            if app.parameter(param) is None:
                declared = ", ".join(p.name for p in app.parameters) or "none"
                raise UsageError(
                    f"--set {app_name}.{param}: '{app_name}' has no parameter '{param}'",
                    hint=f"its parameters: {declared}",
                )


def resolve_values(
    *,
    app: AppManifest,
    region: RegionProfile,
    region_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> ResolvedValues:
    profile_values = region.app_values(app.name)
    overrides = overrides or {}
    params: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    secrets: set[str] = set()
    for spec in app.parameters:
        value: Any = spec.default
        source = f"{app.name}.{spec.name} (the manifest's default)"
        if spec.name in profile_values:
            value = profile_values[spec.name]
            source = f"apps.{app.name}.{spec.name} of region profile '{region.name}'"
        if spec.name in overrides:
            value = parse_text(spec, overrides[spec.name])
            source = f"--set {app.name}.{spec.name}"
        if value is None:
            if spec.required:
                raise InvalidInputError(
                    f"{app.name}.{spec.name} is required and has no value",
                    hint=f"set apps.{app.name}.{spec.name} in the region profile "
                    f"or pass --set {app.name}.{spec.name}=VALUE",
                )
            params[spec.name] = None
            recorded[spec.name] = None
            continue
        if spec.secret:
            secrets.add(spec.name)
            if not is_secret_reference(value):
                raise InvalidInputError(
                    f"{app.name}.{spec.name} is a secret: give a reference "
                    "(env:NAME or file:PATH), not the value",
                    hint="the value itself would end up in files and shell history",
                )
            recorded[spec.name] = value
            params[spec.name] = resolve_secret(
                value, base_dir=region_dir, param=spec.name, app=app.name
            )
            continue
        problem = spec.value_problem(value)
        if problem:
            not_json = (
                json_text_problem(spec, overrides[spec.name]) if spec.name in overrides else None
            )
            raise InvalidInputError(
                f"{source}: {problem.explain(spec.name, spec)}"
                + (f"; {not_json}" if not_json else ""),
                hint=f"{app.name}.{spec.name} takes {describe(spec)}"
                + _SET_SYNTAX.get(spec.type, ""),
            )
        params[spec.name] = value
        recorded[spec.name] = value
    return ResolvedValues(params=params, recorded=recorded, secret_names=frozenset(secrets))
