"""An app's earlier adoptions: kept in its lock entry, listed by ``history``, used by ``rollback``.

Each time an app's entry is replaced by one of another adoption (adopt,
upgrade, an upgrade's resolution, rollback), the entry it replaces is
summed up at the head of the new entry's ``history`` (newest first, at most
:data:`HISTORY_LIMIT`). The full entry of each stays in its baseline's
record (:mod:`.baseline`). A baseline whose adoption falls off the end of
the history may be removed; never the current one nor a listed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartshare.errors import UsageError
from smartshare.state import baseline
from smartshare.state import workspace as ws
from smartshare.state.lockfile import (
    LockedAdoption,
    LockedApp,
    LockedFile,
    LockedHistoryImage,
    read_lock,
)

HISTORY_LIMIT = 20


def files_digest(files: list[LockedFile]) -> str:
    """One digest of an adoption's rendered files (their targets, paths and digests)."""
    return ws.json_digest(sorted((f.target, f.dest, f.digest) for f in files))


def summary(entry: LockedApp) -> LockedAdoption:
    """What the history keeps of ``entry`` (which must have an adoption id)."""
    assert entry.adoption_id is not None
    return LockedAdoption(
        adoption_id=entry.adoption_id,
        version=entry.version,
        commit=entry.source.commit,
        images=[
            LockedHistoryImage(name=i.name, image_id=i.image_id, digest=i.digest)
            for i in entry.images
        ],
        files_digest=files_digest(entry.files),
        adopted_at=entry.adopted_at,
        attention=entry.attention is not None,
    )


def succeed(previous: LockedApp | None, new: LockedApp) -> list[str]:
    """Give ``new`` (replacing ``previous``) its history and dates; the adoption ids dropped.

    The ids returned fell off the history: their baselines may be removed once
    the lock holding ``new`` is written (:func:`prune`).
    """
    if previous is None:
        new.history = []
        new.first_adopted_at = new.first_adopted_at or new.adopted_at
        return []
    earlier = list(previous.history)
    if previous.adoption_id and previous.adoption_id != new.adoption_id:
        earlier.insert(0, summary(previous))
    kept = [item for item in earlier if item.adoption_id != new.adoption_id]
    new.history = kept[:HISTORY_LIMIT]
    new.first_adopted_at = previous.first_adopted_at or min(
        [previous.adopted_at, *(item.adopted_at for item in earlier)]
    )
    new.upgraded_at = new.adopted_at if new.version != previous.version else previous.upgraded_at
    listed = {item.adoption_id for item in new.history} | {new.adoption_id}
    return [item.adoption_id for item in kept[HISTORY_LIMIT:] if item.adoption_id not in listed]


def prune(workspace: Path, app: str, dropped: list[str]) -> None:
    """Remove the baselines of ``dropped`` adoptions (call it after the lock is written)."""
    for adoption_id in dropped:
        baseline.remove_baseline(workspace, app, adoption_id)


@dataclass(frozen=True)
class HistoryItem:
    adoption: LockedAdoption
    current: bool
    baseline_kept: bool  # False: its baseline is gone, no rollback to it

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.adoption.model_dump(mode="json"),
            "current": self.current,
            "baseline_kept": self.baseline_kept,
        }


@dataclass(frozen=True)
class AppHistory:
    app: str
    workspace: Path
    items: list[HistoryItem]  # newest first, the current one first of all

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "workspace": str(self.workspace),
            "adoptions": [item.as_dict() for item in self.items],
        }


def app_history(*, workspace: Path, app: str) -> AppHistory:
    """``app``'s adoptions in ``workspace``, the current one first; UsageError if not adopted."""
    entry = read_lock(workspace).apps.get(app)
    if entry is None:
        raise UsageError(
            f"'{app}' is not adopted in {workspace}",
            hint="'smartshare status --workspace DIR' lists the adopted apps",
        )
    items = []
    if entry.adoption_id is not None:
        items.append(HistoryItem(adoption=summary(entry), current=True, baseline_kept=True))
    items += [
        HistoryItem(
            adoption=item,
            current=False,
            baseline_kept=baseline.has_baseline(workspace, app, item.adoption_id),
        )
        for item in entry.history
    ]
    return AppHistory(app=app, workspace=workspace, items=items)
