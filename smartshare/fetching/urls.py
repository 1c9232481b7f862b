"""Git URLs as they may be shown or recorded: without credentials.

Which URLs a manifest may name is a rule of the catalogue
(:func:`smartshare.catalog.rules.git_url_problem`); this module only hides
what must not be seen.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


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


def shown_url(url: str) -> str:
    """``url`` without credentials, also for forms :func:`redact_url` leaves alone."""
    shown = redact_url(url)
    head, at, rest = shown.partition("@")
    # "user:password@host:path" is refused, but must not be echoed either.
    if "://" not in shown and at and ":" in head and "/" not in head:
        return "***@" + rest
    return shown
