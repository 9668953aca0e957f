"""The values elaboration works with, and how they are spelled in code.

`Recipe` (a module expression not yet built), `Instance` (a built module),
`ChildSlot`, `TensorVal`/`TupleVal` (tensors in forward with their code),
`ModRef`, `ParamRef`, and `Scope`: one class being generated.
"""

from __future__ import annotations

import json

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    Span,
)
from .model import ClassDef, ForwardLine, ModuleNode, TensorInfo
from .shapes import InputSlot, Sym, Val

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# Names the generated code relies on; a spec may not rebind them.
RESERVED = {"self", "torch", "nn", "F", "super", "range", "len", "print", "int", "float", "str", "tuple", "list",
            "dict", "isinstance", "type", "object", "None", "True", "False", "in_shape"}
DTYPES = {"Float": "float", "Long": "long", "Int": "long", "Bool": "bool", None: "float"}


@dataclass
class Limits:
    """Bounds that keep a spec from exhausting the machine (checked before any tensor exists)."""

    max_params: int = 1_000_000_000  # parameters and raw buffers: 4 GB of float32 (--max-params to change)
    max_modules: int = 100_000  # modules built, containers and their elements included
    max_depth: int = 32  # blocks inside blocks; far deeper nears Python's recursion limit
    max_unroll: int = 10_000  # loop passes in all: comprehensions, range(...), for loops in forward


# ---------------------------------------------------------------- values
@dataclass
class Recipe:
    """A module expression, evaluated except for ``_``: built when first called."""

    kind: str  # layer | block | sequential | modulelist | moduledict
    span: Span
    name: str  # Conv2d / BasicBlock / Sequential
    args: list = field(default_factory=list)  # Val | INFER
    kwargs: dict = field(default_factory=dict)
    arg_spans: list = field(default_factory=list)
    kw_spans: dict = field(default_factory=dict)
    items: list = field(default_factory=list)  # containers: Recipes
    keys: list = field(default_factory=list)  # ModuleDict keys
    block: Any = None  # ir.Block


@dataclass
class Instance:
    """A built module: its node in the tree, its constructor code, its rule."""

    node: ModuleNode
    code: str
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
    cond_code: str | None = None
    instance: Instance | None = None
    hypothetical: Instance | None = None  # built while absent, to print the class's other branch


@dataclass
class TensorVal:
    info: TensorInfo
    code: str
    prec: int = 14
    src: int | None = None  # the dataflow step that made it


@dataclass
class TupleVal:
    items: list
    code: str
    prec: int = 14
    src: int | None = None


@dataclass
class ModRef:
    """A module usable in forward: a child, a container element, a loop variable."""

    slot: ChildSlot | None
    instance: Instance | None
    code: str
    path: str


@dataclass
class ParamRef:
    name: str
    info: TensorInfo


@dataclass
class CtorParam:
    name: str
    default: str | None
    inferred: bool
    slot: InputSlot | None = None
    value: Any = None


class Scope:
    """One class being generated: the model, or one instance of a block."""

    def __init__(self, kind: str, name: str, path: str, env: dict, span: Span, depth: int):
        self.kind, self.name, self.path, self.env, self.span, self.depth = kind, name, path, env, span, depth
        self.ctor: list[CtorParam] = []
        self.children: dict[str, ChildSlot] = {}
        self.raw: list[tuple[str, str, TensorInfo, str, bool]] = []  # (kind, name, info, init code, trainable)
        self.lines: list[ForwardLine] = []
        self.indent = 2
        self.tmp = 0
        self.locals: set[str] = set()
        self.flow: list = []  # FlowNodes of forward, for diagrams
        self.order: list[str] = []  # children, params and buffers as the spec defines them
        self.fwd_attrs: set[str] = set()  # __init__ values forward reads, kept as self.<name>
        self.param_flow: dict[str, int] = {}

    def step(self, kind: str, label: str, inputs=(), shapes=(), path: str | None = None) -> int:
        """Record a dataflow step and return its id."""
        from .model import FlowNode

        node = FlowNode(len(self.flow), kind, label, [i for i in inputs if i is not None], list(shapes), path)
        self.flow.append(node)
        return node.id

    def new_ctor_param(self, name: str, slot: InputSlot | None = None, value=None) -> str:
        taken = {p.name for p in self.ctor} | set(self.env) | self.locals
        base, n = name, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        inferred = [p for p in self.ctor if p.inferred]
        self.ctor.insert(len(inferred), CtorParam(name, None, True, slot, value))
        return name

    def emit(self, code: str, shapes=()):
        self.lines.append(ForwardLine(self.indent, code, list(shapes)))


# ---------------------------------------------------------------- code helpers
def literal(v) -> str:
    """A Python literal for a compile-time value (strings via repr: always inert)."""
    if isinstance(v, Val):
        return v.code if v.code is not None else literal(v.value)
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return f"float({str(v)!r})"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a double-quoted literal, escapes included: always inert
    if isinstance(v, tuple):
        inner = ", ".join(literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, Sym):
        return str(v)
    raise TypeError(f"no literal for {v!r}")


def _code(v: Val) -> str:
    return v.code if v.code is not None else literal(v.value)


def _wrap(code: str, prec: int, need: int) -> str:
    return f"({code})" if prec < need else code


_LABEL_VERBS = {"expects", "needs", "can", "cannot", "takes", "has", "got", "is", "would", "must"}


def _labelled(label: str, msg: str) -> str:
    """`label msg` where msg reads on from the label ("expects ..."), else `label: msg`."""
    return f"{label} {msg}" if msg.split(" ", 1)[0] in _LABEL_VERBS else f"{label}: {msg}"


BIN_PREC = {"+": 10, "-": 10, "*": 11, "/": 11, "//": 11, "%": 11, "@": 11, "**": 13}


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
