"""Linear, Bilinear, Identity, Flatten, Unflatten."""

from __future__ import annotations

from ..shapes import Sym, Val, shape_str
from .base import (
    BOOL,
    INT,
    POSITIVE,
    ANY_DTYPE,
    Arg,
    ArgProblem,
    ArgType,
    Layer,
    ShapeProblem,
    dim,
    prod,
)


def last(x):
    if len(x) < 1:
        raise ShapeProblem("expects an input with at least 1 dim, got a scalar")
    return x[-1]


def linear_rule(a, x):
    last(x)
    return (*x[:-1], a.val("out_features"))


def bilinear_rule(a, x1, x2):
    if len(x1) != len(x2) or any(dim(x1, i) != dim(x2, i) for i in range(len(x1) - 1)):
        raise ShapeProblem(f"expects two inputs with the same leading dims, got {shape_str(x1)} and {shape_str(x2)}")
    return (*x1[:-1], a.val("out_features"))


def _norm_dim(d: int, rank: int, what: str) -> int:
    # like torch, a scalar takes dims as if it had one: -1 and 0 both name it
    if not -max(rank, 1) <= d < max(rank, 1):
        raise ShapeProblem(f"{what}={d} is out of range for a {rank}-d input")
    return d % rank if rank else 0


def flatten_rule(a, x):
    s = _norm_dim(a.start_dim, len(x), "start_dim")
    e = _norm_dim(a.end_dim, len(x), "end_dim")
    if len(x) == 0:
        return (Val(1),)  # torch flattens a scalar to [1]; the default start_dim=1 is out of range
    if s > e:
        raise ShapeProblem(f"start_dim={a.start_dim} comes after end_dim={a.end_dim} for a {len(x)}-d input")
    if s == e:
        return tuple(x)
    return (*x[:s], Val(prod(dim(x, i) for i in range(s, e + 1))), *x[e + 1 :])


def _unflat_sizes(v):
    items = v if isinstance(v, (tuple, list)) else None
    if items is None or not items:
        raise ArgProblem(f"must be a tuple of sizes, not {v!r}")
    if sum(1 for s in items if s == -1) > 1:
        raise ArgProblem("can hold at most one -1")
    for s in items:
        if s != -1 and not (isinstance(s, Sym) or (isinstance(s, int) and not isinstance(s, bool) and s >= 1)):
            raise ArgProblem(f"must hold positive sizes (and at most one -1), not {v!r}")
    return tuple(items)


def unflatten_rule(a, x):
    if len(x) == 0:
        raise ShapeProblem("cannot unflatten a scalar: it has no dim to split")
    d = _norm_dim(a.dim, len(x), "dim")
    sizes = list(a.unflattened_size)
    known = prod(s for s in sizes if s != -1)
    total = dim(x, d)
    if -1 in sizes:
        if isinstance(total, int) and isinstance(known, int) and total % known:
            raise ShapeProblem(f"cannot unflatten dim {d} of size {total} into {tuple(sizes)}")
        rest = total // known
        if rest * known != total:  # a symbolic size: only an exact multiple splits for every value of it
            raise ShapeProblem(f"cannot unflatten dim {d} of size {total} into {tuple(sizes)}: {total} is not "
                               f"a multiple of {known} for every {total}")
        sizes[sizes.index(-1)] = rest
    elif prod(sizes) != total:
        raise ShapeProblem(
            f"unflattened_size {tuple(sizes)} has {prod(sizes)} elements but dim {d} of {shape_str(x)} has {total}"
        )
    return (*x[:d], *(Val(s) for s in sizes), *x[d + 1 :])


LAYERS = [
    Layer(
        "Linear",
        (
            Arg("in_features", POSITIVE, infer=lambda x: last(x)),
            Arg("out_features", POSITIVE),
            Arg("bias", BOOL, True),
        ),
        linear_rule,
        "y = x W^T + b over the last dim",
        doc_of=lambda a: f"y = x W^T{' + b' if a.bias else ''} over the last dim",
        params=lambda a: a.in_features * a.out_features + (a.out_features if a.bias else 0),
        weights=lambda a: {"weight": (a.out_features, a.in_features),
                           **({"bias": (a.out_features,)} if a.bias else {})},
        macs=lambda a, out, x: prod(dim(x, i) for i in range(len(x) - 1)) * a.in_features * a.out_features,
        family="linear",
        layout="new",
    ),
    Layer(
        "Bilinear",
        (
            Arg("in1_features", POSITIVE, infer=lambda x1, x2=None: last(x1)),
            Arg("in2_features", POSITIVE, infer=lambda x1, x2=None: last(x2) if x2 is not None else None),
            Arg("out_features", POSITIVE),
            Arg("bias", BOOL, True),
        ),
        bilinear_rule,
        "y = x1^T A x2 + b",
        doc_of=lambda a: f"y = x1^T A x2{' + b' if a.bias else ''}",
        params=lambda a: a.in1_features * a.in2_features * a.out_features + (a.out_features if a.bias else 0),
        macs=lambda a, out, x1, x2: prod(dim(x1, i) for i in range(len(x1) - 1))
        * a.in1_features * a.in2_features * a.out_features,
        n_inputs=2,
        family="linear",
        layout="new",
    ),
    Layer("Identity", (), lambda a, x: tuple(x), "returns its input unchanged", family="linear", dtypes=ANY_DTYPE,
          layout="keep", rearranges=True),
    Layer(
        "Flatten",
        (Arg("start_dim", INT, 1), Arg("end_dim", INT, -1)),
        flatten_rule,
        "merges dims start_dim..end_dim into one",
        family="linear",
        dtypes=ANY_DTYPE,
        rearranges=True,
        layout="keep",  # a view where it can be one: the input's memory order stays
    ),
    Layer(
        "Unflatten",
        (Arg("dim", INT), Arg("unflattened_size", ArgType("a tuple of sizes", _unflat_sizes))),
        unflatten_rule,
        "splits one dim into several",
        family="linear",
        dtypes=ANY_DTYPE,
        rearranges=True,
        layout="keep",  # a view where it can be one: the input's memory order stays
    ),
]
