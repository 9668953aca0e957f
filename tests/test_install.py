"""A non-editable install works: the wheel carries the grammar and the examples, and runs from them elsewhere;
the sdist carries what its tests need.

The wheel is built from a clean copy of the working tree (a stale build/ cannot
slip files in), installed without its dependencies into a fresh virtual
environment that shares nothing with this one, and run from another directory
with only this environment's site-packages on PYTHONPATH, for lark and
pydantic. `.ci/run` does the same with a real install of the dependencies, and
also installs the sdist with `[test]` and runs part of the suite from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "fuzz-failures")
GRAMMAR = "modelspec/grammar/nnspec.lark"
# what the sdist must hold for its tests to run: these folders whole, and these files
SDIST_FOLDERS = ("modelspec", "grammar", "specs", "tests", "docs")
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml", "MANIFEST.in")


def _setuptools_needed() -> int:
    """The major version of setuptools that pyproject.toml's [build-system] requires."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on

    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    (need,) = [r for r in build["requires"] if r.startswith("setuptools")]
    return int(re.fullmatch(r"setuptools>=(\d+)", need)[1])


def _setuptools_here() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= _setuptools_needed()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A clean copy of the working tree."""
    copy = tmp_path_factory.mktemp("source") / "modelspec"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE)
    return copy


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    """The wheel; skipped when it cannot be built here for want of the build backend (offline)."""
    wheels = tmp_path_factory.mktemp("wheels")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), "."]
    isolated = not _setuptools_here()  # else build with the setuptools already here: no download, and faster
    res = subprocess.run(cmd if isolated else cmd + ["--no-build-isolation"], cwd=source, capture_output=True,
                         text=True, timeout=300)
    if res.returncode != 0:
        if isolated:
            last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
            pytest.skip(f"cannot build the wheel here (no setuptools>={_setuptools_needed()} in this environment, "
                        f"and pip could not fetch it): {last}")
        pytest.fail(f"pip wheel failed:\n{res.stderr}")
    (built,) = wheels.glob("modelspec-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh environment with the wheel installed, a folder elsewhere, and the environment to run in there."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)  # nothing of this environment's packages
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    site = sysconfig.get_paths()["purelib"]  # lark and pydantic (no .pth runs from PYTHONPATH: no editable modelspec)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    return env_dir, elsewhere, {**os.environ, "PYTHONPATH": site}


def test_the_wheel_holds_the_package_data_and_the_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = z.read(metadata).decode("utf-8").partition("\n\n")[0].splitlines()
    assert GRAMMAR in names, sorted(names)
    assert not any(n.startswith(("grammar/", "specs/")) for n in names), "data must travel inside the package"
    assert "modelspec/py.typed" in names
    specs = {f"modelspec/specs/{p.relative_to(ROOT / 'specs').as_posix()}" for p in (ROOT / "specs").rglob("*.nnspec")}
    assert specs <= names, sorted(specs - names)
    assets = {f"modelspec/assets/{p.name}" for p in (ROOT / "modelspec" / "assets").glob("*") if p.is_file()}
    assert assets <= names, sorted(assets - names)
    assert metadata.replace("METADATA", "licenses/LICENSE") in names
    assert "License-Expression: MIT" in fields and "License-File: LICENSE" in fields
    assert not [f for f in fields if f.startswith("Classifier: License ::")], "the SPDX expression says it"


def test_wheel_runs_from_a_fresh_environment(installed):
    env_dir, elsewhere, env = installed
    python = env_dir / "bin" / "python"
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


def test_the_installed_examples_come_from_the_package(installed):
    env_dir, elsewhere, env = installed
    script = env_dir / "bin" / "modelspec"
    run = lambda *args, stdin=None: subprocess.run([str(script), *args], cwd=elsewhere, env=env, input=stdin,
                                                   capture_output=True, text=True, timeout=120)
    res = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                          "from modelspec.examples import folder; print(folder())"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.strip().startswith(str(env_dir)), res.stdout + res.stderr

    listed = run("examples")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert "cnn" in names and "tutorials/conv" in names
    assert len(names) == len(list((ROOT / "specs").rglob("*.nnspec")))

    cnn = run("examples", "cnn")
    assert cnn.stdout == (ROOT / "specs" / "cnn.nnspec").read_text(encoding="utf-8"), cnn.stderr
    checked = run("check", "-", stdin=cnn.stdout)  # modelspec examples cnn | modelspec check -
    assert checked.returncode == 0, checked.stderr
    assert "ok (CNN -> [B, 10]" in checked.stdout


def _build_here() -> bool:
    try:
        import build  # noqa: F401
    except ImportError:
        return False
    return _setuptools_here()


def test_the_sdist_holds_what_its_tests_need(source, tmp_path):
    if not _build_here():
        pytest.skip(f"needs build and setuptools>={_setuptools_needed()} here (pip install -e '.[test]')")
    res = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                          "."], cwd=source, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (sdist,) = tmp_path.glob("modelspec-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.partition("/")[2] for n in tar.getnames()}
    wanted = set(SDIST_FILES) | {p.relative_to(source).as_posix() for folder in SDIST_FOLDERS
                                 for p in (source / folder).rglob("*") if p.is_file()}
    assert wanted <= names, sorted(wanted - names)
    assert not [n for n in names if n.endswith(".pyc")]


def _version() -> str:
    from modelspec.version import __version__

    return __version__
