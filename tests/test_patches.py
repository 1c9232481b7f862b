"""Region patches (``apps.<app>.patches``) and the baseline adopt keeps: real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartshare.adoption.events import Outcome
from smartshare.adoption.plan import make_plan
from smartshare.adoption.runner import adopt
from smartshare.catalog.checks import validate
from smartshare.cli import app as cli_app
from smartshare.errors import InvalidInputError, PatchError, UnsafePathError
from smartshare.state import baseline
from smartshare.state.lockfile import read_lock

from catalogs import SECRET_VALUE, CatalogFixture, add_patch, isolate, make_catalog, source_patch


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def run(catalog: CatalogFixture, workspace: Path, *apps: str) -> Outcome:
    result = adopt(
        apps=list(apps),
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert len(result.results) == len(apps)
    return result.results[0].outcome


def test_adopt_applies_patches_records_them_and_keeps_a_baseline(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-verbose.patch", patch)
    workspace = tmp_path / "ws"
    plan = make_plan(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert plan.entries[0].patches == ["patches/alpha/0001-verbose.patch"]
    assert run(catalog, workspace, "alpha") is Outcome.ADOPTED
    start = workspace / "apps/alpha/src/bin/start.sh"
    assert "exec httpd -f -v" in start.read_text()
    assert start.stat().st_mode & 0o111  # the executable bit as git stores it
    entry = read_lock(workspace).apps["alpha"]
    assert [p.path for p in entry.patches] == ["patches/alpha/0001-verbose.patch"]
    assert entry.patches[0].digest.startswith("sha256:")
    unpatched = catalog.repos["alpha"].git("rev-parse", "HEAD^{tree}")
    assert entry.tree_digest is not None and entry.tree_digest != unpatched

    # The baseline: each file as rendered, runtime files (secrets) for the owner only.
    assert entry.adoption_id is not None
    assert baseline.list_baselines(workspace, "alpha") == [entry.adoption_id]
    folder = baseline.baseline_dir(workspace, "alpha", entry.adoption_id)
    assert folder.stat().st_mode & 0o777 == 0o700
    runtime = folder / "runtime/runtime.env"
    assert runtime.read_text() == f"API_TOKEN={SECRET_VALUE}\n"
    assert runtime.stat().st_mode & 0o777 == 0o600
    page = baseline.read_file(workspace, "alpha", entry.adoption_id, "image", "www/index.html")
    assert page == (workspace / "apps/alpha/src/www/index.html").read_bytes()
    record = baseline.read_record(workspace, "alpha", entry.adoption_id)
    assert record.entry.source.commit == entry.source.commit
    assert record.manifest["version"] == "1.0.0"
    assert SECRET_VALUE not in (folder / baseline.RECORD_NAME).read_text()

    # Nothing changed: up to date; a changed patch adopts again (and would rebuild).
    assert run(catalog, workspace, "alpha") is Outcome.UP_TO_DATE
    build_key = entry.build_key
    patch_file = catalog.region_file.parent / "patches/alpha/0001-verbose.patch"
    patch_file.write_text(patch.replace("-f -v", "-f -vv"))
    result = adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert result.results[0].outcome is Outcome.ADOPTED
    assert "region patches changed" in result.results[0].message
    assert "exec httpd -f -vv" in start.read_text()
    again = read_lock(workspace).apps["alpha"]
    assert again.build_key != build_key
    assert len(baseline.list_baselines(workspace, "alpha")) == 2


def test_patches_apply_in_a_workspace_named_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-verbose.patch", patch)
    monkeypatch.chdir(tmp_path)
    # git apply runs in the source tree: the patch file is named to it absolutely.
    assert run(catalog, Path("ws"), "alpha") is Outcome.ADOPTED
    assert "exec httpd -f -v" in (tmp_path / "ws/apps/alpha/src/bin/start.sh").read_text()


def test_a_patch_that_does_not_apply_names_patch_and_hunk_and_writes_nothing(
    tmp_path: Path,
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-bad.patch", patch.replace("exec httpd -f\n", "exec nope\n"))
    workspace = tmp_path / "ws"
    result = adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    failed = result.results[0]
    assert failed.outcome is Outcome.FAILED
    assert isinstance(failed.error, PatchError)
    assert "patches/alpha/0001-bad.patch" in failed.message
    assert "bin/start.sh:1" in failed.message  # the hunk: file and line
    assert not (workspace / "apps/alpha").exists()
    assert "alpha" not in read_lock(workspace).apps
    # The CLI: exit 1, the patch named.
    outcome = CliRunner().invoke(
        cli_app,
        [
            "adopt",
            "alpha",
            "--no-build",
            *catalog.cli_options(workspace),
        ],
    )
    assert outcome.exit_code == 1, outcome.output
    assert "0001-bad.patch" in outcome.output


def test_validate_checks_the_patches(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    add_patch(catalog, "alpha", "0001-ok.patch", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
    assert validate(catalog_root=catalog.root).valid
    profile = catalog.region_file.read_text()
    (catalog.region_file.parent / "patches/alpha/binary.patch").write_bytes(b"\x00\x01\x02")
    outside = tmp_path / "outside.patch"
    outside.write_text("--- a/x\n")
    (catalog.region_file.parent / "patches/alpha/link.patch").symlink_to(outside)
    for listed, expected in [
        ("patches/alpha/missing.patch", "no such file"),
        ("../outside.patch", ".."),
        ("patches/alpha/binary.patch", "is not text"),
        ("patches/alpha/link.patch", "outside the profile's folder"),
    ]:
        catalog.region_file.write_text(
            profile.replace("[patches/alpha/0001-ok.patch]", f"[{listed}]")
        )
        report = validate(catalog_root=catalog.root)
        messages = [p.message for p in report.problems if p.field.startswith("apps.alpha.patches")]
        assert any(expected in m for m in messages), (listed, messages)
        with pytest.raises((InvalidInputError, UnsafePathError)):
            run(catalog, tmp_path / "ws", "alpha")
    # 'patches' is no parameter: a manifest may not declare one so named.
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(manifest.read_text().replace("name: greeting", "name: patches"))
    report = validate(catalog_root=catalog.root)
    assert any("'patches' is reserved" in p.message for p in report.problems)


def test_an_existing_workspace_gets_its_baseline_on_the_next_adopt(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    assert run(catalog, workspace, "alpha") is Outcome.ADOPTED
    # As a smartshare before baselines left it.
    lock_path = workspace / "smartshare.lock"
    data = json.loads(lock_path.read_text())
    entry = data["apps"]["alpha"]
    for key in ("adoption_id", "tree_digest", "patches", "attention"):
        entry.pop(key, None)
    lock_path.write_text(json.dumps(data))
    for folder in baseline.baselines_dir(workspace, "alpha").iterdir():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()
    assert run(catalog, workspace, "alpha") is Outcome.UP_TO_DATE
    entry_now = read_lock(workspace).apps["alpha"]
    assert entry_now.adoption_id is not None
    assert baseline.list_baselines(workspace, "alpha") == [entry_now.adoption_id]
    assert entry_now.tree_digest == catalog.repos["alpha"].git("rev-parse", "HEAD^{tree}")
