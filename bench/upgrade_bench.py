"""Benchmark: ``smartshare upgrade --dry-run`` for the four demo apps, whole process.

Run from the repository root with the project's virtual environment (no Docker
engine needed)::

    .venv/bin/python bench/upgrade_bench.py [--runs 5]

It makes the demo's forge (``demo/make_forge.py``) and a copy of the bundled
catalogue in a temporary folder, adopts laksa, perizinan-online, lowongan-kerja
and sikda for Badung with ``--no-build`` (baselines kept), edits LAKSA's
rendered page by hand, then publishes a newer version of each app in the copy
(the current manifest moved to ``manifests/versions/<app>/<version>.yaml``, the
version raised; same source), so that every app is rendered again and merged.
Timed: ``upgrade APPS --dry-run --format json``, best (min) of ``--runs`` after
one warm-up.  Goal: <= 1.0 s.

Then the upgrade's own overhead: ``upgrade APPS --no-build`` and
``adopt APPS --force --no-build``, each on a fresh copy of the adopted
workspace (sources in the git cache, so fetching is local), best of
``--runs``.  What the upgrade does beyond adopt --force (the baseline read,
the three-way merges, the report) is their difference; goal: <= 10% of
``adopt --force``.  Without builds on either side, which is the stricter test
(a build only adds to the adopt's time, not to the difference).

The exit status is 0 when the goals are met, 1 when one is missed, 2 when
something did not behave as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("laksa", "perizinan-online", "lowongan-kerja", "sikda")
FORGE_PREFIX = "https://git.tangerangkota.go.id/diskominfo/"
GOAL_S = 1.0
OVERHEAD_GOAL = 0.10


def smartshare(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "smartshare"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def setting(tmp: Path) -> tuple[dict[str, str], Path]:
    forge = tmp / "forge"
    subprocess.run(
        [sys.executable, str(ROOT / "demo/make_forge.py"), str(forge), *APPS],
        check=True,
        capture_output=True,
    )
    catalog = tmp / "catalog"
    shutil.copytree(ROOT / "manifests", catalog / "manifests")
    shutil.copytree(ROOT / "templates", catalog / "templates")
    config = tmp / "config.yaml"
    config.write_text(f'source_rewrites:\n  "{FORGE_PREFIX}": "{forge.as_uri()}/diskominfo/"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSHARE_")}
    env.update(
        SMARTSHARE_CONFIG=str(config),
        SMARTSHARE_CACHE_DIR=str(tmp / "cache"),
        SMARTSHARE_CATALOG=str(catalog),
    )
    for profile in (catalog / "manifests/regions").glob("*.yaml"):
        for name in re.findall(r"\benv:([A-Za-z_][A-Za-z0-9_]*)", profile.read_text()):
            env[name] = secrets.token_urlsafe(18)
    return env, catalog


def publish_newer(catalog: Path) -> None:
    for app in APPS:
        manifest = catalog / "manifests/apps" / f"{app}.yaml"
        text = manifest.read_text()
        version = re.search(r'^version: "([^"]+)"$', text, re.MULTILINE)
        assert version is not None, app
        older = catalog / "manifests/versions" / app / f"{version.group(1)}.yaml"
        older.parent.mkdir(parents=True, exist_ok=True)
        older.write_text(text)
        manifest.write_text(text.replace(version.group(0), f'version: "{version.group(1)}.1"'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upgrade-bench-") as folder:
        tmp = Path(folder)
        env, catalog = setting(tmp)
        region = catalog / "manifests/regions/badung.yaml"
        workspace = tmp / "ws"
        place = ["--region", str(region), "--workspace", str(workspace)]
        adopted = smartshare(env, "adopt", *APPS, *place, "--no-build")
        if adopted.returncode != 0:
            print(adopted.stdout, adopted.stderr, file=sys.stderr)
            return 2
        page = next((workspace / "apps/laksa/src").rglob("index.html"))
        page.write_text(page.read_text() + "<!-- edited by Badung -->\n")
        publish_newer(catalog)
        timings = []
        for run in range(options.runs + 1):
            started = time.perf_counter()
            dry = smartshare(env, "upgrade", *APPS, *place, "--dry-run", "--format", "json")
            elapsed = time.perf_counter() - started
            if dry.returncode != 0:
                print(dry.stdout, dry.stderr, file=sys.stderr)
                return 2
            outcomes = {a["app"]: a["outcome"] for a in json.loads(dry.stdout)["apps"]}
            if set(outcomes.values()) != {"would upgrade"}:
                print(f"unexpected outcomes: {outcomes}", file=sys.stderr)
                return 2
            if run:  # the first is a warm-up
                timings.append(elapsed)
        overhead = time_overhead(env, workspace, place, options.runs)
        if overhead is None:
            return 2
    best = min(timings)
    median = sorted(timings)[len(timings) // 2]
    met = best <= GOAL_S
    print(f"upgrade --dry-run, four demo apps: {best:.3f} s (median {median:.3f}); ", end="")
    print(f"goal <= {GOAL_S:.1f} s: {'met' if met else 'MISSED'}")
    upgrading, adopting = overhead
    ratio = (upgrading - adopting) / adopting
    within = ratio <= OVERHEAD_GOAL
    print(
        f"upgrade --no-build {upgrading:.3f} s, adopt --force --no-build {adopting:.3f} s: "
        f"overhead {upgrading - adopting:+.3f} s = {ratio:+.1%}; "
        f"goal <= {OVERHEAD_GOAL:.0%}: {'met' if within else 'MISSED'}"
    )
    return 0 if met and within else 1


def time_overhead(
    env: dict[str, str], workspace: Path, place: list[str], runs: int
) -> tuple[float, float] | None:
    """Best of ``runs`` of upgrade and of adopt --force, each on a fresh copy of ``workspace``."""
    best: dict[str, float] = {}
    commands = {"upgrade": ("upgrade", *APPS), "adopt": ("adopt", *APPS, "--force")}
    for run in range(runs + 1):
        for name, command in commands.items():
            copy = workspace.with_name(f"{name}-{run}")
            shutil.copytree(workspace, copy, symlinks=True)
            args = [*place[:2], "--workspace", str(copy), "--no-build", "--format", "json"]
            started = time.perf_counter()
            done = smartshare(env, *command, *args)
            elapsed = time.perf_counter() - started
            shutil.rmtree(copy)
            if done.returncode != 0:
                print(done.stdout, done.stderr, file=sys.stderr)
                return None
            if run:  # the first is a warm-up
                best[name] = min(best.get(name, elapsed), elapsed)
    return best["upgrade"], best["adopt"]


if __name__ == "__main__":
    sys.exit(main())
