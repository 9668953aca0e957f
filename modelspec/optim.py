"""torch.optim's optimizers and lr schedulers, as a spec's train section names them, checked without torch.

A train section says ``optimizer = SGD(lr=0.01, momentum=0.9)`` and
``scheduler = StepLR(step_size=30)``. This module knows every optimizer class
torch 2.13 exports in torch.optim and every scheduler in
torch.optim.lr_scheduler: their parameters after ``params`` (``optimizer``)
in torch's order, defaults exactly as ``inspect.signature`` gives them
(`REQUIRED` where there is none), and a check of each value that mirrors the
validation in torch's ``__init__``. It imports nothing from torch, so a spec
is checked before torch loads; ``tests/test_optim.py`` holds the tables
against torch's signatures and, case by case, against what torch's classes
accept and refuse.

Where torch accepts a value only because its checks are comparisons (True for
a learning rate, "yes" for a flag, 30.0 for a count), or accepts it at
construction and then fails at the first step (LBFGS's line_search_fn="foo",
ConstantLR's factor=0), or accepts a value that makes no schedule (a negative
gamma, milestones out of order), the check here refuses it: each such
refusal is deliberate, and the tests list them with their reasons.

    >>> bind_optimizer("SGD", [0.01], {"momentum": 0.9})["momentum"]
    0.9
    >>> optimizer_code("SGD", bind_optimizer("SGD", [], {"lr": 0.01, "momentum": 0.9}))
    'torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)'
    >>> scheduler_code("StepLR", bind_scheduler("StepLR", [30], {}))
    'torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)'
    >>> try:
    ...     bind_optimizer("SGD", [], {"lr": -0.1})
    ... except OptimProblem as e:
    ...     print(e, "/", e.arg)
    SGD's lr must be a number >= 0, not -0.1 / lr
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import did_you_mean
from .layers.base import REQUIRED

__all__ = ["REQUIRED", "OptimProblem", "Param", "OptimEntry", "SchedulerEntry", "OPTIMIZERS", "SCHEDULERS",
           "EXCLUDED", "optimizer_name", "scheduler_name", "bind_optimizer", "bind_scheduler", "optimizer_code",
           "scheduler_code", "optimizer_notes", "scheduler_notes", "scheduler_fills"]


class OptimProblem(Exception):
    """An optimizer or scheduler call a spec gives that torch would refuse (or that cannot train).

    ``arg``: the parameter's name the problem is about (None: the call as a whole); ``index``: where it
    was given by position, its place among the call's positional arguments (None: given by keyword, or
    not given); ``hint``: what to do about it.
    """

    def __init__(self, message: str, arg: str | None = None, index: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg
        self.index = index
        self.hint = hint


class _Bad(Exception):
    """A check's complaint: ``text`` follows "<Class>'s <arg> " ("must be ..., not ...")."""

    def __init__(self, text: str, hint: str | None = None, arg: str | None = None):
        super().__init__(text)
        self.text = text
        self.hint = hint
        self.arg = arg


@dataclass(frozen=True)
class _Ctx:
    """What a check may need beyond the value: the optimizer's number of param groups, and (for a
    scheduler) the optimizer's entry, where the caller gave it."""

    param_groups: int = 1
    optimizer: "OptimEntry | None" = None


# ---------------------------------------------------------------- showing values
def show(v) -> str:
    """A value as a student wrote it: 0.1, 'cos', True, (0.9, 0.999), nan."""
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, (str, bool, int, float)) or v is None:
        return repr(v)
    if isinstance(v, (tuple, list)):
        return repr(type(v)(v)) if len(repr(v)) < 80 else f"a {type(v).__name__} of {len(v)} values"
    return f"a {type(v).__name__}"


def literal(v) -> str:
    """Python source for a value: repr, except infinities (float('inf')), which repr writes as names."""
    if isinstance(v, float) and math.isinf(v):
        return "float('inf')" if v > 0 else "-float('inf')"
    if isinstance(v, tuple):
        items = [literal(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    return repr(v)


# ---------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """Checks one value (raising `_Bad`) and returns it, normalised (a list given for a pair becomes a tuple)."""

    describe: str
    fn: Callable[[Any, _Ctx], Any]

    def __call__(self, v, ctx: _Ctx = _Ctx()):
        return self.fn(v, ctx)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bound_words(lo, lo_open, hi, hi_open) -> str:
    if lo is not None and hi is not None:
        if not lo_open and not hi_open:
            return f"from {lo} to {hi}"
        if not lo_open and hi_open:
            return f"from {lo} up to (not including) {hi}"
        if lo_open and not hi_open:
            return f"greater than {lo} and at most {hi}"
        return f"between {lo} and {hi}, both excluded"
    if lo is not None:
        return f"> {lo}" if lo_open else f">= {lo}"
    if hi is not None:
        return f"< {hi}" if hi_open else f"<= {hi}"
    return ""


def _not_a_number(v, describe: str) -> _Bad:
    if type(v).__name__ in ("Tensor", "Parameter"):
        return _Bad(f"must be {describe}, not a tensor", hint="a spec gives plain numbers; write the value, "
                                                              "such as 0.01")
    if isinstance(v, float) and math.isnan(v):
        return _Bad(f"must be {describe}, not nan", hint="nan passes torch's comparisons but makes every update nan")
    if isinstance(v, bool):
        return _Bad(f"must be {describe}, not {v}", hint="True and False are not numbers here; write 1 or 0")
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return _Bad(f"must be {describe}, not the string {v!r}")
        return _Bad(f"must be {describe}, not the string {v!r}", hint=f"write the number without quotes: {v}")
    return _Bad(f"must be {describe}, not {show(v)}")


def number(lo=None, hi=None, lo_open=False, hi_open=False, floats=False, what: str | None = None,
           why: str | None = None) -> Check:
    """A number (int or float; with ``floats``, only a float, as torch's Adam takes betas) in a range;
    ``why``: the hint for a number out of it, where the range is not torch's own."""
    kind = "a float" if floats else "a number"
    describe = what or f"{kind} {_bound_words(lo, lo_open, hi, hi_open)}".strip()

    def fn(v, ctx):
        if not _is_num(v) or (isinstance(v, float) and math.isnan(v)):
            raise _not_a_number(v, describe)
        if floats and not isinstance(v, float):
            raise _Bad(f"must be {describe}, not the integer {v}", hint=f"write {v}.0: torch takes only floats here")
        below = lo is not None and (v <= lo if lo_open else v < lo)
        if below or (hi is not None and (v >= hi if hi_open else v > hi)):
            raise _Bad(f"must be {describe}, not {show(v)}", hint=why)
        return v

    return Check(describe, fn)


def integer(lo=None, hi=None, what: str | None = None) -> Check:
    """A whole number (an int, not a float such as 30.0, nor True) in lo..hi."""
    if what is None:
        what = {1: "a positive integer", 0: "an integer >= 0"}.get(lo, f"an integer {_bound_words(lo, 0, hi, 0)}")
        if hi is not None:
            what = f"an integer {_bound_words(lo, 0, hi, 0)}"

    def fn(v, ctx):
        if not _is_int(v):
            if isinstance(v, float) and v.is_integer():
                raise _Bad(f"must be {what}, not the float {v}", hint=f"write {int(v)}, without the decimal point")
            raise _not_a_number(v, what)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _Bad(f"must be {what}, not {v}")
        return v

    return Check(what, fn)


def _flag(v, ctx):
    if not isinstance(v, bool):
        raise _Bad(f"must be True or False, not {show(v)}")
    return v


FLAG = Check("True or False", _flag)


def _opt_flag(v, ctx):
    if v is not None and not isinstance(v, bool):
        raise _Bad(f"must be True, False or None, not {show(v)}", hint="None lets torch choose")
    return v


OPT_FLAG = Check("True, False or None", _opt_flag)


def optional(c: Check) -> Check:
    return Check(f"{c.describe} or None", lambda v, ctx: None if v is None else c(v, ctx))


def choice(*options, none: bool = False) -> Check:
    words = [repr(o) for o in options] + (["None"] if none else [])
    describe = " or ".join(words) if len(words) == 2 else f"one of {', '.join(words[:-1])} or {words[-1]}"

    def fn(v, ctx):
        if v is None and none:
            return v
        if not isinstance(v, str) or v not in options:
            hint = _option_hint(v, options) if isinstance(v, str) else None
            raise _Bad(f"must be {describe}, not {show(v)}", hint=hint)
        return v

    return Check(describe, fn)


def _seq(v, describe: str, n: int | None = None) -> tuple:
    if not isinstance(v, (tuple, list)):
        raise _Bad(f"must be {describe}, not {show(v)}")
    if n is not None and len(v) != n:
        raise _Bad(f"must be {describe}, not {show(v)} ({_values(len(v))})")
    return tuple(v)


def _values(n: int) -> str:
    return f"{n} value{'s' if n != 1 else ''}"


def pair(elem: Check, names: str, n: int = 2, cross: Callable[[tuple], str | None] | None = None,
         describe: str | None = None) -> Check:
    """A tuple (or list) of ``n`` values, each checked by ``elem``; ``cross``: the hint where the values, each
    fine, do not go together (None where they do)."""
    what = describe or f"{'a pair' if n == 2 else f'{n} values'} {names} of {_plural(elem.describe)}"

    def fn(v, ctx):
        items = _seq(v, what, n)
        for x in items:
            try:
                elem(x, ctx)
            except _Bad as e:
                raise _Bad(f"must be {what}, not {show(v)}: {show(x)} is not {elem.describe}", hint=e.hint) from None
        problem = cross(items) if cross else None
        if problem:
            raise _Bad(f"must be {what}, not {show(v)}", hint=problem)
        return items

    return Check(what, fn)


def _plural(describe: str) -> str:
    """'a number >= 0' -> 'numbers >= 0'; 'a float from 0 ...' -> 'floats from 0 ...'."""
    for one, many in (("a number", "numbers"), ("a float", "floats"), ("an integer", "integers"),
                      ("a positive integer", "positive integers")):
        if describe.startswith(one + " ") or describe == one:
            return many + describe[len(one):]
    return describe


def per_group(elem: Check) -> Check:
    """A number for every param group, or a list (tuple) of one per group, as torch's schedulers take them."""
    describe = f"{elem.describe}, or a list of one for each param group"

    def fn(v, ctx):
        if isinstance(v, (tuple, list)):
            if len(v) != ctx.param_groups:
                raise _Bad(f"must be {describe}, not {show(v)} ({_values(len(v))}): the optimizer has "
                           f"{ctx.param_groups} param group{'s' if ctx.param_groups != 1 else ''}",
                           hint=f"give one number for all, or {ctx.param_groups} in a list")
            for x in v:
                try:
                    elem(x, ctx)
                except _Bad as e:
                    raise _Bad(f"must be {describe}, not {show(v)}: {show(x)} is not {elem.describe}",
                               hint=e.hint) from None
            return list(v)
        try:
            return elem(v, ctx)
        except _Bad as e:
            raise _Bad(f"must be {describe}, not {show(v)}", hint=e.hint) from None

    return Check(describe, fn)


def only(value, reason: str, hint: str | None = None) -> Check:
    """The one value a spec may give: differentiable=False, scale_fn=None, last_epoch=-1."""

    def fn(v, ctx):
        if type(v) is not type(value) or v != value:
            raise _Bad(f"must be {value}, not {show(v)}: {reason}", hint=hint)
        return v

    return Check(f"{value}", fn)


def milestones() -> Check:
    describe = "a list of increasing positive integers (epochs)"

    def fn(v, ctx):
        items = _seq(v, describe)
        if not items:
            raise _Bad(f"must be {describe}, not an empty {type(v).__name__}",
                       hint="give at least one epoch, such as [30, 80]")
        for x in items:
            try:
                integer(1)(x, ctx)
            except _Bad as e:
                raise _Bad(f"must be {describe}, not {show(v)}: {show(x)} is not a positive integer",
                           hint=e.hint) from None
        for a, b in zip(items, items[1:]):
            if b <= a:
                raise _Bad(f"must be {describe}, not {show(v)}: {b} does not come after {a}",
                           hint=f"write them in order: {list(sorted(set(items)))}")
        return list(items)

    return Check(describe, fn)


def _function_arg(what: str) -> Check:
    def fn(v, ctx):
        raise _Bad(f"needs {what}, which a spec cannot give")

    return Check(what, fn)


ANY = Check("any value", lambda v, ctx: v)

# the checks the optimizers share
LR = number(0)
NONNEG = number(0)
BETA = number(0, 1, hi_open=True)
BETAS = pair(BETA, "(beta1, beta2)")
BETAS_FLOAT = pair(number(0, 1, hi_open=True, floats=True), "(beta1, beta2)")
DIFFERENTIABLE = only(False, "differentiable=True is for differentiating through the step itself (meta-learning); "
                             "a training loop's step fails with it, since torch then updates the model's parameters "
                             "in place while recording them", hint="leave differentiable out")
LAST_EPOCH = only(-1, "last_epoch is for resuming a run, and torch then needs the optimizer's state to hold each "
                      "group's initial_lr", hint="leave last_epoch out; to resume, load the scheduler's state_dict")


# ---------------------------------------------------------------- entries
@dataclass(frozen=True)
class Param:
    """One constructor parameter, named, defaulted and ordered exactly as in torch."""

    name: str
    default: Any = REQUIRED
    check: Check = ANY
    kw_only: bool = False
    doc: str = ""


@dataclass(frozen=True)
class OptimEntry:
    """A torch.optim optimizer as a spec names it.

    ``needs_closure``: its step takes a closure that recomputes the loss (``optimizer.step(closure)``);
    ``sparse_grads``: where set, why it needs sparse gradients (its step refuses dense ones): a trainer
    refuses it, or warns, for a model without sparse layers; ``only_2d``: where set, it takes only 2-d
    parameters, and why; ``one_group``: it refuses several param groups; ``momentum_key``: the
    param-group setting that CyclicLR and OneCycleLR cycle ("momentum", "betas"; None: they refuse
    ``cycle_momentum=True`` with it); ``gpu_flags``: flags that, True, make the step need a GPU, and why.
    """

    name: str
    params: tuple[Param, ...]
    doc: str
    cross: Callable[[dict, _Ctx], None] | None = None
    needs_closure: bool = False
    sparse_grads: str | None = None
    only_2d: str | None = None
    one_group: bool = False
    momentum_key: str | None = None
    gpu_flags: dict[str, str] = field(default_factory=dict)
    kind: str = "optimizer"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class SchedulerEntry:
    """A torch.optim.lr_scheduler scheduler as a spec names it.

    ``per_batch``: step it after every batch (the others after every epoch); ``needs_metric``: its step
    takes the monitored value (``scheduler.step(val_loss)``); ``filled``: arguments the trainer fills
    itself where the spec leaves them out, and with what (see `scheduler_fills`); ``refused``: where set,
    why a spec cannot give this scheduler at all; ``cycles_momentum``: it sets the optimizer's momentum
    (or beta1) while ``cycle_momentum`` is True.
    """

    name: str
    params: tuple[Param, ...]
    doc: str
    cross: Callable[[dict, _Ctx], None] | None = None
    per_batch: bool = False
    needs_metric: bool = False
    filled: dict[str, str] = field(default_factory=dict)
    refused: str | None = None
    refused_hint: str | None = None
    cycles_momentum: bool = False
    kind: str = "scheduler"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# ---------------------------------------------------------------- optimizer parameters
_OPT_DOCS = {
    "lr": "the learning rate: how far each update moves the parameters",
    "momentum": "how much of the previous update carries into the next (0: none)",
    "dampening": "how much the momentum damps the new gradient",
    "weight_decay": "an L2 penalty: pulls every weight toward 0 at each step",
    "nesterov": "Nesterov momentum: the gradient is taken ahead, along the momentum",
    "maximize": "maximize the objective instead of minimizing it",
    "foreach": "torch's multi-tensor implementation (None: torch chooses)",
    "fused": "torch's fused kernel (None: torch chooses); takes floating-point parameters only",
    "capturable": "make the step capturable in a CUDA graph: needs the parameters on a GPU",
    "differentiable": "differentiate through the step itself (meta-learning)",
    "betas": "the decay rates of the running averages of the gradient and of its square",
    "eps": "a small number added to the denominator, for numerical stability",
    "amsgrad": "the AMSGrad variant: keeps the largest average of the squared gradient",
    "decoupled_weight_decay": "decay the weights apart from the gradient, as AdamW does",
    "lr_decay": "how fast the learning rate decays with the steps",
    "initial_accumulator_value": "the starting value of the squared-gradient sums",
    "rho": "the decay rate of the running average of squared gradients",
    "lambd": "the decay term",
    "t0": "the step at which averaging starts",
    "momentum_decay": "the decay of the momentum",
    "alpha": "the smoothing constant",
    "centered": "normalize by an estimate of the gradient's variance",
    "etas": "(decrease, increase): the factors the step size shrinks and grows by",
    "step_sizes": "(smallest, largest): the bounds of the step size",
    "max_iter": "the most iterations per optimizer step",
    "max_eval": "the most function evaluations per optimizer step (None: max_iter * 5 // 4)",
    "tolerance_grad": "stop when the gradient's first-order optimality falls below this",
    "tolerance_change": "stop when the function value or parameters change less than this",
    "history_size": "how many updates the Hessian estimate remembers",
    "line_search_fn": "None, or 'strong_wolfe' for a line search",
    "beta2_decay": "the decay rate of the squared-gradient average: beta2 = 1 - step ** beta2_decay",
    "d": "the clipping threshold of the update",
    "ns_coefficients": "the coefficients (a, b, c) of the Newton-Schulz iteration",
    "ns_steps": "the number of Newton-Schulz iterations",
    "adjust_lr_fn": "how the learning rate is scaled to the matrix's shape: None, 'original' or 'match_rms_adamw'",
}
_OPT_DOC_OVERRIDES = {
    ("ASGD", "alpha"): "the power of the eta update",
    ("Adadelta", "lr"): "a coefficient that scales the delta before it is applied to the parameters",
    ("Adafactor", "eps"): "(epsilon1, epsilon2): epsilon1 keeps the denominator from 0 (None: the dtype's smallest), "
                          "epsilon2 keeps the update from tiny parameters",
    ("Muon", "eps"): "a small number that keeps the normalization from dividing by 0",
}


def _op(cls: str, name: str, default=REQUIRED, check: Check = ANY, kw: bool = False) -> Param:
    return Param(name, default, check, kw, _OPT_DOC_OVERRIDES.get((cls, name), _OPT_DOCS.get(name, "")))


def _opt_params(cls: str, positional: str, keyword: str, checks: dict[str, Check], defaults: dict) -> tuple:
    """Params from ``positional`` and ``keyword`` (space-separated names, torch's order), each with its check."""
    out = []
    for names, kw in ((positional, False), (keyword, True)):
        for n in names.split():
            out.append(_op(cls, n, defaults[n], checks[n], kw))
    return tuple(out)


_COMMON_CHECKS = {
    "lr": LR, "weight_decay": NONNEG, "eps": NONNEG, "momentum": NONNEG, "maximize": FLAG, "foreach": OPT_FLAG,
    "fused": OPT_FLAG, "capturable": FLAG, "differentiable": DIFFERENTIABLE, "amsgrad": FLAG, "nesterov": FLAG,
    "decoupled_weight_decay": FLAG, "betas": BETAS, "centered": FLAG,
}
_FLAG_DEFAULTS = {"maximize": False, "foreach": None, "fused": None, "capturable": False, "differentiable": False,
                  "amsgrad": False, "nesterov": False, "decoupled_weight_decay": False, "centered": False}


def _optimizer(name: str, positional: str, keyword: str, doc: str, defaults: dict, checks: dict | None = None,
               **flags) -> OptimEntry:
    c = {**_COMMON_CHECKS, **(checks or {})}
    d = {**_FLAG_DEFAULTS, **defaults}
    params = _opt_params(name, positional, keyword, c, d)
    names = {p.name for p in params}
    gpu = {"capturable": "capturable=True makes the step capturable in a CUDA graph: the step refuses "
                         "parameters that are not on a GPU (cuda, xpu)"} if "capturable" in names else {}
    return OptimEntry(name, params, doc, gpu_flags=gpu, **flags)


def _fused_cross(b: dict, ctx: _Ctx) -> None:
    if b.get("fused") and b.get("foreach"):
        raise _Bad("cannot be True together with foreach=True: torch runs the step either fused or for each "
                   "tensor list", hint="keep one of them", arg="fused")


def _sgd_cross(b: dict, ctx: _Ctx) -> None:
    if b["nesterov"] and (b["momentum"] <= 0 or b["dampening"] != 0):
        why = f"momentum is {b['momentum']}" if b["momentum"] <= 0 else f"dampening is {b['dampening']}"
        raise _Bad(f"=True needs momentum > 0 and dampening 0 (Nesterov momentum), but {why}",
                   hint="give momentum=0.9, say, and leave dampening at 0", arg="nesterov")
    _fused_cross(b, ctx)


def _rprop_etas(items) -> str | None:
    a, b = items
    return None if 0 < a < 1 < b else "the step shrinks by the decrease and grows by the increase: (0.5, 1.2), say"


def _step_sizes(items) -> str | None:
    a, b = items
    return None if a <= b else f"give the smallest first: ({b}, {a})"


def _lbfgs_max_eval(v, ctx):
    return None if v is None else integer(1)(v, ctx)


OPTIMIZERS: dict[str, OptimEntry] = {e.name: e for e in (
    _optimizer("SGD", "lr momentum dampening weight_decay nesterov", "maximize foreach differentiable fused",
               "stochastic gradient descent, with optional momentum and Nesterov momentum",
               {"lr": 0.001, "momentum": 0, "dampening": 0, "weight_decay": 0},
               {"dampening": number()}, cross=_sgd_cross, momentum_key="momentum"),
    _optimizer("Adam", "lr betas eps weight_decay amsgrad",
               "foreach maximize capturable differentiable fused decoupled_weight_decay",
               "Adam: adaptive moment estimation",
               {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0},
               {"betas": BETAS_FLOAT}, cross=_fused_cross, momentum_key="betas"),
    _optimizer("AdamW", "lr betas eps weight_decay amsgrad", "maximize foreach capturable differentiable fused",
               "Adam with decoupled weight decay",
               {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0.01},
               {"betas": BETAS_FLOAT}, cross=_fused_cross, momentum_key="betas"),
    _optimizer("Adagrad", "lr lr_decay weight_decay initial_accumulator_value eps foreach",
               "maximize differentiable fused", "Adagrad: a learning rate per parameter, from its past gradients",
               {"lr": 0.01, "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0, "eps": 1e-10},
               {"lr_decay": NONNEG, "initial_accumulator_value": NONNEG}, cross=_fused_cross),
    _optimizer("Adadelta", "lr rho eps weight_decay foreach", "capturable maximize differentiable",
               "Adadelta: Adagrad with a running window of squared gradients",
               {"lr": 1.0, "rho": 0.9, "eps": 1e-06, "weight_decay": 0}, {"rho": number(0, 1)}),
    _optimizer("Adamax", "lr betas eps weight_decay foreach", "maximize differentiable capturable",
               "Adamax: Adam with the infinity norm",
               {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0}, momentum_key="betas"),
    _optimizer("ASGD", "lr lambd alpha t0 weight_decay foreach maximize differentiable capturable", "",
               "averaged stochastic gradient descent",
               {"lr": 0.01, "lambd": 0.0001, "alpha": 0.75, "t0": 1000000.0, "weight_decay": 0},
               {"lambd": number(), "alpha": number(), "t0": number()}),
    _optimizer("NAdam", "lr betas eps weight_decay momentum_decay decoupled_weight_decay",
               "foreach maximize capturable differentiable", "NAdam: Adam with Nesterov momentum",
               {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0, "momentum_decay": 0.004},
               {"momentum_decay": NONNEG}, momentum_key="betas"),
    _optimizer("RAdam", "lr betas eps weight_decay decoupled_weight_decay", "foreach maximize capturable "
               "differentiable", "RAdam: Adam with a rectified warm-up of the adaptive learning rate",
               {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0}, momentum_key="betas"),
    _optimizer("RMSprop", "lr alpha eps weight_decay momentum centered capturable foreach maximize differentiable",
               "", "RMSprop: divides the gradient by a running average of its magnitude",
               {"lr": 0.01, "alpha": 0.99, "eps": 1e-08, "weight_decay": 0, "momentum": 0},
               # torch checks only alpha >= 0; above 1 the squared average turns negative and its root nan
               {"alpha": number(0, 1, why="above 1 the squared average turns negative, and its root nan")},
               momentum_key="momentum"),
    _optimizer("Rprop", "lr etas step_sizes", "capturable foreach maximize differentiable",
               "Rprop: resilient backpropagation, which follows only the gradient's sign",
               {"lr": 0.01, "etas": (0.5, 1.2), "step_sizes": (1e-06, 50)},
               {"etas": pair(number(), "(decrease, increase)", cross=_rprop_etas,
                             describe="a pair (decrease, increase) with 0 < decrease < 1 < increase"),
                "step_sizes": pair(number(0), "(smallest, largest)", cross=_step_sizes,
                                   describe="a pair (smallest, largest) of numbers >= 0, the smallest first")}),
    _optimizer("LBFGS", "lr max_iter max_eval tolerance_grad tolerance_change history_size line_search_fn", "",
               "L-BFGS: a quasi-Newton method, which re-evaluates the loss in each step",
               {"lr": 1, "max_iter": 20, "max_eval": None, "tolerance_grad": 1e-07, "tolerance_change": 1e-09,
                "history_size": 100, "line_search_fn": None},
               {"max_iter": integer(1), "max_eval": Check("a positive integer or None", _lbfgs_max_eval),
                "tolerance_grad": number(), "tolerance_change": number(), "history_size": integer(1),
                # torch takes any string here, and its first step raises "only 'strong_wolfe' is supported"
                "line_search_fn": choice("strong_wolfe", none=True)},
               needs_closure=True, one_group=True),
    _optimizer("SparseAdam", "lr betas eps maximize", "", "Adam for sparse gradients (Embedding(sparse=True))",
               {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08},
               {"lr": number(0, lo_open=True), "eps": number(0, lo_open=True)}, momentum_key="betas",
               sparse_grads="SparseAdam takes only sparse gradients, which layers built with sparse=True give "
                            "(Embedding(..., sparse=True), EmbeddingBag(..., sparse=True)); its step refuses "
                            "dense ones: 'SparseAdam does not support dense gradients, please consider Adam "
                            "instead'"),
    _optimizer("Adafactor", "lr beta2_decay eps d weight_decay", "foreach maximize",
               "Adafactor: Adam with a factored (row and column) second moment, for less memory",
               {"lr": 0.01, "beta2_decay": -0.8, "eps": (None, 0.001), "d": 1.0, "weight_decay": 0.0},
               {"beta2_decay": number(hi=0), "d": number(1),
                "eps": pair(optional(number(0)), "(epsilon1, epsilon2)",
                            describe="a pair (epsilon1, epsilon2) of numbers >= 0, epsilon1 may be None")}),
    _optimizer("Muon", "lr weight_decay momentum nesterov ns_coefficients eps ns_steps adjust_lr_fn", "",
               "Muon: momentum orthogonalized by Newton-Schulz iterations, for 2-d weight matrices",
               {"lr": 0.001, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
                "ns_coefficients": (3.4445, -4.775, 2.0315), "eps": 1e-07, "ns_steps": 5, "adjust_lr_fn": None},
               {"ns_coefficients": pair(number(), "(a, b, c)", n=3),
                # the step raises "Number of steps must be less than 100 for computational efficiency"
                "ns_steps": integer(0, 99),
                "adjust_lr_fn": choice("original", "match_rms_adamw", none=True)},
               momentum_key="momentum",
               only_2d="Muon takes only 2-d parameters (weight matrices): torch refuses a bias, a norm's weight "
                       "or a convolution's 4-d kernel ('Muon only supports 2D parameters'); give it the "
                       "matrices, and the other parameters to a second optimizer such as AdamW"),
)}


# ---------------------------------------------------------------- scheduler parameters
_SCHED_DOCS = {
    "last_epoch": "the index of the last epoch, for resuming a run (-1: start from the beginning)",
    "step_size": "the number of epochs between two decays",
    "gamma": "the factor the learning rate is multiplied by at each decay",
    "milestones": "the epochs at which the learning rate decays",
    "factor": "the factor the learning rate is multiplied by",
    "total_iters": "the number of epochs it takes",
    "start_factor": "the factor the learning rate is multiplied by in the first epoch",
    "end_factor": "the factor the learning rate is multiplied by after total_iters epochs",
    "power": "the power of the polynomial",
    "T_max": "the number of epochs from the start to the minimum (half a cosine period)",
    "eta_min": "the smallest learning rate",
    "T_0": "the number of epochs until the first restart",
    "T_mult": "the factor each period grows by after a restart",
    "mode": "'min': reduce when the monitored value stops falling (a loss); 'max': when it stops rising (an "
            "accuracy)",
    "patience": "how many epochs without improvement to wait before reducing",
    "threshold": "how much better a value must be to count as an improvement",
    "threshold_mode": "'rel': the threshold is relative to the best value; 'abs': absolute",
    "cooldown": "how many epochs to wait after a reduction before counting again",
    "min_lr": "the learning rate never falls below this",
    "base_lr": "the lowest learning rate of the cycle (the optimizer's lr is replaced by it)",
    "max_lr": "the highest learning rate of the cycle",
    "step_size_up": "the number of batches in the rising half of a cycle",
    "step_size_down": "the number of batches in the falling half of a cycle (None: as step_size_up)",
    "scale_fn": "a custom scaling function (a Python function)",
    "scale_mode": "whether scale_fn takes the cycle number ('cycle') or the batch number ('iterations')",
    "cycle_momentum": "cycle the momentum (or Adam's beta1) inversely to the learning rate",
    "base_momentum": "the lowest momentum of the cycle",
    "max_momentum": "the highest momentum of the cycle",
    "total_steps": "the number of batches in the whole cycle (None: epochs * steps_per_epoch)",
    "epochs": "the number of epochs, when total_steps is not given",
    "steps_per_epoch": "the number of batches in an epoch, when total_steps is not given",
    "pct_start": "the fraction of the cycle spent raising the learning rate",
    "anneal_strategy": "'cos' or 'linear' annealing",
    "div_factor": "the starting learning rate is max_lr / div_factor",
    "final_div_factor": "the final learning rate is the starting one / final_div_factor",
    "three_phase": "a third phase that anneals to the final learning rate",
    "lr_lambda": "a Python function of the epoch that gives the factor",
    "schedulers": "the schedulers to run (other scheduler objects)",
    "eps": "a change of the learning rate smaller than this is ignored",
}
_SCHED_DOC_OVERRIDES = {
    ("CyclicLR", "mode"): "'triangular', 'triangular2' (the height halves each cycle) or 'exp_range' (it shrinks "
                          "by gamma ** iterations)",
    ("CyclicLR", "gamma"): "the constant of 'exp_range' mode",
    ("ReduceLROnPlateau", "factor"): "the factor the learning rate is reduced by: new_lr = lr * factor",
    ("ConstantLR", "factor"): "the factor the learning rate is multiplied by until total_iters epochs",
    ("ExponentialLR", "gamma"): "the factor the learning rate is multiplied by each epoch",
    ("MultiplicativeLR", "lr_lambda"): "a Python function of the epoch that gives the factor of each epoch",
    ("SequentialLR", "milestones"): "the epochs at which the next scheduler takes over",
    ("OneCycleLR", "base_momentum"): "the lowest momentum of the cycle",
    ("OneCycleLR", "max_lr"): "the highest learning rate of the cycle",
}


def _sp(cls: str, name: str, default=REQUIRED, check: Check = ANY) -> Param:
    return Param(name, default, check, False, _SCHED_DOC_OVERRIDES.get((cls, name), _SCHED_DOCS.get(name, "")))


POS_INT = integer(1)
GAMMA = number(0, lo_open=True, why="at 0 or below the learning rate vanishes or turns negative")
LR_PER_GROUP = per_group(number(0, why="torch's optimizers refuse a learning rate below 0"))
MOMENTUM_PER_GROUP = per_group(number(0, why="torch's optimizers refuse a momentum below 0"))


def _cycle_momentum_cross(b: dict, ctx: _Ctx) -> None:
    opt = ctx.optimizer
    if b.get("cycle_momentum") and opt is not None and opt.momentum_key is None:
        raise _Bad(f"=True cycles the optimizer's momentum, which {opt.name} does not have (torch: 'optimizer must "
                   "support momentum or beta1 with `cycle_momentum` option enabled')",
                   hint="give cycle_momentum=False, or an optimizer with momentum (SGD, RMSprop) or betas (Adam)",
                   arg="cycle_momentum")


def _onecycle_total(b: dict) -> int | None:
    if b["total_steps"] is not None:
        return b["total_steps"]
    if b["epochs"] is not None and b["steps_per_epoch"] is not None:
        return b["epochs"] * b["steps_per_epoch"]
    return None


def _onecycle_divides_by_zero(pct_start: float, total: int, three_phase: bool) -> bool:
    """Whether torch's OneCycleLR divides by zero in some step 0..total: a phase some step falls in that
    starts where it ends. The phase ends are torch's own expressions, so the floats are the same."""
    if three_phase:
        ends = [float(pct_start * total) - 1, float(2 * pct_start * total) - 2, total - 1]
    else:
        ends = [float(pct_start * total) - 1, total - 1]
    start = 0.0
    for i, end in enumerate(ends):
        before = ends[:i]
        lo = max(0, math.floor(max(before)) + 1) if before else 0  # the first step no earlier phase takes
        hi = total if i == len(ends) - 1 else math.floor(end)
        if lo <= hi and end - start == 0:
            return True
        start = end
    return False


def _onecycle_cross(b: dict, ctx: _Ctx) -> None:
    total = _onecycle_total(b)
    if total is not None and _onecycle_divides_by_zero(b["pct_start"], total, b["three_phase"]):
        raise _Bad(f"={b['pct_start']} over {total} steps makes a phase of the cycle 0 steps long, and torch "
                   "divides by its length", hint="give another pct_start, or more steps", arg="pct_start")
    _cycle_momentum_cross(b, ctx)


def _onecycle_fills(b: dict) -> tuple[str, ...]:
    if b["total_steps"] is not None:
        return ()
    return tuple(n for n in ("epochs", "steps_per_epoch") if b[n] is None)


def _cyclic_cross(b: dict, ctx: _Ctx) -> None:
    _cycle_momentum_cross(b, ctx)


_FUNCTION = "a Python function"
_SCHEDULERS_ARG = "other scheduler objects"

SCHEDULERS: dict[str, SchedulerEntry] = {e.name: e for e in (
    SchedulerEntry("LambdaLR", (_sp("LambdaLR", "lr_lambda", check=_function_arg(_FUNCTION)),
                                _sp("LambdaLR", "last_epoch", -1, LAST_EPOCH)),
                   "the initial learning rate times a function of the epoch",
                   refused="LambdaLR needs a Python function (lr_lambda), which a spec cannot give",
                   refused_hint="use a scheduler with numeric arguments (LinearLR for a warm-up, StepLR, "
                                "CosineAnnealingLR, ...)"),
    SchedulerEntry("MultiplicativeLR", (_sp("MultiplicativeLR", "lr_lambda", check=_function_arg(_FUNCTION)),
                                        _sp("MultiplicativeLR", "last_epoch", -1, LAST_EPOCH)),
                   "the learning rate times a function of the epoch, each epoch",
                   refused="MultiplicativeLR needs a Python function (lr_lambda), which a spec cannot give",
                   refused_hint="for a constant factor each epoch use ExponentialLR(gamma=...)"),
    SchedulerEntry("StepLR", (_sp("StepLR", "step_size", check=POS_INT), _sp("StepLR", "gamma", 0.1, GAMMA),
                              _sp("StepLR", "last_epoch", -1, LAST_EPOCH)),
                   "multiplies the learning rate by gamma every step_size epochs"),
    SchedulerEntry("MultiStepLR", (_sp("MultiStepLR", "milestones", check=milestones()),
                                   _sp("MultiStepLR", "gamma", 0.1, GAMMA),
                                   _sp("MultiStepLR", "last_epoch", -1, LAST_EPOCH)),
                   "multiplies the learning rate by gamma at each milestone epoch"),
    SchedulerEntry("ConstantLR", (_sp("ConstantLR", "factor", 1 / 3,
                                      # torch takes 0 to 1; with 0 it divides by 0 when the total_iters end
                                      number(0, 1, lo_open=True, why="torch divides by the factor when the "
                                             "total_iters end, and 0 fails there")),
                                  _sp("ConstantLR", "total_iters", 5, POS_INT),
                                  _sp("ConstantLR", "last_epoch", -1, LAST_EPOCH)),
                   "multiplies the learning rate by factor for the first total_iters epochs"),
    SchedulerEntry("LinearLR", (_sp("LinearLR", "start_factor", 1 / 3, number(0, 1, lo_open=True)),
                                _sp("LinearLR", "end_factor", 1.0, number(0, 1)),
                                _sp("LinearLR", "total_iters", 5, POS_INT),
                                _sp("LinearLR", "last_epoch", -1, LAST_EPOCH)),
                   "changes the learning rate's factor linearly from start_factor to end_factor (a warm-up)"),
    SchedulerEntry("ExponentialLR", (_sp("ExponentialLR", "gamma", check=GAMMA),
                                     _sp("ExponentialLR", "last_epoch", -1, LAST_EPOCH)),
                   "multiplies the learning rate by gamma every epoch"),
    SchedulerEntry("SequentialLR", (_sp("SequentialLR", "schedulers", check=_function_arg(_SCHEDULERS_ARG)),
                                    _sp("SequentialLR", "milestones"),
                                    _sp("SequentialLR", "last_epoch", -1, LAST_EPOCH)),
                   "runs schedulers one after another, switching at the milestones",
                   refused="SequentialLR needs other scheduler objects (schedulers), which a spec cannot give",
                   refused_hint="give one scheduler; a warm-up then a decay needs the training code"),
    SchedulerEntry("CosineAnnealingLR", (_sp("CosineAnnealingLR", "T_max", check=POS_INT),
                                         _sp("CosineAnnealingLR", "eta_min", 0.0, number(0)),
                                         _sp("CosineAnnealingLR", "last_epoch", -1, LAST_EPOCH)),
                   "anneals the learning rate along a cosine down to eta_min over T_max epochs"),
    SchedulerEntry("ChainedScheduler", (_sp("ChainedScheduler", "schedulers",
                                            check=_function_arg(_SCHEDULERS_ARG)),),
                   "steps several schedulers together, multiplying their effects",
                   refused="ChainedScheduler needs other scheduler objects (schedulers), which a spec cannot give",
                   refused_hint="give one scheduler"),
    SchedulerEntry("ReduceLROnPlateau", (_sp("ReduceLROnPlateau", "mode", "min", choice("min", "max")),
                                         # torch checks only factor < 1; at 0 or below the rate jumps to min_lr
                                         _sp("ReduceLROnPlateau", "factor", 0.1,
                                             number(0, 1, True, True, why="the new rate is lr * factor: below 1 to "
                                                    "reduce it, above 0 to keep it")),
                                         _sp("ReduceLROnPlateau", "patience", 10, integer(0)),
                                         _sp("ReduceLROnPlateau", "threshold", 0.0001, number(0)),
                                         _sp("ReduceLROnPlateau", "threshold_mode", "rel", choice("rel", "abs")),
                                         _sp("ReduceLROnPlateau", "cooldown", 0, integer(0)),
                                         _sp("ReduceLROnPlateau", "min_lr", 0, LR_PER_GROUP),
                                         _sp("ReduceLROnPlateau", "eps", 1e-08, number(0))),
                   "reduces the learning rate when a monitored value (the validation loss) stops improving",
                   needs_metric=True),
    SchedulerEntry("CyclicLR", (_sp("CyclicLR", "base_lr", check=LR_PER_GROUP),
                                _sp("CyclicLR", "max_lr", check=LR_PER_GROUP),
                                _sp("CyclicLR", "step_size_up", 2000, POS_INT),
                                _sp("CyclicLR", "step_size_down", None, optional(POS_INT)),
                                _sp("CyclicLR", "mode", "triangular", choice("triangular", "triangular2",
                                                                             "exp_range")),
                                _sp("CyclicLR", "gamma", 1.0, GAMMA),
                                _sp("CyclicLR", "scale_fn", None,
                                    only(None, "scale_fn is a Python function, which a spec cannot give",
                                         hint="choose a mode: 'triangular', 'triangular2' or 'exp_range'")),
                                # torch ignores scale_mode without a scale_fn, whatever it is
                                _sp("CyclicLR", "scale_mode", "cycle", choice("cycle", "iterations")),
                                _sp("CyclicLR", "cycle_momentum", True, FLAG),
                                _sp("CyclicLR", "base_momentum", 0.8, MOMENTUM_PER_GROUP),
                                _sp("CyclicLR", "max_momentum", 0.9, MOMENTUM_PER_GROUP),
                                _sp("CyclicLR", "last_epoch", -1, LAST_EPOCH)),
                   "cycles the learning rate between base_lr and max_lr, a step each batch",
                   cross=_cyclic_cross, per_batch=True, cycles_momentum=True),
    SchedulerEntry("CosineAnnealingWarmRestarts", (_sp("CosineAnnealingWarmRestarts", "T_0", check=POS_INT),
                                                   _sp("CosineAnnealingWarmRestarts", "T_mult", 1, integer(1)),
                                                   _sp("CosineAnnealingWarmRestarts", "eta_min", 0.0, number(0)),
                                                   _sp("CosineAnnealingWarmRestarts", "last_epoch", -1,
                                                       LAST_EPOCH)),
                   "cosine annealing that restarts every T_0 epochs (each period T_mult times the last)"),
    SchedulerEntry("OneCycleLR", (_sp("OneCycleLR", "max_lr", check=LR_PER_GROUP),
                                  _sp("OneCycleLR", "total_steps", None, optional(POS_INT)),
                                  _sp("OneCycleLR", "epochs", None, optional(POS_INT)),
                                  _sp("OneCycleLR", "steps_per_epoch", None, optional(POS_INT)),
                                  _sp("OneCycleLR", "pct_start", 0.3, number(0, 1, floats=True)),
                                  _sp("OneCycleLR", "anneal_strategy", "cos", choice("cos", "linear")),
                                  _sp("OneCycleLR", "cycle_momentum", True, FLAG),
                                  _sp("OneCycleLR", "base_momentum", 0.85, MOMENTUM_PER_GROUP),
                                  _sp("OneCycleLR", "max_momentum", 0.95, MOMENTUM_PER_GROUP),
                                  _sp("OneCycleLR", "div_factor", 25.0, number(0, lo_open=True)),
                                  _sp("OneCycleLR", "final_div_factor", 10000.0, number(0, lo_open=True)),
                                  _sp("OneCycleLR", "three_phase", False, FLAG),
                                  _sp("OneCycleLR", "last_epoch", -1, LAST_EPOCH)),
                   "the 1cycle policy: the learning rate rises to max_lr and anneals far below, a step each batch",
                   cross=_onecycle_cross, per_batch=True, cycles_momentum=True,
                   filled={"epochs": "the train section's number of epochs",
                           "steps_per_epoch": "the number of batches in an epoch, len(train_loader)"}),
    SchedulerEntry("PolynomialLR", (_sp("PolynomialLR", "total_iters", 5, POS_INT),
                                    # torch takes any power; below 0 it divides by 0 at the last epoch
                                    _sp("PolynomialLR", "power", 1.0, number(0, why="below 0 torch divides by 0 "
                                                                                 "in the last epoch")),
                                    _sp("PolynomialLR", "last_epoch", -1, LAST_EPOCH)),
                   "decays the learning rate along a polynomial to 0 over total_iters epochs"),
)}

# the arguments a trainer fills, as the generated code writes them (scheduler_code's ``fills`` overrides)
FILL_EXPRS = {"epochs": "epochs", "steps_per_epoch": "len(train_loader)"}

# classes torch exports that are not in the tables, and why (the tests hold the tables to torch less these)
EXCLUDED = {
    "Optimizer": "the base class of the optimizers; it takes a dict of defaults, not settings",
    "LRScheduler": "the base class of the schedulers; alone it keeps the learning rate as it is",
    "_LRScheduler": "a deprecated alias of LRScheduler",
}

# keywords torch's schedulers used to take, and what to do instead
_REMOVED = {"verbose": "torch removed schedulers' verbose argument; print scheduler.get_last_lr() instead"}
# names a student may write for a parameter
_ALIASES = {"learning_rate": "lr", "learningrate": "lr", "lr_rate": "lr", "beta1": "betas", "beta2": "betas",
            "beta": "betas", "epsilon": "eps", "wd": "weight_decay", "decay": "weight_decay", "step": "step_size",
            "steps": "step_size", "milestone": "milestones", "tmax": "T_max", "t_max": "T_max", "t_0": "T_0",
            "min_lr": "eta_min", "eta_max": "max_lr"}


# ---------------------------------------------------------------- names
_OPT_PREFIXES = ("", "optim.", "torch.optim.")
_SCHED_PREFIXES = ("", "lr_scheduler.", "optim.lr_scheduler.", "torch.optim.lr_scheduler.")


def _strip(dotted: str, prefixes) -> str | None:
    if not isinstance(dotted, str):
        return None
    for p in sorted(prefixes, key=len, reverse=True):
        if dotted.startswith(p):
            rest = dotted[len(p):]
            return rest if rest.isidentifier() else None
    return None


def optimizer_name(dotted: str) -> str | None:
    """The class name of an optimizer as a spec writes it: SGD, optim.SGD or torch.optim.SGD give 'SGD';
    None for another spelling (lr_scheduler.StepLR, torch.nn.SGD). The name need not be known: bind says so.

    >>> optimizer_name("torch.optim.AdamW"), optimizer_name("optim.SGD"), optimizer_name("nn.SGD")
    ('AdamW', 'SGD', None)
    """
    return _strip(dotted, _OPT_PREFIXES)


def scheduler_name(dotted: str) -> str | None:
    """The class name of a scheduler: StepLR, lr_scheduler.StepLR, optim.lr_scheduler.StepLR or
    torch.optim.lr_scheduler.StepLR give 'StepLR'; None for another spelling.

    >>> scheduler_name("torch.optim.lr_scheduler.OneCycleLR"), scheduler_name("optim.StepLR")
    ('OneCycleLR', None)
    """
    return _strip(dotted, _SCHED_PREFIXES)


def _option_hint(value: str, options) -> str | None:
    """For a string setting that is none of its few ``options``: `did_you_mean`'s slip of the keys, or else
    the option the value spells out in full (``minimum`` for ``min``), or None. (Only among a few options: among
    names, ``expand`` is not ``exp``.)

    >>> _option_hint("minimum", ["min", "max"]), _option_hint("mix", ["min", "max"]), _option_hint("low", ["min"])
    ('did you mean min?', 'did you mean max or min?', None)
    """
    options = list(options)
    spelt_out = sorted(c for c in options if 3 <= len(c) < len(value) and value.lower().startswith(c.lower()))
    return did_you_mean(value, options) or (f"did you mean {spelt_out[-1]}?" if spelt_out else None)


def _entry(kind: str, name: str):
    table, other, other_kind = ((OPTIMIZERS, SCHEDULERS, "scheduler") if kind == "optimizer"
                                else (SCHEDULERS, OPTIMIZERS, "optimizer"))
    bare = (optimizer_name if kind == "optimizer" else scheduler_name)(name)
    if bare in table:
        return table[bare]
    shown = name if isinstance(name, str) else show(name)
    key = bare or (name.rsplit(".", 1)[-1] if isinstance(name, str) else "")
    if key in other:
        hint = (f"{key} is a learning-rate {other_kind}: give it as scheduler = {key}(...)" if other_kind ==
                "scheduler" else f"{key} is an optimizer: give it as optimizer = {key}(...)")
    elif key in EXCLUDED:
        hint = f"{key} is {EXCLUDED[key]}; name a concrete class: " + ", ".join(table)
    else:
        where = "torch.optim" if kind == "optimizer" else "torch.optim.lr_scheduler"
        hint = did_you_mean(key, table) if key else None
        hint = (hint + " " if hint else "") + f"{where} has " + ", ".join(table)
    if bare is None and isinstance(name, str) and key in table:
        hint = ("write it " + " or ".join(p + key for p in (_OPT_PREFIXES if kind == "optimizer" else
                                                            _SCHED_PREFIXES)))
    raise OptimProblem(f"unknown {kind} {shown!r}", hint=hint)


# ---------------------------------------------------------------- binding
def _bind(entry, args, kwargs, ctx: _Ctx) -> dict:
    name, kind = entry.name, entry.kind
    leading = "params" if kind == "optimizer" else "optimizer"
    args = list(args or [])
    kwargs = dict(kwargs or {})
    positional = [p for p in entry.params if not p.kw_only and p.name != leading]
    given: dict[str, Any] = {}
    where: dict[str, int | None] = {}
    if len(args) > len(positional):
        names = ", ".join(p.name for p in positional)
        rest = [p.name for p in entry.params if p.kw_only]
        hint = f"give {', '.join(rest[:3])}{', ...' if len(rest) > 3 else ''} by keyword" if rest else \
            f"{name} takes {names}"
        raise OptimProblem(f"{name} takes at most {len(positional)} argument{'s' if len(positional) != 1 else ''} "
                           f"by position ({names}), but {len(args)} were given", index=len(positional), hint=hint)
    for i, v in enumerate(args):
        given[positional[i].name] = v
        where[positional[i].name] = i
    for k, v in kwargs.items():
        if k == leading:
            raise OptimProblem(f"{name}'s {leading} is given by the trainer, not by the spec", arg=k,
                               hint=f"leave {leading}= out")
        p = entry.param(k)
        if p is None:
            names = [q.name for q in entry.params]
            hint = _REMOVED.get(k) if kind == "scheduler" else None
            if hint is None and isinstance(k, str):
                alias = _ALIASES.get(k.lower())
                hint = f"did you mean {alias}?" if alias in names else did_you_mean(k, names)
            hint = (hint + " " if hint else "") + f"{name} takes " + ", ".join(names)
            raise OptimProblem(f"{name} has no argument {k!r}", arg=k, hint=hint)
        if k in given:
            raise OptimProblem(f"{name} got {k} twice: by position (argument {where[k] + 1}) and by keyword",
                               arg=k, hint=f"give {k} once")
        given[k] = v
        where[k] = None
    missing = [p.name for p in entry.params if p.default is REQUIRED and p.name not in given]
    if missing:
        p = entry.param(missing[0])
        what = f" ({p.doc})" if p.doc else ""
        more = f"; it also needs {', '.join(missing[1:])}" if len(missing) > 1 else ""
        raise OptimProblem(f"{name} needs {missing[0]}{what}{more}", arg=missing[0],
                           hint=f"give it: {name}({', '.join(f'{m}=...' for m in missing)})")
    bound = {}
    for p in entry.params:
        if p.name not in given:
            bound[p.name] = p.default
            continue
        try:
            bound[p.name] = p.check(given[p.name], ctx)
        except _Bad as e:
            raise OptimProblem(f"{name}'s {p.name} {e.text}", arg=p.name, index=where[p.name], hint=e.hint) from None
    if entry.cross is not None:
        try:
            entry.cross(bound, ctx)
        except _Bad as e:
            sep = "" if e.text.startswith("=") else " "
            raise OptimProblem(f"{name}'s {e.arg}{sep}{e.text}", arg=e.arg, index=where.get(e.arg),
                               hint=e.hint) from None
    return bound


def bind_optimizer(name: str, args: list, kwargs: dict) -> dict:
    """Bind a spec's optimizer call as Python binds a call to torch's class, check each value as torch does
    (and the deliberate refusals the module's doc describes); return every parameter after ``params``,
    in torch's order, defaults filled. Raises `OptimProblem`.

    >>> bind_optimizer("Adam", [], {"lr": 3e-4})
    {'lr': 0.0003, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0, 'amsgrad': False, 'foreach': None,
     'maximize': False, 'capturable': False, 'differentiable': False, 'fused': None, 'decoupled_weight_decay': False}
    """
    return _bind(_entry("optimizer", name), args, kwargs, _Ctx())


def bind_scheduler(name: str, args: list, kwargs: dict, *, optimizer: str | None = None,
                   param_groups: int = 1) -> dict:
    """Bind a spec's scheduler call as `bind_optimizer` binds an optimizer's: every parameter after
    ``optimizer``, in torch's order, defaults filled. ``optimizer``: the optimizer's class name, where
    known (CyclicLR and OneCycleLR cycle its momentum); ``param_groups``: how many groups it has (a list
    of learning rates gives one for each). A refused scheduler (LambdaLR, ...) raises whatever its
    arguments. Arguments the trainer fills (OneCycleLR's epochs) stay None: see `scheduler_fills`.

    >>> bind_scheduler("StepLR", [], {"step_size": 30})
    {'step_size': 30, 'gamma': 0.1, 'last_epoch': -1}
    """
    entry = _entry("scheduler", name)
    if entry.refused:
        raise OptimProblem(entry.refused, hint=entry.refused_hint)
    opt = OPTIMIZERS.get(optimizer_name(optimizer) or "") if optimizer else None
    return _bind(entry, args, kwargs, _Ctx(param_groups=param_groups, optimizer=opt))


def scheduler_fills(name: str, bound: dict) -> tuple[str, ...]:
    """The arguments of a bound scheduler the trainer must fill (OneCycleLR's epochs and steps_per_epoch,
    where neither total_steps nor they are given), in torch's order; what each is: the entry's ``filled``.

    >>> scheduler_fills("OneCycleLR", bind_scheduler("OneCycleLR", [0.1], {}))
    ('epochs', 'steps_per_epoch')
    """
    entry = _entry("scheduler", name)
    return _onecycle_fills(bound) if entry.filled else ()


def optimizer_notes(name: str, bound: dict) -> list[str]:
    """What a training loop must know about a bound optimizer, in plain words: a closure, sparse gradients,
    2-d parameters only, a flag that needs a GPU. Empty for a plain one.

    >>> optimizer_notes("LBFGS", bind_optimizer("LBFGS", [], {}))[0]
    'LBFGS re-evaluates the loss in its step: call optimizer.step(closure), where closure() ...'
    """
    e = _entry("optimizer", name)
    notes = []
    if e.needs_closure:
        notes.append(f"{e.name} re-evaluates the loss in its step: call optimizer.step(closure), where closure() "
                     "zeroes the gradients, computes the loss, calls backward() and returns the loss")
    if e.one_group:
        notes.append(f"{e.name} takes one param group only (no per-parameter options)")
    if e.sparse_grads:
        notes.append(e.sparse_grads)
    if e.only_2d:
        notes.append(e.only_2d)
    for flag, why in e.gpu_flags.items():
        if bound.get(flag):
            notes.append(why)
    if bound.get("fused"):
        notes.append("fused=True needs floating-point parameters on a device with fused kernels (cpu, cuda, mps, "
                     "xpu)")
    return notes


def scheduler_notes(name: str, bound: dict) -> list[str]:
    """What a training loop must know about a bound scheduler: when to step it, with what, what it overrides."""
    e = _entry("scheduler", name)
    notes = []
    if e.per_batch:
        notes.append(f"{e.name} steps after every batch: call scheduler.step() after each optimizer.step()")
    else:
        notes.append(f"{e.name} steps once an epoch" + (", with the monitored value: scheduler.step(val_loss)"
                                                         if e.needs_metric else ": call scheduler.step() after it"))
    if e.name == "CyclicLR":
        notes.append("CyclicLR replaces the optimizer's lr with base_lr")
    if e.name == "OneCycleLR":
        notes.append("OneCycleLR replaces the optimizer's lr with max_lr / div_factor, and its step raises past "
                     "total_steps steps")
    if e.cycles_momentum and bound.get("cycle_momentum"):
        notes.append(f"{e.name} cycles the optimizer's momentum (Adam's beta1) between base_momentum and "
                     "max_momentum, replacing the one it was given")
    for arg in scheduler_fills(name, bound):
        notes.append(f"the trainer gives {arg}: {e.filled[arg]}")
    return notes


# ---------------------------------------------------------------- code
def _same(a, b) -> bool:
    if isinstance(a, bool) != isinstance(b, bool) or (a is None) != (b is None):
        return False
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (tuple, list)) != isinstance(b, (tuple, list)):
        return False
    return a == b


def _call(path: str, first: str, entry, bound: dict, extra: dict | None = None, given=()) -> str:
    parts = [first]
    for p in entry.params:
        if p.name not in bound:
            continue
        v = bound[p.name]
        if extra and p.name in extra:
            parts.append(f"{p.name}={extra[p.name]}")
        elif p.default is REQUIRED or p.name in given or not _same(v, p.default):
            parts.append(f"{p.name}={literal(v)}")
    return f"{path}.{entry.name}({', '.join(parts)})"


def optimizer_code(name: str, bound: dict, params_expr: str = "model.parameters()", given=()) -> str:
    """The Python a tutorial writes for a bound optimizer: the arguments that differ from torch's defaults,
    and those named in ``given`` (the ones the spec writes, such as SGD's lr=1e-3, its default), in torch's
    order, by keyword.

    >>> optimizer_code("Adam", bind_optimizer("Adam", [], {"betas": [0.9, 0.98]}))
    'torch.optim.Adam(model.parameters(), betas=(0.9, 0.98))'
    """
    return _call("torch.optim", params_expr, _entry("optimizer", name), bound, given=given)


def scheduler_code(name: str, bound: dict, optimizer_expr: str = "optimizer", fills: dict | None = None,
                   given=()) -> str:
    """The Python for a bound scheduler, as `optimizer_code` writes an optimizer's. The arguments the trainer
    fills (`scheduler_fills`) are written as ``fills`` gives them, by default ``epochs`` and
    ``len(train_loader)``.

    >>> scheduler_code("OneCycleLR", bind_scheduler("OneCycleLR", [0.1], {}))
    'torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=epochs, steps_per_epoch=len(train_loader))'
    """
    entry = _entry("scheduler", name)
    if entry.refused:
        raise OptimProblem(entry.refused, hint=entry.refused_hint)
    extra = {a: (fills or {}).get(a, FILL_EXPRS[a]) for a in scheduler_fills(name, bound)}
    return _call("torch.optim.lr_scheduler", optimizer_expr, entry, bound, extra, given=given)
