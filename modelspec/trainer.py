"""``modelspec train``: a spec's training script, run with a progress bar, checkpoints, resume and Ctrl-C.

One path, as for modules: `modelspec.trainscript` prints the script, this runs that script's own ``setup``,
``train_loop`` and ``evaluate`` (executed as a module, as `modelspec.build` runs generated classes) and adds
only what a person at a terminal needs around them. What it adds touches no random number generator, so the
losses are the script's, bit for bit.

Under torchrun (``WORLD_SIZE`` set, or ``modelspec train --nproc N``, which starts torch.distributed.run)
each process runs the distributed script: DistributedDataParallel, a DistributedSampler, NCCL on GPUs and
gloo on CPUs. Process 0 prints and writes the files.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError, did_you_mean, issue
from .model import ModelGraph
from .values import Limits

CHECKPOINT = "checkpoint.pt"
INTERRUPTED = "interrupted.pt"


class TrainError(SpecError):
    """A problem found while training: bad data, a missing file, a checkpoint that does not fit."""

    CODE = "MS701"


@dataclass
class TrainResult:
    """What `train` returns: the trained module, one dict of metrics per epoch, and the files written."""

    model: Any
    history: list[dict] = field(default_factory=list)
    weights: str | None = None
    checkpoint: str | None = None
    ranks: int = 1
    max_rank_difference: float | None = None  # several processes: how far their weights ended apart (0.0)

    @property
    def metrics(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_json(self) -> str:
        out = {"model": type(self.model).__name__, "epochs": len(self.history), "metrics": self.metrics,
               "weights": self.weights, "checkpoint": self.checkpoint, "ranks": self.ranks}
        if self.max_rank_difference is not None:
            out["max_rank_difference"] = self.max_rank_difference
        return json.dumps(out)


# ---------------------------------------------------------------- settings from outside the spec
def with_settings(text: str, graph_train_span, settings: dict[str, str]) -> str:
    """The spec's text with train settings replaced (or added): ``{"epochs": "3"}`` -> ``epochs = 3``."""
    from . import ir
    from .parse import parse

    spec = parse(text)
    trains = spec.trains()
    train = next((t for t in trains if graph_train_span is None or t.span == graph_train_span), None)
    if train is None:
        return text
    lines = text.split("\n")
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    at = lambda line, col: offsets[line - 1] + col - 1
    edits = []
    for name, value in settings.items():
        check_setting(name, value)
        new = f"{name} = {value}"
        old = next((s for s in train.body if not isinstance(s, ir.TrainTarget) and s.name == name), None)
        if old is not None:
            edits.append((at(old.span.line, old.span.column), at(old.span.end_line, old.span.end_column), new))
        else:
            end = at(train.span.end_line, train.span.end_column) - 1  # the closing brace
            edits.append((end, end, f"    {new}\n"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def check_setting(name: str, value: str) -> None:
    """One setting given outside the spec (``--set NAME=VALUE``), checked on its own: a name the train section
    takes and a value that parses, with errors that say which setting, not a line of the rewritten spec."""
    from .parse import parse
    from .trainspec import SETTINGS

    shown = f"{name}={value}"
    if not re.fullmatch(r"[A-Za-z_]\w*", name) or name not in SETTINGS:
        raise TrainError(f"--set {shown}: a train section has no setting {name!r}",
                         hint=did_you_mean(name, list(SETTINGS)) or "the settings: " + ", ".join(SETTINGS))
    try:
        (train,) = parse(f"train {{ {name} = {value} }}").trains()
    except SpecError as exc:
        raise TrainError(f"--set {shown}: {exc.message}", hint=exc.hint or f"give {name} as the spec would write "
                                                                             "it") from None
    if len(train.body) != 1:
        raise TrainError(f"--set {shown}: one setting a --set", hint="give each setting its own --set")


def load_plan(spec, *, model: str | None = None, settings: dict | None = None, limits: Limits | None = None):
    """The model graph of ``spec`` with its train section checked (and ``settings`` applied first)."""
    from .pipeline import elaborate_source, read_spec

    text, path = read_spec(spec)
    if settings:
        first = elaborate_source(text, path, model=model, limits=limits).graph
        if first.train is None:
            raise TrainError(f"{first.name} has no train section", path=path,
                             hint=f"add `train {first.name} {{ loss = ...; optimizer = ...; data = ... }}`")
        try:
            text = with_settings(text, first.train.span, {k: _setting_text(v) for k, v in settings.items()})
        except SpecError as exc:
            raise exc.locate(path, None) from None
    graph = elaborate_source(text, path, model=model, limits=limits).graph
    if graph.train is None:
        raise TrainError(f"{graph.name} has no train section", path=path,
                         hint=f"add `train {graph.name} {{ loss = ...; optimizer = ...; data = ... }}`")
    return graph, text


def _setting_text(v) -> str:
    if isinstance(v, str):
        return v  # spec text: FakeData(size=64), "cpu" (quoted), 0.1
    return repr(v)


# ---------------------------------------------------------------- running
def train(spec, *, model: str | None = None, epochs: int | None = None, device: str | None = None,
          seed: int | None = None, batch_size: int | None = None, out: str | None = None,
          resume: bool | str = False, progress: bool | None = None, settings: dict | None = None,
          limits: Limits | None = None, echo=None, on_warnings=None) -> TrainResult:
    """Train the model of ``spec`` as its train section says; return the module and its history.

    ``epochs``, ``device``, ``seed`` and ``batch_size`` override the spec's settings, as does ``settings``
    (``{"data": 'FakeData(size=64, image_size=(1, 28, 28))'}``: spec text, or a number or bool). ``out``
    is the folder for the checkpoint (written after every epoch, and on Ctrl-C) and the final weights; without
    it nothing is written. ``resume`` continues from ``out``'s checkpoint (True) or from a checkpoint file.
    ``progress`` shows a progress bar (default: when stderr is a terminal); ``echo`` takes each epoch's line
    (default: print it). ``on_warnings`` takes the spec's warnings before training starts, and may stop it
    by raising (default: they go to Python's `warnings` module).

    >>> result = train("specs/linear_regression.nnspec", epochs=2, progress=False, echo=lambda line: None)
    >>> len(result.history), result.weights
    (2, None)
    """

    overrides = dict(settings or {})
    for k, v in (("epochs", epochs), ("seed", seed), ("batch_size", batch_size)):
        if v is not None:
            overrides[k] = v
    if device is not None:
        overrides["device"] = json.dumps(device)
    graph, text = load_plan(spec, model=model, settings=overrides, limits=limits)
    (on_warnings or issue)(graph.warnings)
    plan = graph.train
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    distributed = "WORLD_SIZE" in os.environ
    from .data import check_data, check_loaded

    try:
        check_data(plan)
        dev = _device(plan.device, distributed, plan.span)
    except SpecError as exc:
        raise exc.locate(graph.path, text) from None
    ns = _script_module(graph, distributed)
    if distributed:
        import torch.distributed as dist

        if dev.startswith("cuda"):
            import torch

            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo")
        if plan.batch_size % world:
            raise TrainError(f"batch_size {plan.batch_size} does not split evenly over {world} processes",
                             plan.span, path=graph.path, source=text,
                             hint=f"choose a batch size divisible by {world}")
    echo = echo if echo is not None else (lambda line: print(line, flush=True))
    say = echo if rank == 0 else (lambda line: None)
    try:
        built = ns.setup(dev, True) if distributed else ns.setup(dev)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, TypeError) as exc:
        raise TrainError(f"setting up the training failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                         plan.span, path=graph.path, source=text,
                         hint="the data, model, loss and optimizer are made in this order: see the printed script "
                              "(modelspec codegen --train) for the line") from None
    net, train_loader, val_loader, loss_fn, optimizer, scheduler = built
    total = getattr(scheduler, "total_steps", None)  # OneCycleLR: its step raises past total_steps
    if isinstance(total, int) and plan.per_batch_scheduler and total < plan.epochs * len(train_loader):
        raise TrainError(f"{plan.scheduler} has total_steps={total}, but {plan.epochs} epochs of {len(train_loader)} "
                         f"batches take {plan.epochs * len(train_loader)} steps", plan.span, path=graph.path,
                         source=text, hint="leave total_steps out: epochs and steps_per_epoch are then filled in")
    try:
        check_loaded(plan, graph, [train_loader, val_loader])
    except SpecError as exc:
        raise exc.locate(graph.path, text) from None
    inner = net.module if hasattr(net, "module") else net
    history: list[dict] = []
    start = 0
    if resume:
        if not isinstance(resume, str) and out is None:
            raise TrainError("resume=True continues from the checkpoint in out, and no out is given",
                             hint="pass out=DIR (the folder it trained into), or resume=PATH of a checkpoint")
        path = resume if isinstance(resume, str) else os.path.join(out, CHECKPOINT)
        try:
            start, history = _restore(path, inner, optimizer, scheduler, train_loader, graph)
        except SpecError as exc:
            raise exc.locate(graph.path, None) from None
        say(f"resumed from {path} after epoch {start}")
    writes = rank == 0 and out is not None
    if writes:
        os.makedirs(out, exist_ok=True)
    checkpoint = os.path.join(out, CHECKPOINT) if out is not None else None
    show = progress if progress is not None else sys.stderr.isatty()
    per_batch = plan.scheduler is not None and plan.per_batch_scheduler
    epoch = start
    try:
        for epoch in range(start, plan.epochs):
            if distributed:
                train_loader.sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            batches = _progress(train_loader, epoch, plan.epochs, show and rank == 0)
            args = (batches, net, loss_fn, optimizer, dev) + ((scheduler,) if per_batch else ())
            metrics = ns.train_loop(*args)
            if val_loader is not None:
                metrics.update(ns.evaluate(val_loader, net, loss_fn, dev))
            if scheduler is not None and not per_batch:
                scheduler.step(metrics["val_loss"]) if plan.scheduler_metric else scheduler.step()
            history.append(metrics)
            if writes:
                _save(checkpoint, _state(epoch + 1, inner, optimizer, scheduler, train_loader, history, graph))
            say(_epoch_line(epoch + 1, plan.epochs, metrics, time.perf_counter() - t0))
    except KeyboardInterrupt:
        if writes:
            saved = os.path.join(out, INTERRUPTED)
            # the epochs it holds are the whole ones, the weights as far as the one interrupted got
            _save(saved, _state(len(history), inner, optimizer, scheduler, train_loader, history, graph,
                                partial=True))
            print(f"modelspec train: interrupted in epoch {epoch + 1}: saved {saved} (the weights as they were); "
                  f"{checkpoint} holds the last whole epoch. Continue with --resume.", file=sys.stderr)
        raise
    weights = os.path.join(out, f"{graph.name}.pt") if writes else None
    result = TrainResult(inner, history, weights, checkpoint if writes else None, world)
    if distributed:
        result.max_rank_difference = _rank_difference(inner)
        import gc

        import torch.distributed as dist

        # the DDP wrapper and its reducer go before the process group, each rank once the other is done with it:
        # gloo's threads, torn down at exit with a group still held, end the process with "terminate called"
        del net, built
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    if writes:
        _save(weights, inner.state_dict())
    return result


def _script_module(graph: ModelGraph, distributed: bool):
    from .build import load_source
    from .trainscript import training_script

    return load_source(training_script(graph, distributed=distributed), graph)


def _device(device: str, distributed: bool, span=None) -> str:
    import torch

    if device == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if distributed else "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError("the spec trains on CUDA, and this machine has no CUDA device", span,
                         hint='use --device cpu, or device = "auto" in the spec')
    if device.startswith("cuda") and distributed:  # each process its own GPU, as the printed script does
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def _progress(loader, epoch: int, epochs: int, show: bool):
    if not show:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, file=sys.stderr)


def _epoch_line(epoch: int, epochs: int, metrics: dict, took: float) -> str:
    parts = [f"{k} {v:.6g}" for k, v in metrics.items()]
    return f"epoch {epoch}/{epochs}: " + ", ".join(parts) + f" ({took:.1f} s)"


def _state(epoch, model, optimizer, scheduler, loader, history, graph, partial=False) -> dict:
    import torch

    gen = getattr(loader, "generator", None)
    return {"model_name": graph.name, "training": _signature(graph), "epoch": epoch, "partial": partial,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else None,
            "history": list(history), "torch_rng": torch.get_rng_state(),
            "loader_rng": gen.get_state() if gen is not None else None}


def _signature(graph) -> dict:
    """What a checkpoint must have been trained with to be resumed: the optimizer and scheduler as printed."""
    return {"optimizer": graph.train.optimizer_code, "scheduler": graph.train.scheduler_code or ""}


def _save(path: str, obj) -> None:
    """torch.save, atomically: a file once named is whole (an interrupted write leaves the old one)."""
    import torch

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C or a full disk mid-write: the file named before stays as it was
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _restore(path, model, optimizer, scheduler, loader, graph):
    import torch

    if not os.path.isfile(path):
        raise TrainError(f"no checkpoint at {path}", hint="train once with --out DIR, then --resume continues it")
    try:
        state = torch.load(path, weights_only=True)
    except Exception:
        raise TrainError(f"{path} is not a checkpoint that modelspec train wrote",
                         hint="resume from DIR/checkpoint.pt or DIR/interrupted.pt of an earlier run") from None
    if not isinstance(state, dict) or "model_name" not in state or "optimizer" not in state:
        raise TrainError(f"{path} is no checkpoint of modelspec train (the final MODEL.pt holds the weights alone)",
                         hint="resume from DIR/checkpoint.pt or DIR/interrupted.pt")
    if state["model_name"] != graph.name:
        raise TrainError(f"{path} is a checkpoint of {state['model_name']!r}, not of {graph.name}",
                         hint="resume with the spec that wrote it")
    was, now = state.get("training", {}), _signature(graph)
    for what in ("optimizer", "scheduler"):
        if was.get(what) != now[what]:
            raise TrainError(f"{path} was trained with {what} {was.get(what) or 'none'}, and the spec now says "
                             f"{now[what] or 'none'}", hint=f"resume with the {what} it was trained with, or train "
                                                            "afresh into another --out")
    if state["epoch"] > graph.train.epochs:
        raise TrainError(f"{path} holds {state['epoch']} epochs already, and the spec asks for {graph.train.epochs}",
                         hint=f"give --epochs above {state['epoch']} to train more")
    from .build import weights_misfit

    problems = weights_misfit(model.state_dict(), state["model"])
    if problems:
        raise TrainError(f"{path} does not fit this model: {'; '.join(problems)}",
                         hint="resume with the spec (and settings) that wrote it")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
    except TrainError:
        raise
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][:2]
        raise TrainError(f"{path} does not fit this model: {' '.join(lines)}",
                         hint="resume with the spec (and settings) that wrote it") from None
    torch.set_rng_state(state["torch_rng"])
    gen = getattr(loader, "generator", None)
    if gen is not None and state.get("loader_rng") is not None:
        gen.set_state(state["loader_rng"])
    return state["epoch"], list(state["history"])


def _rank_difference(model) -> float:
    """The largest difference between any process's weights and process 0's."""
    import torch
    import torch.distributed as dist

    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).float()
    every = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(every, flat)
    return max(float((t - every[0]).abs().max()) for t in every) if flat.numel() else 0.0


# ---------------------------------------------------------------- several processes
def launch(argv: list[str], nproc: int) -> int:
    """Run ``modelspec train`` under torch.distributed.run with ``nproc`` processes on this machine."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "modelspec", *argv]
    return subprocess.call(cmd)
