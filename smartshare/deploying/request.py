"""The first step of ``deploy``: check what is to run, then build the stack in memory.

Nothing is written and no engine is asked.  Each app of the stack must be
adopted for this very profile and manifest, with its images built, and have a
``runtime``; its values come from the lock (what adopt used, ``--set``
included), its secrets are resolved from their references again, and its
runtime files are read from the workspace and checked against the lock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartshare.catalog.graph import dependency_order
from smartshare.catalog.load import Catalog, LoadedFile, load_catalog, load_region_file
from smartshare.catalog.location import resolve_catalog_root
from smartshare.catalog.models import AppManifest, TemplateTarget
from smartshare.catalog.profile import RegionProfile
from smartshare.deploying.stack import AppInputs, Stack, build_stack
from smartshare.errors import InvalidInputError, UsageError, WorkspaceError
from smartshare.rendering.values import resolve_secret
from smartshare.state import workspace as ws
from smartshare.state.drift import manifest_digest, region_digest
from smartshare.state.lockfile import LOCK_NAME, Lock, LockedApp, read_lock, refuse_attention


@dataclass
class DeployContext:
    """Everything a deploy needs, checked before anything is written or started."""

    catalog: Catalog
    region: LoadedFile[RegionProfile]
    lock: Lock
    workspace: Path
    key: bytes
    target: str
    names: list[str]  # the apps to bring up (with what they require), requires first
    stack: Stack
    warnings: list[str] = field(default_factory=list)

    @property
    def project(self) -> str:
        return self.stack.project


def prepare_deploy(
    *,
    apps: Sequence[str],
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None,
    target: str | None,
) -> DeployContext:
    """Check everything and build the stack; raises UsageError (exit 2) for what to adopt first."""
    from smartshare.catalog.runtime_checks import check_region_deploy
    from smartshare.rendering.pool import RenderPool
    from smartshare.settings import image_mirror_rules, load_settings

    settings = load_settings()
    lock = _adopted_lock(workspace)
    region = load_region_file(region_file)
    if lock.region is not None and lock.region.name != region.model.name:
        raise UsageError(
            f"workspace {workspace} holds apps adopted for '{lock.region.name}', "
            f"not '{region.model.name}'",
            hint="use one workspace per region (--workspace DIR)",
        )
    root = catalog_root or (Path(lock.catalog) if lock.catalog else None)
    catalog = load_catalog(resolve_catalog_root(root))
    problems = [p for p in catalog.problems if p.severity.value == "error"]
    problems += [
        p
        for p in check_region_deploy(region=region, catalog=catalog)
        if p.severity.value == "error"
    ]
    if problems:
        raise InvalidInputError(
            "the catalogue or the region profile does not validate",
            hint="fix it first ('smartshare validate' shows the same problems)",
            problems=problems,
        )
    key = ws.read_key(workspace)
    if key is None:
        raise WorkspaceError(
            f"{workspace} has no key in {ws.INTERNAL}/ (it is made by adopt)",
            hint="adopt the apps again into this workspace",
        )
    chosen = target or region.model.deploy.target.value
    warnings: list[str] = []
    external = region.model.external_outputs()
    refuse_attention(lock, list(apps or lock.apps), command="deploy")
    requested = _requested(apps, lock, catalog, warnings, external)
    order = dependency_order(catalog, requested, external=external)
    names = [n for n in order if _runs(catalog, n, requested)]
    for name in order:
        if name not in names:
            warnings.append(f"'{name}' is required but has no runtime: nothing of it runs")
    deployed = (
        list(lock.deployment.apps)
        if lock.deployment is not None and lock.deployment.target == chosen
        else []
    )
    for name in deployed:
        if name not in catalog.apps:
            raise UsageError(
                f"'{name}' is deployed but no longer in the catalogue",
                hint="take the stack down ('smartshare down') and deploy again",
            )
    everything = [
        n
        for n in dependency_order(catalog, [*names, *deployed], external=external)
        if _runs(catalog, n, names)
    ]
    for name in everything:
        if name not in lock.apps:
            raise UsageError(
                f"'{name}' is not adopted in {workspace}"
                + ("" if name in requested else " (and it is required)"),
                hint=f"adopt it first: smartshare adopt {name} --region {region_file} "
                f"--workspace {workspace}",
            )
    profile_digest = region_digest(region.doc.text)
    region_dir = region.doc.path.resolve().parent
    inputs = [
        _inputs(
            _adopted_manifest(catalog, lock, name),
            lock,
            workspace=workspace,
            key=key,
            region_digest=profile_digest,
            region_dir=region_dir,
            region_file=region_file,
            earlier=name not in names,
        )
        for name in everything
    ]
    # A worker starts only for a string that is more than plain text and names.
    with RenderPool(settings.render_limits) as renderers:
        stack = build_stack(
            project=region.model.deploy.project or region.model.name,
            region=region.model,
            apps=inputs,
            catalogue_apps=list(catalog.apps),
            mirrors=image_mirror_rules(settings, region.model),
            renderers=renderers,
        )
    return DeployContext(
        catalog=catalog,
        region=region,
        lock=lock,
        workspace=workspace,
        key=key,
        target=chosen,
        names=names,
        stack=stack,
        warnings=warnings,
    )


def _adopted_lock(workspace: Path) -> Lock:
    if not (workspace / LOCK_NAME).is_file():
        raise UsageError(
            f"{workspace} holds no adopted apps (no {LOCK_NAME})",
            hint="adopt apps first: smartshare adopt APP --region FILE --workspace DIR",
        )
    return read_lock(workspace)


def _requested(
    apps: Sequence[str],
    lock: Lock,
    catalog: Catalog,
    warnings: list[str],
    external: Collection[str],
) -> list[str]:
    if apps:
        for name in apps:
            manifest = catalog.app(name)  # UnknownAppError for a name the catalogue lacks
            if name in external:
                raise UsageError(
                    f"'{name}' is external in the region profile (apps.{name}.external): "
                    "the region runs it itself, not in this stack",
                    hint="deploy the apps that require it",
                )
            if manifest.runtime is None:
                raise UsageError(
                    f"'{name}' cannot be deployed: its manifest has no 'runtime'",
                    hint="the sharing region must describe how it runs (docs/formats.md)",
                )
        return list(dict.fromkeys(apps))
    chosen = []
    for name in sorted(lock.apps):
        loaded = catalog.apps.get(name)
        if loaded is not None and loaded.model.runtime is None:
            warnings.append(f"'{name}' is adopted but has no runtime: it is not deployed")
        else:
            chosen.append(name)
    if not chosen:
        raise UsageError(
            "no adopted app can be deployed: none has a 'runtime'",
            hint="the sharing region must describe how its apps run (docs/formats.md)",
        )
    return chosen


def _adopted_manifest(catalog: Catalog, lock: Lock, name: str) -> AppManifest:
    """The manifest of the version ``name`` is adopted at (an older one after a rollback)."""
    entry = lock.apps.get(name)
    older = catalog.versions.get(name, {}).get(entry.version) if entry is not None else None
    if older is not None and entry is not None and entry.version != catalog.app(name).version:
        return older.model
    return catalog.app(name)


def _runs(catalog: Catalog, name: str, named: Sequence[str]) -> bool:
    """Whether ``name`` is part of the stack: it has a runtime (or was named, to fail clearly)."""
    loaded = catalog.apps.get(name)
    return name in named or (loaded is not None and loaded.model.runtime is not None)


def _inputs(
    manifest: AppManifest,
    lock: Lock,
    *,
    workspace: Path,
    key: bytes,
    region_digest: str,
    region_dir: Path,
    region_file: Path,
    earlier: bool,
) -> AppInputs:
    name = manifest.name
    which = f"'{name}'" + (" (deployed earlier, so part of the stack)" if earlier else "")
    again = f"smartshare adopt {name} --region {region_file} --workspace {workspace}"
    entry = lock.apps.get(name)
    if entry is None:
        raise UsageError(f"{which} is not adopted in {workspace}", hint=f"adopt it first: {again}")
    refuse_attention(lock, [name], command="deploy")  # a required app, or one deployed earlier
    if manifest.runtime is None:
        raise UsageError(
            f"{which} cannot be deployed: its manifest has no 'runtime'",
            hint="the sharing region must describe how it runs (docs/formats.md)",
        )
    if (entry.region_digest or (lock.region.digest if lock.region else None)) != region_digest:
        raise UsageError(
            f"{which} was adopted for another version of the region profile",
            hint=f"adopt it again first (only what changed is redone): {again}",
        )
    if entry.manifest_digest != manifest_digest(manifest):
        raise UsageError(
            f"{which}: the catalogue's manifest changed since it was adopted",
            hint=f"adopt it again first: {again}",
        )
    images = {image.name: image.image_id for image in entry.images if image.image_id}
    if not entry.built or any(image.name not in images for image in manifest.images):
        raise UsageError(
            f"{which} was adopted without building its images (--no-build)",
            hint=f"adopt it again with images: {again}",
        )
    return AppInputs(
        manifest=manifest,
        params=_params(manifest, entry, region_dir),
        images={n: i for n, i in images.items() if i is not None},
        runtime_files=_runtime_files(manifest, entry, workspace=workspace, key=key, again=again),
        pushed=_pushed(entry),
    )


def _pushed(entry: LockedApp) -> dict[str, str]:
    """Each image adopt --push left in the registry, by digest: ``repo@sha256:...``."""
    from smartshare.building.push import split_reference

    pushed = {}
    for image in entry.images:
        if image.digest and image.pushed:
            repository, _tag = split_reference(image.pushed[0])
            pushed[image.name] = f"{repository}@{image.digest}"
    return pushed


def _params(manifest: AppManifest, entry: LockedApp, region_dir: Path) -> dict[str, object]:
    """The values adopt used (the lock's), secrets resolved from their references again."""
    params: dict[str, object] = {}
    for spec in manifest.parameters:
        value = entry.values.get(spec.name)
        if spec.secret and isinstance(value, str):
            value = resolve_secret(value, base_dir=region_dir, param=spec.name, app=manifest.name)
        params[spec.name] = value
    return params


def _runtime_files(
    manifest: AppManifest, entry: LockedApp, *, workspace: Path, key: bytes, again: str
) -> dict[str, bytes]:
    """The runtime files the containers mount, as adopt rendered them."""
    runtime = manifest.runtime
    wanted = (
        {f.dest for c in (*runtime.services, *runtime.jobs) for f in c.files}
        if runtime is not None
        else set()
    )
    recorded = {f.dest: f.digest for f in entry.files if f.target == TemplateTarget.RUNTIME.value}
    contents: dict[str, bytes] = {}
    for dest in sorted(wanted):
        path = ws.runtime_dir(workspace, manifest.name) / dest
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        if data is None or ws.file_digest(data, key=key) != recorded.get(dest):
            state = "is missing" if data is None else "was edited by hand"
            raise UsageError(
                f"'{manifest.name}': runtime file {dest} {state} since adoption",
                hint=f"adopt it again to render it as recorded: {again}",
            )
        contents[dest] = data
    return contents
