"""Check manifests, region profiles and templates, and locate every problem.

Single-file checks (YAML, types, patterns, unknown keys) happen while loading
(:mod:`.yamlfile`, :mod:`.models`, :mod:`.load`); this module adds the checks
that need more than one file: ``requires`` and dependency cycles, region
values against the app's parameters, and templates against the parameters
their app declares.

Templates are analysed, never rendered, and each template file is parsed once
(:class:`smartshare.rendering.analysis.TemplateAnalyser` caches by file, and by
content given a memo), so validating a thousand manifests that share templates
costs little more than loading them.  Locations are computed only for the
problems found.  The cache between runs, parallel cold runs and
``--changed-since`` are :mod:`smartshare.validation`'s.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.catalog.diagnostics import Problem, Severity, ValidationReport
from smartshare.catalog.graph import cycle_problem, cycles
from smartshare.catalog.load import (
    Catalog,
    LoadedFile,
    display_path,
    iter_yaml_files,
    load_catalog,
    load_file,
)
from smartshare.catalog.models import (
    EXTERNAL_KEY,
    AppManifest,
    ExternalApp,
    RegionProfile,
    TemplateTarget,
    is_secret_reference,
)
from smartshare.catalog.rules import spdx_warnings
from smartshare.catalog.runtime_checks import (
    check_app_runtime,
    check_region_deploy,
    check_stack_names,
)
from smartshare.catalog.tags import repository_clashes
from smartshare.catalog.yamlfile import YamlDocument
from smartshare.errors import CatalogNotFoundError, InvalidInputError, UnsafePathError
from smartshare.rendering.analysis import (
    TemplateAnalyser,
    TemplateUsage,
    Use,
    analyse_text,
    content_digest,
)
from smartshare.rendering.sandbox import TemplateSource, is_template_text, make_environment

if TYPE_CHECKING:
    from smartshare.cache import ContentMemo

# What render_context() puts under `region` and `app`.
REGION_FIELDS = frozenset(RegionProfile.model_fields) - {"apps", "assets", "build"}
APP_FIELDS = frozenset(AppManifest.model_fields)

__all__ = [
    "Memos",
    "OwnChecks",
    "ValidationReport",
    "check_app_templates",
    "check_region",
    "own_problems",
    "tools",
    "validate",
    "validate_loaded",
]


@dataclass(frozen=True)
class Memos:
    """What a validation may take from earlier runs, by content (see :mod:`smartshare.cache`).

    ``documents``: YAML data of app manifests, by the file's bytes;
    ``analyses``: template analyses, by the template's text; ``own``: each
    app's own problems (:class:`OwnChecks`); ``listed``: digests of the
    catalogue's template files, when the caller has read them already.
    """

    documents: ContentMemo | None = None
    analyses: ContentMemo | None = None
    own: ContentMemo | None = None
    listed: Mapping[str, str] | None = None


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
        catalog = load_catalog(catalog_root, documents=memos.documents)
        problems = set(catalog.problems)
        apps = [*catalog.apps.values(), *catalog.partial_apps.values()]
        regions = [*catalog.regions.values(), *catalog.partial_regions]
        analyser, own = tools(catalog, memos)
        problems.update(_check_loaded(catalog, apps, regions, analyser, own))
        # Each file was either loaded into the catalogue or has a problem.
        seen = {f.doc.display for f in catalog.apps.values()}
        seen.update(f.doc.display for f in catalog.regions.values())
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
    return problems


# -- an app's own checks --------------------------------------------------------


def own_problems(
    app: LoadedFile[AppManifest], templates_dir: Path, analyser: TemplateAnalyser | None
) -> list[Problem]:
    """The problems an app has on its own: licence, templates, runtime.

    They depend on the manifest and the templates it reads, nothing else of
    the catalogue: :class:`OwnChecks` keeps them, worker processes compute them.
    """
    problems: list[Problem] = []
    if app.has("license"):
        problems.extend(
            app.doc.problem(("license",), warning, severity=Severity.WARNING)
            for warning in spdx_warnings(app.model.license)
        )
    if app.has("templates", "parameters"):
        problems.extend(
            check_app_templates(app=app, templates_dir=templates_dir, analyser=analyser)
        )
    if app.has("runtime", "images", "parameters", "templates", "assets"):
        problems.extend(check_app_runtime(app))
    return problems


class OwnChecks:
    """Each app's own problems (:func:`own_problems`), kept by content between runs.

    They depend on the manifest's bytes and on what each template its
    analysis looked up held (its text, or its absence): kept in a memo by the
    manifest's digest (and the templates folder as shown, which messages may
    name), with those templates' digests, and used again while every one of
    them reads the same.  Problems are kept located relative to the manifest
    or a template by name, and shown from where they are now.  ``listed``:
    digests of the templates folder's regular files, when the caller has
    read them already; anything else is read again, as the analysis reads it.
    """

    def __init__(
        self,
        memo: ContentMemo,
        templates_dir: Path,
        *,
        listed: Mapping[str, str] | None = None,
    ) -> None:
        self.memo = memo
        self.templates_dir = templates_dir
        self.listed = listed or {}
        self._shown = display_path(templates_dir)
        self._source: TemplateSource | None = None
        self._current: dict[str, str | None] = {}

    def key(self, app: LoadedFile[AppManifest]) -> str:
        return own_key(self._shown, content_digest(app.doc.text))

    def get(self, app: LoadedFile[AppManifest]) -> list[Problem] | None:
        data = self.memo.get(self.key(app))
        try:
            uses = [(str(name), digest) for name, digest in data["uses"]]
            rows = data["problems"]
            if any(self._digest(name) != digest for name, digest in uses):
                return None
            return [
                Problem(
                    app.doc.display if not where else display_path(self.templates_dir / where),
                    _whole(line),
                    _whole(column),
                    Severity(severity),
                    str(field),
                    str(message),
                )
                for where, line, column, severity, field, message in rows
            ]
        except (KeyError, TypeError, ValueError):
            return None  # none, or not what put() writes: checked again

    def put(
        self,
        app: LoadedFile[AppManifest],
        problems: list[Problem],
        analyser: TemplateAnalyser,
        read: set[str],
    ) -> None:
        """Keep ``problems``, found reading the templates named ``read`` with ``analyser``."""
        used = {name: analyser.digests[name] for name in sorted(read) if name in analyser.digests}
        if len(used) != len(read):
            return  # a template could not be read: its problem depends on more than bytes
        where = {display_path(self.templates_dir / name): name for name in used}
        rows = []
        for p in problems:
            place = "" if p.file == app.doc.display else where.get(p.file)
            if place is None:
                return
            rows.append([place, p.line, p.column, p.severity.value, p.field, p.message])
        self.memo.put(self.key(app), {"uses": [[n, d] for n, d in used.items()], "problems": rows})

    def _digest(self, name: str) -> str | None:
        """What template ``name`` holds now, as the analysis would read it (None: absent)."""
        if name in self.listed:
            return self.listed[name]
        if name not in self._current:
            self._current[name] = self._read(name)
        return self._current[name]

    def _read(self, name: str) -> str | None:
        if self._source is None:
            self._source = TemplateSource(self.templates_dir.absolute())
        source = self._source
        try:
            path = source.path_of(name)
            if not path.is_file():
                return None if not path.exists() else "unreadable"
            return content_digest(source.read(path, name))
        except FileNotFoundError:
            return None
        except InvalidInputError:
            return "unreadable"  # never a digest: the entry is not used


def own_key(templates_shown: str, manifest_digest: str) -> str:
    """The memo key of an app's own problems: its manifest's digest, its templates folder shown."""
    return hashlib.sha256(f"{templates_shown}\0{manifest_digest}".encode()).hexdigest()


def _whole(value: object) -> int:
    if type(value) is not int:
        raise ValueError("expected a whole number")
    return value


# -- requires ------------------------------------------------------------------


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_requires(
    app: LoadedFile[AppManifest], catalog: Catalog, on_cycles: dict[tuple[str, int], list[str]]
) -> list[Problem]:
    problems: list[Problem] = []
    model = app.model
    for index, needed in enumerate(model.requires):
        if needed not in catalog.apps and needed not in catalog.partial_apps:
            problems.append(
                app.doc.problem(
                    ("requires", index),
                    f"requires '{needed}', which is not an app of the catalogue"
                    + _suggest(needed, catalog.apps),
                )
            )
        elif catalog.apps.get(model.name) is app and (model.name, index) in on_cycles:
            problems.append(
                cycle_problem(catalog, model.name, index, on_cycles[(model.name, index)])
            )
    return problems


# -- region profiles -------------------------------------------------------------


def check_region(*, region: LoadedFile[RegionProfile], catalog: Catalog) -> list[Problem]:
    """Check a region's ``apps`` values against the apps of ``catalog``.

    Unknown apps and parameters, values of the wrong type, secrets written
    inline, and required parameters without a value.  Values are never
    echoed in messages: some are secrets.
    """
    doc = region.doc
    problems: list[Problem] = []
    for app_name, values in region.model.apps.items():
        loaded = catalog.apps.get(app_name) or catalog.partial_apps.get(app_name)
        if loaded is None:
            problems.append(
                doc.problem(
                    ("apps", app_name),
                    f"no app named '{app_name}' in the catalogue"
                    + _suggest(app_name, catalog.apps),
                    key=True,
                )
            )
            continue
        if isinstance(values, ExternalApp):
            if loaded.has("runtime"):
                problems.extend(_check_external(doc, loaded.model, values))
            continue
        if not loaded.has("parameters"):
            continue  # the app's manifest is invalid there, and says so
        app = loaded.model
        for key, value in values.items():
            loc = ("apps", app_name, key)
            parameter = app.parameter(key)
            if parameter is None:
                declared = [p.name for p in app.parameters]
                hint = _suggest(key, declared) or (
                    f"; its parameters are: {', '.join(declared)}"
                    if declared
                    else "; it has no parameters"
                )
                problems.append(
                    doc.problem(loc, f"app '{app_name}' has no parameter '{key}'{hint}", key=True)
                )
            elif parameter.secret:
                if not is_secret_reference(value):
                    problems.append(
                        doc.problem(
                            loc,
                            f"'{key}' is a secret: give it as env:NAME or file:PATH, never "
                            "inline (the value is not shown here; remove it from the file "
                            "and rotate it if it was real)",
                        )
                    )
            else:
                why = parameter.value_problem(value)
                if why:
                    problems.append(doc.problem(loc, f"parameter '{key}' of '{app_name}' {why}"))
        for parameter in app.parameters:
            if parameter.required and parameter.default is None and parameter.name not in values:
                problems.append(
                    doc.problem(
                        ("apps", app_name),
                        f"app '{app_name}' needs a value for its required parameter "
                        f"'{parameter.name}'",
                        key=True,
                    )
                )
    return problems


def check_region_assets(*, region: LoadedFile[RegionProfile], catalog: Catalog) -> list[Problem]:
    """Check the files a region gives apps' assets: there, inside its folder, of the right type.

    ``branding.logo`` as a file must be an image smartshare takes (PNG, SVG,
    ICO); each ``assets.<app>.<asset>`` must name an asset of the app and fit
    it; and for each app the profile lists (``apps`` or ``assets``), every
    required asset must have a file, and a branding file it takes must fit it.
    """
    from smartshare.catalog.assets import missing_hint, read_checked, supplied

    model = region.model
    doc = region.doc
    base = doc.path.resolve().parent
    problems: list[Problem] = []
    logo_usable = True
    if model.branding.logo is not None and model.branding.logo.startswith("file:"):
        try:
            read_checked(model.branding.logo, base, None)
        except InvalidInputError as exc:
            problems.append(doc.problem(("branding", "logo"), exc.message))
            logo_usable = False
    for app_name, files in model.assets.items():
        loaded = catalog.apps.get(app_name) or catalog.partial_apps.get(app_name)
        if loaded is None:
            problems.append(
                doc.problem(
                    ("assets", app_name),
                    f"no app named '{app_name}' in the catalogue"
                    + _suggest(app_name, catalog.apps),
                    key=True,
                )
            )
            continue
        if not loaded.has("assets"):
            continue
        for name, reference in files.items():
            asset = loaded.model.asset(name)
            if asset is None:
                declared = [a.name for a in loaded.model.assets]
                hint = _suggest(name, declared) or (
                    f"; its assets are: {', '.join(declared)}" if declared else "; it has none"
                )
                problems.append(
                    doc.problem(
                        ("assets", app_name, name),
                        f"app '{app_name}' has no asset '{name}'{hint}",
                        key=True,
                    )
                )
                continue
            try:
                read_checked(reference, base, asset)
            except InvalidInputError as exc:
                problems.append(doc.problem(("assets", app_name, name), exc.message))
    for app_name in dict.fromkeys([*model.apps, *model.assets]):
        loaded = catalog.apps.get(app_name) or catalog.partial_apps.get(app_name)
        if loaded is None or not loaded.has("assets"):
            continue
        for asset in loaded.model.assets:
            given = supplied(model, app_name, asset)
            if given is None:
                if asset.required:
                    problems.append(
                        doc.problem(
                            ("apps", app_name) if app_name in model.apps else ("assets", app_name),
                            f"app '{app_name}' needs a file for its required asset "
                            f"'{asset.name}': {missing_hint(app_name, asset)}",
                            key=True,
                        )
                    )
            elif given.loc[0] == "branding" and logo_usable:
                try:
                    read_checked(given.reference, base, asset)
                except InvalidInputError as exc:
                    problems.append(
                        doc.problem(
                            given.loc, f"as asset '{asset.name}' of '{app_name}': {exc.message}"
                        )
                    )
    return problems


def _check_external(doc: YamlDocument, app: AppManifest, given: ExternalApp) -> list[Problem]:
    """The outputs a region gives for an app it runs itself, against the app's manifest."""
    declared = dict(app.runtime.outputs) if app.runtime is not None else {}
    at = ("apps", app.name, EXTERNAL_KEY)
    problems: list[Problem] = []
    for key in given.external:
        if key not in declared:
            offered = (
                f"; it offers {', '.join(sorted(declared))}"
                if declared
                else "; it offers none (no runtime.outputs)"
            )
            problems.append(
                doc.problem(
                    (*at, key),
                    f"'{key}' is not an output of '{app.name}'"
                    + (_suggest(key, declared) or offered),
                    key=True,
                )
            )
    for key in sorted(set(declared) - set(given.external)):
        problems.append(
            doc.problem(
                at,
                f"output '{key}' of '{app.name}' is not given: an app that reads "
                f"requires.{app.name}.{key} cannot be rendered",
                severity=Severity.WARNING,
            )
        )
    return problems


# -- templates -----------------------------------------------------------------


def check_app_templates(
    *,
    app: LoadedFile[AppManifest],
    templates_dir: Path,
    analyser: TemplateAnalyser | None = None,
) -> list[Problem]:
    """Check an app's templates and build arguments against its parameters, without rendering.

    Errors: a missing or unsafe ``src``, template syntax errors, missing or
    dynamic includes, ``params.X`` not declared, unknown ``region.X``,
    ``app.X`` or ``assets.X`` fields, other undefined names, a secret
    parameter used by an ``image`` template or a build argument (it would be
    baked into the image or its history), and a ``catalog:`` schema that is
    missing or not a JSON Schema.  Warning: a declared parameter that nothing
    uses.  Problems inside a template are located in the template file; those
    of a build argument at the argument.  ``analyser``: one for
    ``templates_dir`` shared by many apps (by default, one made here); the
    templates and schemas it reads are what the problems depend on.
    """
    model = app.model
    doc = app.doc
    problems: list[Problem] = []
    templated = _templated_args(app)
    if not model.templates and not model.parameters and not templated:
        return problems
    declared = {p.name: p for p in model.parameters}
    secrets = sorted(name for name, p in declared.items() if p.secret)
    assets = [a.name for a in model.assets] if app.has("assets") else None
    used: set[str] = set()
    uses_all = False
    complete = True
    if analyser is None and templates_dir.is_dir():
        analyser = TemplateAnalyser(templates_dir, env=make_environment(templates_dir))
    for index, spec in enumerate(model.templates):
        src_loc = ("templates", index, "src")
        if analyser is None:
            problems.append(
                doc.problem(
                    src_loc,
                    f"template '{spec.src}' not found: {display_path(templates_dir)} "
                    "does not exist",
                )
            )
            complete = False
            continue
        if spec.output_schema is not None and spec.output_schema.startswith("catalog:"):
            problems.extend(_catalog_schema_problems(app, index, analyser))
        try:
            usage = analyser.analyse(spec.src)
        except UnsafePathError as exc:
            problems.append(doc.problem(src_loc, exc.message))
            complete = False
            continue
        except InvalidInputError as exc:
            message = exc.message
            if not (templates_dir / spec.src).is_file():
                message = f"template '{spec.src}' does not exist in {display_path(templates_dir)}"
            problems.append(doc.problem(src_loc, message))
            complete = False
            continue
        complete = complete and usage.complete
        used.update(usage.param_names)
        uses_all = uses_all or usage.uses_all_params
        problems.extend(
            _usage_problems(
                usage,
                model,
                templates_dir,
                image=spec.target is TemplateTarget.IMAGE,
                secrets=secrets,
                assets=assets,
            )
        )
    if templated:
        arg_env = analyser.env if analyser is not None else make_environment(templates_dir)
        for loc, text in templated:
            usage = analyse_text(arg_env, text, ".".join(map(str, loc)))
            complete = complete and usage.complete
            used.update(usage.param_names)
            uses_all = uses_all or usage.uses_all_params
            problems.extend(
                doc.problem(loc, message)
                for _, _, message, _ in _usage_messages(
                    usage, model, secrets=secrets, assets=assets, what="a build argument"
                )
            )
    if complete and not uses_all:
        for index, parameter in enumerate(model.parameters):
            if parameter.name not in used:
                problems.append(
                    doc.problem(
                        ("parameters", index),
                        f"parameter '{parameter.name}' is not used by any template or "
                        f"build argument of '{model.name}'",
                        severity=Severity.WARNING,
                    )
                )
    return problems


def _templated_args(app: LoadedFile[AppManifest]) -> list[tuple[tuple[str | int, ...], str]]:
    """The build arguments that are Jinja text, by their place in the manifest."""
    if not app.has("images"):
        return []
    return [
        (("images", index, "args", key), value)
        for index, image in enumerate(app.model.images)
        for key, value in image.args.items()
        if is_template_text(value)
    ]


def _catalog_schema_problems(
    app: LoadedFile[AppManifest], index: int, analyser: TemplateAnalyser
) -> list[Problem]:
    """A ``catalog:`` schema must exist under templates/ and be a JSON Schema.

    Read through ``analyser``, as templates are: the app's own problems
    depend on the schema file, and are kept while it reads the same.
    """
    spec = app.model.templates[index]
    assert spec.output_schema is not None
    loc = ("templates", index, "schema")
    name = spec.output_schema.removeprefix("catalog:")
    try:
        text = analyser.read(name)
    except InvalidInputError as exc:  # UnsafePathError too
        return [app.doc.problem(loc, exc.message.replace("template ", "schema ", 1))]
    if text is None:
        shown = display_path(analyser.templates_dir)
        return [app.doc.problem(loc, f"schema '{name}' does not exist in {shown}")]
    why = _schema_problem(text, spec.output_schema)
    return [app.doc.problem(loc, why)] if why else []


@lru_cache(maxsize=256)
def _schema_problem(text: str, schema_name: str) -> str | None:
    """Why ``text`` is no usable JSON Schema (named ``schema_name`` in the message), else None."""
    from smartshare.rendering.schemacheck import SchemaFileError, load_schema, make_validator

    try:
        make_validator(load_schema(text, schema_name), schema_name)
    except SchemaFileError as exc:
        return str(exc)
    return None


def _usage_problems(
    usage: TemplateUsage,
    model: AppManifest,
    templates_dir: Path,
    *,
    image: bool,
    secrets: list[str],
    assets: list[str] | None,
) -> list[Problem]:
    problems: list[Problem] = []
    for issue in usage.issues:
        path = templates_dir / issue.template
        pattern = r"\{%-?\s*\w+" if "syntax error" not in issue.message else ""
        problems.append(
            Problem(
                file=display_path(path),
                line=issue.line,
                column=_column(path, issue.line, pattern),
                severity=Severity.ERROR,
                field="",
                message=issue.message,
            )
        )
    for use, field, message, pattern in _usage_messages(
        usage,
        model,
        secrets=secrets if image else [],
        assets=assets,
        what="an image template",
        issues=False,
    ):
        path = templates_dir / use.template
        problems.append(
            Problem(
                file=display_path(path),
                line=use.line,
                column=_column(path, use.line, pattern),
                severity=Severity.ERROR,
                field=field,
                message=message,
            )
        )
    return problems


def _usage_messages(
    usage: TemplateUsage,
    model: AppManifest,
    *,
    secrets: list[str],
    assets: list[str] | None,
    what: str,
    issues: bool = True,
) -> list[tuple[Use, str, str, str]]:
    """What is wrong in what a template or string uses: (use, field, message, column pattern).

    ``secrets``: the secret parameters it must not use (none for a runtime
    template); ``assets``: the app's asset names (None: unknown, not checked).
    """
    found: list[tuple[Use, str, str, str]] = []
    if issues:
        found += [
            (Use(issue.template, issue.line, ""), "", issue.message, "") for issue in usage.issues
        ]
    declared = {p.name: p for p in model.parameters}
    where = {
        "an image template": "it would be baked into the image; use it in a runtime "
        "template instead"
    }.get(
        what,
        "build arguments are kept in the image's history; give the value to the "
        "container at run time instead",
    )
    for use in usage.params:
        pattern = rf"\bparams\s*(\.\s*{use.name}\b|\[\s*['\"]{use.name}['\"])|\b{use.name}\b"
        parameter = declared.get(use.name)
        if parameter is None:
            names = [p.name for p in model.parameters]
            message = f"parameter '{use.name}' is not declared by app '{model.name}'" + _suggest(
                use.name, names
            )
            found.append((use, f"params.{use.name}", message, pattern))
        elif use.name in secrets:
            message = f"secret parameter '{use.name}' of '{model.name}' is used by {what}: {where}"
            found.append((use, f"params.{use.name}", message, pattern))
    if secrets:
        for use in usage.whole_params:
            message = (
                f"{what} of '{model.name}' uses 'params' as a whole, which includes secret "
                f"parameter(s) {', '.join(secrets)}: {where}"
            )
            found.append((use, "params", message, r"\bparams\b"))
    fields: list[tuple[str, tuple[Use, ...], Collection[str]]] = [
        ("region", usage.region_fields, REGION_FIELDS),
        ("app", usage.app_fields, APP_FIELDS),
    ]
    if assets is not None:
        fields.append(("assets", usage.asset_fields, assets))
    for owner, uses, known in fields:
        for use in uses:
            if use.name not in known:
                message = (
                    f"app '{model.name}' has no asset '{use.name}'"
                    if owner == "assets"
                    else f"'{owner}' has no field '{use.name}'"
                ) + _suggest(use.name, known)
                found.append(
                    (use, f"{owner}.{use.name}", message, rf"\b{owner}\s*(\.\s*{use.name}\b|\[)")
                )
    for use in usage.undeclared:
        message = (
            f"'{use.name}' is not defined: a template can use region, app, params, requires, "
            "assets and its own variables"
        )
        found.append((use, use.name, message, rf"\b{use.name}\b"))
    return found


def _column(path: Path, line: int, pattern: str) -> int:
    """1-based column of ``pattern`` on ``line`` of the template, else 1."""
    if not pattern:
        return 1
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return 1
    lines = _template_lines(str(path), mtime)
    if not 1 <= line <= len(lines):
        return 1
    match = re.search(pattern, lines[line - 1])
    return match.start() + 1 if match else 1


@lru_cache(maxsize=64)
def _template_lines(path: str, mtime: int) -> tuple[str, ...]:
    # Only called for problems, after analyse() has read the file successfully.
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()
