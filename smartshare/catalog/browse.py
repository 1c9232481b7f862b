"""What can be shared: the catalogue as ``list`` and ``show`` present it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartshare.catalog.diagnostics import Problem
from smartshare.catalog.load import Catalog, load_catalog
from smartshare.catalog.location import resolve_catalog_root
from smartshare.catalog.models import AppManifest
from smartshare.catalog.paramtypes import describe


@dataclass(frozen=True)
class AppListing:
    apps: list[AppManifest]
    problems: list[Problem]  # files that could not be loaded (shown as a warning)


def _matches(app: AppManifest, needle: str) -> bool:
    haystack = [app.name, app.title, *app.tags, *app.summary.values()]
    if app.description:
        haystack.extend(app.description.values())
    lowered = needle.casefold()
    return any(lowered in text.casefold() for text in haystack)


def list_apps(
    *, catalog_root: Path | None = None, category: str | None = None, search: str | None = None
) -> AppListing:
    catalog = load_catalog(resolve_catalog_root(catalog_root))
    apps = [loaded.model for _, loaded in sorted(catalog.apps.items())]
    if category:
        apps = [a for a in apps if a.category == category]
    if search:
        apps = [a for a in apps if _matches(a, search)]
    return AppListing(apps=apps, problems=catalog.problems)


@dataclass(frozen=True)
class AppDetails:
    app: AppManifest
    manifest_file: str
    required_by: list[str]
    catalog_root: Path

    def as_dict(self) -> dict[str, Any]:
        data = self.app.model_dump(mode="json", by_alias=True)
        for parameter, dumped in zip(self.app.parameters, data["parameters"], strict=True):
            dumped["accepts"] = describe(parameter)  # the type and its constraints, in words
        data["required_by"] = self.required_by
        data["manifest_file"] = self.manifest_file
        return data


def describe_app(*, name: str, catalog_root: Path | None = None) -> AppDetails:
    catalog: Catalog = load_catalog(resolve_catalog_root(catalog_root))
    app = catalog.app(name)
    return AppDetails(
        app=app,
        manifest_file=catalog.apps[name].doc.display,
        required_by=catalog.required_by(name),
        catalog_root=catalog.root,
    )
