"""Model graph -> a file to deploy: ONNX, torch.export's .pt2, or TorchScript.

`export(spec, output, format=...)` builds the spec's module (in eval mode,
its weights random, drawn from ``seed``, unless ``weights`` names a
state_dict: the MODEL.pt or a checkpoint of ``modelspec train``), makes
example inputs and writes the file; `dynamic_shapes(spec)` is the
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
  example's);
- where torch.export refuses a symbol with no fix it can apply, because a
  layer may make a length of 1 of it (an unpadded Conv1d makes ``T - 4`` of
  ``T``, and torch's code guards that this is not 1, which no range of its
  own says), the symbol's ``min`` is raised until every length a layer makes
  of it is 2 or more (``T >= 6``), and the export tried again.

`Exported.notes` says why each symbol that is not fully dynamic is so. A
refusal that is left is a `SpecError` naming the symbol and torch's reason,
at the layer that shortens the symbol where there is one.

ONNX goes through torch.export too (``torch.onnx.export`` of the exported
program, torch's recommended ``dynamo=True`` exporter), with the spec's input
names, its returned names as output names, and each dynamic axis named after
its symbol; weights past ONNX's 2 GB limit go to a ``.data`` file beside it.
TorchScript is ``torch.jit.script`` of the generated module: the printed code
is plain PyTorch that TorchScript compiles, and a scripted module, unlike a
traced one, keeps every dim dynamic and every branch of forward (torch 2.13
deprecates TorchScript in favour of torch.export: pt2 is its successor).

The file is named after the model unless ``output`` says otherwise; a
TorchScript file is ``NAME.torchscript.pt``, not ``NAME.pt``, which holds the
weights ``modelspec train`` writes. A file that is there already is replaced
when it holds an export of the same format (exporting again replaces the
last one, as ``torch.onnx.export`` and ``torch.jit.save`` do), and otherwise
only with ``force``: weights, a checkpoint or anything else are not lost to
a mistyped ``-o``. Every refusal about where to write, and a write that
fails, is an `OutputError`; weights that do not fit are a `WeightsError`.

torch is imported inside the functions: ``import modelspec`` stays free of it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .build import build_module, make_inputs, weights_misfit
from .codegen import generate_code
from .elaborate import Limits
from .errors import SpecError, issue
from .imports import not_a_spec_file, system_dir
from .layers.base import Bound
from .model import ModelGraph, ModuleNode
from .pipeline import check_batch_memory, elaborate_source, load_graph, read_spec, symbol_sizes
from .runner import output_names
from .shapes import Sym, Val, evaluate

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}  # each format -> the suffix that says it in -o
# the default file's ending, where it is more than the suffix: NAME.pt is the weights modelspec train writes
DEFAULT_ENDINGS = {"torchscript": ".torchscript.pt"}
EXAMPLE_BATCH = 2  # torch.export specializes a dim whose example size is 0 or 1: the batch is traced at 2
SEQUENTIAL_INPUT = "input"  # nn.Sequential's forward names its one argument so; torch.export keys by that name
SHORTEST = 2  # torch.export keeps a dim dynamic only where it cannot be 0 or 1: the least length a layer may make

# torch's zip archives, told apart by an entry under their one top folder (checked in this order: TorchScript's
# archive holds a data.pkl too) -> what wrote it
ARCHIVES = {"archive_format": "pt2", "code/": "torchscript", "data.pkl": "torch.save"}
# what a file holds (as `_holds` tells) -> in words
HOLDINGS = {"onnx": "an ONNX model", "pt2": "a torch.export program (.pt2)", "torchscript": "a TorchScript module",
            "torch.save": "a file of torch.save (weights or a checkpoint, as modelspec train writes)"}
# modelspec train's checkpoint.pt and interrupted.pt: a dict with the model's name and its state_dict (trainer.py)
CHECKPOINT_NAME, CHECKPOINT_MODEL = "model_name", "model"


class OutputError(ValueError):
    """Export was asked to write where it cannot: a folder that does not exist, a file of another format, a file
    that holds something else (without ``force``), or a write that failed."""


class WeightsError(ValueError):
    """The weights to export are no state_dict of the model: a file torch.save did not write, another model's
    checkpoint, keys missing or unexpected, a tensor of another shape."""


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
    refine_dynamic_shapes_from_suggested_fixes`` applies; `export` does so,
    and raises the min of a symbol torch.export refuses because a layer may
    make a length of 1 of it (an unpadded Conv1d's ``T - 4``).

    >>> dynamic_shapes("model M(image: [B, 3, 8, 8], features: [B, 10]) { forward(image, features) "
    ...                "{ return features } }")
    {'image': {0: Dim('B', min=0)}, 'features': {0: Dim('B', min=0)}}
    """
    graph = load_graph(spec, model=model, limits=limits)
    return _shapes(graph, _dims(graph))


def export(spec, output: str | os.PathLike | None = None, *, format: str | None = None, model: str | None = None,
           weights=None, seed: int = 0, force: bool = False, limits: Limits | None = None,
           on_warnings=None) -> Exported:
    """Write a spec's model as ONNX, torch.export's .pt2 or TorchScript, and say what became of its dims.

    ``format`` is "onnx", "pt2" or "torchscript" (default: as ``output``'s
    suffix says, else onnx); ``output`` the file (default: the model's name
    with .onnx, .pt2 or .torchscript.pt, in the working directory); a file
    there already is replaced only when it holds an export of that format,
    or with ``force``. The weights are random, drawn from ``seed``, unless
    ``weights`` gives them: a state_dict, or the file of one (MODEL.pt, or a
    checkpoint.pt, of ``modelspec train``), read with ``weights_only=True``.
    ``seed`` also draws the example inputs it traces. ``on_warnings`` takes
    the spec's warnings first and may stop the export by raising (default:
    they go to Python's `warnings` module). torch's own warnings while it
    traces (about its internals, and that it deprecates TorchScript) are not
    shown.

    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "m.pt2")
    >>> done = export("model M(x: [B, 4]) { fc = Linear(_, 2) }", out)
    >>> done.format, done.describe()
    ('pt2', 'B dynamic')
    """
    graph, text = _load(spec, model, limits)
    (on_warnings or issue)(graph.warnings)
    format = format or _format_of(output)
    path = _output_path(graph, output, format, force)
    if format == "onnx":
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it, and onnx: missing, it is said before any work)
    import torch

    state, named = _read_weights(weights, graph) if weights is not None else (None, None)
    module = build_module(generate_code(graph), graph, seed=seed).eval()
    if state is not None:
        _load_weights(module, state, named, graph)
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
            _write_archive(path, lambda f: torch.export.save(program, f))
        else:
            _write_onnx(graph, program, module, inputs, path)
    return Exported(path, format, dims, notes)


def _output_path(graph: ModelGraph, output, format: str, force: bool = False) -> str:
    """Where `export` writes: ``output``, or the model's name with the format's suffix in the working directory.
    Refused before any work (`OutputError`): a folder, a missing or read-only folder, another format's suffix,
    a file that holds something other than an export of this format (unless ``force``)."""
    if format not in FORMATS:
        raise OutputError(f"the format is one of {', '.join(FORMATS)}, not {format!r}")
    default = graph.name + DEFAULT_ENDINGS.get(format, FORMATS[format])
    path = os.fspath(output) if output is not None else default
    suffix = Path(path).suffix.lower()
    other = next((f for f, s in FORMATS.items() if s == suffix and f != format), None)
    if other is not None:
        raise OutputError(f"{path} has the suffix of the {other} format, but the format asked for is {format}: "
                          f"name a {FORMATS[format]} file, or ask for {other}")
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise OutputError(f"{path} is a folder: name the file to write, as {os.path.join(path, default)}")
    if not os.path.isdir(folder):
        raise OutputError(f"there is no folder {folder} to write {os.path.basename(path)} in")
    there = os.path.lexists(path)
    if not os.access(path if there else folder, os.W_OK):  # a file there is written over, else made in the folder
        raise OutputError(f"{path} cannot be written to" if there else f"the folder {folder} cannot be written to")
    held = _holds(path) if there else format
    if held != format and not force:
        words = HOLDINGS.get(held, f"something that is no {format} export")
        raise OutputError(f"{path} holds {words}: export with --force (force=True) to replace it, or name "
                          "another file with -o")
    return path


def _holds(path: str) -> str | None:
    """What a file holds, as far as export tells: "onnx", "pt2" or "torchscript" (an export), "torch.save"
    (weights, a checkpoint), or None (anything else, and anything not a regular file, which is not opened)."""
    try:
        if not os.path.isfile(path):
            return None
        if zipfile.is_zipfile(path):  # torch's archives: a top folder, and what lies in it says who wrote it
            with zipfile.ZipFile(path) as z:
                entries = [name.partition("/")[2] for name in z.namelist()]
            return next((kind for mark, kind in ARCHIVES.items() if any(e.startswith(mark) for e in entries)), None)
        with open(path, "rb") as f:
            head = f.read(2)
    except (OSError, zipfile.BadZipFile):
        return None
    # an ONNX ModelProto begins with its ir_version: protobuf field 1, a small varint (08 0a for version 10)
    return "onnx" if len(head) == 2 and head[0] == 0x08 and 0 < head[1] < 0x80 else None


@contextlib.contextmanager
def _writing(path: str):
    """A failed write of ``path`` (a full disk, /proc, a file it may not replace) as an `OutputError`."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read_weights(weights, graph: ModelGraph) -> tuple[dict, str]:
    """The state_dict ``weights`` gives, and how errors name it: a mapping as it is, or a file's, loaded with
    ``weights_only=True`` (which runs nothing the file holds): a state_dict, or modelspec train's checkpoint."""
    if isinstance(weights, Mapping):
        return _state_dict(weights, "the weights given", graph), "the weights given"
    import torch

    path = os.fspath(weights)
    try:
        kind = not_a_spec_file(os.stat(path))  # a FIFO would block the reader, /dev/zero never ends
    except OSError as exc:
        raise WeightsError(f"cannot read the weights {path}: {exc.strerror or exc}") from None
    where = system_dir(os.path.realpath(path))  # /proc's files pass for regular ones
    if kind or where:
        raise WeightsError(f"the weights {path} are {kind or f'a file under {where}'}, not a file of torch.save")
    held = _holds(path)
    if held in FORMATS:
        raise WeightsError(f"{path} holds {HOLDINGS[held]}, not weights: give the state_dict it was made from "
                           "(the MODEL.pt of modelspec train, or torch.save(model.state_dict(), path))")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol of the file
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise WeightsError(f"cannot read the weights {path}: {exc.strerror or exc}") from None
    except Exception:  # torch.load's refusals come as UnpicklingError, EOFError, RuntimeError, ...
        raise WeightsError(f"{path} is not a file of weights that torch.save wrote (or it is damaged, or holds "
                           "Python objects, which are not loaded)") from None
    return _state_dict(obj, path, graph), path


def _state_dict(obj, named: str, graph: ModelGraph) -> dict:
    """A state_dict from what was loaded: itself, or the model's of a checkpoint of modelspec train."""
    import torch

    if isinstance(obj, Mapping) and CHECKPOINT_NAME in obj and isinstance(obj.get(CHECKPOINT_MODEL), Mapping):
        if obj[CHECKPOINT_NAME] != graph.name:
            raise WeightsError(f"{named} is a checkpoint of {obj[CHECKPOINT_NAME]!r}, not of {graph.name}: export "
                               "it with the spec that trained it")
        obj = obj[CHECKPOINT_MODEL]
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in obj.items()):
        raise WeightsError(f"{named} holds no state_dict (tensors by name): save model.state_dict(), as "
                           "modelspec train saves MODEL.pt")
    return dict(obj)


def _load_weights(module, state: dict, named: str, graph: ModelGraph) -> None:
    """Load ``state`` into ``module``, after one line saying every way it does not fit, if it does not."""
    problems = weights_misfit(module.state_dict(), state)
    if problems:
        raise WeightsError(f"{named} does not fit {graph.name}: {'; '.join(problems)}; export it with the spec "
                           "(and settings) that trained it")
    module.load_state_dict(state)


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
    them, or where it refuses a symbol that a layer may shorten to 1: (program, symbol -> (min, max), notes)."""
    import torch
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    dims, floors = _dims(graph), _floors(graph)
    shapes, raised, error = _shapes(graph, dims), set(), None
    for _ in range(2 * len(dims) + 1):  # each round settles a symbol: a fix of torch's, or its floor
        try:
            program = torch.export.export(module, inputs, dynamic_shapes=shapes)
        except torch._dynamo.exc.UserError as exc:
            error, message = exc, getattr(exc, "msg", str(exc))
            if "Suggested fixes:" in message:
                try:
                    shapes = refine_dynamic_shapes_from_suggested_fixes(message, shapes)
                    continue
                except Exception:  # a fix it cannot apply: a floor may still do
                    pass
            floored = {s: floors[s][0] for s in _violated(message) if s in floors and s not in raised}
            if not floored:
                break
            shapes, raised = _with_floors(shapes, floored), raised | set(floored)
        except Exception as exc:
            error = exc
            break
        else:
            return program, *_outcome(graph, dims, shapes, floors)
    raise _refused(graph, text, dims, floors, error) from error


def _floors(graph: ModelGraph) -> dict[str, tuple[int, ModuleNode, Sym]]:
    """symbol -> (the least size at which every length a layer makes of it alone is 2 or more, the layer that
    needs the most, the length it makes): an unpadded Conv1d makes T - 4 of T, 2 from T = 6 on. Lengths grow
    with their symbol (convolutions and pools), so the least size is found by bisection up to the example's;
    a symbol no layer shortens below 2 has none."""
    sizes, found = symbol_sizes(graph, EXAMPLE_BATCH), {}
    for node in graph.root.walk():
        if node.layer is None:
            continue
        for v in (d.value if isinstance(d, Val) else d for info in node.outputs for d in info.shape):
            if not isinstance(v, Sym) or len(v.symbols) != 1:
                continue
            (s,) = v.symbols
            lo, hi = SHORTEST, sizes.get(s, SHORTEST)
            if evaluate(v, {s: lo}) >= SHORTEST or evaluate(v, {s: hi}) < SHORTEST:
                continue  # never short, or short even at the example, which torch then specializes
            while lo + 1 < hi:  # evaluate(v, lo) < SHORTEST <= evaluate(v, hi)
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if evaluate(v, {s: mid}) >= SHORTEST else (mid, hi)
            if hi > found.get(s, (SHORTEST,))[0]:
                found[s] = (hi, node, v)
    return found


def _with_floors(shapes: dict, floors: dict[str, int]) -> dict:
    """``shapes`` with each symbol of ``floors`` a new `Dim` of that min (its max kept), the same object
    wherever the symbol stands."""
    from torch.export import Dim

    new = {}
    for dims in shapes.values():
        for d in dims.values():
            name = getattr(d, "__name__", None)
            if name in floors and name not in new:
                new[name] = Dim(name, min=max(floors[name], d.min), max=_range(d)[1])
    return {arg: {i: new.get(getattr(d, "__name__", None), d) for i, d in dims.items()} for arg, dims in shapes.items()}


def _violated(message: str) -> list[str]:
    """The symbols torch.export names in ``Constraints violated (B, T)!``: those it cannot keep dynamic."""
    named = re.search(r"Constraints violated \((.+?)\)!", message)
    return [s.strip() for s in named.group(1).split(",")] if named else []


def _outcome(graph: ModelGraph, dims: dict, shapes: dict, floors: dict) -> tuple[dict, list[str]]:
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
            continue
        if lo == hi:
            notes.append(f"{s} stays {lo}: torch.export finds that the traced code fixes it (the torchscript "
                         "format keeps it dynamic)")
            continue
        why = [_floored(s, *floors[s])] if s in floors and lo == floors[s][0] else []
        why += [_bounded(s, *bounds[s])] if s in bounds and hi == bounds[s][0] else []
        if not why and (lo, hi) != _range(dims[s]):
            why.append(f"{s} is {_range_words(lo, hi)}: torch.export finds that the traced code needs it")
        notes += why
    return out, notes


def _range(dim) -> tuple[int, int | None]:
    """(min, max) of a `Dim`, None for no bound (torch's int_oo); (n, n) of a size fixed at n."""
    if isinstance(dim, int):
        return dim, dim
    return dim.min, dim.max if isinstance(dim.max, int) else None


def _floored(symbol: str, least: int, node: ModuleNode, length: Sym) -> str:
    return (f"{symbol} is at least {least}: {node.type_name} `{node.path}` makes it {length} long, and torch.export "
            "keeps no dim dynamic that may be 1")


def _bounded(symbol: str, rows: int, layer: str) -> str:
    return f"{symbol} is at most {rows}: {layer} has {rows} rows and is indexed by positions counted up to {symbol}"


def _range_words(lo: int, hi: int | None) -> str:
    if lo == hi:
        return f"fixed at {lo}"
    if hi is None:
        return "dynamic" if lo <= 1 else f"at least {lo}"
    return f"at most {hi}" if lo <= 1 else f"from {lo} to {hi}"


def _refused(graph: ModelGraph, text: str | None, dims: dict, floors: dict, exc: Exception) -> SpecError:
    """torch.export's refusal as one located line: the symbols it cannot keep dynamic and its reason, where it
    names them (``Constraints violated (T)!`` and the guard that does not hold), else its first line. It points
    at the layer that shortens such a symbol, where one does, else at the model."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    symbols = _violated(lines[0]) if lines else []
    if not symbols:
        return SpecError(f"torch.export cannot export {graph.name} with {', '.join(dims) or 'no dim'} dynamic: "
                         f"{_first_line(exc)}", graph.root.span, path=graph.path, source=text,
                         hint="the torchscript format keeps every dim dynamic")
    named = ", ".join(symbols)
    reason = next((ln.removeprefix("- ") for ln in lines[1:] if ln.startswith("- ")), lines[0])
    hint = (f"declare {named} as a number in the input's type for a static size, or export to torchscript, "
            "which keeps every dim dynamic")
    shortened = next((s for s in symbols if s in floors), None)
    span = graph.root.span
    if shortened is not None:
        _, node, length = floors[shortened]
        span = node.span or span
        hint = f"{node.type_name} `{node.path}` makes a length of {length} of {shortened}; {hint}"
    return SpecError(f"torch.export cannot keep {named} dynamic in {graph.name}: {reason}", span,
                     path=graph.path, source=text, hint=hint)


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
    _write_archive(path, lambda f: torch.jit.save(scripted, f))


def _write_archive(path: str, save) -> None:
    """One of torch's zip archives (pt2, TorchScript): ``save`` writes it to memory, then its bytes go to
    ``path``. torch's archive writer, given a file, aborts Python when a write fails (a full disk)."""
    buffer = io.BytesIO()
    save(buffer)
    with _writing(path), open(path, "wb") as f:
        f.write(buffer.getbuffer())


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
    with _writing(path):  # the .onnx, and its .data beside it for weights past 2 GB
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
