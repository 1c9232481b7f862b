"""The region stack: every container of the deployed apps, independent of the target.

Built from what adopt recorded (the lock: image ids, values, runtime files)
and the manifests' ``runtime``: images (the app's own by the id the lock
recorded, external ones through the mirror rules), rendered environment
values, the files a container reads (secret parameters and runtime files),
volumes, the public port, health checks and what each container waits for,
within its app and across ``requires``.  A target only translates it
(:mod:`.compose`), so a second target reads the same model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from smartshare.catalog.imagerefs import MirrorRule, apply_mirrors
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.runtime import (
    Condition,
    HealthCheck,
    Job,
    Resources,
    Service,
    public_port,
    stack_name,
)
from smartshare.deploying.labels import JOB, SERVICE
from smartshare.rendering.outputs import OutputResolver

if TYPE_CHECKING:
    from smartshare.rendering.pool import RenderPool

SECRETS_FOLDER = "/run/secrets"


@dataclass(frozen=True)
class MountedFile:
    """A file a container reads: a secret parameter's value or a runtime file.

    ``content`` may be secret: it is written only to the deploy folder's
    secret files and never shown (``repr`` leaves it out).
    """

    key: str  # unique in the stack: <stack name>-param-<param>, <stack name>-file-<n>
    source: str  # relative to the deploy folder: secrets/<stack name>/...
    target: str  # absolute path in the container
    content: bytes = field(repr=False)
    secret_param: str | None = None  # the parameter, for a secret's value


@dataclass(frozen=True)
class Volume:
    key: str  # <app>-<volume>: one per app, shared by its containers
    path: str  # in the container


@dataclass(frozen=True)
class Dependency:
    key: str  # stack name of the container waited for
    condition: Condition


@dataclass(frozen=True)
class PublishedPort:
    host_port: int
    container_port: int


@dataclass(frozen=True)
class StackContainer:
    """One service or job of an app, as the region runs it."""

    app: str
    name: str  # as in the manifest: web
    key: str  # in the stack: <app>-<name>
    kind: str  # service | job
    image: str  # what runs: the app's image id, or the mirrored external reference
    external: str | None  # the external reference as the manifest gives it
    pushed: str | None  # the app's image as adopt --push left it in the registry: repo@sha256:...
    command: tuple[str, ...] | None
    environment: dict[str, str]
    files: tuple[MountedFile, ...]
    volumes: tuple[Volume, ...]
    ports: tuple[int, ...]  # container ports
    published: PublishedPort | None
    healthcheck: HealthCheck | None
    depends_on: tuple[Dependency, ...]
    resources: Resources | None
    replicas: int


@dataclass(frozen=True)
class StackApp:
    name: str
    containers: tuple[StackContainer, ...]
    public_port: int | None


@dataclass(frozen=True)
class Stack:
    """The apps a region runs, in ``requires`` order, and where it runs them."""

    project: str
    region: str
    bind_address: str
    data_dir: str | None
    apps: tuple[StackApp, ...]

    def containers(self) -> Iterator[StackContainer]:
        for app in self.apps:
            yield from app.containers

    def container(self, key: str) -> StackContainer | None:
        return next((c for c in self.containers() if c.key == key), None)

    def app(self, name: str) -> StackApp | None:
        return next((a for a in self.apps if a.name == name), None)

    def secret_values(self) -> list[str]:
        """Every secret value the stack holds, longest first (for redaction)."""
        values = {f.content.decode("utf-8", "replace") for c in self.containers() for f in c.files}
        return sorted((v for v in values if v), key=len, reverse=True)


@dataclass(frozen=True)
class AppInputs:
    """What the stack needs of one adopted app."""

    manifest: AppManifest
    params: Mapping[str, object]  # resolved: secrets included
    images: Mapping[str, str]  # image name -> image id recorded by adopt
    runtime_files: Mapping[str, bytes] = field(repr=False)  # dest -> content
    pushed: Mapping[str, str] = field(default_factory=dict)  # image name -> repo@sha256:...


def build_stack(
    *,
    project: str,
    region: RegionProfile,
    apps: Sequence[AppInputs],
    catalogue_apps: Sequence[str],
    mirrors: Sequence[MirrorRule],
    renderers: RenderPool,
) -> Stack:
    """The stack of ``apps`` (given in ``requires`` order, each with what it requires).

    ``renderers`` render the environment values and outputs.  Raises
    TemplateRenderError when one does not render.
    """
    by_name = {a.manifest.name: a for a in apps}
    resolver = OutputResolver(
        region=region,
        apps={name: a.manifest for name, a in by_name.items()},
        params=lambda name: by_name[name].params,
        catalogue_apps=catalogue_apps,
        renderers=renderers,
    )
    built = []
    for inputs in apps:
        manifest = inputs.manifest
        runtime = manifest.runtime
        if runtime is None:
            raise ValueError(f"{manifest.name} has no runtime")  # checked by the caller
        context = resolver.context(manifest.name)
        waits_for = _required_services(manifest, by_name)
        published = (
            public_port(region.deploy, manifest.name, catalogue_apps)
            if runtime.public_service is not None
            else None
        )
        containers = []
        everything: list[Service | Job] = [*runtime.services, *runtime.jobs]
        for container in everything:
            containers.append(
                _container(
                    inputs,
                    container,
                    context=context,
                    waits_for=waits_for,
                    published=published,
                    mirrors=mirrors,
                    renderers=renderers,
                )
            )
        built.append(
            StackApp(name=manifest.name, containers=tuple(containers), public_port=published)
        )
    return Stack(
        project=project,
        region=region.name,
        bind_address=region.deploy.bind_address,
        data_dir=region.deploy.data_dir,
        apps=tuple(built),
    )


def _required_services(
    manifest: AppManifest, apps: Mapping[str, AppInputs]
) -> tuple[Dependency, ...]:
    """What every container of ``manifest`` waits for: the services of the apps it requires."""
    waits = []
    for needed in manifest.requires:
        runtime = apps[needed].manifest.runtime if needed in apps else None
        for service in runtime.services if runtime is not None else ():
            condition = Condition.HEALTHY if service.healthcheck else Condition.STARTED
            waits.append(Dependency(stack_name(needed, service.name), condition))
    return tuple(waits)


def _container(
    inputs: AppInputs,
    container: Service | Job,
    *,
    context: Mapping[str, object],
    waits_for: tuple[Dependency, ...],
    published: int | None,
    mirrors: Sequence[MirrorRule],
    renderers: RenderPool,
) -> StackContainer:
    manifest = inputs.manifest
    app = manifest.name
    kind = SERVICE if isinstance(container, Service) else JOB
    key = stack_name(app, container.name)
    where = f"runtime.{kind}s.{container.name}"
    environment = renderers.render_runtime_strings(
        container.environment,
        context,
        what=lambda name: f"{where}.environment.{name} of '{app}'",
    )
    files: list[MountedFile] = []
    for mount in container.secrets:
        target = f"{SECRETS_FOLDER}/{mount.param}"
        value = inputs.params.get(mount.param)
        files.append(
            MountedFile(
                key=f"{key}-param-{mount.param}",
                source=f"secrets/{key}/params/{mount.param}",
                target=target,
                content=str(value if value is not None else "").encode("utf-8"),
                secret_param=mount.param,
            )
        )
        if mount.env:
            environment[f"{mount.env}_FILE"] = target
    for index, file in enumerate(container.files):
        files.append(
            MountedFile(
                key=f"{key}-file-{index}",
                source=f"secrets/{key}/files/{index}-{PurePosixPath(file.dest).name}",
                target=file.path,
                content=inputs.runtime_files[file.dest],
            )
        )
    pushed = None
    if container.image is not None:
        image = inputs.images[container.image]
        pushed = inputs.pushed.get(container.image)
        external = None
    else:
        assert container.external is not None
        external = container.external
        image = apply_mirrors(external, mirrors)
    service = container if isinstance(container, Service) else None
    public = service.public_port if service is not None else None
    return StackContainer(
        app=app,
        name=container.name,
        key=key,
        kind=kind,
        image=image,
        external=external,
        pushed=pushed,
        command=tuple(container.command) if container.command is not None else None,
        environment=environment,
        files=tuple(files),
        volumes=tuple(Volume(stack_name(app, v.name), v.path) for v in container.volumes),
        ports=tuple(p.port for p in service.ports) if service is not None else (),
        published=(
            PublishedPort(host_port=published, container_port=public)
            if public is not None and published is not None
            else None
        ),
        healthcheck=service.healthcheck if service is not None else None,
        depends_on=(
            *(Dependency(stack_name(app, d.name), d.condition) for d in container.depends_on),
            *waits_for,
        ),
        resources=container.resources,
        replicas=service.replicas if service is not None else 1,
    )
