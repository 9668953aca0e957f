"""PixelShuffle, PixelUnshuffle and ChannelShuffle: the input's values, moved between dims."""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import ANY_DTYPE, POSITIVE, Arg, Layer, ShapeProblem


def part(size, k: int):
    """``size // k`` where ``k`` divides ``size`` for every value of its symbols, else None.

    >>> from modelspec.shapes import Sym
    >>> part(12, 4), part(10, 4), part(Sym.var("C") * 4, 2), part(Sym.var("C"), 2)
    (3, None, 2 * C, None)
    """
    q = size // k
    return q if q * k == size else None


def _need_image(x):
    if len(x) < 3:
        raise ShapeProblem(f"expects an input of at least 3 dims ([C, H, W] or [B, C, H, W]), got {len(x)}-d "
                           f"{shape_str(x)}")


def pixel_shuffle_rule(a, x):
    _need_image(x)
    r = a.upscale_factor
    *lead, c, h, w = x
    channels = part(c.value, r * r)
    if channels is None:
        raise ShapeProblem(f"has upscale_factor={r}, so its input's channels must be a multiple of {r}**2 = {r * r}, "
                           f"but its input is {shape_str(x)}",
                           hint=f"give the layer before it a multiple of {r * r} output channels")
    return (*lead, Val(channels), h * r, w * r)


def pixel_unshuffle_rule(a, x):
    _need_image(x)
    r = a.downscale_factor
    *lead, c, h, w = x
    rows, cols = part(h.value, r), part(w.value, r)
    if rows is None or cols is None:
        raise ShapeProblem(f"has downscale_factor={r}, so its input's height and width must be multiples of {r}, "
                           f"but its input is {shape_str(x)}",
                           hint=f"pad or crop the input to a multiple of {r} first (ZeroPad2d, or a slice)")
    return (*lead, c * (r * r), Val(rows), Val(cols))


def channel_shuffle_rule(a, x):
    # torch takes dim 1 as the channels whatever the rank: of an unbatched [C, H, W] it shuffles H
    if len(x) < 3:
        raise ShapeProblem(f"expects an input of at least 3 dims ([B, C, L] or more), got {len(x)}-d {shape_str(x)}")
    if part(x[1].value, a.groups) is None:
        raise ShapeProblem(f"has groups={a.groups}, which must divide its input's channels (dim 1), but its input is "
                           f"{shape_str(x)}", hint=f"give the input a multiple of {a.groups} channels, or use fewer "
                                                   f"groups")
    return tuple(x)


def _pixel_explain(factor, up: bool):
    """``factor``: the bound arguments' factor (upscale or downscale)."""

    def explain(a, x, out):
        r = factor(a)
        by = ("//", "*") if up else ("*", "//")  # what the channels and what height and width go through
        lines = [f"C_out = {x[-3].value} {by[0]} {r}**2 = {out[-3].value}"]
        for i, name in ((-2, "H"), (-1, "W")):
            lines.append(f"{name}_out = {x[i].value} {by[1]} {r} = {out[i].value}")
        return lines

    return explain


LAYERS = [
    Layer(
        "PixelShuffle",
        (Arg("upscale_factor", POSITIVE),),
        pixel_shuffle_rule,
        "moves channels into space: [*, C * r**2, H, W] -> [*, C, H * r, W * r], r = upscale_factor",
        family="shuffle",
        dtypes=ANY_DTYPE,
        rearranges=True,
        explain=_pixel_explain(lambda a: a.upscale_factor, up=True),
    ),
    Layer(
        "PixelUnshuffle",
        (Arg("downscale_factor", POSITIVE),),
        pixel_unshuffle_rule,
        "moves space into channels: [*, C, H * r, W * r] -> [*, C * r**2, H, W], r = downscale_factor",
        family="shuffle",
        dtypes=ANY_DTYPE,
        rearranges=True,
        explain=_pixel_explain(lambda a: a.downscale_factor, up=False),
    ),
    Layer(
        "ChannelShuffle",
        (Arg("groups", POSITIVE),),
        channel_shuffle_rule,
        "interleaves the channels of its groups",
        family="shuffle",
        dtypes=ANY_DTYPE,
        rearranges=True,
    ),
]
