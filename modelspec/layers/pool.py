"""MaxPool, AvgPool, AdaptiveAvgPool and AdaptiveMaxPool, 1-d to 3-d."""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import (BOOL, FLOAT_ONLY, NUMERIC, POSITIVE, Arg, ArgProblem, Layer, ShapeProblem, need_rank, optional,
                   keep_dtype, output_size, sizes, with_indices)


def pool_out(size, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, symbolic-safe."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and isinstance(out, int) and isinstance(size, int) and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _stride(a):
    return a.stride if a.stride is not None else a.kernel_size


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
        for i, size in enumerate(x[len(x) - n :]):
            o = pool_out(size.value, a.kernel_size[i], stride[i], a.padding[i], dil[i], a.ceil_mode)
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
        stride = _stride(a)
        lines = []
        for i, name in enumerate("DHW"[-n:] if n > 1 else "L"):
            d = a.dilation[i] if dilated else 1
            size, o = x[len(x) - n + i].value, out[len(out) - n + i].value
            rounding = "ceil" if a.ceil_mode else "floor"
            lines.append(
                f"{name}_out = {rounding}(({size} + 2*{a.padding[i]} - {d}*({a.kernel_size[i]}-1) - 1)"
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


LAYERS = (
    [_max_pool(n) for n in (1, 2, 3)]
    + [_avg_pool(n) for n in (1, 2, 3)]
    + [_adaptive("Avg", n) for n in (1, 2, 3)]
    + [_adaptive("Max", n) for n in (1, 2, 3)]
)
