"""User settings: where sources are fetched from, where the git cache lives,
what rendering a template may cost.

Read from ``$SMARTSHARE_CONFIG`` or ``$XDG_CONFIG_HOME/smartshare/config.yaml``
(``~/.config/smartshare/config.yaml``).  A region that mirrors the sharing
region's forge internally (or the bundled demo, which makes a local forge)
maps URL prefixes to the mirror here, without editing the manifests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.rules import git_url_problem
from smartshare.catalog.yamlfile import YamlDocument, load_yaml
from smartshare.errors import InvalidInputError
from smartshare.rendering.limits import MIB, MIN_MEMORY_MIB, RenderLimits

CONFIG_ENV = "SMARTSHARE_CONFIG"


@dataclass(frozen=True)
class Settings:
    source_rewrites: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    render_limits: RenderLimits = field(default_factory=RenderLimits)
    path: Path | None = None


def settings_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "smartshare" / "config.yaml"


def load_settings() -> Settings:
    path = settings_path()
    if not path.is_file():
        return Settings()
    doc = load_yaml(path)
    data = doc.data
    problems = []
    allowed = {"source_rewrites", "cache_dir", "render_limits"}
    for key in data:
        if key not in allowed:
            problems.append(
                doc.problem((key,), f"unknown key '{key}'; allowed: {', '.join(sorted(allowed))}")
            )
    rewrites = data.get("source_rewrites") or {}
    if not isinstance(rewrites, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in rewrites.items()
    ):
        problems.append(
            doc.problem(("source_rewrites",), "must map URL prefixes to replacement prefixes")
        )
        rewrites = {}
    for prefix, target in rewrites.items():
        problem = git_url_problem(target)
        if problem:
            problems.append(doc.problem(("source_rewrites", prefix), problem))
    cache_dir = data.get("cache_dir")
    if cache_dir is not None and not isinstance(cache_dir, str):
        problems.append(doc.problem(("cache_dir",), "must be a folder path"))
        cache_dir = None
    limits = _render_limits(doc, data.get("render_limits"), problems)
    if problems:
        raise InvalidInputError(
            f"settings file {path} is not valid",
            hint=f"fix it, or point {CONFIG_ENV} at another file",
            problems=problems,
        )
    return Settings(
        source_rewrites=dict(rewrites),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        render_limits=limits,
        path=path,
    )


# The smallest value of each key (memory: what the worker itself needs).
_LIMIT_MINIMUMS = {"seconds": 0.0, "output_mib": 0.0, "memory_mib": float(MIN_MEMORY_MIB)}


def _render_limits(doc: YamlDocument, data: object, problems: list[Problem]) -> RenderLimits:
    """``render_limits: {seconds, output_mib, memory_mib}``, each optional."""
    default = RenderLimits()
    allowed = ", ".join(_LIMIT_MINIMUMS)
    if data is None:
        return default
    if not isinstance(data, dict):
        problems.append(doc.problem(("render_limits",), f"must be a mapping with keys {allowed}"))
        return default
    values: dict[str, float] = {}
    for key, value in data.items():
        minimum = _LIMIT_MINIMUMS.get(key)
        if minimum is None:
            problems.append(
                doc.problem(("render_limits", key), f"unknown key '{key}'; allowed: {allowed}")
            )
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < minimum
            or value <= 0
        ):
            least = f"at least {minimum:g}" if minimum else "more than 0"
            problems.append(doc.problem(("render_limits", key), f"must be a number, {least}"))
        else:
            values[key] = value
    return RenderLimits(
        seconds=values.get("seconds", default.seconds),
        output_bytes=int(values.get("output_mib", default.output_bytes / MIB) * MIB),
        memory_bytes=int(values.get("memory_mib", default.memory_bytes / MIB) * MIB),
    )
