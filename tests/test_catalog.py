"""The layer catalog held against torch itself.

Each catalog entry claims to know a torch.nn class: its constructor signature,
its output shape, its parameter count and which arguments follow from the
input. These tests check every claim against torch, for many generated
configurations per entry, with torch as the referee:

* torch builds the module (on the ``meta`` device where the constructor takes
  one) and runs it on a ``meta`` input; where torch and the catalog disagree on
  *whether* a configuration is valid, the forward is repeated on real CPU
  tensors (meta kernels skip some checks, or lack a kernel), and that decides;
* a configuration torch rejects must be rejected by ``infer_shape`` with one of
  the catalog's own errors, and one the catalog rejects must fail in torch;
* where both accept, output shapes and parameter counts must agree.

Five kinds of torch acceptance count as rejections, because the catalog refuses
them on purpose: an output with an empty dim (ConvTranspose2d/3d return one
where ConvTranspose1d and every other layer raise), inputs torch calls
deprecated (Dropout2d on a 2-d input), a padding tuple of another length than
its class is for (`torch_pads_other_dims`), a stride or padding tuple longer
than MaxUnpool1d/2d's, of which torch reads the first items
(`torch_reads_a_prefix`), and circular padding whose copies overlap where torch
cannot see it (`torch_misses_overlap`). And where torch never reads an argument
(BatchNorm's num_features without weights or running statistics) the catalog
may still insist that it matches the input: see
`torch_ignores`; likewise where torch skips its own rank check
(`torch_shortcut`). Where an input holds indices (Embedding's, EmbeddingBag's
and its offsets, the MaxPool indices MaxUnpool takes), the zeros it gets are
long, and valid ones.

`test_every_torch_module_is_in_the_catalog_or_said_why_not` walks torch.nn's
module classes: each is an entry (the losses are, held in tests/test_catalog_loss.py), or in `NOT_LAYERS` (or a
Lazy module) with why.

Modules run in eval mode: shape rules are mode-free, and eval mode is where
torch checks least (checks that hold in both modes, like InstanceNorm's
"more than 1 spatial element", still apply). The layers that check their input
in training alone run in training too: the norms, and FeatureAlphaDropout,
which draws its noise per channel.

`REGRESSIONS` pins the configurations that found the catalog's past bugs.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import random
import re
import warnings
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from test_catalog_seq import bind_call_args
from torch import nn

from modelspec.layers import CATALOG
from modelspec.layers.base import INFER, REQUIRED, ArgError, InferMismatch, ShapeProblem, _unwrap_result, bind
from modelspec.layers.pool import Unpooling
from modelspec.layers.upsample import INTERPOLATING, MODES
from modelspec.shapes import Val
from modelspec.values import CONTAINERS

# RNN, LSTM, GRU and the attention layers (several inputs, tuple outputs): tests/test_catalog_seq.py; the losses
# (targets of their own dtypes): tests/test_catalog_loss.py
NAMES = sorted(n for n, layer in CATALOG.items() if layer.family not in ("recurrent", "transformer", "loss"))
CATALOG_ERRORS = (ArgError, InferMismatch, ShapeProblem)
CONFIGS_PER_LAYER = 60
# another seed draws other configurations: CATALOG_TEST_SEED=x pytest tests/test_catalog.py
SEED = os.environ.get("CATALOG_TEST_SEED", "modelspec-catalog")

# torch warns, rather than raises, for these inputs and calls them deprecated
# ("will result in an error in a future release"); the catalog rejects them
# already, so the warning counts as torch's rejection.
DEPRECATED_INPUT = re.compile(r"Received a \d+-D input to dropout\dd, which is deprecated")


# ---------------------------------------------------------------- 1. signatures
def torch_signature(name: str) -> list[tuple]:
    """(name, default, keyword-only) of the constructor arguments a spec may give."""
    params = inspect.signature(getattr(nn, name).__init__).parameters.values()
    out = []
    for p in params:
        if p.name in ("self", "device", "dtype") or p.name.startswith("_"):
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue  # Identity(*args, **kwargs), Sigmoid: nothing a spec can pass
        default = REQUIRED if p.default is p.empty else p.default
        out.append((p.name, default, p.kind == p.KEYWORD_ONLY))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torch(name):
    layer = CATALOG[name]
    assert layer.name == name and hasattr(nn, name)
    ours = [(a.name, a.default, a.kw_only) for a in layer.args]
    theirs = torch_signature(name)
    assert [n for n, _, _ in ours] == [n for n, _, _ in theirs], "argument names or order"
    for (n, d1, k1), (_, d2, k2) in zip(ours, theirs):
        assert d1 is d2 if REQUIRED in (d1, d2) else (d1 == d2 and type(d1) is type(d2)), f"default of {n}"
        assert k1 == k2, f"keyword-only-ness of {n}"


def test_catalog_knows_no_layer_twice():
    assert len(NAMES) == len({n.lower() for n in NAMES})


# torch.nn's module classes that are not catalog entries, each with why. The Lazy modules are a
# family, told by its name prefix; every other module class torch.nn exports is an entry.
NOT_LAYERS = {
    "Module": "the base class of every module: a spec's model or block is one",
    **{name: "a container, which the spec language writes itself: Sequential(...), ModuleList([...]), "
             "ModuleDict({...})" for name in CONTAINERS},
    "ParameterList": "a container of parameters, with no forward: a spec declares each, param W: [3, 2] = randn",
    "ParameterDict": "a container of parameters, with no forward: a spec declares each, param W: [3, 2] = randn",
    "Container": "torch's deprecated container, with no forward",
    "RNNBase": "the base class of RNN, LSTM and GRU (given its mode by them), whose forward is not implemented",
    "RNNCellBase": "the base class of RNNCell, LSTMCell and GRUCell, whose forward is not implemented",
    "AdaptiveLogSoftmaxWithLoss": "a loss: forward takes the target and returns (output, loss), a training feature "
                                  "to come",
    "TripletMarginWithDistanceLoss": "a loss whose distance_function is a Python callable, which a spec cannot give; "
                                     "TripletMarginLoss is the same with a p-norm",
    "NLLLoss2d": "torch's deprecated NLLLoss of 4-d inputs, which NLLLoss takes itself",
    "LinearCrossEntropyLoss": "a Linear layer and CrossEntropyLoss fused for memory, with an options object: a spec "
                              "writes Linear(...) and CrossEntropyLoss() as two children",
}
LAZY = "sized at its first call; a spec infers sizes with _ instead: Conv2d(_, 64, 3) for LazyConv2d(64, 3)"


def torch_module_classes() -> dict:
    """Every class in torch.nn.modules that subclasses nn.Module and torch.nn exports, by name."""
    return {name: cls for name, cls in vars(nn).items() if inspect.isclass(cls) and issubclass(cls, nn.Module)
            and cls.__module__.startswith("torch.nn.modules.")}


def why_not_a_layer(name: str, cls) -> str | None:
    if name in NOT_LAYERS:
        return NOT_LAYERS[name]
    return LAZY if name.startswith("Lazy") else None


def test_every_torch_module_is_in_the_catalog_or_said_why_not():
    classes = torch_module_classes()
    assert {"Conv2d", "Transformer", "LazyLinear", "MSELoss", "Sequential"} <= set(classes)  # the walk sees them
    missing = sorted(n for n, cls in classes.items() if n not in CATALOG and why_not_a_layer(n, cls) is None)
    assert not missing, f"torch.nn modules neither in the catalog nor in NOT_LAYERS, with why: {missing}"
    both = sorted(n for n, cls in classes.items() if n in CATALOG and why_not_a_layer(n, cls) is not None)
    assert not both, f"catalog entries said not to be layers: {both}"
    stale = sorted(set(NOT_LAYERS) - set(classes))
    assert not stale, f"NOT_LAYERS names what torch.nn does not export: {stale}"
    not_torch = sorted(set(CATALOG) - set(classes))
    assert not not_torch, f"catalog entries torch.nn does not export: {not_torch}"
    assert {"MSELoss", "CrossEntropyLoss", "CTCLoss"} <= set(CATALOG), "the losses are entries"
    excluded = [n for n, cls in classes.items() if why_not_a_layer(n, cls) not in (None, LAZY)]
    assert len(excluded) <= 14, f"the list of exceptions should stay short: {sorted(excluded)}"


def test_call_args_match_forward():
    """Forward's keyword arguments an entry binds (MaxUnpool's output_size) are forward's, named and defaulted as
    torch does; MultiheadAttention's are held in tests/test_catalog_seq.py."""
    with_call = {name for name in NAMES if CATALOG[name].call_args}
    assert with_call == {"MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"}
    for name in sorted(with_call):
        forward = inspect.signature(getattr(nn, name).forward).parameters
        for a in CATALOG[name].call_args:
            assert a.name in forward and forward[a.name].default == a.default, f"{name}: {a.name}"


# ---------------------------------------------------------------- configurations
@dataclass
class Case:
    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    inputs: tuple = ()  # plain int shapes
    call: dict = field(default_factory=dict)  # forward's keyword arguments (MaxUnpool's output_size)

    def __str__(self):
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        call = "".join(f", {k}={v!r}" for k, v in self.call.items())
        return f"{self.name}({', '.join(parts)}) on {', '.join(str(list(s)) for s in self.inputs)}{call}"

    def values(self) -> dict:
        """Every argument given, by name."""
        positional = [a.name for a in CATALOG[self.name].args if not a.kw_only]
        return {**dict(zip(positional, self.args)), **self.kwargs}


def make_case(r: random.Random, name: str, values: dict, *inputs, call=None) -> Case:
    """Pass a random leading run of ``values`` by position, the rest by keyword."""
    prefix = []
    for a in CATALOG[name].args:
        if a.kw_only or a.name not in values:
            break
        prefix.append(a.name)
    k = r.randint(0, len(prefix))
    args = tuple(values[n] for n in prefix[:k])
    kwargs = {n: v for n, v in values.items() if n not in prefix[:k]}
    return Case(name, args, kwargs, tuple(tuple(s) for s in inputs), dict(call or {}))


def maybe(r, values: dict, key: str, value, p: float = 0.6):
    """Give an optional argument only sometimes, so defaults get exercised too."""
    if r.random() < p:
        values[key] = value


def dims(r, n, lo=1, hi=6):
    return tuple(r.randint(lo, hi) for _ in range(n))


def size_arg(r, n, choices):
    """An int, or a tuple of n ints (the form kernel_size, stride... take);
    now and then a tuple of n + 1, which both sides must refuse."""
    if r.random() < 0.03:
        return tuple(r.choice(choices) for _ in range(n + 1))
    if n == 1 and r.random() < 0.3:
        return (r.choice(choices),)
    return r.choice(choices) if r.random() < 0.5 else tuple(r.choice(choices) for _ in range(n))


def off_by(r, v, p):
    """Usually ``v``; sometimes a neighbouring value the layer does not expect."""
    return v + r.choice([-1, 1, 2]) if r.random() < p and v > 1 else v + 1 if r.random() < p / 2 else v


def channels_input(r, n, c, spatial_hi, rank_slip=0.06):
    """[B, C, *spatial] or unbatched [C, *spatial], occasionally of a wrong rank."""
    spatial = dims(r, n, 1, spatial_hi)
    shape = ((r.randint(1, 3),) if r.random() < 0.7 else ()) + (c, *spatial)
    if r.random() < rank_slip:
        shape = shape[1:] if r.random() < 0.5 else (2, *shape)
    return shape


# -- linear family
def gen_linear(r):
    fin, fout = r.randint(1, 8), r.randint(1, 8)
    v = {"in_features": fin, "out_features": fout}
    maybe(r, v, "bias", r.random() < 0.5)
    shape = (*dims(r, r.randint(0, 3)), off_by(r, fin, 0.1)) if r.random() > 0.05 else ()
    return make_case(r, "Linear", v, shape)


def gen_bilinear(r):
    f1, f2, fout = r.randint(1, 5), r.randint(1, 5), r.randint(1, 5)
    v = {"in1_features": f1, "in2_features": f2, "out_features": fout}
    maybe(r, v, "bias", r.random() < 0.5)
    lead = dims(r, r.randint(0, 2))
    lead2 = lead if r.random() < 0.85 else dims(r, r.randint(0, 2))
    return make_case(r, "Bilinear", v, (*lead, off_by(r, f1, 0.08)), (*lead2, off_by(r, f2, 0.08)))


def gen_identity(r):
    return make_case(r, "Identity", {}, dims(r, r.randint(0, 4)))


def gen_flatten(r):
    rank = r.randint(0, 5)
    v = {}
    maybe(r, v, "start_dim", r.randint(-rank - 1, rank))
    maybe(r, v, "end_dim", r.randint(-rank - 1, rank))
    return make_case(r, "Flatten", v, dims(r, rank))


def gen_unflatten(r):
    rank = r.choice([0, 1, 2, 2, 3, 3, 4])
    shape = dims(r, rank, 1, 12)
    d = r.randint(-rank - 1, rank)
    total = shape[d] if -rank <= d < rank else r.randint(1, 12)
    sizes = factorise(r, total)
    roll = r.random()
    if roll < 0.35:
        sizes[r.randrange(len(sizes))] = -1  # the size torch infers
    elif roll < 0.45:
        sizes.append(r.choice([2, 3]))  # no longer multiplies to the dim
    elif roll < 0.5:
        sizes = [-1, -1] + sizes[:1]  # two unknowns
    elif roll < 0.55:
        sizes = [-1, total + 1]  # -1 cannot be found
    if r.random() < 0.3:
        sizes = list(sizes)
    else:
        sizes = tuple(sizes)
    return make_case(r, "Unflatten", {"dim": d, "unflattened_size": sizes}, shape)


def factorise(r, total):
    out = []
    while total > 1 and r.random() < 0.8:
        divisors = [f for f in range(2, total + 1) if total % f == 0]
        f = r.choice(divisors)
        out.append(f)
        total //= f
    out.append(total)
    r.shuffle(out)
    return out


# -- convolutions
def gen_conv(n):
    name = f"Conv{n}d"

    def gen(r):
        g = r.choice([1, 1, 1, 2, 3])
        cin, cout = g * r.randint(1, 3), g * r.randint(1, 3)
        if r.random() < 0.06:
            cin += 1  # groups no longer divides in_channels
        v = {"in_channels": cin, "out_channels": cout, "kernel_size": size_arg(r, n, [1, 1, 2, 3, 4])}
        maybe(r, v, "stride", size_arg(r, n, [1, 1, 1, 2, 3]))
        maybe(r, v, "padding", r.choice(["same", "same", "valid", "valid", size_arg(r, n, [0, 1, 2, 3])]))
        maybe(r, v, "dilation", size_arg(r, n, [1, 1, 2, 3]))
        maybe(r, v, "groups", g, 1.0 if g > 1 else 0.3)
        maybe(r, v, "bias", r.random() < 0.5)
        maybe(r, v, "padding_mode", r.choice(["zeros", "reflect", "replicate", "circular"]), 0.4)
        spatial_hi = {1: 12, 2: 9, 3: 7}[n]
        return make_case(r, name, v, channels_input(r, n, off_by(r, cin, 0.05), spatial_hi))

    return gen


def gen_conv_transpose(n):
    name = f"ConvTranspose{n}d"

    def gen(r):
        g = r.choice([1, 1, 1, 2, 3])
        cin, cout = g * r.randint(1, 3), g * r.randint(1, 3)
        if r.random() < 0.05:
            cout += 1  # groups no longer divides out_channels
        v = {"in_channels": cin, "out_channels": cout, "kernel_size": size_arg(r, n, [1, 2, 3, 4])}
        maybe(r, v, "stride", size_arg(r, n, [1, 1, 2, 3]))
        maybe(r, v, "padding", size_arg(r, n, [0, 0, 1, 2, 3]) if r.random() > 0.04 else "same")
        maybe(r, v, "groups", g, 1.0 if g > 1 else 0.3)
        maybe(r, v, "bias", r.random() < 0.5)
        maybe(r, v, "dilation", size_arg(r, n, [1, 1, 2, 3]))
        if r.random() < 0.5:
            # torch wants output_padding below stride or dilation; mostly keep to that
            maybe(r, v, "stride", r.choice([2, 3]), 0.5)
            s, d = (_as_tuple(v.get(k, 1)) * n for k in ("stride", "dilation"))
            fits = tuple(r.randint(0, max(s[i], d[i]) - 1) for i in range(n))
            v["output_padding"] = r.choice([fits, fits, fits[0], size_arg(r, n, [0, 1, 2])])
        maybe(r, v, "padding_mode", "zeros" if r.random() > 0.1 else "reflect", 0.2)
        spatial_hi = {1: 8, 2: 6, 3: 4}[n]
        return make_case(r, name, v, channels_input(r, n, off_by(r, cin, 0.05), spatial_hi))

    return gen


# -- pooling
def pool_padding(r, n, kernel_size):
    """Mostly at most half the kernel, as torch requires; sometimes any."""
    if r.random() < 0.25:
        return size_arg(r, n, [0, 1, 2])
    k = _as_tuple(kernel_size) * n
    return tuple(r.randint(0, k[i] // 2) for i in range(n)) if r.random() < 0.6 else r.randint(0, min(k) // 2)


def gen_max_pool(n):
    name = f"MaxPool{n}d"

    def gen(r):
        v = {"kernel_size": size_arg(r, n, [1, 2, 2, 3, 4])}
        maybe(r, v, "stride", r.choice([None, size_arg(r, n, [1, 2, 3])]))
        maybe(r, v, "padding", pool_padding(r, n, v["kernel_size"]))
        maybe(r, v, "dilation", size_arg(r, n, [1, 1, 2, 3]))
        maybe(r, v, "return_indices", r.random() < 0.5)
        maybe(r, v, "ceil_mode", r.random() < 0.5)
        return make_case(r, name, v, channels_input(r, n, r.randint(1, 3), {1: 10, 2: 8, 3: 8}[n]))

    return gen


def gen_avg_pool(n):
    name = f"AvgPool{n}d"

    def gen(r):
        v = {"kernel_size": size_arg(r, n, [1, 2, 2, 3, 4])}
        maybe(r, v, "stride", r.choice([None, size_arg(r, n, [1, 2, 3])]))
        maybe(r, v, "padding", pool_padding(r, n, v["kernel_size"]))
        maybe(r, v, "ceil_mode", r.random() < 0.5)
        maybe(r, v, "count_include_pad", r.random() < 0.5)
        if n > 1:
            maybe(r, v, "divisor_override", r.choice([None, 1, 2, 5]), 0.3)
        return make_case(r, name, v, channels_input(r, n, r.randint(1, 3), {1: 10, 2: 8, 3: 8}[n]))

    return gen


def gen_adaptive(kind, n):
    name = f"Adaptive{kind}Pool{n}d"

    def gen(r):
        if r.random() < 0.4:
            out = r.randint(1, 7)
        else:
            out = tuple(None if r.random() < 0.25 else r.randint(1, 7) for _ in range(n))
        v = {"output_size": out}
        if kind == "Max":
            maybe(r, v, "return_indices", r.random() < 0.5)
        return make_case(r, name, v, channels_input(r, n, r.randint(1, 3), 6))

    return gen


def gen_lp_pool(n):
    name = f"LPPool{n}d"

    def gen(r):
        v = {"norm_type": r.choice([1, 2, 2.0, 3, 1.5, -1, -1.0]), "kernel_size": size_arg(r, n, [1, 2, 2, 3])}
        if n == 1 and r.random() < 0.6:
            v["kernel_size"] = r.choice([1, 2, 2, 3])  # a tuple of 1, which torch refuses, less often
        maybe(r, v, "stride", r.choice([None, size_arg(r, n, [1, 2, 3])]))
        maybe(r, v, "ceil_mode", r.random() < 0.5)
        return make_case(r, name, v, channels_input(r, n, r.randint(1, 3), {1: 8, 2: 6, 3: 5}[n]))

    return gen


def gen_fractional(n):
    name = f"FractionalMaxPool{n}d"

    def gen(r):
        v = {"kernel_size": size_arg(r, n, [1, 2, 2, 3] if n == 2 else [1, 2, 2])}
        roll = r.random()
        if roll < 0.45:
            v["output_size"] = size_arg(r, n, [1, 2, 3, 4] if n == 2 else [1, 1, 2, 2, 3])
        elif roll < 0.92:
            ratios = [0.5, 0.7, 0.3, 0.9, 0.25] if r.random() > 0.05 else [1.0, 0.0, 1.5]
            v["output_ratio"] = r.choice(ratios) if r.random() < 0.5 else tuple(r.choice(ratios) for _ in range(n))
        elif roll < 0.96:
            v.update(output_size=2, output_ratio=0.5)  # both
        maybe(r, v, "return_indices", r.random() < 0.5)
        x = channels_input(r, n, r.randint(1, 3), 7)
        if r.random() < 0.6:  # sizes the windows mostly fit in (the 3-d kernel needs a position more)
            x = (*x[: len(x) - n], *dims(r, n, 3, 7))
        return make_case(r, name, v, x)

    return gen


def gen_max_unpool(n):
    """The output of a MaxPool of the same arguments, and its indices; forward's output_size now and then, mostly
    in the range torch takes (the MaxPool's input sizes), spelled for the spatial dims or with batch and channels.
    A stride of 0 and a negative padding, which torch takes and no MaxPool gives, are refused, and not drawn."""
    name = f"MaxUnpool{n}d"

    def gen(r):
        v = {"kernel_size": size_arg(r, n, [1, 2, 2, 3])}
        maybe(r, v, "stride", r.choice([None, size_arg(r, n, [1, 2, 3])]))
        maybe(r, v, "padding", size_arg(r, n, [0, 0, 1]), 0.4)
        x = channels_input(r, n, r.randint(1, 3), 4)
        indices = x if r.random() > 0.08 else (*x[:-1], x[-1] + 1)
        call = {}
        each = {k: per_dim(v[k] if v.get(k) is not None else d, n)
                for k, d in (("kernel_size", 0), ("stride", v["kernel_size"]), ("padding", 0))}
        if r.random() < 0.5 and len(x) >= n and all(len(t) == n for t in each.values()):
            sizes = []
            for i in range(n):
                k, s, p = each["kernel_size"][i], each["stride"][i], each["padding"][i]
                default = (x[len(x) - n + i] - 1) * s - 2 * p + k
                sizes.append(default + (r.randint(1 - s, s - 1) if r.random() > 0.1 else r.choice([-s, s])))
            full = r.random() < 0.5
            size = (*x[: len(x) - n], *sizes) if full and len(x) == n + 2 else tuple(sizes)
            call["output_size"] = size if r.random() > 0.04 else (1, *size)  # of a length torch refuses
            if r.random() < 0.3:
                call["output_size"] = list(call["output_size"])
        return make_case(r, name, v, x, indices, call=call)

    return gen


# -- normalisation
def norm_flags(r, v, affine_default):
    maybe(r, v, "eps", r.choice([1e-5, 1e-3, 0.1]), 0.2)
    maybe(r, v, "momentum", r.choice([None, 0.1, 0.5]), 0.3)
    maybe(r, v, "affine", r.random() < (0.7 if affine_default else 0.4))
    maybe(r, v, "track_running_stats", r.random() < 0.5)
    maybe(r, v, "bias", r.random() < 0.6, 0.3)


def gen_batch_norm(n):
    name = f"BatchNorm{n}d"

    def gen(r):
        c = r.randint(1, 4)
        v = {"num_features": c}
        norm_flags(r, v, True)
        rank = r.choice({1: [1, 2, 2, 3, 3, 4], 2: [3, 4, 4, 4, 5], 3: [4, 5, 5, 5, 6]}[n])
        hi = 2 if r.random() < 0.4 else 4  # small sizes: one value per channel is a case
        shape = (r.randint(1, hi), off_by(r, c, 0.08), *dims(r, rank - 2, 1, hi))[:rank]
        return make_case(r, name, v, shape)

    return gen


def gen_instance_norm(n):
    name = f"InstanceNorm{n}d"

    def gen(r):
        c = r.randint(1, 4)
        v = {"num_features": c}
        norm_flags(r, v, False)
        hi = 2 if r.random() < 0.5 else 4
        shape = channels_input(r, n, off_by(r, c, 0.08), hi, rank_slip=0.08)
        return make_case(r, name, v, shape)

    return gen


def gen_trailing_norm(name):
    """LayerNorm and RMSNorm: normalized_shape, the trailing dims of the input (now and then not)."""

    def gen(r):
        rank = r.randint(1, 4)
        shape = dims(r, rank, 1, 5)
        k = r.randint(1, rank)
        ns = list(shape[rank - k :])
        if r.random() < 0.1:
            ns[r.randrange(k)] += 1  # does not match the input
        if r.random() < 0.05:
            ns = [r.randint(1, 3)] + list(shape)  # longer than the input
        if r.random() < 0.03:
            ns = []  # names no dim
        v = {"normalized_shape": ns[0] if len(ns) == 1 and r.random() < 0.5 else r.choice([tuple(ns), list(ns)])}
        if name == "LayerNorm":
            maybe(r, v, "eps", r.choice([1e-5, 1e-3]), 0.2)
            maybe(r, v, "bias", r.random() < 0.6)
        else:
            maybe(r, v, "eps", r.choice([None, 1e-6, 1e-3, -1.0]), 0.3)
        maybe(r, v, "elementwise_affine", r.random() < 0.7)
        return make_case(r, name, v, shape)

    return gen


def gen_local_response(name):
    """LocalResponseNorm takes [B, C, *] of 3 dims or more, CrossMapLRN2d 4 dims alone."""

    def gen(r):
        v = {"size": r.choice([1, 2, 3, 5]) if r.random() > 0.04 else 0}
        maybe(r, v, "alpha", r.choice([1e-4, 0.5, 1]), 0.3)
        maybe(r, v, "beta", r.choice([0.75, 1.0, 2]), 0.3)
        maybe(r, v, "k", r.choice([1.0, 2, 0.5]), 0.3)
        rank = r.choice([2, 3, 4, 4, 5]) if name == "LocalResponseNorm" else r.choice([3, 4, 4, 4, 5])
        return make_case(r, name, v, dims(r, rank, 1, 4))

    return gen


def gen_sync_batch_norm(r):
    c = r.randint(1, 4)
    v = {"num_features": c}
    norm_flags(r, v, True)
    maybe(r, v, "process_group", None, 0.1)
    rank = r.choice([1, 2, 2, 3, 4, 5])
    hi = 2 if r.random() < 0.4 else 3  # one value per channel is a case
    shape = (r.randint(1, hi), off_by(r, c, 0.08), *dims(r, rank - 2, 1, hi))[:rank]
    return make_case(r, "SyncBatchNorm", v, shape)


def gen_group_norm(r):
    groups = r.randint(1, 4)
    c = groups * r.randint(1, 3)
    if r.random() < 0.08:
        c += 1  # groups no longer divides num_channels
    v = {"num_groups": groups, "num_channels": c}
    maybe(r, v, "eps", 1e-3, 0.2)
    maybe(r, v, "affine", r.random() < 0.7)
    maybe(r, v, "bias", r.random() < 0.6, 0.3)
    rank = r.choice([1, 2, 2, 3, 4])
    hi = 1 if r.random() < 0.3 else 4  # [1, C] with C == num_groups: one value per group
    shape = ((r.randint(1, hi), off_by(r, c, 0.08)) + dims(r, rank - 2, 1, hi))[:rank]
    return make_case(r, "GroupNorm", v, shape)


# -- upsampling, folds
def gen_upsample(name):
    """Upsample in each mode, on each rank F.interpolate counts (and now and then another), to a size or by a
    scale (some of which floor a small dim to nothing); the Upsampling*2d classes fix the mode."""

    def gen(r):
        mode = {"UpsamplingNearest2d": "nearest", "UpsamplingBilinear2d": "bilinear"}.get(name)
        v = {}
        if mode is None:
            mode = r.choice(list(MODES))
            maybe(r, v, "mode", mode, 1.0 if mode != "nearest" else 0.5)
            # align_corners for the interpolating modes; now and then for another, which torch refuses
            if mode in INTERPOLATING or r.random() < 0.1:
                maybe(r, v, "align_corners", r.choice([None, True, False]), 0.5)
        rank = r.choice(MODES[mode]) if r.random() > 0.1 else r.choice([2, 3, 4, 5, 6])
        n = max(rank - 2, 1)
        roll = r.random()
        if roll < 0.45:
            v["size"] = size_arg(r, n, [1, 2, 3, 5])
        elif roll < 0.95:
            scales = [2, 2.0, 3, 0.5, 1.5, 0.7, 1 / 3, 1.0]
            v["scale_factor"] = r.choice(scales) if r.random() < 0.5 else tuple(r.choice(scales) for _ in range(n))
        elif roll < 0.97:
            v.update(size=2, scale_factor=2.0)  # both
        if name == "Upsample":
            maybe(r, v, "recompute_scale_factor", r.choice([None, True, False]), 0.3)
        return make_case(r, name, v, dims(r, rank, 1, 4))

    return gen


def per_dim(v, n):
    """An argument's value for each of n dims: an int for all, a tuple as it is (of any length)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def blocks(size, k, s, p, d):
    """How many blocks of kernel k (stride s, padding p, dilation d) fit along a dim of ``size``."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def block_values(r, v):
    """kernel_size, dilation, padding and stride of Fold and Unfold."""
    v["kernel_size"] = size_arg(r, 2, [1, 2, 2, 3])
    maybe(r, v, "dilation", size_arg(r, 2, [1, 1, 2]), 0.4)
    maybe(r, v, "padding", size_arg(r, 2, [0, 0, 1, 2]), 0.4)
    maybe(r, v, "stride", size_arg(r, 2, [1, 1, 2, 3]), 0.4)
    return v


def gen_unfold(r):
    v = block_values(r, {})
    return make_case(r, "Unfold", v, channels_input(r, 2, r.randint(1, 3), 6))


def gen_fold(r):
    v = block_values(r, {"output_size": size_arg(r, 2, [1, 2, 3, 4, 5, 6])})
    each = {k: per_dim(v.get(k, d), 2) for k, d in (("output_size", 0), ("kernel_size", 0), ("dilation", 1),
                                                     ("padding", 0), ("stride", 1))}
    if all(len(x) == 2 for x in each.values()):
        length = 1
        for i in range(2):
            length *= blocks(*(each[k][i] for k in ("output_size", "kernel_size", "stride", "padding", "dilation")))
        kk = each["kernel_size"][0] * each["kernel_size"][1]
    else:
        length, kk = r.randint(1, 9), r.randint(1, 4)
    if length < 1 or r.random() < 0.08:
        length = max(length, 0) + r.randint(1, 3)  # blocks that do not fit, or not that many of them
    cols = r.randint(1, 3) * kk if r.random() > 0.08 else r.randint(1, 9)  # else kH * kW may not divide it
    shape = (cols, length) if r.random() < 0.3 else (r.randint(1, 3), cols, length)
    if r.random() < 0.05:
        shape = (2, *shape) if r.random() < 0.5 else shape[-1:]
    return make_case(r, "Fold", v, shape)


# -- dropout and activations
def gen_dropout(name):
    n = int(name[-2]) if name[-1] == "d" else None

    def gen(r):
        v = {}
        maybe(r, v, "p", r.choice([0.0, 0.1, 0.5, 1.0, 1, -0.1, 1.5]) if r.random() < 0.3 else r.random())
        maybe(r, v, "inplace", r.random() < 0.5)
        # channel dropout takes [B, C, *n] or [C, *n]; other ranks now and then
        rank = r.randint(0, 6) if n is None or r.random() < 0.3 else r.choice([n + 1, n + 2])
        return make_case(r, name, v, dims(r, rank, 1, 3))

    return gen


def no_args(r):
    return {}


# Every elementwise activation by name, with the arguments it takes besides `inplace` (which
# `gen_activation` draws wherever the catalog has one). A new activation needs its line here.
ACTIVATIONS = {
    "ReLU": no_args,
    "ReLU6": no_args,
    "LeakyReLU": lambda r: {"negative_slope": r.choice([0.01, 0.2, -0.5, 1])},
    "ELU": lambda r: {"alpha": r.choice([1.0, 0.5, 2])},
    "SELU": no_args,
    "GELU": lambda r: {"approximate": r.choice(["none", "tanh", "tanh", "erf"])},
    "SiLU": no_args,
    "Mish": no_args,
    "Sigmoid": no_args,
    "Tanh": no_args,
    "Softplus": lambda r: {"beta": r.choice([1.0, 2, 0.5]), "threshold": r.choice([20.0, 5, 1.5])},
    "Hardswish": no_args,
    "Hardsigmoid": no_args,
    "Hardtanh": lambda r: hardtanh_args(r),
    "Softmax2d": no_args,
    "LogSigmoid": no_args,
    "Tanhshrink": no_args,
    "Softsign": no_args,
    "Softshrink": lambda r: {"lambd": r.choice([0.5, 0.0, 2, -0.5])},
    "Hardshrink": lambda r: {"lambd": r.choice([0.5, 0.0, 2, -0.5])},
    "Threshold": lambda r: {"threshold": r.choice([0.0, 0.5, -1, 2]), "value": r.choice([0.0, 1.5, -2, 3])},
    "CELU": lambda r: {"alpha": r.choice([1.0, 0.5, 2, -1.0, 0.0])},
    "RReLU": lambda r: {"lower": r.choice([0.125, 0.0, -0.2, 0.5]), "upper": r.choice([1 / 3, 0.5, 0.1, 1])},
}


def hardtanh_args(r):
    v = {}
    maybe(r, v, "min_val", r.choice([-1.0, -2, 0.0, 0.5, 2.0]))
    maybe(r, v, "max_val", r.choice([1.0, 3, 0.0, 0.5, -2.0]))
    # the deprecated spellings, which override min_val and max_val in torch
    maybe(r, v, "min_value", r.choice([None, -3.0, 0.5, 4.0]), 0.25)
    maybe(r, v, "max_value", r.choice([None, 3.0, 0.25, -4.0]), 0.25)
    return v


def gen_activation(name):
    def gen(r):
        v = {}
        for k, x in ACTIVATIONS[name](r).items():
            maybe(r, v, k, x, 0.7)
        if any(a.name == "inplace" for a in CATALOG[name].args):
            maybe(r, v, "inplace", r.random() < 0.5, 0.3)
        return make_case(r, name, v, dims(r, r.randint(0, 4), 1, 5))

    return gen


def gen_prelu(r):
    shape = dims(r, r.randint(0, 4), 1, 5)
    channels = shape[1] if len(shape) >= 2 else shape[0] if shape else 1
    v = {}
    maybe(r, v, "num_parameters", r.choice([1, channels, channels, channels + 1, r.randint(1, 5)]), 0.8)
    maybe(r, v, "init", r.choice([0.25, 0.1]), 0.3)
    return make_case(r, "PReLU", v, shape)


def gen_softmax(name):
    def gen(r):
        rank = r.randint(0, 4)
        v = {}
        maybe(r, v, "dim", None if r.random() < 0.1 else r.randint(-rank - 1, rank), 0.9)
        return make_case(r, name, v, dims(r, rank, 1, 5))

    return gen


def gen_glu(r):
    rank = r.randint(0, 4)
    shape = tuple(r.choice([2, 4, 6]) if r.random() < 0.8 else r.choice([1, 3, 5]) for _ in range(rank))
    v = {}
    maybe(r, v, "dim", r.randint(-rank - 1, rank), 0.8)
    return make_case(r, "GLU", v, shape)


# -- shuffles
def image_input(r, c, h, w):
    """[*, C, H, W] with 0 to 2 leading dims; now and then a rank below 3."""
    shape = (*dims(r, r.choice([0, 1, 1, 2]), 1, 2), c, h, w)
    return shape[r.randint(1, 3):] if r.random() < 0.06 else shape


def shuffle_factor(r):
    return r.choice([1, 2, 2, 3]) if r.random() > 0.04 else r.choice([0, -1])


def gen_pixel_shuffle(r):
    f = shuffle_factor(r)
    c = r.randint(1, 3) * f * f if r.random() < 0.85 else r.randint(1, 9)  # else channels r**2 may not divide
    return make_case(r, "PixelShuffle", {"upscale_factor": f}, image_input(r, c, *dims(r, 2, 1, 4)))


def gen_pixel_unshuffle(r):
    f = shuffle_factor(r)
    h, w = (r.randint(1, 3) * abs(f) if abs(f) and r.random() < 0.85 else r.randint(1, 7) for _ in range(2))
    return make_case(r, "PixelUnshuffle", {"downscale_factor": f}, image_input(r, r.randint(1, 3), h, w))


def gen_channel_shuffle(r):
    g = shuffle_factor(r)
    c = r.randint(1, 3) * g if g > 0 and r.random() < 0.85 else r.randint(1, 7)
    shape = (r.randint(1, 3), c, *dims(r, r.choice([0, 1, 1, 2, 3]), 1, 4))  # dim 1 is the channels at any rank
    return make_case(r, "ChannelShuffle", {"groups": g}, shape)


# -- padding
def pad_arg(r, n):
    """An int, or a tuple of 2n ints, now and then negative (a crop); sometimes a tuple of another length
    (torch_pads_other_dims)."""
    sides = [0, 0, 1, 1, 2, 3, -1, -2]
    if r.random() < 0.3:
        return r.choice(sides)
    k = 2 * n if r.random() > 0.08 else r.choice([2 * n - 2, 2 * n + 2, 2 * n - 1])
    return tuple(r.choice(sides) for _ in range(k))


def gen_pad(kind, n):
    name = f"{kind}Pad{n}d"

    def gen(r):
        v = {"padding": pad_arg(r, n)}
        if kind == "Constant":
            maybe(r, v, "value", r.choice([0.0, 1.5, -2, 3]), 0.9)
        if kind in ("Zero", "Constant"):  # F.pad's constant mode pads the last n dims of any rank
            rank = r.choice([n - 1, n, n + 1, n + 1, n + 2, n + 2, n + 3])
        else:
            rank = r.choice([n, n + 1, n + 1, n + 1, n + 2, n + 2, n + 2, n + 3])
        # reflection pads less than the size: mostly sizes above most pads
        return make_case(r, name, v, dims(r, rank, 2 if kind == "Reflection" else 1, 6))

    return gen


# -- distances
def broadcast_pair(r):
    """Two shapes that broadcast (the same, with 1s, or fewer leading dims); now and then two that do not."""
    shape = dims(r, r.randint(0, 4), 2, 4)
    other = tuple(1 if r.random() < 0.25 else s for s in shape)
    other = other[r.randint(0, len(other)):] if r.random() < 0.3 else other
    if shape and r.random() < 0.12:
        other = (*other[:-1], shape[-1] + 1)
    return (shape, other) if r.random() < 0.5 else (other, shape)


def gen_cosine_similarity(r):
    x1, x2 = broadcast_pair(r)
    rank = max(len(x1), len(x2))
    v = {}
    maybe(r, v, "dim", r.randint(-rank - 1, rank), 0.8)
    maybe(r, v, "eps", r.choice([1e-8, 1e-3]), 0.2)
    return make_case(r, "CosineSimilarity", v, x1, x2)


def gen_pairwise_distance(r):
    v = {}
    maybe(r, v, "p", r.choice([2.0, 1, 0.5, 3.0, float("inf")]), 0.5)
    maybe(r, v, "eps", r.choice([1e-6, 0.0]), 0.2)
    maybe(r, v, "keepdim", r.random() < 0.5)
    return make_case(r, "PairwiseDistance", v, *broadcast_pair(r))


def gen_embedding(r):
    num, d = r.randint(1, 10), r.randint(1, 6)
    v = {"num_embeddings": num, "embedding_dim": d}
    maybe(r, v, "padding_idx", r.choice([None, r.randint(-num - 2, num + 1)]), 0.5)
    maybe(r, v, "max_norm", r.choice([None, 1.0, 2]), 0.3)
    maybe(r, v, "norm_type", r.choice([2.0, 1.0]), 0.2)
    maybe(r, v, "scale_grad_by_freq", r.random() < 0.5, 0.2)
    maybe(r, v, "sparse", r.random() < 0.5, 0.2)
    return make_case(r, "Embedding", v, dims(r, r.randint(0, 3), 1, 5))


def gen_embedding_bag(r):
    """A 2-d input, a bag per row; a 1-d one with offsets; now and then one without the other, or another rank."""
    num, d = r.randint(1, 10), r.randint(1, 6)
    v = {"num_embeddings": num, "embedding_dim": d}
    maybe(r, v, "max_norm", r.choice([None, 1.0]), 0.2)
    maybe(r, v, "norm_type", r.choice([2.0, 1.0]), 0.2)
    maybe(r, v, "scale_grad_by_freq", r.random() < 0.5, 0.2)
    maybe(r, v, "mode", r.choice(["sum", "mean", "max"]), 0.5)
    maybe(r, v, "sparse", r.random() < 0.3, 0.3)
    maybe(r, v, "include_last_offset", r.random() < 0.6, 0.6)
    maybe(r, v, "padding_idx", r.choice([None, r.randint(-num - 1, num)]), 0.3)
    roll = r.random()
    if roll < 0.5:
        inputs = [dims(r, 2, 1, 4)]
    elif roll < 0.9:
        inputs = [dims(r, 1, 1, 8), dims(r, 1, 1, 4)]
    else:
        inputs = r.choice([[dims(r, 1, 1, 8)], [dims(r, 2, 1, 4), dims(r, 1, 1, 4)], [dims(r, 3, 1, 3)],
                           [dims(r, 1, 1, 8), dims(r, 2, 1, 3)]])
    return make_case(r, "EmbeddingBag", v, *inputs)


GENERATORS = {
    "Linear": gen_linear,
    "Bilinear": gen_bilinear,
    "Identity": gen_identity,
    "Flatten": gen_flatten,
    "Unflatten": gen_unflatten,
    "LayerNorm": gen_trailing_norm("LayerNorm"),
    "RMSNorm": gen_trailing_norm("RMSNorm"),
    "LocalResponseNorm": gen_local_response("LocalResponseNorm"),
    "CrossMapLRN2d": gen_local_response("CrossMapLRN2d"),
    "SyncBatchNorm": gen_sync_batch_norm,
    "Upsample": gen_upsample("Upsample"),
    "UpsamplingNearest2d": gen_upsample("UpsamplingNearest2d"),
    "UpsamplingBilinear2d": gen_upsample("UpsamplingBilinear2d"),
    "Unfold": gen_unfold,
    "Fold": gen_fold,
    "EmbeddingBag": gen_embedding_bag,
    "CosineSimilarity": gen_cosine_similarity,
    "PairwiseDistance": gen_pairwise_distance,
    "GroupNorm": gen_group_norm,
    "PReLU": gen_prelu,
    "Softmax": gen_softmax("Softmax"),
    "LogSoftmax": gen_softmax("LogSoftmax"),
    "Softmin": gen_softmax("Softmin"),
    "GLU": gen_glu,
    "PixelShuffle": gen_pixel_shuffle,
    "PixelUnshuffle": gen_pixel_unshuffle,
    "ChannelShuffle": gen_channel_shuffle,
    "Embedding": gen_embedding,
}
for _n in (1, 2, 3):
    GENERATORS[f"Conv{_n}d"] = gen_conv(_n)
    GENERATORS[f"ConvTranspose{_n}d"] = gen_conv_transpose(_n)
    GENERATORS[f"MaxPool{_n}d"] = gen_max_pool(_n)
    GENERATORS[f"AvgPool{_n}d"] = gen_avg_pool(_n)
    GENERATORS[f"AdaptiveAvgPool{_n}d"] = gen_adaptive("Avg", _n)
    GENERATORS[f"AdaptiveMaxPool{_n}d"] = gen_adaptive("Max", _n)
    GENERATORS[f"LPPool{_n}d"] = gen_lp_pool(_n)
    GENERATORS[f"MaxUnpool{_n}d"] = gen_max_unpool(_n)
    if _n > 1:
        GENERATORS[f"FractionalMaxPool{_n}d"] = gen_fractional(_n)
    GENERATORS[f"BatchNorm{_n}d"] = gen_batch_norm(_n)
    GENERATORS[f"InstanceNorm{_n}d"] = gen_instance_norm(_n)
    for _kind in ("Zero", "Constant", "Reflection", "Replication", "Circular"):
        GENERATORS[f"{_kind}Pad{_n}d"] = gen_pad(_kind, _n)
for _name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"):
    GENERATORS[_name] = gen_dropout(_name)
for _name in ACTIVATIONS:
    GENERATORS[_name] = gen_activation(_name)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_entry_has_its_own_generator(name):
    """No fallback: a new catalog entry fails here until someone writes its configurations."""
    from test_catalog_loss import GENERATORS as LOSS_GENERATORS
    from test_catalog_loss import LOSS_NAMES
    from test_catalog_seq import GENERATORS as SEQ_GENERATORS
    from test_catalog_seq import SEQ_NAMES

    table, where = (SEQ_GENERATORS, "test_catalog_seq.py") if name in SEQ_NAMES else (
        (LOSS_GENERATORS, "test_catalog_loss.py") if name in LOSS_NAMES else (GENERATORS, "test_catalog.py"))
    assert name in table, f"the catalog entry {name} has no generator in GENERATORS of tests/{where}"


def test_no_generator_without_an_entry():
    stale = sorted(set(GENERATORS) - set(NAMES))
    assert not stale, f"generators for no catalog entry of these families: {stale}"


@functools.cache
def cases(name: str) -> tuple[Case, ...]:
    r = random.Random(f"{SEED}-{name}")
    return tuple(GENERATORS[name](r) for _ in range(CONFIGS_PER_LAYER))


@pytest.mark.parametrize("name", NAMES)
def test_every_argument_is_exercised(name):
    """A generator that never gives an argument leaves the catalog's handling of it untested."""
    given = set().union(*(case.values() for case in cases(name)))
    never = [a.name for a in CATALOG[name].args if a.name not in given]
    assert not never, f"{name}: no configuration gives {never}"


# ---------------------------------------------------------------- running both sides
@dataclass
class Outcome:
    shapes: object = None  # a shape tuple, or a list of them
    params: int | None = None
    error: BaseException | None = None
    weights: dict | None = None  # the module's own parameters: name -> shape
    buffers: int | None = None  # elements of its buffers (running statistics)

    @property
    def ok(self):
        return self.error is None

    def __str__(self):
        return f"{self.shapes}" if self.ok else f"{type(self.error).__name__}: {str(self.error)[:200]}"


def _takes_device(cls) -> bool:
    return "device" in inspect.signature(cls.__init__).parameters


def input_dtypes(name: str, n: int) -> list:
    """The torch dtype of each of ``n`` inputs: long indices (Embedding's, EmbeddingBag's and its offsets, the
    MaxPool indices MaxUnpool takes second), float values."""
    layer = CATALOG[name]
    if layer.index_bound is not None:
        return [torch.long] * n
    return [torch.float32] + [torch.long if isinstance(layer, Unpooling) else torch.float32] * (n - 1)


def zeros(case: Case, device: str | None = None) -> list:
    """Zeros of each input's shape and dtype: indices 0 are valid ones, offsets 0 start every bag at 0."""
    return [torch.zeros(s, device=device, dtype=d) for s, d in zip(case.inputs, input_dtypes(case.name,
                                                                                               len(case.inputs)))]


# the layers that check their input in training alone: statistics over the input itself; noise drawn per channel
TRAINING_CHECKS = ("InstanceNorm", "BatchNorm", "SyncBatchNorm", "FeatureAlphaDropout")


def run_torch(case: Case, device: str) -> Outcome:
    """Build the module and run it on ``device`` ('meta', or 'cpu' as referee)."""
    cls = getattr(nn, case.name)
    kwargs = dict(case.kwargs)
    if _takes_device(cls):
        kwargs["device"] = device
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = cls(*case.args, **kwargs).eval()
            with torch.no_grad():
                out = module(*zeros(case, device), **case.call)
                if case.name.startswith(TRAINING_CHECKS):
                    module.train()(*zeros(case, device), **case.call)
        for w in caught:
            if DEPRECATED_INPUT.search(str(w.message)):
                raise RuntimeError(f"deprecated: {w.message}")
    except Exception as exc:  # torch raises ValueError, RuntimeError, TypeError, AssertionError...
        return Outcome(error=exc)
    shapes = tuple(out.shape) if isinstance(out, torch.Tensor) else [tuple(o.shape) for o in out]
    if 0 in (shapes if isinstance(shapes, tuple) else shapes[0]):
        return Outcome(error=RuntimeError(f"empty output {shapes}"))
    own = {n: tuple(p.shape) for n, p in module.named_parameters(recurse=False)}
    return Outcome(shapes, sum(p.numel() for p in module.parameters()), weights=own,
                   buffers=sum(b.numel() for b in module.buffers()))


def bound_args(case: Case):
    """The catalog's bound arguments, bound as `infer_shape` binds them, and forward's as the elaborator does."""
    layer = CATALOG[case.name]
    lift = lambda v: INFER if v is INFER else Val(v)  # noqa: E731
    bound = bind(layer, [lift(v) for v in case.args], {k: lift(v) for k, v in case.kwargs.items()}, shapes_of(case))
    return bind_call_args(layer, bound, case.call)


def shapes_of(case: Case) -> tuple:
    return tuple(tuple(Val(d) for d in s) for s in case.inputs)


def run_catalog(case: Case) -> Outcome:
    """The entry's rule on the case, as `infer_shape` applies it; only the catalog's own errors count as
    rejections."""
    layer = CATALOG[case.name]
    try:
        bound = bound_args(case)
        shapes = _unwrap_result(layer.rule(bound, *shapes_of(case)))
    except CATALOG_ERRORS as exc:
        return Outcome(error=exc)
    # anything else (TypeError, IndexError...) propagates: a crash, not a verdict
    weights = None
    if layer.weights is not None:
        weights = {n: tuple(int(d) for d in s) for n, s in layer.weights(bound).items()}
    return Outcome(shapes, layer.params(bound), weights=weights, buffers=layer.buffers(bound))


def torch_ignores(case: Case, arg: str) -> bool:
    """Where torch never reads the argument, so cannot notice it is wrong.

    With no affine weight and no running statistics, BatchNorm's and
    InstanceNorm's num_features and GroupNorm's num_channels size nothing
    (InstanceNorm only warns). The catalog still insists they match the input.
    """
    vals = {a.name: a.default for a in CATALOG[case.name].args} | case.values()
    if case.name.startswith(("BatchNorm", "SyncBatchNorm", "InstanceNorm")) and arg == "num_features":
        return not vals["affine"] and not vals["track_running_stats"]
    if case.name == "GroupNorm" and arg == "num_channels":
        return not vals["affine"]
    return False


def torch_shortcut(case: Case) -> bool:
    """Where torch accepts an input only by skipping its own checks.

    AdaptiveAvgPool2d/3d with an output of all 1s is a mean over the last dims
    in ATen, taken before the rank check: any rank goes (even a 2-d input for
    ``AdaptiveAvgPool2d(1)``, though not for ``(1, 1)``). The catalog keeps to
    the documented ranks.
    """
    layer = CATALOG[case.name]
    if case.name not in ("AdaptiveAvgPool2d", "AdaptiveAvgPool3d") or len(case.inputs[0]) in layer.ranks:
        return False
    return set(_as_tuple(case.values()["output_size"])) == {1}


def torch_pads_other_dims(case: Case) -> bool:
    """Where torch takes a padding tuple of another length than its class is for.

    The padding layers hand their tuple to F.pad, which pads a dim for each pair it finds: ZeroPad2d((1, 1))
    pads the last dim alone, as ZeroPad1d does. The catalog keeps to the length of the class, as torch's
    type hints do (``tuple[int, int, int, int]``).
    """
    pad = case.values().get("padding")
    return CATALOG[case.name].family == "pad" and isinstance(pad, (tuple, list)) and len(pad) != 2 * int(case.name[-2])


def torch_reads_a_prefix(case: Case) -> bool:
    """Where torch reads the first n items of a longer stride or padding tuple.

    MaxUnpool1d and MaxUnpool2d keep a tuple as given (_single and _pair pass tuples through) and compute their
    output from its first n items alone: MaxUnpool1d(2, padding=(0, 5)) unpools as padding=0 would. The catalog
    keeps to tuples of n, as torch's type hints do (MaxUnpool3d's kernel checks so too).
    """
    n = int(case.name[-2]) if case.name.startswith("MaxUnpool") else 0
    return n in (1, 2) and any(isinstance(case.values().get(k), (tuple, list)) and len(case.values()[k]) > n
                               for k in ("stride", "padding"))


def torch_misses_overlap(case: Case) -> bool:
    """Where torch's circular padding copies between overlapping parts of its output without noticing.

    Cropping one side of a dim while wrapping the other around has _pad_circular copy a part of its output
    onto a part that overlaps it. torch refuses that where both parts are dense in memory (every dim before
    the padded one of size 1) and copies regardless where it cannot tell. The catalog refuses it at any size;
    torch confirms that it refuses the same pads of each dim on an input [1, 1, size].
    """
    n = int(case.name[-2])
    x, pad = case.inputs[0], case.values().get("padding")
    if not case.name.startswith("CircularPad") or len(x) not in (n + 1, n + 2):
        return False
    pad = tuple(pad) if isinstance(pad, (tuple, list)) else (pad,) * (2 * n)
    for i in range(n):
        try:
            F.pad(torch.zeros(1, 1, x[-1 - i]), pad[2 * i : 2 * i + 2], mode="circular")
        except RuntimeError:
            return True
    return False


@dataclass
class Verdict:
    case: Case
    torch: Outcome
    ours: Outcome
    referee: str  # 'meta', or 'cpu' where meta and the catalog disagreed on validity

    @property
    def agree(self) -> bool:
        if self.torch.ok and self.ours.ok:
            return self.torch.shapes == self.ours.shapes
        if self.torch.ok and isinstance(self.ours.error, InferMismatch):
            return torch_ignores(self.case, self.ours.error.arg)
        if self.torch.ok and isinstance(self.ours.error, ShapeProblem) and torch_shortcut(self.case):
            return True
        if self.torch.ok and isinstance(self.ours.error, ArgError) and (torch_pads_other_dims(self.case)
                                                                         or torch_reads_a_prefix(self.case)):
            return True
        if self.torch.ok and isinstance(self.ours.error, ShapeProblem) and torch_misses_overlap(self.case):
            return True
        return self.torch.ok == self.ours.ok

    def __str__(self):
        return f"{self.case}\n    torch ({self.referee}): {self.torch}\n    catalog: {self.ours}"


@functools.cache
def verdicts(name: str) -> tuple[Verdict, ...]:
    return tuple(verdict(case) for case in cases(name))


def verdict(case: Case) -> Verdict:
    ours = run_catalog(case)
    theirs, referee = run_torch(case, "meta"), "meta"
    if theirs.ok != ours.ok:
        theirs, referee = run_torch(case, "cpu"), "cpu"
    return Verdict(case, theirs, ours, referee)


# ---------------------------------------------------------------- 2. shape rules
@pytest.mark.parametrize("name", NAMES)
def test_shape_rule_matches_torch(name):
    wrong = [str(v) for v in verdicts(name) if not v.agree]
    assert not wrong, f"{len(wrong)} of {CONFIGS_PER_LAYER} configurations disagree:\n" + "\n".join(wrong[:8])


# Configurations the catalog once got wrong, kept whatever the generators draw.
REGRESSIONS = [
    Case("AdaptiveAvgPool1d", ((None,),), {}, ((2, 3, 5),)),  # the 1-d classes take no None
    Case("AdaptiveMaxPool1d", (None,), {}, ((2, 3, 5),)),
    Case("AvgPool3d", (3,), {"padding": 1}, ((1, 2, 4, 4),)),  # input smaller than the kernel
    Case("AvgPool3d", (3,), {"padding": 1}, ((1, 3, 4, 4),)),
    Case("BatchNorm1d", (4,), {}, ((2, 4),)),  # [B, C]: the channels are dim 1
    Case("BatchNorm2d", (3,), {"track_running_stats": False}, ((1, 3, 1, 1),)),  # one value per channel
    Case("Conv1d", (1, 1, 5), {"padding": "same", "padding_mode": "reflect"}, ((1, 1, 2),)),
    Case("Conv1d", (1, 1, 5), {"padding": "same", "padding_mode": "reflect"}, ((1, 1, 3),)),
    Case("Conv2d", (1, 1, 1), {"padding": 2, "padding_mode": "circular"}, ((1, 2, 3),)),
    Case("Conv2d", (1, 1, 1), {"padding": 3, "padding_mode": "circular"}, ((1, 2, 3),)),
    Case("ConvTranspose2d", (1, 1, 4), {"padding": (2, 0)}, ((1, 1, 1, 3),)),  # empty output
    Case("ConvTranspose1d", (3, 3, 1), {"output_padding": 1}, ((3, 2),)),  # meta does not check
    Case("Flatten", (), {}, ((),)),  # start_dim=1 is out of range for a scalar
    Case("Flatten", (-1, 0), {}, ((),)),
    Case("Unflatten", (0, (1,)), {}, ((),)),
    Case("GroupNorm", (2, 2), {}, ((1, 2),)),  # one value per group
    Case("GroupNorm", (2, 2), {}, ((1, 2, 2),)),
    Case("Hardtanh", (), {"min_value": 4.0}, ((3,),)),  # the deprecated names override
    Case("Hardtanh", (0.0, 0.0), {"max_value": 3.0}, ((3,),)),
    Case("InstanceNorm1d", (3,), {}, ((3, 1),)),  # one spatial element
    Case("InstanceNorm1d", (3,), {"track_running_stats": True}, ((3, 1),)),
    Case("MaxPool1d", (2,), {"padding": 2, "dilation": 3}, ((1, 1, 10),)),  # padding vs kernel_size
    Case("MaxPool2d", (2,), {"padding": (0, 2), "dilation": 3}, ((1, 1, 10, 10),)),
    Case("PReLU", (3,), {}, ((3,),)),  # a 1-d input has one channel
    Case("PReLU", (3,), {}, ((2, 3),)),
    Case("Softmax", (2,), {}, ((4, 2),)),  # meta does not check dim
    Case("AdaptiveAvgPool2d", (1,), {}, ((2, 3, 3, 3, 1),)),  # torch_shortcut
    Case("CELU", (0.0,), {}, ((2, 3),)),  # meta does not check alpha
    Case("FeatureAlphaDropout", (0.5,), {}, ((4,),)),  # in training: noise per channel, of 2 dims at least
    Case("FeatureAlphaDropout", (1.0,), {}, ((4,),)),  # ...but none is drawn where it drops everything
    Case("GLU", (0,), {}, ((3, 4),)),  # an odd dim does not halve
    Case("PixelShuffle", (2,), {}, ((1, 6, 2, 2),)),  # 2**2 does not divide 6 channels
    Case("ChannelShuffle", (2,), {}, ((3, 4, 5),)),  # dim 1 is the channels, unbatched too
    Case("ChannelShuffle", (2,), {}, ((4, 3, 5),)),
    Case("ReflectionPad1d", ((2, 3),), {}, ((1, 3),)),  # reflection pads less than the size
    Case("ReflectionPad1d", ((-4, 2),), {}, ((1, 3),)),  # ...a crop of any size, while something is left
    Case("CircularPad1d", ((3, 0),), {}, ((1, 3),)),  # circular pads as much as the size, no more
    Case("CircularPad1d", ((-3, 2),), {}, ((1, 2),)),  # a crop of all but nothing, and one element broadcast
    Case("CircularPad1d", ((-1, 2),), {}, ((1, 2),)),  # overlapping copies
    Case("CircularPad1d", ((-1, 2),), {}, ((2, 2),)),  # torch_misses_overlap
    Case("ConstantPad1d", ((-6, 3), 0.0), {}, ((1, 5),)),  # crops more than the dim holds
    Case("ZeroPad1d", (1,), {}, ((5,),)),  # constant padding takes any rank with the padded dims
    Case("ZeroPad2d", ((1, 1),), {}, ((1, 3, 3),)),  # torch_pads_other_dims
    Case("Upsample", (), {"scale_factor": 0.7}, ((1, 1, 10),)),  # floor(10 * 0.7) in doubles is 7, not 6
    Case("Upsample", (), {"scale_factor": 0.3}, ((1, 1, 3),)),  # floors to nothing
    Case("UpsamplingNearest2d", (3,), {}, ((1, 2, 4),)),  # nearest takes a 3-d input, whatever the class's name
    Case("Fold", (3, 2), {}, ((1, 12, 4),)),  # 4 blocks of 2 x 2 in 3 x 3
    Case("Unfold", (3,), {"padding": 1}, ((1, 1, 2, 4),)),  # the padding lets the kernel fit
    Case("FractionalMaxPool2d", (2,), {"output_size": 4}, ((1, 1, 5, 5),)),  # 4 + 2 - 1 positions: enough in 2-d
    Case("FractionalMaxPool3d", (2,), {"output_size": 2}, ((1, 1, 3, 3, 3),)),  # ...not in 3-d, which needs one more
    Case("LPPool1d", (2, (2,)), {}, ((1, 1, 4),)),  # lp_pool1d multiplies by its kernel_size: no tuple
    Case("MaxUnpool1d", (2,), {"padding": (0, 5)}, ((1, 1, 3), (1, 1, 3))),  # torch_reads_a_prefix
    Case("MaxUnpool2d", (2,), {}, ((1, 1, 3, 3), (1, 1, 3, 3)), {"output_size": (1, 1, 7, 6)}),  # batch, channels
    Case("MaxUnpool2d", (2,), {}, ((1, 1, 3, 3), (1, 1, 3, 3)), {"output_size": (8, 8)}),  # past default + stride
    Case("EmbeddingBag", (10, 4), {"include_last_offset": True}, ((6,), (1,))),  # one offset: no bag
    Case("EmbeddingBag", (10, 4), {"mode": "max", "scale_grad_by_freq": True}, ((2, 3),)),
    Case("CosineSimilarity", (0,), {}, ((), ())),  # a 0-d pair: dim 0 names its one dim
    Case("PairwiseDistance", (), {"keepdim": True}, ((), ())),  # ...and stays 0-d, keepdim or not
    Case("RMSNorm", ((),), {}, ((2, 3),)),  # normalized_shape names no dim
    Case("CrossMapLRN2d", (2,), {}, ((1, 3, 4),)),  # 4-d alone
    Case("SyncBatchNorm", (3,), {}, ((1, 3, 1),)),  # one value per channel in training
]


@pytest.mark.parametrize("case", REGRESSIONS, ids=str)
def test_regression(case):
    v = verdict(case)
    assert v.agree, str(v)
    # meta kernels skip some checks (CELU's alpha, circular padding's overlapping copies), so a catalog as lax
    # as meta agrees above: a regression holds on CPU tensors too
    cpu = Verdict(case, run_torch(case, "cpu"), v.ours, "cpu")
    assert cpu.agree, str(cpu)


@pytest.mark.parametrize("name", ["ZeroPad1d", "ConstantPad1d", "ReflectionPad1d", "ReplicationPad1d",
                                  "CircularPad1d"])
def test_padding_of_one_dim_matches_torch_on_cpu(name):
    """Every (left, right) from -7 to 7 on every size up to 6, on CPU tensors [1, 1, size], where torch checks
    most (meta skips the overlap check of circular padding): what each mode refuses is all in one dim's pads."""
    value = (0.0,) if name == "ConstantPad1d" else ()
    wrong = []
    for size in range(1, 7):
        for pads in itertools.product(range(-7, 8), repeat=2):
            case = Case(name, (pads, *value), {}, ((1, 1, size),))
            v = Verdict(case, run_torch(case, "cpu"), run_catalog(case), "cpu")
            if not v.agree:
                wrong.append(str(v))
    assert not wrong, f"{len(wrong)} disagree:\n" + "\n".join(wrong[:8])


@pytest.mark.parametrize("name", NAMES)
def test_generator_reaches_valid_configurations(name):
    """A generator whose configurations all fail would test only rejections."""
    accepted = sum(v.torch.ok for v in verdicts(name))
    assert accepted >= CONFIGS_PER_LAYER // 4, f"only {accepted} of {CONFIGS_PER_LAYER} accepted by torch"


def test_generators_cover_the_interesting_cases():
    seen = {}

    def note(feature, v):
        seen.setdefault(feature, set()).add(v.torch.ok)

    for name in NAMES:
        for v in verdicts(name):
            vals, inputs = v.case.values(), v.case.inputs
            layer = CATALOG[name]
            if layer.family == "pad":  # which ranks each takes: a rank is the feature
                note_padding(note, name, vals["padding"], inputs[0], v)
            elif layer.ranks:
                note(f"{name} unbatched" if len(inputs[0]) == min(layer.ranks) else f"{name} batched", v)
            for k in ("ceil_mode", "return_indices"):
                if vals.get(k) is True:
                    note(f"{name} {k}", v)
            for k in ("stride", "dilation", "groups", "output_padding", "dim"):
                if isinstance(vals.get(k), (int, tuple)) and set(_as_tuple(vals[k])) - {layer.arg(k).default}:
                    note(f"{name} {k}", v)
            for k in ("upscale_factor", "downscale_factor"):
                if vals.get(k, 0) > 1:
                    note(f"{name} {k}", v)
            if name == "GLU" and inputs[0] and -len(inputs[0]) <= vals.get("dim", -1) < len(inputs[0]):
                note(f"GLU {'odd' if inputs[0][vals.get('dim', -1)] % 2 else 'even'} dim", v)
            if name == "FeatureAlphaDropout" and 0 < vals.get("p", 0.5) < 1:
                note(f"FeatureAlphaDropout {'under' if len(inputs[0]) < 2 else 'at least'} 2 dims", v)
            if isinstance(vals.get("padding"), str):
                note(f"{name} padding={vals['padding']}", v)
            if name == "Unflatten" and -1 in vals["unflattened_size"]:
                note("Unflatten -1", v)
            if name == "LayerNorm" and len(layer.arg("normalized_shape").type(vals["normalized_shape"])) > 1:
                note("LayerNorm multi-dim", v)
            if name == "Flatten" and {"start_dim", "end_dim"} <= set(vals):
                note("Flatten start/end", v)
            for feature in later_features(name, vals, v.case):
                note(f"{name} {feature}", v)
    must_pass = [f"Conv{n}d {k}" for n in (1, 2, 3) for k in ("stride", "dilation", "groups", "padding=same",
                                                              "padding=valid", "unbatched", "batched")]
    must_pass += [f"ConvTranspose{n}d {k}" for n in (1, 2, 3) for k in ("stride", "output_padding", "dilation")]
    must_pass += [f"MaxPool{n}d {k}" for n in (1, 2, 3) for k in ("ceil_mode", "return_indices", "dilation")]
    must_pass += [f"AvgPool{n}d ceil_mode" for n in (1, 2, 3)]
    must_pass += [f"AdaptiveMaxPool{n}d return_indices" for n in (1, 2, 3)]
    must_pass += ["Unflatten -1", "LayerNorm multi-dim", "Flatten start/end"]
    must_pass += ["GLU dim", "GLU even dim", "Softmin dim", "Softmax2d unbatched", "Softmax2d batched",
                  "FeatureAlphaDropout at least 2 dims", "PixelShuffle upscale_factor",
                  "PixelUnshuffle downscale_factor", "ChannelShuffle groups"]
    pads = [name for name in NAMES if CATALOG[name].family == "pad"]
    must_pass += [f"{name} {k}" for name in pads for k in ("int padding", "tuple padding", "negative padding")]
    must_pass += [f"{name} {int(name[-2]) + k}-d" for name in pads for k in (1, 2)]  # unbatched and batched
    must_pass += [f"{kind}Pad{n}d {n}-d" for kind in ("Zero", "Constant") for n in (1, 2, 3)]  # no channel dim
    must_pass += [f"{kind}Pad{n}d padding at least the size" for kind in ("Replication", "Circular") for n in (1, 2, 3)]
    must_pass += [f"Upsample mode={mode}" for mode in MODES] + ["Upsample align_corners", "Upsample tuple"]
    must_pass += [f"{name} {k}" for name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
                  for k in ("size", "scale_factor", "fractional scale_factor")]
    must_pass += [f"{name} {k}" for name in ("Fold", "Unfold") for k in ("stride", "dilation", "padding", "unbatched",
                                                                           "batched")]
    must_pass += [f"MaxUnpool{n}d {k}" for n in (1, 2, 3) for k in ("stride", "output_size", "full output_size",
                                                                      "unbatched", "batched")]
    must_pass += [f"FractionalMaxPool{n}d {k}" for n in (2, 3) for k in ("output_size", "output_ratio",
                                                                          "return_indices")]
    must_pass += [f"LPPool{n}d {k}" for n in (1, 2, 3) for k in ("ceil_mode", "stride", "unbatched", "batched")]
    must_pass += ["EmbeddingBag offsets", "EmbeddingBag include_last_offset", "EmbeddingBag mode=max",
                  "CosineSimilarity broadcast", "CosineSimilarity dim", "PairwiseDistance broadcast",
                  "PairwiseDistance keepdim", "RMSNorm multi-dim", "SyncBatchNorm 5-d", "LocalResponseNorm 5-d"]
    missing = [f for f in must_pass if True not in seen.get(f, ())]
    assert not missing, f"no accepted configuration exercises: {missing}"
    must_fail = ["Conv2d padding=same", "Unflatten -1", "LayerNorm multi-dim", "Flatten start/end"]
    must_fail += ["GLU odd dim", "FeatureAlphaDropout under 2 dims", "PixelShuffle upscale_factor",
                  "PixelUnshuffle downscale_factor", "ChannelShuffle groups"]
    must_fail += [f"{kind}Pad{n}d {k}" for kind in ("Reflection", "Replication", "Circular") for n in (1, 2, 3)
                  for k in (f"{n}-d", f"{n + 3}-d")]  # neither a channel dim nor more than a batch
    must_fail += [f"{kind}Pad{n}d padding at least the size" for kind in ("Reflection", "Circular") for n in (1, 2, 3)]
    must_fail += [f"{name} negative padding" for name in pads]  # a crop of more than the dim holds
    must_fail += ["Upsample mode=bilinear", "Upsample align_corners", "Upsample fractional scale_factor",
                  "Fold stride", "Unfold dilation", "MaxUnpool2d output_size", "FractionalMaxPool2d output_ratio",
                  "FractionalMaxPool3d output_size", "EmbeddingBag offsets", "CosineSimilarity dim",
                  "PairwiseDistance broadcast", "LocalResponseNorm 2-d", "SyncBatchNorm 1-d"]
    refused = [f for f in must_fail if False not in seen.get(f, ())]
    assert not refused, f"no refused configuration exercises: {refused}"


def later_features(name: str, vals: dict, case: Case) -> set:
    """What a configuration of the layers added with the rest of torch.nn exercises, for the test above."""
    out = set()
    inputs = case.inputs
    if name.startswith("Upsampl"):
        out.add(f"mode={vals.get('mode', 'nearest')}" if name == "Upsample" else "")
        for k in ("size", "scale_factor"):
            if vals.get(k) is not None:
                out |= {k, "tuple"} if isinstance(vals[k], (tuple, list)) else {k}
        if any(float(s) != int(s) for s in _as_tuple(vals.get("scale_factor") or 1)):
            out.add("fractional scale_factor")
        if vals.get("align_corners") is not None:
            out.add("align_corners")
    if name in ("Fold", "Unfold") and set(_as_tuple(vals.get("padding", 0))) - {0}:
        out.add("padding")
    if name.startswith("MaxUnpool") and case.call.get("output_size") is not None:
        full = len(case.call["output_size"]) == int(name[-2]) + 2
        out |= {"output_size", "full output_size"} if full else {"output_size"}
    if name.startswith("FractionalMaxPool"):
        out |= {k for k in ("output_size", "output_ratio") if vals.get(k) is not None}
    if name == "EmbeddingBag":
        out.add(f"mode={vals.get('mode', 'mean')}")
        if len(inputs) == 2:
            out |= {"offsets", "include_last_offset"} if vals.get("include_last_offset") else {"offsets"}
    if name in ("CosineSimilarity", "PairwiseDistance") and inputs[0] != inputs[1]:
        out.add("broadcast")
    if name == "PairwiseDistance" and vals.get("keepdim"):
        out.add("keepdim")
    if name == "RMSNorm" and len(CATALOG[name].arg("normalized_shape").type(vals["normalized_shape"])) > 1:
        out.add("multi-dim")
    if name in ("SyncBatchNorm", "LocalResponseNorm"):
        out.add(f"{len(inputs[0])}-d")
    return out - {""}


def note_padding(note, name, padding, x, v):
    """The features of a padding layer's configuration: the form of its padding, crops, and the input's rank."""
    n = int(name[-2])
    note(f"{name} {'tuple' if isinstance(padding, (tuple, list)) else 'int'} padding", v)
    pads = _as_tuple(padding) * (1 if isinstance(padding, (tuple, list)) else 2 * n)
    if min(pads, default=0) < 0:
        note(f"{name} negative padding", v)
    note(f"{name} {len(x)}-d", v)
    if len(pads) == 2 * n and len(x) >= n and any(max(pads[2 * i : 2 * i + 2]) >= x[-1 - i] for i in range(n)):
        note(f"{name} padding at least the size", v)


def _as_tuple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


# ---------------------------------------------------------------- 3. parameter counts
@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_torch(name):
    wrong = [
        f"{v.case}: torch {v.torch.params}, catalog {v.ours.params}"
        for v in verdicts(name)
        if v.torch.ok and v.ours.ok and v.torch.params != v.ours.params
    ]
    assert not wrong, "\n".join(wrong[:8])


@pytest.mark.parametrize("name", NAMES)
def test_buffer_count_matches_torch(name):
    """Buffers count against max_params with the parameters, so they are held against torch as those are."""
    checked, wrong = 0, []
    for v in verdicts(name):
        if v.torch.ok and v.ours.ok:
            checked += 1
            if v.torch.buffers != v.ours.buffers:
                wrong.append(f"{v.case}: torch {v.torch.buffers}, catalog {v.ours.buffers}")
    assert checked, f"no configuration of {name} ran in both"
    assert not wrong, "\n".join(wrong[:8])


FRESH_LAYERS = [name for name in NAMES if CATALOG[name].layout == "new"]


@pytest.mark.parametrize("name", FRESH_LAYERS)
def test_fresh_layouts_are_contiguous_in_torch(name):
    """A layer whose layout is "new" lets a `view` follow it, so torch must give a contiguous output from an
    input in any memory order (a Conv2d keeps channels-last, so it is "keep")."""
    checked, wrong = 0, []
    for v in verdicts(name):
        if not (v.torch.ok and v.ours.ok):
            continue
        checked += 1
        case = v.case
        module = getattr(nn, name)(*case.args, **case.kwargs).eval()
        first, *rest = zeros(case)
        rank = len(case.inputs[0])
        for perm in itertools.permutations(range(rank)) if rank > 1 else ():
            inverse = [perm.index(i) for i in range(rank)]
            x = first.permute(perm).contiguous().permute(inverse)  # the same shape, its memory in another order
            with torch.no_grad():
                out = module(x, *rest, **case.call)
            if not out.is_contiguous():
                wrong.append(f"{case}: not contiguous from an input permuted {perm}")
                break
    assert checked, f"no configuration of {name} ran in both"
    assert not wrong, "\n".join(wrong[:8])


WEIGHTED = [name for name in NAMES if CATALOG[name].weights is not None]


def test_the_layers_forward_reads_parameters_of_name_them():
    """Forward can read `fc.weight` of these; each is held against torch below."""
    assert {"Linear", "Embedding", "Conv2d", "ConvTranspose1d", "LayerNorm", "BatchNorm2d",
            "GroupNorm"} <= set(WEIGHTED)


@pytest.mark.parametrize("name", WEIGHTED)
def test_weight_shapes_match_torch(name):
    """Every parameter the catalog names, by name and shape, is the module's own (and none is missing)."""
    checked = 0
    wrong = []
    for v in verdicts(name):
        if v.torch.ok and v.ours.ok:
            checked += 1
            if v.torch.weights != v.ours.weights:
                wrong.append(f"{v.case}: torch {v.torch.weights}, catalog {v.ours.weights}")
    assert checked, f"no valid configuration of {name} was compared"
    assert not wrong, "\n".join(wrong[:8])


# ---------------------------------------------------------------- 4. inference
INFERABLE = [name for name in NAMES if any(a.infer is not None for a in CATALOG[name].args)]


def test_there_are_inferable_entries():
    assert {"Linear", "Bilinear", "Conv2d", "ConvTranspose3d", "BatchNorm1d", "LayerNorm", "GroupNorm",
            "InstanceNorm2d"} <= set(INFERABLE)


@pytest.mark.parametrize("name", INFERABLE)
def test_inferred_arguments(name):
    layer = CATALOG[name]
    checked = 0
    for v in verdicts(name):
        if not (v.torch.ok and v.ours.ok):
            continue
        for a in layer.args:
            if a.infer is None or a.name not in v.case.values():
                continue
            given = v.case.values()[a.name]
            if name in ("LayerNorm", "RMSNorm") and len(a.type(given)) > 1:
                continue  # `_` stands for the last dim alone; several dims must be spelled out
            checked += 1
            # `_` in place of the value torch needed gives the same output and parameters
            inferred = run_catalog(_replaced(v.case, a.name, INFER))
            assert inferred.ok, f"{v.case} with {a.name}=_: {inferred}"
            assert (inferred.shapes, inferred.params) == (v.torch.shapes, v.torch.params), f"{v.case} with {a.name}=_"
            # and the inferred value is the one given
            assert _plain(bound_args(_replaced(v.case, a.name, INFER)).values[a.name]) == _plain(
                layer.arg(a.name).type(given)
            )
            # a wrong explicit value is an InferMismatch (or, for an argument bind does
            # not compare, the rule's ShapeProblem), which torch confirms where it looks
            wrong_value = _wrong(given)
            wrong = _replaced(v.case, a.name, wrong_value)
            mismatch = run_catalog(wrong)
            if getattr(a, "compare", True):
                assert isinstance(mismatch.error, InferMismatch), f"{wrong}: {mismatch}"
                assert mismatch.error.arg == a.name
            else:
                assert isinstance(mismatch.error, ShapeProblem), f"{wrong}: {mismatch}"
            if not torch_ignores(v.case, a.name):
                assert not run_torch(wrong, "cpu").ok, f"torch accepts {wrong}"
    assert checked >= 5, f"only {checked} inference checks"


def _plain(v):
    if isinstance(v, Val):
        return _plain(v.value)
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    return v


def _wrong(value):
    """A value of the same form that no longer matches the input."""
    if isinstance(value, (tuple, list)):
        return type(value)((*value[:-1], value[-1] + 1))
    return value + 1


def _replaced(case: Case, arg: str, value) -> Case:
    positional = [a.name for a in CATALOG[case.name].args if not a.kw_only]
    args, kwargs = list(case.args), dict(case.kwargs)
    if arg in positional and positional.index(arg) < len(args):
        args[positional.index(arg)] = value
    else:
        kwargs[arg] = value
    return Case(case.name, tuple(args), kwargs, case.inputs, case.call)


@pytest.mark.parametrize("name", INFERABLE)
def test_inferred_values_satisfy_torch(name):
    """On every generated input, `_` for all inferable arguments either fails
    with a catalog error or infers values torch accepts, giving the shape the
    catalog says; and leaving the arguments out (by keyword) is the same as `_`."""
    inferable = [a.name for a in CATALOG[name].args if a.infer is not None]
    accepted = 0
    for case in cases(name):
        with_infer = case
        for arg in inferable:
            with_infer = _replaced(with_infer, arg, INFER)
        ours = run_catalog(with_infer)  # a crash here fails the test
        kept = {k: x for k, x in case.values().items() if k not in inferable}
        omitted = run_catalog(Case(name, (), kept, case.inputs, case.call))
        assert (omitted.ok, omitted.shapes) == (ours.ok, ours.shapes), f"{case} without {inferable}: {omitted}"
        if not ours.ok:
            continue
        accepted += 1
        values = bound_args(with_infer).values
        explicit = case
        for arg in inferable:
            explicit = _replaced(explicit, arg, values[arg])
        theirs = run_torch(explicit, "cpu")  # inferred values must work for real, not just on meta
        assert (theirs.ok, theirs.shapes, theirs.params) == (True, ours.shapes, ours.params), (
            f"{with_infer} infers {[values[a] for a in inferable]}: torch {theirs}, catalog {ours}"
        )
    assert accepted >= CONFIGS_PER_LAYER // 3


@pytest.mark.parametrize("layer", ["MaxPool1d", "AvgPool1d"])
def test_ceil_mode_on_a_symbolic_dim_is_exact_or_refused(layer):
    """With ceil_mode, torch drops a last window that would start past the input: for a stride above the
    window, at some sizes only. A symbolic dim there is refused; anywhere else its size holds at every T."""
    from modelspec import SpecError, elaborate_spec
    from modelspec.shapes import Sym, evaluate

    refused = 0
    for k, s, p in itertools.product([1, 2, 3, 4], [1, 2, 3, 5], [0, 1, 2]):
        if 2 * p > k:
            continue
        text = f"model M(x: [N, 3, T=10]) {{\n    p = {layer}({k}, stride={s}, padding={p}, ceil_mode=True)\n}}\n"
        try:
            d = elaborate_spec(text).outputs[0].shape[2].value
        except SpecError as err:
            assert "last window starts past the input" in err.message and err.hint
            refused += 1
            continue
        for t in range(k, 30):
            real = getattr(nn, layer)(k, stride=s, padding=p, ceil_mode=True)(torch.zeros(1, 3, t)).shape[2]
            assert (evaluate(d, {"T": t, "N": 1}) if isinstance(d, Sym) else d) == real, (k, s, p, t, d)
    assert refused > 0
