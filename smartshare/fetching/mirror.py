"""The git mirror cache: a ref of a repository resolved to a commit, fetched only when it moved.

Each repository gets one bare mirror in the cache, keyed by a hash of its URL.
Only the requested ref is fetched, shallow; the remote is first asked for the
ref (``ls-remote``), so a re-run that finds nothing new fetches nothing.  Runs
and threads share a mirror under its lock (:mod:`smartshare.state.locking`).

Manifests are untrusted, so the URL and the ref are checked again here with
the catalogue's rules before git runs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from smartshare.catalog.rules import git_url_problem, is_commit_id, is_local_url, ref_problem
from smartshare.errors import GitError, PinnedCommitMismatchError
from smartshare.fetching.credentials import HostCredential, auth_hint, credential_for
from smartshare.fetching.gitrunner import (
    DEFAULT_TIMEOUT,
    base_env,
    fetch_env,
    git_reason,
    run_git,
    workspace_error,
)
from smartshare.fetching.urls import shown_url
from smartshare.state.locking import exclusive_lock

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

_UNREACHABLE_HINT = (
    "check the URL and your network; for a private repository give its host a token "
    "(git_credentials in the settings file, or SMARTSHARE_GIT_TOKEN with "
    "SMARTSHARE_GIT_TOKEN_HOST) or load an SSH key into ssh-agent (ssh)"
)

_REDIRECT_HINT = (
    "the server redirects elsewhere; with a token smartshare does not follow redirects "
    "(git would send the token on to the new address): name the address it redirects to, "
    "in the manifest or as a source rewrite in the settings file"
)


@dataclass(frozen=True)
class ResolvedRef:
    """A ref resolved to a commit, available in the local mirror."""

    url: str  # redacted URL as the manifest names it (before any rewrite)
    ref: str
    commit: str  # 40-hex sha of the commit the ref points at (tags peeled)
    mirror: Path  # the bare mirror in the cache


def resolve_ref(
    *,
    url: str,
    ref: str,
    commit: str | None,
    cache_dir: Path,
    timeout: float = DEFAULT_TIMEOUT,
    rewrites: Mapping[str, str] | None = None,
    credentials: Sequence[HostCredential] = (),
) -> ResolvedRef:
    """Bring ``ref`` of ``url`` into the cached mirror and resolve it to a commit.

    The remote is asked for the ref first; it is fetched only when the
    mirror's copy differs, force-updating a moved tag or rewound branch.
    ``credentials`` are the user's per-host tokens (:mod:`.credentials`),
    matched against the URL fetched, after ``rewrites``.

    Raises GitError when the URL is refused, the repository cannot be reached
    or the ref does not exist, and PinnedCommitMismatchError when ``commit`` is
    given and the ref points elsewhere.
    """
    shown = _check_url(url)
    _check_ref(ref, shown)
    expected = _check_pin(commit, ref, shown)
    remote = _effective_url(url, shown, rewrites)
    mirror = mirror_path(cache_dir=cache_dir, url=url)

    with _mirror_lock(mirror, timeout=timeout, shown=shown):
        _ensure_mirror(mirror, shown=shown)
        actual = _commit_if_current(
            mirror,
            remote=remote,
            url=url,
            ref=ref,
            shown=shown,
            timeout=timeout,
            credentials=credentials,
        )
        if actual is None:
            _fetch(
                mirror,
                remote=remote,
                url=url,
                ref=ref,
                shown=shown,
                timeout=timeout,
                credentials=credentials,
            )
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


def _check_url(url: str) -> str:
    """Refuse what a manifest must not name; return the URL as it may be shown."""
    try:
        problem = git_url_problem(url)
        shown = shown_url(url)
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
            rewritten = shown_url(remote)
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


def _mirror_lock(mirror: Path, *, timeout: float, shown: str) -> AbstractContextManager[None]:
    """An exclusive lock on ``mirror`` (other threads and processes wait up to ``timeout``)."""
    lock_path = mirror.with_name(mirror.name + ".lock")

    def unusable(exc: OSError) -> Exception:
        return workspace_error(
            f"cannot use the git cache in {lock_path.parent}",
            exc,
            hint="set SMARTSHARE_CACHE_DIR to a writable folder",
        )

    def busy() -> Exception:
        return GitError(
            f"timed out after {timeout:g} s waiting for another smartshare run "
            f"that is fetching {shown}",
            hint="try again when the other run has finished",
        )

    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unusable(exc) from exc
    return exclusive_lock(lock_path, wait=timeout, busy=busy, unusable=unusable)


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
        raise workspace_error(
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


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _local_ref(ref: str) -> str:
    encoded = ref.encode("utf-8").hex()
    if len(encoded) > 200:
        # A file name (loose ref) must stay under the usual 255-byte limit.
        encoded = "sha256-" + hashlib.sha256(ref.encode("utf-8")).hexdigest()
    return _REF_NAMESPACE + encoded


def _local_commit(mirror: Path, ref: str, *, shown: str, timeout: float) -> str | None:
    """The commit ``ref`` points at in the mirror, or None when the mirror lacks it."""
    local = _local_ref(ref)
    status, out, _err = run_git(
        ["rev-parse", "--verify", "--quiet", local + "^{commit}"],
        git_dir=mirror,
        env=base_env(),
        timeout=timeout,
        query=True,
    )
    if status == 0 and is_commit_id(out.strip()):
        return out.strip()
    status, _out, _err = run_git(
        ["rev-parse", "--verify", "--quiet", local],
        git_dir=mirror,
        env=base_env(),
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
    mirror: Path,
    *,
    remote: str,
    url: str,
    ref: str,
    shown: str,
    timeout: float,
    credentials: Sequence[HostCredential],
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
    status, out, _err = run_git(
        ["rev-parse", local, local + "^{commit}"],
        git_dir=mirror,
        env=base_env(),
        timeout=timeout,
        query=True,
    )
    lines = out.split()
    if status != 0 or len(lines) != 2 or not all(is_commit_id(line) for line in lines):
        return None
    have, commit = lines
    status, out, err = run_git(
        ["ls-remote", "--", remote, ref],
        git_dir=mirror,
        env=fetch_env(remote, credentials),
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


def _fetch(
    mirror: Path,
    *,
    remote: str,
    url: str,
    ref: str,
    shown: str,
    timeout: float,
    credentials: Sequence[HostCredential],
) -> None:
    """Fetch only ``ref`` (depth 1), force-updating its local copy."""
    refspec = f"+{ref}:{_local_ref(ref)}"
    args = ["fetch", "--quiet", "--depth=1", "--no-tags", "--no-recurse-submodules"]
    status, _out, err = run_git(
        [*args, "--", remote, refspec],
        git_dir=mirror,
        env=fetch_env(remote, credentials),
        timeout=timeout,
    )
    if status == 0:
        return
    via = f" (via {shown_url(remote)})" if remote != url else ""
    if err.startswith("Timeout:"):
        # A killed fetch can leave git's own lock files behind: start afresh next time.
        shutil.rmtree(mirror, ignore_errors=True)
        raise _timed_out(ref, shown, remote, url, timeout)
    if "couldn't find remote ref" in err:
        raise _ref_not_found(ref, shown)
    if _looks_like_auth(err):
        hint = auth_hint(remote, credentials)
    elif re.search(r"returned error: 30[12378]", err) and credential_for(remote, credentials):
        hint = _REDIRECT_HINT
    else:
        hint = _UNREACHABLE_HINT
    raise GitError(
        f"cannot fetch ref '{ref}' from {shown}{via}: {git_reason(err, url, remote)}", hint=hint
    )


def _timed_out(ref: str, shown: str, remote: str, url: str, timeout: float) -> GitError:
    via = f" (via {shown_url(remote)})" if remote != url else ""
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
