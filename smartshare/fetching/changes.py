"""What changed in a catalogue's git repository since a ref, for ``validate --changed-since``.

Changed means anything ``git diff REF`` and ``git status`` would show under
the catalogue folder: files changed in the commits since REF, staged or not,
deleted, and new files git does not ignore.  The manifests as they were at
REF are read too: an app that was renamed or deleted is a changed app under
its old name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smartshare.errors import GitError, UsageError
from smartshare.fetching.gitrunner import base_env, find_repository, git_reason, run_git

TIMEOUT = 120.0
_HINT = (
    "--changed-since needs the catalogue's git repository and a commit of it "
    "(a branch, tag or commit id); without it, validate the whole catalogue"
)


@dataclass(frozen=True)
class Changes:
    """Files changed since ``commit``, as paths relative to the catalogue folder."""

    commit: str
    paths: tuple[str, ...]
    # What the changed (and deleted) manifests held at the commit, by path.
    old_manifests: dict[str, bytes]


def changes_since(folder: Path, ref: str, *, manifest_suffixes: tuple[str, ...]) -> Changes:
    """The files under ``folder`` changed since ``ref``.

    Raises UsageError with the reason when ``folder`` is in no git working
    tree or ``ref`` names no commit of its repository.
    """
    if not ref or ref.startswith("-") or any(ord(c) < 32 for c in ref):
        raise UsageError(f"--changed-since: {ref!r} is not a git ref", hint=_HINT)
    folder = folder.resolve()
    try:
        git_dir, top, commit = find_repository(
            folder, revision=f"{ref}^{{commit}}", timeout=TIMEOUT
        )
    except GitError as exc:
        raise UsageError(
            f"--changed-since: the catalogue {folder} is not in a git repository ({exc.message})",
            hint=_HINT,
        ) from None
    top = top.resolve()
    inside = folder.relative_to(top).as_posix() if folder != top else ""
    prefix = f"{inside}/" if inside else ""
    env = base_env()

    def git(*args: str, stdin: str | None = None, encoding: str = "utf-8") -> tuple[int, str, str]:
        return run_git(
            list(args),
            git_dir=git_dir,
            env=env,
            timeout=TIMEOUT,
            query=True,
            work_tree=top,
            stdin=stdin,
            encoding=encoding,
        )

    if commit is None:
        raise UsageError(
            f"--changed-since: '{ref}' is not a commit of the repository at {top}", hint=_HINT
        )
    pathspec = [f":(top){inside}"] if inside else [":(top)"]
    status, changed, err = git(
        "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", commit, "--", *pathspec
    )
    if status != 0:
        raise GitError(f"git diff against {commit[:12]} failed: {git_reason(err)}")
    status, untracked, err = git(
        "ls-files", "-z", "--others", "--exclude-standard", "--full-name", "--", *pathspec
    )
    if status != 0:
        raise GitError(f"git ls-files failed: {git_reason(err)}")
    paths = sorted(
        {
            name.removeprefix(prefix)
            for name in (*changed.split("\0"), *untracked.split("\0"))
            if name and name.startswith(prefix)
        }
    )
    manifests = [
        p
        for p in paths
        if p.startswith("manifests/") and p.endswith(manifest_suffixes) and "\n" not in p
    ]
    old = _old(git, commit, prefix, manifests)
    return Changes(commit=commit, paths=tuple(paths), old_manifests=old)


def _old(
    git: Callable[..., tuple[int, str, str]], commit: str, prefix: str, manifests: list[str]
) -> dict[str, bytes]:
    """What ``manifests`` held at ``commit`` (those that existed then), in one git process."""
    if not manifests:
        return {}
    request = "".join(f"{commit}:{prefix}{path}\n" for path in manifests)
    status, out, _err = git("cat-file", "--batch", stdin=request, encoding="latin-1")
    if status != 0:
        return {}
    raw = out.encode("latin-1")
    found: dict[str, bytes] = {}
    position = 0
    for path in manifests:
        end = raw.find(b"\n", position)
        if end < 0:
            break
        header = raw[position:end].split(b" ")
        position = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue  # missing (a new file), or not a file
        size = int(header[2])
        found[path] = raw[position : position + size]
        position += size + 1
    return found
