"""smartshare.building against a real engine and registry (see conftest.py)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import engineimages
import pytest

from smartshare.building import engine_build
from smartshare.building.context import check_context, pack_context
from smartshare.building.engine import BuiltImage, DockerEngine, connect
from smartshare.building.labels import labelled_config
from smartshare.building.push import follow_push, split_reference
from smartshare.errors import (
    BuildError,
    EngineUnavailableError,
    InvalidInputError,
    PushError,
    SmartshareError,
    UnsafePathError,
)

if TYPE_CHECKING:
    from conftest import DockerEnv

LABELS = {
    "org.smartshare.app": "demo-app",
    "org.smartshare.region": "kota-contoh",
    # Quotes, backslashes and $VARIABLES must reach the image as written.
    "org.opencontainers.image.description": 'Aspirasi "warga" \\ $HOME ${PATH} ü',
}


# -- no engine needed -----------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("app", ("app", "latest")),
        ("app:1.0", ("app", "1.0")),
        ("ns/app:v2-rc.1", ("ns/app", "v2-rc.1")),
        ("host:5000/ns/app", ("host:5000/ns/app", "latest")),
        ("host:5000/ns/app:tag", ("host:5000/ns/app", "tag")),
        ("127.0.0.1:5000/a/b/c:1", ("127.0.0.1:5000/a/b/c", "1")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert split_reference(reference) == expected


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("", "is not a valid image reference"),
        ("app:", "is not a valid image reference"),
        (":tag", "is not a valid image reference"),
        (" app", "is not a valid image reference"),
        ("host:5000/", "is not a valid image reference"),
        ("app@sha256:" + "0" * 64, "names a digest; a tag is needed here"),
    ],
)
def test_split_reference_rejects(reference: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        split_reference(reference)
    assert f"'{reference}' {says}" in caught.value.message
    assert caught.value.hint is not None
    assert "registry/name:tag" in caught.value.hint


def test_connect_to_missing_engine_names_the_endpoint() -> None:
    endpoint = "unix:///nonexistent/docker.sock"
    with pytest.raises(EngineUnavailableError) as caught:
        connect(docker_host=endpoint)
    assert endpoint in caught.value.message
    assert caught.value.hint is not None
    assert "docker-sandbox start" in caught.value.hint
    assert "--no-build" in caught.value.hint


@pytest.fixture
def unreachable_engine() -> Iterator[DockerEngine]:
    """An engine object whose endpoint does not exist: any contact would fail loudly."""
    import docker

    endpoint = "unix:///nonexistent/docker.sock"
    # An explicit API version makes docker-py skip its probe, so nothing is contacted here.
    api = docker.APIClient(base_url=endpoint, version="1.41")
    engine = DockerEngine(
        api=api, params={"base_url": endpoint}, endpoint=endpoint, timeout=5, version="1.41"
    )
    yield engine
    engine.close()


def test_missing_context_fails_before_the_engine(
    unreachable_engine: DockerEngine, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-app"
    with pytest.raises(BuildError) as caught:
        unreachable_engine.build(
            source_dir=missing, dockerfile="Dockerfile", tags=["t:1"], labels={}
        )
    assert str(missing) in caught.value.message
    assert caught.value.hint == "check the app's build context path in its manifest"


def test_missing_dockerfile_fails_before_the_engine(
    unreachable_engine: DockerEngine, tmp_path: Path
) -> None:
    with pytest.raises(BuildError) as caught:
        unreachable_engine.build(
            source_dir=tmp_path, dockerfile="docker/Dockerfile.prod", tags=["t:1"], labels={}
        )
    assert str(tmp_path / "docker" / "Dockerfile.prod") in caught.value.message
    assert caught.value.hint == (
        "check the app's dockerfile path in its manifest (relative to the build context)"
    )


@pytest.mark.parametrize("dockerfile", ["../Dockerfile", "/etc/hostname"])
def test_dockerfile_outside_context_is_rejected(
    unreachable_engine: DockerEngine, tmp_path: Path, dockerfile: str
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (tmp_path / "Dockerfile").write_text("FROM busybox:1.36\n")
    with pytest.raises(UnsafePathError, match=r"must stay inside|not absolute"):
        unreachable_engine.build(source_dir=context, dockerfile=dockerfile, tags=[], labels={})


def test_invalid_tag_is_rejected(unreachable_engine: DockerEngine, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox:1.36\n")
    with pytest.raises(BuildError, match="not a valid image tag"):
        unreachable_engine.build(
            source_dir=tmp_path, dockerfile="Dockerfile", tags=["Upper/Case:1"], labels={}
        )


def test_half_set_registry_credentials_are_rejected(
    unreachable_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTSHARE_REGISTRY_USERNAME", "someone")
    monkeypatch.delenv("SMARTSHARE_REGISTRY_PASSWORD", raising=False)
    with pytest.raises(PushError, match="SMARTSHARE_REGISTRY_PASSWORD"):
        unreachable_engine.push(reference="127.0.0.1:5000/x/y:1")


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """An app's scratch folder as adopt lays it out: the source tree beside its runtime files."""
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime/runtime.env").write_text("API_TOKEN=secret\n")
    src = tmp_path / "src"
    write_context(src, "FROM busybox:1.36\nCOPY . /leak/\n", {"www/index.html": "<p>hi</p>\n"})
    return src


@pytest.mark.parametrize("link", ["..", "../..", "../../..", "/", "www/../.."])
def test_a_build_context_through_a_symlink_is_refused(
    unreachable_engine: DockerEngine, source_tree: Path, link: str
) -> None:
    (source_tree / "ctx").symlink_to(link)
    (source_tree / "nested").mkdir()
    (source_tree / "nested/up").symlink_to("../..")
    for context in ("ctx", "nested/up", "nested/up/src"):
        with pytest.raises(UnsafePathError) as caught:
            check_context(source_tree, context, "src/Dockerfile")
        assert "symbolic link" in caught.value.message
        assert context in caught.value.message
        assert caught.value.hint
        # ... before the engine is contacted.
        with pytest.raises(UnsafePathError, match="symbolic link"):
            unreachable_engine.build(
                source_dir=source_tree,
                context=context,
                dockerfile="src/Dockerfile",
                tags=["t:1"],
                labels={},
            )


@pytest.mark.parametrize("context", ["..", "../src", "/", "/etc", "www/../..", ".git", ""])
def test_a_build_context_outside_the_source_tree_is_refused(
    source_tree: Path, context: str
) -> None:
    (source_tree / ".git").mkdir()
    with pytest.raises(UnsafePathError) as caught:
        check_context(source_tree, context, "Dockerfile")
    assert context in caught.value.message


@pytest.mark.parametrize(
    "target", ["Dockerfile", "../runtime/runtime.env", "/etc/passwd", "www/index.html"]
)
def test_a_dockerfile_that_is_a_symlink_is_refused(source_tree: Path, target: str) -> None:
    """A loop, a file outside the tree, or even one inside it: never followed."""
    (source_tree / "Dockerfile").unlink()
    (source_tree / "Dockerfile").symlink_to(target)
    with pytest.raises(UnsafePathError) as caught:
        check_context(source_tree, ".", "Dockerfile")
    assert "Dockerfile" in caught.value.message
    assert "symbolic link" in caught.value.message
    (source_tree / "docker").symlink_to("www")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        check_context(source_tree, ".", "docker/index.html")


def test_the_checked_context_and_dockerfile(source_tree: Path) -> None:
    write_context(source_tree / "deploy/web", "FROM busybox:1.36\n")
    (source_tree / "deploy/web/docker").mkdir()
    (source_tree / "deploy/web/docker/Dockerfile.prod").write_text("FROM busybox:1.36\n")
    assert check_context(source_tree, ".", "Dockerfile") == (source_tree.resolve(), "Dockerfile")
    assert check_context(source_tree, "./deploy/web/", "docker/Dockerfile.prod") == (
        (source_tree / "deploy/web").resolve(),
        "docker/Dockerfile.prod",
    )


def _packed(context: Path, dockerfile: str = "Dockerfile") -> dict[str, tarfile.TarInfo]:
    """What the build would send the engine: the context's tar, by member name."""
    archive = io.BytesIO()
    pack_context(context, dockerfile, archive)
    archive.seek(0)
    with tarfile.open(fileobj=archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_the_packed_context_never_holds_git(tmp_path: Path) -> None:
    """The same packing as a build, inspected without an engine."""
    context = write_context(
        tmp_path / "app",
        "FROM busybox:1.36\nCOPY . /app\n",
        {
            ".git/config": "[core]\n\tfsmonitor = evil\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            "vendor/lib/.git": "gitdir: ../../.git/modules/lib\n",
            "vendor/lib/lib.txt": "library\n",
            "www/.git/config": "[core]\n",
            # Negations try to bring .git back; they must not win.
            ".dockerignore": "ignored.txt\n!.git\n!.git/config\n!vendor/lib/.git\n!www/.git\n",
            "ignored.txt": "ignored\n",
            "visible.txt": "visible\n",
        },
    )
    names = _packed(context)
    assert {"Dockerfile", "visible.txt", "vendor/lib/lib.txt", "www", ".dockerignore"} <= set(names)
    assert "ignored.txt" not in names
    assert [name for name in names if ".git" in name.split("/")] == []


def test_a_symlink_in_the_context_is_packed_as_a_link(source_tree: Path) -> None:
    """Its target, outside the tree, is never read: the engine sees only the link."""
    (source_tree / "www/leak").symlink_to("../../runtime/runtime.env")
    (source_tree / "www/up").symlink_to("../..")
    members = _packed(source_tree)
    assert members["www/leak"].issym()
    assert members["www/leak"].linkname == "../../runtime/runtime.env"
    assert members["www/up"].issym()
    assert not any(name.startswith("www/up/") for name in members)
    assert not any("runtime.env" in name for name in members)


def test_a_dockerignore_that_is_a_symlink_is_refused(source_tree: Path) -> None:
    (source_tree / ".dockerignore").symlink_to("/dev/zero")
    with pytest.raises(UnsafePathError, match="dockerignore"):
        _packed(source_tree)


@pytest.mark.parametrize(
    ("registry", "secret", "shown"),
    [
        ("user:hunter2@registry.example.org/ns", "hunter2", "***@registry.example.org/ns"),
        (
            "https://user:hunter2@registry.example.org/ns",
            "hunter2",
            "https://***@registry.example.org/ns",
        ),
        ("ghp_tok3n@registry.example.org:5000/ns", "ghp_tok3n", "***@registry.example.org:5000/ns"),
        ("user:hunter2@127.0.0.1:1/ns", "hunter2", "***@127.0.0.1:1/ns"),
    ],
)
def test_a_registry_with_credentials_is_never_echoed(
    unreachable_engine: DockerEngine, tmp_path: Path, registry: str, secret: str, shown: str
) -> None:
    """Each way a reference reaches a message names it, with the credentials left out.

    Building, looking up and pushing refuse it alike, before the engine (unreachable
    here) is asked.
    """
    reference = f"{registry}/app:1.0-badung"
    (tmp_path / "Dockerfile").write_text("FROM busybox:1.36\n")
    with pytest.raises(InvalidInputError, match="holds credentials") as built:
        unreachable_engine.build(
            source_dir=tmp_path, dockerfile="Dockerfile", tags=[reference], labels={}
        )
    with pytest.raises(InvalidInputError, match="holds credentials") as pushed:
        unreachable_engine.push(reference=reference)
    with pytest.raises(InvalidInputError, match="holds credentials") as looked_up:
        unreachable_engine.image_id(reference)
    with pytest.raises(InvalidInputError, match="holds credentials") as split:
        split_reference(reference)
    refused = [caught.value for caught in (built, pushed, looked_up, split)]
    assert {error.hint for error in refused} == {refused[0].hint}  # one check, one message
    assert "docker login" in (refused[0].hint or "")
    chunks = [{"errorDetail": {"message": f"denied: pushing {reference}"}}]
    with pytest.raises(PushError, match=r"^pushing ") as followed:
        follow_push(chunks, reference, registry, None)
    errors: list[SmartshareError] = [*refused, followed.value]
    for error in errors:
        text = f"{error.message}\n{error.hint}"
        assert secret not in text, text
        assert f"{shown}/app:1.0-badung" in error.message, error.message
    assert f"to registry {shown} failed" in followed.value.message


# -- real engine ----------------------------------------------------------


@pytest.fixture
def engine() -> Iterator[DockerEngine]:
    with connect() as docker_engine:  # DOCKER_HOST is set by conftest for marked tests
        yield docker_engine


@pytest.fixture
def api(docker_engine_env: DockerEnv) -> Iterator[Any]:
    """A raw docker-py client, for checking what smartshare did."""
    import docker

    client = docker.APIClient(base_url=docker_engine_env.docker_host, version="auto")
    yield client
    client.close()


@pytest.fixture
def scratch_name() -> str:
    """A unique repository name; every tag of it is removed afterwards (conftest)."""
    return engineimages.claim(f"smartshare-test/{uuid.uuid4().hex[:12]}")


def write_context(folder: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def run_in(api: Any, image: str, command: list[str]) -> str:
    container = api.create_container(
        image, command, host_config=api.create_host_config(network_mode="none")
    )
    try:
        api.start(container)
        assert api.wait(container, timeout=60)["StatusCode"] == 0
        return bytes(api.logs(container)).decode()
    finally:
        api.remove_container(container, force=True)


@pytest.mark.requires_docker
def test_build_with_labels_buildargs_and_logs(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "app",
        f"FROM {busybox_image}\n"
        "ARG GREETING=unset\n"
        'RUN echo "greeting=$GREETING" && echo "$GREETING" > /greeting\n'
        "COPY app.txt /app.txt\n",
        {"app.txt": "hello\n"},
    )
    lines: list[str] = []
    tags = [f"{scratch_name}:1.0", f"{scratch_name}:latest"]

    built = engine.build(
        source_dir=context,
        dockerfile="Dockerfile",
        tags=tags,
        labels=LABELS,
        buildargs={"GREETING": "halo"},
        on_log=lines.append,
    )

    assert built.image_id.startswith("sha256:")
    assert built.tags == tuple(tags)
    for tag in tags:
        assert engine.image_id(tag) == built.image_id
    labels = api.inspect_image(built.image_id)["Config"]["Labels"]
    assert {k: labels.get(k) for k in LABELS} == LABELS
    assert any(line.startswith("Step 1/") for line in lines)
    assert "greeting=halo" in lines
    assert all(line == line.strip() and line for line in lines)
    assert run_in(api, built.image_id, ["cat", "/greeting"]) == "halo\n"


@pytest.mark.requires_docker
def test_build_target_stage(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "app",
        f"FROM {busybox_image} AS first\nRUN echo first > /stage\n"
        f"FROM {busybox_image} AS second\nRUN echo second > /stage\n",
    )
    built = engine.build(
        source_dir=context,
        dockerfile="Dockerfile",
        tags=[f"{scratch_name}:first"],
        labels=LABELS,
        target="first",
    )
    assert run_in(api, built.image_id, ["cat", "/stage"]) == "first\n"
    # Labels reach the target stage too (older engines dropped them with target).
    labels = api.inspect_image(f"{scratch_name}:first")["Config"]["Labels"]
    assert {k: labels.get(k) for k in LABELS} == LABELS


def _labelled_app(folder: Path, busybox_image: str) -> tuple[Path, str]:
    """A context whose Dockerfile sets labels of its own, one of which LABELS overrides."""
    content = f"app {uuid.uuid4().hex}\n"  # unique, so no build comes from the cache
    context = write_context(
        folder,
        f"FROM {busybox_image}\n"
        'LABEL org.example.own="kept" org.smartshare.app="from-dockerfile"\n'
        "COPY app.txt /app.txt\n"
        'CMD ["cat", "/app.txt"]\n',
        {"app.txt": content},
    )
    return context, content


def _build_labelled(
    engine: DockerEngine, tmp_path: Path, busybox_image: str, scratch_name: str
) -> tuple[BuiltImage, list[str], list[str], str]:
    """Build the labelled sample app under two tags; the build log comes back too."""
    context, content = _labelled_app(tmp_path / "app", busybox_image)
    tags = [f"{scratch_name}:1.0", f"{scratch_name}:latest"]
    lines: list[str] = []
    built = engine.build(
        source_dir=context, dockerfile="Dockerfile", tags=tags, labels=LABELS, on_log=lines.append
    )
    return built, tags, lines, content


@pytest.mark.requires_docker
def test_labels_are_written_into_the_config_without_a_build_step(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    built, tags, lines, content = _build_labelled(engine, tmp_path, busybox_image, scratch_name)

    assert any(line.startswith("smartshare: labels written into the image") for line in lines)
    for tag in tags:
        assert engine.image_id(tag) == built.image_id
    image = api.inspect_image(built.image_id)
    assert image["Config"]["Labels"] == {"org.example.own": "kept", **LABELS}
    assert image["Config"]["Cmd"] == ["cat", "/app.txt"]
    newest = api.history(built.image_id)[0]
    assert newest["CreatedBy"].startswith("smartshare: LABEL ")
    assert "org.smartshare.region" in newest["CreatedBy"]
    assert newest["Size"] == 0
    # The unlabelled build is the parent, as under a build step: not left dangling.
    parent = image["Parent"]
    assert parent
    assert "org.smartshare.region" not in (api.inspect_image(parent)["Config"]["Labels"] or {})
    assert parent not in api.images(filters={"dangling": True}, quiet=True)
    assert run_in(api, tags[0], ["cat", "/app.txt"]) == content


@pytest.mark.requires_docker
def test_labelling_falls_back_to_a_build_step(
    engine: DockerEngine,
    api: Any,
    busybox_image: str,
    scratch_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As from an engine whose saved images hold no config the shortcut can use.
    monkeypatch.setattr(engine_build, "_saved_config", lambda api, image_id: None)
    built, tags, lines, content = _build_labelled(engine, tmp_path, busybox_image, scratch_name)

    assert any(line.startswith("smartshare: labelling with a build step") for line in lines)
    for tag in tags:
        assert engine.image_id(tag) == built.image_id
    image = api.inspect_image(built.image_id)
    assert image["Config"]["Labels"] == {"org.example.own": "kept", **LABELS}
    newest = api.history(built.image_id)[0]
    assert "LABEL" in newest["CreatedBy"]
    assert not newest["CreatedBy"].startswith("smartshare:")
    assert run_in(api, tags[0], ["cat", "/app.txt"]) == content


@pytest.mark.requires_docker
def test_a_load_the_engine_refuses_falls_back_to_a_build_step(
    engine: DockerEngine,
    api: Any,
    busybox_image: str,
    scratch_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved_config = engine_build._saved_config

    def naming_a_missing_layer(api: Any, image_id: str) -> bytes | None:
        # As if a layer had been pruned since the build: the real engine must
        # refuse the load, and the build must not fail for it.
        raw = saved_config(api, image_id)
        assert raw is not None
        config = json.loads(raw)
        config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64
        return json.dumps(config).encode()

    monkeypatch.setattr(engine_build, "_saved_config", naming_a_missing_layer)
    context, _ = _labelled_app(tmp_path / "app", busybox_image)
    lines: list[str] = []

    built = engine.build(
        source_dir=context,
        dockerfile="Dockerfile",
        tags=[f"{scratch_name}:1.0"],
        labels=LABELS,
        on_log=lines.append,
    )

    fallback = [line for line in lines if line.startswith("smartshare: labelling with a build")]
    assert fallback
    assert "0" * 64 in fallback[0]  # the engine's own complaint, naming the layer file
    assert engine.image_id(f"{scratch_name}:1.0") == built.image_id
    labels = api.inspect_image(built.image_id)["Config"]["Labels"]
    assert labels == {"org.example.own": "kept", **LABELS}


def test_labelled_config_keeps_everything_but_labels_and_history() -> None:
    config: dict[str, Any] = {
        "architecture": "amd64",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": None},
        "created": "2026-01-01T00:00:00Z",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
    }
    raw, diff_ids = labelled_config(json.dumps(config).encode(), {"b": "2", "a": "1"})

    assert diff_ids == ["sha256:" + "a" * 64]
    assert b'", ' not in raw and b'": ' not in raw  # compact
    labelled = json.loads(raw)
    (entry,) = labelled.pop("history")
    assert entry["created_by"] == "smartshare: LABEL a,b"
    assert entry["empty_layer"] is True
    assert entry["created"].endswith("Z")
    assert labelled["config"].pop("Labels") == {"a": "1", "b": "2"}
    del config["config"]["Labels"]
    assert labelled == config


@pytest.mark.requires_docker
def test_failing_run_reports_the_step_and_its_output(
    engine: DockerEngine, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "app",
        f"FROM {busybox_image}\nRUN echo ok\nRUN echo 'compiler: disk on fire' >&2 && exit 3\n",
    )
    with pytest.raises(BuildError) as caught:
        engine.build(
            source_dir=context, dockerfile="Dockerfile", tags=[f"{scratch_name}:x"], labels={}
        )
    message = caught.value.message
    assert "step 3/3" in message
    assert "exit 3" in message
    assert "returned a non-zero code: 3" in message
    assert "disk on fire" in message
    assert caught.value.hint
    assert engine.image_id(f"{scratch_name}:x") is None


@pytest.mark.requires_docker
def test_dockerfile_syntax_error(
    engine: DockerEngine, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "app", f"FROM {busybox_image}\nFROBNICATE now\n")
    with pytest.raises(BuildError) as caught:
        engine.build(
            source_dir=context, dockerfile="Dockerfile", tags=[f"{scratch_name}:x"], labels={}
        )
    assert "unknown instruction" in caught.value.message.lower()
    assert caught.value.hint is not None
    assert "syntax" in caught.value.hint


@pytest.mark.requires_docker
def test_buildkit_only_syntax_says_so(
    engine: DockerEngine, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "app", f"FROM {busybox_image}\nRUN --mount=type=cache,target=/c true\n"
    )
    with pytest.raises(BuildError) as caught:
        engine.build(
            source_dir=context, dockerfile="Dockerfile", tags=[f"{scratch_name}:x"], labels={}
        )
    assert caught.value.hint is not None
    assert "BuildKit" in caught.value.hint


def _found_in(blob: bytes, needle: bytes) -> bool:
    """Whether ``needle`` occurs in ``blob``, looking inside nested (gzipped) tars."""
    if needle in blob:
        return True
    if blob[:2] == b"\x1f\x8b":
        return _found_in(gzip.decompress(blob), needle)
    try:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None and _found_in(handle.read(), needle):
                    return True
    except tarfile.TarError:
        return False
    return False


@pytest.mark.requires_docker
def test_git_folder_never_reaches_the_image(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    token = "ghp_" + uuid.uuid4().hex  # a fake token, unique to this run
    sub_token = "glpat-" + uuid.uuid4().hex
    visible = "VISIBLE-" + uuid.uuid4().hex
    ignored = "IGNORED-" + uuid.uuid4().hex
    context = write_context(
        tmp_path / "app",
        f"FROM {busybox_image}\nCOPY . /app\n",
        {
            ".git/config": f'[remote "origin"]\n\turl = https://x:{token}@example.org/r.git\n',
            ".git/HEAD": "ref: refs/heads/main\n",
            # A submodule's .git is a file; it must stay out too.
            "vendor/lib/.git": f"gitdir: ../../.git/modules/lib # {sub_token}\n",
            "vendor/lib/lib.txt": "library\n",
            # Negations try to bring .git back; they must not win.
            ".dockerignore": "ignored.txt\n!.git\n!.git/config\n!vendor/lib/.git\n",
            "ignored.txt": ignored,
            "visible.txt": visible,
        },
    )
    built = engine.build(
        source_dir=context, dockerfile="Dockerfile", tags=[f"{scratch_name}:git"], labels={}
    )

    saved = b"".join(api.get_image(built.image_id))
    assert _found_in(saved, visible.encode()), "the scan must see files that were copied"
    assert not _found_in(saved, token.encode())
    assert not _found_in(saved, sub_token.encode())
    assert not _found_in(saved, ignored.encode()), ".dockerignore must be honoured"
    listing = run_in(api, built.image_id, ["find", "/app"])
    assert "/app/vendor/lib/lib.txt" in listing
    assert ".git" not in listing


def _registry_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


@pytest.mark.requires_docker
def test_push_returns_the_registry_digest(
    engine: DockerEngine,
    busybox_image: str,
    scratch_name: str,
    docker_registry: str,
    tmp_path: Path,
) -> None:
    context = write_context(
        tmp_path / "app", f"FROM {busybox_image}\nRUN echo {uuid.uuid4().hex} > /id\n"
    )
    reference = f"{docker_registry}/{scratch_name}:1.0"
    engine.build(source_dir=context, dockerfile="Dockerfile", tags=[reference], labels=LABELS)
    lines: list[str] = []

    digest = engine.push(reference=reference, on_log=lines.append)

    assert digest.startswith("sha256:")
    assert digest == _registry_digest(docker_registry, scratch_name, "1.0")
    assert any("Pushed" in line for line in lines)
    assert len(lines) == len(set(lines)), "progress repeats must be folded"
    # Pushing again is a no-op for the registry and reports the same digest.
    assert engine.push(reference=reference) == digest


@pytest.mark.requires_docker
def test_push_to_unreachable_registry(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str
) -> None:
    reference = f"127.0.0.1:1/{scratch_name}:1.0"
    assert api.tag(busybox_image, f"127.0.0.1:1/{scratch_name}", "1.0")
    with pytest.raises(PushError) as caught:
        engine.push(reference=reference)
    assert "127.0.0.1:1" in caught.value.message
    assert "connection refused" in caught.value.message
    assert caught.value.hint is not None
    assert "registry address" in caught.value.hint


@pytest.mark.requires_docker
def test_push_of_a_missing_image(engine: DockerEngine, scratch_name: str) -> None:
    with pytest.raises(PushError) as caught:
        engine.push(reference=f"127.0.0.1:1/{scratch_name}:never-built")
    assert caught.value.hint is not None
    assert "build the image first" in caught.value.hint


@pytest.mark.requires_docker
def test_image_id(engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str) -> None:
    assert engine.image_id(f"{scratch_name}:absent") is None
    image_id = engine.image_id(busybox_image)
    assert image_id is not None
    assert image_id.startswith("sha256:")
    assert api.tag(image_id, scratch_name, "alias")
    assert engine.image_id(f"{scratch_name}:alias") == image_id


@pytest.mark.requires_docker
def test_two_builds_run_in_parallel(
    engine: DockerEngine, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    sleep_s = 3
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    lock = threading.Lock()

    def build(name: str) -> str:
        context = write_context(
            tmp_path / name,
            # Unique per run and per build, so neither can come from the cache.
            f"FROM {busybox_image}\nRUN echo {name}-{uuid.uuid4().hex} && sleep {sleep_s}\n",
        )

        def on_log(line: str) -> None:
            if line.startswith(f"{name}-"):
                with lock:
                    started[name] = time.monotonic()

        built = engine.build(
            source_dir=context,
            dockerfile="Dockerfile",
            tags=[f"{scratch_name}:{name}"],
            labels={"org.smartshare.app": name},
            on_log=on_log,
        )
        finished[name] = time.monotonic()
        return built.image_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = list(pool.map(build, ["alpha", "beta"]))

    assert len(set(ids)) == 2
    for name, image_id in zip(["alpha", "beta"], ids, strict=True):
        assert engine.image_id(f"{scratch_name}:{name}") == image_id
    # Each build slept while the other was sleeping: they did not queue.
    assert started["alpha"] < finished["beta"]
    assert started["beta"] < finished["alpha"]


@pytest.mark.requires_docker
def test_a_failed_build_leaves_no_image_of_its_own(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    context = write_context(
        tmp_path / "app",
        f"FROM {busybox_image}\nRUN echo {token} > /one\nRUN echo {token} > /two\nRUN exit 3\n",
    )
    with pytest.raises(BuildError, match=r"exit 3|non-zero code: 3"):
        engine.build(
            source_dir=context, dockerfile="Dockerfile", tags=[f"{scratch_name}:x"], labels=LABELS
        )
    assert engineimages.images_made_from(api, token) == []
    assert engineimages.containers_made_from(api, token) == []


@pytest.mark.requires_docker
def test_a_rebuild_removes_the_smartshare_image_it_replaced_and_only_that(
    engine: DockerEngine, api: Any, busybox_image: str, scratch_name: str, tmp_path: Path
) -> None:
    import docker

    own = {**LABELS, "id.smartshare.app": "demo-app"}

    def build(tag: str, labels: dict[str, str]) -> str:
        context = write_context(
            tmp_path / uuid.uuid4().hex, f"FROM {busybox_image}\nRUN echo {uuid.uuid4().hex}\n"
        )
        built = engine.build(
            source_dir=context,
            dockerfile="Dockerfile",
            tags=[f"{scratch_name}:{tag}"],
            labels=labels,
        )
        return built.image_id

    replaced = build("app", own)
    parent = api.inspect_image(replaced)["Parent"]
    assert parent.startswith("sha256:"), "the labelled image has the build as its parent"
    build("app", own)
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(replaced)
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(parent)  # its unlabelled build went with it

    # Not smartshare's: left alone, even dangling.
    foreign = build("foreign", LABELS)
    build("foreign", LABELS)
    assert api.inspect_image(foreign)["RepoTags"] == []
    api.remove_image(foreign)

    # Still tagged elsewhere, or used by a container: kept.
    tagged = build("tagged", own)
    assert api.tag(tagged, scratch_name, "elsewhere")
    build("tagged", own)
    assert api.inspect_image(tagged)["RepoTags"] == [f"{scratch_name}:elsewhere"]
    used = build("used", own)
    container = api.create_container(used, ["true"])
    try:
        build("used", own)
        assert api.inspect_image(used)["Id"] == used
    finally:
        api.remove_container(container, force=True)
        api.remove_image(used)
