"""``upgrade``: move adopted apps to a newer version, keeping the region's patches and hand edits.

An upgrade is an adoption run (:mod:`smartshare.adoption.runner`) whose apps
are prepared differently in their scratch space: the new source gets the
region's patches three ways, and each rendered file is merged with the hand
edits on disk against the baseline the last adoption kept
(:mod:`smartshare.state.baseline`), never by rendering the old version again.
As with adopt, an app is swapped in and recorded only when every step
succeeded (build and push included): a conflict, a failed build or Ctrl-C
leaves it on its old version, and running the upgrade again finishes it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.adoption.events import EventSink, Outcome, all_on_input
from smartshare.adoption.runner import _Runner
from smartshare.catalog.models import TemplateTarget
from smartshare.errors import InvalidInputError, SmartshareError, UsageError
from smartshare.state import baseline, history
from smartshare.state import workspace as ws
from smartshare.state.lockfile import (
    Lock,
    LockedApp,
    LockedAttention,
    read_lock,
    refuse_attention,
    write_lock,
)
from smartshare.upgrading.steps import (
    AppUpgrade,
    UpgradeOutcome,
    conflict_error,
    contents_to_write,
    is_current,
    keep_resolution,
    merge_files,
    new_report,
)

if TYPE_CHECKING:
    from smartshare.adoption.assess import Assessment, RenderedFile
    from smartshare.adoption.request import Context
    from smartshare.building.engine import DockerEngine
    from smartshare.state.lockfile import LockedImage

CONFLICT_CHOICES = ("fail", "markers")


@dataclass(frozen=True)
class UpgradeResult:
    region: str
    workspace: Path
    apps: list[AppUpgrade]
    dry_run: bool = False
    interrupted: bool = False

    @property
    def failed(self) -> list[AppUpgrade]:
        bad = (UpgradeOutcome.FAILED, UpgradeOutcome.SKIPPED, UpgradeOutcome.NOT_STARTED)
        return [a for a in self.apps if a.outcome in bad]

    @property
    def failed_on_input(self) -> bool:
        return all_on_input([a.error for a in self.apps if a.outcome == UpgradeOutcome.FAILED])

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "workspace": str(self.workspace),
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "apps": [a.as_dict() for a in self.apps],
        }


class _Upgrader(_Runner):
    def __init__(
        self,
        ctx: Context,
        engine: DockerEngine | None,
        on_event: EventSink,
        *,
        targets: Sequence[str],
        markers: bool,
        resolving: bool,
    ) -> None:
        super().__init__(ctx, engine, on_event)
        self.targets = set(targets)
        self.markers = markers
        self.resolving = resolving
        self.reports: dict[str, AppUpgrade] = {}
        self.written: dict[str, dict[tuple[str, TemplateTarget], bytes]] = {}

    def check(self, name: str) -> Assessment:
        if name in self.ctx.value_errors:  # a new required parameter without a value
            raise self.ctx.value_errors[name]
        assessment = super().check(name)
        entry = self.ctx.lock.apps[name]
        if name not in self.targets:
            # An app it requires: read for its outputs, left as it is.
            assessment.sync = assessment.build = assessment.push = False
            return assessment
        report = new_report(assessment, entry)
        self.reports[name] = report
        if self.resolving:
            assessment.reasons[:] = ["conflicts resolved"]
        elif is_current(assessment, entry):  # hand edits are the region's: no reason
            report.outcome = UpgradeOutcome.UP_TO_DATE
            assessment.sync = assessment.build = assessment.push = False
            return assessment
        else:
            assessment.reasons[:] = [f"{entry.version} -> {assessment.app.version}"]
        assessment.sync = True
        assessment.build = self.ctx.build
        assessment.push = self.ctx.push
        return assessment

    def _materialise(
        self, assessment: Assessment, scratch: Path, entry: LockedApp | None
    ) -> list[LockedImage]:
        if not self.resolving:
            return super()._materialise(assessment, scratch, entry)
        # The files as the user resolved them: copied, built, recorded.
        name = assessment.app.name
        shutil.copytree(ws.src_dir(self.ctx.workspace, name), scratch / "src", symlinks=True)
        images = self._build_and_push(assessment, scratch / "src", entry)
        runtime = ws.runtime_dir(self.ctx.workspace, name)
        if runtime.is_dir():
            shutil.copytree(runtime, scratch / "runtime", symlinks=True)
        else:
            (scratch / "runtime").mkdir(mode=0o700)
        return images

    def _patch(self, assessment: Assessment, scratch: Path) -> None:
        patched = self._apply_patches(
            assessment, scratch, three_way=True, keep_conflicts=self.markers
        )
        self.reports[assessment.app.name].patch_conflicts = patched.conflicts

    def _contents(
        self, assessment: Assessment, files: list[RenderedFile], scratch: Path
    ) -> dict[tuple[str, TemplateTarget], bytes]:
        name = assessment.app.name
        report = self.reports[name]
        report.files = merge_files(
            workspace=self.ctx.workspace,
            entry=self.ctx.lock.apps[name],
            name=name,
            files=files,
            scratch=scratch / "merge",
            git_dir=assessment.resolved.mirror,
        )
        if report.conflicts and not self.markers:
            raise conflict_error(report)
        self.written[name] = contents_to_write(report.files)
        return self.written[name]

    def _build_and_push(
        self, assessment: Assessment, source_dir: Path, entry: LockedApp | None
    ) -> list[LockedImage]:
        if self.reports[assessment.app.name].conflicts and not self.resolving:
            # Markers are no source to build: the images wait for --resolved.
            return [i.model_copy(deep=True) for i in entry.images] if entry else []
        return super()._build_and_push(assessment, source_dir, entry)

    def _record(
        self, assessment: Assessment, images: list[LockedImage], entry: LockedApp | None
    ) -> None:
        from smartshare.adoption.record import keep_baseline, locked_entry

        assert entry is not None
        name = assessment.app.name
        report = self.reports[name]
        locked = locked_entry(self.ctx, assessment, images, entry, region_digest=self.region_digest)
        if self.resolving:
            # The upgrade's rendering stays the base of the next merge; the files as
            # resolved are what this adoption wrote.
            locked.tree_digest = entry.tree_digest
            keep_resolution(self.ctx.workspace, name, entry, locked, assessment.patches)
            report.outcome = UpgradeOutcome.RESOLVED
        else:
            report.outcome = UpgradeOutcome.UPGRADED
            if report.conflicts:
                report.outcome = UpgradeOutcome.NEEDS_ATTENTION
                locked.built = False
                locked.attention = LockedAttention(
                    from_version=report.from_version,
                    to_version=report.to_version,
                    files=[
                        f"{f.target}:{f.dest}" for f in report.files if f.result.value == "conflict"
                    ],
                    patches=[c.patch for c in report.patch_conflicts],
                    source_files=[p for c in report.patch_conflicts for p in c.files],
                    since=locked.adopted_at,
                )
            # After the attention: its record says so (no rollback returns to it).
            keep_baseline(self.ctx, assessment, locked, written=self.written.get(name))
        dropped = history.succeed(entry, locked)
        with self.lock_mutex:
            self.ctx.lock.apps[name] = locked
            write_lock(self.ctx.workspace, self.ctx.lock)
        history.prune(self.ctx.workspace, name, dropped)


def upgrade(
    *,
    apps: Sequence[str] = (),
    region_file: Path,
    workspace: Path,
    catalog_root: Path | None = None,
    to: str | None = None,
    dry_run: bool = False,
    conflict: str = "fail",
    resolved: bool = False,
    build: bool = True,
    push: bool = False,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    docker_host: str | None = None,
    on_event: EventSink | None = None,
) -> UpgradeResult:
    """Upgrade ``apps`` (default: every adopted app) in ``workspace`` to the catalogue's version."""
    from smartshare.adoption.request import prepare

    if conflict not in CONFLICT_CHOICES:
        raise UsageError(f"--conflict {conflict!r}: choose fail or markers")
    if resolved and (dry_run or to is not None):
        raise UsageError("--resolved records a resolution: it takes neither --dry-run nor --to")
    pinned = [name for name in apps if "@" in name]
    if pinned:
        raise UsageError(
            f"{pinned[0]!r}: upgrade takes the version with --to",
            hint="e.g. smartshare upgrade laksa --to 2.4.0 --region FILE --workspace DIR",
        )
    lock = read_lock(workspace)
    names = list(dict.fromkeys(apps)) or sorted(lock.apps)
    if not names:
        raise UsageError(
            f"{workspace} holds no adopted apps",
            hint="adopt apps first: smartshare adopt APP --region FILE --workspace DIR",
        )
    _check_upgradable(lock.apps, names, workspace=workspace, resolved=resolved)
    ctx = prepare(
        apps=names,
        all_apps=False,
        region_file=region_file,
        workspace=workspace,
        catalog_root=catalog_root,
        overrides=(),
        build=build and not dry_run,
        push=push and not dry_run,
        force=False,
        cache_dir=cache_dir,
        versions=dict.fromkeys(names, to) if to is not None else None,
        per_app_values=True,
    )
    missing = [n for n in ctx.order if n not in lock.apps]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} (required) is not adopted in {workspace}",
            hint=f"adopt it first: smartshare adopt {' '.join(missing)} --region FILE "
            "--workspace DIR",
        )
    try:
        if dry_run:
            from smartshare.upgrading.dryrun import dry_run_upgrade

            reports = dry_run_upgrade(ctx, names, markers=conflict == "markers")
            return UpgradeResult(
                region=ctx.region_model.name, workspace=workspace, apps=reports, dry_run=True
            )
        return _run(ctx, names, conflict, resolved, jobs, docker_host, on_event)
    finally:
        ctx.close()


def _check_upgradable(
    entries: dict[str, LockedApp], names: Sequence[str], *, workspace: Path, resolved: bool
) -> None:
    for name in names:
        entry = entries.get(name)
        if entry is None:
            raise UsageError(
                f"'{name}' is not adopted in {workspace}: there is nothing to upgrade",
                hint=f"adopt it: smartshare adopt {name} --region FILE --workspace DIR",
            )
        if resolved:
            if entry.attention is None:
                raise UsageError(f"'{name}' does not need attention: nothing to resolve")
            _check_resolved(workspace, name, entry.attention)
            continue
        if entry.attention is not None:
            refuse_attention(Lock(apps={name: entry}), [name], command="upgrade")
        if not baseline.has_baseline(workspace, name, entry.adoption_id):
            raise UsageError(
                f"'{name}' was adopted before smartshare kept baselines: an upgrade has no "
                "record of what was rendered to merge hand edits against",
                hint=f"run 'smartshare adopt {name} --region FILE --workspace DIR' once (it "
                "keeps the files and hand edits as they are when nothing changed, and records "
                "the baseline), then upgrade",
            )


def _check_resolved(workspace: Path, name: str, attention: LockedAttention) -> None:
    """InvalidInputError naming the files of ``name`` that still hold conflict markers."""
    from smartshare.state.safefs import confined_path
    from smartshare.upgrading.merge import has_markers

    places = [
        (
            ws.runtime_dir(workspace, name) if target == "runtime" else ws.src_dir(workspace, name),
            dest,
            f"{target}:{dest}",
        )
        for target, _, dest in (item.partition(":") for item in attention.files)
    ] + [(ws.src_dir(workspace, name), path, f"source:{path}") for path in attention.source_files]
    left = []
    for root, dest, shown in places:
        try:
            if has_markers(confined_path(root, dest).read_bytes()):
                left.append(shown)
        except (OSError, SmartshareError):
            continue  # gone: nothing left to resolve there
    if left:
        raise InvalidInputError(
            f"'{name}': conflict markers are left in {', '.join(left)}",
            hint="edit them out, then run --resolved again",
        )


def _run(
    ctx: Context,
    names: list[str],
    conflict: str,
    resolved: bool,
    jobs: int | None,
    docker_host: str | None,
    on_event: EventSink | None,
) -> UpgradeResult:
    engine: DockerEngine | None = None
    workspace = ctx.workspace
    try:
        if ctx.build:
            from smartshare.building.engine import connect

            engine = connect(docker_host=docker_host)
        with ws.run_lock(workspace):
            ws.reset_scratch(workspace)
            ctx.key = ws.ensure_key(workspace)
            ctx.lock = read_lock(workspace)
            upgrader = _Upgrader(
                ctx,
                engine,
                on_event or (lambda event: None),
                targets=names,
                markers=conflict == "markers",
                resolving=resolved,
            )
            result = upgrader.run(max(1, jobs or os.cpu_count() or 1), fail_fast=False)
            if not result.interrupted:
                with upgrader.lock_mutex:
                    write_lock(workspace, ctx.lock)
    finally:
        if engine is not None:
            engine.close()
    reports = []
    for outcome in result.results:
        if outcome.app not in upgrader.targets:
            continue
        entry = ctx.lock.apps[outcome.app]
        report = upgrader.reports.get(outcome.app) or AppUpgrade(
            app=outcome.app,
            from_version=entry.version,
            to_version=ctx.catalog.app(outcome.app).version,
            from_commit=entry.source.commit,
        )
        if outcome.outcome in (Outcome.FAILED, Outcome.SKIPPED, Outcome.NOT_STARTED):
            report.outcome = {
                Outcome.FAILED: UpgradeOutcome.FAILED,
                Outcome.SKIPPED: UpgradeOutcome.SKIPPED,
                Outcome.NOT_STARTED: UpgradeOutcome.NOT_STARTED,
            }[outcome.outcome]
            report.message, report.hint, report.error = outcome.message, outcome.hint, outcome.error
        elif outcome.outcome is Outcome.UP_TO_DATE:
            report.outcome = UpgradeOutcome.UP_TO_DATE
        reports.append(report)
    return UpgradeResult(
        region=ctx.region_model.name,
        workspace=workspace,
        apps=reports,
        interrupted=result.interrupted,
    )
