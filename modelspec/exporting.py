"""Model graph -> a file to deploy: ONNX, torch.export's .pt2, or TorchScript.

`export(spec, output, format=...)` builds the spec's module (seeded, in eval
mode), makes example inputs and writes the file; `dynamic_shapes(spec)` is the
``dynamic_shapes`` argument of ``torch.export.export`` for those who call it
themselves. Each symbol of the inputs (``B``, ``T``) is one `torch.export.Dim`
named after it, shared by every input that has it, so that the file takes
any batch and, where the model allows, any length:

- a symbol the spec bounds gets that bound as its ``max``: positions counted
  up to ``T`` (``torch.arange(t)``) into an Embedding of 64 rows allow
  ``T <= 64``, as nanoGPT asserts ``t <= block_size``;
- a symbol whose example size is 0 or 1 stays static: torch.export makes no
  dim dynamic from such an example (it specializes them), so the inputs are
  made at batch 2 and each other symbol at its declared example (``T=64``)
  or 8;
- what torch.export then finds the traced code fixes is narrowed as its own
  suggested fixes say (``refine_dynamic_shapes_from_suggested_fixes``): a
  range, or a static size (nn.LSTM unrolls its time steps under
  torch.export, and MaxPool1d fixes its length, so their ``T`` stays the
  example's). `Exported.notes` says why each symbol that is not fully
  dynamic is so. Where torch.export refuses a dim with no fix it can apply
  (an unpadded Conv1d's ``T``: its output may not be 1 long, which no range
  of torch's says), a `SpecError` names the symbol and torch's reason.

ONNX goes through torch.export too (``torch.onnx.export`` of the exported
program, torch's recommended ``dynamo=True`` exporter), with the spec's input
names, its returned names as output names, and each dynamic axis named after
its symbol; weights past ONNX's 2 GB limit go to a ``.data`` file beside it.
TorchScript is ``torch.jit.script`` of the generated module: the printed code
is plain PyTorch that TorchScript compiles, and a scripted module, unlike a
traced one, keeps every dim dynamic and every branch of forward (torch 2.13
deprecates TorchScript in favour of torch.export: pt2 is its successor).

torch is imported inside the functions: ``import modelspec`` stays free of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .build import build_module, make_inputs
from .codegen import generate_code
from .elaborate import Limits
from .errors import SpecError, issue
from .layers.base import Bound
from .model import ModelGraph
from .pipeline import check_batch_memory, elaborate_source, load_graph, read_spec, symbol_sizes
from .runner import output_names
from .shapes import Sym, Val

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}  # each format -> the suffix of its files
EXAMPLE_BATCH = 2  # torch.export specializes a dim whose example size is 0 or 1: the batch is traced at 2
SEQUENTIAL_INPUT = "input"  # nn.Sequential's forward names its one argument so; torch.export keys by that name


class OutputError(ValueError):
    """Export was asked to write where it cannot: a folder that does not exist, a file of another format."""


@dataclass(frozen=True)
class Exported:
    """What `export` wrote: the file, its format, and the sizes each symbol of the inputs may take in it.

    ``dims``: symbol -> (min, max), max None for no bound; min == max: the file takes that size alone.
    ``notes``: why a symbol is bounded or static, one sentence each.
    """

    path: str
    format: str
    dims: dict[str, tuple[int, int | None]]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The dims in words.

        >>> Exported("gpt.onnx", "onnx", {"B": (0, None), "T": (0, 64)}).describe()
        'B dynamic, T at most 64'
        """
        return ", ".join(f"{s} {_range_words(lo, hi)}" for s, (lo, hi) in self.dims.items()) or "no symbolic dims"


def dynamic_shapes(spec, *, model: str | None = None, limits: Limits | None = None) -> dict[str, dict]:
    """The ``dynamic_shapes`` of ``torch.export.export`` for a spec's model: ``{input: {dim: Dim}}``.

    Keyed by the forward's arguments (the spec's input names; ``input`` for a
    model without a forward, an nn.Sequential), one `torch.export.Dim` per
    symbol, the same object wherever the symbol stands, bounded where the
    spec bounds it (see the module's docstring). Pair it with
    ``example_inputs(spec)`` at its default batch of 2. A size torch.export
    finds the module fixes (nn.LSTM's time steps) it reports as a
    ``UserError`` with suggested fixes, which ``torch.export.dynamic_shapes.
    refine_dynamic_shapes_from_suggested_fixes`` applies; `export` does so.

    >>> dynamic_shapes("model M(image: [B, 3, 8, 8], features: [B, 10]) { forward(image, features) "
    ...                "{ return features } }")
    {'image': {0: Dim('B', min=0)}, 'features': {0: Dim('B', min=0)}}
    """
    graph = load_graph(spec, model=model, limits=limits)
    return _shapes(graph, _dims(graph))


def export(spec, output: str | os.PathLike | None = None, *, format: str | None = None, model: str | None = None,
           seed: int = 0, limits: Limits | None = None, on_warnings=None) -> Exported:
    """Write a spec's model as ONNX, torch.export's .pt2 or TorchScript, and say what became of its dims.

    ``format`` is "onnx", "pt2" or "torchscript" (default: as ``output``'s
    suffix says, else onnx); ``output`` the file (default: the model's name
    with .onnx, .pt2 or .pt, in the working directory). The weights are drawn
    from ``seed``. ``on_warnings`` takes the spec's warnings first and may stop
    the export by raising (default: they go to Python's `warnings` module).
    torch's own warnings while it traces (about its internals, and that it
    deprecates TorchScript) are not shown.

    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "m.pt2")
    >>> done = export("model M(x: [B, 4]) { fc = Linear(_, 2) }", out)
    >>> done.format, done.describe()
    ('pt2', 'B dynamic')
    """
    graph, text = _load(spec, model, limits)
    (on_warnings or issue)(graph.warnings)
    format = format or _format_of(output)
    path = _output_path(graph, output, format)
    if format == "onnx":
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it, and onnx: missing, it is said before any work)
    import torch

    module = build_module(generate_code(graph), graph, seed=seed).eval()
    if format == "torchscript":
        with _quiet_torch():
            _write_torchscript(graph, text, module, path)
        bounds = _bounds(graph)  # TorchScript checks no size, but the model's tables still bound some
        dims = {s: (0, bounds[s][0] if s in bounds else None) for s in _input_symbols(graph)}
        return Exported(path, format, dims, [_bounded(s, *bounds[s]) for s in dims if s in bounds])
    check_batch_memory(graph, EXAMPLE_BATCH, limits, text)  # refused before the inputs exist
    inputs = make_inputs(graph, batch=EXAMPLE_BATCH, generator=torch.Generator().manual_seed(seed))
    with _quiet_torch():
        program, dims, notes = _trace(graph, text, module, inputs)
        if format == "pt2":
            torch.export.save(program, path)
        else:
            _write_onnx(graph, program, module, inputs, path)
    return Exported(path, format, dims, notes)


def _output_path(graph: ModelGraph, output, format: str) -> str:
    """Where `export` writes: ``output``, or the model's name with the format's suffix in the working directory.
    Refused before any work (`OutputError`): a folder, a missing or read-only folder, another format's suffix."""
    if format not in FORMATS:
        raise OutputError(f"the format is one of {', '.join(FORMATS)}, not {format!r}")
    path = os.fspath(output) if output is not None else graph.name + FORMATS[format]
    suffix = Path(path).suffix.lower()
    other = next((f for f, s in FORMATS.items() if s == suffix and f != format), None)
    if other is not None:
        raise OutputError(f"{path} has the suffix of the {other} format, but the format asked for is {format}: "
                          f"name a {FORMATS[format]} file, or ask for {other}")
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise OutputError(f"{path} is a folder: name the file to write, as "
                          f"{os.path.join(path, graph.name + FORMATS[format])}")
    if not os.path.isdir(folder):
        raise OutputError(f"there is no folder {folder} to write {os.path.basename(path)} in")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"the folder {folder} cannot be written to")
    return path


def _load(spec, model, limits) -> tuple[ModelGraph, str | None]:
    """The graph of a spec and its text, for errors to show the line (a `ModelGraph` passes through, textless)."""
    if isinstance(spec, ModelGraph):
        return spec, None
    text, path = read_spec(spec)
    return elaborate_source(text, path, model=model, limits=limits).graph, text


def _format_of(output) -> str:
    suffix = Path(os.fspath(output)).suffix.lower() if output is not None else ""
    return next((f for f, s in FORMATS.items() if s == suffix), "onnx")


def _input_symbols(graph: ModelGraph) -> list[str]:
    """The symbols of the inputs' dims, in the order the spec declares them."""
    used = set().union(*(d.value.symbols for _, info in graph.inputs for d in info.shape if isinstance(d.value, Sym)))
    return [s for s in graph.symbols if s in used]


def _dims(graph: ModelGraph) -> dict:
    """symbol -> its `torch.export.Dim`, bounded as the spec bounds it; a symbol with a 0 or 1 example is left
    out (static)."""
    from torch.export import Dim

    sizes, bounds = symbol_sizes(graph, EXAMPLE_BATCH), _bounds(graph)
    return {s: Dim(s, max=bounds[s][0] if s in bounds else None) for s in _input_symbols(graph) if sizes[s] >= 2}


def _bounds(graph: ModelGraph) -> dict[str, tuple[int, str]]:
    """symbol -> (the largest size the spec allows it, the layer that says so): a table of n rows (an Embedding)
    indexed by positions counted up to the symbol (``torch.arange(T)``) allows it n at most."""
    found = {}
    for node in graph.root.walk():
        if node.layer is None or node.layer.index_bound is None or not node.inputs:
            continue
        symbol, rows = _symbol_of(node.inputs[0].below), node.layer.index_bound(Bound(node.args))
        if symbol is not None and isinstance(rows, int) and rows < found.get(symbol, (rows + 1,))[0]:
            found[symbol] = (rows, f"{node.type_name} `{node.path}`")
    return found


def _symbol_of(v) -> str | None:
    """The symbol a dim is when it is one symbol alone (T, not 2 * T)."""
    v = v.value if isinstance(v, Val) else v
    if not isinstance(v, Sym) or len(v.symbols) != 1:
        return None
    (s,) = v.symbols
    return s if v == Sym.var(s) else None


def _forward_names(graph: ModelGraph) -> list[str]:
    cls = graph.classes[-1]
    return [SEQUENTIAL_INPUT] if cls.base == "nn.Sequential" else list(cls.forward_params)


def _shapes(graph: ModelGraph, dims: dict) -> dict[str, dict]:
    """``{forward argument: {dim index: Dim}}`` of the inputs' dims (each a symbol or a number, as the language
    declares them); a static symbol's dims are left out."""
    shapes = {}
    for forward_name, (_, info) in zip(_forward_names(graph), graph.inputs):
        symbols = {i: _symbol_of(d.value) for i, d in enumerate(info.shape)}
        shapes[forward_name] = {i: dims[s] for i, s in symbols.items() if s in dims}
    return shapes


def _trace(graph: ModelGraph, text: str | None, module, inputs):
    """torch.export's program of ``module``, its dims narrowed where torch.export finds the traced code fixes
    them: (program, symbol -> (min, max), notes)."""
    import torch
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    dims = _dims(graph)
    shapes, error = _shapes(graph, dims), None
    for _ in range(len(dims) + 1):  # each round of suggested fixes settles one symbol at least
        try:
            program = torch.export.export(module, inputs, dynamic_shapes=shapes)
        except torch._dynamo.exc.UserError as exc:
            error, message = exc, getattr(exc, "msg", str(exc))
            if "Suggested fixes:" not in message:
                break
            try:
                shapes = refine_dynamic_shapes_from_suggested_fixes(message, shapes)
            except Exception:  # a fix it cannot apply: torch's message is all there is to say
                break
        except Exception as exc:
            error = exc
            break
        else:
            return program, *_outcome(graph, dims, shapes)
    raise _refused(graph, text, dims, error) from error


def _outcome(graph: ModelGraph, dims: dict, shapes: dict) -> tuple[dict, list[str]]:
    """What became of each symbol (min, max), and why where it is not simply dynamic."""
    sizes, bounds = symbol_sizes(graph, EXAMPLE_BATCH), _bounds(graph)
    first = {}  # symbol -> (forward argument, dim index) of the first place it stands
    for forward_name, (_, info) in zip(_forward_names(graph), graph.inputs):
        for i, d in enumerate(info.shape):
            first.setdefault(_symbol_of(d.value), (forward_name, i))
    out, notes = {}, []
    for s in _input_symbols(graph):
        forward_name, i = first[s]
        out[s] = lo, hi = _range(shapes[forward_name].get(i, sizes[s]))
        if s not in dims:
            notes.append(f"{s} stays {sizes[s]}: torch.export makes no dim dynamic from an example size of 0 or "
                         f"1; declare a larger example ({s}=16) for {s} to be dynamic")
        elif lo == hi:
            notes.append(f"{s} stays {lo}: torch.export finds that the traced code fixes it (the torchscript "
                         "format keeps it dynamic)")
        elif s in bounds and hi == bounds[s][0]:
            notes.append(_bounded(s, *bounds[s]))
        elif (lo, hi) != _range(dims[s]):
            notes.append(f"{s} is {_range_words(lo, hi)}: torch.export finds that the traced code needs it")
    return out, notes


def _range(dim) -> tuple[int, int | None]:
    """(min, max) of a `Dim`, None for no bound (torch's int_oo); (n, n) of a size fixed at n."""
    if isinstance(dim, int):
        return dim, dim
    return dim.min, dim.max if isinstance(dim.max, int) else None


def _bounded(symbol: str, rows: int, layer: str) -> str:
    return f"{symbol} is at most {rows}: {layer} has {rows} rows and is indexed by positions counted up to {symbol}"


def _range_words(lo: int, hi: int | None) -> str:
    if lo == hi:
        return f"fixed at {lo}"
    if hi is None:
        return "dynamic" if lo <= 1 else f"at least {lo}"
    return f"at most {hi}" if lo <= 1 else f"from {lo} to {hi}"


def _refused(graph: ModelGraph, text: str | None, dims: dict, exc: Exception) -> SpecError:
    """torch.export's refusal as one located line: the symbols it cannot keep dynamic and its reason, where it
    names them (``Constraints violated (T)!`` and the guard that does not hold), else its first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    named = re.match(r"Constraints violated \((.+?)\)!", lines[0]) if lines else None
    if named is None:
        return SpecError(f"torch.export cannot export {graph.name} with {', '.join(dims) or 'no dim'} dynamic: "
                         f"{_first_line(exc)}", graph.root.span, path=graph.path, source=text,
                         hint="the torchscript format keeps every dim dynamic")
    symbols = named.group(1)
    reason = next((ln.removeprefix("- ") for ln in lines[1:] if ln.startswith("- ")), lines[0])
    return SpecError(f"torch.export cannot keep {symbols} dynamic in {graph.name}: {reason}", graph.root.span,
                     path=graph.path, source=text,
                     hint=f"declare {symbols} as a number in the input's type for a static size, or export to "
                          "torchscript, which keeps every dim dynamic")


def _first_line(exc: Exception) -> str:
    """What torch says first, without its pointers to more (TORCH_LOGS, draft_export): the one line shown."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line.split(" For more information", 1)[0]


def _write_torchscript(graph: ModelGraph, text: str | None, module, path: str) -> None:
    import torch

    try:
        scripted = torch.jit.script(module)
    except Exception as exc:
        raise SpecError(f"TorchScript cannot compile {graph.name}'s code: {_first_line(exc)}", graph.root.span,
                        path=graph.path, source=text,
                        hint="export it as pt2 or onnx (torch.export), which TorchScript gives way to") from exc
    torch.jit.save(scripted, path)


def _write_onnx(graph: ModelGraph, program, module, inputs, path: str) -> None:
    """``torch.onnx.export`` of the exported program, named as the spec names its inputs, outputs and dims."""
    import torch

    with torch.no_grad():
        out = module(*inputs)
    onnx_program = torch.onnx.export(program, inputs, input_names=[name for name, _ in graph.inputs],
                                     output_names=_onnx_outputs(graph, out), dynamo=True, verbose=False)
    axes = {}
    for (_, info), value in zip(graph.inputs, onnx_program.model.graph.inputs):
        for d, axis in zip(info.shape, value.shape):
            symbol = _symbol_of(d.value)
            if symbol is not None and not isinstance(axis, int):
                axes[axis] = symbol
    onnx_program.rename_axes(axes)  # torch.export's s0, s1 -> B, T, in every value of the graph
    onnx_program.save(path)


def _onnx_outputs(graph: ModelGraph, out) -> list[str]:
    """The name of each output: the spec's returned name where it is a plain one (``logits``), else
    ``output`` (one output) or ``output_0``, ``output_1``, ...; every name once, none an input's."""
    names = output_names(graph, out)
    taken = {name for name, _ in graph.inputs}
    found = []
    for i, name in enumerate(names):
        if name is None or not name.isidentifier() or name in taken:
            name = "output" if len(names) == 1 and "output" not in taken else f"output_{i}"
        taken.add(name)
        found.append(name)
    return found


@contextlib.contextmanager
def _quiet_torch():
    """Hide what torch says while it traces and converts, about itself: its internals (nn.LSTM's flat weights),
    ops of packages not installed (torchvision's), and that it deprecates TorchScript."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)
