"""The losses: a prediction compared with a target, reduced to one number (or kept per element).

Every loss takes its tensors as torch's ``forward`` does (``(input, target)``; CosineEmbeddingLoss
``(input1, input2, target)``; GaussianNLLLoss ``(input, target, var)``; CTCLoss ``(log_probs, targets,
input_lengths, target_lengths)``). With ``reduction='none'`` the output is the loss per element (per sample,
where the loss sums over classes); ``'mean'`` and ``'sum'`` (and KLDivLoss's ``'batchmean'``) give a 0-d
tensor ``[]``. The deprecated ``size_average`` and ``reduce`` override ``reduction`` as they do in torch.

Shapes and dtypes are checked together: CrossEntropyLoss takes class indices (a Long target of the input's
shape without its class dim, ``[B]`` for ``[B, C]``) or class probabilities (a float target of the input's
shape), told apart by the target's rank. Where torch broadcasts a target of another shape against the input
(MSELoss with ``[B, 1]`` against ``[B]`` computes a ``[B, B]`` loss, with a warning), a spec is refused: the
target must have the input's shape. Predictions are float; each target takes the dtypes torch takes for it.

The class weights (``weight``, ``pos_weight``) are tensors, which no catalog entry takes as a constructor
argument: a spec gives them as None alone (their default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..shapes import shape_str
from .base import (BOOL, DTYPES, FLOAT, INT, PROB, Arg, ArgProblem, ArgType, Layer, ShapeProblem, choice,
                   float_out, optional, prod)

REDUCTIONS = ("none", "mean", "sum")
WORDS = {"float": "Float", "long": "Long", "bool": "Bool"}


def _none_only(v):
    if v is not None:
        raise ArgProblem("is a tensor of weights, which a loss in a spec does not take yet: leave it None")
    return v


NONE_ONLY = ArgType("None (a tensor of weights is not taken)", _none_only)


def reduction_of(a) -> str:
    """The reduction torch applies: ``reduction``, unless the deprecated size_average or reduce is given, which
    override it as ``torch.nn._reduction.legacy_get_string`` does."""
    size_average, reduce = getattr(a, "size_average", None), getattr(a, "reduce", None)
    if size_average is None and reduce is None:
        return a.reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "mean" if size_average and reduce else "sum" if reduce else "none"


def reduced(a, shape) -> tuple:
    """The loss per element for reduction='none'; a 0-d tensor otherwise."""
    return tuple(shape) if reduction_of(a) == "none" else ()


def _same(a_shape, b_shape) -> bool:
    return len(a_shape) == len(b_shape) and all(p.value == q.value for p, q in zip(a_shape, b_shape))


def need_same(x, other, what: str, first: str = "input"):
    """A tensor that must have the shape of the input: torch's broadcasting of another is refused."""
    if not _same(x, other):
        raise ShapeProblem(f"expects a {what} of the {first}'s shape {shape_str(x)}, but the {what} is "
                           f"{shape_str(other)}",
                           hint=f"give the {what} the same shape; a [B, 1] against a [B] broadcasts to [B, B] in "
                                f"torch: reshape one with .view(-1) or .unsqueeze(1)")


def need_ranks(x, ranks: tuple[int, ...], names: str, what: str = "input"):
    if len(x) not in ranks:
        raise ShapeProblem(f"expects its {what} to be {names}, but it is {len(x)}-d {shape_str(x)}")


def class_index_shape(x) -> tuple:
    """The class indices of scores ``x``: [C] -> [], [B, C] -> [B], [B, C, d1, ...] -> [B, d1, ...]."""
    return () if len(x) <= 1 else (x[0], *x[2:])


# ---------------------------------------------------------------- dtypes
@dataclass(frozen=True)
class Want:
    """What one input of a loss must be: its dtypes, said as the spec would declare it."""

    dtypes: tuple[str, ...]
    said: str | None = None  # "a class index target Long[B] for input [B, 10]"; None: its name and dtypes
    hint: str | None = None


PRED = ("float",)
VALUES = ("float", "long", "bool")  # a target torch promotes to the input's float
NUMBERS = ("float", "long")  # a target torch subtracts from: no bool


def _declared(dtypes, shape) -> str:
    return " or ".join(f"{WORDS[d]}{shape_str(shape)}" for d in reversed(DTYPES) if d in dtypes)


def unless(narrows: Callable, more: tuple[str, ...], fewer: tuple[str, ...]):
    """A target's dtypes that an argument narrows: SmoothL1Loss(beta=0) is L1Loss, which takes no bool target;
    PoissonNLLLoss(full=True) adds Stirling's term, computed on the target, which takes none either."""

    def wants(a, *shapes):
        targets = fewer if narrows(a) else more
        return [Want(takes) for takes in (PRED,) * (len(shapes) - 1) + (targets,)]

    return wants


def plain(*targets: tuple[str, ...]):
    """Float predictions, then one tensor of each of ``targets`` dtypes."""

    def wants(a, *shapes):
        return [Want(takes) for takes in (PRED,) * (len(shapes) - len(targets)) + targets]

    return wants


@dataclass(frozen=True)
class Loss(Layer):
    """A loss: ``inputs`` names forward's tensors; ``wants(a, *shapes)`` says the dtype each must have (a
    `Want`), which may depend on the shapes (CrossEntropyLoss's class indices or probabilities)."""

    inputs: tuple[str, ...] = ("input", "target")
    wants: Callable = plain(VALUES)
    classes: Callable | None = None  # (a, *shapes) -> (the input of class indices, the class count) or None

    def input_dtypes(self, a) -> tuple[str, ...]:
        return PRED  # what every loss's prediction takes; each other input's, from `wants`

    def check_dtypes(self, a, dtypes, shapes=()) -> None:
        if not shapes:  # no shapes to tell the targets by: the prediction alone
            shapes = ((),) * len(dtypes)
        for name, got, shape, want in zip(self.inputs, dtypes, shapes, self.wants(a, *shapes)):
            if got not in want.dtypes:
                said = want.said or f"its {name} to be {_declared(want.dtypes, shape)}"
                hint = want.hint or (f"declare it {_declared(want.dtypes, shape)}" if name != self.inputs[0] else
                                     "make it float: x * 1.0, or declare the input Float[...]")
                raise ShapeProblem(f"expects {said}, but the {name} is {shape_str(shape)} {got}", hint=hint)


# ---------------------------------------------------------------- rules
def elementwise_rule(a, x, target):
    """MSELoss, L1Loss, ...: the loss of each element; the target of the input's shape."""
    need_same(x, target, "target")
    return reduced(a, x)


def bce_rule(a, x, target):
    need_same(x, target, "target")
    return reduced(a, x)


def is_probs(x, target) -> bool:
    """CrossEntropyLoss reads class probabilities from a target of the input's shape, class indices otherwise."""
    return _same(x, target)


def _index_fits(x, target) -> bool:
    """A target of class indices: the input's shape without its class dim ([1] too, for one sample [C])."""
    return _same(class_index_shape(x), target) or (len(x) == 1 and len(target) == 1 and target[0].value == 1)


def _index_problem(x, target, probs: bool):
    want = shape_str(class_index_shape(x))
    also = f", or class probabilities of its shape {shape_str(x)}" if probs else ""
    c = 1 if len(x) > 1 else 0
    return ShapeProblem(f"expects a class index target Long{want}{also} for input {shape_str(x)}, but the target is "
                        f"{shape_str(target)}",
                        hint=f"the class dim of the input is dim {c} ({x[c].value}); the target holds one class "
                             f"index per sample")


def cross_entropy_rule(a, x, target):
    need_ranks(x, tuple(range(1, 64)), "class scores [C], [B, C] or [B, C, d1, ...]")
    if is_probs(x, target):
        if a.ignore_index >= 0:  # a class it would skip: torch's negative ones read nothing
            raise ShapeProblem(f"takes no ignore_index with class probabilities (a float target {shape_str(x)})",
                               hint="leave ignore_index out, or give class indices "
                                    f"Long{shape_str(class_index_shape(x))}")
    elif not _index_fits(x, target):
        raise _index_problem(x, target, probs=True)
    return reduced(a, class_index_shape(x))


def cross_entropy_wants(a, x, target):
    if is_probs(x, target):
        return [Want(PRED),
                Want(("float",), f"class probabilities as a float target {shape_str(x)} for input {shape_str(x)}",
                     hint=f"declare the target Float{shape_str(x)}, or give class indices "
                          f"Long{shape_str(class_index_shape(x))}")]
    return index_wants(a, x, target)


def nll_rule(a, x, target):
    need_ranks(x, tuple(range(1, 64)), "log-probabilities [C], [B, C] or [B, C, d1, ...]")
    if not _index_fits(x, target):
        raise _index_problem(x, target, probs=False)
    return reduced(a, class_index_shape(x))


def class_count(a, x, target):
    """The target holds class indices below the input's class count (dim 1, or dim 0 of one sample [C]): the
    model's example targets are drawn below it, as an Embedding's indices are below its table."""
    return (1, x[1 if len(x) > 1 else 0].value)


def cross_entropy_classes(a, x, target):
    return None if is_probs(x, target) else class_count(a, x, target)


def index_wants(a, x, target):
    return [Want(PRED),
            Want(("long",), f"a class index target Long{shape_str(target)} for input {shape_str(x)}",
                 hint=f"declare the target Long{shape_str(target)}: class indices are integers")]


def multi_margin_rule(a, x, target):
    need_ranks(x, (1, 2), "class scores [C] or [B, C]")
    if not _index_fits(x, target):
        raise _index_problem(x, target, probs=False)
    return reduced(a, target)  # one loss per sample: [1] for one sample [C] with a target [1]


def multilabel_margin_rule(a, x, target):
    need_ranks(x, (1, 2), "class scores [C] or [B, C]")
    if not _same(x, target):
        raise ShapeProblem(f"expects a target Long{shape_str(x)} of class indices (padded with -1) of the input's "
                           f"shape, but the target is {shape_str(target)}")
    return reduced(a, x[:-1])


def same_wants(a, x, target):
    return [Want(PRED),
            Want(("long",), f"a target Long{shape_str(x)} of class indices",
                 hint=f"declare the target Long{shape_str(target)}: it holds class indices, padded with -1")]


def multilabel_soft_rule(a, x, target):
    need_ranks(x, tuple(range(1, 64)), "class scores [C] or [B, C]")
    need_same(x, target, "target")
    return reduced(a, x[:-1])


def kl_div_rule(a, x, target):
    need_same(x, target, "target")
    return reduced(a, x)  # 'batchmean' too: a 0-d tensor


def gaussian_rule(a, x, target, var):
    """torch's var: of the input's shape, of its shape without the last dim (one variance per sample), or
    with exactly one dim of size 1 where the input has another size."""
    need_same(x, target, "target")
    if not _same(x, var) and not _same(x[:-1], var):
        differ = [q.value for p, q in zip(x, var) if p.value != q.value] if len(x) == len(var) else None
        if differ is None or differ != [1]:
            raise ShapeProblem(f"expects var of the input's shape {shape_str(x)}, of {shape_str(x[:-1])}, or with "
                               f"one dim of size 1, but var is {shape_str(var)}",
                               hint="give one variance per element, per sample, or shared along one dim")
    return reduced(a, x)


def pair_rule(a, x1, x2, target):
    """CosineEmbeddingLoss: pairs of vectors [B, D] (or one pair [D]), a target of 1 or -1 per pair."""
    need_ranks(x1, (1, 2), "vectors [D] or [B, D]", "input1")
    need_same(x1, x2, "input2", "input1")
    want = class_index_shape(x1)[:1] if len(x1) == 2 else ()
    if not _same(want, target):
        raise ShapeProblem(f"expects a target {shape_str(want)} of 1 or -1 for each pair of input1 "
                           f"{shape_str(x1)}, but the target is {shape_str(target)}")
    return reduced(a, want)


def ranking_rule(a, x1, x2, target):
    need_same(x1, x2, "input2", "input1")
    need_same(x1, target, "target", "input1")
    return reduced(a, x1)


def triplet_rule(a, anchor, positive, negative):
    """Distances along the last dim: [B, D] gives one loss per row (any leading dims, as torch's)."""
    need_same(anchor, positive, "positive", "anchor")
    need_same(anchor, negative, "negative", "anchor")
    return reduced(a, anchor[:-1])


def ctc_rule(a, log_probs, targets, input_lengths, target_lengths):
    """log_probs [T, N, C] (or [T, C] for one sequence), targets [N, S] padded or concatenated into one dim,
    one length per sequence in input_lengths and target_lengths."""
    need_ranks(log_probs, (2, 3), "log-probabilities [T, N, C] (or [T, C])", "log_probs")
    c = log_probs[-1].value
    if not isinstance(c, int) and a.blank != 0:
        raise ShapeProblem(f"has blank={a.blank}, which must be below the symbolic number of classes {c} of "
                           f"log_probs {shape_str(log_probs)}", hint="give the classes a fixed size, or blank=0")
    if isinstance(c, int) and not 0 <= a.blank < c:
        raise ShapeProblem(f"has blank={a.blank}, but log_probs {shape_str(log_probs)} has {c} classes",
                           hint="blank is a class index: 0 by default")
    if len(log_probs) == 2:
        for name, s, ranks in (("targets", targets, (1,)), ("input_lengths", input_lengths, (0, 1)),
                               ("target_lengths", target_lengths, (0, 1))):
            if len(s) not in ranks or (len(s) == 1 and name != "targets" and s[0].value != 1):
                want = "[S]" if name == "targets" else "[] or [1] (one length)"
                raise ShapeProblem(f"expects {name} {want} for one sequence log_probs {shape_str(log_probs)}, but "
                                   f"{name} is {shape_str(s)}")
        return reduced(a, ())
    n = log_probs[1]
    if len(targets) not in (1, 2) or (len(targets) == 2 and targets[0].value != n.value):
        raise ShapeProblem(f"expects targets [{n.value}, S] (padded) or [sum of target_lengths] (concatenated) for "
                           f"log_probs {shape_str(log_probs)}, but targets is {shape_str(targets)}",
                           hint="log_probs is [T, N, C]: time first, then the batch")
    for name, s in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if not _same((n,), s) and not _count_is(s, n.value):
            raise ShapeProblem(f"expects {name} [{n.value}], one length per sequence of log_probs "
                               f"{shape_str(log_probs)}, but {name} is {shape_str(s)}",
                               hint="log_probs is [T, N, C]: time first, then the batch")
    return reduced(a, (n,))


def _count_is(shape, n) -> bool:
    """Whether fixed dims hold exactly ``n`` elements (torch reads a length tensor of any shape, flattened)."""
    sizes = [d.value for d in shape]
    return isinstance(n, int) and all(isinstance(d, int) for d in sizes) and prod(sizes) == n


def ctc_wants(a, log_probs, targets, *lengths):
    """The targets are class indices, which torch casts from any dtype; the lengths are integers."""
    return [Want(PRED), Want(VALUES)] + [
        Want(("long",), hint=f"declare {name} Long{shape_str(s)}: they are integers")
        for name, s in zip(("input_lengths", "target_lengths"), lengths)]


# ---------------------------------------------------------------- argument checks
def _positive(name: str):
    def check(a):
        if not a.values[name] > 0:
            raise ArgProblem(f"argument {name!r} must be positive, not {a.values[name]}")
    return check


def _non_negative(name: str):
    def check(a):
        if a.values[name] < 0:
            raise ArgProblem(f"argument {name!r} must not be negative, not {a.values[name]}")
    return check


def _p_one_or_two(a):
    if a.p not in (1, 2) or isinstance(a.p, bool):
        raise ArgProblem(f"argument 'p' must be 1 or 2, not {a.p!r}")


# ---------------------------------------------------------------- entries
REDUCTION = Arg("reduction", choice(*REDUCTIONS), "mean")
LEGACY = (Arg("size_average", optional(BOOL), None), Arg("reduce", optional(BOOL), None))
SIZE_AVERAGE, REDUCE = LEGACY
WEIGHT = Arg("weight", NONE_ONLY, None)


def loss(name: str, args: tuple, rule, doc: str, **kw) -> Loss:
    return Loss(name, args, rule, doc, family="loss", out_dtype=float_out, layout="new", n_inputs=len(kw.get(
        "inputs", ("input", "target"))), **kw)


LAYERS = [
    loss("MSELoss", (*LEGACY, REDUCTION), elementwise_rule, "the squared error of each element",
         wants=plain(VALUES)),
    loss("L1Loss", (*LEGACY, REDUCTION), elementwise_rule, "the absolute error of each element",
         wants=plain(NUMBERS)),
    loss("SmoothL1Loss", (*LEGACY, REDUCTION, Arg("beta", FLOAT, 1.0)), elementwise_rule,
         "squared error below beta, absolute above", wants=unless(lambda a: a.beta == 0, VALUES, NUMBERS),
         check=_non_negative("beta")),
    loss("HuberLoss", (REDUCTION, Arg("delta", FLOAT, 1.0)), elementwise_rule,
         "squared error below delta, delta-scaled absolute above", wants=plain(VALUES), check=_positive("delta")),
    loss("CrossEntropyLoss", (WEIGHT, SIZE_AVERAGE, Arg("ignore_index", INT, -100), REDUCE, REDUCTION,
                              Arg("label_smoothing", PROB, 0.0)), cross_entropy_rule,
         "log-softmax over the class dim (dim 1), then the negative log-likelihood of the target class",
         wants=cross_entropy_wants, classes=cross_entropy_classes),
    loss("NLLLoss", (WEIGHT, SIZE_AVERAGE, Arg("ignore_index", INT, -100), REDUCE, REDUCTION), nll_rule,
         "the negative log-probability of each target class", wants=index_wants, classes=class_count),
    loss("BCELoss", (WEIGHT, *LEGACY, REDUCTION), bce_rule, "binary cross entropy of probabilities in [0, 1]",
         wants=plain(("float",))),
    loss("BCEWithLogitsLoss", (WEIGHT, *LEGACY, REDUCTION, Arg("pos_weight", NONE_ONLY, None)), bce_rule,
         "binary cross entropy of logits (a sigmoid first)", wants=plain(("float",))),
    loss("KLDivLoss", (*LEGACY, Arg("reduction", choice(*REDUCTIONS, "batchmean"), "mean"),
                       Arg("log_target", BOOL, False)), kl_div_rule,
         "Kullback-Leibler divergence of the target from log-probabilities", wants=plain(("float",))),
    loss("PoissonNLLLoss", (Arg("log_input", BOOL, True), Arg("full", BOOL, False), SIZE_AVERAGE,
                            Arg("eps", FLOAT, 1e-08), REDUCE, REDUCTION), elementwise_rule,
         "negative log-likelihood of a Poisson target", wants=unless(lambda a: a.full is True, VALUES, NUMBERS),
         inputs=("log_input", "target")),
    loss("GaussianNLLLoss", (Arg("full", BOOL, False, kw_only=True), Arg("eps", FLOAT, 1e-06, kw_only=True),
                             Arg("reduction", choice(*REDUCTIONS), "mean", kw_only=True)), gaussian_rule,
         "negative log-likelihood of a Gaussian target with variance var", wants=plain(NUMBERS, PRED),
         inputs=("input", "target", "var")),
    loss("CosineEmbeddingLoss", (Arg("margin", FLOAT, 0.0), *LEGACY, REDUCTION), pair_rule,
         "1 - cosine for similar pairs (target 1), max(0, cosine - margin) for dissimilar (-1)",
         wants=plain(VALUES), inputs=("input1", "input2", "target")),
    loss("MarginRankingLoss", (Arg("margin", FLOAT, 0.0), *LEGACY, REDUCTION), ranking_rule,
         "max(0, -target * (input1 - input2) + margin)", wants=plain(NUMBERS), inputs=("input1", "input2", "target")),
    loss("TripletMarginLoss", (Arg("margin", FLOAT, 1.0), Arg("p", FLOAT, 2.0), Arg("eps", FLOAT, 1e-06),
                               Arg("swap", BOOL, False), *LEGACY, REDUCTION), triplet_rule,
         "max(d(anchor, positive) - d(anchor, negative) + margin, 0)", wants=plain(), check=_positive("margin"),
         inputs=("anchor", "positive", "negative")),
    loss("HingeEmbeddingLoss", (Arg("margin", FLOAT, 1.0), *LEGACY, REDUCTION), elementwise_rule,
         "x for target 1, max(0, margin - x) for -1", wants=plain(VALUES)),
    loss("SoftMarginLoss", (*LEGACY, REDUCTION), elementwise_rule, "log(1 + exp(-target * x)) of each element",
         wants=plain(VALUES)),
    loss("MultiLabelSoftMarginLoss", (WEIGHT, *LEGACY, REDUCTION), multilabel_soft_rule,
         "binary cross entropy of logits per class, averaged over the classes", wants=plain(NUMBERS)),
    loss("MultiMarginLoss", (Arg("p", INT, 1), Arg("margin", FLOAT, 1.0), WEIGHT, *LEGACY, REDUCTION),
         multi_margin_rule, "multi-class hinge loss of the target class against the others", wants=index_wants,
         check=_p_one_or_two, classes=class_count),
    loss("MultiLabelMarginLoss", (*LEGACY, REDUCTION), multilabel_margin_rule,
         "multi-class hinge loss of each target class (indices padded with -1) against the others",
         wants=same_wants),
    loss("CTCLoss", (Arg("blank", INT, 0), REDUCTION, Arg("zero_infinity", BOOL, False)), ctc_rule,
         "connectionist temporal classification of unaligned target sequences", wants=ctc_wants,
         inputs=("log_probs", "targets", "input_lengths", "target_lengths")),
]
