"""Teaching comments for ``modelspec codegen --explain``.

Each module built in ``__init__`` gets a comment saying what it computes and
how its output shape follows from its input (``# Conv2d: H_out = (28 + 2*0 -
1*(5-1) - 1) // 1 + 1 = 24``), and each class a docstring line with its
parameter count. Without ``--explain`` none of this is printed.

A class shared by several instances (a block used in many places) is one
piece of code: its comments show the sizes of its first use, and its
docstring says so when other uses have other sizes.
"""

from __future__ import annotations

from . import expr as E
from .model import ClassDef, Line, ModelGraph, ModuleNode
from .names import is_attribute_name
from .printer import CODE, INDENT, LINE_WIDTH as WIDTH, layout, statement_lines, string_literal
from .shapes import shape_str


def explain_doc(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """Docstring lines for a class: parameters (and mult-adds for the model).

    >>> from modelspec.pipeline import load_graph
    >>> g = load_graph("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> explain_doc(g.classes[-1], g)
    ['M: 10 parameters (10 trainable).', '8 mult-adds (MACs) for one example; FLOPs = 2 x MACs.']
    """
    if cls.kind == "model":
        from .summary import summarize

        s = summarize(graph, batch=1)
        doc = [f"{graph.name}: {s.total_params:,} parameters ({s.trainable_params:,} trainable)."]
        if s.total_mult_adds is not None:
            doc.append(f"{s.total_mult_adds:,} mult-adds (MACs) for one example; FLOPs = 2 x MACs.")
        return doc
    nodes = _instances(cls, graph)
    counts = sorted({n.total_params for n in nodes})
    if not counts:
        return []
    params = f"{counts[0]:,} parameters" if len(counts) == 1 else \
        f"{counts[0]:,} to {counts[-1]:,} parameters, by use"
    uses = f"; {len(nodes)} uses ({_paths(nodes)})" if len(nodes) > 1 else f"; used as {_shown(nodes[0].path)}"
    doc = [f"{cls.name}: {params}{uses}."]
    if len(nodes) > 1 and _varies(cls, graph):
        doc.append(f"The comments give the sizes of its first use, {_shown(nodes[0].path)}; other uses differ.")
    return doc


def explain_init(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """The lines of ``__init__`` with a comment before each module, parameter and buffer."""
    by_path = {n.path: n for n in graph.root.walk()}
    out: list[str] = []
    for ln in cls.init_lines:
        out.extend(_annotate_line(ln, cls, by_path) or statement_lines(ln))
    return out


def _annotate_line(ln: Line, cls: ClassDef, by_path: dict) -> list[str] | None:
    """One init statement with its comments, in the sizes of the class's first use (None: no comment)."""
    pad = INDENT * ln.indent
    stmt = ln.stmt
    if stmt.kind == "exprstmt" and getattr(stmt.value.func, "attr", None) == "register_buffer":
        return [f"{pad}# a buffer: saved in the state_dict and moved by .to(), but not trained"] + _lines(ln)
    if stmt.kind != "setattr" or stmt.value == E.Constant(None):
        return None
    if stmt.value.kind == "call" and CODE.text(stmt.value.func) == "nn.Parameter":
        return [f"{pad}# nn.Parameter: a tensor the optimizer trains (it is in .parameters())"] + _lines(ln)
    nodes = [by_path[p] for p in (_child_path(path, stmt.name) for path in _instance_paths(cls)) if p in by_path]
    if not nodes:
        return None
    if is_attribute_name(stmt.name):
        out = _annotate(f"self.{stmt.name} = ", stmt.value, nodes[0], ln.indent)
    else:  # a child named "block1-0"
        out = _annotate(f"self.add_module({string_literal(stmt.name)}, ", stmt.value, nodes[0], ln.indent, ")")
    first = _child_path(_instance_paths(cls)[0], stmt.name)
    if nodes[0].path != first:  # absent from the first use: say whose sizes these are
        out.insert(0, f"{pad}# (as built at {_shown(nodes[0].path)})")
    return out


def _lines(ln: Line) -> list[str]:
    return statement_lines(ln)


def _annotate(head: str, value, node: ModuleNode, depth: int, tail: str = "") -> list[str]:
    """Comment lines for ``node`` above its constructor call; inside an exploded container, one per element."""
    pad = INDENT * depth
    return [pad + "# " + c for c in describe(node, width=WIDTH - len(pad) - 2)] + _elements(
        head, value, node, depth, tail)


def _elements(head: str, value, node: ModuleNode, depth: int, tail: str = "") -> list[str]:
    """``head``, the call ``value`` and ``tail``; a container exploded one module a line (``node``'s children)
    with each element's comment above it."""
    items = _container_items(value)
    if items is None or len(items[2]) != len(node.children):
        made = [INDENT * line.depth + line.text for line in layout([head, *CODE.expr(value), tail], depth, hug=True)]
        if node.children and _repeats(value):  # [Block(...) for _ in range(n)]: what each of them is
            pad = INDENT * depth
            first = describe(node.children[0], width=WIDTH - len(pad) - 2)
            first[-1] += f" (each of the {len(node.children)})"
            return [pad + "# " + c for c in first] + made
        return made
    opener, closer, entries = items
    out = [INDENT * depth + head + opener]
    for (before, item, after), child in zip(entries, node.children):
        out += _annotate(before, item, child, depth + 1, after)
    out.append(INDENT * depth + closer + tail)
    return out


def _repeats(value) -> bool:
    """Whether a container's call holds its modules as a comprehension: ``nn.Sequential(*[m for _ in ...])``."""
    args = [a.value if a.kind == "starred" else a for a in getattr(value, "args", ())]
    return value.kind == "call" and len(args) == 1 and args[0].kind == "listcomp"


def _container_items(value):
    """(opener, closer, [(text before, item, text after)]) of a container exploded one module a line, else None:
    ``nn.Sequential(`` and ``)``, ``nn.ModuleDict({`` and ``})`` with ``"key": `` before an item, or
    ``nn.Sequential(OrderedDict([`` and ``]))`` with ``("key", `` before one and ``),`` after it."""
    if value.kind != "call" or value.keywords:
        return None
    func = CODE.text(value.func)
    if value.explode:
        return f"{func}(", ")", [("", a, ",") for a in value.args]
    if len(value.args) == 1 and getattr(value.args[0], "explode", False):
        inner = value.args[0]
        if inner.kind == "list":
            return f"{func}([", "])", [("", a, ",") for a in inner.items]
        if inner.kind == "dict":
            return f"{func}({{", "})", [(f"{CODE.text(k)}: ", v, ",") for k, v in zip(inner.keys, inner.values)]
    named = value.args[0] if len(value.args) == 1 else None  # OrderedDict([("conv", m), ...])
    if named is not None and named.kind == "call" and named.func == E.Name("OrderedDict") and len(named.args) == 1 \
            and getattr(named.args[0], "explode", False):
        pairs = named.args[0].items
        return f"{func}(OrderedDict([", "]))", [(f"({CODE.text(k)}, ", m, "),") for k, m in (p.items for p in pairs)]
    return None


def explain_super_init(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """``super().__init__(modules...)`` of a block ``= Sequential(...)``, a comment before each module, in
    the sizes of the class's first use."""
    nodes = _instances(cls, graph)
    if not nodes:
        return statement_lines(Line(2, E.ExprStmt(cls.super_init)))
    return _elements("", cls.super_init, nodes[0], 2)


def describe(node: ModuleNode, width: int | None = None) -> list[str]:
    """What a module computes and how its output shape follows, as comment lines (without ``#``).

    >>> from modelspec.pipeline import load_graph
    >>> conv = load_graph("model M(x: [B, 1, 28, 28]) { c = Conv2d(1, 20, 5) }").root.children[0]
    >>> for line in describe(conv): print(line)
    Conv2d: H_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24
            W_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24
            2-d convolution: slides out_channels kernels over the input; [B, 1, 28, 28] -> [B, 20, 24, 24]
    """
    flow = _flow(node)
    head = f"{node.type_name}: "
    indent = " " * len(head)
    if node.kind == "layer":
        doc = node.layer.doc if node.layer is not None else ""
        what = [f"{doc}; {flow}" if flow and doc else doc or flow]
        if width is not None and flow and doc and len(indent + what[0]) > width:
            what = [doc + ";", flow]  # too long for one line
        formulas = list(node.explain or [])
        lines = formulas + what
        return [head + lines[0]] + [indent + line for line in lines[1:]]
    n = len(node.children)
    plural = "s" if n != 1 else ""
    if node.kind == "sequential":
        return [head + f"runs its {n} module{plural} in order" + (f"; {flow}" if flow else "")]
    if node.kind == "modulelist":
        return [head + f"holds {n} module{plural}, registered by index; forward calls them"]
    if node.kind == "moduledict":
        return [head + f"holds {n} module{plural}, registered by key; forward calls them"]
    params = f"{node.total_params:,} parameter{'s' if node.total_params != 1 else ''}"
    return [head + f"the block class above, {params}" + (f"; {flow}" if flow else "")]


def _flow(node: ModuleNode) -> str:
    if not node.inputs and not node.outputs:
        return ""
    ins = ", ".join(shape_str(t.shape) for t in node.inputs)
    outs = ", ".join(shape_str(t.shape) for t in node.outputs)
    return f"{ins} -> {outs}"


def _instance_paths(cls: ClassDef) -> list[str]:
    return [""] if cls.kind == "model" else list(cls.used_by)


def _child_path(instance: str, name: str) -> str:
    return f"{instance}.{name}" if instance else name


def _instances(cls: ClassDef, graph: ModelGraph) -> list[ModuleNode]:
    by_path = {n.path: n for n in graph.root.walk()}
    return [by_path[p] for p in _instance_paths(cls) if p in by_path]


def _paths(nodes: list[ModuleNode]) -> str:
    paths = [n.path for n in nodes]
    paths = [_shown(p) for p in paths]
    return ", ".join(paths) if len(paths) <= 4 else f"{paths[0]}, {paths[1]}, ..., {paths[-1]}"


def _shown(path: str) -> str:
    """A module path as a docstring or comment may hold it: a child named by a string ("block1-0") may hold
    a quote, a backslash or a letter beyond ASCII, which are escaped as in a string literal, so that no name
    can end the docstring it is shown in."""
    return string_literal(path)[1:-1]


def _varies(cls: ClassDef, graph: ModelGraph) -> bool:
    """Whether the comments would differ between the class's uses."""
    by_path = {n.path: n for n in graph.root.walk()}
    seen = set()
    for path in _instance_paths(cls):
        texts = []
        for ln in cls.init_lines:
            if ln.stmt.kind == "setattr":
                node = by_path.get(_child_path(path, ln.stmt.name))
                if node is not None:
                    texts.extend(_all_descriptions(node))
        if cls.super_init is not None and path in by_path:  # a block `= Sequential(...)`: its own children
            for child in by_path[path].children:
                texts.extend(_all_descriptions(child))
        seen.add(tuple(texts))
    return len(seen) > 1


def _all_descriptions(node: ModuleNode) -> list[str]:
    out = list(describe(node))
    if node.kind in ("sequential", "modulelist", "moduledict"):
        for c in node.children:
            out.extend(_all_descriptions(c))
    return out
