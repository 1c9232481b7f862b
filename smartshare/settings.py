"""User settings: where sources are fetched from, where the git cache lives.

Read from ``$SMARTSHARE_CONFIG`` or ``$XDG_CONFIG_HOME/smartshare/config.yaml``
(``~/.config/smartshare/config.yaml``).  A region that mirrors the sharing
region's forge internally (or the bundled demo, which makes a local forge)
maps URL prefixes to the mirror here, without editing the manifests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smartshare.catalog.rules import git_url_problem
from smartshare.catalog.yamlfile import load_yaml
from smartshare.errors import InvalidInputError

CONFIG_ENV = "SMARTSHARE_CONFIG"


@dataclass(frozen=True)
class Settings:
    source_rewrites: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
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
    allowed = {"source_rewrites", "cache_dir"}
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
        loc = ("source_rewrites", prefix)
        if not prefix.strip() or any(ord(ch) < 32 or ch.isspace() for ch in prefix):
            message = "the URL prefix must not be empty nor hold whitespace or control characters"
            problems.append(doc.problem(loc, message, key=True))
        problem = git_url_problem(target)
        if problem:
            problems.append(doc.problem(loc, problem))
    cache_dir = data.get("cache_dir")
    if cache_dir is not None and (
        not isinstance(cache_dir, str) or not cache_dir.strip() or "\x00" in cache_dir
    ):
        problems.append(doc.problem(("cache_dir",), "must be a folder path"))
        cache_dir = None
    if problems:
        raise InvalidInputError(
            f"settings file {path} is not valid",
            hint=f"fix it, or point {CONFIG_ENV} at another file",
            problems=problems,
        )
    return Settings(
        source_rewrites=dict(rewrites),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        path=path,
    )
