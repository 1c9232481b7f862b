"""The app manifest's model, and what both file formats of a catalogue share.

The region profile is in :mod:`smartshare.catalog.profile`.  Both are
pydantic v2 models with ``extra="forbid"``: an unknown key is an error, never
silently ignored.  Patterns live in ``Field(pattern=...)`` so that the JSON
Schema printed by ``smartshare schema`` checks the same things.  Checks that
need more than one file (requires, region values, templates) live in
:mod:`smartshare.catalog.checks` and the modules it names.
"""

from __future__ import annotations

import re
from enum import StrEnum
from types import SimpleNamespace
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from smartshare.catalog.buildsettings import BUILD_PATTERN_HINTS
from smartshare.catalog.diagnostics import shown_value
from smartshare.catalog.paramtypes import (
    CONSTRAINT_NAMES,
    EMAIL_PATTERN,
    PROPERTY_NAME_PATTERN,
    PropertySpec,  # noqa: F401  (Parameter inherits a field naming it: pydantic resolves it here)
    ValueProblem,
    ValueSpec,
    value_problem,
)
from smartshare.catalog.rules import (
    COMMIT_PATTERN,
    IMAGE_NAME_PATTERN,
    MAX_ASSET_KB,
    VERSION_PATTERN,
    git_url_problem,
    ref_problem,
    relative_path_problem,
    spdx_problem,
    version_problem,
)
from smartshare.catalog.runtime import (
    RUNTIME_PATTERN_HINTS,
    Runtime,
)

API_VERSION = "smartshare/v1"

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
PARAM_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
REGION_CODE_PATTERN = r"^[0-9]{2}(\.[0-9]{2})?$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"
DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
REGISTRY_PATTERN = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
SECRET_REFERENCE_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$"  # noqa: S105 - a pattern, not a secret
FILE_REFERENCE_PATTERN = r"^file:.+$"
# A template's JSON Schema: in the app's source tree, or in the catalogue's templates/.
OUTPUT_SCHEMA_PATTERN = r"^(source|catalog):.+$"

# Human wording for the patterns above, used when a value does not match.
PATTERN_HINTS: dict[str, str] = {
    SLUG_PATTERN: "a slug: 2-40 characters, lowercase letters, digits and '-', "
    "starting with a letter",
    PARAM_NAME_PATTERN: "an identifier: lowercase letters, digits and '_', "
    "not starting with a digit",
    IMAGE_NAME_PATTERN: "an image name: lowercase letters and digits, separated by '.', '_' or '-'",
    COMMIT_PATTERN: "a full commit id: 40 lowercase hexadecimal digits",
    LANGUAGE_PATTERN: "a language code such as 'en' or 'id'",
    REGION_CODE_PATTERN: "a Kemendagri code 'PP' or 'PP.KK', e.g. \"51.03\" (quote it)",
    LOCALE_PATTERN: "a BCP 47 locale such as 'id-ID'",
    DOMAIN_PATTERN: "a lowercase domain name such as 'badungkab.go.id'",
    REGISTRY_PATTERN: "a registry and namespace such as 'registry.example.go.id/apps' (lowercase)",
    EMAIL_PATTERN: "an email address",
    PROPERTY_NAME_PATTERN: "a key: letters, digits, '_' and '-', not starting with a digit",
    COLOR_PATTERN: "a colour '#RRGGBB' (quote it: '#' starts a YAML comment)",
    SECRET_REFERENCE_PATTERN: "a secret reference 'env:NAME' or 'file:PATH'",
    FILE_REFERENCE_PATTERN: "a file next to the profile, 'file:PATH'",
    OUTPUT_SCHEMA_PATTERN: "'source:PATH' (in the app's source tree) or 'catalog:PATH' "
    "(under the catalogue's templates/)",
    **RUNTIME_PATTERN_HINTS,
    **BUILD_PATTERN_HINTS,
}


class StrictModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=False, defer_build=True
    )


Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
LocalizedText = Annotated[
    dict[Annotated[str, Field(pattern=LANGUAGE_PATTERN)], NonEmptyStr],
    Field(min_length=1, description="Text by language code, e.g. {en: ..., id: ...}"),
]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN)]


def _safe_relative(value: str) -> str:
    problem = relative_path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


RelativePath = Annotated[str, Field(min_length=1)]


class Maturity(StrEnum):
    CONCEPT = "concept"
    DEVELOPMENT = "development"
    BETA = "beta"
    STABLE = "stable"
    OBSOLETE = "obsolete"


class TemplateTarget(StrEnum):
    IMAGE = "image"
    RUNTIME = "runtime"


class OutputFormat(StrEnum):
    JSON = "json"
    YAML = "yaml"


class AssetType(StrEnum):
    PNG = "png"
    SVG = "svg"
    ICO = "ico"


class Owner(StrictModel):
    name: NonEmptyStr
    region_code: Annotated[str, Field(pattern=REGION_CODE_PATTERN)]
    contact: NonEmptyStr = Field(description="Email address or URL of the owning team")


class Source(StrictModel):
    repo: NonEmptyStr = Field(
        description="https://, ssh://, git@host:path, or a local path / file:// URL"
    )
    ref: NonEmptyStr = Field(description="Tag or branch to fetch")
    commit: Annotated[str, Field(pattern=COMMIT_PATTERN)] | None = Field(
        default=None, description="Pinned commit: the ref must resolve to it"
    )

    @field_validator("repo")
    @classmethod
    def _repo_allowed(cls, value: str) -> str:
        problem = git_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("ref")
    @classmethod
    def _ref_well_formed(cls, value: str) -> str:
        problem = ref_problem(value)
        if problem:
            raise ValueError(
                f"{shown_value(value)} is not a valid git tag or branch name: {problem}"
            )
        return value


class Image(StrictModel):
    name: Annotated[str, Field(pattern=IMAGE_NAME_PATTERN, max_length=128)]
    context: RelativePath = "."
    dockerfile: RelativePath = "Dockerfile"
    target: NonEmptyStr | None = None
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )

    @field_validator("context", "dockerfile")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value == ".":
            return value
        return _safe_relative(value)


# A parameter's value: JSON's kinds of data (lists and objects for the types that take them).
ParameterValue = JsonValue


# A profile's ``apps.<app>.external`` says the region runs that app itself.
EXTERNAL_KEY = "external"
# A profile's ``apps.<app>.patches`` lists the region's patches to the app's source.
PATCHES_KEY = "patches"


_SPEC_FIELDS = frozenset(ValueSpec.model_fields)


class Parameter(ValueSpec):
    """A setting an adopting region may give: a name, a type (:class:`ValueSpec`) and a default."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=False, defer_build=True
    )
    dump_when_unset: ClassVar[frozenset[str]] = frozenset({"choices"})  # as it always was

    name: Annotated[str, Field(pattern=PARAM_NAME_PATTERN)]
    required: bool = False
    default: ParameterValue = None
    secret: bool = False
    description: str = ""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == EXTERNAL_KEY:
            raise ValueError(
                f"'{EXTERNAL_KEY}' is reserved: a region profile's apps.<app>.{EXTERNAL_KEY} "
                "gives the outputs of an app the region runs itself"
            )
        if value == PATCHES_KEY:
            raise ValueError(
                f"'{PATCHES_KEY}' is reserved: a region profile's apps.<app>.{PATCHES_KEY} "
                "lists the region's patches to the app's source"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if not self.secret:
            return self
        if self.default is not None:
            raise ValueError(
                "a secret parameter cannot have a default: the value would be published "
                "in the manifest"
            )
        given = [name for name in CONSTRAINT_NAMES if getattr(self, name) is not None]
        if given:
            raise ValueError(
                f"a secret parameter takes no '{given[0]}': a region gives it as a reference "
                "(env:NAME, file:PATH), and its value is never checked nor shown"
            )
        return self

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: ParameterValue, info: ValidationInfo) -> ParameterValue:
        # Here rather than in _consistent, so that the problem is located at the default.
        # The type and its constraints are validated before it (ValueSpec's fields come
        # first); one that failed is not in info.data, and the default is not judged.
        data = info.data
        if value is None or not data.keys() >= _SPEC_FIELDS or "name" not in data:
            return value
        # The spec's fields as validated so far: what value_problem reads (attributes),
        # without building a model for each parameter of every manifest.
        spec = cast(ValueSpec, SimpleNamespace(**{k: data[k] for k in _SPEC_FIELDS}))
        problem = value_problem(spec, value)
        if problem:
            raise ValueError(problem.explain(data["name"], spec))
        return value

    def value_problem(self, value: Any) -> ValueProblem | None:
        """Why ``value`` does not fit this parameter, or None (the one check of a value)."""
        return value_problem(self, value)


class TemplateSpec(StrictModel):
    src: RelativePath = Field(description="Template path relative to the catalogue's templates/")
    dest: RelativePath = Field(
        description="Output path, relative to the app's source tree (image) "
        "or to its runtime folder (runtime)"
    )
    target: TemplateTarget = TemplateTarget.IMAGE
    # `schema` is a method of pydantic's BaseModel: the field is named otherwise.
    output_schema: Annotated[str, Field(pattern=OUTPUT_SCHEMA_PATTERN)] | None = Field(
        default=None,
        alias="schema",
        description="JSON Schema the rendered output must satisfy: source:PATH (in the app's "
        "source tree) or catalog:PATH (under the catalogue's templates/)",
    )
    format: OutputFormat | None = Field(
        default=None,
        description="How to read the output for 'schema' (default: by the dest's extension)",
    )

    @field_validator("src", "dest")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _safe_relative(value)

    @field_validator("output_schema")
    @classmethod
    def _schema_path(cls, value: str | None) -> str | None:
        if value is not None:
            _safe_relative(value.partition(":")[2])
        return value

    @model_validator(mode="after")
    def _format_known(self) -> TemplateSpec:
        if self.output_schema is None:
            if self.format is not None:
                raise ValueError("'format' says how to read the output for 'schema': give both")
        elif self.output_format is None:
            raise ValueError(
                f"cannot tell how to read '{self.dest}' for its schema: give 'format' "
                "(json or yaml), or a dest ending in .json, .yaml or .yml"
            )
        return self

    @property
    def output_format(self) -> OutputFormat | None:
        """How the output is read for its schema: ``format``, else by the dest's extension."""
        if self.format is not None:
            return self.format
        suffix = self.dest.rpartition(".")[2].lower() if "." in self.dest else ""
        return {"json": OutputFormat.JSON, "yaml": OutputFormat.YAML, "yml": OutputFormat.YAML}.get(
            suffix
        )


class Asset(StrictModel):
    """A binary file the adopting region supplies (a logo, an icon)."""

    name: Annotated[str, Field(pattern=PARAM_NAME_PATTERN)]
    types: Annotated[list[AssetType], Field(min_length=1)] = Field(
        description="Allowed file types, checked by content: png, svg, ico"
    )
    max_kb: Annotated[int, Field(ge=1, le=MAX_ASSET_KB)] = 512
    dest: RelativePath = Field(
        description="Where the file goes, relative to the app's source tree (image) or its "
        "runtime folder (runtime); '{type}' is replaced by the file's type"
    )
    target: TemplateTarget = TemplateTarget.IMAGE
    required: bool = False
    description: str = ""

    @field_validator("dest")
    @classmethod
    def _relative(cls, value: str) -> str:
        _safe_relative(value.replace("{type}", "png"))
        return value

    @field_validator("types")
    @classmethod
    def _once_each(cls, value: list[AssetType]) -> list[AssetType]:
        if len(set(value)) != len(value):
            raise ValueError("a type is listed twice")
        return value

    def dest_for(self, kind: AssetType) -> str:
        """``dest`` for a file of type ``kind``."""
        return self.dest.replace("{type}", kind.value)


class AppManifest(StrictModel):
    """An app that a region shares (``kind: App``)."""

    api_version: Literal["smartshare/v1"] = Field(alias="apiVersion")
    kind: Literal["App"]
    name: Slug
    title: NonEmptyStr
    summary: LocalizedText
    description: LocalizedText | None = None
    owner: Owner
    category: Annotated[str, Field(pattern=SLUG_PATTERN)]
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list)
    license: NonEmptyStr = Field(description="SPDX identifier or expression")
    version: NonEmptyStr = Field(
        description='Version of the app, quoted: "1.10"',
        json_schema_extra={"pattern": VERSION_PATTERN},
    )
    maturity: Maturity
    source: Source
    images: Annotated[list[Image], Field(min_length=1)]
    parameters: list[Parameter] = Field(default_factory=list)
    templates: list[TemplateSpec] = Field(default_factory=list)
    assets: list[Asset] = Field(
        default_factory=list, description="Binary files the adopting region supplies"
    )
    requires: list[Slug] = Field(default_factory=list)
    runtime: Runtime | None = Field(
        default=None, description="How the app runs: services, jobs and outputs (for deploy)"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("license")
    @classmethod
    def _spdx(cls, value: str) -> str:
        problem = spdx_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        problem = version_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AppManifest:
        problem = app_consistency_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def asset(self, name: str) -> Asset | None:
        return next((a for a in self.assets if a.name == name), None)


def app_consistency_problem(model: AppManifest) -> str | None:
    """What is wrong across the fields of a manifest, or None.

    Also run on a partial model by ``validate`` (through
    :func:`smartshare.catalog.profile.consistency_problem`).
    """
    for label, names in (
        ("parameter", [p.name for p in model.parameters]),
        ("image", [i.name for i in model.images]),
        ("asset", [a.name for a in model.assets]),
        (
            "template or asset dest",
            [f"{t.target.value}:{t.dest}" for t in model.templates]
            + [
                f"{a.target.value}:{dest}"
                for a in model.assets
                for dest in dict.fromkeys(a.dest_for(k) for k in a.types)
            ],
        ),
    ):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                return f"{label} '{name}' is declared twice"
            seen.add(name)
    if model.name in model.requires:
        return "an app cannot require itself"
    return None


def is_secret_reference(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(SECRET_REFERENCE_PATTERN, value) is not None
