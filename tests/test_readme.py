"""Every ``smartshare`` command in the README's ``sh`` blocks runs as written.

The README promises that its examples run from the checkout after ``scripts/demo``
and ``. .demo/env``.  The tests make that state in ``tmp_path``: a folder standing
for the checkout (its top-level entries are symlinks to this one's, except
``schema/`` and ``manifests/``, copies) with a ``.demo/`` of its own: the demo's
forge (``demo/make_forge.py``), settings with the demo's source rewrite, and every
secret the bundled region profiles refer to in the environment.  Each line is
handed to bash unchanged, with this venv's ``smartshare`` first on PATH, so
relative workspaces land in ``tmp_path``.

``schema/`` is a copy since an example writes into it; ``manifests/`` since the
examples deploy Badung's stack: in the copy, Badung's profile gives the stack a
project name of the test's own and free ports, so that it can run beside the
demo's stack (or another test run's) on the same engine.  The README's text is
what runs.

Lines marked ``(illustrative: ...)`` need what no test has (a region's real
registry); they are left out, and there may be at most two.  Commands that build
images or run containers need Docker: they run, in the README's order, only in
the test marked ``requires_docker``, which takes the stack down afterwards (with
its volumes) and puts back whatever image tags the builds moved.
"""

from __future__ import annotations

import filecmp
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import DockerEnv

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent
ILLUSTRATIVE = "(illustrative:"
FORGE_PREFIX = "https://git.tangerangkota.go.id/diskominfo/"
# Options of plan/adopt/status that take a value (apps are the other arguments).
VALUE_OPTIONS = {"--region", "-r", "--workspace", "-w", "--set", "--jobs", "-j", "--cache-dir"}
VALUE_OPTIONS |= {"--format", "-f", "--catalog", "--target", "--timeout"}
BADUNG = "manifests/regions/badung.yaml"


@dataclass(frozen=True)
class ReadmeCommand:
    line: int
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def illustrative(self) -> bool:
        return ILLUSTRATIVE in self.text

    @property
    def builds(self) -> bool:
        argv = self.argv
        return argv[1] == "adopt" and "--no-build" not in argv

    @property
    def runs_containers(self) -> bool:
        argv = self.argv
        return argv[1] == "deploy" or (argv[1] == "adopt" and "--deploy" in argv)

    def option(self, *names: str) -> str | None:
        argv = self.argv
        for index, word in enumerate(argv[:-1]):
            if word in names:
                return argv[index + 1]
        return None

    @property
    def workspace(self) -> str | None:
        return self.option("--workspace", "-w")

    @property
    def apps(self) -> list[str]:
        names = []
        words = iter(self.argv[2:])
        for word in words:
            if word in VALUE_OPTIONS:
                next(words, None)
            elif not word.startswith("-"):
                names.append(word)
        return names

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def _readme_commands() -> list[ReadmeCommand]:
    commands = []
    language = None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            language = None if language is not None else (line[3:].strip() or "text")
        elif language == "sh" and line.startswith("smartshare "):
            commands.append(ReadmeCommand(number, line))
    return commands


COMMANDS = _readme_commands()
RUNNABLE = [c for c in COMMANDS if not c.illustrative]


def _without_docker() -> list[ReadmeCommand]:
    """Runnable commands that need no engine, nor a workspace one built before them."""
    built: set[str | None] = set()
    chosen = []
    for command in RUNNABLE:
        if command.builds:
            built.add(command.workspace)
        elif command.workspace is None or command.workspace not in built:
            chosen.append(command)
    return chosen


def _id(command: ReadmeCommand) -> str:
    return f"L{command.line}-" + "-".join(shlex.split(command.text, comments=True)[1:3])


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# -- what the README holds ------------------------------------------------------------


def test_readme_has_commands_to_run() -> None:
    assert len(RUNNABLE) >= 10, COMMANDS
    assert {c.argv[1] for c in RUNNABLE} >= {
        *("list", "show", "validate", "plan", "adopt", "status"),
        *("deploy", "ps", "down"),
    }
    assert any(c.builds for c in RUNNABLE)
    # The stack the examples start is taken down by them too, data and all.
    last = [c.argv for c in RUNNABLE if c.runs_containers or c.argv[1] == "down"][-1]
    assert last[1] == "down" and "--volumes" in last, last


def test_few_examples_are_illustrative() -> None:
    illustrative = [str(c) for c in COMMANDS if c.illustrative]
    assert len(illustrative) <= 2, illustrative


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c.argv[1] in ("plan", "adopt")], ids=_id
)
def test_adoption_examples_name_an_existing_profile_and_a_workspace(
    command: ReadmeCommand,
) -> None:
    region = command.option("--region", "-r")
    assert region is not None, command
    assert (REPO_ROOT / region).is_file(), f"{command}: no file {region} in the checkout"
    assert command.workspace is not None, command


# -- running them ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_forge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's forge: one bare repository per app with a sample source."""
    forge = tmp_path_factory.mktemp("demo") / "forge"
    apps = sorted(p.name for p in (REPO_ROOT / "demo" / "sources").iterdir() if p.is_dir())
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "demo" / "make_forge.py"), str(forge), *apps],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return forge


@pytest.fixture(scope="module")
def git_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _secret_variables() -> list[str]:
    """Every NAME of an ``env:NAME`` reference in the bundled region profiles."""
    names = set()
    for profile in sorted((REPO_ROOT / "manifests" / "regions").glob("*.yaml")):
        names.update(re.findall(r"\benv:([A-Za-z_][A-Za-z0-9_]*)", profile.read_text("utf-8")))
    return sorted(names)


@dataclass(frozen=True)
class AfterDemo:
    checkout: Path
    env: dict[str, str]

    def run(self, command: ReadmeCommand) -> subprocess.CompletedProcess[str]:
        bash = shutil.which("bash")
        assert bash is not None
        return subprocess.run(
            [bash, "-c", command.text],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def check(self, command: ReadmeCommand) -> None:
        done = self.run(command)
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{command}\n{done.stderr}"
        # The copy of schema/ holds what the checkout holds: an example that
        # regenerates it must give the committed files.
        comparison = filecmp.dircmp(REPO_ROOT / "schema", self.checkout / "schema")
        assert not (comparison.diff_files or comparison.left_only or comparison.right_only), (
            f"{command}: schema/ differs from the checkout's: {comparison.diff_files}"
        )


@pytest.fixture
def after_demo(tmp_path: Path, demo_forge: Path, git_cache: Path) -> AfterDemo:
    """A checkout as ``scripts/demo`` leaves it, and a shell after ``. .demo/env``."""
    assert (BIN / "smartshare").is_file(), f"no smartshare next to {sys.executable}"
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.name in ("schema", "manifests"):
            shutil.copytree(entry, checkout / entry.name)
        else:
            (checkout / entry.name).symlink_to(entry)
    _own_stack(checkout / BADUNG)
    demo = checkout / ".demo"
    demo.mkdir()
    config = demo / "config.yaml"
    config.write_text(
        yaml.safe_dump({"source_rewrites": {FORGE_PREFIX: f"{demo_forge.as_uri()}/diskominfo/"}}),
        encoding="utf-8",
    )
    drop = {"SMARTSHARE_CATALOG", "SMARTSHARE_CONFIG", "SMARTSHARE_CACHE_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        SMARTSHARE_CONFIG=str(config),
        SMARTSHARE_CACHE_DIR=str(git_cache),
        NO_COLOR="1",
        COLUMNS="160",
    )
    for name in _secret_variables():
        env[name] = secrets.token_urlsafe(18)
    return AfterDemo(checkout=checkout, env=env)


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.add(int(sock.getsockname()[1]))
    return sorted(ports)


def _own_stack(profile: Path) -> None:
    """Badung's profile (a copy) with a project name and free ports of this test's own."""
    region = _load(profile)
    deploy = region["deploy"]
    deploy["project"] = f"readme-{secrets.token_hex(4)}"
    deploy["ports"] = dict(zip(deploy["ports"], _free_ports(len(deploy["ports"])), strict=True))
    profile.write_text(yaml.safe_dump(region, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize("command", _without_docker(), ids=_id)
def test_readme_command_without_docker(after_demo: AfterDemo, command: ReadmeCommand) -> None:
    after_demo.check(command)
    if command.argv[1] == "adopt":
        assert command.workspace is not None
        assert (after_demo.checkout / command.workspace / "smartshare.lock").is_file(), command


def _tags_built_by(commands: list[ReadmeCommand]) -> set[str]:
    """The image tags the building commands make: REGISTRY/IMAGE:VERSION-REGION."""
    manifests = {
        path.stem: _load(path) for path in (REPO_ROOT / "manifests" / "apps").glob("*.yaml")
    }
    tags = set()
    for command in commands:
        if not command.builds:
            continue
        region_file = command.option("--region", "-r")
        assert region_file is not None, command
        region = _load(REPO_ROOT / region_file)
        repository = region.get("registry") or "smartshare"
        pending = list(command.apps)
        while pending:
            manifest = manifests[pending.pop()]
            pending.extend(manifest.get("requires") or [])
            for image in manifest.get("images") or []:
                tags.add(f"{repository}/{image['name']}:{manifest['version']}-{region['name']}")
    return tags


@pytest.fixture
def engine_tags_put_back(docker_engine_env: DockerEnv) -> Iterator[None]:
    """The README's builds tag images as the demo does; afterwards the engine's tags
    point where they pointed before (a tag that was not there is removed), and the
    images the test built are gone."""
    import docker

    api = docker.APIClient(base_url=docker_engine_env.docker_host, version="auto")

    def image_id(tag: str) -> str | None:
        try:
            return str(api.inspect_image(tag)["Id"])
        except docker.errors.ImageNotFound:
            return None

    before = {tag: image_id(tag) for tag in _tags_built_by(RUNNABLE)}
    assert before
    # A second name for each image found: smartshare removes the image a tag it
    # moves pointed at, unless something else still names it.
    keep = f"smartshare-readme-keep/{secrets.token_hex(6)}"
    found = sorted(set(filter(None, before.values())))
    kept = {image: f"{keep}:{n}" for n, image in enumerate(found)}
    for image, name in kept.items():
        api.tag(image, *name.split(":"))
    try:
        yield
    finally:
        for tag, was in before.items():
            now = image_id(tag)
            if now == was:
                continue
            if was is None:
                api.remove_image(tag)
                continue
            repository, _, name = tag.rpartition(":")
            api.tag(was, repository, name, force=True)
            if now is not None and not api.inspect_image(now)["RepoTags"]:
                api.remove_image(now)
        for name in kept.values():
            api.remove_image(name)
        api.close()


@pytest.fixture
def stacks_taken_down(after_demo: AfterDemo, engine_tags_put_back: None) -> Iterator[None]:
    """Whatever the examples leave running goes, with its volumes, before the tags are put
    back (a failed test may leave its stack up)."""
    yield
    project = _load(after_demo.checkout / BADUNG)["deploy"]["project"]
    for workspace in sorted(
        {c.workspace for c in RUNNABLE if c.runs_containers and c.workspace is not None}
    ):
        if (after_demo.checkout / workspace / "smartshare.lock").is_file():
            subprocess.run(
                ["smartshare", "down", "--workspace", workspace, "--volumes", "--yes"],
                cwd=after_demo.checkout,
                env=after_demo.env,
                capture_output=True,
                timeout=300,
                check=False,
            )
    subprocess.run(
        ["docker-compose", "-p", project, "down", "--volumes", "--timeout", "1"],
        cwd=after_demo.checkout,
        env=after_demo.env,
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.mark.requires_docker
def test_readme_commands_in_order(
    after_demo: AfterDemo, busybox_image: str, stacks_taken_down: None
) -> None:
    for command in RUNNABLE:
        after_demo.check(command)
    for workspace in {c.workspace for c in RUNNABLE if c.argv[1] == "adopt"}:
        assert workspace is not None
        assert (after_demo.checkout / workspace / "smartshare.lock").is_file(), workspace
    # The examples ran Badung's stack and took it down, volumes included.
    import docker

    project = _load(after_demo.checkout / BADUNG)["deploy"]["project"]
    client = docker.from_env()
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        assert not client.containers.list(all=True, filters=label)
        assert not client.volumes.list(filters=label)
    finally:
        client.close()
