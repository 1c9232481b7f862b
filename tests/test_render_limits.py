"""Resource limits of template rendering: time, output size and memory per
template, enforced in a render worker process, and templates that are symlink
loops.  Hostile templates on purpose."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from smartshare.cli import app as cli_app
from smartshare.errors import ExitCode, ExternalError, InvalidInputError, TemplateRenderError
from smartshare.rendering.limits import RenderLimits
from smartshare.rendering.pool import RenderPool
from smartshare.rendering.sandbox import render_string, substitute_names
from smartshare.settings import load_settings

from catalogs import SECRET_VALUE, CatalogFixture, isolate, make_catalog

TIGHT = RenderLimits(seconds=2, output_bytes=1024 * 1024, memory_bytes=256 * 1024 * 1024)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


def templates(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "templates"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def render_one(pool: RenderPool, root: Path, name: str) -> bytes:
    [content] = pool.render(
        templates_dir=root,
        templates=[name],
        context={"params": {"n": 3}},
        secret_names=(),
        runtime=False,
    )
    return content


def adopt_cli(catalog: CatalogFixture, workspace: Path, *args: str) -> Result:
    command = ["adopt", *args, "--workspace", str(workspace)]
    command += ["--region", str(catalog.region_file), "--catalog", str(catalog.root)]
    return CliRunner().invoke(cli_app, command)


HOSTILE = {
    "output": "{{ 'x' * 10**8 }}",
    "time": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "memory-concatenation": (
        "{% set ns = namespace(s='x') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "memory-center": "{{ 'x' | center(10**9) }}",
    "memory-format": "{{ '%*s' | format(10**9, 'x') }}",
    "recursion": "{% macro deeper(n) %}{{ deeper(n + 1) }}{% endmacro %}{{ deeper(0) }}",
}
EXPECTED = {
    "output": "larger than 1 MiB",
    "time": "longer than 2 s",
    "memory-concatenation": "more than 256 MiB of memory",
    "memory-center": "more than 256 MiB of memory",
    "memory-format": "more than 256 MiB of memory",
    "recursion": "recursion too deep",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_template_over_a_limit_fails_naming_the_template_and_the_limit(
    tmp_path: Path, case: str
) -> None:
    root = templates(tmp_path, {"hostile.j2": "start\n" + HOSTILE[case] + "\n", "ok.j2": "ok"})
    with RenderPool(TIGHT) as pool:
        with pytest.raises(TemplateRenderError) as caught:
            render_one(pool, root, "hostile.j2")
        message = caught.value.message
        assert message.startswith("template hostile.j2"), message
        assert EXPECTED[case] in message
        # The pool carries on, with a fresh worker where the old one was stopped.
        assert render_one(pool, root, "ok.j2") == b"ok"


def test_output_at_the_limit_is_fine_and_renders_are_identical(tmp_path: Path) -> None:
    root = templates(
        tmp_path, {"big.j2": "{{ 'y' * (1024 * 1024) }}", "n.j2": "{{ params.n * 2 }}\n"}
    )
    with RenderPool(TIGHT) as pool:
        assert render_one(pool, root, "big.j2") == b"y" * (1024 * 1024)
        assert render_one(pool, root, "n.j2") == b"6\n"


def test_concurrent_renders_each_get_their_worker(tmp_path: Path) -> None:
    root = templates(tmp_path, {"n.j2": "{% for i in range(20000) %}{% endfor %}{{ params.n }}"})
    results: list[bytes] = []
    together = threading.Barrier(3)
    with RenderPool(RenderLimits()) as pool:

        def work() -> None:
            together.wait()
            for _ in range(3):
                results.append(render_one(pool, root, "n.j2"))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # The three first renders asked at once, before any worker had started: one
        # worker each, kept (idle) for the pool's next renders.
        assert len(_worker_pids()) == 3
    assert results == [b"3"] * 9
    assert _worker_pids() == []


def test_closing_the_pool_stops_a_render_in_progress(tmp_path: Path) -> None:
    """What Ctrl-C does during a render: the run is not kept waiting for the limit."""
    root = templates(tmp_path, {"slow.j2": HOSTILE["time"]})
    caught: list[TemplateRenderError] = []
    pool = RenderPool(RenderLimits(seconds=60))

    def work() -> None:
        try:
            render_one(pool, root, "slow.j2")
        except TemplateRenderError as exc:
            caught.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    while not _worker_pids():
        time.sleep(0.05)
    time.sleep(0.5)  # the worker has started rendering, or is about to
    pool.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    [error] = caught
    # Stopped by the close, not by the limit (60 s, which the join would not wait for).
    assert error.message == "template slow.j2: rendering was stopped"
    assert _worker_pids() == []


def test_a_worker_that_cannot_start_is_an_external_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = templates(tmp_path, {"ok.j2": "ok"})
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with (
        RenderPool(RenderLimits()) as pool,
        pytest.raises(ExternalError, match=r"^the render worker did not start") as caught,
    ):
        render_one(pool, root, "ok.j2")
    # Not the template's fault (exit 1) but the machine's: exit 3.
    assert caught.value.exit_code == ExitCode.EXTERNAL_FAILURE


def _worker_pids() -> list[int]:
    """The render workers this process started (children running the worker module)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"smartshare.rendering.worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_secrets_reach_the_worker_only_through_its_pipe(tmp_path: Path) -> None:
    root = templates(tmp_path, {"run.j2": "T={{ params.token }}"})
    with RenderPool(RenderLimits()) as pool:
        assert _worker_pids() == []  # nothing started before something is rendered
        [content] = pool.render(
            templates_dir=root,
            templates=["run.j2"],
            context={"params": {"token": SECRET_VALUE}},
            secret_names={"token"},
            runtime=True,
        )
        assert content == f"T={SECRET_VALUE}".encode()
        [pid] = _worker_pids()
        for name in ("cmdline", "environ"):
            assert SECRET_VALUE.encode() not in (Path("/proc") / str(pid) / name).read_bytes()
    assert _worker_pids() == []


# What Jinja's compiler fails on with Python's errors (it computes literals), and
# the analysis leaves to the render: a filter has to run first.
UNCOMPILABLE = {
    "{{ 'a' ~ ('b' | upper).c }}": "Jinja cannot compile it: 'str object' has no attribute 'c'",
    "{{ 'a' ~ ('b' | upper).__class__ }}": "Jinja cannot compile it: access to attribute",
}


@pytest.mark.parametrize("runtime", [False, True])
@pytest.mark.parametrize("text", sorted(UNCOMPILABLE))
def test_a_template_jinja_cannot_compile_is_a_render_error(
    tmp_path: Path, text: str, runtime: bool
) -> None:
    root = templates(tmp_path, {"bad.j2": "start\n" + text + "\n", "ok.j2": "ok"})
    with RenderPool(RenderLimits()) as pool:
        with pytest.raises(TemplateRenderError) as caught:
            pool.render(
                templates_dir=root,
                templates=["bad.j2"],
                context={"params": {}},
                secret_names=(),
                runtime=runtime,
            )
        assert caught.value.message.startswith("template bad.j2: " + UNCOMPILABLE[text])
        assert "stopped unexpectedly" not in caught.value.message  # the worker lives on
        assert render_one(pool, root, "ok.j2") == b"ok"
        with pytest.raises(TemplateRenderError) as argument:
            pool.render_strings(
                templates_dir=root, texts={"ARG": text}, context={}, secret_names=()
            )
        assert argument.value.message.startswith("ARG: " + UNCOMPILABLE[text])


def test_a_run_with_nothing_to_render_starts_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    workspace = tmp_path / "ws"
    assert adopt_cli(catalog, workspace, "alpha", "--no-build").exit_code == 0
    started: list[object] = []
    monkeypatch.setattr("smartshare.rendering.pool._Worker", lambda *a: started.append(a))
    again = adopt_cli(catalog, workspace, "alpha", "--no-build")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output
    assert started == []


@pytest.mark.parametrize("case", ["output", "time", "memory-concatenation", "recursion"])
def test_adopt_stops_a_hostile_template_with_exit_1(
    tmp_path: Path, _isolated: Path, case: str
) -> None:
    _isolated.write_text("render_limits:\n  seconds: 2\n  output_mib: 1\n  memory_mib: 256\n")
    catalog = make_catalog(tmp_path, {"alpha": ()})
    catalog.write("templates/page/index.html.j2", "<h1>x</h1>\n" + HOSTILE[case] + "\n")
    workspace = tmp_path / "ws"
    result = adopt_cli(catalog, workspace, "alpha", "--no-build", "--format", "json")
    assert result.exit_code == 1, result.output
    [report] = json.loads(result.stdout)["apps"]
    assert report["result"] == "failed"
    assert report["message"].startswith("template page/index.html.j2")
    assert EXPECTED[case] in report["message"]
    assert not (workspace / "apps/alpha").exists()


# -- runtime strings (environment values, outputs) -------------------------------

RUNTIME_CONTEXT = {
    "region": {"name": "testland", "title": "Kabupaten Testland"},
    "params": {
        "name": "sikda",
        "port": 5432,
        "ratio": 0.5,
        "on": True,
        "none": None,
        "map": {},
        "items": "a key the dict's method hides",
    },
    "services": {"web": {"host": "alpha-web", "port": 8080}},
    "requires": {"alpha": {"internal_url": "http://alpha-web:8080"}},
}
# text -> whether it renders without a worker (plain text, or names printed)
RUNTIME_STRINGS = {
    "plain $text {": True,
    "http://{{ services.web.host }}:{{services.web.port}}/": True,
    "{{\n  params.name\t}} of {{ region.title }}\n": True,
    "{{ params.port }} {{ params.ratio }} {{ params.on }}": True,
    "a }} b {{ requires.alpha.internal_url }}": True,
    "{{ params.none }}": False,  # Jinja prints "None": left to it
    "{{ params.map }}": False,
    "{{ params.items }}": False,  # the dict's method, in Jinja
    "{{ params.__class__ }}": False,
    "{{ params.name | upper }}": False,
    "{{- params.name }}": False,
    "{{{ params.name }}": False,  # Jinja reads `{{` from the first brace: a syntax error
    "a\r\n{{ params.name }}": False,  # Jinja writes the line break as \n
    "{% if params.on %}{{ params.name }}{% endif %}": False,
    "{{ params.name }}{# why #}": False,
    "{{ params.missing }}": False,
    "{{ range }}": False,
}


def render_in_process(text: str) -> str:
    """What the runtime string renders as, or the start of its error (Jinja in this process)."""
    try:
        return _unaddressed(render_string(text, RUNTIME_CONTEXT, what="X"))
    except TemplateRenderError as exc:
        return "error: " + exc.message.split(":")[1]


def _unaddressed(text: str) -> str:
    """``text`` without the addresses Python prints for objects (another process has others)."""
    return re.sub(r" at 0x[0-9a-f]+", "", text)


@pytest.mark.parametrize("text", RUNTIME_STRINGS)
def test_runtime_strings_render_the_same_with_or_without_a_worker(text: str) -> None:
    simple = substitute_names(text, RUNTIME_CONTEXT, max_bytes=TIGHT.output_bytes)
    assert (simple is not None) is RUNTIME_STRINGS[text]
    if simple is not None:
        assert simple == render_in_process(text)
    with RenderPool(TIGHT) as pool:
        try:
            rendered = _unaddressed(
                pool.render_runtime_strings({"X": text}, RUNTIME_CONTEXT, what=str)["X"]
            )
        except TemplateRenderError as exc:
            rendered = "error: " + exc.message.split(":")[1]
        assert rendered == render_in_process(text)
        assert len(_worker_pids()) == (0 if simple is not None else 1)


def test_names_whose_output_is_over_the_limit_go_to_a_worker() -> None:
    context = {"params": {"big": "x" * 1000}}
    text = "{{ params.big }}" * 2000  # 2 MB from a 32 KB string
    assert substitute_names(text, context, max_bytes=TIGHT.output_bytes) is None
    with RenderPool(TIGHT) as pool, pytest.raises(TemplateRenderError) as caught:
        pool.render_runtime_strings({"BIG": text}, context, what=lambda key: f"env.{key}")
    assert caught.value.message == "env.BIG: output larger than 1 MiB (the limit per string)"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_runtime_string_over_a_limit_fails_naming_the_string_and_the_limit(case: str) -> None:
    what = "runtime.services.web.environment.{} of 'alpha'".format
    texts = {"OK": "{{ services.web.host }}", "HOSTILE": HOSTILE[case]}
    with RenderPool(TIGHT) as pool:
        with pytest.raises(TemplateRenderError) as caught:
            pool.render_runtime_strings(texts, RUNTIME_CONTEXT, what=what)
        message = caught.value.message
        assert message.startswith(what("HOSTILE") + ": "), message
        assert EXPECTED[case] in message
        # The pool carries on, with a fresh worker where the old one was stopped.
        again = pool.render_runtime_strings(
            {"A": "{{ params.name | upper }}"}, RUNTIME_CONTEXT, what=what
        )
        assert again == {"A": "SIKDA"}


def test_runtime_strings_that_only_print_names_start_no_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a worker could not start
    texts = {"URL": "http://{{ services.web.host }}:8080", "NAME": "{{ params.name }}"}
    with RenderPool(RenderLimits()) as pool:
        rendered = pool.render_runtime_strings(texts, RUNTIME_CONTEXT, what=str)
        assert rendered == {"URL": "http://alpha-web:8080", "NAME": "sikda"}
        with pytest.raises(ExternalError, match="the render worker did not start"):
            pool.render_runtime_strings(
                {"UP": "{{ params.name | upper }}"}, RUNTIME_CONTEXT, what=str
            )


# -- settings -------------------------------------------------------------------


def test_render_limits_have_documented_defaults_and_can_be_set(_isolated: Path) -> None:
    assert load_settings().render_limits == RenderLimits(
        seconds=10, output_bytes=16 * 1024 * 1024, memory_bytes=512 * 1024 * 1024
    )
    _isolated.write_text("render_limits:\n  seconds: 30\n  memory_mib: 1024\n")
    assert load_settings().render_limits == RenderLimits(
        seconds=30, output_bytes=16 * 1024 * 1024, memory_bytes=1024 * 1024 * 1024
    )


def test_the_readme_shows_the_defaults(_isolated: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    settings = readme.split("\n## Settings\n", 1)[1]
    block = settings.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "render_limits:" in block
    _isolated.write_text(block)
    assert load_settings().render_limits == RenderLimits()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("render_limits:\n  seconds: 0\n", "render_limits.seconds"),
        ("render_limits:\n  output_mib: lots\n", "render_limits.output_mib"),
        ("render_limits:\n  memory_mib: 16\n", "render_limits.memory_mib"),
        ("render_limits:\n  cpu: 3\n", "render_limits.cpu"),
        ("render_limits: 5\n", "render_limits"),
    ],
)
def test_bad_render_limits_are_refused(_isolated: Path, text: str, field: str) -> None:
    _isolated.write_text(text)
    with pytest.raises(InvalidInputError) as caught:
        load_settings()
    assert [p.field for p in caught.value.problems] == [field]


# -- templates that are symlink loops --------------------------------------------


def _loop_catalog(tmp_path: Path, how: str) -> CatalogFixture:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    page = catalog.root / "templates/page"
    if how == "self":
        (page / "index.html.j2").unlink()
        (page / "index.html.j2").symlink_to("index.html.j2")
    elif how == "into-a-loop":
        (page / "loop").symlink_to("loop")
        (page / "index.html.j2").unlink()
        (page / "index.html.j2").symlink_to("loop/index.html.j2")
    else:  # an included template is the loop
        (page / "a.j2").symlink_to("b.j2")
        (page / "b.j2").symlink_to("a.j2")
        catalog.write("templates/page/index.html.j2", "{% include 'page/a.j2' %}\n")
    return catalog


@pytest.mark.parametrize("how", ["self", "into-a-loop", "included"])
def test_a_template_that_is_a_symlink_loop_is_a_clear_error(tmp_path: Path, how: str) -> None:
    catalog = _loop_catalog(tmp_path, how)
    name = "page/a.j2" if how == "included" else "page/index.html.j2"
    validated = CliRunner().invoke(
        cli_app, ["validate", "--catalog", str(catalog.root), str(catalog.root / "manifests")]
    )
    assert validated.exit_code == 1, validated.output
    assert name in validated.output
    assert "symbolic link" in validated.output
    assert "Traceback" not in validated.output
    adopted = adopt_cli(catalog, tmp_path / "ws", "alpha", "--no-build")
    assert adopted.exit_code == 1, adopted.output
    assert name in adopted.output
    assert "symbolic link" in adopted.output
    assert "Traceback" not in adopted.output
