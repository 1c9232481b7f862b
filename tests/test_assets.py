"""Assets: files a region supplies (a logo), checked by content, confined to the profile's
folder, written into the image, recorded in the lock; a changed file rebuilds."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smartshare.adoption.events import Outcome
from smartshare.adoption.runner import adopt
from smartshare.catalog.assets import content_problem, png_problem, svg_problem
from smartshare.catalog.checks import validate
from smartshare.catalog.models import AssetType
from smartshare.cli import app as cli_app
from smartshare.errors import InvalidInputError
from smartshare.state.lockfile import read_lock

from catalogs import CatalogFixture, isolate, make_catalog


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def tiny_png(rgb: tuple[int, int, int], size: int = 4, *, level: int = 6) -> bytes:
    """A real size x size PNG of one colour, made with zlib (at ``level``) and struct."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, level))
        + chunk(b"IEND", b"")
    )


SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle r="4"/></svg>\n'
ICO = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, 4, 22) + b"abcd"

LOGO_ASSET = """\
assets:
  - name: logo
    types: [png, svg]
    max_kb: 64
    dest: www/logo.{type}
"""


def with_logo(catalog: CatalogFixture, app: str, *, asset: str = LOGO_ASSET) -> None:
    """Give ``app`` a logo asset, and the region a logo file in branding."""
    manifest = catalog.root / f"manifests/apps/{app}.yaml"
    manifest.write_text(manifest.read_text() + asset)
    region = catalog.region_file
    region.write_text(
        region.read_text().replace("branding:\n", "branding:\n  logo: file:assets/logo.png\n")
    )
    logo = region.parent / "assets/logo.png"
    logo.parent.mkdir(parents=True, exist_ok=True)
    logo.write_bytes(tiny_png((11, 110, 79)))


# -- content ------------------------------------------------------------------------


def test_types_are_told_by_content_not_by_name() -> None:
    assert content_problem(tiny_png((1, 2, 3)), (AssetType.PNG,)) == (AssetType.PNG, None)
    assert content_problem(SVG.encode(), (AssetType.SVG,)) == (AssetType.SVG, None)
    assert content_problem(ICO, (AssetType.ICO,)) == (AssetType.ICO, None)
    kind, problem = content_problem(b"just some text, named logo.png\n", (AssetType.PNG,))
    assert kind is None
    assert problem == "is not a PNG, SVG or ICO file (its content is text); expected png"
    kind, problem = content_problem(SVG.encode(), (AssetType.PNG,))
    assert (kind, problem) == (AssetType.SVG, "is SVG by its content; expected png")


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (tiny_png((1, 2, 3))[:-12], "does not end with an IEND chunk"),
        (tiny_png((1, 2, 3))[:40], "truncated"),
        (tiny_png((1, 2, 3)).replace(b"IDAT", b"IDAX"), "checksum"),
        (b"\x89PNG\r\n\x1a\n", "no image header"),
    ],
)
def test_a_broken_png_is_refused(data: bytes, phrase: str) -> None:
    problem = png_problem(data)
    assert problem is not None and phrase in problem


@pytest.mark.parametrize(
    ("svg", "phrase"),
    [
        ('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>x</p></foreignObject></svg>',
            "<foreignObject>",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "event handler"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
            '<image x:href="https://tracker.example/p.png"/></svg>',
            "refers to another file",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><use href="other.svg#a"/></svg>',
            "refers to another file",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(x.css);</style></svg>',
            "style sheet",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://x/y)"/></svg>',
            "refers to another file",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"/></svg>',
            "refers to another file",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
            '<svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
            "DOCTYPE",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', "not well-formed XML"),
        ('<html xmlns="http://www.w3.org/2000/svg"><svg/></html>', "root element is not <svg>"),
    ],
)
def test_an_svg_that_could_run_or_fetch_anything_is_refused(svg: str, phrase: str) -> None:
    problem = svg_problem(svg.encode())
    assert problem is not None and phrase in problem


def test_an_svg_with_internal_references_only_is_accepted() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<defs><linearGradient id="g"/></defs><rect fill="url(#g)"/>'
        '<use xlink:href="#g"/><style>rect { fill: url(#g); }</style></svg>'
    )
    assert svg_problem(svg.encode()) is None


# -- validate ---------------------------------------------------------------------------


def problems_of(catalog: CatalogFixture) -> list[str]:
    return [p.as_text() for p in validate(catalog_root=catalog.root).problems]


def test_a_png_that_is_really_text_is_refused_where_the_profile_names_it(
    tmp_path: Path,
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    assert problems_of(catalog) == []
    (catalog.region_file.parent / "assets/logo.png").write_text("<h1>not a logo</h1>\n")
    region = catalog.region_file.read_text()
    line = region.splitlines().index("  logo: file:assets/logo.png") + 1
    report = validate(catalog_root=catalog.root)
    assert [(p.line, p.column, p.field) for p in report.problems] == [(line, 9, "branding.logo")]
    assert report.problems[0].message == (
        "'file:assets/logo.png' is not a PNG, SVG or ICO file (its content is text); "
        "expected png, svg, ico"
    )


def test_an_asset_of_the_wrong_type_for_the_app_is_refused(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha", asset=LOGO_ASSET.replace("[png, svg]", "[svg]"))
    report = validate(catalog_root=catalog.root)
    assert [(p.field, p.message) for p in report.problems] == [
        (
            "branding.logo",
            "as asset 'logo' of 'alpha': 'file:assets/logo.png' is PNG by its content; "
            "expected svg",
        )
    ]


def test_per_app_files_are_checked_against_the_app(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha", asset=LOGO_ASSET.replace("max_kb: 64", "max_kb: 1"))
    region = catalog.region_file
    (region.parent / "assets/big.png").write_bytes(tiny_png((1, 2, 3), size=64, level=0))
    region.write_text(
        region.read_text()
        + "assets:\n  alpha:\n    logo: file:assets/big.png\n    icon: file:assets/logo.png\n"
        + "  nosuch:\n    logo: file:assets/logo.png\n"
    )
    found = {(p.field, p.message) for p in validate(catalog_root=catalog.root).problems}
    assert found == {
        ("assets.alpha.logo", "'file:assets/big.png' is larger than 1 KiB (the asset's max_kb)"),
        ("assets.alpha.icon", "app 'alpha' has no asset 'icon'; its assets are: logo"),
        ("assets.nosuch", "no app named 'nosuch' in the catalogue"),
    }


def test_asset_files_stay_inside_the_profiles_folder(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(tiny_png((1, 2, 3)))
    link = catalog.region_file.parent / "assets/link.png"
    link.symlink_to(outside)
    region = catalog.region_file
    region.write_text(region.read_text() + "assets:\n  alpha:\n    logo: file:assets/link.png\n")
    [problem] = validate(catalog_root=catalog.root).problems
    assert problem.field == "assets.alpha.logo"
    assert "resolves outside the profile's folder" in problem.message
    region.write_text(
        region.read_text().replace("file:assets/link.png", "file:../../elsewhere.png")
    )
    [problem] = validate(catalog_root=catalog.root).problems
    assert problem.field == "assets.alpha.logo"
    assert "must stay inside the profile's folder" in problem.message


def test_a_required_asset_without_a_file_is_named(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha", asset=LOGO_ASSET + "    required: true\n")
    region = catalog.region_file
    region.write_text(region.read_text().replace("  logo: file:assets/logo.png\n", ""))
    [problem] = validate(catalog_root=catalog.root).problems
    assert problem.field == "apps.alpha"
    assert problem.message.startswith("app 'alpha' needs a file for its required asset 'logo'")
    with pytest.raises(InvalidInputError, match="does not validate") as caught:
        adopt(
            apps=["alpha"],
            region_file=catalog.region_file,
            workspace=tmp_path / "ws",
            catalog_root=catalog.root,
            build=False,
        )
    assert "required asset 'logo'" in caught.value.problems[0].message
    assert not (tmp_path / "ws").exists()


def test_a_template_naming_an_undeclared_asset_is_located(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    catalog.write(
        "templates/page/index.html.j2",
        "<h1>{{ params.greeting | e }}</h1>\n{% if assets.icon %}x{% endif %}\n",
    )
    [problem] = validate(catalog_root=catalog.root).problems
    assert (problem.file.endswith("templates/page/index.html.j2"), problem.line) == (True, 2)
    assert problem.message == "app 'alpha' has no asset 'icon'"


def test_cli_validate_locates_the_bad_file(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    (catalog.region_file.parent / "assets/logo.png").write_text("text\n")
    result = CliRunner().invoke(cli_app, ["validate", "--catalog", str(catalog.root)])
    assert result.exit_code == 1
    assert f"{catalog.region_file.name}:" in result.output
    assert "error: branding.logo: 'file:assets/logo.png' is not a PNG" in result.output


# -- adopt ------------------------------------------------------------------------------


def run(catalog: CatalogFixture, workspace: Path, *, build: bool = True) -> Any:
    return adopt(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=build,
    )


def test_the_templates_see_the_asset_and_the_lock_records_its_digest(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    catalog.write(
        "templates/page/index.html.j2",
        "<h1>{{ params.greeting | e }}</h1>\n"
        '{% if assets.logo %}<img src="/logo.{{ assets.logo.type }}" '
        'data-type="{{ assets.logo.media_type }}">{% endif %}\n'
        "[{{ region.branding.logo }}]\n",
    )
    workspace = tmp_path / "ws"
    result = run(catalog, workspace, build=False)
    assert result.results[0].outcome is Outcome.ADOPTED, result.results
    src = workspace / "apps/alpha/src"
    assert (src / "www/logo.png").read_bytes() == tiny_png((11, 110, 79))
    page = (src / "www/index.html").read_text()
    assert '<img src="/logo.png" data-type="image/png">' in page
    assert "[None]" in page  # a file is no URL: templates get the file as the asset
    [logo] = [f for f in read_lock(workspace).apps["alpha"].files if f.dest == "www/logo.png"]
    assert logo.digest == "sha256:" + sha256(tiny_png((11, 110, 79)))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_inside(client: Any, image: str, path: str) -> str:
    """sha256 of the file ``path`` inside ``image``, computed there (logs are text, not bytes)."""
    output = client.containers.run(image, ["sha256sum", path], remove=True, network_mode="none")
    return str(output.decode().split()[0])


@pytest.mark.requires_docker
def test_the_png_reaches_the_image_and_a_changed_logo_rebuilds(
    tmp_path: Path, busybox_image: str
) -> None:
    import docker

    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    workspace = tmp_path / "ws"
    first = run(catalog, workspace)
    assert first.results[0].outcome is Outcome.ADOPTED, first.results
    client = docker.from_env()
    image = client.images.get(catalog.tag("alpha"))
    assert digest_inside(client, image.id, "/www/logo.png") == sha256(tiny_png((11, 110, 79)))

    assert run(catalog, workspace).results[0].outcome is Outcome.UP_TO_DATE

    (catalog.region_file.parent / "assets/logo.png").write_bytes(tiny_png((212, 160, 23)))
    again = run(catalog, workspace)
    assert again.results[0].outcome is Outcome.ADOPTED
    assert "assets changed: logo" in again.results[0].message
    rebuilt = client.images.get(catalog.tag("alpha"))
    assert rebuilt.id != image.id
    assert digest_inside(client, rebuilt.id, "/www/logo.png") == sha256(tiny_png((212, 160, 23)))
    assert read_lock(workspace).apps["alpha"].images[0].image_id == rebuilt.id


def test_a_logo_swapped_for_text_after_validation_stops_adopt_before_any_work(
    tmp_path: Path,
) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    with_logo(catalog, "alpha")
    workspace = tmp_path / "ws"
    assert run(catalog, workspace, build=False).results[0].outcome is Outcome.ADOPTED
    lock_before = (workspace / "smartshare.lock").read_bytes()
    (catalog.region_file.parent / "assets/logo.png").write_text("#!/bin/sh\necho hi\n")
    os.utime(catalog.region_file.parent / "assets/logo.png")
    with pytest.raises(InvalidInputError) as caught:
        run(catalog, workspace, build=False)
    assert "is not a PNG, SVG or ICO file" in caught.value.problems[0].message
    assert (workspace / "smartshare.lock").read_bytes() == lock_before


def test_a_runtime_asset_can_be_mounted_into_a_container(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    runtime_asset = LOGO_ASSET.replace("dest: www/logo.{type}", "dest: logo.{type}") + (
        "    target: runtime\n"
    )
    with_logo(catalog, "alpha", asset=runtime_asset)
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    mount = (
        "runtime:\n  services:\n    - name: web\n      image: alpha\n      files:\n"
        "        - dest: {dest}\n          path: /srv/logo.png\n"
    )
    text = manifest.read_text()
    manifest.write_text(text + mount.format(dest="logo.png"))
    assert validate(catalog_root=catalog.root).problems == []
    manifest.write_text(text + mount.format(dest="logo.gif"))
    [problem] = validate(catalog_root=catalog.root).problems
    assert problem.field == "runtime.services.0.files.0.dest"
    assert problem.message == (
        "'logo.gif' is not the dest of a runtime template or asset of 'alpha' "
        "(runtime files: logo.png, logo.svg, runtime.env)"
    )
    manifest.write_text(text + mount.format(dest="logo.png"))
    result = run(catalog, tmp_path / "ws", build=False)
    assert result.results[0].outcome is Outcome.ADOPTED
    runtime_logo = tmp_path / "ws/runtime/alpha/logo.png"
    assert runtime_logo.read_bytes() == tiny_png((11, 110, 79))
    assert runtime_logo.stat().st_mode & 0o777 == 0o600
