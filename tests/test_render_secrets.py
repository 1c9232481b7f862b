"""Secrets and rendering: no state shared between renders, no secret an image
template can reach, and no error path that shows a secret, even transformed.

The templates here are hostile on purpose; each case is an attack a security
review found or one of its class.
"""

from __future__ import annotations

import json
from pathlib import Path

import engineimages
import pytest
from typer.testing import CliRunner, Result

from smartshare.cli import app as cli_app
from smartshare.errors import TemplateRenderError
from smartshare.rendering.limits import RenderLimits
from smartshare.rendering.pool import RenderPool
from smartshare.rendering.sandbox import make_environment, render

from catalogs import CatalogFixture, isolate, make_catalog

SECRET = "S3cr3t-VALUE-xyz"


def secret_forms(secret: str = SECRET) -> list[str]:
    """The secret and what a template can easily make of it."""
    forms = [secret, secret.upper(), secret.lower(), secret[::-1], secret.upper()[::-1]]
    forms += [secret[3:], secret[:-3], secret[2:-2], secret.upper()[3:]]
    return forms


def assert_secret_nowhere(root: Path, *outputs: str) -> None:
    """No form of the secret in ``outputs`` nor in any file under ``root`` outside runtime/."""
    for output in outputs:
        for form in secret_forms():
            assert form not in output, f"{form!r} in output:\n{output}"
    for path in root.rglob("*"):
        if "runtime" in path.parts or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for form in secret_forms():
            assert form.encode() not in data, f"{form!r} in {path}"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch, secret=SECRET)


def adopt_cli(catalog: CatalogFixture, workspace: Path, *args: str) -> Result:
    command = ["adopt", *args, "--workspace", str(workspace)]
    command += ["--region", str(catalog.region_file), "--catalog", str(catalog.root)]
    return CliRunner().invoke(cli_app, command)


def templates(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "templates"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


# A module imported without context is cached by Jinja (on the Template, which
# the environment caches): its namespace outlived the render that filled it.
KEEPER = (
    "{% set ns = namespace(kept='') %}"
    "{% macro keep(value) %}{% set ns.kept = value %}{% endmacro %}"
    "{% macro kept() %}{{ ns.kept }}{% endmacro %}"
)
FILLS = "{% import 'lib.j2' as lib %}{{ lib.keep(params.api_token) }}API_TOKEN=x\n"
READS = "{% import 'lib.j2' as lib %}<p>[{{ lib.kept() }}]</p>\n"


# -- state shared between renders ---------------------------------------------


def test_a_module_namespace_filled_by_one_render_is_not_seen_by_the_next(tmp_path: Path) -> None:
    root = templates(tmp_path, {"lib.j2": KEEPER, "fills.j2": FILLS, "reads.j2": READS})
    env = make_environment(root)
    render(env, "fills.j2", {"params": {"api_token": SECRET}}, runtime=True)
    assert render(env, "reads.j2", {"params": {}}) == "<p>[]</p>\n"


def test_a_runtime_render_leaves_nothing_for_an_image_render_in_the_pool(
    tmp_path: Path,
) -> None:
    root = templates(tmp_path, {"lib.j2": KEEPER, "fills.j2": FILLS, "reads.j2": READS})
    with RenderPool(RenderLimits()) as pool:
        for _ in range(2):  # the same worker serves both
            pool.render(
                templates_dir=root,
                templates=["fills.j2"],
                context={"params": {"api_token": SECRET}},
                secret_names={"api_token"},
                runtime=True,
            )
            page = pool.render(
                templates_dir=root,
                templates=["reads.j2"],
                context={"params": {"api_token": SECRET}},
                secret_names={"api_token"},
                runtime=False,
            )
            assert page == [b"<p>[]</p>\n"]


def test_a_secret_kept_in_a_module_by_one_app_does_not_reach_the_next_apps_image(
    tmp_path: Path,
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    catalog.write("templates/lib.j2", KEEPER)
    catalog.write(
        "templates/page/runtime.env.j2",
        "{% import 'lib.j2' as lib %}{{ lib.keep(params.api_token) }}"
        "API_TOKEN={{ params.api_token | shquote }}\n",
    )
    catalog.write(
        "templates/page/index.html.j2",
        "{% import 'lib.j2' as lib %}<h1>{{ params.greeting | e }}</h1>[{{ lib.kept() }}]\n",
    )
    workspace = tmp_path / "ws"
    result = adopt_cli(catalog, workspace, "alpha", "beta", "--no-build", "--jobs", "1")
    assert result.exit_code == 0, result.output
    for app in ("alpha", "beta"):
        page = (workspace / f"apps/{app}/src/www/index.html").read_text()
        assert page == "<h1>Selamat datang</h1>[]\n"
        runtime = (workspace / f"runtime/{app}/runtime.env").read_text()
        assert runtime == f"API_TOKEN={SECRET}\n"
    assert_secret_nowhere(tmp_path, result.output)


@pytest.mark.requires_docker
def test_a_secret_kept_in_a_module_is_in_no_image(tmp_path: Path, busybox_image: str) -> None:
    client = pytest.importorskip("docker").from_env()
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/lib.j2", KEEPER)
    # The runtime template first: it fills the namespace the image template reads.
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    image_spec = "  - src: page/index.html.j2\n    dest: www/index.html\n"
    runtime_spec = "  - src: page/runtime.env.j2\n    dest: runtime.env\n    target: runtime\n"
    text = manifest.read_text()
    assert image_spec + runtime_spec in text
    manifest.write_text(text.replace(image_spec + runtime_spec, runtime_spec + image_spec))
    catalog.write(
        "templates/page/runtime.env.j2",
        "{% import 'lib.j2' as lib %}{{ lib.keep(params.api_token) }}API_TOKEN=1\n",
    )
    catalog.write("templates/page/index.html.j2", READS)
    workspace = tmp_path / "ws"
    result = adopt_cli(catalog, workspace, "alpha")
    assert result.exit_code == 0, result.output
    saved = b"".join(client.images.get(catalog.tag("alpha")).save(named=True))
    layers = engineimages.layer_bytes(saved)
    assert b"<p>[]</p>" in layers  # the search can find the page
    for form in secret_forms():
        assert form.encode() not in layers
    assert_secret_nowhere(tmp_path, result.output)
    client.images.remove(catalog.tag("alpha"), force=True)


# -- an image template cannot reach a secret at run time -------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ params['api_' ~ 'token'] }}",
        "{% for name, value in params.items() %}{{ value }}{% endfor %}",
        "{% for name, value in params | dictsort %}{{ value }}{% endfor %}",
        "{{ params | tojson }}",
        "{{ params | toyaml }}",
        "{{ params | string }}",
        "{{ params.values() | join(',') }}",
        "{{ params.get('api_token') | upper }}",
        "{% if params.api_token %}set{% endif %}",
        "{{ params.api_token | length }}",
    ],
)
def test_an_image_render_has_no_secret_value_to_reach(tmp_path: Path, expression: str) -> None:
    root = templates(tmp_path, {"image.j2": f"page\n{expression}\n"})
    context = {"params": {"greeting": "Hai", "api_token": SECRET}}
    with RenderPool(RenderLimits()) as pool, pytest.raises(TemplateRenderError) as caught:
        pool.render(
            templates_dir=root,
            templates=["image.j2"],
            context=context,
            secret_names={"api_token"},
            runtime=False,
        )
    message = caught.value.message + (caught.value.hint or "")
    assert "image.j2:2" in message
    assert "api_token" in message
    assert "secret" in message
    assert_secret_nowhere(tmp_path, message)


@pytest.mark.parametrize(
    "expression",
    [
        "{{ params['api_' ~ 'token'] }}",
        "{% for name, value in params.items() %}{{ value }}{% endfor %}",
        "{% for name, value in params | dictsort %}{{ value }}{% endfor %}",
        "{{ params | tojson }}",
    ],
)
def test_adopt_refuses_an_image_template_that_reaches_for_a_secret(
    tmp_path: Path, expression: str
) -> None:
    """The static check or the run-time guard, whichever comes first: exit 1, no secret."""
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/index.html.j2", f"<h1>x</h1>\n{expression}\n")
    workspace = tmp_path / "ws"
    for output in ("table", "json"):
        result = adopt_cli(catalog, workspace, "alpha", "--no-build", "--format", output)
        assert result.exit_code == 1, result.output
        assert "index.html.j2" in result.output
        assert not (workspace / "apps/alpha").exists()
        assert_secret_nowhere(tmp_path, result.output)


# -- errors of runtime renders carry no value ----------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ params[params.api_token | upper] }}",
        "{{ params[params.api_token | reverse] }}",
        "{{ params[params.api_token[3:]] }}",
        "{{ params[params.api_token ~ '!'] }}",
        "{{ params.api_token.no_such_attribute[params.api_token | lower] }}",
        "{{ lipsum(**{(params.api_token | upper): 1}) }}",
        "{{ ('{0:' ~ params.api_token ~ '}').format(1) }}",
        "{{ params.api_token | attr('_' ~ (params.api_token | upper)) }}",
        "{{ params.api_token }}{{ '\\ud800' }}",
        "{{ (params.api_token | upper) + 1 }}",
        "{{ params.api_token | int(base=2) + {}[params.api_token] }}",
    ],
)
def test_runtime_render_errors_never_show_a_secret(tmp_path: Path, expression: str) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/runtime.env.j2", f"A=1\n{expression}\n")
    workspace = tmp_path / "ws"
    table = adopt_cli(catalog, workspace, "alpha", "--no-build")
    assert table.exit_code == 1, table.output
    assert "runtime.env.j2:2" in table.output
    as_json = adopt_cli(catalog, workspace, "alpha", "--no-build", "--format", "json")
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)
    assert report["apps"][0]["result"] == "failed"
    assert "runtime.env.j2:2" in report["apps"][0]["message"]
    assert not (workspace / "apps/alpha").exists()
    assert_secret_nowhere(tmp_path, table.output, as_json.output)


def test_an_undefined_value_of_a_runtime_render_is_named_from_the_template(
    tmp_path: Path,
) -> None:
    root = templates(tmp_path, {"run.j2": "A=1\nB={{ params.db.host }}\n"})
    with RenderPool(RenderLimits()) as pool, pytest.raises(TemplateRenderError) as caught:
        pool.render(
            templates_dir=root,
            templates=["run.j2"],
            context={"params": {"db": {"port": SECRET}}},
            secret_names={"db"},
            runtime=True,
        )
    assert caught.value.message == "template run.j2:2: undefined value 'params.db.host'"


def test_an_unexpected_error_shows_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error's text may hold anything: only its type is shown."""
    catalog = make_catalog(tmp_path, {"alpha": ()})

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"cannot handle {SECRET.upper()!r}")

    monkeypatch.setattr("smartshare.adoption.runner.assess", broken)
    workspace = tmp_path / "ws"
    table = adopt_cli(catalog, workspace, "alpha", "--no-build")
    assert table.exit_code == 3, table.output
    assert "RuntimeError" in table.output
    as_json = adopt_cli(catalog, workspace, "alpha", "--no-build", "--format", "json")
    assert as_json.exit_code == 3, as_json.output
    [report] = json.loads(as_json.stdout)["apps"]
    assert report["result"] == "failed"
    assert "RuntimeError" in report["message"]
    assert_secret_nowhere(tmp_path, table.output, as_json.output)
