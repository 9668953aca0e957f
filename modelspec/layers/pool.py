"""MaxPool, AvgPool, LPPool, FractionalMaxPool, AdaptiveAvgPool, AdaptiveMaxPool and MaxUnpool, 1-d to 3-d.

MaxUnpool undoes a MaxPool called with ``return_indices=True``: ``out, indices = pool(x)``, then
``unpool(out, indices)`` (with ``output_size=`` where the pool floored an odd size away).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..shapes import Val, is_dim, shape_str
from .activation import NONZERO_FLOAT
from .base import (ANY_DTYPE, BOOL, FLOAT_ONLY, NUMERIC, POSITIVE, Arg, ArgProblem, ArgType, Layer, ShapeProblem, _show,
                   concrete, dim, float_out, keep_dtype, need_rank, optional, output_size, sizes, with_indices)
from .upsample import scaled


def pool_out(size, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, symbolic-safe."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and isinstance(out, int) and isinstance(size, int) and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or its left padding
    elif ceil_mode and not isinstance(size, int) and d * (k - 1) + 1 - p <= s - 1:
        # that correction happens where rounding up reaches as far as the window past the padding: for some
        # sizes, not others, so no one expression gives the output
        raise ShapeProblem(f"with ceil_mode=True, stride {s} and a window of {d * (k - 1) + 1} (padding {p}), its "
                           f"last window starts past the input for some values of {size} and not others",
                           hint="use ceil_mode=False, a stride no larger than the window, or a fixed size for this dim")
    return out


def _stride(a):
    return a.stride if a.stride is not None else a.kernel_size


def _padding(a, n):
    return getattr(a, "padding", (0,) * n)  # LPPool pads nothing


def _check_pad(a):
    # torch compares padding with the kernel_size itself, not the dilated
    # window: MaxPool1d(2, padding=2, dilation=3) is refused
    for k, p in zip(a.kernel_size, a.padding):
        if p * 2 > k:
            raise ArgProblem(f"padding={a.padding} must be at most half the kernel_size={a.kernel_size}")


def _check_covers_kernel(a, x, n):
    """avg_pool3d refuses an input smaller than the kernel in any dim, padding
    or not (torch's pool3d_shape_check with check_input_size)."""
    spatial = [d.value for d in x[len(x) - n :]]
    if any(isinstance(s, int) and s < k for s, k in zip(spatial, a.kernel_size)):
        raise ShapeProblem(
            f"the kernel {a.kernel_size} is larger than its input {shape_str(x)} (before padding, which "
            f"{n}-d average pooling does not count here)"
        )


def pool_rule(n, dilated, covers_kernel=False):
    def rule(a, x):
        need_rank(x, (n + 1, n + 2), "")
        if covers_kernel:
            _check_covers_kernel(a, x, n)
        stride = _stride(a)
        dil = a.dilation if dilated else (1,) * n
        out = []
        pad = _padding(a, n)
        for i, size in enumerate(x[len(x) - n :]):
            o = pool_out(size.value, a.kernel_size[i], stride[i], pad[i], dil[i], a.ceil_mode)
            if isinstance(o, int) and o < 1:
                raise ShapeProblem(f"the kernel {a.kernel_size} is larger than its input {shape_str(x)}")
            out.append(Val(o))
        shape = (*x[: len(x) - n], *out)
        return [shape, shape] if getattr(a, "return_indices", False) else shape

    return rule


def pool_explain(n, dilated):
    def explain(a, x, out):
        if isinstance(out, list):
            out = out[0]
        stride, pad = _stride(a), _padding(a, n)
        lines = []
        for i, name in enumerate("DHW"[-n:] if n > 1 else "L"):
            d = a.dilation[i] if dilated else 1
            size, o = x[len(x) - n + i].value, out[len(out) - n + i].value
            rounding = "ceil" if a.ceil_mode else "floor"
            lines.append(
                f"{name}_out = {rounding}(({size} + 2*{pad[i]} - {d}*({a.kernel_size[i]}-1) - 1)"
                f" / {stride[i]}) + 1 = {o}"
            )
        return lines

    return explain


def adaptive_rule(n):
    def rule(a, x):
        need_rank(x, (n + 1, n + 2), "")
        spatial = x[len(x) - n :]
        out = tuple(s if o is None else Val(o) for s, o in zip(spatial, a.output_size))
        shape = (*x[: len(x) - n], *out)
        return [shape, shape] if getattr(a, "return_indices", False) else shape

    return rule


def _max_pool(n):
    return Layer(
        f"MaxPool{n}d",
        (
            Arg("kernel_size", sizes(n)),
            Arg("stride", optional(sizes(n)), None),
            Arg("padding", sizes(n, 0), 0),
            Arg("dilation", sizes(n), 1),
            Arg("return_indices", BOOL, False),
            Arg("ceil_mode", BOOL, False),
        ),
        pool_rule(n, True),
        f"{n}-d max pooling: the largest value in each window",
        ranks=(n + 1, n + 2),
        check=_check_pad,
        family="pool",
        explain=pool_explain(n, True),
        # torch's max_pool1d has no integer kernel; with indices it goes through max_pool2d's, which has
        dtypes=(lambda a: NUMERIC if a.return_indices else FLOAT_ONLY) if n == 1 else NUMERIC,
        out_dtype=with_indices,
    )


def _avg_pool(n):
    args = [
        Arg("kernel_size", sizes(n)),
        Arg("stride", optional(sizes(n)), None),
        Arg("padding", sizes(n, 0), 0),
        Arg("ceil_mode", BOOL, False),
        Arg("count_include_pad", BOOL, True),
    ]
    if n > 1:
        args.append(Arg("divisor_override", optional(POSITIVE), None))
    return Layer(
        f"AvgPool{n}d",
        tuple(args),
        pool_rule(n, False, covers_kernel=n == 3),
        f"{n}-d average pooling: the mean of each window",
        ranks=(n + 1, n + 2),
        check=_check_pad,
        family="pool",
        explain=pool_explain(n, False),
        dtypes=NUMERIC,  # a long input gives a long mean, rounded toward zero
    )


def _adaptive(kind, n):
    # only the 2-d and 3-d classes read None as "keep the input size"; the 1-d
    # functions take ints alone
    args = [Arg("output_size", output_size(n) if n > 1 else sizes(1))]
    if kind == "Max":
        args.append(Arg("return_indices", BOOL, False))
    return Layer(
        f"Adaptive{kind}Pool{n}d",
        tuple(args),
        adaptive_rule(n),
        f"{n}-d adaptive {kind.lower()} pooling to a fixed output size",
        ranks=(n + 1, n + 2),
        family="pool",
        out_dtype=with_indices if kind == "Max" else keep_dtype,
    )


def _one_kernel(v):
    if isinstance(v, (tuple, list)):
        raise ArgProblem(f"must be a positive integer, not {_show(v)}: torch's lp_pool1d multiplies by it")
    return sizes(1)(v)


ONE_KERNEL = ArgType("a positive integer", _one_kernel)  # LPPool1d's kernel_size; the rules read a tuple of 1


def _lp_pool(n):
    return Layer(
        f"LPPool{n}d",
        (
            Arg("norm_type", NONZERO_FLOAT),  # torch divides by it
            Arg("kernel_size", ONE_KERNEL if n == 1 else sizes(n)),
            Arg("stride", optional(sizes(n)), None),
            Arg("ceil_mode", BOOL, False),
        ),
        pool_rule(n, False, covers_kernel=n == 3),  # an average pooling of x ** norm_type, without padding
        f"{n}-d power-average pooling: the norm_type-norm of each window",
        ranks=(n + 1, n + 2),
        family="pool",
        explain=pool_explain(n, False),
        dtypes=ANY_DTYPE,  # x ** norm_type (a float, whatever the user gave), averaged, then ** (1 / norm_type)
        out_dtype=float_out,
    )


# ---------------------------------------------------------------- FractionalMaxPool
def _ratios(n: int) -> ArgType:
    word = f"a number between 0 and 1 (neither included) or a tuple of {n}"

    def check(v):
        items = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
        if len(items) != n or any(isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < 1
                                  for r in items):
            raise ArgProblem(f"must be {word}, not {_show(v)}")
        return items

    return ArgType(word, check)


def _fractional_check(a):
    if (a.output_size is None) == (a.output_ratio is None):
        raise ArgProblem("takes one of output_size or output_ratio: "
                         + ("not both" if a.output_size is not None else "give one"))


def fractional_rule(n):
    def rule(a, x):
        need_rank(x, (n + 1, n + 2), "")
        lead = len(x) - n
        out = []
        for i, d in enumerate(x[lead:]):
            size, k = d.value, a.kernel_size[i]
            if a.output_size is not None:
                o = a.output_size[i]
            else:
                o = scaled(size, a.output_ratio[i], "output_ratio")  # torch's int(size * ratio)
                if isinstance(o, int) and o < 1:
                    raise ShapeProblem(f"has output_ratio={a.output_ratio}, which leaves int({size} * "
                                       f"{a.output_ratio[i]}) = 0 of dim {lead + i} of its input {shape_str(x)}",
                                       hint="use a larger output_ratio, or give an output_size")
            # o windows at rising steps need o + k - 1 positions; torch's 3-d kernel wants one more
            need = o + k - 1 + (n == 3) if isinstance(o, int) else None
            if need is not None and isinstance(size, int) and need > size:
                raise ShapeProblem(f"cannot pool dim {lead + i} of its input {shape_str(x)} to {o} windows of "
                                   f"kernel_size {k}: torch's {n}-d kernel needs {need} positions there, not {size}",
                                   hint="use a smaller kernel_size or output")
            out.append(Val(o))
        shape = (*x[:lead], *out)
        return [shape, shape] if a.return_indices else shape

    return rule


def _fractional(n):
    return Layer(
        f"FractionalMaxPool{n}d",
        (
            Arg("kernel_size", sizes(n)),
            Arg("output_size", optional(sizes(n)), None),
            Arg("output_ratio", optional(_ratios(n)), None),
            Arg("return_indices", BOOL, False),
        ),
        fractional_rule(n),
        f"{n}-d max pooling over windows at random steps, to output_size (or output_ratio of the input, floored)",
        ranks=(n + 1, n + 2),
        check=_fractional_check,
        family="pool",
        out_dtype=with_indices,
    )


# ---------------------------------------------------------------- MaxUnpool
@dataclass(frozen=True)
class Unpooling(Layer):
    """A layer whose second input holds MaxPool's indices, which are long whatever the values (its first input)
    are: ``dtypes`` are those of the values."""

    def check_dtypes(self, a, dtypes, shapes=()) -> None:
        values, indices = dtypes
        super().check_dtypes(a, [values])
        if indices != "long":
            raise ShapeProblem(f"takes long indices as its second input, but they are a {indices} tensor",
                               hint="pass the indices of a MaxPool with return_indices=True: out, indices = pool(x)")


def _unpool_size(n: int) -> ArgType:
    word = f"a tuple of {n} sizes (or {n + 2}, whose first two are dropped)"

    def check(v):
        if not isinstance(v, (tuple, list)) or len(v) not in (n, n + 2) or not all(is_dim(d) for d in v):
            raise ArgProblem(f"must be {word}, not {_show(v)}")
        return tuple(v)

    return ArgType(word, check)


def unpool_rule(n):
    def rule(a, x, indices):
        need_rank(x, (n + 1, n + 2), "")
        if len(indices) != len(x) or any(dim(indices, i) != dim(x, i) for i in range(len(x))):
            raise ShapeProblem(f"expects indices of its input's shape {shape_str(x)}, as MaxPool returns them, got "
                               f"{shape_str(indices)}", hint="pass both results of one MaxPool: out, indices = pool(x)")
        stride, lead = _stride(a), len(x) - n
        # torch's _unpool_output_size: the smallest input a MaxPool of these arguments pools to this size
        default = [(d.value - 1) * stride[i] - 2 * a.padding[i] + a.kernel_size[i] for i, d in enumerate(x[lead:])]
        wanted = a.values.get("output_size")
        try:  # a symbolic size would have to follow the input at each example size, as forward's arguments do not
            out = default if wanted is None else [concrete(o, "output_size") for o in wanted[-n:]]
        except ShapeProblem as exc:
            raise ShapeProblem(str(exc), hint="give the pooled input fixed sizes ([B, 3, 28, 28]), or leave "
                                              "output_size out") from None
        for i, (o, d) in enumerate(zip(out, default)):
            if wanted is not None and isinstance(d, int) and not d - stride[i] < o < d + stride[i]:
                raise ShapeProblem(f"has output_size={wanted}, but with kernel_size={a.kernel_size}, stride={stride} "
                                   f"and padding={a.padding} dim {lead + i} of its output can only be "
                                   f"{d - stride[i] + 1} to {d + stride[i] - 1} for its input {shape_str(x)}",
                                   hint="give the size of the MaxPool's input: output_size=(...) of it")
            if isinstance(o, int) and o < 1:
                raise ShapeProblem(f"would leave {o} elements in dim {lead + i} of its output from its input "
                                   f"{shape_str(x)}: the padding={a.padding} is larger than what it unpools",
                                   hint="use the MaxPool's kernel_size, stride and padding")
        return (*x[:lead], *(Val(o) for o in out))

    return rule


def _max_unpool(n):
    return Unpooling(
        f"MaxUnpool{n}d",
        (
            Arg("kernel_size", sizes(n)),
            Arg("stride", optional(sizes(n)), None),
            Arg("padding", sizes(n, 0), 0),
        ),
        unpool_rule(n),
        f"{n}-d inverse of MaxPool: each value back where its index says, zeros elsewhere; takes (input, indices)",
        ranks=(n + 1, n + 2),
        n_inputs=2,
        family="pool",
        # forward's output_size, for an input size the pool floored: a tuple known before forward runs (a literal,
        # or the fixed shape of the pooled input: output_size=x.shape)
        call_args=(Arg("output_size", optional(_unpool_size(n)), None, kw_only=True),),
    )


LAYERS = (
    [_max_pool(n) for n in (1, 2, 3)]
    + [_avg_pool(n) for n in (1, 2, 3)]
    + [_lp_pool(n) for n in (1, 2, 3)]
    + [_fractional(n) for n in (2, 3)]
    + [_adaptive("Avg", n) for n in (1, 2, 3)]
    + [_adaptive("Max", n) for n in (1, 2, 3)]
    + [_max_unpool(n) for n in (1, 2, 3)]
)
