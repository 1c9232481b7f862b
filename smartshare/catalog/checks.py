"""Check manifests, region profiles and templates, and locate every problem.

Single-file checks (YAML, types, patterns, unknown keys) happen while loading
(:mod:`.yamlfile`, :mod:`.models`, :mod:`.load`); this module adds the checks
that need more than one file: ``requires`` and dependency cycles, region
values against the app's parameters, and templates against the parameters
their app declares.

Templates are analysed, never rendered, and each template file is parsed once
(:func:`smartshare.rendering.analysis.analyse` caches by file), so validating a
thousand manifests that share templates costs little more than loading them.
Locations are computed only for the problems found.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.catalog.diagnostics import Problem, Severity, has_errors
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
    PATCHES_KEY,
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
    check_runtime_references,
    check_stack_names,
    runtime_strings,
)
from smartshare.catalog.tags import repository_clashes
from smartshare.catalog.yamlfile import YamlDocument
from smartshare.errors import CatalogNotFoundError, InvalidInputError, UnsafePathError
from smartshare.rendering.analysis import TemplateUsage, Use, analyse, analyse_text
from smartshare.rendering.sandbox import is_template_text, make_environment

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

# What render_context() puts under `region` and `app`.
REGION_FIELDS = frozenset(RegionProfile.model_fields) - {"apps", "assets", "build"}
APP_FIELDS = frozenset(AppManifest.model_fields)

# What a Jinja string of a manifest is, as messages name it.
BUILD_ARGUMENT = "a build argument"
RUNTIME_VALUE = "a runtime value"


@dataclass(frozen=True)
class ValidationReport:
    problems: list[Problem]  # sorted by file, line, column
    files_checked: int  # manifests and region profiles (templates not counted)

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not has_errors(self.problems)


def validate(*, catalog_root: Path, paths: Sequence[Path] = ()) -> ValidationReport:
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
    """
    if not paths and not (catalog_root / "manifests").is_dir():
        raise CatalogNotFoundError(
            f"no catalogue at {catalog_root}: it has no manifests/ folder",
            hint="pass --catalog DIR, a folder holding manifests/ and templates/",
        )
    if not paths:
        # Everything loaded is reported on: no need to sort files into catalogues.
        catalog = load_catalog(catalog_root)
        problems = set(catalog.problems)
        apps = [*catalog.apps.values(), *catalog.partial_apps.values()]
        apps += catalog.version_files()  # older versions stay usable: checked alike
        regions = [*catalog.regions.values(), *catalog.partial_regions]
        problems.update(_check_loaded(catalog, apps, regions))
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
        problems.update(_validate_group(root, given))
    return ValidationReport(problems=sorted(problems), files_checked=len(files))


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


def _validate_group(root: Path, given: list[Path]) -> list[Problem]:
    catalog = load_catalog(root, extra_files=given)
    wanted = {path.resolve(): path for path in given}
    shown = {display_path(path) for path in given}
    problems = [p for p in catalog.problems if p.file in shown]

    apps: list[LoadedFile[AppManifest]] = []
    regions: list[LoadedFile[RegionProfile]] = []
    found: set[Path] = set()
    for app in [*catalog.apps.values(), *catalog.partial_apps.values()]:
        key = app.doc.path.resolve()
        if key in wanted:
            apps.append(app)
            found.add(key)
    for region in [*catalog.regions.values(), *catalog.partial_regions]:
        key = region.doc.path.resolve()
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

    problems.extend(_check_loaded(catalog, apps, regions))
    return problems


def _check_loaded(
    catalog: Catalog,
    apps: Iterable[LoadedFile[AppManifest]],
    regions: Iterable[LoadedFile[RegionProfile]],
) -> list[Problem]:
    """The checks that need the whole catalogue, for the given apps and regions.

    A file that does not validate gets the checks whose fields are intact
    (LoadedFile.has): all its independent problems come in one run.
    """
    problems: list[Problem] = []
    on_cycles = cycles(catalog)
    apps = list(apps)
    for app in apps:
        if app.has("license"):
            problems.extend(
                app.doc.problem(("license",), warning, severity=Severity.WARNING)
                for warning in spdx_warnings(app.model.license)
            )
        if app.has("requires"):
            problems.extend(_check_requires(app, catalog, on_cycles))
        if app.has("templates", "parameters"):
            problems.extend(check_app_templates(app=app, templates_dir=catalog.templates_dir))
        if app.has("runtime", "images", "parameters", "templates", "assets"):
            problems.extend(check_app_runtime(app))
            problems.extend(check_runtime_references(app, catalog))
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
            if key == PATCHES_KEY:
                continue  # not a value: check_region_patches
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
                    message = f"parameter '{key}' of '{app_name}': {why.explain(key, parameter)}"
                    problems.append(doc.problem((*loc, *why.path), message))
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


# -- templates -----------------------------------------------------------------


def check_app_templates(*, app: LoadedFile[AppManifest], templates_dir: Path) -> list[Problem]:
    """Check an app's templates and build arguments against its parameters, without rendering.

    Errors: a missing or unsafe ``src``, template syntax errors, missing or
    dynamic includes, ``params.X`` not declared, unknown ``region.X``,
    ``app.X`` or ``assets.X`` fields, other undefined names, a secret
    parameter used by an ``image`` template or a build argument (it would be
    baked into the image or its history) or by runtime text (environment
    values and outputs: a secret reaches a container only as a file), and a
    ``catalog:`` schema that is missing or not a JSON Schema.  Warning: a
    declared parameter that nothing uses.  Problems inside a template are
    located in the template file; those of a manifest string at its key.
    """
    model = app.model
    doc = app.doc
    problems: list[Problem] = []
    templated = _templated_texts(app)
    if not model.templates and not model.parameters and not templated:
        return problems
    declared = {p.name: p for p in model.parameters}
    secrets = sorted(name for name, p in declared.items() if p.secret)
    assets = [a.name for a in model.assets] if app.has("assets") else None
    used: set[str] = set()
    uses_all = False
    complete = True
    env = make_environment(templates_dir) if templates_dir.is_dir() else None
    for index, spec in enumerate(model.templates):
        src_loc = ("templates", index, "src")
        if env is None:
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
            problems.extend(_catalog_schema_problems(app, index, env))
        try:
            usage = analyse(env, spec.src)
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
        arg_env = env if env is not None else make_environment(templates_dir)
        for loc, text, what in templated:
            usage = analyse_text(arg_env, text, ".".join(map(str, loc)))
            if what == RUNTIME_VALUE:
                # services.<name> is runtime text's own (checked by check_runtime_references).
                usage = replace(
                    usage, undeclared=tuple(u for u in usage.undeclared if u.name != "services")
                )
            complete = complete and usage.complete
            used.update(usage.param_names)
            uses_all = uses_all or usage.uses_all_params
            problems.extend(
                doc.problem(loc, message)
                for _, _, message, _ in _usage_messages(
                    usage, model, secrets=secrets, assets=assets, what=what
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


def _templated_texts(
    app: LoadedFile[AppManifest],
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """The Jinja strings of a manifest, by their place in it, with what each one is.

    Build arguments, and the runtime's environment values and outputs.
    """
    texts: list[tuple[tuple[str | int, ...], str, str]] = []
    if app.has("images"):
        texts += [
            (("images", index, "args", key), value, BUILD_ARGUMENT)
            for index, image in enumerate(app.model.images)
            for key, value in image.args.items()
            if is_template_text(value)
        ]
    if app.has("runtime"):
        texts += [
            (loc, value, RUNTIME_VALUE)
            for loc, value in runtime_strings(app.model)
            if is_template_text(value)
        ]
    return texts


def _catalog_schema_problems(
    app: LoadedFile[AppManifest], index: int, env: ImmutableSandboxedEnvironment
) -> list[Problem]:
    """A ``catalog:`` schema must exist under templates/ and be a JSON Schema."""
    from smartshare.rendering.sandbox import source_of
    from smartshare.rendering.schemacheck import SchemaFileError, load_schema, make_validator

    spec = app.model.templates[index]
    assert spec.output_schema is not None
    loc = ("templates", index, "schema")
    name = spec.output_schema.removeprefix("catalog:")
    source = source_of(env)
    try:
        path = source.path_of(name)
        text = source.read(path, name)
    except FileNotFoundError:
        return [
            app.doc.problem(loc, f"schema '{name}' does not exist in {display_path(source.root)}")
        ]
    except InvalidInputError as exc:  # UnsafePathError too
        return [app.doc.problem(loc, exc.message.replace("template ", "schema ", 1))]
    try:
        make_validator(load_schema(text, spec.output_schema), spec.output_schema)
    except SchemaFileError as exc:
        return [app.doc.problem(loc, str(exc))]
    return []


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
        "template instead",
        RUNTIME_VALUE: "a secret reaches a container only as a file: list it under the "
        "container's 'secrets:' (with 'env:' for the <VAR>_FILE convention)",
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
