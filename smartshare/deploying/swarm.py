"""The stack as a Docker Swarm stack file (``WORKSPACE/deploy/stack.yaml``).

One swarm service per container of the stack, named by its stack name
(``sikda-web``: also its DNS name on the stack's network, an attachable
overlay network); jobs are ``replicated-job`` services that run once.  What
Compose does with ``depends_on`` and ``restart:``, ``docker stack deploy``
ignores: the target brings services up in the order they wait for each other
(:mod:`.swarm_target`), and restarts follow ``deploy.restart_policy``.

Choices a region can rely on:

- **Images.**  On a swarm of one node, every service runs its image by id,
  exactly the image adopt built (or deploy pulled): no registry is asked.  A
  swarm of several nodes pulls images on each node: the app's own images are
  then run by the digest ``adopt --push`` recorded (``repo@sha256:...``), and
  an app never pushed is refused; external images by the digest the mirror
  gave when pulled here.
- **Ports and names.**  A public port is published in ``mode: host`` on each
  node that runs the service (the routing mesh needs iptables), and a service's
  name resolves to its tasks' addresses (``endpoint_mode: dnsrr``: a virtual
  IP needs iptables too).  Swarm gives such a port
  no host address, hence ``deploy.bind_address`` must be ``0.0.0.0``.  Two
  copies cannot hold one host port on a node, so a service with a public port
  is updated ``stop-first`` (a short gap), every other one ``start-first``
  (the new copy healthy before the old one stops).
- **Updates** roll back by themselves when the new copy fails or turns
  unhealthy (``failure_action: rollback``).
- **Secrets** (secret parameters and runtime files) are swarm secrets whose
  name carries a keyed digest (HMAC, workspace key) of the content, so a
  changed value is a new secret and the services using it are updated; each
  is given to the user the image runs as (uid/gid/mode), at its path.  The
  file declares them ``external``: the target creates them through the
  engine, and their values are never written to disk.

Engine-free: this module only builds data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smartshare.catalog.imagerefs import parse_image_reference
from smartshare.catalog.runtime import swarm_address_problem
from smartshare.deploying.compose import (
    config_fingerprint,
    escape_interpolation,
    volume_mounts,
)
from smartshare.deploying.labels import (
    JOB,
    LABEL_APP,
    LABEL_CONFIG,
    LABEL_KIND,
    LABEL_PROJECT,
    LABEL_REGION,
    LABEL_SECRET,
    LABEL_SERVICE,
)
from smartshare.deploying.stack import Stack, StackContainer
from smartshare.deploying.target import ImageFacts
from smartshare.errors import InvalidInputError, UsageError

FILE_NAME = "stack.yaml"
STACK_FILE_VERSION = "3.9"
NAMESPACE_LABEL = "com.docker.stack.namespace"
NETWORK = "default"
UPDATE_MONITOR = "5s"
RESTART_DELAY = "5s"
_NAME_MAX = 64  # swarm's limit on a secret's name
_DIGEST_CHARS = 12


@dataclass(frozen=True)
class SwarmSecret:
    """A swarm secret the stack needs: its versioned name and (never shown) content."""

    name: str
    app: str
    mount_key: str  # the MountedFile's key: <stack name>-param-<param>, <stack name>-file-<n>
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class SwarmDocument:
    document: dict[str, Any]  # as values are: escaped only when written (dump_document)
    secrets: tuple[SwarmSecret, ...]
    fingerprints: dict[str, str]


def secret_name(project: str, mount_key: str, content: bytes, *, key: bytes) -> str:
    """``<project>_<mount key>_<HMAC(key, content)[:12]>``, within swarm's 64 characters.

    Keyed, so that the name says nothing about a secret; the mount key is cut
    when the whole would be too long (the digest still tells contents apart).
    """
    digest = hmac.new(key, content, hashlib.sha256).hexdigest()[:_DIGEST_CHARS]
    head = project[: _NAME_MAX - _DIGEST_CHARS - 1].rstrip("-_")
    room = _NAME_MAX - len(head) - _DIGEST_CHARS - 2
    middle = mount_key[: max(room, 0)].rstrip("-_.")
    return "_".join(part for part in (head, middle, digest) if part)


def swarm_owner(user: str | None) -> tuple[str, str, int]:
    """uid, gid and mode of a secret for a container running as ``user`` (an image's ``User``).

    Swarm sets them itself, whoever runs smartshare: a numeric user gets its
    files 0400; root too; a user given by name (only the image's /etc/passwd
    resolves it) or unknown (a dry run without the image) gets 0444 files,
    readable inside the container only.
    """
    if user is None:
        return "0", "0", 0o444
    name, _, group = user.partition(":")
    if name in ("", "0", "root"):
        return "0", "0", 0o400
    if name.isdigit() and (not group or group.isdigit()):
        return name, group or "0", 0o400
    return "0", "0", 0o444


def stack_document(
    stack: Stack, *, key: bytes, images: Mapping[str, ImageFacts], nodes: int | None
) -> SwarmDocument:
    """The stack file of ``stack`` as data, the secrets it names, each service's fingerprint.

    ``nodes`` is the swarm's size (None: unknown, as in a dry run without an
    engine, taken as one node).  Raises InvalidInputError for what Swarm cannot
    do with the profile, UsageError for images a multi-node swarm cannot pull.
    """
    problem = swarm_address_problem(stack.bind_address)
    if problem:
        raise InvalidInputError(
            f"the stack cannot run on Docker Swarm as the region profile says: {problem}",
            hint="change deploy.bind_address in the region profile (and adopt again)",
        )
    services: dict[str, Any] = {}
    secrets: dict[str, SwarmSecret] = {}
    volumes: dict[str, Any] = {}
    fingerprints: dict[str, str] = {}
    for container in stack.containers():
        _check_replicas(container, nodes)
        user = images[container.image].user if container.image in images else None
        uid, gid, mode = swarm_owner(user)
        mounts: list[dict[str, Any]] = []
        for mounted in container.files:
            name = secret_name(stack.project, mounted.key, mounted.content, key=key)
            secrets[name] = SwarmSecret(name, container.app, mounted.key, mounted.content)
            mounts.append(
                {"source": name, "target": mounted.target, "uid": uid, "gid": gid, "mode": mode}
            )
        service = _service(stack, container, _image(container, images, nodes), mounts)
        fingerprint = config_fingerprint(service, container, key=key)
        service["labels"][LABEL_CONFIG] = fingerprint
        service["deploy"]["labels"][LABEL_CONFIG] = fingerprint
        services[container.key] = service
        fingerprints[container.key] = fingerprint
        if stack.data_dir is None:
            for volume in container.volumes:
                volumes[volume.key] = {}
    document: dict[str, Any] = {
        "version": STACK_FILE_VERSION,
        "services": services,
        "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
    }
    if volumes:
        document["volumes"] = volumes
    if secrets:
        document["secrets"] = {name: {"external": True} for name in sorted(secrets)}
    return SwarmDocument(document, tuple(secrets[n] for n in sorted(secrets)), fingerprints)


def dump_document(document: Mapping[str, Any], keys: list[str] | None = None) -> bytes:
    """The YAML text of ``document`` (only the services ``keys`` when given: networks,
    volumes and secrets are kept), every ``$`` doubled for docker stack's interpolation."""
    from smartshare.deploying.compose import dump

    chosen = dict(document)
    if keys is not None:
        chosen["services"] = {k: document["services"][k] for k in keys}
    return dump(escape_interpolation(chosen))


def secret_labels(stack: Stack, secret: SwarmSecret) -> dict[str, str]:
    """The labels of a secret smartshare made: how ``deploy`` and ``down`` find their own."""
    return {
        LABEL_PROJECT: stack.project,
        LABEL_REGION: stack.region,
        LABEL_APP: secret.app,
        LABEL_SECRET: secret.mount_key,
    }


def _check_replicas(container: StackContainer, nodes: int | None) -> None:
    if container.published is None or container.replicas <= max(nodes or 1, 1):
        return
    raise InvalidInputError(
        f"service '{container.key}' of app '{container.app}' has {container.replicas} "
        f"replicas and a public port, but the swarm has {nodes or 1} node(s): a host port "
        "holds one copy per node",
        hint="add nodes to the swarm, or lower the service's replicas in its manifest",
    )


def _image(container: StackContainer, images: Mapping[str, ImageFacts], nodes: int | None) -> str:
    """What a service runs: by id on one node; by registry digest across nodes."""
    facts = images.get(container.image)
    if (nodes or 1) <= 1:
        return facts.image_id if facts is not None else container.image
    if container.external is None:
        if container.pushed is None:
            raise UsageError(
                f"the swarm has {nodes} nodes, which pull '{container.app}' from a registry, "
                "but its images were never pushed",
                hint=f"adopt '{container.app}' again with --push (to the registry the region "
                "profile names), then deploy",
            )
        return container.pushed
    wanted = parse_image_reference(container.image).repository
    for pinned in facts.repo_digests if facts is not None else ():
        if parse_image_reference(pinned).repository == wanted:
            return pinned
    return container.image


def _service(
    stack: Stack, container: StackContainer, image: str, secrets: list[dict[str, Any]]
) -> dict[str, Any]:
    service: dict[str, Any] = {"image": image}
    if container.command is not None:
        service["command"] = list(container.command)
    if container.environment:
        service["environment"] = dict(sorted(container.environment.items()))
    if secrets:
        service["secrets"] = secrets
    if container.volumes:
        service["volumes"] = volume_mounts(stack, container)
    if container.published is not None:
        service["ports"] = [
            {
                "target": container.published.container_port,
                "published": container.published.host_port,
                "protocol": "tcp",
                "mode": "host",
            }
        ]
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
    labels = {
        LABEL_APP: container.app,
        LABEL_REGION: stack.region,
        LABEL_SERVICE: container.name,
        LABEL_KIND: container.kind,
    }
    service["labels"] = labels
    service["networks"] = [NETWORK]
    service["deploy"] = _deploy(container, dict(labels))
    return service


def _deploy(container: StackContainer, labels: dict[str, str]) -> dict[str, Any]:
    # dnsrr: a service's name resolves to its tasks' addresses.  A virtual IP needs
    # IPVS rules in each container, which engines running without iptables lack.
    deploy: dict[str, Any] = {"labels": labels, "endpoint_mode": "dnsrr"}
    if container.kind == JOB:
        deploy["mode"] = "replicated-job"
        deploy["restart_policy"] = {"condition": "none"}
    else:
        order = "stop-first" if container.published is not None else "start-first"
        deploy["mode"] = "replicated"
        deploy["replicas"] = container.replicas
        deploy["restart_policy"] = {"condition": "any", "delay": RESTART_DELAY}
        deploy["update_config"] = {
            "parallelism": 1,
            "order": order,
            "failure_action": "rollback",
            "monitor": UPDATE_MONITOR,
        }
        deploy["rollback_config"] = {
            "parallelism": 1,
            "order": order,
            "failure_action": "pause",
            "monitor": UPDATE_MONITOR,
        }
    if container.resources is not None:
        limits: dict[str, str] = {}
        if container.resources.memory is not None:
            limits["memory"] = container.resources.memory
        if container.resources.cpus is not None:
            limits["cpus"] = str(container.resources.cpus)
        if limits:
            deploy["resources"] = {"limits": limits}
    return deploy
