"""The user's cache folder, and what ``validate`` keeps there between runs.

:func:`default_cache_dir` is the folder (git mirrors go into its ``git``
subfolder, validation into ``validate``).  :class:`ContentCache` keeps values
by a digest of what they were computed from, together with
:func:`code_version`: a template's analysis by the template's text, a
manifest's YAML data by the file's bytes, a catalogue's report by every file
of the catalogue.  An entry is never stale, only missing: a changed input,
or another smartshare, has another key.

The entries live in one SQLite file (``validate/cache.sqlite``): a
national catalogue makes tens of thousands of them, and creating as many
small files costs more than computing them on a busy disk.  SQLite's
transactions make every run's writes whole or absent for the others, and its
locks let concurrent runs share the file.  The cache is optional by design:

- an entry that does not read back whole (its checksum) is ignored and
  written again; a file SQLite finds damaged is removed and started afresh;
- a folder or file that cannot be written leaves the run without saving,
  and :attr:`ContentCache.warning` says so, once;
- the file is kept under a size limit, the oldest entries going first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import sqlite3

CACHE_DIR_ENV = "SMARTSHARE_CACHE_DIR"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_FORMAT = 2  # of the file; another one is started afresh
_BUSY_SECONDS = 10.0  # how long a run waits for another one's write
_BATCH = 500  # keys per query


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
    """Entries by key in ``<folder>/cache.sqlite``, each a checksum and JSON data.

    Reads go to the file at once; writes wait in memory for :meth:`write`
    (a long run's parts as they are done) or :meth:`flush`, at the end of
    the run: one transaction each.
    """

    def __init__(self, folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.path = folder / "cache.sqlite"
        self.max_bytes = max_bytes
        self.warning: str | None = None
        self._db: sqlite3.Connection | None = None
        self._unusable = False
        self._pending: dict[str, bytes] = {}
        self._written = False  # by this run, so the file may need pruning

    @classmethod
    def for_validation(cls) -> ContentCache:
        return cls(default_cache_dir() / "validate")

    def key(self, kind: str, *parts: str) -> str:
        """The key of an entry of ``kind`` computed from ``parts`` by this code."""
        text = "\0".join((kind, code_version(), *parts))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    # -- reading -----------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None when there is none whole."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values stored under ``keys`` (those there are), in a few queries."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        db = self._connection()
        if db is None:
            return found
        try:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", batch)  # noqa: S608 - only '?' marks
                for key, blob in rows:
                    value = decode(blob)
                    if value is not None:
                        found[key] = value
        except Exception as exc:  # sqlite3.Error, imported lazily
            self._failed(exc)
        return found

    # -- writing -----------------------------------------------------------------------

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON data) under ``key``, written at :meth:`flush`."""
        blob = encode(value)
        if blob is not None:
            self._pending[key] = blob

    def put_encoded(self, key: str, blob: bytes) -> None:
        """Keep what :func:`encode` made of a value (in another process) under ``key``."""
        self._pending[key] = blob

    @property
    def pending_bytes(self) -> int:
        return sum(len(blob) for blob in self._pending.values())

    def write(self) -> None:
        """Write what was put so far, in one transaction: a long run saves as it goes."""
        if not self._pending:
            return
        db = self._connection()
        if db is None:
            self._pending.clear()
            return
        now = time.time()
        rows = [(key, blob, len(blob), now) for key, blob in self._pending.items()]
        self._pending.clear()
        try:
            with _transaction(db):
                db.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, size, written) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
            self._written = True
        except Exception as exc:  # sqlite3.Error
            self._failed(exc, writing=True)

    def flush(self) -> None:
        """Write what was put, keep the file under its size limit, and close it."""
        self.write()
        if self._written and self._db is not None:
            try:
                self._prune(self._db)
            except Exception as exc:  # sqlite3.Error
                self._failed(exc, writing=True)
        self.close()

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def _prune(self, db: sqlite3.Connection) -> None:
        (total,) = db.execute("SELECT total(size) FROM entries").fetchone()
        if total <= self.max_bytes:
            return
        goal = total - self.max_bytes * 3 // 4
        removed = 0.0
        cutoff = None
        for size, written in db.execute("SELECT size, written FROM entries ORDER BY written"):
            removed += size
            cutoff = written
            if removed >= goal:
                break
        with _transaction(db):
            db.execute("DELETE FROM entries WHERE written <= ?", (cutoff,))
        db.execute("PRAGMA incremental_vacuum")

    # -- the file ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection | None:
        if self._db is not None or self._unusable:
            return self._db
        import sqlite3

        for attempt in (1, 2):
            try:
                self._db = self._open(sqlite3)
                return self._db
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or isinstance(exc, sqlite3.OperationalError):
                    self._failed(exc)
                    return None
                # Not a database (damaged, or something else): start afresh.
                self.close()
                with contextlib.suppress(OSError):
                    self.path.unlink()
            except OSError as exc:
                self._failed(exc)
                return None
        return None

    def _open(self, driver: Any) -> sqlite3.Connection:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        new = not self.path.exists()
        db: sqlite3.Connection = driver.connect(
            self.path, timeout=_BUSY_SECONDS, isolation_level=None
        )
        self._db = db
        if new:
            # A new file is the user's alone (entries hold manifests' data).
            with contextlib.suppress(OSError):
                self.path.chmod(0o600)
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # No fsync: a crash can cost entries (or the file, started afresh), never a result.
        db.execute("PRAGMA synchronous = OFF")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version != _FORMAT:
            with _transaction(db):
                db.execute("DROP TABLE IF EXISTS entries")
                db.execute(
                    "CREATE TABLE entries (key TEXT NOT NULL UNIQUE, value BLOB NOT NULL, "
                    "size INTEGER NOT NULL, written REAL NOT NULL)"
                )
                db.execute("CREATE INDEX entries_written ON entries (written)")
                db.execute(f"PRAGMA user_version = {_FORMAT}")
        else:
            db.execute("SELECT count(*) FROM entries WHERE key = ''").fetchone()
        return db

    def _failed(self, exc: BaseException, *, writing: bool = False) -> None:
        """Carry on without the cache; a damaged file is removed for the next run."""
        import sqlite3

        self.close()
        self._unusable = True
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            with contextlib.suppress(OSError):
                self.path.unlink()  # damaged: the next run starts afresh
            return
        if "locked" in str(exc) or "busy" in str(exc):
            return  # another run holds it: this run's entries are left out, nothing more
        if self.warning is None:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            verb = "written" if writing else "used"
            self.warning = (
                f"the cache {self.path} cannot be {verb} ({reason}): "
                "validating without saving to it"
            )


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction (the connection commits each statement on its own otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def encode(value: Any) -> bytes | None:
    """``value`` (JSON data) as an entry holds it: a checksum, a newline, compact JSON."""
    try:
        payload = json.dumps(value, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None  # not JSON data: nothing worth failing a run for
    return hashlib.sha256(payload).hexdigest()[:32].encode() + b"\n" + payload


def decode(blob: Any) -> Any:
    """The value of an entry :func:`encode` made, or None when it is not whole."""
    if not isinstance(blob, bytes):
        return None
    checksum, _, payload = blob.partition(b"\n")
    if checksum != hashlib.sha256(payload).hexdigest()[:32].encode():
        return None  # torn or edited: computed and written again
    try:
        return json.loads(payload)
    except ValueError:
        return None


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
        self._asked: set[str] = set()  # digests the cache was asked for, found or not
        self._encoded: dict[str, bytes] = {}  # from other processes, decoded when asked for

    def _key(self, cache: ContentCache, digest: str) -> str:
        return cache.key(self.kind, self.salt, digest)

    def get(self, digest: str) -> Any:
        value = self.values.get(digest)
        if value is None and digest in self._encoded:
            value = self.values[digest] = decode(self._encoded.pop(digest))
        cache = self.cache
        if value is None and cache is not None and digest not in self._asked:
            self._asked.add(digest)
            value = cache.get(self._key(cache, digest))
            if value is not None:
                self.values[digest] = value
        return value

    def prefetch(self, digests: Iterable[str]) -> None:
        """Read the values of ``digests`` in a few queries: later gets are in memory."""
        cache = self.cache
        if cache is None:
            return
        keys = {self._key(cache, d): d for d in digests if d not in self._asked}
        self._asked.update(keys.values())
        for key, value in cache.get_many(keys).items():
            self.values[keys[key]] = value

    def put(self, digest: str, value: Any) -> None:
        self.values[digest] = value
        self.computed[digest] = value
        cache = self.cache
        if cache is not None:
            cache.put(self._key(cache, digest), value)

    def encoded(self) -> dict[str, bytes]:
        """What this memo computed, encoded (:func:`encode`): a worker's answer."""
        blobs = {digest: encode(value) for digest, value in self.computed.items()}
        return {digest: blob for digest, blob in blobs.items() if blob is not None}

    def remember(self, blobs: dict[str, bytes]) -> None:
        """Values another process computed and encoded: kept, and saved with this run's."""
        self._encoded.update(blobs)
        self._asked.update(blobs)
        cache = self.cache
        if cache is not None:
            for digest, blob in blobs.items():
                cache.put_encoded(cache.key(self.kind, self.salt, digest), blob)
