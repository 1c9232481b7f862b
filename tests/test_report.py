"""``smartshare report``: adoption records, checked against ``smartshare schema report``."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_upgrade import prepared
from typer.testing import CliRunner, Result

from smartshare.cli import app as cli_app
from smartshare.state.lockfile import read_lock
from smartshare.upgrading.runner import upgrade

from catalogs import isolate

HOSTILE_TITLE = 'Kabupaten "Testland": #1 \u202e\x1b[31m\n- evil: yes'


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args))


def test_the_json_report_validates_against_its_schema(tmp_path: Path) -> None:
    catalog, workspace = prepared(tmp_path, conflicting=False)
    upgrade(
        apps=["alpha"],
        region_file=catalog.region_file,
        workspace=workspace,
        catalog_root=catalog.root,
        build=False,
    )
    shown = run("report", "--workspace", str(workspace), "--format", "json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    schema = json.loads(run("schema", "report").output)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(report)
    assert report["schema"] == "smartshare/report-v1"
    assert report["region"] == {
        "name": catalog.region,
        "title": "Kabupaten Testland",
        "code": read_lock(workspace).region.code,  # type: ignore[union-attr]
    }
    (alpha,) = report["apps"]
    entry = read_lock(workspace).apps["alpha"]
    assert (alpha["app"], alpha["version"], alpha["commit"]) == (
        "alpha",
        "2.0.0",
        entry.source.commit,
    )
    assert alpha["local_patches"] == 1
    assert alpha["adopted_at"] == entry.history[0].adopted_at
    assert alpha["last_upgraded_at"] == entry.adopted_at
    assert not alpha["needs_attention"]
    # A record that breaks the schema is caught: the check can fail.
    broken = {**report, "apps": [{**alpha, "local_patches": -1}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    text = run("report", "--workspace", str(workspace))
    assert text.exit_code == 0 and "2.0.0" in text.output and "Patches" in text.output


def test_publiccode_used_by_escapes_the_region_name(tmp_path: Path) -> None:
    _catalog, workspace = prepared(tmp_path, conflicting=False)
    lock_path = workspace / "smartshare.lock"
    data = json.loads(lock_path.read_text())
    data["region"]["title"] = HOSTILE_TITLE
    lock_path.write_text(json.dumps(data))
    shown = run("report", "--workspace", str(workspace), "--format", "publiccode")
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.output) == {"alpha": {"usedBy": [HOSTILE_TITLE]}}
    assert "\x1b" not in shown.output and "\u202e" not in shown.output
    text = run("report", "--workspace", str(workspace))
    assert "\x1b" not in text.output and "\u202e" not in text.output


def test_a_workspace_without_a_lock_is_a_usage_error(tmp_path: Path) -> None:
    shown = run("report", "--workspace", str(tmp_path / "nothing"))
    assert shown.exit_code == 2 and "nothing was adopted" in shown.output
