"""How a region's build servers reach the outside world (the profile's ``build``).

A region's build servers often reach only their own registry mirror and
package proxies.  The profile says which network the builds use, which HTTP
proxy they go through and which package indexes stand in for PyPI, npm and the
Go module proxy; the builds get them as the standard build arguments
(:data:`PROXY_ARGS`, :data:`INDEX_ARGS`).  Base images go through the image
mirrors of ``deploy.image_mirrors`` (see :mod:`.imagerefs`).

A proxy URL may carry ``user:password@``, or be a secret reference
(``env:NAME``, ``file:PATH``): Docker keeps the proxy arguments out of an
image's history, and smartshare shows and records them without the
credentials.  A package index cannot carry credentials: an argument the
Dockerfile declares is written into the image's history.

Only the standard library and pydantic: the region model uses it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

SECRET_REFERENCE = re.compile(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)\Z")
NO_PROXY_PATTERN = r"^[A-Za-z0-9.*:/\[\]_-]{1,255}$"
BUILD_PATTERN_HINTS = {
    NO_PROXY_PATTERN: "a host, .domain, IP address or CIDR (no spaces or commas)",
}

# The build arguments each setting becomes: Docker predefines the proxy ones (a
# Dockerfile need not declare them, and they stay out of the image's history).
PROXY_ARGS: dict[str, tuple[str, str]] = {
    "http": ("HTTP_PROXY", "http_proxy"),
    "https": ("HTTPS_PROXY", "https_proxy"),
    "no_proxy": ("NO_PROXY", "no_proxy"),
}
INDEX_ARGS: dict[str, str] = {
    "pip": "PIP_INDEX_URL",
    "npm": "NPM_CONFIG_REGISTRY",
    "go": "GOPROXY",
}

_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in value):
        return "must not hold spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a URL"
    if parts.scheme not in schemes or not parts.hostname:
        wanted = ", ".join(f"{s}://" for s in schemes)
        return f"must be a URL ({wanted}) with a host"
    return None


def proxy_problem(value: str) -> str | None:
    """Why ``value`` is neither a proxy URL nor a secret reference, or None."""
    if SECRET_REFERENCE.match(value):
        return None
    problem = _url_problem(value, _PROXY_SCHEMES)
    if problem is not None:
        return f"{problem} (or a reference env:NAME / file:PATH to one)"
    return None


def index_problem(value: str) -> str | None:
    """Why ``value`` cannot be a package index URL, or None."""
    problem = _url_problem(value, ("http", "https"))
    if problem is not None:
        return problem
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        return (
            "must not hold credentials: a build argument the Dockerfile declares is "
            "written into the image's history (let the index allow the build servers in)"
        )
    return None


class BuildNetwork(StrEnum):
    DEFAULT = "default"
    HOST = "host"
    NONE = "none"


class ProxySettings(_Model):
    http: str | None = Field(
        default=None,
        description="HTTP_PROXY / http_proxy: a URL (user:password@ allowed) or env:NAME",
    )
    https: str | None = Field(
        default=None,
        description="HTTPS_PROXY / https_proxy: a URL (user:password@ allowed) or env:NAME",
    )
    no_proxy: list[Annotated[str, Field(pattern=NO_PROXY_PATTERN)]] = Field(
        default_factory=list,
        description="NO_PROXY / no_proxy: hosts, .domains, addresses or CIDRs reached directly",
    )

    @field_validator("http", "https")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is not None:
            problem = proxy_problem(value)
            if problem:
                raise ValueError(problem)
        return value


class PackageIndexes(_Model):
    pip: str | None = Field(default=None, description="PIP_INDEX_URL, e.g. a PyPI mirror's /simple")
    npm: str | None = Field(default=None, description="NPM_CONFIG_REGISTRY: an npm registry")
    go: str | None = Field(default=None, description="GOPROXY: a Go module proxy")

    @field_validator("pip", "npm", "go")
    @classmethod
    def _index(cls, value: str | None) -> str | None:
        if value is not None:
            problem = index_problem(value)
            if problem:
                raise ValueError(problem)
        return value


class BuildSettings(_Model):
    """How the region's image builds reach the network."""

    network: BuildNetwork = Field(
        default=BuildNetwork.DEFAULT,
        description="The build containers' network: default (the engine's bridge), host or none",
    )
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    package_index: PackageIndexes = Field(default_factory=PackageIndexes)
