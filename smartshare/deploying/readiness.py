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

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from smartshare.deploying.events import DeployEvent, DeployEventSink, DeployPhase
from smartshare.deploying.labels import JOB
from smartshare.deploying.stack import Stack, StackContainer
from smartshare.deploying.target import Observed
from smartshare.errors import DeployFailedError

READY_PHASES = frozenset({DeployPhase.RUNNING, DeployPhase.HEALTHY, DeployPhase.COMPLETED})
LOG_LINES = 20
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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
        rerun: Collection[str] | None = None,
    ) -> None:
        self.keys = list(keys)
        self.containers = {k: c for k in self.keys if (c := stack.container(k)) is not None}
        self.before = before
        self.fingerprints = fingerprints
        # What the tool starts anew, when it says so (swarm); else guessed, as compose does.
        self.rerun = None if rerun is None else set(rerun)

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
        if self.rerun is not None:
            return before is None or container.key in self.rerun
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
        if seen.problem:
            return DeployPhase.FAILED, seen.problem
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


def settled(container: StackContainer, seen: Observed) -> bool:
    """Whether a container is where a deploy leaves it: a job done, a service up and healthy."""
    if container.kind == JOB:
        return seen.state == "exited" and seen.exit_code == 0
    if seen.state != "running":
        return False
    return container.healthcheck is None or seen.health == "healthy"


def show_phases(
    phases: Mapping[str, DeployPhase], shown: dict[str, DeployPhase], on_event: DeployEventSink
) -> None:
    """Send an event for each container whose phase changed since ``shown``."""
    for key, phase in phases.items():
        if shown.get(key) is not phase:
            shown[key] = phase
            on_event(DeployEvent(service=key, phase=phase))


def timed_out(
    readiness: Readiness, phases: Mapping[str, DeployPhase], observed: Mapping[str, Observed]
) -> Failure:
    """The failure of a deploy whose deadline passed: the first container not ready."""
    waiting = readiness.not_ready(phases)
    first = waiting[0]
    also = f"; also waiting for {', '.join(waiting[1:])}" if waiting[1:] else ""
    return Failure(
        first,
        f"not ready in time (--timeout); still {phases[first].value}{also}",
        observed.get(first),
    )


def failed_error(
    stack: Stack, failure: Failure, logs: str | None, redact: Callable[[str], str]
) -> DeployFailedError:
    """The error naming the container that failed, with its last log lines (``logs``: None
    when there is no log to show), secrets redacted."""
    container = stack.container(failure.key)
    what = (
        f"{container.kind} '{failure.key}' of app '{container.app}'" if container else failure.key
    )
    shown = ""
    if logs is not None:
        lines = [printable(line) for line in redact(logs).splitlines()[-LOG_LINES:]]
        shown = (
            f"\nlast {len(lines)} log line(s) of {failure.key}:\n"
            + "\n".join(f"  {line}" for line in lines)
            if lines
            else f"\n{failure.key} wrote nothing to its log"
        )
    return DeployFailedError(
        f"deploy failed: {what} {failure.reason}{shown}",
        hint="fix the cause and run deploy again; 'smartshare ps' shows what runs",
    )


def printable(line: str) -> str:
    """A log line with control characters shown as escapes: a container's log is untrusted
    and must not move the cursor or recolour the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)
