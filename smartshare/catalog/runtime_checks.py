"""Checks of an app's ``runtime`` and a region's ``deploy`` that need more than one model.

A runtime names the app's images, parameters and runtime templates, its own
services and jobs (``depends_on``), and the region stack shares one name space
for containers and volumes across apps.  Each problem is located at the key
that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.load import Catalog, LoadedFile
from smartshare.catalog.models import AppManifest, TemplateTarget
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.runtime import (
    Condition,
    DeployTarget,
    Job,
    Service,
    public_port,
    stack_name,
    swarm_address_problem,
)


def check_app_runtime(app: LoadedFile[AppManifest]) -> list[Problem]:
    """The problems of one app's ``runtime`` against the rest of its manifest."""
    model = app.model
    runtime = model.runtime
    if runtime is None:
        return []
    doc = app.doc
    problems: list[Problem] = []
    images = {image.name for image in model.images}
    runtime_files = {t.dest for t in model.templates if t.target is TemplateTarget.RUNTIME}
    runtime_files.update(
        asset.dest_for(kind)
        for asset in model.assets
        if asset.target is TemplateTarget.RUNTIME
        for kind in asset.types
    )
    containers: list[tuple[str, int, Service | Job]] = [
        *(("services", i, s) for i, s in enumerate(runtime.services)),
        *(("jobs", i, j) for i, j in enumerate(runtime.jobs)),
    ]
    for kind, index, container in containers:
        at = ("runtime", kind, index)
        if container.image is not None and container.image not in images:
            problems.append(
                doc.problem(
                    (*at, "image"),
                    f"'{container.image}' is not one of the app's images "
                    f"({', '.join(sorted(images))}); for another image use 'external'",
                )
            )
        for position, mount in enumerate(container.secrets):
            parameter = model.parameter(mount.param)
            if parameter is None:
                problems.append(
                    doc.problem(
                        (*at, "secrets", position, "param"),
                        f"'{mount.param}' is not a parameter of '{model.name}'",
                    )
                )
            elif not parameter.secret:
                problems.append(
                    doc.problem(
                        (*at, "secrets", position, "param"),
                        f"parameter '{mount.param}' is not secret: pass it in 'environment'",
                    )
                )
        for position, file in enumerate(container.files):
            if file.dest not in runtime_files:
                known = ", ".join(sorted(runtime_files)) or "none"
                problems.append(
                    doc.problem(
                        (*at, "files", position, "dest"),
                        f"'{file.dest}' is not the dest of a runtime template or asset of "
                        f"'{model.name}' (runtime files: {known})",
                    )
                )
        for position, dependency in enumerate(container.depends_on):
            problem = _dependency_problem(runtime.container(dependency.name), dependency.condition)
            if problem is not None:
                problems.append(
                    doc.problem(
                        (*at, "depends_on", position, "name"),
                        problem.format(name=dependency.name, app=model.name),
                    )
                )
    graph = {
        c.name: [d.name for d in c.depends_on if runtime.container(d.name)]
        for _, _, c in containers
    }
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = list(exc.args[1]) if len(exc.args) > 1 else []
        first = next((i for i, (_, _, c) in enumerate(containers) if c.name in cycle), 0)
        kind, index, _ = containers[first]
        problems.append(
            doc.problem(
                ("runtime", kind, index, "depends_on"),
                f"depends_on cycle: {' -> '.join(reversed(cycle))}",
            )
        )
    return problems


def _dependency_problem(target: Service | Job | None, condition: Condition) -> str | None:
    if target is None:
        return "'{name}' is not a service or job of '{app}'"
    if isinstance(target, Job) and condition is Condition.HEALTHY:
        return "'{name}' is a job: wait for it with condition 'completed'"
    if isinstance(target, Service) and condition is Condition.COMPLETED:
        return "'{name}' is a service, which never completes: use 'started' or 'healthy'"
    if isinstance(target, Service) and condition is Condition.HEALTHY and not target.healthcheck:
        return "'{name}' has no healthcheck, so it never becomes healthy: give it one"
    return None


def check_stack_names(apps: Iterable[LoadedFile[AppManifest]]) -> list[Problem]:
    """Containers and volumes of different apps that would get the same name in a stack."""
    owners: dict[str, tuple[LoadedFile[AppManifest], tuple[str | int, ...]]] = {}
    problems: list[Problem] = []
    for app in apps:
        runtime = app.model.runtime
        if runtime is None:
            continue
        named: list[tuple[str, tuple[str | int, ...]]] = []
        for kind, containers in (("services", runtime.services), ("jobs", runtime.jobs)):
            for index, container in enumerate(containers):
                named.append((container.name, ("runtime", kind, index, "name")))
                for position, volume in enumerate(container.volumes):
                    volume_loc: tuple[str | int, ...] = (
                        "runtime",
                        kind,
                        index,
                        "volumes",
                        position,
                        "name",
                    )
                    named.append((f"volume {volume.name}", volume_loc))
        seen_here: set[str] = set()
        for name, loc in named:
            full = stack_name(app.model.name, name.removeprefix("volume "))
            key = ("volume " if name.startswith("volume ") else "") + full
            if key in seen_here:
                continue  # the same volume used by two containers of one app
            seen_here.add(key)
            first = owners.get(key)
            if first is not None and first[0].model.name != app.model.name:
                problems.append(
                    app.doc.problem(
                        loc,
                        f"'{full}' is also the stack name of a container or volume of "
                        f"'{first[0].model.name}' ({first[0].doc.display}); rename one",
                    )
                )
            else:
                owners[key] = (app, loc)
    return problems


def check_region_deploy(*, region: LoadedFile[RegionProfile], catalog: Catalog) -> list[Problem]:
    """A region's ``deploy`` settings against the apps of the catalogue."""
    deploy = region.model.deploy
    doc = region.doc
    problems: list[Problem] = []
    if deploy.target is DeployTarget.SWARM:
        address = swarm_address_problem(deploy.bind_address)
        if address:
            problems.append(doc.problem(("deploy", "bind_address"), address))
    for app in deploy.ports:
        loaded = catalog.apps.get(app)
        if loaded is None:
            problems.append(
                doc.problem(
                    ("deploy", "ports", app), f"no app named '{app}' in the catalogue", key=True
                )
            )
        elif loaded.model.runtime is None or loaded.model.runtime.public_service is None:
            problems.append(
                doc.problem(
                    ("deploy", "ports", app),
                    f"app '{app}' has no public port to publish",
                    key=True,
                )
            )
    names = sorted(catalog.apps)
    assigned = {
        name: public_port(deploy, name, names)
        for name, loaded in catalog.apps.items()
        if loaded.model.runtime is not None and loaded.model.runtime.public_service is not None
    }
    owners: dict[int, str] = {}
    for app, port in sorted(assigned.items()):
        if port in owners and (app not in deploy.ports or owners[port] not in deploy.ports):
            problems.append(
                doc.problem(
                    ("deploy", "ports", app) if app in deploy.ports else ("deploy", "base_port"),
                    f"'{app}' and '{owners[port]}' would both be published on port {port}; "
                    "give one of them its own entry in deploy.ports",
                )
            )
        owners.setdefault(port, app)
    return problems


# What ``services.<name>`` offers runtime text (rendering/outputs.service_values).
SERVICE_FIELDS = ("host", "port", "public_url")


def runtime_strings(model: AppManifest) -> list[tuple[tuple[str | int, ...], str]]:
    """The runtime's Jinja-capable strings, by their place in the manifest.

    Environment values of services and jobs, and outputs.
    """
    runtime = model.runtime
    if runtime is None:
        return []
    found: list[tuple[tuple[str | int, ...], str]] = []
    containers: list[tuple[str, int, Service | Job]] = [
        *(("services", i, s) for i, s in enumerate(runtime.services)),
        *(("jobs", i, j) for i, j in enumerate(runtime.jobs)),
    ]
    for kind, index, container in containers:
        found += [
            (("runtime", kind, index, "environment", name), value)
            for name, value in container.environment.items()
        ]
    found += [(("runtime", "outputs", name), value) for name, value in runtime.outputs.items()]
    return found


def check_runtime_references(app: LoadedFile[AppManifest], catalog: Catalog) -> list[Problem]:
    """``services.X.Y`` and ``requires.A.X`` in runtime text name what exists.

    A service of the app and one of its fields (``public_url`` only for the
    service with the public port, ``port`` only for one with ports); an app
    the manifest ``requires`` and one of the outputs its manifest declares.
    What else the text uses (parameters, fields, secrets) is checked with the
    templates (:func:`~smartshare.catalog.checks.check_app_templates`).
    """
    from smartshare.rendering.sandbox import is_template_text

    model = app.model
    runtime = model.runtime
    if runtime is None:
        return []
    services = {s.name: s for s in runtime.services}
    problems: list[Problem] = []
    for loc, text in runtime_strings(model):
        if not is_template_text(text):
            continue
        for owner, name, attribute in _context_references(text):
            message = (
                _service_problem(services, name, attribute)
                if owner == "services"
                else requires_problem(model, catalog, name, attribute)
            )
            if message is not None:
                problems.append(app.doc.problem(loc, message))
    return problems


def _service_problem(services: dict[str, Service], name: str, field: str | None) -> str | None:
    service = services.get(name)
    if service is None:
        known = ", ".join(sorted(services)) or "none"
        return f"services.{name}: the app has no service '{name}' (services: {known})"
    if field is None:
        return None
    if field not in SERVICE_FIELDS:
        return f"services.{name}.{field}: a service offers {', '.join(SERVICE_FIELDS)}"
    if field == "public_url" and service.public_port is None:
        return (
            f"services.{name}.public_url: service '{name}' has no public port "
            "(only the service with 'public: true' on a port has a public_url)"
        )
    if field == "port" and not service.ports:
        return f"services.{name}.port: service '{name}' declares no port"
    return None


def requires_problem(
    model: AppManifest, catalog: Catalog, name: str, output: str | None
) -> str | None:
    """Why ``requires.<name>[.<output>]`` in ``model``'s text names nothing there is, or None.

    ``name`` must be an app ``model`` requires (:func:`not_required_problem`),
    and ``output`` one of the outputs that app's manifest declares
    (:func:`missing_output_problem`).
    """
    return not_required_problem(model, name) or missing_output_problem(catalog, name, output)


def not_required_problem(model: AppManifest, name: str) -> str | None:
    """Why ``requires.<name>`` in ``model``'s text names no app it requires, or None."""
    if name not in model.requires:
        required = ", ".join(model.requires) or "none"
        return f"requires.{name}: '{model.name}' does not require '{name}' (requires: {required})"
    return None


def missing_output_problem(catalog: Catalog, name: str, output: str | None) -> str | None:
    """Why ``requires.<name>.<output>`` names no output of required app ``name``, or None."""
    needed = catalog.apps.get(name)
    if output is None or needed is None:
        return None  # an app missing from the catalogue is reported at `requires`
    runtime = needed.model.runtime
    outputs = sorted(runtime.outputs) if runtime is not None else []
    if output not in outputs:
        offered = ", ".join(outputs) or "none"
        return f"requires.{name}.{output}: '{name}' has no output '{output}' (outputs: {offered})"
    return None


def _context_references(text: str) -> list[tuple[str, str, str | None]]:
    """``(owner, name, attribute)`` for each ``services.NAME[.ATTR]`` and ``requires.NAME[.ATTR]``.

    Read from the parsed text (attribute or constant-subscript access);
    text that does not parse gives nothing here (its syntax error is reported
    with the other checks of the string).
    """
    if "services" not in text and "requires" not in text:
        return []  # nothing to look for: no need to load Jinja
    from jinja2 import Environment, TemplateSyntaxError, nodes

    try:
        tree = Environment(autoescape=False).parse(text)  # noqa: S701 - parsed, never rendered
    except TemplateSyntaxError:
        return []

    def key(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Getattr):
            return node.attr
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            return node.arg.value
        return None

    found: list[tuple[str, str, str | None]] = []
    inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in inner:
            continue
        chain = [node]
        base: nodes.Node = node
        while isinstance(base, nodes.Getattr | nodes.Getitem):
            base = base.node
            chain.append(base)
        if not (isinstance(base, nodes.Name) and base.name in ("services", "requires")):
            continue
        inner.update(id(link) for link in chain)
        # chain runs outermost first: [..., second access, first access, Name]
        first = key(chain[-2])
        if first is None:
            continue
        second = key(chain[-3]) if len(chain) >= 3 else None
        found.append((base.name, first, second))
    return found
