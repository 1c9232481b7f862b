"""``plan`` and ``adopt``: bring apps from the catalogue into a region's workspace.

For each app, in dependency order and in parallel where ``requires`` allows:
resolve its values, fetch the pinned source through the git mirror cache,
render its templates, build its images, push them if asked, and record it in
the lock.  An app is prepared in scratch space and swapped into the workspace
only when every step succeeded.  An app whose inputs (commit, rendered files,
image spec) did not change since the lock was written is left alone.
"""

from __future__ import annotations

import json
import os
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare import __version__
from smartshare.building.labels import build_labels, static_labels
from smartshare.catalog.graph import critical_path_first, dependency_order
from smartshare.catalog.load import (
    Catalog,
    LoadedFile,
    load_catalog,
    load_region_file,
    resolve_catalog_root,
)
from smartshare.catalog.models import AppManifest, RegionProfile, TemplateTarget
from smartshare.catalog.rules import is_local_url
from smartshare.errors import (
    InvalidInputError,
    SmartshareError,
    UsageError,
)
from smartshare.fetching.urls import redact_url
from smartshare.rendering.values import (
    ResolvedValues,
    parse_set_options,
    resolve_values,
    validate_overrides,
)
from smartshare.state import workspace as ws
from smartshare.state.drift import file_drift, manifest_digest
from smartshare.state.lockfile import (
    Lock,
    LockedApp,
    LockedFile,
    LockedImage,
    LockedRegion,
    LockedSource,
    RenderInputs,
    read_lock,
    write_lock,
)

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine
    from smartshare.fetching.mirror import ResolvedRef


# Sources are resolved all at once, not --jobs at a time: mostly network waits.
FETCH_WORKERS = 8


class Phase(StrEnum):
    WAITING = "waiting"
    CHECKING = "checking"
    FETCHING = "fetching"
    RENDERING = "rendering"
    BUILDING = "building"
    PUSHING = "pushing"
    RECORDING = "recording"
    DONE = "done"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    """Progress of one app, for the CLI to show (core code never prints)."""

    app: str
    phase: Phase
    message: str = ""
    log: bool = False  # a build or push log line rather than a phase change


EventSink = Callable[[Event], None]


# -- what to adopt ------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFile:
    dest: str
    target: TemplateTarget
    digest: str  # as in the lock: sha256, or for runtime files an HMAC with the workspace key
    content: bytes | None  # None: not rendered, because the lock shows nothing changed


@dataclass(frozen=True)
class ImagePlan:
    name: str
    tags: tuple[str, ...]


@dataclass
class Assessment:
    """What an app should look like now, and what must be done to get there."""

    app: AppManifest
    values: ResolvedValues
    resolved: ResolvedRef
    files: list[RenderedFile]
    images: list[ImagePlan]
    build_key: str
    manifest_digest: str
    config_digest: str
    render_inputs: RenderInputs | None
    sync: bool = False
    build: bool = False
    push: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not (self.sync or self.build or self.push)


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
    key: bytes | None = None  # the workspace's HMAC key, once it exists
    _env: Any = None

    @property
    def region_model(self) -> RegionProfile:
        return self.region.model

    def template_env(self) -> Any:
        if self._env is None:
            from smartshare.rendering.sandbox import make_environment

            self._env = make_environment(self.catalog.templates_dir)
        return self._env


def _resolve_source_url(catalog: Catalog, url: str) -> str:
    """Relative local paths in a manifest are relative to its catalogue."""
    if is_local_url(url) and not url.startswith("file://") and not Path(url).is_absolute():
        return str((catalog.root / url).resolve())
    return url


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
) -> Context:
    """Check everything that can be checked before touching anything."""
    from smartshare.catalog.checks import check_app_templates, check_region
    from smartshare.fetching.mirror import default_cache_dir
    from smartshare.settings import load_settings

    if not apps and not all_apps:
        raise UsageError(
            "name the apps to adopt, or pass --all", hint="'smartshare list' shows them"
        )
    if apps and all_apps:
        raise UsageError("name apps or pass --all, not both")
    settings = load_settings()
    root = resolve_catalog_root(catalog_root)
    catalog = load_catalog(root)
    region = load_region_file(region_file)
    names = sorted(catalog.apps) if all_apps else list(apps)
    order = dependency_order(catalog, names)
    lock = read_lock(workspace)
    # Every file of the catalogue must load; templates are analysed for the apps
    # being adopted (the others' templates play no part in this run), unless
    # this very manifest and these very template files passed when last adopted.
    problems = [p for p in catalog.problems if p.severity.value == "error"]
    for name in order:
        if force or not _checked_before(catalog, lock.apps.get(name), name):
            problems += check_app_templates(
                app=catalog.apps[name], templates_dir=catalog.templates_dir
            )
    problems = [p for p in problems if p.severity.value == "error"]
    if problems:
        raise InvalidInputError(
            f"the catalogue {root} does not validate",
            hint="fix it first ('smartshare validate' shows the same problems)",
            problems=problems,
        )
    region_problems = [
        p for p in check_region(region=region, catalog=catalog) if p.severity.value == "error"
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
    values = {
        name: resolve_values(
            app=catalog.app(name),
            region=region.model,
            region_dir=region_dir,
            overrides=parsed.get(name),
        )
        for name in order
    }
    if lock.region is not None and lock.region.name != region.model.name:
        raise UsageError(
            f"workspace {workspace} holds apps adopted for '{lock.region.name}', "
            f"not '{region.model.name}'",
            hint="use one workspace per region (--workspace DIR)",
        )
    return Context(
        catalog=catalog,
        region=region,
        order=order,
        values=values,
        workspace=workspace,
        lock=lock,
        cache_dir=cache_dir or settings.cache_dir or default_cache_dir(),
        rewrites=settings.source_rewrites,
        build=build,
        push=push,
        force=force,
    )


def _checked_before(catalog: Catalog, entry: LockedApp | None, name: str) -> bool:
    """Whether ``name``'s manifest and template files are those it was last adopted with.

    An app is only recorded after its templates passed the check, with the
    same smartshare version, so passing again is certain.
    """
    if entry is None or entry.render_inputs is None or entry.smartshare_version != __version__:
        return False
    if entry.manifest_digest != manifest_digest(catalog.app(name)):
        return False
    return _current_template_digests(catalog, entry.render_inputs.templates) == (
        entry.render_inputs.templates
    )


def _current_template_digests(
    catalog: Catalog, names: Iterable[str]
) -> dict[str, str | None] | None:
    """The digests of the template files ``names`` now; None when one cannot be read."""
    from smartshare.rendering.sandbox import template_digests

    try:
        return template_digests(catalog.templates_dir, names)
    except SmartshareError:
        return None  # the full check says what is wrong


def _render_inputs_digest(
    ctx: Context, app: AppManifest, values: ResolvedValues, templates: Mapping[str, str | None]
) -> str | None:
    from smartshare.rendering.sandbox import render_context

    if ctx.key is None:
        return None
    payload = {
        "smartshare": __version__,
        "context": render_context(region=ctx.region_model, app=app, params=values.params),
        "specs": [[t.src, t.dest, t.target.value] for t in app.templates],
        "templates": dict(templates),
    }
    # Keyed: the context holds the resolved secrets.
    return ws.file_digest(json.dumps(payload, sort_keys=True, default=str).encode(), key=ctx.key)


def _file_digest(ctx: Context, target: TemplateTarget, content: bytes) -> str:
    return ws.file_digest(content, key=ctx.key if target is TemplateTarget.RUNTIME else None)


def image_tags(app: AppManifest, region: RegionProfile, image_name: str) -> tuple[str, ...]:
    return (f"{region.image_namespace()}/{image_name}:{app.version}-{region.name}",)


def render_files(
    ctx: Context, app: AppManifest, values: ResolvedValues
) -> tuple[list[RenderedFile], RenderInputs | None]:
    """Render ``app``'s templates; with what they were rendered from, for the lock."""
    from smartshare.rendering.analysis import analyse
    from smartshare.rendering.sandbox import render, render_context

    env = ctx.template_env()
    # Digests before rendering: a file edited meanwhile then shows up as changed next time.
    looked_up = (name for spec in app.templates for name in analyse(env, spec.src).looked_up)
    templates = _current_template_digests(ctx.catalog, dict.fromkeys(looked_up))
    context = render_context(region=ctx.region_model, app=app, params=values.params)
    files = []
    for spec in app.templates:
        content = render(env, spec.src, context).encode("utf-8")
        files.append(
            RenderedFile(
                dest=spec.dest,
                target=spec.target,
                digest=_file_digest(ctx, spec.target, content),
                content=content,
            )
        )
    digest = None if templates is None else _render_inputs_digest(ctx, app, values, templates)
    inputs = (
        None
        if digest is None or templates is None
        else RenderInputs(digest=digest, templates=templates)
    )
    return files, inputs


def _unchanged_files(
    ctx: Context, app: AppManifest, values: ResolvedValues
) -> tuple[list[RenderedFile], RenderInputs] | None:
    """The lock's record of ``app``'s rendered files, if rendering now would give the same."""
    entry = ctx.lock.apps.get(app.name)
    if ctx.force or entry is None or entry.render_inputs is None:
        return None
    inputs = entry.render_inputs
    if _current_template_digests(ctx.catalog, inputs.templates) != inputs.templates:
        return None
    if _render_inputs_digest(ctx, app, values, inputs.templates) != inputs.digest:
        return None
    recorded = {(f.dest, f.target): f.digest for f in entry.files}
    files = []
    for spec in app.templates:
        digest = recorded.get((spec.dest, spec.target.value))
        if digest is None:
            return None
        files.append(RenderedFile(dest=spec.dest, target=spec.target, digest=digest, content=None))
    return files, inputs


def rendered_contents(ctx: Context, assessment: Assessment) -> list[RenderedFile]:
    """The assessment's files with their contents, rendering them if that was skipped."""
    if all(f.content is not None for f in assessment.files):
        return assessment.files
    assessment.files, assessment.render_inputs = render_files(
        ctx, assessment.app, assessment.values
    )
    return assessment.files


def resolve_source(ctx: Context, name: str) -> ResolvedRef:
    """Bring ``name``'s ref into the git cache and resolve it to a commit."""
    from smartshare.fetching.mirror import resolve_ref

    app = ctx.catalog.app(name)
    return resolve_ref(
        url=_resolve_source_url(ctx.catalog, app.source.repo),
        ref=app.source.ref,
        commit=app.source.commit,
        cache_dir=ctx.cache_dir,
        rewrites=ctx.rewrites,
    )


def resolve_sources(
    ctx: Context, names: Sequence[str], pool: ThreadPoolExecutor
) -> dict[str, Future[ResolvedRef]]:
    """Start resolving every app's source at once.

    Asking a forge whether a ref moved is mostly waiting on the network (on a
    no-op run it is all there is to do), so this does not wait for ``--jobs``
    workers; each app's failure surfaces in that app's own ``result()``.
    """
    return {name: pool.submit(resolve_source, ctx, name) for name in names}


def assess(ctx: Context, name: str, *, resolved: ResolvedRef | None = None) -> Assessment:
    """Work out the wanted state of ``name`` and compare it with the lock and the disk."""
    app = ctx.catalog.app(name)
    values = ctx.values[name]
    if resolved is None:
        resolved = resolve_source(ctx, name)
    unchanged = _unchanged_files(ctx, app, values)
    files, inputs = unchanged if unchanged is not None else render_files(ctx, app, values)
    image_files = [(f.dest, f.digest) for f in files if f.target is TemplateTarget.IMAGE]
    config_digest = ws.json_digest(image_files)
    images = [ImagePlan(i.name, image_tags(app, ctx.region_model, i.name)) for i in app.images]
    manifest = manifest_digest(app)
    build_key = ws.json_digest(
        {
            "commit": resolved.commit,
            "images": [i.model_dump(mode="json") for i in app.images],
            "tags": [list(i.tags) for i in images],
            "config": config_digest,
            "labels": static_labels(app, ctx.region_model, resolved.commit, config_digest),
        }
    )
    result = Assessment(
        app=app,
        values=values,
        resolved=resolved,
        files=files,
        images=images,
        build_key=build_key,
        manifest_digest=manifest,
        config_digest=config_digest,
        render_inputs=inputs,
    )
    _compare_with_lock(ctx, result)
    return result


def _compare_with_lock(ctx: Context, result: Assessment) -> None:
    name = result.app.name
    entry = ctx.lock.apps.get(name)
    reasons = result.reasons
    if ctx.force:
        reasons.append("--force")
        result.sync = True
        result.build = ctx.build
        result.push = ctx.push
        return
    if entry is None:
        reasons.append("not adopted yet")
        result.sync, result.build, result.push = True, ctx.build, ctx.push
        return
    if entry.source.commit != result.resolved.commit:
        reasons.append(f"source moved {entry.source.commit[:12]} -> {result.resolved.commit[:12]}")
    if entry.build_key != result.build_key and entry.source.commit == result.resolved.commit:
        reasons.append("image files, image spec or tags changed")
    wanted = {(f.dest, f.target.value): f.digest for f in result.files}
    recorded = {(f.dest, f.target): f.digest for f in entry.files}
    if wanted != recorded:
        reasons.append("rendered files changed")
    changed = next(file_drift(ctx.workspace, name, result.files, key=ctx.key), None)
    if changed is not None:
        reasons.append(f"{changed.dest} differs from its rendering (edited by hand or missing)")
    if not ws.src_dir(ctx.workspace, name).is_dir():
        reasons.append("source tree missing from the workspace")
    result.sync = bool(reasons)
    if ctx.build and (not entry.built or entry.build_key != result.build_key):
        result.build = True
        if not entry.built:
            reasons.append("images not built yet")
    if ctx.push:
        wanted_tags = {t for i in result.images for t in i.tags}
        pushed = {t for i in entry.images for t in i.pushed}
        if result.build or not wanted_tags <= pushed:
            result.push = True
            reasons.append("images not pushed yet")


# -- plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    app: str
    version: str
    source: str
    ref: str
    commit: str
    pinned: bool
    files: list[tuple[str, str]]
    images: list[str]
    actions: list[str]
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "source": self.source,
            "ref": self.ref,
            "commit": self.commit,
            "pinned": self.pinned,
            "files": [{"dest": d, "target": t} for d, t in self.files],
            "images": self.images,
            "actions": self.actions,
            "up_to_date": not self.actions,
            "reasons": self.reasons,
        }


@dataclass(frozen=True)
class Plan:
    region: str
    workspace: Path
    entries: list[PlanEntry]


def _actions(assessment: Assessment) -> list[str]:
    actions = []
    if assessment.sync:
        actions += ["fetch", "render"]
    if assessment.build:
        actions.append("build")
    if assessment.push:
        actions.append("push")
    return actions


def make_plan(
    *,
    apps: Sequence[str] = (),
    all_apps: bool = False,
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None = None,
    overrides: Sequence[str] = (),
    build: bool = True,
    push: bool = False,
    force: bool = False,
    cache_dir: Path | None = None,
) -> Plan:
    """What ``adopt`` would do, in order, without doing it (only the git cache is refreshed)."""
    ctx = prepare(
        apps=apps,
        all_apps=all_apps,
        region_file=region_file,
        workspace=workspace,
        catalog_root=catalog_root,
        overrides=overrides,
        build=build,
        push=push,
        force=force,
        cache_dir=cache_dir,
    )
    ctx.key = ws.read_key(workspace)
    entries = []
    with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as fetchers:
        sources = resolve_sources(ctx, ctx.order, fetchers)
        assessments = [assess(ctx, name, resolved=sources[name].result()) for name in ctx.order]
    for name, result in zip(ctx.order, assessments, strict=True):
        entries.append(
            PlanEntry(
                app=name,
                version=result.app.version,
                source=redact_url(result.app.source.repo),
                ref=result.app.source.ref,
                commit=result.resolved.commit,
                pinned=result.app.source.commit is not None,
                files=[(f.dest, f.target.value) for f in result.files],
                images=[t for i in result.images for t in i.tags],
                actions=_actions(result),
                reasons=result.reasons,
            )
        )
    return Plan(region=ctx.region_model.name, workspace=workspace, entries=entries)


# -- adopt --------------------------------------------------------------------


class Outcome(StrEnum):
    ADOPTED = "adopted"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class AppResult:
    app: str
    outcome: Outcome
    version: str = ""
    commit: str = ""
    images: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    message: str = ""
    hint: str | None = None
    error: SmartshareError | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class AdoptResult:
    region: str
    workspace: Path
    results: list[AppResult]
    interrupted: bool = False

    @property
    def failed(self) -> list[AppResult]:
        return [r for r in self.results if r.outcome in (Outcome.FAILED, Outcome.SKIPPED)]


class _Cancelled(Exception):
    """Raised inside a worker when the run is being interrupted."""


class _Runner:
    def __init__(self, ctx: Context, engine: DockerEngine | None, on_event: EventSink) -> None:
        self.ctx = ctx
        self.engine = engine
        self.on_event = on_event
        self.cancel = threading.Event()
        self.lock_mutex = threading.Lock()
        self.sources: dict[str, Future[ResolvedRef]] = {}

    def emit(self, app: str, phase: Phase, message: str = "", *, log: bool = False) -> None:
        if self.cancel.is_set() and not log:
            raise _Cancelled
        self.on_event(Event(app=app, phase=phase, message=message, log=log))

    def log_sink(self, app: str, phase: Phase) -> Callable[[str], None]:
        def sink(line: str) -> None:
            if self.cancel.is_set():
                raise _Cancelled
            self.on_event(Event(app=app, phase=phase, message=line, log=True))

        return sink

    def adopt_one(self, name: str) -> AppResult:
        ctx = self.ctx
        self.emit(name, Phase.CHECKING)
        assessment = assess(ctx, name, resolved=self.sources[name].result())
        app = assessment.app
        entry = ctx.lock.apps.get(name)
        if entry is not None and ctx.build and not assessment.build and self.engine is not None:
            # The lock says built; make sure the engine still has those very images
            # (a tag rebuilt or removed by hand since then is rebuilt).
            recorded = {image.name: image.image_id for image in entry.images}
            present = all(
                self.engine.image_id(tag) == recorded.get(image.name)
                for image in assessment.images
                for tag in image.tags
            )
            if not present:
                assessment.build = True
                assessment.sync = True
                assessment.reasons.append("images missing from the Docker engine or retagged")
                if ctx.push:
                    assessment.push = True
        if assessment.up_to_date:
            self.emit(name, Phase.UP_TO_DATE)
            assert entry is not None
            if assessment.render_inputs is not None:
                # Rendered the same from other inputs (an older lock, a template
                # comment): remember them, so that the next run need not render.
                with self.lock_mutex:
                    entry.render_inputs = assessment.render_inputs
            return AppResult(
                app=name,
                outcome=Outcome.UP_TO_DATE,
                version=app.version,
                commit=assessment.resolved.commit,
                images=[t for i in entry.images for t in i.tags],
                digests=[i.digest for i in entry.images if i.digest],
            )
        scratch = ws.new_scratch(ctx.workspace, name)
        try:
            locked_images = self._materialise(assessment, scratch, entry)
            self.emit(name, Phase.RECORDING)
            ws.swap_in(scratch / "src", ws.src_dir(ctx.workspace, name))
            ws.swap_in(scratch / "runtime", ws.runtime_dir(ctx.workspace, name))
            self._record(assessment, locked_images, entry)
        finally:
            ws.discard(scratch)
        self.emit(name, Phase.DONE)
        return AppResult(
            app=name,
            outcome=Outcome.ADOPTED,
            version=app.version,
            commit=assessment.resolved.commit,
            images=[t for i in locked_images for t in i.tags],
            digests=[i.digest for i in locked_images if i.digest],
            message="; ".join(assessment.reasons),
        )

    def _materialise(
        self, assessment: Assessment, scratch: Path, entry: LockedApp | None
    ) -> list[LockedImage]:
        from smartshare.fetching.export import export_tree
        from smartshare.state.safefs import atomic_write, confined_path

        ctx = self.ctx
        name = assessment.app.name
        self.emit(name, Phase.FETCHING, assessment.resolved.commit[:12])
        export_tree(resolved=assessment.resolved, dest=scratch / "src")
        self.emit(name, Phase.RENDERING)
        runtime = scratch / "runtime"
        runtime.mkdir(mode=0o700)
        for rendered in rendered_contents(ctx, assessment):
            assert rendered.content is not None
            if rendered.target is TemplateTarget.IMAGE:
                path = confined_path(scratch / "src", rendered.dest)
                mode = 0o644
            else:
                path = confined_path(runtime, rendered.dest)
                mode = 0o600
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, rendered.content, mode=mode)
        images: list[LockedImage] = []
        if not ctx.build:
            return images
        previous = {i.name: i for i in entry.images} if entry else {}
        for spec, plan in zip(assessment.app.images, assessment.images, strict=True):
            assert self.engine is not None
            if assessment.build:
                self.emit(name, Phase.BUILDING, spec.name)
                static = static_labels(
                    assessment.app,
                    ctx.region_model,
                    assessment.resolved.commit,
                    assessment.config_digest,
                )
                labels = build_labels(static, now=datetime.now(UTC))
                built = self.engine.build(
                    context_dir=scratch / "src" / spec.context,
                    dockerfile=spec.dockerfile,
                    tags=list(plan.tags),
                    labels=labels,
                    buildargs=dict(spec.args),
                    target=spec.target,
                    on_log=self.log_sink(name, Phase.BUILDING),
                )
                image = LockedImage(name=spec.name, image_id=built.image_id, tags=list(plan.tags))
            else:
                old = previous.get(spec.name)
                image = (
                    old.model_copy(deep=True)
                    if old
                    else LockedImage(name=spec.name, tags=list(plan.tags))
                )
            if assessment.push:
                self.emit(name, Phase.PUSHING, spec.name)
                for tag in plan.tags:
                    image.digest = self.engine.push(
                        reference=tag, on_log=self.log_sink(name, Phase.PUSHING)
                    )
                image.pushed = list(plan.tags)
            elif assessment.build:
                image.pushed = []
                image.digest = None
            images.append(image)
        return images

    def _record(
        self, assessment: Assessment, images: list[LockedImage], entry: LockedApp | None
    ) -> None:
        ctx = self.ctx
        built = ctx.build or bool(entry and entry.built and entry.build_key == assessment.build_key)
        if not ctx.build and entry is not None and entry.build_key == assessment.build_key:
            images = entry.images
        locked = LockedApp(
            version=assessment.app.version,
            manifest_digest=assessment.manifest_digest,
            source=LockedSource(
                url=redact_url(assessment.app.source.repo),
                ref=assessment.app.source.ref,
                commit=assessment.resolved.commit,
            ),
            values=assessment.values.recorded,
            files=[
                LockedFile(dest=f.dest, target=f.target.value, digest=f.digest)
                for f in assessment.files
            ],
            render_inputs=assessment.render_inputs,
            build_key=assessment.build_key,
            built=built,
            images=images,
            adopted_at=datetime.now(UTC).isoformat(timespec="seconds"),
            smartshare_version=__version__,
        )
        with self.lock_mutex:
            ctx.lock.apps[assessment.app.name] = locked
            write_lock(ctx.workspace, ctx.lock)

    def run(self, jobs: int, fail_fast: bool) -> AdoptResult:
        ctx = self.ctx
        results: dict[str, AppResult] = {}
        pending = critical_path_first(ctx.catalog, ctx.order)
        running: dict[Future[AppResult], str] = {}
        stop = False
        interrupted = False
        for name in pending:
            self.on_event(Event(app=name, phase=Phase.WAITING))
        fetchers = ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch")
        with fetchers, ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="adopt") as pool:
            self.sources = resolve_sources(ctx, pending, fetchers)
            try:
                while pending or running:
                    for name in list(pending):
                        deps = [d for d in ctx.catalog.app(name).requires if d in ctx.order]
                        broken = [
                            d
                            for d in deps
                            if d in results
                            and results[d].outcome in (Outcome.FAILED, Outcome.SKIPPED)
                        ]
                        if stop or broken:
                            pending.remove(name)
                            why = (
                                f"requires {', '.join(broken)}, which did not adopt"
                                if broken
                                else "not started: an earlier app failed (--fail-fast)"
                            )
                            results[name] = AppResult(
                                app=name, outcome=Outcome.SKIPPED, message=why
                            )
                            self.on_event(Event(app=name, phase=Phase.SKIPPED, message=why))
                        elif all(d in results for d in deps) and len(running) < jobs:
                            pending.remove(name)
                            running[pool.submit(self._guarded, name)] = name
                    if not running:
                        continue
                    done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = running.pop(future)
                        results[name] = future.result()
                        if results[name].outcome is Outcome.FAILED and fail_fast:
                            stop = True
            except KeyboardInterrupt:
                interrupted = True
                self.cancel.set()
                fetchers.shutdown(wait=False, cancel_futures=True)
                for name in running.values():
                    self.on_event(
                        Event(app=name, phase=Phase.SKIPPED, message="interrupted: stopping")
                    )
                for future in running:
                    future.cancel()
                wait(list(running))
                for future, name in running.items():
                    if not future.cancelled() and future.exception() is None:
                        results[name] = future.result()
        ordered = [results[n] for n in ctx.order if n in results]
        return AdoptResult(
            region=ctx.region_model.name,
            workspace=ctx.workspace,
            results=ordered,
            interrupted=interrupted,
        )

    def _guarded(self, name: str) -> AppResult:
        try:
            return self.adopt_one(name)
        except (_Cancelled, CancelledError):  # CancelledError: its fetch was called off
            return AppResult(app=name, outcome=Outcome.SKIPPED, message="interrupted")
        except SmartshareError as exc:
            self.on_event(Event(app=name, phase=Phase.FAILED, message=exc.message))
            return AppResult(
                app=name, outcome=Outcome.FAILED, message=exc.message, hint=exc.hint, error=exc
            )
        except Exception as exc:  # an app's bug must not take the others down
            self.on_event(Event(app=name, phase=Phase.FAILED, message=repr(exc)))
            return AppResult(
                app=name,
                outcome=Outcome.FAILED,
                message=f"internal error: {exc!r}",
                traceback=traceback.format_exc(),
            )


def adopt(
    *,
    apps: Sequence[str] = (),
    all_apps: bool = False,
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None = None,
    jobs: int | None = None,
    overrides: Sequence[str] = (),
    build: bool = True,
    push: bool = False,
    force: bool = False,
    fail_fast: bool = False,
    cache_dir: Path | None = None,
    docker_host: str | None = None,
    on_event: EventSink | None = None,
) -> AdoptResult:
    """Adopt ``apps`` (with what they require) for the region in ``region_file``."""
    ctx = prepare(
        apps=apps,
        all_apps=all_apps,
        region_file=region_file,
        workspace=workspace,
        catalog_root=catalog_root,
        overrides=overrides,
        build=build,
        push=push,
        force=force,
        cache_dir=cache_dir,
    )
    engine: DockerEngine | None = None
    if build:
        from smartshare.building.engine import connect

        # Before the workspace is touched: no engine means nothing changes.
        engine = connect(docker_host=docker_host)
    try:
        ws.ensure_workspace(workspace)
        with ws.run_lock(workspace):
            ws.reset_scratch(workspace)
            ctx.key = ws.ensure_key(workspace)  # once, before workers hash runtime files with it
            ctx.lock = read_lock(workspace)
            region = ctx.region_model
            ctx.lock.region = LockedRegion(
                name=region.name,
                title=region.title,
                code=region.code,
                file=str(ctx.region.doc.path.resolve()),
                digest=ws.file_digest(ctx.region.doc.text.encode("utf-8")),
            )
            ctx.lock.catalog = str(ctx.catalog.root.resolve())
            if not ctx.lock.apps:
                write_lock(workspace, ctx.lock)
            runner = _Runner(ctx, engine, on_event or (lambda event: None))
            jobs = max(1, jobs or os.cpu_count() or 1)
            result = runner.run(jobs, fail_fast)
            if result.interrupted:
                return result
            with runner.lock_mutex:
                write_lock(workspace, ctx.lock)
            return result
    finally:
        if engine is not None:
            engine.close()
