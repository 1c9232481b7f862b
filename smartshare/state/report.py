"""``report``: one adoption record per adopted app, for the owners of the apps.

The JSON document has a versioned schema (``smartshare schema report``,
:data:`REPORT_SCHEMA`), so that an owner can collect the records of many
regions. ``publiccode`` is the ``usedBy`` entries for each app's
``publiccode.yml``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartshare import __version__
from smartshare.errors import UsageError
from smartshare.state.lockfile import LOCK_NAME, LockedApp, read_lock

REPORT_SCHEMA: Literal["smartshare/report-v1"] = "smartshare/report-v1"


class _ReportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ReportRegion(_ReportModel):
    """The adopting region."""

    name: str = Field(description="The region's name in its profile (e.g. badung).")
    title: str = Field(description="Its full name (e.g. Kabupaten Badung).")
    code: str = Field(description="Its Kemendagri code (PP or PP.KK).")


class ReportImage(_ReportModel):
    name: str = Field(description="The image's name in the manifest.")
    tags: list[str] = Field(description="Its tags in the region.")
    image_id: str | None = Field(description="The image id the region built (sha256:...).")
    digest: str | None = Field(description="Its registry digest, when it was pushed.")


class ReportApp(_ReportModel):
    """One adopted app."""

    app: str
    version: str
    commit: str = Field(description="The source commit built (40 hex digits).")
    source: str = Field(description="The source repository (without credentials).")
    images: list[ReportImage]
    adopted_at: str = Field(description="When the region first adopted the app (ISO 8601).")
    last_upgraded_at: str | None = Field(
        description="When its version last changed (upgrade or rollback); null: never."
    )
    local_patches: int = Field(ge=0, description="How many patches the region applies.")
    needs_attention: bool = Field(description="An upgrade waits for conflicts to be resolved.")


class AdoptionReport(_ReportModel):
    """What a region adopted, one record per app (smartshare report --format json)."""

    schema_: Literal["smartshare/report-v1"] = Field(alias="schema")
    generated_at: str = Field(description="When the report was made (ISO 8601, UTC).")
    smartshare_version: str
    region: ReportRegion
    apps: list[ReportApp]

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _record(name: str, entry: LockedApp) -> ReportApp:
    return ReportApp(
        app=name,
        version=entry.version,
        commit=entry.source.commit,
        source=entry.source.url,
        images=[
            ReportImage(name=i.name, tags=list(i.tags), image_id=i.image_id, digest=i.digest)
            for i in entry.images
        ],
        adopted_at=entry.first_adopted_at
        or min([entry.adopted_at, *(h.adopted_at for h in entry.history)]),
        last_upgraded_at=entry.upgraded_at,
        local_patches=len(entry.patches),
        needs_attention=entry.attention is not None,
    )


def adoption_report(*, workspace: Path) -> AdoptionReport:
    """The records of every app adopted in ``workspace``; UsageError without a lock."""
    if not (workspace / LOCK_NAME).is_file():
        raise UsageError(
            f"{workspace} has no {LOCK_NAME}: nothing was adopted there",
            hint="adopt apps first: smartshare adopt APP --region FILE --workspace DIR",
        )
    lock = read_lock(workspace)
    if lock.region is None:
        raise UsageError(f"{workspace}: the lock names no region", hint="adopt an app first")
    return AdoptionReport(
        schema=REPORT_SCHEMA,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        smartshare_version=__version__,
        region=ReportRegion(name=lock.region.name, title=lock.region.title, code=lock.region.code),
        apps=[_record(name, lock.apps[name]) for name in sorted(lock.apps)],
    )


def publiccode_used_by(report: AdoptionReport) -> str:
    """Each app's ``usedBy`` entry, as YAML (the region's name is quoted as YAML needs)."""
    import yaml

    document = {a.app: {"usedBy": [report.region.title]} for a in report.apps}
    header = (
        "# usedBy entries for each adopted app's publiccode.yml (smartshare report)\n"
        "# add the region to the list under usedBy in the app's publiccode.yml\n"
    )
    body: str = yaml.safe_dump(document, allow_unicode=False, sort_keys=True, width=1000)
    return header + body


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`AdoptionReport`."""
    schema: dict[str, Any] = AdoptionReport.model_json_schema(by_alias=True, mode="serialization")
    return schema
