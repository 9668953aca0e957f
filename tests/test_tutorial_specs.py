"""specs/tutorials/: one spec per topic of the five tutorials this project serves (../shared/tutorials/).

Each spec opens with a comment that says what it teaches and, where the tutorial's code got something
wrong, what and how the spec does right; each gives exactly the warnings listed here (none, but for the
tutorials' first MyLinear, whose plain FloatTensor attributes are the lesson). The specs are bundled specs
like the others (conftest.SPECS): tests/test_specs.py compiles, runs and round-trips each, and
tests/test_views.py holds their views, under tests/golden/tutorials/ and tests/views/KIND/tutorials/.
"""

from __future__ import annotations

import re
import warnings

import pytest

from conftest import ROOT, SPECS
from modelspec import ModelspecWarning, SpecError, compile_spec, elaborate_spec, example_inputs, summarize

TUTORIALS = ROOT / "specs" / "tutorials"
ERRORS = ROOT / "tests" / "errors"

# every topic's spec -> the codes of the warnings it gives (graph.warnings)
EXPECTED_WARNINGS: dict[str, set[str]] = {
    "matmul_bmm": set(),  # torch.matmul, @ and torch.bmm: (N, n, h) x (N, h, m) = (N, n, m)
    "my_linear_tensor": {"unregistered-tensor", "empty-init"},  # MyLinear 1: self.W = torch.FloatTensor(3, 2)
    "my_linear_parameter": set(),  # MyLinear 2: nn.Parameter, with an init
    "my_linear_module": set(),  # MyLinear 3: nn.Linear
    "activations": set(),  # ReLU, LeakyReLU, Sigmoid, Tanh, Softmax(dim=1), LogSoftmax(dim=1)
    "conv": set(),  # Conv1d, Conv2d, Conv3d
    "conv_transpose": set(),  # ConvTranspose1d, 2d, 3d
    "pooling": set(),  # max, avg and adaptive pooling
    "batchnorm": set(),  # BatchNorm1d, 2d, 3d
    "containers": set(),  # Sequential, ModuleList, ModuleDict with the activation chosen by name
    "flatten": set(),  # nn.Flatten(start_dim, end_dim)
    "fashion_mnist_mlp": set(),  # tutorial 003's NeuralNetwork, with its training
    "fashion_mnist_seq_modules": set(),  # tutorial 003's seq_modules, reusing declared children
    "cnn": set(),  # tutorial 002's CNN, fc1 done right
    "linear_regression": set(),  # tutorial 001's linear regression, with its training
}
PATHS = {name: TUTORIALS / f"{name}.nnspec" for name in EXPECTED_WARNINGS}


def opening_comment(path) -> list[str]:
    """The comment lines a spec opens with, without their `#`."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelspecWarning)  # my_linear_tensor's, which the tests here read
        yield


def test_every_topic_has_its_spec_and_every_spec_a_topic():
    missing = sorted(name for name, path in PATHS.items() if not path.exists())
    assert not missing, f"topics without a spec in specs/tutorials/: {missing}"
    extra = sorted(p.stem for p in TUTORIALS.glob("*.nnspec") if p.stem not in EXPECTED_WARNINGS)
    assert not extra, f"specs/tutorials/ specs with no entry in EXPECTED_WARNINGS: {extra}"


def test_the_tutorial_specs_are_bundled_specs():
    assert set(PATHS.values()) <= set(SPECS), "conftest.SPECS leaves tutorial specs out"


@pytest.mark.parametrize("name", sorted(PATHS))
def test_each_spec_opens_with_a_comment_on_what_it_teaches(name):
    comment = opening_comment(PATHS[name])
    assert len(comment) >= 2, f"{name}.nnspec opens with no comment of two lines or more"
    text = " ".join(comment)
    assert text.isascii(), f"{name}.nnspec's opening comment is not plain English text"
    assert re.search(r"\btutorials?\b", text, re.I), f"{name}.nnspec's opening comment names no tutorial"


@pytest.mark.parametrize("name", sorted(PATHS))
def test_each_spec_gives_exactly_its_warnings(name):
    graph = elaborate_spec(PATHS[name])
    assert {w.name for w in graph.warnings} == EXPECTED_WARNINGS[name]


# ---------------------------------------------------------------- what the comments say, held true
def test_my_linear_tensor_has_nothing_to_train(torch):
    model = compile_spec(PATHS["my_linear_tensor"])
    assert list(model.parameters()) == [] and list(model.state_dict()) == []
    assert isinstance(model.W, torch.Tensor) and tuple(model.W.shape) == (3, 2)
    assert model(*example_inputs(PATHS["my_linear_tensor"], batch=4)).shape == (4, 2)


def test_my_linear_parameter_and_module_train_their_weights(torch):
    param = compile_spec(PATHS["my_linear_parameter"], seed=0)
    assert {k: tuple(v.shape) for k, v in param.named_parameters()} == {"W": (3, 2), "b": (2,)}
    assert torch.equal(param.b, torch.zeros(2)) and param.W.abs().sum() > 0  # initialised, not left empty
    module = compile_spec(PATHS["my_linear_module"])
    assert {k: tuple(v.shape) for k, v in module.named_parameters()} == {"linear.weight": (2, 3),
                                                                           "linear.bias": (2,)}


def test_the_tutorials_cnn_mistake_is_refused_and_the_spec_fixes_it():
    case = ERRORS / "tutorial_cnn_linear_mistake.nnspec"
    assert "nn.Linear(64 * 4 * 4, 128)" in case.read_text(encoding="utf-8")
    with pytest.raises(SpecError) as info:
        elaborate_spec(case)
    assert "expects in_features=1024 but its input is [B, 25600]" in info.value.message
    assert "nn.Linear(64 * 20 * 20, 128)" in PATHS["cnn"].read_text(encoding="utf-8")
    assert summarize(PATHS["cnn"]).total_params == 3_310_802


def test_conv2d_refuses_the_tutorials_kernels_argument():
    text = PATHS["conv"].read_text(encoding="utf-8").replace("kernel_size=5, stride=2", "kernels=5, stride=2")
    with pytest.raises(SpecError, match="no argument 'kernels'") as info:
        elaborate_spec(text)
    assert "kernel_size" in info.value.hint


def test_a_moduledict_key_is_checked_when_the_spec_is_compiled():
    text = PATHS["containers"].read_text(encoding="utf-8").replace('act="leaky_relu"', 'act="gelu"')
    with pytest.raises(SpecError, match='no key "gelu"'):
        elaborate_spec(text)


def test_adaptive_avg_pool_gives_the_tutorials_numbers(torch):
    model = compile_spec(PATHS["pooling"]).eval()
    image = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # tutorial 002's 4x4 image, 1..16
    _, seq = example_inputs(PATHS["pooling"], batch=1)
    (maxed, averaged, adaptive, pooled), _ = model(image, seq)
    assert adaptive.flatten().tolist() == [3.5, 5.5, 11.5, 13.5]
    assert maxed.flatten().tolist() == [6.0, 8.0, 14.0, 16.0] and pooled.item() == 8.5
    assert torch.equal(averaged, adaptive)  # 2x2 regions of a 4x4 image, either way


def test_softmax_rows_sum_to_one(torch):
    x = example_inputs(PATHS["activations"], batch=2)
    *_, probs, log_probs = compile_spec(PATHS["activations"])(*x)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2)) and torch.allclose(log_probs.exp(), probs)


def test_seq_modules_shares_the_declared_children():
    model = compile_spec(PATHS["fashion_mnist_seq_modules"])
    assert model.seq_modules[0] is model.flatten and model.seq_modules[1] is model.layer1
    assert sum(p.numel() for p in model.parameters()) == 28 * 28 * 20 + 20 + 20 * 10 + 10


def test_fashion_mnist_mlp_is_the_tutorials_network_without_its_last_relu():
    model = compile_spec(PATHS["fashion_mnist_mlp"])
    assert [type(m).__name__ for m in model.linear_relu_stack] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(m.in_features, m.out_features) for m in model.linear_relu_stack[::2]] == [(784, 512), (512, 512),
                                                                                      (512, 10)]
    assert elaborate_spec(PATHS["fashion_mnist_mlp"]).train is not None
