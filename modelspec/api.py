"""The Python API, modelspec's public face: compile a spec, print its code, make example inputs.

    >>> from modelspec import compile_spec
    >>> model = compile_spec("specs/mnist_mlp.nnspec", seed=0)      # doctest: +SKIP

Nothing inside the package imports this module; the stages it calls are in
`modelspec.pipeline`.

`compile_spec`, `generate_code` and `example_inputs` keep what the front end
made of a spec (its code and model graph) in `code_cache`, in this process
only, so that compiling the same spec again costs a read, a hash and the
construction of the module. `elaborate_spec` hands its graph to the caller
and always elaborates afresh.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict

from . import ir, pipeline
from .codegen import generate_code as _generate
from .elaborate import Limits
from .errors import SpecError, issue
from .model import ModelGraph
from .build import make_inputs
from .pipeline import (Elaborated, check_batch_memory, elaborate_source, load_graph, parse_source, pausing_gc,
                       read_spec, text_digest)
from .version import __version__


@dataclasses.dataclass(frozen=True)
class CachedCode:
    """What the front end made of one spec: the code it prints and the graph behind it.

    The graph is shared by every compile of the spec, so it must not change:
    codegen and build only read a graph, and none of the functions that use
    the cache hands it to the caller (`elaborate_spec` makes a new one).
    """

    code: str
    elaborated: Elaborated
    chars: int  # the spec's text and its imports', what the entry counts for against the cache's bound

    @property
    def graph(self) -> ModelGraph:
        return self.elaborated.graph


class CodeCache:
    """A least-recently-used table of `CachedCode`, keyed by a spec's text and everything else it depends on.

    In memory only: an on-disk cache of code would let whoever can write to it
    put code into another user's process. Bounded by entries and by the
    characters of spec text behind them (a graph holds ~140–490 bytes per
    character of its spec: a 10,000-layer spec's ~30–120 MB), and safe to
    share between threads. An entry whose imported files no longer read as
    they did is compiled again.

    >>> cache = CodeCache(max_entries=2)
    >>> code, graph = cache.compile("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> cache.compile("model M(x: [B, 4]) { fc = Linear(_, 2) }")[0] is code, cache.hits, cache.misses
    (True, 1, 1)
    """

    def __init__(self, max_entries: int = 64, max_chars: int = 256 * 1024):
        self.max_entries = max_entries
        self.max_chars = max_chars  # a spec bigger than this is compiled every time, not kept
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, CachedCode] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def compile(self, source_or_path, *, model: str | None = None,
                limits: Limits | None = None) -> tuple[str, ModelGraph]:
        """(code, graph) of a spec (text or path), from the cache when its text and imports are unchanged."""
        text, path = read_spec(source_or_path)
        key = self.key(text, path, model, limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        fresh = entry is not None and entry.elaborated.imports_unchanged()  # files read outside the lock
        with self._lock:
            if fresh:
                self.hits += 1
            else:
                self.misses += 1
        if fresh:
            return entry.code, entry.graph
        elaborated = elaborate_source(text, path, model=model, limits=limits)
        entry = CachedCode(_generate(elaborated.graph), elaborated, len(text) + elaborated.imported_chars)
        self._put(key, entry)
        return entry.code, entry.graph

    @staticmethod
    def key(text: str, path: str | None, model: str | None, limits: Limits | None) -> tuple:
        """Everything the code and graph of a spec depend on but its imported files' contents."""
        # imports resolve relative to the spec's directory (the working directory for spec text), and the
        # printed code names the file
        where = os.path.dirname(os.path.abspath(path)) if path is not None else os.getcwd()
        return (text_digest(text), path, where, model, dataclasses.astuple(limits or Limits()), __version__,
                pipeline.MAX_FILE_BYTES)

    def _put(self, key: tuple, entry: CachedCode):
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._chars -= old.chars
            if entry.chars > self.max_chars:
                return
            self._entries[key] = entry
            self._chars += entry.chars
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, dropped = self._entries.popitem(last=False)
                self._chars -= dropped.chars

    def clear(self):
        """Forget every entry (and the hit and miss counts)."""
        with self._lock:
            self._entries.clear()
            self._chars = self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


code_cache = CodeCache()


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
    code, graph = code_cache.compile(source_or_path, model=model, limits=limits)
    issue(graph.warnings)
    return _generate(graph, explain=True) if explain else code


@pausing_gc
def generate_training_script(source_or_path, *, model: str | None = None, distributed: bool = False,
                             limits: Limits | None = None) -> str:
    """The standalone training script of a spec's train section (what ``codegen --train`` prints): the model,
    its data, loss, optimizer and loop, needing torch alone. ``distributed=True``: one that also trains under
    torchrun with DistributedDataParallel.

    >>> print(generate_training_script("specs/linear_regression.nnspec").splitlines()[-1])  # doctest: +SKIP
        main()
    """
    from .trainscript import training_script

    graph = load_graph(source_or_path, model=model, limits=limits)
    if graph.train is None:
        raise SpecError(f"{graph.name} has no train section", path=graph.path,
                        hint=f"add `train {graph.name} {{ loss = ...; optimizer = ...; data = ... }}`")
    issue(graph.warnings)
    return training_script(graph, distributed=distributed)


def compile_spec(source_or_path, *, model: str | None = None, device=None, dtype=None, seed: int | None = None,
                 limits: Limits | None = None):
    """Compile a spec into a ready ``torch.nn.Module``.

    The module is an instance of the very class `generate_code` prints. A
    spec compiled before in this process (same text, path, model, limits,
    unchanged imports) skips the front end: its code comes from `code_cache`.

    >>> net = compile_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }", seed=0)
    >>> net
    M(
      (fc): Linear(in_features=4, out_features=2, bias=True)
    )
    """
    from .build import build_module

    if isinstance(source_or_path, ModelGraph):
        code, graph = _generate(source_or_path), source_or_path
    else:
        code, graph = code_cache.compile(source_or_path, model=model, limits=limits)
        issue(graph.warnings)
    return build_module(code, graph, device=device, dtype=dtype, seed=seed)


def example_inputs(source_or_path, *, batch: int = 2, model: str | None = None, device=None, dtype=None,
                   limits: Limits | None = None):
    """Random tensors of the declared input shapes (a tuple, one per input).

    The first input's leading symbolic dim is ``batch``; other symbols take
    their declared example size (``T=128``) or 8. Inputs and forward
    activations larger than ``limits.max_activation_bytes`` at ``batch`` are
    refused (`SpecLimitError`) before any tensor is made.

    >>> [tuple(t.shape) for t in example_inputs("model M(x: [B, 4]) { fc = Linear(_, 2) }", batch=3)]
    [(3, 4)]
    """
    if isinstance(source_or_path, ModelGraph):
        graph = source_or_path
    else:
        _, graph = code_cache.compile(source_or_path, model=model, limits=limits)
    spec_text = source_or_path if isinstance(source_or_path, str) and graph.path is None else None
    check_batch_memory(graph, batch, limits, spec_text)  # refused before any tensor is made
    return make_inputs(graph, batch=batch, device=device, dtype=dtype)


def from_torch(module, inputs: str | None = None, *, strict: bool = False, name: str | None = None,
               problems: list | None = None) -> str:
    """The spec of an ``nn.Module``, as ``modelspec from-torch`` writes it: one block per class, the module's
    names (so its state_dict loads into the spec's model), ``_`` for sizes that follow from the input.
    ``inputs`` declares forward's inputs as a model does (None: from the first layer that fixes the input's
    size, as the command does).

    What a spec cannot say is a ``TODO(...)`` placeholder naming the Python line (a warning, or added to
    ``problems``); with ``strict``, a `modelspec.fromtorch.FromTorchError`.

    >>> import torch.nn as nn
    >>> print(from_torch(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), "x: [B, 4]", name="Net"), end="")
    model Net(x: [B, 4]) {
        "0" = Linear(_, 8)
        "1" = ReLU()
    }
    """
    from .fromtorch import from_torch as convert

    return convert(module, inputs, strict=strict, name=name, problems=problems)
