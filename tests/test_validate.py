"""validate(): every check on its own broken file, the demo catalogue, and clean catalogues."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from smartshare.catalog.checks import validate
from smartshare.catalog.diagnostics import Problem, Severity
from smartshare.catalog.load import load_catalog
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.region_checks import check_region
from smartshare.catalog.template_checks import check_app_templates
from smartshare.errors import CatalogNotFoundError

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "tests" / "data" / "broken"
E, W = Severity.ERROR, Severity.WARNING


class Expected(NamedTuple):
    file: str  # relative to BROKEN: the manifest itself, or the template at fault
    line: int
    field: str
    severity: Severity
    phrase: str


# One problem per file under tests/data/broken/manifests (helper.yaml and
# duplicate-name-a.yaml are valid: the others refer to them).
EXPECTED: dict[str, Expected] = {
    "apps/syntax-error.yaml": Expected("", 6, "", E, "YAML syntax error"),
    "apps/not-a-mapping.yaml": Expected("", 2, "", E, "top level must be a mapping"),
    "apps/empty.yaml": Expected("", 1, "", E, "the file is empty"),
    "apps/duplicate-key.yaml": Expected("", 21, "", E, "duplicate key 'title'"),
    "apps/unknown-key.yaml": Expected("", 21, "tag", E, "did you mean 'tags'?"),
    "apps/wrong-type.yaml": Expected("", 21, "tags", E, "valid list"),
    "apps/bad-slug.yaml": Expected("", 4, "name", E, "expected a slug"),
    "apps/duplicate-name-b.yaml": Expected("", 4, "name", E, "already defined in"),
    "apps/unknown-requires.yaml": Expected("", 21, "requires.0", E, "did you mean 'helper'?"),
    "apps/cycle-a.yaml": Expected(
        "", 21, "requires.0", E, "dependency cycle: cycle-a -> cycle-b -> cycle-a"
    ),
    "apps/cycle-b.yaml": Expected(
        "", 21, "requires.0", E, "dependency cycle: cycle-b -> cycle-a -> cycle-b"
    ),
    "apps/missing-template.yaml": Expected("", 22, "templates.0.src", E, "does not exist"),
    "apps/template-syntax.yaml": Expected(
        "templates/template-syntax/config.j2", 4, "", E, "template syntax error"
    ),
    "apps/dest-escape.yaml": Expected("", 23, "templates.0.dest", E, "'..' is not allowed"),
    "apps/undeclared-param.yaml": Expected(
        "templates/undeclared-param/style.css.j2", 4, "params.colour", E, "did you mean 'color'?"
    ),
    "apps/unused-param.yaml": Expected("", 22, "parameters.0", W, "'motto' is not used"),
    "apps/secret-in-image.yaml": Expected(
        "templates/secret-in-image/config.env.j2", 3, "params.api_token", E, "baked into the image"
    ),
    "apps/whole-params-secret.yaml": Expected(
        "templates/whole-params-secret/config.json.j2", 3, "params", E, "baked into the image"
    ),
    "apps/missing-include.yaml": Expected(
        "templates/missing-include/page.html.j2", 2, "", E, "does not exist"
    ),
    "apps/dynamic-include.yaml": Expected(
        "templates/dynamic-include/page.html.j2", 2, "", E, "dynamic include"
    ),
    "apps/include-escape.yaml": Expected(
        "templates/include-escape/page.html.j2", 2, "", E, "must stay inside templates/"
    ),
    "apps/undefined-name.yaml": Expected(
        "templates/undefined-name/page.html.j2", 2, "site_title", E, "is not defined"
    ),
    "apps/unknown-region-field.yaml": Expected(
        "templates/unknown-region-field/page.html.j2",
        2,
        "region.provinsi",
        E,
        "did you mean 'province'?",
    ),
    "apps/ext-url.yaml": Expected("", 17, "source.repo", E, "'ext::' is not allowed"),
    "apps/bad-commit.yaml": Expected("", 19, "source.commit", E, "full commit id"),
    "apps/alias-bomb.yaml": Expected("", 6, "", E, "alias bomb"),
    "regions/bad-code.yaml": Expected("", 7, "code", E, "Kemendagri code"),
    "regions/bad-timezone.yaml": Expected("", 9, "timezone", E, "unknown time zone"),
    "regions/unknown-app-values.yaml": Expected(
        "", 14, "apps.helpr", E, "no app named 'helpr' in the catalogue; did you mean 'helper'?"
    ),
    "regions/unknown-param-values.yaml": Expected(
        "", 16, "apps.helper.greting", E, "did you mean 'greeting'?"
    ),
    "regions/wrong-value-type.yaml": Expected(
        "", 16, "apps.helper.max_items", E, "must be a whole number"
    ),
    "regions/missing-required.yaml": Expected(
        "", 14, "apps.helper", E, "required parameter 'contact_email'"
    ),
    "regions/inline-secret.yaml": Expected("", 16, "apps.helper.token", E, "env:NAME or file:PATH"),
}
VALID = ["apps/helper.yaml", "apps/duplicate-name-a.yaml"]


def same_file(problem: Problem, path: Path) -> bool:
    return Path(problem.file).resolve() == path.resolve()


def check(problem: Problem, name: str, expected: Expected) -> None:
    where = BROKEN / (expected.file or f"manifests/{name}")
    assert same_file(problem, where), problem
    assert (problem.line, problem.field, problem.severity) == (
        expected.line,
        expected.field,
        expected.severity,
    ), problem
    assert problem.column >= 1
    assert expected.phrase in problem.message, problem


def test_every_broken_file_is_listed() -> None:
    on_disk = {
        str(p.relative_to(BROKEN / "manifests")) for p in (BROKEN / "manifests").rglob("*.yaml")
    }
    assert on_disk == set(EXPECTED) | set(VALID)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_alone(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The repository root is the default catalogue; the broken files still
    # resolve against their own catalogue (tests/data/broken).
    monkeypatch.chdir(REPO)
    report = validate(catalog_root=REPO, paths=[BROKEN / "manifests" / name])
    assert report.files_checked == 1
    assert len(report.problems) == 1, "\n".join(p.as_text() for p in report.problems)
    check(report.problems[0], name, EXPECTED[name])
    assert report.valid is (EXPECTED[name].severity is W)


def test_whole_broken_catalogue_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    report = validate(catalog_root=REPO, paths=[BROKEN])
    assert report.files_checked == len(EXPECTED) + len(VALID)
    assert not report.valid
    assert len(report.problems) == len(EXPECTED)
    assert report.problems == sorted(report.problems, key=lambda p: (p.file, p.line, p.column))
    for name, expected in EXPECTED.items():
        where = BROKEN / (expected.file or f"manifests/{name}")
        matching = [p for p in report.problems if same_file(p, where)]
        assert len(matching) == 1, (name, matching)
        check(matching[0], name, expected)
    # The broken folder as the catalogue root gives the same result.
    assert validate(catalog_root=BROKEN).problems == report.problems


def test_valid_files_of_the_broken_catalogue_have_no_problem() -> None:
    report = validate(catalog_root=BROKEN, paths=[BROKEN / "manifests" / n for n in VALID])
    assert report.problems == []
    assert report.files_checked == 2


def test_inline_secret_value_is_never_shown() -> None:
    inline = BROKEN / "manifests" / "regions" / "inline-secret.yaml"
    assert "token: hunter2-do-not-leak" in inline.read_text(encoding="utf-8")
    report = validate(catalog_root=BROKEN)
    [problem] = [p for p in report.problems if same_file(p, inline)]
    assert problem.field == "apps.helper.token"  # the value is refused, and not shown
    for problem in report.problems:
        assert "hunter2" not in problem.as_text()


def test_file_over_one_mebibyte(tmp_path: Path) -> None:
    big = tmp_path / "manifests" / "apps" / "huge.yaml"
    big.parent.mkdir(parents=True)
    big.write_text("# padding\n" * 110_000 + "kind: App\n")
    assert big.stat().st_size > 1024 * 1024
    report = validate(catalog_root=tmp_path)
    assert [(p.line, p.severity) for p in report.problems] == [(1, E)]
    assert "larger than 1024 KiB" in report.problems[0].message
    assert same_file(report.problems[0], big)


# -- the demo catalogue -----------------------------------------------------------


def test_demo_catalogue_is_valid() -> None:
    report = validate(catalog_root=REPO)
    apps = list((REPO / "manifests" / "apps").glob("*.yaml"))
    regions = list((REPO / "manifests" / "regions").glob("*.yaml"))
    older = list((REPO / "manifests" / "versions").glob("*/*.yaml"))
    assert len(apps) == 16 and regions
    assert [p.relative_to(REPO).as_posix() for p in older] == [
        "manifests/versions/laksa/2.3.0.yaml"
    ]
    assert report.files_checked == len(apps) + len(regions) + len(older)
    assert report.valid, "\n".join(p.as_text() for p in report.problems)
    assert [p for p in report.problems if p.severity is W] == [], "\n".join(
        p.as_text() for p in report.problems
    )


# -- a clean catalogue built here ------------------------------------------------------

APP = """\
apiVersion: smartshare/v1
kind: App
name: {name}
title: {title}
summary:
  en: A small app.
  id: Aplikasi kecil.
owner:
  name: Pemerintah Kota Tangerang
  region_code: "36.71"
  contact: diskominfo@tangerangkota.go.id
category: public-service
license: GPL-3.0-only
version: "1.0.0"
maturity: stable
source:
  repo: https://git.tangerangkota.go.id/diskominfo/{name}.git
  ref: v1.0.0
images:
  - name: {name}
"""

REGION = """\
apiVersion: smartshare/v1
kind: Region
name: badung
title: Kabupaten Badung
type: kabupaten
code: "51.03"
province: Bali
timezone: Asia/Makassar
domain: badungkab.go.id
contact:
  email: diskominfo@badungkab.go.id
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def minimal_catalogue(root: Path) -> None:
    write(
        root,
        {
            "manifests/apps/portal.yaml": APP.format(name="portal", title="Portal")
            + """parameters:
  - name: site_title
    default: Portal
  - name: support_email
    type: email
    required: true
  - name: api_token
    secret: true
    required: true
  - name: languages
    type: list
    default: [id, en]
templates:
  - src: portal/index.html.j2
    dest: www/index.html
  - src: portal/runtime.env.j2
    dest: runtime.env
    target: runtime
requires: [auth]
""",
            "manifests/apps/auth.yaml": APP.format(name="auth", title="Auth"),
            "manifests/regions/badung.yaml": REGION
            + """apps:
  portal:
    support_email: layanan@badungkab.go.id
    api_token: env:BADUNG_PORTAL_TOKEN
  auth: {}
""",
            "templates/portal/layout.html.j2": (
                "<title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %}\n"
            ),
            "templates/portal/index.html.j2": (
                "{% extends 'portal/layout.html.j2' %}\n"
                "{% import 'portal/macros.j2' as m %}\n"
                "{% block title %}{{ params.site_title | e }}{% endblock %}\n"
                "{% block body %}{% for lang in params.languages %}{{ m.flag(lang) }}"
                "{% endfor %}{{ region.title | e }} {{ app.version }}{% endblock %}\n"
            ),
            "templates/portal/macros.j2": "{% macro flag(code) %}[{{ code }}]{% endmacro %}\n",
            "templates/portal/runtime.env.j2": (
                "SUPPORT={{ params.support_email | shquote }}\n"
                "TOKEN={{ params.api_token | shquote }}\n"
            ),
        },
    )


def test_minimal_catalogue_has_no_problem(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    report = validate(catalog_root=tmp_path)
    assert report.problems == []
    assert report.valid
    assert report.files_checked == 3


def test_paths_given_twice_count_once_and_folders_are_scanned(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    extra = tmp_path / "incoming" / "deep" / "er" / "search.yml"
    write(tmp_path, {str(extra.relative_to(tmp_path)): APP.format(name="search", title="Search")})
    app = tmp_path / "manifests" / "apps" / "portal.yaml"
    report = validate(
        catalog_root=tmp_path, paths=[app, app, tmp_path / "manifests" / "apps" / ".." / "apps"]
    )
    assert report.files_checked == 2
    assert report.problems == []
    report = validate(catalog_root=tmp_path, paths=[tmp_path / "incoming"])
    assert report.files_checked == 1
    assert report.problems == []


def test_given_files_resolve_requires_against_the_catalogue_and_each_other(
    tmp_path: Path,
) -> None:
    minimal_catalogue(tmp_path)
    write(
        tmp_path,
        {
            "incoming/alpha.yaml": APP.format(name="alpha", title="A")
            + "requires: [beta, portal]\n",
            "incoming/beta.yaml": APP.format(name="beta", title="B") + "requires: [ghost]\n",
        },
    )
    report = validate(catalog_root=tmp_path, paths=[tmp_path / "incoming"])
    assert [(Path(p.file).name, p.field) for p in report.problems] == [("beta.yaml", "requires.0")]
    assert "'ghost'" in report.problems[0].message


def test_a_three_app_cycle_is_reported_on_each_edge(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "manifests/apps/one.yaml": APP.format(name="one", title="One") + "requires: [two]\n",
            "manifests/apps/two.yaml": APP.format(name="two", title="Two") + "requires: [three]\n",
            "manifests/apps/three.yaml": APP.format(name="three", title="Three")
            + "requires: [one]\n",
            "manifests/apps/leaf.yaml": APP.format(name="leaf", title="Leaf") + "requires: [one]\n",
        },
    )
    report = validate(catalog_root=tmp_path)
    messages = {Path(p.file).name: p.message for p in report.problems}
    assert messages == {
        "one.yaml": "dependency cycle: one -> two -> three -> one",
        "two.yaml": "dependency cycle: two -> three -> one -> two",
        "three.yaml": "dependency cycle: three -> one -> two -> three",
    }


def test_template_symlinked_outside_is_refused(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    secret = tmp_path / "outside.txt"
    secret.write_text("{{ params.x }}")
    link = tmp_path / "templates" / "portal" / "runtime.env.j2"
    link.unlink()
    link.symlink_to(secret)
    report = validate(catalog_root=tmp_path)
    assert [(p.field, p.line) for p in report.problems] == [("templates.1.src", 36)]
    assert "outside the templates folder" in report.problems[0].message


def test_unused_parameter_warning_is_skipped_when_a_template_is_broken(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    (tmp_path / "templates" / "portal" / "runtime.env.j2").write_text("{% if %}\n")
    report = validate(catalog_root=tmp_path)
    assert [(Path(p.file).name, p.line, p.severity) for p in report.problems] == [
        ("runtime.env.j2", 1, E)
    ]


def test_missing_templates_folder(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    catalog = load_catalog(tmp_path)
    app = catalog.apps["portal"]
    assert isinstance(app.model, AppManifest)
    problems = check_app_templates(app=app, templates_dir=tmp_path / "nowhere")
    assert [p.field for p in problems] == ["templates.0.src", "templates.1.src"]
    assert all("does not exist" in p.message for p in problems)
    assert check_app_templates(app=app, templates_dir=tmp_path / "templates") == []


def test_check_region_against_a_catalogue(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    write(
        tmp_path,
        {
            "other/region.yaml": REGION.replace("name: badung", "name: gianyar")
            + """apps:
  portal:
    api_token: inline-token-value
    languages: id
  portl: {}
""",
        },
    )
    catalog = load_catalog(tmp_path, extra_files=[tmp_path / "other" / "region.yaml"])
    region = catalog.regions["gianyar"]
    assert isinstance(region.model, RegionProfile)
    problems = check_region(region=region, catalog=catalog)
    found = {(p.field, p.line) for p in problems}
    assert found == {
        ("apps.portal.api_token", 14),
        ("apps.portal.languages", 15),
        ("apps.portal", 13),  # support_email is required and has no default
        ("apps.portl", 16),
    }
    assert all("inline-token-value" not in p.message for p in problems)
    assert check_region(region=catalog.regions["badung"], catalog=catalog) == []


def test_nonexistent_path_is_a_problem(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    report = validate(catalog_root=tmp_path, paths=[tmp_path / "nope.yaml"])
    assert len(report.problems) == 1
    assert "cannot read the file" in report.problems[0].message


def test_no_catalogue(tmp_path: Path) -> None:
    with pytest.raises(CatalogNotFoundError) as caught:
        validate(catalog_root=tmp_path)
    assert caught.value.message == f"no catalogue at {tmp_path}: it has no manifests/ folder"


def test_many_manifests_sharing_templates(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    manifest = (tmp_path / "manifests" / "apps" / "portal.yaml").read_text()
    for number in range(200):
        name = f"portal-{number}"
        text = manifest.replace("name: portal\n", f"name: {name}\n")  # the app and its image
        write(tmp_path, {f"manifests/apps/many/{name}.yaml": text})
    report = validate(catalog_root=tmp_path)
    assert report.files_checked == 203
    assert report.problems == []


# -- every independent problem of a file in one run ------------------------------


def test_all_independent_problems_of_a_manifest_in_one_run(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    portal = tmp_path / "manifests/apps/portal.yaml"
    text = portal.read_text(encoding="utf-8")
    text = text.replace("category: public-service\n", "category: public-service\ncolour: red\n")
    text = text.replace("requires: [auth]", "requires: [auht]")
    write(tmp_path, {"manifests/apps/portal.yaml": text})
    write(
        tmp_path,
        {
            "templates/portal/runtime.env.j2": "SUPPORT={{ params.support_mail | shquote }}\n"
            "TOKEN={{ params.api_token | shquote }}\n"
        },
    )
    report = validate(catalog_root=tmp_path)
    found = {(Path(p.file).name, p.field): p.message for p in report.problems}
    assert "unknown key 'colour'" in found[("portal.yaml", "colour")]
    assert "did you mean 'auth'?" in found[("portal.yaml", "requires.0")]
    assert "did you mean 'support_email'?" in found[("runtime.env.j2", "params.support_mail")]
    # Nothing else (the region's values for portal are checked, and fine), each once;
    # the misspelt parameter leaves support_email unused: a warning.
    errors = [p.as_text() for p in report.problems if p.severity is E]
    assert len(errors) == len(set(errors)) == 3, "\n".join(errors)
    assert [p.field for p in report.problems if p.severity is W] == ["parameters.1"]


def test_a_required_field_in_error_does_not_hide_the_other_checks(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    portal = tmp_path / "manifests/apps/portal.yaml"
    text = portal.read_text(encoding="utf-8").replace("maturity: stable", "maturity: finished")
    text = text.replace("  - name: languages\n", "  - name: site_title\n  - name: languages\n")
    text = text.replace("license: GPL-3.0-only", "license: GPL-3.0-only\nlicence: MIT")
    write(tmp_path, {"manifests/apps/portal.yaml": text})
    values = "    support_email: it@badungkab.go.id\n    api_token: env:TOKEN\n    nope: 1\n"
    write(tmp_path, {"manifests/regions/badung.yaml": REGION + "apps:\n  portal:\n" + values})
    report = validate(catalog_root=tmp_path)
    messages = [p.as_text() for p in report.problems]
    fields = sorted(p.field for p in report.problems)
    # the model's errors, its check across fields (which pydantic skips once a
    # field fails), and the region's values against the app's parameters
    assert fields == ["", "apps.portal.nope", "licence", "maturity"], messages
    assert any("parameter 'site_title' is declared twice" in m for m in messages), messages
    assert any("app 'portal' has no parameter 'nope'" in m for m in messages), messages
    # the app stays out of everything but validate
    assert "portal" not in load_catalog(tmp_path).apps


def test_a_broken_field_skips_only_the_checks_that_read_it(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    portal = tmp_path / "manifests/apps/portal.yaml"
    text = portal.read_text(encoding="utf-8").replace("    type: email\n", "    type: e-mail\n")
    write(tmp_path, {"manifests/apps/portal.yaml": text})
    report = validate(catalog_root=tmp_path)
    # parameters is broken: no template check (it would call every parameter
    # undeclared), no check of the region's values; one problem, located.
    (problem,) = report.problems
    assert problem.field == "parameters.1.type"


# -- what a message shows of a value ----------------------------------------------------

CREDENTIAL_VALUES = [
    ("registry", "deploy:s3cr3tPass@Registry.badungkab.go.id/apps"),
    ("registry", "https://deploy:s3cr3tPass@registry.badungkab.go.id/apps"),
    ("registry", "s3cr3tPass@registry.badungkab.go.id/apps/"),
    ("domain", "https://admin:s3cr3tPass@badungkab.go.id"),
    ("timezone", "https://admin:s3cr3tPass@tz.example/Asia/Makassar"),
]


def with_value(text: str, key: str, value: str) -> str:
    """``text`` with its top-level ``key`` set to ``value`` (added when it has none)."""
    lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    return "\n".join([*lines, f"{key}: {value}"]) + "\n"


@pytest.mark.parametrize(("key", "value"), CREDENTIAL_VALUES)
def test_a_value_with_credentials_is_not_echoed(tmp_path: Path, key: str, value: str) -> None:
    minimal_catalogue(tmp_path)
    region = tmp_path / "manifests/regions/badung.yaml"
    text = region.read_text(encoding="utf-8")
    region.write_text(with_value(text, key, f"'{value}'"), encoding="utf-8")
    report = validate(catalog_root=tmp_path, paths=[region])
    (problem,) = [p for p in report.problems if p.field == key]
    assert "s3cr3tPass" not in problem.as_text()
    assert "deploy" not in problem.message and "admin" not in problem.message
    assert "***@" in problem.message


@pytest.mark.parametrize("key", ["name", "domain", "timezone", "locale"])
def test_a_long_value_is_shown_shortened(tmp_path: Path, key: str) -> None:
    minimal_catalogue(tmp_path)
    region = tmp_path / "manifests/regions/badung.yaml"
    region.write_text(with_value(region.read_text(encoding="utf-8"), key, "X" * 5000))
    report = validate(catalog_root=tmp_path, paths=[region])
    (problem,) = [p for p in report.problems if p.field == key]
    assert len(problem.message) < 300, problem.message
    assert "XXX..." in problem.message


def test_long_unknown_keys_are_shown_shortened(tmp_path: Path) -> None:
    minimal_catalogue(tmp_path)
    region = tmp_path / "manifests/regions/badung.yaml"
    key = "k" * 1000
    region.write_text(region.read_text(encoding="utf-8") + f"{key}: 1\n", encoding="utf-8")
    (problem,) = validate(catalog_root=tmp_path, paths=[region]).problems
    text = problem.as_text()
    # The key is cut (the allowed keys listed after it are the model's, not the file's).
    assert "k" * 61 not in text and "k" * 20 in text
    assert len(text) < 400 + len(str(region))
