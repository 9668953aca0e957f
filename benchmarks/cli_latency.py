"""CLI latency: `modelspec check` and `modelspec codegen` against `python -c "import torch"`.

Each command is a fresh process, as an editor running `check` on save would
start it; the three run in interleaved, shuffled rounds. Wall time and the
child's CPU time (user + sys, from wait4) are both recorded. A separate run
confirms that neither command imports torch.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time

from .measure import Ratio, fmt_time, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modelspec_cmd() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "modelspec")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "modelspec"]


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {err[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


NO_TORCH = r"""
import sys
from modelspec.cli import main
for argv in (["check", "specs/resnet18.nnspec"], ["codegen", "specs/resnet18.nnspec", "-o", sys.argv[1]]):
    main(argv)
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def measure(spec: str, rounds: int, log) -> tuple[list[list[str]], str]:
    ms = _modelspec_cmd()
    cmds = {
        "import torch": [sys.executable, "-c", "import torch"],
        "modelspec check": [*ms, "check", spec],
        "modelspec codegen": [*ms, "codegen", spec],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for argv in cmds.values():  # warm the page cache and the parser tables
        _run(argv)
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    rng = random.Random(0)
    names = list(cmds)
    for _ in range(rounds):
        rng.shuffle(names)
        for n in names:
            w, c = _run(cmds[n])
            wall[n].append(w)
            cpu[n].append(c)
    rows = []
    for n in cmds:
        rw, rc = Ratio.of(wall[n], wall["import torch"]), Ratio.of(cpu[n], cpu["import torch"])
        rows.append([n, fmt_time(statistics.median(wall[n])), rw.short(), fmt_time(statistics.median(cpu[n])),
                     rc.short()])
        log(f"  {n}: {fmt_time(statistics.median(wall[n]))} wall, {rw} of import torch")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", NO_TORCH, os.path.join(tmp, "out.py")], cwd=ROOT,
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    verdict = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"check failed: {out.stderr[-300:]}"
    log(f"  check + codegen in one process: {verdict}")
    return rows, verdict


HEADERS = ["command (ResNet-18)", "wall", "wall / import torch ×", "CPU", "CPU / import torch ×"]


def render(rows, *, markdown=False) -> str:
    return table(HEADERS, rows, markdown=markdown)
