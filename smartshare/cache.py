"""The user's cache folder, and what ``validate`` keeps there between runs.

:func:`default_cache_dir` is the folder (git mirrors go into its ``git``
subfolder, validation into ``validate``).  :class:`ContentCache` keeps values
by a digest of what they were computed from, together with
:func:`code_version`: a template's analysis by the template's text, a
manifest's YAML data by the file's bytes, a catalogue's report by every file
of the catalogue.  An entry is never wrong, only missing: a changed input or
another smartshare has another key.

The cache is optional by design.  Each entry is written to a temporary file
and renamed into place, so concurrent runs read whole entries or none; an
entry that does not read back whole (a crash, a full disk, a stray edit) is
ignored and written again; a folder that cannot be written leaves the run
without the cache, and :attr:`ContentCache.warning` says so, once.  The
folder is kept under a size limit, oldest entries first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

CACHE_DIR_ENV = "SMARTSHARE_CACHE_DIR"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_FORMAT = b"smartshare-cache-1"
_RESCAN_SECONDS = 24 * 3600  # the size is counted again at least this often
_STALE_TEMPORARY_SECONDS = 3600


def default_cache_dir() -> Path:
    """``$SMARTSHARE_CACHE_DIR``, else ``$XDG_CACHE_HOME/smartshare``, else ``~/.cache/smartshare``.

    Git mirrors go into its ``git`` subfolder, what ``validate`` keeps into ``validate``.
    """
    explicit = os.environ.get(CACHE_DIR_ENV, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "smartshare"
    return Path.home() / ".cache" / "smartshare"


@functools.cache
def code_version() -> str:
    """A digest of the code whose results are cached: smartshare's, Python's, the libraries'.

    smartshare's own source is read (a development checkout changes without
    a new version number); the libraries are told apart by the file each
    is loaded from, without importing them.
    """
    from smartshare import __version__

    digest = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    package = Path(__file__).resolve().parent
    sources = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "_catalog"))
        sources += [Path(folder, name) for name in files if name.endswith(".py")]
    for path in sorted(sources):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    for module in ("jinja2", "yaml", "pydantic", "pydantic_core"):
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        if origin:
            with contextlib.suppress(OSError):
                st = Path(origin).stat()
                digest.update(f"{module}\0{origin}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()


class ContentMemo(Protocol):
    """Values by the digest of what they were computed from (see :class:`Memo`)."""

    def get(self, digest: str) -> Any:
        """The value stored for ``digest``, or None."""

    def put(self, digest: str, value: Any) -> None:
        """Keep ``value`` (plain JSON data) for ``digest``."""


class ContentCache:
    """Entries on disk, ``<folder>/<kind>/<2 hex>/<key>``, each a checksum and JSON data."""

    def __init__(self, folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.warning: str | None = None
        self.written_bytes = 0
        self._writable = True
        self._folders: set[Path] = set()

    @classmethod
    def for_validation(cls) -> ContentCache:
        return cls(default_cache_dir() / "validate")

    @property
    def writable(self) -> bool:
        return self._writable

    def key(self, kind: str, *parts: str) -> str:
        """The key of an entry computed from ``parts`` by this code."""
        text = "\0".join((kind, code_version(), *parts))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / kind / key[:2] / key

    def get(self, kind: str, key: str) -> Any:
        """The value stored under ``key``, or None when there is none whole."""
        try:
            with open(self._path(kind, key), "rb") as handle:  # noqa: PTH123 - many small reads
                raw = handle.read()
        except OSError:
            return None
        header, _, payload = raw.partition(b"\n")
        if header != b" ".join((_FORMAT, key.encode(), _checksum(payload))):
            return None  # torn, truncated or edited: computed and written again
        try:
            return json.loads(payload)
        except ValueError:
            return None

    def put(self, kind: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON data) under ``key``; on a failure, carry on without the cache."""
        if not self._writable:
            return
        try:
            payload = json.dumps(value, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            return  # not JSON data: nothing worth failing a run for
        path = self._path(kind, key)
        data = b" ".join((_FORMAT, key.encode(), _checksum(payload))) + b"\n" + payload
        try:
            folder = path.parent
            if folder not in self._folders:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._folders.add(folder)
            # No fsync: an entry cut short by a crash fails its checksum and is
            # written again, and thousands of entries must stay cheap to write.
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                Path(temporary).replace(path)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(temporary).unlink()
                raise
        except OSError as exc:
            self._writable = False
            self.warning = (
                f"the cache folder {self.folder} cannot be written "
                f"({exc.strerror or exc}): continuing without saving to it"
            )
            return
        self.written_bytes += len(data)

    def memo(self, kind: str, *, salt: str = "") -> Memo:
        return Memo(self, kind, salt=salt)

    # -- the size limit ------------------------------------------------------------------

    def finish(self) -> None:
        """Keep the folder under its size limit, after a run that wrote to it.

        A small ``usage`` file keeps the size between runs (concurrent runs
        may each miss the other's share: the folder is counted again when
        the count says it is over the limit, and at least once a day).
        """
        if not self.written_bytes or not self._writable:
            return
        usage = self.folder / "usage"
        try:
            recorded = json.loads(usage.read_text(encoding="utf-8"))
            total = int(recorded["bytes"]) + self.written_bytes
            counted = float(recorded["counted"])
        except (OSError, ValueError, KeyError, TypeError):
            total, counted = self.max_bytes + 1, 0.0
        now = time.time()
        if total > self.max_bytes or now - counted > _RESCAN_SECONDS:
            total = self.prune()
            counted = now
        with contextlib.suppress(OSError):
            self._write_small(usage, json.dumps({"bytes": total, "counted": counted}))

    def prune(self) -> int:
        """Remove the oldest entries until the folder is under 3/4 of the limit; the size left."""
        from smartshare.state.locking import exclusive_lock

        class _Busy(Exception):
            pass

        try:
            with exclusive_lock(
                self.folder / "prune.lock", wait=0, busy=_Busy, unusable=lambda exc: exc
            ):
                return self._prune()
        except (_Busy, OSError):
            return 0  # another run is at it (or the lock cannot be had): counted next time

    def _prune(self) -> int:
        entries: list[tuple[float, int, str]] = []
        now = time.time()
        for kind in _scandir(self.folder):
            if not kind.is_dir(follow_symlinks=False):
                continue
            for shard in _scandir(Path(kind.path)):
                if not shard.is_dir(follow_symlinks=False):
                    continue
                for entry in _scandir(Path(shard.path)):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry.name.endswith(".tmp"):
                        if now - st.st_mtime > _STALE_TEMPORARY_SECONDS:
                            with contextlib.suppress(OSError):
                                Path(entry.path).unlink()
                        continue
                    entries.append((st.st_mtime, st.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return total
        entries.sort()
        for _, size, path in entries:
            if total <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(OSError):
                Path(path).unlink()
                total -= size
        return total

    def _write_small(self, path: Path, text: str) -> None:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            Path(temporary).replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
            raise


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(payload).hexdigest()[:32].encode()


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


class Memo:
    """Values of one kind by the digest of their input: in memory, and in a cache if any.

    ``salt`` names anything else the values depend on (the context names a
    template may use...): part of every key.
    """

    def __init__(self, cache: ContentCache | None, kind: str, *, salt: str = "") -> None:
        self.cache = cache
        self.kind = kind
        self.salt = salt
        self.values: dict[str, Any] = {}
        self.computed: dict[str, Any] = {}

    def get(self, digest: str) -> Any:
        value = self.values.get(digest)
        cache = self.cache
        if value is None and cache is not None:
            value = cache.get(self.kind, cache.key(self.kind, self.salt, digest))
            if value is not None:
                self.values[digest] = value
        return value

    def put(self, digest: str, value: Any) -> None:
        self.values[digest] = value
        self.computed[digest] = value
        cache = self.cache
        if cache is not None:
            cache.put(self.kind, cache.key(self.kind, self.salt, digest), value)

    def remember(self, values: dict[str, Any]) -> None:
        """Values another process computed (and saved): kept in memory only."""
        self.values.update(values)
