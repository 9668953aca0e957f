"""Real architectures: what their specs must match beyond compiling and running."""

import pytest

from conftest import ROOT
from modelspec import compile_spec, elaborate_spec, example_inputs, generate_code
from reference_models import resnet18

SPECS = ROOT / "specs"


def test_resnet18_has_torchvisions_parameters_and_keys(torch):
    model = compile_spec(SPECS / "resnet18.nnspec", seed=0)
    reference = resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias"):
        assert key in ours
    assert "layer1.0.downsample.0.weight" not in ours  # identity shortcut where the shape stays


def test_resnet18_runs_torchvision_weights_identically(torch):
    reference = resnet18().eval()
    model = compile_spec(SPECS / "resnet18.nnspec").eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    (x,) = example_inputs(SPECS / "resnet18.nnspec", batch=2)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_resnet18_prints_one_basic_block_class_like_torchvision():
    code = generate_code(SPECS / "resnet18.nnspec")
    assert code.count("class BasicBlock(nn.Module):") == 1
    assert "def __init__(self, in_channels, planes, stride=1):" in code
    assert "if stride != 1 or in_channels != planes:" in code
    assert "if self.downsample is not None:" in code
    assert "BasicBlock(64, 128, stride=2)" in code


def test_unet_concatenates_skips():
    graph = elaborate_spec(SPECS / "unet.nnspec")
    assert str(graph.outputs[0]) == "[B, 2, 64, 64]"
    dec2 = next(n for n in graph.root.children if n.name == "dec2")
    assert str(dec2.inputs[0]) == "[B, 64, 32, 32]"  # 32 upsampled + 32 skipped channels
    assert "torch.cat([self.up2(b), e2], dim=1)" in generate_code(SPECS / "unet.nnspec")


def test_inception_branches_add_up():
    graph = elaborate_spec(SPECS / "inception.nnspec")
    by_name = {n.name: n for n in graph.root.children}
    assert str(by_name["inception1"].outputs[0]) == "[B, 128, 32, 32]"
    assert str(by_name["inception2"].outputs[0]) == "[B, 240, 32, 32]"


def test_my_linear_is_the_tutorials_parameters(torch):
    code = generate_code(SPECS / "my_linear.nnspec")
    assert "self.W = nn.Parameter(nn.init.xavier_uniform_(torch.empty(3, 2)))" in code
    assert "self.b = nn.Parameter(torch.zeros(2))" in code
    assert "y = x @ self.W + self.b  # [B, 2]" in code
    model = compile_spec(SPECS / "my_linear.nnspec", seed=0)
    assert [name for name, _ in model.named_parameters()] == ["W", "b"]
    (x,) = example_inputs(SPECS / "my_linear.nnspec", batch=4)
    assert torch.equal(model(x), x @ model.W + model.b)


def test_batched_matmul_follows_bmm():
    graph = elaborate_spec(SPECS / "batched_matmul.nnspec")
    assert str(graph.outputs[0]) == "[N, 4, 5]"
    assert graph.root.macs == graph.root.macs  # symbolic in N
    assert "torch.bmm(self.proj(x), y)" in generate_code(SPECS / "batched_matmul.nnspec")


def test_module_list_loops_and_module_dict_by_name():
    code = generate_code(SPECS / "module_list.nnspec")
    assert "for layer in self.layers:" in code
    assert 'self.convs["conv1"](x)' in code
    assert "# [B, 20, 24, 24] / [B, 64, 20, 20]" in code


def test_two_inputs():
    graph = elaborate_spec(SPECS / "two_inputs.nnspec")
    assert [name for name, _ in graph.inputs] == ["image", "features"]
    assert "def forward(self, image, features):" in generate_code(SPECS / "two_inputs.nnspec")


@pytest.mark.parametrize("name", ["lstm_classifier", "transformer_classifier"])
def test_sequence_models_index_inside_their_embedding(name, torch):
    spec = SPECS / f"{name}.nnspec"
    graph = elaborate_spec(spec)
    (tokens,) = example_inputs(spec, batch=3)
    assert tokens.dtype == torch.long
    assert int(tokens.max()) < graph.index_bounds["tokens"]
    assert graph.index_bounds["tokens"] > 2
