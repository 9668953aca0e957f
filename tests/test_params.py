"""Raw parameters and buffers: every init prints as torch code and does what it says."""

import pytest

from modelspec import SpecError, compile_spec, example_inputs, generate_code


def spec_with(init: str, shape: str = "[4, 3]") -> str:
    return f"model P(x: [B, 4]) {{\n    param W: {shape} = {init}\n    forward(x) {{ return x @ W }}\n}}\n"


@pytest.mark.parametrize(
    "init, printed",
    [
        ("zeros", "torch.zeros(4, 3)"),
        ("ones", "torch.ones(4, 3)"),
        ("randn", "torch.randn(4, 3)"),
        ("constant(0.5)", "torch.full((4, 3), 0.5)"),
        ("normal(0.0, 0.02)", "nn.init.normal_(torch.empty(4, 3), 0.0, 0.02)"),
        ("uniform(-0.1, 0.1)", "nn.init.uniform_(torch.empty(4, 3), -0.1, 0.1)"),
        ("xavier_uniform", "nn.init.xavier_uniform_(torch.empty(4, 3))"),
        ("xavier_normal", "nn.init.xavier_normal_(torch.empty(4, 3))"),
        ("kaiming_uniform", "nn.init.kaiming_uniform_(torch.empty(4, 3), nonlinearity=\"relu\")"),
        ("kaiming_normal", "nn.init.kaiming_normal_(torch.empty(4, 3), nonlinearity=\"relu\")"),
    ],
)
def test_each_init_prints_as_torch_code_and_runs(init, printed, torch):
    spec = spec_with(init)
    code = generate_code(spec)
    assert f"self.W = nn.Parameter({printed})" in code.replace("'", '"')
    model = compile_spec(spec, seed=0)
    w = model.W.detach()
    assert model.W.requires_grad and tuple(w.shape) == (4, 3)
    if init == "zeros":
        assert torch.all(w == 0)
    elif init == "ones":
        assert torch.all(w == 1)
    elif init.startswith("constant"):
        assert torch.all(w == 0.5)
    elif init.startswith("uniform"):
        assert torch.all((w >= -0.1) & (w <= 0.1))
    else:
        assert w.std() > 0  # random, not left uninitialised like torch.FloatTensor(4, 3)
    (x,) = example_inputs(spec, batch=5)
    assert torch.equal(model(x), x @ w)


def test_buffers_are_state_but_not_parameters(torch):
    spec = (
        "model Masked(x: [B, 4, 4]) {\n"
        "    buffer mask: [4, 4] = ones\n"
        "    param scale: [1] = constant(2.0)\n"
        "    forward(x) { return x * mask * scale }\n"
        "}\n"
    )
    code = generate_code(spec)
    assert 'self.register_buffer("mask", torch.ones(4, 4))' in code
    assert "return x * self.mask * self.scale  # [B, 4, 4]" in code
    model = compile_spec(spec)
    assert [n for n, _ in model.named_parameters()] == ["scale"]
    assert set(model.state_dict()) == {"mask", "scale"}
    (x,) = example_inputs(spec)
    assert torch.equal(model(x), x * 2.0)


@pytest.mark.parametrize(
    "init, message",
    [
        ("gaussian", "unknown init 'gaussian'"),
        ("normal(0.0)", "init normal takes 2 arguments (mean, std), got 1"),
        ("xavier_uniform", "init xavier_uniform needs at least 2 dims"),
    ],
)
def test_bad_inits_are_located_errors(init, message):
    shape = "[3]" if init == "xavier_uniform" else "[4, 3]"
    with pytest.raises(SpecError) as info:
        compile_spec(f"model P(x: [B, 3]) {{\n    param W: {shape} = {init}\n    forward(x) {{ return x * W }}\n}}\n")
    assert message in info.value.message
    assert info.value.line == 2
