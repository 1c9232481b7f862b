"""Build arguments as Jinja text: rendered like image templates (never with a secret),
checked by validate where they are written, part of the build key and the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartshare.adoption.events import AdoptResult, Outcome
from smartshare.adoption.runner import adopt
from smartshare.catalog.checks import validate
from smartshare.catalog.diagnostics import Severity
from smartshare.errors import InvalidInputError
from smartshare.state.lockfile import read_lock

from catalogs import CatalogFixture, isolate, make_catalog

DOCKERFILE = """\
FROM busybox:1.36
ARG DOMAIN_TAG=unset
ARG PLAIN=unset
COPY www/ /www/
RUN echo "$DOMAIN_TAG $PLAIN" > /www/build.txt
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def with_args(catalog: CatalogFixture, app: str, args: dict[str, str]) -> Path:
    manifest = catalog.root / f"manifests/apps/{app}.yaml"
    lines = "".join(f"      {key}: {value}\n" for key, value in args.items())
    manifest.write_text(
        manifest.read_text().replace(
            "    dockerfile: Dockerfile\n", "    dockerfile: Dockerfile\n    args:\n" + lines
        )
    )
    return manifest


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def run(
    catalog: CatalogFixture,
    workspace: Path,
    *,
    build: bool = False,
    overrides: tuple[str, ...] = (),
) -> AdoptResult:
    return adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=build,
        overrides=overrides,
    )


# -- validate ---------------------------------------------------------------------------


def test_a_secret_in_a_build_argument_is_refused_where_it_is_written(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    manifest = with_args(catalog, "alpha", {"TOKEN": '"{{ params.api_token }}"'})
    [problem] = validate(catalog_root=catalog.root).problems
    assert (problem.line, problem.column) == (line_of(manifest, "TOKEN:"), 14)
    assert problem.field == "images.0.args.TOKEN"
    assert problem.severity is Severity.ERROR
    assert problem.message == (
        "secret parameter 'api_token' of 'alpha' is used by a build argument: build "
        "arguments are kept in the image's history; give the value to the container at run "
        "time instead"
    )
    with pytest.raises(InvalidInputError, match="does not validate"):
        run(catalog, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ('"{{ params.colour }}"', "parameter 'colour' is not declared by app 'alpha'"),
        ('"{{ region.nmae }}"', "'region' has no field 'nmae'; did you mean 'name'?"),
        ('"{{ password }}"', "'password' is not defined"),
        ("\"{% include 'page/index.html.j2' %}\"", "a include cannot be used here"),
        ('"{{ region.name "', "template syntax error"),
        ('"{{ params | tojson }}"', "uses 'params' as a whole, which includes secret"),
    ],
)
def test_a_build_argument_that_cannot_render_is_located(
    tmp_path: Path, value: str, phrase: str
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_args(catalog, "alpha", {"TAG": value})
    problems = [
        p for p in validate(catalog_root=catalog.root).problems if p.severity.value == "error"
    ]
    assert [p.field for p in problems] == ["images.0.args.TAG"]
    assert phrase in problems[0].message


def test_a_parameter_used_only_by_a_build_argument_counts_as_used(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/index.html.j2", "<p>{{ region.title | e }}</p>\n")
    with_args(catalog, "alpha", {"GREETING": '"{{ params.greeting }}"'})
    assert validate(catalog_root=catalog.root).problems == []


# -- adopt ------------------------------------------------------------------------------


def test_rendered_arguments_enter_the_lock_and_a_change_syncs_again(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_args(
        catalog, "alpha", {"DOMAIN_TAG": '"{{ region.name }}-{{ params.greeting }}"', "PLAIN": "x"}
    )
    workspace = tmp_path / "ws"
    assert run(catalog, workspace).results[0].outcome is Outcome.ADOPTED
    entry = read_lock(workspace).apps["alpha"]
    assert entry.build_args == {
        "alpha": {"DOMAIN_TAG": f"{catalog.region}-Selamat datang", "PLAIN": "x"}
    }
    assert run(catalog, workspace).results[0].outcome is Outcome.UP_TO_DATE
    changed = run(catalog, workspace, overrides=("alpha.greeting=Om Swastiastu",))
    assert changed.results[0].outcome is Outcome.ADOPTED
    assert "values changed: greeting" in changed.results[0].message
    assert read_lock(workspace).apps["alpha"].build_args["alpha"]["DOMAIN_TAG"] == (
        f"{catalog.region}-Om Swastiastu"
    )
    assert read_lock(workspace).apps["alpha"].build_key != entry.build_key


def test_plain_arguments_are_not_rendered_nor_recorded(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_args(catalog, "alpha", {"PLAIN": '"100%"'})
    workspace = tmp_path / "ws"
    assert run(catalog, workspace).results[0].outcome is Outcome.ADOPTED
    assert read_lock(workspace).apps["alpha"].build_args == {}


@pytest.mark.requires_docker
def test_the_rendered_argument_reaches_the_build_and_a_changed_one_rebuilds(
    tmp_path: Path, busybox_image: str
) -> None:
    import docker

    catalog = make_catalog(tmp_path, {"alpha": ()}, dockerfiles={"alpha": DOCKERFILE})
    with_args(catalog, "alpha", {"DOMAIN_TAG": '"{{ region.domain }}"', "PLAIN": "\"{{ '{{' }}x\""})
    workspace = tmp_path / "ws"
    first = run(catalog, workspace, build=True)
    assert first.results[0].outcome is Outcome.ADOPTED, first.results
    client = docker.from_env()
    image = client.images.get(catalog.tag("alpha"))
    said = client.containers.run(image.id, ["cat", "/www/build.txt"], remove=True)
    assert said == b"testland.go.id {{x\n"

    region = catalog.region_file
    region.write_text(region.read_text().replace("testland.go.id", "testland.example.id"))
    again = run(catalog, workspace, build=True)
    assert again.results[0].outcome is Outcome.ADOPTED
    assert again.results[0].message == "build arguments changed"
    rebuilt = client.images.get(catalog.tag("alpha"))
    assert rebuilt.id != image.id
    said = client.containers.run(rebuilt.id, ["cat", "/www/build.txt"], remove=True)
    assert said == b"testland.example.id {{x\n"
