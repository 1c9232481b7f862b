"""Check a catalogue across its files, and locate every problem: what ``validate`` runs.

Single-file checks (YAML, types, patterns, unknown keys) happen while loading
(:mod:`.yamlfile`, :mod:`.models`, :mod:`.load`); the checks that need more
than one file are here and in the modules beside it:

- each app's own problems (:mod:`.own_checks`: licence, templates, runtime),
  which depend on the manifest and the files under templates/ it reads, and
  are kept between runs (:class:`.own_checks.OwnChecks`);
- templates and build arguments against the app's parameters
  (:mod:`.template_checks`), without rendering;
- ``requires`` and dependency cycles (here), ``requires.A.X`` in templates
  and runtime text against the required app's outputs
  (:func:`.template_checks.check_template_requires`,
  :func:`.runtime_checks.check_runtime_references`), runtimes and stack names
  (:mod:`.runtime_checks`), images two apps would push to (:mod:`.tags`);
- region profiles against the apps they give values and files to
  (:mod:`.region_checks`, :mod:`.runtime_checks` for ``deploy``).

This module decides which files are checked against which catalogue and runs
the checks.  Each template file is parsed once
(:class:`smartshare.rendering.analysis.TemplateAnalyser` caches by file, and by
content given a memo), so validating a thousand manifests that share templates
costs little more than loading them.  Locations are computed only for the
problems found.  The cache between runs, parallel cold runs and
``--changed-since`` are :mod:`smartshare.validation`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.catalog.diagnostics import Problem, ValidationReport, did_you_mean
from smartshare.catalog.graph import cycle_problem, cycles
from smartshare.catalog.load import (
    Catalog,
    LoadedFile,
    Loading,
    iter_yaml_files,
    load_catalog,
    load_file,
)
from smartshare.catalog.location import display_path
from smartshare.catalog.models import AppManifest
from smartshare.catalog.own_checks import OwnChecks, own_problems
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.region_checks import check_region, check_region_assets
from smartshare.catalog.runtime_checks import (
    check_region_deploy,
    check_runtime_references,
    check_stack_names,
)
from smartshare.catalog.tags import repository_clashes
from smartshare.catalog.template_checks import check_template_requires, required_outputs
from smartshare.errors import CatalogNotFoundError
from smartshare.rendering.analysis import TemplateAnalyser

if TYPE_CHECKING:
    from smartshare.cache import ContentMemo

__all__ = ["Memos", "ValidationReport", "tools", "validate", "validate_loaded"]


@dataclass(frozen=True)
class Memos:
    """What a validation may take from earlier runs, by content (see :mod:`smartshare.cache`).

    ``documents``: YAML data of app manifests, by the file's bytes;
    ``analyses``: template analyses, by the template's text; ``own``: each
    app's own problems (:class:`OwnChecks`); ``listed``: digests of the
    catalogue's template files, when the caller has read them already.
    Read already too: ``contents``, manifests' bytes by path, ``loaded``,
    manifests loaded from those bytes, and ``manifests``, the files under
    ``manifests/`` (:func:`load_catalog`'s ``listed``).
    """

    documents: ContentMemo | None = None
    analyses: ContentMemo | None = None
    own: ContentMemo | None = None
    listed: Mapping[str, str] | None = None
    contents: Mapping[Path, bytes] | None = None
    loaded: Mapping[Path, Loading] | None = None
    manifests: Sequence[Path] | None = None


def validate(
    *, catalog_root: Path, paths: Sequence[Path] = (), memos: Memos | None = None
) -> ValidationReport:
    """Validate the catalogue at ``catalog_root``, or only the files in ``paths``.

    Without ``paths`` every file under ``catalog_root/manifests`` is checked.
    With ``paths`` (files, or folders scanned recursively for ``*.yaml`` and
    ``*.yml``; a folder that is itself a catalogue is scanned in its
    ``manifests/`` only), only those files and the templates they use are
    reported on; a file given twice counts once.

    Which catalogue a given file belongs to, one simple rule: a file inside
    ``<dir>/manifests/`` where ``<dir>`` also has a ``templates/`` folder
    belongs to the nearest such ``<dir>`` (its own catalogue); any other file
    belongs to ``catalog_root``.  A file's ``requires``, its region app and
    parameter references and its templates are resolved in its catalogue
    (``<catalogue>/manifests`` plus the given files of that catalogue), and
    its templates are looked up in ``<catalogue>/templates``.  So a copy of
    another region's catalogue can be validated without clashing with the
    bundled one, and a loose file is checked against ``catalog_root``.

    ``memos``: what earlier runs computed (:class:`Memos`); without them
    everything is computed.
    """
    memos = memos or Memos()
    if not paths and not (catalog_root / "manifests").is_dir():
        raise CatalogNotFoundError(
            f"no catalogue at {catalog_root}: it has no manifests/ folder",
            hint="pass --catalog DIR, a folder holding manifests/ and templates/",
        )
    if not paths:
        # Everything loaded is reported on: no need to sort files into catalogues.
        catalog = load_catalog(
            catalog_root,
            documents=memos.documents,
            contents=memos.contents,
            loaded=memos.loaded,
            listed=memos.manifests,
        )
        problems = set(catalog.problems)
        apps = [*catalog.apps.values(), *catalog.partial_apps.values()]
        apps += catalog.version_files()  # older versions stay usable: checked alike
        regions = [*catalog.regions.values(), *catalog.partial_regions]
        analyser, own = tools(catalog, memos)
        problems.update(_check_loaded(catalog, apps, regions, analyser, own))
        # Each file was either loaded into the catalogue or has a problem.
        seen = {f.doc.display for f in catalog.apps.values()}
        seen.update(f.doc.display for f in catalog.regions.values())
        seen.update(f.doc.display for f in catalog.version_files())
        seen.update(p.file for p in catalog.problems)
        return ValidationReport(problems=sorted(problems), files_checked=len(seen))
    files = _given_files(paths)
    base = catalog_root.resolve()
    groups: dict[Path, list[Path]] = {}
    for path in files:
        groups.setdefault(_own_catalogue(path) or base, []).append(path)
    problems = set()
    for root, given in groups.items():
        catalog = load_catalog(root, extra_files=given, documents=memos.documents)
        unlisted = Memos(memos.documents, memos.analyses, memos.own)
        problems.update(_validate_group(catalog, given, *tools(catalog, unlisted)))
    return ValidationReport(problems=sorted(problems), files_checked=len(files))


def validate_loaded(
    catalog: Catalog,
    files: Sequence[Path],
    *,
    analyser: TemplateAnalyser | None,
    own: OwnChecks | None = None,
) -> ValidationReport:
    """Validate ``files`` of an already loaded ``catalog`` (all of them inside it).

    ``analyser`` and ``own``: as :func:`tools` makes them for ``catalog``.
    """
    problems = _validate_group(catalog, list(files), analyser, own)
    return ValidationReport(problems=sorted(set(problems)), files_checked=len(files))


def tools(catalog: Catalog, memos: Memos) -> tuple[TemplateAnalyser | None, OwnChecks | None]:
    """The template analyser of ``catalog`` (None without templates/) and its own-problem memo."""
    templates_dir = catalog.templates_dir
    if not templates_dir.is_dir():
        return None, None
    analyser = TemplateAnalyser(templates_dir, memo=memos.analyses)
    own = None
    if memos.own is not None:
        own = OwnChecks(memos.own, templates_dir, listed=memos.listed)
    return analyser, own


def _is_catalogue(folder: Path) -> bool:
    return (folder / "manifests").is_dir() and (folder / "templates").is_dir()


def _own_catalogue(path: Path) -> Path | None:
    """The nearest ``<dir>`` holding the file under ``<dir>/manifests`` and having templates/."""
    for parent in path.resolve().parents:
        if parent.name == "manifests" and (parent.parent / "templates").is_dir():
            return parent.parent
    return None


def _given_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named by ``paths``, each once, in the order given."""
    expanded = [p / "manifests" if p.is_dir() and _is_catalogue(p) else p for p in paths]
    seen: set[Path] = set()
    files: list[Path] = []
    for path in iter_yaml_files(expanded):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)
    return files


def _validate_group(
    catalog: Catalog,
    given: list[Path],
    analyser: TemplateAnalyser | None,
    own: OwnChecks | None = None,
) -> list[Problem]:
    # Files are told apart by identity (device, inode): however each is
    # spelt or linked to, one stat each, where resolving a path costs ten.
    wanted = {key: path for path in given if (key := _identity(path)) is not None}
    shown = {display_path(path) for path in given}
    problems = [p for p in catalog.problems if p.file in shown]

    apps: list[LoadedFile[AppManifest]] = []
    regions: list[LoadedFile[RegionProfile]] = []
    found: set[tuple[int, int]] = set()
    for app in [*catalog.apps.values(), *catalog.partial_apps.values()]:
        key = _identity(app.doc.path)
        if key in wanted:
            apps.append(app)
            found.add(key)
    for region in [*catalog.regions.values(), *catalog.partial_regions]:
        key = _identity(region.doc.path)
        if key in wanted:
            regions.append(region)
            found.add(key)
    for key, path in wanted.items():
        if key in found:
            continue
        # Loaded but not in the catalogue: a duplicate name (already reported).
        # Its other checks still run; files that failed to load are skipped.
        loaded, _ = load_file(path)
        if loaded is not None and isinstance(loaded.model, AppManifest):
            apps.append(loaded)
        elif loaded is not None and isinstance(loaded.model, RegionProfile):
            regions.append(loaded)

    problems.extend(_check_loaded(catalog, apps, regions, analyser, own))
    return problems


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_loaded(
    catalog: Catalog,
    apps: Iterable[LoadedFile[AppManifest]],
    regions: Iterable[LoadedFile[RegionProfile]],
    analyser: TemplateAnalyser | None,
    own: OwnChecks | None = None,
) -> list[Problem]:
    """The checks that need the whole catalogue, for the given apps and regions.

    A file that does not validate gets the checks whose fields are intact
    (LoadedFile.has): all its independent problems come in one run.  ``own``
    keeps each app's own problems (:func:`own_problems`) between runs.
    """
    problems: list[Problem] = []
    on_cycles = cycles(catalog)
    apps = list(apps)
    for app in apps:
        if app.has("requires"):
            problems.extend(_check_requires(app, catalog, on_cycles))
        mine = own.get(app) if own is not None else None
        if mine is None:
            if own is None or analyser is None:
                mine = own_problems(app, catalog.templates_dir, analyser)
            else:
                with analyser.recording() as read:
                    mine = own_problems(app, catalog.templates_dir, analyser)
                    own.put(app, mine, analyser, read)
        problems.extend(mine)
        # Not cached with the app's own problems: they read the required apps' outputs.
        if app.has("runtime", "requires"):
            problems.extend(check_runtime_references(app, catalog))
        if analyser is not None and app.has("templates", "requires") and app.model.requires:
            uses = own.required_outputs(app) if own is not None else None
            if uses is None:
                uses = required_outputs(app, analyser)
            problems.extend(
                check_template_requires(
                    app=app, catalog=catalog, uses=uses, templates_dir=catalog.templates_dir
                )
            )
    shown = {app.doc.display for app in apps if app.has("runtime")}
    problems.extend(p for p in check_stack_names(catalog.apps.values()) if p.file in shown)
    loaded = [*catalog.apps.values(), *catalog.partial_apps.values()]
    known = {id(app) for app in loaded}
    claimants = loaded + [app for app in apps if id(app) not in known]
    problems.extend(
        repository_clashes(
            [app for app in claimants if app.has("images")],
            report=[app for app in apps if app.has("images")],
        )
    )
    for region in regions:
        if region.has("apps"):
            problems.extend(check_region(region=region, catalog=catalog))
        if region.has("deploy"):
            problems.extend(check_region_deploy(region=region, catalog=catalog))
        if region.has("apps", "assets", "branding"):
            problems.extend(check_region_assets(region=region, catalog=catalog))
        if region.has("apps"):
            from smartshare.catalog.patches import check_region_patches

            problems.extend(check_region_patches(region=region))
    return problems


# -- requires ------------------------------------------------------------------


def _check_requires(
    app: LoadedFile[AppManifest], catalog: Catalog, on_cycles: dict[tuple[str, int], list[str]]
) -> list[Problem]:
    problems: list[Problem] = []
    model = app.model
    for index, needed in enumerate(model.requires):
        if catalog.any_app(needed) is None:
            problems.append(
                app.doc.problem(
                    ("requires", index),
                    f"requires '{needed}', which is not an app of the catalogue"
                    + did_you_mean(needed, catalog.apps),
                )
            )
        elif catalog.apps.get(model.name) is app and (model.name, index) in on_cycles:
            problems.append(
                cycle_problem(catalog, model.name, index, on_cycles[(model.name, index)])
            )
    return problems
