"""Warnings that teach: shown by check, summary and codegen, -W error makes them fail, each one can be
turned off by name on the command line or by a `# nowarn: NAME` comment on its line, and the API hands
them to Python's `warnings` module. The catalog cases (tests/errors/warn_*.nnspec) hold each message."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import modelspec
from modelspec import SpecError, elaborate_spec
from modelspec.errors import WARNINGS, ModelspecWarning, WarningPolicy

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "errors"
MODELSPEC = [sys.executable, "-m", "modelspec"]


def run(*args, timeout=120):
    return subprocess.run([*MODELSPEC, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def write(tmp_path, text, name="m.nnspec"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_warning_has_a_catalog_case_and_a_line_in_the_language_reference():
    stems = [p.stem.replace("_", "-") for p in CASES.glob("warn_*.nnspec")]
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for code in WARNINGS:
        assert any(code in s for s in stems), f"no tests/errors/warn_*.nnspec case for {code}"
        assert f"`{code}`" in doc, f"docs/language.md does not list the warning {code}"


def test_no_bundled_spec_warns_unless_it_means_to():
    for spec in sorted((ROOT / "specs").glob("*.nnspec")):
        assert not elaborate_spec(spec).warnings, spec.name


UNUSED = "model M(x: [B, 4]) {\n    fc = Linear(4, 2)\n    extra = Linear(4, 4)\n    forward(x) { return fc(x) }\n}\n"


@pytest.mark.parametrize("command", ["check", "summary", "codegen", "graph", "run"])
def test_check_summary_codegen_and_graph_show_a_warning_and_minus_w_error_fails(tmp_path, command):
    spec = write(tmp_path, UNUSED)
    shown = run(command, spec)
    assert shown.returncode == 0, shown.stderr
    assert f"{spec}:3:5: warning: child 'extra' is declared but never used in forward" in shown.stderr
    assert "[unused-child]" in shown.stderr and "hint: call it in forward" in shown.stderr
    failed = run(command, spec, "-W", "error")
    assert failed.returncode == 1
    assert f"{spec}:3:5: error: child 'extra'" in failed.stderr and "[unused-child]" in failed.stderr
    if command != "check":
        assert failed.stdout == "", "an error leaves no output behind"
    off = run(command, spec, "-W", "no-unused-child", "-W", "error")
    assert off.returncode == 0 and "extra" not in off.stderr


def test_minus_w_error_for_one_warning_and_no_error_for_another(tmp_path):
    spec = write(tmp_path, UNUSED.replace("forward(x) {", "param p: [2]\n    forward(x) {").replace(
        "return fc(x)", "return fc(x) + p"))
    both = run("check", spec)
    assert both.returncode == 0 and "[unused-child]" in both.stderr and "[param-no-init]" in both.stderr
    one = run("check", spec, "-W", "error=param-no-init")
    assert one.returncode == 1 and "error: param 'p'" in one.stderr and "warning: child 'extra'" in one.stderr
    kept = run("check", spec, "-W", "error", "-W", "no-error=unused-child")
    assert kept.returncode == 1 and "warning: child 'extra'" in kept.stderr and "error: param 'p'" in kept.stderr


def test_a_misspelt_warning_name_is_refused_with_the_nearest_one():
    done = run("check", "specs/cnn.nnspec", "-W", "no-unused-chlid")
    assert done.returncode == 2 and "there is no warning 'unused-chlid'; did you mean unused-child?" in done.stderr
    with pytest.raises(ValueError, match="say error, error=NAME"):
        WarningPolicy.parse(["errors"])


def test_nowarn_comment_silences_its_own_line_only(tmp_path):
    quiet = UNUSED.replace("extra = Linear(4, 4)", "extra = Linear(4, 4)  # nowarn: unused-child")
    assert not elaborate_spec(write(tmp_path, quiet)).warnings
    other = UNUSED.replace("extra = Linear(4, 4)", "extra = Linear(4, 4)  # nowarn: empty-init")
    assert [w.name for w in elaborate_spec(write(tmp_path, other, "o.nnspec")).warnings] == ["unused-child"]
    above = UNUSED.replace("    extra = Linear(4, 4)", "    # nowarn: unused-child\n    extra = Linear(4, 4)")
    assert [w.name for w in elaborate_spec(write(tmp_path, above, "a.nnspec")).warnings] == ["unused-child"]
    quoted = UNUSED.replace("extra = Linear(4, 4)", 'extra = Linear(4, 4)\n    s = "# nowarn: unused-child"')
    assert [w.name for w in elaborate_spec(write(tmp_path, quoted, "q.nnspec")).warnings] == ["unused-child"]


def test_a_warning_inside_an_imported_block_points_into_its_file_and_its_comment_silences_it(tmp_path):
    lib = write(tmp_path, "block Head(n) {\n    fc = Linear(_, n)\n    spare = ReLU()\n"
                          "    forward(x) { return fc(x) }\n}\n", "lib.nnspec")
    main = write(tmp_path, 'import "lib.nnspec"\nmodel M(x: [B, 4]) {\n    h = Head(2)\n}\n')
    (w,) = elaborate_spec(main).warnings
    assert w.path == str(lib) and w.line == 3 and w.name == "unused-child"
    assert "    spare = ReLU()" in w.render()
    lib.write_text(lib.read_text().replace("spare = ReLU()", "spare = ReLU()  # nowarn: unused-child"))
    assert not elaborate_spec(main).warnings


def test_summary_json_lists_the_warnings(tmp_path):
    done = run("summary", write(tmp_path, UNUSED), "--json")
    (w,) = json.loads(done.stdout)["warnings"]
    assert w["name"] == "unused-child" and w["code"] == "MS807" and w["severity"] == "warning"
    assert w["line"] == 3 and w["hint"].startswith("call it in forward")


def test_the_api_hands_warnings_to_pythons_warnings_module(tmp_path, torch):
    spec = write(tmp_path, UNUSED)
    with pytest.warns(ModelspecWarning, match="never used in forward"):
        modelspec.generate_code(spec)
    modelspec.api.code_cache.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelspecWarning)
        with pytest.raises(ModelspecWarning) as info:
            modelspec.compile_spec(spec)
    assert info.value.warning.name == "unused-child" and isinstance(info.value.warning, SpecError)


def test_a_warning_survives_copy_and_pickle():
    import copy
    import pickle

    w = elaborate_spec(UNUSED).warnings[0]
    for again in (copy.copy(w), pickle.loads(pickle.dumps(w))):
        assert again.name == w.name and again.render() == w.render()


UNREGISTERED = (CASES / "warn_unregistered_tensor.nnspec").read_text()


def test_a_plain_tensor_attribute_is_printed_as_written_and_is_no_parameter(torch):
    graph = elaborate_spec(UNREGISTERED)
    assert graph.total_params == 2  # b alone
    code = modelspec.generate_code(graph)
    assert "self.W = torch.randn(3, 2)" in code and "torch.matmul(x, self.W)" in code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelspecWarning)
        net = modelspec.compile_spec(UNREGISTERED, seed=0)
    assert [n for n, _ in net.named_parameters()] == ["b"] and "W" not in net.state_dict()
    assert net(torch.randn(4, 3)).shape == (4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelspecWarning)
        with pytest.raises(SpecError, match="plain tensor that model.to"):
            modelspec.compile_spec(UNREGISTERED, dtype=torch.float64)


def test_the_tutorials_first_my_linear_gets_both_its_warnings(tmp_path):
    spec = write(tmp_path, "model MyLinear1(x: [B, 3]) {\n    W = torch.FloatTensor(3, 2)\n"
                           "    b = torch.FloatTensor(2)\n    forward(x) { return torch.matmul(x, W) + b }\n}\n")
    codes = [(w.name, w.line) for w in elaborate_spec(spec).warnings]
    assert codes == [("unregistered-tensor", 2), ("empty-init", 2), ("unregistered-tensor", 3), ("empty-init", 3)]


@pytest.mark.parametrize("text, code", [
    # a feature map through an activation, a pool, a Sequential and F.relu still is one
    ("model M(x: [B, 1, 28, 28]) { s = Sequential(Conv2d(1, 4, 3), BatchNorm2d(4), ReLU(), Linear(_, 3)) }",
     "forgotten-flatten"),
    ("model M(x: [B, 1, 28, 28]) {\n c = Conv2d(1, 4, 3)\n fc = Linear(_, 3)\n"
     " forward(x) { return fc(F.max_pool2d(F.relu(c(x)), 2)) }\n}", "forgotten-flatten"),
    # a Linear given the last dim of a sequence, or a permuted map (channels last), is meant
    ("model M(x: [B, T, 16]) { fc = Linear(_, 3) }", None),
    ("model M(x: [B, 1, 28, 28]) {\n c = Conv2d(1, 4, 3)\n fc = Linear(_, 3)\n"
     " forward(x) { return fc(c(x).permute(0, 2, 3, 1)) }\n}", None),
    ("model M(x: [B, 1, 28, 28]) {\n c = Conv2d(1, 4, 3)\n fc = Linear(_, 3)\n"
     " forward(x) { return fc(torch.flatten(c(x), 1)) }\n}", None),
    ("model M(x: [B, 10]) {\n forward(x) { return F.softmax(x, dim=1) }\n}", None),
    ("model M(x: [B, 10]) {\n forward(x) { return F.log_softmax(x, dim=-2) }\n}", "softmax-dim"),
    ("model M(x: [4, 10]) {\n forward(x) { return F.softmax(x, dim=0) }\n}", None),  # no batch to normalise over
    ("model M(x: [B, 3, 28, 28]) { pool = MaxPool2d(2) }", None),
    ("model M(x: [B, 8, 28]) { pool = MaxPool1d(2) }", None),
    ("model M(x: [B, 28, 28]) { pool = AvgPool2d(2) }", "unbatched-input"),
    ("model M(x: [B, 4]) {\n param w: [4] = ones\n forward(x) { return x * w }\n}", None),
    ("model M(x: [B, 4]) {\n buffer m: [4]\n forward(x) { return x + m }\n}", None),  # a buffer of zeros is common
    # through arithmetic and out of a block, a feature map still is one; an image input is one too
    ("model M(x: [B, 1, 28, 28]) {\n c = Conv2d(1, 4, 3)\n d = Conv2d(1, 4, 3)\n fc = Linear(_, 3)\n"
     " forward(x) { return fc((c(x) + d(x)) * 2) }\n}", "forgotten-flatten"),
    ("block Feat() {\n c = Conv2d(_, 4, 3)\n a = ReLU()\n}\nmodel M(x: [B, 1, 28, 28]) {\n f = Feat()\n"
     " fc = Linear(_, 3)\n}", "forgotten-flatten"),
    ("model M(x: [B, 1, 28, 28]) { s = Sequential(Linear(_, 512), ReLU(), Linear(512, 10)) }", "forgotten-flatten"),
    ("model M(x: [B, 1, 28, 28]) { s = Sequential(Flatten(), Linear(_, 512), ReLU(), Linear(512, 10)) }", None),
    # a sequence-first input leads with its time, not a batch
    ("model M(enc: [T, B, 16]) {\n forward(enc) { return F.softmax(enc, dim=0) }\n}", None),
    ("model M(x: [N, 10]) {\n forward(x) { return x.softmax(0) }\n}", "softmax-dim"),
    ("model M(x: [B, 28, 28]) {\n forward(x) { return F.max_pool2d(x, 2) }\n}", "unbatched-input"),
    # a child one instance of a block uses is used, though another instance leaves it out
    ("block K(c, bn_on=True) {\n conv = Conv2d(_, c, 3)\n bn = BatchNorm2d(c)\n forward(x) {\n x = conv(x)\n"
     " if bn_on {\n x = bn(x)\n }\n return x\n }\n}\nmodel M(x: [B, 3, 8, 8]) {\n a = K(4)\n b = K(4, bn_on=False)\n}",
     None),
    ("block K(c, bn_on=True) {\n conv = Conv2d(_, c, 3)\n bn = BatchNorm2d(c)\n forward(x) {\n x = conv(x)\n"
     " if bn_on {\n x = bn(x)\n }\n return x\n }\n}\nmodel M(x: [B, 3, 8, 8]) {\n a = K(4, bn_on=False)\n}",
     "unused-child"),
])
def test_each_warning_fires_where_it_should_and_nowhere_else(text, code):
    assert [w.name for w in elaborate_spec(text).warnings] == ([code] if code else [])


def test_check_shows_the_warnings_of_the_models_that_pass_beside_the_errors_of_those_that_fail(tmp_path):
    spec = write(tmp_path, UNUSED + "model C(x: [B, 2]) {\n    fc = Linear(4, 2)\n}\n")
    done = run("check", spec)
    assert done.returncode == 1
    assert "3:5: warning: child 'extra'" in done.stderr and "7:17: Linear `fc` expects in_features=4" in done.stderr


TRAINED = """model C(x: [B, 8]) {
    fc = Linear(8, 3)
    forward(x) { return LAST }
}
train C {
    target y: Long[B]
    loss = LOSS()
    optimizer = SGD(lr=0.1)
    data {
        x = torch.randn(16, 8)
        y = torch.randint(0, 3, (16,))
    }
}
"""


@pytest.mark.parametrize("last, loss, said", [
    ("F.relu(fc(x))", "CrossEntropyLoss", "squashed first"),
    ("torch.sigmoid(fc(x))", "CrossEntropyLoss", "squashed first"),
    ("fc(x).relu()", "CrossEntropyLoss", "squashed first"),
    ("F.leaky_relu(fc(x))", "CrossEntropyLoss", "squashed first"),
    ("fc(x).softmax(dim=1)", "CrossEntropyLoss", "squashed first"),
    ("F.log_softmax(fc(x), dim=1)", "CrossEntropyLoss", "applied twice it changes nothing"),
    ("F.softmax(fc(x), dim=1)", "NLLLoss", "NLLLoss takes log-probabilities"),
    ("fc(x)", "CrossEntropyLoss", None),
    ("F.log_softmax(fc(x), dim=1)", "NLLLoss", None),
])
def test_the_last_step_before_the_loss(last, loss, said):
    found = elaborate_spec(TRAINED.replace("LAST", last).replace("LOSS", loss)).warnings
    assert [w.name for w in found] == (["activation-before-loss"] if said else [])
    assert said is None or said in found[0].message
