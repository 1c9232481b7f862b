"""The manifest's ``runtime`` and the profile's ``deploy``: models, image references, checks."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from smartshare.catalog.checks import validate
from smartshare.catalog.imagerefs import (
    MirrorRule,
    apply_mirrors,
    image_reference_problem,
    parse_image_reference,
)
from smartshare.catalog.runtime import DeploySettings, public_port
from smartshare.validation import validate_catalogue

REPO_ROOT = Path(__file__).resolve().parent.parent

SIKDA_RUNTIME = """\
runtime:
  services:
    - name: web
      image: sikda
      ports:
        - port: 8080
          public: true
      environment:
        SIKDA_DB_HOST: "{{ services.db.host }}"
      secrets:
        - param: db_password
          env: SIKDA_DB_PASSWORD
      files:
        - dest: runtime.env
          path: /etc/sikda/runtime.env
      healthcheck:
        http: {port: 8080, path: /}
        interval: 2s
        retries: 20
      depends_on:
        - name: db
          condition: healthy
        - name: migrate
          condition: completed
    - name: db
      external: postgres:16
      volumes:
        - name: pgdata
          path: /var/lib/postgresql/data
      healthcheck:
        command: ["pg_isready"]
  jobs:
    - name: migrate
      image: sikda
      command: ["/bin/true"]
      depends_on:
        - name: db
          condition: healthy
  outputs:
    internal_url: "http://{{ services.web.host }}:8080"
"""


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    root = tmp_path / "catalogue"
    shutil.copytree(REPO_ROOT / "manifests", root / "manifests")
    shutil.copytree(REPO_ROOT / "templates", root / "templates")
    return root


def without(path: Path, key: str) -> str:
    """The YAML file's text without its top-level ``key`` (the bundled files' last section)."""
    return re.sub(rf"(?ms)^{key}:\n.*?(?=^\S|\Z)", "", path.read_text(encoding="utf-8"))


def with_runtime(root: Path, app: str, runtime: str) -> Path:
    """The app's manifest with ``runtime`` instead of the bundled one."""
    path = root / "manifests" / "apps" / f"{app}.yaml"
    path.write_text(without(path, "runtime") + textwrap.dedent(runtime), encoding="utf-8")
    return path


def messages(root: Path, *paths: Path) -> list[str]:
    report = validate(catalog_root=root, paths=list(paths))
    return [f"{p.line}: {p.field}: {p.message}" for p in report.problems if p.severity == "error"]


def test_a_complete_runtime_validates(catalogue: Path) -> None:
    path = with_runtime(catalogue, "sikda", SIKDA_RUNTIME)
    assert messages(catalogue, path) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("image: sikda\n      ports", "image: sikdaa\n      ports", "not one of the app's images"),
        ("- param: db_password", "- param: db_name", "is not secret"),
        ("- param: db_password", "- param: nope", "is not a parameter"),
        ("- dest: runtime.env", "- dest: other.env", "not the dest of a runtime template"),
        (
            "- name: migrate\n          condition: completed",
            "- name: migrat\n          condition: completed",
            "not a service or job",
        ),
        (
            "- name: db\n          condition: healthy\n        - name: migrate",
            "- name: db\n          condition: completed\n        - name: migrate",
            "never completes",
        ),
        (
            'command: ["pg_isready"]',
            'http: {port: 5432}\n        command: ["x"]',
            "exactly one of 'command' or 'http'",
        ),
        ("external: postgres:16", "external: Postgres:16", "image reference"),
        (
            "image: sikda\n      ports",
            "image: sikda\n      external: x:1\n      ports",
            "exactly one of 'image'",
        ),
        (
            "- port: 8080\n          public: true",
            "- port: 8080\n          public: true\n        - port: 8080",
            "declared twice",
        ),
        ("path: /etc/sikda/runtime.env", "path: etc/runtime.env", "absolute path"),
        ("interval: 2s", "interval: soon", "duration"),
    ],
)
def test_runtime_problems_are_located(catalogue: Path, old: str, new: str, expected: str) -> None:
    assert old in SIKDA_RUNTIME
    path = with_runtime(catalogue, "sikda", SIKDA_RUNTIME.replace(old, new, 1))
    found = messages(catalogue, path)
    assert any(expected in message for message in found), found
    # Located at a line of the runtime section, never at the top of the file.
    first_runtime_line = path.read_text().splitlines().index("runtime:") + 1
    assert all(int(m.split(":")[0]) > first_runtime_line for m in found if expected in m), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("services.db.host", "services.dbb.host", "the app has no service 'dbb'"),
        ("services.db.host", "services.db.hots", "a service offers host, port, public_url"),
        ("services.db.host", "services.db.public_url", "service 'db' has no public port"),
        ("services.db.host", "services.db.port", "service 'db' declares no port"),
        ("{{ services.db.host }}", "{{ params.nope }}", "parameter 'nope' is not declared"),
        (
            "{{ services.db.host }}",
            "{{ params.db_password }}",
            "a secret reaches a container only as a file",
        ),
        ("{{ services.db.host }}", "{{ region.nope }}", "'region' has no field 'nope'"),
        ("{{ services.db.host }}", "{{ requires.laksa.url }}", "does not require 'laksa'"),
        ("{{ services.db.host }}", "{{ bogus }}", "'bogus' is not defined"),
        ("{{ services.db.host }}", "{{ services.db.host ", "unexpected end of template"),
        ("http://{{ services.web.host }}", "http://{{ services['wbe'].host }}", "no service 'wbe'"),
    ],
)
def test_runtime_text_is_checked_at_its_key(
    catalogue: Path, old: str, new: str, expected: str
) -> None:
    """Environment values and outputs are Jinja text: what they use must exist."""
    assert old in SIKDA_RUNTIME
    path = with_runtime(catalogue, "sikda", SIKDA_RUNTIME.replace(old, new, 1))
    report = validate(catalog_root=catalogue, paths=[path])
    found = [p for p in report.problems if expected in p.message]
    assert found, [p.message for p in report.problems]
    lines = path.read_text().splitlines()
    key = "SIKDA_DB_HOST:" if "services.db.host" in old else "internal_url:"
    assert {p.line for p in found} == {
        next(i for i, line in enumerate(lines, 1) if line.strip().startswith(key))
    }


def test_a_job_environment_and_a_required_output_are_checked(catalogue: Path) -> None:
    runtime = SIKDA_RUNTIME.replace(
        'command: ["/bin/true"]',
        'command: ["/bin/true"]\n      environment:\n        DB: "{{ services.nodb.host }}"',
    )
    path = with_runtime(catalogue, "sikda", runtime)
    assert any("no service 'nodb'" in m for m in messages(catalogue, path))
    perizinan = catalogue / "manifests" / "apps" / "perizinan-online.yaml"
    text = perizinan.read_text(encoding="utf-8")
    assert "requires.sikda.internal_url" in text
    perizinan.write_text(text.replace("requires.sikda.internal_url", "requires.sikda.intern_url"))
    assert any(
        "'sikda' has no output 'intern_url' (outputs: internal_url)" in m
        for m in messages(catalogue, perizinan)
    )


def test_a_template_naming_a_required_output_is_checked_against_it(catalogue: Path) -> None:
    """``requires.A.X`` in a template file: A required, X one of A's declared outputs."""
    template = catalogue / "templates" / "perizinan-online" / "config.json.j2"
    manifest = catalogue / "manifests" / "apps" / "perizinan-online.yaml"
    original = template.read_text(encoding="utf-8")
    good = (
        '{# {{ requires.sikda.internal_url }} {{ requires["sikda"]["internal_url"] }}'
        " {{ requires.sikda.items() | list }} #}\n"
    )
    template.write_text(original + good, encoding="utf-8")
    assert messages(catalogue, manifest) == [], "a comment is not a use"
    uses = (
        "{{ requires.sikda.internal_url }} {{ requires['sikda']['internal_url'] }}"
        " {{ requires.sikda.items() | list }}\n"
    )
    template.write_text(original + uses, encoding="utf-8")
    assert messages(catalogue, manifest) == []
    wrong = "{{ requires.sikda.intern_url }}\n{{ requires['laksa'].url }}\n"
    template.write_text(original + wrong, encoding="utf-8")
    report = validate(catalog_root=catalogue, paths=[manifest])
    found = {
        (Path(p.file).name, p.line, p.field, p.message)
        for p in report.problems
        if p.severity == "error"
    }
    last = len(original.splitlines())
    assert found == {
        (
            "config.json.j2",
            last + 1,
            "requires.sikda.intern_url",
            "requires.sikda.intern_url: 'sikda' has no output 'intern_url' "
            "(outputs: internal_url, public_url)",
        ),
        (
            "config.json.j2",
            last + 2,
            "requires.laksa.url",
            "requires.laksa: 'perizinan-online' does not require 'laksa' (requires: sikda)",
        ),
    }, found
    # The required app's own manifest decides: a new output there makes the use valid.
    sikda = catalogue / "manifests" / "apps" / "sikda.yaml"
    text = sikda.read_text(encoding="utf-8")
    assert "    internal_url:" in text
    sikda.write_text(
        text.replace("    internal_url:", '    intern_url: "x"\n    internal_url:', 1),
        encoding="utf-8",
    )
    report = validate(catalog_root=catalogue, paths=[manifest])
    assert [p.field for p in report.problems if p.severity == "error"] == ["requires.laksa.url"]


def test_a_required_output_is_checked_again_when_only_the_required_app_changes(
    catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requiring app's own problems come from the cache; its use of the output does not."""
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    template = catalogue / "templates" / "perizinan-online" / "config.json.j2"
    template.write_text(
        template.read_text(encoding="utf-8") + "{{ requires.sikda.status_url }}\n",
        encoding="utf-8",
    )

    def fields() -> list[str]:
        report = validate_catalogue(catalog_root=catalogue, jobs=1)
        return [p.field for p in report.problems if p.severity == "error"]

    assert fields() == ["requires.sikda.status_url"]
    assert fields() == ["requires.sikda.status_url"]  # from the cache: the same
    sikda = catalogue / "manifests" / "apps" / "sikda.yaml"
    text = sikda.read_text(encoding="utf-8")
    sikda.write_text(
        text.replace("    internal_url:", '    status_url: "x"\n    internal_url:', 1),
        encoding="utf-8",
    )
    assert fields() == []
    sikda.write_text(text, encoding="utf-8")
    assert fields() == ["requires.sikda.status_url"]


def test_a_parameter_used_only_by_runtime_text_counts_as_used(catalogue: Path) -> None:
    runtime = SIKDA_RUNTIME.replace(
        'SIKDA_DB_HOST: "{{ services.db.host }}"',
        'SIKDA_DB_HOST: "{{ services.db.host }}"\n        ONLY_HERE: "{{ params.only_here }}"',
    )
    path = with_runtime(catalogue, "sikda", runtime)
    text = path.read_text(encoding="utf-8").replace(
        "parameters:\n", "parameters:\n  - name: only_here\n    default: x\n", 1
    )
    path.write_text(text, encoding="utf-8")
    report = validate(catalog_root=catalogue, paths=[path])
    assert not [p for p in report.problems if "only_here" in p.message], report.problems


def test_a_depends_on_cycle_is_reported(catalogue: Path) -> None:
    runtime = SIKDA_RUNTIME.replace(
        "      external: postgres:16\n",
        "      external: postgres:16\n      depends_on:\n        - name: migrate\n"
        "          condition: completed\n",
    )
    path = with_runtime(catalogue, "sikda", runtime)
    found = messages(catalogue, path)
    assert any("depends_on cycle" in m and "db" in m and "migrate" in m for m in found), found


def test_a_job_cannot_be_waited_on_as_healthy(catalogue: Path) -> None:
    runtime = SIKDA_RUNTIME.replace(
        "- name: migrate\n          condition: completed",
        "- name: migrate\n          condition: healthy",
    )
    path = with_runtime(catalogue, "sikda", runtime)
    assert any("is a job" in m for m in messages(catalogue, path))


def test_two_public_ports_in_one_app(catalogue: Path) -> None:
    runtime = SIKDA_RUNTIME.replace(
        "      external: postgres:16\n",
        "      external: postgres:16\n      ports:\n        - port: 5432\n          public: true\n",
    )
    path = with_runtime(catalogue, "sikda", runtime)
    assert any("at most one public port" in m for m in messages(catalogue, path))


def test_stack_names_clash_across_apps(catalogue: Path) -> None:
    # sikda's service "db-web" and sikda-db's service "web" are both "sikda-db-web".
    first = with_runtime(
        catalogue, "sikda", SIKDA_RUNTIME.replace("- name: web\n", "- name: db-web\n")
    )
    second = catalogue / "manifests" / "apps" / "sikda-db.yaml"
    second.write_text(
        first.read_text()
        .replace("name: sikda\n", "name: sikda-db\n", 1)
        .replace("- name: db-web\n", "- name: web\n"),
        encoding="utf-8",
    )
    found = validate(catalog_root=catalogue, paths=[first, second]).problems
    clashes = [p for p in found if "'sikda-db-web' is also the stack name" in p.message]
    assert len(clashes) == 1, [p.message for p in found]
    assert clashes[0].field == "runtime.services.0.name"


def test_region_deploy_settings_are_checked(catalogue: Path) -> None:
    with_runtime(catalogue, "sikda", SIKDA_RUNTIME)
    laksa = catalogue / "manifests" / "apps" / "laksa.yaml"
    laksa.write_text(without(laksa, "runtime"), encoding="utf-8")
    region = catalogue / "manifests" / "regions" / "badung.yaml"
    region.write_text(
        without(region, "deploy")
        + textwrap.dedent(
            """\
            deploy:
              target: compose
              bind_address: 127.0.0.1
              ports:
                sikda: 18085
                laksa: 18085
                nosuchapp: 18090
              image_mirrors:
                - from: docker.io/library/
                  to: 127.0.0.1:5000/dockerhub/library/
            """
        ),
        encoding="utf-8",
    )
    found = messages(catalogue, region)
    assert any("port 18085 is given to both" in m for m in found), found
    region.write_text(region.read_text().replace("laksa: 18085", "laksa: 18086"))
    found = messages(catalogue, region)
    assert any("no app named 'nosuchapp'" in m for m in found), found
    # laksa has no runtime here, so it has no public port to publish.
    assert any("app 'laksa' has no public port" in m for m in found), found


def test_bad_deploy_values() -> None:
    with pytest.raises(ValueError, match="IP address"):
        DeploySettings(bind_address="localhost")
    with pytest.raises(ValueError, match="without a scheme"):
        DeploySettings.model_validate({"image_mirrors": [{"from": "https://x/", "to": "y/"}]})
    settings = DeploySettings(ports={"laksa": 18081}, base_port=18000)
    assert public_port(settings, "laksa", ["laksa", "sikda"]) == 18081
    assert public_port(settings, "sikda", ["sikda", "laksa"]) == 18001


@pytest.mark.parametrize(
    ("reference", "normal"),
    [
        ("postgres", "docker.io/library/postgres:latest"),
        ("postgres:16", "docker.io/library/postgres:16"),
        ("library/redis:7", "docker.io/library/redis:7"),
        ("team/app:1.0", "docker.io/team/app:1.0"),
        ("index.docker.io/library/redis:7", "docker.io/library/redis:7"),
        ("ghcr.io/org/app:2", "ghcr.io/org/app:2"),
        ("localhost/app", "localhost/app:latest"),
        ("127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1"),
        ("redis@sha256:" + "a" * 64, "docker.io/library/redis@sha256:" + "a" * 64),
    ],
)
def test_references_are_normalised(reference: str, normal: str) -> None:
    assert str(parse_image_reference(reference)) == normal


@pytest.mark.parametrize(
    "reference", ["", "Postgres", "postgres:", "a b", "postgres:16\n", "x:" + "1" * 200, "-x"]
)
def test_bad_references_are_refused(reference: str) -> None:
    assert image_reference_problem(reference) is not None


def test_mirrors_rewrite_the_longest_prefix_at_a_path_boundary() -> None:
    rules = [
        MirrorRule("docker.io/", "mirror.example/hub/"),
        MirrorRule("docker.io/library/", "mirror.example/official/"),
        MirrorRule("docker.io/lib/", "wrong.example/"),
    ]
    assert apply_mirrors("postgres:16", rules) == "mirror.example/official/postgres:16"
    assert apply_mirrors("team/app:1", rules) == "mirror.example/hub/team/app:1"
    assert apply_mirrors("ghcr.io/org/app:2", rules) == "ghcr.io/org/app:2"
