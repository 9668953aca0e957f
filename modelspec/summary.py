"""Model graph -> a per-layer table: output shape, parameters, mult-adds.

Computed from shapes alone, without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelGraph, ModuleNode
from .shapes import Sym, shape_str


@dataclass
class Row:
    path: str
    depth: int
    type_name: str
    output: str
    params: int
    macs: int | None


def _eval(v, sizes) -> int | None:
    from .api import _eval_dim

    if isinstance(v, int):
        return v
    if isinstance(v, Sym):
        try:
            return _eval_dim(v, sizes)
        except KeyError:
            return None
    return None


def rows(graph: ModelGraph, *, batch: int = 1, depth: int | None = None) -> list[Row]:
    from .api import symbol_sizes

    sizes = symbol_sizes(graph, batch)
    out: list[Row] = []

    def visit(node: ModuleNode):
        if node.kind != "model" and (depth is None or node.depth <= depth):
            shown = ", ".join(shape_str(t.shape) for t in node.outputs) or "-"
            sub = list(node.walk()) if depth is not None and node.depth == depth else [node]
            params = sum(n.params for n in sub) if sub != [node] else node.params
            macs = [_eval(n.macs, sizes) for n in sub]
            out.append(Row(node.path, node.depth, node.type_name, shown, params,
                           None if any(m is None for m in macs) else sum(macs)))
        for c in node.children:
            visit(c)

    visit(graph.root)
    return out


def summary_table(graph: ModelGraph, *, batch: int = 1, depth: int | None = None) -> str:
    """The summary as text.

    >>> from modelspec import elaborate_spec
    >>> print(summary_table(elaborate_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }")).splitlines()[2])
    fc (Linear)                 [B, 2]          10           8
    """
    table = rows(graph, batch=batch, depth=depth)
    header = ("Layer (type)", "Output shape", "Params", "Mult-adds")
    body = []
    for r in table:
        name = "  " * (r.depth - 1) + f"{r.path.rsplit('.', 1)[-1]} ({r.type_name})"
        body.append((name, r.output, f"{r.params:,}", "-" if r.macs is None else f"{r.macs:,}"))
    widths = [max([len(header[i])] + [len(b[i]) for b in body]) for i in range(4)]
    widths[0] = max(widths[0], 26)
    widths[1] = max(widths[1], 14)

    def fmt(cells):
        return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}  {cells[3]:>{widths[3]}}"

    rule = "-" * len(fmt(header))
    lines = [fmt(header), rule] + [fmt(b) for b in body] + [rule]
    total = graph.total_params
    trainable = sum(n.trainable for n in graph.root.walk())
    macs = [r.macs for r in rows(graph, batch=batch) if r.macs is not None]
    from .api import symbol_sizes

    extra = _eval(graph.root.macs, symbol_sizes(graph, batch)) or 0
    lines.append(f"Total params: {total:,}")
    lines.append(f"Trainable params: {trainable:,}")
    lines.append(f"Non-trainable params: {total - trainable:,}")
    lines.append(f"Mult-adds (batch {batch}): {sum(macs) + extra:,}")
    ins = ", ".join(f"{n}: {shape_str(t.shape)}" for n, t in graph.inputs)
    outs = ", ".join(shape_str(t.shape) for t in graph.outputs)
    lines.insert(0, f"{graph.name}({ins}) -> {outs}")
    return "\n".join(lines)
