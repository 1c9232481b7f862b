"""``deploy --target swarm``, ``ps`` and ``down`` end to end on the test engine made a
one-node swarm: real apps built from git repositories in tmp_path, adopted, and run with
``docker stack deploy``, each test with a stack (the region's name) of its own, removed
with its secrets, network and volumes afterwards.

The engine is made a swarm manager by the ``swarm`` fixture when it is not one (and
left again at the end only then); when that fails the tests fail, in CI as anywhere.
The first test runs before that, on an engine that is no manager yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartshare.state import workspace as ws
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE
from deploys import (
    AdoptedCatalog,
    free_port,
    free_udp_port,
    make_deploy_catalog,
    mirror_settings,
    page,
    said,
    with_env,
)

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.requires_docker

NAMESPACE = "com.docker.stack.namespace"
# Swarm publishes on every address: the profiles of these tests say so.
SWARM_DEPLOY = "  target: swarm\n  public_host: 127.0.0.1\n"


def api_client() -> Any:
    return docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")


class SwarmStack(AdoptedCatalog):
    """A catalogue adopted into a workspace, run as a swarm stack."""

    def services(self) -> dict[str, dict[str, Any]]:
        api = api_client()
        try:
            found = api.services(filters={"label": f"{NAMESPACE}={self.project}"})
            return {s["Spec"]["Name"].removeprefix(f"{self.project}_"): s for s in found}
        finally:
            api.close()

    def versions(self) -> dict[str, int]:
        return {key: s["Version"]["Index"] for key, s in self.services().items()}

    def tasks(self, key: str) -> list[dict[str, Any]]:
        api = api_client()
        try:
            found = api.tasks(filters={"service": f"{self.project}_{key}"})
            return sorted(found, key=lambda t: t["CreatedAt"])
        finally:
            api.close()

    def running_task(self, key: str) -> dict[str, Any]:
        running = [t for t in self.tasks(key) if t["Status"]["State"] == "running"]
        assert len(running) == 1, [(t["ID"], t["Status"]) for t in self.tasks(key)]
        return running[0]

    def exec(self, key: str, *command: str) -> str:
        container = self.running_task(key)["Status"]["ContainerStatus"]["ContainerID"]
        client = docker.from_env()
        try:
            code, output = client.containers.get(container).exec_run(list(command))
            assert code == 0, output
            return str(output.decode())
        finally:
            client.close()

    def secrets(self) -> list[dict[str, Any]]:
        api = api_client()
        try:
            return list(api.secrets(filters={"label": f"id.smartshare.project={self.project}"}))
        finally:
            api.close()

    def take_down(self) -> None:
        """Remove everything of the stack, whatever state the test left it in."""
        done = self.cli("down", "--workspace", str(self.workspace), "--volumes", "--yes")
        assert "Traceback" not in (done.stderr or ""), done.stderr
        api = api_client()
        try:
            labels = {"label": f"{NAMESPACE}={self.project}"}
            for service in api.services(filters=labels):
                api.remove_service(service["ID"])
            deadline = time.monotonic() + 120
            while api.containers(all=True, filters=labels) and time.monotonic() < deadline:
                for container in api.containers(all=True, filters=labels):
                    with contextlib.suppress(docker.errors.NotFound):
                        api.remove_container(container["Id"], force=True)
                time.sleep(0.5)
            for network in api.networks(filters=labels):
                api.remove_network(network["Id"])
            for secret in self.secrets():
                api.remove_secret(secret["ID"])
            for volume in api.volumes(filters=labels).get("Volumes") or []:
                api.remove_volume(volume["Name"], force=True)
        finally:
            api.close()


def swarm_state() -> dict[str, Any]:
    api = api_client()
    try:
        return dict(api.info()["Swarm"])
    finally:
        api.close()


def own_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apps: dict[str, tuple[str, ...]]
) -> SwarmStack:
    registry = os.environ.get("SMARTSHARE_TEST_REGISTRY")
    with_env(monkeypatch, tmp_path, mirror_settings(registry) if registry else "")
    catalog = make_deploy_catalog(
        tmp_path, apps, runtime=False, bind_address="0.0.0.0", deploy=SWARM_DEPLOY
    )
    return SwarmStack(catalog=catalog, workspace=tmp_path / "ws")


# -- before the engine is a swarm manager -----------------------------------------


def test_an_engine_that_is_no_swarm_manager_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busybox_image: str
) -> None:
    if swarm_state().get("LocalNodeState") == "active":
        pytest.skip("the engine is already in a swarm, made outside this test run")
    stack = own_stack(tmp_path, monkeypatch, {"alpha": ()})
    stack.catalog.add_runtime("alpha")
    stack.adopt("alpha")
    result = stack.deploy()
    assert result.exit_code == 3, result.output
    assert "is not part of a swarm" in said(result)
    assert "docker swarm init" in said(result)
    assert not ws.deploy_dir(stack.workspace).exists()
    # a dry run writes the file anyway, and says what is unknown
    result = stack.deploy("--dry-run")
    assert result.exit_code == 0, result.output
    assert "is not part of a swarm" in said(result)
    assert "replicated-job" in (ws.deploy_dir(stack.workspace) / "stack.yaml").read_text()


# -- on a swarm manager --------------------------------------------------------------


@pytest.fixture(scope="module")
def swarm(docker_engine_env: Any) -> Iterator[None]:
    """The test engine as a swarm manager: made one when it is not, left only then."""
    client = docker.DockerClient(base_url=docker_engine_env.docker_host, version="auto")
    made = False
    try:
        state = client.info()["Swarm"]
        if state.get("LocalNodeState") != "active":
            drop_gateway_bridge(client)
            try:
                # VXLAN devices of every engine on the host share one UDP port by
                # default, and a second one with the same VNI fails ("error creating
                # vxlan interface: file exists"): this engine's overlay gets its own.
                client.swarm.init(
                    advertise_addr="127.0.0.1",
                    listen_addr=f"127.0.0.1:{free_port()}",
                    data_path_port=free_udp_port(),
                )
            except docker.errors.APIError as exc:
                pytest.fail(f"docker swarm init failed on the test engine: {exc}", pytrace=False)
            made = True
        elif not state.get("ControlAvailable"):
            pytest.fail("the test engine is a swarm worker, not a manager", pytrace=False)
        yield
    finally:
        if made:
            client.swarm.leave(force=True)
            drop_gateway_bridge(client)
        client.close()


def drop_gateway_bridge(client: Any) -> None:
    """Remove the engine's ``docker_gwbridge``, which outlives the swarm that made it.

    Kept, it breaks the next swarm's host-mode published ports on this engine
    (connections reset, or answered by another container): a second test run
    on the same engine failed so.
    """
    for network in client.networks.list(names=["docker_gwbridge"]):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_engine_env: Any,
    mirrored_busybox: str,
    swarm: None,
) -> Iterator[SwarmStack]:
    """alpha (with a job, a secret, a runtime file, a volume and a mirrored external
    service) and beta, which requires alpha, deployed on the swarm by the profile's
    ``deploy.target: swarm``."""
    root = tmp_path_factory.mktemp("swarm-stack")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DOCKER_HOST", docker_engine_env.docker_host)
        with_env(monkeypatch, root, mirror_settings(docker_engine_env.registry))
        catalog = make_deploy_catalog(
            root,
            {"alpha": (), "beta": ("alpha",)},
            runtime=False,
            bind_address="0.0.0.0",
            deploy=SWARM_DEPLOY,
        )
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
        deployed = SwarmStack(catalog=catalog, workspace=root / "ws")
        try:
            deployed.adopt("beta")
            result = deployed.deploy()
            assert result.exit_code == 0, result.output
            yield deployed
        finally:
            deployed.take_down()


def test_the_stack_runs_healthy_and_is_reachable(stack: SwarmStack) -> None:
    alpha = stack.catalog.ports["alpha"]
    assert "Kabupaten Testland" in page(alpha)
    services = stack.services()
    assert set(services) == {"alpha-web", "alpha-cache", "alpha-init", "beta-web", "beta-init"}
    web = services["alpha-web"]["Spec"]
    assert web["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert web["TaskTemplate"]["ContainerSpec"]["Image"].startswith("sha256:")
    assert web["UpdateConfig"]["FailureAction"] == "rollback"
    assert web["UpdateConfig"]["Order"] == "stop-first"  # a host port: one copy per node
    assert services["alpha-cache"]["Spec"]["UpdateConfig"]["Order"] == "start-first"
    assert "ReplicatedJob" in services["alpha-init"]["Spec"]["Mode"]
    # beta reaches alpha by its name on the stack's network, through alpha's output
    url = stack.exec("beta-web", "sh", "-c", 'printf %s "$ALPHA_URL"')
    assert url == "http://alpha-web:8080"
    assert "Kabupaten Testland" in stack.exec("beta-web", "wget", "-q", "-O", "-", url)
    assert stack.exec("alpha-web", "sh", "-c", 'printf %s "$PRICE"') == "costs $5, not ${HOME}"
    # the job ran, and completed, before the service waiting for it started
    job = stack.tasks("alpha-init")[-1]
    assert job["Status"]["State"] == "complete"
    assert job["Status"]["Timestamp"] <= stack.running_task("alpha-web")["CreatedAt"]
    assert "ran" in stack.exec("alpha-web", "cat", "/data/init.log")
    # the external image came through the mirror (and runs by the id pulled)
    registry = os.environ["SMARTSHARE_TEST_REGISTRY"]
    lock = read_lock(stack.workspace)
    assert lock.deployment is not None and lock.deployment.target == "swarm"
    cache = lock.deployment.apps["alpha"].services["alpha-cache"]
    assert cache.image.startswith(f"{registry}/dockerhub/library/busybox:1.36-")


def test_secrets_reach_a_65534_container_and_appear_nowhere_else(stack: SwarmStack) -> None:
    assert stack.exec("alpha-web", "id", "-u").strip() == "65534"
    assert stack.exec("alpha-web", "cat", "/run/secrets/api_token") == SECRET_VALUE
    assert SECRET_VALUE in stack.exec("alpha-web", "cat", "/etc/app/runtime.env")
    listed = stack.exec("alpha-web", "ls", "-ln", "/run/secrets/api_token").split()
    assert (listed[0], listed[2]) == ("-r--------", "65534")
    # swarm secrets, named by a keyed digest (never a plain hash of the value)
    names = [s["Spec"]["Name"] for s in stack.secrets()]
    assert any(n.startswith(f"{stack.project}_alpha-web-param-api_token_") for n in names)
    plain = hashlib.sha256(SECRET_VALUE.encode()).hexdigest()[:12]
    assert not any(plain in name for name in names)
    # nowhere else: no secret files on disk, the stack file, the lock, the services, ps
    folder = ws.deploy_dir(stack.workspace)
    assert not (folder / "secrets").exists()
    assert SECRET_VALUE not in (folder / "stack.yaml").read_text()
    assert SECRET_VALUE not in (stack.workspace / "smartshare.lock").read_text()
    for key, service in stack.services().items():
        assert SECRET_VALUE not in json.dumps(service), key
    for secret in stack.secrets():
        assert "Data" not in secret["Spec"] or SECRET_VALUE not in json.dumps(secret)
    shown = stack.cli("ps", "--workspace", str(stack.workspace), "--format", "json")
    assert shown.exit_code == 0
    assert SECRET_VALUE not in shown.output


def test_a_no_op_deploy_updates_nothing_and_needs_no_docker_cli(
    stack: SwarmStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    versions = stack.versions()
    tasks = {key: [t["ID"] for t in stack.tasks(key)] for key in versions}
    lock = stack.workspace / "smartshare.lock"
    stamp = lock.stat().st_mtime_ns
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker CLI at all
    result = stack.deploy("--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["up_to_date"] is True
    assert report["target"] == "swarm"
    assert {s["action"] for s in report["services"]} == {"up to date"}
    assert stack.versions() == versions
    assert {key: [t["ID"] for t in stack.tasks(key)] for key in versions} == tasks
    assert lock.stat().st_mtime_ns == stamp


def test_ps_reports_each_service(stack: SwarmStack) -> None:
    result = stack.cli("ps", "--workspace", str(stack.workspace), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["project"], report["target"]) == (stack.project, "swarm")
    rows = {row["service"]: row for row in report["services"]}
    assert set(rows) == {"alpha-web", "alpha-cache", "alpha-init", "beta-web", "beta-init"}
    web = rows["alpha-web"]
    assert (web["app"], web["kind"], web["state"], web["health"]) == (
        "alpha",
        "service",
        "running",
        "healthy",
    )
    assert web["published"] == [f"0.0.0.0:{stack.catalog.ports['alpha']}"]
    assert web["image_id"] == read_lock(stack.workspace).apps["alpha"].images[0].image_id
    assert (rows["alpha-init"]["state"], rows["alpha-init"]["exit_code"]) == ("exited", 0)
    assert all(row["drift"] is None for row in rows.values()), rows
    table = stack.cli("ps", "--workspace", str(stack.workspace))
    assert table.exit_code == 0
    assert "alpha-web" in table.stdout


def test_a_dry_run_writes_the_stack_file_and_touches_nothing(
    stack: SwarmStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = stack.versions()
    file = ws.deploy_dir(stack.workspace) / "stack.yaml"
    text = file.read_bytes()
    file.unlink()
    result = stack.deploy("--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    assert {s["action"] for s in json.loads(result.stdout)["services"]} <= {
        "unchanged",
        "run again",
    }
    assert file.read_bytes() == text
    host = os.environ["DOCKER_HOST"]
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = stack.deploy("--dry-run")
    assert result.exit_code == 0, result.output
    assert "no Docker engine" in said(result)
    assert file.is_file()
    monkeypatch.setenv("DOCKER_HOST", host)
    assert stack.versions() == versions


# -- stacks of their own ---------------------------------------------------------------


@pytest.fixture
def own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swarm: None, busybox_image: str
) -> Iterator[SwarmStack]:
    """A fresh one-app catalogue (alpha) on the swarm, adopted by the test, removed after."""
    made = own_stack(tmp_path, monkeypatch, {"alpha": ()})
    try:
        yield made
    finally:
        made.take_down()


def test_a_changed_value_rolls_out_only_to_its_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swarm: None, busybox_image: str
) -> None:
    made = own_stack(tmp_path, monkeypatch, {"alpha": (), "beta": ()})
    made.catalog.add_runtime("alpha")
    made.catalog.add_runtime("beta")
    try:
        made.adopt("alpha", "beta")
        assert made.deploy().exit_code == 0
        versions = made.versions()
        made.adopt("alpha", "beta", overrides=("beta.greeting=Om Swastiastu",))
        result = made.deploy("--format", "json")
        assert result.exit_code == 0, result.output
        after = made.versions()
        assert after["alpha-web"] == versions["alpha-web"]
        assert after["alpha-init"] == versions["alpha-init"]  # alpha's job did not run again
        assert after["beta-web"] != versions["beta-web"]
        assert made.exec("beta-web", "sh", "-c", 'printf %s "$GREETING"') == "Om Swastiastu"
        assert "Om Swastiastu" in page(made.catalog.ports["beta"])
        # a changed secret is a new swarm secret; the old version goes once unused
        old = {s["Spec"]["Name"] for s in made.secrets()}
        monkeypatch.setenv("TESTLAND_TOKEN", "rotated-token-value")
        result = made.deploy()
        assert result.exit_code == 0, result.output
        assert made.exec("alpha-web", "cat", "/run/secrets/api_token") == "rotated-token-value"
        names = {s["Spec"]["Name"] for s in made.secrets()}
        token_names = [n for n in names if "alpha-web-param-api_token" in n]
        assert len(token_names) == 1 and token_names[0] not in old
        assert not [n for n in old if "param-api_token" in n and n in names]
    finally:
        made.take_down()


def test_a_failing_update_is_rolled_back(own: SwarmStack) -> None:
    own.catalog.add_runtime("alpha")
    manifest = own.catalog.manifest("alpha")
    manifest.write_text(manifest.read_text().replace("retries: 30", "retries: 2"))
    own.adopt("alpha")
    assert own.deploy().exit_code == 0
    first = own.services()["alpha-web"]
    old_label = first["Spec"]["Labels"]["id.smartshare.config"]
    # the next version's health check fails: Swarm rolls the service back
    manifest.write_text(manifest.read_text().replace("path: /}", "path: /missing}"))
    own.adopt("alpha")
    result = own.deploy("--timeout", "240")
    assert result.exit_code == 3, result.output
    message = said(result)
    assert "service 'alpha-web' of app 'alpha' failed to update" in message
    assert "rolled it back to the previous version" in message
    web = own.services()["alpha-web"]
    assert web["UpdateStatus"]["State"] == "rollback_completed"
    assert web["Spec"]["Labels"]["id.smartshare.config"] == old_label
    running = own.running_task("alpha-web")
    assert running["Spec"]["ContainerSpec"]["Labels"]["id.smartshare.config"] == old_label
    assert "Kabupaten Testland" in page(own.catalog.ports["alpha"])
    assert read_lock(own.workspace).deployment.file_digest is None  # type: ignore[union-attr]


def test_jobs_run_first_and_a_failing_one_is_named_with_its_log(own: SwarmStack) -> None:
    own.catalog.add_runtime(
        "alpha",
        extra_jobs=(
            "    - name: seed\n"
            "      image: alpha\n"
            '      command: ["sh", "-c",\n'
            '                "echo seeding with $(cat /run/secrets/api_token); exit 3"]\n'
            "      secrets:\n"
            "        - param: api_token\n"
        ),
    )
    web = own.catalog.manifest("alpha")
    web.write_text(
        web.read_text().replace(
            "        - name: init\n          condition: completed\n",
            "        - name: init\n          condition: completed\n"
            "        - name: seed\n          condition: completed\n",
        )
    )
    own.adopt("alpha")
    result = own.deploy()
    assert result.exit_code == 3, result.output
    assert "job 'alpha-seed' of app 'alpha' exited with code 3" in said(result)
    assert "seeding with [redacted]" in said(result)
    assert SECRET_VALUE not in result.output
    # the service waiting for the job was never started
    assert "alpha-web" not in own.services()


def test_a_service_that_keeps_failing_is_named_with_its_log(own: SwarmStack) -> None:
    own.catalog.add_runtime(
        "alpha",
        extra_services=(
            "    - name: worker\n"
            "      image: alpha\n"
            '      command: ["sh", "-c", "echo worker gives up; exit 1"]\n'
        ),
    )
    own.adopt("alpha")
    result = own.deploy("--timeout", "120")
    assert result.exit_code == 3, result.output
    assert "service 'alpha-worker' of app 'alpha' keeps restarting" in said(result)
    assert "last exit code 1" in said(result)
    assert "worker gives up" in said(result)


def test_without_the_docker_cli_then_down(
    own: SwarmStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own.catalog.add_runtime("alpha")
    own.adopt("alpha")
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = own.deploy("--target", "swarm")
    monkeypatch.setenv("PATH", path)
    assert result.exit_code == 3, result.output
    assert "docker CLI" in said(result)
    assert not ws.deploy_dir(own.workspace).exists()
    assert own.deploy().exit_code == 0
    # the stack runs on swarm: compose may not start it beside
    result = own.deploy("--target", "compose")
    assert result.exit_code == 2, result.output
    assert "runs on swarm" in said(result)
    assert "smartshare down" in said(result)
    own.exec("alpha-web", "sh", "-c", "echo kept > /data/kept")
    volume = f"{own.project}_alpha-data"
    api = api_client()
    try:
        result = own.cli("down", "--workspace", str(own.workspace))
        assert result.exit_code == 0, result.output
        assert "service(s) removed; data volumes kept" in " ".join(result.stdout.split())
        assert own.services() == {}
        assert own.secrets() == []
        assert api.inspect_volume(volume)
        # The project stays recorded, with no app, so that a later 'down --volumes' finds it.
        kept = read_lock(own.workspace).deployment
        assert kept is not None and kept.project == own.project and kept.apps == {}
        assert own.deploy().exit_code == 0
        assert own.exec("alpha-web", "cat", "/data/kept").strip() == "kept"
        result = own.cli("down", "--workspace", str(own.workspace), "--volumes", "--yes")
        assert result.exit_code == 0, result.output
        with pytest.raises(docker.errors.NotFound):
            api.inspect_volume(volume)
        assert api.networks(filters={"label": f"{NAMESPACE}={own.project}"}) == []
    finally:
        api.close()
