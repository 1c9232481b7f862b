"""The Docker Swarm target: ``stack.yaml``, brought up in order, watched until it converged.

``docker stack deploy`` starts every service at once and ignores
``depends_on``, so the services to change are sent in steps: those nothing
pending waits for first, each step only once the previous one is ready (its
jobs completed, its services running and healthy).  Only services whose
configuration changed (or that are not ready) are sent at all, so the
others are not even updated: a no-op deploy never reaches this module, and
a changed value updates only what uses it.  Jobs are ``replicated-job``
services made through the engine's API (:mod:`.swarm_jobs`); they run again
when their configuration changed or something waiting for them is sent.

While Swarm updates a service it is left to judge it: a new copy that fails
makes Swarm roll the service back (``failure_action: rollback``), and the
deploy then fails naming it, once the previous version runs again.  A service
created anew that fails, a job that exits non-zero, or the deadline fail the
deploy at once, with the service's last log lines, secrets redacted.  After
a deploy that succeeded, the swarm secrets no service uses any more (older
versions of changed values) are removed: only those smartshare made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.deploying.labels import JOB, LABEL_PROJECT
from smartshare.deploying.readiness import (
    LOG_LINES,
    READY_PHASES,
    Failure,
    Readiness,
    failed_error,
    settled,
    show_phases,
    timed_out,
)
from smartshare.deploying.swarm import (
    NAMESPACE_LABEL,
    SwarmDocument,
    dump_document,
    secret_labels,
    stack_document,
)
from smartshare.deploying.swarm_cli import (
    DockerCli,
    find_docker_cli,
    stack_config_problem,
    stack_deploy,
    stack_rm,
)
from smartshare.deploying.swarm_observe import observe_stack
from smartshare.deploying.target import DeployFile, ImageFacts, Observed, Target
from smartshare.errors import (
    DeployFailedError,
    ExternalError,
    InvalidInputError,
    ToolUnavailableError,
)
from smartshare.state.lockfile import DeployedService

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine
    from smartshare.deploying.events import DeployEventSink, DeployPhase
    from smartshare.deploying.stack import Stack

POLL_SECONDS = 0.5
_DOWN_TIMEOUT_S = 180
INIT_HINT = (
    "make this engine a one-node swarm with `docker swarm init` (with --advertise-addr "
    "ADDRESS when it has several addresses), or point DOCKER_HOST at a manager of the "
    "region's swarm"
)


class SwarmTarget(Target):
    name = "swarm"
    file_name = "stack.yaml"

    def __init__(self, *, deploy_dir: Path, docker_host: str | None) -> None:
        super().__init__(deploy_dir=deploy_dir, docker_host=docker_host)
        self._cli: DockerCli | None = None
        self._manager: bool | None = None  # None: not asked
        self._nodes: int | None = None
        self._dry_run = False
        self._document: SwarmDocument | None = None
        self._secret_ids: dict[str, str] = {}
        self._services: dict[str, dict[str, Any]] = {}  # as last observed, by stack name
        self._known: set[str] = set()  # tasks that existed before this deploy

    # -- before anything --------------------------------------------------

    def check_engine(self, engine: DockerEngine | None, *, dry_run: bool) -> list[str]:
        self._dry_run = dry_run
        if engine is None:
            return []
        swarm = engine.swarm_state()
        state = str(swarm.get("LocalNodeState") or "inactive")
        self._manager = state == "active" and bool(swarm.get("ControlAvailable"))
        if self._manager:
            self._nodes = int(swarm.get("Nodes") or 1)
            return []
        why = {
            "inactive": "is not part of a swarm",
            "active": "is a swarm worker, not a manager",
        }.get(state, f"is not a swarm manager (its swarm state is '{state}')")
        message = f"the Docker engine at {engine.endpoint} {why}: the swarm target needs a manager"
        if dry_run:
            return [f"{message}; what runs there is unknown ({INIT_HINT})"]
        raise ExternalError(message, hint=INIT_HINT)

    def render(self, stack: Stack, *, key: bytes, images: Mapping[str, ImageFacts]) -> DeployFile:
        self._document = stack_document(stack, key=key, images=images, nodes=self._nodes)
        return DeployFile(
            text=dump_document(self._document.document),
            fingerprints=self._document.fingerprints,
        )

    def find_tool(self) -> None:
        if self._cli is None:
            self._cli = find_docker_cli(self.docker_host)

    def check_file(self, project: str) -> str | None:
        try:
            self.find_tool()
        except ToolUnavailableError as exc:
            return f"the stack file was not checked with the docker CLI: {exc.message}"
        assert self._cli is not None
        if not self._cli.can_check_stack_files:
            if not self._dry_run:
                return None  # docker stack deploy checks it
            return (
                f"the stack file was not checked: {self._cli.shown} has no "
                "`docker stack config` (docker 23.0 and later have)"
            )
        problem = stack_config_problem(self._cli, self.file_path)
        if problem:
            raise InvalidInputError(
                f"docker stack config rejects {self.file_path}: {problem}",
                hint="this is a bug in smartshare or a manifest value it did not catch; "
                "please report it with the file",
            )
        return None

    def store_secrets(
        self, engine: DockerEngine, stack: Stack, images: Mapping[str, ImageFacts]
    ) -> None:
        """Swarm secrets, created through the engine: the values touch no disk."""
        assert self._document is not None
        existing = {
            str((s.get("Spec") or {}).get("Name")): str(s.get("ID"))
            for s in engine.secrets({LABEL_PROJECT: stack.project})
        }
        for secret in self._document.secrets:
            if secret.name not in existing:
                existing[secret.name] = engine.create_secret(
                    secret.name, secret.content, secret_labels(stack, secret)
                )
        self._secret_ids = existing

    # -- what runs --------------------------------------------------------

    def observe(
        self, engine: DockerEngine, project: str, *, inspect: bool = False
    ) -> dict[str, Observed]:
        if self._manager is False:
            return {}  # a dry run on an engine that is no manager
        observed, self._services = observe_stack(
            engine, project, inspect=inspect, known=self._known
        )
        return observed

    # -- up ---------------------------------------------------------------

    def apply(
        self,
        engine: DockerEngine,
        stack: Stack,
        *,
        keys: Collection[str],
        before: Mapping[str, Observed],
        fingerprints: Mapping[str, str],
        deadline: float,
        on_event: DeployEventSink,
        redact: Callable[[str], str],
    ) -> dict[str, DeployedService]:
        from smartshare.deploying.swarm_jobs import check_jobs_supported

        self.find_tool()
        self._known = {str(t.get("ID")) for t in engine.tasks({NAMESPACE_LABEL: stack.project})}
        pending = _pending(stack, keys, before, fingerprints)
        if any(_is_job(stack, key) for key in pending):
            check_jobs_supported(engine)
        self._remove_orphans(engine, stack, before)
        run = _Watch(
            readiness=Readiness(
                stack,
                keys,
                before=before,
                fingerprints=fingerprints,
                rerun=_rerun(stack, pending, before, fingerprints),
            ),
            fingerprints=fingerprints,
            pending=pending,
            deadline=deadline,
            on_event=on_event,
        )
        for step in _steps(stack, pending):
            self.observe(engine, stack.project)
            self._send(engine, stack, step)
            run.sent.update(step)
            self._wait(engine, stack, run, step, redact)
        observed = self._wait(engine, stack, run, list(keys), redact)
        self._remove_unused_secrets(engine, stack)
        self._remove_old_job_containers(engine, stack, observed)
        return {
            key: DeployedService(
                kind=container.kind,
                image=container.image,
                image_id=observed[key].image_id if key in observed else None,
                config_hash=observed[key].config_hash if key in observed else None,
            )
            for key in keys
            if (container := stack.container(key)) is not None
        }

    def _send(self, engine: DockerEngine, stack: Stack, step: list[str]) -> None:
        """Start a step: its services through ``docker stack deploy``, its jobs through the API."""
        from smartshare.deploying.swarm_jobs import job_spec, run_job, stack_network

        assert self._cli is not None and self._document is not None
        document = self._document.document
        services = [key for key in step if not _is_job(stack, key)]
        if services:
            text = dump_document(document, services)
            stack_deploy(self._cli, stack.project, text, registry_auth=(self._nodes or 1) > 1)
        jobs = [key for key in step if _is_job(stack, key)]
        if jobs:
            network = stack_network(engine, stack.project)
            for key in jobs:
                spec = job_spec(
                    stack.project,
                    key,
                    document["services"][key],
                    network_id=network,
                    secret_ids=self._secret_ids,
                )
                run_job(engine, spec, self._services.get(key))

    def _wait(
        self,
        engine: DockerEngine,
        stack: Stack,
        run: _Watch,
        keys: list[str],
        redact: Callable[[str], str],
    ) -> dict[str, Observed]:
        """Poll until ``keys`` are ready; raise DeployFailedError for the first failure."""
        while True:
            observed = self.observe(engine, stack.project, inspect=True)
            phases, failure = run.judge(observed)
            if failure is not None and not self._rolling_back(failure, run.deadline):
                raise self._failed(engine, stack, failure, redact)
            if failure is None and all(phases.get(k) in READY_PHASES for k in keys):
                return observed
            if time.monotonic() > run.deadline:
                failure = failure or timed_out(run.readiness, phases, observed)
                raise self._failed(engine, stack, failure, redact)
            time.sleep(POLL_SECONDS)

    def _rolling_back(self, failure: Failure, deadline: float) -> bool:
        """Whether to wait a little more: a rolled-back service whose old version is not
        running yet (the failure is told once it runs again, or at the deadline)."""
        service = self._services.get(failure.key) or {}
        state = (service.get("UpdateStatus") or {}).get("State")
        seen = failure.observed
        return (
            state == "rollback_completed"
            and seen is not None
            and seen.state != "running"
            and time.monotonic() < deadline
        )

    def _failed(
        self, engine: DockerEngine, stack: Stack, failure: Failure, redact: Callable[[str], str]
    ) -> DeployFailedError:
        service = self._services.get(failure.key)
        logs = None
        if service is not None:
            try:
                logs = engine.service_logs(str(service["ID"]), tail=LOG_LINES)
            except ExternalError:
                logs = ""
        return failed_error(stack, failure, logs, redact)

    def _remove_orphans(
        self, engine: DockerEngine, stack: Stack, before: Mapping[str, Observed]
    ) -> None:
        """Services of the stack that no app of it has any more."""
        for key in before:
            if stack.container(key) is None and key in self._services:
                engine.remove_service(str(self._services[key]["ID"]))

    def _remove_unused_secrets(self, engine: DockerEngine, stack: Stack) -> None:
        """Older versions of the stack's secrets (the engine refuses those still in use)."""
        assert self._document is not None
        wanted = {secret.name for secret in self._document.secrets}
        for secret in engine.secrets({LABEL_PROJECT: stack.project}):
            if str((secret.get("Spec") or {}).get("Name")) not in wanted:
                engine.remove_secret(str(secret["ID"]))

    def _remove_old_job_containers(
        self, engine: DockerEngine, stack: Stack, observed: Mapping[str, Observed]
    ) -> None:
        """The containers of earlier runs of the jobs: Swarm leaves them behind."""
        for key, seen in observed.items():
            if seen.kind != JOB:
                continue
            name = f"{stack.project}_{key}"
            for container in engine.containers({"com.docker.swarm.service.name": name}):
                task = (container.get("Labels") or {}).get("com.docker.swarm.task.id")
                if task != seen.container_id and container.get("State") != "running":
                    engine.remove_container(str(container["Id"]))

    # -- down -------------------------------------------------------------

    def down(self, engine: DockerEngine, project: str, *, volumes: bool) -> None:
        self.find_tool()
        assert self._cli is not None
        stack_rm(self._cli, project)
        labels = {NAMESPACE_LABEL: project}
        deadline = time.monotonic() + _DOWN_TIMEOUT_S
        # docker stack rm returns at once; the nodes remove the containers afterwards,
        # except those of jobs, which Swarm leaves behind.
        while engine.services(labels) or engine.containers(labels) or engine.networks(labels):
            if time.monotonic() > deadline:
                raise ExternalError(
                    f"the containers of stack '{project}' were not removed within "
                    f"{_DOWN_TIMEOUT_S} s",
                    hint=f"see `docker stack ps {project}`, then run down again",
                )
            if not engine.services(labels):
                for container in engine.containers(labels):
                    engine.remove_container(str(container["Id"]))
            time.sleep(POLL_SECONDS)
        for secret in engine.secrets({LABEL_PROJECT: project}):
            engine.remove_secret(str(secret["ID"]))
        if volumes:
            for volume in engine.volumes(labels):
                engine.remove_volume(str(volume["Name"]))


class _Watch:
    """One deploy's judgement: which services were sent, and whose state counts yet."""

    def __init__(
        self,
        *,
        readiness: Readiness,
        fingerprints: Mapping[str, str],
        pending: set[str],
        deadline: float,
        on_event: DeployEventSink,
    ) -> None:
        self.readiness = readiness
        self.fingerprints = fingerprints
        self.pending = pending
        self.deadline = deadline
        self.on_event = on_event
        self.sent: set[str] = set()
        self.shown: dict[str, DeployPhase] = {}

    def judge(
        self, observed: Mapping[str, Observed]
    ) -> tuple[dict[str, DeployPhase], Failure | None]:
        """Phases and the first failure; a service still to send, or still running its old
        configuration, is only waiting."""
        counted = {
            key: seen
            for key, seen in observed.items()
            if (key in self.sent or key not in self.pending)
            and (seen.fingerprint == self.fingerprints.get(key) or seen.problem)
        }
        phases, failure = self.readiness.judge(counted, tool_done=False)
        show_phases(phases, self.shown, self.on_event)
        return phases, failure


def _is_job(stack: Stack, key: str) -> bool:
    container = stack.container(key)
    return container is not None and container.kind == JOB


def _pending(
    stack: Stack,
    keys: Collection[str],
    before: Mapping[str, Observed],
    fingerprints: Mapping[str, str],
) -> set[str]:
    """What to send: what is missing, changed or not ready, and the jobs it waits for."""
    pending = set()
    for key in keys:
        container, seen = stack.container(key), before.get(key)
        if (
            container is None
            or seen is None
            or seen.fingerprint != fingerprints.get(key)
            or seen.problem
            or not settled(container, seen)
        ):
            pending.add(key)
    grown = True
    while grown:
        grown = False
        for key in sorted(pending):
            container = stack.container(key)
            for dependency in container.depends_on if container else ():
                if (
                    dependency.key in keys
                    and dependency.key not in pending
                    and _is_job(stack, dependency.key)
                ):
                    pending.add(dependency.key)
                    grown = True
    return pending


def _rerun(
    stack: Stack,
    pending: set[str],
    before: Mapping[str, Observed],
    fingerprints: Mapping[str, str],
) -> set[str]:
    """What of ``pending`` gets new tasks: jobs, and services changed or not running (one
    sent again only to clear an old update's state keeps its tasks)."""
    rerun = set()
    for key in pending:
        seen = before.get(key)
        if (
            _is_job(stack, key)
            or seen is None
            or seen.fingerprint != fingerprints.get(key)
            or seen.state != "running"
        ):
            rerun.add(key)
    return rerun


def _steps(stack: Stack, pending: set[str]) -> list[list[str]]:
    """``pending`` in steps: each after the pending containers it waits for (stack order)."""
    depth: dict[str, int] = {}

    def level(key: str) -> int:
        if key not in depth:
            container = stack.container(key)
            waits = [d.key for d in container.depends_on if d.key in pending] if container else []
            depth[key] = 1 + max((level(k) for k in waits), default=-1)
        return depth[key]

    steps: dict[int, list[str]] = {}
    for container in stack.containers():
        if container.key in pending:
            steps.setdefault(level(container.key), []).append(container.key)
    return [steps[n] for n in sorted(steps)]
