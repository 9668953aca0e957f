"""The Python API, modelspec's public face: compile a spec, print its code, make example inputs.

    >>> from modelspec import compile_spec
    >>> model = compile_spec("specs/mnist_mlp.nnspec", seed=0)      # doctest: +SKIP

Nothing inside the package imports this module; the stages it calls are in
`modelspec.pipeline`.
"""

from __future__ import annotations

from . import ir
from .codegen import generate_code as _generate
from .elaborate import Limits
from .model import ModelGraph
from .build import make_inputs
from .pipeline import load_graph, parse_source, pausing_gc


def parse_spec(source_or_path) -> ir.SpecFile:
    """Parse a spec (text or path) into the validated surface IR.

    >>> parse_spec("model M(x: [B, 3]) { fc = Linear(_, 2) }").models()[0].name
    'M'
    """
    return parse_source(source_or_path)


def elaborate_spec(source_or_path, *, model: str | None = None, limits: Limits | None = None) -> ModelGraph:
    """The model graph of a spec: every module, argument and shape, before any code or tensor exists.

    >>> elaborate_spec("model M(x: [B, 784]) { fc = Linear(_, 10) }").root.children[0].args["in_features"]
    784
    """
    return load_graph(source_or_path, model=model, limits=limits)


def generate_code(source_or_path, *, model: str | None = None, explain: bool = False,
                  limits: Limits | None = None) -> str:
    """The PyTorch source a spec stands for.

    >>> code = generate_code("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> print(next(line for line in code.splitlines() if "nn.Linear" in line))
            self.fc = nn.Linear(4, 2)  # [B, 2]
    """
    if isinstance(source_or_path, ModelGraph):
        return _generate(source_or_path, explain=explain)
    return _generate(load_graph(source_or_path, model=model, limits=limits), explain=explain)


@pausing_gc
def compile_spec(source_or_path, *, model: str | None = None, device=None, dtype=None, seed: int | None = None,
                 limits: Limits | None = None):
    """Compile a spec into a ready ``torch.nn.Module``.

    The module is an instance of the very class `generate_code` prints.

    >>> net = compile_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }", seed=0)
    >>> net
    M(
      (fc): Linear(in_features=4, out_features=2, bias=True)
    )
    """
    from .build import build_module

    graph = load_graph(source_or_path, model=model, limits=limits)
    return build_module(_generate(graph), graph, device=device, dtype=dtype, seed=seed)


def example_inputs(source_or_path, *, batch: int = 2, model: str | None = None, device=None, dtype=None):
    """Random tensors of the declared input shapes (a tuple, one per input).

    The first input's leading symbolic dim is ``batch``; other symbols take
    their declared example size (``T=128``) or 8.

    >>> [tuple(t.shape) for t in example_inputs("model M(x: [B, 4]) { fc = Linear(_, 2) }", batch=3)]
    [(3, 4)]
    """
    graph = load_graph(source_or_path, model=model)
    return make_inputs(graph, batch=batch, device=device, dtype=dtype)
