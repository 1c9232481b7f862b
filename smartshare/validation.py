"""Around ``smartshare validate``'s checks: the cache, parallel cold runs, --changed-since.

The checks are :mod:`smartshare.catalog.checks`'; this module decides what
they need to compute.

- **The cache** (:mod:`smartshare.cache`, ``<cache folder>/validate``): the
  report of a whole catalogue, by the digest of every file under
  ``manifests/`` (the manifests and profiles, and the files profiles give
  apps' assets) and ``templates/`` (templates and ``catalog:`` schemas), with
  the working directory and the catalogue path as given, which the file
  names shown depend on; under it,
  each app manifest's YAML data by the file's bytes and each template's
  analysis by its text.  A run over an unchanged catalogue reads its files and
  one entry, without importing the checks; a run after an edit parses only
  what changed.  A catalogue holding a symbolic link or a special file has
  no report cached (what such a file leads to depends on more than bytes).
- **Parallel cold runs**: when enough manifests are not in the cache, worker
  processes load them and check each app on its own (its templates above
  all), and send back what they computed, encoded for the cache; this
  process saves it, and the checks then run as on a warm cache.  Below the
  break-even (measured in ``bench/README.md``, about 80 apps) everything stays
  in this process.  Workers are forked when this process runs one thread
  (they start at once, with everything imported), else started afresh.
- **--changed-since REF**: only the files a change touches
  (:func:`smartshare.catalog.changes.affected_files`), resolved against the
  whole catalogue.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartshare.cache import ContentCache, Memo
from smartshare.catalog.diagnostics import Problem, Severity, ValidationReport
from smartshare.catalog.location import display_path
from smartshare.catalog.memokeys import own_key
from smartshare.catalog.rules import MAX_ASSET_KB, MAX_FILE_BYTES
from smartshare.errors import UsageError
from smartshare.rendering.analysis_data import FORMAT as ANALYSIS_FORMAT
from smartshare.rendering.sandbox import CONTEXT_NAMES
from smartshare.state.safefs import read_regular_file

if TYPE_CHECKING:
    from smartshare.catalog.load import Loading

YAML_SUFFIXES = (".yaml", ".yml")  # as catalog.load, without importing it on a warm run

# Estimated single-process cost of what is not cached, in milliseconds, above
# which worker processes pay for themselves (bench/README.md: break-even).
# Forking a process that has imported everything is cheap; a fresh
# interpreter ("forkserver", "spawn") imports smartshare again first.
PARALLEL_FROM_MS = {"fork": 250.0, "fresh": 1200.0}
_MANIFEST_MS = 0.45  # reading and parsing one manifest's YAML (and, again, validating it)
_TEMPLATE_MS_PER_KIB = 0.8  # parsing and walking templates
_TEMPLATE_MS_PER_APP = 2.0  # an app's own templates (2-3 of 1-3 KiB), when not listed yet
# Shares per worker: this process loads each share's manifests as it comes
# back, while the workers compute the rest; the last share's are loaded after.
_SHARES_PER_JOB = 12


def validate_catalogue(
    *,
    catalog_root: Path,
    paths: Sequence[Path] = (),
    changed_since: str | None = None,
    use_cache: bool = True,
    jobs: int | None = None,
) -> ValidationReport:
    """Validate the catalogue at ``catalog_root``, given files, or what changed since a git ref.

    ``paths``: as :func:`smartshare.catalog.checks.validate`.  ``changed_since``:
    a git ref of the catalogue's repository; the files changed since then and
    every file they affect are checked (not with ``paths``).  ``use_cache``:
    read and write the cache folder.  ``jobs``: processes for a cold run
    (default: the CPUs this process may use).
    """
    if changed_since is not None and paths:
        raise UsageError(
            "--changed-since checks what changed in the catalogue: give no PATH with it"
        )
    cache = ContentCache.for_validation() if use_cache else None
    # A run makes next to no reference cycles, and a national catalogue's
    # objects, alive to the end, would be walked by every collection again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with contextlib.ExitStack() as cleanup:
            report = _validate(catalog_root, paths, changed_since, cache, jobs or _cpus(), cleanup)
    finally:
        if collecting:
            gc.enable()
        if cache is not None:
            cache.flush()
    if cache is not None and cache.warning:
        report = replace(report, notes=(*report.notes, cache.warning))
    return report


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _validate(
    root: Path,
    paths: Sequence[Path],
    changed_since: str | None,
    cache: ContentCache | None,
    jobs: int,
    cleanup: contextlib.ExitStack,
) -> ValidationReport:
    """The report; ``cleanup`` stops the workers started, whatever happens."""
    whole = not paths and changed_since is None
    listed = not paths and (root / "manifests").is_dir()
    memos = _RunMemos(cache)
    changes = None
    listing = None
    workers = None
    if changed_since is not None:
        from concurrent.futures import ThreadPoolExecutor

        from smartshare.fetching.changes import changes_since

        # The ref first: a wrong one must not wait for a cold run.  git answers
        # while the manifests are read (each is needed; their bytes are kept).
        with ThreadPoolExecutor(1, thread_name_prefix="changes") as pool:
            asked = pool.submit(changes_since, root, changed_since, manifest_suffixes=YAML_SUFFIXES)
            if listed:
                listing = _list(root, folders=("manifests",), keep_manifests=True)
            changes = asked.result()
        # What a change touches is found from the manifests, and templates only
        # when one changed: the others are not read unless an app to check uses them.
        if listing is not None and any(p.startswith("templates/") for p in changes.paths):
            _scan(listing, root, "templates", keep_manifests=False)
    elif listed:
        listing = _list(root, folders=("manifests",), keep_manifests=True)
        if _looks_cold(root, listing, memos):
            # Workers need only the manifests: they start while the templates are listed.
            workers = _Workers.start(root, listing, memos, jobs, check=True)
            if workers is not None:
                cleanup.callback(workers.stop)
        _scan(listing, root, "templates", keep_manifests=False)
    key = None
    if whole and cache is not None and listing is not None and listing.complete:
        key = cache.key("report", str(root), str(Path.cwd()), listing.text())
        known = _report_from(cache.get(key))
        if known is not None:
            return known  # the workers started are stopped

    from smartshare.catalog.checks import Memos, tools, validate, validate_loaded

    loaded: dict[Path, Loading] = {}
    if listing is not None:
        if workers is None:
            # What a change touches needs every manifest, but only the changed
            # ones and those it affects checked: the workers load, no more.
            workers = _Workers.start(root, listing, memos, jobs, check=changes is None)
            if workers is not None:
                cleanup.callback(workers.stop)
        if workers is not None:
            workers.collect(memos, listing, loaded)
    checks_memos = Memos(
        documents=memos.documents,
        analyses=memos.analyses,
        own=memos.own,
        listed={name: digest for name, digest, _ in listing.templates} if listing else None,
        contents=listing.manifest_bytes if listing is not None else None,
        loaded=loaded,
        manifests=listing.yaml_files() if listing is not None else None,
    )
    if changes is not None:
        from smartshare.catalog.changes import affected_files
        from smartshare.catalog.load import load_catalog

        catalog = load_catalog(
            root,
            documents=memos.documents,
            contents=checks_memos.contents,
            loaded=loaded,
            listed=checks_memos.manifests,
        )
        analyser, own = tools(catalog, checks_memos)
        files = affected_files(
            catalog, changed=changes.paths, old_manifests=changes.old_manifests, analyser=analyser
        )
        return validate_loaded(catalog, files, analyser=analyser, own=own)

    report = validate(catalog_root=root, paths=paths, memos=checks_memos)
    if key is not None and cache is not None:
        cache.put(key, _report_data(report))
    return report


class _RunMemos:
    """The memos of one run (:class:`smartshare.cache.Memo`), made without importing the checks.

    The YAML one is made when first used: its salt imports the YAML library,
    which a run answered from the cache never needs.
    """

    def __init__(self, cache: ContentCache | None) -> None:
        self.cache = cache
        # Every key holds the code's version too (smartshare.cache.code_version).
        context = ",".join(sorted(CONTEXT_NAMES))
        self.analyses = Memo(cache, "template", salt=f"{context};format {ANALYSIS_FORMAT}")
        self.own = Memo(cache, "own", salt=context)

    @cached_property
    def documents(self) -> Memo:
        return Memo(self.cache, "yaml", salt=_yaml_salt())


def _yaml_salt() -> str:
    import yaml

    # libyaml and the pure-Python parser agree on data, but say so anyway.
    return f"libyaml={getattr(yaml, '__with_libyaml__', False)}"


# -- the catalogue's files -----------------------------------------------------------------


@dataclass
class _Listing:
    """Every file that can change a catalogue's report, with a digest of its bytes."""

    manifests: list[tuple[str, str, int]] = field(default_factory=list)  # relative, digest, size
    templates: list[tuple[str, str, int]] = field(default_factory=list)  # name, digest, size
    # The other files under manifests/: those a profile names for apps' assets
    # (a logo next to it) among them.  relative, digest, size
    others: list[tuple[str, str, int]] = field(default_factory=list)
    has_templates: bool = False
    complete: bool = True  # no link, special or unreadable file: the report may be cached
    # The manifests' bytes as read for their digests (when kept): loading reads no file twice.
    manifest_bytes: dict[Path, bytes] = field(default_factory=dict)

    def yaml_files(self) -> list[Path] | None:
        """The manifests as :func:`smartshare.catalog.load.iter_yaml_files` finds them.

        None when the listing is not complete: that looks behind links and at
        special files, which the listing passes over.
        """
        if not self.complete:
            return None
        return sorted(path for path in self.manifest_bytes if path.suffix in YAML_SUFFIXES)

    def text(self) -> str:
        lines = [f"templates folder: {self.has_templates}"]
        lines += [f"m {name} {digest}" for name, digest, _ in self.manifests]
        lines += [f"o {name} {digest}" for name, digest, _ in self.others]
        lines += [f"t {name} {digest}" for name, digest, _ in self.templates]
        return "\n".join(lines)


def _list(
    root: Path, *, folders: Sequence[str] = ("manifests", "templates"), keep_manifests: bool = False
) -> _Listing:
    """The files of ``folders`` (manifests, templates) under ``root``, with their digests.

    ``keep_manifests``: keep the manifests' bytes too (:attr:`_Listing.manifest_bytes`).
    """
    listing = _Listing(has_templates=(root / "templates").is_dir())
    for folder in folders:
        _scan(listing, root, folder, keep_manifests=keep_manifests)
    return listing


def _scan(listing: _Listing, root: Path, folder: str, *, keep_manifests: bool) -> None:
    """Add the files under ``root/folder`` to ``listing``."""
    base = root / folder
    if not base.is_dir():
        return
    if base.is_symlink():
        listing.complete = False
    # Paths stay strings: this runs for every file of a national catalogue.
    pending = [(str(base), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as scanned:
                entries = sorted(scanned, key=lambda e: e.name)
        except OSError:
            listing.complete = False
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink():
                listing.complete = False
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, name + "/"))
                continue
            table, limit = listing.templates, MAX_FILE_BYTES
            if folder == "manifests" and entry.name.endswith(YAML_SUFFIXES):
                table = listing.manifests
            elif folder == "manifests":
                table, limit = listing.others, MAX_ASSET_KB * 1024
            raw = _read(entry.path, limit)
            if raw is None:
                listing.complete = False
                continue
            table.append((name, hashlib.sha256(raw).hexdigest(), len(raw)))
            if keep_manifests and table is listing.manifests:
                listing.manifest_bytes[Path(entry.path)] = raw


def _read(path: str, limit: int) -> bytes | None:
    """A regular file's bytes (up to ``limit`` and one more), else None.

    Past its size limit a file is refused whatever the rest holds: a manifest
    or template past ``MAX_FILE_BYTES``, an asset's file past the largest
    size an asset may have.
    """
    try:
        return read_regular_file(path, limit)
    except OSError:  # NotRegularFileError too
        return None


# -- the report in the cache ---------------------------------------------------------------


def _report_data(report: ValidationReport) -> dict[str, Any]:
    return {
        "files": report.files_checked,
        "problems": [
            [p.file, p.line, p.column, p.severity.value, p.field, p.message]
            for p in report.problems
        ],
    }


def _report_from(data: Any) -> ValidationReport | None:
    if not isinstance(data, dict):
        return None
    try:
        files = data["files"]
        problems = [
            Problem(file, line, column, Severity(severity), where, message)
            for file, line, column, severity, where, message in data["problems"]
        ]
    except (KeyError, TypeError, ValueError):
        return None
    typed = all(
        isinstance(p.file, str)
        and type(p.line) is int
        and type(p.column) is int
        and isinstance(p.field, str)
        and isinstance(p.message, str)
        for p in problems
    )
    if not typed or type(files) is not int:
        return None
    return ValidationReport(problems=problems, files_checked=files)


# -- parallel cold runs --------------------------------------------------------------------

# templates folder, (salts of the yaml, template and own memos), check the apps?, manifests
_Task = tuple[str, tuple[str, str, str], bool, list[str]]

# Manifests whose own problems are looked for before the templates are listed.
_PROBES = 8


def _looks_cold(root: Path, listing: _Listing, memos: _RunMemos) -> bool:
    """Whether none of a few manifests spread over ``listing`` has own problems in the cache.

    Only a guess, to start workers early: on a cold run they begin while the
    templates are listed.  None, not any: a region profile never has own
    problems, and a few edited apps are no cold run.  Nothing here imports
    the checks, as a run answered from the cache does not.
    """
    manifests = listing.manifests
    if not manifests:
        return False
    step = max(len(manifests) // _PROBES, 1)
    shown = display_path(root / "templates")
    probes = [own_key(shown, digest) for _, digest, _ in manifests[::step]]
    memos.own.prefetch(probes)
    return all(memos.own.get(probe) is None for probe in probes)


class _Workers:
    """Worker processes loading (and checking) manifests, started; what they send, taken in order.

    A worker loads its share of the manifests and, with ``check``, checks each
    app on its own (:func:`smartshare.catalog.own_checks.own_problems`, which
    analyses its templates); it sends what it computed back encoded for the
    cache, and this process saves it.  While the others work on, this process
    loads the manifests of each share that came back.
    """

    def __init__(self, pool: Any, results: Iterator[Any], shares: list[list[str]]) -> None:
        self._pool = pool
        self._results = results
        self._shares = shares

    @classmethod
    def start(
        cls, root: Path, listing: _Listing, memos: _RunMemos, jobs: int, *, check: bool
    ) -> _Workers | None:
        """Workers for what the cache lacks of ``listing``; None when one process does better."""
        documents, own = memos.documents, memos.own
        templates_dir = root / "templates"
        shown = display_path(templates_dir)
        documents.prefetch(digest for _, digest, _ in listing.manifests)
        if check:
            own.prefetch(own_key(shown, digest) for _, digest, _ in listing.manifests)
        if jobs < 2:
            return None
        template_kib = sum(size for _, _, size in listing.templates) / 1024
        per_app = _TEMPLATE_MS_PER_KIB * template_kib / max(len(listing.manifests), 1)
        if not listing.templates and listing.has_templates:
            per_app = _TEMPLATE_MS_PER_APP  # not listed yet: as a typical app's
        todo = []
        for name, digest, _ in listing.manifests:
            cost = 0.0 if documents.get(digest) is not None else _MANIFEST_MS
            if check and own.get(own_key(shown, digest)) is None:
                cost += _MANIFEST_MS + per_app
            if cost:
                todo.append((str(root / "manifests" / name), cost))
        method = _start_method()
        threshold = PARALLEL_FROM_MS["fork" if method == "fork" else "fresh"]
        if not todo or sum(cost for _, cost in todo) < threshold:
            return None

        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        salts = (documents.salt, memos.analyses.salt, own.salt)
        shares = _shares(todo, jobs * _SHARES_PER_JOB)
        tasks = [(str(templates_dir), salts, check, share) for share in shares]
        # Anything buffered would be written again by each forked worker.
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        context = multiprocessing.get_context(method)
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        return cls(pool, pool.map(_work, tasks), shares)

    def collect(self, memos: _RunMemos, listing: _Listing, loaded: dict[Path, Loading]) -> None:
        """Save what the workers computed; load each share's manifests into ``loaded``.

        ``loaded``: by path, what :func:`smartshare.catalog.load.load_file` gives
        for the bytes of ``listing``.
        """
        from smartshare.catalog.load import load_file

        try:
            for share, computed in zip(self._shares, self._results, strict=True):
                memos.documents.remember(computed["yaml"])
                memos.analyses.remember(computed["template"])
                memos.own.remember(computed["own"])
                for name in share:
                    path = Path(name)
                    loaded[path] = load_file(
                        path, documents=memos.documents, raw=listing.manifest_bytes.get(path)
                    )
                if memos.cache is not None:
                    memos.cache.write()  # not all at the end, after the last share
        finally:
            self._pool.shutdown(cancel_futures=True)

    def stop(self) -> None:
        """Done with, or not needed after all: what has not begun is cancelled, the rest awaited."""
        self._pool.shutdown(cancel_futures=True)


def _start_method() -> str:
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    # fork copies this process as it is: safe while it runs a single thread.
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _shares(items: list[tuple[str, float]], count: int) -> list[list[str]]:
    """``items`` in up to ``count`` lists of about equal cost (largest first)."""
    if not items:
        return []
    count = min(count, len(items))
    chunks: list[list[str]] = [[] for _ in range(count)]
    costs = [0.0] * count
    for name, cost in sorted(items, key=lambda item: -item[1]):
        lightest = costs.index(min(costs))
        chunks[lightest].append(name)
        costs[lightest] += cost
    return chunks


def _work(task: _Task) -> dict[str, dict[str, bytes]]:
    """In a worker: load (and check) each manifest of ``task`` on its own; what was computed."""
    from smartshare.catalog.load import load_file
    from smartshare.catalog.models import AppManifest
    from smartshare.catalog.own_checks import OwnChecks, own_problems
    from smartshare.catalog.yamlfile import load_yaml
    from smartshare.errors import InvalidInputError
    from smartshare.rendering.analysis import TemplateAnalyser

    folder, (yaml_salt, template_salt, own_salt), check, manifests = task
    templates_dir = Path(folder)
    documents = Memo(None, "yaml", salt=yaml_salt)
    analyses = Memo(None, "template", salt=template_salt)
    mine = Memo(None, "own", salt=own_salt)
    analyser = TemplateAnalyser(templates_dir, memo=analyses)
    own = OwnChecks(mine, templates_dir)
    for manifest in manifests:
        if not check:
            with contextlib.suppress(InvalidInputError):
                load_yaml(Path(manifest), memo=documents)
            continue
        loaded, _ = load_file(Path(manifest), documents=documents)
        if loaded is None or not isinstance(loaded.model, AppManifest):
            continue
        with analyser.recording() as read:
            problems = own_problems(loaded, templates_dir, analyser)
            own.put(loaded, problems, analyser, read)
    return {"yaml": documents.encoded(), "template": analyses.encoded(), "own": mine.encoded()}
