"""How a swarm service's tasks are judged: a rejection Swarm retries is waited out.

The task records are shaped as the engine's ``GET /tasks`` returns them; the same
judgement runs against a real swarm in tests/test_swarm.py.
"""

from __future__ import annotations

from typing import Any

from smartshare.deploying.labels import LABEL_APP, LABEL_CONFIG, LABEL_KIND
from smartshare.deploying.swarm_observe import REJECTIONS_BEFORE_FAILURE, observe_tasks

FINGERPRINT = "sha256:abc"
SERVICE: dict[str, Any] = {
    "Spec": {
        "Labels": {LABEL_APP: "alpha", LABEL_KIND: "service", LABEL_CONFIG: FINGERPRINT},
        "Mode": {"Replicated": {"Replicas": 1}},
        "TaskTemplate": {"ContainerSpec": {"Image": "alpha:1"}},
    }
}
JOIN_FAILED = "network sandbox join failed: error creating vxlan interface: file exists"


def task(number: int, state: str, *, err: str = "") -> dict[str, Any]:
    return {
        "ID": f"task{number}",
        "CreatedAt": f"2026-12-01T10:00:0{number}Z",
        "DesiredState": "running" if state == "running" else "shutdown",
        "Spec": {"ContainerSpec": {"Labels": {LABEL_CONFIG: FINGERPRINT}}},
        "Status": {"State": state, "Err": err},
    }


def test_a_passing_rejection_is_waited_out() -> None:
    seen = observe_tasks("alpha-web", SERVICE, [task(1, "rejected", err=JOIN_FAILED)])
    assert seen.problem is None
    assert seen.state == "created"


def test_a_rejection_then_a_running_task_is_running() -> None:
    tasks = [task(1, "rejected", err=JOIN_FAILED), task(2, "running")]
    seen = observe_tasks("alpha-web", SERVICE, tasks)
    assert (seen.state, seen.problem) == ("running", None)


def test_a_rejection_that_keeps_coming_is_a_problem_naming_swarms_error() -> None:
    tasks = [task(n, "rejected", err=JOIN_FAILED) for n in range(REJECTIONS_BEFORE_FAILURE)]
    seen = observe_tasks("alpha-web", SERVICE, tasks)
    assert seen.state == "dead"
    assert seen.problem is not None
    assert seen.problem.startswith("cannot start: ")
    assert "error creating vxlan interface" in seen.problem


def test_rejections_from_before_the_deploy_do_not_count() -> None:
    tasks = [task(n, "rejected", err=JOIN_FAILED) for n in range(REJECTIONS_BEFORE_FAILURE)]
    seen = observe_tasks("alpha-web", SERVICE, tasks, known={"task0", "task1"})
    assert (seen.state, seen.problem) == ("created", None)
