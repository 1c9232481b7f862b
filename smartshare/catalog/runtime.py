"""How an app runs (the manifest's ``runtime``) and where a region runs it (``deploy``).

An app declares its containers: long-running ``services``, one-off ``jobs``
that must complete (migrations, initial data), and ``outputs`` it offers to
the apps that require it.  A region profile says where its apps run: the
target (Docker Compose or Swarm), the project name, public ports, the data
folder and image mirrors.  Checks that need more than one model (an image
name the app does not declare, a dependency cycle, an output another app
reads) live in :mod:`smartshare.catalog.runtime_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from ipaddress import ip_address
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smartshare.catalog.imagerefs import image_reference_problem, mirror_prefix_problem
from smartshare.catalog.rules import relative_path_problem

CONTAINER_NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
OUTPUT_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"
PARAM_REF_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
MEMORY_PATTERN = r"^[1-9][0-9]*(\.[0-9]+)?[kmgKMG]?[bB]?$"
HTTP_PATH_PATTERN = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$"

RUNTIME_PATTERN_HINTS: dict[str, str] = {
    CONTAINER_NAME_PATTERN: "a name of lowercase letters, digits and '-', starting with a letter",
    ENV_NAME_PATTERN: "an environment variable name (letters, digits, '_')",
    OUTPUT_NAME_PATTERN: "an identifier: lowercase letters, digits and '_'",
    PROJECT_PATTERN: "a project name: lowercase letters, digits, '_' and '-'",
    DURATION_PATTERN: "a duration such as '5s', '1m30s' or '500ms'",
    MEMORY_PATTERN: "a memory size such as '128M' or '1G'",
    HTTP_PATH_PATTERN: "an HTTP path starting with '/', without spaces or quotes",
}

ContainerName = Annotated[str, Field(pattern=CONTAINER_NAME_PATTERN, max_length=30)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=128)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def container_path_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute path inside a container, or None."""
    if not value.startswith("/"):
        return "must be an absolute path inside the container, e.g. /etc/app/config.env"
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value) or "\\" in value:
        return "must not hold control characters or backslashes"
    if ".." in PurePosixPath(value).parts:
        return "must not contain '..'"
    if PurePosixPath(value) == PurePosixPath("/"):
        return "must name a file or folder, not '/'"
    return None


def _container_path(value: str) -> str:
    problem = container_path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


ContainerPath = Annotated[str, Field(min_length=2, max_length=4096)]


class Condition(StrEnum):
    STARTED = "started"
    HEALTHY = "healthy"
    COMPLETED = "completed"


class PortSpec(_Model):
    port: Port = Field(description="Port the container listens on")
    public: bool = Field(
        default=False,
        description="Published for the region (at most one public port per app)",
    )


class SecretMount(_Model):
    param: Annotated[str, Field(pattern=PARAM_REF_PATTERN)] = Field(
        description="A secret parameter of the app; mounted at /run/secrets/<param>"
    )
    env: EnvName | None = Field(
        default=None,
        description="Sets <env>_FILE=/run/secrets/<param> for apps that read a file name",
    )


class FileMount(_Model):
    dest: Annotated[str, Field(min_length=1)] = Field(
        description="The 'dest' of one of the app's runtime templates"
    )
    path: ContainerPath = Field(description="Where it is mounted, read-only")

    @field_validator("dest")
    @classmethod
    def _relative(cls, value: str) -> str:
        problem = relative_path_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _container_path(value)


class VolumeMount(_Model):
    name: ContainerName = Field(description="A data volume of the app, kept across deploys")
    path: ContainerPath

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _container_path(value)


class HttpCheck(_Model):
    port: Port
    path: Annotated[str, Field(pattern=HTTP_PATH_PATTERN, max_length=1024)] = "/"


class HealthCheck(_Model):
    command: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Run in the container; exit 0 means healthy"
    )
    http: HttpCheck | None = Field(
        default=None, description="GET http://127.0.0.1:PORT/PATH with wget inside the container"
    )
    interval: Duration = "10s"
    timeout: Duration = "5s"
    retries: Annotated[int, Field(ge=1, le=1000)] = 3
    start_period: Duration = "0s"

    @model_validator(mode="after")
    def _one_way(self) -> HealthCheck:
        if (self.command is None) == (self.http is None):
            raise ValueError("a health check needs exactly one of 'command' or 'http'")
        if self.command is not None and not self.command:
            raise ValueError("'command' must not be empty")
        return self


class Dependency(_Model):
    name: ContainerName = Field(description="A service or job of the same app")
    condition: Condition = Condition.STARTED


class Resources(_Model):
    memory: Annotated[str, Field(pattern=MEMORY_PATTERN)] | None = None
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None


class _Container(_Model):
    name: ContainerName
    image: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="One of the app's images (images[].name)"
    )
    external: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="An external image such as postgres:16 (rewritten by the region's mirrors)",
    )
    command: list[str] | None = None
    environment: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Values are Jinja text over region, app, params, services and requires",
    )
    secrets: list[SecretMount] = Field(default_factory=list)
    files: list[FileMount] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    depends_on: list[Dependency] = Field(default_factory=list)
    resources: Resources | None = None

    @field_validator("external")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None:
            problem = image_reference_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _Container:
        if (self.image is None) == (self.external is None):
            raise ValueError("give exactly one of 'image' (the app's own) or 'external'")
        environment = set(self.environment)
        for label, names in (
            ("secret", [s.param for s in self.secrets]),
            ("volume", [v.name for v in self.volumes]),
            ("mount path", [f.path for f in self.files] + [v.path for v in self.volumes]),
            ("dependency", [d.name for d in self.depends_on]),
            (
                "environment variable",
                [*environment, *(f"{s.env}_FILE" for s in self.secrets if s.env)],
            ),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{label} '{name}' is given twice")
                seen.add(name)
        if self.name in {d.name for d in self.depends_on}:
            raise ValueError(f"'{self.name}' cannot depend on itself")
        return self


class Service(_Container):
    """A long-running container of the app."""

    ports: list[PortSpec] = Field(default_factory=list)
    healthcheck: HealthCheck | None = None
    replicas: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1, description="Copies on a Swarm cluster; Compose runs one"
    )

    @model_validator(mode="after")
    def _ports(self) -> Service:
        seen: set[int] = set()
        for spec in self.ports:
            if spec.port in seen:
                raise ValueError(f"port {spec.port} is declared twice")
            seen.add(spec.port)
        return self

    @property
    def public_port(self) -> int | None:
        return next((p.port for p in self.ports if p.public), None)


class Job(_Container):
    """A one-off container that must exit 0 before what depends on it starts."""


class Runtime(_Model):
    """How an app runs: its services, jobs and what it offers to others."""

    services: Annotated[list[Service], Field(min_length=1)]
    jobs: list[Job] = Field(default_factory=list)
    outputs: dict[Annotated[str, Field(pattern=OUTPUT_NAME_PATTERN)], str] = Field(
        default_factory=dict,
        description="Values for the apps that require this one (Jinja text, like environment)",
    )

    @model_validator(mode="after")
    def _names(self) -> Runtime:
        seen: set[str] = set()
        for container in (*self.services, *self.jobs):
            if container.name in seen:
                raise ValueError(f"service or job '{container.name}' is declared twice")
            seen.add(container.name)
        public = [s.name for s in self.services if s.public_port is not None]
        if sum(1 for s in self.services for p in s.ports if p.public) > 1:
            raise ValueError(f"an app has at most one public port (found in {', '.join(public)})")
        return self

    def container(self, name: str) -> Service | Job | None:
        containers: list[Service | Job] = [*self.services, *self.jobs]
        return next((c for c in containers if c.name == name), None)

    @property
    def public_service(self) -> Service | None:
        return next((s for s in self.services if s.public_port is not None), None)


# -- region profiles ------------------------------------------------------------------


class DeployTarget(StrEnum):
    COMPOSE = "compose"
    SWARM = "swarm"


class MirrorSpec(_Model):
    source: str = Field(alias="from", description="Prefix to rewrite, e.g. docker.io/library/")
    target: str = Field(alias="to", description="What it becomes, e.g. registry.example.go.id/hub/")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("source", "target")
    @classmethod
    def _prefix(cls, value: str) -> str:
        problem = mirror_prefix_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class DeploySettings(_Model):
    """Where and how a region runs its apps."""

    target: DeployTarget = DeployTarget.COMPOSE
    project: Annotated[str, Field(pattern=PROJECT_PATTERN)] | None = Field(
        default=None, description="Compose project / Swarm stack name (default: the region's name)"
    )
    bind_address: str = Field(
        default="0.0.0.0",  # noqa: S104 - the documented default: serve on every interface
        description="Host address public ports are published on",
    )
    public_host: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        default=None,
        description="Host name in public URLs (default: bind_address, or the region's domain)",
    )
    ports: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")], Port] = Field(
        default_factory=dict, description="Host port of each app's public port"
    )
    base_port: Annotated[int, Field(ge=1024, le=65000)] = Field(
        default=18000,
        description="Apps without an entry in 'ports' get base_port + their index in the catalogue",
    )
    data_dir: str | None = Field(
        default=None, description="Absolute folder for data volumes (default: Docker volumes)"
    )
    image_mirrors: list[MirrorSpec] = Field(default_factory=list)

    @field_validator("bind_address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return value

    @field_validator("public_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", value):
            raise ValueError("must be a host name or address")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: str | None) -> str | None:
        if value is not None:
            problem = container_path_problem(value)
            if problem:
                raise ValueError(problem.replace("inside the container", "on the host"))
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> DeploySettings:
        owners: dict[int, str] = {}
        for app, port in self.ports.items():
            if port in owners:
                raise ValueError(f"port {port} is given to both '{owners[port]}' and '{app}'")
            owners[port] = app
        return self


def stack_name(app: str, name: str) -> str:
    """The name of an app's service, job or volume in the region's stack (``sikda-web``)."""
    return f"{app}-{name}"


def public_port(deploy: DeploySettings, app: str, catalogue_apps: Sequence[str]) -> int:
    """The host port of ``app``'s public port: its entry in ``ports``, else by its place.

    ``catalogue_apps`` is every app name of the catalogue: an app's default port
    is ``base_port`` plus its index among them in sorted order, so it does not
    depend on which apps a region happens to deploy.
    """
    explicit = deploy.ports.get(app)
    if explicit is not None:
        return explicit
    return deploy.base_port + sorted(catalogue_apps).index(app)


def swarm_address_problem(bind_address: str) -> str | None:
    """Why Docker Swarm cannot publish on ``bind_address``, or None.

    Swarm publishes a port on every address of the node running the task (its
    port configuration has no host address), so a profile that keeps ports to
    one address would be silently widened: refused instead.
    """
    if ip_address(bind_address).is_unspecified:
        return None
    return (
        f"Docker Swarm publishes ports on every address of its nodes, not only on "
        f"{bind_address}: set deploy.bind_address to 0.0.0.0 (and keep the ports from "
        "the outside with a firewall), or deploy with compose"
    )


def memory_bytes(size: str) -> int:
    """A size of ``MEMORY_PATTERN`` (``128M``, ``1.5G``, ``512k``, ``1024``) in bytes."""
    number = size.rstrip("bB")
    factor = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(number[-1:].lower(), 1)
    if factor != 1:
        number = number[:-1]
    return int(float(number) * factor)
