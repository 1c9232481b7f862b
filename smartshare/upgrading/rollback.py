"""``rollback``: return an app to an earlier adoption, from its baseline and its images.

The earlier adoption's full lock entry is in its baseline's record
(:mod:`smartshare.state.baseline`): its source is exported again from the git
cache at the recorded commit with the patches the baseline kept, its
rendered files are written as that adoption wrote them, and its images are
found by the recorded id in the engine (or pulled by the recorded digest)
and tagged as the app's tags again. As with adopt, everything is prepared in
scratch space and swapped in at the end; the entry it replaces goes into the
history (:mod:`smartshare.state.history`), so a second rollback goes forward
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.errors import (
    InvalidInputError,
    SmartshareError,
    UsageError,
    WorkspaceError,
)
from smartshare.state import baseline, history
from smartshare.state import workspace as ws
from smartshare.state.lockfile import LockedApp, LockedImage, read_lock, write_lock

if TYPE_CHECKING:
    from smartshare.building.engine import DockerEngine
    from smartshare.fetching.mirror import ResolvedRef
    from smartshare.settings import Settings


class HandEditsError(InvalidInputError):
    """Rendered files were edited since the adoption a rollback would replace (without --force)."""


class ImageGoneError(InvalidInputError):
    """An image of the adoption to return to is neither in the engine nor in a registry."""


@dataclass(frozen=True)
class RestoredImage:
    name: str
    image_id: str
    tags: list[str]
    source: str  # engine | registry

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image_id": self.image_id,
            "tags": self.tags,
            "from": self.source,
        }


@dataclass(frozen=True)
class RollbackResult:
    app: str
    workspace: Path
    from_adoption: str | None
    to_adoption: str
    from_version: str
    to_version: str
    commit: str
    images: list[RestoredImage] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # target:dest restored
    overwritten: list[str] = field(default_factory=list)  # hand edits replaced (--force)

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "workspace": str(self.workspace),
            "from": {"adoption_id": self.from_adoption, "version": self.from_version},
            "to": {"adoption_id": self.to_adoption, "version": self.to_version},
            "commit": self.commit,
            "images": [i.as_dict() for i in self.images],
            "files": self.files,
            "overwritten": self.overwritten,
        }


def rollback(
    *,
    app: str,
    workspace: Path,
    to: str | None = None,
    force: bool = False,
    docker_host: str | None = None,
) -> RollbackResult:
    """Return ``app`` to the adoption ``to`` (default: the one before the current one)."""
    from smartshare.settings import load_settings

    entry = _entry(workspace, app)
    target_id = _target(entry, app, to)
    if not baseline.has_baseline(workspace, app, target_id):
        raise UsageError(
            f"'{app}': the baseline of adoption {target_id} is gone (pruned or removed)",
            hint="'smartshare history' shows which adoptions can be returned to",
        )
    target = baseline.read_record(workspace, app, target_id).entry
    if target.attention is not None:
        raise UsageError(
            f"'{app}': adoption {target_id} ({target.version}) was left needing attention "
            "(conflict markers, no images built): it cannot be returned to",
            hint="roll back to another adoption ('smartshare history' lists them)",
        )
    edited = hand_edits(workspace, app, entry)
    if edited and not force:
        raise HandEditsError(
            f"'{app}': {', '.join(edited)} changed by hand since adoption "
            f"{entry.adoption_id}: a rollback would replace them",
            hint="copy what you want to keep, then roll back with --force",
        )
    settings = load_settings()
    engine: DockerEngine | None = None
    built = target.built and any(i.image_id for i in target.images)
    try:
        if built:
            from smartshare.building.engine import connect

            engine = connect(docker_host=docker_host)
        with ws.run_lock(workspace):
            lock = read_lock(workspace)
            if lock.apps.get(app) != entry:
                raise UsageError(
                    f"'{app}' changed while the rollback was prepared", hint="run it again"
                )
            ws.reset_scratch(workspace)
            images = _images(engine, app, target) if engine is not None else []
            scratch = ws.new_scratch(workspace, app)
            try:
                _restore_source(workspace, app, target, scratch, settings, lock.region)
                files = _restore_files(workspace, app, target, scratch)
                restored = target.model_copy(deep=True)
                found = {i.name: i for i in images}
                restored.images = [_found(i, found.get(i.name)) for i in target.images]
                assert engine is not None or not images
                for image in images:
                    for tag in image.tags:
                        engine.tag(image.image_id, tag)  # type: ignore[union-attr]
                ws.swap_in(scratch / "src", ws.src_dir(workspace, app))
                ws.swap_in(scratch / "runtime", ws.runtime_dir(workspace, app))
                dropped = history.succeed(entry, restored)
                if restored.version != entry.version:
                    restored.upgraded_at = datetime.now(UTC).isoformat(timespec="seconds")
                lock.apps[app] = restored
                write_lock(workspace, lock)
            finally:
                ws.discard(scratch)
            history.prune(workspace, app, dropped)
    finally:
        if engine is not None:
            engine.close()
    return RollbackResult(
        app=app,
        workspace=workspace,
        from_adoption=entry.adoption_id,
        to_adoption=target_id,
        from_version=entry.version,
        to_version=target.version,
        commit=target.source.commit,
        images=images,
        files=files,
        overwritten=edited,
    )


def _entry(workspace: Path, app: str) -> LockedApp:
    entry = read_lock(workspace).apps.get(app)
    if entry is None:
        raise UsageError(
            f"'{app}' is not adopted in {workspace}: there is nothing to roll back",
            hint="'smartshare status --workspace DIR' lists the adopted apps",
        )
    return entry


def _target(entry: LockedApp, app: str, to: str | None) -> str:
    listed = [item.adoption_id for item in entry.history]
    if to is None:
        if not listed:
            raise UsageError(
                f"'{app}' has no earlier adoption to return to",
                hint="'smartshare history APP --workspace DIR' lists its adoptions",
            )
        return listed[0]
    if to == entry.adoption_id:
        raise UsageError(f"'{app}': adoption {to} is the current one")
    if to not in listed:
        from smartshare.catalog.diagnostics import shown_value

        raise UsageError(
            f"'{app}' has no earlier adoption {shown_value(to)}",
            hint=f"its earlier adoptions: {', '.join(listed) or 'none'}",
        )
    return to


def hand_edits(workspace: Path, app: str, entry: LockedApp) -> list[str]:
    """The rendered files (``target:dest``) that differ from what ``entry``'s adoption wrote.

    Files an upgrade left with conflict markers are no hand edits: a rollback
    of an app that needs attention abandons that upgrade.
    """
    from smartshare.state.safefs import confined_path

    key = ws.read_key(workspace)
    exempt = set(entry.attention.files) if entry.attention is not None else set()
    kept = baseline.has_baseline(workspace, app, entry.adoption_id)
    roots = {"image": ws.src_dir(workspace, app), "runtime": ws.runtime_dir(workspace, app)}
    edited = []
    for f in entry.files:
        shown = f"{f.target}:{f.dest}"
        if shown in exempt:
            continue
        try:
            data: bytes | None = confined_path(roots[f.target], f.dest).read_bytes()
        except (OSError, SmartshareError):
            data = None
        written = (
            baseline.read_written(workspace, app, entry.adoption_id or "", f.target, f.dest)
            if kept
            else None
        )
        if written is not None:
            same = data == written
        else:
            runtime = f.target == "runtime"
            same = (
                data is not None and ws.file_digest(data, key=key if runtime else None) == f.digest
            )
        if not same:
            edited.append(shown)
    return edited


def _images(engine: DockerEngine, app: str, target: LockedApp) -> list[RestoredImage]:
    """Each image of ``target`` in the engine: found by id, else pulled by digest."""
    from smartshare.building.push import split_reference

    images = []
    for image in target.images:
        if not image.image_id:
            continue
        if engine.image_id(image.image_id) == image.image_id:
            images.append(RestoredImage(image.name, image.image_id, list(image.tags), "engine"))
            continue
        if image.digest and image.pushed:
            repository = split_reference(image.pushed[0])[0]
            pulled = engine.pull(f"{repository}@{image.digest}")
            images.append(RestoredImage(image.name, pulled, list(image.tags), "registry"))
            continue
        raise ImageGoneError(
            f"'{app}': image {image.name} of {target.version} (id {image.image_id[:19]}) is no "
            "longer in the Docker engine and was never pushed, so it cannot be pulled by digest",
            hint=f"adopt that version again instead (smartshare upgrade {app} --to "
            f"{target.version} --region FILE --workspace DIR), or roll back to another adoption",
        )
    return images


def _found(image: LockedImage, restored: RestoredImage | None) -> LockedImage:
    kept = image.model_copy(deep=True)
    if restored is not None:
        kept.image_id = restored.image_id
    return kept


def _restore_source(
    workspace: Path,
    app: str,
    target: LockedApp,
    scratch: Path,
    settings: Settings,
    region: Any,
) -> None:
    """``scratch/src``: the recorded commit from the git cache, with the kept patches applied."""
    from smartshare.cache import default_cache_dir
    from smartshare.errors import GitError
    from smartshare.fetching.export import export_tree
    from smartshare.fetching.patching import apply_patches

    manifest = baseline.read_record(workspace, app, target.adoption_id or "").manifest
    source = manifest.get("source") or {}
    cache_dir = settings.cache_dir or default_cache_dir()
    resolved = _cached(source, target, cache_dir)
    try:
        export_tree(resolved=resolved, dest=scratch / "src")
    except GitError:
        # Not in the cache any more: fetched again, pinned to the recorded commit.
        from smartshare.fetching.mirror import resolve_ref

        resolved = resolve_ref(
            url=str(source.get("repo", "")),
            ref=target.source.ref,
            commit=target.source.commit,
            cache_dir=cache_dir,
            rewrites=settings.source_rewrites,
            credentials=settings.git_credentials,
        )
        export_tree(resolved=resolved, dest=scratch / "src")
    patches = _patches(workspace, app, target, region)
    work = scratch / "patching"
    work.mkdir(mode=0o700)
    apply_patches(resolved=resolved, tree=scratch / "src", patches=patches, work=work)


def _cached(source: dict[str, Any], target: LockedApp, cache_dir: Path) -> ResolvedRef:
    from smartshare.fetching.mirror import ResolvedRef, mirror_path

    return ResolvedRef(
        url=target.source.url,
        ref=target.source.ref,
        commit=target.source.commit,
        mirror=mirror_path(cache_dir=cache_dir, url=str(source.get("repo", ""))),
    )


def _patches(workspace: Path, app: str, target: LockedApp, region: Any) -> list[Any]:
    """The patches ``target`` applied: as its baseline kept them, else the profile's same files."""
    import hashlib

    from smartshare.catalog.patches import Patch

    patches = []
    for number, locked in enumerate(target.patches, start=1):
        content = baseline.read_patch(workspace, app, target.adoption_id or "", number)
        if content is None and region is not None:
            # A baseline from before patches were kept: the profile's file, if unchanged.
            try:
                candidate = (Path(region.file).parent / locked.path).read_bytes()
            except OSError:
                candidate = b""
            if "sha256:" + hashlib.sha256(candidate).hexdigest() == locked.digest:
                content = candidate
        if content is None:
            raise UsageError(
                f"'{app}': patch {locked.path} of adoption {target.adoption_id} is not kept",
                hint="adopt that version again instead: smartshare upgrade APP --to VERSION",
            )
        patches.append(Patch(name=locked.path, content=content, digest=locked.digest))
    return patches


def _restore_files(workspace: Path, app: str, target: LockedApp, scratch: Path) -> list[str]:
    """Each rendered file of ``target`` as that adoption wrote it, into ``scratch``."""
    from smartshare.state.safefs import atomic_write, confined_path

    runtime = scratch / "runtime"
    runtime.mkdir(mode=0o700)
    roots = {"image": (scratch / "src", 0o644), "runtime": (runtime, 0o600)}
    restored = []
    for f in target.files:
        content = baseline.read_written(workspace, app, target.adoption_id or "", f.target, f.dest)
        if content is None:
            raise WorkspaceError(
                f"'{app}': the baseline of adoption {target.adoption_id} lacks {f.target} file "
                f"{f.dest}",
                hint="roll back to another adoption, or adopt that version again",
            )
        root, mode = roots[f.target]
        path = confined_path(root, f.dest)
        path.parent.mkdir(
            mode=0o700 if f.target == "runtime" else 0o755, parents=True, exist_ok=True
        )
        atomic_write(path, content, mode=mode)
        restored.append(f"{f.target}:{f.dest}")
    return restored
