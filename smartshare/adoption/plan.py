"""``plan``: what ``adopt`` would do, in order, without doing it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartshare.adoption.assess import FETCH_WORKERS, Assessment, assess, resolve_sources
from smartshare.adoption.request import Context, prepare
from smartshare.catalog.diagnostics import redact_userinfo
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
class ExternalRequirement:
    """An app the run requires that the region runs itself: not adopted, its outputs given."""

    app: str
    required_by: list[str]
    outputs: dict[str, str]  # as the profile gives them (shown without credentials)

    def as_dict(self) -> dict[str, Any]:
        return {"app": self.app, "required_by": self.required_by, "outputs": self.outputs}


@dataclass(frozen=True)
class Plan:
    region: str
    workspace: Path
    entries: list[PlanEntry]
    external: list[ExternalRequirement] = field(default_factory=list)


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
    return Plan(
        region=ctx.region_model.name,
        workspace=workspace,
        entries=entries,
        external=external_requirements(ctx),
    )


def external_requirements(ctx: Context) -> list[ExternalRequirement]:
    """The apps of the run's ``requires`` that the region runs itself (its profile says so)."""
    given = ctx.region_model.external_outputs()
    needed: dict[str, list[str]] = {}
    for name in ctx.order:
        for dependency in ctx.catalog.app(name).requires:
            if dependency in given:
                needed.setdefault(dependency, []).append(name)
    return [
        ExternalRequirement(
            app=app,
            required_by=needed[app],
            outputs={key: redact_userinfo(value) for key, value in given[app].items()},
        )
        for app in sorted(needed)
    ]
