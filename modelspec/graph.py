"""Model graph -> a diagram: modules as nodes, dataflow as edges labelled with shapes.

The diagram follows each forward's recorded dataflow (`FlowNode`s): an input,
a parameter, a call of a module, a tensor operation, an output. A layer's node
says its name, its type with its key arguments (``Conv2d 3→64, k7 s2 p3``, as
modelspec/keyargs.py says them) and its parameters. A block or a Sequential
above ``depth`` is drawn open, as a box (a cluster) around its own dataflow,
its inputs wired to whatever feeds the call; at ``depth`` it is one node,
drawn double-bordered, that says how many layers and parameters it holds.
The default depth, "auto", opens every module of a model whose diagram has
at most `MAX_NODES` nodes and folds a bigger one to fit (`fold_depth`).
Branches are a value read by several steps, merges an operation that reads
several (``+``, ``torch.cat``); an absent conditional child acts as the
identity, so its input flows straight on. Names come from the user's spec,
so every id and label is written quoted and escaped: no name can break the
syntax.

`draw(spec, format)` makes every format of `FORMATS`: DOT, Mermaid and a
self-contained HTML page (Graphviz compiled to WebAssembly draws it in the
browser) need nothing installed; SVG, PNG and PDF run Graphviz's ``dot``.
"""

from __future__ import annotations

import functools
import html
import json
import string
from dataclasses import dataclass, field
from importlib import resources

from .keyargs import key_args
from .model import FlowNode, ModelGraph, ModuleNode
from .pipeline import load_graph
from .shapes import shape_str

GRAPHVIZ_HELP = (
    "--format {format} needs Graphviz's `dot` program, which is not on PATH.\n"
    "  install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS),\n"
    "  `conda install graphviz`, or see https://graphviz.org/download/\n"
    "  or draw it with nothing installed: --format html -o model.html (any browser shows it), or --format dot"
)
MAX_NODES = 40  # what a screen or a page shows legibly; "auto" folds a bigger diagram down to it
RANKDIRS = ("TB", "LR")  # top to bottom, left to right


class GraphvizError(RuntimeError):
    """Graphviz's ``dot`` failed on a diagram, or took longer than it may."""


class GraphvizNotFound(GraphvizError):
    """SVG, PNG or PDF was asked for, but Graphviz's ``dot`` is not installed."""


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


def build_diagram(graph: ModelGraph, depth: int | str | None = None) -> Diagram:
    """Lay out a model's dataflow; modules deeper than ``depth`` are folded into their parent's node.

    ``depth``: None opens every module, "auto" folds a big model (`fold_depth`).

    >>> from modelspec.pipeline import load_graph
    >>> d = build_diagram(load_graph("model M(x: [B, 4]) { fc = Linear(_, 2) }"))
    >>> [(n.kind, n.lines) for n in d.nodes]
    [('input', ['x']), ('module', ['fc', 'Linear 4→2', '10 params']), ('output', ['output'])]
    >>> [e.label for e in d.edges]
    ['[B, 4]', '[B, 2]']
    """
    if depth == "auto":
        depth = fold_depth(graph)
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be 0 or more, None or 'auto', not {depth!r}")
    return _Layout(graph, depth).run()


def fold_depth(graph: ModelGraph, max_nodes: int = MAX_NODES) -> int | None:
    """The depth "auto" draws: None (every module open) when that diagram has at most ``max_nodes`` nodes, else
    the deepest depth whose diagram keeps to them, and at least 1 (the model's own children).

    >>> from modelspec.pipeline import load_graph
    >>> fold_depth(load_graph("specs/resnet18.nnspec")), fold_depth(load_graph("specs/cnn.nnspec"))
    (2, None)
    """
    if len(build_diagram(graph).nodes) <= max_nodes:
        return None
    deepest = max(n.depth for n in graph.root.walk())
    depth = 1
    while depth < deepest and len(build_diagram(graph, depth + 1).nodes) <= max_nodes:
        depth += 1
    return depth


def counted(n: int, noun: str) -> str:
    """A count in three digits at most, and what it counts: ``1 layer``, ``9.41k params``, ``11.7M params``.

    >>> counted(1, "layer"), counted(9408, "param"), counted(147968, "param"), counted(999_999, "param")
    ('1 layer', '9.41k params', '148k params', '1M params')
    """
    text = str(n)
    for unit, scale in (("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= scale * 0.9995:  # what rounds up to 1000 of the unit below is 1 of this one
            text = f"{n / scale:.3g}{unit}"
            break
    return f"{text} {noun}{'' if n == 1 else 's'}"


def module_lines(node: ModuleNode, name: str, folded: bool) -> list[str]:
    """A module's label: its name, its type (a layer's with its key arguments), and what it holds.

    A folded module says how many layers and parameters are inside it; a layer, its own parameters, and any
    it shares with another module (weight tying: ``weight = lm_head.weight``).
    """
    if folded:
        layers = sum(1 for n in node.walk() if n.kind == "layer" and n.shared is None)
        holds = [counted(layers, "layer")] if layers else []
        params = node.total_params
    else:
        holds, params = [], node.params
    if params:
        holds.append(counted(params, "param"))
    holds += [f"{own} = {other}" for own, other in node.tied.items()]
    kind = node.type_name
    if node.kind == "layer":
        kind = f"{kind} {key_args(kind, node.args)}".rstrip()
    return [name] + ([kind] if kind != name else []) + ([", ".join(holds)] if holds else [])


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
        nid = self.node(kind, module_lines(node, self.name_in(node, cluster), bool(node.children)), cluster)
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


def diagram_dot(d: Diagram, rankdir: str = "TB") -> str:
    """The diagram as a Graphviz digraph, laid out top to bottom (``rankdir="TB"``) or left to right ("LR")."""
    out = [
        f"digraph {dot_quote(d.name)} {{",
        # ranksep: each labelled edge takes a rank of its own, so the default 0.5 makes a tall strip of a chain
        f'  graph [rankdir={rankdir}, ranksep=0.25, fontname="Helvetica", fontsize=11];',
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


def diagram_mermaid(d: Diagram, rankdir: str = "TB") -> str:
    """The diagram as a Mermaid flowchart, top to bottom (``rankdir="TB"``) or left to right ("LR")."""
    out = [f"flowchart {rankdir}"]

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


# ---------------------------------------------------------------- Graphviz: SVG, PNG, PDF
def run_graphviz(dot_text: str, fmt: str, timeout: float = 60) -> bytes:
    """Graphviz's ``dot -T<fmt>`` on DOT text; `GraphvizNotFound` says how to install it."""
    import shutil
    import subprocess  # here: `modelspec check` imports this module (for its help) and runs no process

    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFound(GRAPHVIZ_HELP.format(format=fmt))
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz's dot took longer than {timeout:g} s; fold the diagram with --depth, or "
                            "draw it as --format html") from None
    if done.returncode != 0:
        raise GraphvizError(f"Graphviz's dot failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def diagram_svg(d: Diagram, rankdir: str = "TB") -> str:
    return run_graphviz(diagram_dot(d, rankdir), "svg").decode("utf-8")


def diagram_png(d: Diagram, rankdir: str = "TB") -> bytes:
    return run_graphviz(diagram_dot(d, rankdir), "png")


def diagram_pdf(d: Diagram, rankdir: str = "TB") -> bytes:
    return run_graphviz(diagram_dot(d, rankdir), "pdf")


# ---------------------------------------------------------------- HTML: one page, drawn in the browser
VIZ_JS = "viz-global.js"  # Viz.js: Graphviz compiled to WebAssembly (modelspec/assets/README.md)


@functools.cache
def viz_script() -> str:
    """The JavaScript of Viz.js, which defines ``Viz``: every page that draws DOT in a browser inlines this one.

    >>> "Viz.js" in viz_script()[:100]
    True
    """
    return (resources.files(__package__) / "assets" / VIZ_JS).read_text(encoding="utf-8")


# The page holds all it needs: Viz.js, then the DOT text as a JSON string (every <, > and & escaped: no label
# can end the script), which Viz draws as inline SVG. "fit" scales a big diagram to the window's width.
HTML_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { margin: 1em 1.5em; font: 14px Helvetica, Arial, sans-serif; color: #222; }
h1 { font-size: 1.2em; font-weight: normal; }
button { margin-left: 1em; font-size: 0.8em; }
#diagram.fit svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>$title <button id="fit" type="button">actual size / fit the window</button></h1>
<div id="diagram" class="fit">Drawing the diagram...<noscript> It needs JavaScript, which is off.</noscript></div>
<script>$viz</script>
<script>
(function () {
  var dot = $dot;
  var box = document.getElementById("diagram");
  document.getElementById("fit").onclick = function () { box.classList.toggle("fit"); };
  Viz.instance().then(function (viz) {
    box.innerHTML = viz.renderString(dot, {format: "svg_inline"});
  }).catch(function (err) {
    box.textContent = "The diagram could not be drawn: " + err;
  });
})();
</script>
</body>
</html>
""")


def script_json(value) -> str:
    """``value`` as JSON to put inside a <script>, every <, > and & escaped: no text in it can end the script.

    >>> script_json({"label": "</script><b>&"})
    '{"label": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value)
    for ch, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, escaped)
    return text


def diagram_html(d: Diagram, rankdir: str = "TB") -> str:
    """A self-contained HTML page that draws the diagram in a browser: no install, no network."""
    return HTML_PAGE.substitute(title=html.escape(d.name), viz=viz_script(), dot=script_json(diagram_dot(d, rankdir)))


# ---------------------------------------------------------------- public API
FORMATS = {"dot": diagram_dot, "mermaid": diagram_mermaid, "html": diagram_html, "svg": diagram_svg,
           "png": diagram_png, "pdf": diagram_pdf}  # format -> (Diagram, rankdir) -> its text or bytes
BINARY_FORMATS = ("png", "pdf")  # bytes: for a file or a pipe, not a terminal


def draw(spec, format: str = "dot", *, depth: int | str | None = "auto", rankdir: str = "TB",
         model: str | None = None) -> str | bytes:
    """The model as a diagram in ``format`` (one of `FORMATS`): bytes for png and pdf, text for the others.

    ``depth``: "auto" folds a big model to fit (`fold_depth`), None opens every module, N opens modules down
    to depth N. ``rankdir``: "TB" (top to bottom) or "LR" (left to right).

    >>> print(draw("model M(x: [B, 4]) { fc = Linear(_, 2) }", "mermaid", rankdir="LR").splitlines()[:3])
    ['flowchart LR', '    n0(["x"])', '    n1["fc<br/>Linear 4→2<br/>10 params"]']
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    return FORMATS[format](build_diagram(load_graph(spec, model=model), depth), rankdir)


def to_dot(spec, *, depth: int | str | None = "auto", rankdir: str = "TB", model: str | None = None) -> str:
    """The model as a Graphviz DOT digraph (a path, spec text or `ModelGraph`).

    >>> print(to_dot("model M(x: [B, 4]) { fc = Linear(_, 2) }").splitlines()[-2])
      "n1" -> "n2" [label="[B, 2]"];
    """
    return draw(spec, "dot", depth=depth, rankdir=rankdir, model=model)


def to_mermaid(spec, *, depth: int | str | None = "auto", rankdir: str = "TB", model: str | None = None) -> str:
    """The model as a Mermaid flowchart, which GitHub and many editors render.

    >>> print(to_mermaid("model M(x: [B, 4]) { fc = Linear(_, 2) }").splitlines()[2])
        n1["fc<br/>Linear 4→2<br/>10 params"]
    """
    return draw(spec, "mermaid", depth=depth, rankdir=rankdir, model=model)


def to_svg(spec, *, depth: int | str | None = "auto", rankdir: str = "TB", model: str | None = None) -> str:
    """The DOT diagram rendered by Graphviz's ``dot``; `GraphvizNotFound` says how to install it."""
    return draw(spec, "svg", depth=depth, rankdir=rankdir, model=model)


def to_html(spec, *, depth: int | str | None = "auto", rankdir: str = "TB", model: str | None = None) -> str:
    """The diagram as one HTML page that any browser draws, offline: Viz.js and the DOT text inlined.

    >>> page = to_html("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> page.startswith("<!DOCTYPE html>"), "<script src" in page
    (True, False)
    """
    return draw(spec, "html", depth=depth, rankdir=rankdir, model=model)
