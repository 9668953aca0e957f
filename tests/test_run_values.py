"""`modelspec run --show` and `--input FILE`: the values printed are the model's, and a file is held to the spec.

Each value the command prints is recomputed here from the same seed (the model built by modelspec.build
from the printed code, the input drawn by make_inputs or read back from the file), so a wrong row, sum or
argmax fails. Each file that does not fit is refused with exit 1 and one line naming the input, what the
spec declares and what the file holds, before a model is built.
"""

from __future__ import annotations

import re
import sys

import pytest

from conftest import ROOT
from modelspec.build import build_module, make_inputs
from modelspec.cli import main
from modelspec.codegen import generate_code
from modelspec.pipeline import load_graph

MLP = str(ROOT / "specs" / "mnist_mlp.nnspec")  # ends in a Linear: logits
CNN = str(ROOT / "specs" / "cnn.nnspec")  # ends in F.softmax: probabilities
TWO = str(ROOT / "specs" / "two_inputs.nnspec")  # image: [B, 3, 32, 32], features: [B, 10]
LSTM = str(ROOT / "specs" / "lstm_classifier.nnspec")  # tokens: Long[B, T=32] into an Embedding of 10000 rows


def run(capsys, *argv):
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def model_of(spec, seed=0):
    graph = load_graph(spec)
    return graph, build_module(generate_code(graph), graph, device="cpu", seed=seed).eval()


def reference(torch, spec, batch=2, seed=0):
    """The random input `modelspec run` draws, and the model's output on it."""
    graph, model = model_of(spec, seed)
    inputs = make_inputs(graph, batch=batch, device="cpu", generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return inputs, model(*inputs)


def forward(torch, spec, *inputs, seed=0):
    with torch.no_grad():
        return model_of(spec, seed)[1](*inputs)


def printed_tensor(out: str, label: str) -> list:
    """The values of the ``tensor([...])`` printed after ``label`` on its line."""
    text = out.split(label, 1)[1].split("\n", 1)[0]
    return [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", text.split("tensor(", 1)[1])]


def printed_block(out: str, after: str) -> str:
    """The tensor printed on the lines after the line ``after`` (indented, up to its closing parenthesis)."""
    rest = out.split(after, 1)[1].split("\n", 1)[1]
    return rest[: rest.index(")") + 1]


def rows_of(block: str) -> list[list[float]]:
    return [[float(v) for v in re.findall(r"-?\d+\.\d+", row)] for row in block.split("],")]


def indented(torch, t) -> str:
    return "\n".join(f"  {line}" if line.strip() else "" for line in repr(t).splitlines())


ACTIVATIONS = str(ROOT / "specs" / "tutorials" / "activations.nnspec")  # six outputs: four activations, two softmaxes
POOLING = str(ROOT / "specs" / "tutorials" / "pooling.nnspec")  # returns two tuples of four pooled maps each
MATMUL = str(ROOT / "specs" / "tutorials" / "matmul_bmm.nnspec")  # returns batched, same, shared, linear


# ---------------------------------------------------------------- --show
def test_show_prints_logits_their_softmax_sums_and_argmax(torch, capsys):
    _, logits = reference(torch, MLP)
    code, out, err = run(capsys, MLP, "--show")
    assert code == 0 and err == ""
    assert "\noutput 0: [2, 10] float32\n" in out  # no forward in the spec: no name for its output
    assert indented(torch, logits) in out  # the rows as torch prints them, all 10 classes
    assert printed_tensor(out, "  row sums: ") == pytest.approx(logits.sum(dim=1).tolist(), abs=1e-4)
    assert "the rows do not sum to 1: if these are class scores, they are logits, not probabilities" in out
    probs = torch.softmax(logits, dim=1)
    shown = rows_of(printed_block(out, "softmax(dim=1), the probability of each class:"))
    assert shown == [pytest.approx(row, abs=1e-4) for row in probs.tolist()]
    assert printed_tensor(out, "row sums after softmax: ") == pytest.approx([1.0, 1.0], abs=1e-4)
    argmax = printed_tensor(out, "predicted class (argmax of each row): ")
    assert argmax == probs.argmax(dim=1).tolist() == logits.argmax(dim=1).tolist()


def test_show_tells_probabilities_and_cuts_rows(torch, capsys):
    _, probs = reference(torch, CNN, batch=7)
    code, out, _ = run(capsys, CNN, "--show", "--batch", "7")
    assert code == 0
    assert "\noutput 0 (F.softmax(x, dim=1)): [7, 10] float32 (the first 5 of 7 rows)\n" in out
    assert indented(torch, probs[:5]) in out and indented(torch, probs[:6]) not in out
    assert printed_tensor(out, "  row sums: ") == pytest.approx(probs[:5].sum(dim=1).tolist(), abs=1e-4)
    assert "every row sums to 1: these are probabilities (the model ends in a softmax)" in out
    assert "softmax(dim=1)" not in out  # already probabilities: nothing to turn into them
    assert printed_tensor(out, "predicted class (argmax of each row): ") == probs[:5].argmax(dim=1).tolist()


def test_show_cuts_columns_and_flattens_samples(torch, capsys, tmp_path):
    spec = tmp_path / "wide.nnspec"
    spec.write_text("model Wide(x: [B, 3, 4, 4]) {\n    conv = Conv2d(3, 2, 1)\n    flat = Flatten()\n"
                    "    fc = Linear(32, 12)\n}\n")
    code, out, _ = run(capsys, str(spec), "--show")
    assert code == 0
    assert "output 0: [2, 12] float32 (the first 10 of 12 columns)" in out
    assert "row sums (over all 12 columns): " in out
    spec.write_text("model Img(x: [B, 3, 4, 4]) {\n    conv = Conv2d(3, 2, 1)\n}\n")
    inputs, y = reference(torch, str(spec))
    code, out, _ = run(capsys, str(spec), "--show")
    assert "output 0: [2, 2, 4, 4] float32\n" in out  # a small sample in its own shape
    assert indented(torch, y) in out
    assert "row sums" not in out and "predicted class" not in out  # images are not class scores
    spec.write_text("model Img(x: [B, 3, 8, 8]) {\n    conv = Conv2d(3, 2, 1)\n}\n")
    inputs, y = reference(torch, str(spec))
    code, out, _ = run(capsys, str(spec), "--show")
    assert "output 0: [2, 2, 8, 8] float32 (each row one sample's [2, 8, 8] flattened, the first 10 of " \
           "128 values)" in out  # over 100 values: flattened
    assert indented(torch, y.reshape(2, -1)[:, :10]) in out


def test_show_prints_the_inputs_before_the_outputs(torch, capsys):
    (x,), y = reference(torch, ACTIVATIONS)
    code, out, _ = run(capsys, ACTIVATIONS, "--show")
    assert code == 0
    assert f"\n\ninput x: [2, 3] float32\n{indented(torch, x)}\n\noutput 0 (sigmoid(x)): " in out
    (image, seq), _ = reference(torch, POOLING)
    code, out, _ = run(capsys, POOLING, "--show")
    assert f"\ninput image: [2, 1, 4, 4] float32\n{indented(torch, image)}\n" in out  # 16 values: in its shape
    assert "\ninput seq: [2, 8, 16] float32 (each row one sample's [8, 16] flattened, the first 10 of 128 values)\n" \
           f"{indented(torch, seq.reshape(2, -1)[:, :10])}\n" in out


def test_show_names_the_outputs_as_the_spec_returns_them(torch, capsys, tmp_path):
    code, out, _ = run(capsys, ACTIVATIONS, "--show")
    names = re.findall(r"^output (\d) \((.*?)\): \[2, 3\] float32$", out, flags=re.M)
    assert names == [("0", "sigmoid(x)"), ("1", "tanh(x)"), ("2", "relu(x)"), ("3", "leaky_relu(x)"),
                     ("4", "probs"), ("5", "log_probs")]
    code, out, _ = run(capsys, MATMUL, "--show")
    assert re.findall(r"^output (\d) \((\w+)\):", out, flags=re.M) == \
        [("0", "batched"), ("1", "same"), ("2", "shared"), ("3", "linear")]
    code, out, _ = run(capsys, POOLING, "--show")  # `return images, sequences`: two tuples of four names each
    pooled = ["maxed", "averaged", "adaptive", "pooled", "seq_maxed", "seq_averaged", "seq_adaptive_avg",
              "seq_adaptive_max"]
    assert re.findall(r"^output (\d) \((\w+)\):", out, flags=re.M) == [(str(i), n) for i, n in enumerate(pooled)]
    assert "  input  image: [2, 1, 4, 4] float32\n" in out and "\n  output 0: [2, 1, 2, 2] float32\n" in out
    spec = tmp_path / "lstm.nnspec"  # a child's tuple, returned by a name: its items by index
    spec.write_text("model M(x: [B, T=5, 4]) {\n    lstm = LSTM(4, 3, batch_first=True)\n"
                    "    forward(x) {\n        out = lstm(x)\n        return out\n    }\n}\n")
    code, out, _ = run(capsys, str(spec), "--show")
    assert re.findall(r"^output (\d) \((.*?)\):", out, flags=re.M) == \
        [("0", "out[0]"), ("1", "out[1][0]"), ("2", "out[1][1]")]


def test_a_small_pooled_map_is_shown_as_a_grid(torch, capsys):
    _, ((maxed, averaged, adaptive, pooled), _) = reference(torch, POOLING)
    code, out, _ = run(capsys, POOLING, "--show")
    assert f"output 2 (adaptive): [2, 1, 2, 2] float32\n{indented(torch, adaptive)}\n" in out
    assert "tensor([[[[" in indented(torch, adaptive)  # each sample a 2x2 grid, as 002 prints it
    assert f"output 3 (pooled): [2, 1, 1, 1] float32\n{indented(torch, pooled)}\n" in out
    assert not re.search(r" $", out, flags=re.M)  # torch's gaps between samples: no trailing spaces


def test_class_scores_only_where_they_mean_something(torch, capsys):
    _, (sig, tanh, relu, leaky, probs, log_probs) = reference(torch, ACTIVATIONS)
    code, out, _ = run(capsys, ACTIVATIONS, "--show")
    assert code == 0
    blocks = out.split("\n\noutput ")[1:]
    assert len(blocks) == 6
    for block, t in zip(blocks[:4], (sig, tanh, relu, leaky)):  # activations, 4 of 6 outputs: their values alone
        assert block.split("\n", 1)[1] == indented(torch, t)
    assert "every row sums to 1: these are probabilities (a softmax's output)" in blocks[4]
    assert printed_tensor(blocks[4], "predicted class (argmax of each row): ") == probs.argmax(dim=1).tolist()
    assert "these are log-probabilities (log_softmax)" in blocks[5]
    shown = rows_of(printed_block(blocks[5], "exp, the probability of each class:"))
    assert shown == [pytest.approx(row, abs=1e-4) for row in log_probs.exp().tolist()]
    code, out, _ = run(capsys, MATMUL, "--show")  # its [2, 2] `linear`, one of four outputs: no class scores
    assert "row sums" not in out and "logits" not in out and "predicted class" not in out


def test_without_the_new_flags_run_prints_what_it_did(capsys):
    code, out, _ = run(capsys, MLP)
    assert code == 0
    assert re.fullmatch(r"NeuralNetwork on cpu, batch 2\n  input  x: \[2, 1, 28, 28\] float32\n"
                        r"  output 0: \[2, 10\] float32\n  parameters: 669,706\n"
                        r"  build: \d+\.\d ms, forward: \d+\.\d\d ms\n", out), out


def test_help_names_the_new_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--show" in out and "--input FILE.pt|FILE.npz" in out and "weights_only=True" in out
    assert "modelspec run mnist_mlp.nnspec --input" in out


# ---------------------------------------------------------------- --input: files that fit
def test_input_pt_tensor_sets_the_batch_and_shows_the_values(torch, capsys, tmp_path):
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    torch.save(x, tmp_path / "x.pt")
    code, out, err = run(capsys, MLP, "--input", str(tmp_path / "x.pt"))
    assert code == 0 and err == ""
    assert out.startswith(f"NeuralNetwork on cpu, batch 3, inputs from {tmp_path / 'x.pt'}\n"
                          "  input  x: [3, 1, 28, 28] float32\n")
    logits = forward(torch, MLP, x)
    assert indented(torch, logits) in out  # --input shows the values without --show
    assert "\n\ninput x: [3, 1, 28, 28] float32 (each row one sample's [1, 28, 28] flattened, the first 10 of 784 " \
           f"values)\n{indented(torch, x.reshape(3, -1)[:, :10])}\n\noutput 0: [3, 10] float32\n" in out
    assert printed_tensor(out, "predicted class (argmax of each row): ") == logits.argmax(dim=1).tolist()


def test_input_pt_dict_is_cast_to_the_declared_dtype(torch, capsys, tmp_path):
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    torch.save({"x": x}, tmp_path / "x.pt")
    code, out, _ = run(capsys, MLP, "--input", str(tmp_path / "x.pt"), "--seed", "3")
    assert code == 0
    assert "  input  x: [2, 1, 28, 28] float32 (float64 in the file)\n" in out
    assert indented(torch, forward(torch, MLP, x.float(), seed=3)) in out
    assert indented(torch, x.float().reshape(2, -1)[:, :10]) in out  # the input as the model took it: float32


@pytest.mark.parametrize("payload", ["tuple", "list", "dict"])
def test_input_of_two_tensors_by_order_or_by_name(torch, capsys, tmp_path, payload):
    image, features = torch.rand(4, 3, 32, 32), torch.rand(4, 10)
    saved = {"tuple": (image, features), "list": [image, features],
             "dict": {"features": features, "image": image}}[payload]  # a dict's order does not matter
    torch.save(saved, tmp_path / "in.pt")
    code, out, _ = run(capsys, TWO, "--input", str(tmp_path / "in.pt"))
    assert code == 0
    assert "  input  image: [4, 3, 32, 32] float32\n  input  features: [4, 10] float32\n" in out
    assert indented(torch, forward(torch, TWO, image, features)) in out


def test_input_npz_by_name_and_by_position(torch, capsys, tmp_path):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    image, features = rng.random((2, 3, 32, 32)), rng.random((2, 10)).astype(np.float32)
    expected = indented(torch, forward(torch, TWO, torch.from_numpy(image).float(), torch.from_numpy(features)))
    np.savez(tmp_path / "named.npz", features=features, image=image)
    np.savez(tmp_path / "positional.npz", image, features)  # arr_0, arr_1
    for name in ("named.npz", "positional.npz"):
        code, out, _ = run(capsys, TWO, "--input", str(tmp_path / name))
        assert code == 0, name
        assert "  input  image: [2, 3, 32, 32] float32 (float64 in the file)\n" in out
        assert expected in out


def test_input_long_tokens_set_a_symbol_with_an_example(torch, capsys, tmp_path):
    tokens = torch.randint(0, 10000, (2, 20), generator=torch.Generator().manual_seed(1), dtype=torch.int32)
    torch.save(tokens, tmp_path / "t.pt")
    code, out, _ = run(capsys, LSTM, "--input", str(tmp_path / "t.pt"))
    assert code == 0
    assert "  input  tokens: [2, 20] int64 (int32 in the file)\n" in out  # T=32 is an example; the file's is 20
    assert indented(torch, forward(torch, LSTM, tokens.long())) in out


# ---------------------------------------------------------------- --input: files that do not fit
def refused(capsys, spec, path, *more):
    code, out, err = run(capsys, spec, "--input", str(path), *more)
    assert code == 1 and out == "", out
    assert err.startswith(f"modelspec run: {path}") and err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("shape, message", [
    ((1, 28, 28), "the spec declares x: [B, 1, 28, 28]; the file holds [1, 28, 28]: add a batch dim: x.unsqueeze(0)"),
    ((28, 28), "the file holds [28, 28]: add 2 leading dims of size 1: x.reshape(1, 1, 28, 28)"),
    ((2, 784), "the file holds [2, 784]: reshape it: x.reshape(-1, 1, 28, 28)"),
    ((1, 2, 1, 28, 28), "the file holds [1, 2, 1, 28, 28]: drop the leading dim of size 1: x.squeeze(0)"),
], ids=["no-batch", "no-batch-no-channel", "flat", "extra-dim"])
def test_wrong_rank(torch, capsys, tmp_path, shape, message):
    torch.save(torch.rand(*shape), tmp_path / "x.pt")
    assert message in refused(capsys, MLP, tmp_path / "x.pt")


@pytest.mark.parametrize("shape, message", [
    ((2, 3, 28, 28), "the file holds [2, 3, 28, 28], and dim 1 is 3, not 1: resize the data, or declare the input "
                     "as the file holds it: x: [B, 3, 28, 28]"),
    ((2, 28, 28, 1), "the file holds [2, 28, 28, 1], and dim 1 is 28, not 1: its dims are in another order: "
                     "x.permute(0, 3, 1, 2)"),
], ids=["channels", "channels-last"])
def test_wrong_dim(torch, capsys, tmp_path, shape, message):
    torch.save(torch.rand(*shape), tmp_path / "x.pt")
    assert message in refused(capsys, MLP, tmp_path / "x.pt")


def test_wrong_count_and_names(torch, capsys, tmp_path):
    torch.save(torch.rand(2, 3, 32, 32), tmp_path / "one.pt")
    assert refused(capsys, TWO, tmp_path / "one.pt").endswith(
        "one.pt holds 1 tensor, but ImageAndTabular takes 2 inputs (image: [B, 3, 32, 32], features: [B, 10]): "
        "save one tensor per input: torch.save({'image': image, 'features': features}, 'one.pt')")
    torch.save((torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)), tmp_path / "two.pt")
    assert "two.pt holds 2 tensors, but NeuralNetwork takes 1 input (x: [B, 1, 28, 28])" in \
        refused(capsys, MLP, tmp_path / "two.pt")
    torch.save({"image": torch.rand(2, 3, 32, 32), "feature": torch.rand(2, 10)}, tmp_path / "typo.pt")
    assert refused(capsys, TWO, tmp_path / "typo.pt").endswith(
        "holds no tensor 'features' for the input features: [B, 10]; it holds: 'image', 'feature': "
        "did you mean feature?")
    torch.save({"x": torch.rand(2, 1, 28, 28), "y": torch.zeros(2)}, tmp_path / "extra.pt")
    assert "holds 'y', which is no input of NeuralNetwork (its inputs: x)" in \
        refused(capsys, MLP, tmp_path / "extra.pt")


def test_symbols_agree_across_inputs(torch, capsys, tmp_path):
    torch.save({"image": torch.rand(2, 3, 32, 32), "features": torch.rand(3, 10)}, tmp_path / "b.pt")
    assert "the file's 'features' holds [3, 10], so B is 3, but B is 2 in image: every input's B is one size" in \
        refused(capsys, TWO, tmp_path / "b.pt")


def test_dtype_kind_and_index_range(torch, capsys, tmp_path):
    torch.save(torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8), tmp_path / "u8.pt")
    assert "the spec declares x: [B, 1, 28, 28]; the file holds uint8 values: x.float() / 255 (pixels 0..255 " \
           "scaled to 0..1, as ToTensor does), or declare the input as the file holds it" in \
        refused(capsys, MLP, tmp_path / "u8.pt")
    torch.save(torch.randint(0, 9, (2, 1, 28, 28), dtype=torch.int16), tmp_path / "i16.pt")  # no pixels: no / 255
    assert refused(capsys, MLP, tmp_path / "i16.pt").endswith(
        "the file holds int16 values: x.float(), or declare the input as the file holds it")
    torch.save(torch.rand(2, 20), tmp_path / "f.pt")
    assert "the spec declares tokens: Long[B, T]; the file holds float32 values: indices are whole numbers: " \
           "tokens.long()" in refused(capsys, LSTM, tmp_path / "f.pt")
    torch.save(torch.tensor([[1, 10000]]), tmp_path / "big.pt")
    assert "the file holds indices from 1 to 10000, but the Embedding that tokens feeds has 10000 rows (0 to 9999)" \
        in refused(capsys, LSTM, tmp_path / "big.pt")


def test_sizes_too_small_for_the_model(torch, capsys, tmp_path):
    spec = tmp_path / "conv.nnspec"
    spec.write_text("model M(x: [B, 2, T=64]) {\n    conv = Conv1d(2, 3, 10)\n}\n")
    torch.save(torch.rand(2, 2, 4), tmp_path / "short.pt")
    assert "at T=4, Conv1d `conv` gives [B, 3, T - 9], and T - 9 is -5" in \
        refused(capsys, str(spec), tmp_path / "short.pt")


def test_a_forward_that_fails_on_the_file_is_a_clean_error(torch, capsys, tmp_path):
    spec = tmp_path / "pos.nnspec"
    spec.write_text("model P(idx: Long[B, T=8]) {\n    tok = Embedding(10, 4)\n    pos = Embedding(8, 4)\n"
                    "    forward(idx) {\n        return tok(idx) + pos(torch.arange(idx.size(1)))\n    }\n}\n")
    torch.save(torch.zeros(2, 16, dtype=torch.long), tmp_path / "long.pt")  # T=16: past the 8 positions
    code, out, err = run(capsys, str(spec), "--input", str(tmp_path / "long.pt"))
    assert code == 1 and out == ""
    assert err.startswith(f"modelspec run: the forward pass fails on the inputs of {tmp_path / 'long.pt'}: IndexError")


def test_files_that_cannot_be_read(torch, capsys, tmp_path):
    assert refused(capsys, MLP, tmp_path / "nope.pt").endswith("nope.pt: no such file")
    (tmp_path / "x.csv").write_text("a,b\n")
    assert "--input reads a .pt file (torch.save) or an .npz file (numpy.savez), not .csv files" in \
        refused(capsys, MLP, tmp_path / "x.csv")
    (tmp_path / "junk.pt").write_bytes(b"not a tensor file")
    assert "junk.pt is not a file torch.save wrote (or it is damaged): save the inputs with torch.save(x, 'junk.pt')" \
        in refused(capsys, MLP, tmp_path / "junk.pt")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert "is not an .npz archive numpy can read without pickle" in refused(capsys, MLP, tmp_path / "empty.npz")
    (tmp_path / "dir.pt").mkdir()
    assert refused(capsys, MLP, tmp_path / "dir.pt").endswith("this is a directory, not a file of tensors")


class Payload:
    """What an attacker's file would hold: unpickling it, with weights_only=False, makes a folder."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.makedirs, (self.marker,)


def test_a_pickle_that_is_not_tensors_is_refused_and_never_run(torch, capsys, tmp_path):
    marker = tmp_path / "ran"
    torch.save(Payload(str(marker)), tmp_path / "evil.pt")
    err = refused(capsys, MLP, tmp_path / "evil.pt")
    assert re.search(r"evil\.pt holds more than tensors \(it names the Python object (os|posix)\.makedirs\); "
                     r"modelspec loads only tensors and never runs code from a file", err), err
    assert not marker.exists()
    torch.save({"x": 3}, tmp_path / "int.pt")  # plain Python values load with weights_only, but are no tensors
    assert "the spec declares x: [B, 1, 28, 28]; the file's 'x' is a Python int, not a tensor" in \
        refused(capsys, MLP, tmp_path / "int.pt")


def test_an_npz_of_python_objects_is_refused(capsys, tmp_path):
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    assert "allow_pickle=False" in refused(capsys, MLP, tmp_path / "obj.npz")


def test_npz_without_numpy_says_so(capsys, tmp_path, monkeypatch):
    (tmp_path / "x.npz").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy now raises ImportError
    assert refused(capsys, MLP, tmp_path / "x.npz").endswith(
        "x.npz: reading an .npz file needs numpy, which is not installed: pip install numpy, or save the inputs "
        "with torch.save as a .pt file")


def test_a_file_over_the_activation_limit_is_not_read(torch, capsys, tmp_path):
    torch.save({"x": torch.rand(1, 1, 28, 28), "pad": torch.zeros(100_000)}, tmp_path / "big.pt")
    assert "over the limit of 20.00 kB on a model's inputs and activations" in \
        refused(capsys, MLP, tmp_path / "big.pt", "--max-activations", "20000")


def test_the_file_sizes_are_held_to_the_activation_limit(torch, capsys, tmp_path):
    torch.save(torch.rand(3, 1, 28, 28), tmp_path / "x.pt")  # 9 kB of input; activations at B=3 pass 20 kB
    code, out, err = run(capsys, MLP, "--input", str(tmp_path / "x.pt"), "--max-activations", "20000")
    assert code == 1 and out == ""
    assert "at B=3, the inputs (9.41 kB) and forward activations" in err


def test_batch_goes_with_random_input_only(torch, capsys, tmp_path):
    torch.save(torch.rand(2, 1, 28, 28), tmp_path / "x.pt")
    assert main(["run", MLP, "--input", str(tmp_path / "x.pt"), "--batch", "2"]) == 2  # a usage mistake
    assert capsys.readouterr().err == ("modelspec run: --batch sizes the random input; with --input the file's "
                                       "tensors set the batch\n")


def test_the_readme_misfit_is_what_run_prints(torch, capsys, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"```\n(modelspec run: .*?)\n```", readme, flags=re.S)
    monkeypatch.chdir(tmp_path)
    torch.save(torch.rand(1, 28, 28), "one.pt")  # the tutorials' X = torch.rand(1, 28, 28)
    assert refused(capsys, MLP, "one.pt") == shown
