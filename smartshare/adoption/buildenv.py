"""What a region's build settings give each build: build arguments, network, and their record.

The profile's ``build`` section (:mod:`smartshare.catalog.buildsettings`)
becomes the proxy arguments Docker predefines (``HTTP_PROXY`` and ``http_proxy``
...), the package-index arguments a Dockerfile may declare (``PIP_INDEX_URL``
...) and the build's network mode.  A proxy given as a secret reference is
resolved here, before any work starts, like the apps' secrets.  Proxy
credentials reach the build and nothing else: the lock records the arguments
with ``***`` for them, and build logs and errors show them that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from smartshare.catalog.buildsettings import (
    INDEX_ARGS,
    PROXY_ARGS,
    SECRET_REFERENCE,
    BuildNetwork,
    BuildSettings,
    proxy_problem,
)
from smartshare.catalog.diagnostics import redact_userinfo
from smartshare.errors import InvalidInputError
from smartshare.rendering.values import resolve_secret


@dataclass(frozen=True)
class BuildEnvironment:
    """The region's part of every build of a run."""

    network: str | None = None  # docker-py's network_mode; None: the engine's default
    args: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold credentials
    hidden: tuple[str, ...] = field(default=(), repr=False)  # shown as *** wherever text goes

    def record(self) -> dict[str, str]:
        """The arguments as they may be written down and shown: credentials as ``***``."""
        return {
            name: self.redact(redact_userinfo(value) if "://" in value else value)
            for name, value in sorted(self.args.items())
            if not name.islower()  # http_proxy repeats HTTP_PROXY
        }

    def redact(self, text: str) -> str:
        """``text`` (a log line, a message) without the credentials these arguments hold."""
        for secret in self.hidden:
            text = text.replace(secret, "***")
        return text


def build_environment(settings: BuildSettings, *, base_dir: Path) -> BuildEnvironment:
    """The build arguments and network of ``settings`` (references resolved from ``base_dir``)."""
    args: dict[str, str] = {}
    hidden: list[str] = []
    proxy = settings.proxy
    for key, value in (("http", proxy.http), ("https", proxy.https)):
        if value is None:
            continue
        if SECRET_REFERENCE.match(value):
            value = resolve_secret(value, base_dir=base_dir, param=f"proxy.{key}", app="build")
            problem = _proxy_url_problem(value)
            if problem:
                raise InvalidInputError(
                    f"build.proxy.{key}: the value its reference gives {problem}",
                    hint="the reference must hold a proxy URL such as http://proxy.example:3128",
                )
        hidden += _credentials(value)
        for name in PROXY_ARGS[key]:
            args[name] = value
    if proxy.no_proxy:
        for name in PROXY_ARGS["no_proxy"]:
            args[name] = ",".join(proxy.no_proxy)
    indexes = settings.package_index
    for key, name in INDEX_ARGS.items():
        value = getattr(indexes, key)
        if value is not None:
            args[name] = value
    network = None if settings.network is BuildNetwork.DEFAULT else settings.network.value
    return BuildEnvironment(
        network=network,
        args=args,
        hidden=tuple(sorted(set(hidden), key=len, reverse=True)),
    )


def _proxy_url_problem(value: str) -> str | None:
    if SECRET_REFERENCE.match(value):
        return "is itself a reference"
    return proxy_problem(value)


def _credentials(url: str) -> list[str]:
    """What of a URL's ``user:password@`` must not be shown: all of it, and the password
    (or a user name given alone, which is then a token), never a user name beside a password."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    if not userinfo:
        return []
    user, colon, password = userinfo.partition(":")
    secret = password if colon else user
    return [part for part in {userinfo, secret, unquote(secret)} if part]
