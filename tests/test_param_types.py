"""Parameter types: the one check of a value, --set parsing, located errors, patterns, schemas.

The same function judges a manifest's default, a region profile's value and a
``--set`` value; each place names the parameter, what it takes and where the
value came from.  Patterns run on smartshare's automaton, never on ``re``.
The CLI tests adopt through the demo's forge for LAKSA (real git repositories
in tmp_path) and check the profile's JSON Schema with check-jsonschema.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from smartshare.catalog.checks import validate
from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.load import load_catalog, load_file
from smartshare.catalog.models import AppManifest, Parameter
from smartshare.catalog.paramtypes import (
    describe,
    json_schema_of,
    parse_text,
    spec_details,
    value_problem,
)
from smartshare.catalog.patterns import (
    MAX_MATCHED_LENGTH,
    MAX_PATTERN_LENGTH,
    PatternError,
    compile_pattern,
)
from smartshare.cli import app as cli_app
from smartshare.errors import InvalidInputError
from smartshare.rendering.values import parse_set_options, resolve_values

from catalogs import make_catalog

REPO_ROOT = Path(__file__).resolve().parent.parent
BADUNG = REPO_ROOT / "manifests" / "regions" / "badung.yaml"
BIN = Path(sys.executable).parent
FORGE_PREFIX = "https://git.tangerangkota.go.id/diskominfo/"

CENTER: dict[str, Any] = {
    "name": "map_center",
    "type": "list",
    "items": {"type": "number", "minimum": -180, "maximum": 180},
    "min_items": 2,
    "max_items": 2,
}
LAYERS: dict[str, Any] = {
    "name": "layers",
    "type": "list",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "required": True, "min_length": 1},
            "opacity": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "list", "items": {"type": "string", "pattern": "^[a-z]+$"}},
        },
    },
}


def spec(**fields: Any) -> Parameter:
    return Parameter.model_validate({"name": "p", **fields})


def problem_of(parameter: Parameter, value: Any) -> tuple[tuple[str | int, ...], str] | None:
    problem = value_problem(parameter, value)
    return None if problem is None else (problem.path, problem.explain(parameter.name, parameter))


# -- the check of a value -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "value"),
    [
        ({"type": "number"}, 1),
        ({"type": "number"}, -8.58),
        ({"type": "number", "minimum": -1.5, "maximum": 2}, 2),
        ({"type": "integer", "minimum": 1, "maximum": 50}, 50),
        ({"type": "string", "min_length": 2, "max_length": 3}, "abc"),
        ({"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"}, "#0B6E4F"),
        ({"type": "url"}, "https://laksa.badungkab.go.id/"),
        ({"type": "email", "max_length": 40}, "it@badungkab.go.id"),
        ({"type": "enum", "choices": [1, 2]}, 2),
        ({"type": "boolean"}, False),
        ({"type": "list"}, ["a", 1, True]),
        (CENTER, [-8.58, 115.17]),
        (LAYERS, [{"name": "jalan", "opacity": 0.5, "tags": ["roads"]}, {"name": "x"}]),
    ],
)
def test_a_value_that_fits(fields: dict[str, Any], value: Any) -> None:
    assert value_problem(spec(**fields), value) is None


@pytest.mark.parametrize(
    ("fields", "value", "path", "message"),
    [
        ({"type": "number"}, "1.5", (), "p must be a number (got text)"),
        ({"type": "number"}, True, (), "p must be a number (got true/false)"),
        ({"type": "number"}, float("nan"), (), "p must be a number (got a number)"),
        ({"type": "integer"}, 1.5, (), "p must be a whole number (got a number)"),
        (
            {"type": "integer", "minimum": 1, "maximum": 50},
            51,
            (),
            "p must be a whole number from 1 to 50 (got a larger one)",
        ),
        ({"type": "number", "minimum": 0}, -1, (), "p must be a number of at least 0"),
        (
            {"type": "string", "max_length": 3},
            "abcd",
            (),
            "p must be a string of at most 3 characters (got 4 characters)",
        ),
        (
            {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"},
            "green",
            (),
            "p must be a string matching '^#[0-9A-Fa-f]{6}$'",
        ),
        ({"type": "string"}, 12, (), "p must be a string (got a whole number); quote it in YAML"),
        ({"type": "url"}, "ftp://x.id", (), "p must be an http:// or https:// URL"),
        ({"type": "enum", "choices": [1, 2]}, "2", (), "p must be one of 1, 2"),
        (
            CENTER,
            "north",
            (),
            "map_center must be a list of 2 numbers (got text)",
        ),
        (
            CENTER,
            [-8.58, "north"],
            (1,),
            "map_center[1] must be a number from -180 to 180 (got text) "
            "(map_center must be a list of 2 numbers)",
        ),
        (
            CENTER,
            [-8.58, 181],
            (1,),
            "map_center[1] must be a number from -180 to 180 (got a larger one)",
        ),
        (CENTER, [1, 2, 3], (), "map_center must be a list of 2 numbers (got 3 items)"),
        ({"type": "list"}, [["nested"]], (0,), "p[0] must be a plain value (got a list)"),
        (
            LAYERS,
            [{"name": "a"}, {"opacity": 0.5}],
            (1,),
            "layers[1] needs the key 'name' (layers must be a list of objects)",
        ),
        (
            LAYERS,
            [{"name": "a", "colour": "red"}],
            (0, "colour"),
            "layers[0].colour is not a key it takes (name, opacity, tags)",
        ),
        (
            LAYERS,
            [{"name": "a", "tags": ["ok", "Not OK"]}],
            (0, "tags", 1),
            "layers[0].tags[1] must be a string matching '^[a-z]+$'",
        ),
        (
            LAYERS,
            [{"name": ""}],
            (0, "name"),
            "layers[0].name must be a string of at least 1 character (got 0 characters)",
        ),
    ],
)
def test_a_value_that_does_not_fit_says_where_and_what(
    fields: dict[str, Any], value: Any, path: tuple[str | int, ...], message: str
) -> None:
    found = problem_of(spec(**fields), value)
    assert found is not None
    assert found[0] == path
    assert found[1].startswith(message), found[1]


def test_messages_never_show_the_value() -> None:
    parameter = spec(type="string", pattern="^[a-z]+$", max_length=100)
    for value in ["S3cr3t-Value!", "x" * 101, 42]:
        found = problem_of(parameter, value)
        assert found is not None
        assert str(value) not in found[1]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"type": "integer", "minimum": 1, "maximum": 50}, "a whole number from 1 to 50"),
        ({"type": "number", "maximum": 1}, "a number of at most 1"),
        ({"type": "string", "min_length": 1, "max_length": 80}, "a string of 1 to 80 characters"),
        (CENTER, "a list of 2 numbers"),
        ({"type": "list", "max_items": 5}, "a list of at most 5 plain values"),
        (LAYERS, "a list of objects"),
        ({"type": "object", "properties": {"a": {}, "b": {}}}, "an object with the keys a, b"),
    ],
)
def test_describe(fields: dict[str, Any], words: str) -> None:
    assert describe(spec(**fields)) == words


def test_show_lines_name_the_items_and_properties() -> None:
    assert spec_details(spec(**CENTER)) == [
        "takes a list of 2 numbers",
        "each item: a number from -180 to 180",
    ]
    assert spec_details(spec(**LAYERS)) == [
        "takes a list of objects",
        "[].name: a string of at least 1 character (required)",
        "[].opacity: a number from 0 to 1",
        "[].tags: a list of strings",
        "[].tags[]: a string matching '^[a-z]+$'",
    ]
    assert spec_details(spec(type="string")) == []
    assert spec_details(spec(type="enum", choices=["id", "en"])) == []


# -- a manifest's parameters ------------------------------------------------------------------


def manifest_problems(tmp_path: Path, parameters: str) -> list[Problem]:
    text = textwrap.dedent(
        """\
        apiVersion: smartshare/v1
        kind: App
        name: typed
        title: Typed
        summary: {en: Typed values., id: Nilai bertipe.}
        owner: {name: Pemerintah Kota Tangerang, region_code: "36.71", contact: a@b.id}
        category: public-service
        license: MIT
        version: "1.0.0"
        maturity: stable
        source: {repo: "https://git.example.go.id/typed.git", ref: v1.0.0}
        images: [{name: typed}]
        parameters:
        """
    ) + textwrap.indent(textwrap.dedent(parameters), "  ")
    path = tmp_path / "typed.yaml"
    path.write_text(text, encoding="utf-8")
    return load_file(path)[1]


@pytest.mark.parametrize(
    ("parameters", "line", "field", "phrase"),
    [
        (
            """\
            - name: map_center
              type: list
              items: {type: number}
              min_items: 2
              max_items: 2
              default: [-6.17, north]
            """,
            19,
            "parameters.0.default",
            "map_center[1] must be a number (got text) (map_center must be a list of 2 numbers)",
        ),
        (
            """\
            - name: size
              type: integer
              maximum: 10
              default: 11
            """,
            17,
            "parameters.0.default",
            "size must be a whole number of at most 10 (got a larger one)",
        ),
        (
            """\
            - name: size
              type: string
              minimum: 1
            """,
            14,
            "parameters.0",
            "'minimum' is only for parameters of type integer, number",
        ),
        (
            """\
            - name: size
              type: integer
              minimum: 10
              maximum: 1
            """,
            14,
            "parameters.0",
            "'minimum' is larger than 'maximum'",
        ),
        (
            """\
            - name: layers
              type: object
            """,
            14,
            "parameters.0",
            "an object parameter needs 'properties'",
        ),
        (
            """\
            - name: code
              type: string
              pattern: "^(a)\\\\1$"
            """,
            16,
            "parameters.0.pattern",
            "a back-reference cannot be matched without backtracking",
        ),
        (
            """\
            - name: password
              secret: true
              min_length: 12
            """,
            14,
            "parameters.0",
            "a secret parameter takes no 'min_length'",
        ),
        (
            """\
            - name: layers
              type: object
              properties: {1st: {type: string}}
            """,
            16,
            "parameters.0.properties.1st",
            "expected a key: letters, digits, '_' and '-', not starting with a digit",
        ),
        (
            """\
            - name: code
              type: list
              items: {type: number, required: true}
            """,
            16,
            "parameters.0.items.required",
            "unknown key 'required'",
        ),
    ],
)
def test_manifest_parameter_problems_are_located(
    tmp_path: Path, parameters: str, line: int, field: str, phrase: str
) -> None:
    problems = manifest_problems(tmp_path, parameters)
    assert len(problems) == 1, problems
    assert (problems[0].line, problems[0].field) == (line, field), problems[0]
    assert phrase in problems[0].message, problems[0]


def test_the_dump_of_a_manifest_without_new_keys_is_unchanged() -> None:
    # The lock records a digest of the manifest's dump: keys a manifest does not
    # use are left out, so an app adopted before parameter types is not "changed".
    dumped = spec(type="integer", default=3).model_dump(mode="json")
    assert dumped == {
        "name": "p",
        "type": "integer",
        "choices": None,
        "required": False,
        "default": 3,
        "secret": False,
        "description": "",
    }


# -- --set ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text", "value"),
    [
        (CENTER, "-8.58,115.17", [-8.58, 115.17]),
        (CENTER, " -8.58 , 115 ", [-8.58, 115]),
        (CENTER, "[-8.58, 115.17]", [-8.58, 115.17]),
        (CENTER, "north", ["north"]),
        ({"type": "list"}, "a, b", ["a", "b"]),
        ({"type": "list", "items": {"type": "integer"}}, "1,2", [1, 2]),
        ({"type": "list", "items": {"type": "boolean"}}, "yes,off", [True, False]),
        (LAYERS, '[{"name": "x"}]', [{"name": "x"}]),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{"a": 1}', {"a": 1}),
        ({"type": "object", "properties": {"a": {}}}, "{not json", "{not json"),
        ({"type": "integer"}, "15", 15),
        ({"type": "integer"}, "1.5", "1.5"),
        ({"type": "number"}, "1e3", 1000.0),
        ({"type": "number"}, "nan", "nan"),
        ({"type": "number"}, "-2", -2),
        ({"type": "enum", "choices": [1, 2]}, "2", 2),
        ({"type": "string"}, "  spaced  ", "  spaced  "),
    ],
)
def test_set_text_is_read_by_the_declared_type(
    fields: dict[str, Any], text: str, value: Any
) -> None:
    parsed = parse_text(spec(**fields), text)
    assert parsed == value
    assert type(parsed) is type(value)


# -- one check, three sources ---------------------------------------------------------------


def typed_catalog(tmp_path: Path, *, profile_value: str | None, default: str) -> Any:
    """A catalogue whose app 'alpha' has map_center (``default``), and the profile's value."""
    catalog = make_catalog(tmp_path, {"alpha": ()})
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "templates:\n",
            "  - name: map_center\n    type: list\n    items: {type: number}\n"
            f"    min_items: 2\n    max_items: 2\n    default: {default}\n"
            "    description: Where the map opens.\ntemplates:\n",
        ),
        encoding="utf-8",
    )
    catalog.write(
        "templates/page/index.html.j2",
        '<h1>{{ params.greeting | e }}</h1>\n<p class="region">{{ region.title | e }}</p>\n'
        '<p data-center="{{ params.map_center | tojson | e }}"></p>\n',
    )
    if profile_value is not None:
        profile = catalog.region_file.read_text(encoding="utf-8")
        catalog.region_file.write_text(
            profile.replace(
                "    api_token: env:TESTLAND_TOKEN\n",
                f"    api_token: env:TESTLAND_TOKEN\n    map_center: {profile_value}\n",
            ),
            encoding="utf-8",
        )
    return catalog


def test_the_same_check_decides_for_default_profile_and_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTLAND_TOKEN", "token")
    wrong = "[-8.58, north]"
    expected = "map_center[1] must be a number (got text) (map_center must be a list of 2 numbers)"

    # A default: the manifest does not load.
    bad_default = typed_catalog(tmp_path / "d", profile_value=None, default=wrong)
    catalog = load_catalog(bad_default.root)
    assert "alpha" not in catalog.apps
    messages = [p for p in catalog.problems if p.field == "parameters.2.default"]
    assert [p.message for p in messages] == [expected]

    # A profile value: validate locates it at the item.
    bad_profile = typed_catalog(tmp_path / "p", profile_value=wrong, default="[1, 2]")
    report = validate(catalog_root=bad_profile.root)
    [problem] = [p for p in report.problems if p.severity.value == "error"]
    assert problem.field == "apps.alpha.map_center.1"
    assert problem.message == f"parameter 'map_center' of 'alpha': {expected}"
    line = bad_profile.region_file.read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert line[problem.column - 1 :].startswith("north]"), line

    # A --set value: the same words, and where it came from.
    good = typed_catalog(tmp_path / "s", profile_value=None, default="[1, 2]")
    loaded = load_catalog(good.root)
    region = load_file(good.region_file)[0]
    assert region is not None
    with pytest.raises(InvalidInputError) as caught:
        resolve_values(
            app=loaded.app("alpha"),
            region=region.model,
            region_dir=good.region_file.parent,
            overrides=parse_set_options(["alpha.map_center=-8.58,north"])["alpha"],
        )
    assert str(caught.value.message) == f"--set alpha.map_center: {expected}"
    assert "takes a list of 2 numbers; with --set, as items separated by commas" in str(
        caught.value.hint
    )


# -- patterns ------------------------------------------------------------------------------

SAFE_PATTERNS = [
    r"^#[0-9a-fA-F]{6}$",
    r"^[A-Z]{1,3}$",
    r"ab|cd",
    r"^(foo|bar)+$",
    r"\bword\b",
    r"^\d{2}(\.\d{2})?$",
    r"x*y+z?",
    r"^a.c$",
    r"[^abc]+",
    r"^$",
    r"(?:ab)*?c",
    r"^\w+@\w+\.\w+$",
    r"\S+\s\S+",
    r"\Aab\Z",
    r"a$",
    r"[\d-]{2,}",
    r"^[a-z][a-z0-9-]{1,39}$",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
]
SAMPLES = [
    "",
    "#0B6E4F",
    "#0b6e4",
    "ABC",
    "ABCD",
    "foobarfoo",
    "a word here",
    "sword",
    "51.03",
    "51.",
    "user@x.id",
    "ab\n",
    "ab",
    "xyyz",
    "abc",
    "12-34",
    "badung-1",
    "09:00",
    "24:00",
    "a\nc",
    "zzz",
    "xc",
    "ababc",
]


@pytest.mark.parametrize("pattern", SAFE_PATTERNS)
def test_a_pattern_matches_as_python_would(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    for text in SAMPLES:
        assert compiled.search(text) == bool(re.search(pattern, text)), (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        (r"^(a+)+$", False),
        (r"^(a|a)*$", False),
        (r"^(a|aa)+$", False),
        ("a?" * 40 + "a" * 40, True),
        (r"\d*\d*\d*\d*\d*x", False),
        (r"(.*a){12}", True),
    ],
)
def test_a_backtracking_pattern_is_matched_without_backtracking(pattern: str, found: bool) -> None:
    # A backtracking matcher takes exponential (or high polynomial) time on
    # these values: the first four would not finish within this test run.
    compiled = compile_pattern(pattern)
    assert compiled.search("a" * 40 + "!") is found
    assert compiled.search("1" * MAX_MATCHED_LENGTH) is False


@pytest.mark.parametrize(
    ("pattern", "phrase"),
    [
        (r"(a)\1", "a back-reference"),
        (r"(?=a)b", "a look-ahead or look-behind"),
        (r"(?<!a)b", "a look-ahead or look-behind"),
        (r"(?(1)a|b)", "not a valid regular expression"),
        (r"(a)(?(1)a|b)", "a conditional group"),
        (r"(?>ab)", "an atomic group"),
        (r"a++", "a possessive quantifier"),
        (r"(?i)abc", "inline flags"),
        (r"(?i:a)bc", "inline flags"),
        ("(", "not a valid regular expression"),
        ("a" * (MAX_PATTERN_LENGTH + 1), f"at most {MAX_PATTERN_LENGTH} characters"),
        (r"(a{0,50}){0,50}", "the pattern is too large"),
    ],
)
def test_a_pattern_beyond_an_automaton_is_refused(pattern: str, phrase: str) -> None:
    with pytest.raises(PatternError, match=re.escape(phrase)):
        compile_pattern(pattern)


def test_a_value_too_long_for_its_pattern_is_a_problem() -> None:
    parameter = spec(type="string", pattern="^a+$")
    found = problem_of(parameter, "a" * (MAX_MATCHED_LENGTH + 1))
    assert found is not None
    assert f"at most {MAX_MATCHED_LENGTH} characters" in found[1]


# -- JSON Schema ----------------------------------------------------------------------------


def test_json_schema_of_a_type() -> None:
    assert json_schema_of(spec(**CENTER)) == {
        "type": "array",
        "items": {"type": "number", "minimum": -180, "maximum": 180},
        "minItems": 2,
        "maxItems": 2,
    }
    layers = json_schema_of(spec(**LAYERS))
    assert layers["items"]["required"] == ["name"]
    assert layers["items"]["additionalProperties"] is False
    url = json_schema_of(spec(type="url", pattern="badungkab"))
    assert url["pattern"].startswith("^https?://")
    assert url["allOf"] == [{"pattern": "badungkab"}]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli_app, list(args), env=env)


def test_region_schema_types_each_apps_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMARTSHARE_CATALOG", raising=False)
    result = invoke("schema", "region")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    apps = schema["properties"]["apps"]
    assert apps["additionalProperties"] is False
    laksa = apps["properties"]["laksa"]["oneOf"][1]
    assert laksa["properties"]["map_center"]["items"]["type"] == "number"
    assert laksa["properties"]["smtp_password"]["pattern"].startswith("^(env:")
    assert laksa["required"] == ["support_email"]
    assert laksa["properties"]["patches"]["items"] == {"type": "string"}
    assert schema == json.loads((REPO_ROOT / "schema" / "region.json").read_text("utf-8"))

    # An editor (check-jsonschema here) refuses what validate refuses.
    path = tmp_path / "region.json"
    path.write_text(result.stdout, encoding="utf-8")
    wrong = tmp_path / "badung.yaml"
    wrong.write_text(
        BADUNG.read_text(encoding="utf-8").replace(
            "map_center: [-8.58, 115.18]   #", "map_center: north   #", 1
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(path), str(wrong)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "map_center" in done.stdout + done.stderr

    # Another catalogue: its own apps.
    other = make_catalog(tmp_path, {"alpha": ()})
    result = invoke("schema", "region", "--catalog", str(other.root))
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["properties"]["apps"]["properties"]) == ["alpha"]


# -- the bundled LAKSA, adopted from the demo's forge ------------------------------------------


@pytest.fixture
def laksa_forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    forge = tmp_path / "forge"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "demo" / "make_forge.py"), str(forge), "laksa"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"source_rewrites": {FORGE_PREFIX: f"{forge.as_uri()}/diskominfo/"}}),
        encoding="utf-8",
    )
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(config))
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SMARTSHARE_CATALOG", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    return tmp_path / "W"


def adopt_laksa(workspace: Path, *sets: str) -> Result:
    options = [item for value in sets for item in ("--set", value)]
    return invoke(
        "adopt",
        "laksa",
        "--region",
        str(BADUNG),
        "--workspace",
        str(workspace),
        "--no-build",
        *options,
    )


def test_set_map_center_renders_numbers(laksa_forge: Path) -> None:
    result = adopt_laksa(laksa_forge, "laksa.map_center=-8.58,115.17")
    assert result.exit_code == 0, result.output
    page = (laksa_forge / "apps/laksa/src/www/index.html").read_text(encoding="utf-8")
    assert 'data-center="[-8.58, 115.17]"' in page
    assert "mlat=-8.58&amp;mlon=115.17" in page
    env = (laksa_forge / "apps/laksa/src/config/site.env").read_text(encoding="utf-8")
    assert "LAKSA_MAP_CENTER=-8.58,115.17\n" in env
    lock = json.loads((laksa_forge / "smartshare.lock").read_text(encoding="utf-8"))
    assert lock["apps"]["laksa"]["values"]["map_center"] == [-8.58, 115.17]

    # The profile's value (numbers in YAML) when --set gives none.
    result = adopt_laksa(laksa_forge)
    assert result.exit_code == 0, result.output
    page = (laksa_forge / "apps/laksa/src/www/index.html").read_text(encoding="utf-8")
    assert 'data-center="[-8.58, 115.18]"' in page


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("north", "map_center[0] must be a number from -180 to 180 (got text)"),
        ("-8.58", "map_center must be a list of 2 numbers (got 1 item)"),
        ("[1, 2, 3]", "map_center must be a list of 2 numbers (got 3 items)"),
        ('{"lat": 1}', "map_center[0] must be a number from -180 to 180 (got text)"),
    ],
)
def test_set_map_center_of_the_wrong_type_exits_1(
    laksa_forge: Path, value: str, phrase: str
) -> None:
    result = adopt_laksa(laksa_forge, f"laksa.map_center={value}")
    assert result.exit_code == 1, result.output
    assert f"--set laksa.map_center: {phrase}" in result.stderr
    assert "laksa.map_center takes a list of 2 numbers" in result.stderr
    assert not (laksa_forge / "smartshare.lock").exists()


def test_a_profile_value_of_the_wrong_type_is_located(laksa_forge: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile" / "badung.yaml"
    # The files the profile names (its logo, its patches) come along.
    for folder in ("assets", "patches"):
        shutil.copytree(BADUNG.parent / folder, profile.parent / folder)
    text = BADUNG.read_text(encoding="utf-8").replace(
        "map_center: [-8.58, 115.18]   #", "map_center: [-8.58, 200]   #", 1
    )
    profile.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "[-8.58, 200]" in row)
    result = invoke(
        "adopt", "laksa", "--region", str(profile), "--workspace", str(laksa_forge), "--no-build"
    )
    assert result.exit_code == 1, result.output
    column = text.splitlines()[line - 1].index("200") + 1
    assert (
        f"{profile}:{line}:{column}: error: apps.laksa.map_center.1: parameter 'map_center' of "
        "'laksa': map_center[1] must be a number from -180 to 180 (got a larger one) "
        "(map_center must be a list of 2 numbers)\n"
    ) in result.stderr
    assert not (laksa_forge / "smartshare.lock").exists()


def test_bundled_manifests_use_the_types() -> None:
    catalog = load_catalog(REPO_ROOT)
    laksa: AppManifest = catalog.app("laksa")
    center = laksa.parameter("map_center")
    assert center is not None and center.default == [-6.1783, 106.6319]
    colour = laksa.parameter("map_marker_color")
    assert colour is not None and colour.pattern is not None
    upload = catalog.app("perizinan-online").parameter("max_upload_mb")
    assert upload is not None and (upload.minimum, upload.maximum) == (1, 50)


def test_set_a_json_list_of_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    layers = yaml.safe_dump([LAYERS | {"default": [{"name": "jalan"}]}], sort_keys=False)
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "templates:\n", textwrap.indent(layers, "  ") + "templates:\n"
        ),
        encoding="utf-8",
    )
    catalog.write(
        "templates/page/index.html.j2",
        "<h1>{{ params.greeting | e }}</h1>\n"
        "{% for layer in params.layers %}<li>{{ layer.name | e }} {{ layer.opacity * 100 }}</li>"
        "{% endfor %}\n",
    )
    monkeypatch.setenv("TESTLAND_TOKEN", "token")
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(tmp_path / "no-settings.yaml"))
    workspace = tmp_path / "W"

    def adopt(value: str) -> Result:
        return invoke(
            "adopt", "alpha", "--catalog", str(catalog.root), "--region", str(catalog.region_file),
            "--workspace", str(workspace), "--no-build", "--set", f"alpha.layers={value}",
        )  # fmt: skip

    result = adopt('[{"name": "jalan", "opacity": 0.5}, {"name": "sungai", "opacity": 1}]')
    assert result.exit_code == 0, result.output
    page = (workspace / "apps/alpha/src/www/index.html").read_text(encoding="utf-8")
    assert "<li>jalan 50.0</li><li>sungai 100</li>" in page

    result = adopt('[{"name": "jalan", "opacity": "half"}]')
    assert result.exit_code == 1, result.output
    assert (
        "--set alpha.layers: layers[0].opacity must be a number from 0 to 1 (got text) "
        "(layers must be a list of objects)"
    ) in result.stderr
    result = adopt('[{"name": "jalan"')
    assert result.exit_code == 1, result.output
    assert (
        "--set alpha.layers: layers must be a list of objects (got text); the value is not "
        "valid JSON (Expecting ',' delimiter: line 1 column 18 (char 17))"
    ) in result.stderr
