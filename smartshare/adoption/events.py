"""What a run reports: progress events for the CLI, and each app's outcome.

Core code never prints: a run calls its ``on_event`` sink with an
:class:`Event` per phase change (and per build or push log line), and returns
an :class:`AdoptResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from smartshare.errors import InvalidInputError, SmartshareError


class Phase(StrEnum):
    WAITING = "waiting"
    CHECKING = "checking"
    FETCHING = "fetching"
    PATCHING = "patching"  # the region's patches, onto the exported source
    RENDERING = "rendering"
    PULLING = "pulling"  # a base image, before any build
    BUILDING = "building"
    PUSHING = "pushing"
    RECORDING = "recording"
    DONE = "done"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    """Progress of one app, for the CLI to show (core code never prints)."""

    app: str
    phase: Phase
    message: str = ""
    log: bool = False  # a build or push log line rather than a phase change


EventSink = Callable[[Event], None]


class Outcome(StrEnum):
    ADOPTED = "adopted"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_STARTED = "not started"  # the run was interrupted first


@dataclass
class AppResult:
    app: str
    outcome: Outcome
    version: str = ""
    commit: str = ""
    images: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    message: str = ""
    hint: str | None = None
    error: SmartshareError | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class AdoptResult:
    region: str
    workspace: Path
    results: list[AppResult]
    interrupted: bool = False

    @property
    def failed(self) -> list[AppResult]:
        return [r for r in self.results if r.outcome in (Outcome.FAILED, Outcome.SKIPPED)]

    @property
    def failed_on_input(self) -> bool:
        return all_on_input([r.error for r in self.results if r.outcome is Outcome.FAILED])


def all_on_input(errors: Sequence[SmartshareError | None]) -> bool:
    """Every failed app (``errors``) failed on wrong input (a template, a value): exit code 1."""
    return bool(errors) and all(isinstance(e, InvalidInputError) for e in errors)
