"""Which git URLs a manifest may name, and how to show them without secrets.

Manifests come from another region and are untrusted: only transports that
cannot run code are accepted (https, ssh, scp-like ``user@host:path``, and
local paths or ``file://`` for local catalogues).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*|/.*)$")
_ALLOWED_SCHEMES = ("https", "ssh", "file")


def git_url_problem(url: str) -> str | None:
    """Return why ``url`` is not an acceptable git source, or None when it is."""
    if not url.strip():
        return "the repository URL is empty"
    if url != url.strip() or any(ord(ch) < 32 for ch in url):
        return "the repository URL contains whitespace or control characters"
    if url.startswith("-"):
        return "a repository URL must not start with '-' (it would be read as a git option)"
    if "::" in url.split("/", 1)[0]:
        return (
            f"transport '{url.split('::', 1)[0]}::' is not allowed: it can run commands; "
            "use https://, ssh://, git@host:path or a local path"
        )
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _ALLOWED_SCHEMES:
            return (
                f"scheme '{scheme}://' is not allowed; use https://, ssh://, git@host:path, "
                "or a local path / file:// for local catalogues"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            return f"not a valid URL ({exc})"
        if port is not None and not 0 < port < 65536:
            return "the port is out of range"
        if scheme != "file" and not parts.hostname:
            return "the repository URL has no host"
        if parts.password is not None or (scheme == "https" and parts.username):
            return (
                "credentials must not be written in the repository URL; "
                "give them through the environment (SMARTSHARE_GIT_TOKEN)"
            )
        return None
    if _SCP_LIKE.match(url):
        return None
    if ":" in url.split("/", 1)[0]:
        return (
            "not a recognised git URL; use https://, ssh://, git@host:path, "
            "or a local path / file:// for local catalogues"
        )
    return None  # a local path


def is_local_url(url: str) -> bool:
    """True for ``file://`` URLs and plain paths."""
    return url.startswith("file://") or ("://" not in url and not _SCP_LIKE.match(url))


def redact_url(url: str) -> str:
    """Hide any user-info (``user:token@``) in ``url`` so it can be shown or recorded."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Unparseable: hide everything between the scheme and the last '@'.
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}" if "@" in rest else url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """Replace every appearance of ``url`` (and its credentials) in ``text``."""
    redacted = redact_url(url)
    if redacted == url:
        return text
    text = text.replace(url, redacted)
    parts = urlsplit(url)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text
