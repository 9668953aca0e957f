"""Surface IR -> model graph: bind names, unroll, infer shapes, fill ``_``.

Elaboration interprets a model the way PyTorch would run it, but on shapes:
children are recipes until ``forward`` first calls them, and then they are
built for the shape they receive (that is where ``_`` gets its value). Each
model and each block instance is a `Scope`: one class to generate. Every
value carries the code that spells it inside that class, so the generated
``__init__`` says ``nn.BatchNorm2d(planes)`` where the spec says
``BatchNorm2d(_)`` after ``Conv2d(_, planes, 3)``.

`elaborate(spec, model=None) -> ModelGraph` is the entry point.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field
from typing import Any

from . import ir
from .errors import (
    SpecArgError, SpecError, SpecLimitError, SpecNameError, SpecShapeError, Span, did_you_mean,
)
from .layers import CATALOG
from .layers.base import INFER, ArgError, InferMismatch, ShapeProblem, bind
from .model import ClassDef, ForwardLine, ModelGraph, ModuleNode, TensorInfo
from .ops import OPS, apply_op, broadcast, matmul_macs, matmul_rule
from .shapes import InputSlot, Sym, Val, is_dim, shape_str

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# Names the generated code relies on; a spec may not rebind them.
RESERVED = {"self", "torch", "nn", "F", "super", "range", "len", "print", "int", "float", "str", "tuple", "list",
            "dict", "isinstance", "type", "object", "None", "True", "False", "in_shape"}
DTYPES = {"Float": "float", "Long": "long", "Int": "long", "Bool": "bool", None: "float"}


@dataclass
class Limits:
    """Bounds that keep a spec from exhausting the machine (checked before any tensor exists)."""

    max_params: int = 2_000_000_000
    max_modules: int = 100_000
    max_depth: int = 64
    max_unroll: int = 10_000


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


@dataclass
class TupleVal:
    items: list
    code: str
    prec: int = 14


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
        return repr(v)
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
class Elaborator:
    def __init__(self, spec: ir.SpecFile, limits: Limits | None = None, modules: dict | None = None):
        self.spec = spec
        self.limits = limits or Limits()
        self.blocks: dict[str, ir.Block] = {}
        self.consts: dict[str, Val] = {}
        self.const_order: list[tuple[str, str]] = []
        self.classes: list[ClassDef] = []
        self.class_keys: dict[tuple, ClassDef] = {}
        self.class_names: set[str] = set()
        self.block_stack: list[str] = []
        self.module_count = 0
        self.total_params = 0
        self.symbols: dict[str, int | None] = {}
        self.index_bounds: dict[str, int] = {}
        self.tmp_counter = 0
        for item in (modules or {}).get("blocks", {}).values():
            self.blocks[item.name] = item
        for name, val in (modules or {}).get("consts", {}).items():
            self.consts[name] = val
        self._collect()

    # -- top level ------------------------------------------------------------
    def _collect(self):
        seen: dict[str, Span] = {}
        for item in self.spec.items:
            if isinstance(item, ir.Import):
                from .errors import SpecImportError

                raise SpecImportError("imports of other spec files are not supported yet", item.span,
                                      hint="copy the blocks you need into this file for now")
            self._check_name(item.name, item.span, "a " + item.kind)
            if item.name in seen:
                raise SpecNameError(
                    f"{item.name!r} is defined twice (first at line {seen[item.name].line})", item.span
                )
            seen[item.name] = item.span
            if item.name in CATALOG or item.name in CONTAINERS:
                raise SpecNameError(
                    f"{item.kind} {item.name!r} would shadow the layer nn.{item.name}", item.span,
                    hint=f"rename it, e.g. My{item.name}",
                )
            if isinstance(item, ir.Block):
                names = set()
                for p in item.params:
                    self._check_name(p.name, p.span, "a block parameter")
                    if p.name in names:
                        raise SpecNameError(f"block {item.name} has two parameters named {p.name!r}", p.span,
                                            hint="rename one of them")
                    names.add(p.name)
                self.blocks[item.name] = item
            elif isinstance(item, ir.Const):
                val = self.eval_static(item.value, Scope("model", "", "", {}, item.span, 0), {})
                if isinstance(val, Val) and not isinstance(val.value, Sym):
                    self.consts[item.name] = Val(val.value, item.name)
                    self.const_order.append((item.name, literal(val.value)))
                else:
                    raise SpecArgError(f"const {item.name!r} must be a number, string, bool or tuple", item.value.span)

    def _check_name(self, name: str, span: Span, what: str):
        if name.startswith("__") or keyword.iskeyword(name) or name in RESERVED:
            raise SpecNameError(
                f"{name!r} cannot name {what}: it is reserved in the generated Python code", span,
                hint="choose another name",
            )

    def model(self, name: str | None) -> ModelGraph:
        models = self.spec.models()
        if not models:
            raise SpecError("the spec defines no model", None, hint="add `model Name(x: [B, ...]) { ... }`")
        if name is None:
            m = models[-1] if len(models) == 1 else None
            if m is None:
                names = ", ".join(x.name for x in models)
                raise SpecError(f"the spec defines several models ({names}); choose one", None,
                                hint="pass model=... (or --model on the command line)")
        else:
            m = next((x for x in models if x.name == name), None)
            if m is None:
                raise SpecNameError(f"no model named {name!r}", None,
                                    hint=did_you_mean(name, [x.name for x in models]))
        return self.elaborate_model(m)

    def elaborate_model(self, m: ir.Model) -> ModelGraph:
        scope = Scope("model", m.name, "", {}, m.span, 0)
        inputs: list[tuple[str, TensorInfo]] = []
        seen = set()
        for inp in m.inputs:
            self._check_name(inp.name, inp.span, "an input")
            if inp.name in seen:
                raise SpecNameError(f"input {inp.name!r} is declared twice", inp.span)
            seen.add(inp.name)
            info = self.tensor_type(inp.type, scope, declare=True)
            inputs.append((inp.name, info))
        root = ModuleNode(m.name, "", m.name, "model", m.span)
        outs = self.run_scope(scope, m.body, inputs, root, m.span, m.inputs)
        self.finish_class(scope, root, m.span)
        root.outputs = outs
        _set_depths(root, 0)
        return ModelGraph(
            name=m.name, root=root, classes=self.classes, inputs=inputs, outputs=outs,
            consts=self.const_order, symbols=self.symbols, path=self.spec.path, index_bounds=self.index_bounds,
        )

    def tensor_type(self, t: ir.TensorType, scope: Scope, declare: bool) -> TensorInfo:
        if t.dtype not in DTYPES:
            raise SpecArgError(f"unknown dtype {t.dtype!r}", t.span, hint="use Float[...], Long[...] or Bool[...]")
        dims = []
        for i, d in enumerate(t.dims):
            if isinstance(d, ir.SymDim):
                self.symbols.setdefault(d.name, d.example)
                dims.append(Val(Sym.var(d.name)))
                continue
            if isinstance(d, ir.Name) and d.id not in scope.env and d.id not in self.consts:
                if not declare:
                    raise SpecNameError(f"undefined name {d.id!r} in a shape", d.span)
                self.symbols.setdefault(d.id, None)
                dims.append(Val(Sym.var(d.id)))
                continue
            v = self.eval_static(d, scope, scope.env)
            if not isinstance(v, Val) or not is_dim(v.value) or (isinstance(v.value, int) and v.value < 1):
                raise SpecArgError(f"a dimension must be a positive integer or a name, not {literal(v)}", d.span)
            dims.append(v)
        return TensorInfo(tuple(dims), DTYPES[t.dtype])

    # -- bodies -----------------------------------------------------------------
    def run_scope(self, scope: Scope, body: list, inputs, node: ModuleNode, span: Span, input_decls=None):
        """Evaluate a body: children, params, then forward on the inputs."""
        forward = None
        for stmt in body:
            if isinstance(stmt, ir.Forward):
                if forward is not None:
                    raise SpecNameError("a second forward in the same body", stmt.span)
                forward = stmt
                continue
            self._check_name(stmt.name, stmt.span, "a child")
            if stmt.name in scope.env and not (isinstance(stmt, ir.Child) and isinstance(scope.env[stmt.name], Val)
                                               and stmt.name not in scope.children):
                raise SpecNameError(f"{stmt.name!r} is defined twice in {scope.name}", stmt.span)
            if isinstance(stmt, ir.Child):
                self.child_def(stmt, scope)
            else:
                self.raw_def(stmt, scope)
        # forward
        if forward is not None:
            params = forward.params
            if len(params) != len(inputs):
                where = forward.span
                raise SpecArgError(
                    f"forward takes {len(params)} input{'s' if len(params) != 1 else ''} "
                    f"but {scope.name} receives {len(inputs)}", where,
                    hint=f"name each model input: forward({', '.join(n for n, _ in inputs)})"
                    if input_decls is not None else "give forward one name per tensor the block is called with",
                )
            for p in params:
                self._check_name(p, forward.span, "a forward input")
        else:
            params = [n for n, _ in inputs] if input_decls is not None else ["x"] * len(inputs)
        env = dict(scope.env)
        fwd_params = []
        for p, (_, info) in zip(params, inputs):
            env[p] = TensorVal(info, p)
            scope.locals.add(p)
            fwd_params.append(p)
        scope.forward_params = fwd_params
        if forward is not None:
            outs = self.run_forward(forward.body, scope, env, forward.span)
        else:
            outs = self.implicit_forward(scope, env, fwd_params, span)
        node.macs = getattr(scope, "extra_macs", 0)
        # children never called: build those that need no input shape
        for slot in scope.children.values():
            if slot.instance is None and slot.present:
                if self.recipe_needs_input(slot.recipe):
                    raise SpecShapeError(
                        f"child {slot.name!r} is never called in forward, so the input shape its `_` "
                        f"arguments need is unknown", slot.span, hint="call it in forward, or give every argument",
                    )
                slot.instance = self.instantiate(slot.recipe, None, scope, slot.name)
        node.children = [s.instance.node for s in scope.children.values() if s.instance is not None]
        node.params = sum(self._raw_numel(r) for r in scope.raw if r[0] == "param")
        node.trainable = node.params
        node.buffers = sum(self._raw_numel(r) for r in scope.raw if r[0] == "buffer")
        return outs

    @staticmethod
    def _raw_numel(r) -> int:
        n = 1
        for d in r[2].shape:
            n *= d.value
        return n

    def child_def(self, stmt: ir.Child, scope: Scope):
        present, cond_code = True, None
        if stmt.cond is not None:
            c = self.eval_static(stmt.cond, scope, scope.env)
            if not isinstance(c, Val) or not isinstance(c.value, bool):
                raise SpecArgError("a child's condition must be True or False", stmt.cond.span)
            present, cond_code = c.value, _code(c)
        value = self.eval_static(stmt.value, scope, scope.env, allow_modules=True)
        if isinstance(value, Recipe):
            slot = ChildSlot(stmt.name, value, present, stmt.span, cond_code)
            scope.children[stmt.name] = slot
            scope.env[stmt.name] = slot
        elif stmt.cond is not None:
            raise SpecArgError("only a module can be conditional", stmt.cond.span)
        else:
            # a local compile-time value: `width = planes * 4`
            scope.env[stmt.name] = Val(value.value, stmt.name)
            scope.raw.append(("const", stmt.name, None, _code(value) if value.code else literal(value.value), False))

    def raw_def(self, stmt, scope: Scope):
        info = self.tensor_type(stmt.type, scope, declare=False)
        for d in info.shape:
            if isinstance(d.value, Sym):
                raise SpecShapeError(f"{stmt.kind} {stmt.name!r} needs a fixed shape, not {shape_str(info.shape)}",
                                     stmt.type.span)
        dims = ", ".join(_code(d) for d in info.shape)
        init = self.init_code(stmt.init, dims, info, stmt, scope)
        is_param = isinstance(stmt, ir.Param)
        scope.raw.append(("param" if is_param else "buffer", stmt.name, info, init, is_param))
        scope.env[stmt.name] = ParamRef(stmt.name, info)
        self.count_params(self._raw_numel(("", "", info)) if is_param else 0, stmt.span)

    INITS = {
        "zeros": ("torch.zeros({dims})", ()),
        "ones": ("torch.ones({dims})", ()),
        "randn": ("torch.randn({dims})", ()),
        "rand": ("torch.rand({dims})", ()),
        "empty": ("torch.empty({dims})", ()),
        "constant": ("torch.full(({dims},), {0})", ("value",)),
        "normal": ("nn.init.normal_(torch.empty({dims}), {0}, {1})", ("mean", "std")),
        "uniform": ("nn.init.uniform_(torch.empty({dims}), {0}, {1})", ("a", "b")),
        "xavier_uniform": ("nn.init.xavier_uniform_(torch.empty({dims}))", ()),
        "xavier_normal": ("nn.init.xavier_normal_(torch.empty({dims}))", ()),
        "kaiming_uniform": ("nn.init.kaiming_uniform_(torch.empty({dims}), nonlinearity='relu')", ()),
        "kaiming_normal": ("nn.init.kaiming_normal_(torch.empty({dims}), nonlinearity='relu')", ()),
    }

    def init_code(self, init, dims: str, info: TensorInfo, stmt, scope: Scope) -> str:
        name, args = "zeros", []
        if init is None:
            name = "zeros"
        elif isinstance(init, ir.Name):
            name = init.id
        elif isinstance(init, ir.Call) and isinstance(init.func, ir.Name):
            name = init.func.id
            args = [self.eval_static(a, scope, scope.env) for a in init.args]
        else:
            raise SpecArgError("an init is a name such as randn, or a call such as normal(0, 0.02)", init.span)
        if name not in self.INITS:
            raise SpecNameError(f"unknown init {name!r}", init.span,
                                hint=did_you_mean(name, self.INITS) or "inits: " + ", ".join(self.INITS))
        template, want = self.INITS[name]
        if len(args) != len(want):
            raise SpecArgError(f"init {name} takes {len(want)} argument{'s' if len(want) != 1 else ''}"
                               f"{' (' + ', '.join(want) + ')' if want else ''}, got {len(args)}", init.span)
        for a, w in zip(args, want):
            if not isinstance(a, Val) or isinstance(a.value, bool) or not isinstance(a.value, (int, float)):
                raise SpecArgError(f"init {name}: {w} must be a number", init.span)
        if name in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal") and len(info.shape) < 2:
            raise SpecArgError(f"init {name} needs at least 2 dims, the shape is {shape_str(info.shape)}", init.span)
        return template.format(*[_code(a) for a in args], dims=dims)

    # -- static expressions ------------------------------------------------------
    def eval_static(self, e, scope: Scope, env: dict, allow_modules: bool = False):
        """Evaluate a compile-time expression to a `Val` (or a `Recipe`)."""
        k = e.kind
        if k == "constant":
            return Val(e.value)
        if k == "infer":
            raise SpecArgError("`_` stands only for a layer argument to infer", e.span)
        if k == "name":
            return self.lookup_static(e, scope, env, allow_modules)
        if k in ("tuple", "list"):
            items = []
            for x in e.items:
                v = self.eval_static(x, scope, env, allow_modules)
                items.append(v)
            if any(isinstance(v, Recipe) for v in items):
                return items if k == "list" else tuple(items)
            value = tuple(items) if k == "tuple" else list(items)
            code = literal(value)
            return Val(value, code)
        if k == "listcomp":
            return self.list_comp(e, scope, env, allow_modules)
        if k == "binop":
            a = self.eval_static(e.left, scope, env)
            b = self.eval_static(e.right, scope, env)
            return self.static_binop(e, a, b)
        if k == "unaryop":
            a = self._num(self.eval_static(e.operand, scope, env), e.operand)
            v = -a.value if e.op == "-" else a.value
            return Val(v, f"{e.op}{_wrap(_code(a), a.prec, 12)}", prec=12)
        if k in ("boolop", "not", "compare", "ifexp"):
            return self.static_logic(e, scope, env)
        if k == "subscript":
            base = self.eval_static(e.value, scope, env)
            return self.static_subscript(e, base, scope, env)
        if k == "call":
            return self.static_call(e, scope, env, allow_modules)
        if k == "attribute":
            raise SpecNameError(f"unknown name {self.dotted(e) or e.attr!r}", e.span)
        raise SpecArgError(f"a {k} is not allowed here", e.span)

    def lookup_static(self, e: ir.Name, scope: Scope, env: dict, allow_modules: bool):
        if e.id in env:
            v = env[e.id]
            if isinstance(v, Val):
                return v
            if isinstance(v, ChildSlot):
                raise SpecArgError(f"child {e.id!r} cannot be used as a value here", e.span)
            if isinstance(v, (TensorVal, ParamRef)):
                raise SpecArgError(f"{e.id!r} is a tensor; here a compile-time value is needed", e.span)
            return v
        if e.id in self.consts:
            return self.consts[e.id]
        if e.id in CATALOG or e.id in CONTAINERS or e.id in self.blocks:
            raise SpecArgError(f"{e.id} must be called: {e.id}(...)", e.span)
        candidates = list(env) + list(self.consts)
        raise SpecNameError(f"undefined name {e.id!r}", e.span, hint=did_you_mean(e.id, candidates))

    def _num(self, v, e):
        if not isinstance(v, Val) or isinstance(v.value, bool) or not isinstance(v.value, (int, float, Sym)):
            raise SpecArgError(f"expected a number, got {self.describe(v)}", e.span)
        return v

    def describe(self, v) -> str:
        if isinstance(v, Val):
            return literal(v.value) if not isinstance(v.value, Sym) else str(v.value)
        if isinstance(v, Recipe):
            return f"a {v.name} module"
        if isinstance(v, TensorVal):
            return f"a tensor {v.info}"
        if isinstance(v, ModRef):
            return f"the module `{v.path}`"
        if isinstance(v, ChildSlot):
            return f"the module `{v.name}`"
        if isinstance(v, ParamRef):
            return f"the parameter `{v.name}`"
        if isinstance(v, (list, tuple)):
            bad = next((x for x in v if not isinstance(x, Recipe)), None)
            return f"a list holding {self.describe(bad)}" if bad is not None else "a list of modules"
        return type(v).__name__

    def static_binop(self, e: ir.BinOp, a, b):
        if e.op == "@":
            raise SpecArgError("`@` multiplies tensors; use it in forward", e.span)
        if e.op == "+" and isinstance(a, Val) and isinstance(a.value, (tuple, list)) and isinstance(b, Val) \
                and isinstance(b.value, type(a.value)):
            value = a.value + b.value
            return Val(value, f"{_wrap(_code(a), a.prec, 10)} + {_wrap(_code(b), b.prec, 11)}", prec=10)
        self._num(a, e.left)
        self._num(b, e.right)
        if e.op in ("/", "//", "%") and b.value == 0:
            raise SpecArgError("division by zero", e.span)
        if e.op == "**":
            if isinstance(b.value, int) and abs(b.value) > 64 or isinstance(a.value, Sym):
                raise SpecArgError(f"the power {literal(a.value)} ** {literal(b.value)} is out of range", e.span)
        try:
            value = _py_binop(e.op, a.value, b.value)
        except (TypeError, OverflowError):
            raise SpecArgError(f"cannot compute {self.describe(a)} {e.op} {self.describe(b)}", e.span) from None
        p = BIN_PREC[e.op]
        right_need = p + 1 if e.op != "**" else p
        left_need = p if e.op != "**" else p + 1
        code = f"{_wrap(_code(a), a.prec, left_need)} {e.op} {_wrap(_code(b), b.prec, right_need)}"
        if isinstance(value, int) and abs(value) > 10**18:
            raise SpecLimitError(f"the number {value} is out of range", e.span)
        return Val(value, code, prec=p)

    def static_logic(self, e, scope, env):
        k = e.kind
        if k == "not":
            a = self.eval_static(e.operand, scope, env)
            return Val(not a.value, f"not {_wrap(_code(a), a.prec, 4)}", prec=4)
        if k == "boolop":
            a = self.eval_static(e.left, scope, env)
            b = self.eval_static(e.right, scope, env)
            p = 3 if e.op == "and" else 2
            value = (a.value and b.value) if e.op == "and" else (a.value or b.value)
            return Val(value, f"{_wrap(_code(a), a.prec, p)} {e.op} {_wrap(_code(b), b.prec, p + 1)}", prec=p)
        if k == "compare":
            left = self.eval_static(e.left, scope, env)
            result, parts = True, [_wrap(_code(left), left.prec, 6)]
            for op, comp in zip(e.ops, e.comparators):
                right = self.eval_static(comp, scope, env)
                try:
                    ok = self._compare(op, left.value, right.value)
                except TypeError:
                    raise SpecArgError(f"cannot compare {self.describe(left)} {op} {self.describe(right)}",
                                       e.span) from None
                result = result and ok
                parts += [op, _wrap(_code(right), right.prec, 6)]
                left = right
            return Val(result, " ".join(parts), prec=5)
        if k == "ifexp":
            t = self.eval_static(e.test, scope, env)
            a = self.eval_static(e.body, scope, env, allow_modules=True)
            b = self.eval_static(e.orelse, scope, env, allow_modules=True)
            chosen = a if t.value else b
            if isinstance(chosen, Val) and isinstance(a, Val) and isinstance(b, Val):
                code = f"{_wrap(_code(a), a.prec, 2)} if {_wrap(_code(t), t.prec, 2)} else {_wrap(_code(b), b.prec, 1)}"
                return Val(chosen.value, code, prec=1)
            return chosen
        raise AssertionError(k)

    @staticmethod
    def _compare(op, a, b) -> bool:
        if isinstance(a, Sym) or isinstance(b, Sym):
            if op in ("==", "!="):
                return (a == b) == (op == "==")
            raise TypeError
        return {
            "<": lambda: a < b, ">": lambda: a > b, "==": lambda: a == b, ">=": lambda: a >= b,
            "<=": lambda: a <= b, "!=": lambda: a != b, "in": lambda: a in b, "not in": lambda: a not in b,
            "is": lambda: a is b, "is not": lambda: a is not b,
        }[op]()

    def static_subscript(self, e: ir.Subscript, base, scope, env):
        if not isinstance(base, Val) or not isinstance(base.value, (tuple, list, str)):
            raise SpecArgError(f"cannot index {self.describe(base)}", e.value.span)
        if len(e.index) != 1 or e.index[0].kind in ("slice", "ellipsis"):
            raise SpecArgError("index a compile-time tuple with one integer", e.span)
        i = self.eval_static(e.index[0], scope, env)
        if not isinstance(i.value, int) or isinstance(i.value, bool):
            raise SpecArgError(f"an index must be an integer, not {self.describe(i)}", e.index[0].span)
        n = len(base.value)
        if not -n <= i.value < n:
            raise SpecArgError(f"index {i.value} is out of range for {n} items", e.index[0].span)
        item = base.value[i.value]
        if isinstance(item, Val):
            if item.slot is not None and item.slot.owner is _real(scope) and scope.kind == "block":
                # in_shape[i] names a block input dim: a constructor parameter of the class
                if item.slot.name is None:
                    item.slot.name = scope.new_ctor_param(self._slot_default_name(item.slot, n), slot=item.slot)
                return item
            if item.code is not None:
                return item
            return Val(item.value, f"{_wrap(_code(base), base.prec, 14)}[{_code(i)}]")
        return Val(item, f"{_wrap(_code(base), base.prec, 14)}[{_code(i)}]")

    @staticmethod
    def _slot_default_name(slot: InputSlot, rank: int) -> str:
        if slot.index == 1 and rank >= 3:
            return "in_channels"
        if slot.index == rank - 1:
            return "in_features"
        return f"in_dim{slot.index}"

    def list_comp(self, e: ir.ListComp, scope, env, allow_modules):
        it = self.eval_static(e.iter, scope, env)
        if not isinstance(it, Val) or not isinstance(it.value, (tuple, list)):
            raise SpecArgError(f"a comprehension loops over a list, tuple or range(...), not {self.describe(it)}",
                               e.iter.span)
        if len(it.value) > self.limits.max_unroll:
            raise SpecLimitError(f"the loop would unroll {len(it.value)} times; the limit is {self.limits.max_unroll}",
                                 e.iter.span, hint="raise Limits.max_unroll if this is intended")
        out = []
        for item in it.value:
            inner = dict(env)
            if e.var != "_":
                inner[e.var] = Val(item.value if isinstance(item, Val) else item)
            out.append(self.eval_static(e.element, scope, inner, allow_modules))
        if any(isinstance(v, Recipe) for v in out):
            return out
        return Val(out, literal(out))

    # -- calls at definition time: modules and a few builtins
    def static_call(self, e: ir.Call, scope, env, allow_modules):
        fname = self.dotted(e.func)
        if fname is None:
            raise SpecArgError("only layers, blocks and range(...) can be called here", e.func.span)
        bare = fname.removeprefix("torch.").removeprefix("nn.")
        if fname in ("range", "len", "min", "max", "abs", "int", "float", "round"):
            return self.builtin_call(fname, e, scope, env)
        if bare in CATALOG or bare in CONTAINERS or fname in self.blocks:
            if not allow_modules:
                raise SpecArgError(f"a module ({bare}) cannot be used as a value here", e.span)
            return self.module_recipe(bare if fname not in self.blocks else fname, e, scope, env)
        if fname in OPS or bare.removeprefix("F.") in OPS or fname.startswith("F."):
            raise SpecArgError(f"{fname}(...) works on tensors: call it in forward", e.span)
        candidates = list(CATALOG) + list(self.blocks) + list(CONTAINERS)
        raise SpecNameError(f"unknown layer or block {bare!r}", e.func.span, hint=did_you_mean(bare, candidates))

    def builtin_call(self, fname, e: ir.Call, scope, env):
        if e.keywords:
            raise SpecArgError(f"{fname}() takes no keyword arguments", e.keywords[0].span)
        args = [self.eval_static(a, scope, env) for a in e.args if a.kind != "starred"]
        vals = [a.value for a in args]
        code = f"{fname}({', '.join(_code(a) for a in args)})"
        if fname == "range":
            if not 1 <= len(vals) <= 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                raise SpecArgError("range() takes 1 to 3 integers", e.span)
            if len(vals) == 3 and vals[2] == 0:
                raise SpecArgError("range() step must not be zero", e.span)
            r = range(*vals)
            if len(r) > self.limits.max_unroll:
                raise SpecLimitError(f"range of {len(r)} items exceeds the unroll limit {self.limits.max_unroll}",
                                     e.span)
            return Val(tuple(Val(i) for i in r), code)
        try:
            if fname == "len":
                return Val(len(vals[0]), code)
            fn = {"min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round}[fname]
            return Val(fn(*vals), code)
        except (TypeError, ValueError, IndexError):
            raise SpecArgError(f"invalid arguments to {fname}()", e.span) from None

    @staticmethod
    def dotted(e) -> str | None:
        if isinstance(e, ir.Name):
            return e.id
        if isinstance(e, ir.Attribute):
            base = Elaborator.dotted(e.value)
            return f"{base}.{e.attr}" if base else None
        return None

    def module_recipe(self, name, e: ir.Call, scope, env) -> Recipe:
        if name in CONTAINERS:
            return self.container_recipe(name, e, scope, env)
        args, arg_spans = [], []
        for a in e.args:
            if a.kind == "starred":
                v = self.eval_static(a.value, scope, env)
                if not isinstance(v, Val) or not isinstance(v.value, (tuple, list)):
                    raise SpecArgError("`*` unpacks a tuple or list", a.span)
                for x in v.value:
                    args.append(x if isinstance(x, Val) else Val(x))
                    arg_spans.append(a.span)
                continue
            args.append(INFER if a.kind == "infer" else self.eval_static(a, scope, env))
            arg_spans.append(a.span)
        kwargs, kw_spans = {}, {}
        for kw in e.keywords:
            if kw.name in kwargs:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span)
            kwargs[kw.name] = INFER if kw.value.kind == "infer" else self.eval_static(kw.value, scope, env)
            kw_spans[kw.name] = kw.span
        for v, sp in list(zip(args, arg_spans)) + [(kwargs[k], kw_spans[k]) for k in kwargs]:
            if isinstance(v, Recipe) or isinstance(v, list):
                raise SpecArgError("a module cannot be an argument here", sp)
        if name in self.blocks:
            return Recipe("block", e.span, name, args, kwargs, arg_spans, kw_spans, block=self.blocks[name])
        return Recipe("layer", e.span, name, args, kwargs, arg_spans, kw_spans)

    def container_recipe(self, name, e: ir.Call, scope, env) -> Recipe:
        items: list = []
        keys: list = []
        if e.keywords:
            raise SpecArgError(f"{name} takes its modules positionally", e.keywords[0].span)

        def add(v, span):
            if isinstance(v, Recipe):
                items.append(v)
            elif isinstance(v, (list, tuple)) and all(isinstance(x, Recipe) for x in v):
                items.extend(v)
            else:
                raise SpecArgError(f"{name} holds modules, not {self.describe(v)}", span)

        if name == "Sequential":
            for a in e.args:
                if a.kind == "starred":
                    v = self.eval_static(a.value, scope, env, allow_modules=True)
                    if isinstance(v, Val) and isinstance(v.value, (list, tuple)) and not v.value:
                        continue  # `*[M() for _ in range(0)]`: nothing to add
                    add(v, a.span)
                else:
                    add(self.eval_static(a, scope, env, allow_modules=True), a.span)
        elif name == "ModuleList":
            if len(e.args) > 1:
                raise SpecArgError("ModuleList takes one list of modules", e.span)
            if e.args:
                a = e.args[0]
                v = self.eval_static(a.value if a.kind == "starred" else a, scope, env, allow_modules=True)
                if v == [] or (isinstance(v, Val) and v.value == []):
                    v = []
                add(v, a.span)
        else:  # ModuleDict
            if len(e.args) != 1 or e.args[0].kind != "dict":
                raise SpecArgError("ModuleDict takes one dict {'name': Module(...), ...}", e.span)
            d = e.args[0]
            for k, v in zip(d.keys, d.values):
                key = self.eval_static(k, scope, env)
                if not isinstance(key.value, str) or not key.value.isidentifier() or keyword.iskeyword(key.value):
                    raise SpecArgError("ModuleDict keys are names in quotes, like 'conv1'", k.span)
                if key.value in keys:
                    raise SpecNameError(f"key {key.value!r} appears twice", k.span)
                keys.append(key.value)
                add(self.eval_static(v, scope, env, allow_modules=True), v.span)
        self.module_count += len(items)
        if self.module_count > self.limits.max_modules:
            raise SpecLimitError(f"the model would have more than {self.limits.max_modules} modules", e.span)
        return Recipe(name.lower(), e.span, name, items=items, keys=keys)

    # -- building modules -------------------------------------------------------------
    def recipe_needs_input(self, r: Recipe) -> bool:
        if r.kind == "layer":
            layer = CATALOG[r.name]
            given = {a.name for a in layer.args[: len(r.args)]} | set(r.kwargs)
            if any(v is INFER for v in list(r.args) + list(r.kwargs.values())):
                return True
            return any(a.infer is not None and a.name not in given for a in layer.args)
        if r.kind == "block":
            return True
        return any(self.recipe_needs_input(i) for i in r.items)

    def count_params(self, n: int, span: Span):
        self.total_params += n
        if self.total_params > self.limits.max_params:
            raise SpecLimitError(
                f"the model would need {self.total_params:,} parameters, over the limit of "
                f"{self.limits.max_params:,}", span,
                hint="lower the sizes, or raise the limit (max_params= in Python, --max-params on the command line)",
            )

    def instantiate(self, r: Recipe, inputs: list[TensorInfo] | None, scope: Scope, name: str,
                    call_span: Span | None = None) -> Instance:
        path = f"{scope.path}.{name}" if scope.path else name
        if r.kind == "layer":
            return self.build_layer(r, inputs, scope, name, path, call_span)
        if r.kind == "block":
            return self.build_block(r, inputs, scope, name, path)
        if r.kind == "sequential":
            return self.build_sequential(r, inputs, scope, name, path)
        return self.build_container(r, scope, name, path)

    def build_layer(self, r: Recipe, inputs, scope, name, path, call_span: Span | None = None) -> Instance:
        layer = CATALOG[r.name]
        shapes = tuple(t.shape for t in inputs) if inputs is not None else ()
        label = f"{r.name} `{path}`"
        if inputs is not None and len(inputs) != layer.n_inputs:
            raise SpecArgError(f"{label} takes {layer.n_inputs} input{'s' if layer.n_inputs > 1 else ''}, "
                               f"got {len(inputs)}", call_span or r.span)
        bound = self.bind_layer(layer, r, shapes, label)
        code = self.layer_code(layer, r, bound, scope)
        node = ModuleNode(name, path, r.name, "layer", r.span, layer=layer, args=dict(bound.values))
        try:
            params = layer.params(bound)
        except TypeError:
            params = None
        if not isinstance(params, int):
            raise SpecShapeError(f"{label}: its parameter count would depend on a symbolic size", r.span)
        node.params = node.trainable = params
        self.count_params(params, r.span)
        inst = Instance(node, code, r, bound)
        inst.call = lambda ins, span=None: self.call_layer(inst, ins, scope, span)
        return inst

    def bind_layer(self, layer, r: Recipe, shapes, label):
        try:
            return bind(layer, list(r.args), dict(r.kwargs), shapes)
        except ArgError as exc:
            span = r.span
            if exc.arg is not None and exc.arg in r.kw_spans:
                span = r.kw_spans[exc.arg]
            elif exc.arg is not None:
                idx = [a.name for a in layer.args].index(exc.arg) if layer.arg(exc.arg) else None
                if idx is not None and idx < len(r.arg_spans):
                    span = r.arg_spans[idx]
            elif exc.index is not None and exc.index < len(r.arg_spans):
                span = r.arg_spans[exc.index]
            hint = exc.hint
            if hint is None and "missing" in exc.message:
                hint = None
            raise SpecArgError(f"{label} {exc.message}", span, hint=hint) from None
        except InferMismatch as exc:
            span = r.kw_spans.get(exc.arg)
            if span is None:
                idx = [a.name for a in layer.args].index(exc.arg)
                span = r.arg_spans[idx] if idx < len(r.arg_spans) else r.span
            shape = shapes[0] if len(shapes) == 1 else None
            got = shape_str(shape) if shape is not None else ", ".join(shape_str(s) for s in shapes)
            fixed = self.call_text(layer, r, exc.arg, exc.inferred)
            underscore = self.call_text(layer, r, exc.arg, "_")
            raise SpecShapeError(
                f"{label} expects {exc.arg}={literal(exc.given)} but its input is {got}", span,
                hint=f"use {fixed}, or {underscore} to infer it",
            ) from None
        except ShapeProblem as exc:
            raise SpecShapeError(_labelled(label, str(exc)), r.span) from None

    def call_text(self, layer, r: Recipe, arg: str, value) -> str:
        parts = []
        pos_names = [a.name for a in layer.args if not a.kw_only]
        for i, v in enumerate(r.args):
            n = pos_names[i] if i < len(pos_names) else None
            parts.append(str(value) if n == arg and value == "_" else literal(value) if n == arg else
                         ("_" if v is INFER else _code(v)))
        for k, v in r.kwargs.items():
            shown = (str(value) if value == "_" else literal(value)) if k == arg else ("_" if v is INFER else _code(v))
            parts.append(f"{k}={shown}")
        return f"{layer.name}({', '.join(parts)})"

    def dim_code(self, v, scope: Scope, argname: str) -> str:
        """How an inferred argument is spelled inside the class of ``scope``."""
        if isinstance(v, tuple):
            inner = ", ".join(self.dim_code(x, scope, argname) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        if not isinstance(v, Val):
            v = Val(v)
        if isinstance(v.value, Sym):
            raise ShapeProblem(f"{argname} would be the symbolic size {v.value}; it must be a fixed number")
        scope = _real(scope)
        if scope.kind == "model":
            return literal(v.value)
        if v._code is not None:
            return v._code
        if v.slot is not None and v.slot.owner is scope:
            if v.slot.name is None:
                v.slot.name = scope.new_ctor_param(DIM_NAMES.get(argname, argname), slot=v.slot)
            return v.slot.name
        return scope.new_ctor_param(DIM_NAMES.get(argname, argname), value=v.value)

    def layer_code(self, layer, r: Recipe, bound, scope: Scope) -> str:
        parts = []
        pos_names = [a.name for a in layer.args if not a.kw_only]
        inferred = getattr(bound, "inferred", {})
        try:
            given = set(pos_names[: len(r.args)]) | set(r.kwargs)
            for a in layer.args:
                if a.name in inferred and a.name not in given:
                    parts.append(f"{a.name}={self.dim_code(inferred[a.name], scope, a.name)}")
            for i, v in enumerate(r.args):
                n = pos_names[i]
                parts.insert(i, self.dim_code(inferred[n], scope, n) if v is INFER else _code(v))
            for k, v in r.kwargs.items():
                parts.append(f"{k}={self.dim_code(inferred[k], scope, k) if v is INFER else _code(v)}")
        except ShapeProblem as exc:
            raise SpecShapeError(f"{layer.name}: {exc}", r.span) from None
        return f"nn.{layer.name}({', '.join(parts)})"

    def call_layer(self, inst: Instance, inputs: list[TensorInfo], scope, span=None):
        layer = CATALOG[inst.recipe.name]
        r = inst.recipe
        label = f"{r.name} `{inst.node.path}`"
        shapes = tuple(t.shape for t in inputs)
        if len(inputs) != layer.n_inputs:
            raise SpecArgError(f"{label} takes {layer.n_inputs} input{'s' if layer.n_inputs > 1 else ''}, "
                               f"got {len(inputs)}", span or r.span)
        if inst.node.inputs:
            bound = self.bind_layer(layer, r, shapes, label)  # a second call: the input must fit the same layer
        else:
            bound = inst.bound
        if layer.name == "Embedding" and inputs[0].dtype == "float":
            raise SpecShapeError(f"{label} takes integer indices, but its input is a float tensor",
                                 span or r.span, hint="declare the input as Long[...]")
        try:
            out = layer.rule(bound, *shapes)
        except ShapeProblem as exc:
            raise SpecShapeError(_labelled(label, str(exc)), span or r.span) from None
        outs = out if isinstance(out, list) else [out]
        infos = [TensorInfo(tuple(d if isinstance(d, Val) else Val(d) for d in s),
                            "long" if i == 1 else ("float" if layer.name == "Embedding" else inputs[0].dtype))
                 for i, s in enumerate(outs)]
        node = inst.node
        if not node.inputs:
            node.inputs = list(inputs)
            node.outputs = infos
            try:
                node.macs = layer.macs(bound, infos[0].shape, *shapes)
            except (TypeError, ZeroDivisionError):
                node.macs = 0
            if layer.explain is not None:
                node.explain = layer.explain(bound, shapes[0], out if isinstance(out, list) else infos[0].shape)
        return infos if isinstance(out, list) else infos[0]

    def build_sequential(self, r: Recipe, inputs, scope, name, path) -> Instance:
        node = ModuleNode(name, path, "Sequential", "sequential", r.span)
        items = []
        cur = inputs
        for i, item in enumerate(r.items):
            inst = self.instantiate(item, cur, _PathScope(scope, path), str(i))
            if cur is not None:
                out = inst.call(cur, item.span)
                if isinstance(out, list):
                    raise SpecShapeError(f"{item.name} `{inst.node.path}` returns {len(out)} tensors; inside a "
                                         f"Sequential each module must return one", item.span)
                cur = [out]
            items.append(inst)
            node.children.append(inst.node)
        code = self.container_code("nn.Sequential", [i.code for i in items])
        inst = Instance(node, code, r, items=items)
        node.inputs = list(inputs or [])
        node.outputs = cur or []

        def call(ins, span=None, inst=inst):
            if node.inputs and [shape_str(t.shape) for t in ins] != [shape_str(t.shape) for t in node.inputs]:
                cur2 = ins
                for it in inst.items:
                    cur2 = [it.call(cur2, span)]
                return cur2[0]
            if not ins and not node.outputs:
                return ins
            return node.outputs[0] if node.outputs else ins[0]

        inst.call = call
        return inst

    def build_container(self, r: Recipe, scope, name, path) -> Instance:
        kind = "ModuleList" if r.kind == "modulelist" else "ModuleDict"
        node = ModuleNode(name, path, kind, r.kind, r.span)
        inst = Instance(node, "", r)
        inst.items = [None] * len(r.items)
        inst.scope = _PathScope(scope, path)

        def call(ins, span=None):
            raise SpecArgError(f"a {kind} cannot be called; loop over it or index it in forward", span or r.span)

        inst.call = call
        return inst

    def element(self, inst: Instance, i: int, inputs, span) -> Instance:
        """Element ``i`` of a ModuleList/ModuleDict, built at its first call."""
        if inst.items[i] is None:
            key = inst.recipe.keys[i] if inst.recipe.kind == "moduledict" else str(i)
            inst.items[i] = self.instantiate(inst.recipe.items[i], inputs, inst.scope, key)
        return inst.items[i]

    def finish_container(self, inst: Instance, scope: Scope):
        if inst.recipe.kind not in ("modulelist", "moduledict"):
            return
        for i, item in enumerate(inst.items):
            if item is None:
                r = inst.recipe.items[i]
                if self.recipe_needs_input(r):
                    raise SpecShapeError(f"element {i} of {inst.node.path} is never called in forward, so its "
                                         f"input shape is unknown", r.span)
                self.element(inst, i, None, r.span)
        inst.node.children = [i.node for i in inst.items]
        codes = [i.code for i in inst.items]
        if inst.recipe.kind == "modulelist":
            inst.code = "nn.ModuleList(" + self.container_code("", codes, brackets="[]") + ")"
        else:
            pairs = [f"{k!r}: {c}" for k, c in zip(inst.recipe.keys, codes)]
            inst.code = "nn.ModuleDict(" + self.container_code("", pairs, brackets="{}") + ")"

    @staticmethod
    def container_code(head: str, items: list[str], brackets: str = "()") -> str:
        if not items:
            return f"{head}{brackets}"
        if len(items) > 2 and len(set(items)) == 1 and "\n" not in items[0]:
            inner = f"{items[0]} for _ in range({len(items)})"
            return f"{head}(*[{inner}])" if head else f"{brackets[0]}{inner}{brackets[1]}" if brackets == "[]" \
                else f"{head}{brackets[0]}" + ", ".join(items) + brackets[1]
        body = "".join("    " + c.replace("\n", "\n    ") + ",\n" for c in items)
        return f"{head}{brackets[0]}\n{body}{brackets[1]}"

    # -- blocks ---------------------------------------------------------------------
    def build_block(self, r: Recipe, inputs, parent: Scope, name, path) -> Instance:
        block: ir.Block = r.block
        if block.name in self.block_stack:
            chain = " -> ".join(self.block_stack + [block.name])
            raise SpecNameError(f"block {block.name!r} uses itself ({chain})", r.span,
                                hint="a block cannot contain itself; unroll with a list comprehension")
        if len(self.block_stack) >= self.limits.max_depth:
            raise SpecLimitError(f"blocks nest deeper than {self.limits.max_depth} levels", r.span)
        if inputs is None:
            raise SpecShapeError(f"block {block.name} `{path}` is never called in forward", r.span)
        env = self.bind_block_args(block, r, parent)
        scope = Scope("block", block.name, path, {}, block.span, parent.depth + 1)
        for p in block.params:
            scope.env[p.name] = Val(env[p.name].value, p.name)
            scope.ctor.append(CtorParam(p.name, self.default_code(p, parent), False))
        ins = []
        for k, t in enumerate(inputs):
            dims = []
            for i, d in enumerate(t.shape):
                dims.append(Val(d.value, slot=InputSlot(i, d.value, scope, d)) if k == 0 else Val(d.value))
            ins.append(TensorInfo(tuple(dims), t.dtype))
        scope.env["in_shape"] = Val(tuple(ins[0].shape), "in_shape")
        node = ModuleNode(name, path, block.name, "block", r.span)
        self.block_stack.append(block.name)
        try:
            outs = self.run_scope(scope, block.body, [("x", t) for t in ins], node, block.span)
        finally:
            self.block_stack.pop()
        cls = self.finish_class(scope, node, block.span)
        node.type_name = cls.name
        # constructor call in the parent's class
        args = []
        for p in scope.ctor:
            if p.inferred:
                outer = p.slot.outer if p.slot is not None else Val(p.value)
                try:
                    args.append(self.dim_code(outer, parent, p.name))
                except ShapeProblem as exc:
                    raise SpecShapeError(f"block {block.name} `{path}`: {exc}", r.span) from None
        args += [_code(v) for v in r.args]
        args += [f"{k}={_code(v)}" for k, v in r.kwargs.items()]
        code = f"{cls.name}({', '.join(args)})"
        node.inputs = list(inputs)
        out_list = outs if isinstance(outs, list) else [outs]
        node.outputs = [self.export_info(o, scope, env) for o in out_list if isinstance(o, TensorInfo)]
        inst = Instance(node, code, r, classdef=cls)
        first_in = [shape_str(t.shape) for t in inputs]

        def call(ins2, span=None):
            if [shape_str(t.shape) for t in ins2] != first_in:
                raise SpecShapeError(
                    f"block {block.name} `{path}` was built for input {', '.join(first_in)} but is called "
                    f"again with {', '.join(shape_str(t.shape) for t in ins2)}", span or r.span)
            res = [self.export_info(o, scope, env) if isinstance(o, TensorInfo) else o for o in out_list]
            return res if len(res) > 1 else res[0]

        inst.call = call
        return inst

    def export_info(self, info: TensorInfo, scope: Scope, args: dict) -> TensorInfo:
        """A block's output as its caller sees it: spellings mapped back to the caller's."""
        dims = []
        for d in info.shape:
            if d.slot is not None and d.slot.owner is scope:
                dims.append(d.slot.outer)
            elif d._code is not None and d._code in args:
                dims.append(args[d._code])
            else:
                dims.append(Val(d.value))
        return TensorInfo(tuple(dims), info.dtype)

    def default_code(self, p: ir.BlockParam, scope) -> str | None:
        if p.default is None:
            return None
        return _code(self.eval_static(p.default, Scope("model", "", "", {}, p.span, 0), {}))

    def bind_block_args(self, block: ir.Block, r: Recipe, parent: Scope) -> dict:
        names = [p.name for p in block.params]
        out: dict[str, Val] = {}
        if len(r.args) > len(names):
            sp = r.arg_spans[len(names)] if len(names) < len(r.arg_spans) else r.span
            raise SpecArgError(f"block {block.name} takes {len(names)} argument{'s' if len(names) != 1 else ''} "
                               f"({', '.join(names)}) but {len(r.args)} were given", sp)
        for n, v, sp in zip(names, r.args, r.arg_spans):
            if v is INFER:
                raise SpecArgError(f"`_` infers layer arguments; block {block.name} needs {n!r} given", sp)
            out[n] = v
        for k, v in r.kwargs.items():
            if k not in names:
                raise SpecArgError(f"block {block.name} has no parameter {k!r}", r.kw_spans[k],
                                   hint=did_you_mean(k, names) or f"its parameters: {', '.join(names) or 'none'}")
            if k in out:
                raise SpecArgError(f"block {block.name} got {k!r} twice", r.kw_spans[k])
            if v is INFER:
                raise SpecArgError(f"`_` infers layer arguments; block {block.name} needs {k!r} given", r.kw_spans[k])
            out[k] = v
        for p in block.params:
            if p.name not in out:
                if p.default is None:
                    raise SpecArgError(f"block {block.name} is missing the argument {p.name!r}", r.span,
                                       hint=f"{block.name}({', '.join(names)})")
                out[p.name] = self.eval_static(p.default, Scope("model", "", "", {}, p.span, 0), dict(self.consts))
        return out

    def finish_class(self, scope: Scope, node: ModuleNode, span) -> ClassDef:
        init: list[tuple[int, str]] = []
        for kind, name, info, code, _ in scope.raw:
            if kind == "const":
                continue
            if kind == "param":
                init.append((2, f"self.{name} = nn.Parameter({code})"))
            else:
                init.append((2, f"self.register_buffer({name!r}, {code})"))
        for slot in scope.children.values():
            inst = slot.instance or slot.hypothetical
            if inst is not None and inst.recipe.kind in ("modulelist", "moduledict"):
                self.finish_container(inst, scope)
                if slot.instance is not None:
                    node.children = [s.instance.node for s in scope.children.values() if s.instance is not None]
            if slot.cond_code is None:
                init.append((2, f"self.{slot.name} = {self.indent_code(inst.code, 2)}"))
            elif inst is None:
                init.append((2, f"self.{slot.name} = None"))
            else:
                init.append((2, f"if {slot.cond_code}:"))
                init.append((3, f"self.{slot.name} = {self.indent_code(inst.code, 3)}"))
                init.append((2, "else:"))
                init.append((3, f"self.{slot.name} = None"))
        ctor = [(p.name, p.default) for p in scope.ctor]
        lines = scope.lines
        cls = ClassDef(scope.name, scope.kind, ctor, init, scope.forward_params, lines, span=span)
        cls.used_by.append(scope.path or scope.name)
        key = cls.structure_key()
        if scope.kind == "block":
            existing = self.class_keys.get((scope.name, key))
            if existing is not None:
                existing.used_by.append(scope.path)
                existing.instances.append(lines)
                return existing
            cls.name = self.unique_class_name(scope.name)
            self.class_keys[(scope.name, key)] = cls
        else:
            cls.name = self.unique_class_name(scope.name)
        cls.instances = [lines]
        self.classes.append(cls)
        return cls

    def unique_class_name(self, name: str) -> str:
        base, n = name, 2
        while name in self.class_names:
            name, n = f"{base}_{n}", n + 1
        self.class_names.add(name)
        return name

    @staticmethod
    def indent_code(code: str, level: int) -> str:
        return code.replace("\n", "\n" + "    " * level)

    # -- forward ---------------------------------------------------------------------
    def implicit_forward(self, scope: Scope, env: dict, params: list[str], span):
        if len(params) != 1:
            raise SpecArgError(f"{scope.name} has {len(params)} inputs: write a forward to say how they flow", span)
        if any(r[0] == "param" for r in scope.raw):
            raise SpecArgError(f"{scope.name} has raw parameters: write a forward to say how they are used", span)
        x = env[params[0]]
        var = params[0]
        if not scope.children:
            raise SpecArgError(f"{scope.name} has no children and no forward", span)
        for slot in scope.children.values():
            ref = ModRef(slot, None, f"self.{slot.name}", slot.name)
            out = self.call_module(ref, [x], [var], slot.recipe.span, scope, target=var)
            if isinstance(out, TupleVal):
                raise SpecShapeError(f"child {slot.name!r} returns several tensors; without a forward, "
                                     f"children run in order and each must return one", slot.span)
            x = TensorVal(out.info, var)
            if slot.cond_code is None:
                scope.emit(f"{var} = {out.code}", [out.info.shape])
        scope.emit(f"return {var}")
        return [x.info]

    def run_forward(self, body, scope: Scope, env: dict, span) -> list:
        for stmt in body:
            result = self.fwd_stmt(stmt, scope, env)
            if result is not None:
                return result
        raise SpecArgError(f"the forward of {scope.name} has no return", span, hint="end it with `return ...`")

    def fwd_stmt(self, stmt, scope: Scope, env: dict):
        k = stmt.kind
        if k == "assign":
            value = self.fwd_expr(stmt.value, scope, env)
            names = self.assign(stmt.target, value, env, scope, stmt)
            shapes = self.shapes_of(value)
            scope.emit(f"{self.target_code(stmt.target)} = {value.code if hasattr(value, 'code') else _code(value)}",
                       shapes)
            return None
        if k == "return":
            if not stmt.values:
                raise SpecArgError("return needs a value", stmt.span)
            vals = [self.fwd_expr(v, scope, env) for v in stmt.values]
            outs = []
            for v, e in zip(vals, stmt.values):
                if isinstance(v, TensorVal):
                    outs.append(v.info)
                elif isinstance(v, TupleVal):
                    outs.extend(self.flat_infos(v))
                else:
                    raise SpecArgError(f"forward must return tensors, not {self.describe(v)}", e.span)
            code = ", ".join(v.code for v in vals)
            scope.emit(f"return {code}", [s for v in vals for s in self.shapes_of(v)])
            return outs
        if k == "for":
            return self.fwd_for(stmt, scope, env)
        if k == "if":
            test = self.fwd_expr(stmt.test, scope, env)
            if not isinstance(test, Val) or not isinstance(test.value, bool):
                raise SpecArgError("an if in forward tests a compile-time condition", stmt.test.span)
            for s in (stmt.body if test.value else stmt.orelse):
                r = self.fwd_stmt(s, scope, env)
                if r is not None:
                    return r
            return None
        raise AssertionError(k)

    def flat_infos(self, v) -> list[TensorInfo]:
        out = []
        for item in v.items:
            if isinstance(item, TensorVal):
                out.append(item.info)
            elif isinstance(item, TupleVal):
                out.extend(self.flat_infos(item))
        return out

    def shapes_of(self, v) -> list[tuple]:
        if isinstance(v, TensorVal):
            return [v.info.shape]
        if isinstance(v, TupleVal):
            return [i.info.shape if isinstance(i, TensorVal) else () for i in v.items if isinstance(i, TensorVal)]
        return []

    def target_code(self, t) -> str:
        if t.kind == "name_target":
            return t.id
        inner = ", ".join(self.target_code(i) if i.kind == "name_target" else f"({self.target_code(i)})"
                          for i in t.items)
        return inner

    def assign(self, t, value, env, scope, stmt):
        if t.kind == "name_target":
            self._check_name(t.id, t.span, "a value")
            if t.id in scope.children or isinstance(env.get(t.id), (ChildSlot, ParamRef)):
                raise SpecNameError(f"{t.id!r} is a child of {scope.name}; use another name for the value", t.span)
            scope.locals.add(t.id)
            if isinstance(value, TensorVal):
                env[t.id] = TensorVal(value.info, t.id)
            elif isinstance(value, TupleVal):
                env[t.id] = TupleVal(value.items, t.id)
            elif isinstance(value, Val):
                env[t.id] = Val(value.value, t.id)
            else:
                env[t.id] = value
            return
        items = value.items if isinstance(value, TupleVal) else (
            list(value.value) if isinstance(value, Val) and isinstance(value.value, tuple) else None)
        if items is None:
            raise SpecArgError(f"cannot unpack {self.describe(value)} into {len(t.items)} names", stmt.span)
        if len(items) != len(t.items):
            raise SpecArgError(f"cannot unpack {len(items)} values into {len(t.items)} names", t.span)
        for sub, item in zip(t.items, items):
            if isinstance(item, Val) and isinstance(value, Val):
                item = Val(item.value, None)
            self.assign(sub, item if not isinstance(item, TensorInfo) else TensorVal(item, "?"), env, scope, stmt)

    def fwd_for(self, stmt: ir.For, scope: Scope, env: dict):
        it = self.fwd_expr(stmt.iter, scope, env)
        if isinstance(it, ModRef) and it.instance is not None and it.instance.recipe.kind == "modulelist":
            n = len(it.instance.recipe.items)
            elements = [("module", i) for i in range(n)]
        elif isinstance(it, Val) and isinstance(it.value, (tuple, list)):
            elements = [("value", v) for v in it.value]
        else:
            raise SpecArgError(f"for loops over a ModuleList or a compile-time list, not {self.describe(it)}",
                               stmt.iter.span)
        self._check_name(stmt.var, stmt.span, "a loop variable")
        scope.emit(f"for {stmt.var} in {it.code if isinstance(it, ModRef) else _code(it)}:")
        start = len(scope.lines)
        scope.indent += 1
        first_lines = None
        for kind, el in elements:
            if kind == "module":
                env[stmt.var] = ModRef(None, it.instance, stmt.var, f"{it.path}.{el}")
                env[stmt.var].index = el
            else:
                env[stmt.var] = Val(el.value if isinstance(el, Val) else el, stmt.var)
            for s in stmt.body:
                if s.kind == "return":
                    raise SpecArgError("return inside a loop is not supported", s.span)
                self.fwd_stmt(s, scope, env)
            lines = scope.lines[start:]
            del scope.lines[start:]
            if first_lines is None:
                first_lines = lines
            else:
                if [ln.code for ln in lines] != [ln.code for ln in first_lines]:
                    raise SpecArgError("each pass of this loop would need different code", stmt.span)
                for first, ln in zip(first_lines, lines):
                    first.more.append(ln.shapes)
        scope.indent -= 1
        scope.lines.extend(first_lines or [])
        if not elements:
            scope.lines.append(ForwardLine(scope.indent + 1, "pass", []))
        return None

    # -- forward expressions
    def fwd_expr(self, e, scope: Scope, env: dict):
        k = e.kind
        if k == "name":
            if e.id in env:
                v = env[e.id]
                if isinstance(v, ChildSlot):
                    return ModRef(v, v.instance, f"self.{e.id}", e.id)
                if isinstance(v, ParamRef):
                    return TensorVal(v.info, f"self.{e.id}")
                return v
            return self.lookup_static(e, scope, env, False)
        if k == "constant":
            return Val(e.value)
        if k in ("tuple", "list"):
            items = [self.fwd_expr(x, scope, env) for x in e.items]
            code = ", ".join(self.code_of(i) for i in items)
            if k == "tuple":
                code = f"({code},)" if len(items) == 1 else f"({code})"
            else:
                code = f"[{code}]"
            if all(isinstance(i, Val) for i in items):
                return Val(tuple(items) if k == "tuple" else list(items), code)
            return TupleVal(items, code)
        if k == "binop":
            a = self.fwd_expr(e.left, scope, env)
            b = self.fwd_expr(e.right, scope, env)
            return self.fwd_binop(e, a, b, scope)
        if k == "unaryop":
            a = self.fwd_expr(e.operand, scope, env)
            if isinstance(a, TensorVal):
                return TensorVal(a.info, f"{e.op}{_wrap(a.code, a.prec, 12)}", 12)
            return self.eval_static(e, scope, env)
        if k == "call":
            return self.fwd_call(e, scope, env)
        if k == "attribute":
            base = self.fwd_expr(e.value, scope, env)
            if isinstance(base, TensorVal):
                if e.attr == "shape":
                    return Val(tuple(base.info.shape), f"{_wrap(base.code, base.prec, 14)}.shape")
                if e.attr == "ndim":
                    return Val(len(base.info.shape), f"{base.code}.ndim")
                if e.attr == "T" and len(base.info.shape) == 2:
                    return TensorVal(TensorInfo(tuple(reversed(base.info.shape)), base.info.dtype), f"{base.code}.T")
            raise SpecNameError(f"{self.describe(base)} has no attribute {e.attr!r}", e.span)
        if k == "subscript":
            return self.fwd_subscript(e, scope, env)
        if k in ("compare", "boolop", "not", "ifexp"):
            return self.eval_static(e, scope, {**env, **{n: v for n, v in env.items() if isinstance(v, Val)}})
        if k == "infer":
            raise SpecArgError("`_` stands only for a layer argument to infer", e.span)
        raise SpecArgError(f"a {k} is not allowed in forward", e.span)

    def code_of(self, v) -> str:
        if isinstance(v, Val):
            return _code(v)
        return v.code

    def fwd_binop(self, e: ir.BinOp, a, b, scope):
        if isinstance(a, Val) and isinstance(b, Val):
            return self.static_binop(e, a, b)
        for v, side in ((a, e.left), (b, e.right)):
            if not isinstance(v, (TensorVal, Val)):
                raise SpecArgError(f"cannot use {self.describe(v)} in arithmetic", side.span)
        p = BIN_PREC[e.op]
        code = f"{_wrap(self.code_of(a), getattr(a, 'prec', 14), p)} {e.op} " \
               f"{_wrap(self.code_of(b), getattr(b, 'prec', 14), p + 1)}"
        ta = a.info if isinstance(a, TensorVal) else None
        tb = b.info if isinstance(b, TensorVal) else None
        try:
            if e.op == "@":
                if ta is None or tb is None:
                    raise ShapeProblem("`@` multiplies two tensors")
                info = matmul_rule(ta, tb)
                self.add_macs(scope, matmul_macs(info, ta, tb))
            elif ta is not None and tb is not None:
                info = broadcast(ta, tb, {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}.get(
                    e.op, f"apply {e.op} to"))
            else:
                t = ta or tb
                s = b if ta is not None else a
                if not isinstance(s.value, (int, float)) or isinstance(s.value, bool):
                    raise ShapeProblem(f"cannot combine a tensor with {self.describe(s)}")
                info = TensorInfo(tuple(t.shape), "float" if isinstance(s.value, float) or e.op == "/" else t.dtype)
        except ShapeProblem as exc:
            raise SpecShapeError(str(exc), e.span) from None
        return TensorVal(info, code, p)

    def add_macs(self, scope: Scope, macs):
        scope.extra_macs = getattr(scope, "extra_macs", 0) + macs

    def fwd_subscript(self, e: ir.Subscript, scope, env):
        base = self.fwd_expr(e.value, scope, env)
        if isinstance(base, ModRef) and base.instance is not None and base.instance.recipe.kind in (
                "modulelist", "moduledict"):
            if len(e.index) != 1 or e.index[0].kind in ("slice", "ellipsis"):
                raise SpecArgError("index a ModuleList with one integer, a ModuleDict with one key", e.span)
            key = self.fwd_expr(e.index[0], scope, env)
            inst = base.instance
            if inst.recipe.kind == "moduledict":
                if not isinstance(key, Val) or key.value not in inst.recipe.keys:
                    raise SpecNameError(f"{base.path} has no key {self.describe(key)}", e.index[0].span,
                                        hint=did_you_mean(str(key.value), inst.recipe.keys) if isinstance(key, Val)
                                        else None)
                i = inst.recipe.keys.index(key.value)
            else:
                n = len(inst.recipe.items)
                if not isinstance(key, Val) or not isinstance(key.value, int) or not -n <= key.value < n:
                    raise SpecArgError(f"index {self.describe(key)} is out of range for {base.path} ({n} modules)",
                                       e.index[0].span)
                i = key.value % n
            ref = ModRef(None, inst, f"{base.code}[{_code(key)}]", f"{base.path}.{i}")
            ref.index = i
            return ref
        if isinstance(base, Val):
            return self.static_subscript(e, base, scope, env)
        if isinstance(base, TupleVal):
            if len(e.index) != 1:
                raise SpecArgError("index a tuple with one integer", e.span)
            i = self.fwd_expr(e.index[0], scope, env)
            if not isinstance(i, Val) or not isinstance(i.value, int) or not -len(base.items) <= i.value < len(
                    base.items):
                raise SpecArgError(f"index {self.describe(i)} is out of range for {len(base.items)} values", e.span)
            item = base.items[i.value]
            code = f"{_wrap(base.code, base.prec, 14)}[{_code(i)}]"
            return TensorVal(item.info, code) if isinstance(item, TensorVal) else item
        if not isinstance(base, TensorVal):
            raise SpecArgError(f"cannot index {self.describe(base)}", e.value.span)
        return self.tensor_index(e, base, scope, env)

    def tensor_index(self, e, base: TensorVal, scope, env):
        shape = list(base.info.shape)
        out, pos, codes = [], 0, []
        n_real = sum(1 for i in e.index if i.kind != "ellipsis" and not (i.kind == "constant" and i.value is None))
        if n_real > len(shape):
            raise SpecShapeError(f"too many indices ({n_real}) for {base.info}", e.span)
        for item in e.index:
            if item.kind == "ellipsis":
                skip = len(shape) - pos - (n_real - len([c for c in codes if c != "..."]))
                out.extend(shape[pos: pos + skip])
                pos += skip
                codes.append("...")
                continue
            if item.kind == "constant" and item.value is None:
                out.append(Val(1))
                codes.append("None")
                continue
            if item.kind == "slice":
                parts = []
                vals = []
                for part in (item.lower, item.upper, item.step):
                    if part is None:
                        parts.append("")
                        vals.append(None)
                    else:
                        v = self.fwd_expr(part, scope, env)
                        if not isinstance(v, Val) or not isinstance(v.value, int):
                            raise SpecArgError("slice bounds are integers", part.span)
                        parts.append(_code(v))
                        vals.append(v.value)
                d = shape[pos]
                if vals == [None, None, None]:
                    out.append(d)
                elif isinstance(d.value, int):
                    if vals[2] is not None and vals[2] <= 0:
                        raise SpecArgError("slice step must be positive", item.span)
                    out.append(Val(len(range(d.value)[slice(*vals)])))
                else:
                    raise SpecShapeError(f"cannot slice the symbolic dim {d.value} with bounds", item.span)
                code = ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
                codes.append(code)
                pos += 1
                continue
            v = self.fwd_expr(item, scope, env)
            if not isinstance(v, Val) or not isinstance(v.value, int) or isinstance(v.value, bool):
                raise SpecArgError("index a tensor with integers, slices, None or ...", item.span)
            d = shape[pos].value
            if isinstance(d, int) and not -d <= v.value < d:
                raise SpecShapeError(f"index {v.value} is out of range for dim {pos} of {base.info} (size {d})",
                                     item.span)
            codes.append(_code(v))
            pos += 1
        out.extend(shape[pos:])
        code = f"{_wrap(base.code, base.prec, 14)}[{', '.join(codes)}]"
        return TensorVal(TensorInfo(tuple(out), base.info.dtype), code)

    def fwd_args(self, e: ir.Call, scope, env):
        args, kwargs = [], {}
        for a in e.args:
            if a.kind == "starred":
                v = self.fwd_expr(a.value, scope, env)
                if isinstance(v, Val) and isinstance(v.value, (tuple, list)):
                    args.extend(x if isinstance(x, Val) else Val(x) for x in v.value)
                    continue
                if isinstance(v, TupleVal):
                    args.extend(v.items)
                    continue
                raise SpecArgError("`*` unpacks a tuple or list", a.span)
            args.append(self.fwd_expr(a, scope, env))
        for kw in e.keywords:
            if kw.name in kwargs:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span)
            kwargs[kw.name] = self.fwd_expr(kw.value, scope, env)
        return args, kwargs

    def fwd_call(self, e: ir.Call, scope: Scope, env: dict):
        func = e.func
        # method call: x.view(...), x.size(0)
        if isinstance(func, ir.Attribute):
            dotted = self.dotted(func)
            head = dotted.split(".")[0] if dotted else None
            if head in ("F", "torch", "nn") and (head not in env):
                return self.fwd_function(e, dotted, scope, env)
            base = self.fwd_expr(func.value, scope, env)
            if isinstance(base, TensorVal):
                return self.fwd_method(e, base, func.attr, scope, env)
            raise SpecNameError(f"{self.describe(base)} has no method {func.attr!r}", func.span)
        callee = self.fwd_expr(func, scope, env) if not (isinstance(func, ir.Name) and func.id not in env) else None
        if isinstance(callee, ModRef):
            args, kwargs = self.fwd_args(e, scope, env)
            if kwargs:
                raise SpecArgError("modules are called with tensors, positionally", e.keywords[0].span)
            for a, ae in zip(args, e.args):
                if not isinstance(a, TensorVal):
                    raise SpecArgError(f"modules are called with tensors, not {self.describe(a)}", ae.span)
            return self.call_module(callee, args, [a.code for a in args], e.span, scope)
        if isinstance(func, ir.Name) and func.id not in env:
            if func.id in OPS or func.id in ("range", "len", "min", "max", "abs", "int", "float"):
                if func.id in ("range", "len", "min", "max", "abs", "int", "float"):
                    if func.id == "len":
                        v = self.fwd_expr(e.args[0], scope, env) if e.args else None
                        if isinstance(v, ModRef) and v.instance is not None:
                            return Val(len(v.instance.recipe.items), f"len({v.code})")
                    return self.builtin_call(func.id, e, scope, env)
                return self.fwd_function(e, func.id, scope, env)
            if func.id in CATALOG or func.id in self.blocks or func.id in CONTAINERS:
                raise SpecArgError(f"define {func.id}(...) as a child, then call the child in forward", e.span,
                                   hint=f"e.g. `{func.id.lower()} = {func.id}(...)` in the body")
            raise SpecNameError(f"undefined function {func.id!r}", func.span,
                                hint=did_you_mean(func.id, list(OPS) + list(scope.children)))
        raise SpecArgError(f"{self.describe(callee)} cannot be called", e.span)

    def fwd_function(self, e: ir.Call, dotted: str, scope, env):
        name = dotted.split(".")[-1]
        ns = dotted.rsplit(".", 1)[0] if "." in dotted else None
        op = OPS.get(name)
        if op is None or (ns is not None and ns not in ("F", "torch", "nn.functional", "torch.nn.functional")):
            raise SpecNameError(f"unknown function {dotted!r}", e.func.span,
                                hint=did_you_mean(name, list(OPS)))
        if op.function is None:
            raise SpecNameError(f"{name} is a tensor method: write x.{name}(...)", e.func.span)
        args, kwargs = self.fwd_args(e, scope, env)
        prefix = op.function
        if ns in ("F", "nn.functional", "torch.nn.functional") and op.function == "torch":
            prefix = "F" if name in ("relu", "gelu", "softmax", "log_softmax", "sigmoid", "tanh", "dropout") else "torch"
        elif ns == "torch" and name in ("relu", "softmax", "log_softmax", "sigmoid", "tanh", "dropout", "flatten",
                                        "cat", "stack", "matmul", "bmm"):
            prefix = "torch"
        return self.apply(op, e, args, kwargs, f"{prefix}.{name}", scope, method_on=None)

    def fwd_method(self, e: ir.Call, base: TensorVal, name: str, scope, env):
        op = OPS.get(name)
        if op is None or not op.method:
            raise SpecNameError(f"unknown tensor method {name!r}", e.func.span,
                                hint=did_you_mean(name, [n for n, o in OPS.items() if o.method]))
        args, kwargs = self.fwd_args(e, scope, env)
        return self.apply(op, e, [base] + args, kwargs, name, scope, method_on=base)

    def apply(self, op, e, args, kwargs, spelled, scope, method_on):
        def info(v):
            if isinstance(v, TensorVal):
                return v.info
            if isinstance(v, TupleVal):
                return Val([info(i) for i in v.items])
            return v

        try:
            result = apply_op(op, [info(a) for a in args], {k: info(v) for k, v in kwargs.items()})
        except ShapeProblem as exc:
            label = f"{spelled}" if method_on is None else f".{spelled}"
            raise SpecShapeError(_labelled(f"{label}(...)", str(exc)), e.span) from None
        arg_codes = [self.code_of(a) for a in (args[1:] if method_on is not None else args)]
        arg_codes += [f"{k}={self.code_of(v)}" for k, v in kwargs.items()]
        if op.training_arg and "training" not in kwargs:
            arg_codes.append("training=self.training")  # F.dropout defaults to training=True
        if method_on is not None:
            code = f"{_wrap(method_on.code, method_on.prec, 14)}.{spelled}({', '.join(arg_codes)})"
        else:
            code = f"{spelled}({', '.join(arg_codes)})"
        if op.macs is not None and isinstance(result, TensorInfo):
            self.add_macs(scope, op.macs(result, *[a.info if isinstance(a, TensorVal) else a for a in args[:2]]))
        if isinstance(result, TensorInfo):
            return TensorVal(result, code)
        if isinstance(result, list):
            return TupleVal([TensorVal(r, "?") for r in result], code)
        if isinstance(result, Val):
            if isinstance(result.value, tuple):
                return Val(result.value, code)
            return Val(result.value, code)
        return result

    def call_module(self, ref: ModRef, args: list, codes: list[str], span, scope: Scope, target=None):
        infos = [a.info for a in args]
        absent = ref.slot is not None and not ref.slot.present
        out = None
        if ref.slot is not None:
            slot = ref.slot
            if absent:
                # build it anyway, to print the class's other branch; it acts as identity here
                if slot.hypothetical is None:
                    saved = self.total_params
                    try:
                        slot.hypothetical = self.instantiate(slot.recipe, infos, scope, slot.name)
                        out = slot.hypothetical.call(infos, span)
                    except SpecError:
                        slot.hypothetical = None
                    self.total_params = saved
                elif slot.hypothetical is not None:
                    out = slot.hypothetical.call(infos, span)
            else:
                if slot.instance is None:
                    slot.instance = self.instantiate(slot.recipe, infos, scope, slot.name, span)
                out = slot.instance.call(infos, span)
        else:
            inst = self.element(ref.instance, ref.index, infos, span)
            out = inst.call(infos, span)
        call_code = f"{ref.code}({', '.join(codes)})"
        if ref.slot is not None and ref.slot.cond_code is not None:
            # an absent child acts as identity; both cases print as torchvision writes them
            if len(args) != 1:
                raise SpecArgError("a conditional child takes one input", span)
            if isinstance(out, list):
                raise SpecArgError("a conditional child must return one tensor", span)
            result = infos[0] if absent else out
            if target is not None and codes[0] == target:
                var = target
            else:
                var = self.fresh(scope, f"{ref.slot.name}_out")
                scope.emit(f"{var} = {codes[0]}", [infos[0].shape])
            scope.emit(f"if {ref.code} is not None:")
            scope.indent += 1
            scope.emit(f"{var} = {call_code}", [out.shape] if out is not None else [])
            scope.indent -= 1
            return TensorVal(result, var)
        if isinstance(out, list):
            return TupleVal([TensorVal(o, "?") for o in out], call_code)
        return TensorVal(out, call_code)

    def fresh(self, scope: Scope, base: str) -> str:
        name, n = base, 2
        while name in scope.locals or name in scope.env:
            name, n = f"{base}{n}", n + 1
        scope.locals.add(name)
        return name


def _set_depths(node: ModuleNode, depth: int):
    node.depth = depth
    for c in node.children:
        _set_depths(c, depth + 1)


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


def elaborate(spec: ir.SpecFile, model: str | None = None, *, limits: Limits | None = None,
              imported: dict | None = None) -> ModelGraph:
    """Elaborate one model of a parsed spec into its model graph.

    >>> from modelspec.parse import parse
    >>> g = elaborate(parse("model M(x: [B, 784]) { fc = Linear(_, 10) }"))
    >>> g.root.children[0].args["in_features"]
    784
    """
    return Elaborator(spec, limits, imported).model(model)
