"""How much work a spec asks for, at the least, read off its surface IR before any of it is done.

Elaboration counts its steps as it goes (`values.Elaboration.step`), which
bounds any spec, but only once the work is being done: blocks nested six
deep with nine children each ask for 59,049 layers, and reach the step limit
only after many seconds. `work_floor` counts, from the IR alone, what every
model child and every block instance inside it will certainly cost: one
module built and one step for each module a child that is not conditional
makes, one step for the child's definition and one for each statement of a
forward, and the passes of its loops. A repeat (a comprehension, a loop in
forward) whose count is a literal, a const, or a block argument that is one
counts each pass; one whose count it cannot know counts none. A block's
floor is counted once for each distinct set of such arguments and reused, so
this takes time in the size of the text, not of the model; and the floor is
never more than the real count: a spec refused for its floor would be
refused later, after the work, for its steps, modules or passes.
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
    """At least this many modules built, elaboration steps taken and loop passes run."""

    modules: int = 0
    steps: int = 0
    passes: int = 0

    def __add__(self, other: "Floor") -> "Floor":
        return Floor(self.modules + other.modules, self.steps + other.steps, self.passes + other.passes)

    def __mul__(self, times: int) -> "Floor":
        return Floor(self.modules * times, self.steps * times, self.passes * times)


def work_floor(body: list, blocks: dict[str, ir.Block], layers, consts: dict[str, int] | None = None,
               max_unroll: int | None = None, _memo: dict | None = None) -> list[tuple[ir.Child, Floor]]:
    """Each unconditional child of ``body`` (a model's or a block's) with the least it costs to build.

    ``blocks`` maps block names to their IR, ``layers`` is the catalog (any
    container of layer names), ``consts`` the file's integer consts; a single
    loop of more than ``max_unroll`` passes counts none (it is refused at its
    range).

    >>> from modelspec.parse import parse
    >>> spec = parse("block B(n) { a = Linear(4, 4)  s = Sequential(*[Linear(4, 4) for _ in range(n)]) "
    ...              "forward(x) { for i in range(3) { x = a(x) } return s(x) } } "
    ...              "model M(x: [N, 4]) { top = B(2)  forward(x) { return top(x) } }")
    >>> [(c.name, f) for c, f in work_floor(spec.models()[0].body, {b.name: b for b in spec.blocks()}, {"Linear"})]
    [('top', Floor(modules=5, steps=13, passes=5))]
    """
    consts = dict(consts or {})
    return _Floors(blocks, layers, consts, _memo if _memo is not None else {}, max_unroll).children(body, consts)


class _Floors:
    """The floors of module expressions and bodies, in an environment of the integers known there: the file's
    consts and the block parameters whose arguments (or defaults) are integer literals, or names of such. A
    repeat whose count is known counts its passes; any other counts none."""

    MAX_BINDINGS = 4096  # blocks floored under distinct arguments; past it, under unknown ones

    def __init__(self, blocks, layers, consts, memo, max_unroll=None):
        self.blocks, self.layers, self.consts, self.memo = blocks, layers, consts, memo
        self.max_unroll = max_unroll

    def children(self, body: list, env: dict) -> list[tuple[ir.Child, Floor]]:
        return [(item, Floor(0, 1) + self.module(item.value, env, body))
                for item in body if isinstance(item, ir.Child) and item.cond is None]

    def body(self, body: list, env: dict) -> Floor:
        """The least a body costs: its children, and each statement of its forward (loops' for each pass)."""
        total = sum((f for _, f in self.children(body, env)), Floor())
        for item in body:
            if isinstance(item, ir.Forward):
                total += self.statements(item.body, env, body)
        return total

    def statements(self, stmts: list, env: dict, body: list) -> Floor:
        total = Floor()
        for s in stmts:
            total += Floor(0, 1)
            if isinstance(s, ir.For):
                passes = self.passes(s.iter, env, body)
                if passes:
                    total += Floor(passes=passes) + self.statements(s.body, env, body) * passes
        return total

    def module(self, e, env: dict, body: list) -> Floor:
        """The least that building the module expression ``e`` costs: one module and one step for each module
        it certainly makes (a layer, a block and what is inside it, a container and its items)."""
        if not isinstance(e, ir.Call) or not isinstance(e.func, ir.Name):
            return Floor()
        name = e.func.id
        if name in self.blocks:
            return Floor(1, 1) + self.block(self.blocks[name], e, env)
        if name in ("Sequential", "ModuleList"):
            total = Floor(1, 1)
            for a in e.args:
                total += self.items(a.value if isinstance(a, ir.Starred) else a, env, body)
            return total
        if name in self.layers:
            return Floor(1, 1)
        return Floor()

    def items(self, e, env: dict, body: list) -> Floor:
        """A container's argument: a module, a list of them, or a comprehension of a known count."""
        if isinstance(e, ir.ListExpr):
            return sum((self.items(i, env, body) for i in e.items), Floor())
        if isinstance(e, ir.ListComp):
            passes = self.passes(e.iter, env, body)
            inner = {k: v for k, v in env.items() if k != e.var}
            return Floor(passes=passes) + self.module(e.element, inner, body) * passes if passes else Floor()
        return self.module(e, env, body)

    def block(self, block: ir.Block, call: ir.Call, env: dict) -> Floor:
        """A block's body under the arguments of ``call``: its parameters shadow the consts, known or not."""
        values = []
        for i, p in enumerate(block.params):
            arg = call.args[i] if i < len(call.args) and not any(
                isinstance(a, ir.Starred) for a in call.args[:i + 1]) else None
            arg = next((k.value for k in call.keywords if k.name == p.name), arg)
            values.append(self.integer(arg, env) if arg is not None else self.integer(p.default, self.consts))
        key = (block.name, tuple(values))
        if key not in self.memo and len(self.memo) >= self.MAX_BINDINGS:
            key = (block.name, (None,) * len(values))
        if key not in self.memo:
            inner = {k: v for k, v in self.consts.items() if k not in {p.name for p in block.params}}
            inner.update((p.name, v) for p, v in zip(block.params, key[1]) if v is not None)
            self.memo[key] = Floor()  # a block that uses itself is refused elsewhere; here it adds nothing more
            self.memo[key] = self.body(block.body, inner)
            if isinstance(block.value, ir.Call):  # `= Sequential(...)`: its modules are the block's own
                self.memo[key] += sum((self.items(a.value if isinstance(a, ir.Starred) else a, inner, [])
                                       for a in block.value.args), Floor())
        return self.memo[key]

    def passes(self, it, env: dict, body: list) -> int:
        """Passes of a loop or comprehension over ``it``, where they are known; else 0. A count past
        ``max_unroll`` counts 0 too: elaboration refuses it at its own range, a more telling place."""
        n = self._passes(it, env, body)
        return 0 if self.max_unroll is not None and n > self.max_unroll else n

    def _passes(self, it, env: dict, body: list) -> int:
        if isinstance(it, ir.ListExpr):
            return len(it.items)
        if isinstance(it, ir.Call) and isinstance(it.func, ir.Name) and it.func.id == "range" \
                and 1 <= len(it.args) <= 3 and not it.keywords:
            bounds = [self.integer(a, env) for a in it.args]
            if None not in bounds and (len(bounds) < 3 or bounds[2] != 0):
                start, stop, step = ([0] if len(bounds) == 1 else []) + bounds + ([1] if len(bounds) < 3 else [])
                return max(0, (stop - start + step - (1 if step > 0 else -1)) // step)  # len(range) past 2**63
        if isinstance(it, ir.Name) and it.id not in env:  # a ModuleList child of this body
            child = next((c for c in body if isinstance(c, ir.Child) and c.name == it.id and c.cond is None), None)
            if child is not None and isinstance(child.value, ir.Call) and isinstance(child.value.func, ir.Name) \
                    and child.value.func.id == "ModuleList" and len(child.value.args) == 1:
                items = child.value.args[0]
                if isinstance(items, ir.ListExpr):
                    return len(items.items)
                if isinstance(items, ir.ListComp):
                    return self.passes(items.iter, env, body)
        return 0

    def integer(self, e, env: dict) -> int | None:
        """The value of an integer literal, or of a name bound to one; None for anything else."""
        if isinstance(e, ir.Constant) and isinstance(e.value, int) and not isinstance(e.value, bool):
            return e.value
        if isinstance(e, ir.Name):
            return env.get(e.id)
        if isinstance(e, ir.UnaryOp) and e.op == "-" and (v := self.integer(e.operand, env)) is not None:
            return -v
        return None


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
    """The layers of ``nodes``, each as often as forward calls it (at least once); a container's place for a
    child it holds again (`ModuleNode.shared`) is that child, counted at its own row."""
    calls = Counter(step.path for n in nodes for step in n.flow or () if step.kind == "module")
    return [n for n in nodes if n.kind == "layer" and n.shared is None for _ in range(max(calls[n.path], 1))]


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
