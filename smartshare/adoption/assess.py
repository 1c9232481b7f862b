"""What each app should look like now, and what must be done to get there.

Its source is resolved (all apps at once: mostly network waits), its files
rendered (or, when the lock shows the same inputs, taken from the lock
without rendering), its image tags and build key worked out, and all of it
compared with the lock and the disk.  The tag policy is
:func:`smartshare.catalog.tags.image_tags`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare import __version__
from smartshare.adoption.request import Context, current_template_digests
from smartshare.building.labels import static_labels
from smartshare.catalog.load import Catalog
from smartshare.catalog.models import AppManifest, TemplateTarget
from smartshare.catalog.rules import is_local_url
from smartshare.catalog.tags import image_tags
from smartshare.rendering.values import ResolvedValues
from smartshare.state import workspace as ws
from smartshare.state.drift import file_drift, manifest_digest, region_digest
from smartshare.state.lockfile import LockedApp, RenderInputs

if TYPE_CHECKING:
    from smartshare.catalog.patches import Patch
    from smartshare.fetching.mirror import ResolvedRef

# Sources are resolved all at once, not --jobs at a time: mostly network waits.
FETCH_WORKERS = 8


@dataclass(frozen=True)
class RenderedFile:
    dest: str
    target: TemplateTarget
    digest: str  # as in the lock: sha256, or for runtime files an HMAC with the workspace key
    content: bytes | None  # None: not rendered, because the lock shows nothing changed
    asset: str | None = None  # the asset this file is (a file the region supplied), if any


@dataclass(frozen=True)
class Rendering:
    """An app's rendered files and build arguments, and what they were rendered from."""

    files: list[RenderedFile]  # the templates' files, in the manifest's order
    build_args: dict[str, dict[str, str]]  # by image, for every image with arguments
    inputs: RenderInputs | None


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
    build_args: dict[str, dict[str, str]] = field(default_factory=dict)
    patches: list[Patch] = field(default_factory=list)  # the region's, in order
    tree_digest: str | None = None  # git's tree id of the source as built (once exported)
    sync: bool = False
    build: bool = False
    push: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not (self.sync or self.build or self.push)


def _resolve_source_url(catalog: Catalog, url: str) -> str:
    """Relative local paths in a manifest are relative to its catalogue."""
    if is_local_url(url) and not url.startswith("file://") and not Path(url).is_absolute():
        return str((catalog.root / url).resolve())
    return url


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
        credentials=ctx.credentials,
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


def start_renderers(ctx: Context, names: Sequence[str]) -> None:
    """Start a render worker now if any of ``names`` will be rendered (none for a no-op run)."""
    apps = [ctx.catalog.app(name) for name in names if name in ctx.values]
    if any(unchanged_rendering(ctx, app, ctx.values[app.name]) is None for app in apps):
        ctx.renderers.prestart()


def assess(ctx: Context, name: str, *, resolved: ResolvedRef | None = None) -> Assessment:
    """Work out the wanted state of ``name`` and compare it with the lock and the disk."""
    app = ctx.catalog.app(name)
    values = ctx.values[name]
    if resolved is None:
        resolved = resolve_source(ctx, name)
    unchanged = unchanged_rendering(ctx, app, values)
    rendering = unchanged if unchanged is not None else render_files(ctx, app, values)
    if unchanged is None:
        # Rendered again (new values, templates or catalogue schemas): the files may
        # be the same as recorded, but the schemas they must satisfy may not.
        check_outputs(ctx, app, rendering.files, source_dir=None)
    files = rendering.files + asset_files(ctx, app)
    # The image's files: rendered ones and assets (the label says which went in).
    image_files = [(f.dest, f.digest) for f in files if f.target is TemplateTarget.IMAGE]
    config_digest = ws.json_digest(image_files)
    images = [ImagePlan(i.name, image_tags(app, ctx.region_model, i.name)) for i in app.images]
    manifest = manifest_digest(app)
    patches = ctx.patches.get(name, [])
    # Only with patches: the build keys of apps without them stay as they were.
    patched = {"patches": [[p.name, p.digest] for p in patches]} if patches else {}
    build_key = ws.json_digest(
        {
            **patched,
            "commit": resolved.commit,
            # The arguments as rendered: a changed value rebuilds.
            "images": [
                {**i.model_dump(mode="json"), "args": rendering.build_args.get(i.name, i.args)}
                for i in app.images
            ],
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
        render_inputs=rendering.inputs,
        build_args=rendering.build_args,
        patches=patches,
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
        reasons.append("first adoption")
        result.sync, result.build, result.push = True, ctx.build, ctx.push
        return
    if entry.source.commit != result.resolved.commit:
        reasons.append(f"source moved {entry.source.commit[:12]} -> {result.resolved.commit[:12]}")
    patches_changed = [(p.path, p.digest) for p in entry.patches] != [
        (p.name, p.digest) for p in result.patches
    ]
    if patches_changed:
        reasons.append("region patches changed")
    wanted = {(f.dest, f.target.value): f.digest for f in result.files}
    recorded = {(f.dest, f.target): f.digest for f in entry.files}
    image_files_changed = {k: v for k, v in wanted.items() if k[1] == "image"} != {
        k: v for k, v in recorded.items() if k[1] == "image"
    }
    if (
        entry.build_key != result.build_key
        and entry.source.commit == result.resolved.commit
        and not image_files_changed
        and not patches_changed
    ):
        templated = templated_args(result.app)
        recorded_args = {name: entry.build_args.get(name) for name in templated}
        if recorded_args != {name: result.build_args.get(name) for name in templated}:
            reasons.append("build arguments changed")
        else:
            reasons.append("image spec, tags or labels changed")
    if wanted != recorded:
        reasons.append(_why_rendered_files_changed(ctx, result, entry))
    elif entry.manifest_digest != result.manifest_digest:
        # Only what the lock records changes (a runtime section, a description...):
        # deploy reads the manifest the app was adopted from.
        reasons.append("manifest changed")
    # Against what the lock recorded, not the new rendering: a file that
    # differs from that was changed by someone, not by new values.
    reasons += [d.describe() for d in file_drift(ctx.workspace, name, entry.files, key=ctx.key)]
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


def _why_rendered_files_changed(ctx: Context, result: Assessment, entry: LockedApp) -> str:
    changed = sorted(
        name
        for name in entry.values.keys() | result.values.recorded.keys()
        if entry.values.get(name) != result.values.recorded.get(name)
    )
    recorded = {(f.dest, f.target): f.digest for f in entry.files}
    assets = sorted(
        f.asset
        for f in result.files
        if f.asset is not None and recorded.get((f.dest, f.target.value)) != f.digest
    )
    why = []
    if entry.version != result.app.version:
        why.append(f"version {entry.version} -> {result.app.version}")
    if changed:
        why.append("values changed: " + ", ".join(changed))
    if assets:
        why.append("assets changed: " + ", ".join(assets))
    if entry.region_digest not in (None, region_digest(ctx.region.doc.text)):
        why.append("region profile changed")
    if why:
        return "; ".join(why)
    inputs = entry.render_inputs
    if inputs is not None and current_template_digests(ctx.catalog, inputs.templates) != (
        inputs.templates
    ):
        return "templates changed"
    if entry.manifest_digest != result.manifest_digest:
        return "manifest changed"
    return "rendered files changed"


def render_files(ctx: Context, app: AppManifest, values: ResolvedValues) -> Rendering:
    """Render ``app``'s templates and build arguments; with what they were rendered from.

    In render workers (:mod:`smartshare.rendering.pool`), under the run's
    limits: the image templates, which do not see the secrets, then the
    runtime templates, each group in a fresh state, then the build arguments
    that are Jinja text (as an image render).
    """
    from smartshare.rendering.analysis import analyse

    env = ctx.template_env()
    # Digests before rendering: a file edited meanwhile then shows up as changed next time.
    looked_up = [name for spec in app.templates for name in analyse(env, spec.src).looked_up]
    templates = current_template_digests(ctx.catalog, dict.fromkeys(looked_up + _schemas(app)))
    context = _context(ctx, app, values)
    contents: dict[int, bytes] = {}
    for target in (TemplateTarget.IMAGE, TemplateTarget.RUNTIME):
        group = [i for i, spec in enumerate(app.templates) if spec.target is target]
        rendered = ctx.renderers.render(
            templates_dir=ctx.catalog.templates_dir,
            templates=[app.templates[i].src for i in group],
            context=context,
            secret_names=values.secret_names,
            runtime=target is TemplateTarget.RUNTIME,
        )
        contents.update(zip(group, rendered, strict=True))
    files = [
        RenderedFile(
            dest=spec.dest,
            target=spec.target,
            digest=_file_digest(ctx, spec.target, contents[i]),
            content=contents[i],
        )
        for i, spec in enumerate(app.templates)
    ]
    templated = templated_args(app)
    labels = {
        (image, key): f"build argument {key} of image {image}"
        for image, args in templated.items()
        for key in args
    }
    texts = ctx.renderers.render_strings(
        templates_dir=ctx.catalog.templates_dir,
        texts={
            labels[image, key]: text
            for image, args in templated.items()
            for key, text in args.items()
        },
        context=context,
        secret_names=values.secret_names,
    )
    build_args = {
        image.name: {
            key: texts[labels[image.name, key]] if (image.name, key) in labels else value
            for key, value in image.args.items()
        }
        for image in app.images
        if image.args
    }
    digest = None if templates is None else _render_inputs_digest(ctx, app, values, templates)
    inputs = (
        None
        if digest is None or templates is None
        else RenderInputs(digest=digest, templates=templates)
    )
    return Rendering(files=files, build_args=build_args, inputs=inputs)


def _context(ctx: Context, app: AppManifest, values: ResolvedValues) -> dict[str, Any]:
    from smartshare.rendering.sandbox import render_context

    return render_context(
        region=ctx.region_model,
        app=app,
        params=values.params,
        requires=ctx.requires_outputs(app.name),
        assets=ctx.asset_context(app.name),
    )


def _schemas(app: AppManifest) -> list[str]:
    """The ``catalog:`` schemas of ``app``'s templates, as names under templates/."""
    return [
        spec.output_schema.removeprefix("catalog:")
        for spec in app.templates
        if spec.output_schema is not None and spec.output_schema.startswith("catalog:")
    ]


def templated_args(app: AppManifest) -> dict[str, dict[str, str]]:
    """The build arguments that are Jinja text, by image."""
    from smartshare.rendering.sandbox import is_template_text

    templated = {
        image.name: {key: text for key, text in image.args.items() if is_template_text(text)}
        for image in app.images
    }
    return {name: args for name, args in templated.items() if args}


def asset_files(ctx: Context, app: AppManifest) -> list[RenderedFile]:
    """The files the region supplied for ``app``'s assets, as they go into its folders."""
    return [
        RenderedFile(
            dest=asset.dest,
            target=asset.target,
            digest=_file_digest(ctx, asset.target, asset.content),
            content=asset.content,
            asset=asset.name,
        )
        for asset in ctx.assets.get(app.name, [])
    ]


def check_outputs(
    ctx: Context, app: AppManifest, files: Sequence[RenderedFile], *, source_dir: Path | None
) -> None:
    """Check each rendered file whose template declares a schema; OutputSchemaError if one fails.

    ``source_dir`` is the app's exported source tree, for ``source:`` schemas;
    without it only the ``catalog:`` schemas are checked.
    """
    from smartshare.rendering.sandbox import TemplateSource
    from smartshare.rendering.schemacheck import OutputCheck
    from smartshare.state.safefs import confined_path

    checks = []
    contents = {(f.dest, f.target): f.content for f in files if f.asset is None}
    for spec in app.templates:
        if spec.output_schema is None or spec.output_format is None:
            continue
        where, _, name = spec.output_schema.partition(":")
        if where == "source":
            if source_dir is None:
                continue
            path = confined_path(source_dir, name)
        else:
            path = TemplateSource(ctx.catalog.templates_dir.absolute()).path_of(name)
        content = contents[spec.dest, spec.target]
        assert content is not None
        checks.append(
            OutputCheck(
                dest=spec.dest,
                template=spec.src,
                runtime=spec.target is TemplateTarget.RUNTIME,
                format=spec.output_format.value,
                schema_name=spec.output_schema,
                schema_text=read_schema(path, spec.output_schema),
                content=content.decode("utf-8"),
            )
        )
    ctx.renderers.check_outputs(checks)


def read_schema(path: Path, name: str) -> str:
    """The text of a schema file: a regular file, UTF-8, at most MAX_SCHEMA_BYTES."""
    from smartshare.errors import OutputSchemaError
    from smartshare.rendering.schemacheck import MAX_SCHEMA_BYTES
    from smartshare.state.safefs import NotRegularFileError, read_regular_file

    try:
        raw = read_regular_file(path, MAX_SCHEMA_BYTES)
    except FileNotFoundError:
        raise OutputSchemaError(
            f"schema {name} does not exist",
            hint="source: paths are in the app's source tree at its commit, catalog: paths "
            "under the catalogue's templates/",
        ) from None
    except NotRegularFileError:
        raise OutputSchemaError(f"schema {name} is not a regular file") from None
    except OSError as exc:
        raise OutputSchemaError(f"schema {name} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SCHEMA_BYTES:
        raise OutputSchemaError(f"schema {name} is larger than {MAX_SCHEMA_BYTES // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OutputSchemaError(f"schema {name} is not UTF-8 text") from None


def unchanged_rendering(ctx: Context, app: AppManifest, values: ResolvedValues) -> Rendering | None:
    """:func:`_unchanged_files`, worked out once per app and run (its inputs are the run's)."""
    known = ctx.unchanged_renderings
    if app.name not in known:
        known[app.name] = _unchanged_files(ctx, app, values)
    return known[app.name]


def _unchanged_files(ctx: Context, app: AppManifest, values: ResolvedValues) -> Rendering | None:
    """The lock's record of ``app``'s rendering, if rendering now would give the same."""
    entry = ctx.lock.apps.get(app.name)
    if ctx.force or entry is None or entry.render_inputs is None:
        return None
    inputs = entry.render_inputs
    if current_template_digests(ctx.catalog, inputs.templates) != inputs.templates:
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
    build_args = {image.name: dict(image.args) for image in app.images if image.args}
    for name in templated_args(app):
        rendered = entry.build_args.get(name)
        if rendered is None or rendered.keys() != build_args[name].keys():
            return None
        build_args[name] = dict(rendered)
    return Rendering(files=files, build_args=build_args, inputs=inputs)


def rendered_contents(ctx: Context, assessment: Assessment) -> list[RenderedFile]:
    """The assessment's files with their contents, rendering them if that was skipped."""
    if all(f.content is not None for f in assessment.files):
        return assessment.files
    rendering = render_files(ctx, assessment.app, assessment.values)
    assessment.files = rendering.files + asset_files(ctx, assessment.app)
    assessment.render_inputs = rendering.inputs
    assessment.build_args = rendering.build_args
    return assessment.files


def _render_inputs_digest(
    ctx: Context, app: AppManifest, values: ResolvedValues, templates: Mapping[str, str | None]
) -> str | None:
    if ctx.key is None:
        return None
    payload = {
        "smartshare": __version__,
        "context": _context(ctx, app, values),
        "specs": [[t.src, t.dest, t.target.value] for t in app.templates],
        "templates": dict(templates),
    }
    templated = templated_args(app)
    if templated:  # only then: the digests of apps without them stay as they were
        payload["args"] = templated
    # Keyed: the context holds the resolved secrets.
    return ws.file_digest(json.dumps(payload, sort_keys=True, default=str).encode(), key=ctx.key)


def _file_digest(ctx: Context, target: TemplateTarget, content: bytes) -> str:
    return ws.file_digest(content, key=ctx.key if target is TemplateTarget.RUNTIME else None)
