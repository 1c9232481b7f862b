"""Removing what smartshare made in the engine, and nothing else.

A build that fails or is cancelled leaves neither its containers nor the
images its steps made (:func:`discard_made`); a tag a build moved no longer
keeps the smartshare image it pointed at before, once nothing else holds it
(:func:`discard_replaced`).  The engine itself refuses to remove an image a
tag, a child image or a container still uses: nothing here is forced.  Each
call is made with a client of its own (the build's connection may have been
cut) and its failures are not reported: cleaning up must not hide why it was
needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from smartshare.building.buildlog import BuildTrace
from smartshare.building.labels import APP_LABEL

# A cancelled build's container is killed and removed by the engine (or by
# us) within a second or two; its images can go only after it.
_CONTAINER_GONE_S = 10


def discard_made(api: Any, made: BuildTrace) -> None:
    """Remove what a failed or cancelled build made: its containers, then its images."""
    for container in made.containers:
        _quietly(api.remove_container, container, force=True)
    deadline = time.monotonic() + _CONTAINER_GONE_S
    for container in made.containers:
        while time.monotonic() < deadline and _quietly(api.inspect_container, container):
            time.sleep(0.1)
    # The last step's image first: each is then no longer a parent.
    for image_id in reversed(made.images):
        _remove_unused(api, image_id, prune=False)


def discard_replaced(api: Any, image_ids: Iterable[str]) -> None:
    """Remove the smartshare images of ``image_ids`` (what a build's tags pointed at before),
    with the untagged parents only they had (their own build), once nothing else holds them."""
    for image_id in image_ids:
        details = _quietly(api.inspect_image, image_id)
        labels = ((details or {}).get("Config") or {}).get("Labels") or {}
        if APP_LABEL in labels:
            _remove_unused(api, image_id, prune=True)


def _quietly(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(...)``, or None on any failure."""
    try:
        return call(*args, **kwargs)
    except Exception:
        return None


def _remove_unused(api: Any, image_id: str, *, prune: bool) -> None:
    """Remove ``image_id`` if it has no tag; the engine itself refuses while a child image
    or a container uses it (never forced).  ``prune`` also removes the untagged
    parents that have no other child."""
    details = _quietly(api.inspect_image, image_id)
    if details is None or [t for t in details.get("RepoTags") or [] if t != "<none>:<none>"]:
        return
    _quietly(api.remove_image, details["Id"], force=False, noprune=not prune)
