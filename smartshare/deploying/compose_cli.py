"""Docker Compose v2 as users have it: the ``docker compose`` plugin or ``docker-compose``.

Found on PATH, plugin first, and accepted only when ``version`` says 2.x
(Compose v1 reads the same files differently).  Every call names the file and
the project explicitly, and runs without the ``COMPOSE_*`` variables that
would choose other files, projects or profiles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smartshare.errors import ToolUnavailableError

INSTALL_HINT = (
    "install Docker Compose v2: the `docker compose` plugin (Debian/Ubuntu: "
    "`apt-get install docker-compose-plugin` from Docker's repository, or "
    "`docker-compose-v2` on Ubuntu), or a `docker-compose` v2 binary on PATH "
    "(https://github.com/docker/compose/releases)"
)
_VERSION_TIMEOUT_S = 30
# Variables that would make compose read other files or projects than ours.
_IGNORED_VARIABLES = (
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
    "COMPOSE_ENV_FILES",
    "COMPOSE_PATH_SEPARATOR",
)


@dataclass(frozen=True)
class ComposeTool:
    argv: tuple[str, ...]  # ("docker", "compose") or ("/usr/bin/docker-compose",)
    version: str

    @property
    def display(self) -> str:
        return " ".join(Path(self.argv[0]).name if i == 0 else a for i, a in enumerate(self.argv))


def compose_env(docker_host: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _IGNORED_VARIABLES}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def find_compose(docker_host: str | None = None) -> ComposeTool:
    """``docker compose`` (the plugin) or ``docker-compose``, whichever is a v2 on PATH.

    Raises ToolUnavailableError naming both, and what was found instead.
    """
    found: list[str] = []
    candidates: list[tuple[str, ...]] = []
    docker = shutil.which("docker")
    if docker:
        candidates.append((docker, "compose"))
    standalone = shutil.which("docker-compose")
    if standalone:
        candidates.append((standalone,))
    env = compose_env(docker_host)
    for argv in candidates:
        version = _version(argv, env)
        shown = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
        if version is None:
            if len(argv) == 1:
                found.append(f"{shown} does not answer 'version'")
            continue
        if version.lstrip("v").startswith("2."):
            return ComposeTool(argv=argv, version=version)
        found.append(f"{shown} is version {version}")
    detail = f" ({'; '.join(found)})" if found else ""
    raise ToolUnavailableError(
        f"Docker Compose v2 is needed: neither `docker compose` nor `docker-compose` v2 "
        f"is on PATH{detail}",
        hint=INSTALL_HINT,
    )


def _version(argv: Sequence[str], env: dict[str, str]) -> str | None:
    try:
        done = subprocess.run(
            [*argv, "version", "--short"],
            capture_output=True,
            text=True,
            env=env,
            timeout=_VERSION_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text:
        return None
    return text.splitlines()[0].strip()


def compose_argv(tool: ComposeTool, *, file: Path, project: str, args: Sequence[str]) -> list[str]:
    return [*tool.argv, "--ansi", "never", "-f", str(file), "-p", project, *args]
