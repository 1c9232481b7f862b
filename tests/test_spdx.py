"""Licences: SPDX identifiers and expressions, checked against the SPDX License List."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartshare.catalog import spdx_ids
from smartshare.catalog.checks import validate
from smartshare.catalog.diagnostics import Severity
from smartshare.catalog.rules import spdx_problem, spdx_warnings
from smartshare.cli import app as cli_app

from catalogs import make_catalog

REPO = Path(__file__).resolve().parent.parent

VALID = [
    "MIT",
    "Apache-2.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "MIT OR Apache-2.0",
    "(MIT AND BSD-3-Clause) OR Apache-2.0",
    "GPL-2.0-only WITH Classpath-exception-2.0",
    "(GPL-2.0-only WITH Classpath-exception-2.0) OR MIT",
    "Apache-2.0 WITH LLVM-exception",
    "EPL-1.0+",
    "LicenseRef-Kota-Tangerang",
    "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
    "GPL-2.0-or-later WITH AdditionRef-Tangerang-exception",
    "((((MIT))))",
]
INVALID = {
    "GPL-3.0-bogus": "did you mean GPL-3.0-only",
    "Apache2": "did you mean Apache-2.0",
    "": "empty",
    "   ": "empty",
    "MIT and Apache-2.0": "in capitals: AND",
    "MIT or Apache-2.0": "in capitals: OR",
    "MIT Apache-2.0": "where AND, OR or WITH is expected",
    "MIT OR": "it ends where a licence is expected",
    "OR MIT": "'OR' where a licence is expected",
    "(MIT": "it ends where a licence is expected",
    "MIT)": "')' where AND, OR or WITH is expected",
    "()": "')' where a licence is expected",
    "Classpath-exception-2.0": "is an exception: write LICENCE WITH",
    "GPL-2.0-only WITH MIT": "not an exception",
    "GPL-2.0-only WITH": "it ends where a licence is expected",
    "AdditionRef-x": "it goes after WITH",
    "NOASSERTION": "not on the SPDX License List",
    "(" * 11 + "MIT" + ")" * 11: "nests more than 10",
    "MIT OR " * 100 + "MIT": "longer than 500",
    "MIT\u00a0OR Apache-2.0": "not on the SPDX License List",  # a no-break space separates nothing
}


@pytest.mark.parametrize("value", VALID)
def test_valid_licences(value: str) -> None:
    assert spdx_problem(value) is None
    assert spdx_warnings(value) == ()


@pytest.mark.parametrize("value", INVALID)
def test_invalid_licences(value: str) -> None:
    problem = spdx_problem(value)
    assert problem is not None
    assert INVALID[value] in problem
    assert len(problem) < 400  # a long value is never echoed whole


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        ("GPL-3.0", "'GPL-3.0' is deprecated: use GPL-3.0-only or GPL-3.0-or-later"),
        ("GPL-2.0+", "'GPL-2.0+' is deprecated: use GPL-2.0-or-later"),
        ("LGPL-2.1+ OR MIT", "'LGPL-2.1+' is deprecated: use LGPL-2.1-or-later"),
        ("wxWindows", "'wxWindows' is deprecated: see https://spdx.org/licenses/"),
        ("mit", "SPDX writes 'mit' as 'MIT'"),
        ("GPL-2.0-only WITH classpath-exception-2.0", "as 'Classpath-exception-2.0'"),
    ],
)
def test_deprecated_or_misspelt_identifiers_are_warnings(value: str, warning: str) -> None:
    assert spdx_problem(value) is None
    assert any(warning in w for w in spdx_warnings(value)), spdx_warnings(value)


def test_validate_refuses_a_bogus_licence_and_warns_of_a_deprecated_one(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": (), "beta": ()})
    alpha = catalog.root / "manifests/apps/alpha.yaml"
    beta = catalog.root / "manifests/apps/beta.yaml"
    alpha.write_text(alpha.read_text().replace("license: MIT", "license: GPL-3.0-bogus"))
    beta.write_text(beta.read_text().replace("license: MIT", "license: GPL-2.0+"))
    report = validate(catalog_root=catalog.root)
    found = {(Path(p.file).name, p.severity): p for p in report.problems if p.field == "license"}
    assert "did you mean GPL-3.0-only" in found[("alpha.yaml", Severity.ERROR)].message
    assert "use GPL-2.0-or-later" in found[("beta.yaml", Severity.WARNING)].message
    line = beta.read_text().splitlines().index("license: GPL-2.0+") + 1
    assert found[("beta.yaml", Severity.WARNING)].line == line
    # A deprecated identifier alone is no error.
    result = CliRunner().invoke(cli_app, ["validate", "--catalog", str(catalog.root), str(beta)])
    assert result.exit_code == 0, result.output
    assert "warning: license:" in result.output


def test_the_vendored_list() -> None:
    assert spdx_ids.LICENSE_LIST_VERSION.split(".")[0] == "3"
    assert {"MIT", "Apache-2.0", "GPL-3.0-only", "0BSD"} <= spdx_ids.LICENSES
    assert spdx_ids.DEPRECATED_LICENSES < spdx_ids.LICENSES
    assert {"GPL-3.0", "GPL-2.0+"} <= spdx_ids.DEPRECATED_LICENSES
    assert "Classpath-exception-2.0" in spdx_ids.EXCEPTIONS
    assert spdx_ids.DEPRECATED_EXCEPTIONS <= spdx_ids.EXCEPTIONS
    assert not spdx_ids.LICENSES & spdx_ids.EXCEPTIONS


def test_the_refresh_script_writes_the_list_it_is_given(tmp_path: Path) -> None:
    data = tmp_path / "license-list-data" / "json"
    data.mkdir(parents=True)
    licenses = [
        {"licenseId": "MIT", "isDeprecatedLicenseId": False},
        {"licenseId": "GPL-2.0", "isDeprecatedLicenseId": True},
    ]
    exceptions = [{"licenseExceptionId": "LLVM-exception", "isDeprecatedLicenseId": False}]
    (data / "licenses.json").write_text(
        json.dumps({"licenseListVersion": "9.99", "licenses": licenses})
    )
    (data / "exceptions.json").write_text(
        json.dumps({"licenseListVersion": "9.99", "exceptions": exceptions})
    )
    output = tmp_path / "spdx_ids.py"
    script = str(REPO / "scripts/refresh-spdx")
    command = [sys.executable, script, "--from", str(data.parent), "--output", str(output)]
    subprocess.run(command, check=True, capture_output=True)
    namespace: dict[str, object] = {}
    exec(compile(output.read_text(), str(output), "exec"), namespace)
    assert namespace["LICENSE_LIST_VERSION"] == "9.99"
    assert namespace["LICENSES"] == frozenset({"MIT", "GPL-2.0"})
    assert namespace["DEPRECATED_LICENSES"] == frozenset({"GPL-2.0"})
    assert namespace["EXCEPTIONS"] == frozenset({"LLVM-exception"})
    assert namespace["DEPRECATED_EXCEPTIONS"] == frozenset()
