"""Lists in forward, loops over a ModuleDict, dict comprehensions, weight tying, `training`, and positions
counted by torch.arange: each held against torch, through the code modelspec prints.

Every spec here is compiled, printed and exec'd; the printed module gets the compiled one's weights, and both
must give the same outputs, with the shapes and parameter count the elaboration says.
"""

from __future__ import annotations

import pytest

from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code

torch = pytest.importorskip("torch")


def exec_printed(spec: str):
    graph = elaborate_spec(spec)
    namespace: dict = {}
    exec(compile(generate_code(spec), "<printed>", "exec"), namespace)
    return graph, namespace[graph.name]


def _flat(x):
    if isinstance(x, torch.Tensor):
        yield x
    else:
        for item in x:
            yield from _flat(item)


def held_against_torch(spec: str, batch: int = 3, train: bool = False):
    """The compiled module, the printed one with its weights, and both outputs: equal, shaped as inferred."""
    graph, printed_cls = exec_printed(spec)
    compiled = compile_spec(spec, seed=0).train(train)
    printed = printed_cls().train(train)
    assert list(printed.state_dict()) == list(compiled.state_dict())
    printed.load_state_dict(compiled.state_dict())
    inputs = example_inputs(spec, batch=batch)
    with torch.no_grad():
        a = (torch.manual_seed(1), compiled(*inputs))[1]
        b = (torch.manual_seed(1), printed(*inputs))[1]
    for x, y in zip(_flat(a), _flat(b), strict=True):
        assert torch.equal(x, y)
    assert sum(p.numel() for p in compiled.parameters()) == graph.root.total_params
    return graph, compiled, list(_flat(a))


# ---------------------------------------------------------------- lists
DENSE = """
block DenseLayer(growth) {
    norm = BatchNorm2d(_)
    conv = Conv2d(_, growth, 3, padding=1, bias=False)
    forward(x) { return conv(F.relu(norm(x))) }
}

model Dense(x: [B, 8, 6, 6]) {
    layers = ModuleDict({"denselayer" + str(i + 1): DenseLayer(4) for i in range(3)})
    forward(x) {
        features = [x]
        for name, layer in layers.items() {
            features.append(layer(torch.cat(features, 1)))
        }
        return torch.cat(features, 1)
    }
}
"""


def test_a_dense_block_grows_a_list_and_cats_it():
    graph, model, (out,) = held_against_torch(DENSE)
    assert tuple(out.shape) == (3, 8 + 3 * 4, 6, 6)
    assert [n for n, _ in model.layers.named_children()] == ["denselayer1", "denselayer2", "denselayer3"]
    # each layer sees every feature map before it: 8, 12, 16 channels
    assert [layer.conv.in_channels for layer in model.layers.values()] == [8, 12, 16]
    code = generate_code(DENSE)
    assert "for name, layer in self.layers.items():" in code
    assert "features.append(layer(torch.cat(features, 1)))" in code


def test_comprehension_extend_list_and_slices():
    spec = """
    model Mixture(x: [B, 16]) {
        experts = ModuleList([Linear(16, 8) for _ in range(4)])
        gate = Linear(16, 4)
        forward(x) {
            outs = [expert(x) for expert in experts]
            stacked = torch.stack(outs, dim=1)
            weights = F.softmax(gate(x), dim=-1)
            mixed = (weights.unsqueeze(-1) * stacked).sum(dim=1)
            parts = list(mixed.chunk(2, dim=1))
            parts.extend([mixed[:, :1], mixed[:, -1:]])
            return torch.cat(parts[1:] + [parts[0]], dim=1), len(outs)
        }
    }
    """
    with pytest.raises(SpecError, match="forward must return tensors"):
        elaborate_spec(spec)
    spec = spec.replace(", len(outs)", "")
    graph, model, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 4 + 1 + 1 + 4)
    code = generate_code(spec)
    assert "outs = [expert(x) for expert in self.experts]" in code
    assert "parts = list(mixed.chunk(2, dim=1))" in code


def test_lists_alias_as_in_python():
    spec = """
    model Alias(x: [B, 4]) {
        fc = Linear(4, 4)
        forward(x) {
            a = [x]
            b = a
            b.append(fc(x))
            return torch.cat(a, dim=1)
        }
    }
    """
    graph, _, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 8)


def test_loops_over_a_moduledict_keys_values_and_itself():
    spec = """
    model Heads(x: [B, 6]) {
        heads = ModuleDict({"a": Linear(6, 2), "b": Linear(6, 3)})
        forward(x) {
            outs = []
            for h in heads.values() { outs.append(h(x)) }
            for key in heads.keys() { outs.append(heads[key](x)) }
            for key in heads { outs.append(heads[key](x)) }
            return torch.cat(outs, dim=1)
        }
    }
    """
    graph, _, (out,) = held_against_torch(spec)  # heads[key]: a module looked up by the key the loop holds
    assert tuple(out.shape) == (3, 3 * (2 + 3))
    code = generate_code(spec)
    assert "for key in self.heads.keys():" in code and "for key in self.heads:" in code


def test_moduledict_modules_read_as_attributes():
    spec = """
    model Named(x: [B, 6]) {
        blocks = ModuleDict({"first": Linear(6, 5), "second": Linear(5, 2)})
        forward(x) { return blocks.second(F.relu(blocks.first(x))) }
    }
    """
    graph, _, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 2)
    assert "self.blocks.second(F.relu(self.blocks.first(x)))" in generate_code(spec)


@pytest.mark.parametrize("body, message", [
    ("xs = [x, x[:, :2]]\n return torch.cat(xs, dim=0)", "torch.cat"),
    ("xs = [x]\n for t in xs { xs.append(t) }\n return x", "grows the list it runs over"),
    ("xs = [1, 2]\n xs.append(x)\n return x", "compile-time values"),
    ("xs = [x]\n y = xs.append(x)\n return x", "returns None"),
    ("xs = [x]\n xs.pop(x)\n return x", "would do nothing"),
    ("xs = [x if i == 0 else fc(x) for i in range(2)]\n return xs[0]", "different code"),
    ("xs = [layer for layer in layers]\n return x", "holds tensors and values"),
    ("for a, b in layers { x = x }\n return x", "cannot unpack"),
])
def test_list_misuse_is_a_located_error(body, message):
    refused(body, message, children="fc = Linear(4, 4)\n layers = ModuleList([Linear(4, 4)])")


def refused(body: str, message: str, children: str = "") -> None:
    """A model of input x: [B, 4] whose forward is ``body`` is refused with ``message``, at a line, with a hint."""
    with pytest.raises(SpecError, match=message) as err:
        elaborate_spec(f"model Bad(x: [B, 4]) {{\n {children}\n forward(x) {{\n {body}\n }}\n}}")
    assert err.value.line is not None and err.value.hint


def test_a_tensor_condition_is_refused_at_compile_time():
    spec = """
    model Cond(x: [B, 4]) {
        forward(x) {
            if x.sum() > 0 { x = x * 2 }
            return x
        }
    }
    """
    with pytest.raises(SpecError, match="decided at compile time"):
        elaborate_spec(spec)


# ---------------------------------------------------------------- weight tying
TIED = """
model Tied(idx: Long[B, T=16]) {
    transformer = ModuleDict({"wte": Embedding(100, 32), "ln_f": LayerNorm(32)})
    lm_head = Linear(32, 100, bias=False)
    transformer.wte.weight = lm_head.weight
    forward(idx) { return lm_head(transformer.ln_f(transformer.wte(idx))) }
}
"""


def test_weight_tying_shares_one_parameter_counted_once():
    graph, model, (out,) = held_against_torch(TIED)
    assert model.transformer.wte.weight is model.lm_head.weight
    assert "transformer.wte.weight" in model.state_dict() and "lm_head.weight" in model.state_dict()
    assert graph.root.total_params == 32 * 100 + 2 * 32 == sum(p.numel() for p in model.parameters())
    assert "self.transformer.wte.weight = self.lm_head.weight" in generate_code(TIED)
    from modelspec.summary import render_table, summarize

    row = next(line for line in render_table(summarize(TIED)).splitlines() if "wte (Embedding)" in line)
    assert row.split()[-4:-2] == ["0", "tied"]


@pytest.mark.parametrize("tie, message", [
    ("transformer.wte.weight = transformer.ln_f.weight", "one shape"),
    ("transformer.wte.bias = lm_head.weight", "no parameter 'bias'"),
    ("transformer.wpe.weight = lm_head.weight", "no child 'wpe'"),
    ("lm_head.weight = lm_head.weight", "tied to itself"),
    ("lm_head.weight = 3", "named by its path"),
])
def test_tying_misuse_is_a_located_error(tie, message):
    spec = TIED.replace("transformer.wte.weight = lm_head.weight", tie)
    with pytest.raises(SpecError, match=message) as err:
        elaborate_spec(spec)
    assert err.value.line == 5


# ---------------------------------------------------------------- training
DEPTH = """
block StochasticDepth(p = 0.5) {
    forward(x) {
        if training {
            keep = torch.rand(x.shape[0], 1, device=x.device) < 1 - p
            x = x * keep.float() / (1 - p)
        }
        return x
    }
}

model Net(x: [B, 8]) {
    fc = Linear(8, 8)
    drop = StochasticDepth(0.5)
    forward(x) { return x + drop(fc(x)) }
}
"""


def test_stochastic_depth_is_the_identity_in_eval():
    held_against_torch(DEPTH, train=False)
    held_against_torch(DEPTH, train=True)
    model = compile_spec(DEPTH, seed=0)
    (x,) = example_inputs(DEPTH, batch=64)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), x + model.fc(x))
        model.train()
        torch.manual_seed(0)
        dropped = model(x) - x
    rows_zero = (dropped == 0).all(dim=1)
    assert 0 < int(rows_zero.sum()) < 64  # some samples skip the branch, in training only
    assert "if self.training:" in generate_code(DEPTH)


def test_a_number_chosen_by_training_reaches_dropout():
    spec = """
    model Attn(x: [B, 4, T=6, 8]) {
        forward(x) {
            return F.scaled_dot_product_attention(x, x, x, dropout_p=0.5 if training else 0.0, is_causal=True)
        }
    }
    """
    graph, model, _ = held_against_torch(spec, train=False)
    assert "dropout_p=0.5 if self.training else 0.0" in generate_code(spec)


@pytest.mark.parametrize("body, message", [
    ("if training { x = x[:, :2] }\n return x", "in training and"),
    ("y = x.view(-1, 4 if training else 2)\n return y", "different shape in training"),
    ("y = x if training and True else x\n return y", "tests it alone"),
    ("y = x if training else x[:, :1]\n return y", "tensors of one shape"),
])
def test_training_misuse_is_a_located_error(body, message):
    refused(body, message)


# ---------------------------------------------------------------- positions counted by arange
POSITIONS = """
const BLOCK = 16
model Positions(idx: Long[B, T=16]) {
    wte = Embedding(50, 8)
    wpe = Embedding(BLOCK, 8)
    forward(idx) {
        t = idx.shape[1]
        pos = torch.arange(0, t, dtype=torch.long)
        return wte(idx) + wpe(pos) + F.embedding(pos, wpe.weight)
    }
}
"""


def test_positions_from_arange_index_an_embedding():
    graph, _, (out,) = held_against_torch(POSITIONS)
    assert tuple(out.shape) == (3, 16, 8)


def test_positions_past_the_table_are_refused():
    with pytest.raises(SpecError, match="reach T - 1 = 16") as err:
        elaborate_spec(POSITIONS.replace("T=16", "T=17"))
    assert err.value.line == 9


def test_forward_reads_a_childs_parameters():
    spec = """
    model Head(idx: Long[B, T=8]) {
        wte = Embedding(50, 16)
        forward(idx) {
            h = wte(idx)
            return F.linear(h, wte.weight), h @ wte.weight.T
        }
    }
    """
    graph, model, (a, b) = held_against_torch(spec)
    assert tuple(a.shape) == tuple(b.shape) == (3, 8, 50)
    assert torch.allclose(a, b, atol=1e-6)
    assert "F.linear(h, self.wte.weight)" in generate_code(spec)


# ---------------------------------------------------------------- found by trying to break them
def test_a_chain_of_ties_is_refused():
    spec = """
    model Chain(x: [B, 4]) {
        a = Linear(4, 4)
        b = Linear(4, 4)
        c = Linear(4, 4)
        a.weight = b.weight
        b.weight = c.weight
        forward(x) { return a(b(c(x))) }
    }
    """
    with pytest.raises(SpecError, match="shared already") as err:
        elaborate_spec(spec)  # a would keep b's old weight: torch would count 44 parameters, not 28
    assert err.value.line == 7


def test_moduledict_keys_made_of_a_block_parameter_fix_it_in_the_class():
    spec = """
    block C(w, prefix = "l") {
        d = ModuleDict({prefix + str(i): Linear(_, w) for i in range(2)})
        forward(x) {
            for m in d.values() { x = m(x) }
            return x
        }
    }
    model M(x: [B, 8]) { b = C(8) }
    """
    graph, printed_cls = exec_printed(spec)
    cls = next(c for c in graph.classes if c.block == "C")
    assert "prefix" in cls.fixed and all(p.name != "prefix" for p in cls.ctor_params)


def test_a_number_chosen_by_training_scales_but_never_selects():
    spec = """
    model M(x: [B, 4]) {
        forward(x) {
            k = 0.5 if training else 1.0
            return x * k + (1 - k)
        }
    }
    """
    graph, model, _ = held_against_torch(spec, train=True)
    (x,) = example_inputs(spec, batch=2)
    assert torch.equal(model.eval()(x), x) and torch.equal(model.train()(x), x * 0.5 + 0.5)
    for body in ("a = [x, x]\n return a[0 if training else 1]", "return x[:, :(1 if training else 2)]"):
        refused(body, "chosen by `training` cannot be")


@pytest.mark.parametrize("body, message", [
    ("a = [x]\n a.append(a)\n return x", "would hold itself"),
    ("a = [x]\n a.extend([a])\n return x", "would hold itself"),
    ("a = [x]\n b = [x]\n return x if a == b else x", "decided at compile time"),
])
def test_odd_lists_are_located_errors(body, message):
    refused(body, message)


def test_arange_of_a_dim_indexes_that_dim():
    spec = "model M(x: [B, T=8, 4]) {\n forward(x) { return x.index_select(1, torch.arange(x.shape[1])) }\n}"
    graph, _, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 8, 4)


def test_a_condition_reads_sizes_inline():
    spec = "model M(x: [B, 4]) {\n forward(x) {\n if x.shape[1] == 4 and x.ndim == 2 { x = x * 2 }\n return -x\n }\n}"
    graph, model, (out,) = held_against_torch(spec)
    (x,) = example_inputs(spec, batch=3)
    assert torch.equal(model(x), -2 * x)


def test_a_conditional_child_runs_in_a_loop():
    spec = """
    block Bk(norm = True) {
        ln = LayerNorm(4) if norm
        forward(x) {
            for i in range(2) { x = ln(x) }
            return x
        }
    }
    model M(x: [B, 4]) { b = Bk()
        c = Bk(False) }
    """
    held_against_torch(spec)


def test_an_embedding_in_a_block_reads_the_models_indices():
    spec = """
    block Embed(vocab, dim) { emb = Embedding(vocab, dim) }
    model M(idx: Long[B, 5], other: Long[B, 5]) {
        e = Embed(10, 4)
        forward(idx, other) { return e(idx) }
    }
    """
    graph, _, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 5, 4) and graph.index_bounds == {"idx": 10}
    again = spec.replace("return e(idx)", "return e(idx) + e(other)")
    with pytest.raises(SpecError, match="called again with other values"):
        elaborate_spec(again)  # its indices were checked for idx; other's range is its own


def test_a_child_named_as_a_fixed_parameter_stays_the_child():
    """nanoGPT's MLP has a dropout argument and a dropout child; when a loop's count fixes the argument in the
    class, ``self.dropout`` still calls the child (found by the trust run, seed 9203694)."""
    spec = """
    block Head(width = 2) {
        blocks = ModuleList([Linear(_, 4) for _ in range(width)])
        width = Linear(_, 4)
        forward(x) {
            features = [x]
            for layer in blocks { features.append(layer(torch.cat(features, dim=-1))) }
            return width(torch.cat(features, dim=-1))
        }
    }
    model M(x: [B, 4]) { h = Head() }
    """
    graph, model, (out,) = held_against_torch(spec)
    assert tuple(out.shape) == (3, 4)
    assert "self.width(torch.cat(features, dim=-1))" in generate_code(spec)
