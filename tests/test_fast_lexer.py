"""The analysis's lexer (smartshare.rendering.fastlex) against Jinja's own.

The analysis parses every template of a catalogue with tokens made by
``fastlex``; rendering uses Jinja's lexer.  They must agree token for token
(type, value, line), and where Jinja's lexer refuses a text, ``fastlex`` must
give way to it (None), so the error reported is Jinja's.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from smartshare.rendering.analysis import TemplateAnalyser
from smartshare.rendering.fastlex import parser_for, tokens_of
from smartshare.rendering.sandbox import make_environment

REPOSITORY = Path(__file__).resolve().parent.parent


def jinja_tokens(env: Environment, text: str) -> list[Any] | Exception:
    try:
        return list(env.lexer.tokenize(text))
    except Exception as exc:  # TemplateSyntaxError, or a number too long for Python
        return exc


def assert_agrees(env: Environment, text: str) -> bool:
    """Fast tokens equal Jinja's; none where Jinja refuses the text (then False)."""
    fast = tokens_of(env, text)
    expected = jinja_tokens(env, text)
    if isinstance(expected, Exception):
        assert fast is None, text
        return False
    assert fast is not None, text
    assert [tuple(t) for t in fast] == [tuple(t) for t in expected], text
    return True


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> ImmutableSandboxedEnvironment:
    return make_environment(tmp_path_factory.mktemp("templates"))


def test_every_template_of_the_repository_lexes_as_jinja_lexes_it(
    env: ImmutableSandboxedEnvironment,
) -> None:
    files = sorted(p for p in REPOSITORY.rglob("*.j2") if ".venv" not in p.parts)
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.parent.name == "template-syntax":
            continue  # a syntax error on purpose: below
        assert assert_agrees(env, text), path
        # The parse tree is the same too.
        ours = parser_for(env, text, path.name).subparse()
        theirs = Parser(env, text, name=path.name).subparse()
        assert ours == theirs and repr(ours) == repr(theirs), path


CASES = [
    "",
    "plain text\nwith lines\n",
    "{{ x }}",
    "{{x}}{{y}}",
    "a {{- x -}} b\n  {%- if y -%}\n c {%- endif %}",
    "  {{- x }}\n\n{{ y -}}   \n\n z",
    "{# a comment {{ x }} #}after",
    "{#- stripped -#}   \n after",
    "before   {#- stripped #}",
    "line\r\nother\r{{ x }}\rlast",
    "{{ 'it''s' }}{{ \"double \\\" quote\" }}{{ 'tab\\tand\\nnew' }}",
    "{{ 'a\nb' }}\n{{ c }}",
    "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 012 }} {{ 0 }} {{ 00 }}",
    "{{ 1.5 }} {{ 1e5 }} {{ 1.5e-3 }} {{ 1_0.2_5 }} {{ 2E+3 }} {{ x.0 }} {{ 1.x }}",
    "{{ a + b - c * d / e // f % g ** h ~ i }}",
    "{{ a == b != c < d <= e > f >= g }}{% set x = 1 %}{{ [1, 2][0] }}{{ (1, 2) }}",
    "{{ {'a': {'b': 1}} }}",
    "{{ {'a': {'b': 1}}}}",
    "{% set d = {'k': (1)} %}{{ d }}",
    "{{ (a) -}}\n x",
    "{{ f(x=1, *args, **kw) | e | default('') }}",
    "{% raw %}{{ not parsed }}{% endraw %}after",
    "{%- raw -%}  {{ x }}  {%- endraw -%}  after",
    "text {% raw %}\n{{ x }}\n{% endraw %}\n{{ y }}",
    "{% for i in range(3) %}{{ loop.index }}{% endfor %}",
    "{{ naïve }} {{ 変数 }} {{ _private }}",
    "{{ x }}\n" * 50,
    "{%+ if x %}y{% endif +%}",
    "{% if x\n  and y\n %}\nz{% endif %}\n{{ w }}",
    "{{ '}}' }} {{ \"%}\" }}",
    "}} %} #} text that looks like ends",
    "{{ a",
    "{% if x  \n ",
    "{{ a ; b }}",
]


@pytest.mark.parametrize("text", CASES)
def test_hand_written_texts_lex_as_jinja_lexes_them(
    env: ImmutableSandboxedEnvironment, text: str
) -> None:
    assert assert_agrees(env, text)


REFUSED = [
    "{{ 'unterminated }}",
    "{{ a $ b }}",
    "{{ (a }}",
    "{{ a) }}",
    "{{ [a) }}",
    "{# no end",
    "text {# a comment without end",
    "{% raw %} no end",
    "{{ '\\N{no such name}' }}",
    "{{ 1" + "0" * 5000 + " }}",
    "{{ \u00b7a }}",
]


@pytest.mark.parametrize("text", REFUSED)
def test_what_jinja_refuses_is_left_to_jinja(
    env: ImmutableSandboxedEnvironment, text: str, tmp_path: Path
) -> None:
    assert tokens_of(env, text) is None
    assert_agrees(env, text)
    # The analysis reports what Jinja's own parse says.
    analyser = TemplateAnalyser(tmp_path)
    ours = analyser._parse_text(text, "t.j2", "digest")
    try:
        Parser(env, text, name="t.j2").subparse()
    except TemplateSyntaxError as exc:
        assert ours.syntax_error == (exc.lineno, exc.message)
    except Exception:  # a number too long for Python: located by the analysis
        assert ours.syntax_error is not None
    else:
        raise AssertionError(f"Jinja parses {text!r}")


FRAGMENTS = [
    "text ",
    "\n",
    "\r\n",
    "  ",
    "{{",
    "{{-",
    "}}",
    "-}}",
    "{%",
    "{%-",
    "%}",
    "-%}",
    "{#",
    "#}",
    "-#}",
    "{% raw %}",
    "{% endraw %}",
    "x",
    "params.a",
    "'s'",
    '"d"',
    "'",
    "1",
    "1.5",
    "0x1f",
    "1_0",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|",
    "e",
    "if",
    "endif",
    "for",
    "in",
    ",",
    ":",
    "**",
    "//",
    "-",
    "+",
    "~",
    "==",
    "=",
    ".",
    "$",
    "\\",
    "\t",
]


# A backslash before a letter Python does not know warns, in Jinja's lexer as here.
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
def test_random_texts_lex_as_jinja_lexes_them(env: ImmutableSandboxedEnvironment) -> None:
    r = random.Random(20261201)
    fast = 0
    for _ in range(4000):
        text = "".join(r.choice(FRAGMENTS) for _ in range(r.randrange(1, 30)))
        fast += assert_agrees(env, text)
    assert fast > 1000  # most are lexed here, not left to Jinja


def test_tags_made_of_valid_tokens_lex_as_jinja_lexes_them(
    env: ImmutableSandboxedEnvironment,
) -> None:
    r = random.Random(7)
    inside = [f for f in FRAGMENTS if not any(c in f for c in "{}%#$\\'\"") and f.strip()]
    fast = 0
    for _ in range(2000):
        body = " ".join(r.choice(inside) for _ in range(r.randrange(1, 12)))
        text = r.choice(["{{ ", "{{- ", "{% ", "{%- "]) + body
        text += r.choice([" }}", " -}}"]) if text.startswith("{{") else r.choice([" %}", " -%}"])
        fast += assert_agrees(env, "a\n" + text + "\n b")
    assert fast > 500  # not only brackets left open, which Jinja refuses


@pytest.mark.parametrize(
    "settings",
    [
        {"lstrip_blocks": True},
        {"line_statement_prefix": "#"},
        {"line_comment_prefix": "##"},
        {"newline_sequence": "\r\n"},
        {"extensions": ["jinja2.ext.loopcontrols"]},
    ],
)
def test_settings_it_does_not_handle_leave_the_tokens_to_jinja(settings: dict[str, Any]) -> None:
    env = ImmutableSandboxedEnvironment(**settings)
    assert tokens_of(env, "{{ x }}\n# if y\ntext ## note\n") is None
    parser = parser_for(env, "{{ x }}", "t.j2")
    assert parser.subparse() == Parser(env, "{{ x }}", name="t.j2").subparse()


def test_other_delimiters_lex_as_jinja_lexes_them() -> None:
    env = Environment(
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="${",
        variable_end_string="}",
        comment_start_string="<#",
        comment_end_string="#>",
        keep_trailing_newline=False,
    )
    text = "<% if x %>${ {'a': 1}['a'] }<# c #><%- endif -%>\n${ y }\n"
    assert assert_agrees(env, text)
