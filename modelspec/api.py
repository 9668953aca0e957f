"""The Python API: compile a spec, print its code, make example inputs.

    >>> from modelspec import compile_spec
    >>> model = compile_spec("specs/mnist_mlp.nnspec", seed=0)      # doctest: +SKIP
"""

from __future__ import annotations

import functools
import gc
import os

from . import ir
from .codegen import generate_code as _generate
from .elaborate import Limits, elaborate
from .errors import SpecError, SpecImportError, SpecLimitError
from .model import ModelGraph
from .parse import decode_source, parse

MAX_FILE_BYTES = 5_000_000


def pausing_gc(fn):
    """Run ``fn`` with Python's cyclic garbage collector paused.

    The front end makes many small objects that all live until it returns (the
    syntax tree, the IR, the graph); each full collection would walk all of
    them, and torch's, again: on a 10,000-layer spec that made compile time
    grow faster than the layer count and doubled it (benchmarks/RESULTS.md).
    Once ``fn`` has returned, and its garbage is unreachable, one collection of
    the youngest generation (where everything made meanwhile still is) frees
    the cycles in it, as the collector would have done at its next turn.
    """

    @functools.wraps(fn)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()
            if gc.get_count()[0] > gc.get_threshold()[0]:
                gc.collect(0)

    return paused


def read_spec(source_or_path) -> tuple[str, str | None]:
    """(text, path) for a path or for spec text itself.

    A `Path`, or a string without braces or newlines, is a file name.
    """
    if isinstance(source_or_path, os.PathLike) or (
        isinstance(source_or_path, str) and "{" not in source_or_path and "\n" not in source_or_path
    ):
        path = os.fspath(source_or_path)
        try:
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                raise SpecLimitError(f"the file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}", path=path,
                                     hint="split it into files that import one another, or raise "
                                          "modelspec.api.MAX_FILE_BYTES")
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise SpecImportError("no such file", path=path, hint="check the path and its spelling") from None
        except IsADirectoryError:
            raise SpecImportError("this is a directory, not a spec file", path=path) from None
        except OSError as exc:
            raise SpecImportError(f"cannot read the file: {exc.strerror}", path=path) from None
        return decode_source(data, path), path
    if not isinstance(source_or_path, str):
        raise TypeError(f"expected spec text or a path, got {type(source_or_path).__name__}")
    if len(source_or_path.encode()) > MAX_FILE_BYTES:
        raise SpecLimitError(f"the spec is over the limit of {MAX_FILE_BYTES:,} bytes",
                             hint="split it into files that import one another, or raise modelspec.api.MAX_FILE_BYTES")
    return source_or_path, None


@pausing_gc
def parse_spec(source_or_path) -> ir.SpecFile:
    """Parse a spec (text or path) into the validated surface IR.

    >>> parse_spec("model M(x: [B, 3]) { fc = Linear(_, 2) }").models()[0].name
    'M'
    """
    text, path = read_spec(source_or_path)
    return parse(text, path)


@pausing_gc
def elaborate_spec(source_or_path, *, model: str | None = None, limits: Limits | None = None) -> ModelGraph:
    """Parse and elaborate: the model graph with every shape inferred."""
    text, path = read_spec(source_or_path)
    spec = parse(text, path)
    try:
        return elaborate(spec, model, limits=limits, text=text)
    except SpecError as exc:
        raise exc.locate(path, text) from None


def generate_code(source_or_path, *, model: str | None = None, explain: bool = False,
                  limits: Limits | None = None) -> str:
    """The PyTorch source a spec stands for.

    >>> print(generate_code("model M(x: [B, 4]) { fc = Linear(_, 2) }").splitlines()[7])
            self.fc = nn.Linear(4, 2)
    """
    if isinstance(source_or_path, ModelGraph):
        return _generate(source_or_path, explain=explain)
    return _generate(elaborate_spec(source_or_path, model=model, limits=limits), explain=explain)


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

    graph = elaborate_spec(source_or_path, model=model, limits=limits)
    return build_module(_generate(graph), graph, device=device, dtype=dtype, seed=seed)


DEFAULT_SYMBOL_SIZE = 8


def example_inputs(source_or_path, *, batch: int = 2, model: str | None = None, device=None, dtype=None):
    """Random tensors of the declared input shapes (a tuple, one per input).

    The first dim of each input, when symbolic, is ``batch``; other symbols
    take their declared example size (``T=128``) or 8.

    >>> [tuple(t.shape) for t in example_inputs("model M(x: [B, 4]) { fc = Linear(_, 2) }", batch=3)]
    [(3, 4)]
    """
    graph = source_or_path if isinstance(source_or_path, ModelGraph) else elaborate_spec(source_or_path, model=model)
    return make_inputs(graph, batch=batch, device=device, dtype=dtype)


def make_inputs(graph: ModelGraph, *, batch: int = 2, device=None, dtype=None, generator=None):
    import torch

    sizes = symbol_sizes(graph, batch)
    out = []
    for name, info in graph.inputs:
        shape = [d.value.substitute(sizes) if hasattr(d.value, "substitute") else d.value for d in info.shape]
        shape = [_eval_dim(d.value, sizes) for d in info.shape]
        if info.dtype == "long":
            high = graph.index_bounds.get(name, 2)
            out.append(torch.randint(0, high, shape, device=device, generator=generator))
        elif info.dtype == "bool":
            out.append(torch.rand(shape, device=device, generator=generator) > 0.5)
        else:
            out.append(torch.randn(shape, device=device, dtype=dtype, generator=generator))
    return tuple(out)


def symbol_sizes(graph: ModelGraph, batch: int) -> dict[str, int]:
    from .shapes import Sym

    sizes = {}
    for _, info in graph.inputs:
        if info.shape and isinstance(info.shape[0].value, Sym):
            for s in info.shape[0].value.symbols:
                sizes[s] = batch
    for name, example in graph.symbols.items():
        sizes.setdefault(name, example if example is not None else DEFAULT_SYMBOL_SIZE)
    return sizes


def _eval_dim(v, sizes: dict[str, int]) -> int:

    if isinstance(v, int):
        return v
    total = 0
    for mono, coef in v.terms.items():
        term = coef
        for atom in mono:
            term *= sizes[atom] if isinstance(atom, str) else _eval_dim(atom.num, sizes) // atom.den
        total += term
    return total
