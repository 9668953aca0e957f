"""The `modelspec` command line, as a user meets it.

Most tests call `modelspec.cli.main([...])` in this process and read what it
prints (capsys); a few run real subprocesses, for what only a fresh
interpreter shows: exit codes of `python -m modelspec` and of the console
script, the absence of Python tracebacks, and that `check`, `codegen` and
`summary` never import torch.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.nnspec"))
BAD = ROOT / "tests" / "errors" / "shape_cnn_tutorial.nnspec"
BAD_SYNTAX = ROOT / "tests" / "errors" / "syntax_missing_paren.nnspec"
LOCATION = re.compile(r"^(\S+\.nnspec):(\d+):(\d+): ", re.M)
CARET = re.compile(r"^ +\^+$", re.M)


def spec_ids(paths):
    return [p.stem for p in paths]


def run_cli(*args: str, module: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m modelspec ARGS` (or the console script) in a fresh interpreter."""
    if module:
        cmd = [sys.executable, "-m", "modelspec", *args]
    else:
        script = shutil.which("modelspec", path=str(Path(sys.executable).parent))
        if script is None:
            pytest.skip("the modelspec console script is not installed beside this Python")
        cmd = [script, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- check
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_check_accepts_every_example(spec, capsys):
    assert main(["check", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{spec}: ok")
    assert err == ""


def test_check_reports_a_bad_file_with_its_place(capsys):
    assert main(["check", str(BAD)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{BAD}:11:18: Linear `fc1` expects in_features=1024 but its input is [B, 25600]" in err
    assert CARET.search(err)
    assert "hint: use Linear(25600, 128)" in err
    assert "Traceback" not in err


def test_check_reports_each_of_several_files(capsys):
    files = [str(BAD), str(ROOT / "specs" / "cnn.nnspec"), str(BAD_SYNTAX)]
    assert main(["check", *files]) == 1
    out, err = capsys.readouterr()
    assert f"{ROOT / 'specs' / 'cnn.nnspec'}: ok" in out
    places = LOCATION.findall(err)
    assert [Path(p).name for p, _, _ in places] == [BAD.name, BAD_SYNTAX.name]
    assert len(CARET.findall(err)) == 2


def test_check_all_good_files_exit_zero(capsys):
    assert main(["check", *map(str, SPECS)]) == 0
    out, _ = capsys.readouterr()
    assert out.count(": ok") == len(SPECS)


# ---------------------------------------------------------------- codegen
def test_codegen_prints_the_module(capsys):
    assert main(["codegen", str(ROOT / "specs" / "cnn.nnspec")]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith('"""')
    assert "class CNN(nn.Module):" in out
    ast.parse(out)


def test_codegen_writes_a_file(tmp_path, capsys):
    spec = str(ROOT / "specs" / "vgg_blocks.nnspec")
    target = tmp_path / "out.py"
    assert main(["codegen", spec, "-o", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert str(target) in err
    written = target.read_text(encoding="utf-8")
    assert main(["codegen", spec]) == 0
    assert written == capsys.readouterr().out
    assert written.startswith('"""') and "class SmallVGG(nn.Sequential):" in written


def test_codegen_of_a_bad_file_is_a_clean_error(capsys):
    assert main(["codegen", str(BAD_SYNTAX)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert LOCATION.search(err) and CARET.search(err)


# ---------------------------------------------------------------- summary
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_summary_total_matches_the_compiled_model(spec, capsys):
    from modelspec import compile_spec

    assert main(["summary", str(spec)]) == 0
    out, _ = capsys.readouterr()
    assert re.search(r"^-+$", out, re.M), "no table rule"
    assert "Output shape" in out
    m = re.search(r"^Total params: ([\d,]+)$", out, re.M)
    assert m, out
    net = compile_spec(spec, seed=0)
    assert int(m.group(1).replace(",", "")) == sum(p.numel() for p in net.parameters())


def test_summary_batch_scales_mult_adds(capsys):
    spec = str(ROOT / "specs" / "mnist_mlp.nnspec")
    main(["summary", spec])
    one = re.search(r"Mult-adds \(batch 1\): ([\d,]+)", capsys.readouterr().out)
    main(["summary", spec, "--batch", "4"])
    four = re.search(r"Mult-adds \(batch 4\): ([\d,]+)", capsys.readouterr().out)
    assert one and four
    assert int(four.group(1).replace(",", "")) == 4 * int(one.group(1).replace(",", ""))


# ---------------------------------------------------------------- run
def test_run_prints_shapes_and_a_time(capsys):
    assert main(["run", str(ROOT / "specs" / "cnn.nnspec"), "--batch", "3"]) == 0
    out, _ = capsys.readouterr()
    assert "CNN on cpu, batch 3" in out
    assert "input  x: [3, 1, 28, 28]" in out
    assert "output 0: [3, 10]" in out
    assert "parameters: 3,310,802" in out
    assert re.search(r"forward: \d+(\.\d+)? ms", out)


# ---------------------------------------------------------------- help
@pytest.mark.parametrize("command", [[], ["check"], ["codegen"], ["summary"], ["run"]],
                         ids=["modelspec", "check", "codegen", "summary", "run"])
def test_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out, _ = capsys.readouterr()
    assert "examples:" in out
    examples = out.split("examples:", 1)[1]
    assert "modelspec " + (command[0] if command else "") in examples
    for spec in re.findall(r"specs/\w+\.nnspec", examples):
        assert (ROOT / spec).exists(), f"the help cites {spec}, which does not exist"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: modelspec" in capsys.readouterr().out


# ---------------------------------------------------------------- missing files
@pytest.mark.parametrize("command", ["check", "codegen", "summary", "run"])
def test_missing_file_is_a_clean_error(command, capsys, tmp_path):
    missing = tmp_path / "nope.nnspec"
    assert main([command, str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{missing}: no such file")
    assert "Traceback" not in err


# ---------------------------------------------------------------- fresh interpreters
def test_python_dash_m_and_console_script():
    cnn = "specs/cnn.nnspec"
    for module in (True, False):
        good = run_cli("check", cnn, module=module)
        assert good.returncode == 0, good.stderr
        assert good.stdout.startswith(f"{cnn}: ok")

    bad = run_cli("check", str(BAD.relative_to(ROOT)), "nope.nnspec")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "tests/errors/shape_cnn_tutorial.nnspec:11:18: Linear `fc1` expects in_features=1024" in bad.stderr
    assert CARET.search(bad.stderr)
    assert "nope.nnspec: no such file" in bad.stderr


def test_check_codegen_summary_do_not_import_torch(tmp_path):
    code = f"""
import contextlib, io, sys
from modelspec.cli import main
for args in (["check", "specs/cnn.nnspec", "specs/vgg_blocks.nnspec"],
             ["codegen", "specs/vgg_blocks.nnspec", "-o", {str(tmp_path / "vgg.py")!r}],
             ["summary", "specs/seq_classifier.nnspec"],
             ["check", "tests/errors/shape_cnn_tutorial.nnspec"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    assert "torch" not in sys.modules, f"{{args[0]}} imported torch"
print("no torch")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no torch"


def test_serve_without_its_extra_says_how_to_get_it(monkeypatch, capsys):
    for name in [n for n in sys.modules if n.partition(".")[0] in ("starlette", "uvicorn")] + ["starlette"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: importing any of it fails
    monkeypatch.delitem(sys.modules, "modelspec.serve", raising=False)
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "starlette" in err and 'pip install "modelspec[serve]"' in err and "Traceback" not in err


def test_serve_refuses_a_file_it_could_not_load_or_save(tmp_path, capsys):
    latin = tmp_path / "latin.nnspec"
    latin.write_bytes("# caf\xe9\n".encode("latin-1"))
    assert main(["serve", str(latin), "--port", "0"]) == 1  # as every command says it: the page would save over it
    assert "UTF-8" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "nowhere" / "x.nnspec"), "--port", "0"]) == 2
    assert "its folder does not exist" in capsys.readouterr().err


def test_serve_export_names_no_page_a_link_could_misuse(tmp_path, capsys):
    """A file's name becomes a page's only as letters, digits, . _ -: no javascript: link, no overwritten
    index.html, no two specs on one page."""
    (tmp_path / "y").mkdir()
    names = ["javascript:alert(1).nnspec", "index.nnspec", "y-a.nnspec", "y/a.nnspec"]
    for name in names:
        (tmp_path / name).write_text("model M(x: [B, 4]) { fc = Linear(_, 2) }\n")
    site = tmp_path / "site"
    assert main(["serve", "--export", str(site), *[str(tmp_path / n) for n in names]]) == 0
    assert sorted(p.name for p in site.iterdir()) == \
        ["a.html", "assets", "index-2.html", "index.html", "javascript-alert-1-.html", "y-a.html"]
    index = (site / "index.html").read_text()
    assert "javascript:" not in index.replace(">javascript:alert(1)<", "")
    assert index.count("<li>") == 4 and "wrote 4 pages" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["serve", "a.nnspec", "b.nnspec"], "serve edits one file; to show several, use --export DIR"),
    (["serve", "--port", "70000"], "--port must be from 0 to 65535"),
    (["serve", "-"], "serve edits a .nnspec file"),
])
def test_serve_usage_mistakes(capsys, argv, said):
    assert main(argv) == 2
    assert said in capsys.readouterr().err


def test_serve_export_writes_static_pages(tmp_path, capsys):
    """`serve --export` needs no server (nor the [serve] extra): each page holds what /api/check would say."""
    site = tmp_path / "site"
    bad = tmp_path / "bad.nnspec"
    bad.write_text("model M(x: [B, 4]) {\n  fc = Linear(3, 2)\n}\n")
    # the spec with an error gets its page, showing it; the exit code and stderr say it has one
    assert main(["serve", "--export", str(site), str(ROOT / "specs" / "cnn.nnspec"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "wrote 2 pages and an index" in err and f"{bad}:2:15: MS401 Linear `fc` expects in_features=3" in err
    assert sorted(p.name for p in (site / "assets").iterdir()) == \
        ["editor.js", "playground.css", "playground.js", "viz-global.js"]
    page = (site / "cnn.html").read_text()
    assert "http" not in page.split("<body>")[1].replace("generated by modelspec", "")
    state = json.loads(re.search(r"window\.MODELSPEC = (.*);</script>", page).group(1))
    assert state["static"] and state["source"] == (ROOT / "specs" / "cnn.nnspec").read_text()
    assert state["analysis"]["summary"]["complete"] and state["analysis"]["graph"]["dot"]
    assert state["explained"] != state["analysis"]["code"]
    shown = json.loads(re.search(r"window\.MODELSPEC = (.*);</script>", (site / "bad.html").read_text()).group(1))
    assert [d["code"] for d in shown["analysis"]["diagnostics"]] == ["MS401"]
    index = (site / "index.html").read_text()
    assert 'href="./cnn.html"' in index and 'href="./bad.html"' in index
    assert "The CNN of the tutorials" in index  # what each spec is, from its opening comment
    assert main(["serve", "--export", str(bad), str(bad)]) == 2  # a file, not a folder


def test_serve_export_escapes_what_a_spec_says(tmp_path):
    site = tmp_path / "site"
    spec = tmp_path / "x.nnspec"
    spec.write_text('# </script><script>alert(1)</script> & <b>\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }\n')
    assert main(["serve", "--export", str(site), str(spec)]) == 0
    page = (site / "x.html").read_text()
    assert "alert(1)</script>" not in page and "<b>" not in page
    assert page.count("<script") == 4  # the state, the editor, Viz.js, the page's own
