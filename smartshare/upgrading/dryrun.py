"""``upgrade --dry-run``: per app, what an upgrade would change, writing nothing.

The new source is resolved (the git cache is refreshed, as ``plan`` does),
the new version rendered, and the files merged with the hand edits in a
private temporary folder that is removed afterwards: the app, the workspace
and the lock are left as they are.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.errors import SmartshareError
from smartshare.state import workspace as ws
from smartshare.upgrading.steps import (
    AppUpgrade,
    UpgradeOutcome,
    is_current,
    merge_files,
    new_report,
)

if TYPE_CHECKING:
    from smartshare.adoption.request import Context


def dry_run_upgrade(ctx: Context, names: Sequence[str], *, markers: bool) -> list[AppUpgrade]:
    """What upgrading ``names`` would do (``markers``: with --conflict markers)."""
    from smartshare.adoption.assess import FETCH_WORKERS, resolve_sources

    ctx.key = ws.read_key(ctx.workspace)
    with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as pool:
        sources = resolve_sources(ctx, list(names), pool)
        private = _private_tmp(ctx.workspace)
        try:
            return [
                _dry_run_app(ctx, name, sources[name], private / name, markers=markers)
                for name in names
            ]
        finally:
            shutil.rmtree(private, ignore_errors=True)


def _dry_run_app(
    ctx: Context, name: str, source: object, scratch: Path, *, markers: bool
) -> AppUpgrade:
    from concurrent.futures import Future

    from smartshare.adoption.assess import assess, rendered_contents
    from smartshare.fetching.export import export_tree
    from smartshare.fetching.patching import apply_patches, source_changes

    assert isinstance(source, Future)
    entry = ctx.lock.apps[name]
    report = AppUpgrade(
        app=name,
        from_version=entry.version,
        to_version=ctx.catalog.app(name).version,
        from_commit=entry.source.commit,
    )
    try:
        if name in ctx.value_errors:  # a new required parameter without a value
            raise ctx.value_errors[name]
        resolved = source.result()
        assessment = assess(ctx, name, resolved=resolved)
        report = new_report(assessment, entry)
        if is_current(assessment, entry):
            report.outcome = UpgradeOutcome.UP_TO_DATE
            return report
        report.source = source_changes(
            mirror=resolved.mirror, old=entry.source.commit, new=resolved.commit
        )
        scratch.mkdir(mode=0o700)
        if assessment.patches:
            export_tree(resolved=resolved, dest=scratch / "src")
            (scratch / "patching").mkdir(mode=0o700)
            patched = apply_patches(
                resolved=resolved,
                tree=scratch / "src",
                patches=assessment.patches,
                work=scratch / "patching",
                three_way=True,
                keep_conflicts=True,
            )
            report.patch_conflicts = patched.conflicts
        report.files = merge_files(
            workspace=ctx.workspace,
            entry=entry,
            name=name,
            files=rendered_contents(ctx, assessment),
            scratch=scratch / "merge",
            git_dir=resolved.mirror,
        )
        report.outcome = (
            UpgradeOutcome.WOULD_CONFLICT if report.conflicts else UpgradeOutcome.WOULD_UPGRADE
        )
        if report.conflicts and not markers:
            report.hint = "without --conflict markers the upgrade would stop this app"
    except SmartshareError as exc:
        report.outcome = UpgradeOutcome.FAILED
        report.message, report.hint, report.error = exc.message, exc.hint, exc
    return report


def _private_tmp(workspace: Path) -> Path:
    """A private folder (0700) for the merges: runtime files hold secrets."""
    parent = workspace / ws.INTERNAL
    if not parent.is_dir():
        parent = Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="upgrade-dry-", dir=parent))
