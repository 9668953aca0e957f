"""Every bundled spec compiles, runs, and round-trips through its printed code.

Golden files: ``tests/golden/<spec>.py`` holds the code each spec prints (``tests/golden/tutorials/<spec>.py``
for ``specs/tutorials/<spec>.nnspec``).
After an intended change, re-bless them with ``MODELSPEC_BLESS=1 pytest
tests/test_specs.py`` and review the diff.
"""

import subprocess
import sys

import pytest

from conftest import BLESS, ROOT, SPECS, spec_ids, spec_name
from modelspec import compile_spec, elaborate_spec, example_inputs, generate_code
from modelspec.pipeline import symbol_sizes
from modelspec.shapes import evaluate as _eval_dim

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_generated_code_matches_golden(spec):
    code = generate_code(spec)
    golden = GOLDEN / f"{spec_name(spec)}.py"
    if BLESS:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(code)
    assert golden.exists(), f"no golden file for {spec.name}; run with MODELSPEC_BLESS=1"
    assert code == golden.read_text()


def test_every_spec_has_a_golden_file():
    stale = {p.relative_to(GOLDEN).with_suffix("").as_posix() for p in GOLDEN.rglob("*.py")} - set(spec_ids(SPECS))
    assert not stale, f"golden files without a spec: {sorted(stale)}"


def exec_printed(code: str, name: str):
    """Load the printed code the way a user would paste it: a plain exec."""
    namespace: dict = {}
    exec(compile(code, f"<printed {name}>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_compiled_module_equals_printed_code(spec, torch):
    graph = elaborate_spec(spec)
    compiled = compile_spec(spec, seed=0).eval()
    printed_cls = exec_printed(generate_code(spec), graph.name)
    torch.manual_seed(123)  # different weights: the state_dict must bring them over
    printed = printed_cls().eval()
    assert list(printed.state_dict()) == list(compiled.state_dict())
    printed.load_state_dict(compiled.state_dict(), strict=True)
    for name, _ in getattr(graph, "unregistered", ()):  # plain tensors (`W = torch.FloatTensor(3, 2)`): no state
        setattr(printed, name, getattr(compiled, name))
    inputs = example_inputs(spec, batch=3)
    with torch.no_grad():  # the same draws for a forward that samples (randn_like), as a seeded run gives
        a = (torch.manual_seed(7), compiled(*inputs))[1]
        b = (torch.manual_seed(7), printed(*inputs))[1]
    for x, y in zip(_flat(a), _flat(b)):
        assert _same(x, y, torch)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_forward_shapes_match_inference(spec, torch):
    graph = elaborate_spec(spec)
    model = compile_spec(spec, seed=0).eval()
    for batch in (1, 4):
        sizes = symbol_sizes(graph, batch)
        with torch.no_grad():
            out = list(_flat(model(*example_inputs(graph, batch=batch))))
        expected = [tuple(_eval_dim(d.value, sizes) for d in t.shape) for t in graph.outputs]
        assert [tuple(o.shape) for o in out] == expected


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_parameter_count_matches_torch(spec):
    graph = elaborate_spec(spec)
    model = compile_spec(spec)
    assert graph.total_params == sum(p.numel() for p in model.parameters())


def test_same_spec_prints_same_bytes_in_any_process():
    spec = ROOT / "specs" / "vgg_blocks.nnspec"
    prog = "import sys; from modelspec import generate_code; sys.stdout.write(generate_code(sys.argv[1]))"
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        res = subprocess.run([sys.executable, "-c", prog, str(spec)], capture_output=True, text=True, env=env,
                             cwd=ROOT, check=True)
        outs.add(res.stdout)
    assert len(outs) == 1
    assert outs.pop() == generate_code(spec)


def test_same_seed_gives_same_weights(torch):
    spec = ROOT / "specs" / "cnn.nnspec"
    a, b, c = compile_spec(spec, seed=7), compile_spec(spec, seed=7), compile_spec(spec, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_fashion_mnist_prints_like_the_tutorial():
    model = compile_spec(ROOT / "specs" / "mnist_mlp.nnspec")
    assert str(model) == (
        "NeuralNetwork(\n"
        "  (flatten): Flatten(start_dim=1, end_dim=-1)\n"
        "  (linear_relu_stack): Sequential(\n"
        "    (0): Linear(in_features=784, out_features=512, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=512, out_features=512, bias=True)\n"
        "    (3): ReLU()\n"
        "    (4): Linear(in_features=512, out_features=10, bias=True)\n"
        "  )\n"
        ")"
    )


def test_blocks_print_one_class_with_constructor_arguments():
    code = generate_code(ROOT / "specs" / "vgg_blocks.nnspec")
    assert code.count("class ConvBN(nn.Sequential):") == 1
    assert "def __init__(self, in_channels, out, k=3, stride=1):" in code
    assert "nn.Conv2d(in_channels, out, k, stride=stride, padding=k // 2, bias=False)" in code
    assert "nn.BatchNorm2d(out)" in code  # `_` after Conv2d(_, out, ...) is spelled `out`
    assert "self.stem = ConvBN(3, WIDTH, k=5)" in code


def test_symbolic_dims_stay_symbolic():
    graph = elaborate_spec(ROOT / "specs" / "seq_classifier.nnspec")
    features = graph.root.children[0]
    assert str(features.children[3].outputs[0]) == "[B, 32, T // 2]"
    assert str(graph.outputs[0]) == "[B, 5]"


def test_dtype_and_meta_device(torch):
    spec = ROOT / "specs" / "cnn.nnspec"
    model = compile_spec(spec, dtype=torch.float64)
    assert model.fc1.weight.dtype == torch.float64
    meta = compile_spec(spec, device="meta")
    assert meta.fc1.weight.is_meta


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_cuda(spec, torch):
    model = compile_spec(spec, device="cuda", seed=0).eval()
    inputs = example_inputs(spec, batch=2, device="cuda")
    with torch.no_grad():
        out = list(_flat(model(*inputs)))
    assert all(o.is_cuda for o in out)


def _same(x, y, torch) -> bool:
    """The same values bit for bit, nan where the other is nan (memory left uninitialised may hold nan)."""
    if torch.equal(x, y):
        return True
    if not x.is_floating_point() or not torch.equal(x.isnan(), y.isnan()):
        return False
    return torch.equal(x[~x.isnan()], y[~y.isnan()])


def _flat(x):
    if isinstance(x, (tuple, list)):
        for i in x:
            yield from _flat(i)
    else:
        yield x
