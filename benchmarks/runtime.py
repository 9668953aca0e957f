"""Run-time overhead: forward latency of the compiled module against the hand-written one.

For each bundled spec with a hand-written reference, the compiled module's
weights are loaded into the reference (``strict=True``), outputs are checked
to agree, and then the modelspec module, the reference and the
interpreter-style forward (`reference.Interpreted`) are timed in interleaved
rounds, eager and under ``torch.compile``.

On a CUDA GPU (batch 1 and 128, eager and torch.compile, wall clock after
``torch.cuda.synchronize``; without a GPU the table says "not measured"),
one command of a few minutes; ``--device cpu,cuda`` prints the CPU table beside it:

    .venv/bin/python -m benchmarks --only runtime --device cuda --compile --markdown cuda.md
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from typing import Callable

from .measure import Ratio, calibrate, fmt_time, interleave, now

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")


@dataclass
class Bench:
    label: str
    spec: str  # file name in specs/, or a generator in benchmarks/specgen.py: "specgen.deep_mlp(100)"
    reference: str  # name of the hand-written class/factory in benchmarks/reference.py
    table: str | None  # name of its layer-table function, for the interpreter

    @property
    def path(self) -> str:
        return os.path.join(SPECS, self.spec)

    @property
    def generated(self) -> bool:
        return self.spec.startswith("specgen.")

    def source(self) -> str:
        """The spec's path, or its generated text."""
        if self.generated:
            from . import specgen

            name, arg = self.spec.removeprefix("specgen.").rstrip(")").split("(")
            return getattr(specgen, name)(int(arg))
        return self.path


BENCHES = [
    Bench("MLP", "mnist_mlp.nnspec", "NeuralNetwork", "mlp_table"),
    Bench("CNN", "cnn.nnspec", "CNN", "cnn_table"),
    Bench("ResNet-18", "resnet18.nnspec", "resnet18", "resnet_table"),
    Bench("LSTM", "lstm_classifier.nnspec", "LSTMClassifier", "lstm_table"),
    Bench("Transformer", "transformer_classifier.nnspec", "TransformerClassifier", "transformer_table"),
    # not bundled: 100 tiny layers, where per-layer dispatch is all there is to measure
    Bench("deep MLP, 100 layers (generated)", "specgen.deep_mlp(100)", "DeepMLP", "deep_mlp_table"),
]


@dataclass
class Row:
    label: str
    batch: int | str
    mode: str
    base: float | None = None  # median seconds per forward of the hand-written module
    modelspec: Ratio | None = None
    interp: Ratio | None = None
    twin: Ratio | None = None  # A/A: a second instance of the hand-written module against the first
    diff: float | None = None  # max |modelspec - reference| on the checked input
    note: str = ""


def _torch():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch


def prepare(b: Bench, device: str):
    """(modelspec module, reference, interpreter or None, graph) on identical weights, or a reason string."""
    torch = _torch()
    from modelspec.api import elaborate_spec
    from modelspec.build import build_module
    from modelspec.codegen import generate_code

    from . import reference

    if not b.generated and not os.path.exists(b.path):
        return f"missing: specs/{b.spec} not in this checkout"
    make_ref = getattr(reference, b.reference, None)
    if make_ref is None:
        return f"no baseline: benchmarks/reference.py has no {b.reference}"
    graph = elaborate_spec(b.source())
    model = build_module(generate_code(graph), graph, seed=0).eval()
    ref = make_ref().eval()
    state = model.state_dict()
    mine = ref.state_dict()
    if list(state) != list(mine) and [v.shape for v in state.values()] == [v.shape for v in mine.values()]:
        state = dict(zip(mine, state.values()))  # other names (nn.Sequential's 0, 1, ...), same tensors in order
    try:
        ref.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        return f"no baseline: the reference's state_dict does not match the spec's ({str(exc).splitlines()[0]})"
    twin = make_ref().eval()  # the A/A control: a second hand-written instance, same weights
    twin.load_state_dict(state, strict=True)
    interp = None
    if b.table and hasattr(reference, b.table):
        interp = reference.Interpreted(getattr(reference, b.table)(ref)).eval()
    model, ref, twin = model.to(device), ref.to(device), twin.to(device)
    if interp is not None:
        interp = interp.to(device)
    torch.manual_seed(0)
    return model, ref, interp, graph, twin


def _flat(out):
    if isinstance(out, (tuple, list)):
        for o in out:
            yield from _flat(o)
    else:
        yield out


def _one_call(m, inputs, sync) -> float:
    t = now()
    m(*inputs)
    sync()
    return max(now() - t, 1e-7)


def max_diff(a, b) -> float:
    worst = 0.0
    for x, y in zip(_flat(a), _flat(b), strict=True):
        if x.shape != y.shape:
            return float("inf")
        if x.numel():
            worst = max(worst, (x.float() - y.float()).abs().max().item())
    return worst


def measure(benches: list[Bench], *, device: str, batches: list[int], modes: list[str], rounds: int,
            target_s: float, budget_s: float, log: Callable[[str], None]) -> list[Row]:
    """``rounds`` interleaved rounds per row, fewer (at least 5) where they would take over ``budget_s``."""
    torch = _torch()
    from modelspec.build import make_inputs

    cuda = device.startswith("cuda")
    # the device measured: synchronize() alone waits for the current one (cuda:0 unless set), and the kernels of
    # --device cuda:1 would still be running when the clock is read
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    rows: list[Row] = []
    for b in benches:
        got = prepare(b, device)
        if isinstance(got, str):
            rows.append(Row(b.label, "–", "–", note=got))
            log(f"  {b.label}: {got}")
            continue
        model, ref, interp, graph, twin = got
        for batch in batches:
            gen = torch.Generator(device=device).manual_seed(batch)
            inputs = make_inputs(graph, batch=batch, device=device, generator=gen)
            for mode in modes:
                t0 = time.perf_counter()
                row = Row(b.label, batch, mode)
                cands = {"modelspec": model, "reference": ref, "twin": twin}
                if interp is not None and len(inputs) == 1:
                    cands["interpreter"] = interp
                ctx = torch.inference_mode
                if mode == "compile":
                    torch._dynamo.reset()
                    cands = {k: torch.compile(m, dynamic=False) for k, m in cands.items()}
                    ctx = torch.no_grad
                with ctx():
                    outs = {k: m(*inputs) for k, m in cands.items()}  # compiles, under torch.compile
                    sync()
                    row.diff = max_diff(outs["modelspec"], outs["reference"])
                    tol = 1e-4 if mode == "eager" and not cuda else 1e-3
                    if "interpreter" in outs and max_diff(outs["interpreter"], outs["reference"]) > tol:
                        row.note = "interpreter output differs; "
                    if max_diff(outs["twin"], outs["reference"]) > tol:
                        row.note += "twin output differs; "
                    if row.diff > tol:
                        row.note += f"OUTPUTS DIFFER (max |Δ| {row.diff:.2g}); "
                    ref_c = cands["reference"]
                    k = calibrate(lambda: (ref_c(*inputs), sync()), target_s)

                    def timed(m):
                        def run():
                            t = now()
                            for _ in range(k):
                                m(*inputs)
                            sync()
                            return (now() - t) / k
                        return run

                    one = _one_call(ref_c, inputs, sync)
                    n_rounds = max(5, min(rounds, int(budget_s / (len(cands) * k * one))))
                    s = interleave({n: timed(m) for n, m in cands.items()}, n_rounds, seed=batch)
                row.base = s.median("reference")
                row.modelspec = s.ratio("modelspec", "reference")
                row.twin = s.ratio("twin", "reference")
                if "interpreter" in cands:
                    row.interp = s.ratio("interpreter", "reference")
                rows.append(row)
                log(f"  {b.label} batch {batch} {mode}: reference {fmt_time(row.base)}, A/A {row.twin}, "
                    f"modelspec {row.modelspec}"
                    + (f", interpreter {row.interp}" if row.interp else "")
                    + f"  [{k} calls x {n_rounds} rounds, {time.perf_counter() - t0:.0f} s]")
        del model, ref, interp, twin
    return rows


def render(rows: list[Row], *, markdown: bool = False) -> str:
    from .measure import table

    headers = ["model", "batch", "mode", "hand-written", "A/A ×", "modelspec ×", "interpreter ×", "max |Δ|"]
    out = []
    for r in rows:
        if r.base is None:
            out.append([r.label, "", "", r.note, "", "", "", ""])
            continue
        out.append([r.label, str(r.batch), r.mode, fmt_time(r.base), str(r.twin), str(r.modelspec),
                    str(r.interp) if r.interp else "–", f"{r.diff:.1g}" + (f" {r.note}" if r.note else "")])
    return table(headers, out, markdown=markdown)
