"""Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import (
    BOOL,
    POSITIVE,
    Arg,
    ArgProblem,
    Layer,
    ShapeProblem,
    channel_dim,
    choice,
    conv_padding,
    need_rank,
    prod,
    sizes,
)

PADDING_MODES = choice("zeros", "reflect", "replicate", "circular")


def _in_channels(n):
    def infer(x):
        need_rank(x, (n + 1, n + 2), "")
        return x[channel_dim(x, n + 2)]

    return infer


def _check_groups(a):
    g = a.groups
    if a.in_channels % g or a.out_channels % g:
        raise ArgProblem(
            f"groups={g} must divide both in_channels={a.in_channels} and out_channels={a.out_channels}"
        )


def _conv_check(a):
    _check_groups(a)
    if a.padding == "same" and any(s != 1 for s in a.stride):
        raise ArgProblem("padding='same' needs stride=1 (torch does not support it for strided convolutions)")


def _spatial(x, n):
    return x[len(x) - n :]


def conv_out(size, k, s, p, d):
    """(size + 2p - d(k-1) - 1) // s + 1"""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _check_positive(out, x, what):
    for o in out:
        if isinstance(o, int) and o < 1:
            raise ShapeProblem(f"{what} is larger than its input {shape_str(x)} (the output would be empty)")


def _side_pads(a, i) -> tuple[int, int]:
    """(left, right) padding of spatial dim ``i`` as torch applies it.

    'same' pads d*(k-1) in all, the odd one on the right, like torch's _ConvNd.
    """
    if a.padding == "valid":
        return 0, 0
    if a.padding == "same":
        total = a.dilation[i] * (a.kernel_size[i] - 1)
        return total // 2, total - total // 2
    return a.padding[i], a.padding[i]


def _check_padding_mode(a, x, i, size):
    """Reflect and circular padding copy the input itself, so torch's F.pad
    needs a reflect pad smaller than the dim and a circular one at most the dim
    (it cannot wrap around twice)."""
    if a.padding_mode not in ("reflect", "circular") or not isinstance(size, int):
        return
    pad = max(_side_pads(a, i))
    if pad > size or (a.padding_mode == "reflect" and pad == size):
        limit = "smaller than" if a.padding_mode == "reflect" else "at most"
        raise ShapeProblem(
            f"padding_mode={a.padding_mode!r} pads {pad} on a side of a dim of size {size} in {shape_str(x)}; "
            f"the padding must be {limit} the input size"
        )


def conv_rule(n):
    def rule(a, x):
        need_rank(x, (n + 1, n + 2), "")
        c = channel_dim(x, n + 2)
        out = []
        for i, size in enumerate(_spatial(x, n)):
            _check_padding_mode(a, x, i, size.value)
            if a.padding == "same":
                out.append(size)
                continue
            p = 0 if a.padding == "valid" else a.padding[i]
            out.append(Val(conv_out(size.value, a.kernel_size[i], a.stride[i], p, a.dilation[i])))
        _check_positive([o.value if isinstance(o, Val) else o for o in out], x, f"the kernel {a.kernel_size}")
        return (*x[:c], a.val("out_channels"), *out)

    return rule


def conv_transpose_rule(n):
    def rule(a, x):
        need_rank(x, (n + 1, n + 2), "")
        c = channel_dim(x, n + 2)
        out = []
        for i, size in enumerate(_spatial(x, n)):
            s, p, d, k, op = a.stride[i], a.padding[i], a.dilation[i], a.kernel_size[i], a.output_padding[i]
            out.append(Val((size.value - 1) * s - 2 * p + d * (k - 1) + op + 1))
        _check_positive([o.value for o in out], x, "the padding")
        return (*x[:c], a.val("out_channels"), *out)

    return rule


def _transpose_check(a):
    _check_groups(a)
    for op, s, d in zip(a.output_padding, a.stride, a.dilation):
        if op >= s and op >= d:
            raise ArgProblem(
                f"output_padding={a.output_padding} must be smaller than either stride={a.stride} "
                f"or dilation={a.dilation}"
            )


def conv_explain(n):
    def explain(a, x, out):
        lines = []
        for i, name in enumerate("DHW"[-n:] if n > 1 else "L"):
            size = _spatial(x, n)[i].value
            o = _spatial(out, n)[i].value
            if a.padding == "same":
                lines.append(f"{name}_out = {name} = {o} (padding='same')")
                continue
            p = 0 if a.padding == "valid" else a.padding[i]
            k, s, d = a.kernel_size[i], a.stride[i], a.dilation[i]
            lines.append(f"{name}_out = ({size} + 2*{p} - {d}*({k}-1) - 1) // {s} + 1 = {o}")
        return lines

    return explain


def conv_transpose_explain(n):
    def explain(a, x, out):
        lines = []
        for i, name in enumerate("DHW"[-n:] if n > 1 else "L"):
            size = _spatial(x, n)[i].value
            o = _spatial(out, n)[i].value
            s, p, d, k, op = a.stride[i], a.padding[i], a.dilation[i], a.kernel_size[i], a.output_padding[i]
            lines.append(f"{name}_out = ({size}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {o}")
        return lines

    return explain


def _conv_macs(a, out, x):
    return prod(o.value for o in out) * (a.in_channels // a.groups) * prod(a.kernel_size)


def _conv_transpose_macs(a, out, x):
    return prod(v.value for v in x) * (a.out_channels // a.groups) * prod(a.kernel_size)


def _no_bias(a) -> str:
    return "" if a.bias else " (no bias)"


def _conv(n: int) -> Layer:
    return Layer(
        f"Conv{n}d",
        (
            Arg("in_channels", POSITIVE, infer=_in_channels(n)),
            Arg("out_channels", POSITIVE),
            Arg("kernel_size", sizes(n)),
            Arg("stride", sizes(n), 1),
            Arg("padding", conv_padding(n), 0),
            Arg("dilation", sizes(n), 1),
            Arg("groups", POSITIVE, 1),
            Arg("bias", BOOL, True),
            Arg("padding_mode", PADDING_MODES, "zeros"),
        ),
        conv_rule(n),
        f"{n}-d convolution: slides out_channels kernels over the input",
        doc_of=lambda a: f"{n}-d convolution: slides out_channels kernels over the input{_no_bias(a)}",
        params=lambda a: a.out_channels * (a.in_channels // a.groups) * prod(a.kernel_size)
        + (a.out_channels if a.bias else 0),
        weights=lambda a: {"weight": (a.out_channels, a.in_channels // a.groups, *a.kernel_size),
                           **({"bias": (a.out_channels,)} if a.bias else {})},
        macs=_conv_macs,
        ranks=(n + 1, n + 2),
        check=_conv_check,
        family="conv",
        layout="keep",  # a channels-last input stays so, and a 1-d one with one channel follows its strides
        explain=conv_explain(n),
    )




def _conv_transpose(n: int) -> Layer:
    return Layer(
        f"ConvTranspose{n}d",
        (
            Arg("in_channels", POSITIVE, infer=_in_channels(n)),
            Arg("out_channels", POSITIVE),
            Arg("kernel_size", sizes(n)),
            Arg("stride", sizes(n), 1),
            Arg("padding", sizes(n, 0), 0),
            Arg("output_padding", sizes(n, 0), 0),
            Arg("groups", POSITIVE, 1),
            Arg("bias", BOOL, True),
            Arg("dilation", sizes(n), 1),
            Arg("padding_mode", choice("zeros"), "zeros"),
        ),
        conv_transpose_rule(n),
        f"{n}-d transposed convolution: upsamples by stride",
        doc_of=lambda a: f"{n}-d transposed convolution: upsamples by stride{_no_bias(a)}",
        params=lambda a: a.in_channels * (a.out_channels // a.groups) * prod(a.kernel_size)
        + (a.out_channels if a.bias else 0),
        weights=lambda a: {"weight": (a.in_channels, a.out_channels // a.groups, *a.kernel_size),
                           **({"bias": (a.out_channels,)} if a.bias else {})},
        macs=_conv_transpose_macs,
        ranks=(n + 1, n + 2),
        check=_transpose_check,
        family="conv",
        layout="keep",  # from a transposed input, even a 1-d one gives a strided output (tests/test_catalog.py)
        explain=conv_transpose_explain(n),
    )


LAYERS = [_conv(n) for n in (1, 2, 3)] + [_conv_transpose(n) for n in (1, 2, 3)]
