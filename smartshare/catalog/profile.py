"""The region profile's model (``kind: Region``): who adopts, with what values.

A pydantic v2 model with ``extra="forbid"``, like the app manifest's
(:mod:`smartshare.catalog.models`, which holds what both formats share).
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from smartshare.catalog.buildsettings import BuildSettings
from smartshare.catalog.diagnostics import shown_value
from smartshare.catalog.models import (
    COLOR_PATTERN,
    DOMAIN_PATTERN,
    EXTERNAL_KEY,
    FILE_REFERENCE_PATTERN,
    LOCALE_PATTERN,
    PARAM_NAME_PATTERN,
    PATCHES_KEY,
    REGION_CODE_PATTERN,
    REGISTRY_PATTERN,
    AppManifest,
    Email,
    NonEmptyStr,
    ParameterValue,
    Slug,
    StrictModel,
    app_consistency_problem,
)
from smartshare.catalog.rules import relative_path_problem
from smartshare.catalog.runtime import OUTPUT_NAME_PATTERN, DeploySettings


class RegionType(StrEnum):
    KOTA = "kota"
    KABUPATEN = "kabupaten"
    PROVINSI = "provinsi"


class Contact(StrictModel):
    name: NonEmptyStr | None = None
    email: Email
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ()-]{4,30}$")] | None = None


class Branding(StrictModel):
    logo: NonEmptyStr | None = Field(
        default=None,
        description="URL of the region's logo, or file:PATH (a file next to the profile, "
        "given to the apps that take a 'logo' asset)",
    )
    primary_color: Annotated[str, Field(pattern=COLOR_PATTERN)] | None = None
    secondary_color: Annotated[str, Field(pattern=COLOR_PATTERN)] | None = None
    motto: NonEmptyStr | None = None

    @field_validator("logo")
    @classmethod
    def _logo_file(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("file:"):
            _file_reference(value)
        return value


def _file_reference(value: str) -> str:
    problem = relative_path_problem(value.removeprefix("file:"), folder="the profile's folder")
    if problem:
        raise ValueError(f"{shown_value(value)}: the path {problem}")
    return value


FileReference = Annotated[
    str, Field(pattern=FILE_REFERENCE_PATTERN), AfterValidator(_file_reference)
]


class ExternalApp(StrictModel):
    """An app the region runs already: its outputs, instead of adopting it."""

    external: dict[Annotated[str, Field(pattern=OUTPUT_NAME_PATTERN)], NonEmptyStr] = Field(
        description="The app's outputs (runtime.outputs of its manifest), e.g. internal_url"
    )


AppValues = dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], ParameterValue]
# For editors: the key 'external' makes an entry an ExternalApp, never parameter values.
_AppValuesEntry = Annotated[
    AppValues, Field(json_schema_extra={"not": {"required": [EXTERNAL_KEY]}})
]


def _app_entry_kind(value: Any) -> str:
    if isinstance(value, ExternalApp) or (isinstance(value, dict) and EXTERNAL_KEY in value):
        return "<external>"
    return "<values>"


# Tags in <...>: the loader drops them from error locations (catalog.load).
AppEntry = Annotated[
    Annotated[ExternalApp, Tag("<external>")] | Annotated[_AppValuesEntry, Tag("<values>")],
    Discriminator(_app_entry_kind),
]


@lru_cache(maxsize=512)
def timezone_exists(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)+|UTC", name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class RegionProfile(StrictModel):
    """A region that adopts apps (``kind: Region``)."""

    api_version: Literal["smartshare/v1"] = Field(alias="apiVersion")
    kind: Literal["Region"]
    name: Slug
    title: NonEmptyStr
    type: RegionType
    code: Annotated[str, Field(pattern=REGION_CODE_PATTERN)]
    province: NonEmptyStr
    timezone: NonEmptyStr = Field(description="IANA time zone, e.g. Asia/Makassar")
    locale: Annotated[str, Field(pattern=LOCALE_PATTERN)] = "id-ID"
    domain: Annotated[str, Field(pattern=DOMAIN_PATTERN)]
    registry: Annotated[str, Field(pattern=REGISTRY_PATTERN)] | None = None
    contact: Contact
    branding: Branding = Field(default_factory=Branding)
    apps: dict[Slug, AppEntry] = Field(
        default_factory=dict,
        description="Per app: its parameter values, or 'external' with the outputs of an app "
        "the region runs itself",
    )
    deploy: DeploySettings = Field(
        default_factory=DeploySettings, description="Where and how the region runs its apps"
    )
    assets: dict[Slug, dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], FileReference]] = (
        Field(
            default_factory=dict,
            description="Files the region gives each app's assets: app, asset name, file:PATH "
            "(relative to the profile's folder)",
        )
    )
    build: BuildSettings = Field(
        default_factory=BuildSettings,
        description="How image builds reach the network: network, proxy, package indexes",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not timezone_exists(value):
            raise ValueError(
                f"unknown time zone {shown_value(value)}; Indonesia uses Asia/Jakarta, "
                "Asia/Pontianak, Asia/Makassar or Asia/Jayapura"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RegionProfile:
        problem = consistency_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def app_values(self, app: str) -> AppValues:
        """The parameter values the profile gives ``app`` (none for an external app).

        Its ``patches`` are no value (:mod:`smartshare.catalog.patches`).
        """
        entry = self.apps.get(app)
        if not isinstance(entry, dict):
            return {}
        return {k: v for k, v in entry.items() if k != PATCHES_KEY}

    def external_outputs(self) -> dict[str, dict[str, str]]:
        """The apps the region runs itself, with the outputs it gives for them."""
        return {
            name: dict(entry.external)
            for name, entry in self.apps.items()
            if isinstance(entry, ExternalApp)
        }


def consistency_problem(model: AppManifest | RegionProfile) -> str | None:
    """What is wrong across the fields of a manifest or profile, or None.

    The models' own check once their fields are valid; ``validate`` also
    runs it on a partial model, where reading a field that is not valid
    raises AttributeError.
    """
    if isinstance(model, AppManifest):
        return app_consistency_problem(model)
    parts = model.code.split(".")
    if model.type is RegionType.PROVINSI:
        if len(parts) != 1:
            return f"code '{model.code}': a provinsi code is 'PP' (two digits)"
    elif len(parts) != 2:
        return f"code '{model.code}': a {model.type.value} code is 'PP.KK'"
    else:
        number = int(parts[1])
        if model.type is RegionType.KOTA and not 71 <= number <= 99:
            return f"code '{model.code}': a kota is numbered 71-99 within its province"
        if model.type is RegionType.KABUPATEN and not 1 <= number <= 69:
            return f"code '{model.code}': a kabupaten is numbered 01-69 within its province"
    return None


def model_for_kind(kind: object) -> type[AppManifest] | type[RegionProfile] | None:
    if kind == "App":
        return AppManifest
    if kind == "Region":
        return RegionProfile
    return None
