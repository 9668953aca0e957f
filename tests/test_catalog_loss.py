"""The losses of the catalog (`modelspec/layers/loss.py`) held against torch itself.

As for the other entries (tests/test_catalog.py), with torch as the referee: seeded configurations per loss,
torch's module run on the ``meta`` device, and where torch and the catalog disagree on *whether* a
configuration is valid, on real CPU tensors, which decide. A loss differs from a layer in its inputs: two to
four tensors whose dtypes matter as much as their shapes (CrossEntropyLoss's Long class indices or float
probabilities), so each configuration carries the dtype of each input, and the dtype test runs every
combination of float, long and bool inputs on CPU.

Two kinds of torch acceptance count as rejections, because the catalog refuses them on purpose:

* a target (or a second input) of another shape than the one it is compared with, which torch broadcasts
  (MSELoss of [B, 1] against [B] is a [B, B] loss, with a warning) -- `torch_broadcasts`;
* a prediction of a dtype other than float (MSELoss of two long tensors runs in torch, HuberLoss's does
  not): a loss compares float predictions -- `torch_takes_other_predictions`;
* the 0-d inputs MultiMarginLoss and MultiLabelMarginLoss take as one sample of one class -- `torch_takes_0d`.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import random
import warnings
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from modelspec.layers import CATALOG
from modelspec.layers.base import REQUIRED, ArgError, InferMismatch, ShapeProblem, _unwrap_result, bind
from modelspec.shapes import Val

LOSS_NAMES = sorted(n for n, layer in CATALOG.items() if layer.family == "loss")
CATALOG_ERRORS = (ArgError, InferMismatch, ShapeProblem)
CONFIGS_PER_LOSS = 60
SEED = os.environ.get("CATALOG_TEST_SEED", "modelspec-catalog") + "-loss"
TORCH_DTYPES = {"float": torch.float32, "long": torch.int64, "bool": torch.bool}
NAMED = {v: k for k, v in TORCH_DTYPES.items()}

# the inputs each loss compares, which must have one shape in a spec (torch broadcasts them)
SAME = {
    **{n: [(0, 1)] for n in ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "SoftMarginLoss", "HingeEmbeddingLoss",
                             "KLDivLoss", "PoissonNLLLoss", "BCELoss", "BCEWithLogitsLoss", "MultiLabelSoftMarginLoss",
                             "GaussianNLLLoss")},
    "CosineEmbeddingLoss": [(0, 1)], "MarginRankingLoss": [(0, 1), (0, 2)], "TripletMarginLoss": [(0, 1), (0, 2)],
}
# the inputs that are predictions (float); the others are targets, lengths, or GaussianNLLLoss's var
PREDICTIONS = {"CosineEmbeddingLoss": 2, "MarginRankingLoss": 2, "TripletMarginLoss": 3}


def test_the_losses_are_there():
    assert LOSS_NAMES == sorted([
        "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss", "GaussianNLLLoss",
        "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "MarginRankingLoss",
        "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss", "PoissonNLLLoss",
        "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss"])


# ---------------------------------------------------------------- 1. signatures
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_signature_matches_torch(name):
    """Constructor arguments, defaults (size_average and reduce included) and keyword-only-ness as torch's."""
    params = [p for p in inspect.signature(getattr(nn, name).__init__).parameters.values()
              if p.name not in ("self", "device", "dtype")]
    theirs = [(p.name, REQUIRED if p.default is p.empty else p.default, p.kind == p.KEYWORD_ONLY) for p in params]
    ours = [(a.name, a.default, a.kw_only) for a in CATALOG[name].args]
    assert [n for n, _, _ in ours] == [n for n, _, _ in theirs], "argument names or order"
    for (n, d1, k1), (_, d2, k2) in zip(ours, theirs):
        assert d1 == d2 and type(d1) is type(d2), f"default of {n}"
        assert k1 == k2, f"keyword-only-ness of {n}"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_inputs_are_forwards(name):
    """The tensors each loss takes are forward's, by name and number."""
    forward = [p for p in inspect.signature(getattr(nn, name).forward).parameters if p != "self"]
    assert list(CATALOG[name].inputs) == forward
    assert CATALOG[name].input_counts() == (len(forward),)


# ---------------------------------------------------------------- configurations
@dataclass
class Case:
    name: str
    kwargs: dict = field(default_factory=dict)
    inputs: tuple = ()  # plain int shapes
    dtypes: tuple = ()  # of each input

    def __str__(self):
        parts = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        ins = ", ".join(f"{d.capitalize()}{list(s)}" for s, d in zip(self.inputs, self.dtypes))
        return f"{self.name}({parts}) on {ins}"


def dims(r, n, lo=1, hi=4):
    return tuple(r.randint(lo, hi) for _ in range(n))


def reduction(r, v, kl=False):
    """reduction, sometimes one torch refuses; now and then the deprecated size_average and reduce, which override
    it (so it stays valid then: torch would not read a wrong one)."""
    choices = ["none", "none", "mean", "sum"] + (["batchmean"] if kl else [])
    if r.random() < 0.2:
        for k in ("size_average", "reduce"):
            if any(a.name == k for a in CATALOG[v["__name"]].args) and r.random() < 0.7:
                v[k] = r.choice([None, True, False])
    if r.random() < 0.85:
        legacy = "size_average" in v or "reduce" in v
        v["reduction"] = r.choice(choices) if r.random() > 0.06 or legacy else "avg"


def slip(r, shape, p=0.12):
    """``shape``, now and then another: one size off, a dim of 1 more, or a dim fewer."""
    if r.random() > p:
        return tuple(shape)
    roll = r.random()
    if roll < 0.4 and shape:
        i = r.randrange(len(shape))
        return (*shape[:i], shape[i] + 1, *shape[i + 1:])
    if roll < 0.7:
        return (*shape, 1)
    return tuple(shape[1:])


def begin(name):
    return {"__name": name}


def finish(r, v, *inputs):
    name = v.pop("__name")
    shapes = tuple(tuple(s) for s, _ in inputs)
    return Case(name, v, shapes, tuple(d for _, d in inputs))


def gen_elementwise(name, targets=("float",), legacy_kl=False):
    def gen(r):
        v = begin(name)
        x = dims(r, r.choice([0, 1, 2, 2, 3]))
        reduction(r, v, kl=legacy_kl)
        for a in CATALOG[name].args:
            if a.name in ("beta", "delta") and r.random() < 0.5:
                v[a.name] = r.choice([1.0, 0.5, 2, 0.0, -1.0])
            if a.name in ("margin",) and r.random() < 0.5:
                v[a.name] = r.choice([1.0, 0.5, 0.0, -1])
            if a.name in ("log_target", "log_input", "full") and r.random() < 0.5:
                v[a.name] = r.random() < 0.5
            if a.name == "eps" and r.random() < 0.3:
                v[a.name] = r.choice([1e-8, 0.1])
            if a.name in ("weight", "pos_weight") and r.random() < 0.2:
                v[a.name] = None
        target = slip(r, x, 0.2)
        if r.random() < 0.05 and x:
            target = (1,) + x[1:]  # broadcasts in torch
        return finish(r, v, (x, "float"), (target, r.choice(targets)))

    return gen


def gen_classes(name, probs=False, ranks=(1, 2, 2, 3, 4)):
    def gen(r):
        v = begin(name)
        reduction(r, v)
        for a in CATALOG[name].args:
            if a.name == "ignore_index" and r.random() < 0.4:
                v[a.name] = r.choice([-100, 0, 1, -1])
            if a.name == "label_smoothing" and r.random() < 0.4:
                v[a.name] = r.choice([0.0, 0.1, 0.5, 1.0, 1.5])
            if a.name == "weight" and r.random() < 0.2:
                v[a.name] = None
            if a.name == "p" and r.random() < 0.5:
                v[a.name] = r.choice([1, 2, 2, 3])
            if a.name == "margin" and r.random() < 0.5:
                v[a.name] = r.choice([1.0, 0.5, 2])
        x = dims(r, r.choice(ranks), 1, 4)
        index = () if len(x) <= 1 else (x[0], *x[2:])
        roll = r.random()
        if probs and roll < 0.3:
            target = (slip(r, x, 0.1), "float")
        else:
            target = (slip(r, index, 0.15), "long")
        return finish(r, v, (x, "float"), target)

    return gen


def gen_multilabel_margin(r):
    v = begin("MultiLabelMarginLoss")
    reduction(r, v)
    x = dims(r, r.choice([0, 1, 2, 2, 3]))
    return finish(r, v, (x, "float"), (slip(r, x, 0.2), "long"))


def gen_multilabel_soft(r):
    v = begin("MultiLabelSoftMarginLoss")
    reduction(r, v)
    if r.random() < 0.2:
        v["weight"] = None
    x = dims(r, r.choice([0, 1, 2, 2, 3]))
    return finish(r, v, (x, "float"), (slip(r, x, 0.2), r.choice(["float", "long"])))


def gen_gaussian(r):
    v = begin("GaussianNLLLoss")
    reduction(r, v)
    if r.random() < 0.4:
        v["full"] = r.random() < 0.5
    if r.random() < 0.3:
        v["eps"] = r.choice([1e-6, 0.1])
    x = dims(r, r.choice([0, 1, 2, 3]), 1, 4)
    roll = r.random()
    if roll < 0.35:
        var = x
    elif roll < 0.6:
        var = x[:-1]
    elif roll < 0.8 and x:
        i = r.randrange(len(x))
        var = (*x[:i], 1, *x[i + 1:])
    else:
        var = slip(r, x, 1.0)
    return finish(r, v, (x, "float"), (slip(r, x, 0.1), "float"), (var, "float"))


def gen_pairs(name):
    """CosineEmbeddingLoss: pairs [B, D] or one pair [D], a target per pair."""

    def gen(r):
        v = begin(name)
        reduction(r, v)
        if r.random() < 0.5:
            v["margin"] = r.choice([0.0, 0.5, -0.5])
        x = dims(r, r.choice([1, 2, 2, 2, 3]))
        x2 = x if r.random() > 0.15 else slip(r, x, 1.0) if r.random() < 0.5 else (1, *x[1:])
        target = (x[0],) if len(x) == 2 else ()
        return finish(r, v, (x, "float"), (x2, "float"), (slip(r, target, 0.15), r.choice(["float", "long"])))

    return gen


def gen_ranking(r):
    v = begin("MarginRankingLoss")
    reduction(r, v)
    if r.random() < 0.5:
        v["margin"] = r.choice([0.0, 0.5, -0.5])
    x = dims(r, r.choice([0, 1, 1, 2, 3]))
    return finish(r, v, (x, "float"), (slip(r, x, 0.1), "float"), (slip(r, x, 0.1), r.choice(["float", "long"])))


def gen_triplet(r):
    v = begin("TripletMarginLoss")
    reduction(r, v)
    for k, choices in (("margin", [1.0, 0.5, 0]), ("p", [2.0, 1.0, 3]), ("eps", [1e-6, 0.0]), ("swap", [True, False])):
        if r.random() < 0.4:
            v[k] = r.choice(choices)
    x = dims(r, r.choice([0, 1, 2, 2, 3]))
    return finish(r, v, (x, "float"), (slip(r, x, 0.1), "float"), (slip(r, x, 0.1), "float"))


def gen_ctc(r):
    v = begin("CTCLoss")
    reduction(r, v)
    if r.random() < 0.4:
        v["blank"] = r.choice([0, 1, 2, 5])
    if r.random() < 0.3:
        v["zero_infinity"] = r.random() < 0.5
    t, n, c, s = r.randint(2, 6), r.randint(1, 3), r.randint(2, 5), r.randint(1, 3)
    if r.random() < 0.2:  # one sequence
        log_probs, targets, lengths = (t, c), (s,), ()
    else:
        log_probs = (t, n, c)
        targets = (n, s) if r.random() < 0.6 else (n * s,)
        lengths = (n,)
    return finish(r, v, (slip(r, log_probs, 0.06), "float"), (slip(r, targets, 0.08), "long"),
                  (slip(r, lengths, 0.1), "long"), (slip(r, lengths, 0.1), "long"))


VALUES, NUMBERS = ("float", "long", "bool"), ("float", "long")
GENERATORS = {
    "MSELoss": gen_elementwise("MSELoss", VALUES),
    "L1Loss": gen_elementwise("L1Loss", NUMBERS),
    "SmoothL1Loss": gen_elementwise("SmoothL1Loss", VALUES),
    "HuberLoss": gen_elementwise("HuberLoss", VALUES),
    "SoftMarginLoss": gen_elementwise("SoftMarginLoss", VALUES),
    "HingeEmbeddingLoss": gen_elementwise("HingeEmbeddingLoss", VALUES),
    "KLDivLoss": gen_elementwise("KLDivLoss", legacy_kl=True),
    "PoissonNLLLoss": gen_elementwise("PoissonNLLLoss", VALUES),
    "BCELoss": gen_elementwise("BCELoss"),
    "BCEWithLogitsLoss": gen_elementwise("BCEWithLogitsLoss"),
    "CrossEntropyLoss": gen_classes("CrossEntropyLoss", probs=True),
    "NLLLoss": gen_classes("NLLLoss"),
    "MultiMarginLoss": gen_classes("MultiMarginLoss", ranks=(0, 1, 2, 2, 3)),
    "MultiLabelMarginLoss": gen_multilabel_margin,
    "MultiLabelSoftMarginLoss": gen_multilabel_soft,
    "GaussianNLLLoss": gen_gaussian,
    "CosineEmbeddingLoss": gen_pairs("CosineEmbeddingLoss"),
    "MarginRankingLoss": gen_ranking,
    "TripletMarginLoss": gen_triplet,
    "CTCLoss": gen_ctc,
}


def test_every_loss_has_a_generator():
    assert sorted(GENERATORS) == LOSS_NAMES


@functools.cache
def cases(name: str) -> tuple[Case, ...]:
    r = random.Random(f"{SEED}-{name}")
    return tuple(GENERATORS[name](r) for _ in range(CONFIGS_PER_LOSS))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_argument_is_exercised(name):
    given = set().union(*(case.kwargs for case in cases(name)))
    never = [a.name for a in CATALOG[name].args if a.name not in given]
    assert not never, f"{name}: no configuration gives {never}"


# ---------------------------------------------------------------- running both sides
@dataclass
class Outcome:
    shape: tuple | None = None
    dtype: str | None = None
    error: BaseException | None = None

    @property
    def ok(self):
        return self.error is None

    def __str__(self):
        return f"{self.shape} {self.dtype}" if self.ok else f"{type(self.error).__name__}: {str(self.error)[:200]}"


def torch_inputs(case: Case, device: str, dtypes=None) -> list:
    """Zeros of each input's shape and dtype: valid class indices, targets, variances. CTCLoss's lengths are
    values its shapes must agree with (the concatenated targets hold sum(target_lengths)): the longest input each,
    and the targets' length split evenly, where it splits."""
    dtypes = dtypes or case.dtypes
    inputs = [torch.zeros(s, dtype=TORCH_DTYPES[d], device=device) for s, d in zip(case.inputs, dtypes)]
    if case.name == "CTCLoss":
        log_probs, targets = case.inputs[0], case.inputs[1]
        inputs[2] = torch.full(case.inputs[2], log_probs[0], dtype=TORCH_DTYPES[dtypes[2]], device=device)
        lengths = torch.zeros(case.inputs[3]).flatten()
        if len(targets) == 2:
            lengths += targets[1]
        elif targets and len(lengths):  # concatenated: lengths that sum to it
            lengths += targets[0] // len(lengths)
            lengths[0] += targets[0] % len(lengths)
        inputs[3] = lengths.reshape(case.inputs[3]).to(TORCH_DTYPES[dtypes[3]]).to(device)
        inputs[1] = torch.ones(targets, dtype=TORCH_DTYPES[dtypes[1]], device=device)  # a class, not the blank
        if case.kwargs.get("blank") == 1:
            inputs[1] = inputs[1] * 0
    return inputs


def run_torch(case: Case, device: str, dtypes=None) -> Outcome:
    """Build the loss and run it (see `torch_inputs`)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = getattr(nn, case.name)(**case.kwargs)
            out = module(*torch_inputs(case, device, dtypes))
        for w in caught:
            if "Using a target size" in str(w.message):  # torch's own word: "will likely lead to incorrect results"
                raise RuntimeError(f"broadcast: {w.message}")
    except Exception as exc:  # noqa: BLE001 -- any refusal of torch's counts
        return Outcome(error=exc)
    return Outcome(tuple(out.shape), NAMED.get(out.dtype, str(out.dtype)))


def bound_of(case: Case):
    layer = CATALOG[case.name]
    shapes = tuple(tuple(Val(d) for d in s) for s in case.inputs)
    return bind(layer, [], {k: Val(v) for k, v in case.kwargs.items()}, shapes), shapes


def run_catalog(case: Case, dtypes=None) -> Outcome:
    """The entry's binding, dtype check and rule, as the elaborator applies them."""
    layer = CATALOG[case.name]
    try:
        bound, shapes = bound_of(case)
        dtypes = dtypes or case.dtypes
        layer.check_dtypes(bound, list(dtypes), shapes)
        out = _unwrap_result(layer.rule(bound, *shapes))
    except CATALOG_ERRORS as exc:
        return Outcome(error=exc)
    return Outcome(out, layer.output_dtypes(bound, out, dtypes[0]))


def torch_broadcasts(case: Case) -> bool:
    """Where torch broadcasts inputs of different shapes that the catalog wants alike (see the docstring)."""
    return any(case.inputs[i] != case.inputs[j] for i, j in SAME.get(case.name, []))


def torch_takes_0d(case: Case) -> bool:
    return case.name in ("MultiMarginLoss", "MultiLabelMarginLoss") and case.inputs[0] == ()


def torch_takes_other_predictions(case: Case, dtypes) -> bool:
    return any(d != "float" for d in dtypes[: PREDICTIONS.get(case.name, 1)])


@dataclass
class Verdict:
    case: Case
    torch: Outcome
    ours: Outcome
    referee: str

    @property
    def agree(self) -> bool:
        if self.torch.ok and self.ours.ok:
            return (self.torch.shape, self.torch.dtype) == (self.ours.shape, self.ours.dtype)
        if self.torch.ok and isinstance(self.ours.error, ShapeProblem) and (torch_broadcasts(self.case)
                                                                             or torch_takes_0d(self.case)):
            return True
        return self.torch.ok == self.ours.ok

    def __str__(self):
        return f"{self.case}\n    torch ({self.referee}): {self.torch}\n    catalog: {self.ours}"


def verdict(case: Case) -> Verdict:
    ours = run_catalog(case)
    theirs, referee = run_torch(case, "meta"), "meta"
    if theirs.ok != ours.ok or not theirs.ok or theirs.shape != ours.shape:
        # meta skips value checks, some losses have no meta kernel, and some meta kernels give other shapes
        # (MultiLabelMarginLoss on one sample [C]: [1] on meta, [] on CPU)
        theirs, referee = run_torch(case, "cpu"), "cpu"
    return Verdict(case, theirs, ours, referee)


@functools.cache
def verdicts(name: str) -> tuple[Verdict, ...]:
    return tuple(verdict(case) for case in cases(name))


# ---------------------------------------------------------------- 2. shapes
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_shape_rule_matches_torch(name):
    wrong = [str(v) for v in verdicts(name) if not v.agree]
    assert not wrong, f"{len(wrong)} of {CONFIGS_PER_LOSS} configurations disagree:\n" + "\n".join(wrong[:8])


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_generator_reaches_both_verdicts(name):
    accepted = sum(v.torch.ok and v.ours.ok for v in verdicts(name))
    refused = sum(not v.ours.ok for v in verdicts(name))
    assert accepted >= CONFIGS_PER_LOSS // 3, f"only {accepted} accepted"
    assert refused >= 3, f"only {refused} refused"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_reduction_is_reached(name):
    """'none' gives the loss per element (or sample); 'mean' and 'sum' a 0-d tensor: each is met, in torch."""
    seen = {}
    for v in verdicts(name):
        if v.torch.ok:
            kind = "0-d" if v.torch.shape == () else "per element"
            seen.setdefault(getattr(nn, name)(**v.case.kwargs).reduction, set()).add(kind)  # the legacy args decide
    assert {"none", "mean", "sum"} <= set(seen), seen
    assert seen["mean"] == seen["sum"] == {"0-d"}


# ---------------------------------------------------------------- 3. dtypes
def dtype_cases(name: str) -> list[Case]:
    return [v.case for v in verdicts(name) if v.torch.ok and v.ours.ok][:4]


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_dtypes_match_torch(name):
    """Every combination of float, long and bool inputs, on CPU: where the predictions are float the catalog
    accepts what torch runs and gives its dtype; a prediction of another dtype it refuses."""
    wrong, checked = [], 0
    for case in dtype_cases(name):
        for dtypes in itertools.product(TORCH_DTYPES, repeat=len(case.inputs)):
            ours, theirs = run_catalog(case, dtypes), run_torch(case, "cpu", dtypes)
            checked += 1
            if torch_takes_other_predictions(case, dtypes):
                if ours.ok:
                    wrong.append(f"{case} as {dtypes}: the catalog takes a {dtypes[0]} prediction")
                continue
            if (ours.ok, ours.dtype) != (theirs.ok, theirs.dtype):
                wrong.append(f"{case} as {dtypes}:\n    torch: {theirs}\n    catalog: {ours}")
    assert checked >= 3 * 3 ** 2, f"{name}: only {checked} runs"
    assert not wrong, f"{len(wrong)} disagreements:\n" + "\n".join(wrong[:8])


def test_the_main_refusals_say_what_to_do():
    ce = Case("CrossEntropyLoss", {}, ((2, 10), (2,)), ("float", "float"))
    err = run_catalog(ce).error
    assert str(err) == "expects a class index target Long[2] for input [2, 10], but the target is [2] float"
    assert "Long[2]" in err.hint
    mse = run_catalog(Case("MSELoss", {}, ((4, 1), (4,)), ("float", "float"))).error
    assert "expects a target of the input's shape [4, 1], but the target is [4]" == str(mse)
    ctc = run_catalog(Case("CTCLoss", {}, ((5, 2, 4), (2, 3), (3,), (2,)), ("float",) + ("long",) * 3)).error
    assert "input_lengths [2]" in str(ctc) and "[T, N, C]" in ctc.hint



