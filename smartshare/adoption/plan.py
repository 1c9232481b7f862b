"""``plan``: what ``adopt`` would do, in order, without doing it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.adoption.assess import FETCH_WORKERS, Assessment, assess, resolve_sources
from smartshare.adoption.request import Context, prepare
from smartshare.catalog.diagnostics import redact_userinfo
from smartshare.fetching.urls import redact_url
from smartshare.state import workspace as ws

if TYPE_CHECKING:
    from smartshare.adoption.bases import BaseImage

# plan asks the engine only which base images it has: a dead endpoint must not hold it up.
_ENGINE_PROBE_S = 10


@dataclass(frozen=True)
class PlanBase:
    """A base image of an image to build, and where the build will have it from."""

    image: str  # the app's image
    name: str  # as the Dockerfile names it
    reference: str  # normalised
    source: str  # pulled from when the engine lacks it (a mirror's reference, or reference)
    local: bool | None  # the engine has it already; None: no engine answered

    @property
    def mirrored(self) -> bool:
        return self.source != self.reference

    def describe(self) -> str:
        if self.local:
            return f"{self.name}: in the engine"
        origin = "its mirror" if self.mirrored else "its registry"
        unknown = " (if the engine lacks it)" if self.local is None else ""
        return f"{self.name}: pulled from {origin}, {self.source}{unknown}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            "reference": self.reference,
            "from": "local" if self.local else self.source,
            "mirrored": self.mirrored,
            "local": self.local,
        }


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
    bases: list[PlanBase] = field(default_factory=list)  # of the images to build

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
            "bases": [b.as_dict() for b in self.bases],
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
    bases = base_sources(ctx, assessments)
    for name, result in zip(ctx.order, assessments, strict=True):
        found, problem = bases.get(name, ([], None))
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
                reasons=result.reasons + ([problem] if problem else []),
                bases=found,
            )
        )
    return Plan(
        region=ctx.region_model.name,
        workspace=workspace,
        entries=entries,
        external=external_requirements(ctx),
    )


def base_sources(
    ctx: Context, assessments: Sequence[Assessment]
) -> dict[str, tuple[list[PlanBase], str | None]]:
    """Per app to build: its images' base images and where each comes from, or why not known.

    Whether the engine has one is asked only when an engine answers (plan
    needs none); nothing is pulled.
    """
    from smartshare.adoption.bases import image_bases
    from smartshare.errors import SmartshareError

    wanted: dict[str, tuple[list[BaseImage], str | None]] = {}
    for result in assessments:
        if not result.build:
            continue
        try:
            wanted[result.app.name] = (image_bases(ctx, result), None)
        except SmartshareError as exc:
            wanted[result.app.name] = ([], f"base images: {exc.message}")
    if not any(found for found, _ in wanted.values()):
        return {name: ([], problem) for name, (_, problem) in wanted.items()}
    local = _engine_has(b.name for found, _ in wanted.values() for b in found)
    return {
        name: (
            [
                PlanBase(
                    image=b.image,
                    name=b.name,
                    reference=b.reference,
                    source=b.source,
                    local=local.get(b.name) if local is not None else None,
                )
                for b in found
            ],
            problem,
        )
        for name, (found, problem) in wanted.items()
    }


def _engine_has(names: Iterable[str]) -> dict[str, bool] | None:
    """Which of ``names`` the Docker engine has; None when no engine answers."""
    from smartshare.building.engine import connect
    from smartshare.errors import EngineUnavailableError

    try:
        engine = connect(timeout=_ENGINE_PROBE_S)
    except EngineUnavailableError:
        return None
    try:
        return {name: engine.image_id(name) is not None for name in dict.fromkeys(names)}
    except EngineUnavailableError:
        return None
    finally:
        engine.close()


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
