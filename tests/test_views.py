"""The views of every bundled spec are golden, like its printed code.

``tests/views/`` holds, for each ``specs/NAME.nnspec`` (and ``specs/tutorials/NAME.nnspec``, under
``KIND/tutorials/``), what these commands print:

    summary/NAME.txt    modelspec summary FILE            (batch 1, every depth)
    summary/NAME.json   modelspec summary FILE --json
    graph/NAME.dot      modelspec graph FILE              (DOT, folded as --depth auto folds a deep model)
    graph/NAME.mmd      modelspec graph FILE --format mermaid
    explain/NAME.txt    modelspec codegen FILE --explain  (Python, kept as .txt so that ruff leaves it alone)

and ``fmt/CASE.in.nnspec`` beside ``fmt/CASE.out.nnspec``: specs that ``modelspec fmt`` must really
reformat, and what it makes of them. (That fmt leaves each bundled spec as it is, is
``tests/test_fmt.py::test_bundled_spec_is_canonical``.)

The files are made with the Python API, and `test_the_command_line_prints_the_views` checks that
the commands print the same bytes. After an intended change, re-bless them with
``MODELSPEC_BLESS=1 .venv/bin/python -m pytest tests/test_views.py`` and review the diff.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from conftest import ROOT, SPECS, assert_golden, spec_ids, spec_name
from modelspec import elaborate_spec, format_spec, generate_code, summarize, to_dot, to_mermaid
from modelspec.cli import main
from test_fmt import check as check_fmt

VIEWS = ROOT / "tests" / "views"


@dataclass(frozen=True)
class View:
    folder: str
    suffix: str
    render: Callable  # the elaborated spec -> the text
    command: tuple[str, ...]  # the command line that prints the same text; FILE goes in place of "{}"

    def path(self, spec):
        return VIEWS / self.folder / f"{spec_name(spec)}{self.suffix}"

    @property
    def id(self):
        return f"{self.folder}{self.suffix}"


SPEC_VIEWS = [
    View("summary", ".txt", lambda g: summarize(g).table(with_error=False) + "\n", ("summary", "{}")),
    View("summary", ".json", lambda g: summarize(g).to_json() + "\n", ("summary", "{}", "--json")),
    View("graph", ".dot", to_dot, ("graph", "{}")),
    View("graph", ".mmd", to_mermaid, ("graph", "{}", "--format", "mermaid")),
    View("explain", ".txt", lambda g: generate_code(g, explain=True), ("codegen", "{}", "--explain")),
]
FMT_CASES = sorted((VIEWS / "fmt").glob("*.in.nnspec"))


@functools.cache
def graph_of(spec):
    return elaborate_spec(spec)


@pytest.mark.parametrize("view", SPEC_VIEWS, ids=[v.id for v in SPEC_VIEWS])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_view_matches_golden(spec, view):
    text = view.render(graph_of(spec))
    assert str(ROOT) not in text, "a path of this machine in the view"
    assert_golden(view.path(spec), text)


def test_every_view_file_belongs_to_a_spec():
    expected = {v.path(s) for v in SPEC_VIEWS for s in SPECS}
    folders = {v.folder for v in SPEC_VIEWS}
    stale = sorted(str(p.relative_to(VIEWS)) for f in folders for p in (VIEWS / f).rglob("*")
                   if p.is_file() and p not in expected)
    assert not stale, f"view files without a spec or a view: {stale}"


@pytest.mark.parametrize("spec", ["cnn", "resnet18", "two_inputs"])
def test_the_command_line_prints_the_views(spec, capsys):
    path = ROOT / "specs" / f"{spec}.nnspec"
    for view in SPEC_VIEWS:
        assert main([str(path) if a == "{}" else a for a in view.command]) == 0
        assert capsys.readouterr().out == view.render(graph_of(path)), f"modelspec {' '.join(view.command)}"


# ---------------------------------------------------------------- fmt
def test_there_are_fmt_cases():
    assert len(FMT_CASES) >= 5
    orphans = sorted(p.name for p in (VIEWS / "fmt").glob("*.out.nnspec")
                     if not p.with_name(p.name.replace(".out.", ".in.")).exists())
    assert not orphans, f"outputs without an input: {orphans}"


@pytest.mark.parametrize("case", FMT_CASES, ids=[p.name.removesuffix(".in.nnspec") for p in FMT_CASES])
def test_fmt_case(case):
    src = case.read_text(encoding="utf-8")
    out = check_fmt(src, width=True)  # the same meaning, the same comments, stable, within 100 columns
    assert out != src, "a case that fmt leaves as it is shows no reformatting"
    golden = case.with_name(case.name.replace(".in.", ".out."))
    assert_golden(golden, out)
    expected = golden.read_text(encoding="utf-8")
    assert format_spec(expected) == expected, "formatting the expected output changes it"
