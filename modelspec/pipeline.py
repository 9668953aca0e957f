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
from .budget import check_memory
from .elaborate import Limits, elaborate
from .errors import SpecError, SpecImportError, SpecLimitError
from .imports import not_a_spec_file, resolve_imports, system_dir
from .model import ModelGraph
from .parse import decode_source, parse
from .shapes import Sym, evaluate

MAX_FILE_BYTES = 5_000_000
SIZE_HINT = "split it into files that import one another, or raise modelspec.pipeline.MAX_FILE_BYTES"
# never blocks on open (a FIFO swapped in after the check); no O_NOFOLLOW: a link to a spec is allowed
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


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


def read_spec(source_or_path, *, same_file: os.stat_result | None = None) -> tuple[str, str | None]:
    """(text, path) for a path or for spec text itself.

    A `Path`, or a string without braces or newlines, is a file name. The file
    must be a regular file: a directory, device, FIFO or socket is refused
    before it is opened (/dev/zero never ends, a FIFO blocks its reader), and
    so is anything under /proc, /sys or /dev after symlinks (a /proc file
    passes for a regular one of size 0). Its name need not end in ``.nnspec``:
    a file named here was chosen by whoever runs modelspec; imports, which a
    spec's author chooses, are held to that and more (modelspec/imports.py).
    At most MAX_FILE_BYTES + 1 bytes are read, whatever size the file reports.

    ``same_file``, an `os.stat_result`, is the file the caller checked: the
    one opened must be it (not a link swapped in since), or it is refused.
    """
    if isinstance(source_or_path, os.PathLike) or (
        isinstance(source_or_path, str) and "{" not in source_or_path and "\n" not in source_or_path
    ):
        path = os.fspath(source_or_path)
        return decode_source(_read_file(path, same_file), path), path
    if not isinstance(source_or_path, str):
        raise TypeError(f"expected spec text or a path, got {type(source_or_path).__name__}")
    if len(source_or_path.encode()) > MAX_FILE_BYTES:
        raise SpecLimitError(f"the spec is over the limit of {MAX_FILE_BYTES:,} bytes", hint=SIZE_HINT)
    return source_or_path, None


def _read_file(path: str, same_file: os.stat_result | None) -> bytes:
    """The bytes of the regular file ``path``, at most MAX_FILE_BYTES of them; `read_spec` says what is refused.

    The type is checked by name first, so that nothing else is ever opened
    (opening a device may do something); the open does not block (a FIFO
    swapped in meanwhile), and the type is checked again on what was opened.
    Symlinks are followed: a link to a spec is fine, and the caller has
    checked where an import's links lead.
    """
    try:
        kind = not_a_spec_file(os.stat(path))
        if kind is not None:
            raise SpecImportError(f"this is {kind}, not a spec file", path=path, hint="name a .nnspec file")
        where = system_dir(os.path.realpath(path))
        if where is not None:
            raise SpecImportError(f"this is a file under {where}, not a spec file", path=path,
                                  hint=f"{where} holds the system's files, never specs; name a .nnspec file")
        fd = os.open(path, READ_FLAGS)
        try:
            st = os.fstat(fd)
            kind = not_a_spec_file(st)
            if kind is not None:
                raise SpecImportError(f"this is {kind}, not a spec file", path=path, hint="name a .nnspec file")
            if same_file is not None and not os.path.samestat(st, same_file):
                raise SpecImportError("the file was replaced while it was being read", path=path,
                                      hint="compile again once nothing is changing the spec's files")
            if st.st_size > MAX_FILE_BYTES:  # the common case of a big file, told without reading it
                raise SpecLimitError(f"the file is {st.st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,}",
                                     path=path, hint=SIZE_HINT)
            chunks, left = [], MAX_FILE_BYTES + 1  # one byte more than allowed tells a file that grew
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        raise SpecImportError("no such file", path=path, hint="check the path and its spelling") from None
    except OSError as exc:
        raise SpecImportError(f"cannot read the file: {exc.strerror}", path=path,
                              hint="check the file's permissions") from None
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise SpecLimitError(f"the file is over the limit of {MAX_FILE_BYTES:,} bytes", path=path, hint=SIZE_HINT)
    return data


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

    Imports read only under the real folder of ``path`` (the working directory
    for text without one) and the folders in ``limits.import_roots``.

    >>> got = elaborate_source("model M(x: [B, 784]) { fc = Linear(_, 10) }", None)
    >>> got.graph.name, got.imports
    ('M', ())
    """
    spec = parse(text, path)
    read: dict[str, str] = {}  # absolute path -> its text, every file resolve_imports reads

    def read_recorded(source, *, same_file=None) -> tuple[str, str | None]:
        got = read_spec(source, same_file=same_file)
        read[os.path.abspath(os.fspath(source))] = got[0]
        return got

    roots = limits.import_roots if limits is not None else ()  # besides the first file's own folder
    try:
        imported = (resolve_imports(spec, text, read_recorded, roots)
                    if any(isinstance(i, ir.Import) for i in spec.items) else None)
        graph = elaborate(spec, model, limits=limits, text=text, imported=imported)
        if graph.train is not None:  # its data files: there, with the columns (or arrays) it names
            from .data import check_files

            check_files(graph.train)
            for w in graph.train.warnings:
                w.locate(path, text)
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


def check_batch_memory(graph: ModelGraph, batch: int, limits: Limits | None = None, text: str | None = None) -> None:
    """Refuse, before anything is allocated, to run ``graph`` at ``batch`` when its inputs and forward
    activations there would pass ``limits.max_activation_bytes`` (check has held batch 1 to it). The error
    points into the spec: ``text``, or the file the graph was read from."""
    try:
        check_memory([info for _, info in graph.inputs], list(graph.root.walk()), symbol_sizes(graph, batch),
                     (limits or Limits()).max_activation_bytes, graph.root.span, f"at batch {batch}")
    except SpecError as err:
        if text is None and graph.path is not None:
            try:
                text, _ = read_spec(Path(graph.path))
            except SpecError:
                pass  # the file is gone or changed: the error still names it and its line
        raise err.locate(graph.path, text) from None
