"""``plan``: what ``adopt`` would do, in order, without doing it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartshare.adoption.assess import FETCH_WORKERS, Assessment, assess, resolve_sources
from smartshare.adoption.request import prepare
from smartshare.fetching.urls import redact_url
from smartshare.state import workspace as ws


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
    try:
        with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as fetchers:
            sources = resolve_sources(ctx, ctx.order, fetchers)
            assessments = [assess(ctx, name, resolved=sources[name].result()) for name in ctx.order]
    finally:
        ctx.close()
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
