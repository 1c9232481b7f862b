"""``adopt``, ``plan`` and ``status`` end to end: real git repositories, a real
Docker engine and a real registry on loopback (see conftest.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import engineimages
import pytest
from typer.testing import CliRunner, Result

from smartshare.adoption.events import AdoptResult, Event, Outcome, Phase
from smartshare.adoption.plan import make_plan
from smartshare.adoption.runner import adopt
from smartshare.cli import app as cli_app
from smartshare.errors import EngineUnavailableError, InvalidInputError, SecretResolutionError
from smartshare.state.lockfile import read_lock
from smartshare.state.status import workspace_status

from catalogs import SECRET_VALUE, CatalogFixture, isolate, make_catalog

docker = pytest.importorskip("docker")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own git cache, no user settings, the test secret in the environment."""
    isolate(tmp_path, monkeypatch)


def run_adopt(
    catalog: CatalogFixture,
    workspace: Path,
    *apps: str,
    build: bool = True,
    push: bool = False,
    force: bool = False,
    fail_fast: bool = False,
    jobs: int | None = None,
    overrides: Sequence[str] = (),
) -> tuple[AdoptResult, list[Event]]:
    events: list[Event] = []
    result = adopt(
        apps=list(apps),
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        on_event=events.append,
        build=build,
        push=push,
        force=force,
        fail_fast=fail_fast,
        jobs=jobs,
        overrides=overrides,
    )
    return result, events


def invoke(catalog: CatalogFixture, *args: str, region: Path | None = None) -> Result:
    """Run the CLI in-process on the test catalogue (``--region`` and ``--catalog`` added)."""
    command = [
        *args,
        "--region",
        str(region or catalog.region_file),
        "--catalog",
        str(catalog.root),
    ]
    return CliRunner().invoke(cli_app, command)


def catalog_token() -> str:
    return os.urandom(6).hex()


def outcomes(result: AdoptResult) -> dict[str, Outcome]:
    return {r.app: r.outcome for r in result.results}


def docker_client() -> Any:
    """A docker-py client for the test engine (docker-py has no type hints: Any)."""
    return docker.from_env()


# -- without an engine --------------------------------------------------------


def test_no_build_needs_no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    workspace = tmp_path / "ws"
    result, events = run_adopt(catalog, workspace, "beta", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED, "beta": Outcome.ADOPTED}
    # requires first
    first_work = [e.app for e in events if e.phase is Phase.FETCHING]
    assert first_work.index("alpha") < first_work.index("beta")
    page = (workspace / "apps/alpha/src/www/index.html").read_text()
    assert "Kabupaten Testland" in page
    assert not (workspace / "apps/alpha/src/.git").exists()
    runtime = workspace / "runtime/alpha/runtime.env"
    assert runtime.read_text() == f"API_TOKEN={SECRET_VALUE}\n"
    assert runtime.stat().st_mode & 0o777 == 0o600
    # Apart from every source tree, in folders only their owner may enter.
    assert not (workspace / "apps/alpha/runtime").exists()
    assert (workspace / "runtime").stat().st_mode & 0o777 == 0o700
    assert runtime.parent.stat().st_mode & 0o777 == 0o700
    lock_text = (workspace / "smartshare.lock").read_text()
    assert SECRET_VALUE not in lock_text
    lock = read_lock(workspace)
    assert lock.apps["alpha"].values["api_token"] == "env:TESTLAND_TOKEN"
    assert lock.apps["alpha"].source.commit == catalog.repos["alpha"].rev("v1.0.0")
    assert lock.apps["alpha"].built is False
    # again: nothing to do
    again, _ = run_adopt(catalog, workspace, "beta", build=False)
    assert set(outcomes(again).values()) == {Outcome.UP_TO_DATE}


def test_unreachable_engine_exits_3_and_leaves_workspace_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    result = invoke(catalog, "adopt", "alpha", "--workspace", str(workspace))
    assert result.exit_code == 3, result.output
    assert "unix:///nonexistent/docker.sock" in result.stderr
    assert "--no-build" in result.stderr
    assert not workspace.exists()
    # an existing workspace is not touched either
    run_adopt(catalog, workspace, "alpha", build=False)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in workspace.rglob("*")}
    with pytest.raises(EngineUnavailableError, match=re.escape("unix:///nonexistent/docker.sock")):
        run_adopt(catalog, workspace, "alpha")
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in workspace.rglob("*")} == before


def test_missing_secret_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    monkeypatch.delenv("TESTLAND_TOKEN")
    with pytest.raises(SecretResolutionError) as caught:
        run_adopt(catalog, tmp_path / "ws", "alpha", build=False)
    assert "alpha.api_token" in caught.value.message
    assert "env:TESTLAND_TOKEN" in caught.value.message
    assert not (tmp_path / "ws").exists()
    assert not (tmp_path / "cache").exists()  # nothing fetched either


def test_inline_secret_via_set_is_refused(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with pytest.raises(InvalidInputError) as caught:
        run_adopt(
            catalog, tmp_path / "ws", "alpha", build=False, overrides=["alpha.api_token=plain"]
        )
    assert caught.value.message == (
        "alpha.api_token is a secret: give a reference (env:NAME or file:PATH), not the value"
    )
    assert "plain" not in caught.value.message
    assert not (tmp_path / "ws").exists()


def test_pinned_commit_mismatch_fails_that_app_only(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    manifest = catalog.root / "manifests/apps/beta.yaml"
    manifest.write_text(
        manifest.read_text().replace("ref: v1.0.0", "ref: v1.0.0\n  commit: " + "a" * 40)
    )
    result, _ = run_adopt(catalog, tmp_path / "ws", "alpha", "beta", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED, "beta": Outcome.FAILED}
    failed = next(r for r in result.results if r.app == "beta")
    assert "a" * 40 in failed.message
    assert set(read_lock(tmp_path / "ws").apps) == {"alpha"}
    assert not (tmp_path / "ws/apps/beta").exists()


def test_unknown_ref_and_bad_repo_are_reported_per_app(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": (), "gamma": ()})
    beta = catalog.root / "manifests/apps/beta.yaml"
    beta.write_text(beta.read_text().replace("ref: v1.0.0", "ref: v9.9.9"))
    gamma = catalog.root / "manifests/apps/gamma.yaml"
    gamma.write_text(
        gamma.read_text().replace(catalog.repos["gamma"].file_url, "file:///nonexistent/repo.git")
    )
    result, _ = run_adopt(catalog, tmp_path / "ws", "alpha", "beta", "gamma", build=False)
    by_app = {r.app: r for r in result.results}
    assert by_app["alpha"].outcome is Outcome.ADOPTED
    assert by_app["beta"].outcome is Outcome.FAILED and "v9.9.9" in by_app["beta"].message
    assert (
        by_app["gamma"].outcome is Outcome.FAILED
        and "/nonexistent/repo.git" in by_app["gamma"].message
    )


def test_value_change_rerenders_only_that_app(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", "beta", build=False)
    result, _ = run_adopt(
        catalog, workspace, "alpha", "beta", build=False, overrides=["beta.greeting=Om Swastiastu"]
    )
    assert outcomes(result) == {"alpha": Outcome.UP_TO_DATE, "beta": Outcome.ADOPTED}
    assert "Om Swastiastu" in (workspace / "apps/beta/src/www/index.html").read_text()


def test_notes_say_what_was_done_and_why(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    workspace = tmp_path / "ws"
    plan = make_plan(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert plan.entries[0].reasons == ["first adoption"]
    first, _ = run_adopt(catalog, workspace, "alpha", "beta", build=False)
    assert [r.message for r in first.results] == ["first adoption", "first adoption"]
    # A --set value re-renders beta: the value is the reason, nothing was edited by hand.
    changed, _ = run_adopt(
        catalog, workspace, "alpha", "beta", build=False, overrides=["beta.greeting=Om Swastiastu"]
    )
    assert outcomes(changed) == {"alpha": Outcome.UP_TO_DATE, "beta": Outcome.ADOPTED}
    assert changed.results[1].message == "values changed: greeting"
    # A hand edit is reported as one, even when the values change too.
    (workspace / "apps/beta/src/www/index.html").write_text("edited\n")
    both, _ = run_adopt(catalog, workspace, "beta", build=False)
    assert both.results[0].message == (
        "values changed: greeting; image file www/index.html was edited by hand"
    )
    (workspace / "apps/beta/src/www/index.html").unlink()
    missing, _ = run_adopt(catalog, workspace, "beta", build=False)
    assert missing.results[0].message == "image file www/index.html is missing"


def test_notes_name_a_new_version_a_changed_profile_or_manifest(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})  # its page shows all three
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    manifest = catalog.root / "manifests/apps/alpha.yaml"

    def edit(path: Path, old: str, new: str) -> list[str]:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        result, _ = run_adopt(catalog, workspace, "alpha", build=False)
        assert outcomes(result) == {"alpha": Outcome.ADOPTED}
        return [r.message for r in result.results]

    assert edit(manifest, 'version: "1.0.0"', 'version: "1.1.0"') == ["version 1.0.0 -> 1.1.0"]
    assert edit(catalog.region_file, "title: Kabupaten Testland", "title: Kabupaten Baru") == [
        "region profile changed"
    ]
    assert edit(manifest, "title: Alpha", "title: Alpha Baru") == ["manifest changed"]


def test_the_failure_hint_counts_what_was_recorded(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "broken": ()})
    manifest = catalog.root / "manifests/apps/broken.yaml"
    manifest.write_text(manifest.read_text().replace("ref: v1.0.0", "ref: v9.9.9"))
    workspace = tmp_path / "ws"
    alone = invoke(catalog, "adopt", "broken", "--workspace", str(workspace), "--no-build")
    assert alone.exit_code == 3, alone.output
    assert "recorded in the lock" not in alone.stderr
    assert "nothing was recorded" in alone.stderr
    both = invoke(catalog, "adopt", "alpha", "broken", "--workspace", str(workspace), "--no-build")
    assert both.exit_code == 3, both.output
    assert "1 of 2 app(s) not adopted: broken" in both.stderr
    assert "alpha is recorded in the lock" in both.stderr


def test_an_interrupted_run_lists_the_apps_it_did_not_start(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": (), "gamma": ()})
    events: list[Event] = []

    def interrupt_at_the_first_fetch(event: Event) -> None:
        events.append(event)
        worker = threading.current_thread() is not threading.main_thread()
        if event.phase is Phase.FETCHING and worker:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while the main thread waits
            time.sleep(2)  # the main thread takes it and calls the run off meanwhile

    result = adopt(
        apps=["alpha", "beta", "gamma"],
        region_file=catalog.region_file,
        workspace=tmp_path / "ws",
        catalog_root=catalog.root,
        jobs=1,
        build=False,
        on_event=interrupt_at_the_first_fetch,
    )
    assert result.interrupted
    assert [r.app for r in result.results] == ["alpha", "beta", "gamma"]
    started = next(e.app for e in events if e.phase is Phase.FETCHING)
    for r in result.results:
        if r.app == started:
            assert (r.outcome, r.message) == (Outcome.SKIPPED, "interrupted")
        else:
            assert r.outcome is Outcome.NOT_STARTED


def test_included_template_edit_rerenders(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/footer.j2", "<footer>v1</footer>\n")
    catalog.write(
        "templates/page/index.html.j2",
        "<h1>{{ params.greeting | e }}</h1>\n{% include ['page/custom.j2', 'page/footer.j2'] %}",
    )
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    page = workspace / "apps/alpha/src/www/index.html"
    assert "<footer>v1</footer>" in page.read_text()
    recorded = read_lock(workspace).apps["alpha"].render_inputs
    assert recorded is not None
    assert set(recorded.templates) == {
        "page/index.html.j2",
        "page/custom.j2",
        "page/footer.j2",
        "page/runtime.env.j2",
    }
    assert recorded.templates["page/custom.j2"] is None
    again, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(again) == {"alpha": Outcome.UP_TO_DATE}

    # An included file changes: the page is rendered again.
    catalog.write("templates/page/footer.j2", "<footer>v2</footer>\n")
    result, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}
    assert result.results[0].message == "templates changed"
    assert "<footer>v2</footer>" in page.read_text()

    # A file appears under a name that was missing, and now takes precedence.
    catalog.write("templates/page/custom.j2", "<footer>custom</footer>\n")
    result, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}
    assert "<footer>custom</footer>" in page.read_text()


def test_changed_secret_rerenders_the_runtime_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    monkeypatch.setenv("TESTLAND_TOKEN", "rotated-" + SECRET_VALUE)
    result, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}
    runtime = (workspace / "runtime/alpha/runtime.env").read_text()
    assert "rotated-" + SECRET_VALUE in runtime
    lock_text = (workspace / "smartshare.lock").read_text()
    assert SECRET_VALUE not in lock_text


def test_hand_edit_is_found_without_rendering(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    runtime = workspace / "runtime/alpha/runtime.env"
    original = runtime.read_text()
    runtime.write_text("API_TOKEN=other\n")

    # Found by the file's digest: plan starts no render worker to find it.
    def no_worker(*args: object) -> NoReturn:
        raise AssertionError("a render worker was started")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("smartshare.rendering.pool._Worker", no_worker)
        plan = make_plan(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=workspace,
            catalog_root=catalog.root,
            build=False,
        )
    assert plan.entries[0].reasons == ["runtime file runtime.env was edited by hand"]
    # adopt renders it again, to put it back.
    result, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert result.results[0].message == "runtime file runtime.env was edited by hand"
    assert runtime.read_text() == original


def test_noop_rerun_leaves_the_lock_untouched(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    lock = workspace / "smartshare.lock"
    before = (lock.read_bytes(), lock.stat().st_mtime_ns, lock.stat().st_ino)
    time.sleep(0.01)
    again, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(again) == {"alpha": Outcome.UP_TO_DATE}
    assert (lock.read_bytes(), lock.stat().st_mtime_ns, lock.stat().st_ino) == before
    # A change is still written.
    changed, _ = run_adopt(
        catalog, workspace, "alpha", build=False, overrides=["alpha.greeting=Om"]
    )
    assert outcomes(changed) == {"alpha": Outcome.ADOPTED}
    assert lock.read_bytes() != before[0]


HEAVY_MODULES = ("docker", "requests", "jinja2", "git")
REPORTING_CLI = f"""
import json, sys
from smartshare.cli import app
try:
    app(prog_name="smartshare")
finally:
    loaded = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
    print("LOADED", json.dumps(loaded), file=sys.stderr)
"""


def adopt_in_a_fresh_process(
    catalog: CatalogFixture, workspace: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``smartshare adopt ARGS`` in a fresh interpreter; with the heavy modules it imported."""
    argv = ["adopt", *args, "--workspace", str(workspace)]
    argv += ["--region", str(catalog.region_file), "--catalog", str(catalog.root)]
    done = subprocess.run(
        [sys.executable, "-c", REPORTING_CLI, *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    report = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    assert report, done.stderr
    return done, json.loads(report[-1].removeprefix("LOADED "))


def test_noop_rerun_neither_renders_nor_imports_jinja(tmp_path: Path) -> None:
    """Nothing changed: the lock's record stands in for rendering and checking templates."""
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", "beta", build=False)
    done, loaded = adopt_in_a_fresh_process(catalog, workspace, "alpha", "beta", "--no-build")
    assert "up to date" in done.stdout
    assert "jinja2" not in loaded
    # With a template changed, the same command renders (and checks) again.
    catalog.write("templates/page/index.html.j2", "<h1>{{ params.greeting | e }}!</h1>\n")
    done, loaded = adopt_in_a_fresh_process(catalog, workspace, "alpha", "beta", "--no-build")
    assert "jinja2" in loaded
    assert "<h1>Selamat datang!</h1>" in (workspace / "apps/beta/src/www/index.html").read_text()


def test_moved_tag_is_followed(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    repo = catalog.repos["alpha"]
    repo.write("www/extra.html", "new\n")
    moved = repo.commit("sneaky fix")
    repo.move_tag("v1.0.0", to=moved)
    result, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}
    assert "source moved" in result.results[0].message
    assert read_lock(workspace).apps["alpha"].source.commit == moved
    assert (workspace / "apps/alpha/src/www/extra.html").exists()


def test_plan_lists_work_in_dependency_order_then_nothing(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    workspace = tmp_path / "ws"
    plan = make_plan(
        apps=["beta"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert [e.app for e in plan.entries] == ["alpha", "beta"]
    assert plan.entries[0].actions == ["fetch", "render"]
    assert ("runtime.env", "runtime") in plan.entries[0].files
    assert not workspace.exists()  # plan does nothing
    run_adopt(catalog, workspace, "beta", build=False)
    result = invoke(
        catalog, "plan", "beta", "--workspace", str(workspace), "--no-build", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [a["up_to_date"] for a in data["apps"]] == [True, True]


def test_status_reports_hand_edits_and_region_changes(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    assert workspace_status(workspace=workspace).apps[0].drift == []
    page = workspace / "apps/alpha/src/www/index.html"
    runtime = workspace / "runtime/alpha/runtime.env"
    adopted_page, adopted_runtime = page.read_text(), runtime.read_text()
    page.write_text("edited\n")
    runtime.write_text("API_TOKEN=other\n")
    catalog.region_file.write_text(catalog.region_file.read_text().replace("#0B6E4F", "#123456"))
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(manifest.read_text().replace('version: "1.0.0"', 'version: "1.1.0"'))
    status = workspace_status(workspace=workspace)
    drift = " | ".join(status.apps[0].drift)
    assert "www/index.html was edited by hand" in drift
    assert "runtime.env was edited by hand" in drift
    assert "catalogue has version 1.1.0" in drift
    assert status.region_drift and "changed" in status.region_drift[0]
    result = CliRunner().invoke(
        cli_app, ["status", "--workspace", str(workspace), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == status.as_dict()
    # adopt puts the hand-edited files back (the page as the new version renders it)
    again, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(again) == {"alpha": Outcome.ADOPTED}
    assert again.results[0].message.endswith(
        "; image file www/index.html was edited by hand"
        "; runtime file runtime.env was edited by hand"
    )
    assert page.read_text() == adopted_page.replace("Alpha 1.0.0", "Alpha 1.1.0")
    assert "Alpha 1.1.0" in page.read_text()
    assert runtime.read_text() == adopted_runtime
    assert workspace_status(workspace=workspace).apps[0].drift == []


def test_runtime_files_of_the_old_layout_are_moved_out_of_the_app_folder(tmp_path: Path) -> None:
    """Workspaces made before runtime/<app>/ kept runtime files in apps/<app>/runtime/."""
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", "beta", build=False)
    for app in ("alpha", "beta"):
        (workspace / "runtime" / app).rename(workspace / "apps" / app / "runtime")
    (workspace / "runtime").rmdir()
    # Until then, status and plan find them where they are.
    assert [a.drift for a in workspace_status(workspace=workspace).apps] == [[], []]
    plan = make_plan(
        apps=["alpha", "beta"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert [(entry.actions, entry.reasons) for entry in plan.entries] == [([], []), ([], [])]
    # A runtime folder in both places: the new one is kept (and checked as usual).
    (workspace / "runtime/beta").mkdir(parents=True)
    (workspace / "runtime/beta/runtime.env").write_text("API_TOKEN=edited\n")
    result, _ = run_adopt(catalog, workspace, "alpha", "beta", build=False)
    assert outcomes(result) == {"alpha": Outcome.UP_TO_DATE, "beta": Outcome.ADOPTED}
    for app in ("alpha", "beta"):
        assert not (workspace / "apps" / app / "runtime").exists()
        moved = workspace / "runtime" / app / "runtime.env"
        assert moved.read_text() == f"API_TOKEN={SECRET_VALUE}\n"
        assert moved.stat().st_mode & 0o777 == 0o600
        assert moved.parent.stat().st_mode & 0o777 == 0o700
    assert (workspace / "runtime").stat().st_mode & 0o777 == 0o700


def test_workspace_of_another_region_is_refused(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    other = catalog.region_file.with_name("otherland.yaml")
    other.write_text(
        catalog.region_file.read_text().replace(f"name: {catalog.region}", "name: otherland")
    )
    result = invoke(
        catalog, "adopt", "alpha", "--workspace", str(workspace), "--no-build", region=other
    )
    assert result.exit_code == 2
    assert catalog.region in result.stderr


# -- with a real engine -------------------------------------------------------


@pytest.mark.requires_docker
def test_adopt_builds_labelled_images_and_reruns_as_noop(
    tmp_path: Path, busybox_image: str
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ("alpha",)})
    workspace = tmp_path / "ws"
    started = datetime.now(UTC).replace(microsecond=0)
    result, events = run_adopt(catalog, workspace, "beta", jobs=2)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED, "beta": Outcome.ADOPTED}, result.results
    client = docker_client()
    image = client.images.get(catalog.tag("alpha"))
    labels = image.labels
    assert labels["org.opencontainers.image.revision"] == catalog.repos["alpha"].rev("v1.0.0")
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.vendor"] == "Pemerintah Kota Tangerang"
    assert labels["id.smartshare.region"] == catalog.region
    assert datetime.fromisoformat(labels["org.opencontainers.image.created"]) >= started
    page = client.containers.run(
        image.id, ["cat", "/www/index.html"], remove=True, network_mode="none"
    )
    assert b"Kabupaten Testland" in page
    lock = read_lock(workspace)
    assert lock.apps["alpha"].images[0].image_id == image.id
    assert any(e.log for e in events), "build log lines reach the event sink"

    again, events = run_adopt(catalog, workspace, "beta", jobs=2)
    assert set(outcomes(again).values()) == {Outcome.UP_TO_DATE}
    assert not any(e.phase is Phase.BUILDING for e in events)
    assert client.images.get(catalog.tag("alpha")).id == image.id

    # an image removed from the engine is rebuilt
    client.images.remove(catalog.tag("alpha"), force=True)
    third, _ = run_adopt(catalog, workspace, "alpha")
    assert outcomes(third) == {"alpha": Outcome.ADOPTED}
    assert "images missing" in third.results[0].message


@pytest.mark.requires_docker
def test_noop_rerun_with_an_engine_needs_neither_docker_py_nor_jinja(
    tmp_path: Path, busybox_image: str
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    first, _ = run_adopt(catalog, workspace, "alpha")
    assert outcomes(first) == {"alpha": Outcome.ADOPTED}
    done, loaded = adopt_in_a_fresh_process(catalog, workspace, "alpha")
    assert "All 1 app(s) up to date" in done.stdout
    from smartshare.building.enginesocket import socket_path

    # Over TCP, TLS or SSH the engine is reached through docker-py, as before.
    # GitPython is for fetching and exporting: a run that only asks whether
    # refs moved runs git without it.
    assert loaded == ([] if socket_path() is not None else ["docker", "requests"])
    # The engine is still asked: a removed image is noticed and rebuilt.
    docker_client().images.remove(catalog.tag("alpha"), force=True)
    done, _ = adopt_in_a_fresh_process(catalog, workspace, "alpha")
    assert "images missing" in done.stdout
    rebuilt = read_lock(workspace).apps["alpha"].images[0].image_id
    assert docker_client().images.get(catalog.tag("alpha")).id == rebuilt


@pytest.mark.requires_docker
def test_secret_is_in_no_image_layer_lock_or_output(tmp_path: Path, busybox_image: str) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    result = invoke(catalog, "-v", "adopt", "alpha", "--workspace", str(workspace))
    assert result.exit_code == 0, result.output
    assert SECRET_VALUE not in result.output
    assert SECRET_VALUE not in (result.stderr or "")
    assert SECRET_VALUE not in (workspace / "smartshare.lock").read_text()
    layers = _image_bytes(catalog.tag("alpha"))
    assert b"Kabupaten Testland" in layers  # the search can find things
    assert SECRET_VALUE.encode() not in layers
    # the runtime file does hold it, 0600, outside the build context
    runtime = workspace / "runtime/alpha/runtime.env"
    assert runtime.read_text() == f"API_TOKEN={SECRET_VALUE}\n"
    assert runtime.stat().st_mode & 0o777 == 0o600


@pytest.mark.requires_docker
def test_one_failing_build_does_not_stop_the_others(tmp_path: Path, busybox_image: str) -> None:
    broken = "FROM busybox:1.36\nRUN echo building && exit 7\n"
    catalog = make_catalog(
        tmp_path,
        {"alpha": (), "broken": (), "needs-broken": ("broken",)},
        dockerfiles={"broken": broken},
    )
    workspace = tmp_path / "ws"
    result = invoke(
        catalog, "adopt", "alpha", "needs-broken", "--workspace", str(workspace), "--format", "json"
    )
    assert result.exit_code == 3, result.output
    data = {a["app"]: a for a in json.loads(result.stdout)["apps"]}
    assert data["alpha"]["result"] == "adopted"
    assert data["broken"]["result"] == "failed"
    assert "returned a non-zero code: 7" in data["broken"]["message"]
    assert data["needs-broken"]["result"] == "skipped"
    assert set(read_lock(workspace).apps) == {"alpha"}
    assert not (workspace / "apps/broken").exists()
    assert list((workspace / ".smartshare/tmp").iterdir()) == []


@pytest.mark.requires_docker
def test_fail_fast_starts_nothing_after_a_failure(tmp_path: Path, busybox_image: str) -> None:
    broken = "FROM busybox:1.36\nRUN exit 3\n"
    catalog = make_catalog(tmp_path, {"aaa": (), "bbb": (), "ccc": ()}, dockerfiles={"aaa": broken})
    result, events = run_adopt(
        catalog, tmp_path / "ws", "aaa", "bbb", "ccc", jobs=1, fail_fast=True
    )
    assert outcomes(result) == {
        "aaa": Outcome.FAILED,
        "bbb": Outcome.SKIPPED,
        "ccc": Outcome.SKIPPED,
    }
    # Neither was exported nor built after aaa failed.
    worked_on = {e.app for e in events if e.phase in (Phase.FETCHING, Phase.BUILDING)}
    assert worked_on == {"aaa"}


@pytest.mark.requires_docker
def test_missing_dockerfile_is_a_clear_failure(tmp_path: Path, busybox_image: str) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    repo = catalog.repos["alpha"]
    repo.remove("Dockerfile")
    repo.commit("oops")
    repo.move_tag("v1.0.0")
    result, _ = run_adopt(catalog, tmp_path / "ws", "alpha")
    assert outcomes(result) == {"alpha": Outcome.FAILED}
    failed = result.results[0]
    assert failed.message.startswith(f"Dockerfile not found: {tmp_path / 'ws'}/"), failed
    assert failed.message.endswith("/src/Dockerfile"), failed
    assert failed.hint is not None and "dockerfile path" in failed.hint


@pytest.mark.requires_docker
def test_push_records_the_registry_digest(
    tmp_path: Path, busybox_image: str, docker_registry: str
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()}, registry=f"{docker_registry}/testland")
    workspace = tmp_path / "ws"
    result, _ = run_adopt(catalog, workspace, "alpha", push=True)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}, result.results
    image = read_lock(workspace).apps["alpha"].images[0]
    assert image.digest and image.digest.startswith("sha256:")
    request = urllib.request.Request(
        f"http://{docker_registry}/v2/testland/alpha/manifests/1.0.0-{catalog.region}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    with urllib.request.urlopen(request) as reply:
        assert reply.headers["Docker-Content-Digest"] == image.digest
    # pushed and unchanged: nothing to do, even with --push
    again, _ = run_adopt(catalog, workspace, "alpha", push=True)
    assert outcomes(again) == {"alpha": Outcome.UP_TO_DATE}


@pytest.mark.requires_docker
def test_push_refused_by_registry_fails_the_app(tmp_path: Path, busybox_image: str) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()}, registry="127.0.0.1:1/testland")
    result, _ = run_adopt(catalog, tmp_path / "ws", "alpha", push=True)
    assert outcomes(result) == {"alpha": Outcome.FAILED}
    assert "127.0.0.1:1" in result.results[0].message
    assert "alpha" not in read_lock(tmp_path / "ws").apps


@pytest.mark.requires_docker
def test_interrupted_run_is_consistent_and_resumes(tmp_path: Path, busybox_image: str) -> None:
    # The token keeps the engine's layer cache from answering the slow step at once.
    slow = f"FROM busybox:1.36\nRUN echo {catalog_token()} && sleep 30\nCOPY www/ /www/\n"
    catalog = make_catalog(tmp_path, {"alpha": (), "slow": ()}, dockerfiles={"slow": slow})
    workspace = tmp_path / "ws"
    command = [
        sys.executable,
        "-m",
        "smartshare",
        "adopt",
        "alpha",
        "slow",
        *catalog.cli_options(workspace),
        "--jobs",
        "2",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (workspace / "smartshare.lock").exists() and "alpha" in read_lock(workspace).apps:
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("alpha was never recorded")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    lock = read_lock(workspace)
    assert set(lock.apps) == {"alpha"}
    assert not (workspace / "apps/slow").exists()
    # the next run finishes the job (with a quick Dockerfile this time)
    repo = catalog.repos["slow"]
    repo.write("Dockerfile", "FROM busybox:1.36\nCOPY www/ /www/\n")
    repo.commit("faster")
    repo.move_tag("v1.0.0")
    result, _ = run_adopt(catalog, workspace, "alpha", "slow")
    assert outcomes(result) == {"alpha": Outcome.UP_TO_DATE, "slow": Outcome.ADOPTED}


def test_force_redoes_everything(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    started = datetime.now(UTC).replace(microsecond=0)
    run_adopt(catalog, workspace, "alpha", build=False)
    # The lock keeps the time to the second: an adoption time no run of this test
    # can write tells whether the entry was recorded again.
    lock = workspace / "smartshare.lock"
    adopted_at = read_lock(workspace).apps["alpha"].adopted_at
    assert datetime.fromisoformat(adopted_at) >= started
    long_ago = "2001-02-03T04:05:06+00:00"
    lock.write_text(lock.read_text().replace(adopted_at, long_ago))
    before = read_lock(workspace).apps["alpha"]
    assert before.adopted_at == long_ago
    page = workspace / "apps/alpha/src/www/index.html"
    page_inode = page.stat().st_ino
    # Without --force: nothing to do, nothing recorded.
    plain, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(plain) == {"alpha": Outcome.UP_TO_DATE}
    assert read_lock(workspace).apps["alpha"] == before
    assert page.stat().st_ino == page_inode

    result, events = run_adopt(catalog, workspace, "alpha", build=False, force=True)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}
    assert result.results[0].message == "--force"
    assert any(e.phase is Phase.FETCHING for e in events)
    after = read_lock(workspace).apps["alpha"]
    assert datetime.fromisoformat(after.adopted_at) >= started
    # Recorded again as it was: only the time and the adoption (its baseline) differ.
    assert after.adoption_id != before.adoption_id
    assert (
        after.model_copy(
            update={
                "adopted_at": long_ago,
                "adoption_id": before.adoption_id,
                "history": [],
                "first_adopted_at": before.first_adopted_at,
            }
        )
        == before
    )
    # The adoption it replaced is the first of its history; it was first adopted back then.
    assert [h.adoption_id for h in after.history] == [before.adoption_id]
    assert after.first_adopted_at == before.first_adopted_at
    # The source tree was exported and rendered again, not left in place.
    assert page.stat().st_ino != page_inode


def test_disk_write_failure_is_clear_and_leaves_the_app_out(tmp_path: Path) -> None:
    """A file size limit makes every large write fail, as a full disk would."""
    catalog = make_catalog(tmp_path, {"alpha": (), "big": ()})
    big = catalog.root / "manifests/apps/big.yaml"
    big.write_text(big.read_text().replace("page/index.html.j2", "page/big.html.j2"))
    catalog.write("templates/page/big.html.j2", "{{ params.greeting }}\n" + "x" * 200_000 + "\n")
    workspace = tmp_path / "ws"
    # Warm the git cache without a limit, so only the workspace writes hit it.
    run_adopt(catalog, tmp_path / "warm", "alpha", "big", build=False)
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "from smartshare.cli import main\n"
        "sys.argv = ['smartshare', 'adopt', 'alpha', 'big', '--no-build', '--format', 'json',\n"
        f"            '--region', {str(catalog.region_file)!r},\n"
        f"            '--workspace', {str(workspace)!r},\n"
        f"            '--catalog', {str(catalog.root)!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    apps = {a["app"]: a for a in json.loads(done.stdout)["apps"]}
    assert apps["alpha"]["result"] == "adopted"
    assert apps["big"]["result"] == "failed"
    # The write that failed, and why (EFBIG: what the size limit stands in for).
    assert apps["big"]["message"].startswith(f"cannot write {workspace}/"), apps["big"]
    assert apps["big"]["message"].endswith("/src/www/index.html: File too large"), apps["big"]
    assert set(read_lock(workspace).apps) == {"alpha"}
    assert not (workspace / "apps/big").exists()
    assert list((workspace / ".smartshare/tmp").iterdir()) == []


def test_a_second_run_on_a_busy_workspace_is_refused_without_touching_it(tmp_path: Path) -> None:
    from smartshare.state import workspace as ws

    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    marker = ws.scratch_dir(workspace) / "other-run-in-progress"
    with ws.run_lock(workspace):
        marker.mkdir()
        before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in workspace.rglob("*")}
        result = invoke(
            catalog, "adopt", "alpha", "--workspace", str(workspace), "--no-build", "--force"
        )
        assert result.exit_code == 3, result.output
        assert f"another smartshare run is using the workspace {workspace}" in result.stderr
        # Nothing in it was written, replaced or removed: the other run's scratch
        # space included.
        after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in workspace.rglob("*")}
        assert after == before
        assert marker in after


def test_apps_others_wait_for_start_first(tmp_path: Path) -> None:
    from smartshare.catalog.graph import critical_path_first, dependency_order
    from smartshare.catalog.load import load_catalog

    catalog_files = make_catalog(
        tmp_path, {"aaa": (), "bbb": (), "zzz": (), "needs-zzz": ("zzz",), "top": ("needs-zzz",)}
    )
    catalog = load_catalog(catalog_files.root)
    order = dependency_order(catalog, ["aaa", "bbb", "top"])
    assert order.index("zzz") < order.index("needs-zzz") < order.index("top")
    assert critical_path_first(catalog, order) == ["zzz", "needs-zzz", "aaa", "bbb", "top"]


# -- hostile sources, interrupts and what the engine is left with ----------------


def _image_bytes(tag: str) -> bytes:
    """Every file of every layer of the image ``tag``; empty when the engine has none."""
    try:
        image = docker_client().images.get(tag)
    except docker.errors.ImageNotFound:
        return b""
    return engineimages.layer_bytes(b"".join(image.save(named=True)))


@pytest.mark.requires_docker
def test_a_build_context_through_a_symlink_to_the_scratch_folder_is_refused(
    tmp_path: Path, busybox_image: str
) -> None:
    """`ctx -> ..` with `COPY . /leak/` once copied the runtime folder into the image."""
    catalog = make_catalog(
        tmp_path, {"alpha": ()}, dockerfiles={"alpha": "FROM busybox:1.36\nCOPY . /leak/\n"}
    )
    catalog.repos["alpha"].symlink("ctx", "..")
    catalog.repos["alpha"].commit("a context beside the source tree")
    catalog.repos["alpha"].move_tag("v1.0.0")
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace('context: "."', "context: ctx")
        .replace("dockerfile: Dockerfile", "dockerfile: src/Dockerfile")
    )
    workspace = tmp_path / "ws"
    result, _ = run_adopt(catalog, workspace, "alpha")
    assert SECRET_VALUE.encode() not in _image_bytes(catalog.tag("alpha"))
    assert outcomes(result) == {"alpha": Outcome.FAILED}
    assert "symbolic link" in result.results[0].message
    assert "ctx" in result.results[0].message
    assert not (workspace / "apps/alpha").exists()


@pytest.mark.requires_docker
def test_a_build_context_through_a_symlink_to_the_workspace_is_refused(
    tmp_path: Path, busybox_image: str
) -> None:
    """`ctx -> ../../../..` once put the whole workspace (secrets, key, lock) into the image."""
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    first, _ = run_adopt(catalog, workspace, "alpha", build=False)
    assert outcomes(first) == {"alpha": Outcome.ADOPTED}
    key = (workspace / ".smartshare/key").read_bytes()
    # The publisher's next release: the context is the workspace, the Dockerfile the
    # one adopted before.
    repo = catalog.repos["alpha"]
    repo.write("Dockerfile", "FROM busybox:1.36\nCOPY . /leak/\n")
    repo.symlink("ctx", "../../../..")
    repo.commit("the whole workspace")
    repo.move_tag("v1.0.0")
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace('context: "."', "context: ctx")
        .replace("dockerfile: Dockerfile", "dockerfile: apps/alpha/src/Dockerfile")
    )
    (workspace / "apps/alpha/src/Dockerfile").write_text("FROM busybox:1.36\nCOPY . /leak/\n")
    result, _ = run_adopt(catalog, workspace, "alpha")
    layers = _image_bytes(catalog.tag("alpha"))
    assert SECRET_VALUE.encode() not in layers
    assert key not in layers
    assert outcomes(result) == {"alpha": Outcome.FAILED}
    assert "symbolic link" in result.results[0].message


@pytest.mark.requires_docker
def test_a_symlink_inside_the_context_brings_no_secret_into_the_image(
    tmp_path: Path, busybox_image: str
) -> None:
    catalog = make_catalog(
        tmp_path, {"alpha": ()}, dockerfiles={"alpha": "FROM busybox:1.36\nCOPY . /app/\n"}
    )
    repo = catalog.repos["alpha"]
    for name, target in {
        "www/scratch-runtime": "../../runtime/runtime.env",
        "www/final-runtime": "../../../../../runtime/alpha/runtime.env",
        "www/old-runtime": "../../runtime/runtime.env",
        "www/workspace": "../../../../..",
    }.items():
        repo.symlink(name, target)
    repo.commit("links out of the tree")
    repo.move_tag("v1.0.0")
    workspace = tmp_path / "ws"
    run_adopt(catalog, workspace, "alpha", build=False)
    result, _ = run_adopt(catalog, workspace, "alpha", force=True)
    assert outcomes(result) == {"alpha": Outcome.ADOPTED}, result.results
    layers = _image_bytes(catalog.tag("alpha"))
    assert b"Kabupaten Testland" in layers  # the scan sees what was copied
    assert SECRET_VALUE.encode() not in layers
    assert (workspace / ".smartshare/key").read_bytes() not in layers


def _made_from(api: Any, token: str) -> tuple[list[str], list[str]]:
    """Containers and images (any, dangling or not) a build step mentioning ``token`` made."""
    return engineimages.containers_made_from(api, token), engineimages.images_made_from(api, token)


@pytest.mark.requires_docker
def test_sigterm_during_a_silent_build_stops_it_at_once(tmp_path: Path, busybox_image: str) -> None:
    token = catalog_token()
    silent = (
        f"FROM busybox:1.36\nRUN echo {token} > /token\nRUN echo {token} started && sleep 120\n"
    )
    catalog = make_catalog(tmp_path, {"silent": ()}, dockerfiles={"silent": silent})
    workspace = tmp_path / "ws"
    argv = ["adopt", "silent", "--region", str(catalog.region_file)]
    argv += ["--workspace", str(workspace), "--catalog", str(catalog.root)]
    process = subprocess.Popen(
        [sys.executable, "-m", "smartshare", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    api = docker_client().api
    deadline = time.monotonic() + 120
    while not any(
        f"{token} started" in c.get("Command", "")
        for c in api.containers(filters={"status": "running"})
    ):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"the silent step never started: {process.communicate()[1].decode()}")
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    try:
        # The step sleeps 120 s: only a cancelled build ends within this.
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("SIGTERM did not stop the build")
    assert process.returncode == 130, stderr.decode()
    assert _made_from(api, token) == ([], [])
    assert "silent" not in read_lock(workspace).apps
    assert not (workspace / "apps/silent").exists()
    assert list((workspace / ".smartshare/tmp").iterdir()) == []


@pytest.mark.requires_docker
def test_builds_leave_no_dangling_image(tmp_path: Path, busybox_image: str) -> None:
    token = catalog_token()
    broken = f"FROM busybox:1.36\nRUN echo {token} > /token\nRUN exit 3\n"
    catalog = make_catalog(tmp_path, {"alpha": (), "broken": ()}, dockerfiles={"broken": broken})
    api = docker_client().api
    ours = {"dangling": True, "label": f"id.smartshare.region={catalog.region}"}
    workspace = tmp_path / "ws"
    first, _ = run_adopt(catalog, workspace, "alpha", "broken")
    assert outcomes(first) == {"alpha": Outcome.ADOPTED, "broken": Outcome.FAILED}
    replaced = read_lock(workspace).apps["alpha"].images[0].image_id
    assert api.images(filters=ours, quiet=True) == []
    # A rebuild moves the tag: the image it replaced goes, with its unlabelled parent.
    parent = api.inspect_image(replaced)["Parent"]
    assert parent.startswith("sha256:"), "the labelled image has the build as its parent"
    again, _ = run_adopt(catalog, workspace, "alpha", "broken", force=True)
    assert outcomes(again) == {"alpha": Outcome.ADOPTED, "broken": Outcome.FAILED}
    assert read_lock(workspace).apps["alpha"].images[0].image_id != replaced
    assert api.images(filters=ours, quiet=True) == []
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(replaced)
    assert parent not in api.images(filters={"dangling": True}, quiet=True)
    # The failed build's own intermediate image went too.
    assert _made_from(api, token) == ([], [])
