"""The stack as a Docker Compose file (``WORKSPACE/deploy/compose.yaml``).

One compose service per container of the stack, named by its stack name
(``sikda-web``: also its DNS name on the project's network); jobs are
services with ``restart: "no"`` that dependants wait for with
``service_completed_successfully``.  No secret value is ever in the file:
secret parameters and runtime files are compose file secrets read from the
deploy folder's ``secrets/``.  Every string is escaped for compose's own
``$`` interpolation, and YAML is written by a YAML library, never by hand.

Engine-free: this module only builds data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from smartshare.catalog.runtime import Condition
from smartshare.deploying.labels import (
    JOB,
    LABEL_APP,
    LABEL_CONFIG,
    LABEL_KIND,
    LABEL_REGION,
    LABEL_SERVICE,
)
from smartshare.deploying.stack import Stack, StackContainer

FILE_NAME = "compose.yaml"

_CONDITIONS = {
    Condition.STARTED: "service_started",
    Condition.HEALTHY: "service_healthy",
    Condition.COMPLETED: "service_completed_successfully",
}


def compose_document(stack: Stack, *, key: bytes) -> dict[str, Any]:
    """The compose file of ``stack`` as data; ``key`` (the workspace's) fingerprints secrets."""
    services: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for container in stack.containers():
        services[container.key] = _service(stack, container, key=key)
        for mounted in container.files:
            secrets[mounted.key] = {"file": f"./{mounted.source}"}
        if stack.data_dir is None:
            for volume in container.volumes:
                volumes[volume.key] = {}
    document: dict[str, Any] = {"name": stack.project, "services": services}
    if secrets:
        document["secrets"] = secrets
    if volumes:
        document["volumes"] = volumes
    escaped: dict[str, Any] = escape_interpolation(document)
    return escaped


def dump(document: Mapping[str, Any]) -> bytes:
    """The YAML text of a compose document."""
    import yaml

    header = "# Written by smartshare deploy: edit the manifests or the region profile instead.\n"
    # libyaml's emitter when PyYAML has it: the same YAML, ten times faster.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(
        dict(document),
        Dumper=dumper,
        sort_keys=False,
        allow_unicode=False,
        default_flow_style=False,
        width=4096,
    )
    return (header + body).encode("utf-8")


def data_folder(stack: Stack, volume_key: str) -> str | None:
    """The host folder of a volume when the region keeps data in ``deploy.data_dir``."""
    if stack.data_dir is None:
        return None
    return f"{stack.data_dir.rstrip('/')}/{volume_key}"


def volume_mounts(stack: Stack, container: StackContainer) -> list[dict[str, str]]:
    """The container's volumes as mounts: a bind of ``deploy.data_dir``'s folder, else a volume."""
    mounts = []
    for volume in container.volumes:
        folder = data_folder(stack, volume.key)
        if folder is None:
            mounts.append({"type": "volume", "source": volume.key, "target": volume.path})
        else:
            mounts.append({"type": "bind", "source": folder, "target": volume.path})
    return mounts


def _service(stack: Stack, container: StackContainer, *, key: bytes) -> dict[str, Any]:
    service: dict[str, Any] = {"image": container.image}
    if container.command is not None:
        service["command"] = list(container.command)
    if container.environment:
        service["environment"] = dict(sorted(container.environment.items()))
    if container.files:
        service["secrets"] = [{"source": f.key, "target": f.target} for f in container.files]
    if container.volumes:
        service["volumes"] = volume_mounts(stack, container)
    if container.published is not None:
        service["ports"] = [
            {
                "target": container.published.container_port,
                "published": str(container.published.host_port),
                "host_ip": stack.bind_address,
                "protocol": "tcp",
            }
        ]
    internal = [
        p
        for p in container.ports
        if container.published is None or p != container.published.container_port
    ]
    if internal:
        service["expose"] = [str(p) for p in internal]
    if container.healthcheck is not None:
        check = container.healthcheck
        if check.http is not None:
            url = f"http://127.0.0.1:{check.http.port}{check.http.path}"
            test = ["CMD", "wget", "-q", "-O", "/dev/null", url]
        else:
            test = ["CMD", *(check.command or [])]
        service["healthcheck"] = {
            "test": test,
            "interval": check.interval,
            "timeout": check.timeout,
            "retries": check.retries,
            "start_period": check.start_period,
        }
    if container.depends_on:
        service["depends_on"] = {
            d.key: {"condition": _CONDITIONS[d.condition]} for d in container.depends_on
        }
    service["restart"] = "no" if container.kind == JOB else "unless-stopped"
    if container.resources is not None:
        limits: dict[str, str] = {}
        if container.resources.memory is not None:
            limits["memory"] = container.resources.memory
        if container.resources.cpus is not None:
            limits["cpus"] = str(container.resources.cpus)
        if limits:
            service["deploy"] = {"resources": {"limits": limits}}
    labels = {
        LABEL_APP: container.app,
        LABEL_REGION: stack.region,
        LABEL_SERVICE: container.name,
        LABEL_KIND: container.kind,
    }
    service["labels"] = labels
    labels[LABEL_CONFIG] = config_fingerprint(service, container, key=key)
    return service


def config_fingerprint(service: Mapping[str, Any], container: StackContainer, *, key: bytes) -> str:
    """A keyed digest of a service's configuration and the content of the files it reads.

    Compose recreates a container when its configuration changes, but not when
    only a secret file's content does: this label, part of the configuration,
    changes then too.  Keyed (HMAC) so that it says nothing about a secret.
    """
    digest = hmac.new(key, digestmod=hashlib.sha256)
    digest.update(json.dumps(service, sort_keys=True).encode("utf-8"))
    for mounted in container.files:
        for part in (mounted.key.encode("utf-8"), mounted.content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return "hmac-sha256:" + digest.hexdigest()


def escape_interpolation(value: Any) -> Any:
    """Every string with ``$`` doubled: compose (and docker stack) read ``$NAME`` as a variable."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value
