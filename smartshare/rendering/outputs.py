"""What an app's runtime text sees, and the outputs it offers to the apps that require it.

Environment values and outputs of a manifest's ``runtime`` are Jinja text over
``region``, ``app``, the app's non-secret ``params``, ``services.<service>``
(``host``, ``port``, ``public_url``) and ``requires.<app>.<output>``.  All of
it is static: a service's host is its name in the region stack, its public URL
comes from the region's deploy settings.  So outputs are known before anything
runs: ``adopt`` hands them to the templates of the apps requiring them, and
``deploy`` to their environment, through the one :class:`OutputResolver`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.runtime import public_port, stack_name
from smartshare.errors import InvalidInputError
from smartshare.rendering.sandbox import render_context

if TYPE_CHECKING:
    from smartshare.rendering.pool import RenderPool

UNSPECIFIED_ADDRESSES = ("0.0.0.0", "::")  # noqa: S104 - compared with, never bound


def public_host(region: RegionProfile) -> str:
    """The host name in the region's public URLs (``deploy.public_host``, else as documented)."""
    deploy = region.deploy
    if deploy.public_host:
        return deploy.public_host
    if deploy.bind_address in UNSPECIFIED_ADDRESSES:
        return region.domain
    return deploy.bind_address


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def service_values(
    app: AppManifest, region: RegionProfile, catalogue_apps: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``services.<name>`` of ``app``: ``host``, ``port`` (when it has one), ``public_url``.

    ``port`` is the service's public port, else its first one; only the public
    service has a ``public_url`` (``http://HOST:PORT`` on the region's host).
    """
    runtime = app.runtime
    if runtime is None:
        return {}
    values: dict[str, dict[str, Any]] = {}
    for service in runtime.services:
        entry: dict[str, Any] = {"host": stack_name(app.name, service.name)}
        if service.ports:
            entry["port"] = service.public_port or service.ports[0].port
        if service.public_port is not None:
            published = public_port(region.deploy, app.name, catalogue_apps)
            entry["public_url"] = f"http://{_url_host(public_host(region))}:{published}"
        values[service.name] = entry
    return values


def non_secret(app: AppManifest, params: Mapping[str, object]) -> dict[str, object]:
    """``params`` without the secret parameters (those reach a container only as files)."""
    secret = {p.name for p in app.parameters if p.secret}
    return {name: value for name, value in params.items() if name not in secret}


def runtime_context(
    *,
    app: AppManifest,
    region: RegionProfile,
    params: Mapping[str, object],
    catalogue_apps: Sequence[str],
    requires: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """What the runtime text of ``app`` sees (secret parameters left out)."""
    context = render_context(
        region=region, app=app, params=non_secret(app, params), requires=requires
    )
    context["services"] = service_values(app, region, catalogue_apps)
    return context


class OutputResolver:
    """The outputs of apps, rendered once each, in ``requires`` order.

    ``apps`` are the manifests by name (at least the app asked about and what
    it requires, transitively); ``params`` gives an app's resolved values.  An
    app the region runs itself (``apps.<app>.external`` in the profile) has
    the outputs the profile gives, as they are.  ``renderers`` render the
    outputs.
    """

    def __init__(
        self,
        *,
        region: RegionProfile,
        apps: Mapping[str, AppManifest],
        params: Callable[[str], Mapping[str, object]],
        catalogue_apps: Sequence[str],
        renderers: RenderPool,
    ) -> None:
        self.renderers = renderers
        self.region = region
        self.apps = apps
        self.params = params
        self.catalogue_apps = sorted(catalogue_apps)
        self._outputs: dict[str, dict[str, str]] = region.external_outputs()

    def requires(self, name: str) -> dict[str, dict[str, str]]:
        """``requires`` of ``name``: each app it requires, with that app's outputs."""
        return {needed: self.outputs(needed) for needed in self.apps[name].requires}

    def context(self, name: str) -> dict[str, Any]:
        """The runtime context of ``name`` (see :func:`runtime_context`)."""
        return runtime_context(
            app=self.apps[name],
            region=self.region,
            params=self.params(name),
            catalogue_apps=self.catalogue_apps,
            requires=self.requires(name),
        )

    def outputs(self, name: str) -> dict[str, str]:
        """The outputs of ``name``; what it requires is rendered first (no recursion)."""
        pending = [name]
        visiting: set[str] = set()
        while pending:
            current = pending[-1]
            if current in self._outputs:
                pending.pop()
                continue
            if current not in self.apps:
                raise InvalidInputError(f"'{current}' is required but not in the catalogue")
            missing = [d for d in self.apps[current].requires if d not in self._outputs]
            if missing and current not in visiting:
                visiting.add(current)
                pending.extend(missing)
                continue
            if missing:
                raise InvalidInputError(f"'{current}' is part of a requires cycle")
            self._outputs[current] = self._render(current)
            pending.pop()
        return self._outputs[name]

    def _render(self, name: str) -> dict[str, str]:
        runtime = self.apps[name].runtime
        if runtime is None or not runtime.outputs:
            return {}
        return self.renderers.render_runtime_strings(
            runtime.outputs,
            self.context(name),
            what=lambda key: f"runtime.outputs.{key} of '{name}'",
        )
