"""docs/tutorial.md shows real commands and their real output.

Every ```console block in it is a session: each line starting with ``$ `` is a
`modelspec` command, run from the repository's root, and the lines after it,
up to the next command or the end of the block, are what it prints (stdout and
stderr together, in order). ``...`` in a shown line stands for any text, as in
doctest's ELLIPSIS: the tutorial uses it for timings. With MODELSPEC_BLESS=1
the outputs are rewritten from what the commands print now (timings as
``...``), for review as a diff.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import BLESS, ROOT

DOC_PATH = ROOT / "docs" / "tutorial.md"
TIMING = re.compile(r"\d+(\.\d+)? (ms|s)\b")


def sessions(text: str) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """(line of the fence, [(command, shown lines)]) of each ```console block."""
    found, lines = [], text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start, steps = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                if lines[i].startswith("$ "):
                    steps.append((lines[i][2:], []))
                elif steps:
                    steps[-1][1].append(lines[i])
                else:
                    raise AssertionError(f"docs/tutorial.md:{i + 1}: a console block starts with a command ($ ...)")
                i += 1
            found.append((start, steps))
        i += 1
    return found


def run(command: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "modelspec", f"the tutorial runs modelspec alone, not {argv[0]!r}"
    env = dict(os.environ, COLUMNS="100", PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, "-m", "modelspec", *argv[1:]], cwd=ROOT, env=env, timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.stdout.rstrip("\n")


TEXT = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
STEPS = [(line, cmd, shown) for line, steps in sessions(TEXT) for cmd, shown in steps]


def test_the_tutorial_is_there_and_linked_from_the_readme():
    assert DOC_PATH.exists()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/tutorial.md)" in readme and "(docs/language.md)" in readme
    first_screen = "\n".join(readme.split("\n")[:40])
    assert "source .venv/bin/activate" in first_screen and ".venv/bin/modelspec" in first_screen
    assert len(STEPS) >= 10


@pytest.mark.parametrize("line, command, shown", STEPS, ids=[f"{line}:{cmd}" for line, cmd, _ in STEPS])
def test_each_command_prints_what_the_tutorial_shows(line, command, shown):
    if BLESS:
        pytest.skip("MODELSPEC_BLESS=1: test_bless rewrites the outputs")
    got = run(command)
    want = "\n".join(shown).rstrip("\n")
    checker = doctest.OutputChecker()
    assert checker.check_output(want + "\n", got + "\n", doctest.ELLIPSIS), (
        f"docs/tutorial.md:{line}: `{command}` prints something else; re-bless with MODELSPEC_BLESS=1 if "
        f"intended:\n--- shown\n{want}\n--- printed\n{got}")


def test_bless():
    if not BLESS:
        pytest.skip("MODELSPEC_BLESS=1 rewrites the outputs of docs/tutorial.md")
    lines = TEXT.split("\n")
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].startswith("$ ") and any(lines[i] == "$ " + c for _, c, _ in STEPS):
            got = run(lines[i][2:])
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ ") and lines[j].strip() != "```":
                j += 1
            shown = "\n".join(lines[i + 1:j]).rstrip("\n")
            if doctest.OutputChecker().check_output(shown + "\n", got + "\n", doctest.ELLIPSIS):
                out += lines[i + 1:j]  # still true: kept as written, with its "..."
            else:
                got = TIMING.sub(lambda m: f"... {m.group(2)}", got)
                out += got.split("\n") if got else []
            i = j
            continue
        i += 1
    DOC_PATH.write_text("\n".join(out), encoding="utf-8")
