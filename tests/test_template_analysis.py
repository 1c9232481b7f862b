"""Template analysis in one walk: what it finds, and that it refuses what Jinja's compiler would.

The analysis no longer compiles templates (the code generator cost ten times
the parse).  What the compiler refuses is found by the walk instead, so these
tests hold the walk to the compiler itself: the same first error, line and
message, on hand-written cases and on seeded random templates, and the proof
that templates the walk does not compile are shallow enough for Python.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2 import nodes as n
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from smartshare.rendering.analysis import COMPILE_DEPTH, TemplateAnalyser, Use
from smartshare.rendering.analysis_data import Parsed
from smartshare.rendering.sandbox import make_environment


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder


def parsed(root: Path, text: str) -> Parsed:
    (root / "t.j2").write_text(text, encoding="utf-8")
    result = TemplateAnalyser(root).parsed("t.j2")
    assert result is not None
    return result


def compiler_says(env: ImmutableSandboxedEnvironment, text: str) -> tuple[int, str] | None:
    """What Jinja's compiler refuses in ``text``, as the analysis reports it."""
    try:
        env.compile(text, name="t.j2")
    except TemplateSyntaxError as exc:
        return exc.lineno, exc.message or "invalid template"
    except (RecursionError, SyntaxError):
        return 1, "the template is nested too deeply"
    return None


# Each of the compiler's refusals, where it applies and where it does not.
COMPILER_CASES = [
    "{{ x | nosuch }}",
    "a\n{{ x | e | nosuch | upper }}",
    "{% if x %}{{ x | nosuch }}{% endif %}",  # soft: fails only if it runs
    "{% if x | nosuch %}{% endif %}",
    "{{ (y | nosuch) if x else 1 }}",
    "{% if x %}{% for i in y %}{{ i | nosuch }}{% endfor %}{% endif %}",  # strict again
    "{% for i in y if i is nosuchtest %}{% endfor %}",
    "{% if x %}{% for i in y | nosuch %}{% endfor %}{% endif %}",  # the iterable: outer scope
    "{{ x is nosuchtest }}",
    "{% filter nosuch %}a{% endfilter %}",
    "{% if x %}{% filter nosuch %}a{% endfilter %}{% endif %}",
    "{% set a | nosuch %}a{% endset %}",
    "{% with a = x | nosuch %}{% endwith %}",
    "{% if x %}{% with a = x | nosuch %}{% endwith %}{% endif %}",
    "{% macro m(a=x | nosuch) %}{% endmacro %}",
    "{% block b %}a{% endblock %}{% block b %}b{% endblock %}",
    "{{ x | nosuch }}\n{% block b %}{% endblock %}\n{% block b %}{% endblock %}",
    "{% block a %}{{ x | one }}{% endblock %}{{ x | two }}",  # top level first, then blocks
    "{% block a %}{% block b %}{{ x | inner }}{% endblock %}{{ x | outer }}{% endblock %}",
    "{% for x in y %}{% extends 'a' %}{% endfor %}",
    "{% if x %}{% extends 'a' %}{% endif %}",
    "{% block b %}{% extends 'a' %}{% endblock %}",
    "{% macro m() %}{% extends 'a' %}{% endmacro %}",
    "{% for loop in x %}{% endfor %}",
    "{% for x in y %}a\n{% set loop = 1 %}\n{% for loop in z %}{% endfor %}{% endfor %}",
    "{% for x in y %}{% set z %}{% set loop = 1 %}{% endset %}{% endfor %}",
    "{% for x in y %}{% block b %}{% set loop = 1 %}{% endblock %}{% endfor %}",
    "{% for x in y if x | nosuch %}{% set loop = 1 %}{% endfor %}",
    "{% macro m(caller) %}{{ caller() }}{% endmacro %}",
    "{% macro m(caller=1) %}{{ caller() }}{% endmacro %}",
    "{% macro m(caller, a=1) %}{{ caller() }}{% endmacro %}",
    "{% macro m(caller) %}{% set caller = 1 %}{{ caller }}{% endmacro %}",
    "{% call(caller) m() %}{{ caller() }}{% endcall %}",
    "{% call m(x | nosuch) %}{{ y | other }}{% endcall %}",  # the body compiles first
    "{{ f(a | one, *b | two, c=d | three) }}",
    "{{ f(a | one, class=c | three, *b | two) }}",  # a Python keyword: after *args
    # a child template: output outside blocks is never compiled...
    "{% extends 'base' %}{{ x | nosuch }}",
    "{{ x | nosuch }}{% extends 'base' %}",
    "{% extends 'base' %}{% for i in x %}{{ i | nosuch }}{% endfor %}",
    "{% extends 'base' %}{% macro m() %}{{ x | nosuch }}{% endmacro %}",
    "{% extends 'base' %}{% set a = x | nosuch %}",
    "{% extends 'base' %}{% block b %}{{ x | nosuch }}{% endblock %}",
    "{% if c %}{% extends 'base' %}{% endif %}{{ x | nosuch }}",
    # ...and a second extends ends the statements after it, in its own list
    "{% extends 'a' %}{% extends 'b' %}{% set y = x | nosuch %}",
    "{% extends 'a' %}{% if c %}{% extends 'b' %}{% set y = x | one %}{% endif %}"
    "{% set z = x | two %}",
    "{% extends 'a' %}{% extends 'b' %}{% block b %}{{ x | nosuch }}{% endblock %}",
    "{% extends 'a' %}{% extends 'b' %}{% for x in y %}{% block b %}{% set loop = 1 %}"
    "{% endblock %}{% endfor %}",
    "{% extends 'a' %}{% if c %}{% extends 'b' %}{% macro m(caller) %}{{ caller }}"
    "{% endmacro %}{% else %}{{ x | inelse }}{% endif %}",
    "{% autoescape true %}{{ x | nosuch }}{% endautoescape %}",
    "{{ [1, 2] | sum | nosuch }}",
    "{{ x }}",
]


@pytest.mark.parametrize("text", COMPILER_CASES)
def test_the_walk_refuses_what_the_compiler_refuses(root: Path, text: str) -> None:
    assert parsed(root, text).syntax_error == compiler_says(make_environment(root), text)


def _expression(r: random.Random, depth: int = 0) -> str:
    simple = [
        "x",
        "loop",
        "caller",
        "params.a",
        "region.title",
        "'s'",
        "params.get('b')",
        "('c' in params)",
    ]
    choice = r.randrange(8 if depth < 3 else 1)
    if choice == 0:
        return r.choice(simple)
    if choice == 1:
        return f"{_expression(r, depth + 1)} | {r.choice(['e', 'upper', 'nosuch', 'tojson'])}"
    if choice == 2:
        return f"({_expression(r, depth + 1)} if {_expression(r, depth + 1)} else 1)"
    if choice == 3:
        return f"({_expression(r, depth + 1)} is {r.choice(['defined', 'nosuchtest'])})"
    if choice == 4:
        return f"f({_expression(r, depth + 1)})"
    if choice == 5:
        return f"[{_expression(r, depth + 1)}, {_expression(r, depth + 1)}]"
    if choice == 6:
        return f"params[{_expression(r, depth + 1)}]"
    return f"({_expression(r, depth + 1)} ~ {_expression(r, depth + 1)})"


def _statements(r: random.Random, depth: int = 0) -> str:
    return "".join(_statement(r, depth) for _ in range(r.randrange(1, 4)))


def _statement(r: random.Random, depth: int) -> str:
    e = _expression
    choice = r.randrange(16 if depth < 4 else 3)
    inner: Callable[[], str] = (lambda: _statements(r, depth + 1)) if choice > 2 else str
    match choice:
        case 0:
            return "text\n"
        case 1 | 2:
            return "{{ " + e(r) + " }}\n"
        case 3:
            other = "{% else %}" + inner() if r.random() < 0.3 else ""
            return "{% if " + e(r) + " %}" + inner() + other + "{% endif %}\n"
        case 4:
            test = " if " + e(r) if r.random() < 0.3 else ""
            head = r.choice(["x", "loop", "item"]) + " in " + e(r) + test
            return "{% for " + head + " %}" + inner() + "{% endfor %}\n"
        case 5:
            arguments = r.choice(["", "a", "caller", "caller=1", "a, caller"])
            return "{% macro m(" + arguments + ") %}" + inner() + "{% endmacro %}\n"
        case 6:
            return "{% call m(" + e(r) + ") %}" + inner() + "{% endcall %}\n"
        case 7:
            return "{% filter " + r.choice(["e", "nosuch"]) + " %}" + inner() + "{% endfilter %}\n"
        case 8:
            return "{% with a = " + e(r) + " %}" + inner() + "{% endwith %}\n"
        case 9:
            return "{% set " + r.choice(["x", "loop"]) + " %}" + inner() + "{% endset %}\n"
        case 10:
            return "{% set " + r.choice(["x", "loop"]) + " = " + e(r) + " %}\n"
        case 11:
            return "{% block b" + str(r.randrange(3)) + " %}" + inner() + "{% endblock %}\n"
        case 12:
            return "{% extends " + r.choice(["'base'", "x | nosuch"]) + " %}\n"
        case 13:
            return "{% include " + r.choice(["'i'", "x | nosuch"]) + " ignore missing %}\n"
        case 14:
            return "{% autoescape true %}" + inner() + "{% endautoescape %}\n"
        case _:
            return "{% import 'lib' as lib %}\n"


def test_random_templates_agree_with_the_compiler(root: Path) -> None:
    env = make_environment(root)
    r = random.Random(20261201)
    refused = 0
    for _ in range(300):
        text = _statements(r)
        expected = compiler_says(env, text)
        refused += expected is not None
        assert parsed(root, text).syntax_error == expected, text
    assert refused > 50  # the cases are not all trivially fine


def _ast_depth(node: n.Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in current.iter_child_nodes())
    return deepest


NESTINGS = {
    "for": ("{% for x in y %}", "{% endfor %}"),
    "for-loop": ("{% for x in y %}{{ loop.index }}", "{% endfor %}"),
    "for-else": ("{% for x in y %}", "{% else %}a{% endfor %}"),
    "for-if": ("{% for x in y if x %}", "{% endfor %}"),
    "for-recursive": ("{% for x in y recursive %}{{ loop(x) }}", "{% endfor %}"),
    "if": ("{% if x %}", "{% endif %}"),
    "macro": ("{% macro m() %}{{ caller() }}", "{% endmacro %}"),
    "call": ("{% call m() %}", "{% endcall %}"),
    "with": ("{% with a = 1 %}", "{% endwith %}"),
    "filter": ("{% filter upper %}", "{% endfilter %}"),
    "set": ("{% set a %}", "{% endset %}"),
    "autoescape": ("{% autoescape true %}", "{% endautoescape %}"),
    "block": ("{% block b{n} scoped %}", "{% endblock %}"),
    "for-with": ("{% for x in y %}{% with a = 1 %}", "{% endwith %}{% endfor %}"),
    "for-filter": ("{% for x in y %}{% filter e %}", "{% endfilter %}{% endfor %}"),
}
LEAVES = [
    "{{ x }}",
    "{% include 'a' ignore missing %}",
    "{% include ['a', 'b'] %}",
    "{{ params.get('a') | e }}",
    "{{ -x }}",
]


@pytest.mark.parametrize("construct", sorted(NESTINGS))
@pytest.mark.parametrize("leaf", LEAVES)
def test_templates_the_walk_does_not_compile_are_within_pythons_limits(
    root: Path, construct: str, leaf: str
) -> None:
    """The deepest such template of each kind compiles: skipping the compiler loses nothing."""
    env = make_environment(root)
    opening, closing = NESTINGS[construct]
    # The walk may not count the last two levels (params.get('a')): two deeper.
    limit = COMPILE_DEPTH + 2
    levels = 0
    while True:
        text = "".join(opening.replace("{n}", str(i)) for i in range(levels + 1)) + leaf
        text += closing * (levels + 1)
        if _ast_depth(env.parse(text)) > limit:
            break
        levels += 1
    text = "".join(opening.replace("{n}", str(i)) for i in range(levels)) + leaf + closing * levels
    assert _ast_depth(env.parse(text)) <= limit
    assert compiler_says(env, text) is None
    assert parsed(root, text).syntax_error is None


def test_mixed_nestings_within_the_depth_compile(root: Path) -> None:
    env = make_environment(root)
    r = random.Random(7)
    kinds = sorted(NESTINGS)
    for _ in range(40):
        chosen = [NESTINGS[r.choice(kinds)] for _ in range(COMPILE_DEPTH)]
        # Each construct is at least one level: start from the most that can fit.
        for levels in range(COMPILE_DEPTH, 0, -1):
            parts = chosen[:levels]
            text = "".join(o.replace("{n}", str(i)) for i, (o, _) in enumerate(parts))
            text += r.choice(LEAVES) + "".join(c for _, c in reversed(parts))
            if _ast_depth(env.parse(text)) <= COMPILE_DEPTH + 2:
                break
        assert compiler_says(env, text) is None, text


# Jinja's compiler evaluates expressions of literals (constant folding) and fails
# where one fails: `'a' ~ 'b'.c` joins an undefined value.  (text, line)
FOLDING_CASES = [
    ("{{ 'a' ~ 'b'.c }}", 1),
    ("a\n{{ x ~ ('a' ~ 'b'.c) }}", 2),
    ("{{ 'x' if 'b'.c else 'y' }}", 1),
    ("{% if x %}\n{{ 'a' ~ 'b'['c'] }}{% endif %}", 2),  # folded even where it never runs
    ("{% set v = 'b'.c ~ 'a' %}", 1),
    ("{{ 'a' ~ [1, 2].c }}", 1),
    ("{{ 'a' ~ 'b'.__class__ }}", 1),  # the sandbox's refusal
    ("{{ 'a' ~ {'k': [1]}.k.nope }}", 1),
    ("{{ ({[1]: 2}, 'a') ~ 'b' }}", 1),  # an unhashable key
]
NOT_FOLDED = [
    "{{ 'b'.c }}",  # an undefined value: an error when rendered, not compiled
    "{{ 'a' ~ 'b'.upper }}",
    "{{ 'a' ~ 'b'.c.d }}",  # the compiler gives up on an attribute of an undefined value
    "{{ 'a' ~ x.c }}",
    "{% extends 'base' %}{{ 'a' ~ 'b'.c }}",  # never compiled
    "{{ ('a', 'b'.c) }}",
]


@pytest.mark.parametrize(("text", "line"), FOLDING_CASES)
def test_expressions_of_literals_fail_where_the_compiler_fails(
    root: Path, text: str, line: int
) -> None:
    with pytest.raises((UndefinedError, SecurityError, TypeError)) as compiling:
        make_environment(root).compile(text, name="t.j2")
    prefix = "this expression of literals fails when Jinja compiles it: "
    assert parsed(root, text).syntax_error == (line, prefix + str(compiling.value))


@pytest.mark.parametrize("text", NOT_FOLDED)
def test_expressions_the_compiler_takes_are_no_error(root: Path, text: str) -> None:
    make_environment(root).compile(text, name="t.j2")
    assert parsed(root, text).syntax_error is None


def test_a_filter_is_never_run_by_the_walk(root: Path) -> None:
    # The compiler runs the filter and fails; the walk leaves that to the render,
    # whose error is as clean (tests/test_render_limits.py).
    text = "{{ 'a' ~ ('b' | upper).c }}"
    with pytest.raises(UndefinedError):
        make_environment(root).compile(text, name="t.j2")
    assert parsed(root, text).syntax_error is None


def test_a_number_too_long_for_python_is_located_not_raised(root: Path) -> None:
    text = "a\nb\n{{ 1" + "0" * 5000 + " }}\n"
    with pytest.raises(ValueError, match="integer string conversion"):
        make_environment(root).compile(text)  # Jinja itself lets Python's error through
    assert parsed(root, text).syntax_error == (
        3,
        "a number has more digits than Python converts (4300)",
    )


def test_a_deep_template_whose_compilation_fails_is_located_by_the_walk(root: Path) -> None:
    text = "{% for x in y %}" * 20 + "\n{{ 'a' ~ 'b'.c }}" + "{% endfor %}" * 20
    line, message = parsed(root, text).syntax_error or (0, "")
    assert line == 2 and message.endswith("'str object' has no attribute 'c'")


def test_deeper_templates_are_compiled_as_well(root: Path) -> None:
    text = "{% for x in y %}" * 25 + "{{ x }}" + "{% endfor %}" * 25
    assert parsed(root, text).syntax_error == (1, "the template is nested too deeply")
    deep_filters = "{% for x in y %}" * 12 + "{{ x" + " | nosuch" * 8 + " }}" + "{% endfor %}" * 12
    assert parsed(root, deep_filters).syntax_error == (1, "No filter named 'nosuch'.")


# -- names ---------------------------------------------------------------------------------


def undeclared(result: Parsed) -> set[str]:
    return {name for name, _ in result.undeclared} - result.stored


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% for x in y %}{{ loop.index }}{% endfor %}", {"y"}),
        ("{{ loop.index }}", {"loop"}),
        ("{% for x in y %}{% else %}{{ loop }}{% endfor %}", {"y", "loop"}),
        ("{% for x in y if loop %}{% endfor %}", {"y", "loop"}),
        ("{% for x in y %}{% block b %}{{ loop }}{% endblock %}{% endfor %}", {"y", "loop"}),
        ("{% macro m() %}{{ caller() }}{{ varargs }}{{ kwargs }}{% endmacro %}", set()),
        ("{{ caller() }}", {"caller"}),
        ("{% call m() %}{{ caller }}{% endcall %}", {"m"}),
        ("{% block b %}{{ super() }}{{ self.b() }}{% endblock %}", set()),
        ("{{ super() }}{{ self }}", {"super"}),
        ("{% set ns.count = 1 %}", {"ns"}),
        ("{% set ns = namespace() %}{% set ns.count = 1 %}", set()),
        ("{{ range(3) | list }}{{ region.title }}{{ params }}", set()),
        # never compiled, never run: only what the top level looks up counts
        ("{% extends 'a' %}{% extends 'b' %}{% for x in y %}{{ z }}{% endfor %}", {"y"}),
    ],
)
def test_names_nothing_defines(root: Path, text: str, expected: set[str]) -> None:
    assert undeclared(parsed(root, text)) == expected


def test_uses_are_found_everywhere_even_where_nothing_is_compiled(root: Path) -> None:
    text = "{% extends 'base' %}\n{{ params.title }}\n{% block b %}{{ region.name }}{% endblock %}"
    result = parsed(root, text)
    assert result.params == (("title", 2),)
    assert result.region_fields == (("name", 3),)


def test_usage_through_includes_is_unchanged(root: Path) -> None:
    (root / "main.j2").write_text(
        "{% for x in params.items_list %}{% include 'part.j2' %}{% endfor %}\n", encoding="utf-8"
    )
    (root / "part.j2").write_text("{{ x }} {{ params.other }}\n", encoding="utf-8")
    usage = TemplateAnalyser(root).analyse("main.j2")
    assert usage.params == (Use("main.j2", 1, "items_list"), Use("part.j2", 1, "other"))
    assert usage.undeclared == ()  # x comes from the including template


# -- what the cache keeps ------------------------------------------------------------------


def test_an_analysis_reads_back_from_its_data(root: Path) -> None:
    text = (
        "{% extends 'base.j2' %}{% import 'lib.j2' as lib %}{% from 'm.j2' import a as b %}\n"
        "{% block body %}{{ params.title }}{{ region.name }}{{ app.title }}{{ nowhere }}"
        "{{ assets.logo.dest }}{{ requires.auth.url }}"
        "{% include ['a.j2', x] ignore missing %}{{ params }}{% endblock %}\n"
    )
    result = parsed(root, text)
    assert result.references and result.undeclared and result.whole
    assert result.asset_fields == (("logo", 2),)
    assert result.app_fields == (("title", 2),)  # requires.auth is no field of app
    data = json.loads(json.dumps(result.to_data()))
    assert Parsed.from_data(data) == result
    broken = parsed(root, "{% if %}")
    assert Parsed.from_data(json.loads(json.dumps(broken.to_data()))) == broken


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: None,
        lambda d: [],
        lambda d: {k: v for k, v in d.items() if k != "params"},
        lambda d: {k: v for k, v in d.items() if k != "format"},  # written before assets
        lambda d: {k: v for k, v in d.items() if k != "assets"},
        lambda d: {**d, "params": [["title", "1"]]},
        lambda d: {**d, "whole": [True]},
        lambda d: {**d, "references": [["exec", 1, [], False, False]]},
        lambda d: {**d, "references": [["include", 1, ["a"], "no", False]]},
        lambda d: {**d, "syntax_error": [1]},
        lambda d: {**d, "stored": "abc"},
    ],
)
def test_damaged_data_is_refused(root: Path, damage: object) -> None:
    data = parsed(root, "{{ params.title }}{% include 'a' %}").to_data()
    with pytest.raises((ValueError, TypeError, KeyError, IndexError)):
        Parsed.from_data(damage(data))  # type: ignore[operator]
