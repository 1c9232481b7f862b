"""Where the catalogue is: ``--catalog``, ``$SMARTSHARE_CATALOG`` or the bundled one.

The bundled catalogue ships inside the package; a checkout uses its
top-level folders directly.  Apart from :mod:`.load`, which imports the
models: a command finds its catalogue before it knows whether it must load it.
"""

from __future__ import annotations

import os
from pathlib import Path

from smartshare.errors import CatalogNotFoundError

CATALOG_ENV = "SMARTSHARE_CATALOG"


def bundled_catalog_root() -> Path:
    package = Path(__file__).resolve().parent.parent  # smartshare/, not smartshare/catalog/
    installed = package / "_catalog"
    if (installed / "manifests").is_dir():
        return installed
    return package.parent


def resolve_catalog_root(catalog: Path | None = None) -> Path:
    """``--catalog``, else ``$SMARTSHARE_CATALOG``, else the bundled catalogue."""
    chosen = catalog or (Path(os.environ[CATALOG_ENV]) if os.environ.get(CATALOG_ENV) else None)
    root = chosen if chosen is not None else bundled_catalog_root()
    if not (root / "manifests").is_dir():
        raise CatalogNotFoundError(
            f"no catalogue at {root}: it has no manifests/ folder",
            hint="pass --catalog DIR (or set SMARTSHARE_CATALOG) to a folder holding "
            "manifests/ and templates/",
        )
    return root


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    # os.path, not Path.resolve(): this runs once per file of a large catalogue.
    absolute = os.path.abspath(path)  # noqa: PTH100
    cwd = os.getcwd()  # noqa: PTH109
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return absolute[len(cwd.rstrip(os.sep)) + 1 :]
    return str(path)
