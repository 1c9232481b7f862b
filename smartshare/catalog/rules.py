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
from functools import lru_cache
from urllib.parse import urlsplit

from smartshare.catalog.diagnostics import shown_value

# Patterns are written for JSON Schema too (``^...$``); Python checks them with
# fullmatch, because its ``$`` also matches before a trailing newline.
# The largest manifest, profile or template file read (a catalogue file is a few KiB).
MAX_FILE_BYTES = 1024 * 1024
# The largest asset a manifest may accept (a region's file for it): a logo or an icon, not a video.
MAX_ASSET_KB = 10 * 1024
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
IMAGE_NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
# What Docker accepts after the ':' of an image reference.
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# A version becomes the tag VERSION-REGION: the tag's characters, and room for
# "-" and a region name of up to 40 characters within the tag's 128.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,86}$"

_COMMIT = re.compile(COMMIT_PATTERN)
_IMAGE_TAG = re.compile(IMAGE_TAG_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*|/.*)$")
_CONTROL = re.compile(r"[\x00-\x1f]")
# Components of letters, digits, '_', '-' and '.', none starting with '.': a path
# every rule of relative_path_problem but the .git one accepts as it is.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
_ALLOWED_SCHEMES = ("https", "ssh", "file")


# -- paths -----------------------------------------------------------------------


def relative_path_problem(value: str, *, folder: str = "its folder") -> str | None:
    """Why ``value`` is not a safe path relative to ``folder``, or None.

    Said of the spelling only: whether a symbolic link on the way leads out is
    for :func:`smartshare.state.safefs.confined_path` to find on the disk.
    ``.`` (the folder itself) passes; callers that need a file refuse it.
    No component may be a name git reads as ``.git`` (:func:`is_git_dir_name`).
    """
    if _PLAIN_PATH.fullmatch(value) and "git" not in value.lower():
        return None  # the common case, cheaply: no '..', no '.git', nothing to refuse
    if not value or not value.strip():
        return "must not be empty"
    if "\\" in value or "\x00" in value:
        return "must use '/' separators and no NUL bytes"
    if value.startswith(("/", "~")):
        return f"must be relative to {folder}, not absolute"
    # The components as PurePosixPath has them, but for '' and '.' (harmless
    # here); split, not parsed: this runs for every path of every manifest.
    parts = value.split("/")
    if ".." in parts:
        return f"must stay inside {folder} ('..' is not allowed)"
    if any(is_git_dir_name(part) for part in parts):
        return "must not name a .git folder (or a name git reads as .git) anywhere in the path"
    return None


# Code points HFS+ ignores in file names, as git's is_hfs_dotgit lists them.
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def is_git_dir_name(name: str) -> bool:
    """Whether git would take the path component ``name`` for ``.git``.

    As git's own checks (is_ntfs_dotgit, is_hfs_dotgit) do: any case; trailing
    dots and spaces and an NTFS stream suffix (``.git::$INDEX_ALLOCATION``)
    dropped; the NTFS short name ``git~1``; the code points HFS+ ignores
    (``.g\u200cit``).  A ``.git`` below the top level still matters: git finds
    it from inside that folder, and reads its config (hooks, fsmonitor).
    """
    if name.isascii() and "git" not in name.lower():
        return False  # the common case, cheaply
    folded = name.translate(_HFS_IGNORED).split(":", 1)[0].rstrip(" .").lower()
    return folded in (".git", "git~1")


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
    return _COMMIT.fullmatch(value) is not None


def git_url_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable git source, or None.

    Manifests come from another region: only transports that cannot run code
    are accepted (https, ssh, scp-like ``user@host:path``, and local paths or
    ``file://`` for local catalogues).
    """
    if not url.strip():
        return "the repository URL is empty"
    if url != url.strip() or _CONTROL.search(url):
        return "the repository URL contains whitespace or control characters"
    if url.startswith("-"):
        return "a repository URL must not start with '-' (it would be read as a git option)"
    if "::" in url.split("/", 1)[0]:
        return (
            f"transport {shown_value(url.split('::', 1)[0] + '::')} is not allowed: it can run "
            "commands; "
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
    if _SCP_LIKE.fullmatch(url):
        return None
    if ":" in url.split("/", 1)[0]:
        return (
            "not a recognised git URL; use https://, ssh://, git@host:path, "
            "or a local path / file:// for local catalogues"
        )
    return None  # a local path


def is_local_url(url: str) -> bool:
    """True for ``file://`` URLs and plain paths."""
    return url.startswith("file://") or ("://" not in url and not _SCP_LIKE.fullmatch(url))


# -- what a manifest declares -------------------------------------------------------


def version_problem(value: str) -> str | None:
    """Why ``value`` is not an app version (it becomes part of image tags), or None."""
    if not _VERSION.fullmatch(value):
        return (
            "must be a version such as \"1.4.0\": letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 87 characters (it becomes part of "
            "the image tags, which allow nothing else: write 1.0.0+build5 as 1.0.0-build5)"
        )
    return None


def image_tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be the tag of an image reference (``NAME:TAG``), or None."""
    if not _IMAGE_TAG.fullmatch(tag):
        return (
            "is not a valid image tag (letters, digits, '_', '.' and '-', not starting "
            "with '.' or '-', at most 128 characters)"
        )
    return None


def spdx_problem(value: str) -> str | None:
    """Why ``value`` is not an SPDX licence identifier or expression, or None.

    Identifiers are checked against the SPDX License List (:mod:`.spdx_ids`);
    expressions combine them with AND, OR, WITH (an exception) and
    parentheses; ``+`` means "or later"; ``LicenseRef-...`` names a licence of
    one's own.
    """
    return _spdx_check(value)[0]


def spdx_warnings(value: str) -> tuple[str, ...]:
    """What to change in a valid SPDX expression: deprecated identifiers, their spelling."""
    return _spdx_check(value)[1]


# Longer, or nested deeper, is no licence anyone writes.
SPDX_MAX_LENGTH = 500
SPDX_MAX_NESTING = 10
_SPDX_TOKEN = re.compile(r"\(|\)|[^\s()]+", re.ASCII)  # other spaces are no separators
_SPDX_REF = re.compile(r"(DocumentRef-[A-Za-z0-9.-]+:)?(LicenseRef|AdditionRef)-[A-Za-z0-9.-]+")


@lru_cache(maxsize=256)
def _spdx_check(value: str) -> tuple[str | None, tuple[str, ...]]:
    if not value.strip():
        return "the licence is empty: give an SPDX identifier such as MIT", ()
    if len(value) > SPDX_MAX_LENGTH:
        return f"the licence expression is longer than {SPDX_MAX_LENGTH} characters", ()
    depth = 0
    for char in value:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth > SPDX_MAX_NESTING:
            return f"the licence expression nests more than {SPDX_MAX_NESTING} parentheses", ()
    parser = _SpdxParser(_SPDX_TOKEN.findall(value))
    try:
        parser.expression()
        if parser.position < len(parser.tokens):
            token = parser.tokens[parser.position]
            parser.capitals_check(token)
            raise _SpdxError(f"{_quoted(token)} where AND, OR or WITH is expected")
    except _SpdxError as exc:
        if len(parser.tokens) == 1:
            return str(exc), ()
        return f"{_quoted(value)} is not a valid SPDX expression: {exc}", ()
    return None, tuple(parser.warnings)


class _SpdxError(Exception):
    pass


def _quoted(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class _SpdxParser:
    """expression := term (OR term)*; term := factor (AND factor)*;
    factor := '(' expression ')' | licence [WITH exception]."""

    def __init__(self, tokens: list[str]) -> None:
        from smartshare.catalog import spdx_ids

        self.ids = spdx_ids
        self.tokens = tokens
        self.position = 0
        self.warnings: list[str] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _SpdxError("it ends where a licence is expected")
        self.position += 1
        return token

    def expression(self) -> None:
        self.term()
        while self.peek() == "OR":
            self.take()
            self.term()

    def term(self) -> None:
        self.factor()
        while self.peek() == "AND":
            self.take()
            self.factor()

    def factor(self) -> None:
        word = self.take()
        if word == "(":
            self.expression()
            if self.take() != ")":
                raise _SpdxError("a '(' is not closed")
            return
        self.licence(word)
        if self.peek() == "WITH":
            self.take()
            self.exception(self.take())

    def operator_check(self, token: str) -> None:
        if token in ("AND", "OR", "WITH", ")"):
            raise _SpdxError(f"{_quoted(token)} where a licence is expected")
        self.capitals_check(token)

    def capitals_check(self, token: str) -> None:
        if token.upper() in ("AND", "OR", "WITH") and token != token.upper():
            raise _SpdxError(f"write the operator {_quoted(token)} in capitals: {token.upper()}")

    def licence(self, token: str) -> None:
        self.operator_check(token)
        if _SPDX_REF.fullmatch(token):
            if "AdditionRef-" in token:
                raise _SpdxError(f"{_quoted(token)} is an addition: it goes after WITH")
            return
        base = token
        canonical = self.canonical(token, self.ids.LICENSES)
        if canonical is None and token.endswith("+"):
            base = token[:-1]
            canonical = self.canonical(base, self.ids.LICENSES)
            canonical = canonical + "+" if canonical is not None else None
        if canonical is None:
            if self.canonical(token, self.ids.EXCEPTIONS) is not None:
                raise _SpdxError(f"{_quoted(token)} is an exception: write LICENCE WITH {token}")
            raise _SpdxError(
                f"{_quoted(token)} is not on the SPDX License List "
                f"{self.ids.LICENSE_LIST_VERSION}"
                f"{_closest(token, self.ids.LICENSES - self.ids.DEPRECATED_LICENSES)} "
                "(a licence of your own: LicenseRef-NAME)"
            )
        self.spelling(token, canonical)
        deprecated = self.canonical(canonical, self.ids.DEPRECATED_LICENSES) or (
            canonical.endswith("+") and self.canonical(canonical[:-1], self.ids.DEPRECATED_LICENSES)
        )
        if deprecated:
            self.warnings.append(f"{_quoted(canonical)} is deprecated{self.instead(canonical)}")

    def exception(self, token: str) -> None:
        self.operator_check(token)
        if _SPDX_REF.fullmatch(token) and "AdditionRef-" in token:
            return
        canonical = self.canonical(token, self.ids.EXCEPTIONS)
        if canonical is None:
            raise _SpdxError(
                f"{_quoted(token)} is not an exception on the SPDX License List"
                f"{_closest(token, self.ids.EXCEPTIONS)}"
            )
        self.spelling(token, canonical)
        if canonical in self.ids.DEPRECATED_EXCEPTIONS:
            self.warnings.append(f"exception {_quoted(canonical)} is deprecated")

    def canonical(self, token: str, known: frozenset[str]) -> str | None:
        if token in known:
            return token
        return _folded(known).get(token.lower())

    def spelling(self, token: str, canonical: str) -> None:
        if token != canonical:
            self.warnings.append(f"SPDX writes {_quoted(token)} as {_quoted(canonical)}")

    def instead(self, deprecated: str) -> str:
        stem = deprecated.removesuffix("+")
        later = f"{stem}-or-later"
        if deprecated.endswith("+") and later in self.ids.LICENSES:
            return f": use {later}"
        only = f"{stem}-only"
        if only in self.ids.LICENSES and later in self.ids.LICENSES:
            return f": use {only} or {later}"
        return ": see https://spdx.org/licenses/ for its replacement"


@lru_cache(maxsize=8)
def _folded(known: frozenset[str]) -> dict[str, str]:
    return {identifier.lower(): identifier for identifier in known}


def _closest(token: str, known: frozenset[str]) -> str:
    import difflib

    close = difflib.get_close_matches(token, sorted(known), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""
