"""Losses used in a spec, end to end: a child called in forward with (output, target), the target a model input.

check, summary and codegen answer without torch; the compiled module runs on example inputs, and the printed
code, pasted into a fresh namespace, computes the same loss from the same weights. Class indices drawn for a
Long target stay below the input's classes (the example values are drawn below 2, and each spec has more).
"""

from __future__ import annotations

import pytest

from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code
from modelspec.summary import render_table, summarize

SPECS = {
    "cross_entropy": """model Net(x: [B, 4], y: Long[B]) {
    fc = Linear(4, 3)
    loss = CrossEntropyLoss()
    forward(x, y) { return loss(fc(x), y) }
}
""",
    "per_sample": """model Net(x: [B, 4], y: Long[B]) {
    fc = Linear(4, 3)
    loss = CrossEntropyLoss(reduction="none", label_smoothing=0.1)
    forward(x, y) { return loss(fc(x), y) }
}
""",
    "segmentation": """model Net(x: [B, 3, 8, 8], y: Long[B, 8, 8]) {
    conv = Conv2d(3, 4, 3, padding=1)
    loss = CrossEntropyLoss(reduction="none")
    forward(x, y) { return loss(conv(x), y) }
}
""",
    "regression": """model Net(x: [B, 4], y: [B, 1]) {
    fc = Linear(4, 1)
    mse = MSELoss()
    l1 = SmoothL1Loss(beta=0.5)
    forward(x, y) {
        out = fc(x)
        return mse(out, y) + l1(out, y)
    }
}
""",
    "logits": """model Net(x: [B, 4], y: [B, 2]) {
    fc = Linear(4, 2)
    loss = BCEWithLogitsLoss(reduction="sum")
    forward(x, y) { return loss(fc(x), y) }
}
""",
    "triplet": """model Net(a: [B, 8], p: [B, 8], n: [B, 8]) {
    embed = Linear(8, 4)
    loss = TripletMarginLoss(margin=0.5)
    forward(a, p, n) { return loss(embed(a), embed(p), embed(n)) }
}
""",
    "gaussian": """model Net(x: [B, 4], y: [B, 2]) {
    mean = Linear(4, 2)
    var = Linear(4, 1)
    loss = GaussianNLLLoss()
    forward(x, y) { return loss(mean(x), y, F.softplus(var(x))) }
}
""",
}
EXPECTED = {"cross_entropy": (), "per_sample": ("B",), "segmentation": ("B", 8, 8), "regression": (),
            "logits": (), "triplet": (), "gaussian": ()}


def _dims(shape):
    return tuple(str(d.value) if not isinstance(d.value, int) else d.value for d in shape)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shape_and_summary(name):
    graph = elaborate_spec(SPECS[name])
    assert _dims(graph.outputs[0].shape) == EXPECTED[name]
    assert graph.outputs[0].dtype == "float"
    table = render_table(summarize(SPECS[name]))
    assert "Loss)" in table and "[]" in table or name in ("per_sample", "segmentation")


def _exec(code: str, name: str):
    ns: dict = {}
    exec(compile(code, f"<printed {name}>", "exec"), ns)
    return ns[name]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_compiled_and_printed_agree(name, torch):
    spec = SPECS[name]
    graph = elaborate_spec(spec)
    compiled = compile_spec(spec, seed=0).eval()
    printed = _exec(generate_code(spec), graph.name)().eval()
    printed.load_state_dict(compiled.state_dict(), strict=True)
    inputs = example_inputs(spec, batch=3)
    with torch.no_grad():
        a, b = compiled(*inputs), printed(*inputs)
    want = tuple(3 if d == "B" else d for d in EXPECTED[name])
    assert tuple(a.shape) == want and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert "nn." + next(n for n in ("CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "TripletMarginLoss",
                                     "GaussianNLLLoss") if n in spec) in generate_code(spec)


@pytest.mark.parametrize("text, words", [
    ("model Net(x: [B, 4], y: [B]) {\n fc = Linear(4, 3)\n loss = CrossEntropyLoss()\n"
     " forward(x, y) { return loss(fc(x), y) }\n}\n", "class index target Long[B] for input [B, 3]"),
    ("model Net(x: [B, 4], y: Long[B, 3]) {\n fc = Linear(4, 3)\n loss = CrossEntropyLoss()\n"
     " forward(x, y) { return loss(fc(x), y) }\n}\n", "class probabilities as a float target [B, 3]"),
    ("model Net(x: [B, 4], y: [B]) {\n fc = Linear(4, 1)\n loss = MSELoss()\n"
     " forward(x, y) { return loss(fc(x), y) }\n}\n", "target of the input's shape [B, 1]"),
    ("model Net(x: [B, 4], y: Long[B]) {\n fc = Linear(4, 3)\n loss = CrossEntropyLoss()\n"
     " forward(x, y) { return loss(fc(x)) }\n}\n", "takes 2 inputs, got 1"),
    ("model Net(x: [B, 4], y: Long[B]) {\n fc = Linear(4, 3)\n loss = CrossEntropyLoss(weight=[1.0, 2.0, 1.0])\n"
     " forward(x, y) { return loss(fc(x), y) }\n}\n", "weight"),
])
def test_misuse_is_a_located_error(text, words):
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    assert words in info.value.message and info.value.line >= 2


@pytest.mark.parametrize("loss, classes", [("CrossEntropyLoss()", 1), ("NLLLoss()", 2), ("MultiMarginLoss()", 3)])
def test_class_index_targets_are_drawn_below_the_class_count(loss, classes, torch):
    """A target of class indices is bounded as an Embedding's input is: the example targets stay below the
    class count, so `run` on a one-class CrossEntropyLoss does not draw index 1."""
    spec = (f"model Net(x: [B, 4], y: Long[B]) {{\n fc = Linear(4, {classes})\n loss = {loss}\n"
            f" forward(x, y) {{ return loss(fc(x), y) }}\n}}\n")
    assert elaborate_spec(spec).index_bounds == {"y": classes}
    model = compile_spec(spec, seed=0)
    for batch in (8, 64):
        x, y = example_inputs(spec, batch=batch)
        assert int(y.max()) < classes
        assert torch.isfinite(model(x, y))


def test_a_class_index_target_computed_in_forward_is_refused():
    spec = ("model Net(x: [B, 4], y: [B, 3]) {\n fc = Linear(4, 3)\n ce = CrossEntropyLoss()\n"
            " forward(x, y) { return ce(fc(x), y.argmax(dim=1)) }\n}\n")
    with pytest.raises(SpecError, match="takes class indices below 3, but its target is computed") as info:
        elaborate_spec(spec)
    assert info.value.line == 4
