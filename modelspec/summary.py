"""Model graph -> a summary: every module's output shape, parameters, kernel and mult-adds, and the totals.

Computed from the model graph alone, before a tensor exists and without torch.
`summarize(spec)` returns a `Summary`: ``str(summary)`` is the table that
``modelspec summary`` prints, ``summary.to_dict()`` the JSON of ``--json``.
When a spec fails part-way, ``summarize(spec, partial=True)`` still gives the
rows of every module built before the error, and the error.

Mult-adds (MACs, multiply-accumulates) count the compute that matters, each
derived analytically in the layer catalog or the op table: Linear, Bilinear,
Conv*, ConvTranspose*, matmul/bmm/``@``, attention (the q/k/v and output
projections and both matmuls, QK^T and AV) and recurrent layers (every gate of
every time step, layer and direction). Elementwise work (activations, norms,
pooling, ``+``) is not counted, as torch's FlopCounterMode does not count it
either. FLOPs = 2 x MACs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

from .budget import forward_memory, human_bytes, runs, size_at, total
from .diagnostics import from_error
from .errors import SpecError
from .keyargs import kernel_text
from .model import ModelGraph, ModuleNode, TensorInfo
from .pipeline import load_graph, symbol_sizes
from .shapes import shape_str



@dataclass
class Row:
    """One module of the table: a layer, a container, a block, or the model itself (depth 0)."""

    path: str  # "layer1.0.conv1"; "" for the model
    name: str  # "conv1"; the model's name for the model
    type_name: str  # "Conv2d", "BasicBlock", "Sequential"
    kind: str  # "layer" | "block" | "sequential" | "modulelist" | "moduledict" | "model"
    depth: int
    output: str  # "[B, 20, 24, 24]"; "" when unknown
    output_sizes: list  # the output shapes at the summary's batch size, as lists of ints
    params: int  # its own parameters, or its whole subtree's when collapsed
    trainable: int
    kernel: str | None  # "5x5"
    macs: int | None  # None: depends on a size the summary cannot evaluate
    collapsed: bool = False  # deeper modules hidden (--depth): params and MACs are the subtree's
    expanded: bool = False  # its children are rows of their own
    failed: bool = False  # the module where elaboration stopped (a partial summary)
    incomplete: bool = False  # a container whose building the error interrupted
    built: bool = True  # False: the module the error stopped before it was built (its numbers unknown)
    tied: bool = False  # a parameter of its own is another module's (weight tying), counted there
    shared: str | None = None  # the path of the module it is: a child its container holds again, counted there
    line: int | None = None  # the line of the spec's own file that makes it (inside an imported block: the line
    # that calls the block); None where the spec does not say (a model built in Python)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "name": self.name, "type": self.type_name, "kind": self.kind, "depth": self.depth,
            "output_shape": self.output, "output_sizes": self.output_sizes, "params": self.params,
            "trainable_params": self.trainable, "kernel_size": self.kernel, "mult_adds": self.macs,
            "collapsed": self.collapsed, "failed": self.failed, "line": self.line,
        }


@dataclass
class Summary:
    """What ``modelspec summary`` shows, as data; ``str()`` gives the table.

    Totals cover every module whatever ``depth`` shows. Memory is estimated
    for float32 at ``batch``: parameters and buffers, the inputs, and the
    forward activations (the outputs of every call of every layer, which
    training keeps for backward).
    """

    name: str
    inputs: list[tuple[str, TensorInfo]]
    outputs: list[TensorInfo]
    batch: int
    depth: int | None
    rows: list[Row]
    total_params: int
    trainable_params: int
    total_mult_adds: int | None
    input_bytes: int | None
    activation_bytes: int | None
    param_bytes: int
    buffer_bytes: int
    error: SpecError | None = None  # set for a partial summary: the error that stopped elaboration
    sizes: dict = field(default_factory=dict)  # the symbols' sizes used: {"B": 1, "T": 128}
    train: list = field(default_factory=list)  # the train section's settings, (name, value) rows, if it has one
    warnings: list = field(default_factory=list)  # the spec's SpecWarnings (modelspec.errors.WARNINGS)
    path: str | None = None  # the spec's file: a warning elsewhere (in an imported block) names its own

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_flops(self) -> int | None:
        return None if self.total_mult_adds is None else 2 * self.total_mult_adds

    @property
    def total_bytes(self) -> int | None:
        if self.input_bytes is None or self.activation_bytes is None:
            return None
        return self.input_bytes + self.activation_bytes + self.param_bytes + self.buffer_bytes

    @property
    def complete(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return self.table()

    def table(self, *, with_error: bool = True) -> str:
        """The table; a partial summary ends with its error unless ``with_error=False``."""
        return render_table(self, with_error=with_error)

    def to_dict(self) -> dict:
        err = self.error
        return {
            "model": self.name,
            "batch": self.batch,
            "depth": self.depth,
            "symbols": dict(self.sizes),
            "inputs": [{"name": n, "shape": shape_str(t.shape), "sizes": _sizes_of(t, self.sizes), "dtype": t.dtype}
                       for n, t in self.inputs],
            "outputs": [{"shape": shape_str(t.shape), "sizes": _sizes_of(t, self.sizes), "dtype": t.dtype}
                        for t in self.outputs],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_mult_adds": self.total_mult_adds,
            "total_flops": self.total_flops,
            "memory_bytes": {"input": self.input_bytes, "activations": self.activation_bytes,
                             "params": self.param_bytes, "buffers": self.buffer_bytes, "total": self.total_bytes},
            "rows": [r.to_dict() for r in self.rows],
            "train": dict(self.train) if self.train else None,
            # as `check --format json` reports them (modelspec/diagnostics.py), the path null in the spec's own file
            "warnings": [self._diagnostic(w) for w in self.warnings],
            "complete": self.complete,
            "error": None if err is None else {**self._diagnostic(err), "text": err.render()},
        }

    def _diagnostic(self, err: SpecError) -> dict:
        found = from_error(err).to_dict()
        if found["path"] == self.path:
            found["path"] = None
        return found

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


# ---------------------------------------------------------------- building a summary
def summarize(spec, *, batch: int = 1, depth: int | None = None, model: str | None = None,
              partial: bool = False, limits=None) -> Summary:
    """Summarise a spec (a path, spec text, or an elaborated `ModelGraph`).

    With ``partial=True``, a spec whose elaboration fails after building
    some modules gives a `Summary` of those, with ``.error`` set, instead of
    raising; an error before any module exists (a syntax error) still raises.

    >>> s = summarize("model M(x: [B, 4]) { fc = Linear(_, 2) }", batch=3)
    >>> s.total_params, s.total_mult_adds
    (10, 24)
    >>> print(s.rows[1].name, s.rows[1].output, s.rows[1].macs)
    fc [B, 2] 24
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth!r}")
    if isinstance(spec, ModelGraph):
        graph = spec
    else:
        try:
            graph = load_graph(spec, model=model, limits=limits)
        except SpecError as err:
            built = getattr(err, "built", None)
            if not partial or not built or len(built) < 2:
                raise
            return _partial_summary(built, getattr(err, "symbols", {}), err, batch, depth)
    root = graph.root
    sizes = _symbol_sizes(graph.inputs, graph.symbols, batch)
    s = _summary(graph.name, list(graph.inputs), list(graph.outputs), root, lambda n: n.children,
                 sizes, batch, depth)
    if graph.train is not None:
        s.train = graph.train.describe()
    s.warnings, s.path = list(graph.warnings), graph.path
    return s


def _partial_summary(built: list[ModuleNode], symbols: dict, err: SpecError, batch: int, depth) -> Summary:
    """The modules built before the error, as a tree rebuilt from their paths."""
    root = built[0]
    children: dict[str, list[ModuleNode]] = {}
    for node in built[1:]:
        parent = node.path.rsplit(".", 1)[0] if "." in node.path else ""
        children.setdefault(parent, []).append(node)
    inputs = [(t.source or f"input{i}", t) for i, t in enumerate(root.inputs)]
    sizes = _symbol_sizes(inputs, symbols, batch)
    s = _summary(root.name, inputs, [], root, lambda n: children.get(n.path, []), sizes, batch, depth)
    s.error = err
    last = built[-1]
    for r in s.rows:
        if r.path == last.path and last.kind == "layer" and not last.outputs:
            r.failed = True
            r.built = last.layer is not None  # built and failed when called, or failed to build
        elif r.kind != "layer" and not r.output and r.path != "":
            r.incomplete = True
    return s




def _times(macs, runs: int):
    return None if macs is None else macs * runs


def _summary(name, inputs, outputs, root: ModuleNode, children_of, sizes, batch, depth) -> Summary:
    every = list(_subtree(root, children_of))
    rows: list[Row] = []
    times = runs(every)

    def visit(node: ModuleNode, d: int, line: int | None, foreign: bool = False):
        kids = children_of(node)
        collapse = bool(kids) and depth is not None and d >= depth
        members = list(_subtree(node, children_of)) if collapse else [node]
        rows.append(Row(
            path=node.path, name=node.name, type_name=node.type_name, kind=node.kind, depth=d,
            output=", ".join(shape_str(t.shape) for t in node.outputs),
            output_sizes=[_sizes_of(t, sizes) for t in node.outputs],
            params=sum(m.params for m in members), trainable=sum(m.trainable for m in members),
            kernel=kernel_text(node.args) if node.kind == "layer" else None,
            macs=total(_times(size_at(m.macs, sizes), times[m.path]) for m in members),
            collapsed=collapse, expanded=bool(kids) and not collapse, tied=bool(node.tied), shared=node.shared,
            line=line,
        ))
        if not collapse:
            foreign |= node.imported  # inside a block of another file: its lines are not the spec's
            for c in kids:
                visit(c, d + 1, line if foreign or c.span is None else c.span.line, foreign)

    visit(root, 0, root.span.line if root.span is not None else None)
    input_bytes, activation_bytes = forward_memory([t for _, t in inputs], every, sizes)
    return Summary(
        name=name, inputs=inputs, outputs=outputs, batch=batch, depth=depth, rows=rows,
        total_params=sum(n.params for n in every), trainable_params=sum(n.trainable for n in every),
        total_mult_adds=total(_times(size_at(n.macs, sizes), times[n.path]) for n in every),
        input_bytes=input_bytes, activation_bytes=activation_bytes,
        param_bytes=4 * sum(n.params for n in every), buffer_bytes=4 * sum(n.buffers for n in every),
        sizes=sizes,
    )


def _subtree(node: ModuleNode, children_of):
    yield node
    for c in children_of(node):
        yield from _subtree(c, children_of)


def _symbol_sizes(inputs, symbols: dict, batch: int) -> dict[str, int]:
    return symbol_sizes(SimpleNamespace(inputs=inputs, symbols=symbols), batch)






def _sizes_of(t: TensorInfo, sizes) -> list:
    return [size_at(d, sizes) for d in t.shape]




# ---------------------------------------------------------------- the table
HEADER = ("Layer (type)", "Output shape", "Params", "Trainable", "Kernel", "Mult-adds (MACs)")


def render_table(s: Summary, *, with_error: bool = True) -> str:
    """The summary as text, like torchinfo's table.

    >>> print(render_table(summarize("model M(x: [B, 4]) { fc = Linear(_, 2) }")).splitlines()[5])
      fc (Linear)               [B, 2]                  10  yes        --                     8
    """
    body = [table_cells(r) for r in s.rows]
    widths = [max([len(HEADER[i])] + [len(b[i]) for b in body]) for i in range(len(HEADER))]
    widths[0] = max(widths[0], 26)
    widths[1] = max(widths[1], 18)

    def line(cells):
        left = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}  "
        return (left + f"{cells[3]:<{widths[3]}}  {cells[4]:<{widths[4]}}  {cells[5]:>{widths[5]}}").rstrip()

    rule = "-" * len(line(HEADER))
    ins = ", ".join(f"{n}: {shape_str(t.shape)}" for n, t in s.inputs)
    outs = ", ".join(shape_str(t.shape) for t in s.outputs)
    head = f"{s.name}({ins})" + (f" -> {outs}" if outs else "")
    out = [head, "=" * len(rule), line(HEADER), rule] + [line(b) for b in body] + [rule]
    if s.error is not None:
        out.append("Stopped at the error below; the totals count the modules above.")
    out.append(f"Total params: {s.total_params:,}")
    out.append(f"Trainable params: {s.trainable_params:,}")
    out.append(f"Non-trainable params: {s.non_trainable_params:,}")
    symbols = ", ".join(f"{k}={v}" for k, v in s.sizes.items())
    if s.total_mult_adds is None:
        out.append(f"Mult-adds (batch {s.batch}): unknown (a size is symbolic)")
    else:
        out.append(f"Mult-adds (batch {s.batch}): {s.total_mult_adds:,} MACs ({_si(s.total_mult_adds)}); "
                   f"FLOPs = 2 x MACs = {_si(2 * s.total_mult_adds)}")
    out.append(rule)
    out.append(f"Estimated memory at {symbols or f'batch {s.batch}'}, float32:")
    out.append(f"  Input size: {human_bytes(s.input_bytes)}")
    out.append(f"  Forward activations (every layer's output): {human_bytes(s.activation_bytes)}")
    out.append(f"  Params size: {human_bytes(s.param_bytes)}"
               + (f", buffers {human_bytes(s.buffer_bytes)}" if s.buffer_bytes else ""))
    out.append(f"  Estimated total: {human_bytes(s.total_bytes)}")
    out.append(rule)
    if s.train:
        out.append("Training:")
        width = max(len(k) for k, _ in s.train)
        out += [f"  {k + ':':<{width + 1}} {v}" for k, v in s.train]
        out.append(rule)
    if with_error and s.error is not None:
        out.append(s.error.render())
    return "\n".join(out)


def table_cells(r: Row) -> tuple[str, ...]:
    """A row's cells in the table, as `render_table` prints them (and the playground shows them)."""
    label = f"{r.name} ({'model' if r.kind == 'model' else r.type_name})"
    name = "  " * r.depth + label
    if r.shared is not None:
        name += f" = {r.shared}"  # the same module as that row: `nn.Sequential(self.flatten, ...)`
    if r.collapsed:
        name += " ..."  # deeper modules hidden: the numbers are its subtree's
    if r.failed:
        output = "error, see below"
    elif r.incomplete:
        output = "(stopped inside)"
    else:
        output = r.output or "--"
    own_nothing = r.expanded and r.params == 0
    params = "--" if own_nothing or not r.built or r.shared is not None else f"{r.params:,}"
    if r.shared is not None:
        trainable = "shared"  # its parameters are the child's, counted at the child's row
    elif r.tied and r.params == 0:
        trainable = "tied"  # its parameters are another module's, counted there
    elif r.params == 0:
        trainable = "--"
    else:
        trainable = "yes" if r.trainable == r.params else "no" if r.trainable == 0 else "partial"
    macs = "?" if r.macs is None else "--" if r.macs == 0 else f"{r.macs:,}"
    return (name, output, params, trainable, r.kernel or "--", macs)


def _si(n: int) -> str:
    for unit, scale in (("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)

