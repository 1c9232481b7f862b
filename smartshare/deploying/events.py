"""What ``deploy``, ``ps`` and ``down`` report: progress events and results.

Core code never prints: a deploy calls its ``on_event`` sink with a
:class:`DeployEvent` per change of a container's state (and, with ``log``,
per line of the tool's output, secrets redacted), and returns a
:class:`DeployResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class DeployPhase(StrEnum):
    WAITING = "waiting"
    PULLING = "pulling"
    STARTING = "starting"
    RUNNING = "running"
    HEALTHY = "healthy"
    COMPLETED = "completed"
    UP_TO_DATE = "up to date"
    FAILED = "failed"


FINISHED_PHASES = frozenset(
    {
        DeployPhase.RUNNING,
        DeployPhase.HEALTHY,
        DeployPhase.COMPLETED,
        DeployPhase.UP_TO_DATE,
        DeployPhase.FAILED,
    }
)


@dataclass(frozen=True)
class DeployEvent:
    """Progress of one container of the stack (``service``: its stack name)."""

    service: str
    phase: DeployPhase
    message: str = ""
    log: bool = False  # a line of the tool's output rather than a state change


DeployEventSink = Callable[[DeployEvent], None]


@dataclass(frozen=True)
class ServiceReport:
    """One container of the stack after a deploy (or, with --dry-run, what would happen)."""

    app: str
    service: str  # stack name
    kind: str  # service | job
    action: str  # create, recreate, start, unchanged (dry run); up to date; deployed
    state: str = ""
    published: str = ""
    image: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "service": self.service,
            "kind": self.kind,
            "action": self.action,
            "state": self.state,
            "published": self.published,
            "image": self.image,
        }


@dataclass(frozen=True)
class DeployResult:
    region: str
    project: str
    target: str
    workspace: Path
    file: Path
    apps: list[str]
    dry_run: bool
    up_to_date: bool
    services: list[ServiceReport]
    removed: list[str] = field(default_factory=list)  # containers no longer in the stack
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "project": self.project,
            "target": self.target,
            "workspace": str(self.workspace),
            "file": str(self.file),
            "apps": self.apps,
            "dry_run": self.dry_run,
            "up_to_date": self.up_to_date,
            "services": [s.as_dict() for s in self.services],
            "removed": self.removed,
            "warnings": self.warnings,
        }
