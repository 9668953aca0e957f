"""Specs that ask for too much work, or nearly: a generator, and the oracle that holds `check` to its budgets.

Used by ``tests/test_budget_fuzz.py`` (a few hundred cases in every CI run)
and by ``tests/trust_long.py --budget`` (a long run, by hand).

`tests/validgen.py` writes valid specs of ordinary size and holds what
`check` accepts to torch. This generator aims at the other promise: that no
spec, however small, makes `check` run without end or take the machine's
memory (the budgets of ``modelspec/budget.py`` and `modelspec.Limits`). Its
specs are small (most under 1 KB, all under 3 KB) and each asks, by one of three routes, for
an amount of work drawn on a log scale around the limits, so that both
sides of every boundary are met often:

* ``nested``: blocks inside blocks (2 to 8 levels of 1 to 12 children), with
  Linear / LayerNorm / Conv1d leaves, block parameters passed down,
  comprehensions (``Sequential(*[B(w) for _ in range(d)])``,
  ``ModuleList([...])`` looped over in forward), ``for`` loops calling a
  child again and residual adds: the work multiplies level by level, and the
  floor of `modelspec.budget.work_floor` sees only part of it;
* ``broadcast``: several symbolic inputs joined by ``torch.cat``, outer
  broadcasts (``u.unsqueeze(-1) * w.unsqueeze(-2)``), flattens and reshapes
  of their results (which multiply symbolic sizes: the terms of one size grow
  as a power of a sum), slices with steps, transposes and reductions, up to
  ~30 statements, with example sizes from 2 to 100,000; as a random walk, as
  a sum of symbols raised to a power, or as a slice and a cat again and again
  (floor divisions nested in one size): the budgets of ``max_expr_terms`` and
  ``max_activation_bytes``;
* ``unrolled``: long ``Sequential(*[Linear(8, 8) for _ in range(n)])``
  (nested too), ``for`` loops over ``range(n)`` in forward, chains of
  ConvTranspose1d with large strides, Conv1d stacks over ``T=100000``, and
  Linear or Embedding sizes near ``max_params``: ``max_unroll``,
  ``max_modules``, ``max_steps``, ``max_params`` and the activation budget.

Unlike validgen it keeps no exact model of torch: it tracks just enough of
each shape (which dims are the same, which are fixed and how large) that most
of its proposals are valid, and lets `check` decide the rest. A spec may be
refused for its shapes; that is allowed (it must still be a located error),
but most refusals are meant to be budgets. The first line of every spec names
its family (``# budgetgen: nested``), so a saved failure says where it came
from.

``check_case(text)`` is the oracle. It runs ``elaborate_spec`` (what
``modelspec check`` does) twice, each under a watchdog that stops it where
it passes a bound: once as a user runs it, timed, then under `tracemalloc`
(which slows allocation-heavy code five to eight times, so its time is not
the check's). It returns "accepted" or "refused:<ErrorClass>", or raises
`BudgetFailure`:

* a refusal must be a `SpecError` with a line and column inside the text and
  a hint, and a refusal for a budget (its message speaks of a limit) must be
  a `SpecLimitError`;
* the check must finish within ``TIMEOUT`` (20 s) and its peak Python memory
  (tracemalloc's) stay at or under ``MEMORY_BOUND`` (100 MB);
* an accepted spec must be within the limits it was checked against: inputs
  and activations at batch 1 (the summary's) at most
  ``max_activation_bytes``, parameters and buffers at most ``max_params``,
  modules and steps within ``max_modules`` and ``max_steps``;
* nothing else may be raised, and both runs must agree.

`Amount` draws how much work a case asks for; ``case_text(seed, quick=True)``
(CI's) leaves out the slow middle, where a check does thousands of modules'
work before it decides.

It builds no torch module (validgen does that for valid specs): only the
front end, which is what has to stay bounded before anything is allocated.
"""

from __future__ import annotations

import gc
import math
import random
import re
import signal
import time
import tracemalloc
import traceback

from modelspec import Limits

MEMORY_BOUND = 100_000_000  # bytes of Python memory (tracemalloc's peak) one check may take
TIMEOUT = 20  # seconds one check may take, untraced: "did not finish"; generous, for a loaded machine
POLL_S = 0.1  # how often the watchdog looks at the clock and at the memory peak
TRACED_SLOWDOWN = 8  # the time a check may take under tracemalloc, in TIMEOUTs: a backstop, not a bound
RESIDENT_BRAKE = 1 << 30  # resident growth that stops the untraced run: far past MEMORY_BOUND, a runaway's
FAMILIES = ("nested", "broadcast", "unrolled")


def _log_int(rng: random.Random, lo: float, hi: float) -> int:
    """An integer drawn log-uniformly in [lo, hi]: each factor of ten as likely as the next."""
    return max(1, int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))))))


class Amount:
    """Draws how much work a spec asks for: little (up to ``cheap``), past a budget (from ``past``, where the
    budget refuses at once, to ``hi``), or in between, where `check` does all the work before it can accept or
    refuse, and is slowest (thousands of modules take seconds, several times that under tracemalloc).

    The long run (``quick=False``) draws the middle in MIDDLE_SHARE of cases; CI's quick cases never do, so
    that a few hundred fit in seconds: they meet the budgets' boundaries only where a budget can refuse
    before the work, which is where a budget that misses some work is found."""

    MIDDLE_SHARE = 0.2
    CHEAP_SHARE = 0.5

    def __init__(self, rng: random.Random, quick: bool):
        self.rng, self.quick = rng, quick

    def __call__(self, cheap: int, past: int, hi: int) -> int:
        r = self.rng.random()
        middle = 0.0 if self.quick else self.MIDDLE_SHARE
        if r < middle:
            return _log_int(self.rng, cheap, past - 1)
        if r < middle + self.CHEAP_SHARE:
            return _log_int(self.rng, 1, cheap)
        return _log_int(self.rng, past, hi)


# ====================================================================== nested blocks
def _leaf_body(rng: random.Random, seq: bool, width: str) -> list[str]:
    """Children of the lowest block: layers that keep the width they are given (so they can be called again),
    and now and then one that does not (a located shape refusal, when called on another width)."""
    if seq:
        k = rng.choice([1, 3, 5])
        options = [f"conv = Conv1d(_, {width}, {k}, padding={k // 2})", "bn = BatchNorm1d(_)", "act = ReLU()",
                   "drop = Dropout(0.1)"]
    else:
        options = [f"fc = Linear(_, {width})", "norm = LayerNorm(_)", "act = ReLU()", "drop = Dropout(0.1)",
                   f"fc2 = Linear({width}, {width})"]
    body = [options[0]] + [o for o in options[1:] if rng.random() < 0.35]
    if rng.random() < 0.2:
        rng.shuffle(body)
    return body


def _pack(stmts: list[str], indent: str, width: int = 100) -> list[str]:
    """Statements several to a line (the language needs no separator), so that twelve children in eight
    levels stay near 2 KB."""
    lines: list[str] = []
    for st in stmts:
        if lines and len(lines[-1]) + 2 + len(st) <= width:
            lines[-1] += "  " + st
        else:
            lines.append(indent + st)
    return lines


LIMITS = Limits()
QUICK_MODULES = 400  # quick cases make at most this many modules, or more than QUICK_PAST
QUICK_PAST = LIMITS.max_modules * 3 // 2  # past max_modules and the floor: a budget that sees them refuses at once


def _nested(rng: random.Random, amount: Amount) -> str:
    """Blocks inside blocks. The generator counts the modules the spec makes (as `check` would build them: a
    block, its children, a container and its items), and a quick case whose count falls in the slow middle
    is drawn again."""
    for _ in range(50):
        text, modules = _nested_once(rng, amount)
        if not amount.quick or modules <= QUICK_MODULES or modules > QUICK_PAST:
            return text
    return text


def _nested_once(rng: random.Random, amount: Amount) -> tuple[str, int]:
    levels = rng.randint(2, 8)
    # the leaves of one instance of the top block: a handful, past the modules floor, or (slow) in between
    target = amount(40, LIMITS.max_modules, LIMITS.max_modules * 1000)
    base = target ** (1 / (levels - 1))
    seq = rng.random() < 0.3
    width = rng.choice([4, 8, 16])
    params = rng.random() < 0.6  # blocks take (w, d) and pass them down
    lines: list[str] = []
    if params:
        lines.append(f"block L0(w = {width}) {{")
        leaf_width = "w"
    else:
        lines.append("block L0() {")
        leaf_width = str(width)
    leaf = _leaf_body(rng, seq, leaf_width)
    lines += ["    " + c for c in leaf] + ["}"]
    # modules[lv](d): the modules one instance of block L{lv} makes when its d is d (L0 has no d)
    made = {0: lambda d, n=1 + len(leaf): n}
    defaults = {}
    for lv in range(1, levels):
        # at most 12 children, and fewer when there are many levels: 8 levels of 8 already make millions of
        # modules, and the text stays near 2 KB
        k = max(1, min(12, 56 // (levels - 1), int(round(base * rng.uniform(0.7, 1.3)))))
        below = f"L{lv - 1}"
        defaults[lv] = rng.randint(1, 4)
        head = f"block L{lv}(w = {width}, d = {defaults[lv]})" if params else f"block L{lv}()"
        lines.append(head + " {")
        kids, calls = [], []  # declarations; forward statements using them
        parts = []  # (copies, passes d down) of each child below, and 1 for each layer: the count
        for i in range(k):
            arg = "" if not params else "w" if lv == 1 else rng.choice(["w", "w", "w, d", ""])
            down = arg == "w, d"
            r = rng.random()
            if r < 0.12:
                n = rng.choice(["d", "2", "3"]) if params else rng.choice(["2", "3", "5"])
                kids.append(f"r{i} = Sequential(*[{below}({arg}) for _ in range({n})])")
                calls.append(f"x = r{i}(x)")
                parts.append((n, down))
            elif r < 0.2:
                n = rng.choice(["2", "3", "d"]) if params else rng.choice(["2", "4"])
                kids.append(f"m{i} = ModuleList([{below}({arg}) for _ in range({n})])")
                calls.append(f"for m in m{i} {{ x = m(x) }}")
                parts.append((n, down))
            elif r < 0.27:
                kids.append(f"f{i} = Conv1d(_, {leaf_width}, 1)" if seq else f"f{i} = Linear(_, {leaf_width})")
                calls.append(f"x = f{i}(x)")
                parts.append(None)
            else:
                kids.append(f"c{i} = {below}({arg})")
                v = rng.random()
                if v < 0.1:
                    calls.append(f"for i in range({rng.choice([2, 3, 10])}) {{ x = c{i}(x) }}")
                elif v < 0.2:
                    calls.append(f"x = x + c{i}(x)")
                else:
                    calls.append(f"x = c{i}(x)")
                parts.append(("", down))

        def count(d, parts=parts, below=made[lv - 1], default=defaults.get(lv - 1)):
            total = 1  # the block itself
            for part in parts:
                if part is None:
                    total += 1
                    continue
                n, down = part
                copies = 1 if n == "" else d if n == "d" else int(n)
                total += (n != "") + copies * below(d if down else default)  # a container, and its items
            return total

        made[lv] = count
        lines += _pack(kids, "    ")
        if any(c.startswith(("for", "x = x")) for c in calls) or rng.random() < 0.3:
            lines.append("    forward(x) {")
            lines += _pack(calls + ["return x"], "        ")
            lines.append("    }")
        lines.append("}")
    inp = f"[N, {width}, T={rng.choice([4, 16, 100])}]" if seq else f"[N, {width}]"
    top = f"L{levels - 1}"
    one = made[levels - 1](defaults.get(levels - 1))
    r = rng.random()
    if r < 0.6:
        body, modules = [f"top = {top}()"], one
    elif r < 0.8:
        n = amount(4, 10_000, 40_000)
        body, modules = [f"top = Sequential(*[{top}() for _ in range({n})])"], 1 + n * one
    else:
        n = rng.randint(2, 4)
        body, modules = [f"top{i} = {top}()" for i in range(n)], n * one
    text = "\n".join(lines + [f"model M(x: {inp}) {{"] + ["    " + b for b in body] + ["}"]) + "\n"
    return text, 1 + modules


# ====================================================================== broadcasts and cats over symbols
class _Dims:
    """A shape as the generator sees it: for each dim, a key (equal keys: the same size for torch and for
    modelspec) and its size when fixed (None when symbolic)."""

    def __init__(self):
        self.fresh = 0

    def sym(self):
        self.fresh += 1
        return (("s", self.fresh), None)

    @staticmethod
    def const(v: int):
        return (("c", v), v)

    def join(self, dims, how):
        """A dim made of others (their sum for a cat, their product for a flatten): fixed when all are."""
        if all(d[1] is not None for d in dims):
            v = sum(d[1] for d in dims) if how == "sum" else math.prod(d[1] for d in dims)
            return self.const(v)
        return self.sym()


def _bcast(a: list, b: list):
    """The broadcast of two shapes, or None: aligned from the right, a dim of fixed size 1 gives way."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else None
        y = b[-i] if i <= len(b) else None
        if x is None or y is None:
            out.append(x or y)
        elif x[0] == y[0]:
            out.append(x)
        elif x[1] == 1:
            out.append(y)
        elif y[1] == 1:
            out.append(x)
        else:
            return None
    return out[::-1]


def _broadcast(rng: random.Random, amount: Amount) -> str:
    D = _Dims()
    batchless = rng.random() < 0.25  # inputs [A], [B], ...: the first one's only dim is the batch
    n_in = rng.randint(1, 6)
    letters = "ABCDEFGHJK"
    inputs, env = [], []  # declarations; (name, dims, contiguous)
    # a random walk over the operations; or a sum of symbols raised to a power by outer products and flattens
    # (the terms of one size grow as binomials: max_expr_terms); or a slice and a cat, again and again (floor
    # divisions nested in one size)
    style = rng.choice(["walk", "walk", "power", "slicecat"])
    big = rng.random() < 0.3 and style != "power"  # small sizes there: the terms, not the bytes, must decide
    for i in range(n_in):
        name = "abcdefghjk"[i]
        r = rng.random()
        if r < 0.2 and not (batchless and i == 0):
            size = rng.choice([2, 4, 8, 64, 1000] + ([100000] if big else []))
            dim, spelled = D.const(size), str(size)
        else:
            ex = rng.choice([None, 2, 3] if style == "power" else
                            [None, None, 2, 3, 16, 64] + ([1000, 100000] if big else [200]))
            spelled = letters[i] + ("" if ex is None else f"={ex}")
            dim = D.sym()
        if batchless:
            dims = [dim]
            inputs.append(f"{name}: [{spelled}]")
        else:
            dims = [(("s", "N"), None), dim]
            inputs.append(f"{name}: [N, {spelled}]")
        env.append((name, dims, True))
    lead = 0 if batchless else 1  # dims before this one are the batch: left alone
    stmts: list[str] = []
    count = 0

    def add(expr, dims, contiguous=True):
        nonlocal count
        count += 1
        name = f"v{count}" if rng.random() < 0.6 else "x"
        stmts.append(f"{name} = {expr}")
        env[:] = [e for e in env if e[0] != name] + [(name, dims, contiguous)]

    def pick():
        return env[-1] if rng.random() < 0.7 else rng.choice(env)  # mostly a chain, now and then a fork

    if style == "power":
        alike = [e for e in env if len(e[1]) == lead + 1]
        add(f"torch.cat([{', '.join(e[0] for e in alike)}], dim={lead})",
            alike[0][1][:lead] + [D.join([e[1][lead] for e in alike], "sum")])
        for _ in range(_log_int(rng, 1, 10)):
            name, dims, _ = env[-1]
            r = rng.random()
            if batchless and r < 0.4 and len(set(d[0] for d in dims)) == 1 and len(dims) < 6:
                add(f"{name}[..., None] + {name}", dims + [dims[-1]])  # the issue's form: [S] -> [S, S] -> ...
            elif r < 0.85 and len(dims) < 6:
                others = [e for e in env if len(e[1]) == len(dims) and e[1][:-1] == dims[:-1]]
                w = env[-1] if rng.random() < 0.6 else rng.choice(others)
                add(f"{name}.unsqueeze(-1) * {w[0]}.unsqueeze(-2)", dims + [w[1][-1]])
            elif r < 0.92:
                add(f"{name}[..., ::2]", dims[:-1] + [D.sym()], False)
            if len(env[-1][1]) > lead + 1 and rng.random() < 0.7:
                name, dims, _ = env[-1]
                add(f"{name}.flatten({lead})", dims[:lead] + [D.join(dims[lead:], "prod")])
    elif style == "slicecat":
        for _ in range(_log_int(rng, 1, 30)):
            name, dims, _ = env[-1]
            add(f"{name}[..., ::{rng.choice([2, 2, 3])}]", dims[:-1] + [D.sym()], False)
            name, dims, _ = env[-1]
            others = [e for e in env if len(e[1]) == len(dims) and e[1][:-1] == dims[:-1]]
            parts = [name] * rng.randint(2, 3) + ([rng.choice(others)[0]] if rng.random() < 0.3 else [])
            add(f"torch.cat([{', '.join(parts)}], dim=-1)", dims[:-1] + [D.sym()])
    n = _log_int(rng, 2, 30) if style == "walk" else rng.randint(0, 3)
    for _ in range(n * 3):
        if len(stmts) >= n:
            break
        name, dims, contig = pick()
        rank = len(dims)
        r = rng.random()
        if r < 0.22:  # torch.cat along a dim, of values alike elsewhere
            d = rng.randrange(lead, rank) if rank > lead else 0
            alike = [e for e in env
                     if len(e[1]) == rank and all(e[1][j][0] == dims[j][0] for j in range(rank) if j != d)]
            parts = [rng.choice(alike) for _ in range(rng.randint(2, 4))]
            if rng.random() < 0.5:
                parts[0] = (name, dims, contig)
            new = list(dims)
            new[d] = D.join([p[1][d] for p in parts], "sum")
            spell_d = d if rng.random() < 0.5 else d - rank
            add(f"torch.cat([{', '.join(p[0] for p in parts)}], dim={spell_d})", new)
        elif r < 0.42 and rank < 7:  # an outer broadcast: one more dim
            others = [e for e in env if len(e[1]) == rank and all(e[1][j][0] == dims[j][0] for j in range(rank - 1))]
            w = rng.choice(others)
            op = rng.choice(["*", "+", "-"])
            form = rng.random()
            if form < 0.5:
                expr = f"{name}.unsqueeze(-1) {op} {w[0]}.unsqueeze(-2)"
            elif form < 0.8:
                expr = f"{name}[..., None] {op} {w[0]}[..., None, :]"
            elif rank == 1:
                expr, w = f"{name}[..., None] {op} {name}", (name, dims, contig)  # the issue's form
            else:
                expr = f"{name}.unsqueeze(-1) {op} {w[0]}.unsqueeze(-2)"
            add(expr, dims[:-1] + [dims[-1], w[1][-1]])
        elif r < 0.6 and rank > lead + 1:  # a flatten of a broadcast result: sizes multiply
            form = rng.random()
            if form < 0.35:
                add(f"{name}.flatten({lead})", dims[:lead] + [D.join(dims[lead:], "prod")])
            elif form < 0.55:
                add(f"{name}.flatten(-2)", dims[:-2] + [D.join(dims[-2:], "prod")])
            elif form < 0.8 and not batchless:
                add(f"{name}.reshape({name}.size(0), -1)", dims[:1] + [D.join(dims[1:], "prod")])
            elif not batchless:
                add(f"{name}.view({name}.size(0), -1)", dims[:1] + [D.join(dims[1:], "prod")])
            else:
                add(f"{name}.flatten()", [D.join(dims, "prod")])
        elif r < 0.72 and rank > lead:  # a slice with a step: a floor division, nested repeat after repeat
            step = rng.choice([2, 2, 3])
            d = dims[-1]
            new_last = D.const(-(-d[1] // step)) if d[1] is not None else D.sym()
            if rank == 2 and not batchless and rng.random() < 0.5:
                add(f"{name}[:, ::{step}]", dims[:-1] + [new_last], False)
            elif rng.random() < 0.8:
                add(f"{name}[..., ::{step}]", dims[:-1] + [new_last], False)
            else:
                new_last = D.const(d[1] - 1) if d[1] is not None and d[1] > 1 else D.sym()
                add(f"{name}[..., 1:]", dims[:-1] + [new_last], False)
        elif r < 0.8 and rank > lead + 1:  # a transpose: out of memory order
            add(f"{name}.transpose({lead}, -1)", dims[:lead] + [dims[-1]] + dims[lead + 1:-1] + [dims[lead]], False)
        elif r < 0.88 and rank > lead + 1:  # a reduction: one dim fewer
            add(f"{name}.{rng.choice(['sum', 'mean', 'amax'])}(dim=-1)", dims[:-1])
        else:  # elementwise, with itself or a value of a shape it broadcasts with
            partner = rng.choice(env)
            b = _bcast(dims, partner[1])
            if b is not None and rng.random() < 0.6:
                add(f"{name} {rng.choice(['+', '*'])} {partner[0]}", b)
            else:
                add(rng.choice([f"F.relu({name})", f"{name} * 2.0", f"torch.tanh({name})", f"{name} + 1"]), dims,
                    contig)
    if not stmts:
        add(f"{env[0][0]} * 2.0", env[0][1])
    name, dims, _ = env[-1]
    body = []
    ret = name
    if dims[-1][1] is not None and len(dims) > lead and rng.random() < 0.4:  # a head over a fixed last dim
        out = rng.choice([4, 1000, 100000])
        body.append(f"    head = Linear(_, {out})")
        ret = f"head({name})"
    if rng.random() < 0.2 and len(env) > 1:
        ret = f"{ret}, {rng.choice(env[:-1])[0]}"
    names = ", ".join(i.split(":")[0] for i in inputs)
    lines = [f"model M({', '.join(inputs)}) {{"] + body + [f"    forward({names}) {{"]
    lines += ["        " + s for s in stmts] + [f"        return {ret}", "    }", "}"]
    return "\n".join(lines) + "\n"


# ====================================================================== unrolled depth
def _split(rng: random.Random, n: int, amount: Amount) -> tuple[int, int]:
    """Two counts whose product is about ``n``, for a loop in a loop. No one range of them need pass
    max_unroll, so `check` refuses their product only after that many passes: slow, so a quick case past
    the limit puts it all in the first range (refused at once)."""
    if amount.quick and n > 10_000:
        return n, rng.randint(1, 3)
    a = _log_int(rng, 1, n)
    return a, max(1, n // a)


def _unrolled(rng: random.Random, amount: Amount) -> str:
    w = rng.choice([4, 8, 16])
    r = rng.random()
    children: list[str] = []
    fwd: list[str] = []
    if r < 0.45:  # vectors through long stacks and loops
        inp = f"x: [N, {w}]"
        for i in range(rng.randint(1, 3)):
            form = rng.random()
            n = amount(300, 10_001, 40_000)  # loop passes: past 10,000 (max_unroll), refused at once
            if form < 0.35:
                children.append(f"s{i} = Sequential(*[Linear({w}, {w}) for _ in range({n})])")
                fwd.append(f"x = s{i}(x)")
            elif form < 0.55:
                a, b = _split(rng, n, amount)
                children.append(f"s{i} = Sequential(*[Sequential(*[Linear({w}, {w}) for _ in range({a})]) "
                                f"for _ in range({b})])")
                fwd.append(f"x = s{i}(x)")
            elif form < 0.75:
                children.append(f"f{i} = Linear({w}, {w})")
                body = rng.choice([f"x = f{i}(x)", f"x = x + f{i}(x)", f"x = F.relu(f{i}(x)) * 0.5"])
                fwd.append(f"for j in range({n}) {{ {body} }}")
            elif form < 0.9:
                children.append(f"l{i} = ModuleList([Linear({w}, {w}) for _ in range({n})])")
                fwd.append(f"for m in l{i} {{ x = m(x) }}")
            else:
                a, b = _split(rng, n, amount)
                children.append(f"f{i} = Linear({w}, {w})")
                fwd.append(f"for j in range({a}) {{ for k in range({b}) {{ x = f{i}(x) }} }}")
    elif r < 0.75:  # sequences that grow: transposed convolutions with large strides, convs over long inputs
        c = rng.choice([1, 2, 8, 64, 512])
        t = rng.choice([4, 100, 1000, 100000, 1000000])
        inp = f"x: [N, {c}, T={t}]"
        for i in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                s = rng.choice([2, 10, 100, 1000])
                k = rng.choice([1, 2, 3, s])
                children.append(f"u{i} = ConvTranspose1d({c}, {c}, {k}, stride={s})")
            else:
                k = rng.choice([1, 3])
                n = _log_int(rng, 1, 200)
                children.append(f"u{i} = Sequential(*[Conv1d({c}, {c}, {k}, padding={k // 2}) for _ in range({n})])")
            fwd.append(f"x = u{i}(x)")
        if rng.random() < 0.3:
            children.append("pool = AdaptiveAvgPool1d(1)")
            fwd.append("x = pool(x)")
    else:  # sizes near max_params, and a forward that uses them many times
        f = _log_int(rng, 8, 200_000)
        h = _log_int(rng, 8, 200_000)
        if rng.random() < 0.3:
            inp = f"x: Long[N, T={rng.choice([8, 1000, 100000])}]"
            children.append(f"emb = Embedding({f}, {rng.choice([8, 64, 1024, 16384])})")
            fwd.append("x = emb(x)")
            children.append(f"fc = Linear(_, {h})")
        else:
            inp = f"x: [N, {f}]" if rng.random() < 0.6 else f"x: [N, T={rng.choice([10, 1000, 100000])}, {f}]"
            children.append(f"fc = Linear({f}, {h})")
        n = amount(300, 10_001, 40_000)
        if rng.random() < 0.5:
            children.append(f"back = Linear({h}, {h})")
            fwd += ["x = fc(x)", f"for j in range({n}) {{ x = back(x) }}"]
        else:
            fwd.append("x = fc(x)")
    lines = [f"model M({inp}) {{"] + ["    " + c for c in children]
    if fwd and (any(s.startswith("for") for s in fwd) or rng.random() < 0.5):
        lines += ["    forward(x) {"] + ["        " + s for s in fwd] + ["        return x", "    }"]
    return "\n".join(lines + ["}"]) + "\n"


GENERATORS = {"nested": _nested, "broadcast": _broadcast, "unrolled": _unrolled}


def generate(rng: random.Random, quick: bool = False) -> str:
    """A spec of one family (drawn first), deterministic for the rng's state; its first line names the family.
    ``quick``: no work in the slow middle (`Amount`), for CI."""
    family = rng.choice(FAMILIES)
    return f"# budgetgen: {family}\n" + GENERATORS[family](rng, Amount(rng, quick))


def case_text(seed: int, quick: bool = False) -> str:
    return generate(random.Random(seed), quick)


def family_tag(text: str) -> str:
    m = re.match(r"# budgetgen: (\w+)", text)
    return m.group(1) if m else "other"


# ====================================================================== the oracle
class BudgetFailure(AssertionError):
    """A broken promise: ``stage`` says which, ``detail`` what happened; str() holds the spec."""

    def __init__(self, stage: str, detail: str, text: str):
        self.stage, self.detail, self.text = stage, detail, text
        super().__init__(f"[{family_tag(text)}: {stage}] {detail}\n--- spec ---\n{text}")

    @property
    def family(self) -> str:
        """The generator's family, the stage and the message with its specifics taken out: failures of one
        cause group together (``trust_long.py`` counts them so)."""
        import validgen

        return f"{family_tag(self.text)}: " + validgen.family_of(self.stage, self.detail)


class Overrun(BaseException):
    """Raised by the watchdog inside the check: a BaseException, so that no ``except Exception`` in modelspec
    can swallow it and carry on."""

    def __init__(self, stage: str, what: str):
        super().__init__(what)
        self.stage, self.what = stage, what


def _rss() -> int | None:
    """This process's resident memory in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return None


try:
    import resource

    PAGE = resource.getpagesize()
except ImportError:  # pragma: no cover - not a POSIX system
    PAGE = 4096


class _Watchdog:
    """Stops the check (raises `Overrun` inside it) once it has run ``seconds``, or once its memory passes
    ``traced`` bytes of tracemalloc's peak (when tracing) or ``resident`` bytes of resident memory more than
    when it began. It looks every POLL_S, so an overrun is stopped soon after it starts and a case far past a
    bound costs little more than one at it."""

    def __init__(self, seconds: float, *, traced: int | None = None, resident: int | None = None):
        self.seconds, self.traced, self.resident = seconds, traced, resident

    def __enter__(self):
        self.t0 = time.monotonic()
        self.base = tracemalloc.get_traced_memory()[0] if self.traced is not None else 0
        self.rss0 = _rss() if self.resident is not None else None
        self.usable = hasattr(signal, "setitimer")
        if self.usable:
            self.old = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, POLL_S, POLL_S)
        return self

    def peak(self) -> int:
        return tracemalloc.get_traced_memory()[1] - self.base

    def _tick(self, signum, frame):
        took = time.monotonic() - self.t0
        if self.traced is not None and (peak := self.peak()) > self.traced:
            raise Overrun("memory", f"peak Python memory passed {self.traced / 1e6:.0f} MB "
                                    f"({peak / 1e6:.0f} MB after {took:.1f} s)")
        if self.rss0 is not None and (grew := (_rss() or 0) - self.rss0) > self.resident:
            raise Overrun("memory", f"resident memory grew by {grew / 1e6:.0f} MB in {took:.1f} s")
        if took > self.seconds:
            raise Overrun("did-not-finish", f"did not finish in {self.seconds:g} s")

    def __exit__(self, *exc):
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _located(err, text: str) -> str | None:
    """What is wrong with a refusal as a user sees it, or None."""
    missing = [w for w in ("line", "column") if getattr(err, w, None) is None]
    if not (err.hint or "").strip():
        missing.append("hint")
    if missing:
        return f"SpecError without {', '.join(missing)}: {err.message}"
    lines = text.split("\n")
    if not 1 <= err.line <= len(lines) or not 1 <= err.column <= len(lines[err.line - 1]) + 1:
        return f"SpecError at {err.line}:{err.column}, outside the spec: {err.message}"
    return None


# a refusal for a budget says so; any other class for one of these is a misfiled limit
BUDGET_WORDS = re.compile(r"\blimit\b|\bunroll|more than [\d,]+ (modules|steps|passes)|terms, over", re.I)


def check_case(text: str, timeout: float | None = TIMEOUT, bound: int = MEMORY_BOUND) -> str:
    """Hold one spec to the budgets: "accepted" or "refused:<ErrorClass>", or a `BudgetFailure` whose ``stage``
    is one of: did-not-finish, memory (the watchdog stopped it), crash (anything but a SpecError, MemoryError
    and RecursionError included), refused-unlocated (no line, column or hint, or a place outside the text),
    refused-budget-class (a budget's refusal not a SpecLimitError), accepted-over-activations,
    accepted-over-params, accepted-over-modules, accepted-over-steps (accepted, but past a limit),
    nondeterministic (two checks of the same text disagree).

    The check runs twice. First as a user runs it, timed: tracemalloc slows allocation-heavy code several
    times (five to seven, for thousands of modules), so its time is not the check's; a resident-memory brake
    (RESIDENT_BRAKE) stops a runaway there. Then under tracemalloc, for the peak of Python memory, stopped as
    soon as it passes ``bound``, with TRACED_SLOWDOWN times the time allowed."""
    try:
        return _check_twice(text, timeout, bound)
    except BudgetFailure:
        # a check stopped part-way leaves its work as cyclic garbage (modelspec pauses the collector while it
        # elaborates): millions of objects, whose collection took 20 s and landed in the next case's time
        gc.collect()
        raise


def _check_twice(text: str, timeout: float | None, bound: int) -> str:
    seconds = timeout or float("inf")
    first = _watched(text, _Watchdog(seconds, resident=RESIDENT_BRAKE))
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        dog = _Watchdog(seconds * TRACED_SLOWDOWN, traced=bound)
        second = _watched(text, dog)
        peak = dog.peak()
    finally:
        if started:
            tracemalloc.stop()
    if peak > bound:  # between two looks of the watchdog
        raise BudgetFailure("memory", f"peak Python memory {peak / 1e6:.0f} MB, over "
                                      f"{bound / 1e6:.0f} MB", text)
    if first != second:
        raise BudgetFailure("nondeterministic", f"checked twice: {first}, then {second}", text)
    return first


def _watched(text: str, dog: _Watchdog) -> str:
    """One check under ``dog``. A failure leaves with no context and a traceback from here: the frames of a
    check stopped part-way hold everything it had built (hundreds of megabytes), and a list of failures kept
    them all alive, slowing every later case (its collections walked them)."""
    try:
        with dog:
            return _check(text)
    except Overrun as o:
        stage, what = o.stage, o.what
    except BudgetFailure as f:
        stage, what = f.stage, f.detail
    raise BudgetFailure(stage, what, text)


def _check(text: str) -> str:
    from modelspec import Limits, SpecError, elaborate_spec, summarize
    from modelspec.errors import SpecLimitError

    limits = Limits()
    try:
        graph = elaborate_spec(text)
    except SpecError as err:
        problem = _located(err, text)
        if problem:
            raise BudgetFailure("refused-unlocated", problem, text) from None
        if BUDGET_WORDS.search(err.message) and not isinstance(err, SpecLimitError):
            raise BudgetFailure("refused-budget-class", f"{type(err).__name__}, not SpecLimitError: {err.message}",
                                text) from None
        return f"refused:{type(err).__name__}"
    except Exception:
        raise BudgetFailure("crash", traceback.format_exc(limit=-6).strip(), text) from None
    try:
        s = summarize(graph, batch=1)
    except Exception:
        raise BudgetFailure("crash", "summarize: " + traceback.format_exc(limit=-6).strip(), text) from None
    nodes = list(graph.root.walk())
    act = None if s.input_bytes is None or s.activation_bytes is None else s.input_bytes + s.activation_bytes
    if act is None or act > limits.max_activation_bytes:
        raise BudgetFailure("accepted-over-activations", f"inputs and activations at batch 1: {act} bytes, limit "
                                                         f"{limits.max_activation_bytes:,}", text)
    weights = sum(n.params + n.buffers for n in nodes)
    if weights > limits.max_params:
        raise BudgetFailure("accepted-over-params", f"{weights:,} parameters and buffers, limit "
                                                    f"{limits.max_params:,}", text)
    if len(nodes) > limits.max_modules:
        raise BudgetFailure("accepted-over-modules", f"{len(nodes):,} modules, limit {limits.max_modules:,}", text)
    if graph.steps > limits.max_steps:
        raise BudgetFailure("accepted-over-steps", f"{graph.steps:,} steps, limit {limits.max_steps:,}", text)
    return "accepted"


def failure_of(text: str, timeout: int | None = TIMEOUT):
    """The `BudgetFailure` of ``text``, or None: a predicate for the shrinker."""
    try:
        check_case(text, timeout)
    except BudgetFailure as f:
        return f
    return None


def same_family(fam: str, timeout: int | None = TIMEOUT):
    def pred(t):
        f = failure_of(t, timeout)
        return f is not None and f.family == fam

    return pred


def shrink(text: str, predicate, max_checks: int = 80) -> str:
    """validgen's shrinker (it deletes statements, children, arguments and wrappers), which knows nothing of
    either generator: a small spec per failure family for ``trust_long.py --budget --shrink``. Fewer checks
    than validgen's: a budget's failure costs up to a minute to check again."""
    import validgen

    return validgen.shrink(text, predicate, max_checks=max_checks)


def run_seeds(seeds, *, quick: bool = False, on_case=None):
    """Check the cases of ``seeds``: (outcomes as a Counter of (family, outcome), failures as (seed,
    BudgetFailure)); ``outcome`` is "accepted", "refused:<ErrorClass>" or "failed"."""
    import collections

    outcomes: collections.Counter = collections.Counter()
    failures = []
    for seed in seeds:
        text = case_text(seed, quick)
        try:
            r = check_case(text)
        except BudgetFailure as f:
            failures.append((seed, f))
            r = "failed"
        outcomes[(family_tag(text), r)] += 1
        if on_case is not None:
            on_case(seed, text, r)
    return outcomes, failures


def distribution(outcomes) -> str:
    """The outcomes by family, one line each: how much of each family `check` accepts and refuses, and why."""
    lines = []
    for fam in FAMILIES + ("other",):
        row = {o: n for (f, o), n in outcomes.items() if f == fam}
        if row:
            total = sum(row.values())
            parts = ", ".join(f"{o} {n}" for o, n in sorted(row.items(), key=lambda kv: -kv[1]))
            lines.append(f"{fam:9} {total:6}: {parts}")
    return "\n".join(lines)


if __name__ == "__main__":  # python tests/budgetgen.py [--quick] FIRST COUNT: each case's outcome, then the counts
    import argparse

    ap = argparse.ArgumentParser(description="the outcomes of budgetgen's cases, by family")
    ap.add_argument("first", type=int, nargs="?", default=0)
    ap.add_argument("count", type=int, nargs="?", default=200)
    ap.add_argument("--quick", action="store_true", help="CI's cases: no work in the slow middle")
    args = ap.parse_args()
    t0 = time.time()

    def show(seed, text, r):
        print(f"{seed} {family_tag(text)} {r} ({time.time() - show.t:.2f} s)", flush=True)
        show.t = time.time()

    show.t = t0
    outcomes, failures = run_seeds(range(args.first, args.first + args.count), quick=args.quick, on_case=show)
    print(distribution(outcomes))
    for seed, f in failures:
        print(f"--- seed {seed}: {f.family}")
    print(f"{args.count} cases in {time.time() - t0:.0f} s, {len(failures)} failures")
