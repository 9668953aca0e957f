"""`modelspec export` and `modelspec.export`: ONNX, pt2 and TorchScript files with the spec's dims dynamic.

Each file is loaded back the way its users load it (onnxruntime, torch.export.load, torch.jit.load) and run
at sizes other than the example ones it was traced at, against the eager module built with the same seed.
The ONNX tests skip where the export extra (onnx, onnxscript, onnxruntime) is not installed.
"""

from __future__ import annotations

import io

import pytest

from modelspec import Exported, SpecError, compile_spec, dynamic_shapes, example_inputs, export
from modelspec.cli import main
from modelspec.exporting import OutputError

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


# ---------------------------------------------------------------- the command line
def test_the_command_writes_the_file_and_says_what_became_of_the_dims(torch, tmp_path, capsys):
    spec = tmp_path / "tagger.nnspec"
    spec.write_text(TAGGER, encoding="utf-8")
    out = tmp_path / "tagger.pt2"
    assert main(["export", str(spec), "--format", "pt2", "-o", str(out)]) == 0
    assert torch.export.load(str(out)).module()(torch.randint(0, 10, (2, 4))).shape == (2, 4, 4)
    assert capsys.readouterr().err.splitlines() == [
        "note: T stays 4: torch.export finds that the traced code fixes it (the torchscript format keeps it dynamic)",
        f"wrote {out} (pt2; B dynamic, T fixed at 4)",
    ]


def test_the_command_reads_stdin_and_names_the_file_after_the_model(torch, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(MLP))
    assert main(["export", "-", "--format", "torchscript"]) == 0
    assert capsys.readouterr().err == "wrote Mlp.pt (torchscript; B dynamic)\n"
    assert torch.jit.load(str(tmp_path / "Mlp.pt"))(torch.randn(3, 4)).shape == (3, 3)


def test_the_command_refuses_a_missing_output_folder_in_one_line(tmp_path, capsys):
    spec = tmp_path / "mlp.nnspec"
    spec.write_text(MLP, encoding="utf-8")
    assert main(["export", str(spec), "-o", str(tmp_path / "nope" / "m.onnx")]) == 2
    assert capsys.readouterr().err == f"modelspec export: there is no folder {tmp_path}/nope to write m.onnx in\n"


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
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(spec), "-W", "error", "-o", str(tmp_path / "m.onnx")])
    assert exit_.value.code == 1
    assert "[unused-child]" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_exported_says_its_dims_in_words():
    assert Exported("m.onnx", "onnx", {"B": (0, None), "T": (3, 64), "C": (2, None), "H": (8, 8)}).describe() == \
        "B dynamic, T from 3 to 64, C at least 2, H fixed at 8"
