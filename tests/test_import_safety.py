"""Imports read specs, and nothing else: no secret, no device, nothing outside the spec's own tree.

A spec may come from someone else, and an error quotes a line of the file it
is about; so an import that reached /etc/shadow through a symlink would print
a line of it, one that reached /dev/zero would fill memory, and a FIFO would
hang. Every such import here is refused at the import statement (file, line,
column, hint) before the file is opened, and the first file too must be a
regular file. The cases that could hang or fill memory if the checks were
missing run in a fresh Python with a timeout; no test measures a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelspec.pipeline
from conftest import ROOT
from modelspec import Limits, elaborate_spec, generate_code
from modelspec.api import code_cache
from modelspec.cli import main
from modelspec.errors import SpecImportError, SpecLimitError
from modelspec.pipeline import read_spec

SECRET = "root:$6$not-a-spec-SECRET-LINE:19000:0:99999:7:::"
BLOCK = "block Head(n) {\n    fc = Linear(_, n)\n}\n"
MODEL = "model M(x: [B, 4]) {\n    head = Head(2)\n}\n"
needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32",
                                    reason="symlinks need privileges or are missing here")
needs_fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
TIMEOUT = 20  # seconds for a fresh Python that must refuse, not hang; far more than it needs


@pytest.fixture
def tree(tmp_path):
    """tmp_path/tree, the spec's own folder (with lib/head.nnspec), beside tmp_path/out, a folder outside it."""
    (tmp_path / "tree" / "lib").mkdir(parents=True)
    (tmp_path / "tree" / "lib" / "head.nnspec").write_text(BLOCK)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "head.nnspec").write_text(BLOCK)
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    return tmp_path / "tree"


def main_spec(folder: Path, line: str, name: str = "main.nnspec") -> Path:
    """A spec in ``folder`` whose second line is ``line`` (an import), at column 5 after a comment and spaces."""
    path = folder / name
    path.write_text(f"# uses Head\n    {line}\n{MODEL}")
    return path


def refused_at_import(spec: Path, message: str, kind=SpecImportError, limits: Limits | None = None) -> str:
    """``spec`` is refused with ``message``, located at its import (line 2, column 5) with a hint; the text."""
    with pytest.raises(kind) as info:
        elaborate_spec(spec, limits=limits)
    err = info.value
    assert (err.path, err.line, err.column) == (str(spec), 2, 5), err.render()
    assert message in err.message, err.render()
    assert err.hint, err.render()
    text = err.render()
    lines = text.split("\n")
    assert lines[0] == f"{spec}:2:5: {err.message}", text
    shown = lines[1].strip()
    assert shown.startswith(("import ", "from ")), text
    if shown.endswith("..."):  # a line longer than errors.SHOWN_WIDTH (a long temporary path), cut where it is long
        assert lines[2].startswith("        ^^^^^^^"), text
    else:
        assert lines[2] == "        " + "^" * len(shown), text
    assert lines[-1].startswith("hint: "), text
    assert SECRET not in text
    return text


def fresh_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# the API on each path in a fresh Python: (error class, message, line, column) or "ok", as JSON
PROBE = """
import json, sys
from modelspec import SpecError, elaborate_spec
from pathlib import Path
out = {}
for p in sys.argv[1:]:
    try:
        elaborate_spec(Path(p))
        out[p] = "ok"
    except SpecError as e:
        out[p] = [type(e).__name__, e.message, e.line, e.column, bool(e.hint)]
print(json.dumps(out))
"""


def probe(paths, cwd: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", PROBE, *map(str, paths)], cwd=cwd, capture_output=True, text=True,
                         timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


# ------------------------------------------------------------------ what still works
def test_an_ordinary_import_still_works(tree):
    spec = main_spec(tree, 'from "lib/head.nnspec" import Head')
    assert elaborate_spec(spec).root.children[0].name == "head"


def test_a_sibling_through_dotdot_inside_the_tree_is_fine(tree):
    (tree / "sub").mkdir()
    (tree / "sub" / "uses.nnspec").write_text('import "../lib/head.nnspec"\n')
    assert elaborate_spec(main_spec(tree, 'import "sub/uses.nnspec"')).name == "M"


@needs_symlinks
def test_a_link_inside_the_tree_to_a_spec_is_fine(tree):
    (tree / "head.nnspec").symlink_to(tree / "lib" / "head.nnspec")
    assert elaborate_spec(main_spec(tree, 'import "head.nnspec"')).name == "M"


def test_the_first_file_may_have_any_name(tree):
    """Whoever runs modelspec chose the first file: only its type is checked, not its suffix."""
    spec = tree / "model.txt"
    spec.write_text('import "lib/head.nnspec"\n' + MODEL)
    assert elaborate_spec(spec).name == "M"


def test_the_api_cache_still_checks_imports(tree):
    """The cache re-reads imports to tell a stale entry; a link swapped in is then refused, not read."""
    spec = main_spec(tree, 'import "head.nnspec"')
    (tree / "head.nnspec").write_text(BLOCK)
    code_cache.clear()
    first = generate_code(spec)
    assert generate_code(spec) == first and code_cache.hits == 1
    if hasattr(os, "symlink") and sys.platform != "win32":
        (tree / "head.nnspec").unlink()
        (tree / "head.nnspec").symlink_to(tree.parent / "secret.txt")
        with pytest.raises(SpecImportError) as info:
            generate_code(spec)
        assert "not a .nnspec file" in info.value.message and SECRET not in info.value.render()


# ------------------------------------------------------------------ links to what is not a spec
@needs_symlinks
def test_a_link_to_a_file_that_is_not_a_spec_is_refused_unquoted(tree, capsys):
    (tree / "shadow.nnspec").symlink_to(tree.parent / "secret.txt")
    spec = main_spec(tree, 'import "shadow.nnspec"')
    refused_at_import(spec, "cannot import 'shadow.nnspec': it is a link to a file that is not a .nnspec file")
    assert main(["check", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert f"{spec}:2:5: cannot import 'shadow.nnspec'" in err and SECRET not in out + err


@needs_symlinks
def test_a_link_to_a_spec_outside_the_tree_is_refused(tree):
    (tree / "head.nnspec").symlink_to(tree.parent / "out" / "head.nnspec")
    refused_at_import(main_spec(tree, 'import "head.nnspec"'), "it is outside the folder of the spec being compiled")


@needs_symlinks
def test_a_link_to_proc_self_environ_is_refused(tree):
    if not os.path.exists("/proc/self/environ"):
        pytest.skip("no /proc here")
    (tree / "env.nnspec").symlink_to("/proc/self/environ")
    text = refused_at_import(main_spec(tree, 'import "env.nnspec"'), "it leads into /proc, which holds no specs")
    assert "PATH=" not in text and os.environ.get("HOME", "\0") not in text
    # the first file too: /proc files pass for regular files of size 0
    with pytest.raises(SpecImportError, match="under /proc") as info:
        elaborate_spec(tree / "env.nnspec")
    assert info.value.path == str(tree / "env.nnspec") and info.value.hint


@needs_symlinks
def test_a_linked_folder_back_to_itself_is_a_cycle_not_an_endless_walk(tree):
    (tree / "again").symlink_to(tree)
    refused_at_import(main_spec(tree, 'import "again/main.nnspec"'), "import cycle: main.nnspec -> main.nnspec")


# ------------------------------------------------------------------ staying inside the tree
def test_an_absolute_path_is_refused_even_inside_a_root(tree):
    target = tree.parent / "out" / "head.nnspec"
    spec = main_spec(tree, f'import "{target.as_posix()}"')
    for limits in (None, Limits(import_roots=[tree.parent / "out"])):
        text = refused_at_import(spec, "an import path must be relative", limits=limits)
        assert "relative to the importing file" in text and "--import-root" in text


def test_dotdot_out_of_the_tree_is_refused_unless_a_root_allows_it(tree, capsys):
    spec = main_spec(tree, 'import "../out/head.nnspec"')
    text = refused_at_import(spec, "cannot import '../out/head.nnspec': it is outside the folder of the spec")
    assert "--import-root" in text
    probing = main_spec(tree, 'import "../secret.txt.nnspec"', "probe.nnspec")  # no such file, but outside first
    refused_at_import(probing, "outside the folder")
    assert elaborate_spec(spec, limits=Limits(import_roots=[tree.parent / "out"])).name == "M"
    assert elaborate_spec(spec, limits=Limits(import_roots=str(tree.parent / "out"))).name == "M"
    # the command line: refused, then allowed with --import-root (repeatable)
    assert main(["check", str(spec)]) == 1
    assert f"{spec}:2:5: cannot import '../out/head.nnspec': it is outside" in capsys.readouterr().err
    assert main(["check", "--import-root", str(tree / "lib"), "--import-root", str(tree.parent / "out"),
                 str(spec)]) == 0
    assert capsys.readouterr().out.startswith(f"{spec}: ok")


def test_import_root_must_be_a_folder(tree, capsys):
    with pytest.raises(SystemExit):
        main(["check", "--import-root", str(tree / "nope"), str(main_spec(tree, 'import "lib/head.nnspec"'))])
    assert "not a folder" in capsys.readouterr().err


def test_nested_files_answer_to_the_first_files_roots(tree):
    """A file deeper in the tree may reach up with .. within the tree, but not out of it."""
    (tree / "lib" / "uses.nnspec").write_text('# up\nimport "../../out/head.nnspec"\n')
    with pytest.raises(SpecImportError) as info:
        elaborate_spec(main_spec(tree, 'import "lib/uses.nnspec"'))
    err = info.value
    assert (Path(err.path), err.line, err.column) == (tree / "lib" / "uses.nnspec", 2, 1), err.render()
    assert "outside the folder" in err.message and err.hint
    # the first file deeper down makes a smaller tree: lib/ alone, where ../ leaves it
    (tree / "lib" / "up.nnspec").write_text('import "../lib/head.nnspec"\n' + MODEL)  # back inside lib: fine
    assert elaborate_spec(tree / "lib" / "up.nnspec").name == "M"
    refused_at_import(main_spec(tree / "lib", 'import "../lib2.nnspec"'), "outside the folder")


def test_spec_text_imports_stay_in_the_working_directory(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert elaborate_spec('import "lib/head.nnspec"\n' + MODEL).name == "M"
    with pytest.raises(SpecImportError) as info:
        elaborate_spec('\n  import "../out/head.nnspec"\n' + MODEL)
    assert (info.value.path, info.value.line, info.value.column) == (None, 2, 3)
    assert "outside the folder" in info.value.message and info.value.hint


# ------------------------------------------------------------------ devices, FIFOs, sizes
@needs_dev_zero
@needs_symlinks
def test_dev_zero_is_refused_before_it_is_read(tree):
    (tree / "zero.nnspec").symlink_to("/dev/zero")
    spec = main_spec(tree, 'import "zero.nnspec"')
    got = probe(["/dev/zero", tree / "zero.nnspec", spec], cwd=tree)
    device = ["SpecImportError", "this is a device, not a spec file", None, None, True]
    assert got["/dev/zero"] == got[str(tree / "zero.nnspec")] == device
    assert got[str(spec)] == ["SpecImportError", "cannot import 'zero.nnspec': it leads into /dev, which holds "
                              "no specs", 2, 5, True]
    res = fresh_cli("check", "/dev/zero", cwd=tree)
    assert res.returncode == 1 and res.stderr.startswith("/dev/zero: this is a device, not a spec file\nhint: ")


@needs_fifos
def test_a_fifo_is_refused_without_hanging(tree):
    os.mkfifo(tree / "pipe.nnspec")
    spec = main_spec(tree, 'import "pipe.nnspec"')
    got = probe([tree / "pipe.nnspec", spec], cwd=tree)
    assert got[str(tree / "pipe.nnspec")] == ["SpecImportError", "this is a FIFO (named pipe), not a spec file",
                                              None, None, True]
    assert got[str(spec)] == ["SpecImportError", "cannot import 'pipe.nnspec': it is a FIFO (named pipe), not a spec "
                              "file", 2, 5, True]
    res = fresh_cli("check", "pipe.nnspec", "main.nnspec", cwd=tree)
    assert res.returncode == 1
    assert "pipe.nnspec: this is a FIFO (named pipe), not a spec file\nhint: " in res.stderr
    assert "main.nnspec:2:5: cannot import 'pipe.nnspec': it is a FIFO" in res.stderr


def test_a_directory_named_like_a_spec_is_refused(tree):
    (tree / "dir.nnspec").mkdir()
    refused_at_import(main_spec(tree, 'import "dir.nnspec"'), "it is a directory, not a spec file")


def test_an_import_over_the_size_limit_is_refused_at_the_import(tree, monkeypatch):
    monkeypatch.setattr(modelspec.pipeline, "MAX_FILE_BYTES", 100)
    (tree / "big.nnspec").write_text(BLOCK + "#" * 200 + "\n")
    text = refused_at_import(main_spec(tree, 'import "big.nnspec"'), "cannot import 'big.nnspec': the file is ",
                             kind=SpecLimitError)
    assert "over the limit of 100" in text
    with pytest.raises(SpecLimitError, match="over the limit of 100") as info:
        elaborate_spec(tree / "big.nnspec")
    assert info.value.path == str(tree / "big.nnspec") and info.value.hint


def test_at_most_one_byte_over_the_limit_is_read_whatever_the_size_says(tree, monkeypatch):
    """A file whose reported size lies (0, as /proc's do) is still read only up to the limit and one byte."""
    monkeypatch.setattr(modelspec.pipeline, "MAX_FILE_BYTES", 100)
    big = tree / "lies.nnspec"
    big.write_bytes(b"#" * 10_000)
    real_fstat, real_read, got = os.fstat, os.read, []

    def fstat_saying_empty(fd):
        st = real_fstat(fd)
        return os.stat_result((*st[:6], 0, *st[7:10]))

    def counted_read(fd, n):
        data = real_read(fd, n)
        got.append(len(data))
        return data

    monkeypatch.setattr(os, "fstat", fstat_saying_empty)
    monkeypatch.setattr(os, "read", counted_read)
    with pytest.raises(SpecLimitError, match="over the limit of 100 bytes"):
        read_spec(big)
    monkeypatch.undo()
    assert 100 < sum(got) <= 101, got


def test_a_file_swapped_after_the_check_is_refused(tree):
    """The file opened must be the file the import's checks looked at."""
    other = tree.parent / "out" / "head.nnspec"
    with pytest.raises(SpecImportError, match="replaced while it was being read"):
        read_spec(tree / "lib" / "head.nnspec", same_file=os.stat(other))
    assert read_spec(other, same_file=os.stat(other))[0] == BLOCK

