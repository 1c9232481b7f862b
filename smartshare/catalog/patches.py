"""A region's own patches to an app's source: ``apps.<app>.patches`` in its profile.

Each entry is the path of a patch file next to the profile (``patches/laksa/
0001-fix-typo.patch``): inside the profile's folder (no ``..``, no absolute
path, no symbolic link leading out), a regular text file of at most
:data:`MAX_PATCH_BYTES`.  They are applied in the order given, after the
source is exported and before anything is rendered or built
(:mod:`smartshare.fetching.patching`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from smartshare.catalog.diagnostics import Problem, shown_value
from smartshare.catalog.load import LoadedFile
from smartshare.catalog.models import PATCHES_KEY
from smartshare.catalog.profile import RegionProfile
from smartshare.errors import InvalidInputError

MAX_PATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Patch:
    """A region patch, as the profile names it, with its content."""

    name: str  # as in the profile: patches/laksa/0001-fix-typo.patch
    content: bytes
    digest: str  # sha256:HEX


def patch_names(region: RegionProfile, app: str) -> list[str]:
    """The patches the profile gives ``app``, in order (as written in the profile)."""
    entry = region.apps.get(app)
    given = entry.get(PATCHES_KEY) if isinstance(entry, dict) else None
    return [str(name) for name in given] if isinstance(given, list) else []


def entry_problem(value: object) -> str | None:
    """Why a profile's ``patches`` value is not a list of paths, or None."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "'patches' is a list of patch files next to the profile"
    if len(set(value)) != len(value):
        return "'patches' names a file twice"
    return None


def read_patch(name: str, region_dir: Path) -> tuple[bytes, str]:
    """The bytes of the patch ``name`` (relative to ``region_dir``) and their sha256 digest.

    Raises UnsafePathError for a path leaving the folder, InvalidInputError
    for a missing, non-regular, oversized or non-text file.
    """
    from smartshare.catalog.assets import asset_path, read_file

    path = asset_path(f"file:{name}", region_dir)
    data = read_file(path, name, max_bytes=MAX_PATCH_BYTES, limit="the largest patch")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"patch {shown_value(name)} is not UTF-8 text") from None
    if b"\0" in data:
        raise InvalidInputError(f"patch {shown_value(name)} is not text (it holds NUL bytes)")
    if not data.strip():
        raise InvalidInputError(f"patch {shown_value(name)} is empty")
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def check_region_patches(*, region: LoadedFile[RegionProfile]) -> list[Problem]:
    """``validate``'s check of every ``apps.<app>.patches``: a list of text files that exist."""
    doc = region.doc
    region_dir = doc.path.resolve().parent
    problems: list[Problem] = []
    for app, entry in region.model.apps.items():
        if not isinstance(entry, dict) or PATCHES_KEY not in entry:
            continue
        loc: tuple[str | int, ...] = ("apps", app, PATCHES_KEY)
        problem = entry_problem(entry[PATCHES_KEY])
        if problem is not None:
            problems.append(doc.problem(loc, problem))
            continue
        for index, name in enumerate(patch_names(region.model, app)):
            try:
                read_patch(name, region_dir)
            except InvalidInputError as exc:
                problems.append(doc.problem((*loc, index), f"patch of '{app}': {exc.message}"))
    return problems
