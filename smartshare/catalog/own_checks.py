"""An app's own problems: what it has on its own, and how they are kept between runs.

:func:`own_problems` checks what an app's manifest says on its own: its
licence, its templates and build arguments (:mod:`.template_checks`) and its
runtime (:mod:`.runtime_checks`).  They depend on the manifest and on the files
under templates/ that the checks read (templates, what they include, and
``catalog:`` schemas), nothing else of the catalogue: worker processes
compute them, and :class:`OwnChecks` keeps them by content.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from smartshare.catalog.diagnostics import Problem, Severity
from smartshare.catalog.load import LoadedFile
from smartshare.catalog.location import display_path
from smartshare.catalog.memokeys import own_key
from smartshare.catalog.models import AppManifest
from smartshare.catalog.rules import spdx_warnings
from smartshare.catalog.runtime_checks import check_app_runtime
from smartshare.catalog.template_checks import check_app_templates, required_outputs
from smartshare.errors import InvalidInputError
from smartshare.rendering.analysis import TemplateAnalyser, Use, content_digest
from smartshare.rendering.sandbox import TemplateSource

if TYPE_CHECKING:
    from smartshare.cache import ContentMemo


def own_problems(
    app: LoadedFile[AppManifest], templates_dir: Path, analyser: TemplateAnalyser | None
) -> list[Problem]:
    """The problems an app has on its own: licence, templates, runtime.

    They depend on the manifest and the templates and ``catalog:`` schemas
    it reads, nothing else of the catalogue: :class:`OwnChecks` keeps them,
    worker processes compute them.
    """
    problems: list[Problem] = []
    if app.has("license"):
        problems.extend(
            app.doc.problem(("license",), warning, severity=Severity.WARNING)
            for warning in spdx_warnings(app.model.license)
        )
    if app.has("templates", "parameters"):
        problems.extend(
            check_app_templates(app=app, templates_dir=templates_dir, analyser=analyser)
        )
    if app.has("runtime", "images", "parameters", "templates", "assets"):
        problems.extend(check_app_runtime(app))
    return problems


class OwnChecks:
    """Each app's own problems (:func:`own_problems`), kept by content between runs.

    They depend on the manifest's bytes and on what each template its
    analysis looked up held (its text, or its absence): kept in a memo by the
    manifest's digest (and the templates folder as shown, which messages may
    name), with those templates' digests, and used again while every one of
    them reads the same.  Problems are kept located relative to the manifest
    or a template by name, and shown from where they are now.  ``listed``:
    digests of the templates folder's regular files, when the caller has
    read them already; anything else is read again, as the analysis reads it.
    """

    def __init__(
        self,
        memo: ContentMemo,
        templates_dir: Path,
        *,
        listed: Mapping[str, str] | None = None,
    ) -> None:
        self.memo = memo
        self.templates_dir = templates_dir
        self.listed = listed or {}
        self._shown = display_path(templates_dir)
        self._source: TemplateSource | None = None
        self._current: dict[str, str | None] = {}
        self._required: dict[str, list[Use]] = {}  # by key: what get() found kept

    def key(self, app: LoadedFile[AppManifest]) -> str:
        return own_key(self._shown, content_digest(app.doc.text))

    def get(self, app: LoadedFile[AppManifest]) -> list[Problem] | None:
        key = self.key(app)
        data = self.memo.get(key)
        try:
            uses = [(str(name), digest) for name, digest in data["uses"]]
            rows = data["problems"]
            required = [
                Use(str(where), _whole(line), str(name)) for where, line, name in data["required"]
            ]
            if any(self._digest(name) != digest for name, digest in uses):
                return None
            self._required[key] = required
            return [
                Problem(
                    app.doc.display if not where else display_path(self.templates_dir / where),
                    _whole(line),
                    _whole(column),
                    Severity(severity),
                    str(field),
                    str(message),
                )
                for where, line, column, severity, field, message in rows
            ]
        except (KeyError, TypeError, ValueError):
            return None  # none, or not what put() writes: checked again

    def required_outputs(self, app: LoadedFile[AppManifest]) -> list[Use] | None:
        """The app's :func:`required_outputs`, as :meth:`get` or :meth:`put` last saw them."""
        return self._required.get(self.key(app))

    def put(
        self,
        app: LoadedFile[AppManifest],
        problems: list[Problem],
        analyser: TemplateAnalyser,
        read: set[str],
    ) -> None:
        """Keep ``problems``, found reading the templates named ``read`` with ``analyser``.

        The app's :func:`required_outputs` are kept with them: checking them
        against the catalogue then needs no analysis.
        """
        used = {name: analyser.digests[name] for name in sorted(read) if name in analyser.digests}
        if len(used) != len(read):
            return  # a template could not be read: its problem depends on more than bytes
        where = {display_path(self.templates_dir / name): name for name in used}
        rows = []
        for p in problems:
            place = "" if p.file == app.doc.display else where.get(p.file)
            if place is None:
                return
            rows.append([place, p.line, p.column, p.severity.value, p.field, p.message])
        key = self.key(app)
        required = self._required[key] = required_outputs(app, analyser)
        self.memo.put(
            key,
            {
                "uses": [[n, d] for n, d in used.items()],
                "problems": rows,
                "required": [[u.template, u.line, u.name] for u in required],
            },
        )

    def _digest(self, name: str) -> str | None:
        """What template ``name`` holds now, as the analysis would read it (None: absent)."""
        if name in self.listed:
            return self.listed[name]
        if name not in self._current:
            self._current[name] = self._read(name)
        return self._current[name]

    def _read(self, name: str) -> str | None:
        if self._source is None:
            self._source = TemplateSource(self.templates_dir.absolute())
        source = self._source
        try:
            path = source.path_of(name)
            if not path.is_file():
                return None if not path.exists() else "unreadable"
            return content_digest(source.read(path, name))
        except FileNotFoundError:
            return None
        except InvalidInputError:
            return "unreadable"  # never a digest: the entry is not used


def _whole(value: object) -> int:
    if type(value) is not int:
        raise ValueError("expected a whole number")
    return value
