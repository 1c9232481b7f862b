"""The build context: checked before the engine is contacted, packed without ``.git``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from smartshare.catalog.rules import is_git_dir_name
from smartshare.errors import BuildError


def check_context(context_dir: Path, dockerfile: str) -> tuple[Path, str]:
    """Validate the context and Dockerfile; return the resolved context and the Dockerfile's
    path relative to it (POSIX), all before the engine is contacted."""
    if not context_dir.exists():
        raise BuildError(
            f"build context {context_dir} does not exist",
            hint="check the app's build context path in its manifest",
        )
    if not context_dir.is_dir():
        raise BuildError(
            f"build context {context_dir} is not a folder",
            hint="the build context must be a folder of the app's source",
        )
    context = context_dir.resolve()
    path = (context / dockerfile).resolve()
    if not path.is_relative_to(context):
        raise BuildError(
            f"Dockerfile {dockerfile} lies outside the build context {context_dir}",
            hint="give the Dockerfile as a path inside the build context",
        )
    relative = path.relative_to(context)
    if any(is_git_dir_name(part) for part in relative.parts):
        raise BuildError(
            f"Dockerfile {dockerfile} lies inside .git, which never enters a build context",
            hint="give a Dockerfile from the app's source tree",
        )
    if not path.is_file():
        raise BuildError(
            f"Dockerfile not found: {context_dir / dockerfile}",
            hint="check the app's dockerfile path in its manifest (relative to the build context)",
        )
    return context, relative.as_posix()


def _dockerignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore, read the way docker-py reads it."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_context(context: Path, dockerfile_rel: str, archive: Any) -> None:
    """Write the build context tar into ``archive``.

    Patterns cannot guarantee that ``.git`` stays out (a ``!.git/config`` line
    re-includes it), so it is dropped from the file list after matching.
    """
    from docker.utils.build import create_archive, exclude_paths

    try:
        files = exclude_paths(str(context), _dockerignore_patterns(context), dockerfile_rel)
        kept = sorted(f for f in files if ".git" not in PurePosixPath(f).parts)
        create_archive(root=str(context), files=kept, fileobj=archive, gzip=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(
            f"cannot pack the build context {context}: {exc}",
            hint="check that every file in the build context is readable",
        ) from exc
