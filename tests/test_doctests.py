"""The examples in modelspec's docstrings run, and say what they show.

Public functions carry a docstring with an example; doctest holds each one to
its printed result, so an example cannot drift from the code it documents.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import modelspec

ROOT = Path(__file__).resolve().parent.parent
# __main__ runs the command line when imported
MODULES = sorted(m.name for m in pkgutil.walk_packages(modelspec.__path__, "modelspec.")
                 if m.name != "modelspec.__main__")
# a module of an optional extra -> what it imports: skipped where that is absent
EXTRAS = {"modelspec.lsp": "pygls", "modelspec.serve": "starlette"}
ABSENT = {name for name, needs in EXTRAS.items() if importlib.util.find_spec(needs) is None}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    if name in ABSENT:
        pytest.skip(f"needs {EXTRAS[name]}, of an optional extra")
    monkeypatch.chdir(ROOT)  # examples name bundled specs by their path in the repository
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run doctest -v)"


def test_there_are_examples():
    finder = doctest.DocTestFinder()
    count = sum(len(t.examples) for name in MODULES if name not in ABSENT
                for t in finder.find(importlib.import_module(name)))
    assert count >= 30, count
