"""``ps`` and ``down``: what runs of a deployed region, and taking it down.

``ps`` reads the lock and one listing of the project's containers (on Swarm:
its services and their tasks) from the engine, no tool is started: each
one's state, health, published address, and the image it runs against the
one deploy recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartshare.deploying.labels import JOB
from smartshare.deploying.target import Observed, target_for
from smartshare.errors import UsageError
from smartshare.state import workspace as ws
from smartshare.state.lockfile import LOCK_NAME, DeployedService, Lock, read_lock, write_lock


@dataclass(frozen=True)
class ServiceStatus:
    app: str
    service: str  # stack name
    kind: str
    state: str  # running, exited, ..., or "missing"
    health: str | None
    exit_code: int | None
    published: tuple[str, ...]
    image_id: str | None  # what runs
    deployed_image_id: str | None  # what deploy recorded

    @property
    def drift(self) -> str | None:
        """How this container differs from what deploy left, or None."""
        if self.state == "missing":
            return "no container"
        if self.deployed_image_id is None:
            return "not recorded by deploy"
        if self.image_id != self.deployed_image_id:
            return "runs another image than deployed"
        if self.kind == JOB:
            return (
                None if self.state == "exited" and self.exit_code == 0 else "job did not complete"
            )
        if self.state != "running":
            return "not running"
        if self.health == "unhealthy":
            return "unhealthy"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "service": self.service,
            "kind": self.kind,
            "state": self.state,
            "health": self.health,
            "exit_code": self.exit_code,
            "published": list(self.published),
            "image_id": self.image_id,
            "deployed_image_id": self.deployed_image_id,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class PsResult:
    workspace: Path
    project: str | None  # None: nothing deployed
    target: str | None
    deployed_at: str | None
    services: list[ServiceStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "project": self.project,
            "target": self.target,
            "deployed_at": self.deployed_at,
            "services": [s.as_dict() for s in self.services],
        }


@dataclass(frozen=True)
class DownResult:
    workspace: Path
    project: str | None  # None: nothing was deployed
    removed: list[str]
    volumes: bool
    target: str | None = None


def _lock(workspace: Path) -> Lock:
    if not (workspace / LOCK_NAME).is_file():
        raise UsageError(
            f"{workspace} holds no adopted apps (no {LOCK_NAME})",
            hint="adopt and deploy apps first: smartshare deploy --region FILE --workspace DIR",
        )
    return read_lock(workspace)


def ps(*, workspace: Path, docker_host: str | None = None) -> PsResult:
    """Each container of the deployed stack as it runs now."""
    from smartshare.building.engine import connect

    deployment = _lock(workspace).deployment
    if deployment is None:
        return PsResult(workspace=workspace, project=None, target=None, deployed_at=None)
    target = target_for(
        deployment.target, deploy_dir=ws.deploy_dir(workspace), docker_host=docker_host
    )
    with connect(docker_host=docker_host) as engine:
        observed = target.observe(engine, deployment.project)
    if not deployment.apps and not observed:  # taken down, its data kept
        return PsResult(workspace=workspace, project=None, target=None, deployed_at=None)
    recorded: dict[str, tuple[str, DeployedService]] = {
        key: (app, service)
        for app, entry in deployment.apps.items()
        for key, service in entry.services.items()
    }
    rows = [_row(key, app, service, observed.get(key)) for key, (app, service) in recorded.items()]
    for key, seen in sorted(observed.items()):
        if key not in recorded:
            rows.append(_row(key, seen.app or "?", None, seen))
    return PsResult(
        workspace=workspace,
        project=deployment.project,
        target=deployment.target,
        deployed_at=deployment.deployed_at,
        services=rows,
    )


def _row(
    key: str, app: str, recorded: DeployedService | None, seen: Observed | None
) -> ServiceStatus:
    return ServiceStatus(
        app=app,
        service=key,
        kind=(recorded.kind if recorded else None) or (seen.kind if seen else None) or "service",
        state=seen.state if seen else "missing",
        health=seen.health if seen else None,
        exit_code=seen.exit_code if seen else None,
        published=seen.published if seen else (),
        image_id=seen.image_id if seen else None,
        deployed_image_id=recorded.image_id if recorded else None,
    )


def down(*, workspace: Path, volumes: bool = False, docker_host: str | None = None) -> DownResult:
    """Stop and remove the deployed stack; its volumes too with ``volumes``."""
    from smartshare.building.engine import connect
    from smartshare.deploying.secretfiles import remove_secret_files

    lock = _lock(workspace)
    deployment = lock.deployment
    if deployment is None:
        return DownResult(workspace=workspace, project=None, removed=[], volumes=volumes)
    folder = ws.deploy_dir(workspace)
    target = target_for(deployment.target, deploy_dir=folder, docker_host=docker_host)
    target.find_tool()
    with connect(docker_host=docker_host) as engine, ws.run_lock(workspace):
        lock = read_lock(workspace)
        deployment = lock.deployment
        if deployment is None:
            return DownResult(workspace=workspace, project=None, removed=[], volumes=volumes)
        before = target.observe(engine, deployment.project)
        target.down(engine, deployment.project, volumes=volumes)
        remove_secret_files(folder)
        if volumes:
            lock.deployment = None
        else:
            # Its data volumes stay: the lock keeps the project (running no app), so
            # that a later `down --volumes` can still remove them.
            deployment.apps = {}
            deployment.file_digest = None
        write_lock(workspace, lock)
    return DownResult(
        workspace=workspace,
        project=deployment.project,
        removed=sorted(before),
        volumes=volumes,
        target=deployment.target,
    )
