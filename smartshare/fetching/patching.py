"""A region's patches, applied to an exported source tree with ``git apply``.

git applies them, through :func:`.gitrunner.run_git`, in a throwaway index
beside the exported tree and with an object store of its own (the mirror's
objects are read as alternates and never written): no hook runs, no setting
of the user's or the system's is read, and git's own refusals stay on (a
path with ``..``, a path through a symbolic link, anything outside the tree:
never ``--unsafe-paths``).  Each patch applies whole or not at all.

An upgrade applies them three ways (``--3way``): a hunk that no longer
applies is merged with the new source using the blobs the patch was made
against (from the mirror, where the old commit is); what cannot be merged is
a conflict, left as git's conflict markers only when the caller asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartshare.catalog.patches import Patch
from smartshare.errors import GitError, PatchError
from smartshare.fetching.export import _EXPORT_UMASK, _ISOLATED_CONFIG
from smartshare.fetching.gitrunner import DEFAULT_TIMEOUT, base_env, git_reason, run_git
from smartshare.fetching.mirror import ResolvedRef

PATCH_HINT = (
    "refresh the patch against the app's new source (git diff in a checkout of it), "
    "or run the upgrade with --conflict markers and resolve the markers by hand"
)


@dataclass(frozen=True)
class PatchConflict:
    """A patch that left conflict markers (three-way apply)."""

    patch: str
    files: tuple[str, ...]


@dataclass
class PatchedTree:
    """What applying the patches gave: git's tree id of the result, and any conflicts."""

    tree_digest: str
    conflicts: list[PatchConflict] = field(default_factory=list)


def apply_patches(
    *,
    resolved: ResolvedRef,
    tree: Path,
    patches: Sequence[Patch],
    work: Path,
    three_way: bool = False,
    keep_conflicts: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> PatchedTree:
    """Apply ``patches`` in order to ``tree`` (the export of ``resolved.commit``).

    ``work`` is an empty private folder for git's index, objects and the
    patch files.  Raises PatchError naming the patch and git's reason (the
    file and the hunk's line) when one does not apply, or, three ways,
    conflicts and ``keep_conflicts`` is false: the tree is then in an
    unknown state and must be discarded.
    """
    if not patches:
        return PatchedTree(tree_digest=source_tree_digest(resolved, timeout=timeout))
    objects = work / "objects"
    objects.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {
        **base_env(),
        **_ISOLATED_CONFIG,
        "GIT_INDEX_FILE": str((work / "index").absolute()),
        "GIT_WORK_TREE": str(tree.absolute()),
        "GIT_OBJECT_DIRECTORY": str(objects.absolute()),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str((resolved.mirror / "objects").absolute()),
    }

    def git(*args: str) -> tuple[int, str, str]:
        return run_git(
            list(args),
            git_dir=resolved.mirror,
            env=env,
            timeout=timeout,
            umask=_EXPORT_UMASK,
            cwd=tree,  # git apply resolves the patch's paths from where it runs
        )

    def failed(what: str, err: str) -> GitError:
        return GitError(f"cannot {what} for {resolved.url}: {git_reason(err, resolved.url)}")

    for args in (("read-tree", resolved.commit), ("update-index", "-q", "--refresh")):
        status, _out, err = git(*args)
        if status not in (0, 1):  # --refresh says 1 when it refreshed something
            raise failed("prepare the source tree for the patches", err)
    conflicts: list[PatchConflict] = []
    for number, patch in enumerate(patches, start=1):
        path = work / f"{number:04d}.patch"
        path.write_bytes(patch.content)
        options = ["--3way"] if three_way else []
        status, _out, err = git(
            "apply", "--index", "--whitespace=nowarn", *options, str(path.absolute())
        )
        if status == 0:
            continue
        unmerged = _unmerged(git) if three_way else []
        if not unmerged:
            raise PatchError(
                f"patch {patch.name} does not apply to the source at {resolved.commit[:12]} "
                f"(ref '{resolved.ref}'): {_reasons(err, resolved.url)}",
                hint=PATCH_HINT if three_way else "refresh the patch against the app's source",
            )
        if not keep_conflicts:
            raise PatchError(
                f"patch {patch.name} conflicts with the new source at {resolved.commit[:12]} "
                f"in {', '.join(unmerged)} (three-way apply)",
                hint=PATCH_HINT,
            )
        conflicts.append(PatchConflict(patch=patch.name, files=tuple(unmerged)))
        # The files with their markers are what the tree holds now: later patches apply on them.
        status, _out, err = git("update-index", "--add", "--remove", "--", *unmerged)
        if status != 0:
            raise failed("record the conflicts", err)
    status, out, err = git("write-tree")
    if status != 0:
        raise failed("record the patched source tree", err)
    return PatchedTree(tree_digest=out.strip(), conflicts=conflicts)


def _unmerged(git: object) -> list[str]:
    """The paths the index holds unmerged (a three-way apply's conflicts)."""
    assert callable(git)
    status, out, _err = git("ls-files", "-u", "-z")
    if status != 0:
        return []
    paths = {record.partition("\t")[2] for record in out.split("\0") if record}
    return sorted(p for p in paths if p)


def _reasons(err: str, url: str) -> str:
    """git apply's ``error:`` lines (the hunk's file and line, the file), without credentials."""
    lines = [
        line.strip().removeprefix("error: ")
        for line in err.splitlines()
        if line.strip().startswith("error:")
    ]
    if not lines:
        return git_reason(err, url)
    return "; ".join(git_reason(f"error: {line}", url) for line in lines[:6])


def source_tree_digest(resolved: ResolvedRef, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """git's tree id of ``resolved.commit``: the identity of the unpatched source."""
    status, out, err = run_git(
        ["rev-parse", "--verify", "--end-of-options", f"{resolved.commit}^{{tree}}"],
        git_dir=resolved.mirror,
        env=base_env(),
        timeout=timeout,
        query=True,
    )
    if status != 0:
        raise GitError(
            f"cannot read the tree of commit {resolved.commit}: {git_reason(err, resolved.url)}"
        )
    return out.strip()


@dataclass(frozen=True)
class SourceChanges:
    """Which files of the source differ between two commits."""

    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


def source_changes(
    *, mirror: Path, old: str, new: str, timeout: float = DEFAULT_TIMEOUT
) -> SourceChanges | None:
    """The files ``new`` changes, adds and removes against ``old``; None when ``old`` is gone."""
    status, out, _err = run_git(
        ["diff", "--no-renames", "--name-status", "-z", "--end-of-options", old, new, "--"],
        git_dir=mirror,
        env={**base_env(), **_ISOLATED_CONFIG},
        timeout=timeout,
        query=True,
    )
    if status != 0:
        return None
    fields = out.split("\0")
    changed: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    for kind, name in zip(fields[0::2], fields[1::2], strict=False):
        {"A": added, "D": removed}.get(kind[:1], changed).append(name)
    return SourceChanges(tuple(changed), tuple(added), tuple(removed))
