"""Make the demo's forge: one git repository per app, standing in for Kota Tangerang's.

Usage: make_forge.py FORGE [APP...]  (no APP: every app of the catalogue)

Each repository is bare, at FORGE/diskominfo/<app>.git, with one commit per
version the catalogue holds (the older ones in manifests/versions/<app>/, oldest
first, then the current one on ``main``), each tagged with the ``ref`` its manifest
names.  Its source is the app's sample in demo/sources/ when there is one, else a
placeholder written from that version's manifest (demo/placeholder.py); an older
version of a sample is the sample with the files of demo/versions/<app>/<version>/
in place of its own.  Commits use a fixed author and date, so the same sources
always give the same commit ids and a re-run of the demo finds everything up to date.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from placeholder import PlaceholderError, write_placeholder

from smartshare.catalog.load import version_key

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests" / "apps"
OLDER_MANIFESTS = ROOT / "manifests" / "versions"
SOURCES = ROOT / "demo" / "sources"
OLDER_SOURCES = ROOT / "demo" / "versions"
FIXED_ENV = {
    "GIT_AUTHOR_NAME": "Diskominfo Kota Tangerang (demo)",
    "GIT_AUTHOR_EMAIL": "diskominfo@tangerangkota.go.id",
    "GIT_COMMITTER_NAME": "Diskominfo Kota Tangerang (demo)",
    "GIT_COMMITTER_EMAIL": "diskominfo@tangerangkota.go.id",
    "GIT_AUTHOR_DATE": "2026-01-05T09:00:00+07:00",
    "GIT_COMMITTER_DATE": "2026-01-05T09:00:00+07:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **FIXED_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def manifests_of(app: str) -> list[dict[str, Any]]:
    """The app's manifests, oldest version first, the current one last."""
    older = [
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((OLDER_MANIFESTS / app).glob("*.yaml"))
    ]
    older.sort(key=lambda manifest: version_key(str(manifest["version"])))
    return [*older, yaml.safe_load((MANIFESTS / f"{app}.yaml").read_text(encoding="utf-8"))]


def write_source(app: str, manifest: dict[str, Any], work: Path) -> None:
    """The app's source at ``manifest``'s version, in ``work`` (emptied first, .git kept)."""
    for entry in work.iterdir():
        if entry.name != ".git":
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if not (SOURCES / app).is_dir():
        write_placeholder(manifest, work)
        return
    shutil.copytree(SOURCES / app, work, symlinks=True, dirs_exist_ok=True)
    changed = OLDER_SOURCES / app / str(manifest["version"])
    if changed.is_dir():
        shutil.copytree(changed, work, symlinks=True, dirs_exist_ok=True)


def make_repo(app: str, forge: Path) -> str:
    bare = forge / "diskominfo" / f"{app}.git"
    if not bare.exists():
        bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", str(bare), cwd=forge)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / app
        work.mkdir()
        git("init", "--quiet", "-b", "main", cwd=work)
        tags = []
        for manifest in manifests_of(app):
            write_source(app, manifest, work)
            git("add", "-A", cwd=work)
            git("commit", "--quiet", "-m", f"{manifest['title']} {manifest['version']}", cwd=work)
            git("tag", "-f", manifest["source"]["ref"], cwd=work)
            tags.append(f"refs/tags/{manifest['source']['ref']}")
        git("push", "--quiet", "--force", str(bare), "main", *tags, cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def main() -> int:
    forge = Path(sys.argv[1]).resolve()
    apps = sys.argv[2:] or sorted(path.stem for path in MANIFESTS.glob("*.yaml"))
    forge.mkdir(parents=True, exist_ok=True)
    for app in apps:
        try:
            commit = make_repo(app, forge)
        except PlaceholderError as exc:
            print(f"make_forge: {exc}", file=sys.stderr)
            return 1
        kind = "sample" if (SOURCES / app).is_dir() else "placeholder"
        print(f"  {app:<20} {kind:<12} {commit[:12]}  {forge / 'diskominfo' / (app + '.git')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
