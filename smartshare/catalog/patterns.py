"""A manifest's ``pattern``: another region's regular expression, matched without backtracking.

Python's ``re`` backtracks: ``(a+)+$``, ``(a|a)*$`` or ``a?a?a?…aaa`` take
exponential time on a value of a few dozen characters, and ``\\d*\\d*\\d*x``
polynomial time on a longer one.  A pattern from a manifest is untrusted, so
smartshare never runs one with ``re``.  It is parsed by Python's own parser
(the syntax is Python's), turned into an automaton (Thompson's construction)
and matched by running every state of it at once over the value: time linear
in the value's length times the pattern's size, whatever the pattern.  What an
automaton cannot do (back-references, look-arounds, conditionals, atomic
groups, possessive quantifiers, inline flags) is refused with a message.

Bounds keep that product small: a pattern of at most :data:`MAX_PATTERN_LENGTH`
characters, an automaton of at most :data:`MAX_STATES` states (``x{1,400}``
counts 400 copies of ``x``), a value of at most :data:`MAX_MATCHED_LENGTH`
characters.  As in JSON Schema, a pattern is searched for in the value:
anchor it (``^...$``) to match the whole value.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_PATTERN_LENGTH = 256
MAX_STATES = 500
MAX_MATCHED_LENGTH = 4096

# Python's own regular-expression parser: the syntax stays exactly Python's.
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_UNICODE_FLAG: int = _c.SRE_FLAG_UNICODE
_REFUSED: dict[Any, str] = {
    _c.GROUPREF: "a back-reference",
    _c.GROUPREF_EXISTS: "a conditional group",
    _c.ASSERT: "a look-ahead or look-behind",
    _c.ASSERT_NOT: "a look-ahead or look-behind",
    _c.ATOMIC_GROUP: "an atomic group",
    _c.POSSESSIVE_REPEAT: "a possessive quantifier",
}


class PatternError(ValueError):
    """A pattern smartshare does not take: invalid, too large, or beyond an automaton."""


CharTest = Callable[[str], bool]


@dataclass
class _State:
    """One state of the automaton: reads a character, splits, or asserts a position."""

    test: CharTest | None = None  # a character state: what it reads
    out: int = -1
    alt: int = -1  # a split state: the second way on
    at: Any = None  # an assertion state: which position (re's AT_... code)


@dataclass(frozen=True)
class Pattern:
    """A compiled pattern: search a value with :meth:`search`."""

    source: str
    states: tuple[_State, ...]
    start: int
    accept: int

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text`` (as ``re.search`` would say)."""
        if len(text) > MAX_MATCHED_LENGTH:
            raise PatternError(
                f"a value checked against a pattern is at most {MAX_MATCHED_LENGTH} characters"
            )
        size = len(text)
        current: set[int] = set()
        for pos in range(size + 1):
            self._close([self.start], current, text, pos)  # a match may start anywhere
            if self.accept in current:
                return True
            if pos == size:
                return False
            char = text[pos]
            ahead = [
                state.out
                for index in current
                if (state := self.states[index]).test is not None and state.test(char)
            ]
            current = set()
            self._close(ahead, current, text, pos + 1)
        return False  # pragma: no cover - the loop returns at pos == size

    def _close(self, todo: list[int], found: set[int], text: str, pos: int) -> None:
        """Add to ``found`` the states reached from ``todo`` without reading a character."""
        seen: set[int] = set()
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            state = self.states[index]
            if state.test is not None or index == self.accept:
                found.add(index)
            elif state.at is not None:
                if _holds(state.at, text, pos):
                    todo.append(state.out)
            else:
                todo.append(state.out)
                if state.alt >= 0:
                    todo.append(state.alt)


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _holds(at: Any, text: str, pos: int) -> bool:
    size = len(text)
    if at in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
        return pos == 0
    if at == _c.AT_END:
        return pos == size or (pos == size - 1 and text[pos] == "\n")
    if at == _c.AT_END_STRING:
        return pos == size
    before = pos > 0 and _is_word(text[pos - 1])
    after = pos < size and _is_word(text[pos])
    return (before != after) if at == _c.AT_BOUNDARY else (before == after)


_CATEGORIES: dict[Any, CharTest] = {
    _c.CATEGORY_DIGIT: str.isdecimal,
    _c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
    _c.CATEGORY_SPACE: str.isspace,
    _c.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    _c.CATEGORY_WORD: _is_word,
    _c.CATEGORY_NOT_WORD: lambda ch: not _is_word(ch),
}


def _char_set(items: Sequence[tuple[Any, Any]]) -> CharTest:
    negate = False
    literals: set[str] = set()
    ranges: list[tuple[int, int]] = []
    categories: list[CharTest] = []
    for op, arg in items:
        if op == _c.NEGATE:
            negate = True
        elif op == _c.LITERAL:
            literals.add(chr(arg))
        elif op == _c.RANGE:
            ranges.append((arg[0], arg[1]))
        elif op == _c.CATEGORY and arg in _CATEGORIES:
            categories.append(_CATEGORIES[arg])
        else:
            raise PatternError(f"unsupported character class item {op}")

    def test(char: str) -> bool:
        code = ord(char)
        inside = (
            char in literals
            or any(low <= code <= high for low, high in ranges)
            or any(category(char) for category in categories)
        )
        return inside != negate

    return test


class _Builder:
    """Thompson's construction, from the end of the pattern to its start."""

    def __init__(self) -> None:
        self.states: list[_State] = []

    def add(self, state: _State) -> int:
        if len(self.states) >= MAX_STATES:
            raise PatternError(
                f"the pattern is too large (more than {MAX_STATES} states: "
                "a bounded repeat such as x{1,400} counts each copy)"
            )
        self.states.append(state)
        return len(self.states) - 1

    def sequence(self, items: Any, then: int) -> int:
        for op, arg in reversed(list(items)):
            then = self.item(op, arg, then)
        return then

    def item(self, op: Any, arg: Any, then: int) -> int:
        if op in _REFUSED:
            raise PatternError(f"{_REFUSED[op]} cannot be matched without backtracking")
        if op == _c.LITERAL:
            char = chr(arg)
            return self.add(_State(test=lambda ch: ch == char, out=then))
        if op == _c.NOT_LITERAL:
            excluded = chr(arg)
            return self.add(_State(test=lambda ch: ch != excluded, out=then))
        if op == _c.ANY:
            return self.add(_State(test=lambda ch: ch != "\n", out=then))
        if op == _c.IN:
            return self.add(_State(test=_char_set(arg), out=then))
        if op == _c.CATEGORY and arg in _CATEGORIES:
            return self.add(_State(test=_CATEGORIES[arg], out=then))
        if op == _c.AT:
            return self.add(_State(at=arg, out=then))
        if op == _c.SUBPATTERN:
            _group, add_flags, del_flags, body = arg
            if add_flags or del_flags:
                raise PatternError("inline flags such as (?i:...) are not supported")
            return self.sequence(body, then)
        if op == _c.BRANCH:
            starts = [self.sequence(branch, then) for branch in arg[1]]
            start = starts[-1]
            for other in reversed(starts[:-1]):
                start = self.add(_State(out=other, alt=start))
            return start
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            return self.repeat(arg, then)
        raise PatternError(f"unsupported construct {op}")

    def repeat(self, arg: Any, then: int) -> int:
        low, high, body = arg
        if high == _c.MAXREPEAT:
            loop = self.add(_State(alt=then))  # out filled in below: the body, once more
            self.states[loop].out = self.sequence(body, loop)
            start = loop
        else:
            start = then
            for _ in range(high - low):
                start = self.add(_State(out=self.sequence(body, start), alt=then))
        for _ in range(low):
            start = self.sequence(body, start)
        return start


@lru_cache(maxsize=256)
def compile_pattern(source: str) -> Pattern:
    """The automaton of ``source``; PatternError says why it is not taken."""
    if len(source) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern is at most {MAX_PATTERN_LENGTH} characters")
    try:
        parsed = _parser.parse(source)
    except (re.error, RecursionError, OverflowError) as exc:
        raise PatternError(f"not a valid regular expression: {exc}") from None
    if parsed.state.flags & ~_UNICODE_FLAG:
        raise PatternError("inline flags such as (?i) are not supported")
    builder = _Builder()
    accept = builder.add(_State())
    start = builder.sequence(parsed, accept)
    return Pattern(source=source, states=tuple(builder.states), start=start, accept=accept)
