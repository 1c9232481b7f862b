"""Jinja's tokens for the template analysis, found in fewer Python steps.

Jinja's lexer tries the rules of a tag one at a time for every token (one
regular expression each, in a loop written for every setting Jinja has) and
passes each token through a second generator that converts its value.  For a
catalogue's templates that is three quarters of the parse (bench/README.md).
Here each tag's rules are one alternation in Jinja's order, built from the
environment's own lexer rules, so each token costs one match, and the values
are converted as Jinja converts them.

Only the analysis parses this way (:func:`parser_for`); rendering keeps
Jinja's own lexer.  Anything this does not handle gives None and the parser
reads Jinja's own tokens: a template Jinja's lexer refuses (its message is
the one reported), an environment with extensions, line statements,
``lstrip_blocks`` or another newline sequence, rules of another shape (a
Jinja release that changed them).  tests/test_fast_lexer.py holds the tokens
to Jinja's own on every template of the repository and on random ones.
"""

from __future__ import annotations

import re
import typing
from ast import literal_eval
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment
    from jinja2.lexer import Lexer, Token
    from jinja2.parser import Parser

# What a tag's rules after its end are, in Jinja's order.
_TAG_RULES = ("whitespace", "float", "integer", "name", "string", "operator")
_OPENING = frozenset("{([")
_CLOSING = {"}": "{", ")": "(", "]": "["}


def parser_for(env: Environment, text: str, name: str | None) -> Parser:
    """Jinja's parser for ``text``, reading the tokens of :func:`tokens_of` when it gives them."""
    from jinja2.lexer import TokenStream
    from jinja2.parser import Parser

    tokens = tokens_of(env, text)
    if tokens is None:
        return Parser(env, text, name=name)
    # Jinja's parser lexes the text it is given: given none, it reads these.
    parser = Parser(env, "", name=name)
    parser.stream = TokenStream(tokens, name, None)
    return parser


def tokens_of(env: Environment, text: str) -> list[Token] | None:
    """The tokens Jinja's lexer gives the parser for ``text``; None when Jinja must say."""
    if env.extensions or env.line_statement_prefix or env.line_comment_prefix:
        return None
    tables = _tables(env.lexer, env.block_end_string, env.variable_end_string)
    if tables is None:
        return None
    try:
        return tables.tokens(text)
    except _Unusual:
        return None


class _Unusual(Exception):
    """Something Jinja's own lexer should see: an error it reports, in its words."""


@dataclass(frozen=True)
class _Tables:
    root: re.Pattern[str]
    comment: re.Pattern[str]
    raw: re.Pattern[str]
    # state -> (a tag's rules, its end first; the same with an end that never matches), its end
    tags: dict[str, tuple[re.Pattern[str], re.Pattern[str], str, _Groups]]
    keep_trailing_newline: bool
    constants: Any  # jinja2.lexer

    def tokens(self, source: str) -> list[Token]:
        """Jinja's tokens for ``source``, as its lexer and the parser's wrapping make them.

        One loop, with the line of each token counted as it goes: this runs
        for every token of a catalogue, so it keeps to local names.
        """
        lexer = self.constants
        if "\r" in source:
            source = lexer.newline_re.sub("\n", source)
        if not self.keep_trailing_newline and source.endswith("\n"):
            source = source[:-1]
        new, token_class = tuple.__new__, lexer.Token
        count = source.count
        data_type, name_type, string_type = lexer.TOKEN_DATA, lexer.TOKEN_NAME, lexer.TOKEN_STRING
        integer_type, float_type = lexer.TOKEN_INTEGER, lexer.TOKEN_FLOAT
        comment_state, raw_state = lexer.TOKEN_COMMENT_BEGIN, lexer.TOKEN_RAW_BEGIN
        operators, tags = lexer.operators, self.tags
        tokens: list[Token] = []
        append = tokens.append
        line, counted = 1, 0  # the line at position `counted`
        length = len(source)
        pos = 0
        while pos < length:
            m = self.root.match(source, pos)
            if m is None:
                line += count("\n", counted, pos)
                append(new(token_class, (line, data_type, source[pos:])))
                break
            state = m.lastgroup or ""
            pos = m.end()
            # The text before the tag, and a raw block's up to its end: data.
            texts = [m]
            raw = self.raw.match(source, pos) if state == raw_state else None
            if raw is not None:
                texts.append(raw)
                pos = raw.end()
            for before in texts:
                data = self._text_before(before)
                if data:
                    line += count("\n", counted, before.start())
                    counted = before.start()
                    append(new(token_class, (line, data_type, data)))
            if state == raw_state:
                if raw is not None:
                    continue
                if pos < length:
                    raise _Unusual  # Jinja: "Missing end of raw directive"
                break  # Jinja's lexer stops at the end, so does this
            if state == comment_state:
                m = self.comment.match(source, pos)
                if m is None:
                    if pos < length:
                        raise _Unusual  # Jinja: "Missing end of comment tag"
                    break  # Jinja's lexer stops at the end, so does this
                pos = m.end()
                continue
            if state not in tags:
                raise _Unusual
            begin = m.start(state)
            line += count("\n", counted, begin)
            counted = begin
            append(new(token_class, (line, state, m.group(state))))
            with_end, without_end, end_type, groups = tags[state]
            end_group, integer_group, name_group = groups.end, groups.integer, groups.name
            string_group, operator_group = groups.string, groups.operator
            rules: re.Pattern[str] | None = with_end
            balance: list[str] = []
            while rules is not None:
                for m in rules.finditer(source, pos):
                    if m.start() != pos:  # a character no rule takes
                        raise _Unusual
                    group = m.lastindex or 0
                    start, pos = m.span(group)
                    line += count("\n", counted, start)
                    counted = start
                    data = source[start:pos]
                    if group == name_group:
                        if not data.isidentifier():
                            raise _Unusual
                        append(new(token_class, (line, name_type, data)))
                    elif group == operator_group:
                        if data in _OPENING:
                            balance.append(data)
                        elif data in _CLOSING and (not balance or balance.pop() != _CLOSING[data]):
                            raise _Unusual
                        append(new(token_class, (line, operators[data], data)))
                    elif group == string_group:
                        try:
                            escaped = data[1:-1].encode("ascii", "backslashreplace")
                            value = escaped.decode("unicode-escape")
                        except Exception as exc:  # Jinja's message for it
                            raise _Unusual from exc
                        append(new(token_class, (line, string_type, value)))
                    elif group == end_group:
                        if not balance:
                            append(new(token_class, (line, end_type, data)))
                            rules = None
                            break
                        # Inside brackets an end is none: Jinja reads on with its
                        # other rules (operators).  One token so, then on as before.
                        pos, rules = m.start(), without_end
                        break
                    else:
                        try:
                            number = (
                                int(data.replace("_", ""), 0)
                                if group == integer_group
                                else literal_eval(data.replace("_", ""))
                            )
                        except Exception as exc:  # a number longer than Python converts
                            raise _Unusual from exc
                        kind = integer_type if group == integer_group else float_type
                        append(new(token_class, (line, kind, number)))
                    if rules is without_end:
                        rules = with_end
                        break
                else:
                    if source[pos:].isspace() or pos == length:
                        return tokens  # it ends inside the tag: the parser says so
                    raise _Unusual  # a character no rule takes
        return tokens

    @staticmethod
    def _text_before(m: re.Match[str]) -> str:
        """The text before a tag (the first group), stripped as the tag's sign says."""
        groups = m.groups()
        text: str = groups[0]
        if next(sign for sign in groups[2::2] if sign is not None) == "-":
            return text.rstrip()
        return text


@lru_cache(maxsize=8)
def _tables(lexer: Lexer, block_end: str, variable_end: str) -> _Tables | None:
    from jinja2 import lexer as constants

    rules = lexer.rules
    if lexer.lstrip_blocks or lexer.newline_sequence != "\n":
        return None
    root, root_data = rules["root"]
    expected_root = {"raw_begin", "comment_begin", "block_begin", "variable_begin"}
    if set(root.pattern.groupindex) != expected_root or root_data.tokens != constants.TOKEN_DATA:
        return None
    comment, raw = rules[constants.TOKEN_COMMENT_BEGIN][0], rules[constants.TOKEN_RAW_BEGIN][0]
    if comment.tokens != (constants.TOKEN_COMMENT, constants.TOKEN_COMMENT_END):
        return None
    if tuple(raw.tokens) != (constants.TOKEN_DATA, constants.TOKEN_RAW_END):
        return None
    tags = {}
    for state, end_type, end_string in (
        (constants.TOKEN_BLOCK_BEGIN, constants.TOKEN_BLOCK_END, block_end),
        (constants.TOKEN_VARIABLE_BEGIN, constants.TOKEN_VARIABLE_END, variable_end),
    ):
        end, whitespace, *tag_rules = rules[state]
        if end.tokens != end_type or end.command != "#pop" or end_string[:1].isspace():
            return None
        if tuple(rule.tokens for rule in (whitespace, *tag_rules)) != _TAG_RULES:
            return None
        if any(rule.command is not None for rule in (whitespace, *tag_rules)):
            return None
        patterns = [whitespace.pattern, end.pattern, *(rule.pattern for rule in tag_rules)]
        if any(pattern.groupindex for pattern in patterns):
            return None
        scoped = [_scoped(pattern) for pattern in patterns]
        if None in scoped:
            return None
        space, *alternatives = typing.cast(list[str], scoped)
        with_end, groups = _alternation(space, alternatives)
        without_end, same_groups = _alternation(space, ["(?!)", *alternatives[1:]])
        if groups != same_groups:
            return None
        tags[state] = (with_end, without_end, end_type, groups)
    return _Tables(
        root=root.pattern,
        comment=comment.pattern,
        raw=raw.pattern,
        tags=tags,
        keep_trailing_newline=lexer.keep_trailing_newline,
        constants=constants,
    )


def _alternation(space: str, alternatives: list[str]) -> tuple[re.Pattern[str], _Groups]:
    """A tag's rules, in Jinja's order, as one expression.

    The whitespace before a token is part of its match: no rule but Jinja's
    whitespace rule matches where that one does (an end may not begin with a
    space), so skipping it first is what Jinja's order does.  Returned with
    the number of each rule's group (a match's ``lastindex``).
    """
    alternatives = [f"({alternative})" for alternative in alternatives]
    regex = re.compile(f"(?>{space}?)(?:{'|'.join(alternatives)})")
    groups = [1]
    for alternative in alternatives[:-1]:
        groups.append(groups[-1] + re.compile(alternative).groups)
    end, floating, integer, name, string, operator = groups
    return regex, _Groups(end, floating, integer, name, string, operator)


class _Groups(typing.NamedTuple):
    """The group of each of a tag's rules in its alternation."""

    end: int
    floating: int
    integer: int
    name: int
    string: int
    operator: int


def _scoped(pattern: re.Pattern[str]) -> str | None:
    """``pattern`` as a group with its own flags, to stand in an alternation."""
    letters = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s", re.VERBOSE: "x"}
    flags = pattern.flags & ~re.UNICODE
    if flags & ~sum(letters):
        return None
    scoped = "".join(letter for flag, letter in letters.items() if flags & flag)
    # In verbose mode a comment runs to the end of the line: end it before the ')'.
    tail = "\n" if flags & re.VERBOSE else ""
    return f"(?{scoped}:{pattern.pattern}{tail})" if scoped else f"(?:{pattern.pattern})"
