"""`modelspec codegen --explain`: a comment on each layer saying what it computes and how its
output shape follows, and a docstring with the parameter count; without it, the lean code
(the golden files) byte for byte."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import SPECS, spec_ids, spec_name
from modelspec import compile_spec, elaborate_spec, example_inputs, generate_code
from modelspec.build import build_module
from modelspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
IDS = spec_ids(SPECS)  # SPECS: the bundled specs, specs/tutorials/ too


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
    assert lean == (ROOT / "tests" / "golden" / f"{spec_name(spec)}.py").read_text()  # lean stays the golden bytes
    assert "# " not in "".join(ln.split("  # ")[0] for ln in lean.splitlines() if ln.lstrip().startswith("#"))


CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _called(node) -> str | None:
    """The name a call is spelled with: Conv2d for ``nn.Conv2d(...)``, BasicBlock, register_buffer."""
    if not isinstance(node, ast.Call):
        return None
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)


def _items(call: ast.Call) -> list[ast.Call]:
    """The modules a Sequential, ModuleList or ModuleDict call holds (none for any other call: a module
    passed to another's constructor, like TransformerEncoder's encoder_layer, is part of that one)."""
    name = _called(call)
    if name in ("Sequential", "__init__") and len(call.args) == 1 and _called(call.args[0]) == "OrderedDict":
        items = [pair.elts[1] for pair in call.args[0].args[0].elts]  # OrderedDict([("conv", m), ...])
    elif name in ("Sequential", "__init__"):  # nn.Sequential(...), or super().__init__(...) of a Sequential block
        items = [a.value.elt if isinstance(a, ast.Starred) and isinstance(a.value, ast.ListComp) else a
                 for a in call.args]
    elif name == "ModuleList" and call.args and isinstance(call.args[0], ast.List):
        items = call.args[0].elts
    elif name == "ModuleDict" and call.args and isinstance(call.args[0], ast.Dict):
        items = call.args[0].values
    else:
        items = []
    return [i for i in items if isinstance(i, ast.Call)]


def created_in_init(code: str) -> list[tuple[int, str]]:
    """(line, type) of everything an ``__init__`` creates: the value of each ``self.x = Call(...)`` and
    ``self.add_module("x-1", Call(...))`` (modules, blocks, nn.Parameter), each module a container holds
    (and a Sequential block's ``super().__init__(...)``), and each ``self.register_buffer``."""
    found = []

    def module(call: ast.Call):
        found.append((call.lineno, _called(call)))
        for item in _items(call):
            module(item)

    for cls in ast.parse(code).body:
        for fn in getattr(cls, "body", []):
            if not (isinstance(fn, ast.FunctionDef) and fn.name == "__init__"):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                        isinstance(t, ast.Attribute) and getattr(t.value, "id", None) == "self" for t in node.targets):
                    module(node.value)
                elif isinstance(node, ast.Expr) and _called(node.value) == "register_buffer":
                    found.append((node.lineno, "buffer"))
                elif isinstance(node, ast.Expr) and _called(node.value) == "add_module" \
                        and isinstance(node.value.args[1], ast.Call):
                    module(node.value.args[1])
                elif isinstance(node, ast.Expr) and _called(node.value) == "__init__":
                    for item in _items(node.value):
                        module(item)
    return sorted(found)


def missing_comments(code: str) -> list[str]:
    """Each line of `created_in_init` whose comment block (the comment lines right above it, at its
    indentation) has no line saying what it is, as ``# Conv2d: ...``, ``# nn.Parameter: ...``,
    ``# a buffer: ...``. Another comment does not count: not a stray one, not a lone
    ``# (as built at ...)`` note, not the comment of the line before."""
    lines = code.splitlines()
    problems = []
    for lineno, what in created_in_init(code):
        line = lines[lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
        block, j = [], lineno - 2
        while j >= 0 and lines[j].startswith(indent + "#"):
            block.append(lines[j].strip())
            j -= 1
        if not any(re.match(rf"# (nn\.|a )?{what}:", c) for c in block):
            problems.append(f"line {lineno}: {line.strip()}")
    return problems


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_module_and_parameter_gets_a_comment(spec):
    graph = elaborate_spec(spec)
    code = generate_code(graph, explain=True)
    created = created_in_init(code)
    assert len(created) >= len(graph.root.children), f"found only {created}: the checker misses lines"
    problems = missing_comments(code)
    assert not problems, "no comment says what these lines create:\n" + "\n".join(problems)
    assert max(len(ln) for ln in code.splitlines() if ln.lstrip().startswith("#")) <= 120


UNEXPLAINED = """\
class M(nn.Module):
    def __init__(self):
        super().__init__()
        # Linear: y = x W^T + b over the last dim; [B, 4] -> [B, 2]
        self.fc = nn.Linear(4, 2)
        self.act = nn.ReLU()
        # Sequential: runs its 2 modules in order; [B, 2] -> [B, 2]
        self.seq = nn.Sequential(
            # Linear: y = x W^T + b over the last dim; [B, 2] -> [B, 2]
            nn.Linear(2, 2),
            nn.ReLU(),
        )
        if True:
            # (as built at down)
            self.down = nn.Sequential(
                # ReLU: max(0, x); [B, 2] -> [B, 2]
                nn.ReLU(),
            )
        # a tensor the optimizer trains
        self.W = nn.Parameter(torch.zeros(2))
        self.register_buffer("mask", torch.ones(2))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(4, 2),
            num_layers=1,
        )

    def forward(self, x):
        return nn.ReLU()(x)
"""


def test_the_comment_check_reports_each_unexplained_line():
    assert missing_comments(UNEXPLAINED) == [
        "line 6: self.act = nn.ReLU()",  # no comment at all
        "line 11: nn.ReLU(),",  # the comment above is its sibling's line
        "line 15: self.down = nn.Sequential(",  # only the "(as built at)" note
        "line 20: self.W = nn.Parameter(torch.zeros(2))",  # a comment that does not say it is an nn.Parameter
        'line 21: self.register_buffer("mask", torch.ones(2))',
        "line 22: self.encoder = nn.TransformerEncoder(",  # but not its encoder_layer, nor forward
    ]


def test_the_comment_check_sees_one_comment_removed():
    lines = generate_code(ROOT / "specs" / "cnn.nnspec", explain=True).splitlines(keepends=True)
    assert not missing_comments("".join(lines))
    fc1 = next(i for i, line in enumerate(lines) if line.strip().startswith("self.fc1 = "))
    assert lines[fc1 - 1].strip().startswith("# Linear: ")
    problems = missing_comments("".join(lines[: fc1 - 1] + lines[fc1:]))
    assert problems == [f"line {fc1}: {lines[fc1].strip()}"]


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
    assert "# Flatten: merges dims start_dim..end_dim into one; [B, 1, 28, 28] -> [B, 784]" in out
    assert main(["codegen", str(ROOT / "specs" / "mnist_mlp.nnspec")]) == 0
    assert "# Flatten" not in capsys.readouterr().out


TOUR = """\
model Tour(x: [B, 64, 4, 4], a: [B, 1, 4, 8], m: [3, 8, 5], v: [8], s: [B, 3], t: [3], p: [B, 8], q: [B, 8]) {
    fc = Linear(_, 10, bias=False)
    conv = Conv2d(64, 32, 3, padding=1, bias=False)
    bn = BatchNorm2d(_, affine=False)
    bi = Bilinear(8, 8, 4, bias=False)

    forward(x, a, m, v, s, t, p, q) {
        h = bn(conv(x))
        j = torch.cat([h, x], dim=1)
        k = torch.stack([h, h, h], 1)
        y = fc(x.view(x.size(0), -1))
        r = x.reshape(x.size(0), 16, -1)
        n = r.reshape(-1, 64)
        g = torch.bmm(r, r.transpose(1, 2))
        w = a @ m
        u = torch.matmul(a, v)
        d = v @ v
        z = s + t
        e = h + h
        c = s * 2.0
        return j, k, y, n, g, w, u, d, z, e, c, bi(p, q)
    }
}
"""


@pytest.fixture(scope="module")
def tour() -> str:
    return generate_code(TOUR, explain=True)


def comment_above(code: str, statement: str) -> list[str]:
    """The comment lines right above the line of forward that starts with ``statement``, without ``# ``."""
    lines = code.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.strip().startswith(statement))
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    above = []
    while lines[i - 1].startswith(indent + "# "):
        i -= 1
        above.insert(0, lines[i][len(indent) + 2:])
    return above


def test_bmm_says_its_batch_and_the_dim_summed_over(tour):
    assert comment_above(tour, "g = torch.bmm(") == [
        "bmm: [B, 16, 64] @ [B, 64, 16] = [B, 16, 16]: [16, 64] @ [64, 16] for each of batch [B],",
        "     summing over 64",
    ]
    code = generate_code(ROOT / "specs" / "batched_matmul.nnspec", explain=True)
    assert "        # bmm: [N, 4, 8] @ [N, 8, 5] = [N, 4, 5]: [4, 8] @ [8, 5] for each of batch [N],\n" \
           "        #      summing over 8\n" \
           "        z = torch.bmm(self.proj(x), y)  # [N, 4, 5]\n" in code


def test_matmul_broadcasts_batch_dims_and_takes_a_1d_side_as_a_matrix(tour):
    assert comment_above(tour, "w = a @ m") == [
        "matmul: [B, 1, 4, 8] @ [3, 8, 5] = [B, 3, 4, 5]:",
        "        [4, 8] @ [8, 5] for each of batch [B, 3] (batch dims [B, 1] and [3] broadcast),",
        "        summing over 8",
    ]
    assert comment_above(tour, "u = torch.matmul(a, v)") == [
        "matmul: [B, 1, 4, 8] @ [8] = [B, 1, 4]: the [8] acts as [8, 1], that 1 removed after;",
        "        [4, 8] @ [8, 1] for each of batch [B, 1], the [8, 1] shared by all, summing over 8",
    ]
    assert comment_above(tour, "d = v @ v") == ["matmul: [8] @ [8] = []: a dot product, summing over 8"]
    code = generate_code(ROOT / "specs" / "my_linear.nnspec", explain=True)
    assert "        # matmul: [B, 3] @ [3, 2] = [B, 2], summing over 3\n" in code


def test_view_multiplies_the_sizes_out_and_says_what_the_minus_one_is(tour):
    assert "        # view: [B, 64, 4, 4] -> [B, 1024]: -1 = 64*4*4 = 1024 elements per sample\n" \
           "        y = self.fc(x.view(x.size(0), -1))  # [B, 10]\n" in tour
    code = generate_code(ROOT / "specs" / "gpt.nnspec", explain=True)
    assert "# view: [B, T, 64] -> [B, T, 4, 16]: 64 = 4*16 elements per [B, T] position\n" in code
    code = generate_code(ROOT / "specs" / "vit.nnspec", explain=True)
    assert "# flatten dims 2..3: [B, 64, 8, 8] -> [B, 64, 64]: 8*8 = 64\n" in code


def test_reshape_with_a_minus_one_among_other_sizes(tour):
    assert comment_above(tour, "r = x.reshape(") == [
        "reshape: [B, 64, 4, 4] -> [B, 16, 64]: -1 = 64*4*4 / 16 = 64 (1024 elements per sample)"]
    assert comment_above(tour, "n = r.reshape(-1, 64)") == [
        "reshape: [B, 16, 64] -> [16 * B, 64]: -1 = B*16*64 / 64 = 16 * B (1024 * B elements)"]


def test_broadcasting_is_said_dim_by_dim_and_only_where_shapes_differ(tour):
    assert comment_above(tour, "z = s + t") == [
        "broadcast: [B, 3] + [3] -> [B, 3] ([3] acts as [1, 3]; dim 0: B vs 1 -> B)"]
    assert comment_above(tour, "e = h + h") == []  # one shape: nothing to say
    assert comment_above(tour, "c = s * 2.0") == []  # a number
    code = generate_code(ROOT / "specs" / "moe.nnspec", explain=True)
    assert "# broadcast: [B, T, 32, 4] * [B, T, 1, 4] -> [B, T, 32, 4] (dim 2: 32 vs 1 -> 32)\n" in code


def test_cat_adds_the_sizes_along_its_dim(tour):
    assert comment_above(tour, "j = torch.cat(") == ["cat on dim 1: 32 + 64 = 96 -> [B, 96, 4, 4]"]
    code = generate_code(ROOT / "specs" / "densenet.nnspec", explain=True)  # a loop whose passes differ
    assert "            # (pass 1 of 4) cat on dim 1: 24 (one tensor) -> [B, 24, 32, 32]\n" \
           "            # (pass 4 of 4) cat on dim 1: 24 + 12 + 12 + 12 = 60 -> [B, 60, 32, 32]\n" \
           "            new_features = layer(torch.cat(features, 1))" in code


def test_stack_makes_a_new_dim(tour):
    assert comment_above(tour, "k = torch.stack(") == [
        "stack on new dim 1: 3 tensors of [B, 32, 4, 4] -> [B, 3, 32, 4, 4]"]


def test_a_layer_without_bias_has_no_bias_term(tour):
    assert "        # Linear: y = x W^T over the last dim; [B, 1024] -> [B, 10]\n" \
           "        self.fc = nn.Linear(1024, 10, bias=False)\n" in tour
    assert "        # Bilinear: y = x1^T A x2; [B, 8], [B, 8] -> [B, 4]\n" in tour
    code = generate_code(ROOT / "specs" / "cnn.nnspec", explain=True)
    assert "# Linear: y = x W^T + b over the last dim; [B, 25600] -> [B, 128]\n" in code  # with its bias
    assert "#         2-d convolution: slides out_channels kernels over the input;\n" in code


def test_a_conv_without_bias_says_so(tour):
    assert "        #         2-d convolution: slides out_channels kernels over the input (no bias);\n" \
           "        #         [B, 64, 4, 4] -> [B, 32, 4, 4]\n" \
           "        self.conv = nn.Conv2d(64, 32, 3, padding=1, bias=False)\n" in tour
    assert "        # BatchNorm2d: normalises each channel over the batch (affine=False: no scale or shift);\n" in tour


def test_explained_forward_runs_as_the_lean_one(tour, torch):
    graph = elaborate_spec(TOUR)
    assert without_docstrings(tour) == without_docstrings(generate_code(graph))
    inputs = example_inputs(TOUR, batch=2)
    explained = build_module(tour, graph, seed=0).eval()
    lean = compile_spec(TOUR, seed=0).eval()
    with torch.no_grad():
        for a, b in zip(explained(*inputs), lean(*inputs), strict=True):
            assert torch.equal(a, b)
