"""Builds behind a region's mirrors: base images through the image-mirror rules, and the
region's build network, proxy and package indexes.

The mirror is the test registry.  Its images are made here from busybox (each with a
file saying what it stands for) and pushed under the mirror's path, then removed from
the engine: the build must get them through the mirror.  Their public-looking names
(``docker.io/library/alpine-TOKEN:3.20``) carry a token of their own, so that no other
user of the shared engine has them, and every tag holding the token is removed after
each test (engineimages.claim).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import engineimages
import pytest
from typer.testing import CliRunner

from smartshare.adoption.buildenv import build_environment
from smartshare.adoption.events import Event, Phase
from smartshare.adoption.plan import make_plan
from smartshare.adoption.runner import adopt
from smartshare.building.dockerfile import DockerfileError, FromImage, base_images
from smartshare.catalog.buildsettings import BuildSettings
from smartshare.catalog.checks import validate
from smartshare.catalog.imagerefs import MirrorRule, apply_mirrors
from smartshare.catalog.load import load_region_file
from smartshare.cli import app as cli_app
from smartshare.errors import SecretResolutionError
from smartshare.settings import Settings, image_mirror_rules
from smartshare.state.lockfile import read_lock

from catalogs import REGION, CatalogFixture, isolate, make_catalog

PROXY_PASSWORD = "Pr0xy-Pa55-7d1c"

# -- Dockerfiles: every FROM, ARGs substituted (no engine) ----------------------------


def names(text: str, args: dict[str, str] | None = None, *, target: str | None = None) -> list[str]:
    return [image.name for image in base_images(text, args, target=target)]


def test_every_stage_with_its_args() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG VERSION=3.20\n"
        "ARG BASE=python:${PY:-3.12}-slim\n"
        "ARG UNSET\n"
        "FROM --platform=$BUILDPLATFORM docker.io/library/alpine:${VERSION} AS build\n"
        "ARG VERSION=9.99\n"  # inside a stage: not for FROM lines
        "RUN echo $VERSION \\\n"
        "  # a comment inside a continuation\n"
        "  && true\n"
        "FROM build AS test\n"
        "FROM $BASE\n"
        "FROM scratch\n"
        "from \\\n"
        "    busybox:1.36 \\\n"
        "    as last\n"
        "FROM LAST\n"
    )
    assert base_images(text) == [
        FromImage(5, "docker.io/library/alpine:${VERSION}", "docker.io/library/alpine:3.20"),
        FromImage(11, "$BASE", "python:3.12-slim"),
        FromImage(13, "busybox:1.36", "busybox:1.36"),
    ]
    # build arguments override the defaults of the ARGs declared before the first FROM
    assert names(text, {"VERSION": "3.19", "BASE": "node:20"})[:2] == [
        "docker.io/library/alpine:3.19",
        "node:20",
    ]
    # an ARG declared without a default takes the build argument
    assert names("ARG B\nFROM ${B:-busybox}:1.36\n") == ["busybox:1.36"]
    assert names("ARG B\nFROM ${B:-busybox}:1.36\n", {"B": "alpine"}) == ["alpine:1.36"]
    assert names("ARG B=x\nFROM alpine${B:+-$B}\n") == ["alpine-x"]


def test_stages_after_the_target_are_not_built() -> None:
    text = "FROM alpine:3.20 AS build\nFROM build AS test\nFROM nginx:1.27 AS serve\n"
    assert names(text, target="TEST") == ["alpine:3.20"]
    assert names(text, target="serve") == ["alpine:3.20", "nginx:1.27"]


def test_escape_directive_quotes_and_errors() -> None:
    assert names('# escape=`\nARG BASE="alpine:3.20"\nFROM `\n  $BASE\n') == ["alpine:3.20"]
    with pytest.raises(DockerfileError, match=r"line 2: FROM names no image"):
        base_images("ARG A=1\nFROM --platform=linux/amd64\n")
    with pytest.raises(DockerfileError, match=r"line 1: unsupported substitution"):
        base_images("FROM ${A/x/y}\n")
    with pytest.raises(DockerfileError, match=r"missing '}'"):
        base_images("FROM ${A\n")


# -- the region's settings (no engine) ---------------------------------------------


def test_mirror_rules_of_this_machine_come_first(tmp_path: Path) -> None:
    region = make_region(
        tmp_path,
        "deploy:\n  image_mirrors:\n    - {from: docker.io/library/, to: profile.example/hub/}\n",
    )
    settings = Settings(image_mirrors=(MirrorRule("docker.io/library/", "machine.example/hub/"),))
    rules = image_mirror_rules(settings, load_region_file(region).model)
    assert [r.target for r in rules] == ["machine.example/hub/", "profile.example/hub/"]
    # equal prefixes: the first rule wins, so this machine's mirror is used
    assert apply_mirrors("alpine:3.20", rules) == "machine.example/hub/alpine:3.20"


def make_region(tmp_path: Path, extra: str) -> Path:
    """A valid region profile (values for the bundled LAKSA) with ``extra`` appended."""
    region = tmp_path / "regions" / "testland.yaml"
    region.parent.mkdir(parents=True, exist_ok=True)
    values = "  laksa:\n    support_email: pengaduan@testland.go.id\n"
    region.write_text(
        REGION.format(name="testland", registry="", apps=values) + extra, encoding="utf-8"
    )
    return region


def test_build_settings_are_checked_where_they_are_written(tmp_path: Path) -> None:
    region = make_region(
        tmp_path,
        "build:\n"
        "  network: bridge\n"
        "  proxy:\n"
        "    http: ftp://proxy.example:21\n"
        "    no_proxy: [localhost, 'a b']\n"
        "  package_index:\n"
        "    pip: https://user:pw@pypi.example/simple\n"
        "    cargo: https://crates.example/\n",
    )
    report = validate(catalog_root=Path(__file__).resolve().parent.parent, paths=[region])
    found = {(p.line, p.field): p.message for p in report.problems}
    lines = region.read_text(encoding="utf-8").splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    assert (
        "Input should be 'default', 'host' or 'none'"
        in found[(line_of("network: bridge"), "build.network")]
    )
    assert (
        "must be a URL (http://, https://, socks5://, socks5h://) with a host"
        in found[(line_of("http: ftp"), "build.proxy.http")]
    )
    assert (
        "a host, .domain, IP address or CIDR"
        in found[(line_of("no_proxy"), "build.proxy.no_proxy.1")]
    )
    assert "must not hold credentials" in found[(line_of("pip:"), "build.package_index.pip")]
    assert (
        "unknown key 'cargo'; allowed keys: pip, npm, go"
        in found[(line_of("cargo:"), "build.package_index.cargo")]
    )


def test_the_build_arguments_and_their_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BADUNG_BUILD_PROXY", f"http://svc:{PROXY_PASSWORD}@proxy.badung.lan:3128")
    settings = BuildSettings.model_validate(
        {
            "network": "host",
            "proxy": {
                "http": "env:BADUNG_BUILD_PROXY",
                "https": f"http://svc:{PROXY_PASSWORD}@proxy.badung.lan:3128",
                "no_proxy": ["localhost", ".badung.lan", "10.0.0.0/8"],
            },
            "package_index": {"pip": "https://pypi.badung.lan/simple", "npm": "https://npm.lan/"},
        }
    )
    env = build_environment(settings, base_dir=tmp_path)
    proxy = f"http://svc:{PROXY_PASSWORD}@proxy.badung.lan:3128"
    assert env.network == "host"
    assert dict(env.args) == {
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "localhost,.badung.lan,10.0.0.0/8",
        "no_proxy": "localhost,.badung.lan,10.0.0.0/8",
        "PIP_INDEX_URL": "https://pypi.badung.lan/simple",
        "NPM_CONFIG_REGISTRY": "https://npm.lan/",
    }
    assert env.record() == {
        "HTTPS_PROXY": "http://***@proxy.badung.lan:3128",
        "HTTP_PROXY": "http://***@proxy.badung.lan:3128",
        "NO_PROXY": "localhost,.badung.lan,10.0.0.0/8",
        "NPM_CONFIG_REGISTRY": "https://npm.lan/",
        "PIP_INDEX_URL": "https://pypi.badung.lan/simple",
    }
    assert PROXY_PASSWORD not in repr(env)
    assert env.redact(f"Step 3/4 : connecting via {proxy} ({PROXY_PASSWORD})") == (
        "Step 3/4 : connecting via http://***@proxy.badung.lan:3128 (***)"
    )
    # the user name beside a password is no secret: logs keep it
    assert env.redact("user svc") == "user svc"
    assert build_environment(BuildSettings(), base_dir=tmp_path).network is None

    monkeypatch.delenv("BADUNG_BUILD_PROXY")
    with pytest.raises(SecretResolutionError, match=r"build\.proxy\.http: secret reference"):
        build_environment(settings, base_dir=tmp_path)


def test_plan_names_a_from_that_is_no_image_reference(tmp_path: Path, isolated: None) -> None:
    dockerfile = "ARG BASE\nFROM busybox:1.36 AS tools\nFROM ${BASE}\nCOPY www/ /www/\n"
    catalog = make_catalog(tmp_path, {"alpha": ()}, dockerfiles={"alpha": dockerfile})
    plan = make_plan(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=tmp_path / "ws",
        catalog_root=catalog.root,
    )
    (entry,) = plan.entries
    assert entry.bases == []
    assert entry.reasons[-1] == (
        "base images: 'alpha': Dockerfile line 3: FROM '${BASE}' ('' with its ARGs) is not "
        "an image reference: must not be empty"
    )


# -- against the engine and the test registry ---------------------------------------

BASE_DOCKERFILE = "FROM {busybox}\nRUN echo {what} > /etc/base-name\n"

APP_DOCKERFILE = """\
ARG PY_VERSION=3.12
ARG BASE=python-{token}:${{PY_VERSION}}-slim
FROM docker.io/library/alpine-{token}:3.20 AS build
RUN cat /etc/base-name > /built-from
FROM ${{BASE}}
COPY --from=build /built-from /built-from
RUN cat /etc/base-name >> /built-from
COPY www/ /www/
"""


@dataclass(frozen=True)
class Mirror:
    token: str
    registry: str

    @property
    def prefix(self) -> str:
        return f"{self.registry}/mirror-{self.token}/library/"

    def rules(self) -> str:
        """The profile's deploy section with the rule for docker.io/library/."""
        return (
            f"deploy:\n  image_mirrors:\n    - from: docker.io/library/\n      to: {self.prefix}\n"
        )


def docker_api() -> Any:
    import docker

    return docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")


def build_image(api: Any, dockerfile: str, tag: str) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    for chunk in api.build(fileobj=archive, custom_context=True, tag=tag, decode=True, rm=True):
        assert "error" not in chunk, chunk


@pytest.fixture
def mirror(docker_registry: str, busybox_image: str) -> Iterator[Mirror]:
    """The mirror holds alpine-TOKEN:3.20 and python-TOKEN:3.12-slim; the engine has neither."""
    made = Mirror(token=engineimages.claim(f"m{secrets.token_hex(4)}"), registry=docker_registry)
    api = docker_api()
    try:
        for name, tag, what in (("alpine", "3.20", "alpine"), ("python", "3.12-slim", "python")):
            repository = f"{made.prefix}{name}-{made.token}"
            build_image(
                api, BASE_DOCKERFILE.format(busybox=busybox_image, what=what), f"{repository}:{tag}"
            )
            for chunk in api.push(repository, tag=tag, stream=True, decode=True):
                assert "error" not in chunk, chunk
            api.remove_image(f"{repository}:{tag}")
        yield made
    finally:
        api.close()


def has_image(api: Any, reference: str) -> bool:
    import docker

    try:
        api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def file_in(api: Any, image: str, path: str) -> str:
    container = api.create_container(image, ["cat", path], network_disabled=True)
    try:
        api.start(container)
        assert api.wait(container, timeout=60)["StatusCode"] == 0
        return bytes(api.logs(container)).decode()
    finally:
        api.remove_container(container, force=True)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def add_to_profile(catalog: CatalogFixture, text: str) -> None:
    region = catalog.region_file
    region.write_text(region.read_text(encoding="utf-8") + text, encoding="utf-8")


def run(catalog: CatalogFixture, workspace: Path, *apps: str) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    result = adopt(
        apps=list(apps),
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        on_event=events.append,
    )
    return result, events


@pytest.mark.requires_docker
def test_base_images_come_through_the_mirror(
    tmp_path: Path, isolated: None, mirror: Mirror
) -> None:
    catalog = make_catalog(
        tmp_path, {"alpha": ()}, dockerfiles={"alpha": APP_DOCKERFILE.format(token=mirror.token)}
    )
    add_to_profile(catalog, mirror.rules())
    api = docker_api()
    alpine = f"docker.io/library/alpine-{mirror.token}:3.20"
    python = f"docker.io/library/python-{mirror.token}:3.12-slim"
    try:
        assert not has_image(api, alpine)
        assert not has_image(api, python)
        workspace = tmp_path / "ws"
        # plan says where each base image will come from
        plan = make_plan(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=workspace,
            catalog_root=catalog.root,
        )
        assert [b.as_dict() for b in plan.entries[0].bases] == [
            {
                "image": "alpha",
                "name": alpine,
                "reference": alpine,
                "from": f"{mirror.prefix}alpine-{mirror.token}:3.20",
                "mirrored": True,
                "local": False,
            },
            {
                "image": "alpha",
                "name": f"python-{mirror.token}:3.12-slim",
                "reference": python,
                "from": f"{mirror.prefix}python-{mirror.token}:3.12-slim",
                "mirrored": True,
                "local": False,
            },
        ]

        result, events = run(catalog, workspace, "alpha")
        assert not result.failed, [(r.app, r.message) for r in result.results]
        pulls = [e.message for e in events if e.phase is Phase.PULLING]
        assert pulls == [alpine, f"python-{mirror.token}:3.12-slim"]
        first_build = next(i for i, e in enumerate(events) if e.phase is Phase.BUILDING)
        assert max(i for i, e in enumerate(events) if e.phase is Phase.PULLING) < first_build
        # the Dockerfile was built as it is, each stage from its mirrored image
        assert file_in(api, catalog.tag("alpha"), "/built-from") == "alpine\npython\n"
        # the engine has them under the names the Dockerfile uses now
        assert has_image(api, alpine) and has_image(api, python)
        locked = read_lock(workspace).apps["alpha"].images[0].bases
        assert [(b.name, b.pulled_from) for b in locked] == [
            (alpine, f"{mirror.prefix}alpine-{mirror.token}:3.20"),
            (f"python-{mirror.token}:3.12-slim", f"{mirror.prefix}python-{mirror.token}:3.12-slim"),
        ]
        assert all(b.image_id and b.image_id.startswith("sha256:") for b in locked)

        # the next build finds them in the engine: nothing pulled, and plan says so
        plan = make_plan(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=workspace,
            catalog_root=catalog.root,
            force=True,
        )
        assert [b.local for b in plan.entries[0].bases] == [True, True]
        forced = adopt(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=workspace,
            catalog_root=catalog.root,
            force=True,
        )
        assert not forced.failed
        again = read_lock(workspace).apps["alpha"].images[0].bases
        assert [b.pulled_from for b in again] == [None, None]
    finally:
        api.close()


@pytest.mark.requires_docker
def test_a_base_image_the_mirror_lacks_stops_the_run_before_any_build(
    tmp_path: Path, isolated: None, mirror: Mirror
) -> None:
    missing = (
        f"FROM docker.io/library/alpine-{mirror.token}:3.20 AS build\n"
        f"FROM docker.io/library/missing-{mirror.token}:1.0\n"
        "COPY www/ /www/\n"
    )
    catalog = make_catalog(
        tmp_path,
        {"alpha": (), "beta": ()},
        dockerfiles={"alpha": APP_DOCKERFILE.format(token=mirror.token), "beta": missing},
    )
    add_to_profile(catalog, mirror.rules())
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        cli_app,
        [
            "adopt",
            "alpha",
            "beta",
            *catalog.cli_options(workspace),
        ],
    )
    assert result.exit_code == 3, result.output
    said = " ".join(result.stderr.split())
    assert f"docker.io/library/missing-{mirror.token}:1.0" in said
    assert f"rewritten by a mirror rule to {mirror.prefix}missing-{mirror.token}:1.0" in said
    assert "(image 'beta' of 'beta', Dockerfile line 2)" in said
    assert "nothing was built" in said
    api = docker_api()
    try:
        # neither app was built, not even the one whose base images were there
        assert not has_image(api, catalog.tag("alpha"))
        assert not has_image(api, catalog.tag("beta"))
    finally:
        api.close()
    assert read_lock(workspace).apps == {}


@pytest.mark.requires_docker
def test_the_build_gets_the_network_proxy_and_package_index(
    tmp_path: Path, isolated: None, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerfile = (
        f"FROM {busybox_image}\n"
        "ARG PIP_INDEX_URL\n"
        "RUN ls /sys/class/net > /nets "
        '&& echo "$HTTP_PROXY|$https_proxy|$NO_PROXY|$PIP_INDEX_URL" > /build-env '
        '&& echo "proxy is $HTTP_PROXY"\n'
        "COPY www/ /www/\n"
    )
    catalog = make_catalog(tmp_path, {"alpha": ()}, dockerfiles={"alpha": dockerfile})
    monkeypatch.setenv("TESTLAND_PROXY", f"http://build:{PROXY_PASSWORD}@proxy.testland.lan:3128")
    add_to_profile(
        catalog,
        "build:\n"
        "  network: none\n"
        "  proxy:\n"
        "    http: env:TESTLAND_PROXY\n"
        "    https: http://proxy.testland.lan:3129\n"
        "    no_proxy: [localhost, .testland.lan]\n"
        "  package_index:\n"
        "    pip: https://pypi.testland.lan/simple\n",
    )
    workspace = tmp_path / "ws"
    result, events = run(catalog, workspace, "alpha")
    assert not result.failed, [(r.app, r.message) for r in result.results]
    api = docker_api()
    try:
        image = catalog.tag("alpha")
        # network none: the build containers had the loopback interface only
        assert file_in(api, image, "/nets").split() == ["lo"]
        proxy = f"http://build:{PROXY_PASSWORD}@proxy.testland.lan:3128"
        assert file_in(api, image, "/build-env") == (
            f"{proxy}|http://proxy.testland.lan:3129|localhost,.testland.lan|"
            "https://pypi.testland.lan/simple\n"
        )
        # Docker keeps the proxy arguments out of the image's history
        history = json.dumps(api.history(image))
        assert PROXY_PASSWORD not in history
        assert "pypi.testland.lan" in history  # a declared ARG is there: hence no credentials
    finally:
        api.close()
    # the build log showed the proxy without its password
    logs = [e.message for e in events if e.log]
    assert "proxy is http://***@proxy.testland.lan:3128" in logs
    assert not any(PROXY_PASSWORD in line for line in logs)
    # the lock records the settings without credentials
    text = (workspace / "smartshare.lock").read_text(encoding="utf-8")
    assert PROXY_PASSWORD not in text
    build = read_lock(workspace).apps["alpha"].build
    assert build is not None
    assert build.network == "none"
    assert build.args["HTTP_PROXY"] == "http://***@proxy.testland.lan:3128"
    assert build.args["PIP_INDEX_URL"] == "https://pypi.testland.lan/simple"
    # busybox was in the engine: recorded as such
    assert [
        (b.name, b.pulled_from) for b in read_lock(workspace).apps["alpha"].images[0].bases
    ] == [(busybox_image, None)]


@pytest.mark.requires_docker
def test_a_failing_build_shows_no_proxy_password(
    tmp_path: Path, isolated: None, busybox_image: str
) -> None:
    dockerfile = f'FROM {busybox_image}\nRUN echo "via $HTTP_PROXY" && exit 7\n'
    catalog = make_catalog(tmp_path, {"alpha": ()}, dockerfiles={"alpha": dockerfile})
    add_to_profile(
        catalog, f"build:\n  proxy:\n    http: http://u:{PROXY_PASSWORD}@proxy.testland.lan:3128\n"
    )
    result, _ = run(catalog, tmp_path / "ws", "alpha")
    assert [r.outcome.value for r in result.results] == ["failed"]
    message = result.results[0].message
    assert "via http://***@proxy.testland.lan:3128" in message
    assert PROXY_PASSWORD not in message
