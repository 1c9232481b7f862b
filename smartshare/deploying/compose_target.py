"""The Docker Compose target: ``compose.yaml``, ``up`` while watching the engine, ``down``.

``up -d`` runs in the background while the engine is polled for the
project's containers (by compose's labels): progress per container, and a
failure (a job exiting non-zero, a restart loop, an unhealthy service, the
deadline) stops compose at once and names the container, with its last log
lines, secrets redacted.  Compose's own ``--wait`` would wait for the same,
but says neither which container nor why.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.deploying.compose_cli import ComposeTool, compose_argv, compose_env, find_compose
from smartshare.deploying.events import DeployEvent, DeployEventSink, DeployPhase
from smartshare.deploying.labels import LABEL_APP, LABEL_CONFIG, LABEL_KIND
from smartshare.deploying.readiness import LOG_LINES, failed_error, printable
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
    from smartshare.deploying.readiness import Failure, Readiness
    from smartshare.deploying.stack import Stack

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
POLL_SECONDS = 0.2
_STOP_TIMEOUT_S = 10
_CHECK_TIMEOUT_S = 60
_STATUS_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_STATUS_EXIT = re.compile(r"^(?:Exited|Restarting) \((-?\d+)\)")


class ComposeTarget(Target):
    name = "compose"
    file_name = "compose.yaml"

    def __init__(self, *, deploy_dir: Path, docker_host: str | None) -> None:
        super().__init__(deploy_dir=deploy_dir, docker_host=docker_host)
        self._tool: ComposeTool | None = None

    def render(self, stack: Stack, *, key: bytes, images: Mapping[str, ImageFacts]) -> DeployFile:
        from smartshare.deploying.compose import compose_document, dump

        document = compose_document(stack, key=key)
        fingerprints = {
            name: service["labels"][LABEL_CONFIG] for name, service in document["services"].items()
        }
        return DeployFile(text=dump(document), fingerprints=fingerprints)

    def find_tool(self) -> None:
        if self._tool is None:
            self._tool = find_compose(self.docker_host)

    def check_file(self, project: str) -> str | None:
        try:
            self.find_tool()
        except ToolUnavailableError as exc:
            return f"the compose file was not checked with Docker Compose: {exc.message}"
        done = self._run(project, ["config", "-q"], timeout=_CHECK_TIMEOUT_S)
        if done.returncode != 0:
            raise InvalidInputError(
                f"{self._shown()} config rejects {self.file_path}: {_tail(done.stdout, 10)}",
                hint="this is a bug in smartshare or a manifest value it did not catch; "
                "please report it with the file",
            )
        return None

    def store_secrets(
        self, engine: DockerEngine, stack: Stack, images: Mapping[str, ImageFacts]
    ) -> None:
        """Files in the deploy folder, each owned by the user its container runs as."""
        from smartshare.deploying.secretfiles import owner_for, write_secret_files

        owners = {
            c.key: owner_for(images[c.image].user if c.image in images else None)
            for c in stack.containers()
        }
        write_secret_files(self.deploy_dir, stack, owners)

    # -- what runs --------------------------------------------------------

    def observe(
        self, engine: DockerEngine, project: str, *, inspect: bool = False
    ) -> dict[str, Observed]:
        found: dict[str, tuple[str, Observed]] = {}
        for listed in engine.containers({PROJECT_LABEL: project}):
            labels: dict[str, str] = listed.get("Labels") or {}
            key = labels.get(SERVICE_LABEL)
            if key is None or labels.get(ONEOFF_LABEL) == "True":
                continue
            seen = _observed(key, listed, labels)
            if inspect:
                described = engine.inspect_container(seen.container_id)
                if described is None:
                    continue
                seen = _inspected(seen, described)
            created = str(listed.get("Created", ""))
            if key not in found or created > found[key][0]:
                found[key] = (created, seen)
        return {key: seen for key, (_created, seen) in found.items()}

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
        from smartshare.deploying.readiness import Readiness, show_phases, timed_out

        self.find_tool()
        readiness = Readiness(stack, keys, before=before, fingerprints=fingerprints)
        args = ["up", "-d", "--remove-orphans", "--pull", "never", "--no-build", *keys]
        process = self._start(stack.project, args)
        output = _OutputReader(process, stack.project, on_event, redact)
        shown: dict[str, DeployPhase] = {}
        try:
            while True:
                returncode = process.poll()
                tool_done = returncode is not None
                observed = self.observe(engine, stack.project, inspect=True)
                phases, failure = readiness.judge(observed, tool_done=tool_done)
                show_phases(phases, shown, on_event)
                if failure is not None:
                    self._stop(process)
                    raise self._failed(engine, stack, failure, redact)
                if tool_done and returncode != 0:
                    output.join()
                    raise self._tool_failed(engine, stack, readiness, output.lines, redact)
                if tool_done and not readiness.not_ready(phases):
                    output.join()
                    return _deployed(stack, keys, observed)
                if time.monotonic() > deadline:
                    self._stop(process)
                    raise self._failed(
                        engine, stack, timed_out(readiness, phases, observed), redact
                    )
                time.sleep(POLL_SECONDS)
        finally:
            self._stop(process)

    def _failed(
        self, engine: DockerEngine, stack: Stack, failure: Failure, redact: Callable[[str], str]
    ) -> DeployFailedError:
        logs = None
        if failure.observed is not None:
            try:
                logs = engine.container_logs(failure.observed.container_id, tail=LOG_LINES)
            except ExternalError:
                logs = ""
        return failed_error(stack, failure, logs, redact)

    def _tool_failed(
        self,
        engine: DockerEngine,
        stack: Stack,
        readiness: Readiness,
        lines: list[str],
        redact: Callable[[str], str],
    ) -> DeployFailedError:
        observed = self.observe(engine, stack.project, inspect=True)
        _phases, failure = readiness.judge(observed, tool_done=True)
        text = "\n".join(lines)
        named = _named_in(text, stack, readiness.keys)
        if failure is not None and (named is None or named == failure.key):
            return self._failed(engine, stack, failure, redact)
        if named is not None:
            failure = Failure(named, "did not start", observed.get(named))
            error = self._failed(engine, stack, failure, redact)
            error.message += f"\n{self._shown()} said:\n{_tail(text, 8)}"
            if "port is already allocated" in text or "address already in use" in text:
                error.hint = (
                    "a port it publishes is taken on the host: free it, or give the app "
                    "another port in the profile's deploy.ports"
                )
            return error
        return DeployFailedError(
            f"deploy failed: {self._shown()} up failed:\n{_tail(text, 15)}",
            hint="fix the cause and run deploy again; 'smartshare ps' shows what runs",
        )

    # -- down -------------------------------------------------------------

    def down(self, engine: DockerEngine, project: str, *, volumes: bool) -> None:
        self.find_tool()
        args = ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]
        done = self._run(project, args, timeout=600)
        if done.returncode != 0:
            raise ExternalError(f"{self._shown()} down failed: {_tail(done.stdout, 10)}")

    # -- running compose --------------------------------------------------

    def _shown(self) -> str:
        return self._tool.display if self._tool else "docker compose"

    def _argv(self, project: str, args: list[str]) -> list[str]:
        assert self._tool is not None
        if self.file_path.is_file():
            # Absolute: compose runs in another folder, and reads a relative -f from there.
            file = self.file_path.absolute()
            return compose_argv(self._tool, file=file, project=project, args=args)
        # No file (removed by hand): compose finds the project by its labels.
        return [*self._tool.argv, "--ansi", "never", "-p", project, *args]

    def _run(
        self, project: str, args: list[str], *, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        argv = self._argv(project, args)
        # An empty folder: compose looks for a compose file in the folder it runs in.
        with tempfile.TemporaryDirectory(prefix="smartshare-compose-") as cwd:
            try:
                return subprocess.run(
                    argv,
                    cwd=cwd,
                    env=compose_env(self.docker_host),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ExternalError(
                    f"{self._shown()} {args[0]} did not finish in {timeout:.0f} s"
                ) from None
            except OSError as exc:
                raise ToolUnavailableError(
                    f"cannot run {self._shown()}: {exc.strerror or exc}"
                ) from None

    def _start(self, project: str, args: list[str]) -> subprocess.Popen[str]:
        try:
            return subprocess.Popen(
                self._argv(project, args),
                cwd=self.deploy_dir,
                env=compose_env(self.docker_host),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                # Its own process group: Ctrl-C reaches smartshare, which stops it.
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolUnavailableError(
                f"cannot run {self._shown()}: {exc.strerror or exc}"
            ) from None

    @staticmethod
    def _stop(process: subprocess.Popen[str]) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _OutputReader:
    """Reads compose's output on a thread: each line redacted, kept, and sent as a log event."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        project: str,
        on_event: DeployEventSink,
        redact: Callable[[str], str],
    ) -> None:
        self.lines: list[str] = []
        self._process = process
        self._container = re.compile(rf"\b{re.escape(project)}-(\S+?)-\d+\b")
        self._on_event = on_event
        self._redact = redact
        self._thread = threading.Thread(target=self._read, name="compose-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = printable(self._redact(raw.rstrip("\n")))
            self.lines.append(line)
            match = self._container.search(line)
            service = match.group(1) if match else "compose"
            self._on_event(
                DeployEvent(service=service, phase=DeployPhase.STARTING, message=line, log=True)
            )

    def join(self) -> None:
        self._thread.join(timeout=_STOP_TIMEOUT_S)


def _deployed(
    stack: Stack, keys: Collection[str], observed: Mapping[str, Observed]
) -> dict[str, DeployedService]:
    deployed = {}
    for key in keys:
        container = stack.container(key)
        seen = observed.get(key)
        assert container is not None
        deployed[key] = DeployedService(
            kind=container.kind,
            image=container.image,
            image_id=seen.image_id if seen else None,
            config_hash=seen.config_hash if seen else None,
        )
    return deployed


def _observed(key: str, listed: Mapping[str, Any], labels: Mapping[str, str]) -> Observed:
    status = str(listed.get("Status") or "")
    health_match = _STATUS_HEALTH.search(status)
    health = None
    if health_match:
        health = (
            "starting" if health_match.group(1) == "health: starting" else health_match.group(1)
        )
    exit_match = _STATUS_EXIT.match(status)
    published = []
    for port in listed.get("Ports") or []:
        if port.get("PublicPort"):
            address = str(port.get("IP") or "0.0.0.0")  # noqa: S104 - shown, never bound
            shown = f"[{address}]" if ":" in address else address
            published.append(f"{shown}:{port['PublicPort']}")
    return Observed(
        key=key,
        app=labels.get(LABEL_APP),
        kind=labels.get(LABEL_KIND),
        container_id=str(listed.get("Id", "")),
        state=str(listed.get("State") or ""),
        health=health,
        exit_code=int(exit_match.group(1)) if exit_match else None,
        image_id=listed.get("ImageID"),
        fingerprint=labels.get(LABEL_CONFIG),
        config_hash=labels.get(CONFIG_HASH_LABEL),
        published=tuple(sorted(set(published))),
        labels=dict(labels),
    )


def _inspected(seen: Observed, described: Mapping[str, Any]) -> Observed:
    state = described.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return replace(
        seen,
        state=str(state.get("Status") or seen.state),
        health=health if health else seen.health,
        exit_code=state.get("ExitCode", seen.exit_code),
        started_at=state.get("StartedAt"),
        restart_count=described.get("RestartCount"),
    )


def _named_in(text: str, stack: Stack, keys: Collection[str]) -> str | None:
    """The first container of ``keys`` that compose's output names (``<project>-<key>-1``)."""
    positions = []
    for key in keys:
        found = re.search(rf"\b{re.escape(stack.project)}-{re.escape(key)}-\d+\b", text)
        if found:
            positions.append((found.start(), key))
    if not positions:
        return None
    # The error is at the end: the last container named there.
    error_part = text.rsplit("\n", 3)[-3:]
    for line in reversed(error_part):
        for _start, key in sorted(positions, reverse=True):
            if re.search(rf"\b{re.escape(stack.project)}-{re.escape(key)}-\d+\b", line):
                return key
    return min(positions)[1]


def _tail(text: str, count: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-count:]) or "(no output)"
