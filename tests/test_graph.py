"""`modelspec graph` and `draw` / `to_dot` / `to_mermaid` / `to_svg` / `to_html`: the model as a diagram.

DOT is checked by Graphviz's own `dot` where it is installed (the tests that
need it skip cleanly otherwise) and, everywhere, by a small reader of the DOT
subset we write. Mermaid is checked by a reader of the flowchart subset we
write: every line one statement, every id defined once, subgraphs closed,
labels quoted and free of anything that would end them. The HTML page is
drawn by node, where it is installed, running the page's own scripts (the
vendored Viz.js among them) against a stand-in for the browser's document.
"""

from __future__ import annotations

import html.parser
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SPECS, spec_ids
import modelspec
from modelspec import elaborate_spec, to_dot, to_html, to_mermaid, to_svg
from modelspec.cli import main
from modelspec.graph import (MAX_NODES, Cluster, Diagram, Edge, Node, build_diagram, diagram_dot, diagram_html,
                             diagram_mermaid, draw, fold_depth, viz_script)
from modelspec.keyargs import FLOWS, KEY_ARGS, key_args
from modelspec.layers import CATALOG

ROOT = Path(__file__).resolve().parent.parent
IDS = spec_ids(SPECS)  # SPECS: the bundled specs, specs/tutorials/ too
DOT = shutil.which("dot")
NODE = shutil.which("node")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

# names that are keywords of DOT or Mermaid: ids are ours and labels quoted, so they must not matter
HOSTILE = """
block end(n) {
    subgraph = Linear(_, n)
    forward(x) { return subgraph(x) }
}
model digraph(x: [B, 4], node: [B, 4]) {
    edge = end(4)
    graph = Linear(_, 2)
    style = ReLU()
    forward(x, node) {
        return graph(style(edge(x) + node))
    }
}
"""
NASTY = 'a"b|c;d#e<f>g&h`i\\j{k}[l](m)\nn'


# ---------------------------------------------------------------- DOT
DOT_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(->|[{}\[\];=,])|([A-Za-z_][\w.]*|-?\d+(?:\.\d+)?))', re.S)


def read_dot(text: str) -> dict:
    """Parse the DOT subset modelspec writes; returns the node ids and edges. Fails on anything else."""
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = DOT_TOKEN.match(text, pos)
        assert m and m.end() > pos, f"cannot read DOT at {text[pos:pos + 40]!r}"
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    assert tokens[:2] == ["digraph", tokens[1]] and tokens[1].startswith('"') and tokens[2] == "{"
    assert tokens[-1] == "}"
    depth, nodes, edges, i = 0, set(), [], 2
    while i < len(tokens):
        t = tokens[i]
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            assert depth >= 0
        elif t == "subgraph":
            assert tokens[i + 1].startswith('"cluster_') and tokens[i + 2] == "{"
            i += 1
        elif t.startswith('"') and tokens[i + 1] == "->":
            assert tokens[i + 2].startswith('"')
            edges.append((t, tokens[i + 2]))
            i += 2
        elif t.startswith('"') and tokens[i + 1] in ("[", ";") and tokens[i - 1] in (";", "{", "}"):
            assert t not in nodes, f"node {t} defined twice"
            nodes.add(t)
        i += 1
    assert depth == 0
    assert {n for e in edges for n in e} <= nodes, "an edge to an undefined node"
    return {"nodes": nodes, "edges": edges}


def run_dot(text: str) -> str:
    done = subprocess.run([DOT, "-Tcanon"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_dot_is_well_formed(spec):
    for depth in (None, 0, 1, 2):
        read_dot(to_dot(spec, depth=depth))
    read_dot(to_dot(spec, rankdir="LR"))


@needs_dot
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_graphviz_parses_the_dot(spec):
    for depth in (None, 1):
        run_dot(to_dot(spec, depth=depth))
    assert "rankdir=LR" in run_dot(to_dot(spec, rankdir="LR"))


def test_names_and_labels_cannot_break_dot():
    read_dot(to_dot(HOSTILE))
    nasty = Diagram(NASTY, [Node("n0", "op", [NASTY], None), Node("n1", "module", ["x", NASTY], 0)],
                    [Edge("n0", "n1", NASTY)], [Cluster(0, NASTY, None, "")])
    text = diagram_dot(nasty)
    read_dot(text)
    if DOT is not None:
        canon = run_dot(text)
        assert canon.count("subgraph") == 1 and "n0 -> n1" in canon


# ---------------------------------------------------------------- Mermaid
MERMAID_LABEL = r'"[^"\n]*"'
MERMAID_NODE = re.compile(rf'^(n\d+)(?:\(\[{MERMAID_LABEL}\]\)|\[/{MERMAID_LABEL}/\]|\{{\{{{MERMAID_LABEL}\}}\}}'
                          rf'|\[\[{MERMAID_LABEL}\]\]|\[{MERMAID_LABEL}\])$')
MERMAID_EDGE = re.compile(rf'^(n\d+) -->(?:\|{MERMAID_LABEL}\|)? (n\d+)$')
MERMAID_SUBGRAPH = re.compile(rf'^subgraph c\d+ \[{MERMAID_LABEL}\]$')
MERMAID_CLASS = re.compile(r"^(classDef \w+ [\w:#,]+|class n\d+(,n\d+)* \w+)$")


def read_mermaid(text: str) -> dict:
    """Check a Mermaid flowchart of the subset modelspec writes; returns its node ids and edges."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] in ("flowchart TB", "flowchart LR")
    nodes, edges, open_subgraphs = [], [], 0
    for line in lines[1:]:
        s = line.strip()
        assert line.startswith("    "), line
        if m := MERMAID_NODE.match(s):
            nodes.append(m.group(1))
        elif m := MERMAID_EDGE.match(s):
            edges.append((m.group(1), m.group(2)))
        elif MERMAID_SUBGRAPH.match(s):
            open_subgraphs += 1
        elif s == "end":
            open_subgraphs -= 1
            assert open_subgraphs >= 0
        else:
            assert MERMAID_CLASS.match(s), f"not a Mermaid statement: {line!r}"
        for label in re.findall(r'"([^"]*)"', s):
            label = label.replace("<br/>", " ")  # our line break, the only markup
            assert not set(label) & set('"|`<>\\\n') and not re.search(r"#(?!\w+;)", label), label
    assert open_subgraphs == 0
    assert len(nodes) == len(set(nodes)), "a node defined twice"
    assert {n for e in edges for n in e} <= set(nodes), "an edge to an undefined node"
    return {"nodes": nodes, "edges": edges}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_mermaid_is_well_formed(spec):
    for depth in (None, 0, 1, 2):
        read_mermaid(to_mermaid(spec, depth=depth))
    assert read_mermaid(to_mermaid(spec, rankdir="LR")) == read_mermaid(to_mermaid(spec))
    assert to_mermaid(spec, rankdir="LR").startswith("flowchart LR\n")


def test_names_and_labels_cannot_break_mermaid():
    read_mermaid(to_mermaid(HOSTILE))
    nasty = Diagram("m", [Node("n0", "op", [NASTY], None), Node("n1", "block", ["end", NASTY], 0)],
                    [Edge("n0", "n1", NASTY)], [Cluster(0, NASTY, None, "")])
    text = diagram_mermaid(nasty)
    read_mermaid(text)
    assert "#quot;" in text and "#124;" in text and "#lt;" in text


# ---------------------------------------------------------------- what the diagram says
def test_layers_are_nodes_and_edges_carry_shapes():
    d = build_diagram(elaborate_spec(ROOT / "specs" / "cnn.nnspec"))
    labels = {n.id: n.lines for n in d.nodes}
    assert [labels[n.id] for n in d.nodes if n.cluster == 0] == [
        ["0", "Conv2d 1→20, k5", "520 params"], ["1", "ReLU"], ["2", "Conv2d 20→64, k5", "32.1k params"], ["3", "ReLU"]]
    assert d.clusters[0].label == "layers (Sequential)"
    path = [(labels[e.src][0], e.label, labels[e.dst][0]) for e in d.edges]
    assert path[0] == ("x", "[B, 1, 28, 28]", "0")
    assert ("3", "[B, 64, 20, 20]", ".view") in path and (".view", "[B, 25600]", "fc1") in path
    assert path[-1] == ("F.softmax", "[B, 10]", "output")


def test_branches_and_merges():
    d = build_diagram(elaborate_spec(ROOT / "specs" / "inception.nnspec"), depth=2)
    cats = [n.id for n in d.nodes if n.lines == ["torch.cat"]]
    assert len(cats) == 2
    for cat in cats:  # four branches merge in each concatenation
        assert len([e for e in d.edges if e.dst == cat]) == 4
    stem_out = next(n.id for n in d.nodes if n.lines == ["1", "ReLU"])
    assert len([e for e in d.edges if e.src == stem_out]) == 4  # and the stem's output branches to all four


def test_a_residual_skips_an_absent_child_and_meets_a_present_one():
    d = build_diagram(elaborate_spec(ROOT / "specs" / "resnet18.nnspec"), depth=3)
    label = {n.id: n.lines[0] for n in d.nodes}
    cluster = {c.path: c.id for c in d.clusters}
    # layer1.0 has no downsample: its input (maxpool's output) flows straight to the addition
    for block, shortcut in (("layer1.0", "maxpool"), ("layer1.1", "relu"), ("layer2.0", "downsample")):
        add = next(n.id for n in d.nodes if n.lines == ["+"] and n.cluster == cluster[block])
        assert sorted(label[e.src] for e in d.edges if e.dst == add) == sorted(["bn2", shortcut]), block
    downsamples = [n for n in d.nodes if n.lines[:2] == ["downsample", "Sequential"]]
    assert len(downsamples) == 3 and all(n.kind == "block" for n in downsamples)  # closed at depth 3
    assert downsamples[0].lines[2] == "2 layers, 8.45k params"  # Conv2d 64→128 k1 (8,192) and BatchNorm2d (256)


def test_depth_closes_modules_into_one_node():
    graph = elaborate_spec(ROOT / "specs" / "resnet18.nnspec")
    top = build_diagram(graph, depth=1)
    assert not top.clusters
    assert [n.lines[0] for n in top.nodes if n.kind == "block"] == ["layer1", "layer2", "layer3", "layer4"]
    assert len(build_diagram(graph, depth=2).clusters) == 4
    whole = build_diagram(graph, depth=0)
    assert [n.kind for n in whole.nodes] == ["input", "block", "output"]
    assert [e.label for e in whole.edges] == ["[B, 3, 224, 224]", "[B, 1000]"]
    full = build_diagram(graph)
    assert not any(n.kind == "block" for n in full.nodes)  # every block open, down to the layers


def test_params_ops_and_several_inputs():
    d = build_diagram(elaborate_spec(ROOT / "specs" / "my_linear.nnspec"))
    assert [(n.kind, n.lines[0]) for n in d.nodes] == [("input", "x"), ("param", "W"), ("op", "@"), ("param", "b"),
                                                       ("op", "+"), ("output", "output")]
    d = build_diagram(elaborate_spec(ROOT / "specs" / "two_inputs.nnspec"), depth=1)
    assert [n.lines[0] for n in d.nodes if n.kind == "input"] == ["image", "features"]


# ---------------------------------------------------------------- key arguments and what a node says
KEY_ARG_CASES = [  # (the model's inputs, the layer, what its node says after its name; forward when not l(inputs))
    ("x: [B, 3, 32, 32]", "Conv2d(3, 64, 7, stride=2, padding=3, bias=False)", "Conv2d 3→64, k7 s2 p3"),
    ("x: [B, 8, 16, 16]", "Conv2d(_, 16, 3, padding='same', dilation=2, groups=4)",
     "Conv2d 8→16, k3 padding=same d2 g4"),
    ("x: [B, 16, 8, 8]", "ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)",
     "ConvTranspose2d 16→8, k3 s2 p1 op1"),
    ("x: [B, 3, 8, 8]", "MaxPool2d(3, stride=1, padding=1)", "MaxPool2d k3 s1 p1"),  # a pool's stride is its kernel
    ("x: [B, 3, 8, 8]", "MaxPool2d(2)", "MaxPool2d k2"),
    ("x: [B, 3, 8, 8]", "AdaptiveAvgPool2d(1)", "AdaptiveAvgPool2d →1x1"),
    ("x: [B, 4]", "Linear(_, 10)", "Linear 4→10"),
    ("a: [B, 8], b: [B, 16]", "Bilinear(8, 16, 32)", "Bilinear 8, 16→32"),
    ("x: [B, T, 16]", "LSTM(_, 32, num_layers=2, bidirectional=True, proj_size=8, batch_first=True)",
     "LSTM 16→32, 2 layers, bidirectional, proj 8"),
    ("x: [B, T, 16]", "RNN(_, 32, nonlinearity='relu', batch_first=True)", "RNN 16→32, relu"),
    ("x: Long[B, T]", "Embedding(100, 16, padding_idx=0)", "Embedding 100→16, padding_idx=0"),
    ("x: Long[B, T]", "EmbeddingBag(100, 16, mode='sum')", "EmbeddingBag 100→16, sum"),
    ("x: [B, 8, 4, 4]", "BatchNorm2d(_)", "BatchNorm2d 8"),
    ("x: [B, 8, 4, 4]", "GroupNorm(2, 8)", "GroupNorm 8, 2 groups"),
    ("x: [B, T, 16]", "LayerNorm(16)", "LayerNorm 16"),
    ("x: [B, T, 16]", "MultiheadAttention(16, 4, batch_first=True)", "MultiheadAttention 16, 4 heads",
     "out, w = l(x, x, x)\n return out"),
    ("x: [B, T, 16]", "TransformerEncoder(TransformerEncoderLayer(16, 4, 32, batch_first=True), 2)",
     "TransformerEncoder TransformerEncoderLayer(16, 4 heads, ff 32), 2 layers"),
    ("t: [B, T, 16], m: [B, S, 16]", "TransformerDecoder(TransformerDecoderLayer(16, 1, 32, batch_first=True), 1)",
     "TransformerDecoder TransformerDecoderLayer(16, 1 head, ff 32)"),
    ("s: [B, S, 16], t: [B, T, 16]",
     "Transformer(16, 4, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=32, batch_first=True)",
     "Transformer 16, 4 heads, ff 32, 1 encoder layer, 2 decoder layers"),
    ("x: [B, 3, 8, 8]", "Upsample(scale_factor=2, mode='bilinear')", "Upsample ×2, bilinear"),
    ("x: [B, 8, 4, 4]", "PixelShuffle(2)", "PixelShuffle ×2"),
    ("x: [B, 2, 4, 4]", "PixelUnshuffle(2)", "PixelUnshuffle ÷2"),
    ("x: [B, 4]", "Dropout()", "Dropout p=0.5"),  # said at its default: the one number it has
    ("x: [B, 4]", "Softmax(dim=1)", "Softmax dim=1"),
    ("x: [B, 3, 4, 4]", "Flatten(0, 1)", "Flatten start_dim=0, end_dim=1"),
    ("x: [B, 16]", "Unflatten(1, (2, 8))", "Unflatten dim=1, →2x8"),
    ("x: [B, 4]", "LeakyReLU(0.2)", "LeakyReLU slope 0.2"),
    ("x: [B, 4]", "GELU(approximate='tanh')", "GELU tanh"),
    ("x: [B, 4]", "ReLU(inplace=True)", "ReLU"),  # nothing worth saying
]


def _case_layer(case):
    inputs, call, _, *forward = case
    names = ", ".join(re.findall(r"(\w+):", inputs))
    body = forward[0] if forward else f"return l({names})"
    graph = elaborate_spec(f"model M({inputs}) {{\n l = {call}\n forward({names}) {{\n {body}\n }}\n}}")
    return graph.root.children[0]


@pytest.mark.parametrize("case", KEY_ARG_CASES, ids=[c[2] for c in KEY_ARG_CASES])
def test_a_layer_says_its_key_arguments(case):
    layer = _case_layer(case)
    assert f"{layer.type_name} {key_args(layer.type_name, layer.args)}".rstrip() == case[2]


def test_every_key_argument_is_said_by_a_case():
    """An entry of KEY_ARGS or FLOWS passes only once a case shows it said (it changes the text when removed),
    and names an argument some catalog layer has (a misspelt one would never be said)."""
    layers = [_case_layer(c) for c in KEY_ARG_CASES]

    def said(names, layer):
        rest = {k: v for k, v in layer.args.items() if k not in names}
        return set(names) <= set(layer.args) and key_args(layer.type_name, rest) != key_args(
            layer.type_name, layer.args)

    entries = [(say.arg,) for say in KEY_ARGS] + [flow for flow in FLOWS]
    unsaid = [e for e in entries if not any(said(e, layer) for layer in layers)]
    assert not unsaid, f"no case says {unsaid}: add one to KEY_ARG_CASES"
    known = {a.name for layer in CATALOG.values() for a in layer.args}
    assert not {name for e in entries for name in e} - known


def test_the_summary_and_the_diagram_say_the_kernel_alike():
    graph = elaborate_spec(ROOT / "specs" / "resnet18.nnspec")
    row = next(r for r in modelspec.summarize(graph).rows if r.path == "conv1")
    assert row.kernel == "7x7"
    node = next(n for n in build_diagram(graph).nodes if n.lines[0] == "conv1")
    assert node.lines == ["conv1", "Conv2d 3→64, k7 s2 p3", "9.41k params"]


def test_a_folded_module_says_what_it_holds():
    graph = elaborate_spec(ROOT / "specs" / "resnet18.nnspec")
    layer1 = next(n for n in build_diagram(graph, depth=1).nodes if n.lines[0] == "layer1")
    assert layer1.kind == "block" and layer1.lines == ["layer1", "Sequential", "10 layers, 148k params"]
    whole = build_diagram(graph, depth=0).nodes[1]  # the model itself, its name said once
    assert whole.lines == ["ResNet18", "52 layers, 11.7M params"]  # 8 blocks of 5, 3 downsamples of 2, and 6
    assert graph.total_params == 11_689_512


def test_a_tied_weight_says_whose_it_is():
    d = build_diagram(elaborate_spec(ROOT / "specs" / "gpt.nnspec"))
    wte = next(n for n in d.nodes if n.lines[0] == "transformer.wte")
    assert wte.lines == ["transformer.wte", "Embedding 256→64", "weight = lm_head.weight"]  # its parameters: there


# ---------------------------------------------------------------- the default depth
def test_auto_folds_a_big_model_to_fit_and_leaves_a_small_one_open():
    resnet = elaborate_spec(ROOT / "specs" / "resnet18.nnspec")
    assert len(build_diagram(resnet).nodes) > MAX_NODES
    assert fold_depth(resnet) == 2
    assert len(build_diagram(resnet, depth="auto").nodes) <= MAX_NODES < len(build_diagram(resnet, depth=3).nodes)
    assert to_dot(resnet) == to_dot(resnet, depth=2)
    cnn = elaborate_spec(ROOT / "specs" / "cnn.nnspec")
    assert fold_depth(cnn) is None and to_dot(cnn) == to_dot(cnn, depth=None)
    assert fold_depth(resnet, max_nodes=5) == 1  # never below the model's own children


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_auto_keeps_every_bundled_diagram_to_max_nodes(spec):
    graph = elaborate_spec(spec)
    d = build_diagram(graph, depth="auto")
    assert len(d.nodes) <= MAX_NODES or fold_depth(graph) == 1


def test_bad_depth_rankdir_and_format_are_refused():
    for bad in (-1, "2", 1.5):
        with pytest.raises(ValueError, match="depth must be"):
            build_diagram(elaborate_spec(ROOT / "specs" / "cnn.nnspec"), depth=bad)
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR"):
        to_dot(ROOT / "specs" / "cnn.nnspec", rankdir="BT")
    with pytest.raises(ValueError, match="format must be one of"):
        draw(ROOT / "specs" / "cnn.nnspec", "jpeg")


# ---------------------------------------------------------------- HTML, drawn by the page's own scripts
class Scripts(html.parser.HTMLParser):
    """The inline scripts of a page as a browser's parser reads them (a script ends at the first </script)."""

    def __init__(self):
        super().__init__()
        self.scripts, self.inside, self.external = [], False, []

    def handle_starttag(self, tag, attrs):
        self.external += [value for name, value in attrs if name in ("src", "href")]
        if tag == "script":
            self.inside = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.scripts[-1] += data


def scripts_of(page: str) -> list[str]:
    parser = Scripts()
    parser.feed(page)
    assert not parser.external, f"the page loads {parser.external}"
    return parser.scripts


# a stand-in for the browser: the page's scripts run in order against a document with the elements they use;
# at exit, what the page put in its #diagram box
BROWSER = """
const fs = require("fs"), vm = require("vm");
const scripts = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const elements = {};
globalThis.document = {
  currentScript: null, baseURI: "file:///diagram.html",
  getElementById: (id) => elements[id] || (elements[id] = {innerHTML: "", textContent: "", classList: {toggle() {}}}),
};
scripts.forEach((code, i) => vm.runInThisContext(code, {filename: `script${i}.js`}));
process.on("exit", () => {
  const box = elements["diagram"];
  process.stdout.write(JSON.stringify({svg: box.innerHTML, error: box.textContent}));
});
"""


def open_in_node(page: str, tmp_path) -> dict:
    (tmp_path / "browser.js").write_text(BROWSER)
    (tmp_path / "scripts.json").write_text(json.dumps(scripts_of(page)))
    done = subprocess.run([NODE, str(tmp_path / "browser.js"), str(tmp_path / "scripts.json")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_holds_viz_and_the_dot_and_nothing_can_end_its_scripts():
    page = to_html(ROOT / "specs" / "cnn.nnspec")
    scripts = scripts_of(page)
    assert len(scripts) == 2 and scripts[0] == viz_script()
    dot = json.dumps(to_dot(ROOT / "specs" / "cnn.nnspec"))
    assert dot.replace(">", "\\u003e") in scripts[1] and "<" not in dot and "&" not in dot
    hostile = "</script><script>alert(1)</script><!--"
    d = Diagram(hostile, [Node("n0", "module", [hostile, NASTY], None)], [], [])
    page = diagram_html(d)
    assert len(scripts_of(page)) == 2 and "alert(1)</script>" not in page
    assert "<title>&lt;/script&gt;" in page


def test_viz_can_be_inlined_and_is_the_version_its_readme_says():
    js = viz_script()
    assert "</script" not in js.lower() and "<!--" not in js and "\r" not in js and "\0" not in js
    version = re.match(r"/\*!\s*Viz\.js (\S+)", js).group(1)
    readme = (ROOT / "modelspec" / "assets" / "README.md").read_text(encoding="utf-8")
    assert f"Viz.js {version} " in readme and f"@viz-js/viz@{version}" in readme
    licenses = (ROOT / "modelspec" / "assets" / "LICENSES.txt").read_text(encoding="utf-8")
    assert "Viz.js (MIT)" in licenses and "Expat (MIT)" in licenses and "Graphviz (EPL-1.0)" in licenses


@needs_node
@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_the_page_draws_the_diagram_with_nothing_installed(rankdir, tmp_path):
    spec = ROOT / "specs" / "resnet18.nnspec"
    got = open_in_node(to_html(spec, rankdir=rankdir), tmp_path)
    assert got["error"] == "" and got["svg"].lstrip().startswith("<!--") and "<svg" in got["svg"]
    d = build_diagram(elaborate_spec(spec), depth="auto")
    assert got["svg"].count('class="node"') == len(d.nodes) and got["svg"].count('class="edge"') == len(d.edges)
    assert "Conv2d 3→64, k7 s2 p3" in got["svg"] and "5 layers, 74k params" in got["svg"]


@needs_node
def test_the_page_says_when_it_cannot_draw(tmp_path):
    page = to_html(ROOT / "specs" / "cnn.nnspec").replace('var dot = "digraph', 'var dot = "not dot')
    got = open_in_node(page, tmp_path)
    assert got["svg"] == "" and got["error"].startswith("The diagram could not be drawn: ")


# ---------------------------------------------------------------- the command and SVG
def test_graph_command_writes_dot_and_mermaid(capsys, tmp_path):
    spec = str(ROOT / "specs" / "cnn.nnspec")
    assert main(["graph", spec]) == 0
    assert capsys.readouterr().out == to_dot(spec)
    out = tmp_path / "cnn.mmd"
    assert main(["graph", spec, "--format", "mermaid", "--depth", "1", "-o", str(out)]) == 0
    assert out.read_text() == to_mermaid(spec, depth=1)
    assert f"wrote {out}" in capsys.readouterr().err


@needs_dot
def test_svg_with_graphviz(capsys, tmp_path):
    spec = str(ROOT / "specs" / "resnet18.nnspec")
    out = tmp_path / "resnet.svg"
    assert main(["graph", spec, "--format", "svg", "--depth", "2", "-o", str(out)]) == 0
    assert "<svg" in out.read_text() and "layer1" in out.read_text()
    assert to_svg(spec, depth=1).lstrip().startswith("<?xml")


def test_svg_without_graphviz_says_how_to_get_it(capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert main(["graph", str(ROOT / "specs" / "cnn.nnspec"), "--format", "svg"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "needs Graphviz's `dot` program" in err and "apt-get install graphviz" in err
    assert "--format dot" in err and "Traceback" not in err
    with pytest.raises(modelspec.graph.GraphvizNotFound):
        to_svg(ROOT / "specs" / "cnn.nnspec")


@needs_dot
def test_png_and_pdf_with_graphviz(capsysbinary, tmp_path):
    spec = str(ROOT / "specs" / "resnet18.nnspec")
    for fmt, magic in (("png", b"\x89PNG\r\n"), ("pdf", b"%PDF-")):
        out = tmp_path / f"resnet.{fmt}"
        assert main(["graph", spec, "--format", fmt, "--rankdir", "LR", "-o", str(out)]) == 0
        assert out.read_bytes().startswith(magic)
        assert draw(spec, fmt, depth=1).startswith(magic)
    capsysbinary.readouterr()
    assert main(["graph", spec, "--format", "png"]) == 0  # stdout is no terminal here: the bytes go to it
    assert capsysbinary.readouterr().out.startswith(b"\x89PNG")


@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_binary_is_never_written_to_a_terminal(fmt, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert main(["graph", str(ROOT / "specs" / "cnn.nnspec"), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert err == f"modelspec graph: --format {fmt} is binary: write it to a file with -o model.{fmt}, or redirect " \
                  "stdout\n"
    assert sys.stdout.getvalue() == ""


def test_graph_command_options(capsys, tmp_path, monkeypatch):
    resnet, cnn = str(ROOT / "specs" / "resnet18.nnspec"), str(ROOT / "specs" / "cnn.nnspec")
    assert main(["graph", resnet]) == 0
    out, err = capsys.readouterr()
    assert out == to_dot(resnet, depth=2)
    assert err == "modelspec graph: ResNet18 drawn to --depth 2, deeper blocks folded; --depth all draws every layer\n"
    assert main(["graph", resnet, "--depth", "all", "--rankdir", "LR", "--format", "mermaid"]) == 0
    out, err = capsys.readouterr()
    assert out == to_mermaid(resnet, depth=None, rankdir="LR") and err == ""
    assert main(["graph", cnn, "--depth", "1"]) == 0 and capsys.readouterr() == (to_dot(cnn, depth=1), "")
    for bad in ("-1", "two", "1.5"):
        assert main(["graph", cnn, "--depth", bad]) == 2
        assert capsys.readouterr().err == f"modelspec graph: --depth takes a number (0 or more) or all, not {bad!r}\n"
    page = tmp_path / "cnn.html"
    assert main(["graph", cnn, "--format", "html", "-o", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == to_html(cnn) and capsys.readouterr().err == f"wrote {page}\n"
    nowhere = tmp_path / "no" / "such" / "folder.dot"
    assert main(["graph", cnn, "-o", str(nowhere)]) == 2
    assert capsys.readouterr().err == f"modelspec graph: cannot write {nowhere}: No such file or directory\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO((ROOT / "specs" / "cnn.nnspec").read_text()))
    assert main(["graph", "-", "--format", "mermaid"]) == 0 and capsys.readouterr().out == to_mermaid(cnn)


def test_graph_of_a_bad_spec_is_a_clean_error(capsys):
    assert main(["graph", str(ROOT / "tests" / "errors" / "shape_cnn_tutorial.nnspec")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "shape_cnn_tutorial.nnspec:11:18:" in err


def test_graph_and_summary_do_not_import_torch():
    code = """
import contextlib, io, sys
from modelspec.cli import main
for args in (["graph", "specs/resnet18.nnspec"], ["graph", "specs/inception.nnspec", "--format", "mermaid"],
             ["graph", "specs/cnn.nnspec", "--format", "html"],
             ["summary", "specs/transformer_classifier.nnspec", "--json"],
             ["summary", "tests/errors/shape_cnn_tutorial.nnspec"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    assert "torch" not in sys.modules, f"{args[0]} imported torch"
print("no torch")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no torch"
