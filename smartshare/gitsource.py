"""Fetch an app's source from git into a build context without ``.git``.

Each repository gets one bare mirror in the cache, keyed by a hash of its URL.
Only the requested ref is fetched, shallow, so a refresh that finds nothing new
costs one round trip.  The tree of the resolved commit is then written out by
git's own checkout through a throwaway index: the build context never contains
``.git`` (no history, no remote configuration, nothing a Dockerfile could leak
into an image).

Manifests are untrusted, so URLs are checked again here, git never prompts,
never runs unsafe transports, and credentials only travel in the environment of
the git process (``SMARTSHARE_GIT_TOKEN``), never in argv or a config file.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from smartshare.catalog.rules import git_url_problem, is_commit_id, is_local_url, ref_problem
from smartshare.errors import (
    GitError,
    PinnedCommitMismatchError,
    UnsafePathError,
    WorkspaceError,
)
from smartshare.giturl import redact_text, redact_url

TOKEN_ENV = "SMARTSHARE_GIT_TOKEN"  # noqa: S105 - the name of a variable, not a secret
USERNAME_ENV = "SMARTSHARE_GIT_USERNAME"
CACHE_DIR_ENV = "SMARTSHARE_CACHE_DIR"
DEFAULT_TOKEN_USERNAME = "oauth2"  # noqa: S105 - what GitLab/Gitea accept with a token
DEFAULT_TIMEOUT = 300.0

# Fetched refs live in their own namespace, hex-encoded, so that a tag "a" and
# a branch "a/b" never collide as files under refs/.
_REF_NAMESPACE = "refs/smartshare/"
# $GIT_DIR/info/attributes outranks the .gitattributes inside the tree: this
# keeps an untrusted repository from dropping files (export-ignore), rewriting
# them (export-subst, ident, eol) or invoking a filter driver from the user's
# config (filter=lfs) while it is exported.  The tree comes out byte for byte.
_FAITHFUL_ATTRIBUTES = (
    "* -export-ignore -export-subst -filter -text -crlf -eol -ident -working-tree-encoding\n"
)
_LOCK_POLL_SECONDS = 0.05
# Writing the files is nearly all the cost of an export; git's parallel
# checkout spreads it over the cores.  Capped: each worker is a process.
_CHECKOUT_WORKERS = max(1, min(os.cpu_count() or 1, 8))
# The export runs with none of the user's or the system's git settings: a
# core.symlinks=false, core.splitIndex (shared index files in the mirror),
# submodule.recurse or sparse checkout setting would change what is written.
_ISOLATED_CONFIG = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_PARAMETERS": "",
    "GIT_CONFIG_COUNT": "0",
}
# Modes as git records them (0644, 0755 for executables, folders 0755),
# whatever the caller's umask: git creates files with 0666/0777 & ~umask.
_EXPORT_UMASK = 0o022

_UNREACHABLE_HINT = (
    "check the URL and your network; for private repositories set SMARTSHARE_GIT_TOKEN "
    "(https) or load an SSH key into ssh-agent (ssh)"
)
_AUTH_HINT = (
    "the repository needs credentials: set SMARTSHARE_GIT_TOKEN (and SMARTSHARE_GIT_USERNAME "
    "if the forge wants another user name than 'oauth2') for https, or load an SSH key into "
    "ssh-agent for ssh"
)


@dataclass(frozen=True)
class ResolvedRef:
    """A ref resolved to a commit, available in the local mirror."""

    url: str  # redacted URL as the manifest names it (before any rewrite)
    ref: str
    commit: str  # 40-hex sha of the commit the ref points at (tags peeled)
    mirror: Path  # the bare mirror in the cache


@dataclass(frozen=True)
class FetchedSource:
    """The exported tree of a resolved ref."""

    path: Path  # the exported tree (no .git inside)
    url: str  # redacted
    ref: str
    commit: str


def default_cache_dir() -> Path:
    """``$SMARTSHARE_CACHE_DIR``, else ``$XDG_CACHE_HOME/smartshare``, else ``~/.cache/smartshare``.

    Git mirrors go into its ``git`` subfolder.
    """
    explicit = os.environ.get(CACHE_DIR_ENV, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "smartshare"
    return Path.home() / ".cache" / "smartshare"


def resolve_ref(
    *,
    url: str,
    ref: str,
    commit: str | None,
    cache_dir: Path,
    refresh: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    rewrites: Mapping[str, str] | None = None,
) -> ResolvedRef:
    """Bring ``ref`` of ``url`` into the cached mirror and resolve it to a commit.

    With ``refresh=False`` the mirror is used as it is when it already holds the
    ref (and, if ``commit`` is pinned, the ref is at that commit): no network.
    Otherwise the ref is fetched, force-updating a moved tag or rewound branch.

    Raises GitError when the URL is refused, the repository cannot be reached
    or the ref does not exist, and PinnedCommitMismatchError when ``commit`` is
    given and the ref points elsewhere.
    """
    shown = _check_url(url)
    _check_ref(ref, shown)
    expected = _check_pin(commit, ref, shown)
    remote = _effective_url(url, shown, rewrites)
    mirror = mirror_path(cache_dir=cache_dir, url=url)

    with _locked(mirror, timeout=timeout, shown=shown):
        _ensure_mirror(mirror, shown=shown)
        actual = None
        if not refresh:
            actual = _local_commit(mirror, ref, shown=shown, timeout=timeout)
            if expected is not None and actual != expected:
                # A stale cache must not turn into a false mismatch: look again.
                actual = None
        if actual is None:
            actual = _commit_if_current(
                mirror, remote=remote, url=url, ref=ref, shown=shown, timeout=timeout
            )
        if actual is None:
            _fetch(mirror, remote=remote, url=url, ref=ref, shown=shown, timeout=timeout)
            actual = _local_commit(mirror, ref, shown=shown, timeout=timeout)
        if actual is None:
            raise _ref_not_found(ref, shown)

    if expected is not None and actual != expected:
        raise PinnedCommitMismatchError(
            f"ref '{ref}' of {shown} points at commit {actual}, "
            f"but the manifest pins commit {expected}",
            hint=(
                "the tag was moved or the branch has advanced since the manifest was written; "
                "check with the publishing region which commit is right, then update "
                "'commit' in the manifest (or point 'ref' at the pinned commit)"
            ),
        )
    return ResolvedRef(url=shown, ref=ref, commit=actual, mirror=mirror)


def export_tree(
    *, resolved: ResolvedRef, dest: Path, timeout: float = DEFAULT_TIMEOUT
) -> FetchedSource:
    """Write the tree of ``resolved.commit`` into ``dest``, without ``.git``.

    ``dest`` must not exist or be an empty folder.  The tree is assembled in a
    hidden sibling and renamed into place, so a failure leaves ``dest`` as it
    was.  Executable bits and symlinks are reproduced as git stores them;
    submodules (gitlinks) become empty folders.  Files get the time of the
    export, as with ``git clone``.

    Raises UnsafePathError when the tree holds a path that must not be written
    (``..``, ``.git``, one path listed twice, a file that is also a folder).
    """
    if not is_commit_id(resolved.commit):
        raise GitError(
            f"'{resolved.commit}' is not a full commit id (ref '{resolved.ref}' of {resolved.url})",
            hint="resolve the ref with resolve_ref() first",
        )
    _check_dest(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    except OSError as exc:
        raise _workspace_error(f"cannot create {dest.parent}", exc) from exc
    try:
        tree = staging / "tree"
        tree.mkdir()
        _checkout(resolved, index=staging / "index", tree=tree, dest=dest, timeout=timeout)
        # Renaming onto an empty folder replaces it atomically on POSIX.
        tree.rename(dest)
    except OSError as exc:
        raise _workspace_error(f"cannot write the source tree into {dest}", exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchedSource(path=dest, url=resolved.url, ref=resolved.ref, commit=resolved.commit)


def fetch_source(
    *,
    url: str,
    ref: str,
    commit: str | None,
    dest: Path,
    cache_dir: Path,
    timeout: float = DEFAULT_TIMEOUT,
    rewrites: Mapping[str, str] | None = None,
) -> FetchedSource:
    """Resolve ``ref`` of ``url`` (checking the pin) and export its tree into ``dest``."""
    resolved = resolve_ref(
        url=url,
        ref=ref,
        commit=commit,
        cache_dir=cache_dir,
        timeout=timeout,
        rewrites=rewrites,
    )
    return export_tree(resolved=resolved, dest=dest, timeout=timeout)


def mirror_path(*, cache_dir: Path, url: str) -> Path:
    """Where the bare mirror of ``url`` lives: a readable name plus a hash of the URL."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-")[:40] or "repo"
    return cache_dir / "git" / f"{readable}-{digest}.git"


def rewrite_url(url: str, rewrites: Mapping[str, str] | None) -> str:
    """Apply the longest matching prefix rewrite (e.g. a region's local forge mirror)."""
    if not rewrites:
        return url
    matches = [prefix for prefix in rewrites if prefix and url.startswith(prefix)]
    if not matches:
        return url
    prefix = max(matches, key=len)
    return rewrites[prefix] + url[len(prefix) :]


# --- validation -------------------------------------------------------------


def _check_url(url: str) -> str:
    """Refuse what a manifest must not name; return the URL as it may be shown."""
    try:
        problem = git_url_problem(url)
        shown = _shown(url)
    except ValueError:  # urlsplit gives up on e.g. an unclosed IPv6 bracket
        raise GitError(
            "refusing the repository URL: it cannot be parsed",
            hint="fix 'source.repo' in the manifest",
        ) from None
    if problem is not None:
        raise GitError(
            f"refusing repository URL {shown!r}: {problem}",
            hint="fix 'source.repo' in the manifest",
        )
    return shown


def _shown(url: str) -> str:
    """``url`` without credentials, also for forms redact_url leaves alone."""
    shown = redact_url(url)
    head, at, rest = shown.partition("@")
    # "user:password@host:path" is refused, but must not be echoed either.
    if "://" not in shown and at and ":" in head and "/" not in head:
        return "***@" + rest
    return shown


def _check_ref(ref: str, shown: str) -> None:
    problem = ref_problem(ref)
    if problem is not None:
        raise GitError(
            f"refusing ref {ref!r} of {shown}: {problem}",
            hint="'source.ref' must name a tag or a branch, e.g. v1.2.0 or main",
        )


def _check_pin(commit: str | None, ref: str, shown: str) -> str | None:
    if commit is None:
        return None
    pin = commit.strip().lower()
    if not is_commit_id(pin):
        raise GitError(
            f"pinned commit {commit!r} for ref '{ref}' of {shown} is not a 40-hex commit id",
            hint="write the full commit id in 'source.commit' (git rev-parse <ref>^{commit})",
        )
    return pin


def _effective_url(url: str, shown: str, rewrites: Mapping[str, str] | None) -> str:
    remote = rewrite_url(url, rewrites)
    if remote != url:
        try:
            problem = git_url_problem(remote)
            rewritten = _shown(remote)
        except ValueError:
            problem, rewritten = "it cannot be parsed", "?"
        if problem is not None:
            raise GitError(
                f"refusing the rewritten URL for {shown} ({rewritten!r}): {problem}",
                hint="fix the URL rewrite in the configuration",
            )
    if is_local_url(remote) and not remote.startswith("file://") and not Path(remote).is_absolute():
        # git runs inside the mirror; a relative path means the caller's folder.
        remote = str(Path(remote).absolute())
    return remote


def _check_dest(dest: Path) -> None:
    try:
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise WorkspaceError(
                f"cannot export the source into {dest}: it exists and is not a folder",
                hint="remove it or choose another destination",
            )
        if dest.is_dir() and any(dest.iterdir()):
            raise WorkspaceError(
                f"cannot export the source into {dest}: the folder is not empty",
                hint="remove it or choose another destination",
            )
    except OSError as exc:
        raise _workspace_error(f"cannot inspect {dest}", exc) from exc


# --- the mirror ---------------------------------------------------------------


@contextmanager
def _locked(mirror: Path, *, timeout: float, shown: str) -> Iterator[None]:
    """Hold an exclusive lock on ``mirror`` (other threads and processes wait)."""
    lock_path = mirror.with_name(mirror.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _workspace_error(
            f"cannot use the git cache in {lock_path.parent}",
            exc,
            hint="set SMARTSHARE_CACHE_DIR to a writable folder",
        ) from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GitError(
                        f"timed out after {timeout:g} s waiting for another smartshare run "
                        f"that is fetching {shown}",
                        hint="try again when the other run has finished",
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        yield
    finally:
        # Closing the descriptor releases the lock, also if the process dies.
        os.close(fd)


def _ensure_mirror(mirror: Path, *, shown: str) -> None:
    """Create the bare mirror if it is missing or was left half-made."""
    if (mirror / "HEAD").is_file() and (mirror / "objects").is_dir():
        return
    try:
        if mirror.exists() or mirror.is_symlink():
            _remove(mirror)
        staging = Path(tempfile.mkdtemp(prefix=f".{mirror.name}.init-", dir=mirror.parent))
        try:
            _write_bare_repository(staging, shown=shown)
            staging.rename(mirror)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise _workspace_error(
            f"cannot create the git mirror for {shown} in {mirror.parent}",
            exc,
            hint="set SMARTSHARE_CACHE_DIR to a writable folder",
        ) from exc


def _write_bare_repository(path: Path, *, shown: str) -> None:
    """Lay out an empty bare repository (see gitrepository-layout).

    Not ``git init --bare``: it refuses to run while an inherited GIT_WORK_TREE
    is set (smartshare started from a git hook), which GitPython cannot unset;
    and the user's init templates (hooks) or a sha256 default object format
    have no place in a cache of sources pinned by sha1 commit ids.
    """
    for folder in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (path / folder).mkdir(parents=True, exist_ok=True)
    (path / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (path / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
        encoding="utf-8",
    )
    (path / "info" / "attributes").write_text(_FAITHFUL_ATTRIBUTES, encoding="utf-8")
    (path / "description").write_text(f"smartshare mirror of {shown}\n", encoding="utf-8")


def _local_ref(ref: str) -> str:
    encoded = ref.encode("utf-8").hex()
    if len(encoded) > 200:
        # A file name (loose ref) must stay under the usual 255-byte limit.
        encoded = "sha256-" + hashlib.sha256(ref.encode("utf-8")).hexdigest()
    return _REF_NAMESPACE + encoded


def _local_commit(mirror: Path, ref: str, *, shown: str, timeout: float) -> str | None:
    """The commit ``ref`` points at in the mirror, or None when the mirror lacks it."""
    local = _local_ref(ref)
    status, out, _err = _run_git(
        ["rev-parse", "--verify", "--quiet", local + "^{commit}"],
        git_dir=mirror,
        env=_base_env(),
        timeout=timeout,
        query=True,
    )
    if status == 0 and is_commit_id(out.strip()):
        return out.strip()
    status, _out, _err = _run_git(
        ["rev-parse", "--verify", "--quiet", local],
        git_dir=mirror,
        env=_base_env(),
        timeout=timeout,
        query=True,
    )
    if status == 0:
        raise GitError(
            f"ref '{ref}' of {shown} does not point at a commit",
            hint="'source.ref' must name a tag or a branch that points at a commit",
        )
    return None


# How git expands a short ref name, in order (refs.c: ref_rev_parse_rules); a
# fetch takes the first rule that names one of the remote's refs.
_REF_RULES = (
    "{}",
    "refs/{}",
    "refs/tags/{}",
    "refs/heads/{}",
    "refs/remotes/{}",
    "refs/remotes/{}/HEAD",
)


def _commit_if_current(
    mirror: Path, *, remote: str, url: str, ref: str, shown: str, timeout: float
) -> str | None:
    """The commit of the mirror's copy of ``ref``, if that copy is what the remote has now.

    A shallow fetch sends the whole tree of the commit again even when the
    mirror holds it, so asking first (``ls-remote``: the ref list only) is what
    makes a re-run fetch nothing.  Any doubt (no local copy, the remote not
    answering, a ref it does not list) means None: the fetch then runs, and
    reports failures as it always does.
    """
    local = _local_ref(ref)
    # The object the ref names (a tag object for an annotated tag) and its commit.
    status, out, _err = _run_git(
        ["rev-parse", local, local + "^{commit}"],
        git_dir=mirror,
        env=_base_env(),
        timeout=timeout,
        query=True,
    )
    lines = out.split()
    if status != 0 or len(lines) != 2 or not all(is_commit_id(line) for line in lines):
        return None
    have, commit = lines
    status, out, err = _run_git(
        ["ls-remote", "--", remote, ref],
        git_dir=mirror,
        env=_fetch_env(remote),
        timeout=timeout,
        query=True,
    )
    if status != 0 and err.startswith("Timeout:"):
        raise _timed_out(ref, shown, remote, url, timeout)  # a fetch would stall as long
    if status != 0:
        return None
    advertised = {}
    for line in out.splitlines():
        object_id, _, name = line.partition("\t")
        advertised[name.strip()] = object_id.strip()
    for rule in _REF_RULES:
        name = rule.format(ref)
        if name in advertised:
            return commit if advertised[name] == have else None
    return None


def _fetch(mirror: Path, *, remote: str, url: str, ref: str, shown: str, timeout: float) -> None:
    """Fetch only ``ref`` (depth 1), force-updating its local copy."""
    refspec = f"+{ref}:{_local_ref(ref)}"
    args = ["fetch", "--quiet", "--depth=1", "--no-tags", "--no-recurse-submodules"]
    status, _out, err = _run_git(
        [*args, "--", remote, refspec], git_dir=mirror, env=_fetch_env(remote), timeout=timeout
    )
    if status == 0:
        return
    via = f" (via {_shown(remote)})" if remote != url else ""
    if err.startswith("Timeout:"):
        # A killed fetch can leave git's own lock files behind: start afresh next time.
        shutil.rmtree(mirror, ignore_errors=True)
        raise _timed_out(ref, shown, remote, url, timeout)
    if "couldn't find remote ref" in err:
        raise _ref_not_found(ref, shown)
    reason = _reason(err, url, remote)
    raise GitError(
        f"cannot fetch ref '{ref}' from {shown}{via}: {reason}",
        hint=_AUTH_HINT if _looks_like_auth(err) else _UNREACHABLE_HINT,
    )


def _timed_out(ref: str, shown: str, remote: str, url: str, timeout: float) -> GitError:
    via = f" (via {_shown(remote)})" if remote != url else ""
    return GitError(
        f"fetching ref '{ref}' from {shown}{via} timed out after {timeout:g} s",
        hint="check your network, or raise the timeout for slow links",
    )


def _ref_not_found(ref: str, shown: str) -> GitError:
    return GitError(
        f"ref '{ref}' not found in {shown}",
        hint=(
            "'source.ref' must name an existing tag or branch of the repository; "
            "list them with: git ls-remote --tags --heads <repository>"
        ),
    )


def _looks_like_auth(err: str) -> bool:
    lowered = err.lower()
    return any(
        marker in lowered
        for marker in (
            "authentication failed",
            "could not read username",
            "could not read password",
            "permission denied",
            "http 401",
            "http 403",
            "error: 401",
            "error: 403",
        )
    )


# --- running git --------------------------------------------------------------


def _base_env() -> dict[str, str]:
    """Environment for every git call: never prompt, never hang on a dead link."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "30",
        # The manifest check already refuses other transports; this also covers
        # redirects and anything git would reach on its own.
        "GIT_ALLOW_PROTOCOL": os.environ.get("GIT_ALLOW_PROTOCOL") or "https:ssh:file",
    }
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _fetch_env(remote: str) -> dict[str, str]:
    """:func:`_base_env` plus the token as an HTTP header for https remotes.

    The header goes through GIT_CONFIG_* variables: it reaches git without
    appearing in argv (visible to every user in ps) or in any config file, and
    it is scoped to the remote's host so a redirect elsewhere does not carry it.
    """
    env = _base_env()
    token = os.environ.get(TOKEN_ENV, "")
    parts = urlsplit(remote)
    if not token or parts.scheme.lower() != "https" or not parts.hostname:
        return env
    username = os.environ.get(USERNAME_ENV) or DEFAULT_TOKEN_USERNAME
    basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    count = os.environ.get("GIT_CONFIG_COUNT", "")
    index = int(count) if count.isdigit() else 0
    env[f"GIT_CONFIG_KEY_{index}"] = f"http.https://{host}/.extraHeader"
    env[f"GIT_CONFIG_VALUE_{index}"] = f"Authorization: Basic {basic}"
    env["GIT_CONFIG_COUNT"] = str(index + 1)
    return env


def _run_git(
    args: Sequence[str],
    *,
    git_dir: Path,
    env: Mapping[str, str],
    timeout: float,
    umask: int = -1,
    query: bool = False,
) -> tuple[int, str, str]:
    """Run git on the repository ``git_dir``; return (status, stdout, stderr).

    A timeout kills git and its children.  The repository is named explicitly:
    run from a git hook, the inherited GIT_DIR (or object directory) would
    otherwise point git at another repository.  ``umask`` is set in the child
    only (-1: inherited): the process-wide one is shared with other threads.

    Fetches and exports go through GitPython.  A ``query`` (``rev-parse``,
    ``ls-remote``: it only reads) runs git directly, because importing
    GitPython costs more than a whole no-op run spends on git; the process is
    the same, with the same environment, timeout and kill.
    """
    git_dir = git_dir.absolute()
    # Inherited location variables would point git elsewhere: neutralise them.
    located = {
        "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_COMMON_DIR": str(git_dir),
        "GIT_NAMESPACE": "",
    }
    env = {
        **{name: value for name, value in located.items() if name in os.environ},
        **env,
        "GIT_DIR": str(git_dir),
    }
    cwd = git_dir if git_dir.is_dir() else git_dir.parent
    if query:
        return _run_query([f"--git-dir={git_dir}", *args], cwd=cwd, env=env, timeout=timeout)
    try:
        import git
    except ImportError as exc:  # GitPython refuses to import when no git binary is found
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    runner = git.Git(str(cwd))
    command = [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), f"--git-dir={git_dir}", *args]
    try:
        status, out, err = runner.execute(
            command,
            env=dict(env),
            kill_after_timeout=timeout,
            with_extended_output=True,
            with_exceptions=False,
            umask=umask,
        )
    except git.exc.GitCommandNotFound as exc:
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    stdout = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
    return int(status), stdout, str(err)


_NO_GIT_HINT = "install git (e.g. apt-get install git) or set GIT_PYTHON_GIT_EXECUTABLE"


def _run_query(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """:func:`_run_git` without GitPython, answering as GitPython's ``execute`` does."""
    executable = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    try:
        process = subprocess.Popen(
            [executable, *args],
            cwd=cwd,
            # As GitPython runs git: English messages, whatever the user's locale.
            env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so that a timeout also stops what git
            # started (ssh, a remote helper), which would hold the pipes open.
            start_new_session=True,
        )
    except OSError as exc:
        raise GitError("git is not available", hint=_NO_GIT_HINT) from exc
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return -9, "", f"Timeout: git {args[1]} did not complete in {timeout:g} s"
    except BaseException:  # Ctrl-C: do not leave git running behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _reason(err: str, *urls: str) -> str:
    """The telling line of git's stderr, without credentials."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    telling = next(
        (line for line in lines if line.startswith(("fatal:", "error:"))),
        lines[0] if lines else "git failed without saying why",
    )
    for prefix in ("fatal: ", "error: "):
        telling = telling.removeprefix(prefix)
    return _redact(telling, *urls)


def _redact(text: str, *urls: str) -> str:
    for url in urls:
        text = redact_text(text, url)
    token = os.environ.get(TOKEN_ENV, "")
    if token:
        username = os.environ.get(USERNAME_ENV) or DEFAULT_TOKEN_USERNAME
        basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
        text = text.replace(basic, "***").replace(token, "***")
    return text


def _workspace_error(what: str, exc: OSError, *, hint: str | None = None) -> WorkspaceError:
    return WorkspaceError(
        f"{what}: {exc.strerror or exc}",
        hint=hint or "check free disk space and the permissions of the folder",
    )


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


# --- writing the tree out -----------------------------------------------------

_MALFORMED_TREE_HINT = "the repository's tree is malformed; ask its publisher to fix it"


def _checkout(
    resolved: ResolvedRef, *, index: Path, tree: Path, dest: Path, timeout: float
) -> None:
    """Write the tree of ``resolved.commit`` into the empty folder ``tree``.

    git's own checkout writes the files, in C and in parallel, from a throwaway
    ``index``: the mirror stays bare, and an inherited GIT_INDEX_FILE (a git
    hook running smartshare) is never touched.  git refuses ``..`` and
    ``.git`` itself, creates every file with O_EXCL and never writes through a
    symlink; but reading a tree into an index silently keeps only one of two
    entries with one name, or of a file and a folder with one name, so the
    listing is checked first: such a tree is refused, not exported in part.
    """
    env = {
        **_base_env(),
        **_ISOLATED_CONFIG,
        "GIT_INDEX_FILE": str(index.absolute()),
        "GIT_WORK_TREE": str(tree.absolute()),
    }
    status, listing, err = _run_git(
        ["ls-tree", "-r", "-z", "--full-tree", resolved.commit],
        git_dir=resolved.mirror,
        env=env,
        timeout=timeout,
    )
    if status != 0:
        raise _export_error(resolved, err)
    _check_tree(listing)
    status, _out, err = _run_git(
        ["read-tree", resolved.commit], git_dir=resolved.mirror, env=env, timeout=timeout
    )
    if status != 0:
        if "invalid path" in err:
            # What git refuses beyond _check_tree, e.g. NTFS aliases of .git (git~1).
            raise UnsafePathError(
                f"refusing the tree of commit {resolved.commit} (ref '{resolved.ref}' of "
                f"{resolved.url}): {_reason(err, resolved.url)}",
                hint=_MALFORMED_TREE_HINT,
            )
        raise _export_error(resolved, err)
    status, _out, err = _run_git(
        ["-c", f"checkout.workers={_CHECKOUT_WORKERS}", "checkout-index", "--all"],
        git_dir=resolved.mirror,
        env=env,
        timeout=timeout,
        umask=_EXPORT_UMASK,
    )
    if status != 0:
        # git's wording cannot tell a full disk from a missing object reliably
        # (file names may hold any word): the hint names both causes.
        raise WorkspaceError(
            f"cannot write the tree of commit {resolved.commit} (ref '{resolved.ref}' of "
            f"{resolved.url}) into {dest}: {_reason(err, resolved.url)}",
            hint=(
                f"check free disk space and the permissions of {dest.parent}; if they are "
                f"fine, the cached mirror {resolved.mirror} may be damaged: delete it and "
                "run again to fetch the repository afresh"
            ),
        )


def _check_tree(listing: str) -> None:
    """Refuse a tree (``git ls-tree -r -z`` output) that cannot be written out as it is."""
    paths: set[str] = set()
    folders: set[str] = set()
    for record in listing.split("\0"):
        if not record:
            continue
        path = record.partition("\t")[2]
        for part in path.split("/"):
            if part in ("", ".", ".."):
                raise _refused(path, f"it holds the path component {part!r}")
            if part.lower() == ".git":
                raise _refused(path, "a '.git' file or folder never enters the source")
        if path in paths:
            raise _refused(path, "the tree lists that path twice")
        paths.add(path)
        parent = path.rpartition("/")[0]
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
    # A file or symlink that is also a folder: git would keep only one of the two,
    # and a symlink taken for a folder could lead a write out of the tree.
    clashes = paths & folders
    if clashes:
        raise _refused(min(clashes), "it is a file or symlink and also a folder")


def _refused(path: str, why: str) -> UnsafePathError:
    return UnsafePathError(f"refusing tree entry {path!r}: {why}", hint=_MALFORMED_TREE_HINT)


def _export_error(resolved: ResolvedRef, err: str) -> GitError:
    return GitError(
        f"cannot export commit {resolved.commit} (ref '{resolved.ref}' of "
        f"{resolved.url}): {_reason(err, resolved.url)}",
        hint=(
            f"the cached mirror {resolved.mirror} may be damaged: delete it and run "
            "again to fetch the repository afresh"
        ),
    )
