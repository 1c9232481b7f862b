"""The build context: checked before the engine is contacted, packed without ``.git``.

The context and the Dockerfile come from another region's manifest and source
tree.  Once resolved they must stay inside the app's source tree: they follow
the one rule for relative paths and no symbolic link on the way
(:func:`smartshare.state.safefs.confined_path`), so a ``ctx -> ..`` in the
tree cannot make the runtime folder or the workspace the build context.
Inside the context a symbolic link is packed as a link, never followed: the
engine sees the link, not what it points at.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from smartshare.catalog.rules import is_git_dir_name
from smartshare.errors import BuildError, UnsafePathError
from smartshare.state.safefs import confined_path

_TREE_HINT = (
    "the build context and the Dockerfile must be real folders and files of the app's "
    "source tree (no symbolic link on the way); ask the app's publisher to fix the manifest "
    "or the repository"
)
# .dockerignore only lists patterns; a larger one is not a .dockerignore.
_DOCKERIGNORE_MAX = 1 << 20


def check_context(source_dir: Path, context: str, dockerfile: str) -> tuple[Path, str]:
    """The build context folder ``context`` of the source tree ``source_dir``, and the path
    of ``dockerfile`` in it (POSIX); both checked before the engine is contacted.

    Raises UnsafePathError when either would leave the tree (``..``, an absolute
    path, ``.git``, a symbolic link on the way, the Dockerfile itself being a
    link), BuildError when one is missing.
    """
    if not source_dir.is_dir():
        raise BuildError(
            f"build context {source_dir} does not exist",
            hint="check the app's build context path in its manifest",
        )
    root = source_dir.resolve()
    if not [part for part in PurePosixPath(context).parts if part != "."] and context.strip():
        folder = root
    else:
        folder = _confined("build context", context, root, source_dir)
    if not folder.is_dir():
        shown = source_dir / context
        raise BuildError(
            f"build context {shown} {'is not a folder' if folder.exists() else 'does not exist'}",
            hint="check the app's build context path in its manifest",
        )
    path = _confined("Dockerfile", dockerfile, folder, source_dir / context)
    relative = PurePosixPath(path.relative_to(folder).as_posix())
    if any(is_git_dir_name(part) for part in relative.parts):
        raise UnsafePathError(
            f"Dockerfile {dockerfile} lies inside .git, which never enters a build context",
            hint="give a Dockerfile from the app's source tree",
        )
    if not path.is_file():
        raise BuildError(
            f"Dockerfile not found: {source_dir / context / dockerfile}",
            hint="check the app's dockerfile path in its manifest (relative to the build context)",
        )
    return folder, relative.as_posix()


def _confined(what: str, value: str, root: Path, shown_root: Path) -> Path:
    try:
        return confined_path(root, value)
    except UnsafePathError as exc:
        raise UnsafePathError(
            f"{what} '{value}' (in {shown_root}) is refused: {exc.message}", hint=_TREE_HINT
        ) from None


def _dockerignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore, read the way docker-py reads it."""
    path = context / ".dockerignore"
    if path.is_symlink():
        raise UnsafePathError(
            f".dockerignore of the build context {context} is a symbolic link; refusing to "
            "follow it",
            hint=_TREE_HINT,
        )
    if not path.is_file():
        return []
    if path.stat().st_size > _DOCKERIGNORE_MAX:
        raise BuildError(
            f".dockerignore of the build context {context} is larger than "
            f"{_DOCKERIGNORE_MAX // 1024} KiB",
            hint="a .dockerignore lists patterns, one a line",
        )
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pack_context(context: Path, dockerfile_rel: str, archive: Any) -> None:
    """Write the build context tar into ``archive`` (what the engine is sent).

    Patterns cannot guarantee that ``.git`` stays out (a ``!.git/config`` line
    re-includes it), so it is dropped from the file list after matching.
    Symbolic links are packed as links (docker-py's walk does not follow them).
    """
    from docker.utils.build import create_archive, exclude_paths

    try:
        files = exclude_paths(str(context), _dockerignore_patterns(context), dockerfile_rel)
        kept = sorted(
            f for f in files if not any(is_git_dir_name(p) for p in PurePosixPath(f).parts)
        )
        create_archive(root=str(context), files=kept, fileobj=archive, gzip=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(
            f"cannot pack the build context {context}: {exc}",
            hint="check that every file in the build context is readable",
        ) from exc
