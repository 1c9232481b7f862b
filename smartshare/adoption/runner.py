"""``adopt``: bring apps from the catalogue into a region's workspace.

For each app, in dependency order and in parallel where ``requires`` allows
(the apps others wait for first): its source resolved, its state assessed
(:mod:`.assess`), and if anything is to do, its tree exported and its files
rendered into scratch space, its images built and pushed if asked, the
result swapped into the workspace and recorded in the lock.  An app is
swapped in only when every step succeeded; the lock is rewritten after each
app, so an interrupted run leaves it consistent.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.adoption.assess import (
    FETCH_WORKERS,
    Assessment,
    RenderedFile,
    assess,
    check_outputs,
    rendered_contents,
    resolve_sources,
    start_renderers,
)
from smartshare.adoption.bases import BaseImage, base_images_of, image_bases, provide_bases
from smartshare.adoption.buildenv import BuildEnvironment
from smartshare.adoption.events import AdoptResult, AppResult, Event, EventSink, Outcome, Phase
from smartshare.adoption.record import ensure_baseline, keep_baseline, locked_entry
from smartshare.adoption.request import Context, prepare
from smartshare.building.labels import build_labels, static_labels
from smartshare.catalog.graph import critical_path_first
from smartshare.catalog.models import TemplateTarget
from smartshare.errors import SmartshareError
from smartshare.state import workspace as ws
from smartshare.state.drift import region_digest
from smartshare.state.lockfile import (
    LockedApp,
    LockedBase,
    LockedImage,
    LockedRegion,
    read_lock,
    refuse_attention,
    write_lock,
)

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine
    from smartshare.fetching.mirror import ResolvedRef
    from smartshare.fetching.patching import PatchedTree


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
        self.checks: dict[str, Future[Assessment]] = {}
        self.bases: dict[str, list[BaseImage]] = {}  # by app, of the apps to build
        self.provided: dict[str, LockedBase] = {}  # base images in the engine, by name
        self.region_digest = ctx.lock.region.digest if ctx.lock.region else None

    def emit(self, app: str, phase: Phase, message: str = "", *, log: bool = False) -> None:
        if self.cancel.is_set() and not log:
            raise _Cancelled
        self.on_event(Event(app=app, phase=phase, message=message, log=log))

    def log_sink(
        self, app: str, phase: Phase, *, redact: Callable[[str], str] | None = None
    ) -> Callable[[str], None]:
        def sink(line: str) -> None:
            if self.cancel.is_set():
                raise _Cancelled
            shown = redact(line) if redact is not None else line
            self.on_event(Event(app=app, phase=phase, message=shown, log=True))

        return sink

    def check(self, name: str) -> Assessment:
        """What is to do for ``name``: its assessment, and whether the engine has its images."""
        ctx = self.ctx
        self.emit(name, Phase.CHECKING)
        assessment = assess(ctx, name, resolved=self.sources[name].result())
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
        if assessment.build and self.engine is not None:
            self.bases[name] = image_bases(ctx, assessment)
        return assessment

    def provide_bases(self) -> None:
        """Every base image of the apps to build in the engine, before any build starts.

        Raises PullError (the run stops) when one cannot be had.
        """
        if self.engine is None:
            return
        everything = [base for name in self.ctx.order for base in self.bases.get(name, [])]

        def on_pull(base: BaseImage) -> None:
            self.emit(base.app, Phase.PULLING, base.name)

        self.provided = provide_bases(self.engine, everything, on_pull=on_pull)

    def adopt_one(self, name: str) -> AppResult:
        ctx = self.ctx
        # Checked before any app started, with every app's base images provided
        # (the check's failure, if any, is raised here: the app fails in its turn).
        assessment = self.checks[name].result()
        app = assessment.app
        entry = ctx.lock.apps.get(name)
        if assessment.up_to_date:
            assert entry is not None
            # A workspace from before baselines: this adoption's baseline, kept now.
            kept = ensure_baseline(ctx, assessment, entry)
            self.emit(name, Phase.UP_TO_DATE)
            with self.lock_mutex:
                if kept is not None:
                    entry.adoption_id = kept.adoption_id
                    entry.tree_digest = kept.tree_digest
                if assessment.render_inputs is not None:
                    # Rendered the same from other inputs (an older lock, a template
                    # comment): remember them, so that the next run need not render.
                    entry.render_inputs = assessment.render_inputs
                # The files are what this profile renders: deploy may use them.
                entry.region_digest = self.region_digest
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

        ctx = self.ctx
        name = assessment.app.name
        self.emit(name, Phase.FETCHING, assessment.resolved.commit[:12])
        export_tree(resolved=assessment.resolved, dest=scratch / "src")
        self._patch(assessment, scratch)
        self.emit(name, Phase.RENDERING)
        files = rendered_contents(ctx, assessment)
        # Before anything is written or built: the app's own schemas for its files.
        check_outputs(ctx, assessment.app, files, source_dir=scratch / "src")
        contents = self._contents(assessment, files, scratch)
        self._write(contents, TemplateTarget.IMAGE, scratch / "src", mode=0o644)
        images = self._build_and_push(assessment, scratch / "src", entry)
        # Only now: the runtime files (the secrets) never exist beside the source
        # tree while its images are built.
        runtime = scratch / "runtime"
        runtime.mkdir(mode=0o700)
        self._write(contents, TemplateTarget.RUNTIME, runtime, mode=0o600)
        return images

    def _patch(self, assessment: Assessment, scratch: Path) -> None:
        """Apply the region's patches to the exported tree (``scratch/src``)."""
        if assessment.patches:
            self.emit(assessment.app.name, Phase.PATCHING, f"{len(assessment.patches)} patch(es)")
        self._apply_patches(assessment, scratch)

    @staticmethod
    def _apply_patches(
        assessment: Assessment,
        scratch: Path,
        *,
        three_way: bool = False,
        keep_conflicts: bool = False,
    ) -> PatchedTree:
        """The patches applied to ``scratch/src`` (git's files in ``scratch/patching``)."""
        from smartshare.fetching.patching import apply_patches

        work = scratch / "patching"
        work.mkdir(mode=0o700)
        patched = apply_patches(
            resolved=assessment.resolved,
            tree=scratch / "src",
            patches=assessment.patches,
            work=work,
            three_way=three_way,
            keep_conflicts=keep_conflicts,
        )
        assessment.tree_digest = patched.tree_digest
        return patched

    def _contents(
        self, assessment: Assessment, files: list[RenderedFile], scratch: Path
    ) -> dict[tuple[str, TemplateTarget], bytes]:
        """What to write of each file (``None``-free): as rendered, for adopt."""
        return {(f.dest, f.target): f.content for f in files if f.content is not None}

    @staticmethod
    def _write(
        contents: dict[tuple[str, TemplateTarget], bytes],
        target: TemplateTarget,
        root: Path,
        *,
        mode: int,
    ) -> None:
        from smartshare.state.safefs import atomic_write, confined_path

        for (dest, kind), content in contents.items():
            if kind is target:
                path = confined_path(root, dest)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, content, mode=mode)

    def _build_and_push(
        self, assessment: Assessment, source_dir: Path, entry: LockedApp | None
    ) -> list[LockedImage]:
        ctx = self.ctx
        name = assessment.app.name
        images: list[LockedImage] = []
        if not ctx.build:
            return images
        previous = {i.name: i for i in entry.images} if entry else {}
        env = ctx.build_env or BuildEnvironment()
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
                try:
                    built = self.engine.build(
                        source_dir=source_dir,
                        context=spec.context,
                        dockerfile=spec.dockerfile,
                        tags=list(plan.tags),
                        labels=labels,
                        buildargs={
                            **assessment.build_args.get(spec.name, dict(spec.args)),
                            **env.args,
                        },
                        target=spec.target,
                        network_mode=env.network,
                        on_log=self.log_sink(name, Phase.BUILDING, redact=env.redact),
                    )
                except SmartshareError as exc:
                    # The build saw the proxy's credentials: so may its log and its error.
                    shown = env.redact(exc.message)
                    if shown == exc.message:
                        raise
                    raise type(exc)(shown, hint=exc.hint) from None
                bases = [b for b in self.bases.get(name, []) if b.image == spec.name]
                image = LockedImage(
                    name=spec.name,
                    image_id=built.image_id,
                    tags=list(plan.tags),
                    bases=base_images_of(self.provided, bases),
                )
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
        locked = locked_entry(
            ctx=self.ctx,
            assessment=assessment,
            images=images,
            entry=entry,
            region_digest=self.region_digest,
        )
        from smartshare.state import history  # only when an app was adopted

        keep_baseline(self.ctx, assessment, locked)
        dropped = history.succeed(entry, locked)
        with self.lock_mutex:
            self.ctx.lock.apps[assessment.app.name] = locked
            write_lock(self.ctx.workspace, self.ctx.lock)
        history.prune(self.ctx.workspace, assessment.app.name, dropped)

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
            start_renderers(ctx, pending)  # while the sources resolve
            try:
                # Every app is checked first, and every base image it needs provided:
                # a base image that cannot be had stops the run before any build.
                self.checks = {name: pool.submit(self.check, name) for name in pending}
                wait(list(self.checks.values()))
                self.provide_bases()
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
                if self.engine is not None:
                    # A build that prints nothing would otherwise run to its end.
                    self.engine.cancel()
                fetchers.shutdown(wait=False, cancel_futures=True)
                ctx.renderers.close()  # a render in progress stops now
                for name in running.values():
                    self.on_event(
                        Event(app=name, phase=Phase.SKIPPED, message="interrupted: stopping")
                    )
                for check in self.checks.values():
                    check.cancel()
                for future in running:
                    future.cancel()
                wait(list(self.checks.values()))
                wait(list(running))
                for future, name in running.items():
                    if not future.cancelled() and future.exception() is None:
                        results[name] = future.result()
                # Every app gets a line in the summary: those never begun as not started.
                unstarted = {*pending, *(n for f, n in running.items() if f.cancelled())}
                for name in ctx.order:
                    if name in unstarted:
                        results[name] = AppResult(app=name, outcome=Outcome.NOT_STARTED)
                    elif name not in results:
                        results[name] = AppResult(
                            app=name, outcome=Outcome.SKIPPED, message="interrupted"
                        )
        ordered = [results[n] for n in ctx.order if n in results]
        return AdoptResult(
            region=ctx.region_model.name,
            workspace=ctx.workspace,
            results=ordered,
            interrupted=interrupted,
        )

    def _guarded(self, name: str) -> AppResult:
        interrupted = AppResult(app=name, outcome=Outcome.SKIPPED, message="interrupted")
        try:
            return self.adopt_one(name)
        except (_Cancelled, CancelledError):  # CancelledError: its fetch was called off
            return interrupted
        except SmartshareError as exc:
            if self.cancel.is_set():  # a build or push the interrupt cut short
                return interrupted
            self.on_event(Event(app=name, phase=Phase.FAILED, message=exc.message))
            return AppResult(
                app=name, outcome=Outcome.FAILED, message=exc.message, hint=exc.hint, error=exc
            )
        except Exception as exc:  # an app's bug must not take the others down
            if self.cancel.is_set():
                return interrupted
            # Its text may quote anything, a rendered secret too: the type and
            # where it was raised are shown, never the text.
            message = f"internal error: {type(exc).__name__} (its message is withheld)"
            self.on_event(Event(app=name, phase=Phase.FAILED, message=message))
            stack = "".join(traceback.format_tb(exc.__traceback__))
            return AppResult(
                app=name,
                outcome=Outcome.FAILED,
                message=message,
                traceback=f"Traceback (most recent call last):\n{stack}{type(exc).__qualname__}",
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
    try:
        refuse_attention(ctx.lock, ctx.order, command="adopt")
        if build:
            from smartshare.building.engine import connect

            # Before the workspace is touched: no engine means nothing changes.
            engine = connect(docker_host=docker_host)
        ws.ensure_workspace(workspace)
        with ws.run_lock(workspace):
            ws.reset_scratch(workspace)
            ws.move_runtime_folders(workspace)
            ctx.key = ws.ensure_key(workspace)  # once, before workers hash runtime files with it
            ctx.lock = read_lock(workspace)
            region = ctx.region_model
            ctx.lock.region = LockedRegion(
                name=region.name,
                title=region.title,
                code=region.code,
                file=str(ctx.region.doc.path.resolve()),
                digest=region_digest(ctx.region.doc.text),
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
        ctx.close()
        if engine is not None:
            engine.close()
