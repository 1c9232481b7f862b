"""Build, tag and push images through a Docker engine (docker-py).

Only the engine's classic builder is spoken (docker-py has no BuildKit client),
so BuildKit-only Dockerfile syntax (``RUN --mount``, heredocs) fails with a
:class:`BuildError` that says so.

``docker`` is imported inside functions: the CLI must start without it.

One :class:`DockerEngine` may be shared by several threads. docker-py's client
is a ``requests`` session, which is not documented as thread-safe, so each
thread gets its own client to the same endpoint; that also lets two builds
stream at the same time instead of queueing behind a lock.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from smartshare.enginesocket import ENGINE_HINT, PERMISSION_HINT, EngineSocket, socket_path
from smartshare.errors import (
    BuildError,
    EngineUnavailableError,
    ExternalError,
    InvalidInputError,
    PushError,
)
from smartshare.fetching.urls import redact_url

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

LogCallback = Callable[[str], None]

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
USERNAME_VAR = "SMARTSHARE_REGISTRY_USERNAME"
PASSWORD_VAR = "SMARTSHARE_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret

# The version probe answers at once from a live engine; waiting the full build
# timeout for a dead TCP endpoint would only delay the error.
_PROBE_TIMEOUT_S = 30
_STEP_OUTPUT_LINES = 12
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
_LOADED = re.compile(r"Loaded image ID: (sha256:[0-9a-f]{64})")
_SAVE_CHUNK = 1 << 16
_HISTORY_TEXT_MAX = 200


@dataclass(frozen=True)
class BuiltImage:
    """An image the engine has built."""

    image_id: str  # sha256:...
    tags: tuple[str, ...]


def split_reference(reference: str) -> tuple[str, str]:
    """Split ``[host[:port]/]path[:tag]`` into repository and tag (``latest`` if none).

    The tag is what follows the last ``:`` after the last ``/``, so a registry
    port is never mistaken for a tag.
    """
    ref = reference.strip()
    if "@" in ref:
        raise InvalidInputError(
            f"image reference '{reference}' names a digest; a tag is needed here",
            hint="use a reference of the form registry/name:tag",
        )
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        repo, tag = ref[:colon], ref[colon + 1 :]
    else:
        repo, tag = ref, "latest"
    if not repo or not tag or repo.endswith("/") or ref != reference:
        raise InvalidInputError(
            f"'{reference}' is not a valid image reference",
            hint="use a reference of the form registry/name:tag, e.g. 127.0.0.1:5000/app:1.0",
        )
    return repo, tag


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
        context, dockerfile_rel = _check_context(context_dir, dockerfile)
        for tag in tags:
            if not docker.utils.build.match_tag(tag):
                raise BuildError(
                    f"'{tag}' is not a valid image tag",
                    hint="image names are lower-case: registry/name:tag",
                )
        api = self._api()
        with tempfile.TemporaryFile() as archive:
            _write_context(context, dockerfile_rel, archive)
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
                image_id = _follow_build(chunks, name, dockerfile_rel, on_log)
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
        except _NoShortcut as exc:
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
        dockerfile = _label_dockerfile(base_id, labels).encode("utf-8")
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
                image_id = _follow_build(chunks, name, "Dockerfile", on_log)
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

    def tag(self, *, image_id: str, reference: str) -> None:
        """Point ``reference`` (``repo:tag``) at ``image_id``, moving it if it exists."""
        api = self._api()
        with self._errors(BuildError, f"tagging {image_id} as {reference}"):
            self._tag(api, image_id, reference)

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
        auth = dict(auth_config) if auth_config is not None else _auth_from_env(registry)
        api = self._api()
        with self._errors(PushError, f"pushing {reference} to registry {registry}"):
            chunks = api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth)
            return _follow_push(chunks, reference, registry, on_log)

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
                hint = _build_hint(detail, step=None, dockerfile=dockerfile)
            elif error is PushError:
                hint = _push_hint(detail)
            raise error(f"{doing} failed: {detail}", hint=hint) from exc
        except docker.errors.DockerException as exc:
            raise error(f"{doing} failed: {exc}") from exc

    def _lost(self, doing: str, exc: BaseException) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"lost the Docker engine at {self.endpoint} while {doing}: {_reason(exc)}",
            hint=ENGINE_HINT,
        )


# -- connection helpers ---------------------------------------------------


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


# -- build helpers --------------------------------------------------------


def _check_context(context_dir: Path, dockerfile: str) -> tuple[Path, str]:
    """Validate the context and Dockerfile; return the resolved context and the Dockerfile's
    path relative to it (POSIX), all before the engine is contacted."""
    if not context_dir.exists():
        raise BuildError(
            f"build context {context_dir} does not exist",
            hint="check the app's build context path in its manifest",
        )
    if not context_dir.is_dir():
        raise BuildError(
            f"build context {context_dir} is not a folder",
            hint="the build context must be a folder of the app's source",
        )
    context = context_dir.resolve()
    path = (context / dockerfile).resolve()
    if not path.is_relative_to(context):
        raise BuildError(
            f"Dockerfile {dockerfile} lies outside the build context {context_dir}",
            hint="give the Dockerfile as a path inside the build context",
        )
    relative = path.relative_to(context)
    if ".git" in relative.parts:
        raise BuildError(
            f"Dockerfile {dockerfile} lies inside .git, which never enters a build context",
            hint="give a Dockerfile from the app's source tree",
        )
    if not path.is_file():
        raise BuildError(
            f"Dockerfile not found: {context_dir / dockerfile}",
            hint="check the app's dockerfile path in its manifest (relative to the build context)",
        )
    return context, relative.as_posix()


def _dockerignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore, read the way docker-py reads it."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _label_dockerfile(base_id: str, labels: Mapping[str, str]) -> str:
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


class _NoShortcut(Exception):
    """The engine would not label an image without a build step; the message says why."""


def _load_with_labels(api: Any, base_id: str, labels: Mapping[str, str]) -> str:
    """Load a copy of ``base_id``'s config carrying ``labels``; return the new image's id.

    Raises :class:`_NoShortcut` for any failure: the caller then labels by a
    build step, which reports engine failures properly.
    """
    import docker
    import requests
    import urllib3

    try:
        base_config = _saved_config(api, base_id)
        if base_config is None:
            raise _NoShortcut("the engine's saved image holds no config matching its id")
        config, diff_ids = _labelled_config(base_config, labels)
        return _load_config(api, config, diff_ids, base_id=base_id, base_config=base_config)
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        tarfile.TarError,
        OSError,
        ValueError,  # also JSON and UTF-8 decoding errors
    ) as exc:
        raise _NoShortcut(f"{type(exc).__name__}: {exc}".strip()) from exc


def _saved_config(api: Any, image_id: str) -> bytes | None:
    """The config of ``image_id`` byte for byte as the engine stores it, else None.

    Only ``docker save`` hands out the stored bytes. The engine writes the whole
    archive (every layer of the image) before it sends anything, so this costs
    what tarring the image costs; stopping at the config spares only the transfer.
    """
    digest = image_id.removeprefix("sha256:")
    # The legacy layout (up to Docker 24) and the OCI layout (Docker 25+).
    wanted = {f"{digest}.json", f"blobs/sha256/{digest}"}
    # Not api.get_image(): it switches the read timeout off, and a wedged
    # engine would hang the run here.
    response = api._get(api._url("/images/{0}/get", image_id), stream=True)
    api._raise_for_status(response)
    chunks = response.iter_content(chunk_size=_SAVE_CHUNK)
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks)), mode="r|") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") in wanted:
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    break
            else:
                return None
    finally:
        # The rest stays unread: closing the response closes its socket.
        response.close()
    # With the containerd image store the id names a manifest, not a config.
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


def _labelled_config(config: bytes, labels: Mapping[str, str]) -> tuple[bytes, list[str]]:
    """``config`` with ``labels`` over its own and a history entry naming them; and its
    layers' diff ids. Everything else is kept as it was."""
    image = json.loads(config)
    if not isinstance(image, dict):
        raise _NoShortcut("the image config is not a JSON object")
    rootfs = image.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (
        not isinstance(diff_ids, list)
        or not diff_ids
        or not all(isinstance(d, str) and d.startswith("sha256:") for d in diff_ids)
    ):
        raise _NoShortcut("the image config lists no layers")
    run_config = image.get("config") or {}
    own_labels = run_config.get("Labels") if isinstance(run_config, dict) else None
    history = image.get("history") or []
    if not isinstance(run_config, dict) or not isinstance(own_labels, dict | None):
        raise _NoShortcut("the image config has no usable Labels")
    if not isinstance(history, list):
        raise _NoShortcut("the image config has no usable history")
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


def _load_config(
    api: Any, config: bytes, diff_ids: Sequence[str], *, base_id: str, base_config: bytes
) -> str:
    """Load ``config`` as an image over the layers the engine already has; return its id."""
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
    chunks = api.load_image(archive.getvalue(), quiet=True)
    if chunks is None:  # API < 1.23 reports nothing to check
        raise _NoShortcut("the engine does not report what it loaded")
    # The engine answers 200 and reports a failure inside the stream.
    output = []
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error")
            raise _NoShortcut(f"the engine did not load the labelled config: {message.strip()}")
        output.append(str(chunk.get("stream") or ""))
    new_id = f"sha256:{new_hex}"
    if new_id not in _LOADED.findall("".join(output)):
        raise _NoShortcut(f"the engine did not report loading {new_id}")
    return new_id


def _write_context(context: Path, dockerfile_rel: str, archive: Any) -> None:
    """Write the build context tar into ``archive``.

    Patterns cannot guarantee that ``.git`` stays out (a ``!.git/config`` line
    re-includes it), so it is dropped from the file list after matching.
    """
    from docker.utils.build import create_archive, exclude_paths

    try:
        files = exclude_paths(str(context), _dockerignore_patterns(context), dockerfile_rel)
        kept = sorted(f for f in files if ".git" not in PurePosixPath(f).parts)
        create_archive(root=str(context), files=kept, fileobj=archive, gzip=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(
            f"cannot pack the build context {context}: {exc}",
            hint="check that every file in the build context is readable",
        ) from exc


class _Lines:
    """Reassembles log lines: the engine splits them across chunks at will."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._pending = ""
        self._on_line = on_line

    def feed(self, text: str) -> None:
        *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._emit(line)

    def flush(self) -> None:
        pending, self._pending = self._pending, ""
        self._emit(pending)

    def _emit(self, raw: str) -> None:
        # A carriage return redraws a progress line: only its last state matters.
        states = [part.strip() for part in raw.split("\r") if part.strip()]
        if states:
            self._on_line(states[-1])


def _follow_build(
    chunks: Iterable[Mapping[str, Any]], name: str, dockerfile: str, on_log: LogCallback | None
) -> str:
    """Consume the build stream; return the image id or raise BuildError at the first error."""
    step: str | None = None
    output: deque[str] = deque(maxlen=_STEP_OUTPUT_LINES)
    image_id: str | None = None

    def on_line(line: str) -> None:
        nonlocal step, image_id
        if on_log is not None:
            on_log(line)
        if line.startswith("Step "):
            step = line
            output.clear()
        elif not line.startswith(("--->", "Removing intermediate container")):
            output.append(line)
        built = _BUILT.match(line)
        if built and image_id is None:
            image_id = built.group(1)

    lines = _Lines(on_line)
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            lines.flush()
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
            _raise_build_failure(name, dockerfile, step, message, list(output))
        if "stream" in chunk:
            lines.feed(str(chunk["stream"]))
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = str(aux["ID"])
    lines.flush()
    if image_id is None:
        raise BuildError(
            f"building {name}: the engine ended the build without reporting an image",
            hint="retry; if it persists, check the engine's log",
        )
    return image_id


def _raise_build_failure(
    name: str, dockerfile: str, step: str | None, message: str, output: list[str]
) -> NoReturn:
    where = f" at {_step_label(step)}" if step else ""
    text = f"building {name} failed{where}: {message}"
    # The step's own output usually says why (a compiler error, a missing file).
    shown = [line for line in output if line != message][-8:]
    if shown:
        text += "\nlast output of the step:\n" + "\n".join(f"  {line}" for line in shown)
    raise BuildError(text, hint=_build_hint(message, step=step, dockerfile=dockerfile))


def _step_label(step: str) -> str:
    # "Step 4/4 : RUN make" -> "step 4/4 (RUN make)"
    head, _, instruction = step.partition(" : ")
    return f"{head.lower()} ({instruction})" if instruction else step


def _build_hint(message: str, *, step: str | None, dockerfile: str | None) -> str:
    where = dockerfile or "the Dockerfile"
    if "BuildKit" in message:
        return (
            f"{where} uses BuildKit-only syntax; smartshare talks to the engine's classic "
            "builder, so rewrite that step without it"
        )
    if "parse error" in message or "unknown instruction" in message:
        return f"fix the syntax of {where}"
    if step is not None and step.partition(" : ")[2].upper().startswith("FROM"):
        return (
            "the base image could not be found or pulled: check its name, the network and "
            "`docker login`, or load it into the engine beforehand (`docker pull`/`docker load`)"
        )
    return f"see the build log (rerun with -v to see all of it) and fix the failing step in {where}"


# -- push helpers ---------------------------------------------------------


def _auth_from_env(registry: str) -> dict[str, str] | None:
    username = os.environ.get(USERNAME_VAR)
    password = os.environ.get(PASSWORD_VAR)
    if not username and not password:
        return None
    if not username or not password:
        raise PushError(
            f"only one of {USERNAME_VAR} and {PASSWORD_VAR} is set",
            hint="set both to log in to the registry, or neither to use the engine's own login",
        )
    return {"username": username, "password": password, "serveraddress": registry}


def _follow_push(
    chunks: Iterable[Mapping[str, Any]], reference: str, registry: str, on_log: LogCallback | None
) -> str:
    """Consume the push stream; return the digest or raise PushError at the first error."""
    digest: str | None = None
    last: dict[str, str] = {}
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
            raise PushError(
                f"pushing {reference} to registry {registry} failed: {message}",
                hint=_push_hint(message),
            )
        status = str(chunk.get("status") or "").strip()
        layer = str(chunk.get("id") or "")
        # Progress chunks repeat one status per layer many times: report changes only.
        if status and on_log is not None and last.get(layer) != status:
            last[layer] = status
            on_log(f"{layer}: {status}" if layer else status)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            digest = str(aux["Digest"])
        elif digest is None and (found := _DIGEST.search(status)):
            digest = found.group(1)
    if digest is None:
        raise PushError(
            f"pushing {reference} to registry {registry}: the engine reported no digest",
            hint="check the registry; retry the push",
        )
    return digest


def _push_hint(message: str) -> str:
    lowered = message.lower()
    if "does not exist locally" in lowered or "no such image" in lowered:
        return "build the image first (adopt without --no-build), then push"
    if "server gave http response to https client" in lowered:
        return (
            "the registry speaks plain HTTP: add it to the engine's insecure-registries "
            "(daemon.json), or serve it over TLS"
        )
    if any(word in lowered for word in ("unauthorized", "denied", "authentication required")):
        return f"log in to the registry (`docker login`), or set {USERNAME_VAR} and {PASSWORD_VAR}"
    return (
        "check the registry address and that it is running, and `docker login` "
        f"(or {USERNAME_VAR}/{PASSWORD_VAR}) if it needs credentials"
    )
