"""validate at scale: the cache between runs, parallel cold runs, --changed-since.

Every run is a real one (in-process or the CLI) on a catalogue written in
tmp_path, with its cache folder there too (SMARTSHARE_CACHE_DIR).  What the
cache spared is asserted by what the run did not call, never by time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smartshare import cache as cache_module
from smartshare import validation
from smartshare.cache import ContentCache
from smartshare.catalog import checks, template_checks, yamlfile
from smartshare.catalog.diagnostics import Problem, Severity, ValidationReport
from smartshare.cli import app as cli_app
from smartshare.console import json_text, problems_json
from smartshare.validation import validate_catalogue

from gitrepos import GitRepo, init_repo

APP = """\
apiVersion: smartshare/v1
kind: App
name: {name}
title: {title}
summary:
  en: A small app.
  id: Aplikasi kecil.
owner:
  name: Pemerintah Kota Tangerang
  region_code: "36.71"
  contact: diskominfo@tangerangkota.go.id
category: public-service
license: GPL-3.0-only
version: "1.0.0"
maturity: stable
source:
  repo: https://git.tangerangkota.go.id/diskominfo/{name}.git
  ref: v1.0.0
images:
  - name: {name}
parameters:
  - name: site_title
    default: {title}
  - name: support_email
    type: email
    required: true
templates:
  - src: {name}/index.html.j2
    dest: www/index.html
requires: [{requires}]
"""

REGION = """\
apiVersion: smartshare/v1
kind: Region
name: badung
title: Kabupaten Badung
type: kabupaten
code: "51.03"
province: Bali
timezone: Asia/Makassar
domain: badungkab.go.id
contact:
  email: diskominfo@badungkab.go.id
apps:
  portal:
    support_email: layanan@badungkab.go.id
"""

PAGE = (
    "<title>{{ params.site_title | e }}</title>\n"
    "{% include 'common/footer.html.j2' %}\n"
    "<p>{{ region.title | e }}</p>\n"
)
FOOTER = "<footer>{{ params.support_email | e }} &middot; {{ app.title | e }}</footer>\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def catalogue(root: Path, *, apps: int = 4) -> Path:
    """``portal`` (which ``badung`` gives values to), ``auth`` (which portal requires), and more."""
    names = ["portal", "auth", *(f"app-{i}" for i in range(apps - 2))]
    for name in names:
        requires = "auth" if name == "portal" else ""
        write(
            root,
            {
                f"manifests/apps/{name}.yaml": APP.format(
                    name=name, title=name.title(), requires=requires
                ),
                f"templates/{name}/index.html.j2": f"{{# {name} #}}\n" + PAGE,
            },
        )
    write(
        root, {"templates/common/footer.html.j2": FOOTER, "manifests/regions/badung.yaml": REGION}
    )
    return root


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return catalogue(tmp_path / "catalogue")


def run(root: Path, **options: Any) -> ValidationReport:
    """A run as a new process makes it: nothing kept in memory from the last one."""
    from smartshare.rendering import analysis

    analysis._PARSED_CACHE.clear()
    return validate_catalogue(catalog_root=root, jobs=1, **options)


def texts(report: ValidationReport) -> list[str]:
    return [p.as_text() for p in report.problems]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the run validated the catalogue, parsed YAML, and analysed a template."""
    from smartshare.rendering import analysis

    counted = {"validate": 0, "parse_yaml": 0, "analyse_text": 0}

    def counting(module: Any, name: str, key: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(checks, "validate", "validate")
    counting(yamlfile, "parse_yaml", "parse_yaml")
    counting(analysis, "_parse", "analyse_text")
    return counted


# -- the cache -----------------------------------------------------------------------------


def test_an_unchanged_catalogue_is_answered_from_the_cache(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    first = run(root)
    assert first.valid and first.problems == [] and first.files_checked == 5
    assert calls["validate"] == 1
    second = run(root)
    assert second == first
    assert calls["validate"] == 1  # the report came from the cache
    assert (cache_dir / "validate" / "cache.sqlite").is_file()


def test_a_template_edit_invalidates_its_cached_analysis(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    assert run(root).problems == []
    analysed = calls["analyse_text"]
    footer = root / "templates" / "common" / "footer.html.j2"
    footer.write_text(FOOTER + "{{ params.support_emial }}\n", encoding="utf-8")
    report = run(root)
    assert calls["analyse_text"] == analysed + 1  # the footer alone, analysed again
    found = [p for p in report.problems if p.field == "params.support_emial"]
    assert len(found) == 4  # every app includes the footer
    assert {Path(p.file).name for p in found} == {"footer.html.j2"}
    assert all(p.line == 2 and "did you mean 'support_email'?" in p.message for p in found)
    footer.write_text(FOOTER, encoding="utf-8")
    assert run(root).problems == []


CONFIG = '{"title": {{ params.site_title | tojson }}}\n'
SCHEMA = '{"type": "object", "required": ["title"]}\n'


def with_schema(root: Path) -> Path:
    """portal renders a config.json checked against catalog:schemas/config.json; the schema."""
    manifest = root / "manifests" / "apps" / "portal.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "    dest: www/index.html\n",
            "    dest: www/index.html\n"
            "  - src: portal/config.json.j2\n"
            "    dest: config.json\n"
            "    schema: catalog:schemas/config.json\n",
        )
    )
    write(
        root, {"templates/portal/config.json.j2": CONFIG, "templates/schemas/config.json": SCHEMA}
    )
    return root / "templates" / "schemas" / "config.json"


def test_an_edited_catalog_schema_is_checked_again_with_a_warm_cache(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    schema = with_schema(root)
    assert run(root).problems == []
    analysed = calls["analyse_text"]
    schema.write_text('{"type": "object", "required": ', encoding="utf-8")
    report = run(root)
    (problem,) = report.problems
    assert Path(problem.file).name == "portal.yaml" and problem.field == "templates.1.schema"
    assert "schema catalog:schemas/config.json is not valid JSON" in problem.message
    assert calls["analyse_text"] == analysed  # the templates' analyses still served
    schema.unlink()
    (problem,) = run(root).problems
    assert "schema 'schemas/config.json' does not exist" in problem.message
    schema.write_text(SCHEMA, encoding="utf-8")
    assert run(root).problems == []


def test_the_own_problems_of_an_app_with_a_schema_are_kept_while_it_reads_the_same(
    root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = with_schema(root)
    run(root)
    checked: list[str] = []
    original = template_checks._schema_problem.__wrapped__

    def schema_problem(text: str, schema_name: str) -> str | None:
        checked.append(schema_name)
        return original(text, schema_name)

    monkeypatch.setattr(template_checks, "_schema_problem", schema_problem)
    # Another file edited: the report is made again, each app's own problems from the cache.
    (root / "templates" / "unrelated.txt").write_text("x", encoding="utf-8")
    assert run(root).problems == []
    assert checked == []
    schema.write_text(SCHEMA.replace("title", "name"), encoding="utf-8")
    assert run(root).problems == []
    assert checked == ["catalog:schemas/config.json"]  # checked again: it changed


LOGO = Path(__file__).resolve().parents[1] / "manifests" / "regions" / "assets" / "badung-logo.png"


def with_logo(root: Path) -> Path:
    """badung's ``branding.logo`` is a PNG next to its profile; that PNG."""
    logo = root / "manifests" / "regions" / "assets" / "logo.png"
    logo.parent.mkdir(parents=True, exist_ok=True)
    logo.write_bytes(LOGO.read_bytes())
    profile = root / "manifests" / "regions" / "badung.yaml"
    profile.write_text(
        REGION.replace("apps:\n", "branding:\n  logo: file:assets/logo.png\napps:\n"),
        encoding="utf-8",
    )
    return logo


def test_a_file_a_profile_names_for_an_asset_is_checked_again_when_it_changes(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    logo = with_logo(root)
    assert run(root).problems == []
    assert run(root).problems == [] and calls["validate"] == 1  # the report, from the cache
    logo.write_bytes(b"just some text, named logo.png\n")
    (problem,) = run(root).problems
    assert Path(problem.file).name == "badung.yaml" and problem.field == "branding.logo"
    assert "'file:assets/logo.png' is not a PNG, SVG or ICO file" in problem.message
    logo.unlink()
    (problem,) = run(root).problems
    assert "'file:assets/logo.png': no such file" in problem.message
    logo.write_bytes(LOGO.read_bytes())
    assert run(root).problems == []
    assert calls["validate"] == 3  # as at first: the first report again


def test_an_asset_file_is_told_apart_by_all_its_bytes_not_a_manifests_first_mib(
    root: Path,
) -> None:
    from smartshare.catalog.rules import MAX_FILE_BYTES

    # A file as large as an asset may be (a manifest past MAX_FILE_BYTES is refused).
    big = root / "manifests" / "regions" / "assets" / "big.png"
    big.parent.mkdir(parents=True)
    big.write_bytes(b"\0" * (MAX_FILE_BYTES + 10))
    before = validation._list(root).text()
    big.write_bytes(b"\0" * (MAX_FILE_BYTES + 9) + b"\1")
    assert validation._list(root).text() != before


def test_the_listed_manifests_are_the_files_loading_would_find(tmp_path: Path) -> None:
    from smartshare.catalog.load import iter_yaml_files

    root = tmp_path / "catalogue"
    for name in [
        "apps/b.yaml",
        "apps/a.yml",
        "apps/notes.txt",
        "apps/A.yaml",
        ".yaml",
        "versions/b/1.0.yaml",
        "versions/b/1.10.yaml",
        "regions/r.yaml",
    ]:
        path = root / "manifests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("kind: App\n")
    listing = validation._list(root, folders=("manifests",), keep_manifests=True)
    listed = listing.yaml_files()
    assert listed is not None and len(listed) == 6
    assert listed == iter_yaml_files([root / "manifests"])
    # A link is looked behind by loading, not by the listing: none given then.
    (root / "manifests" / "apps" / "c.yaml").symlink_to(root / "manifests" / "apps" / "b.yaml")
    assert validation._list(root, folders=("manifests",), keep_manifests=True).yaml_files() is None


def test_after_an_edit_only_the_edited_manifest_is_read_again(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    run(root)
    parsed, analysed = calls["parse_yaml"], calls["analyse_text"]
    portal = root / "manifests" / "apps" / "portal.yaml"
    portal.write_text(portal.read_text().replace("title: Portal", "title: Portal Badung"))
    report = run(root)
    assert report.problems == []
    # the edited manifest, and the region profile (whose data is never kept)
    assert calls["parse_yaml"] == parsed + 2
    assert calls["analyse_text"] == analysed  # the templates are as they were


def test_region_profiles_are_never_copied_into_the_cache(root: Path, cache_dir: Path) -> None:
    profile = root / "manifests" / "regions" / "badung.yaml"
    profile.write_text(REGION + "    token: hunter2-inline-secret\n", encoding="utf-8")
    report = run(root)
    assert not report.valid
    raw = (cache_dir / "validate" / "cache.sqlite").read_bytes()
    assert b"hunter2" not in raw
    assert b"diskominfo@tangerangkota.go.id" in raw  # app manifests are kept


def test_a_damaged_entry_is_ignored_and_written_again(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    expected = run(root)
    database = cache_dir / "validate" / "cache.sqlite"
    with sqlite3.connect(database) as db:
        # Every entry cut short, as a torn write would leave it.
        db.execute("UPDATE entries SET value = substr(value, 1, length(value) / 2)")
    assert run(root) == expected
    assert calls["validate"] == 2
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT value FROM entries").fetchall()
    assert rows and all(cache_module.decode(value) is not None for (value,) in rows)
    assert run(root) == expected
    assert calls["validate"] == 2  # whole again: the report is read


@pytest.mark.parametrize("damage", [b"", b"not a database at all " * 100, "half"])
def test_a_damaged_cache_file_is_started_afresh(
    root: Path, cache_dir: Path, damage: bytes | str
) -> None:
    expected = run(root)
    database = cache_dir / "validate" / "cache.sqlite"
    raw = database.read_bytes()
    database.write_bytes(raw[: len(raw) // 2] if damage == "half" else damage)  # type: ignore[arg-type]
    second = run(root)
    assert second.problems == expected.problems
    assert second.notes == ()
    third = run(root)
    assert third.problems == expected.problems and third.notes == ()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] > 0


def test_an_unwritable_cache_folder_is_said_once(root: Path, tmp_path: Path) -> None:
    # A file where the folder should be: no user, root included, can create it.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = CliRunner().invoke(
        cli_app,
        ["validate", "--catalog", str(root)],
        env={"SMARTSHARE_CACHE_DIR": str(blocker / "cache"), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "cannot be used" in warnings[0] and "validating without saving to it" in warnings[0]
    assert "6 file(s) checked: valid" not in result.stderr  # 5 files: nothing else changed
    assert "5 file(s) checked: valid" in result.stderr


def test_no_cache_reads_and_writes_nothing(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    run(root)
    report = run(root, use_cache=False)
    assert report.problems == [] and calls["validate"] == 2
    before = (cache_dir / "validate" / "cache.sqlite").stat().st_mtime_ns
    result = CliRunner().invoke(cli_app, ["validate", "--no-cache", "--catalog", str(root)])
    assert result.exit_code == 0
    assert (cache_dir / "validate" / "cache.sqlite").stat().st_mtime_ns == before
    other = root.parent / "elsewhere"
    CliRunner().invoke(
        cli_app,
        ["validate", "--no-cache", "--catalog", str(root)],
        env={"SMARTSHARE_CACHE_DIR": str(other)},
    )
    assert not other.exists()


def test_entries_belong_to_the_code_that_computed_them(
    root: Path, cache_dir: Path, calls: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(root)
    analysed = calls["analyse_text"]
    monkeypatch.setattr(cache_module, "code_version", lambda: "another smartshare")
    run(root)
    assert calls["validate"] == 2
    assert calls["analyse_text"] == analysed + 5  # nothing from the other version's cache


def test_the_cache_stays_under_its_size_limit(tmp_path: Path) -> None:
    store = ContentCache(tmp_path / "cache", max_bytes=200_000)
    for batch in range(5):
        for index in range(100):
            store.put(store.key("test", f"{batch}-{index}"), {"text": "x" * 1000})
        store.flush()
    with sqlite3.connect(tmp_path / "cache" / "cache.sqlite") as db:
        (total,) = db.execute("SELECT total(size) FROM entries").fetchone()
        (count,) = db.execute("SELECT count(*) FROM entries").fetchone()
    assert total <= 200_000
    assert 0 < count < 500
    # The newest entries stay, the oldest went.
    assert store.get(store.key("test", "4-99")) == {"text": "x" * 1000}
    assert store.get(store.key("test", "0-0")) is None


def test_a_report_is_not_kept_when_links_decide_what_is_read(
    root: Path, cache_dir: Path, calls: dict[str, int]
) -> None:
    footer = root / "templates" / "common" / "footer.html.j2"
    (root / "templates" / "common" / "real.html.j2").write_text(FOOTER)
    footer.unlink()
    footer.symlink_to("real.html.j2")
    assert run(root).problems == []
    assert run(root).problems == []
    assert calls["validate"] == 2  # checked each time: a link is more than its bytes


def test_the_bundled_catalogue_reads_the_same_with_and_without_the_cache(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(repo)
    fresh = validate_catalogue(catalog_root=repo, use_cache=False)
    assert validate_catalogue(catalog_root=repo) == fresh
    assert validate_catalogue(catalog_root=repo) == fresh


# -- parallel cold runs --------------------------------------------------------------------


def broken_catalogue(tmp_path: Path) -> Path:
    """tests/data/broken (every kind of problem) with more apps of its own, for the workers."""
    import shutil

    target = tmp_path / "broken"
    shutil.copytree(Path(__file__).resolve().parent / "data" / "broken", target)
    catalogue(target, apps=12)
    return target


def test_a_parallel_cold_run_reports_what_one_process_does(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = broken_catalogue(tmp_path)
    monkeypatch.chdir(tmp_path)
    alone = validate_catalogue(catalog_root=target, jobs=1, use_cache=False)
    assert len(alone.problems) > 30
    monkeypatch.setitem(validation.PARALLEL_FROM_MS, "fork", 0.0)
    monkeypatch.setitem(validation.PARALLEL_FROM_MS, "fresh", 0.0)
    pools: list[int] = []

    class Pool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    parallel = validate_catalogue(catalog_root=target, jobs=2, use_cache=False)
    assert pools == [2]
    assert parallel == alone
    cached = validate_catalogue(catalog_root=target, jobs=2)
    assert cached == alone
    assert validate_catalogue(catalog_root=target, jobs=2) == alone


def test_workers_started_for_a_run_that_looked_cold_give_way_to_a_cached_report(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = broken_catalogue(tmp_path)
    monkeypatch.chdir(tmp_path)
    first = validate_catalogue(catalog_root=target, jobs=1)
    # Only the report stays: the run looks cold, and workers start.
    cache = ContentCache.for_validation()
    report = cache.key("report", str(target), str(Path.cwd()), validation._list(target).text())
    cache.close()
    with contextlib.closing(sqlite3.connect(cache_dir / "validate" / "cache.sqlite")) as db, db:
        db.execute("DELETE FROM entries WHERE key != ?", (report,))
    monkeypatch.setitem(validation.PARALLEL_FROM_MS, "fork", 0.0)
    monkeypatch.setitem(validation.PARALLEL_FROM_MS, "fresh", 0.0)
    started: list[bool] = []
    start = validation._Workers.start.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        workers = start(cls, *args, **kwargs)
        started.append(workers is not None)
        return workers

    monkeypatch.setattr(validation._Workers, "start", classmethod(spy))
    assert validate_catalogue(catalog_root=target, jobs=2) == first
    assert started == [True]


def test_a_run_looks_cold_only_when_the_cache_has_none_of_its_apps(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = broken_catalogue(tmp_path)
    monkeypatch.chdir(tmp_path)
    listing = validation._list(target, folders=("manifests",), keep_manifests=True)
    step = max(len(listing.manifests) // validation._PROBES, 1)
    # Region profiles are among the probes: they never have own problems kept.
    assert any(name.startswith("regions/") for name, _, _ in listing.manifests[::step])

    def looks_cold() -> bool:
        cache = ContentCache.for_validation()
        try:
            return validation._looks_cold(target, listing, validation._RunMemos(cache))
        finally:
            cache.close()

    assert looks_cold()
    validate_catalogue(catalog_root=target, jobs=1)
    assert not looks_cold()


def test_a_run_writes_the_cache_as_it_goes(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "cache")
    key = cache.key("test", "one")
    cache.put(key, {"value": 1})
    cache.write()
    other = ContentCache(tmp_path / "cache")
    assert other.get(key) == {"value": 1}  # there before the run ends
    other.close()
    cache.flush()


def test_concurrent_runs_share_one_cache(tmp_path: Path, cache_dir: Path) -> None:
    target = broken_catalogue(tmp_path)
    command = [sys.executable, "-m", "smartshare", "validate", "--catalog", str(target)]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in runs]
    assert [process.returncode for process in runs] == [1, 1, 1, 1]
    assert len({out for out, _ in outputs}) == 1
    assert all(b"warning: the cache" not in err for _, err in outputs)
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, check=False)
    assert again.stdout == outputs[0][0]


# -- --changed-since -----------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Iterator[GitRepo]:
    """A catalogue in a git repository, everything committed, as a CI checkout has it."""
    monkeypatch.chdir(tmp_path)
    repository = init_repo(tmp_path / "repo")
    catalogue(repository.path, apps=6)
    repository.write(
        "manifests/apps/other.yaml",
        APP.format(name="other", title="Other", requires="").replace(
            "    default: Other\n", "    default: Other\n  - name: unused_param\n"
        ),
    )
    repository.write(
        "templates/other/index.html.j2", "{{ params.site_title }}{{ params.support_email }}"
    )
    repository.commit("the catalogue")
    yield repository


def changed(repository: GitRepo, ref: str = "HEAD") -> ValidationReport:
    return run(repository.path, changed_since=ref)


def names(report: ValidationReport) -> set[str]:
    return {Path(p.file).name for p in report.problems}


def test_changed_since_checks_nothing_when_nothing_changed(repo: GitRepo) -> None:
    full = run(repo.path)
    assert names(full) == {"other.yaml"}  # a warning that stays unrelated below
    report = changed(repo)
    assert report.problems == [] and report.files_checked == 0


def test_changed_since_reports_a_problem_in_a_template_used_by_an_unchanged_manifest(
    repo: GitRepo,
) -> None:
    repo.write("templates/common/footer.html.j2", FOOTER + "{{ params.suport_email }}\n")
    report = changed(repo)
    # every app including the footer, none of them changed: each is checked
    assert report.files_checked == 6
    assert {p.field for p in report.problems} == {"params.suport_email"}
    assert names(report) == {"footer.html.j2"}
    assert not report.valid


def test_changed_since_checks_the_apps_whose_catalog_schema_changed(repo: GitRepo) -> None:
    schema = with_schema(repo.path)
    repo.commit("a schema")
    schema.write_text("[]", encoding="utf-8")
    report = changed(repo)
    (problem,) = report.problems
    assert Path(problem.file).name == "portal.yaml" and problem.field == "templates.1.schema"
    assert "is not a JSON Schema" in problem.message
    assert report.files_checked == 1


def test_changed_since_checks_the_profiles_whose_asset_file_changed(repo: GitRepo) -> None:
    logo = with_logo(repo.path)
    repo.commit("a logo")
    assert changed(repo).files_checked == 0
    logo.write_bytes(b"just some text, named logo.png\n")
    report = changed(repo)
    (problem,) = report.problems
    assert Path(problem.file).name == "badung.yaml" and problem.field == "branding.logo"
    assert report.files_checked == 1  # badung alone: no app changed


def test_changed_since_follows_what_depends_on_a_changed_app(repo: GitRepo) -> None:
    repo.write(
        "manifests/apps/auth.yaml",
        APP.format(name="auth", title="Auth", requires="").replace(
            "maturity: stable", "maturity: done"
        ),
    )
    report = changed(repo)
    checked = {Path(p.file).name for p in report.problems}
    assert checked == {"auth.yaml"}
    # auth itself, portal (requires auth); not badung (no values for auth)
    assert report.files_checked == 2


def test_changed_since_checks_the_profiles_that_give_values_to_a_changed_app(
    repo: GitRepo,
) -> None:
    portal = repo.path / "manifests" / "apps" / "portal.yaml"
    portal.write_text(
        portal.read_text().replace(
            "    required: true\n", "    required: true\n  - name: api_key\n    required: true\n"
        )
    )
    report = changed(repo)
    (error,) = [p for p in report.problems if p.severity is Severity.ERROR]
    assert Path(error.file).name == "badung.yaml"
    assert "required parameter 'api_key'" in error.message
    assert report.files_checked == 2  # portal (api_key is unused: a warning) and badung


def test_changed_since_sees_commits_deletions_and_new_files(repo: GitRepo) -> None:
    base = repo.head()
    repo.remove("manifests/apps/auth.yaml")
    repo.commit("auth goes")
    repo.write("manifests/apps/new.yaml", APP.format(name="new", title="New", requires="nope"))
    report = changed(repo, base)
    messages = {(Path(p.file).name, p.field): p.message for p in report.problems}
    assert "'auth', which is not an app" in messages[("portal.yaml", "requires.0")]
    assert "'nope', which is not an app" in messages[("new.yaml", "requires.0")]
    assert ("new.yaml", "templates.0.src") in messages  # its template does not exist


def test_changed_since_in_a_catalogue_below_the_top_of_the_repository(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    repository = init_repo(tmp_path / "monorepo")
    catalogue(repository.path / "catalogue")
    repository.write("README.md", "elsewhere\n")
    repository.commit("all")
    repository.write("README.md", "changed, and not the catalogue's\n")
    repository.write("catalogue/templates/portal/index.html.j2", "{{ nowhere }}\n")
    report = run(repository.path / "catalogue", changed_since="HEAD")
    # portal's template changed: it is checked (and its parameters are unused now)
    assert {(Path(p.file).name, p.field) for p in report.problems} == {
        ("index.html.j2", "nowhere"),
        ("portal.yaml", "parameters.0"),
        ("portal.yaml", "parameters.1"),
    }
    assert report.files_checked == 1


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli_app, ["validate", *args], env={"COLUMNS": "200"})


def test_changed_since_a_ref_that_does_not_exist_is_a_usage_error(repo: GitRepo) -> None:
    result = invoke("--catalog", str(repo.path), "--changed-since", "no-such-branch")
    assert result.exit_code == 2, result.output
    assert "'no-such-branch' is not a commit" in result.stderr
    result = invoke("--catalog", str(repo.path), "--changed-since", "--help-me")
    assert result.exit_code == 2


def test_changed_since_outside_a_git_repository_is_a_usage_error(
    root: Path, cache_dir: Path
) -> None:
    result = invoke("--catalog", str(root), "--changed-since", "HEAD")
    assert result.exit_code == 2, result.output
    assert "is not in a git repository" in result.stderr


def test_changed_since_with_paths_is_a_usage_error(repo: GitRepo) -> None:
    result = invoke("--catalog", str(repo.path), "--changed-since", "HEAD", str(repo.path))
    assert result.exit_code == 2
    assert "give no PATH" in result.stderr


def test_changed_since_github_annotations(repo: GitRepo) -> None:
    repo.write("templates/portal/index.html.j2", "{{ params.colour }}\n")
    result = invoke("--catalog", str(repo.path), "--changed-since", "HEAD", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert all(line.startswith(("::error file=", "::warning file=")) for line in lines)
    assert any(line.startswith("::error ") and "params.colour" in line for line in lines)


# -- output --------------------------------------------------------------------------------


def test_problems_as_json_are_what_json_text_writes() -> None:
    hostile = [
        Problem("a\x1b[2J\u2028\x85.yaml", 1, 1, Severity.ERROR, 'f"\\', "m\u202e \x00 é ✓ %"),
        Problem("b.yaml", 2, 0, Severity.WARNING, "", ""),
        *(Problem(f"x{i}.yaml", i, 3, Severity.WARNING, "f", "m") for i in range(50)),
    ]
    for problems in (hostile, hostile[:1], []):
        for valid in (True, False):
            data = {"valid": valid, "problems": [p.as_dict() for p in problems]}
            assert problems_json(valid, problems) == json_text(data)
