"""The Docker engine: connect, build, label, look up, push and run, through docker-py.

This is the one entry to the engine's API (docker-py, or for the read-only
calls of a no-op run on a local socket :mod:`.enginesocket`): :func:`connect`
and :class:`DockerEngine`.  Here are the connection, the cancellation of what
streams and the translation of errors, with the lookups, pushes and pulls;
``DockerEngine``'s other calls are in its base classes, kept apart for size:
builds in :mod:`.engine_build` (what a build made is removed by
:mod:`.engine_cleanup`), containers and images for ``deploy`` and ``ps`` in
:mod:`.engine_containers`, Docker Swarm in :mod:`.engine_swarm`.  The build
context, the stream followers, pushing's helpers and the label policy live
beside them.  Only the engine's classic builder is spoken (docker-py has no
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
import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from smartshare.building.buildlog import LogCallback, build_hint
from smartshare.building.engine_build import BuildCalls, BuiltImage
from smartshare.building.engine_containers import ContainerCalls
from smartshare.building.engine_swarm import SwarmCalls
from smartshare.building.enginesocket import (
    ENGINE_HINT,
    PERMISSION_HINT,
    EngineSocket,
    client_params,
    socket_path,
)
from smartshare.building.push import (
    auth_from_env,
    follow_push,
    push_hint,
    redact_reference,
    refuse_credentials,
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

__all__ = ["BuiltImage", "DockerEngine", "connect"]

# The version probe answers at once from a live engine; waiting the full build
# timeout for a dead TCP endpoint would only delay the error.
_PROBE_TIMEOUT_S = 30


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


class DockerEngine(BuildCalls, ContainerCalls, SwarmCalls):
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

    # -- looking up, pushing, pulling, tagging -------------------------------

    def image_id(self, reference: str) -> str | None:
        """The id (``sha256:...``) of a local image or tag, None when the engine has none."""
        refuse_credentials(reference)
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
