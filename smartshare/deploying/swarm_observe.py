"""What runs of a swarm stack, as :class:`~smartshare.deploying.target.Observed` per service.

Swarm speaks of services and their tasks, not containers; each service is
mapped onto one ``Observed`` so that ``deploy`` judges it as it judges a
container (:mod:`.readiness`) and ``ps`` shows it:

- only the tasks of the service's current configuration count (the label
  ``id.smartshare.config`` of their container spec; for a job, also its
  current run, ``JobIteration``); the newest one is the "instance";
- a service is ``running`` when all its replicas run (a task with a health
  check runs only once healthy: Swarm holds it in ``starting`` until then),
  and while Swarm updates or rolls it back it is only starting;
- a task of the service that ended (Swarm starts another one) makes it
  ``restarting``, with that task's exit code; tasks Swarm rejected (a
  network that could not be joined, an image it could not pull) are waited
  out while Swarm retries them, since such errors are often passing, and
  become a ``problem`` at the third; a task stopped because its health check
  failed, and an update Swarm rolled back, are ``problem`` s;
- a job is ``exited`` with its task's exit code once that task ended.

Tasks ``known`` before a deploy began are not counted as restarts of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from smartshare.deploying.labels import JOB, LABEL_APP, LABEL_CONFIG, LABEL_KIND
from smartshare.deploying.swarm import NAMESPACE_LABEL
from smartshare.deploying.target import Observed

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine

ENDED = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
UPDATING = frozenset({"updating", "rollback_started"})
# Swarm reschedules a rejected task after the restart delay; a rejection that
# happens again this often is no passing one.
REJECTIONS_BEFORE_FAILURE = 3


def observe_stack(
    engine: DockerEngine, project: str, *, inspect: bool, known: Collection[str] = ()
) -> tuple[dict[str, Observed], dict[str, dict[str, Any]]]:
    """Each service of ``project`` as Observed, and as the engine describes it, by stack name.

    ``inspect`` looks into the container of a task that ended, to tell a
    failed health check from a crash.
    """
    labels = {NAMESPACE_LABEL: project}
    services = engine.services(labels)
    tasks: dict[str, list[dict[str, Any]]] = {}
    for task in engine.tasks(labels) if services else ():
        tasks.setdefault(str(task.get("ServiceID")), []).append(task)
    observed: dict[str, Observed] = {}
    described: dict[str, dict[str, Any]] = {}
    prefix = f"{project}_"
    for service in services:
        name = str((service.get("Spec") or {}).get("Name") or "")
        if not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        own = tasks.get(str(service.get("ID")), [])
        observed[key] = observe_tasks(key, service, own, engine if inspect else None, known)
        described[key] = service
    return observed, described


def task_fingerprint(task: Mapping[str, Any]) -> str | None:
    spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
    found = (spec.get("Labels") or {}).get(LABEL_CONFIG)
    return str(found) if found is not None else None


def spec_digest(service: Mapping[str, Any]) -> str:
    """A digest of the service's spec as the engine holds it: changes with every update."""
    text = json.dumps(service.get("Spec") or {}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def observe_tasks(
    key: str,
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    engine: DockerEngine | None = None,
    known: Collection[str] = (),
) -> Observed:
    """One service as Observed, from its tasks (``engine`` to inspect ended ones)."""
    spec = service.get("Spec") or {}
    labels: dict[str, str] = dict(spec.get("Labels") or {})
    fingerprint = labels.get(LABEL_CONFIG)
    mode = spec.get("Mode") or {}
    container_spec = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    current = [t for t in tasks if task_fingerprint(t) == fingerprint]
    job = "ReplicatedJob" in mode or "GlobalJob" in mode or labels.get(LABEL_KIND) == JOB
    if job:
        iteration = _index((service.get("JobStatus") or {}).get("JobIteration"))
        current = [t for t in current if _index(t.get("JobIteration")) == iteration]
    current.sort(key=lambda t: str(t.get("CreatedAt") or ""))
    newest = current[-1] if current else None
    status = (newest or {}).get("Status") or {}
    base = Observed(
        key=key,
        app=labels.get(LABEL_APP),
        kind=labels.get(LABEL_KIND),
        container_id=str((newest or {}).get("ID") or ""),
        state="created",
        health=None,
        exit_code=None,
        image_id=str(container_spec.get("Image") or "") or None,
        fingerprint=fingerprint,
        config_hash=spec_digest(service),
        published=_published(current),
        started_at=str((newest or {}).get("CreatedAt") or "") or None,
        labels=labels,
    )
    if job:
        return _job(base, status)
    checked = "Healthcheck" in container_spec
    return _service(base, service, current, engine, known, healthcheck=checked)


def _job(base: Observed, status: Mapping[str, Any]) -> Observed:
    from dataclasses import replace

    state = str(status.get("State") or "")
    if state == "complete":
        return replace(base, state="exited", exit_code=0)
    if state == "rejected":
        return replace(base, state="dead", problem=f"could not start: {_error(status)}")
    if state in ENDED:
        return replace(base, state="exited", exit_code=_exit_code(status))
    return replace(base, state="running" if state == "running" else "created")


def _service(
    base: Observed,
    service: Mapping[str, Any],
    current: Sequence[Mapping[str, Any]],
    engine: DockerEngine | None,
    known: Collection[str],
    *,
    healthcheck: bool,
) -> Observed:
    from dataclasses import replace

    spec = service.get("Spec") or {}
    update = service.get("UpdateStatus") or {}
    update_state = str(update.get("State") or "")
    replicas = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1))
    running = [
        t
        for t in current
        if (t.get("Status") or {}).get("State") == "running" and t.get("DesiredState") == "running"
    ]
    seen = base
    if len(running) >= replicas:
        seen = replace(base, state="running", health="healthy" if healthcheck else None)
    else:
        ended = [
            t
            for t in current
            if (t.get("Status") or {}).get("State") in ENDED and str(t.get("ID")) not in known
        ]
        if ended and update_state not in UPDATING:
            last = ended[-1]
            status = last.get("Status") or {}
            rejected = [t for t in ended if (t.get("Status") or {}).get("State") == "rejected"]
            if status.get("State") == "rejected" and len(rejected) < REJECTIONS_BEFORE_FAILURE:
                seen = replace(base, state="created")
            elif status.get("State") == "rejected":
                seen = replace(base, state="dead", problem=f"cannot start: {_error(status)}")
            elif _unhealthy(engine, status):
                seen = replace(
                    base,
                    state="restarting",
                    health="unhealthy",
                    problem="is unhealthy: its health check kept failing (Swarm stopped it)",
                )
            else:
                seen = replace(
                    base,
                    state="restarting",
                    exit_code=_exit_code(status),
                    restart_count=len(ended),
                )
    message = str(update.get("Message") or "")
    if update_state == "rollback_completed":
        # Swarm's message names the failed task only until the rollback ends.
        return replace(
            seen,
            problem="failed to update: its new version did not run (or turned unhealthy), "
            "and Swarm rolled it back to the previous version"
            + (", which runs again" if seen.state == "running" else ""),
        )
    if update_state in ("paused", "rollback_paused"):
        what = "rolling back failed too" if update_state == "rollback_paused" else "update paused"
        return replace(seen, problem=f"failed to update ({what}: {message or 'no reason given'})")
    if update_state in UPDATING:
        return replace(seen, state="created", health=None, problem=None)
    return seen


def _unhealthy(engine: DockerEngine | None, status: Mapping[str, Any]) -> bool:
    container = str((status.get("ContainerStatus") or {}).get("ContainerID") or "")
    if engine is None or not container:
        return False
    described = engine.inspect_container(container)  # None on another node, or removed
    health = (((described or {}).get("State") or {}).get("Health") or {}).get("Status")
    return health == "unhealthy"


def _published(tasks: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    found = set()
    for task in tasks:
        if (task.get("Status") or {}).get("State") != "running":
            continue
        for port in ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or ():
            if port.get("PublishedPort"):
                found.add(f"0.0.0.0:{port['PublishedPort']}")
    return tuple(sorted(found))


def _index(version: Mapping[str, Any] | None) -> int:
    return int((version or {}).get("Index") or 0)


def _exit_code(status: Mapping[str, Any]) -> int | None:
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    return int(code) if code is not None else None


def _error(status: Mapping[str, Any]) -> str:
    return str(status.get("Err") or status.get("Message") or "no reason given")[:300]
