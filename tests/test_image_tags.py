"""Image tags: a version that can be tagged, and no image claimed by two apps.

An image is tagged ``NAMESPACE/IMAGE:VERSION-REGION``: a version that cannot be
part of a tag is refused by the manifest check and again by the tag policy; two
apps that would push to the same image are refused by ``validate`` across the
catalogue and by ``adopt`` across the apps of a run, before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner, Result

from smartshare.catalog.checks import validate
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.catalog.rules import image_tag_problem, version_problem
from smartshare.catalog.tags import image_tags
from smartshare.cli import app as cli_app
from smartshare.errors import InvalidInputError

from catalogs import SECRET_VALUE, CatalogFixture, make_catalog

BAD_VERSIONS = [
    "1.0.0+build5",  # semver build metadata: '+' cannot be in a tag
    "1.0.0\n",  # '$' matches before a trailing newline: the check must not
    "1.0.0\r",
    " 1.0.0",
    "-1.0.0",
    ".1.0",
    "1/0",
    "1:0",
    "1.0.0\u0663",  # an Arabic-Indic digit
    "v" * 88,  # with "-" and a 40-character region name, over 128
]
GOOD_VERSIONS = ["1.4.0", "2024.01", "1.0.0-rc.1", "v2", "1.0.0_build5", "v" * 87]


def manifest(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parent.parent / "manifests/apps/laksa.yaml").read_text(encoding="utf-8")
    )
    data.update(changes)
    return data


def region(name: str = "badung") -> RegionProfile:
    data = yaml.safe_load(
        (Path(__file__).parent.parent / "manifests/regions/badung.yaml").read_text(encoding="utf-8")
    )
    data["name"] = name
    return RegionProfile.model_validate(data)


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_a_version_that_cannot_be_tagged_is_refused_by_the_manifest_and_the_tag_policy(
    version: str,
) -> None:
    assert version_problem(version) is not None
    with pytest.raises(ValidationError, match="version"):
        AppManifest.model_validate(manifest(version=version))
    # The tag policy checks again: a manifest may reach it without the model's check.
    unchecked = AppManifest.model_validate(manifest()).model_copy(update={"version": version})
    with pytest.raises(InvalidInputError, match="tag"):
        image_tags(unchecked, region("r" * 40), "laksa-web")


@pytest.mark.parametrize("version", GOOD_VERSIONS)
def test_a_version_that_can_be_tagged(version: str) -> None:
    assert version_problem(version) is None
    app = AppManifest.model_validate(manifest(version=version))
    (tag,) = image_tags(app, region("r" * 40), "laksa-web")
    assert image_tag_problem(tag.rsplit(":", 1)[1]) is None
    assert tag.endswith(f":{version}-{'r' * 40}")


@pytest.mark.parametrize("tag", ["", "-x", ".x", "x" * 129, "a+b", "a\n", "a/b", "ä"])
def test_the_docker_tag_rule(tag: str) -> None:
    assert image_tag_problem(tag) is not None


# -- an image claimed by two apps ---------------------------------------------------


def two_apps_one_image(tmp_path: Path) -> tuple[CatalogFixture, Path, Path]:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    beta = catalog.root / "manifests/apps/beta.yaml"
    # beta declares its own image and, second, alpha's.
    beta.write_text(
        beta.read_text(encoding="utf-8").replace(
            "    dockerfile: Dockerfile\nparameters:",
            "    dockerfile: Dockerfile\n  - name: alpha\nparameters:",
        ),
        encoding="utf-8",
    )
    return catalog, catalog.root / "manifests/apps/alpha.yaml", beta


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def test_validate_refuses_an_image_claimed_by_two_apps_naming_both_files(tmp_path: Path) -> None:
    catalog, alpha, beta = two_apps_one_image(tmp_path)
    result = CliRunner().invoke(cli_app, ["validate", "--catalog", str(catalog.root)])
    assert result.exit_code == 1, result.output
    report = validate(catalog_root=catalog.root)
    clashes = [p for p in report.problems if "also declared" in p.message]
    assert {(Path(p.file).name, p.field, p.line) for p in clashes} == {
        ("alpha.yaml", "images.0.name", line_of(alpha, "  - name: alpha")),
        ("beta.yaml", "images.1.name", line_of(beta, "  - name: alpha")),
    }
    for problem in clashes:
        other, field = (
            (beta, "images.1.name") if problem.file == str(alpha) else (alpha, "images.0.name")
        )
        assert f"also declared by app '{other.stem}' ({other}, {field})" in problem.message
        assert "both would be pushed as smartshare/alpha" in problem.message
        assert problem.message in result.output
    # One file alone is checked against the whole catalogue all the same.
    alone = validate(catalog_root=catalog.root, paths=[alpha])
    assert [p.field for p in alone.problems if "also declared" in p.message] == ["images.0.name"]


def test_adopt_refuses_an_image_claimed_by_two_apps_of_the_run_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, alpha, beta = two_apps_one_image(tmp_path)
    monkeypatch.setenv("SMARTSHARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SMARTSHARE_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("TESTLAND_TOKEN", SECRET_VALUE)
    workspace = tmp_path / "ws"

    def adopt(*apps: str) -> Result:
        return CliRunner().invoke(
            cli_app,
            [
                "adopt",
                *apps,
                "--no-build",
                *catalog.cli_options(workspace),
            ],
        )

    result = adopt("alpha", "beta")
    assert result.exit_code == 1, result.output
    assert "smartshare/alpha" in result.stderr
    assert alpha.name in result.stderr and beta.name in result.stderr
    assert not workspace.exists()  # nothing fetched, nothing written
    assert not (tmp_path / "cache").exists()
    # Each alone is a run without a clash; afterwards the other one's recorded
    # image would be overwritten, so the workspace's apps count as well.
    assert adopt("alpha").exit_code == 0
    second = adopt("beta")
    assert second.exit_code == 1, second.output
    assert "smartshare/alpha" in second.stderr
