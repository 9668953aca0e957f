"""Forward as dataflow on shapes: statements, calls, operators, indexing.

Each statement is evaluated on `TensorInfo` shapes and emitted as a line of
the generated ``forward`` with its shape comment.
"""

from __future__ import annotations

import dataclasses

from . import expr as E
from . import ir
from .errors import (
    nearest,
    SpecArgError,
    SpecError,
    SpecLimitError,
    SpecNameError,
    SpecShapeError,
    suggest,
)
from .layers import CATALOG
from .layers.base import ShapeProblem
from .lint import op_feature_map, op_warnings
from .model import Line, TensorInfo
from .ops import (BROADCAST_HINT, F_NAMES, F_SPELLINGS, OPERATORS, OPS, TORCH_DTYPES, TORCH_NAMES, UNTRACKED_DTYPES,
                  Device, DType, apply_op, function_prefix, matmul_macs, matmul_note, matmul_rule, op_indexes, op_macs,
                  op_needs, op_note, op_signature, operator_rule, result_contiguous, SAME_VALUES, slice_len, unary_rule)
from .printer import CODE, flat, source
from .static import (BUILTIN_CALLS, StaticEvaluator, call_it_hint, miscased_module, miscased_module_error,
                     quoted_child_hint)
from .names import child_name, is_attribute_name, name_problem
from .shapes import ExprTooLarge, Sym, Val, evaluate, shape_str
from .modules import _flat_infos
from .values import (
    CONTAINERS,
    Elaboration,
    ChildSlot,
    ListVal,
    Mode,
    ModRef,
    ModuleView,
    ParamRef,
    Scope,
    TensorVal,
    TupleVal,
    _labelled,
    expr_of,
)

MAX_LOOP_NESTING = 16  # for loops inside for loops; Python compiles at most 20 nested blocks


# torch's products of 1-d and 2-d tensors that matmul covers, and how a spec writes each
MATMUL_SPELLINGS = {"mm": "torch.matmul(a, b), or a @ b", "mv": "torch.matmul(a, v), or a @ v",
                    "dot": "torch.matmul(a, b), or a @ b"}


class ForwardEvaluator:
    """The generated forward, statement by statement, evaluated on shapes."""

    def __init__(self, state: Elaboration, static, modules, bodies):
        self.state, self.static, self.modules, self.bodies = state, static, modules, bodies

    def implicit_forward(self, scope: Scope, env: dict, params: list[str], span):
        if len(params) != 1:
            raise SpecArgError(f"{scope.name} has {len(params)} inputs: write a forward to say how they flow", span,
                               hint='add forward(x, y) { ... } naming each input')
        if any(r[0] == "param" for r in scope.raw):
            raise SpecArgError(f"{scope.name} has raw parameters: write a forward to say how they are used", span,
                               hint='add a forward that uses the parameter, e.g. return x @ W')
        x = env[params[0]]
        var = params[0]
        if not scope.children:
            raise SpecArgError(f"{scope.name} has no children and no forward", span,
                               hint='add a child such as fc = Linear(_, 10), or a forward')
        ran: list[ChildSlot] = []
        for slot in scope.children.values():
            ref = ModRef(slot, None, E.attr(E.SELF, slot.name), slot.name)
            try:
                out = self.call_module(ref, [x], [], slot.recipe.span, scope, target=var)
            except SpecShapeError as err:
                raise self.run_twice(err, slot, ran, scope, var, x.info.shape != env[var].info.shape) from None
            ran.append(slot)
            if isinstance(out, TupleVal):
                raise SpecShapeError(f"child {slot.name!r} returns several tensors; without a forward, "
                                     f"children run in order and each must return one", slot.span,
                                     hint='write a forward that unpacks its results')
            x = TensorVal(out.info, E.Name(var), src=out.src)
            if slot.cond is None:
                scope.emit(E.Assign(var, out.expr), [out.info.shape])
        scope.emit(E.Return((E.Name(var),)), [x.info.shape])
        scope.step("output", "output", [x.src], [x.info.shape])
        # children that always run in order are what nn.Sequential's own forward does, without a look-up each
        scope.sequential = all(slot.cond is None for slot in scope.children.values())
        return [x.info]

    @staticmethod
    def run_twice(err: SpecShapeError, slot: ChildSlot, ran: list[ChildSlot], scope: Scope, var: str,
                  moved: bool):
        """The error ``slot`` met in a body without forward, said for what it is where a container holds
        children declared above it, as tutorial 003's ``seq_modules = nn.Sequential(flatten, layer1, ...)``
        does: every child runs in turn, so the container runs those children a second time (or one of them
        ran on its own before it). ``moved``: the children before ``slot`` changed the input's shape, so the
        container would not meet this error run alone. Any other error comes back as it was."""
        order = ", ".join(scope.children)
        done = {s.name for s in ran}
        again = [r for r in _held(slot.recipe) if r.shared.name in done]
        holder = next((s for s in scope.children.values() if any(r.shared is slot for r in _held(s.recipe))), None)
        if not again:
            first = holder.recipe if holder is not None else None
            while first is not None and first.items:
                first = first.items[0]
            if holder is None or first.kind == "shared" and first.shared is slot:
                return err  # held first, the child would meet the same input inside its container
            return SpecShapeError(f"without a forward, the children run one after another: {order}; so {slot.name} "
                                  f"runs on its own before {holder.name}, which holds it, runs it: {err.message}",
                                  err.span, hint=f"to run only {holder.name}, write forward({var}) {{ return "
                                                 f"{holder.name}({var}) }}")
        if not moved:  # the container meets the model's input: running it alone would not help
            return err
        hint = f"to run only {slot.name}, write forward({var}) {{ return {slot.name}({var}) }}"
        names = list(dict.fromkeys(r.shared.name for r in again))
        names = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        said = f"without a forward, the children run one after another: {order}; so {slot.name} runs {names} a " \
               f"second time"
        failing = next((r for r in again if r.span == err.span), None)
        if failing is not None and next(r for r in again if r.shared is failing.shared) is not failing:
            return err  # Sequential(mix, ..., mix): the container's own second use does not fit, alone as well
        failing = failing.shared if failing is not None else None
        if failing is not None and failing.instance is not None and failing.instance.node.inputs:
            built = ", ".join(shape_str(t.shape) for t in failing.instance.node.inputs)
            return SpecShapeError(f"{said}, and {failing.name}, built for {built}, does not fit its input there",
                                  err.span, hint=hint)
        return SpecShapeError(f"{said}: {err.message}", err.span, hint=hint)

    def run_forward(self, body, scope: Scope, env: dict, span) -> list:
        for stmt in body:
            result = self.fwd_stmt(stmt, scope, env)
            if result is not None:
                return result
        raise SpecArgError(f"the forward of {scope.name} has no return", span, hint="end it with `return ...`")

    def fwd_stmt(self, stmt, scope: Scope, env: dict):
        try:
            return self.statement(stmt, scope, env)
        except ExprTooLarge as exc:
            raise SpecLimitError(f"this statement makes {exc}", stmt.span,
                                 hint="sizes built from many symbols multiply out; give some dims fixed sizes, "
                                      "or pass limits=Limits(max_expr_terms=...) if intended") from None

    def statement(self, stmt, scope: Scope, env: dict):
        k = stmt.kind
        if k == "assign":
            value = self.fwd_expr(stmt.value, scope, env)
            self.assign(stmt.target, value, env, scope, stmt)
            shapes = self.shapes_of(value)
            scope.emit(E.Assign(self.target_names(stmt.target), expr_of(value)), shapes, stmt.span)
            return None
        if k == "return":
            if not stmt.values:
                raise SpecArgError("return needs a value", stmt.span,
                                   hint='return the tensor forward computes: return x')
            vals = [self.fwd_expr(v, scope, env) for v in stmt.values]
            outs = []
            for v, e in zip(vals, stmt.values):
                if isinstance(v, TensorVal):
                    outs.append(v.info)
                elif isinstance(v, TupleVal):
                    outs.extend(self.flat_infos(v))
                else:
                    raise SpecArgError(f"forward must return tensors, not {self.static.describe(v)}", e.span,
                                       hint=call_it_hint(v, scope) or 'return the tensors forward computes')
            scope.emit(E.Return(tuple(v.expr for v in vals)), [s for v in vals for s in self.shapes_of(v)],
                       stmt.span)
            for i, v in enumerate(vals):
                scope.step("output", "output" if len(vals) == 1 else f"output {i}", _sources([v]),
                           self.shapes_of(v))
            return outs
        if k == "for":
            return self.fwd_for(stmt, scope, env)
        if k == "call_stmt":
            return self.grow_list(stmt.call, scope, env, stmt.span)
        if k == "if":
            test = self.fwd_expr(stmt.test, scope, env)
            if isinstance(test, Val) and isinstance(test.value, Mode):
                return self.if_training(stmt, test, scope, env)
            if isinstance(test, (TensorVal, TupleVal)):
                raise SpecArgError(f"this `if` tests {self.static.describe(test)}, but forward's conditions are "
                                   f"decided at compile time, when the spec is compiled, before any tensor holds "
                                   f"values",
                                   stmt.test.span, hint="test block parameters, consts or sizes (x.shape[1] == 64); to "
                                                        "choose per element, use torch.where(cond, a, b)")
            if not isinstance(test, Val) or not isinstance(test.value, bool):
                raise SpecArgError("an if in forward tests a compile-time condition", stmt.test.span,
                                   hint="test block parameters, consts or shapes (x.shape[1] == 64); the value of a "
                                        "tensor is unknown until it runs")
            scope.bake(test)  # only the branch taken is printed
            for s in (stmt.body if test.value else stmt.orelse):
                r = self.fwd_stmt(s, scope, env)
                if r is not None:
                    return r
            return None
        raise AssertionError(k)

    def if_training(self, stmt: ir.If, test: Val, scope: Scope, env: dict):
        """``if training { ... } else { ... }``: both branches printed under ``if self.training:``, as stochastic
        depth is written. A name either branch assigns keeps one shape after it, whichever ran."""
        lists = {id(v.items): (v, len(v.items)) for v in env.values() if isinstance(v, ListVal)}
        scope.emit(E.IfHead(test.expr), span=stmt.span)
        envs = []
        for i, branch in enumerate((stmt.body, stmt.orelse)):
            if i == 1:
                if not branch:
                    envs.append(dict(env))
                    break
                scope.emit(E.ElseHead())
            inner = dict(env)
            start = len(scope.lines)
            scope.indent += 1
            for s in branch:
                if s.kind == "return":
                    raise SpecArgError("return inside `if training` is not supported", s.span,
                                       hint="assign in each branch, return after the if")
                self.fwd_stmt(s, scope, inner)
            scope.indent -= 1
            if len(scope.lines) == start:
                scope.lines.append(Line(scope.indent + 1, E.Pass()))
            if any(len(v.items) != n for v, n in lists.values()):
                raise SpecArgError("a list grows inside `if training`, so its length would depend on the mode",
                                   stmt.span, hint="grow lists outside the if; choose tensors inside it")
            envs.append(inner)
        for name in set(envs[0]) | set(envs[1]):
            a, b = envs[0].get(name), envs[1].get(name)
            if a is b:
                continue
            if a is None or b is None:
                if name in env:  # assigned in one branch only: the other keeps the value from before
                    a, b = (env[name] if v is None else v for v in (a, b))
                else:
                    continue  # a temporary of one branch, gone after it
            if _number(a) and _number(b) and a.value != b.value:
                train, other = (a, b) if test.value.train else (b, a)
                env[name] = Val(Mode(train.value, other.value), E.Name(name))  # p = 0.1 in training, 0.0 in eval
                continue
            if not _same_kind(a, b):
                dtypes = isinstance(a, TensorVal) and isinstance(b, TensorVal) and a.info.dtype != b.info.dtype
                shown = [self.static.describe(v) + (f" of {v.info.dtype}" if dtypes else "") for v in (a, b)]
                raise SpecShapeError(f"`{name}` would be {shown[0]} in training and {shown[1]} in eval; after "
                                     f"the if it must be one",
                                     stmt.span, hint="give it the same shape in both branches: stochastic depth "
                                                     "scales x in training and passes it as is in eval")
            env[name] = a
        return None

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
            return [s for item in v.items for s in self.shapes_of(item)]
        return []

    def target_names(self, t):
        """A target as data: a name, or a tuple of (nested) names."""
        if t.kind == "name_target":
            return t.id
        return tuple(self.target_names(i) for i in t.items)

    def assign(self, t, value, env, scope, stmt):
        if t.kind == "name_target":
            self.bodies._check_name(t.id, t.span, "a value")
            if t.id in scope.children or isinstance(env.get(t.id), (ChildSlot, ParamRef)):
                raise SpecNameError(f"{t.id!r} is a child of {scope.name}; use another name for the value", t.span,
                                    hint='rename the value, e.g. h = ...')
            scope.locals.add(t.id)
            if isinstance(value, TensorVal):
                env[t.id] = TensorVal(value.info, E.Name(t.id), src=value.src)
            elif isinstance(value, ListVal):
                env[t.id] = ListVal(value.items, E.Name(t.id), src=value.src)  # one list, two names: as in Python
            elif isinstance(value, TupleVal):
                env[t.id] = TupleVal(value.items, E.Name(t.id), src=value.src)
            elif isinstance(value, Val):
                env[t.id] = Val(value.value, E.Name(t.id))
            else:
                env[t.id] = value
            return
        items = value.items if isinstance(value, TupleVal) else (
            list(value.value) if isinstance(value, Val) and isinstance(value.value, tuple) else None)
        if items is None:
            raise SpecArgError(f"cannot unpack {self.static.describe(value)} into {len(t.items)} names", stmt.span,
                               hint='unpack a tuple: out, (h, c) = lstm(x)')
        if len(items) != len(t.items):
            raise SpecArgError(f"cannot unpack {len(items)} values into {len(t.items)} names", t.span,
                               hint='name as many values as there are')
        for sub, item in zip(t.items, items):
            if isinstance(item, Val) and isinstance(value, Val):
                item = Val(item.value, None)
            self.assign(sub, item if not isinstance(item, TensorInfo) else TensorVal(item, None), env, scope, stmt)

    def fwd_for(self, stmt: ir.For, scope: Scope, env: dict):
        it = self.fwd_expr(stmt.iter, scope, env)
        elements = self.loop_elements(it, stmt.iter.span, "a for loop")
        self.static.count_unrolled(len(elements), stmt.iter.span)
        if scope.indent >= 2 + MAX_LOOP_NESTING:
            raise SpecLimitError(f"for loops nest more than {MAX_LOOP_NESTING} deep", stmt.span,
                                 hint="Python refuses more than 20 nested blocks; flatten the loops")
        scope.emit(E.ForHead(self.target_names(stmt.target), expr_of(it)), span=stmt.span)
        lists = [(v, len(v.items)) for v in env.values() if isinstance(v, ListVal)]
        start = len(scope.lines)
        scope.indent += 1
        first_lines = None
        for el in elements:
            self.bind_loop(stmt.target, el, env)
            for s in stmt.body:
                if s.kind == "return":
                    raise SpecArgError("return inside a loop is not supported", s.span,
                                       hint='assign inside the loop, return after it')
                self.fwd_stmt(s, scope, env)
            if isinstance(it, ListVal) and len(it.items) != len(elements):
                raise SpecArgError("this loop grows the list it runs over, so it would never end", stmt.iter.span,
                                   hint="grow another list: outs = [], then outs.append(...) in the loop")
            lines = scope.lines[start:]
            del scope.lines[start:]
            if first_lines is None:
                first_lines = lines
            else:
                if [(ln.indent, ln.stmt) for ln in lines] != [(ln.indent, ln.stmt) for ln in first_lines]:
                    raise SpecArgError("each pass of this loop would need different code", stmt.span,
                                       hint='make each pass the same code, or unroll the loop by hand')
                for first, ln in zip(first_lines, lines):
                    first.more.append(ln.shapes)
                    first.more_notes += [ln.notes] + ln.more_notes  # this pass, then its inner loops' passes
        scope.indent -= 1
        if any(len(v.items) != n for v, n in lists):
            self.bake_count(it, scope)  # a list the loop grows is as long as the loop runs: that count is fixed
        scope.lines.extend(first_lines or [])
        if not first_lines:  # no passes, or a body that prints nothing: Python needs a statement
            scope.lines.append(Line(scope.indent + 1, E.Pass()))
        return None

    def loop_elements(self, it, span, what: str) -> list:
        """What a loop or a comprehension runs over, one element a pass: a function from the loop
        variable's expression to its value, or a tuple of such functions (``for name, layer in d.items()``)."""
        if isinstance(it, ModRef) and it.index is None and it.instance is not None and it.instance.recipe.kind in (
                "modulelist", "moduledict"):
            it = ModuleView(it, "values" if it.instance.recipe.kind == "modulelist" else "keys", it.expr)
        if isinstance(it, ModuleView):
            inst, keys = it.ref.instance, it.ref.instance.recipe.keys
            out = []
            for i in range(len(inst.recipe.items)):
                key = (lambda k: lambda ex: Val(k, ex))(keys[i]) if keys else None
                module = (lambda i: lambda ex: self.container_item(it.ref, i, ex, span))(i)
                out.append({"items": (key, module), "keys": key, "values": module}[it.what])
            return out
        if isinstance(it, TupleVal):
            return [_element(v) for v in it.items]
        if isinstance(it, Val) and isinstance(it.value, (tuple, list)):
            return [_element(v if isinstance(v, Val) else Val(v)) for v in it.value]
        raise SpecArgError(f"{what} runs over a ModuleList, a ModuleDict (.items(), .keys(), .values()), a list or "
                           f"tuple, or range(...), not {self.static.describe(it)}", span,
                           hint="hold the modules in ModuleList([...]) and loop over it")

    def bake_count(self, it, scope: Scope) -> None:
        """What a loop or comprehension ran over decided a list's length: the block parameters its count reads
        (``range(n)``, a ModuleList of ``n`` modules) are fixed in the class, not taken by its constructor."""
        if isinstance(it, ModuleView):
            it = it.ref
        if isinstance(it, ModRef) and it.instance is not None:
            repeat = it.instance.recipe.repeat
            if repeat is not None:
                scope.bake(repeat)
        elif isinstance(it, Val):
            scope.bake(it)

    def bind_loop(self, target, el, env: dict) -> None:
        """The loop variable (or the names it unpacks into) bound to one element of `loop_elements`."""
        if target.kind == "name_target":
            self.bodies._check_name(target.id, target.span, "a loop variable")
            if target.id != "_":
                env[target.id] = _materialize(el, E.Name(target.id), target.span)
            return
        parts = el if isinstance(el, tuple) else None
        if parts is None:
            value = el(None)
            parts = tuple(_element(v) for v in value.items) if isinstance(value, TupleVal) else tuple(
                _element(v if isinstance(v, Val) else Val(v)) for v in value.value) if isinstance(
                value, Val) and isinstance(value.value, (tuple, list)) else None
        if parts is None or len(parts) != len(target.items):
            shown = f"{len(parts)} values" if parts is not None else "one value"
            raise SpecArgError(f"cannot unpack {shown} into {len(target.items)} names", target.span,
                               hint="name as many values as each element holds: for name, layer in d.items()")
        for sub, part in zip(target.items, parts):
            self.bind_loop(sub, part, env)

    def container_item(self, base: ModRef, i: int, expr, span) -> ModRef:
        """Element ``i`` of a ModuleList or ModuleDict, spelled ``expr``; a container inside is indexed further."""
        inst = base.instance
        name = inst.recipe.keys[i] if inst.recipe.kind == "moduledict" else str(i)
        if inst.recipe.items[i].kind in ("modulelist", "moduledict"):
            return ModRef(None, self.modules.element(inst, i, None, span), expr, f"{base.path}.{name}")
        return ModRef(None, inst, expr, f"{base.path}.{name}", i)

    def grow_list(self, call: ir.Call, scope: Scope, env: dict, span=None):
        """``xs.append(h)`` and ``xs.extend(hs)``: the only calls forward runs for their effect."""
        obj, method = call.func.value, call.func.attr
        target = self.fwd_expr(obj, scope, env)
        if method not in ("append", "extend") or not isinstance(target, (ListVal, Val)) or (
                isinstance(target, Val) and not isinstance(target.value, list)):
            raise SpecArgError(f"`{obj.id}.{method}(...)` on its own line would do nothing that forward keeps: "
                               f"a statement of forward assigns, returns, loops, or grows a list", call.span,
                               hint=f"assign the result: y = {obj.id}.{method}(...); or grow a list of tensors: "
                                    f"xs = [x], then xs.append(h)")
        if isinstance(target, Val):
            raise SpecArgError(f"`{obj.id}` is a list of compile-time values, fixed when the spec is compiled; "
                               f".{method} grows lists of tensors", call.span,
                               hint=f"write the whole list at once: {obj.id} = [...]; or start from a tensor: "
                                    f"xs = [x]")
        if call.keywords or len(call.args) != 1 or call.args[0].kind == "starred":
            raise SpecArgError(f".{method}() takes one argument", call.span,
                               hint=f"{obj.id}.append(h) adds one tensor; {obj.id}.extend([a, b]) adds each of a list")
        v = self.fwd_expr(call.args[0], scope, env)
        if method == "append":
            if not isinstance(v, (TensorVal, TupleVal, Val)):
                raise SpecArgError(f"a list in forward holds tensors and values, not {self.static.describe(v)}",
                                   call.args[0].span, hint="append the module's output: xs.append(layer(x))")
            added = [v]
        elif isinstance(v, TupleVal):
            added = list(v.items)
        elif isinstance(v, Val) and isinstance(v.value, (tuple, list)):
            added = [x if isinstance(x, Val) else Val(x) for x in v.value]
        else:
            raise SpecArgError(f".extend takes a list or tuple, not {self.static.describe(v)}", call.args[0].span,
                               hint="extend by a list: xs.extend([a, b]), or xs.extend(x.chunk(2, 1))")
        if any(isinstance(a, TupleVal) and _holds(a, target.items) for a in added):
            raise SpecArgError(f"`{obj.id}` would hold itself", call.args[0].span,
                               hint=f"append its elements: {obj.id}.extend(list({obj.id})), or a copy: "
                                    f"{obj.id}.append(list({obj.id}))")
        if len(target.items) + len(added) > self.state.limits.max_unroll:
            raise SpecLimitError(f"the list would hold more than {self.state.limits.max_unroll:,} values",
                                 call.span, hint="build shorter lists; or pass limits=Limits(max_unroll=...)")
        target.items.extend(added)
        scope.emit(E.ExprStmt(E.call(E.Attribute(expr_of(target), method), expr_of(v))), self.shapes_of(v), span)
        return None

    def fwd_listcomp(self, e: ir.ListComp, scope: Scope, env: dict):
        """``[expert(x) for expert in experts]``: each element evaluated, printed once as a comprehension."""
        it = self.fwd_expr(e.iter, scope, env)
        elements = self.loop_elements(it, e.iter.span, "a comprehension")
        if not elements:
            raise SpecArgError("this comprehension runs over nothing, so the type of its elements is unknown",
                               e.iter.span, hint="give it at least one element, or write [] for an empty list")
        self.static.count_unrolled(len(elements), e.iter.span)
        self.bodies._check_name(e.var, e.span, "a loop variable")
        outer = env.get(e.var, _ABSENT)
        start = len(scope.lines)
        items, codes, notes = [], [], []
        noted = len(scope.notes)
        for el in elements:
            if e.var != "_":
                env[e.var] = _materialize(el, E.Name(e.var), e.span)
            v = self.fwd_expr(e.element, scope, env)
            notes.append(scope.notes[noted:])
            del scope.notes[noted:]
            if len(scope.lines) != start:
                raise SpecArgError("a conditional child is called inside this comprehension; its `if ... is not "
                                   "None` needs statements of its own", e.element.span,
                                   hint="write a for loop that appends to a list")
            if isinstance(v, (ModRef, ModuleView)):
                raise SpecArgError(f"a list in forward holds tensors and values, not {self.static.describe(v)}",
                                   e.element.span, hint="call the module: [m(x) for m in layers]")
            items.append(v)
            codes.append(expr_of(v))
        if outer is _ABSENT:
            env.pop(e.var, None)  # a comprehension's variable stays inside it, as in Python 3
        else:
            env[e.var] = outer
        if any(c != codes[0] for c in codes):
            raise SpecArgError("each element of this comprehension would need different code", e.span,
                               hint="make each element the same expression of the loop variable, or write a list")
        code = E.ListComp(codes[0], e.var, expr_of(it))
        if all(_note_key(n) == _note_key(notes[0]) for n in notes):  # one element's ops tell of them all
            scope.notes += notes[0]
        self.bake_count(it, scope)  # the list is as long as the comprehension ran
        if all(isinstance(v, Val) for v in items):
            return Val([v.value for v in items], code)
        return ListVal(items, code)

    # -- forward expressions
    def fwd_expr(self, e, scope: Scope, env: dict):
        self.state.step(e.span)
        k = e.kind
        if k == "name":
            if e.id in env:
                v = env[e.id]
                if isinstance(v, ChildSlot):
                    if v.instance is None and v.present and v.recipe.kind in ("modulelist", "moduledict"):
                        # built as its elements are used
                        v.instance = self.modules.instantiate(v.recipe, None, scope, v.name)
                    return ModRef(v, v.instance, E.attr(E.SELF, e.id), e.id)
                if isinstance(v, ParamRef):
                    if e.id not in scope.param_flow:
                        scope.param_flow[e.id] = scope.step("param", e.id, shapes=[v.info.shape])
                    return TensorVal(v.info, E.attr(E.SELF, e.id), src=scope.param_flow[e.id])
                if e.id == "in_shape" and scope.kind == "block":
                    return v  # its dims are spelled by the constructor parameters they become (forward_spelling)
                if isinstance(v, Val) and e.id not in scope.locals and scope.env.get(e.id) is v:
                    # a constructor argument or a local of __init__: forward reads it from self
                    scope.fwd_attrs.add(e.id)
                    return Val(v.value, E.attr(E.SELF, e.id))
                return v
            if e.id == "training":  # nn.Module's own flag: decided when the module runs, not when it compiles
                return Val(Mode(True, False), E.attr(E.SELF, "training"))
            return self.static.lookup_static(e, scope, env, False, values=[n for n in env if n in scope.locals])
        if k == "constant":
            return Val(e.value)
        if k in ("tuple", "list"):
            items = [self.fwd_expr(x, scope, env) for x in e.items]
            exprs = tuple(expr_of(i) for i in items)
            code = E.TupleExpr(exprs) if k == "tuple" else E.ListExpr(exprs)
            if items and all(isinstance(i, Val) for i in items) or k == "tuple" and not items:
                return Val(tuple(items) if k == "tuple" else list(items), code)
            for i, x in zip(items, e.items):
                if isinstance(i, (ModRef, ModuleView)):
                    raise SpecArgError(f"a {k} in forward holds tensors and values, not {self.static.describe(i)}",
                                       x.span, hint="call the module: [layer(x) for layer in layers]")
            return TupleVal(items, code) if k == "tuple" else ListVal(items, code)
        if k == "listcomp":
            return self.fwd_listcomp(e, scope, env)
        if k == "binop":
            a = self.fwd_expr(e.left, scope, env)
            b = self.fwd_expr(e.right, scope, env)
            return self.fwd_binop(e, a, b, scope)
        if k == "unaryop":
            a = self.fwd_expr(e.operand, scope, env)
            if isinstance(a, TensorVal):
                try:
                    info = unary_rule(e.op, a.info)
                    info.contiguous = a.info.contiguous  # elementwise: the input's memory order kept
                except ShapeProblem as exc:
                    raise SpecShapeError(str(exc), e.span, hint=exc.hint) from None
                return TensorVal(info, E.UnaryOp(e.op, a.expr), a.src)
            return self.static.eval_static(e, scope, env)
        if k == "call":
            return self.fwd_call(e, scope, env)
        if k == "attribute":
            if isinstance(e.value, ir.Name) and e.value.id == "torch" and "torch" not in env:
                return self.torch_dtype(e)
            if (self.static.dotted(e) or "").startswith("self.") and "self" not in env:
                raise self.static.self_attribute(e, scope, env, forward=True)
            base = self.fwd_expr(e.value, scope, env)
            if isinstance(base, ModRef) and base.index is None and base.instance is not None and \
                    base.instance.recipe.kind == "moduledict" and e.attr in base.instance.recipe.keys:
                # nanoGPT's self.transformer.wte: a ModuleDict's module read as an attribute
                i = base.instance.recipe.keys.index(e.attr)
                return self.container_item(base, i, E.Attribute(base.expr, e.attr), e.span)
            if isinstance(base, ModRef):
                return self.module_weight(base, e, scope)
            if isinstance(base, TensorVal):
                if e.attr == "shape":
                    shape = E.Attribute(base.expr, "shape")
                    return Val(tuple(Val(d.value, E.Subscript(shape, (E.Constant(i),)))
                                     for i, d in enumerate(base.info.shape)), shape)
                if e.attr == "ndim":
                    return Val(len(base.info.shape), E.Attribute(base.expr, "ndim"))
                if e.attr == "dtype":
                    return Val(DType(base.info.dtype), E.Attribute(base.expr, "dtype"))
                if e.attr == "device":
                    return Val(Device(source(base.expr)), E.Attribute(base.expr, "device"))
                if e.attr == "T" and len(base.info.shape) == 2:
                    info = TensorInfo(tuple(reversed(base.info.shape)), base.info.dtype, contiguous=False,
                                      source=base.info.source, below=base.info.below)
                    return TensorVal(info, E.Attribute(base.expr, "T"),
                                     src=scope.step("op", ".T", [base.src], [info.shape]))
            raise SpecNameError(f"{self.static.describe(base)} has no attribute {e.attr!r}", e.span,
                                hint="a tensor has .shape, .ndim, .T, .dtype and .device; read a module's parameters "
                                     "with module.weight")
        if k == "subscript":
            return self.fwd_subscript(e, scope, env)
        if k == "compare":
            return self.fwd_compare(e, scope, env)
        if k in ("boolop", "not", "ifexp"):
            return self.fwd_logic(e, scope, env)
        if k == "infer":
            raise SpecArgError("`_` stands only for a layer argument to infer", e.span,
                               hint='use `_` in a layer call, e.g. Linear(_, 10)')
        raise SpecArgError(f"a {k} is not allowed in forward", e.span,
                           hint='forward holds names, calls, operators, indexing and literals')


    def module_weight(self, ref: ModRef, e: ir.Attribute, scope: Scope):
        """``wte.weight``: a parameter of a child layer, read in forward (weight tying, ``x @ fc.weight.T``)."""
        inst = ref.instance if ref.slot is None else ref.slot.instance
        recipe = ref.slot.recipe if ref.slot is not None else (
            ref.instance.recipe.items[ref.index] if ref.index is not None else ref.instance.recipe)
        if recipe.kind == "shared":  # a child its container holds again: the child's parameters
            return self.module_weight(ModRef(recipe.shared, recipe.shared.instance, ref.expr, ref.path), e, scope)
        if ref.slot is not None and not ref.slot.present:
            raise SpecArgError(f"`{ref.path}` is absent here (its condition is False), so it has no {e.attr!r}",
                               e.span, hint="read parameters of a child that is always present")
        if recipe.kind != "layer" or CATALOG[recipe.name].weights is None:
            raise SpecNameError(f"{self.static.describe(ref)} has no attribute {e.attr!r} that forward can read",
                                e.span, hint="forward reads the parameters of Linear, Embedding, Conv and norm layers")
        if ref.index is not None:
            inst = ref.instance.items[ref.index]
        if inst is None:
            if self.modules.recipe_needs_input(recipe):
                raise SpecShapeError(f"`{ref.path}` is not built yet: its `_` sizes come from its first call",
                                     e.span, hint="call it before reading its parameters, or give every size")
            if ref.index is not None:
                inst = self.modules.element(ref.instance, ref.index, None, e.span)
            else:
                inst = ref.slot.instance = self.modules.instantiate(recipe, None, scope, ref.slot.name)
        shapes = CATALOG[recipe.name].weights(inst.bound)
        if e.attr not in shapes:
            raise SpecNameError(f"{self.static.describe(ref)} has no parameter {e.attr!r}", e.span,
                                hint=suggest(e.attr, shapes, "parameters"))
        shape = tuple(Val(d) for d in shapes[e.attr])
        info = TensorInfo(shape, "float")
        return TensorVal(info, E.Attribute(ref.expr, e.attr), src=scope.step("param", f"{ref.path}.{e.attr}",
                                                                            shapes=[shape]))

    def fwd_logic(self, e, scope: Scope, env: dict):
        """A condition in forward: decided now, from compile-time values; a tensor's value is not known yet."""
        tests = {"compare": lambda: [e.left, *e.comparators], "boolop": lambda: [e.left, e.right],
                 "not": lambda: [e.operand], "ifexp": lambda: [e.test]}[e.kind]()
        values = {}
        for t in tests:
            v = self.fwd_expr(t, scope, env)
            if isinstance(v, (TensorVal, TupleVal)):
                word = {"boolop": f"`{getattr(e, 'op', '')}`", "not": "`not`", "compare": "this comparison"}.get(
                    e.kind, "`if`")
                hint = {"boolop": "combine bool tensors element by element with & or |: (x > 0) & (y > 0)",
                        "not": "invert a bool tensor element by element with ~: ~mask",
                        "compare": "compare tensors element by element one at a time: a[0] == b[0]; "
                                   "sizes with len(a) == 2",
                        "ifexp": "choose per element with torch.where(cond, a, b)"}[e.kind]
                raise SpecArgError(f"{word} here tests {self.static.describe(v)}, but forward's conditions are "
                                   f"decided at compile time, when the spec is compiled, before any tensor holds "
                                   f"values", t.span,
                                   hint=hint)
            values[id(t)] = v
        moded = [v for v in values.values() if isinstance(v, Val) and isinstance(v.value, Mode)]
        if moded and e.kind == "not":
            mode = moded[0].value
            return Val(Mode(not mode.train, not mode.eval), E.Not(moded[0].expr))
        if moded and e.kind != "ifexp":
            raise SpecArgError("`training` is known only when the module runs; forward tests it alone, or with not",
                               e.span, hint="write `if training { ... }`, or `x if training else y`")
        if e.kind == "ifexp":
            test = values[id(e.test)]
            if isinstance(test, Val) and isinstance(test.value, Mode):
                return self.training_choice(e, test, scope, env)
            if not isinstance(test, Val) or not isinstance(test.value, bool):
                raise SpecArgError("the condition must be True or False", e.test.span,
                                   hint="compare sizes or parameters: `if flag`, `if x.shape[1] == 64`")
            chosen = self.fwd_expr(e.body if test.value else e.orelse, scope, env)
            if not isinstance(chosen, Val):
                scope.bake(test)  # a tensor branch: only the one taken is printed
            if isinstance(chosen, Val):
                noted = len(scope.notes)
                other = self.fwd_expr(e.orelse if test.value else e.body, scope, env)
                del scope.notes[noted:]  # the branch not taken does not run
                if isinstance(other, Val) and test.expr is not None and E.names_in(test.expr):
                    body, orelse = (chosen, other) if test.value else (other, chosen)
                    return Val(chosen.value, E.IfExp(test.expr, expr_of(body), expr_of(orelse)))
            return chosen
        for t in tests:
            if not isinstance(values[id(t)], Val):
                shown = self.static.describe(values[id(t)])
                raise SpecArgError(f"a condition compares compile-time values, not {shown}", t.span,
                                   hint="test block parameters, consts or sizes (x.shape[1] == 64)")
        value = self.static.static_logic(e, scope, env, evaluate=lambda t: values[id(t)])
        return self.forward_spelling(value, scope)

    def training_choice(self, e: ir.IfExp, test: Val, scope: Scope, env: dict):
        """``a if training else b``: both evaluated; tensors of one shape, or numbers whose use the mode may
        not change (``dropout_p=p if training else 0.0``)."""
        body, orelse = self.fwd_expr(e.body, scope, env), self.fwd_expr(e.orelse, scope, env)
        code = E.IfExp(test.expr, expr_of(body), expr_of(orelse))
        if isinstance(body, TensorVal) and isinstance(orelse, TensorVal) and _same_kind(body, orelse):
            src = scope.step("op", "if training", [body.src, orelse.src], [body.info.shape])
            return TensorVal(body.info, code, src=src)
        if _number(body) and _number(orelse):
            train, other = (body, orelse) if test.value.train else (orelse, body)
            return Val(Mode(train.value, other.value), code)
        raise SpecArgError(f"`if training` here chooses between {self.static.describe(body)} and "
                           f"{self.static.describe(orelse)}; it chooses tensors of one shape, or numbers",
                           e.span, hint="scale x in training and pass it as is in eval: x * mask if training else x")

    def forward_spelling(self, value, scope: Scope):
        """A compile-time value as forward spells it: a constructor parameter or a local of ``__init__`` is
        read from self (``self.n``), and kept there by ``__init__``."""
        if not isinstance(value, Val) or value.expr is None:
            return value
        own = {p.name for p in scope.ctor} | {r[1] for r in scope.raw if r[0] == "const"}
        names = E.names_in(value.expr) & own - scope.locals
        if not names:
            return value
        scope.fwd_attrs |= names
        return Val(value.value, E.replace_names(value.expr, {n: E.attr(E.SELF, n) for n in names}))

    def fwd_compare(self, e: ir.Compare, scope: Scope, env: dict):
        """``x > 0`` of a tensor is a bool tensor, as in torch; of compile-time values, a compile-time condition."""
        operands = [self.fwd_expr(x, scope, env) for x in (e.left, *e.comparators)]
        if not any(isinstance(v, TensorVal) for v in operands):
            return self.fwd_logic(e, scope, env)
        if len(e.ops) > 1:
            raise SpecArgError("a chain of comparisons is not one tensor: Python would test its parts with `and`",
                               e.span, hint="compare one pair at a time and combine them: (0 < x) & (x < 1)")
        op = e.ops[0]
        if op not in OPERATORS:  # in, not in, is, is not
            raise SpecArgError(f"`{op}` does not compare tensors element by element", e.span,
                               hint="compare values with ==, !=, <, <=, > or >=; sizes with x.shape[1] == 64")
        a, b = operands
        return self.fwd_binop(e, a, b, scope, op, E.Compare(expr_of(a), (op,), (expr_of(b),)))

    def fwd_binop(self, e, a, b, scope, op: str | None = None, code=None):
        op = op or e.op
        moded = [v for v in (a, b) if isinstance(v, Val) and isinstance(v.value, Mode)]
        if moded:
            return self.moded_binop(e, a, b, scope, op, code)
        if isinstance(a, Val) and isinstance(b, Val):
            return self.static.static_binop(e, a, b)
        if op == "+" and isinstance(a, (TupleVal, Val)) and isinstance(b, (TupleVal, Val)) and (
                isinstance(a, TupleVal) or isinstance(b, TupleVal)):
            return self.join_sequences(e, a, b)
        sides = (e.left, e.right) if e.kind == "binop" else (e.left, e.comparators[0])
        for v, side in zip((a, b), sides):
            if not isinstance(v, (TensorVal, Val)):
                raise SpecArgError(f"cannot use {self.static.describe(v)} in arithmetic", side.span,
                                   hint=call_it_hint(v, scope) or 'arithmetic takes tensors and numbers')
        code = code or E.BinOp(op, expr_of(a), expr_of(b))
        ta = a.info if isinstance(a, TensorVal) else None
        tb = b.info if isinstance(b, TensorVal) else None
        try:
            if op == "@":
                if ta is None or tb is None:
                    raise ShapeProblem("`@` multiplies two tensors")
                info = matmul_rule(ta, tb)
                self.add_macs(scope, matmul_macs(info, ta, tb))
                scope.note(matmul_note("@", info, ta, tb))
            else:
                operands = [ta if ta is not None else a, tb if tb is not None else b]
                info = operator_rule(op, *operands)
                info.contiguous = all(t.contiguous for t in (ta, tb) if t is not None)  # elementwise: order kept
                info.feature_map = op_feature_map(op, op, [t for t in (ta, tb) if t is not None], tuple(info.shape))
                scope.note(op_note(OPERATORS[op], op, info, operands, {}))
        except ShapeProblem as exc:
            hint = exc.hint or ("x @ W needs the last dim of x to equal the second-to-last of W"
                    if op == "@" and "batch dims" not in str(exc) else
                    BROADCAST_HINT)
            raise SpecShapeError(str(exc), e.span, hint=hint) from None
        src = scope.step("op", op, [getattr(a, "src", None), getattr(b, "src", None)], [info.shape])
        return TensorVal(info, code, src)

    def moded_binop(self, e, a, b, scope, op, code):
        """Arithmetic with a number chosen by ``training`` (``x * (1.0 if training else 0.0)``): worked out in
        each mode; the result may differ in value, never in shape."""
        picks = [[Val(v.value.pick(t)) if isinstance(v, Val) and isinstance(v.value, Mode) else v for v in (a, b)]
                 for t in (True, False)]
        code = code or E.BinOp(op, expr_of(a), expr_of(b))
        if not any(isinstance(v, TensorVal) for v in (a, b)):
            results = [self.static.static_binop(e, *p) for p in picks]
            return Val(Mode(results[0].value, results[1].value), code)
        result = self.fwd_binop(e, *picks[0], scope, op, code)  # the steps and MACs, once
        try:
            other = operator_rule(op, *[v.info if isinstance(v, TensorVal) else v for v in picks[1]])
        except ShapeProblem as exc:
            raise SpecShapeError(f"in eval, {exc}", e.span, hint=exc.hint or BROADCAST_HINT) from None
        if other.shape != result.info.shape or other.dtype != result.info.dtype:
            raise SpecShapeError(f"`{op}` here would make a different shape in training than in eval", e.span,
                                 hint="a number chosen by `if training` may scale a tensor, not size one")
        return result

    def join_sequences(self, e, a, b):
        """``feats + [h]``: a new list (or tuple) of both one's elements, as Python's ``+`` makes."""
        def parts(v):
            if isinstance(v, TupleVal):
                return list(v.items), isinstance(v, ListVal)
            if isinstance(v.value, (tuple, list)):
                return [x if isinstance(x, Val) else Val(x) for x in v.value], isinstance(v.value, list)
            return None, None
        (left, left_list), (right, right_list) = parts(a), parts(b)
        if left is None or right is None or left_list != right_list:
            kinds = [self.static.describe(v) for v in (a, b)]
            raise SpecArgError(f"cannot add {kinds[0]} and {kinds[1]}", e.span,
                               hint="`+` joins two lists, or two tuples; arithmetic takes tensors and numbers")
        code = E.BinOp("+", expr_of(a), expr_of(b))
        return ListVal(left + right, code) if left_list else TupleVal(left + right, code)

    def add_macs(self, scope: Scope, macs):
        scope.extra_macs = scope.extra_macs + macs

    def fwd_subscript(self, e: ir.Subscript, scope, env):
        base = self.fwd_expr(e.value, scope, env)
        if isinstance(base, ModRef) and base.index is None and base.instance is not None and \
                base.instance.recipe.kind in ("modulelist", "moduledict"):
            if len(e.index) != 1 or e.index[0].kind in ("slice", "ellipsis"):
                raise SpecArgError("index a ModuleList with one integer, a ModuleDict with one key", e.span,
                                   hint="write layers[0] or blocks['name']")
            key = self.fwd_expr(e.index[0], scope, env)
            _no_mode(key, e.index[0].span, "an index")
            inst = base.instance
            if inst.recipe.kind == "moduledict":
                if not isinstance(key, Val) or key.value not in inst.recipe.keys:
                    raise SpecNameError(f"{base.path} has no key {self.static.describe(key)}", e.index[0].span,
                                        hint=suggest(str(key.value) if isinstance(key, Val) else "",
                                                     inst.recipe.keys, "keys"))
                i = inst.recipe.keys.index(key.value)
            else:
                n = len(inst.recipe.items)
                if not isinstance(key, Val) or not isinstance(key.value, int) or not -n <= key.value < n:
                    shown = self.static.describe(key)
                    raise SpecArgError(f"index {shown} is out of range for {base.path} ({n} modules)",
                                       e.index[0].span, hint=f"an index of {base.path} is in {-n}..{n - 1}")
                i = key.value % n
            return self.container_item(base, i, E.Subscript(base.expr, (expr_of(key),)), e.span)
        if isinstance(base, Val):
            return self.forward_spelling(self.static.static_subscript(e, base, scope, env), scope)
        if isinstance(base, TupleVal):
            what = "list" if isinstance(base, ListVal) else "tuple"
            if len(e.index) != 1 or e.index[0].kind == "ellipsis":
                raise SpecArgError(f"index a {what} with one integer or a slice", e.span,
                                   hint='write out[0], out[-1] or out[1:]')
            if e.index[0].kind == "slice":
                return self.sequence_slice(e, base, scope, env)
            i = self.fwd_expr(e.index[0], scope, env)
            _no_mode(i, e.index[0].span, "an index")
            if isinstance(i, TensorVal):
                raise SpecArgError(f"a {what} is indexed by an integer known when the spec is compiled, not by "
                                   f"{self.static.describe(i)}", e.index[0].span,
                                   hint="stack the tensors and index that: torch.stack(xs)[i]; or write xs[0]")
            if not isinstance(i, Val) or not isinstance(i.value, int) or not -len(base.items) <= i.value < len(
                    base.items):
                shown = self.static.describe(i)
                raise SpecArgError(f"index {shown} is out of range for {len(base.items)} values", e.span,
                                   hint='count from 0; -1 is the last')
            item = base.items[i.value]
            code = E.Subscript(base.expr, (expr_of(i),))
            if isinstance(item, TupleVal) and not isinstance(item, ListVal):  # out[1][0]: the inner tuple, reached
                return TupleVal(item.items, code, item.src)                 # through the outer one
            return TensorVal(item.info, code) if isinstance(item, TensorVal) else item
        if not isinstance(base, TensorVal):
            raise SpecArgError(f"cannot index {self.static.describe(base)}", e.value.span,
                               hint='index a tensor, a tuple or a ModuleList')
        return self.tensor_index(e, base, scope, env)

    def sequence_slice(self, e, base: TupleVal, scope, env):
        """``feats[1:]``: the part of a list or tuple, of the same kind."""
        item = e.index[0]
        bounds, codes = [], []
        for part in (item.lower, item.upper, item.step):
            v = None if part is None else self.fwd_expr(part, scope, env)
            if v is not None and (not isinstance(v, Val) or not isinstance(v.value, int) or isinstance(v.value, bool)):
                raise SpecArgError("slice bounds are integers", part.span, hint="as in feats[1:] or feats[:-1]")
            if v is not None and part is item.step and v.value == 0:
                raise SpecArgError("slice step cannot be zero", part.span, hint="step by 1: feats[1:]")
            bounds.append(None if v is None else v.value)
            codes.append(None if v is None else expr_of(v))
        items = base.items[slice(*bounds)]
        code = E.Subscript(base.expr, (E.SliceExpr(*codes),))
        return ListVal(list(items), code) if isinstance(base, ListVal) else TupleVal(list(items), code)

    def tensor_index(self, e, base: TensorVal, scope, env):
        shape = list(base.info.shape)
        out, pos, codes = [], 0, []
        n_real = sum(1 for i in e.index if i.kind != "ellipsis" and not (i.kind == "constant" and i.value is None))
        if n_real > len(shape):
            raise SpecShapeError(f"too many indices ({n_real}) for {base.info}", e.span,
                                 hint=f"index each of its {len(shape)} dims at most once")
        if sum(1 for i in e.index if i.kind == "ellipsis") > 1:
            raise SpecArgError("an index can have only one `...`", e.span, hint='keep one `...`, e.g. x[..., 0]')
        for item in e.index:
            if item.kind == "ellipsis":
                skip = len(shape) - n_real  # every dim no other index takes
                out.extend(shape[pos: pos + skip])
                pos += skip
                codes.append(E.EllipsisExpr())
                continue
            if item.kind == "constant" and item.value is None:
                out.append(Val(1))
                codes.append(E.Constant(None))
                continue
            if item.kind == "slice":
                parts = []
                vals = []
                for part in (item.lower, item.upper, item.step):
                    if part is None:
                        parts.append(None)
                        vals.append(None)
                    else:
                        v = self.fwd_expr(part, scope, env)
                        _no_mode(v, part.span, "a slice bound")
                        if not isinstance(v, Val) or not isinstance(v.value, int) or isinstance(v.value, bool):
                            raise SpecArgError("slice bounds are integers", part.span, hint="as in x[:, 2:-1]")
                        parts.append(expr_of(v))
                        vals.append(v.value)
                d = shape[pos]
                if vals == [None, None, None]:
                    out.append(d)
                elif vals[2] is not None and vals[2] <= 0:
                    raise SpecArgError("slice step must be positive", item.span, hint="step forward: x[a:b:2]")
                else:
                    try:
                        length = slice_len(d.value, *vals)
                        if isinstance(d.value, Sym):
                            shown = "the slice [" + flat(CODE.index_fmt(E.SliceExpr(*parts))) + "]"
                            self.bodies.check_slice(d.value, vals, length, item.span, shown)
                        out.append(Val(length))
                    except ShapeProblem as exc:
                        raise SpecShapeError(f"{exc} (dim {pos} of {base.info})", item.span,
                                             hint="give a symbolic dim slices whose length is known: x[:k], "
                                                  "x[-k:] or x[k:]") from None
                codes.append(E.SliceExpr(*parts))
                pos += 1
                continue
            v = self.fwd_expr(item, scope, env)
            _no_mode(v, item.span, "an index")
            if not isinstance(v, Val) or not isinstance(v.value, int) or isinstance(v.value, bool):
                raise SpecArgError("index a tensor with integers, slices, None or ...", item.span,
                                   hint='write x[:, 0], x[..., 1:3] or x[:, None]')
            d = shape[pos].value
            if isinstance(d, int) and not -d <= v.value < d:
                raise SpecShapeError(f"index {v.value} is out of range for dim {pos} of {base.info} (size {d})",
                                     item.span, hint=f"an index of that dim is in {-d}..{d - 1}")
            codes.append(expr_of(v))
            pos += 1
        out.extend(shape[pos:])
        code = E.Subscript(base.expr, tuple(codes))
        # a part of a dim after the first leaves gaps in memory: `view` can no longer merge across it
        partial = any(c.kind != "ellipsis" and not (c.kind == "slice" and c == E.SliceExpr())
                      and not (c.kind == "constant" and c.value is None) for c in codes[1:])
        info = TensorInfo(tuple(out), base.info.dtype, contiguous=base.info.contiguous and not partial,
                          source=base.info.source, below=base.info.below)
        label = source(code)[len(source(base.expr)):]  # the index as written: [:, -1]
        return TensorVal(info, code, src=scope.step("op", label, [base.src], [info.shape]))

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
                raise SpecArgError("`*` unpacks a tuple or list", a.span,
                                   hint='write *[Linear(8, 8) for _ in range(3)] or *sizes')
            args.append(self.fwd_expr(a, scope, env))
        for kw in e.keywords:
            if kw.name in kwargs:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span, hint="keep one of them")
            kwargs[kw.name] = self.fwd_expr(kw.value, scope, env)
        return args, kwargs

    def fwd_call(self, e: ir.Call, scope: Scope, env: dict):
        func = e.func
        if (found := self.static.mentions_self(e)) is not None and "self" not in env:  # self.fc(x), as in a class
            raise self.static.self_attribute(found, scope, env, written=e, forward=True)
        if isinstance(func, ir.Call) and self.module_name(func, env) is not None:  # nn.ReLU()(h)
            return self.inline_module(func, e, scope, env)
        made = self.static.dotted(func.func) if isinstance(func, ir.Call) else None
        if made is not None and made.split(".")[0] not in env and miscased_module(made) is not None:  # nn.Gelu()(h)
            raise miscased_module_error(func, miscased_module(made), made)
        # method call: x.view(...), x.size(0)
        if isinstance(func, ir.Attribute):
            dotted = self.static.dotted(func)
            head = dotted.split(".")[0] if dotted else None
            if head in ("F", "torch", "nn") and (head not in env):
                return self.fwd_function(e, dotted, scope, env)
            base = self.fwd_expr(func.value, scope, env)
            if isinstance(base, TensorVal):
                return self.fwd_method(e, base, func.attr, scope, env)
            if isinstance(base, ModRef) and base.index is None and base.instance is not None and \
                    base.instance.recipe.kind == "moduledict" and func.attr in ("items", "keys", "values"):
                if e.args or e.keywords:
                    raise SpecArgError(f".{func.attr}() takes no arguments", e.span,
                                       hint=f"write for name, layer in {base.path}.items()")
                return ModuleView(base, func.attr, E.call(E.Attribute(base.expr, func.attr)))
            if isinstance(base, ModRef) and base.index is None and base.instance is not None and \
                    base.instance.recipe.kind == "moduledict" and func.attr in base.instance.recipe.keys:
                i = base.instance.recipe.keys.index(func.attr)  # self.transformer.wte(idx)
                return self.call_ref(self.container_item(base, i, E.Attribute(base.expr, func.attr), func.span), e,
                                     scope, env)
            if isinstance(base, ListVal) and func.attr in ("append", "extend"):
                raise SpecArgError(f".{func.attr}(...) returns None: it grows the list in place", e.span,
                                   hint=f"write it as a statement of its own: xs.{func.attr}(...)")
            raise SpecNameError(f"{self.static.describe(base)} has no method {func.attr!r}", func.span,
                                hint='call methods on tensors: x.view(...); a ModuleDict has .items(), .keys() and '
                                     '.values(); a list grows with .append and .extend')
        callee = self.fwd_expr(func, scope, env) if not (isinstance(func, ir.Name) and func.id not in env) else None
        if isinstance(callee, ModRef):
            return self.call_ref(callee, e, scope, env)
        if isinstance(func, ir.Name) and func.id not in env:
            if func.id == "list":
                return self.fwd_list(e, scope, env)
            if func.id in OPS or func.id in BUILTIN_CALLS:
                if func.id in BUILTIN_CALLS:
                    if func.id == "len":
                        v = self.fwd_expr(e.args[0], scope, env) if e.args else None
                        if isinstance(v, ModRef) and v.index is None and v.instance is not None:
                            return Val(len(v.instance.recipe.items), E.call("len", v.expr))
                        if isinstance(v, TupleVal) and len(e.args) == 1 and not e.keywords:
                            return Val(len(v.items), E.call("len", v.expr))
                    return self.static.builtin_call(func.id, e, scope, env,
                                                    evaluate=lambda a: self.fwd_expr(a, scope, env))
                return self.fwd_function(e, func.id, scope, env)
            if func.id in CATALOG or func.id in self.state.blocks or func.id in CONTAINERS:
                raise self.module_not_called(e, func.id, scope)
            children = [n for n in scope.children if is_attribute_name(n)]
            hint = quoted_child_hint(func.id, env) or nearest(func.id, list(OPS) + children, "functions and children")
            if hint.startswith("none of"):
                hint = (f"declare it as a child, {func.id} = Linear(...), to call it; "
                        + (f"the children here: {', '.join(children)}; " if children else "")
                        + "the functions are listed in docs/language.md")
            raise SpecNameError(f"undefined function {func.id!r}", func.span, hint=hint)
        if isinstance(callee, Val) and isinstance(callee.value, str) and quoted_child_hint(callee.value, env):
            raise SpecArgError("a string cannot be called, not even one that names a child", e.span,
                               hint=quoted_child_hint(callee.value, env))
        raise SpecArgError(f"{self.static.describe(callee)} cannot be called", e.span,
                           hint='call a child module, or a function such as F.relu(x)')

    def call_ref(self, callee: ModRef, e: ir.Call, scope: Scope, env: dict, evaluated=None):
        """A child module, a container element or a loop variable, called with tensors (``evaluated``: the
        arguments, where the caller has them already)."""
        args, kwargs = evaluated or self.fwd_args(e, scope, env)
        for a, ae in zip(args, e.args):
            if not isinstance(a, TensorVal):
                raise SpecArgError(f"modules are called with tensors, not {self.static.describe(a)}", ae.span,
                                   hint=call_it_hint(a, scope) or 'pass a tensor: layer(x)')
        for k, v in kwargs.items():
            if not isinstance(v, Val):
                span = next(kw.span for kw in e.keywords if kw.name == k)
                raise SpecArgError(f"forward argument {k!r} must be a compile-time value", span,
                                   hint='give a literal or a const, e.g. need_weights=False')
        codes = [a.expr for a in args] + [E.Keyword(k, expr_of(v)) for k, v in kwargs.items()]
        return self.call_module(callee, args, codes, e.span, scope, kwargs=kwargs)

    def module_name(self, e: ir.Call, env: dict) -> str | None:
        """The layer, container or block a call in forward makes (``nn.ReLU()``, ``Sequential(...)``), or None."""
        dotted = self.static.dotted(e.func)
        if dotted is None or dotted.split(".")[0] in env:
            return None
        bare = dotted.removeprefix("torch.").removeprefix("nn.")
        if bare in CATALOG or bare in CONTAINERS:
            return bare
        return dotted if dotted in self.state.blocks else None

    def inline_module(self, made: ir.Call, e: ir.Call, scope: Scope, env: dict):
        """``nn.ReLU()(h)``, ``nn.Softmax(dim=1)(logits)``: a module made in forward and called at once, as the
        tutorials write it. One without parameters or buffers becomes a child of its own, named for its type
        (``self.relu``; one child for each place it is written, however often that runs). One with them would be
        a new, untrained module on every call, and is refused: it must be declared as a child."""
        slot = scope.inline.get(made.span)
        fresh = slot is None
        if fresh:
            values = dict(scope.env)  # evaluated as __init__ would: forward's own numbers by their values
            for k in scope.locals:
                v = env.get(k)
                if isinstance(v, TensorVal) or isinstance(v, Val) and not isinstance(v.value, (Sym, Mode)):
                    values[k] = v if isinstance(v, TensorVal) else Val(v.value)
                else:
                    values.pop(k, None)
            recipe = self.static.eval_static(made, scope, values, allow_modules=True)
            name = self.inline_child_name(recipe.name, scope)
            slot = scope.inline[made.span] = ChildSlot(name, recipe, True, made.span)
            scope.children[name] = slot
            scope.order.append(name)
        ref = ModRef(slot, slot.instance, E.attr(E.SELF, slot.name), slot.name)
        args, kwargs = self.fwd_args(e, scope, env)
        if fresh and all(isinstance(a, TensorVal) for a in args):  # built as it is, refused if it keeps state
            try:
                slot.instance = self.modules.instantiate(slot.recipe, [a.info for a in args], scope, slot.name,
                                                         e.span)
            except SpecError:
                if slot.recipe.kind == "layer" and not CATALOG[slot.recipe.name].stateless:
                    raise self.made_in_forward(made, e, slot, scope, "params") from None
                raise
            nodes = list(slot.instance.node.walk())
            if any(n.params for n in nodes) or any(n.buffers for n in nodes):
                raise self.made_in_forward(made, e, slot, scope, "params" if any(n.params for n in nodes)
                                           else "buffers")
        return self.call_ref(ref, e, scope, env, evaluated=(args, kwargs))

    def inline_child_name(self, type_name: str, scope: Scope) -> str:
        """A name for a child forward makes: ``relu``, ``relu2``, clear of every name of the spec and the class."""
        taken = set(scope.children) | set(scope.env) | scope.locals | {p.name for p in scope.ctor}
        base = child_name(type_name)
        name = scope.names.make(base, taken)
        while name_problem(name, "a child") is not None:  # `identity` is fine; a builtin or nn.Module attribute not
            base += "_"
            name = scope.names.make(base, taken)
        return name

    def made_in_forward(self, made: ir.Call, e: ir.Call, slot: ChildSlot, scope: Scope, what: str) -> SpecError:
        """The refusal of ``nn.Linear(4, 2)(x)``: a layer with weights (or running statistics) made on every call."""
        kind = slot.recipe.name
        written = source(dataclasses.replace(made, func=ir.Name(span=made.func.span, id=kind)))
        called = ", ".join([source(a) for a in e.args] + [source(k) for k in e.keywords]) or "x"
        scope.children.pop(slot.name, None)  # the name it would have had is free again: suggest that one
        name = self.inline_child_name(kind, scope)
        noun = "layer" if slot.recipe.kind == "layer" else "module"
        said = f"a new, untrained {noun}" if what == "params" else f"a new {noun} whose running statistics start over"
        return SpecArgError(f"a {kind} made inside forward is {said} on every call; declare it as a child: "
                            f"{name} = {written}", made.span,
                            hint=f"declare it as a child: {name} = {written}, and call {name}({called}) in forward")

    def module_not_called(self, e: ir.Call, kind: str, scope: Scope) -> SpecError:
        """``act = nn.ReLU()`` in forward: a module kept as a value, which forward cannot hold."""
        name = self.inline_child_name(kind, scope)
        written = source(e.func)
        return SpecArgError(f"{written}(...) makes a module: forward calls such a module at once, "
                            f"{written}(...)(x), or a child declared in the body", e.span,
                            hint=f"declare it as a child: {name} = {kind}(...), and call {name}(x) in forward")

    def fwd_list(self, e: ir.Call, scope, env):
        """``list(x.chunk(2, 1))``, ``list(feats)``: a new list of the same elements, to grow."""
        if len(e.args) != 1 or e.keywords or e.args[0].kind == "starred":
            raise SpecArgError("list() takes one tuple or list", e.span, hint="write list(x.chunk(2, dim=1))")
        v = self.fwd_expr(e.args[0], scope, env)
        code = E.call("list", expr_of(v))
        if isinstance(v, TupleVal):
            return ListVal(list(v.items), code)
        if isinstance(v, Val) and isinstance(v.value, (tuple, list)):
            return Val(list(v.value), code)
        if isinstance(v, ModuleView) and v.what == "keys":
            return Val(list(v.ref.instance.recipe.keys), code)
        raise SpecArgError(f"list() takes a tuple or list here, not {self.static.describe(v)}", e.args[0].span,
                           hint="loop over modules with for, or build a list of outputs: [m(x) for m in layers]")

    def fwd_function(self, e: ir.Call, dotted: str, scope, env):
        if self.module_name(e, env) is not None:  # `act = nn.ReLU()`: a module, kept as a value
            raise self.module_not_called(e, self.module_name(e, env), scope)
        name = dotted.split(".")[-1]
        ns = dotted.rsplit(".", 1)[0] if "." in dotted else None
        op = OPS.get(name)
        if op is not None and op.function is None:
            raise SpecNameError(f"{name} is a tensor method: write x.{name}(...)", e.func.span,
                                hint='write it as a method of the tensor')
        prefix = function_prefix(op, ns) if op is not None else None
        if prefix is None and ns in ("nn", "torch.nn") and miscased_module(dotted) is not None and (
                not e.args or op is None):  # relu = nn.relu(), a module meant; nn.relu(x) is F.relu's slip
            raise miscased_module_error(e, miscased_module(dotted), dotted, on_tensors=bool(e.args))
        if prefix is None:
            if op is not None:
                hint = f"did you mean {op.function}.{name}?"
            elif name in MATMUL_SPELLINGS:  # torch.mm, torch.mv, torch.dot: matmul does each
                hint = f"write {MATMUL_SPELLINGS[name]}: torch.matmul multiplies 1-d and 2-d tensors as {name} does"
            else:  # the names that namespace has: F.softmax, not F.cat
                known = sorted(F_NAMES if ns in F_SPELLINGS else TORCH_NAMES if ns == "torch" else OPS)
                hint = nearest(name, known, f"{ns} functions" if ns in ("F", "torch") else "functions",
                               prefix=f"{ns}." if ns is not None else "")
            raise SpecNameError(f"unknown function {dotted!r}", e.func.span, hint=hint)
        args, kwargs = self.fwd_args(e, scope, env)
        return self.apply(op, e, args, kwargs, f"{prefix}.{name}", scope, method_on=None, env=env)

    def fwd_method(self, e: ir.Call, base: TensorVal, name: str, scope, env):
        if name in ("cuda", "cpu") or name == "to" and _names_device(e, env, self.state.consts):
            move = source(e)[len(source(e.func.value)):]  # `.to(device)`, `.cuda()`, as written
            raise SpecArgError(f".{name}(...) moves the tensor to a device, but modelspec places the whole module "
                               f"and its inputs on one device itself, before forward runs", e.span,
                               hint=f"delete {move}: place the module instead, with modelspec run --device "
                                    f"cuda, compile_spec(..., device=\"cuda\") or model.to(device), and give it "
                                    f"inputs on that device")
        op = OPS.get(name)
        if op is None or not op.method:
            raise SpecNameError(f"unknown tensor method {name!r}", e.func.span,
                                hint=f"torch has it as a function: {op.function}.{name}(x, ...)" if op is not None
                                else nearest(name, [n for n, o in OPS.items() if o.method], "tensor methods",
                                             prefix="x."))
        args, kwargs = self.fwd_args(e, scope, env)
        return self.apply(op, e, [base] + args, kwargs, name, scope, method_on=base, env=env)

    def torch_dtype(self, e: ir.Attribute) -> Val:
        """``torch.long`` and its kin: a dtype as a compile-time value, for dtype= and ``.to``."""
        if e.attr in TORCH_DTYPES:
            return Val(DType(TORCH_DTYPES[e.attr]), E.attr("torch", e.attr))
        if e.attr in UNTRACKED_DTYPES:
            raise SpecArgError(f"torch.{e.attr} is not a dtype modelspec tracks: tensors here are float32, int64 or "
                               f"bool", e.span, hint="write torch.float, torch.long or torch.bool; "
                                                     "compile_spec(dtype=...) sets the precision of the whole module")
        close = suggest(e.attr, sorted(TORCH_DTYPES), "dtypes")
        raise SpecNameError(f"unknown name 'torch.{e.attr}'", e.span,
                            hint=close.replace("did you mean ", "did you mean torch.") if close.startswith("did")
                            else "dtypes are torch.float, torch.long and torch.bool; functions are called: "
                                 "torch.zeros(...)")

    def check_indices(self, found, span, label: str) -> None:
        """An op reading a tensor's values as indices (F.embedding, gather, index_select) takes them, as the
        Embedding layer does, from a model input (or a view of one), whose example values are then drawn below
        the bound; values computed in forward are not known before it runs."""
        if found is None:
            return
        index, bound = found
        if index.dtype == "long" and all(d.value != 0 for d in index.shape):
            self.state.index_reads += 1
        self.bodies.bound_values(index, bound.value, span, label, "indices", "its index",
                                 hint="index with a model input declared Long[...], or a view of one (reshape, "
                                      "index, flatten): example inputs are drawn below the bound")

    def check_needs(self, needs: list, span, label: str) -> None:
        """A call's rule took a symbolic size to be large enough (reflect padding of 2 needs T >= 3, as a slice
        x[:, 2:] does): the example sizes must agree, as for every symbolic dim (check_example)."""
        for need, what in needs:
            for sizes in self.bodies.example_sizes():
                if need.symbols <= set(sizes) and evaluate(need, sizes) < 1:
                    at = ", ".join(f"{s}={sizes[s]}" for s in sorted(need.symbols))
                    raise SpecShapeError(f"{label} needs {what}, which does not hold at {at}", span,
                                         hint="declare a larger example size for the symbol (T=128), or change "
                                              "the arguments so they fit the smallest size")

    def placement(self, op, args, kwargs, result, scope: Scope, env: dict) -> dict:
        """The ``device=`` (and ``dtype=``) a created tensor is printed with, so that the module runs wherever
        its inputs are, as nanoGPT writes ``torch.arange(0, t, dtype=torch.long, device=device)``.

        The rule: the tensor a size was read from (``x.size(1)``, ``x.shape[0]``), else the forward's first
        input that still holds a tensor, else a parameter of the module; for a float result (zeros, ones, full
        of a float, randn, rand) the first float one of those, whose dtype it then takes as well, so that the
        module also runs in float64 or half precision. Given explicitly, neither is added."""
        if not op.creates:
            return {}
        found = []

        def add(ex):
            if isinstance(ex, E.Name) and isinstance(env.get(ex.id), TensorVal):
                found.append((ex, env[ex.id].info))
            elif isinstance(ex, E.Attribute) and ex.value == E.SELF and isinstance(env.get(ex.attr), ParamRef):
                found.append((ex, env[ex.attr].info))

        def walk(ex):  # x.shape[1], x.size(1), x.numel(): read from x
            if isinstance(ex, E.Attribute):
                if ex.attr in ("shape", "size", "numel", "ndim"):
                    add(ex.value)
                parts = [ex.value]
            elif isinstance(ex, E.Call):
                parts = [ex.func, *ex.args, *(k.value for k in ex.keywords)]
            elif isinstance(ex, E.Subscript):
                parts = [ex.value, *ex.index]
            elif isinstance(ex, E.BinOp):
                parts = [ex.left, ex.right]
            elif isinstance(ex, (E.UnaryOp, E.Starred)):
                parts = [ex.operand if isinstance(ex, E.UnaryOp) else ex.value]
            elif isinstance(ex, (E.TupleExpr, E.ListExpr)):
                parts = list(ex.items)
            else:
                parts = []
            for part in parts:
                walk(part)

        for v in [*args, *kwargs.values()]:
            walk(expr_of(v))
        for name in getattr(scope, "forward_params", []):
            add(E.Name(name))
        for name, v in env.items():
            if isinstance(v, ParamRef):
                add(E.attr(E.SELF, name))
        if not found:
            return {}
        floats = [f for f in found if f[1].dtype == "float"]
        follow_dtype = op.float_like and result.dtype == "float" and "dtype" not in kwargs and floats
        ref = floats[0][0] if follow_dtype else found[0][0]
        extra = {} if "device" in kwargs else {"device": E.Attribute(ref, "device")}
        if follow_dtype:
            extra["dtype"] = E.Attribute(ref, "dtype")
        return extra

    def apply(self, op, e, args, kwargs, spelled, scope, method_on, env=None):
        def info(v):
            if isinstance(v, TensorVal):
                return v.info
            if isinstance(v, TupleVal):
                return Val([info(i) for i in v.items])
            return v

        infos, kw_infos = [info(a) for a in args], {k: info(v) for k, v in kwargs.items()}
        how = {"method": method_on is not None, "ns": spelled.rsplit(".", 1)[0] if method_on is None else None}
        try:
            moded = [v for v in [*infos, *kw_infos.values()] if isinstance(v, Val) and isinstance(v.value, Mode)]
            if moded:  # a number that depends on self.training: the op must agree in both modes
                picked = [{id(v): Val(v.value.pick(t)) for v in moded} for t in (True, False)]
                results = [apply_op(op, [p.get(id(v), v) for v in infos], {k: p.get(id(v), v)
                                                                         for k, v in kw_infos.items()}, **how)
                           for p in picked]
                if _signature_of(results[0]) != _signature_of(results[1]):
                    raise SpecShapeError(f"{spelled}(...) would make a different shape in training than in eval",
                                         e.span, hint="a number chosen by `if training` may set a probability, "
                                                      "not a size")
                infos = [picked[0].get(id(v), v) for v in infos]
                kw_infos = {k: picked[0].get(id(v), v) for k, v in kw_infos.items()}
            result = apply_op(op, infos, kw_infos, **how)
        except ShapeProblem as exc:
            label = f"{spelled}" if method_on is None else f".{spelled}"
            raise SpecShapeError(_labelled(f"{label}(...)", str(exc)), e.span,
                                 hint=exc.hint or op_signature(op, spelled, method_on is not None)) from None
        if op.name == "view":
            self.state.views += 1
        label = f"{spelled}(...)" if method_on is None else f".{spelled}(...)"
        self.check_indices(op_indexes(op, infos, kw_infos, **how), e.span, label)
        self.check_needs(op_needs(op, infos, kw_infos, **how), e.span, label)
        arg_exprs = [expr_of(a) for a in (args[1:] if method_on is not None else args)]
        kw_exprs = {k: expr_of(v) for k, v in kwargs.items()}
        if op.training_arg and "training" not in kwargs:
            kw_exprs["training"] = E.attr(E.SELF, "training")  # F.dropout defaults to training=True
        if isinstance(result, TensorInfo):
            kw_exprs.update(self.placement(op, args, kwargs, result, scope, env or {}))
        func = E.Attribute(method_on.expr, spelled) if method_on is not None else spelled
        code = E.call(func, *arg_exprs, **kw_exprs)
        made = [result] if isinstance(result, TensorInfo) else result if isinstance(result, list) else []
        tensors = [a.info for a in args if isinstance(a, TensorVal)] + [
            t.info for a in args if isinstance(a, TupleVal) for t in a.items if isinstance(t, TensorVal)]
        for code_, message, hint in op_warnings(op.name, label.removesuffix("(...)"), infos, kw_infos,
                                                self.state.batch_symbols, method_on is not None):
            self.state.warn(code_, message, e.span, hint)
        for m in made:
            if isinstance(m, TensorInfo):
                m.feature_map = op_feature_map(op.name, spelled, tensors, tuple(m.shape))
                m.contiguous = result_contiguous(op, tensors)
                if op.name in SAME_VALUES and tensors:
                    m.source = tensors[0].source  # rearranged, not changed: still that input's values
                    m.below = tensors[0].below
        self.bodies.check_example([m for m in made if isinstance(m, TensorInfo)], e.span, label)
        if op.macs is not None and isinstance(result, TensorInfo):
            self.add_macs(scope, op_macs(op, result, infos, kw_infos, **how))
        if isinstance(result, TensorInfo):
            said = spelled if method_on is None else f".{spelled}"
            scope.note(op_note(op, said, result, infos, kw_infos, **how))
        if isinstance(result, Val):
            return Val(result.value, code)
        if not isinstance(result, (TensorInfo, list)):
            return result
        made = [result] if isinstance(result, TensorInfo) else result
        src = scope.step("op", spelled if method_on is None else f".{spelled}", _sources(args + list(kwargs.values())),
                         [r.shape for r in made])
        if isinstance(result, TensorInfo):
            return TensorVal(result, code, src=src)
        return TupleVal([TensorVal(r, None, src=src) for r in result], code, src=src)

    def call_module(self, ref: ModRef, args: list, codes: list, span, scope: Scope, target=None, kwargs=None):
        infos = [a.info for a in args]
        if kwargs:
            recipe = ref.slot.recipe if ref.slot is not None else ref.instance.recipe.items[ref.index]
            recipe = recipe.shared.recipe if recipe.kind == "shared" else recipe
            if recipe.kind != "layer":
                raise SpecArgError(f"{recipe.name} is called with tensors only", span,
                                   hint='pass only tensors to a block or container')
        call = (lambda inst: inst.call(infos, span, kwargs)) if kwargs else (lambda inst: inst.call(infos, span))
        absent = ref.slot is not None and not ref.slot.present
        out = None
        if ref.slot is not None:
            slot = ref.slot
            if absent:
                # build it anyway, to print the class's other branch; it acts as identity here
                if slot.hypothetical is None:
                    saved = self.state.total_params
                    try:
                        slot.hypothetical = self.modules.instantiate(slot.recipe, infos, scope, slot.name)
                        out = call(slot.hypothetical)
                    except SpecError:
                        slot.hypothetical = None
                    self.state.total_params = saved
                elif slot.hypothetical is not None:
                    out = call(slot.hypothetical)
            else:
                if slot.instance is None:
                    slot.instance = self.modules.instantiate(slot.recipe, infos, scope, slot.name, span)
                out = call(slot.instance)
        else:
            inst = self.modules.element(ref.instance, ref.index, infos, span)
            out = call(inst)
        codes = codes or [a.expr for a in args]
        call_code = E.Call(ref.expr, tuple(c for c in codes if c.kind != "keyword"),
                           tuple(c for c in codes if c.kind == "keyword"))
        made = [o.shape for o in _flat_infos(out)] if out is not None else []
        type_name = (ref.slot.instance or ref.slot.hypothetical).node.type_name if ref.slot is not None and (
            ref.slot.instance or ref.slot.hypothetical) else (ref.instance.items[ref.index].node.type_name
                                                              if ref.slot is None else ref.slot.recipe.name)
        label = f"{ref.path} ({type_name})" + (" if present" if ref.slot is not None and ref.slot.cond is not None
                                               else "")
        src = scope.step("module", label, [a.src for a in args], made or [infos[0].shape],
                         path=f"{scope.path}.{ref.path}" if scope.path else ref.path)
        if ref.slot is not None and ref.slot.cond is not None:
            # an absent child acts as identity; both cases print as torchvision writes them
            if len(args) != 1:
                raise SpecArgError("a conditional child takes one input", span,
                                   hint='an absent child acts as identity, which takes one tensor')
            if isinstance(out, list):
                raise SpecArgError("a conditional child must return one tensor", span,
                                   hint='an absent child acts as identity, which returns one tensor')
            result = infos[0] if absent else out
            if target is not None and codes[0] == E.Name(target):
                var = target
            else:
                var = self.fresh(scope, f"{ref.slot.name}_out", span)
                scope.emit(E.Assign(var, codes[0]), [infos[0].shape])
            scope.emit(E.IfHead(E.Compare(ref.expr, ("is not",), (E.Constant(None),))))
            scope.indent += 1
            scope.emit(E.Assign(var, call_code), [out.shape] if out is not None else [])
            scope.indent -= 1
            return TensorVal(result, E.Name(var), src=src)
        return as_value(out, call_code, src)

    def fresh(self, scope: Scope, base: str, site=None) -> str:
        """A temporary of forward, clear of every name the spec writes and of the class's own; the same one
        for the same ``site`` (a call's span), so that each pass of a loop prints the same code."""
        made = scope.temporaries
        if site is not None and (base, site) in made:
            return made[base, site]
        name = scope.names.make(base, scope.locals | set(scope.env))
        scope.locals.add(name)
        if site is not None:
            made[base, site] = name
        return name


def as_value(out, code, src: int | None = None):
    """A module's result as a forward value: tuples nest, None stays None."""
    if out is None:
        return Val(None, code)
    if isinstance(out, list):
        return TupleVal([as_value(o, None, src) for o in out], code, src=src)
    return TensorVal(out, code, src=src)


def _held(recipe) -> list:
    """The items of a container that are children held again (``Sequential(flatten, layer1, ...)``: the
    recipes of kind "shared"), nested containers included."""
    if recipe.kind == "shared":
        return [recipe]
    return [r for item in recipe.items for r in _held(item)]


def _sources(values) -> list[int]:
    """The dataflow steps a call reads from, tuples and lists included."""
    out = []
    for v in values:
        if isinstance(v, TensorVal) and v.src is not None:
            out.append(v.src)
        elif isinstance(v, TupleVal):
            out.extend(_sources(v.items))
    return list(dict.fromkeys(out))


_ABSENT = object()


def _names_device(e: ir.Call, env: dict, consts: dict) -> bool:
    """Whether ``x.to(...)`` names a device: ``x.to(device)``, ``.to("cuda")``, ``.to(torch.device("cuda"))``,
    ``.to(y.device)``, ``.to(device=...)``; not ``.to(torch.long)`` or ``.to(y)``."""
    if any(k.name == "device" for k in e.keywords):
        return True
    if not e.args:
        return False
    a = e.args[0]
    if isinstance(a, ir.Constant):
        return isinstance(a.value, str)
    if isinstance(a, ir.Name):  # an undefined `device`, as the tutorials define it outside the module
        return a.id not in env and a.id not in consts and ("device" in a.id or a.id in ("dev", "cuda", "cpu", "gpu"))
    if isinstance(a, ir.Attribute):
        return a.attr == "device"
    return isinstance(a, ir.Call) and StaticEvaluator.dotted(a.func) in ("torch.device", "device")


def _element(v):
    """One element of a list or tuple, as a function from the loop variable's expression to its value."""
    if isinstance(v, TensorVal):
        return lambda ex: TensorVal(v.info, ex, src=v.src)
    if isinstance(v, ListVal):
        return lambda ex: ListVal(v.items, ex, src=v.src)
    if isinstance(v, TupleVal):
        return lambda ex: TupleVal(v.items, ex, src=v.src)
    if isinstance(v, Val):
        return lambda ex: Val(v.value, ex)
    return lambda ex: v


def _materialize(el, expr, span):
    """A loop variable's value: an element, or a pair of them (``for pair in d.items()``) as a tuple."""
    if callable(el):
        return el(expr)
    raise SpecArgError("each element here is a (key, module) pair; a module is used by its name", span,
                       hint="unpack the pair: for name, layer in layers.items()")


def _same_kind(a, b) -> bool:
    """Two values a name may hold after `if training`: tensors of one shape and dtype, or the same value."""
    if isinstance(a, TensorVal) and isinstance(b, TensorVal):
        return a.info.shape == b.info.shape and a.info.dtype == b.info.dtype
    if isinstance(a, Val) and isinstance(b, Val):
        return a.value == b.value
    return a is b


def _number(v) -> bool:
    return isinstance(v, Val) and isinstance(v.value, (int, float)) and not isinstance(v.value, bool)


def _signature_of(result):
    """An op's result as what the mode may not change: shapes and dtypes (and a compile-time value)."""
    if isinstance(result, TensorInfo):
        return (result.shape, result.dtype)
    if isinstance(result, list):
        return [_signature_of(r) for r in result]
    return result.value if isinstance(result, Val) else result


def _note_key(notes: list) -> list:
    """OpNotes compared by what --explain would say of them: their sizes, not how the sizes are spelled."""
    def sizes(shape):
        return tuple(str(d.value) for d in shape)

    return [(n.kind, n.label, tuple(sizes(s) for s in n.operands), sizes(n.result), n.dim, n.end_dim, n.inferred)
            for n in notes]


def _holds(v: TupleVal, items: list) -> bool:
    """Whether the list or tuple ``v`` is, or holds at any depth, the list whose elements are ``items``."""
    return v.items is items or any(isinstance(i, TupleVal) and _holds(i, items) for i in v.items)


def _no_mode(v, span, what: str) -> None:
    """A number chosen by ``training`` decides nothing about shapes: not an index, a bound or a size."""
    if isinstance(v, Val) and isinstance(v.value, Mode):
        raise SpecArgError(f"a number chosen by `training` cannot be {what}: what it selects would depend on the "
                           f"mode", span, hint="choose between tensors instead: a if training else b")
