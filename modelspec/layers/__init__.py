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


_TENSOR = ("a tensor is no layer: declare it in the body, param w: [4, 2] = randn (trained) or buffer b: [4, 2] = "
           "zeros (saved, not trained), or make it in forward: torch.zeros(4, 2)")
# Names a spec reaches for, from torch (or Keras), that are no layer here, each with what to write instead: the
# hint of an unknown layer. Lazy modules, optimizers and schedulers are told apart in modelspec/static.py.
NOT_LAYERS: dict[str, str] = {
    "OrderedDict": 'OrderedDict names the modules of a Sequential or a ModuleDict, and stands nowhere else: '
                   'Sequential(OrderedDict([("fc", Linear(_, 10)), ("act", ReLU())]))',
    "Module": "a module of your own is a block: block Head(width) { fc = Linear(_, width) }, made as Head(64)",
    "Container": "torch's deprecated Container: write Sequential(...), ModuleList([...]) or ModuleDict({...})",
    "Parameter": "declare a parameter in the body: param w: [4, 2] = randn",
    "ParameterList": "a spec declares each parameter in the body: param w0: [4, 2] = randn",
    "ParameterDict": "a spec declares each parameter in the body: param w0: [4, 2] = randn",
    "RNNBase": "RNNBase is the base class of RNN, LSTM and GRU: write one of them",
    "RNNCellBase": "RNNCellBase is the base class of RNNCell, LSTMCell and GRUCell: write one of them",
    # (torch.zeros(...), torch.randn(...) and the like are tensor operations, and plain tensor attributes)
    **{name: _TENSOR for name in ("Tensor", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
                                  "BoolTensor", "ByteTensor", "tensor", "eye", "linspace")},
    "Variable": "tensors are their own Variables since torch 0.4: declare a param or buffer, or compute it in forward",
    **{name: "data is read in the model's train section: train {model} { data { x = ...; y = ... } }"
       for name in ("DataLoader", "Dataset", "TensorDataset")},
    # Keras' names for torch's layers
    "Dense": "torch's fully connected layer is Linear, which takes its in_features first: Linear(_, units)",
    "Swish": "torch calls it SiLU: SiLU()",
    "GlobalAveragePooling2D": "pool to one value per channel with AdaptiveAvgPool2d(1), then Flatten()",
    "GlobalAvgPool2d": "pool to one value per channel with AdaptiveAvgPool2d(1), then Flatten()",
    "LayerNormalization": "torch calls it LayerNorm: LayerNorm(_)",
    "BatchNormalization": "torch calls it BatchNorm1d or BatchNorm2d: BatchNorm2d(_)",
    "Activation": "write the activation itself: ReLU(), GELU(), Tanh(), ...",
    "Concatenate": "join tensors in forward: torch.cat([a, b], dim=1)",
    "Concat": "join tensors in forward: torch.cat([a, b], dim=1)",
    "Add": "add tensors in forward: a + b",
    "Reshape": "reshape in forward, x.view(B, -1), or with a child: Flatten() or Unflatten(1, (C, H, W))",
    "Permute": "permute in forward: x.permute(0, 2, 1)",
    "Interpolate": "resize with a child, Upsample(scale_factor=2), or in forward: F.interpolate(x, scale_factor=2)",
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


__all__ = ["CATALOG", "NOT_LAYERS", "infer_shape", "REQUIRED", "Arg", "ArgProblem", "Bound", "Layer", "ShapeProblem"]
