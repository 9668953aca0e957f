"""The pipeline every face shares: read a source, parse it, elaborate it into the model graph.

The API, the command line and the views all come through here, and imported
files are read with the same `read_spec`, so a spec is read, bounded and
located the same way wherever it enters. `load_graph(source) -> ModelGraph`
is the whole front end: read, parse, resolve imports (modelspec/imports.py),
elaborate. `elaborate_source(text, path)` is the same after the read, and
also says which files the imports read (for the API's code cache to tell a
stale entry). Every stage it calls is below it; none calls back up.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from . import ir
from .elaborate import Limits, elaborate
from .errors import SpecError, SpecImportError, SpecLimitError
from .imports import resolve_imports
from .model import ModelGraph
from .parse import decode_source, parse
from .shapes import Sym, evaluate

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
                                          "modelspec.pipeline.MAX_FILE_BYTES")
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise SpecImportError("no such file", path=path, hint="check the path and its spelling") from None
        except IsADirectoryError:
            raise SpecImportError("this is a directory, not a spec file", path=path,
                                  hint='name a .nnspec file') from None
        except OSError as exc:
            raise SpecImportError(f"cannot read the file: {exc.strerror}", path=path,
                                  hint="check the file's permissions") from None
        return decode_source(data, path), path
    if not isinstance(source_or_path, str):
        raise TypeError(f"expected spec text or a path, got {type(source_or_path).__name__}")
    if len(source_or_path.encode()) > MAX_FILE_BYTES:
        raise SpecLimitError(f"the spec is over the limit of {MAX_FILE_BYTES:,} bytes",
                             hint="split it into files that import one another, or raise "
                                  "modelspec.pipeline.MAX_FILE_BYTES")
    return source_or_path, None


@pausing_gc
def parse_source(source_or_path) -> ir.SpecFile:
    """Parse a spec (text or path) into the validated surface IR.

    >>> parse_source("model M(x: [B, 3]) { fc = Linear(_, 2) }").models()[0].name
    'M'
    """
    text, path = read_spec(source_or_path)
    return parse(text, path)


@pausing_gc
def load_graph(source_or_path, *, model: str | None = None, limits: Limits | None = None) -> ModelGraph:
    """Parse and elaborate: the model graph with every shape inferred (a `ModelGraph` passes through).

    >>> load_graph("model M(x: [B, 784]) { fc = Linear(_, 10) }").root.children[0].args["in_features"]
    784
    """
    if isinstance(source_or_path, ModelGraph):
        return source_or_path
    text, path = read_spec(source_or_path)
    return elaborate_source(text, path, model=model, limits=limits).graph


@dataclass(frozen=True)
class Elaborated:
    """A model graph and the files its spec's imports read, each with a digest of its text."""

    graph: ModelGraph
    imports: tuple[tuple[str, str], ...] = ()  # (absolute path, text_digest of what was read), transitively
    imported_chars: int = 0  # the length of those texts, all together

    def imports_unchanged(self) -> bool:
        """Whether every imported file still reads as it did (a file gone or unreadable has changed)."""
        for path, digest in self.imports:
            try:
                text, _ = read_spec(Path(path))
            except (SpecError, OSError):
                return False
            if text_digest(text) != digest:
                return False
        return True


def text_digest(text: str) -> str:
    """sha256 of a spec's text, as UTF-8 (a lone surrogate in text handed in as a str passes through)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@pausing_gc
def elaborate_source(text: str, path: str | None, *, model: str | None = None,
                     limits: Limits | None = None) -> Elaborated:
    """`load_graph` after the read: parse ``text`` (read from ``path``), resolve its imports, elaborate.

    >>> got = elaborate_source("model M(x: [B, 784]) { fc = Linear(_, 10) }", None)
    >>> got.graph.name, got.imports
    ('M', ())
    """
    spec = parse(text, path)
    read: dict[str, str] = {}  # absolute path -> its text, every file resolve_imports reads

    def read_recorded(source) -> tuple[str, str | None]:
        got = read_spec(source)
        read[os.path.abspath(os.fspath(source))] = got[0]
        return got

    try:
        imported = (resolve_imports(spec, text, read_recorded) if any(isinstance(i, ir.Import) for i in spec.items)
                    else None)
        graph = elaborate(spec, model, limits=limits, text=text, imported=imported)
    except SpecError as exc:
        raise exc.locate(path, text) from None
    return Elaborated(graph, tuple((p, text_digest(t)) for p, t in read.items()), sum(len(t) for t in read.values()))


DEFAULT_SYMBOL_SIZE = 8


def symbol_sizes(graph: ModelGraph, batch: int) -> dict[str, int]:
    """The size of every symbolic dim: the first input's leading symbol is the batch; a symbol declared
    with an example (``T=128``) takes it wherever it stands; any other symbol is 8.

    >>> symbol_sizes(load_graph("model M(x: [B, T=64, 4], y: [T, 4]) { forward(x, y) { return x + y } }"), 2)
    {'B': 2, 'T': 64}
    """
    batch_symbols = set()
    if graph.inputs:
        first = graph.inputs[0][1].shape
        if first and isinstance(first[0].value, Sym):
            batch_symbols = {s for s in first[0].value.symbols if graph.symbols.get(s) is None}
    sizes = {}
    for name, example in graph.symbols.items():  # in the order the spec declares them
        sizes[name] = batch if name in batch_symbols else example if example is not None else DEFAULT_SYMBOL_SIZE
    return sizes


def input_shapes(graph: ModelGraph, batch: int) -> list[tuple[int, ...]]:
    """The concrete shape of each declared input at ``batch``."""
    sizes = symbol_sizes(graph, batch)
    return [tuple(evaluate(d.value, sizes) for d in info.shape) for _, info in graph.inputs]
