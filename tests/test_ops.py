"""The forward operations (`modelspec/ops.py`) held against torch itself.

Like the layer catalog's tests, with torch as the referee:

* every spelling the table accepts exists in torch (``F.gelu``, ``torch.cat``,
  the method ``x.view``), and every spelling it refuses does not;
* for every op, many seeded random configurations -- valid and invalid, with
  arguments passed by position or by keyword, negative dims, ``-1`` sizes,
  tuple dims -- run through `apply_op` and through torch on ``meta`` tensors,
  in each spelling (``F.relu(x)``, ``torch.relu(x)``, ``x.relu()``). Where
  torch accepts, the output shapes (and dtypes) must agree; where torch
  raises, `apply_op` must raise `ShapeProblem`, and the reverse. Where the
  two disagree on validity, the call is repeated on real CPU tensors and
  that decides (meta kernels skip a few checks). A torch warning that calls
  the call deprecated (``F.softmax(x)`` without ``dim``) counts as a refusal:
  modelspec requires ``dim``;
* each configuration is run again with a symbolic dim ``B`` in place of one
  of its sizes: where `apply_op` accepts it, its answer must hold in torch
  for several values of ``B``; where it refuses, it must refuse with a
  `ShapeProblem` (a symbolic answer may be more careful than one size);
* `broadcast`, `matmul_rule` and `slice_len` on their own;
* indexing, slicing, ``x.shape[1]``, ``x.size(0)`` and a few ops end to end:
  the shapes `elaborate_spec` infers are those the compiled module produces.

Another seed draws other configurations: ``OPS_TEST_SEED=x pytest tests/test_ops.py``.
"""

from __future__ import annotations

import inspect
import os
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

import modelspec
from modelspec.pipeline import symbol_sizes
from modelspec.shapes import evaluate as _eval_dim
from modelspec.layers.base import ShapeProblem
from modelspec.model import TensorInfo
from modelspec.ops import (
    F_NAMES,
    F_SPELLINGS,
    OPS,
    TORCH_NAMES,
    apply_op,
    broadcast,
    function_prefix,
    matmul_rule,
    op_params,
    slice_len,
)
from modelspec.shapes import Sym, Val, shape_str

SEED = os.environ.get("OPS_TEST_SEED", "modelspec-ops")
CONFIGS_PER_OP = 80
NAMES = sorted(OPS)
MODULES = {"F": F, "torch": torch}


# ---------------------------------------------------------------- 1. the spellings
def spellings(name: str) -> list[tuple[str, str | None]]:
    """("function", "F") / ("function", "torch") / ("method", None): every way the table lets one call it."""
    op = OPS[name]
    out = [("function", ns) for ns in ("F", "torch") if function_prefix(op, ns) is not None]
    if op.method:
        out.append(("method", None))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_spellings_exist_in_torch(name):
    op = OPS[name]
    for ns, module in MODULES.items():
        accepted = function_prefix(op, ns) is not None
        assert accepted == (name in (F_NAMES if ns == "F" else TORCH_NAMES))
        if accepted:
            assert hasattr(module, name), f"{ns}.{name} is accepted but torch has none"
    for ns in F_SPELLINGS:
        assert function_prefix(op, ns) == function_prefix(op, "F")
    if op.function is not None:
        assert function_prefix(op, None) == op.function, "a bare call prints as the table's namespace"
        assert function_prefix(op, op.function) == op.function
    if op.method:
        assert hasattr(torch.Tensor, name), f"x.{name}() is accepted but torch has none"


@pytest.mark.parametrize("name", NAMES)
def test_parameter_names_match_torch(name):
    """Where torch's Python functions have a signature, ours is its leading part (torch adds dtype=, out=)."""
    for kind, ns in spellings(name):
        if kind != "function":
            continue
        try:
            sig = inspect.signature(getattr(MODULES[ns], name))
        except (ValueError, TypeError):
            continue  # a builtin without a signature
        theirs = [p.name for p in sig.parameters.values() if not p.name.startswith("_")]
        theirs_kw_only = [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY]
        params = [n for n, _ in op_params(OPS[name], ns=ns)]
        ours = [n for n in params if n != "*"]
        assert ours == theirs[: len(ours)], f"{ns}.{name}: {ours} against torch's {theirs}"
        ours_kw_only = params[params.index("*") + 1:] if "*" in params else []
        assert set(ours_kw_only) <= set(theirs_kw_only), f"{ns}.{name}: keyword-only {ours_kw_only}"


def test_refused_spellings_name_the_right_one():
    text = "model M(x: [B, 4]) {\n forward(x) {\n  return F.cat([x, x], dim=1)\n }\n}"
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.elaborate_spec(text)
    assert "unknown function 'F.cat'" in str(info.value) and "torch.cat" in info.value.hint
    text = text.replace("F.cat([x, x], dim=1)", "x.gelu()")
    with pytest.raises(modelspec.SpecError, match="unknown tensor method 'gelu'"):
        modelspec.elaborate_spec(text)


# ---------------------------------------------------------------- 2. configurations
class T:
    """A tensor argument, by its shape (ints, or "B" for the symbolic dim)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __repr__(self):
        return f"T{list(self.shape)}"


@dataclass
class Case:
    """One op's arguments by the names of ``op.params``; a ``*name`` parameter's value is a tuple."""

    name: str
    values: dict
    layout_seed: int = 0
    extra_args: tuple = ()  # appended positionally: too many arguments
    extra_kwargs: dict = field(default_factory=dict)  # unknown keywords

    def tensors(self):
        for v in self.values.values():
            if isinstance(v, T):
                yield v
            elif isinstance(v, (list, tuple)):
                yield from (i for i in v if isinstance(i, T))


def layout(case: Case, params, method: bool):
    """args, kwargs for one spelling: a random leading run positional, the rest by keyword."""
    r = random.Random(case.layout_seed)
    logical = [n.lstrip("*") for n, _ in OPS[case.name].params if n != "*"]
    names = [n.lstrip("*") for n, _ in params if n != "*"]
    by_name = {names[i]: case.values[logical[i]] for i in range(len(names)) if logical[i] in case.values}
    unknown = {n: case.values[n] for n in logical[len(names):] if n in case.values}  # torch.relu(x, inplace=...)
    prefix = []
    for n, _ in params:
        if n == "*" or n.lstrip("*") not in by_name:
            break
        prefix.append(n)
        if n.startswith("*"):
            break
    k = r.randint(1, len(prefix)) if prefix else 0
    args, kwargs = [], {}
    for n, _ in params:
        if n == "*" or n.lstrip("*") not in by_name:
            continue
        v = by_name[n.lstrip("*")]
        if n in prefix[:k]:
            if n.startswith("*"):
                args.extend(v) if r.random() < 0.7 else args.append(v)  # x.view(2, -1) or x.view((2, -1))
            else:
                args.append(v)
        else:
            kwargs[n.lstrip("*")] = v
    if method:
        assert args and isinstance(args[0], T)
    return args + list(case.extra_args), {**kwargs, **unknown, **case.extra_kwargs}


def rshape(r, rank=None, lo=1, hi=5, max_rank=4):
    rank = r.choice([0] + [1, 2, 3, 4][:max_rank] * 3) if rank is None else rank
    return [r.randint(lo, hi) for _ in range(rank)]


def rdim(r, rank, extra=0):
    """A dim for a rank-d tensor, now and then out of range."""
    n = max(rank + extra, 1)
    return r.randint(-n - 1, n) if r.random() < 0.15 else r.randint(-n, n - 1)


def elementwise(**options):
    """The generator of an elementwise op: a tensor of any rank (now and then a number, which torch
    refuses as ``input``) and each of the op's ``options`` half the time, drawn by its function."""

    def gen(r, name):
        v = {"input": T(rshape(r)) if r.random() > 0.05 else r.choice([2, 0.5])}
        for k, draw in options.items():
            if r.random() < 0.5:
                v[k] = draw(r)
        return v

    return gen


def flag(r):
    return r.choice([True, False])


def gen_hardtanh(r, name):
    """Bounds with min_val <= max_val, alone or together: torch refuses the reverse, which
    modelspec does not check yet (test_hardtanh_refuses_reversed_bounds)."""
    v = elementwise(inplace=flag)(r, name)
    lo, hi = r.choice([(-1.0, 1.0), (-2.0, 2.0), (0.0, 6.0), (0.5, 0.5), (-3, 0)])  # each fits the other's default
    if r.random() < 0.6:
        v["min_val"] = lo
    if r.random() < 0.6:
        v["max_val"] = hi
    return v


def gen_dim_op(r, name):  # softmax, log_softmax, normalize
    x = rshape(r)
    v = {"input": T(x)}
    if r.random() < 0.85:
        v["dim"] = rdim(r, len(x))
    if name == "normalize" and r.random() < 0.4:
        v["p"] = r.choice([1.0, 2.0, 3])
    if name == "normalize" and r.random() < 0.3:
        v["eps"] = r.choice([1e-12, 1e-6, 0.1])
    return v


def gen_flatten(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    if r.random() < 0.7:
        v["start_dim"] = rdim(r, len(x))
    if r.random() < 0.5:
        v["end_dim"] = rdim(r, len(x))
    return v


def factor(r, n):
    sizes = []
    while n > 1 and r.random() < 0.75:
        d = r.choice([d for d in range(2, n + 1) if n % d == 0])
        sizes.append(d)
        n //= d
    if n > 1 or not sizes or r.random() < 0.2:
        sizes.append(n)
    r.shuffle(sizes)
    return sizes


def gen_view(r, name):
    x = rshape(r, lo=0 if r.random() < 0.05 else 1)
    n = 1
    for d in x:
        n *= d
    sizes = factor(r, n) if n else [0, r.randint(1, 3)]
    if r.random() < 0.5:
        sizes[r.randrange(len(sizes))] = -1
    if r.random() < 0.25:  # wrong: sizes that do not multiply out, two -1s, -2, a float
        i = r.randrange(len(sizes))
        sizes[i] = r.choice([sizes[i] * 2 + 1 if sizes[i] != -1 else 5, -1, -2, 1.5])
        if r.random() < 0.3:
            sizes.append(-1)
    if r.random() < 0.05:
        sizes = []
    return {"input": T(x), ("size" if name == "view" else "shape"): tuple(sizes)}


def gen_size(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    if name == "size" and r.random() < 0.8:
        v["dim"] = rdim(r, len(x))
    return v


def gen_permute(r, name):
    x = rshape(r)
    dims = list(range(len(x)))
    r.shuffle(dims)
    dims = [d - len(x) if r.random() < 0.3 else d for d in dims]
    if r.random() < 0.25:
        kind = r.choice(["dup", "drop", "add", "range"])
        if kind == "dup" and len(dims) >= 2:
            dims[0] = dims[1]
        elif kind == "drop" and dims:
            dims.pop()
        elif kind == "add":
            dims.append(0)
        else:
            dims.append(len(x))
    return {"input": T(x), "dims": tuple(dims)}


def gen_transpose(r, name):
    x = rshape(r)
    return {"input": T(x), "dim0": rdim(r, len(x)), "dim1": rdim(r, len(x))}


def gen_t(r, name):
    return {"input": T(rshape(r, max_rank=3))}


def gen_squeeze(r, name):
    x = [r.choice([1, 1, 2, 3]) for _ in range(r.randint(0, 4))]
    v = {"input": T(x)}
    u = r.random()
    if u < 0.4:
        v["dim"] = rdim(r, len(x))
    elif u < 0.65:
        dims = r.sample(range(-len(x), len(x)), k=min(len(x), r.randint(1, 3))) if x else [0]
        if r.random() < 0.15:
            dims.append(dims[0])
        v["dim"] = tuple(dims)
    elif u < 0.75:
        v["dim"] = None
    return v


def gen_unsqueeze(r, name):
    x = rshape(r)
    return {"input": T(x), "dim": rdim(r, len(x), extra=1)}


def gen_cat(r, name):
    rank = r.choice([0, 1, 2, 2, 3, 3, 4]) if r.random() < 0.95 else 1
    base = rshape(r, rank)
    k = r.randint(1, 3)
    if name == "stack":
        ts = [list(base) for _ in range(k)]
        if r.random() < 0.2 and rank:
            ts[-1][r.randrange(rank)] += 1
        if r.random() < 0.05:
            ts[-1].append(2)
        dim = rdim(r, rank, extra=1)
    else:
        dim = rdim(r, rank)
        d = dim % max(rank, 1)
        ts = []
        for _ in range(k):
            s = list(base)
            if rank:
                s[d] = r.randint(1, 4)
            ts.append(s)
        if r.random() < 0.2 and rank >= 2:
            i = r.choice([i for i in range(rank) if i != d])
            ts[-1][i] += 1
        if r.random() < 0.05:
            ts[-1] = ts[-1][:-1]
        if r.random() < 0.05:
            ts.insert(0, [0])  # the legacy empty 1-d tensor torch skips
    tensors = [T(s) for s in ts]
    return {"tensors": tensors if r.random() < 0.7 else tuple(tensors), "dim": dim}


def gen_matmul(r, name):
    if name == "bmm":
        n, a, h, m = (r.randint(1, 4) for _ in range(4))
        sa, sb = [n, a, h], [n, h, m]
        if r.random() < 0.3:
            which = r.choice(["batch", "inner", "rank"])
            if which == "batch":
                sb[0] += 1
            elif which == "inner":
                sb[1] += 1
            else:
                sa = sa[1:]
        return {"input": T(sa), "mat2": T(sb)}
    ra, rb = r.choice([0, 1, 1, 2, 2, 3, 3, 4]), r.choice([0, 1, 1, 2, 2, 3, 3, 4])
    k = r.randint(1, 4)
    batch = rshape(r, max(ra, rb, 2) - 2)

    def side(rank, left):
        if rank <= 1:
            return [k] * rank
        b = [d if r.random() < 0.75 else 1 for d in batch[len(batch) - (rank - 2):]]
        return b + ([r.randint(1, 4), k] if left else [k, r.randint(1, 4)])

    sa, sb = side(ra, True), side(rb, False)
    if r.random() < 0.2 and sa and sb:
        s = r.choice([sa, sb])
        s[r.randrange(len(s))] += 1
    return {"input": T(sa), "other": T(sb)}


def gen_reduce(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    u = r.random()
    if u < 0.35:
        v["dim"] = rdim(r, len(x))
    elif u < 0.65:
        dims = r.sample(range(-len(x), len(x)), k=min(len(x), r.randint(0, 3))) if x else [r.choice([0, -1])]
        if r.random() < 0.15 and dims:
            dims.append(dims[0] % max(len(x), 1))
        v["dim"] = tuple(dims) if r.random() < 0.7 else list(dims)
    elif u < 0.75:
        v["dim"] = None
    if r.random() < 0.5 and "dim" in v:
        v["keepdim"] = r.choice([True, False, True, 1])
    return v


def gen_maxmin(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    u = r.random()
    if u < 0.45:
        v["dim"] = rdim(r, len(x))
        if r.random() < 0.5:
            v["keepdim"] = r.choice([True, False])
    elif u < 0.65 and name in ("max", "min"):
        other = [d if r.random() < 0.7 else 1 for d in x[r.randint(0, len(x)):]] if x else []
        if r.random() < 0.15:
            other.append(7)
        if r.random() < 0.3:
            v["other"] = T(other)  # torch.max(x, other=y)
        else:
            v["dim"] = T(other)  # torch.max(x, y) and, by keyword, the mistake torch.max(x, dim=y)
    elif u < 0.75:
        v["keepdim"] = r.choice([True, False])
    elif u < 0.8 and name.startswith("arg"):
        v["dim"] = (0,)
    return v


def gen_chunk(r, name):
    x = rshape(r, lo=0 if r.random() < 0.1 else 1, hi=7, max_rank=3)
    v = {"input" if name == "chunk" else "tensor": T(x)}
    if name == "chunk":
        v["chunks"] = r.choice([1, 2, 3, 4, 5, 6, 0, -1])
        if r.random() < 0.8:
            v["dim"] = rdim(r, len(x))
    else:
        d = rdim(r, len(x))
        size = x[d % len(x)] if x and -len(x) <= d < len(x) else 4
        if r.random() < 0.5:
            v["split_size_or_sections"] = r.choice([1, 2, 3, 4, 5, 0, -1])
        else:
            secs = factor(r, size) if size else [0]
            if r.random() < 0.3:
                secs[0] += r.choice([1, -1, -secs[0] - 1])
            v["split_size_or_sections"] = secs if r.random() < 0.5 else tuple(secs)
        v["dim"] = d
    return v


def gen_binary(r, name):
    x = rshape(r)
    other_name = "exponent" if name == "pow" else "other"
    if r.random() < 0.25:
        other = r.choice([2, 0.5, -1])  # -1: torch refuses integers to a negative power
    else:
        other = T([d if r.random() < 0.7 else 1 for d in x[r.randint(0, len(x)):]] if x else [])
        if r.random() < 0.15 and other.shape:
            other = T([*other.shape[:-1], other.shape[-1] + 1])
    v = {"input": T(x), other_name: other}
    if name in ("add", "sub") and r.random() < 0.3:
        v["alpha"] = r.choice([2, 0.5])  # 0.5: refused for integer tensors
    if name == "div" and r.random() < 0.3:
        v["rounding_mode"] = r.choice(["floor", "trunc"])
    if r.random() < 0.1 and isinstance(other, T):
        v["input"], v[other_name] = 3, other  # torch.add(3, x)
    return v


def gen_clamp(r, name):
    v = {"input": T(rshape(r))}
    if r.random() < 0.6:
        v["min"] = r.choice([-1.0, 0, -2])
    if r.random() < 0.6:
        v["max"] = r.choice([1.0, 2, 3.5])
    return v


GENERATORS = {
    "softmax": gen_dim_op, "log_softmax": gen_dim_op, "normalize": gen_dim_op,
    "flatten": gen_flatten, "view": gen_view, "reshape": gen_view,
    "size": gen_size, "dim": gen_size, "numel": gen_size, "contiguous": gen_size,
    "permute": gen_permute, "transpose": gen_transpose, "t": gen_t,
    "squeeze": gen_squeeze, "unsqueeze": gen_unsqueeze,
    "cat": gen_cat, "stack": gen_cat, "matmul": gen_matmul, "bmm": gen_matmul,
    "mean": gen_reduce, "sum": gen_reduce, "amax": gen_reduce, "amin": gen_reduce,
    "max": gen_maxmin, "min": gen_maxmin, "argmax": gen_maxmin, "argmin": gen_maxmin,
    "chunk": gen_chunk, "split": gen_chunk,
    "add": gen_binary, "sub": gen_binary, "mul": gen_binary, "div": gen_binary, "pow": gen_binary,
    "clamp": gen_clamp,
    # elementwise, one line each: a new op needs its own, with the arguments it really takes
    "abs": elementwise(), "exp": elementwise(), "log": elementwise(), "neg": elementwise(),
    "rsqrt": elementwise(), "sqrt": elementwise(), "sigmoid": elementwise(), "tanh": elementwise(),
    "logsigmoid": elementwise(),
    "relu": elementwise(inplace=flag), "relu6": elementwise(inplace=flag), "selu": elementwise(inplace=flag),
    "silu": elementwise(inplace=flag), "mish": elementwise(inplace=flag),
    "hardsigmoid": elementwise(inplace=flag), "hardswish": elementwise(inplace=flag),
    "elu": elementwise(alpha=lambda r: r.choice([0.5, 1.0, 2.0, -1.0]), inplace=flag),
    "leaky_relu": elementwise(negative_slope=lambda r: r.choice([0.01, 0.2, -0.5, 1.0]), inplace=flag),
    "gelu": elementwise(approximate=lambda r: r.choice(["none", "tanh", "none", "exact"])),  # "exact": refused
    "softplus": elementwise(beta=lambda r: r.choice([1.0, 2.0, 0.5]), threshold=lambda r: r.choice([10.0, 20.0, 1.5])),
    "hardtanh": gen_hardtanh,
    "dropout": elementwise(p=lambda r: r.choice([0.0, 0.2, 0.5, 1.0, 1.5, -0.1]), training=flag, inplace=flag),
}


@pytest.mark.parametrize("name", NAMES)
def test_every_op_has_its_own_generator(name):
    """No fallback: a new op in the table fails here until someone writes its configurations."""
    assert name in GENERATORS, f"the op {name} has no generator in GENERATORS of tests/test_ops.py"


def test_no_generator_without_an_op():
    stale = sorted(set(GENERATORS) - set(OPS))
    assert not stale, f"generators for no op: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_exercised(name):
    """A generator that never gives a parameter leaves the op's handling of it untested."""
    given = set().union(*(case.values for case in make_cases(name, CONFIGS_PER_OP)))
    never = [n.lstrip("*") for n, _ in OPS[name].params if n != "*" and n.lstrip("*") not in given]
    assert not never, f"{name}: no configuration gives {never}"


def make_cases(name: str, n: int) -> list[Case]:
    r = random.Random(f"{SEED}-{name}")
    gen = GENERATORS[name]
    out = []
    for _ in range(n):
        case = Case(name, gen(r, name), layout_seed=r.randrange(1 << 30))
        u = r.random()
        if u < 0.04:
            case.extra_args = (1, 1, 1, 1, 1)  # more arguments than any spelling takes
        elif u < 0.08:
            case.extra_kwargs = {"bogus": 1}
        out.append(case)
    return out


# ---------------------------------------------------------------- running both
def ours_value(v, sizes=None):
    """A test value as `fwd_args`/`apply` pass it: tensors as TensorInfo, lists of tensors as Val([...])."""
    if isinstance(v, T):
        return TensorInfo(tuple(Val(Sym.var("B") if d == "B" else d) for d in v.shape))
    if isinstance(v, (list, tuple)):
        items = [ours_value(i) for i in v]
        if any(isinstance(i, TensorInfo) for i in items):
            return Val(items)
        return Val(type(v)(items))
    return Val(v)


def torch_value(v, b: int | None, device: str):
    if isinstance(v, T):
        return torch.zeros([b if d == "B" else d for d in v.shape], device=device)
    if isinstance(v, (list, tuple)):
        return type(v)(torch_value(i, b, device) for i in v)
    return v


def plain_ours(res, b: int | None):
    def dim(d):
        return _eval_dim(d.value if isinstance(d, Val) else d, {"B": b}) if b is not None else (
            d.value if isinstance(d, Val) else d)

    if isinstance(res, TensorInfo):
        return ("tensor", tuple(dim(d) for d in res.shape), res.dtype)
    if isinstance(res, list):
        return ("tensors", [plain_ours(i, b) for i in res])
    if isinstance(res, Val):
        v = res.value
        if isinstance(v, tuple):
            return ("value", tuple(dim(d) for d in v))
        return ("value", dim(res))
    raise AssertionError(f"unexpected result {res!r}")


DTYPES = {torch.float32: "float", torch.int64: "long", torch.bool: "bool"}


def plain_torch(res):
    if isinstance(res, torch.Tensor):
        return ("tensor", tuple(res.shape), DTYPES.get(res.dtype, str(res.dtype)))
    if isinstance(res, torch.Size):
        return ("value", tuple(res))
    if isinstance(res, (tuple, list)):
        return ("tensors", [plain_torch(i) for i in res])
    return ("value", res)


def run_torch(name, kind, ns, args, kwargs, b=None, device="meta"):
    """("ok", result) or ("error", message)."""
    targs = [torch_value(a, b, device) for a in args]
    tkwargs = {k: torch_value(v, b, device) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Implicit dimension choice for softmax" is a refusal
        warnings.filterwarnings("ignore", message=".*Failed to initialize NumPy.*")
        try:
            if kind == "method":
                res = getattr(targs[0], name)(*targs[1:], **tkwargs)
            else:
                res = getattr(MODULES[ns], name)(*targs, **tkwargs)
        except Exception as exc:  # noqa: BLE001 -- any refusal of torch's counts
            return ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    return ("ok", plain_torch(res))


def run_ours(name, kind, ns, args, kwargs, b=None):
    try:
        res = apply_op(OPS[name], [ours_value(a) for a in args], {k: ours_value(v) for k, v in kwargs.items()},
                       method=kind == "method", ns=ns)
    except ShapeProblem as exc:
        return ("error", str(exc))
    return ("ok", plain_ours(res, b))


def symbolize(case: Case, r: random.Random):
    """The case with one size (>= 2) of its tensors made the symbol B, and that size; None if none fits."""
    sizes = sorted({d for t in case.tensors() for d in t.shape if isinstance(d, int) and d >= 2})
    if not sizes:
        return None, None
    v = r.choice(sizes)

    def sub(x):
        if isinstance(x, T):
            return T(["B" if d == v else d for d in x.shape])
        if isinstance(x, (list, tuple)) and any(isinstance(i, T) for i in x):
            return type(x)(sub(i) for i in x)
        return x

    return Case(case.name, {k: sub(x) for k, x in case.values.items()}, case.layout_seed, case.extra_args,
                dict(case.extra_kwargs)), v


STATS: dict[str, Counter] = {}


def check_case(case: Case, sym_r: random.Random) -> list[str]:
    problems = []
    stats = STATS.setdefault(case.name, Counter())
    for kind, ns in spellings(case.name):
        if kind == "method" and not isinstance(case.values.get(next(iter(case.values))), T):
            continue  # torch.add(3, x) has no method form
        params = op_params(OPS[case.name], method=kind == "method", ns=ns)
        args, kwargs = layout(case, params, kind == "method")
        label = (f"x.{case.name}" if kind == "method" else f"{ns}.{case.name}") + f" args={args} kwargs={kwargs}"
        ours = run_ours(case.name, kind, ns, args, kwargs)
        theirs = run_torch(case.name, kind, ns, args, kwargs)
        if ours[0] != theirs[0]:
            theirs = run_torch(case.name, kind, ns, args, kwargs, device="cpu")  # the referee
        stats[f"{kind}:{theirs[0]}"] += 1
        if ours[0] != theirs[0]:
            problems.append(f"{label}: ours {ours}, torch {theirs}")
            continue
        if ours[0] == "ok" and ours[1] != theirs[1]:
            problems.append(f"{label}: ours {ours[1]}, torch {theirs[1]}")
            continue
        # the same with a symbolic size
        sym, v = symbolize(case, sym_r)
        if sym is None:
            continue
        sargs, skwargs = layout(sym, params, kind == "method")
        try:
            res = apply_op(OPS[case.name], [ours_value(a) for a in sargs],
                           {k: ours_value(x) for k, x in skwargs.items()}, method=kind == "method", ns=ns)
        except ShapeProblem:
            stats["symbolic:refused"] += 1
            continue
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{label} with B={v} symbolic: {type(exc).__name__}: {exc}")
            continue
        stats["symbolic:ok"] += 1
        for b in (v, v + 1, v + 3):
            theirs = run_torch(case.name, kind, ns, sargs, skwargs, b=b)
            if theirs[0] == "error":
                theirs = run_torch(case.name, kind, ns, sargs, skwargs, b=b, device="cpu")
            mine = plain_ours(res, b)
            if theirs[0] != "ok" or theirs[1] != mine:
                problems.append(f"{label} with symbolic B (sizes {v} -> B): ours {mine} at B={b}, torch {theirs}")
                break
    return problems


# ops for which no configuration can be invalid but a binding mistake
ALWAYS_VALID = {"dim", "numel", "contiguous"}


@pytest.mark.parametrize("name", NAMES)
def test_op_against_torch(name):
    cases = make_cases(name, CONFIGS_PER_OP)
    sym_r = random.Random(f"{SEED}-{name}-symbolic")
    problems = [p for case in cases for p in check_case(case, sym_r)]
    assert not problems, f"{len(problems)} disagreements, first ones:\n" + "\n".join(problems[:8])
    stats = STATS[name]
    kinds = {k for k, _ in spellings(name)}
    for kind in kinds:
        assert stats[f"{kind}:ok"] >= 10, f"too few valid {kind} configurations: {dict(stats)}"
        assert stats[f"{kind}:error"] >= 2, f"too few invalid {kind} configurations: {dict(stats)}"
    assert stats["symbolic:ok"] >= 5 or name in ("size",), f"too few symbolic configurations: {dict(stats)}"


# configurations that once found a bug, pinned whatever the seed draws
REGRESSIONS = [
    Case("amax", {"input": T([2, 3, 4])}),  # amax() reduces every dim
    Case("amax", {"input": T([2, 3]), "dim": ()}),
    Case("sum", {"input": T([2, 3]), "dim": None, "keepdim": True}),  # [1, 1]
    Case("sum", {"input": T([2, 3]), "dim": (0, 0)}),  # a repeated dim
    Case("transpose", {"input": T([]), "dim0": 0, "dim1": -1}),
    Case("cat", {"tensors": [T([]), T([])], "dim": 0}),
    Case("cat", {"tensors": [T([0]), T([2, 3])], "dim": 1}),
    Case("size", {"input": T([]), "dim": 0}),
    Case("chunk", {"input": T([4]), "chunks": 0}),
    Case("chunk", {"input": T([0, 2]), "chunks": 3}),
    Case("split", {"tensor": T([4]), "split_size_or_sections": 0}),
    Case("split", {"tensor": T([4]), "split_size_or_sections": (5, -1)}),
    Case("reshape", {"input": T([2, 3]), "shape": (6,)}),
    Case("view", {"input": T([2, 3]), "size": (0, -1)}),
    Case("squeeze", {"input": T([1, 2, 1]), "dim": (0, 0)}),
    Case("max", {"input": T([2, 3]), "keepdim": True}),
    Case("softmax", {"input": T([2, 3])}),  # F.softmax(x): implicit dim, refused
    Case("gelu", {"input": T([2]), "approximate": "exact"}),
]


@pytest.mark.parametrize("case", REGRESSIONS, ids=lambda c: f"{c.name}-{c.values}")
def test_regressions(case):
    problems = check_case(case, random.Random(0))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("bounds", [{"min_val": 2.0, "max_val": -1.0}, {"min_val": 2.0}, {"max_val": -2.0}])
def test_hardtanh_refuses_reversed_bounds(bounds):
    problems = check_case(Case("hardtanh", {"input": T([3]), **bounds}), random.Random(0))
    assert not problems, "\n".join(problems)


def test_function_forms_refuse_method_layouts():
    """torch.reshape(x, 2, 3) and torch.permute(x, 1, 0) are not torch; x.view(shape=...) neither."""
    x = ours_value(T([2, 3]))
    for name, args, kwargs, method in [
        ("reshape", [x, Val(3), Val(2)], {}, False),
        ("permute", [x, Val(1), Val(0)], {}, False),
        ("view", [x], {"shape": Val((Val(3), Val(2)))}, True),
        ("split", [x, Val(1)], {"split_size_or_sections": Val(1)}, True),
        ("relu", [x], {"inplace": Val(True)}, True),
    ]:
        with pytest.raises(ShapeProblem):
            apply_op(OPS[name], args, kwargs, method=method, ns=None if method else "torch")
    with pytest.raises(ShapeProblem):
        apply_op(OPS["relu"], [x], {"inplace": Val(True)}, ns="torch")
    assert apply_op(OPS["relu"], [x], {"inplace": Val(True)}, ns="F").shape == x.shape


# ---------------------------------------------------------------- 3. the helpers alone
def test_broadcast_against_torch():
    r = random.Random(f"{SEED}-broadcast")
    seen = Counter()
    for _ in range(400):
        a = rshape(r)
        b = [d if r.random() < 0.6 else r.choice([1, 2, 3]) for d in a[r.randint(0, len(a)):]]
        b = [r.randint(1, 3) for _ in range(r.randint(0, 2))] + b
        if r.random() < 0.5:
            a, b = b, a
        try:
            want = tuple(torch.broadcast_shapes(tuple(a), tuple(b)))
        except RuntimeError:
            want = None
        try:
            got = tuple(d.value for d in broadcast(ours_value(T(a)), ours_value(T(b)), "add").shape)
        except ShapeProblem as exc:
            got = None
            assert f"cannot add {shape_str(a)} and {shape_str(b)}" in str(exc)  # both shapes, in order
        assert got == want, f"{a} and {b}: ours {got}, torch {want}"
        seen[want is None] += 1
    assert seen[True] >= 20 and seen[False] >= 100


def test_matmul_rule_against_torch():
    r = random.Random(f"{SEED}-matmul-rule")
    seen = Counter()
    for _ in range(300):
        v = gen_matmul(r, "matmul")
        a, b = v["input"].shape, v["other"].shape
        try:
            want = tuple(torch.matmul(torch.empty(a, device="meta"), torch.empty(b, device="meta")).shape)
        except RuntimeError:
            want = None
        try:
            got = tuple(d.value for d in matmul_rule(ours_value(T(a)), ours_value(T(b))).shape)
        except ShapeProblem as exc:
            got = None
            assert f"{shape_str(a)} @ {shape_str(b)}" in str(exc)  # both shapes
        assert got == want, f"{list(a)} @ {list(b)}: ours {got}, torch {want}"
        seen[want is None] += 1
    assert seen[True] >= 20 and seen[False] >= 100


def test_slice_len():
    for size in range(0, 8):
        for lo in [None, *range(-9, 10)]:
            for hi in [None, *range(-9, 10)]:
                for step in (None, 1, 2, 3):
                    assert slice_len(size, lo, hi, step) == len(range(size)[lo:hi:step])
    T_ = Sym.var("T")
    accepted = 0
    for lo in [None, *range(-4, 5)]:
        for hi in [None, *range(-4, 5)]:
            for step in (None, 1, 2, 3):
                try:
                    n = slice_len(T_, lo, hi, step)
                except ShapeProblem:
                    continue
                accepted += 1
                for t in (9, 10, 13):  # a size at least as large as the bounds
                    assert (n if isinstance(n, int) else _eval_dim(n, {"T": t})) == len(range(t)[lo:hi:step])
    assert accepted > 300


# ---------------------------------------------------------------- 4. end to end
END_TO_END = [
    ("x: [B, 3, 4]", "return x[:, 0]"),
    ("x: [B, 3, 4]", "return x[:, -1, :]"),
    ("x: [B, 3, 4]", "return x[..., 1:3]"),
    ("x: [B, 3, 4]", "return x[:, None]"),
    ("x: [B, 3, 4]", "return x[None, ..., 0]"),
    ("x: [B, 3, 4]", "return x[..., None, :]"),
    ("x: [B, 3, 4]", "return x[:, ::2, -3:]"),
    ("x: [B, 3, 4]", "return x[0]"),
    ("x: [B, 3, 4]", "return x[1:]"),
    ("x: [B, T=10, 4]", "return x[:, 1:], x[:, :-1], x[:, -3:], x[:, 2:-2:3]"),
    ("x: [B, 3, 4]", "return x.view(x.size(0), -1)"),
    ("x: [B, 3, 4]", "return x.view(x.shape[0], x.shape[1] * 4)"),
    ("x: [B, 3, 4]", "return x.reshape(-1, x.size(-1)), torch.reshape(x, (x.size(0), 12))"),
    ("x: [B, 3, 4]", "return x.shape[1] * x + x.size(2)"),
    ("x: [B, 3, 4]", "return x.flatten(1), torch.flatten(x, start_dim=0, end_dim=1)"),
    ("x: [B, 3, 4]", "return x.permute(0, 2, 1), torch.permute(x, (2, 0, 1)), x.transpose(-1, 1)"),
    ("x: [B, 3, 4]", "return x.unsqueeze(-1).squeeze(-1), x.squeeze(0), torch.squeeze(x[:, :1], (1, 2))"),
    ("x: [B, 3, 4]", "a, b = x.chunk(2, dim=-1)\n  c, d = torch.split(x, [1, 2], dim=1)\n  return a, b, c, d"),
    ("x: [B, 4, 6]", "parts = x.split(4, 2)\n  return parts[0], parts[1]"),
    ("x: [B, 3, 4]", "return x.max(dim=1)[0], x.max(1, True)[1], torch.max(x), x.argmax(-1)"),
    ("x: [B, 3, 4]", "return x.mean(dim=(1, 2)), x.sum(-1, keepdim=True), x.amax(), torch.amin(x, 1)"),
    ("x: [B, 3, 4], y: [B, 4, 5]", "return torch.bmm(x, y), x @ y, torch.matmul(x[:, 0], y)"),
    ("x: [B, 3, 4], y: [B, 3, 4]", "return torch.cat([x, y], dim=1), torch.stack((x, y), -1), torch.max(x, y)"),
    ("x: [B, 3, 4], y: [4]", "return x + y, x - y[None], x * 2, torch.add(x, y, alpha=2), y.mul(x)"),
    ("x: [B, 3, 4]", "return F.relu(x), torch.relu(x), x.relu(), F.gelu(x, approximate='tanh'), "
                     "F.softmax(x, dim=1), torch.log_softmax(x, -1), F.dropout(x, 0.1), x.sigmoid(), torch.tanh(x)"),
    ("x: [B, 3, 4]", "return F.normalize(x, dim=-1), x.clamp(min=0), torch.sqrt(x.abs()), x.pow(2), x[0].t(), "
                     "x.neg()"),
]


@pytest.mark.parametrize("sig, body", END_TO_END, ids=[b.splitlines()[-1][7:45] for _, b in END_TO_END])
def test_inferred_shapes_are_the_real_ones(sig, body):
    names = [part.split(":")[0].strip() for part in sig.replace("], ", "]|").split("|")]
    text = f"model M({sig}) {{\n forward({', '.join(names)}) {{\n  {body}\n }}\n}}"
    graph = modelspec.elaborate_spec(text)
    net = modelspec.compile_spec(text, seed=0)
    for batch in (2, 3):
        ins = modelspec.example_inputs(text, batch=batch)
        with torch.no_grad():
            out = net.eval()(*ins)
        outs = out if isinstance(out, tuple) else (out,)
        sizes = symbol_sizes(graph, batch)
        inferred = [tuple(_eval_dim(d.value, sizes) for d in o.shape) for o in graph.outputs]
        assert inferred == [tuple(o.shape) for o in outs], modelspec.generate_code(text)


# ---------------------------------------------------------------- memory order, held against torch
def _probe_fresh(name: str, x):
    """The op ``name`` of FRESH applied to the 4-d tensor ``x`` (in some memory order)."""
    x3 = x.flatten(0, 1)
    probes = {
        "contiguous": lambda: x.contiguous(), "matmul": lambda: torch.matmul(x, x.transpose(-1, -2)),
        "bmm": lambda: torch.bmm(x3, x3.transpose(1, 2)), "mm": lambda: torch.mm(x3[0], x3[0].t()),
        "sum": lambda: x.sum(1, keepdim=True), "mean": lambda: x.mean(2), "amax": lambda: x.amax(1, keepdim=True),
        "amin": lambda: x.amin(3), "argmax": lambda: x.argmax(1, keepdim=True), "argmin": lambda: x.argmin(2),
        "max": lambda: x.max(1, keepdim=True)[0], "min": lambda: x.min(3)[0], "prod": lambda: x.prod(1),
        "std": lambda: x.std(2, keepdim=True), "var": lambda: x.var(1), "norm": lambda: x.norm(dim=1, keepdim=True),
        "softmax": lambda: F.softmax(x, dim=1), "log_softmax": lambda: F.log_softmax(x, dim=-1),
        "linear": lambda: F.linear(x, torch.ones(6, x.shape[-1])),
        "embedding": lambda: F.embedding(x.abs().long() % 3, torch.ones(3, 2)),
        "one_hot": lambda: F.one_hot(x.abs().long() % 3),
    }
    return probes[name]()


def test_fresh_results_are_contiguous_in_torch():
    """forward lets `view` follow these (ops.FRESH); torch must make them contiguous from an input in any order.
    Every entry needs its probe here, so a new one is measured before it is trusted."""
    import itertools

    from modelspec.ops import FRESH

    base = torch.randn(2, 3, 4, 5)
    wrong = []
    for name in sorted(FRESH):
        for perm in itertools.permutations(range(4)):
            if not _probe_fresh(name, base.permute(*perm)).is_contiguous():
                wrong.append(f"{name} on an input permuted {perm}")
                break
    assert not wrong, "\n".join(wrong)
