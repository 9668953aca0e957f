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
Python's arithmetic on tensors, as the same kind of entries (comparisons, ``&``, ``|``, ``^``, ``~`` too).
``tests/test_dtypes.py`` holds them against torch on the CPU.

Where torch overloads a function on its positional arguments (``torch.arange(end)`` beside
``arange(start, end, step)``, ``torch.randint(high, size)``), ``overload`` rewrites a call to the one
signature the table holds before it is bound. ``creates`` marks a tensor made from sizes (``torch.zeros``):
forward prints it with the ``device=`` (and, ``float_like``, the float ``dtype=``) of a tensor it meets.
``needs`` names the symbolic sizes a rule took to be large enough (reflect padding of 2 on ``T`` needs
``T - 2 >= 1``), which forward checks at the example sizes, as it checks every symbolic dim. ``note`` records
what ``codegen --explain`` says of a call (a `modelspec.model.OpNote`: a matmul's operands, where a view's
``-1`` stands, how two tensors broadcast). A dtype given
as an argument (``dtype=torch.long``, ``x.to(torch.bool)``, ``x.dtype``) is a `DType`, ``x.device`` a
`Device`.

The losses of the catalog are ops too (F.cross_entropy, F.mse_loss, ...: `LOSS_FORMS`): each binds its
arguments as its layer's constructor does and applies the layer's shape rule, dtype wants and class-index
bound (``indexes``, as F.embedding's), so that a function and its layer accept and refuse alike.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from . import expr as E
from .layers import CATALOG
from .layers.base import (ANY_DTYPE, DTYPES, FLOAT_ONLY, NUMERIC, ArgError, ArgProblem, ShapeProblem, bind,
                          check_elements, dtype_problem, prod)
from .layers.loss import NONE_ONLY
from .model import OpNote, TensorInfo
from .shapes import Sym, Val, is_dim, shape_str

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
    overload: Callable | None = None  # (args, kwargs, method) -> (args, kwargs): torch.arange(end) as arange(end=end)
    creates: bool = False  # a new tensor from sizes (torch.zeros): the printed call gets device= (see forward.py)
    float_like: bool = False  # with creates, a float result follows a float tensor's dtype (zeros, randn; not arange)
    # (bound values) -> [(size, what)]: symbolic sizes the call needs to be at least 1, which forward checks at the
    # example sizes as it checks every symbolic dim (reflect padding of p needs T - p >= 1, as a slice does)
    needs: Callable | None = None
    # (bound values) -> (index tensor, the bound its values stay below): an op that reads a tensor's values as
    # indices (F.embedding, gather); forward takes them only from a model input, whose example values it draws
    indexes: Callable | None = None
    # (label, result, bound values) -> the OpNote that --explain spells the call out with (a matmul's operands,
    # where a view's -1 stands, how two tensors broadcast), or None where there is nothing to say
    note: Callable | None = None


class DType(str):
    """A dtype as a compile-time value: ``torch.long`` (and ``x.dtype``) in a spec is ``DType("long")``.

    A `str` (the dtype's name, as `TensorInfo.dtype` spells it), so that every stage can hold and show it like
    any other constant; rules tell it from a string argument by its type.

    >>> DType("long"), DType("long") == "long"
    (torch.long, True)
    """

    def __repr__(self):
        return f"torch.{self}"


class Device(str):
    """``x.device`` as a compile-time value: where a created tensor goes (``torch.zeros(n, device=x.device)``).
    The string is the tensor as the spec spells it, for messages."""

    def __repr__(self):
        return f"{self}.device"


# torch's names for the dtypes modelspec tracks (a spec writes torch.long or torch.int64), and those it does not
TORCH_DTYPES = {"float": "float", "float32": "float", "long": "long", "int64": "long", "bool": "bool"}
UNTRACKED_DTYPES = ("float16", "half", "bfloat16", "float64", "double", "int32", "int", "int16", "short", "int8",
                    "uint8", "complex64", "cfloat", "complex128", "cdouble")


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
STRIDED = {"transpose", "permute", "t", "chunk", "split", "expand", "expand_as", "broadcast_to", "unbind", "einsum",
           "scaled_dot_product_attention"}  # (attention: torch's fused kernels return a transposed view)
# (Measured on torch, tests/test_ops.py: F.normalize keeps the input's strides; cat, stack
# and the convolutions keep a channels-last order, which a flag cannot tell from others: they keep the flag.)
FRESH = {"contiguous", "matmul", "bmm", "mm", "sum", "mean", "amax", "amin", "argmax", "argmin", "max", "min",
         "prod", "std", "var", "norm", "softmax", "log_softmax", "linear", "embedding", "one_hot", "repeat", "tile"}


# ops that rearrange a tensor's values without changing them
SAME_VALUES = {"view", "reshape", "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "contiguous",
               "chunk", "split", "expand", "expand_as", "broadcast_to", "repeat", "tile", "flip", "roll", "unbind",
               "gather", "index_select"}


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
        raise ShapeProblem("needs dim= (which axis sums to 1), e.g. dim=1 for [B, classes]",
                           hint="say which dim sums to 1: dim=1 for [B, classes], dim=-1 for the last dim (torch's "
                                "choice of one without dim is deprecated)")
    norm_dim(dim, len(x.shape), "dim", x)
    return TensorInfo(tuple(x.shape), x.dtype)


def normalize_rule(input, p, dim, eps):
    x = _t(input)
    if not _is_number(p) or not _is_number(eps):
        raise ShapeProblem(f"expects numbers for p and eps, got {_describe(p)} and {_describe(eps)}")
    norm_dim(dim, len(x.shape), "dim", x)
    return same(x)


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


def flatten_note(label, out, input, start_dim, end_dim):
    n = len(input.shape)
    if n == 0:
        return None
    return OpNote("flatten", label, (input.shape,), out.shape, dim=_plain(start_dim) % n, end_dim=_plain(end_dim) % n)


def _exact_div(total, known):
    """total / known when it divides for every value of the symbols, else None."""
    try:
        q = total // known
    except (TypeError, ZeroDivisionError):
        return None
    return q if q * known == total else None


def _only_splits(old: tuple, new: tuple) -> bool:
    """Whether a view of ``old`` as ``new`` only splits dims (and adds or drops 1s): that is possible whatever the
    strides, as nanoGPT views a chunk of its qkv projection into heads; merging two dims needs them in order."""
    olds = [d for d in old if d != 1]
    news = [d for d in new if d != 1]
    j = 0
    for d in olds:
        if j >= len(news):
            return False
        product = news[j]
        j += 1
        while product != d and j < len(news):
            product = product * news[j]
            j += 1
        if product != d:
            return False
    return j == len(news)


def view_rule(input, shape, verb="view"):
    x = _t(input)
    result = _view_rule(x, shape, verb)
    if verb == "view" and not x.contiguous and not _only_splits(tuple(d.value for d in x.shape),
                                                               tuple(d.value for d in result.shape)):
        raise ShapeProblem(f"cannot view {x}: it was transposed, permuted or sliced, so its memory is not in order",
                           hint="use x.reshape(...), or x.contiguous().view(...)")
    return result


def _view_rule(x, shape, verb):
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


def view_note(label, out, input, shape):
    sizes = [_plain(s) for s in _seq(shape)]
    return OpNote("view", label, (input.shape,), out.shape, inferred=sizes.index(-1) if -1 in sizes else None)


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


def cat_note(label, out, tensors, dim):
    ts = [t for t in _tensors(tensors) if len(t.shape) == len(out.shape)]  # not the empty 1-d ones torch skips
    return OpNote("cat", label, tuple(t.shape for t in ts), out.shape, dim=_plain(dim) % len(out.shape))


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


def stack_note(label, out, tensors, dim):
    return OpNote("stack", label, tuple(t.shape for t in _tensors(tensors)), out.shape,
                  dim=_plain(dim) % len(out.shape))


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


BROADCAST_HINT = "two tensors combine where each dim is equal, or 1 in one of them (broadcasting)"


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
            raise ShapeProblem(f"cannot {op} {a} and {b}: dim {i - n} is {x.value} against {y.value}",
                               hint=BROADCAST_HINT)
    return TensorInfo(tuple(out), promote(a.dtype, b.dtype))


def broadcast_note(label, out, input, other=None, *_):
    """The broadcasting of an elementwise op of two tensors, or None: a number, or two tensors of one shape."""
    if not isinstance(input, TensorInfo) or not isinstance(other, TensorInfo) or not isinstance(out, TensorInfo):
        return None
    if [d.value for d in input.shape] == [d.value for d in other.shape]:
        return None
    return OpNote("broadcast", label, (input.shape, other.shape), out.shape)


def _binary(verb: str, bools: bool = False):
    """torch.add(input, other): a tensor and a tensor (broadcast) or a number; the result promoted. With
    ``bools``, a Python bool counts as a number too (``x == True``, ``mask & True``)."""

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
            if not (_is_number(s) or bools and isinstance(_plain(s), bool)):
                raise ShapeProblem(f"cannot {verb} a tensor {t} and {_describe(s)}")
            out = TensorInfo(tuple(t.shape), promote(t.dtype, scalar_dtype(s)))
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


def matmul_note(label, out, input, other):
    return OpNote("matmul", label, (input.shape, other.shape), out.shape)


def matmul_macs(out, input, other, *_):
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
    spelled = x.shape[d].expr
    if (not isinstance(size, int) and _exact_div(size, n) is not None or isinstance(size, int) and size % n == 0
            and size > 0) and spelled is not None:  # equal parts of `2 * c`: `2 * c // 2` each, as the spec spells it
        part = Val(size // n, E.BinOp("//", spelled, E.Constant(n)))
        return [TensorInfo(tuple(part if i == d else v for i, v in enumerate(x.shape)), x.dtype) for _ in range(n)]
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


# ---------------------------------------------------------------- dtypes and devices given as arguments
def _dtype_arg(dtype, what: str = "dtype") -> str | None:
    """The dtype a ``dtype=`` argument names ("float", "long" or "bool"), or None where none is given."""
    d = _plain(dtype) if dtype is not None else None
    if d is None:
        return None
    if not isinstance(d, DType):
        raise ShapeProblem(f"expects {what}= to be a dtype such as torch.long, got {_describe(dtype)}",
                           hint="write torch.float, torch.long or torch.bool, or another tensor's x.dtype")
    return str(d)


def _device_arg(device) -> None:
    if device is not None and _plain(device) is not None and not isinstance(_plain(device), Device):
        raise ShapeProblem(f"expects device= to be a tensor's device, got {_describe(device)}",
                           hint="leave device= out: the printed code puts a new tensor on the device of the tensors "
                                "forward reads (device=x.device); or write device=x.device")


def scalar_dtype(v) -> str:
    """The dtype torch gives a tensor filled with the Python number ``v``: bool, long or float."""
    p = _plain(v)
    return "bool" if isinstance(p, bool) else number_dtype(v)


def _is_scalar(v) -> bool:
    """A Python number or bool: what torch takes for a fill value or one side of torch.where."""
    return isinstance(_plain(v), (bool, int, float))


# ---------------------------------------------------------------- creation
def _size_items(size, what: str = "size") -> list:
    """The sizes of ``*size`` (``torch.zeros(2, 3)``, ``torch.zeros((2, 3))``) or of a ``size`` tuple."""
    if isinstance(size, list):
        return _seq(size)
    items = _plain(size)
    if not isinstance(items, (tuple, list)):
        raise ShapeProblem(f"expects {what} to be a tuple of sizes, got {_describe(size)}",
                           hint=f"write the sizes as a tuple: {what}=(B, T)")
    return list(items)


def _new_shape(items) -> tuple:
    """Sizes as the dims of a new tensor: integers (symbolic ones too, kept as spelled), none below 0."""
    for s in items:
        v = _plain(s)
        if not is_dim(v):
            raise ShapeProblem(f"sizes must be integers, got {_shown(items)}")
        if isinstance(v, int) and v < 0:
            raise ShapeProblem(f"sizes must be at least 0, got {_shown(items)}")
    return tuple(s if isinstance(s, Val) else Val(s) for s in items)


def _drawn(kind: str, d: str, shape=()) -> str:
    """randn ("normal") and rand ("uniform") draw floats only (randn lets a tensor of no elements pass)."""
    if kind in ("normal", "uniform") and d != "float" and not (kind == "normal" and any(v.value == 0 for v in shape)):
        raise ShapeProblem(f"draws floats: it cannot make a {d} tensor",
                           hint="torch.randint draws integers; a comparison makes a bool mask: torch.rand(...) < p")
    return d


def filled_rule(kind: str = ""):
    """torch.zeros / ones / empty (``kind`` ""), randn / rand ("normal", "uniform"): ``*size`` and a dtype."""

    def rule(size, dtype, device):
        shape = _new_shape(_size_items(size))
        _device_arg(device)
        return TensorInfo(shape, _drawn(kind, _dtype_arg(dtype) or "float", shape))

    return rule


def full_rule(size, fill_value, dtype, device):
    shape = _new_shape(_size_items(size))
    _device_arg(device)
    if not _is_scalar(fill_value):
        raise ShapeProblem(f"expects fill_value to be a number, got {_describe(fill_value)}")
    return TensorInfo(shape, _dtype_arg(dtype) or scalar_dtype(fill_value))


def _int_bound(v, what: str):
    p = _plain(v)
    if not is_dim(p):
        raise ShapeProblem(f"expects {what} to be an integer, got {_describe(v)}")
    return p


def _bounds(low, high, dtype: str):
    lo, hi = _int_bound(low, "low"), _int_bound(high, "high")
    if isinstance(lo, int) and isinstance(hi, int) and lo >= hi:
        raise ShapeProblem(f"draws from low (included) up to high (excluded), so it needs low < high, "
                           f"got low={lo} and high={hi}")
    if dtype == "bool" and (not isinstance(lo, int) or lo < 0 or not isinstance(hi, int) or hi > 2):
        raise ShapeProblem(f"cannot draw integers from {lo} up to {hi} as bool, which holds 0 and 1",
                           hint="give dtype=torch.long, or draw a mask from 0 up to 2")


def _bounds_need(low, high):
    """A symbolic bound needs high - low >= 1 at the example sizes."""
    return [(_plain(high) - _plain(low), f"low={_plain(low)} below high={_plain(high)}")]


def randint_rule(low, high, size, dtype, device):
    d = _dtype_arg(dtype) or "long"
    _bounds(low, high, d)
    shape = _new_shape(_size_items(size))
    _device_arg(device)
    return TensorInfo(shape, d)


def randint_needs(low, high, *_):
    return _bounds_need(low, high)


def _low_optional(first: int, names: tuple[str, ...]):
    """torch.randint(high, size) beside randint(low, high, size), and randint_like(x, high) beside
    randint_like(x, low, high): where fewer of ``names`` are given (after the first ``first`` positional
    arguments) than there are, and not ``low=``, the leading ``low`` (0) is the one left out."""

    def overload(args, kwargs, method):
        given = len(args) - first + sum(1 for n in names if n in kwargs)
        if "low" not in kwargs and given < len(names):
            return [*args[:first], Val(0), *args[first:]], kwargs
        return args, kwargs

    return overload


def _arange_overload(args, kwargs, method):
    """torch.arange(end) beside arange(start, end, step): one positional argument alone is the end."""
    if len(args) == 1 and "start" not in kwargs and "end" not in kwargs:
        if "step" in kwargs:
            raise ShapeProblem("takes step= only with a start and an end", hint="write torch.arange(0, end, step)")
        return [], {**kwargs, "end": args[0]}
    return args, kwargs


def arange_rule(start, end, step, dtype, device):
    """torch.arange: ceil((end - start) / step) values, long for integers and float where one is a float."""
    _device_arg(device)
    given = _dtype_arg(dtype)
    bounds = {"start": start, "end": end, "step": step}
    for what, v in bounds.items():
        p = _plain(v)
        if isinstance(p, bool) or not (isinstance(p, (int, float)) or isinstance(p, Sym)):
            raise ShapeProblem(f"expects {what} to be a number, got {_describe(v)}")
        if isinstance(p, float) and not math.isfinite(p):
            raise ShapeProblem(f"expects {what} to be a finite number, got {p}")
    s, e, st = (_plain(v) for v in bounds.values())
    floating = any(isinstance(p, float) for p in (s, e, st))
    dtype_out = given or ("float" if floating else "long")
    if dtype_out == "bool":
        raise ShapeProblem("cannot count in bool", hint="compare an arange to make a mask: torch.arange(n) < k")
    if dtype_out == "long":  # torch first makes each bound an integer, truncating
        s, e, st = (int(p) if isinstance(p, float) else p for p in (s, e, st))
        floating = False
    if st == 0:
        made = f" (it is {_plain(step)!r} made an integer)" if _plain(step) else ""
        raise ShapeProblem(f"step must not be 0{made}", hint="count up with a positive step, down with a negative one")
    # counting up from 0 or more, integers stay below the end: positions for an Embedding (nanoGPT's wpe)
    below = e if dtype_out == "long" and isinstance(s, int) and s >= 0 and isinstance(st, int) and st > 0 else None
    if isinstance(s, Sym) or isinstance(e, Sym) or isinstance(st, Sym):
        if floating or not isinstance(st, int):
            raise ShapeProblem(f"cannot count from {s} to {e} in steps of {st}: with a symbolic bound, the bounds "
                               f"must be integers and the step a fixed one", hint="give integer bounds and step")
        if s == 0 and st == 1 and isinstance(end, Val):
            return TensorInfo((end,), dtype_out, below=below)  # torch.arange(x.size(1)): that dim, as spelled
        n = (e - s + st - 1) // st if st > 0 else (s - e - st - 1) // -st
        return TensorInfo((Val(n),), dtype_out, below=below)
    if (st > 0 and s > e) or (st < 0 and s < e):
        raise ShapeProblem(f"cannot count from {s} to {e} in steps of {st}: the step goes the other way",
                           hint="count up with a positive step, down with a negative one")
    n = math.ceil((e - s) / st) if floating else -((s - e) // st)  # floats as torch does, in double precision
    return TensorInfo((Val(n),), dtype_out, below=below)


def like_rule(kind: str = ""):
    """zeros_like, ones_like, empty_like (``kind`` ""), randn_like / rand_like ("normal", "uniform"), full_like
    ("full"), randint_like ("int"): the input's shape, and its dtype unless ``dtype=`` says another."""

    def rule(input, *rest):
        x = _t(input)
        if kind == "full":
            fill, dtype = rest
            if not _is_scalar(fill):
                raise ShapeProblem(f"expects fill_value to be a number, got {_describe(fill)}")
        elif kind == "int":
            low, high, dtype = rest
            _bounds(low, high, _dtype_arg(dtype) or x.dtype)
        else:
            dtype, = rest
        d = _dtype_arg(dtype) or x.dtype
        _drawn(kind, d, x.shape)
        return TensorInfo(tuple(x.shape), d)

    return rule


# ---------------------------------------------------------------- broadcasting and copying
def _size_list(size, what: str) -> list:
    """The sizes of a ``*size`` argument (method) or a tuple one (function): torch.tile(x, 2) is refused."""
    if isinstance(size, list):
        return _seq(size)
    items = _plain(size)
    if not isinstance(items, (tuple, list)):
        raise ShapeProblem(f"expects {what} to be a tuple, got {_describe(size)}", hint=f"write {what}=(2, 1)")
    return list(items)


def _ints(items, shown: str, lo: int, what: str = "sizes") -> None:
    for s in items:
        v = _plain(s)
        if not is_dim(v) or (isinstance(v, int) and v < lo):
            word = "integers" if lo < 0 else f"integers of at least {lo}"
            raise ShapeProblem(f"{what} must be {word}, got {shown}")


def expand_rule(input, size, verb: str = "expand"):
    """x.expand(*sizes) / torch.broadcast_to(x, size): dims of 1 grow, -1 keeps a dim, new dims go in front."""
    x = _t(input)
    sizes = _size_list(size, "size")
    shown = _shown(sizes)
    _ints(sizes, shown, -1)
    lead = len(sizes) - len(x.shape)
    if lead < 0:
        raise ShapeProblem(f"cannot {verb} {x} to {shown}: it has {len(x.shape)} dims, more than the {len(sizes)} "
                           f"sizes given", hint="give a size for every dim; -1 keeps one: x.expand(-1, 4, -1)")
    out = []
    for i, s in enumerate(sizes):
        v = _plain(s)
        want = s if isinstance(s, Val) else Val(s)
        if i < lead:
            if v == -1:
                raise ShapeProblem(f"cannot {verb} {x} to {shown}: -1 keeps a dim the tensor has, but dim {i} is a "
                                   f"new one", hint="give new leading dims their size")
            out.append(want)
            continue
        d = x.shape[i - lead]
        if v == -1 or v == d.value:
            out.append(d if v == -1 or d.expr is not None or want.expr is None else want)
        elif d.value == 1 and not (isinstance(v, int) and v < 0):
            out.append(want)
        else:
            raise ShapeProblem(f"cannot {verb} {x} to {shown}: dim {i - lead} is {d.value}, and only a dim of 1 "
                               f"can grow (to {v})", hint="only dims of size 1 expand; use x.repeat(...) to copy")
    return TensorInfo(tuple(out), x.dtype)


def broadcast_to_rule(input, size):
    return expand_rule(input, size, "broadcast")


def expand_as_rule(input, other):
    return expand_rule(input, Val(tuple(_t(other, "other").shape)))


def _times(d: Val, r) -> Val:
    rv = _plain(r)
    if rv == 1:
        return d
    if d.value == 1:
        return r if isinstance(r, Val) else Val(r)
    return Val(d.value * rv)


def repeat_rule(input, repeats):
    """x.repeat(*counts): each dim times its count, one count per dim at least (more go in front)."""
    x = _t(input)
    reps = _size_list(repeats, "repeats")
    shown = _shown(reps)
    _ints(reps, shown, 0, "repeat counts")
    if len(reps) < len(x.shape):
        raise ShapeProblem(f"needs a repeat count for each of the {len(x.shape)} dims of {x}, got {shown}",
                           hint="give 1 for a dim to keep: x.repeat(1, 2, 1); torch.tile pads the counts with 1s")
    shape = (Val(1),) * (len(reps) - len(x.shape)) + tuple(x.shape)
    return TensorInfo(tuple(_times(d, r) for d, r in zip(shape, reps)), x.dtype)


def tile_rule(input, dims):
    """torch.tile(x, dims): repeat, with fewer counts than dims taken as 1s in front."""
    x = _t(input)
    reps = _size_list(dims, "dims")
    _ints(reps, _shown(reps), 0, "repeat counts")
    reps = [Val(1)] * (len(x.shape) - len(reps)) + list(reps)
    shape = (Val(1),) * (len(reps) - len(x.shape)) + tuple(x.shape)
    return TensorInfo(tuple(_times(d, r) for d, r in zip(shape, reps)), x.dtype)


# ---------------------------------------------------------------- masks
def tri_rule(input, diagonal):
    """torch.tril / triu: the lower or upper triangle of the last two dims, the rest zeroed."""
    x = _t(input)
    if len(x.shape) < 2:
        raise ShapeProblem(f"expects a matrix or a batch of them (2 dims or more), got {x}",
                           hint="make the mask square first: torch.ones(T, T).tril()")
    _int(diagonal, "diagonal")
    return same(x)


def _bool_mask(m: TensorInfo, what: str, example: str) -> None:
    if m.dtype != "bool":
        raise ShapeProblem(f"expects a bool {what}, but it is a {m.dtype} tensor {m}",
                           hint=f"make it bool with a comparison: {example}")


def masked_fill_rule(input, mask, value):
    """x.masked_fill(mask, value): a bool mask broadcast with x; value a number or a 0-d tensor."""
    x, m = _t(input), _t(mask, "mask")
    _bool_mask(m, "mask", "x.masked_fill(mask == 0, value)")
    if isinstance(value, TensorInfo):
        if value.shape:
            raise ShapeProblem(f"expects value to be a number or a 0-d tensor, got a tensor {value}",
                               hint="to take values from a tensor, use torch.where(mask, y, x)")
    elif not _is_scalar(value):
        raise ShapeProblem(f"expects value to be a number, got {_describe(value)}")
    elif x.dtype == "long" and isinstance(_plain(value), float) and not abs(_plain(value)) < 2 ** 63:
        raise ShapeProblem(f"cannot fill a long tensor with {_plain(value)}", hint="fill with an integer, or make "
                           "the tensor float first: x.float().masked_fill(mask, float('-inf'))")
    return TensorInfo(broadcast(x, m, "broadcast").shape, x.dtype)


def _where_overload(args, kwargs, method):
    if "input" in kwargs and not isinstance(kwargs["input"], TensorInfo):  # torch names a number there `self`
        raise ShapeProblem("takes a number as input only by position: torch.where(condition, 0.0, other)")
    if len(args) == 1 and not kwargs:
        raise ShapeProblem("torch.where(condition) alone gives the indices where it holds, which the data decides",
                           hint="give both values: torch.where(condition, x, y)")
    return args, kwargs


def where_rule(condition, input, other):
    """torch.where(condition, input, other): all three broadcast; numbers promote as one side of `+` does."""
    c = _t(condition, "condition")
    _bool_mask(c, "condition", "torch.where(x > 0, x, 0.0)")
    out, dtypes = c, []
    for v, what in ((input, "input"), (other, "other")):
        if isinstance(v, TensorInfo):
            out = broadcast(out, v, "broadcast")
            dtypes.append(v.dtype)
        elif _is_scalar(v):
            dtypes.append(scalar_dtype(v))
        else:
            raise ShapeProblem(f"expects {what} to be a tensor or a number, got {_describe(v)}")
    return TensorInfo(out.shape, promote(*dtypes))


def _compare(verb: str):
    """x < y, torch.eq(x, y): broadcast like arithmetic, a bool result."""
    binary = _binary(verb, bools=True)

    def rule(input, other):
        out = binary(input, other)
        return TensorInfo(out.shape, "bool")

    rule.elementwise = True
    return rule


def _bitwise(verb: str):
    """x & y, x | y, x ^ y: integers and bools (logic on bool tensors), promoted; floats refused."""
    binary = _binary(verb, bools=True)

    def rule(input, other):
        out = binary(input, other)
        if out.dtype == "float":
            raise ShapeProblem(f"cannot {verb} with a float: `&`, `|` and `^` take bool and integer tensors",
                               hint="compare first to get a bool mask: (x > 0) & (y > 0)")
        return out

    rule.elementwise = True
    return rule


def _logical(input, other=None):
    """torch.logical_and / or / xor (and not): any dtypes, nonzero as True, a bool result."""
    if other is None:
        return TensorInfo(tuple(_t(input).shape), "bool")
    return TensorInfo(broadcast(_t(input), _t(other, "other"), "combine").shape, "bool")


_logical.elementwise = True


def clamp_rule(input, min, max):
    """x.clamp(min, max): each bound a number or a tensor (broadcast with x); the result promoted, as `+` does."""
    x = _t(input)
    if min is None and max is None:
        raise ShapeProblem("needs min= or max=")
    if min is not None and max is not None and isinstance(min, TensorInfo) != isinstance(max, TensorInfo):
        raise ShapeProblem("takes both bounds as numbers or both as tensors, not one of each",
                           hint="make the number a tensor too: torch.full_like(x, value), or clamp twice")
    out, dtypes = x, [x.dtype]
    for v, what in ((min, "min"), (max, "max")):
        if v is None:
            continue
        if isinstance(v, TensorInfo):
            out = broadcast(out, v, "clamp")
            dtypes.append(v.dtype)
        elif _is_number(v):
            dtypes.append(number_dtype(v))
        else:
            raise ShapeProblem(f"expects {what} to be a number or a tensor, got {_describe(v)}")
    # the bounds promote like the other side of a binary op: clamp(bool_x, min=0) is long
    if promote(*dtypes) == "bool" and min is not None and max is not None:  # one bound is a max or min of two
        raise ShapeProblem("cannot clamp bools between bools", hint="make the tensor long first: x.long()")
    return TensorInfo(tuple(out.shape), promote(*dtypes))


# ---------------------------------------------------------------- contraction
def _einsum_labels(term: str, equation: str) -> list[str]:
    out, i = [], 0
    while i < len(term):
        if term.startswith("...", i):
            if "..." in out:
                raise ShapeProblem(f"the equation {equation!r} has `...` twice in {term!r}")
            out.append("...")
            i += 3
        elif term[i].isascii() and term[i].isalpha():
            out.append(term[i])
            i += 1
        else:
            raise ShapeProblem(f"the equation {equation!r} holds {term[i]!r}: subscripts are letters and `...`",
                               hint="write it as torch does: 'bij,bjk->bik'")
    return out


@dataclass(frozen=True)
class _Einsum:
    """An einsum equation read against its operands: each operand's labels, the output's, each label's size."""

    terms: list
    output: list
    sizes: dict  # label -> Val, broadcast over the operands (a size of 1 stretches)
    ellipsis: tuple | None  # the broadcast dims `...` stands for, None where no operand has it
    operands: list


def _einsum_operands(operands) -> list[TensorInfo]:
    items = list(operands)
    if len(items) == 1 and isinstance(_plain(items[0]), (list, tuple)):  # torch.einsum(eq, [a, b])
        items = list(_plain(items[0]))
    if not items:
        raise ShapeProblem("needs at least one operand after the equation")
    return [_t(t, "operand") for t in items]


def read_einsum(equation, operands) -> _Einsum:
    eq = _plain(equation)
    if not isinstance(eq, str) or isinstance(eq, (DType, Device)):
        raise ShapeProblem(f"expects an equation string first, got {_describe(equation)}",
                           hint="write torch.einsum('bij,bjk->bik', a, b)")
    ts = _einsum_operands(operands)
    text = eq.replace(" ", "")
    if text.count("->") > 1:
        raise ShapeProblem(f"the equation {eq!r} has more than one `->`")
    lhs, arrow, rhs = text.partition("->")
    terms = [_einsum_labels(t, eq) for t in lhs.split(",")]
    if len(terms) != len(ts):
        raise ShapeProblem(f"the equation {eq!r} names {len(terms)} operand{'s' if len(terms) != 1 else ''}, "
                           f"but {len(ts)} {'are' if len(ts) != 1 else 'is'} given")
    sizes: dict = {}
    ellipsis = None
    for k, (term, t) in enumerate(zip(terms, ts)):
        named = sum(1 for label in term if label != "...")
        rank = len(t.shape)
        if ("..." in term and rank < named) or ("..." not in term and rank != named):
            raise ShapeProblem(f"operand {k}, {t}, has {rank} dim{'s' if rank != 1 else ''}, but {''.join(term)!r} "
                               f"in {eq!r} names {named}", hint="give each dim a letter, or `...` for the rest")
        pos, own = 0, {}
        for label in term:
            if label == "...":
                part = TensorInfo(tuple(t.shape[pos:pos + rank - named]))
                try:
                    ellipsis = part if ellipsis is None else broadcast(ellipsis, part, "broadcast")
                except ShapeProblem:
                    raise ShapeProblem(f"the dims `...` stands for do not broadcast: {ellipsis} against {part} "
                                       f"of operand {k}") from None
                pos += rank - named
                continue
            d = t.shape[pos]
            pos += 1
            if label in own and own[label].value != d.value:
                raise ShapeProblem(f"subscript {label} is repeated in operand {k}, {t}, but its sizes "
                                   f"{own[label].value} and {d.value} differ",
                                   hint="a letter repeated in one operand takes its diagonal: the sizes must match")
            own[label] = d
            seen = sizes.get(label)
            if seen is None or seen.value == 1 and d.value != 1:
                sizes[label] = d
            elif d.value not in (1, seen.value):
                raise ShapeProblem(f"subscript {label} is {seen.value} in one operand and {d.value} in operand {k}, "
                                   f"{t}", hint="a letter names one size in every operand (or 1, which stretches)")
    counts = Counter(label for term in terms for label in term if label != "...")
    if arrow:
        output = _einsum_labels(rhs, eq)
        for label in output:
            if label != "..." and label not in counts:
                raise ShapeProblem(f"output subscript {label} of {eq!r} names no dim of an operand")
            if output.count(label) > 1:
                raise ShapeProblem(f"output subscript {label} of {eq!r} appears more than once")
    else:  # implicit: `...` first, then the letters that appear once, in alphabetical order
        output = (["..."] if ellipsis is not None else []) + sorted(lb for lb, c in counts.items() if c == 1)
    return _Einsum(terms, output, sizes, None if ellipsis is None else tuple(ellipsis.shape), ts)


def _einsum_overload(args, kwargs, method):
    if "operands" in kwargs:
        raise ShapeProblem("takes its operands by position: torch.einsum(equation, a, b)")
    return args, kwargs


def einsum_rule(equation, operands):
    """torch.einsum: the output's dims from the equation, the dtype as torch's contraction makes it
    (`_einsum_dtype`)."""
    e = read_einsum(equation, operands)
    shape = []
    for label in e.output:
        shape.extend(e.ellipsis or () if label == "..." else (e.sizes[label],))
    return TensorInfo(tuple(shape), _einsum_dtype(e))


def _einsum_dtype(e: _Einsum) -> str:
    """The dtype torch's einsum gives, following its contraction (aten's einsum and sumproduct_pair, with no
    contraction path: opt_einsum not installed): operands are taken left to right, two at a time. A
    contracted dim of more than 1 in both is summed by a matrix product (bmm: one dtype, not bool); one that
    only one operand still holds with more than 1 is summed out of it first (a sum counts bools as long);
    otherwise the two multiply, promoting. A single operand's contracted dims are summed at the end."""
    n_ell = len(e.ellipsis or ())

    def sizes(term, t):  # contracted label -> size (1 where absent); the dims `...` stands for as ".0", ".1"
        out, pos = {}, 0
        named = sum(1 for lb in term if lb != "...")
        for lb in term:
            if lb == "...":
                dims = t.shape[pos:pos + len(t.shape) - named]
                out.update({f".{n_ell - len(dims) + j}": d.value for j, d in enumerate(dims)})
                pos += len(dims)
            else:
                out.setdefault(lb, t.shape[pos].value)
                pos += 1
        return out

    kept = set(e.output) - {"..."} | ({f".{j}" for j in range(n_ell)} if "..." in e.output else set())
    ops = [({k: v for k, v in sizes(term, t).items() if k not in kept}, t.dtype)
           for term, t in zip(e.terms, e.operands)]
    contracted = sorted({k for op, _ in ops for k in op})
    counts = {k: sum(1 for op, _ in ops if op.get(k, 1) != 1) for k in contracted}

    def summed(dtype):
        return "long" if dtype == "bool" else dtype

    (a, da), rest = ops[0], ops[1:]
    for b, db in rest:
        matmul = False
        for k in contracted:
            sa, sb = a.get(k, 1), b.get(k, 1)
            if sa != 1 and sb != 1:
                counts[k] -= 1
                if counts[k] == 1:
                    matmul, counts[k] = True, 0
                    a[k] = 1
                    continue
            elif counts[k] == 1 and sa != 1:
                a, da, counts[k] = {**a, k: 1}, summed(da), 0
            elif counts[k] == 1 and sb != 1:
                b, db, counts[k] = {**b, k: 1}, summed(db), 0
            a[k] = a.get(k, 1) if a.get(k, 1) != 1 else b.get(k, 1)  # broadcast
        if matmul:
            if da != db or da == "bool":
                raise ShapeProblem(f"cannot contract a {da} tensor with a {db} one: summing products over a dim "
                                   f"both hold is a matrix product, which takes one dtype, and not bool",
                                   hint="make every operand float: x * 1.0")
        else:
            da = promote(da, db)
    return summed(da) if len(ops) == 1 and contracted else da


def einsum_macs(out, equation, operands):
    """Two operands or more: one multiply-add for each combination of every label's value."""
    try:
        e = read_einsum(equation, operands)
    except ShapeProblem:
        return 0
    if len(e.operands) < 2:
        return 0
    return prod(d.value for d in (*e.sizes.values(), *(e.ellipsis or ())))


# ---------------------------------------------------------------- functional forms
def sdpa_rule(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa):
    """F.scaled_dot_product_attention: [..., L, E], [..., S, E], [..., S, Ev] -> [..., L, Ev]."""
    q, k, v = _t(query, "query"), _t(key, "key"), _t(value, "value")
    for t, what in ((q, "query"), (k, "key"), (v, "value")):
        if len(t.shape) < 2:
            raise ShapeProblem(f"expects query, key and value of at least 2 dims [..., L, E], but {what} is {t}")
        if t.dtype != "float":
            raise dtype_problem(FLOAT_ONLY, t.dtype, what)
    if k.shape[-1].value != q.shape[-1].value:
        raise ShapeProblem(f"query {q} and key {k} differ in their last dim (E): {q.shape[-1].value} against "
                           f"{k.shape[-1].value}", hint="query and key need the same head size")
    if v.shape[-2].value != k.shape[-2].value:
        raise ShapeProblem(f"key {k} and value {v} differ in their sequence dim (S, dim -2): {k.shape[-2].value} "
                           f"against {v.shape[-2].value}", hint="key and value come from the same sequence")
    gqa = _bool(enable_gqa, "enable_gqa")
    kb, vb = TensorInfo(tuple(k.shape[:-2])), TensorInfo(tuple(v.shape[:-2]))
    if gqa and min(len(q.shape), len(k.shape), len(v.shape)) < 3:
        raise ShapeProblem(f"takes enable_gqa=True only with heads, [..., heads, L, E], got query {q}, key {k} and "
                           f"value {v}", hint="leave enable_gqa out for tensors without a heads dim")
    if gqa:
        hq, hk, hv = q.shape[-3].value, k.shape[-3].value, v.shape[-3].value
        if not all(h == hq or isinstance(hq, int) and isinstance(h, int) and hq % h == 0 for h in (hk, hv)):
            raise ShapeProblem(f"with enable_gqa=True the heads of key and value ({hk}, {hv}) must divide those of "
                               f"query ({hq})", hint="give key and value a number of heads that divides query's")
        kb = TensorInfo((*k.shape[:-3], q.shape[-3]))
        vb = TensorInfo((*v.shape[:-3], q.shape[-3]))
    try:
        batch = broadcast(broadcast(TensorInfo(tuple(q.shape[:-2])), kb, "broadcast"), vb, "broadcast")
    except ShapeProblem:
        raise ShapeProblem(f"the batch dims of query {q}, key {k} and value {v} do not broadcast",
                           hint="query, key and value share their leading dims [B, heads, ...]") from None
    scores = (*batch.shape, q.shape[-2], k.shape[-2])
    if attn_mask is not None and _plain(attn_mask) is not None:  # attn_mask=None, as nanoGPT writes it: no mask
        m = _t(attn_mask, "attn_mask")
        if m.dtype not in ("bool", "float"):
            raise ShapeProblem(f"expects a bool or float attn_mask, but it is a {m.dtype} tensor {m}",
                               hint="True keeps a position: make it bool with a comparison, or add a float mask")
        ok = len(m.shape) >= 2  # torch's fused CPU kernel refuses a 1-d mask its other paths broadcast
        if ok:
            try:
                ok = [d.value for d in broadcast(m, TensorInfo(scores), "broadcast").shape] == [d.value for d in scores]
            except ShapeProblem:
                ok = False
        if not ok:
            raise ShapeProblem(f"attn_mask {m} does not broadcast to the attention scores {shape_str(scores)} "
                               f"[..., L, S]", hint="give the mask the shape [L, S], or [B, heads, L, S] with 1s")
        if _bool(is_causal, "is_causal"):
            raise ShapeProblem("takes attn_mask or is_causal=True, not both",
                               hint="is_causal=True makes the causal mask itself; drop one of them")
    _bool(is_causal, "is_causal")
    p = _plain(dropout_p)
    if not _is_number(dropout_p) or not 0 <= p <= 1:
        raise ShapeProblem(f"dropout_p must be a probability between 0 and 1, got {_describe(dropout_p)}")
    if scale is not None and _plain(scale) is not None and not _is_number(scale):
        raise ShapeProblem(f"expects scale to be a number, got {_describe(scale)}")
    return TensorInfo((*batch.shape, q.shape[-2], v.shape[-1]), "float")


def sdpa_macs(out, query, key, value, *_):
    """Both matmuls: QK^T ([..., L, S] of E each) and the weights times V ([..., L, Ev] of S each)."""
    batch = prod(d.value for d in out.shape[:-2])
    L, S = query.shape[-2].value, key.shape[-2].value
    return batch * L * S * (query.shape[-1].value + value.shape[-1].value)


_INTERPOLATE_RANKS = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5), "linear": (3,),
                      "bilinear": (4,), "bicubic": (4,), "trilinear": (5,)}


def _f32(v: float) -> float:
    """``v`` rounded to float32, as torch's Python code computes recomputed scale factors."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _scaled(d: Val, s: float, recompute: bool) -> Val:
    size = d.value
    if isinstance(size, int):
        if recompute:
            return Val(math.floor(_f32(_f32(float(size)) * _f32(s))))
        return Val(math.floor(size * s))  # in double precision, as torch's compute_output_size
    num, den = s.as_integer_ratio()
    if den > 1 << 16 or recompute and _f32(s) != s:
        raise ShapeProblem(f"cannot scale the symbolic dim {size} by {s}: the result depends on rounding",
                           hint="give that dim a fixed size, or scale by a factor such as 2 or 0.5")
    return Val(size * num // den if den > 1 else size * num)


def interpolate_rule(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    """F.interpolate: [N, C, *spatial] to size=, or to floor(spatial * scale_factor)."""
    x = _t(input)
    m = _plain(mode)
    if m not in _INTERPOLATE_RANKS or isinstance(m, (DType, Device)):
        raise ShapeProblem(f"mode must be one of {', '.join(map(repr, _INTERPOLATE_RANKS))}, got {_describe(mode)}")
    rank = len(x.shape)
    if rank not in (3, 4, 5):
        raise ShapeProblem(f"expects a 3-d, 4-d or 5-d input [N, C, *spatial], got {x}",
                           hint="add a batch and a channel dim: x[None, None]")
    if rank not in _INTERPOLATE_RANKS[m]:
        want = _INTERPOLATE_RANKS[m][0]
        raise ShapeProblem(f"mode={m!r} takes a {want}-d input, got {x}",
                           hint=f"use mode={ {3: 'linear', 4: 'bilinear', 5: 'trilinear'}[rank]!r} or 'nearest' "
                                f"for a {rank}-d input")
    n = rank - 2
    if align_corners is not None and _plain(align_corners) is not None:
        _bool(align_corners, "align_corners")
        if m not in ("linear", "bilinear", "bicubic", "trilinear"):
            raise ShapeProblem(f"takes align_corners only with an interpolating mode, not mode={m!r}",
                               hint="leave align_corners out, or use mode='bilinear' (or linear, trilinear)")
    if _bool(antialias, "antialias") and (m not in ("bilinear", "bicubic") or rank != 4):
        raise ShapeProblem("takes antialias=True only with mode='bilinear' or 'bicubic' on a 4-d input")
    recompute = recompute_scale_factor is not None and _plain(recompute_scale_factor) is not None \
        and _bool(recompute_scale_factor, "recompute_scale_factor")
    has_size = size is not None and _plain(size) is not None
    has_scale = scale_factor is not None and _plain(scale_factor) is not None
    if has_size == has_scale:
        raise ShapeProblem("takes size= or scale_factor=, one of them" if has_size else "needs size= or scale_factor=",
                           hint="F.interpolate(x, scale_factor=2) or F.interpolate(x, size=(H, W))")
    spatial = x.shape[2:]
    if has_size:
        if recompute:
            raise ShapeProblem("takes recompute_scale_factor=True only with scale_factor=, not with size=")
        raw = _plain(size)
        items = list(raw) if isinstance(raw, (tuple, list)) else [size] * n
        if len(items) != n:
            raise ShapeProblem(f"expects size to have {n} item{'s' if n != 1 else ''}, one for each spatial dim of "
                               f"{x}, got {_shown(items)}")
        for s in items:
            if not is_dim(_plain(s)) or isinstance(_plain(s), int) and _plain(s) < (0 if m == "area" else 1):
                raise ShapeProblem(f"sizes must be positive integers, got {_describe(size)}")
        out = [s if isinstance(s, Val) else Val(s) for s in items]
    else:
        raw = _plain(scale_factor)
        items = list(raw) if isinstance(raw, (tuple, list)) else [raw] * n
        if len(items) != n:
            raise ShapeProblem(f"expects scale_factor to have {n} item{'s' if n != 1 else ''}, one for each "
                               f"spatial dim of {x}, got {_describe(scale_factor)}")
        scales = [_plain(s) for s in items]
        if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
                   for s in scales):
            raise ShapeProblem(f"scale factors must be positive numbers, got {_describe(scale_factor)}")
        out = [_scaled(d, float(s), recompute) for d, s in zip(spatial, scales)]
        for o in out:
            if isinstance(o.value, int) and o.value < (0 if m == "area" else 1):  # area pools adaptively: to 0 too
                raise ShapeProblem(f"scaling {x} by {_describe(scale_factor)} leaves a spatial dim of {o.value}",
                                   hint="use a larger scale_factor, or size=")
    shape = (*x.shape[:2], *out)
    empty = any(d.value == 0 for d in (*x.shape, *shape)) and not (m == "area" and rank == 5)
    if x.dtype != "float" and not empty:  # with no element, no kernel runs (but 3-d area pooling's checks)
        raise dtype_problem(FLOAT_ONLY, x.dtype)
    return TensorInfo(shape, x.dtype)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad_rule(input, pad, mode, value):
    """F.pad: (left, right) pairs from the last dim backwards; a negative pad crops (constant mode)."""
    x = _t(input)
    raw = _plain(pad)
    pads = [_plain(p) for p in raw] if isinstance(raw, (tuple, list)) else None
    if pads is None or not all(isinstance(p, int) and not isinstance(p, bool) for p in pads):
        raise ShapeProblem(f"expects pad to be a tuple of integers (left, right, ...), got {_describe(pad)}",
                           hint="write F.pad(x, (1, 1)) for the last dim, (1, 1, 2, 2) for the last two")
    if len(pads) % 2:
        raise ShapeProblem(f"expects pad in (left, right) pairs, but {_shown(pads)} has {len(pads)} numbers")
    k = len(pads) // 2
    if k > len(x.shape):
        raise ShapeProblem(f"pads {k} dims, but {x} has {len(x.shape)}")
    m = _plain(mode)
    if m not in _PAD_MODES or isinstance(m, (DType, Device)):
        raise ShapeProblem(f"mode must be one of {', '.join(map(repr, _PAD_MODES))}, got {_describe(mode)}")
    if m != "constant":
        if value is not None and _plain(value) not in (None, 0):
            raise ShapeProblem(f"takes value= only with mode='constant', not {m!r}")
        if not 1 <= k <= 3 or len(x.shape) not in (k + 1, k + 2):
            raise ShapeProblem(f"mode={m!r} pads the last 1 to 3 dims of a batched or unbatched input, "
                               f"and {_shown(pads)} on {x} pads {k} of {len(x.shape)}",
                               hint="pad (1, 1) on [C, L] or [N, C, L], (1, 1, 1, 1) on [C, H, W] or [N, C, H, W]")
    elif value is not None and _plain(value) is not None and not _is_scalar(value):
        raise ShapeProblem(f"expects value to be a number, got {_describe(value)}")
    if m in ("reflect", "replicate") and x.dtype not in NUMERIC:
        raise dtype_problem(NUMERIC, x.dtype)
    shape = list(x.shape)
    for i in range(k):
        d = len(shape) - 1 - i
        lo, hi = pads[2 * i], pads[2 * i + 1]
        size = shape[d].value
        if m == "reflect" and isinstance(size, int) and (lo >= size or hi >= size):
            raise ShapeProblem(f"reflect padding of {max(lo, hi)} needs a dim larger than that, but dim {d} of {x} is "
                               f"{size}", hint="use mode='replicate', or pad less")
        if m == "circular" and isinstance(size, int) and (lo > size or hi > size):
            raise ShapeProblem(f"circular padding of {max(lo, hi)} wraps around dim {d} of {x} ({size}) more than "
                               f"once", hint="pad at most the dim's size")
        new = size + lo + hi
        if isinstance(new, int) and new < (0 if m in ("constant", "circular") else 1):
            raise ShapeProblem(f"cannot pad dim {d} of {x} by {_shown((lo, hi))}: it would have {new} elements")
        shape[d] = shape[d] if lo == hi == 0 else Val(new)
    return TensorInfo(tuple(shape), x.dtype)


def pad_needs(input, pad, mode, value):
    """Reflect padding of p on a symbolic dim T needs T - p >= 1; circular, T - p + 1 >= 1."""
    m, pads, shape = _plain(mode), [_plain(p) for p in _plain(pad)], input.shape
    out = []
    for i in range(len(pads) // 2):
        size, p = shape[len(shape) - 1 - i].value, max(pads[2 * i], pads[2 * i + 1])
        if m == "reflect":
            out.append((size - p, f"dim {len(shape) - 1 - i} ({size}) larger than its reflect padding {p}"))
        elif m == "circular":
            out.append((size - p + 1, f"dim {len(shape) - 1 - i} ({size}) at least its circular padding {p}"))
    return out


def catalog_rule(layer: str, names: tuple[str, ...]):
    """A functional form of a catalog layer (F.max_pool2d of MaxPool2d): its arguments bound as the class
    binds them, its shape and dtype rules, the refusals of both."""

    def rule(input, *values):
        entry = CATALOG[layer]
        x = _t(input)
        try:
            bound = bind(entry, [], dict(zip(names, values)), (tuple(x.shape),))
        except ArgError as exc:
            raise ShapeProblem(exc.message.replace("argument ", "", 1), hint=exc.hint) from None
        takes = entry.input_dtypes(bound)
        if x.dtype not in takes:
            raise dtype_problem(takes, x.dtype)
        n = len(getattr(bound, "kernel_size", ()))
        symbolic = [d.value for d in x.shape[len(x.shape) - n:] if isinstance(d.value, Sym)] if n else []
        if getattr(bound, "ceil_mode", False) and symbolic:
            # torch drops a last window that would start in the padding: whether it does depends on the size
            raise ShapeProblem(f"cannot pool the symbolic dim {symbolic[0]} of {x} with ceil_mode=True: whether the "
                               f"last window counts depends on its size", hint="leave ceil_mode out, or give that "
                                                                                "dim a fixed size")
        out = entry.rule(bound, tuple(x.shape))
        dtypes = entry.output_dtypes(bound, out, x.dtype)
        if isinstance(out, list):
            return [TensorInfo(tuple(s), d) for s, d in zip(out, dtypes)]
        return TensorInfo(tuple(out), dtypes)

    return rule


def avg_pool3d_needs(input, kernel_size, *_):
    """avg_pool3d refuses an input smaller than its kernel, padding or not: a symbolic dim needs T - k + 1 >= 1."""
    k = _plain(kernel_size)
    ks = [_plain(v) for v in k] if isinstance(k, (tuple, list)) else [k] * 3
    spatial = input.shape[len(input.shape) - 3:]
    return [(d.value - kk + 1, f"dim {d.value} at least the kernel {kk}") for d, kk in zip(spatial, ks)
            if isinstance(kk, int)]


def adaptive_avg_rule(n: int):
    """F.adaptive_avg_pool2d / 3d: AdaptiveAvgPool's rule; but an output of all 1s is a mean over the last
    ``n`` dims, which torch takes at any rank (with an int output_size; a tuple needs n + 1 dims)."""
    base = catalog_rule(f"AdaptiveAvgPool{n}d", ("output_size",))

    def rule(input, output_size):
        x = _t(input)
        raw = _plain(output_size)
        if isinstance(raw, (tuple, list)) and len(x.shape) < n + 1:
            raise ShapeProblem(f"expects an input of at least {n + 1} dims for output_size={_describe(output_size)}, "
                               f"got {x}")
        sizes = list(raw) if isinstance(raw, (tuple, list)) else [raw] * n
        spatial = [d.value for d in x.shape[len(x.shape) - n:]] if len(x.shape) >= n else []
        resolved = [d if s is None else s for s, d in zip(sizes, spatial)]
        if len(x.shape) >= n and len(sizes) == n and resolved == [1] * n and len(x.shape) not in (n + 1, n + 2):
            if x.dtype != "float":
                raise dtype_problem(FLOAT_ONLY, x.dtype)
            return TensorInfo((*x.shape[: len(x.shape) - n], *[Val(1)] * n), x.dtype)
        return base(input, output_size)

    return rule


# ---------------------------------------------------------------- losses as functions
@dataclass(frozen=True)
class LossForm:
    """The functional form of a catalog loss (F.cross_entropy of CrossEntropyLoss): one rule per loss, the
    layer's. The function's tensors are the layer's forward inputs (``tensors``, as F names them:
    F.poisson_nll_loss's ``input`` is PoissonNLLLoss's ``log_input``); its other parameters (``args``, in torch's
    order) are bound as the layer's constructor binds them, so that the same checks, shape rule (``rule``), dtype
    wants (``check_dtypes``) and class-index bound (``classes``) apply. A ``weight`` torch's function takes and
    the layer does not (F.mse_loss's, F.huber_loss's) is None only, as the catalog's class weights are; a number
    for F.gaussian_nll_loss's ``var`` is one variance for every element, as torch reads it."""

    layer: str
    tensors: tuple[str, ...]
    args: tuple[str, ...]

    def params(self) -> tuple[tuple[str, Any], ...]:
        entry = CATALOG[self.layer]
        out = [(name, NO_DEFAULT) for name in self.tensors]
        for name in self.args:
            arg = entry.arg(name)
            default = None if arg is None else arg.default
            out.append((name, None if default is None else Val(default)))
        return tuple(out)

    def bound(self, values):
        """(the layer's bound arguments, the tensors) of one call, or the refusal the layer makes."""
        entry = CATALOG[self.layer]
        k = len(self.tensors)
        tensors = [self._tensor(name, v, values[0]) for name, v in zip(self.tensors, values[:k])]
        given = {}
        for name, v in zip(self.args, values[k:]):
            arg = entry.arg(name)
            if isinstance(v, TensorInfo) and name not in ("weight", "pos_weight"):
                describe = arg.type.describe if arg is not None else "a number"
                raise ShapeProblem(f"expects {name} to be {describe}, got a tensor {v}")
            if arg is None:  # F's weight beside a layer that takes none: None only, as the catalog's
                try:
                    NONE_ONLY(_plain(v))
                except ArgProblem as exc:
                    raise ShapeProblem(f"{name!r} {exc}") from None
                continue
            given[name] = Val(None) if v is None else v
        try:
            bound = bind(entry, [], given, ())
        except ArgError as exc:
            raise ShapeProblem(exc.message.replace("argument ", "", 1), hint=exc.hint) from None
        return bound, tensors

    def _tensor(self, name: str, v, first) -> TensorInfo:
        if name == "var" and not isinstance(v, TensorInfo) and isinstance(first, TensorInfo):
            number = _plain(v)
            if not isinstance(number, float):  # torch reads a float as one variance; an int or a bool it refuses
                raise ShapeProblem(f"expects var to be a tensor or a float, got {_describe(v)}",
                                   hint="give var as a tensor of variances, or one variance as a float: 1.0")
            if number < 0:  # as torch's check (a nan passes it)
                raise ShapeProblem(f"expects var to be a non-negative variance, got {number}")
            return TensorInfo(tuple(first.shape), "float")  # torch: var * torch.ones_like(input)
        return _t(v, name)

    def entry(self):
        """The layer, its inputs named as the function names them (F.poisson_nll_loss's ``input``), for messages."""
        entry = CATALOG[self.layer]
        return entry if entry.inputs == self.tensors else dataclasses.replace(entry, inputs=self.tensors)

    def __call__(self, *values):
        entry = self.entry()
        bound, tensors = self.bound(values)
        shapes = tuple(tuple(t.shape) for t in tensors)
        entry.check_dtypes(bound, [t.dtype for t in tensors], shapes)
        out = entry.rule(bound, *shapes)
        return TensorInfo(tuple(d if isinstance(d, Val) else Val(d) for d in out),
                          entry.output_dtypes(bound, out, tensors[0].dtype))

    def indexes(self, *values):
        """(the target, the class count) where the target holds class indices (the layer's ``classes``): its
        values stay below the count, as the layer's do."""
        entry = CATALOG[self.layer]
        bound, tensors = self.bound(values)
        found = entry.classes(bound, *(tuple(t.shape) for t in tensors))
        if found is None:
            return None
        i, n = found
        return tensors[i], Val(n)


# Each loss of the catalog as torch.nn.functional spells it: its tensors, then its other parameters in torch's
# order. torch's own torch.kl_div, torch.ctc_loss, ... are the ATen kernels, which take reduction as an enum
# integer and other parameters than F's: they are not spellings of these.
LOSS_FORMS = {
    "mse_loss": LossForm("MSELoss", ("input", "target"), ("size_average", "reduce", "reduction", "weight")),
    "l1_loss": LossForm("L1Loss", ("input", "target"), ("size_average", "reduce", "reduction", "weight")),
    "smooth_l1_loss": LossForm("SmoothL1Loss", ("input", "target"), ("size_average", "reduce", "reduction", "beta")),
    "huber_loss": LossForm("HuberLoss", ("input", "target"), ("reduction", "delta", "weight")),
    "cross_entropy": LossForm("CrossEntropyLoss", ("input", "target"), ("weight", "size_average", "ignore_index",
                                                                          "reduce", "reduction", "label_smoothing")),
    "nll_loss": LossForm("NLLLoss", ("input", "target"), ("weight", "size_average", "ignore_index", "reduce",
                                                          "reduction")),
    "binary_cross_entropy": LossForm("BCELoss", ("input", "target"), ("weight", "size_average", "reduce",
                                                                      "reduction")),
    "binary_cross_entropy_with_logits": LossForm("BCEWithLogitsLoss", ("input", "target"), (
        "weight", "size_average", "reduce", "reduction", "pos_weight")),
    "kl_div": LossForm("KLDivLoss", ("input", "target"), ("size_average", "reduce", "reduction", "log_target")),
    "poisson_nll_loss": LossForm("PoissonNLLLoss", ("input", "target"), ("log_input", "full", "size_average", "eps",
                                                                         "reduce", "reduction")),
    "gaussian_nll_loss": LossForm("GaussianNLLLoss", ("input", "target", "var"), ("full", "eps", "reduction")),
    "cosine_embedding_loss": LossForm("CosineEmbeddingLoss", ("input1", "input2", "target"), (
        "margin", "size_average", "reduce", "reduction")),
    "margin_ranking_loss": LossForm("MarginRankingLoss", ("input1", "input2", "target"), (
        "margin", "size_average", "reduce", "reduction")),
    "triplet_margin_loss": LossForm("TripletMarginLoss", ("anchor", "positive", "negative"), (
        "margin", "p", "eps", "swap", "size_average", "reduce", "reduction")),
    "hinge_embedding_loss": LossForm("HingeEmbeddingLoss", ("input", "target"), ("margin", "size_average", "reduce",
                                                                                 "reduction")),
    "soft_margin_loss": LossForm("SoftMarginLoss", ("input", "target"), ("size_average", "reduce", "reduction")),
    "multilabel_soft_margin_loss": LossForm("MultiLabelSoftMarginLoss", ("input", "target"), (
        "weight", "size_average", "reduce", "reduction")),
    "multi_margin_loss": LossForm("MultiMarginLoss", ("input", "target"), ("p", "margin", "weight", "size_average",
                                                                           "reduce", "reduction")),
    "multilabel_margin_loss": LossForm("MultiLabelMarginLoss", ("input", "target"), ("size_average", "reduce",
                                                                                     "reduction")),
    "ctc_loss": LossForm("CTCLoss", ("log_probs", "targets", "input_lengths", "target_lengths"), (
        "blank", "reduction", "zero_infinity")),
}


def _loss_op(name: str, form: LossForm) -> Op:
    entry = CATALOG[form.layer]
    return Op(name, form.params(), form, "F", method=False, doc=f"{form.layer} as a function: {entry.doc}",
              dtypes=ANY_DTYPE, indexes=form.indexes if entry.classes is not None else None)


def _given(v) -> bool:
    return v is not None and _plain(v) is not None


def _shape_of(v: TensorInfo) -> list:
    return [d.value for d in v.shape]


def layer_norm_rule(input, normalized_shape, weight, bias, eps):
    """F.layer_norm: normalized_shape the trailing dims of the input, weight and bias of that shape."""
    x = _t(input)
    raw = _plain(normalized_shape)
    if not isinstance(raw, (tuple, list)):
        raise ShapeProblem(f"expects normalized_shape to be a tuple of sizes, got {_describe(normalized_shape)}",
                           hint="write it as a tuple: F.layer_norm(x, (C,))")
    items = list(raw)
    shown = _shown(items)
    if not items or not all(is_dim(_plain(s)) and not (isinstance(_plain(s), int) and _plain(s) < 1) for s in items):
        raise ShapeProblem(f"expects normalized_shape to be positive sizes, got {_describe(normalized_shape)}")
    want = [_plain(s) for s in items]
    if len(want) > len(x.shape) or [d.value for d in x.shape[len(x.shape) - len(want):]] != want:
        raise ShapeProblem(f"normalizes over the trailing dims {shown}, but the input is {x}",
                           hint="normalized_shape is the input's last dims: F.layer_norm(x, (x.shape[-1],))")
    for w, what in ((weight, "weight"), (bias, "bias")):
        if _given(w) and _shape_of(_t(w, what)) != want:
            raise ShapeProblem(f"expects {what} of normalized_shape {shown}, got {w}")
    if not _is_number(eps):
        raise ShapeProblem(f"expects eps to be a number, got {_describe(eps)}")
    return same(x)


def group_norm_rule(input, num_groups, weight, bias, eps):
    """F.group_norm: [N, C, *], C a multiple of num_groups; weight and bias [C]."""
    x = _t(input)
    if len(x.shape) < 2:
        raise ShapeProblem(f"expects an input of at least 2 dims [N, C, *], got {x}")
    g = _int(num_groups, "num_groups")
    c = x.shape[1].value
    if g < 1 or _exact_div(c, g) is None:
        raise ShapeProblem(f"num_groups={g} must divide the {c} channels of {x}",
                           hint="pick a number of groups that divides the channel dim (dim 1)")
    per_group = [d.value for i, d in enumerate(x.shape) if i != 1]
    fixed = prod(v for v in per_group if isinstance(v, int)) * (c // g if isinstance(c, int) else 1)
    if fixed == 1 and (isinstance(c, int) or _exact_div(c, g) == 1):  # torch checks this in eval too
        batchy = "" if all(isinstance(v, int) for v in per_group) else " (where its symbolic sizes are 1)"
        raise ShapeProblem(f"would normalize a single value per group of {x}{batchy}",
                           hint="use fewer groups, or an input with more values per channel")
    for w, what in ((weight, "weight"), (bias, "bias")):
        if _given(w) and _shape_of(_t(w, what)) != [c]:
            raise ShapeProblem(f"expects {what} of the channels [{c}], got {w}")
    if not _is_number(eps):
        raise ShapeProblem(f"expects eps to be a number, got {_describe(eps)}")
    return same(x)


def linear_rule(input, weight, bias):
    """F.linear: [..., in] times weight [out, in] (or [in]), plus a bias broadcast to the result."""
    x, w = _t(input), _t(weight, "weight")
    _same_numeric(x, w, "weight")
    if not x.shape or len(w.shape) not in (1, 2):
        raise ShapeProblem(f"expects an input [..., in_features] and a weight [out_features, in_features], "
                           f"got {x} and {w}")
    if x.shape[-1].value != w.shape[-1].value:
        raise ShapeProblem(f"cannot apply a weight {w} to {x}: in_features {w.shape[-1].value} against "
                           f"{x.shape[-1].value}", hint="the weight's last dim must be the input's last dim")
    out = (*x.shape[:-1], w.shape[0]) if len(w.shape) == 2 else tuple(x.shape[:-1])
    if _given(bias):
        b = _t(bias, "bias")
        if len(w.shape) == 1 and len(x.shape) == 2:  # torch's addmm, which takes matrices
            raise ShapeProblem(f"takes a bias with a 1-d weight {w} only on an input of other than 2 dims, got {x}",
                               hint="make the weight 2-d: weight[None]")
        _same_numeric(x, b, "bias")
        try:
            fits = _shape_of(broadcast(b, TensorInfo(out), "add")) == [d.value for d in out]
        except ShapeProblem:
            fits = False
        if not fits:
            raise ShapeProblem(f"expects a bias of [out_features] that adds to {shape_str(out)}, got {b}")
    return TensorInfo(out, x.dtype)


def linear_macs(out, input, weight, *_):
    return prod(d.value for d in out.shape) * input.shape[-1].value


def embedding_rule(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    """F.embedding: long indices of any shape, a weight [num_embeddings, embedding_dim]: [*indices, dim]."""
    idx, w = _t(input), _t(weight, "weight")
    if idx.dtype != "long":
        raise ShapeProblem(f"expects long indices, but the input is a {idx.dtype} tensor {idx}",
                           hint="declare the input as Long[...], or convert it: x.long()")
    if len(w.shape) != 2:
        raise ShapeProblem(f"expects a weight [num_embeddings, embedding_dim], got {w}")
    if _given(padding_idx):
        p, n = _int(padding_idx, "padding_idx"), w.shape[0].value
        if not isinstance(n, int):
            raise ShapeProblem(f"cannot check padding_idx={p} against the symbolic number of embeddings {n}",
                               hint="give the weight a fixed number of rows")
        if not -n <= p < n:
            raise ShapeProblem(f"padding_idx={p} is out of range for {n} embeddings: it must be in {-n}..{n - 1}")
    for v, what in ((max_norm, "max_norm"), (norm_type, "norm_type")):
        if _given(v) and not _is_number(v):
            raise ShapeProblem(f"expects {what} to be a number, got {_describe(v)}")
    if _given(max_norm) and w.dtype != "float":  # torch renormalizes the rows it picks, in place
        raise dtype_problem(FLOAT_ONLY, w.dtype, "weight (with max_norm)")
    _bool(scale_grad_by_freq, "scale_grad_by_freq")
    _bool(sparse, "sparse")
    return TensorInfo((*idx.shape, w.shape[1]), w.dtype)


# ---------------------------------------------------------------- tensor methods
def unbind_rule(input, dim):
    """x.unbind(dim): one tensor per index of that dim, which must be a fixed size."""
    x = _t(input)
    d = norm_dim(dim, len(x.shape), "dim", x, scalar_ok=False)
    n = x.shape[d].value
    if not isinstance(n, int):
        raise ShapeProblem(f"cannot unbind the symbolic dim {n} of {x}: the number of tensors would depend on it",
                           hint="unbind a dim of fixed size, or index it: x[:, 0]")
    _few_pieces(n)
    rest = tuple(v for i, v in enumerate(x.shape) if i != d)
    return [TensorInfo(rest, x.dtype) for _ in range(n)]


def norm_rule(input, p, dim, keepdim):
    """x.norm(p, dim, keepdim): a vector norm over dim (every dim by default), 'fro' or 'nuc' of matrices."""
    x = _t(input)
    pv = _plain(p)
    keep = _bool(keepdim, "keepdim")
    if isinstance(pv, str) and not isinstance(pv, (DType, Device)):
        if pv not in ("fro", "nuc"):
            raise ShapeProblem(f"p must be a number, 'fro' or 'nuc', got {pv!r}")
    elif not _is_number(p):
        raise ShapeProblem(f"p must be a number, 'fro' or 'nuc', got {_describe(p)}")
    raw = _plain(dim) if dim is not None else None
    dims = list(range(len(x.shape))) if raw is None or raw == () or raw == [] else _dim_list(dim, x)
    if pv == "nuc" and (raw is None and len(x.shape) != 2 or raw is not None and (
            not isinstance(raw, (tuple, list)) or len(raw) != 2)):
        raise ShapeProblem("takes p='nuc' only with dim= of two dims (a matrix norm)",
                           hint="write x.norm('nuc', dim=(-2, -1))")
    if pv == "fro" and isinstance(raw, (tuple, list)) and len(raw) > 2:
        raise ShapeProblem(f"takes p='fro' over one or two dims, got dim={_shown(raw)}",
                           hint="flatten first, or give p=2 for a vector norm over more dims")
    return _reduced(x, dims, keep, "float")


def flip_rule(input, dims):
    x = _t(input)
    items = _size_list(dims, "dims")
    _dim_list(Val(tuple(items)), x, "dims")
    return same(x)


def roll_rule(input, shifts, dims):
    """x.roll(shifts, dims): each shift along its dim; without dims, of the flattened tensor (one shift)."""
    x = _t(input)
    raw = _plain(shifts)
    sh = list(raw) if isinstance(raw, (tuple, list)) else [shifts]
    if not sh:
        raise ShapeProblem("needs at least one shift")
    for s in sh:
        _int(s, "shifts")
    rd = _plain(dims) if dims is not None else None
    ds = [] if rd is None else list(rd) if isinstance(rd, (tuple, list)) else [dims]
    if ds or rd is not None and len(sh) != 1:
        if len(ds) != len(sh):
            raise ShapeProblem(f"takes one shift for each dim, got shifts={_shown(sh)} and dims={_shown(ds)}")
        for d in ds:
            norm_dim(d, len(x.shape), "dims", x)
    elif len(sh) != 1:
        raise ShapeProblem(f"without dims, rolls the flattened tensor by one shift, got shifts={_shown(sh)}",
                           hint="give a dim for each shift: x.roll((1, 2), dims=(0, 1))")
    return same(x)


def _long_index(idx: TensorInfo, what: str = "index") -> None:
    if idx.dtype != "long":
        raise ShapeProblem(f"expects a long {what}, but it is a {idx.dtype} tensor {idx}",
                           hint="indices are integers: make them long with .long(), or take them from argmax/topk")


def gather_rule(input, dim, index, sparse_grad):
    """x.gather(dim, index): the index's shape; along the other dims it may not be larger than x."""
    x, idx = _t(input), _t(index, "index")
    d = norm_dim(dim, len(x.shape), "dim", x)
    _bool(sparse_grad, "sparse_grad")
    if any(d.value == 0 for d in idx.shape):  # an empty index gathers nothing: torch checks neither size nor dtype
        return TensorInfo(tuple(idx.shape), x.dtype)
    _long_index(idx)
    if max(len(idx.shape), 1) != max(len(x.shape), 1):
        raise ShapeProblem(f"expects an index with as many dims as the input {x}, got {idx}")
    for i, (a, b) in enumerate(zip(idx.shape, x.shape)):
        if i != d and isinstance(b.value - a.value, int) and b.value - a.value < 0:  # symbolic: see gather_needs
            raise ShapeProblem(f"index {idx} is larger than the input {x} in dim {i} (only dim {d} may differ)",
                               hint="the index may be smaller than the input in the other dims, not larger")
    return TensorInfo(tuple(idx.shape), x.dtype)


def gather_needs(input, dim, index, *_):
    d = norm_dim(dim, len(input.shape))
    if any(v.value == 0 for v in index.shape) or max(len(index.shape), 1) != max(len(input.shape), 1):
        return []
    return [(b.value - a.value + 1, f"index dim {i} ({a.value}) at most the input's ({b.value})")
            for i, (a, b) in enumerate(zip(index.shape, input.shape)) if i != d]


def _dim_index(input, dim, index, *_):
    """gather and index_select read index's values as positions along dim of input."""
    return index, input.shape[norm_dim(dim, len(input.shape))] if input.shape else Val(1)


def index_select_rule(input, dim, index):
    """x.index_select(dim, index): that dim becomes the length of the 1-d index."""
    x, idx = _t(input), _t(index, "index")
    _long_index(idx)
    if len(idx.shape) > 1:
        raise ShapeProblem(f"expects a 1-d index, got {idx}", hint="flatten it first: index.flatten()")
    d = norm_dim(dim, len(x.shape), "dim", x)
    n = idx.shape[0] if idx.shape else Val(1)
    if not x.shape:
        if n.value != 1:
            raise ShapeProblem(f"takes one index from a 0-d tensor, got {idx}")
        return same(x)
    return TensorInfo(tuple(n if i == d else v for i, v in enumerate(x.shape)), x.dtype)


def topk_rule(input, k, dim, largest, sorted):
    """x.topk(k, dim): (values, indices), that dim cut to k."""
    x = _t(input)
    kv = _plain(k)
    if not is_dim(kv) or isinstance(kv, int) and kv < 0:
        raise ShapeProblem(f"k must be a non-negative integer, got {_describe(k)}")
    d = norm_dim(dim, len(x.shape), "dim", x)
    size = x.shape[d].value if x.shape else 1
    if isinstance(size - kv, int) and kv > size:  # symbolic: see topk_needs
        raise ShapeProblem(f"k={kv} is larger than dim {d} of {x} ({size})",
                           hint="k is at most the size of the dim it picks from")
    _bool(largest, "largest")
    _bool(sorted, "sorted")
    shape = tuple(k if i == d and isinstance(k, Val) else Val(kv) if i == d else v for i, v in enumerate(x.shape))
    return [TensorInfo(shape, x.dtype), TensorInfo(shape, "long")]


def topk_needs(input, k, dim, *_):
    size = input.shape[norm_dim(dim, len(input.shape))].value if input.shape else 1
    return [(size - _plain(k) + 1, f"k={_plain(k)} at most dim {_plain(dim)} ({size})")]


def to_rule(input, dtype, non_blocking, copy):
    """x.to(dtype), x.to(other) (other's dtype): a copy in another dtype, on the module's device."""
    x = _t(input)
    if isinstance(dtype, TensorInfo):
        d = dtype.dtype
    else:
        if not isinstance(_plain(dtype), DType):
            raise ShapeProblem(f"expects a dtype such as torch.long, or a tensor to match, got {_describe(dtype)}",
                               hint="the module keeps every tensor on its own device; change dtypes with "
                                    "x.to(torch.long), x.float() or x.long()")
        d = str(_plain(dtype))
    _bool(non_blocking, "non_blocking")
    _bool(copy, "copy")
    return TensorInfo(tuple(x.shape), d)


def cast_rule(dtype: str):
    def rule(input):
        return TensorInfo(tuple(_t(input).shape), dtype)

    return rule


def type_as_rule(input, other):
    return TensorInfo(tuple(_t(input).shape), _t(other, "other").dtype)


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
_CREATED = (("*", None), ("dtype", None), ("device", None))  # creation's keyword-only dtype= and device=
_AVG_POOL = (("kernel_size", NO_DEFAULT), ("stride", None), ("padding", Val(0)), ("ceil_mode", Val(False)),
             ("count_include_pad", Val(True)), ("divisor_override", None))
_MAX_POOL = (("kernel_size", NO_DEFAULT), ("stride", None), ("padding", Val(0)), ("dilation", Val(1)),
             ("ceil_mode", Val(False)), ("return_indices", Val(False)))

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
           doc="clamp to [min, max] (numbers or tensors)", dtypes=ANY_DTYPE),
        Op("clip", (("input", NO_DEFAULT), ("min", None), ("max", None)), clamp_rule, "torch",
           doc="clamp, by its other name", dtypes=ANY_DTYPE),
        Op("add", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("alpha", None)), _binary("add"),
           "torch", doc="input + alpha * other, broadcasting", dtypes=ANY_DTYPE, note=broadcast_note),
        Op("sub", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("alpha", None)),
           _binary("subtract"), "torch", doc="input - alpha * other, broadcasting", dtypes=NUMERIC,
           note=broadcast_note),
        Op("mul", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), _binary("multiply"), "torch",
           doc="input * other, broadcasting", dtypes=ANY_DTYPE, note=broadcast_note),
        Op("div", (("input", NO_DEFAULT), ("other", NO_DEFAULT), ("*", None), ("rounding_mode", None)),
           _division, "torch", doc="input / other, broadcasting; rounding_mode None, 'trunc' or 'floor'",
           dtypes=ANY_DTYPE, note=broadcast_note),
        Op("pow", (("input", NO_DEFAULT), ("exponent", NO_DEFAULT)), _power, "torch",
           doc="input ** exponent, broadcasting", dtypes=ANY_DTYPE, note=broadcast_note),
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
           dtypes=ANY_DTYPE, note=flatten_note),
        Op("view", (("input", NO_DEFAULT), ("*size", None)), view_rule, None, dtypes=ANY_DTYPE, note=view_note),
        Op("reshape", (("input", NO_DEFAULT), ("shape", NO_DEFAULT)), reshape_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*shape", None)), dtypes=ANY_DTYPE, note=view_note),
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
        Op("cat", (("tensors", NO_DEFAULT), ("dim", Val(0))), cat_rule, "torch", method=False, dtypes=ANY_DTYPE,
           note=cat_note),
        Op("stack", (("tensors", NO_DEFAULT), ("dim", Val(0))), stack_rule, "torch", method=False,
           dtypes=ANY_DTYPE, note=stack_note),
        # no promotion: one dtype on both sides (the rules check)
        Op("matmul", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), matmul_rule, "torch", macs=matmul_macs,
           dtypes=NUMERIC, note=matmul_note),
        Op("bmm", (("input", NO_DEFAULT), ("mat2", NO_DEFAULT)), bmm_rule, "torch", macs=matmul_macs,
           dtypes=NUMERIC, note=matmul_note),
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
        # ---- creation: a new tensor from sizes (forward prints device= beside them) or like another
        Op("arange", (("start", Val(0)), ("end", NO_DEFAULT), ("step", Val(1)), *_CREATED), arange_rule, "torch",
           method=False, doc="start, start + step, ... up to end (excluded); long for integers",
           overload=_arange_overload, creates=True, dtypes=ANY_DTYPE),
        *(Op(name, (("*size", None), *_CREATED), filled_rule(kind), "torch", method=False, doc=doc,
             creates=True, float_like=True, dtypes=ANY_DTYPE)
          for name, kind, doc in (("zeros", "", "a tensor of zeros"), ("ones", "", "a tensor of ones"),
                                  ("empty", "", "a tensor whose values are whatever its memory held"),
                                  ("randn", "normal", "normal random numbers (torch's generator)"),
                                  ("rand", "uniform", "uniform random numbers in [0, 1)"))),
        Op("full", (("size", NO_DEFAULT), ("fill_value", NO_DEFAULT), *_CREATED), full_rule, "torch", method=False,
           doc="a tensor of one value; its dtype is the value's", creates=True, float_like=True, dtypes=ANY_DTYPE),
        Op("randint", (("low", Val(0)), ("high", NO_DEFAULT), ("size", NO_DEFAULT), *_CREATED), randint_rule, "torch",
           method=False, doc="random integers in [low, high)", overload=_low_optional(0, ("low", "high", "size")),
           creates=True, needs=randint_needs, dtypes=ANY_DTYPE),
        *(Op(f"{name}_like", (("input", NO_DEFAULT), ("*", None), ("dtype", None)), like_rule(kind), "torch",
             method=False, doc=f"{name} of the input's shape and dtype", dtypes=ANY_DTYPE)
          for name, kind in (("zeros", ""), ("ones", ""), ("empty", ""), ("randn", "normal"), ("rand", "uniform"))),
        Op("full_like", (("input", NO_DEFAULT), ("fill_value", NO_DEFAULT), ("*", None), ("dtype", None)),
           like_rule("full"), "torch", method=False, doc="full of the input's shape and dtype", dtypes=ANY_DTYPE),
        Op("randint_like", (("input", NO_DEFAULT), ("low", Val(0)), ("high", NO_DEFAULT), ("*", None), ("dtype", None)),
           like_rule("int"), "torch", method=False, doc="randint of the input's shape and dtype",
           overload=_low_optional(1, ("low", "high")), needs=lambda input, low, high, *_: _bounds_need(low, high),
           dtypes=ANY_DTYPE),
        # ---- broadcasting and copying
        Op("expand", (("input", NO_DEFAULT), ("*size", None)), expand_rule, None,
           doc="a view with dims of 1 stretched (-1 keeps a dim)", dtypes=ANY_DTYPE),
        Op("expand_as", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), expand_as_rule, None,
           doc="expand to the other tensor's shape", dtypes=ANY_DTYPE),
        Op("broadcast_to", (("input", NO_DEFAULT), ("size", NO_DEFAULT)), broadcast_to_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*size", None)), doc="expand, as a function", dtypes=ANY_DTYPE),
        Op("repeat", (("input", NO_DEFAULT), ("*repeats", None)), repeat_rule, None,
           doc="copies along each dim, a count per dim", dtypes=ANY_DTYPE),
        Op("tile", (("input", NO_DEFAULT), ("dims", NO_DEFAULT)), tile_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*dims", None)), doc="repeat, fewer counts padded with 1s",
           dtypes=ANY_DTYPE),
        # ---- masks, comparisons and logic
        Op("tril", (("input", NO_DEFAULT), ("diagonal", Val(0))), tri_rule, "torch",
           doc="the lower triangle of the last two dims", dtypes=ANY_DTYPE),
        Op("triu", (("input", NO_DEFAULT), ("diagonal", Val(0))), tri_rule, "torch",
           doc="the upper triangle of the last two dims", dtypes=ANY_DTYPE),
        Op("masked_fill", (("input", NO_DEFAULT), ("mask", NO_DEFAULT), ("value", NO_DEFAULT)), masked_fill_rule,
           "torch", doc="value where the bool mask is True", dtypes=ANY_DTYPE),
        Op("where", (("condition", NO_DEFAULT), ("input", NO_DEFAULT), ("other", NO_DEFAULT)), where_rule, "torch",
           method=False, doc="input where the bool condition holds, else other; broadcast and promoted",
           overload=_where_overload, dtypes=ANY_DTYPE),
        *(Op(name, (("input", NO_DEFAULT), ("other", NO_DEFAULT)), _compare("compare"), "torch",
             doc=f"input {sign} other, a bool tensor", dtypes=ANY_DTYPE, note=broadcast_note)
          for name, sign in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="))),
        *(Op(f"bitwise_{name}", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), _bitwise(f"take `{sign}`"), "torch",
             doc=f"input {sign} other: logic on bools, bits on integers", dtypes=("bool", "long"),
             note=broadcast_note)
          for name, sign in (("and", "&"), ("or", "|"), ("xor", "^"))),
        Op("bitwise_not", _INPUT, same, "torch", doc="~input: not of bools, bits flipped on integers",
           dtypes=("bool", "long")),
        *(Op(f"logical_{name}", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), _logical, "torch",
             doc=f"{name} of two tensors read as bools", dtypes=ANY_DTYPE, note=broadcast_note)
          for name in ("and", "or", "xor")),
        Op("logical_not", _INPUT, _logical, "torch", doc="not of a tensor read as bools", dtypes=ANY_DTYPE),
        # ---- contraction and functional forms
        Op("einsum", (("equation", NO_DEFAULT), ("*operands", None)), einsum_rule, "torch", method=False,
           doc="sums of products, the shape read from the equation", macs=einsum_macs, overload=_einsum_overload,
           dtypes=ANY_DTYPE),
        Op("scaled_dot_product_attention",
           (("query", NO_DEFAULT), ("key", NO_DEFAULT), ("value", NO_DEFAULT), ("attn_mask", None),
            ("dropout_p", Val(0.0)), ("is_causal", Val(False)), ("scale", None), ("enable_gqa", Val(False))),
           sdpa_rule, "F", method=False, doc="softmax(Q K^T / sqrt(E) + mask) V", macs=sdpa_macs, dtypes=ANY_DTYPE),
        Op("interpolate",
           (("input", NO_DEFAULT), ("size", None), ("scale_factor", None), ("mode", Val("nearest")),
            ("align_corners", None), ("recompute_scale_factor", None), ("antialias", Val(False))),
           interpolate_rule, "F", method=False, doc="resize the spatial dims", dtypes=ANY_DTYPE),
        Op("pad", (("input", NO_DEFAULT), ("pad", NO_DEFAULT), ("mode", Val("constant")), ("value", None)), pad_rule,
           "F", method=False, doc="pad (or crop) the last dims", needs=pad_needs, dtypes=ANY_DTYPE),
        *(Op(f"adaptive_{kind}_pool{n}d", (("input", NO_DEFAULT), ("output_size", NO_DEFAULT),
                                         *((("return_indices", Val(False)),) if kind == "max" else ())),
             adaptive_avg_rule(n) if kind == "avg" and n > 1 else
             catalog_rule(f"Adaptive{kind.capitalize()}Pool{n}d",
                          ("output_size", "return_indices") if kind == "max" else ("output_size",)),
             "F", method=False, doc=f"Adaptive{kind.capitalize()}Pool{n}d as a function", dtypes=ANY_DTYPE)
          for kind in ("avg", "max") for n in (1, 2, 3)),
        *(Op(f"avg_pool{n}d", (("input", NO_DEFAULT), *_AVG_POOL[: 6 if n > 1 else 5]),
             catalog_rule(f"AvgPool{n}d", tuple(p for p, _ in _AVG_POOL[: 6 if n > 1 else 5])), "F", method=False,
             doc=f"AvgPool{n}d as a function", needs=avg_pool3d_needs if n == 3 else None, dtypes=ANY_DTYPE)
          for n in (1, 2, 3)),
        *(Op(f"max_pool{n}d", (("input", NO_DEFAULT), *_MAX_POOL), catalog_rule(f"MaxPool{n}d", tuple(
             p for p, _ in _MAX_POOL)), "F", method=False, doc=f"MaxPool{n}d as a function", dtypes=ANY_DTYPE)
          for n in (1, 2, 3)),
        # ---- the losses of the catalog as functions: their rules, wants and class-index bounds
        *(_loss_op(name, form) for name, form in LOSS_FORMS.items()),
        Op("layer_norm", (("input", NO_DEFAULT), ("normalized_shape", NO_DEFAULT), ("weight", None), ("bias", None),
                          ("eps", Val(1e-5))), layer_norm_rule, "F", method=False, doc="LayerNorm as a function"),
        Op("group_norm", (("input", NO_DEFAULT), ("num_groups", NO_DEFAULT), ("weight", None), ("bias", None),
                          ("eps", Val(1e-5))), group_norm_rule, "F", method=False, doc="GroupNorm as a function"),
        Op("linear", (("input", NO_DEFAULT), ("weight", NO_DEFAULT), ("bias", None)), linear_rule, "F", method=False,
           doc="x @ weight.T + bias", macs=linear_macs, dtypes=NUMERIC),
        Op("embedding", (("input", NO_DEFAULT), ("weight", NO_DEFAULT), ("padding_idx", None), ("max_norm", None),
                         ("norm_type", Val(2.0)), ("scale_grad_by_freq", Val(False)), ("sparse", Val(False))),
           embedding_rule, "F", method=False, doc="rows of weight picked by long indices",
           indexes=lambda input, weight, *_: (input, weight.shape[0]), dtypes=ANY_DTYPE),
        # ---- more tensor methods
        Op("unbind", (("input", NO_DEFAULT), ("dim", Val(0))), unbind_rule, "torch",
           doc="a tuple of the slices along dim", dtypes=ANY_DTYPE),
        Op("norm", (("input", NO_DEFAULT), ("p", Val("fro")), ("dim", None), ("keepdim", Val(False))), norm_rule,
           "torch", doc="the p-norm over dim (every dim by default)"),
        Op("flip", (("input", NO_DEFAULT), ("dims", NO_DEFAULT)), flip_rule, "torch",
           method_params=(("input", NO_DEFAULT), ("*dims", None)), doc="reverse the order along dims",
           dtypes=ANY_DTYPE),
        Op("roll", (("input", NO_DEFAULT), ("shifts", NO_DEFAULT), ("dims", None)), roll_rule, "torch",
           doc="shift elements around along dims", dtypes=ANY_DTYPE),
        Op("gather", (("input", NO_DEFAULT), ("dim", NO_DEFAULT), ("index", NO_DEFAULT), ("*", None),
                      ("sparse_grad", Val(False))), gather_rule, "torch", needs=gather_needs, indexes=_dim_index,
           doc="values picked along dim by a long index of the result's shape", dtypes=ANY_DTYPE),
        Op("index_select", (("input", NO_DEFAULT), ("dim", NO_DEFAULT), ("index", NO_DEFAULT)), index_select_rule,
           "torch", doc="the slices of dim a 1-d long index names", indexes=_dim_index, dtypes=ANY_DTYPE),
        Op("topk", (("input", NO_DEFAULT), ("k", NO_DEFAULT), ("dim", Val(-1)), ("largest", Val(True)),
                    ("sorted", Val(True))), topk_rule, "torch", doc="(values, indices) of the k largest along dim",
           needs=topk_needs,
           dtypes=NUMERIC),
        Op("to", (("input", NO_DEFAULT), ("dtype", NO_DEFAULT), ("non_blocking", Val(False)), ("copy", Val(False))),
           to_rule, None, doc="a copy in another dtype (or another tensor's)", dtypes=ANY_DTYPE),
        *(Op(name, _INPUT, cast_rule(dtype), None, doc=f"x.to(torch.{name})", dtypes=ANY_DTYPE)
          for name, dtype in (("float", "float"), ("long", "long"), ("bool", "bool"))),
        Op("type_as", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), type_as_rule, None,
           doc="x in the other tensor's dtype", dtypes=ANY_DTYPE),
    ]
}

_OPERANDS = (("left", NO_DEFAULT), ("right", NO_DEFAULT))

# Python's arithmetic on tensors in forward (``x + y``, ``2 * x``, ``-x``), as entries of the same kind: most
# are a torch function; ``//`` and ``%`` promote and refuse as div with a rounding_mode does.
OPERATORS: dict[str, Op] = {
    "+": OPS["add"], "-": OPS["sub"], "*": OPS["mul"], "/": OPS["div"], "**": OPS["pow"],
    "//": Op("//", _OPERANDS, _rounded("floor-divide"), None, method=False, dtypes=ANY_DTYPE, note=broadcast_note),
    "%": Op("%", _OPERANDS, _rounded("take the remainder of"), None, method=False, dtypes=ANY_DTYPE,
            note=broadcast_note),
    "<": OPS["lt"], "<=": OPS["le"], ">": OPS["gt"], ">=": OPS["ge"], "==": OPS["eq"], "!=": OPS["ne"],
    "&": OPS["bitwise_and"], "|": OPS["bitwise_or"], "^": OPS["bitwise_xor"],
}
UNARY: dict[str, Op] = {
    "-": OPS["neg"],
    "~": OPS["bitwise_not"],
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


# parameters that may be given a tensor by keyword
TENSOR_PARAMS = {"input", "other", "tensor", "tensors", "mat2", "exponent", "weight", "bias", "query", "key", "value",
                 "attn_mask", "mask", "condition", "index", "min", "max",
                 # the losses' (pos_weight too, which is refused as a tensor of weights in the loss's own words)
                 "target", "var", "input1", "input2", "anchor", "positive", "negative", "log_probs", "targets",
                 "input_lengths", "target_lengths", "pos_weight"}


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
    if op.overload is not None:
        args, kwargs = op.overload(list(args), dict(kwargs), method)
    values = bind_op(op, args, kwargs, method, ns)
    check_dtypes(op, values, [n.lstrip("*") for n, _ in op_params(op, method, ns) if n != "*"])
    out = op.rule(*values)
    check_elements(out)
    return out if op.result is None else _retyped(out, op.result)


def op_needs(op: Op, args: list, kwargs: dict, method: bool = False, ns: str | None = None) -> list:
    """The symbolic sizes a call that `apply_op` accepted needs to be at least 1: [(size, what it means)]."""
    if op.needs is None:
        return []
    if op.overload is not None:
        args, kwargs = op.overload(list(args), dict(kwargs), method)
    return [(n, what) for n, what in op.needs(*bind_op(op, args, kwargs, method, ns)) if isinstance(n, Sym)]


def op_indexes(op: Op, args: list, kwargs: dict, method: bool = False, ns: str | None = None):
    """(index tensor, the bound its values must stay below) of a call that reads indices, else None."""
    if op.indexes is None:
        return None
    if op.overload is not None:
        args, kwargs = op.overload(list(args), dict(kwargs), method)
    return op.indexes(*bind_op(op, args, kwargs, method, ns))


def op_note(op: Op, label: str, out, args: list, kwargs: dict, method: bool = False, ns: str | None = None):
    """What --explain says of one call that `apply_op` accepted (an `OpNote`), or None: ``op.note`` of the
    bound values, spelled ``label`` (``torch.bmm``, ``.view``, ``+``)."""
    if op.note is None:
        return None
    if op.overload is not None:
        args, kwargs = op.overload(list(args), dict(kwargs), method)
    return op.note(label, out, *bind_op(op, args, kwargs, method, ns))


def op_macs(op: Op, out, args: list, kwargs: dict, method: bool = False, ns: str | None = None):
    """The multiply-adds of one call whose result `apply_op` gave as ``out``: ``op.macs`` of the bound values."""
    if op.overload is not None:
        args, kwargs = op.overload(list(args), dict(kwargs), method)
    return op.macs(out, *bind_op(op, args, kwargs, method, ns))


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
