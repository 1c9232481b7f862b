"""The docker CLI, for ``docker stack deploy`` and ``docker stack rm``.

Found on PATH and asked its version without reaching the engine
(``docker --version``).  Every call names the engine explicitly when the
deploy was given one, reads the stack file from stdin (so only the services
of one step are sent) and never resolves images in a registry
(``--resolve-image never``: the stack file already names each image by id or
digest).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smartshare.errors import ExternalError, ToolUnavailableError

INSTALL_HINT = (
    "install the docker CLI on this machine (Debian/Ubuntu: `apt-get install docker.io`, or "
    "`docker-ce-cli` from Docker's repository) and run smartshare where it reaches a swarm "
    "manager (DOCKER_HOST)"
)
_VERSION = re.compile(r"version v?(\d+)\.(\d+)")
_VERSION_TIMEOUT_S = 30
_STACK_TIMEOUT_S = 300
# `docker stack config` (a check of the file without deploying it) came with CLI 23.
_STACK_CONFIG_SINCE = (23, 0)


@dataclass(frozen=True)
class DockerCli:
    path: str
    version: tuple[int, int]
    docker_host: str | None

    @property
    def shown(self) -> str:
        return f"docker {self.version[0]}.{self.version[1]}"

    @property
    def can_check_stack_files(self) -> bool:
        return self.version >= _STACK_CONFIG_SINCE

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def run(
        self, args: Sequence[str], *, stdin: bytes | None = None, timeout: float = _STACK_TIMEOUT_S
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [self.path, *args]
        try:
            return subprocess.run(
                argv,
                input=stdin if stdin is not None else b"",
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env(),
                timeout=timeout,
                check=False,
                # Ctrl-C reaches smartshare, which decides what to stop.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise ExternalError(
                f"docker {' '.join(args[:2])} did not finish in {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise ToolUnavailableError(
                f"cannot run the docker CLI ({self.path}): {exc.strerror or exc}",
                hint=INSTALL_HINT,
            ) from None


def find_docker_cli(docker_host: str | None) -> DockerCli:
    """The docker CLI on PATH; ToolUnavailableError saying what to install when there is none."""
    path = shutil.which("docker")
    if path is None:
        raise ToolUnavailableError(
            "the swarm target needs the docker CLI (`docker stack deploy`), and there is no "
            "`docker` on PATH",
            hint=INSTALL_HINT,
        )
    try:
        done = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolUnavailableError(
            f"the docker CLI at {path} does not answer `docker --version`: {exc}",
            hint=INSTALL_HINT,
        ) from None
    found = _VERSION.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise ToolUnavailableError(
            f"{path} does not look like the docker CLI (`docker --version` said "
            f"{done.stdout.strip()[:80]!r})",
            hint=INSTALL_HINT,
        )
    return DockerCli(
        path=path, version=(int(found.group(1)), int(found.group(2))), docker_host=docker_host
    )


def tail(output: bytes, count: int) -> str:
    """The last ``count`` non-empty lines of a tool's output, without its advice on --detach."""
    lines = [
        line
        for line in output.decode("utf-8", "replace").splitlines()
        if line.strip() and "--detach" not in line
    ]
    return "\n".join(lines[-count:]) or "(no output)"


def stack_deploy(cli: DockerCli, project: str, text: bytes, *, registry_auth: bool) -> None:
    """``docker stack deploy`` of the stack file ``text``; ExternalError with its output."""
    args = ["stack", "deploy", "--compose-file", "-", "--resolve-image", "never"]
    if registry_auth:
        args.append("--with-registry-auth")
    done = cli.run([*args, project], stdin=text)
    if done.returncode != 0:
        raise ExternalError(
            f"docker stack deploy failed:\n{tail(done.stdout, 12)}",
            hint="fix the cause and run deploy again; 'smartshare ps' shows what runs",
        )


def stack_config_problem(cli: DockerCli, file: Path) -> str | None:
    """What ``docker stack config`` finds wrong with ``file``; None when it is fine."""
    done = cli.run(["stack", "config", "--compose-file", str(file)], timeout=60)
    return None if done.returncode == 0 else tail(done.stdout, 10)


def stack_rm(cli: DockerCli, project: str) -> None:
    done = cli.run(["stack", "rm", project])
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 and "nothing found in stack" not in text.lower():
        raise ExternalError(f"docker stack rm {project} failed:\n{tail(done.stdout, 10)}")
