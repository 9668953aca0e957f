"""The layer catalog: one entry per torch.nn class modelspec knows.

``CATALOG["Conv2d"]`` is a `Layer`: its torch argument names and defaults,
which arguments are inferred from the input shape, its shape rule, and its
parameter and multiply-accumulate counts. Adding a layer is adding an entry
to one of the family modules here.
"""

from __future__ import annotations

from . import activation, conv, embedding, linear, norm, pool, recurrent, transformer
from .base import REQUIRED, Arg, ArgProblem, Bound, Layer, ShapeProblem

CATALOG: dict[str, Layer] = {
    layer.name: layer
    for family in (linear, conv, pool, norm, activation, embedding, recurrent, transformer)
    for layer in family.LAYERS
}

__all__ = ["CATALOG", "REQUIRED", "Arg", "ArgProblem", "Bound", "Layer", "ShapeProblem"]
