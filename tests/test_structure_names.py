"""Children named by strings and blocks shaped like nn.Sequential, held against torch.

Two forms of the language reach the way torchvision names its modules:

* a child named by a string that is no identifier, ``"block1-0" = ResBottleneckBlock(56)``, and a
  ``Sequential({"conv": ..., "act": ...})`` of named modules: printed as ``self.add_module("block1-0", ...)``
  and ``nn.Sequential(OrderedDict([...]))``, called as ``getattr(self, "block1-0")(x)``;
* ``block ConvNormAct(out, k=3) = Sequential(...)``: a class deriving from nn.Sequential whose modules,
  children 0, 1, 2..., go to ``super().__init__(...)``, as torchvision's Conv2dNormActivation.

Each is built with torch: the forward runs, the state_dict keys are the ones torch gives such modules,
the parameter count is torch's, and the printed code, exec'd standalone, is the compiled module. A
printed block class called with other arguments builds what the spec builds with them.
specs/regnet.nnspec uses both, and is held against a RegNet written as torchvision writes it.
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict

import pytest

from conftest import ROOT
from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code, summarize
from modelspec import ir
from modelspec.parse import parse

REGNET = ROOT / "specs" / "regnet.nnspec"


def _exec(code: str, name: str):
    namespace: dict = {}
    exec(compile(code, f"<printed {name}>", "exec"), namespace)
    return namespace


def _round_trip(text: str, torch):
    """The compiled module, and the printed code exec'd standalone with the compiled weights: the same module."""
    graph = elaborate_spec(text)
    compiled = compile_spec(text, seed=0).eval()
    printed = _exec(generate_code(text), graph.name)[graph.name]().eval()
    assert list(printed.state_dict()) == list(compiled.state_dict())
    printed.load_state_dict(compiled.state_dict(), strict=True)
    inputs = example_inputs(text, batch=2)
    with torch.no_grad():
        a, b = compiled(*inputs), printed(*inputs)
    assert torch.equal(a, b)
    assert graph.total_params == sum(p.numel() for p in compiled.parameters())
    return compiled


def _tree(module) -> list[tuple]:
    """A module tree as data: each module's path, its type (torch's by name; a printed class as <printed>) and
    the arguments a torch layer shows, so that an ignored stride or kernel size shows too."""
    return [(name, type(m).__name__, m.extra_repr()) if type(m).__module__.startswith("torch.") else (name, "<printed>")
            for name, m in module.named_modules()]


def _state(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- children named by strings
QUOTED = """
block Block(c, down=True) {
    "conv-1" = Conv2d(_, c, 3, padding=1)
    "act-2" = ReLU() if down
}

model M(x: [B, 3, 8, 8]) {
    "block1-0" = Block(8)
    "block1-1" = Block(8, down=False)
    "ß-2" = Conv2d(_, 4, 1)
}
"""


def test_a_child_named_by_a_string_keeps_its_name_in_the_state_dict(torch):
    model = _round_trip(QUOTED, torch)
    assert list(model.state_dict()) == [
        "block1-0.conv-1.weight", "block1-0.conv-1.bias", "block1-1.conv-1.weight", "block1-1.conv-1.bias",
        "ß-2.weight", "ß-2.bias"]
    assert [n for n, _ in model.named_children()] == ["block1-0", "block1-1", "ß-2"]
    assert getattr(model.get_submodule("block1-1"), "act-2") is None  # absent: registered as None, as torchvision does


def test_a_child_named_by_a_string_is_printed_as_torchvision_writes_it():
    code = generate_code(QUOTED)
    assert 'self.add_module("conv-1", nn.Conv2d(in_channels, c, 3, padding=1))' in code
    assert 'self.add_module("act-2", nn.ReLU())' in code and 'self.add_module("act-2", None)' in code
    assert 'x = getattr(self, "conv-1")(x)' in code
    assert 'if getattr(self, "act-2") is not None:' in code
    assert 'self.add_module("\\u00df-2", nn.Conv2d(8, 4, 1))' in code  # escaped: the code stays ASCII
    assert code.isascii()
    assert "class M(nn.Sequential):" in code  # no forward: its children run in order, named so or not


def test_the_summary_names_a_child_by_its_string():
    rows = summarize(elaborate_spec(QUOTED)).to_json()
    paths = [r["path"] for r in json.loads(rows)["rows"]]
    assert {"block1-0", "block1-0.conv-1", "block1-0.act-2", "ß-2"} <= set(paths)


def test_a_quoted_name_that_could_be_bare_is_refused():
    with pytest.raises(SpecError) as info:
        parse('model M(x: [B, 4]) { "fc" = Linear(_, 2) }')
    assert "needs no quotes" in info.value.message and "fc = ..." in info.value.hint


# ---------------------------------------------------------------- a Sequential of named modules
NAMED = """
model M(x: [B, 3, 8, 8]) {
    features = Sequential({"conv": Conv2d(_, 8, 3), "norm-1": BatchNorm2d(_), "act": ReLU()})
    pool = AdaptiveAvgPool2d(1)
    head = Sequential({"flat": Flatten(), "fc": Linear(_, 2)})
}
"""


def test_a_sequential_of_named_modules_is_torchs_ordered_dict_form(torch):
    model = _round_trip(NAMED, torch)
    assert list(model.state_dict()) == [
        "features.conv.weight", "features.conv.bias", "features.norm-1.weight", "features.norm-1.bias",
        "features.norm-1.running_mean", "features.norm-1.running_var", "features.norm-1.num_batches_tracked",
        "head.fc.weight", "head.fc.bias"]
    reference = torch.nn.Sequential(OrderedDict([("conv", torch.nn.Conv2d(3, 8, 3)),
                                                 ("norm-1", torch.nn.BatchNorm2d(8)), ("act", torch.nn.ReLU())]))
    assert _tree(model.features) == _tree(reference)
    code = generate_code(NAMED)
    assert code.startswith('"""M, generated by modelspec."""\nfrom collections import OrderedDict\n\nimport torch\n')
    assert "self.head = nn.Sequential(OrderedDict([\n" in code and '("norm-1", nn.BatchNorm2d(8)),' in code


def test_only_a_spec_with_named_modules_imports_ordered_dict():
    assert "OrderedDict" not in generate_code("model M(x: [B, 4]) { s = Sequential(Linear(_, 2), ReLU()) }")


def test_a_comprehension_names_the_modules_and_fixes_their_count(torch):
    text = """
block AnyStage(w, depth, index) = Sequential({"block" + str(index) + "-" + str(i): Linear(_, w) for i in range(depth)})

model M(x: [B, 4]) {
    block2 = AnyStage(6, 3, 2)
}
"""
    model = _round_trip(text, torch)
    assert [n for n, _ in model.block2.named_children()] == ["block2-0", "block2-1", "block2-2"]
    cls = next(c for c in elaborate_spec(text).classes if c.block == "AnyStage")
    # the keys are printed as the strings they are: what makes them is fixed in the class, not taken
    assert cls.fixed == {"depth": 3, "index": 2} and [p.name for p in cls.ctor_params] == ["in_features", "w"]


# ---------------------------------------------------------------- a block shaped like nn.Sequential
CONV_NORM_ACT = """
block ConvNormAct(out, k = 3, stride = 1) = Sequential(
    Conv2d(_, out, k, stride=stride, padding=(k - 1) // 2, bias=False),
    BatchNorm2d(_),
    ReLU(inplace=True),
)
model Net(x: [B, 3, 32, 32]) {
    stem = ConvNormAct(16, stride=2)
    body = Sequential(ConvNormAct(32), ConvNormAct(64, k=1))
}
"""

CONV_NORM_ACT_CLASS = '''class ConvNormAct(nn.Sequential):
    def __init__(self, in_channels, out, k=3, stride=1):
        super().__init__(
            nn.Conv2d(in_channels, out, k, stride=stride, padding=(k - 1) // 2, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        )
'''


def test_a_sequential_block_prints_as_a_subclass_of_nn_sequential():
    code = generate_code(CONV_NORM_ACT)
    assert CONV_NORM_ACT_CLASS in code
    assert "\n\n\n" + CONV_NORM_ACT_CLASS + "\n\nclass Net(" in code  # nothing more: nn.Sequential's own forward
    assert "self.stem = ConvNormAct(3, 16, stride=2)" in code


def test_a_sequential_block_has_torchs_numbered_children(torch):
    model = _round_trip(CONV_NORM_ACT, torch)
    assert isinstance(model.stem, torch.nn.Sequential)
    assert list(_state(model.stem)) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked"]
    assert [k for k in model.state_dict() if k.startswith("body.1.")][:2] == ["body.1.0.weight", "body.1.1.weight"]
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
                                    torch.nn.BatchNorm2d(16), torch.nn.ReLU(inplace=True))
    assert _tree(model.stem)[1:] == _tree(reference)[1:]
    assert _state(model.stem) == _state(reference)


def _printed_class_builds_what_the_spec_builds(text: str, block: str, original: str, other: str, torch):
    """``block``'s printed class (from ``text``, where a child ``b`` calls it as ``original``), called with the
    arguments of ``other`` (and the same inferred sizes), is the module the spec builds for ``other``."""
    def spec(call):
        return f"{text}\nmodel Probe(x: [1, 3, 16, 16]) {{\n    b = {call}\n}}\n"

    classes = {c.block: c.name for c in elaborate_spec(spec(original)).classes}
    ns = _exec(generate_code(spec(original)), "Probe")
    cls = ns[classes[block]]
    built = compile_spec(spec(other), seed=0).b
    sig = inspect.signature(cls)
    probe = elaborate_spec(spec(other))
    bound = probe.root.children[0].args  # the block's arguments, as the spec bound them
    inferred = {p: 3 for p in sig.parameters if p == "in_channels"}  # the input's channels
    printed = cls(**inferred, **{k: v for k, v in bound.items() if k in sig.parameters})
    assert _tree(printed)[1:] == _tree(built)[1:]
    assert _state(printed) == _state(built)
    printed.load_state_dict(built.state_dict())
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(printed.eval()(x), built.eval()(x))
    return printed


@pytest.mark.parametrize("other", ["ConvNormAct(8, k=1)", "ConvNormAct(5, k=5, stride=2)", "ConvNormAct(8, stride=3)"])
def test_the_printed_sequential_class_honours_its_parameters(other, torch):
    block = CONV_NORM_ACT.split("model Net")[0]
    printed = _printed_class_builds_what_the_spec_builds(block, "ConvNormAct", "ConvNormAct(16)", other, torch)
    assert isinstance(printed, torch.nn.Sequential)


def test_a_repeat_in_a_sequential_block_keeps_its_count(torch):
    text = """
block Deep(c, depth=2) = Sequential(*[Conv2d(c, c, 3, padding=1) for _ in range(depth)])
"""
    code = generate_code(text + "model M(x: [B, 3, 16, 16]) { b = Deep(3) }")
    assert "super().__init__(*[nn.Conv2d(c, c, 3, padding=1) for _ in range(depth)])" in code
    printed = _printed_class_builds_what_the_spec_builds(text, "Deep", "Deep(3)", "Deep(3, depth=5)", torch)
    assert len(printed) == 5


def test_optional_modules_of_a_sequential_block_fix_their_condition(torch):
    text = """
block Head(c, p=0.0) = Sequential(Conv2d(_, c, 1), *([Dropout(p)] if p > 0 else []), ReLU())
"""
    code = generate_code(text + "model M(x: [B, 3, 16, 16]) { a = Head(4)\n b = Head(4, p=0.5) }")
    assert "*(" not in code and "nn.Dropout(0.5)" in code
    graph = elaborate_spec(text + "model M(x: [B, 3, 16, 16]) { a = Head(4)\n b = Head(4, p=0.5) }")
    assert sorted(c.fixed["p"] for c in graph.classes if c.block == "Head") == [0.0, 0.5]
    _printed_class_builds_what_the_spec_builds(text, "Head", "Head(4)", "Head(7)", torch)


def test_a_sequential_block_ir_round_trips_through_json():
    spec = parse(CONV_NORM_ACT + '\nblock S(c) { "a-1" = ReLU() }\n')
    block = spec.blocks()[0]
    assert block.body == [] and isinstance(block.value, ir.Call) and block.value.func.id == "Sequential"
    assert spec.blocks()[1].value is None and spec.blocks()[1].body[0].name == "a-1"
    assert ir.SpecFile.model_validate_json(spec.model_dump_json()) == spec


# ---------------------------------------------------------------- RegNet, as torchvision writes it
def _torchvision_regnet(torch):
    """A RegNetX written as torchvision.models.regnet writes it (its classes, names and order), at the sizes
    of specs/regnet.nnspec: stem 24, widths (24, 56), depths (1, 2), group width 8, 10 classes."""
    nn = torch.nn

    class ConvNormActivation(nn.Sequential):  # torchvision.ops.misc.Conv2dNormActivation, BatchNorm2d and ReLU
        def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, activation=True):
            layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                                bias=False), nn.BatchNorm2d(out_channels)]
            if activation:
                layers.append(nn.ReLU(inplace=True))
            super().__init__(*layers)

    class SimpleStemIN(ConvNormActivation):
        def __init__(self, width_in, width_out):
            super().__init__(width_in, width_out, kernel_size=3, stride=2)

    class BottleneckTransform(nn.Sequential):
        def __init__(self, width_in, width_out, stride, group_width):
            layers = OrderedDict()
            g = width_out // group_width
            layers["a"] = ConvNormActivation(width_in, width_out, kernel_size=1)
            layers["b"] = ConvNormActivation(width_out, width_out, kernel_size=3, stride=stride, groups=g)
            layers["c"] = ConvNormActivation(width_out, width_out, kernel_size=1, activation=False)
            super().__init__(layers)

    class ResBottleneckBlock(nn.Module):
        def __init__(self, width_in, width_out, stride, group_width):
            super().__init__()
            self.proj = None
            if width_in != width_out or stride != 1:
                self.proj = ConvNormActivation(width_in, width_out, kernel_size=1, stride=stride, activation=False)
            self.f = BottleneckTransform(width_in, width_out, stride, group_width)
            self.activation = nn.ReLU(inplace=True)

        def forward(self, x):
            if self.proj is not None:
                x = self.proj(x) + self.f(x)
            else:
                x = x + self.f(x)
            return self.activation(x)

    class AnyStage(nn.Sequential):
        def __init__(self, width_in, width_out, stride, depth, group_width, stage_index):
            super().__init__()
            for i in range(depth):
                block = ResBottleneckBlock(width_in if i == 0 else width_out, width_out, stride if i == 0 else 1,
                                           group_width)
                self.add_module(f"block{stage_index}-{i}", block)

    class RegNet(nn.Module):
        def __init__(self, stem_width=24, widths=(24, 56), depths=(1, 2), group_width=8, num_classes=10):
            super().__init__()
            self.stem = SimpleStemIN(3, stem_width)
            current = stem_width
            blocks = []
            for i, (width, depth) in enumerate(zip(widths, depths)):
                blocks.append((f"block{i + 1}", AnyStage(current, width, 2, depth, group_width, i + 1)))
                current = width
            self.trunk_output = nn.Sequential(OrderedDict(blocks))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(in_features=current, out_features=num_classes)

        def forward(self, x):
            x = self.stem(x)
            x = self.trunk_output(x)
            x = self.avgpool(x)
            x = x.flatten(start_dim=1)
            return self.fc(x)

    return RegNet()


def test_regnet_has_torchvisions_keys_and_runs_its_weights_identically(torch):
    model = _round_trip(REGNET.read_text(), torch)
    reference = _torchvision_regnet(torch).eval()
    assert list(_state(model).items()) == list(_state(reference).items())
    assert "trunk_output.block2.block2-1.f.b.0.weight" in model.state_dict()
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)
    assert sum(p.numel() for p in reference.parameters()) == elaborate_spec(REGNET).total_params


def test_regnet_prints_torchvisions_container_forms():
    code = generate_code(REGNET)
    assert "class SimpleStemIN(nn.Sequential):" in code and "class Stage2(nn.Sequential):" in code
    assert 'self.add_module("block2-1", ResBottleneckBlock(width, width))' in code
    assert "super().__init__(OrderedDict([\n" in code  # BottleneckTransform: a, b, c
    assert "self.trunk_output = nn.Sequential(OrderedDict([\n" in code
