"""How much work a spec asks for, at the least, read off its surface IR before any of it is done.

Elaboration counts its steps as it goes (`values.Elaboration.step`), which
bounds any spec, but only once the work is being done: blocks nested six
deep with nine children each ask for 59,049 layers, and reach the step limit
only after many seconds. `work_floor` counts, from the IR alone, what every
model child and every block instance inside it will certainly cost: one
module built and one step for each module a child that is not conditional
makes, one step for the child's definition and one for each statement of a
forward. A block's floor is counted once and reused,
so this takes time in the size of the text, not of the model. Repeats
(comprehensions, containers, loops) count as nothing, so the floor is never
more than the real count: a spec refused for its floor would be refused
later, after the work, for its steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from . import ir
from .model import ModuleNode, TensorInfo
from .shapes import Sym, Val, evaluate

ELEMENT_BYTES = {"float": 4, "long": 8, "bool": 1}  # modelspec builds float32 modules


@dataclass(frozen=True)
class Floor:
    """At least this many modules built and elaboration steps taken."""

    modules: int = 0
    steps: int = 0

    def __add__(self, other: "Floor") -> "Floor":
        return Floor(self.modules + other.modules, self.steps + other.steps)


def work_floor(body: list, blocks: dict[str, ir.Block], layers,
               _memo: dict | None = None) -> list[tuple[ir.Child, Floor]]:
    """Each unconditional child of ``body`` (a model's or a block's) with the least it costs to build.

    ``blocks`` maps block names to their IR, ``layers`` is the catalog (any
    container of layer names).

    >>> from modelspec.parse import parse
    >>> spec = parse("block B() { a = Linear(4, 4)  b = Linear(4, 4)  forward(x) { return b(a(x)) } } "
    ...              "model M(x: [N, 4]) { top = B()  forward(x) { return top(x) } }")
    >>> [(c.name, f) for c, f in work_floor(spec.models()[0].body, {b.name: b for b in spec.blocks()}, {"Linear"})]
    [('top', Floor(modules=3, steps=7))]
    """
    memo = {} if _memo is None else _memo
    out = []
    for item in body:
        if isinstance(item, ir.Child) and item.cond is None:
            out.append((item, Floor(0, 1) + _module_floor(item.value, blocks, layers, memo)))
    return out


def body_floor(body: list, blocks, layers, memo) -> Floor:
    """The least a body costs: its children, and one step for each statement of its forward."""
    total = Floor()
    for item in body:
        if isinstance(item, ir.Forward):
            total += Floor(0, len(item.body))
    for _, f in work_floor(body, blocks, layers, memo):
        total += f
    return total


def _module_floor(e, blocks, layers, memo) -> Floor:
    """The least that building the module expression ``e`` costs: one module and one step for each module
    it certainly makes (a layer, a block and what is inside it, a Sequential and its items)."""
    if not isinstance(e, ir.Call) or not isinstance(e.func, ir.Name):
        return Floor()
    name = e.func.id
    if name in blocks:
        if name not in memo:
            memo[name] = Floor()  # a block that uses itself is refused elsewhere; here it adds nothing more
            memo[name] = body_floor(blocks[name].body, blocks, layers, memo)
        return Floor(1, 1) + memo[name]
    if name == "Sequential":
        total = Floor(1, 1)
        for a in e.args:
            total += _module_floor(a, blocks, layers, memo)
        return total
    if name in layers:
        return Floor(1, 1)
    return Floor()


# ---------------------------------------------------------------------------------------------- memory
def size_at(v, sizes) -> int | None:
    """A dim or count at the given symbol sizes; None when it cannot be evaluated."""
    if isinstance(v, Val):
        v = v.value
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, Sym):
        try:
            return evaluate(v, sizes)
        except (KeyError, ZeroDivisionError, TypeError):
            return None
    return None


def total(values) -> int | None:
    """The sum, or None when any value is unknown."""
    out = 0
    for v in values:
        if v is None:
            return None
        out += v
    return out


def tensor_bytes(t: TensorInfo, sizes) -> int | None:
    return shape_bytes(t.shape, sizes, ELEMENT_BYTES.get(t.dtype, 4))


def shape_bytes(shape, sizes, element: int = 4) -> int | None:
    n = element
    for d in shape:
        d = size_at(d, sizes)
        if d is None:
            return None
        n *= d
    return n


def runs(nodes: list[ModuleNode]) -> dict[str, int]:
    """How often each module runs in one forward: its own repeats times those of every module around it."""
    repeats = {n.path: n.repeats for n in nodes}
    out = {}
    for n in nodes:
        times, prefix = 1, ""
        for part in n.path.split(".") if n.path else []:
            prefix = f"{prefix}.{part}" if prefix else part
            times *= repeats.get(prefix, 1)
        out[n.path] = times
    return out


def layer_calls(nodes: list[ModuleNode]) -> list[ModuleNode]:
    """The layers of ``nodes``, each as often as forward calls it (at least once)."""
    calls = Counter(step.path for n in nodes for step in n.flow or () if step.kind == "module")
    return [n for n in nodes if n.kind == "layer" for _ in range(max(calls[n.path], 1))]


def forward_memory(inputs: list[TensorInfo], nodes: list[ModuleNode], sizes) -> tuple[int | None, int | None]:
    """(bytes of the inputs, bytes of the forward activations) at ``sizes``: every output of every call of
    every layer, which training keeps for backward (what torch's forward hooks see). None where a size is
    unknown."""
    return (total(tensor_bytes(t, sizes) for t in inputs),
            total(tensor_bytes(t, sizes) for n in layer_calls(nodes) for t in n.outputs))


def operation_bytes(nodes: list[ModuleNode], sizes) -> int | None:
    """Bytes of the outputs of the tensor operations in every forward (as float32), each as often as its
    forward runs: memory a forward needs besides its layers' outputs."""
    times = runs(nodes)
    return total(None if (b := shape_bytes(s, sizes)) is None else b * times[n.path]
                 for n in nodes for step in n.flow or () if step.kind == "op" for s in step.shapes)


def check_memory(inputs: list[TensorInfo], nodes: list[ModuleNode], sizes: dict, limit: int, span,
                 at: str) -> None:
    """Refuse, before anything is allocated, a forward whose inputs and activations at ``sizes`` take more
    than ``limit`` bytes; the error points at the layer with the largest output (or at ``span``)."""
    from .errors import SpecLimitError

    inp, layers = forward_memory(inputs, nodes, sizes)
    ops = operation_bytes(nodes, sizes)
    if inp is None or layers is None or ops is None or inp + layers + ops <= limit:
        return
    act = layers + ops
    biggest = max(layer_calls(nodes), key=lambda n: total(tensor_bytes(t, sizes) for t in n.outputs) or 0,
                  default=None)
    where = biggest.span if biggest is not None and act > inp else span
    raise SpecLimitError(
        f"{at}, the inputs ({human_bytes(inp)}) and forward activations ({human_bytes(act)}: the outputs of "
        f"its layers and tensor operations) take "
        f"{human_bytes(inp + act)}, over the limit of {human_bytes(limit)}", where,
        hint="use smaller sizes or a smaller batch; or raise the limit: --max-activations 32e9 on the command "
             "line, limits=Limits(max_activation_bytes=...) in Python")


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown (a size is symbolic)"
    for unit, scale in (("GB", 10 ** 9), ("MB", 10 ** 6), ("kB", 10 ** 3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"
