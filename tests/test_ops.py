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
* tensors have dtypes (``T([2, 3], "bool")`` for a mask, ``fill=0`` for an index), sizes may be ``S(n)``
  (``torch.zeros(2, 3)``, ``torch.arange(5)``: symbolized like a tensor's dims) and dtypes ``Dt("long")``;
  a symbolic answer is held only at sizes where its symbolic dims, and the sizes the op says it needs
  (``op.needs``: reflect padding of 2 needs T >= 3), are at least 1, as forward checks them at the example
  sizes;
* every parameter name is the leading part of torch's signature, read from its docstring for a builtin;
  torch's overloads (``torch.arange(end)``, ``torch.randint(high, size)``) are held call by call;
* from inputs in order, torch's results are in order unless the table says they are not (a `view` may
  follow them);
* the losses as functions (``F.cross_entropy``, ...) are held the same way, with what the catalog's losses need
  (tests/test_catalog_loss.py): CPU referees wherever meta refuses or gives another shape, F.ctc_loss's lengths
  get values that fit its targets (`TORCH_FIT`), torch's warnings about the deprecated size_average and reduce
  and about kl_div's 'mean' are no refusals, and the catalog's deliberate refusals of calls torch runs
  (`deliberate_refusal`: a target torch broadcasts, a prediction that is not float, a tensor of weights) are
  taken, each documented; every dtype combination runs on CPU (`test_loss_dtypes_match_torch`), and each
  function refuses as its layer does, word for word;
* `broadcast`, `matmul_rule` and `slice_len` on their own;
* indexing, slicing, ``x.shape[1]``, ``x.size(0)`` and many ops end to end: the shapes `elaborate_spec`
  infers are those the compiled module produces; tensors forward creates are printed on the inputs'
  device (run on ``meta``, and on CUDA where there is one) and dtype, and drawn from torch's generator;
  the mult-adds of contractions are torch's own count.

Another seed draws other configurations: ``OPS_TEST_SEED=x pytest tests/test_ops.py``.
"""

from __future__ import annotations

import inspect
import itertools
import os
import random
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

import modelspec
from modelspec.pipeline import symbol_sizes
from modelspec.shapes import evaluate as _eval_dim
from modelspec.layers import CATALOG
from modelspec.layers.base import ArgError, ShapeProblem, bind
from modelspec.model import TensorInfo
from modelspec.ops import (
    F_NAMES,
    F_SPELLINGS,
    OPS,
    LossForm,
    Device,
    DType,
    TORCH_NAMES,
    apply_op,
    broadcast,
    function_prefix,
    matmul_rule,
    op_needs,
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


def _doc_signature(doc: str, at: int) -> list[str]:
    """The parameters of the call that opens at ``doc[at]`` (its "("), as written: "start=0", "*", "\\*size"."""
    items, depth, cur = [], 0, ""
    for c in doc[at:]:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(c, 0)
        if depth == 0:
            break
        if c == "," and depth == 1:
            items.append(cur)
            cur = ""
        elif depth >= 1 and not (depth == 1 and c == "("):
            cur += c
    return [*items, cur]


def torch_signatures(fn, name: str) -> list[tuple[list[str], list[str]]]:
    """Each signature of a torch function: (positional parameter names, keyword-only ones). Its Python
    signature, or where it has none (a builtin) or only ``(*args, **kwargs)`` (F.max_pool2d dispatches on
    return_indices), each one its docstring gives, overloads too: ``arange(start=0, end, step=1, *, out=None)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
        if not any(p.kind == p.VAR_POSITIONAL for p in params):
            return [([p.name for p in params if p.kind != p.KEYWORD_ONLY and not p.name.startswith("_")],
                     [p.name for p in params if p.kind == p.KEYWORD_ONLY])]
    except (ValueError, TypeError):
        pass
    out = []
    doc, first = fn.__doc__, []
    if not doc and hasattr(torch.Tensor, name):  # torch.masked_fill: documented as the method, x.masked_fill(mask, ...)
        doc, first = getattr(torch.Tensor, name).__doc__ or "", ["input"]
    for m in re.finditer(rf"(?m)^\s*(?:\.\. function:: )?{name}\(", doc or ""):
        positional, kw_only, star = list(first), [], False
        for item in _doc_signature(doc, m.end() - 1):
            item = item.strip().replace("\\", "").split("=")[0].split(":")[0].strip()
            if item == "*":
                star = True
            elif item:
                (kw_only if star else positional).append(item.lstrip("*"))
        out.append((positional, kw_only))
    return out


# torch's docstrings that name a parameter otherwise than torch binds it (each spelling is tested by keyword too)
DOC_ERRATA = {
    ("torch", "broadcast_to"): (["input", "size"], []),  # the docstring says shape; size= is what binds
    # one op for torch's overloads max(input), max(input, dim, keepdim=False) and max(input, other)
    ("torch", "max"): (["input", "dim", "keepdim", "other"], []),
    ("torch", "min"): (["input", "dim", "keepdim", "other"], []),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_names_match_torch(name):
    """Our positional parameters are the leading ones of a signature of torch's, our keyword-only ones among
    its parameters (torch adds out=, layout=, ...): by its Python signature or, for a builtin, by the signatures
    its docstring gives."""
    for kind, ns in spellings(name):
        if kind != "function":
            continue
        found = torch_signatures(getattr(MODULES[ns], name), name)
        found += [DOC_ERRATA[ns, name]] if (ns, name) in DOC_ERRATA else []
        params = [n for n, _ in op_params(OPS[name], ns=ns)]
        cut = params.index("*") if "*" in params else len(params)
        ours, ours_kw_only = [n.lstrip("*") for n in params[:cut]], params[cut + 1:]
        fits = [f for f in found if ours == f[0][: len(ours)] and set(ours_kw_only) <= set(f[0] + f[1])]
        assert fits or not found, f"{ns}.{name}: {ours}, *, {ours_kw_only} against torch's {found}"


def test_every_builtin_new_op_has_a_documented_signature():
    """The creation and functional ops are builtins: their signatures come from the docstrings, so those
    must be found (else the test above checks nothing for them)."""
    for name in ("arange", "zeros", "full", "randint", "randint_like", "einsum", "where", "tril", "masked_fill",
                 "gather", "topk", "roll", "flip", "tile"):
        assert torch_signatures(torch.__dict__[name], name), name
    for name in ("scaled_dot_product_attention", "max_pool2d", "avg_pool1d", "adaptive_max_pool3d", "linear", "pad"):
        assert torch_signatures(F.__dict__[name], name), name


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
    """A tensor argument, by its shape (ints, or "B" for the symbolic dim), its dtype, and ``fill``: 0 for an
    index, whose values must stay in range (test_dtypes.py otherwise fills with ones)."""

    def __init__(self, shape, dtype="float", fill=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.fill = fill

    def __repr__(self):
        return f"T{list(self.shape)}" if self.dtype == "float" else f"{self.dtype.capitalize()}{list(self.shape)}"


class S:
    """A size given as a number (``torch.zeros(2, 3)``, ``torch.arange(5)``): ``symbolize`` may make it B."""

    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return f"S({self.n})"


class Dt:
    """A dtype argument: ``torch.long`` as the spec writes it."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class Dev:
    """``x.device``, as a spec gives device=."""

    def __repr__(self):
        return "x.device"


TORCH_DTYPE = {"float": torch.float32, "long": torch.int64, "bool": torch.bool}
DT_NAMES = ["float", "long", "bool"]


def walk_values(v):
    """Every T and S inside a value, tuples and lists included."""
    if isinstance(v, (T, S)):
        yield v
    elif isinstance(v, (list, tuple)):
        for i in v:
            yield from walk_values(i)


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
            yield from (i for i in walk_values(v) if isinstance(i, T))

    def sizes(self):
        for v in self.values.values():
            yield from (i for i in walk_values(v) if isinstance(i, S))


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


# ---- creation
def maybe_dtype(r, v, p=0.3, names=DT_NAMES):
    if r.random() < p:
        v["dtype"] = Dt(r.choice(names))
    return v


def maybe_device(r, v, p=0.15):
    if r.random() < p:
        v["device"] = Dev()
    return v


def sizes_of(r, lo=1):
    shape = [S(d) for d in rshape(r, lo=0 if r.random() < 0.1 else lo)]
    if r.random() < 0.08:
        shape.append(r.choice([-1, 1.5]))  # refused: a negative size, a float
    return tuple(shape)


def gen_arange(r, name):
    u = r.random()
    if u < 0.35:  # torch.arange(end)
        v = {"end": S(r.randint(0, 6)) if r.random() < 0.8 else r.choice([2.5, -3, 0.5, 0])}
    elif u < 0.65:  # torch.arange(start, end)
        s = r.randint(-2, 3)
        v = {"start": s, "end": S(s + r.randint(1, 6)) if r.random() < 0.8 else r.choice([s - 2, s + 2.5, s])}
    else:  # with a step, now and then a float or a wrong sign
        s, st = r.choice([-3, 0, 1, 2, 0.5]), r.choice([1, 2, 3, -1, -2, 0.5, 0, 1.5, 0.3])
        end = s + st * r.randint(0, 4) + r.choice([0, 1, -1, 0.5])
        v = {"start": s, "end": S(end) if type(end) is int and end >= 0 and r.random() < 0.7 else end, "step": st}
    if u >= 0.35 and r.random() < 0.15:
        del v["end"]  # torch.arange(start=...) alone is refused
    return maybe_device(r, maybe_dtype(r, v))


def gen_filled(r, name):
    v = {"size": sizes_of(r, lo=0)}
    return maybe_device(r, maybe_dtype(r, v, 0.3 if name in ("zeros", "ones", "empty") else 0.2))


def gen_full(r, name):
    v = {"size": sizes_of(r, lo=0) if r.random() > 0.06 else 3, "fill_value": r.choice([1, 2.5, True, -1, 0.0])}
    return maybe_device(r, maybe_dtype(r, v))


def gen_randint(r, name):
    hi = r.choice([1, 2, 5, 10, 0])
    v = {"high": S(hi) if hi >= 2 and r.random() < 0.5 else hi, "size": sizes_of(r) if r.random() > 0.06 else 4}
    if r.random() < 0.5:
        v["low"] = r.choice([0, 1, 3, -2, 11])  # 3 and 11 now and then not below high
    return maybe_device(r, maybe_dtype(r, v))


def gen_like(r, name):
    x = T(rshape(r), r.choice(["float", "float", "long", "bool"]))
    v = {"input": x if r.random() > 0.05 else 2}
    if name == "full_like":
        v["fill_value"] = r.choice([1, 2.5, True, -1])
    if name == "randint_like":
        v["high"] = r.choice([2, 5, 1, 0])
        if r.random() < 0.4:
            v["low"] = r.choice([0, 1, -3, 3])
    return maybe_dtype(r, v, 0.35)


# ---- broadcasting and copying
def gen_expand(r, name):
    x = [r.choice([1, 1, 2, 3]) for _ in range(r.randint(0, 3))]
    sizes = [r.choice([-1, d, d]) if d != 1 else r.choice([-1, 1, 3, 4, 0]) for d in x]
    sizes = [r.randint(1, 3) for _ in range(r.choice([0, 0, 1, 2]))] + sizes
    if r.random() < 0.2 and sizes:  # refused: a dim that is not 1 grown, -1 in a new dim, too few sizes, -2
        i = r.randrange(len(sizes))
        sizes[i] = r.choice([5, -1, -2]) if i < len(sizes) - len(x) or x[i - len(sizes) + len(x)] != 1 else -2
    if r.random() < 0.06 and x:
        sizes = sizes[1:]
    if -2 in sizes:  # with a 0 beside it, torch makes a tensor of size -2 (it checks sizes only with elements)
        sizes = [1 if d == 0 else d for d in sizes]
    if name == "expand_as":
        return {"input": T(x), "other": T([5 if s < 0 else s for s in sizes])}
    return {"input": T(x), "size": tuple(sizes)}


def gen_repeat(r, name):
    x = rshape(r, max_rank=3)
    n = len(x) + r.choice([0, 0, 1, 2] + ([-1] if x and name == "repeat" else []) + ([-2] if name == "tile" else []))
    reps = [r.choice([1, 2, 3, 0]) for _ in range(max(n, 0))]
    if r.random() < 0.08 and reps:
        reps[0] = -1
    return {"input": T(x), ("repeats" if name == "repeat" else "dims"): tuple(reps)}


# ---- masks, comparisons, logic
def gen_tri(r, name):
    v = {"input": T(rshape(r), r.choice(["float", "float", "long", "bool"]))}
    if r.random() < 0.6:
        v["diagonal"] = r.choice([0, 1, -1, 2, -3, 1.5])
    return v


def broadcastable(r, x, p=0.7):
    """A shape that broadcasts with ``x`` (the trailing dims, each kept or 1), now and then one that does not."""
    out = [d if r.random() < p else 1 for d in x[r.randint(0, len(x)):]] if x else []
    if r.random() < 0.1:
        out = [2, *out] if r.random() < 0.5 else [*out[:-1], (out[-1] if out else 1) + 5]
    return out


def gen_masked_fill(r, name):
    x = rshape(r)
    mask = broadcastable(r, x)
    if r.random() < 0.15:
        mask = [*x] if r.random() < 0.5 else [2, *x]  # the mask may be larger than the input
    v = {"input": T(x, r.choice(["float", "float", "long", "bool"])),
         "mask": T(mask, "bool" if r.random() < 0.85 else r.choice(["float", "long"]))}
    v["value"] = r.choice([0, -1.5, float("-inf"), True, T([]), T([]), T([2])])
    return v


def gen_where(r, name):
    x = rshape(r)
    v = {"condition": T(broadcastable(r, x), "bool" if r.random() < 0.85 else r.choice(["float", "long"]))}
    for k in ("input", "other"):
        v[k] = T(broadcastable(r, x), r.choice(["float", "long", "bool"])) if r.random() < 0.7 else \
            r.choice([0.0, 1, True, -2.5])
    if r.random() < 0.5:
        v["input"] = T(x)
    return v


def gen_pair(*dtypes):
    """Two tensors (or a tensor and a number) that mostly broadcast, of ``dtypes``."""

    def gen(r, name):
        x = rshape(r)
        v = {"input": T(x, r.choice(dtypes))}
        if r.random() < 0.25:
            v["other"] = r.choice([2, 0.5, True, -1])
        else:
            v["other"] = T(broadcastable(r, x), r.choice(dtypes))
        return v

    return gen


def gen_unary(*dtypes):
    def gen(r, name):
        return {"input": T(rshape(r), r.choice(dtypes)) if r.random() > 0.05 else 2}

    return gen


def gen_clamp(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    for k, numbers in (("min", [-1.0, 0, -2]), ("max", [1.0, 2, 3.5])):
        if r.random() < 0.6:
            v[k] = r.choice(numbers) if r.random() < 0.7 else T(broadcastable(r, x), r.choice(["float", "long"]))
    return v


# ---- contraction
def gen_einsum(r, name):
    labels = "abcdij"
    size = {c: r.choice([1, 2, 3, 4]) for c in labels}
    n = r.choice([1, 2, 2, 2, 3]) if r.random() < 0.95 else 0
    terms, shapes, ell = [], [], [r.randint(1, 3) for _ in range(r.randint(0, 2))]
    for _ in range(n):
        term = r.sample(labels, r.randint(0, 3))
        if term and r.random() < 0.1:
            term.append(term[0])  # a diagonal
        shape = [size[c] if r.random() < 0.9 else 1 for c in term]
        if r.random() < 0.2:  # `...`
            at = r.randint(0, len(term))
            term.insert(at, "...")
            shape[at:at] = [d if r.random() < 0.8 else 1 for d in ell[r.randint(0, len(ell)):]]
        terms.append("".join(term))
        shapes.append(shape)
    seen = sorted({c for t in terms for c in t if c != "."})
    eq = ",".join(terms)
    if r.random() < 0.7:
        out = r.sample(seen, r.randint(0, len(seen)))
        if any("..." in t for t in terms) and r.random() < 0.8:
            out.insert(r.randint(0, len(out)), "...")
        if r.random() < 0.06:
            out.append(r.choice("xyz" + "".join(seen)))  # a subscript of no operand, or twice
        eq += "->" + "".join(out)
    if r.random() < 0.1 and shapes:  # refused: a rank that does not fit, a size that does not match
        s = r.choice(shapes)
        s.append(2) if r.random() < 0.5 or not s else s.__setitem__(0, s[0] + 5)
    if r.random() < 0.05:
        eq = eq.replace(",", ";")
    if r.random() < 0.3:
        eq = " " + eq.replace("->", " -> ")
    return {"equation": eq, "operands": tuple(T(s) for s in shapes)}


# ---- functional forms
def gen_sdpa(r, name):
    batch = rshape(r, rank=r.choice([0, 1, 2, 2, 3]), hi=3)
    L, S_, E, Ev = (r.randint(1, 5) for _ in range(4))

    def side(rows, cols):
        b = [d if r.random() < 0.85 else 1 for d in batch[r.randint(0, len(batch)) if r.random() < 0.2 else 0:]]
        return b + [rows, cols]

    v = {"query": T(side(L, E)), "key": T(side(S_, E)), "value": T(side(S_, Ev))}
    if r.random() < 0.12:
        k = r.choice(["key", "value"])
        v[k] = T([*v[k].shape[:-2], v[k].shape[-2] + 1, v[k].shape[-1] + (1 if k == "key" else 0)])
    if r.random() < 0.06:
        v["query"] = T([E])
    if r.random() < 0.35:  # at least 2-d: modelspec refuses a 1-d mask, which only some of torch's kernels take
        mask = [*([d if r.random() < 0.5 else 1 for d in batch[r.randint(0, len(batch)):]]), L, S_]
        if r.random() < 0.12:
            mask = [*mask[:-1], mask[-1] + 1]
        v["attn_mask"] = T(mask, r.choice(["bool", "bool", "float", "long"]))
    if r.random() < 0.35:
        v["is_causal"] = r.choice([True, False, True, 1])
    if r.random() < 0.3:
        v["dropout_p"] = r.choice([0.0, 0.1, 1.5])
    if r.random() < 0.2:
        v["scale"] = r.choice([0.5, None, 2])
    if r.random() < 0.2:
        v["enable_gqa"] = r.choice([True, False])
        if len(batch) and v["enable_gqa"] and r.random() < 0.6:
            h = r.choice([2, 3, 4])
            for k in ("query", "key", "value"):
                s = list(v[k].shape)
                if len(s) >= 3:
                    s[-3] = h * 2 if k == "query" else h
                    v[k] = T(s)
    return v


def gen_interpolate(r, name):
    rank = r.choice([3, 4, 5, 3, 4, 2, 6])
    x = [r.randint(1, 3), r.randint(1, 3)] + [r.randint(1, 6) for _ in range(max(rank - 2, 0))][: max(rank - 2, 0)]
    x = x[:rank]
    n = max(rank - 2, 1)
    v = {"input": T(x)}
    mode = r.choice(["nearest", "nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact",
                     "cubic"])
    if r.random() < 0.8:
        v["mode"] = mode
    u = r.random()
    if u < 0.45:
        sz = [r.randint(1, 7) for _ in range(n)]
        v["size"] = tuple(S(s) for s in sz) if r.random() < 0.7 else S(sz[0])
        if r.random() < 0.05:
            v["size"] = (*v["size"], 3) if isinstance(v["size"], tuple) else 0
    elif u < 0.9:
        sf = [r.choice([2, 0.5, 1.5, 3, 0.7, 2.0, 0.25, 1.3]) for _ in range(n)]
        v["scale_factor"] = tuple(sf) if r.random() < 0.5 else sf[0]
        if r.random() < 0.25:
            v["recompute_scale_factor"] = r.choice([True, False])
    elif u < 0.95:  # both, or neither
        v["size"], v["scale_factor"] = S(4), 2
    if r.random() < 0.25:
        v["align_corners"] = r.choice([True, False, None])
    if r.random() < 0.12:
        v["antialias"] = r.choice([True, False])
    return v


def gen_pad(r, name):
    x = rshape(r, lo=1, hi=5)
    k = r.randint(0, min(len(x), 3) + (1 if r.random() < 0.1 else 0))
    pads = [r.choice([0, 1, 2, 1, -1, 3]) for _ in range(2 * k)]
    if r.random() < 0.06:
        pads.append(1)  # an odd count
    v = {"input": T(x, r.choice(["float", "float", "long", "bool"])), "pad": tuple(pads)}
    if r.random() < 0.6:
        v["mode"] = r.choice(["constant", "reflect", "replicate", "circular", "zeros"])
    if r.random() < 0.3:
        v["value"] = r.choice([0, 1.5, -1, None])
    return v


def gen_pool(r, name):
    n = int(name[-2])
    adaptive, kind = name.startswith("adaptive"), "max" if "max" in name else "avg"
    rank = r.choice([n + 1, n + 2, n + 2, n + 1, n, n + 3])
    x = [r.randint(1, 3) for _ in range(max(rank - n, 0))] + [r.randint(2, 7) for _ in range(min(n, rank))]
    v = {"input": T(x[:rank], r.choice(["float", "float", "float", "long", "bool"]))}

    def tup(choices):
        return r.choice(choices) if r.random() < 0.5 else tuple(r.choice(choices) for _ in range(n))

    if adaptive:
        v["output_size"] = tup([1, 2, 3, 4] + ([None] if n > 1 else []))
        if kind == "max" and r.random() < 0.5:
            v["return_indices"] = r.choice([True, False])
        return v
    v["kernel_size"] = tup([1, 2, 2, 3] + ([0] if r.random() < 0.2 else []))
    if r.random() < 0.5:
        v["stride"] = tup([1, 2, 3, None])
    if r.random() < 0.4:
        v["padding"] = tup([0, 1, 0] + ([2] if r.random() < 0.3 else []))
    if r.random() < 0.3:
        v["ceil_mode"] = r.choice([True, False])
    if kind == "max":
        if r.random() < 0.3:
            v["dilation"] = tup([1, 2])
        if r.random() < 0.4:
            v["return_indices"] = r.choice([True, False])
    else:
        if r.random() < 0.3:
            v["count_include_pad"] = r.choice([True, False])
        if n > 1 and r.random() < 0.3:
            v["divisor_override"] = r.choice([None, 2, 0])
    return v


def gen_layer_norm(r, name):
    x = rshape(r, lo=1, hi=4)
    k = r.randint(0, len(x))
    shape = x[len(x) - k:] if r.random() < 0.85 else [*x[len(x) - k:], 2]
    sizes = tuple(S(d) for d in shape)  # symbolize turns them into B with the input's dims
    v = {"input": T(x), "normalized_shape": sizes[0] if len(shape) == 1 and r.random() < 0.1 else sizes}
    for w in ("weight", "bias"):
        if r.random() < 0.4:
            v[w] = T(shape if r.random() < 0.9 else [*shape, 1])
    if r.random() < 0.2:
        v["eps"] = r.choice([1e-5, 0.1])
    return v


def gen_group_norm(r, name):
    x = rshape(r, lo=1, hi=6)
    c = x[1] if len(x) > 1 else 4
    v = {"input": T(x), "num_groups": r.choice([d for d in range(1, c + 1) if c % d == 0] + [c + 1, 0])}
    for w in ("weight", "bias"):
        if r.random() < 0.4:
            v[w] = T([c] if r.random() < 0.9 else [c + 1])
    if r.random() < 0.2:
        v["eps"] = r.choice([1e-5, 0.1])
    return v


def gen_linear(r, name):
    x = rshape(r)
    k = x[-1] if x else 3
    out = r.randint(1, 4)
    w = [out, k] if r.random() < 0.8 else [k]
    if r.random() < 0.12:
        w[-1] += 1
    v = {"input": T(x), "weight": T(w)}
    if r.random() < 0.5:
        v["bias"] = T(r.choice([[out], [out], [1], [out + 1], []]) if len(w) == 2 else [])
    return v


def gen_embedding(r, name):
    n = r.randint(1, 6)
    v = {"input": T(rshape(r), "long" if r.random() < 0.9 else "float", fill=0),
         "weight": T([n, r.randint(1, 4)] if r.random() < 0.9 else [n])}
    if r.random() < 0.3:
        v["padding_idx"] = r.choice([0, -1, n, n - 1, -n - 1])
    if r.random() < 0.2:
        v["max_norm"] = r.choice([1.0, 2])
    if r.random() < 0.2:
        v["norm_type"] = r.choice([2.0, 1.0])
    for k in ("scale_grad_by_freq", "sparse"):
        if r.random() < 0.2:
            v[k] = flag(r)
    return v


# ---- more tensor methods
def gen_unbind(r, name):
    x = rshape(r)
    v = {"input": T(x, r.choice(["float", "long", "bool"]))}
    if r.random() < 0.7:
        v["dim"] = rdim(r, len(x))
    return v


def gen_norm(r, name):
    x = rshape(r)
    v = {"input": T(x)}
    if r.random() < 0.6:
        v["p"] = r.choice([1, 2, 2.0, 3, float("inf"), 0, "fro", "fro", "nuc", "abc"])
    u = r.random()
    if u < 0.35:
        v["dim"] = rdim(r, len(x))
    elif u < 0.6 and x:
        v["dim"] = tuple(r.sample(range(-len(x), len(x)), k=min(len(x), r.randint(1, 3))))
    if r.random() < 0.4:
        v["keepdim"] = flag(r)
    return v


def gen_flip(r, name):
    x = rshape(r)
    dims = r.sample(range(-len(x), len(x)), k=min(len(x), r.randint(0, 3))) if x else []
    if r.random() < 0.12:
        dims.append(dims[0] if dims and r.random() < 0.5 else len(x) + 1)
    return {"input": T(x, r.choice(["float", "long", "bool"])), "dims": tuple(dims)}


def gen_roll(r, name):
    x = rshape(r, lo=1)
    k = r.randint(1, max(len(x), 1))
    v = {"input": T(x)}
    if r.random() < 0.6 and x:
        dims = [rdim(r, len(x)) for _ in range(k)]
        v["shifts"] = tuple(r.randint(-3, 3) for _ in range(k if r.random() < 0.9 else k + 1))
        v["dims"] = tuple(dims) if len(dims) > 1 or r.random() < 0.5 else dims[0]
        if len(v["shifts"]) == 1 and r.random() < 0.5:
            v["shifts"] = v["shifts"][0]
    else:
        v["shifts"] = r.choice([1, -2, (1,), (1, 2), 2.5])
    return v


def gen_gather(r, name):
    x = rshape(r, lo=1)
    dim = rdim(r, len(x))
    idx = [r.randint(0, d) if r.random() < 0.8 else d for d in x] if x else r.choice([[], [3]])
    if r.random() < 0.1 and idx:
        idx[r.randrange(len(idx))] += 2  # larger than the input outside dim: refused unless it is dim
    if r.random() < 0.05:
        idx.append(1)
    # a float index is refused; torch lets one with no elements pass, which modelspec does not copy
    wrong = r.random() < 0.1 and all(idx)
    v = {"input": T(x, r.choice(["float", "long"])), "dim": dim, "index": T(idx, "float" if wrong else "long", fill=0)}
    if r.random() < 0.2:
        v["sparse_grad"] = flag(r)
    return v


def gen_index_select(r, name):
    x = rshape(r)
    v = {"input": T(x, r.choice(["float", "long", "bool"])), "dim": rdim(r, len(x)),
         "index": T(r.choice([[r.randint(0, 4)], [r.randint(0, 4)], [], [2, 2]]), "long" if r.random() < 0.9 else
                    "float", fill=0)}
    return v


def gen_topk(r, name):
    x = rshape(r)
    v = {"input": T(x, r.choice(["float", "float", "long"]))}
    dim = rdim(r, len(x))
    v["k"] = r.choice([0, 1, 1, 2, 3, 5, -1])
    if r.random() < 0.7:
        v["dim"] = dim
    for k in ("largest", "sorted"):
        if r.random() < 0.3:
            v[k] = flag(r)
    return v


def gen_to(r, name):
    x = T(rshape(r), r.choice(DT_NAMES))
    u = r.random()
    v = {"input": x, "dtype": Dt(r.choice(DT_NAMES)) if u < 0.7 else T(rshape(r), r.choice(DT_NAMES))}
    for k in ("non_blocking", "copy"):
        if r.random() < 0.2:
            v[k] = flag(r)
    return v


def gen_cast(r, name):
    return {"input": T(rshape(r), r.choice(DT_NAMES))}


def gen_type_as(r, name):
    return {"input": T(rshape(r), r.choice(DT_NAMES)), "other": T(rshape(r), r.choice(DT_NAMES))}


# ---- losses: the catalog's losses as functions (F.cross_entropy, ...), with the catalog's rules
LOSS_NAMES = sorted(n for n, op in OPS.items() if isinstance(op.rule, LossForm))


def slip(r, shape, p=0.12):
    """The catalog's `slip` (now and then another shape), as a list."""
    from test_catalog_loss import slip as catalog_slip

    return list(catalog_slip(r, shape, p))


def loss_params(name) -> set:
    return {n for n, _ in OPS[name].params}


def loss_reduction(r, v, name):
    """reduction (each of torch's, now and then one it refuses), or now and then the deprecated size_average and
    reduce, which override it (a wrong reduction beside them is not drawn: torch would not read it)."""
    params = loss_params(name)
    legacy = False
    if r.random() < 0.25 and "size_average" in params:
        for k in ("size_average", "reduce"):
            if r.random() < 0.7:
                v[k] = r.choice([None, True, False])
                legacy = True
    if r.random() < 0.85:
        choices = ["none", "none", "mean", "sum"] + (["batchmean"] if name == "kl_div" else [])
        v["reduction"] = r.choice(choices) if legacy or r.random() > 0.06 else r.choice(["avg", "batchmean", 1])
    return v


def loss_weights(r, v, name):
    """The class weights are None only, as the catalog takes them: now and then None given, or a tensor (refused)."""
    for k in ("weight", "pos_weight"):
        if k in loss_params(name) and r.random() < 0.25:
            v[k] = None if r.random() < 0.8 else T([1])
    return v


def prediction(r, shape, p=0.05):
    """A float prediction; now and then a long or bool one, which a loss refuses (torch runs a few of them)."""
    return T(shape, "float" if r.random() > p else r.choice(["long", "bool"]))


def gen_loss_elementwise(targets, **options):
    """MSE, L1, ...: a target of the input's shape (now and then another, which torch broadcasts) of one of
    ``targets`` dtypes (now and then another); each of ``options`` half the time."""

    def gen(r, name):
        x = rshape(r, max_rank=3)
        target = slip(r, x, 0.15)
        if r.random() < 0.05 and x:
            target = [1, *x[1:]]  # broadcasts in torch
        v = {"input": prediction(r, x), "target": T(target, r.choice(targets) if r.random() > 0.08 else
                                                     r.choice(DT_NAMES))}
        for k, draw in options.items():
            if r.random() < 0.5:
                v[k] = draw(r)
        return loss_weights(r, loss_reduction(r, v, name), name)

    return gen


def gen_loss_classes(r, name):
    """cross_entropy, nll_loss, multi_margin_loss: scores [C], [B, C] or [B, C, d1, ...] (K-dimensional for the
    first two), a class index target of the input's shape without its class dim (now and then another shape, or a
    float one), and for cross_entropy class probabilities of the input's shape."""
    ranks = (0, 1, 2, 2, 3) if name == "multi_margin_loss" else (1, 2, 2, 3, 4)
    x = rshape(r, r.choice(ranks), lo=1, hi=4)
    if len(x) >= 2 and r.random() < 0.8:
        x[1] = r.randint(2, 5)  # more than one class mostly: test_dtypes draws the index 1
    index = [] if len(x) <= 1 else [x[0], *x[2:]]
    if name == "cross_entropy" and r.random() < 0.3:
        target = T(slip(r, x, 0.1), "float" if r.random() > 0.1 else "long")  # probabilities
    else:
        target = T(slip(r, index, 0.15), "long" if r.random() > 0.1 else r.choice(["float", "bool"]), fill=0)
        if len(x) == 1 and r.random() < 0.2:
            target = T([1], "long", fill=0)  # one sample [C] with a target [1]
    v = {"input": prediction(r, x), "target": target}
    if "ignore_index" in loss_params(name) and r.random() < 0.4:
        v["ignore_index"] = r.choice([-100, 0, 1, -1])
    if name == "cross_entropy" and r.random() < 0.4:
        v["label_smoothing"] = r.choice([0.0, 0.1, 0.5, 1.0, 1.5])
    if name == "multi_margin_loss":
        if r.random() < 0.5:
            v["p"] = r.choice([1, 2, 2, 3])
        if r.random() < 0.5:
            v["margin"] = r.choice([1.0, 0.5, 2])
    return loss_weights(r, loss_reduction(r, v, name), name)


def gen_multilabel_margin(r, name):
    x = rshape(r, max_rank=3)
    v = {"input": prediction(r, x), "target": T(slip(r, x, 0.2), "long" if r.random() > 0.1 else "float", fill=0)}
    return loss_reduction(r, v, name)


def gen_gaussian_nll(r, name):
    """var of the input's shape, of its shape without the last dim, with one dim of 1, of another shape, or a
    float (one variance for all); now and then an int or a negative float, which torch refuses."""
    x = rshape(r, max_rank=3)
    roll = r.random()
    if roll < 0.3:
        var = T(x)
    elif roll < 0.5:
        var = T(x[:-1])
    elif roll < 0.65 and x:
        i = r.randrange(len(x))
        var = T([*x[:i], 1, *x[i + 1:]])
    elif roll < 0.85:
        var = r.choice([1.0, 0.5, 2.0, 1, -1.0])
    else:
        var = T(slip(r, x, 1.0))
    v = {"input": prediction(r, x), "target": T(slip(r, x, 0.1), r.choice(["float", "float", "long"])), "var": var}
    if r.random() < 0.4:
        v["full"] = flag(r)
    if r.random() < 0.3:
        v["eps"] = r.choice([1e-6, 0.1])
    return loss_reduction(r, v, name)


def gen_cosine_embedding(r, name):
    """Pairs [B, D] (or one pair [D]) and a target of 1 or -1 per pair."""
    x = rshape(r, r.choice([1, 2, 2, 2, 3]))
    x2 = x if r.random() > 0.15 else slip(r, x, 1.0) if r.random() < 0.5 else [1, *x[1:]]
    target = [x[0]] if len(x) == 2 else []
    v = {"input1": prediction(r, x), "input2": T(x2), "target": T(slip(r, target, 0.15), r.choice(["float", "long"]))}
    if r.random() < 0.5:
        v["margin"] = r.choice([0.0, 0.5, -0.5])
    return loss_reduction(r, v, name)


def gen_margin_ranking(r, name):
    x = rshape(r, r.choice([0, 1, 1, 2, 3]))
    v = {"input1": prediction(r, x), "input2": T(slip(r, x, 0.1)),
         "target": T(slip(r, x, 0.1), r.choice(["float", "long", "float"]))}
    if r.random() < 0.5:
        v["margin"] = r.choice([0.0, 0.5, -0.5])
    return loss_reduction(r, v, name)


def gen_triplet_margin(r, name):
    x = rshape(r, max_rank=3)
    v = {"anchor": prediction(r, x), "positive": T(slip(r, x, 0.1)), "negative": T(slip(r, x, 0.1))}
    for k, choices in (("margin", [1.0, 0.5, 0, 2]), ("p", [2.0, 1.0, 3]), ("eps", [1e-6, 0.0]),
                       ("swap", [True, False])):
        if r.random() < 0.4:
            v[k] = r.choice(choices)
    return loss_reduction(r, v, name)


def gen_ctc(r, name):
    """log_probs [T, N, C] (or [T, C] for one sequence), targets padded [N, S] or concatenated [N * S], one
    length per sequence: run_torch gives the lengths values that match the targets (fit_ctc)."""
    t, n, c, s = r.randint(2, 6), r.randint(1, 3), r.randint(2, 5), r.randint(1, 3)
    if r.random() < 0.2:  # one sequence
        log_probs, targets, lengths = [t, c], [s], []
    else:
        log_probs, targets, lengths = [t, n, c], [n, s] if r.random() < 0.6 else [n * s], [n]
    v = {"log_probs": prediction(r, slip(r, log_probs, 0.06), 0.03),
         "targets": T(slip(r, targets, 0.08), "long" if r.random() > 0.1 else r.choice(["float", "bool"])),
         "input_lengths": T(slip(r, lengths, 0.1), "long" if r.random() > 0.06 else "float"),
         "target_lengths": T(slip(r, lengths, 0.1), "long" if r.random() > 0.06 else "float")}
    if r.random() < 0.4:
        v["blank"] = r.choice([0, 1, 2, 5])
    if r.random() < 0.3:
        v["zero_infinity"] = flag(r)
    return loss_reduction(r, v, name)


def fit_ctc(t: dict) -> dict:
    """Values for F.ctc_loss's tensors that its shapes must agree with (the concatenated targets hold
    sum(target_lengths)): the longest input each, the targets' length (split evenly, where concatenated), and
    targets of a class other than the blank -- as tests/test_catalog_loss.py gives them to CTCLoss."""
    lp, tg, il, tl = (t.get(k) for k in ("log_probs", "targets", "input_lengths", "target_lengths"))
    if not all(isinstance(v, torch.Tensor) for v in (lp, tg, il, tl)) or lp.dim() == 0:
        return t
    n = tl.numel()
    if tg.dim() == 2:
        lengths = [tg.shape[1]] * n
    elif tg.dim() == 1 and n:
        lengths = [tg.shape[0] // n] * n
        lengths[0] += tg.shape[0] % n
    else:
        lengths = [0] * n
    blank = t.get("blank", 0)
    return {**t, "input_lengths": torch.full(il.shape, lp.shape[0], dtype=il.dtype, device=il.device),
            "target_lengths": torch.tensor(lengths, dtype=torch.long).reshape(tl.shape).to(tl.device, tl.dtype),
            "targets": torch.full(tg.shape, 0 if blank == 1 else 1, dtype=tg.dtype, device=tg.device)}


# the values a loss's tensors must hold for torch to run it (zeros otherwise)
TORCH_FIT = {"ctc_loss": fit_ctc}

# Deliberate refusals: where torch runs a loss that the catalog refuses on purpose (modelspec/layers/loss.py),
# its functional form refuses it too (one rule per loss). The harness takes these refusals; any other refusal of
# a call torch runs is a disagreement.
# * a target (or a second input) of another shape than the one it is compared with, which torch broadcasts
#   (F.mse_loss of [B, 1] against [B] is a [B, B] loss, with a warning; F.soft_margin_loss broadcasts silently);
SAME_SHAPE = {
    **{n: [("input", "target")] for n in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss",
                                          "hinge_embedding_loss", "kl_div", "poisson_nll_loss", "binary_cross_entropy",
                                          "binary_cross_entropy_with_logits", "multilabel_soft_margin_loss",
                                          "gaussian_nll_loss")},
    "cosine_embedding_loss": [("input1", "input2")], "margin_ranking_loss": [("input1", "input2"),
                                                                            ("input1", "target")],
    "triplet_margin_loss": [("anchor", "positive"), ("anchor", "negative")],
}
# * a prediction of a dtype other than float (F.mse_loss of a long input runs in torch): a loss compares float
#   predictions;
PREDICTIONS = {"cosine_embedding_loss": ("input1", "input2"), "margin_ranking_loss": ("input1", "input2"),
               "triplet_margin_loss": ("anchor", "positive", "negative"), "poisson_nll_loss": ("input",),
               "ctc_loss": ("log_probs",)}
# * the 0-d input F.multi_margin_loss and F.multilabel_margin_loss take as one sample of one class;
TAKES_0D = {"multi_margin_loss", "multilabel_margin_loss"}
# * a tensor of class weights (weight, pos_weight): None only, as the catalog's losses take them.
WEIGHTS = ("weight", "pos_weight")


def deliberate_refusal(case: Case) -> str | None:
    """Why modelspec refuses this loss call that torch runs, where that is on purpose (see above); else None."""
    if case.name not in LOSS_NAMES:
        return None
    v = case.values
    for a, b in SAME_SHAPE.get(case.name, []):
        if isinstance(v.get(a), T) and isinstance(v.get(b), T) and v[a].shape != v[b].shape:
            return f"{b} {list(v[b].shape)} is not of {a}'s shape {list(v[a].shape)}: torch broadcasts it"
    for k in PREDICTIONS.get(case.name, ("input",)):
        if isinstance(v.get(k), T) and v[k].dtype != "float":
            return f"the prediction {k} is {v[k].dtype}: a loss compares float predictions"
    if case.name in TAKES_0D and isinstance(v.get("input"), T) and v["input"].shape == ():
        return "a 0-d input, which torch takes as one sample of one class"
    if any(isinstance(v.get(k), T) for k in WEIGHTS):
        return "a tensor of weights, which a loss in a spec does not take (None only)"
    return None


def loss_scale(r):
    """SmoothL1's beta, Huber's delta: now and then 0 or negative."""
    return r.choice([1.0, 0.5, 2, 0.0, -1.0])


LOSS_GENERATORS = {
    "mse_loss": gen_loss_elementwise(("float", "long", "bool")),
    "l1_loss": gen_loss_elementwise(("float", "long")),
    "smooth_l1_loss": gen_loss_elementwise(("float", "long", "bool"), beta=loss_scale),  # beta=0: an L1 loss
    "huber_loss": gen_loss_elementwise(("float", "long", "bool"), delta=loss_scale),  # delta=0: refused
    "soft_margin_loss": gen_loss_elementwise(("float", "long", "bool")),
    "hinge_embedding_loss": gen_loss_elementwise(("float", "long", "bool"),
                                                 margin=lambda r: r.choice([1.0, 0.5, 0.0, -1])),
    "kl_div": gen_loss_elementwise(("float",), log_target=flag),
    "poisson_nll_loss": gen_loss_elementwise(("float", "long", "bool"), log_input=flag, full=flag,
                                             eps=lambda r: r.choice([1e-8, 0.1])),
    "binary_cross_entropy": gen_loss_elementwise(("float",)),
    "binary_cross_entropy_with_logits": gen_loss_elementwise(("float",)),
    "multilabel_soft_margin_loss": gen_loss_elementwise(("float", "long")),
    "cross_entropy": gen_loss_classes, "nll_loss": gen_loss_classes, "multi_margin_loss": gen_loss_classes,
    "multilabel_margin_loss": gen_multilabel_margin, "gaussian_nll_loss": gen_gaussian_nll,
    "cosine_embedding_loss": gen_cosine_embedding, "margin_ranking_loss": gen_margin_ranking,
    "triplet_margin_loss": gen_triplet_margin, "ctc_loss": gen_ctc,
}


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
    "clamp": gen_clamp, "clip": gen_clamp,
    "arange": gen_arange, "full": gen_full, "randint": gen_randint,
    **{n: gen_filled for n in ("zeros", "ones", "empty", "randn", "rand")},
    **{f"{n}_like": gen_like for n in ("zeros", "ones", "empty", "randn", "rand", "full", "randint")},
    "expand": gen_expand, "expand_as": gen_expand, "broadcast_to": gen_expand, "repeat": gen_repeat, "tile": gen_repeat,
    "tril": gen_tri, "triu": gen_tri, "masked_fill": gen_masked_fill, "where": gen_where,
    **{n: gen_pair("float", "long", "bool") for n in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{n: gen_pair("bool", "long", "bool", "float") for n in ("bitwise_and", "bitwise_or", "bitwise_xor")},
    **{n: gen_pair("float", "long", "bool") for n in ("logical_and", "logical_or", "logical_xor")},
    "bitwise_not": gen_unary("bool", "long", "float"), "logical_not": gen_unary("float", "long", "bool"),
    "einsum": gen_einsum, "scaled_dot_product_attention": gen_sdpa, "interpolate": gen_interpolate, "pad": gen_pad,
    **{f"{k}_pool{n}d": gen_pool for k in ("avg", "max", "adaptive_avg", "adaptive_max") for n in (1, 2, 3)},
    "layer_norm": gen_layer_norm, "group_norm": gen_group_norm, "linear": gen_linear, "embedding": gen_embedding,
    "unbind": gen_unbind, "norm": gen_norm, "flip": gen_flip, "roll": gen_roll, "gather": gen_gather,
    "index_select": gen_index_select, "topk": gen_topk, "to": gen_to, "float": gen_cast, "long": gen_cast,
    "bool": gen_cast, "type_as": gen_type_as,
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
    **LOSS_GENERATORS,
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
    bad = 0.04 if len(OPS[name].params) > 1 else 0.1  # x.float(): only a binding mistake can be wrong
    for _ in range(n):
        case = Case(name, gen(r, name), layout_seed=r.randrange(1 << 30))
        u = r.random()
        if u < bad:
            case.extra_args = (1, 1, 1, 1, 1)  # more arguments than any spelling takes
        elif u < 2 * bad:
            case.extra_kwargs = {"bogus": 1}
        out.append(case)
    return out


# ---------------------------------------------------------------- running both
def ours_value(v, sizes=None):
    """A test value as `fwd_args`/`apply` pass it: tensors as TensorInfo, lists of tensors as Val([...])."""
    if isinstance(v, T):
        return TensorInfo(tuple(Val(Sym.var("B") if d == "B" else d) for d in v.shape), v.dtype)
    if isinstance(v, S):
        return Val(Sym.var("B") if v.n == "B" else v.n)
    if isinstance(v, Dt):
        return Val(DType(v.name))
    if isinstance(v, Dev):
        return Val(Device("x"))
    if isinstance(v, (list, tuple)):
        items = [ours_value(i) for i in v]
        if any(isinstance(i, TensorInfo) for i in items):
            return Val(items)
        return Val(type(v)(items))
    return Val(v)


def torch_value(v, b: int | None, device: str):
    if isinstance(v, T):
        return torch.zeros([b if d == "B" else d for d in v.shape], dtype=TORCH_DTYPE[v.dtype], device=device)
    if isinstance(v, S):
        return b if v.n == "B" else v.n
    if isinstance(v, Dt):
        return TORCH_DTYPE[v.name]
    if isinstance(v, Dev):
        return torch.device(device)
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


def fitted(name, kind, ns, targs: list, tkwargs: dict):
    """The torch arguments with the values an op's tensors must hold (`TORCH_FIT`: F.ctc_loss's lengths)."""
    fit = TORCH_FIT.get(name)
    names = [n.lstrip("*") for n, _ in op_params(OPS[name], method=kind == "method", ns=ns) if n != "*"]
    if fit is None or len(targs) > len(names):
        return targs, tkwargs
    named = fit({**dict(zip(names, targs)), **tkwargs})
    return [named[n] for n in names[: len(targs)]], {k: named[k] for k in tkwargs}


# torch's warnings that are no refusal: the deprecated size_average and reduce, which still work (and which a
# spec may give, as torch takes them), and F.kl_div's reduction='mean', which will change in a later release
NOT_REFUSALS = (".*size_average and reduce args will be deprecated.*", ".*reduction: 'mean' divides the total loss.*")


def run_torch(name, kind, ns, args, kwargs, b=None, device="meta"):
    """("ok", result) or ("error", message)."""
    targs, tkwargs = fitted(name, kind, ns, [torch_value(a, b, device) for a in args],
                            {k: torch_value(v, b, device) for k, v in kwargs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Implicit dimension choice for softmax" is a refusal
        warnings.filterwarnings("ignore", message=".*Failed to initialize NumPy.*")
        for message in NOT_REFUSALS:
            warnings.filterwarnings("ignore", message=message)
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
    """The case with one size (>= 2) of its tensors (or of its sizes) made the symbol B, and that size; None if
    none fits."""
    sizes = sorted({d for t in case.tensors() for d in t.shape if isinstance(d, int) and d >= 2}
                   | {s.n for s in case.sizes() if type(s.n) is int and s.n >= 2})
    if not sizes:
        return None, None
    v = r.choice(sizes)

    def sub(x):
        if isinstance(x, T):
            return T(["B" if d == v else d for d in x.shape], x.dtype, x.fill)
        if isinstance(x, S):
            return S("B" if x.n == v else x.n)
        if isinstance(x, (list, tuple)) and any(True for _ in walk_values(x)):
            return type(x)(sub(i) for i in x)
        return x

    return Case(case.name, {k: sub(x) for k, x in case.values.items()}, case.layout_seed, case.extra_args,
                dict(case.extra_kwargs)), v


def symbolic_dims(res) -> list:
    """The symbolic dims of a result: `check_example` holds each to at least 1 at the example sizes."""
    if isinstance(res, TensorInfo):
        return [d.value for d in res.shape if isinstance(d.value, Sym)]
    if isinstance(res, list):
        return [d for r in res for d in symbolic_dims(r)]
    return []


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
        if ours[0] != theirs[0] or (case.name in LOSS_NAMES and ours != theirs):
            # the referee; for a loss also where meta refuses (F.ctc_loss has no meta kernel) or gives another
            # shape (F.multilabel_margin_loss of one sample [C]: [1] on meta, [] on CPU)
            theirs = run_torch(case.name, kind, ns, args, kwargs, device="cpu")
        if ours[0] == "error" and theirs[0] == "ok" and deliberate_refusal(case):
            stats["deliberate refusal"] += 1
            continue
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
        needs = [n for n, _ in op_needs(OPS[case.name], [ours_value(a) for a in sargs],
                                        {k: ours_value(x) for k, x in skwargs.items()}, method=kind == "method", ns=ns)]
        for b in (v, v + 1, v + 3):
            if any(_eval_dim(d, {"B": b}) < 1 for d in symbolic_dims(res) + needs):
                stats["symbolic:below 1"] += 1  # forward refuses it at these sizes (check_example, op.needs)
                continue
            mine = plain_ours(res, b)
            theirs = run_torch(case.name, kind, ns, sargs, skwargs, b=b)
            if theirs[0] == "error" or (case.name in LOSS_NAMES and theirs[1] != mine):
                theirs = run_torch(case.name, kind, ns, sargs, skwargs, b=b, device="cpu")
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
    assert not problems, f"{name}: {len(problems)} disagreements, first ones:\n" + "\n".join(problems[:8])
    stats = STATS[name]
    kinds = {k for k, _ in spellings(name)}
    for kind in kinds:
        assert stats[f"{kind}:ok"] >= 10, f"{name}: too few valid {kind} configurations: {dict(stats)}"
        assert stats[f"{kind}:error"] >= 2, f"{name}: too few invalid {kind} configurations: {dict(stats)}"
    assert stats["symbolic:ok"] >= 5 or name in ("size",), f"{name}: too few symbolic configurations: {dict(stats)}"
    assert stats["symbolic:below 1"] <= stats["symbolic:ok"], f"{name}: most symbolic answers unchecked: {dict(stats)}"


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


# ---------------------------------------------------------------- the losses as functions
def _ctc(log_probs, targets, lengths, **kw):
    return Case("ctc_loss", {"log_probs": T(log_probs), "targets": T(targets, "long"),
                             "input_lengths": T(lengths, "long"), "target_lengths": T(lengths, "long"), **kw})


# each feature the generators reach by chance, pinned; the refusals among them torch makes too
LOSS_CASES = [
    Case("cross_entropy", {"input": T([2, 5, 3, 4]), "target": T([2, 3, 4], "long", fill=0), "reduction": "none"}),
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2, 5]), "label_smoothing": 0.1}),  # probabilities
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2, 5]), "ignore_index": 1}),  # refused with them
    Case("cross_entropy", {"input": T([5]), "target": T([], "long", fill=0), "reduction": "none"}),  # one sample
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2], "long", fill=0), "ignore_index": 0, "weight": None}),
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2])}),  # float class indices: refused
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2, 1], "long", fill=0)}),  # refused
    Case("nll_loss", {"input": T([2, 5]), "target": T([2], "long", fill=0), "size_average": False}),  # sum
    Case("nll_loss", {"input": T([2, 5, 3]), "target": T([2, 3], "long", fill=0), "reduce": False}),  # none: [2, 3]
    Case("multi_margin_loss", {"input": T([3, 4]), "target": T([3], "long", fill=0), "p": 2, "reduction": "none"}),
    Case("mse_loss", {"input": T([4, 1]), "target": T([4])}),  # torch warns that it broadcasts: refused
    Case("l1_loss", {"input": T([3]), "target": T([3], "long"), "reduction": "sum", "weight": None}),
    Case("kl_div", {"input": T([2, 3]), "target": T([2, 3])}),  # reduction='mean' warns, and runs
    Case("kl_div", {"input": T([2, 3]), "target": T([2, 3]), "reduction": "batchmean", "log_target": True}),
    Case("binary_cross_entropy_with_logits", {"input": T([2, 3]), "target": T([2, 3]), "pos_weight": None,
                                              "size_average": True, "reduce": False}),
    Case("gaussian_nll_loss", {"input": T([2, 3]), "target": T([2, 3]), "var": T([2])}),  # one per sample
    Case("gaussian_nll_loss", {"input": T([2, 3]), "target": T([2, 3]), "var": T([1, 3]), "reduction": "none"}),
    Case("gaussian_nll_loss", {"input": T([2, 3]), "target": T([2, 3]), "var": 0.5, "reduction": "none"}),
    Case("gaussian_nll_loss", {"input": T([2, 3]), "target": T([2, 3]), "var": 1}),  # an int var: refused
    Case("cosine_embedding_loss", {"input1": T([3, 4]), "input2": T([3, 4]), "target": T([3]), "reduction": "none"}),
    Case("triplet_margin_loss", {"anchor": T([2, 3, 4]), "positive": T([2, 3, 4]), "negative": T([2, 3, 4]),
                                 "reduction": "none", "swap": True}),
    Case("multilabel_margin_loss", {"input": T([4]), "target": T([4], "long", fill=0), "reduction": "none"}),
    _ctc([6, 2, 4], [2, 3], [2]), _ctc([6, 2, 4], [6], [2], reduction="none"), _ctc([6, 4], [3], []),
    _ctc([6, 2, 4], [2, 3], [3]), _ctc([6, 2, 4], [2, 3], [2], blank=4),  # refused: a length per sequence, a blank
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: f"{c.name}-{c.values}")
def test_loss_cases(case):
    problems = check_case(case, random.Random(0))
    assert not problems, "\n".join(problems)


# deliberate refusals, each of a call torch runs
DELIBERATE = [
    Case("hinge_embedding_loss", {"input": T([4, 1]), "target": T([4])}),  # torch broadcasts to [4, 4], silently
    Case("kl_div", {"input": T([3, 4]), "target": T([1, 4]), "reduction": "sum"}),
    Case("margin_ranking_loss", {"input1": T([3]), "input2": T([3]), "target": T([1])}),
    Case("mse_loss", {"input": T([3], "long"), "target": T([3])}),  # a long prediction
    Case("multi_margin_loss", {"input": T([]), "target": T([], "long", fill=0)}),
    Case("cross_entropy", {"input": T([2, 5]), "target": T([2], "long", fill=0), "weight": T([5])}),
    Case("binary_cross_entropy_with_logits", {"input": T([2, 5]), "target": T([2, 5]), "pos_weight": T([5])}),
]


@pytest.mark.parametrize("case", DELIBERATE, ids=lambda c: f"{c.name}-{c.values}")
def test_deliberate_refusals(case):
    """Each documented refusal (deliberate_refusal) is one: torch runs the call, modelspec refuses it with the
    layer's words."""
    args, kwargs = layout(case, OPS[case.name].params, False)
    assert deliberate_refusal(case)
    assert run_torch(case.name, "function", "F", args, kwargs, device="cpu")[0] == "ok"
    assert run_ours(case.name, "function", "F", args, kwargs)[0] == "error"


# where the catalog once disagreed with torch (a bool target that L1 and Stirling's term refuse, a CTC length of
# shape [1]), pinned
GAPS = [
    _ctc([6, 4], [3], [1]),
    Case("poisson_nll_loss", {"input": T([2, 3]), "target": T([2, 3], "bool"), "full": True}),
    Case("smooth_l1_loss", {"input": T([2, 3]), "target": T([2, 3], "bool"), "beta": 0.0}),
]


@pytest.mark.parametrize("case", GAPS, ids=lambda c: f"{c.name}-{c.values}")
def test_former_catalog_gaps_agree_with_torch(case):
    args, kwargs = layout(case, OPS[case.name].params, False)
    ours, theirs = run_ours(case.name, "function", "F", args, kwargs), run_torch(case.name, "function", "F", args,
                                                                                  kwargs, device="cpu")
    assert ours[0] == theirs[0], f"ours {ours}, torch {theirs}"


def _as_layer(case: Case):
    """The catalog layer's verdict on the same configuration: its binding, dtype wants and rule, as
    modules.call_layer applies them (an ArgError's message as the function words it)."""
    form = OPS[case.name].rule
    entry = form.entry()  # CATALOG[form.layer], its inputs named as F names them (poisson_nll_loss's input)
    assert entry.rule is CATALOG[form.layer].rule and entry.wants is CATALOG[form.layer].wants
    shapes = tuple(tuple(Val(d) for d in case.values[k].shape) for k in form.tensors)
    try:
        bound = bind(entry, [], {k: Val(v) for k, v in case.values.items() if k not in form.tensors}, ())
        entry.check_dtypes(bound, [case.values[k].dtype for k in form.tensors], shapes)
        out = entry.rule(bound, *shapes)
    except ArgError as exc:
        return ("error", exc.message.replace("argument ", "", 1))
    except ShapeProblem as exc:
        return ("error", str(exc))
    return ("ok", ("tensor", tuple(d.value for d in out), "float"))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_functions_are_their_layers(name):
    """One rule per loss: wherever the function's arguments are the layer's (its tensors given as tensors, the
    weights the layer does not take left out), the function answers as the layer does, refusals word for word."""
    form, same = OPS[name].rule, 0
    for case in make_cases(name, CONFIGS_PER_OP):
        v = case.values
        if (case.extra_args or case.extra_kwargs or any(not isinstance(v.get(k), T) for k in form.tensors)
                or any(k not in form.tensors and CATALOG[form.layer].arg(k) is None for k in v)):
            continue
        args, kwargs = layout(case, OPS[name].params, False)
        assert run_ours(name, "function", "F", args, kwargs) == _as_layer(case), case
        same += 1
    assert same >= CONFIGS_PER_OP // 2, f"{name}: only {same} configurations compared"


def loss_dtype_cases(name: str, n: int = 4) -> list[Case]:
    """The first ``n`` configurations both sides run on CPU (with the generator's dtypes)."""
    picked = []
    for case in make_cases(name, CONFIGS_PER_OP):
        if case.extra_args or case.extra_kwargs:
            continue
        args, kwargs = layout(case, OPS[name].params, False)
        if run_ours(name, "function", "F", args, kwargs)[0] == "ok" and \
                run_torch(name, "function", "F", args, kwargs, device="cpu")[0] == "ok":
            picked.append(case)
        if len(picked) == n:
            break
    return picked


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_dtypes_match_torch(name):
    """Every combination of float, long and bool tensors, on CPU, as tests/test_catalog_loss.py holds the layers:
    where the predictions are float, the function accepts what torch runs and gives its dtype; a prediction of
    another dtype it refuses (deliberate_refusal), where torch may run it (F.mse_loss of a long input)."""
    wrong, counts = [], Counter()
    for case in loss_dtype_cases(name):
        tensors = [k for k, v in case.values.items() if isinstance(v, T)]
        for dtypes in itertools.product(DT_NAMES, repeat=len(tensors)):
            c = Case(name, {**case.values, **{k: T(case.values[k].shape, d, case.values[k].fill)
                                              for k, d in zip(tensors, dtypes)}}, case.layout_seed)
            args, kwargs = layout(c, OPS[name].params, False)
            ours = run_ours(name, "function", "F", args, kwargs)
            theirs = run_torch(name, "function", "F", args, kwargs, device="cpu")
            counts["runs"] += 1
            if deliberate_refusal(c):
                counts["deliberate"] += 1
                if ours[0] == "ok":
                    wrong.append(f"{name} {c.values}: accepted, but {deliberate_refusal(c)}")
            elif ours[0] != theirs[0] or (ours[0] == "ok" and ours[1] != theirs[1]):
                wrong.append(f"{name} {c.values}:\n    torch: {theirs}\n    ours: {ours}")
            else:
                counts[ours[0]] += 1
    assert counts["ok"] >= 4 and counts["error"] + counts["deliberate"] >= 4, f"{name}: {dict(counts)}"
    assert not wrong, f"{len(wrong)} disagreements:\n" + "\n".join(wrong[:8])


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
    # creation, with sizes read from shapes
    ("x: [B, T=6, 4]", "b, t, c = x.size()\n  return torch.arange(t), torch.arange(0, t, 2), torch.zeros(b, t), "
                       "torch.ones(x.shape), torch.full((b, 2), 1.5), torch.randn(b, c), torch.rand(t), "
                       "torch.randint(0, 5, (b, t)), torch.empty(2, c)"),
    ("x: [B, 3, 4]", "return torch.zeros_like(x), torch.ones_like(x, dtype=torch.long), torch.randn_like(x), "
                     "torch.rand_like(x), torch.full_like(x, 2), torch.randint_like(x, 3), torch.empty_like(x)"),
    # broadcasting, masks, comparisons
    ("x: [B, 1, 4]", "return x.expand(-1, 3, 4), x.expand_as(torch.zeros(x.size(0), 2, 4)), x.repeat(1, 2, 1), "
                     "torch.tile(x, (2,)), torch.broadcast_to(x, (x.size(0), 5, 4)), x.tile(2, 1, 1)"),
    ("x: [B, 5, 5]", "mask = torch.ones(5, 5).tril() == 0\n  return x.masked_fill(mask, float('-inf')), "
                       "torch.where(x > 0, x, 0.0), (x > 0) & (x < 1), ~(x == 0), (x != 0) | (x >= 2), "
                       "x.clamp(min=0), torch.triu(x, 1), x.eq(0), torch.logical_not(x)"),
    # contraction and functional forms
    ("x: [B, 2, 6, 8], y: [B, 2, 7, 8]", "return torch.einsum('bhid,bhjd->bhij', x, y), "
                                         "F.scaled_dot_product_attention(x, y, y), "
                                         "F.scaled_dot_product_attention(x, x, x, is_causal=True)"),
    ("x: [B, 3, 8, 8]", "return F.interpolate(x, scale_factor=2), F.interpolate(x, size=(5, 6), mode='bilinear'), "
                        "F.pad(x, (1, 2)), F.pad(x, (1, 1, 1, 1), mode='reflect'), F.avg_pool2d(x, 2), "
                        "F.max_pool2d(x, 3, stride=2), F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, (2, 3)), "
                        "F.layer_norm(x, (8,)), F.group_norm(x, 3)"),
    ("x: [B, T=9, 4], tok: Long[B, T]", "w = torch.ones(5, 4)\n  return F.linear(x, w), F.embedding(tok, w), "
                                        "x.unbind(2)[0], x.norm(dim=-1), x.flip(1), x.roll(1, 1), "
                                        "x.gather(2, tok[:, :, None]), x.index_select(2, tok[0]), "
                                        "x.topk(2)[1], x.argmax(-1), x.long().float(), x.to(torch.bool), "
                                        "x.type_as(tok)"),
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
        "repeat": lambda: x.repeat(1, 2, 1, 1), "tile": lambda: x.tile((1, 1, 2)),
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


def _torch_tensors(res):
    if isinstance(res, torch.Tensor):
        return [res]
    if isinstance(res, (tuple, list)):
        return [t for r in res for t in _torch_tensors(r)]
    return []


@pytest.mark.parametrize("name", NAMES)
def test_results_of_inputs_in_order_are_in_order(name):
    """forward lets `view` follow an op's result unless ops.result_contiguous says it is out of order: from
    inputs in order, torch's results must then be contiguous (expand, unbind and attention are not: STRIDED)."""
    from modelspec.ops import result_contiguous

    wrong = []
    for case in make_cases(name, CONFIGS_PER_OP):
        for kind, ns in spellings(name):
            if kind == "method" and not isinstance(case.values.get(next(iter(case.values))), T):
                continue
            args, kwargs = layout(case, op_params(OPS[name], method=kind == "method", ns=ns), kind == "method")
            if run_ours(name, kind, ns, args, kwargs)[0] != "ok":
                continue
            targs = [torch_value(a, None, "cpu") for a in args]
            tkwargs = {k: torch_value(v, None, "cpu") for k, v in kwargs.items()}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = (getattr(targs[0], name)(*targs[1:], **tkwargs) if kind == "method"
                           else getattr(MODULES[ns], name)(*targs, **tkwargs))
            except Exception:  # noqa: BLE001 -- a refusal is test_op_against_torch's business
                continue
            if result_contiguous(OPS[name], []) and not all(t.is_contiguous() for t in _torch_tensors(res)):
                wrong.append(f"{kind} {ns}.{name} args={args} kwargs={kwargs}")
    assert not wrong, f"{name} gives tensors out of order from inputs in order:\n" + "\n".join(wrong[:5])


# torch's overloads, each spelled as people write them: the generators lay arguments out from the first
# parameter on, so these positional forms, which skip a leading one, are held here
OVERLOADS = [
    ("arange", [S(5)], {}), ("arange", [2, S(7)], {}), ("arange", [0, S(7), 2], {}), ("arange", [5], {"step": 2}),
    ("arange", [], {"end": S(4)}), ("arange", [], {"start": 3}), ("arange", [1, 4.5], {}),
    ("arange", [S(4)], {"end": 6}),
    ("arange", [0, 1, 0.25], {}), ("arange", [5, 0, -1], {}), ("arange", [0.5, 3.7], {"dtype": Dt("long")}),
    ("randint", [S(5), (S(2), S(3))], {}), ("randint", [1, S(5), (S(2),)], {}), ("randint", [S(5)], {"size": (S(2),)}),
    ("randint", [1, 5], {}), ("randint", [2, S(6)], {"size": (S(3),)}), ("randint", [3], {"high": 6, "size": (S(2),)}),
    ("randint", [5, 2, (S(2),)], {}), ("randint", [2, (S(2),)], {"dtype": Dt("bool")}),
    ("randint_like", [T([2, 3]), 5], {}), ("randint_like", [T([2, 3]), 1, 5], {}),
    ("randint_like", [T([2, 3]), 2], {"high": 4}), ("randint_like", [T([2, 3], "long")], {"low": 1, "high": 3}),
    ("where", [T([2, 3], "bool")], {}), ("where", [T([2, 3], "bool"), 0.0, T([3])], {}),
    ("where", [T([2, 3], "bool"), T([2, 3])], {"other": 1}),
    ("einsum", ["bij,bjk->bik", [T([2, 3, 4]), T([2, 4, 5])]], {}), ("einsum", ["ii", (T([3, 3]),)], {}),
    ("full", [(S(2), S(3)), 1.5], {}), ("full", [[S(2)], True], {}), ("zeros", [[S(2), S(3)]], {}),
    ("zeros", [()], {}), ("ones", [], {"size": (S(2),)}), ("empty", [S(2), (S(3),)], {}),
]


@pytest.mark.parametrize("name, args, kwargs", OVERLOADS, ids=[f"{n}{a}{k}" for n, a, k in OVERLOADS])
def test_overloads_against_torch(name, args, kwargs):
    ours, theirs = run_ours(name, "function", "torch", args, kwargs), run_torch(name, "function", "torch", args, kwargs)
    if ours[0] != theirs[0]:
        theirs = run_torch(name, "function", "torch", args, kwargs, device="cpu")
    assert ours[0] == theirs[0] and (ours[0] == "error" or ours[1] == theirs[1]), f"ours {ours}, torch {theirs}"
    sym, v = symbolize(Case(name, {"args": tuple(args), **kwargs}), random.Random(0))
    if sym is None or ours[0] != "ok":
        return
    sargs, skwargs = list(sym.values.pop("args")), sym.values
    res = run_ours(name, "function", "torch", sargs, skwargs, b=v)
    assert res == run_torch(name, "function", "torch", sargs, skwargs, b=v), f"with {v} as B"


# ---------------------------------------------------------------- tensors forward makes: device, dtype, randomness
CREATING = """model M(x: [B, T=6, 8], tok: Long[B, T]) {
    fc = Linear(_, 8)
    forward(x, tok) {
        b, t, c = x.size()
        pos = torch.arange(t)
        causal = torch.ones(t, t).tril() == 0
        att = (x @ x.transpose(1, 2)).masked_fill(causal, float("-inf"))
        y = F.softmax(att, dim=-1) @ x + torch.zeros(b, t, c)
        noise = torch.randn_like(y) * 0.1
        ids = torch.randint(0, 5, (b, t)) + tok
        w = torch.randn(c, 3)
        u = torch.full((t,), 2.5)
        r = torch.rand(x.size(1))
        return fc(y + noise) @ w, pos, ids, u + r
    }
}
"""


def test_created_tensors_are_printed_on_the_inputs_device():
    """The device rule (forward.placement): the tensor a size was read from, else forward's first input; a float
    one takes that tensor's dtype too, so the module runs in any precision."""
    code = modelspec.generate_code(CREATING)
    for line in ("pos = torch.arange(t, device=x.device)",
                 "causal = torch.ones(t, t, device=x.device, dtype=x.dtype).tril() == 0",
                 "torch.zeros(b, t, c, device=x.device, dtype=x.dtype)",
                 "noise = torch.randn_like(y) * 0.1",  # _like: the input's device already
                 "ids = torch.randint(0, 5, (b, t), device=x.device) + tok",
                 "w = torch.randn(c, 3, device=x.device, dtype=x.dtype)",
                 "u = torch.full((t,), 2.5, device=x.device, dtype=x.dtype)",
                 "r = torch.rand(x.size(1), device=x.device, dtype=x.dtype)"):
        assert line in code, code
    two = """model M(tok: Long[B, T=4], y: [B, 3]) {
    forward(tok, y) {
        a = torch.arange(y.size(1))
        z = torch.zeros(tok.size(0), 2)
        n = torch.arange(tok.shape[1])
        o = torch.ones(2, device=tok.device)
        return a, z, n, o, torch.zeros(2, dtype=torch.long)
    }
}
"""
    code = modelspec.generate_code(two)
    assert "torch.arange(y.size(1), device=y.device)" in code  # where the size was read
    assert "torch.zeros(tok.size(0), 2, device=y.device, dtype=y.dtype)" in code  # float: the first float tensor
    assert "torch.arange(tok.shape[1], device=tok.device)" in code
    assert "torch.ones(2, device=tok.device, dtype=y.dtype)" in code  # the spec's device= kept
    assert "torch.zeros(2, dtype=torch.long, device=tok.device)" in code  # and its dtype=


def _outputs_on(device: str, dtype=None):
    model = modelspec.compile_spec(CREATING, device=device, dtype=dtype, seed=0)
    inputs = modelspec.example_inputs(CREATING, batch=2, device=device, dtype=dtype)
    with torch.no_grad():
        return model.eval()(*inputs)


def _shapes_and_dtypes(outs):
    return [(tuple(o.shape), DTYPES.get(o.dtype, str(o.dtype))) for o in outs]


def test_created_tensors_run_on_meta():
    graph = modelspec.elaborate_spec(CREATING)
    sizes = symbol_sizes(graph, 2)
    want = [(tuple(_eval_dim(d.value, sizes) for d in o.shape), o.dtype) for o in graph.outputs]
    outs = _outputs_on("meta")
    assert all(o.device.type == "meta" for o in outs)
    assert _shapes_and_dtypes(outs) == want


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_created_tensors_run_on_cuda():
    outs = _outputs_on("cuda")
    assert all(o.device.type == "cuda" for o in outs)
    assert _shapes_and_dtypes(outs) == _shapes_and_dtypes(_outputs_on("meta"))


def test_created_floats_follow_the_module_precision():
    """zeros and randn take x.dtype: in float64 the matmul with torch.randn(c, 3) does not meet a float32."""
    outs = _outputs_on("cpu", torch.float64)
    assert [o.dtype for o in outs] == [torch.float64, torch.int64, torch.int64, torch.float64]


def test_randomness_in_forward_draws_from_torch_generator():
    """A seeded forward is reproducible, and the printed code, run standalone, draws the same numbers."""
    model = modelspec.compile_spec(CREATING, seed=0).eval()
    inputs = modelspec.example_inputs(CREATING, batch=2)
    ns = {"__name__": "standalone_spec"}
    exec(compile(modelspec.generate_code(CREATING), "<printed code>", "exec"), ns)  # noqa: S102 -- the code under test
    torch.manual_seed(0)
    twin = ns["M"]().eval()
    runs = []
    for net in (model, model, twin):
        torch.manual_seed(123)
        with torch.no_grad():
            runs.append(net(*inputs))
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other))
    torch.manual_seed(124)
    with torch.no_grad():
        assert not torch.equal(model(*inputs)[0], runs[0][0])  # another seed, other numbers


def test_specs_with_the_new_ops_keep_the_promise():
    """validgen's oracle (builds, runs in both modes, summary shapes seen by hooks, printed code standalone gives
    the same state_dict and outputs) on deterministic specs that use the new ops."""
    import validgen

    for body in ["b, t, c = x.size()\n        m = torch.ones(t, c).tril() == 0\n"
                 "        return fc(x.masked_fill(m, 0.0)), torch.arange(t) + 1",
                 "return fc(torch.where(x > 0, x, torch.zeros_like(x))), torch.einsum('btc,bsc->bts', x, x)",
                 "return fc(F.scaled_dot_product_attention(x, x, x, is_causal=True)), F.pad(x, (1, 1)).flip(-1)",
                 "return fc(F.layer_norm(x, (8,))).expand(2, -1, -1, -1), x.unbind(2)[0], x.topk(2)[0]"]:
        text = f"model M(x: [B, T=6, 8]) {{\n    fc = Linear(_, 8)\n    forward(x) {{\n        {body}\n    }}\n}}\n"
        assert validgen.check_case(text) == "accepted", text


def test_mult_adds_of_contractions_are_torch_counts():
    """einsum, F.linear and attention count in the summary as torch's FlopCounterMode counts them (FLOPs / 2),
    attention on its unfused path (the fused kernels are opaque to the counter)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    text = """model M(x: [B, 2, T=6, 8], y: [B, 2, 7, 8]) {
    forward(x, y) {
        w = torch.ones(5, 8)
        a = torch.einsum("bhid,bhjd->bhij", x, y)
        s = F.scaled_dot_product_attention(x, y, y, is_causal=True)
        return a, s, F.linear(x, w), torch.einsum("bhid,bhid->bh", x, x), torch.einsum("ij", w)
    }
}
"""
    model = modelspec.compile_spec(text)
    for batch in (1, 3):
        inputs = modelspec.example_inputs(text, batch=batch)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*inputs)
        assert modelspec.summarize(text, batch=batch).total_mult_adds == counter.get_total_flops() // 2


def test_unknown_names_get_near_names_only():
    """A slip of the keys finds its op; a word torch has that modelspec does not finds no false friend (the
    suggestion must be a slip of it, not a word sharing letters: expand is not exp, repeat not reshape)."""
    from modelspec.errors import _edits, did_you_mean

    def proposed(hint: str) -> list[str]:  # "did you mean selu or silu?": every name it proposes
        return re.split(r", | or ", hint.removeprefix("did you mean ").rstrip("?"))

    names = sorted(OPS)
    for name in names:
        if len(name) >= 4:
            slip = name[:1] + name[2:]  # one letter dropped
            hint = did_you_mean(slip, names)
            assert hint is not None and name in proposed(hint), name
            assert all(_edits(slip, p) <= 2 for p in proposed(hint)), hint
    for word in ("cumsum", "repeat_interleave", "expm1", "logsumexp", "baddbmm", "narrow", "movedim", "scatter",
                 "nonzero", "masked_select", "half", "double", "int", "cdist", "diag", "kron"):
        hint = did_you_mean(word, names)
        assert hint is None or all(_edits(word, p) <= max(2, len(word) // 3) for p in proposed(hint))
    text = "model M(x: [B, 4]) {\n forward(x) {\n  return torch.cumsum(x, 1)\n }\n}"
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.elaborate_spec(text)
    assert info.value.hint.startswith("the nearest torch functions: torch.") and "did you mean" not in info.value.hint


def test_fmt_keeps_the_tensor_operators():
    """`&`, `|`, `^`, `~` and comparisons of tensors print with the parentheses Python's precedence needs, and
    formatting keeps what a spec means (the IR parses back the same) and is stable."""
    from modelspec import format_spec

    messy = ("model M(x: [B, 4], m: Bool[B, 4]) {\n forward(x, m) {\n  a = (x>0)&(x<1)|~m^m\n  b = ~ (x == 0)\n"
             "  c = (m | m) & m\n  d = x.masked_fill(~(x > 0) & m, 0.0)\n  return a, b, c, d\n }\n}\n")
    tidy = format_spec(messy)
    assert "a = (x > 0) & (x < 1) | ~m ^ m" in tidy and "b = ~(x == 0)" in tidy and "c = (m | m) & m" in tidy
    assert format_spec(tidy) == tidy
    assert modelspec.generate_code(tidy) == modelspec.generate_code(messy)  # the same model, the same code
