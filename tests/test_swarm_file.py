"""The swarm stack file without an engine: services, jobs, ports, update and rollback,
secrets by versioned name, images on one node and across nodes, jobs for the engine's
API, and what the profile must say for Swarm (``validate`` too)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from smartshare.catalog.runtime import memory_bytes
from smartshare.cli import app as cli_app
from smartshare.deploying.stack import Stack
from smartshare.deploying.swarm import (
    SwarmDocument,
    dump_document,
    secret_name,
    stack_document,
    swarm_owner,
)
from smartshare.deploying.swarm_jobs import job_spec
from smartshare.deploying.target import ImageFacts
from smartshare.errors import InvalidInputError, UsageError

from catalogs import SECRET_VALUE
from deploys import make_deploy_catalog
from stacks import IMAGE_ID, KEY, stack

EVERYWHERE = "0.0.0.0"


def swarm_stack(**options: object) -> Stack:
    return stack(bind_address=EVERYWHERE, **options)  # type: ignore[arg-type]


def document(
    built: Stack | None = None,
    *,
    images: dict[str, ImageFacts] | None = None,
    nodes: int | None = 1,
) -> SwarmDocument:
    return stack_document(built or swarm_stack(), key=KEY, images=images or {}, nodes=nodes)


def test_services_jobs_ports_and_updates() -> None:
    services = document().document["services"]
    assert list(services) == [
        "alpha-web",
        "alpha-cache",
        "alpha-migrate",
        "beta-web",
        "beta-cache",
        "beta-migrate",
    ]
    web = services["alpha-web"]
    assert web["image"] == IMAGE_ID
    assert web["ports"] == [{"target": 8080, "published": 18081, "protocol": "tcp", "mode": "host"}]
    assert "depends_on" not in web and "restart" not in web  # docker stack ignores both
    deploy = web["deploy"]
    assert deploy["mode"] == "replicated"
    assert deploy["replicas"] == 1
    assert deploy["restart_policy"]["condition"] == "any"
    assert deploy["update_config"]["failure_action"] == "rollback"
    # a host port holds one copy per node: stop the old one first
    assert deploy["update_config"]["order"] == "stop-first"
    assert services["alpha-cache"]["deploy"]["update_config"]["order"] == "start-first"
    assert deploy["rollback_config"]["failure_action"] == "pause"
    assert deploy["resources"] == {"limits": {"memory": "64M", "cpus": "0.5"}}
    assert web["healthcheck"]["test"][-1] == "http://127.0.0.1:8080/health"
    job = services["alpha-migrate"]["deploy"]
    assert job["mode"] == "replicated-job"
    assert job["restart_policy"] == {"condition": "none"}
    assert "update_config" not in job
    # the fingerprint is on the service and on its containers
    label = web["labels"]["id.smartshare.config"]
    assert label.startswith("hmac-sha256:")
    assert web["deploy"]["labels"]["id.smartshare.config"] == label
    assert web["networks"] == ["default"]


def test_the_file_has_no_secret_and_dollars_are_doubled() -> None:
    made = document()
    text = dump_document(made.document).decode()
    assert SECRET_VALUE not in text
    parsed = yaml.safe_load(text)
    assert parsed["version"] == "3.9"
    assert parsed["networks"] == {"default": {"driver": "overlay", "attachable": True}}
    environment = parsed["services"]["beta-web"]["environment"]
    assert environment["PRICE"] == "costs $$5, not $${HOME}"
    assert all(value == {"external": True} for value in parsed["secrets"].values())
    mounts = parsed["services"]["alpha-web"]["secrets"]
    assert [m["target"] for m in mounts] == ["/run/secrets/api_token", "/etc/app/runtime.env"]
    assert {m["source"] for m in mounts} <= set(parsed["secrets"])
    assert {s.name for s in made.secrets} == set(parsed["secrets"])
    # only the services asked for, the rest of the file kept
    part = yaml.safe_load(dump_document(made.document, ["alpha-cache"]))
    assert list(part["services"]) == ["alpha-cache"]
    assert part["secrets"] == parsed["secrets"]


def test_secret_names_are_versioned_by_a_keyed_digest() -> None:
    name = secret_name("badung", "sikda-web-param-db_password", b"s3cret", key=KEY)
    assert name.startswith("badung_sikda-web-param-db_password_")
    assert len(name.rsplit("_", 1)[1]) == 12
    assert hashlib.sha256(b"s3cret").hexdigest()[:12] not in name
    assert name != secret_name("badung", "sikda-web-param-db_password", b"other", key=KEY)
    assert name != secret_name("badung", "sikda-web-param-db_password", b"s3cret", key=b"x" * 32)
    long = secret_name("p" * 63, "a-very-long-app-name-web-param-x" * 2, b"v", key=KEY)
    assert len(long) <= 64
    assert re.fullmatch(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?", long)


def test_a_changed_secret_is_a_new_secret_for_its_services_only() -> None:
    first = document().document["services"]
    second = document(swarm_stack(token="another-token-value")).document["services"]
    for key, service in first.items():
        reads_secret = "secrets" in service
        assert (service["secrets"] != second[key]["secrets"]) if reads_secret else True
        assert (service["labels"] != second[key]["labels"]) is reads_secret, key


@pytest.mark.parametrize(
    ("user", "owner"),
    [
        ("", ("0", "0", 0o400)),
        ("root", ("0", "0", 0o400)),
        ("65534:65534", ("65534", "65534", 0o400)),
        ("1000", ("1000", "0", 0o400)),
        ("nginx", ("0", "0", 0o444)),
        (None, ("0", "0", 0o444)),
    ],
)
def test_secrets_belong_to_the_user_the_image_runs_as(
    user: str | None, owner: tuple[str, str, int]
) -> None:
    assert swarm_owner(user) == owner


def test_secret_owners_come_from_the_images() -> None:
    images = {IMAGE_ID: ImageFacts(image_id=IMAGE_ID, user="65534:65534")}
    mounts = document(images=images).document["services"]["alpha-web"]["secrets"]
    assert {(m["uid"], m["gid"], m["mode"]) for m in mounts} == {("65534", "65534", 0o400)}


def test_images_on_one_node_and_across_nodes() -> None:
    pulled = "mirror.testland.go.id/hub/redis:7"
    digest = "mirror.testland.go.id/hub/redis@sha256:" + "c" * 64
    images = {pulled: ImageFacts(image_id="sha256:" + "d" * 64, user="", repo_digests=(digest,))}
    one = document(images=images).document["services"]
    assert one["alpha-cache"]["image"] == "sha256:" + "d" * 64  # by id: no registry asked
    many = document(swarm_stack(pushed=True), images=images, nodes=3).document["services"]
    assert many["alpha-web"]["image"] == (
        "registry.testland.go.id/smartshare/alpha@sha256:" + "b" * 64
    )
    assert many["alpha-cache"]["image"] == digest
    with pytest.raises(UsageError) as caught:
        document(nodes=3)
    assert "never pushed" in caught.value.message
    assert "--push" in (caught.value.hint or "")


def test_swarm_cannot_keep_ports_to_one_address() -> None:
    with pytest.raises(InvalidInputError) as caught:
        document(stack())  # the profile says 127.0.0.1
    assert "every address" in caught.value.message
    assert "bind_address" in caught.value.message


def test_jobs_become_engine_service_specs() -> None:
    made = document()
    ids = {s.name: f"id-{i}" for i, s in enumerate(made.secrets)}
    entry = dict(made.document["services"]["alpha-migrate"])
    entry["secrets"] = made.document["services"]["alpha-web"]["secrets"]
    entry["volumes"] = made.document["services"]["alpha-web"]["volumes"]
    entry["environment"] = {"PRICE": "costs $5"}
    spec = job_spec("testland-stack", "alpha-migrate", entry, network_id="net", secret_ids=ids)
    assert spec["Name"] == "testland-stack_alpha-migrate"
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert spec["Labels"]["com.docker.stack.namespace"] == "testland-stack"
    task = spec["TaskTemplate"]
    container = task["ContainerSpec"]
    assert container["Args"] == ["sh", "-c", "echo migrated"]
    assert container["Env"] == ["PRICE=costs $5"]  # the API does not interpolate
    assert container["Mounts"][0]["Source"] == "testland-stack_alpha-data"
    assert {s["SecretID"] for s in container["Secrets"]} <= set(ids.values())
    assert container["Secrets"][0]["File"]["Name"] == "/run/secrets/api_token"
    assert task["Networks"] == [{"Target": "net", "Aliases": ["alpha-migrate"]}]
    assert task["RestartPolicy"] == {"Condition": "none"}


def test_memory_sizes() -> None:
    assert memory_bytes("64M") == 64 << 20
    assert memory_bytes("1.5G") == 3 << 29
    assert memory_bytes("512k") == 512 << 10
    assert memory_bytes("1024") == 1024
    assert memory_bytes("128mb") == 128 << 20


def test_validate_refuses_swarm_with_ports_kept_to_one_address(tmp_path: Path) -> None:
    catalog = make_deploy_catalog(tmp_path, {"alpha": ()}, deploy="  target: swarm\n")
    result = CliRunner().invoke(
        cli_app,
        ["validate", str(catalog.catalog.region_file), "--catalog", str(catalog.catalog.root)],
    )
    assert result.exit_code == 1, result.output
    assert "deploy.bind_address" in result.output
    assert "every address" in " ".join(result.output.split())
