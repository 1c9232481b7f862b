"""The container and image reads of :class:`smartshare.building.engine.DockerEngine`.

Kept apart only for size, as :mod:`.engine_swarm` is: :class:`ContainerCalls`
is a base class of ``DockerEngine``.  :class:`EnginePart` declares what every
such part may use of the engine (its clients, its error translation) and
makes the one kind of read they share: over the local socket without
docker-py when the engine is on one (a no-op ``deploy``, ``ps``), else through
docker-py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from smartshare.errors import ExternalError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from smartshare.building.enginesocket import EngineSocket


def label_filters(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """The engine's filter for what carries all ``labels``."""
    return {"label": [f"{k}={v}" for k, v in sorted(labels.items())]}


class EnginePart:
    """What the parts of ``DockerEngine`` share; ``DockerEngine`` implements the rest."""

    _probe: EngineSocket | None

    if TYPE_CHECKING:

        def _api(self) -> Any: ...

        def _errors(
            self,
            error: type[ExternalError],
            doing: str,
            *,
            dockerfile: str | None = None,
            references: Sequence[str] = (),
        ) -> AbstractContextManager[None]: ...

    def _read(self, path: str, doing: str, query: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` as JSON (None on HTTP 404)."""
        if self._probe is not None:
            return self._probe.get_json(path, query)
        import docker

        api = self._api()
        with self._errors(ExternalError, doing):
            try:
                return api._result(api._get(api._url(path), params=dict(query or {})), json=True)
            except docker.errors.NotFound:
                return None

    def _read_log(self, path: str, doing: str, *, tail: int) -> str:
        """GET the log at ``path`` (stdout and stderr, the last ``tail`` lines) as text."""
        query = {"stdout": "1", "stderr": "1", "tail": str(tail)}
        if self._probe is not None:
            raw = self._probe.get_raw(path, query) or b""
        else:
            api = self._api()
            with self._errors(ExternalError, doing):
                response = api._get(api._url(path), params=query)
                api._raise_for_status(response)
                raw = response.content
        return demux_log(raw).decode("utf-8", "replace")


class ContainerCalls(EnginePart):
    """Containers and images as the engine describes them, for ``deploy`` and ``ps``."""

    def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all ``labels``, as the engine lists them."""
        query = {"all": "1", "filters": json.dumps(label_filters(labels))}
        return list(self._read("/containers/json", "listing containers", query) or [])

    def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        """The engine's description of a container, None when it is gone."""
        found: dict[str, Any] | None = self._read(
            f"/containers/{quote(container_id, safe='')}/json",
            f"inspecting container {container_id[:12]}",
        )
        return found

    def inspect_image(self, reference: str) -> dict[str, Any] | None:
        """The engine's description of an image (id or reference), None when it has none."""
        found: dict[str, Any] | None = self._read(
            f"/images/{quote(reference, safe='/:@')}/json", f"looking up image {reference}"
        )
        return found

    def container_logs(self, container_id: str, *, tail: int) -> str:
        """The last ``tail`` lines a container wrote (stdout and stderr), as text."""
        return self._read_log(
            f"/containers/{quote(container_id, safe='')}/logs",
            f"reading the log of {container_id[:12]}",
            tail=tail,
        )


def demux_log(raw: bytes) -> bytes:
    """A container log as the engine sends it, without the stream headers of a non-TTY container.

    Each frame is ``[stream, 0, 0, 0, size (4 bytes, big-endian)]`` and ``size``
    bytes; a TTY container's log comes raw.
    """
    if len(raw) < 8 or raw[0] not in (0, 1, 2) or raw[1:4] != b"\0\0\0":
        return raw
    out = bytearray()
    position = 0
    while position + 8 <= len(raw):
        size = int.from_bytes(raw[position + 4 : position + 8], "big")
        out += raw[position + 8 : position + 8 + size]
        position += 8 + size
    return bytes(out)
