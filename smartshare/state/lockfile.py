"""``WORKSPACE/smartshare.lock``: what was adopted, exactly, and nothing secret.

The lock records only what succeeded.  It is rewritten atomically after each
app finishes, so an interrupted run leaves it consistent, and the next run
carries on from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartshare.catalog.models import SLUG_PATTERN, ParameterValue
from smartshare.catalog.rules import relative_path_problem
from smartshare.errors import WorkspaceError

LOCK_NAME = "smartshare.lock"
# Raised whenever the lock gains a field, an optional one too: an older smartshare
# then says "written by a newer smartshare" instead of "not a lock file" (every
# model forbids keys it does not know).  Version 2 only added optional fields
# (render inputs, the deployment, the profile an app was adopted for, build
# arguments and settings, base images), so a version 1 lock reads as it is;
# version 3 added each app's history (state.history), first and upgrade times.
LOCK_VERSION = 3
# A lock of a thousand apps is a few MiB; anything far larger is not one.
MAX_LOCK_BYTES = 16 * 1024 * 1024


class _LockModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class LockedSource(_LockModel):
    url: str  # redacted
    ref: str
    commit: str


class LockedFile(_LockModel):
    dest: str
    target: str  # image | runtime
    # sha256 of image files; for runtime files (which may hold secrets) an
    # HMAC keyed by the workspace's own key, so the lock is no password oracle.
    digest: str

    @field_validator("dest")
    @classmethod
    def _inside_the_app(cls, value: str) -> str:
        # status and drift read WORKSPACE/apps/APP/src/DEST: an edited lock must
        # not point them elsewhere.
        problem = relative_path_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class LockedBase(_LockModel):
    """An image a stage of the Dockerfile started from, as the build had it."""

    name: str  # as the Dockerfile names it, ARGs substituted
    image_id: str | None = None
    pulled_from: str | None = None  # the reference pulled (a mirror's); None: the engine had it


class LockedImage(_LockModel):
    name: str
    image_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    digest: str | None = None  # registry digest, after --push
    pushed: list[str] = Field(default_factory=list)
    bases: list[LockedBase] = Field(default_factory=list)


class LockedBuild(_LockModel):
    """The region's build settings the images were last built with (credentials as ***)."""

    network: str = "default"
    args: dict[str, str] = Field(default_factory=dict)  # proxy and package-index arguments


class RenderInputs(_LockModel):
    """What the rendered files were made from, to skip rendering when nothing changed."""

    # HMAC (workspace key) of the render context, secrets included, and the
    # template specs and files below: equal digests mean equal renderings.
    digest: str
    # Every template file the rendering read or looked for: name -> sha256 (None: missing).
    templates: dict[str, str | None]


class LockedPatch(_LockModel):
    """A region patch applied to the source, as named in the profile (next to it)."""

    path: str
    digest: str  # sha256 of the patch file


class LockedAttention(_LockModel):
    """An upgrade left conflict markers: the app waits for ``upgrade --resolved``."""

    from_version: str
    to_version: str
    files: list[str] = Field(default_factory=list)  # rendered files (target:dest) with markers
    patches: list[str] = Field(default_factory=list)  # patches that left markers in the source
    source_files: list[str] = Field(default_factory=list)  # source files holding those markers
    since: str


class LockedHistoryImage(_LockModel):
    """An image of an earlier adoption: enough to find it again (by id, or by digest)."""

    name: str
    image_id: str | None = None
    digest: str | None = None  # registry digest, when it was pushed


class LockedAdoption(_LockModel):
    """An earlier adoption of an app (its full entry is in its baseline's record)."""

    adoption_id: str
    version: str
    commit: str
    images: list[LockedHistoryImage] = Field(default_factory=list)
    files_digest: str  # sha256 over the rendered files' (target, dest, digest)
    adopted_at: str
    attention: bool = False  # it needed attention when it was left: no rollback to it


class LockedApp(_LockModel):
    version: str
    manifest_digest: str
    source: LockedSource
    values: dict[str, ParameterValue | None]  # secrets as their references
    files: list[LockedFile]
    build_key: str
    built: bool
    images: list[LockedImage]
    adopted_at: str
    smartshare_version: str
    render_inputs: RenderInputs | None = None
    # The digest of the region profile the files are rendered for (as LockedRegion's):
    # a profile changed since then means adopting again before deploying.
    region_digest: str | None = None
    # Each image's build arguments as rendered (never secret: validate refuses them).
    build_args: dict[str, dict[str, str]] = Field(default_factory=dict)
    build: LockedBuild | None = None  # None: not built, or by a smartshare before builds had one
    # The region's patches, in the order applied (none before patches existed).
    patches: list[LockedPatch] = Field(default_factory=list)
    # The source tree as built: git's tree id of the commit with the patches applied.
    tree_digest: str | None = None
    # The baseline kept for this adoption (state.baseline): None before baselines existed.
    adoption_id: str | None = None
    # Set by an upgrade that left conflict markers; adopt and deploy refuse the app meanwhile.
    attention: LockedAttention | None = None
    # The earlier adoptions, newest first, at most state.history.HISTORY_LIMIT.
    history: list[LockedAdoption] = Field(default_factory=list)
    first_adopted_at: str | None = None  # when the app was first adopted (None: unknown)
    upgraded_at: str | None = None  # when its version last changed (upgrade or rollback)


def attention_note(name: str, entry: LockedApp) -> str | None:
    """What an app that needs attention waits for (None: it does not), for status and refusals."""
    attention = entry.attention
    if attention is None:
        return None
    where = [*attention.files, *attention.source_files]
    return (
        f"'{name}' needs attention: the upgrade {attention.from_version} -> "
        f"{attention.to_version} left conflict markers in {', '.join(where) or 'its files'}"
    )


def refuse_attention(lock: Lock, names: list[str] | tuple[str, ...], *, command: str) -> None:
    """UsageError (exit 2) when one of ``names`` needs attention: ``command`` waits for that."""
    from smartshare.errors import UsageError

    for name in names:
        entry = lock.apps.get(name)
        note = attention_note(name, entry) if entry is not None else None
        if note is not None:
            raise UsageError(
                f"{note}: {command} waits until they are resolved",
                hint=f"edit those files, then run: smartshare upgrade {name} --resolved "
                "--region FILE --workspace DIR",
            )


class LockedRegion(_LockModel):
    name: str
    title: str
    code: str
    file: str
    digest: str


class DeployedService(_LockModel):
    """A service or job as deployed: what it runs and the configuration it was created with."""

    kind: str  # service | job
    image: str  # the reference in the deploy file (an image id, or an external image)
    image_id: str | None = None  # what the engine ran
    config_hash: str | None = None  # the target's own fingerprint (compose's config-hash label)


class DeployedApp(_LockModel):
    public_port: int | None = None
    deployed_at: str
    services: dict[str, DeployedService] = Field(default_factory=dict)  # by stack name


class LockedDeployment(_LockModel):
    """What ``deploy`` last ran for the region, on which target."""

    target: str  # compose | swarm
    project: str
    file: str  # relative to the workspace
    # Digest of the deploy file of the last complete deploy; None while one is
    # under way or after one failed (the next deploy then runs in full).
    file_digest: str | None = None
    deployed_at: str | None = None
    apps: dict[str, DeployedApp] = Field(default_factory=dict)


class Lock(_LockModel):
    lock_version: Annotated[int, Field(strict=True, ge=1)] = LOCK_VERSION
    region: LockedRegion | None = None
    catalog: str | None = None
    apps: dict[Annotated[str, Field(pattern=SLUG_PATTERN)], LockedApp] = Field(default_factory=dict)
    deployment: LockedDeployment | None = None


def read_lock(workspace: Path) -> Lock:
    """The workspace's lock (an empty one when there is none yet).

    Raises WorkspaceError, naming the file, for anything that is not a lock
    this smartshare wrote: too large, not UTF-8, not JSON, nested without
    bound, not the lock's shape, or written by a newer smartshare.
    """
    path = workspace / LOCK_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path}: {exc.strerror or exc}") from None

    def unusable(reason: str) -> WorkspaceError:
        return WorkspaceError(
            f"{path} is not a smartshare lock file ({reason})",
            hint="move it away and run adopt again with --force to rebuild it",
        )

    if len(raw) > MAX_LOCK_BYTES:
        raise unusable(f"larger than {MAX_LOCK_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
        if "\\u" in text:  # an escaped lone surrogate would break every output later
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise unusable(f"not UTF-8 text: {exc.reason}") from None
    except UnicodeEncodeError:
        raise unusable("a string holds an invalid Unicode escape") from None
    except RecursionError:
        raise unusable("nested too deeply") from None
    except ValueError as exc:
        raise unusable(str(exc).splitlines()[0][:200]) from None
    version = data.get("lock_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_VERSION:
        from smartshare import __version__

        raise WorkspaceError(
            f"{path} was written by a newer smartshare (lock version {version}; "
            f"smartshare {__version__} reads version {LOCK_VERSION}): upgrade smartshare "
            "to use this workspace",
            hint="upgrade smartshare; this one leaves the lock as it is",
        )
    try:
        return Lock.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "the top level"
        raise unusable(f"{where[:200]}: {error['msg']}") from None


def write_lock(workspace: Path, lock: Lock) -> None:
    from smartshare.state.safefs import atomic_write_json

    # Always as this version, whatever version was read: an older lock is upgraded
    # by the first run that records something.  A run that changed nothing leaves
    # the lock as it was, mtime included.
    data = lock.model_dump(mode="json") | {"lock_version": LOCK_VERSION}
    atomic_write_json(workspace / LOCK_NAME, data, unless_unchanged=True)
