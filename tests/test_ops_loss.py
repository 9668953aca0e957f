"""The losses as functions (F.cross_entropy, F.mse_loss, ...) in a spec's forward, end to end.

tests/test_ops.py holds each function's rule against torch call by call; here a spec calls them: it compiles,
runs on its example inputs and gives torch's value; the printed code computes the same; a class index target
is a model input whose example values are drawn below the class count, as the loss layers' are
(tests/test_losses.py); and a call that does not fit is a located `SpecError` in the words the loss layer
uses for it.
"""

from __future__ import annotations

import pytest

from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code

CE = """model Net(x: [B, 4], target: Long[B]) {
    fc = Linear(4, 10)
    forward(x, target) {
        logits = fc(x)
        return F.cross_entropy(logits, target), F.cross_entropy(logits, target, reduction="none")
    }
}
"""


def _exec(code: str, name: str):
    ns: dict = {}
    exec(compile(code, f"<printed {name}>", "exec"), ns)  # noqa: S102 -- the code under test
    return ns[name]


def test_cross_entropy_of_a_long_target_is_torchs(torch):
    import torch.nn.functional as F

    graph = elaborate_spec(CE)
    assert [(tuple(str(d.value) for d in o.shape), o.dtype) for o in graph.outputs] == [((), "float"),
                                                                                       (("B",), "float")]
    assert graph.index_bounds == {"target": 10}  # the examples are class indices below the 10 classes
    model = compile_spec(CE, seed=0).eval()
    printed = _exec(generate_code(CE), "Net")().eval()
    printed.load_state_dict(model.state_dict(), strict=True)
    assert "return F.cross_entropy(logits, target), F.cross_entropy(logits, target, reduction='none')" in \
        generate_code(CE).replace('"', "'")
    for batch in (1, 5, 64):
        x, target = example_inputs(CE, batch=batch)
        assert target.dtype == torch.long and 0 <= int(target.min()) and int(target.max()) < 10
        with torch.no_grad():
            mean, each = model(x, target)
            want = F.cross_entropy(model.fc(x), target), F.cross_entropy(model.fc(x), target, reduction="none")
            again = printed(x, target)
        assert mean.shape == () and each.shape == (batch,)
        assert torch.equal(mean, want[0]) and torch.equal(each, want[1])
        assert torch.equal(again[0], mean) and torch.equal(again[1], each)


MANY = """model Many(x: [B, 4], y: Long[B], z: [B, 3], labels: Long[B, 3], seq: [T=6, B, 5], targets: Long[B, 2],
            input_lengths: Long[B], target_lengths: Long[B]) {
    fc = Linear(4, 3)
    forward(x, y, z, labels, seq, targets, input_lengths, target_lengths) {
        out = fc(x)
        return (F.mse_loss(out, z, reduction="none"), F.l1_loss(out, z), F.smooth_l1_loss(out, z, beta=0.5),
                F.huber_loss(out, z, delta=2.0), F.cross_entropy(out, F.softmax(z, dim=1), label_smoothing=0.2),
                F.nll_loss(F.log_softmax(out, dim=1), y, reduction="sum"), F.multi_margin_loss(out, y, p=2),
                F.multilabel_margin_loss(out, labels, reduction="none"),
                F.binary_cross_entropy(torch.sigmoid(out), torch.sigmoid(z)),
                F.binary_cross_entropy_with_logits(out, z, size_average=False),
                F.kl_div(F.log_softmax(out, dim=1), F.log_softmax(z, dim=1), reduction="batchmean", log_target=True),
                F.poisson_nll_loss(out, z, full=True), F.gaussian_nll_loss(out, z, F.softplus(z[:, 0])),
                F.cosine_embedding_loss(out, z, torch.where(y > 0, 1.0, -1.0), margin=0.1),
                F.margin_ranking_loss(out, z, torch.where(z > 0, 1.0, -1.0)),
                F.triplet_margin_loss(out, z, -z, swap=True, reduction="none"),
                F.hinge_embedding_loss(out, torch.where(z > 0, 1.0, -1.0)), F.soft_margin_loss(out, z),
                F.multilabel_soft_margin_loss(out, z, reduce=False),
                F.ctc_loss(F.log_softmax(seq, dim=2), targets, input_lengths, target_lengths, zero_infinity=True))
    }
}
"""


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
def test_every_loss_function_gives_torchs_value(torch):
    """Each of the 20 functions in one forward: the shapes the spec infers, and the values, are torch's own."""
    import torch.nn.functional as F

    from modelspec.ops import LOSS_FORMS
    from modelspec.pipeline import symbol_sizes
    from modelspec.shapes import evaluate

    assert all(f"F.{name}(" in MANY for name in LOSS_FORMS)
    graph = elaborate_spec(MANY)
    assert graph.index_bounds == {"y": 3}  # nll_loss and multi_margin_loss: below the 3 classes
    model = compile_spec(MANY, seed=0).eval()
    inputs = example_inputs(MANY, batch=4)
    x, y, z, labels, seq, targets, input_lengths, target_lengths = inputs
    with torch.no_grad():
        got = model(*inputs)
        out = model.fc(x)
        sign = torch.where(z > 0, 1.0, -1.0)
        want = (F.mse_loss(out, z, reduction="none"), F.l1_loss(out, z), F.smooth_l1_loss(out, z, beta=0.5),
                F.huber_loss(out, z, delta=2.0), F.cross_entropy(out, F.softmax(z, dim=1), label_smoothing=0.2),
                F.nll_loss(F.log_softmax(out, dim=1), y, reduction="sum"), F.multi_margin_loss(out, y, p=2),
                F.multilabel_margin_loss(out, labels, reduction="none"),
                F.binary_cross_entropy(torch.sigmoid(out), torch.sigmoid(z)),
                F.binary_cross_entropy_with_logits(out, z, reduction="sum"),
                F.kl_div(F.log_softmax(out, dim=1), F.log_softmax(z, dim=1), reduction="batchmean", log_target=True),
                F.poisson_nll_loss(out, z, full=True), F.gaussian_nll_loss(out, z, F.softplus(z[:, 0])),
                F.cosine_embedding_loss(out, z, torch.where(y > 0, 1.0, -1.0), margin=0.1),
                F.margin_ranking_loss(out, z, sign), F.triplet_margin_loss(out, z, -z, swap=True, reduction="none"),
                F.hinge_embedding_loss(out, sign), F.soft_margin_loss(out, z),
                F.multilabel_soft_margin_loss(out, z, reduction="none"),
                F.ctc_loss(F.log_softmax(seq, dim=2), targets, input_lengths, target_lengths, zero_infinity=True))
    sizes = symbol_sizes(graph, 4)
    assert [tuple(t.shape) for t in got] == [tuple(evaluate(d.value, sizes) for d in o.shape) for o in graph.outputs]
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def _spec(decl: str, call: str, classes: int = 10) -> str:
    return (f"model Net(x: [B, 4], {decl}) {{\n    fc = Linear(4, {classes})\n"
            f"    forward(x, y) {{\n        return {call}\n    }}\n}}\n")


def _refusal(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    return info.value


@pytest.mark.parametrize("decl, call, message, hint", [
    ("y: [B]", "F.cross_entropy(fc(x), y)",
     "F.cross_entropy(...) expects a class index target Long[B] for input [B, 10], but the target is [B] float",
     "declare the target Long[B]: class indices are integers"),
    ("y: Long[B, 10]", "F.cross_entropy(fc(x), y)",
     "F.cross_entropy(...) expects class probabilities as a float target [B, 10] for input [B, 10], but the target "
     "is [B, 10] long", "declare the target Float[B, 10], or give class indices Long[B]"),
    ("y: Long[B, 3]", "F.cross_entropy(fc(x), y)",
     "F.cross_entropy(...) expects a class index target Long[B], or class probabilities of its shape [B, 10] for "
     "input [B, 10], but the target is [B, 3]",
     "the class dim of the input is dim 1 (10); the target holds one class index per sample"),
    ("y: Long[B]", "F.nll_loss(fc(x), y[:, None])",
     "F.nll_loss(...) expects a class index target Long[B] for input [B, 10], but the target is [B, 1]", None),
    ("y: [B]", "F.mse_loss(fc(x), y)",
     "F.mse_loss(...) expects a target of the input's shape [B, 10], but the target is [B]",
     "give the target the same shape; a [B, 1] against a [B] broadcasts to [B, B] in torch: reshape one with "
     ".view(-1) or .unsqueeze(1)"),
    ("y: Long[B]", "F.cross_entropy(fc(x).long(), y)",
     "F.cross_entropy(...) expects its input to be Float[B, 10], but the input is [B, 10] long",
     "make it float: x * 1.0, or declare the input Float[...]"),
    ("y: Long[B]", "F.cross_entropy(fc(x), y, weight=fc(x)[0])",
     "F.cross_entropy(...): 'weight' is a tensor of weights, which a loss in a spec does not take yet: leave it None",
     None),
    ("y: Long[B]", "F.cross_entropy(fc(x), y, reduction=\"avg\")",
     "F.cross_entropy(...): 'reduction' must be one of 'none', 'mean', 'sum', not 'avg'", None),
])
def test_a_call_that_does_not_fit_is_a_located_error(decl, call, message, hint):
    err = _refusal(_spec(decl, call))
    assert err.message == message
    assert (err.line, err.column) == (4, 16)  # the call
    assert hint is None or err.hint == hint
    assert err.hint  # the layer's advice, or the call's signature


LAYER_FORMS = [  # (the target's declaration, the layer, its call, the function's call)
    ("y: [B]", "CrossEntropyLoss()", "loss(fc(x), y)", "F.cross_entropy(fc(x), y)"),
    ("y: Long[B, 3]", "CrossEntropyLoss(label_smoothing=0.1)", "loss(fc(x), y)",
     "F.cross_entropy(fc(x), y, label_smoothing=0.1)"),
    ("y: [B, 10]", "CrossEntropyLoss(ignore_index=1)", "loss(fc(x), y)", "F.cross_entropy(fc(x), y, ignore_index=1)"),
    ("y: Long[B]", "NLLLoss()", "loss(fc(x), y.float())", "F.nll_loss(fc(x), y.float())"),
    ("y: Long[B]", "MultiMarginLoss(p=3)", "loss(fc(x), y)", "F.multi_margin_loss(fc(x), y, p=3)"),
    ("y: [B]", "MSELoss()", "loss(fc(x), y)", "F.mse_loss(fc(x), y)"),
    ("y: [B, 10]", "BCELoss()", "loss(fc(x), y.long())", "F.binary_cross_entropy(fc(x), y.long())"),
    ("y: [B, 10]", "HuberLoss(delta=0.0)", "loss(fc(x), y)", "F.huber_loss(fc(x), y, delta=0.0)"),
    ("y: [B, 10]", "KLDivLoss(reduction=\"avg\")", "loss(fc(x), y)", "F.kl_div(fc(x), y, reduction=\"avg\")"),
    ("y: [B]", "CosineEmbeddingLoss()", "loss(fc(x), fc(x), y[:1])", "F.cosine_embedding_loss(fc(x), fc(x), y[:1])"),
    ("y: [B, 10]", "GaussianNLLLoss()", "loss(fc(x), y, y[:, :2])", "F.gaussian_nll_loss(fc(x), y, y[:, :2])"),
    ("y: [B, 10]", "TripletMarginLoss(margin=0.0)", "loss(fc(x), y, y)",
     "F.triplet_margin_loss(fc(x), y, y, margin=0.0)"),
    ("y: Long[B, 10]", "MultiLabelMarginLoss()", "loss(fc(x), y[:, :3])", "F.multilabel_margin_loss(fc(x), y[:, :3])"),
]


@pytest.mark.parametrize("decl, layer, layer_call, call", LAYER_FORMS, ids=[f[3].split("(")[0] for f in LAYER_FORMS])
def test_the_function_refuses_as_its_layer_does(decl, layer, layer_call, call):
    """One rule per loss: the function's refusal is the layer's, word for word after the label, with its hint."""
    text = _spec(decl, layer_call).replace("    forward", f"    loss = {layer}\n    forward")
    by_layer, by_function = _refusal(text), _refusal(_spec(decl, call))
    label = f"{layer.split('(')[0]} `loss` "
    assert by_layer.message.startswith(label)
    said = by_layer.message[len(label):]
    said = f"{said.split(' ', 1)[1]}" if said.startswith("argument ") else said  # bind's "argument 'p' ..."
    assert by_function.message.split("(...)", 1)[1].lstrip(": ") == said
    if "argument" not in by_layer.message and "the call is" not in by_layer.hint:
        assert by_function.hint == by_layer.hint


@pytest.mark.parametrize("call, classes", [("F.cross_entropy(fc(x), y)", 1), ("F.nll_loss(fc(x), y)", 2),
                                           ("F.multi_margin_loss(fc(x), y)", 3),
                                           ("F.cross_entropy(fc(x), y, ignore_index=0)", 4)])
def test_class_index_targets_are_drawn_below_the_class_count(call, classes, torch):
    """As the layers' (tests/test_losses.py): a one-class F.cross_entropy does not draw the index 1."""
    text = _spec("y: Long[B]", call, classes)
    assert elaborate_spec(text).index_bounds == {"y": classes}
    model = compile_spec(text, seed=0)
    for batch in (8, 64):
        x, y = example_inputs(text, batch=batch)
        assert int(y.max()) < classes
        assert torch.isfinite(model(x, y))


def test_class_probabilities_and_plain_targets_are_not_bounded():
    assert elaborate_spec(_spec("y: [B, 10]", "F.cross_entropy(fc(x), y)")).index_bounds == {}
    assert elaborate_spec(_spec("y: Long[B, 10]", "F.multilabel_soft_margin_loss(fc(x), y)")).index_bounds == {}


def test_a_class_index_target_computed_in_forward_is_refused():
    err = _refusal(_spec("y: [B, 3]", "F.cross_entropy(fc(x), y.argmax(dim=1))", 3))
    assert err.message.startswith("F.cross_entropy(...) takes indices below 3, but its index is computed in forward")
    assert err.line == 4


def test_a_view_of_a_model_input_is_a_class_index_target(torch):
    """A view of the input keeps its examples' bound (a flattened [B, T] target of a [B * T, C] input)."""
    text = ("model Net(x: [B, T=5, 4], y: Long[B, T]) {\n    fc = Linear(4, 6)\n    forward(x, y) {\n"
            "        return F.cross_entropy(fc(x).view(-1, 6), y.view(-1))\n    }\n}\n")
    assert elaborate_spec(text).index_bounds == {"y": 6}
    model = compile_spec(text, seed=0)
    x, y = example_inputs(text, batch=3)
    assert torch.isfinite(model(x, y))
