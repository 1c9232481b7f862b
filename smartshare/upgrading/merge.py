"""Hand edits to rendered files, carried over an upgrade: three ways, with ``git merge-file``.

For each file the old adoption rendered (its baseline), the new version
renders, or the region's disk holds, the result is one of
:class:`FileResult`: the new rendering where nobody edited the file, the
hand edit where the new version did not change the file, a merge of the two
otherwise, and a conflict where they touch the same lines.  git merges,
through :func:`smartshare.fetching.gitrunner.run_git`, on copies in a private
scratch folder: runtime files hold secrets, so their contents never pass
through a message, only their names and results.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from smartshare.errors import GitError
from smartshare.fetching.gitrunner import DEFAULT_TIMEOUT, base_env, git_reason, run_git

# git merge-file's markers name the three sides by these labels.
LABELS = ("edited in the workspace", "adopted version", "new version")
_MARKERS = (b"<<<<<<< ", b">>>>>>> ")


class FileResult(StrEnum):
    UNCHANGED = "unchanged"  # the new version renders it as before; no hand edit lost
    UPDATED = "updated"  # the new rendering replaces the old one (no hand edit)
    MERGED = "merged"  # a hand edit and the new version's change merged (or the edit kept)
    CONFLICT = "conflict"  # both changed the same lines
    ADDED = "added"  # the new version renders a file the old one did not
    REMOVED = "removed"  # the new version no longer renders it


@dataclass(frozen=True)
class MergedFile:
    dest: str
    target: str  # image | runtime
    result: FileResult
    content: bytes | None  # what to write (None: removed)
    edited: bool  # the workspace's copy differed from the baseline


def merge_file(
    *,
    dest: str,
    target: str,
    base: bytes | None,
    ours: bytes | None,
    theirs: bytes | None,
    scratch: Path,
    git_dir: Path,
    timeout: float = DEFAULT_TIMEOUT,
) -> MergedFile:
    """Merge one file: ``base`` as rendered before, ``ours`` on disk, ``theirs`` rendered now.

    ``scratch`` is a private (0700) folder; ``git_dir`` any repository git
    may start in (merge-file reads nothing of it).
    """
    edited = ours is not None and base is not None and ours != base
    if theirs is None:
        return MergedFile(dest, target, FileResult.REMOVED, None, edited)
    if base is None:
        return MergedFile(dest, target, FileResult.ADDED, theirs, False)
    if ours is None or ours == base:  # no hand edit (or the file was deleted: render it again)
        result = FileResult.UNCHANGED if theirs == base else FileResult.UPDATED
        return MergedFile(dest, target, result, theirs, False)
    if theirs in (base, ours):  # only the hand edit changed it (or both alike)
        return MergedFile(dest, target, FileResult.MERGED, ours, True)
    merged, clean = _merge_file(
        ours=ours, base=base, theirs=theirs, scratch=scratch, git_dir=git_dir, timeout=timeout
    )
    result = FileResult.MERGED if clean else FileResult.CONFLICT
    return MergedFile(dest, target, result, merged, True)


def _merge_file(
    *, ours: bytes, base: bytes, theirs: bytes, scratch: Path, git_dir: Path, timeout: float
) -> tuple[bytes, bool]:
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [scratch / name for name in ("ours", "base", "theirs")]
    for path, data in zip(paths, (ours, base, theirs), strict=True):
        path.write_bytes(data)
        path.chmod(0o600)
    labels = [arg for label in LABELS for arg in ("-L", label)]
    try:
        # The result replaces "ours": nothing of the contents goes through git's output.
        status, _out, err = run_git(
            ["merge-file", "--quiet", *labels, *(str(p) for p in paths)],
            git_dir=git_dir,
            env=base_env(),
            timeout=timeout,
            query=True,
        )
        if status < 0 or status > 127:
            raise GitError(f"git merge-file failed: {git_reason(err)}")
        return paths[0].read_bytes(), status == 0
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def has_markers(data: bytes) -> bool:
    """Whether ``data`` still holds a conflict marker line."""
    return any(line.startswith(_MARKERS) for line in data.splitlines())
