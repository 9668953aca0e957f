"""CosineSimilarity and PairwiseDistance: one value per pair of vectors of two inputs that broadcast.

Both inputs broadcast as in torch (symbolic dims equal only to themselves or 1); the vectors lie along ``dim``
of the broadcast shape (CosineSimilarity) or its last dim (PairwiseDistance), which the output loses. A 0-d
broadcast shape counts as one dim, as torch's dims do, and stays 0-d.
"""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import BOOL, FLOAT, INT, NUMERIC, Arg, Layer, ShapeProblem, float_out


def broadcast(x1, x2) -> tuple:
    """The shape two inputs broadcast to.

    >>> from modelspec.shapes import Val
    >>> [d.value for d in broadcast((Val(3), Val(1), Val(4)), (Val(5), Val(4)))]
    [3, 5, 4]
    """
    n = max(len(x1), len(x2))
    a = (Val(1),) * (n - len(x1)) + tuple(x1)
    b = (Val(1),) * (n - len(x2)) + tuple(x2)
    out = []
    for i, (p, q) in enumerate(zip(a, b)):
        if p.value == q.value or q.value == 1:
            out.append(p)
        elif p.value == 1:
            out.append(q)
        else:
            raise ShapeProblem(f"cannot broadcast its inputs {shape_str(x1)} and {shape_str(x2)}: dim {i - n} is "
                               f"{p.value} against {q.value}", hint="give both inputs the same sizes, or 1 where "
                                                                     "one is shared")
    return tuple(out)


def cosine_rule(a, x1, x2):
    shape = broadcast(x1, x2)
    rank = max(len(shape), 1)
    if not -rank <= a.dim < rank:
        raise ShapeProblem(f"dim={a.dim} is out of range for its inputs {shape_str(x1)} and {shape_str(x2)}, "
                           f"which broadcast to {shape_str(shape)}")
    d = a.dim % rank
    return shape[:d] + shape[d + 1 :]


def pairwise_rule(a, x1, x2):
    shape = broadcast(x1, x2)
    if not shape:
        return ()  # torch's norm over the last dim of a 0-d tensor: 0-d, keepdim or not
    return shape[:-1] + ((Val(1),) if a.keepdim else ())


LAYERS = [
    Layer(
        "CosineSimilarity",
        (Arg("dim", INT, 1), Arg("eps", FLOAT, 1e-08)),
        cosine_rule,
        "the cosine of the angle between x1 and x2 along dim",
        n_inputs=2,
        family="distance",
        # a long input beside a float one runs in torch, promoted; each input's dtype is checked alone here
    ),
    Layer(
        "PairwiseDistance",
        (Arg("p", FLOAT, 2.0), Arg("eps", FLOAT, 1e-06), Arg("keepdim", BOOL, False)),
        pairwise_rule,
        "the p-norm of x1 - x2 + eps along the last dim",
        n_inputs=2,
        family="distance",
        dtypes=NUMERIC,  # bools do not subtract; long differences give a float norm
        out_dtype=float_out,
    ),
]
