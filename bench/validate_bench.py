"""Benchmark: ``smartshare validate`` at catalogue scale, against ``check-jsonschema``.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/validate_bench.py            # own, large, bundled, output, help
    .venv/bin/python bench/validate_bench.py --cases own --runs 5
    .venv/bin/python bench/validate_bench.py --cases large --large-count 10000

Every figure is a whole process (wall clock; CPU time of the process and
its workers alongside), best of ``--runs`` after one warm-up, the variants of
a case run in turns so that a change in the machine's load hits them alike.
The catalogues are generated into a temporary folder (removed at the end):
every app has its own templates (2 or 3 in its manifest, the page including
a partial of its own, all with the app's name in them, so no two files are
alike), 4 region profiles give values to a tenth of the apps each, every
tenth app requires the first.  ``bench/README.md`` says what each case and
figure is.  Exit status: 0 when every goal is met, 1 when one is missed, 2
when a command did not behave as expected.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
CASES = ("own", "large", "bundled", "output", "help", "shared")
DEFAULT_CASES = ("own", "large", "bundled", "output", "help")

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
OWNERS = (
    ("Pemerintah Kota Tangerang", "36.71", "tangerangkota.go.id"),
    ("Pemerintah Kabupaten Badung", "51.03", "badungkab.go.id"),
    ("Pemerintah Kota Makassar", "73.71", "makassarkota.go.id"),
    ("Pemerintah Kota Jayapura", "91.71", "jayapurakota.go.id"),
)
REGIONS = (
    ("badung", "Kabupaten Badung", "kabupaten", "51.03", "Bali", "Asia/Makassar"),
    ("jayapura", "Kota Jayapura", "kota", "91.71", "Papua", "Asia/Jayapura"),
    ("makassar", "Kota Makassar", "kota", "73.71", "Sulawesi Selatan", "Asia/Makassar"),
    ("medan", "Kota Medan", "kota", "12.71", "Sumatera Utara", "Asia/Jakarta"),
)
LICENSES = ("GPL-3.0-only", "MIT", "Apache-2.0", "MIT OR Apache-2.0")


# -- the catalogues ------------------------------------------------------------------------


def manifest(index: int, *, own: bool, unused: bool = False) -> str:
    """An app manifest like manifests/apps/laksa.yaml (60-75 lines), valid with no warning.

    ``own``: its templates are its own (templates/app-NNNN/...), else the 4
    shared ones under templates/common/.  ``unused``: one more parameter
    that no template uses (a warning).
    """
    name = f"app-{index:04d}"
    owner, code, domain = OWNERS[index % len(OWNERS)]
    extra = index % 3  # 0: 5 parameters / 2 templates, 1: 6 / 3, 2: 7 / 3
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
    if own:
        lines += [
            "  - name: categories",
            "    type: list",
            "    default: [Infrastruktur, Kebersihan, Kesehatan, Pendidikan]",
            "    description: Request categories offered in the form.",
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
    if unused:
        lines += [
            "  - name: legacy_banner",
            "    default: none",
            "    description: Not used by any template (a warning).",
        ]
    lines += [
        "  - name: db_password",
        "    secret: true",
        "    required: true",
        "    description: Password of the database account.",
        "templates:",
    ]
    folder = name if own else "common"
    lines += [f"  - src: {folder}/index.html.j2", "    dest: www/index.html"]
    if extra >= 1:
        site = "site.env.j2" if own else f"site-{4 + extra}.env.j2"
        lines += [f"  - src: {folder}/{site}", "    dest: config/site.env"]
    lines += [
        f"  - src: {folder}/runtime.env.j2",
        "    dest: runtime.env",
        "    target: runtime",
        # Every tenth app needs the first one: the requires checks have work to do.
        f"requires: [{'app-0001' if index % 10 == 0 and index > 1 else ''}]",
    ]
    return "\n".join(lines) + "\n"


def own_templates(index: int) -> dict[str, str]:
    """An app's own templates, like LAKSA's: a page with a partial, and env files."""
    name = f"app-{index:04d}"
    extra = index % 3
    page = f"""\
{{#- {name}: the public page of Layanan {index:04d} -#}}
<!doctype html>
<html lang="{{{{ params.default_language }}}}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="theme-color" content="{{{{ (region.branding.primary_color or '#0E4C92') | e }}}}">
  <meta property="og:site_name" content="{{{{ region.title | e }}}}">
{{%- if region.branding.logo %}}
  <meta property="og:image" content="{{{{ region.branding.logo | e }}}}">
{{%- endif %}}
  <title>{{{{ params.site_title | e }}}} | {{{{ region.title | e }}}}</title>
  <link rel="stylesheet" href="/static/{name}.css">
</head>
<body>
  <header>
    <p class="region">{{{{ region.title | e }}}}</p>
    <h1>{{{{ params.site_title | e }}}}</h1>
{{%- if region.branding.motto %}}
    <p class="motto">{{{{ region.branding.motto | e }}}}</p>
{{%- endif %}}
  </header>
  <main>
{{%- if params.default_language == "en" %}}
    <p>Send your request for service {index} to {{{{ region.title | e }}}}. Every request gets a
       ticket number and is forwarded to the responsible department.</p>
{{%- else %}}
    <p>Sampaikan permohonan layanan {index} kepada {{{{ region.title | e }}}}. Setiap permohonan
       mendapat nomor tiket dan diteruskan ke perangkat daerah yang berwenang.</p>
{{%- endif %}}
    <form method="post" action="/cgi-bin/{name}.cgi">
      <label>{{{{ "Name" if params.default_language == "en" else "Nama" }}}}
        <input name="nama" maxlength="100"></label>
      <label>{{{{ "Category" if params.default_language == "en" else "Kategori" }}}}
        <select name="kategori">
{{%- for category in params.categories %}}
          <option value="{{{{ loop.index }}}}">{{{{ category | e }}}}</option>
{{%- endfor %}}
        </select></label>
      <button type="submit">
        {{{{ "Send" if params.default_language == "en" else "Kirim" }}}}</button>
    </form>
  </main>
{{% include '{name}/_footer.html.j2' %}}
</body>
</html>
"""
    footer = f"""\
  <footer class="{name}">
    <p>{{{{ region.title | e }}}} &middot; {{{{ region.province | e }}}} &middot;
       <a href="mailto:{{{{ params.support_email | e }}}}">
         {{{{ params.support_email | e }}}}</a></p>
    <p class="origin">{{{{ app.title | e }}}} {{{{ app.version | e }}}} &middot;
       {{{{ "shared by" if params.default_language == "en" else "dibagikan oleh" }}}}
       {{{{ app.owner.name | e }}}}</p>
  </footer>
"""
    files = {
        f"{name}/index.html.j2": page,
        f"{name}/_footer.html.j2": footer,
        f"{name}/runtime.env.j2": (
            f"# {name} runtime settings for {{{{ region.name }}}}: kept out of the image.\n"
            "APP_DB_PASSWORD={{ params.db_password | shquote }}\n"
            "APP_TIMEZONE={{ region.timezone | shquote }}\n"
        ),
    }
    if extra >= 1:
        site = (
            f"# {name} settings read by the CGI scripts (sourced by /bin/sh).\n"
            "APP_SITE_TITLE={{ params.site_title | shquote }}\n"
            "APP_REGION_TITLE={{ region.title | shquote }}\n"
            "APP_REGION_CODE={{ region.code | shquote }}\n"
            "APP_PRIMARY_COLOR={{ (region.branding.primary_color or '#0E4C92') | shquote }}\n"
            "APP_LANGUAGE={{ params.default_language | shquote }}\n"
            "APP_ANONYMOUS={{ ('yes' if params.enable_anonymous else 'no') | shquote }}\n"
        )
        if extra >= 2:
            site += "APP_MAX_UPLOAD_MB={{ params.max_upload_mb | string | shquote }}\n"
        files[f"{name}/site.env.j2"] = site
    return files


# Shared templates (the "shared" case, as the benchmark had it before).
SHARED_TEMPLATES = {
    "common/index.html.j2": """\
<!doctype html>
<html lang="{{ params.default_language }}">
<head><title>{{ params.site_title | e }} | {{ region.title | e }}</title></head>
<body><h1>{{ params.site_title | e }}</h1>
<p>{{ region.title | e }} &middot; {{ region.province | e }} &middot;
<a href="mailto:{{ params.support_email | e }}">{{ params.support_email | e }}</a></p>
<p>{{ app.title | e }} {{ app.version | e }} &middot; {{ app.owner.name | e }}</p></body></html>
""",
    "common/runtime.env.j2": (
        "APP_DB_PASSWORD={{ params.db_password | shquote }}\n"
        "APP_TIMEZONE={{ region.timezone | shquote }}\n"
    ),
    "common/site-5.env.j2": (
        "APP_SITE_TITLE={{ params.site_title | shquote }}\n"
        "APP_ANONYMOUS={{ ('yes' if params.enable_anonymous else 'no') | shquote }}\n"
    ),
    "common/site-6.env.j2": (
        "APP_SITE_TITLE={{ params.site_title | shquote }}\n"
        "APP_ANONYMOUS={{ ('yes' if params.enable_anonymous else 'no') | shquote }}\n"
        "APP_MAX_UPLOAD_MB={{ params.max_upload_mb | string | shquote }}\n"
    ),
}


def region_profile(slot: int, count: int) -> str:
    name, title, kind, code, province, timezone = REGIONS[slot]
    lines = [
        "apiVersion: smartshare/v1",
        "kind: Region",
        f"name: {name}",
        f"title: {title}",
        f"type: {kind}",
        f'code: "{code}"',
        f"province: {province}",
        f"timezone: {timezone}",
        f"domain: {name}.go.id",
        "contact:",
        f"  email: diskominfo@{name}.go.id",
        "apps:",
    ]
    for index in range(1 + slot, count + 1, 10):
        lines += [
            f"  app-{index:04d}:",
            f"    support_email: layanan-{index}@{name}.go.id",
            f"    db_password: env:{name.upper()}_APP_{index:04d}_DB_PASSWORD",
        ]
    return "\n".join(lines) + "\n"


def write_catalogue(
    root: Path, count: int, *, own: bool = True, unused: bool = False, git: bool = False
) -> list[Path]:
    """The catalogue at ``root``; its app manifests (``git``: committed in a repository)."""
    apps = root / "manifests" / "apps"
    apps.mkdir(parents=True)
    templates: dict[str, str] = {}
    files = []
    for index in range(1, count + 1):
        path = apps / f"app-{index:04d}.yaml"
        path.write_text(manifest(index, own=own, unused=unused), encoding="utf-8")
        files.append(path)
        if own:
            templates.update(own_templates(index))
    if not own:
        templates = dict(SHARED_TEMPLATES)
    for relative, text in templates.items():
        path = root / "templates" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if own:
        (root / "manifests" / "regions").mkdir()
        for slot in range(len(REGIONS)):
            path = root / "manifests" / "regions" / f"{REGIONS[slot][0]}.yaml"
            path.write_text(region_profile(slot, count), encoding="utf-8")
    if git:
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org"}
        env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}
        for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "all"]):
            subprocess.run(["git", *argv], cwd=root, check=True, env=env)
    return files


# -- timing --------------------------------------------------------------------------------

ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if k not in ("SMARTSHARE_CATALOG", "SMARTSHARE_CACHE_DIR")
    },
    "NO_COLOR": "1",
    "COLUMNS": "100",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass
class Variant:
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[int], None] = lambda run: None  # before each run, not timed
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return min(self.walls)

    @property
    def cpu(self) -> float:
        return min(self.cpus)


def tool(name: str) -> str:
    candidate = BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def run_once(variant: Variant, number: int) -> tuple[float, float]:
    variant.setup(number)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        variant.argv,
        cwd=variant.cwd,
        env={**ENV, **variant.env},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        print(f"{variant.label}: exit {result.returncode}, expected 0\n{tail}", file=sys.stderr)
        sys.exit(2)
    return wall, cpu


def measure(variants: Sequence[Variant], runs: int) -> None:
    """One warm-up each, then ``runs`` rounds, the order rotated each round."""
    for variant in variants:
        run_once(variant, 0)
    for number in range(1, runs + 1):
        shift = number % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            wall, cpu = run_once(variant, number)
            variant.walls.append(wall)
            variant.cpus.append(cpu)


def show(title: str, variants: Sequence[Variant]) -> None:
    print(f"\n{title}")
    print(f"  {'':<62} {'wall s':>8} {'CPU s':>8}")
    for v in variants:
        print(f"  {v.label:<62} {v.wall:>8.3f} {v.cpu:>8.3f}")


@dataclass
class Goal:
    text: str
    value: float
    limit: float
    at_least: bool  # value >= limit, else value <= limit

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


# -- the cases -----------------------------------------------------------------------------


def wipe(folder: Path) -> Callable[[int], None]:
    def setup(run: int) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    return setup


def edit(path: Path, original: str, tag: str) -> Callable[[int], None]:
    """Each run a new edit of the file (a changed title), so it is never in a cache."""

    def setup(run: int) -> None:
        text = original.replace("\ntitle: ", f"\ntitle: {tag} {run} {time.time_ns()} ", 1)
        path.write_text(text, encoding="utf-8")

    return setup


def both(*setups: Callable[[int], None]) -> Callable[[int], None]:
    def setup(run: int) -> None:
        for one in setups:
            one(run)

    return setup


def restore(path: Path, original: str) -> Callable[[int], None]:
    def setup(run: int) -> None:
        if path.read_text(encoding="utf-8") != original:
            path.write_text(original, encoding="utf-8")

    return setup


def scale_case(
    work: Path, count: int, runs: int, *, with_schema: bool
) -> tuple[list[Variant], dict[str, Variant]]:
    smartshare = tool("smartshare")
    catalogue = work / f"catalogue-{count}"
    started = time.perf_counter()
    files = write_catalogue(catalogue, count, git=True)
    made = time.perf_counter() - started
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
    templates = sum(1 for p in (catalogue / "templates").rglob("*") if p.is_file())
    print(
        f"\n{count} apps ({lines / count:.0f} lines each on average), {templates} template files "
        f"of their own, 4 region profiles; made and committed in {made:.1f} s"
    )
    validate = [smartshare, "validate", "--catalog", str(catalogue)]
    warm = work / f"cache-{count}-warm"
    cold = work / f"cache-{count}-cold"
    edited = catalogue / "manifests" / "apps" / f"app-{count // 2 + 1:04d}.yaml"
    original = edited.read_text(encoding="utf-8")
    # The catalogue must be clean: no error, no warning.
    check = subprocess.run(
        [*validate, "--no-cache", "--format", "json"],
        cwd=work,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0 or json.loads(check.stdout)["problems"]:
        print(f"the generated catalogue is not clean: {check.stdout[:2000]}", file=sys.stderr)
        sys.exit(2)
    variants = {
        "cold": Variant(
            "cold: empty cache", validate, work, {"SMARTSHARE_CACHE_DIR": str(cold)}, wipe(cold)
        ),
        "cold1": Variant(
            "cold, one process (--jobs 1)",
            [*validate, "--jobs", "1"],
            work,
            {"SMARTSHARE_CACHE_DIR": str(cold)},
            wipe(cold),
        ),
        "nocache": Variant("--no-cache", [*validate, "--no-cache"], work),
        "warm": Variant(
            "warm: unchanged catalogue",
            validate,
            work,
            {"SMARTSHARE_CACHE_DIR": str(warm)},
            restore(edited, original),
        ),
        "edited": Variant(
            "warm after editing one manifest (a new edit each run)",
            validate,
            work,
            {"SMARTSHARE_CACHE_DIR": str(warm)},
            edit(edited, original, "edited"),
        ),
        "changed": Variant(
            "--changed-since HEAD, one manifest edited, warm cache",
            [*validate, "--changed-since", "HEAD"],
            work,
            {"SMARTSHARE_CACHE_DIR": str(warm)},
            edit(edited, original, "changed"),
        ),
        "changed-cold": Variant(
            "--changed-since HEAD, one manifest edited, empty cache",
            [*validate, "--changed-since", "HEAD"],
            work,
            {"SMARTSHARE_CACHE_DIR": str(cold)},
            both(wipe(cold), edit(edited, original, "changed")),
        ),
    }
    if with_schema:
        schema = work / "app.json"
        if not schema.exists():
            result = subprocess.run(
                [smartshare, "schema", "app"], cwd=work, env=ENV, capture_output=True, text=True
            )
            schema.write_text(result.stdout, encoding="utf-8")
        variants["schema"] = Variant(
            "check-jsonschema --schemafile app.json (the app manifests)",
            [tool("check-jsonschema"), "--schemafile", str(schema), *map(str, files)],
            work,
            setup=restore(edited, original),
        )
    # The warm cache is filled once; the cold variants run on their own folder.
    order = list(variants.values())
    measure(order, runs)
    restore(edited, original)(0)
    return order, variants


def case_own(work: Path, count: int, runs: int) -> list[Goal]:
    order, v = scale_case(work, count, runs, with_schema=True)
    show(f"own templates, {count} apps (best of {runs})", order)
    schema = v["schema"].wall
    print(
        f"  check-jsonschema / cold: {schema / v['cold'].wall:.2f}x, "
        f"/ warm: {schema / v['warm'].wall:.2f}x, / --no-cache: {schema / v['nocache'].wall:.2f}x; "
        f"one process / parallel (cold): {v['cold1'].wall / v['cold'].wall:.2f}x"
    )
    return [
        Goal(f"{count} apps: check-jsonschema / cold >= 2.5x", schema / v["cold"].wall, 2.5, True),
        Goal(f"{count} apps: check-jsonschema / warm >= 8x", schema / v["warm"].wall, 8.0, True),
        Goal(
            f"{count} apps: --changed-since, one manifest <= 0.5 s", v["changed"].wall, 0.5, False
        ),
    ]


def case_large(work: Path, count: int, runs: int) -> list[Goal]:
    order, v = scale_case(work, count, runs, with_schema=False)
    show(f"own templates, {count} apps (best of {runs}; {os.cpu_count()} CPUs)", order)
    return [
        Goal(f"{count} apps: warm <= 3 s", v["warm"].wall, 3.0, False),
        Goal(f"{count} apps: cold <= 20 s", v["cold"].wall, 20.0, False),
    ]


def case_bundled(work: Path, runs: int) -> list[Goal]:
    smartshare = tool("smartshare")
    cache = work / "cache-bundled"
    validate = [smartshare, "validate", "--catalog", str(REPO)]
    variants = [
        Variant("--no-cache", [*validate, "--no-cache"], work),
        Variant(
            "cold: empty cache", validate, work, {"SMARTSHARE_CACHE_DIR": str(cache)}, wipe(cache)
        ),
        Variant("warm", validate, work, {"SMARTSHARE_CACHE_DIR": str(work / "cache-bundled-warm")}),
    ]
    measure(variants, runs)
    show(f"the bundled catalogue (16 apps, 4 profiles; best of {runs})", variants)
    return []


def case_output(work: Path, count: int, runs: int) -> list[Goal]:
    """Printing problems: a warm run with one warning per app, in each format, against none."""
    smartshare = tool("smartshare")
    catalogue = work / f"catalogue-{count}-warnings"
    write_catalogue(catalogue, count, unused=True)
    clean = work / f"catalogue-{count}"
    if not clean.exists():
        write_catalogue(clean, count)
    cache = {"SMARTSHARE_CACHE_DIR": str(work / "cache-output")}
    variants = [
        Variant("no problem (text)", [smartshare, "validate", "--catalog", str(clean)], work, cache)
    ]
    for output in ("text", "json", "github"):
        argv = [smartshare, "validate", "--catalog", str(catalogue), "--format", output]
        variants.append(Variant(f"{count} warnings, --format {output}", argv, work, cache))
    measure(variants, runs)
    show(f"printing problems, warm cache ({count} apps, best of {runs})", variants)
    base = variants[0].wall
    for variant in variants[1:]:
        print(f"  {variant.label}: {variant.wall - base:+.3f} s against no problem")
    return []


BARE_TYPER = """\
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"
    typer.echo(f"hello {name}")


app()
"""


def case_help(work: Path, runs: int) -> list[Goal]:
    bare = work / "bare_typer.py"
    bare.write_text(BARE_TYPER, encoding="utf-8")
    variants = [
        Variant("smartshare --help", [tool("smartshare"), "--help"], work),
        Variant("bare typer app (one command) --help", [sys.executable, str(bare), "--help"], work),
    ]
    measure(variants, runs)
    show(f"start-up (best of {runs})", variants)
    ratio = variants[0].wall / variants[1].wall
    return [Goal("smartshare --help / bare typer --help <= 1.2x", ratio, 1.2, False)]


def case_shared(work: Path, count: int, runs: int) -> list[Goal]:
    """The benchmark as it was: every app uses the same 4 templates."""
    catalogue = work / f"catalogue-{count}-shared"
    files = write_catalogue(catalogue, count, own=False)
    schema = work / "app.json"
    subprocess.run(
        f"{tool('smartshare')} schema app > {schema}", shell=True, check=True, env=ENV, cwd=work
    )
    validate = [tool("smartshare"), "validate", "--catalog", str(catalogue)]
    variants = [
        Variant("--no-cache", [*validate, "--no-cache"], work),
        Variant(
            "check-jsonschema",
            [tool("check-jsonschema"), "--schemafile", str(schema), *map(str, files)],
            work,
        ),
    ]
    measure(variants, runs)
    show(f"shared templates, {count} apps (best of {runs})", variants)
    ratio = variants[1].wall / variants[0].wall
    return [
        Goal(
            f"{count} apps, shared templates: check-jsonschema / --no-cache >= 6x", ratio, 6.0, True
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="apps of the 'own' case")
    parser.add_argument("--large-count", type=int, default=10000, help="apps of the 'large' case")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (best kept)")
    parser.add_argument(
        "--cases", default=",".join(DEFAULT_CASES), help=f"comma-separated, of: {', '.join(CASES)}"
    )
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    if args.count < 2 or args.large_count < 2 or args.runs < 1 or not set(cases) <= set(CASES):
        parser.error("--count and --large-count must be 2 or more, --runs 1 or more, cases known")
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; best of {args.runs} after 1 warm-up"
    )
    # Bytecode, as an installed package has it (pip compiles at install): with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would be compiled on
    # every run, and every whole-process time below would include that.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "smartshare")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    goals: list[Goal] = []
    with tempfile.TemporaryDirectory(prefix="smartshare-bench-") as tmp:
        work = Path(tmp)
        for case in cases:
            if case == "own":
                goals += case_own(work, args.count, args.runs)
            elif case == "large":
                goals += case_large(work, args.large_count, args.runs)
            elif case == "bundled":
                goals += case_bundled(work, args.runs)
            elif case == "output":
                goals += case_output(work, args.count, args.runs)
            elif case == "help":
                goals += case_help(work, args.runs)
            else:
                goals += case_shared(work, args.count, args.runs)
    print("\ngoals")
    for goal in goals:
        print(f"  {goal.text:<58} {goal.value:8.2f}  {'met' if goal.met else 'MISSED'}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 0 if all(goal.met for goal in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
