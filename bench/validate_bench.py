"""Benchmark: ``smartshare validate`` against ``check-jsonschema``, and CLI start-up.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/validate_bench.py [--count 1000] [--runs 3]

It generates ``--count`` valid app manifests of realistic size (about 50 lines
each: summaries and descriptions in English and Indonesian, 4-6 parameters,
2-3 templates, one or two images) into a temporary catalogue whose few
templates are shared by all apps, then times whole processes (wall clock, one
warm-up, best of ``--runs``):

(a) ``smartshare validate --catalog TMP``
(b) ``check-jsonschema --schemafile app.json TMP/manifests/apps/*.yaml``
(c) ``smartshare --help`` against a bare typer app with one command, run by
    the same Python.

Goals: (b) / (a) >= 6 and (c) smartshare / bare typer <= 1.2.  The temporary
folder is removed at the end.  The exit status is 0 when both goals are met,
1 when one is missed, and 2 when a tool did not behave as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

VALIDATE_GOAL = 6.0  # check-jsonschema / smartshare validate, at least
HELP_GOAL = 1.2  # smartshare --help / bare typer --help, at most

BIN = Path(sys.executable).parent

CATEGORIES = (
    "public-service",
    "emergency",
    "licensing",
    "employment",
    "civil-service",
    "health",
    "education",
    "transport",
    "economy",
    "social",
    "government",
)
REGIONS = (
    ("Pemerintah Kota Tangerang", "36.71", "tangerangkota.go.id"),
    ("Pemerintah Kabupaten Badung", "51.03", "badungkab.go.id"),
    ("Pemerintah Kota Makassar", "73.71", "makassarkota.go.id"),
    ("Pemerintah Kota Jayapura", "91.71", "jayapurakota.go.id"),
)
LICENSES = ("GPL-3.0-only", "MIT", "Apache-2.0", "MIT OR Apache-2.0")

# Shared templates.  Every app uses index.html.j2 and runtime.env.j2; apps
# with 5 or 6 parameters also use site-5.env.j2 or site-6.env.j2.  Each
# template reads only parameters that every app using it declares, and every
# declared parameter is read by one of the app's templates (no warnings).
TEMPLATES = {
    "common/index.html.j2": """\
<!doctype html>
<html lang="{{ params.default_language }}">
<head>
  <meta charset="utf-8">
  <meta name="theme-color" content="{{ (region.branding.primary_color or '#0E4C92') | e }}">
  <title>{{ params.site_title | e }} | {{ region.title | e }}</title>
</head>
<body>
  <header>
    <p class="region">{{ region.title | e }}</p>
    <h1>{{ params.site_title | e }}</h1>
{%- if region.branding.motto %}
    <p class="motto">{{ region.branding.motto | e }}</p>
{%- endif %}
  </header>
  <main>
{%- if params.default_language == "en" %}
    <p>{{ app.summary.en | e }}</p>
{%- else %}
    <p>{{ app.summary.id | e }}</p>
{%- endif %}
  </main>
  <footer>
    <p>{{ region.title | e }} &middot; {{ region.province | e }} &middot;
       <a href="mailto:{{ params.support_email | e }}">{{ params.support_email | e }}</a></p>
    <p class="origin">{{ app.title | e }} {{ app.version | e }}
       &middot; {{ app.owner.name | e }}</p>
  </footer>
</body>
</html>
""",
    "common/runtime.env.j2": """\
# Runtime settings for {{ region.name }}: kept out of the image.
APP_DB_PASSWORD={{ params.db_password | shquote }}
APP_TIMEZONE={{ region.timezone | shquote }}
""",
    "common/site-5.env.j2": """\
APP_SITE_TITLE={{ params.site_title | shquote }}
APP_REGION_CODE={{ region.code | shquote }}
APP_ANONYMOUS={{ ("yes" if params.enable_anonymous else "no") | shquote }}
""",
    "common/site-6.env.j2": """\
APP_SITE_TITLE={{ params.site_title | shquote }}
APP_REGION_CODE={{ region.code | shquote }}
APP_ANONYMOUS={{ ("yes" if params.enable_anonymous else "no") | shquote }}
APP_MAX_UPLOAD_MB={{ params.max_upload_mb | string | shquote }}
""",
}

BARE_TYPER = """\
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"
    typer.echo(f"hello {name}")


app()
"""


def manifest(index: int) -> str:
    """An app manifest of about 50 lines, valid with no error and no warning."""
    name = f"app-{index:04d}"
    owner, code, domain = REGIONS[index % len(REGIONS)]
    extra = index % 3  # 0: 4 parameters / 2 templates, 1: 5 / 3, 2: 6 / 3
    lines = [
        "# yaml-language-server: $schema=../../schema/app.json",
        "apiVersion: smartshare/v1",
        "kind: App",
        f"name: {name}",
        f"title: Layanan {index:04d}",
        "summary:",
        f"  en: Online service number {index} for citizens, with tickets and notifications.",
        f"  id: Layanan daring nomor {index} untuk warga, dengan tiket dan notifikasi.",
        "description:",
        "  en: >-",
        "    A generated app for the benchmark. Citizens file requests on the web, each",
        "    request gets a ticket number and is routed to the responsible department.",
        "  id: >-",
        "    Aplikasi buatan untuk benchmark. Warga mengajukan permohonan lewat web, setiap",
        "    permohonan mendapat nomor tiket dan diteruskan ke perangkat daerah.",
        "owner:",
        f"  name: {owner}",
        f'  region_code: "{code}"',
        f"  contact: diskominfo@{domain}",
        f"category: {CATEGORIES[index % len(CATEGORIES)]}",
        f"tags: [layanan, tiket, service-{index % 7}, warga]",
        f"license: {LICENSES[index % len(LICENSES)]}",
        f'version: "{1 + index % 5}.{index % 10}.{index % 3}"',
        "maturity: stable",
        "source:",
        f"  repo: https://git.{domain}/diskominfo/{name}.git",
        f"  ref: v{1 + index % 5}.{index % 10}.{index % 3}",
        "images:",
        f"  - name: {name}",
        '    context: "."',
        "    dockerfile: Dockerfile",
    ]
    if index % 2:
        lines += [
            f"  - name: {name}-worker",
            "    context: worker",
            "    dockerfile: worker/Dockerfile",
            "    args:",
            '      PHP_VERSION: "8.2"',
        ]
    lines += [
        "parameters:",
        "  - name: site_title",
        "    max_length: 80",
        f"    default: Layanan {index:04d}",
        "    description: Name of the service shown in the page header.",
        "  - name: support_email",
        "    type: email",
        "    required: true",
        "    description: Address citizens can write to.",
        "  - name: default_language",
        "    type: enum",
        "    choices: [id, en]",
        "    default: id",
        "    description: Language of the pages.",
    ]
    if extra >= 1:
        lines += [
            "  - name: enable_anonymous",
            "    type: boolean",
            "    default: true",
            "    description: Allow requests without the citizen's name.",
        ]
    if extra >= 2:
        lines += [
            "  - name: max_upload_mb",
            "    type: integer",
            "    minimum: 1",
            "    maximum: 50",
            "    default: 10",
            "    description: Largest attachment accepted, in megabytes.",
        ]
    lines += [
        "  - name: db_password",
        "    secret: true",
        "    required: true",
        "    description: Password of the database account.",
        "templates:",
        "  - src: common/index.html.j2",
        "    dest: www/index.html",
    ]
    if extra >= 1:
        lines += [
            f"  - src: common/site-{4 + extra}.env.j2",
            "    dest: config/site.env",
        ]
    lines += [
        "  - src: common/runtime.env.j2",
        "    dest: runtime.env",
        "    target: runtime",
        # Every tenth app needs the first one: the requires checks have work to do.
        f"requires: [{'app-0001' if index % 10 == 0 and index > 1 else ''}]",
    ]
    return "\n".join(lines) + "\n"


def write_catalogue(root: Path, count: int) -> list[Path]:
    apps = root / "manifests" / "apps"
    apps.mkdir(parents=True)
    for relative, text in TEMPLATES.items():
        path = root / "templates" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    files = []
    for index in range(1, count + 1):
        path = apps / f"app-{index:04d}.yaml"
        path.write_text(manifest(index), encoding="utf-8")
        files.append(path)
    return files


def tool(name: str) -> str:
    """The tool next to this Python (the virtual environment), else on PATH."""
    candidate = BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def run(argv: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False, env=ENV)


def expect_ok(label: str, result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        print(f"{label}: exit {result.returncode}, expected 0\n{tail}", file=sys.stderr)
        sys.exit(2)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_of(label: str, argv: Sequence[str], *, cwd: Path, runs: int) -> tuple[float, float]:
    """Fastest wall-clock seconds of ``runs`` runs after one warm-up, and the lowest CPU seconds.

    CPU time (user + system of the child) is printed too: it moves less than
    wall-clock time when other work shares the machine.
    """
    expect_ok(label, run(argv, cwd=cwd))
    walls, cpus = [], []
    for _ in range(runs):
        cpu = _children_cpu()
        start = time.perf_counter()
        result = run(argv, cwd=cwd)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
        expect_ok(label, result)
    return min(walls), min(cpus)


# No colours, a fixed width, and no catalogue from the caller's environment.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "SMARTSHARE_CATALOG"},
    "NO_COLOR": "1",
    "COLUMNS": "100",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="manifests to generate")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per command (best kept)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.runs < 1:
        parser.error("--count and --runs must be at least 1")

    smartshare = tool("smartshare")
    check_jsonschema = tool("check-jsonschema")
    with tempfile.TemporaryDirectory(prefix="smartshare-bench-") as tmp:
        work = Path(tmp)
        catalogue = work / "catalogue"
        files = write_catalogue(catalogue, args.count)
        lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)

        schema = run([smartshare, "schema", "app"], cwd=work)
        expect_ok("smartshare schema app", schema)
        schema_file = work / "app.json"
        schema_file.write_text(schema.stdout, encoding="utf-8")
        bare = work / "bare_typer.py"
        bare.write_text(BARE_TYPER, encoding="utf-8")

        # The generated catalogue must be clean: no error and no warning.
        report = run(
            [smartshare, "validate", "--format", "json", "--catalog", str(catalogue)], cwd=work
        )
        expect_ok("smartshare validate (check)", report)
        problems = json.loads(report.stdout)["problems"]
        if problems:
            print(f"the generated catalogue is not clean: {problems[:5]}", file=sys.stderr)
            return 2

        timed = {
            "validate": best_of(
                "smartshare validate",
                [smartshare, "validate", "--catalog", str(catalogue)],
                cwd=work,
                runs=args.runs,
            ),
            "jsonschema": best_of(
                "check-jsonschema",
                [check_jsonschema, "--schemafile", str(schema_file), *map(str, files)],
                cwd=work,
                runs=args.runs,
            ),
            "help": best_of("smartshare --help", [smartshare, "--help"], cwd=work, runs=args.runs),
            "bare": best_of(
                "bare typer --help",
                [sys.executable, str(bare), "--help"],
                cwd=work,
                runs=args.runs,
            ),
        }

    labels = {
        "validate": "(a) smartshare validate --catalog TMP",
        "jsonschema": "(b) check-jsonschema --schemafile app.json ...",
        "help": "(c) smartshare --help",
        "bare": "(c) bare typer app (one command) --help",
    }
    validate_ratio = timed["jsonschema"][0] / timed["validate"][0]
    help_ratio = timed["help"][0] / timed["bare"][0]
    validate_ok = validate_ratio >= VALIDATE_GOAL
    help_ok = help_ratio <= HELP_GOAL
    print(
        f"{len(files)} manifests ({lines / len(files):.0f} lines each on average), "
        f"{len(TEMPLATES)} shared templates; {os.cpu_count()} CPU(s); "
        f"Python {sys.version.split()[0]}; best of {args.runs} after 1 warm-up"
    )
    print()
    print(f"{'command':<48} {'wall s':>8} {'CPU s':>8}")
    for key, label in labels.items():
        wall, cpu = timed[key]
        print(f"{label:<48} {wall:>8.3f} {cpu:>8.3f}")
    print()
    cpu_validate = timed["jsonschema"][1] / timed["validate"][1]
    cpu_help = timed["help"][1] / timed["bare"][1]
    print(
        f"check-jsonschema / smartshare validate: {validate_ratio:5.2f}x wall, "
        f"{cpu_validate:5.2f}x CPU  (goal >= {VALIDATE_GOAL:g}x wall: "
        f"{'met' if validate_ok else 'MISSED'})"
    )
    print(
        f"smartshare --help / bare typer --help:  {help_ratio:5.2f}x wall, "
        f"{cpu_help:5.2f}x CPU  (goal <= {HELP_GOAL:g}x wall: {'met' if help_ok else 'MISSED'})"
    )
    return 0 if validate_ok and help_ok else 1


if __name__ == "__main__":
    sys.exit(main())
