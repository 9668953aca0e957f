"""`modelspec examples`: the bundled specs, listed and printed, so that a pip install has them too.

Every spec of specs/ is an example, word for word; each one stands alone (written by
itself into an empty folder, it checks: it imports nothing and reads no data file
beside it); and every `--help` example works after a pip install, starting from a
spec that `modelspec examples` writes, never from a path in the repository.
tests/test_install.py runs the command from an installed wheel.
"""

from __future__ import annotations

import fnmatch
import re

import pytest

from conftest import ROOT, SPECS, spec_name
from modelspec.cli import COMMANDS, main
from modelspec.examples import examples

NAMES = list(examples())
WRITE = re.compile(r"modelspec examples (\S+) > (\S+)")  # an example written to a file
PIPE = re.compile(r"modelspec examples (\S+) \|")  # an example piped into a command
SPEC_FILE = re.compile(r"[\w.*/-]+\.nnspec")
WRITTEN = re.compile(r"-o ([\w.*/-]+\.nnspec)")  # a spec the line itself writes (modelspec from-torch -o)
OWN_SPECS = {"messy.nnspec", "tidy.nnspec", "spec.nnspec"}  # the examples that stand for a user's own spec


def test_every_bundled_spec_is_an_example():
    assert NAMES == [spec_name(p) for p in SPECS]
    for path, file in zip(SPECS, examples().values()):
        assert file.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), spec_name(path)


@pytest.mark.parametrize("name", NAMES)
def test_each_example_stands_alone(name, tmp_path, capsys):
    assert main(["examples", name]) == 0
    alone = tmp_path / "alone.nnspec"
    alone.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["check", str(alone)]) == 0, f"{name}, written by itself, does not check:\n{capsys.readouterr().err}"


def test_the_listing_names_each_example_and_says_what_it_is(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # the width of a pipe, whatever terminal the tests run in
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = dict(re.fullmatch(r"(\S+) +(.*)", line).groups() for line in lines)
    assert list(listed) == NAMES
    assert listed["cnn"] == "The CNN of the tutorials: two convolutions, then a classifier"
    assert all(listed.values()), "an example opens with a comment saying what it is"


@pytest.mark.parametrize("given, path", [("cnn", "cnn.nnspec"), ("cnn.nnspec", "cnn.nnspec"),
                                         ("tutorials/conv", "tutorials/conv.nnspec")])
def test_an_example_prints_as_it_is(given, path, capsys):
    assert main(["examples", given]) == 0
    assert capsys.readouterr().out == (ROOT / "specs" / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("given, hint", [
    ("cnnn", "did you mean cnn?"),
    ("conv", "the nearest examples: tutorials/conv, tutorials/conv_transpose; all of them: `modelspec examples`"),
    ("zzz", f"none of the {len(NAMES)} examples is near 'zzz': they are listed in `modelspec examples`"),
])
def test_an_unknown_example_is_one_line_with_the_near_names(given, hint, capsys):
    assert main(["examples", given]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"modelspec examples: no example {given!r}; {hint}\n"


def _help_examples(command: list[str], capsys) -> list[str]:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out.split("examples:\n", 1)[1]
    return [line.strip() for line in text.splitlines() if "modelspec " in line]


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS], ids=["modelspec", *COMMANDS])
def test_the_help_examples_work_after_a_pip_install(command, capsys):
    """Each spec an example reads is one an earlier line wrote with `modelspec examples`, or a user's own."""
    written = set()
    for line in _help_examples(command, capsys):
        assert "specs/" not in line, f"a pip install has no specs/ folder: {line}"
        for name in [m[0] for m in WRITE.findall(line)] + PIPE.findall(line):
            assert name in NAMES, f"no example {name!r}: {line}"
        made = {file for _, file in WRITE.findall(line)} | set(WRITTEN.findall(line))
        for file in set(SPEC_FILE.findall(line)) - made - OWN_SPECS:
            assert any(fnmatch.fnmatch(w, file) for w in written), f"{file} comes from nowhere: {line}"
        written |= made
