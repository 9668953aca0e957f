"""A non-editable install works: the wheel carries the grammar, the CLI runs from elsewhere."""

import os
import subprocess
import sys

from conftest import ROOT


def test_wheel_install_runs_from_another_directory(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("modelspec-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    prog = ("import modelspec, sys; from modelspec.cli import main; "
            "assert modelspec.__file__.startswith(sys.argv[1]), modelspec.__file__; sys.exit(main(sys.argv[2:]))")
    res = subprocess.run([sys.executable, "-c", prog, str(target), "check", str(ROOT / "specs" / "cnn.nnspec")],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "ok (CNN -> [B, 10]" in res.stdout
    assert (target / "modelspec" / "grammar" / "nnspec.lark").exists()
    assert (target / "bin" / "modelspec").exists()
