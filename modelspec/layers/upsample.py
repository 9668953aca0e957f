"""Upsample, UpsamplingNearest2d and UpsamplingBilinear2d: F.interpolate to a size, or by a scale.

The input is ``[B, C, *spatial]``, always with its batch: F.interpolate counts ``input.dim() - 2`` spatial dims, so
an unbatched ``[C, H, W]`` is a 1-d ``[B, C, L]`` to it. Which ranks a mode takes is torch's: ``MODES``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..shapes import Val, is_dim, shape_str
from .base import BOOL, Arg, ArgProblem, ArgType, Layer, ShapeProblem, _show, choice, optional

# each mode of F.interpolate and the input ranks it takes; 'lanczos' is left out: it needs antialias=True, which
# Upsample never passes, so torch refuses it in every Upsample
MODES = {
    "nearest": (3, 4, 5),
    "linear": (3,),
    "bilinear": (4,),
    "bicubic": (4,),
    "trilinear": (5,),
    "area": (3, 4, 5),
    "nearest-exact": (3, 4, 5),
}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")  # the modes align_corners means something to
LAYOUTS = {3: "[B, C, L]", 4: "[B, C, H, W]", 5: "[B, C, D, H, W]"}


def scaled(size, factor: float, what: str):
    """``floor(size * factor)``: the output size torch computes from a scale, in double precision.

    A symbolic size gets the same floor wherever the product is exact, as it is for a factor of a small
    numerator over a power of two (every float is one, but 1.1's numerator is 53 bits long):

    >>> from modelspec.shapes import Sym
    >>> scaled(7, 1.5, "x"), scaled(10, 0.7, "x"), scaled(Sym.var("H"), 2.0, "x"), scaled(Sym.var("H"), 0.5, "x")
    (10, 7, 2 * H, H // 2)
    """
    if isinstance(size, int):
        try:
            product = size * factor
        except OverflowError:  # a size past the floats
            product = math.inf
        if not math.isfinite(product):
            raise ShapeProblem(f"{what}={factor} of a size {size} would be more than a float can count",
                               hint=f"use a smaller {what}")
        return math.floor(product)
    f = Fraction(factor)
    if f.numerator < 2 ** 16:  # the double product is exact: its floor is the exact one
        return size * f.numerator if f.denominator == 1 else (size * f.numerator) // f.denominator
    raise ShapeProblem(f"{what}={factor} of the symbolic size {size} would round as floats do, which a symbolic "
                       f"size cannot follow", hint="give that dim a number, or the layer a size= instead")


def _size(v):
    items = v if isinstance(v, (tuple, list)) else (v,)
    for x in items:
        if not is_dim(x) or (isinstance(x, int) and x < 1):
            raise ArgProblem(f"must be a positive integer or a tuple of them, not {_show(v)}")
    return tuple(v) if isinstance(v, (tuple, list)) else v


def _scale(v):
    # torch turns a tuple's items into floats and refuses a list (float() of it)
    items = v if isinstance(v, tuple) else (v,)
    for x in items:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < math.inf:
            raise ArgProblem(f"must be a positive number or a tuple of them, not {_show(v)}")
    return tuple(float(x) for x in v) if isinstance(v, tuple) else float(v)


SIZE = ArgType("a positive integer or a tuple of them", _size)
# torch reads a scale_factor of 0 as none given; refused here, as a scale that makes nothing
SCALE = ArgType("a positive number or a tuple of them", _scale)


def _upsample_check(a):
    if (a.size is None) == (a.scale_factor is None):
        raise ArgProblem("takes one of size or scale_factor: " + ("not both" if a.size is not None else "give one"))
    mode = _mode(a)
    if getattr(a, "align_corners", None) is not None and mode not in INTERPOLATING:
        raise ArgProblem(f"align_corners applies to the interpolating modes ({', '.join(INTERPOLATING)}), not to "
                         f"mode={mode!r}: leave it None")
    if getattr(a, "recompute_scale_factor", None) and a.size is not None:
        raise ArgProblem("recompute_scale_factor=True recomputes a scale_factor, and means nothing with a size")


def _mode(a) -> str:
    return getattr(a, "mode", "nearest")  # the Upsampling*2d classes have no mode argument, nor align_corners


def upsample_rule(mode: str | None = None):
    """The rule of an interpolation in ``mode``, or in the ``mode`` argument where None."""

    def rule(a, x):
        m = mode or _mode(a)
        ranks = MODES[m]
        if len(x) not in ranks:
            others = [k for k, r in MODES.items() if len(x) in r and k in INTERPOLATING]
            unbatched = "F.interpolate takes no unbatched input: add the batch dim first, x.unsqueeze(0)"
            if m in INTERPOLATING and others:
                hint = f"mode={others[0]!r} interpolates a {len(x)}-d {LAYOUTS[len(x)]}; an unbatched input needs " \
                       f"its batch dim first, x.unsqueeze(0)"
            else:
                hint = unbatched if len(x) + 1 in ranks else None
            want = " or ".join(f"{r}-d {LAYOUTS[r]}" for r in ranks)
            raise ShapeProblem(f"with mode={m!r} expects a {want} input (with its batch), got {len(x)}-d "
                               f"{shape_str(x)}", hint=hint)
        spatial = x[2:]
        given, arg = (a.size, "size") if a.size is not None else (a.scale_factor, "scale_factor")
        if isinstance(given, tuple) and len(given) != len(spatial):
            raise ShapeProblem(f"has {arg}={given} for {len(given)} dims, but its input {shape_str(x)} has "
                               f"{len(spatial)} spatial dims", hint=f"give {arg} one value, or {len(spatial)}")
        each = given if isinstance(given, tuple) else (given,) * len(spatial)
        if a.size is not None:
            return (*x[:2], *(Val(s) for s in each))
        out = []
        for i, (d, s) in enumerate(zip(spatial, each)):
            o = scaled(d.value, s, "scale_factor")
            if isinstance(o, int) and o < 1:
                raise ShapeProblem(f"has scale_factor={a.scale_factor}, which makes dim {i + 2} of its input "
                                   f"{shape_str(x)} floor({d.value} * {s}) = {o} long",
                                   hint="use a larger scale_factor, or give a size")
            out.append(d if s == 1 else Val(o))
        return (*x[:2], *out)

    return rule


def _upsampling(name: str, mode: str | None, doc: str, *args: Arg) -> Layer:
    return Layer(
        name,
        (Arg("size", optional(SIZE), None), Arg("scale_factor", optional(SCALE), None), *args),
        upsample_rule(mode),
        doc,
        ranks=MODES[mode] if mode else (3, 4, 5),
        check=_upsample_check,
        family="upsample",
    )


LAYERS = [
    _upsampling(
        "Upsample",
        None,
        "resizes the spatial dims to size, or by scale_factor (floored), interpolating by mode",
        Arg("mode", choice(*MODES), "nearest"),
        Arg("align_corners", optional(BOOL), None),
        Arg("recompute_scale_factor", optional(BOOL), None),
    ),
    # torch's forward is Upsample's in a fixed mode: nearest takes a 3-d or 5-d input too, despite the name
    _upsampling("UpsamplingNearest2d", "nearest", "Upsample with mode='nearest'"),
    _upsampling("UpsamplingBilinear2d", "bilinear", "Upsample with mode='bilinear' and align_corners=True"),
]
