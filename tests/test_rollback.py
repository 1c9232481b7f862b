"""``smartshare history`` and ``rollback``: real git repositories, two versions, real images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_upgrade import adopt_v1, edit, prepared, release_v2, snapshot, two_versions
from typer.testing import CliRunner, Result

from smartshare.cli import app as cli_app
from smartshare.state import baseline, history
from smartshare.state.lockfile import read_lock
from smartshare.upgrading.rollback import rollback
from smartshare.upgrading.runner import upgrade
from smartshare.upgrading.steps import UpgradeOutcome

from catalogs import SECRET_VALUE, CatalogFixture, add_patch, isolate, make_catalog, source_patch


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def run(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(cli_app, [*args, "--workspace", str(workspace)])


def upgraded(tmp_path: Path, *, build: bool = False) -> tuple[CatalogFixture, Path]:
    """alpha 1.0.0 adopted with a patch, hand-edited, upgraded (cleanly) to 2.0.0."""
    catalog, workspace = prepared(tmp_path, conflicting=False, build=build)
    result = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=build,
    )
    assert [a.outcome for a in result.apps] == [UpgradeOutcome.UPGRADED], result.apps[0].message
    return catalog, workspace


def test_history_lists_adoptions_newest_first(tmp_path: Path) -> None:
    catalog, workspace = upgraded(tmp_path)
    shown = run(workspace, "history", "alpha", "--format", "json")
    assert shown.exit_code == 0, shown.output
    adoptions = json.loads(shown.output)["adoptions"]
    assert [(a["version"], a["current"]) for a in adoptions] == [("2.0.0", True), ("1.0.0", False)]
    assert all(a["baseline_kept"] for a in adoptions)
    entry = read_lock(workspace).apps["alpha"]
    assert adoptions[0]["adoption_id"] == entry.adoption_id
    assert adoptions[1]["commit"] == catalog.repos["alpha"].rev("v1.0.0")
    assert adoptions[0]["files_digest"] != adoptions[1]["files_digest"]
    assert entry.first_adopted_at == entry.history[0].adopted_at
    assert entry.upgraded_at == entry.adopted_at
    table = run(workspace, "history", "alpha")
    assert table.exit_code == 0 and "current" in table.output and "1.0.0" in table.output
    missing = run(workspace, "history", "beta")
    assert missing.exit_code == 2 and "not adopted" in missing.output


def test_roll_back_and_forward_again(tmp_path: Path) -> None:
    catalog, workspace = upgraded(tmp_path)
    page = workspace / "apps/alpha/src/www/index.html"
    runtime = workspace / "runtime/alpha/runtime.env"
    v2 = read_lock(workspace).apps["alpha"]
    back = run(workspace, "rollback", "alpha", "--format", "json")
    assert back.exit_code == 0, back.output
    done = json.loads(back.output)
    assert (done["from"]["version"], done["to"]["version"]) == ("2.0.0", "1.0.0")
    entry = read_lock(workspace).apps["alpha"]
    assert entry.version == "1.0.0" and entry.source.commit == catalog.repos["alpha"].rev("v1.0.0")
    assert [h.adoption_id for h in entry.history] == [v2.adoption_id]
    assert entry.upgraded_at is not None and entry.upgraded_at >= v2.adopted_at
    # The files as 1.0.0 was adopted: its source (the patch applied again), its rendering.
    assert '<h1 class="big">' not in page.read_text() and "Melayani" not in page.read_text()
    assert not (workspace / "apps/alpha/src/NEWS").exists()
    assert "exec httpd -f -v" in (workspace / "apps/alpha/src/bin/start.sh").read_text()
    assert runtime.stat().st_mode & 0o777 == 0o600 and SECRET_VALUE in runtime.read_text()
    assert SECRET_VALUE not in back.output
    status = CliRunner().invoke(
        cli_app, ["status", "-w", str(workspace), "--catalog", str(catalog.root), "-f", "json"]
    )
    # No file drifted; only the catalogue's newer version is noted.
    assert json.loads(status.output)["apps"][0]["drift"] == ["catalogue has version 2.0.0"]
    # Forward again: 2.0.0 as the upgrade wrote it, the merged hand edit included.
    forward = rollback(app="alpha", workspace=workspace)
    assert (forward.from_version, forward.to_version) == ("1.0.0", "2.0.0")
    again = read_lock(workspace).apps["alpha"]
    assert again.adoption_id == v2.adoption_id and again.version == "2.0.0"
    assert [h.version for h in again.history] == ["1.0.0"]
    assert '<p class="intro">Lapor!</p>' in page.read_text()
    assert '<h1 class="big">' in page.read_text()
    assert (workspace / "apps/alpha/src/NEWS").is_file()
    # Both baselines are still listed, so none was pruned.
    assert len(baseline.list_baselines(workspace, "alpha")) == 2


def test_hand_edits_since_the_adoption_are_refused_unless_forced(tmp_path: Path) -> None:
    _catalog, workspace = upgraded(tmp_path)
    page = workspace / "apps/alpha/src/www/index.html"
    edit(page, "<p>line 9</p>", "<p>edited after the upgrade</p>")
    before = snapshot(workspace)
    refused = run(workspace, "rollback", "alpha")
    assert refused.exit_code == 1, refused.output
    assert "image:www/index.html" in refused.output and "--force" in refused.output
    assert snapshot(workspace) == before
    forced = run(workspace, "rollback", "alpha", "--force", "--format", "json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output)["overwritten"] == ["image:www/index.html"]
    assert "edited after the upgrade" not in page.read_text()


def test_what_cannot_be_returned_to_is_named(tmp_path: Path) -> None:
    catalog = two_versions(tmp_path)
    workspace = tmp_path / "ws"
    adopt_v1(catalog, workspace)
    none = run(workspace, "rollback", "alpha")
    assert none.exit_code == 2 and "no earlier adoption" in none.output
    release_v2(catalog)
    upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    entry = read_lock(workspace).apps["alpha"]
    unknown = run(workspace, "rollback", "alpha", "--to", "20000101T000000Z-abcdef")
    assert unknown.exit_code == 2 and entry.history[0].adoption_id in unknown.output
    current = run(workspace, "rollback", "alpha", "--to", entry.adoption_id or "")
    assert current.exit_code == 2 and "current" in current.output
    # A baseline removed by hand: named, nothing changed.
    baseline.remove_baseline(workspace, "alpha", entry.history[0].adoption_id)
    shown = json.loads(run(workspace, "history", "alpha", "--format", "json").output)
    assert [a["baseline_kept"] for a in shown["adoptions"]] == [True, False]
    before = snapshot(workspace)
    gone = run(workspace, "rollback", "alpha")
    assert gone.exit_code == 2 and "baseline" in gone.output
    assert snapshot(workspace) == before


def test_an_upgrade_needing_attention_is_rolled_back_but_never_returned_to(
    tmp_path: Path,
) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=True)
    profile = catalog.region_file.read_text()
    catalog.region_file.write_text(
        profile.replace("    patches: [patches/alpha/0001-verbose.patch]\n", "")
    )
    marked = CliRunner().invoke(
        cli_app,
        [
            "upgrade",
            "alpha",
            "--conflict",
            "markers",
            "--no-build",
            *catalog.cli_options(workspace),
        ],
    )
    assert marked.exit_code == 0, marked.output
    page = workspace / "apps/alpha/src/www/index.html"
    assert "<<<<<<< " in page.read_text()
    # The markers are no hand edit: rolling back abandons the upgrade.
    back = run(workspace, "rollback", "alpha")
    assert back.exit_code == 0, back.output
    entry = read_lock(workspace).apps["alpha"]
    assert entry.version == "1.0.0" and entry.attention is None
    assert "<<<<<<< " not in page.read_text()
    assert entry.history[0].attention
    refused = run(workspace, "rollback", "alpha", "--to", entry.history[0].adoption_id)
    assert refused.exit_code == 2 and "attention" in refused.output
    assert read_lock(workspace).apps["alpha"].version == "1.0.0"


def test_history_is_bounded_and_only_dropped_baselines_are_pruned(tmp_path: Path) -> None:
    catalog = two_versions(tmp_path)
    workspace = tmp_path / "ws"
    adopt_v1(catalog, workspace)
    entry = read_lock(workspace).apps["alpha"]
    previous = entry
    dropped: list[str] = []
    for number in range(history.HISTORY_LIMIT + 2):
        new = entry.model_copy(
            deep=True,
            update={"adoption_id": f"29990101T0000{number:02d}Z-000000", "history": []},
        )
        dropped += history.succeed(previous, new)
        previous = new
    assert len(previous.history) == history.HISTORY_LIMIT
    assert previous.history[0].adoption_id == "29990101T000020Z-000000"
    assert dropped == [entry.adoption_id, "29990101T000000Z-000000"]
    assert previous.first_adopted_at == entry.adopted_at
    history.prune(workspace, "alpha", dropped)
    assert baseline.list_baselines(workspace, "alpha") == []


# -- with a real engine ------------------------------------------------------------


@pytest.mark.requires_docker
def test_rollback_moves_the_tags_to_the_recorded_images(tmp_path: Path, busybox_image: str) -> None:
    import docker

    catalog, workspace = upgraded(tmp_path, build=True)
    client = docker.from_env()
    v2 = read_lock(workspace).apps["alpha"]
    v1_id = v2.history[0].images[0].image_id
    assert v1_id and v2.images[0].image_id != v1_id
    # 1.0.0's tag moved by hand: the rollback puts it back on the recorded image.
    client.images.get(v2.images[0].tags[0]).tag(catalog.tag("alpha"))
    back = run(workspace, "rollback", "alpha")
    assert back.exit_code == 0, back.output
    restored = read_lock(workspace).apps["alpha"].images[0]
    assert restored.image_id == v1_id and restored.tags == [catalog.tag("alpha")]
    assert client.images.get(catalog.tag("alpha")).id == v1_id
    forward = run(workspace, "rollback", "alpha")
    assert forward.exit_code == 0, forward.output
    assert client.images.get(v2.images[0].tags[0]).id == v2.images[0].image_id
    # 1.0.0's image removed from the engine, never pushed: exit 1, saying what to do.
    client.images.remove(v1_id, force=True)
    before = snapshot(workspace)
    gone = run(workspace, "rollback", "alpha")
    assert gone.exit_code == 1, gone.output
    assert "never pushed" in gone.output and "--to 1.0.0" in gone.output
    assert snapshot(workspace) == before
    assert client.images.get(v2.images[0].tags[0]).id == v2.images[0].image_id


@pytest.mark.requires_docker
def test_rollback_pulls_a_pushed_image_by_its_digest(
    tmp_path: Path, busybox_image: str, docker_registry: str
) -> None:
    import docker

    catalog = make_catalog(tmp_path, {"alpha": ()}, registry=f"{docker_registry}/rollback")
    catalog.write("templates/page/index.html.j2", "<h1>{{ params.greeting | e }}</h1>\n")
    workspace = tmp_path / "ws"
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-verbose.patch", patch)
    from smartshare.adoption.runner import adopt

    adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        push=True,
    )
    release_v2(catalog)
    result = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        push=True,
    )
    assert result.apps[0].outcome == UpgradeOutcome.UPGRADED, result.apps[0].message
    entry = read_lock(workspace).apps["alpha"]
    old = entry.history[0].images[0]
    assert old.digest and old.image_id
    client = docker.from_env()
    # Only the registry has 1.0.0's image now.
    client.images.remove(old.image_id, force=True)
    back = rollback(app="alpha", workspace=workspace)
    assert [i.source for i in back.images] == ["registry"]
    restored = read_lock(workspace).apps["alpha"].images[0]
    assert client.images.get(restored.tags[0]).id == restored.image_id
    assert client.images.get(restored.tags[0]).labels["org.opencontainers.image.version"] == "1.0.0"


def test_a_rollback_that_fails_midway_leaves_the_app_as_it_was(tmp_path: Path) -> None:
    import shutil

    catalog, workspace = upgraded(tmp_path)
    # The git cache is gone and the forge unreachable: the old source cannot be had.
    shutil.rmtree(tmp_path / "cache")
    repo = catalog.repos["alpha"].path
    repo.rename(repo.with_name("moved"))
    before = snapshot(workspace)
    failed = run(workspace, "rollback", "alpha")
    assert failed.exit_code == 3, failed.output
    assert snapshot(workspace) == before
    assert not list((workspace / ".smartshare/tmp").iterdir())
    # With the forge back, the same command finishes the rollback.
    repo.with_name("moved").rename(repo)
    done = run(workspace, "rollback", "alpha")
    assert done.exit_code == 0, done.output
    assert read_lock(workspace).apps["alpha"].version == "1.0.0"
