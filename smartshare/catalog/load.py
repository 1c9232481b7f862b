"""Load a catalogue's manifests and profiles, and locate every problem.

A catalogue is a folder holding ``manifests/`` (App and Region files, any
depth) and ``templates/``; which folder, :mod:`.location` says.
"""

from __future__ import annotations

import difflib
import gc
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from smartshare.catalog.diagnostics import Problem, Severity, shown_value
from smartshare.catalog.location import display_path
from smartshare.catalog.models import PATTERN_HINTS, AppManifest
from smartshare.catalog.profile import RegionProfile, consistency_problem, model_for_kind
from smartshare.catalog.yamlfile import YamlDocument, load_yaml
from smartshare.errors import InvalidInputError, UnknownAppError, UsageError

if TYPE_CHECKING:
    from smartshare.cache import ContentMemo

ModelT = TypeVar("ModelT", AppManifest, RegionProfile)
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedFile(Generic[ModelT]):
    """A validated model and the YAML it came from (for locating later problems).

    ``intact`` is None for a valid file.  A file that does not validate may
    still give a partial model, for ``validate``'s other checks only: the
    fields named in ``intact`` are valid, the others are not to be used.
    """

    doc: YamlDocument
    model: ModelT
    intact: frozenset[str] | None = None

    def has(self, *fields: str) -> bool:
        """Whether the model's ``fields`` are valid (always, for a valid file)."""
        return self.intact is None or self.intact.issuperset(fields)


@dataclass
class Catalog:
    root: Path
    apps: dict[str, LoadedFile[AppManifest]] = field(default_factory=dict)
    regions: dict[str, LoadedFile[RegionProfile]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Files that do not validate, as far as they do (see LoadedFile.intact):
    # validate checks what it can of them; nothing else sees them.
    partial_apps: dict[str, LoadedFile[AppManifest]] = field(default_factory=dict)
    partial_regions: list[LoadedFile[RegionProfile]] = field(default_factory=list)
    # Older versions of apps (manifests/versions/<app>/<version>.yaml), by app and version.
    versions: dict[str, dict[str, LoadedFile[AppManifest]]] = field(default_factory=dict)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    def app(self, name: str) -> AppManifest:
        loaded = self.apps.get(name)
        if loaded is None:
            # A manifest named after the app that does not load: say so, not "no such app".
            broken = [
                p
                for p in self.problems
                if p.severity is Severity.ERROR and Path(p.file).stem == name
            ]
            if broken:
                raise InvalidInputError(
                    f"the manifest of '{name}' ({broken[0].file}) is not valid",
                    hint="fix it first ('smartshare validate' shows the same problems)",
                    problems=broken,
                )
            close = difflib.get_close_matches(name, list(self.apps), n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else "run 'smartshare list' to see the apps"
            )
            raise UnknownAppError(f"no app named '{name}' in the catalogue {self.root}", hint=hint)
        return loaded.model

    def any_app(self, name: str) -> LoadedFile[AppManifest] | None:
        """``name``'s manifest, valid or (as far as it validates) not."""
        return self.apps.get(name) or self.partial_apps.get(name)

    def version_files(self) -> list[LoadedFile[AppManifest]]:
        """Every older version's manifest (``manifests/versions/``)."""
        return [loaded for versions in self.versions.values() for loaded in versions.values()]

    def available_versions(self, name: str) -> list[str]:
        """The versions of ``name`` the catalogue holds, oldest first (the current one last)."""
        versions = set(self.versions.get(name, {}))
        if name in self.apps:
            versions.add(self.apps[name].model.version)
        return sorted(versions, key=version_key)

    def app_version(self, name: str, version: str | None) -> AppManifest:
        """``name``'s manifest at ``version`` (None: the current one); UsageError listing them."""
        current = self.app(name)
        if version is None or version == current.version:
            return current
        older = self.versions.get(name, {}).get(version)
        if older is None:
            raise UsageError(
                f"the catalogue {self.root} has no version '{version}' of '{name}'",
                hint=f"its versions: {', '.join(self.available_versions(name))}",
            )
        return older.model

    def required_by(self, name: str) -> list[str]:
        return sorted(n for n, f in self.apps.items() if name in f.model.requires)


def iter_yaml_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            )
        else:
            found.append(path)
    return found


# -- pydantic errors to located problems ------------------------------------


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional; for other unions keep the first model member."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            annotation = models[0] if models else members[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = next(
                (f for n, f in current.model_fields.items() if part in (n, f.alias)), None
            )
            if field_info is None:
                return None
            current = field_info.annotation
        elif get_origin(current) is list:
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _present_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The prefix of ``loc`` that exists in the data (drops pydantic's union-member tags)."""
    kept: list[str | int] = []
    current = data
    for part in loc:
        in_mapping = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if not (in_mapping or in_list):
            break
        current = current[part]
        kept.append(part)
    return tuple(kept)


def problems_from_validation(
    doc: YamlDocument, model: type[BaseModel], exc: ValidationError
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        # A tagged union of the models names its member in the location: "<external>".
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and _is_union_tag(p)))
        kind = error["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            message = f"unknown key {shown_value(loc[-1])}"
            if parent is not None:
                close = difflib.get_close_matches(str(loc[-1]), _keys_of(parent), n=1)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                else:
                    message += f"; allowed keys: {', '.join(_keys_of(parent))}"
            problem = doc.problem(loc, message, key=True)
        elif kind == "missing":
            parent_loc = _present_loc(doc.data, loc[:-1])
            problem = doc.problem(
                parent_loc, f"required key '{loc[-1]}' is missing", field=_join(loc)
            )
        else:
            present = _present_loc(doc.data, loc)
            if kind == "string_pattern_mismatch":
                pattern = str((error.get("ctx") or {}).get("pattern", ""))
                wanted = PATTERN_HINTS.get(pattern, f"a value matching {pattern}")
                message = f"{shown_value(error['input'])} is not valid: expected {wanted}"
            elif kind == "literal_error" and present and present[-1] == "apiVersion":
                message = (
                    f"{shown_value(error['input'])} is not supported: expected 'smartshare/v1'"
                )
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
            problem = doc.problem(present, message, field=_join(present))
        if problem.field in seen and kind not in ("extra_forbidden", "missing"):
            continue  # one message per field: a union reports once per member
        seen.add(problem.field)
        problems.append(problem)
    return problems


def _is_union_tag(part: str) -> bool:
    return part.startswith("<") and part.endswith(">")


def _join(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_document(doc: YamlDocument) -> tuple[LoadedFile[Any] | None, list[Problem]]:
    """Validate a loaded YAML document against the model its ``kind`` names.

    A document that does not validate gives its problems and, when its name
    is valid, a partial model (:func:`_partial`) for the checks that need
    only its valid fields.
    """
    data = doc.data
    kind = data.get("kind")
    model = model_for_kind(kind)
    if model is None:
        if "kind" not in data:
            return None, [
                doc.problem((), "required key 'kind' is missing (App or Region)", field="kind")
            ]
        return None, [
            doc.problem(("kind",), f"unknown kind {shown_value(kind)}: expected App or Region")
        ]
    try:
        return LoadedFile(doc=doc, model=model.model_validate(data)), []
    except ValidationError as exc:
        problems = problems_from_validation(doc, model, exc)
        partial, more = _partial(doc, model, exc)
        return partial, problems + more


@lru_cache(maxsize=64)
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


def _partial(
    doc: YamlDocument, model: type[AppManifest] | type[RegionProfile], exc: ValidationError
) -> tuple[LoadedFile[Any] | None, list[Problem]]:
    """The fields of an invalid document that are valid, as a partial model.

    Unknown keys are left out; a field with any other error is not intact.
    The model's own checks across fields run again when the fields they read
    are intact (pydantic skips them once a field fails), so their problems
    come in the same round.
    """
    errors = exc.errors(include_url=False)
    if any(not error["loc"] for error in errors):
        return None, []  # every field was valid: only a check across fields failed
    broken = {str(e["loc"][0]) for e in errors if e["type"] != "extra_forbidden"}
    values: dict[str, Any] = {}
    intact: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in broken or name in broken:
            continue
        if key in doc.data:
            try:
                values[name] = _field_adapter(model, name).validate_python(doc.data[key])
            except ValidationError:
                continue  # not expected (pydantic reported no error here); not intact then
        intact.add(name)
    if "name" not in intact:
        return None, []  # nothing could refer to it
    partial = model.model_construct(**values)
    problems: list[Problem] = []
    try:
        problem = consistency_problem(partial)
    except AttributeError:  # it reads a field that is not intact
        problem = None
    if problem:
        problems.append(doc.problem((), problem, field=""))
    return LoadedFile(doc=doc, model=partial, intact=frozenset(intact)), problems


# A file loaded: its model (valid, or partial: see LoadedFile), or None, and its problems.
Loading = tuple["LoadedFile[Any] | None", list[Problem]]


def load_file(
    path: Path, *, documents: ContentMemo | None = None, raw: bytes | None = None
) -> Loading:
    """Load and validate one file: a valid model, a partial one (see LoadedFile), or None.

    ``documents``: YAML data already read from the same bytes (see :func:`load_yaml`).
    ``raw``: the file's bytes, read already (else the file is read).
    """
    try:
        doc = load_yaml(path, display=display_path(path), memo=documents, raw=raw)
    except InvalidInputError as exc:
        return None, exc.problems
    return parse_document(doc)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version as a sort key: numbers compare as numbers (1.10 after 1.9)."""
    import re

    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.+-]", version)
    )


VERSIONS_FOLDER = "versions"


def _add_version(catalog: Catalog, loaded: LoadedFile[Any]) -> None:
    """An older version's manifest: ``manifests/versions/<app>/<version>.yaml``."""
    model = loaded.model
    doc = loaded.doc
    if not isinstance(model, AppManifest):
        catalog.problems.append(
            doc.problem(("kind",), f"{VERSIONS_FOLDER}/ holds older versions of app manifests")
        )
        return
    if loaded.intact is not None:
        return  # its problems are reported; an invalid older version is never used
    folder = doc.path.parent.name
    if model.name != folder or doc.path.stem != model.version:
        catalog.problems.append(
            doc.problem(
                ("version",),
                f"an older version of '{model.name}' {model.version} belongs in "
                f"{VERSIONS_FOLDER}/{model.name}/{model.version}{doc.path.suffix}",
            )
        )
        return
    versions = catalog.versions.setdefault(model.name, {})
    if model.version in versions:
        first = versions[model.version].doc.display
        catalog.problems.append(
            doc.problem(("version",), f"version {model.version} is already in {first}")
        )
        return
    versions[model.version] = loaded


def _add(catalog: Catalog, loaded: LoadedFile[Any]) -> None:
    model = loaded.model
    doc = loaded.doc
    if doc.path.parent.parent.name == VERSIONS_FOLDER:
        _add_version(catalog, loaded)
        return
    if loaded.intact is not None:
        if isinstance(model, AppManifest):
            catalog.partial_apps.setdefault(model.name, loaded)
        else:
            catalog.partial_regions.append(loaded)
        return
    table: dict[str, Any] = catalog.apps if isinstance(model, AppManifest) else catalog.regions
    if model.name in table:
        first = table[model.name].doc.display
        catalog.problems.append(
            doc.problem(("name",), f"'{model.name}' is already defined in {first}")
        )
        return
    table[model.name] = loaded
    stem = doc.path.stem
    if stem != model.name:
        catalog.problems.append(
            doc.problem(
                ("name",),
                f"the file is named '{doc.path.name}' but declares '{model.name}'; "
                f"name it {model.name}{doc.path.suffix}",
                severity=Severity.WARNING,
            )
        )


def load_catalog(
    root: Path,
    *,
    extra_files: Iterable[Path] = (),
    documents: ContentMemo | None = None,
    contents: Mapping[Path, bytes] | None = None,
    loaded: Mapping[Path, Loading] | None = None,
    listed: Sequence[Path] | None = None,
) -> Catalog:
    """Load every manifest and profile under ``root/manifests`` (plus ``extra_files``).

    Problems are collected, not raised: ``validate`` reports them all at once.
    ``documents``: see :func:`load_file`.  ``contents``: files' bytes read
    already, by path (a file not there is read).  ``loaded``: what
    :func:`load_file` gave for those bytes, by path, when a file was loaded
    already.  ``listed``: the files :func:`iter_yaml_files` would find under
    ``root/manifests``, when the caller has listed them already.
    """
    catalog = Catalog(root=root)
    files = list(listed) if listed is not None else iter_yaml_files([root / "manifests"])
    extra = list(extra_files)
    if extra:
        known = {p.resolve() for p in files}
        files += [p for p in extra if p.resolve() not in known]
    # Loading keeps every node graph alive (for locating problems) and makes no
    # reference cycles, so the collector's full passes over them are wasted:
    # they cost a third of a large catalogue's validation.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            done = loaded.get(path) if loaded is not None else None
            if done is None:
                raw = contents.get(path) if contents is not None else None
                done = load_file(path, documents=documents, raw=raw)
            model, problems = done
            catalog.problems.extend(problems)
            if model is not None:
                _add(catalog, model)
    finally:
        if collecting:
            gc.enable()
    for name, versions in catalog.versions.items():
        current = catalog.apps.get(name)
        if current is not None and current.model.version in versions:
            older = versions.pop(current.model.version)
            catalog.problems.append(
                older.doc.problem(
                    ("version",),
                    f"version {current.model.version} is the current one "
                    f"({current.doc.display}): {VERSIONS_FOLDER}/ holds older versions",
                )
            )
    return catalog


def load_region_file(path: Path) -> LoadedFile[RegionProfile]:
    """Load one region profile given on the command line; raise when it is not valid.

    A path that names no readable file is a wrong command line (UsageError);
    a file that is not a valid profile is invalid input.
    """
    hint = "pass --region with the path of a region profile (manifests/regions/*.yaml)"
    if not path.exists():
        raise UsageError(f"region profile {path} does not exist", hint=hint)
    if not path.is_file():
        raise UsageError(f"region profile {path} is not a file", hint=hint)
    try:
        path.open("rb").close()
    except OSError as exc:
        raise UsageError(
            f"region profile {path} cannot be read: {exc.strerror or exc}", hint=hint
        ) from None
    loaded, problems = load_file(path)
    if loaded is None or loaded.intact is not None or not isinstance(loaded.model, RegionProfile):
        if not problems and loaded is not None:
            problems = [loaded.doc.problem(("kind",), "expected a region profile (kind: Region)")]
        raise InvalidInputError(
            f"region profile {display_path(path)} is not valid",
            hint="run 'smartshare validate' on it for details",
            problems=problems,
        )
    return loaded
