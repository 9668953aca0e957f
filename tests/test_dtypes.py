"""Dtypes held against torch itself, as shapes are in tests/test_catalog.py and tests/test_ops.py.

A value's dtype (float, long, bool) is part of its type: each catalog entry
says which input dtypes its module runs on and what dtype it gives
(`Layer.dtypes`, `Layer.out_dtype`); each op of the forward table, each of
Python's operators on tensors (`OPERATORS`, `UNARY`), which dtypes its tensor
arguments may have and what its result is (`Op.dtypes`, `Op.result`, the
rules' promotion). Here torch is the referee:

* configurations whose *shapes* both sides accept (drawn by the generators of
  the shape tests) run again with inputs of each dtype -- float32, int64,
  bool, and for two tensors each pair of them -- on real CPU tensors, since
  meta kernels skip most dtype checks;
* where torch runs, the table must accept and give each output the dtype
  torch gives it; where torch raises, the table must refuse with a
  `ShapeProblem`;
* a layer runs in training and in eval mode and counts as running only if it
  runs in both (Dropout on a long tensor runs in eval only);
* where an entry's dtypes depend on its arguments (Dropout's p, MaxPool1d's
  return_indices), the configurations reach more than one answer.

No entry is skipped: a new layer or op is held here as soon as it is in a
table, whatever its dtype data says (the defaults included).
"""

from __future__ import annotations

import itertools
import operator
import warnings

import pytest
import test_catalog as flat
import test_catalog_seq as seq
import test_ops
import torch
from torch import nn

import modelspec
from modelspec.layers import CATALOG
from modelspec.layers.base import ArgError, InferMismatch, ShapeProblem
from modelspec.layers.pool import Unpooling
from modelspec.model import TensorInfo
from modelspec.ops import OPERATORS, OPS, UNARY, apply_op, op_params, operator_rule, unary_rule
from modelspec.shapes import Val

TORCH_DTYPES = {"float": torch.float32, "long": torch.int64, "bool": torch.bool}
NAMED = {v: k for k, v in TORCH_DTYPES.items()}
CASES_PER_LAYER = 4  # and one more for each other answer its dtype data gives
MIN_CASES_PER_LAYER = 3
CONFIGS_PER_OP = 60  # valid runs (spellings of configurations) per op


def dtype_of(t) -> str:
    return NAMED.get(t.dtype, str(t.dtype))


def flat_dtypes(out) -> list:
    """The dtype of each output, nested outputs flattened in order, None for an absent one."""
    if out is None:
        return [None]
    if isinstance(out, torch.Tensor):
        return [dtype_of(out)]
    if isinstance(out, str):
        return [out]
    return [d for o in out for d in flat_dtypes(o)]


# ---------------------------------------------------------------- 1. layers
def layer_ours(name: str, case):
    """The bound arguments and the rule's outputs, as the elaborator binds them; None where the catalog
    refuses the shapes."""
    layer = CATALOG[name]
    try:
        if name in seq.SEQ_NAMES:
            if len(case.inputs) not in layer.input_counts():
                return None
            bound, shapes = seq.bind_case(case)
        else:
            bound = flat.bound_args(case)
            shapes = tuple(tuple(Val(d) for d in s) for s in case.inputs)
        return bound, layer.rule(bound, *shapes)
    except (ArgError, InferMismatch, ShapeProblem):
        return None


def layer_torch(name: str, case, dtype: str):
    """("ok", output dtypes) where torch's module runs on zeros of ``dtype`` in training and in eval mode
    (on CPU, with float weights), else ("error", message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name in seq.SEQ_NAMES:
                case = seq.explicit(case)
                module = seq.build_torch(case, "cpu")
            else:
                module = getattr(nn, name)(*case.args, **case.kwargs)
            inputs = [torch.zeros(s, dtype=TORCH_DTYPES[d]) for s, d in zip(case.inputs, each_input(name, case, dtype))]
            if getattr(case, "same", False):
                inputs = inputs[:1] * 3
            seen = []
            for training in (True, False):
                module.train(training)
                with torch.no_grad():
                    seen.append(flat_dtypes(module(*inputs, **case.call)))
    except Exception as exc:  # noqa: BLE001 -- any refusal of torch's counts
        return ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    assert seen[0] == seen[1], f"{name}: training gives {seen[0]}, eval {seen[1]}"
    return ("ok", seen[0])


def each_input(name: str, case, dtype: str) -> list:
    """The dtype of each input when the question is ``dtype``: every input's, but for the indices MaxUnpool takes
    second, which are long whatever its values are."""
    n = len(case.inputs)
    return [dtype] + ["long" if isinstance(CATALOG[name], Unpooling) else dtype] * (n - 1)


def layer_verdict(name: str, bound, out, dtype: str, case):
    layer = CATALOG[name]
    try:
        layer.check_dtypes(bound, each_input(name, case, dtype))  # as the elaborator checks them
    except ShapeProblem as exc:
        return ("error", str(exc))
    return ("ok", flat_dtypes(layer.output_dtypes(bound, out, dtype)))


def layer_cases(name: str) -> list:
    """Configurations with shapes both sides accept: the first few, and the first of each other answer
    the entry's dtype data gives (MaxPool2d with and without indices, Dropout at p=0 and p=0.5)."""
    layer = CATALOG[name]
    picked, keys = [], set()
    for case in (seq if name in seq.SEQ_NAMES else flat).cases(name):
        ours = layer_ours(name, case)
        if ours is None:
            continue
        bound, out = ours
        takes = layer.input_dtypes(bound)
        key = (takes, str(layer.output_dtypes(bound, out, takes[0])))
        if len(picked) >= CASES_PER_LAYER and key in keys:
            continue
        if layer_torch(name, case, takes[0])[0] != "ok":
            continue  # torch refuses the shapes in training (BatchNorm on one value per channel): no dtype question
        picked.append((case, bound, out))
        keys.add(key)
    return picked


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_layer_dtypes_match_torch(name):
    layer = CATALOG[name]
    if layer.family == "loss":  # a dtype per input, told by the shapes: every combination, in its own harness
        import test_catalog_loss

        return test_catalog_loss.test_dtypes_match_torch(name)
    picked = layer_cases(name)
    assert len(picked) >= MIN_CASES_PER_LAYER, f"{name}: only {len(picked)} configurations to run"
    if callable(layer.dtypes):
        answers = {layer.input_dtypes(bound) for _, bound, _ in picked}
        assert len(answers) > 1, f"{name}: its dtypes depend on its arguments, but every case gives {answers}"
    wrong = []
    for case, bound, out in picked:
        for dtype in TORCH_DTYPES:
            ours, theirs = layer_verdict(name, bound, out, dtype, case), layer_torch(name, case, dtype)
            if ours[0] != theirs[0] or (ours[0] == "ok" and ours[1] != theirs[1]):
                wrong.append(f"{case} on {dtype}:\n    torch: {theirs}\n    catalog: {ours}")
    assert not wrong, f"{len(wrong)} disagreements:\n" + "\n".join(wrong[:8])


def test_unpooling_takes_long_indices_alone():
    """MaxUnpool's indices are long, whatever its values are; the test above gives them so, here each other dtype."""
    case = flat.Case("MaxUnpool2d", (2,), {}, ((1, 2, 3, 3), (1, 2, 3, 3)))
    bound, out = layer_ours("MaxUnpool2d", case)
    module = nn.MaxUnpool2d(2)
    for dtype in ("float", "bool"):
        with pytest.raises(RuntimeError):
            module(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3, dtype=TORCH_DTYPES[dtype]))
        with pytest.raises(ShapeProblem, match="long indices"):
            CATALOG["MaxUnpool2d"].check_dtypes(bound, ["float", dtype])


# ---------------------------------------------------------------- 2. ops
class DT(test_ops.T):
    """A tensor argument of a dtype."""

    def __repr__(self):
        return f"{self.dtype.capitalize()}{list(self.shape)}"


def with_dtypes(v, dtypes: list | None):
    """``v`` with its tensors, in order, of ``dtypes`` (taken from the front); None: each of its own."""
    if isinstance(v, test_ops.T):
        if dtypes is None:
            return DT(v.shape, v.dtype, v.fill)
        return DT(v.shape, dtypes.pop(0) if len(dtypes) > 1 else dtypes[0], v.fill)
    if isinstance(v, (list, tuple)) and any(isinstance(i, test_ops.T) for i in v):
        return type(v)(with_dtypes(i, dtypes) for i in v)
    return v


def count_tensors(values) -> int:
    n = 0
    for v in values:
        if isinstance(v, test_ops.T):
            n += 1
        elif isinstance(v, (list, tuple)):
            n += sum(isinstance(i, test_ops.T) for i in v)
    return n


def ours_value(v):
    if isinstance(v, DT):
        return TensorInfo(tuple(Val(d) for d in v.shape), v.dtype)
    if isinstance(v, (list, tuple)):
        items = [ours_value(i) for i in v]
        return Val(items) if any(isinstance(i, TensorInfo) for i in items) else Val(type(v)(items))
    return test_ops.ours_value(v)


def torch_value(v):
    """Ones, not zeros: integer division and negative powers refuse a zero where a dtype is not the question
    (an index, ``fill`` 0, stays in range with zeros)."""
    if isinstance(v, DT):
        return (torch.zeros if v.fill == 0 else torch.ones)(v.shape, dtype=TORCH_DTYPES[v.dtype])
    if isinstance(v, (list, tuple)):
        return type(v)(torch_value(i) for i in v)
    return test_ops.torch_value(v, None, "cpu")


def op_ours(name, kind, ns, args, kwargs):
    try:
        res = apply_op(OPS[name], [ours_value(a) for a in args], {k: ours_value(v) for k, v in kwargs.items()},
                       method=kind == "method", ns=ns)
    except ShapeProblem as exc:
        return ("error", str(exc))
    return ("ok", test_ops.plain_ours(res, None))


def op_torch(name, kind, ns, args, kwargs):
    targs = [torch_value(a) for a in args]
    tkwargs = {k: torch_value(v) for k, v in kwargs.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "method":
                res = getattr(targs[0], name)(*targs[1:], **tkwargs)
            else:
                res = getattr(test_ops.MODULES[ns], name)(*targs, **tkwargs)
    except Exception as exc:  # noqa: BLE001
        return ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    return ("ok", test_ops.plain_torch(res))


def dtype_combos(n: int):
    """Each dtype for every tensor; with several tensors, each pair of dtypes for the first two (the rest
    as the second)."""
    return [list(c) for c in itertools.product(TORCH_DTYPES, repeat=min(n, 2))] if n else []


@pytest.mark.parametrize("name", test_ops.NAMES)
def test_op_dtypes_match_torch(name):
    if name in test_ops.LOSS_NAMES:  # float predictions, targets told by their shapes: in its own harness
        return test_ops.test_loss_dtypes_match_torch(name)
    wrong, answers, runs = [], set(), 0
    for case in test_ops.make_cases(name, test_ops.CONFIGS_PER_OP):
        for kind, ns in test_ops.spellings(name):
            if kind == "method" and not isinstance(case.values.get(next(iter(case.values))), test_ops.T):
                continue
            params = op_params(OPS[name], method=kind == "method", ns=ns)
            args, kwargs = test_ops.layout(case, params, kind == "method")
            own = [with_dtypes(a, None) for a in args], {k: with_dtypes(v, None) for k, v in kwargs.items()}
            if op_ours(name, kind, ns, *own)[0] != "ok" or op_torch(name, kind, ns, *own)[0] != "ok":
                continue  # the shapes or arguments are wrong (with the dtypes the generator chose): no dtype question
            runs += 1
            for dtypes in dtype_combos(count_tensors(list(args) + list(kwargs.values()))):
                q = list(dtypes)  # one queue across args and kwargs: each tensor takes the next dtype
                targs = [with_dtypes(a, q) for a in args]
                tkwargs = {k: with_dtypes(v, q) for k, v in kwargs.items()}
                ours, theirs = op_ours(name, kind, ns, targs, tkwargs), op_torch(name, kind, ns, targs, tkwargs)
                answers.add((tuple(dtypes), ours[0]))
                if ours[0] != theirs[0] or (ours[0] == "ok" and ours[1] != theirs[1]):
                    label = f"x.{name}" if kind == "method" else f"{ns}.{name}"
                    wrong.append(f"{label} args={targs} kwargs={tkwargs}: ours {ours}, torch {theirs}")
        if runs >= CONFIGS_PER_OP:
            break
    assert runs >= 10, f"{name}: only {runs} valid configurations to run"
    if callable(OPS[name].dtypes):
        both = {d for d, verdict in answers if verdict == "ok"} & {d for d, verdict in answers if verdict == "error"}
        assert both, f"{name}: its dtypes depend on its arguments, but no dtype is both accepted and refused"
    assert not wrong, f"{len(wrong)} disagreements, first ones:\n" + "\n".join(wrong[:8])


# ---------------------------------------------------------------- 3. Python's operators
PYTHON = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
          "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
          "==": operator.eq, "!=": operator.ne,
          "&": operator.and_, "|": operator.or_, "^": operator.xor}
UNARY_PYTHON = {"-": operator.neg, "+": operator.pos, "~": operator.invert}
SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 5)), ((2, 3), (2, 4)), ((3,), ())]
NUMBERS = [2, -1, 0.5]
LOGIC = {"<", "<=", ">", ">=", "==", "!=", "&", "|", "^"}


def test_every_operator_is_held():
    assert set(PYTHON) == set(OPERATORS) and set(UNARY_PYTHON) == set(UNARY)


def _operator_ours(op, left, right):
    try:
        res = operator_rule(op, ours_value(left), ours_value(right))
    except ShapeProblem as exc:
        return ("error", str(exc))
    return ("ok", (tuple(d.value for d in res.shape), res.dtype))


def _operator_torch(op, left, right):
    try:
        res = PYTHON[op](torch_value(left), torch_value(right))
    except Exception as exc:  # noqa: BLE001
        return ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    return ("ok", (tuple(res.shape), dtype_of(res)))


@pytest.mark.parametrize("op", sorted(PYTHON))
def test_operator_dtypes_match_torch(op):
    pairs = []
    for (sa, sb), (da, db) in itertools.product(SHAPES, itertools.product(TORCH_DTYPES, repeat=2)):
        pairs.append((DT(sa, da), DT(sb, db)))
    numbers = NUMBERS + ([True] if op in LOGIC else [])  # a Python bool beside a tensor: x == True, mask & True
    for shape, dtype, number in itertools.product(((2, 3), ()), TORCH_DTYPES, numbers):
        pairs += [(DT(shape, dtype), number), (number, DT(shape, dtype))]
    wrong, verdicts = [], set()
    for left, right in pairs:
        ours, theirs = _operator_ours(op, left, right), _operator_torch(op, left, right)
        verdicts.add(theirs[0])
        if ours[0] != theirs[0] or (ours[0] == "ok" and ours[1] != theirs[1]):
            wrong.append(f"{left} {op} {right}: ours {ours}, torch {theirs}")
    assert verdicts == {"ok", "error"}
    assert not wrong, f"{len(wrong)} disagreements:\n" + "\n".join(wrong[:8])


@pytest.mark.parametrize("op", sorted(UNARY_PYTHON))
def test_unary_operator_dtypes_match_torch(op):
    for dtype, shape in itertools.product(TORCH_DTYPES, ((2, 3), ())):
        x = DT(shape, dtype)
        try:
            theirs = ("ok", dtype_of(UNARY_PYTHON[op](torch_value(x))))
        except (RuntimeError, TypeError) as exc:  # ~ of a float tensor is a TypeError
            theirs = ("error", str(exc))
        try:
            ours = ("ok", unary_rule(op, ours_value(x)).dtype)
        except ShapeProblem as exc:
            ours = ("error", str(exc))
        assert ours[0] == theirs[0] and (ours[0] == "error" or ours[1] == theirs[1]), f"{op}{x}: {ours}, {theirs}"


# ---------------------------------------------------------------- 4. end to end
END_TO_END = [
    ("x: Long[B, 2, 8, 8]", "pool = MaxPool2d(2, return_indices=True)\n    relu = ReLU()",
     "forward(x) {\n        y, i = pool(relu(x))\n        return y, i"),
    ("x: Long[B, 5]", "emb = Embedding(10, 4)\n    act = Sigmoid()", "forward(x) {\n        return act(x), emb(x)"),
    ("x: Bool[B, 4]", "r = Identity()", "forward(x) {\n        return x.sum(dim=1), x * 2, x + x, x / 2, x.max()"),
    ("x: Long[B, 3], y: [B, 3]", "r = Flatten()",
     "forward(x, y) {\n        return torch.cat([r(x), y], dim=1), x // 2, torch.tanh(x), x % 2, x.argmax(dim=1)"),
    ("x: Long[B, 3], y: [B, 3]", "r = Identity()",
     "forward(x, y) {\n        return x > 1, (y > 0) & (x == 2), ~(x > 0), x & 3, torch.where(x > 0, x, 0.5), "
     "torch.where(y > 0, 1, 0), torch.arange(x.size(1)), torch.arange(0.0, 3.0), torch.zeros(2, dtype=torch.long), "
     "torch.full((2,), True), torch.randint(0, 4, (2,)), torch.ones_like(x), x.float(), y.long(), y.to(torch.bool), "
     "y.type_as(x), x.masked_fill(y > 0, 7), torch.einsum('bi->b', x > 0), y.topk(2)[1], x.clamp(min=y)"),
]


@pytest.mark.parametrize("sig, children, body", END_TO_END,
                         ids=[(c.values if hasattr(c, "values") else c)[0] for c in END_TO_END])
def test_inferred_dtypes_are_the_real_ones(sig, children, body):
    """The dtypes `elaborate_spec` gives a model's outputs are those the compiled module returns."""
    text = f"model M({sig}) {{\n    {children}\n    {body}\n    }}\n}}\n"
    graph = modelspec.elaborate_spec(text)
    model = modelspec.compile_spec(text, seed=0)
    inputs = modelspec.example_inputs(text)
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            out = model(*inputs)
        assert flat_dtypes(out) == [t.dtype for t in graph.outputs]
