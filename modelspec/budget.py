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

from dataclasses import dataclass

from . import ir


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
