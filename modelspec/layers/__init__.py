"""The layer catalog: one entry per torch.nn class modelspec knows.

``CATALOG["Conv2d"]`` is a `Layer`: its torch argument names and defaults,
which arguments are inferred from the input shape, its shape rule, and its
parameter and multiply-accumulate counts. Adding a layer is adding an entry
to one of the family modules here.
"""

from __future__ import annotations

from . import (activation, conv, distance, embedding, fold, linear, loss, norm, pad, pool, recurrent, shuffle,
               transformer, upsample)
from ..shapes import Val
from .base import INFER, REQUIRED, Arg, ArgProblem, Bound, Layer, ShapeProblem, _unwrap_result, bind

CATALOG: dict[str, Layer] = {
    layer.name: layer
    for family in (linear, conv, pool, pad, upsample, fold, norm, activation, shuffle, distance, embedding, recurrent,
                   transformer, loss)
    for layer in family.LAYERS
}



def infer_shape(name: str, *inputs, args=(), **kwargs):
    """Apply a catalog entry to plain shapes (for tests and tools).

    >>> infer_shape("Conv2d", (2, 1, 28, 28), args=(1, 20, 5))
    (2, 20, 24, 24)
    """
    layer = CATALOG[name]
    wrap = lambda x: tuple(Val(d) for d in x)
    shapes = tuple(wrap(x) for x in inputs)
    lift = lambda v: INFER if v is INFER else Val(v)
    bound = bind(layer, [lift(v) for v in args], {k: lift(v) for k, v in kwargs.items()}, shapes)
    out = layer.rule(bound, *shapes)
    return _unwrap_result(out)


__all__ = ["CATALOG", "infer_shape", "REQUIRED", "Arg", "ArgProblem", "Bound", "Layer", "ShapeProblem"]
