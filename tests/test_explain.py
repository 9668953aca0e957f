"""`modelspec codegen --explain`: a comment on each layer saying what it computes and how its
output shape follows, and a docstring with the parameter count; without it, the lean code
(the golden files) byte for byte."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from modelspec import compile_spec, elaborate_spec, generate_code
from modelspec.build import build_module
from modelspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.nnspec"))
IDS = [p.stem for p in SPECS]


def without_docstrings(code: str) -> str:
    tree = ast.parse(code)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)
    return ast.dump(tree)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_explain_adds_only_comments_and_docstrings(spec):
    graph = elaborate_spec(spec)
    lean, explained = generate_code(graph), generate_code(graph, explain=True)
    assert explained != lean
    assert without_docstrings(explained) == without_docstrings(lean)
    assert lean == (ROOT / "tests" / "golden" / f"{spec.stem}.py").read_text()  # lean stays the golden bytes
    assert "# " not in "".join(ln.split("  # ")[0] for ln in lean.splitlines() if ln.lstrip().startswith("#"))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_module_and_parameter_gets_a_comment(spec):
    code = generate_code(spec, explain=True)
    lines = code.splitlines()
    init = False
    for i, line in enumerate(lines):
        s = line.strip()
        init = init or s == "super().__init__()"
        if s.startswith("def forward"):
            init = False
        creates = re.match(r"^self\.\w+ = (?!None$)", s) or re.match(r'^("\w+": )?(nn\.\w+|[A-Z]\w*)\(', s)
        prev = lines[i - 1].strip()
        argument = prev.endswith("(") and not re.search(r"nn\.(Sequential|ModuleList|ModuleDict)\(\W?$", prev)
        if init and creates and not argument:  # a module given as an argument (encoder_layer) has no comment
            assert prev.startswith("#"), f"no comment above line {i + 1}: {line}"
    assert max(len(ln) for ln in lines if ln.lstrip().startswith("#")) <= 120


def test_conv_comment_says_how_the_size_follows():
    code = generate_code(ROOT / "specs" / "cnn.nnspec", explain=True)
    assert "        # Sequential: runs its 4 modules in order; [B, 1, 28, 28] -> [B, 64, 20, 20]\n" \
           "        self.layers = nn.Sequential(\n" \
           "            # Conv2d: H_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24\n" \
           "            #         W_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24\n" in code
    assert "            # ReLU: max(0, x); [B, 20, 24, 24] -> [B, 20, 24, 24]\n            nn.ReLU(),\n" in code
    assert "        # Linear: y = x W^T + b over the last dim; [B, 25600] -> [B, 128]\n" in code
    assert '    """CNN: 3,310,802 parameters (3,310,802 trainable).\n' \
           "    16,366,080 mult-adds (MACs) for one example; FLOPs = 2 x MACs.\n" in code


def test_pooling_and_symbolic_sizes():
    code = generate_code(ROOT / "specs" / "seq_classifier.nnspec", explain=True)
    assert "# Conv1d: L_out = (T + 2*2 - 1*(5-1) - 1) // 1 + 1 = T\n" in code
    assert "# MaxPool1d: L_out = floor((T + 2*0 - 1*(2-1) - 1) / 2) + 1 = T // 2\n" in code


def test_a_shared_block_class_says_whose_sizes_it_shows():
    code = generate_code(ROOT / "specs" / "resnet18.nnspec", explain=True)
    assert '    """BasicBlock: 73,984 to 4,720,640 parameters, by use; 8 uses (layer1.0, layer1.1, ..., layer4.1).\n' \
           "    The comments give the sizes of its first use, layer1.0; other uses differ.\n" in code
    assert "            # (as built at layer2.0.downsample)\n" in code  # layer1.0 has none
    assert "# BasicBlock: the block class above, 73,984 parameters; [B, 64, 56, 56] -> [B, 64, 56, 56]" in code


def test_parameters_and_containers_are_explained():
    code = generate_code(ROOT / "specs" / "my_linear.nnspec", explain=True)
    assert code.count("# nn.Parameter: a tensor the optimizer trains") == 2
    code = generate_code(ROOT / "specs" / "module_list.nnspec", explain=True)
    assert "# ModuleList: holds 2 modules, registered by index" in code
    assert "# ModuleDict: holds 2 modules, registered by key" in code


@pytest.mark.parametrize("spec", ["cnn", "resnet18", "lstm_classifier"])
def test_explained_code_builds_the_same_model(spec, torch):
    path = ROOT / "specs" / f"{spec}.nnspec"
    graph = elaborate_spec(path)
    explained = build_module(generate_code(graph, explain=True), graph, seed=0)
    lean = compile_spec(path, seed=0)
    assert explained.state_dict().keys() == lean.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(explained.state_dict().values(), lean.state_dict().values()))


def test_codegen_command_explains(capsys):
    assert main(["codegen", str(ROOT / "specs" / "mnist_mlp.nnspec"), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "# Flatten: merges dims start_dim..end_dim into one; [B, 28, 28] -> [B, 784]" in out
    assert main(["codegen", str(ROOT / "specs" / "mnist_mlp.nnspec")]) == 0
    assert "# Flatten" not in capsys.readouterr().out
