"""Rendered files checked against the JSON Schema their template declares: before any
build, with the file and the JSON path; runtime files without their values; schemas
from another region followed nowhere outside themselves, and checked under the render
limits."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartshare.adoption.events import Event, Outcome, Phase
from smartshare.adoption.runner import adopt
from smartshare.catalog.checks import validate
from smartshare.cli import app as cli_app
from smartshare.errors import OutputSchemaError
from smartshare.rendering.schemacheck import MAX_SCHEMA_BYTES, OutputCheck, check_output

from catalogs import SECRET_VALUE, CatalogFixture, isolate, make_catalog


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["greeting", "port"],
    "properties": {
        "greeting": {"type": "string", "maxLength": 20},
        "port": {"type": "integer", "maximum": 65535},
    },
}


def check(content: str, schema: object = CONFIG_SCHEMA, *, runtime: bool = False) -> str | None:
    return check_output(
        OutputCheck(
            dest="config/app.json",
            template="page/app.json.j2",
            runtime=runtime,
            format="json",
            schema_name="source:schema/app.schema.json",
            schema_text=json.dumps(schema),
            content=content,
        )
    )


# -- the check itself -------------------------------------------------------------------


def test_a_file_that_satisfies_its_schema_passes() -> None:
    assert check('{"greeting": "Halo", "port": 8080}') is None


def test_an_image_file_is_named_with_the_json_path_and_the_validators_message() -> None:
    assert check('{"greeting": "Halo", "port": "eighty"}') == (
        "config/app.json (rendered from page/app.json.j2) does not satisfy its schema "
        "source:schema/app.schema.json at $.port: 'eighty' is not of type 'integer'"
    )


def test_a_runtime_file_is_described_by_the_schema_alone() -> None:
    # The validator would quote the value; the secret must not appear, even as a key.
    message = check(
        json.dumps({"greeting": SECRET_VALUE, "port": 1, "extra": {SECRET_VALUE: 1}}),
        {**CONFIG_SCHEMA, "additionalProperties": {"type": "string"}},
        runtime=True,
    )
    assert message is not None and SECRET_VALUE not in message
    assert message.startswith("config/app.json (rendered from page/app.json.j2) does not ")
    assert "at $.greeting: must be at most 20 characters long (and 1 more)" in message
    message = check(
        json.dumps({"greeting": "x", "port": 1, SECRET_VALUE: "y"}),
        {**CONFIG_SCHEMA, "additionalProperties": {"type": "integer"}},
        runtime=True,
    )
    assert message is not None and message.endswith("at $.*: must be of type integer")
    message = check(json.dumps({"port": 1}), runtime=True)
    assert message is not None and message.endswith('at $: required property "greeting" is missing')


def test_output_that_does_not_parse_is_named_without_its_text() -> None:
    message = check('{"greeting": ' + SECRET_VALUE, runtime=True)
    assert message == (
        "config/app.json (rendered from page/app.json.j2) is not valid JSON: "
        "Expecting value (line 1, column 14)"
    )


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A server on loopback that records every path asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_remote_and_file_references_are_not_followed(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, asked = http_server
    message = check('{"a": 1}', {"properties": {"a": {"$ref": f"{url}/defs.json"}}})
    assert message == (
        f'schema source:schema/app.schema.json: $ref "{url}/defs.json" cannot be resolved: '
        "references are followed inside the schema only (no network, no files)"
    )
    assert asked == []
    local = tmp_path / "defs.json"
    local.write_text('{"type": "string"}')
    message = check('{"a": 1}', {"properties": {"a": {"$ref": local.as_uri()}}})
    assert message is not None and "cannot be resolved" in message
    # Inside the schema, and the drafts' own meta-schemas, references work.
    schema = {
        "$defs": {"port": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/port"}},
    }
    assert check('{"a": 1}', schema) is None
    assert check("{}", {"$ref": "https://json-schema.org/draft/2020-12/schema"}) is None


@pytest.mark.parametrize(
    ("schema_text", "phrase"),
    [
        ("{not json", "is not valid JSON: Expecting property name"),
        ("[1, 2]", "is not a JSON Schema: not an object"),
        ('{"type": "whole number"}', "is not a valid JSON Schema: at $.type"),
        ('{"$schema": "https://example.com/my-draft"}', "unknown $schema"),
        ('{"pattern": "("}', "is not a valid JSON Schema"),
        ("[" * 100_000, "nested too deeply"),
        (" " * MAX_SCHEMA_BYTES + "{}", "larger than 1024 KiB"),
    ],
)
def test_an_unusable_schema_is_named(schema_text: str, phrase: str) -> None:
    message = check_output(
        OutputCheck(
            dest="a.json",
            template="a.json.j2",
            runtime=False,
            format="json",
            schema_name="catalog:a.schema.json",
            schema_text=schema_text,
            content="{}",
        )
    )
    assert message is not None and message.startswith("schema catalog:a.schema.json")
    assert phrase in message


def test_yaml_output_is_read_as_yaml() -> None:
    yaml_check = OutputCheck(
        dest="dispatch.yaml",
        template="x/dispatch.yaml.j2",
        runtime=True,
        format="yaml",
        schema_name="catalog:x/dispatch.schema.json",
        schema_text=json.dumps({"properties": {"agencies": {"type": "array", "minItems": 2}}}),
        content=f"agencies: [{SECRET_VALUE}]\n",
    )
    message = check_output(yaml_check)
    assert message is not None and SECRET_VALUE not in message
    assert message.endswith("at $.agencies: must have at least 2 items")


# -- in a catalogue ---------------------------------------------------------------------


def with_schema(
    catalog: CatalogFixture, schema: object, *, where: str = "catalog", runtime: bool = False
) -> None:
    """Give every app a JSON template with ``schema`` (in templates/, or in each source)."""
    target = "runtime" if runtime else "image"
    value = "{{ params.api_token | tojson }}" if runtime else "{{ params.greeting | tojson }}"
    catalog.write("templates/page/config.json.j2", f'{{"greeting": {value}, "port": 8080}}\n')
    text = json.dumps(schema)
    path = "page/config.schema.json" if where == "catalog" else "schema/config.schema.json"
    if where == "catalog":
        catalog.write("templates/page/config.schema.json", text)
    for name, repo in catalog.repos.items():
        if where == "source":
            repo.commit("schema", files={"schema/config.schema.json": text})
            repo.move_tag("v1.0.0")
        manifest = catalog.root / f"manifests/apps/{name}.yaml"
        manifest.write_text(
            manifest.read_text().replace(
                "templates:\n",
                "templates:\n  - src: page/config.json.j2\n    dest: config/app.json\n"
                f"    target: {target}\n"
                f"    schema: {where}:{path}\n",
            )
        )


def test_validate_checks_a_catalogue_schema_where_the_manifest_names_it(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_schema(catalog, CONFIG_SCHEMA)
    assert validate(catalog_root=catalog.root).problems == []
    catalog.write("templates/page/config.schema.json", '{"type": 5}')
    [problem] = validate(catalog_root=catalog.root).problems
    manifest = (catalog.root / "manifests/apps/alpha.yaml").read_text().splitlines()
    assert problem.line == manifest.index("    schema: catalog:page/config.schema.json") + 1
    assert problem.field == "templates.0.schema"
    assert problem.message.startswith(
        "schema catalog:page/config.schema.json is not a valid JSON Schema: at $.type"
    )
    (catalog.root / "templates/page/config.schema.json").unlink()
    [problem] = validate(catalog_root=catalog.root).problems
    assert problem.field == "templates.0.schema"
    assert "schema 'page/config.schema.json' does not exist" in problem.message


@pytest.mark.parametrize(
    ("spec", "field", "phrase"),
    [
        (
            "  - src: page/index.html.j2\n    dest: www/config\n    schema: catalog:x.json\n",
            "templates.0",
            "cannot tell how to read 'www/config' for its schema",
        ),
        (
            "  - src: page/index.html.j2\n    dest: www/a.json\n    format: json\n",
            "templates.0",
            "'format' says how to read the output for 'schema': give both",
        ),
        (
            "  - src: page/index.html.j2\n    dest: www/a.json\n    schema: https://x/s.json\n",
            "templates.0.schema",
            "expected 'source:PATH'",
        ),
        (
            "  - src: page/index.html.j2\n    dest: www/a.json\n    schema: source:../s.json\n",
            "templates.0.schema",
            "'..' is not allowed",
        ),
    ],
)
def test_a_schema_key_that_cannot_work_is_located(
    tmp_path: Path, spec: str, field: str, phrase: str
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(manifest.read_text().replace("templates:\n", "templates:\n" + spec))
    problems = [p for p in validate(catalog_root=catalog.root).problems if p.field == field]
    assert len(problems) == 1 and phrase in problems[0].message, problems


def run(
    catalog: CatalogFixture, workspace: Path, *, build: bool = False
) -> tuple[object, list[Event]]:
    events: list[Event] = []
    result = adopt(
        apps=list(catalog.repos),
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=build,
        on_event=events.append,
    )
    return result, events


def test_cli_adopt_exits_1_naming_the_file_and_the_json_path(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    strict = {**CONFIG_SCHEMA, "properties": {"greeting": {"maxLength": 5}}}
    with_schema(catalog, strict, where="source")
    result = CliRunner().invoke(
        cli_app,
        [
            "adopt",
            "alpha",
            "--no-build",
            "--workspace",
            str(tmp_path / "ws"),
            "--region",
            str(catalog.region_file),
            "--catalog",
            str(catalog.root),
        ],
    )
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert (
        "config/app.json (rendered from page/config.json.j2) does not satisfy its schema "
        "source:schema/config.schema.json at $.greeting: 'Selamat datang' is too long"
    ) in flat
    assert not (tmp_path / "ws/apps/alpha").exists()


@pytest.mark.requires_docker
def test_adopt_fails_before_any_build(tmp_path: Path, busybox_image: str) -> None:
    import docker

    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_schema(catalog, {**CONFIG_SCHEMA, "properties": {"port": {"maximum": 80}}})
    result, events = run(catalog, tmp_path / "ws", build=True)
    [outcome] = result.results  # type: ignore[attr-defined]
    assert outcome.outcome is Outcome.FAILED
    assert isinstance(outcome.error, OutputSchemaError)
    assert "at $.port: 8080 is greater than the maximum of 80" in outcome.message
    assert not any(e.phase is Phase.BUILDING for e in events)
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(catalog.tag("alpha"))


def test_a_runtime_file_failing_its_schema_shows_no_secret(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    schema = {"properties": {"greeting": {"type": "string", "pattern": "^[0-9]+$"}}}
    with_schema(catalog, schema, runtime=True)
    result, _ = run(catalog, tmp_path / "ws")
    [outcome] = result.results  # type: ignore[attr-defined]
    assert outcome.outcome is Outcome.FAILED
    assert SECRET_VALUE not in outcome.message
    assert outcome.message.endswith('at $.greeting: must match the pattern "^[0-9]+$"')


def test_a_changed_catalogue_schema_is_checked_again(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_schema(catalog, CONFIG_SCHEMA)
    workspace = tmp_path / "ws"
    result, _ = run(catalog, workspace)
    assert [r.outcome for r in result.results] == [Outcome.ADOPTED]  # type: ignore[attr-defined]
    result, _ = run(catalog, workspace)
    assert [r.outcome for r in result.results] == [Outcome.UP_TO_DATE]  # type: ignore[attr-defined]
    catalog.write(
        "templates/page/config.schema.json",
        json.dumps({**CONFIG_SCHEMA, "properties": {"port": {"maximum": 1024}}}),
    )
    result, _ = run(catalog, workspace)
    [outcome] = result.results  # type: ignore[attr-defined]
    assert outcome.outcome is Outcome.FAILED
    assert "at $.port: 8080 is greater than the maximum of 1024" in outcome.message


def test_a_schema_that_takes_too_long_is_stopped_by_the_render_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "limits.yaml"
    settings.write_text("render_limits:\n  seconds: 1\n")
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(settings))
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_schema(catalog, {"properties": {"greeting": {"pattern": "^(a+)+$"}}})
    # Backtracking without end: 2^40 ways to split the a's before the '!' fails them.
    catalog.write("templates/page/config.json.j2", '{"greeting": "' + "a" * 40 + '!", "port": 1}\n')
    result, _ = run(catalog, tmp_path / "ws")
    [outcome] = result.results  # type: ignore[attr-defined]
    assert outcome.outcome is Outcome.FAILED
    assert outcome.message == (
        "schema check of config/app.json: took longer than 1 s (the limit per template); stopped"
    )


def test_a_noop_run_does_not_import_jsonschema(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_schema(catalog, CONFIG_SCHEMA)
    workspace = tmp_path / "ws"
    run(catalog, workspace)
    script = (
        "import sys\nfrom smartshare.cli import app\ntry:\n    app(prog_name='smartshare')\n"
        "finally:\n    print('LOADED', 'jsonschema' in sys.modules, file=sys.stderr)\n"
    )
    argv = ["adopt", "alpha", "--no-build", "--workspace", str(workspace)]
    argv += ["--region", str(catalog.region_file), "--catalog", str(catalog.root)]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert "LOADED False" in done.stderr
