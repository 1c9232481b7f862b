"""An app's templates and templated build arguments against its parameters, not rendered.

Each template is analysed (:mod:`smartshare.rendering.analysis`: what it
uses, following its includes, imports and extends), and what it uses is
checked against what the app declares and what templates see; a problem
inside a template is located in the template file, at the column of the name
it is about.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from smartshare.catalog.diagnostics import Problem, Severity, did_you_mean
from smartshare.catalog.load import Catalog, LoadedFile
from smartshare.catalog.location import display_path
from smartshare.catalog.models import AppManifest, TemplateTarget
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.runtime_checks import (
    missing_output_problem,
    not_required_problem,
    runtime_strings,
)
from smartshare.errors import InvalidInputError, UnsafePathError
from smartshare.rendering.analysis import TemplateAnalyser, TemplateUsage, Use
from smartshare.rendering.sandbox import is_template_text, make_environment

# What render_context() puts under `region` and `app`.
REGION_FIELDS = frozenset(RegionProfile.model_fields) - {"apps", "assets", "build"}
APP_FIELDS = frozenset(AppManifest.model_fields)

# What a Jinja string of a manifest is, as messages name it.
BUILD_ARGUMENT = "a build argument"
RUNTIME_VALUE = "a runtime value"


def check_app_templates(
    *,
    app: LoadedFile[AppManifest],
    templates_dir: Path,
    analyser: TemplateAnalyser | None = None,
) -> list[Problem]:
    """Check an app's templates and build arguments against its parameters, without rendering.

    Errors: a missing or unsafe ``src``, template syntax errors, missing or
    dynamic includes, ``params.X`` not declared, unknown ``region.X``,
    ``app.X`` or ``assets.X`` fields, other undefined names, a secret
    parameter used by an ``image`` template or a build argument (it would be
    baked into the image or its history) or by runtime text (environment
    values and outputs: a secret reaches a container only as a file), and a
    ``catalog:`` schema that is missing or not a JSON Schema.  Warning: a
    declared parameter that nothing uses.  Problems inside a template are
    located in the template file; those of a manifest string at its key.
    ``analyser``: one for
    ``templates_dir`` shared by many apps (by default, one made here); the
    templates and schemas it reads are what the problems depend on.
    """
    model = app.model
    doc = app.doc
    problems: list[Problem] = []
    templated = _templated_texts(app)
    if not model.templates and not model.parameters and not templated:
        return problems
    declared = {p.name: p for p in model.parameters}
    secrets = sorted(name for name, p in declared.items() if p.secret)
    assets = [a.name for a in model.assets] if app.has("assets") else None
    used: set[str] = set()
    uses_all = False
    complete = True
    if analyser is None and templates_dir.is_dir():
        analyser = TemplateAnalyser(templates_dir, env=make_environment(templates_dir))
    for index, spec in enumerate(model.templates):
        src_loc = ("templates", index, "src")
        if analyser is None:
            problems.append(
                doc.problem(
                    src_loc,
                    f"template '{spec.src}' not found: {display_path(templates_dir)} "
                    "does not exist",
                )
            )
            complete = False
            continue
        if spec.output_schema is not None and spec.output_schema.startswith("catalog:"):
            problems.extend(_catalog_schema_problems(app, index, analyser))
        try:
            usage = analyser.analyse(spec.src)
        except UnsafePathError as exc:
            problems.append(doc.problem(src_loc, exc.message))
            complete = False
            continue
        except InvalidInputError as exc:
            message = exc.message
            if not (templates_dir / spec.src).is_file():
                message = f"template '{spec.src}' does not exist in {display_path(templates_dir)}"
            problems.append(doc.problem(src_loc, message))
            complete = False
            continue
        complete = complete and usage.complete
        used.update(usage.param_names)
        uses_all = uses_all or usage.uses_all_params
        problems.extend(
            _usage_problems(
                usage,
                model,
                templates_dir,
                image=spec.target is TemplateTarget.IMAGE,
                secrets=secrets,
                assets=assets,
            )
        )
    if templated:
        if analyser is None:
            analyser = TemplateAnalyser(templates_dir, env=make_environment(templates_dir))
        for loc, text, what in templated:
            usage = analyser.analyse_text(text, ".".join(map(str, loc)))
            if what == RUNTIME_VALUE:
                # services.<name> is runtime text's own (checked by check_runtime_references).
                usage = replace(
                    usage, undeclared=tuple(u for u in usage.undeclared if u.name != "services")
                )
            complete = complete and usage.complete
            used.update(usage.param_names)
            uses_all = uses_all or usage.uses_all_params
            problems.extend(
                doc.problem(loc, message)
                for _, _, message, _ in _usage_messages(
                    usage, model, secrets=secrets, assets=assets, what=what
                )
            )
    if complete and not uses_all:
        for index, parameter in enumerate(model.parameters):
            if parameter.name not in used:
                problems.append(
                    doc.problem(
                        ("parameters", index),
                        f"parameter '{parameter.name}' is not used by any template or "
                        f"build argument of '{model.name}'",
                        severity=Severity.WARNING,
                    )
                )
    return problems


def required_outputs(app: LoadedFile[AppManifest], analyser: TemplateAnalyser) -> list[Use]:
    """The ``requires.<app>.<output>`` an app's templates use, of apps it requires.

    What :func:`check_template_requires` checks against the catalogue; an app
    it does not require is one of the app's own problems (:func:`_usage_problems`).
    A template that cannot be analysed is passed over (its own problem too).
    """
    model = app.model
    found: list[Use] = []
    for spec in model.templates:
        try:
            usage = analyser.analyse(spec.src)
        except (InvalidInputError, UnsafePathError):
            continue
        for use in usage.requires_fields:
            name, _, output = use.name.partition(".")
            if output and name in model.requires:
                found.append(use)
    return sorted(set(found))


def check_template_requires(
    *, app: LoadedFile[AppManifest], catalog: Catalog, uses: Iterable[Use], templates_dir: Path
) -> list[Problem]:
    """Each of ``uses`` (:func:`required_outputs`) names an output the required app declares.

    Not one of the app's own checks: it reads the required apps' manifests.
    """
    problems: list[Problem] = []
    for use in uses:
        name, _, output = use.name.partition(".")
        message = missing_output_problem(catalog, name, output)
        if message is not None:
            problems.append(_requires_use_problem(templates_dir, use, message))
    return problems


def _templated_texts(
    app: LoadedFile[AppManifest],
) -> list[tuple[tuple[str | int, ...], str, str]]:
    """The Jinja strings of a manifest, by their place in it, with what each one is.

    Build arguments, and the runtime's environment values and outputs.
    """
    texts: list[tuple[tuple[str | int, ...], str, str]] = []
    if app.has("images"):
        texts += [
            (("images", index, "args", key), value, BUILD_ARGUMENT)
            for index, image in enumerate(app.model.images)
            for key, value in image.args.items()
            if is_template_text(value)
        ]
    if app.has("runtime"):
        texts += [
            (loc, value, RUNTIME_VALUE)
            for loc, value in runtime_strings(app.model)
            if is_template_text(value)
        ]
    return texts


def _catalog_schema_problems(
    app: LoadedFile[AppManifest], index: int, analyser: TemplateAnalyser
) -> list[Problem]:
    """A ``catalog:`` schema must exist under templates/ and be a JSON Schema.

    Read through ``analyser``, as templates are: the app's own problems
    depend on the schema file, and are kept while it reads the same.
    """
    spec = app.model.templates[index]
    assert spec.output_schema is not None
    loc = ("templates", index, "schema")
    name = spec.output_schema.removeprefix("catalog:")
    try:
        text = analyser.read(name)
    except InvalidInputError as exc:  # UnsafePathError too
        return [app.doc.problem(loc, exc.message.replace("template ", "schema ", 1))]
    if text is None:
        shown = display_path(analyser.templates_dir)
        return [app.doc.problem(loc, f"schema '{name}' does not exist in {shown}")]
    why = _schema_problem(text, spec.output_schema)
    return [app.doc.problem(loc, why)] if why else []


@lru_cache(maxsize=256)
def _schema_problem(text: str, schema_name: str) -> str | None:
    """Why ``text`` is no usable JSON Schema (named ``schema_name`` in the message), else None."""
    from smartshare.rendering.schemacheck import SchemaFileError, load_schema, make_validator

    try:
        make_validator(load_schema(text, schema_name), schema_name)
    except SchemaFileError as exc:
        return str(exc)
    return None


def _usage_problems(
    usage: TemplateUsage,
    model: AppManifest,
    templates_dir: Path,
    *,
    image: bool,
    secrets: list[str],
    assets: list[str] | None,
) -> list[Problem]:
    problems: list[Problem] = []
    for issue in usage.issues:
        pattern = r"\{%-?\s*\w+" if "syntax error" not in issue.message else ""
        problems.append(
            _template_problem(
                templates_dir / issue.template, issue.line, pattern, "", issue.message
            )
        )
    for use, field, message, pattern in _usage_messages(
        usage,
        model,
        secrets=secrets if image else [],
        assets=assets,
        what="an image template",
        issues=False,
    ):
        problems.append(
            _template_problem(templates_dir / use.template, use.line, pattern, field, message)
        )
    for use in usage.requires_fields:
        unknown = not_required_problem(model, use.name.partition(".")[0])
        if unknown is not None:
            problems.append(_requires_use_problem(templates_dir, use, unknown))
    return problems


def _requires_use_problem(templates_dir: Path, use: Use, message: str) -> Problem:
    """``message`` about a ``requires.<app>[.<output>]`` use, at its place in its template."""
    name = use.name.partition(".")[0]
    pattern = rf"\brequires\s*(\.\s*{re.escape(name)}\b|\[)"
    return _template_problem(
        templates_dir / use.template, use.line, pattern, f"requires.{use.name}", message
    )


def _usage_messages(
    usage: TemplateUsage,
    model: AppManifest,
    *,
    secrets: list[str],
    assets: list[str] | None,
    what: str,
    issues: bool = True,
) -> list[tuple[Use, str, str, str]]:
    """What is wrong in what a template or string uses: (use, field, message, column pattern).

    ``secrets``: the secret parameters it must not use (none for a runtime
    template); ``assets``: the app's asset names (None: unknown, not checked).
    """
    found: list[tuple[Use, str, str, str]] = []
    if issues:
        found += [
            (Use(issue.template, issue.line, ""), "", issue.message, "") for issue in usage.issues
        ]
    declared = {p.name: p for p in model.parameters}
    where = {
        "an image template": "it would be baked into the image; use it in a runtime "
        "template instead",
        RUNTIME_VALUE: "a secret reaches a container only as a file: list it under the "
        "container's 'secrets:' (with 'env:' for the <VAR>_FILE convention)",
    }.get(
        what,
        "build arguments are kept in the image's history; give the value to the "
        "container at run time instead",
    )
    for use in usage.params:
        pattern = rf"\bparams\s*(\.\s*{use.name}\b|\[\s*['\"]{use.name}['\"])|\b{use.name}\b"
        parameter = declared.get(use.name)
        if parameter is None:
            names = [p.name for p in model.parameters]
            message = f"parameter '{use.name}' is not declared by app '{model.name}'"
            message += did_you_mean(use.name, names)
            found.append((use, f"params.{use.name}", message, pattern))
        elif use.name in secrets:
            message = f"secret parameter '{use.name}' of '{model.name}' is used by {what}: {where}"
            found.append((use, f"params.{use.name}", message, pattern))
    if secrets:
        for use in usage.whole_params:
            message = (
                f"{what} of '{model.name}' uses 'params' as a whole, which includes secret "
                f"parameter(s) {', '.join(secrets)}: {where}"
            )
            found.append((use, "params", message, r"\bparams\b"))
    fields: list[tuple[str, tuple[Use, ...], Collection[str]]] = [
        ("region", usage.region_fields, REGION_FIELDS),
        ("app", usage.app_fields, APP_FIELDS),
    ]
    if assets is not None:
        fields.append(("assets", usage.asset_fields, assets))
    for owner, uses, known in fields:
        for use in uses:
            if use.name not in known:
                message = (
                    f"app '{model.name}' has no asset '{use.name}'"
                    if owner == "assets"
                    else f"'{owner}' has no field '{use.name}'"
                ) + did_you_mean(use.name, known)
                found.append(
                    (use, f"{owner}.{use.name}", message, rf"\b{owner}\s*(\.\s*{use.name}\b|\[)")
                )
    for use in usage.undeclared:
        message = (
            f"'{use.name}' is not defined: a template can use region, app, params, requires, "
            "assets and its own variables"
        )
        found.append((use, use.name, message, rf"\b{use.name}\b"))
    return found


def _template_problem(path: Path, line: int, pattern: str, field: str, message: str) -> Problem:
    """An error at ``line`` of a template, at the column of ``pattern`` there."""
    return Problem(
        file=display_path(path),
        line=line,
        column=_column(path, line, pattern),
        severity=Severity.ERROR,
        field=field,
        message=message,
    )


def _column(path: Path, line: int, pattern: str) -> int:
    """1-based column of ``pattern`` on ``line`` of the template, else 1."""
    if not pattern:
        return 1
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return 1
    lines = _template_lines(str(path), mtime)
    if not 1 <= line <= len(lines):
        return 1
    match = re.search(pattern, lines[line - 1])
    return match.start() + 1 if match else 1


@lru_cache(maxsize=64)
def _template_lines(path: str, mtime: int) -> tuple[str, ...]:
    # Only called for problems, after analyse() has read the file successfully.
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()
