"""Pushing: image references, registry credentials, and following the push stream."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from smartshare.building.buildlog import LogCallback
from smartshare.errors import InvalidInputError, PushError

USERNAME_VAR = "SMARTSHARE_REGISTRY_USERNAME"
PASSWORD_VAR = "SMARTSHARE_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


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


def auth_from_env(registry: str) -> dict[str, str] | None:
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


def follow_push(
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
                hint=push_hint(message),
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


def push_hint(message: str) -> str:
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
