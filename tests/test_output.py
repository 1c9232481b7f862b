"""What smartshare shows: untrusted text escaped for each sink, and text laid out for 80 columns.

The sinks: the terminal (controls made visible, Rich markup never
interpreted), GitHub workflow commands (``validate --format github``) and
JSON.  Hostile strings come in through a manifest (title, summary), a file
name, an error message, a build log line and a progress line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console as RichConsole
from typer.testing import CliRunner, Result

from smartshare.catalog.diagnostics import Problem, Severity
from smartshare.cli import app
from smartshare.console import (
    Console,
    Row,
    fold,
    github_data,
    github_property,
    json_text,
    one_line,
    table_lines,
    terminal_text,
)

from catalogs import CatalogFixture

REPO_ROOT = Path(__file__).resolve().parent.parent

ESC_CLEAR = "\x1b[2J"
C1_CSI = "\x9b31m"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"
MARKUP = "[bold]loud[/bold] [/usr/lib]"
HOSTILE = f"{ESC_CLEAR}{C1_CSI}{OSC8}\x07\x08\r{MARKUP}\u2028\x85\u202eevil"
# What a terminal would act on: C0 controls but newline and tab, DEL, C1 controls.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


def invoke(*args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


def assert_terminal_safe(text: str) -> None:
    found = RAW_CONTROL.search(text)
    assert found is None, f"raw control {found.group()!r} in output:\n{text!r}"


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTSHARE_CATALOG", raising=False)
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(tmp_path / "no-config.yaml"))


def hostile_catalogue(tmp_path: Path, **changes: Any) -> Path:
    """The bundled catalogue's LAKSA alone, with ``changes`` made to its manifest."""
    root = tmp_path / "hostile"
    (root / "manifests" / "apps").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "templates" / "laksa", root / "templates" / "laksa")
    manifest = yaml.safe_load((REPO_ROOT / "manifests/apps/laksa.yaml").read_text("utf-8"))
    manifest.update(changes)
    (root / "manifests/apps/laksa.yaml").write_text(
        yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8"
    )
    return root


# -- the terminal ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["list"], ["show", "laksa"]])
def test_manifest_text_reaches_the_terminal_escaped(tmp_path: Path, command: list[str]) -> None:
    root = hostile_catalogue(
        tmp_path, title=f"LAKSA{HOSTILE}", summary={"en": HOSTILE, "id": "Aspirasi"}
    )
    result = invoke(*command, "--catalog", str(root))
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.stdout + result.stderr)
    unfolded = "".join(result.stdout.split())
    assert "\\x1b[2J" in unfolded
    assert "\\x9b31m" in unfolded
    # Shown as written, not read as Rich markup (which would drop it or fail).
    assert "[bold]loud[/bold]" in result.stdout
    assert "[/usr/lib]" in result.stdout


def test_a_newline_in_a_title_cannot_forge_a_line_of_show(tmp_path: Path) -> None:
    root = hostile_catalogue(tmp_path, title="LAKSA\nLicence:     MIT (forged)")
    result = invoke("show", "laksa", "--catalog", str(root))
    assert result.exit_code == 0, result.output
    licence = [line for line in result.stdout.splitlines() if line.startswith("Licence:")]
    assert len(licence) == 1
    assert "forged" not in licence[0]
    assert "LAKSA\\x0aLicence:" in "".join(result.stdout.split())


def test_errors_hints_and_problems_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from smartshare.errors import InvalidInputError

    problem = Problem(f"bad{HOSTILE}.yaml", 3, 1, Severity.ERROR, "title", f"x\n{HOSTILE}")
    error = InvalidInputError(
        f"building x failed: {HOSTILE}\nhint: forged", hint=f"[red]{HOSTILE}", problems=[problem]
    )
    Console(width=80).error(error)
    err = capsys.readouterr().err
    assert_terminal_safe(err)
    assert MARKUP in err
    assert "[red]" in err
    # A message's own lines are indented: no line of it passes for smartshare's hint.
    assert [line for line in err.splitlines() if line.startswith("hint:")] == [
        f"hint: {terminal_text(f'[red]{HOSTILE}')}"
    ]


def test_a_build_log_line_is_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    """``RUN echo '[/usr/lib]'`` under -v used to end the build with a MarkupError."""
    from smartshare.adoption.events import Event, Phase
    from smartshare.cli.cmd_adopt import ProgressView

    console = Console(width=80)
    console.verbose = True
    view = ProgressView(console)
    with view.board:
        view(Event(app="laksa", phase=Phase.BUILDING, message="[/usr/lib]", log=True))
        view(Event(app="laksa", phase=Phase.BUILDING, message=f"{HOSTILE}", log=True))
    err = capsys.readouterr().err
    assert "laksa: [/usr/lib]" in err
    assert MARKUP in err
    assert_terminal_safe(err)


def _live_frames(states: dict[str, str], *, interrupt: bool = False) -> str:
    """What a progress board writes to a terminal while showing ``states`` (key: state)."""
    import io
    import time

    stream = io.StringIO()
    console = Console(width=80)
    console.err = RichConsole(file=stream, force_terminal=True, width=200, color_system=None)
    board = console.progress()
    last = list(states.values())[-1]
    with contextlib.suppress(KeyboardInterrupt), board:
        for key, state in states.items():
            board.show(key, state)
        deadline = time.monotonic() + 10
        while (
            terminal_text(one_line(last)) not in stream.getvalue() and time.monotonic() < deadline
        ):
            time.sleep(0.05)  # the live display redraws a few times a second
        if interrupt:
            raise KeyboardInterrupt
    return stream.getvalue()


# What Rich itself writes to redraw a live display: cursor and line erasing.
RICH_REDRAW = re.compile(r"\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A|\r")


def test_progress_lines_are_escaped() -> None:
    written = _live_frames({"laksa": f"building {HOSTILE}", f"x{ESC_CLEAR}": "[bold]waiting"})
    assert "building \\x1b[2J" in written
    assert "[bold]waiting" in written
    assert_terminal_safe(RICH_REDRAW.sub("", written))


def test_progress_lines_are_cleared_when_the_board_stops_also_on_ctrl_c() -> None:
    """The summary that follows says how each app ended; no spinner is left behind."""
    written = _live_frames({"laksa": "building laksa"}, interrupt=True)
    after = written[written.rindex("building laksa") :]
    erased = after.rindex("\x1b[2K")  # erase line, after the last frame
    assert not RICH_REDRAW.sub("", after[erased:]).strip()


def test_terminal_text_shows_every_control() -> None:
    assert terminal_text("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert terminal_text("\x9b\x85\x7f\x00") == "\\x9b\\x85\\x7f\\x00"
    assert terminal_text("\u202e\u2028\ud800") == "\\u202e\\u2028\\ud800"
    assert terminal_text("tab\tand\nnewline") == "tab\tand\nnewline"
    assert terminal_text("one\nline", keep="") == "one\\x0aline"
    assert terminal_text("Kabupaten Badung — ✓ 日本") == "Kabupaten Badung — ✓ 日本"


@pytest.mark.parametrize("output", ["text", "github", "json"])
def test_a_file_name_that_is_not_utf8_is_shown_not_a_crash(tmp_path: Path, output: str) -> None:
    """Python decodes such a name with lone surrogates, which no stream can encode."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    name = os.fsdecode(b"laksa-\xff.yaml")
    (folder / name).write_text("apiVersion: smartshare/v1\nkind: App\n", encoding="utf-8")
    result = invoke("validate", "--format", output, str(folder))
    assert result.exit_code == 1, result.output
    assert "laksa-\\udcff.yaml" in result.stdout.replace("%5C", "\\")


# -- GitHub workflow commands ------------------------------------------------------------------

ANNOTATION = re.compile(r"^::(error|warning) file=([^,:\n]*),line=(\d+),col=(\d+)::([^\n\r]*)$")


def _unescape(value: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def test_github_encodings_follow_the_toolkit() -> None:
    assert github_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert github_data("a:b,c") == "a:b,c"
    assert github_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github_data(f"x{ESC_CLEAR}") == "x\\x1b[2J"


def test_a_file_name_cannot_inject_a_workflow_command(tmp_path: Path) -> None:
    name = "app,line=1:%0A\n::error file=forged.yaml,line=1,col=1::forged.yaml"
    path = tmp_path / name
    path.write_text(
        'apiVersion: smartshare/v1\nkind: App\n"titel\\n::warning::forged %": x\n',
        encoding="utf-8",
    )
    result = invoke("validate", "--format", "github", str(path))
    assert result.exit_code == 1, result.output
    problems = json.loads(invoke("validate", "--format", "json", str(path)).stdout)["problems"]
    lines = result.stdout.splitlines()
    assert len(lines) == len(problems) > 1
    for line, problem in zip(lines, problems, strict=True):
        match = ANNOTATION.match(line)
        assert match, line
        assert _unescape(match.group(2)) == problem["file"]
        assert problem["file"].endswith(name)
        message = f"{problem['field']}: {problem['message']}" if problem["field"] else ""
        assert _unescape(match.group(5)) == (message or problem["message"])
    assert any("forged %" in _unescape(line) for line in lines)


# -- JSON ---------------------------------------------------------------------------------------


def test_json_escapes_what_json_dumps_leaves_raw() -> None:
    data = {"title": HOSTILE + "\ud800", "plain": "Kabupaten Badung — ✓"}
    text = json_text(data)
    assert_terminal_safe(text)
    assert "\\u2028" in text
    assert "\\u0085" in text
    assert "\\u009b" in text
    assert "Kabupaten Badung — ✓" in text  # readable UTF-8 stays so
    assert json.loads(text) == data


def test_list_json_round_trips_hostile_titles(tmp_path: Path) -> None:
    title = f"LAKSA{HOSTILE}"
    root = hostile_catalogue(tmp_path, title=title)
    result = invoke("list", "--format", "json", "--catalog", str(root))
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result.stdout)
    assert json.loads(result.stdout)[0]["title"] == title


# -- layout -------------------------------------------------------------------------------------


def test_fold_breaks_at_spaces_then_at_slashes_and_colons() -> None:
    assert fold("one two three", 7) == ["one two", "three"]
    image = "registry.badungkab.go.id/smartshare/perizinan-online:1.4.2-badung"
    assert fold(image, 40) == [
        "registry.badungkab.go.id/smartshare/",
        "perizinan-online:1.4.2-badung",
    ]
    assert fold("x" * 10, 4) == ["xxxx", "xxxx", "xx"]  # no place to fold: cut, as a last resort
    assert fold("a\n\nb", 10) == ["a", "", "b"]
    assert fold("output:\n  one two three", 9) == ["output:", "  one two", "  three"]


def test_tables_leave_out_columns_empty_in_every_row() -> None:
    shown = "\n".join(
        line.plain
        for line in table_lines(
            ["App", "Result", "Note"], [["laksa", "up to date", ""], ["sikda", "ok", ""]], width=80
        )
    )
    assert "Result" in shown and "up to date" in shown
    assert "Note" not in shown
    shown = "\n".join(
        x.plain for x in table_lines(["App", "Note"], [["laksa", "no engine"]], width=80)
    )
    assert "Note" in shown
    # Nothing to show: the headers still say what would be.
    assert "Note" in table_lines(["App", "Note"], [], width=80)[0].plain


def test_a_table_too_wide_for_its_columns_turns_them_into_detail_lines() -> None:
    words = ["w" * 30, "v" * 30, "u" * 30]
    lines = [x.plain for x in table_lines(["A", "B", "C"], [Row(cells=words)], width=80)]
    assert all(len(line) <= 80 for line in lines)
    assert any(line.strip() == "b  " + "v" * 30 for line in lines)
    for word in words:
        assert any(word in line for line in lines)


# -- 80 columns ---------------------------------------------------------------------------------

BUNDLED_APPS = sorted(
    yaml.safe_load(p.read_text("utf-8"))["name"]
    for p in (REPO_ROOT / "manifests/apps").glob("*.yaml")
)


def assert_fits(text: str, width: int = 80) -> None:
    from rich.cells import cell_len

    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, f"lines wider than {width}:\n" + "\n".join(wide)


def unfolded(text: str) -> str:
    """``text`` with the folds at '/' and ':' undone (the only places a value may fold)."""
    return re.sub(r"([/:])\n +", r"\1", text)


def assert_whole(text: str, *values: str) -> None:
    """Each value appears unbroken, or folded only after a '/' or ':'."""
    joined = unfolded(text)
    for value in values:
        assert value in joined, f"{value!r} is not shown whole in:\n{text}"


def assert_words_whole(text: str, prose: str) -> None:
    """Every word of ``prose`` appears whole: prose folds at spaces only."""
    tokens = set(unfolded(text).split())
    broken = [word for word in prose.split() if word not in tokens]
    assert not broken, f"words broken up: {broken}\n{text}"


def test_list_fits_80_columns() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    for path in (REPO_ROOT / "manifests/apps").glob("*.yaml"):
        manifest = yaml.safe_load(path.read_text("utf-8"))
        assert_whole(result.stdout, manifest["name"], manifest["category"])
        assert_words_whole(result.stdout, manifest["title"])


@pytest.mark.parametrize("name", BUNDLED_APPS)
def test_show_fits_80_columns(name: str) -> None:
    manifest = yaml.safe_load((REPO_ROOT / f"manifests/apps/{name}.yaml").read_text("utf-8"))
    result = invoke("show", name)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert_fits(out)
    for text in [*manifest["summary"].values(), *(manifest.get("description") or {}).values()]:
        assert_words_whole(out, text)
    assert_whole(out, manifest["source"]["repo"], manifest["owner"]["contact"])
    for parameter in manifest.get("parameters", []):
        assert_whole(out, parameter["name"])
        assert_words_whole(out, parameter.get("description", ""))
        if "default" in parameter:
            assert_words_whole(out, json.dumps(parameter["default"], ensure_ascii=False))
    for template in manifest.get("templates", []):
        assert_whole(out, template["src"], template["dest"])
    for image in manifest["images"]:
        assert_whole(out, image["name"])


LONG_NAME = "tangerang-live-room-extended-edition"  # 36 of the 40 characters a name may have
LONG_REGISTRY = "registry.kabupaten-testland.go.id/smartshare-apps"


@pytest.fixture
def long_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogFixture:
    from catalogs import SECRET_VALUE, make_catalog

    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    return make_catalog(tmp_path, {"alpha": (), LONG_NAME: ("alpha",)}, registry=LONG_REGISTRY)


def _run(catalog: CatalogFixture, *args: str) -> Result:
    result = invoke(*args, "--region", str(catalog.region_file), "--catalog", str(catalog.root))
    assert result.exit_code == 0, result.output
    return result


def test_plan_adopt_and_status_fit_80_columns(
    long_catalogue: CatalogFixture, tmp_path: Path
) -> None:
    catalog = long_catalogue
    workspace = str(tmp_path / "ws")
    tags = [f"{LONG_REGISTRY}/{app}:1.0.0-{catalog.region}" for app in ("alpha", LONG_NAME)]
    for detail in ([], ["--detail"]):
        plan = _run(catalog, "plan", LONG_NAME, "-w", workspace, "--no-build", *detail).stdout
        assert_fits(plan)
        assert_whole(plan, "alpha", LONG_NAME, *tags)
        assert plan.count("first adoption") == 2
    adopted = _run(catalog, "adopt", LONG_NAME, "-w", workspace, "--no-build").stdout
    assert_fits(adopted)
    assert_whole(adopted, "alpha", LONG_NAME)
    (tmp_path / "ws/apps/alpha/src/www/index.html").write_text("edited\n")
    for detail in ([], ["--detail"]):
        status = invoke("status", "-w", workspace, *detail)
        assert status.exit_code == 0, status.output
        assert_fits(status.stdout)
        assert_whole(status.stdout, "alpha", LONG_NAME, "image file www/index.html was edited")
    # A line per app and one per detail: not ten.
    lines = adopted.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("App ")) + 1 :]
    assert len(table) == 2 * 2, adopted


@pytest.mark.requires_docker
def test_adopt_results_with_images_fit_80_columns(
    long_catalogue: CatalogFixture, tmp_path: Path, busybox_image: str
) -> None:
    catalog = long_catalogue
    adopted = _run(catalog, "adopt", LONG_NAME, "-w", str(tmp_path / "ws")).stdout
    assert_fits(adopted)
    tags = [catalog.tag(app, namespace=LONG_REGISTRY) for app in ("alpha", LONG_NAME)]
    assert_whole(adopted, "alpha", LONG_NAME, *tags)
    again = _run(catalog, "adopt", LONG_NAME, "-w", str(tmp_path / "ws")).stdout
    assert_fits(again)
    assert_whole(again, *tags)
    assert "All 2 app(s) up to date" in again


@pytest.mark.requires_docker
def test_a_verbose_build_shows_markup_like_log_lines_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busybox_image: str
) -> None:
    """``RUN echo '[/usr/lib]'`` under -v used to fail the build with a MarkupError."""
    from catalogs import SECRET_VALUE, make_catalog

    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    token = os.urandom(4).hex()  # a step the engine has not cached: its output is shown
    dockerfile = f"FROM busybox:1.36\nRUN echo '[/usr/lib] [bold]{token}' && printf '\\033[2J'\n"
    catalog = make_catalog(tmp_path, {"alpha": ()}, dockerfiles={"alpha": dockerfile})
    result = CliRunner().invoke(
        app,
        [
            "-v",
            "adopt",
            "alpha",
            "--region",
            str(catalog.region_file),
            "--catalog",
            str(catalog.root),
            "--workspace",
            str(tmp_path / "ws"),
        ],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert f"alpha: [/usr/lib] [bold]{token}" in result.stderr
    assert_terminal_safe(result.stdout + result.stderr)
