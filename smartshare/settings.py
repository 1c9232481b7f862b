"""User settings: where sources are fetched from, with which credentials, where the git
cache lives, and what rendering a template may cost.

Read from ``$SMARTSHARE_CONFIG`` or ``$XDG_CONFIG_HOME/smartshare/config.yaml``
(``~/.config/smartshare/config.yaml``).  A region that mirrors the sharing
region's forge internally (or the bundled demo, which makes a local forge)
maps URL prefixes to the mirror here, without editing the manifests.  Git
tokens are given per host (:mod:`smartshare.fetching.credentials`); the file
names the variable holding each token, never the token.  The
machine's own image mirrors (``image_mirrors``, the format of a region
profile's ``deploy.image_mirrors``) are tried before the profile's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.imagerefs import MirrorRule, mirror_prefix_problem
from smartshare.catalog.rules import git_url_problem
from smartshare.catalog.yamlfile import YamlDocument, load_yaml
from smartshare.errors import InvalidInputError
from smartshare.fetching.credentials import (
    HostCredential,
    host_problem,
    normal_host,
    variable_problem,
)
from smartshare.rendering.limits import MIB, MIN_MEMORY_MIB, RenderLimits

if TYPE_CHECKING:
    from smartshare.catalog.profile import RegionProfile

CONFIG_ENV = "SMARTSHARE_CONFIG"


@dataclass(frozen=True)
class Settings:
    source_rewrites: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    git_credentials: tuple[HostCredential, ...] = ()
    render_limits: RenderLimits = field(default_factory=RenderLimits)
    image_mirrors: tuple[MirrorRule, ...] = ()
    path: Path | None = None


def image_mirror_rules(settings: Settings, region: RegionProfile) -> tuple[MirrorRule, ...]:
    """The image-mirror rules for ``region`` on this machine, in the order they are tried.

    This machine's own (the settings file's) come before the profile's
    ``deploy.image_mirrors``: among rules of equal length the first wins
    (:func:`smartshare.catalog.imagerefs.apply_mirrors`).  Deploy's external
    images and the base images of builds both go through these.
    """
    profile = (MirrorRule(source=m.source, target=m.target) for m in region.deploy.image_mirrors)
    return (*settings.image_mirrors, *profile)


def settings_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "smartshare" / "config.yaml"


def load_settings() -> Settings:
    path = settings_path()
    if not path.exists():
        return Settings()
    doc = load_yaml(path)  # a folder or a FIFO there is refused, not taken for no settings
    data = doc.data
    problems: list[Problem] = []
    allowed = {"source_rewrites", "cache_dir", "git_credentials", "render_limits", "image_mirrors"}
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
    credentials = _git_credentials(doc, data.get("git_credentials"), problems)
    limits = _render_limits(doc, data.get("render_limits"), problems)
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
        git_credentials=credentials,
        render_limits=limits,
        image_mirrors=mirrors,
        path=path,
    )


_CREDENTIAL_KEYS = ("host", "username", "token_env")


def _git_credentials(
    doc: YamlDocument, entries: Any, problems: list[Problem]
) -> tuple[HostCredential, ...]:
    """``git_credentials``: a list of ``{host, username (optional), token_env}``."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        problems.append(
            doc.problem(("git_credentials",), "must be a list of {host, username, token_env}")
        )
        return ()
    found = []
    for index, entry in enumerate(entries):
        where = ("git_credentials", index)
        if not isinstance(entry, dict):
            problems.append(doc.problem(where, "must be a mapping: host, username, token_env"))
            continue
        for key in entry:
            if key not in _CREDENTIAL_KEYS:
                problems.append(
                    doc.problem(
                        (*where, key),
                        f"unknown key '{key}'; allowed: {', '.join(_CREDENTIAL_KEYS)} "
                        "(the token itself stays in the environment: token_env names "
                        "its variable)",
                    )
                )
        host, token_env, username = (entry.get(k) for k in ("host", "token_env", "username"))
        bad = len(problems)
        if not isinstance(host, str) or host_problem(host):
            problems.append(
                doc.problem((*where, "host"), host_problem(str(host)) or "must be a host name")
            )
        if not isinstance(token_env, str) or variable_problem(token_env):
            problems.append(
                doc.problem(
                    (*where, "token_env"),
                    variable_problem(str(token_env)) or "must name an environment variable",
                )
            )
        if username is not None and (not isinstance(username, str) or not username.strip()):
            problems.append(doc.problem((*where, "username"), "must be a user name"))
        if len(problems) == bad:
            found.append(
                HostCredential(
                    host=normal_host(str(host)), token_env=str(token_env), username=username
                )
            )
    return tuple(found)


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
