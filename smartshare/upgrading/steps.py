"""One app's upgrade, step by step: what changes, the merge of its files, and its report.

Used by the run (:mod:`.runner`) in scratch space and by ``--dry-run`` in a
private temporary folder; neither writes into the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.catalog.models import TemplateTarget
from smartshare.errors import ConflictError, SmartshareError
from smartshare.state import baseline
from smartshare.state import workspace as ws
from smartshare.upgrading.merge import FileResult, MergedFile, merge_file

if TYPE_CHECKING:
    from smartshare.adoption.assess import Assessment, RenderedFile
    from smartshare.catalog.patches import Patch
    from smartshare.fetching.patching import PatchConflict, SourceChanges
    from smartshare.state.lockfile import LockedApp


class UpgradeOutcome:
    UPGRADED = "upgraded"
    NEEDS_ATTENTION = "needs attention"  # upgraded, with conflict markers left (not built)
    RESOLVED = "resolved"  # --resolved: built from the files as the user left them
    UP_TO_DATE = "up to date"
    WOULD_UPGRADE = "would upgrade"  # --dry-run
    WOULD_CONFLICT = "would conflict"  # --dry-run, conflicts found
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_STARTED = "not started"


@dataclass
class AppUpgrade:
    """What an upgrade did (or, dry, would do) to one app."""

    app: str
    from_version: str
    to_version: str
    from_commit: str
    to_commit: str = ""
    outcome: str = UpgradeOutcome.NOT_STARTED
    source: SourceChanges | None = None
    files: list[MergedFile] = field(default_factory=list)
    params_added: list[str] = field(default_factory=list)
    params_removed: list[str] = field(default_factory=list)
    patches: list[str] = field(default_factory=list)
    patch_conflicts: list[PatchConflict] = field(default_factory=list)
    message: str = ""
    hint: str | None = None
    error: SmartshareError | None = None

    @property
    def conflicts(self) -> list[str]:
        """Every file left with (or, dry, that would get) conflict markers."""
        rendered = [f"{f.target}:{f.dest}" for f in self.files if f.result is FileResult.CONFLICT]
        source = [f"source:{p}" for c in self.patch_conflicts for p in c.files]
        return rendered + source

    def as_dict(self) -> dict[str, Any]:
        source = self.source
        return {
            "app": self.app,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "from_commit": self.from_commit,
            "to_commit": self.to_commit,
            "outcome": self.outcome,
            "source": None
            if source is None
            else {
                "changed": list(source.changed),
                "added": list(source.added),
                "removed": list(source.removed),
            },
            # Names and results only: runtime files hold secrets.
            "files": [
                {"dest": f.dest, "target": f.target, "result": f.result.value, "edited": f.edited}
                for f in self.files
            ],
            "parameters": {"added": self.params_added, "removed": self.params_removed},
            "patches": self.patches,
            "patch_conflicts": [
                {"patch": c.patch, "files": list(c.files)} for c in self.patch_conflicts
            ],
            "conflicts": self.conflicts,
            "message": self.message,
            "hint": self.hint,
        }


def new_report(assessment: Assessment, entry: LockedApp) -> AppUpgrade:
    """The report of upgrading ``entry`` to ``assessment``: versions, parameters, patches."""
    new = {p.name for p in assessment.app.parameters}
    return AppUpgrade(
        app=assessment.app.name,
        from_version=entry.version,
        to_version=assessment.app.version,
        from_commit=entry.source.commit,
        to_commit=assessment.resolved.commit,
        params_added=sorted(new - entry.values.keys()),
        params_removed=sorted(entry.values.keys() - new),
        patches=[p.name for p in assessment.patches],
    )


def is_current(assessment: Assessment, entry: LockedApp) -> bool:
    """Whether ``entry`` already is ``assessment``'s version, commit and manifest."""
    return (
        entry.version == assessment.app.version
        and entry.source.commit == assessment.resolved.commit
        and entry.manifest_digest == assessment.manifest_digest
    )


def merge_files(
    *,
    workspace: Path,
    entry: LockedApp,
    name: str,
    files: list[RenderedFile],
    scratch: Path,
    git_dir: Path,
) -> list[MergedFile]:
    """Each file of the old adoption and of the new rendering, merged with the disk's copy."""
    from smartshare.state.safefs import confined_path

    assert entry.adoption_id is not None
    roots = {
        "image": ws.src_dir(workspace, name),
        "runtime": ws.runtime_dir(workspace, name),
    }
    new = {(f.dest, f.target.value): f.content for f in files}
    old = {(f.dest, f.target) for f in entry.files}
    merged = []
    for dest, target in dict.fromkeys([*((f.dest, f.target) for f in entry.files), *new]):
        base = (
            baseline.read_file(workspace, name, entry.adoption_id, target, dest)
            if (dest, target) in old
            else None
        )
        try:
            ours: bytes | None = confined_path(roots[target], dest).read_bytes()
        except (OSError, SmartshareError):
            ours = None
        merged.append(
            merge_file(
                dest=dest,
                target=target,
                base=base,
                ours=ours,
                theirs=new.get((dest, target)),
                scratch=scratch,
                git_dir=git_dir,
            )
        )
    return merged


def contents_to_write(merged: list[MergedFile]) -> dict[tuple[str, TemplateTarget], bytes]:
    return {(m.dest, TemplateTarget(m.target)): m.content for m in merged if m.content is not None}


def conflict_error(report: AppUpgrade) -> ConflictError:
    """The error that stops an app whose files conflict (without --conflict markers)."""
    files = [f"{f.target} file {f.dest}" for f in report.files if f.result is FileResult.CONFLICT]
    return ConflictError(
        f"{report.app} {report.from_version} -> {report.to_version}: hand edits conflict with "
        f"the new version in {', '.join(files)}; the app stays on {report.from_version}",
        hint="edit the file back (or keep the edit out of those lines) and upgrade again, "
        "or upgrade with --conflict markers and resolve them by hand",
    )


def keep_resolution(
    workspace: Path, name: str, entry: LockedApp, locked: LockedApp, patches: list[Patch]
) -> None:
    """The baseline of ``upgrade --resolved``: the upgrade's rendering, the files as resolved."""
    from smartshare.state.safefs import confined_path

    assert entry.adoption_id is not None and locked.adoption_id is not None
    roots = {"image": ws.src_dir(workspace, name), "runtime": ws.runtime_dir(workspace, name)}
    rendered, written = [], []
    for f in entry.files:
        content = baseline.read_file(workspace, name, entry.adoption_id, f.target, f.dest)
        if content is None:
            continue
        rendered.append((f.target, f.dest, content))
        try:
            written.append((f.target, f.dest, confined_path(roots[f.target], f.dest).read_bytes()))
        except (OSError, SmartshareError):
            continue  # removed by hand: the rendering stands for it
    baseline.write_baseline(
        workspace,
        adoption_id=locked.adoption_id,
        app=name,
        entry=locked,
        manifest=baseline.read_record(workspace, name, entry.adoption_id).manifest,
        files=rendered,
        written=written,
        patches=[p.content for p in patches],
    )
