"""Write the tree of a resolved commit out of the mirror: a build context without ``.git``.

git's own checkout writes the files, through a throwaway index: the build
context never contains ``.git`` (no history, no remote configuration, nothing
a Dockerfile could leak into an image), and a tree that cannot be written out
as it is (``..``, ``.git``, a path twice, a file that is also a folder) is
refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smartshare.catalog.rules import is_commit_id
from smartshare.errors import GitError, UnsafePathError, WorkspaceError
from smartshare.fetching.gitrunner import (
    DEFAULT_TIMEOUT,
    base_env,
    git_reason,
    run_git,
    workspace_error,
)
from smartshare.fetching.mirror import ResolvedRef

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

_MALFORMED_TREE_HINT = "the repository's tree is malformed; ask its publisher to fix it"


@dataclass(frozen=True)
class FetchedSource:
    """The exported tree of a resolved ref."""

    path: Path  # the exported tree (no .git inside)
    url: str  # redacted
    ref: str
    commit: str


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
        raise workspace_error(f"cannot create {dest.parent}", exc) from exc
    try:
        tree = staging / "tree"
        tree.mkdir()
        _checkout(resolved, index=staging / "index", tree=tree, dest=dest, timeout=timeout)
        # Renaming onto an empty folder replaces it atomically on POSIX.
        tree.rename(dest)
    except OSError as exc:
        raise workspace_error(f"cannot write the source tree into {dest}", exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchedSource(path=dest, url=resolved.url, ref=resolved.ref, commit=resolved.commit)


def read_text_file(
    *, resolved: ResolvedRef, path: str, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    """The text of the regular file ``path`` in ``resolved.commit``, without exporting the tree.

    None when the commit has no regular file there: nothing at all, a folder, a
    symbolic link (on the way or at the end: git reads tree entries as they
    are), or a submodule.  Bytes that are not UTF-8 come out replaced.
    """
    status, listing, err = run_git(
        ["ls-tree", "-z", resolved.commit, "--", path],
        git_dir=resolved.mirror,
        env=base_env(),
        timeout=timeout,
        query=True,
    )
    if status != 0:
        raise _export_error(resolved, err)
    meta, _, name = listing.split("\0", 1)[0].partition("\t")
    fields = meta.split()
    if name != path or len(fields) != 3 or fields[0] not in ("100644", "100755"):
        return None
    status, text, err = run_git(
        ["cat-file", "blob", fields[2]],
        git_dir=resolved.mirror,
        env=base_env(),
        timeout=timeout,
        query=True,
    )
    if status != 0:
        raise _export_error(resolved, err)
    return text


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
        raise workspace_error(f"cannot inspect {dest}", exc) from exc


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
        **base_env(),
        **_ISOLATED_CONFIG,
        "GIT_INDEX_FILE": str(index.absolute()),
        "GIT_WORK_TREE": str(tree.absolute()),
    }
    status, listing, err = run_git(
        ["ls-tree", "-r", "-z", "--full-tree", resolved.commit],
        git_dir=resolved.mirror,
        env=env,
        timeout=timeout,
    )
    if status != 0:
        raise _export_error(resolved, err)
    _check_tree(listing)
    status, _out, err = run_git(
        ["read-tree", resolved.commit], git_dir=resolved.mirror, env=env, timeout=timeout
    )
    if status != 0:
        if "invalid path" in err:
            # What git refuses beyond _check_tree, e.g. NTFS aliases of .git (git~1).
            raise UnsafePathError(
                f"refusing the tree of commit {resolved.commit} (ref '{resolved.ref}' of "
                f"{resolved.url}): {git_reason(err, resolved.url)}",
                hint=_MALFORMED_TREE_HINT,
            )
        raise _export_error(resolved, err)
    status, _out, err = run_git(
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
            f"{resolved.url}) into {dest}: {git_reason(err, resolved.url)}",
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
        f"{resolved.url}): {git_reason(err, resolved.url)}",
        hint=(
            f"the cached mirror {resolved.mirror} may be damaged: delete it and run "
            "again to fetch the repository afresh"
        ),
    )
