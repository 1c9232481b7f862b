"""The base images of a Dockerfile, read as the classic builder reads its ``FROM`` lines.

Every stage's ``FROM`` is found (the escape directive, line continuations and
comments as the builder handles them), its image ``ARG``-substituted with the
ARGs declared before the first ``FROM`` (their defaults, overridden by the build
arguments, as the builder does), and left out when it names an earlier stage or
``scratch``.  Nothing is built or fetched here: :mod:`smartshare.adoption.bases`
makes the images available before a build starts.

Only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DockerfileError(ValueError):
    """A Dockerfile whose ``FROM`` lines cannot be read; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class FromImage:
    """An image a stage starts from."""

    line: int  # where its FROM starts, 1-based
    written: str  # as the Dockerfile writes it: ${BASE_IMAGE}
    name: str  # ARGs substituted: docker.io/library/alpine:3.20


def base_images(
    text: str, build_args: Mapping[str, str] | None = None, *, target: str | None = None
) -> list[FromImage]:
    """Every image a stage of ``text`` starts from, in order (each once per FROM).

    With ``target``, the stages after it are left out: the classic builder
    builds every stage up to the target, and no further.  Raises
    :class:`DockerfileError` for a ``FROM`` without an image, or an ``ARG``
    substitution the builder would not accept.
    """
    args = dict(build_args or {})
    meta: dict[str, str] = {}  # the ARGs declared before the first FROM, with their values
    stages: set[str] = set()
    found: list[FromImage] = []
    seen_from = False
    reached_target = False
    for line, instruction, rest in _instructions(text):
        if instruction == "ARG" and not seen_from:
            for word in _words(rest, line):
                name, equals, default = word.partition("=")
                if not _NAME.fullmatch(name):
                    raise DockerfileError(line, f"ARG {name!r} is not a variable name")
                value = _substitute(_unquote(default), meta, line) if equals else None
                if name in args:
                    value = args[name]
                meta[name] = value if value is not None else ""
        elif instruction == "FROM":
            seen_from = True
            words = [w for w in _words(rest, line) if not w.startswith("--")]
            if not words:
                raise DockerfileError(line, "FROM names no image")
            written = words[0]
            name = _substitute(written, meta, line)
            if reached_target:
                break
            earlier = name.lower() == "scratch" or name.lower() in stages
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            if alias is not None:
                stages.add(alias)
            reached_target = target is not None and alias == target.lower()
            if not earlier:
                found.append(FromImage(line=line, written=written, name=name))
    return found


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, the rest) of each instruction, continuations joined."""
    escape = "\\"
    directives = True
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if directives:
            match = _DIRECTIVE.match(stripped)
            if match is not None:
                if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
                    escape = match.group(2)
                continue
            directives = False
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and (not stripped or stripped.startswith("#")):
            continue  # inside a continuation: comments and empty lines are dropped
        if not pending:
            start = number
        body = raw.rstrip()
        if body.endswith(escape):
            pending.append(body[: -len(escape)])
            continue
        pending.append(body)
        yield _split(start, pending)
        pending = []
    if pending:
        yield _split(start, pending)


def _split(start: int, parts: list[str]) -> tuple[int, str, str]:
    # The builder removes the escape and the line break, nothing else.
    joined = "".join(parts).strip()
    instruction, _, rest = joined.partition(" ")
    return start, instruction.upper(), rest.strip()


def _words(text: str, line: int) -> list[str]:
    """``text`` split at unquoted whitespace (quotes kept for the caller)."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in text:
        if quote is not None:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if quote is not None:
        raise DockerfileError(line, f"unmatched quote {quote} in {text!r}")
    if current:
        words.append("".join(current))
    return words


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _substitute(word: str, values: Mapping[str, str], line: int) -> str:
    """``word`` with ``$NAME``, ``${NAME}``, ``${NAME:-default}`` and ``${NAME:+alt}`` replaced.

    An ARG that is not declared (or has no value) is empty, as for the builder.
    """
    out: list[str] = []
    index = 0
    while index < len(word):
        ch = word[index]
        if ch == "\\" and index + 1 < len(word) and word[index + 1] == "$":
            out.append("$")
            index += 2
            continue
        if ch != "$":
            out.append(ch)
            index += 1
            continue
        if index + 1 < len(word) and word[index + 1] == "{":
            end = _closing_brace(word, index + 2)
            if end == -1:
                raise DockerfileError(line, f"missing '}}' in {word!r}")
            out.append(_expand(word[index + 2 : end], values, line, word))
            index = end + 1
            continue
        match = _NAME.match(word, index + 1)
        if match is None:
            out.append("$")
            index += 1
            continue
        out.append(values.get(match.group(), ""))
        index = match.end()
    return "".join(out)


def _closing_brace(word: str, start: int) -> int:
    """The index of the ``}`` closing a ``${`` whose body starts at ``start``, else -1."""
    depth = 1
    for index in range(start, len(word)):
        if word.startswith("${", index):
            depth += 1
        elif word[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _expand(inner: str, values: Mapping[str, str], line: int, word: str) -> str:
    match = _NAME.match(inner)
    if match is None:
        raise DockerfileError(line, f"bad substitution {word!r}")
    name, rest = match.group(), inner[match.end() :]
    value = values.get(name, "")
    if not rest:
        return value
    if rest.startswith(":-"):
        return value or _substitute(rest[2:], values, line)
    if rest.startswith(":+"):
        return _substitute(rest[2:], values, line) if value else ""
    raise DockerfileError(line, f"unsupported substitution {word!r} (use ${{NAME:-default}})")
