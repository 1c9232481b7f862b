"""The Docker engine: connect, build, label, look up and push, through docker-py.

This is the one module that calls the engine's API (docker-py, or for the
read-only calls of a no-op run on a local socket :mod:`.enginesocket`; the
calls for Docker Swarm are in its base class, :mod:`.engine_swarm`); the
build context, the stream followers, pushing's helpers and the label policy
live beside it.  Only the engine's classic builder is spoken (docker-py has no
BuildKit client), so BuildKit-only Dockerfile syntax (``RUN --mount``,
heredocs) fails with a :class:`BuildError` that says so.

``docker`` is imported inside functions: the CLI must start without it.

What smartshare makes in the engine it cleans up, and nothing else: a build
that fails or is cancelled (:meth:`DockerEngine.cancel`, which cuts the
connections the engine streams on, so that it stops the build at once) leaves
neither its containers nor the images its steps made; a tag moved by a build
no longer keeps the smartshare image it pointed at before, once nothing else
holds it (another tag, a child image, a container).

One :class:`DockerEngine` may be shared by several threads. docker-py's client
is a ``requests`` session, which is not documented as thread-safe, so each
thread gets its own client to the same endpoint; that also lets two builds
stream at the same time instead of queueing behind a lock.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from smartshare.building.buildlog import BuildTrace, LogCallback, build_hint, follow_build
from smartshare.building.context import check_context, pack_context
from smartshare.building.engine_swarm import SwarmCalls
from smartshare.building.enginesocket import (
    ENGINE_HINT,
    PERMISSION_HINT,
    EngineSocket,
    client_params,
    socket_path,
)
from smartshare.building.labels import (
    APP_LABEL,
    NoShortcut,
    check_loaded,
    config_from_saved,
    label_dockerfile,
    labelled_config,
    load_archive,
)
from smartshare.building.push import (
    auth_from_env,
    follow_push,
    push_hint,
    redact_reference,
    shown_reference,
    split_reference,
)
from smartshare.errors import (
    BuildError,
    EngineUnavailableError,
    ExternalError,
    PullError,
    PushError,
)
from smartshare.fetching.urls import redact_url

# The version probe answers at once from a live engine; waiting the full build
# timeout for a dead TCP endpoint would only delay the error.
_PROBE_TIMEOUT_S = 30
_SAVE_CHUNK = 1 << 16
# A cancelled build's container is killed and removed by the engine (or by
# us) within a second or two; its images can go only after it.
_CONTAINER_GONE_S = 10


@dataclass(frozen=True)
class BuiltImage:
    """An image the engine has built."""

    image_id: str  # sha256:...
    tags: tuple[str, ...]


def connect(*, docker_host: str | None = None, timeout: int = 600) -> DockerEngine:
    """Reach a Docker engine: ``docker_host``, else DOCKER_HOST, the docker context or the default.

    ``timeout`` bounds every request, including the wait for the next line of a
    build's log. Raises :class:`EngineUnavailableError` if the engine does not answer.
    """
    path = socket_path(docker_host)
    if path is not None:
        # A local socket: probe it without docker-py, which is then imported
        # only if something is built or pushed.
        endpoint = redact_url(docker_host or os.environ.get("DOCKER_HOST") or f"unix://{path}")
        probe = EngineSocket(path, endpoint=endpoint, timeout=min(timeout, _PROBE_TIMEOUT_S))
        version = probe.ping()
        return DockerEngine(
            api=None,
            params={"base_url": f"unix://{path}"},
            endpoint=endpoint,
            timeout=timeout,
            version=version,
            probe=probe,
        )
    import docker

    params, endpoint = client_params(docker_host)
    try:
        api = docker.APIClient(version="auto", timeout=min(timeout, _PROBE_TIMEOUT_S), **params)
    except docker.errors.DockerException as exc:
        raise EngineUnavailableError(
            f"no Docker engine answers at {endpoint}: {_reason(exc)}",
            hint=_engine_hint(str(exc)),
        ) from exc
    api.timeout = timeout
    return DockerEngine(
        api=api, params=params, endpoint=endpoint, timeout=timeout, version=api.api_version
    )


class DockerEngine(SwarmCalls):
    """A connection to one Docker engine; create it with :func:`connect`."""

    endpoint: str

    def __init__(
        self,
        *,
        api: Any,
        params: Mapping[str, Any],
        endpoint: str,
        timeout: int,
        version: str,
        probe: EngineSocket | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._params = dict(params)
        self._version = version
        self._timeout = timeout
        self._probe = probe
        self._local = threading.local()
        self._local.api = api
        self._clients: list[Any] = [api] if api is not None else []
        self._lock = threading.Lock()
        self._closed = False
        self._cancelled = False
        self._streams: dict[int, Any] = {}  # thread -> its response being streamed
        if api is not None:
            api.hooks["response"].append(self._on_response)

    @property
    def api_version(self) -> str:
        """The API version spoken with the engine (``1.41``)."""
        return self._version

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every client this engine opened (in any thread)."""
        with self._lock:
            self._closed = True
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def cancel(self) -> None:
        """Stop every build, push and save in progress, from any thread; refuse new ones.

        Each is cut at its connection, even when the engine sends nothing (a
        silent ``RUN sleep``): the engine then stops the build and kills its
        container, and the call raises in its own thread after removing what
        the build made.
        """
        with self._lock:
            self._cancelled = True
            streams = list(self._streams.values())
        for response in streams:
            _cut(response)

    # -- building ---------------------------------------------------------

    def build(
        self,
        *,
        source_dir: Path,
        context: str = ".",
        dockerfile: str,
        tags: Sequence[str],
        labels: Mapping[str, str],
        buildargs: Mapping[str, str] | None = None,
        target: str | None = None,
        network_mode: str | None = None,
        on_log: LogCallback | None = None,
    ) -> BuiltImage:
        """Build ``dockerfile`` (relative to the build context ``context`` of the source tree
        ``source_dir``) and tag the result with ``tags``.

        The context and the Dockerfile must stay inside ``source_dir``
        (:func:`.context.check_context`); ``.git`` never enters the build
        context, whatever ``.dockerignore`` says.  The base images must be in
        the engine already (see :mod:`smartshare.adoption.bases`): the build
        pulls nothing.  ``network_mode`` is the build containers' network
        (``host``, ``none``; None: the engine's default).  Every log line goes
        to ``on_log``.  Raises :class:`BuildError` (UnsafePathError for a
        context or Dockerfile that leaves the tree).
        """
        import docker

        name = shown_reference(tags[0]) if tags else str(source_dir / context)
        folder, dockerfile_rel = check_context(source_dir, context, dockerfile)
        for tag in tags:
            if not docker.utils.build.match_tag(tag):
                raise BuildError(
                    f"'{shown_reference(tag)}' is not a valid image tag",
                    hint="image names are lower-case: registry/name:tag",
                )
        api = self._api()
        made = BuildTrace()
        try:
            replaced = {self.image_id(tag) for tag in tags}
            with tempfile.TemporaryFile() as archive:
                pack_context(folder, dockerfile_rel, archive)
                with (
                    self._streaming(BuildError, f"building {name}"),
                    self._errors(BuildError, f"building {name}", dockerfile=dockerfile_rel),
                ):
                    # Labels are applied afterwards (see _labelled): the legacy builder
                    # turns the API's labels into one LABEL step (one container) per label.
                    chunks = api.build(
                        fileobj=archive,
                        custom_context=True,
                        dockerfile=dockerfile_rel,
                        tag=None if labels else (tags[0] if tags else None),
                        buildargs=dict(buildargs or {}),
                        target=target,
                        network_mode=network_mode,
                        decode=True,
                        rm=True,
                        forcerm=True,
                        pull=False,
                        timeout=self._timeout,
                    )
                    image_id = follow_build(chunks, name, dockerfile_rel, on_log, made=made)
                    if not image_id.startswith("sha256:"):
                        image_id = api.inspect_image(image_id)["Id"]
            if labels:
                image_id = self._labelled(api, image_id, labels, name, on_log, made)
            with self._errors(BuildError, f"tagging {name}"):
                # Labelling leaves its result untagged: no name ever points at an
                # image that might still be replaced.
                for tag in tags if labels else tags[1:]:
                    self._tag(api, image_id, tag)
        except BaseException:
            self._discard(made)
            raise
        self._discard_replaced(replaced - {image_id, None})
        return BuiltImage(image_id=image_id, tags=tuple(tags))

    def _labelled(
        self,
        api: Any,
        base_id: str,
        labels: Mapping[str, str],
        name: str,
        on_log: LogCallback | None,
        made: BuildTrace,
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, untagged.

        Writing the labels into a copy of the image's config and loading that
        needs no container, which on some storage drivers (vfs) is what a
        build step costs; an engine that refuses gets the one-step build.
        """
        try:
            with self._streaming(BuildError, f"labelling {name}"):
                image_id = _load_with_labels(api, base_id, labels)
        except NoShortcut as exc:
            if on_log is not None:
                on_log(f"smartshare: labelling with a build step ({exc})")
            return self._label(api, base_id, labels, name, on_log, made)
        made.images.append(image_id)
        if on_log is not None:
            on_log(f"smartshare: labels written into the image config ({image_id[7:19]})")
        return image_id

    def _label(
        self,
        api: Any,
        base_id: str,
        labels: Mapping[str, str],
        name: str,
        on_log: LogCallback | None,
        made: BuildTrace,
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, made by a one-step build."""
        dockerfile = label_dockerfile(base_id, labels).encode("utf-8")
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
            archive.seek(0)
            with (
                self._streaming(BuildError, f"labelling {name}"),
                self._errors(BuildError, f"labelling {name}", dockerfile="Dockerfile"),
            ):
                chunks = api.build(
                    fileobj=archive,
                    custom_context=True,
                    decode=True,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    timeout=self._timeout,
                )
                image_id = follow_build(chunks, name, "Dockerfile", on_log, made=made)
                if not image_id.startswith("sha256:"):
                    image_id = str(api.inspect_image(image_id)["Id"])
        return image_id

    def image_id(self, reference: str) -> str | None:
        """The id (``sha256:...``) of a local image or tag, None when the engine has none."""
        if self._probe is not None:
            return self._probe.image_id(reference)
        import docker

        api = self._api()
        with self._errors(BuildError, f"looking up image {shown_reference(reference)}"):
            try:
                image_id: str = api.inspect_image(reference)["Id"]
            except docker.errors.NotFound:
                return None
        return image_id

    # -- pushing ----------------------------------------------------------

    def push(
        self,
        *,
        reference: str,
        on_log: LogCallback | None = None,
        auth_config: Mapping[str, str] | None = None,
    ) -> str:
        """Push ``reference`` to its registry and return the manifest digest (``sha256:...``).

        Without ``auth_config``, credentials come from SMARTSHARE_REGISTRY_USERNAME
        and SMARTSHARE_REGISTRY_PASSWORD when set, else from the engine's own
        login. Raises :class:`PushError`.
        """
        import docker

        repo, tag = split_reference(reference)
        try:
            registry = docker.auth.resolve_repository_name(repo)[0]
        except docker.errors.InvalidRepository as exc:
            raise PushError(
                f"cannot push {shown_reference(reference)}: "
                f"{redact_reference(str(exc), reference)}",
                hint="use a reference of the form registry/name:tag",
            ) from None
        auth = dict(auth_config) if auth_config is not None else auth_from_env(registry)
        api = self._api()
        doing = f"pushing {shown_reference(reference)} to registry {shown_reference(registry)}"
        with (
            self._streaming(PushError, doing),
            self._errors(PushError, doing, references=(reference,)),
        ):
            chunks = api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth)
            return follow_push(chunks, reference, registry, on_log)

    # -- containers and images, for deploy and ps ----------------------------

    def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all ``labels``, as the engine lists them."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in sorted(labels.items())]})
        if self._probe is not None:
            found = self._probe.get_json("/containers/json", {"all": "1", "filters": filters})
            return list(found or [])
        api = self._api()
        with self._errors(ExternalError, "listing containers"):
            listed: list[dict[str, Any]] = api.containers(all=True, filters=json.loads(filters))
        return listed

    def inspect_container(self, container_id: str) -> dict[str, Any] | None:
        """The engine's description of a container, None when it is gone."""
        if self._probe is not None:
            found: dict[str, Any] | None = self._probe.get_json(f"/containers/{container_id}/json")
            return found
        import docker

        api = self._api()
        with self._errors(ExternalError, f"inspecting container {container_id[:12]}"):
            try:
                described: dict[str, Any] = api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None
        return described

    def inspect_image(self, reference: str) -> dict[str, Any] | None:
        """The engine's description of an image (id or reference), None when it has none."""
        if self._probe is not None:
            found: dict[str, Any] | None = self._probe.get_json(
                f"/images/{quote(reference, safe='/:@')}/json"
            )
            return found
        import docker

        api = self._api()
        with self._errors(ExternalError, f"looking up image {reference}"):
            try:
                described: dict[str, Any] = api.inspect_image(reference)
            except docker.errors.NotFound:
                return None
        return described

    def container_logs(self, container_id: str, *, tail: int) -> str:
        """The last ``tail`` lines a container wrote (stdout and stderr), as text."""
        query = {"stdout": "1", "stderr": "1", "tail": str(tail)}
        if self._probe is not None:
            raw = self._probe.get_raw(f"/containers/{container_id}/logs", query) or b""
        else:
            api = self._api()
            with self._errors(ExternalError, f"reading the log of {container_id[:12]}"):
                raw = api.logs(container_id, stdout=True, stderr=True, tail=tail)
        return demux_log(raw).decode("utf-8", "replace")

    def pull(self, reference: str, *, on_log: LogCallback | None = None) -> str:
        """Pull ``reference`` and return its image id (cancellable: :meth:`cancel`).

        Raises :class:`PullError`.
        """
        repo, tag = split_reference(reference)
        api = self._api()
        with (
            self._streaming(PullError, f"pulling {reference}"),
            self._errors(PullError, f"pulling {reference}"),
        ):
            for chunk in api.pull(repo, tag=tag, stream=True, decode=True):
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise PullError(f"pulling {reference} failed: {detail}")
                if on_log is not None and chunk.get("status"):
                    on_log(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)))
            image_id = self.image_id(reference)
        if image_id is None:
            raise PullError(f"pulling {reference} left no such image in the engine")
        return image_id

    def tag(self, image_id: str, reference: str) -> None:
        """Give the local image ``image_id`` the name ``reference`` (moving it if it exists)."""
        api = self._api()
        with self._errors(BuildError, f"tagging {shown_reference(reference)}"):
            self._tag(api, image_id, reference)

    # -- internals --------------------------------------------------------

    def _api(self) -> Any:
        """This thread's client, created on first use from the connection's settings."""
        api = getattr(self._local, "api", None)
        if api is None:
            import docker

            with self._lock:
                if self._closed:
                    raise RuntimeError("DockerEngine used after close()")
                # The version is already known: skip a second probe.
                api = docker.APIClient(version=self._version, timeout=self._timeout, **self._params)
                api.hooks["response"].append(self._on_response)
                self._clients.append(api)
            self._local.api = api
        elif self._closed:
            raise RuntimeError("DockerEngine used after close()")
        return api

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Every response of this engine's clients: remember the ones being streamed."""
        if not getattr(self._local, "streaming", False):
            return
        with self._lock:
            self._streams[threading.get_ident()] = response
            cancelled = self._cancelled
        if cancelled:
            _cut(response)

    @contextmanager
    def _streaming(self, error: type[ExternalError], doing: str) -> Iterator[None]:
        """Make this thread's responses cancellable (:meth:`cancel`) while inside."""
        if self._cancelled:
            raise error(f"{doing}: cancelled")
        self._local.streaming = True
        try:
            yield
        except Exception as exc:
            if self._cancelled:
                raise error(f"{doing}: cancelled") from exc
            raise
        finally:
            self._local.streaming = False
            with self._lock:
                self._streams.pop(threading.get_ident(), None)

    # -- cleaning up --------------------------------------------------------

    @contextmanager
    def _cleanup_api(self) -> Iterator[Any]:
        """A client of its own: the build's may have been cut, and errors are not reported."""
        import docker

        api = docker.APIClient(version=self._version, timeout=_PROBE_TIMEOUT_S, **self._params)
        try:
            yield api
        finally:
            api.close()

    def _discard(self, made: BuildTrace) -> None:
        """Remove what a failed or cancelled build made: its containers, then its images."""
        if not made.images and not made.containers:
            return
        with self._cleanup_api() as api:
            for container in made.containers:
                _quietly(api.remove_container, container, force=True)
            deadline = time.monotonic() + _CONTAINER_GONE_S
            for container in made.containers:
                while time.monotonic() < deadline and _quietly(api.inspect_container, container):
                    time.sleep(0.1)
            # The last step's image first: each is then no longer a parent.
            for image_id in reversed(made.images):
                _remove_unused(api, image_id, prune=False)

    def _discard_replaced(self, image_ids: set[str | None]) -> None:
        """Remove the smartshare images the build's tags pointed at before, with the untagged
        parents only they had (their own build), once nothing else holds them."""
        if not image_ids:
            return
        with self._cleanup_api() as api:
            for image_id in image_ids:
                details = _quietly(api.inspect_image, image_id)
                labels = ((details or {}).get("Config") or {}).get("Labels") or {}
                if APP_LABEL in labels:
                    _remove_unused(api, str(image_id), prune=True)

    def _tag(self, api: Any, image_id: str, reference: str) -> None:
        repo, tag = split_reference(reference)
        if not api.tag(image_id, repo, tag, force=True):
            raise BuildError(f"the engine did not tag {image_id} as {reference}")

    @contextmanager
    def _errors(
        self,
        error: type[ExternalError],
        doing: str,
        *,
        dockerfile: str | None = None,
        references: Sequence[str] = (),
    ) -> Iterator[None]:
        """Turn docker-py and transport failures into smartshare errors (without the
        credentials of ``references``)."""
        import docker
        import requests
        import urllib3

        try:
            yield
        except requests.exceptions.ConnectTimeout as exc:
            raise self._lost(doing, exc) from exc
        except (
            requests.exceptions.Timeout,
            urllib3.exceptions.ReadTimeoutError,
            TimeoutError,
        ) as exc:
            raise error(
                f"{doing} failed: the engine at {self.endpoint} sent nothing for {self._timeout}s",
                hint="the engine may be overloaded; retry, or raise the timeout",
            ) from exc
        except (requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError) as exc:
            # Also how a stream ends when the engine dies in the middle of a build.
            raise self._lost(doing, exc) from exc
        except docker.errors.APIError as exc:
            detail = redact_reference(str(exc.explanation or exc).strip(), *references)
            hint = None
            if error is BuildError:
                hint = build_hint(detail, step=None, dockerfile=dockerfile)
            elif error is PushError:
                hint = push_hint(detail)
            raise error(f"{doing} failed: {detail}", hint=hint) from exc
        except docker.errors.DockerException as exc:
            raise error(f"{doing} failed: {redact_reference(str(exc), *references)}") from exc

    def _lost(self, doing: str, exc: BaseException) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"lost the Docker engine at {self.endpoint} while {doing}: {_reason(exc)}",
            hint=ENGINE_HINT,
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).removeprefix("Error while fetching server API version: ")
    # requests nests the OS error in a tuple repr; say it in words.
    for marker, words in (
        ("FileNotFoundError", "the socket does not exist"),
        ("ConnectionRefusedError", "connection refused"),
        ("Connection refused", "connection refused"),
        ("PermissionError", "permission denied"),
    ):
        if marker in text:
            return words
    return text


def _engine_hint(detail: str) -> str:
    if "Permission denied" in detail or "PermissionError" in detail:
        return PERMISSION_HINT
    return ENGINE_HINT


def _cut(response: Any) -> None:
    """Shut down the connection ``response`` streams on: a read blocked on it returns at once.

    Closing the response from another thread would not wake that read.
    """
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    else:
        with contextlib.suppress(Exception):
            response.close()


def _quietly(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(...)``, or None on any failure: cleaning up must not hide why it was needed."""
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


def _load_with_labels(api: Any, base_id: str, labels: Mapping[str, str]) -> str:
    """Load a copy of ``base_id``'s config carrying ``labels``; return the new image's id.

    Raises :class:`NoShortcut` for any failure: the caller then labels by a
    build step, which reports engine failures properly.
    """
    import docker
    import requests
    import urllib3

    try:
        base_config = _saved_config(api, base_id)
        if base_config is None:
            raise NoShortcut("the engine's saved image holds no config matching its id")
        config, diff_ids = labelled_config(base_config, labels)
        archive, new_id = load_archive(config, diff_ids, base_id=base_id, base_config=base_config)
        chunks = api.load_image(archive, quiet=True)
        if chunks is None:  # API < 1.23 reports nothing to check
            raise NoShortcut("the engine does not report what it loaded")
        check_loaded(chunks, new_id)
        return new_id
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        tarfile.TarError,
        OSError,
        ValueError,  # also JSON and UTF-8 decoding errors
    ) as exc:
        raise NoShortcut(f"{type(exc).__name__}: {exc}".strip()) from exc


def _saved_config(api: Any, image_id: str) -> bytes | None:
    """The config of ``image_id`` byte for byte as the engine stores it, else None.

    Only ``docker save`` hands out the stored bytes. The engine writes the whole
    archive (every layer of the image) before it sends anything, so this costs
    what tarring the image costs; stopping at the config spares only the transfer.
    """
    # Not api.get_image(): it switches the read timeout off, and a wedged
    # engine would hang the run here.
    response = api._get(api._url("/images/{0}/get", image_id), stream=True)
    api._raise_for_status(response)
    try:
        return config_from_saved(response.iter_content(chunk_size=_SAVE_CHUNK), image_id)
    finally:
        # The rest stays unread: closing the response closes its socket.
        response.close()


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
