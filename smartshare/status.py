"""``status``: what a workspace holds, and what has drifted since."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartshare import workspace as ws
from smartshare.catalog.load import load_catalog, resolve_catalog_root
from smartshare.errors import CatalogNotFoundError, WorkspaceError
from smartshare.lockfile import LOCK_NAME, read_lock


@dataclass(frozen=True)
class AppStatus:
    app: str
    version: str
    commit: str
    images: list[str]
    digests: list[str]
    adopted_at: str
    built: bool
    drift: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "commit": self.commit,
            "images": self.images,
            "digests": self.digests,
            "adopted_at": self.adopted_at,
            "built": self.built,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class WorkspaceStatus:
    workspace: Path
    region: str | None
    region_drift: list[str]
    apps: list[AppStatus]

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "region": self.region,
            "region_drift": self.region_drift,
            "apps": [a.as_dict() for a in self.apps],
        }


def _file_digest(path: Path) -> str | None:
    try:
        return ws.file_digest(path.read_bytes())
    except OSError:
        return None


def workspace_status(*, workspace: Path, catalog_root: Path | None = None) -> WorkspaceStatus:
    if not (workspace / LOCK_NAME).is_file():
        raise WorkspaceError(
            f"{workspace} holds no adopted apps (no {LOCK_NAME})",
            hint="adopt apps first: smartshare adopt APP --region FILE --workspace DIR",
        )
    lock = read_lock(workspace)
    region_drift: list[str] = []
    if lock.region is not None:
        current = _file_digest(Path(lock.region.file))
        if current is None:
            region_drift.append(f"region profile {lock.region.file} is gone")
        elif current != lock.region.digest:
            region_drift.append(f"region profile {lock.region.file} changed since adoption")
    root = catalog_root or (Path(lock.catalog) if lock.catalog else None)
    try:
        catalog = load_catalog(resolve_catalog_root(root))
    except CatalogNotFoundError:
        catalog = None
    key = ws.read_key(workspace)
    apps = []
    for name, entry in sorted(lock.apps.items()):
        drift: list[str] = []
        for locked in entry.files:
            runtime = locked.target == "runtime"
            folder = ws.runtime_dir if runtime else ws.src_dir
            path = folder(workspace, name) / locked.dest
            try:
                data = path.read_bytes()
            except OSError:
                drift.append(f"{locked.target} file {locked.dest} is missing")
                continue
            if ws.file_digest(data, key=key if runtime else None) != locked.digest:
                drift.append(f"{locked.target} file {locked.dest} was edited by hand")
        if catalog is not None:
            loaded = catalog.apps.get(name)
            if loaded is None:
                drift.append("no longer in the catalogue")
            elif loaded.model.version != entry.version:
                drift.append(f"catalogue has version {loaded.model.version}")
            else:
                from smartshare.adopt import manifest_digest

                if manifest_digest(loaded.model) != entry.manifest_digest:
                    drift.append("manifest changed in the catalogue (same version)")
        apps.append(
            AppStatus(
                app=name,
                version=entry.version,
                commit=entry.source.commit,
                images=[t for i in entry.images for t in i.tags],
                digests=[i.digest for i in entry.images if i.digest],
                adopted_at=entry.adopted_at,
                built=entry.built,
                drift=drift,
            )
        )
    return WorkspaceStatus(
        workspace=workspace,
        region=lock.region.name if lock.region else None,
        region_drift=region_drift,
        apps=apps,
    )
