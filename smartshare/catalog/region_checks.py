"""Region profiles against the apps of their catalogue: values, outputs, asset files.

Unknown apps and parameters, values of the wrong type, secrets written
inline, required parameters without a value; the outputs given for an app
the region runs itself; the files the profile names for apps' assets.  A
profile's ``deploy`` section is :mod:`.runtime_checks`'.  Values are never
echoed in messages: some are secrets.
"""

from __future__ import annotations

from smartshare.catalog.diagnostics import Problem, Severity, did_you_mean
from smartshare.catalog.load import Catalog, LoadedFile
from smartshare.catalog.models import EXTERNAL_KEY, PATCHES_KEY, AppManifest, is_secret_reference
from smartshare.catalog.profile import ExternalApp, RegionProfile
from smartshare.catalog.yamlfile import YamlDocument
from smartshare.errors import InvalidInputError


def check_region(*, region: LoadedFile[RegionProfile], catalog: Catalog) -> list[Problem]:
    """Check a region's ``apps`` values against the apps of ``catalog``.

    Unknown apps and parameters, values of the wrong type, secrets written
    inline, and required parameters without a value.  Values are never
    echoed in messages: some are secrets.
    """
    doc = region.doc
    problems: list[Problem] = []
    for app_name, values in region.model.apps.items():
        loaded = catalog.any_app(app_name)
        if loaded is None:
            problems.append(_unknown_app(doc, ("apps", app_name), catalog))
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
                hint = _not_declared(
                    key,
                    [p.name for p in app.parameters],
                    "its parameters are:",
                    "it has no parameters",
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
        loaded = catalog.any_app(app_name)
        if loaded is None:
            problems.append(_unknown_app(doc, ("assets", app_name), catalog))
            continue
        if not loaded.has("assets"):
            continue
        for name, reference in files.items():
            asset = loaded.model.asset(name)
            if asset is None:
                declared = [a.name for a in loaded.model.assets]
                hint = _not_declared(name, declared, "its assets are:", "it has none")
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
        loaded = catalog.any_app(app_name)
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
            hint = _not_declared(
                key, sorted(declared), "it offers", "it offers none (no runtime.outputs)"
            )
            problems.append(
                doc.problem((*at, key), f"'{key}' is not an output of '{app.name}'{hint}", key=True)
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


def _unknown_app(doc: YamlDocument, loc: tuple[str, str], catalog: Catalog) -> Problem:
    """``loc`` (``(section, app)``) names an app the catalogue does not hold."""
    name = loc[1]
    return doc.problem(
        loc,
        f"no app named '{name}' in the catalogue" + did_you_mean(name, catalog.apps),
        key=True,
    )


def _not_declared(name: str, declared: list[str], listing: str, nothing: str) -> str:
    """The hint for a ``name`` an app does not declare: the closest one, else all of them."""
    return did_you_mean(name, declared) or (
        f"; {listing} {', '.join(declared)}" if declared else f"; {nothing}"
    )
