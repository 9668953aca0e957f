"""Unfold and Fold: sliding blocks of an image out to columns, and columns back into an image.

``Unfold`` takes ``[B, C, H, W]`` (or unbatched ``[C, H, W]``) to ``[B, C * kH * kW, L]``, one column per block,
L the number of blocks; ``Fold`` takes such columns back to ``[B, C, *output_size]``, adding up where blocks
overlap. torch implements both for 2-d images alone, so every size is an int or a tuple of 2.
"""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import Arg, Layer, ShapeProblem, prod, sizes
from .conv import conv_out
from .shuffle import part

BLOCK_DTYPES = ("bool", "float")  # im2col and col2im have no integer kernels, but copy bools


def _blocks(a, spatial, x) -> list:
    """The number of blocks along each spatial dim, as a convolution of the same arguments slides."""
    out = []
    for i, size in enumerate(spatial):
        n = conv_out(size, a.kernel_size[i], a.stride[i], a.padding[i], a.dilation[i])
        if isinstance(n, int) and n < 1:
            raise ShapeProblem(f"has kernel_size={a.kernel_size} (dilation={a.dilation}, padding={a.padding}), "
                               f"which does not fit in {tuple(spatial)} even once, for its input {shape_str(x)}",
                               hint="use a smaller kernel_size or dilation, or pad more")
        out.append(n)
    return out


def unfold_rule(a, x):
    if len(x) not in (3, 4):
        raise ShapeProblem(f"expects a 4-d input [B, C, H, W] or an unbatched 3-d [C, H, W], got {len(x)}-d "
                           f"{shape_str(x)}")
    *lead, c, h, w = x
    blocks = _blocks(a, (h.value, w.value), x)
    return (*lead, c * prod(a.kernel_size), Val(prod(blocks)))


def fold_rule(a, x):
    if len(x) not in (2, 3):
        raise ShapeProblem(f"expects a 3-d input [B, C * kH * kW, L] or an unbatched 2-d [C * kH * kW, L], got "
                           f"{len(x)}-d {shape_str(x)}")
    *lead, cols, length = x
    k = prod(a.kernel_size)
    channels = part(cols.value, k)
    if channels is None:
        raise ShapeProblem(f"has kernel_size={a.kernel_size}, so dim {len(x) - 2} of its input must be a multiple "
                           f"of {k} (C * kH * kW), but its input is {shape_str(x)}")
    blocks = prod(_blocks(a, a.output_size, x))
    if length.value != blocks:
        raise ShapeProblem(f"makes {blocks} blocks of kernel_size={a.kernel_size} in output_size={a.output_size}, "
                           f"so its input's last dim must be {blocks}, but its input is {shape_str(x)}",
                           hint="Fold takes back what Unfold of the same arguments gives for that output size")
    return (*lead, Val(channels), *(Val(s) for s in a.output_size))


def _block_args() -> tuple[Arg, ...]:
    return (
        Arg("kernel_size", sizes(2)),
        Arg("dilation", sizes(2), 1),
        Arg("padding", sizes(2, 0), 0),
        Arg("stride", sizes(2), 1),
    )


LAYERS = [
    Layer("Unfold", _block_args(), unfold_rule,
          "the sliding blocks of an image as columns: [B, C, H, W] -> [B, C * kH * kW, L]",
          ranks=(3, 4), family="fold", dtypes=BLOCK_DTYPES),
    Layer("Fold", (Arg("output_size", sizes(2)), *_block_args()), fold_rule,
          "columns of blocks summed back into an image: [B, C * kH * kW, L] -> [B, C, *output_size]",
          ranks=(2, 3), family="fold", dtypes=BLOCK_DTYPES),
]
