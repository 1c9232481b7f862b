"""``deploy``: run adopted apps of a region on a target, and record what runs.

In order: the stack is built and checked in memory (:mod:`.request`); the
engine must answer (else nothing is written); the workspace's run lock is
taken; the images are looked up.  When the deploy file would be what the
lock records and every container runs that very configuration, healthy,
the deploy is up to date and the target's tool is not even started.
Otherwise: the tool is found, missing external images are pulled (through
the mirror rules), secret files and the deploy file are written and
checked, published ports are checked free, and the target brings the apps
up and waits for them; the lock records the result.

``--dry-run`` writes and checks the deploy file, says what would change,
and touches no container (nor secret file); it needs no engine.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.catalog.imagerefs import parse_image_reference
from smartshare.deploying.events import (
    DeployEvent,
    DeployEventSink,
    DeployPhase,
    DeployResult,
    ServiceReport,
)
from smartshare.deploying.labels import JOB
from smartshare.deploying.readiness import settled
from smartshare.deploying.request import DeployContext, prepare_deploy
from smartshare.deploying.secretfiles import Redactor, make_data_folders, owner_for
from smartshare.deploying.stack import StackContainer
from smartshare.deploying.target import DeployFile, ImageFacts, Observed, Target, target_for
from smartshare.errors import (
    DeployFailedError,
    EngineUnavailableError,
    InterruptedRunError,
    PullError,
    UsageError,
    WorkspaceError,
)
from smartshare.state import workspace as ws
from smartshare.state.lockfile import (
    DeployedApp,
    DeployedService,
    LockedDeployment,
    read_lock,
    write_lock,
)

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine

DEFAULT_TIMEOUT_S = 300.0


def deploy(
    *,
    apps: Sequence[str] = (),
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None = None,
    target: str | None = None,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    docker_host: str | None = None,
    on_event: DeployEventSink | None = None,
) -> DeployResult:
    """Deploy ``apps`` (every adopted app when empty) and what they require."""
    from smartshare.building.engine import connect

    def prepare() -> DeployContext:
        return prepare_deploy(
            apps=apps,
            region_file=region_file,
            workspace=workspace,
            catalog_root=catalog_root,
            target=target,
        )

    if target is not None:
        target_for(target, deploy_dir=ws.deploy_dir(workspace), docker_host=docker_host)
    ctx = prepare()
    chosen = target_for(ctx.target, deploy_dir=ws.deploy_dir(workspace), docker_host=docker_host)
    warnings = list(ctx.warnings)
    engine: DockerEngine | None = None
    if dry_run:
        try:
            engine = connect(docker_host=docker_host)
        except EngineUnavailableError as exc:
            warnings.append(f"{exc.message}: what runs now is unknown")
    else:
        # Before anything is written: no engine means nothing changes.
        engine = connect(docker_host=docker_host)
    try:
        with ws.run_lock(workspace):
            if read_lock(workspace) != ctx.lock:
                ctx = prepare()  # an adopt finished meanwhile
            run = _Deployment(ctx, chosen, engine, on_event or (lambda event: None), warnings)
            return run.dry_run() if dry_run else run.run(timeout=timeout)
    finally:
        if engine is not None:
            engine.close()


class _Deployment:
    def __init__(
        self,
        ctx: DeployContext,
        target: Target,
        engine: DockerEngine | None,
        on_event: DeployEventSink,
        warnings: list[str],
    ) -> None:
        self.ctx = ctx
        self.target = target
        self.engine = engine
        self.on_event = on_event
        self.warnings = warnings
        self.stack = ctx.stack
        self.keys = [
            c.key for name in ctx.names if (a := self.stack.app(name)) for c in a.containers
        ]
        self.file = DeployFile(text=b"", fingerprints={})
        self.digest = ""
        self.redact = Redactor(self.stack.secret_values())

    def _render(self, images: Mapping[str, ImageFacts]) -> None:
        self.file = self.target.render(self.stack, key=self.ctx.key, images=images)
        self.digest = ws.file_digest(self.file.text)

    # -- the two ways through ---------------------------------------------

    def run(self, *, timeout: float) -> DeployResult:
        assert self.engine is not None
        engine = self.engine
        self._refuse_other_target()
        self.warnings += self.target.check_engine(engine, dry_run=False)
        images = self._images(engine)
        self._render(images)
        now = self.target.observe(engine, self.ctx.project)
        if self._up_to_date(now, images):
            self._write_secrets(engine, images)  # one deleted by hand comes back
            self._write_file()
            for key in self.keys:
                self.on_event(DeployEvent(service=key, phase=DeployPhase.UP_TO_DATE))
            return self._result(now, dict.fromkeys(self.keys, "up to date"), up_to_date=True)
        self.target.find_tool()
        pulled = self._pull(engine, images)
        if pulled:
            images.update(pulled)
            self._render(images)
        self._write_secrets(engine, images)
        self._write_file()
        self._check_file()
        before = self.target.observe(engine, self.ctx.project, inspect=True)
        self._check_ports(before)
        self._record_start()
        try:
            deployed = self.target.apply(
                engine,
                self.stack,
                keys=self.keys,
                before=before,
                fingerprints=self.file.fingerprints,
                deadline=time.monotonic() + timeout,
                on_event=self.on_event,
                redact=self.redact,
            )
        except KeyboardInterrupt:
            raise InterruptedRunError(
                "interrupted while the stack was starting; nothing is recorded as deployed",
                hint="run the same deploy again to finish the job",
            ) from None
        self._record(deployed)
        after = self.target.observe(engine, self.ctx.project, inspect=True)
        return self._result(after, _actions(self.keys, before, after), up_to_date=False)

    def dry_run(self) -> DeployResult:
        previous = self.ctx.lock.deployment
        if previous is not None and previous.target != self.target.name:
            self.warnings.append(self._other_target_message(previous.target, previous.project))
        self.warnings += self.target.check_engine(self.engine, dry_run=True)
        self._render(self._images(self.engine, strict=False) if self.engine else {})
        self._write_file()
        self._check_file()
        if self.engine is None:
            return self._result({}, dict.fromkeys(self.keys, "unknown (no engine)"), dry=True)
        now = self.target.observe(self.engine, self.ctx.project)
        actions = {}
        for key in self.keys:
            container = self.stack.container(key)
            assert container is not None
            actions[key] = _planned(container, now.get(key), self.file.fingerprints[key])
        return self._result(now, actions, dry=True)

    # -- steps ------------------------------------------------------------

    def _images(self, engine: DockerEngine, *, strict: bool = True) -> dict[str, ImageFacts]:
        """What the engine says of each image present (``Config.User``...), by reference.

        The app's own images must be there (adopt built them; ``strict``); an
        external image that is missing is left out, to be pulled.
        """
        images: dict[str, ImageFacts] = {}
        for container in self.stack.containers():
            if container.image in images:
                continue
            described = engine.inspect_image(container.image)
            if described is None:
                if container.external is None and strict:
                    raise UsageError(
                        f"the image of '{container.app}' ({container.image[:19]}) is no longer "
                        "in the Docker engine",
                        hint=f"adopt '{container.app}' again: it builds missing images",
                    )
                continue
            images[container.image] = _facts(described)
        return images

    def _pull(
        self, engine: DockerEngine, present: Mapping[str, ImageFacts]
    ) -> dict[str, ImageFacts]:
        pulled: dict[str, ImageFacts] = {}
        for container in self.stack.containers():
            if container.image in present or container.image in pulled:
                continue
            written = container.external or container.image
            normal = str(parse_image_reference(written))
            original = written if normal == written else f"{written} ({normal})"
            rewritten = container.image
            via = f" (rewritten by a mirror rule to {rewritten})" if rewritten != normal else ""
            self.on_event(DeployEvent(service=container.key, phase=DeployPhase.PULLING))
            try:
                engine.pull(rewritten)
            except PullError as exc:
                raise PullError(
                    f"the external image {original} of '{container.key}'{via} cannot be "
                    f"pulled: {exc.message}",
                    hint="check the image_mirrors rules (settings file and region profile) and "
                    "that the mirror holds this image",
                ) from None
            described = engine.inspect_image(rewritten)
            if described is None:
                raise PullError(f"pulling {rewritten} left no such image in the engine")
            pulled[rewritten] = _facts(described)
        return pulled

    def _write_secrets(self, engine: DockerEngine, images: Mapping[str, ImageFacts]) -> None:
        _make_dir(self.target.deploy_dir)
        self.target.store_secrets(engine, self.stack, images)
        users = {
            c.key: images[c.image].user if c.image in images else None
            for c in self.stack.containers()
        }
        make_data_folders(self.stack, {key: owner_for(user) for key, user in users.items()})

    def _write_file(self) -> None:
        from smartshare.state.safefs import atomic_write

        path = self.target.file_path
        _make_dir(path.parent)
        try:
            if path.read_bytes() == self.file.text:
                return
        except OSError:
            pass
        atomic_write(path, self.file.text, mode=0o644)

    def _check_file(self) -> None:
        warning = self.target.check_file(self.ctx.project)
        if warning:
            self.warnings.append(warning)

    def _up_to_date(self, now: Mapping[str, Observed], images: Mapping[str, ImageFacts]) -> bool:
        deployment = self.ctx.lock.deployment
        if (
            deployment is None
            or deployment.file_digest != self.digest
            or deployment.target != self.target.name
            or deployment.project != self.ctx.project
        ):
            return False
        if any(c.image not in images for c in self.stack.containers()):
            return False  # an external image to pull
        recorded = {
            key: service
            for app in deployment.apps.values()
            for key, service in app.services.items()
        }
        for key in self.keys:
            seen, container = now.get(key), self.stack.container(key)
            if seen is None or container is None or key not in recorded:
                return False
            if seen.fingerprint != self.file.fingerprints[key]:
                return False
            if seen.config_hash != recorded[key].config_hash:
                return False
            if not settled(container, seen):
                return False
        return True

    def _refuse_other_target(self) -> None:
        """A stack runs on one target at a time: both would publish the same ports."""
        previous = self.ctx.lock.deployment
        if previous is not None and previous.target != self.target.name:
            raise UsageError(
                self._other_target_message(previous.target, previous.project),
                hint=f"smartshare down --workspace {self.ctx.workspace}, then deploy again",
            )

    def _other_target_message(self, target: str, project: str) -> str:
        return (
            f"the region's stack runs on {target} (project '{project}'): take it down "
            f"before deploying it on {self.target.name}"
        )

    def _check_ports(self, before: Mapping[str, Observed]) -> None:
        """Every port to publish must be free on the host, or already ours."""
        from smartshare.building.enginesocket import socket_path

        if socket_path(self.target.docker_host) is None:
            return  # a remote engine: its host's ports are not ours to try
        ours = {address for seen in before.values() for address in seen.published}
        for key in self.keys:
            container = self.stack.container(key)
            if container is None or container.published is None:
                continue
            host = self.stack.bind_address
            port = container.published.host_port
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if any(a.endswith(f":{port}") for a in ours):
                continue
            if not _port_free(host, port):
                raise DeployFailedError(
                    f"deploy failed: port {shown}, published by service '{key}' of app "
                    f"'{container.app}', is already taken on the host",
                    hint="stop what uses it, or give the app another port in the region "
                    f"profile (deploy.ports: {{{container.app}: PORT}})",
                )

    def _record_start(self) -> None:
        lock = self.ctx.lock
        previous = lock.deployment
        if previous is not None and previous.apps and previous.project != self.ctx.project:
            stop = (
                f"docker stack rm {previous.project}"
                if previous.target == "swarm"
                else f"docker compose -p {previous.project} down"
            )
            self.warnings.append(
                f"the stack was deployed before as project '{previous.project}', which "
                f"still runs: stop it with '{stop}'"
            )
        lock.deployment = LockedDeployment(
            target=self.target.name,
            project=self.ctx.project,
            file=str(self.target.file_path.relative_to(self.ctx.workspace)),
            file_digest=None,
            deployed_at=previous.deployed_at if previous else None,
            apps=dict(previous.apps) if previous and previous.project == self.ctx.project else {},
        )
        write_lock(self.ctx.workspace, lock)

    def _record(self, deployed: Mapping[str, DeployedService]) -> None:
        lock = self.ctx.lock
        deployment = lock.deployment
        assert deployment is not None
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        for name in self.ctx.names:
            app = self.stack.app(name)
            if app is None:
                continue
            deployment.apps[name] = DeployedApp(
                public_port=app.public_port,
                deployed_at=stamp,
                services={c.key: deployed[c.key] for c in app.containers if c.key in deployed},
            )
        in_stack = {a.name for a in self.stack.apps}
        deployment.apps = {n: a for n, a in deployment.apps.items() if n in in_stack}
        deployment.file_digest = self.digest
        deployment.deployed_at = stamp
        write_lock(self.ctx.workspace, lock)

    def _result(
        self,
        now: Mapping[str, Observed],
        actions: Mapping[str, str],
        *,
        up_to_date: bool = False,
        dry: bool = False,
    ) -> DeployResult:
        reports = []
        for key in self.keys:
            container = self.stack.container(key)
            assert container is not None
            seen = now.get(key)
            reports.append(
                ServiceReport(
                    app=container.app,
                    service=key,
                    kind=container.kind,
                    action=actions.get(key, ""),
                    state=_state(seen) if seen else "",
                    published=", ".join(seen.published) if seen else "",
                    image=container.external or container.image,
                )
            )
        in_stack = {c.key for c in self.stack.containers()}
        return DeployResult(
            region=self.stack.region,
            project=self.ctx.project,
            target=self.target.name,
            workspace=self.ctx.workspace,
            file=self.target.file_path,
            apps=list(self.ctx.names),
            dry_run=dry,
            up_to_date=up_to_date,
            services=reports,
            removed=sorted(k for k in now if k not in in_stack),
            warnings=self.warnings,
        )


def _facts(described: Mapping[str, Any]) -> ImageFacts:
    return ImageFacts(
        image_id=str(described.get("Id") or ""),
        user=str((described.get("Config") or {}).get("User") or ""),
        repo_digests=tuple(str(d) for d in described.get("RepoDigests") or ()),
    )


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create {path}: {exc.strerror or exc}") from None


def _state(seen: Observed) -> str:
    if seen.state == "exited":
        return f"exited ({seen.exit_code})" if seen.exit_code is not None else "exited"
    return f"{seen.state} ({seen.health})" if seen.health else seen.state


def _planned(container: StackContainer, seen: Observed | None, fingerprint: str) -> str:
    if seen is None:
        return "create"
    if seen.fingerprint != fingerprint:
        return "recreate"
    if container.kind == JOB:
        return "run again"
    return "unchanged" if seen.state == "running" else "start"


def _actions(
    keys: Collection[str], before: Mapping[str, Observed], after: Mapping[str, Observed]
) -> dict[str, str]:
    actions = {}
    for key in keys:
        old, new = before.get(key), after.get(key)
        if new is None:
            actions[key] = "missing"
        elif old is None:
            actions[key] = "created"
        elif old.container_id != new.container_id:
            actions[key] = "recreated"
        elif old.started_at != new.started_at:
            actions[key] = "started"
        else:
            actions[key] = "unchanged"
    return actions


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                return True  # not an address of this host: the engine will say so
            raise DeployFailedError(f"cannot check port {host}:{port}: {exc.strerror}") from None
    return True
