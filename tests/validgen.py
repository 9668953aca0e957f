"""Valid, nasty specs: a generator, the oracle that holds each to modelspec's promise, and a shrinker.

Used by ``tests/test_trust.py`` (2,000 cases in every CI run) and by
``tests/trust_long.py`` (a long run, by hand, on every core).

``generate(rng)`` writes a spec that is *meant* to be valid: random
compositions of the language's features (consts, also named like the names
generated code uses; blocks with parameters and defaults used with different
arguments, nested; conditional children on block parameters and ``in_shape``;
Sequential / ModuleList / ModuleDict, nested and as comprehensions; forwards
with named values, reuse, residuals, ``*``, ``@``, ``torch.cat``, views,
permutes, slicing and indexing, ``x.size(i)`` and ``x.shape`` unpacking,
functional ops, a child called twice, ``for`` over a ModuleList, ``if`` on a
block parameter; params and buffers with inits; symbolic dims with example
sizes and several inputs; Long inputs into Embedding; most of the layer
catalog, LSTM/GRU/RNN and attention with tuple results; lists in forward:
``feats = [x]`` grown by ``.append`` in a loop, DenseNet style, with
``torch.cat(feats, 1)`` feeding each layer, comprehensions ``[m(x) for m in
layers]`` into ``torch.stack`` / ``torch.cat``, ``list(x.chunk(k, d))`` with
``.extend``, aliases, slices and ``+`` of lists; loops over a ModuleDict's
``.items()`` / ``.values()`` / ``.keys()`` / itself with ``d[key](x)``, and
``d.key(x)``; dict comprehensions ``{"layer" + str(i): ... for i in
range(k)}`` in a ModuleDict or a Sequential; weight tying ``a.weight =
b.weight`` of layers (and ModuleDict entries) of one shape, a head tied to an
Embedding; ``training``: ``if training { ... } else { ... }``, stochastic
depth by ``torch.rand``, ``x if training else y`` and ``dropout_p=p if
training else 0.0``; children named by strings, ``"block1-0" = ...``, in
bodies without forward; ``Sequential({"conv": ...})`` and splices
``*[...]`` / ``*([m] if c else [])``; ``block X(p, q=1) = Sequential(...)``
used with other arguments). It tracks every
shape itself, as torch computes it, with symbolic dims kept symbolic, and
proposes only what its own model of torch accepts; most specs are accepted
by ``check``. A few deliberately step on edges, where the right answer is a
located refusal or a working model and anything else is a failure: a negative
slice step, an ``if`` right after an assignment, a kernel larger than its
input, an InstanceNorm over one element, names the language or nn.Module may
not allow (``block``, ``cuda``, ``training``), and, in 3% of the proposals,
float-only layers and ops applied to Long tensors (``RELAX``).

The generator needs nothing of modelspec (it is a model of torch's shape
rules of its own), so a compiler change never changes the cases of a seed.

``check_case(text)`` is the oracle: it raises `TrustFailure` (an
AssertionError) naming the broken promise, with the spec text, or returns
"accepted" / "rejected". ``shrink(text, predicate)`` deletes statements,
children, arguments and wrappers while ``predicate`` still holds.
"""

from __future__ import annotations

import itertools
import random
import re
import traceback
from dataclasses import dataclass

TIMEOUT = 20  # seconds for one case; a case takes a few tens of milliseconds


class Invalid(Exception):
    """The generator's own model of torch refuses this proposal."""


# ====================================================================== dims
# A dim is a monomial: coef * atom * atom ..., an atom being a symbol with an
# offset (("T", 0) is T, ("T", -2) is T - 2) or an opaque operation on a dim.
# ``v`` is its value at the example sizes (batch 2, T=12, ...). Two dims are
# the same for the compiler when their monomials are equal.


@dataclass(frozen=True)
class Dim:
    v: int
    coef: int
    atoms: tuple = ()

    def __deepcopy__(self, memo):
        return self

    @property
    def sym(self) -> bool:
        return bool(self.atoms)


def C(v: int) -> Dim:
    return Dim(v, v, ())


def S(name: str, v: int) -> Dim:
    return Dim(v, 1, ((name, 0),))


def same(a: Dim, b: Dim) -> bool:
    return a.coef == b.coef and a.atoms == b.atoms


def same_shape(a, b) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def _sorted_atoms(atoms) -> tuple:
    return tuple(sorted(atoms, key=repr))


def dmul(a: Dim, b: Dim) -> Dim:
    return Dim(a.v * b.v, a.coef * b.coef, _sorted_atoms(a.atoms + b.atoms))


def dprod(dims) -> Dim:
    out = C(1)
    for d in dims:
        out = dmul(out, d)
    return out


def ddiv(a: Dim, b: Dim) -> Dim:
    """a / b as monomials; Invalid unless it divides for every value of the symbols."""
    if b.coef == 0 or a.coef % b.coef:
        raise Invalid("does not divide")
    left = list(a.atoms)
    for at in b.atoms:
        if at not in left:
            raise Invalid("does not divide")
        left.remove(at)
    if b.v == 0 or a.v % b.v:
        raise Invalid("does not divide")
    return Dim(a.v // b.v, a.coef // b.coef, tuple(left))


def affine(d: Dim, delta: int, v: int) -> Dim:
    """d + delta (already computed at the example: v)."""
    if v < 1:
        raise Invalid("dim below 1")
    if not d.sym:
        return C(v)
    if delta == 0:
        return d
    if d.coef == 1 and len(d.atoms) == 1 and len(d.atoms[0]) == 2:
        name, off = d.atoms[0]
        return Dim(v, 1, ((name, off + delta),))
    return opaque(d, ("add", delta), v)


def opaque(d: Dim, tag, v: int) -> Dim:
    if v < 1:
        raise Invalid("dim below 1")
    if not d.sym:
        return C(v)
    return Dim(v, 1, (("op", tag, d.coef, d.atoms),))


def concrete(d: Dim, what="a size") -> int:
    if d.sym:
        raise Invalid(f"{what} is symbolic")
    return d.v


def bcast(a, b):
    """numpy broadcasting; symbolic dims only with themselves or 1."""
    n = max(len(a), len(b))
    a = (C(1),) * (n - len(a)) + tuple(a)
    b = (C(1),) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if same(x, y):
            out.append(x)
        elif not x.sym and x.v == 1:
            out.append(y)
        elif not y.sym and y.v == 1:
            out.append(x)
        else:
            raise Invalid("cannot broadcast")
    return tuple(out)


# ====================================================================== values
@dataclass(frozen=True)
class TV:
    """A tensor value: shape (Dims), dtype; for a Long tensor an exclusive bound of its values (None: an input's)."""

    shape: tuple
    dtype: str = "float"
    hi: int | None = None

    def __deepcopy__(self, memo):
        return self

    @property
    def rank(self):
        return len(self.shape)


@dataclass(frozen=True)
class IntV:
    """An int known at compile time (maybe symbolic): x.size(1), b from `b, c = x.shape`."""

    d: Dim

    def __deepcopy__(self, memo):
        return self


class SymEntry:
    """A symbolic entry of in_shape: any arithmetic or comparison on it is refused."""

    def __init__(self, d):
        self.d = d

    def _no(self, *a):
        raise Invalid("symbolic in_shape entry")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __floordiv__ = __rfloordiv__ = _no
    __mod__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __index__ = __int__ = _no
    __hash__ = object.__hash__

    def __deepcopy__(self, memo):
        return self


INFER = "_"
SAFE_BUILTINS = {"True": True, "False": False, "None": None, "range": range, "str": str}


def ev(text: str, env: dict):
    """A size, flag or argument written in the spec, evaluated as the spec's (Python's) arithmetic."""
    if text == INFER:
        return INFER
    try:
        return eval(text, {"__builtins__": SAFE_BUILTINS}, env)  # noqa: S307 - our own generated text
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(f"cannot evaluate {text!r}: {exc}") from None


def as_int(v, what="value", lo=None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise Invalid(f"{what} must be an int, not {v!r}")
    if lo is not None and v < lo:
        raise Invalid(f"{what} must be >= {lo}")
    return v


def tup(v, n, what="value") -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise Invalid(f"{what} needs {n} entries")
        return tuple(v)
    return (v,) * n


# ====================================================================== the layer table
SIG = {
    "Linear": ["in_features", "out_features", "bias"],
    "Bilinear": ["in1_features", "in2_features", "out_features", "bias"],
    "Identity": [],
    "Flatten": ["start_dim", "end_dim"],
    "Unflatten": ["dim", "unflattened_size"],
    "Conv1d": ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
               "padding_mode"],
    "ConvTranspose1d": ["in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups",
                        "bias", "dilation"],
    "MaxPool1d": ["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"],
    "AvgPool1d": ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"],
    "AvgPool2d": ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
    "AdaptiveAvgPool1d": ["output_size"],
    "AdaptiveMaxPool1d": ["output_size", "return_indices"],
    "BatchNorm1d": ["num_features", "eps", "momentum", "affine", "track_running_stats"],
    "InstanceNorm1d": ["num_features", "eps", "momentum", "affine", "track_running_stats"],
    "LayerNorm": ["normalized_shape", "eps", "elementwise_affine", "bias"],
    "GroupNorm": ["num_groups", "num_channels", "eps", "affine"],
    "Dropout": ["p", "inplace"],
    "ReLU": ["inplace"], "ReLU6": ["inplace"], "SELU": ["inplace"], "SiLU": ["inplace"], "Mish": ["inplace"],
    "Hardswish": ["inplace"], "Hardsigmoid": ["inplace"], "ELU": ["alpha", "inplace"],
    "LeakyReLU": ["negative_slope", "inplace"], "PReLU": ["num_parameters", "init"], "GELU": ["approximate"],
    "Sigmoid": [], "Tanh": [], "Softplus": ["beta", "threshold"], "Hardtanh": ["min_val", "max_val", "inplace"],
    "Softmax": ["dim"], "LogSoftmax": ["dim"],
    "Embedding": ["num_embeddings", "embedding_dim", "padding_idx", "max_norm"],
    "RNN": ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
            "bidirectional"],
    "LSTM": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
             "proj_size"],
    "GRU": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"],
    "MultiheadAttention": ["embed_dim", "num_heads", "dropout", "bias", "add_bias_kv", "add_zero_attn", "kdim", "vdim",
                           "batch_first"],
    "TransformerEncoderLayer": ["d_model", "nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps",
                                "batch_first", "norm_first", "bias"],
    "TransformerEncoder": ["encoder_layer", "num_layers", "norm", "enable_nested_tensor"],
}
SIG["Conv2d"] = SIG["Conv1d"]
SIG["ConvTranspose2d"] = SIG["ConvTranspose1d"]
SIG["MaxPool2d"] = SIG["MaxPool1d"]
SIG["AdaptiveAvgPool2d"] = SIG["AdaptiveAvgPool1d"]
SIG["AdaptiveMaxPool2d"] = SIG["AdaptiveMaxPool1d"]
SIG["BatchNorm2d"] = SIG["BatchNorm1d"]
SIG["InstanceNorm2d"] = SIG["InstanceNorm1d"]
for _d in ("Dropout1d", "Dropout2d"):
    SIG[_d] = SIG["Dropout"]
SIG["TransformerDecoderLayer"] = SIG["TransformerEncoderLayer"]

DEFAULTS = {
    "bias": True, "stride": None, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros",
    "output_padding": 0, "return_indices": False, "ceil_mode": False, "count_include_pad": True,
    "divisor_override": None, "eps": 1e-5, "momentum": 0.1, "track_running_stats": True, "elementwise_affine": True,
    "p": 0.5, "inplace": False, "alpha": 1.0, "negative_slope": 0.01, "num_parameters": 1, "init": 0.25,
    "approximate": "none", "beta": 1.0, "threshold": 20.0, "min_val": -1.0, "max_val": 1.0, "dim": None,
    "padding_idx": None, "max_norm": None, "num_layers": 1, "nonlinearity": "tanh", "batch_first": False,
    "dropout": 0.0, "bidirectional": False, "proj_size": 0, "add_bias_kv": False, "add_zero_attn": False,
    "kdim": None, "vdim": None, "dim_feedforward": 2048, "activation": "relu", "layer_norm_eps": 1e-5,
    "norm_first": False, "start_dim": 1, "end_dim": -1, "norm": None, "enable_nested_tensor": True,
}
INFERABLE = {
    "Linear": "in_features", "Conv1d": "in_channels", "Conv2d": "in_channels", "ConvTranspose1d": "in_channels",
    "ConvTranspose2d": "in_channels", "BatchNorm1d": "num_features", "BatchNorm2d": "num_features",
    "InstanceNorm1d": "num_features", "InstanceNorm2d": "num_features", "LayerNorm": "normalized_shape",
    "GroupNorm": "num_channels", "RNN": "input_size", "LSTM": "input_size", "GRU": "input_size",
    "MultiheadAttention": "embed_dim", "TransformerEncoderLayer": "d_model", "TransformerDecoderLayer": "d_model",
    "Bilinear": "in1_features",
}


def default_of(layer: str, param: str):
    if layer.startswith("InstanceNorm") and param in ("affine", "track_running_stats"):
        return False
    if param == "affine":
        return True
    return DEFAULTS.get(param)


RELAX = [False]  # set while a deliberately dtype-careless proposal is made: check must refuse, or torch run it


def _float(x: TV, what="input"):
    if not isinstance(x, TV):
        raise Invalid(f"{what} is not a tensor")
    if x.dtype != "float" and not RELAX[0]:
        raise Invalid(f"{what} is not float")
    return x


def _infer(a, name, actual, what):
    given = a[name]
    if given == INFER:
        a[name] = actual
        return actual
    if given != actual:
        raise Invalid(f"{what} {given} != {actual}")
    return given


def pool_len(d: Dim, k, s, p, dil, ceil, tag) -> Dim:
    L = d.v
    eff = dil * (k - 1) + 1
    num = L + 2 * p - eff
    if num < 0:
        raise Invalid("window larger than input")
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= L + p:
        out -= 1
    if out < 1:
        raise Invalid("output below 1")
    if d.sym:
        if s == 1 and not ceil:
            return affine(d, 2 * p - dil * (k - 1), out)
        return opaque(d, ("pool",) + tag + (k, s, p, dil, ceil), out)
    return C(out)


def layer_apply(name: str, a: dict, ins: list, kw: dict):
    """The output of layer ``name`` with arguments ``a`` (all params, INFER resolved in place) on ``ins``."""
    if name in ("Linear",):
        x = _float(ins[0])
        if x.rank < 1:
            raise Invalid("rank")
        _infer(a, "in_features", concrete(x.shape[-1], "in_features"), "in_features")
        out = as_int(a["out_features"], "out_features", 1)
        return TV(x.shape[:-1] + (C(out),))
    if name == "Bilinear":
        if len(ins) != 2:
            raise Invalid("Bilinear takes two inputs")
        x, y = _float(ins[0]), _float(ins[1])
        if x.rank < 1 or not same_shape(x.shape[:-1], y.shape[:-1]):
            raise Invalid("Bilinear leading dims")
        _infer(a, "in1_features", concrete(x.shape[-1]), "in1")
        _infer(a, "in2_features", concrete(y.shape[-1]), "in2")
        return TV(x.shape[:-1] + (C(as_int(a["out_features"], "out", 1)),))
    if name == "Identity":
        return ins[0]
    if len(ins) != 1 and name not in ("MultiheadAttention", "TransformerDecoderLayer"):
        raise Invalid(f"{name} takes one input")
    x = ins[0]
    if name == "Flatten":
        s, e = as_int(a["start_dim"]), as_int(a["end_dim"])
        r = max(x.rank, 1)
        if not (-r <= s < r and -r <= e < r):
            raise Invalid("flatten dims")
        s, e = s % r, e % r
        if s > e:
            raise Invalid("flatten start > end")
        if x.rank == 0:
            return TV((C(1),), x.dtype, x.hi)
        return TV(x.shape[:s] + (dprod(x.shape[s:e + 1]),) + x.shape[e + 1:], x.dtype, x.hi)
    if name == "Unflatten":
        d = as_int(a["dim"])
        if not -x.rank <= d < x.rank:
            raise Invalid("unflatten dim")
        d %= x.rank
        sizes = a["unflattened_size"]
        if not isinstance(sizes, (tuple, list)) or not sizes or not all(isinstance(s, int) and (s > 0 or s == -1)
                                                                        for s in sizes) or list(sizes).count(-1) > 1:
            raise Invalid("unflatten sizes")
        n = 1
        for s in sizes:
            n *= s if s > 0 else 1
        L = concrete(x.shape[d])
        if -1 in sizes:
            if L % n:
                raise Invalid("unflatten -1")
            sizes = [s if s > 0 else L // n for s in sizes]
            n = L
        if L != n:
            raise Invalid("unflatten product")
        return TV(x.shape[:d] + tuple(C(s) for s in sizes) + x.shape[d + 1:], x.dtype, x.hi)
    if name in ("Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"):
        nd = int(name[-2])
        x = _float(x)
        if x.rank != nd + 2:
            raise Invalid("conv rank")
        cin = _infer(a, "in_channels", concrete(x.shape[1], "channels"), "in_channels")
        cout = as_int(a["out_channels"], "out_channels", 1)
        g = as_int(a["groups"], "groups", 1)
        if cin % g or cout % g:
            raise Invalid("groups")
        k = tuple(as_int(v, "kernel", 1) for v in tup(a["kernel_size"], nd))
        s = tuple(as_int(v, "stride", 1) for v in tup(a["stride"] if a["stride"] is not None else 1, nd))
        dil = tuple(as_int(v, "dilation", 1) for v in tup(a["dilation"], nd))
        out = []
        if name.startswith("ConvTranspose"):
            p = tuple(as_int(v, "padding", 0) for v in tup(a["padding"], nd))
            op = tuple(as_int(v, "output_padding", 0) for v in tup(a["output_padding"], nd))
            for i in range(nd):
                if op[i] >= max(s[i], dil[i]):
                    raise Invalid("output_padding")
                L = x.shape[2 + i]
                v = (L.v - 1) * s[i] - 2 * p[i] + dil[i] * (k[i] - 1) + op[i] + 1
                if L.sym and s[i] == 1:
                    out.append(affine(L, v - L.v, v))
                else:
                    out.append(opaque(L, ("convt", k[i], s[i], p[i], op[i], dil[i]), v))
        else:
            pad = a["padding"]
            mode = a["padding_mode"]
            if pad in ("same", "valid"):
                if pad == "same" and any(v != 1 for v in s):
                    raise Invalid("same needs stride 1")
                p = None if pad == "same" else (0,) * nd
            else:
                p = tuple(as_int(v, "padding", 0) for v in tup(pad, nd))
            for i in range(nd):
                L = x.shape[2 + i]
                if p is None:  # 'same'
                    if mode != "zeros" and dil[i] * (k[i] - 1) >= 2 * L.v:
                        raise Invalid("same padding too big for the mode")
                    out.append(L)
                    continue
                if mode == "reflect" and p[i] >= L.v or mode == "circular" and p[i] > L.v:
                    raise Invalid("padding_mode needs a larger input")
                if L.sym and mode in ("reflect", "circular") and p[i] > 0:
                    raise Invalid("reflect on a symbolic dim")
                eff = dil[i] * (k[i] - 1) + 1
                v = (L.v + 2 * p[i] - eff) // s[i] + 1
                if L.v + 2 * p[i] < eff:
                    raise Invalid("kernel larger than input")
                if L.sym and s[i] == 1:
                    out.append(affine(L, v - L.v, v))
                else:
                    out.append(opaque(L, ("conv", k[i], s[i], p[i], dil[i]), v))
        return TV((x.shape[0], C(cout)) + tuple(out))
    if name in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        nd = int(name[-2])
        x = _float(x)
        if x.rank != nd + 2:
            raise Invalid("pool rank")
        k = tuple(as_int(v, "kernel", 1) for v in tup(a["kernel_size"], nd))
        s = tuple(as_int(v, "stride", 1) for v in tup(a["stride"] if a["stride"] is not None else k, nd))
        p = tuple(as_int(v, "padding", 0) for v in tup(a["padding"], nd))
        dil = tuple(as_int(v, "dilation", 1) for v in tup(a.get("dilation", 1), nd))
        for i in range(nd):
            eff = dil[i] * (k[i] - 1) + 1
            if p[i] > (eff // 2 if name.startswith("Max") else k[i] // 2):
                raise Invalid("pool padding too big")
        out = tuple(pool_len(x.shape[2 + i], k[i], s[i], p[i], dil[i], bool(a["ceil_mode"]), (name,))
                    for i in range(nd))
        y = TV(x.shape[:2] + out)
        if a.get("return_indices"):
            return (y, TV(y.shape, "long", concrete(dprod(x.shape[2:])) if not any(d.sym for d in x.shape[2:])
                          else 10**9))
        return y
    if name.startswith("Adaptive"):
        nd = int(name[-2])
        x = _float(x)
        if x.rank != nd + 2:
            raise Invalid("adaptive rank")
        o = tup(a["output_size"], nd)
        out = []
        for i, v in enumerate(o):
            if v is None:
                out.append(x.shape[2 + i])
            else:
                out.append(C(as_int(v, "output_size", 1)))
        y = TV(x.shape[:2] + tuple(out))
        if a.get("return_indices"):
            return (y, TV(y.shape, "long", 10**9))
        return y
    if name in ("BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d"):
        x = _float(x)
        ranks = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "InstanceNorm1d": (3,), "InstanceNorm2d": (4,)}[name]
        if x.rank not in ranks:
            raise Invalid("norm rank")
        _infer(a, "num_features", concrete(x.shape[1]), "num_features")
        if name.startswith("Instance"):
            spatial = dprod(x.shape[2:])
            if spatial.v <= 1 and not a.get("_edge"):
                raise Invalid("instance norm of one element")
        return x
    if name == "LayerNorm":
        x = _float(x)
        given = a["normalized_shape"]
        if given == INFER:
            a["normalized_shape"] = (concrete(x.shape[-1]),) if x.rank else None
            if not x.rank:
                raise Invalid("layernorm of a scalar")
        ns = tup(a["normalized_shape"], 1) if isinstance(a["normalized_shape"], int) else tuple(a["normalized_shape"])
        if len(ns) > x.rank or tuple(concrete(d) for d in x.shape[x.rank - len(ns):]) != ns:
            raise Invalid("normalized_shape")
        return x
    if name == "GroupNorm":
        x = _float(x)
        if x.rank < 2:
            raise Invalid("groupnorm rank")
        c = _infer(a, "num_channels", concrete(x.shape[1]), "num_channels")
        g = as_int(a["num_groups"], "groups", 1)
        if c % g:
            raise Invalid("groups divide")
        return x
    if name.startswith("Dropout"):
        x = _float(x)
        p = a["p"]
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise Invalid("p")
        ranks = {"Dropout": None, "Dropout1d": (2, 3), "Dropout2d": (3, 4)}[name]
        if ranks and x.rank not in ranks:
            raise Invalid("dropout rank")
        return x
    if name in ("ReLU", "ReLU6", "SELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "ELU", "LeakyReLU", "GELU",
                "Sigmoid", "Tanh", "Softplus", "Hardtanh"):
        return _float(x)
    if name == "PReLU":
        x = _float(x)
        n = as_int(a["num_parameters"], "num_parameters", 1)
        if n != 1 and (x.rank < 2 or concrete(x.shape[1]) != n):
            raise Invalid("prelu channels")
        return x
    if name in ("Softmax", "LogSoftmax"):
        x = _float(x)
        d = a["dim"]
        if d is None:
            return x
        r = max(x.rank, 1)
        if not -r <= as_int(d) < r:
            raise Invalid("softmax dim")
        return x
    if name == "Embedding":
        if not isinstance(x, TV) or x.dtype != "long":
            raise Invalid("embedding of a float")
        n = as_int(a["num_embeddings"], "num", 1)
        d = as_int(a["embedding_dim"], "dim", 1)
        if x.hi is not None and x.hi > n:
            raise Invalid("indices out of range")
        pi = a["padding_idx"]
        if pi is not None and not -n <= pi < n:
            raise Invalid("padding_idx")
        return TV(x.shape + (C(d),))
    if name in ("RNN", "LSTM", "GRU"):
        x = _float(x)
        if x.rank != 3:
            raise Invalid("rnn rank")
        bf = bool(a["batch_first"])
        _infer(a, "input_size", concrete(x.shape[2]), "input_size")
        h = as_int(a["hidden_size"], "hidden", 1)
        nl = as_int(a["num_layers"], "layers", 1)
        dirs = 2 if a["bidirectional"] else 1
        proj = as_int(a.get("proj_size", 0) or 0, "proj", 0)
        if proj >= h and proj:
            raise Invalid("proj_size")
        hout = proj or h
        b = x.shape[0] if bf else x.shape[1]
        out = TV(x.shape[:2] + (C(dirs * hout),))
        hn = TV((C(dirs * nl), b, C(hout)))
        if name == "LSTM":
            return (out, (hn, TV((C(dirs * nl), b, C(h)))))
        return (out, hn)
    if name == "MultiheadAttention":
        if len(ins) != 3:
            raise Invalid("attention takes q, k, v")
        q, k, v = (_float(t) for t in ins)
        if not q.rank == k.rank == v.rank == 3:
            raise Invalid("attention rank")
        bf = bool(a["batch_first"])
        e = _infer(a, "embed_dim", concrete(q.shape[2]), "embed_dim")
        heads = as_int(a["num_heads"], "heads", 1)
        if e % heads:
            raise Invalid("heads divide")
        kd = a["kdim"] if a["kdim"] is not None else e
        vd = a["vdim"] if a["vdim"] is not None else e
        if concrete(k.shape[2]) != kd or concrete(v.shape[2]) != vd:
            raise Invalid("kdim/vdim")
        bi, li = (0, 1) if bf else (1, 0)
        if not (same(q.shape[bi], k.shape[bi]) and same(k.shape[bi], v.shape[bi]) and same(k.shape[li],
                                                                                             v.shape[li])):
            raise Invalid("attention batch/source")
        src = k.shape[li]
        extra = int(bool(a["add_bias_kv"])) + int(bool(a["add_zero_attn"]))
        if extra:
            src = affine(src, extra, src.v + extra) if src.sym else C(src.v + extra)
        out = TV(q.shape)
        if not kw.get("need_weights", True):
            return (out, None)
        b, L = q.shape[bi], q.shape[li]
        if kw.get("average_attn_weights", True):
            return (out, TV((b, L, src)))
        return (out, TV((b, C(heads), L, src)))
    if name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        want = 2 if name == "TransformerDecoderLayer" else 1
        if len(ins) != want:
            raise Invalid("transformer inputs")
        x = _float(ins[0])
        if x.rank != 3:
            raise Invalid("transformer rank")
        e = _infer(a, "d_model", concrete(x.shape[2]), "d_model")
        if e % as_int(a["nhead"], "nhead", 1):
            raise Invalid("nhead divides")
        if want == 2:
            m = _float(ins[1])
            bi = 0 if a["batch_first"] else 1
            if m.rank != 3 or concrete(m.shape[2]) != e or not same(m.shape[bi], x.shape[bi]):
                raise Invalid("memory")
        return x
    raise Invalid(f"no rule for {name}")


# ====================================================================== module expressions (children)
class ModE:
    """A module expression: what a child is bound to."""

    def __deepcopy__(self, memo):
        return self


class LayerE(ModE):
    def __init__(self, name, given: dict, nn_prefix=False, npos=None, trailing=False, order_seed=0):
        self.name = name
        self.given = dict(given)  # param -> text ("_" for inferred)
        self.nn = nn_prefix
        self.npos = npos
        self.trailing = trailing
        self.order_seed = order_seed

    def render(self) -> str:
        sig = SIG[self.name]
        prefix = 0
        while prefix < len(sig) and sig[prefix] in self.given:
            prefix += 1
        npos = prefix if self.npos is None else min(self.npos, prefix)
        parts = [self.given[p] for p in sig[:npos]]
        kws = [p for p in sig[npos:] if p in self.given]
        random.Random(self.order_seed).shuffle(kws)
        parts += [f"{p}={self.given[p]}" for p in kws]
        inner = ", ".join(parts) + ("," if self.trailing and parts else "")
        return f"{'nn.' if self.nn else ''}{self.name}({inner})"

    def build(self, env):
        a = {p: default_of(self.name, p) for p in SIG[self.name]}
        for p, text in self.given.items():
            a[p] = ev(text, env)
        inf = INFERABLE.get(self.name)
        if inf and inf not in self.given:
            a[inf] = INFER
        if self.name == "Bilinear" and "in2_features" not in self.given:
            a["in2_features"] = INFER
        if self.name in ("InstanceNorm1d", "InstanceNorm2d") and getattr(self, "edge", False):
            a["_edge"] = True
        return LayerInst(self.name, a, getattr(self, "pretend", False))


class EncoderE(ModE):
    def __init__(self, layer: LayerE, num: str, extra: str = ""):
        self.layer, self.num, self.extra = layer, num, extra

    def render(self):
        return f"TransformerEncoder({self.layer.render()}, num_layers={self.num}{self.extra})"

    def build(self, env):
        inst = self.layer.build(env)
        as_int(ev(self.num, env), "num_layers", 1)
        return inst  # same shape rule as one layer


class SeqE(ModE):
    """Sequential(a, b, *splice, ...), or with ``keys`` Sequential({"conv": a, "norm-1": b})."""

    def __init__(self, items, trailing=False, keys=None):
        self.items, self.trailing, self.keys = items, trailing, keys

    def render(self):
        if self.keys is not None:
            return "Sequential({" + ", ".join(f'"{k}": {i.render()}' for k, i in zip(self.keys, self.items)) + "})"
        return "Sequential(" + ", ".join(i.render() for i in self.items) + ("," if self.trailing else "") + ")"

    def build(self, env):
        insts = []
        for i in self.items:
            insts += i.build(env) if isinstance(i, SpliceE) else [i.build(env)]
        return SeqInst(insts)


class SpliceE(ModE):
    """Modules spliced into a Sequential: *[item for _ in range(count)], or *([item] if cond else [])."""

    def __init__(self, item, count: str | None = None, cond: str | None = None):
        self.item, self.count, self.cond = item, count, cond

    def render(self):
        if self.cond is not None:
            return f"*([{self.item.render()}] if {self.cond} else [])"
        return f"*[{self.item.render()} for _ in range({self.count})]"

    def build(self, env) -> list:
        if self.cond is not None:
            present = ev(self.cond, env)
            if not isinstance(present, bool):
                raise Invalid("condition")
            return [self.item.build(env)] if present else []
        n = as_int(ev(self.count, env), "count", 0)
        if n > 8:
            raise Invalid("too many")
        return [self.item.build(env) for _ in range(n)]


class DictCompE(ModE):
    """ModuleDict({"layer" + str(i): item for i in range(count)}), or the same in a Sequential (kind "seq")."""

    def __init__(self, prefix: str, item, count: str, var="i", offset=0, kind="dict"):
        self.prefix, self.item, self.count, self.var, self.offset, self.kind = prefix, item, count, var, offset, kind

    def key_text(self):
        i = f"{self.var} + {self.offset}" if self.offset else self.var
        return f'"{self.prefix}" + str({i})'

    def render(self):
        comp = f"{{{self.key_text()}: {self.item.render()} for {self.var} in range({self.count})}}"
        return f"Sequential({comp})" if self.kind == "seq" else f"ModuleDict({comp})"

    def build(self, env):
        n = as_int(ev(self.count, env), "count", 0)
        if n > 8:
            raise Invalid("too many")
        items = {}
        for i in range(n):
            e2 = dict(env, **{self.var: i})
            items[ev(self.key_text(), e2)] = self.item.build(e2)
        return SeqInst(list(items.values())) if self.kind == "seq" else DictInst(items)


class RepE(ModE):
    """[item for var in range(count)], as Sequential(*[...]) or ModuleList([...])."""

    def __init__(self, kind, item, count: str, var="_"):
        self.kind, self.item, self.count, self.var = kind, item, count, var

    def render(self):
        comp = f"[{self.item.render()} for {self.var} in range({self.count})]"
        return f"Sequential(*{comp})" if self.kind == "seq" else f"ModuleList({comp})"

    def build(self, env):
        n = as_int(ev(self.count, env), "count", 0)
        if n > 8:
            raise Invalid("too many")
        items = []
        for i in range(n):
            e2 = dict(env)
            if self.var != "_":
                e2[self.var] = i
            items.append(self.item.build(e2))
        return SeqInst(items) if self.kind == "seq" else ListInst(items)


class ListE(ModE):
    def __init__(self, items):
        self.items = items

    def render(self):
        return "ModuleList([" + ", ".join(i.render() for i in self.items) + "])"

    def build(self, env):
        return ListInst([i.build(env) for i in self.items])


class DictE(ModE):
    def __init__(self, keys, items, quote='"'):
        self.keys, self.items, self.quote = keys, items, quote

    def render(self):
        q = self.quote
        return "ModuleDict({" + ", ".join(f"{q}{k}{q}: {i.render()}" for k, i in zip(self.keys, self.items)) + "})"

    def build(self, env):
        return DictInst(dict(zip(self.keys, [i.build(env) for i in self.items])))


class BlockE(ModE):
    def __init__(self, block, args: list, kwargs: dict):
        self.block, self.args, self.kwargs = block, list(args), dict(kwargs)

    def render(self):
        parts = list(self.args) + [f"{k}={v}" for k, v in self.kwargs.items()]
        return f"{self.block.name}({', '.join(parts)})"

    def build(self, env):
        b = self.block
        benv = dict(b.consts_env)
        names = [p for p, _ in b.params]
        if len(self.args) > len(names):
            raise Invalid("too many block args")
        bound = set()
        for p, text in zip(names, self.args):
            benv[p] = ev(text, env)
            bound.add(p)
        for k, text in self.kwargs.items():
            if k not in names or k in bound:
                raise Invalid("bad keyword")
            benv[k] = ev(text, env)
            bound.add(k)
        for p, d in b.params:
            if p not in bound:
                if d is None:
                    raise Invalid("missing block arg")
                benv[p] = ev(d, b.consts_env)
        return BlockInst(b, benv)


# ---------------------------------------------------------------- instances (one per child, per body run)
class LayerInst:
    def __init__(self, name, a, pretend=False):
        self.name, self.a, self.called, self.pretend = name, a, False, pretend

    def call(self, ins, kw=None):
        a = dict(self.a)
        try:
            out = layer_apply(self.name, a, ins, kw or {})
        except Invalid:
            if not self.pretend:
                raise
            out = ins[0]  # a deliberate edge (a kernel larger than its input): check must refuse it
        if not self.called:
            self.a, self.called = a, True
        return out


class SeqInst:
    def __init__(self, items):
        self.items = items

    def call(self, ins, kw=None):
        if kw:
            raise Invalid("keywords to a Sequential")
        if not self.items:
            raise Invalid("empty Sequential")
        cur = ins
        for it in self.items:
            out = it.call(cur)
            if not isinstance(out, TV):
                raise Invalid("tuple inside a Sequential")
            cur = [out]
        return cur[0]


class ListInst:
    def __init__(self, items):
        self.items = items

    def call(self, ins, kw=None):
        raise Invalid("a ModuleList is not called")


class DictInst:
    def __init__(self, items):
        self.items = items

    def call(self, ins, kw=None):
        raise Invalid("a ModuleDict is not called")


class BlockInst:
    def __init__(self, block, env):
        self.block, self.env = block, env
        self.first = None
        self.result = None

    def call(self, ins, kw=None):
        if kw:
            raise Invalid("keywords to a block")
        if self.first is not None:
            if len(ins) != len(self.first) or not all(same_shape(a.shape, b.shape) and a.dtype == b.dtype
                                                       for a, b in zip(ins, self.first)):
                raise Invalid("block called with another shape")
            return self.result
        self.first = list(ins)
        self.result = self.block.run(self.env, ins)
        return self.result


# ====================================================================== forward IR
class X:
    """A forward expression."""

    prec = 20

    def __deepcopy__(self, memo):
        return self


def wrap(e: X, prec: int) -> str:
    s = e.render()
    return f"({s})" if e.prec < prec else s


class Ref(X):
    def __init__(self, name):
        self.name = name

    def render(self):
        return self.name

    def ev(self, st):
        if self.name in st.vals:
            return st.vals[self.name]
        if self.name in st.params:
            return st.params[self.name]
        raise Invalid(f"no value {self.name}")


class Lit(X):
    def __init__(self, text, prec=None):
        self.text = text
        self.prec = prec if prec is not None else 20 if not text.startswith("-") else 12

    def render(self):
        return self.text

    def ev(self, st):
        return ev(self.text, st.env)


class IntLit(X):
    """An int in forward, maybe an expression of consts and block params: `n * 2`, `-1`."""

    def __init__(self, text):
        self.text = text
        self.prec = 20 if re.fullmatch(r"\w+", text) else 10

    def render(self):
        return self.text

    def ev(self, st):
        v = ev(self.text, st.env)
        return IntV(C(as_int(v)))


class SizeX(X):
    def __init__(self, x: X, i, form="size"):
        self.x, self.i, self.form = x, i, form

    def render(self):
        if self.form == "size":
            return f"{wrap(self.x, 14)}.size({self.i})"
        return f"{wrap(self.x, 14)}.shape[{self.i}]"

    def ev(self, st):
        t = self.x.ev(st)
        if not isinstance(t, TV) or not -t.rank <= self.i < t.rank:
            raise Invalid("size index")
        return IntV(t.shape[self.i])


class IntBin(X):
    def __init__(self, op, a, b):
        self.op, self.a, self.b = op, a, b
        self.prec = {"*": 11, "//": 11, "+": 10, "-": 10}[op]

    def render(self):
        return f"{wrap(self.a, self.prec)} {self.op} {wrap(self.b, self.prec + 1)}"

    def ev(self, st):
        a, b = self.a.ev(st), self.b.ev(st)
        if not (isinstance(a, IntV) and isinstance(b, IntV)):
            raise Invalid("int arithmetic on tensors")
        if self.op == "*":
            return IntV(dmul(a.d, b.d))
        if self.op == "//":
            return IntV(ddiv(a.d, b.d))
        raise Invalid("no + - on sizes")  # kept simple: the generator does not write them


class CallX(X):
    """A call of a child: fc(x), layers[0](x), convs["a"](x), convs.a(x), convs[key](x), a loop variable layer(x).

    target: ("child", name) | ("loopvar", var) | ("index", list, i) | ("key", dict, key, quote) | ("attr", dict, key)
    | ("keyvar", dict, var), var a loop variable holding a key."""

    def __init__(self, target, args, kwargs=None):
        self.target, self.args, self.kwargs = target, list(args), dict(kwargs or {})

    def render(self):
        kind = self.target[0]
        if kind in ("child", "loopvar"):
            f = self.target[1]
        elif kind in ("index", "keyvar"):
            f = f"{self.target[1]}[{self.target[2]}]"
        elif kind == "attr":
            f = f"{self.target[1]}.{self.target[2]}"
        else:
            f = f"{self.target[1]}[{self.target[3]}{self.target[2]}{self.target[3]}]"
        parts = [a.render() for a in self.args] + [f"{k}={v}" for k, v in self.kwargs.items()]
        return f"{f}({', '.join(parts)})"

    def ev(self, st):
        kind = self.target[0]
        name = self.target[1]
        if kind == "loopvar":
            inst = st.loopvars.get(name)
            if inst is None:
                raise Invalid("no loop var")
        else:
            if name not in st.children:
                raise Invalid(f"no child {name}")
            inst = st.children[name]
            if kind == "index":
                if inst is None or not isinstance(inst, ListInst):
                    raise Invalid("index of a non-list")
                i = int(self.target[2])
                if not -len(inst.items) <= i < len(inst.items):
                    raise Invalid("list index")
                inst = inst.items[i]
            elif kind in ("key", "attr", "keyvar"):
                key = st.env.get(self.target[2]) if kind == "keyvar" else self.target[2]
                if inst is None or not isinstance(inst, DictInst) or key not in inst.items:
                    raise Invalid("dict key")
                inst = inst.items[key]
        args = [a.ev(st) for a in self.args]
        if not all(isinstance(a, TV) for a in args):
            raise Invalid("modules take tensors")
        kw = {k: ev(v, st.env) for k, v in self.kwargs.items()}
        if inst is None:  # an absent conditional child: the identity
            if len(args) != 1 or kw:
                raise Invalid("absent child with several inputs")
            return args[0]
        return inst.call(args, kw)


def _t(v, what="input") -> TV:
    if not isinstance(v, TV):
        raise Invalid(f"{what} is not a tensor")
    return v


def _norm_dim(d, rank, extra=0):
    if rank + extra == 0:
        raise Invalid("a dim of a 0-d tensor")  # torch allows 0 and -1 here; the generator does not go there
    r = rank + extra
    d = as_int(d, "dim")
    if not -r <= d < r:
        raise Invalid("dim out of range")
    return d % r


SAME_OPS = {"relu", "gelu", "tanh", "sigmoid", "silu", "elu", "selu", "leaky_relu", "softplus", "hardswish",
            "hardsigmoid", "mish", "relu6", "abs", "neg", "exp", "clamp", "contiguous", "dropout", "hardtanh",
            "logsigmoid", "softmax", "log_softmax", "normalize"}


def op_apply(op: str, args: list, kw: dict):
    """torch's result shape for a tensor operation (args already evaluated; ints as IntV, others plain)."""
    if op in SAME_OPS:
        x = _float(_t(args[0]))
        if op in ("softmax", "log_softmax", "normalize"):
            d = kw.get("dim", args[1] if len(args) > 1 else None)
            if d is None:
                raise Invalid("softmax needs a dim here")
            _norm_dim(d, x.rank)
        return x
    if op in ("view", "reshape"):
        x = _t(args[0])
        sizes = args[1:]
        if len(sizes) == 1 and isinstance(sizes[0], tuple):
            sizes = list(sizes[0])
        dims, minus = [], None
        for i, s in enumerate(sizes):
            if isinstance(s, IntV):
                if not s.d.sym and s.d.v == -1:
                    if minus is not None:
                        raise Invalid("two -1")
                    minus = i
                    dims.append(None)
                    continue
                if not s.d.sym and s.d.v < 0:
                    raise Invalid("negative size")
                dims.append(s.d)
            else:
                raise Invalid("view size")
        total = dprod(x.shape)
        known = dprod([d for d in dims if d is not None])
        if minus is not None:
            dims[minus] = ddiv(total, known)
            if dims[minus].v < 1:
                raise Invalid("empty")
        elif not same(total, known):
            raise Invalid("view numel")
        return TV(tuple(dims), x.dtype, x.hi)
    if op == "flatten":
        x = _t(args[0])
        s = kw.get("start_dim", args[1] if len(args) > 1 else 0)
        e = kw.get("end_dim", args[2] if len(args) > 2 else -1)
        return layer_apply("Flatten", {"start_dim": s, "end_dim": e}, [x], {})
    if op == "permute":
        x = _t(args[0])
        dims = args[1:]
        if len(dims) == 1 and isinstance(dims[0], tuple):
            dims = list(dims[0])
        ds = [_norm_dim(d, x.rank) for d in dims]
        if sorted(ds) != list(range(x.rank)):
            raise Invalid("permutation")
        return TV(tuple(x.shape[d] for d in ds), x.dtype, x.hi)
    if op == "transpose":
        x = _t(args[0])
        a, b = _norm_dim(args[1], x.rank), _norm_dim(args[2], x.rank)
        s = list(x.shape)
        s[a], s[b] = s[b], s[a]
        return TV(tuple(s), x.dtype, x.hi)
    if op == "t":
        x = _t(args[0])
        if x.rank != 2:
            raise Invalid("t of non-matrix")
        return TV(x.shape[::-1], x.dtype, x.hi)
    if op == "unsqueeze":
        x = _t(args[0])
        d = _norm_dim(args[1], x.rank, 1)
        return TV(x.shape[:d] + (C(1),) + x.shape[d:], x.dtype, x.hi)
    if op == "squeeze":
        x = _t(args[0])
        if len(args) < 2:
            return TV(tuple(d for d in x.shape if d.sym or d.v != 1), x.dtype, x.hi)
        d = _norm_dim(args[1], x.rank)
        if not x.shape[d].sym and x.shape[d].v == 1:
            return TV(x.shape[:d] + x.shape[d + 1:], x.dtype, x.hi)
        if x.shape[d].sym:
            raise Invalid("squeeze of a symbolic dim")
        return x  # torch: squeezing a dim that is not 1 changes nothing
    if op in ("mean", "sum", "amax", "amin"):
        x = _float(_t(args[0]))
        d = kw.get("dim", args[1] if len(args) > 1 else None)
        keep = kw.get("keepdim", args[2] if len(args) > 2 else False)
        if d is None:
            if op in ("amax", "amin"):
                raise Invalid("amax needs dim here")
            return TV(tuple(C(1) for _ in x.shape) if keep else ())
        ds = sorted({_norm_dim(i, x.rank) for i in (d if isinstance(d, tuple) else (d,))})
        if len(ds) != len(d if isinstance(d, tuple) else (d,)):
            raise Invalid("repeated dim")
        if keep:
            return TV(tuple(C(1) if i in ds else s for i, s in enumerate(x.shape)))
        return TV(tuple(s for i, s in enumerate(x.shape) if i not in ds))
    if op in ("max_dim", "argmax"):
        x = _float(_t(args[0]))
        d = _norm_dim(kw.get("dim", args[1] if len(args) > 1 else None), x.rank)
        keep = kw.get("keepdim", False)
        shape = tuple(C(1) if i == d else s for i, s in enumerate(x.shape)) if keep else x.shape[:d] + x.shape[d + 1:]
        idx = TV(shape, "long", x.shape[d].v if not x.shape[d].sym else 10**9)
        if op == "argmax":
            return idx
        return (TV(shape), idx)
    if op == "max_all":
        return TV((), _float(_t(args[0])).dtype)
    if op in ("chunk", "split"):
        x = _t(args[0])
        n = as_int(args[1], op, 1) if not isinstance(args[1], (list, tuple)) else list(args[1])
        d = _norm_dim(kw.get("dim", args[2] if len(args) > 2 else 0), x.rank)
        L = concrete(x.shape[d], "chunked dim")
        if op == "chunk":
            size = -(-L // n)
            sizes = [size] * (L // size) + ([L % size] if L % size else [])
        elif isinstance(n, list):
            if sum(n) != L:
                raise Invalid("split sizes")
            sizes = n
        else:
            sizes = [n] * (L // n) + ([L % n] if L % n else [])
        return tuple(TV(x.shape[:d] + (C(s),) + x.shape[d + 1:], x.dtype, x.hi) for s in sizes)
    if op in ("cat", "stack"):
        ts = args[0]
        if not isinstance(ts, list) or not ts or not all(isinstance(t, TV) for t in ts):
            raise Invalid("cat of non-tensors")
        if len({t.dtype for t in ts}) != 1:
            raise Invalid("cat of mixed dtypes")
        r = ts[0].rank
        if any(t.rank != r for t in ts):
            raise Invalid("cat ranks")
        d = kw.get("dim", args[1] if len(args) > 1 else 0)
        if op == "stack":
            d = _norm_dim(d, r, 1)
            if not all(same_shape(t.shape, ts[0].shape) for t in ts):
                raise Invalid("stack shapes")
            return TV(ts[0].shape[:d] + (C(len(ts)),) + ts[0].shape[d:], ts[0].dtype)
        d = _norm_dim(d, r)
        for t in ts:
            if not all(same(t.shape[i], ts[0].shape[i]) for i in range(r) if i != d):
                raise Invalid("cat shapes")
        total = ts[0].shape[d]
        for t in ts[1:]:
            if total.sym or t.shape[d].sym:
                total = Dim(total.v + t.shape[d].v, 1, (("op", "catsum", total, t.shape[d]),))
            else:
                total = C(total.v + t.shape[d].v)
        return TV(ts[0].shape[:d] + (total,) + ts[0].shape[d + 1:], ts[0].dtype)
    if op in ("matmul", "bmm"):
        a, b = _float(_t(args[0])), _float(_t(args[1]))
        if op == "bmm" and not (a.rank == b.rank == 3 and same(a.shape[0], b.shape[0])):
            raise Invalid("bmm")
        return matmul_shape(a, b)
    if op in ("add", "mul", "sub", "div"):
        return binop_shape(args[0], args[1])
    if op == "to_float":
        x = _t(args[0])
        return TV(x.shape, "float")
    if op in ("rand", "randn"):  # sizes as IntV, symbolic ones too: torch.rand(x.shape[0], 1)
        if not args or not all(isinstance(a, IntV) and a.d.v >= 1 for a in args):
            raise Invalid("rand sizes")
        return TV(tuple(a.d for a in args))
    if op in ("rand_like", "randn_like"):
        return TV(_float(_t(args[0])).shape)
    if op == "sdpa":  # F.scaled_dot_product_attention(q, k, v): [..., L, E] [..., S, E] [..., S, Ev] -> [..., L, Ev]
        q, k, v = (_float(_t(a)) for a in args[:3])
        if not q.rank == k.rank == v.rank >= 3 or not same(q.shape[-1], k.shape[-1]) \
                or not same(k.shape[-2], v.shape[-2]) or not same_shape(q.shape[:-2], k.shape[:-2]) \
                or not same_shape(k.shape[:-2], v.shape[:-2]):
            raise Invalid("attention shapes")
        p = kw.get("dropout_p", 0.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise Invalid("dropout_p")
        if kw.get("is_causal") and not same(q.shape[-2], k.shape[-2]):
            raise Invalid("causal attention of two lengths")
        return TV(q.shape[:-1] + v.shape[-1:])
    raise Invalid(f"no op {op}")


def matmul_shape(a: TV, b: TV) -> TV:
    if a.rank == 0 or b.rank == 0:
        raise Invalid("matmul of a scalar")
    sa, sb = a.shape, b.shape
    if a.rank == 1 and b.rank == 1:
        if not same(sa[0], sb[0]):
            raise Invalid("dot")
        return TV(())
    if a.rank == 1:
        if not same(sa[0], sb[-2]):
            raise Invalid("matmul inner")
        return TV(sb[:-2] + sb[-1:])
    if b.rank == 1:
        if not same(sa[-1], sb[0]):
            raise Invalid("matmul inner")
        return TV(sa[:-1])
    if not same(sa[-1], sb[-2]):
        raise Invalid("matmul inner")
    batch = bcast(sa[:-2], sb[:-2])
    return TV(batch + (sa[-2], sb[-1]))


def binop_shape(a, b):
    ta, tb = isinstance(a, TV), isinstance(b, TV)
    if not ta and not tb:
        raise Invalid("scalar arithmetic")
    if ta and tb:  # torch promotes: long with float is float
        dtype = a.dtype if a.dtype == b.dtype else "float" if "float" in (a.dtype, b.dtype) else "long"
        return TV(bcast(a.shape, b.shape), dtype)
    t = a if ta else b
    s = b if ta else a
    if isinstance(s, IntV):
        raise Invalid("tensor with a size")
    if t.dtype != "float":
        if isinstance(s, float):
            if not RELAX[0]:
                raise Invalid("float arithmetic on indices")
            return TV(t.shape, "float")
        return TV(t.shape, t.dtype, t.hi)
    return t


class OpX(X):
    """A tensor op: spelled as F.x / torch.x (form "F"/"torch") or a method (form "method", args[0] the tensor)."""

    SIZED = ("view", "reshape", "rand", "randn")  # ops whose int arguments are sizes, symbolic ones too

    def __init__(self, op, spelled, form, args, kwargs=None):
        self.op, self.spelled, self.form = op, spelled, form
        self.args, self.kwargs = list(args), list((kwargs or {}).items())

    def render(self):
        def arg(a):
            return a.render() if isinstance(a, X) else a

        rest = self.args[1:] if self.form == "method" else self.args
        parts = [arg(a) for a in rest] + [f"{k}={arg(v)}" for k, v in self.kwargs]
        if self.form == "method":
            return f"{wrap(self.args[0], 14)}.{self.spelled}({', '.join(parts)})"
        return f"{self.spelled}({', '.join(parts)})"

    def ev(self, st):
        def val(a):
            if isinstance(a, X):
                return a.ev(st)
            if isinstance(a, ListX):
                return a.ev(st)
            v = ev(a, st.env)
            if isinstance(v, int) and not isinstance(v, bool) and self.op in self.SIZED:
                return IntV(C(v))
            if isinstance(v, tuple) and self.op in ("view", "reshape"):
                return tuple(IntV(C(i)) if isinstance(i, int) else i for i in v)
            return v

        args = [val(a) for a in self.args]
        kw = {k: val(v) for k, v in self.kwargs}
        for i, a in enumerate(args):
            if isinstance(a, IntV) and self.op not in self.SIZED:
                if a.d.sym:
                    raise Invalid("symbolic int as an op argument")
                args[i] = a.d.v
        return op_apply(self.op, args, kw)


class ListX(X):
    def __init__(self, items):
        self.items = items

    def render(self):
        return "[" + ", ".join(i.render() for i in self.items) + "]"

    def ev(self, st):
        return [i.ev(st) for i in self.items]


class BinX(X):
    PREC = {"+": 10, "-": 10, "*": 11, "/": 11, "@": 11, "**": 13}

    def __init__(self, op, a, b):
        self.op, self.a, self.b = op, a, b
        self.prec = self.PREC[op]

    def render(self):
        if self.op == "**":
            return f"{wrap(self.a, 14)} ** {wrap(self.b, 13)}"
        return f"{wrap(self.a, self.prec)} {self.op} {wrap(self.b, self.prec + 1)}"

    def ev(self, st):
        a, b = self.a.ev(st), self.b.ev(st)
        if isinstance(a, list) or isinstance(b, list):  # lists join as in Python: a new list
            if self.op != "+" or not (isinstance(a, list) and isinstance(b, list)):
                raise Invalid("arithmetic on a list")
            return a + b
        if self.op == "@":
            return matmul_shape(_float(_t(a)), _float(_t(b)))
        if self.op == "**":
            if not isinstance(a, TV) or isinstance(b, TV):
                raise Invalid("pow")
            return _float(a)
        return binop_shape(a, b)


class NegX(X):
    prec = 12

    def __init__(self, a):
        self.a = a

    def render(self):
        return f"-{wrap(self.a, 12)}"

    def ev(self, st):
        return _float(_t(self.a.ev(st)))


class IndexX(X):
    """x[items]: items are ("int", text) | ("slice", lo, hi, step) | ("ellipsis",) | ("none",)."""

    def __init__(self, x, items, edge=False):
        self.x, self.items, self.edge = x, items, edge

    def render(self):
        parts = []
        for it in self.items:
            if it[0] == "int":
                parts.append(it[1])
            elif it[0] == "slice":
                lo, hi, step = it[1:]
                s = f"{lo or ''}:{hi or ''}"
                if step is not None:
                    s += f":{step}"
                parts.append(s)
            elif it[0] == "ellipsis":
                parts.append("...")
            else:
                parts.append("None")
        return f"{wrap(self.x, 14)}[{', '.join(parts)}]"

    def ev(self, st):
        x = self.x.ev(st)
        if isinstance(x, list) and len(self.items) == 1 and self.items[0][0] == "slice":  # feats[1:]: a new list
            lo, hi, step = (None if v is None else as_int(ev(v, st.env)) for v in self.items[0][1:])
            if step is not None and step < 1:
                raise Invalid("slice step")
            return x[lo:hi:step]
        if isinstance(x, (tuple, list)):  # a tuple result or a list: pick an item
            if len(self.items) != 1 or self.items[0][0] != "int":
                raise Invalid("index of a tuple")
            i = as_int(ev(self.items[0][1], st.env))
            if not -len(x) <= i < len(x):
                raise Invalid("tuple index")
            return x[i]
        x = _t(x)
        n_real = sum(1 for it in self.items if it[0] in ("int", "slice"))
        if n_real > x.rank:
            raise Invalid("too many indices")
        items = []
        for it in self.items:
            if it[0] == "ellipsis":
                items += [("slice", None, None, None)] * (x.rank - n_real)
            else:
                items.append(it)
        if not any(it[0] == "ellipsis" for it in self.items):
            items += [("slice", None, None, None)] * (x.rank - n_real)
        out, k = [], 0
        for it in items:
            if it[0] == "none":
                out.append(C(1))
                continue
            d = x.shape[k]
            k += 1
            if it[0] == "int":
                i = as_int(ev(it[1], st.env))
                if d.sym:
                    if i not in (0, -1):
                        raise Invalid("index of a symbolic dim")
                elif not -d.v <= i < d.v:
                    raise Invalid("index out of range")
                continue
            lo, hi, step = (None if v is None else as_int(ev(v, st.env)) for v in it[1:])
            if step is not None and step < 1:
                if self.edge:  # a deliberate edge: torch refuses it, so must check
                    out.append(d)
                    continue
                raise Invalid("slice step")
            if lo is None and hi is None and step in (None, 1):
                out.append(d)
                continue
            if d.sym:
                if hi is None and step in (None, 1) and lo is not None and 0 < lo < d.v:
                    out.append(affine(d, -lo, d.v - lo))
                    continue
                raise Invalid("slice of a symbolic dim")
            n = len(range(d.v)[slice(lo, hi, step)])
            if n < 1:
                raise Invalid("empty slice")
            out.append(C(n))
        return TV(tuple(out), x.dtype, x.hi)


# ---------------------------------------------------------------- statements
class Stmt:
    def __deepcopy__(self, memo):
        return self


class Assign(Stmt):
    def __init__(self, targets, value: X, semi=False):
        self.targets, self.value, self.semi = targets, value, semi

    def render(self, ind):
        def tgt(t):
            if isinstance(t, str):
                return t
            return "(" + ", ".join(tgt(i) for i in t) + ("," if len(t) == 1 else "") + ")"

        if isinstance(self.targets, str):
            lhs = self.targets
        else:
            lhs = ", ".join(tgt(t) for t in self.targets) + ("," if len(self.targets) == 1 else "")
        return [ind + f"{lhs} = {self.value.render()}" + (";" if self.semi else "")]

    def run(self, st):
        v = self.value.ev(st)
        if isinstance(self.targets, str):
            st.bind(self.targets, v)
            return
        st.unpack(self.targets, v)


class Return(Stmt):
    def __init__(self, values):
        self.values = values

    def render(self, ind):
        return [ind + "return " + ", ".join(v.render() for v in self.values)]

    def run(self, st):
        out = [v.ev(st) for v in self.values]
        for o in out:
            if not isinstance(o, (TV, tuple)):
                raise Invalid("return of a non-tensor")
        st.result = out[0] if len(out) == 1 else tuple(out)


class For(Stmt):
    """for var in over: kind "list" (a ModuleList child), "range" (range(over)), or over a ModuleDict child:
    "items" (var is (key, module)), "values", "keys" and "dict" (var a key, as `for key in d`)."""

    ITER = {"list": "{}", "range": "range({})", "items": "{}.items()", "values": "{}.values()", "keys": "{}.keys()",
            "dict": "{}"}

    def __init__(self, var, over, body, kind="list"):
        self.var, self.over, self.body, self.kind = var, over, body, kind

    def render(self, ind):
        it = self.ITER[self.kind].format(self.over)
        var = self.var if isinstance(self.var, str) else ", ".join(self.var)
        lines = [ind + f"for {var} in {it} {{"]
        for s in self.body:
            lines += s.render(ind + "    ")
        return lines + [ind + "}"]

    def run(self, st):
        if self.kind == "range":
            elements = range(as_int(ev(self.over, st.env), "range", 0))
        else:
            inst = st.children.get(self.over)
            if not isinstance(inst, ListInst if self.kind == "list" else DictInst):
                raise Invalid("loop over a child of another kind")
            elements = inst.items if self.kind == "list" else list(inst.items.items())
        for el in elements:
            if self.kind in ("list", "values"):
                st.loopvars[self.var] = el if self.kind == "list" else el[1]
            elif self.kind == "items":
                st.env = dict(st.env, **{self.var[0]: el[0]})
                st.loopvars[self.var[1]] = el[1]
            elif self.kind in ("keys", "dict"):
                st.env = dict(st.env, **{self.var: el[0]})
            else:
                st.env = dict(st.env, **{self.var: el})
            for s in self.body:
                s.run(st)
        for v in [self.var] if isinstance(self.var, str) else self.var:
            st.loopvars.pop(v, None)


class If(Stmt):
    def __init__(self, cond, then, orelse=None):
        self.cond, self.then, self.orelse = cond, then, orelse

    def render(self, ind):
        lines = [ind + f"if {self.cond} {{"]
        for s in self.then:
            lines += s.render(ind + "    ")
        if self.orelse is not None:
            lines.append(ind + "} else {")
            for s in self.orelse:
                lines += s.render(ind + "    ")
        return lines + [ind + "}"]

    def run(self, st):
        c = ev(self.cond, st.env)
        if not isinstance(c, bool):
            raise Invalid("condition")
        for s in self.then if c else (self.orelse or []):
            s.run(st)


# ---------------------------------------------------------------- bodies: models and blocks
@dataclass
class ChildDecl:
    name: str
    mod: ModE
    cond: str | None = None
    comment: str = ""
    quoted: bool = False  # "block1-0" = ...: a name no identifier spells

    def render(self, ind):
        c = f" if {self.cond}" if self.cond else ""
        name = f'"{self.name}"' if self.quoted else self.name
        return [ind + f"{name} = {self.mod.render()}{c}{self.comment}"]


@dataclass
class TieDecl:
    """a.weight = b.weight: ``a`` and ``b`` paths of children and ModuleDict keys, as tuples."""

    a: tuple
    b: tuple
    param: str = "weight"

    def render(self, ind):
        return [ind + f"{'.'.join(self.a)}.{self.param} = {'.'.join(self.b)}.{self.param}"]

    def check(self, st):
        """Both sides name a parameter of one shape (Invalid otherwise): the shape, as sizes."""
        sa, sb = (param_shape(_at_path(st, p), self.param) for p in (self.a, self.b))
        if sa is None or sa != sb:
            raise Invalid("tied parameters of different shapes")
        return sa


def _at_path(st, path):
    inst = st.children.get(path[0])
    for key in path[1:]:
        if not isinstance(inst, DictInst) or key not in inst.items:
            raise Invalid("no such module")
        inst = inst.items[key]
    return inst


def param_shape(inst, param: str):
    """The shape of a layer's ``weight`` or ``bias`` once its sizes are known (None: it has none, or not yet)."""
    if not isinstance(inst, LayerInst) or not inst.called:
        return None
    a, n = inst.a, inst.name
    if n == "Linear":
        w, b = (a["out_features"], a["in_features"]), (a["out_features"],) if a["bias"] else None
    elif n == "Embedding":
        w, b = (a["num_embeddings"], a["embedding_dim"]), None
    elif n in ("Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"):
        nd, g = int(n[-2]), a["groups"]
        k = tuple(tup(a["kernel_size"], nd))
        io = (a["in_channels"], a["out_channels"] // g) if n.startswith("ConvT") else \
            (a["out_channels"], a["in_channels"] // g)
        w, b = io + k, (a["out_channels"],) if a["bias"] else None
    elif n == "LayerNorm":
        ns = a["normalized_shape"]
        ns = (ns,) if isinstance(ns, int) else tuple(ns)
        w = ns if a["elementwise_affine"] else None
        b = ns if w and a["bias"] else None
    elif n in ("BatchNorm1d", "BatchNorm2d", "GroupNorm"):
        c = a["num_channels"] if n == "GroupNorm" else a["num_features"]
        w = b = (c,) if a["affine"] else None
    else:
        return None
    return w if param == "weight" else b


@dataclass
class ParamDecl:
    kind: str  # "param" | "buffer"
    name: str
    dims: list  # texts
    init: str | None

    def render(self, ind):
        init = f" = {self.init}" if self.init else ""
        return [ind + f"{self.kind} {self.name}: [{', '.join(self.dims)}]{init}"]


class State:
    """The evaluation state of one run of a body."""

    def __init__(self, env):
        self.env = dict(env)
        self.vals: dict = {}
        self.children: dict = {}
        self.params: dict = {}
        self.loopvars: dict = {}
        self.result = None

    def bind(self, name, v):
        if name in self.children or name in self.params:
            raise Invalid("a value named like a child")
        if v is None:
            raise Invalid("binding None")
        self.vals[name] = v

    def unpack(self, targets, v):
        if isinstance(v, list):
            v = tuple(v)
        if not isinstance(v, tuple):
            raise Invalid("unpack of a non-tuple")
        if len(v) != len(targets):
            raise Invalid("unpack count")
        for t, item in zip(targets, v):
            if t == "_":
                continue
            if isinstance(t, str):
                if item is None:
                    raise Invalid("binding None")
                self.bind(t, item)
            else:
                self.unpack(t, item)


class Body:
    """A model's or block's body: children, params, and a forward (None: children in order)."""

    def __init__(self):
        self.children: list[ChildDecl] = []
        self.params: list[ParamDecl] = []
        self.fwd_params: list[str] = ["x"]
        self.forward: list[Stmt] | None = []
        self.ties: list[TieDecl] = []

    def start(self, env, ins):
        st = State(env)
        for c in self.children:
            present = True
            if c.cond is not None:
                present = ev(c.cond, env)
                if not isinstance(present, bool):
                    raise Invalid("condition is not a bool")
            st.children[c.name] = c.mod.build(env) if present else None
        for p in self.params:
            dims = [as_int(ev(d, env), "param dim", 1) for d in p.dims]
            if p.init in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal") and len(dims) < 2:
                raise Invalid("fan of a 1-d tensor")
            st.params[p.name] = TV(tuple(C(d) for d in dims))
        if len(ins) != len(self.fwd_params):
            raise Invalid("input count")
        for n, t in zip(self.fwd_params, ins):
            st.vals[n] = t
        return st

    def run(self, env, ins):
        st = self.start(env, ins)
        if self.forward is None:
            if self.params or len(ins) != 1:
                raise Invalid("implicit forward")
            x = ins[0]
            for c in self.children:
                inst = st.children[c.name]
                if inst is None:
                    continue
                x = inst.call([x])
                if not isinstance(x, TV):
                    raise Invalid("tuple in an implicit forward")
            return x
        for s in self.forward:
            s.run(st)
        if st.result is None:
            raise Invalid("no return")
        for t in self.ties:  # the sizes a tie needs are known once forward has run (a block's, for these args)
            t.check(st)
        return st.result

    def render(self, ind):
        lines = []
        for c in self.children:
            lines += c.render(ind)
        for t in self.ties:
            lines += t.render(ind)
        for p in self.params:
            lines += p.render(ind)
        if self.forward is not None:
            lines.append(ind + f"forward({', '.join(self.fwd_params)}) {{")
            for s in self.forward:
                lines += s.render(ind + "    ")
            lines.append(ind + "}")
        return lines


class Block:
    """A block: a body, or (``seq``, a SeqE or a DictCompE of kind "seq") `block Name(...) = Sequential(...)`."""

    def __init__(self, name, params, body, consts_env):
        self.name, self.params, self.body, self.consts_env = name, params, body, consts_env
        self.seq: ModE | None = None

    def __deepcopy__(self, memo):
        return self

    def run(self, env, ins):
        if self.seq is not None:
            if len(ins) != 1:
                raise Invalid("a Sequential block takes one input")
            return self.seq.build(env).call(ins)
        e = dict(env)
        e["in_shape"] = tuple(SymEntry(d) if d.sym else d.v for d in ins[0].shape)
        return self.body.run(e, ins)

    def render(self):
        ps = ", ".join(p if d is None else f"{p}={d}" for p, d in self.params)
        if self.seq is not None:
            return [f"block {self.name}({ps}) = {self.seq.render()}"]
        return [f"block {self.name}({ps}) {{"] + self.body.render("    ") + ["}"]


# ====================================================================== the generator
CONST_NAMES = ["WIDTH", "HIDDEN", "DEPTH", "K", "HEADS", "C_OUT", "in_features", "out_features", "in_channels",
               "num_features", "Stage_2", "x_out", "hidden_size", "D_MODEL", "N_CLASSES", "embed_dim", "self_x",
               "Block_2", "M_2", "out_channels", "kernel_size", "in_dim1", "in_dim2"]
BLOCK_NAMES = ["Stage", "Stage_2", "Block", "Block_2", "ConvBN", "Residual", "Mixer", "Unit", "Cell", "Head",
               "Layer_2", "DoubleConv", "Proj", "Sequential_2", "MLP", "Encoder", "Linear_2"]
BLOCK_PARAMS = ["n", "k", "out", "width", "planes", "stride", "hidden", "depth", "in_features", "in_channels",
                "in_dim1", "in_dim2", "in_dim0",
                "out_features", "num_features", "d", "c", "act", "use_norm", "flag", "p_drop", "heads", "x_out"]
CHILD_NAMES = ["fc", "fc1", "fc2", "proj", "conv", "conv1", "conv2", "norm", "bn", "act", "drop", "pool", "layers",
               "blocks", "head", "encoder", "stem", "attn", "lstm", "gru", "rnn", "emb", "gate", "mlp", "branch",
               "downsample", "shortcut", "out_proj", "in_proj", "cls", "Stage_2", "x_out", "in_features",
               "out_features", "stages", "convs", "mix", "classifier", "embedding", "q_proj", "k_proj", "v_proj",
               "layer1", "layer_2", "features"]
VALUE_NAMES = ["h", "y", "z", "out", "x_out", "h_0", "x_1", "out_1", "feats", "a", "b", "t", "q", "k", "v", "tmp",
               "proj_out", "downsample_out", "shortcut_out", "fc_out", "in_dim0", "in_dim2", "x2", "out2",
               "res", "skip", "g", "e", "enc", "logits", "ctx", "pooled", "flat", "hidden", "state", "x2", "y_",
               "in_features", "out_features", "Stage_2", "num_features", "in_channels", "x_in", "sx"]
NASTY_NAMES = ["cuda", "to", "half", "apply", "type", "float", "double", "eval", "train", "parameters", "buffers",
               "children", "modules", "state_dict", "zero_grad", "register_buffer", "add_module", "get_submodule",
               "requires_grad_", "extra_repr", "block", "model", "param", "buffer", "const", "forward", "training",
               "in_shape", "self", "nn", "F", "torch", "super", "input", "range", "len", "Linear", "Sequential", "B",
               "T", "dump_patches", "call_super_init", "in_dim1", "in_channels", "in_features", "fc_out",
               "downsample_out", "shortcut_out", "proj_out", "x_out", "Stage_2", "weight", "bias", "cpu", "bfloat16"]
MODEL_NAMES = ["Net", "M", "Model", "Stage_2", "TinyNet", "Block_3", "Mixer_2", "Classifier", "x_out"]
INPUT_NAMES = ["x", "y", "tokens", "image", "seq", "feats", "ids", "x_in", "img", "z"]
INITS = ["zeros", "ones", "randn", "rand", "constant(0.5)", "normal(0.0, 0.02)", "uniform(-0.1, 0.1)",
         "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", None]
ACTS = ["ReLU", "GELU", "Tanh", "Sigmoid", "SiLU", "LeakyReLU", "ELU", "SELU", "ReLU6", "Hardswish", "Hardsigmoid",
        "Mish", "Softplus", "Hardtanh", "PReLU", "Softmax", "LogSoftmax"]
FUNCS = [  # (op, spelling, form, extra args/kwargs)
    ("relu", "F.relu", "F", {}), ("relu", "torch.relu", "torch", {}), ("relu", "relu", "method", {}),
    ("gelu", "F.gelu", "F", {}), ("gelu", "F.gelu", "F", {"approximate": '"tanh"'}),
    ("tanh", "torch.tanh", "torch", {}), ("tanh", "tanh", "method", {}), ("tanh", "F.tanh", "F", {}),
    ("sigmoid", "torch.sigmoid", "torch", {}), ("sigmoid", "sigmoid", "method", {}),
    ("silu", "F.silu", "F", {}), ("elu", "F.elu", "F", {}), ("selu", "F.selu", "F", {}),
    ("leaky_relu", "F.leaky_relu", "F", {"negative_slope": "0.2"}), ("softplus", "F.softplus", "F", {}),
    ("hardswish", "F.hardswish", "F", {}), ("mish", "F.mish", "F", {}), ("relu6", "F.relu6", "F", {}),
    ("abs", "torch.abs", "torch", {}), ("abs", "abs", "method", {}), ("exp", "torch.exp", "torch", {}),
    ("clamp", "torch.clamp", "torch", {"min": "-1.0", "max": "1.0"}), ("clamp", "clamp", "method", {"min": "0.0"}),
    ("contiguous", "contiguous", "method", {}), ("dropout", "F.dropout", "F", {"p": "0.25"}),
    ("hardtanh", "F.hardtanh", "F", {}), ("logsigmoid", "F.logsigmoid", "F", {}),
]


def pick(rng, items, weights=None):
    return rng.choices(items, weights)[0] if weights else rng.choice(items)


class Gen:
    """One spec being generated."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.consts: dict[str, int | bool] = {}
        self.const_text: dict[str, str] = {}
        self.const_order: list[str] = []
        self.blocks: list[Block] = []
        self.block_names: set[str] = set()
        self.depth = 0

    # ------------------------------------------------------------ sizes
    def size_text(self, v: int, env: dict, prefer_names=0.4) -> str:
        """A spec expression worth ``v`` in ``env``: a literal, a name, or arithmetic on one."""
        rng = self.rng
        names = [n for n, x in env.items() if isinstance(x, int) and not isinstance(x, bool) and x > 0
                 and n != "in_shape" and re.fullmatch(r"[A-Za-z_]\w*", n)]
        if names and rng.random() < prefer_names:
            opts = []
            for n in names:
                x = env[n]
                if x == v:
                    opts += [n] * 4
                if v <= 0:
                    continue
                if v % x == 0 and 1 < v // x <= 4:
                    opts.append(f"{n} * {v // x}")
                if x % v == 0 and 1 < x // v <= 4:
                    opts.append(f"{n} // {x // v}")
                if 0 < v - x <= 4:
                    opts.append(f"{n} + {v - x}")
                if 0 < x - v < x:
                    opts.append(f"{n} - {x - v}")
            if opts:
                return rng.choice(opts)
        shape = env.get("in_shape")
        if shape and rng.random() < prefer_names * 0.5:
            opts = []
            for i, d in enumerate(shape):
                if isinstance(d, int) and i > 0:
                    if d == v:
                        opts += [f"in_shape[{i}]", f"in_shape[{i - len(shape)}]"]
                    elif d * 2 == v:
                        opts.append(f"in_shape[{i}] * 2")
                    elif d > 1 and d // 2 == v:
                        opts.append(f"in_shape[{i}] // 2")
            if opts:
                return rng.choice(opts)
        return str(v)

    def small(self, lo=1, hi=16):
        return self.rng.choice([v for v in (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32) if lo <= v <= hi])

    # ------------------------------------------------------------ layers for a value
    def layer_for(self, ctx, x: TV, chain_only=False):
        """A LayerE that (probably) fits input x, or None."""
        rng = self.rng
        env = ctx.env
        r = x.rank
        last = x.shape[-1] if r else None
        opts = []
        if x.dtype == "long" and not RELAX[0]:
            opts = ["Embedding"]
        else:
            if r >= 1 and not last.sym:
                opts += ["Linear"] * 6 + ["LayerNorm"] * 2
            opts += ["act"] * 4 + ["Dropout"]
            if r >= 2 and not x.shape[1].sym:
                opts += ["GroupNorm", "PReLU_c"]
            if r == 3 and not x.shape[1].sym:
                opts += ["Conv1d"] * 3 + ["BatchNorm1d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
                                          "AdaptiveMaxPool1d", "InstanceNorm1d", "ConvTranspose1d", "Dropout1d"]
            if r == 2 and not x.shape[1].sym:
                opts += ["BatchNorm1d"]
            if r == 4 and not x.shape[1].sym:
                opts += ["Conv2d"] * 4 + ["BatchNorm2d"] * 2 + ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                                                                "AdaptiveMaxPool2d", "InstanceNorm2d",
                                                                "ConvTranspose2d", "Dropout2d"]
            if r >= 2:
                opts += ["Flatten"]
            if r >= 2 and not x.shape[1].sym and x.shape[1].v in (4, 6, 8, 12, 16, 24, 32):
                opts += ["Unflatten"]
            opts += ["Identity"] * (0 if chain_only else 1)
            if r == 3 and not last.sym and not chain_only:
                opts += ["TransformerEncoderLayer", "TransformerEncoder"]
        if not opts:
            return None
        kind = rng.choice(opts)
        g = {}
        sz = lambda v, p=0.5: self.size_text(v, env, p)  # noqa: E731

        def infer_or(name, actual):
            if ctx.explicit_ok and rng.random() < 0.3:
                g[name] = sz(actual) if not ctx.in_block or rng.random() < 0.5 else "in_shape[1]" if name in (
                    "in_channels", "num_features", "num_channels") else "in_shape[-1]"
            elif rng.random() < 0.75:
                g[name] = INFER

        if kind == "Embedding":
            hi = x.hi or 1
            if hi > 64:
                return None
            g["num_embeddings"] = sz(max(hi, rng.choice([2, 5, 10, 20, 50])))
            g["embedding_dim"] = sz(self.small(2, 32))
            if rng.random() < 0.2:
                g["padding_idx"] = rng.choice(["0", "0", "-1"])
            if rng.random() < 0.1:
                g["max_norm"] = "1.0"
            return LayerE("Embedding", g, nn_prefix=rng.random() < 0.1)
        if kind == "Linear":
            infer_or("in_features", last.v)
            g["out_features"] = sz(self.small(1, 32))
            if rng.random() < 0.2:
                g["bias"] = "False"
        elif kind == "LayerNorm":
            if rng.random() < 0.2 and r >= 3 and not x.shape[-2].sym:
                g["normalized_shape"] = rng.choice(["({}, {})", "[{}, {}]"]).format(x.shape[-2].v, last.v)
            else:
                infer_or("normalized_shape", last.v)
            if rng.random() < 0.2:
                g["eps"] = "1e-6"
            if rng.random() < 0.15:
                g["elementwise_affine"] = "False"
        elif kind == "act":
            a = rng.choice(ACTS)
            if a == "PReLU":
                pass
            elif a in ("Softmax", "LogSoftmax"):
                g["dim"] = str(rng.randrange(-r, r) if r else 0)
            elif a in ("ReLU", "SiLU", "ReLU6") and rng.random() < 0.3:
                g["inplace"] = "True"
            elif a == "LeakyReLU" and rng.random() < 0.5:
                g["negative_slope"] = "0.1"
            elif a == "ELU" and rng.random() < 0.3:
                g["alpha"] = "0.5"
            elif a == "GELU" and rng.random() < 0.3:
                g["approximate"] = '"tanh"'
            elif a == "Hardtanh" and rng.random() < 0.4:
                g["min_val"], g["max_val"] = "-2.0", "2.0"
            elif a == "Softplus" and rng.random() < 0.4:
                g["beta"] = "2.0"
            kind = a
        elif kind == "PReLU_c":
            kind = "PReLU"
            g["num_parameters"] = sz(x.shape[1].v)
        elif kind == "Dropout" or kind.startswith("Dropout"):
            floats = [c for c, v in env.items() if isinstance(v, float)]
            g["p"] = rng.choice(floats) if floats and rng.random() < 0.5 else rng.choice(["0.1", "0.5", "0.0", "0.25"])
        elif kind == "GroupNorm":
            c = x.shape[1].v
            g["num_groups"] = str(rng.choice([d for d in (1, 2, 4, c) if c % d == 0]))
            infer_or("num_channels", c)
        elif kind in ("Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"):
            nd = int(kind[-2])
            infer_or("in_channels", x.shape[1].v)
            cout = self.small(1, 16)
            spatial = [d.v for d in x.shape[2:]]
            k = rng.choice([1, 1, 2, 3, 3, 3, 5])
            pretend = False
            if k > min(spatial):
                if rng.random() < 0.9:
                    k = 1
                else:
                    pretend = True
            g["out_channels"] = sz(cout)
            g["kernel_size"] = sz(k, 0.3) if rng.random() < 0.8 or nd == 1 else f"({k}, {min(k + 1, min(spatial))})"
            tuples = [c for c, v in env.items() if v == (3, 3)]
            if nd == 2 and tuples and min(spatial) >= 3 and rng.random() < 0.5:
                g["kernel_size"] = rng.choice(tuples)
            if kind.startswith("ConvTranspose"):
                if rng.random() < 0.4:
                    g["stride"] = "2"
                    if rng.random() < 0.5:
                        g["output_padding"] = "1"
                if rng.random() < 0.3 and k >= 3:
                    g["padding"] = "1"
                if rng.random() < 0.15:
                    g["dilation"] = "2"
                    if "output_padding" in g and g.get("stride") != "2":
                        del g["output_padding"]
            else:
                if nd == 2 and rng.random() < 0.1:
                    g["stride"] = rng.choice(["(2, 1)", "(1, 2)"])
                    g["padding"] = rng.choice(["(1, 0)", "(0, 1)", "1"])
                if rng.random() < 0.3:
                    g["stride"] = rng.choice(["2", "2", "3"])
                pr = rng.random()
                if pr < 0.4:
                    g["padding"] = sz(k // 2, 0.3) if not ctx.in_block or rng.random() < 0.5 else "k // 2" if \
                        env.get("k") == k else str(k // 2)
                elif pr < 0.5 and "stride" not in g:
                    g["padding"] = rng.choice(['"same"', "'same'"])
                elif pr < 0.55:
                    g["padding"] = '"valid"'
                if rng.random() < 0.1:
                    g["dilation"] = "2"
                if rng.random() < 0.08 and g.get("padding") not in (None, '"valid"'):
                    g["padding_mode"] = rng.choice(['"reflect"', '"replicate"', '"circular"'])
            if rng.random() < 0.15:
                gr = rng.choice([2, 4])
                if x.shape[1].v % gr == 0 and cout % gr == 0:
                    g["groups"] = str(gr)
            if rng.random() < 0.2:
                g["bias"] = "False"
        elif kind in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
            k = rng.choice([2, 2, 3])
            g["kernel_size"] = str(k)
            if rng.random() < 0.4:
                g["stride"] = rng.choice(["1", "2"])
            if rng.random() < 0.3:
                g["padding"] = "1"
            if rng.random() < 0.2:
                g["ceil_mode"] = "True"
            if kind.startswith("Max") and rng.random() < 0.1:
                g["dilation"] = "2"
            if kind.startswith("Avg") and rng.random() < 0.15:
                g["count_include_pad"] = "False"
            if kind == "AvgPool2d" and rng.random() < 0.1:
                g["divisor_override"] = "3"
            if kind.endswith("2d") and rng.random() < 0.15:
                g["kernel_size"] = rng.choice(["(2, 1)", "(1, 2)", "(3, 2)"])
                if rng.random() < 0.5:
                    g["stride"] = rng.choice(["(1, 2)", "(2, 1)"])
        elif kind.startswith("Adaptive"):
            nd = int(kind[-2])
            o = rng.choice([1, 1, 2, 3])
            if nd == 2 and rng.random() < 0.3:
                g["output_size"] = rng.choice([f"({o}, {o})", f"({o}, None)", f"[{o}, 1]"])
            else:
                g["output_size"] = str(o)
        elif kind in ("BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d"):
            infer_or("num_features", x.shape[1].v)
            if rng.random() < 0.15:
                g["affine"] = rng.choice(["True", "False"])
            if rng.random() < 0.1:
                g["momentum"] = "0.2"
            if kind.startswith("Instance") and rng.random() < 0.2:
                g["track_running_stats"] = "True"
        elif kind == "Flatten":
            if rng.random() < 0.3 and r >= 3:
                g["start_dim"], g["end_dim"] = "1", str(rng.choice([2, -1]))
        elif kind == "Unflatten":
            c = x.shape[1].v
            f = rng.choice([d for d in (2, 4) if c % d == 0] or [1])
            g["dim"] = rng.choice(["1", "1", str(1 - r)])
            g["unflattened_size"] = f"({f}, {c // f})" if rng.random() < 0.8 else f"({f}, -1)"
        elif kind in ("TransformerEncoderLayer", "TransformerEncoder"):
            e = last.v
            heads = [h for h in (1, 2, 4) if e % h == 0]
            layer = {"d_model": INFER if rng.random() < 0.6 else sz(e), "nhead": str(rng.choice(heads)),
                     "dim_feedforward": str(self.small(4, 32)), "batch_first": "True"}
            if rng.random() < 0.3:
                layer["dropout"] = "0.0"
            if rng.random() < 0.2:
                layer["norm_first"] = "True"
            if rng.random() < 0.2:
                layer["activation"] = '"gelu"'
            le = LayerE("TransformerEncoderLayer", layer, npos=rng.choice([1, 2]))
            if kind == "TransformerEncoderLayer":
                return le
            return EncoderE(le, str(rng.choice([1, 2])), ", enable_nested_tensor=False" if rng.random() < 0.8 else "")
        le = LayerE(kind, g, nn_prefix=rng.random() < 0.1, npos=rng.choice([None, None, 0, 1, 2]),
                    trailing=rng.random() < 0.05, order_seed=rng.randrange(1000))
        if kind.startswith("Conv") and pretend:
            le.pretend = True
        if kind.startswith("InstanceNorm") and rng.random() < 0.3:
            le.edge = True  # a one-element spatial size may get through: torch refuses it at run time
        return le

    # ------------------------------------------------------------ bodies
    def new_const(self, v, text=None) -> str:
        free = [n for n in CONST_NAMES if n not in self.consts]
        if not free:
            return str(v)
        n = self.rng.choice(free)
        self.consts[n] = v
        self.const_text[n] = text if text is not None else str(v)
        self.const_order.append(n)
        return n

    def dense_layer_block(self, layer: ModE) -> Block | None:
        """block DenseLayer(growth) { norm, conv; forward: conv(F.relu(norm(x))) }, its layer ``layer`` of
        ``growth`` outputs: a new block, or None."""
        rng = self.rng
        free = [n for n in BLOCK_NAMES if n not in self.block_names]
        if not free or self.depth >= 2 or not isinstance(layer, LayerE):
            return None
        name, pname = rng.choice(free), rng.choice(["growth", "growth_rate", "k", "out"])
        size = "out_channels" if layer.name.startswith("Conv") else "out_features"
        body = Body()
        norm = f"BatchNorm{layer.name[-2]}d" if layer.name.startswith("Conv") else "LayerNorm"
        body.children = [ChildDecl("norm", LayerE(norm, {})),
                         ChildDecl("conv" if size == "out_channels" else "fc",
                                   LayerE(layer.name, dict(layer.given, **{size: pname})))]
        normed = OpX("relu", "F.relu", "F", [CallX(("child", "norm"), [Ref("x")])])
        h = CallX(("child", body.children[1].name), [normed])
        if rng.random() < 0.3:  # dropout in training only, as torchvision's drop_rate
            drop = OpX("dropout", "F.dropout", "F", [Ref("h")], {"p": "0.2"})
            body.forward = [Assign("h", h), Return([TrainTernaryX(drop, Ref("h"))])]
        else:
            body.forward = [Return([h])]
        block = Block(name, [(pname, None)], body, dict(self.consts))
        self.blocks.append(block)
        self.block_names.add(name)
        return block

    def gen_block(self, ctx, x: TV, y: TV | None = None):
        """A new block fit for input x (and y, for a block of two inputs); its first use (a BlockE) or None."""
        rng = self.rng
        free = [n for n in BLOCK_NAMES if n not in self.block_names]
        if not free or self.depth >= 2:
            return None
        name = rng.choice(free)
        params = []
        env = dict(self.consts)
        pool = list(BLOCK_PARAMS)
        rng.shuffle(pool)
        n_params = rng.choice([0, 1, 1, 2, 2, 3])
        chosen = pool[:n_params]
        # a param named like a const shadows it
        if self.consts and chosen and rng.random() < 0.1:
            chosen[0] = rng.choice(list(self.consts))
        values = {}
        for p in chosen:
            if p in ("act", "use_norm", "flag"):
                values[p] = rng.random() < 0.5
            elif p == "p_drop":
                values[p] = 0.1
            elif p in ("k",):
                values[p] = rng.choice([1, 3, 3, 5])
            elif p == "stride":
                values[p] = rng.choice([1, 1, 2])
            elif p == "depth":
                values[p] = rng.choice([1, 2, 3])
            elif p == "heads":
                values[p] = rng.choice([1, 2])
            else:
                values[p] = self.small(2, 24)
        n_default = rng.choice([0, 0, 1, len(chosen)])
        for i, p in enumerate(chosen):
            d = None
            if i >= len(chosen) - n_default:
                v = values[p]
                d = repr(v) if not isinstance(v, bool) else str(v)
                if isinstance(v, int) and not isinstance(v, bool) and self.consts and rng.random() < 0.2:
                    cn = [c for c in self.consts if self.consts[c] == v and not isinstance(self.consts[c], bool)]
                    if cn:
                        d = cn[0]
            params.append((p, d))
        env.update(values)
        block = Block(name, params, Body(), dict(self.consts))
        self.block_names.add(name)
        block.body.fwd_params = [rng.choice(["x", "x", "h", "inp", "z", "x_in"])]
        if y is not None:
            block.body.fwd_params.append(rng.choice(["y", "skip", "other", "memory"]))
        ins = [x] + ([y] if y is not None else [])
        sub = Ctx(self, block.body, env, in_block=True)
        sub.block = block
        self.depth += 1
        try:
            implicit = y is None and rng.random() < 0.3
            ein = dict(env)
            ein["in_shape"] = tuple(SymEntry(d) if d.sym else d.v for d in x.shape)
            sub.env = ein
            sub.st = sub.body.start(ein, ins)
            sub.focus = sub.body.fwd_params[0]
            if y is None and rng.random() < 0.12:  # block Name(...) = Sequential(...)
                sub.env, sub.in_block = env, False  # its modules read the block's parameters, not in_shape
                block.seq = sub.sequential_value(x)
                if block.seq is None:
                    return None
            elif implicit:
                sub.body.forward = None
                sub.quote_names = rng.random() < 0.25
                for _ in range(rng.choice([1, 2, 3])):
                    sub.propose_chain_child()
                if not sub.body.children:
                    return None
            else:
                for _ in range(rng.choice([1, 2, 2, 3, 4])):
                    sub.propose()
                sub.finish_return(model=rng.random() < 0.15)
        finally:
            self.depth -= 1
        # the first use: the values as arguments, positional or by keyword, defaults left out sometimes
        args, kwargs = [], {}
        for i, (p, d) in enumerate(params):
            v = values[p]
            t = str(v) if not isinstance(v, int) or isinstance(v, bool) else self.size_text(v, ctx.env, 0.3)
            if d is not None and rng.random() < 0.35:
                continue  # the default
            if kwargs or (i > 0 and rng.random() < 0.3) or (d is not None and rng.random() < 0.5):
                kwargs[p] = t
            else:
                if len(args) != i:
                    kwargs[p] = t
                else:
                    args.append(t)
        be = BlockE(block, args, kwargs)
        try:
            be.build(ctx.env).call(ins)
        except Invalid:
            self.block_names.discard(name)
            return None
        self.blocks.append(block)
        return be

    def block_variant(self, ctx, block: Block) -> BlockE:
        """Another use of an existing block, with other arguments."""
        rng = self.rng
        args, kwargs = [], {}
        for i, (p, d) in enumerate(block.params):
            if d is not None and rng.random() < 0.4:
                continue
            if p in ("act", "use_norm", "flag"):
                t = rng.choice(["True", "False"])
            elif p == "k":
                t = rng.choice(["1", "3", "5"])
            elif p == "stride":
                t = rng.choice(["1", "2"])
            elif p == "depth":
                t = rng.choice(["1", "2"])
            elif p == "heads":
                t = rng.choice(["1", "2", "4"])
            elif p == "p_drop":
                t = rng.choice(["0.2", "0.0"])
            else:
                t = self.size_text(self.small(2, 24), ctx.env, 0.4)
            if kwargs or (d is not None and rng.random() < 0.5):
                kwargs[p] = t
            elif len(args) == i:
                args.append(t)
            else:
                kwargs[p] = t
        return BlockE(block, args, kwargs)

    # ------------------------------------------------------------ the model
    def gen_inputs(self):
        rng = self.rng
        batch = rng.choice(["B", "B", "B", "N", "Batch"])
        syms = {}
        inputs = []
        n = rng.choice([1, 1, 1, 2, 2, 3])
        names = rng.sample(INPUT_NAMES, n)
        for j, nm in enumerate(names):
            kind = rng.choice(["vec", "seq", "seq", "chan", "img", "tokens", "tokens"] + (["mask"] if j else []))
            dims_text = [batch]
            shape = [S(batch, 2)]
            dtype = "float"
            if kind == "vec":
                d = self.small(1, 32)
                dims_text.append(self.dim_text(d))
                shape.append(C(d))
            elif kind in ("seq", "tokens", "chan", "mask"):
                T = rng.choice([1, 2, 3, 5, 6, 8, 12])
                symbolic = rng.random() < 0.6
                if symbolic:
                    sname = rng.choice(["T", "T", "L", "S"])
                    if sname in syms:
                        T = syms[sname]
                        tt = sname if rng.random() < 0.7 else f"{sname}={T}"
                    else:
                        syms[sname] = T
                        tt = f"{sname}={T}" if rng.random() < 0.85 else sname
                        if tt == sname:
                            T = 8  # the default example size
                            syms[sname] = T
                    tdim = S(sname, T)
                else:
                    tt = self.dim_text(T)
                    tdim = C(T)
                if kind in ("tokens", "mask"):
                    dims_text.append(tt)
                    shape.append(tdim)
                    dtype = "long" if kind == "tokens" else "bool"
                elif kind == "seq":
                    d = self.small(2, 32)
                    dims_text += [tt, self.dim_text(d)]
                    shape += [tdim, C(d)]
                else:
                    c = self.small(1, 16)
                    dims_text += [self.dim_text(c), tt]
                    shape += [C(c), tdim]
            else:
                c = rng.choice([1, 2, 3, 4])
                h = rng.choice([4, 5, 6, 8, 12])
                w = h if rng.random() < 0.7 else rng.choice([4, 6, 8])
                dims_text += [self.dim_text(c), self.dim_text(h), self.dim_text(w)]
                shape += [C(c), C(h), C(w)]
            prefix = {"long": "Long", "bool": "Bool"}.get(dtype, "Float" if rng.random() < 0.05 else "")
            inputs.append((nm, f"{nm}: {prefix}[{', '.join(dims_text)}]", TV(tuple(shape), dtype, None)))
        return inputs

    def dim_text(self, v):
        return self.size_text(v, self.consts, 0.3)

    def generate(self) -> str:
        rng = self.rng
        for _ in range(rng.choice([0, 1, 1, 2, 3, 4])):
            ints = [c for c, x in self.consts.items() if isinstance(x, int) and not isinstance(x, bool)]
            r = rng.random()
            if ints and r < 0.25:  # an expression of an earlier const
                c = rng.choice(ints)
                text, v = rng.choice([(f"{c} * 2", self.consts[c] * 2), (f"{c} + 1", self.consts[c] + 1),
                                      (f"({c} + 1) // 2", (self.consts[c] + 1) // 2), (f"{c} > 4", self.consts[c] > 4),
                                      (f"-{c} + {c} * 3", self.consts[c] * 2)])
                if isinstance(v, bool) or 1 <= v <= 32:
                    self.new_const(v, text)
                continue
            if r < 0.32:
                self.new_const(0.1, "0.1")
                continue
            if r < 0.38:
                self.new_const((3, 3), "(3, 3)")
                continue
            v = rng.choice([2, 4, 8, 16, 3, True, False]) if rng.random() < 0.9 else 1
            self.new_const(v)
        inputs = self.gen_inputs()
        body = Body()
        ctx = Ctx(self, body, dict(self.consts), in_block=False)
        body.fwd_params = [n for n, _, _ in inputs]
        ctx.st = body.start(ctx.env, [t for _, _, t in inputs])
        ctx.focus = inputs[0][0]
        implicit = len(inputs) == 1 and rng.random() < 0.2
        if implicit:
            body.forward = None
            ctx.quote_names = rng.random() < 0.25
            for _ in range(rng.choice([1, 2, 3, 4])):
                ctx.propose_chain_child()
            if not body.children:
                implicit = False
                body.forward = []
        if not implicit:
            for nm, _, t in inputs:  # each input gets some work, then the rest mixes
                if t.dtype == "long":
                    ctx.focus = nm
                    ctx.propose(kinds=["layer"])
            ctx.focus = inputs[0][0]
            for _ in range(rng.choice([1, 2, 3, 4, 5, 6, 7, 8])):
                ctx.propose()
            ctx.finish_return(model=True)
        mname = rng.choice(MODEL_NAMES)
        if mname in self.block_names or mname in self.consts:
            mname = "Net"
        lines = []
        for c in self.const_order:
            lines.append(f"const {c} = {self.const_text[c]}")
        blocks = list(self.blocks)
        if rng.random() < 0.2:
            rng.shuffle(blocks)  # blocks used before they are defined
        for b in blocks:
            lines += b.render()
        model = [f"model {mname}({', '.join(t for _, t, _ in inputs)}) {{"] + body.render("    ") + ["}"]
        if rng.random() < 0.1:
            lines = model + lines  # the model first
        else:
            lines += model
        return "\n".join(lines) + "\n"


class Ctx:
    """Generating one body: proposals are run on a copy of the state and kept only when valid."""

    def __init__(self, gen: Gen, body: Body, env: dict, in_block: bool):
        self.gen, self.rng = gen, gen.rng
        self.body, self.env, self.in_block = body, env, in_block
        self.st: State | None = None
        self.focus = "x"
        self.explicit_ok = not in_block or self.rng.random() < 0.5
        self.used = set(env) | set(body.fwd_params)
        self.block = None
        self.quote_names = False  # a body without forward: its children named by strings, "block1-0"

    # ------------------------------------------------------------ names
    def fresh(self, pool) -> str:
        rng = self.rng
        taken = self.used | set(self.st.vals if self.st else ()) | set(self.st.children if self.st else ()) | \
            set(self.st.params if self.st else ()) | set(self.gen.consts) | self.gen.block_names | {"in_shape"}
        if rng.random() < 0.01:
            return rng.choice(NASTY_NAMES)  # a name the language or torch may not allow: a clean refusal, or works
        for _ in range(20):
            n = rng.choice(pool)
            if n not in taken:
                self.used.add(n)
                return n
        for i in itertools.count(2):
            n = f"{rng.choice(pool)}_{i}"
            if n not in taken:
                self.used.add(n)
                return n

    def quoted_name(self) -> str:
        """A child's name that no identifier spells, as torchvision names RegNet's blocks; rarely one torch refuses
        ("a.b") or one that needs no quotes."""
        rng = self.rng
        if rng.random() < 0.02:
            return rng.choice(["a.b", "fc", "layer1.0", "training", ""])
        for _ in range(20):
            n = rng.choice(["block{}-{}", "conv-{}", "norm-{}", "stage-{}{}", "layer {}", "{}", "ß-{}", "act-{}",
                            "down-{}x{}"]).format(rng.randrange(1, 4), rng.randrange(0, 3))
            if n not in self.st.children:
                return n
        raise Invalid("no fresh quoted name")

    def value_name(self) -> str:
        if self.rng.random() < 0.45 and self.focus in self.st.vals:
            return self.focus
        return self.fresh(VALUE_NAMES)

    # ------------------------------------------------------------ committing
    def commit(self, children=(), params=(), stmts=(), ties=()):
        """Run the new decls and statements on a copy of the state; keep them if they are valid."""
        import copy

        st = copy.deepcopy(self.st)
        for c in children:
            present = True
            if c.cond is not None:
                present = ev(c.cond, st.env)
                if not isinstance(present, bool):
                    raise Invalid("condition")
            st.children[c.name] = c.mod.build(st.env) if present else None
        for p in params:
            dims = [as_int(ev(d, st.env), "dim", 1) for d in p.dims]
            if p.init in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal") and len(dims) < 2:
                raise Invalid("fan")
            st.params[p.name] = TV(tuple(C(d) for d in dims))
        for s in stmts:
            s.run(st)
        for t in ties:
            t.check(st)
        self.st = st
        self.body.children += list(children)
        self.body.params += list(params)
        self.body.ties += list(ties)
        if self.body.forward is not None:
            self.body.forward += list(stmts)
        return st

    def floats(self):
        return [n for n, v in self.st.vals.items() if isinstance(v, TV) and v.dtype == "float"]

    def pick_value(self, want=None):
        fl = [n for n in self.floats() if want is None or want(self.st.vals[n])]
        if not fl:
            return None
        if self.focus in fl and self.rng.random() < 0.75:
            return self.focus
        return self.rng.choice(fl)

    # ------------------------------------------------------------ proposals
    def propose(self, kinds=None, tries=6):
        rng = self.rng
        table = {
            "layer": (self.p_layer, 10), "seq": (self.p_seq, 4), "list": (self.p_list, 2), "dict": (self.p_dict, 1),
            "block": (self.p_block, 7 if self.gen.depth < 2 else 0), "func": (self.p_func, 4),
            "reshape": (self.p_reshape, 5), "pool_idx": (self.p_pool_idx, 1), "index": (self.p_index, 3),
            "reduce": (self.p_reduce, 2),
            "residual": (self.p_residual, 4), "scalar": (self.p_scalar, 2), "param": (self.p_param, 2),
            "cat": (self.p_cat, 3), "attention": (self.p_attention, 1), "rnn": (self.p_rnn, 2),
            "mha": (self.p_mha, 2), "reuse": (self.p_reuse, 2), "if": (self.p_if, 2 if self.in_block else 1),
            "shape": (self.p_shape_unpack, 2), "bilinear": (self.p_bilinear, 1), "loop_range": (self.p_loop_range, 1),
            "chunk": (self.p_chunk, 1), "decoder": (self.p_decoder, 1), "argmax": (self.p_argmax, 1),
            "nested": (self.p_nested, 3), "long": (self.p_long, 1), "mask": (self.p_mask, 2),
            "dense": (self.p_dense, 2), "listcomp": (self.p_listcomp, 2), "chunklist": (self.p_chunklist, 1),
            "dictloop": (self.p_dictloop, 2), "tie": (self.p_tie, 2), "train": (self.p_train, 2),
            "quoted": (self.p_quoted_unused, 1),
        }
        names = kinds or [k for k in table if table[k][1]]
        weights = [table[k][1] or 1 for k in names]
        for _ in range(tries):
            k = rng.choices(names, weights)[0]
            RELAX[0] = rng.random() < 0.03
            try:
                if table[k][0]() is not False:
                    return True
            except Invalid:
                continue
            finally:
                RELAX[0] = False
        return False

    def new_child(self, mod, cond=None, pool=CHILD_NAMES):
        if self.quote_names:
            return ChildDecl(self.quoted_name(), mod, cond, quoted=True)
        c = ChildDecl(self.fresh(pool), mod, cond)
        if self.rng.random() < 0.05:
            c.comment = "  # a comment"
        return c

    def cond_for(self, truth: bool | None = None):
        """A condition on block params / in_shape (in a block) or consts (in a model), and its value."""
        rng = self.rng
        env = self.env
        opts = []
        for n, v in env.items():
            if n == "in_shape":
                for i, d in enumerate(v):
                    if isinstance(d, int) and i > 0:
                        opts.append((f"in_shape[{i}] != {d}", False))
                        opts.append((f"in_shape[{i}] == {d}", True))
                        opts.append((f"in_shape[{i - len(v)}] > {d - 1}", True))
                continue
            if isinstance(v, bool):
                opts += [(n, v), (f"not {n}", not v)]
            elif isinstance(v, int):
                opts += [(f"{n} > {v}", False), (f"{n} >= {v}", True), (f"{n} != 1", v != 1),
                         (f"{n} % 2 == 0", v % 2 == 0)]
        if not opts:
            return None
        c, val = rng.choice(opts)
        if rng.random() < 0.25 and len(opts) > 1:
            c2, v2 = rng.choice(opts)
            if rng.random() < 0.5:
                c, val = f"{c} and {c2}", val and v2
            else:
                c, val = f"{c} or {c2}", val or v2
        return c, val

    def call_stmt(self, child_name, src, dst=None, wrap_fn=True, kwargs=None):
        e = CallX(("child", child_name), [Ref(src)], kwargs)
        if wrap_fn and self.rng.random() < 0.2:
            op, sp, form, kw = self.rng.choice(FUNCS[:12])
            e = OpX(op, sp, form, [e], kw)
        dst = dst or self.value_name()
        return Assign(dst, e), dst

    def p_layer(self):
        f = self.st.vals.get(self.focus)
        longs = [n for n, v in self.st.vals.items() if isinstance(v, TV) and v.dtype == "long"]
        if isinstance(f, TV) and f.dtype == "long":
            src = self.focus
        elif longs and (self.rng.random() < 0.15 or RELAX[0]):
            src = self.rng.choice(longs)
        else:
            src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        mod = self.gen.layer_for(self, x)
        if mod is None:
            return False
        cond = None
        if self.rng.random() < 0.15 and x.dtype == "float":
            cv = self.cond_for()
            if cv:
                cond = cv[0]
        c = self.new_child(mod, cond)
        s, dst = self.call_stmt(c.name, src)
        s.semi = self.rng.random() < 0.1
        self.commit([c], [], [s])
        self.focus = dst

    def chain(self, x: TV, n: int, chain_only=True):
        """n layers that run one after another from x: the items and the output."""
        items = []
        cur = x
        for _ in range(n):
            for _ in range(4):
                mod = self.gen.layer_for(self, cur, chain_only=chain_only)
                if mod is None:
                    continue
                try:
                    out = mod.build(self.st.env).call([cur])
                except Invalid:
                    continue
                if isinstance(out, TV):
                    items.append(mod)
                    cur = out
                    break
        return items, cur

    def p_seq(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        r = rng.random()
        if r < 0.3:  # a repeat
            cnt = rng.choice([1, 2, 3])
            cnt_text = self.gen.size_text(cnt, self.env, 0.3)
            item = self.gen.layer_for(self, x, chain_only=True)
            if item is None:
                return False
            if isinstance(item, LayerE) and item.name == "Linear" and rng.random() < 0.3:
                item = LayerE("Linear", {"in_features": INFER, "out_features": f"{self.gen.small(2, 8)} * (i + 1)"})
                mod = RepE("seq", item, cnt_text, "i")
            else:
                mod = RepE("seq", item, cnt_text)
        elif r < 0.45 and self.gen.depth < 2 and [b for b in self.gen.blocks if len(b.body.fwd_params) == 1]:
            blk = rng.choice([b for b in self.gen.blocks if len(b.body.fwd_params) == 1])
            items = [self.gen.block_variant(self, blk) for _ in range(rng.choice([1, 2]))]
            mod = SeqE(items) if rng.random() < 0.6 else RepE("seq", items[0], str(rng.choice([1, 2, 3])))
            if isinstance(mod, RepE) and items[0].args and rng.random() < 0.4:
                v = items[0].args[0]
                if re.fullmatch(r"\d+", v):
                    items[0].args[0] = f"{v} * (i + 1)"
                    mod.var = "i"
        else:
            items, _ = self.chain(x, rng.choice([1, 2, 3, 4]))
            if not items:
                return False
            if len(items) >= 2 and rng.random() < 0.3:  # nested
                cut = rng.randrange(1, len(items))
                items = [SeqE(items[:cut])] + items[cut:]
            mod = self.seq_of(items)
        cond = None
        if rng.random() < 0.1:
            cv = self.cond_for()
            cond = cv[0] if cv else None
        c = self.new_child(mod, cond, ["layers", "stages", "features", "mlp", "stem", "head", "encoder", "seq",
                                       "blocks", "body", "Stage_2", "x_out"])
        s, dst = self.call_stmt(c.name, src)
        self.commit([c], [], [s])
        self.focus = dst

    def seq_of(self, items) -> ModE:
        """A Sequential of these modules: positional, named (Sequential({"conv": ...})), or with one spliced in,
        repeated (*[m for _ in range(n)]) or on a condition (*([m] if cond else []))."""
        rng = self.rng
        k = rng.random()
        if k < 0.12:
            pool = ["conv", "norm-1", "act", "fc", "block1-0", "0", "proj", "drop", "layer 2", "ß", "pool", "out"]
            if rng.random() < 0.05:
                pool += ["append", "a.b", "", "forward"]  # names torch refuses: a located error
            return SeqE(items, keys=rng.sample(pool, len(items)))
        if k < 0.22:
            i = rng.randrange(len(items))
            cv = self.cond_for() if rng.random() < 0.5 else None
            splice = SpliceE(items[i], cond=cv[0]) if cv else SpliceE(items[i], count=str(rng.choice([0, 1, 2])))
            return SeqE(items[:i] + [splice] + items[i + 1:])
        return SeqE(items, trailing=rng.random() < 0.1)

    def sequential_value(self, x: TV) -> ModE | None:
        """The value of `block Name(...) = Sequential(...)`: modules (one maybe spliced in: a Dropout on a float
        parameter, *([Dropout(p)] if p > 0 else [])), named ones, or a dict comprehension of one repeated."""
        rng = self.rng
        items, _ = self.chain(x, rng.choice([1, 2, 3]))
        if not items:
            return None
        k = rng.random()
        if k < 0.2:
            ints = [n for n, v in self.env.items() if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4]
            count = rng.choice(ints) if ints and rng.random() < 0.7 else str(rng.choice([1, 2, 3]))
            return DictCompE(rng.choice(["block", "layer", "unit"]), items[0], count, offset=rng.choice([0, 1]),
                             kind="seq")
        floats = [n for n, v in self.env.items() if isinstance(v, float)]
        if floats and rng.random() < 0.5:
            f = rng.choice(floats)
            items.insert(rng.randrange(len(items) + 1), SpliceE(LayerE("Dropout", {"p": f}), cond=f"{f} > 0"))
            return SeqE(items, trailing=rng.random() < 0.2)
        return self.seq_of(items)

    def p_list(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        if rng.random() < 0.4:
            item = self.gen.layer_for(self, x, chain_only=True)
            if item is None:
                return False
            mod = RepE("list", item, self.gen.size_text(rng.choice([1, 2, 3]), self.env, 0.3))
        else:
            items, _ = self.chain(x, rng.choice([1, 2, 3]))
            if not items:
                return False
            if rng.random() < 0.2:
                items = [SeqE(items[:1])] + items[1:]
            mod = ListE(items)
        c = self.new_child(mod, None, ["layers", "convs", "blocks", "mods", "lins", "stack"])
        dst = src if rng.random() < 0.5 else self.value_name()
        var = self.fresh(["layer", "l", "m", "blk", "mod", "conv"])
        stmts = []
        if dst != src:
            stmts.append(Assign(dst, Ref(src)))
        if rng.random() < 0.75:
            call = CallX(("loopvar", var), [Ref(dst)])
            if rng.random() < 0.4:
                call = OpX("relu", "F.relu", "F", [call])
            stmts.append(For(var, c.name, [Assign(dst, call)]))
        else:  # indexed calls
            self.commit([c])
            inst = self.st.children[c.name]
            cur = dst
            for i in range(len(inst.items)):
                idx = str(i) if rng.random() < 0.7 else str(i - len(inst.items))
                stmts.append(Assign(cur, CallX(("index", c.name, idx), [Ref(cur)])))
            self.commit([], [], stmts)
            self.focus = cur
            return
        self.commit([c], [], stmts)
        self.focus = dst

    def p_dict(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        items, _ = self.chain(self.st.vals[src], rng.choice([1, 2, 3]))
        if not items:
            return False
        pool = ["a", "b", "conv1", "fc", "proj", "out", "x", "in_features", "down_2", "Stage_2", "first", "last"]
        if rng.random() < 0.15:
            pool += ["self", "0", "layer-1", "training", "cuda", "type", "forward", "weight", "a.b", ""]
        keys = rng.sample(pool, len(items))
        mod = DictE(keys, items, quote=rng.choice(['"', "'"]))
        c = self.new_child(mod, None, ["convs", "heads", "mods", "table", "branches"])
        cur = src
        stmts = []
        for key in keys:
            dst = self.value_name() if rng.random() < 0.5 else cur
            target = ("attr", c.name, key) if key.isidentifier() and rng.random() < 0.3 else \
                ("key", c.name, key, mod.quote)
            stmts.append(Assign(dst, CallX(target, [Ref(cur)])))
            cur = dst
        self.commit([c], [], stmts)
        self.focus = cur

    def p_block(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        be = None
        others = [n for n in self.floats() if n != src]
        ins = [src]
        if self.gen.blocks and rng.random() < 0.5:
            blk = rng.choice(self.gen.blocks)
            if len(blk.body.fwd_params) == 2 and others:
                ins.append(rng.choice(others))
            if blk is not self.block and len(blk.body.fwd_params) == len(ins):
                be = self.gen.block_variant(self, blk)
                try:
                    be.build(self.st.env).call([self.st.vals[n] for n in ins])
                except Invalid:
                    be = None
        if be is None:
            ins = [src]
            if others and rng.random() < 0.15:
                ins.append(rng.choice(others))
            be = self.gen.gen_block(self, x, self.st.vals[ins[1]] if len(ins) == 2 else None)
        if be is None:
            return False
        cond = None
        if rng.random() < 0.1:
            cv = self.cond_for()
            cond = cv[0] if cv else None
        if len(ins) == 2:
            cond = None  # a conditional child takes one input
        c = self.new_child(be, cond, ["blk", "stage", "unit", "layer1", "layer_2", "body", "Stage_2", "cell",
                                      "res", "down"])
        s, dst = self.call_stmt(c.name, src)
        if len(ins) == 2:
            s = Assign(dst, CallX(("child", c.name), [Ref(n) for n in ins]))
        result = be.build(self.st.env).call([self.st.vals[n] for n in ins])
        if isinstance(result, tuple):  # a block of several results: unpack them
            names = tuple(self.fresh(VALUE_NAMES) for _ in result)
            s = Assign(names, CallX(("child", c.name), [Ref(n) for n in ins]))
            dst = names[0]
        self.commit([c], [], [s])
        self.focus = dst
        if rng.random() < 0.2:  # the same block child called again on its own output
            s2, dst2 = self.call_stmt(c.name, dst, wrap_fn=False)
            try:
                self.commit([], [], [s2])
                self.focus = dst2
            except Invalid:
                pass

    def p_func(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        r = rng.random()
        if r < 0.25:
            d = rng.randrange(-x.rank, x.rank) if x.rank else 0
            sp, form = rng.choice([("F.softmax", "F"), ("torch.softmax", "torch"), ("softmax", "method"),
                                   ("F.log_softmax", "F"), ("F.normalize", "F")])
            op = "log_softmax" if "log" in sp else "normalize" if "normalize" in sp else "softmax"
            args = [Ref(src)]
            kw = {"dim": str(d)}
            if form == "method":
                e = OpX(op, sp, form, args, kw)
            else:
                e = OpX(op, sp, form, args, kw) if rng.random() < 0.7 else OpX(op, sp, form, args + [str(d)])
        else:
            op, sp, form, kw = rng.choice(FUNCS)
            e = OpX(op, sp, form, [Ref(src)], kw)
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_scalar(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        a = Ref(src)
        e = rng.choice([
            lambda: BinX("*", a, Lit("0.5")), lambda: BinX("*", Lit("2"), a), lambda: BinX("/", a, Lit("2.0")),
            lambda: BinX("-", a, Lit("1")), lambda: NegX(a), lambda: BinX("**", a, Lit("2")),
            lambda: BinX("+", a, Lit("1.0")), lambda: BinX("*", a, Lit(self.gen.size_text(2, self.env, 0.5))),
            lambda: OpX("mul", "torch.mul", "torch", [a, "0.5"]), lambda: BinX("-", Lit("1.0"), a),
        ])()
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_reshape(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2) if rng.random() < 0.9 else None
        if src is None:
            return False
        x = self.st.vals[src]
        a = Ref(src)
        r = x.rank
        k = rng.random()
        if k < 0.3:  # flatten from 1
            e = rng.choice([
                lambda: OpX("view", "view", "method", [a, SizeX(a, 0), IntLit("-1")]),
                lambda: OpX("reshape", "reshape", "method", [a, SizeX(a, 0), IntLit("-1")]),
                lambda: OpX("flatten", "flatten", "method", [a, "1"]),
                lambda: OpX("flatten", "torch.flatten", "torch", [a, "1"]),
                lambda: OpX("flatten", "torch.flatten", "torch", [a], {"start_dim": "1"}),
                lambda: OpX("view", "view", "method", [a, SizeX(a, 0, "shape"), IntLit("-1")]),
                lambda: OpX("reshape", "torch.reshape", "torch", [a, f"({'-1' if rng.random() < 0.5 else '-1'},)"]),
                lambda: OpX("view", "view", "method", [a, IntLit("-1")]),
                lambda: OpX("reshape", "reshape", "method", [a, SizeX(a, 0), IntBin("//", NumelX(a), SizeX(a, 0))]),
                lambda: OpX("view", "view", "method", [a, IntLit("-1"), SizeX(a, -1)]),
            ])()
        elif k < 0.5 and r >= 3:  # permute / transpose
            perm = list(range(1, r))
            rng.shuffle(perm)
            perm = [0] + perm
            if rng.random() < 0.2:
                perm = list(range(r))
                rng.shuffle(perm)
            if rng.random() < 0.3:
                perm = [p - r if p and rng.random() < 0.5 else p for p in perm]
            e = rng.choice([
                lambda: OpX("permute", "permute", "method", [a] + [str(p) for p in perm]),
                lambda: OpX("permute", "torch.permute", "torch", [a, "(" + ", ".join(map(str, perm)) + ")"]),
                lambda: OpX("transpose", "transpose", "method", [a, str(rng.randrange(1, r)),
                                                                str(rng.randrange(-r, r))]),
                lambda: OpX("transpose", "torch.transpose", "torch", [a, "1", "2"]),
                lambda: OpX("transpose", "transpose", "method", [a, "-1", "-2"]),
            ])()
        elif k < 0.6 and r == 2:
            e = rng.choice([lambda: OpX("t", "t", "method", [a]),
                            lambda: OpX("unsqueeze", "unsqueeze", "method", [a, str(rng.choice([1, 2, -1]))]),
                            lambda: OpX("unsqueeze", "torch.unsqueeze", "torch", [a, "1"])])()
        elif k < 0.7:
            d = rng.randrange(1, r)
            e = rng.choice([lambda: OpX("squeeze", "squeeze", "method", [a, str(d)]),
                            lambda: OpX("unsqueeze", "unsqueeze", "method", [a, str(d)]),
                            lambda: OpX("squeeze", "squeeze", "method", [a]),
                            lambda: OpX("squeeze", "squeeze", "method", [a, str(d - r)])])()
        else:  # split a concrete dim in two, or merge two
            cands = [i for i in range(1, r) if not x.shape[i].sym and x.shape[i].v in (4, 6, 8, 12, 16, 24, 32)]
            if cands and rng.random() < 0.6:
                i = rng.choice(cands)
                v = x.shape[i].v
                f = rng.choice([d for d in (2, 3, 4) if v % d == 0])
                sizes = []
                for j in range(r):
                    if j == i:
                        sizes += [IntLit(str(f)), IntLit("-1") if rng.random() < 0.5 else IntLit(str(v // f))]
                    elif x.shape[j].sym or rng.random() < 0.5:
                        sizes.append(SizeX(a, j, rng.choice(["size", "shape"])))
                    else:
                        sizes.append(IntLit(self.gen.size_text(x.shape[j].v, self.env, 0.3)))
                if sum(1 for s in sizes if isinstance(s, IntLit) and s.text == "-1") > 1:
                    return False
                e = OpX(rng.choice(["view", "reshape"]), rng.choice(["view", "reshape"]), "method", [a] + sizes)
                e.spelled = e.op
            elif r >= 3:
                i = rng.randrange(1, r - 1)
                sizes = [SizeX(a, j) for j in range(i)] + [IntBin("*", SizeX(a, i), SizeX(a, i + 1))] + \
                        [SizeX(a, j) for j in range(i + 2, r)]
                e = OpX("reshape", "reshape", "method", [a] + sizes)
            else:
                return False
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_shape_unpack(self):
        rng = self.rng
        src = self.pick_value(lambda t: 2 <= t.rank <= 4)
        if src is None:
            return False
        x = self.st.vals[src]
        names = [self.fresh(["b", "n", "c", "t", "l", "d", "h", "w", "s", "e", "in_features", "Stage_2"])
                 for _ in range(x.rank)]
        stmts = [Assign(tuple(names), ShapeAll(Ref(src), rng.random() < 0.7))]
        if x.rank >= 3 and rng.random() < 0.6:
            sizes = [Ref(names[0]), IntBin("*", Ref(names[1]), Ref(names[2]))] + [Ref(n) for n in names[3:]]
        else:
            sizes = [Ref(names[0]), IntLit("-1")]
        dst = self.value_name()
        stmts.append(Assign(dst, OpX(rng.choice(["view", "reshape"]), "view", "method", [Ref(src)] + sizes)))
        stmts[-1].value.spelled = stmts[-1].value.op
        self.commit([], [], stmts)
        self.focus = dst

    def p_index(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2)
        if src is None:
            return False
        x = self.st.vals[src]
        r = x.rank
        i = rng.randrange(1, r)
        d = x.shape[i]
        items = [("slice", None, None, None)] * i
        k = rng.random()
        if k < 0.3:
            items = items + [("int", rng.choice(["0", "-1"] + ([str(d.v - 1), "1"] if not d.sym and d.v > 1 else [])))]
        elif k < 0.6 and not d.sym and d.v > 1:
            lo = rng.randrange(0, d.v - 1)
            hi = rng.choice([None, str(rng.randrange(lo + 1, d.v + 1)), "-1" if d.v - 1 > lo else None])
            step = rng.choice([None, None, "2", "3"])
            lo_t = str(lo) if lo or rng.random() < 0.3 else None
            if rng.random() < 0.2:
                lo_t = str(lo - d.v)  # from the end: x[:, -3:]
            if rng.random() < 0.1:
                hi = str(d.v + 5)  # past the end: torch clips
            items = items + [("slice", lo_t, hi, step)]
        elif k < 0.7:
            items = [("ellipsis",), ("int", "0")] if rng.random() < 0.5 else [("ellipsis",), ("slice", None, None,
                                                                                              "2")]
        elif k < 0.8:
            items = [("slice", None, None, None), ("none",)]
        elif k < 0.85:
            items = items + [("slice", None, None, "-1")]  # torch refuses a negative step: must be rejected
            dst = self.value_name()
            self.commit([], [], [Assign(dst, IndexX(Ref(src), items, edge=True))])
            self.focus = dst
            return
        elif k < 0.9 and d.sym:
            items = items + [("slice", "1", None, None)]
        else:
            items = items + [("int", "-1")]
        dst = self.value_name()
        self.commit([], [], [Assign(dst, IndexX(Ref(src), items))])
        self.focus = dst

    def p_reduce(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2)
        if src is None:
            return False
        x = self.st.vals[src]
        r = x.rank
        d = rng.randrange(1, r)
        keep = rng.random() < 0.3
        kw = {"dim": str(d)}
        if keep:
            kw["keepdim"] = "True"
        k = rng.random()
        if k < 0.5:
            op = rng.choice(["mean", "sum", "amax"])
            if r >= 4 and rng.random() < 0.5:
                kw["dim"] = "(2, 3)" if rng.random() < 0.5 else "(-2, -1)"
            e = OpX(op, op, "method", [Ref(src)], kw) if rng.random() < 0.5 else \
                OpX(op, f"torch.{op}", "torch", [Ref(src)], kw)
        elif k < 0.75:
            dst, idx = self.value_name(), self.fresh(["idx", "ind", "_i"])
            e = OpX("max_dim", "max", "method", [Ref(src)], kw)
            if rng.random() < 0.5:
                self.commit([], [], [Assign((dst, idx), e)])
            else:
                self.commit([], [], [Assign(dst, IndexX(e, [("int", "0")]))])
            self.focus = dst
            return
        else:
            e = OpX("max_all", "max", "method", [Ref(src)])
            if rng.random() < 0.7:
                return False
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_argmax(self):
        """Indices from argmax fed to an Embedding: a Long tensor made in forward."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        idx = self.fresh(["idx", "ids", "choice"])
        e = OpX("argmax", "argmax", "method", [Ref(src)], {"dim": "-1"})
        n = x.shape[-1].v
        emb = LayerE("Embedding", {"num_embeddings": str(n + rng.choice([0, 0, 3])),
                                   "embedding_dim": str(self.gen.small(2, 16))})
        c = self.new_child(emb, None, ["emb", "embedding", "table"])
        dst = self.value_name()
        self.commit([c], [], [Assign(idx, e), Assign(dst, CallX(("child", c.name), [Ref(idx)]))])
        self.focus = dst

    def same_shape_layer(self, x: TV, explicit=False):
        """A layer whose output has x's shape (with every size written out: for a child that may never run)."""
        rng = self.rng
        r = x.rank
        opts = []
        if r >= 1 and not x.shape[-1].sym:
            d = x.shape[-1].v
            inf = str(d) if explicit else INFER
            opts += [LayerE("Linear", {"in_features": inf, "out_features": self.gen.size_text(d, self.env, 0.6)}),
                     LayerE("LayerNorm", {"normalized_shape": inf})]
            if self.in_block and "in_shape" in self.env:
                opts.append(LayerE("Linear", {"in_features": INFER, "out_features": "in_shape[-1]"}))
        if r in (3, 4) and not x.shape[1].sym:
            c = x.shape[1].v
            conv = f"Conv{r - 2}d"
            inf = str(c) if explicit else INFER
            opts.append(LayerE(conv, {"in_channels": inf, "out_channels": self.gen.size_text(c, self.env, 0.6),
                                      "kernel_size": "3", "padding": "1"}))
            opts.append(LayerE(conv, {"in_channels": inf, "out_channels": str(c), "kernel_size": "1"}))
        opts.append(LayerE(rng.choice(["ReLU", "GELU", "Tanh", "Identity"]), {}))
        return rng.choice(opts)

    def p_residual(self):
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        k = rng.random()
        # an existing value of a compatible shape
        partners = [n for n in self.floats() if n != src and _bcast_ok(x.shape, self.st.vals[n].shape)]
        dst = self.value_name()
        if partners and k < 0.35:
            other = rng.choice(partners)
            op = rng.choice(["+", "+", "*", "-"])
            self.commit([], [], [Assign(dst, BinX(op, Ref(src), Ref(other)))])
            self.focus = dst
            return
        if k < 0.5 and x.rank >= 2:  # broadcasting against a reduction
            d = rng.randrange(1, x.rank)
            e = BinX(rng.choice(["+", "-", "*"]), Ref(src), OpX("mean", "mean", "method", [Ref(src)],
                                                              {"dim": str(d), "keepdim": "True"}))
            self.commit([], [], [Assign(dst, e)])
            self.focus = dst
            return
        if self.in_block and rng.random() < 0.5 and "in_shape" in self.env and x.rank >= 2:
            # the ResNet shortcut: main path to n features, a projection only where the shape changes
            n = rng.choice([v for v in self.env.values() if isinstance(v, int) and not isinstance(v, bool)
                            and 1 < v <= 32] or [8])
            nt = self.gen.size_text(n, self.env, 0.9)
            if x.rank in (3, 4) and not x.shape[1].sym:
                conv = f"Conv{x.rank - 2}d"
                main = LayerE(conv, {"in_channels": INFER, "out_channels": nt, "kernel_size": "3", "padding": "1"})
                short = LayerE(conv, {"in_channels": INFER, "out_channels": nt, "kernel_size": "1"})
                cond = f"in_shape[1] != {nt}"
            elif not x.shape[-1].sym:
                main = LayerE("Linear", {"in_features": INFER, "out_features": nt})
                short = LayerE("Linear", {"in_features": INFER, "out_features": nt, "bias": "False"})
                cond = f"in_shape[-1] != {nt}" if rng.random() < 0.7 else f"{nt} != in_shape[-1]"
            else:
                return False
            cm = self.new_child(main)
            cs = self.new_child(short, cond, ["downsample", "shortcut", "proj", "skip_proj"])
            e = BinX("+", CallX(("child", cm.name), [Ref(src)]), CallX(("child", cs.name), [Ref(src)]))
            if rng.random() < 0.5:
                e = OpX("relu", "F.relu", "F", [e])
            self.commit([cm, cs], [], [Assign(dst, e)])
            self.focus = dst
            return
        # gate or residual through a new layer of the same shape
        mod = self.same_shape_layer(x)
        c = self.new_child(mod)
        call = CallX(("child", c.name), [Ref(src)])
        if rng.random() < 0.3:
            e = BinX("*", Ref(src), OpX("sigmoid", "torch.sigmoid", "torch", [call]))
        else:
            e = BinX("+", Ref(src), call) if rng.random() < 0.6 else BinX("+", call, Ref(src))
        self.commit([c], [], [Assign(dst, e)])
        self.focus = dst

    def p_param(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 1 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        d = x.shape[-1].v
        kind = "param" if rng.random() < 0.75 else "buffer"
        name = self.fresh(["W", "b", "scale", "bias_", "weight_", "gamma", "pos", "mask", "w_out", "in_features"])
        init = rng.choice(INITS)
        k = rng.random()
        if k < 0.4:
            m = self.gen.small(1, 16)
            dims = [self.gen.size_text(d, self.env, 0.5), self.gen.size_text(m, self.env, 0.5)]
            e = BinX("@", Ref(src), Ref(name)) if rng.random() < 0.8 else OpX("matmul", "torch.matmul", "torch",
                                                                           [Ref(src), Ref(name)])
        elif k < 0.7:
            dims = [self.gen.size_text(d, self.env, 0.5)]
            e = BinX(rng.choice(["+", "*", "-"]), Ref(src), Ref(name))
            if init in ("xavier_uniform", "kaiming_normal") and rng.random() < 0.7:
                init = "zeros"
        elif k < 0.8:
            dims = ["1"]
            e = BinX("*", Ref(src), Ref(name))
            init = rng.choice(["ones", "constant(2.0)", "zeros", None])
        elif k < 0.9 and x.rank >= 2 and not x.shape[-2].sym:
            dims = [str(x.shape[-2].v), str(d)]
            e = BinX("+", Ref(src), Ref(name))
        else:
            dims = [str(d)]
            e = BinX("@", Ref(src), Ref(name))  # a matrix-vector product: the last dim goes
        p = ParamDecl(kind, name, dims, init)
        dst = self.value_name()
        self.commit([], [p], [Assign(dst, e)])
        self.focus = dst

    def p_cat(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2)
        if src is None:
            return False
        x = self.st.vals[src]
        r = x.rank
        dst = self.value_name()
        others = [n for n in self.floats() if n != src and self.st.vals[n].rank == r]
        d = rng.choice([1, -1, r - 1] if r > 2 else [1, -1])
        dd = d % r
        fits = [n for n in others if all(same(self.st.vals[n].shape[i], x.shape[i]) for i in range(r) if i != dd)]
        if fits and rng.random() < 0.5:
            vals = [Ref(src), Ref(rng.choice(fits))]
            if rng.random() < 0.3:
                vals.append(Ref(src))
            self.commit([], [], [Assign(dst, OpX("cat", "torch.cat", "torch", [ListX(vals)], {"dim": str(d)}))])
            self.focus = dst
            return
        # two branches from src that differ only along dd
        children = []
        calls = []
        for _ in range(rng.choice([2, 2, 3])):
            if dd == r - 1 and not x.shape[-1].sym:
                mod = LayerE("Linear", {"in_features": INFER, "out_features": str(self.gen.small(1, 16))})
            elif dd == 1 and r in (3, 4) and not x.shape[1].sym:
                mod = LayerE(f"Conv{r - 2}d", {"in_channels": INFER, "out_channels": str(self.gen.small(1, 8)),
                                               "kernel_size": rng.choice(["1", "3"]), "padding": '"same"'})
            else:
                mod = None
            if mod is None or rng.random() < 0.2:
                calls.append(Ref(src))
                continue
            c = self.new_child(mod, None, ["branch", "branch1", "branch2", "path", "tower", "fc", "conv"])
            children.append(c)
            calls.append(CallX(("child", c.name), [Ref(src)]))
        if rng.random() < 0.15:
            e = OpX("stack", "torch.stack", "torch", [ListX([Ref(src), Ref(src)])], {"dim": str(rng.choice([1, -1]))})
            children = []
        else:
            e = OpX("cat", "torch.cat", "torch", [ListX(calls)], {"dim": str(d)}) if rng.random() < 0.8 else \
                OpX("cat", "torch.cat", "torch", [ListX(calls), str(d)])
        self.commit(children, [], [Assign(dst, e)])
        self.focus = dst

    def p_attention(self):
        """Attention written by hand: q @ k^T, softmax, @ v."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank == 3 and not t.shape[-1].sym)
        if src is None:
            return False
        d = self.gen.small(2, 16)
        cs = [self.new_child(LayerE("Linear", {"in_features": INFER, "out_features": str(d)}), None,
                             [f"{p}_proj"]) for p in "qkv"]
        q, k, v = (self.fresh([n]) for n in ("q", "k", "v"))
        att = self.fresh(["att", "scores", "weights"])
        dst = self.value_name()
        kt = OpX("transpose", "transpose", "method", [Ref(k), "-2", "-1"]) if rng.random() < 0.7 else \
            OpX("transpose", "transpose", "method", [Ref(k), "1", "2"])
        stmts = [Assign(q, CallX(("child", cs[0].name), [Ref(src)])),
                 Assign(k, CallX(("child", cs[1].name), [Ref(src)])),
                 Assign(v, CallX(("child", cs[2].name), [Ref(src)])),
                 Assign(att, OpX("softmax", "F.softmax", "F", [BinX("*", BinX("@", Ref(q), kt), Lit("0.25"))],
                                 {"dim": "-1"})),
                 Assign(dst, BinX("@", Ref(att), Ref(v)) if rng.random() < 0.8 else
                        OpX("bmm", "torch.bmm", "torch", [Ref(att), Ref(v)]))]
        self.commit(cs, [], stmts)
        self.focus = dst

    def p_rnn(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank == 3 and not t.shape[-1].sym)
        if src is None:
            return False
        kind = rng.choice(["LSTM", "LSTM", "GRU", "RNN"])
        h = self.gen.small(2, 16)
        g = {"input_size": INFER if rng.random() < 0.8 else str(self.st.vals[src].shape[-1].v),
             "hidden_size": self.gen.size_text(h, self.env, 0.4)}
        bf = rng.random() < 0.7
        if bf:
            g["batch_first"] = "True"
        if rng.random() < 0.3:
            g["num_layers"] = "2"
            if rng.random() < 0.5:
                g["dropout"] = "0.1"
        bi = rng.random() < 0.3
        if bi:
            g["bidirectional"] = "True"
        if kind == "LSTM" and rng.random() < 0.15 and h > 2:
            g["proj_size"] = str(h // 2)
        if kind == "RNN" and rng.random() < 0.3:
            g["nonlinearity"] = '"relu"'
        mod = LayerE(kind, g, npos=rng.choice([1, 2]))
        c = self.new_child(mod, None, [kind.lower(), "rnn", "encoder", "recurrent"])
        stmts = []
        inp = Ref(src)
        if not bf:
            inp = OpX("transpose", "transpose", "method", [Ref(src), "0", "1"])
        out = self.fresh(["out", "seq_out", "outputs", "y"])
        hn = self.fresh(["h", "h_n", "hidden", "state"])
        if kind == "LSTM":
            cn = self.fresh(["c", "c_n", "cell"])
            tg = (out, (hn, cn)) if rng.random() < 0.8 else (out, (hn, "_"))
            if rng.random() < 0.2:
                tg = (out, "_")
        else:
            tg = (out, hn) if rng.random() < 0.8 else (out, "_")
        stmts.append(Assign(tg, CallX(("child", c.name), [inp])))
        dst = self.value_name()
        k = rng.random()
        if not bf:
            stmts.append(Assign(out, OpX("transpose", "transpose", "method", [Ref(out), "0", "1"])))
        if k < 0.4:
            e = IndexX(Ref(out), [("slice", None, None, None), ("int", "-1")])
        elif k < 0.7 and tg[1] != "_":
            e = IndexX(Ref(hn), [("int", "-1")])
            if bi and rng.random() < 0.6:
                e = OpX("cat", "torch.cat", "torch", [ListX([IndexX(Ref(hn), [("int", "-2")]),
                                                             IndexX(Ref(hn), [("int", "-1")])])], {"dim": "1"})
        else:
            e = Ref(out)
        stmts.append(Assign(dst, e))
        self.commit([c], [], stmts)
        self.focus = dst

    def p_mha(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank == 3 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        e_dim = x.shape[-1].v
        heads = rng.choice([h for h in (1, 2, 4) if e_dim % h == 0])
        g = {"embed_dim": INFER if rng.random() < 0.8 else str(e_dim), "num_heads": str(heads)}
        bf = rng.random() < 0.8
        if bf:
            g["batch_first"] = "True"
        kv = Ref(src)
        other = [n for n in self.floats() if n != src and self.st.vals[n].rank == 3
                 and same(self.st.vals[n].shape[0], x.shape[0]) and not self.st.vals[n].shape[-1].sym]
        if other and rng.random() < 0.4 and bf:
            o = rng.choice(other)
            kv = Ref(o)
            kd = self.st.vals[o].shape[-1].v
            if kd != e_dim:
                g["kdim"] = g["vdim"] = str(kd)
        if rng.random() < 0.1:
            g["add_bias_kv"] = "True"
        if rng.random() < 0.1:
            g["add_zero_attn"] = "True"
        if rng.random() < 0.2:
            g["dropout"] = "0.1"
        mod = LayerE("MultiheadAttention", g, npos=rng.choice([1, 2]))
        c = self.new_child(mod, None, ["attn", "attention", "mha", "self_attn", "cross"])
        kw = {}
        r = rng.random()
        if r < 0.3:
            kw["need_weights"] = "False"
        elif r < 0.45:
            kw["average_attn_weights"] = "False"
        q = Ref(src)
        if not bf:
            q = OpX("transpose", "transpose", "method", [Ref(src), "0", "1"])
            kv = q
        out = self.fresh(["attended", "a", "ctx", "out"])
        w = self.fresh(["w", "weights", "att_w"]) if "need_weights" not in kw and rng.random() < 0.5 else "_"
        stmts = [Assign((out, w), CallX(("child", c.name), [q, kv, kv], kw))]
        if not bf:
            stmts.append(Assign(out, OpX("transpose", "transpose", "method", [Ref(out), "0", "1"])))
        self.commit([c], [], stmts)
        self.focus = out if w == "_" or rng.random() < 0.7 else w

    def p_decoder(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank == 3 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        e = x.shape[-1].v
        mem = [n for n in self.floats() if self.st.vals[n].rank == 3 and same(self.st.vals[n].shape[0], x.shape[0])
               and not self.st.vals[n].shape[-1].sym and self.st.vals[n].shape[-1].v == e]
        m = rng.choice(mem)
        g = {"d_model": INFER if rng.random() < 0.5 else str(e),
             "nhead": str(rng.choice([h for h in (1, 2, 4) if e % h == 0])),
             "dim_feedforward": str(self.gen.small(4, 16)), "batch_first": "True", "dropout": "0.0"}
        c = self.new_child(LayerE("TransformerDecoderLayer", g, npos=1), None, ["decoder", "dec", "cross"])
        dst = self.value_name()
        self.commit([c], [], [Assign(dst, CallX(("child", c.name), [Ref(src), Ref(m)]))])
        self.focus = dst

    def p_bilinear(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        others = [n for n in self.floats() if same_shape(self.st.vals[n].shape[:-1], x.shape[:-1])
                  and not self.st.vals[n].shape[-1].sym]
        o = rng.choice(others)
        g = {"in1_features": INFER, "in2_features": INFER, "out_features": str(self.gen.small(1, 8))}
        if rng.random() < 0.3:
            g = {"in1_features": str(x.shape[-1].v), "in2_features": str(self.st.vals[o].shape[-1].v),
                 "out_features": g["out_features"]}
        c = self.new_child(LayerE("Bilinear", g), None, ["bilinear", "bil", "mix"])
        dst = self.value_name()
        self.commit([c], [], [Assign(dst, CallX(("child", c.name), [Ref(src), Ref(o)]))])
        self.focus = dst

    def p_nested(self):
        """Two new children in one expression: c2(act(c1(x)))."""
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        m1 = self.gen.layer_for(self, x, chain_only=True)
        if m1 is None:
            return False
        out = m1.build(self.st.env).call([x])
        if not isinstance(out, TV):
            return False
        m2 = self.gen.layer_for(self, out, chain_only=True)
        if m2 is None:
            return False
        c1 = self.new_child(m1)
        c2 = self.new_child(m2)
        inner = CallX(("child", c1.name), [Ref(src)])
        if rng.random() < 0.5:
            op, sp, form, kw = rng.choice(FUNCS[:14])
            inner = OpX(op, sp, form, [inner], kw)
        e = CallX(("child", c2.name), [inner])
        if rng.random() < 0.3:
            e = BinX("*", e, Lit("0.5"))
        dst = self.value_name()
        self.commit([c1, c2], [], [Assign(dst, e)])
        self.focus = dst

    def p_long(self):
        """Index arithmetic: tokens + 1, a slice of the ids, ids of another sequence into an Embedding."""
        rng = self.rng
        longs = [n for n, v in self.st.vals.items() if isinstance(v, TV) and v.dtype == "long"]
        if not longs:
            return False
        src = rng.choice(longs)
        x = self.st.vals[src]
        k = rng.random()
        if k < 0.4 and x.rank >= 2 and not x.shape[1].sym and x.shape[1].v > 1:
            e = IndexX(Ref(src), [("slice", None, None, None), ("slice", "1", None, None)])
        elif k < 0.7:
            e = BinX("+", Ref(src), Lit("1")) if rng.random() < 0.5 else BinX("*", Ref(src), Lit("2"))
            if x.hi is None:
                return False  # the bound of a model input is the compiler's: keep out of its way
            y = self.st.vals[src]
            e_hi = (y.hi + 1) if isinstance(e.b, Lit) and e.b.text == "1" and e.op == "+" else y.hi * 2
            dst = self.value_name()
            self.commit([], [], [Assign(dst, e)])
            self.st.vals[dst] = TV(self.st.vals[dst].shape, "long", e_hi)
            self.focus = dst
            return
        else:
            e = OpX("flatten", "flatten", "method", [Ref(src), "1"]) if x.rank >= 3 else \
                OpX("unsqueeze", "unsqueeze", "method", [Ref(src), "-1"])
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_mask(self):
        """A Bool mask times a float value: torch promotes to float."""
        rng = self.rng
        masks = [n for n, v in self.st.vals.items() if isinstance(v, TV) and v.dtype == "bool"]
        if not masks:
            return False
        m = rng.choice(masks)
        mt = self.st.vals[m]
        fits = [n for n in self.floats() if self.st.vals[n].rank in (mt.rank, mt.rank + 1)
                and same_shape(self.st.vals[n].shape[:mt.rank], mt.shape)]
        if not fits:
            return False
        v = rng.choice(fits)
        mx = Ref(m) if self.st.vals[v].rank == mt.rank else OpX("unsqueeze", "unsqueeze", "method", [Ref(m), "-1"])
        e = BinX("*", Ref(v), mx) if rng.random() < 0.7 else BinX("*", mx, Ref(v))
        dst = self.value_name()
        self.commit([], [], [Assign(dst, e)])
        self.focus = dst

    def p_pool_idx(self):
        """A pooling layer with return_indices=True: two results."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank in (3, 4) and not t.shape[1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        nd = x.rank - 2
        if rng.random() < 0.5:
            mod = LayerE(f"MaxPool{nd}d", {"kernel_size": "2", "return_indices": "True"})
        else:
            mod = LayerE(f"AdaptiveMaxPool{nd}d", {"output_size": str(rng.choice([1, 2])), "return_indices": "True"})
        c = self.new_child(mod, None, ["pool", "max_pool", "down"])
        dst, idx = self.value_name(), self.fresh(["idx", "indices", "where"])
        tg = (dst, idx) if rng.random() < 0.7 else (dst, "_")
        self.commit([c], [], [Assign(tg, CallX(("child", c.name), [Ref(src)]))])
        self.focus = dst

    def p_reuse(self):
        """Call an existing child again: on the same value, on its output, or on another of a fitting shape."""
        rng = self.rng
        names = [c.name for c in self.body.children if self.st.children.get(c.name) is not None
                 and isinstance(self.st.children[c.name], (LayerInst, SeqInst, BlockInst))]
        if not names:
            return False
        cn = rng.choice(names)
        src = self.pick_value()
        if src is None:
            return False
        inst = self.st.children[cn]
        first = getattr(inst, "first", None)
        if first and rng.random() < 0.7:  # a block: a value of the very shape it was built for
            fits = [n for n in self.floats() if same_shape(self.st.vals[n].shape, first[0].shape)]
            if fits and len(first) == 1:
                src = rng.choice(fits)
        s, dst = self.call_stmt(cn, src, wrap_fn=False)
        self.commit([], [], [s])
        self.focus = dst

    def p_loop_range(self):
        """for i in range(n): the same child again and again."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 1 and not t.shape[-1].sym)
        if src is None:
            return False
        x = self.st.vals[src]
        d = x.shape[-1].v
        c = self.new_child(LayerE("Linear", {"in_features": str(d), "out_features": str(d)}))
        var = self.fresh(["i", "j", "step"])
        n = self.gen.size_text(rng.choice([1, 2, 3]), self.env, 0.3)
        dst = src if rng.random() < 0.3 else self.value_name()
        stmts = [] if dst == src else [Assign(dst, Ref(src))]
        stmts.append(For(var, n, [Assign(dst, OpX("relu", "F.relu", "F", [CallX(("child", c.name), [Ref(dst)])]))],
                         kind="range"))
        self.commit([c], [], stmts)
        self.focus = dst

    def p_chunk(self):
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2 and not t.shape[-1].sym and t.shape[-1].v >= 2)
        if src is None:
            return False
        x = self.st.vals[src]
        L = x.shape[-1].v
        n = rng.choice([2, 2, 3])
        if rng.random() < 0.6:
            e = OpX("chunk", "chunk", "method", [Ref(src), str(n)], {"dim": "-1"})
            size = -(-L // n)
            count = L // size + (1 if L % size else 0)
        else:
            s = rng.choice([1, 2, 3])
            e = OpX("split", "split", "method", [Ref(src), str(s)], {"dim": "-1"})
            count = L // s + (1 if L % s else 0)
        if count <= 3 and rng.random() < 0.7:
            names = [self.fresh(["a", "b", "c_", "p1", "p2", "p3", "u", "w_"]) for _ in range(count)]
            stmts = [Assign(tuple(names), e)]
            dst = names[0]
        else:
            dst = self.value_name()
            stmts = [Assign(dst, IndexX(e, [("int", "0")]))]
        self.commit([], [], stmts)
        self.focus = dst

    # ------------------------------------------------------------ lists, ModuleDict loops, ties, training
    def p_dense(self):
        """DenseNet: feats = [x]; each layer appends its output on torch.cat(feats, dim), so the channels grow."""
        rng = self.rng
        src = self.pick_value(lambda t: 2 <= t.rank <= 4)
        if src is None:
            return False
        x = self.st.vals[src]
        r = x.rank
        g = self.gen.size_text(self.gen.small(1, 8), self.env, 0.4)
        if r in (3, 4) and not x.shape[1].sym and (rng.random() < 0.7 or x.shape[-1].sym):
            dim = rng.choice(["1", "1", str(1 - r)])
            k = rng.choice(["1", "3"])
            g_conv = {"in_channels": INFER, "out_channels": g, "kernel_size": k}
            if k == "3":
                g_conv["padding"] = "1"
            if rng.random() < 0.5:
                g_conv["bias"] = "False"
            layer = LayerE(f"Conv{r - 2}d", g_conv)
            if rng.random() < 0.4:  # torchvision's dense layer: norm, act, conv
                layer = SeqE([LayerE(f"BatchNorm{r - 2}d", {}), LayerE("ReLU", {}), layer])
        elif not x.shape[-1].sym:
            dim = rng.choice(["-1", str(r - 1)])
            layer = LayerE("Linear", {"in_features": INFER, "out_features": g})
            if rng.random() < 0.3:
                layer = SeqE([LayerE("LayerNorm", {}), layer, LayerE("GELU", {})])
        else:
            return False
        block = self.gen.dense_layer_block(layer) if rng.random() < 0.3 else None
        if block is not None:  # torchvision's _DenseLayer: a block, built anew for each layer's input
            layer = BlockE(block, [g], {})
        n = self.gen.size_text(rng.choice([1, 2, 3]), self.env, 0.3)
        feats, var = self.fresh(["feats", "features", "xs", "outs"]), self.fresh(["layer", "l", "m", "blk"])

        def cat():
            if rng.random() < 0.3:
                return OpX("cat", "torch.cat", "torch", [Ref(feats), dim])
            return OpX("cat", "torch.cat", "torch", [Ref(feats)], {"dim": dim})

        if rng.random() < 0.45:
            mod = RepE("list", layer, n)
            c = self.new_child(mod, None, ["layers", "dense", "blocks"])
            loop = For(var, c.name, [MethodStmt(feats, "append", CallX(("loopvar", var), [cat()]))])
        else:
            mod = DictCompE(rng.choice(["denselayer", "layer", "block_"]), layer, n, offset=rng.choice([0, 1]))
            c = self.new_child(mod, None, ["layers", "dense", "dense_block", "stages"])
            kind = rng.choice(["items", "items", "values", "keys", "dict"])
            if kind in ("keys", "dict"):
                key = self.fresh(["key", "name", "k_"])
                loop = For(key, c.name, [MethodStmt(feats, "append", CallX(("keyvar", c.name, key), [cat()]))], kind)
            else:
                var = (self.fresh(["name", "key", "k_"]), var) if kind == "items" else var
                lv = var[1] if kind == "items" else var
                loop = For(var, c.name, [MethodStmt(feats, "append", CallX(("loopvar", lv), [cat()]))], kind)
        dst = self.value_name()
        try:
            self.commit([c], [], [Assign(feats, ListX([Ref(src)])), loop, Assign(dst, cat())])
        except Invalid:
            if block is not None:
                self.gen.blocks.remove(block)
                self.gen.block_names.discard(block.name)
            raise
        self.focus = dst

    def fan_out(self, x: TV, n: int):
        """n modules that each take x: the same one repeated, or n of their own."""
        rng = self.rng
        if x.rank < 1:
            return None
        if rng.random() < 0.5:
            item = self.gen.layer_for(self, x, chain_only=True)
            return None if item is None else [item] * n
        items = []
        for _ in range(n):
            if not x.shape[-1].sym and rng.random() < 0.7:
                items.append(LayerE("Linear", {"in_features": INFER, "out_features": str(self.gen.small(1, 12))}))
            else:
                item = self.gen.layer_for(self, x, chain_only=True)
                if item is None:
                    return None
                items.append(item)
        return items

    def p_listcomp(self):
        """outs = [m(x) for m in layers], then torch.stack / torch.cat of it, sliced and joined with +."""
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        items = self.fan_out(x, rng.choice([1, 2, 2, 3]))
        if not items:
            return False
        k = rng.random()
        if k < 0.4 and items.count(items[0]) == len(items):
            mod, kind = RepE("list", items[0], self.gen.size_text(len(items), self.env, 0.3)), "list"
        elif k < 0.7:
            mod, kind = ListE(items), "list"
        elif items.count(items[0]) == len(items):
            mod, kind = DictCompE(rng.choice(["expert", "head", "h"]), items[0], str(len(items))), "values"
        else:
            keys = rng.sample(["a", "b", "c", "expert1", "expert2", "proj", "x", "first", "last"], len(items))
            mod, kind = DictE(keys, items), "values"
        c = self.new_child(mod, None, ["experts", "heads", "branches", "towers"])
        outs, var = self.fresh(["outs", "ys", "branches_out"]), self.fresh(["m", "expert", "head", "f"])
        stmts = [Assign(outs, ListCompX(CallX(("loopvar", var), [Ref(src)]), var, c.name, kind))]
        r = x.rank
        d = str(rng.choice([1, -1] if r >= 2 else [0, -1]))
        lst = Ref(outs)
        if rng.random() < 0.3:
            lst = BinX("+", Ref(outs), ListX([Ref(src)])) if rng.random() < 0.5 else \
                BinX("+", IndexX(Ref(outs), [("slice", "1", None, None)]),
                     IndexX(Ref(outs), [("slice", None, "1", None)]))
        k = rng.random()
        if k < 0.35:
            e = OpX("stack", "torch.stack", "torch", [Ref(outs)], {"dim": d})
            if rng.random() < 0.5:
                e = OpX("mean", "mean", "method", [e], {"dim": d})
        elif k < 0.8:
            e = OpX("cat", "torch.cat", "torch", [lst], {"dim": str(-1 if r else 0)})
        else:
            e = BinX("+", IndexX(Ref(outs), [("int", "0")]), IndexX(Ref(outs), [("int", "-1")]))
        dst = self.value_name()
        self.commit([c], [], stmts + [Assign(dst, e)])
        self.focus = dst

    def p_chunklist(self):
        """parts = list(x.chunk(k, dim)), grown by .extend / .append (through an alias too), then cat."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 2 and not t.shape[-1].sym and t.shape[-1].v >= 2)
        if src is None:
            return False
        x = self.st.vals[src]
        dim = rng.choice(["-1", str(x.rank - 1)])
        parts = self.fresh(["parts", "chunks", "pieces"])
        chunk = OpX("chunk", "chunk", "method", [Ref(src), str(rng.choice([2, 2, 3]))], {"dim": dim})
        stmts = [Assign(parts, ListOfX(chunk))]
        first, last = IndexX(Ref(parts), [("int", "0")]), IndexX(Ref(parts), [("int", "-1")])
        k = rng.random()
        if k < 0.4:
            op, sp, form, kw = rng.choice(FUNCS[:12])
            stmts.append(MethodStmt(parts, "extend", ListX([OpX(op, sp, form, [first], kw), Ref(src)][
                :rng.choice([1, 2])])))
        elif k < 0.7:
            stmts.append(MethodStmt(parts, "append", BinX("*", last, Lit("2.0"))))
        else:  # two names, one list: the append shows through both
            alias = self.fresh(["alias", "same", "ps"])
            stmts += [Assign(alias, Ref(parts)), MethodStmt(alias, "append", Ref(src))]
        lst = Ref(parts)
        if rng.random() < 0.4:
            lst = BinX("+", IndexX(Ref(parts), [("slice", "1", None, None)]),
                       IndexX(Ref(parts), [("slice", None, "1", None)]))
        dst = self.value_name()
        stmts.append(Assign(dst, OpX("cat", "torch.cat", "torch", [lst], {"dim": dim})))
        self.commit([], [], stmts)
        self.focus = dst

    def p_dictloop(self):
        """A loop over a ModuleDict: for name, m in d.items() / d.values() / d.keys() with d[key](x) / d."""
        rng = self.rng
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]
        pool = ["a", "b", "conv1", "fc", "proj", "out", "first", "last", "down_2", "Stage_2", "x", "in_features"]
        kind = rng.choice(["items", "items", "values", "keys", "dict"])
        key, var = self.fresh(["name", "key", "k_"]), self.fresh(["m", "layer", "mod"])

        def call(arg):
            if kind in ("keys", "dict"):
                return CallX(("keyvar", c.name, key), [arg])
            return CallX(("loopvar", var), [arg])

        loop_var = key if kind in ("keys", "dict") else (key, var) if kind == "items" else var
        if rng.random() < 0.6:  # a chain: x = m(x), pass after pass
            if rng.random() < 0.35:
                item = self.gen.layer_for(self, x, chain_only=True)
                if item is None:
                    return False
                mod = DictCompE(rng.choice(["layer", "block", "l"]), item,
                                self.gen.size_text(rng.choice([1, 2, 3]), self.env, 0.3), offset=rng.choice([0, 1]))
            else:
                items, _ = self.chain(x, rng.choice([1, 2, 3]))
                if not items:
                    return False
                mod = DictE(rng.sample(pool, len(items)), items)
            c = self.new_child(mod, None, ["layers", "stages", "mods", "table"])
            dst = src if rng.random() < 0.5 else self.value_name()
            stmts = [] if dst == src else [Assign(dst, Ref(src))]
            body = call(Ref(dst))
            if rng.random() < 0.3:
                body = OpX("relu", "F.relu", "F", [body])
            body = [Assign(dst, body)]
            if rng.random() < 0.2:  # each pass adds noise in training
                body[0].semi = True
                noise = BinX("*", OpX("randn_like", "torch.randn_like", "torch", [Ref(dst)]), Lit("0.1"))
                body.append(TrainIf([Assign(dst, BinX("+", Ref(dst), noise))]))
            stmts.append(For(loop_var, c.name, body, kind))
        else:  # a fan-out: each module on x, the outputs collected and joined
            items = self.fan_out(x, rng.choice([2, 3]))
            if not items or x.rank < 1:
                return False
            c = self.new_child(DictE(rng.sample(pool, len(items)), items), None, ["heads", "branches", "towers"])
            outs, dst = self.fresh(["outs", "ys"]), self.value_name()
            stmts = [Assign(outs, ListX([])), For(loop_var, c.name, [MethodStmt(outs, "append", call(Ref(src)))],
                                                  kind), Assign(dst, OpX("cat", "torch.cat", "torch", [Ref(outs)],
                                                                         {"dim": "-1"}))]
        self.commit([c], [], stmts)
        self.focus = dst

    def p_tie(self):
        """a.weight = b.weight: two layers of existing children, a head tied to an embedding, or a new pair."""
        rng = self.rng
        tied = {t.a for t in self.body.ties} | {t.b for t in self.body.ties}
        cands = []  # (path, instance): layers by child name and ModuleDict key
        for c in self.body.children:
            inst = self.st.children.get(c.name)
            if c.cond is not None or c.quoted:
                continue
            if isinstance(inst, LayerInst):
                cands.append(((c.name,), inst))
            elif isinstance(inst, DictInst):
                cands += [((c.name, k), it) for k, it in inst.items.items() if k.isidentifier()
                          and isinstance(it, LayerInst)]
        cands = [(p, i) for p, i in cands if p not in tied]
        param = "bias" if rng.random() < 0.15 else "weight"
        k = rng.random()
        pairs = [(p, q) for (p, i), (q, j) in itertools.combinations(cands, 2)
                 if param_shape(i, param) is not None and param_shape(i, param) == param_shape(j, param)]
        if pairs and k < 0.5:
            a, b = rng.choice(pairs)
            if rng.random() < 0.5:
                a, b = b, a
            self.commit(ties=[TieDecl(a, b, param)])
            return
        src = self.pick_value(lambda t: t.rank >= 1 and not t.shape[-1].sym)
        if src is None:
            return False
        d = self.st.vals[src].shape[-1].v
        tables = [(p, param_shape(i, "weight")) for p, i in cands if (param_shape(i, "weight") or (0, 0))[1:] == (d,)]
        if tables and k < 0.8:  # nanoGPT's head: Linear(D, V, bias=False) tied to Embedding(V, D)
            path, (v, _) = rng.choice(tables)
            g = {"in_features": rng.choice([INFER, str(d)]), "out_features": str(v)}
            if rng.random() < 0.8:
                g["bias"] = "False"
            head = self.new_child(LayerE("Linear", g), None, ["lm_head", "head", "out_proj", "decoder"])
            tie = TieDecl((head.name,), path) if rng.random() < 0.5 else TieDecl(path, (head.name,))
            dst = self.value_name()
            self.commit([head], [], [Assign(dst, CallX(("child", head.name), [Ref(src)]))], [tie])
            self.focus = dst
            return
        n = self.gen.small(1, 16)
        pair = [self.new_child(LayerE("Linear", {"in_features": INFER, "out_features": str(n)}), None,
                               ["enc", "dec", "fc1", "fc2", "proj"]) for _ in range(2)]
        others = [o for o in self.floats() if self.st.vals[o].rank >= 1 and same(self.st.vals[o].shape[-1],
                                                                                 self.st.vals[src].shape[-1])]
        other = rng.choice(others)
        dst = self.value_name()
        e = BinX("+", CallX(("child", pair[0].name), [Ref(src)]), CallX(("child", pair[1].name), [Ref(other)]))
        self.commit(pair, [], [Assign(dst, e)], [TieDecl((pair[0].name,), (pair[1].name,),
                                                         "bias" if rng.random() < 0.2 else "weight")])
        self.focus = dst

    def p_quoted_unused(self):
        """"aux-1" = Linear(8, 8) in a body with forward: never called (forward cannot name it), built and counted."""
        src = self.pick_value()
        if src is None:
            return False
        mod = self.same_shape_layer(self.st.vals[src], explicit=True)
        if isinstance(mod, LayerE) and INFER in mod.given.values():
            return False
        self.commit([ChildDecl(self.quoted_name(), mod, None, quoted=True)])

    def semi_before_if(self):
        prev = self.body.forward[-1] if self.body.forward else None
        if isinstance(prev, (Assign, MethodStmt)) and self.rng.random() < 0.95:
            prev.semi = True  # else `x = f(x) if c {` reads as a conditional expression: a syntax error

    def p_train(self):
        """`training`: stochastic depth, noise or a layer in training only, x if training else y, and a dropout_p
        chosen by it for F.scaled_dot_product_attention."""
        rng = self.rng
        src = self.pick_value(lambda t: t.rank >= 1)
        if src is None:
            return False
        x = self.st.vals[src]
        floats = [n for n, v in self.env.items() if isinstance(v, float) and 0 < v < 1 and n.isidentifier()]
        pname = rng.choice(floats) if floats and rng.random() < 0.6 else None
        k = rng.random()
        children, stmts, dst = [], [], src
        if k < 0.3:  # stochastic depth, on the value or on a residual branch
            keep = self.fresh(["keep", "mask_", "survive"])
            p_keep = Lit(f"1 - {pname}", prec=10) if pname else Lit(rng.choice(["0.8", "0.5", "0.9"]))
            h = src
            if rng.random() < 0.5:
                c = self.new_child(self.same_shape_layer(x))
                children.append(c)
                h = self.fresh(["branch_out", "h", "res"])
                stmts.append(Assign(h, CallX(("child", c.name), [Ref(src)])))
            rand = OpX("rand", "torch.rand", "torch", [SizeX(Ref(h), 0, "shape")] + [IntLit("1")] * (x.rank - 1))
            then = [Assign(keep, CmpX("<", rand, p_keep)),
                    Assign(h, BinX("/", BinX("*", Ref(h), OpX("to_float", "float", "method", [Ref(keep)])), p_keep))]
            if stmts:
                stmts[-1].semi = True
            else:
                self.semi_before_if()
            stmts.append(TrainIf(then))
            if h != src:
                dst = self.value_name()
                stmts.append(Assign(dst, BinX("+", Ref(src), Ref(h))))
        elif k < 0.55:  # the branches differ: noise, a layer, a function
            def branch():
                j = rng.random()
                if j < 0.35:
                    op = rng.choice(["randn_like", "rand_like"])
                    noise = OpX(op, f"torch.{op}", "torch", [Ref(src)])
                    return [Assign(src, BinX("+", Ref(src), BinX("*", noise, Lit("0.1"))))]
                if j < 0.7:
                    c = self.new_child(self.same_shape_layer(x))
                    children.append(c)
                    return [Assign(src, CallX(("child", c.name), [Ref(src)]))]
                op, sp, form, kw = rng.choice(FUNCS)
                return [Assign(src, OpX(op, sp, form, [Ref(src)], kw))]

            self.semi_before_if()
            stmts.append(TrainIf(branch(), branch() if rng.random() < 0.5 else None))
        elif k < 0.8:  # a conditional expression on the mode
            dst = self.value_name()
            if rng.random() < 0.6:
                op, sp, form, kw = rng.choice(FUNCS)
                a, b = OpX(op, sp, form, [Ref(src)], kw), Ref(src)
                if rng.random() < 0.3:
                    a, b = b, a
                stmts.append(Assign(dst, TrainTernaryX(a, b)))
            else:
                scale = TrainTernaryX(Lit(rng.choice(["0.5", "2.0"])), Lit("1.0"))
                stmts.append(Assign(dst, BinX("*", Ref(src), scale)))
        else:  # attention whose dropout_p is chosen by the mode
            if x.rank not in (3, 4):
                return False
            p = Lit(pname or rng.choice(["0.1", "0.5"]))
            kw = {"dropout_p": TrainTernaryX(p, Lit("0.0"))}
            if rng.random() < 0.4:
                kw["is_causal"] = "True"
            dst = self.value_name()
            stmts.append(Assign(dst, OpX("sdpa", "F.scaled_dot_product_attention", "F", [Ref(src)] * 3, kw)))
        self.commit(children, [], stmts)
        self.focus = dst

    def p_if(self):
        rng = self.rng
        cv = self.cond_for()
        if cv is None:
            return False
        cond, _ = cv
        if "in_shape" in cond:
            return False  # forward conditions test parameters
        src = self.pick_value()
        if src is None:
            return False
        x = self.st.vals[src]

        def branch():
            k = rng.random()
            if k < 0.5:
                op, sp, form, kw = rng.choice(FUNCS[:14])
                return [Assign(src, OpX(op, sp, form, [Ref(src)], kw))]
            if k < 0.8:
                mod = self.same_shape_layer(x, explicit=True)
                c = self.new_child(mod)
                pending.append(c)
                return [Assign(src, CallX(("child", c.name), [Ref(src)]))]
            return [Assign(src, BinX("*", Ref(src), Lit("0.5")))]

        pending = []
        if rng.random() < 0.3:  # a conditional expression instead
            op, sp, form, kw = rng.choice(FUNCS[:14])
            a, b = OpX(op, sp, form, [Ref(src)], kw), Ref(src)
            if rng.random() < 0.5:
                a, b = b, a
            self.commit([], [], [Assign(src, TernaryX(cond, a, b))])
            self.focus = src
            return
        then = branch()
        orelse = branch() if rng.random() < 0.4 else None
        stmts = [If(cond, then, orelse)]
        prev = self.body.forward[-1] if self.body.forward else None
        if isinstance(prev, (Assign, MethodStmt)) and rng.random() < 0.9:
            prev.semi = True  # else `x = f(x) if c {` reads as a conditional expression: a syntax error
        self.commit(pending, [], stmts)
        self.focus = src

    def propose_chain_child(self):
        """For a body without forward: one more child that takes the current value."""
        rng = self.rng
        x = self.st.vals[self.focus]
        for _ in range(4):
            k = rng.random()
            mod = None
            try:
                if k < 0.15 and self.gen.depth < 2:
                    be = None
                    ones = [b for b in self.gen.blocks if len(b.body.fwd_params) == 1]
                    if ones and rng.random() < 0.5:
                        be = self.gen.block_variant(self, rng.choice(ones))
                    mod = be or self.gen.gen_block(self, x)
                elif k < 0.35:
                    items, _ = self.chain(x, rng.choice([1, 2, 3]))
                    mod = self.seq_of(items) if items else None
                    if mod and rng.random() < 0.3:
                        mod = RepE("seq", items[0], str(rng.choice([1, 2])))
                else:
                    mod = self.gen.layer_for(self, x, chain_only=True)
                if mod is None:
                    continue
                cond = None
                if rng.random() < 0.2:
                    cv = self.cond_for()
                    cond = cv[0] if cv else None
                c = self.new_child(mod, cond)
                st = self.commit([c])
                inst = st.children[c.name]
                if inst is not None:
                    out = inst.call([x])
                    if not isinstance(out, TV):
                        raise Invalid("tuple")
                    st.vals[self.focus] = out
                return True
            except Invalid:
                if self.body.children and self.body.children[-1].mod is mod:
                    self.body.children.pop()
                continue
        return False

    def finish_return(self, model=False):
        rng = self.rng
        fl = [n for n, v in self.st.vals.items() if isinstance(v, TV)]
        main = self.focus if self.focus in self.st.vals and isinstance(self.st.vals[self.focus], TV) else (
            fl[-1] if fl else None)
        if main is None:
            raise Invalid("nothing to return")
        values = [Ref(main)]
        if model and rng.random() < 0.15 and len(fl) > 1:
            values.append(Ref(rng.choice([n for n in fl if n != main])))
        elif model and rng.random() < 0.03:
            values.append(Ref(main))
        elif rng.random() < 0.2 and self.st.vals[main].dtype == "float":
            op, sp, form, kw = rng.choice(FUNCS[:12])
            values = [OpX(op, sp, form, [Ref(main)], kw)]
        self.commit([], [], [Return(values)])


class TernaryX(X):
    prec = 1

    def __init__(self, cond, a, b):
        self.cond, self.a, self.b = cond, a, b

    def render(self):
        return f"{wrap(self.a, 2)} if {self.cond} else {wrap(self.b, 1)}"

    def ev(self, st):
        c = ev(self.cond, st.env)
        if not isinstance(c, bool):
            raise Invalid("condition")
        return self.a.ev(st) if c else self.b.ev(st)


class NumelX(X):
    def __init__(self, x):
        self.x = x

    def render(self):
        return f"{wrap(self.x, 14)}.numel()"

    def ev(self, st):
        return IntV(dprod(_t(self.x.ev(st)).shape))


class ShapeAll(X):
    """x.shape or x.size(), to unpack."""

    def __init__(self, x, attr=True):
        self.x, self.attr = x, attr

    def render(self):
        return f"{wrap(self.x, 14)}.shape" if self.attr else f"{wrap(self.x, 14)}.size()"

    def ev(self, st):
        t = _t(self.x.ev(st))
        return tuple(IntV(d) for d in t.shape)


# ---------------------------------------------------------------- lists in forward, and `training`
class ListCompX(X):
    """[elt for var in over]: over a ModuleList child (kind "list") or a ModuleDict's values() (kind "values")."""

    def __init__(self, elt, var, over, kind="list"):
        self.elt, self.var, self.over, self.kind = elt, var, over, kind

    def render(self):
        return f"[{self.elt.render()} for {self.var} in {For.ITER[self.kind].format(self.over)}]"

    def ev(self, st):
        inst = st.children.get(self.over)
        if not isinstance(inst, ListInst if self.kind == "list" else DictInst):
            raise Invalid("comprehension over a child of another kind")
        out = []
        for el in inst.items if self.kind == "list" else list(inst.items.values()):
            st.loopvars[self.var] = el
            v = self.elt.ev(st)
            if not isinstance(v, TV):
                raise Invalid("a list of tensors only")
            out.append(v)
        st.loopvars.pop(self.var, None)
        return out


class ListOfX(X):
    """list(t): a list of a tuple's tensors (x.chunk(2, 1))."""

    def __init__(self, x):
        self.x = x

    def render(self):
        return f"list({self.x.render()})"

    def ev(self, st):
        v = self.x.ev(st)
        if not isinstance(v, (tuple, list)) or not all(isinstance(t, TV) for t in v):
            raise Invalid("list of a non-tuple")
        return list(v)


class MethodStmt(Stmt):
    """xs.append(t) / xs.extend(ts): the two calls forward runs for their effect."""

    def __init__(self, name, method, arg: X):
        self.name, self.method, self.arg, self.semi = name, method, arg, False

    def render(self, ind):
        return [ind + f"{self.name}.{self.method}({self.arg.render()})" + (";" if self.semi else "")]

    def run(self, st):
        xs = st.vals.get(self.name)
        if not isinstance(xs, list):
            raise Invalid("append to a non-list")
        v = self.arg.ev(st)
        if self.method == "append":
            if not isinstance(v, TV):
                raise Invalid("a list of tensors only")
            xs.append(v)
        else:
            if not isinstance(v, list) or v is xs or not all(isinstance(t, TV) for t in v):
                raise Invalid("extend with a list of tensors")
            xs.extend(v)


class TrainIf(Stmt):
    """if training { ... } else { ... }: both branches run; a name assigned keeps one shape and dtype after."""

    def __init__(self, then, orelse=None):
        self.then, self.orelse = then, orelse

    def render(self, ind):
        return If("training", self.then, self.orelse).render(ind)

    def run(self, st):
        before = dict(st.vals)
        ends = []
        for branch in (self.then, self.orelse or []):
            st.vals = dict(before)  # the children are shared: the compiler builds them in the first branch
            for s in branch:
                if isinstance(s, (Return, MethodStmt)):
                    raise Invalid("return or a growing list in `if training`")
                s.run(st)
            ends.append(st.vals)
        merged = dict(before)
        for name in set(ends[0]) | set(ends[1]):
            a, b = ends[0].get(name, before.get(name)), ends[1].get(name, before.get(name))
            if a is None or b is None:
                merged.pop(name, None)  # a temporary of one branch, gone after it
                continue
            if not (isinstance(a, TV) and isinstance(b, TV) and same_shape(a.shape, b.shape) and a.dtype == b.dtype):
                raise Invalid("another shape in training than in eval")
            merged[name] = a
        st.vals = merged


class TrainTernaryX(X):
    """a if training else b: two tensors of one shape and dtype, or two numbers (which may scale, never size)."""

    prec = 1

    def __init__(self, a, b):
        self.a, self.b = a, b

    def render(self):
        return f"{wrap(self.a, 2)} if training else {wrap(self.b, 1)}"

    def ev(self, st):
        a, b = self.a.ev(st), self.b.ev(st)
        if isinstance(a, TV) and isinstance(b, TV) and same_shape(a.shape, b.shape) and a.dtype == b.dtype:
            return a
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
            return float(a)
        raise Invalid("training chooses between two kinds")


class CmpX(X):
    """t < number: a Bool tensor."""

    prec = 6

    def __init__(self, op, a, b):
        self.op, self.a, self.b = op, a, b

    def render(self):
        return f"{wrap(self.a, 7)} {self.op} {wrap(self.b, 7)}"

    def ev(self, st):
        a, b = self.a.ev(st), self.b.ev(st)
        if not isinstance(a, TV) or isinstance(b, (TV, IntV)) or a.dtype != "float":
            raise Invalid("comparison")
        return TV(a.shape, "bool")


def _bcast_ok(a, b) -> bool:
    try:
        return len(bcast(a, b)) == len(a) and same_shape(bcast(a, b), a)
    except Invalid:
        return False


def generate(rng: random.Random) -> str:
    """A spec meant to be valid, nasty, deterministic for the rng's state."""
    for _ in range(20):
        try:
            return Gen(rng).generate()
        except Invalid:
            continue
    return "model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n}\n"


def case_text(seed: int) -> str:
    return generate(random.Random(seed))


# ====================================================================== the oracle
class TrustFailure(AssertionError):
    """A broken promise: ``stage`` says which, ``detail`` what happened; str() holds the spec."""

    def __init__(self, stage: str, detail: str, text: str):
        self.stage, self.detail, self.text = stage, detail, text
        super().__init__(f"[{stage}] {detail}\n--- spec ---\n{text}")

    @property
    def family(self) -> str:
        return family_of(self.stage, self.detail)


def family_of(stage: str, detail: str) -> str:
    """A failure's family: the stage and the last line of the message, with the specifics taken out."""
    lines = [ln for ln in detail.strip().splitlines() if ln.strip()]
    msg = lines[-1] if lines else ""
    for ln in lines:
        if re.match(r"\w+(Error|Exception|Failure)\b|AssertionError|\w+: ", ln) and not ln.startswith(" "):
            msg = ln
    msg = re.sub(r"\bblock \w+", "block …", msg)
    if stage.startswith("rejected-without") and msg.startswith("SpecError without hint: unexpected"):
        msg = re.sub(r"; expected .*", "", msg)  # a syntax error: the token it stumbled on tells the cause
        return f"{stage}: {re.sub(r'[0-9]+', 'N', msg)[:140]}"
    msg = msg.split("; ")[0]
    msg = re.sub(r"`[^`]*`", "`…`", msg)
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r'"[^"]*"', '"…"', msg)
    msg = re.sub(r"\[[^\]]*\]", "[…]", msg)
    msg = re.sub(r"\(\s*[\d, ]+\)", "(…)", msg)
    msg = re.sub(r"\d+", "N", msg)
    msg = re.sub(r"<modelspec:[^>]*>", "<modelspec>", msg)
    return f"{stage}: {msg[:140]}"


from fuzzing import Timeout, time_limit  # noqa: E402  (one alarm, shared with the fuzzer of bad input)


def _flat(out) -> list:
    """The tensors of a forward result, in order (None entries dropped, as the summary does)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    if out is None:
        return []
    raise TypeError(f"a module returned {type(out).__name__}")


def _equal(a, b) -> bool:
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if a.is_floating_point():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return False


def _tb(limit=-6) -> str:
    return traceback.format_exc(limit=limit).strip()


def check_case(text: str, timeout: int | None = TIMEOUT) -> str:
    """Hold one spec to the promise; "rejected" or "accepted", or a `TrustFailure` whose ``stage`` says which:

    rejected-without-hint / -line / -column, rejected-misplaced: ``check`` (parse_spec, summarize) refused it
    with a SpecError that lacks a hint, a line or a column, or points outside the text; check-crash: it raised
    something else; compile_spec, example_inputs, generate_code: these raised; standalone-build: the printed
    code, executed as a user would, does not build; state_dict-keys / -values, load_state_dict: its state_dict
    differs from the compiled module's (same seed, same weights expected); params: the summary's total (or
    trainable) parameters differ from torch's count; forward, standalone-forward, outputs-differ: the eval-mode
    forward raised, or the two modules' outputs differ (torch.equal, NaN equal to NaN; each forward from one
    seed); forward-train, standalone-forward-train, outputs-differ-train: the same in training mode;
    summary-module / -never-called / -shape: a summary row names no module, or one never called, or an output
    shape the forward hooks did not see; timeout, memory, recursion.
    """
    try:
        with time_limit(timeout):
            return _check(text)
    except TrustFailure:
        raise
    except Timeout as exc:
        raise TrustFailure("timeout", str(exc), text) from None
    except MemoryError:
        raise TrustFailure("memory", "MemoryError", text) from None
    except RecursionError:
        raise TrustFailure("recursion", _tb(-4), text) from None
    finally:
        _forget_generated()


def _forget_generated():
    """Drop the modules compile_spec registered (sys.modules, linecache): a long run would keep every one."""
    import linecache
    import sys

    for k in [k for k in sys.modules if k.startswith("modelspec_generated_")]:
        del sys.modules[k]
    for k in [k for k in linecache.cache if isinstance(k, str) and k.startswith("<modelspec:")]:
        del linecache.cache[k]


def _check(text: str) -> str:
    import torch

    from modelspec import SpecError, compile_spec, example_inputs, generate_code, parse_spec, summarize

    # 1. the check path, without torch: every problem is a located SpecError with a hint
    try:
        parse_spec(text)
        summ = summarize(text, batch=2)
    except SpecError as err:
        missing = [w for w in ("line", "column") if getattr(err, w, None) is None]
        if missing or not (err.hint or "").strip():
            what = ", ".join(missing + ([] if (err.hint or "").strip() else ["hint"]))
            raise TrustFailure("rejected-without-" + what.replace(", ", "-"),
                               f"SpecError without {what}: {err.message}", text) from None
        lines = text.split("\n")
        if not 1 <= err.line <= len(lines) or not 1 <= err.column <= len(lines[err.line - 1]) + 1:
            raise TrustFailure("rejected-misplaced", f"SpecError at {err.line}:{err.column}, outside the spec: "
                                                     f"{err.message}", text) from None
        return "rejected"
    except Exception:
        raise TrustFailure("check-crash", _tb(), text) from None

    # 2. it builds, its inputs exist, its code prints
    try:
        model = compile_spec(text, seed=0)
    except Exception:
        raise TrustFailure("compile_spec", _tb(), text) from None
    try:
        inputs = example_inputs(text, batch=2)
    except Exception:
        raise TrustFailure("example_inputs", _tb(), text) from None
    try:
        code = generate_code(text)
    except Exception:
        raise TrustFailure("generate_code", _tb(), text) from None

    # 3. the printed code, standalone, as a user who copies it: same weights, same state_dict
    ns = {"__name__": "standalone_spec"}
    try:
        exec(compile(code, "<printed code>", "exec"), ns)  # noqa: S102 - the code under test
        torch.manual_seed(0)
        twin = ns[summ.name]()
    except Exception:
        raise TrustFailure("standalone-build", _tb() + "\n--- printed code ---\n" + code, text) from None
    sd, sd2 = model.state_dict(), twin.state_dict()
    if list(sd) != list(sd2):
        raise TrustFailure("state_dict-keys", f"compiled {sorted(set(sd) - set(sd2))} vs printed "
                                              f"{sorted(set(sd2) - set(sd))}", text)
    for k in sd:
        if sd[k].shape != sd2[k].shape or not _equal(sd[k], sd2[k]):
            raise TrustFailure("state_dict-values", f"{k}: {tuple(sd[k].shape)} vs {tuple(sd2[k].shape)}", text)
    try:
        twin.load_state_dict(sd, strict=True)
    except Exception:
        raise TrustFailure("load_state_dict", _tb(), text) from None

    # 4. parameters: the summary's total is what torch counts
    n = sum(p.numel() for p in model.parameters())
    nt = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if summ.total_params != n or summ.trainable_params != nt:
        raise TrustFailure("params", f"summary says {summ.total_params} ({summ.trainable_params} trainable), "
                                     f"torch counts {n} ({nt})", text)

    # 5. the same outputs in eval mode, then in training mode (`if training` branches, dropout_p chosen by the
    # mode), each forward of the two from one seed (torch.rand, dropout); forward hooks on the compiled module
    # see every module's output shapes, in either mode (a child called only in eval, or only in training)
    seen: dict[str, list] = {}
    mods = dict(model.named_modules())

    def hook(name):
        def fn(mod, args, out):
            seen.setdefault(name, []).append([list(t.shape) for t in _flat(out)])
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in mods.items()]
    # the twin's modules get hooks too: TransformerEncoderLayer skips its fast path when hooks are attached,
    # and the two paths round differently
    handles += [m.register_forward_hook(lambda *_: None) for m in twin.modules()]
    try:
        for train, seed, suffix in ((False, 1, ""), (True, 2, "-train")):
            model.train(train)
            twin.train(train)
            with torch.no_grad():
                try:
                    torch.manual_seed(seed)
                    out1 = _flat(model(*[t.clone() for t in inputs]))
                except Exception:
                    raise TrustFailure("forward" + suffix, _tb(), text) from None
                try:
                    torch.manual_seed(seed)
                    out2 = _flat(twin(*[t.clone() for t in inputs]))
                except Exception:
                    raise TrustFailure("standalone-forward" + suffix, _tb(), text) from None
            if len(out1) != len(out2) or not all(_equal(a, b) for a, b in zip(out1, out2)):
                raise TrustFailure("outputs-differ" + suffix, f"compiled {[tuple(t.shape) for t in out1]} vs "
                                                              f"printed {[tuple(t.shape) for t in out2]}", text)
    finally:
        for h in handles:
            h.remove()

    # 6. every module's output shape, seen by the hooks, is the summary's
    wrong = []
    for row in summ.rows:
        if row.path not in mods:
            raise TrustFailure("summary-module", f"the summary lists `{row.path}`, which the module does not have",
                               text)
        if not row.output or not row.output_sizes or any(d is None for s in row.output_sizes for d in s):
            continue
        calls = seen.get(row.path)
        if not calls:
            raise TrustFailure("summary-never-called", f"{row.type_name} `{row.path}`: the summary says "
                                                       f"{row.output} but forward never called it", text)
        if row.output_sizes not in calls:
            wrong.append((row.kind != "layer", row))
    if wrong:  # the innermost layer that is wrong names the family; the containers around it follow
        wrong.sort(key=lambda w: w[0])
        detail = "; ".join(f"{r.type_name} `{r.path}`: summary {r.output_sizes} but forward hooks saw "
                           f"{seen[r.path][:2]}" for _, r in wrong[:3])
        raise TrustFailure("summary-shape", detail, text)
    return "accepted"


def failure_of(text: str, timeout: int | None = TIMEOUT):
    """The TrustFailure of a spec, or None."""
    try:
        check_case(text, timeout)
    except TrustFailure as f:
        return f
    return None


# ====================================================================== the shrinker
def _matching(lines, i):
    """The index of the line closing the brace that line i opens, or None."""
    depth = 0
    for j in range(i, len(lines)):
        depth += lines[j].count("{") - lines[j].count("}")
        if depth <= 0 and j > i or depth == 0 and j == i and "{" in lines[i]:
            return j if j > i else None
    return None


def _split_args(s: str):
    """Top-level comma positions of an argument list text."""
    depth, parts, cur, q = 0, [], "", None
    for ch in s:
        if q:
            cur += ch
            if ch == q:
                q = None
            continue
        if ch in "\"'":
            q = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _calls(line: str):
    """(start of args, end of args) of every parenthesised argument list in a line."""
    out, stack, q = [], [], None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
            continue
        if ch in "\"'":
            q = ch
        elif ch == "(" or ch == "[":
            stack.append(i)
        elif (ch == ")" or ch == "]") and stack:
            out.append((stack.pop() + 1, i))
    return out


def _remove_child(text: str, name: str) -> str | None:
    """The spec without child ``name``: its line deleted, each call of it replaced by its first argument."""
    lines = text.split("\n")
    decl = [i for i, ln in enumerate(lines) if re.match(rf"\s+{re.escape(name)} = ", ln)
            and not ln.rstrip().endswith("{")]
    if not decl:
        return None
    del lines[decl[0]]
    out = []
    pat = re.compile(rf"(?<![\w.]){re.escape(name)}(\[[^\]]*\])?\(")
    for ln in lines:
        for _ in range(10):
            m = pat.search(ln)
            if not m:
                break
            depth, j = 1, m.end()
            while j < len(ln) and depth:
                depth += {"(": 1, ")": -1}.get(ln[j], 0)
                j += 1
            args = _split_args(ln[m.end():j - 1])
            first = args[0].strip() if args and args[0].strip() else None
            if first is None or "=" in first:
                ln = None
                break
            ln = ln[:m.start()] + first + ln[j:]
        if ln is not None:
            out.append(ln)
    return "\n".join(out)


def shrink(text: str, predicate, max_checks: int = 400) -> str:
    """A smaller spec for which ``predicate`` still holds: statements, blocks, children, arguments removed."""
    checks = [0]

    def ok(t):
        if checks[0] >= max_checks or t == text:
            return False
        checks[0] += 1
        try:
            return bool(predicate(t))
        except Exception:
            return False

    cur = text
    changed = True
    while changed and checks[0] < max_checks:
        changed = False
        # 0. a model input, from the signature and the forward's parameters at once
        for m in list(re.finditer(r"(\w+): (Long|Float|Bool)?\[[^\]]*\]", cur)):
            name = m.group(1)
            t = cur.replace(m.group(0) + ", ", "", 1) if m.group(0) + ", " in cur else \
                cur.replace(", " + m.group(0), "", 1)
            t = re.sub(r"forward\(([^)]*)\)", lambda f: "forward(" + ", ".join(
                a for a in f.group(1).split(", ") if a != name) + ")", t)
            if t != cur and ok(t):
                cur, changed = t, True
                break
        # 0b. a child, with its calls
        for m in list(re.finditer(r"^\s+(\w+) = (?!.*\{\s*$)", cur, re.M)):
            t = _remove_child(cur, m.group(1))
            if t and t != cur and ok(t):
                cur, changed = t, True
        lines = cur.split("\n")
        # 1. brace regions (blocks, if, for, forward) and single lines, from the bottom up
        for i in range(len(lines) - 1, -1, -1):
            if i >= len(lines):
                continue
            j = _matching(lines, i) if "{" in lines[i] else None
            cands = []
            if j is not None:
                cands.append(lines[:i] + lines[j + 1:])
                if not lines[i].lstrip().startswith(("model", "block", "forward")):
                    cands.append(lines[:i] + lines[i + 1:j] + lines[j + 1:])  # unwrap an if / for
            elif "}" not in lines[i]:
                cands.append(lines[:i] + lines[i + 1:])
            for cand in cands:
                t = "\n".join(cand)
                if ok(t):
                    cur, lines, changed = t, cand, True
                    break
        # 2. within lines: drop arguments, unwrap calls, simplify numbers
        lines = cur.split("\n")
        for i in range(len(lines)):
            progress = True
            while progress and checks[0] < max_checks:
                progress = False
                line = lines[i]
                if re.match(r"\s*(model|block|forward)\b", line):
                    break  # headers: inputs go by pass 0
                cands = []
                for a, b in _calls(line):
                    parts = _split_args(line[a:b])
                    if len(parts) > 1:
                        for k in range(len(parts)):
                            rest = ",".join(parts[:k] + parts[k + 1:]).strip()
                            cands.append(line[:a] + rest + line[b:])
                    # unwrap f(g) -> g, keeping the name before the call
                    m = re.search(r"([\w.]+(\[[^\]]*\])?)$", line[:a - 1])
                    if m and len(parts) == 1 and line[a - 1] == "(" and parts[0].strip():
                        cands.append(line[:m.start()] + parts[0].strip() + line[b + 1:])
                for m in re.finditer(r"(?<![\w.])(\d+)(?![\w.])", line):
                    v = int(m.group(1))
                    for w in (1, 2, 4, 8):
                        if w < v:
                            cands.append(line[:m.start()] + str(w) + line[m.end():])
                for cand in cands:
                    t = "\n".join(lines[:i] + [cand] + lines[i + 1:])
                    if ok(t):
                        lines[i] = cand
                        cur, changed, progress = t, True, True
                        break
    # tidy blank lines
    return re.sub(r"\n{3,}", "\n\n", cur)


def same_family(fam: str, timeout: int | None = TIMEOUT):
    def pred(t):
        f = failure_of(t, timeout)
        return f is not None and f.family == fam

    return pred


def run_seeds(seeds, *, on_case=None):
    """Check the cases of ``seeds``: (accepted, rejected, failures as (seed, TrustFailure))."""
    acc = rej = 0
    failures = []
    for seed in seeds:
        text = case_text(seed)
        try:
            r = check_case(text)
        except TrustFailure as f:
            failures.append((seed, f))
            r = "failed"
        else:
            if r == "accepted":
                acc += 1
            else:
                rej += 1
        if on_case is not None:
            on_case(seed, text, r)
    return acc, rej, failures
