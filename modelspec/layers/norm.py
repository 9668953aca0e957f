"""BatchNorm, LayerNorm, GroupNorm, InstanceNorm."""

from __future__ import annotations

from ..shapes import shape_str
from .base import (
    BOOL,
    FLOAT,
    POSITIVE,
    POSITIVE_FLOAT,
    SHAPE,
    Arg,
    ArgProblem,
    Layer,
    ShapeProblem,
    affine,
    channel_dim,
    dim,
    need_rank,
    optional,
    prod,
)


def _channels(ranks, batched_rank):
    def infer(x):
        need_rank(x, ranks, "")
        return x[channel_dim(x, batched_rank)]

    return infer


def _batch_channels(ranks):
    # BatchNorm has no unbatched form: BatchNorm1d's 2-d input is [B, C], so
    # the channels are dim 1 at every rank
    def infer(x):
        need_rank(x, ranks, "")
        return x[1]

    return infer


def _one_value_each(x, channels_per_stat, what: str):
    """torch's _verify_batch_size: statistics over one value are refused."""
    n = prod(dim(x, i) for i in range(len(x)) if i != 1) * channels_per_stat
    if n == 1:
        raise ShapeProblem(f"{what} of {shape_str(x)} would hold a single value to normalise over")


def _batch_norm_rule(ranks):
    def rule(a, x):
        need_rank(x, ranks, "")
        # batch statistics: always without running statistics, else in training, which every model meets
        _one_value_each(x, 1, "each channel")
        return tuple(x)

    return rule


def _running_stats(a) -> int:
    """running_mean and running_var, one value per feature, and num_batches_tracked (one count)."""
    return 2 * a.num_features + 1 if a.track_running_stats else 0


def _batch_norm(n):
    ranks = {1: (2, 3), 2: (4,), 3: (5,)}[n]
    return Layer(
        f"BatchNorm{n}d",
        (
            Arg("num_features", POSITIVE, infer=_batch_channels(ranks)),
            Arg("eps", POSITIVE_FLOAT, 1e-05),
            Arg("momentum", optional(FLOAT), 0.1),
            Arg("affine", BOOL, True),
            Arg("track_running_stats", BOOL, True),
            Arg("bias", BOOL, True, kw_only=True),
        ),
        _batch_norm_rule(ranks),
        "normalises each channel over the batch, then scales and shifts",
        params=lambda a: (a.num_features * (1 + (1 if a.bias else 0))) if a.affine else 0,
        buffers=_running_stats,
        weights=lambda a: affine((a.num_features,), a.bias) if a.affine else {},
        ranks=ranks,
        family="norm",
    )


def _instance_norm_rule(ranks):
    def rule(a, x):
        need_rank(x, ranks, "")
        # torch's _verify_spatial_size, whenever it uses the input's own statistics: always without running
        # statistics, else in training, which every model meets: refused either way
        spatial = x[len(x) - (ranks[0] - 1) :]
        if prod(dim(spatial, i) for i in range(len(spatial))) == 1:
            raise ShapeProblem(f"each channel of {shape_str(x)} has a single spatial element to normalise over")
        return tuple(x)

    return rule


def _instance_norm(n):
    ranks = (n + 1, n + 2)
    return Layer(
        f"InstanceNorm{n}d",
        (
            Arg("num_features", POSITIVE, infer=_channels(ranks, n + 2)),
            Arg("eps", POSITIVE_FLOAT, 1e-05),
            Arg("momentum", optional(FLOAT), 0.1),
            Arg("affine", BOOL, False),
            Arg("track_running_stats", BOOL, False),
            Arg("bias", BOOL, True, kw_only=True),
        ),
        _instance_norm_rule(ranks),
        "normalises each channel of each sample over its spatial dims",
        params=lambda a: (a.num_features * (1 + (1 if a.bias else 0))) if a.affine else 0,
        buffers=_running_stats,
        weights=lambda a: affine((a.num_features,), a.bias) if a.affine else {},
        ranks=ranks,
        family="norm",
    )


def _layer_norm_rule(a, x):
    ns = a.normalized_shape
    if len(ns) > len(x) or any(dim(x, len(x) - len(ns) + i) != s for i, s in enumerate(ns)):
        raise ShapeProblem(f"normalized_shape={tuple(ns)} does not match the trailing dims of its input {shape_str(x)}")
    return tuple(x)


def _group_norm_rule(a, x):
    if len(x) < 2:
        raise ShapeProblem(f"expects an input [B, C, *], got {shape_str(x)}")
    if a is not None:  # also called by num_channels' infer, before there are arguments
        _one_value_each(x, a.num_channels // a.num_groups, "each group")
    return tuple(x)


def _group_check(a):
    if a.num_channels % a.num_groups:
        raise ArgProblem(f"num_groups={a.num_groups} must divide num_channels={a.num_channels}")


LAYERS = (
    [_batch_norm(n) for n in (1, 2, 3)]
    + [
        Layer(
            "LayerNorm",
            (
                # `_` means the last dim; an explicit shape may cover more trailing dims, as the rule checks
                Arg("normalized_shape", SHAPE, infer=lambda x: (x[-1],), compare="trailing"),
                Arg("eps", FLOAT, 1e-05),
                Arg("elementwise_affine", BOOL, True),
                Arg("bias", BOOL, True),
            ),
            _layer_norm_rule,
            "normalises over the trailing normalized_shape dims of each sample",
            params=lambda a: (prod(a.normalized_shape) * (1 + (1 if a.bias else 0))) if a.elementwise_affine else 0,
            weights=lambda a: affine(a.normalized_shape, a.bias) if a.elementwise_affine else {},
            family="norm",
        ),
        Layer(
            "GroupNorm",
            (
                Arg("num_groups", POSITIVE),
                Arg("num_channels", POSITIVE, infer=lambda x: (_group_norm_rule(None, x), x[1])[1]),
                Arg("eps", FLOAT, 1e-05),
                Arg("affine", BOOL, True),
                Arg("bias", BOOL, True, kw_only=True),
            ),
            _group_norm_rule,
            "normalises groups of channels of each sample",
            params=lambda a: (a.num_channels * (1 + (1 if a.bias else 0))) if a.affine else 0,
            weights=lambda a: affine((a.num_channels,), a.bias) if a.affine else {},
            check=_group_check,
            family="norm",
        ),
    ]
    + [_instance_norm(n) for n in (1, 2, 3)]
)
