"""``deploy``, ``ps`` and ``down`` end to end: real apps built from git repositories in
tmp_path, adopted, and run with Docker Compose on the test engine, each test with a
project (the region's name) of its own, taken down with its volumes afterwards.

The module's ``stack`` (alpha, beta requiring alpha, and an external image through a
mirror rule) is deployed once; the tests that use it read it, or change it and put it
back.  Faults (a failing job, a restart loop, a missing mirror image, a taken port, an
interruption) each have a stack of their own.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smartshare.cli import app as cli_app
from smartshare.state import workspace as ws
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE
from deploys import (
    BIN,
    AdoptedCatalog,
    make_deploy_catalog,
    mirror_settings,
    page,
    said,
    with_env,
)

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.requires_docker


class Deployed(AdoptedCatalog):
    """A catalogue adopted into a workspace, run with Docker Compose."""

    def containers(self) -> dict[str, dict[str, Any]]:
        """The project's containers by service: id, state, start time, health."""
        api = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")
        try:
            found = {}
            filters = {"label": [f"com.docker.compose.project={self.project}"]}
            for listed in api.containers(all=True, filters=filters):
                described = api.inspect_container(listed["Id"])
                service = described["Config"]["Labels"]["com.docker.compose.service"]
                found[service] = described
            return found
        finally:
            api.close()

    def ids(self) -> dict[str, tuple[str, str]]:
        return {k: (c["Id"], c["State"]["StartedAt"]) for k, c in self.containers().items()}

    def exec(self, service: str, *command: str) -> str:
        client = docker.from_env()
        try:
            container = client.containers.get(self.containers()[service]["Id"])
            code, output = container.exec_run(list(command))
            assert code == 0, output
            return str(output.decode())
        finally:
            client.close()

    def env(self, service: str, name: str) -> str:
        """An environment variable of the service's container (busybox has no printenv)."""
        return self.exec(service, "sh", "-c", f'printf %s "${name}"')

    def take_down(self) -> None:
        """Remove everything of the project, whatever state the test left it in."""
        done = self.cli("down", "--workspace", str(self.workspace), "--volumes", "--yes")
        subprocess.run(
            [str(BIN / "docker-compose"), "-p", self.project, "down", "-v", "-t", "1"],
            capture_output=True,
            check=False,
            cwd=self.workspace.parent,
            timeout=120,
        )
        assert "Traceback" not in (done.stderr or ""), done.stderr


# -- the module's stack ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine_env: Any, mirrored_busybox: str
) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("deploy-stack")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DOCKER_HOST", docker_engine_env.docker_host)
        with_env(monkeypatch, root, mirror_settings(docker_engine_env.registry))
        catalog = make_deploy_catalog(root, {"alpha": (), "beta": ("alpha",)}, runtime=False)
        catalog.add_runtime(
            "alpha",
            extra_services=(
                "    - name: cache\n"
                f"      external: docker.io/library/busybox:{mirrored_busybox}\n"
                '      command: ["sleep", "3600"]\n'
            ),
        )
        catalog.add_runtime(
            "beta", extra_env='        ALPHA_URL: "{{ requires.alpha.internal_url }}"\n'
        )
        catalog.add_template(
            "beta", "page/beta.html.j2", "www/alpha.html", "{{ requires.alpha.public_url }}\n"
        )
        deployed = Deployed(catalog=catalog, workspace=root / "ws")
        try:
            deployed.adopt("beta")
            result = deployed.deploy()
            assert result.exit_code == 0, result.output
            yield deployed
        finally:
            deployed.take_down()


def test_the_stack_runs_healthy_and_its_apps_reach_each_other(stack: Deployed) -> None:
    alpha, beta = stack.catalog.ports["alpha"], stack.catalog.ports["beta"]
    assert "Kabupaten Testland" in page(alpha)
    # the requiring app's template read alpha's public URL at adopt time...
    assert page(beta, "/alpha.html").strip() == f"http://127.0.0.1:{alpha}"
    # ...and its container reaches alpha through alpha's internal URL
    url = stack.env("beta-web", "ALPHA_URL")
    assert url == "http://alpha-web:8080"
    assert "Kabupaten Testland" in stack.exec("beta-web", "wget", "-q", "-O", "-", url)
    containers = stack.containers()
    assert containers["alpha-web"]["State"]["Health"]["Status"] == "healthy"
    assert containers["alpha-init"]["State"]["ExitCode"] == 0
    assert containers["beta-init"]["State"]["ExitCode"] == 0
    # the job ran before the service that waits for it
    assert (
        containers["alpha-init"]["State"]["FinishedAt"]
        <= containers["alpha-web"]["State"]["StartedAt"]
    )
    assert stack.env("alpha-web", "PRICE") == "costs $5, not ${HOME}"
    assert stack.env("alpha-web", "GREETING") == "Selamat datang"


def test_an_external_image_comes_through_the_mirror(stack: Deployed) -> None:
    cache = stack.containers()["alpha-cache"]
    assert cache["State"]["Running"]
    registry = os.environ["SMARTSHARE_TEST_REGISTRY"]
    assert cache["Config"]["Image"].startswith(f"{registry}/dockerhub/library/busybox:1.36-")


def test_secrets_reach_a_65534_container_and_appear_nowhere_else(stack: Deployed) -> None:
    assert stack.exec("alpha-web", "id", "-u").strip() == "65534"
    assert stack.exec("alpha-web", "cat", "/run/secrets/api_token") == SECRET_VALUE
    assert stack.env("alpha-web", "API_TOKEN_FILE") == "/run/secrets/api_token"
    assert SECRET_VALUE in stack.exec("alpha-web", "cat", "/etc/app/runtime.env")
    folder = ws.deploy_dir(stack.workspace) / "secrets"
    assert folder.stat().st_mode & 0o777 == 0o700
    token = folder / "alpha-web" / "params" / "api_token"
    assert token.stat().st_mode & 0o777 == 0o400
    assert token.stat().st_uid == 65534
    for path in folder.rglob("*"):
        if path.is_dir():
            assert path.stat().st_mode & 0o777 == 0o700, path
    # nowhere else: the deploy file, the lock, the engine's view of each container, ps
    assert SECRET_VALUE not in (ws.deploy_dir(stack.workspace) / "compose.yaml").read_text()
    assert SECRET_VALUE not in (stack.workspace / "smartshare.lock").read_text()
    for name, described in stack.containers().items():
        assert SECRET_VALUE not in json.dumps(described), name
    shown = stack.cli("ps", "--workspace", str(stack.workspace), "--format", "json")
    assert shown.exit_code == 0
    assert SECRET_VALUE not in shown.output


def test_a_no_op_deploy_recreates_nothing_and_needs_no_compose(
    stack: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = stack.ids()
    lock = stack.workspace / "smartshare.lock"
    stamp = lock.stat().st_mtime_ns
    # no Docker Compose on PATH at all: a no-op does not start it
    monkeypatch.setenv("PATH", str(tmp_path))
    # nor a render worker: the runtime strings only print names
    monkeypatch.setattr(sys, "executable", "/bin/false")
    result = stack.deploy("--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["up_to_date"] is True
    assert {s["action"] for s in report["services"]} == {"up to date"}
    assert stack.ids() == before
    assert lock.stat().st_mtime_ns == stamp


def test_a_secret_file_deleted_by_hand_comes_back(stack: Deployed) -> None:
    before = stack.ids()
    token = ws.deploy_dir(stack.workspace) / "secrets" / "alpha-web" / "params" / "api_token"
    token.unlink()
    result = stack.deploy()
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert token.read_text() == SECRET_VALUE
    assert token.stat().st_uid == 65534
    assert stack.ids() == before


def test_data_survives_a_redeploy_and_a_restart(stack: Deployed) -> None:
    note = f"complaint-{secrets.token_hex(4)}"
    stack.exec("alpha-web", "sh", "-c", f"echo {note} >> /data/notes")
    client = docker.from_env()
    try:
        client.containers.get(stack.containers()["alpha-web"]["Id"]).restart(timeout=1)
    finally:
        client.close()
    result = stack.deploy()  # restarted, so not yet healthy: deploy waits, recreating nothing
    assert result.exit_code == 0, result.output
    assert note in stack.exec("alpha-web", "cat", "/data/notes")
    assert "ran" in stack.exec("alpha-web", "cat", "/data/init.log")


def test_ps_reports_each_container(stack: Deployed) -> None:
    result = stack.cli("ps", "--workspace", str(stack.workspace), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["project"] == stack.project
    rows = {row["service"]: row for row in report["services"]}
    assert set(rows) == {"alpha-web", "alpha-cache", "alpha-init", "beta-web", "beta-init"}
    web = rows["alpha-web"]
    assert (web["app"], web["kind"], web["state"], web["health"]) == (
        "alpha",
        "service",
        "running",
        "healthy",
    )
    assert web["published"] == [f"127.0.0.1:{stack.catalog.ports['alpha']}"]
    assert (
        web["image_id"]
        == web["deployed_image_id"]
        == read_lock(stack.workspace).apps["alpha"].images[0].image_id
    )
    assert rows["alpha-init"]["state"] == "exited"
    assert rows["alpha-init"]["exit_code"] == 0
    assert all(row["drift"] is None for row in rows.values()), rows
    table = stack.cli("ps", "--workspace", str(stack.workspace))
    assert table.exit_code == 0
    assert "alpha-web" in table.stdout
    status = stack.cli("status", "--workspace", str(stack.workspace), "--format", "json")
    assert all(app["deployed"] for app in json.loads(status.stdout)["apps"])


def test_deploy_and_ps_fit_80_columns(stack: Deployed) -> None:
    """A row per container with short cells; the image on a line under it."""
    region = ["--region", str(stack.region_file), "--catalog", str(stack.catalog.catalog.root)]
    workspace = ["--workspace", str(stack.workspace)]
    shown = {
        "deploy": ["deploy", *region, *workspace],
        "dry run": ["deploy", "beta", "--dry-run", *region, *workspace],
        "ps": ["ps", *workspace],
    }
    keys = {"alpha-web", "alpha-cache", "alpha-init", "beta-web", "beta-init"}
    for what, args in shown.items():
        result = CliRunner().invoke(cli_app, args, env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        wide = [line for line in result.stdout.splitlines() if len(line) > 80]
        assert not wide, f"{what}: lines wider than 80:\n" + "\n".join(wide)
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        assert keys <= set(rows), f"{what}:\n{result.stdout}"  # beta brings alpha
        assert "job" in rows["beta-init"].split(), rows["beta-init"]
        assert f"127.0.0.1:{stack.catalog.ports['beta']}" in rows["beta-web"], rows["beta-web"]
        images = [line.split()[1] for line in result.stdout.splitlines() if "  image  " in line]
        if what == "ps":
            assert not images, result.stdout  # shown only when it is not what deploy ran
        else:
            assert len(images) == len(keys), result.stdout
            assert all(i.startswith(("sha256:", "docker.io/library/busybox:")) for i in images)


def test_dry_run_with_a_dead_engine_writes_and_checks_the_file(
    stack: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stack.ids()
    compose = ws.deploy_dir(stack.workspace) / "compose.yaml"
    text = compose.read_bytes()
    compose.unlink()
    host = os.environ["DOCKER_HOST"]
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = stack.deploy("--dry-run")
    assert result.exit_code == 0, result.output
    assert "no Docker engine" in said(result)
    assert compose.read_bytes() == text
    # nor Docker Compose: the file is written, and a warning says it was not checked
    monkeypatch.setenv("PATH", str(stack.workspace / "no-such-folder"))
    result = stack.deploy("--dry-run")
    assert result.exit_code == 0, result.output
    assert "not checked with Docker Compose" in said(result)
    monkeypatch.setenv("DOCKER_HOST", host)
    assert stack.ids() == before


def test_without_an_engine_deploy_exits_3_and_touches_nothing(
    stack: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stack.ids()
    files = {p: p.stat().st_mtime_ns for p in stack.workspace.rglob("*") if p.is_file()}
    host = os.environ["DOCKER_HOST"]
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = stack.deploy()
    assert result.exit_code == 3, result.output
    assert "/nonexistent/docker.sock" in said(result)
    monkeypatch.setenv("DOCKER_HOST", host)
    assert stack.ids() == before
    assert {p: p.stat().st_mtime_ns for p in files} == files


def test_a_second_deploy_at_once_is_refused(stack: Deployed) -> None:
    with ws.run_lock(stack.workspace):
        result = stack.deploy()
    assert result.exit_code == 3, result.output
    assert "another smartshare run is using the workspace" in said(result)


# -- stacks of their own ---------------------------------------------------------------


@pytest.fixture
def own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine_env: Any, busybox_image: str
) -> Iterator[Deployed]:
    """A fresh one-app catalogue (alpha), adopted by the test, taken down afterwards."""
    registry = docker_engine_env.registry
    with_env(monkeypatch, tmp_path, mirror_settings(registry) if registry else "")
    catalog = make_deploy_catalog(tmp_path, {"alpha": ()}, runtime=False)
    deployed = Deployed(catalog=catalog, workspace=tmp_path / "ws")
    try:
        yield deployed
    finally:
        deployed.take_down()


def test_a_workspace_given_relative_to_the_current_folder(
    own: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README's examples give it (--workspace .demo/workspaces/badung)."""
    own.catalog.add_runtime("alpha")
    own.adopt("alpha")
    monkeypatch.chdir(own.workspace.parent)
    relative = own.workspace.name
    region = ["--region", str(own.region_file), "--catalog", str(own.catalog.catalog.root)]
    result = own.cli("deploy", *region, "--workspace", relative)
    assert result.exit_code == 0, result.output
    assert own.containers()["alpha-web"]["State"]["Health"]["Status"] == "healthy"
    result = own.cli("down", "--workspace", relative)
    assert result.exit_code == 0, result.output
    assert own.containers() == {}


def test_a_failing_job_is_named_with_its_log_redacted(own: Deployed) -> None:
    own.catalog.add_runtime(
        "alpha",
        extra_jobs=(
            "    - name: seed\n"
            "      image: alpha\n"
            '      command: ["sh", "-c",\n'
            '                "echo seeding with $(cat /run/secrets/api_token);'
            " printf 'x\\\\033[31my\\\\n'; exit 3\"]\n"
            "      secrets:\n"
            "        - param: api_token\n"
        ),
    )
    own.adopt("alpha")
    result = own.deploy()
    assert result.exit_code == 3, result.output
    assert "job 'alpha-seed' of app 'alpha' exited with code 3" in said(result)
    assert "seeding with [redacted]" in said(result)
    # a control sequence in the log is shown, not sent to the terminal
    assert "x\\x1b[31my" in said(result)
    assert "\x1b" not in result.stderr
    assert SECRET_VALUE not in result.output
    # the failure is not recorded as deployed: the next deploy runs in full
    assert read_lock(own.workspace).deployment.file_digest is None  # type: ignore[union-attr]


def test_a_hostile_environment_value_fails_in_a_render_worker(own: Deployed) -> None:
    own.catalog.add_runtime("alpha", extra_env="        HOSTILE: \"{{ 'x' | center(10**9) }}\"\n")
    own.adopt("alpha")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = own.deploy("--dry-run")
    assert result.exit_code == 1, result.output
    assert (
        "runtime.services.web.environment.HOSTILE of 'alpha': used more than 512 MiB of memory"
        in said(result)
    )
    # The gigabyte was asked of the worker, not of this process (where deploy runs).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib < 100 * 1024
    assert own.containers() == {}


def test_a_service_in_a_restart_loop_fails_the_deploy(own: Deployed) -> None:
    own.catalog.add_runtime(
        "alpha",
        extra_services=(
            "    - name: worker\n"
            "      image: alpha\n"
            '      command: ["sh", "-c", "echo worker gives up; exit 1"]\n'
            "      healthcheck:\n"
            '        command: ["true"]\n'
            "        interval: 1s\n"
            "        retries: 100\n"
        ),
    )
    own.adopt("alpha")
    result = own.deploy("--timeout", "120")
    assert result.exit_code == 3, result.output
    assert "service 'alpha-worker' of app 'alpha' keeps restarting" in said(result)
    assert "worker gives up" in said(result)


def test_a_service_never_ready_fails_at_the_timeout(own: Deployed) -> None:
    own.catalog.add_runtime(
        "alpha",
        extra_services=(
            "    - name: worker\n"
            "      image: alpha\n"
            "      healthcheck:\n"
            '        command: ["false"]\n'
            "        interval: 1s\n"
            "        retries: 1000\n"
        ),
    )
    own.adopt("alpha")
    result = own.deploy("--timeout", "5")
    assert result.exit_code == 3, result.output
    assert "service 'alpha-worker' of app 'alpha' not ready in time (--timeout)" in said(result)


def test_a_mirror_without_the_image_names_both_references(
    own: Deployed, docker_engine_env: Any
) -> None:
    if docker_engine_env.registry is None:
        pytest.skip("no test registry")
    tag = f"none-{secrets.token_hex(4)}"
    own.catalog.add_runtime(
        "alpha",
        extra_services=(
            f'    - name: cache\n      external: busybox:{tag}\n      command: ["sleep", "3600"]\n'
        ),
    )
    own.adopt("alpha")
    result = own.deploy()
    assert result.exit_code == 3, result.output
    message = said(result)
    assert f"docker.io/library/busybox:{tag}" in message
    assert f"{docker_engine_env.registry}/dockerhub/library/busybox:{tag}" in message
    assert own.containers() == {}


def test_a_taken_port_names_the_service(own: Deployed) -> None:
    own.catalog.add_runtime("alpha")
    own.adopt("alpha")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", own.catalog.ports["alpha"]))
        taken.listen()
        result = own.deploy()
    assert result.exit_code == 3, result.output
    message = said(result)
    assert f"port 127.0.0.1:{own.catalog.ports['alpha']}" in message
    assert "service 'alpha-web'" in message
    assert own.containers() == {}


def test_a_changed_value_recreates_only_its_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine_env: Any, busybox_image: str
) -> None:
    with_env(monkeypatch, tmp_path)
    catalog = make_deploy_catalog(tmp_path, {"alpha": (), "beta": ()})
    deployed = Deployed(catalog=catalog, workspace=tmp_path / "ws")
    try:
        deployed.adopt("alpha", "beta")
        assert deployed.deploy().exit_code == 0
        before = deployed.ids()
        deployed.adopt("alpha", "beta", overrides=("beta.greeting=Om Swastiastu",))
        result = deployed.deploy("--format", "json")
        assert result.exit_code == 0, result.output
        actions = {s["service"]: s["action"] for s in json.loads(result.stdout)["services"]}
        after = deployed.ids()
        assert after["alpha-web"] == before["alpha-web"]
        assert actions["alpha-web"] == "unchanged"
        assert after["beta-web"][0] != before["beta-web"][0]
        assert actions["beta-web"] == "recreated"
        # deploying one app brings up only its containers; the file keeps the others
        deployed.adopt("alpha", overrides=("alpha.greeting=Rahajeng",))
        result = deployed.deploy("beta", "--format", "json")
        assert result.exit_code == 0, result.output
        assert {s["app"] for s in json.loads(result.stdout)["services"]} == {"beta"}
        assert deployed.ids()["alpha-web"] == before["alpha-web"]
        assert "alpha-web:" in (ws.deploy_dir(deployed.workspace) / "compose.yaml").read_text()
        assert deployed.env("beta-web", "GREETING") == "Om Swastiastu"
        assert "Om Swastiastu" in page(catalog.ports["beta"])
    finally:
        deployed.take_down()


def test_an_interrupted_deploy_is_finished_by_the_next(own: Deployed) -> None:
    own.catalog.add_runtime(
        "alpha", init_command='["sh", "-c", "sleep 4; echo ran >> /data/init.log"]'
    )
    own.adopt("alpha")
    command = [
        str(BIN / "smartshare"),
        "deploy",
        "--region",
        str(own.region_file),
        "--workspace",
        str(own.workspace),
        "--catalog",
        str(own.catalog.catalog.root),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while "alpha-init" not in own.containers():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "run the same deploy again" in err
    assert read_lock(own.workspace).deployment.file_digest is None  # type: ignore[union-attr]
    result = own.deploy()
    assert result.exit_code == 0, result.output
    assert own.containers()["alpha-web"]["State"]["Health"]["Status"] == "healthy"


def test_down_keeps_the_data_unless_asked(
    own: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own.catalog.add_runtime("alpha")
    own.adopt("alpha")
    # without Docker Compose: exit 3 naming both ways to have it, and nothing written
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = own.deploy()
    monkeypatch.setenv("PATH", path)
    assert result.exit_code == 3, result.output
    assert "docker compose" in said(result) and "docker-compose" in said(result)
    assert not ws.deploy_dir(own.workspace).exists()
    # adopt --deploy: one command (one JSON document)
    result = own.cli(
        "adopt",
        "alpha",
        "--deploy",
        "--region",
        str(own.region_file),
        "--workspace",
        str(own.workspace),
        "--catalog",
        str(own.catalog.catalog.root),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["apps"][0]["result"] == "up to date"
    assert report["deploy"]["apps"] == ["alpha"]
    own.exec("alpha-web", "sh", "-c", "echo kept > /data/kept")
    volume = f"{own.project}_alpha-data"
    client = docker.from_env()
    try:
        result = own.cli("down", "--workspace", str(own.workspace))
        assert result.exit_code == 0, result.output
        assert own.containers() == {}
        assert client.volumes.get(volume)  # kept
        assert read_lock(own.workspace).deployment.apps == {}  # type: ignore[union-attr]
        assert "Nothing is deployed" in own.cli("ps", "--workspace", str(own.workspace)).stdout
        assert not (ws.deploy_dir(own.workspace) / "secrets").exists()
        assert own.deploy().exit_code == 0
        assert own.exec("alpha-web", "cat", "/data/kept").strip() == "kept"
        # --volumes without a terminal and without --yes: refused
        result = own.cli("down", "--workspace", str(own.workspace), "--volumes")
        assert result.exit_code == 2, result.output
        assert "--yes" in said(result)
        assert "alpha-web" in own.containers()
        # taken down first, then its data too
        assert own.cli("down", "--workspace", str(own.workspace)).exit_code == 0
        assert client.volumes.get(volume)
        result = own.cli("down", "--workspace", str(own.workspace), "--volumes", "--yes")
        assert result.exit_code == 0, result.output
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(volume)
        assert read_lock(own.workspace).deployment is None
    finally:
        client.close()
