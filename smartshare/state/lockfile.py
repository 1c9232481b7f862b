"""``WORKSPACE/smartshare.lock``: what was adopted, exactly, and nothing secret.

The lock records only what succeeded.  It is rewritten atomically after each
app finishes, so an interrupted run leaves it consistent, and the next run
carries on from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartshare.errors import WorkspaceError

LOCK_NAME = "smartshare.lock"
LOCK_VERSION = 1


class _LockModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LockedSource(_LockModel):
    url: str  # redacted
    ref: str
    commit: str


class LockedFile(_LockModel):
    dest: str
    target: str  # image | runtime
    # sha256 of image files; for runtime files (which may hold secrets) an
    # HMAC keyed by the workspace's own key, so the lock is no password oracle.
    digest: str


class LockedImage(_LockModel):
    name: str
    image_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    digest: str | None = None  # registry digest, after --push
    pushed: list[str] = Field(default_factory=list)


class RenderInputs(_LockModel):
    """What the rendered files were made from, to skip rendering when nothing changed."""

    # HMAC (workspace key) of the render context, secrets included, and the
    # template specs and files below: equal digests mean equal renderings.
    digest: str
    # Every template file the rendering read or looked for: name -> sha256 (None: missing).
    templates: dict[str, str | None]


class LockedApp(_LockModel):
    version: str
    manifest_digest: str
    source: LockedSource
    values: dict[str, Any]  # secrets as their references
    files: list[LockedFile]
    build_key: str
    built: bool
    images: list[LockedImage]
    adopted_at: str
    smartshare_version: str
    render_inputs: RenderInputs | None = None
    # The digest of the region profile the files are rendered for (as LockedRegion's):
    # a profile changed since then means adopting again before deploying.
    region_digest: str | None = None


class LockedRegion(_LockModel):
    name: str
    title: str
    code: str
    file: str
    digest: str


class DeployedService(_LockModel):
    """A service or job as deployed: what it runs and the configuration it was created with."""

    kind: str  # service | job
    image: str  # the reference in the deploy file (an image id, or an external image)
    image_id: str | None = None  # what the engine ran
    config_hash: str | None = None  # the target's own fingerprint (compose's config-hash label)


class DeployedApp(_LockModel):
    public_port: int | None = None
    deployed_at: str
    services: dict[str, DeployedService] = Field(default_factory=dict)  # by stack name


class LockedDeployment(_LockModel):
    """What ``deploy`` last ran for the region, on which target."""

    target: str  # compose | swarm
    project: str
    file: str  # relative to the workspace
    # Digest of the deploy file of the last complete deploy; None while one is
    # under way or after one failed (the next deploy then runs in full).
    file_digest: str | None = None
    deployed_at: str | None = None
    apps: dict[str, DeployedApp] = Field(default_factory=dict)


class Lock(_LockModel):
    lock_version: int = LOCK_VERSION
    region: LockedRegion | None = None
    catalog: str | None = None
    apps: dict[str, LockedApp] = Field(default_factory=dict)
    deployment: LockedDeployment | None = None


def read_lock(workspace: Path) -> Lock:
    path = workspace / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return Lock.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise WorkspaceError(
            f"{path} is not a smartshare lock file ({str(exc).splitlines()[0]})",
            hint="move it away and run adopt again with --force to rebuild it",
        ) from None


def write_lock(workspace: Path, lock: Lock) -> None:
    from smartshare.state.safefs import atomic_write_json

    # A run that changed nothing leaves the lock as it was, mtime included.
    atomic_write_json(workspace / LOCK_NAME, lock.model_dump(mode="json"), unless_unchanged=True)
