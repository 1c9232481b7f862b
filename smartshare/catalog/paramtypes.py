"""Parameter types: a documented subset of JSON Schema, and the one check of a value against it.

A parameter (and each list item and object property inside it) has a
:class:`ValueSpec`: ``type`` and the constraints that type takes.
:func:`value_problem` is the single judge of a value, whether it is a
manifest's ``default``, a region profile's value or a ``--set`` value;
:func:`parse_text` turns a ``--set`` value into the declared type first;
:func:`json_schema_of` gives editors the same rules.

Messages describe values by kind and size ("got text", "got 3 items"), never
by content: a region may put a secret where it does not belong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)

from smartshare.catalog.diagnostics import shown_value
from smartshare.catalog.patterns import PatternError, compile_pattern

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
# An object property: a key of the configuration an app reads (camelCase allowed).
PROPERTY_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

_PROPERTY_NAME = re.compile(PROPERTY_NAME_PATTERN)
_URL = re.compile(URL_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)

ScalarValue = str | int | bool | float
Number = StrictInt | StrictFloat
Count = Annotated[StrictInt, Field(ge=0)]


class ParameterType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    URL = "url"
    EMAIL = "email"
    ENUM = "enum"
    LIST = "list"
    OBJECT = "object"


_TEXT_TYPES = frozenset({ParameterType.STRING, ParameterType.URL, ParameterType.EMAIL})
_NUMBER_TYPES = frozenset({ParameterType.INTEGER, ParameterType.NUMBER})
# The constraints each type takes (besides `type` itself).
_CONSTRAINTS: dict[str, frozenset[ParameterType]] = {
    "choices": frozenset({ParameterType.ENUM}),
    "minimum": _NUMBER_TYPES,
    "maximum": _NUMBER_TYPES,
    "pattern": _TEXT_TYPES,
    "min_length": _TEXT_TYPES,
    "max_length": _TEXT_TYPES,
    "items": frozenset({ParameterType.LIST}),
    "min_items": frozenset({ParameterType.LIST}),
    "max_items": frozenset({ParameterType.LIST}),
    "properties": frozenset({ParameterType.OBJECT}),
}
# The constraints added to the first types (choices is as old as them).
CONSTRAINT_NAMES = tuple(name for name in _CONSTRAINTS if name != "choices")


class ValueSpec(BaseModel):
    """What a value must be: a type and its constraints (a list's items are one too)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    # Keys a dump leaves out when they are not given: a manifest that does not
    # use them dumps (and so digests) as it did before they existed.
    dump_when_unset: ClassVar[frozenset[str]] = frozenset()

    type: ParameterType = ParameterType.STRING
    choices: list[ScalarValue] | None = None
    minimum: Number | None = Field(default=None, description="integer, number: the smallest")
    maximum: Number | None = Field(default=None, description="integer, number: the largest")
    pattern: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="string, url, email: a regular expression the value must contain "
        "(anchor it with ^...$); no back-references or look-arounds",
    )
    min_length: Count | None = Field(default=None, description="string, url, email")
    max_length: Count | None = Field(default=None, description="string, url, email")
    items: ValueSpec | None = Field(
        default=None, description="list: what each item is (default: any plain value)"
    )
    min_items: Count | None = Field(default=None, description="list: the fewest items")
    max_items: Count | None = Field(default=None, description="list: the most items")
    properties: dict[Annotated[str, Field(pattern=PROPERTY_NAME_PATTERN)], PropertySpec] | None = (
        Field(default=None, description="object: its keys, each with its own type")
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_taken(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_pattern(value)
            except PatternError as exc:
                raise ValueError(f"pattern {shown_value(value)}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _constraints_fit(self) -> ValueSpec:
        problem = spec_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_serializer(mode="wrap")
    def _dump_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        first = {"name": data.pop("name")} if "name" in data else {}
        return first | {
            k: v
            for k, v in data.items()
            if v is not None or k not in _CONSTRAINTS or k in self.dump_when_unset
        }


class PropertySpec(ValueSpec):
    """An object's property: its type, and whether the object must have it."""

    required: bool = False
    description: str = ""


def spec_problem(spec: ValueSpec) -> str | None:
    """What is wrong across a spec's fields, or None."""
    kind = spec.type
    fields = vars(spec)  # one dict, not an attribute lookup per constraint: every parameter
    for name, kinds in _CONSTRAINTS.items():
        if fields[name] is not None and kind not in kinds:
            allowed = ", ".join(sorted(k.value for k in kinds))
            return f"'{name}' is only for parameters of type {allowed}"
    if kind is ParameterType.ENUM and not spec.choices:
        return "an enum parameter needs 'choices'"
    if kind is ParameterType.OBJECT and not spec.properties:
        return "an object parameter needs 'properties': its keys, each with a type"
    for low, high in (
        ("minimum", "maximum"),
        ("min_length", "max_length"),
        ("min_items", "max_items"),
    ):
        low_value, high_value = fields[low], fields[high]
        if low_value is not None and high_value is not None and low_value > high_value:
            return f"'{low}' is larger than '{high}'"
    return None


@dataclass(frozen=True)
class ValueProblem:
    """Why a value does not fit: where inside it, and what it must be there."""

    path: tuple[str | int, ...]  # () for the value itself, (0,), ("layers", 2, "name")...
    message: str  # "must be a number (got text)"

    def explain(self, name: str, spec: ValueSpec) -> str:
        """The whole sentence about parameter ``name``, e.g. ``map_center[0] must be ...``."""
        if not self.path:
            return f"{name} {self.message}"
        return f"{name}{path_text(self.path)} {self.message} ({name} must be {describe(spec)})"


def path_text(path: tuple[str | int, ...]) -> str:
    """``(0, "name")`` -> ``[0].name`` (a key that is no identifier quoted, and cut)."""
    return "".join(
        f"[{part}]"
        if isinstance(part, int)
        else f".{part}"
        if _PROPERTY_NAME.fullmatch(part)
        else f"[{shown_value(part)}]"
        for part in path
    )


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_PLURALS = {
    ParameterType.STRING: "strings",
    ParameterType.INTEGER: "whole numbers",
    ParameterType.NUMBER: "numbers",
    ParameterType.BOOLEAN: "true/false values",
    ParameterType.URL: "URLs",
    ParameterType.EMAIL: "email addresses",
    ParameterType.ENUM: "choices",
    ParameterType.LIST: "lists",
    ParameterType.OBJECT: "objects",
}


def _bounds(low: Any, high: Any, unit: str = "") -> str:
    """``2``, ``1 to 5``, ``at least 1``, ``at most 5``: with ``unit`` (plural) after it."""

    def counted(number: Any) -> str:
        if not unit:
            return str(number)
        return f"{number} {unit.removesuffix('s') if number == 1 else unit}"

    if low is not None and high is not None:
        return counted(low) if low == high else f"{low} to {counted(high)}"
    if low is not None:
        return f"at least {counted(low)}"
    if high is not None:
        return f"at most {counted(high)}"
    return ""


def describe(spec: ValueSpec) -> str:
    """What a value of ``spec`` is, in words: ``a list of 2 numbers``."""
    kind = spec.type
    if kind in _NUMBER_TYPES:
        noun = "a whole number" if kind is ParameterType.INTEGER else "a number"
        if spec.minimum is not None and spec.maximum is not None:
            return f"{noun} from {spec.minimum} to {spec.maximum}"
        span = _bounds(spec.minimum, spec.maximum)
        return f"{noun} of {span}" if span else noun
    if kind is ParameterType.BOOLEAN:
        return "true or false"
    if kind is ParameterType.ENUM:
        return "one of " + ", ".join(map(str, spec.choices or []))
    if kind is ParameterType.LIST:
        count = _bounds(spec.min_items, spec.max_items)
        what = _PLURALS[spec.items.type] if spec.items else "plain values"
        return f"a list of {count + ' ' if count else ''}{what}"
    if kind is ParameterType.OBJECT:
        keys = ", ".join(spec.properties or {})
        return f"an object with the keys {keys}"
    nouns = {
        ParameterType.URL: "an http:// or https:// URL",
        ParameterType.EMAIL: "an email address",
    }
    text = nouns.get(kind, "a string")
    length = _bounds(spec.min_length, spec.max_length, "characters")
    if length:
        text += f" of {length}"
    if spec.pattern is not None:
        text += f" matching {shown_value(spec.pattern)}"
    return text


def spec_details(spec: ValueSpec) -> list[str]:
    """Lines saying what ``spec`` takes beyond its bare type, for ``smartshare show``.

    ``takes a list of 2 numbers``, ``each item: a number from -180 to 180``,
    then one line per property of an object (``[].name: a string
    (required)``), nested ones included.
    """
    lines = [f"takes {describe(spec)}"] if _constrained(spec, but="choices") else []
    items = spec.items
    if items is not None and items.type is not ParameterType.OBJECT and _constrained(items):
        lines.append(f"each item: {describe(items)}")
    lines.extend(_property_lines(spec, ""))
    return lines


def _constrained(spec: ValueSpec, *, but: str = "") -> bool:
    return any(getattr(spec, name) is not None for name in _CONSTRAINTS if name != but)


def _property_lines(spec: ValueSpec, prefix: str) -> list[str]:
    if spec.type is ParameterType.LIST and spec.items is not None:
        return _property_lines(spec.items, prefix + "[]")
    lines: list[str] = []
    for key, prop in (spec.properties or {}).items():
        where = f"{prefix}.{key}"
        lines.append(f"{where}: {describe(prop)}{' (required)' if prop.required else ''}")
        items = prop.items
        if items is not None and items.type is not ParameterType.OBJECT and _constrained(items):
            lines.append(f"{where}[]: {describe(items)}")
        lines.extend(_property_lines(prop, where))
    return lines


def value_problem(spec: ValueSpec, value: Any) -> ValueProblem | None:
    """Why ``value`` does not fit ``spec`` (the first reason, deepest first), or None."""
    kind = spec.type
    if kind is ParameterType.BOOLEAN:
        return None if isinstance(value, bool) else _wrong(spec, value)
    if kind in _NUMBER_TYPES:
        whole = isinstance(value, int) and not isinstance(value, bool)
        number = whole or (isinstance(value, float) and math.isfinite(value))
        if not (whole if kind is ParameterType.INTEGER else number):
            return _wrong(spec, value)
        too_small = spec.minimum is not None and value < spec.minimum
        too_large = spec.maximum is not None and value > spec.maximum
        if too_small or too_large:
            return _wrong(spec, got=f"a {'smaller' if too_small else 'larger'} one")
        return None
    if kind is ParameterType.ENUM:
        ok = any(value == choice and type(value) is type(choice) for choice in spec.choices or [])
        return None if ok else _wrong(spec)
    if kind is ParameterType.LIST:
        return _list_problem(spec, value)
    if kind is ParameterType.OBJECT:
        return _object_problem(spec, value)
    return _text_problem(spec, value)


_NOTHING = object()


def _wrong(
    spec: ValueSpec, value: Any = _NOTHING, *, got: str = "", then: str = ""
) -> ValueProblem:
    """``must be <what spec takes> (got <kind of value, or got>)<then>``, made on failure."""
    if value is not _NOTHING:
        got = _kind_of(value)
    return ValueProblem((), f"must be {describe(spec)}{f' (got {got})' if got else ''}{then}")


def _list_problem(spec: ValueSpec, value: Any) -> ValueProblem | None:
    if not isinstance(value, list):
        return _wrong(spec, value)
    for index, item in enumerate(value):
        if spec.items is not None:
            inner = value_problem(spec.items, item)
            if inner is not None:
                return ValueProblem((index, *inner.path), inner.message)
        elif not isinstance(item, ScalarValue):
            return ValueProblem((index,), f"must be a plain value (got {_kind_of(item)})")
    count = len(value)
    if (spec.min_items is not None and count < spec.min_items) or (
        spec.max_items is not None and count > spec.max_items
    ):
        return _wrong(spec, got=f"{count} item{'' if count == 1 else 's'}")
    return None


def _object_problem(spec: ValueSpec, value: Any) -> ValueProblem | None:
    if not isinstance(value, dict):
        return _wrong(spec, value)
    properties: Mapping[str, PropertySpec] = spec.properties or {}
    for key in value:
        if key not in properties:
            return ValueProblem((key,), f"is not a key it takes ({', '.join(properties)})")
    for key, prop in properties.items():
        if key not in value:
            if prop.required:
                return ValueProblem((), f"needs the key '{key}'")
            continue
        inner = value_problem(prop, value[key])
        if inner is not None:
            return ValueProblem((key, *inner.path), inner.message)
    return None


def _text_problem(spec: ValueSpec, value: Any) -> ValueProblem | None:
    if not isinstance(value, str):
        return _wrong(spec, value, then="; quote it in YAML")
    kind = spec.type
    if (kind is ParameterType.URL and not _URL.fullmatch(value)) or (
        kind is ParameterType.EMAIL and not _EMAIL.fullmatch(value)
    ):
        return _wrong(spec)
    size = len(value)
    if (spec.min_length is not None and size < spec.min_length) or (
        spec.max_length is not None and size > spec.max_length
    ):
        return _wrong(spec, got=f"{size} character{'' if size == 1 else 's'}")
    if spec.pattern is not None:
        try:
            matches = compile_pattern(spec.pattern).search(value)
        except PatternError as exc:
            return _wrong(spec, then=f": {exc}")
        if not matches:
            return _wrong(spec)
    return None


# -- --set: text to the declared type ---------------------------------------------------

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def parse_text(spec: ValueSpec, raw: str) -> Any:
    """A ``--set`` value as the declared type says, for :func:`value_problem` to judge.

    Numbers, booleans and enum choices are read from their text; a list is
    JSON (``[...]``) or comma-separated items read by the items' type; an
    object is JSON.  Text that cannot be read is returned as it is: the
    check then says what it should have been.
    """
    kind = spec.type
    text = raw.strip()
    if kind is ParameterType.INTEGER:
        return int(text) if _INTEGER_TEXT.fullmatch(text) else raw
    if kind is ParameterType.NUMBER:
        if _INTEGER_TEXT.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return raw
        return number if math.isfinite(number) else raw
    if kind is ParameterType.BOOLEAN:
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        return raw
    if kind is ParameterType.ENUM:
        return next((c for c in spec.choices or [] if str(c) == raw), raw)
    if kind is ParameterType.OBJECT or (kind is ParameterType.LIST and text.startswith("[")):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return raw
    if kind is ParameterType.LIST:
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if spec.items is None:
            return parts
        return [parse_text(spec.items, part) for part in parts]
    return raw


def json_text_problem(spec: ValueSpec, raw: str) -> str | None:
    """Why a ``--set`` value meant as JSON (a list or object) is not JSON, or None.

    The decoder's message names a position, never the text.
    """
    text = raw.strip()
    if spec.type not in (ParameterType.LIST, ParameterType.OBJECT) or text[:1] not in ("[", "{"):
        return None
    try:
        json.loads(text)
    except ValueError as exc:
        return f"the value is not valid JSON ({exc})"
    except RecursionError:
        return "the value is not valid JSON (nested too deeply)"
    return None


# -- JSON Schema, for editors ------------------------------------------------------------


def json_schema_of(spec: ValueSpec, *, description: str = "") -> dict[str, Any]:
    """The JSON Schema of the values ``spec`` takes (the same rules, for editors)."""
    kind = spec.type
    schema: dict[str, Any]
    if kind is ParameterType.ENUM:
        schema = {"enum": list(spec.choices or [])}
    elif kind is ParameterType.LIST:
        schema = {"type": "array"}
        if spec.items is not None:
            schema["items"] = json_schema_of(spec.items)
        else:
            schema["items"] = {"type": ["string", "number", "boolean"]}
        if spec.min_items is not None:
            schema["minItems"] = spec.min_items
        if spec.max_items is not None:
            schema["maxItems"] = spec.max_items
    elif kind is ParameterType.OBJECT:
        properties = spec.properties or {}
        schema = {
            "type": "object",
            "properties": {
                key: json_schema_of(prop, description=prop.description)
                for key, prop in properties.items()
            },
            "additionalProperties": False,
        }
        required = [key for key, prop in properties.items() if prop.required]
        if required:
            schema["required"] = required
    elif kind in _NUMBER_TYPES:
        schema = {"type": kind.value}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
    elif kind is ParameterType.BOOLEAN:
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
        if kind is ParameterType.URL:
            schema["pattern"] = URL_PATTERN
        elif kind is ParameterType.EMAIL:
            schema["pattern"] = EMAIL_PATTERN
        if spec.pattern is not None and "pattern" in schema:
            schema["allOf"] = [{"pattern": spec.pattern}]
        elif spec.pattern is not None:
            schema["pattern"] = spec.pattern
        if spec.min_length is not None:
            schema["minLength"] = spec.min_length
        if spec.max_length is not None:
            schema["maxLength"] = spec.max_length
    if description:
        schema["description"] = description
    return schema
