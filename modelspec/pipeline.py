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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import ir
from .budget import check_memory
from .elaborate import Limits, elaborate
from .errors import (MAX_ERRORS, WARNINGS, Span, SpecError, SpecLimitError, SpecNameError,
                     did_you_mean)
from .files import MAX_FILE_BYTES, SIZE_HINT, read_file, text_digest  # MAX_FILE_BYTES: the bound in force, here
from .imports import resolve_imports
from .model import ModelGraph
from .parse import Parsed, comments_of, decode_source, parse, parse_partial
from .shapes import Sym, evaluate



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


class SpecText(NamedTuple):
    """Spec text with the name of the file it stands for: what stdin (``-``) or an editor's unsaved buffer
    holds. Errors name ``path``, and its imports are read beside it (the working directory for "<stdin>")."""

    text: str
    path: str


def read_spec(source_or_path, *, same_file: os.stat_result | None = None) -> tuple[str, str | None]:
    """(text, path) for a path, for spec text itself, or for a `SpecText`.

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
    if isinstance(source_or_path, SpecText):
        if len(source_or_path.text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise SpecLimitError(f"the spec is over the limit of {MAX_FILE_BYTES:,} bytes", path=source_or_path.path,
                                 hint=SIZE_HINT)
        return source_or_path.text, source_or_path.path
    if isinstance(source_or_path, os.PathLike) or (
        isinstance(source_or_path, str) and "{" not in source_or_path and "\n" not in source_or_path
    ):
        path = os.fspath(source_or_path)
        return decode_source(read_file(path, same_file, MAX_FILE_BYTES), path), path
    if not isinstance(source_or_path, str):
        raise TypeError(f"expected spec text or a path, got {type(source_or_path).__name__}")
    if len(source_or_path.encode()) > MAX_FILE_BYTES:
        raise SpecLimitError(f"the spec is over the limit of {MAX_FILE_BYTES:,} bytes", hint=SIZE_HINT)
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



@pausing_gc
def elaborate_source(text: str, path: str | None, *, model: str | None = None,
                     limits: Limits | None = None) -> Elaborated:
    """`load_graph` after the read: parse ``text`` (read from ``path``), resolve its imports, elaborate.

    Imports read only under the real folder of ``path`` (the working directory
    for text without one) and the folders in ``limits.import_roots``.

    >>> got = elaborate_source("model M(x: [B, 784]) { fc = Linear(_, 10) }", None)
    >>> got.graph.name, got.imports
    ('M', ())

    A syntax error is raised with the errors of the rest of the file in its ``more`` (see `check_source`).
    """
    parsed = parse_partial(text, path)
    if parsed.errors:
        _check_models(parsed, text, path, [m.name for m in parsed.spec.models() if model in (None, m.name)], limits)
    return elaborate_parsed(parsed.spec, text, path, model=model, limits=limits)


def elaborate_parsed(spec: ir.SpecFile, text: str, path: str | None, *, model: str | None = None,
                     limits: Limits | None = None) -> Elaborated:
    """`elaborate_source` after the parse: ``spec`` is what ``text`` (read from ``path``) parsed into."""
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
        for w in graph.warnings:
            w.locate(path, text)
        graph.warnings = unsilenced(graph.warnings, {path: text})
    except SpecError as exc:
        raise exc.locate(path, text) from None
    return Elaborated(graph, tuple((p, text_digest(t)) for p, t in read.items()), sum(len(t) for t in read.values()))


@pausing_gc
def check_source(source_or_path, *, model: str | None = None, limits: Limits | None = None) -> list[Elaborated]:
    """Every model of a spec elaborated (or the one named), as `modelspec check` does; none for a library (blocks
    and consts, no model), whose blocks are checked where a model uses them. A file with nothing in it is an error.

    Where something is wrong, the first error found is raised with every other one in its ``more``, in file
    order, each place once, MAX_ERRORS in all at most: the error of each model that fails; past a syntax
    error, the further syntax errors (`modelspec.parse.parse_partial`) and the errors of each model that
    parsed and uses nothing broken, so that none is only a consequence of a syntax error.

    >>> [got.graph.name for got in check_source("model A(x: [B, 4]) { fc = Linear(_, 2) }\\nmodel C(x: [B, 2]) { "
    ...                                         "fc = Linear(_, 3) }")]
    ['A', 'C']
    >>> try:
    ...     check_source("model A(x: [B, 4]) { fc = Linear(4 2) }\\nmodel C(x: [B, 2]) { fc = Linear(4, 2) }")
    ... except SpecError as err:
    ...     print(err.message, "|", err.more[0].message)
    unexpected '2': perhaps you forgot a comma? | Linear `fc` expects in_features=4 but its input is [B, 2]
    """
    text, path = read_spec(source_or_path)
    parsed = parse_partial(text, path)
    if parsed.errors:
        names = [m.name for m in parsed.spec.models() if model in (None, m.name)]
    else:
        names = [model] if model is not None else [m.name for m in parsed.spec.models()]
        if not parsed.spec.items:
            raise SpecError("the spec defines nothing: no model, block or const", path=path, source=text,
                            hint="add `model Name(x: [B, ...]) { ... }`")
    return _check_models(parsed, text, path, names, limits)


def _check_models(parsed: Parsed, text: str, path: str | None, names: list[str],
                  limits: Limits | None) -> list[Elaborated]:
    """The models ``names`` of ``parsed`` elaborated; or the first error, of the parse or of a model, raised
    with the others in its ``more``."""
    errors, done = list(parsed.errors), []
    for name in names:
        if len(errors) >= MAX_ERRORS:
            break
        try:
            done.append(elaborate_parsed(parsed.spec, text, path, model=name, limits=limits))
        except SpecError as err:
            errors.append(err)
    if not errors:
        return done
    first = errors[0]
    seen, first.more = {(first.path, first.line, first.column)}, []
    for err in sorted(errors[1:], key=lambda e: (e.path != path, e.path or "", e.line or 0, e.column or 0)):
        if (err.path, err.line, err.column) not in seen:  # a block's error, met by each model that uses it
            seen.add((err.path, err.line, err.column))
            first.more.append(err)
    del first.more[MAX_ERRORS - 1:]
    first.checked = done  # the models that passed, whose warnings `check` still shows
    raise first


NOWARN = re.compile(r"nowarn:\s*([\w-]+(?:\s*,\s*[\w-]+)*)")


def nowarn_lines(text: str, path: str | None) -> dict[int, set[str]]:
    """The lines of ``text`` whose comment says ``# nowarn: NAME, ...``: line -> the warnings it silences.
    A name that is no warning is an error (a misspelt one would silence nothing)."""
    if "nowarn" not in text:
        return {}  # the common case, without lexing the text again
    found = {}
    for number, column, comment in comments_of(text):
        m = NOWARN.match(comment, 1 + len(comment[1:]) - len(comment[1:].lstrip()))
        if m is None:
            continue
        names = [n.strip() for n in m.group(1).split(",")]
        for n in names:
            if n not in WARNINGS:
                at = column + comment.index(n, m.start(1))
                raise SpecNameError(f"# nowarn: there is no warning {n!r}",
                                    Span(line=number, column=at, end_line=number, end_column=at + len(n)),
                                    hint=did_you_mean(n, WARNINGS) or "the warnings: " + ", ".join(WARNINGS),
                                    path=path, source=text)
        found[number] = set(names)
    return found


def unsilenced(found, texts: dict) -> list:
    """The warnings no ``# nowarn: NAME`` comment on their own line silences; ``texts``: path -> text, the
    files read (a warning inside an imported block is silenced in that file)."""
    lines = {path: nowarn_lines(text, path) for path, text in texts.items()}  # checked even where none warns
    kept = []
    for w in found:
        key = w.path
        if key not in lines:
            text = texts.get(key, w.source)
            lines[key] = nowarn_lines(text, key) if text is not None else {}
        if w.name not in lines[key].get(w.line, ()):
            kept.append(w)
    return kept


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


def check_batch_memory(graph: ModelGraph, batch: int, limits: Limits | None = None, text: str | None = None,
                       *, sizes: dict[str, int] | None = None) -> None:
    """Refuse, before anything is allocated, to run ``graph`` at ``batch`` when its inputs and forward
    activations there would pass ``limits.max_activation_bytes`` (check has held batch 1 to it). The error
    points into the spec: ``text``, or the file the graph was read from. ``sizes``, every symbol's size,
    replaces those of ``batch`` where the inputs' sizes are known (read from a file by `modelspec run`)."""
    at = f"at batch {batch}" if sizes is None else "at " + (", ".join(f"{s}={n}" for s, n in sizes.items()) or
                                                             "its declared sizes")
    try:
        check_memory([info for _, info in graph.inputs], list(graph.root.walk()),
                     symbol_sizes(graph, batch) if sizes is None else sizes,
                     (limits or Limits()).max_activation_bytes, graph.root.span, at)
    except SpecError as err:
        if text is None and graph.path is not None:
            try:
                text, _ = read_spec(Path(graph.path))
            except SpecError:
                pass  # the file is gone or changed: the error still names it and its line
        raise err.locate(graph.path, text) from None
