"""modelspec.optim's tables of torch.optim's optimizers and lr schedulers, held against torch itself.

The tables are torch-free; these tests are not. They hold that:

- every optimizer torch.optim exports, and every scheduler torch.optim.lr_scheduler exports, is in the
  tables (less `EXCLUDED`, each with its reason), and the tables name nothing torch lacks;
- every entry's parameters (after ``params`` / ``optimizer``) have torch's names, order, defaults (type
  and value) and keyword-only marks, as ``inspect.signature`` gives them;
- on a few hundred seeded random argument sets per class, valid and invalid alike: where bind accepts,
  torch's class constructs on a tiny model's parameters and trains a few steps, and the code
  optimizer_code / scheduler_code writes builds an object with the same settings as one built directly
  from the same arguments; where bind refuses, torch raises too (building it, or in its first steps), or
  the refusal is one of `DELIBERATE`'s, each with its reason. The counts are printed (pytest -s);
- messages name the class and the argument, with did-you-mean hints;
- importing modelspec.optim imports no torch.
"""

from __future__ import annotations

import collections
import collections.abc
import functools
import inspect
import math
import random
import subprocess
import sys
import types
import typing
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as LRS

from conftest import ROOT
from modelspec import optim as O

CASES = 300  # random argument sets per class
SCHED_STEPS = 12  # scheduler steps run on each accepted case (the pools' counts stay below)


# ---------------------------------------------------------------- what torch exports
def torch_optimizers() -> dict[str, type]:
    return {n: c for n in dir(torch.optim) if inspect.isclass(c := getattr(torch.optim, n))
            and issubclass(c, torch.optim.Optimizer)}


def torch_schedulers() -> dict[str, type]:
    return {n: c for n in dir(LRS) if inspect.isclass(c := getattr(LRS, n))
            and (issubclass(c, LRS.LRScheduler) or c is LRS.ReduceLROnPlateau)}


def signature(cls) -> list[inspect.Parameter]:
    """torch's parameters after params / optimizer (ChainedScheduler takes its optimizer second)."""
    return [p for p in inspect.signature(cls).parameters.values() if p.name not in ("params", "optimizer")]


def test_tables_cover_torch_exactly():
    optimizers, schedulers = torch_optimizers(), torch_schedulers()
    assert set(O.EXCLUDED) <= set(optimizers) | set(schedulers), "EXCLUDED names a class torch lacks"
    assert set(O.OPTIMIZERS) == set(optimizers) - set(O.EXCLUDED)
    assert set(O.SCHEDULERS) == set(schedulers) - set(O.EXCLUDED)
    for name in O.EXCLUDED:
        assert name not in O.OPTIMIZERS and name not in O.SCHEDULERS and O.EXCLUDED[name]
    # the classes the brief names, by name, so that a torch that drops one fails here rather than silently
    for n in ("SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop",
              "LBFGS", "SparseAdam", "Adafactor"):
        assert n in O.OPTIMIZERS
    for n in ("StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
              "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau", "LambdaLR",
              "MultiplicativeLR", "SequentialLR", "ChainedScheduler"):
        assert n in O.SCHEDULERS


def same_value(a, b) -> bool:
    """Equal, and of the same types all the way down (0 is not 0.0, nor a list a tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name", sorted(O.OPTIMIZERS) + sorted(O.SCHEDULERS))
def test_signature_matches_torch(name):
    entry = O.OPTIMIZERS.get(name) or O.SCHEDULERS[name]
    cls = getattr(torch.optim, name, None) if name in O.OPTIMIZERS else getattr(LRS, name)
    theirs = signature(cls)
    assert [p.name for p in entry.params] == [p.name for p in theirs]
    for mine, t in zip(entry.params, theirs):
        if t.default is inspect.Parameter.empty:
            assert mine.default is O.REQUIRED, (name, mine.name)
        else:
            assert same_value(mine.default, t.default), (name, mine.name, mine.default, t.default)
        assert mine.kw_only == (t.kind is inspect.Parameter.KEYWORD_ONLY), (name, mine.name)
        assert t.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        assert mine.doc, (name, mine.name, "has no doc")


# ---------------------------------------------------------------- torch's annotations, as a type oracle
_ANNOTATION_NAMES = {**vars(LRS), **vars(typing), "Callable": collections.abc.Callable,
                     "Iterable": collections.abc.Iterable, "Sequence": collections.abc.Sequence}


def annotation(cls, arg: str):
    a = inspect.signature(cls).parameters[arg].annotation
    if isinstance(a, str):
        try:
            a = eval(a, dict(_ANNOTATION_NAMES))
        except Exception:
            return object  # unknown: nothing matches it
    return a


def matches(v, t) -> bool:
    """Whether the plain value ``v`` has the type torch's annotation ``t`` declares (an int counts as a float,
    as PEP 484 says; a bool is neither; a tensor or a function is never a spec's value)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if t is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t in (bool, str):
        return isinstance(v, t)
    if t is type(None) or t is None:
        return v is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(v, a) for a in args)
    if origin is typing.Literal:
        return isinstance(v, str) and v in args
    if origin is tuple:
        if not isinstance(v, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(matches(x, args[0]) for x in v)
        return len(v) == len(args) and all(matches(x, a) for x, a in zip(v, args))
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence):
        return isinstance(v, (tuple, list)) and all(matches(x, args[0]) for x in v)
    return False


def has_nan(v) -> bool:
    if isinstance(v, float):
        return math.isnan(v)
    return isinstance(v, (tuple, list)) and any(has_nan(x) for x in v)


def numbers(v):
    """The numbers in v (itself, or a tuple's or list's)."""
    items = v if isinstance(v, (tuple, list)) else [v]
    return [x for x in items if isinstance(x, (int, float)) and not isinstance(x, bool)]


# ---------------------------------------------------------------- deliberate refusals
# Each: (reason, predicate(class name, argument, value, torch's annotation)). A refusal by bind that torch
# does not share (torch builds the object and trains its first steps) must be one of these.
COUNTS = {"step_size", "total_iters", "T_max", "T_0", "step_size_up", "step_size_down", "total_steps", "epochs",
          "steps_per_epoch", "max_iter", "max_eval", "history_size"}
RATES = {"eta_min", "min_lr", "base_lr", "max_lr", "base_momentum", "max_momentum"}
DELIBERATE = [
    ("a scheduler that needs a Python function or other schedulers, which a spec cannot give",
     lambda c, a, v, t: c in ("LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler")),
    ("a tensor (torch takes a 1-element tensor lr), which a spec's values never are",
     lambda c, a, v, t: isinstance(v, torch.Tensor)),
    ("a value of another type than torch's signature declares, which torch lets through because it only compares "
     "(True for a number, 30.0 for a count, 'yes' for a flag, a 3-tuple for a pair, a string torch never reads)",
     lambda c, a, v, t: not matches(v, t)),
    ("nan, which passes torch's comparisons and makes every update nan", lambda c, a, v, t: has_nan(v)),
    ("differentiable=True, for differentiating through the step: a training loop's step fails with it",
     lambda c, a, v, t: a == "differentiable" and v is True),
    ("a count below 1 (a step size, a period, a number of iterations or epochs): no schedule",
     lambda c, a, v, t: a in COUNTS and any(x < 1 for x in numbers(v))),
    ("patience, cooldown or ns_steps below 0", lambda c, a, v, t: a in ("patience", "cooldown", "ns_steps")
     and any(x < 0 for x in numbers(v))),
    ("a gamma of 0 or less: the learning rate would vanish or turn negative",
     lambda c, a, v, t: a == "gamma" and any(x <= 0 for x in numbers(v))),
    ("a negative learning rate or momentum given to a scheduler: torch's optimizers refuse those themselves",
     lambda c, a, v, t: a in RATES and any(x < 0 for x in numbers(v))),
    ("milestones that are empty, not increasing, or not positive",
     lambda c, a, v, t: a == "milestones" and isinstance(v, (list, tuple))
     and (not v or any(not isinstance(x, int) or x < 1 for x in v) or any(y <= x for x, y in zip(v, v[1:])))),
    ("ReduceLROnPlateau's factor of 0 or less, or a negative threshold or eps",
     lambda c, a, v, t: c == "ReduceLROnPlateau" and (
         (a == "factor" and any(x <= 0 for x in numbers(v))) or (a in ("threshold", "eps") and any(x < 0 for x in
                                                                                                  numbers(v))))),
    ("OneCycleLR's div_factor or final_div_factor below 0", lambda c, a, v, t: c == "OneCycleLR"
     and a in ("div_factor", "final_div_factor") and any(x < 0 for x in numbers(v))),
    ("OneCycleLR's pct_start where a phase of the cycle is 0 steps long (torch divides by its length in a later "
     "step than the test runs)", lambda c, a, v, t: c == "OneCycleLR" and a == "pct_start"),
    ("CyclicLR's scale_mode other than 'cycle' or 'iterations' (torch ignores it without a scale_fn)",
     lambda c, a, v, t: c == "CyclicLR" and a == "scale_mode"),
    ("RMSprop's alpha above 1: the squared average turns negative and its root nan",
     lambda c, a, v, t: c == "RMSprop" and a == "alpha" and any(x > 1 for x in numbers(v))),
    ("Rprop's step_sizes negative, or the largest first", lambda c, a, v, t: c == "Rprop" and a == "step_sizes"
     and (any(x < 0 for x in numbers(v)) or (len(numbers(v)) == 2 and numbers(v)[0] > numbers(v)[1]))),
    ("Muon's eps below 0", lambda c, a, v, t: c == "Muon" and a == "eps" and any(x < 0 for x in numbers(v))),
    ("ConstantLR's factor 0, PolynomialLR's negative power: torch divides by 0 when total_iters end",
     lambda c, a, v, t: (c, a) in (("ConstantLR", "factor"), ("PolynomialLR", "power"))),
    ("LBFGS's line_search_fn other than 'strong_wolfe' or Muon's ns_steps of 100 or more: the first step raises",
     lambda c, a, v, t: (c, a) in (("LBFGS", "line_search_fn"), ("Muon", "ns_steps"))),
]


def deliberate(cls_name: str, cls, problem: O.OptimProblem, given: dict):
    """The reason of the deliberate refusal ``problem`` is, or None."""
    arg = problem.arg
    if cls_name in ("LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"):
        return DELIBERATE[0][0]
    if arg is None or arg not in given:
        return None
    t = annotation(cls, arg)
    for reason, pred in DELIBERATE:
        if pred(cls_name, arg, given[arg], t):
            return reason
    return None


# ---------------------------------------------------------------- value pools
NAN, INF = float("nan"), float("inf")
NUMBER = [0, 0.0, 1, 0.5, 0.01, 0.001, 2, 10, 0.9, 1.0, -0.1, -1, 1.5, INF, NAN, True, False, None, "0.1", "x",
          (0.1,), [0.1, 0.2]]
FLAGS = [True, False, True, False, None, 0, 1, "yes"]
COUNT = [1, 2, 3, 5, 10, 1, 4, 0, -1, 3.0, 2.5, True, None, "5"]
LR = [0.1, 0.01, 0.001, 1, 0, 0.0, 0.5, 1e-4, -0.01, -1, True, "0.1", None, NAN, INF, (0.1,), torch.tensor(0.01)]
BETAS = [(0.9, 0.999), (0.5, 0.9), [0.9, 0.99], (0.0, 0.0), (0.0, 0.5), (0, 0.999), (0.9, 1.0), (1.0, 0.9),
         (-0.1, 0.9), (0.9,), (0.9, 0.99, 0.5), 0.9, (True, 0.9), ("a", 0.9), None, (0.9, NAN), (0.95, 0.999)]
NONNEG = [0, 0.0, 1e-8, 1e-3, 0.1, 1, 0.01, -1e-8, -0.1, None, "1e-8", True, NAN, INF]
PER_GROUP = [0.1, 0.01, 1, 0, 0.5, [0.1], (0.05,), [0.1, 0.2], -0.1, [-0.1], None, "0.1", True, NAN, [True]]
MOMENTA = [0.8, 0.9, 0.85, 0.95, 0.5, 0, [0.9], -0.1, 1.5, None, "x", True]
POOLS = {
    "lr": LR, "momentum": [0, 0.0, 0.5, 0.9, 0.99, 1, 1.5, -0.1, -1, None, "0.9", True, NAN],
    "dampening": [0, 0.0, 0.1, 0.5, -0.5, 1, None, "x", True, NAN],
    "weight_decay": NONNEG, "eps": NONNEG, "nesterov": FLAGS, "maximize": FLAGS, "foreach": FLAGS, "fused": FLAGS,
    "capturable": FLAGS + [False, False], "differentiable": FLAGS + [False, False, False], "amsgrad": FLAGS,
    "decoupled_weight_decay": FLAGS, "centered": FLAGS, "betas": BETAS,
    "lr_decay": NONNEG, "initial_accumulator_value": NONNEG, "rho": [0, 0.5, 0.9, 1, 1.0, 1.1, -0.1, None, True],
    "lambd": [1e-4, 0, 0.1, -1, None, "x", True], "alpha": [0.75, 0.99, 0.5, 0, 1, 1.5, -0.1, None, True, "x"],
    "t0": [1e6, 0, 10, 1.5, -5, None, "x", True], "momentum_decay": NONNEG,
    "etas": [(0.5, 1.2), (0.3, 2), [0.5, 1.5], (0.0, 1.2), (0.5, 1.0), (1.0, 1.5), (1.2, 0.5), (0.5,), 0.5, None,
             (0.5, 1.2, 2.0), (True, 1.2)],
    "step_sizes": [(1e-6, 50), (0.001, 1), (0, 10), [1e-6, 50], (1, 0.5), (-1, 50), (1e-6,), None, (1e-6, "x"),
                   (1e-6, 50, 1)],
    "max_iter": COUNT + [20], "max_eval": COUNT + [None, None, 25], "history_size": COUNT + [100, 10],
    "tolerance_grad": [1e-7, 0, 1e-5, -1, None, "x", True], "tolerance_change": [1e-9, 0, 1e-5, -1, None, "x"],
    "line_search_fn": [None, None, "strong_wolfe", "wolfe", "x", 1, True],
    "beta2_decay": [-0.8, -0.5, 0, 0.0, 0.1, -1, None, True, "x"], "d": [1.0, 1, 2.0, 0.5, 0, None, True],
    "ns_coefficients": [(3.4445, -4.775, 2.0315), (3, -4, 2), [3.0, -4.0, 2.0], (1, 2), (1, 2, 3, 4), 3.0, None,
                        ("a", 1, 2)],
    "ns_steps": [5, 1, 0, 3, 10, 99, 100, -1, 5.0, None, True],
    "adjust_lr_fn": [None, None, "original", "match_rms_adamw", "x", 1],
    # schedulers
    "last_epoch": [-1, -1, -1, -1, 0, 5, -2, -1.0, None, True],
    "step_size": COUNT, "gamma": [0.1, 0.5, 0.9, 1, 1.0, 2, 0, -0.1, None, "0.1", True, NAN],
    "milestones": [[2, 5], [1, 3, 6], (2, 4), [3], [5, 2], [2, 2], [], [0, 3], [2.0, 4], 3, None, [-1, 2], [True]],
    "factor": [0.1, 0.5, 1 / 3, 1, 1.0, 0, 0.0, 0.9, 1.5, -0.1, None, True, "x"],
    "total_iters": COUNT, "start_factor": [1 / 3, 0.1, 0.5, 1, 1.0, 0, 1.5, -0.1, None, True],
    "end_factor": [1.0, 0.5, 0, 0.0, 1, 1.5, -0.1, None, True], "power": [1.0, 2, 0.5, 0, -1, None, True, "x"],
    "T_max": COUNT, "T_0": COUNT, "T_mult": [1, 2, 3, 0, -1, 2.0, None, True], "eta_min": NONNEG,
    "patience": [10, 0, 1, 3, -1, 2.0, None, True], "threshold": NONNEG, "cooldown": [0, 1, 2, -1, 1.0, None, True],
    "min_lr": PER_GROUP, "threshold_mode": ["rel", "abs", "relative", None, 1],
    "base_lr": PER_GROUP, "max_lr": PER_GROUP, "step_size_up": COUNT, "step_size_down": COUNT + [None, None],
    "scale_fn": [None, None, None, "x", 1], "scale_mode": ["cycle", "iterations", "x", None],
    "cycle_momentum": FLAGS + [False], "base_momentum": MOMENTA, "max_momentum": MOMENTA,
    "total_steps": COUNT + [None, 20, 100], "epochs": COUNT + [None], "steps_per_epoch": COUNT + [None],
    "pct_start": [0.3, 0.25, 0.5, 0.0, 1.0, 0.1, 0, 1, 1.5, -0.1, None, True],
    "anneal_strategy": ["cos", "linear", "cosine", None, 1], "div_factor": [25.0, 10, 1, 0, -1, 0.5, None, True],
    "final_div_factor": [1e4, 100, 1, 0, -1, None, True], "three_phase": FLAGS,
}
CLASS_POOLS = {
    ("Adafactor", "eps"): [(None, 1e-3), (1e-30, 1e-3), (None, 0), (0, 0.0), [None, 1e-3], (None, -1), (-1, 1e-3),
                           1e-3, (None,), (None, 1e-3, 1), None, ("x", 1e-3), (True, 1e-3)],
    ("ReduceLROnPlateau", "mode"): ["min", "max", "minimum", None, 1],
    ("CyclicLR", "mode"): ["triangular", "triangular2", "exp_range", "triangle", None, 1],
    ("CyclicLR", "gamma"): [1.0, 0.99, 0.9, 1, 0, -0.5, None, True],
}


class Make:
    """A pool value that torch needs as an object made on the case's optimizer (a function, a scheduler); bind
    gets the Make itself, which it must refuse, since a spec cannot give one."""

    def __init__(self, make):
        self.make = make

    def __repr__(self):
        return "Make(...)"


SCHEDULER_OBJECTS = [Make(lambda opt: [LRS.StepLR(opt, 2)]), Make(lambda opt: [LRS.StepLR(opt, 2),
                                                                             LRS.ExponentialLR(opt, 0.9)]), [], None]
CLASS_POOLS.update({
    ("LambdaLR", "lr_lambda"): [Make(lambda opt: lambda epoch: 0.9 ** epoch), None, 0.5, "x"],
    ("MultiplicativeLR", "lr_lambda"): [Make(lambda opt: lambda epoch: 0.95), None, 0.5],
    ("SequentialLR", "schedulers"): SCHEDULER_OBJECTS, ("SequentialLR", "milestones"): [[2], [], [2, 4], None],
    ("ChainedScheduler", "schedulers"): SCHEDULER_OBJECTS,
})


def pool(cls_name: str, arg: str) -> list:
    """The values drawn for an argument; each pool starts with four typical (valid) ones."""
    return CLASS_POOLS.get((cls_name, arg)) or POOLS.get(arg) or NUMBER


def draw(rng: random.Random, values: list):
    return rng.choice(values[:4] if rng.random() < 0.5 else values)


def test_every_parameter_has_a_pool():
    missing = [(e.name, p.name) for t in (O.OPTIMIZERS, O.SCHEDULERS) for e in t.values() for p in e.params
               if (e.name, p.name) not in CLASS_POOLS and p.name not in POOLS]
    assert not missing


def draw_case(rng: random.Random, entry) -> tuple[list, dict]:
    """Positional and keyword arguments for one call: some parameters (the required ones, mostly), each value
    drawn from its pool, a prefix of them by position now and then, and now and then a slip of the call itself
    (an unknown keyword, one too many positionals, one given twice, a required one left out)."""
    params = list(entry.params)
    required = [p for p in params if p.default is O.REQUIRED]
    optional = [p for p in params if p.default is not O.REQUIRED]
    chosen = set(p.name for p in rng.sample(optional, min(len(optional), rng.choice([0, 1, 1, 2, 2, 3, 4]))))
    if rng.random() < 0.95:
        chosen |= {p.name for p in required}
    positional = [p for p in params if not p.kw_only]
    values = {p.name: draw(rng, pool(entry.name, p.name)) for p in params if p.name in chosen}
    args, kwargs = [], {}
    n_pos = 0
    if rng.random() < 0.3:
        while n_pos < len(positional) and positional[n_pos].name in values:
            n_pos += 1
        n_pos = rng.randint(0, n_pos)
    for p in params:
        if p.name not in values:
            continue
        if p in positional and positional.index(p) < n_pos:
            args.append(values[p.name])
        else:
            kwargs[p.name] = values[p.name]
    slip = rng.random()
    if slip < 0.03:
        name = rng.choice(params).name
        kwargs[name[:-1] + "x" if len(name) > 1 else name + "x"] = 1
    elif slip < 0.05:  # every positional parameter by position, and one more
        args = [values.get(p.name, draw(rng, pool(entry.name, p.name))) for p in positional] + [0.1]
        kwargs = {k: v for k, v in kwargs.items() if k not in {p.name for p in positional}}
    elif slip < 0.07 and args:
        kwargs[positional[0].name] = args[0]
    return args, kwargs


def given_values(entry, args, kwargs) -> dict:
    """The values each parameter was given, by name (as Python would bind them, where it can)."""
    positional = [p.name for p in entry.params if not p.kw_only]
    out = dict(zip(positional, args))
    out.update({k: v for k, v in kwargs.items() if k not in out})
    return out


def resolve(v, opt):
    if isinstance(v, Make):
        return v.make(opt)
    return v


# ---------------------------------------------------------------- running torch
def settings(v):
    """Comparable settings: tensors as lists, tuples as lists, callables by name, nan as a marker."""
    if isinstance(v, torch.Tensor):
        return settings(v.tolist())
    if isinstance(v, dict):
        return {k: settings(x) for k, x in v.items() if k != "params"}
    if isinstance(v, (list, tuple)):
        return [settings(x) for x in v]
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, functools.partial):
        return ["partial", settings(v.func), settings(list(v.args))]
    if callable(v):
        return getattr(v, "__qualname__", type(v).__name__)
    return v


def model_for(entry):
    """A tiny model, and the expression for the parameters this optimizer trains in it."""
    torch.manual_seed(0)
    if entry.sparse_grads:
        return torch.nn.Embedding(4, 2, sparse=True), "model.parameters()"
    model = torch.nn.Linear(2, 2)
    return model, ("[model.weight]" if entry.only_2d else "model.parameters()")


def train_steps(model, opt, entry, n=2):
    x = torch.tensor([0, 2]) if isinstance(model, torch.nn.Embedding) else torch.ones(3, 2)

    def closure():
        opt.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(n):
        if entry.needs_closure:
            opt.step(closure)
        else:
            closure()
            opt.step()


def run_optimizer(entry, cls, args, kwargs):
    """('ok', optimizer) or ('build' / 'step', the exception)."""
    model, expr = model_for(entry)
    params = eval(expr, {"model": model})
    try:
        opt = cls(params, *args, **kwargs)
    except Exception as e:  # noqa: BLE001 - torch raises TypeError, ValueError, RuntimeError, KeyError, ...
        return "build", e
    try:
        train_steps(model, opt, entry)
    except Exception as e:  # noqa: BLE001
        return "step", e
    return "ok", opt


OPTIMIZER_FOR_SCHEDULERS = [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01}), ("Adagrad", {"lr": 0.1})]


def make_optimizer(opt_name, opt_kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    return model, getattr(torch.optim, opt_name)(model.parameters(), **opt_kwargs)


def fill_for_torch(entry, args, kwargs):
    """What the trainer fills (OneCycleLR's epochs and steps_per_epoch, where the spec gives neither them nor
    total_steps), as the test's own rule, to call torch with: epochs=3, steps_per_epoch=4."""
    if entry.name != "OneCycleLR":
        return args, kwargs
    given = given_values(entry, args, kwargs)
    if given.get("total_steps") is not None:
        return args, kwargs
    args, kwargs = list(args), dict(kwargs)
    positional = [p.name for p in entry.params if not p.kw_only]
    for name, value in (("epochs", 3), ("steps_per_epoch", 4)):
        if given.get(name) is None:
            if name in positional and positional.index(name) < len(args):
                args[positional.index(name)] = value
            else:
                kwargs[name] = value
    return args, kwargs


def scheduler_steps(model, opt, sched, entry):
    n = SCHED_STEPS
    if entry.name == "OneCycleLR":
        n = min(n, sched.total_steps)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7]
    for i in range(n):
        opt.zero_grad()
        model(torch.ones(3, 2)).pow(2).sum().backward()
        opt.step()
        if entry.needs_metric:
            sched.step(metrics[i % len(metrics)])
        else:
            sched.step()


def run_scheduler(entry, cls, args, kwargs, opt_name, opt_kwargs):
    model, opt = make_optimizer(opt_name, opt_kwargs)
    args = [resolve(v, opt) for v in args]
    kwargs = {k: resolve(v, opt) for k, v in kwargs.items()}
    try:
        if entry.name == "ChainedScheduler":  # its optimizer comes second, after the schedulers
            sched = cls(*args, **kwargs, optimizer=opt)
        else:
            sched = cls(opt, *args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return "build", e
    try:
        scheduler_steps(model, opt, sched, entry)
    except Exception as e:  # noqa: BLE001
        return "step", e
    return "ok", (opt, sched)


# ---------------------------------------------------------------- the random cases
class Tally:
    def __init__(self):
        self.counts = collections.Counter()
        self.filled = 0
        self.reasons = collections.Counter()
        self.failures: list[str] = []

    def fail(self, text: str):
        self.failures.append(text)


REPORT: dict[str, Tally] = {}


def check_refusal(tally: Tally, entry, cls, problem, args, kwargs, outcome, gpu_case: bool):
    assert str(problem) and isinstance(problem, O.OptimProblem)
    kind, _ = outcome
    if kind == "build":
        tally.counts["refused; torch raises building it"] += 1
    elif kind == "step" and not gpu_case:
        tally.counts["refused; torch raises in its first steps"] += 1
    else:
        reason = deliberate(entry.name, cls, problem, given_values(entry, args, kwargs))
        if reason is None:
            tally.fail(f"{entry.name}(*{args!r}, **{kwargs!r}): bind refuses ({problem}; arg={problem.arg}), "
                       f"torch accepts ({kind})")
        else:
            tally.counts["refused deliberately; torch accepts"] += 1
            tally.reasons[reason] += 1


def optimizer_case(tally: Tally, entry, cls, args, kwargs):
    try:
        bound = O.bind_optimizer(entry.name, args, kwargs)
    except O.OptimProblem as p:
        problem, bound = p, None
    gpu_case = any(given_values(entry, args, kwargs).get(f) for f in entry.gpu_flags)
    outcome = run_optimizer(entry, cls, args, kwargs)
    if bound is None:
        check_refusal(tally, entry, cls, problem, args, kwargs, outcome, gpu_case)
        return
    kind, got = outcome
    notes = O.optimizer_notes(entry.name, bound)
    if kind == "build" or (kind == "step" and not any("GPU" in n for n in notes)):
        tally.fail(f"{entry.name}(*{args!r}, **{kwargs!r}): bind accepts, torch raises ({kind}): {got!r}")
        return
    tally.counts["accepted; torch builds it" + (" and trains" if kind == "ok" else " (its step needs a GPU)")] += 1
    assert list(bound) == [p.name for p in entry.params]
    model, expr = model_for(entry)
    code = O.optimizer_code(entry.name, bound, expr)
    compile(code, "<optimizer_code>", "eval")
    built = eval(code, {"torch": torch, "model": model})
    model2, _ = model_for(entry)
    direct = cls(eval(expr, {"model": model2}), *args, **kwargs)
    if settings(built.param_groups) != settings(direct.param_groups) or \
            settings(built.defaults) != settings(direct.defaults):
        tally.fail(f"{entry.name}(*{args!r}, **{kwargs!r}): {code} builds {settings(built.param_groups)}, "
                   f"the call {settings(direct.param_groups)}")


def scheduler_case(tally: Tally, entry, cls, args, kwargs, rng):
    opt_name, opt_kwargs = rng.choice(OPTIMIZER_FOR_SCHEDULERS)
    try:
        bound = O.bind_scheduler(entry.name, args, kwargs, optimizer=opt_name)
    except O.OptimProblem as p:
        problem, bound = p, None
    targs, tkwargs = fill_for_torch(entry, args, kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = run_scheduler(entry, cls, targs, tkwargs, opt_name, opt_kwargs)
    if bound is None:
        check_refusal(tally, entry, cls, problem, args, kwargs, outcome, False)
        return
    kind, got = outcome
    if kind != "ok":
        tally.fail(f"{entry.name}(*{args!r}, **{kwargs!r}) on {opt_name}: bind accepts, torch raises ({kind}): "
                   f"{got!r}")
        return
    tally.counts["accepted; torch builds it and steps it"] += 1
    assert list(bound) == [p.name for p in entry.params]
    fills = O.scheduler_fills(entry.name, bound)
    if fills:
        tally.filled += 1
    code = O.scheduler_code(entry.name, bound, fills={"epochs": "epochs", "steps_per_epoch": "len(train_loader)"})
    compile(code, "<scheduler_code>", "eval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, opt1 = make_optimizer(opt_name, opt_kwargs)
        built = eval(code, {"torch": torch, "optimizer": opt1, "epochs": 3, "train_loader": range(4)})
        _, opt2 = make_optimizer(opt_name, opt_kwargs)
        direct = cls(opt2, *targs, **tkwargs)
    if settings(built.state_dict()) != settings(direct.state_dict()) or \
            settings(opt1.param_groups) != settings(opt2.param_groups):
        tally.fail(f"{entry.name}(*{args!r}, **{kwargs!r}): {code} builds {settings(built.state_dict())}, "
                   f"the call {settings(direct.state_dict())}")


def finish(name: str, tally: Tally, refused_only: bool = False):
    REPORT[name] = tally
    lines = [f"{name}: {sum(tally.counts.values())} cases"] + [f"  {n:5}  {k}" for k, n in
                                                               sorted(tally.counts.items())]
    if tally.filled:
        lines.append(f"         of the accepted, {tally.filled} with arguments the trainer fills")
    lines += [f"         deliberate: {n:4}  {r[:90]}" for r, n in tally.reasons.most_common()]
    print("\n".join(lines))
    assert not tally.failures, f"{len(tally.failures)} disagreements with torch, the first:\n" + \
        "\n".join(tally.failures[:8])
    accepted = sum(n for k, n in tally.counts.items() if k.startswith("accepted;"))
    if refused_only:
        assert accepted == 0
    else:  # the generator reaches both sides of every class
        assert accepted >= CASES // 10, (name, tally.counts)
        assert sum(tally.counts.values()) - accepted >= CASES // 10, (name, tally.counts)


@pytest.mark.parametrize("name", sorted(O.OPTIMIZERS))
def test_random_optimizer_arguments_agree_with_torch(name):
    entry, cls = O.OPTIMIZERS[name], getattr(torch.optim, name)
    rng = random.Random(f"optimizer {name}")
    tally = Tally()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(CASES):
            args, kwargs = draw_case(rng, entry)
            optimizer_case(tally, entry, cls, args, kwargs)
    finish(name, tally)


@pytest.mark.parametrize("name", sorted(O.SCHEDULERS))
def test_random_scheduler_arguments_agree_with_torch(name):
    entry, cls = O.SCHEDULERS[name], getattr(LRS, name)
    rng = random.Random(f"scheduler {name}")
    tally = Tally()
    for _ in range(CASES if not entry.refused else CASES // 5):
        args, kwargs = draw_case(rng, entry)
        scheduler_case(tally, entry, cls, args, kwargs, rng)
    finish(name, tally, refused_only=bool(entry.refused))
    if entry.refused:
        assert tally.reasons[DELIBERATE[0][0]] > 0, "no case where torch accepts the refused scheduler"


def test_defaults_pass_their_checks():
    for e in [*O.OPTIMIZERS.values(), *O.SCHEDULERS.values()]:
        for p in e.params:
            if p.default is not O.REQUIRED:
                assert same_value(p.check(p.default), p.default), (e.name, p.name)


@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_zero_length_phases_as_torch(three_phase):
    """OneCycleLR divides by a phase's length in the steps that fall in it: bind refuses exactly the pct_start
    and total_steps where torch, building it and stepping it total_steps times, raises ZeroDivisionError."""
    seen = collections.Counter()
    for total in range(1, 25):
        pcts = {round(i / 20, 2) for i in range(21)} | {1 / total, 2 / total, (total + 1) / (2 * total),
                                                        0.5 / total, 1.5 / total}
        for pct in sorted(p for p in pcts if 0 <= p <= 1):
            model, opt = make_optimizer("SGD", {"lr": 0.1, "momentum": 0.9})
            try:
                sched = LRS.OneCycleLR(opt, 0.1, total_steps=total, pct_start=float(pct), three_phase=three_phase)
                for _ in range(total):
                    opt.step()
                    sched.step()
                torch_ok = True
            except ZeroDivisionError:
                torch_ok = False
            try:
                O.bind_scheduler("OneCycleLR", [0.1], {"total_steps": total, "pct_start": float(pct),
                                                       "three_phase": three_phase})
                ours = True
            except O.OptimProblem as p:
                assert p.arg == "pct_start", p
                ours = False
            assert ours == torch_ok, (total, pct, three_phase)
            seen[torch_ok] += 1
    assert seen[False] > 0 and seen[True] > 0, seen


# ---------------------------------------------------------------- messages, names, code
def problem(fn, *a, **k) -> O.OptimProblem:
    with pytest.raises(O.OptimProblem) as info:
        fn(*a, **k)
    return info.value


def test_messages_name_the_class_and_the_argument():
    p = problem(O.bind_optimizer, "SGD", [], {"lr": -0.1})
    assert str(p) == "SGD's lr must be a number >= 0, not -0.1" and p.arg == "lr" and p.index is None
    p = problem(O.bind_optimizer, "SGD", [0.1, -0.5], {})
    assert "SGD's momentum" in str(p) and p.arg == "momentum" and p.index == 1
    p = problem(O.bind_optimizer, "Adam", [], {"betas": (0.9, 1.0)})
    assert str(p).startswith("Adam's betas must be a pair (beta1, beta2)") and "(0.9, 1.0)" in str(p)
    p = problem(O.bind_optimizer, "Adam", [], {"betas": (0, 0.999)})
    assert "Adam's betas" in str(p) and "0.0" in p.hint
    p = problem(O.bind_optimizer, "SGD", [], {"nesterov": True})
    assert str(p).startswith("SGD's nesterov=True needs momentum > 0") and p.arg == "nesterov"
    p = problem(O.bind_optimizer, "SGD", [], {"lr": True})
    assert "SGD's lr" in str(p) and "True" in str(p) and p.hint
    p = problem(O.bind_optimizer, "AdamW", [], {"fused": True, "foreach": True})
    assert "AdamW's fused" in str(p) and "foreach" in str(p)
    p = problem(O.bind_scheduler, "StepLR", [], {"step_size": 0})
    assert str(p) == "StepLR's step_size must be a positive integer, not 0" and p.arg == "step_size"
    p = problem(O.bind_scheduler, "StepLR", [30.0], {})
    assert "not the float 30.0" in str(p) and p.index == 0 and "write 30" in p.hint
    p = problem(O.bind_scheduler, "StepLR", [], {})
    assert str(p).startswith("StepLR needs step_size") and p.arg == "step_size"
    p = problem(O.bind_scheduler, "MultiStepLR", [[30, 10]], {})
    assert "MultiStepLR's milestones" in str(p) and "[10, 30]" in p.hint
    p = problem(O.bind_scheduler, "ExponentialLR", [], {"gamma": -0.5})
    assert str(p) == "ExponentialLR's gamma must be a number > 0, not -0.5"
    p = problem(O.bind_scheduler, "StepLR", [10], {"last_epoch": 3})
    assert "StepLR's last_epoch must be -1" in str(p) and "state_dict" in p.hint
    p = problem(O.bind_scheduler, "OneCycleLR", [0.1], {"total_steps": 4, "pct_start": 0.25})
    assert "OneCycleLR's pct_start" in str(p) and p.arg == "pct_start"
    p = problem(O.bind_scheduler, "CyclicLR", [0.01, 0.1], {}, optimizer="Adagrad")
    assert "CyclicLR's cycle_momentum" in str(p) and "Adagrad" in str(p)
    p = problem(O.bind_scheduler, "ReduceLROnPlateau", [], {"mode": "minimum"})
    assert "ReduceLROnPlateau's mode must be 'min' or 'max'" in str(p) and p.hint == "did you mean min?"
    p = problem(O.bind_optimizer, "SGD", [], {"lr": torch.tensor(0.1)})
    assert "SGD's lr" in str(p) and "tensor" in str(p)


def test_binding_like_python():
    p = problem(O.bind_optimizer, "SGD", [0.1, 0.9, 0, 0, False, True], {})
    assert "SGD takes at most 5 arguments by position" in str(p) and p.index == 5 and "maximize" in p.hint
    p = problem(O.bind_optimizer, "SGD", [0.1], {"lr": 0.2})
    assert "SGD got lr twice" in str(p) and p.arg == "lr"
    p = problem(O.bind_optimizer, "Adam", [], {"learning_rate": 0.1})
    assert str(p) == "Adam has no argument 'learning_rate'" and p.hint.startswith("did you mean lr?")
    p = problem(O.bind_optimizer, "Adam", [], {"weight_decy": 0.1})
    assert p.hint.startswith("did you mean weight_decay?") and p.arg == "weight_decy"
    p = problem(O.bind_scheduler, "StepLR", [30], {"verbose": True})
    assert "verbose" in p.hint and "get_last_lr" in p.hint
    p = problem(O.bind_optimizer, "SGD", [], {"params": 1})
    assert "trainer" in str(p)
    assert O.bind_optimizer("SGD", [0.1, 0.9], {"nesterov": True})["nesterov"] is True
    assert list(O.bind_scheduler("OneCycleLR", [0.1], {"total_steps": 100})) == [
        p.name for p in O.SCHEDULERS["OneCycleLR"].params]


def test_unknown_names_and_did_you_mean():
    p = problem(O.bind_optimizer, "Adamm", [], {})
    assert str(p) == "unknown optimizer 'Adamm'" and p.hint.startswith("did you mean Adam")
    p = problem(O.bind_optimizer, "adamw", [], {})
    assert p.hint.startswith("did you mean AdamW?")
    p = problem(O.bind_optimizer, "StepLR", [], {})
    assert "scheduler" in p.hint
    p = problem(O.bind_scheduler, "SGD", [], {})
    assert str(p) == "unknown scheduler 'SGD'" and "optimizer" in p.hint
    p = problem(O.bind_scheduler, "CosineAnealingLR", [10], {})
    assert p.hint.startswith("did you mean CosineAnnealingLR")
    p = problem(O.bind_optimizer, "Optimizer", [], {})
    assert "base class" in p.hint
    p = problem(O.bind_scheduler, "LambdaLR", [], {})
    assert "Python function" in str(p) and p.hint
    p = problem(O.bind_scheduler, "SequentialLR", [], {})
    assert "other scheduler" in str(p)


def test_names():
    assert O.optimizer_name("SGD") == O.optimizer_name("optim.SGD") == O.optimizer_name("torch.optim.SGD") == "SGD"
    assert O.optimizer_name("lr_scheduler.StepLR") is None and O.optimizer_name("torch.nn.SGD") is None
    assert O.scheduler_name("StepLR") == O.scheduler_name("lr_scheduler.StepLR") == \
        O.scheduler_name("optim.lr_scheduler.StepLR") == O.scheduler_name("torch.optim.lr_scheduler.StepLR") == "StepLR"
    assert O.scheduler_name("torch.optim.StepLR") is None and O.scheduler_name("") is None
    assert O.bind_optimizer("torch.optim.SGD", [0.1], {})["lr"] == 0.1
    assert O.bind_scheduler("lr_scheduler.StepLR", [3], {})["step_size"] == 3


def test_code_as_a_tutorial_writes_it():
    assert O.optimizer_code("SGD", O.bind_optimizer("SGD", [], {"lr": 0.01})) == \
        "torch.optim.SGD(model.parameters(), lr=0.01)"
    assert O.optimizer_code("SGD", O.bind_optimizer("SGD", [], {})) == "torch.optim.SGD(model.parameters())"
    assert O.optimizer_code("Adam", O.bind_optimizer("Adam", [1e-3, (0.9, 0.98)], {"fused": True}), "params") == \
        "torch.optim.Adam(params, betas=(0.9, 0.98), fused=True)"
    assert O.scheduler_code("StepLR", O.bind_scheduler("StepLR", [30], {"gamma": 0.5})) == \
        "torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)"
    assert O.scheduler_code("StepLR", O.bind_scheduler("StepLR", [30], {}), "opt") == \
        "torch.optim.lr_scheduler.StepLR(opt, step_size=30)"
    assert O.optimizer_code("SGD", O.bind_optimizer("SGD", [], {"lr": float("inf")})) == \
        "torch.optim.SGD(model.parameters(), lr=float('inf'))"
    bound = O.bind_scheduler("OneCycleLR", [0.1], {"epochs": 10})
    assert O.scheduler_fills("OneCycleLR", bound) == ("steps_per_epoch",)
    assert O.scheduler_code("OneCycleLR", bound, fills={"steps_per_epoch": "len(loader)"}) == \
        "torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))"
    assert O.scheduler_fills("OneCycleLR", O.bind_scheduler("OneCycleLR", [0.1, 100], {})) == ()


def test_flags_a_training_loop_needs():
    assert O.OPTIMIZERS["LBFGS"].needs_closure and not O.OPTIMIZERS["SGD"].needs_closure
    assert O.OPTIMIZERS["SparseAdam"].sparse_grads and "sparse" in O.OPTIMIZERS["SparseAdam"].sparse_grads
    assert O.OPTIMIZERS["Muon"].only_2d
    assert {n for n, e in O.SCHEDULERS.items() if e.per_batch} == {"OneCycleLR", "CyclicLR"}
    assert {n for n, e in O.SCHEDULERS.items() if e.needs_metric} == {"ReduceLROnPlateau"}
    assert {n for n, e in O.SCHEDULERS.items() if e.refused} == {"LambdaLR", "MultiplicativeLR", "SequentialLR",
                                                                 "ChainedScheduler"}
    assert set(O.SCHEDULERS["OneCycleLR"].filled) == {"epochs", "steps_per_epoch"}
    notes = O.optimizer_notes("Adam", O.bind_optimizer("Adam", [], {"capturable": True}))
    assert any("GPU" in n for n in notes)
    assert O.optimizer_notes("SGD", O.bind_optimizer("SGD", [], {})) == []
    assert any("val_loss" in n for n in O.scheduler_notes("ReduceLROnPlateau", O.bind_scheduler(
        "ReduceLROnPlateau", [], {})))
    # the momentum key each optimizer has, as torch's defaults hold it (CyclicLR and OneCycleLR need one)
    for name, e in O.OPTIMIZERS.items():
        model, expr = model_for(e)
        defaults = getattr(torch.optim, name)(eval(expr, {"model": model})).defaults
        key = "betas" if "betas" in defaults else "momentum" if "momentum" in defaults else None
        assert e.momentum_key == key, name


def test_import_does_not_import_torch():
    code = "import sys, modelspec.optim; assert 'torch' not in sys.modules, sorted(m for m in sys.modules " \
           "if m.startswith('torch'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
