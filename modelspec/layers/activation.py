"""Dropout and element-wise activations: the output shape is the input shape (GLU halves its dim)."""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import (ANY_DTYPE, BOOL, FLOAT, FLOAT_ONLY, INT, NUMERIC, POSITIVE, PROB, Arg, ArgProblem, ArgType, Layer,
                   ShapeProblem, choice, float_out, need_rank, optional)
from .shuffle import part


def same(a, x):
    return tuple(x)


def _ranked(ranks):
    """The rule of a layer that keeps its input's shape and takes inputs of these ranks alone."""

    def rule(a, x):
        need_rank(x, ranks, "")
        return tuple(x)

    return rule


def _softmax_rule(a, x):
    d = a.dim
    if d is not None and not -max(len(x), 1) <= d < max(len(x), 1):
        raise ShapeProblem(f"dim={d} is out of range for a {len(x)}-d input {shape_str(x)}")
    return tuple(x)


def _glu_rule(a, x):
    if not x:
        raise ShapeProblem("cannot halve a scalar: GLU splits a dim into two halves",
                           hint="give it an input with at least 1 dim")
    _softmax_rule(a, x)  # dim must name a dim of x, as softmax's must
    d = a.dim
    size = x[d].value
    half = part(size, 2)
    if half is None:
        odd = "is odd" if isinstance(size, int) else "need not be even"
        raise ShapeProblem(f"cannot halve dim={d} of its input {shape_str(x)}: {size} {odd}",
                           hint="give that dim an even size: GLU gates one half of it with the other")
    return (*x[:d % len(x)], Val(half), *x[d % len(x) + 1 :])


def _prelu_rule(a, x):
    if a.num_parameters != 1:
        # torch takes dim 1 as the channels, and a 0-d or 1-d input as one channel
        c = x[1].value if len(x) >= 2 else 1
        if c != a.num_parameters:
            raise ShapeProblem(
                f"has num_parameters={a.num_parameters}, which must be 1 or the input's channel count, "
                f"but its input is {shape_str(x)}"
            )
    return tuple(x)


def _hardtanh_check(a):
    # the deprecated min_value/max_value replace min_val/max_val when given
    lo = a.min_val if a.min_value is None else a.min_value
    hi = a.max_val if a.max_value is None else a.max_value
    if hi <= lo:
        raise ArgProblem(f"max_val={hi} must be greater than min_val={lo}")


def _rrelu_check(a):
    if a.upper < a.lower:
        raise ArgProblem(f"upper={a.upper} must be at least lower={a.lower}")


def _number(describe: str, ok) -> ArgType:
    def check(v):
        v = FLOAT(v)
        if not ok(v):
            raise ArgProblem(f"must be {describe}, not {v}")
        return v

    return ArgType(describe, check)


NONNEG_FLOAT = _number("a non-negative number", lambda v: v >= 0)  # Softshrink's lambd: torch refuses one below 0
NONZERO_FLOAT = _number("a non-zero number", lambda v: v != 0)  # CELU divides x by alpha


def _act(name, doc, *args, **kw):
    kw.setdefault("layout", "keep")  # elementwise: the output keeps the input's memory order
    return Layer(name, tuple(args), kw.pop("rule", same), doc, family=kw.pop("family", "activation"), **kw)


INPLACE = Arg("inplace", BOOL, False)


def _dropout(name, ranks, doc, rule=None):
    rule = rule or (same if ranks is None else _ranked(ranks))
    return _act(name, doc, Arg("p", PROB, 0.5), INPLACE, rule=rule, ranks=ranks, family="dropout",
                dtypes=_dropout_dtypes, rearranges=True)


def _feature_noise_rule(a, x):
    # in training torch draws one noise value per channel, which takes 2 dims, unless p drops nothing or all
    if 0 < a.p < 1 and len(x) < 2:
        raise ShapeProblem(f"needs an input of at least 2 dims to drop whole channels, got {len(x)}-d "
                           f"{shape_str(x)}", hint="use AlphaDropout, which drops single elements")
    return tuple(x)


def _dropout_dtypes(a):
    # at p=0 and p=1 torch's dropout is the input or zeros, of any dtype; between, it scales by the float 1/(1-p)
    return ANY_DTYPE if a.p in (0, 1) else FLOAT_ONLY


LAYERS = [
    _dropout("Dropout", None, "zeroes each element with probability p while training"),
    _dropout("Dropout1d", (2, 3), "zeroes whole channels with probability p while training"),
    _dropout("Dropout2d", (3, 4), "zeroes whole channels with probability p while training"),
    _dropout("Dropout3d", (4, 5), "zeroes whole channels with probability p while training"),
    _dropout("AlphaDropout", None, "masks each element with probability p while training, keeping mean and variance"),
    _dropout("FeatureAlphaDropout", None, "masks whole channels with probability p while training, keeping mean and "
             "variance", rule=_feature_noise_rule),
    _act("ReLU", "max(0, x)", INPLACE, dtypes=NUMERIC),
    _act("ReLU6", "min(max(0, x), 6)", INPLACE, dtypes=NUMERIC),
    _act("LeakyReLU", "x if x > 0 else negative_slope * x", Arg("negative_slope", FLOAT, 0.01), INPLACE),
    _act(
        "PReLU",
        "x if x > 0 else a * x, with a learned",
        Arg("num_parameters", POSITIVE, 1),
        Arg("init", FLOAT, 0.25),
        rule=_prelu_rule,
        params=lambda a: a.num_parameters,
    ),
    _act("ELU", "x if x > 0 else alpha * (exp(x) - 1)", Arg("alpha", FLOAT, 1.0), INPLACE),
    _act("SELU", "scale * ELU(x) with fixed alpha and scale", INPLACE),
    _act("GELU", "x * Phi(x), the Gaussian error linear unit", Arg("approximate", choice("none", "tanh"), "none")),
    _act("SiLU", "x * sigmoid(x)", INPLACE),
    _act("Mish", "x * tanh(softplus(x))", INPLACE),
    _act("Sigmoid", "1 / (1 + exp(-x))", dtypes=ANY_DTYPE, out_dtype=float_out),
    _act("Tanh", "tanh(x)", dtypes=ANY_DTYPE, out_dtype=float_out),
    _act("Softplus", "log(1 + exp(beta * x)) / beta", Arg("beta", FLOAT, 1.0), Arg("threshold", FLOAT, 20.0)),
    _act("Hardswish", "x * relu6(x + 3) / 6", INPLACE),
    _act("Hardsigmoid", "relu6(x + 3) / 6", INPLACE),
    _act(
        "Hardtanh",
        "clamps x to [min_val, max_val]",
        Arg("min_val", FLOAT, -1.0),
        Arg("max_val", FLOAT, 1.0),
        INPLACE,
        Arg("min_value", optional(FLOAT), None),
        Arg("max_value", optional(FLOAT), None),
        check=_hardtanh_check,
        dtypes=NUMERIC,  # a long input stays long: the bounds are truncated to integers
    ),
    _act("Softmax", "exp(x) / sum(exp(x)) along dim", Arg("dim", optional(INT), None), rule=_softmax_rule),
    _act("LogSoftmax", "log(softmax(x)) along dim", Arg("dim", optional(INT), None), rule=_softmax_rule),
    _act("Softmin", "exp(-x) / sum(exp(-x)) along dim", Arg("dim", optional(INT), None), rule=_softmax_rule),
    _act("Softmax2d", "softmax over the channels at each position", rule=_ranked((3, 4)), ranks=(3, 4)),
    _act("GLU", "a * sigmoid(b), where a and b are the halves of x along dim", Arg("dim", INT, -1), rule=_glu_rule),
    _act("LogSigmoid", "log(1 / (1 + exp(-x)))"),
    _act("Tanhshrink", "x - tanh(x)", dtypes=NUMERIC, out_dtype=float_out),
    _act("Softsign", "x / (1 + |x|)", dtypes=NUMERIC, out_dtype=float_out),
    _act("Softshrink", "x - lambd if x > lambd, x + lambd if x < -lambd, else 0", Arg("lambd", NONNEG_FLOAT, 0.5)),
    _act("Hardshrink", "x if |x| > lambd else 0", Arg("lambd", FLOAT, 0.5)),
    _act("Threshold", "x if x > threshold else value", Arg("threshold", FLOAT), Arg("value", FLOAT), INPLACE,
         dtypes=NUMERIC),
    _act("CELU", "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))", Arg("alpha", NONZERO_FLOAT, 1.0), INPLACE),
    _act(
        "RReLU",
        "x if x >= 0 else a * x, a from U(lower, upper) in training, (lower + upper) / 2 in eval",
        Arg("lower", FLOAT, 0.125),
        Arg("upper", FLOAT, 1 / 3),
        INPLACE,
        check=_rrelu_check,
    ),
]
