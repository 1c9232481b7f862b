"""Which files of a catalogue a change touches: what ``validate --changed-since`` checks.

Given the files changed (paths relative to the catalogue folder, from git),
the files to check are:

- the changed manifests and profiles themselves;
- apps whose templates changed, directly or through what they include,
  import or extend, and apps whose ``catalog:`` schema changed;
- apps that require a changed app (under its name now, or at the ref, for an
  app renamed or deleted);
- profiles that give values to a changed app, or publish its port; and every
  profile when a changed app publishes a port (ports are assigned across the
  catalogue);
- profiles that name files for apps' assets (``branding.logo: file:...``,
  ``assets``) when another file in their folder changed: such a file is
  found only inside the profile's folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.catalog.load import YAML_SUFFIXES, Catalog, LoadedFile
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.yamlfile import parse_yaml
from smartshare.errors import InvalidInputError

if TYPE_CHECKING:
    from smartshare.rendering.analysis import TemplateAnalyser


def affected_files(
    catalog: Catalog,
    *,
    changed: Iterable[str],
    old_manifests: Mapping[str, bytes],
    analyser: TemplateAnalyser | None,
) -> list[Path]:
    """The files of ``catalog`` to validate after ``changed``, each once, in a stable order."""
    root = catalog.root
    changed = set(changed)
    manifests = {p for p in changed if p.startswith("manifests/") and p.endswith(YAML_SUFFIXES)}
    templates = {p.removeprefix("templates/") for p in changed if p.startswith("templates/")}
    others = {p for p in changed if p.startswith("manifests/") and p not in manifests}
    apps: list[LoadedFile[AppManifest]] = [*catalog.apps.values(), *catalog.partial_apps.values()]
    regions = [*catalog.regions.values(), *catalog.partial_regions]

    selected: dict[Path, None] = {}
    for relative in sorted(manifests):
        path = root / relative
        if path.is_file():
            selected[path] = None

    # A changed manifest's name is its file's: only those files are compared in full.
    basenames = {relative.rsplit("/", 1)[-1] for relative in manifests}
    names = {
        app.model.name
        for app in apps
        if app.doc.path.name in basenames and _relative(app, root) in manifests
    }
    names.update(filter(None, (_name(text) for text in old_manifests.values())))
    current = set(catalog.apps) | set(catalog.partial_apps)
    publishing = any(
        app.has("runtime")
        and app.model.runtime is not None
        and app.model.runtime.public_service is not None
        for app in apps
        if app.model.name in names
    ) or bool(names - current)  # a deleted or renamed app may have published one

    for app in apps:
        requires = app.has("requires") and names.intersection(app.model.requires)
        if requires or (
            templates
            and analyser is not None
            and app.has("templates")
            and templates & _templates_used(app, analyser)
        ):
            selected[app.doc.path] = None
    for region in regions:
        model = region.model
        gives = region.has("apps") and names.intersection(model.apps)
        ports = region.has("deploy") and (publishing or names.intersection(model.deploy.ports))
        if gives or ports or (others and _reads_changed_files(region, root, others)):
            selected[region.doc.path] = None
    return list(selected)


def _reads_changed_files(region: LoadedFile[RegionProfile], root: Path, others: set[str]) -> bool:
    """Whether the profile names files for assets and one in its folder is in ``others``."""
    model = region.model
    logo = region.has("branding") and (model.branding.logo or "").startswith("file:")
    if not logo and not (region.has("assets") and model.assets):
        return False
    folder = _relative(region, root).rpartition("/")[0]
    return bool(folder) and any(path.startswith(folder + "/") for path in others)


def _relative(loaded: LoadedFile[Any], root: Path) -> str:
    try:
        return loaded.doc.path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return ""


def _templates_used(app: LoadedFile[AppManifest], analyser: TemplateAnalyser) -> set[str]:
    """The files under templates/ the app's checks read: templates and schemas."""
    used: set[str] = set()
    for spec in app.model.templates:
        used.add(spec.src)
        if spec.output_schema is not None and spec.output_schema.startswith("catalog:"):
            used.add(spec.output_schema.removeprefix("catalog:"))
        try:
            used.update(analyser.analyse(spec.src).looked_up)
        except InvalidInputError:
            continue  # reported when the app is checked; its own src is in the set
    return used


def _name(raw: bytes) -> str | None:
    """The app name a manifest held, if it was a readable app manifest."""
    try:
        data = parse_yaml(raw.decode("utf-8"), path=Path("old.yaml")).data
    except (InvalidInputError, UnicodeDecodeError):
        return None
    name = data.get("name")
    return name if data.get("kind") == "App" and isinstance(name, str) else None
