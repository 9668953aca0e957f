"""The parser's LALR tables ship as JSON (grammar/nnspec.tables.json), and nothing is ever unpickled.

Lark's own cache is a pickle, and modelspec used to keep one in ~/.cache, or in the
temporary folder where that was not writable: anyone who could write there ran code
as the next user. Now the tables are generated ahead of time (`make tables`) and read
as JSON, which holds data only. Checked here: the shipped tables are those of the
grammar; a parser loaded from them parses as one built from the grammar; a pickle
planted wherever the old cache was read is never opened, and nothing is written; stale,
missing or broken tables fall back to the grammar; and pickle is not called at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import lark
import pytest
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from conftest import ROOT, SPECS, spec_ids
from modelspec import parse as P
from modelspec.version import __version__

ERROR_SPECS = sorted((ROOT / "tests" / "errors").glob("*.nnspec"))
SMALL = "model M(x: [B, 3]) { fc = Linear(_, 2)  # a comment\n}"

# A check of a small spec in a fresh interpreter: both parsers, from the modelspec under test.
CHECK = r'''
import sys
import modelspec
from modelspec.parse import _comment_parser, _parser, parse, parse_with_comments
assert modelspec.__file__.startswith(sys.argv[1]), modelspec.__file__
assert parse(sys.argv[2]).models()[0].name == "M"
assert parse_with_comments(sys.argv[2])[1] == [(1, 41, "# a comment")], parse_with_comments(sys.argv[2])[1]
print("ok", _parser().source_path, _comment_parser().source_path)
'''


def shape(node):
    """A parse tree as plain data, with every position: what two parsers must agree on."""
    if node is None:  # an absent [optional] (maybe_placeholders)
        return None
    if isinstance(node, Token):
        return (node.type, str(node), node.line, node.column, node.end_line, node.end_column, node.start_pos,
                node.end_pos)
    assert isinstance(node, Tree), node
    meta = None if node.meta.empty else (node.meta.line, node.meta.column, node.meta.end_line, node.meta.end_column)
    return (str(node.data), meta, [shape(child) for child in node.children])


def outcome(parser: Lark, text: str):
    """The tree of `text`, or where and how the parse failed."""
    try:
        return shape(parser.parse(text))
    except UnexpectedInput as exc:
        return (type(exc).__name__, exc.line, exc.column, sorted(getattr(exc, "expected", None) or ()),
                str(getattr(exc, "token", "")))


@pytest.fixture(scope="module")
def fresh() -> Lark:
    """A parser built from the grammar text, with no tables and no cache."""
    return Lark(P.grammar_text(), **P._TABLE_OPTIONS, postlex=P.StatementIf(), propagate_positions=True)


def shipped() -> dict:
    return json.loads(P._tables_file().read_text(encoding="utf-8"))


def need_current_tables():
    made_by = shipped()["lark"]
    if made_by != lark.__version__:
        pytest.skip(f"the shipped tables were made by lark {made_by}, this is lark {lark.__version__} (so the "
                    f"parser is built from the grammar here); `make tables` regenerates them")


# ------------------------------------------------------------------ the shipped tables
def test_the_shipped_tables_are_those_of_the_grammar():
    tables = shipped()
    want = hashlib.sha256(P.grammar_text().encode("utf-8")).hexdigest()
    assert tables["grammar_sha256"] == want, \
        "grammar/nnspec.tables.json was made from another grammar: run `make tables` after editing the grammar"


def test_the_shipped_tables_ship_in_the_wheel_beside_the_grammar():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folder = ROOT / setuptools["package-dir"]["modelspec.grammar"]
    shipped_files = {p.name for pattern in setuptools["package-data"]["modelspec.grammar"]
                     for p in folder.glob(pattern)}
    assert {"nnspec.lark", P.TABLES_NAME} <= shipped_files, shipped_files


def test_the_parsers_load_from_the_tables():
    need_current_tables()
    assert P._shipped_tables() is not None
    # a parser loaded from tables says so; one built from the grammar says "<string>"
    assert P._parser().source_path == "<deserialized>"
    assert P._comment_parser().source_path == "<deserialized>"


@pytest.mark.parametrize("path", SPECS, ids=spec_ids(SPECS))
def test_the_tables_parse_each_bundled_spec_as_the_grammar_does(path, fresh):
    need_current_tables()
    loaded = P._new_parser()
    assert loaded.source_path == "<deserialized>"
    text = path.read_text(encoding="utf-8")
    got, want = outcome(loaded, text), outcome(fresh, text)
    assert isinstance(want, tuple) and isinstance(want[2], list), f"{path.name} does not parse: {want}"
    assert got == want


def test_the_tables_fail_each_error_spec_as_the_grammar_does(fresh):
    """Where a parse fails (at which token, expecting what) comes from the tables too, and words the errors."""
    need_current_tables()
    assert len(ERROR_SPECS) >= 50
    loaded = P._new_parser()
    differ = []
    for path in ERROR_SPECS:
        text = path.read_bytes().decode("utf-8", "replace")
        if outcome(loaded, text) != outcome(fresh, text):
            differ.append(path.name)
    assert not differ, differ


def test_the_comment_parser_collects_comments():
    assert P.parse_with_comments(SMALL)[1] == [(1, 41, "# a comment")]


def test_the_json_keeps_int_keys():
    value = {"states": {0: {1: (0, 2)}, 5: {}}, "empty": {}, "names": ["a", ("b", 3)]}
    back = json.loads(json.dumps(P._to_json(value)), object_hook=P._from_json)
    assert back == {"states": {0: {1: [0, 2]}, 5: {}}, "empty": {}, "names": ["a", ["b", 3]]}
    with pytest.raises(TypeError):
        P._to_json({1: "a", "b": 2})  # JSON would turn the 1 into "1"


# ------------------------------------------------------------------ stale, missing or broken tables
def _stale(tables):
    tables["grammar_sha256"] = "0" * 64


def _other_lark(tables):
    tables["lark"] = "0.0.1"


def _unloadable(tables):
    tables["data"] = {"parser": {}, "rules": [], "options": {}}


BROKEN = {"stale grammar": _stale, "other lark": _other_lark, "does not load": _unloadable,
          "missing": None, "not JSON": "{\"grammar_sha256\": ", "not a dict": "[1, 2]"}


@pytest.mark.parametrize("how", list(BROKEN))
def test_bad_tables_fall_back_to_the_grammar_and_write_nothing(how, tmp_path, monkeypatch, fresh):
    tables_file = tmp_path / "grammar" / P.TABLES_NAME
    tables_file.parent.mkdir()
    spoil = BROKEN[how]
    if callable(spoil):
        P.write_tables(tables_file)
        tables = json.loads(tables_file.read_text(encoding="utf-8"))
        spoil(tables)
        tables_file.write_text(json.dumps(tables), encoding="utf-8")
    elif spoil is not None:
        tables_file.write_text(spoil, encoding="utf-8")
    monkeypatch.setattr(P, "_tables_file", lambda: tables_file)
    home = tmp_path / "home"
    for name, folder in {"HOME": home, "XDG_CACHE_HOME": home / ".cache", "TMPDIR": tmp_path / "tmp"}.items():
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # gettempdir() remembers the first answer
    before = _files(tmp_path)

    parser = P._new_parser()
    assert parser.source_path == "<string>", "built from the grammar, not loaded from bad tables"
    for path in SPECS:
        text = path.read_text(encoding="utf-8")
        assert outcome(parser, text) == outcome(fresh, text), path.name
    assert _files(tmp_path) == before, "building the parser wrote files"
    assert not list((ROOT / "grammar").glob("*.cache")) and not list((ROOT / "modelspec").glob("*.cache"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ nothing is unpickled, nothing is written
class Planted:
    """Unpickling this creates `marker`: the code an attacker's pickle would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _plant(path: Path, marker: Path) -> None:
    """A cache file as lark writes one (a hash line, then pickles), whose first pickle runs code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(P.grammar_text().encode("utf-8")).hexdigest().encode()
    path.write_bytes(digest + b"\n" + pickle.dumps(Planted(str(marker))) + pickle.dumps({}))


def _check(home: Path, xdg: Path | None, tmp: Path, prog: str = CHECK, root: Path = ROOT):
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "PYTHONSTARTUP")}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(root))
    if xdg is not None:
        env["XDG_CACHE_HOME"] = str(xdg)
    return subprocess.run([sys.executable, "-c", prog, str(root), SMALL], capture_output=True, text=True,
                          env=env, cwd=tmp, timeout=120)


# where the old code looked: XDG_CACHE_HOME, else ~/.cache; when that could not be written, the temporary folder
VARIANTS = ["xdg cache", "home cache", "unwritable cache", "cache not a folder"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_planted_cache_pickle_is_never_opened(variant, tmp_path, root=ROOT):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir()
    xdg = None if variant == "home cache" else tmp_path / "xdg"
    marker = tmp_path / "PWNED"
    name = f"nnspec-{__version__}.lark.cache"
    places = [home / ".cache" / "modelspec" / name, tmp / name]
    if xdg is not None:
        places.append(xdg / "modelspec" / name)
    for place in places:
        _plant(place, marker)
    locked = []
    if variant == "unwritable cache":  # the old code probed the folder, found it unwritable, and used TMPDIR
        locked = [xdg / "modelspec", xdg]
    elif variant == "cache not a folder":  # the same fallback, for root too (root writes a 0o500 folder)
        xdg = tmp_path / "xdg-file"
        xdg.write_text("not a folder")
    for folder in locked:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    before = _files(tmp_path)
    try:
        res = _check(home, xdg, tmp, root=root)
    finally:
        for folder in reversed(locked):
            folder.chmod(0o700)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split()[0] == "ok", res.stdout
    assert not marker.exists(), "a planted pickle was unpickled: its code ran"
    assert _files(tmp_path) == before, "parsing wrote or changed files"


NO_PICKLE = r'''
import pickle, sys
calls = []

def refuse(*args, **kwargs):
    calls.append("pickle")
    raise AssertionError("modelspec unpickled something")

pickle.load = pickle.loads = refuse
pickle.Unpickler = refuse
''' + CHECK + r'''
print("pickle calls:", len(calls))
'''


def test_parsing_never_calls_pickle(tmp_path, root=ROOT):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir()
    # a cache file where the old code read one, so that code would have called pickle.load
    _plant(home / ".cache" / "modelspec" / f"nnspec-{__version__}.lark.cache", tmp_path / "PWNED")
    res = _check(home, None, tmp, prog=NO_PICKLE, root=root)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].split()[0] == "ok" and lines[-1] == "pickle calls: 0", res.stdout + res.stderr[-2000:]
    assert not (tmp_path / "PWNED").exists()
