"""The adoption workspace: one folder per region, with a lock file.

Layout::

    WORKSPACE/
      smartshare.lock              what was adopted (see lockfile.py)
      apps/<app>/src/              the source tree with its image files rendered in
      runtime/<app>/               runtime files (folders 0700, files 0600): the only
                                   place for secrets, apart from every source tree
      deploy/                      what deploy writes: the deploy file, secrets/ (mode 0700)
      .smartshare/                 internal: the HMAC key, a run lock, scratch space

Every app is prepared under ``.smartshare/tmp`` and swapped into place only
when all its steps succeeded, so a failure or an interruption never leaves a
half-written app behind.  Workspaces made before ``runtime/<app>/`` kept the
runtime files in ``apps/<app>/runtime/``; the next adopt moves them
(:func:`move_runtime_folders`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartshare.errors import WorkspaceError
from smartshare.state.locking import exclusive_lock

INTERNAL = ".smartshare"


def app_dir(workspace: Path, app: str) -> Path:
    return workspace / "apps" / app


def src_dir(workspace: Path, app: str) -> Path:
    return app_dir(workspace, app) / "src"


def runtime_root(workspace: Path) -> Path:
    return workspace / "runtime"


def runtime_dir(workspace: Path, app: str) -> Path:
    return runtime_root(workspace) / app


def legacy_runtime_dir(workspace: Path, app: str) -> Path:
    """Where workspaces made before ``runtime/<app>/`` keep an app's runtime files."""
    return app_dir(workspace, app) / "runtime"


def deploy_dir(workspace: Path) -> Path:
    """The deploy file (``compose.yaml``) and the secret files containers read."""
    return workspace / "deploy"


def scratch_dir(workspace: Path) -> Path:
    return workspace / INTERNAL / "tmp"


def _oserror(what: str, path: Path, exc: OSError) -> WorkspaceError:
    return WorkspaceError(
        f"cannot {what} {path}: {exc.strerror or exc}",
        hint="check free disk space and permissions of the workspace",
    )


def ensure_workspace(workspace: Path) -> None:
    try:
        (workspace / INTERNAL).mkdir(parents=True, exist_ok=True)
        (workspace / "apps").mkdir(exist_ok=True)
        runtime_root(workspace).mkdir(mode=0o700, exist_ok=True)
        runtime_root(workspace).chmod(0o700)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise _oserror("prepare the workspace", workspace, exc) from None


def move_runtime_folders(workspace: Path) -> None:
    """Move runtime folders of the old layout (``apps/<app>/runtime/``) to ``runtime/<app>/``.

    An app that already has a folder in the new place keeps that one; the old
    one is removed once the new one is in place.  Call it only while holding
    :func:`run_lock`.
    """
    apps = workspace / "apps"
    try:
        old_folders = [
            old
            for old in (legacy_runtime_dir(workspace, a.name) for a in apps.iterdir())
            if old.is_dir() and not old.is_symlink()
        ]
    except OSError as exc:
        raise _oserror("read", apps, exc) from None
    for old in old_folders:
        new = runtime_dir(workspace, old.parent.name)
        try:
            if not new.exists():
                old.chmod(0o700)
                old.rename(new)
            else:
                shutil.rmtree(old)
        except OSError as exc:
            raise _oserror("move the runtime files of", old, exc) from None


def reset_scratch(workspace: Path) -> None:
    """Empty the scratch space; call it only while holding :func:`run_lock`."""
    scratch = scratch_dir(workspace)
    try:
        # Leftovers of an interrupted run: never trusted, always redone.
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(mode=0o700)
    except OSError as exc:
        raise _oserror("prepare the workspace", scratch, exc) from None


@contextlib.contextmanager
def run_lock(workspace: Path) -> Iterator[None]:
    """Only one smartshare run at a time may change a workspace."""
    path = workspace / INTERNAL / "run.lock"

    def busy() -> WorkspaceError:
        return WorkspaceError(
            f"another smartshare run is using the workspace {workspace}",
            hint="wait for it to finish, or use another --workspace",
        )

    with exclusive_lock(path, wait=0, busy=busy, unusable=lambda exc: _oserror("lock", path, exc)):
        yield


def read_key(workspace: Path) -> bytes | None:
    try:
        return (workspace / INTERNAL / "key").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _oserror("read", workspace / INTERNAL / "key", exc) from None


def ensure_key(workspace: Path) -> bytes:
    """The workspace's own key for fingerprints of files that may hold secrets."""
    key = read_key(workspace)
    if key:
        return key
    from smartshare.state.safefs import atomic_write

    key = secrets.token_bytes(32)
    atomic_write(workspace / INTERNAL / "key", key, mode=0o600)
    return key


def file_digest(data: bytes, *, key: bytes | None = None) -> str:
    """A file's digest as the lock records it: sha256, or keyed (files that may hold secrets)."""
    if key is None:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()


def json_digest(data: Any) -> str:
    """sha256 of ``data`` as sorted JSON: what the lock records of manifests, specs, files."""
    payload = json.dumps(data, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def new_scratch(workspace: Path, app: str) -> Path:
    path = scratch_dir(workspace) / f"{app}-{secrets.token_hex(4)}"
    try:
        path.mkdir(mode=0o700)
    except OSError as exc:
        raise _oserror("create", path, exc) from None
    return path


def swap_in(prepared: Path, final: Path) -> None:
    """Replace ``final`` by ``prepared`` (both folders), never leaving a mix of the two."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
            final.rename(old)
        prepared.replace(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise _oserror("install", final, exc) from None


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
