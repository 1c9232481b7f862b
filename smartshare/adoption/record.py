"""What adopting an app records: its lock entry, and the baseline of what it rendered.

The baseline (:mod:`smartshare.state.baseline`) keeps the rendered files as
rendered, so that an upgrade can merge the region's hand edits without
rendering the old version again.  It is written before the lock names it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from smartshare import __version__
from smartshare.adoption.assess import Assessment, RenderedFile, templated_args
from smartshare.fetching.urls import redact_url
from smartshare.state import baseline
from smartshare.state.lockfile import (
    LockedApp,
    LockedBuild,
    LockedFile,
    LockedImage,
    LockedPatch,
    LockedSource,
)

if TYPE_CHECKING:
    from smartshare.adoption.request import Context
    from smartshare.catalog.models import TemplateTarget


def locked_entry(
    ctx: Context,
    assessment: Assessment,
    images: list[LockedImage],
    entry: LockedApp | None,
    *,
    region_digest: str | None,
) -> LockedApp:
    """The lock's entry for ``assessment`` once materialised (``images`` as built or kept)."""
    built = ctx.build or bool(entry and entry.built and entry.build_key == assessment.build_key)
    if not ctx.build and entry is not None and entry.build_key == assessment.build_key:
        images = entry.images
    now = datetime.now(UTC)
    return LockedApp(
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
        adopted_at=now.isoformat(timespec="seconds"),
        smartshare_version=__version__,
        region_digest=region_digest,
        # The arguments that were rendered (the others are the manifest's).
        build_args={name: assessment.build_args[name] for name in templated_args(assessment.app)},
        build=(
            LockedBuild(network=ctx.build_env.network or "default", args=ctx.build_env.record())
            if assessment.build and ctx.build_env is not None
            else (entry.build if entry is not None and built else None)
        ),
        patches=[LockedPatch(path=p.name, digest=p.digest) for p in assessment.patches],
        tree_digest=assessment.tree_digest,
        adoption_id=baseline.new_adoption_id(now),
    )


def keep_baseline(
    ctx: Context,
    assessment: Assessment,
    locked: LockedApp,
    *,
    written: dict[tuple[str, TemplateTarget], bytes] | None = None,
) -> None:
    """Write the baseline ``locked.adoption_id`` names: the files as rendered (contents known).

    ``written``: what was written of each file, where an upgrade merged hand edits.
    """
    assert locked.adoption_id is not None
    baseline.write_baseline(
        ctx.workspace,
        adoption_id=locked.adoption_id,
        app=assessment.app.name,
        entry=locked,
        manifest=assessment.app.model_dump(mode="json", by_alias=True),
        files=[(f.target.value, f.dest, _content(f)) for f in assessment.files],
        written=[(target.value, dest, data) for (dest, target), data in (written or {}).items()],
        patches=[p.content for p in assessment.patches],
    )


def _content(rendered: RenderedFile) -> bytes:
    assert rendered.content is not None
    return rendered.content


def ensure_baseline(ctx: Context, assessment: Assessment, entry: LockedApp) -> LockedApp | None:
    """Give an up-to-date app adopted before baselines existed its baseline, now.

    Its files are rendered again (nothing is written into the app); kept only
    when they are the very files the lock records.  Returns the entry to
    record instead of ``entry`` (with its ``adoption_id``), or None.
    """
    if baseline.has_baseline(ctx.workspace, assessment.app.name, entry.adoption_id):
        return None
    from smartshare.adoption.assess import rendered_contents
    from smartshare.fetching.patching import source_tree_digest

    files = rendered_contents(ctx, assessment)
    recorded = {(f.dest, f.target): f.digest for f in entry.files}
    if {(f.dest, f.target.value): f.digest for f in files} != recorded:
        return None
    tree = entry.tree_digest
    if tree is None and not entry.patches:
        tree = source_tree_digest(assessment.resolved)
    kept = entry.model_copy(
        deep=True, update={"adoption_id": baseline.new_adoption_id(), "tree_digest": tree}
    )
    keep_baseline(ctx, assessment, kept)
    return kept
