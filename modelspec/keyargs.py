"""A layer's key arguments in a few characters: ``3→64, k7 s2 p3`` for ``Conv2d(3, 64, 7, stride=2, padding=3)``.

What Netron and Keras' ``plot_model`` put on a node, said one way for every
view that shows it: the diagrams' nodes and the summary's Kernel column. The
sizes a layer maps between come first (``in→out``), then the arguments of
`KEY_ARGS`, in its order; each goes unsaid at its usual value (the
layer's own default, as torch's repr leaves it out: a Conv2d's stride 1, but
a pool's stride 1, which is not its default), and every argument the table
does not name (bias, eps, inplace, momentum, ...) is left to the printed code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .layers import CATALOG

# the sizes a layer maps between, said `in→out`: the first of these whose arguments the layer has
FLOWS = (
    ("in_channels", "out_channels"),
    ("in_features", "out_features"),
    ("in1_features", "in2_features", "out_features"),  # Bilinear: 8, 16→32
    ("input_size", "hidden_size"),  # RNN, LSTM, GRU and their cells
    ("num_embeddings", "embedding_dim"),  # Embedding, EmbeddingBag: a lookup table, as a one-hot Linear would be
)


def dims(v) -> str:
    """A shape or a size, every side said: ``(1, 28, 28)`` -> ``1x28x28``, ``(64,)`` -> ``64``.

    >>> dims((5, 5)), dims(7), dims(2.0)
    ('5x5', '7', '2')
    """
    return "x".join(_num(x) for x in v) if isinstance(v, (tuple, list)) else _num(v)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)  # a scale factor of 2.0 is said 2


def sides(v) -> str:
    """A kernel, stride or padding, said once if its sides are the same: ``(3, 3)`` -> ``3``, ``(1, 2)`` -> ``1x2``."""
    return dims(_one(v))


def _one(v):
    """A tuple whose items are all the same, as that item: how torch's arguments are usually given."""
    if isinstance(v, (tuple, list)) and v and all(x == v[0] for x in v):
        return v[0]
    return v


def _padding(v) -> str:
    """``p1``; padding="same" or "valid" as torch spells it."""
    return f"padding={v}" if isinstance(v, str) else f"p{sides(v)}"


def _many(noun: str) -> Callable:
    """``2 layers``, ``1 head``: a count of ``noun``."""
    return lambda n: f"{n} {noun}{'s' * (n != 1)}"


def _module(m) -> str:
    """A module given as an argument (TransformerEncoder's encoder_layer): its type and its own key arguments."""
    return f"{m.type_name}({key_args(m.type_name, m.args)})"


@dataclass(frozen=True)
class Say:
    """How one argument is said: ``form`` with its text in place of ``{}``, unless its value is a quiet one."""

    arg: str
    form: str = "{}"
    text: Callable = str  # the value -> its text
    quiet: tuple | None = None  # the values not worth saying; None: None and the layer's default
    short: bool = False  # a letter and a number, run together with its short neighbours: "k3 s2 p1"


KEY_ARGS: tuple[Say, ...] = (
    Say("num_features"),  # BatchNorm2d 64
    Say("num_channels"),  # GroupNorm 64, 32 groups
    Say("normalized_shape", text=dims),  # LayerNorm 64
    Say("embed_dim"),
    Say("d_model"),
    Say("encoder_layer", text=_module),
    Say("decoder_layer", text=_module),
    Say("num_groups", text=_many("group")),
    Say("num_heads", text=_many("head")),
    Say("nhead", text=_many("head")),
    Say("dim_feedforward", "ff {}"),
    Say("num_layers", text=_many("layer"), quiet=(None, 1)),  # TransformerEncoder's has no default: 1 goes unsaid
    Say("num_encoder_layers", text=_many("encoder layer")),
    Say("num_decoder_layers", text=_many("decoder layer")),
    Say("bidirectional", "bidirectional"),
    Say("proj_size", "proj {}"),
    Say("nonlinearity"),  # RNN relu
    Say("kernel_size", "k{}", sides, short=True),
    Say("stride", "s{}", sides, short=True),
    Say("padding", text=_padding, short=True),
    Say("output_padding", "op{}", sides, short=True),
    Say("dilation", "d{}", sides, short=True),
    Say("groups", "g{}", short=True),
    Say("output_size", "→{}", dims),  # AdaptiveAvgPool2d →1x1
    Say("scale_factor", "×{}", sides),  # Upsample ×2
    Say("upscale_factor", "×{}"),
    Say("downscale_factor", "÷{}"),
    Say("mode"),  # Upsample bilinear, EmbeddingBag sum
    Say("p", "p={}", quiet=(None,)),  # Dropout p=0.5: said even at its default, the one number it has
    Say("dim", "dim={}"),  # Softmax dim=1
    Say("start_dim", "start_dim={}"),
    Say("end_dim", "end_dim={}"),
    Say("unflattened_size", "→{}", dims),
    Say("padding_idx", "padding_idx={}"),
    Say("negative_slope", "slope {}"),
    Say("approximate"),  # GELU tanh
)


def key_args(type_name: str, args: dict) -> str:
    """A layer's key arguments, from its type and bound constructor arguments (`ModuleNode.args`).

    >>> key_args("Conv2d", {"in_channels": 3, "out_channels": 64, "kernel_size": (7, 7), "stride": (2, 2),
    ...                     "padding": (3, 3), "dilation": (1, 1), "groups": 1, "bias": False})
    '3→64, k7 s2 p3'
    >>> key_args("LSTM", {"input_size": 128, "hidden_size": 256, "num_layers": 2, "bidirectional": True})
    '128→256, 2 layers, bidirectional'
    >>> key_args("MaxPool2d", {"kernel_size": (3, 3), "stride": (1, 1), "padding": (1, 1)})  # not its default
    'k3 s1 p1'
    """
    layer = CATALOG.get(type_name)
    defaults = {a.name: a.default for a in layer.args} if layer is not None else {}
    pieces: list[str] = []
    flow = next((f for f in FLOWS if all(a in args for a in f)), None)
    if flow is not None:
        pieces.append(", ".join(str(args[a]) for a in flow[:-1]) + "→" + str(args[flow[-1]]))
    last_short = False
    for say in KEY_ARGS:
        value = args.get(say.arg)
        quiet = say.quiet if say.quiet is not None else (None, _one(defaults.get(say.arg)))
        if say.arg not in args or _one(value) in quiet:
            continue
        text = say.form.format(say.text(value))
        if say.short and last_short:
            pieces[-1] += " " + text
        else:
            pieces.append(text)
        last_short = say.short
    return ", ".join(pieces)


def kernel_text(args: dict) -> str | None:
    """The kernel's sides, every one said (``5x5``), as the summary's Kernel column shows them; None without one.

    >>> kernel_text({"kernel_size": (5, 5)}), kernel_text({"in_features": 4})
    ('5x5', None)
    """
    k = args.get("kernel_size")
    return None if k is None else dims(k)
