"""Peers: modelspec against the tools people use instead for the same job, side by side in one run.

Five comparisons, one table each:

  summary     modelspec.summarize(spec)          torchinfo.summary(module, input_size=..., verbose=0)
  check       the work of `modelspec check`      build the module, run one forward (meta device; CPU, batch 1)
  code        modelspec.generate_code(spec)      torch.fx.symbolic_trace(module).code
  lazy        parse + elaborate (and compile)    nn.Lazy* modules: construct, one dry-run forward at batch 1
  graph       modelspec.to_dot(spec)             torchview.draw_graph(module, ..., expand_nested=True)

modelspec starts from the spec's text each time (no cache: `summarize`,
`check_source`, `to_dot` and `elaborate_spec` parse and elaborate afresh, and
`generate_code` is timed with its code cache cleared). Each peer starts from
what its user has: a built module (summary, code, graph; built outside the
timed region from the same spec, compile_spec(..., seed=0)), or the module's
class, which the check's peer constructs inside its time (a user who checks
shapes by running the model must build it first), or the lazy module's
class. Every call runs at batch 1.

A peer is optional: where its package is not installed, its rows say so and
the run goes on. Every ratio is modelspec's time over the peer's, round by
round (measure.interleave: shuffled order, cyclic GC off during each call),
the median with min–max. Each table has an A/A row: the peer's call on the
CNN timed as two candidates, one over the other, the noise a ratio of 1
shows on this machine.
"""

from __future__ import annotations

import importlib
import os
import re
import time
import warnings
from dataclasses import dataclass
from typing import Callable

from .measure import Ratio, Samples, fmt_time, interleave, now, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")
AA_MODEL = "CNN"  # the model whose peer call is timed twice: the shortest calls, where noise weighs most


def _torch():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch


def _scaled(name: str, consts: dict[str, object], replace: dict[str, str]) -> str:
    """A bundled spec with some of its consts set anew and some text replaced; each change must apply once."""
    with open(os.path.join(SPECS, name), encoding="utf-8") as f:
        text = f.read()
    for const, value in consts.items():
        text, n = re.subn(rf"^const {const} = .*$", f"const {const} = {value}", text, count=1, flags=re.M)
        if n != 1:
            raise RuntimeError(f"specs/{name} has no `const {const} = ...` to scale")
    for old, new in replace.items():
        if text.count(old) != 1:
            raise RuntimeError(f"specs/{name}: {old!r} is not there once")
        text = text.replace(old, new)
    return text


def vit_b16() -> str:
    """specs/vit.nnspec at ViT-B/16's size: 224x224 images, patch 16, 12 layers of width 768, 12 heads, MLP 3072
    (mlp_ratio 4), a class token, 1000 classes: 86.6 M parameters, as torchvision's vit_b_16."""
    return _scaled("vit.nnspec", {"IMAGE": 224, "PATCH": 16, "DIM": 768, "HEADS": 12, "DEPTH": 12},
                   {"model ViT(": "model ViTB16(", "head = Linear(DIM, 10)": "head = Linear(DIM, 1000)"})


def gpt2_small() -> str:
    """specs/gpt.nnspec at GPT-2 small's size: 12 layers, width 768, 12 heads, vocabulary 50257, context 1024,
    biases on, the output layer tied to the token embedding: 124.4 M parameters."""
    return _scaled("gpt.nnspec", {"BLOCK_SIZE": 1024, "VOCAB_SIZE": 50257, "N_LAYER": 12, "N_HEAD": 12,
                                  "N_EMBD": 768, "BIAS": True},
                   {"model GPT(": "model GPT2(", "T=64": "T=1024"})


@dataclass(frozen=True)
class Model:
    label: str
    source: str  # a path, or spec text


def models() -> list[Model]:
    return [Model("ResNet-18", os.path.join(SPECS, "resnet18.nnspec")),
            Model("CNN", os.path.join(SPECS, "cnn.nnspec")),
            Model("Transformer", os.path.join(SPECS, "transformer_classifier.nnspec")),
            Model("ViT-B/16-sized", vit_b16()),
            Model("GPT-2-small-sized", gpt2_small())]


@dataclass
class Prepared:
    """What the peers start from: the module compiled from the spec, its class, its graph, inputs at batch 1."""

    graph: object
    module: object
    cls: type
    inputs: tuple
    sizes: list[tuple[int, ...]]  # the inputs' shapes, batch included, as torchinfo and torchview take them
    dtypes: list


_prepared: dict[str, Prepared] = {}


def prepare(m: Model) -> Prepared:
    """The compiled module and its inputs, made once per model for all five tables."""
    if m.label not in _prepared:
        torch = _torch()
        from modelspec import compile_spec, elaborate_spec
        from modelspec.build import make_inputs

        graph = elaborate_spec(m.source)
        module = compile_spec(m.source, seed=0).eval()
        inputs = make_inputs(graph, batch=1, generator=torch.Generator().manual_seed(0))
        _prepared[m.label] = Prepared(graph, module, type(module), inputs, [tuple(x.shape) for x in inputs],
                                      [x.dtype for x in inputs])
    return _prepared[m.label]


def _optional(name: str):
    """The module, or why it cannot be had: "skipped: <package> not installed"."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return f"skipped: {exc.name or name} not installed"


# ---------------------------------------------------------------- timing
@dataclass(frozen=True)
class Plan:
    """Rounds per row: ``rounds``, fewer where a round costs more than ``budget_s`` / ``rounds``, at least
    ``min_rounds``."""

    rounds: int
    min_rounds: int
    budget_s: float


QUICK = Plan(rounds=7, min_rounds=3, budget_s=6)
FULL = Plan(rounds=15, min_rounds=5, budget_s=15)


def _quiet(fn: Callable, *args, **kwargs) -> Callable[[], None]:
    """fn(*args, **kwargs) as interleave's candidate: its result dropped (a returned float would be read as a
    time)."""

    def run():
        fn(*args, **kwargs)

    return run


def _run(fns: dict[str, Callable[[], float | None]], plan: Plan) -> Samples:
    """Each candidate once to warm it up (and to learn what a round costs), then the interleaved rounds."""
    cost = 0.0
    for fn in fns.values():
        t = now()
        got = fn()
        cost += got if got is not None else now() - t
    n = max(plan.min_rounds, min(plan.rounds, int(plan.budget_s / max(cost, 1e-9))))
    return interleave(fns, n, warmup=0)


def _r(r: Ratio) -> str:
    """Three significant figures: the ratios here run from hundredths to tens."""
    num = lambda x: f"{x:.0f}" if x >= 100 else f"{x:#.3g}"
    return f"{num(r.med)} ({num(r.lo)}–{num(r.hi)})"


def _aa_row(label: str, s: Samples, width: int, at: int) -> list[str]:
    """The A/A control, its ratio in column ``at`` of a row ``width`` wide."""
    row = [f"A/A: {label}, twice"] + [""] * (width - 1)
    row[at] = _r(s.ratio("twin", "peer"))
    return row


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str


def render(t: Table, *, markdown: bool = False) -> str:
    return table(t.headers, t.rows, markdown=markdown)


def _skipped(label: str, why: str, width: int) -> list[str]:
    return [label, why] + [""] * (width - 2)


# ---------------------------------------------------------------- 1. summary
SUMMARY_HEADERS = ["model", "params (modelspec)", "params (torchinfo)", "modelspec.summarize", "torchinfo.summary",
                   "modelspec / torchinfo ×"]


def summaries(ms: list[Model], plan: Plan, log) -> Table:
    """modelspec.summarize(spec) (what `modelspec summary` prints; no forward pass) against torchinfo.summary of
    the module compiled from the same spec, at batch 1 (a forward pass with hooks on every module)."""
    from modelspec import summarize

    torchinfo = _optional("torchinfo")
    rows, aa = [], None
    for m in ms:
        if isinstance(torchinfo, str):
            rows.append(_skipped(m.label, torchinfo, len(SUMMARY_HEADERS)))
            continue
        p = prepare(m)
        peer = _quiet(torchinfo.summary, p.module, input_size=p.sizes, dtypes=p.dtypes, device="cpu", verbose=0)
        ours, theirs = summarize(m.source), torchinfo.summary(p.module, input_size=p.sizes, dtypes=p.dtypes,
                                                              device="cpu", verbose=0)
        fns = {"modelspec": _quiet(summarize, m.source), "peer": peer}
        if m.label == AA_MODEL:
            fns["twin"] = peer
        s = _run(fns, plan)
        own = sum(t.numel() for t in p.module.parameters())  # torch's own count: a shared tensor once
        flag = "" if ours.total_params == theirs.total_params else (
            f" (DIFFER; torch's parameters(): {own:,})")
        rows.append([m.label, f"{ours.total_params:,}", f"{theirs.total_params:,}{flag}",
                     fmt_time(s.median("modelspec")), fmt_time(s.median("peer")), _r(s.ratio("modelspec", "peer"))])
        if "twin" in fns:
            aa = _aa_row(f"torchinfo.summary on the {m.label}", s, len(SUMMARY_HEADERS), 5)
        log(f"  summary {m.label}: modelspec {fmt_time(s.median('modelspec'))}, torchinfo "
            f"{fmt_time(s.median('peer'))}, × {s.ratio('modelspec', 'peer')}  [{len(s.times['peer'])} rounds]")
    if aa is not None:
        rows.append(aa)
    return Table("Peers: model summary, modelspec.summarize against torchinfo.summary", SUMMARY_HEADERS, rows,
                 "modelspec.summarize(spec): parse, elaborate and the summary's rows (layers, shapes, parameters, "
                 "mult-adds), from the spec's text; no module, no tensor. torchinfo.summary(module, input_size=..., "
                 "dtypes=..., verbose=0): one forward pass at batch 1 with hooks on every module, of the module "
                 "compiled from the same spec (built before, outside its time). Parameter totals side by side; "
                 "DIFFER flags a disagreement, with torch's own count (a tied weight once).")


# ---------------------------------------------------------------- 2. check
@dataclass(frozen=True)
class Broken:
    """A model with one shape error, in the spec (``spec_old`` -> ``spec_new``) and in the code a person would
    have written (the generated code, ``code_old`` -> ``code_new``)."""

    label: str
    of: str  # the label of the correct model
    spec_old: str
    spec_new: str
    code_old: str
    code_new: str


BROKEN = [
    Broken("CNN, the tutorial's fc1 (error)", "CNN", "Linear(64 * 20 * 20, 128)", "Linear(64 * 4 * 4, 128)",
           "nn.Linear(64 * 20 * 20, 128)", "nn.Linear(64 * 4 * 4, 128)"),
    Broken("ViT-B/16-sized, head too wide (error)", "ViT-B/16-sized", "head = Linear(DIM, 1000)",
           "head = Linear(DIM * 2, 1000)", "nn.Linear(DIM, 1000)", "nn.Linear(DIM * 2, 1000)"),
]

CHECK_HEADERS = ["model", "check", "meta: build + forward", "check / meta build+fwd ×", "check / meta fwd ×",
                 "CPU: build + forward", "check / CPU build+fwd ×", "check / CPU fwd ×", "error found"]


def _patched(cls_source: str, old: str, new: str, name: str) -> type:
    if cls_source.count(old) != 1:
        raise RuntimeError(f"the generated code of {name} has not {old!r} once")
    namespace: dict = {}
    exec(compile(cls_source.replace(old, new), f"<peers:{name}>", "exec"), namespace)
    return namespace[name]


def _first_line(exc: BaseException, width: int = 90) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


def _build_forward(cls: type, inputs: tuple, meta: bool, forward_times: list[float], broken: bool):
    """A candidate: construct ``cls`` and run one forward (no grad, eval mode) on ``inputs``; it appends its
    forward's share to ``forward_times`` and returns the whole (the teardown of the module outside it)."""
    torch = _torch()

    def run() -> float:
        t0 = now()
        if meta:
            with torch.device("meta"):
                model = cls().eval()
        else:
            model = cls().eval()
        t1 = now()
        try:
            with torch.no_grad():
                model(*inputs)
        except RuntimeError:
            if not broken:
                raise
        t2 = now()
        forward_times.append(t2 - t1)
        return t2 - t0

    return run


def _raises(fn: Callable[[], object]) -> BaseException | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - what was raised is the finding
        return exc
    return None


def _forward_error(cls: type, inputs: tuple, meta: bool) -> BaseException | None:
    """What one build + forward of ``cls`` raises, if anything (untimed: the check that the row is what it says)."""
    torch = _torch()
    with torch.device("meta" if meta else "cpu"):
        model = cls().eval()
    with torch.no_grad():
        return _raises(lambda: model(*inputs))


def checks(ms: list[Model], plan: Plan, log) -> Table:
    """Finding a shape error: the work of `modelspec check` (read, parse, elaborate: check_source) against what a
    user without it does, build the module and run one forward pass, on the meta device and on the CPU at batch 1.

    Building is inside the peer's time: a user who checks shapes by running the model must build it (construct
    its class; on meta, without weight memory or initialisation). "fwd" ratios set check against the forward
    alone, timed within the same calls. The error rows break one layer, in the spec and in the generated code
    alike (the code a person would have written); check must raise a SpecError and both forwards a RuntimeError.
    """
    torch = _torch()
    from modelspec.codegen import generate_code
    from modelspec.errors import SpecError
    from modelspec.pipeline import check_source, read_spec

    by_label = {m.label: m for m in ms}
    cases = [(m.label, m, None) for m in ms] + [(b.label, by_label[b.of], b) for b in BROKEN if b.of in by_label]
    rows, aa = [], None
    for label, m, broken in cases:
        p = prepare(m)
        source, cls = m.source, p.cls
        if broken is not None:
            text, _ = read_spec(m.source)
            if text.count(broken.spec_old) != 1:
                raise RuntimeError(f"{m.label}: {broken.spec_old!r} is not in its spec once")
            source = text.replace(broken.spec_old, broken.spec_new)
            cls = _patched(generate_code(p.graph), broken.code_old, broken.code_new, p.graph.name)
        meta_inputs = tuple(torch.empty_like(x, device="meta") for x in p.inputs)
        found = _raises(lambda: check_source(source))
        on_meta, on_cpu = _forward_error(cls, meta_inputs, True), _forward_error(cls, p.inputs, False)
        if broken is None and (found or on_meta or on_cpu):
            raise RuntimeError(f"{label}: expected no error, got {found or on_meta or on_cpu!r}")
        if broken is not None and not (isinstance(found, SpecError) and isinstance(on_meta, RuntimeError)
                                       and isinstance(on_cpu, RuntimeError)):
            raise RuntimeError(f"{label}: expected a SpecError and RuntimeErrors, got {found!r}, {on_meta!r}, "
                               f"{on_cpu!r}")

        def check(source=source, broken=broken):
            try:
                check_source(source)
            except SpecError:
                if broken is None:
                    raise

        fwd: dict[str, list[float]] = {"meta": [], "cpu": []}
        is_broken = broken is not None
        fns = {"modelspec": check,
               "meta": _build_forward(cls, meta_inputs, True, fwd["meta"], is_broken),
               "peer": _build_forward(cls, p.inputs, False, fwd["cpu"], is_broken)}
        if label == AA_MODEL:
            fns["twin_meta"] = _build_forward(cls, meta_inputs, True, [], is_broken)
            fns["twin"] = _build_forward(cls, p.inputs, False, [], is_broken)
        s = _run(fns, plan)
        ours = s.times["modelspec"]
        n = len(ours)
        err = "–" if broken is None else (f"check: line {found.line}: {_first_line(found)}; "
                                          f"forward: {_first_line(on_cpu)}")
        rows.append([label, fmt_time(s.median("modelspec")), fmt_time(s.median("meta")),
                     _r(s.ratio("modelspec", "meta")), _r(Ratio.of(ours, fwd["meta"][-n:])),
                     fmt_time(s.median("peer")), _r(s.ratio("modelspec", "peer")),
                     _r(Ratio.of(ours, fwd["cpu"][-n:])), err])
        if "twin" in fns:
            aa = [f"A/A: build + forward of the {label}, twice", "", "", _r(s.ratio("twin_meta", "meta")), "", "",
                  _r(s.ratio("twin", "peer")), "", ""]
        log(f"  check {label}: check {fmt_time(s.median('modelspec'))}, meta build+fwd {fmt_time(s.median('meta'))}"
            f" (× {s.ratio('modelspec', 'meta')}), CPU build+fwd {fmt_time(s.median('peer'))} "
            f"(× {s.ratio('modelspec', 'peer')})  [{n} rounds]")
    if aa is not None:
        rows.append(aa)
    return Table("Peers: finding a shape error, modelspec check against building the module and running it",
                 CHECK_HEADERS, rows,
                 "check: modelspec.pipeline.check_source, the in-process work of `modelspec check` (read, parse, "
                 "elaborate every model), from the spec's text. Its peer: construct the module's class and run one "
                 "forward in eval mode under no_grad, on the meta device (module and input on meta: shapes only, "
                 "no weights, no arithmetic) and on the CPU at batch 1 (weights initialised, the full forward). "
                 "build+fwd: the whole of that, as a user who checks shapes by running the model pays it; fwd: "
                 "the forward alone, from the same calls. Error rows: one layer broken in the spec and in the "
                 "module's code alike; both sides stop at the error.")


# ---------------------------------------------------------------- 3. code
CODE_HEADERS = ["model", "generate_code (uncached)", "fx trace + .code", "generate_code / fx ×",
                "codegen from graph", "codegen / fx ×", "lines (modelspec / fx)"]


def codes(ms: list[Model], plan: Plan, log) -> Table:
    """modelspec.generate_code(spec), its code cache cleared before each call (parse, elaborate, codegen), and
    codegen alone from the elaborated graph, against torch.fx.symbolic_trace(module).code on the compiled
    module: the Python source each prints for the same model."""
    from torch import fx

    from modelspec import api, generate_code
    from modelspec.codegen import generate_code as codegen

    def uncached(source):
        def run() -> float:
            api.code_cache.clear()
            t = now()
            generate_code(source)
            return now() - t
        return run

    rows, aa = [], None
    for m in ms:
        p = prepare(m)
        failed = _raises(lambda: fx.symbolic_trace(p.module).code)
        if failed is not None:
            rows.append(_skipped(m.label, f"fx cannot trace it: {_first_line(failed)}", len(CODE_HEADERS)))
            log(f"  code {m.label}: fx cannot trace it ({_first_line(failed)})")
            continue
        peer = lambda: (fx.symbolic_trace(p.module).code, None)[1]  # noqa: E731
        fns = {"modelspec": uncached(m.source), "codegen": _quiet(codegen, p.graph), "peer": peer}
        if m.label == AA_MODEL:
            fns["twin"] = peer
        s = _run(fns, plan)
        lines = f"{generate_code(m.source).count(chr(10))} / {fx.symbolic_trace(p.module).code.count(chr(10))}"
        rows.append([m.label, fmt_time(s.median("modelspec")), fmt_time(s.median("peer")),
                     _r(s.ratio("modelspec", "peer")), fmt_time(s.median("codegen")), _r(s.ratio("codegen", "peer")),
                     lines])
        if "twin" in fns:
            aa = _aa_row(f"fx on the {m.label}", s, len(CODE_HEADERS), 3)
        log(f"  code {m.label}: generate_code {fmt_time(s.median('modelspec'))}, fx {fmt_time(s.median('peer'))}, "
            f"× {s.ratio('modelspec', 'peer')}  [{len(s.times['peer'])} rounds]")
    if aa is not None:
        rows.append(aa)
    return Table("Peers: printing the model's code, modelspec.generate_code against torch.fx", CODE_HEADERS, rows,
                 "generate_code (uncached): modelspec.generate_code(spec) with its code cache cleared before each "
                 "call: parse, elaborate, codegen, from the spec's text. codegen from graph: "
                 "modelspec.codegen.generate_code on the elaborated graph, the last stage alone. fx: "
                 "torch.fx.symbolic_trace(module).code on the module compiled from the spec: one symbolic forward, "
                 "then the flat forward's source (the module's __init__ is not part of it). lines: of each "
                 "output; modelspec's is the whole module, classes and __init__ included.")


# ---------------------------------------------------------------- 4. lazy modules
def _lazy():
    """The Lazy* twins of three bundled specs: each layer names its output size only, as the spec's `_` does."""
    torch = _torch()
    nn = torch.nn
    F = nn.functional

    class LazyMLP(nn.Module):  # specs/mnist_mlp.nnspec
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(nn.LazyLinear(512), nn.ReLU(), nn.LazyLinear(512), nn.ReLU(),
                                                   nn.LazyLinear(10))

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    class LazyCNN(nn.Module):  # specs/cnn.nnspec
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.LazyConv2d(20, 5), nn.ReLU(), nn.LazyConv2d(64, 5), nn.ReLU())
            self.fc1 = nn.LazyLinear(128)
            self.fc2 = nn.LazyLinear(10)

        def forward(self, x):
            x = self.layers(x)  # [B, 64, 20, 20]
            x = x.view(x.size(0), -1)  # [B, 25600]
            x = F.relu(self.fc1(x))
            return F.softmax(self.fc2(x), dim=1)

    class LazyBasicBlock(nn.Module):
        def __init__(self, planes, stride=1, downsample=False):
            super().__init__()
            self.conv1 = nn.LazyConv2d(planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.LazyBatchNorm2d()
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.LazyConv2d(planes, 3, padding=1, bias=False)
            self.bn2 = nn.LazyBatchNorm2d()
            # the one thing a lazy module cannot infer: whether the shortcut needs a projection
            self.downsample = (nn.Sequential(nn.LazyConv2d(planes, 1, stride=stride, bias=False),
                                             nn.LazyBatchNorm2d()) if downsample else None)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (self.downsample(x) if self.downsample is not None else x))

    class LazyResNet18(nn.Module):  # specs/resnet18.nnspec
        def __init__(self):
            super().__init__()
            self.conv1 = nn.LazyConv2d(64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.LazyBatchNorm2d()
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.layer1 = nn.Sequential(LazyBasicBlock(64), LazyBasicBlock(64))
            self.layer2 = nn.Sequential(LazyBasicBlock(128, 2, True), LazyBasicBlock(128))
            self.layer3 = nn.Sequential(LazyBasicBlock(256, 2, True), LazyBasicBlock(256))
            self.layer4 = nn.Sequential(LazyBasicBlock(512, 2, True), LazyBasicBlock(512))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.LazyLinear(1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return [("MLP", "mnist_mlp.nnspec", LazyMLP), ("CNN", "cnn.nnspec", LazyCNN),
            ("ResNet-18", "resnet18.nnspec", LazyResNet18)]


LAZY_HEADERS = ["model", "params (spec / lazy)", "Lazy*: construct + dry run", "elaborate", "elaborate / lazy ×",
                "compile_spec (uncached)", "compile_spec / lazy ×"]


def lazies(plan: Plan, log) -> Table:
    """Static shape inference against nn.Lazy* modules, whose sizes are found by a dry run: parse + elaborate
    of the spec (every size and shape inferred, no tensor) and compile_spec (the module built), against
    constructing the lazy module and running one forward at batch 1 (which materialises and initialises its
    weights)."""
    torch = _torch()
    from modelspec import elaborate_spec
    from modelspec.build import make_inputs

    from .compile_time import timed_compile_spec

    # every construction warns that lazy modules are new; silenced for this process (each section has its own)
    warnings.filterwarnings("ignore", message="Lazy modules are a new feature")
    rows, aa = [], None
    for label, name, cls in _lazy():
        path = os.path.join(SPECS, name)
        graph = elaborate_spec(path)
        (x,) = make_inputs(graph, batch=1, generator=torch.Generator().manual_seed(0))

        def dry_run(cls=cls, x=x):
            model = cls()
            with torch.no_grad():
                model(x)
            return model

        params = sum(t.numel() for t in dry_run().parameters())
        peer = lambda: (dry_run(), None)[1]  # noqa: E731
        fns = {"modelspec": _quiet(elaborate_spec, path),
               "compile_spec": lambda path=path: timed_compile_spec(path, cached=False)[0], "peer": peer}
        if label == AA_MODEL:
            fns["twin"] = peer
        s = _run(fns, plan)
        flag = "" if params == graph.total_params else " (DIFFER)"
        rows.append([label, f"{graph.total_params:,} / {params:,}{flag}", fmt_time(s.median("peer")),
                     fmt_time(s.median("modelspec")), _r(s.ratio("modelspec", "peer")),
                     fmt_time(s.median("compile_spec")), _r(s.ratio("compile_spec", "peer"))])
        if "twin" in fns:
            aa = _aa_row(f"the lazy {label}", s, len(LAZY_HEADERS), 4)
        log(f"  lazy {label}: elaborate {fmt_time(s.median('modelspec'))}, lazy {fmt_time(s.median('peer'))}, "
            f"× {s.ratio('modelspec', 'peer')}; compile_spec × {s.ratio('compile_spec', 'peer')}  "
            f"[{len(s.times['peer'])} rounds]")
    if aa is not None:
        rows.append(aa)
    return Table("Peers: static shape inference against nn.Lazy* modules' dry run", LAZY_HEADERS, rows,
                 "Lazy*: the model written with nn.LazyLinear / nn.LazyConv2d / nn.LazyBatchNorm2d (sizes inferred "
                 "from the first input, as the spec's `_` is), constructed and run once at batch 1 under no_grad, "
                 "which materialises and initialises its weights. elaborate: elaborate_spec(spec), parse and "
                 "elaborate: every size and shape, no tensor. compile_spec (uncached): the module built, its code "
                 "cache cleared first. The parameter counts must agree.")


# ---------------------------------------------------------------- 5. graph
GRAPH_HEADERS = ["model", "modelspec.to_dot", "torchview.draw_graph", "to_dot / draw_graph ×",
                 "DOT lines (modelspec / torchview)"]


def graphs(ms: list[Model], plan: Plan, log) -> Table:
    """modelspec.to_dot(spec, depth=None) (what `modelspec graph` prints, every module open) against
    torchview.draw_graph(module, input_size=..., expand_nested=True, depth=inf) on the compiled module, which
    records a forward pass at batch 1 and builds its graphviz graph, rendered to no file."""
    from modelspec import to_dot

    torchview = _optional("torchview")
    rows, aa = [], None
    for m in ms:
        if isinstance(torchview, str):
            rows.append(_skipped(m.label, torchview, len(GRAPH_HEADERS)))
            continue
        p = prepare(m)

        def draw(p=p):
            return torchview.draw_graph(p.module, input_size=p.sizes, dtypes=p.dtypes, graph_name="model",
                                        depth=float("inf"), expand_nested=True, device="cpu")

        peer = lambda: (draw(), None)[1]  # noqa: E731
        fns = {"modelspec": _quiet(to_dot, m.source, depth=None), "peer": peer}
        if m.label == AA_MODEL:
            fns["twin"] = peer
        s = _run(fns, plan)
        lines = f"{to_dot(m.source, depth=None).count(chr(10))} / {draw().visual_graph.source.count(chr(10))}"
        rows.append([m.label, fmt_time(s.median("modelspec")), fmt_time(s.median("peer")),
                     _r(s.ratio("modelspec", "peer")), lines])
        if "twin" in fns:
            aa = _aa_row(f"torchview on the {m.label}", s, len(GRAPH_HEADERS), 3)
        log(f"  graph {m.label}: to_dot {fmt_time(s.median('modelspec'))}, torchview {fmt_time(s.median('peer'))}, "
            f"× {s.ratio('modelspec', 'peer')}  [{len(s.times['peer'])} rounds]")
    if aa is not None:
        rows.append(aa)
    return Table("Peers: drawing the model, modelspec.to_dot against torchview.draw_graph", GRAPH_HEADERS, rows,
                 "modelspec.to_dot(spec, depth=None): parse, elaborate and the DOT text of the recorded dataflow, "
                 "every module open, from the spec's text. torchview.draw_graph(module, input_size=..., "
                 "expand_nested=True, depth=inf): a forward pass at batch 1 recorded tensor by tensor into a "
                 "graphviz Digraph, every module open as well, nothing rendered (no `dot` run, no file). Neither "
                 "side runs Graphviz.")


# ---------------------------------------------------------------- all of it
def measure(*, quick: bool, log) -> list[Table]:
    """The five tables, in order; the compiled modules shared between them."""
    plan = QUICK if quick else FULL
    ms = models()
    started = time.perf_counter()
    try:
        tables = []
        for name, step in (("summary", lambda: summaries(ms, plan, log)), ("check", lambda: checks(ms, plan, log)),
                           ("code", lambda: codes(ms, plan, log)), ("lazy", lambda: lazies(plan, log)),
                           ("graph", lambda: graphs(ms, plan, log))):
            t = time.perf_counter()
            tables.append(step())
            log(f"  [{name}: {time.perf_counter() - t:.0f} s, {time.perf_counter() - started:.0f} s in all]")
        return tables
    finally:
        _prepared.clear()
