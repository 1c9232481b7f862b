"""The first step of ``plan`` and ``adopt``: check everything, then gather it in a Context.

Everything that can be checked is, before anything is fetched or written:
options, the catalogue (every file must load; the templates of the apps to
adopt are analysed unless the lock shows they passed as they are), the region
profile, ``--set`` values and secrets, and the workspace's region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare import __version__
from smartshare.adoption.buildenv import BuildEnvironment, build_environment
from smartshare.catalog.graph import dependency_order
from smartshare.catalog.imagerefs import MirrorRule
from smartshare.catalog.load import Catalog, LoadedFile, load_catalog, load_region_file
from smartshare.catalog.location import resolve_catalog_root
from smartshare.catalog.profile import RegionProfile
from smartshare.errors import InvalidInputError, SmartshareError, UsageError
from smartshare.fetching.credentials import HostCredential
from smartshare.rendering.pool import RenderPool
from smartshare.rendering.values import (
    ResolvedValues,
    parse_set_options,
    resolve_values,
    validate_overrides,
)
from smartshare.state.drift import manifest_digest
from smartshare.state.lockfile import Lock, LockedApp, read_lock

if TYPE_CHECKING:
    from smartshare.adoption.assess import Rendering
    from smartshare.catalog.assets import ResolvedAsset
    from smartshare.catalog.diagnostics import Problem
    from smartshare.catalog.patches import Patch
    from smartshare.rendering.analysis import TemplateAnalyser


@dataclass
class Context:
    """Everything a run needs, prepared and checked before any work starts."""

    catalog: Catalog
    region: LoadedFile[RegionProfile]
    order: list[str]
    values: dict[str, ResolvedValues]
    workspace: Path
    lock: Lock
    cache_dir: Path
    rewrites: dict[str, str]
    build: bool
    push: bool
    force: bool
    renderers: RenderPool  # starts a render worker only when something is rendered
    credentials: tuple[HostCredential, ...] = ()  # git tokens, per host (settings)
    # Each app's assets, read and checked (the files the region supplies).
    assets: dict[str, list[ResolvedAsset]] = field(default_factory=dict)
    # Each app's region patches, read and checked, in the order they apply.
    patches: dict[str, list[Patch]] = field(default_factory=dict)
    mirrors: tuple[MirrorRule, ...] = ()  # image mirrors, in order (settings, then profile)
    build_env: BuildEnvironment | None = None  # the region's build settings (when building)
    key: bytes | None = None  # the workspace's HMAC key, once it exists
    # Apps whose values could not be resolved (upgrade): each fails in its turn.
    value_errors: dict[str, InvalidInputError] = field(default_factory=dict)
    _env: Any = None
    _outputs: Any = None
    # Each app's answer of assess.unchanged_rendering (asked before and during assessing).
    unchanged_renderings: dict[str, Rendering | None] = field(default_factory=dict)

    @property
    def region_model(self) -> RegionProfile:
        return self.region.model

    def requires_outputs(self, name: str) -> dict[str, dict[str, str]]:
        """The outputs of the apps ``name`` requires, for its templates' ``requires``."""
        if self._outputs is None:
            from smartshare.rendering.outputs import OutputResolver

            self._outputs = OutputResolver(
                region=self.region_model,
                apps={n: self.catalog.app(n) for n in self.order},
                params=lambda n: self.values[n].params,
                catalogue_apps=list(self.catalog.apps),
                renderers=self.renderers,
            )
        requires: dict[str, dict[str, str]] = self._outputs.requires(name)
        return requires

    def asset_context(self, name: str) -> dict[str, dict[str, str] | None]:
        """What ``name``'s templates see as ``assets``: each asset, None when not supplied."""
        given = {asset.name: asset.context() for asset in self.assets.get(name, [])}
        return {asset.name: given.get(asset.name) for asset in self.catalog.app(name).assets}

    def template_env(self) -> Any:
        """The environment for analysing templates (never for rendering them)."""
        if self._env is None:
            from smartshare.rendering.sandbox import make_environment

            self._env = make_environment(self.catalog.templates_dir)
        return self._env

    def close(self) -> None:
        """Stop what the run started (render workers)."""
        self.renderers.close()


def prepare(
    *,
    apps: Sequence[str],
    all_apps: bool,
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None,
    overrides: Sequence[str],
    build: bool,
    push: bool,
    force: bool,
    cache_dir: Path | None,
    versions: Mapping[str, str] | None = None,
    per_app_values: bool = False,
) -> Context:
    """Check everything that can be checked before touching anything.

    ``versions`` gives apps another version the catalogue holds than its
    current one (an upgrade's ``--to``): the run sees that manifest instead.
    An app named ``APP@VERSION`` in ``apps`` is ``APP`` at that version.
    ``per_app_values``: a value that is wrong or missing (a new required
    parameter) fails only its app, in its turn (``Context.value_errors``).
    """
    from smartshare.cache import default_cache_dir
    from smartshare.catalog.assets import resolve_assets
    from smartshare.catalog.region_checks import check_region, check_region_assets
    from smartshare.settings import image_mirror_rules, load_settings

    if not apps and not all_apps:
        raise UsageError(
            "name the apps to adopt, or pass --all", hint="'smartshare list' shows them"
        )
    if apps and all_apps:
        raise UsageError("name apps or pass --all, not both")
    apps, named_versions = split_app_versions(apps)
    versions = {**named_versions, **(versions or {})}
    settings = load_settings()
    root = resolve_catalog_root(catalog_root)
    catalog = load_catalog(root)
    for name, version in versions.items():
        if version != catalog.app(name).version:
            catalog.app_version(name, version)  # UsageError listing the versions it has
            catalog.apps[name] = catalog.versions[name][version]
    region = load_region_file(region_file)
    external = region.model.external_outputs()
    for name in apps:
        if name in external:
            raise UsageError(
                f"'{name}' is external in region profile {region.doc.display}: the region "
                f"runs it already and gives its outputs (apps.{name}.external)",
                hint="adopt the apps that require it; or remove that entry to adopt it",
            )
    names = sorted(n for n in catalog.apps if n not in external) if all_apps else list(apps)
    order = dependency_order(catalog, names, external=external)
    lock = read_lock(workspace)
    # Every file of the catalogue must load; templates are analysed for the apps
    # being adopted (the others' templates play no part in this run), unless
    # this very manifest and these very template files passed when last adopted.
    problems = [p for p in catalog.problems if p.severity.value == "error"]
    analyser: TemplateAnalyser | None = None
    for name in order:
        if force or not checked_before(catalog, lock.apps.get(name), name):
            # Imported here: a no-op run (every app checked before) needs no analysis.
            from smartshare.catalog.template_checks import (
                check_app_templates,
                check_template_requires,
                required_outputs,
            )
            from smartshare.rendering.analysis import TemplateAnalyser

            if analyser is None and catalog.templates_dir.is_dir():
                analyser = TemplateAnalyser(catalog.templates_dir)
            app = catalog.apps[name]
            problems += check_app_templates(
                app=app, templates_dir=catalog.templates_dir, analyser=analyser
            )
            if analyser is not None:
                problems += check_template_requires(
                    app=app,
                    catalog=catalog,
                    uses=required_outputs(app, analyser),
                    templates_dir=catalog.templates_dir,
                )
    problems = [p for p in problems if p.severity.value == "error"]
    if problems:
        raise InvalidInputError(
            f"the catalogue {root} does not validate",
            hint="fix it first ('smartshare validate' shows the same problems)",
            problems=problems,
        )
    _check_image_names(catalog, order, lock, region.model)
    region_problems = [
        p
        for p in [
            *check_region(region=region, catalog=catalog),
            *check_region_assets(region=region, catalog=catalog),
        ]
        if p.severity.value == "error" and not (per_app_values and _missing_required(p, order))
    ]
    if region_problems:
        raise InvalidInputError(
            f"region profile {region.doc.display} does not validate",
            hint="fix the profile ('smartshare validate FILE' shows the same problems)",
            problems=region_problems,
        )
    if push and not region.model.registry:
        raise UsageError(
            f"--push: region '{region.model.name}' has no registry",
            hint="set 'registry' in the region profile (e.g. registry.example.go.id/apps)",
        )
    parsed = parse_set_options(overrides)
    validate_overrides(parsed, {n: catalog.app(n) for n in order})
    region_dir = region.doc.path.resolve().parent
    values: dict[str, ResolvedValues] = {}
    value_errors: dict[str, InvalidInputError] = {}
    for name in order:
        try:
            values[name] = resolve_values(
                app=catalog.app(name),
                region=region.model,
                region_dir=region_dir,
                overrides=parsed.get(name),
            )
        except InvalidInputError as exc:
            if not per_app_values:
                raise
            value_errors[name] = exc
    assets = {
        name: resolve_assets(app=catalog.app(name), region=region.model, region_dir=region_dir)
        for name in order
    }
    patches = {name: read_patches(region.model, name, region_dir) for name in order}
    if lock.region is not None and lock.region.name != region.model.name:
        raise UsageError(
            f"workspace {workspace} holds apps adopted for '{lock.region.name}', "
            f"not '{region.model.name}'",
            hint="use one workspace per region (--workspace DIR)",
        )
    return Context(
        mirrors=image_mirror_rules(settings, region.model),
        build_env=build_environment(region.model.build, base_dir=region_dir) if build else None,
        catalog=catalog,
        region=region,
        order=order,
        values=values,
        workspace=workspace,
        lock=lock,
        cache_dir=cache_dir or settings.cache_dir or default_cache_dir(),
        rewrites=settings.source_rewrites,
        credentials=settings.git_credentials,
        build=build,
        push=push,
        force=force,
        renderers=RenderPool(settings.render_limits),
        assets=assets,
        patches=patches,
        value_errors=value_errors,
    )


def split_app_versions(apps: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``apps`` as given (``laksa``, ``laksa@2.3.0``): the names, and the versions named.

    UsageError for an empty name or version, or an app named at two versions.
    """
    names: list[str] = []
    versions: dict[str, str] = {}
    for given in apps:
        name, at, version = given.partition("@")
        if at and (not name or not version or "@" in version):
            raise UsageError(
                f"{given!r}: name an app, or an app at a version the catalogue holds",
                hint="e.g. laksa or laksa@2.3.0",
            )
        if name in names and versions.get(name) != (version or None):
            raise UsageError(f"'{name}' is named twice, at different versions")
        if version:
            versions[name] = version
        if name not in names:
            names.append(name)
    return names, versions


def _missing_required(problem: Problem, order: Sequence[str]) -> bool:
    """A profile's missing required value for an app of the run: that app fails on its own."""
    return problem.field in {f"apps.{n}" for n in order} and "required parameter" in problem.message


def read_patches(region: RegionProfile, app: str, region_dir: Path) -> list[Patch]:
    """The patches the profile gives ``app``, read and checked (InvalidInputError naming one)."""
    from smartshare.catalog.models import PATCHES_KEY
    from smartshare.catalog.patches import Patch, entry_problem, patch_names, read_patch

    entry = region.apps.get(app)
    if not isinstance(entry, dict) or PATCHES_KEY not in entry:
        return []
    problem = entry_problem(entry[PATCHES_KEY])
    if problem is not None:
        raise InvalidInputError(f"apps.{app}.{PATCHES_KEY}: {problem}")
    patches = []
    for name in patch_names(region, app):
        try:
            content, digest = read_patch(name, region_dir)
        except InvalidInputError as exc:
            raise type(exc)(f"{app}: {exc.message}", hint=exc.hint) from None
        patches.append(Patch(name=name, content=content, digest=digest))
    return patches


def _check_image_names(
    catalog: Catalog, order: Sequence[str], lock: Lock, region: RegionProfile
) -> None:
    """Every image of the run can be tagged, and goes where no other app's image goes.

    The apps recorded in the workspace count as well: adopting one that claims
    their image would overwrite what they recorded.
    """
    from smartshare.catalog.tags import LOCAL_NAMESPACE, image_tags, repository_clashes

    for name in order:
        app = catalog.app(name)
        for image in app.images:
            image_tags(app, region, image.name)
    run = [catalog.apps[name] for name in order]
    recorded = [catalog.apps[n] for n in lock.apps if n in catalog.apps and n not in order]
    clashes = repository_clashes(
        run + recorded, report=run, namespace=region.registry or LOCAL_NAMESPACE
    )
    if clashes:
        raise InvalidInputError(
            "two apps would push to the same image and overwrite each other's tags",
            hint="rename the image in one of the manifests ('smartshare validate' shows it)",
            problems=clashes,
        )


def checked_before(catalog: Catalog, entry: LockedApp | None, name: str) -> bool:
    """Whether ``name``'s manifest and template files are those it was last adopted with.

    An app is only recorded after its templates passed the check, with the
    same smartshare version, so passing again is certain.
    """
    if entry is None or entry.render_inputs is None or entry.smartshare_version != __version__:
        return False
    if entry.manifest_digest != manifest_digest(catalog.app(name)):
        return False
    return current_template_digests(catalog, entry.render_inputs.templates) == (
        entry.render_inputs.templates
    )


def current_template_digests(
    catalog: Catalog, names: Iterable[str]
) -> dict[str, str | None] | None:
    """The digests of the template files ``names`` now; None when one cannot be read."""
    from smartshare.rendering.sandbox import template_digests

    try:
        return template_digests(catalog.templates_dir, names)
    except SmartshareError:
        return None  # the full check says what is wrong
