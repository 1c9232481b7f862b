"""Where the engine is, and read-only calls over its unix socket without docker-py.

:func:`socket_path` and :func:`client_params` find the engine as the docker CLI
does (DOCKER_HOST, the docker context, the default socket).

A no-op ``adopt`` only asks the engine whether it answers and which image each
tag names.  Importing docker-py for that (with requests and urllib3) costs more
than the rest of such a run, so those two calls are made here with the
standard library; builds and pushes go through docker-py (:mod:`.engine`).
``deploy`` and ``ps`` read containers and images the same way (:meth:`EngineSocket.get_json`).
Endpoints this module cannot reach the same way docker-py would (TCP, TLS,
SSH, docker contexts) are left to docker-py entirely.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from smartshare.building.push import redact_reference, shown_reference
from smartshare.errors import EngineUnavailableError
from smartshare.fetching.urls import redact_url

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_ENDPOINT = f"unix://{DEFAULT_SOCKET}"
ENGINE_HINT = (
    "start a Docker engine (`sudo systemctl start docker`), or from a smartshare checkout run "
    "`scripts/docker-sandbox start` and load its environment (`. .sandbox/env`) so DOCKER_HOST "
    "points at it; or pass --no-build to skip image builds"
)
PERMISSION_HINT = (
    "the engine's socket is not yours to use: run as a member of the `docker` group "
    "(`sudo usermod -aG docker $USER`, then log in again); or pass --no-build"
)


def socket_path(docker_host: str | None = None) -> str | None:
    """The engine's unix socket, resolved as the docker CLI does; None when not a local socket.

    ``docker_host`` wins, then DOCKER_HOST; without either, a current docker
    context other than ``default`` (DOCKER_CONTEXT or the CLI's config) means
    "ask docker-py", and otherwise the default socket is used.
    """
    host = docker_host or os.environ.get("DOCKER_HOST")
    if host:
        if host.startswith("unix://") and len(host) > len("unix://"):
            return host[len("unix://") :]
        return None
    if os.environ.get("DOCKER_CONTEXT", "default") != "default":
        return None
    config_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        config = json.loads(Path(config_dir, "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_SOCKET
    except (OSError, ValueError):
        return None  # let docker-py read it and report
    current = config.get("currentContext") if isinstance(config, dict) else None
    return DEFAULT_SOCKET if current in (None, "", "default") else None


def client_params(docker_host: str | None) -> tuple[dict[str, Any], str]:
    """docker-py client arguments and a printable endpoint, resolved like the docker CLI."""
    import docker

    if docker_host:
        return {"base_url": docker_host}, redact_url(docker_host)
    params: dict[str, Any] = docker.utils.kwargs_from_env()
    if "base_url" in params:
        return params, redact_url(str(params["base_url"]))
    context = current_context()
    if context is not None:
        name, host, tls = context
        params = {"base_url": host}
        if tls is not None:
            params["tls"] = tls
        return params, f"{redact_url(host)} (docker context '{name}')"
    return params, DEFAULT_ENDPOINT


def current_context() -> tuple[str, str, Any] | None:
    """The docker CLI's current non-default context as (name, host, tls), if any."""
    from docker.context import ContextAPI

    try:
        context = ContextAPI.get_context(os.environ.get("DOCKER_CONTEXT") or None)
    except Exception:  # a broken context store must not hide the real problem
        return None
    if context is None or context.name == "default" or not context.Host:
        return None
    return str(context.name), str(context.Host), context.TLSConfig


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class EngineSocket:
    """An engine on a unix socket; each call opens its own connection, so threads may share it."""

    def __init__(self, path: str, *, endpoint: str, timeout: float) -> None:
        self.path = path
        self.endpoint = endpoint
        self._timeout = timeout
        self.api_version: str | None = None

    def ping(self) -> str:
        """The engine's API version; raises EngineUnavailableError when it does not answer."""
        status, headers, _body = self._get("/_ping")
        version = headers.get("api-version")
        if status != 200 or not version:
            raise EngineUnavailableError(
                f"no Docker engine answers at {self.endpoint}: GET /_ping returned HTTP {status}",
                hint=ENGINE_HINT,
            )
        self.api_version = version
        return version

    def image_id(self, reference: str) -> str | None:
        """The id of a local image or tag, None when the engine has none."""
        prefix = f"/v{self.api_version}" if self.api_version else ""
        status, _headers, body = self._get(f"{prefix}/images/{quote(reference, safe='/:')}/json")
        if status == 404:
            return None
        if status != 200:
            raise EngineUnavailableError(
                f"the Docker engine at {self.endpoint} could not look up image "
                f"{shown_reference(reference)}: "
                f"HTTP {status} {redact_reference(_message(body), reference)}",
                hint=ENGINE_HINT,
            )
        image_id = json.loads(body).get("Id")
        if not isinstance(image_id, str):
            raise EngineUnavailableError(
                f"the Docker engine at {self.endpoint} sent no id for image "
                f"{shown_reference(reference)}"
            )
        return image_id

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` (``/containers/json``) of the engine's API as JSON; None on HTTP 404."""
        body = self.get_raw(path, query)
        return None if body is None else json.loads(body)

    def get_raw(self, path: str, query: Mapping[str, str] | None = None) -> bytes | None:
        """GET ``path`` of the engine's API; None on HTTP 404, EngineUnavailableError otherwise."""
        prefix = f"/v{self.api_version}" if self.api_version else ""
        url = prefix + path + (f"?{urlencode(dict(query))}" if query else "")
        status, _headers, body = self._get(url)
        if status == 404:
            return None
        if status != 200:
            raise EngineUnavailableError(
                f"the Docker engine at {self.endpoint} answered GET {path} with "
                f"HTTP {status} {_message(body)}",
                hint=ENGINE_HINT,
            )
        return body

    def _get(self, url: str) -> tuple[int, dict[str, str], bytes]:
        connection = _UnixConnection(self.path, self._timeout)
        try:
            connection.request("GET", url, headers={"Host": "docker"})
            response = connection.getresponse()
            body = response.read()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, body
        except OSError as exc:
            raise EngineUnavailableError(
                f"no Docker engine answers at {self.endpoint}: {_reason(exc)}",
                hint=PERMISSION_HINT if isinstance(exc, PermissionError) else ENGINE_HINT,
            ) from exc
        except http.client.HTTPException as exc:
            raise EngineUnavailableError(
                f"no Docker engine answers at {self.endpoint}: not an engine's answer ({exc!r})",
                hint=ENGINE_HINT,
            ) from exc
        finally:
            connection.close()


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the socket does not exist"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return exc.strerror or str(exc)


def _message(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:200]
    return str(data.get("message", "")) if isinstance(data, dict) else ""
