"""The Docker engine: connect, build, label, look up and push, through docker-py.

This is the one module that calls the engine's API (docker-py, or for the
read-only calls of a no-op run on a local socket :mod:`.enginesocket`); the
build context, the stream followers, pushing's helpers and the label policy
live beside it.  Only the engine's classic builder is spoken (docker-py has no
BuildKit client), so BuildKit-only Dockerfile syntax (``RUN --mount``,
heredocs) fails with a :class:`BuildError` that says so.

``docker`` is imported inside functions: the CLI must start without it.

One :class:`DockerEngine` may be shared by several threads. docker-py's client
is a ``requests`` session, which is not documented as thread-safe, so each
thread gets its own client to the same endpoint; that also lets two builds
stream at the same time instead of queueing behind a lock.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from smartshare.building.buildlog import LogCallback, build_hint, follow_build
from smartshare.building.context import check_context, write_context
from smartshare.building.enginesocket import (
    ENGINE_HINT,
    PERMISSION_HINT,
    EngineSocket,
    socket_path,
)
from smartshare.building.labels import (
    NoShortcut,
    check_loaded,
    config_from_saved,
    label_dockerfile,
    labelled_config,
    load_archive,
)
from smartshare.building.push import auth_from_env, follow_push, push_hint, split_reference
from smartshare.errors import (
    BuildError,
    EngineUnavailableError,
    ExternalError,
    PullError,
    PushError,
)
from smartshare.fetching.urls import redact_url

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"

# The version probe answers at once from a live engine; waiting the full build
# timeout for a dead TCP endpoint would only delay the error.
_PROBE_TIMEOUT_S = 30
_SAVE_CHUNK = 1 << 16


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

    params, endpoint = _client_params(docker_host)
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


class DockerEngine:
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

    # -- building ---------------------------------------------------------

    def build(
        self,
        *,
        context_dir: Path,
        dockerfile: str,
        tags: Sequence[str],
        labels: Mapping[str, str],
        buildargs: Mapping[str, str] | None = None,
        target: str | None = None,
        on_log: LogCallback | None = None,
    ) -> BuiltImage:
        """Build ``dockerfile`` (relative to ``context_dir``) and tag the result with ``tags``.

        ``.git`` never enters the build context, whatever ``.dockerignore`` says.
        Every log line goes to ``on_log``. Raises :class:`BuildError`.
        """
        import docker

        name = tags[0] if tags else str(context_dir)
        context, dockerfile_rel = check_context(context_dir, dockerfile)
        for tag in tags:
            if not docker.utils.build.match_tag(tag):
                raise BuildError(
                    f"'{tag}' is not a valid image tag",
                    hint="image names are lower-case: registry/name:tag",
                )
        api = self._api()
        with tempfile.TemporaryFile() as archive:
            write_context(context, dockerfile_rel, archive)
            with self._errors(BuildError, f"building {name}", dockerfile=dockerfile_rel):
                # Labels are applied afterwards (see _labelled): the legacy builder
                # turns the API's labels into one LABEL step (one container) per label.
                chunks = api.build(
                    fileobj=archive,
                    custom_context=True,
                    dockerfile=dockerfile_rel,
                    tag=None if labels else (tags[0] if tags else None),
                    buildargs=dict(buildargs or {}),
                    target=target,
                    decode=True,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    timeout=self._timeout,
                )
                image_id = follow_build(chunks, name, dockerfile_rel, on_log)
                if not image_id.startswith("sha256:"):
                    image_id = api.inspect_image(image_id)["Id"]
        if labels:
            image_id = self._labelled(api, image_id, labels, name, on_log)
        with self._errors(BuildError, f"tagging {name}"):
            # Labelling leaves its result untagged: no name ever points at an
            # image that might still be replaced.
            for tag in tags if labels else tags[1:]:
                self._tag(api, image_id, tag)
        return BuiltImage(image_id=image_id, tags=tuple(tags))

    def _labelled(
        self,
        api: Any,
        base_id: str,
        labels: Mapping[str, str],
        name: str,
        on_log: LogCallback | None,
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, untagged.

        Writing the labels into a copy of the image's config and loading that
        needs no container, which on some storage drivers (vfs) is what a
        build step costs; an engine that refuses gets the one-step build.
        """
        try:
            image_id = _load_with_labels(api, base_id, labels)
        except NoShortcut as exc:
            if on_log is not None:
                on_log(f"smartshare: labelling with a build step ({exc})")
            return self._label(api, base_id, labels, name, on_log)
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
    ) -> str:
        """A child of ``base_id`` carrying ``labels``, made by a one-step build."""
        dockerfile = label_dockerfile(base_id, labels).encode("utf-8")
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
            archive.seek(0)
            with self._errors(BuildError, f"labelling {name}", dockerfile="Dockerfile"):
                chunks = api.build(
                    fileobj=archive,
                    custom_context=True,
                    decode=True,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    timeout=self._timeout,
                )
                image_id = follow_build(chunks, name, "Dockerfile", on_log)
                if not image_id.startswith("sha256:"):
                    image_id = str(api.inspect_image(image_id)["Id"])
        return image_id

    def image_id(self, reference: str) -> str | None:
        """The id (``sha256:...``) of a local image or tag, None when the engine has none."""
        if self._probe is not None:
            return self._probe.image_id(reference)
        import docker

        api = self._api()
        with self._errors(BuildError, f"looking up image {reference}"):
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
        registry = docker.auth.resolve_repository_name(repo)[0]
        auth = dict(auth_config) if auth_config is not None else auth_from_env(registry)
        api = self._api()
        with self._errors(PushError, f"pushing {reference} to registry {registry}"):
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
        """Pull ``reference`` and return its image id. Raises :class:`PullError`."""
        repo, tag = split_reference(reference)
        api = self._api()
        with self._errors(PullError, f"pulling {reference}"):
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
                self._clients.append(api)
            self._local.api = api
        elif self._closed:
            raise RuntimeError("DockerEngine used after close()")
        return api

    def _tag(self, api: Any, image_id: str, reference: str) -> None:
        repo, tag = split_reference(reference)
        if not api.tag(image_id, repo, tag, force=True):
            raise BuildError(f"the engine did not tag {image_id} as {reference}")

    @contextmanager
    def _errors(
        self, error: type[ExternalError], doing: str, *, dockerfile: str | None = None
    ) -> Iterator[None]:
        """Turn docker-py and transport failures into smartshare errors."""
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
            detail = str(exc.explanation or exc).strip()
            hint = None
            if error is BuildError:
                hint = build_hint(detail, step=None, dockerfile=dockerfile)
            elif error is PushError:
                hint = push_hint(detail)
            raise error(f"{doing} failed: {detail}", hint=hint) from exc
        except docker.errors.DockerException as exc:
            raise error(f"{doing} failed: {exc}") from exc

    def _lost(self, doing: str, exc: BaseException) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"lost the Docker engine at {self.endpoint} while {doing}: {_reason(exc)}",
            hint=ENGINE_HINT,
        )


def _client_params(docker_host: str | None) -> tuple[dict[str, Any], str]:
    """docker-py client arguments and a printable endpoint, resolved like the docker CLI."""
    import docker

    if docker_host:
        return {"base_url": docker_host}, redact_url(docker_host)
    params: dict[str, Any] = docker.utils.kwargs_from_env()
    if "base_url" in params:
        return params, redact_url(str(params["base_url"]))
    context = _current_context()
    if context is not None:
        name, host, tls = context
        params = {"base_url": host}
        if tls is not None:
            params["tls"] = tls
        return params, f"{redact_url(host)} (docker context '{name}')"
    return params, DEFAULT_ENDPOINT


def _current_context() -> tuple[str, str, Any] | None:
    """The docker CLI's current non-default context as (name, host, tls), if any."""
    from docker.context import ContextAPI

    try:
        context = ContextAPI.get_context(os.environ.get("DOCKER_CONTEXT") or None)
    except Exception:  # a broken context store must not hide the real problem
        return None
    if context is None or context.name == "default" or not context.Host:
        return None
    return str(context.name), str(context.Host), context.TLSConfig


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
