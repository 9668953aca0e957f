"""What a hover says about the name under the cursor, read off the model graph of the text.

A layer, a child, a block's use: its constructor call as the graph bound it
(``nn.Linear(in_features=784, out_features=10, bias=True)``), its input and
output shapes, parameters and mult-adds (counted as `modelspec summary`
counts them, at batch 1), once per instance where a block's body is used
several times; and the layer's signature and what it computes. A value of
forward: its shape after the statement that assigns it. A block, a model, a
const, a parameter: its declaration and what it came to.

Nothing here elaborates again: `editor.Analysis` has done it once for the
text. A model that fails part-way still shows the modules built before its
error.

A forward value's shapes are those of the line elaboration printed for the
statement that assigns it, in each instance: the line whose ``span`` is that
statement's. A loop prints its body once (further passes in ``Line.more``);
of a compile-time ``if`` only the branch taken is printed, so a statement of
the other has no line, and no shape is shown.

    >>> from modelspec.editor import Analysis
    >>> a = Analysis("model M(x: [B, 4]) {\\n    fc = Linear(_, 2)\\n}", "m.nnspec")
    >>> print(hover(a, 2, 6).markdown.splitlines()[0])
    **fc**: `nn.Linear(in_features=4, out_features=2, bias=True)`
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ir
from .budget import size_at, total
from .editor import (Analysis, ModelView, Symbol, bindings_before, chain_at, contains, layer_signature,
                     op_call, source_of, symbol_at)
from .errors import Span
from .layers.base import ModuleArg
from .model import Line, ModuleNode
from .ops import F_SPELLINGS
from .shapes import shape_str

MAX_SHOWN = 6  # instances a hover lists before "and N more"


@dataclass(frozen=True)
class Hover:
    markdown: str
    span: Span  # the name it is about


def hover(analysis: Analysis, line: int, column: int) -> Hover | None:
    """What to show for the name at (line, column), or None."""
    sym = symbol_at(analysis, line, column)
    if sym is None:
        return None
    text = _SAYS[sym.kind](analysis, sym)
    return Hover(text, sym.use) if text else None


# ---------------------------------------------------------------- per kind of name
def layer_hover(analysis: Analysis, sym: Symbol) -> str:
    layer = sym.node
    inferred = [a.name for a in layer.args if a.infer is not None]
    about = [f"```python\n{layer_signature(layer)}\n```", layer.doc]
    if inferred:
        about.append(f"`_` infers {', '.join(inferred)} from the input's shape.")
    return _join(modules_text(_call_nodes(analysis, sym), sym.name), "\n\n".join(about))


def container_hover(analysis: Analysis, sym: Symbol) -> str:
    return _join(modules_text(_call_nodes(analysis, sym), sym.name), f"`nn.{sym.name}`: a container of modules")


def op_hover(analysis: Analysis, sym: Symbol) -> str:
    """``F.relu``, ``torch.cat``, ``x.view``: how the operation is called (``sym.owner``: what precedes it)."""
    function = sym.owner in (*F_SPELLINGS, "torch")
    spelled = f"{sym.owner}.{sym.name}" if function else sym.name
    method = not function and sym.node.method
    return f"```python\n{op_call(sym.node, spelled, method)}\n```\n\n{sym.node.doc}".rstrip()


def block_hover(analysis: Analysis, sym: Symbol) -> str:
    nodes = _call_nodes(analysis, sym)
    if nodes:
        return _join(modules_text(nodes, sym.name), f"```nnspec\n{_block_header(analysis, sym)}\n```")
    uses = [(view, node) for view in analysis.models for node in view.nodes
            if node.kind == "block" and _block_of(view, node) == sym.name]
    return _join(f"```nnspec\n{_block_header(analysis, sym)}\n```", modules_text(uses))


def model_hover(analysis: Analysis, sym: Symbol) -> str:
    view = next((v for v in analysis.models if v.name == sym.name), None)
    header = " ".join(source_of(analysis, sym, sym.node).partition("{")[0].split())  # model M(x: [B, 8])
    head = f"```nnspec\n{header}\n```"
    if view is None:
        return head
    root = view.nodes[0]
    outs = ", ".join(_tensor(t) for t in root.outputs)
    shown = (f"→ {outs}  \n" if outs else "") + f"{_params(view, root):,} params · {_macs_text(view, root)}"
    stopped = "\n\n(stopped at an error: the numbers count the modules built before it)" if view.failed else ""
    return f"{head}\n\n{shown}\n\n{_sizes_note(view)}{stopped}"


def const_hover(analysis: Analysis, sym: Symbol) -> str:
    head = f"```nnspec\n{_declaration(analysis, sym)}\n```"
    value = analysis.const_values.get(sym.name)
    if value is None or str(value) == source_of(analysis, sym, sym.node.value):
        return head
    return f"{head}\n\n= {value}"


def child_hover(analysis: Analysis, sym: Symbol) -> str:
    nodes = analysis.local_nodes.get(_key(sym.node.value.span), [])
    return modules_text(nodes, sym.name) or f"```nnspec\n{_declaration(analysis, sym)}\n```"


def declaration_hover(analysis: Analysis, sym: Symbol) -> str:
    """A param, a buffer, a model's input: as declared, which says its shape."""
    return f"```nnspec\n{_declaration(analysis, sym)}\n```"


def block_param_hover(analysis: Analysis, sym: Symbol) -> str:
    head = f"```nnspec\n{_block_header(analysis, Symbol('block', sym.owner.name, sym.owner))}\n```"
    values = []
    for view in analysis.models:
        for node in view.nodes:
            if node.kind == "block" and _block_of(view, node) == sym.owner.name and sym.name in node.args:
                values.append(f"- `{node.path}`: {sym.name} = {_value(node.args[sym.name])}")
    return "\n".join([head, "", *_capped(values)]).rstrip()


def value_hover(analysis: Analysis, sym: Symbol) -> str:
    """A value of forward (an input, or what an assignment names): its shape, in each instance of a block."""
    found = _value_shapes(analysis, sym)
    if len(found) == 1 and not found[0][0]:
        return f"**{sym.name}**: {found[0][1]}"
    return "\n".join([f"**{sym.name}**:", *_capped([f"- `{label}`: {shapes}" for label, shapes in found])]) \
        if found else ""


def input_hover(analysis: Analysis, sym: Symbol) -> str:
    """A model's input, as declared; an input of forward, with its shape in each instance."""
    return value_hover(analysis, sym) if isinstance(sym.node, ir.Forward) else declaration_hover(analysis, sym)


_SAYS = {
    "layer": layer_hover, "container": container_hover, "op": op_hover, "block": block_hover,
    "model": model_hover, "const": const_hover, "child": child_hover, "param": declaration_hover,
    "buffer": declaration_hover, "input": input_hover, "block_param": block_param_hover, "value": value_hover,
    "loop": lambda analysis, sym: "",  # a module, or an element: nothing a hover could add
}


# ---------------------------------------------------------------- modules
def modules_text(pairs: list[tuple[ModelView, ModuleNode]], title: str = "") -> str:
    """The instances of one spec's module: its call, shapes, parameters and mult-adds, one line each
    (``title``, the name they go by; none: a list of a block's uses)."""
    if not pairs:
        return ""
    view, first = pairs[0]
    if len(pairs) == 1 and title:
        return f"**{title}**: `{_call(first)}`\n\n{_numbers(view, first)}\n\n{_sizes_note(view)}".rstrip()
    lines = [f"- `{node.path}`: `{_call(node)}` {_numbers(v, node)}" for v, node in pairs]
    head = f"**{title}**, {len(pairs)} instances:" if title else f"{len(pairs)} use{'s' if len(pairs) > 1 else ''}:"
    return "\n".join([head, *_capped(lines), "", _sizes_note(view)]).rstrip()


def _numbers(view: ModelView, node: ModuleNode) -> str:
    flow = []
    if node.inputs or node.outputs:
        outs = ", ".join(_tensor(t) for t in node.outputs) or ("error" if view.failed else "?")
        flow = [f"{', '.join(_tensor(t) for t in node.inputs) or '?'} → {outs}"]
    return " · ".join([*flow, f"{_params(view, node):,} params", _macs_text(view, node)])


def _call(node: ModuleNode) -> str:
    """The constructor call as the graph bound it: every argument, inferred ones included."""
    args = ", ".join(f"{k}={_value(v)}" for k, v in node.args.items())
    if node.kind == "layer":
        return f"nn.{node.type_name}({args})"
    if node.kind == "block":
        return f"{node.type_name}({args})"
    return f"nn.{node.type_name}: {len(node.children)} modules" if node.kind != "model" else node.type_name


def _subtree(view: ModelView, node: ModuleNode) -> list[ModuleNode]:
    prefix = node.path + "." if node.path else ""
    return [n for n in view.nodes if n is node or n.path.startswith(prefix)]


def _params(view: ModelView, node: ModuleNode) -> int:
    return sum(n.params for n in _subtree(view, node))


def macs(view: ModelView, node: ModuleNode) -> int | None:
    """A module's mult-adds with everything inside it, at the view's sizes, as `modelspec summary` counts."""
    inside = _subtree(view, node)
    each = [size_at(n.macs, view.sizes) for n in inside]  # None: a size that cannot be evaluated
    return total(None if m is None else m * view.runs[n.path] for m, n in zip(each, inside))


def _macs_text(view: ModelView, node: ModuleNode) -> str:
    n = macs(view, node)
    return "? MACs" if n is None else f"{n:,} MACs"


def _sizes_note(view: ModelView) -> str:
    at = ", ".join(f"{k}={v}" for k, v in view.sizes.items())
    return f"*MACs at {at}*" if at else ""


def _tensor(t) -> str:
    return ("" if t.dtype == "float" else t.dtype.capitalize()) + shape_str(t.shape)


def _value(v) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return f"{v.type_name}(...)" if isinstance(v, ModuleArg) else str(v)


def _call_nodes(analysis: Analysis, sym: Symbol) -> list:
    """The modules made by the call whose callee is the name under the cursor (``Linear`` in ``Linear(...)``)."""
    chain = chain_at(analysis.spec, sym.use.line, sym.use.column)
    call = next((n for n in reversed(chain) if isinstance(n, ir.Call)
                 and contains(n.func.span, sym.use.line, sym.use.column, end_inclusive=True)), None)
    return analysis.local_nodes.get(_key(call.span), []) if call is not None else []


def _block_of(view: ModelView, node: ModuleNode) -> str:
    return view.owners.get(node.path, node.type_name)


# ---------------------------------------------------------------- declarations
def _declaration(analysis: Analysis, sym: Symbol) -> str:
    """The text that declares ``sym``, on one line: ``const W = 4``, ``param W: [3, 2] = randn``."""
    text = " ".join(source_of(analysis, sym, sym.node).split())
    return text if len(text) <= 200 else text[:200] + " ..."


def _block_header(analysis: Analysis, sym: Symbol) -> str:
    """``block ConvBN(out, k = 3, stride = 1)``: a block's name and parameters."""
    block = sym.node
    params = ", ".join(p.name if p.default is None else f"{p.name} = {source_of(analysis, sym, p.default)}"
                       for p in block.params)
    return f"block {block.name}({params})"


# ---------------------------------------------------------------- forward's values
def _value_shapes(analysis: Analysis, sym: Symbol) -> list[tuple[str, str]]:
    """(instance, shapes) of a forward value, per instance of its block (one, unnamed, for a model)."""
    owner = sym.owner
    fwd = next((s for s in owner.body if isinstance(s, ir.Forward)), None)
    out = []
    for view in analysis.models:
        by_path = {n.path: n for n in view.nodes}
        for cls in view.classes:
            model = isinstance(owner, ir.Model)
            if cls.block != owner.name or (cls.kind == "model") != model or (model and view.name != owner.name):
                continue
            for path, lines in zip(cls.used_by, cls.instances or [cls.forward_lines]):
                node = by_path.get("" if model else path)
                shown = _shapes_in(sym, fwd, lines, node)
                if shown:
                    out.append(("" if model else path, shown))
    return out


def _shapes_in(sym: Symbol, fwd, lines: list[Line], node: ModuleNode | None) -> str:
    """The shapes of ``sym`` in one instance, whose forward printed ``lines``; "" where none is known."""
    if sym.kind == "input":
        if isinstance(sym.node, ir.ModelInput) or (node is not None and node.kind == "model"):
            i = [n.name for n in sym.owner.inputs].index(sym.name) if isinstance(sym.owner, ir.Model) else -1
        else:
            i = fwd.params.index(sym.name) if fwd is not None and sym.name in fwd.params else -1
        return _tensor(node.inputs[i]) if node is not None and 0 <= i < len(node.inputs) else ""
    if fwd is None:
        return ""
    printed = {_key(ln.span): ln for ln in lines if ln.span is not None}  # a statement's line, by its span
    ran = [stmt for stmt, _ in bindings_before(fwd, sym.name, sym.use) if _key(stmt.span) in printed]
    if not ran:
        return ""
    ln = printed[_key(ran[-1].span)]  # the last assignment before the place that this instance ran
    names = [t.id for t in _flat_targets(ran[-1].target)]
    passes = [ln.shapes, *ln.more]
    picked = [_pick(shapes, names, sym.name) for shapes in passes]
    if any(p is None for p in picked):
        return ""
    distinct = list(dict.fromkeys(picked))
    if len(passes) > 1:
        return distinct[0] + f" (each of {len(passes)} passes)" if len(distinct) == 1 else " then ".join(distinct)
    return distinct[0]


def _pick(shapes: list, names: list[str], name: str) -> str | None:
    """The shape of ``name`` among an assignment's targets; None where the shapes cannot be told apart."""
    if len(names) == len(shapes):
        return shape_str(shapes[names.index(name)])
    if names == [name] and shapes:  # one name for a tuple or list of tensors
        return "(" + ", ".join(shape_str(s) for s in shapes) + ")"
    return None


def _flat_targets(target) -> list[ir.NameTarget]:
    return [target] if isinstance(target, ir.NameTarget) else [t for i in target.items for t in _flat_targets(i)]


# ---------------------------------------------------------------- small helpers
def _key(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def _join(*parts: str) -> str:
    return "\n\n---\n\n".join(p for p in parts if p)


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_SHOWN:
        return lines
    return lines[:MAX_SHOWN] + [f"- and {len(lines) - MAX_SHOWN} more"]
