"""The files containers read secrets from, and the redaction of those secrets.

Secret parameters and runtime files (which may hold secrets) reach a
container as files under ``WORKSPACE/deploy/secrets/<container>/``, every
folder mode 0700: no other user of the host can reach them.  A bind-mounted
file keeps its owner and mode inside the container, and containers often run
as another user (the sample images run as 65534): each file belongs to the
user its container runs as, mode 0400 (see :func:`owner_for` for when that
cannot be).  Files are compared with what they should hold on every deploy
and rewritten only when they differ, so one deleted by hand comes back.

Every value written here is known to :class:`Redactor`, which takes them out
of container logs and tool output before they are shown.  The folders of
volumes kept in ``deploy.data_dir`` are made here too, for the same users.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from smartshare.deploying.stack import Stack
from smartshare.errors import WorkspaceError
from smartshare.state.safefs import atomic_write, confined_path

SECRETS_DIR = "secrets"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Owner:
    """Who a container's files belong to on the host, and their mode."""

    uid: int | None  # None: the user running smartshare
    gid: int | None
    mode: int


def owner_for(user: str | None, *, our_uid: int | None = None) -> Owner:
    """The owner and mode of the files of a container running as ``user`` (an image's ``User``).

    Root in the container reads any file: 0400, ours.  A numeric user gets the
    files (0400) when smartshare runs as root or as that very user.  Otherwise
    (a user given by name, which only the image's /etc/passwd resolves, or no
    right to give files away) the files are 0444: readable by the container's
    users, and still by no other host user, as the folders above are 0700.
    """
    uid = os.geteuid() if our_uid is None else our_uid
    if user is None:
        return Owner(None, None, 0o444)
    name, _, group = user.partition(":")
    if name in ("", "0", "root"):
        return Owner(None, None, 0o400)
    if not name.isdigit() or (group and not group.isdigit()):
        return Owner(None, None, 0o444)
    wanted = int(name)
    if wanted == uid:
        return Owner(None, None, 0o400)
    if uid != 0:
        return Owner(None, None, 0o444)
    return Owner(wanted, int(group) if group else None, 0o400)


def write_secret_files(deploy_dir: Path, stack: Stack, owners: Mapping[str, Owner]) -> int:
    """Make ``deploy_dir/secrets`` hold exactly the stack's files; return how many were written.

    ``owners`` maps a container's stack name to its :class:`Owner`.  Files of
    containers no longer in the stack are removed.
    """
    deploy_dir = deploy_dir.resolve()
    root = deploy_dir / SECRETS_DIR
    written = 0
    try:
        _private_dir(root)
        wanted_dirs = set()
        for container in stack.containers():
            owner = owners.get(container.key, Owner(None, None, 0o444))
            wanted_dirs.add(container.key)
            for mounted in container.files:
                path = confined_path(deploy_dir, mounted.source)
                for folder in reversed(path.relative_to(root).parents):
                    _private_dir(root / folder)
                if _holds(path, mounted.content, owner):
                    continue
                atomic_write(path, mounted.content, mode=owner.mode)
                if owner.uid is not None or owner.gid is not None:
                    os.chown(
                        path,
                        -1 if owner.uid is None else owner.uid,
                        -1 if owner.gid is None else owner.gid,
                    )
                written += 1
        for entry in root.iterdir():
            if entry.name not in wanted_dirs:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write the secret files in {root}: {exc.strerror or exc}",
            hint="check free disk space and permissions of the workspace",
        ) from None
    return written


def make_data_folders(stack: Stack, owners: Mapping[str, Owner]) -> None:
    """The folders of the volumes kept in ``deploy.data_dir``, each new one 0700 and
    belonging to the user of the (first) container that mounts it."""
    from smartshare.deploying.compose import data_folder

    for container in stack.containers():
        for volume in container.volumes:
            folder = data_folder(stack, volume.key)
            if folder is None or Path(folder).exists():
                continue
            owner = owners[container.key]
            try:
                Path(folder).mkdir(mode=0o700, parents=True)
                if owner.uid is not None:
                    os.chown(folder, owner.uid, -1 if owner.gid is None else owner.gid)
            except OSError as exc:
                raise WorkspaceError(
                    f"cannot create the data folder {folder}: {exc.strerror or exc}",
                    hint="check deploy.data_dir in the region profile and its permissions",
                ) from None


def remove_secret_files(deploy_dir: Path) -> None:
    shutil.rmtree(deploy_dir / SECRETS_DIR, ignore_errors=True)


def _private_dir(path: Path) -> None:
    if path.is_symlink():
        raise WorkspaceError(f"{path} is a symbolic link; refusing to write secrets through it")
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)


def _holds(path: Path, content: bytes, owner: Owner) -> bool:
    try:
        info = path.lstat()
        if not path.is_file() or path.is_symlink():
            return False
        if info.st_mode & 0o777 != owner.mode:
            return False
        if owner.uid is not None and info.st_uid != owner.uid:
            return False
        if owner.gid is not None and info.st_gid != owner.gid:
            return False
        return path.read_bytes() == content
    except OSError:
        return False


class Redactor:
    """Takes known secret values out of text, in the forms they are usually written in."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if not value:
                continue
            forms.add(value)
            forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
            forms.add(shlex.quote(value))
            forms.update(line for line in value.splitlines() if line.strip())
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text
