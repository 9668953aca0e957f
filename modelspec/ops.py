"""Tensor operations usable in ``forward``: a table, like the layer catalog.

Each `Op` names its torch spelling (``F.relu``, ``torch.cat``, the method
``x.view``), its parameters as torch names them, and a shape rule over
`TensorInfo` inputs (dims are `Val`s, possibly symbolic). A rule raises
`ShapeProblem` in the spec's terms; the elaborator adds the place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .layers.base import ShapeProblem, prod
from .model import TensorInfo
from .shapes import Sym, Val, is_dim

NO_DEFAULT = object()


@dataclass(frozen=True)
class Op:
    name: str
    params: tuple[tuple[str, Any], ...]  # (name, default); "*name" collects the rest
    rule: Callable[..., Any]
    function: str | None  # "F" / "torch" namespace for the call form, None if method only
    method: bool = True
    doc: str = ""
    training_arg: bool = False  # F.dropout: pass training=self.training
    macs: Callable | None = None


def _t(x, what="input") -> TensorInfo:
    if not isinstance(x, TensorInfo):
        raise ShapeProblem(f"expects a tensor as {what}, got {_describe(x)}")
    return x


def _describe(x) -> str:
    if isinstance(x, TensorInfo):
        return f"a tensor {x}"
    if isinstance(x, Val):
        return repr(x.plain())
    return type(x).__name__


def _int(x, what) -> int:
    v = x.value if isinstance(x, Val) else x
    if not isinstance(v, int) or isinstance(v, bool):
        raise ShapeProblem(f"expects {what} to be an integer, got {_describe(x)}")
    return v


def norm_dim(d, rank: int, what: str = "dim") -> int:
    d = _int(d, what)
    r = max(rank, 1)
    if not -r <= d < r:
        raise ShapeProblem(f"{what}={d} is out of range for a {rank}-d tensor")
    return d % r


def _dims_arg(xs) -> list:
    """view(2, -1) / view((2, -1)) / permute(0, 2, 1) / permute([0, 2, 1])."""
    if len(xs) == 1:
        v = xs[0]
        inner = v.value if isinstance(v, Val) else v
        if isinstance(inner, (tuple, list)):
            return list(inner)
    return list(xs)


def _plain(v):
    return v.value if isinstance(v, Val) else v


# ---------------------------------------------------------------- rules
def same(input, **_):
    return TensorInfo(tuple(_t(input).shape), _t(input).dtype)


def softmax_rule(input, dim=None, **_):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        raise ShapeProblem("needs dim= (which axis sums to 1), e.g. dim=1 for [B, classes]")
    norm_dim(dim, len(x.shape))
    return TensorInfo(tuple(x.shape), x.dtype)


def flatten_rule(input, start_dim=Val(0), end_dim=Val(-1)):
    x = _t(input)
    n = len(x.shape)
    if n == 0:
        return TensorInfo((Val(1),), x.dtype)
    s, e = norm_dim(start_dim, n, "start_dim"), norm_dim(end_dim, n, "end_dim")
    if s > e:
        raise ShapeProblem(f"start_dim={s} comes after end_dim={e}")
    merged = tuple(x.shape[s : e + 1])
    mid = (merged[0],) if len(merged) == 1 else (Val(prod(d.value for d in merged)),)
    return TensorInfo((*x.shape[:s], *mid, *x.shape[e + 1 :]), x.dtype)


def view_rule(input, *shape):
    x = _t(input)
    sizes = [_plain(s) for s in _dims_arg(shape)]
    total = prod(d.value for d in x.shape)
    if sum(1 for s in sizes if s == -1) > 1:
        raise ShapeProblem("can infer at most one -1 dimension")
    for s in sizes:
        if not is_dim(s) or (isinstance(s, int) and s < -1):
            raise ShapeProblem(f"sizes must be integers, got {sizes}")
    known = prod(s for s in sizes if s != -1)
    shown = "(" + ", ".join(str(s) for s in sizes) + ")"
    if -1 in sizes:
        if known == 0 or (isinstance(total, int) and isinstance(known, int) and total % known):
            raise ShapeProblem(f"cannot view {x} ({total} elements) as {shown}: {total} is not a multiple of {known}")
        try:
            rest = total // known
        except TypeError:
            raise ShapeProblem(f"cannot view {x} as {shown}: the -1 cannot be worked out symbolically") from None
        out = [rest if s == -1 else s for s in sizes]
    else:
        if known != total:
            raise ShapeProblem(f"cannot view {x} ({total} elements) as {shown} ({known} elements)")
        out = list(sizes)
    src = [v for v in _dims_arg(shape)]
    dims = tuple(src[i] if isinstance(src[i], Val) and sizes[i] != -1 else Val(out[i]) for i in range(len(out)))
    return TensorInfo(dims, x.dtype)


def size_rule(input, dim=None):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        return Val(tuple(x.shape))
    return x.shape[norm_dim(dim, len(x.shape))]


def dim_rule(input):
    return Val(len(_t(input).shape))


def permute_rule(input, *dims):
    x = _t(input)
    order = [norm_dim(d, len(x.shape)) for d in _dims_arg(dims)]
    if sorted(order) != list(range(len(x.shape))):
        raise ShapeProblem(f"dims {tuple(_plain(d) for d in _dims_arg(dims))} are not a permutation of {len(x.shape)} dims")
    return TensorInfo(tuple(x.shape[i] for i in order), x.dtype)


def transpose_rule(input, dim0, dim1):
    x = _t(input)
    a, b = norm_dim(dim0, len(x.shape), "dim0"), norm_dim(dim1, len(x.shape), "dim1")
    s = list(x.shape)
    s[a], s[b] = s[b], s[a]
    return TensorInfo(tuple(s), x.dtype)


def squeeze_rule(input, dim=None):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        return TensorInfo(tuple(d for d in x.shape if d.value != 1), x.dtype)
    dims = _plain(dim)
    dims = [norm_dim(d, len(x.shape)) for d in (dims if isinstance(dims, (tuple, list)) else [dim])]
    return TensorInfo(tuple(d for i, d in enumerate(x.shape) if not (i in dims and d.value == 1)), x.dtype)


def unsqueeze_rule(input, dim):
    x = _t(input)
    d = norm_dim(dim, len(x.shape) + 1)
    s = list(x.shape)
    s.insert(d, Val(1))
    return TensorInfo(tuple(s), x.dtype)


def _tensors(tensors, what="tensors"):
    items = _plain(tensors)
    if not isinstance(items, (tuple, list)) or not items:
        raise ShapeProblem(f"expects a list of tensors, got {_describe(tensors)}")
    return [_t(t, what) for t in items]


def cat_rule(tensors, dim=Val(0)):
    ts = _tensors(tensors)
    rank = len(ts[0].shape)
    d = norm_dim(dim, rank)
    for t in ts[1:]:
        if len(t.shape) != rank:
            raise ShapeProblem(f"cannot concatenate tensors of different ranks: {ts[0]} and {t}")
        for i in range(rank):
            if i != d and t.shape[i].value != ts[0].shape[i].value:
                raise ShapeProblem(
                    f"along dim={_plain(dim)}, the other dims must match, but {ts[0]} and {t} differ in dim {i}"
                )
    total = ts[0].shape[d].value
    for t in ts[1:]:
        total = total + t.shape[d].value
    s = list(ts[0].shape)
    s[d] = Val(total)
    return TensorInfo(tuple(s), ts[0].dtype)


def stack_rule(tensors, dim=Val(0)):
    ts = _tensors(tensors)
    for t in ts[1:]:
        if [v.value for v in t.shape] != [v.value for v in ts[0].shape]:
            raise ShapeProblem(f"can only stack tensors of one shape, got {ts[0]} and {t}")
    d = norm_dim(dim, len(ts[0].shape) + 1)
    s = list(ts[0].shape)
    s.insert(d, Val(len(ts)))
    return TensorInfo(tuple(s), ts[0].dtype)


def broadcast(a: TensorInfo, b: TensorInfo, op: str) -> TensorInfo:
    """numpy/torch broadcasting, symbolic dims equal only to themselves or 1."""
    out = []
    n = max(len(a.shape), len(b.shape))
    pa = (Val(1),) * (n - len(a.shape)) + tuple(a.shape)
    pb = (Val(1),) * (n - len(b.shape)) + tuple(b.shape)
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x.value == y.value:
            out.append(x if x.code is not None else y)
        elif x.value == 1:
            out.append(y)
        elif y.value == 1:
            out.append(x)
        else:
            raise ShapeProblem(f"cannot {op} {a} and {b}: dim {i - n} is {x.value} against {y.value}")
    dtype = "float" if "float" in (a.dtype, b.dtype) else a.dtype
    return TensorInfo(tuple(out), dtype)


def matmul_rule(input, other):
    a, b = _t(input), _t(other, "other")
    if not a.shape or not b.shape:
        raise ShapeProblem(f"cannot matmul a 0-d tensor ({a} @ {b})")
    sa, sb = list(a.shape), list(b.shape)
    k1 = sa[-1]
    k2 = sb[-2] if len(sb) >= 2 else sb[0]
    if k1.value != k2.value:
        raise ShapeProblem(f"cannot multiply {a} @ {b}: inner dims {k1.value} and {k2.value} differ")
    if len(sa) == 1 and len(sb) == 1:
        return TensorInfo((), a.dtype)
    if len(sb) == 1:
        return TensorInfo(tuple(sa[:-1]), a.dtype)
    if len(sa) == 1:
        return TensorInfo((*sb[:-2], sb[-1]), a.dtype)
    batch = broadcast(TensorInfo(tuple(sa[:-2])), TensorInfo(tuple(sb[:-2])), "batch-broadcast").shape
    return TensorInfo((*batch, sa[-2], sb[-1]), a.dtype)


def matmul_macs(out, input, other):
    k = input.shape[-1].value
    return prod(d.value for d in out.shape) * k


def bmm_rule(input, mat2):
    a, b = _t(input), _t(mat2, "mat2")
    if len(a.shape) != 3 or len(b.shape) != 3:
        raise ShapeProblem(f"expects two 3-d tensors [N, n, h] and [N, h, m], got {a} and {b}")
    if a.shape[0].value != b.shape[0].value:
        raise ShapeProblem(f"batch sizes differ: {a} and {b}")
    if a.shape[2].value != b.shape[1].value:
        raise ShapeProblem(f"cannot bmm {a} and {b}: inner dims {a.shape[2].value} and {b.shape[1].value} differ")
    return TensorInfo((a.shape[0], a.shape[1], b.shape[2]), a.dtype)


def reduce_rule(input, dim=None, keepdim=Val(False)):
    x = _t(input)
    if dim is None or _plain(dim) is None:
        return TensorInfo((), x.dtype)
    raw = _plain(dim)
    dims = {norm_dim(d, len(x.shape)) for d in (raw if isinstance(raw, (tuple, list)) else [dim])}
    keep = bool(_plain(keepdim))
    out = tuple(Val(1) if i in dims else d for i, d in enumerate(x.shape) if keep or i not in dims)
    return TensorInfo(out, x.dtype)


def chunk_rule(input, chunks, dim=Val(0)):
    x = _t(input)
    n = _int(chunks, "chunks")
    d = norm_dim(dim, len(x.shape))
    size = x.shape[d].value
    if not isinstance(size, int):
        if isinstance(size, Sym) and (size // n) * n == size:
            return [TensorInfo(tuple(Val(size // n) if i == d else v for i, v in enumerate(x.shape)), x.dtype)] * n
        raise ShapeProblem(f"cannot chunk the symbolic dim {size} into {n}")
    step = -(-size // n)
    parts = []
    left = size
    while left > 0:
        parts.append(min(step, left))
        left -= step
    return [TensorInfo(tuple(Val(p) if i == d else v for i, v in enumerate(x.shape)), x.dtype) for p in parts]


def split_rule(input, split_size_or_sections, dim=Val(0)):
    x = _t(input)
    d = norm_dim(dim, len(x.shape))
    size = x.shape[d].value
    sec = _plain(split_size_or_sections)
    if isinstance(sec, (tuple, list)):
        sizes = [_plain(s) for s in sec]
        if sum(sizes) != size:
            raise ShapeProblem(f"sections {tuple(sizes)} add up to {sum(sizes)}, but dim {d} of {x} is {size}")
    else:
        if not isinstance(size, int):
            raise ShapeProblem(f"cannot split the symbolic dim {size}")
        n = _int(split_size_or_sections, "split_size")
        sizes = [min(n, size - i) for i in range(0, size, n)]
    return [TensorInfo(tuple(Val(p) if i == d else v for i, v in enumerate(x.shape)), x.dtype) for p in sizes]


def contiguous_rule(input):
    return same(input)


def dropout_rule(input, p=Val(0.5), training=None, inplace=Val(False)):
    pv = _plain(p)
    if not isinstance(pv, (int, float)) or isinstance(pv, bool) or not 0 <= pv <= 1:
        raise ShapeProblem(f"p must be a probability between 0 and 1, got {pv!r}")
    return same(input)


def _elementwise(name, function="F", doc="", **extra):
    params = (("input", NO_DEFAULT),) + tuple(extra.items())
    return Op(name, params, lambda input, **_: same(input), function, doc=doc)


OPS: dict[str, Op] = {
    op.name: op
    for op in [
        _elementwise("relu", doc="max(0, x)"),
        _elementwise("relu6", doc="min(max(0, x), 6)"),
        _elementwise("gelu", doc="x * Phi(x)", approximate=Val("none")),
        _elementwise("silu", doc="x * sigmoid(x)"),
        _elementwise("mish", doc="x * tanh(softplus(x))"),
        _elementwise("elu", doc="ELU", alpha=Val(1.0)),
        _elementwise("leaky_relu", doc="leaky ReLU", negative_slope=Val(0.01)),
        _elementwise("softplus", doc="softplus", beta=Val(1.0), threshold=Val(20.0)),
        _elementwise("hardswish", doc="hard swish"),
        _elementwise("sigmoid", "torch", doc="1 / (1 + exp(-x))"),
        _elementwise("tanh", "torch", doc="tanh(x)"),
        _elementwise("exp", "torch", doc="exp(x)"),
        _elementwise("log", "torch", doc="log(x)"),
        _elementwise("sqrt", "torch", doc="sqrt(x)"),
        _elementwise("abs", "torch", doc="|x|"),
        Op("softmax", (("input", NO_DEFAULT), ("dim", None)), softmax_rule, "F", doc="softmax along dim"),
        Op("log_softmax", (("input", NO_DEFAULT), ("dim", None)), softmax_rule, "F", doc="log-softmax along dim"),
        Op(
            "dropout",
            (("input", NO_DEFAULT), ("p", Val(0.5)), ("training", None), ("inplace", Val(False))),
            dropout_rule,
            "F",
            method=False,
            training_arg=True,
            doc="zeroes elements with probability p while training",
        ),
        Op("flatten", (("input", NO_DEFAULT), ("start_dim", Val(0)), ("end_dim", Val(-1))), flatten_rule, "torch"),
        Op("view", (("input", NO_DEFAULT), ("*shape", None)), view_rule, None),
        Op("reshape", (("input", NO_DEFAULT), ("*shape", None)), view_rule, "torch"),
        Op("size", (("input", NO_DEFAULT), ("dim", None)), size_rule, None),
        Op("dim", (("input", NO_DEFAULT),), dim_rule, None),
        Op("permute", (("input", NO_DEFAULT), ("*dims", None)), permute_rule, "torch"),
        Op("transpose", (("input", NO_DEFAULT), ("dim0", NO_DEFAULT), ("dim1", NO_DEFAULT)), transpose_rule, "torch"),
        Op("squeeze", (("input", NO_DEFAULT), ("dim", None)), squeeze_rule, "torch"),
        Op("unsqueeze", (("input", NO_DEFAULT), ("dim", NO_DEFAULT)), unsqueeze_rule, "torch"),
        Op("contiguous", (("input", NO_DEFAULT),), contiguous_rule, None),
        Op("cat", (("tensors", NO_DEFAULT), ("dim", Val(0))), cat_rule, "torch", method=False),
        Op("stack", (("tensors", NO_DEFAULT), ("dim", Val(0))), stack_rule, "torch", method=False),
        Op("matmul", (("input", NO_DEFAULT), ("other", NO_DEFAULT)), matmul_rule, "torch", macs=matmul_macs),
        Op("bmm", (("input", NO_DEFAULT), ("mat2", NO_DEFAULT)), bmm_rule, "torch", macs=matmul_macs),
        Op("mean", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), reduce_rule, "torch"),
        Op("sum", (("input", NO_DEFAULT), ("dim", None), ("keepdim", Val(False))), reduce_rule, "torch"),
        Op("amax", (("input", NO_DEFAULT), ("dim", Val(())), ("keepdim", Val(False))), reduce_rule, "torch"),
        Op("chunk", (("input", NO_DEFAULT), ("chunks", NO_DEFAULT), ("dim", Val(0))), chunk_rule, "torch"),
        Op(
            "split",
            (("input", NO_DEFAULT), ("split_size_or_sections", NO_DEFAULT), ("dim", Val(0))),
            split_rule,
            "torch",
        ),
    ]
}

# Where each namespace finds its functions: F.relu, torch.cat, bare relu(x).
F_NAMES = {n for n, op in OPS.items() if op.function == "F"} | {"sigmoid", "tanh"}
TORCH_NAMES = {n for n, op in OPS.items() if op.function == "torch"} | {"relu", "softmax", "log_softmax", "dropout"}


def bind_op(op: Op, args: list, kwargs: dict) -> dict:
    """Bind call arguments to an op's parameters like Python would."""
    out: dict[str, Any] = {}
    rest: list = []
    names = [n for n, _ in op.params]
    star = next((n[1:] for n in names if n.startswith("*")), None)
    positional = [n for n in names if not n.startswith("*")]
    for i, a in enumerate(args):
        if i < len(positional) and (star is None or names.index(positional[i]) < names.index("*" + star)):
            out[positional[i]] = a
        elif star is not None:
            rest.append(a)
        else:
            raise ShapeProblem(f"takes at most {len(positional)} arguments ({', '.join(positional)}), got {len(args)}")
    for k, v in kwargs.items():
        if k == star:
            rest.extend(v.value if isinstance(v, Val) and isinstance(v.value, (tuple, list)) else [v])
            continue
        if k not in positional:
            raise ShapeProblem(f"has no argument {k!r} (it takes {', '.join(positional)})")
        if k in out:
            raise ShapeProblem(f"got {k!r} twice")
        out[k] = v
    for n, default in op.params:
        if n.startswith("*") or n in out:
            continue
        if default is NO_DEFAULT:
            raise ShapeProblem(f"is missing the argument {n!r}")
        if default is not None:
            out[n] = default
    if star is not None:
        out["*"] = rest
    return out


def apply_op(op: Op, args: list, kwargs: dict):
    bound = bind_op(op, args, kwargs)
    rest = bound.pop("*", [])
    return op.rule(**bound) if not rest and "*" not in [n[:1] for n, _ in op.params] else op.rule(
        *([bound.pop("input")] + list(rest)), **bound
    )
