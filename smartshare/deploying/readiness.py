"""When a container of the stack counts as ready or failed: one judgement for every target.

A service is ready when it runs (and is healthy, when it has a health
check); a job when it exited 0.  A service that stopped, restarted since the
deploy began (a restart loop: its policy brings it back after each crash) or
turned unhealthy has failed, as has a job that exited with another code.

Until the tool has done its part, the container seen before the deploy is
not judged when the tool is expected to replace or rerun it (its
configuration changed, it was not running, or it is a job): an old failure
must not fail the new deploy, nor an old success end the wait too early.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from smartshare.deploying.events import DeployPhase
from smartshare.deploying.labels import JOB
from smartshare.deploying.stack import Stack, StackContainer
from smartshare.deploying.target import Observed

READY_PHASES = frozenset({DeployPhase.RUNNING, DeployPhase.HEALTHY, DeployPhase.COMPLETED})


@dataclass(frozen=True)
class Failure:
    key: str
    reason: str
    observed: Observed | None


class Readiness:
    def __init__(
        self,
        stack: Stack,
        keys: Collection[str],
        *,
        before: Mapping[str, Observed],
        fingerprints: Mapping[str, str],
    ) -> None:
        self.keys = list(keys)
        self.containers = {k: c for k in self.keys if (c := stack.container(k)) is not None}
        self.before = before
        self.fingerprints = fingerprints

    def judge(
        self, observed: Mapping[str, Observed], *, tool_done: bool
    ) -> tuple[dict[str, DeployPhase], Failure | None]:
        """Each container's phase now, and the first failure (in stack order), if any."""
        phases: dict[str, DeployPhase] = {}
        failure: Failure | None = None
        for key in self.keys:
            phase, reason = self._judge_one(key, observed.get(key), tool_done=tool_done)
            phases[key] = phase
            if reason is not None and failure is None:
                failure = Failure(key, reason, observed.get(key))
        return phases, failure

    def not_ready(self, phases: Mapping[str, DeployPhase]) -> list[str]:
        return [k for k in self.keys if phases.get(k) not in READY_PHASES]

    def _replaced(self, container: StackContainer, before: Observed | None) -> bool:
        """Whether the tool is expected to start a new run of ``container``."""
        if before is None or container.kind == JOB:
            return True
        return before.state != "running" or before.fingerprint != self.fingerprints.get(
            container.key
        )

    def _judge_one(
        self, key: str, seen: Observed | None, *, tool_done: bool
    ) -> tuple[DeployPhase, str | None]:
        container = self.containers[key]
        if seen is None:
            if tool_done:
                return DeployPhase.FAILED, "was not created"
            return DeployPhase.WAITING, None
        before = self.before.get(key)
        if (
            not tool_done
            and before is not None
            and self._replaced(container, before)
            and seen.instance == before.instance
        ):
            return DeployPhase.WAITING, None
        code = seen.exit_code
        if container.kind == JOB:
            if seen.state == "exited":
                if code == 0:
                    return DeployPhase.COMPLETED, None
                return DeployPhase.FAILED, f"exited with code {code}"
            if seen.state == "dead":
                return DeployPhase.FAILED, "died (its container is dead)"
            return DeployPhase.STARTING, None
        earlier = before.restart_count if before and before.container_id == seen.container_id else 0
        restarts = (seen.restart_count or 0) - (earlier or 0)
        if seen.state == "restarting" or restarts > 0:
            last = f"; last exit code {code}" if code else ""
            return (
                DeployPhase.FAILED,
                f"keeps restarting (restarted {max(restarts, 1)} time(s){last})",
            )
        if seen.state in ("exited", "dead"):
            return DeployPhase.FAILED, f"stopped (exit code {code})"
        if seen.state != "running":
            return DeployPhase.STARTING, None
        if container.healthcheck is None:
            return DeployPhase.RUNNING, None
        if seen.health == "healthy":
            return DeployPhase.HEALTHY, None
        if seen.health == "unhealthy":
            return DeployPhase.FAILED, "is unhealthy: its health check kept failing"
        return DeployPhase.STARTING, None
