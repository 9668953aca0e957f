"""The error catalog: every way a spec can go wrong, and what the user sees.

Each ``tests/errors/NAME.nnspec`` is a spec with one mistake in it; beside it,
``NAME.expected`` holds exactly what ``SpecError.render()`` prints for it
(``file:line:col: message``, the source line, a caret line, ``hint: ...``),
with the path shown as just the file name. The test compiles each spec with
``modelspec.elaborate_spec`` (parse + elaborate; no torch), and checks that

* a `SpecError` is raised -- any other exception is a bug in modelspec;
* it points inside the file (``err.line``/``err.column``);
* its rendering matches the ``.expected`` file byte for byte; after a syntax
  error, the errors found in the rest of the file (``err.more``) follow it.

To add a case, write ``NAME.nnspec`` and run::

    MODELSPEC_BLESS=1 python -m pytest tests/test_errors.py

which (re)writes the ``.expected`` files from what modelspec prints now
instead of comparing. Read the new or changed files before committing them:
each message must say what is wrong and, where it can, what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import modelspec
from modelspec import SpecError

HERE = Path(__file__).parent / "errors"
CASES = sorted(HERE.glob("*.nnspec"))
BLESS = os.environ.get("MODELSPEC_BLESS") == "1"


def test_the_catalog_is_there():
    assert len(CASES) >= 60
    orphans = sorted(p.name for p in HERE.glob("*.expected") if not p.with_suffix(".nnspec").exists())
    assert not orphans, f".expected files without a spec: {orphans}"


def test_the_catalog_covers_every_stage_every_layer_family_and_every_op():
    import re

    from modelspec.layers import CATALOG
    from modelspec.ops import OPS

    stems = [p.stem for p in CASES]
    for prefixes, least in ((("lex_",), 8), (("syntax_",), 5), (("name_", "undefined_", "duplicate_", "reserved_"), 8),
                            (("arg_", "unknown_"), 8), (("shape_", "op_"), 20), (("block_", "recursive_"), 4),
                            (("import_",), 4), (("limit_",), 5)):
        have = [s for s in stems if s.startswith(prefixes)]
        assert len(have) >= least, f"only {len(have)} cases for {prefixes}"
    firsts = [p.with_suffix(".expected").read_text(encoding="utf-8").split("\n")[0] for p in CASES
              if p.with_suffix(".expected").exists()]
    import modelspec.layers as layers

    assert CATALOG
    for name in ("linear", "conv", "pool", "norm", "activation", "embedding", "recurrent", "transformer"):
        family = getattr(layers, name, None)
        if family is None:
            continue
        names = {layer.name for layer in family.LAYERS}
        assert any(re.search(rf"\b({'|'.join(names)}) `", f) for f in firsts), f"no case for the {name} layers"
    for op in OPS:
        assert any(re.search(rf"(^|[\s.]){op}\(\.\.\.\)", f) for f in firsts), f"no case for the op {op}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_error(path: Path):
    if path.stem.startswith("warn_"):  # a warning case: it compiles, with exactly this one warning
        graph = modelspec.elaborate_spec(path)
        assert len(graph.warnings) == 1, [w.render() for w in graph.warnings]
        err = graph.warnings[0]
        assert err.name in path.stem.replace("_", "-"), f"{path.stem} holds a {err.name} warning"
    else:
        with pytest.raises(SpecError) as info:
            modelspec.elaborate_spec(path)
        err = info.value

    # it points inside the file, or inside a file it imports
    where = Path(err.path)
    assert where == path or path.name.startswith("import_"), err.path
    # lines as the parser counts them (the lex_* cases hold CR LF, a BOM, a form feed, a byte that is not UTF-8)
    lines = where.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff").split("\n")
    assert err.line is not None and err.column is not None, "the error has no place"
    assert 1 <= err.line <= len(lines), f"line {err.line} is outside the file ({len(lines)} lines)"
    assert 1 <= err.column <= len(lines[err.line - 1]) + 1, f"column {err.column} is outside line {err.line}"

    err.path = os.path.relpath(where, HERE)
    for more in err.more:  # the rest of the file, checked past a syntax error
        more.path = os.path.relpath(more.path, HERE) if more.path else more.path
    text = "".join(e.render() + "\n" for e in [err, *err.more])
    assert "Traceback" not in text
    assert err.hint, "every message says what to do about it: this one has no hint"
    expected = path.with_suffix(".expected")
    if BLESS:
        expected.write_text(text, encoding="utf-8")
        return
    assert expected.exists(), f"no {expected.name}; run with MODELSPEC_BLESS=1 to write it"
    assert text == expected.read_text(encoding="utf-8")
