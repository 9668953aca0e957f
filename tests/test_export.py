"""`modelspec export` and `modelspec.export`: ONNX, pt2 and TorchScript files with the spec's dims dynamic.

Each file is loaded back the way its users load it (onnxruntime, torch.export.load, torch.jit.load) and run
at sizes other than the example ones it was traced at, against the eager module built with the same seed,
or with the weights it was given (a state_dict, modelspec train's MODEL.pt and checkpoint.pt).
The ONNX tests skip where the export extra (onnx, onnxscript, onnxruntime) is not installed.
"""

from __future__ import annotations

import io
import os

import pytest

from conftest import ROOT
from modelspec import Exported, SpecError, compile_spec, dynamic_shapes, example_inputs, export
from modelspec.cli import main
from modelspec.exporting import OutputError, WeightsError

# the files are loaded as users load them; torch 2.13 deprecates torch.jit.load with TorchScript itself
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

# two inputs that share the batch, and a returned name
PAIR = """model Pair(image: [B, 3, 8, 8], features: [B, 5]) {
    conv = Conv2d(3, 4, 3, padding=1)
    pool = AdaptiveAvgPool2d(1)
    flatten = Flatten()
    head = Linear(9, 2)

    forward(image, features) {
        logits = head(torch.cat([flatten(pool(conv(image))), features], dim=1))
        return logits
    }
}
"""

# nanoGPT's positions: T counts into a table of 8 rows, so T is at most 8
TINY_GPT = """model TinyGPT(idx: Long[B, T=8]) {
    wte = Embedding(16, 8)
    wpe = Embedding(8, 8)
    head = Linear(8, 16)

    forward(idx) {
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        return head(wte(idx) + wpe(pos))
    }
}
"""

# nn.LSTM unrolls its time steps under torch.export: T stays the example's there, not in TorchScript
TAGGER = """model Tagger(tokens: Long[B, T=4]) {
    embedding = Embedding(10, 4)
    lstm = LSTM(_, 4, batch_first=True)

    forward(tokens) {
        out, state = lstm(embedding(tokens))
        return out
    }
}
"""

MLP = "model Mlp(x: [B, 4]) {\n    fc = Linear(_, 3)\n    act = ReLU()\n}\n"  # no forward: an nn.Sequential

# an unpadded Conv1d makes T - 4 of T: torch.export keeps T dynamic only where that cannot be 1, from T = 6 on
CONV = "model Conv(seq: [B, 6, T=20]) {\n    conv = Conv1d(6, 10, 3, dilation=2)\n}\n"


def eager(spec, *inputs):
    import torch

    with torch.no_grad():
        return compile_spec(spec, seed=0).eval()(*inputs)


def onnx_extras():
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    import onnx
    import onnxruntime

    return onnx, onnxruntime


def axes(values) -> dict[str, list]:
    """Each ONNX graph input's or output's dims: a name for a dynamic one, a number for a static one."""
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


# ---------------------------------------------------------------- dynamic_shapes
def test_each_symbol_is_one_dim_named_after_it_and_shared_by_its_inputs(torch):
    shapes = dynamic_shapes(PAIR)
    assert list(shapes) == ["image", "features"]
    assert list(shapes["image"]) == [0] and list(shapes["features"]) == [0]
    assert shapes["image"][0] is shapes["features"][0]
    assert shapes["image"][0].__name__ == "B"


def test_a_user_exports_with_the_dims_themselves_and_positions_bound_the_length(torch):
    shapes = dynamic_shapes(TINY_GPT)
    assert shapes["idx"][1].__name__ == "T" and shapes["idx"][1].max == 8  # wpe has 8 rows
    program = torch.export.export(compile_spec(TINY_GPT, seed=0).eval(), example_inputs(TINY_GPT),
                                  dynamic_shapes=shapes)
    idx = torch.randint(0, 16, (3, 5))
    torch.testing.assert_close(program.module()(idx), eager(TINY_GPT, idx))
    with pytest.raises(AssertionError, match="idx"):  # past the table: refused by the program's own checks
        program.module()(torch.randint(0, 16, (3, 9)))


def test_a_model_without_a_forward_is_keyed_by_sequentials_argument(torch):
    shapes = dynamic_shapes(MLP)
    assert list(shapes) == ["input"]  # nn.Sequential.forward(self, input): torch.export keys by that name
    program = torch.export.export(compile_spec(MLP, seed=0).eval(), example_inputs(MLP), dynamic_shapes=shapes)
    x = torch.randn(5, 4)
    torch.testing.assert_close(program.module()(x), eager(MLP, x))


def test_a_symbol_whose_example_is_one_stays_static(torch, tmp_path):
    spec = "model M(x: [B, T=1, 4]) {\n    fc = Linear(_, 2)\n}\n"
    assert list(dynamic_shapes(spec)["input"]) == [0]
    done = export(spec, tmp_path / "m.pt2")
    assert done.dims == {"B": (0, None), "T": (1, 1)}
    assert done.notes == ["T stays 1: torch.export makes no dim dynamic from an example size of 0 or 1; declare "
                          "a larger example (T=16) for T to be dynamic"]


# ---------------------------------------------------------------- onnx
def test_onnx_is_valid_named_as_the_spec_and_runs_at_another_batch(torch, tmp_path):
    onnx, onnxruntime = onnx_extras()
    done = export(PAIR, tmp_path / "pair.onnx")
    assert (done.format, done.dims, done.notes) == ("onnx", {"B": (0, None)}, [])
    model = onnx.load(done.path)
    onnx.checker.check_model(model, full_check=True)
    assert axes(model.graph.input) == {"image": ["B", 3, 8, 8], "features": ["B", 5]}
    assert axes(model.graph.output) == {"logits": ["B", 2]}
    inputs = example_inputs(PAIR, batch=5)
    session = onnxruntime.InferenceSession(done.path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": inputs[0].numpy(), "features": inputs[1].numpy()})
    torch.testing.assert_close(torch.from_numpy(got), eager(PAIR, *inputs), atol=1e-5, rtol=1e-4)


def test_onnx_names_every_dynamic_axis_after_its_symbol(torch, tmp_path):
    onnx, onnxruntime = onnx_extras()
    done = export(TINY_GPT, tmp_path / "gpt.onnx")
    assert done.describe() == "B dynamic, T at most 8"
    assert done.notes == ["T is at most 8: Embedding `wpe` has 8 rows and is indexed by positions counted up to T"]
    model = onnx.load(done.path)
    onnx.checker.check_model(model, full_check=True)
    assert axes(model.graph.input) == {"idx": ["B", "T"]}
    assert axes(model.graph.output) == {"output": ["B", "T", 16]}  # `head(...)` is no name: the one output
    idx = torch.randint(0, 16, (3, 5))
    session = onnxruntime.InferenceSession(done.path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"idx": idx.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), eager(TINY_GPT, idx), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- pt2 and torchscript
def test_pt2_loads_and_runs_at_another_batch(torch, tmp_path):
    done = export(PAIR, tmp_path / "pair.pt2")
    assert done.format == "pt2"
    inputs = example_inputs(PAIR, batch=5)
    got = torch.export.load(done.path).module()(*inputs)
    torch.testing.assert_close(got, eager(PAIR, *inputs))


def test_a_size_the_traced_code_fixes_stays_static_and_is_said(torch, tmp_path):
    done = export(TAGGER, tmp_path / "tagger.pt2")
    assert done.dims == {"B": (0, None), "T": (4, 4)}
    assert done.notes == ["T stays 4: torch.export finds that the traced code fixes it (the torchscript format "
                          "keeps it dynamic)"]
    tokens = torch.randint(0, 10, (3, 4))
    torch.testing.assert_close(torch.export.load(done.path).module()(tokens), eager(TAGGER, tokens))


def test_torchscript_loads_and_runs_at_any_length(torch, tmp_path):
    done = export(TAGGER, tmp_path / "tagger.pt")
    assert (done.format, done.describe()) == ("torchscript", "B dynamic, T dynamic")  # as the suffix says
    tokens = torch.randint(0, 10, (3, 7))
    with torch.no_grad():
        got = torch.jit.load(done.path)(tokens)
    torch.testing.assert_close(got, eager(TAGGER, tokens))


def test_torchscript_still_says_the_bound_of_a_table(tmp_path):
    done = export(TINY_GPT, tmp_path / "gpt.pt")
    assert (done.describe(), len(done.notes)) == ("B dynamic, T at most 8", 1)


# ---------------------------------------------------------------- a length a layer shortens
def test_a_symbol_a_layer_shortens_is_raised_until_no_length_is_1(torch, tmp_path):
    done = export(CONV, tmp_path / "conv.pt2")
    assert done.dims == {"B": (0, None), "T": (6, None)}
    assert done.notes == ["T is at least 6: Conv1d `conv` makes it T - 4 long, and torch.export keeps no dim "
                          "dynamic that may be 1"]
    program = torch.export.load(done.path).module()
    seq = torch.randn(3, 6, 6)
    torch.testing.assert_close(program(seq), eager(CONV, seq))
    with pytest.raises(AssertionError, match=">= 6"):  # a length of 1: refused by the program's own checks
        program(torch.randn(3, 6, 5))


def test_a_refusal_that_remains_points_at_the_layer_that_shortens_the_symbol(torch, tmp_path, monkeypatch):
    from torch._dynamo.exc import UserError, UserErrorType

    guard = "Not all values of T = L['input'].size()[2] in the specified range 6 <= T satisfy the guard T != 7."
    tried = []

    def refuse(module, inputs, dynamic_shapes):
        tried.append(dynamic_shapes["input"][2].min)
        raise UserError(UserErrorType.CONSTRAINT_VIOLATION, f"Constraints violated (T)!\n  - {guard}\n")

    monkeypatch.setattr(torch.export, "export", refuse)
    with pytest.raises(SpecError) as caught:
        export(CONV, tmp_path / "conv.pt2")
    assert tried == [0, 6]  # as declared, then from the least T at which the Conv1d makes 2 or more
    assert caught.value.message == f"torch.export cannot keep T dynamic in Conv: {guard}"
    assert caught.value.line == 2  # the Conv1d's, not the model's
    assert caught.value.hint.startswith("Conv1d `conv` makes a length of T - 4 of T; declare T as a number")


# a length a Conv1d shortens, MaxPool1d's fixed length (with a Conv1d after it), a T bounded by positions
@pytest.mark.parametrize("name", ["tutorials/conv", "tutorials/pooling", "seq_classifier", "gpt"])
def test_bundled_specs_export_to_onnx_and_pt2_and_compute_what_the_module_does(torch, tmp_path, name):
    onnx, onnxruntime = onnx_extras()
    spec = ROOT / "specs" / f"{name}.nnspec"
    inputs = example_inputs(spec)
    expected = torch.utils._pytree.tree_leaves(eager(spec, *inputs))
    program = torch.export.load(export(spec, tmp_path / "m.pt2").path).module()
    torch.testing.assert_close(torch.utils._pytree.tree_leaves(program(*inputs)), expected)
    done = export(spec, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(done.path), full_check=True)
    session = onnxruntime.InferenceSession(done.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
    torch.testing.assert_close([torch.from_numpy(g) for g in got], expected, atol=1e-4, rtol=1e-4)


def test_a_refusal_of_torch_export_is_one_located_line_naming_the_symbol(torch, tmp_path, monkeypatch):
    from torch._dynamo.exc import UserError, UserErrorType

    guard = "Not all values of B = L['image'].size()[0] in the specified range B <= 8 satisfy the guard B != 3."
    wall = f"Constraints violated (B)! For more information, run with TORCH_LOGS=\"+dynamic\".\n  - {guard}\n"
    wall += "The error above occurred when calling torch.export.export.\n" * 20

    def refuse(*args, **kwargs):
        raise UserError(UserErrorType.CONSTRAINT_VIOLATION, wall)

    monkeypatch.setattr(torch.export, "export", refuse)
    with pytest.raises(SpecError) as caught:
        export(PAIR, tmp_path / "pair.pt2")
    assert caught.value.message == f"torch.export cannot keep B dynamic in Pair: {guard}"
    assert caught.value.line == 1 and caught.value.hint.startswith("declare B as a number")
    assert not (tmp_path / "pair.pt2").exists()


def test_any_other_failure_of_torch_export_is_its_first_line(torch, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("aten::frobnicate has no meta kernel\n" + "  at frame\n" * 40)

    monkeypatch.setattr(torch.export, "export", fail)
    with pytest.raises(SpecError) as caught:
        export(TINY_GPT, tmp_path / "gpt.pt2")
    assert caught.value.message == "torch.export cannot export TinyGPT with B, T dynamic: aten::frobnicate has no " \
                                   "meta kernel"


# ---------------------------------------------------------------- weights
def test_the_weights_of_a_state_dict_are_the_ones_exported(torch, tmp_path):
    trained = compile_spec(PAIR, seed=7).eval()
    torch.save(trained.state_dict(), tmp_path / "Pair.pt")
    inputs = example_inputs(PAIR, batch=3)
    with torch.no_grad():
        expected = trained(*inputs)
    assert not torch.allclose(expected, eager(PAIR, *inputs))  # not those of the seed
    for weights in (tmp_path / "Pair.pt", trained.state_dict()):  # a file, or the dict itself
        done = export(PAIR, tmp_path / "pair.pt2", weights=weights)
        torch.testing.assert_close(torch.export.load(done.path).module()(*inputs), expected)


def test_the_files_modelspec_train_writes_are_exported_as_trained(torch, tmp_path, capsys):
    from modelspec import train

    spec = ROOT / "specs" / "linear_regression.nnspec"
    result = train(spec, epochs=1, device="cpu", progress=False, echo=lambda line: None, out=str(tmp_path))
    x = torch.randn(5, 1)
    with torch.no_grad():
        expected = result.model.eval()(x)
    out = tmp_path / "lr.pt2"
    assert main(["export", str(spec), "--weights", result.weights, "-o", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote {out} (pt2; B dynamic; the weights of {result.weights})\n"
    torch.testing.assert_close(torch.export.load(str(out)).module()(x), expected)
    done = export(spec, tmp_path / "lr.torchscript.pt", weights=result.checkpoint)  # its "model", the same
    torch.testing.assert_close(torch.jit.load(done.path)(x), expected)


@pytest.mark.parametrize("kind, message", [
    ("misfit", "{w} does not fit Mlp: missing fc.bias; unexpected head.weight; fc.weight is [3, 5] there and "
               "[3, 4] in the model; export it with the spec (and settings) that trained it"),
    ("checkpoint", "{w} is a checkpoint of 'Other', not of Mlp: export it with the spec that trained it"),
    ("tensor", "{w} holds no state_dict (tensors by name): save model.state_dict(), as modelspec train saves "
               "MODEL.pt"),
    ("torchscript", "{w} holds a TorchScript module, not weights: give the state_dict it was made from (the "
                    "MODEL.pt of modelspec train, or torch.save(model.state_dict(), path))"),
    ("text", "{w} is not a file of weights that torch.save wrote (or it is damaged, or holds Python objects, "
             "which are not loaded)"),
    ("missing", "cannot read the weights {w}: No such file or directory"),
])
def test_weights_that_are_no_state_dict_of_the_model_are_one_line_naming_why(torch, tmp_path, kind, message):
    weights = tmp_path / "w.pt"
    misfit = {"fc.weight": torch.zeros(3, 5), "head.weight": torch.zeros(2, 3)}
    if kind == "misfit":
        torch.save(misfit, weights)
    elif kind == "checkpoint":
        torch.save({"model_name": "Other", "model": misfit, "optimizer": {}}, weights)
    elif kind == "tensor":
        torch.save(torch.zeros(3), weights)
    elif kind == "torchscript":
        export(MLP, weights)
    elif kind == "text":
        weights.write_text("not weights\n")
    with pytest.raises(WeightsError) as caught:
        export(MLP, tmp_path / "m.pt2", weights=weights)
    assert str(caught.value) == message.format(w=weights)
    assert not (tmp_path / "m.pt2").exists()


def test_the_command_refuses_weights_that_do_not_fit_in_one_line(torch, tmp_path, capsys):
    spec, weights = tmp_path / "mlp.nnspec", tmp_path / "w.pt"
    spec.write_text(MLP, encoding="utf-8")
    torch.save({"fc.weight": torch.zeros(3, 4)}, weights)
    assert main(["export", str(spec), "--weights", str(weights), "-o", str(tmp_path / "m.pt2")]) == 2
    assert capsys.readouterr().err == f"modelspec export: {weights} does not fit Mlp: missing fc.bias; export it " \
                                      "with the spec (and settings) that trained it\n"


# ---------------------------------------------------------------- where it writes
@pytest.mark.parametrize("output, format, message", [
    ("missing/m.onnx", None, "there is no folder {tmp}/missing to write m.onnx in"),
    (".", "pt2", "{tmp} is a folder: name the file to write, as {tmp}/Mlp.pt2"),
    ("m.pt2", "onnx", "{tmp}/m.pt2 has the suffix of the pt2 format, but the format asked for is onnx: name a "
                      ".onnx file, or ask for pt2"),
    ("m.bin", "tflite", "the format is one of onnx, pt2, torchscript, not 'tflite'"),
])
def test_a_file_it_cannot_write_is_refused_before_any_work(tmp_path, output, format, message):
    path = str(tmp_path) if output == "." else str(tmp_path / output)
    with pytest.raises(OutputError) as caught:
        export(MLP, path, format=format)
    assert str(caught.value) == message.format(tmp=tmp_path)


def test_a_file_that_holds_something_else_is_kept_unless_forced(torch, tmp_path):
    weights = tmp_path / "Mlp.pt"  # what modelspec train writes, and a .pt file: torchscript's suffix
    torch.save(compile_spec(MLP, seed=0).state_dict(), weights)
    kept = weights.read_bytes()
    with pytest.raises(OutputError) as caught:
        export(MLP, weights)
    assert str(caught.value) == f"{weights} holds a file of torch.save (weights or a checkpoint, as modelspec train " \
                                "writes): export with --force (force=True) to replace it, or name another file with -o"
    assert weights.read_bytes() == kept
    assert torch.jit.load(export(MLP, weights, force=True).path)(torch.randn(2, 4)).shape == (2, 3)


def test_exporting_again_replaces_an_export_of_that_format_and_nothing_else(torch, tmp_path):
    out = tmp_path / "m.pt2"
    export(MLP, out)
    export(MLP, out, seed=1)  # the same format: replaced, as torch.export.save would
    x = torch.randn(2, 4)
    with torch.no_grad():
        expected = compile_spec(MLP, seed=1).eval()(x)
    torch.testing.assert_close(torch.export.load(str(out)).module()(x), expected)
    export(MLP, tmp_path / "m.bin", format="pt2")
    with pytest.raises(OutputError, match=r"m.bin holds a torch.export program \(.pt2\): export with --force"):
        export(MLP, tmp_path / "m.bin", format="torchscript")
    with pytest.raises(OutputError, match="m.onnx holds something that is no onnx export"):
        (tmp_path / "m.onnx").write_text("notes\n")
        export(MLP, tmp_path / "m.onnx")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full, where every write fails, is Linux's")
@pytest.mark.parametrize("format", ["onnx", "pt2", "torchscript"])
def test_a_write_that_fails_is_an_output_error(torch, format):
    if format == "onnx":
        onnx_extras()
    with pytest.raises(OutputError) as caught:
        export(MLP, "/dev/full", format=format, force=True)
    assert str(caught.value) == "cannot write /dev/full: No space left on device"


# ---------------------------------------------------------------- the command line
def test_the_command_writes_the_file_and_says_what_became_of_the_dims(torch, tmp_path, capsys):
    spec = tmp_path / "tagger.nnspec"
    spec.write_text(TAGGER, encoding="utf-8")
    out = tmp_path / "tagger.pt2"
    assert main(["export", str(spec), "--format", "pt2", "-o", str(out)]) == 0
    assert torch.export.load(str(out)).module()(torch.randint(0, 10, (2, 4))).shape == (2, 4, 4)
    assert capsys.readouterr().err.splitlines() == [
        "note: T stays 4: torch.export finds that the traced code fixes it (the torchscript format keeps it dynamic)",
        f"wrote {out} (pt2; B dynamic, T fixed at 4; random weights, seed 0)",
    ]


def test_the_command_takes_the_format_from_the_outputs_suffix(torch, tmp_path, capsys):
    spec = tmp_path / "mlp.nnspec"
    spec.write_text(MLP, encoding="utf-8")
    out = tmp_path / "m.pt2"
    assert main(["export", str(spec), "-o", str(out), "--seed", "3"]) == 0
    assert capsys.readouterr().err == f"wrote {out} (pt2; B dynamic; random weights, seed 3)\n"
    assert torch.export.load(str(out)).module()(torch.randn(3, 4)).shape == (3, 3)


def test_the_command_reads_stdin_and_names_the_file_after_the_model(torch, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(MLP))
    assert main(["export", "-", "--format", "torchscript"]) == 0  # not Mlp.pt, the weights modelspec train writes
    assert capsys.readouterr().err == "wrote Mlp.torchscript.pt (torchscript; B dynamic; random weights, seed 0)\n"
    assert torch.jit.load(str(tmp_path / "Mlp.torchscript.pt"))(torch.randn(3, 4)).shape == (3, 3)


def test_the_command_refuses_a_missing_output_folder_in_one_line(tmp_path, capsys):
    spec = tmp_path / "mlp.nnspec"
    spec.write_text(MLP, encoding="utf-8")
    assert main(["export", str(spec), "-o", str(tmp_path / "nope" / "m.onnx")]) == 2
    assert capsys.readouterr().err == f"modelspec export: there is no folder {tmp_path}/nope to write m.onnx in\n"


def test_the_command_refuses_a_file_it_cannot_write_in_one_line(tmp_path, capsys):
    spec = tmp_path / "mlp.nnspec"
    spec.write_text(MLP, encoding="utf-8")
    assert main(["export", str(spec), "-o", "/proc/m.pt2"]) == 2  # /proc takes no new file, even from root
    err = capsys.readouterr().err
    assert err.startswith("modelspec export: ") and "/proc" in err and err.count("\n") == 1, err


def test_the_command_names_the_models_there_are(tmp_path, capsys):
    spec = tmp_path / "mlp.nnspec"
    spec.write_text(MLP, encoding="utf-8")
    assert main(["export", str(spec), "--model", "Nope", "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}: no model named 'Nope'") and "Mlp" in err
    assert not (tmp_path / "m.onnx").exists()


def test_the_command_shows_a_spec_error_in_place(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("model M(x: [B, 4]) { fc = Linear(3, 2) }\n"))
    assert main(["export", "-"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "<stdin>:1:34: Linear `fc` expects in_features=3 but its input is [B, 4]"
    assert err[2].strip() == "^"
    assert list(tmp_path.iterdir()) == []


def test_a_warning_made_an_error_stops_the_export(tmp_path, capsys):
    spec = tmp_path / "m.nnspec"
    spec.write_text("model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n    extra = ReLU()\n\n"
                    "    forward(x) {\n        return fc(x)\n    }\n}\n", encoding="utf-8")
    assert main(["export", str(spec), "-W", "error", "-o", str(tmp_path / "m.onnx")]) == 1
    assert "[unused-child]" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_exported_says_its_dims_in_words():
    assert Exported("m.onnx", "onnx", {"B": (0, None), "T": (3, 64), "C": (2, None), "H": (8, 8)}).describe() == \
        "B dynamic, T from 3 to 64, C at least 2, H fixed at 8"
