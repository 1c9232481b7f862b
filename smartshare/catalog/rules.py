"""The single validators: each rule about a value from a manifest lives here, once.

The models check manifests with these rules, and the code that acts on the
values (the template loader, :func:`smartshare.state.safefs.confined_path`,
fetching) checks them again with the same functions, because the values are
untrusted and may reach it by another way than a validated manifest.  Each
``*_problem`` function returns why a value is refused, or None.

Nothing here imports more than the standard library: fetching and the
settings use these rules without loading pydantic.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

# The largest manifest, profile or template file read (a catalogue file is a few KiB).
MAX_FILE_BYTES = 1024 * 1024
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
IMAGE_NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$"
SPDX_EXPRESSION = re.compile(
    r"^\(*\s*[A-Za-z0-9][A-Za-z0-9.+-]*\+?(\s+WITH\s+[A-Za-z0-9][A-Za-z0-9.-]*)?\s*\)*"
    r"(\s+(AND|OR)\s+\(*\s*[A-Za-z0-9][A-Za-z0-9.+-]*\+?"
    r"(\s+WITH\s+[A-Za-z0-9][A-Za-z0-9.-]*)?\s*\)*)*$"
)

_COMMIT = re.compile(COMMIT_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*|/.*)$")
_ALLOWED_SCHEMES = ("https", "ssh", "file")


# -- paths -----------------------------------------------------------------------


def relative_path_problem(value: str, *, folder: str = "its folder") -> str | None:
    """Why ``value`` is not a safe path relative to ``folder``, or None.

    Said of the spelling only: whether a symbolic link on the way leads out is
    for :func:`smartshare.state.safefs.confined_path` to find on the disk.
    ``.`` (the folder itself) passes; callers that need a file refuse it.
    """
    if not value or not value.strip():
        return "must not be empty"
    if "\\" in value or "\x00" in value:
        return "must use '/' separators and no NUL bytes"
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~"):
        return f"must be relative to {folder}, not absolute"
    if ".." in path.parts:
        return f"must stay inside {folder} ('..' is not allowed)"
    if path.parts and path.parts[0] == ".git":
        return "must not point into .git"
    return None


# -- git -------------------------------------------------------------------------


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a tag or branch name to fetch, or None.

    The rules of ``git check-ref-format``, and stricter: no leading ``-`` or
    ``+`` (git would read an option or a forced refspec) and no whitespace of
    any kind.
    """
    if not ref:
        return "the ref is empty"
    if ref.startswith(("-", "+")):
        return "a ref must not start with '-' or '+'"
    if any(ord(ch) < 32 or ch in _REF_FORBIDDEN or ch.isspace() for ch in ref):
        return "a ref must not contain whitespace, control characters or any of ~^:?*[\\"
    if ".." in ref or "@{" in ref or ref == "@":
        return "a ref must not contain '..' or '@{'"
    if ref.endswith("."):
        return "a ref must not end with '.'"
    for part in ref.split("/"):
        if not part:
            return "a ref must not start or end with '/' nor contain '//'"
        if part.startswith(".") or part.endswith(".lock"):
            return "no part of a ref may start with '.' or end with '.lock'"
    return None


def is_commit_id(value: str) -> bool:
    """A full sha1 commit id, lower case."""
    return _COMMIT.match(value) is not None


def git_url_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable git source, or None.

    Manifests come from another region: only transports that cannot run code
    are accepted (https, ssh, scp-like ``user@host:path``, and local paths or
    ``file://`` for local catalogues).
    """
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


# -- what a manifest declares -------------------------------------------------------


def version_problem(value: str) -> str | None:
    """Why ``value`` is not an app version (it becomes part of image tags), or None."""
    if not _VERSION.match(value):
        return "must be a version such as \"1.4.0\" (letters, digits, '.', '-', '+')"
    return None


def spdx_problem(value: str) -> str | None:
    """Why ``value`` is not an SPDX licence identifier or expression, or None."""
    if not SPDX_EXPRESSION.match(value):
        return f"'{value}' is not an SPDX identifier or expression"
    return None
