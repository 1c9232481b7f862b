"""The template sandbox, its filters and loader, static analysis, and safe file writing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.errors import (
    InvalidInputError,
    TemplateRenderError,
    UnsafePathError,
    WorkspaceError,
)
from smartshare.rendering.analysis import Use, analyse
from smartshare.rendering.sandbox import make_environment, render, render_context
from smartshare.state.safefs import atomic_write, atomic_write_json, confined_path

REPO = Path(__file__).resolve().parent.parent


def templates(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "templates"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    root.mkdir(parents=True, exist_ok=True)
    return root


def render_text(tmp_path: Path, text: str, **context: object) -> str:
    root = templates(tmp_path, {"t.j2": text})
    return render(make_environment(root), "t.j2", context)


# -- sandbox ------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{% set x = [1, 2] %}{{ x.append(3) }}",
        "{% set d = {'a': 1} %}{{ d.update({'b': 2}) }}",
        "{{ params.__class__.__subclasses__() }}",
    ],
)
def test_sandbox_escapes_are_blocked(tmp_path: Path, source: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_text(tmp_path, "line one\n" + source + "\n", params={})
    message = caught.value.message
    assert "unsafe operation" in message
    assert "t.j2:2" in message  # the template and the line of the offending expression


def test_undefined_value_names_the_variable_and_line(tmp_path: Path) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_text(tmp_path, "a\nb\nvalue={{ params.support_email }}\n", params={"x": "1"})
    assert "t.j2:3" in caught.value.message
    assert "support_email" in caught.value.message
    with pytest.raises(TemplateRenderError, match="'regoin' is undefined"):
        render_text(tmp_path, "{{ regoin.title }}", params={})


def test_runtime_error_messages_never_carry_parameter_values(tmp_path: Path) -> None:
    """A runtime render sees secrets: its messages are made without the values.

    (tests/test_render_secrets.py tries every kind of error, transformed values too.)
    """
    secret = "s3cr3t-p4ssw0rd"
    for text in ("{{ params[params.token] }}", "{{ (params.token ~ '!') | list | sum }}"):
        root = templates(tmp_path, {"t.j2": text})
        with pytest.raises(TemplateRenderError) as caught:
            render(make_environment(root), "t.j2", {"params": {"token": secret}}, runtime=True)
        assert secret not in caught.value.message
        assert "t.j2:1" in caught.value.message


def test_image_error_messages_keep_jinja_details(tmp_path: Path) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_text(tmp_path, "{{ params[params.key] }}", params={"key": "no-such-key"})
    assert "no-such-key" in caught.value.message


def test_undefined_in_an_included_template_points_at_that_template(tmp_path: Path) -> None:
    root = templates(
        tmp_path,
        {"main.j2": "top\n{% include 'parts/inc.j2' %}\n", "parts/inc.j2": "\n\n{{ params.nope }}"},
    )
    with pytest.raises(TemplateRenderError) as caught:
        render(make_environment(root), "main.j2", {"params": {}})
    assert "parts/inc.j2:3" in caught.value.message


def test_trailing_newline_is_kept_and_autoescape_is_off(tmp_path: Path) -> None:
    out = render_text(tmp_path, "A={{ v }}\n", v="Tom & Jerry <b>'s\"")
    assert out == "A=Tom & Jerry <b>'s\"\n"
    # `e` stays available for HTML templates.
    assert render_text(tmp_path, "{{ v | e }}", v="a & <b>") == "a &amp; &lt;b&gt;"


TRICKY_VALUES: list[object] = [
    "plain",
    "key: value # not a comment",
    'it\'s "quoted" and `ticked`',
    "two\nlines\n",
    "tab\tand \\ backslash",
    "- starts like a list item",
    "@at and *star and &amp",
    "yes",
    "null",
    "0755",
    "Kabupaten Badung — Bali ✓",
    "line\u2028separator and next\x85line and del\x7f",
    "",
    42,
    3.5,
    True,
    None,
    ["a: b", "# c", "d\ne"],
    {"z": "1: 2", "a": ["x", {"y": "#"}]},
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_tojson_round_trips_through_json_and_yaml(tmp_path: Path, value: object) -> None:
    as_json = render_text(tmp_path, "{{ v | tojson }}", v=value)
    assert json.loads(as_json) == value
    as_yaml = render_text(tmp_path, "config:\n  key: {{ v | tojson }}\n  other: 1\n", v=value)
    assert yaml.safe_load(as_yaml) == {"config": {"key": value, "other": 1}}


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_toyaml_round_trips(tmp_path: Path, value: object) -> None:
    # At the start of a line (collections come out in block style)...
    out = render_text(tmp_path, "{{ v | toyaml }}\n", v=value)
    assert "..." not in out
    assert yaml.safe_load(out) == value
    # ...and nested under a key with `indent`.
    out = render_text(tmp_path, "config:\n  key:\n    {{ v | toyaml | indent(4) }}\n", v=value)
    assert yaml.safe_load(out) == {"config": {"key": value}}


@pytest.mark.parametrize("value", [v for v in TRICKY_VALUES if not isinstance(v, list | dict)])
def test_toyaml_scalars_fit_inline(tmp_path: Path, value: object) -> None:
    out = render_text(tmp_path, "config:\n  key: {{ v | toyaml }}\n  other: 1\n", v=value)
    assert yaml.safe_load(out) == {"config": {"key": value, "other": 1}}


def test_toyaml_mapping_is_block_style(tmp_path: Path) -> None:
    out = render_text(tmp_path, "{{ {'b': [1, 2], 'a': 'x: y'} | toyaml }}\n")
    assert out == "a: 'x: y'\nb:\n- 1\n- 2\n"


def test_tojson_sorts_keys(tmp_path: Path) -> None:
    assert render_text(tmp_path, "{{ v | tojson }}", v={"b": 1, "a": 2}) == '{"a": 2, "b": 1}'


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "with space",
        "it's",
        'say "hi"',
        "$(touch pwned)",
        "`touch pwned`",
        "a; touch pwned",
        "line1\nline2",
        "$HOME and ${PATH}",
        "*",
        "",
        "-n",
        42,
    ],
)
def test_shquote_round_trips_through_sh(tmp_path: Path, value: object) -> None:
    script = render_text(tmp_path, 'X={{ v | shquote }}\nprintf %s "$X"\n', v=value)
    result = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout == str(value)
    assert not (tmp_path / "pwned").exists()


# -- loader -------------------------------------------------------------------


def test_loader_refuses_parent_and_absolute_names(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    root = templates(tmp_path, {"ok.j2": "ok", "inc.j2": "{% include '../secret.txt' %}"})
    env = make_environment(root)
    for name, refusal in (
        ("../secret.txt", "must stay inside templates/"),
        (str(tmp_path / "secret.txt"), "must be relative to templates/, not absolute"),
    ):
        with pytest.raises(TemplateRenderError) as caught:
            render(env, name, {})
        assert f"template name '{name}' {refusal}" in caught.value.message
        assert "TOP SECRET" not in caught.value.message
    with pytest.raises(TemplateRenderError, match=r"\.\."):
        render(env, "inc.j2", {})


def test_loader_refuses_symlinks_pointing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    root = templates(
        tmp_path, {"inner.j2": "inner", "inc.j2": "{% include 'evil.j2' %}", "dir.j2": ""}
    )
    (root / "evil.j2").symlink_to(outside / "passwd")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "alias.j2").symlink_to(root / "inner.j2")  # inside: fine
    env = make_environment(root)
    for name in ("evil.j2", "linked/passwd", "inc.j2"):
        with pytest.raises(TemplateRenderError, match="outside the templates folder"):
            render(env, name, {})
    assert render(env, "alias.j2", {}) == "inner"


def test_a_template_that_is_not_a_regular_file_is_refused_without_waiting(
    tmp_path: Path,
) -> None:
    root = templates(tmp_path, {})
    os.mkfifo(root / "fifo.j2")
    with pytest.raises(TemplateRenderError, match=r"fifo\.j2.* not a regular file"):
        render(make_environment(root), "fifo.j2", {})


def test_environment_is_cached_per_folder(tmp_path: Path) -> None:
    root = templates(tmp_path, {"a.j2": "a"})
    assert make_environment(root) is make_environment(root)
    assert make_environment(root) is not make_environment(templates(tmp_path / "x", {}))


def test_jinja_is_not_imported_by_the_core_modules() -> None:
    code = (
        "import sys, smartshare.catalog.checks, smartshare.rendering.analysis, "
        "smartshare.state.safefs; print('jinja2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- render context -------------------------------------------------------------


def test_render_context_exposes_region_app_and_params() -> None:
    from smartshare.catalog.load import load_catalog

    catalog = load_catalog(REPO / "tests" / "data" / "broken")
    app = catalog.apps["helper"].model
    region = RegionProfile.model_validate(
        yaml.safe_load(
            (REPO / "tests/data/broken/manifests/regions/wrong-value-type.yaml").read_text()
        )
    )
    assert isinstance(app, AppManifest)
    context = render_context(region=region, app=app, params={"greeting": "Hai"})
    assert set(context) == {"region", "app", "params", "requires", "assets"}
    assert context["requires"] == {}  # the outputs of required apps: none here
    assert context["assets"] == {}  # the files the region gives its assets: none here
    assert "apps" not in context["region"]  # other apps' values stay out
    assert "assets" not in context["region"]  # and their files
    assert context["region"]["title"] == "Kabupaten Contoh"
    assert context["region"]["api_version"] == "smartshare/v1"
    for key in ("name", "title", "version", "summary", "owner", "license", "category"):
        assert key in context["app"]
    assert context["params"] == {"greeting": "Hai"}
    assert json.loads(json.dumps(context)) == context  # plain data only


# -- analysis -------------------------------------------------------------------


def test_analyse_finds_params_with_lines_through_includes(tmp_path: Path) -> None:
    root = templates(
        tmp_path,
        {
            "main.j2": (
                "{{ params.title }}\n"
                "{% include 'parts/header.j2' %}\n"
                "{% from 'macros.j2' import badge %}{{ badge() }}\n"
                "{% if 'motto' in params %}{{ params['motto'] }}{% endif %}\n"
                "{{ params.get('footer', '') }}\n"
            ),
            "parts/header.j2": "\n\n<h1>{{ params.heading }}</h1>{% include 'main.j2' %}\n",
            "macros.j2": "{% macro badge() %}{{ params.badge_color }}{% endmacro %}",
        },
    )
    usage = analyse(make_environment(root), "main.j2")
    assert usage.complete and not usage.issues and not usage.undeclared
    assert usage.param_names == {"title", "heading", "badge_color", "motto", "footer"}
    assert Use("parts/header.j2", 3, "heading") in usage.params
    assert Use("macros.j2", 1, "badge_color") in usage.params
    assert Use("main.j2", 4, "motto") in usage.params
    assert set(usage.templates) == {"main.j2", "parts/header.j2", "macros.j2"}
    assert not usage.uses_all_params


@pytest.mark.parametrize(
    "source",
    [
        "{{ params | tojson }}",
        "{% for k, v in params.items() %}{{ k }}{% endfor %}",
        "{% for k in params %}{{ k }}{% endfor %}",
        "{% set p = params %}{{ p.x }}",
        "{{ params[region.name] }}",
    ],
)
def test_analyse_sees_params_used_as_a_whole(tmp_path: Path, source: str) -> None:
    root = templates(tmp_path, {"t.j2": "\n" + source})
    usage = analyse(make_environment(root), "t.j2")
    assert usage.uses_all_params
    assert usage.whole_params[0].line == 2


def test_analyse_reports_undeclared_names_but_not_locals(tmp_path: Path) -> None:
    source = (
        "{% set title = region.title %}{{ title }}\n"
        "{% for item in params.items_list %}{{ loop.index }} {{ item }}{% endfor %}\n"
        "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1) }}{{ range(3) | list }}\n"
        "{{ app.name }} {{ sitetitle }}\n"
    )
    root = templates(tmp_path, {"t.j2": source})
    usage = analyse(make_environment(root), "t.j2")
    assert usage.undeclared == (Use("t.j2", 4, "sitetitle"),)
    assert {u.name for u in usage.region_fields} == {"title"}
    assert {u.name for u in usage.app_fields} == {"name"}


def test_analyse_reports_missing_dynamic_and_broken_includes(tmp_path: Path) -> None:
    root = templates(
        tmp_path,
        {
            "main.j2": (
                "x\n"
                "{% include 'gone.j2' %}\n"
                "{% include region.name ~ '.j2' %}\n"
                "{% include 'optional.j2' ignore missing %}\n"
                "{% include 'bad.j2' %}\n"
            ),
            "bad.j2": "ok\n{% if %}\n",
        },
    )
    usage = analyse(make_environment(root), "main.j2")
    issues = {(i.template, i.line): i.message for i in usage.issues}
    assert "does not exist" in issues[("main.j2", 2)]
    assert "dynamic include" in issues[("main.j2", 3)]
    assert "syntax error" in issues[("bad.j2", 2)]
    assert len(issues) == 3
    assert not usage.complete


def test_analyse_cache_follows_file_changes(tmp_path: Path) -> None:
    root = templates(tmp_path, {"t.j2": "{{ params.one }}"})
    env = make_environment(root)
    assert analyse(env, "t.j2").param_names == {"one"}
    (root / "t.j2").write_text("{{ params.two }} and more text")
    assert analyse(env, "t.j2").param_names == {"two"}


def test_analyse_refuses_a_missing_or_escaping_template(tmp_path: Path) -> None:
    root = templates(tmp_path, {})
    env = make_environment(root)
    with pytest.raises(InvalidInputError) as missing:
        analyse(env, "nope.j2")
    assert missing.value.message == f"template 'nope.j2' does not exist in {root}"
    with pytest.raises(UnsafePathError, match=r"'\.\./x\.j2' must stay inside templates/"):
        analyse(env, "../x.j2")


# -- safefs -------------------------------------------------------------------


def test_confined_path_accepts_paths_inside(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    assert confined_path(tmp_path, "config/app.env") == tmp_path.resolve() / "config" / "app.env"
    assert confined_path(tmp_path, "./new/dir/file") == tmp_path.resolve() / "new" / "dir" / "file"


@pytest.mark.parametrize(
    ("relative", "refusal"),
    [
        ("../x", "must stay inside {root} ('..' is not allowed)"),
        ("a/../../x", "must stay inside {root} ('..' is not allowed)"),
        ("/etc/passwd", "must be relative to {root}, not absolute"),
        ("", "must not be empty"),
        (".", "names {root} itself, not a file inside it"),
        ("./", "names {root} itself, not a file inside it"),
        ("a\x00b", "must use '/' separators and no NUL bytes"),
    ],
)
def test_confined_path_refuses_escapes(tmp_path: Path, relative: str, refusal: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        confined_path(tmp_path, relative)
    assert caught.value.message == f"path {relative!r} {refusal.format(root=tmp_path)}"


def test_confined_path_refuses_symlinked_components(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "www").mkdir(parents=True)
    outside = tmp_path / "etc"
    outside.mkdir()
    (tree / "config").symlink_to(outside, target_is_directory=True)
    (tree / "www" / "index.html").symlink_to(outside / "passwd")
    for relative in ("config/app.env", "config", "www/index.html"):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            confined_path(tree, relative)


def test_atomic_write_sets_the_mode_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "runtime.env"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write(target, "TOKEN=x\n", mode=0o600)
    assert target.read_text() == "TOKEN=x\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["runtime.env"]


def test_atomic_write_leaves_the_old_file_when_encoding_fails(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old content")
    with pytest.raises(WorkspaceError, match=r"state\.json"):
        atomic_write(target, "lone surrogate \udc80")
    assert target.read_text() == "old content"
    assert os.listdir(tmp_path) == ["state.json"]


def test_atomic_write_cleans_up_when_the_rename_fails(tmp_path: Path) -> None:
    # Replacing a non-empty directory fails after the data was written.
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep").write_text("kept")
    with pytest.raises(WorkspaceError, match="cannot write"):
        atomic_write(target, "data")
    assert (target / "keep").read_text() == "kept"
    assert os.listdir(tmp_path) == ["out"]


def test_atomic_write_reports_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="missing"):
        atomic_write(tmp_path / "missing" / "file", "x")


def test_atomic_write_json(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"b": [1, "ü"], "a": None}, mode=0o600)
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": None, "b": [1, "ü"]}
    assert target.read_text(encoding="utf-8").startswith('{\n  "a"')
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
