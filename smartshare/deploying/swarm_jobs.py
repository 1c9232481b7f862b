"""Jobs on Docker Swarm: ``replicated-job`` services, made through the engine's API.

The docker CLI reads ``mode: replicated-job`` in a stack file only from version
23 on, while Debian 12 ships 20.10 (engines run jobs since 20.10).  So a job's
entry of the stack file is turned here into the engine's service spec and
created, or updated (which runs it again), through the API: the same job on
every CLI.  It joins the stack like the services ``docker stack deploy`` makes:
the stack's label, its network (made here when no service made it yet), its
volumes and its swarm secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from smartshare.catalog.runtime import memory_bytes
from smartshare.deploying.swarm import NAMESPACE_LABEL, NETWORK
from smartshare.errors import ExternalError

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine

# Jobs came with API 1.41 (Docker Engine 20.10).
JOBS_API_VERSION = (1, 41)


def check_jobs_supported(engine: DockerEngine) -> None:
    """Raise an ExternalError when the engine is too old to run swarm jobs."""
    major, _, minor = engine.api_version.partition(".")
    if (int(major), int(minor or 0)) < JOBS_API_VERSION:
        raise ExternalError(
            f"the Docker engine at {engine.endpoint} speaks API {engine.api_version}: swarm "
            "jobs need Docker Engine 20.10 (API 1.41) or later",
            hint="upgrade Docker Engine on the swarm's nodes, or deploy with --target compose",
        )


def stack_network(engine: DockerEngine, project: str) -> str:
    """The id of the stack's network, made as ``docker stack deploy`` would when missing."""
    name = f"{project}_{NETWORK}"
    for network in engine.networks({NAMESPACE_LABEL: project}):
        if network.get("Name") == name:
            return str(network["Id"])
    return engine.create_network(name, {NAMESPACE_LABEL: project})


def job_spec(
    project: str,
    key: str,
    entry: Mapping[str, Any],
    *,
    network_id: str,
    secret_ids: Mapping[str, str],
) -> dict[str, Any]:
    """The engine's service spec of the job ``key`` from its (unescaped) stack file entry."""
    container: dict[str, Any] = {
        "Image": entry["image"],
        "Labels": {**entry["labels"], NAMESPACE_LABEL: project},
    }
    if "command" in entry:
        container["Args"] = list(entry["command"])  # a compose command is the image's CMD
    if "environment" in entry:
        container["Env"] = [f"{name}={value}" for name, value in entry["environment"].items()]
    mounts = []
    for volume in entry.get("volumes", ()):
        if volume["type"] == "volume":
            mounts.append(
                {
                    "Type": "volume",
                    "Source": f"{project}_{volume['source']}",
                    "Target": volume["target"],
                    "VolumeOptions": {"Labels": {NAMESPACE_LABEL: project}},
                }
            )
        else:
            mounts.append({"Type": "bind", "Source": volume["source"], "Target": volume["target"]})
    if mounts:
        container["Mounts"] = mounts
    secrets = []
    for secret in entry.get("secrets", ()):
        if secret["source"] not in secret_ids:
            raise ExternalError(f"swarm secret {secret['source']} is missing for job '{key}'")
        secrets.append(
            {
                "File": {
                    "Name": secret["target"],
                    "UID": secret["uid"],
                    "GID": secret["gid"],
                    "Mode": secret["mode"],
                },
                "SecretID": secret_ids[secret["source"]],
                "SecretName": secret["source"],
            }
        )
    if secrets:
        container["Secrets"] = secrets
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": {"Condition": "none"},
        "Networks": [{"Target": network_id, "Aliases": [key]}],
    }
    limits = (entry["deploy"].get("resources") or {}).get("limits") or {}
    if limits:
        task["Resources"] = {"Limits": _limits(limits)}
    return {
        "Name": f"{project}_{key}",
        "Labels": {**entry["deploy"]["labels"], NAMESPACE_LABEL: project},
        "TaskTemplate": task,
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    }


def run_job(
    engine: DockerEngine,
    spec: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
) -> None:
    """Create the job, or update it with ``spec`` (which runs it again)."""
    if existing is None:
        engine.create_service(spec)
        return
    version = int((existing.get("Version") or {}).get("Index") or 0)
    engine.update_service(str(existing["ID"]), version, spec)


def _limits(limits: Mapping[str, str]) -> dict[str, int]:
    converted = {}
    if "cpus" in limits:
        converted["NanoCPUs"] = round(float(limits["cpus"]) * 1e9)
    if "memory" in limits:
        converted["MemoryBytes"] = memory_bytes(limits["memory"])
    return converted
