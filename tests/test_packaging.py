"""`twistd --help` lists exchmail after `pip install .` and after `pip install -e .`.

Each install goes into a fresh virtualenv (with access to the running
interpreter's packages through a .pth file, so dependencies are not
downloaded again) from a copy of the source tree.
"""

import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each test pip-installs the project into a new virtualenv.
pytestmark = pytest.mark.slow


def make_venv(where: Path) -> Path:
    """A new virtualenv that also sees this interpreter's site-packages (read-only)."""
    # No pip of its own (ensurepip takes seconds): the running interpreter's
    # pip installs into it with --python.
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # Appended after the venv's own site-packages, so the project installed in
    # the new venv takes precedence over any copy in the running interpreter.
    Path(purelib, "zz_parent_site.pth").write_text("\n".join(parents) + "\n")
    return python


def source_copy(where: Path) -> Path:
    """A clean copy of the project (no build artefacts, no venvs)."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "build", "__pycache__", ".pytest_cache", "exchmail-data", ".tox"
    )
    return Path(shutil.copytree(ROOT, where, ignore=ignore))


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_twistd_lists_exchmail(tmp_path, editable):
    python = make_venv(tmp_path / "venv")
    source = source_copy(tmp_path / "src")
    args = ["-e", str(source)] if editable else [str(source)]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", *args],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    bindir = python.parent
    # Twisted comes from the parent environment, so run twistd through the new python.
    twistd = [python, "-c", "from twisted.scripts.twistd import run; run()"]
    out = subprocess.run(
        [*twistd, "--help"], check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60
    ).stdout
    assert any(line.split()[:1] == ["exchmail"] for line in out.splitlines()), out
    usage = subprocess.run(
        [*twistd, "exchmail", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert "--config" in usage.stdout, usage.stdout + usage.stderr
    cli = subprocess.run(
        [bindir / "exchmail", "--help"], check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60
    ).stdout
    assert "user" in cli and "profile" in cli
    where = subprocess.run(
        [python, "-c", "import exchmail; print(exchmail.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(source) if editable else str(tmp_path / "venv")), where
