"""The demo's forge holds every app of the catalogue, and Badung can adopt them all.

``demo/make_forge.py`` turns the sample sources into git repositories and writes
a placeholder source (``demo/placeholder.py``) for each app without a sample.
Kabupaten Badung's profile gives every app the values it requires, so
``smartshare adopt --all --no-build`` succeeds through that forge, and each
placeholder's page, rendered into the workspace, belongs to Badung.  Only the
script and the command line run here, as a user would run them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BADUNG = REPO_ROOT / "manifests" / "regions" / "badung.yaml"
MANIFESTS = REPO_ROOT / "manifests" / "apps"
SAMPLES = REPO_ROOT / "demo" / "sources"
FORGE_PREFIX = "https://git.tangerangkota.go.id/diskominfo/"
PAGE_TEMPLATE = "_placeholder/index.html.j2"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


ALL_APPS = sorted(path.stem for path in MANIFESTS.glob("*.yaml"))
PLACEHOLDER_APPS = [app for app in ALL_APPS if not (SAMPLES / app).is_dir()]


@dataclass(frozen=True)
class Demo:
    forge: Path
    workspace: Path
    env: dict[str, str]
    secret_values: list[str]

    def make_forge(self) -> str:
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "demo" / "make_forge.py"), str(self.forge)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def adopt_all(self) -> dict[str, str]:
        """``adopt --all --no-build`` for Badung: the result of each app."""
        done = subprocess.run(
            [
                str(BIN / "smartshare"),
                "adopt",
                "--all",
                "--region",
                str(BADUNG),
                "--workspace",
                str(self.workspace),
                "--no-build",
                "--format",
                "json",
            ],
            cwd=self.workspace.parent,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr}"
        report = json.loads(done.stdout)
        return {entry["app"]: entry["result"] for entry in report["apps"]}


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    forge = tmp_path / "forge"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"source_rewrites": {FORGE_PREFIX: f"{forge.as_uri()}/diskominfo/"}}),
        encoding="utf-8",
    )
    drop = {"SMARTSHARE_CATALOG", "SMARTSHARE_CONFIG", "SMARTSHARE_CACHE_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        SMARTSHARE_CONFIG=str(config),
        SMARTSHARE_CACHE_DIR=str(tmp_path / "cache"),
        NO_COLOR="1",
    )
    names = sorted(set(re.findall(r"\benv:([A-Za-z_][A-Za-z0-9_]*)", BADUNG.read_text("utf-8"))))
    values = []
    for name in names:
        value = f"demo-secret-{secrets.token_hex(12)}"
        env[name] = value
        values.append(value)
    return Demo(forge=forge, workspace=tmp_path / "badung", env=env, secret_values=values)


def test_the_catalogue_has_placeholders_and_samples() -> None:
    assert len(ALL_APPS) == 16
    assert set(ALL_APPS) - set(PLACEHOLDER_APPS) == {
        "laksa",
        "lowongan-kerja",
        "perizinan-online",
        "sikda",
    }


def test_badung_profile_refers_to_its_secrets_by_badung_names() -> None:
    profile = _load(BADUNG)
    given: dict[tuple[str, str], str] = {}
    expected: dict[tuple[str, str], str] = {}
    for app, values in profile["apps"].items():
        manifest = _load(MANIFESTS / f"{app}.yaml")
        for parameter in manifest.get("parameters") or []:
            if parameter.get("secret") and parameter["name"] in values:
                name = "BADUNG_" + f"{app}_{parameter['name']}".upper().replace("-", "_")
                given[app, parameter["name"]] = values[parameter["name"]]
                expected[app, parameter["name"]] = f"env:{name}"
    assert given == expected
    # The profile does give secrets (the demo's SIKDA database password, at least).
    assert given[("sikda", "db_password")] == "env:BADUNG_SIKDA_DB_PASSWORD"


def test_badung_adopts_every_app_through_the_demo_forge(demo: Demo) -> None:
    listing = demo.make_forge()
    for app in ALL_APPS:
        kind = "placeholder" if app in PLACEHOLDER_APPS else "sample"
        assert re.search(rf"^\s+{re.escape(app)}\s+{kind}\s", listing, re.M), listing

    results = demo.adopt_all()
    assert results == dict.fromkeys(ALL_APPS, "adopted")

    for app in PLACEHOLDER_APPS:
        manifest = _load(MANIFESTS / f"{app}.yaml")
        pages = [t["dest"] for t in manifest["templates"] if t["src"] == PAGE_TEMPLATE]
        assert pages, f"{app} does not list {PAGE_TEMPLATE}"
        page = (demo.workspace / "apps" / app / "src" / pages[0]).read_text(encoding="utf-8")
        assert '<p class="region">Kabupaten Badung</p>' in page, app
        assert "#0B6E4F" in page and "#D4A017" in page, app  # Badung's colours
        assert f"<h1>{manifest['title']}</h1>" in page, app
        assert "placeholder" in page and "bukan kode aplikasi" in page, app
        assert "Pemerintah Kota Tangerang" in page, app  # the owner, named as such

    # Secrets reach runtime files only: never the source trees nor the lock.
    def secrets_in(path: Path) -> set[str]:
        text = path.read_text(encoding="utf-8", errors="replace")
        return {value for value in demo.secret_values if value in text}

    runtime_files = [p for p in demo.workspace.glob("runtime/*/**/*") if p.is_file()]
    # Each reaches its app's runtime files: the search below would find it.
    assert set().union(*map(secrets_in, runtime_files)) == set(demo.secret_values)
    for path in [demo.workspace / "smartshare.lock", *demo.workspace.glob("apps/*/src/**/*")]:
        if path.is_file():
            assert secrets_in(path) == set(), path


def test_the_demo_forge_is_the_same_when_made_again(demo: Demo) -> None:
    first = demo.make_forge()
    assert demo.adopt_all() == dict.fromkeys(ALL_APPS, "adopted")
    again = demo.make_forge()
    assert again == first  # same commits: fixed author, date and generated files
    assert demo.adopt_all() == dict.fromkeys(ALL_APPS, "up to date")
