"""No traceback for any input file: each loader gets a battery of hostile bytes.

The manifest, the region profile, the settings file (YAML), a template and the
lock file (JSON) are each replaced by hostile content and the command line is
run in-process (``validate``, ``show``, ``adopt --no-build``, ``status``).
Every run must end with a clean error: exit 1 (input) or 3 (workspace, lock),
the file named, no traceback, and no flood of output (a hostile value is never
echoed whole).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from smartshare.catalog.rules import MAX_FILE_BYTES
from smartshare.cli import app as cli_app
from smartshare.state.lockfile import LOCK_VERSION, MAX_LOCK_BYTES

from catalogs import SECRET_VALUE, CatalogFixture, make_catalog

MiB = 1024 * 1024
# Far more than any message needs, far less than an echoed hostile value.
MAX_OUTPUT = 20_000

Hostile = Callable[[bytes], bytes]  # the valid file's bytes -> the hostile ones


def _deep_flow(depth: int, *, anchor: bool) -> Hostile:
    nested = b"[" * depth + b"]" * depth
    if anchor:
        return lambda valid: b"a: &deep " + nested + b"\nb: *deep\nc: [*deep, *deep]\n"
    return lambda valid: b"a: " + nested + b"\n"


def _deep_block(depth: int) -> Hostile:
    return lambda valid: b"a:\n  &deep " + b"- " * depth + b"x\nb: *deep\n"


ALIAS_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    b"%s: &%s [%s]\n" % (name, name, b", ".join([b"*" + prev] * 9))
    for prev, name in ((b"a", b"b"), (b"b", b"c"), (b"c", b"d"), (b"d", b"e"), (b"e", b"f"))
)

YAML_BATTERY: dict[str, Hostile] = {
    "invalid-utf8": lambda valid: valid[:20] + b"\xff\xfe" + valid[20:],
    "utf8-surrogate": lambda valid: valid + b"x: \xed\xa0\x80\n",
    "utf16": lambda valid: valid.decode("utf-8").encode("utf-16"),
    "nul": lambda valid: valid + b"\x00",
    "bom-and-garbage": lambda valid: b"\xef\xbb\xbf\x00\x01\x02\x03garbage",
    "escape-sequence": lambda valid: valid + b"x: \x1b[2J\x1b]0;owned\x07\n",
    "binary": lambda valid: bytes(range(256)) * 4,
    "deep-flow-60": _deep_flow(60, anchor=False),
    "deep-flow-999-anchor": _deep_flow(999, anchor=True),
    "deep-flow-10k": _deep_flow(10_000, anchor=False),
    "deep-flow-10k-anchor": _deep_flow(10_000, anchor=True),
    "deep-flow-100k": _deep_flow(100_000, anchor=False),
    "deep-flow-100k-anchor": _deep_flow(100_000, anchor=True),
    "deep-mapping-10k": lambda valid: b"a: " + b"{a: " * 10_000 + b"1" + b"}" * 10_000 + b"\n",
    "deep-block-999-anchor": _deep_block(999),
    "deep-block-10k": _deep_block(10_000),
    "alias-bomb": lambda valid: ALIAS_BOMB,
    "alias-recursive": lambda valid: b"a: &a [1, *a]\n",
    "alias-undefined": lambda valid: valid + b"x: *nowhere\n",
    "multi-document": lambda valid: valid + b"---\nextra: 1\n",
    "multi-document-same": lambda valid: valid + b"---\n" + valid,
    "multi-document-empty": lambda valid: valid + b"---\n",
    "huge-key-line": lambda valid: b"k" * (MAX_FILE_BYTES - 100) + b": 1\n",
    "huge-value-line": lambda valid: b"a: " + b"v" * (MAX_FILE_BYTES - 100) + b"\n",
    "one-mib-plus-one": lambda valid: valid + b"#" * (MAX_FILE_BYTES + 1 - len(valid)),
    "empty": lambda valid: b"",
    "only-comment": lambda valid: b"# nothing here\n",
    "scalar-root": lambda valid: b"just a string\n",
    "list-root": lambda valid: b"- a\n- b\n",
    "null-root": lambda valid: b"~\n",
    "tabs": lambda valid: valid + b"x:\n\tb: 1\n",
    "python-object": lambda valid: valid + b"x: !!python/object/apply:os.system ['id']\n",
    "python-name": lambda valid: valid + b"x: !!python/name:os.system\n",
    "unknown-tag": lambda valid: valid + b"x: !custom thing\n",
    "binary-tag": lambda valid: valid + b"x: !!binary '!!!'\n",
    "set-tag": lambda valid: valid + b"x: !!set {a, b}\n",
    "huge-integer": lambda valid: valid + b"x: 1" + b"0" * 5000 + b"\n",
    "bad-date": lambda valid: valid + b"x: 2001-13-45\n",
    "merge-scalar": lambda valid: valid + b"x:\n  <<: 1\n",
    "complex-key": lambda valid: valid + b"? [a, b]\n: 1\n",
    "duplicate-key": lambda valid: valid + valid.splitlines(keepends=True)[0],
    "keys-by-resolution": lambda valid: valid + b"1: a\n0x1: b\n",
    "many-keys": lambda valid: b"".join(b"k%d: 1\n" % i for i in range(120_000))[:MAX_FILE_BYTES],
}

JSON_BATTERY: dict[str, Hostile] = {
    "invalid-utf8": lambda valid: valid[:10] + b"\xff\xfe" + valid[10:],
    "nul": lambda valid: valid + b"\x00",
    "bom-and-garbage": lambda valid: b"\xef\xbb\xbf\x00\x01garbage",
    "binary": lambda valid: bytes(range(256)) * 4,
    "deep-array-10k": lambda valid: b"[" * 10_000 + b"]" * 10_000,
    "deep-array-100k": lambda valid: b"[" * 100_000 + b"]" * 100_000,
    "deep-object-100k": lambda valid: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deep-in-values": lambda valid: valid.replace(
        b'"values": {', b'"values": {"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b", ", 1
    ),
    "huge-integer": lambda valid: b'{"lock_version": 1' + b"0" * 5000 + b"}",
    "nan": lambda valid: b'{"lock_version": NaN}',
    "array-root": lambda valid: b"[]",
    "string-root": lambda valid: b'"lock"',
    "null-root": lambda valid: b"null",
    "empty": lambda valid: b"",
    "two-documents": lambda valid: valid + valid,
    "truncated": lambda valid: valid[: len(valid) // 2],
    "version-as-string": lambda valid: valid.replace(
        b'"lock_version": %d' % LOCK_VERSION, b'"lock_version": "%d"' % LOCK_VERSION, 1
    ),
    "unsafe-dest": lambda valid: valid.replace(b'"dest": "', b'"dest": "../../', 1),
    "unsafe-app-name": lambda valid: valid.replace(b'"alpha": {', b'"../../alpha": {', 1),
    "lone-surrogate": lambda valid: valid.replace(b'"version": "', b'"version": "\\ud800', 1),
    "over-size-limit": lambda valid: valid + b" " * (MAX_LOCK_BYTES + 1 - len(valid)),
}

TEMPLATE_BATTERY: dict[str, Hostile] = {
    "invalid-utf8": lambda valid: valid + b"\xff\xfe",
    "nul": lambda valid: valid + b"\x00",
    "binary": lambda valid: bytes(range(256)) * 4,
    "bom-and-garbage": lambda valid: b"\xef\xbb\xbf\x00\x01garbage",
    "deep-parentheses-10k": lambda valid: b"{{ " + b"(" * 10_000 + b"1" + b")" * 10_000 + b" }}",
    "deep-parentheses-100k": lambda valid: b"{{ " + b"(" * 100_000 + b"1" + b")" * 100_000 + b" }}",
    "deep-lists-10k": lambda valid: b"{{ " + b"[" * 10_000 + b"]" * 10_000 + b" }}",
    "deep-if-5k": lambda valid: b"{% if 1 %}" * 5_000 + b"x" + b"{% endif %}" * 5_000,
    "deep-for-5k": lambda valid: b"{% for i in [1] %}" * 5_000 + b"{% endfor %}" * 5_000,
    "long-chain-100k": lambda valid: b"{{ 1" + b" + 1" * 100_000 + b" }}",
    "unclosed-huge-line": lambda valid: b"{{ " + b"x" * (MAX_FILE_BYTES - 100),
    "one-mib-plus-one": lambda valid: valid + b"#" * (MAX_FILE_BYTES + 1 - len(valid)),
    # Jinja computes literals as it reads and compiles (Python's errors, not its own)
    "number-5000-digits": lambda valid: valid + b"{{ 1" + b"0" * 5000 + b" }}\n",
    "literal-attribute-joined": lambda valid: valid + b"{{ 'a' ~ 'b'.c }}\n",
    "literal-attribute-tested": lambda valid: valid + b"{{ 'x' if 'b'.c else 'y' }}\n",
    "literal-unsafe-attribute": lambda valid: valid + b"{{ 'a' ~ ''.__class__ }}\n",
    "literal-unhashable-key": lambda valid: valid + b"{{ 'a' ~ {[1]: 2} }}\n",
    "literal-attribute-deep": lambda valid: (
        valid + b"{% if 1 %}" * 20 + b"{{ 'a' ~ 'b'.c }}" + b"{% endif %}" * 20
    ),
}


@dataclass
class Scene:
    catalog: CatalogFixture
    manifest: Path
    region: Path  # a profile outside the catalogue, given with --region
    template: Path
    settings: Path
    workspace: Path  # adopted once: its lock is valid until a test replaces it

    def adopt(self, *extra: str) -> list[str]:
        return [
            "adopt",
            "alpha",
            "--no-build",
            "--region",
            str(self.region),
            "--workspace",
            str(self.workspace),
            "--catalog",
            str(self.catalog.root),
            *extra,
        ]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    base = tmp_path_factory.mktemp("hostile")
    catalog = make_catalog(base, {"alpha": ()})
    region = base / "profiles" / catalog.region_file.name
    region.parent.mkdir()
    catalog.region_file.rename(region)
    settings = base / "config.yaml"
    settings.write_text(f"cache_dir: {base / 'cache'}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMARTSHARE_CONFIG", str(settings))
        patch.delenv("SMARTSHARE_CACHE_DIR", raising=False)
        patch.delenv("SMARTSHARE_CATALOG", raising=False)
        patch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
        found = Scene(
            catalog=catalog,
            manifest=catalog.root / "manifests/apps/alpha.yaml",
            region=region,
            template=catalog.root / "templates/page/index.html.j2",
            settings=settings,
            workspace=base / "ws",
        )
        first = CliRunner().invoke(cli_app, found.adopt())
        assert first.exit_code == 0, first.output
        yield found


@pytest.fixture
def replace(scene: Scene) -> Iterator[Callable[[Path, Hostile], None]]:
    """Replace a file with hostile content; every file is put back after the test."""
    saved: dict[Path, bytes] = {}

    def put(path: Path, hostile: Hostile) -> None:
        valid = saved.setdefault(path, path.read_bytes())
        path.write_bytes(hostile(valid))

    yield put
    for path, data in saved.items():
        path.write_bytes(data)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args))


def assert_clean_failure(result: Result, exit_code: int, named: str, *, where: str) -> None:
    """Exit ``exit_code``, ``named`` in ``where`` (stdout or stderr), no traceback."""
    everything = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in everything
    assert result.exit_code == exit_code, everything[:3000]
    shown = result.stdout if where == "stdout" else result.stderr
    assert named in shown, everything[:3000]
    assert len(everything) < MAX_OUTPUT, everything[:3000]


# -- YAML: manifest, region profile, settings ------------------------------------


@pytest.mark.parametrize("case", YAML_BATTERY)
def test_hostile_manifest(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    replace(scene.manifest, YAML_BATTERY[case])
    named = str(scene.manifest)
    validate = run("validate", "--catalog", str(scene.catalog.root))
    assert_clean_failure(validate, 1, named, where="stdout")
    assert_clean_failure(
        run("show", "alpha", "--catalog", str(scene.catalog.root)), 1, named, where="stderr"
    )
    assert_clean_failure(run(*scene.adopt()), 1, named, where="stderr")


@pytest.mark.parametrize("case", YAML_BATTERY)
def test_hostile_region_profile(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    replace(scene.region, YAML_BATTERY[case])
    named = str(scene.region)
    validate = run("validate", "--catalog", str(scene.catalog.root), named)
    assert_clean_failure(validate, 1, named, where="stdout")
    assert_clean_failure(run(*scene.adopt()), 1, named, where="stderr")


@pytest.mark.parametrize("case", YAML_BATTERY)
def test_hostile_settings(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    replace(scene.settings, YAML_BATTERY[case])
    assert_clean_failure(run(*scene.adopt()), 1, str(scene.settings), where="stderr")


def test_a_fifo_where_a_yaml_file_is_expected_fails_at_once(scene: Scene, tmp_path: Path) -> None:
    # Opened for reading, a FIFO would wait for a writer forever.
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    validate = run("validate", str(fifo))
    assert_clean_failure(validate, 1, "not a regular file", where="stdout")
    saved = scene.settings.read_bytes()
    scene.settings.unlink()
    os.mkfifo(scene.settings)
    try:
        adopted = run(*scene.adopt())
    finally:
        scene.settings.unlink()
        scene.settings.write_bytes(saved)
    assert_clean_failure(adopted, 1, str(scene.settings), where="stderr")
    assert "not a regular file" in adopted.stderr


SETTINGS_VALUES = {
    "cache-dir-nul": b'cache_dir: "/tmp/a\\0b"\n',
    "cache-dir-empty": b'cache_dir: ""\n',
    "cache-dir-list": b"cache_dir: [a]\n",
    "rewrite-empty-prefix": b'source_rewrites:\n  "": "https://mirror.example/"\n',
    "rewrite-nul-prefix": b'source_rewrites:\n  "https://a.example/\\0": "https://b.example/"\n',
    "rewrite-ext-target": b"source_rewrites:\n  https://a.example/: 'ext::sh -c id'\n",
    "rewrites-not-a-mapping": b"source_rewrites: [1, 2]\n",
}


@pytest.mark.parametrize("case", SETTINGS_VALUES)
def test_hostile_settings_values(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    replace(scene.settings, lambda valid: SETTINGS_VALUES[case])
    assert_clean_failure(run(*scene.adopt()), 1, str(scene.settings), where="stderr")


# -- templates ----------------------------------------------------------------------


@pytest.mark.parametrize("case", TEMPLATE_BATTERY)
def test_hostile_template(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    replace(scene.template, TEMPLATE_BATTERY[case])
    named = "page/index.html.j2"
    validate = run("validate", "--catalog", str(scene.catalog.root))
    assert_clean_failure(validate, 1, named, where="stdout")
    assert_clean_failure(run(*scene.adopt("--force")), 1, named, where="stderr")


BUILD_ARGUMENTS = {
    "number-5000-digits": "{{ 1" + "0" * 5000 + " }}",
    "literal-attribute-joined": "{{ 'a' ~ 'b'.c }}",
    "literal-attribute-deep": "{% if 1 %}" * 20 + "{{ 'a' ~ 'b'.c }}" + "{% endif %}" * 20,
}


@pytest.mark.parametrize("case", BUILD_ARGUMENTS)
def test_hostile_build_argument(
    case: str, scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    text = json.dumps(BUILD_ARGUMENTS[case]).encode()
    replace(
        scene.manifest,
        lambda valid: valid.replace(
            b"    dockerfile: Dockerfile\n",
            b"    dockerfile: Dockerfile\n    args:\n      X: " + text + b"\n",
        ),
    )
    named = "images.0.args.X"
    validate = run("validate", "--catalog", str(scene.catalog.root))
    assert_clean_failure(validate, 1, named, where="stdout")
    assert_clean_failure(run(*scene.adopt("--force")), 1, named, where="stderr")


def test_template_symlink_loop(scene: Scene, tmp_path: Path) -> None:
    loop = scene.catalog.root / "templates/page/loop.j2"
    manifest = scene.manifest.read_bytes()
    try:
        loop.symlink_to(loop)
        scene.manifest.write_bytes(manifest.replace(b"page/index.html.j2", b"page/loop.j2"))
        validate = run("validate", "--catalog", str(scene.catalog.root))
        assert_clean_failure(validate, 1, "page/loop.j2", where="stdout")
        assert_clean_failure(run(*scene.adopt("--force")), 1, "page/loop.j2", where="stderr")
    finally:
        scene.manifest.write_bytes(manifest)
        loop.unlink()


# -- the lock file ------------------------------------------------------------------


@pytest.mark.parametrize("case", JSON_BATTERY)
def test_hostile_lock(case: str, scene: Scene, replace: Callable[[Path, Hostile], None]) -> None:
    lock = scene.workspace / "smartshare.lock"
    replace(lock, JSON_BATTERY[case])
    named = str(lock)
    assert_clean_failure(
        run("status", "--workspace", str(scene.workspace)), 3, named, where="stderr"
    )
    assert_clean_failure(run(*scene.adopt()), 3, named, where="stderr")


def test_a_lock_from_a_newer_smartshare_is_refused(
    scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    lock = scene.workspace / "smartshare.lock"

    def newer(valid: bytes) -> bytes:
        data = json.loads(valid)
        data["lock_version"] = LOCK_VERSION + 1
        data["written_by_the_future"] = {"anything": True}  # a newer format may add keys
        return json.dumps(data).encode()

    replace(lock, newer)
    for result in (run("status", "--workspace", str(scene.workspace)), run(*scene.adopt())):
        assert_clean_failure(result, 3, str(lock), where="stderr")
        assert "written by a newer smartshare" in result.stderr
        assert "upgrade" in result.stderr
    assert json.loads(lock.read_bytes())["lock_version"] == LOCK_VERSION + 1  # left alone


def test_a_lock_of_version_1_is_read_and_written_back_as_the_current_version(
    scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    lock = scene.workspace / "smartshare.lock"

    def version_1(valid: bytes) -> bytes:
        data = json.loads(valid)
        data["lock_version"] = 1
        # What version 2 added (all optional) a version 1 lock does not hold.
        data.pop("deployment", None)
        for app in data["apps"].values():
            for key in (
                *("render_inputs", "region_digest", "build_args", "build"),
                # and what later versions added
                *("patches", "tree_digest", "adoption_id", "attention"),
                *("history", "first_adopted_at", "upgraded_at"),
            ):
                app.pop(key, None)
            for image in app["images"]:
                image.pop("bases", None)
        return json.dumps(data).encode()

    replace(lock, version_1)
    assert LOCK_VERSION == 3
    status = run("status", "--workspace", str(scene.workspace), "--format", "json")
    assert status.exit_code == 0, status.output
    assert [(app["app"], app["drift"]) for app in json.loads(status.stdout)["apps"]] == [
        ("alpha", [])
    ]
    adopted = run(*scene.adopt())
    assert adopted.exit_code == 0, adopted.output
    assert json.loads(lock.read_bytes())["lock_version"] == LOCK_VERSION


def test_the_valid_files_still_load(scene: Scene) -> None:
    """The battery's base files are valid: each failure above is the hostile content's."""
    assert run("validate", "--catalog", str(scene.catalog.root)).exit_code == 0
    assert run("validate", "--catalog", str(scene.catalog.root), str(scene.region)).exit_code == 0
    assert run(*scene.adopt()).exit_code == 0
    assert run("status", "--workspace", str(scene.workspace)).exit_code == 0


# -- what the YAML loader says, and where ----------------------------------------

YAML_MESSAGES = {
    "a: 1\n---\nb: 2\n": (2, "a second YAML document starts here"),
    "a: 1\n---\n": (2, "a second YAML document starts here"),
    "a: 1\nb: &x " + "[" * 60 + "]" * 60 + "\n": (2, "nested more than 50 levels"),
    "a: &x " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 30 + "*x" + "]" * 30 + "\n": (
        2,
        "nested more than 50 levels",
    ),
    "a: 1\nwhen: 2001-13-45\n": (2, "'2001-13-45' is read as a YAML timestamp; quote it"),
    "a: 1\nb: =\n": (2, "'=' is read as a YAML value; quote it"),
    "a: 1\nb: !!python/object:os.system x\n": (2, "YAML tag '!!python/object:os.system'"),
    "a: 1\nb: !!set {x}\n": (2, "YAML tag '!!set' is not allowed"),
    "a: 1\nyes: 2\n": (2, "mapping keys must be text: quote 'yes'"),
    "a: 1\n1: 2\n": (2, "mapping keys must be text: quote '1'"),
    "a: 1\nb: 1" + "0" * 5000 + "\n": (2, "is not a valid int"),
    "a: 1\nb: &b [1, *b]\n": (2, "recursive YAML alias"),
    "a: 1\nb:\n  <<: 3\n": (3, "a merge key '<<' takes a mapping"),
}


@pytest.mark.parametrize("text", YAML_MESSAGES)
def test_the_yaml_loader_locates_what_it_refuses(text: str) -> None:
    from smartshare.catalog.yamlfile import parse_yaml
    from smartshare.errors import InvalidInputError

    line, phrase = YAML_MESSAGES[text]
    with pytest.raises(InvalidInputError) as caught:
        parse_yaml(text, path=Path("x.yaml"))
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("x.yaml", line), problem
    assert phrase in problem.message, problem


def _nested(depth: int) -> list[object]:
    nested: list[object] = []
    for _ in range(depth - 1):
        nested = [nested]
    return nested


@pytest.mark.parametrize(
    ("text", "data"),
    [
        # merge keys of mappings stay allowed
        ("a: &x {k: v}\nb:\n  <<: *x\n  c: 1\n", {"a": {"k": "v"}, "b": {"k": "v", "c": 1}}),
        ("a: 'quoted: 2001-01-01'\nb: '1'\n", {"a": "quoted: 2001-01-01", "b": "1"}),
        ("a: 1\n...\n", {"a": 1}),  # an explicit document end is one document
        ("\ufeffa: 1\n", {"a": 1}),  # a byte order mark
        ("a: " + "[" * 49 + "]" * 49 + "\n", {"a": _nested(49)}),  # 50 levels with the top one
    ],
)
def test_plain_yaml_still_loads(text: str, data: dict[str, object]) -> None:
    from smartshare.catalog.yamlfile import parse_yaml

    assert parse_yaml(text, path=Path("x.yaml")).data == data


def test_a_secret_file_that_is_not_text(
    scene: Scene, replace: Callable[[Path, Hostile], None]
) -> None:
    secret = scene.region.parent / "token.bin"
    secret.write_bytes(b"\xff\xfe\x00" + SECRET_VALUE.encode())
    replace(scene.region, lambda valid: valid.replace(b"env:TESTLAND_TOKEN", b"file:token.bin"))
    result = run(*scene.adopt())
    assert_clean_failure(result, 1, "file:token.bin", where="stderr")
    assert "not UTF-8 text" in result.stderr
    assert SECRET_VALUE not in result.stdout + result.stderr
