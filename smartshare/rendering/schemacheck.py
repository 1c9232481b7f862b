"""Check a rendered file against the JSON Schema its template declares.

A template may name a schema (``schema: source:PATH`` in the app's source
tree, or ``catalog:PATH`` under the catalogue's ``templates/``) that its
output, read as JSON or YAML, must satisfy: the app's own check of its
configuration, run before anything is built.  The check runs in a render
worker (:mod:`.pool`), under the same limits as a render: a schema comes from
another region, and a ``pattern`` can take as long as it likes.

A schema is untrusted: at most :data:`MAX_SCHEMA_BYTES`, JSON, a valid JSON
Schema of a draft the validator knows, and its ``$ref`` are followed inside
the schema itself and to the drafts' own meta-schemas only (no network, no
files).  ``jsonschema`` is imported only here, when a schema is checked.

What a failure says: the rendered file, the JSON path and why.  A runtime
file may hold secrets, and a validator's own message quotes the value it
refused, so for runtime files the message is made of the schema's keyword
and constraint only, and the path shows only the keys the schema itself
names (any other key as ``*``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

MAX_SCHEMA_BYTES = 1024 * 1024
_SHOWN = 100  # characters of a schema constraint shown
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class OutputCheck:
    """One rendered file and the schema it must satisfy (what a worker is sent)."""

    dest: str
    template: str
    runtime: bool
    format: str  # json | yaml
    schema_name: str  # as the manifest names it: source:PATH or catalog:PATH
    schema_text: str
    content: str

    @property
    def label(self) -> str:
        return f"{self.dest} (rendered from {self.template})"


class SchemaFileError(Exception):
    """The schema itself cannot be used; the message says why (no rendered value in it)."""


def check_output(check: OutputCheck) -> str | None:
    """Why ``check.content`` does not satisfy its schema, or None when it does."""
    try:
        schema = load_schema(check.schema_text, check.schema_name)
        validator = make_validator(schema, check.schema_name)
    except SchemaFileError as exc:
        return str(exc)
    try:
        instance = _parse(check)
    except _Unreadable as exc:
        return f"{check.label} is not valid {check.format.upper()}: {exc}"
    from referencing.exceptions import Unresolvable

    try:
        errors = list(validator.iter_errors(instance))
    except Unresolvable as exc:
        return (
            f"schema {check.schema_name}: $ref {_short(str(getattr(exc, 'ref', '')))} cannot "
            "be resolved: references are followed inside the schema only (no network, no files)"
        )
    except RecursionError:
        return f"schema {check.schema_name}: its references recurse without end"
    if not errors:
        return None
    from jsonschema.exceptions import best_match

    error = best_match(errors)
    assert error is not None
    if check.runtime:
        names = schema_names(schema)
        why = constraint(error)
    else:
        names = None
        why = _cut(error.message, 300)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (
        f"{check.label} does not satisfy its schema {check.schema_name} at "
        f"{json_path(error, names)}: {why}{more}"
    )


def load_schema(text: str, name: str) -> Any:
    """The schema in ``text`` (JSON: an object or a boolean); SchemaFileError otherwise."""
    if len(text.encode("utf-8", "replace")) > MAX_SCHEMA_BYTES:
        raise SchemaFileError(f"schema {name} is larger than {MAX_SCHEMA_BYTES // 1024} KiB")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaFileError(
            f"schema {name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise SchemaFileError(f"schema {name} is nested too deeply") from None
    if not isinstance(schema, dict | bool):
        raise SchemaFileError(f"schema {name} is not a JSON Schema: not an object")
    return schema


def make_validator(schema: Any, name: str) -> Validator:
    """A validator for ``schema`` that resolves no reference outside it; SchemaFileError if bad."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import Draft202012Validator, validator_for

    if isinstance(schema, dict) and "$schema" in schema:
        cls = validator_for(schema, default=None)  # type: ignore[arg-type]  # None: unknown
        if cls is None:
            raise SchemaFileError(
                f"schema {name}: unknown $schema {_short(str(schema['$schema']))}; "
                "use a JSON Schema draft (4, 6, 7, 2019-09 or 2020-12)"
            )
    else:
        cls = Draft202012Validator
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "$" + "".join(_path_parts(exc.absolute_path, None))
        raise SchemaFileError(
            f"schema {name} is not a valid JSON Schema: at {where}: {_cut(exc.message, 200)}"
        ) from None
    except RecursionError:
        raise SchemaFileError(f"schema {name} is nested too deeply") from None
    validator: Validator = cls(
        schema, registry=_offline_registry(), format_checker=cls.FORMAT_CHECKER
    )
    return validator


def _offline_registry() -> Any:
    """A registry that retrieves nothing: the drafts' meta-schemas are added by jsonschema."""
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    def retrieve(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs-made __init__

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]  # attrs-made __init__


class _Unreadable(Exception):
    """The rendered output does not parse; the message holds no rendered text for runtime files."""


def _parse(check: OutputCheck) -> Any:
    if check.format == "json":
        try:
            return json.loads(check.content)
        except json.JSONDecodeError as exc:
            # The message names what was expected, never what was found.
            raise _Unreadable(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        except RecursionError:
            raise _Unreadable("nested too deeply") from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(check.content, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        if check.runtime:
            raise _Unreadable(where) from None
        raise _Unreadable(f"{exc.problem or exc.context} ({where})") from None
    except yaml.YAMLError:
        raise _Unreadable("it does not parse") from None
    except RecursionError:
        raise _Unreadable("nested too deeply") from None


def json_path(error: ValidationError, names: frozenset[str] | None) -> str:
    """``$.db.port`` of the failing value; with ``names``, other keys shown as ``*``."""
    return _cut("$" + "".join(_path_parts(error.absolute_path, names)), 200)


def _path_parts(path: Any, names: frozenset[str] | None) -> Iterator[str]:
    for part in path:
        if isinstance(part, int):
            yield f"[{part}]"
        elif names is not None and part not in names:
            yield ".*"
        elif isinstance(part, str) and _IDENTIFIER.fullmatch(part):
            yield f".{part}"
        else:
            yield f"[{json.dumps(str(part), ensure_ascii=False)}]"


def schema_names(schema: Any) -> frozenset[str]:
    """Every property name the schema itself writes (``properties``, ``required``...)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for keyword in ("properties", "dependentRequired", "dependentSchemas", "dependencies"):
            value = node.get(keyword)
            if isinstance(value, dict):
                names.update(k for k in value if isinstance(k, str))
        required = node.get("required")
        if isinstance(required, list):
            names.update(k for k in required if isinstance(k, str))
        stack.extend(node.values())
    return frozenset(names)


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
}
_COUNTS = {
    "minLength": ("at least", "characters long"),
    "maxLength": ("at most", "characters long"),
    "minItems": ("at least", "items"),
    "maxItems": ("at most", "items"),
    "minProperties": ("at least", "properties"),
    "maxProperties": ("at most", "properties"),
}


def constraint(error: ValidationError) -> str:
    """What the schema asks at ``error``, from its keyword and the schema's own value only."""
    keyword = error.validator
    value = error.validator_value
    if keyword is None:
        return "nothing is allowed here (the schema is false)"
    if keyword == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be of type " + " or ".join(str(k) for k in kinds)
    if keyword == "required" and isinstance(value, list):
        present: Mapping[str, Any] = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in value if isinstance(name, str) and name not in present]
        shown = ", ".join(_short(name) for name in missing) or _short(value)
        return f"required property {shown} is missing"
    if keyword in ("additionalProperties", "unevaluatedProperties") and value is False:
        return "has a property the schema does not allow"
    if keyword in _BOUNDS:
        return f"must be {_BOUNDS[str(keyword)]} {_short(value)}"
    if keyword in _COUNTS:
        bound, unit = _COUNTS[str(keyword)]
        verb = "be" if unit == "characters long" else "have"
        return f"must {verb} {bound} {_short(value)} {unit}"
    if keyword == "multipleOf":
        return f"must be a multiple of {_short(value)}"
    if keyword == "uniqueItems":
        return "must not list an item twice"
    if keyword == "enum":
        return f"must be one of {_short(value)}"
    if keyword == "const":
        return f"must be {_short(value)}"
    if keyword == "pattern":
        return f"must match the pattern {_short(value)}"
    if keyword == "format":
        return f"must be a valid {_short(value)}"
    return f"does not satisfy the schema's '{_cut(str(keyword), 40)}'"


def _short(value: Any) -> str:
    return _cut(json.dumps(value, ensure_ascii=False, default=str), _SHOWN)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
