"""Baselines: what each adoption rendered, kept so that an upgrade never renders an old version.

Layout, one folder per adoption (``adoption_id``, sortable by time)::

    WORKSPACE/.smartshare/baselines/<app>/<adoption-id>/     mode 0700
      record.json        the lock's entry for that adoption, and the manifest it came from
      image/<dest>       each image file exactly as rendered (before any hand edit)
      runtime/<dest>     each runtime file as rendered: may hold secrets (0600, as
                         runtime/<app>/; never inside a source tree)
      written/<target>/<dest>   a file as the adoption wrote it, where that differs from
                         the rendering (an upgrade's merged hand edits, a resolution)
      patches/<n>        the region's patches as applied (n: 1, 2... in the order of
                         the entry's ``patches``), so that a rollback can apply them again

A baseline is written completely under a hidden name and renamed into place
before the lock names its ``adoption_id``: the lock's ``adoption_id`` is the
authority, and a folder the lock does not (or no longer) name is an older
adoption (or one interrupted before its lock was written).
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from smartshare.errors import WorkspaceError
from smartshare.state import workspace as ws
from smartshare.state.lockfile import LockedApp

RECORD_NAME = "record.json"
_TARGETS = ("image", "runtime")
_WRITTEN = "written"
_PATCHES = "patches"
_MAX_RECORD_BYTES = 4 * 1024 * 1024


class BaselineRecord(BaseModel):
    """What ``record.json`` holds: the lock's entry of that adoption and its manifest."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    adoption_id: str
    app: str
    entry: LockedApp
    manifest: dict[str, Any]  # the manifest as adopted (model_dump by alias)


def baselines_dir(workspace: Path, app: str) -> Path:
    return workspace / ws.INTERNAL / "baselines" / app


def baseline_dir(workspace: Path, app: str, adoption_id: str) -> Path:
    return baselines_dir(workspace, app) / adoption_id


def new_adoption_id(now: datetime | None = None) -> str:
    """A new adoption's id: its UTC time, sortable, and a random suffix."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{moment}-{secrets.token_hex(3)}"


def _error(what: str, path: Path, exc: OSError) -> WorkspaceError:
    return WorkspaceError(
        f"cannot {what} {path}: {exc.strerror or exc}",
        hint="check free disk space and permissions of the workspace",
    )


def write_baseline(
    workspace: Path,
    *,
    adoption_id: str,
    app: str,
    entry: LockedApp,
    manifest: dict[str, Any],
    files: Iterable[tuple[str, str, bytes]],
    written: Iterable[tuple[str, str, bytes]] = (),
    patches: Iterable[bytes] = (),
) -> Path:
    """Keep ``files`` (target, dest, content as rendered) and ``entry`` as a baseline of ``app``.

    ``written``: files as the adoption wrote them where that differs from
    ``files``; ``patches``: the content of the entry's patches, in order.
    Written under a hidden name and renamed into place whole.
    """
    from smartshare.state.safefs import atomic_write, confined_path

    parent = baselines_dir(workspace, app)
    final = parent / adoption_id
    staging = parent / f".{adoption_id}.partial-{secrets.token_hex(4)}"
    try:
        for folder in (parent.parent, parent):
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)
        staging.mkdir(mode=0o700)
        for target in _TARGETS:
            (staging / target).mkdir(mode=0o700)
        rendered = {}
        for target, dest, content in files:
            if target not in _TARGETS:
                raise ValueError(f"unknown target {target!r}")
            rendered[(target, dest)] = content
            _keep(confined_path(staging / target, dest), content)
        for target, dest, content in written:
            if target not in _TARGETS:
                raise ValueError(f"unknown target {target!r}")
            if rendered.get((target, dest)) != content:
                _keep(confined_path(staging / _WRITTEN / target, dest), content)
        for number, content in enumerate(patches, start=1):
            _keep(staging / _PATCHES / str(number), content)
        record = BaselineRecord(adoption_id=adoption_id, app=app, entry=entry, manifest=manifest)
        atomic_write(
            staging / RECORD_NAME, record.model_dump_json(indent=1).encode("utf-8"), mode=0o600
        )
        staging.rename(final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _error("keep the baseline in", final, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _keep(path: Path, content: bytes) -> None:
    from smartshare.state.safefs import atomic_write

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, content, mode=0o600)


def has_baseline(workspace: Path, app: str, adoption_id: str | None) -> bool:
    return (
        bool(adoption_id)
        and (baseline_dir(workspace, app, str(adoption_id)) / RECORD_NAME).is_file()
    )


def read_record(workspace: Path, app: str, adoption_id: str) -> BaselineRecord:
    """The record of one baseline; WorkspaceError when it is missing or not one."""
    path = baseline_dir(workspace, app, adoption_id) / RECORD_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise _error("read", path, exc) from None
    try:
        if len(raw) > _MAX_RECORD_BYTES:
            raise ValueError("too large")
        record = BaselineRecord.model_validate(json.loads(raw.decode("utf-8")))
    except (ValueError, ValidationError):
        raise WorkspaceError(
            f"{path} is not a smartshare baseline record",
            hint="adopt the app again (smartshare adopt APP) to keep a new baseline",
        ) from None
    if record.adoption_id != adoption_id or record.app != app:
        raise WorkspaceError(f"{path} records another adoption than its folder says")
    return record


def read_file(workspace: Path, app: str, adoption_id: str, target: str, dest: str) -> bytes | None:
    """A file of a baseline as it was rendered; None when that adoption rendered no such file."""
    from smartshare.errors import UnsafePathError
    from smartshare.state.safefs import confined_path

    if target not in _TARGETS and target not in {f"{_WRITTEN}/{t}" for t in _TARGETS}:
        return None
    try:
        path = confined_path(baseline_dir(workspace, app, adoption_id) / target, dest)
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except UnsafePathError:
        return None
    except OSError as exc:
        raise _error("read", baseline_dir(workspace, app, adoption_id), exc) from None


def read_written(
    workspace: Path, app: str, adoption_id: str, target: str, dest: str
) -> bytes | None:
    """A file as that adoption wrote it: merged with hand edits, or else as rendered."""
    if target not in _TARGETS:
        return None
    kept = read_file(workspace, app, adoption_id, f"{_WRITTEN}/{target}", dest)
    return kept if kept is not None else read_file(workspace, app, adoption_id, target, dest)


def read_patch(workspace: Path, app: str, adoption_id: str, number: int) -> bytes | None:
    """The ``number``-th patch (from 1) the adoption applied; None when not kept."""
    path = baseline_dir(workspace, app, adoption_id) / _PATCHES / str(number)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _error("read", path, exc) from None


def remove_baseline(workspace: Path, app: str, adoption_id: str) -> None:
    """Remove a baseline the lock no longer names (history pruned)."""
    if adoption_id and "/" not in adoption_id and not adoption_id.startswith("."):
        shutil.rmtree(baseline_dir(workspace, app, adoption_id), ignore_errors=True)


def list_baselines(workspace: Path, app: str) -> list[str]:
    """The adoption ids of ``app``'s complete baselines, oldest first."""
    try:
        names = [p.name for p in baselines_dir(workspace, app).iterdir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _error("read", baselines_dir(workspace, app), exc) from None
    return sorted(
        name for name in names if not name.startswith(".") and has_baseline(workspace, app, name)
    )
