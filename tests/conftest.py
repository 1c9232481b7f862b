"""Shared fixtures.

Docker (tests marked ``@pytest.mark.requires_docker``)
------------------------------------------------------
A marked test gets an engine and a registry without asking: DOCKER_HOST (and
SMARTSHARE_TEST_REGISTRY, when a registry is known) are set for it, so
smartshare code that calls ``smartshare.building.engine.connect()`` reaches the test engine.

``docker_engine_env`` (session) -> ``DockerEnv(docker_host, registry, sandbox)``.
The engine is, in order of preference:

1. the one DOCKER_HOST (or the default socket / docker context) names, if it
   answers; the registry is SMARTSHARE_TEST_REGISTRY if it answers, else a
   ``docker-registry serve`` started for the session (registry None if neither);
2. a running ``scripts/docker-sandbox`` of this checkout (``.sandbox/env`` or
   ``$SMARTSHARE_SANDBOX_DIR/env``);
3. a sandbox started for the session in a short folder under /tmp (root only:
   the script installs Debian's dockerd if needed), stopped at session end.

With none of these the tests are skipped, except when CI is set: then a missing
engine fails them, so CI can never pass by skipping.

After each marked test, the images it claimed (``engineimages.claim``: the
catalogues of tests/catalogs.py claim their region) are removed, so a run
leaves the engine's image list as it found it.

``docker_registry`` -> "127.0.0.1:PORT", skipping (failing in CI) when there is none.
``busybox_image`` (session) -> "busybox:1.36", imported from the host's static
busybox when the engine lacks it (Docker Hub may be unreachable).
``mirrored_busybox`` (session) -> TAG: busybox pushed to the test registry as the
mirror of docker.io/library/busybox:TAG, with no local copy under that name.

The cache folder
----------------
SMARTSHARE_CACHE_DIR points at a folder of the session (``validate`` keeps
its cache there): the tests never read or fill the user's ``~/.cache``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import engineimages
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SCRIPT = REPO_ROOT / "scripts" / "docker-sandbox"
BUSYBOX_IMAGE = "busybox:1.36"


@pytest.fixture(scope="session", autouse=True)
def _session_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMARTSHARE_CACHE_DIR", str(folder))
        yield folder


@dataclass(frozen=True)
class DockerEnv:
    docker_host: str
    registry: str | None  # "127.0.0.1:PORT"
    sandbox: bool  # True when the engine is a docker-sandbox (no TLS, no context)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"CI needs a Docker engine and registry: {reason}", pytrace=False)
    pytest.skip(reason)


def _http_ok(url: str) -> bool:
    # No proxies: a proxy from the environment cannot reach our 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _engine_host(docker_host: str | None) -> str | None:
    """The endpoint of an answering engine (``docker_host`` or the environment's), else None."""
    from smartshare.building.engine import connect
    from smartshare.errors import EngineUnavailableError

    try:
        engine = connect(docker_host=docker_host, timeout=30)
    except EngineUnavailableError:
        return None
    engine.close()
    if docker_host:
        return docker_host
    # engine.endpoint is for messages: it may name the docker context after the URL.
    return os.environ.get("DOCKER_HOST") or engine.endpoint.split(" ", 1)[0]


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_registry(stack: ExitStack, root: Path) -> str | None:
    """A ``docker-registry serve`` for the session, or None when it is not installed."""
    binary = shutil.which("docker-registry")
    if binary is None:
        return None
    port = _free_port()
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    log = (root / "registry.log").open("ab")
    stack.callback(log.close)
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _http_ok(f"http://127.0.0.1:{port}/v2/"):
            return f"127.0.0.1:{port}"
        if process.poll() is not None:
            break
        time.sleep(0.2)
    return None


def _running_sandbox() -> DockerEnv | None:
    folder = os.environ.get("SMARTSHARE_SANDBOX_DIR") or str(REPO_ROOT / ".sandbox")
    env_file = Path(folder) / "env"
    if not env_file.is_file():
        return None
    values = _read_env_file(env_file)
    host = values.get("DOCKER_HOST")
    registry = values.get("SMARTSHARE_TEST_REGISTRY")
    if not host or _engine_host(host) is None:
        return None
    if registry and not _http_ok(f"http://{registry}/v2/"):
        registry = None
    return DockerEnv(docker_host=host, registry=registry, sandbox=True)


def _can_start_sandbox() -> str | None:
    """Why no sandbox can be started here, or None when one can."""
    if os.geteuid() != 0:
        return "not root, so scripts/docker-sandbox cannot start an engine"
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "dockerd is not installed and apt-get is not available to install it"
    return None


@pytest.fixture(scope="session")
def docker_engine_env() -> Iterator[DockerEnv]:
    """An answering engine and (when possible) a registry; see the module docstring."""
    with ExitStack() as stack:
        outside = _engine_host(None)
        if outside is not None:
            registry = os.environ.get("SMARTSHARE_TEST_REGISTRY")
            if not registry or not _http_ok(f"http://{registry}/v2/"):
                root = Path(tempfile.mkdtemp(prefix="ssreg-"))
                stack.callback(shutil.rmtree, root, True)
                registry = _start_registry(stack, root)
            yield DockerEnv(docker_host=outside, registry=registry, sandbox=False)
            return

        running = _running_sandbox()
        if running is not None:
            yield running
            return

        why_not = _can_start_sandbox()
        if why_not is not None:
            _unavailable(f"no Docker engine answers and {why_not}")
        # Short: the engine's unix sockets live under it.
        folder = Path(tempfile.mkdtemp(prefix="sbx-", dir="/tmp"))
        stack.callback(shutil.rmtree, folder, True)
        stack.callback(
            subprocess.run,
            [str(SANDBOX_SCRIPT), "stop", str(folder)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        try:
            started = subprocess.run(
                [str(SANDBOX_SCRIPT), "start", str(folder)],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _unavailable("scripts/docker-sandbox start did not finish within 900 s")
        if started.returncode != 0:
            tail = "\n".join(started.stderr.strip().splitlines()[-30:])
            _unavailable(f"scripts/docker-sandbox start failed:\n{tail}")
        values = _read_env_file(folder / "env")
        yield DockerEnv(
            docker_host=values["DOCKER_HOST"],
            registry=values.get("SMARTSHARE_TEST_REGISTRY"),
            sandbox=True,
        )


@pytest.fixture(autouse=True)
def _docker_for_marked_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point marked tests at the session's engine, and remove afterwards the images
    they claimed (tests/engineimages.py); unmarked tests pay nothing."""
    engineimages.forget()
    if request.node.get_closest_marker("requires_docker") is None:
        yield
        engineimages.forget()
        return
    env: DockerEnv = request.getfixturevalue("docker_engine_env")
    monkeypatch.setenv("DOCKER_HOST", env.docker_host)
    if env.sandbox:
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            monkeypatch.delenv(name, raising=False)
    if env.registry:
        monkeypatch.setenv("SMARTSHARE_TEST_REGISTRY", env.registry)
    yield
    import docker

    api = docker.APIClient(base_url=env.docker_host, version="auto")
    try:
        engineimages.remove_claimed(api)
    finally:
        api.close()


@pytest.fixture
def docker_registry(docker_engine_env: DockerEnv) -> str:
    """The session registry as "127.0.0.1:PORT" (plain HTTP, trusted by the engine)."""
    if docker_engine_env.registry is None:
        _unavailable("no registry: set SMARTSHARE_TEST_REGISTRY or install docker-registry")
    return docker_engine_env.registry


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # ELFCLASS64; 32-bit hosts are not supported
        return False
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    pt_interp = 3
    return all(
        struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] != pt_interp
        for i in range(phnum)
    )


def _busybox_rootfs(busybox: Path) -> bytes:
    """A root filesystem tar: busybox plus one link per applet (as scripts/docker-sandbox)."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def busybox_image(docker_engine_env: DockerEnv) -> str:
    """Make sure the session engine has busybox:1.36; return that reference."""
    import docker

    api = docker.APIClient(base_url=docker_engine_env.docker_host, version="auto")
    try:
        try:
            api.inspect_image(BUSYBOX_IMAGE)
            return BUSYBOX_IMAGE
        except docker.errors.ImageNotFound:
            pass
        candidates = [Path("/bin/busybox"), Path(shutil.which("busybox") or "/bin/busybox")]
        busybox = next((p for p in candidates if p.is_file() and _is_static_elf(p)), None)
        if busybox is None:
            _unavailable(
                f"{BUSYBOX_IMAGE} is missing and no static busybox is installed "
                "(Debian package busybox-static)"
            )
        repository, tag = BUSYBOX_IMAGE.split(":")
        api.import_image_from_data(
            _busybox_rootfs(busybox),
            repository=repository,
            tag=tag,
            changes=["ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["sh"]'],
        )
        api.inspect_image(BUSYBOX_IMAGE)
        return BUSYBOX_IMAGE
    finally:
        api.close()


@pytest.fixture(scope="session")
def mirrored_busybox(docker_engine_env: DockerEnv, busybox_image: str) -> Iterator[str]:
    """busybox pushed to the test registry as the mirror of docker.io/library/busybox:TAG.

    Returns TAG; the engine keeps no local copy under the mirror's name, so a
    deploy must pull it through the mirror rule.
    """
    import secrets

    import docker

    registry = docker_engine_env.registry
    if registry is None:
        _unavailable("no test registry: set SMARTSHARE_TEST_REGISTRY or install docker-registry")
    tag = f"1.36-{secrets.token_hex(4)}"
    repository = f"{registry}/dockerhub/library/busybox"
    api = docker.APIClient(base_url=docker_engine_env.docker_host, version="auto")
    try:
        api.tag(busybox_image, repository, tag)
        for chunk in api.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in chunk, chunk
        api.remove_image(f"{repository}:{tag}")
        yield tag
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_image(f"{repository}:{tag}")
        api.close()
