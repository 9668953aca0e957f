"""`modelspec from-torch`: an nn.Module back to a spec that compiles to the same module.

Every bundled spec's printed code, imported as a Python module, and the hand-written references go back to a
spec whose model has the same state_dict keys (in order) and shapes, and, with the original's weights loaded,
bitwise-equal outputs in eval and in training (each run from one seed). What a spec cannot say is an error or a
TODO placeholder that names the Python line.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT, SPECS  # noqa: E402
from fromtorch_models import tiny_resnet  # noqa: E402
from reference_models import VisionTransformer, gpt_small, resnet18  # noqa: E402

from modelspec import compile_spec, elaborate_spec, example_inputs, format_spec, from_torch, generate_code  # noqa: E402
from modelspec.cli import main  # noqa: E402
from modelspec.fromtorch import FromTorchError, Problem  # noqa: E402
from modelspec.pipeline import symbol_sizes  # noqa: E402

MODELS = Path(__file__).parent / "fromtorch_models.py"
BROKEN = next(i for i, t in enumerate(MODELS.read_text().splitlines(), 1) if 'int("four")' in t)


def declared(path) -> tuple[str, str]:
    """The model's name and its inputs as --input declares them, consts written out: "x: [B, 3, 32, 32]"."""
    graph = elaborate_spec(path)
    sizes = symbol_sizes(graph, 2)
    parts = []
    for name, info in graph.inputs:
        dims = [str(d.value) if isinstance(d.value, int) else
                (str(d.value) if str(d.value) == "B" else f"{d.value}={sizes[str(d.value)]}") for d in info.shape]
        prefix = {"long": "Long", "bool": "Bool"}.get(info.dtype, "")
        parts.append(f"{name}: {prefix}[{', '.join(dims)}]")
    return graph.name, ", ".join(parts)


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flat(y):
    return [y] if isinstance(y, torch.Tensor) else [t for v in y for t in flat(v)]


def same_module(original, text: str, inputs):
    """``text`` compiles to a module with ``original``'s state_dict, keys in order, and its outputs, bit for bit,
    in eval and in training."""
    built = compile_spec(text, seed=1)
    ours, theirs = built.state_dict(), original.state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    built.load_state_dict(theirs)
    for path, m in original.named_modules():  # plain tensor attributes are no state: copied by hand
        for k, v in vars(m).items():
            if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
                setattr(built.get_submodule(path), k, v.clone())
    for training in (False, True):
        original.train(training)
        built.train(training)
        with torch.no_grad():
            torch.manual_seed(5)
            a = original(*inputs)
            torch.manual_seed(5)
            b = built(*inputs)
        for u, v in zip(flat(a), flat(b), strict=True):
            assert u.shape == v.shape and torch.equal(u, v), f"outputs differ (training={training})"


def written(module, inputs: str, **kw) -> str:
    text = from_torch(module, inputs, **kw)
    assert format_spec(text) == text, "from-torch's output passes fmt --check"
    return text


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_bundled_specs_printed_code_comes_back(path, tmp_path):
    name, inputs = declared(path)
    file = tmp_path / f"{path.stem}.py"
    file.write_text(generate_code(path), encoding="utf-8")
    module = import_file(file, f"printed_{path.stem}")
    torch.manual_seed(0)
    original = getattr(module, name)()
    text = written(original, inputs)
    same_module(original, text, example_inputs(path, batch=2))


def test_resnet18_reference_comes_back_with_its_blocks():
    torch.manual_seed(0)
    original = resnet18()
    text = written(original, "x: [B, 3, 224, 224]")
    # one block for the eight BasicBlocks: what differs is a parameter, the shortcut a conditional child
    assert text.count("block ") == 1 and "block BasicBlock(out_channels, stride=1)" in text
    assert ") if stride != 1\n" in text and "conv1 = Conv2d(_, out_channels, 3, stride=stride" in text
    assert "layer2 = Sequential(BasicBlock(128, stride=2), BasicBlock(128))" in text
    same_module(original, text, (torch.randn(2, 3, 224, 224),))


def test_nanogpt_reference_comes_back():
    torch.manual_seed(0)
    original = gpt_small()
    text = written(original, "idx: Long[B, T=64]")
    assert "transformer.wte.weight = lm_head.weight" in text  # the tie
    assert "for layer in transformer.h {" in text  # the loop over the ModuleList
    assert "q, k, v = c_attn(x).split(64, dim=2)" in text  # names as the source has them
    assert "block LayerNormBlock()" in text  # nanoGPT's own LayerNorm, beside the catalog's
    assert "# from-torch: the assert at tests/reference_models.py:" in text
    same_module(original, text, (torch.randint(0, 256, (2, 64)),))


def test_vit_reference_comes_back():
    torch.manual_seed(0)
    original = VisionTransformer(32, 4, 64, 3, 4, 10)
    text = written(original, "x: [B, 3, 32, 32]")
    same_module(original, text, (torch.randn(2, 3, 32, 32),))


def test_instances_that_differ_in_numbers_are_one_block_with_a_conditional_child():
    torch.manual_seed(0)
    original = tiny_resnet()
    text = written(original, "x: [B, 3, 16, 16]")
    assert "block Block(out_channels, stride=1) {" in text  # `stride` as the module holds it, its default kept
    # the simplest condition the instances agree on; inside the conditional child, stride is the parameter
    assert "Conv2d(_, out_channels, 1, stride=stride, bias=False),\n        BatchNorm2d(_),\n    ) if stride != 1\n" \
        in text
    assert "ModuleList([Block(16), Block(32, stride=2), Block(32), Block(64, stride=2)])" in text
    assert "for layer in layers {" in text and "return heads.fc(x)" in text
    same_module(original, text, (torch.randn(2, 3, 16, 16),))


def test_sizes_that_follow_from_the_input_are_inferred():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 6 * 6, 4))
    text = written(net, "x: [B, 3, 8, 8]", name="Net")
    assert '"0" = Conv2d(_, 8, 3)' in text and '"1" = BatchNorm2d(_)' in text and '"3" = Linear(_, 4)' in text


def test_a_child_held_again_and_a_plain_module_list():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.seq = torch.nn.Sequential(self.fc, torch.nn.ReLU())

        def forward(self, x):
            return self.seq(x) + self.fc(x)

    text = written(Net(), "x: [B, 4]")
    assert "seq = Sequential(fc, ReLU())" in text
    same_module(Net(), text, (torch.randn(2, 4),))


def test_the_language_docs_before_and_after(tmp_path):
    """docs/language.md's ```python from-torch block, read by from_torch, is the ```nnspec block after it."""
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    before = doc.split("```python from-torch\n", 1)[1].split("```\n", 1)[0]
    after = doc.split("```python from-torch\n", 1)[1].split("```nnspec\n", 1)[1].split("```\n", 1)[0]
    file = tmp_path / "model.py"
    file.write_text(before, encoding="utf-8")
    module = import_file(file, "doc_model")
    inputs = after.split("model Net(", 1)[1].split(") {", 1)[0]
    torch.manual_seed(0)
    original = module.Net()
    assert written(original, inputs) == after
    same_module(original, after, (torch.randn(2, 3, 32, 32),))


# ---------------------------------------------------------------- what a spec cannot say
def load(name):
    sys.path.insert(0, str(MODELS.parent))
    import fromtorch_models

    return getattr(fromtorch_models, name)()


def test_control_flow_on_values_is_an_error_at_its_line():
    with pytest.raises(FromTorchError) as err:
        from_torch(load("Branchy"), "x: [B, 4]")
    problem = err.value.problems[0]
    line = next(i for i, t in enumerate(MODELS.read_text().splitlines(), 1) if "if x.sum() > 0:" in t)
    assert problem.where.endswith(f"fromtorch_models.py:{line}")
    assert "`if x.sum() > 0:`" in problem.message and "tensor's values" in problem.message
    assert "torch.where" in problem.hint


def test_an_op_without_a_spec_form_is_a_placeholder_that_check_refuses():
    problems = []
    text = from_torch(load("Fourier"), "x: [B, 4]", problems=problems)
    line = next(i for i, t in enumerate(MODELS.read_text().splitlines(), 1) if "torch.fft.fft(x)" in t)
    assert len(problems) == 1 and problems[0].where.endswith(f"fromtorch_models.py:{line}")
    assert "torch.fft.fft" in problems[0].message
    assert f'TODO("{problems[0].where}: calls torch.fft.fft' in text
    from modelspec import SpecError

    with pytest.raises(SpecError):
        compile_spec(text)
    with pytest.raises(FromTorchError, match="torch.fft.fft"):
        from_torch(load("Fourier"), "x: [B, 4]", strict=True)


def test_a_module_outside_the_catalog_is_a_placeholder():
    with pytest.warns(Warning, match="nn.ParameterList, which is not in the layer catalog"):
        text = from_torch(load("Params"), "x: [B, 4]")
    assert "extra = TODO(" in text and "fc = Linear(_, 4)" in text


def test_a_spec_that_would_compute_something_else_is_refused(monkeypatch):
    """from_torch runs the spec it wrote against the module before it returns it: a mistranslation (here, + written
    as -) is an error, never a spec."""
    import operator

    from modelspec import fromtorch

    monkeypatch.setitem(fromtorch.BINARY, operator.add, "-")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) + x

    with pytest.raises(FromTorchError, match="computes another output than the module"):
        from_torch(Net(), "x: [B, 4]")


def line_of(text: str) -> str:
    """``fromtorch_models.py:N``, the line of that file that holds ``text``."""
    n = next(i for i, t in enumerate(MODELS.read_text().splitlines(), 1) if text in t)
    return f"fromtorch_models.py:{n}"


def test_a_call_kept_for_its_effect_and_block_arguments_in_their_order():
    text = written(load("Stats"), "x: [B, 4]")
    assert "= bn(y)" in text  # BatchNorm's running statistics: the call stays, though nothing reads it
    same_module(load("Stats"), text, (torch.randn(3, 4),))
    text = written(load("Order"), "x: [B, 4]")  # pair(y=d1(x), x=d2(x)): d1 draws its random numbers first
    assert text.index("d1(x)") < text.index("d2(x)")
    same_module(load("Order"), text, (torch.randn(3, 4),))


def test_numbers_and_flags_chosen_by_training():
    text = written(load("Two"), "x: [B, 4]")
    assert "return fc(x) * (s if training else 1.0)" in text and "a = Modes(2.0)" in text
    assert "F.dropout(a(x) + b(x), p=0.3)" in text  # training=self.training is the spec's own
    same_module(load("Two"), text, (torch.randn(3, 4),))


@pytest.mark.parametrize("name, where, says", [
    ("TiedList", None, "a spec ties only parameters it names by children and ModuleDict keys"),
    ("Aux", "class Aux", "forward returns 2 values in training and 1 in eval"),
    ("Builtin", "self.filter = ", "the child 'filter' has no spec form: 'filter' cannot name a child"),
])
def test_what_a_spec_cannot_say_is_an_error(name, where, says):
    with pytest.raises(FromTorchError) as err:
        from_torch(load(name), "x: [B, 4]")
    problem = err.value.problems[0]
    assert says in problem.message
    if where is not None:
        assert problem.where.endswith(line_of(where))


def test_a_child_named_with_a_word_of_the_spec():
    text = written(load("Keyworded"), "x: [B, 4]")
    assert '"block" = Sequential(Linear(_, 4), ReLU())' in text
    same_module(load("Keyworded"), text, (torch.randn(3, 4),))
    problems = []
    text = from_torch(load("KeywordCalled"), "x: [B, 4]", problems=problems)
    assert '"block" = Linear(_, 4)' in text and "TODO(" in text
    assert "calls the child 'block', whose name forward cannot write" in problems[0].message


def test_a_plain_tensor_with_values_is_said_to_lose_them():
    problems = []
    text = from_torch(load("Plain"), "x: [B, 4]", problems=problems)
    assert "scale = torch.randn(4)" in text and "TODO" not in text
    assert len(problems) == 1 and not problems[0].placeholder
    assert problems[0].where.endswith(line_of("self.scale = "))
    assert "its values are in no state_dict" in problems[0].message and "register_buffer" in problems[0].hint


def test_a_size_given_to_a_block_is_refused_where_it_is_passed():
    with pytest.raises(FromTorchError) as err:
        from_torch(load("PassBatch"), "x: [B, 16]")
    assert err.value.problems[0].where.endswith(line_of("self.r(x, x.size(0))"))
    assert "its argument b, computed while it runs and not a tensor" in err.value.problems[0].message


def test_underscore_only_where_it_infers_the_modules_value_and_the_module_is_left_as_it_was():
    module = load("Normed")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    text = written(module, "x: [B, 2, 4, 4]")
    assert "norm = LayerNorm((2, 4, 4), elementwise_affine=False)" in text and "bn = BatchNorm2d(_)" in text
    # from_torch ran the module (in eval and training): its buffers are as they were
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert module.training


def test_a_mask_made_from_a_size_in_forward():
    text = written(load("Causal"), "x: [B, T=6, 8]")
    assert "mask = torch.tril(torch.ones(T, T))" in text
    same_module(load("Causal"), text, (torch.randn(2, 6, 8),))


def test_instances_that_differ_in_a_flag_are_one_block():
    text = written(load("Flags"), "x: [B, 4]")
    assert "block Proj(bias) {" in text and "fc = Linear(_, 4, bias=bias)" in text
    assert "a = Proj(True)" in text and "b = Proj(False)" in text
    same_module(load("Flags"), text, (torch.randn(2, 4),))


def test_a_param_named_with_a_word_of_the_spec_is_an_error_at_its_line():
    with pytest.raises(FromTorchError, match="the parameter 'buffer' has no spec form") as err:
        from_torch(load("KeywordParam"), "x: [B, 4]")
    assert err.value.problems[0].where.endswith(line_of("self.buffer = nn.Parameter"))


def test_an_empty_sequential_where_others_have_a_shortcut_is_a_conditional_child():
    text = written(load("Cifar"), "x: [B, 3, 8, 8]")
    assert text.count("block ") == 1 and ") if stride != 1\n" in text
    assert "layers = Sequential(CifarBlock(3), CifarBlock(8, stride=2), CifarBlock(8))" in text
    same_module(load("Cifar"), text, (torch.randn(2, 3, 8, 8),))


def test_the_python_api_checks_its_module_and_guesses_inputs():
    with pytest.raises(TypeError, match="not a class: make the module first"):
        from_torch(torch.nn.Linear)
    text = from_torch(tiny_resnet())  # x: [B, 3, 224, 224], from the first Conv2d
    assert "model TinyResNet(x: [B, 3, 224, 224])" in text
    import modelspec

    assert modelspec.FromTorchError is FromTorchError


def test_a_dict_returned_and_a_buffer_changed_are_errors():
    with pytest.raises(FromTorchError, match="returns a dict, and a spec's forward returns tensors"):
        from_torch(load("Named"), "x: [B, 4]")
    module = load("Counting")
    with pytest.raises(FromTorchError, match="forward assigns self.calls of Counting") as err:
        from_torch(module, "x: [B, 4]")
    assert err.value.problems[0].where.endswith(line_of("self.calls += 1"))
    assert isinstance(module.calls, torch.Tensor) and module.calls.item() == 0  # as it was


def test_bad_inputs_are_said_as_such():
    with pytest.raises(FromTorchError, match="does not run on the inputs"):
        from_torch(resnet18(), "x: [B, 5, 32, 32]")
    with pytest.raises(FromTorchError, match="no model's declarations"):
        from_torch(resnet18(), "x: [B, 3, 32")
    with pytest.raises(FromTorchError, match="needs the shapes of forward's inputs"):
        from_torch(resnet18(), "")


# ---------------------------------------------------------------- the command
def test_cli_writes_the_spec_of_a_file_target(tmp_path, capsys):
    out = tmp_path / "tiny.nnspec"
    rc = main(["from-torch", f"{MODELS}:tiny_resnet", "--args", "num_classes=7", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "no --input given; taking x: [B, 3, 224, 224]" in err  # from the first layer, a Conv2d(3, ...)
    assert 'heads = ModuleDict({"fc": Linear(_, 7)})' in out.read_text()
    assert main(["fmt", "--check", str(out)]) == 0
    assert main(["check", str(out)]) == 0


def test_cli_placeholders_and_strict(tmp_path, capsys):
    out = tmp_path / "f.nnspec"
    assert main(["from-torch", f"{MODELS}:Fourier", "--input", "x: [B, 4]", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "warning: calls torch.fft.fft, which has no spec form" in err and "1 TODO placeholder" in err
    assert "TODO(" in out.read_text()
    strict = tmp_path / "s.nnspec"
    assert main(["from-torch", f"{MODELS}:Fourier", "--input", "x: [B, 4]", "--strict", "-o", str(strict)]) == 1
    assert "error: calls torch.fft.fft" in capsys.readouterr().err and not strict.exists()


@pytest.mark.parametrize("argv, says", [
    (["nothing"], "names no module and callable"),
    (["no/such/file.py:Net"], "there is no file no/such/file.py"),
    (["modelspec_no_such_package:Net"], "cannot import modelspec_no_such_package"),
    ([f"{MODELS}:NoSuch"], "has no 'NoSuch'"),
    ([f"{MODELS}:tiny_resnet", "--args", "num_classes"], "each argument needs its name"),
    ([f"{MODELS}:tiny_resnet", "--args", "num_classes=len('x')"], "a value is a literal"),
    ([f"{MODELS}:torch", "--input", "x: [B, 4]"], "not a class or a function"),
    ([f"{MODELS}:broken"], f"fromtorch_models.py:{BROKEN}: error: broken() raised ValueError: invalid literal"),
    ([f"{MODELS}:tiny_resnet", "--args", "depth=3"], "tiny_resnet(depth=3) raised TypeError"),
])
def test_cli_refuses_a_bad_target_in_one_line(argv, says, capsys):
    assert main(["from-torch", *argv]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_problem_reads_as_a_compiler_message():
    p = Problem("model.py:3", "calls x", "do y")
    assert str(p) == "model.py:3: calls x\nhint: do y"


# ---------------------------------------------------------------- torchvision, where installed
TORCHVISION = [("resnet50", 224), ("mobilenet_v2", 224), ("vit_b_16", 224)]


@pytest.mark.parametrize("name, size", TORCHVISION)
def test_torchvision_models_come_back(name, size):
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    original = getattr(models, name)()
    text = written(original, f"x: [B, 3, {size}, {size}]")
    same_module(original, text, (torch.randn(1, 3, size, size),))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = sum(line.startswith("block ") for line in text.splitlines())
    assert f"| `torchvision.models:{name}` | {len(text.splitlines())} | {blocks} |" in readme, \
        "the README's line and block counts"
    if name == "resnet50":
        assert f"```nnspec\n{text}```" in readme, "the README shows ResNet-50's spec as from-torch writes it"


def test_the_command_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["from-torch", "--help"])
    out = capsys.readouterr().out
    assert "package.module:callable" in out and "--strict" in out and "runs its Python code" in out


# ---------------------------------------------------------------- what from-torch found the language lacked
def test_a_zero_dim_param_builds():
    net = compile_spec("model P(x: [B, 4]) {\n    param a: [] = randn\n    param b: [] = constant(0.5)\n"
                       "    forward(x) {\n        return x * a * b\n    }\n}\n")
    assert net.a.shape == () and net.b.item() == 0.5


def test_a_tuple_inside_a_tuple_is_indexed_in_the_printed_code():
    spec = ("model L(x: [B, T=5, 4]) {\n    lstm = LSTM(_, 6, batch_first=True)\n"
            "    forward(x) {\n        r = lstm(x)\n        return r[1][0]\n    }\n}\n")
    assert "return r[1][0]" in generate_code(spec)
    assert compile_spec(spec)(torch.randn(2, 5, 4)).shape == (1, 2, 6)
