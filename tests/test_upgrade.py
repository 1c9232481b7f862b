"""``smartshare upgrade``: real git repositories, a catalogue with two versions, real builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from smartshare.adoption.events import Outcome
from smartshare.adoption.runner import adopt
from smartshare.cli import app as cli_app
from smartshare.errors import ConflictError, PinnedCommitMismatchError, UsageError
from smartshare.state import baseline
from smartshare.state.lockfile import read_lock
from smartshare.state.status import workspace_status
from smartshare.upgrading.runner import upgrade
from smartshare.upgrading.steps import UpgradeOutcome

from catalogs import (
    DOCKERFILE,
    SECRET_VALUE,
    CatalogFixture,
    add_patch,
    isolate,
    make_catalog,
    source_patch,
)

PAGE_V1 = """\
<html>
<h1>{{ params.greeting | e }}</h1>
<p class="intro">Layanan pengaduan</p>
<p>line 4</p>
<p>line 5</p>
<p>line 6</p>
<p>line 7</p>
<p class="region">{{ region.title | e }}</p>
<p>line 9</p>
<p>line 10</p>
<p>line 11</p>
<footer>{{ app.title | e }}</footer>
</html>
"""
# 2.0.0: the heading changes (where the conflicting hand edit is), a new parameter with a
# default goes into the footer, and the version is not rendered (so clean merges stay clean).
PAGE_V2 = PAGE_V1.replace("<h1>", '<h1 class="big">').replace(
    "<footer>{{ app.title | e }}</footer>",
    "<footer>{{ app.title | e }} - {{ params.motto | e }}</footer>",
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def two_versions(tmp_path: Path, *, source_change: str | None = None) -> CatalogFixture:
    """alpha 1.0.0 in the catalogue; :func:`release_v2` adds 2.0.0."""
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/index.html.j2", PAGE_V1)
    return catalog


def release_v2(catalog: CatalogFixture, *, start: str | None = None) -> None:
    """Publish alpha 2.0.0: new source (tag v2.0.0), new template, a new parameter.

    ``start``: a new last line for bin/start.sh (the line the region's patch changes).
    """
    repo = catalog.repos["alpha"]
    changes = {"Dockerfile": DOCKERFILE + "# 2.0.0\n", "NEWS": "2.0.0\n"}
    if start is not None:
        changes["bin/start.sh"] = f"#!/bin/sh\n{start}"
    repo.commit("2.0.0", files=changes)
    repo.tag("v2.0.0")
    manifests = catalog.root / "manifests"
    current = (manifests / "apps/alpha.yaml").read_text()
    (manifests / "versions/alpha").mkdir(parents=True)
    (manifests / "versions/alpha/1.0.0.yaml").write_text(current)
    catalog.write("templates/page/v2/index.html.j2", PAGE_V2)
    new = (
        current.replace('version: "1.0.0"', 'version: "2.0.0"')
        .replace("ref: v1.0.0", "ref: v2.0.0")
        .replace("src: page/index.html.j2", "src: page/v2/index.html.j2")
        .replace(
            "parameters:\n",
            "parameters:\n  - name: motto\n    type: string\n    default: Melayani\n",
        )
    )
    (manifests / "apps/alpha.yaml").write_text(new)


def adopt_v1(catalog: CatalogFixture, workspace: Path, *, build: bool = False) -> None:
    result = adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=build,
    )
    assert result.results[0].outcome is Outcome.ADOPTED, result.results[0].message


def cli(catalog: CatalogFixture, workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli_app,
        [
            *args,
            *catalog.cli_options(workspace),
        ],
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def snapshot(workspace: Path) -> dict[str, bytes]:
    """Every file of the workspace but scratch space, by path."""
    return {
        str(p.relative_to(workspace)): p.read_bytes()
        for p in sorted(workspace.rglob("*"))
        if p.is_file() and "/tmp/" not in str(p) and not p.name.endswith(".lock")
    } | {"smartshare.lock": (workspace / "smartshare.lock").read_bytes()}


def prepared(
    tmp_path: Path, *, conflicting: bool, build: bool = False
) -> tuple[CatalogFixture, Path]:
    """alpha 1.0.0 adopted, a hand edit and a region patch, and 2.0.0 released.

    ``conflicting``: the hand edit touches the heading, which 2.0.0 changes too,
    and 2.0.0 changes the line the patch changes.
    """
    catalog = two_versions(tmp_path)
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-verbose.patch", patch)
    workspace = tmp_path / "ws"
    adopt_v1(catalog, workspace, build=build)
    page = workspace / "apps/alpha/src/www/index.html"
    if conflicting:
        edit(page, "<h1>Selamat datang</h1>", "<h1>Selamat datang di Testland</h1>")
        release_v2(catalog, start="exec httpd -f -p 9090\n")
    else:
        edit(page, "<p>line 6</p>", '<p class="intro">Lapor!</p>')
        release_v2(catalog)
    return catalog, workspace


def test_clean_upgrade_keeps_the_hand_edit_and_the_patch(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=False)
    before = read_lock(workspace).apps["alpha"]
    dry = cli(catalog, workspace, "upgrade", "alpha", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    report: dict[str, Any] = json.loads(dry.output)["apps"][0]
    assert report["outcome"] == "would upgrade"
    assert (report["from_version"], report["to_version"]) == ("1.0.0", "2.0.0")
    assert report["source"] == {"changed": ["Dockerfile"], "added": ["NEWS"], "removed": []}
    results = {f["dest"]: f["result"] for f in report["files"]}
    assert results == {"www/index.html": "merged", "runtime.env": "unchanged"}
    assert report["parameters"] == {"added": ["motto"], "removed": []}
    assert report["patches"] == ["patches/alpha/0001-verbose.patch"]

    result = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert [a.outcome for a in result.apps] == [UpgradeOutcome.UPGRADED]
    page = (workspace / "apps/alpha/src/www/index.html").read_text()
    assert '<p class="intro">Lapor!</p>' in page  # the hand edit, kept
    assert '<h1 class="big">' in page and "Melayani" in page  # the new version
    start = (workspace / "apps/alpha/src/bin/start.sh").read_text()
    assert "exec httpd -f -v" in start  # the patch, applied again
    assert (workspace / "apps/alpha/src/NEWS").is_file()
    after = read_lock(workspace).apps["alpha"]
    assert after.version == "2.0.0" and after.values["motto"] == "Melayani"
    assert after.adoption_id != before.adoption_id
    assert baseline.list_baselines(workspace, "alpha") == sorted(
        [before.adoption_id or "", after.adoption_id or ""]
    )
    # The new baseline is the new rendering, without the hand edit.
    kept = baseline.read_file(
        workspace, "alpha", after.adoption_id or "", "image", "www/index.html"
    )
    assert kept is not None and b"Lapor!" not in kept
    # Run again: up to date.
    again = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert [a.outcome for a in again.apps] == [UpgradeOutcome.UP_TO_DATE]


def test_dry_run_writes_nothing_and_shows_no_secret(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=True)
    runtime = workspace / "runtime/alpha/runtime.env"
    runtime.write_text(runtime.read_text() + "# edited\n")
    before = snapshot(workspace)
    for args in (("--format", "json"), ()):
        dry = cli(catalog, workspace, "upgrade", "alpha", "--dry-run", *args)
        assert dry.exit_code == 0, dry.output
        assert SECRET_VALUE not in dry.output
    assert snapshot(workspace) == before
    report = json.loads(cli(catalog, workspace, "upgrade", "--dry-run", "--format", "json").output)
    alpha = report["apps"][0]
    assert alpha["outcome"] == "would conflict"
    assert "image:www/index.html" in alpha["conflicts"]
    assert "source:bin/start.sh" in alpha["conflicts"]


def test_a_conflict_stops_the_app_on_its_old_version(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=True)
    # The patch no longer applies three ways: named, with its file, nothing written.
    before = snapshot(workspace)
    # Without an engine (--no-build): the conflicts come before any build.
    result = cli(catalog, workspace, "upgrade", "alpha", "--no-build")
    assert result.exit_code == 1, result.output
    assert "0001-verbose.patch" in result.output and "bin/start.sh" in result.output
    assert snapshot(workspace) == before
    # Without the patch, the hand edit's conflict is named.
    profile = catalog.region_file.read_text()
    catalog.region_file.write_text(
        profile.replace("    patches: [patches/alpha/0001-verbose.patch]\n", "")
    )
    outcome = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    failed = outcome.apps[0]
    assert failed.outcome == UpgradeOutcome.FAILED
    assert isinstance(failed.error, ConflictError)
    assert "image file www/index.html" in failed.message
    entry = read_lock(workspace).apps["alpha"]
    assert entry.version == "1.0.0" and entry.attention is None


def test_conflict_markers_need_attention_until_resolved(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=True)
    # Without an engine (--no-build); that markers are never built is checked with one
    # in test_acceptance_conflicts_then_markers_with_real_builds.
    result = cli(
        catalog,
        workspace,
        "upgrade",
        "alpha",
        "--conflict",
        "markers",
        "--no-build",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    alpha = json.loads(result.output)["apps"][0]
    assert alpha["outcome"] == "needs attention"
    assert sorted(alpha["conflicts"]) == ["image:www/index.html", "source:bin/start.sh"]
    page = workspace / "apps/alpha/src/www/index.html"
    start = workspace / "apps/alpha/src/bin/start.sh"
    for path in (page, start):
        assert "<<<<<<< " in path.read_text() and ">>>>>>> " in path.read_text()
    entry = read_lock(workspace).apps["alpha"]
    assert entry.version == "2.0.0" and entry.attention is not None
    status = workspace_status(workspace=workspace, catalog_root=catalog.root)
    assert status.apps[0].attention is not None
    shown = CliRunner().invoke(
        cli_app, ["status", "--workspace", str(workspace), "--catalog", str(catalog.root)]
    )
    assert "needs attention" in shown.output
    # adopt and deploy wait for the resolution.
    refused = cli(catalog, workspace, "adopt", "alpha", "--no-build")
    assert refused.exit_code == 2 and "--resolved" in refused.output
    refused = cli(catalog, workspace, "deploy", "alpha", "--dry-run")
    assert refused.exit_code == 2 and "needs attention" in refused.output
    # --resolved refuses while a marker is left.
    early = cli(catalog, workspace, "upgrade", "alpha", "--resolved", "--no-build")
    assert early.exit_code == 1 and "www/index.html" in early.output
    page.write_text(page.read_text().split("<<<<<<< ")[0] + '<h1 class="big">Halo</h1>\n</html>\n')
    start.write_text("#!/bin/sh\nexec httpd -f -v -p 9090\n")
    done = cli(catalog, workspace, "upgrade", "alpha", "--resolved", "--no-build")
    assert done.exit_code == 0, done.output
    entry = read_lock(workspace).apps["alpha"]
    assert entry.attention is None and entry.version == "2.0.0"
    assert "Halo" in page.read_text()


def test_to_a_version_the_catalogue_lacks_lists_the_versions(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=False)
    result = cli(catalog, workspace, "upgrade", "alpha", "--to", "9.9.9")
    assert result.exit_code == 2
    assert "9.9.9" in result.output and "1.0.0, 2.0.0" in result.output
    # An older version stays addressable and valid.
    assert cli(catalog, workspace, "upgrade", "alpha", "--to", "1.0.0", "--dry-run").exit_code == 0
    assert CliRunner().invoke(cli_app, ["validate", "--catalog", str(catalog.root)]).exit_code == 0


def test_a_newer_manifest_pinned_to_another_commit_is_refused(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=False)
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    old_commit = catalog.repos["alpha"].rev("v1.0.0")
    edit(manifest, "ref: v2.0.0", f"ref: v2.0.0\n  commit: {old_commit}")
    before = snapshot(workspace)
    result = upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert result.apps[0].outcome == UpgradeOutcome.FAILED
    assert isinstance(result.apps[0].error, PinnedCommitMismatchError)
    assert snapshot(workspace) == before


def test_a_workspace_from_before_baselines_is_told_what_to_do(tmp_path: Path) -> None:
    catalog = two_versions(tmp_path)
    workspace = tmp_path / "ws"
    adopt_v1(catalog, workspace)
    lock_path = workspace / "smartshare.lock"
    data = json.loads(lock_path.read_text())
    data["apps"]["alpha"].pop("adoption_id")
    lock_path.write_text(json.dumps(data))
    release_v2(catalog)
    result = cli(catalog, workspace, "upgrade", "alpha")
    assert result.exit_code == 2
    assert "before smartshare kept baselines" in result.output
    assert "smartshare adopt alpha" in result.output
    with pytest.raises(UsageError):
        upgrade(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=workspace,
            catalog_root=catalog.root,
            build=False,
        )


# -- with a real engine ------------------------------------------------------------


@pytest.mark.requires_docker
def test_acceptance_conflicts_then_markers_with_real_builds(
    tmp_path: Path, busybox_image: str
) -> None:
    import docker

    catalog, workspace = prepared(tmp_path, conflicting=True, build=True)
    client = docker.from_env()
    v1_image = client.images.get(catalog.tag("alpha")).id
    before = snapshot(workspace)
    # Default: the app stays on 1.0.0, the conflict named.
    result = cli(catalog, workspace, "upgrade", "alpha")
    assert result.exit_code == 1, result.output
    assert "0001-verbose.patch" in result.output and "bin/start.sh" in result.output
    assert snapshot(workspace) == before
    assert read_lock(workspace).apps["alpha"].version == "1.0.0"
    # --conflict markers: the markers are in the files, status flags the app.
    marked = cli(catalog, workspace, "upgrade", "alpha", "--conflict", "markers")
    assert marked.exit_code == 0, marked.output
    assert "<<<<<<< " in (workspace / "apps/alpha/src/www/index.html").read_text()
    status = workspace_status(workspace=workspace, catalog_root=catalog.root)
    assert status.apps[0].attention is not None
    assert "www/index.html" in status.apps[0].attention
    # Nothing was built from the markers: the 1.0.0 image is still the one recorded.
    assert read_lock(workspace).apps["alpha"].images[0].image_id == v1_image


@pytest.mark.requires_docker
def test_acceptance_clean_upgrade_with_real_builds_survives_a_failed_build(
    tmp_path: Path, busybox_image: str
) -> None:
    import docker

    catalog = two_versions(tmp_path)
    patch = source_patch(catalog, "alpha", "exec httpd -f", "exec httpd -f -v", "bin/start.sh")
    add_patch(catalog, "alpha", "0001-verbose.patch", patch)
    workspace = tmp_path / "ws"
    adopt_v1(catalog, workspace, build=True)
    page = workspace / "apps/alpha/src/www/index.html"
    edit(page, "<p>line 6</p>", '<p class="intro">Lapor!</p>')
    release_v2(catalog)
    # 2.0.0's Dockerfile fails to build (upstream's mistake).
    repo = catalog.repos["alpha"]
    broken = repo.commit("2.0.0", files={"Dockerfile": DOCKERFILE + "RUN exit 3\n"})
    repo.move_tag("v2.0.0", to=broken)
    before = snapshot(workspace)
    failed = cli(catalog, workspace, "upgrade", "alpha")
    assert failed.exit_code == 3, failed.output
    assert snapshot(workspace) == before  # on 1.0.0: workspace and lock unchanged
    # The region fixes it with a patch of its own; the same command finishes the upgrade.
    fix = source_patch(catalog, "alpha", "RUN exit 3\n", "", "Dockerfile")
    add_patch(catalog, "alpha", "0002-build.patch", fix)
    profile = catalog.region_file.read_text()
    catalog.region_file.write_text(
        profile.replace(
            "[patches/alpha/0002-build.patch, patches/alpha/0001-verbose.patch]",
            "[patches/alpha/0001-verbose.patch, patches/alpha/0002-build.patch]",
        )
    )
    done = cli(catalog, workspace, "upgrade", "alpha")
    assert done.exit_code == 0, done.output
    entry = read_lock(workspace).apps["alpha"]
    assert entry.version == "2.0.0" and entry.built
    client = docker.from_env()
    image = client.images.get(entry.images[0].tags[0])
    assert image.labels["org.opencontainers.image.version"] == "2.0.0"
    served = client.containers.run(
        image.id, ["cat", "/www/index.html"], remove=True, network_mode="none"
    )
    assert b"Lapor!" in served  # the hand edit, built in
    assert b'<h1 class="big">' in served  # the new version
    assert "exec httpd -f -v" in (workspace / "apps/alpha/src/bin/start.sh").read_text()


def test_a_new_required_parameter_without_a_value_stops_only_its_app(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    workspace = tmp_path / "ws"
    result = adopt(
        apps=["alpha", "beta"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    assert [r.outcome for r in result.results] == [Outcome.ADOPTED, Outcome.ADOPTED]
    manifests = catalog.root / "manifests"
    for name, extra in (
        ("alpha", "  - name: district\n    type: string\n    required: true\n"),
        ("beta", ""),
    ):
        repo = catalog.repos[name]
        repo.commit("2.0.0", files={"NEWS": "2.0.0\n"})
        repo.tag("v2.0.0")
        current = (manifests / f"apps/{name}.yaml").read_text()
        (manifests / f"versions/{name}").mkdir(parents=True)
        (manifests / f"versions/{name}/1.0.0.yaml").write_text(current)
        (manifests / f"apps/{name}.yaml").write_text(
            current.replace('version: "1.0.0"', 'version: "2.0.0"')
            .replace("ref: v1.0.0", "ref: v2.0.0")
            .replace("parameters:\n", "parameters:\n" + extra)
        )
    for args in (("--dry-run",), ()):
        shown = cli(catalog, workspace, "upgrade", "--no-build", "--format", "json", *args)
        assert shown.exit_code == 1, shown.output
        apps = {a["app"]: a for a in json.loads(shown.stdout)["apps"]}
        assert apps["alpha"]["outcome"] == "failed"
        assert "alpha.district is required" in apps["alpha"]["message"]
        assert apps["beta"]["outcome"] == ("would upgrade" if args else "upgraded")
    lock = read_lock(workspace)
    assert (lock.apps["alpha"].version, lock.apps["beta"].version) == ("1.0.0", "2.0.0")


# -- adopt APP@VERSION: an older version the catalogue keeps -------------------------------


def test_adopt_an_older_version_then_upgrade_it(tmp_path: Path) -> None:
    catalog = two_versions(tmp_path)
    release_v2(catalog)
    workspace = tmp_path / "ws"
    done = cli(catalog, workspace, "adopt", "alpha@1.0.0", "--no-build")
    assert done.exit_code == 0, done.output
    entry = read_lock(workspace).apps["alpha"]
    assert (entry.version, entry.source.commit) == ("1.0.0", catalog.repos["alpha"].rev("v1.0.0"))
    page = workspace / "apps/alpha/src/www/index.html"
    assert "<h1>" in page.read_text() and "Melayani" not in page.read_text()
    # Named the same way again, it is up to date; plan says the same.
    again = cli(catalog, workspace, "adopt", "alpha@1.0.0", "--no-build", "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["apps"][0]["result"] == "up to date"
    plan = cli(catalog, workspace, "plan", "alpha@1.0.0", "--no-build", "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert '"version": "1.0.0"' in plan.stdout
    # The newer version is the catalogue's current one: upgrade takes the app there.
    upgraded = cli(catalog, workspace, "upgrade", "alpha", "--no-build")
    assert upgraded.exit_code == 0, upgraded.output
    assert read_lock(workspace).apps["alpha"].version == "2.0.0"
    assert '<h1 class="big">' in page.read_text() and "Melayani" in page.read_text()


def test_adopt_at_a_version_the_catalogue_lacks_lists_the_versions(tmp_path: Path) -> None:
    catalog = two_versions(tmp_path)
    release_v2(catalog)
    workspace = tmp_path / "ws"
    for command in ("adopt", "plan"):
        result = cli(catalog, workspace, command, "alpha@9.9.9", "--no-build")
        assert result.exit_code == 2, result.output
        assert "no version '9.9.9' of 'alpha'" in result.stderr
        assert "its versions: 1.0.0, 2.0.0" in result.stderr
    assert not (workspace / "smartshare.lock").exists()


@pytest.mark.parametrize(
    ("apps", "says"),
    [
        (["alpha@"], "'alpha@': name an app, or an app at a version"),
        (["@1.0.0"], "'@1.0.0': name an app, or an app at a version"),
        (["alpha@1.0.0@2.0.0"], "name an app, or an app at a version"),
        (["alpha@1.0.0", "alpha"], "'alpha' is named twice, at different versions"),
    ],
)
def test_adopt_app_at_version_syntax(tmp_path: Path, apps: list[str], says: str) -> None:
    catalog = two_versions(tmp_path)
    release_v2(catalog)
    workspace = tmp_path / "ws"
    result = cli(catalog, workspace, "adopt", *apps, "--no-build")
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert not (workspace / "smartshare.lock").exists()


def test_upgrade_takes_its_version_with_to(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=False)
    result = cli(catalog, workspace, "upgrade", "alpha@2.0.0", "--no-build")
    assert result.exit_code == 2, result.output
    assert "'alpha@2.0.0': upgrade takes the version with --to" in result.stderr
    assert read_lock(workspace).apps["alpha"].version == "1.0.0"
