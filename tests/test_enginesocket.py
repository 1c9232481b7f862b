"""The engine probe that spares a no-op run docker-py: endpoint resolution and real calls."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from smartshare.building.engine import DockerEngine, connect
from smartshare.building.enginesocket import DEFAULT_SOCKET, ENGINE_HINT, EngineSocket, socket_path
from smartshare.errors import EngineUnavailableError


@pytest.fixture
def clean_docker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def test_socket_path_follows_the_docker_cli(
    clean_docker_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert socket_path() == DEFAULT_SOCKET
    assert socket_path("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    assert socket_path("tcp://127.0.0.1:2375") is None  # left to docker-py
    assert socket_path("ssh://builder@example.go.id") is None
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/engine.sock")
    assert socket_path() == "/tmp/engine.sock"
    assert socket_path("tcp://10.0.0.1:2376") is None  # the argument wins
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    assert socket_path() is None
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert socket_path() == DEFAULT_SOCKET
    monkeypatch.delenv("DOCKER_CONTEXT")
    (clean_docker_env / "config.json").write_text(json.dumps({"currentContext": "rootless"}))
    assert socket_path() is None
    (clean_docker_env / "config.json").write_text(json.dumps({"auths": {}}))
    assert socket_path() == DEFAULT_SOCKET
    (clean_docker_env / "config.json").write_text("{not json")
    assert socket_path() is None  # docker-py reads it and says what is wrong


def test_missing_socket_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "docker.sock"
    probe = EngineSocket(str(missing), endpoint=f"unix://{missing}", timeout=5)
    with pytest.raises(EngineUnavailableError) as caught:
        probe.ping()
    assert f"unix://{missing}" in caught.value.message
    assert "does not exist" in caught.value.message
    assert caught.value.hint == ENGINE_HINT


def test_something_else_on_the_socket_is_not_an_engine(tmp_path: Path) -> None:
    path = tmp_path / "not-docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        probe = EngineSocket(str(path), endpoint=f"unix://{path}", timeout=5)
        with pytest.raises(EngineUnavailableError, match="no Docker engine answers"):
            probe.ping()  # 200 without an API version: not an engine
    finally:
        thread.join(timeout=5)
        server.close()


@pytest.mark.requires_docker
def test_probe_answers_like_docker_py(busybox_image: str) -> None:
    path = socket_path()
    assert path is not None, "the test engine listens on a unix socket"
    probe = EngineSocket(path, endpoint=os.environ["DOCKER_HOST"], timeout=30)
    version = probe.ping()
    import docker

    client = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")
    try:
        assert version == client.api_version
        assert probe.image_id(busybox_image) == client.inspect_image(busybox_image)["Id"]
    finally:
        client.close()
    assert probe.image_id("smartshare-test/never-built:0.0.0") is None
    with connect() as engine:
        assert engine.image_id(busybox_image) == probe.image_id(busybox_image)
        assert engine.image_id("smartshare-test/never-built:0.0.0") is None


@pytest.mark.requires_docker
def test_container_reads_answer_alike_over_the_socket_and_docker_py(busybox_image: str) -> None:
    """deploy and ps read through the probe on a local socket, through docker-py elsewhere."""
    import docker

    label = {"org.smartshare.test.reads": uuid.uuid4().hex}
    client = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")
    container = client.create_container(
        busybox_image, command=["sh", "-c", "echo out; echo err >&2"], labels=label
    )["Id"]
    try:
        client.start(container)
        client.wait(container, timeout=60)
        with connect() as over_socket:
            via_docker_py = DockerEngine(
                api=client,
                params={"base_url": os.environ["DOCKER_HOST"]},
                endpoint=os.environ["DOCKER_HOST"],
                timeout=60,
                version=client.api_version,
            )
            for engine in (over_socket, via_docker_py):
                assert [c["Id"] for c in engine.containers(label)] == [container]
                described = engine.inspect_container(container)
                assert described is not None
                assert described["Config"]["Labels"] == label
                assert engine.inspect_container("0" * 64) is None
                image = engine.inspect_image(busybox_image)
                assert image is not None
                assert image["Id"] == described["Image"]
                assert engine.inspect_image("smartshare-test/never-built:0.0.0") is None
                assert sorted(engine.container_logs(container, tail=10).split()) == ["err", "out"]
    finally:
        client.remove_container(container, force=True)
        client.close()
