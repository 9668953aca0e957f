"""`modelspec summary` and `summarize`: the table, its JSON, and its numbers held against torch.

Parameters are held against torchinfo (a test-only dependency) and mult-adds
against torch's own `torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) on
every bundled spec. The counter is run where it can see every matmul: oneDNN
off (its fused LSTM kernel is opaque to the counter, which then sees only
2,048 of lstm_classifier's 58.7 M MACs at batch 2), the math attention kernel
and no fused Transformer fast path (the fused kernels hide the attention
matmuls). With those settings it covers every op of every bundled spec, so no
spec is excluded.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import SPECS, spec_ids, spec_name
from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, summarize
from modelspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
IDS = spec_ids(SPECS)  # SPECS: the bundled specs, specs/tutorials/ too
TUTORIAL_ERROR = ROOT / "tests" / "errors" / "shape_cnn_tutorial.nnspec"


@lru_cache(maxsize=None)
def compiled(spec: Path):
    """The compiled module of a spec, built once for every test here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout with one recurrent layer, nested-tensor notes
        return compile_spec(spec, seed=0)


# ---------------------------------------------------------------- against torch
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_parameter_totals_equal_torchinfo(spec, torch):
    import torchinfo  # a test dependency (pyproject: test extra)
    model = compiled(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torchinfo.summary(model, input_data=list(example_inputs(spec, batch=1)), verbose=0, depth=20)
    ours = summarize(spec)
    # torchinfo counts a tied parameter (nanoGPT's wte and lm_head) in each module that holds it; torch, once.
    # A module held twice (tutorial 003's nn.Sequential(flatten, layer1, ...)) it counts once, as torch does.
    shared = sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False)) - sum(
        p.numel() for p in model.parameters())
    assert ours.total_params == theirs.total_params - shared == sum(p.numel() for p in model.parameters())
    assert ours.trainable_params == theirs.trainable_params - shared
    assert ours.total_params == sum(p.numel() for p in model.parameters())


def torch_macs(model, inputs, torch) -> int:
    """Half the FLOPs torch's counter sees, on the unfused path whose matmuls it knows."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH), counter:
                model(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return counter.get_total_flops() // 2


# the tutorials' specs of activations, normalization, pooling and reshaping alone: no matmul to count
NO_MATMUL = {"tutorials/activations", "tutorials/batchnorm", "tutorials/flatten", "tutorials/pooling"}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_mult_adds_match_torch_flop_counter(spec, torch):
    theirs = torch_macs(compiled(spec), example_inputs(spec, batch=2), torch)
    ours = summarize(spec, batch=2)
    if spec_name(spec) in NO_MATMUL:
        assert theirs == ours.total_mult_adds == 0
        return
    assert theirs > 0, "the counter saw no matmul"
    assert ours.total_mult_adds == pytest.approx(theirs, rel=0.01)
    assert ours.total_flops == 2 * ours.total_mult_adds


@pytest.mark.parametrize("spec", ["cnn", "mnist_mlp", "vgg_blocks", "resnet18", "lstm_classifier", "two_inputs"])
def test_activation_memory_is_every_layer_output(spec, torch):
    """Every call of a layer leaves its outputs: the forward hooks of torch's leaf modules see the same bytes.
    (Not for the Transformer specs: torch's attention modules hold submodules its fused code never calls.)"""
    path = ROOT / "specs" / f"{spec}.nnspec"
    model = compiled(path)
    seen = []

    def hook(module, args, out):
        seen.extend(t.numel() * t.element_size() for t in _tensors(out))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(*example_inputs(path, batch=3))
    finally:
        for h in handles:
            h.remove()
    assert summarize(path, batch=3).activation_bytes == sum(seen)


def _tensors(x):
    if isinstance(x, (tuple, list)):
        for item in x:
            yield from _tensors(item)
    elif x is not None:
        yield x


# ---------------------------------------------------------------- the numbers among themselves
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_rows_add_up_to_the_totals_at_every_depth(spec):
    full = summarize(spec, batch=2)
    deepest = max(r.depth for r in full.rows)
    for depth in [None, *range(deepest + 1)]:
        s = summarize(spec, batch=2, depth=depth)
        assert (s.total_params, s.total_mult_adds) == (full.total_params, full.total_mult_adds)
        assert sum(r.params for r in s.rows) == s.total_params, depth
        assert sum(r.macs for r in s.rows) == s.total_mult_adds, depth
        assert all(r.depth <= (deepest if depth is None else depth) for r in s.rows)
    assert [r.depth for r in summarize(spec, depth=0).rows] == [0]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_mult_adds_scale_with_the_batch(spec):
    one, two, five = summarize(spec, batch=1), summarize(spec, batch=2), summarize(spec, batch=5)
    assert five.total_mult_adds == 5 * one.total_mult_adds
    # affine in the batch: an activation without one (nanoGPT's position embeddings, [T, C]) stays as it is
    assert five.activation_bytes - one.activation_bytes == 4 * (two.activation_bytes - one.activation_bytes)
    assert two.activation_bytes >= one.activation_bytes
    assert five.param_bytes == one.param_bytes == 4 * one.total_params


def test_attention_mult_adds_are_counted_analytically():
    """Two encoder layers, d_model 128, 4 heads, ff 256, 64 tokens: projections, QK^T and AV, feed-forward."""
    s = summarize(ROOT / "specs" / "transformer_classifier.nnspec", batch=1)
    L, E, F = 64, 128, 256
    per_layer = 4 * L * E * E + 2 * L * L * E + 2 * L * E * F
    encoder = next(r for r in s.rows if r.path == "encoder")
    assert encoder.macs == 2 * per_layer
    assert s.total_mult_adds == 2 * per_layer + 128 * 3


VIT_B16 = """
model ViTB16(x: [B, 3, 224, 224]) {
    conv_proj = Conv2d(3, 768, kernel_size=16, stride=16)
    param class_token: [1, 1, 768] = zeros
    param pos_embedding: [1, 197, 768] = normal(0.0, 0.02)
    encoder = TransformerEncoder(
        TransformerEncoderLayer(768, nhead=12, dim_feedforward=3072, dropout=0.0, activation="gelu",
                                batch_first=True, norm_first=True),
        num_layers=12,
        enable_nested_tensor=False,
    )
    ln = LayerNorm(_)
    head = Linear(_, 1000)

    forward(x) {
        x = conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([class_token + x[:, :1] * 0, x], dim=1) + pos_embedding  # (no expand in the op table yet)
        x = ln(encoder(x))
        return head(x[:, 0])
    }
}
"""


def test_vit_b16_mult_adds_include_attention():
    """torchvision's vit_b_16: 86,567,656 parameters, 17.56 G MACs (its "GFLOPS" are MACs). Measured once on
    this spec built by torch: FlopCounterMode on the unfused path agrees to the unit, 17,563,828,224; torchinfo
    1.8 reports 173,232,616 mult-adds, leaving the attention out; the counter on the fused fast path 116,373,504."""
    s = summarize(VIT_B16)
    assert s.total_params == 86_567_656
    assert s.total_mult_adds == 17_563_828_224


def test_lstm_mult_adds_are_every_gate_of_every_step():
    s = summarize(ROOT / "specs" / "lstm_classifier.nnspec", batch=2)
    T, B, H = 32, 2, 256
    lstm = next(r for r in s.rows if r.path == "lstm")
    assert lstm.macs == T * B * (4 * H * (128 + H) + 4 * H * (H + H))


# ---------------------------------------------------------------- the table
def test_table_shows_the_tree_kernels_and_totals(capsys):
    assert main(["summary", str(ROOT / "specs" / "cnn.nnspec"), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CNN(x: [B, 1, 28, 28]) -> [B, 10]\n")
    assert re.search(r"^Layer \(type\) +Output shape +Params +Trainable +Kernel +Mult-adds \(MACs\)$", out, re.M)
    assert re.search(r"^  layers \(Sequential\) +\[B, 64, 20, 20\]", out, re.M)
    assert re.search(r"^    0 \(Conv2d\) +\[B, 20, 24, 24\] +520 +yes +5x5 +576,000$", out, re.M)
    assert re.search(r"^    1 \(ReLU\) +\[B, 20, 24, 24\] +0 +-- +-- +--$", out, re.M)
    assert "Total params: 3,310,802\nTrainable params: 3,310,802\nNon-trainable params: 0\n" in out
    assert "Mult-adds (batch 2): 32,732,160 MACs (32.73 M); FLOPs = 2 x MACs = 65.46 M" in out
    assert "Params size: 13.24 MB" in out


def test_depth_folds_deeper_modules_into_their_row(capsys):
    assert main(["summary", str(ROOT / "specs" / "resnet18.nnspec"), "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  layer1 \(Sequential\) \.\.\. +\[B, 64, 56, 56\] +147,968 +yes", out, re.M)
    assert "conv2 (Conv2d)" not in out
    assert "Total params: 11,689,512" in out


def test_json_has_the_totals_and_the_rows(capsys):
    assert main(["summary", str(ROOT / "specs" / "resnet18.nnspec"), "--json", "--batch", "4", "--depth", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    s = summarize(ROOT / "specs" / "resnet18.nnspec", batch=4, depth=2)
    assert data["total_params"] == 11_689_512 == s.total_params
    assert data["trainable_params"] == 11_689_512
    assert data["total_mult_adds"] == s.total_mult_adds == 4 * 1_814_073_344
    assert data["total_flops"] == 2 * data["total_mult_adds"]
    assert data["complete"] is True and data["error"] is None
    assert data["inputs"] == [{"name": "x", "shape": "[B, 3, 224, 224]", "sizes": [4, 3, 224, 224], "dtype": "float"}]
    conv1 = next(r for r in data["rows"] if r["path"] == "conv1")
    assert conv1 == {"path": "conv1", "name": "conv1", "type": "Conv2d", "kind": "layer", "depth": 1,
                     "output_shape": "[B, 64, 112, 112]", "output_sizes": [[4, 64, 112, 112]], "params": 9408,
                     "trainable_params": 9408, "kernel_size": "7x7", "mult_adds": 4 * 118_013_952,
                     "collapsed": False, "failed": False, "line": 24}
    assert max(r["depth"] for r in data["rows"]) == 2


def test_symbols_take_their_example_sizes():
    s = summarize(ROOT / "specs" / "seq_classifier.nnspec", batch=2)
    assert s.sizes == {"B": 2, "T": 128}
    conv = next(r for r in s.rows if r.path == "features.0")
    assert (conv.output, conv.output_sizes) == ("[B, 32, T]", [[2, 32, 128]])


# ---------------------------------------------------------------- a spec with an error
def test_a_shape_error_shows_the_rows_before_it_then_the_error(capsys):
    assert main(["summary", str(TUTORIAL_ERROR)]) == 1
    out, err = capsys.readouterr()
    rows = [ln.split()[0:2] for ln in out.splitlines() if re.match(r"^ *\w+ \((?!type)\w+\)", ln)]
    assert rows == [["CNN", "(model)"], ["layers", "(Sequential)"], ["0", "(Conv2d)"], ["1", "(ReLU)"],
                    ["2", "(Conv2d)"], ["3", "(ReLU)"], ["fc1", "(Linear)"]]
    assert re.search(r"^  fc1 \(Linear\) +error, see below +-- ", out, re.M)
    assert "Stopped at the error below; the totals count the modules above." in out
    assert "Total params: 32,584" in out  # the two convolutions
    assert f"{TUTORIAL_ERROR}:11:18: Linear `fc1` expects in_features=1024 but its input is [B, 25600]" in err
    assert "Traceback" not in err


def test_an_error_inside_a_sequential_marks_it_stopped():
    s = summarize(ROOT / "tests" / "errors" / "shape_sequential_in_features.nnspec", partial=True)
    assert not s.complete and "expects in_features=256" in s.error.message
    stack = next(r for r in s.rows if r.path == "stack")
    assert stack.incomplete and [r.path for r in s.rows if r.failed] == ["stack.2"]
    assert "(stopped inside)" in str(s) and str(s).endswith(s.error.render())


def test_an_error_in_forward_after_every_layer_shows_them_all(capsys):
    assert main(["summary", str(ROOT / "tests" / "errors" / "shape_add_mismatch.nnspec"), "--json"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["complete"] is False and data["error"]["line"] == 4
    assert [r["path"] for r in data["rows"]] == ["", "fc"] and not any(r["failed"] for r in data["rows"])
    assert "cannot add [B, 8] and [B, 4]" in err


def test_absent_children_and_module_arguments_are_no_rows(tmp_path):
    """What is built aside (an absent conditional child, for its class; a module argument) never shows."""
    text = (ROOT / "specs" / "resnet18.nnspec").read_text().replace("fc = Linear(_, 1000)", "fc = Linear(7, 1000)")
    bad = tmp_path / "resnet_bad_fc.nnspec"
    bad.write_text(text)
    s = summarize(bad, partial=True)
    paths = [r.path for r in s.rows]
    assert "layer1.0.downsample" not in paths and "layer2.0.downsample.0" in paths
    assert paths[-1] == "fc" and s.rows[-1].failed
    text = (ROOT / "specs" / "transformer_classifier.nnspec").read_text().replace("Linear(_, 3)", "Linear(5, 3)")
    bad = tmp_path / "transformer_bad.nnspec"
    bad.write_text(text)
    assert [r.path for r in summarize(bad, partial=True).rows] == ["", "embedding", "encoder", "norm", "classifier"]


def test_errors_before_any_module_still_raise():
    with pytest.raises(SpecError):
        summarize("model M(x: [B, 4]) { fc = Linear(_, 2) ", partial=True)
    with pytest.raises(SpecError):
        summarize(TUTORIAL_ERROR)  # partial is asked for, not assumed


def test_python_api_returns_data_and_its_table():
    graph = elaborate_spec(ROOT / "specs" / "mnist_mlp.nnspec")
    s = summarize(graph, batch=3)
    assert str(s) == s.table() and str(s).startswith("NeuralNetwork(x: [B, 1, 28, 28]) -> [B, 10]")
    assert s.to_dict()["total_params"] == s.total_params == graph.total_params == 669_706
    assert json.loads(s.to_json()) == s.to_dict()
    with pytest.raises(ValueError):
        summarize(graph, batch=0)
