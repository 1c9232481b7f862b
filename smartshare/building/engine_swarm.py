"""The Swarm part of :class:`smartshare.building.engine.DockerEngine`.

Kept apart only for size: :class:`SwarmCalls` is a base class of
``DockerEngine``, so the engine is still reached through that one class.
Reads (the node's swarm state, services, tasks, secrets, networks, logs) go
over the local socket without docker-py when the engine is on one, as the
container reads of ``deploy`` and ``ps`` do; writes go through docker-py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from smartshare.building.engine_containers import EnginePart, label_filters
from smartshare.errors import ExternalError


class SwarmCalls(EnginePart):
    """Services, tasks, secrets, networks and volumes of a swarm, for ``deploy --target swarm``."""

    # -- reading ----------------------------------------------------------

    def swarm_state(self) -> dict[str, Any]:
        """The engine's ``Swarm`` section of ``/info`` (LocalNodeState, ControlAvailable, Nodes)."""
        info = self._read("/info", "reading the engine's swarm state") or {}
        swarm: dict[str, Any] = info.get("Swarm") or {}
        return swarm

    def services(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every swarm service carrying all ``labels``."""
        query = {"filters": json.dumps(label_filters(labels))}
        return list(self._read("/services", "listing swarm services", query) or [])

    def tasks(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every task the swarm keeps (running or not) of the services with ``labels``."""
        query = {"filters": json.dumps(label_filters(labels))}
        return list(self._read("/tasks", "listing swarm tasks", query) or [])

    def secrets(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        query = {"filters": json.dumps(label_filters(labels))}
        return list(self._read("/secrets", "listing swarm secrets", query) or [])

    def networks(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        query = {"filters": json.dumps(label_filters(labels))}
        return list(self._read("/networks", "listing networks", query) or [])

    def volumes(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        query = {"filters": json.dumps(label_filters(labels))}
        found = self._read("/volumes", "listing volumes", query) or {}
        return list(found.get("Volumes") or [])

    def service_logs(self, service_id: str, *, tail: int) -> str:
        """The last ``tail`` lines the tasks of a service wrote (stdout and stderr), as text."""
        return self._read_log(
            f"/services/{quote(service_id, safe='')}/logs",
            f"reading the log of service {service_id[:12]}",
            tail=tail,
        )

    # -- writing ----------------------------------------------------------

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        """Create a swarm secret and return its id; the value goes nowhere else."""
        api = self._api()
        body = {"Name": name, "Data": base64.b64encode(data).decode("ascii"), "Labels": labels}
        with self._errors(ExternalError, f"creating swarm secret {name}"):
            created = api._result(api._post_json(api._url("/secrets/create"), data=body), True)
        return str(created["ID"])

    def remove_secret(self, secret_id: str) -> bool:
        """Remove a swarm secret; False when the engine refuses (a service still uses it)."""
        import docker

        api = self._api()
        try:
            api._raise_for_status(api._delete(api._url("/secrets/{0}", secret_id)))
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False
        return True

    def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """An attachable overlay network (as ``docker stack deploy`` makes its default one)."""
        api = self._api()
        body = {
            "Name": name,
            "Driver": "overlay",
            "Attachable": True,
            "Labels": labels,
            "CheckDuplicate": True,
        }
        with self._errors(ExternalError, f"creating network {name}"):
            created = api._result(api._post_json(api._url("/networks/create"), data=body), True)
        return str(created["Id"])

    def create_service(self, spec: Mapping[str, Any]) -> str:
        api = self._api()
        with self._errors(ExternalError, f"creating service {spec.get('Name')}"):
            created = api._result(api._post_json(api._url("/services/create"), data=spec), True)
        return str(created["ID"])

    def update_service(self, service_id: str, version: int, spec: Mapping[str, Any]) -> None:
        api = self._api()
        url = api._url("/services/{0}/update", service_id)
        with self._errors(ExternalError, f"updating service {spec.get('Name')}"):
            api._raise_for_status(api._post_json(url, data=spec, params={"version": version}))

    def remove_service(self, service_id: str) -> None:
        import docker

        api = self._api()
        with self._errors(ExternalError, f"removing service {service_id[:12]}"):
            try:
                api._raise_for_status(api._delete(api._url("/services/{0}", service_id)))
            except docker.errors.NotFound:
                return

    def remove_container(self, container_id: str) -> None:
        """Remove a container (stopped first when it runs); gone already is fine."""
        import docker

        api = self._api()
        with self._errors(ExternalError, f"removing container {container_id[:12]}"):
            try:
                api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                return

    def remove_volume(self, name: str) -> bool:
        """Remove a volume; False when the engine refuses (a container still uses it)."""
        import docker

        api = self._api()
        try:
            api._raise_for_status(api._delete(api._url("/volumes/{0}", name)))
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False
        return True
