"""User settings: where sources are fetched from, where the git cache lives.

Read from ``$SMARTSHARE_CONFIG`` or ``$XDG_CONFIG_HOME/smartshare/config.yaml``
(``~/.config/smartshare/config.yaml``).  A region that mirrors the sharing
region's forge internally (or the bundled demo, which makes a local forge)
maps URL prefixes to the mirror here, without editing the manifests.  The
machine's own image mirrors (``image_mirrors``, the format of a region
profile's ``deploy.image_mirrors``) are tried before the profile's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.imagerefs import MirrorRule, mirror_prefix_problem
from smartshare.catalog.rules import git_url_problem
from smartshare.catalog.yamlfile import YamlDocument, load_yaml
from smartshare.errors import InvalidInputError

CONFIG_ENV = "SMARTSHARE_CONFIG"


@dataclass(frozen=True)
class Settings:
    source_rewrites: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    image_mirrors: tuple[MirrorRule, ...] = ()
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
    problems: list[Problem] = []
    allowed = {"source_rewrites", "cache_dir", "image_mirrors"}
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
    mirrors = _image_mirrors(doc, data.get("image_mirrors"), problems)
    if problems:
        raise InvalidInputError(
            f"settings file {path} is not valid",
            hint=f"fix it, or point {CONFIG_ENV} at another file",
            problems=problems,
        )
    return Settings(
        source_rewrites=dict(rewrites),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
        image_mirrors=mirrors,
        path=path,
    )


def _image_mirrors(
    doc: YamlDocument, value: object, problems: list[Problem]
) -> tuple[MirrorRule, ...]:
    """``image_mirrors``: a list of ``{from: PREFIX, to: PREFIX}``, as in a region profile."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(doc.problem(("image_mirrors",), "must be a list of {from: ..., to: ...}"))
        return ()
    rules = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            problems.append(
                doc.problem(("image_mirrors", index), "must have exactly the keys 'from' and 'to'")
            )
            continue
        wrong = False
        for side in ("from", "to"):
            text = item[side]
            problem = mirror_prefix_problem(text) if isinstance(text, str) else "must be a prefix"
            if problem:
                problems.append(doc.problem(("image_mirrors", index, side), problem))
                wrong = True
        if not wrong:
            rules.append(MirrorRule(source=item["from"], target=item["to"]))
    return tuple(rules)
