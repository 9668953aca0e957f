"""Machine-readable diagnostics: `check --format json|sarif`, stdin, exit codes, usage mistakes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import jsonschema
import pytest

from conftest import ROOT
from modelspec.cli import main
from modelspec.diagnostics import diagnose
from modelspec.errors import CODES
from modelspec.pipeline import SpecText

# two syntax errors, then a model that parses but has a shape error, then one with a warning
SEVERAL = """model A(x: [B, 4]) {
    fc = Linear(4 2)
}

model C(x: [B, 4]) {
    fc = Linear(3, 2)
}

model D(x: [B, 4]) {
    fc = Linear(_, 2)
    unused = ReLU()

    forward(x) {
        return fc(x)
    }
}

model E(x: [B, 4]) {
    fc = Linear(_, 2)(
}
"""


def report(capsys, *argv, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_reports_every_error_and_warning_of_every_file(tmp_path, capsys):
    bad = tmp_path / "several.nnspec"
    bad.write_text(SEVERAL)
    rc, out, err = report(capsys, "check", "--format", "json", str(bad), str(ROOT / "specs" / "cnn.nnspec"))
    assert rc == 1 and err == ""
    got = json.loads(out)
    found = [(d["line"], d["column"], d["code"], d["severity"]) for d in got["diagnostics"]]
    assert found == [(2, 19, "MS101", "error"), (6, 17, "MS401", "error"), (11, 5, "MS807", "warning"),
                     (19, 22, "MS101", "error")], found
    first = got["diagnostics"][0]
    assert set(first) == {"path", "line", "column", "end_line", "end_column", "severity", "code", "name",
                          "message", "hint"}
    assert first["path"] == str(bad) and first["end_column"] == 20 and first["hint"] == "put a ',' before '2'"
    assert first["message"] == "unexpected '2': perhaps you forgot a comma?"
    assert got["errors"] == 3 and got["warnings"] == 1
    files = {f["path"]: f for f in got["files"]}
    assert not files[str(bad)]["ok"] and [m["name"] for m in files[str(bad)]["models"]] == ["D"]
    cnn = files[str(ROOT / "specs" / "cnn.nnspec")]
    assert cnn["ok"] and cnn["models"][0]["outputs"] == ["[B, 10]"] and cnn["models"][0]["params"] == 3_310_802


def test_json_of_a_clean_spec_exits_0_and_warnings_follow_w(capsys):
    spec = str(ROOT / "specs" / "tutorials" / "my_linear_tensor.nnspec")
    rc, out, _ = report(capsys, "check", "--format", "json", spec)
    got = json.loads(out)
    assert rc == 0 and got["errors"] == 0 and {d["code"] for d in got["diagnostics"]} == {"MS805", "MS806"}
    rc, out, _ = report(capsys, "check", "--format", "json", "-W", "error=empty-init", "-W", "no-unregistered-tensor",
                        spec)
    got = json.loads(out)
    assert rc == 1 and [(d["code"], d["severity"]) for d in got["diagnostics"]] == [("MS805", "error")] * 2


def test_a_file_that_cannot_be_read_is_a_diagnostic_too(tmp_path, capsys):
    rc, out, _ = report(capsys, "check", "--format", "json", str(tmp_path / "nope.nnspec"))
    (d,) = json.loads(out)["diagnostics"]
    assert rc == 1 and d["code"] == "MS501" and d["message"] == "no such file" and (d["line"], d["column"]) == (1, 1)


# the parts of SARIF 2.1.0 (OASIS) a reader relies on, as the standard's schema requires them
SARIF = {
    "type": "object", "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name", "rules"],
                    "properties": {"rules": {"type": "array", "items": {
                        "type": "object", "required": ["id", "shortDescription"]}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["ruleId", "level", "message", "locations"],
                    "properties": {
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"type": "object", "required": ["text"]},
                        "locations": {"type": "array", "items": {"type": "object", "required": ["physicalLocation"],
                                      "properties": {"physicalLocation": {
                                          "type": "object", "required": ["artifactLocation", "region"],
                                          "properties": {"region": {
                                              "type": "object",
                                              "required": ["startLine", "startColumn", "endLine", "endColumn"],
                                              "additionalProperties": {"type": "integer", "minimum": 1}}}}}}},
                    }}},
            }}},
    },
}


def test_sarif_is_what_code_scanning_reads(tmp_path, capsys):
    bad = tmp_path / "several.nnspec"
    bad.write_text(SEVERAL)
    rc, out, _ = report(capsys, "check", "--format", "sarif", str(bad))
    log = json.loads(out)
    jsonschema.validate(log, SARIF)
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rc == 1 and rules == ["MS101", "MS401", "MS807"]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("MS101", "error"), ("MS401", "error"),
                                                           ("MS807", "warning"), ("MS101", "error")]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    artifact = results[1]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": bad.as_uri()}  # an absolute path: a file: URI
    region = results[1]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 6, "startColumn": 17, "endLine": 6, "endColumn": 18}
    assert results[1]["message"]["text"].endswith("hint: use Linear(4, 2), or Linear(_, 2) to infer it")


def test_dash_reads_stdin_for_each_command(capsys, monkeypatch):
    cnn = (ROOT / "specs" / "cnn.nnspec").read_text()
    assert report(capsys, "check", "-", stdin=cnn, monkeypatch=monkeypatch)[1] == \
        "<stdin>: ok (CNN -> [B, 10], 3,310,802 params)\n"
    rc, out, _ = report(capsys, "codegen", "-", stdin=cnn, monkeypatch=monkeypatch)
    assert rc == 0 and "class CNN(nn.Module):" in out
    rc, out, _ = report(capsys, "summary", "-", "--json", stdin=cnn, monkeypatch=monkeypatch)
    assert rc == 0 and json.loads(out)["total_params"] == 3_310_802
    rc, out, _ = report(capsys, "ir", "-", "--json", stdin=cnn, monkeypatch=monkeypatch)
    assert rc == 0 and json.loads(out)["items"]
    rc, out, err = report(capsys, "check", "-", stdin="model M(x: [B, 4]) {\n    fc = Linear(3, 2)\n}\n",
                          monkeypatch=monkeypatch)
    assert rc == 1 and err.startswith("<stdin>:2:17: Linear `fc` expects in_features=3")
    rc, out, _ = report(capsys, "check", "--format", "json", "-", stdin="model M(x: [B, 4]) {\n  fc = Linear(3, 2)\n}",
                        monkeypatch=monkeypatch)
    assert rc == 1 and json.loads(out)["diagnostics"][0]["path"] == "<stdin>"


def test_run_reads_stdin(torch, capsys, monkeypatch):
    rc, out, _ = report(capsys, "run", "-", stdin="model M(x: [B, 4]) { fc = Linear(_, 2) }",
                        monkeypatch=monkeypatch)
    assert rc == 0 and "output 0: [2, 2] float32" in out


def test_stdin_is_read_once(capsys):
    rc, _, err = report(capsys, "check", "-", "-")
    assert rc == 2 and err == "modelspec check: - (stdin) can be read once; name it once\n"


@pytest.mark.parametrize("argv, said", [
    (["codegen", "specs/cnn.nnspec", "-o", "/nonexistent/dir/m.py"],
     "modelspec codegen: cannot write /nonexistent/dir/m.py: No such file or directory"),
    (["run", "specs/cnn.nnspec", "--device", "foo"],
     "modelspec run: unknown device 'foo': say cpu, cuda, cuda:1 or mps"),
    (["run", "specs/cnn.nnspec", "--device", "meta"], "modelspec run: modelspec runs a model on cpu, cuda or mps, "
                                                       "not on meta"),
    (["summary", "specs/cnn.nnspec", "--batch", "0"], "modelspec summary: --batch must be at least 1"),
    (["train", "specs/linear_regression.nnspec", "--device", "gpu"],
     "modelspec train: unknown device 'gpu': say auto, cpu, cuda, cuda:1 or mps"),
    (["train", "specs/linear_regression.nnspec", "--out", "specs/cnn.nnspec"],
     "modelspec train: cannot write to --out specs/cnn.nnspec: File exists"),
    (["graph", "specs/cnn.nnspec", "-o", "cnn.png", "--format", "svg"],
     "modelspec graph: -o cnn.png says png, --format says svg: name the file .svg, or leave --format out"),
    (["chek", "specs/cnn.nnspec"], "modelspec: no command 'chek'; did you mean check?"),
    (["check", "--format", "xml", "specs/cnn.nnspec"], None),  # argparse's own: rc 2 as well
])
def test_usage_mistakes_are_one_line_and_exit_2(argv, said, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == 2
    assert "internal error" not in err and "Traceback" not in err
    if said is not None:
        assert err == said + "\n"


def test_cuda_that_is_not_there_is_a_usage_mistake(torch, capsys, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(ROOT)
    assert main(["run", "specs/cnn.nnspec", "--device", "cuda"]) == 2
    assert capsys.readouterr().err == "modelspec run: CUDA is not available on this machine; use --device cpu\n"


def test_run_without_torch_says_how_to_get_it():
    """A Python where torch cannot be imported: run names the package and exits 2; check needs no torch."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from modelspec.cli import main\n"
            "print(main(['check', 'specs/cnn.nnspec']), main(['run', 'specs/cnn.nnspec']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("0 2"), done.stdout + done.stderr
    assert done.stderr == "modelspec run: this needs torch, which is not installed: pip install torch\n"


def test_every_code_is_one_of_codes():
    for text in ["model M(x: [B, 4]) { fc = Linear(3, 2) }", "model M(x: [B, 4]) { fc = Lineer(3, 2) }",
                 "model M(x: [B, 4] { }", "block B(n) { fc = Linear(_, n) }"]:
        for d in diagnose(SpecText(text, "t.nnspec")):
            assert d.code in CODES and d.name == CODES[d.code][0] and d.path == "t.nnspec"


def test_sarif_names_files_as_uris(tmp_path, capsys, monkeypatch):
    (tmp_path / "my specs").mkdir()
    (tmp_path / "my specs" / "bad cnn.nnspec").write_text("model M(x: [B, 4]) {\n    fc = Linear(3, 2)\n}\n")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = report(capsys, "check", "--format", "sarif", "my specs/bad cnn.nnspec")
    run = json.loads(out)["runs"][0]
    location = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "my%20specs/bad%20cnn.nnspec", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    rc, out, _ = report(capsys, "check", "--format", "sarif", "-", stdin="model M(x: [B, 4]) {\n  fc = Linear(3, 2)\n}",
                        monkeypatch=monkeypatch)
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["locations"] == [] and result["message"]["text"].startswith("line 2, column 15: Linear `fc`")


def test_json_says_where_it_stopped(tmp_path, capsys):
    many = tmp_path / "many.nnspec"
    many.write_text("".join(f"model M{i}(x: [B, 4]) {{ fc = Linear(3, 2) }}\n" for i in range(25)))
    rc, out, _ = report(capsys, "check", "--format", "json", str(many), str(many))
    got = json.loads(out)
    assert rc == 1 and [f["truncated"] for f in got["files"]] == [True, True] and got["errors"] == 40


def test_an_unknown_option_shows_the_commands_own_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "specs/cnn.nnspec", "--bogus"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: modelspec check ")
    assert err.rstrip().endswith("modelspec check: error: unrecognized arguments: --bogus")


def test_graph_takes_its_format_from_the_suffix(tmp_path, capsys):
    out = tmp_path / "cnn.mmd"
    assert main(["graph", str(ROOT / "specs" / "cnn.nnspec"), "-o", str(out)]) == 0
    assert out.read_text().startswith("flowchart TB")
    html = tmp_path / "cnn.html"
    assert main(["graph", str(ROOT / "specs" / "cnn.nnspec"), "-o", str(html)]) == 0
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
