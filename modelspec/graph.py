"""Model graph -> a diagram: modules as nodes, dataflow as edges labelled with shapes.

The diagram follows each forward's recorded dataflow (`FlowNode`s): an input,
a parameter, a call of a module, a tensor operation, an output. A block or a
Sequential above ``depth`` is drawn open, as a box (a cluster) around its own
dataflow, its inputs wired to whatever feeds the call; at ``depth`` it is one
node (drawn double-bordered: there is more inside). Branches are a value read
by several steps, merges an operation that reads several (``+``,
``torch.cat``); an absent conditional child acts as the identity, so its
input flows straight on. Names come from the user's spec, so every id and
label is written quoted and escaped: no name can break the syntax.

`to_dot` and `to_mermaid` return text that needs nothing installed;
`to_svg` runs Graphviz's ``dot`` on the DOT text.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from .model import FlowNode, ModelGraph, ModuleNode
from .pipeline import load_graph
from .shapes import shape_str

GRAPHVIZ_HELP = (
    "--format svg needs Graphviz's `dot` program, which is not on PATH.\n"
    "  install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS),\n"
    "  `conda install graphviz`, or see https://graphviz.org/download/\n"
    "  or print DOT and render it elsewhere: modelspec graph FILE --format dot -o model.dot"
)


class GraphvizNotFound(RuntimeError):
    """SVG was asked for, but Graphviz's ``dot`` is not installed."""


@dataclass
class Node:
    id: str  # "n0": ids are ours, never the user's names
    kind: str  # "input" | "output" | "param" | "op" | "module" | "block" (a module drawn closed)
    lines: list[str]  # the label, one entry per line
    cluster: int | None  # the open module it is drawn inside


@dataclass
class Edge:
    src: str
    dst: str
    label: str  # the shape(s) flowing along it


@dataclass
class Cluster:
    id: int
    label: str  # "layer1.0 (BasicBlock)"
    parent: int | None
    path: str  # the module's path, to name its members relative to it


@dataclass
class Diagram:
    """Nodes, edges and nested clusters, before any syntax."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


Producer = tuple  # (node id, shape text): where a value comes from, and what flows


def build_diagram(graph: ModelGraph, depth: int | None = None) -> Diagram:
    """Lay out a model's dataflow; modules deeper than ``depth`` are folded into their parent's node.

    >>> from modelspec.pipeline import load_graph
    >>> d = build_diagram(load_graph("model M(x: [B, 4]) { fc = Linear(_, 2) }"))
    >>> [(n.kind, n.lines) for n in d.nodes]
    [('input', ['x']), ('module', ['fc', 'Linear']), ('output', ['output'])]
    >>> [e.label for e in d.edges]
    ['[B, 4]', '[B, 2]']
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth!r}")
    return _Layout(graph, depth).run()


class _Layout:
    def __init__(self, graph: ModelGraph, depth: int | None):
        self.graph = graph
        self.depth = depth
        self.by_path = {n.path: n for n in graph.root.walk()}
        self.d = Diagram(graph.name)

    def run(self) -> Diagram:
        root = self.graph.root
        if self.depth == 0:  # the whole model as one node
            ins = [[(self.node("input", [n], None), shape_str(t.shape))] for n, t in self.graph.inputs]
            made = self.module(root, ins, [shape_str(t.shape) for t in root.outputs], None)
            self.connect(made, self.node("output", ["output"], None))
            return self.d
        self.flow(root, None, None)
        return self.d

    # -- building blocks
    def node(self, kind: str, lines: list[str], cluster: int | None) -> str:
        nid = f"n{len(self.d.nodes)}"
        self.d.nodes.append(Node(nid, kind, lines, cluster))
        return nid

    def connect(self, producers: list[Producer], dst: str):
        for src, shape in producers:
            self.d.edges.append(Edge(src, dst, shape))

    def cluster(self, node: ModuleNode, parent: int | None) -> int:
        c = Cluster(len(self.d.clusters), f"{self.name_in(node, parent)} ({node.type_name})", parent, node.path)
        self.d.clusters.append(c)
        return c.id

    def name_in(self, node: ModuleNode, cluster: int | None) -> str:
        """A module's path relative to the open module it is drawn in."""
        outer = self.d.clusters[cluster].path if cluster is not None else ""
        if outer and node.path.startswith(outer + "."):
            return node.path[len(outer) + 1:]
        return node.path or node.name

    def opens(self, node: ModuleNode) -> bool:
        if node.kind not in ("block", "sequential", "model") or not node.children and not node.flow:
            return False
        return self.depth is None or node.depth < self.depth

    # -- dataflow
    def flow(self, module: ModuleNode, inputs: list[list[Producer]] | None, cluster: int | None) -> list[Producer]:
        """Lay out one forward; ``inputs`` feed its input steps (None: the model's own, drawn as nodes)."""
        steps: list[FlowNode] = module.flow or []
        n_inputs = sum(1 for s in steps if s.kind == "input")
        made: dict[int, list[Producer]] = {}
        outputs: list[Producer] = []
        k = 0
        for step in steps:
            ins = [p for i in step.inputs for p in made.get(i, [])]
            shapes = ", ".join(shape_str(s) for s in step.shapes)
            if step.kind == "input":
                if inputs is None:
                    made[step.id] = [(self.node("input", [step.label], cluster), shapes)]
                else:  # a block's input: whatever feeds the call
                    made[step.id] = inputs[k] if len(inputs) == n_inputs else [p for g in inputs for p in g]
                k += 1
            elif step.kind == "param":
                made[step.id] = [(self.node("param", [step.label], cluster), shapes)]
            elif step.kind == "op":
                nid = self.node("op", [step.label], cluster)
                self.connect(ins, nid)
                made[step.id] = [(nid, shapes)]
            elif step.kind == "module":
                groups = [made.get(i, []) for i in step.inputs]
                made[step.id] = self.module(self.by_path.get(step.path), groups, [shapes], cluster, step.label)
            elif step.kind == "output":
                if inputs is None:
                    self.connect(ins, self.node("output", [step.label], cluster))
                else:
                    outputs.extend(ins)
        return outputs

    def module(self, node: ModuleNode | None, groups: list[list[Producer]], shapes: list[str],
               cluster: int | None, label: str | None = None) -> list[Producer]:
        ins = [p for g in groups for p in g]
        if node is None:
            if len(groups) == 1:  # an absent conditional child: the identity
                return ins
            nid = self.node("module", [label or "?"], cluster)
            self.connect(ins, nid)
            return [(nid, ", ".join(shapes))]
        if self.opens(node):
            inner = self.cluster(node, cluster) if node.kind != "model" else cluster
            if node.kind == "sequential":
                current = ins
                for child in node.children:
                    current = self.module(child, [current], [", ".join(shape_str(t.shape) for t in child.outputs)],
                                          inner)
                return current
            return self.flow(node, groups, inner)
        kind = "block" if node.children else "module"
        nid = self.node(kind, [self.name_in(node, cluster), node.type_name], cluster)
        self.connect(ins, nid)
        return [(nid, ", ".join(s for s in shapes if s))]


# ---------------------------------------------------------------- DOT
DOT_STYLE = {
    "input": 'shape=ellipse, fillcolor="#e3f4e1", color="#4f8a4b"',
    "output": 'shape=ellipse, fillcolor="#fdeedd", color="#b5762d"',
    "param": 'shape=note, fillcolor="#fff7d6", color="#a08a2c"',
    "op": 'shape=box, style=filled, fillcolor="#f2f2f2", color="#777777", fontsize=10',
    "module": "",
    "block": "peripheries=2",
}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string: quotes and backslashes escaped, newlines as \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n") + '"'


def diagram_dot(d: Diagram) -> str:
    out = [
        f"digraph {dot_quote(d.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style="rounded,filled", fillcolor="#e8f0fb", color="#4a6fa5", '
        'fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]

    def emit(cluster: int | None, indent: str):
        for n in d.nodes:
            if n.cluster == cluster:
                style = DOT_STYLE[n.kind]
                out.append(f"{indent}{dot_quote(n.id)} [label={dot_quote(chr(10).join(n.lines))}"
                           f"{', ' + style if style else ''}];")
        for c in d.clusters:
            if c.parent == cluster:
                out.append(f"{indent}subgraph {dot_quote(f'cluster_{c.id}')} {{")
                out.append(f'{indent}  label={dot_quote(c.label)}; style="rounded,dashed"; color="#8899aa"; '
                           f'fontsize=10;')
                emit(c.id, indent + "  ")
                out.append(f"{indent}}}")

    emit(None, "  ")
    for e in d.edges:
        label = f" [label={dot_quote(e.label)}]" if e.label else ""
        out.append(f"  {dot_quote(e.src)} -> {dot_quote(e.dst)}{label};")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Mermaid
MERMAID_SHAPE = {  # (open, close) around the quoted label
    "input": ('(["', '"])'),
    "output": ('(["', '"])'),
    "param": ('[/"', '"/]'),
    "op": ('{{"', '"}}'),
    "module": ('["', '"]'),
    "block": ('[["', '"]]'),
}
MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "&": "#38;", "<": "#lt;", ">": "#gt;", "|": "#124;",
                    "`": "#96;", ";": "#59;", "\\": "#92;"}


def mermaid_text(text: str) -> str:
    """Label text for inside Mermaid's double quotes: every character that could end or bend it as an entity."""
    return "".join(MERMAID_ENTITIES.get(ch, " " if ch in "\r\n\t" else ch) for ch in text)


def diagram_mermaid(d: Diagram) -> str:
    out = ["flowchart TB"]

    def emit(cluster: int | None, indent: str):
        for n in d.nodes:
            if n.cluster == cluster:
                left, right = MERMAID_SHAPE[n.kind]
                label = "<br/>".join(mermaid_text(line) for line in n.lines)
                out.append(f"{indent}{n.id}{left}{label}{right}")
        for c in d.clusters:
            if c.parent == cluster:
                out.append(f'{indent}subgraph c{c.id} ["{mermaid_text(c.label)}"]')
                emit(c.id, indent + "    ")
                out.append(f"{indent}end")

    emit(None, "    ")
    for e in d.edges:
        label = f'|"{mermaid_text(e.label)}"|' if e.label else ""
        out.append(f"    {e.src} -->{label} {e.dst}")
    classes = {"input": "fill:#e3f4e1,stroke:#4f8a4b", "output": "fill:#fdeedd,stroke:#b5762d",
               "param": "fill:#fff7d6,stroke:#a08a2c", "op": "fill:#f2f2f2,stroke:#777777"}
    for kind, style in classes.items():
        ids = [n.id for n in d.nodes if n.kind == kind]
        if ids:
            out.append(f"    classDef {kind} {style}")
            out.append(f"    class {','.join(ids)} {kind}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- public API
def to_dot(spec, *, depth: int | None = None, model: str | None = None) -> str:
    """The model as a Graphviz DOT digraph (a path, spec text or `ModelGraph`).

    >>> print(to_dot("model M(x: [B, 4]) { fc = Linear(_, 2) }").splitlines()[-2])
      "n1" -> "n2" [label="[B, 2]"];
    """
    return diagram_dot(build_diagram(load_graph(spec, model=model), depth))


def to_mermaid(spec, *, depth: int | None = None, model: str | None = None) -> str:
    """The model as a Mermaid flowchart, which GitHub and many editors render.

    >>> print(to_mermaid("model M(x: [B, 4]) { fc = Linear(_, 2) }").splitlines()[2])
        n1["fc<br/>Linear"]
    """
    return diagram_mermaid(build_diagram(load_graph(spec, model=model), depth))


def to_svg(spec, *, depth: int | None = None, model: str | None = None, timeout: float = 60) -> str:
    """The DOT diagram rendered by Graphviz's ``dot``; `GraphvizNotFound` says how to install it."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFound(GRAPHVIZ_HELP)
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(spec, depth=depth, model=model), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed: {done.stderr.strip()}")
    return done.stdout
