"""Compile-time expressions: consts, block arguments, conditions, module recipes.

Every value comes back as a `Val` carrying the expression that spells it in
the class being generated (``k // 2``, ``planes``), or as a `Recipe`.
"""

from __future__ import annotations

import keyword
import re

from . import expr as E
from . import ir
from .errors import (
    SHOWN,
    SpecArgError,
    SpecLimitError,
    SpecNameError,
    did_you_mean,
    suggest,
)
from .layers import CATALOG, NOT_LAYERS
from .layers.base import MODULE, INFER
from .names import is_attribute_name, name_problem
from .ops import F_NAMES, NO_DEFAULT, OPS
from .printer import source
from .shapes import InputSlot, Sym, Val, const_expr
from .values import (
    CONTAINERS,
    Elaboration,
    ChildSlot,
    ListVal,
    Mode,
    ModuleView,
    ModRef,
    ParamRef,
    Recipe,
    Scope,
    TensorVal,
    TupleVal,
    _py_binop,
    _real,
    expr_of,
    literal,
)


MAX_STRING = 10_000  # characters in a string built by `+`: names and keys are short
# in consts, arguments and forward
BUILTIN_CALLS = ("range", "len", "min", "max", "abs", "int", "float", "round", "str")


class Repeat(list):
    """The modules a comprehension made, and the count it ran over (``range(depth)``) when each pass is the
    same module, so a container can print ``[m for _ in range(depth)]`` and keep honouring ``depth``."""

    def __init__(self, items, over: Val | None):
        super().__init__(items)
        self.over = over


def _ir_names(node) -> "E.Name":
    """The names a surface-IR expression mentions, as a modelspec.expr tuple for names_in."""
    out = []

    def walk(n):
        if isinstance(n, list):
            for x in n:
                walk(x)
        elif isinstance(n, ir.Node):
            if isinstance(n, ir.Name):
                out.append(E.Name(n.id))
            for _, v in n:
                if isinstance(v, (list, ir.Node)):
                    walk(v)

    walk(node)
    return tuple(out)


def spelled(value, node, *operands) -> Val:
    """A condition keeps its expression only where it names something (``stride != 1``); one on literals
    alone (``0 == 0``) is reduced to its value, as arithmetic is not (``28 * 28`` reads as the spec wrote it)."""
    if any(isinstance(o, Val) and o.expr is not None and E.names_in(o.expr) for o in operands):
        return Val(value, node)
    return Val(value)


_MODULE_ARG_HINT = "sizes are numbers; define the module as a child of its own and call it in forward"


def quoted_child_hint(name: str, env: dict) -> str | None:
    """A hint where ``name`` (``block1``, ``block1_0``, or the string ``"block1-0"``) looks meant for a child
    named by a string, which forward cannot name: ``block1-0`` reads as ``block1 - 0``, a string is a value."""
    for n, v in env.items():
        if isinstance(v, ChildSlot) and not is_attribute_name(n) and name and (
                n == name or n.startswith(name) or re.sub(r"\W", "_", n) == name):
            ident = re.sub(r"\W", "_", n)
            ident = ident if is_attribute_name(ident) else "name"
            return (f'the child "{n}" is named by a string, which forward cannot name: to call it, name it with '
                    f"an identifier, {ident} = ...; without a forward, children run in order, however named")
    return None


FIXED_WIDTH = 60  # characters of an expression a hint shows rewritten; past it, the one name to rewrite
# Other languages' spellings of Python's constants, as `bias=false` writes one
LITERAL_SPELLINGS = {"true": "True", "false": "False", "none": "None", "null": "None"}


def without_self(node) -> str:
    """A surface-IR expression as the spec writes it, every ``self.`` of a PyTorch class taken off.

    >>> from modelspec.parse import parse
    >>> without_self(parse("model M(x: [B, 4]) { forward(x) { return self.fc(self.drop(x)) } }").items[0]
    ...              .body[0].body[0].values[0])
    'fc(drop(x))'
    """
    return re.sub(r"\bself\.", "", source(node))


def self_attribute_in(node) -> "ir.Attribute | None":
    """The first ``self.NAME`` a surface-IR expression holds, as a PyTorch class spells its attributes."""
    if isinstance(node, list):
        return next((a for a in map(self_attribute_in, node) if a is not None), None)
    if not isinstance(node, ir.Node):
        return None
    if isinstance(node, ir.Attribute) and isinstance(node.value, ir.Name) and node.value.id == "self":
        return node
    return next((a for _, v in node if (a := self_attribute_in(v)) is not None), None)


_MODULE_CLASSES = {n.lower(): n for n in (*CATALOG, *CONTAINERS)}  # relu -> ReLU


def miscased_module(dotted: str) -> str | None:
    """The module class a name in another case stands for, as the tutorials' ``nn.relu()`` stands for
    ``nn.ReLU()`` (torch.nn's classes are CamelCase; ``F.relu`` is the function), in the namespace as written;
    None for any other name.

    >>> miscased_module("nn.relu"), miscased_module("Gelu"), miscased_module("nn.ReLU"), miscased_module("F.relu")
    ('nn.ReLU', 'GELU', None, None)
    """
    ns, _, name = dotted.rpartition(".")
    meant = _MODULE_CLASSES.get(name.lower())
    if ns not in ("", "nn", "torch.nn") or meant is None or meant == name:
        return None
    return f"{ns}.{meant}" if ns else meant


def miscased_module_error(e: ir.Call, meant: str, dotted: str, on_tensors: bool = False) -> SpecNameError:
    """``nn.relu()``: the module, spelt with its arguments as written (``on_tensors``: they are tensors, for
    the module made and called at once, ``nn.GELU()(x)``); where the name is the function's, what that is."""
    name = dotted.rpartition(".")[2]
    hint = f"did you mean {meant}{'()' if on_tensors else ''}{source(e)[len(source(e.func)):]}?"
    op = OPS.get(name)
    if name.islower() and name in F_NAMES and op is not None:
        rest = [p for p, d in op.params[1:] if d is NO_DEFAULT and not p.startswith("*")]
        hint += f" (the module; F.{name}({', '.join(['x', *rest])}) is the function)"
    return SpecNameError(f"{dotted}(...) is no module: torch.nn's module classes are spelled in CamelCase",
                         e.func.span, hint=hint)


def call_it_hint(v, scope: Scope) -> str | None:
    """``call it: flatten(x)``, where forward uses a child module as a value (returns it, adds it, passes it to
    another module); None for anything else."""
    if not isinstance(v, ModRef) or not is_attribute_name(v.path):
        return None
    inputs = getattr(scope, "forward_params", None) or ["x"]  # the spelling of forward's own input
    return f"call it: {v.path}({inputs[0]})"


def not_a_layer(dotted: str, model: str = "Net") -> str | None:
    """What to write instead of a name torch (or Keras) has that is no layer here, as in ``x = OrderedDict()``
    or ``opt = optim.Adam(...)`` (in ``model``); None for any other name.

    >>> not_a_layer("LazyConv2d")
    'write Conv2d(_, ...): `_` infers from the input what LazyConv2d leaves to its first call'
    >>> not_a_layer("torch.optim.SGD", "Mlp")
    "an optimizer is a setting of the model's train section: train Mlp { optimizer = SGD(lr=1e-3) }"
    """
    name = dotted.rsplit(".", 1)[-1]
    if name in NOT_LAYERS:
        return NOT_LAYERS[name].replace("{model}", model)
    if name.startswith("Lazy") and name[4:] in CATALOG:
        return f"write {name[4:]}(_, ...): `_` infers from the input what {name} leaves to its first call"
    from .optim import OPTIMIZERS, SCHEDULERS

    if name in OPTIMIZERS:
        return (f"an optimizer is a setting of the model's train section: "
                f"train {model} {{ optimizer = {name}(lr=1e-3) }}")
    if name in SCHEDULERS:
        return f"a scheduler is a setting of the model's train section: train {model} {{ scheduler = {name}(...) }}"
    return None


class StaticEvaluator:
    """Evaluation before any tensor flows: consts, arguments, conditions, module recipes."""

    def __init__(self, state: Elaboration):
        self.state = state
        self.writes_self: bool | None = None  # whether the spec writes `self.NAME` anywhere (see mentions_self)

    def mentions_self(self, e) -> "ir.Attribute | None":
        """The first ``self.NAME`` in ``e``; looked for only where the spec, or a block it imports, writes one
        (the spec is walked once: a call would otherwise walk its arguments on every loop pass)."""
        if self.writes_self is None:
            self.writes_self = self_attribute_in([*self.state.spec.items, *self.state.blocks.values()]) is not None
        return self_attribute_in(e) if self.writes_self else None

    def eval_static(self, e, scope: Scope, env: dict, allow_modules: bool = False):
        """Evaluate a compile-time expression to a `Val` (or a `Recipe`)."""
        self.state.step(e.span)
        k = e.kind
        if k == "constant":  # an integer literal is spelled so wherever its value goes (a size it sets, too)
            return Val(e.value, E.Constant(e.value) if type(e.value) is int else None)
        if k == "infer":
            raise SpecArgError("`_` stands only for a layer argument to infer", e.span,
                               hint='use `_` in a layer call, e.g. Linear(_, 10)')
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
            return Val(value, const_expr(value))
        if k == "listcomp":
            return self.list_comp(e, scope, env, allow_modules)
        if k == "binop":
            a = self.eval_static(e.left, scope, env)
            b = self.eval_static(e.right, scope, env)
            return self.static_binop(e, a, b)
        if k == "unaryop":
            if e.op == "~":
                raise SpecArgError("`~` inverts a bool or integer tensor, in forward", e.span,
                                   hint="for a compile-time condition write `not`")
            a = self._num(self.eval_static(e.operand, scope, env), e.operand)
            v = -a.value if e.op == "-" else a.value
            return Val(v, E.UnaryOp(e.op, expr_of(a)))
        if k in ("boolop", "not", "compare", "ifexp"):
            return self.static_logic(e, scope, env)
        if k == "subscript":
            base = self.eval_static(e.value, scope, env)
            return self.static_subscript(e, base, scope, env)
        if k == "call":
            return self.static_call(e, scope, env, allow_modules)
        if k == "attribute":
            if (self.dotted(e) or "").startswith("self."):
                raise self.self_attribute(e, scope, env)
            raise SpecNameError(f"unknown name {self.dotted(e) or e.attr!r}", e.span,
                                hint='names here are consts and block parameters')
        raise SpecArgError(f"a {k} is not allowed here", e.span,
                           hint='sizes and arguments are numbers, strings, tuples, names and arithmetic')

    def lookup_static(self, e: ir.Name, scope: Scope, env: dict, allow_modules: bool,
                      values: list[str] | None = None):
        """The compile-time value of a name; ``values``, in forward: the inputs and the names it has assigned
        (for the hint where the name is undefined)."""
        if e.id in env:
            v = env[e.id]
            if isinstance(v, Val):
                return v
            if isinstance(v, ChildSlot):
                if allow_modules:
                    return self.shared_recipe(e, v)
                raise SpecArgError(f"child {e.id!r} cannot be used as a value here", e.span,
                                   hint=f"{e.id} is a module, no value: to use its output, call it in forward, "
                                        f"{e.id}(x)")
            if isinstance(v, (TensorVal, ParamRef)):
                raise SpecArgError(f"{e.id!r} is a tensor; here a compile-time value is needed", e.span,
                                   hint='use a number, a const or a block parameter')
            return v
        if e.id in self.state.consts:
            return self.state.consts[e.id]
        if e.id in CATALOG or e.id in CONTAINERS or e.id in self.state.blocks:
            raise SpecArgError(f"{e.id} must be called: {e.id}(...)", e.span,
                               hint='write it as a call, e.g. Linear(_, 10)')
        below = _real(scope).body_children.get(e.id)
        if below is not None and (below.line, below.column) > (e.span.line, e.span.column):
            raise SpecNameError(f"{e.id!r} is defined below, at line {below.line}: a body's names are used after the "
                                f"line that defines them", e.span,
                                hint=f"move `{e.id} = ...` above this line: __init__ makes the children, and "
                                     f"computes the values, in the order the spec writes them")
        raise SpecNameError(f"undefined name {e.id!r}", e.span, hint=quoted_child_hint(e.id, env)
                            or self.undefined_hint(e.id, env, values))

    def self_attribute(self, e: ir.Attribute, scope: Scope, env: dict, written=None,
                       forward: bool = False) -> SpecNameError:
        """``self.fc``, as a PyTorch class spells its attributes: a spec names its children, params, buffers and
        values without ``self.``, and forward reads ``self.training`` as ``training``. ``e``: an attribute whose
        value begins ``self.`` (the innermost is taken); ``written``: the expression to show fixed, where the
        caller has one (the call ``self.fc(x)``)."""
        while isinstance(e.value, ir.Attribute):  # self.transformer.wte: the child is transformer
            e = e.value
        name, reads = e.attr, "forward reads" if forward else "the body reads"
        whole = without_self(written) if written is not None else ""
        fixed = f"write {whole if 0 < len(whole) <= FIXED_WIDTH else without_self(e)}"
        v = env.get(name)
        if isinstance(v, ChildSlot):
            what = f"the child {name}"
        elif isinstance(v, ParamRef):
            what = f"the {next((r[0] for r in _real(scope).raw if r[1] == name), 'param')} {name}"
        elif name in _real(scope).params:
            what = f"the block parameter {name}"
        elif v is not None or name in self.state.consts:
            what = f"the value {name}"
        elif name == "training" and forward:
            return SpecNameError("`self` is not needed in a spec: forward reads nn.Module's flag as `training`",
                                 e.span, hint=fixed)
        else:
            known = [n for n, v in env.items() if isinstance(v, (ChildSlot, ParamRef, Val)) and is_attribute_name(n)
                     and n not in scope.locals]
            return SpecNameError(f"`self` is not needed in a spec: {reads} children, params and values by their "
                                 f"names, and {scope.name} has no {name!r}", e.span,
                                 hint=suggest(name, known, "children, params and values"))
        return SpecNameError(f"`self` is not needed in a spec: {reads} {what} by its name", e.span, hint=fixed)

    def undefined_hint(self, name: str, env: dict, values: list[str] | None) -> str:
        """What to do about an undefined name: the one it is a slip for; else, in forward (``values``: its
        inputs and the names it has assigned, by here), define it; else the consts and parameters there are."""
        if name.lower() in LITERAL_SPELLINGS:
            return f"did you mean {LITERAL_SPELLINGS[name.lower()]}?"
        consts = [n for n, v in {**self.state.consts, **env}.items() if isinstance(v, Val) and is_attribute_name(n)]
        if values is None:
            return suggest(name, consts, "consts and parameters")
        others = [n for n, v in env.items() if isinstance(v, (ChildSlot, ParamRef)) and is_attribute_name(n)]
        close = did_you_mean(name, values + others + consts)
        if close is not None:
            return close
        shown = ", ".join(values[:SHOWN]) + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")
        return f"define it before this line: {name} = ..." + (f"; the values defined here: {shown}" if values else "")

    def _num(self, v, e):
        if not isinstance(v, Val) or isinstance(v.value, bool) or not isinstance(v.value, (int, float, Sym)):
            raise SpecArgError(f"expected a number, got {self.describe(v)}", e.span,
                               hint='use a number, a const or a block parameter')
        return v

    def describe(self, v) -> str:
        if isinstance(v, Val) and isinstance(v.value, Mode):
            return "a number that depends on training"
        if isinstance(v, Val):
            return literal(v.value) if not isinstance(v.value, Sym) else str(v.value)
        if isinstance(v, Recipe):
            return f"a {v.name} module"
        if isinstance(v, TensorVal):
            return f"a tensor {v.info}"
        if isinstance(v, ListVal):
            return f"a list of {len(v.items)} values"
        if isinstance(v, TupleVal):
            return f"a tuple of {len(v.items)} values"
        if isinstance(v, ModuleView):
            return f"`{v.ref.path}.{v.what}()`"
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
            raise SpecArgError("`@` multiplies tensors; use it in forward", e.span, hint='write x @ W inside forward')
        if e.op in ("&", "|", "^"):
            raise SpecArgError(f"`{e.op}` combines bool or integer tensors, in forward", e.span,
                               hint="for a compile-time condition write `and`, `or`, `!=`")
        if e.op == "+" and isinstance(a, Val) and isinstance(a.value, (tuple, list)) and isinstance(b, Val) \
                and isinstance(b.value, type(a.value)):
            value = a.value + b.value
            if len(value) > self.state.limits.max_unroll:  # doubling a tuple line by line would exhaust memory
                raise SpecLimitError(f"the {type(value).__name__} would hold {len(value):,} items, over the limit "
                                     f"of {self.state.limits.max_unroll:,}", e.span, hint="build shorter sequences")
            return Val(value, E.BinOp("+", expr_of(a), expr_of(b)))
        if e.op == "+" and isinstance(a, Val) and isinstance(a.value, str) and isinstance(b, Val) \
                and isinstance(b.value, str):
            if len(a.value) + len(b.value) > MAX_STRING:
                raise SpecLimitError(f"the string would hold {len(a.value) + len(b.value):,} characters, over the "
                                     f"limit of {MAX_STRING:,}", e.span, hint="names are short")
            return Val(a.value + b.value, E.BinOp("+", expr_of(a), expr_of(b)))
        self._num(a, e.left)
        self._num(b, e.right)
        if e.op in ("/", "//", "%") and b.value == 0:
            raise SpecArgError("division by zero", e.span, hint='check the divisor: it is 0 here')
        if e.op == "**":
            if isinstance(b.value, int) and abs(b.value) > 64 or isinstance(a.value, Sym):
                raise SpecArgError(f"the power {literal(a.value)} ** {literal(b.value)} is out of range", e.span,
                                   hint='keep powers small: exponents up to 64')
        try:
            value = _py_binop(e.op, a.value, b.value)
            if isinstance(value, complex):  # (-8) ** 0.5
                raise TypeError
        except (TypeError, OverflowError):
            raise SpecArgError(f"cannot compute {self.describe(a)} {e.op} {self.describe(b)}", e.span,
                               hint="arithmetic here is on real numbers and sizes") from None
        if isinstance(value, int) and abs(value) > 10**18:
            # str() of a huge int is slow, and refused past 4300 digits
            sign = "-" if value < 0 else ""
            shown = value if abs(value) < 10**40 else f"about {sign}10**{value.bit_length() * 3 // 10}"
            raise SpecLimitError(f"the number {shown} is out of range: sizes and counts go up to 10**18", e.span,
                                 hint="no tensor has a size or count that large: look for a slip in a number or "
                                      "an exponent")
        return Val(value, E.BinOp(e.op, expr_of(a), expr_of(b)))  # `28 * 28` stays as the spec wrote it

    def static_logic(self, e, scope, env, evaluate=None):
        """A condition on compile-time values; ``evaluate`` reads each operand (forward passes the values it
        has already found, such as ``x.shape[1]``)."""
        k = e.kind
        operand = evaluate or (lambda x: self.eval_static(x, scope, env))
        if k == "not":
            a = operand(e.operand)
            return spelled(not a.value, E.Not(expr_of(a)), a)
        if k == "boolop":
            a = operand(e.left)
            b = operand(e.right)
            value = (a.value and b.value) if e.op == "and" else (a.value or b.value)
            return spelled(value, E.BoolOp(e.op, expr_of(a), expr_of(b)), a, b)
        if k == "compare":
            left = operand(e.left)
            operands = [left]
            result, first, ops, comps = True, expr_of(left), [], []
            for op, comp in zip(e.ops, e.comparators):
                right = operand(comp)
                try:
                    ok = self._compare(op, left.value, right.value)
                except TypeError:
                    raise SpecArgError(f"cannot compare {self.describe(left)} {op} {self.describe(right)}",
                                       e.span, hint='compare numbers with numbers, strings with strings') from None
                result = result and ok
                ops.append(op)
                comps.append(expr_of(right))
                operands.append(right)
                left = right
            return spelled(result, E.Compare(first, tuple(ops), tuple(comps)), *operands)
        if k == "ifexp":
            t = self.eval_static(e.test, scope, env)
            a = self.eval_static(e.body, scope, env, allow_modules=True)
            b = self.eval_static(e.orelse, scope, env, allow_modules=True)
            chosen = a if t.value else b
            if not (isinstance(a, Val) and isinstance(b, Val)):
                _real(scope).bake(t)  # a module chosen: only it is printed
            if isinstance(chosen, Val) and isinstance(a, Val) and isinstance(b, Val):
                if t.expr is None or not E.names_in(t.expr):
                    return chosen  # the test is a literal: only the chosen branch is left
                return spelled(chosen.value, E.IfExp(expr_of(t), expr_of(a), expr_of(b)), t, a, b)
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
            raise SpecArgError(f"cannot index {self.describe(base)}", e.value.span,
                               hint='index a tensor, a tuple or a ModuleList')
        if len(e.index) != 1 or e.index[0].kind in ("slice", "ellipsis"):
            raise SpecArgError("index a compile-time tuple with one integer", e.span, hint="write sizes[0]")
        i = self.eval_static(e.index[0], scope, env)
        if not isinstance(i.value, int) or isinstance(i.value, bool):
            raise SpecArgError(f"an index must be an integer, not {self.describe(i)}", e.index[0].span,
                               hint='index with an integer such as 0 or -1')
        n = len(base.value)
        if not -n <= i.value < n:
            raise SpecArgError(f"index {i.value} is out of range for {n} items", e.index[0].span,
                               hint='count from 0; -1 is the last')
        item = base.value[i.value]
        if isinstance(item, Val):
            if item.slot is not None and item.slot.owner is _real(scope) and scope.kind == "block":
                # in_shape[i] names a block input dim: a constructor parameter of the class
                if item.slot.name is None:
                    item.slot.name = scope.new_ctor_param(self._slot_default_name(item.slot, n), slot=item.slot)
                return item
            if base.expr is not None:  # K[0], x.shape[1]: spelled as the spec indexes it
                return Val(item.value, E.Subscript(base.expr, (expr_of(i),)))
            if item.expr is not None:
                return item
            return Val(item.value)
        return Val(item, E.Subscript(expr_of(base), (expr_of(i),)))

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
                               e.iter.span, hint='write [Linear(8, 8) for _ in range(3)]')
        if len(it.value) > self.state.limits.max_unroll:
            limit = self.state.limits.max_unroll
            raise SpecLimitError(f"the loop would unroll {len(it.value)} times; the limit is {limit}",
                                 e.iter.span, hint="raise Limits.max_unroll if this is intended")
        self.count_unrolled(len(it.value), e.iter.span)
        out = []
        for item in it.value:
            inner = dict(env)
            if e.var != "_":
                inner[e.var] = _loop_value(item, e.iter)
            out.append(self.eval_static(e.element, scope, inner, allow_modules))
        if any(isinstance(v, Recipe) for v in out):
            return Repeat(out, it if e.var == "_" or e.var not in E.names_in(_ir_names(e.element)) else None)
        _real(scope).bake(it)  # the list is printed item by item
        return Val(out, const_expr(out))

    def named_items(self, d, scope, env, check_key, keys: list, add) -> None:
        """The named modules of a ModuleDict or Sequential: a dict, or a dict comprehension. ``check_key`` says
        what is wrong with a key (a located error, or a (message, hint) naming problem); each key is printed as
        the string it is, so what it is made of is fixed in the class."""
        for k, v, inner in self.dict_items(d, scope, env):
            key = self.eval_static(k, scope, inner)
            problem = check_key(key, k.span)
            if problem is not None:
                raise SpecNameError(problem[0], k.span, hint=problem[1])
            if key.value in keys:
                raise SpecNameError(f"key {key.value!r} appears twice", k.span, hint="keep one of them")
            _real(scope).bake(key)
            keys.append(key.value)
            add(self.eval_static(v, scope, inner, allow_modules=True), v.span)

    def dict_items(self, d, scope, env):
        """The (key, value, names) of a dict literal, of each pass of a dict comprehension, or of each pair of
        ``OrderedDict([("fc", Linear(...)), ...])`` (a list of pairs, or a comprehension of them)."""
        if d.kind == "dict":
            return [(k, v, env) for k, v in zip(d.keys, d.values)]
        if d.kind == "call":
            return self.ordered_items(d, scope, env)
        return [(d.key, d.value, inner) for inner in self.comprehension_passes(d, scope, env)]

    def ordered_items(self, d: ir.Call, scope, env):
        hint = 'write OrderedDict([("fc", Linear(784, 10)), ("act", ReLU())])'
        pairs = d.args[0] if len(d.args) == 1 and not d.keywords else None
        if pairs is None or pairs.kind not in ("list", "tuple", "listcomp"):
            raise SpecArgError("OrderedDict takes one list of (name, module) pairs", d.span, hint=hint)
        items = [(x, env) for x in pairs.items] if pairs.kind != "listcomp" else [
            (pairs.element, inner) for inner in self.comprehension_passes(pairs, scope, env)]
        for x, _ in items:
            if x.kind != "tuple" or len(x.items) != 2:
                raise SpecArgError("each item of an OrderedDict is a (name, module) pair", x.span, hint=hint)
        return [(x.items[0], x.items[1], inner) for x, inner in items]

    def comprehension_passes(self, d, scope, env) -> list[dict]:
        """The names of each pass of a comprehension whose items are printed one by one."""
        it = self.eval_static(d.iter, scope, env)
        if not isinstance(it, Val) or not isinstance(it.value, (tuple, list)):
            raise SpecArgError(f"a comprehension loops over a list, tuple or range(...), not {self.describe(it)}",
                               d.iter.span, hint="write {'layer' + str(i): Linear(8, 8) for i in range(3)}")
        self.count_unrolled(len(it.value), d.iter.span)
        _real(scope).bake(it)  # the dict is printed key by key: the count is fixed in the class
        passes = []
        for item in it.value:
            inner = dict(env)
            if d.var != "_":
                inner[d.var] = _loop_value(item, d.iter)
            passes.append(inner)
        return passes

    def count_unrolled(self, n: int, span):
        """Loop passes add up over the whole model: nested loops and repeated blocks multiply them."""
        self.state.unrolled += n
        if self.state.unrolled > self.state.limits.max_unroll:
            raise SpecLimitError(f"loops would run more than {self.state.limits.max_unroll:,} passes in all", span,
                                 hint="fewer or shorter loops; or pass limits=Limits(max_unroll=...) if intended")

    # -- calls at definition time: modules and a few builtins
    def static_call(self, e: ir.Call, scope, env, allow_modules):
        fname = self.dotted(e.func)
        if (found := self.mentions_self(e)) is not None and "self" not in env:  # Sequential(self.flatten, ...)
            raise self.self_attribute(found, scope, env, written=e)
        if fname is None:
            raise SpecArgError("only layers, blocks and range(...) can be called here", e.func.span,
                               hint='call a layer, a block, range, len, min, max, abs, int, float or round')
        bare = fname.removeprefix("torch.").removeprefix("nn.")
        if fname in BUILTIN_CALLS:
            return self.builtin_call(fname, e, scope, env)
        if bare in CATALOG or bare in CONTAINERS or fname in self.state.blocks:
            if not allow_modules:
                raise SpecArgError(f"a module ({bare}) cannot be used as a value here", e.span,
                                   hint='call it in forward instead')
            return self.module_recipe(bare if fname not in self.state.blocks else fname, e, scope, env)
        if fname in OPS or bare.removeprefix("F.") in OPS or fname.startswith("F."):
            if miscased_module(fname) is not None:  # relu = nn.relu(), as tutorial 001 comments it out
                raise miscased_module_error(e, miscased_module(fname), fname)
            raise SpecArgError(f"{fname}(...) works on tensors: call it in forward", e.span,
                               hint='move it into forward')
        candidates = list(CATALOG) + list(self.state.blocks) + list(CONTAINERS)
        blocks = f" (the blocks here: {', '.join(sorted(self.state.blocks))})" if self.state.blocks else ""
        models = self.state.spec.models()
        hint = not_a_layer(fname, models[0].name if len(models) == 1 else "Net")
        raise SpecNameError(f"unknown layer or block {bare!r}", e.func.span, hint=hint or suggest(
            bare, candidates, "layers and blocks", where="docs/language.md, section Layers" + blocks))

    def builtin_call(self, fname, e: ir.Call, scope, env, evaluate=None):
        """range, len, min, max, abs, int, float, round: on compile-time values (``evaluate`` reads each
        argument; forward passes its own, which spells parameters as ``self.n``)."""
        if e.keywords:
            raise SpecArgError(f"{fname}() takes no keyword arguments", e.keywords[0].span,
                               hint='pass the arguments by position')
        evaluate = evaluate or (lambda a: self.eval_static(a, scope, env))
        args = [evaluate(a) for a in e.args if a.kind != "starred"]
        for a, node in zip(args, e.args):
            if not isinstance(a, Val):
                raise SpecArgError(f"{fname}() takes compile-time values, not {self.describe(a)}", node.span,
                                   hint="sizes come from x.shape or x.size(i); tensors go to torch functions")
        vals = [a.value for a in args]
        code = E.call(fname, *[expr_of(a) for a in args])
        if fname == "range":
            if not 1 <= len(vals) <= 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                raise SpecArgError("range() takes 1 to 3 integers", e.span,
                                   hint='write range(n), range(a, b) or range(a, b, step)')
            if len(vals) == 3 and vals[2] == 0:
                raise SpecArgError("range() step must not be zero", e.span, hint='use a positive or negative step')
            r = range(*vals)
            n = max(0, -((r.start - r.stop) // r.step))  # len(r), which overflows past 2**63
            if n > self.state.limits.max_unroll:
                raise SpecLimitError(f"range of {n:,} items exceeds the unroll limit {self.state.limits.max_unroll:,}",
                                     e.span, hint="pass limits=Limits(max_unroll=...) if this is intended")
            return Val(tuple(Val(i) for i in r), code)  # spelled as the call, `range(3)`, not its items
        if fname == "str":  # names of children: "layer" + str(i + 1)
            if len(vals) != 1 or not isinstance(vals[0], (int, str)) or isinstance(vals[0], Sym):
                raise SpecArgError("str() takes one integer or string", e.span,
                                   hint='write "layer" + str(i + 1)')
            return spelled(str(vals[0]), code, *args)
        try:
            if fname == "len":
                return spelled(len(vals[0]), code, *args)
            fn = {"min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round}[fname]
            return spelled(fn(*vals), code, *args)
        except (TypeError, ValueError, IndexError, OverflowError):  # int(1e380) is int(inf)
            raise SpecArgError(f"invalid arguments to {fname}()", e.span,
                               hint=f"{fname}() takes finite numbers (and len() a tuple), as in Python") from None

    @staticmethod
    def dotted(e) -> str | None:
        if isinstance(e, ir.Name):
            return e.id
        if isinstance(e, ir.Attribute):
            base = StaticEvaluator.dotted(e.value)
            return f"{base}.{e.attr}" if base else None
        return None

    def shared_recipe(self, e: ir.Name, slot: ChildSlot) -> Recipe:
        """A child named where a module is taken (``Sequential(flatten, fc)``): the same module, held again, as
        ``nn.Sequential(self.flatten, self.fc)`` holds it; one set of parameters, the child's."""
        if slot.cond is not None:
            raise SpecArgError(f"child {e.id!r} is conditional: where its condition is False it is None, which no "
                               f"container can hold", e.span,
                               hint="hold a child that is always present (declared without `if`), or write the "
                                    "module in the container itself")
        if slot.recipe.kind in ("modulelist", "moduledict"):
            raise SpecArgError(f"child {e.id!r} is a {slot.recipe.name}, which holds modules but is not one to "
                               f"call: no container holds it again here", e.span,
                               hint=f"loop over {e.id} in forward, or write its modules in this container")
        return Recipe("shared", e.span, slot.recipe.name, shared=slot)

    def module_recipe(self, name, e: ir.Call, scope, env) -> Recipe:
        if name in CONTAINERS:
            return self.container_recipe(name, e, scope, env)
        args, arg_spans = [], []
        for a in e.args:
            if a.kind == "starred":
                v = self.eval_static(a.value, scope, env)
                if not isinstance(v, Val) or not isinstance(v.value, (tuple, list)):
                    raise SpecArgError("`*` unpacks a tuple or list", a.span,
                                       hint='write *[Linear(8, 8) for _ in range(3)] or *sizes')
                for x in v.value:
                    args.append(x if isinstance(x, Val) else Val(x))
                    arg_spans.append(a.span)
                continue
            args.append(INFER if a.kind == "infer" else self.eval_static(a, scope, env, allow_modules=True))
            arg_spans.append(a.span)
        kwargs, kw_spans = {}, {}
        for kw in e.keywords:
            if kw.name in kwargs:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span, hint="keep one of them")
            kwargs[kw.name] = INFER if kw.value.kind == "infer" else self.eval_static(
                kw.value, scope, env, allow_modules=True)
            kw_spans[kw.name] = kw.span
        layer = CATALOG.get(name) if name not in self.state.blocks else None
        module_args = {a.name for a in layer.args if a.type is MODULE} if layer else set()
        positional = [a.name for a in layer.args if not a.kw_only] if layer else []
        for i, (v, sp) in enumerate(zip(args, arg_spans)):
            if isinstance(v, (Recipe, list)) and (i >= len(positional) or positional[i] not in module_args):
                raise SpecArgError("a module cannot be an argument here", sp, hint=_MODULE_ARG_HINT)
        for k, v in kwargs.items():
            if isinstance(v, (Recipe, list)) and k not in module_args:
                raise SpecArgError("a module cannot be an argument here", kw_spans[k], hint=_MODULE_ARG_HINT)
        for v, sp in list(zip(args, arg_spans)) + [(v, kw_spans[k]) for k, v in kwargs.items()]:
            if isinstance(v, Recipe) and v.kind == "shared":  # TransformerEncoder deep-copies its encoder_layer
                raise SpecArgError(f"the child {v.shared.name!r} cannot be an argument of {name}: it copies the "
                                   f"module it is given, and the copies are not the child", sp,
                                   hint=f"write the module in place: {name}({v.name}(...), ...)")
        if name in self.state.blocks:
            return Recipe("block", e.span, name, args, kwargs, arg_spans, kw_spans, block=self.state.blocks[name])
        return Recipe("layer", e.span, name, args, kwargs, arg_spans, kw_spans)

    def container_recipe(self, name, e: ir.Call, scope, env) -> Recipe:
        items: list = []
        keys: list = []
        repeats: list[Repeat] = []
        if e.keywords and name == "Sequential":  # nn.Sequential(fc=...) is a TypeError: keywords name nothing
            kw = e.keywords[0]
            module = self.dotted(kw.value.func) if isinstance(kw.value, ir.Call) else None
            module = module.removeprefix("torch.").removeprefix("nn.") if module else "Module"
            raise SpecArgError("Sequential takes its modules positionally: a keyword does not name one", kw.span,
                               hint=f'name the layers with Sequential(OrderedDict([("{kw.name}", {module}(...)), '
                                    f'...]))')
        if e.keywords:
            raise SpecArgError(f"{name} takes its modules positionally", e.keywords[0].span,
                               hint='write Sequential(Linear(...), ReLU())')

        def add(v, span):
            if isinstance(v, Recipe):
                items.append(v)
            elif isinstance(v, (list, tuple)) and all(isinstance(x, Recipe) for x in v):
                items.extend(v)
                if isinstance(v, Repeat):
                    repeats.append(v)
            else:
                raise SpecArgError(f"{name} holds modules, not {self.describe(v)}", span,
                                   hint='hold modules such as Linear(8, 8)')

        if name == "Sequential" and any(a.kind in ("dict", "dictcomp") or _ordered_dict(a) for a in e.args):
            # named modules, as torchvision's nn.Sequential(OrderedDict(...)): keys as add_module takes them
            if len(e.args) != 1:
                raise SpecArgError("Sequential takes one dict of named modules, or modules without names; not both",
                                   e.span, hint='write Sequential({"conv": Conv2d(...), "act": ReLU()})')
            def sequential_key(key, span):
                if not isinstance(key, Val) or not isinstance(key.value, str):
                    raise SpecArgError(f"a Sequential's keys are strings, not {self.describe(key)}", span,
                                       hint='name each module in quotes: Sequential({"conv": Conv2d(...)})')
                return name_problem(key.value, "a Sequential key")

            self.named_items(e.args[0], scope, env, sequential_key, keys, add)
        elif name == "Sequential":
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
                raise SpecArgError("ModuleList takes one list of modules", e.span,
                                   hint='write ModuleList([Linear(8, 8), ReLU()])')
            if e.args:
                a = e.args[0]
                v = self.eval_static(a.value if a.kind == "starred" else a, scope, env, allow_modules=True)
                if v == [] or (isinstance(v, Val) and v.value == []):
                    v = []
                add(v, a.span)
        else:  # ModuleDict
            if len(e.args) != 1 or e.args[0].kind not in ("dict", "dictcomp") and not _ordered_dict(e.args[0]):
                raise SpecArgError("ModuleDict takes one dict {'name': Module(...), ...}", e.span,
                                   hint="write ModuleDict({'a': Linear(8, 8)}), or a comprehension: "
                                        "ModuleDict({'layer' + str(i): Linear(8, 8) for i in range(3)})")
            def moduledict_key(key, span):
                if isinstance(key.value, str) and keyword.iskeyword(key.value):
                    raise SpecArgError(f"{key.value!r} cannot be a ModuleDict key: it is a Python keyword, so "
                                       f"d.{key.value} could not read it", span,
                                       hint=f"choose another key, e.g. '{key.value}_'")
                if not isinstance(key.value, str) or not key.value.isidentifier():
                    raise SpecArgError("ModuleDict keys are names in quotes, like 'conv1'", span,
                                       hint="a key is a Python identifier: letters, digits and _")
                return name_problem(key.value, "a ModuleDict key")

            self.named_items(e.args[0], scope, env, moduledict_key, keys, add)
        repeat = None
        if len(repeats) == 1 and len(repeats[0]) == len(items) and repeats[0].over is not None:
            repeat = repeats[0].over  # printed as `[m for _ in range(depth)]` when every pass is the same module
        else:
            for r in repeats:  # printed module by module: the count is fixed in the class
                if r.over is not None:
                    _real(scope).bake(r.over)
        # modules are counted as built
        return Recipe(name.lower(), e.span, name, items=items, keys=keys, repeat=repeat)

    # -- building modules -------------------------------------------------------------


def _ordered_dict(e) -> bool:
    """``OrderedDict([...])``: named modules, as torch's containers take them."""
    return e.kind == "call" and StaticEvaluator.dotted(e.func) == "OrderedDict"


def _loop_value(item, iterable) -> Val:
    """A comprehension variable's value in one pass. Over a tuple or list written right there, it keeps the
    item's spelling (``width`` of ``(8, width)``), which is this class's; items of a value passed in are
    spelled in the caller's terms, so those are plain values."""
    if isinstance(item, Val) and iterable.kind in ("tuple", "list"):
        return item
    return Val(item.value if isinstance(item, Val) else item)
