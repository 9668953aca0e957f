"""``modelspec run``'s values: inputs read from a file and held to the spec; outputs shown as the tutorials print them.

``read_inputs(path, graph, limit) -> FileInputs`` reads a ``.pt`` file (``torch.load`` with ``weights_only=True``:
a tensor, a tuple or list of tensors, or a dict keyed by input name) or an ``.npz`` archive (``numpy.load`` with
``allow_pickle=False``: arrays keyed by input name, or ``arr_0``, ``arr_1``, ... in order). Nothing in a file is
ever run. Before a model is built, each tensor is held to its declared input: the count and the names, the rank,
every concrete dim, one size per symbol (the file sets it: ``B`` is the file's batch), the kind of its dtype (a
float64 array becomes the float32 the model takes; integers for a Float input are refused), and an Embedding's
index range. A misfit is an `InputFileError`: one line naming the input, what the spec declares and what the
file holds, and a hint.

``show_values(outputs, names, inputs) -> list[str]`` prints each input's and each output's first rows with torch's
own printing (a small sample, up to 3 dims and 100 values, in its own shape; a larger one flattened), saying what
was left out; ``output_names(graph, out)`` names each output as the spec's ``return`` does. Class scores get their
row sums (1: probabilities; else logits, and their softmax) and each row's predicted class (argmax): a 2-d float
output [B, C] that is the model's only output, or whose rows are probabilities or log-probabilities; another
output of several (a Sigmoid's, a ReLU's) is no class score.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field

from . import expr as E
from .budget import human_bytes
from .errors import did_you_mean
from .imports import not_a_spec_file, system_dir
from .model import ModelGraph, TensorInfo
from .pipeline import symbol_sizes
from .printer import source
from .shapes import Sym, evaluate, shape_str

SHOWN_ROWS = 5  # a few samples: the tutorials print one to three
SHOWN_COLUMNS = 10  # the tutorials' ten FashionMNIST classes, in full
SHAPED_VALUES = 100  # a sample of at most this many values (and 3 dims) is shown in its shape: 002's 2x2 pools
SHAPED_DIMS = 3
NAME_WIDTH = 40  # a returned expression longer than this names no output
SUM_TOLERANCE = 1e-3  # a row of probabilities sums to 1 within this (float32 softmax rows are within 1e-6)
MAX_PERMUTED_RANK = 6  # the hint "its dims are in another order" tries every order up to 6! = 720 of them
FILE_KINDS = (".pt", ".pth", ".npz")


class InputFileError(Exception):
    """An input file that cannot be read, or whose tensors do not fit the spec's inputs: one line to print."""


@dataclass
class FileInputs:
    """The tensors of an input file: one per declared input, in order, each of its declared dtype."""

    tensors: tuple
    sizes: dict[str, int]  # every symbol's size: those the tensors set, the others as `symbol_sizes` gives them
    batch: int | None  # the batch symbol's size (the first input's leading symbol), when there is one
    cast: dict[str, str] = field(default_factory=dict)  # input name -> its dtype in the file, where it was cast


def read_inputs(path: str, graph: ModelGraph, limit: int) -> FileInputs:
    """Read ``path`` and hold its tensors to ``graph``'s inputs (see the module's docstring); ``limit``
    bounds the bytes the file's tensors may take (the inputs count in ``Limits.max_activation_bytes``).

    >>> import os, tempfile, torch
    >>> from modelspec.pipeline import load_graph
    >>> graph = load_graph("model M(x: [B, 3]) { fc = Linear(_, 2) }")
    >>> path = os.path.join(tempfile.mkdtemp(), "x.pt")
    >>> torch.save(torch.ones(4, 3, dtype=torch.float64), path)
    >>> got = read_inputs(path, graph, 1 << 30)
    >>> got.batch, got.tensors[0].dtype, got.cast
    (4, torch.float32, {'x': 'float64'})
    >>> torch.save(torch.ones(3), path)
    >>> try:
    ...     read_inputs(path, graph, 1 << 30)
    ... except InputFileError as err:
    ...     print(str(err).removeprefix(path + ": "))
    the spec declares x: [B, 3]; the file holds [3]: add a batch dim: x.unsqueeze(0)
    """
    import torch

    tensors, cast, bound = [], {}, {}
    placed = _arrange(path, graph, _read(path, graph, limit))
    for (name, info), (where, value) in zip(graph.inputs, placed):
        t = _fit(path, name, info, where, value)
        for i, d in enumerate(info.shape):
            symbol = _plain_symbol(d.value)
            if symbol is None:
                continue
            if t.shape[i] < 1:
                raise InputFileError(f"{path}: {where} holds {list(t.shape)}, so {symbol} is {t.shape[i]}: "
                                     f"{name} holds no values: save at least one sample")
            if symbol in bound and bound[symbol][0] != t.shape[i]:
                size, other = bound[symbol]
                raise InputFileError(f"{path}: {where} holds {list(t.shape)}, so {symbol} is {t.shape[i]}, but "
                                     f"{symbol} is {size} in {other}: every input's {symbol} is one size")
            bound.setdefault(symbol, (t.shape[i], name))
        want = torch.float32 if info.dtype == "float" else torch.int64 if info.dtype == "long" else torch.bool
        if t.dtype != want:
            cast[name] = str(t.dtype).removeprefix("torch.")
        tensors.append(t.to(want))
    batch = _batch_symbol(graph)
    sizes = symbol_sizes(graph, bound[batch][0] if batch in bound else 1)
    sizes.update({s: size for s, (size, _) in bound.items()})
    for (name, info), (where, _), t in zip(graph.inputs, placed, tensors):
        for i, d in enumerate(info.shape):  # a dim computed from symbols (2 * T) once every symbol has its size
            if isinstance(d.value, Sym) and _plain_symbol(d.value) is None and evaluate(d.value, sizes) != t.shape[i]:
                raise InputFileError(f"{path}: the spec declares {_declared(name, info)}; {where} holds "
                                     f"{list(t.shape)}: dim {i} is {t.shape[i]}, but {d.value} is "
                                     f"{evaluate(d.value, sizes)} at {_at(d.value, sizes)}")
        _check_indices(path, name, where, t, graph.index_bounds.get(name))
    _check_sizes(path, graph, sizes)
    return FileInputs(tuple(tensors), sizes, bound[batch][0] if batch in bound else None, cast)


def _read(path: str, graph: ModelGraph, limit: int):
    """The file's payload, refused unless it is a regular file of a kind read here and within ``limit``."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FILE_KINDS:
        raise InputFileError(f"{path}: --input reads a .pt file (torch.save) or an .npz file (numpy.savez), not "
                             f"{suffix + ' files' if suffix else 'a file without a suffix'}")
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the file: {exc.strerror}") from None
    kind = not_a_spec_file(st)  # a FIFO would block the reader, /dev/zero never ends
    if kind is not None:
        raise InputFileError(f"{path}: this is {kind}, not a file of tensors")
    where = system_dir(os.path.realpath(path))
    if where is not None:
        raise InputFileError(f"{path}: this is a file under {where}, not a file of tensors")
    if suffix == ".npz":
        return _read_npz(path, graph, limit)
    _within(path, st.st_size, limit)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol of the file
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # torch.load's refusals come as UnpicklingError, EOFError, RuntimeError, ...
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the class or function the pickle would call
        if named or (zipfile.is_zipfile(path) and "Weights only load failed" in str(exc)):
            what = f" (it names the Python object {named.group(1)})" if named else ""
            raise InputFileError(f"{path} holds more than tensors{what}; modelspec loads only tensors and never "
                                 f"runs code from a file: save tensors: {_save_hint(path, graph)}") from None
        raise InputFileError(f"{path} is not a file torch.save wrote (or it is damaged): save the inputs with "
                             f"{_save_hint(path, graph)}") from None


def _read_npz(path: str, graph: ModelGraph, limit: int):
    """An .npz archive's arrays as tensors: a dict by name, or a list for numpy.savez's arr_0, arr_1, ..."""
    try:
        import numpy as np
    except ImportError:
        raise InputFileError(f"{path}: reading an .npz file needs numpy, which is not installed: pip install numpy, "
                             "or save the inputs with torch.save as a .pt file") from None
    import torch

    try:
        with zipfile.ZipFile(path) as z:  # the sizes the arrays will take, from the archive's directory
            _within(path, sum(info.file_size for info in z.infolist()), limit)
        with np.load(path, allow_pickle=False) as arrays:
            got = {name: arrays[name] for name in arrays.files}
    except InputFileError:
        raise
    except Exception as exc:  # a damaged archive, an array of Python objects (allow_pickle=False refuses it), ...
        raise InputFileError(f"{path} is not an .npz archive numpy can read without pickle ({exc}): save the "
                             "inputs with numpy.savez(path, x=x)") from None
    tensors = {}
    for name, array in got.items():
        try:
            tensors[name] = torch.from_numpy(array)
        except TypeError:
            raise InputFileError(f"{path}: the array {name!r} holds {getattr(array, 'dtype', type(array).__name__)} "
                                 "values, not numbers") from None
    positional = [f"arr_{i}" for i in range(len(tensors))]  # what numpy.savez(path, x, y) names them
    if tensors and set(tensors) == set(positional) and not set(positional) & set(_names(graph)):
        return [tensors[key] for key in positional]
    return tensors


def _within(path: str, size: int, limit: int) -> None:
    if size > limit:
        raise InputFileError(f"{path} is {human_bytes(size)}, over the limit of {human_bytes(limit)} on a model's "
                             "inputs and activations: pass a smaller file, or raise the limit with --max-activations")


def _arrange(path: str, graph: ModelGraph, obj) -> list[tuple[str, object]]:
    """(where in the file, value) for each declared input, in order."""
    import torch

    names = _names(graph)
    if isinstance(obj, torch.Tensor):
        obj = [obj]
    if isinstance(obj, (tuple, list)):
        if len(obj) != len(names):
            held = f"{len(obj)} tensor{'s' if len(obj) != 1 else ''}"
            raise InputFileError(f"{path} holds {held}, but {graph.name} takes {len(names)} input"
                                 f"{'s' if len(names) != 1 else ''} ({_declared_all(graph)}): save one tensor per "
                                 f"input: {_save_hint(path, graph)}")
        return [("the file" if len(obj) == 1 else f"the file's tensor {i}", v) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        keys = [str(k) for k in obj]
        for name in names:
            if name not in obj:
                raise InputFileError(f"{path} holds no tensor {name!r} for the input "
                                     f"{_declared(name, _info(graph, name))}; it holds: "
                                     f"{', '.join(map(repr, keys)) or 'nothing'}: "
                                     f"{did_you_mean(name, keys) or 'key each tensor by its input name'}")
        for key in obj:
            if key not in names:
                raise InputFileError(f"{path} holds {str(key)!r}, which is no input of {graph.name} (its inputs: "
                                     f"{', '.join(names)}): save only the inputs, keyed by name")
        return [(f"the file's {name!r}", obj[name]) for name in names]
    raise InputFileError(f"{path} holds a Python {type(obj).__name__}, not tensors: save the inputs with "
                         f"{_save_hint(path, graph)}")


def _fit(path: str, name: str, info: TensorInfo, where: str, value):
    """``value``, a tensor of ``info``'s rank, concrete dims and dtype kind, or an `InputFileError`."""
    import torch

    declared = _declared(name, info)
    if not isinstance(value, torch.Tensor):
        raise InputFileError(f"{path}: the spec declares {declared}; {where} is a Python {type(value).__name__}, "
                             "not a tensor")
    if value.layout != torch.strided:
        raise InputFileError(f"{path}: {where} is a sparse tensor ({declared}): save it dense: {name}.to_dense()")
    dims = [d.value if isinstance(d.value, int) else None for d in info.shape]  # None: a symbol, any size
    shape = tuple(value.shape)
    held = f"{path}: the spec declares {declared}; {where} holds {list(shape)}"
    if len(shape) != len(dims):
        raise InputFileError(f"{held}: {_reshape_hint(name, dims, shape)}")
    for i, (d, s) in enumerate(zip(dims, shape)):
        if d is not None and d != s:
            raise InputFileError(f"{held}, and dim {i} is {s}, not {d}: {_reorder_hint(name, info, dims, shape)}")
    kind = "float" if value.is_floating_point() else "bool" if value.dtype == torch.bool else \
        "complex" if value.is_complex() else "long"
    if kind != info.dtype:
        dtype = str(value.dtype).removeprefix("torch.")
        pixels = f"{name}.float() / 255 (pixels 0..255 scaled to 0..1, as ToTensor does)"
        convert = {"float": pixels if value.dtype == torch.uint8 else f"{name}.float()",
                   "long": f"indices are whole numbers: {name}.long()", "bool": f"{name}.bool()"}[info.dtype]
        raise InputFileError(f"{path}: the spec declares {declared}; {where} holds {dtype} values: {convert}, or "
                             "declare the input as the file holds it")
    return value


def _reshape_hint(name: str, dims: list, shape: tuple) -> str:
    """How to give a tensor of another rank the declared one: add or drop size-1 dims, or reshape."""
    fits = lambda s: len(s) == len(dims) and all(d is None or d == x for d, x in zip(dims, s))
    missing = len(dims) - len(shape)
    if missing > 0 and fits((1,) * missing + shape):
        if missing == 1:
            return f"add a batch dim: {name}.unsqueeze(0)"
        return f"add {missing} leading dims of size 1: {name}.reshape({', '.join(map(str, (1,) * missing + shape))})"
    if missing < 0 and shape[:-missing] == (1,) * -missing and fits(shape[-missing:]):
        if missing == -1:
            return f"drop the leading dim of size 1: {name}.squeeze(0)"
        return f"drop the leading dims of size 1: {name}.reshape({', '.join(map(str, shape[-missing:]))})"
    free, known = dims.count(None), math.prod(d for d in dims if d is not None)
    if free == 1 and math.prod(shape) % known == 0 and math.prod(shape):
        return f"reshape it: {name}.reshape({', '.join('-1' if d is None else str(d) for d in dims)})"
    return f"reshape it to {len(dims)} dims, or declare the input as the file holds it"


def _reorder_hint(name: str, info: TensorInfo, dims: list, shape: tuple) -> str:
    """How to make a tensor of the declared rank fit: its dims in another order, or another declaration."""
    fits = lambda s: all(d is None or d == x for d, x in zip(dims, s))
    if len(dims) <= MAX_PERMUTED_RANK:
        for order in itertools.permutations(range(len(dims))):
            if fits([shape[i] for i in order]):
                return f"its dims are in another order: {name}.permute({', '.join(map(str, order))})"
    fitted = [f"{d.value}" if isinstance(d.value, Sym) else str(s) for d, s in zip(info.shape, shape)]
    return f"resize the data, or declare the input as the file holds it: {name}: [{', '.join(fitted)}]"


def _check_indices(path: str, name: str, where: str, t, bound: int | None) -> None:
    """Indices into an Embedding must lie below its row count, as torch would refuse them mid-forward."""
    if bound is None or not t.numel():
        return
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= bound:
        raise InputFileError(f"{path}: {where} holds indices from {low} to {high}, but the Embedding that {name} feeds "
                             f"has {bound} rows (0 to {bound - 1}): keep the indices below {bound}")


def _check_sizes(path: str, graph: ModelGraph, sizes: dict[str, int]) -> None:
    """Every module's output must have sizes of at least 1 at the file's sizes, as at the example sizes the
    spec was checked at: a file's short sequence can leave a Conv1d's kernel longer than its input."""
    nodes = list(graph.root.walk())
    for node in nodes[1:] + nodes[:1]:  # the model's own outputs last: a layer inside names the culprit
        for info in node.outputs:
            for d in info.shape:
                if isinstance(d.value, Sym) and d.value.symbols <= set(sizes) and evaluate(d.value, sizes) < 1:
                    what = f"{node.type_name} `{node.path}`" if node.path else f"{graph.name}'s output"
                    raise InputFileError(f"{path}: at {_at(d.value, sizes)}, {what} gives "
                                         f"{shape_str(info.shape)}, and {d.value} is {evaluate(d.value, sizes)}: "
                                         "the file's inputs are too small for the model")


def _plain_symbol(v) -> str | None:
    """The symbol a dim is, when it is one symbol alone (B, not 2 * T)."""
    if isinstance(v, Sym) and len(v.terms) == 1:
        (mono, coef), = v.terms.items()
        if coef == 1 and len(mono) == 1 and isinstance(mono[0], str):
            return mono[0]
    return None


def _batch_symbol(graph: ModelGraph) -> str | None:
    """The first input's leading symbol, when it has no example size: the batch, as `symbol_sizes` says."""
    first = graph.inputs[0][1].shape if graph.inputs else ()
    symbol = _plain_symbol(first[0].value) if first else None
    return symbol if symbol is not None and graph.symbols.get(symbol) is None else None


def _at(v: Sym, sizes: dict[str, int]) -> str:
    return ", ".join(f"{s}={sizes[s]}" for s in sorted(v.symbols))


def _names(graph: ModelGraph) -> list[str]:
    return [name for name, _ in graph.inputs]


def _info(graph: ModelGraph, name: str) -> TensorInfo:
    return dict(graph.inputs)[name]


def _declared(name: str, info: TensorInfo) -> str:
    """An input as the spec declares it: ``x: [B, 1, 28, 28]``, ``ids: Long[B, T]``."""
    return f"{name}: {'' if info.dtype == 'float' else info.dtype.capitalize()}{shape_str(info.shape)}"


def _declared_all(graph: ModelGraph) -> str:
    return ", ".join(_declared(name, info) for name, info in graph.inputs) or "none"


def _save_hint(path: str, graph: ModelGraph) -> str:
    file = os.path.basename(path)
    names = _names(graph)
    if len(names) == 1:
        return f"torch.save({names[0]}, {file!r})"
    return f"torch.save({{{', '.join(f'{n!r}: {n}' for n in names)}}}, {file!r})"


def show_values(outputs, names=(), inputs=()) -> list[str]:
    """Lines showing each input's values (``inputs``: (name, tensor) pairs), then each output's: a header with
    its name in the spec where ``names`` has one, its first rows, and for class scores [B, C] their row sums,
    the softmax of logits and the predicted class of each row.

    >>> import torch
    >>> print("\\n".join(show_values([torch.tensor([[2.0, 1.0, 0.1], [0.0, 0.0, 3.0]])], ["logits"])))
    output 0 (logits): [2, 3] float32
      tensor([[2.0000, 1.0000, 0.1000],
              [0.0000, 0.0000, 3.0000]])
      row sums: tensor([3.1000, 3.0000])
      the rows do not sum to 1: if these are class scores, they are logits, not probabilities
      softmax(dim=1), the probability of each class:
      tensor([[0.6590, 0.2424, 0.0986],
              [0.0453, 0.0453, 0.9094]])
      row sums after softmax: tensor([1.0000, 1.0000])
      predicted class (argmax of each row): tensor([0, 2])
    >>> print("\\n".join(show_values([torch.tensor([[0.5, 0.7]]), torch.tensor([[0.25, 0.75]])])))
    output 0: [1, 2] float32
      tensor([[0.5000, 0.7000]])
    <BLANKLINE>
    output 1: [1, 2] float32
      tensor([[0.2500, 0.7500]])
      row sums: tensor([1.])
      every row sums to 1: these are probabilities (a softmax's output)
      predicted class (argmax of each row): tensor([1])
    """
    blocks = [_value_lines(f"input {name}", t.detach().cpu()) for name, t in inputs]
    for i, t in enumerate(outputs):
        t, name = t.detach().cpu(), names[i] if i < len(names) else None
        lines = _value_lines(f"output {i}" + (f" ({name})" if name else ""), t)
        if t.dim() == 2 and t.is_floating_point() and t.shape[1] >= 2 and t.shape[0]:
            lines += _class_score_lines(t[:SHOWN_ROWS], t, t.shape[1] > SHOWN_COLUMNS, len(outputs) == 1)
        blocks.append(lines)
    return [line for i, block in enumerate(blocks) for line in ([""] if i else []) + block]


def _value_lines(label: str, t) -> list[str]:
    """A tensor's header and its first rows: a small sample in its own shape, a larger one flattened."""
    head = f"{label}: {list(t.shape)} {str(t.dtype).removeprefix('torch.')}"
    if t.dim() == 0 or not t.numel():
        return [head, *_indented(t)]
    n, sample = t.shape[0], list(t.shape[1:])
    if t.dim() > 2 and len(sample) <= SHAPED_DIMS and math.prod(sample) <= SHAPED_VALUES:
        cut = f" (the first {SHOWN_ROWS} of {n} samples)" if n > SHOWN_ROWS else ""
        return [head + cut, *_indented(t[:SHOWN_ROWS])]
    rows = t.reshape(1, -1) if t.dim() == 1 else t.reshape(n, -1)  # a larger sample's [C, H, W] as one row
    n, width = rows.shape
    shown = rows[:SHOWN_ROWS, :SHOWN_COLUMNS]
    what = "values" if t.dim() != 2 else "columns"
    left_out = ([f"the first {SHOWN_ROWS} of {n} rows"] if n > SHOWN_ROWS else []) + \
               ([f"the first {SHOWN_COLUMNS} of {width} {what}"] if width > SHOWN_COLUMNS else [])
    if t.dim() > 2:
        left_out.insert(0, f"each row one sample's {sample} flattened")
    return [head + (f" ({', '.join(left_out)})" if left_out else ""), *_indented(shown if t.dim() > 1 else shown[0])]


def _class_score_lines(shown, t, cut: bool, only: bool) -> list[str]:
    """Row sums, whether the rows are probabilities, the softmax of logits, and the predicted classes; for
    one output of several (``only`` false), nothing unless its rows are probabilities or log-probabilities."""
    import torch

    sums = shown.sum(dim=1)
    over = f" (over all {t.shape[1]} columns)" if cut else ""
    finite = bool(torch.isfinite(t).all())
    ones = lambda s: bool(torch.allclose(s, torch.ones_like(s), atol=SUM_TOLERANCE))
    probabilities = finite and bool((t >= 0).all()) and ones(t.sum(dim=1))
    log = not probabilities and finite and bool((t <= 0).all()) and ones(t.exp().sum(dim=1))
    if not (only or probabilities or log):
        return []
    lines = [f"  row sums{over}: {_flat_repr(sums)}"]
    if probabilities:
        made = "the model ends in a softmax" if only else "a softmax's output"
        lines.append(f"  every row sums to 1: these are probabilities ({made})")
    else:
        probs = shown.exp() if log else torch.softmax(shown, dim=1)
        lines += ["  the rows do not sum to 1, but their exps do: these are log-probabilities (log_softmax)" if log
                  else "  the rows do not sum to 1: if these are class scores, they are logits, not probabilities",
                  f"  {'exp' if log else 'softmax(dim=1)'}, the probability of each class:",
                  *_indented(probs[:, :SHOWN_COLUMNS]),
                  f"  row sums after {'exp' if log else 'softmax'}: {_flat_repr(probs.sum(dim=1))}"]
    lines.append(f"  predicted class (argmax of each row): {_flat_repr(shown.argmax(dim=1))}")
    return lines


def output_names(graph: ModelGraph, out) -> list[str | None]:
    """Each output's name as the model's ``return`` spells it, one per tensor of ``out`` (the forward's
    result, a tensor or nested tuples of them) in order; None where there is none to give (a model without
    a forward, an expression over 40 characters): a name a tuple was assigned to gives its items' names
    (``images = (maxed, pooled)``), else ``images[0]``.

    >>> from modelspec.pipeline import load_graph
    >>> graph = load_graph("model M(x: [B, 3]) {\\n relu = ReLU()\\n forward(x) {\\n y = x * 2\\n"
    ...                    " pair = (y, x)\\n return relu(x), pair\\n }\\n}")
    >>> output_names(graph, (1, (2, 3)))
    ['relu(x)', 'y', 'x']
    """
    cls = graph.classes[-1]
    lines = cls.forward_lines
    returns = [ln.stmt for ln in lines if isinstance(ln.stmt, E.Return)]
    if cls.base == "nn.Sequential":  # no forward in the spec: its `return x` is none of the spec's names
        returns = []
    once: dict[str, object] = {}  # a name assigned once in forward, to the value it holds
    seen: set[str] = set()
    for ln in lines:
        for target in _targets(ln.stmt):
            plain = isinstance(ln.stmt, E.Assign) and isinstance(ln.stmt.target, str)
            once[target] = ln.stmt.value if plain and target not in seen else None
            seen.add(target)
    if len(returns) != 1 or not returns[0].values:
        return [None] * _count(out)
    values = returns[0].values
    top = values[0] if len(values) == 1 else E.TupleExpr(tuple(values))
    return _names_of(top, out, None, once)


def _names_of(node, value, label: str | None, once: dict) -> list[str | None]:
    if not isinstance(value, (tuple, list)):
        return [label if node is None else _spelled(node)]
    items = node
    if isinstance(items, E.Name) and isinstance(once.get(items.id), (E.TupleExpr, E.ListExpr)):
        label, items = items.id, once[items.id]
    if isinstance(items, (E.TupleExpr, E.ListExpr)) and len(items.items) == len(value) and \
            not any(isinstance(item, E.Starred) for item in items.items):
        return [n for item, v in zip(items.items, value) for n in _names_of(item, v, None, once)]
    label = _spelled(node) if node is not None else label
    return [n for j, v in enumerate(value)
            for n in _names_of(None, v, f"{label}[{j}]" if label else None, once)]


def _targets(stmt) -> list[str]:
    if isinstance(stmt, E.Assign):
        return list(_target_names(stmt.target))
    if isinstance(stmt, E.ForHead):
        return list(_target_names(stmt.var))
    return []


def _target_names(target):
    if isinstance(target, str):
        yield target
    else:
        for t in target:
            yield from _target_names(t)


def _spelled(node) -> str | None:
    """An expression as the spec writes it (``self.fc(x)`` is ``fc(x)``); None when it is too long to name."""
    text = re.sub(r"\bself\.", "", source(node))
    return text if len(text) <= NAME_WIDTH else None


def _count(value) -> int:
    return sum(map(_count, value)) if isinstance(value, (tuple, list)) else 1


def _indented(t) -> list[str]:
    return [f"  {line}" if line.strip() else "" for line in repr(t).splitlines()]  # a 4-d one's gaps: no spaces


def _flat_repr(t) -> str:
    return " ".join(line.strip() for line in repr(t).splitlines())


def flat(outputs):
    """The tensors of a forward's output, nested tuples and lists opened, in order."""
    for x in outputs:
        if isinstance(x, (tuple, list)):
            yield from flat(x)
        else:
            yield x
