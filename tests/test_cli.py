"""The ``smartshare`` command line: list, show, validate, schema, --help, --version.

Most tests run the typer app in-process with ``CliRunner``; a few start real
processes (``python -m smartshare``, the ``smartshare`` console script,
``check-jsonschema``).  Expected values come from the bundled manifests, read
here with plain PyYAML, not from smartshare itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from smartshare import __version__
from smartshare.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = REPO_ROOT / "manifests"
APP_FILES = sorted((MANIFESTS / "apps").glob("*.yaml"))
REGION_FILES = sorted((MANIFESTS / "regions").glob("*.yaml"))
BROKEN = REPO_ROOT / "tests" / "data" / "broken"
BIN = Path(sys.executable).parent
LIST_KEYS = {"name", "title", "category", "owner", "version", "maturity"}
PROBLEM_KEYS = {
    "file": str,
    "line": int,
    "column": int,
    "severity": str,
    "field": str,
    "message": str,
}
GITHUB_LINE = re.compile(r"^::(error|warning) file=[^,]+,line=\d+,col=\d+::\S.*$")
HEAVY_MODULES = ("docker", "git", "jinja2")


def _bundled_apps() -> dict[str, dict[str, Any]]:
    apps = {}
    for path in APP_FILES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        apps[data["name"]] = data
    return apps


BUNDLED = _bundled_apps()


@pytest.fixture(autouse=True)
def _bundled_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the bundled catalogue unless it passes --catalog."""
    monkeypatch.delenv("SMARTSHARE_CATALOG", raising=False)
    monkeypatch.chdir(REPO_ROOT)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def invoke_json(*args: str, exit_code: int = 0) -> Any:
    result = invoke(*args)
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTSHARE_CATALOG"}
    env.update(NO_COLOR="1", COLUMNS="120", PYTHONDONTWRITEBYTECODE="1")
    return env


def _tool(name: str) -> str:
    candidate = BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    assert found is not None, f"{name} is not installed next to {sys.executable} nor on PATH"
    return found


# -- --help, --version, exit codes ------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"smartshare {__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_commands(flag: str) -> None:
    result = invoke(flag)
    assert result.exit_code == 0
    for command in ("list", "show", "validate", "schema"):
        assert re.search(rf"^\W*{command}\b", result.stdout, re.MULTILINE), command
    assert "--version" in result.stdout


def test_no_arguments_is_usage() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "Usage" in result.output


def test_unknown_command_is_usage() -> None:
    result = invoke("lst")
    assert result.exit_code == 2
    assert "lst" in result.stderr
    assert result.stdout == ""


COMMANDS = (
    *("list", "show", "validate", "schema", "plan", "adopt", "status"),
    *("history", "rollback", "report"),
)
TYPE_LABELS = re.compile(r"<(bool|path|int|text|list\[str\]|str)[^>]*>|\[x>=|\{[A-Z]+\}")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_naturally_in_80_columns(command: str) -> None:
    result = invoke(command, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert not [line for line in text.splitlines() if len(line) > 80], text
    assert not TYPE_LABELS.search(text), f"type labels in the help of {command}:\n{text}"
    assert "Examples:" in text
    assert re.search(rf"^\s+smartshare {command}\b", text, re.MULTILINE), text


def test_help_shows_flags_as_flags_and_options_with_their_value() -> None:
    text = invoke("adopt", "--help", env={"COLUMNS": "80"}).stdout
    assert re.search(r"^\s+--no-build\s+Fetch and render only", text, re.MULTILINE), text
    assert re.search(r"^\s+-r, --region FILE\s+Region profile", text, re.MULTILINE), text
    assert re.search(r"^\s+--set APP\.PARAM=VALUE\b", text, re.MULTILINE), text
    assert re.search(r"^\s+-j, --jobs N\b", text, re.MULTILINE), text
    assert re.search(r"^\s+-f, --format table\|json\b", text, re.MULTILINE), text
    assert "Usage: smartshare adopt [OPTIONS] [APP[@VERSION]]..." in text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_examples_are_valid_command_lines(command: str) -> None:
    """Each example parses: its options exist and take what it gives them."""
    import shlex

    import typer.main
    from typer.core import TyperGroup

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    text = invoke(command, "--help", env={"COLUMNS": "80"}).stdout
    examples = re.findall(rf"^\s+smartshare {command}\b(.*)$", text, re.MULTILINE)
    assert examples
    for example in examples:
        words = shlex.split(example.partition(">")[0])
        group.commands[command].make_context(command, words)  # raises on a wrong option


def test_jobs_must_be_positive() -> None:
    result = invoke("adopt", "laksa", "-r", "manifests/regions/badung.yaml", "--jobs", "0")
    assert result.exit_code == 2
    assert "--jobs" in result.stderr
    assert "1 or more" in result.stderr


# -- exit codes, as README's table says -----------------------------------------------------

BADUNG = "manifests/regions/badung.yaml"


@pytest.fixture
def _no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.usefixtures("_no_settings")
@pytest.mark.parametrize("command", ["plan", "adopt"])
@pytest.mark.parametrize(
    ("region", "says"),
    [
        ("no-such-region.yaml", "does not exist"),
        ("manifests/regions", "is not a file"),
    ],
)
def test_a_missing_region_file_is_usage(
    tmp_path: Path, command: str, region: str, says: str
) -> None:
    result = invoke(command, "laksa", "--region", region, "--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2, result.output
    assert region in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("_no_settings")
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_region_file_is_usage(tmp_path: Path) -> None:
    region = tmp_path / "badung.yaml"
    shutil.copy(MANIFESTS / "regions" / "badung.yaml", region)
    region.chmod(0)
    result = invoke("plan", "laksa", "--region", str(region), "--workspace", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "cannot be read" in result.stderr


@pytest.mark.parametrize("exists", [True, False])
def test_status_without_a_lock_is_usage(tmp_path: Path, exists: bool) -> None:
    workspace = tmp_path / "ws"
    if exists:
        workspace.mkdir()
    result = invoke("status", "--workspace", str(workspace))
    assert result.exit_code == 2, result.output
    assert "no adopted apps" in result.stderr
    assert "hint:" in result.stderr


@pytest.mark.parametrize("command", [["list"], ["show", "laksa"], ["validate"]])
def test_a_catalogue_folder_without_manifests_is_usage(tmp_path: Path, command: list[str]) -> None:
    for catalog in (tmp_path, tmp_path / "missing"):
        result = invoke(*command, "--catalog", str(catalog))
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert f"error: no catalogue at {catalog}: it has no manifests/ folder" in result.stderr
        assert "hint: pass --catalog DIR" in result.stderr


@pytest.mark.usefixtures("_no_settings")
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["adopt", "-r", BADUNG], "name the apps to adopt"),
        (["adopt", "laksa", "--all", "-r", BADUNG], "not both"),
        (["adopt", "nope", "-r", BADUNG], "no app named 'nope'"),
        (["adopt", "laksa", "-r", BADUNG, "--set", "laksa"], "is not APP.PARAM=VALUE"),
        (["plan", "laksa", "-r", BADUNG, "--set", "laksa.nope=1"], "nope"),
        (["adopt", "laksa", "-r", BADUNG, "--bogus"], "--bogus"),
        (["adopt", "laksa"], "--region"),
        (["show"], "Missing argument"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    result = (
        invoke(*args, "--workspace", str(tmp_path / "ws")) if args[0] != "show" else invoke(*args)
    )
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert not (tmp_path / "ws").exists()


@pytest.mark.usefixtures("_no_settings")
def test_an_invalid_region_profile_is_invalid_input(tmp_path: Path) -> None:
    region = tmp_path / "badung.yaml"
    region.write_text("apiVersion: smartshare/v1\nkind: Region\nname: badung\n")
    result = invoke("plan", "laksa", "--region", str(region), "--workspace", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "is not valid" in result.stderr


# -- list ---------------------------------------------------------------------------------


def test_bundled_catalogue_has_sixteen_apps() -> None:
    assert len(BUNDLED) == 16


def test_list_table_shows_every_app() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "16 app(s)" in result.stdout
    assert [row["Name"] for row in _table(result.stdout, "Name")] == sorted(BUNDLED)
    assert result.stderr == ""


def test_list_json() -> None:
    apps = invoke_json("list", "--format", "json")
    assert isinstance(apps, list)
    assert len(apps) == 16
    assert [a["name"] for a in apps] == sorted(BUNDLED)
    for entry in apps:
        assert entry.keys() >= LIST_KEYS
        manifest = BUNDLED[entry["name"]]
        assert entry["title"] == manifest["title"]
        assert entry["category"] == manifest["category"]
        assert entry["owner"] == manifest["owner"]["name"]
        assert entry["version"] == manifest["version"]
        assert entry["maturity"] == manifest["maturity"]


@pytest.mark.parametrize("option", ["--category", "-c"])
def test_list_filters_by_category(option: str) -> None:
    expected = sorted(n for n, m in BUNDLED.items() if m["category"] == "employment")
    assert expected  # the bundled catalogue has an employment app (lowongan-kerja)
    apps = invoke_json("list", option, "employment", "--format", "json")
    assert [a["name"] for a in apps] == expected
    assert {a["category"] for a in apps} == {"employment"}


def test_list_unknown_category_is_empty() -> None:
    assert invoke_json("list", "--category", "no-such-category", "--format", "json") == []


def _expected_search(needle: str) -> list[str]:
    def texts(m: dict[str, Any]) -> list[str]:
        return [
            m["name"],
            m["title"],
            *m.get("tags", []),
            *m["summary"].values(),
            *(m.get("description") or {}).values(),
        ]

    return sorted(
        n for n, m in BUNDLED.items() if any(needle.casefold() in t.casefold() for t in texts(m))
    )


@pytest.mark.parametrize("needle", ["kepegawaian", "KEPEGAWAIAN", "Kepegawaian"])
def test_list_search_indonesian_summary(needle: str) -> None:
    assert "kepegawaian" in BUNDLED["sikda"]["summary"]["id"].casefold()
    apps = invoke_json("list", "--search", needle, "--format", "json")
    names = [a["name"] for a in apps]
    assert "sikda" in names
    assert names == _expected_search(needle)


def test_list_search_summary_only_word() -> None:
    # "pemadam" (fire brigade) appears in the Indonesian summary of layanan-112, not in its tags.
    manifest = BUNDLED["layanan-112"]
    assert "pemadam" in manifest["summary"]["id"].casefold()
    assert not any("pemadam" in t for t in manifest["tags"])
    names = [a["name"] for a in invoke_json("list", "-s", "PEMADAM", "--format", "json")]
    assert "layanan-112" in names
    assert names == _expected_search("pemadam")


@pytest.mark.parametrize("needle", ["pengaduan", "PENGADUAN", "staff-records"])
def test_list_search_tags(needle: str) -> None:
    apps = invoke_json("list", "--search", needle, "--format", "json")
    names = [a["name"] for a in apps]
    assert names == _expected_search(needle)
    tagged = [n for n, m in BUNDLED.items() if needle.casefold() in map(str.casefold, m["tags"])]
    assert tagged
    assert set(tagged) <= set(names)


def test_list_search_without_match() -> None:
    result = invoke("list", "--search", "zzz-nothing-matches", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_list_search_and_category_combine() -> None:
    apps = invoke_json("list", "-s", "sikda", "-c", "government", "--format", "json")
    assert [a["name"] for a in apps] == sorted(
        n for n in _expected_search("sikda") if BUNDLED[n]["category"] == "government"
    )


def test_list_empty_catalogue_folder(tmp_path: Path) -> None:
    result = invoke("list", "--catalog", str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert str(tmp_path) in result.stderr
    assert "hint:" in result.stderr
    assert "--catalog" in result.stderr


def test_list_catalogue_from_environment(tmp_path: Path) -> None:
    result = invoke("list", env={"SMARTSHARE_CATALOG": str(tmp_path)})
    assert result.exit_code == 2
    assert str(tmp_path) in result.stderr
    assert "hint:" in result.stderr


def test_list_other_catalogue(tmp_path: Path) -> None:
    (tmp_path / "manifests" / "apps").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "templates" / "laksa", tmp_path / "templates" / "laksa")
    shutil.copy(MANIFESTS / "apps" / "laksa.yaml", tmp_path / "manifests" / "apps")
    apps = invoke_json("list", "--catalog", str(tmp_path), "--format", "json")
    assert [a["name"] for a in apps] == ["laksa"]


# -- show ---------------------------------------------------------------------------------


def _table(text: str, first_column: str) -> list[dict[str, str]]:
    """The rows of the table whose header starts with ``first_column``, cells by column.

    Columns start where their header does; detail lines (indented) are not rows.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_column + " "))
    header = lines[start]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = []
    for line in lines[start + 1 :]:
        if not line or not line[0].isalnum():
            if not line:
                break
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def test_show_laksa_text() -> None:
    result = invoke("show", "laksa")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("LAKSA (laksa) 2.4.0, stable")
    assert "Parameters" in out
    assert "Required by: tangerang-live, tangerang-live-room" in out
    parameters = BUNDLED["laksa"]["parameters"]
    assert len(parameters) == 9
    rows = _table(out, "Parameter")
    assert [row["Parameter"] for row in rows] == [p["name"] for p in parameters]
    for row, parameter in zip(rows, parameters, strict=True):
        assert row["Type"] == parameter["type"]
        assert row["Required"] == ("required" if parameter.get("required") else "")
        assert row["Secret"] == ("secret" if parameter.get("secret") else "")
    by_name = {row["Parameter"]: row for row in rows}
    assert by_name["support_email"]["Required"] == "required"
    assert by_name["smtp_password"]["Secret"] == "secret"
    assert '  default: "LAKSA"' in out.splitlines()
    assert "  choices: id | en" in out.splitlines()
    # A parameter's type with its constraints, under its row.
    below_map_center = out.split("\nmap_center ", 1)[1].splitlines()[1:5]
    assert "  takes a list of 2 numbers" in below_map_center
    assert "  each item: a number from -180 to 180" in below_map_center
    assert "  takes a string matching '^#[0-9A-Fa-f]{6}$'" in out.splitlines()
    templates = _table(out, "Template")
    assert [(t["Template"], t["Destination"], t["Target"]) for t in templates] == [
        (t["src"], t["dest"], t.get("target", "image")) for t in BUNDLED["laksa"]["templates"]
    ]


def test_show_laksa_json() -> None:
    data = invoke_json("show", "laksa", "--format", "json")
    assert data["name"] == "laksa"
    assert data["required_by"] == ["tangerang-live", "tangerang-live-room"]
    parameters = {p["name"]: p for p in data["parameters"]}
    assert list(parameters) == [p["name"] for p in BUNDLED["laksa"]["parameters"]]
    assert parameters["support_email"]["required"] is True
    assert parameters["site_title"]["required"] is False
    assert parameters["smtp_password"]["secret"] is True
    assert parameters["smtp_password"]["default"] is None
    assert [name for name, p in parameters.items() if p["secret"]] == ["smtp_password"]
    assert parameters["default_language"]["choices"] == ["id", "en"]
    center = parameters["map_center"]
    assert (center["type"], center["min_items"], center["max_items"]) == ("list", 2, 2)
    assert center["items"] == {"type": "number", "minimum": -180, "maximum": 180}
    assert center["accepts"] == "a list of 2 numbers"
    assert center["default"] == [-6.1783, 106.6319]
    assert parameters["map_marker_color"]["pattern"] == "^#[0-9A-Fa-f]{6}$"
    # Constraints a parameter does not use are left out.
    assert "minimum" not in parameters["site_title"]
    assert data["manifest_file"].endswith("laksa.yaml")


def test_show_app_nobody_requires() -> None:
    data = invoke_json("show", "sikda", "--format", "json")
    expected = sorted(n for n, m in BUNDLED.items() if "sikda" in (m.get("requires") or []))
    assert data["required_by"] == expected


def test_show_unknown_app_is_usage() -> None:
    result = invoke("show", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no app named 'nope'" in result.stderr
    assert "hint:" in result.stderr


def test_show_near_miss_suggests() -> None:
    result = invoke("show", "laksaa")
    assert result.exit_code == 2
    assert "did you mean 'laksa'?" in result.stderr


# -- validate -----------------------------------------------------------------------------


def test_validate_bundled_catalogue() -> None:
    result = invoke("validate")
    assert result.exit_code == 0, result.output
    older = list((MANIFESTS / "versions").glob("*/*.yaml"))  # LAKSA 2.3.0
    files = len(APP_FILES) + len(REGION_FILES) + len(older)
    assert older and f"{files} file(s) checked: valid, 0 error(s)" in result.stderr


def test_validate_bundled_catalogue_json() -> None:
    data = invoke_json("validate", "--format", "json")
    assert data["valid"] is True
    assert [p for p in data["problems"] if p["severity"] == "error"] == []


def test_validate_one_good_file() -> None:
    result = invoke("validate", "manifests/apps/laksa.yaml")
    assert result.exit_code == 0, result.output
    assert "1 file(s) checked: valid" in result.stderr


def _check_problems(problems: list[dict[str, Any]]) -> None:
    assert problems
    for problem in problems:
        assert set(problem) == set(PROBLEM_KEYS), problem
        for key, kind in PROBLEM_KEYS.items():
            assert isinstance(problem[key], kind), (key, problem)
        assert problem["severity"] in ("error", "warning")
        assert problem["line"] >= 0
        assert problem["column"] >= 0
        assert problem["message"]


def test_validate_broken_files_json() -> None:
    result = invoke("validate", "--format", "json", str(BROKEN))
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["valid"] is False
    _check_problems(data["problems"])
    assert any(p["severity"] == "error" for p in data["problems"])


@pytest.fixture
def wrong_manifest(tmp_path: Path) -> Path:
    """laksa.yaml with one unknown key ('titel') on its own line."""
    lines = (MANIFESTS / "apps" / "laksa.yaml").read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("title:"))
    lines.insert(index + 1, "titel: LAKSA")
    path = tmp_path / "laksa.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validate_unknown_key_json(wrong_manifest: Path) -> None:
    result = invoke("validate", "--format", "json", str(wrong_manifest))
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["valid"] is False
    _check_problems(data["problems"])
    line = 1 + wrong_manifest.read_text(encoding="utf-8").splitlines().index("titel: LAKSA")
    [problem] = [p for p in data["problems"] if p["severity"] == "error"]
    assert problem["file"].endswith("laksa.yaml")
    assert (problem["line"], problem["column"]) == (line, 1)
    assert problem["field"] == "titel"
    assert "unknown key 'titel'" in problem["message"]
    assert "did you mean 'title'" in problem["message"]


def test_validate_text_format(wrong_manifest: Path) -> None:
    result = invoke("validate", str(wrong_manifest))
    assert result.exit_code == 1
    line = 1 + wrong_manifest.read_text(encoding="utf-8").splitlines().index("titel: LAKSA")
    assert re.search(rf"laksa\.yaml:{line}:1: error: titel: unknown key 'titel'", result.stdout)
    assert "1 file(s) checked: invalid, 1 error(s)" in result.stderr


def test_validate_github_format(wrong_manifest: Path) -> None:
    result = invoke("validate", "--format", "github", str(wrong_manifest))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        assert GITHUB_LINE.match(line), line
    number = 1 + wrong_manifest.read_text(encoding="utf-8").splitlines().index("titel: LAKSA")
    assert any(
        line.startswith(f"::error file={result_file(line)},line={number},col=1::titel: ")
        for line in lines
    )


def result_file(line: str) -> str:
    return line.split("file=", 1)[1].split(",", 1)[0]


def test_validate_broken_files_github() -> None:
    result = invoke("validate", "--format", "github", str(BROKEN))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("::error ") for line in lines)
    for line in lines:
        assert GITHUB_LINE.match(line), line


def test_validate_missing_path_is_usage() -> None:
    result = invoke("validate", "nonexistent.yaml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "nonexistent.yaml" in result.stderr


# -- schema -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "required"), [("app", "parameters"), ("region", "branding")])
def test_schema_prints_json(kind: str, required: str) -> None:
    schema = invoke_json("schema", kind)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert required in schema["properties"]
    assert schema["properties"]["kind"]["const"] == kind.title()
    assert "kind" in schema["required"]


def test_schema_unknown_kind_is_usage() -> None:
    result = invoke("schema", "regions")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no schema for 'regions': the kinds are app, region, report",
        "hint: smartshare schema KIND, KIND being one of app, region, report",
    ]


def test_an_unknown_choice_names_the_choices_without_pydantic_words() -> None:
    result = invoke("list", "--format", "xml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--format' / '-f': 'xml' is not one of 'table', 'json'."
    )


def _write_schema(kind: str, folder: Path) -> Path:
    result = invoke("schema", kind)
    assert result.exit_code == 0, result.output
    path = folder / f"{kind}.json"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def _check_jsonschema(schema: Path, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_subprocess_env(),
    )


@pytest.mark.parametrize(("kind", "files"), [("app", APP_FILES), ("region", REGION_FILES)])
def test_schema_accepts_bundled_files(tmp_path: Path, kind: str, files: list[Path]) -> None:
    assert files
    done = _check_jsonschema(_write_schema(kind, tmp_path), files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_rejects_unknown_key(tmp_path: Path, wrong_manifest: Path) -> None:
    done = _check_jsonschema(_write_schema("app", tmp_path), [wrong_manifest])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "titel" in done.stdout + done.stderr


def test_schema_rejects_unknown_region_key(tmp_path: Path) -> None:
    text = (MANIFESTS / "regions" / "badung.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "badung.yaml"
    wrong.write_text(
        text.replace("\nprovince:", "\nprovinsi: Bali\nprovince:", 1), encoding="utf-8"
    )
    done = _check_jsonschema(_write_schema("region", tmp_path), [wrong])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "provinsi" in done.stdout + done.stderr


# -- real processes -----------------------------------------------------------------------


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
        env=_subprocess_env(),
    )


def test_python_m_smartshare_list_json() -> None:
    done = _run([sys.executable, "-m", "smartshare", "list", "--format", "json"])
    assert done.returncode == 0, done.stderr
    assert [a["name"] for a in json.loads(done.stdout)] == sorted(BUNDLED)


def test_console_script_help() -> None:
    done = _run([_tool("smartshare"), "--help"])
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert "validate" in done.stdout


def test_console_script_error_exit_code(tmp_path: Path) -> None:
    done = _run([_tool("smartshare"), "show", "laksaa"])
    assert done.returncode == 2
    assert done.stdout == ""
    assert "did you mean 'laksa'?" in done.stderr
    assert "Traceback" not in done.stderr


LAZY_PROBE = """
import contextlib, io, json, sys
argv, heavy = json.loads(sys.argv[1]), sys.argv[2]
sys.argv = ["smartshare", *argv]
from smartshare.cli import app
code = None
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        app(prog_name="smartshare")
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in json.loads(heavy) if m in sys.modules]}))
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["list"], ["list", "--format", "json"], ["show", "laksa"]]
)
def test_commands_do_not_import_heavy_modules(argv: list[str]) -> None:
    done = _run([sys.executable, "-c", LAZY_PROBE, json.dumps(argv), json.dumps(HEAVY_MODULES)])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (None, 0)
    assert report["loaded"] == [], (
        f"'smartshare {' '.join(argv)}' imported {report['loaded']}; "
        "see python -X importtime for the chain"
    )
