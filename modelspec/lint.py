"""Warnings that teach: what a spec may say, and torch would run, but its author most likely does not mean.

Each rule reads what elaboration already knows (a layer's bound arguments, its
input `TensorInfo`s, which symbols are the batch) and returns the warnings it
finds as ``(name, message, hint)``; the elaborator notes them where they
occur (`Elaboration.warn`), so each is located at its own line. The names are
`modelspec.errors.WARNINGS`. Torch-free, like every stage before build.

    >>> from modelspec import elaborate_spec
    >>> graph = elaborate_spec("model M(x: [B, 10]) { sm = Softmax()\\n forward(x) { return sm(x) } }")
    >>> [w.name for w in graph.warnings]
    ['softmax-dim']
"""

from __future__ import annotations

from .shapes import Sym, shape_str

SOFTMAXES = ("Softmax", "LogSoftmax", "Softmin")
SOFTMAX_OPS = ("softmax", "log_softmax")
# the layers and functions whose output is a feature map [B, C, *spatial], channels first
MAP_FAMILIES = ("conv", "pool")
MAP_OPS = {f"{kind}_pool{n}d": n for kind in ("max", "avg", "adaptive_avg", "adaptive_max") for n in (1, 2, 3)}
# what a batch is called: the first input's leading symbol is the batch only by one of these names (a
# sequence-first [T, B, C] input leads with its time)
BATCH_NAMES = ("B", "N", "batch", "batch_size", "bs", "BATCH", "BS")


def is_batch(dim, batch: set) -> bool:
    """Whether a dim is the batch: the first input's leading symbol, named as a batch is (``B``, ``N``)."""
    v = getattr(dim, "value", dim)
    return isinstance(v, Sym) and str(v) in batch and str(v) in BATCH_NAMES


def input_feature_map(name: str, shape: tuple) -> str | None:
    """A model input of 4 or 5 dims is an image (or a volume), [B, C, H, W]: as a conv's output is, it is no
    Linear's input until flattened."""
    return f"the image input `{name}`" if len(shape) in (4, 5) else None


def feature_map(layer, label: str, inputs: list, shape: tuple) -> str | None:
    """Whose feature map a layer's output is: a conv's or pool's own, or its input's where the layer keeps
    the shape (an activation, a norm, dropout after the conv)."""
    if layer.family in MAP_FAMILIES and len(shape) >= 3:
        return f"the feature map of {label}"
    x = inputs[0] if inputs else None
    if x is not None and x.feature_map is not None and tuple(x.shape) == shape and layer.family != "linear":
        return x.feature_map
    return None


def op_feature_map(op_name: str, spelled: str, tensors: list, shape: tuple) -> str | None:
    """`feature_map` for a tensor operation: F.conv2d's and F.max_pool2d's own, or carried through an
    operation that keeps the shape and does not move the values (F.relu, +), unlike permute or view."""
    from .ops import SAME_VALUES

    if op_name in MAP_OPS and len(shape) >= 3:
        return f"the feature map of {spelled}(...)"
    if op_name in SAME_VALUES:
        return None
    return next((t.feature_map for t in tensors if t.feature_map is not None and tuple(t.shape) == shape), None)


def layer_warnings(layer, bound, inputs: list, label: str, batch: set) -> list[tuple[str, str, str]]:
    """The warnings a call of ``layer`` (bound arguments ``bound``) on ``inputs`` earns."""
    found = []
    x = inputs[0] if inputs else None
    if x is None:
        return found
    if layer.name in SOFTMAXES:
        found += softmax_warnings(layer.name, bound.values.get("dim"), x, label, batch, f"{layer.name}(dim=...)")
    if layer.name == "Linear" and x.feature_map is not None and len(x.shape) >= 3:
        out_features = bound.values["out_features"]
        inferred = "in_features" in getattr(bound, "inferred", {})
        found.append(("forgotten-flatten",
                      f"{label} is given {shape_str(x.shape)}, {x.feature_map}, and a Linear "
                      f"works on the last dim only: in_features={_dim(x.shape[-1])}"
                      f"{' is inferred' if inferred else ''}, and the output is "
                      f"{shape_str(tuple(x.shape[:-1]) + (out_features,))}, not one vector per sample",
                      flatten_hint(x, out_features)))
    unbatched = unbatched_problem(layer, [t.shape for t in inputs], batch)
    if unbatched is not None and layer.family == "pool":
        found.append(("unbatched-input", f"{label} {unbatched}", unbatched_fix(x.shape)))
    return found


def op_warnings(op_name: str, spelled: str, args: list, kwargs: dict, batch: set,
                method: bool = False) -> list[tuple[str, str, str]]:
    """The warnings a call of the tensor operation ``op_name`` earns (its arguments: TensorInfos or Vals;
    ``method``: called as x.softmax(...), whose ``args`` start with x)."""
    x = args[0] if args else None
    if x is None or not hasattr(x, "shape"):
        return []
    if op_name in MAP_OPS and len(x.shape) == MAP_OPS[op_name] + 1 and is_batch(x.shape[0], batch):
        return [("unbatched-input", f"{spelled}(...) takes {shape_str(x.shape)} as one image without a batch dim "
                 f"(torch accepts those): its first dim {_dim(x.shape[0])}, the batch, is read as the channels",
                 unbatched_fix(x.shape))]
    if op_name not in SOFTMAX_OPS:
        return []
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    dim = getattr(dim, "value", dim)
    if not isinstance(dim, int) or isinstance(dim, bool):
        return []
    call = f"{spelled}(dim=...)" if method else f"{spelled}(x, dim=...)"
    return softmax_warnings(spelled, dim, x, f"{spelled}(...)", batch, call)


def softmax_warnings(name: str, dim, x, label: str, batch: set, spelled: str) -> list[tuple[str, str, str]]:
    rank = len(x.shape)
    classes = "the last dim" if rank != 2 else "the classes"
    want = spelled.replace("...", "-1" if rank != 2 else "1")
    if dim is None:
        implicit = 0 if rank in (0, 1, 3) else 1  # what torch picks, and warns it picks
        over = " (the batch)" if rank and implicit == 0 and is_batch(x.shape[0], batch) else ""
        return [("softmax-dim",
                 f"{label} has no dim: for a {rank}-d input {shape_str(x.shape)} torch picks dim={implicit}{over} "
                 "itself, and warns that this implicit choice is deprecated",
                 f"say which dim sums to 1: {want} for {classes}")]
    if rank >= 2 and dim in (0, -rank) and is_batch(x.shape[0], batch):
        return [("softmax-dim",
                 f"{label} normalises over dim {dim}, the batch {_dim(x.shape[0])} of {shape_str(x.shape)}: the "
                 "samples of each column sum to 1, not each sample's scores",
                 f"use {want} for {classes}")]
    return []


def flattens_to(x, size) -> bool:
    """Whether ``size`` is what ``x`` would give each sample flattened: Linear(784, ...) for [B, 1, 28, 28]."""
    values = [getattr(d, "value", d) for d in x.shape[1:]]
    if not all(isinstance(v, int) for v in values):
        return False
    n = 1
    for v in values:
        n *= v
    return n == size


def flatten_hint(x, out_features) -> str:
    """The fix for a Linear given a feature map: flatten it first, and what in_features then is."""
    flat = _product(x.shape[1:])
    return (f"did you forget Flatten()? flatten it first, x = torch.flatten(x, 1) or a child flatten = Flatten(), "
            f"to [{_dim(x.shape[0])}, {flat}]; then Linear({flat}, {out_features}), or Linear(_, {out_features}), "
            "fits")


def unbatched_problem(layer, shapes, batch: set) -> str | None:
    """What goes wrong when a conv or pool layer is given an input without its batch dim whose first dim is
    the batch (``[B, 28, 28]`` for Conv2d): torch takes it for one image with B channels. None: no such input."""
    if layer.family not in MAP_FAMILIES or not layer.ranks or not shapes or len(layer.ranks) != 2:
        return None
    x = shapes[0]
    if len(x) != min(layer.ranks) or not x or not is_batch(x[0], batch):
        return None
    return (f"takes {shape_str(x)} as one image without a batch dim (torch accepts those): its first dim "
            f"{_dim(x[0])}, the batch, is read as the channels")


def unbatched_fix(x) -> str:
    spatial = ", ".join(_dim(d) for d in x[1:])
    return (f"give the input its channel dim: declare x: [{_dim(x[0])}, 1, {spatial}], or write x = x.unsqueeze(1) "
            "in forward")


def _dim(d) -> str:
    return str(getattr(d, "value", d))


def _product(dims) -> str:
    """The product of dims, as a number where they are all numbers, else as the dims multiplied."""
    values = [getattr(d, "value", d) for d in dims]
    if all(isinstance(v, int) for v in values):
        n = 1
        for v in values:
            n *= v
        return str(n)
    return " * ".join(str(v) for v in values)
