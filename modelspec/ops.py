"""Tensor operations usable in ``forward``: a table, like the layer catalog.

Each `Op` names its torch spelling (``F.relu``, ``torch.cat``, the method
``x.view``), its parameters as torch names them, and a shape rule over
`TensorInfo` inputs (dims are `Val`s, possibly symbolic). A rule raises
`ShapeProblem` in the spec's terms; the elaborator adds the place.

Parameters are ``(name, default)`` pairs in torch's order: ``NO_DEFAULT``
marks a required one, ``None`` an optional one torch defaults to None (or
treats as "not given"); ``"*name"`` collects the remaining positional
arguments (``x.view(2, -1)``) and a bare ``"*"`` makes the rest keyword-only,
as in Python. Rules take the bound values positionally, in the order of the
parameters; a ``"*name"`` parameter arrives as a list. Where the method
spells its parameters otherwise (``x.view(*size)`` against
``torch.reshape(input, shape)``, ``x.split(split_size)`` against
``torch.split(tensor, split_size_or_sections)``), ``method_params`` gives the
method's, in the same order; ``also`` names the other namespace torch spells
a function in (``torch.relu`` beside ``F.relu``), with its parameters where
they differ (``torch.relu`` takes no ``inplace``). ``tests/test_ops.py`` holds
every rule and every spelling against torch on the ``meta`` device.

Dtypes are checked like shapes: ``dtypes`` are those each tensor argument may
have (a callable of the bound values where they decide), and a rule gives
its result torch's promotion of its inputs (`promote`: bool < long < float,
a Python int counting as long and a float as float); ``result``, where
given, maps that to the dtype the op makes (``torch.sigmoid`` of a long
tensor is float, ``sum`` of a bool one long). `OPERATORS` and `UNARY` are
Python's arithmetic on tensors, as the same kind of entries.
``tests/test_dtypes.py`` holds them against torch on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import expr as E
from .layers.base import ANY_DTYPE, DTYPES, FLOAT_ONLY, NUMERIC, ShapeProblem, check_elements, dtype_problem, prod
from .model import TensorInfo
from .shapes import Sym, Val, is_dim

NO_DEFAULT = object()


@dataclass(frozen=True)
class Op:
    name: str
    params: tuple[tuple[str, Any], ...]  # (name, default); "*name" collects the rest, "*" starts keyword-only
    rule: Callable[..., Any]
    function: str | None  # "F" / "torch" namespace for the call form, None if method only
    method: bool = True
    doc: str = ""
    training_arg: bool = False  # F.dropout: pass training=self.training
    macs: Callable | None = None
    method_params: tuple[tuple[str, Any], ...] | None = None  # the method's parameters, where they differ
    also: tuple[tuple[str, Any], ...] = ()  # (namespace, its parameters or None for the same): torch.relu(input)
    dtypes: tuple[str, ...] | Callable[..., tuple[str, ...]] = FLOAT_ONLY  # of each tensor argument
    result: Callable[[str], str] | None = None  # the result's dtype from the promoted inputs'; None: as the rule says


def _t(x, what="input") -> TensorInfo:
    if not isinstance(x, TensorInfo):
        raise ShapeProblem(f"expects a tensor as {what}, got {_describe(x)}")
    return x


def _describe(x) -> str:
    if isinstance(x, TensorInfo):
        return f"a tensor {x}"
    if isinstance(x, Val) and isinstance(x.value, (list, tuple)) and any(isinstance(i, TensorInfo) for i in x.value):
        x = list(x.value)  # [x, y]: tensors, said as tensors
    if isinstance(x, Val):
        return repr(x.plain())
    if isinstance(x, list):
        return "[" + ", ".join(_describe(i) for i in x) + "]"
    return type(x).__name__


def _plain(v):
    return v.value if isinstance(v, Val) else v


def _shown(items) -> str:
    """A tuple of argument values as Python prints it: (2, -1), (5,)."""
    return str(tuple(v.plain() if isinstance(v, Val) else v for v in items))


def _elements(n) -> str:
    return f"{n} element" if n == 1 else f"{n} elements"


def _int(x, what) -> int:
    v = _plain(x)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ShapeProblem(f"expects {what} to be an integer, got {_describe(x)}")
    return v


def _bool(x, what) -> bool:
    v = _plain(x)
    if not isinstance(v, bool):
        raise ShapeProblem(f"expects {what} to be True or False, got {_describe(x)}")
    return v


def norm_dim(d, rank: int, what: str = "dim", x: TensorInfo | None = None, scalar_ok: bool = True) -> int:
    """``d`` as an index in ``range(rank)``; a 0-d tensor takes dim 0 or -1 where ``scalar_ok``."""
    d = _int(d, what)
    if rank == 0 and not scalar_ok:
        raise ShapeProblem(f"cannot take {what}={d} of a 0-d tensor")
    r = max(rank, 1)
    if not -r <= d < r:
        of = f"{x} ({rank}-d)" if x is not None else f"a {rank}-d tensor"
        raise ShapeProblem(f"{what}={d} is out of range for {of}: it must be in {-r}..{r - 1}")
    return d % r


def _seq(v) -> list:
    """The items of a ``*shape`` list or a ``shape`` tuple: view(2, -1) / view((2, -1)) / permute([0, 2, 1])."""
    if isinstance(v, list):
        if len(v) == 1 and isinstance(_plain(v[0]), (tuple, list)):
            return list(_plain(v[0]))
        return v
    inner = _plain(v)
    if isinstance(inner, (tuple, list)):
        return list(inner)
    return [v]


def _dim_list(dim, x: TensorInfo, what="dim") -> list[int]:
    """An int dim or a tuple of them, normalised; repeats refused like torch."""
    raw = _plain(dim)
    items = raw if isinstance(raw, (tuple, list)) else [dim]
    out = [norm_dim(d, len(x.shape), what, x) for d in items]
    for i, d in enumerate(out):
        if d in out[:i]:
            raise ShapeProblem(f"dim {d} appears twice in {what}={_shown(items)}")
    return out


def _with_dim(x: TensorInfo, d: int, size) -> TensorInfo:
    return TensorInfo(tuple(Val(size) if i == d else v for i, v in enumerate(x.shape)), x.dtype)


def _is_number(v) -> bool:
    v = _plain(v)
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---------------------------------------------------------------- rules
# How an op's result lies in memory (TensorInfo.contiguous): a view with other strides, the input's order
# kept (elementwise ops and views such as squeeze preserve strides, as torch's own do), or a fresh tensor.
STRIDED = {"transpose", "permute", "t", "chunk", "split"}
# (Measured on torch, tests/test_ops.py: F.normalize keeps the input's strides; cat, stack
# and the convolutions keep a channels-last order, which a flag cannot tell from others: they keep the flag.)
FRESH = {"contiguous", "matmul", "bmm", "mm", "sum", "mean", "amax", "amin", "argmax", "argmin", "max", "min",
         "prod", "std", "var", "norm", "softmax", "log_softmax", "linear", "embedding", "one_hot"}


# ops that rearrange a tensor's values without changing them
SAME_VALUES = {"view", "reshape", "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "contiguous",
               "chunk", "split"}


def result_contiguous(op, inputs) -> bool:
    """Whether the result of ``op`` on ``inputs`` (TensorInfos) is contiguous, as forward tracks it: a view
    with other strides is not; a new tensor of a reduction, a copy or a product is; anything else keeps the
    inputs' order, as torch's elementwise ops do, and as reshape and flatten do where they can return a view
    (erring on the side of a located error)."""
    if op.name in STRIDED:
        return False
    if op.name in FRESH:
        return True
    return all(t.contiguous for t in inputs)


def _hardtanh_rule(input, min_val, max_val, *_):
    lo, hi = _plain(min_val), _plain(max_val)
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:  # torch: equal bounds are fine
        raise ShapeProblem(f"needs min_val <= max_val, got min_val={lo} and max_val={hi}", hint="swap the bounds")
    return same(input)


def same(input, *_):
    x = _t(input)
    return TensorInfo(tuple(x.shape), x.dtype)


def gelu_rule(input, approximate):
    if _plain(approximate) not in ("none", "tanh"):
        raise ShapeProblem(f"approximate must be 'none' or 'tanh', got {_describe(approximate)}")
    return same(input)


def softmax_rule(input, dim):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        raise ShapeProblem("needs dim= (which axis sums to 1), e.g. dim=1 for [B, classes]")
    norm_dim(dim, len(x.shape), "dim", x)
    return TensorInfo(tuple(x.shape), x.dtype)


def normalize_rule(input, p, dim, eps):
    x = _t(input)
    if not _is_number(p) or not _is_number(eps):
        raise ShapeProblem(f"expects numbers for p and eps, got {_describe(p)} and {_describe(eps)}")
    norm_dim(dim, len(x.shape), "dim", x)
    return same(x)


def clamp_rule(input, min, max):
    x = _t(input)
    if min is None and max is None:
        raise ShapeProblem("needs min= or max=")
    for v, what in ((min, "min"), (max, "max")):
        if v is not None and not _is_number(v):
            raise ShapeProblem(f"expects {what} to be a number, got {_describe(v)}")
    # the bounds promote like the other side of a binary op: clamp(bool_x, min=0) is long
    return TensorInfo(tuple(x.shape), promote(x.dtype, *(number_dtype(v) for v in (min, max) if v is not None)))


def flatten_rule(input, start_dim, end_dim):
    x = _t(input)
    n = len(x.shape)
    s = norm_dim(start_dim, n, "start_dim", x)
    e = norm_dim(end_dim, n, "end_dim", x)
    if n == 0:
        return TensorInfo((Val(1),), x.dtype)
    if s > e:
        raise ShapeProblem(f"start_dim={_plain(start_dim)} comes after end_dim={_plain(end_dim)} in {x}")
    merged = tuple(x.shape[s : e + 1])
    mid = (merged[0],) if len(merged) == 1 else (Val(prod(d.value for d in merged)),)
    return TensorInfo((*x.shape[:s], *mid, *x.shape[e + 1 :]), x.dtype)


def _exact_div(total, known):
    """total / known when it divides for every value of the symbols, else None."""
    try:
        q = total // known
    except (TypeError, ZeroDivisionError):
        return None
    return q if q * known == total else None


def view_rule(input, shape, verb="view"):
    x = _t(input)
    if verb == "view" and not x.contiguous:
        raise ShapeProblem(f"cannot view {x}: it was transposed, permuted or sliced, so its memory is not in order",
                           hint="use x.reshape(...), or x.contiguous().view(...)")
    src = _seq(shape)
    sizes = [_plain(s) for s in src]
    shown = _shown(src)
    for s in sizes:
        if not is_dim(s) or (isinstance(s, int) and s < -1):
            raise ShapeProblem(f"sizes must be integers (-1 for one to infer), got {shown}")
    if sum(1 for s in sizes if s == -1) > 1:
        raise ShapeProblem(f"can infer at most one -1 dimension, got {shown}")
    total = prod(d.value for d in x.shape)
    known = prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0:
            raise ShapeProblem(
                f"cannot {verb} {x} ({_elements(total)}) as {shown}: with a 0 size, the -1 could be anything"
            )
        rest = _exact_div(total, known)
        if rest is None:
            syms = sorted(map(str, _symbols(total)))
            always = " for every " + ", ".join(syms) if syms and isinstance(known, int) else ""
            raise ShapeProblem(
                f"cannot {verb} {x} ({_elements(total)}) as {shown}: {total} is not a multiple of {known}{always}"
            )
        out = [rest if s == -1 else s for s in sizes]
    else:
        if known != total:
            raise ShapeProblem(f"cannot {verb} {x} ({_elements(total)}) as {shown} ({_elements(known)})")
        out = list(sizes)
    dims = tuple(src[i] if isinstance(src[i], Val) and sizes[i] != -1 else Val(out[i]) for i in range(len(out)))
    return TensorInfo(dims, x.dtype)


def reshape_rule(input, shape):
    return view_rule(input, shape, "reshape")


def _symbols(*vals) -> set:
    out = set()
    for v in vals:
        if isinstance(v, Sym):
            out |= v.symbols
    return out


def size_rule(input, dim):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        return Val(tuple(x.shape))
    return x.shape[norm_dim(dim, len(x.shape), "dim", x, scalar_ok=False)]


def dim_rule(input):
    return Val(len(_t(input).shape))


def numel_rule(input):
    return Val(prod(d.value for d in _t(input).shape))


def permute_rule(input, dims):
    x = _t(input)
    given = _seq(dims)
    shown = _shown(given)
    if len(given) != len(x.shape):
        raise ShapeProblem(f"dims {shown} are not a permutation of the {len(x.shape)} dims of {x}")
    order = [norm_dim(d, len(x.shape), "dim", x) for d in given]
    if sorted(order) != list(range(len(x.shape))):
        raise ShapeProblem(f"dims {shown} are not a permutation of the {len(x.shape)} dims of {x}")
    return TensorInfo(tuple(x.shape[i] for i in order), x.dtype)


def transpose_rule(input, dim0, dim1):
    x = _t(input)
    a, b = norm_dim(dim0, len(x.shape), "dim0", x), norm_dim(dim1, len(x.shape), "dim1", x)
    s = list(x.shape)
    if s:
        s[a], s[b] = s[b], s[a]
    return TensorInfo(tuple(s), x.dtype)


def t_rule(input):
    x = _t(input)
    if len(x.shape) > 2:
        raise ShapeProblem(f"expects a tensor of at most 2 dims, got {x}; use .transpose(dim0, dim1)")
    return TensorInfo(tuple(reversed(x.shape)), x.dtype)


def squeeze_rule(input, dim):
    x = _t(input)
    if dim is None:  # not given; torch refuses dim=None
        symbolic = [str(d.value) for d in x.shape if isinstance(d.value, Sym)]
        if symbolic:
            raise ShapeProblem(f"squeeze() of {x} would also drop {symbolic[0]} wherever it is 1: "
                               f"the result's rank would depend on it")
        return TensorInfo(tuple(d for d in x.shape if d.value != 1), x.dtype)
    dims = _dim_list(dim, x)
    return TensorInfo(tuple(d for i, d in enumerate(x.shape) if not (i in dims and d.value == 1)), x.dtype)


def unsqueeze_rule(input, dim):
    x = _t(input)
    n = len(x.shape) + 1
    d = _int(dim, "dim")
    if not -n <= d < n:
        raise ShapeProblem(f"dim={d} is out of range for unsqueeze of {x}: a new dim goes at {-n}..{n - 1}")
    s = list(x.shape)
    s.insert(d % n, Val(1))
    return TensorInfo(tuple(s), x.dtype)


def _tensors(tensors, what="tensors"):
    items = _plain(tensors)
    if not isinstance(items, (tuple, list)) or not items:
        raise ShapeProblem(f"expects a non-empty list of tensors, got {_describe(tensors)}")
    return [_t(t, what) for t in items]


def _shapes(ts) -> str:
    return ", ".join(str(t) for t in ts)


def cat_rule(tensors, dim):
    ts = _tensors(tensors)
    # torch still skips 1-d empty tensors (legacy): cat([torch.empty(0), x]) is x
    ts = [t for t in ts if not (len(t.shape) == 1 and t.shape[0].value == 0)] or ts[:1]
    if any(len(t.shape) == 0 for t in ts):
        raise ShapeProblem(f"cannot concatenate 0-d tensors ({_shapes(ts)}); torch.stack makes a new dim")
    rank = len(ts[0].shape)
    for t in ts[1:]:
        if len(t.shape) != rank:
            raise ShapeProblem(f"cannot concatenate tensors of different ranks: {ts[0]} and {t}")
    d = norm_dim(dim, rank, "dim", ts[0])
    for t in ts[1:]:
        for i in range(rank):
            if i != d and t.shape[i].value != ts[0].shape[i].value:
                raise ShapeProblem(
                    f"along dim={_plain(dim)}, the other dims must match, but {ts[0]} and {t} differ in dim {i}"
                )
    total = ts[0].shape[d].value
    for t in ts[1:]:
        total = total + t.shape[d].value
    s = list(ts[0].shape)
    spellings = [t.shape[d].expr for t in ts]
    spelled = None
    if len(ts) > 1 and all(e is not None for e in spellings):  # c1 + c3 + c5 + pool_proj, as the class names them
        spelled = spellings[0]
        for e in spellings[1:]:
            spelled = E.BinOp("+", spelled, e)
    s[d] = Val(total, spelled) if len(ts) > 1 else s[d]
    return TensorInfo(tuple(s), promote(*(t.dtype for t in _tensors(tensors))))


def stack_rule(tensors, dim):
    ts = _tensors(tensors)
    for t in ts[1:]:
        if [v.value for v in t.shape] != [v.value for v in ts[0].shape]:
            raise ShapeProblem(f"can only stack tensors of one shape, got {ts[0]} and {t}")
    n = len(ts[0].shape) + 1
    d = _int(dim, "dim")
    if not -n <= d < n:
        raise ShapeProblem(f"dim={d} is out of range for stacking {ts[0]}: the new dim goes at {-n}..{n - 1}")
    s = list(ts[0].shape)
    s.insert(d % n, Val(len(ts)))
    return TensorInfo(tuple(s), promote(*(t.dtype for t in ts)))


def promote(*dtypes: str) -> str:
    """torch's result dtype for tensors (and numbers, as `number_dtype` names them) of ``dtypes``.

    >>> promote("bool", "long"), promote("long", "float"), promote("bool")
    ('long', 'float', 'bool')
    """
    return max(dtypes, key=DTYPES.index)


def number_dtype(v) -> str:
    """The dtype a Python number promotes like: an int as long, a float as float."""
    return "float" if isinstance(_plain(v), float) else "long"


def to_float(dtype: str) -> str:
    """torch.sigmoid, exp, sqrt... of an integer tensor: float."""
    return "float"


def to_long(dtype: str) -> str:
    """Indices: argmax, argmin."""
    return "long"


def sum_dtype(dtype: str) -> str:
    """torch.sum adds bools up as integers."""
    return "long" if dtype == "bool" else dtype


def broadcast(a: TensorInfo, b: TensorInfo, op: str) -> TensorInfo:
    """numpy/torch broadcasting, symbolic dims equal only to themselves or 1."""
    out = []
    n = max(len(a.shape), len(b.shape))
    pa = (Val(1),) * (n - len(a.shape)) + tuple(a.shape)
    pb = (Val(1),) * (n - len(b.shape)) + tuple(b.shape)
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x.value == y.value:
            out.append(x if x.expr is not None else y)
        elif x.value == 1:
            out.append(y)
        elif y.value == 1:
            out.append(x)
        else:
            raise ShapeProblem(f"cannot {op} {a} and {b}: dim {i - n} is {x.value} against {y.value}")
    return TensorInfo(tuple(out), promote(a.dtype, b.dtype))


def _binary(verb: str):
    """torch.add(input, other): a tensor and a tensor (broadcast) or a number; the result promoted."""

    def rule(input, other, *options):
        for o in options:
            if o is not None and not isinstance(_plain(o), (int, float, str)):
                raise ShapeProblem(f"expects a number or string option, got {_describe(o)}")
        if isinstance(input, TensorInfo) and isinstance(other, TensorInfo):
            out = broadcast(input, other, verb)
        else:
            t, s = (input, other) if isinstance(input, TensorInfo) else (other, input)
            if not isinstance(t, TensorInfo):
                raise ShapeProblem(f"expects a tensor, got {_describe(input)} and {_describe(other)}")
            if not _is_number(s):
                raise ShapeProblem(f"cannot {verb} a tensor {t} and {_describe(s)}")
            out = TensorInfo(tuple(t.shape), promote(t.dtype, number_dtype(s)))
        alpha = options[0] if options else None  # torch.add's and torch.sub's
        if isinstance(_plain(alpha), float) and out.dtype != "float":
            raise ShapeProblem(f"cannot {verb} {out.dtype} tensors with the float alpha={_plain(alpha)}",
                               hint="give alpha as an integer, or make the tensors float: x * 1.0")
        return out

    rule.elementwise = True  # its result keeps the inputs' memory order (see result_contiguous)
    return rule


def _rounded(verb: str):
    """Floor division and remainder (``//``, ``%``, div with a rounding_mode): promoted, but not of two bools."""
    binary = _binary(verb)

    def rule(input, other):
        out = binary(input, other)
        if out.dtype == "bool":
            raise ShapeProblem(f"cannot {verb} two bool tensors", hint="make one of them long or float: x * 1")
        return out

    return rule


def _division(input, other, rounding_mode=None):
    mode = _plain(rounding_mode)
    if mode not in (None, "trunc", "floor"):
        raise ShapeProblem(f"rounding_mode must be None, 'trunc' or 'floor', not {_describe(rounding_mode)}")
    if mode is not None:
        return _rounded("divide")(input, other)  # rounded: the promoted dtype
    out = _binary("divide")(input, other)
    return TensorInfo(out.shape, "float")  # true division is float, whatever divides what


def _power(input, exponent):
    out = _rounded("raise")(input, exponent)
    e = _plain(exponent)
    if out.dtype == "long" and _is_number(exponent) and isinstance(e, int) and e < 0:
        raise ShapeProblem(f"cannot raise integers to the negative power {e}",
                           hint="make the tensor float first: x * 1.0")
    return out


def _same_numeric(a: TensorInfo, b: TensorInfo, what: str):
    """matmul and bmm do not promote: one dtype on both sides, and not bool."""
    for t, side in ((a, "input"), (b, what)):
        if t.dtype not in NUMERIC:
            raise dtype_problem(NUMERIC, t.dtype, side)
    if a.dtype != b.dtype:
        raise ShapeProblem(f"cannot multiply a {a.dtype} tensor {a} by a {b.dtype} tensor {b}: torch does not "
                           f"promote here", hint="make both float: x * 1.0")


def matmul_rule(input, other):
    a, b = _t(input), _t(other, "other")
    _same_numeric(a, b, "other")
    if not a.shape or not b.shape:
        raise ShapeProblem(f"cannot multiply a 0-d tensor: {a} @ {b}")
    sa, sb = list(a.shape), list(b.shape)
    k1 = sa[-1]
    k2 = sb[-2] if len(sb) >= 2 else sb[0]
    if k1.value != k2.value:
        raise ShapeProblem(f"cannot multiply {a} @ {b}: inner dims {k1.value} and {k2.value} differ")
    if len(sa) == 1 and len(sb) == 1:
        return TensorInfo((), promote(a.dtype, b.dtype))
    if len(sb) == 1:
        return TensorInfo(tuple(sa[:-1]), promote(a.dtype, b.dtype))
    if len(sa) == 1:
        return TensorInfo((*sb[:-2], sb[-1]), promote(a.dtype, b.dtype))
    ba, bb = TensorInfo(tuple(sa[:-2])), TensorInfo(tuple(sb[:-2]))
    try:
        batch = broadcast(ba, bb, "broadcast").shape
    except ShapeProblem:
        raise ShapeProblem(f"cannot multiply {a} @ {b}: batch dims {ba} and {bb} do not broadcast") from None
    return TensorInfo((*batch, sa[-2], sb[-1]), promote(a.dtype, b.dtype))


def matmul_macs(out, input, other):
    k = input.shape[-1].value
    return prod(d.value for d in out.shape) * k


def bmm_rule(input, mat2):
    a, b = _t(input), _t(mat2, "mat2")
    _same_numeric(a, b, "mat2")
    if len(a.shape) != 3 or len(b.shape) != 3:
        raise ShapeProblem(f"expects two 3-d tensors [N, n, h] and [N, h, m], got {a} and {b}")
    if a.shape[0].value != b.shape[0].value:
        raise ShapeProblem(f"cannot multiply {a} and {b}: batch sizes {a.shape[0].value} and {b.shape[0].value} differ")
    if a.shape[2].value != b.shape[1].value:
        raise ShapeProblem(f"cannot multiply {a} and {b}: inner dims {a.shape[2].value} and {b.shape[1].value} differ")
    return TensorInfo((a.shape[0], a.shape[1], b.shape[2]), promote(a.dtype, b.dtype))


def _reduced(x: TensorInfo, dims, keep: bool, dtype=None) -> TensorInfo:
    out = tuple(Val(1) if i in dims else d for i, d in enumerate(x.shape) if keep or i not in dims)
    return TensorInfo(out, dtype or x.dtype)


def reduce_rule(input, dim, keepdim):
    """sum / mean / amax / amin: dim None or () reduces every dim."""
    x = _t(input)
    keep = _bool(keepdim, "keepdim")
    raw = _plain(dim)
    if raw is None or (isinstance(raw, (tuple, list)) and not raw):
        return _reduced(x, range(len(x.shape)), keep)
    return _reduced(x, _dim_list(dim, x), keep)


def _arg_reduce(indices_only: bool):
    """max / min (values and indices along a dim, or elementwise of two tensors) and argmax / argmin."""

    def rule(input, dim, keepdim, other=None):
        x = _t(input)
        if not indices_only and (isinstance(dim, TensorInfo) or other is not None):  # torch.max(a, b)
            if keepdim is not None:
                raise ShapeProblem("takes no keepdim when comparing two tensors")
            if dim is not None and other is not None:
                raise ShapeProblem("takes a dim or another tensor, not both")
            return broadcast(x, _t(other if other is not None else dim, "other"), "compare")
        keep = False if keepdim is None else _bool(keepdim, "keepdim")
        if dim is None or _plain(dim) is None:
            if indices_only:
                return _reduced(x, range(len(x.shape)), keep, "long")
            if keepdim is not None:
                raise ShapeProblem("takes keepdim= only with dim=")
            return _reduced(x, range(len(x.shape)), False)
        d = norm_dim(dim, len(x.shape), "dim", x)
        if indices_only:
            return _reduced(x, [d], keep, "long")
        return [_reduced(x, [d], keep), _reduced(x, [d], keep, "long")]  # (values, indices)

    return rule


MAX_PIECES = 10_000  # tensors one chunk or split may make: each is a value elaboration tracks


def _few_pieces(n: int):
    if n > MAX_PIECES:
        raise ShapeProblem(f"would make {n:,} tensors; at most {MAX_PIECES:,}")


def chunk_rule(input, chunks, dim):
    x = _t(input)
    n = _int(chunks, "chunks")
    if n < 1:
        raise ShapeProblem(f"chunks must be at least 1, got {n}")
    d = norm_dim(dim, len(x.shape), "dim", x, scalar_ok=False)
    size = x.shape[d].value
    _few_pieces(n if not isinstance(size, int) or size == 0 else -(-size // -(-size // n)))
    if not isinstance(size, int):
        if _exact_div(size, n) is not None:
            return [_with_dim(x, d, size // n) for _ in range(n)]
        raise ShapeProblem(f"cannot chunk the symbolic dim {size} of {x} into {n} equal parts")
    if size == 0:
        return [_with_dim(x, d, 0) for _ in range(n)]
    step = -(-size // n)
    return [_with_dim(x, d, min(step, size - i)) for i in range(0, size, step)]


def split_rule(input, split_size_or_sections, dim):
    x = _t(input)
    d = norm_dim(dim, len(x.shape), "dim", x, scalar_ok=False)
    size = x.shape[d].value
    sec = _plain(split_size_or_sections)
    if isinstance(sec, (tuple, list)):
        sizes = [_plain(s) for s in sec]
        if not all(is_dim(s) for s in sizes) or any(isinstance(s, int) and s < 0 for s in sizes):
            raise ShapeProblem(f"sections must be non-negative integers, got {_shown(sec)}")
        total = 0
        for s in sizes:
            total = total + s
        if total != size:
            raise ShapeProblem(f"sections {_shown(sec)} add up to {total}, but dim {d} of {x} is {size}")
    else:
        n = _int(split_size_or_sections, "split_size")
        if not isinstance(size, int):
            raise ShapeProblem(f"cannot split the symbolic dim {size} of {x} into pieces of {n}; give the sections")
        if n < 0 or (n == 0 and size != 0):
            raise ShapeProblem(f"split_size must be a positive integer, got {n}")
        _few_pieces(-(-size // n) if size else 1)
        sizes = [min(n, size - i) for i in range(0, size, n)] if size else [0]
    return [_with_dim(x, d, p) for p in sizes]


def dropout_rule(input, p, training, inplace):
    pv = _plain(p)
    if not _is_number(p) or not 0 <= pv <= 1:
        raise ShapeProblem(f"p must be a probability between 0 and 1, got {pv!r}")
    if training is not None:
        _bool(training, "training")
    _bool(inplace, "inplace")
    return same(input)


def slice_len(size, lower: int | None, upper: int | None, step: int | None):
    """The length of ``x[lower:upper:step]`` along a dim of ``size``.

    For a symbolic size, bounds are taken to fall inside the dim (``x[:, 1:]``
    on ``[B, T]`` is ``[B, T - 1]``, ``x[:, -3:]`` is ``[B, 3]``): the same
    assumption as a convolution's ``T - 4``.
    """
    step = 1 if step is None else step
    if step <= 0:
        raise ShapeProblem(f"slice step must be positive, got {step}")
    if isinstance(size, int):
        start, stop, step = slice(lower, upper, step).indices(size)
        return max(0, -(-(stop - start) // step))
    lo = 0 if lower is None else (lower if lower >= 0 else size + lower)
    hi = size if upper is None else (upper if upper >= 0 else size + upper)
    n = hi - lo
    if isinstance(n, int):
        return max(0, -(-n // step))
    if isinstance(n - size, int):  # size - c
        return n if step == 1 else (n + step - 1) // step
    shown = ":".join("" if v is None else str(v) for v in (lower, upper)) + (f":{step}" if step != 1 else "")
    raise ShapeProblem(f"cannot slice the symbolic dim {size} with [{shown}]: its length depends on {size}")


def _elementwise(name, function="F", doc="", method=False, rule=None, dtypes=FLOAT_ONLY, result=None, **extra):
    params = (("input", NO_DEFAULT),) + tuple(extra.items())
    if rule is not None:
        rule.elementwise = True
    return Op(name, params, rule or same, function, method=method, doc=doc, dtypes=dtypes, result=result)


def _dropout_dtypes(input, p, training=None, inplace=None):
    # at p=0 or p=1, or not training, torch's dropout is the input or zeros, of any dtype; between, it scales
    # by the float 1/(1-p). Not given, training is True (and self.training in the printed code).
    return ANY_DTYPE if _plain(p) in (0, 1) or _plain(training) is False else FLOAT_ONLY


_INPLACE = {"inplace": Val(False)}
_INPUT = (("input", NO_DEFAULT),)

OPS: dict[str, Op] = {
    op.name: op
    for op in [
        Op("relu", (("input", NO_DEFAULT), ("inplace", Val(False))), same, "F", doc="max(0, x)",
           method_params=_INPUT, also=(("torch", _INPUT),), dtypes=NUMERIC),
        _elementwise("relu6", doc="min(max(0, x), 6)", dtypes=NUMERIC, **_INPLACE),
        Op("gelu", (("input", NO_DEFAULT), ("*", None), ("approximate", Val("none"))), gelu_rule, "F", method=False,
           doc="x * Phi(x)"),
        _elementwise("silu", doc="x * sigmoid(x)", **_INPLACE),
        _elementwise("mish", doc="x * tanh(softplus(x))", **_INPLACE),
        _elementwise("elu", doc="ELU", alpha=Val(1.0), **_INPLACE),
        Op("selu", (("input", NO_DEFAULT), ("inplace", Val(False))), same, "F", method=False, doc="SELU",
           also=(("torch", _INPUT),)),
        _elementwise("leaky_relu", doc="leaky ReLU", negative_slope=Val(0.01), **_INPLACE),
        _elementwise("softplus", doc="softplus", beta=Val(1.0), threshold=Val(20.0)),
        _elementwise("hardswish", doc="hard swish", **_INPLACE),
        _elementwise("hardsigmoid", doc="hard sigmoid", **_INPLACE),
        _elementwise("hardtanh", doc="clamp to [min_val, max_val]", dtypes=NUMERIC, min_val=Val(-1.0),
                     max_val=Val(1.0), rule=_hardtanh_rule, **_INPLACE),
        _elementwise("logsigmoid", doc="log(sigmoid(x))"),
        Op("sigmoid", _INPUT, same, "torch", doc="1 / (1 + exp(-x))", also=(("F", None),), dtypes=ANY_DTYPE,
           result=to_float),
        Op("tanh", _INPUT, same, "torch", doc="tanh(x)", also=(("F", None),), dtypes=ANY_DTYPE, result=to_float),
        _elementwise("exp", "torch", doc="exp(x)", method=True, dtypes=ANY_DTYPE, result=to_float),
        _elementwise("log", "torch", doc="log(x)", method=True, dtypes=ANY_DTYPE, result=to_float),
        _elementwise("sqrt", "torch", doc="sqrt(x)", method=True, dtypes=ANY_DTYPE, result=to_float),
        _elementwise("rsqrt", "torch", doc="1 / sqrt(x)", method=True, dtypes=ANY_DTYPE, result=to_float),
        _elementwise("abs", "torch", doc="|x|", method=True, dtypes=NUMERIC),
        _elementwise("neg", "torch", doc="-x", method=True, dtypes=NUMERIC),
        Op("clamp", (("input", NO_DEFAULT), ("min", None), ("max", None)), clamp_rule, "torch",
           doc="clamp to [min, max] (numbers)", dtypes=ANY_DTYPE),
        Op("add", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("alpha", None)), _binary("add"),
           "torch", doc="input + alpha * other, broadcasting", dtypes=ANY_DTYPE),
        Op("sub", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("alpha", None)),
           _binary("subtract"), "torch", doc="input - alpha * other, broadcasting", dtypes=NUMERIC),
        Op("mul", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), _binary("multiply"), "torch",
           doc="input * other, broadcasting", dtypes=ANY_DTYPE),
        Op("div", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("rounding_mode", None)),
           _division, "torch", doc="input / other, broadcasting; rounding_mode None, 'trunc' or 'floor'",
           dtypes=ANY_DTYPE),
        Op("pow", (("input", NO_DEFAULT), ("exponent", NO_DEFAULT)), _power, "torch",
           doc="input ** exponent, broadcasting", dtypes=ANY_DTYPE),
        Op("softmax", (("input", NO_DEFAULT), ("dim", None)), softmax_rule, "F", doc="softmax along dim",
           also=(("torch", None),)),
        Op("log_softmax", (("input", NO_DEFAULT), ("dim", None)), softmax_rule, "F", doc="log-softmax along dim",
           also=(("torch", None),)),
        Op("normalize", (("input", NO_DEFAULT), ("p", Val(2.0)), ("dim", Val(1)), ("eps", Val(1e-12))),
           normalize_rule, "F", method=False, doc="x / ||x||_p along dim"),
        Op(
            "dropout",
            (("input", NO_DEFAULT), ("p", Val(0.5)), ("training", None), ("inplace", Val(False))),
            dropout_rule,
            "F",
            method=False,
            training_arg=True,
            doc="zeroes elements with probability p while training",
            dtypes=_dropout_dtypes,
        ),
        # moving elements about works on every dtype
        Op("flatten", (("input", NO_DEFAULT), ("start_dim", Val(0)), ("end_dim", Val(-1))), flatten_rule, "torch",
           dtypes=ANY_DTYPE),
        Op("view", (("input", NO_DEFAULT), ("*size", None)), view_rule, None, dtypes=ANY_DTYPE),
        Op("reshape", (("input", NO_DEFAULT), ("shape", NO_DEFAULT)), reshape_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*shape", None)), dtypes=ANY_DTYPE),
        Op("size", (("input", NO_DEFAULT), ("dim", None)), size_rule, None, dtypes=ANY_DTYPE),
        Op("dim", (("input", NO_DEFAULT),), dim_rule, None, dtypes=ANY_DTYPE),
        Op("numel", (("input", NO_DEFAULT),), numel_rule, "torch", dtypes=ANY_DTYPE),
        Op("permute", (("input", NO_DEFAULT), ("dims", NO_DEFAULT)), permute_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*dims", None)), dtypes=ANY_DTYPE),
        Op("transpose", (("input", NO_DEFAULT), ("dim0", NO_DEFAULT), ("dim1", NO_DEFAULT)), transpose_rule, "torch",
           dtypes=ANY_DTYPE),
        Op("t", (("input", NO_DEFAULT),), t_rule, "torch", doc="transpose of a matrix", dtypes=ANY_DTYPE),
        Op("squeeze", (("input", NO_DEFAULT), ("dim", None)), squeeze_rule, "torch", dtypes=ANY_DTYPE),
        Op("unsqueeze", (("input", NO_DEFAULT), ("dim", NO_DEFAULT)), unsqueeze_rule, "torch", dtypes=ANY_DTYPE),
        Op("contiguous", (("input", NO_DEFAULT),), same, None, dtypes=ANY_DTYPE),
        Op("cat", (("tensors", NO_DEFAULT), ("dim", Val(0))), cat_rule, "torch", method=False, dtypes=ANY_DTYPE),
        Op("stack", (("tensors", NO_DEFAULT), ("dim", Val(0))), stack_rule, "torch", method=False,
           dtypes=ANY_DTYPE),
        # no promotion: one dtype on both sides (the rules check)
        Op("matmul", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), matmul_rule, "torch", macs=matmul_macs,
           dtypes=NUMERIC),
        Op("bmm", (("input", NO_DEFAULT), ("mat2", NO_DEFAULT)), bmm_rule, "torch", macs=matmul_macs,
           dtypes=NUMERIC),
        Op("mean", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), reduce_rule, "torch"),
        Op("sum", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), reduce_rule, "torch",
           dtypes=ANY_DTYPE, result=sum_dtype),
        Op("amax", (("input", NO_DEFAULT), ("dim", Val(())), ("keepdim", Val(False))), reduce_rule, "torch",
           dtypes=ANY_DTYPE),
        Op("amin", (("input", NO_DEFAULT), ("dim", Val(())), ("keepdim", Val(False))), reduce_rule, "torch",
           dtypes=ANY_DTYPE),
        Op("max", (("input", NO_DEFAULT), ("dim", None), ("keepdim", None), ("other", None)), _arg_reduce(False),
           "torch", doc="the largest element; along dim: (values, indices); of two tensors: elementwise",
           dtypes=ANY_DTYPE),
        Op("min", (("input", NO_DEFAULT), ("dim", None), ("keepdim", None), ("other", None)), _arg_reduce(False),
           "torch", doc="the smallest element; along dim: (values, indices); of two tensors: elementwise",
           dtypes=ANY_DTYPE),
        Op("argmax", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), _arg_reduce(True),
           "torch", doc="the index of the largest element (along dim)", dtypes=NUMERIC, result=to_long),
        Op("argmin", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), _arg_reduce(True),
           "torch", doc="the index of the smallest element (along dim)", dtypes=NUMERIC, result=to_long),
        Op("chunk", (("input", NO_DEFAULT), ("chunks", NO_DEFAULT), ("dim", Val(0))), chunk_rule, "torch",
           dtypes=ANY_DTYPE),
        Op(
            "split",
            (("tensor", NO_DEFAULT), ("split_size_or_sections", NO_DEFAULT), ("dim", Val(0))),
            split_rule,
            "torch",
            method_params=(("input", NO_DEFAULT), ("split_size", NO_DEFAULT), ("dim", Val(0))),
            dtypes=ANY_DTYPE,
        ),
    ]
}

_OPERANDS = (("left", NO_DEFAULT), ("right", NO_DEFAULT))

# Python's arithmetic on tensors in forward (``x + y``, ``2 * x``, ``-x``), as entries of the same kind: most
# are a torch function; ``//`` and ``%`` promote and refuse as div with a rounding_mode does.
OPERATORS: dict[str, Op] = {
    "+": OPS["add"], "-": OPS["sub"], "*": OPS["mul"], "/": OPS["div"], "**": OPS["pow"],
    "//": Op("//", _OPERANDS, _rounded("floor-divide"), None, method=False, dtypes=ANY_DTYPE),
    "%": Op("%", _OPERANDS, _rounded("take the remainder of"), None, method=False, dtypes=ANY_DTYPE),
}
UNARY: dict[str, Op] = {
    "-": OPS["neg"],
    "+": Op("+", _INPUT, same, None, method=False, dtypes=NUMERIC),  # torch.positive: not of a bool tensor
}

# Where each namespace finds its functions: F.relu and torch.relu, but only torch.cat and F.gelu.
F_NAMES = {n for n, op in OPS.items() if op.function == "F" or "F" in dict(op.also)}
TORCH_NAMES = {n for n, op in OPS.items() if op.function == "torch" or "torch" in dict(op.also)}
F_SPELLINGS = ("F", "nn.functional", "torch.nn.functional")


def function_prefix(op: Op, ns: str | None) -> str | None:
    """How generated code calls ``op`` written as ``ns.name`` (``ns`` None: a bare ``relu(x)``):
    "F" or "torch", or None where torch has no such function."""
    if op.function is None:
        return None
    if ns is None:
        return op.function
    if ns in F_SPELLINGS:
        return "F" if op.name in F_NAMES else None
    if ns == "torch":
        return "torch" if op.name in TORCH_NAMES else None
    return None


TENSOR_PARAMS = {"input", "other", "tensor", "tensors", "mat2", "exponent"}  # may be given a tensor by keyword


def op_params(op: Op, method: bool = False, ns: str | None = None) -> tuple:
    """The parameters of one spelling: the method (x.view), or the function in namespace ns."""
    if method:
        return op.method_params if op.method_params is not None else op.params
    if ns in F_SPELLINGS:
        ns = "F"
    if ns is not None and ns != op.function:
        return dict(op.also).get(ns) or op.params
    return op.params


def op_signature(op: Op, spelled: str, method: bool = False) -> str:
    """How a call of ``op`` reads, for a hint: "the call is F.softmax(input, dim=None)".

    >>> op_signature(OPS["transpose"], "transpose", method=True)
    'the call is x.transpose(dim0, dim1)'
    """
    ns = spelled.rsplit(".", 1)[0] if "." in spelled and not method else None
    params = op_params(op, method, ns)[1 if method else 0:]
    parts = [n if d is NO_DEFAULT or n.startswith("*") else f"{n}={_plain(d)!r}" for n, d in params]
    return f"the call is {'x.' if method else ''}{spelled}({', '.join(parts)})"


def bind_op(op: Op, args: list, kwargs: dict, method: bool = False, ns: str | None = None) -> list:
    """Bind call arguments to an op's parameters like Python would: the values in parameter order."""
    params = op_params(op, method, ns)
    names = [n for n, _ in params]
    star = next((i for i, n in enumerate(names) if n.startswith("*")), None)
    positional = names if star is None else names[:star]
    collect = names[star][1:] if star is not None and names[star] != "*" else None
    shown = positional[1:] if method else positional
    given = len(args) - 1 if method else len(args)
    out: dict[str, Any] = {}
    rest: list = []
    for i, a in enumerate(args):
        if i < len(positional):
            out[positional[i]] = a
        elif collect is not None:
            rest.append(a)
        else:
            raise ShapeProblem(
                f"takes at most {len(shown)} positional argument{'s' if len(shown) != 1 else ''}"
                f"{' (' + ', '.join(shown) + ')' if shown else ''}, got {given}"
            )
    for k, v in kwargs.items():
        if k == collect:
            if rest:
                raise ShapeProblem(f"got {k!r} twice")
            if not (isinstance(v, Val) and isinstance(v.value, (tuple, list))):
                raise ShapeProblem(f"expects {k}= to be a tuple, got {_describe(v)}")
            rest = list(v.value)
            continue
        if k not in names or k.startswith("*") or (method and k == names[0]):
            takes = [n.lstrip("*") for n in names[1 if method else 0:] if n != "*"]
            raise ShapeProblem(f"has no argument {k!r} (it takes {', '.join(takes) or 'no arguments'})")
        if k in out:
            raise ShapeProblem(f"got {k!r} twice")
        if isinstance(v, TensorInfo) and k not in TENSOR_PARAMS:  # torch.max(x, y), but not torch.max(x, dim=y)
            raise ShapeProblem(f"expects {k}= to be a number, got {_describe(v)}")
        out[k] = v
    values = []
    for n, default in params:
        if n == "*":
            continue
        if n.startswith("*"):
            if not rest and n[1:] not in kwargs:
                raise ShapeProblem(f"is missing the argument {n[1:]!r}")
            values.append(rest)
        elif n in out:
            values.append(out[n])
        elif default is NO_DEFAULT:
            raise ShapeProblem(f"is missing the argument {n!r}")
        else:
            values.append(default)
    return values


def apply_op(op: Op, args: list, kwargs: dict, method: bool = False, ns: str | None = None):
    """The op's result on `TensorInfo`/`Val` arguments: a TensorInfo, a list of them, or a Val.

    ``method``: called as ``x.name(...)`` (``args[0]`` is x); else ``ns.name(...)``."""
    values = bind_op(op, args, kwargs, method, ns)
    check_dtypes(op, values, [n.lstrip("*") for n, _ in op_params(op, method, ns) if n != "*"])
    out = op.rule(*values)
    check_elements(out)
    return out if op.result is None else _retyped(out, op.result)


def check_dtypes(op: Op, values: list, names: list[str]) -> None:
    """Raise `ShapeProblem` (with a hint) where a tensor argument has a dtype torch's op refuses."""
    takes = op.dtypes(*values) if callable(op.dtypes) else op.dtypes
    for name, v in zip(names, values):
        items = _plain(v) if isinstance(_plain(v), (list, tuple)) else [v]
        for t in items:
            if isinstance(t, TensorInfo) and t.dtype not in takes:
                raise dtype_problem(takes, t.dtype, name)


def _retyped(out, result: Callable[[str], str]):
    if isinstance(out, TensorInfo):
        return TensorInfo(out.shape, result(out.dtype))
    if isinstance(out, list):
        return [_retyped(o, result) for o in out]
    return out


def operator_rule(op: str, left, right) -> TensorInfo:
    """``left <op> right`` in forward, a tensor (`TensorInfo`) on one side at least, a tensor or a number
    (`Val`) on the other: broadcast, promoted, refused where torch refuses.

    >>> from modelspec.shapes import Val
    >>> operator_rule("*", TensorInfo((Val(2),), "bool"), Val(2)).dtype
    'long'
    """
    entry = OPERATORS[op]
    try:
        check_dtypes(entry, [left, right], ["left side", "right side"])
    except ShapeProblem as exc:
        raise ShapeProblem(f"`{op}` {exc}", hint=exc.hint) from None
    return apply_op(entry, [left, right], {})


def unary_rule(op: str, x: TensorInfo) -> TensorInfo:
    """``-x`` or ``+x`` of a tensor: torch refuses both on a bool tensor.

    >>> from modelspec.shapes import Val
    >>> unary_rule("-", TensorInfo((Val(3),), "long")).dtype
    'long'
    """
    try:
        return apply_op(UNARY[op], [x], {})
    except ShapeProblem as exc:
        raise ShapeProblem(f"unary `{op}` {exc}", hint=exc.hint) from None
