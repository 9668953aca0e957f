"""Building modules: recipes become instances when forward first calls them.

Layers bind their arguments and infer ``_`` from the input shape; blocks
open a new `Scope` and finish as a shared `ClassDef`; containers chain or
hold their elements.
"""

from __future__ import annotations

import dataclasses

from . import expr as E
from . import ir
from .errors import (
    Span,
    SpecArgError,
    SpecLimitError,
    SpecNameError,
    SpecShapeError,
    SpecError,
    did_you_mean,
)
from .layers import CATALOG
from .layers.base import (INFER, ArgError, ArgProblem, Bound, InferMismatch, ModuleArg, ShapeProblem, bind,
                          check_elements, plain_value, signature_hint)
from .lint import feature_map, flattens_to, flatten_hint, layer_warnings, unbatched_fix, unbatched_problem
from .model import ClassDef, CtorParam, Line, ModuleNode, TensorInfo
from .shapes import InputSlot, Sym, Val, const_expr, evaluate, shape_str
from .values import (DIM_NAMES, Elaboration, Instance, Recipe, Scope, _labelled, _PathScope, _real, expr_of,
                     literal)


class ModuleBuilder:
    """From recipes to built modules and classes; a block's body is elaborated by ``bodies`` (the `Elaborator`)."""

    def __init__(self, state: Elaboration, static, bodies):
        self.state, self.static, self.bodies = state, static, bodies

    def recipe_needs_input(self, r: Recipe) -> bool:
        if r.kind == "layer":
            layer = CATALOG[r.name]
            given = {a.name for a in layer.args[: len(r.args)]} | set(r.kwargs)
            if any(v is INFER for v in list(r.args) + list(r.kwargs.values())):
                return True
            return any(a.infer is not None and a.name not in given for a in layer.args)
        if r.kind == "block":
            return True
        if r.kind == "shared":
            return r.shared.instance is None and self.recipe_needs_input(r.shared.recipe)
        return any(self.recipe_needs_input(i) for i in r.items)

    def count_params(self, n: int, span: Span, what: str = "parameters"):
        self.state.total_params += n
        if self.state.total_params > self.state.limits.max_params:
            raise SpecLimitError(
                f"the model would need {self.state.total_params:,} {what}, over the limit of "
                f"{self.state.limits.max_params:,}", span,
                hint="lower the sizes, or raise the limit: --max-params N on the command line, "
                     "limits=Limits(max_params=N) in Python",
            )

    def instantiate(self, r: Recipe, inputs: list[TensorInfo] | None, scope: Scope, name: str,
                    call_span: Span | None = None) -> Instance:
        path = f"{scope.path}.{name}" if scope.path else name
        # record what is built, parents before children, so a summary can show how far a failing spec got;
        # a module argument ("encoder.arg0") and an absent child, built only to print its class, are no rows
        slot = scope.children.get(name) if isinstance(scope, Scope) else None
        aside = bool(self.state.building_aside) or "." in name or (slot is not None and not slot.present)
        row = len(self.state.built)
        if not aside:
            self.state.built.append(ModuleNode(name, path, r.name, r.kind, r.span))  # stands in until it is built
        self.state.building_aside += aside
        try:
            inst = self.build(r, inputs, scope, name, path, call_span)
        finally:
            self.state.building_aside -= aside
        if not aside:
            self.state.built[row] = inst.node
        return inst

    def build(self, r: Recipe, inputs, scope, name, path, call_span: Span | None = None) -> Instance:
        self.state.module_count += 1
        self.state.step(r.span)
        if self.state.module_count > self.state.limits.max_modules:
            raise SpecLimitError(f"the model would have more than {self.state.limits.max_modules:,} modules", r.span,
                                 hint="use fewer or shorter repeats; or pass limits=Limits(max_modules=...)")
        if r.kind == "layer":
            return self.build_layer(r, inputs, scope, name, path, call_span)
        if r.kind == "block":
            return self.build_block(r, inputs, scope, name, path)
        if r.kind == "sequential":
            return self.build_sequential(r, inputs, scope, name, path)
        if r.kind == "shared":
            return self.build_shared(r, inputs, scope, name, path, call_span)
        return self.build_container(r, scope, name, path)

    def build_shared(self, r: Recipe, inputs, scope, name, path, call_span: Span | None = None) -> Instance:
        """A child a container holds again (``Sequential(flatten, fc)``): the same module, not a copy, as
        ``nn.Sequential(self.flatten, self.fc)`` holds it. It is built where it is first called (here, if not
        before); every call, here or in forward, must fit it as built. Its node in the container names the child
        and counts nothing of its own: torch's parameters() lists a shared parameter once."""
        slot, owner = r.shared, scope
        while isinstance(owner, _PathScope):  # a container in a container: the class the child belongs to
            owner = owner._scope
        # in an absent container, built only to print its class, the child does not run: its calls here leave
        # its counts as they were, and a child first built here is built again where it first really runs
        aside = bool(self.state.building_aside)
        child = slot.instance
        if child is None:
            child = self.instantiate(slot.recipe, inputs, owner, slot.name, call_span)
            if not aside:
                slot.instance = child
        node = ModuleNode(name, path, child.node.type_name, child.node.kind, r.span, layer=child.node.layer,
                          args=dict(child.node.args), shared=child.node.path)
        inst = Instance(node, E.attr(E.SELF, slot.name), r, bound=child.bound, classdef=child.classdef)

        def call(ins, span=None, kwargs=None):
            was = ", ".join(shape_str(t.shape) for t in child.node.inputs)
            kept = [(n, n.macs, n.repeats, n.inputs, n.outputs) for n in child.node.walk()] if aside else []
            try:
                out = child.call(ins, span, kwargs) if kwargs else child.call(ins, span)
            except SpecShapeError as err:
                if not was or err.span == r.span:  # its first call, or an error that names this place already
                    raise
                now = ", ".join(shape_str(t.shape) for t in ins)
                raise SpecShapeError(
                    f"{node.type_name} `{child.node.path}` is held again as `{path}`, whose input {now} does not "
                    f"fit it as built for {was}: {err.message}", r.span,
                    hint=f"a module held twice is one module, with one set of weights for one input size; write "
                         f"a new one here: {slot.recipe.name}(...)") from None
            for n, macs, repeats, n_in, n_out in kept:
                n.macs, n.repeats, n.inputs, n.outputs = macs, repeats, n_in, n_out
            if not node.inputs:
                node.inputs, node.outputs = list(ins), list(_flat_infos(out))
            return out

        inst.call = call
        return inst

    def build_layer(self, r: Recipe, inputs, scope, name, path, call_span: Span | None = None) -> Instance:
        layer = CATALOG[r.name]
        shapes = tuple(t.shape for t in inputs) if inputs is not None else ()
        label = f"{r.name} `{path}`"
        if inputs is not None:
            self.check_input_count(layer, label, len(inputs), call_span or r.span)
        r = self.resolve_module_args(r, inputs, scope, path)
        bound = self.bind_layer(layer, r, shapes, label, inputs)
        code = self.layer_expr(layer, r, bound, scope)
        node = ModuleNode(name, path, r.name, "layer", r.span, layer=layer, args=dict(bound.values))
        try:
            params = layer.params(bound)
        except TypeError:
            params = None
        if not isinstance(params, int):
            raise SpecShapeError(f"{label}: its parameter count would depend on a symbolic size", r.span,
                                 hint='give the size as a number, or declare the symbol with an example, e.g. T=128')
        node.params = node.trainable = params
        node.buffers = layer.buffers(bound)
        self.count_params(params + node.buffers, r.span, "parameters and buffer elements" if node.buffers else
                          "parameters")
        inst = Instance(node, code, r, bound)
        inst.call = lambda ins, span=None, kwargs=None: self.call_layer(inst, ins, scope, span, kwargs)
        return inst

    @staticmethod
    def check_input_count(layer, label: str, n: int, span):
        counts = layer.input_counts()
        if n not in counts:
            want = " or ".join(str(c) for c in counts)
            raise SpecArgError(f"{label} takes {want} input{'s' if max(counts) > 1 else ''}, got {n}", span,
                               hint="combine the tensors first (torch.cat, +), or give each its own layer"
                               if n > max(counts) else "pass it every tensor it takes")

    def resolve_module_args(self, r: Recipe, inputs, scope, path) -> Recipe:
        """Build modules given as arguments (TransformerEncoder's encoder_layer) for the same input."""
        if not any(isinstance(v, Recipe) for v in list(r.args) + list(r.kwargs.values())):
            return r

        def resolve(v, name):
            if not isinstance(v, Recipe):
                return v
            saved = self.state.total_params  # counted once, by the layer that owns it
            # as many of the inputs as the argument takes: a decoder layer both of its stack's (tgt, memory)
            counts = CATALOG[v.name].input_counts() if v.kind == "layer" and v.name in CATALOG else (1,)
            n = max((c for c in counts if c <= len(inputs)), default=1)
            inst = self.instantiate(v, inputs[:n], scope, f"{name}")
            self.state.total_params = saved
            return Val(ModuleArg(inst.node.type_name, inst.node.total_params, dict(inst.node.args)), inst.expr)

        args = [resolve(v, f"{path}.arg{i}") for i, v in enumerate(r.args)]
        kwargs = {k: resolve(v, f"{path}.{k}") for k, v in r.kwargs.items()}
        return dataclasses.replace(r, args=args, kwargs=kwargs)

    def bind_layer(self, layer, r: Recipe, shapes, label, inputs=None):
        unbatched = unbatched_problem(layer, shapes, self.state.batch_symbols)
        try:
            return bind(layer, list(r.args), dict(r.kwargs), shapes)
        except ArgError as exc:
            if unbatched and exc.arg == "in_channels":  # Conv2d(_, 8, 3) on [B, 28, 28] infers in_channels=B
                exc.hint = unbatched_fix(shapes[0])
            span = r.span
            if exc.arg is not None and exc.arg in r.kw_spans:
                span = r.kw_spans[exc.arg]
            elif exc.arg is not None:
                idx = [a.name for a in layer.args].index(exc.arg) if layer.arg(exc.arg) else None
                if idx is not None and idx < len(r.arg_spans):
                    span = r.arg_spans[idx]
            elif exc.index is not None and exc.index < len(r.arg_spans):
                span = r.arg_spans[exc.index]
            raise SpecArgError(f"{label} {exc.message}", span, hint=exc.hint or signature_hint(layer)) from None
        except InferMismatch as exc:
            span = r.kw_spans.get(exc.arg)
            if span is None:
                idx = [a.name for a in layer.args].index(exc.arg)
                span = r.arg_spans[idx] if idx < len(r.arg_spans) else r.span
            shape = shapes[0] if len(shapes) == 1 else None
            got = shape_str(shape) if shape is not None else ", ".join(shape_str(s) for s in shapes)
            fixed = self.call_text(layer, r, exc.arg, exc.inferred)
            underscore = self.call_text(layer, r, exc.arg, "_")
            hint = f"use {fixed}, or {underscore} to infer it"
            x = inputs[0] if inputs else None
            if layer.name == "Linear" and x is not None and len(x.shape) >= 3 and (
                    x.feature_map is not None or flattens_to(x, exc.given)):
                # not Linear(26, 10) for [B, 8, 26, 26]: the input is a feature map, or an image, not flattened
                got = f"{got}, {x.feature_map}" if x.feature_map is not None else got
                out = r.kwargs.get("out_features", r.args[1] if len(r.args) > 1 else "...")
                hint = flatten_hint(x, literal(plain_value(out)) if isinstance(out, Val) else out)
            elif unbatched:
                hint = unbatched_fix(shapes[0])
            raise SpecShapeError(
                f"{label} expects {exc.arg}={literal(exc.given)} but its input is {got}", span, hint=hint,
            ) from None
        except ShapeProblem as exc:
            raise SpecShapeError(_labelled(label, str(exc)), r.span,
                                 hint=unbatched_fix(shapes[0]) if unbatched else signature_hint(layer)) from None

    def call_text(self, layer, r: Recipe, arg: str, value) -> str:
        parts = []
        pos_names = [a.name for a in layer.args if not a.kw_only]
        for i, v in enumerate(r.args):
            n = pos_names[i] if i < len(pos_names) else None
            parts.append(str(value) if n == arg and value == "_" else literal(value) if n == arg else
                         ("_" if v is INFER else literal(v)))
        for k, v in r.kwargs.items():
            shown = (str(value) if value == "_" else literal(value)) if k == arg else (
                "_" if v is INFER else literal(v))
            parts.append(f"{k}={shown}")
        return f"{layer.name}({', '.join(parts)})"

    def dim_expr(self, v, scope: Scope, argname: str):
        """How an inferred argument is spelled inside the class of ``scope``."""
        if isinstance(v, tuple):
            if len(v) == 1:  # LayerNorm(_) reads LayerNorm(128), as people write it
                return self.dim_expr(v[0], scope, argname)
            return E.TupleExpr(tuple(self.dim_expr(x, scope, argname) for x in v))
        if not isinstance(v, Val):
            v = Val(v)
        if isinstance(v.value, Sym):
            raise ShapeProblem(f"{argname} would be the symbolic size {v.value}; it must be a fixed number")
        scope = _real(scope)
        if scope.kind == "model":
            return const_expr(v.value)
        if v._expr is not None and E.names_in(v._expr) <= self.init_names(scope):
            return v._expr
        if v.slot is not None and v.slot.owner is scope:
            if v.slot.name is None:
                v.slot.name = scope.new_ctor_param(DIM_NAMES.get(argname, argname), slot=v.slot)
            return E.Name(v.slot.name)
        return E.Name(scope.new_ctor_param(DIM_NAMES.get(argname, argname), value=v.value))

    def repeat_of(self, r: Recipe, items: list, scope):
        """The count expression a container of one comprehension keeps (``range(depth)``), when every pass
        printed the same module; otherwise the count is fixed in the class (baked)."""
        if r.repeat is None:
            return None
        if items and all(i.expr == items[0].expr for i in items) and not _exploded(items[0].expr) \
                and r.repeat.expr is not None:
            return r.repeat.expr
        _real(scope).bake(r.repeat)
        return None

    def init_names(self, scope: Scope) -> set[str]:
        """The names an expression in the class's ``__init__`` may read: its parameters, its locals, the consts."""
        return {p.name for p in scope.ctor} | {r[1] for r in scope.raw if r[0] == "const"} | set(self.state.consts)

    def layer_expr(self, layer, r: Recipe, bound, scope: Scope):
        """``nn.Conv2d(in_channels, planes, 3)``: the constructor call, inferred arguments spelled in the class."""
        args, kwargs = [], {}
        pos_names = [a.name for a in layer.args if not a.kw_only]
        inferred = getattr(bound, "inferred", {})
        try:
            for i, v in enumerate(r.args):
                n = pos_names[i]
                args.append(self.dim_expr(inferred[n], scope, n) if v is INFER else expr_of(v))
            given = set(pos_names[: len(r.args)]) | set(r.kwargs)
            for a in layer.args:
                if a.name in inferred and a.name not in given:
                    kwargs[a.name] = self.dim_expr(inferred[a.name], scope, a.name)
            for k, v in r.kwargs.items():
                kwargs[k] = self.dim_expr(inferred[k], scope, k) if v is INFER else expr_of(v)
        except ShapeProblem as exc:
            raise SpecShapeError(f"{layer.name}: {exc}", r.span,
                                 hint="give the size as a number, or declare the symbol with an example, "
                                      "e.g. T=128") from None
        return E.call(f"nn.{layer.name}", *args, **kwargs)

    def bind_call_args(self, layer, bound, kwargs: dict, label: str, span):
        """Forward's keyword arguments (need_weights=False), checked and added to the bound arguments."""
        names = [a.name for a in layer.call_args]
        values, vals = dict(bound.values), dict(bound.vals)
        for k in kwargs:
            if k not in names:
                hint = did_you_mean(k, names) or (f"it takes {', '.join(names)}" if names else "it takes none")
                raise SpecArgError(f"{label} has no forward argument {k!r}", span, hint=hint)
        for a in layer.call_args:
            v = kwargs.get(a.name)
            plain = v.plain() if isinstance(v, Val) else a.default
            try:
                values[a.name] = a.type(plain)
            except ArgProblem as exc:
                raise SpecArgError(f"{label}: forward argument {a.name!r} {exc}", span,
                                   hint="see the layer's forward signature in torch") from None
            vals[a.name] = v if isinstance(v, Val) else Val(a.default)
        new = Bound(values, vals)
        new.inferred = getattr(bound, "inferred", {})
        return new

    def call_layer(self, inst: Instance, inputs: list[TensorInfo], scope, span=None, call_kwargs=None):
        layer = CATALOG[inst.recipe.name]
        r = inst.recipe
        label = f"{r.name} `{inst.node.path}`"
        shapes = tuple(t.shape for t in inputs)
        self.check_input_count(layer, label, len(inputs), span or r.span)
        if inst.node.inputs:
            # a second call: the input must fit the layer the first call built, `_` already decided
            again = getattr(self.bind_layer(layer, r, shapes, label), "inferred", {})
            first = getattr(inst.bound, "inferred", {})
            changed = [a for a in first if plain_value(first[a]) != plain_value(again.get(a))]
            if changed:
                was = ", ".join(shape_str(t.shape) for t in inst.node.inputs)
                now = ", ".join(shape_str(t.shape) for t in inputs)
                a = changed[0]
                raise SpecShapeError(
                    f"{label} was built for input {was} ({a}={literal(plain_value(first[a]))}) but is called again "
                    f"with {now}", span or r.span,
                    hint="a layer has one set of weights for one input size; define a second layer for the other")
        bound = inst.bound
        if layer.call_args or call_kwargs:
            bound = self.bind_call_args(layer, bound, call_kwargs or {}, label, span or r.span)
        if layer.index_bound is not None:
            self.state.index_reads += 1
            self.bodies.bound_values(inputs[0], layer.index_bound(bound), span or r.span, label, "indices",
                                     "its input", hint="give it a model input declared Long[...], or a view of one "
                                                       "(reshape, index, flatten): example inputs are drawn below "
                                                       "the table's size")
        try:
            layer.check_dtypes(bound, [t.dtype for t in inputs], shapes)
            out = layer.rule(bound, *shapes)
            check_elements(out)
        except ShapeProblem as exc:
            unbatched = unbatched_problem(layer, shapes, self.state.batch_symbols)
            raise SpecShapeError(_labelled(label, str(exc)), span or r.span,
                                 hint=unbatched_fix(shapes[0]) if unbatched else exc.hint or signature_hint(layer)
                                 ) from None
        classes = getattr(layer, "classes", None)
        found = classes(bound, *shapes) if classes is not None else None
        if found is not None:  # a loss's class index target: below the class count, as its examples are drawn
            i, n = found
            self.state.index_reads += 1
            self.bodies.bound_values(inputs[i], n, span or r.span, label, "class indices", "its target")

        def wrap(s, dtype):
            if s is None:
                return None
            if isinstance(s, list):
                return [wrap(x, d) for x, d in zip(s, dtype)]
            contiguous = {"keep": bool(inputs) and inputs[0].contiguous, "strided": False}.get(layer.layout, True)
            shape = tuple(d if isinstance(d, Val) else Val(d) for d in s)
            # the same values, rearranged: still the model input they came from (for Embedding's bound)
            return TensorInfo(shape, dtype, contiguous=contiguous,
                              source=inputs[0].source if layer.rearranges and inputs else None,
                              feature_map=feature_map(layer, label, inputs, shape))

        result = wrap(out, layer.output_dtypes(bound, out, inputs[0].dtype))
        for code, message, hint in layer_warnings(layer, bound, inputs, label, self.state.batch_symbols):
            self.state.warn(code, message, span or r.span, hint)
        self.bodies.check_example(list(_flat_infos(result)), span or r.span, label)
        self.check_rule_at_examples(layer, bound, shapes, result, span or r.span, label)
        node = inst.node
        shape_out = out if isinstance(out, list) else list(_flat_infos(result))[0].shape
        node.macs = node.macs + layer.macs(bound, shape_out, *shapes)  # every call computes
        if not node.inputs:
            node.inputs = list(inputs)
            node.outputs = list(_flat_infos(result))
            if layer.explain is not None:
                node.explain = layer.explain(bound, shapes[0], shape_out)
        return result

    def check_rule_at_examples(self, layer, bound, shapes, result, span, label: str):
        """A rule on symbolic sizes must agree with the same rule on the example sizes (batch 1, 2, 3 and each
        symbol's example): where a size depends on the input in a way the symbolic rule cannot follow
        (ceil_mode's last window, an InstanceNorm over one element), the check says so here."""
        claimed = [t.shape for t in _flat_infos(result)]
        symbolic = [d.value for s in list(shapes) + claimed for d in s if isinstance(d.value, Sym)]
        if all(_bare(v) and v.symbols <= self.state.batch_symbols for v in symbolic):
            return  # only the batch, passed through as it came: nothing to disagree with
        for sizes in self.bodies.example_sizes():
            if not all(d.value.symbols <= set(sizes) for s in shapes for d in s if isinstance(d.value, Sym)):
                continue
            at = ", ".join(f"{k}={v}" for k, v in sizes.items())
            concrete = [tuple(Val(evaluate(d.value, sizes)) for d in s) for s in shapes]
            try:
                out = layer.rule(bound, *concrete)
            except ShapeProblem as exc:
                raise SpecShapeError(f"{label} at the example sizes {at}: {exc}", span,
                                     hint="declare larger example sizes (T=128), or change the layer's arguments"
                                     ) from None
            got = [tuple(int(d.value) if isinstance(d, Val) else int(d) for d in s)
                   for s in _flat_shapes(out)]
            want = [tuple(evaluate(d.value, sizes) for d in s) for s in claimed]
            if got != want:
                raise SpecShapeError(
                    f"{label} gives {', '.join(shape_str(s) for s in claimed)}, which does not hold at the example "
                    f"sizes {at}: there it is {', '.join(str(list(s)) for s in got)}", span,
                    hint="this size depends on the input in a way the shape rule cannot follow for every size; "
                         "give that dim a fixed size")

    def build_sequential(self, r: Recipe, inputs, scope, name, path) -> Instance:
        node = ModuleNode(name, path, "Sequential", "sequential", r.span)
        items = []
        cur = inputs
        names = r.keys or [str(i) for i in range(len(r.items))]  # Sequential({...}) names its modules
        for key, item in zip(names, r.items):
            inst = self.instantiate(item, cur, _PathScope(scope, path), key)
            if cur is not None:
                out = inst.call(cur, item.span)
                if isinstance(out, list):
                    raise SpecShapeError(f"{item.name} `{inst.node.path}` returns {len(out)} tensors; inside a "
                                         f"Sequential each module must return one", item.span,
                                         hint="call it from a forward that unpacks its results")
                cur = [out]
            items.append(inst)
            node.children.append(inst.node)
        if r.keys:  # named modules: nn.Sequential takes them as one OrderedDict, in order
            pairs = tuple(E.TupleExpr((E.Constant(k), i.expr)) for k, i in zip(r.keys, items))
            code = E.call("nn.Sequential", E.call("OrderedDict", E.ListExpr(pairs, explode=True)))
        else:
            code = container_expr("nn.Sequential", [i.expr for i in items], repeat=self.repeat_of(r, items, scope))
        inst = Instance(node, code, r, items=items)
        node.inputs = list(inputs or [])
        node.outputs = cur or []
        node.repeats = 0 if inputs is not None else 1  # built by its first call, which `call` counts
        # a child it holds again counts its own calls (at its own path, outside this one): every call but the
        # one that built it runs the modules again, rather than counting repeats
        again = [inputs is None] if _holds_shared(inst) else None

        def call(ins, span=None, inst=inst):
            rerun = again is not None and again[0]
            if again is not None:
                again[0] = True
            if node.inputs and (rerun or _signature(ins) != _signature(node.inputs)):  # its children check it
                cur2 = ins
                for it in inst.items:
                    cur2 = [it.call(cur2, span)]
                return cur2[0]
            if not ins and not node.outputs:
                return ins
            node.repeats += 1  # the same modules, run again
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
            raise SpecArgError(f"a {kind} cannot be called; loop over it or index it in forward", span or r.span,
                               hint='call a child module, or a function such as F.relu(x)')

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
                                         f"input shape is unknown", r.span,
                                         hint="call it in forward, or give every argument")
                self.element(inst, i, None, r.span)
        for item in inst.items:
            self.finish_container(item, scope)  # a container inside a container: its modules first
        inst.node.children = [i.node for i in inst.items]
        exprs = [i.expr for i in inst.items]
        if inst.recipe.kind == "modulelist":
            inst.expr = container_expr("nn.ModuleList", exprs, brackets="[]",
                                       repeat=self.repeat_of(inst.recipe, inst.items, scope))
        else:
            inst.expr = container_expr("nn.ModuleDict", exprs, brackets="{}", keys=inst.recipe.keys)

    # -- blocks ---------------------------------------------------------------------
    def build_block(self, r: Recipe, inputs, parent: Scope, name, path) -> Instance:
        block: ir.Block = r.block
        if block.name in self.state.block_stack:
            chain = " -> ".join(self.state.block_stack + [block.name])
            raise SpecNameError(f"block {block.name!r} uses itself ({chain})", r.span,
                                hint="a block cannot contain itself; unroll with a list comprehension")
        if len(self.state.block_stack) >= self.state.limits.max_depth:
            raise SpecLimitError(f"blocks nest deeper than {self.state.limits.max_depth} levels", r.span,
                                 hint="flatten the blocks; or pass limits=Limits(max_depth=...) if intended")
        if inputs is None:
            raise SpecShapeError(f"block {block.name} `{path}` is never called in forward", r.span,
                                 hint="call it in forward, or remove it")
        if not inputs:
            raise SpecArgError(f"block {block.name} `{path}` is called without a tensor", r.span,
                               hint="call it with the tensor it works on: name(x)")
        env = self.bind_block_args(block, r, parent)
        scope = Scope("block", block.name, path, {}, block.span, parent.depth + 1, self.state.names)
        for p in block.params:
            scope.env[p.name] = scope.params[p.name] = Val(env[p.name].value, E.Name(p.name))
            scope.ctor.append(CtorParam(p.name, self.default_expr(p, parent), False))
        ins = []
        for k, t in enumerate(inputs):
            dims = []
            for i, d in enumerate(t.shape):
                dims.append(Val(d.value, slot=InputSlot(i, d.value, scope, d)) if k == 0 else Val(d.value))
            # what its values are known to be goes in too: an Embedding inside reads the model's Long input
            ins.append(TensorInfo(tuple(dims), t.dtype, contiguous=t.contiguous, source=t.source, below=t.below,
                                  feature_map=t.feature_map))
        scope.env["in_shape"] = Val(tuple(ins[0].shape))  # its dims are spelled by their slots
        node = ModuleNode(name, path, block.name, "block", r.span,
                          args={p.name: env[p.name].plain() for p in block.params},
                          imported=block.name in self.state.block_sources)
        self.state.block_stack.append(block.name)
        views, reads = self.state.views, self.state.index_reads
        try:
            if block.value is not None:
                outs = self.bodies.run_sequential(scope, block.value, ins, node)
            else:
                outs = self.bodies.run_scope(scope, block.body, [("x", t) for t in ins], node, block.span)
        except SpecError as err:
            if block.name in self.state.block_sources:  # an imported block: point into its own file
                err.locate(*self.state.block_sources[block.name])
            raise
        finally:
            self.state.block_stack.pop()
        views = self.state.views > views  # its forward views a tensor: one that was in order at the first call
        reads = self.state.index_reads > reads  # it reads an input's values as indices, checked for the first
        cls = self.finish_class(scope, node, block.span)
        node.type_name = cls.name
        # constructor call in the parent's class
        args = []
        for p in scope.ctor:
            if p.inferred:
                outer = p.slot.outer if p.slot is not None else Val(p.value)
                try:
                    args.append(self.dim_expr(outer, parent, p.name))
                except ShapeProblem as exc:
                    raise SpecShapeError(f"block {block.name} `{path}`: {exc}", r.span,
                                         hint="give the size as a number, or declare the symbol with an "
                                              "example, e.g. T=128") from None
        taken = {p.name for p in cls.ctor_params}
        names = [p.name for p in block.params]
        kwargs, skipped = {}, False
        for n, v in zip(names, r.args):  # a parameter fixed in the class is not passed; those after it by name
            if n not in taken:
                skipped = True
                _real(parent).bake(v)  # what the caller passed decides the class it gets: fixed there too
            elif skipped:
                kwargs[n] = expr_of(v)
            else:
                args.append(expr_of(v))
        kwargs |= {k: expr_of(v) for k, v in r.kwargs.items() if k in taken}
        for k, v in r.kwargs.items():
            if k not in taken:
                _real(parent).bake(v)
        code = E.call(E.Name(cls.name), *args, **kwargs)
        node.inputs = list(inputs)
        out_list = outs if isinstance(outs, list) else [outs]
        node.outputs = [self.export_info(o, scope, env) for o in out_list if isinstance(o, TensorInfo)]
        inst = Instance(node, code, r, classdef=cls)
        node.repeats = 0  # built by its first call, which `call` counts
        first_in = [shape_str(t.shape) for t in inputs]

        def call(ins2, span=None):
            if [shape_str(t.shape) for t in ins2] != first_in:
                raise SpecShapeError(
                    f"block {block.name} `{path}` was built for input {', '.join(first_in)} but is called "
                    f"again with {', '.join(shape_str(t.shape) for t in ins2)}", span or r.span,
                    hint="a block is built for one input shape; define a second child for the other")
            for k, (t1, t2) in enumerate(zip(inputs, ins2)):  # its body was checked on the first call's tensors
                which = f"input {k + 1}" if len(inputs) > 1 else "input"
                if t1.dtype != t2.dtype:
                    raise SpecShapeError(
                        f"block {block.name} `{path}` was built for a {t1.dtype} {which} but is called again "
                        f"with a {t2.dtype} tensor", span or r.span,
                        hint="a block is built for one input dtype; convert the tensor (x * 1.0 makes it "
                             "float), or define a second child for the other")
                if reads and (t1.source, t1.below) != (t2.source, t2.below):
                    raise SpecShapeError(
                        f"block {block.name} `{path}` reads its {which} as indices, which were checked against "
                        f"its table at the first call; it is called again with other values, whose range is "
                        f"not known", span or r.span,
                        hint="define a second child for the other indices")
                if views and t1.contiguous and not t2.contiguous:
                    raise SpecShapeError(
                        f"block {block.name} `{path}` was built for a contiguous {which} but is called again "
                        f"with one in another memory order (a transpose, permute or attention output), "
                        f"which its forward may not `view`", span or r.span,
                        hint="call it on x.contiguous(), or define a second child for the other")
            node.repeats += 1  # its forward runs again, on the same shape
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
            elif isinstance(d._expr, E.Name) and d._expr.id in args:
                dims.append(args[d._expr.id])
            elif d._expr is not None and not E.names_in(d._expr):
                # a literal, the same in any instance: the caller spells it so too, and takes no constructor
                # parameter for it (nested blocks passed every such size down every level). Not a const: the
                # caller may have a parameter of the same name
                dims.append(Val(d.value, d._expr))
            else:
                dims.append(Val(d.value))
        return TensorInfo(tuple(dims), info.dtype, contiguous=info.contiguous, feature_map=info.feature_map)

    def default_expr(self, p: ir.BlockParam, scope):
        if p.default is None:
            return None
        return expr_of(self.static.eval_static(p.default, self.bodies.top_scope(p.span), {}))

    def bind_block_args(self, block: ir.Block, r: Recipe, parent: Scope) -> dict:
        names = [p.name for p in block.params]
        out: dict[str, Val] = {}
        if len(r.args) > len(names):
            sp = r.arg_spans[len(names)] if len(names) < len(r.arg_spans) else r.span
            raise SpecArgError(f"block {block.name} takes {len(names)} argument{'s' if len(names) != 1 else ''} "
                               f"({', '.join(names)}) but {len(r.args)} were given", sp,
                               hint=f"the call is {block.name}({', '.join(names)})")
        for n, v, sp in zip(names, r.args, r.arg_spans):
            if v is INFER:
                raise SpecArgError(f"`_` infers layer arguments; block {block.name} needs {n!r} given", sp,
                                   hint=f"give {n} a value: the call is {block.name}({', '.join(names)})")
            out[n] = v
        for k, v in r.kwargs.items():
            if k not in names:
                raise SpecArgError(f"block {block.name} has no parameter {k!r}", r.kw_spans[k],
                                   hint=did_you_mean(k, names) or f"its parameters: {', '.join(names) or 'none'}")
            if k in out:
                raise SpecArgError(f"block {block.name} got {k!r} twice", r.kw_spans[k], hint="keep one of them")
            if v is INFER:
                raise SpecArgError(f"`_` infers layer arguments; block {block.name} needs {k!r} given", r.kw_spans[k],
                                   hint=f"give {k} a value: the call is {block.name}({', '.join(names)})")
            out[k] = v
        for p in block.params:
            if p.name not in out:
                if p.default is None:
                    raise SpecArgError(f"block {block.name} is missing the argument {p.name!r}", r.span,
                                       hint=f"{block.name}({', '.join(names)})")
                out[p.name] = self.static.eval_static(p.default, self.bodies.top_scope(p.span), dict(self.state.consts))
        return out

    def finish_class(self, scope: Scope, node: ModuleNode, span) -> ClassDef:
        lines_of: dict[str, list[Line]] = {}
        for kind, name, _info, init, _ in scope.raw:
            if kind == "param":
                lines_of[name] = [Line(2, E.SetAttr(name, E.call("nn.Parameter", init)))]
            elif kind == "buffer":
                register = E.call(E.attr(E.SELF, "register_buffer"), E.Constant(name), init)
                lines_of[name] = [Line(2, E.ExprStmt(register))]
            elif kind == "tensor":  # `self.W = torch.FloatTensor(3, 2)`: a plain attribute, as written
                lines_of[name] = [Line(2, E.SetAttr(name, init))]
            elif kind == "const":  # `width = planes * 4`: a local of __init__
                lines_of[name] = [Line(2, E.Assign(name, init))]
                if name in scope.fwd_attrs:
                    lines_of[name].append(Line(2, E.SetAttr(name, E.Name(name))))
        for slot in scope.children.values():
            init = lines_of.setdefault(slot.name, [])
            inst = slot.instance or slot.hypothetical
            if inst is not None and inst.recipe.kind in ("modulelist", "moduledict"):
                self.finish_container(inst, scope)
                if slot.instance is not None:
                    node.children = [s.instance.node for s in scope.children.values() if s.instance is not None]
            if slot.cond is None:
                init.append(Line(2, E.SetAttr(slot.name, inst.expr)))
            elif inst is None:
                init.append(Line(2, E.SetAttr(slot.name, E.Constant(None))))
            else:
                init += [Line(2, E.IfHead(slot.cond)), Line(3, E.SetAttr(slot.name, inst.expr)),
                         Line(2, E.ElseHead()), Line(3, E.SetAttr(slot.name, E.Constant(None)))]
        baked = {p: scope.params[p].value for p in sorted(scope.baked)}  # a child may have taken its name since
        ctor = [p for p in scope.ctor if p.name not in baked]
        kept = [Line(2, E.SetAttr(p.name, E.Name(p.name))) for p in ctor if p.name in scope.fwd_attrs]
        init = kept + [line for name in scope.order for line in lines_of.get(name, [])] + scope.tie_lines
        lines, super_init = scope.lines, scope.super_init
        if baked:  # fixed in this class: their values, not constructor arguments
            fixed = {p: const_expr(v) for p, v in baked.items()}
            children = set(scope.children)
            init = [Line(ln.indent, E.fix_params(ln.stmt, fixed, children), ln.shapes, ln.more) for ln in init]
            lines = [dataclasses.replace(ln, stmt=E.fix_params(ln.stmt, fixed, children)) for ln in lines]
            super_init = E.fix_params(super_init, fixed, children)
        cls = ClassDef(scope.name, scope.kind, ctor, init, scope.forward_params, lines, span=span, fixed=baked,
                       block=scope.name, base="nn.Sequential" if scope.sequential else "nn.Module",
                       super_init=super_init)
        if baked:
            said = ", ".join(f"{p}={literal(v)}" for p, v in baked.items())
            decides = "it decides" if len(baked) == 1 else "they decide"
            cls.doc.append(f"{scope.name} with {said}: fixed here, for {decides} which modules and code the class has.")
        cls.used_by.append(scope.path or scope.name)
        key = cls.structure_key()
        if scope.kind == "block":
            existing = self.state.class_keys.get((scope.name, key))
            if existing is not None:
                existing.used_by.append(scope.path)
                existing.instances.append(lines)
                return existing
            cls.name = self.unique_class_name(scope.name)
            self.state.class_keys[(scope.name, key)] = cls
        else:
            cls.name = self.unique_class_name(scope.name)
        cls.instances = [lines]
        self.state.classes.append(cls)
        return cls

    def unique_class_name(self, name: str) -> str:
        """The spec's name for the first class of a block; a numbered one, clear of every spec name, after."""
        if name in self.state.class_names:
            name = self.state.names.make(name, self.state.class_names, sep="_")
        self.state.class_names.add(name)
        return name

    # -- forward ---------------------------------------------------------------------


def _bare(v: Sym) -> bool:
    """``B`` itself, not ``B - 2`` or ``T // 2``."""
    return len(v.terms) == 1 and next(iter(v.terms.items()))[1] == 1 and len(next(iter(v.terms))) == 1 \
        and isinstance(next(iter(v.terms))[0], str)


def _flat_shapes(x):
    """The shapes of a rule's (possibly nested) result, Nones left out."""
    if x is None:
        return
    if isinstance(x, list):
        for item in x:
            yield from _flat_shapes(item)
    else:
        yield x


def _holds_shared(inst: Instance) -> bool:
    """Whether a container holds, at any depth, a child it shares with its parent (`build_shared`)."""
    return any(i is not None and (i.recipe.kind == "shared" or _holds_shared(i)) for i in inst.items)


def _signature(infos) -> list:
    """What a module's forward was checked for: each input's shape, dtype and memory order."""
    return [(shape_str(t.shape), t.dtype, t.contiguous) for t in infos]


def _flat_infos(x):
    """The tensors of a (possibly nested) module result, Nones left out."""
    if isinstance(x, TensorInfo):
        yield x
    elif isinstance(x, list):
        for item in x:
            yield from _flat_infos(item)


def container_expr(func: str, items: list, brackets: str = "()", keys: list | None = None, repeat=None):
    """``nn.Sequential(...)``, ``nn.ModuleList([...])`` or ``nn.ModuleDict({...})``, one module a line;
    three or more identical modules as ``*[m for _ in range(n)]``, and the modules of a comprehension
    over ``repeat`` (an expression such as ``range(depth)``) as ``[m for _ in range(depth)]``."""
    if keys is not None:
        return E.call(func, E.DictExpr(tuple(E.Constant(k) for k in keys), tuple(items), explode=True))
    if repeat is not None or (len(items) > 2 and all(i == items[0] for i in items) and not _exploded(items[0])):
        repeat = E.ListComp(items[0], "_", repeat if repeat is not None else E.call("range", E.Constant(len(items))))
        return E.call(func, E.Starred(repeat) if brackets == "()" else repeat)
    if brackets == "[]":
        return E.call(func, E.ListExpr(tuple(items), explode=True)) if items else E.call(func, E.ListExpr(()))
    return E.call(func, *items, explode=True)


def _exploded(node) -> bool:
    """Whether an expression holds a container printed one item per line."""
    if getattr(node, "explode", False):
        return True
    return any(_exploded(a.value if a.kind == "keyword" else a) for a in getattr(node, "args", ()) + getattr(
        node, "keywords", ()))
