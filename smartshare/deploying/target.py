"""Where a stack runs: the interface every deploy target implements, and the registry of them.

``deploy``, ``ps`` and ``down`` (:mod:`.runner`, :mod:`.inspect`) know a
target only through :class:`Target`: it checks the engine is one it can use,
writes the stack as its file, finds its tool, checks the file, puts the
secrets where containers read them, says what runs now, brings services up
and waits for them, and takes the stack down.  Docker Compose is
:class:`smartshare.deploying.compose_target.ComposeTarget`, Docker Swarm
:class:`smartshare.deploying.swarm_target.SwarmTarget` (:func:`target_for`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from smartshare.errors import UsageError

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine
    from smartshare.deploying.events import DeployEventSink
    from smartshare.deploying.stack import Stack
    from smartshare.state.lockfile import DeployedService


@dataclass(frozen=True)
class ImageFacts:
    """What the engine says about an image the stack runs."""

    image_id: str
    user: str  # Config.User: "" (root), "65534:65534", "nobody"...
    repo_digests: tuple[str, ...] = ()  # repo@sha256:... of a pulled image


@dataclass(frozen=True)
class DeployFile:
    """A stack written for a target: the text, and each container's configuration fingerprint."""

    text: bytes
    fingerprints: Mapping[str, str]  # stack name -> keyed digest (the LABEL_CONFIG label)


@dataclass(frozen=True)
class Observed:
    """What runs now for one container of the stack, as the engine reports it."""

    key: str  # stack name
    app: str | None
    kind: str | None  # service | job (from the labels)
    container_id: str
    state: str  # running, exited, restarting, created, paused, dead
    health: str | None  # healthy, unhealthy, starting; None: no health check
    exit_code: int | None
    image_id: str | None
    fingerprint: str | None  # LABEL_CONFIG
    config_hash: str | None  # the target's own (compose: com.docker.compose.config-hash)
    published: tuple[str, ...] = ()  # "127.0.0.1:18081"
    started_at: str | None = None  # only when inspected
    restart_count: int | None = None  # only when inspected
    # A failure the target itself reports (swarm: a rejected task, an update rolled back).
    problem: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def instance(self) -> tuple[str, str | None]:
        """Which run of which container this is: a restart or a new container changes it."""
        return (self.container_id, self.started_at)


class Target(ABC):
    """A way to run a stack (Docker Compose, Docker Swarm)."""

    name: ClassVar[str]
    file_name: ClassVar[str]

    def __init__(self, *, deploy_dir: Path, docker_host: str | None) -> None:
        self.deploy_dir = deploy_dir
        self.docker_host = docker_host

    @property
    def file_path(self) -> Path:
        return self.deploy_dir / self.file_name

    def check_engine(self, engine: DockerEngine | None, *, dry_run: bool) -> list[str]:
        """Raise an ExternalError when the engine cannot run this target (warnings with
        ``dry_run``, which may have no engine at all); return warnings."""
        return []

    @abstractmethod
    def render(self, stack: Stack, *, key: bytes, images: Mapping[str, ImageFacts]) -> DeployFile:
        """The stack as this target's file (no secret value in it).

        ``images`` holds what the engine knows of the images present, by the
        reference the stack runs them by.
        """

    @abstractmethod
    def find_tool(self) -> None:
        """Raise an ExternalError saying what to install when the target's tool is missing."""

    @abstractmethod
    def check_file(self, project: str) -> str | None:
        """Check the written file with the tool; a warning when no tool could check it."""

    @abstractmethod
    def store_secrets(
        self, engine: DockerEngine, stack: Stack, images: Mapping[str, ImageFacts]
    ) -> None:
        """Put the secret values and runtime files where the containers read them."""

    @abstractmethod
    def observe(
        self, engine: DockerEngine, project: str, *, inspect: bool = False
    ) -> dict[str, Observed]:
        """What runs now in ``project``, by stack name; ``inspect`` adds starts and restarts."""

    @abstractmethod
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
        """Bring ``keys`` (and what they wait for) up, and wait until they are ready.

        Raises DeployFailedError naming the container that failed.
        """

    @abstractmethod
    def down(self, engine: DockerEngine, project: str, *, volumes: bool) -> None:
        """Stop and remove the stack (its volumes too with ``volumes``)."""


def target_names() -> tuple[str, ...]:
    return ("compose", "swarm")


def target_for(name: str, *, deploy_dir: Path, docker_host: str | None) -> Target:
    """The target called ``name``; a UsageError for one that is not available."""
    if name == "compose":
        from smartshare.deploying.compose_target import ComposeTarget

        return ComposeTarget(deploy_dir=deploy_dir, docker_host=docker_host)
    if name == "swarm":
        from smartshare.deploying.swarm_target import SwarmTarget

        return SwarmTarget(deploy_dir=deploy_dir, docker_host=docker_host)
    raise UsageError(
        f"unknown deploy target '{name}'", hint=f"targets: {', '.join(target_names())}"
    )
