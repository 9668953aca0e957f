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

from . import expr as E
from . import ir
from .errors import (
    Span,
    SpecArgError,
    SpecError,
    SpecLimitError,
    SpecNameError,
    SpecShapeError,
    did_you_mean,
    suggest,
)
from .budget import Floor, check_memory, work_floor
from .forward import ForwardEvaluator
from .layers import CATALOG
from .lint import input_feature_map
from .layers.base import Bound
from .model import ClassDef, Line, ModelGraph, ModuleNode, TensorInfo
from .modules import ModuleBuilder
from .names import GENERATED, is_attribute_name, name_problem
from .ops import slice_len
from .printer import source
from .shapes import MAX_TERMS, ExprTooLarge, Sym, Val, const_expr, evaluate, is_dim, shape_str
from .static import StaticEvaluator, without_self
from .values import (
    CONTAINERS,
    DTYPES,
    ChildSlot,
    Limits,
    ParamRef,
    Recipe,
    Scope,
    TensorVal,
    Elaboration,
    Namespace,
    expr_of,
    literal,
)


MAX_DIM = 2**31 - 1  # one dimension of a declared tensor; torch sizes beyond it are unusable here


class Elaborator:
    """Elaborates one spec: top-level names, then a model and the bodies of all it uses.

    It drives three stages that share one `Elaboration` state:
    ``static`` (compile-time values and module recipes), ``modules`` (recipes
    built into modules and classes) and ``forward`` (the dataflow on shapes).
    """

    def __init__(self, spec: ir.SpecFile, limits: Limits | None = None, imported=None):
        taken = spec_identifiers(spec) | set(GENERATED) | (imported.identifiers if imported is not None else set())
        self.state = Elaboration(spec, limits or Limits(), Namespace(taken))
        self.static = StaticEvaluator(self.state)
        self.modules = ModuleBuilder(self.state, self.static, self)
        self.forward = ForwardEvaluator(self.state, self.static, self.modules, self)
        if imported is not None:
            self.state.blocks.update(imported.blocks)
            self.state.consts.update(imported.consts)
            self.state.const_order.extend(imported.const_lines)
            self.state.block_sources.update(imported.sources)
        self.state.names.taken |= set(self.state.blocks) | set(self.state.consts)
        self._collect()

    def top_scope(self, span: Span) -> Scope:
        """Where consts and block defaults are evaluated: the file's top level."""
        return Scope("model", "", "", {}, span, 0, self.state.names)

    # -- top level ------------------------------------------------------------
    def _collect(self):
        seen: dict[str, Span] = {}
        for item in self.state.spec.items:
            if isinstance(item, ir.Train):
                self._check_train(item)
                continue  # elaborated with its model
            if isinstance(item, ir.Import):
                continue  # resolved before elaboration (modelspec/imports.py)
            self._check_name(item.name, item.span, "a " + item.kind)
            if item.name in seen:
                raise SpecNameError(
                    f"{item.name!r} is defined twice (first at line {seen[item.name].line})", item.span,
                    hint="rename one of them, or delete the one not meant",
                )
            seen[item.name] = item.span
            if item.name in self.state.blocks or item.name in self.state.consts:
                raise SpecNameError(f"{item.name!r} is imported and also defined here", item.span,
                                    hint="rename one of them, or import only the names you need")
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
                if item.value is not None:
                    self._check_sequential_block(item)
                self.state.blocks[item.name] = item
            elif isinstance(item, ir.Const):
                val = self.static.eval_static(item.value, self.top_scope(item.span), {})
                if isinstance(val, Val) and not isinstance(val.value, Sym):
                    self.state.consts[item.name] = Val(val.value, E.Name(item.name))
                    self.state.const_order.append((item.name, const_expr(val.value)))
                else:
                    raise SpecArgError(f"const {item.name!r} must be a number, string, bool or tuple", item.value.span,
                                       hint='a const is known before any tensor exists, e.g. const WIDTH = 64')

    def _check_train(self, train: ir.Train):
        models = [m.name for m in self.state.spec.models()]
        if train.model is None and len(models) > 1:
            raise SpecNameError(f"the file defines several models ({', '.join(models)}), and this train section "
                                "names none of them", train.span, hint=f"name one: train {models[-1]} {{ ... }}")
        if train.model is not None and train.model not in models:
            raise SpecNameError(f"train {train.model}: no model of that name in this file", train.span,
                                hint=did_you_mean(train.model, models) or "the train section names a model the "
                                                                          "file defines")

    @staticmethod
    def _check_sequential_block(block: ir.Block):
        """``block Name(p) = ...`` is a block shaped like nn.Sequential: its value must be a Sequential(...)."""
        value = block.value
        func = StaticEvaluator.dotted(value.func) if isinstance(value, ir.Call) else None
        if func not in ("Sequential", "nn.Sequential", "torch.nn.Sequential"):
            raise SpecArgError(
                f"block {block.name} = ... must be a Sequential(...) of modules", value.span,
                hint=f"write block {block.name}(...) = Sequential(Conv2d(...), ReLU()), or give the block a body: "
                     f"block {block.name}(...) {{ conv = Conv2d(...) }}")

    def _check_name(self, name: str, span: Span, what: str):
        if name.startswith("__") or keyword.iskeyword(name) or name in GENERATED:
            raise SpecNameError(
                f"{name!r} cannot name {what}: it is reserved in the generated Python code", span,
                hint=f"choose another name, e.g. {name.strip('_') or 'name'}_",
            )
        spec = self.state.spec
        classes = {i.name for i in spec.items if isinstance(i, (ir.Block, ir.Model))} | set(self.state.blocks)
        problem = name_problem(name, what, classes, self.state.consts)
        if problem is not None:
            raise SpecNameError(problem[0], span, hint=problem[1])

    def model(self, name: str | None) -> ModelGraph:
        models = self.state.spec.models()
        if not models:
            items = self.state.spec.items
            end = items[-1].span if items else Span(line=1, column=1, end_line=1, end_column=1)
            at = Span(line=end.end_line, column=end.end_column, end_line=end.end_line, end_column=end.end_column + 1)
            raise SpecError("the spec defines no model", at, hint="add `model Name(x: [B, ...]) { ... }`")
        if name is None:
            m = models[-1] if len(models) == 1 else None
            if m is None:
                names = ", ".join(x.name for x in models)
                raise SpecError(f"the spec defines several models ({names}); choose one", models[1].span,
                                hint="pass model=... (or --model on the command line)")
        else:
            m = next((x for x in models if x.name == name), None)
            if m is None:
                raise SpecNameError(f"no model named {name!r}", None,
                                    hint=suggest(name, [x.name for x in models], "models"))
        return self.elaborate_model(m)

    def work_floor(self, m: ir.Model) -> list[tuple[ir.Child, Floor]]:
        """The least each child of ``m`` costs, under the file's integer consts (modelspec/budget.py)."""
        consts = {k: v.value for k, v in self.state.consts.items()
                  if isinstance(v.value, int) and not isinstance(v.value, bool)}
        return work_floor(m.body, self.state.blocks, CATALOG, consts, self.state.limits.max_unroll)

    def check_work_floor(self, m: ir.Model) -> None:
        """Refuse, before any of it is done, a model whose children certainly make more modules or take more
        steps than the limits allow (modelspec/budget.py): such a spec would be refused anyway, later."""
        floors = self.work_floor(m)
        total = sum((f for _, f in floors), Floor())
        limits = self.state.limits
        for what, count, limit, knob in (("loop passes", lambda f: f.passes, limits.max_unroll, "max_unroll"),
                                         ("modules", lambda f: f.modules, limits.max_modules, "max_modules"),
                                         ("steps", lambda f: f.steps, limits.max_steps, "max_steps")):
            if count(total) > limit:
                child, most = max(floors, key=lambda cf: count(cf[1]))
                raise SpecLimitError(
                    (f"loops would run more than {limit:,} passes in all: at least {count(total):,}, of which "
                     f"`{child.name}` alone runs {count(most):,}") if what == "loop passes" else
                    (f"the model would take more than {limit:,} {what} to check: at least {count(total):,}, of "
                     f"which `{child.name}` alone makes {count(most):,}"), child.span,
                    hint=f"nested blocks and repeats multiply: use fewer children, levels or repeats; or pass "
                         f"limits=Limits({knob}=...) if intended")

    def elaborate_model(self, m: ir.Model) -> ModelGraph:
        scope = Scope("model", m.name, "", {}, m.span, 0, self.state.names)
        inputs: list[tuple[str, TensorInfo]] = []
        seen = set()
        for inp in m.inputs:
            self._check_name(inp.name, inp.span, "an input")
            if inp.name in seen:
                raise SpecNameError(f"input {inp.name!r} is declared twice", inp.span,
                                    hint='give each input its own name')
            seen.add(inp.name)
            info = self.tensor_type(inp.type, scope, declare=True)
            info.source = inp.name
            info.feature_map = input_feature_map(inp.name, info.shape)
            if not inputs and info.shape and isinstance(info.shape[0].value, Sym):
                self.state.batch_symbols = {s for s in info.shape[0].value.symbols if self.state.symbols.get(s) is None}
            inputs.append((inp.name, info))
        self.check_work_floor(m)
        root = ModuleNode(m.name, "", m.name, "model", m.span)
        root.inputs = [info for _, info in inputs]
        self.state.built.append(root)
        outs = self.run_scope(scope, m.body, inputs, root, m.span, m.inputs)
        self.modules.finish_class(scope, root, m.span)
        self.name_fixed_classes(root)
        root.outputs = outs
        _set_depths(root, 0)
        # a forward that cannot run even at the smallest example sizes (batch 1) is refused here, by check
        check_memory([info for _, info in inputs], list(root.walk()), next(self.example_sizes()),
                     self.state.limits.max_activation_bytes, m.span, "at batch 1")
        graph = ModelGraph(
            name=m.name, root=root, classes=self.state.classes, inputs=inputs, outputs=outs,
            consts=self.state.const_order, symbols=self.state.symbols, path=self.state.spec.path,
            index_bounds=self.state.index_bounds, steps=self.state.steps,
        )
        trains = [t for t in self.state.spec.trains() if t.model in (m.name, None)] \
            if any(x is m for x in self.state.spec.models()) else []
        if trains:
            from .trainspec import elaborate_train

            if len(trains) > 1:
                raise SpecNameError(f"{m.name} has {len(trains)} train sections", trains[1].span,
                                    hint="keep one; a file may hold one per model")
            graph.train = elaborate_train(self, graph, trains[0])
            graph.steps = self.state.steps
        for key, (slot, unused_in, where) in self.state.unused_children.items():
            if key not in self.state.used_children:  # no instance of its block calls it, not only this one
                self.unused_warning(slot, unused_in, where)
        graph.unregistered = list(self.state.unregistered)
        graph.warnings = sorted(self.state.warnings, key=lambda w: (w.path is not None, w.line or 0, w.column or 0))
        return graph

    def name_fixed_classes(self, root: ModuleNode):
        """A block printed as several classes because its parameters fixed them: ``Stage_depth2``,
        ``Stage_depth3``, named for the values that set them apart, not ``Stage``, ``Stage_2``."""
        groups: dict[str, list[ClassDef]] = {}
        for cls in self.state.classes:
            if cls.kind == "block":
                groups.setdefault(cls.block, []).append(cls)
        renamed = {}
        for base, classes in groups.items():
            suffixes = [_fixed_suffix(c.fixed) for c in classes]
            if len(classes) < 2 or None in suffixes or len(set(suffixes)) < len(classes):
                continue
            for cls in classes:
                self.state.class_names.discard(cls.name)
            for cls, suffix in zip(classes, suffixes):
                new = self.state.names.make(f"{base}_{suffix}", self.state.class_names, sep="_")
                self.state.class_names.add(new)
                renamed[cls.name] = E.Name(new)
                cls.name = new
        if not renamed:
            return
        for cls in self.state.classes:
            cls.init_lines = [Line(ln.indent, E.replace_names(ln.stmt, renamed), ln.shapes, ln.more)
                              for ln in cls.init_lines]
            cls.super_init = E.replace_names(cls.super_init, renamed)
        for node in root.walk():
            if node.kind == "block" and node.type_name in renamed:
                node.type_name = renamed[node.type_name].id

    EXAMPLE_BATCHES = (1, 2, 3)  # a size that depends on the batch must hold for any batch; these stand for it
    DEFAULT_SYMBOL_SIZE = 8  # a symbol declared without an example size (as example_inputs gives it)

    def example_sizes(self):
        """The sizes rules are held to: each symbol's example (else 8), the batch at 1, 2 and 3."""
        for batch in self.EXAMPLE_BATCHES:
            yield {s: batch if s in self.state.batch_symbols else e if e is not None else self.DEFAULT_SYMBOL_SIZE
                   for s, e in self.state.symbols.items()}

    def check_slice(self, size, bounds: list, length, span, shown: str):
        """A slice of a symbolic dim assumes its bounds fall inside it (``x[:, :100]`` has 100 only where
        the dim has at least 100): the example sizes must agree."""
        for sizes in self.example_sizes():
            if not size.symbols <= set(sizes):
                continue
            n = evaluate(size, sizes)
            real = slice_len(n, *bounds)  # as len(range(n)[slice(*bounds)]), past 2**63 too
            claimed = evaluate(length, sizes) if isinstance(length, Sym) else length
            if real != claimed:
                at = ", ".join(f"{s}={sizes[s]}" for s in sorted(size.symbols))
                raise SpecShapeError(
                    f"{shown} takes {claimed} of {size} by assuming its bounds fall inside it, but at {at} "
                    f"it takes {real}", span,
                    hint="declare a larger example size (T=128), or slice within the smallest size: x[:, :k] "
                         "with k at most the example")

    def bound_values(self, t: TensorInfo, bound, span, label: str, what: str, whose: str,
                     hint: str = "give it as a model input declared Long[...], or a view of one (reshape, index, "
                                 "flatten): example inputs are drawn below the bound") -> None:
        """``t``'s values must lie below ``bound`` (int or Sym): a model input's example values are then drawn
        below it; a count from torch.arange must stay below it; values computed otherwise are unknown."""
        if t.dtype != "long" or any(d.value == 0 for d in t.shape):
            return
        if t.source is not None:
            sizes = [bound] if isinstance(bound, int) else [
                evaluate(bound, s) for s in self.example_sizes() if bound.symbols <= set(s)] or [1]
            n = min(sizes)
            self.state.index_bounds[t.source] = min(n, self.state.index_bounds.get(t.source, n))
        elif t.below is not None:
            self.check_below(t.below, bound, span, label)
        else:
            raise SpecShapeError(f"{label} takes {what} below {bound}, but {whose} is computed in forward, and its "
                                 f"values are not known before it runs", span, hint=hint)

    def check_below(self, below, bound, span, label: str) -> None:
        """Indices counted in forward (``torch.arange(t)``, below ``t``) must stay below a table's size ``bound``:
        at every example size of the symbols they count to, as nanoGPT asserts ``t <= block_size``."""
        if below == bound:  # torch.arange(x.shape[1]) into that same dim
            return
        symbols = set().union(*(v.symbols for v in (below, bound) if isinstance(v, Sym)))
        at = [(evaluate(below, s) if isinstance(below, Sym) else below,
               evaluate(bound, s) if isinstance(bound, Sym) else bound)
              for s in self.example_sizes() if symbols <= set(s)]
        if not at:
            raise SpecShapeError(f"{label} takes indices below {bound}, and these count up to {below}, whose size "
                                 f"is not known when the spec is compiled", span,
                                 hint="give the symbol an example size in the input's type: idx: Long[B, T=64]")
        over = next(((n, b) for n, b in at if n > b), None)
        if over is not None:
            raise SpecShapeError(f"{label} takes indices below {bound}, but these reach {below} - 1 = {over[0] - 1}",
                                 span, hint=f"keep the count within the table: an example size of at most {over[1]}, "
                                            f"or a larger table")

    def check_example(self, infos, span, label: str):
        """Every symbolic dim must be a size (>= 1) at the example sizes the rules are held to: each
        symbol's declared example (``T=128``, else 8) and the batch at 1, 2 and 3."""
        for info in infos:
            dims = [d.value for d in info.shape if isinstance(d.value, Sym)]
            if not dims:
                continue
            for sizes in self.example_sizes():
                for d in dims:
                    if not d.symbols <= set(sizes):
                        continue
                    v = evaluate(d, sizes)
                    if v < 1:
                        at = ", ".join(f"{s}={sizes[s]}" for s in sorted(d.symbols))
                        batchy = d.symbols & self.state.batch_symbols
                        raise SpecShapeError(
                            f"{label} gives {shape_str(info.shape)}, and {d} is {v} at {at}", span,
                            hint="a size that depends on the batch must be at least 1 for every batch"
                            if batchy else "declare a larger example size for the symbol, e.g. T=128, or change "
                                           "the sizes so the dim stays at least 1")

    def tensor_type(self, t: ir.TensorType, scope: Scope, declare: bool) -> TensorInfo:
        if t.dtype not in DTYPES:
            raise SpecArgError(f"unknown dtype {t.dtype!r}", t.span, hint="use Float[...], Long[...] or Bool[...]")
        dims = []
        for d in t.dims:
            if isinstance(d, ir.SymDim):
                if d.example < 1:
                    raise SpecArgError(f"the example size of {d.name} must be at least 1, not {d.example}", d.span,
                                       hint=f"give a size the model runs at, e.g. {d.name}=16")
                known = self.state.symbols.get(d.name)
                if known is not None and known != d.example:
                    raise SpecArgError(f"{d.name} has the example size {known} already; here it is {d.example}",
                                       d.span, hint=f"one symbol has one example size: write {d.name}={known}, or "
                                                    f"just {d.name}")
                self.state.symbols[d.name] = d.example
                dims.append(Val(Sym.var(d.name)))
                continue
            if isinstance(d, ir.Name) and d.id not in scope.env and d.id not in self.state.consts:
                if not declare:
                    raise SpecNameError(f"undefined name {d.id!r} in a shape", d.span,
                                        hint=did_you_mean(d.id, list(scope.env) + list(self.state.consts))
                                        or "a size here is a number, a const or a block parameter")
                self.state.symbols.setdefault(d.id, None)
                dims.append(Val(Sym.var(d.id)))
                continue
            v = self.static.eval_static(d, scope, scope.env)
            if not isinstance(v, Val) or not is_dim(v.value) or (isinstance(v.value, int) and v.value < 1):
                raise SpecArgError(f"a dimension must be a positive integer or a name, not {literal(v)}", d.span,
                                   hint='write a size such as 28, a const, or a symbol such as B')
            if isinstance(v.value, int) and v.value > MAX_DIM:
                raise SpecLimitError(f"the dimension {v.value:,} is larger than any tensor can have here "
                                     f"(at most {MAX_DIM:,})", d.span, hint="use a smaller size")
            dims.append(v)
        return TensorInfo(tuple(dims), DTYPES[t.dtype])

    # -- bodies -----------------------------------------------------------------
    def run_scope(self, scope: Scope, body: list, inputs, node: ModuleNode, span: Span, input_decls=None):
        """Evaluate a body: children, params, then forward on the inputs."""
        forward, ties = None, []
        scope.body_children = {s.name: s.span for s in body if isinstance(s, ir.Child)}
        for stmt in body:
            if isinstance(stmt, ir.Tie):
                if "self" in (stmt.target[0], (StaticEvaluator.dotted(stmt.value) or "").split(".")[0]):
                    raise self.self_assignment(stmt)  # self.fc = nn.Linear(4, 2), as __init__ writes it
                ties.append(stmt)
                continue
            if isinstance(stmt, ir.Forward):
                if forward is not None:
                    raise SpecNameError("a second forward in the same body", stmt.span,
                                        hint='merge the two into one forward')
                forward = stmt
                continue
            self._check_name(stmt.name, stmt.span, "a child")
            local = any(r[0] == "const" and r[1] == stmt.name for r in scope.raw)
            if local or stmt.name in scope.env and not (
                    isinstance(stmt, ir.Child) and isinstance(scope.env[stmt.name], Val)
                    and stmt.name not in scope.children):
                raise SpecNameError(f"{stmt.name!r} is defined twice in {scope.name}", stmt.span,
                                    hint="rename one of them, or delete the one not meant")
            if isinstance(stmt, ir.Child):
                self.child_def(stmt, scope)
            else:
                self.raw_def(stmt, scope)
        # forward
        if forward is not None:
            params = forward.params
            if params[:1] == ["self"]:  # def forward(self, x), as a PyTorch class writes it
                raise SpecNameError("forward names only its inputs, without `self`", forward.span,
                                    hint=f"write forward({', '.join(params[1:]) or ', '.join(n for n, _ in inputs)})")
            if len(params) != len(inputs):
                where = forward.span
                raise SpecArgError(
                    f"forward takes {len(params)} input{'s' if len(params) != 1 else ''} "
                    f"but {scope.name} receives {len(inputs)}", where,
                    hint=f"name each model input: forward({', '.join(n for n, _ in inputs)})"
                    if input_decls is not None else "give forward one name per tensor the block is called with",
                )
            for i, p in enumerate(params):
                self._check_name(p, forward.span, "a forward input")
                if p in params[:i]:
                    raise SpecNameError(f"forward names its input {p!r} twice", forward.span,
                                        hint="give each input its own name")
        else:
            params = [n for n, _ in inputs] if input_decls is not None else ["x"] * len(inputs)
        env = dict(scope.env)
        fwd_params = []
        for p, (_, info) in zip(params, inputs):
            env[p] = TensorVal(info, E.Name(p), src=scope.step("input", p, shapes=[info.shape]))
            scope.locals.add(p)
            fwd_params.append(p)
        scope.forward_params = fwd_params
        if forward is not None:
            outs = self.forward.run_forward(forward.body, scope, env, forward.span)
        else:
            outs = self.forward.implicit_forward(scope, env, fwd_params, span)
        node.macs = getattr(scope, "extra_macs", 0)
        node.flow = scope.flow
        # children never called: build those that need no input shape
        for slot in scope.children.values():
            if slot.instance is not None and slot.present:
                self.state.used_children.add((slot.span, slot.name))  # by this instance: by the block, then
            if slot.instance is None and slot.present:
                if self.modules.recipe_needs_input(slot.recipe):
                    raise SpecShapeError(
                        f"child {slot.name!r} is never called in forward, so the input shape its `_` "
                        f"arguments need is unknown", slot.span,
                        hint="call it in forward, or give every argument" if is_attribute_name(slot.name) else
                        "give every argument: forward cannot call a child named by a string; name it with an "
                        "identifier to call it",
                    )
                slot.instance = self.modules.instantiate(slot.recipe, None, scope, slot.name)
                self.state.unused_children.setdefault((slot.span, slot.name),
                                                      (slot, scope, self.state.imported_block()))
        node.children = [s.instance.node for s in scope.children.values() if s.instance is not None]
        node.params = sum(self._raw_numel(r) for r in scope.raw if r[0] == "param")
        node.trainable = node.params
        node.buffers = sum(self._raw_numel(r) for r in scope.raw if r[0] == "buffer")
        if ties:
            for slot in scope.children.values():  # a container's modules are its children from here on
                if slot.instance is not None:
                    self.modules.finish_container(slot.instance, scope)
            for stmt in ties:
                self.tie(stmt, scope, node)
        return outs

    def self_assignment(self, stmt: ir.Tie) -> SpecNameError:
        """``self.fc = nn.Linear(4, 2)``, as a PyTorch ``__init__`` writes it: a body declares its children,
        params and values, and ties parameters, without ``self.``; the hint is the line as a spec writes it."""
        target = stmt.target[1:] if stmt.target[0] == "self" else stmt.target
        value, name = without_self(stmt.value), ".".join(target)
        made = StaticEvaluator.dotted(stmt.value.func) if isinstance(stmt.value, ir.Call) else None
        if len(target) > 1:
            return SpecNameError("a body ties parameters without `self.`", stmt.span,
                                 hint=f"write {name} = {value}")
        if isinstance(stmt.value, ir.Name) and stmt.value.id == name:  # self.input_dim = input_dim
            return SpecNameError(f"a block reads its parameter {name} by its name, without `self.`, in the body "
                                 f"and in forward", stmt.span, hint="delete this line")
        if made is not None and made.rpartition(".")[2] == "Parameter":  # self.W = nn.Parameter(torch.randn(3, 2))
            inner = stmt.value.args[0] if len(stmt.value.args) == 1 else None
            dims = [source(a) for a in inner.args] if isinstance(inner, ir.Call) and not inner.keywords else []
            maker = (StaticEvaluator.dotted(inner.func) or "") if isinstance(inner, ir.Call) else ""
            init = maker.rpartition(".")[2] if maker.rpartition(".")[2] in ("zeros", "ones", "randn", "rand") else (
                "xavier_uniform" if len(dims) != 1 else "zeros")
            return SpecNameError("a body declares a parameter as `param NAME: [dims] = init`, without `self.`",
                                 stmt.span,
                                 hint=f"write param {name}: [{', '.join(dims) or '...'}] = {init}")
        return SpecNameError("a body declares its children without `self.`", stmt.span,
                             hint=f"write {name} = {value}")

    def tie(self, stmt: ir.Tie, scope: Scope, node: ModuleNode) -> None:
        """``lm_head.weight = wte.weight``: one parameter held by two modules, as nanoGPT ties its embedding to
        its output layer. torch's ``parameters()`` lists a shared parameter once, so it is counted once: at the
        module that takes it, its own is gone."""
        value = self.static.dotted(stmt.value)
        if value is None or "." not in value:
            raise SpecArgError("a parameter is tied to another module's parameter, named by its path", stmt.value.span,
                               hint="write lm_head.weight = wte.weight")
        target, target_shape = self.parameter_at(stmt.target, node, stmt.span)
        shared, shared_shape = self.parameter_at(value.split("."), node, stmt.value.span)
        if shared == target:
            raise SpecArgError(f"{'.'.join(stmt.target)} is tied to itself", stmt.span,
                               hint="name the parameter of another module on the right")
        if target_shape != shared_shape:
            shown = [shape_str(tuple(Val(d) for d in s)) for s in (target_shape, shared_shape)]
            raise SpecShapeError(f"cannot tie {'.'.join(stmt.target)} {shown[0]} to {value} {shown[1]}: a shared "
                                 f"parameter has one shape", stmt.span,
                                 hint="tie parameters of the same shape: Linear(D, V).weight is [V, D], as is "
                                      "Embedding(V, D).weight")
        module, name = target
        if name in module.tied or shared[1] in shared[0].tied:
            raise SpecArgError(f"{'.'.join(stmt.target)} is tied twice", stmt.span,
                               hint="tie each parameter once, to the one that keeps it")
        keeper = f"{module.path}.{name}"
        if any(keeper == path for n in node.walk() for path in n.tied.values()):
            raise SpecArgError(f"{'.'.join(stmt.target)} is shared already: another module took this parameter, "
                               f"and would keep the old one", stmt.span,
                               hint="tie every module to the one that keeps the parameter: a.weight = c.weight "
                                    "and b.weight = c.weight")
        module.tied[name] = shared[0].path + "." + shared[1]
        numel = math.prod(target_shape)
        module.params -= numel
        module.trainable -= numel
        scope.tie_lines.append(Line(2, E.Assign(source(E.attr(E.SELF, *stmt.target)),
                                                E.attr(E.SELF, *value.split(".")))))

    def parameter_at(self, path: list[str], node: ModuleNode, span):
        """The (module, parameter name) a dotted path of a body names, and the parameter's shape."""
        *modules, param = path
        here = node
        for i, name in enumerate(modules):
            child = next((c for c in here.children if c.name == name), None)
            if child is None:
                where = ".".join(modules[:i]) or node.type_name
                raise SpecNameError(f"{where} has no child {name!r}", span,
                                    hint=suggest(name, [c.name for c in here.children], "children"))
            here = child
        if here.shared is not None:  # a child its container holds again: the parameter is the child's own
            here = next(n for n in node.walk() if n.path == here.shared)
        weights = here.layer.weights if here.kind == "layer" and here.layer is not None else None
        shapes = weights(Bound(values=dict(here.args))) if weights is not None else {}
        if param not in shapes:
            raise SpecNameError(f"{'.'.join(modules)} ({here.type_name}) has no parameter {param!r}", span,
                                hint=suggest(param, shapes, "parameters") if shapes else
                                "tie the parameters of layers such as Linear and Embedding")
        shape = tuple(d.value if isinstance(d, Val) else d for d in shapes[param])
        return (here, param), shape

    def run_sequential(self, scope: Scope, value: ir.Call, inputs: list[TensorInfo], node: ModuleNode) -> list:
        """A block written ``block Name(p) = Sequential(...)``: its modules are the class's own children 0, 1, ...,
        passed to nn.Sequential's constructor, whose forward runs them in order."""
        if len(inputs) != 1:
            raise SpecArgError(f"block {scope.name} is a Sequential, which takes one input, but is called with "
                               f"{len(inputs)}", value.span,
                               hint="give the block a body and a forward(x, y) that says how the inputs flow")
        recipe = self.static.eval_static(value, scope, scope.env, allow_modules=True)
        src = scope.step("input", "x", shapes=[inputs[0].shape])
        inst = self.modules.build_sequential(recipe, inputs, scope, scope.name, scope.path)
        for item in inst.items:  # the dataflow, for diagrams: each module after the one before
            src = scope.step("module", f"{item.node.name} ({item.node.type_name})", [src],
                             [t.shape for t in item.node.outputs], path=item.node.path)
        outs = inst.node.outputs
        scope.step("output", "output", [src], [t.shape for t in outs])
        scope.forward_params = ["x"]
        scope.sequential = True
        scope.super_init = E.Call(E.attr(E.call("super"), "__init__"), inst.expr.args, inst.expr.keywords,
                                  inst.expr.explode)
        node.flow = scope.flow
        node.children = [item.node for item in inst.items]
        return outs

    def unused_warning(self, slot: ChildSlot, scope: Scope, source: tuple | None) -> None:
        """A child forward never calls: its parameters are counted, saved and handed to the optimizer, but
        they take no part in the output (most often a layer written and then forgotten in forward)."""
        params = slot.instance.node.total_params
        weighs = f": its {params:,} parameters are never trained" if params else ""
        where = "forward" if scope.kind == "model" else f"the forward of {scope.name}"
        self.state.warn(
            "unused-child", f"child {slot.name!r} is declared but never used in {where}{weighs}", slot.span,
            hint=f"call it in forward, e.g. x = {slot.name}(x); or delete it" if is_attribute_name(slot.name) else
            "delete it, or name it with an identifier and call it in forward", where=source)

    @staticmethod
    def _raw_numel(r) -> int:
        n = 1
        for d in r[2].shape:
            n *= d.value
        return n

    # the calls that make a plain tensor, which a body may hold as an attribute: `W = torch.FloatTensor(3, 2)`
    TENSOR_MAKERS = ("torch.FloatTensor", "torch.Tensor", "torch.empty", "torch.zeros", "torch.ones", "torch.randn",
                     "torch.rand")

    def child_def(self, stmt: ir.Child, scope: Scope):
        if isinstance(stmt.value, ir.Call) and StaticEvaluator.dotted(stmt.value.func) in self.TENSOR_MAKERS:
            return self.tensor_def(stmt, scope)
        present, cond = True, None
        if stmt.cond is not None:
            c = self.static.eval_static(stmt.cond, scope, scope.env)
            if not isinstance(c, Val) or not isinstance(c.value, bool):
                raise SpecArgError("a child's condition must be True or False", stmt.cond.span,
                                   hint="test block parameters or in_shape, e.g. `if stride != 1`")
            present, cond = c.value, expr_of(c)
        value = self.static.eval_static(stmt.value, scope, scope.env, allow_modules=True)
        if isinstance(value, Recipe) and value.kind == "shared":  # `b = a`: a child is a module of its own
            other = value.shared.name
            raise SpecArgError(f"{other!r} is a child already: {stmt.name} = {other} would hold the one module "
                               f"under a second name", stmt.value.span,
                               hint=f"call {other} again in forward where it is meant, or write a new module: "
                                    f"{stmt.name} = {value.name}(...)")
        if isinstance(value, Recipe):
            slot = ChildSlot(stmt.name, value, present, stmt.span, cond)
            scope.children[stmt.name] = slot
            scope.order.append(stmt.name)
            scope.env[stmt.name] = slot
        elif stmt.cond is not None:
            raise SpecArgError("only a module can be conditional", stmt.cond.span,
                               hint='write `name = Module(...) if condition`; a value can use `a if condition else b`')
        elif not isinstance(value, Val):  # (Linear(...), ReLU()): several modules, no container
            raise SpecArgError(f"a child is one module, not {self.static.describe(value)}", stmt.value.span,
                               hint=_several_modules_hint(stmt))
        else:
            # a local compile-time value: `width = planes * 4`
            scope.env[stmt.name] = Val(value.value, E.Name(stmt.name))
            scope.raw.append(("const", stmt.name, None, expr_of(value), False))
            scope.order.append(stmt.name)  # printed in __init__, where the children's arguments name it

    def tensor_def(self, stmt: ir.Child, scope: Scope):
        """``W = torch.FloatTensor(3, 2)``: a plain tensor kept as an attribute, as the tutorials' first MyLinear
        does. It is no parameter and no buffer: the optimizer never sees it, state_dict leaves it out, and
        ``model.to(device)`` does not move it. Printed as written, with a warning that says so."""
        call = stmt.value
        maker = StaticEvaluator.dotted(call.func)
        if stmt.cond is not None or call.keywords or not call.args:
            raise SpecArgError(f"{maker}(...) as an attribute takes its sizes alone, e.g. {maker}(3, 2)", call.span,
                               hint=f"write {stmt.name} = {maker}(3, 2); better, param {stmt.name}: [3, 2] = "
                                    "xavier_uniform, which is trained")
        dims = []
        for a in call.args:
            v = self.static.eval_static(a, scope, scope.env)
            if not isinstance(v, Val) or isinstance(v.value, bool) or not isinstance(v.value, int) or v.value < 1:
                raise SpecArgError(f"{maker}(...): a size must be a positive integer", a.span,
                                   hint="give each dim as a number, a const or a block parameter")
            dims.append(v)
        info = TensorInfo(tuple(Val(d.value) for d in dims))
        shown = f"[{', '.join(str(d.value) for d in dims)}]"
        scope.raw.append(("tensor", stmt.name, info, E.call(maker, *[expr_of(d) for d in dims]), False))
        scope.order.append(stmt.name)
        scope.env[stmt.name] = ParamRef(stmt.name, info)
        self.state.unregistered.append((stmt.name, stmt.span))
        self.state.warn(
            "unregistered-tensor", f"{stmt.name!r} is a plain tensor, not registered with the module: it is no "
            "parameter (the optimizer never trains it), state_dict does not save it, and model.to(device) does not "
            "move it", stmt.span,
            hint=f"write param {stmt.name}: {shown} = {'xavier_uniform' if len(dims) > 1 else 'zeros'} to train it "
                 f"(nn.Parameter), or buffer "
                 f"{stmt.name}: {shown} for a tensor that moves and is saved but not trained")
        if maker in ("torch.FloatTensor", "torch.Tensor", "torch.empty"):
            self.state.warn(
                "empty-init", f"{maker}{tuple(d.value for d in dims) if len(dims) > 1 else f'({dims[0].value})'} "
                "keeps whatever the memory held: its values are arbitrary, may be huge or nan, and differ from run "
                "to run", call.span,
                hint="draw its values: param " + stmt.name + f": {shown} = "
                     + ("xavier_uniform" if len(dims) > 1 else "zeros") + ", or torch.randn(...) for a plain tensor")

    def raw_def(self, stmt, scope: Scope):
        info = self.tensor_type(stmt.type, scope, declare=False)
        for d in info.shape:
            if isinstance(d.value, Sym):
                raise SpecShapeError(f"{stmt.kind} {stmt.name!r} needs a fixed shape, not {shape_str(info.shape)}",
                                     stmt.type.span, hint='give every dim as a number, a const or a block parameter')
        dims = [expr_of(d) for d in info.shape]
        is_param = isinstance(stmt, ir.Param)
        if is_param and info.dtype != "float":
            raise SpecArgError(f"param {stmt.name!r} is {stmt.type.dtype}, but a parameter is trained, and torch "
                               f"trains only floating-point tensors", stmt.type.span,
                               hint=f"declare it without a dtype, param {stmt.name}: [...]; or hold indices or a "
                                    f"mask in a buffer: buffer {stmt.name}: {stmt.type.dtype}[...]")
        init = self.init_expr(stmt.init, dims, info, stmt, scope)
        self.init_warnings(stmt, info)
        scope.raw.append(("param" if is_param else "buffer", stmt.name, info, init, is_param))
        scope.order.append(stmt.name)
        scope.env[stmt.name] = ParamRef(stmt.name, info)
        # a buffer takes memory like a parameter: it counts against the same budget
        self.modules.count_params(self._raw_numel(("", "", info)), stmt.span,
                          "parameters" if is_param else "parameters and buffer elements")

    def init_warnings(self, stmt, info: TensorInfo) -> None:
        """A param without an init starts as zeros, which a weight seldom should (every unit then learns
        the same); an `empty` one holds whatever the memory held, the tutorials' torch.FloatTensor trap."""
        shown = shape_str(info.shape)
        good = "xavier_uniform" if len(info.shape) >= 2 else "zeros"
        if stmt.init is None and isinstance(stmt, ir.Param):
            self.state.warn(
                "param-no-init", f"param {stmt.name!r} has no init, so it starts as zeros", stmt.span,
                hint=f"give it one: param {stmt.name}: {shown} = {good} (or = normal(0, 0.02)); write = zeros to "
                     "mean zeros")
        elif isinstance(stmt.init, ir.Name) and stmt.init.id == "empty":
            self.state.warn(
                "empty-init", f"{stmt.kind} {stmt.name!r} = empty keeps whatever the memory held (torch.empty, as "
                f"torch.FloatTensor({', '.join(str(d) for d in shown.strip('[]').split(', '))}) does): "
                "its values are arbitrary, may be huge or nan, and differ from run to run",
                stmt.init.span, hint=f"give it an init that draws values: = {good}, = normal(0, 0.02)"
                                     + (", or = zeros" if good != "zeros" else ""))

    # init name -> (the function that makes the tensor, its argument names); `empty` is filled in place
    INITS = {
        "zeros": ("torch.zeros", ()),
        "ones": ("torch.ones", ()),
        "randn": ("torch.randn", ()),
        "rand": ("torch.rand", ()),
        "empty": ("torch.empty", ()),
        "constant": ("torch.full", ("value",)),
        "normal": ("nn.init.normal_", ("mean", "std")),
        "uniform": ("nn.init.uniform_", ("a", "b")),
        "xavier_uniform": ("nn.init.xavier_uniform_", ()),
        "xavier_normal": ("nn.init.xavier_normal_", ()),
        "kaiming_uniform": ("nn.init.kaiming_uniform_", ()),
        "kaiming_normal": ("nn.init.kaiming_normal_", ()),
    }

    def init_expr(self, init, dims: list, info: TensorInfo, stmt, scope: Scope):
        """``torch.zeros(3, 2)``, ``nn.init.normal_(torch.empty(3, 2), 0, 0.02)``: the tensor an init makes."""
        name, args = "zeros", []
        if init is None:
            name = "zeros"
        elif isinstance(init, ir.Name):
            name = init.id
        elif isinstance(init, ir.Call) and isinstance(init.func, ir.Name):
            name = init.func.id
            args = [self.static.eval_static(a, scope, scope.env) for a in init.args]
        else:
            raise SpecArgError("an init is a name such as randn, or a call such as normal(0, 0.02)", init.span,
                               hint="inits: " + ", ".join(self.INITS))
        if name not in self.INITS:
            raise SpecNameError(f"unknown init {name!r}", init.span,
                                hint=did_you_mean(name, self.INITS) or "inits: " + ", ".join(self.INITS))
        func, want = self.INITS[name]
        usage = f"{name}({', '.join(want)})" if want else name
        if len(args) != len(want):
            raise SpecArgError(f"init {name} takes {len(want)} argument{'s' if len(want) != 1 else ''}"
                               f"{' (' + ', '.join(want) + ')' if want else ''}, got {len(args)}", init.span,
                               hint=f"write it as {usage}")
        for a, w in zip(args, want):
            if not isinstance(a, Val) or isinstance(a.value, bool) or not isinstance(a.value, (int, float)):
                raise SpecArgError(f"init {name}: {w} must be a number", init.span, hint=f"write it as {usage}")
            if not math.isfinite(a.value):
                raise SpecArgError(f"init {name}: {w} must be finite, not {literal(a.value)}", init.span,
                                   hint="give a finite number")
        if name == "uniform" and args[0].value > args[1].value:
            raise SpecArgError(f"init uniform(a, b) needs a <= b, got a={literal(args[0].value)} > "
                               f"b={literal(args[1].value)}", init.span, hint="swap the bounds")
        if name == "normal" and args[1].value < 0:
            raise SpecArgError(f"init normal(mean, std) needs std >= 0, got {literal(args[1].value)}", init.span,
                               hint="a standard deviation is never negative")
        if name in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal") and len(info.shape) < 2:
            raise SpecArgError(f"init {name} needs at least 2 dims, the shape is {shape_str(info.shape)}", init.span,
                               hint="use normal(mean, std) or uniform(a, b) for a 1-d tensor")
        values = [expr_of(a) for a in args]
        sizes = list(dims) or [E.TupleExpr(())]  # a 0-dim tensor: torch.randn(()), as torch.randn() is refused
        if info.dtype != "float":  # a Long or Bool buffer: made in its dtype, as torch.ones(4, 4) is not
            dtype = {"long": E.attr("torch", "long"), "bool": E.attr("torch", "bool")}[info.dtype]
            if name not in ("zeros", "ones", "constant", "empty"):
                raise SpecArgError(f"init {name} draws floating-point numbers, but {stmt.name!r} is "
                                   f"{stmt.type.dtype}", init.span,
                                   hint="a Long or Bool buffer takes zeros, ones, constant(value) or empty")
            if name == "constant":
                v = args[0]
                return E.call(func, E.TupleExpr(tuple(dims)), expr_of(v), dtype=dtype)
            return E.call(func, *sizes, dtype=dtype)
        if name == "constant":  # torch.full takes a tuple, and makes a Long tensor of an int
            v = args[0]
            value = E.Constant(float(v.value)) if v.expr is None else (
                E.call("float", v.expr) if isinstance(v.value, int) else v.expr)
            return E.call(func, E.TupleExpr(tuple(dims)), value)
        if func.startswith("torch."):
            return E.call(func, *sizes)
        empty = E.call("torch.empty", *sizes)
        if name.startswith("kaiming"):
            return E.call(func, empty, nonlinearity=E.Constant("relu"))
        return E.call(func, empty, *values)

    # -- static expressions ------------------------------------------------------


def _fixed_suffix(fixed: dict) -> str | None:
    """``depth3``, ``shortcut`` / ``no_shortcut``, ``mode_avg``: fixed values as part of a class name."""
    parts = []
    for p, v in fixed.items():
        if isinstance(v, bool):
            parts.append(p if v else f"no_{p}")
        elif isinstance(v, int):
            parts.append(f"{p}{v}" if v >= 0 else f"{p}_minus{-v}")
        elif isinstance(v, str) and v.isidentifier() and v.isascii():
            parts.append(f"{p}_{v}")
        else:
            return None
    return "_".join(parts) if parts else None


def _several_modules_hint(stmt: ir.Child) -> str:
    """How a child holds the modules of a list or tuple, in the spec's own words: ModuleList or Sequential."""
    value, name = stmt.value, stmt.name if stmt.name.isidentifier() else f'"{stmt.name}"'
    if isinstance(value, (ir.ListExpr, ir.ListComp)) and len(written := source(value)) <= 80:
        return f"hold them in a ModuleList, {name} = ModuleList({written}), or run them in order: " \
               f"{name} = Sequential(*{written})"
    if isinstance(value, ir.TupleExpr) and value.items and len(written := source(value)[1:-1]) <= 80:
        return f"run them in order, {name} = Sequential({written}), or hold them: {name} = ModuleList([{written}])"
    return "hold several modules in Sequential(...) or ModuleList([...])"


def spec_identifiers(spec: ir.SpecFile) -> set[str]:
    """Every identifier a spec writes: names, targets, parameters, children, blocks, models, keys."""
    out: set[str] = set()

    def walk(node):
        if isinstance(node, list):
            for n in node:
                walk(n)
            return
        if not isinstance(node, ir.Node):
            return
        for field, value in node:
            if field in ("id", "name", "var") and isinstance(value, str):
                out.add(value)
            elif field in ("params", "names") and isinstance(value, list) and value and isinstance(value[0], str):
                out.update(value)
            elif isinstance(value, (list, ir.Node)):
                walk(value)

    walk(spec.items)
    return out


def _set_depths(node: ModuleNode, depth: int):
    node.depth = depth
    for c in node.children:
        _set_depths(c, depth + 1)


def elaborate(spec: ir.SpecFile, model: str | None = None, *, limits: Limits | None = None,
              text: str | None = None, imported=None) -> ModelGraph:
    """Elaborate one model of a parsed spec into its model graph.

    ``text`` is the spec's source, for an error to show its line. A spec that
    imports other files needs them resolved first, by the pipeline
    (``imported``: what `modelspec.imports.resolve_imports` returns): this
    stage reads no file and calls no stage before it.

    >>> from modelspec.parse import parse
    >>> g = elaborate(parse("model M(x: [B, 784]) { fc = Linear(_, 10) }"))
    >>> g.root.children[0].args["in_features"]
    784
    """
    if imported is None and any(isinstance(item, ir.Import) for item in spec.items):
        raise ValueError("this spec imports other files: resolve them first and pass them as imported= "
                         "(modelspec.pipeline.load_graph does)")
    limits = limits or Limits()
    budget = MAX_TERMS.set(limits.max_expr_terms)  # every symbolic size made meanwhile is held to it
    try:
        try:
            elaborator = Elaborator(spec, limits, imported)
        except SpecError as err:
            raise err.locate(spec.path, text) from None
        try:
            return elaborator.model(model)
        except ExprTooLarge as exc:  # outside forward (whose statements say where): at the model
            span = next((m.span for m in spec.models() if model in (None, m.name)), None)
            err = SpecLimitError(f"the model makes {exc}", span,
                                 hint="sizes built from many symbols multiply out; give some dims fixed sizes, or "
                                      "pass limits=Limits(max_expr_terms=...) if intended")
            raise err.locate(spec.path, text) from None
        except SpecError as err:
            # how far it got, for a summary of a spec that fails part-way (modelspec.summary.summarize)
            err.built, err.symbols = elaborator.state.built, elaborator.state.symbols
            raise err.locate(spec.path, text) from None
    finally:
        MAX_TERMS.reset(budget)
