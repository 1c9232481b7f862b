"""Write files without leaving half of them behind, and never outside their folder.

Source trees and rendered outputs come from another region's manifests: a
``dest`` of ``config/app.env`` is harmless until the fetched tree holds
``config -> /etc``.  :func:`confined_path` refuses any symbolic link on the way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

from smartshare.catalog.rules import relative_path_problem
from smartshare.errors import UnsafePathError, WorkspaceError


class NotRegularFileError(OSError):
    """A path that names a folder, a FIFO, a device or a socket, where a file was expected."""


def read_regular_file(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``: at most ``limit`` and one more.

    One more byte than ``limit`` says the file is larger: the caller refuses
    it (each with its own words).  Opened without blocking, or a FIFO put
    where a file was expected would wait forever.  Raises OSError as opening
    and reading do (FileNotFoundError...), NotRegularFileError for anything
    but a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
        chunks: list[bytes] = []
        size = 0
        # Asked for the size it has (and one more byte): a read makes a buffer
        # of the size asked for, and a megabyte for each small file costs.
        ask = min(status.st_size, limit) + 1
        while size <= limit:
            chunk = os.read(fd, ask)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size == status.st_size:
                break  # all it held when opened: no read to find the end
            ask = limit + 1 - size
        return b"".join(chunks)
    finally:
        os.close(fd)


def confined_path(root: Path, relative: str) -> Path:
    """The absolute path of ``relative`` inside ``root``.

    Raises UnsafePathError when ``relative`` breaks the one rule for relative
    paths (:func:`smartshare.catalog.rules.relative_path_problem`: empty,
    absolute, ``..``, into ``.git``), names ``root`` itself (``.``), or when a
    component that already exists below ``root`` is a symbolic link or resolves
    outside ``root``.  ``root`` itself may be a link.
    """
    problem = relative_path_problem(relative, folder=str(root))
    if problem:
        raise UnsafePathError(f"path {relative!r} {problem}")
    parts = [p for p in PurePosixPath(relative).parts if p != "."]
    if not parts:
        raise UnsafePathError(f"path '{relative}' names {root} itself, not a file inside it")
    base = root.resolve()
    current = base
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(
                f"path '{relative}' goes through a symbolic link ({current}); refusing to "
                "follow it",
                hint="a source tree must not link outside itself",
            )
        if not current.exists():
            break
    if not current.resolve().is_relative_to(base):  # defence in depth; a race would land here
        raise UnsafePathError(f"path '{relative}' resolves outside {root}")
    return base.joinpath(*parts)


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` at once: readers see the old file or the new one.

    The data goes to a temporary file in the same folder (so the rename is
    a rename on one file system), is flushed to disk, and then renamed over
    ``path``.  On any failure the temporary file is removed, ``path`` is left
    as it was, and WorkspaceError names the path and the cause.
    """
    try:
        payload = data.encode("utf-8") if isinstance(data, str) else data
    except UnicodeError as exc:
        raise WorkspaceError(f"cannot write {path}: the data cannot be encoded ({exc})") from None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the folder exists and is writable",
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
            # fchmod, not the umask-filtered mode of open(): 0600 must mean 0600.
            os.fchmod(handle.fileno(), mode)
        tmp.replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise WorkspaceError(
                f"cannot write {path}: {exc.strerror or exc}",
                hint="check free disk space and permissions",
            ) from None
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every file system allows it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(
    path: Path, obj: object, *, mode: int = 0o644, unless_unchanged: bool = False
) -> None:
    """:func:`atomic_write` of ``obj`` as indented JSON with sorted keys.

    With ``unless_unchanged``, a file that already holds exactly that text is
    left alone: no rewrite, no flush to disk (which a slow disk makes costly).
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if unless_unchanged:
        try:
            if path.read_bytes() == text.encode("utf-8"):
                return
        except OSError:
            pass  # missing or unreadable: write it, and report a real failure there
    atomic_write(path, text, mode=mode)
