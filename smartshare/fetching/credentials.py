"""Which git credentials may go to which host: only to hosts the user named for them.

A manifest names its source repository, and manifests are untrusted: a token
sent to whatever host a manifest names is a token given away.  So a token
goes only to a host the user configured for it, matched exactly (host and
port), against the URL actually fetched (after the settings' source
rewrites):

- ``git_credentials`` in the settings file: per host, the name of the
  environment variable that holds its token (and a user name);
- ``SMARTSHARE_GIT_TOKEN`` (with ``SMARTSHARE_GIT_USERNAME``) goes to the
  hosts listed in ``SMARTSHARE_GIT_TOKEN_HOST`` (comma-separated), and to no
  host at all without that list.

Credentials only travel over https, as an HTTP header (:mod:`.gitrunner`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

TOKEN_ENV = "SMARTSHARE_GIT_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN_HOST_ENV = "SMARTSHARE_GIT_TOKEN_HOST"  # noqa: S105
USERNAME_ENV = "SMARTSHARE_GIT_USERNAME"
DEFAULT_USERNAME = "oauth2"  # what GitLab and Gitea accept with a token

_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class HostCredential:
    """A token for one host: ``host`` is ``name[:port]``; the token is in ``token_env``."""

    host: str
    token_env: str
    username: str | None = None


def host_problem(text: str) -> str | None:
    """Why ``text`` is not a ``host[:port]`` as the settings file takes it, or None."""
    if not _HOST.match(text.strip().lower()):
        return "must be a host name with an optional port, e.g. git.example.go.id or host:8443"
    return None


def variable_problem(text: str) -> str | None:
    if not _VARIABLE.match(text):
        return "must name an environment variable (letters, digits and '_')"
    return None


def normal_host(text: str) -> str:
    """``host[:port]`` as compared: lowercase, without the default https port."""
    return text.strip().lower().removesuffix(":443")


def https_host(url: str) -> str | None:
    """The ``host[:port]`` an https URL is fetched from; None for any other URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return normal_host(f"{host}:{port}" if port else host)


def _env_token_hosts() -> set[str]:
    listed = os.environ.get(TOKEN_HOST_ENV, "")
    return {normal_host(host) for host in listed.split(",") if host.strip()}


def credential_for(url: str, configured: Sequence[HostCredential] = ()) -> tuple[str, str] | None:
    """``(username, token)`` for fetching ``url``, or None when nothing may be sent."""
    host = https_host(url)
    if host is None:
        return None
    for entry in configured:
        token = os.environ.get(entry.token_env, "")
        if normal_host(entry.host) == host and token:
            return entry.username or DEFAULT_USERNAME, token
    token = os.environ.get(TOKEN_ENV, "")
    if token and host in _env_token_hosts():
        return os.environ.get(USERNAME_ENV) or DEFAULT_USERNAME, token
    return None


def known_tokens(configured: Iterable[HostCredential] = ()) -> list[str]:
    """Every token smartshare could send (to redact them from what git prints)."""
    names = [TOKEN_ENV, *(entry.token_env for entry in configured)]
    return [token for token in (os.environ.get(name, "") for name in names) if token]


def auth_hint(url: str, configured: Sequence[HostCredential] = ()) -> str:
    """What to do when ``url`` asked for credentials that were not (or wrongly) sent."""
    host = https_host(url)
    if host is None:
        return "the repository needs credentials: load an SSH key into ssh-agent (ssh)"
    for entry in configured:
        if normal_host(entry.host) == host and not os.environ.get(entry.token_env):
            return (
                f"git_credentials in the settings file takes the token for {host} from "
                f"{entry.token_env}, which is not set: export it"
            )
    if any(normal_host(entry.host) == host for entry in configured):
        return f"the token configured for {host} was refused: check it and its user name"
    if os.environ.get(TOKEN_ENV):
        hosts = _env_token_hosts()
        if not hosts:
            return (
                f"{TOKEN_ENV} is set, but {TOKEN_HOST_ENV} is not, so the token goes to no "
                f"host: set {TOKEN_HOST_ENV}={host} to send it to this repository's host"
            )
        if host not in hosts:
            return (
                f"{TOKEN_ENV} goes only to {', '.join(sorted(hosts))} ({TOKEN_HOST_ENV}); "
                f"add {host} to send it to this repository's host"
            )
        return (
            f"the token in {TOKEN_ENV} was refused by {host}: check it (and "
            f"{USERNAME_ENV} if the forge wants another user name than '{DEFAULT_USERNAME}')"
        )
    return (
        f"the repository needs credentials: give a token for {host} under git_credentials "
        f"in the settings file, or set {TOKEN_ENV} and {TOKEN_HOST_ENV}={host}"
    )
