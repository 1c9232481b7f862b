"""state/: drift (files, manifests, region profiles) and the one file lock, on their own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from smartshare.catalog.load import load_catalog
from smartshare.catalog.models import AppManifest
from smartshare.state import workspace as ws
from smartshare.state.drift import (
    FileDrift,
    file_drift,
    manifest_digest,
    manifest_drift,
    region_drift,
)
from smartshare.state.lockfile import LockedApp, LockedFile, LockedRegion, LockedSource
from smartshare.state.locking import exclusive_lock
from smartshare.state.safefs import NotRegularFileError, read_regular_file

REPO = Path(__file__).resolve().parent.parent
KEY = b"k" * 32


@pytest.fixture(scope="module")
def laksa() -> AppManifest:
    return load_catalog(REPO).app("laksa")


def locked(app: AppManifest, **changes: str) -> LockedApp:
    entry = LockedApp(
        version=app.version,
        manifest_digest=manifest_digest(app),
        source=LockedSource(url=app.source.repo, ref=app.source.ref, commit="0" * 40),
        values={},
        files=[],
        build_key="",
        built=False,
        images=[],
        adopted_at="2026-01-05T09:00:00+00:00",
        smartshare_version="0",
    )
    return entry.model_copy(update=changes)


def test_file_drift_tells_missing_from_edited_files(tmp_path: Path) -> None:
    page, env = b"<h1>Badung</h1>\n", b"TOKEN='x'\n"
    (ws.src_dir(tmp_path, "laksa") / "www").mkdir(parents=True)
    (ws.src_dir(tmp_path, "laksa") / "www/index.html").write_bytes(page + b"edited\n")
    ws.runtime_dir(tmp_path, "laksa").mkdir(parents=True)
    (ws.runtime_dir(tmp_path, "laksa") / "runtime.env").write_bytes(env)
    recorded = [
        LockedFile(dest="www/index.html", target="image", digest=ws.file_digest(page)),
        LockedFile(dest="runtime.env", target="runtime", digest=ws.file_digest(env, key=KEY)),
        LockedFile(dest="config/site.env", target="image", digest=ws.file_digest(b"")),
    ]
    drift = list(file_drift(tmp_path, "laksa", recorded, key=KEY))
    assert drift == [
        FileDrift(dest="www/index.html", target="image", missing=False),
        FileDrift(dest="config/site.env", target="image", missing=True),
    ]
    assert [d.describe() for d in drift] == [
        "image file www/index.html was edited by hand",
        "image file config/site.env is missing",
    ]
    # A runtime file is compared by its keyed digest: without the key it differs.
    assert [d.dest for d in file_drift(tmp_path, "laksa", recorded[1:2], key=None)] == [
        "runtime.env"
    ]


def test_manifest_drift(laksa: AppManifest) -> None:
    assert manifest_drift(locked(laksa), laksa) is None
    assert manifest_drift(locked(laksa), None) == "no longer in the catalogue"
    older = locked(laksa, version="1.0.0")
    assert manifest_drift(older, laksa) == f"catalogue has version {laksa.version}"
    edited = locked(laksa, manifest_digest="sha256:" + "0" * 64)
    assert manifest_drift(edited, laksa) == "manifest changed in the catalogue (same version)"


def test_region_drift(tmp_path: Path) -> None:
    profile = tmp_path / "badung.yaml"
    profile.write_text("name: badung\n")
    region = LockedRegion(
        name="badung",
        title="Kabupaten Badung",
        code="51.03",
        file=str(profile),
        digest=ws.file_digest(profile.read_bytes()),
    )
    assert region_drift(region) is None
    profile.write_text("name: badung\ntitle: changed\n")
    assert region_drift(region) == f"region profile {profile} changed since adoption"
    profile.unlink()
    assert region_drift(region) == f"region profile {profile} is gone"
    # A lock edited to name a device is not read (it would never end).
    endless = region.model_copy(update={"file": "/dev/zero"})
    assert region_drift(endless) == "region profile /dev/zero is not a profile file any more"


class Busy(Exception):
    pass


def test_a_held_lock_is_busy_for_another_holder_and_released_after(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with exclusive_lock(path, wait=0, busy=Busy, unusable=OSError):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(Busy), exclusive_lock(path, wait=0.1, busy=Busy, unusable=OSError):
            pass
    finally:
        release.set()
        thread.join(10)
    with exclusive_lock(path, wait=0, busy=Busy, unusable=OSError):
        pass  # free again


def test_errors_inside_the_lock_pass_through(tmp_path: Path) -> None:
    with (
        pytest.raises(Busy, match="from the block"),
        exclusive_lock(tmp_path / "run.lock", wait=0, busy=ValueError, unusable=OSError),
    ):
        raise Busy("from the block")


def test_an_unusable_lock_file_raises_the_callers_error(tmp_path: Path) -> None:
    def unusable(exc: OSError) -> Exception:
        return Busy(f"cannot lock: {exc.strerror}")

    with (
        pytest.raises(Busy, match="cannot lock"),
        exclusive_lock(
            tmp_path / "missing" / "run.lock", wait=0, busy=ValueError, unusable=unusable
        ),
    ):
        pass


def test_a_regular_file_is_read_whole_up_to_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x" * 10)
    assert read_regular_file(path, 10) == b"x" * 10
    assert read_regular_file(path, 9) == b"x" * 10  # one more than the limit: too large
    assert read_regular_file(path, 5) == b"x" * 6
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular_file(tmp_path / "empty", 10) == b""
    # A file whose size says 0 but holds text (procfs) is read to its end.
    assert b"Name:" in read_regular_file(Path("/proc/self/status"), 1 << 20)
    with pytest.raises(NotRegularFileError):
        read_regular_file(tmp_path, 10)
