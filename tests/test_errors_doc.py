"""docs/errors.md lists every stable code, each with an example that really gives it.

Each ``### MSxxx name`` section holds an ```nnspec block and a ```console block
with one ``$ modelspec ...`` command about ``example.nnspec``. The test writes
the spec to a temporary folder, runs the command there, and compares what it
prints (stderr, then stdout) with the lines shown; it also checks that the
example's diagnostic has the section's code. MODELSPEC_BLESS=1 rewrites the
shown output.
"""

from __future__ import annotations

import re
import shlex

import pytest

import modelspec
from conftest import BLESS, ROOT
from modelspec.cli import main
from modelspec.diagnostics import diagnose
from modelspec.errors import CODES, WARNING_CODES, SpecError

DOC = ROOT / "docs" / "errors.md"
SECTION = re.compile(r"^### (MS\d{3}) ([\w-]+)\n(.*?)(?=^##|\Z)", re.S | re.M)
BLOCK = re.compile(r"```(nnspec|console)\n(.*?)```", re.S)


def sections(text: str) -> dict[str, tuple[str, str, str, list[str]]]:
    """code -> (name, spec, command, shown lines)."""
    found = {}
    for m in SECTION.finditer(text):
        blocks = dict((kind, body) for kind, body in BLOCK.findall(m.group(3)))
        console = blocks["console"].rstrip("\n").split("\n")
        assert console[0].startswith("$ "), f"{m.group(1)}: the console block starts with the command"
        found[m.group(1)] = (m.group(2), blocks["nnspec"], console[0][2:], console[1:])
    return found


SECTIONS = sections(DOC.read_text(encoding="utf-8"))


def run(command: str, spec: str, folder, monkeypatch, capsys) -> tuple[int, str]:
    (folder / "example.nnspec").write_text(spec, encoding="utf-8")
    monkeypatch.chdir(folder)
    argv = shlex.split(command)
    assert argv[0] == "modelspec"
    capsys.readouterr()
    code = main(argv[1:])
    got = capsys.readouterr()
    return code, (got.err + got.out).rstrip("\n")


def test_every_code_has_its_section_and_no_other():
    assert list(SECTIONS) == list(CODES)
    for code, (name, *_ ) in SECTIONS.items():
        assert name == CODES[code][0], code


def test_every_kind_of_error_has_a_code():
    import modelspec.data
    import modelspec.trainer  # noqa: F401  (their error classes)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    kinds = [SpecError, *subclasses(SpecError)]
    assert len(kinds) >= 10
    for kind in kinds:
        if kind.__name__ != "SpecWarning":
            assert kind.CODE in CODES, kind
    assert len({k.CODE for k in kinds if k.__name__ != "SpecWarning"}) == len(CODES) - len(WARNING_CODES)


@pytest.mark.parametrize("code", list(SECTIONS))
def test_each_example_prints_what_the_page_shows(code, tmp_path, monkeypatch, capsys):
    name, spec, command, shown = SECTIONS[code]
    rc, got = run(command, spec, tmp_path, monkeypatch, capsys)
    warning = code in WARNING_CODES.values()
    assert rc == (0 if warning else 1), got
    if BLESS:
        text = DOC.read_text(encoding="utf-8")
        old = "```console\n$ " + command + "\n" + "".join(line + "\n" for line in shown) + "```"
        new = "```console\n$ " + command + "\n" + got + "\n```"
        start = text.index(f"### {code} ")
        DOC.write_text(text[:start] + text[start:].replace(old, new, 1), encoding="utf-8")
        return
    assert got == "\n".join(shown), f"docs/errors.md, {code}: the example prints something else; re-bless"


@pytest.mark.parametrize("code", list(SECTIONS))
def test_each_example_has_its_code(code, tmp_path, monkeypatch):
    _, spec, command, _ = SECTIONS[code]
    (tmp_path / "example.nnspec").write_text(spec, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    if command.startswith("modelspec train"):
        with pytest.raises(SpecError) as info:
            modelspec.train("example.nnspec", progress=False, echo=lambda line: None)
        assert info.value.code == code
        return
    assert code in [d.code for d in diagnose("example.nnspec")]
