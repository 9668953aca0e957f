"""ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad, 1-d to 3-d.

``padding`` pairs run from the last dim backwards, as F.pad's do: (left, right) of the last dim, then (top,
bottom), then (front, back). A negative pad crops.
"""

from __future__ import annotations

from ..shapes import Val, shape_str
from .base import ANY_DTYPE, FLOAT, NUMERIC, Arg, ArgProblem, ArgType, Layer, ShapeProblem, need_rank


def pad_sizes(kind: str, n: int) -> ArgType:
    """An int for every side, or a tuple of ``2 * n`` ints, as the padding of ``{kind}Pad{n}d`` takes.

    >>> pad_sizes("Zero", 1)(2), pad_sizes("Zero", 1)((0, -1))
    ((2, 2), (0, -1))
    """
    word = f"an integer or a tuple of {2 * n} integers"

    def check(v):
        items = tuple(v) if isinstance(v, (tuple, list)) else (v,) * (2 * n)
        # torch takes a tuple of another even length, and pads as many dims as it has pairs for: ZeroPad2d((1, 1))
        # pads the last dim alone. Its type hints, and this, keep to the class's 2 * n
        if len(items) != 2 * n:
            other = f" ({kind}Pad{len(items) // 2}d takes {len(items)})" if len(items) in (2, 4, 6) else ""
            raise ArgProblem(f"must be {word}, not a tuple of {len(items)}{other}")
        if any(isinstance(x, bool) or not isinstance(x, int) for x in items):
            raise ArgProblem(f"must be {word}, not {v!r}")
        return items

    return ArgType(word, check)


# ---------------------------------------------------------------- what each mode refuses
# Each takes the pad's n, a padded dim's size and its (left, right) pads, and says why torch refuses them, with
# a hint, or None. Symbolic sizes are checked at the example sizes (modules.check_rule_at_examples).
def _constant_problem(n, size, left, right):
    # torch crops first, then pads: the crop alone must fit
    if size + min(left, 0) + min(right, 0) < 0:
        return "the crop is more than the dim holds", f"crop at most {size} in all there"
    return None


def _reflect_problem(n, size, left, right):
    if max(left, right) >= size:
        return ("reflection padding must be smaller than the input size",
                f"pad at most {size - 1} on a side there, or repeat the edge instead: ReplicationPad{n}d")
    return None


def _replicate_problem(n, size, left, right):
    return None


def _circular_problem(n, size, left, right):
    if max(left, right) > size:
        return ("circular padding must be at most the input size: it wraps around once",
                f"pad at most {size} on a side there")
    if min(left, right) < 0 and not _circular_copies_fit(size, left, right):
        return ("torch's circular padding cannot crop one side and wrap the other around this far",
                "crop with a slice first (x[..., a:b]), then pad by non-negative amounts")
    return None


def _circular_copies_fit(size: int, left: int, right: int) -> bool:
    """Whether torch's _pad_circular can make its copies along a dim it crops on a side.

    It copies the kept input into the output, then the wrapped-around ends from the output into itself; a copy
    must have a source of the target's length (or of one element, which broadcasts), and one within the output
    must not partly overlap its target. torch sees an overlap only where both parts are dense in memory (the
    dims before this one all of size 1, as a batch of one may have) and copies regardless elsewhere: refused
    at every size here.

    >>> _circular_copies_fit(5, -1, 3), _circular_copies_fit(5, -1, 5)
    (True, False)
    """
    out = size + left + right

    def span(n, start, stop):  # what Tensor.slice keeps of a dim of n: negative ends count from the end, then clamp
        start, stop = (min(max(i + n if i < 0 else i, 0), n) for i in (start, stop))
        return start, max(start, stop)

    copies = [(span(size, max(-left, 0), size - max(-right, 0)), span(out, max(left, 0), out - max(right, 0)), False)]
    if left > 0:
        copies.append((span(out, out - left - max(right, 0), out - max(right, 0)), span(out, 0, left), True))
    if right > 0:
        copies.append((span(out, max(left, 0), max(left, 0) + right), span(out, out - right, out), True))
    for (a, b), (c, d), within in copies:
        if b - a not in (d - c, 1):
            return False
        if within and (a, b) != (c, d) and max(a, c) < min(b, d):
            return False
    return True


PROBLEMS = {"constant": _constant_problem, "reflect": _reflect_problem, "replicate": _replicate_problem,
            "circular": _circular_problem}


# ---------------------------------------------------------------- the rule
def _padded(a, x, n):
    """(dim, left, right) of each padded dim, the last dim first."""
    return [(len(x) - 1 - i, a.padding[2 * i], a.padding[2 * i + 1]) for i in range(n)]


def pad_rule(n: int, mode: str):
    def rule(a, x):
        if mode == "constant":  # F.pad's constant mode pads the last n dims of any input that has them
            if len(x) < n:
                raise ShapeProblem(f"expects an input of at least {n} dims (it pads the last {n}), got {len(x)}-d "
                                   f"{shape_str(x)}")
        else:
            need_rank(x, (n + 1, n + 2), "")
        out = list(x)
        for d, left, right in _padded(a, x, n):
            size = x[d].value
            if isinstance(size, int):
                why = PROBLEMS[mode](n, size, left, right)
                if why is None and size + left + right < 1:
                    why = f"that leaves {size + left + right} elements", "negative padding crops: leave at least one"
                if why is not None:
                    raise ShapeProblem(f"cannot pad ({left}, {right}) on dim {d} of size {size} in {shape_str(x)}: "
                                       f"{why[0]}", hint=why[1])
            out[d] = x[d] if left + right == 0 else Val(size + left + right)  # a kept size keeps its spelling
        return tuple(out)

    return rule


def pad_explain(n: int):
    def explain(a, x, out):
        names = "DHW"[-n:] if n > 1 else "L"
        plus = lambda v: f"+ {v}" if v >= 0 else f"- {-v}"  # a crop reads as a subtraction
        return [f"{names[n - 1 - i]}_out = {x[d].value} {plus(left)} {plus(right)} = {out[d].value}"
                for i, (d, left, right) in enumerate(_padded(a, x, n))][::-1]

    return explain


# class prefix: F.pad's mode, what it pads with, the dtypes its kernels take
KINDS = {
    "Zero": ("constant", "zeros around the input", ANY_DTYPE),
    "Constant": ("constant", "value around the input", ANY_DTYPE),
    "Reflection": ("reflect", "the input mirrored at its edges", NUMERIC),
    "Replication": ("replicate", "the input's edge values repeated", NUMERIC),
    "Circular": ("circular", "the input wrapped around", ANY_DTYPE),
}


def _pad(kind: str, n: int) -> Layer:
    mode, what, dtypes = KINDS[kind]
    args = (Arg("padding", pad_sizes(kind, n)),) + ((Arg("value", FLOAT),) if kind == "Constant" else ())
    return Layer(
        f"{kind}Pad{n}d",
        args,
        pad_rule(n, mode),
        f"{n}-d {kind.lower()} padding: {what}",
        ranks=None if mode == "constant" else (n + 1, n + 2),
        family="pad",
        explain=pad_explain(n),
        dtypes=dtypes,
        rearranges=kind != "Constant",  # zeros stay inside an index range; another value need not
    )


LAYERS = [_pad(kind, n) for kind in KINDS for n in (1, 2, 3)]
