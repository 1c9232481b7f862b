"""Drift: where the workspace differs from what its lock records, and the lock from the catalogue.

One definition for both of its readers: adoption's change detection decides
from it whether an app is to be synced again, and ``status`` reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from smartshare.catalog.rules import MAX_FILE_BYTES
from smartshare.state import workspace as ws

if TYPE_CHECKING:
    from smartshare.catalog.models import AppManifest
    from smartshare.state.lockfile import LockedApp, LockedRegion


class RecordedFile(Protocol):
    """A rendered file as the lock records it (or as a rendering would record it)."""

    @property
    def dest(self) -> str: ...
    @property
    def target(self) -> str: ...  # image | runtime
    @property
    def digest(self) -> str: ...


@dataclass(frozen=True)
class FileDrift:
    """A rendered file whose content on disk is not the recorded one."""

    dest: str
    target: str  # image | runtime
    missing: bool  # gone (or unreadable) rather than edited

    def describe(self) -> str:
        state = "is missing" if self.missing else "was edited by hand"
        return f"{self.target} file {self.dest} {state}"


def manifest_digest(app: AppManifest) -> str:
    """What the lock records of the manifest an app was adopted from."""
    return ws.json_digest(app.model_dump(mode="json", by_alias=True))


def region_digest(profile_text: str) -> str:
    """What the lock records of the region profile (an app's ``region_digest``, the region's)."""
    return ws.file_digest(profile_text.encode("utf-8"))


def file_drift(
    workspace: Path, app: str, files: Iterable[RecordedFile], *, key: bytes | None
) -> Iterator[FileDrift]:
    """The files of ``app`` whose content in ``workspace`` does not have the digest given.

    Runtime files are compared by their keyed digest (``key``: the
    workspace's key); lazily, so a caller may stop at the first.
    """
    runtime_dir = ws.runtime_dir(workspace, app)
    if not runtime_dir.is_dir():
        # A workspace of the old layout until the next adopt moves its files.
        runtime_dir = ws.legacy_runtime_dir(workspace, app)
    for recorded in files:
        runtime = recorded.target == "runtime"
        folder = runtime_dir if runtime else ws.src_dir(workspace, app)
        try:
            data = (folder / recorded.dest).read_bytes()
        except OSError:
            yield FileDrift(dest=recorded.dest, target=str(recorded.target), missing=True)
            continue
        if ws.file_digest(data, key=key if runtime else None) != recorded.digest:
            yield FileDrift(dest=recorded.dest, target=str(recorded.target), missing=False)


def manifest_drift(entry: LockedApp, current: AppManifest | None) -> str | None:
    """How the catalogue's manifest ``current`` differs from the one ``entry`` was adopted from."""
    if current is None:
        return "no longer in the catalogue"
    if current.version != entry.version:
        return f"catalogue has version {current.version}"
    if manifest_digest(current) != entry.manifest_digest:
        return "manifest changed in the catalogue (same version)"
    return None


def region_drift(region: LockedRegion) -> str | None:
    """How the region profile on disk differs from the one the lock records."""
    path = Path(region.file)
    try:
        # The lock may have been edited: never read a device, a FIFO or a huge file.
        if not path.exists():
            return f"region profile {region.file} is gone"
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return f"region profile {region.file} is not a profile file any more"
        current = ws.file_digest(path.read_bytes())
    except OSError:
        return f"region profile {region.file} is gone"
    if current != region.digest:
        return f"region profile {region.file} changed since adoption"
    return None
