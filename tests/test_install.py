"""A non-editable install works: the wheel carries the grammar, and the package runs from it elsewhere.

The wheel is built from a clean copy of the working tree (a stale build/ cannot
slip files in), installed without its dependencies into a fresh virtual
environment that shares nothing with this one, and run from another directory
with only this environment's site-packages on PYTHONPATH, for lark and
pydantic. `.ci/run` does the same with a real install of the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

from conftest import ROOT

NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "fuzz-failures")
GRAMMAR = "modelspec/grammar/nnspec.lark"


def _setuptools_here() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68  # pyproject.toml's build requirement


def build_wheel(tmp_path):
    """Build the wheel; skip when it cannot be built here for want of the build backend (offline)."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), "."]
    isolated = not _setuptools_here()  # else build with the setuptools already here: no download, and faster
    res = subprocess.run(cmd if isolated else cmd + ["--no-build-isolation"], cwd=source, capture_output=True,
                         text=True, timeout=300)
    if res.returncode != 0:
        if isolated:
            last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
            pytest.skip(f"cannot build the wheel here (no setuptools>=68 in this environment, and pip could not "
                        f"fetch it): {last}")
        pytest.fail(f"pip wheel failed:\n{res.stderr}")
    (wheel,) = wheels.glob("modelspec-*.whl")
    return wheel


def test_wheel_runs_from_a_fresh_environment(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert GRAMMAR in names, sorted(names)
    assert not any(n.startswith("grammar/") for n in names), "the grammar must travel inside the package"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # nothing of this environment's packages
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    site = sysconfig.get_paths()["purelib"]  # lark and pydantic (no .pth runs from PYTHONPATH: no editable modelspec)
    env = {**os.environ, "PYTHONPATH": site}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ROOT / "specs" / "cnn.nnspec", elsewhere)

    prog = ("import sys, modelspec; from modelspec.parse import parse\n"
            "assert modelspec.__file__.startswith(sys.argv[1]), modelspec.__file__\n"
            "print(parse(open('cnn.nnspec').read(), 'cnn.nnspec').models()[0].name)")
    res = subprocess.run([str(python), "-c", prog, str(env_dir)], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["CNN"]

    script = env_dir / "bin" / "modelspec"
    res = subprocess.run([str(script), "check", "cnn.nnspec"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ok (CNN -> [B, 10]" in res.stdout
    res = subprocess.run([str(script), "--version"], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.stdout.strip() == f"modelspec {_version()}", res.stdout + res.stderr


def _version() -> str:
    from modelspec.version import __version__

    return __version__
