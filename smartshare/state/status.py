"""``status``: what a workspace holds, and what has drifted since."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartshare.catalog.load import load_catalog
from smartshare.catalog.location import resolve_catalog_root
from smartshare.errors import CatalogNotFoundError, UsageError
from smartshare.state import workspace as ws
from smartshare.state.drift import file_drift, manifest_drift, region_drift
from smartshare.state.lockfile import LOCK_NAME, attention_note, read_lock


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
    deployed_at: str | None = None  # when deploy last brought it up; None: not deployed
    attention: str | None = None  # an upgrade left conflict markers: what waits

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
            "deployed": self.deployed_at is not None,
            "deployed_at": self.deployed_at,
            "needs_attention": self.attention is not None,
            "attention": self.attention,
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


def workspace_status(*, workspace: Path, catalog_root: Path | None = None) -> WorkspaceStatus:
    if not (workspace / LOCK_NAME).is_file():
        raise UsageError(
            f"{workspace} holds no adopted apps (no {LOCK_NAME})",
            hint="adopt apps first: smartshare adopt APP --region FILE --workspace DIR",
        )
    lock = read_lock(workspace)
    changed_region = region_drift(lock.region) if lock.region is not None else None
    root = catalog_root or (Path(lock.catalog) if lock.catalog else None)
    try:
        catalog = load_catalog(resolve_catalog_root(root))
    except CatalogNotFoundError:
        catalog = None
    key = ws.read_key(workspace)
    deployed = lock.deployment.apps if lock.deployment is not None else {}
    apps = []
    for name, entry in sorted(lock.apps.items()):
        drift = [d.describe() for d in file_drift(workspace, name, entry.files, key=key)]
        attention = attention_note(name, entry)
        if attention is not None:
            drift.insert(
                0, f"{attention}; resolve them, then 'smartshare upgrade {name} --resolved'"
            )
        if catalog is not None:
            loaded = catalog.apps.get(name)
            changed = manifest_drift(entry, loaded.model if loaded is not None else None)
            if changed is not None:
                drift.append(changed)
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
                deployed_at=deployed[name].deployed_at if name in deployed else None,
                attention=attention,
            )
        )
    return WorkspaceStatus(
        workspace=workspace,
        region=lock.region.name if lock.region else None,
        region_drift=[changed_region] if changed_region is not None else [],
        apps=apps,
    )
