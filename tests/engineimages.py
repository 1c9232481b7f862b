"""The images Docker tests make: each test removes what it made, and only that; and
what tests look for in the engine and in an image.

Several test runs may share one engine, so nothing is removed by a pattern: a
test claims the unique names its images carry (a repository name, or a
region's name, which is in every tag smartshare makes for it and in the
``id.smartshare.region`` label), and conftest removes, after each test marked
``requires_docker``, the images that carry one of them.  Untagging the last tag
of an image also removes its untagged parents (the build's intermediate images),
as ``docker rmi`` does.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from typing import Any

REGION_LABEL = "id.smartshare.region"

_claimed: set[str] = set()


def claim(marker: str) -> str:
    """Remove after the test every image with a tag holding ``marker`` (or labelled its region)."""
    _claimed.add(marker)
    return marker


def forget() -> None:
    _claimed.clear()


def claimed_images(api: Any) -> tuple[list[str], list[str]]:
    """The claimed tags, and the ids of untagged images labelled with a claimed region."""
    tags: list[str] = []
    untagged: list[str] = []
    for image in api.images(all=True):
        repo_tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        tags += [t for t in repo_tags if any(marker in t for marker in _claimed)]
        region = (image.get("Labels") or {}).get(REGION_LABEL)
        if not repo_tags and region in _claimed:
            untagged.append(str(image["Id"]))
    return tags, untagged


def remove_claimed(api: Any) -> None:
    """Remove the images the test claimed; then forget the claims."""
    import docker

    if not _claimed:
        return
    try:
        tags, _ = claimed_images(api)
        for tag in tags:
            # The test's own name: untag even if a container of the test still uses it.
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_image(tag, force=True)
        _, untagged = claimed_images(api)
        for image_id in untagged:
            # Never forced: one with children or containers is not only the test's.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_image(image_id)
    finally:
        forget()


def layer_bytes(saved: bytes) -> bytes:
    """Every file of every layer of a ``docker save`` archive, and the archive, concatenated."""
    chunks = [saved]
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            handle = outer.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = handle.read()
            try:
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for item in layer.getmembers():
                        inner = layer.extractfile(item) if item.isfile() else None
                        if inner is not None:
                            chunks.append(inner.read())
            except tarfile.ReadError:
                chunks.append(data)
    return b"\n".join(chunks)


def images_made_from(api: Any, token: str) -> list[str]:
    """Images (tagged, dangling or intermediate) a build step mentioning ``token`` made.

    An image's history names the step that made it and those of its parents,
    whatever the engine's version keeps in its config (newer engines drop
    ``ContainerConfig``, where the step used to be).
    """
    import docker

    found = []
    for image in api.images(all=True):
        try:
            history = api.history(image["Id"])
        except docker.errors.NotFound:  # removed meanwhile by another user of the engine
            continue
        if any(token in (step.get("CreatedBy") or "") for step in history):
            found.append(str(image["Id"]))
    return found


def containers_made_from(api: Any, token: str) -> list[str]:
    """Containers (running or not) whose command mentions ``token``."""
    return [str(c["Id"]) for c in api.containers(all=True) if token in (c.get("Command") or "")]
