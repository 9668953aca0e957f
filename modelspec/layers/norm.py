"""BatchNorm, SyncBatchNorm, LayerNorm, RMSNorm, GroupNorm, InstanceNorm, LocalResponseNorm, CrossMapLRN2d."""

from __future__ import annotations

from ..shapes import shape_str
from .base import (
    BOOL,
    FLOAT,
    FLOAT_ONLY,
    NUMERIC,
    POSITIVE,
    POSITIVE_FLOAT,
    SHAPE,
    Arg,
    ArgProblem,
    ArgType,
    Layer,
    ShapeProblem,
    affine,
    channel_dim,
    dim,
    float_out,
    keep_dtype,
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
        _need_batch_rank(x, ranks)
        return x[1]

    return infer


def _one_value_each(x, channels_per_stat, what: str):
    """torch's _verify_batch_size: statistics over one value are refused."""
    n = prod(dim(x, i) for i in range(len(x)) if i != 1) * channels_per_stat
    if n == 1:
        raise ShapeProblem(f"{what} of {shape_str(x)} would hold a single value to normalise over")


def _need_batch_rank(x, ranks):
    """BatchNorm's rank check; ``ranks`` None is SyncBatchNorm's: any input [B, C, *]."""
    if ranks is not None:
        need_rank(x, ranks, "")
    elif len(x) < 2:
        raise ShapeProblem(f"expects an input [B, C, *] of at least 2 dims, got {len(x)}-d {shape_str(x)}")


def _batch_norm_rule(ranks):
    def rule(a, x):
        _need_batch_rank(x, ranks)
        # batch statistics: always without running statistics, else in training, which every model meets
        _one_value_each(x, 1, "each channel")
        return tuple(x)

    return rule


def _running_stats(a) -> int:
    """running_mean and running_var, one value per feature, and num_batches_tracked (one count)."""
    return 2 * a.num_features + 1 if a.track_running_stats else 0


def _feature_params(a) -> int:
    """A weight and a bias per feature (channel), where the norm is affine."""
    return (a.num_features * (1 + (1 if a.bias else 0))) if a.affine else 0


def _feature_weights(a) -> dict:
    return affine((a.num_features,), a.bias) if a.affine else {}


def _no_process_group(v):
    if v is not None:
        raise ArgProblem(f"must be None: a spec cannot name a process group (torch's default, the whole world, "
                         f"is what None gives), not {v!r}")
    return v


def _batch_norm_args(ranks, *extra: Arg) -> tuple[Arg, ...]:
    return (
        Arg("num_features", POSITIVE, infer=_batch_channels(ranks)),
        Arg("eps", POSITIVE_FLOAT, 1e-05),
        Arg("momentum", optional(FLOAT), 0.1),
        Arg("affine", BOOL, True),
        Arg("track_running_stats", BOOL, True),
        *extra,
        Arg("bias", BOOL, True, kw_only=True),
    )


def _batch_norm(name, ranks, doc, *extra: Arg):
    return Layer(
        name,
        _batch_norm_args(ranks, *extra),
        _batch_norm_rule(ranks),
        doc,
        doc_of=lambda a: doc.replace(BATCH_NORM_DOC, _batch_norm_doc(a)),
        params=_feature_params,
        buffers=_running_stats,
        weights=_feature_weights,
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
        params=_feature_params,
        buffers=_running_stats,
        weights=_feature_weights,
        ranks=ranks,
        family="norm",
    )


def _trailing_rule(a, x):
    """LayerNorm's and RMSNorm's: normalized_shape names the trailing dims of the input."""
    ns = a.normalized_shape
    if not ns:
        raise ShapeProblem("has normalized_shape=(), but it must name at least one dim",
                           hint="give the size of the last dim, or _ to infer it")
    if len(ns) > len(x) or any(dim(x, len(x) - len(ns) + i) != s for i, s in enumerate(ns)):
        raise ShapeProblem(f"normalized_shape={tuple(ns)} does not match the trailing dims of its input {shape_str(x)}")
    return tuple(x)


def _local_response_rule(ranks):
    """LocalResponseNorm: [B, C, *] of at least one spatial dim; CrossMapLRN2d: [B, C, H, W] alone."""

    def rule(a, x):
        if ranks is not None:
            need_rank(x, ranks, "")
        elif len(x) < 3:
            raise ShapeProblem(f"expects an input [B, C, *] of at least 3 dims (it averages over neighbouring "
                               f"channels at each position), got {len(x)}-d {shape_str(x)}",
                               hint="add the batch dim, x.unsqueeze(0), or a spatial one, x.unsqueeze(-1)")
        return tuple(x)

    return rule


def _local_response(name, ranks, doc, k, dtypes, out_dtype):
    return Layer(
        name,
        (Arg("size", POSITIVE), Arg("alpha", FLOAT, 0.0001), Arg("beta", FLOAT, 0.75), Arg("k", FLOAT, k)),
        _local_response_rule(ranks),
        doc,
        ranks=ranks,
        family="norm",
        dtypes=dtypes,
        out_dtype=out_dtype,
    )


def _group_norm_rule(a, x):
    if len(x) < 2:
        raise ShapeProblem(f"expects an input [B, C, *], got {shape_str(x)}")
    if a is not None:  # also called by num_channels' infer, before there are arguments
        _one_value_each(x, a.num_channels // a.num_groups, "each group")
    return tuple(x)


def _group_check(a):
    if a.num_channels % a.num_groups:
        raise ArgProblem(f"num_groups={a.num_groups} must divide num_channels={a.num_channels}")


BATCH_NORM_DOC = "normalises each channel over the batch, then scales and shifts"


def _batch_norm_doc(a) -> str:
    """BATCH_NORM_DOC as the arguments have it: no scale without affine, no shift without bias."""
    if not a.affine:
        return "normalises each channel over the batch (affine=False: no scale or shift)"
    return BATCH_NORM_DOC if a.bias else "normalises each channel over the batch, then scales (bias=False: no shift)"

LAYERS = (
    [_batch_norm(f"BatchNorm{n}d", {1: (2, 3), 2: (4,), 3: (5,)}[n], BATCH_NORM_DOC) for n in (1, 2, 3)]
    + [
        # torch synchronises the statistics across processes only in training with torch.distributed
        # initialised, and then needs its input on a GPU (cuda, hpu or xpu); else it is BatchNorm itself
        _batch_norm("SyncBatchNorm", None, BATCH_NORM_DOC + ", with statistics over every process in training "
                    "(which needs torch.distributed initialised and the input on a GPU)",
                    Arg("process_group", ArgType("None", _no_process_group), None)),
    ]
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
            _trailing_rule,
            "normalises over the trailing normalized_shape dims of each sample",
            params=lambda a: (prod(a.normalized_shape) * (1 + (1 if a.bias else 0))) if a.elementwise_affine else 0,
            weights=lambda a: affine(a.normalized_shape, a.bias) if a.elementwise_affine else {},
            family="norm",
        ),
        Layer(
            "RMSNorm",
            (
                Arg("normalized_shape", SHAPE, infer=lambda x: (x[-1],), compare="trailing"),
                Arg("eps", optional(FLOAT), None),  # None: the dtype's machine epsilon
                Arg("elementwise_affine", BOOL, True),
            ),
            _trailing_rule,
            "divides by the root mean square over the trailing normalized_shape dims, then scales",
            params=lambda a: prod(a.normalized_shape) if a.elementwise_affine else 0,
            weights=lambda a: affine(a.normalized_shape, False) if a.elementwise_affine else {},
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
    + [
        # an average of squares over size neighbouring channels: a long input gives a float output
        _local_response("LocalResponseNorm", None, "normalises each value by the squares of its neighbours over "
                        "size channels", 1.0, NUMERIC, float_out),
        # the Lua Torch kernel of AlexNet's LRN, for 4-d inputs alone; its default k is the int 1
        _local_response("CrossMapLRN2d", (4,), "LocalResponseNorm of a 4-d input, as Lua Torch computed it", 1,
                        FLOAT_ONLY, keep_dtype),
    ]
)
