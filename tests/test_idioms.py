"""The PyTorch idioms students copy from the tutorials work, or are refused where they are written.

* ``nn.ReLU()(h)``, ``nn.Softmax(dim=1)(logits)``: a module made in forward and called at once becomes a
  child of its own (``self.relu``), one per place it is written; one with parameters or buffers is refused.
* ``Sequential(flatten, layer1, ...)``: children held again by a container are the same modules, as
  ``nn.Sequential(self.flatten, self.layer1)`` holds them; their parameters are counted once.
* ``Sequential(OrderedDict([("fc", Linear(...)), ...]))``: named layers, printed in that form.
* ``x.to(device)``, ``x.cuda()``: refused, with how modelspec places the module instead; ``.to(dtype)`` works.
* ``self.fc(x)``, ``self.fc = nn.Linear(4, 2)``, ``forward(self, x)``, ``nn.relu()``, ``bias=false``: refused
  where written, with the line as a spec writes it (``fc(x)``, ``fc = nn.Linear(4, 2)``, ``nn.ReLU()``, ``False``).
* tutorial 003's ``seq_modules`` in a body without forward: every child runs in turn, so the container runs the
  children it holds a second time; the error says so, and which forward runs only the container.

Each working spec is built with torch and held to the project's promise: the printed code is the built
module (same state_dict keys, same outputs), the output shapes are the inferred ones, and the parameters and
mult-adds are what the summary says (torch's ``parameters()`` lists a shared parameter once).
"""

from __future__ import annotations

import warnings

import pytest

from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code, summarize
from modelspec.pipeline import symbol_sizes
from modelspec.shapes import evaluate
from test_specs import _flat, exec_printed


def built(text: str, torch, batch: int = 3):
    """Compile ``text`` and check it against its printed code, its shapes, its parameters and its mult-adds;
    return (graph, the compiled module, the printed code)."""
    from torch.utils.flop_counter import FlopCounterMode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = elaborate_spec(text)
        model = compile_spec(text, seed=0).eval()
        code = generate_code(text)
        summary = summarize(text, batch=batch)
        torch.manual_seed(5)  # other weights: the state_dict must bring the compiled ones over
        printed = exec_printed(code, graph.name)().eval()
    assert list(printed.state_dict()) == list(model.state_dict())
    printed.load_state_dict(model.state_dict(), strict=True)
    inputs = example_inputs(text, batch=batch)
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        with counter:
            got = list(_flat(model(*inputs)))
        again = list(_flat(printed(*inputs)))
    for a, b in zip(got, again, strict=True):
        assert torch.equal(a, b)
    sizes = symbol_sizes(graph, batch)
    assert [tuple(t.shape) for t in got] == [tuple(evaluate(d.value, sizes) for d in o.shape) for o in graph.outputs]
    params = sum(p.numel() for p in model.parameters())
    assert graph.total_params == summary.total_params == params == sum(r.params for r in summary.rows)
    assert summary.total_mult_adds == counter.get_total_flops() // 2
    return graph, model, code


# ---------------------------------------------------------------- Sequential(flatten, layer1, ...)
FASHION = """
model NeuralNetwork(x: [B, 28, 28]) {
    flatten = Flatten()
    layer1 = Linear(28 * 28, 20)
    linear_relu_stack = Sequential(flatten, layer1, ReLU(), Linear(20, 10))
    forward(x) {
        logits = linear_relu_stack(x)
        return nn.Softmax(dim=1)(logits)
    }
}
"""


def test_the_fashion_mnist_tutorial_shares_its_children(torch):
    graph, model, code = built(FASHION, torch)
    assert model.linear_relu_stack[0] is model.flatten and model.linear_relu_stack[1] is model.layer1
    assert ("        self.linear_relu_stack = nn.Sequential(\n            self.flatten,\n            self.layer1,\n"
            in code)
    assert "        self.softmax = nn.Softmax(dim=1)\n" in code
    assert "return self.softmax(logits)" in code
    assert graph.total_params == 784 * 20 + 20 + 20 * 10 + 10  # layer1 once, though two modules hold it
    # torch lists a module once in named_modules; state_dict keeps both names, as print(model) shows both
    assert [n for n, _ in model.named_modules()] == ["", "flatten", "layer1", "linear_relu_stack",
                                                       "linear_relu_stack.2", "linear_relu_stack.3", "softmax"]
    assert "linear_relu_stack.1.weight" in model.state_dict() and "layer1.weight" in model.state_dict()
    rows = {r.path: r for r in summarize(FASHION).rows}
    assert rows["linear_relu_stack.1"].shared == "layer1" and rows["linear_relu_stack.1"].params == 0
    assert rows["layer1"].params == 784 * 20 + 20 and rows["linear_relu_stack.0"].output == "[B, 784]"
    assert "1 (Linear) = layer1" in str(summarize(FASHION))


def test_a_child_held_again_in_lists_dicts_and_nested_containers(torch):
    text = """
block Act() {
    act = ReLU()
}

model M(x: [B, 28, 28]) {
    flatten = Flatten()
    fc1 = Linear(784, 64)
    fc2 = Linear(_, 64)
    act = Act()
    stack = Sequential(fc1, act, Sequential(fc2, ReLU()), fc2)
    heads = ModuleList([fc2, Linear(64, 64)])
    named = ModuleDict({"same": fc2, "other": Linear(64, 2)})
    forward(x) {
        h = stack(flatten(x))
        h = stack(flatten(x)) + h
        for layer in heads {
            h = layer(h)
        }
        return named["same"](h), named["other"](h)
    }
}
"""
    graph, m, code = built(text, torch)
    assert m.stack[0] is m.fc1 and m.stack[1] is m.act and m.stack[2][0] is m.fc2 and m.stack[3] is m.fc2
    assert m.heads[0] is m.fc2 and m.named["same"] is m.fc2
    assert graph.total_params == (784 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 2 + 2)
    assert "nn.ModuleList([\n            self.fc2,\n" in code and '"same": self.fc2,' in code


def test_a_stateless_child_held_again_takes_any_shape(torch):
    text = """
model M(x: [B, 2, 4, 4]) {
    flatten = Flatten()
    act = ReLU()
    head = Sequential(flatten, act, Linear(32, 3), act)
    forward(x) {
        return head(x) + flatten(act(x[:, 0])).sum(dim=1, keepdim=True)
    }
}
"""
    _, m, _ = built(text, torch)
    assert m.head[0] is m.flatten and m.head[1] is m.act and m.head[3] is m.act


def test_a_child_held_again_in_a_block_and_its_instances(torch):
    text = """
block Res(width) {
    fc = Linear(_, width)
    body = Sequential(fc, ReLU(), fc)
    forward(x) {
        return body(x) + nn.ReLU()(x)
    }
}

model M(x: [B, 8]) {
    a = Res(8)
    b = Res(8)
}
"""
    graph, m, code = built(text, torch)
    assert m.a.body[0] is m.a.fc is m.a.body[2] and m.b.body[0] is m.b.fc and m.a.fc is not m.b.fc
    assert code.count("class Res(nn.Module)") == 1 and "self.relu = nn.ReLU()" in code


def test_a_child_held_by_an_absent_container_does_not_run(torch):
    text = """
block Stage(width, project) {
    fc = Linear(8, width)
    proj = Sequential(fc, ReLU()) if project
    forward(x) { return proj(x) }
}

model M(x: [B, 8]) {
    a = Stage(8, False)
    b = Stage(8, True)
}
"""
    _, m, code = built(text, torch)  # its mult-adds: b.fc's alone, a's proj is None
    assert m.a.proj is None and m.b.proj[0] is m.b.fc
    assert "        if project:\n            self.proj = nn.Sequential(\n                self.fc,\n" in code
    rows = {r.path: r for r in summarize(text).rows}
    assert rows["a.fc"].output == "" and rows["b.fc"].output == "[B, 8]"


@pytest.mark.parametrize("text, message", [
    ("model M(x: [B, 28, 28]) {\n    flatten = Flatten()\n    layer1 = Linear(784, 20)\n"
     "    stack = Sequential(flatten, layer1, ReLU(), layer1)\n    forward(x) { return stack(x) }\n}",
     "Linear `layer1` is held again as `stack.3`, whose input [B, 20] does not fit it as built for [B, 784]"),
    ("model M(x: [B, 8]) {\n    stack = Sequential(fc, ReLU())\n    fc = Linear(8, 8)\n}",
     "'fc' is defined below, at line 3"),
    ("model M(x: [B, 8]) {\n    layers = ModuleList([Linear(8, 8)])\n    stack = Sequential(layers)\n}",
     "child 'layers' is a ModuleList"),
    ("model M(x: [B, 8]) {\n    fc = Linear(8, 8)\n    head = fc\n}", "'fc' is a child already"),
])
def test_a_child_held_again_is_refused_where_it_cannot_be(text, message):
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    assert info.value.message.startswith(message) and info.value.hint


# ---------------------------------------------------------------- nn.ReLU()(h)
def test_modules_made_in_forward_become_children(torch):
    text = """
model M(x: [B, 4]) {
    relu = ReLU()
    fc = Linear(4, 4)
    forward(x) {
        softmax = relu(fc(x))
        h = nn.ReLU()(softmax)
        for i in range(3) {
            h = torch.nn.Tanh()(h) + ReLU()(h)
        }
        return nn.Softmax(dim=1)(nn.Dropout(0.5)(h))
    }
}
"""
    graph, m, code = built(text, torch)
    # named for their type, clear of the spec's own names (the child relu, the value softmax); one per place
    assert [n for n, _ in m.named_children()] == ["relu", "fc", "relu2", "tanh", "relu3", "softmax2", "dropout"]
    assert [type(c).__name__ for c in m.children()] == ["ReLU", "Linear", "ReLU", "Tanh", "ReLU", "Softmax",
                                                         "Dropout"]
    assert "        for i in range(3):\n            h = self.tanh(h) + self.relu3(h)  # [B, 4]\n" in code
    assert "return self.softmax2(self.dropout(h))" in code
    assert [r.path for r in summarize(text).rows][-5:] == ["relu2", "tanh", "relu3", "softmax2", "dropout"]
    # a child follows eval(): no dropout in eval mode
    x = example_inputs(text, batch=2)[0]
    with torch.no_grad():
        h = torch.relu(torch.relu(m.fc(x)))
        for _ in range(3):
            h = torch.tanh(h) + torch.relu(h)
        torch.testing.assert_close(m(x), torch.softmax(h, dim=1))


def test_a_module_made_in_a_block_is_a_child_of_each_instance(torch):
    text = """
block Gate(width) {
    fc = Linear(_, width)
    forward(x) {
        return nn.Sigmoid()(fc(x)) * x
    }
}

model M(x: [B, 6]) {
    g1 = Gate(6)
    g2 = Gate(6)
}
"""
    _, m, code = built(text, torch)
    assert isinstance(m.g1.sigmoid, torch.nn.Sigmoid) and m.g1.sigmoid is not m.g2.sigmoid
    assert code.count("class Gate(nn.Module)") == 1


def test_a_parameter_free_module_inferred_from_its_input(torch):
    text = """
model M(x: [B, 3, 4]) {
    forward(x) {
        return nn.LayerNorm(_, elementwise_affine=False)(x) + nn.AdaptiveAvgPool1d(4)(x)
    }
}
"""
    _, m, code = built(text, torch)
    assert "self.norm = nn.LayerNorm(4, elementwise_affine=False)" in code
    assert "self.avgpool = nn.AdaptiveAvgPool1d(4)" in code


@pytest.mark.parametrize("made, message, hint", [
    ("nn.Linear(4, 2)(x)", "a Linear made inside forward is a new, untrained layer on every call; declare it as "
                           "a child: fc = Linear(4, 2)",
     "declare it as a child: fc = Linear(4, 2), and call fc(x) in forward"),
    ("torch.nn.Linear(_, 2)(x)", "a Linear made inside forward is a new, untrained layer on every call; declare "
                                 "it as a child: fc = Linear(_, 2)", None),
    ("nn.Linear(5, 2)(x)", "a Linear made inside forward is a new, untrained layer", None),  # unfit as well
    ("nn.BatchNorm1d(4, affine=False)(x)", "a BatchNorm1d made inside forward is a new layer whose running "
                                           "statistics start over on every call", None),
    ("nn.PReLU()(x)", "a PReLU made inside forward is a new, untrained layer", None),
    ("Sequential(Linear(4, 4), ReLU())(x)", "a Sequential made inside forward is a new, untrained module", None),
])
def test_a_module_with_parameters_made_in_forward_is_refused(made, message, hint):
    text = f"model M(x: [B, 4]) {{\n    forward(x) {{\n        return {made}\n    }}\n}}"
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    err = info.value
    assert err.message.startswith(message), err.message
    assert (err.line, err.column) == (3, 16)
    assert err.hint == hint if hint else err.hint.startswith("declare it as a child: ")


def test_a_module_made_in_forward_and_kept_as_a_value_is_refused():
    for made in ("nn.ReLU()", "ReLU()"):
        with pytest.raises(SpecError) as info:
            elaborate_spec(f"model M(x: [B, 4]) {{\n    forward(x) {{\n        act = {made}\n        return act(x)\n"
                           f"    }}\n}}")
        assert "makes a module" in info.value.message
        assert info.value.hint == "declare it as a child: relu = ReLU(...), and call relu(x) in forward"


# ---------------------------------------------------------------- Sequential(OrderedDict([...]))
def test_a_sequential_of_an_ordered_dict_names_its_layers(torch):
    text = """
model M(x: [B, 784]) {
    stack = Sequential(OrderedDict([("fc", Linear(784, 10)), ("act", ReLU())]))
    blocks = Sequential(OrderedDict([("layer" + str(i), Linear(_, 10)) for i in range(2)]))
    heads = ModuleDict(OrderedDict([("a", Linear(10, 2)), ("b", Linear(10, 3))]))
    forward(x) {
        h = blocks(stack(x))
        return heads["a"](h), heads.b(h)
    }
}
"""
    graph, m, code = built(text, torch)
    names = [n for n, _ in m.named_modules()]
    assert {"stack.fc", "stack.act", "blocks.layer0", "blocks.layer1", "heads.a", "heads.b"} <= set(names)
    assert code.startswith('"""M, generated by modelspec."""\nfrom collections import OrderedDict\n\nimport torch\n')
    assert '        self.stack = nn.Sequential(OrderedDict([\n            ("fc", nn.Linear(784, 10)),\n' in code
    assert [r.path for r in summarize(text).rows][1:4] == ["stack", "stack.fc", "stack.act"]


@pytest.mark.parametrize("value, message", [
    ('Sequential(OrderedDict([("fc.1", Linear(4, 4))]))', "'fc.1' cannot be a Sequential key"),
    ('Sequential(OrderedDict([("", Linear(4, 4))]))', "an empty string cannot be a Sequential key"),
    ('Sequential(OrderedDict([("append", Linear(4, 4))]))', "'append' cannot be a Sequential key"),
    ('Sequential(OrderedDict([(1, Linear(4, 4))]))', "a Sequential's keys are strings"),
    ('Sequential(OrderedDict([("a", Linear(4, 4)), ("a", ReLU())]))', "key 'a' appears twice"),
    ('Sequential(OrderedDict([("a", Linear(4, 4)), ReLU()]))', "each item of an OrderedDict is a (name, module)"),
    ('Sequential(OrderedDict({"a": Linear(4, 4)}))', "OrderedDict takes one list of (name, module) pairs"),
    ('OrderedDict([("a", Linear(4, 4))])', "unknown layer or block 'OrderedDict'"),
])
def test_the_names_of_an_ordered_dict_are_checked(value, message):
    with pytest.raises(SpecError) as info:
        elaborate_spec(f"model M(x: [B, 4]) {{\n    stack = {value}\n}}")
    assert info.value.message.startswith(message), info.value.message


def test_sequential_keywords_point_to_an_ordered_dict():
    with pytest.raises(SpecError) as info:
        elaborate_spec("model M(x: [B, 784]) {\n    stack = Sequential(fc=Linear(784, 10), act=ReLU())\n}")
    assert info.value.hint == 'name the layers with Sequential(OrderedDict([("fc", Linear(...)), ...]))'


# ---------------------------------------------------------------- x.to(device)
@pytest.mark.parametrize("moved, deleted", [
    ("x.to(device)", ".to(device)"),
    ('x.to("cuda")', '.to("cuda")'),
    ('x.to("cpu")', '.to("cpu")'),
    ('x.to(torch.device("cuda"))', '.to(torch.device("cuda"))'),
    ("x.to(x.device)", ".to(x.device)"),
    ("x.to(device=dev)", ".to(device=dev)"),
    ("x.cuda()", ".cuda()"),
    ("x.cpu()", ".cpu()"),
])
def test_moving_a_tensor_to_a_device_is_refused(moved, deleted):
    with pytest.raises(SpecError) as info:
        elaborate_spec(f"model M(x: [B, 4]) {{\n    forward(x) {{\n        return {moved}\n    }}\n}}")
    err = info.value
    assert "modelspec places the whole module and its inputs on one device" in err.message
    assert (err.line, err.column) == (3, 16)
    assert err.hint.startswith(f"delete {deleted}: ") and "--device cuda" in err.hint and "model.to(device)" in err.hint


def test_dtype_conversions_with_to_still_work(torch):
    text = """
model M(x: [B, 4], ids: Long[B, 4]) {
    forward(x, ids) {
        return ids.to(torch.float) + ids.to(x) + x.to(torch.long).float() + (x > 0).to(torch.float)
    }
}
"""
    built(text, torch)
    with pytest.raises(SpecError, match="torch.float16 is not a dtype modelspec tracks"):
        elaborate_spec("model M(x: [B, 4]) { forward(x) { return x.to(torch.float16) } }")


# ---------------------------------------------------------------- self.fc, written as a class writes it
def refusal(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    return info.value


@pytest.mark.parametrize("written, fixed, message, hint", [
    ("self.fc(x)", "fc(x)", "forward reads the child fc by its name", "write fc(x)"),
    ("fc(x) + x @ self.W", "fc(x) + x @ W", "forward reads the param W by its name", "write W"),
    ("fc(x) * self.mask", "fc(x) * mask", "forward reads the buffer mask by its name", "write mask"),
    ("self.fc(self.drop(x))", "fc(drop(x))", "forward reads the child fc by its name", "write fc(drop(x))"),
    ("F.dropout(fc(x), 0.1, self.training)", "F.dropout(fc(x), 0.1, training)",
     "forward reads nn.Module's flag as `training`", "write F.dropout(fc(x), 0.1, training)"),
    ("fc(x) if self.training else fc(x) * 0.5", "fc(x) if training else fc(x) * 0.5",
     "forward reads nn.Module's flag as `training`", "write training"),
])
def test_self_in_forward_is_refused_with_the_line_without_it(written, fixed, message, hint):
    """A spec's forward names children, params and buffers without ``self.``; where the call is at hand, the
    hint is the call rewritten."""
    body = ("    fc = Linear(4, 2)\n    drop = Dropout(0.1)\n    param W: [4, 2] = randn\n    buffer mask: [2] = ones\n"
            "    forward(x) {{\n        return {}\n    }}\n")
    err = refusal(f"model M(x: [B, 4]) {{\n{body.format(written)}}}")
    assert err.message == f"`self` is not needed in a spec: {message}"
    assert (err.line, err.column, err.hint) == (7, 16 + written.index("self."), hint)
    elaborate_spec(f"model M(x: [B, 4]) {{\n{body.format(fixed)}}}")  # the hint's fix compiles


@pytest.mark.parametrize("line, message, hint", [
    ("self.fc = nn.Linear(4, 2)", "a body declares its children without `self.`", "write fc = nn.Linear(4, 2)"),
    ("self.W = nn.Parameter(torch.randn(4, 2))", "a body declares a parameter as `param NAME: [dims] = init`, "
     "without `self.`", "write param W: [4, 2] = randn"),
    ("self.W = nn.Parameter(torch.FloatTensor(4, 2))", "a body declares a parameter", "write param W: [4, 2] = "
     "xavier_uniform"),
    ("self.head.weight = self.fc.weight", "a body ties parameters without `self.`",
     "write head.weight = fc.weight"),
    ("head.weight = self.fc.weight", "a body ties parameters without `self.`", "write head.weight = fc.weight"),
    ("stack = Sequential(self.fc, ReLU())", "`self` is not needed in a spec: the body reads the child fc by its "
     "name", "write Sequential(fc, ReLU())"),
    ("self.width = width", "a block reads its parameter width by its name, without `self.`", "delete this line"),
    ("other = Linear(self.width, 2)", "`self` is not needed in a spec: the body reads the block parameter width "
     "by its name", "write Linear(width, 2)"),
])
def test_self_in_a_body_is_refused_with_the_line_without_it(line, message, hint):
    """``__init__``'s ``self.fc = nn.Linear(4, 2)`` is no weight tie, and no model without children."""
    err = refusal(f"block Blk(width) {{\n    fc = Linear(_, 2)\n    head = Linear(2, 2)\n    {line}\n}}\n\n"
                  f"model M(x: [B, 4]) {{\n    b = Blk(4)\n}}")
    assert err.message.startswith(message), err.message
    assert err.hint == hint and err.line == 4


@pytest.mark.parametrize("params, fixed", [("self, x", "x"), ("self", "x"), ("self, img, m", "img, m")])
def test_forward_with_self_is_refused_with_its_inputs(params, fixed):
    err = refusal(f"model M(x: [B, 4]) {{\n    forward({params}) {{\n        return x\n    }}\n}}")
    assert err.message == "forward names only its inputs, without `self`" and err.hint == f"write forward({fixed})"


@pytest.mark.parametrize("where, written, hint", [
    ("body", "relu = nn.relu()", "did you mean nn.ReLU()? (the module; F.relu(x) is the function)"),
    ("body", "act = nn.softmax(dim=1)", "did you mean nn.Softmax(dim=1)? (the module; F.softmax(x) is the function)"),
    ("body", "fc2 = nn.linear(2, 2)", "did you mean nn.Linear(2, 2)? (the module; F.linear(x, weight) is the "
                                      "function)"),
    ("forward", "relu = nn.relu()", "did you mean nn.ReLU()? (the module; F.relu(x) is the function)"),
    ("forward", "h = nn.relu()(h)", "did you mean nn.ReLU()? (the module; F.relu(x) is the function)"),
    ("forward", "h = nn.Gelu()(h)", "did you mean nn.GELU()?"),
    ("forward", "h = torch.nn.gelu()(h)", "did you mean torch.nn.GELU()? (the module; F.gelu(x) is the function)"),
    ("forward", "h = nn.Gelu(h)", "did you mean nn.GELU()(h)?"),
])
def test_a_module_spelt_in_another_case_names_its_class(where, written, hint):
    """torch.nn's modules are CamelCase classes; ``nn.relu`` is no function of torch.nn, but F.relu is."""
    line = f"    {written}\n" if where == "body" else ""
    forward = f"        {written}\n" if where == "forward" else ""
    err = refusal(f"model M(x: [B, 2]) {{\n    fc = Linear(2, 2)\n{line}    forward(x) {{\n        h = fc(x)\n"
                  f"{forward}        return h\n    }}\n}}")
    assert err.message.endswith("(...) is no module: torch.nn's module classes are spelled in CamelCase")
    assert err.hint == hint


def test_a_function_spelt_in_torch_nn_still_points_to_f():
    err = refusal("model M(x: [B, 2]) {\n    forward(x) {\n        return nn.relu(x)\n    }\n}")
    assert err.message == "unknown function 'nn.relu'" and err.hint == "did you mean F.relu?"


@pytest.mark.parametrize("written, meant", [("false", "False"), ("true", "True"), ("none", "None"),
                                            ("null", "None"), ("FALSE", "False")])
def test_other_languages_constants_point_to_pythons(written, meant):
    err = refusal(f"model M(x: [B, 4]) {{\n    fc = Linear(4, 2, bias={written})\n}}")
    assert err.message == f"undefined name {written!r}" and err.hint == f"did you mean {meant}?"
    err = refusal(f"model M(x: [B, 4]) {{\n    forward(x) {{\n        return x if {written} else x\n    }}\n}}")
    assert err.hint == f"did you mean {meant}?"


# ---------------------------------------------------------------- seq_modules without a forward
SEQ_MODULES = """
model SeqModules(x: [B, 1, 28, 28]) {
    flatten = nn.Flatten()
    layer1 = nn.Linear(28 * 28, 20)
    seq_modules = nn.Sequential(flatten, layer1, nn.ReLU(), nn.Linear(20, 10))
"""


def test_without_forward_a_container_runs_the_children_it_holds_again(torch):
    """Tutorial 003's seq_modules in a body without forward: every child runs in turn, seq_modules too, so
    flatten and layer1 run twice; the error says so, and the forward it suggests runs only seq_modules."""
    err = refusal(SEQ_MODULES + "}")
    assert err.message == ("without a forward, the children run one after another: flatten, layer1, seq_modules; "
                           "so seq_modules runs flatten and layer1 a second time, and layer1, built for [B, 784], "
                           "does not fit its input there")
    assert (err.line, err.column) == (5, 42)
    assert err.hint == "to run only seq_modules, write forward(x) { return seq_modules(x) }"
    built(SEQ_MODULES + "    forward(x) { return seq_modules(x) }\n}", torch)


@pytest.mark.parametrize("body, message", [
    # a child the container holds runs first, on the model's input
    ("    layer1 = Linear(784, 20)\n    seq = Sequential(Flatten(), layer1)\n",
     "without a forward, the children run one after another: layer1, seq; so layer1 runs on its own before seq, "
     "which holds it, runs it: Linear `layer1` expects in_features=784"),
    # a stateless child run twice changes the shape a later layer meets
    ("    pool = MaxPool2d(2)\n    seq = Sequential(pool, Flatten(), Linear(196, 10))\n",
     "without a forward, the children run one after another: pool, seq; so seq runs pool a second time: Linear "
     "`seq.2` expects in_features=196 but its input is [B, 49]"),
    # a mistake of its own, which running twice does not explain: said as it is
    ("    flatten = Flatten()\n    seq = Sequential(flatten, Linear(100, 10))\n",
     "Linear `seq.1` expects in_features=100 but its input is [B, 784]"),
])
def test_without_forward_only_the_errors_the_second_run_explains_say_so(body, message):
    shape = "[B, 784]" if "100" in body else "[B, 1, 28, 28]"
    err = refusal(f"model M(x: {shape}) {{\n{body}}}")
    assert err.message.startswith(message), err.message
    assert ("to run only seq" in err.hint) == message.startswith("without a forward")
