"""The values elaboration works with, and the expressions that spell them.

`Recipe` (a module expression not yet built), `Instance` (a built module),
`ChildSlot`, `TensorVal`/`TupleVal` (tensors in forward with their
expression), `ModRef`, `ParamRef`, and `Scope`: one class being generated.
Expressions are `modelspec.expr` nodes; only codegen makes text of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import Span, SpecLimitError
from . import expr as E
from .model import ClassDef, CtorParam, Line, ModuleNode, TensorInfo
from .printer import source
from .shapes import InputSlot, Val, const_expr

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
DTYPES = {"Float": "float", "Long": "long", "Int": "long", "Bool": "bool", None: "float"}


@dataclass
class Limits:
    """Bounds that keep a spec from exhausting the machine (checked before any tensor exists)."""

    max_params: int = 1_000_000_000  # parameters and raw buffers: 4 GB of float32 (--max-params to change)
    max_modules: int = 10_000  # modules built, containers and their elements included (~6 kB, 0.1 ms each)
    max_depth: int = 32  # blocks inside blocks; far deeper nears Python's recursion limit
    max_unroll: int = 10_000  # loop passes in all: comprehensions, range(...), for loops in forward
    max_steps: int = 300_000  # elaboration steps in all: expressions evaluated, modules built, statements run
    max_expr_terms: int = 256  # terms in one symbolic size (a polynomial over the symbols, such as B * T + 1)
    max_activation_bytes: int = 8 << 30  # inputs and forward activations at the batch asked for (--max-activations)
    import_roots: tuple[str, ...] = ()  # folders imports may read besides the first file's own (--import-root)

    def __post_init__(self):
        if isinstance(self.import_roots, (str, os.PathLike)):
            self.import_roots = (self.import_roots,)
        self.import_roots = tuple(os.fspath(r) for r in self.import_roots)


# ---------------------------------------------------------------- values
@dataclass
class Recipe:
    """A module expression, evaluated except for ``_``: built when first called."""

    kind: str  # layer | block | sequential | modulelist | moduledict | shared (a child held again)
    span: Span
    name: str  # Conv2d / BasicBlock / Sequential
    args: list = field(default_factory=list)  # Val | INFER
    kwargs: dict = field(default_factory=dict)
    arg_spans: list = field(default_factory=list)
    kw_spans: dict = field(default_factory=dict)
    items: list = field(default_factory=list)  # containers: Recipes
    keys: list = field(default_factory=list)  # ModuleDict keys
    block: Any = None  # ir.Block
    repeat: Any = None  # containers made by one comprehension: the Val it ran over, `range(depth)`
    shared: Any = None  # kind "shared": the ChildSlot of the child a container holds again, the same module


@dataclass
class Instance:
    """A built module: its node in the tree, its constructor code, its rule."""

    node: ModuleNode
    expr: Any  # its constructor call in the parent's __init__
    recipe: Recipe
    bound: Any = None
    classdef: ClassDef | None = None
    call: Any = None  # (inputs) -> outputs, for calling again
    items: list = field(default_factory=list)  # container elements (Instances)


@dataclass
class ChildSlot:
    """A named child of a model or block."""

    name: str
    recipe: Recipe
    present: bool
    span: Span
    cond: Any = None  # the condition's expression, for a conditional child
    instance: Instance | None = None
    hypothetical: Instance | None = None  # built while absent, to print the class's other branch


@dataclass
class TensorVal:
    info: TensorInfo
    expr: Any
    src: int | None = None  # the dataflow step that made it


@dataclass
class TupleVal:
    items: list
    expr: Any
    src: int | None = None


@dataclass
class ListVal(TupleVal):
    """A list in forward: ``features = [x]``, grown by ``.append``. Its ``items`` list is shared by every name
    bound to it, as Python's list is, so ``ys = xs; ys.append(h)`` grows ``xs`` too."""


@dataclass
class ModuleView:
    """``blocks.items()``, ``.keys()`` or ``.values()`` of a ModuleDict, for a loop or a comprehension."""

    ref: "ModRef"
    what: str  # items | keys | values
    expr: Any


@dataclass(frozen=True)
class Mode:
    """A number that depends on ``self.training``: ``p if training else 0.0`` is ``Mode(p, 0.0)``. What it
    decides must come out the same either way (a shape does not change with the mode)."""

    train: Any
    eval: Any

    def pick(self, training: bool):
        return self.train if training else self.eval


@dataclass
class ModRef:
    """A module usable in forward: a child, a container element, a loop variable."""

    slot: ChildSlot | None
    instance: Instance | None
    expr: Any
    path: str
    index: int | None = None  # the element, for a ModuleList/ModuleDict element


@dataclass
class ParamRef:
    name: str
    info: TensorInfo


@dataclass
class Inferred(CtorParam):
    """A constructor parameter elaboration adds: a size the block takes from its input."""

    slot: InputSlot | None = None
    value: Any = None
    base: str = ""  # the name it was made from, before the namespace numbered it


class Scope:
    """One class being generated: the model, or one instance of a block."""

    def __init__(self, kind: str, name: str, path: str, env: dict, span: Span, depth: int, names: "Namespace"):
        self.kind, self.name, self.path, self.env, self.span, self.depth = kind, name, path, env, span, depth
        self.names = names  # what generated names must avoid
        self.extra_macs = 0  # mult-adds of forward's own operations (matmuls), beside its children's
        self.ctor: list[CtorParam] = []
        self.children: dict[str, ChildSlot] = {}
        self.raw: list[tuple[str, str, TensorInfo, Any, bool]] = []  # (kind, name, info, init expr, trainable)
        self.lines: list[Line] = []
        self.indent = 2
        self.locals: set[str] = set()
        self.flow: list = []  # FlowNodes of forward, for diagrams
        self.order: list[str] = []  # children, params and buffers as the spec defines them
        self.fwd_attrs: set[str] = set()  # __init__ values forward reads, kept as self.<name>
        self.param_flow: dict[str, int] = {}
        self.baked: set[str] = set()  # parameters whose values decided the class's structure (see bake)
        self.sequential = False  # no forward, every child unconditional: the class is an nn.Sequential
        self.super_init = None  # a block `= Sequential(...)`: the call `super().__init__(modules...)`
        self.tie_lines: list[Line] = []  # `self.lm_head.weight = self.wte.weight`, after every child is made
        self.temporaries: dict = {}  # (base, call site) -> the temporary forward made for it (`ln_out`)
        self.params: dict = {}  # a block's parameters -> their values (the Val each constructor argument is)
        self.inline: dict = {}  # call site (the span of `nn.ReLU()`) -> the child a module made in forward became
        self.body_children: dict = {}  # name -> span of every `name = ...` of the body, for a name used above it
        self.notes: list = []  # OpNotes of the statement being evaluated, until it is emitted

    def bake(self, value) -> None:
        """Note that ``value`` decided what this class's code is (a branch taken, a loop unrolled): the block
        parameters it reads are then fixed in the class, not taken by its constructor."""
        if self.kind == "block" and isinstance(value, Val) and value.expr is not None:
            self.baked |= E.params_in(value.expr, [p.name for p in self.ctor if not p.inferred])

    def step(self, kind: str, label: str, inputs=(), shapes=(), path: str | None = None) -> int:
        """Record a dataflow step and return its id."""
        from .model import FlowNode

        node = FlowNode(len(self.flow), kind, label, [i for i in inputs if i is not None], list(shapes), path)
        self.flow.append(node)
        return node.id

    def new_ctor_param(self, name: str, slot: InputSlot | None = None, value=None) -> str:
        for p in self.ctor:  # the same derived size, needed again: one parameter, not in_features2
            if isinstance(p, Inferred) and slot is None and p.slot is None and p.value == value and p.base == name:
                return p.name
        made = self.names.make(name, {p.name for p in self.ctor} | set(self.env) | self.locals)
        inferred = [p for p in self.ctor if p.inferred]
        self.ctor.insert(len(inferred), Inferred(made, None, True, slot, value, name))
        return made

    def emit(self, stmt, shapes=(), span=None):
        """Print ``stmt`` next, with the operations its expressions made since the last statement; ``span``:
        the spec's statement it stands for (what an editor's hover finds a value's shapes by)."""
        self.lines.append(Line(self.indent, stmt, list(shapes), notes=self.notes, span=span))
        self.notes = []

    def note(self, note) -> None:
        """Record an operation of the statement being evaluated, for --explain (an `OpNote`; None: nothing)."""
        if note is not None:
            self.notes.append(note)


@dataclass
class Elaboration:
    """What the stages of one elaboration share: the spec, its limits and everything made so far.

    `StaticEvaluator`, `ModuleBuilder`, `ForwardEvaluator` and the `Elaborator`
    that drives them each hold this one object (and each other), rather than
    sharing ``self`` as mixins would.
    """

    spec: Any
    limits: Limits
    names: "Namespace"
    blocks: dict = field(default_factory=dict)  # name -> ir.Block, imported ones included
    consts: dict = field(default_factory=dict)  # name -> Val
    const_order: list = field(default_factory=list)  # (name, expression) of the consts the code defines
    classes: list = field(default_factory=list)  # ClassDefs, blocks before the classes that use them
    class_keys: dict = field(default_factory=dict)  # (block, structure key) -> the ClassDef that prints it
    class_names: set = field(default_factory=set)
    block_stack: list = field(default_factory=list)  # the blocks being built, outermost first
    module_count: int = 0  # against limits.max_modules
    unrolled: int = 0  # loop passes so far, against limits.max_unroll
    total_params: int = 0  # parameters and buffer elements, against limits.max_params
    symbols: dict = field(default_factory=dict)  # symbolic dims and their example sizes (None: none given)
    batch_symbols: set = field(default_factory=set)  # the first input's leading symbol: the batch, sized 1, 2, 3
    index_bounds: dict = field(default_factory=dict)  # input name -> exclusive bound of its values (Embedding)
    index_reads: int = 0  # tensors read as indices so far (an Embedding, F.embedding, gather, index_select)
    block_sources: dict = field(default_factory=dict)  # imported blocks: (path, text) where their errors point
    built: list = field(default_factory=list)  # every module made so far, parents first (see instantiate)
    views: int = 0  # `view` calls checked so far: a block whose body has none takes input in any memory order
    building_aside: int = 0  # > 0 while building what is no row of the tree (a module argument, an absent child)
    steps: int = 0  # expressions evaluated and modules built so far, against limits.max_steps
    warnings: list = field(default_factory=list)  # SpecWarnings, each once, in the order found
    unregistered: list = field(default_factory=list)  # (name, span) of plain tensor attributes, which stay put
    used_children: set = field(default_factory=set)  # (span, name) of children some instance calls
    unused_children: dict = field(default_factory=dict)  # (span, name) -> (slot, scope) of one that does not

    def warn(self, name: str, message: str, span, hint: str, where: tuple | None = None) -> None:
        """Note a warning (modelspec.errors.WARNINGS names them) at ``span``: once, however often a block
        instance or a loop pass meets it again; inside an imported block it points into that block's file."""
        from .errors import SpecWarning

        if self.building_aside:
            return  # an absent child, or a module built only to print its class: nothing the model runs
        w = SpecWarning(message, span, name=name, hint=hint)
        where = where or self.imported_block()
        if where is not None:
            w.locate(*where)
        key = (name, message, str(span), w.path)
        if all((x.name, x.message, str(x.span), x.path) != key for x in self.warnings):
            self.warnings.append(w)

    def imported_block(self) -> tuple | None:
        """(path, text) of the file of the block being built, when it is an imported one."""
        if self.block_stack and self.block_stack[-1] in self.block_sources:
            return self.block_sources[self.block_stack[-1]]
        return None

    def step(self, span) -> None:
        """Count one step of work (an expression evaluated, a module built): a small spec cannot ask for
        unbounded work, such as blocks nested six deep with nine children each (59,049 layers)."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise SpecLimitError(f"checking this spec takes more than {self.limits.max_steps:,} steps "
                                 f"(expressions evaluated and modules built)", span,
                                 hint="it unrolls into too much: use fewer or shallower repeats and nested "
                                      "blocks; or pass limits=Limits(max_steps=...) if intended")


class Namespace:
    """Names the generated code makes up (``in_channels``, ``d_out``, ``Stage_2``), kept apart from the spec's.

    ``taken`` holds every identifier the spec itself writes anywhere, and the
    names the generated code relies on, so a made-up name can never hide or
    be hidden by one of them (as torch.fx's ``_Namespace`` does).
    """

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def make(self, base: str, local: set[str] = frozenset(), sep: str = "") -> str:
        name, n = base, 2
        while name in self.taken or name in local:
            name, n = f"{base}{sep}{n}", n + 1
        return name


# ---------------------------------------------------------------- expression helpers
def literal(v) -> str:
    """A compile-time value as Python spells it, for messages (strings escaped: always inert)."""
    return source(const_expr(v))


def expr_of(v):
    """The expression of a value: its own, or its literal."""
    if isinstance(v, Val):
        return v.expr if v.expr is not None else const_expr(v.value)
    if isinstance(v, (TensorVal, TupleVal, ModRef, ModuleView)):
        return v.expr
    return const_expr(v)


_LABEL_VERBS = {"expects", "needs", "can", "cannot", "takes", "has", "got", "is", "would", "must"}


def _labelled(label: str, msg: str) -> str:
    """`label msg` where msg reads on from the label ("expects ..."), else `label: msg`."""
    return f"{label} {msg}" if msg.split(" ", 1)[0] in _LABEL_VERBS else f"{label}: {msg}"


def _py_binop(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "**":
        return a**b
    raise TypeError(op)


# ---------------------------------------------------------------- the elaborator

def _real(scope):
    return getattr(scope, "_scope", scope)


class _PathScope:
    """A scope seen from inside a container: same class, deeper paths."""

    def __init__(self, scope, path):
        self._scope, self.path = scope, path

    def __getattr__(self, name):
        return getattr(self._scope, name)

    @property
    def kind(self):
        return self._scope.kind

    def new_ctor_param(self, *a, **k):
        return self._scope.new_ctor_param(*a, **k)


DIM_NAMES = {"normalized_shape": "num_features", "in1_features": "in1_features", "in2_features": "in2_features"}
