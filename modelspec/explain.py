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

import re

from .model import ClassDef, ModelGraph, ModuleNode
from .shapes import shape_str

WIDTH = 120  # the longest comment line, indentation included (the project's line length)
ASSIGN = re.compile(r"^self\.(\w+) = (.*)$", re.S)
CLOSERS = (")", "]", "}")


def explain_doc(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """Docstring lines for a class: parameters (and mult-adds for the model).

    >>> from modelspec import elaborate_spec
    >>> g = elaborate_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }")
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
    uses = f"; {len(nodes)} uses ({_paths(nodes)})" if len(nodes) > 1 else f"; used as {nodes[0].path}"
    doc = [f"{cls.name}: {params}{uses}."]
    if len(nodes) > 1 and _varies(cls, graph):
        doc.append(f"The comments give the sizes of its first use, {nodes[0].path}; other uses differ.")
    return doc


def explain_init(cls: ClassDef, graph: ModelGraph) -> list[tuple[int, str]]:
    """``cls.init_lines`` with a comment before each module, parameter and buffer."""
    by_path = {n.path: n for n in graph.root.walk()}
    out: list[tuple[int, str]] = []
    for indent, code in cls.init_lines:
        out.extend((0, line) for line in _annotate_line(indent, code, cls, by_path))
    return out


def _annotate_line(indent: int, code: str, cls: ClassDef, by_path: dict) -> list[str]:
    """One init line as physical lines, comments inserted, with the sizes of the class's first use."""
    text = "    " * indent + code
    lines = text.split("\n")
    pad = " " * (4 * indent)
    m = ASSIGN.match(code)
    if code.startswith("self.register_buffer("):
        return [f"{pad}# a buffer: saved in the state_dict and moved by .to(), but not trained"] + lines
    if m is None or m.group(2) == "None":
        return lines
    name, value = m.groups()
    if value.startswith("nn.Parameter("):
        return [f"{pad}# nn.Parameter: a tensor the optimizer trains (it is in .parameters())"] + lines
    nodes = [by_path[p] for p in (_child_path(path, name) for path in _instance_paths(cls)) if p in by_path]
    if not nodes:
        return lines
    out = _annotate(lines, nodes[0])
    first = _child_path(_instance_paths(cls)[0], name)
    if nodes[0].path != first:  # absent from the first use: say whose sizes these are
        out.insert(0, f"{pad}# (as built at {nodes[0].path})")
    return out


def _annotate(lines: list[str], node: ModuleNode) -> list[str]:
    """Comment lines for ``node`` above its code; inside a container, one per element."""
    base = len(lines[0]) - len(lines[0].lstrip())
    out = [" " * base + "# " + c for c in describe(node, width=WIDTH - base - 2)] + [lines[0]]
    if len(lines) == 1:
        return out
    body, closing = lines[1:-1], lines[-1]
    starts = [i for i, ln in enumerate(body)
              if len(ln) - len(ln.lstrip()) == base + 4 and not ln.lstrip().startswith(CLOSERS)]
    if node.kind in ("sequential", "modulelist", "moduledict") and len(starts) == len(node.children):
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(body)
            out.extend(_annotate(body[start:end], node.children[k]))
    else:
        out.extend(body)
    out.append(closing)
    return out


def describe(node: ModuleNode, width: int | None = None) -> list[str]:
    """What a module computes and how its output shape follows, as comment lines (without ``#``).

    >>> from modelspec import elaborate_spec
    >>> conv = elaborate_spec("model M(x: [B, 1, 28, 28]) { c = Conv2d(1, 20, 5) }").root.children[0]
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
    return ", ".join(paths) if len(paths) <= 4 else f"{paths[0]}, {paths[1]}, ..., {paths[-1]}"


def _varies(cls: ClassDef, graph: ModelGraph) -> bool:
    """Whether the comments would differ between the class's uses."""
    by_path = {n.path: n for n in graph.root.walk()}
    seen = set()
    for path in _instance_paths(cls):
        texts = []
        for _indent, code in cls.init_lines:
            m = ASSIGN.match(code)
            node = by_path.get(_child_path(path, m.group(1))) if m else None
            if node is not None:
                texts.extend(_all_descriptions(node))
        seen.add(tuple(texts))
    return len(seen) > 1


def _all_descriptions(node: ModuleNode) -> list[str]:
    out = list(describe(node))
    if node.kind in ("sequential", "modulelist", "moduledict"):
        for c in node.children:
            out.extend(_all_descriptions(c))
    return out
