"""``scripts/bootstrap``: which Python it takes, what it says when there is none.

Each test runs the real script from a copy of it (with ``pyproject.toml``, whose
``requires-python`` it reads) in ``tmp_path``, with a PATH made for the test: stub
interpreters that are Python 3.10 as far as any version check can tell, and the
real interpreter under its versioned name.  Nothing reaches pip or the network:
a too old Python stops the script first, and ``--venv-only`` stops it once .venv
is made.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
REAL_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
REAL_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# What the script needs besides the interpreters; apt-get stays out of reach.
TOOLS = ("dirname", "id", "rm", "sed", "git")

OLD_PYTHON = '''\
"""Python 3.10 for whoever asks (Ubuntu 22.04's python3): --version, -V and -c CODE."""
import sys

OLD = (3, 10, 12, "final", 0)
args = sys.argv[1:]
if args[:1] in (["--version"], ["-V"]):
    print("Python 3.10.12")
elif args[:1] == ["-c"] and len(args) >= 2:
    sys.version_info = OLD
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.exit("old-python stub: only --version, -V and -c are emulated")
'''


def _min_python() -> str:
    spec = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    found = re.fullmatch(r">=\s*(\d+\.\d+)", spec)
    assert found, f"requires-python is {spec!r}; the script reads only '>=X.Y'"
    return found.group(1)


MIN_PYTHON = _min_python()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A folder with scripts/bootstrap and pyproject.toml, as the script sees a checkout."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    shutil.copy2(PYPROJECT, root / "pyproject.toml")
    return root


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """The whole PATH of the script: the tools it needs, no interpreter yet."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is not installed"
        (folder / tool).symlink_to(found)
    return folder


def _old_python(path: Path) -> Path:
    """An executable at ``path`` that reports Python 3.10."""
    path.parent.mkdir(parents=True, exist_ok=True)
    program = path.with_name(path.name + "-stub.py")
    program.write_text(OLD_PYTHON, encoding="utf-8")
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{program}" "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def _bootstrap(
    checkout: Path, bin_dir: Path, *args: str, python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(checkout.parent), "LC_ALL": "C.UTF-8"}
    if python is not None:
        env["PYTHON"] = str(python)
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(checkout / "scripts" / "bootstrap"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=checkout,
    )


def _venv_version(checkout: Path) -> str:
    done = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_the_old_python_stub_passes_for_python_310(tmp_path: Path) -> None:
    stub = _old_python(tmp_path / "python3")
    done = subprocess.run(
        [str(stub), "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_only_an_old_python3_is_explained(checkout: Path, bin_dir: Path) -> None:
    _old_python(bin_dir / "python3")
    done = _bootstrap(checkout, bin_dir)
    assert done.returncode == 1, done.stderr
    assert f"smartshare needs Python >= {MIN_PYTHON}" in done.stderr
    assert f"python3 is 3.10 ({bin_dir / 'python3'})" in done.stderr
    assert "sudo apt-get install python3.11 python3.11-venv" in done.stderr
    assert "PYTHON=" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (checkout / ".venv").exists()


def test_no_python_at_all_is_explained(checkout: Path, bin_dir: Path) -> None:
    done = _bootstrap(checkout, bin_dir)
    assert done.returncode == 1, done.stderr
    assert f"smartshare needs Python >= {MIN_PYTHON}" in done.stderr
    assert "no python3 found on PATH" in done.stderr
    assert not (checkout / ".venv").exists()


def test_a_versioned_python_is_taken_before_an_old_python3(checkout: Path, bin_dir: Path) -> None:
    _old_python(bin_dir / "python3")
    (bin_dir / f"python{REAL_VERSION}").symlink_to(REAL_PYTHON)
    done = _bootstrap(checkout, bin_dir, "--venv-only")
    assert done.returncode == 0, done.stderr
    assert f"with {bin_dir / f'python{REAL_VERSION}'} (Python {REAL_VERSION})" in done.stderr
    assert _venv_version(checkout).startswith(f"{REAL_VERSION}.")

    config = checkout / ".venv" / "pyvenv.cfg"
    made = config.stat().st_mtime_ns
    again = _bootstrap(checkout, bin_dir, "--venv-only")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert config.stat().st_mtime_ns == made


def test_a_venv_of_a_too_old_python_is_made_again(checkout: Path, bin_dir: Path) -> None:
    (bin_dir / "python3").symlink_to(REAL_PYTHON)
    _old_python(checkout / ".venv" / "bin" / "python")
    leftover = checkout / ".venv" / "lib" / "python3.10" / "site-packages" / "old.pth"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("", encoding="utf-8")

    done = _bootstrap(checkout, bin_dir, "--venv-only")
    assert done.returncode == 0, done.stderr
    assert (
        f"{checkout / '.venv'} was made with Python 3.10 (needs >= {MIN_PYTHON}): making it again"
        in done.stderr
    )
    assert not leftover.exists()
    assert _venv_version(checkout).startswith(f"{REAL_VERSION}.")


def test_a_venv_whose_python_is_gone_is_made_again(checkout: Path, bin_dir: Path) -> None:
    (bin_dir / "python3").symlink_to(REAL_PYTHON)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(checkout / "removed-python3.12")
    done = _bootstrap(checkout, bin_dir, "--venv-only")
    assert done.returncode == 0, done.stderr
    assert "has no working Python: making it again" in done.stderr
    assert _venv_version(checkout).startswith(f"{REAL_VERSION}.")


def test_python_variable_names_the_interpreter(
    checkout: Path, bin_dir: Path, tmp_path: Path
) -> None:
    _old_python(bin_dir / "python3")
    elsewhere = tmp_path / "opt" / "bin"
    elsewhere.mkdir(parents=True)
    (elsewhere / "python").symlink_to(REAL_PYTHON)
    done = _bootstrap(checkout, bin_dir, "--venv-only", python=elsewhere / "python")
    assert done.returncode == 0, done.stderr
    assert f"with {elsewhere / 'python'} (Python {REAL_VERSION})" in done.stderr
    assert _venv_version(checkout).startswith(f"{REAL_VERSION}.")


def test_python_variable_with_an_old_python_is_explained(
    checkout: Path, bin_dir: Path, tmp_path: Path
) -> None:
    (bin_dir / f"python{REAL_VERSION}").symlink_to(REAL_PYTHON)
    old = _old_python(tmp_path / "old" / "python3.10")
    done = _bootstrap(checkout, bin_dir, python=old)
    assert done.returncode == 1, done.stderr
    assert f"smartshare needs Python >= {MIN_PYTHON}" in done.stderr
    assert f"PYTHON={old} is Python 3.10" in done.stderr
    assert not (checkout / ".venv").exists()


def test_unknown_option_is_usage(checkout: Path, bin_dir: Path) -> None:
    done = _bootstrap(checkout, bin_dir, "--tests")
    assert done.returncode == 2
    assert "--venv-only" in done.stderr
    assert not (checkout / ".venv").exists()


def test_missing_git_is_explained_without_apt_get(checkout: Path, bin_dir: Path) -> None:
    (bin_dir / "git").unlink()
    (bin_dir / "python3").symlink_to(REAL_PYTHON)
    done = _bootstrap(checkout, bin_dir, "--venv-only")
    assert done.returncode == 1
    assert f"sudo apt-get install python{REAL_VERSION}-venv git" in done.stderr
