"""Pushing: image references, registry credentials, and following the push stream.

A registry or an image reference is shown only through :func:`shown_reference`,
and text from the engine about one only through :func:`redact_reference`: a
``user:password@`` written into a registry never reaches a message or a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from smartshare.building.buildlog import LogCallback
from smartshare.errors import InvalidInputError, PushError
from smartshare.fetching.urls import redact_url

USERNAME_VAR = "SMARTSHARE_REGISTRY_USERNAME"
PASSWORD_VAR = "SMARTSHARE_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_DIGEST_SUFFIX = re.compile(r"@[a-z0-9]+([+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_LOGIN_HINT = (
    f"never write credentials into a registry or an image name: log in with `docker login`, "
    f"or set {USERNAME_VAR} and {PASSWORD_VAR}"
)


def _userinfo(reference: str) -> str | None:
    """The ``user[:password]`` part of a registry or image reference, if it has one."""
    text = reference.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = _DIGEST_SUFFIX.sub("", text).split("/", 1)[0]
    return host.rpartition("@")[0] or None


def shown_reference(reference: str) -> str:
    """A registry or image reference as it may be shown: credentials replaced by ``***``."""
    userinfo = _userinfo(reference)
    if userinfo is None:
        return reference
    shown = redact_url(reference)
    if shown != reference:
        return shown
    return reference.replace(f"{userinfo}@", "***@", 1)


def redact_reference(text: str, *references: str) -> str:
    """``text`` (an engine's message, a log line) with the credentials of ``references`` hidden."""
    for reference in references:
        userinfo = _userinfo(reference)
        if userinfo is None:
            continue
        text = text.replace(reference, shown_reference(reference))
        user, _, password = userinfo.partition(":")
        for secret in (userinfo, password or user):
            if secret:
                text = text.replace(secret, "***")
    return text


def refuse_credentials(reference: str) -> None:
    """Raise InvalidInputError, before any engine is asked, for a reference with credentials.

    For every call that takes an image reference (build, look up, push, pull,
    tag): the engine would keep the name, and its messages echo it.
    """
    if _userinfo(reference) is not None:
        raise InvalidInputError(
            f"image reference '{shown_reference(reference)}' holds credentials",
            hint=_LOGIN_HINT,
        )


def split_reference(reference: str) -> tuple[str, str]:
    """Split ``[host[:port]/]path[:tag]`` into repository and tag (``latest`` if none).

    The tag is what follows the last ``:`` after the last ``/``, so a registry
    port is never mistaken for a tag.
    """
    ref = reference.strip()
    refuse_credentials(ref)
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
    doing = f"pushing {shown_reference(reference)} to registry {shown_reference(registry)}"
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
            message = redact_reference(message, reference, registry)
            raise PushError(f"{doing} failed: {message}", hint=push_hint(message))
        status = str(chunk.get("status") or "").strip()
        layer = str(chunk.get("id") or "")
        # Progress chunks repeat one status per layer many times: report changes only.
        if status and on_log is not None and last.get(layer) != status:
            last[layer] = status
            line = f"{layer}: {status}" if layer else status
            on_log(redact_reference(line, reference, registry))
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            digest = str(aux["Digest"])
        elif digest is None and (found := _DIGEST.search(status)):
            digest = found.group(1)
    if digest is None:
        raise PushError(
            f"{doing}: the engine reported no digest",
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
