"""`modelspec graph` and `to_dot` / `to_mermaid` / `to_svg`: the model as a diagram.

DOT is checked by Graphviz's own `dot` where it is installed (the tests that
need it skip cleanly otherwise) and, everywhere, by a small reader of the DOT
subset we write. Mermaid is checked by a reader of the flowchart subset we
write: every line one statement, every id defined once, subgraphs closed,
labels quoted and free of anything that would end them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SPECS, spec_ids
import modelspec
from modelspec import elaborate_spec, to_dot, to_mermaid, to_svg
from modelspec.cli import main
from modelspec.graph import Cluster, Diagram, Edge, Node, build_diagram, diagram_dot, diagram_mermaid

ROOT = Path(__file__).resolve().parent.parent
IDS = spec_ids(SPECS)  # SPECS: the bundled specs, specs/tutorials/ too
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")

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


@needs_dot
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_graphviz_parses_the_dot(spec):
    for depth in (None, 1):
        run_dot(to_dot(spec, depth=depth))


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
    assert lines[0] == "flowchart TB"
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
    assert [labels[n.id] for n in d.nodes if n.cluster == 0] == [["0", "Conv2d"], ["1", "ReLU"], ["2", "Conv2d"],
                                                                 ["3", "ReLU"]]
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
    downsamples = [n for n in d.nodes if n.lines == ["downsample", "Sequential"]]
    assert len(downsamples) == 3 and all(n.kind == "block" for n in downsamples)  # closed at depth 3


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
    assert main(["graph", str(ROOT / "specs" / "cnn.nnspec"), "--format", "svg"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "needs Graphviz's `dot` program" in err and "apt-get install graphviz" in err
    assert "--format dot" in err and "Traceback" not in err
    with pytest.raises(modelspec.graph.GraphvizNotFound):
        to_svg(ROOT / "specs" / "cnn.nnspec")


def test_graph_of_a_bad_spec_is_a_clean_error(capsys):
    assert main(["graph", str(ROOT / "tests" / "errors" / "shape_cnn_tutorial.nnspec")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "shape_cnn_tutorial.nnspec:11:18:" in err


def test_graph_and_summary_do_not_import_torch():
    code = """
import contextlib, io, sys
from modelspec.cli import main
for args in (["graph", "specs/resnet18.nnspec"], ["graph", "specs/inception.nnspec", "--format", "mermaid"],
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
