"""What an app's images are labelled with, and how labels get into a built image.

:func:`static_labels` is the label policy: OCI labels plus smartshare's own,
the same for every build of the same inputs (they are part of an app's build
key); :func:`build_labels` adds the build's time.

The rest writes labels into a copy of the built image's configuration, which
the engine then loads over the layers it already has: no build step, no
container.  These helpers only handle bytes; the engine calls (save, load)
are :mod:`.engine`'s.  When the engine will not take that shortcut,
:func:`label_dockerfile` makes the one-step build that labels instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smartshare.fetching.urls import redact_url

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from smartshare.catalog.models import AppManifest
    from smartshare.catalog.profile import RegionProfile

CREATED_LABEL = "org.opencontainers.image.created"
# Carried by every image smartshare builds: what it may clean up.
APP_LABEL = "id.smartshare.app"
_LOADED = re.compile(r"Loaded image ID: (sha256:[0-9a-f]{64})")
_HISTORY_TEXT_MAX = 200


def static_labels(
    app: AppManifest, region: RegionProfile, commit: str, config_digest: str
) -> dict[str, str]:
    """The labels of ``app``'s images for ``region`` built from ``commit``, except the time."""
    return {
        "org.opencontainers.image.source": redact_url(app.source.repo),
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.version": app.version,
        "org.opencontainers.image.title": app.title,
        "org.opencontainers.image.description": next(iter(app.summary.values())),
        "org.opencontainers.image.licenses": app.license,
        "org.opencontainers.image.vendor": app.owner.name,
        APP_LABEL: app.name,
        "id.smartshare.region": region.name,
        "id.smartshare.region-code": region.code,
        "id.smartshare.config-digest": config_digest,
    }


def build_labels(static: Mapping[str, str], *, now: datetime) -> dict[str, str]:
    """``static`` plus the time of this build."""
    return {**static, CREATED_LABEL: now.isoformat(timespec="seconds")}


class NoShortcut(Exception):
    """The engine would not label an image without a build step; the message says why."""


def label_dockerfile(base_id: str, labels: Mapping[str, str]) -> str:
    """``FROM base`` plus one LABEL instruction holding every label, quoted for the parser."""

    def quote(text: str) -> str:
        # The Dockerfile parser unescapes backslashes and expands $VARIABLES in
        # LABEL values; a newline would end the instruction.
        text = " ".join(text.splitlines())
        for char in ("\\", '"', "$"):
            text = text.replace(char, "\\" + char)
        return f'"{text}"'

    pairs = " ".join(f"{quote(k)}={quote(v)}" for k, v in sorted(labels.items()))
    return f"FROM {base_id}\nLABEL {pairs}\n"


def labelled_config(config: bytes, labels: Mapping[str, str]) -> tuple[bytes, list[str]]:
    """``config`` with ``labels`` over its own and a history entry naming them; and its
    layers' diff ids. Everything else is kept as it was."""
    image = json.loads(config)
    if not isinstance(image, dict):
        raise NoShortcut("the image config is not a JSON object")
    rootfs = image.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (
        not isinstance(diff_ids, list)
        or not diff_ids
        or not all(isinstance(d, str) and d.startswith("sha256:") for d in diff_ids)
    ):
        raise NoShortcut("the image config lists no layers")
    run_config = image.get("config") or {}
    own_labels = run_config.get("Labels") if isinstance(run_config, dict) else None
    history = image.get("history") or []
    if not isinstance(run_config, dict) or not isinstance(own_labels, dict | None):
        raise NoShortcut("the image config has no usable Labels")
    if not isinstance(history, list):
        raise NoShortcut("the image config has no usable history")
    run_config["Labels"] = {**(own_labels or {}), **labels}
    image["config"] = run_config
    keys = ",".join(sorted(labels))
    if len(keys) > _HISTORY_TEXT_MAX:
        keys = keys[: _HISTORY_TEXT_MAX - 3] + "..."
    # `docker history` then says where the labels came from.
    history.append(
        {
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "created_by": f"smartshare: LABEL {keys}",
            "empty_layer": True,
        }
    )
    image["history"] = history
    text = json.dumps(image, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8"), diff_ids


def config_from_saved(chunks: Iterator[bytes], image_id: str) -> bytes | None:
    """The config of ``image_id`` from the engine's save stream (a tar), else None.

    Reads up to the config only.  With the containerd image store the id names
    a manifest, not a config: then nothing in the stream has that digest.
    """
    import tarfile  # not at the top: assess imports the label policy on every run

    digest = image_id.removeprefix("sha256:")
    # The legacy layout (up to Docker 24) and the OCI layout (Docker 25+).
    wanted = {f"{digest}.json", f"blobs/sha256/{digest}"}
    with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks)), mode="r|") as tar:
        for member in tar:
            if member.isfile() and member.name.removeprefix("./") in wanted:
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                break
        else:
            return None
    return data if hashlib.sha256(data).hexdigest() == digest else None


class _ChunkReader(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (an HTTP body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def load_archive(
    config: bytes, diff_ids: Sequence[str], *, base_id: str, base_config: bytes
) -> tuple[bytes, str]:
    """A ``docker load`` archive of ``config`` over the layers the engine already has.

    Returns the archive and the id the loaded image will have.
    """
    import tarfile

    new_hex = hashlib.sha256(config).hexdigest()
    base_hex = base_id.removeprefix("sha256:")
    # No layer files: `docker load` opens one only for a layer its store lacks,
    # and the build just made these. If one went missing, the load fails.
    layers = [f"{diff_id.removeprefix('sha256:')}/layer.tar" for diff_id in diff_ids]
    manifest = [
        # The unlabelled image stays the parent, as under a build step: an
        # intermediate image rather than a dangling one, removed along with this.
        {"Config": f"{new_hex}.json", "RepoTags": [], "Layers": layers, "Parent": base_id},
        # The engine links only a parent loaded in the same archive; loading an
        # image it already has changes nothing.
        {"Config": f"{base_hex}.json", "RepoTags": [], "Layers": layers},
    ]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (
            (f"{new_hex}.json", config),
            (f"{base_hex}.json", base_config),
            ("manifest.json", json.dumps(manifest).encode("utf-8")),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive.getvalue(), f"sha256:{new_hex}"


def check_loaded(chunks: Iterable[Mapping[str, Any]], new_id: str) -> None:
    """Raise NoShortcut unless the engine's load stream reports loading ``new_id``."""
    # The engine answers 200 and reports a failure inside the stream.
    output = []
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error")
            raise NoShortcut(f"the engine did not load the labelled config: {message.strip()}")
        output.append(str(chunk.get("stream") or ""))
    if new_id not in _LOADED.findall("".join(output)):
        raise NoShortcut(f"the engine did not report loading {new_id}")
