"""A spec's train section, checked: the loss, optimizer, scheduler, data and loop settings of one model.

``train Model { ... }`` is elaborated after its model, by the same elaborator, without torch: the loss is
a catalog entry called on the model's output and the declared target (so its shape and dtype rules, and
their messages, are the layers'); the optimizer and scheduler are bound against torch's signatures
(`modelspec.optim`); data computed in the spec (``data { x = ...; y = ... }``) runs through forward's
shape inference, as a model with no inputs; a file or a torchvision dataset is checked for what can be
known before it is read. The result is a `TrainPlan`, which ``summary`` shows and `modelspec.trainscript`
prints as a training script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import ir
from .errors import Span, SpecArgError, SpecNameError, SpecShapeError, did_you_mean
from .layers import CATALOG
from .layers.base import plain_value
from .layers.loss import Loss, reduction_of
from .model import Line, ModelGraph, ModuleNode, TensorInfo
from .optim import (OPTIMIZERS, SCHEDULERS, OptimProblem, bind_optimizer, bind_scheduler, optimizer_code,
                    optimizer_name, scheduler_code, scheduler_name)
from .shapes import Sym, Val, shape_str
from .values import Recipe, Scope

# the settings a train section takes, with their defaults (None: required, or absent when optional)
SETTINGS = {
    "loss": None, "optimizer": None, "scheduler": None, "data": None, "validation": None,
    "epochs": 10, "batch_size": 64, "shuffle": True, "seed": 0, "device": "auto", "metrics": None,
}
REQUIRED_SETTINGS = ("loss", "optimizer", "data")
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # the devices a train section (or train --device) may name
METRICS = ("loss", "accuracy")

# torchvision's datasets a spec may name: their samples (an image tensor after ToTensor, a class index)
DATASETS = {
    "MNIST": {"image": (1, 28, 28), "classes": 10, "sizes": (60000, 10000)},
    "FashionMNIST": {"image": (1, 28, 28), "classes": 10, "sizes": (60000, 10000)},
    "CIFAR10": {"image": (3, 32, 32), "classes": 10, "sizes": (50000, 10000)},
    "FakeData": {"image": None, "classes": None, "sizes": None},  # from its arguments
}
DATASET_ARGS = {
    "MNIST": {"root": None, "train": True, "download": False},
    "FashionMNIST": {"root": None, "train": True, "download": False},
    "CIFAR10": {"root": None, "train": True, "download": False},
    "FakeData": {"size": 1000, "image_size": (3, 224, 224), "num_classes": 10, "random_offset": 0},
}
FILE_KINDS = (".pt", ".npz", ".csv")
# the names the printed training script uses: a model input, the target or a tensor of data { ... } of one of
# these names would be shadowed by (or shadow) the script's own, so a train section refuses them
SCRIPT_NAMES = {
    "model", "loss", "loss_fn", "pred", "optimizer", "scheduler", "dataloader", "device", "total_loss", "correct",
    "count", "epoch", "metrics", "closure", "sums", "rows", "row", "f", "tensors", "arrays", "dataset",
    "train_data", "val_data", "train_loader", "val_loader", "sampler", "val_sampler", "world", "rank",
    "distributed", "torch", "nn", "F", "dist", "np", "csv", "os", "datasets", "ToTensor", "TensorDataset",
    "DataLoader", "random_split", "DistributedSampler", "DistributedDataParallel", "load_data", "load_validation",
    "train_loop", "evaluate", "setup", "main",
}
# a prediction passed through one of these before CrossEntropyLoss is squashed: the loss applies log-softmax
# what may make a model's output, by how it changes the scores a CrossEntropyLoss takes: layer names, and
# functions as forward spells them (F.relu, torch.relu, .relu for the method)
_SQUASHING = {"relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU",
              "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softmax": "Softmax",
              "log_softmax": "LogSoftmax"}
SQUASHERS = {**{layer: layer for layer in _SQUASHING.values()},
             **{f"{ns}{fn}": layer for fn, layer in _SQUASHING.items() for ns in ("F.", "torch.", ".")}}


@dataclass
class DataSource:
    """Where a train section's tensors come from."""

    kind: str  # "synthetic" | "file" | "dataset"
    span: Span
    names: list[str]  # the tensors it gives, in order: the model's inputs, then the target
    samples: dict[str, TensorInfo] = field(default_factory=dict)  # name -> one sample's shape and dtype
    size: int | None = None  # how many samples, where known before reading
    lines: list[Line] = field(default_factory=list)  # synthetic: the statements that compute it
    path: str | None = None  # file: as the spec writes it (relative to the spec's folder)
    path_span: Span | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # file: name -> the key, or the CSV columns, it reads
    column_spans: dict[str, Span] = field(default_factory=dict)
    dataset: str | None = None  # dataset: torchvision's class
    args: dict = field(default_factory=dict)  # dataset: its arguments, defaults filled
    classes: int | None = None  # dataset: how many classes its labels index

    @property
    def suffix(self) -> str | None:
        return next((s for s in FILE_KINDS if self.path and self.path.lower().endswith(s)), None)


@dataclass
class TrainPlan:
    """A model's training, checked: everything the loop, ``summary`` and the printed script need."""

    model: str
    span: Span
    inputs: list[tuple[str, TensorInfo]]
    target_name: str
    target: TensorInfo
    output: TensorInfo
    loss: str  # the catalog name, "CrossEntropyLoss"
    loss_code: Any  # its constructor call, an expression
    loss_reduction: str
    loss_node: ModuleNode
    optimizer: str
    optimizer_args: dict
    optimizer_code: str  # torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler: str | None
    scheduler_args: dict
    scheduler_code: str | None
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int
    device: str
    metrics: list[str]
    accuracy: str | None  # how accuracy is counted: "classes" (argmax), "logits" (> 0), "probabilities" (> 0.5)
    data: DataSource
    validation: float | DataSource | None
    classes: int | None  # the class count a class-index target indexes (the output's class dim)
    needs_closure: bool = False  # LBFGS: step(closure)
    per_batch_scheduler: bool = False
    scheduler_metric: bool = False  # ReduceLROnPlateau: step(val_loss)
    path: str | None = None  # the spec file, for data paths relative to it

    def describe(self) -> list[tuple[str, str]]:
        """What summary shows: (setting, value) rows."""
        rows = [("loss", f"{self.loss_code_text()}  ({self.output} vs target {self.target_name} "
                         f"{shape_str(self.target.shape)} {self.target.dtype})"),
                ("optimizer", self.optimizer_code)]
        if self.scheduler_code:
            rows.append(("scheduler", self.scheduler_code + ("  (stepped every batch)" if self.per_batch_scheduler
                                                             else "")))
        rows += [("epochs", str(self.epochs)), ("batch size", str(self.batch_size)),
                 ("shuffle", str(self.shuffle)), ("seed", str(self.seed)), ("device", self.device),
                 ("metrics", ", ".join(self.metrics)), ("data", describe_data(self.data))]
        if self.validation is not None:
            rows.append(("validation", f"{self.validation:.0%} of the data, split off with the seed"
                         if isinstance(self.validation, float) else describe_data(self.validation)))
        return rows

    def data_path(self, path: str) -> str:
        """A data file's path as it is opened: the spec's own folder joined to what the spec says."""
        import os

        if os.path.isabs(path) or not self.path:
            return path
        return os.path.normpath(os.path.join(os.path.dirname(self.path), path))

    def loss_code_text(self) -> str:
        from .printer import CODE

        return CODE.text(self.loss_code)


def describe_data(d: DataSource) -> str:
    shapes = ", ".join(f"{n} {shape_str(d.samples[n].shape)} {d.samples[n].dtype}" for n in d.names
                       if n in d.samples)
    if d.kind == "synthetic":
        return f"computed in the spec: {d.size} samples of {shapes}"
    if d.kind == "file":
        cols = ", ".join(f"{n} from {c!r}" for n, c in d.columns.items())
        return f"{d.path}: {cols}"
    count = f"{d.size:,} samples" if d.size else "samples"
    return f"torchvision {d.dataset}: {count} of {shapes}"


class TrainElaborator:
    """Checks one ``train`` section against its elaborated model (see the module's docstring)."""

    def __init__(self, elaborator, graph: ModelGraph, train: ir.Train):
        self.el, self.graph, self.train = elaborator, graph, train
        self.scope = Scope("model", graph.name, "", {}, train.span, 0, elaborator.state.names)

    # -- settings ---------------------------------------------------------------
    def plan(self) -> TrainPlan:
        t = self.train
        settings: dict[str, ir.TrainSetting] = {}
        target: ir.TrainTarget | None = None
        blocks: dict[str, ir.TrainData] = {}
        for stmt in t.body:
            if isinstance(stmt, ir.TrainTarget):
                if target is not None:
                    raise SpecNameError("the target is declared twice", stmt.span, hint="keep one declaration")
                target = stmt
                continue
            name = stmt.name
            if name in settings or name in blocks:
                raise SpecNameError(f"{name!r} is set twice in the train section", stmt.span, hint="keep one of them")
            if isinstance(stmt, ir.TrainData):
                blocks[name] = stmt
                continue
            if name not in SETTINGS:
                raise SpecNameError(f"a train section has no setting {name!r}", stmt.span,
                                    hint=did_you_mean(name, list(SETTINGS)) or
                                    "the settings: " + ", ".join(SETTINGS))
            settings[name] = stmt
        for name in REQUIRED_SETTINGS:
            if name not in settings and name not in blocks:
                example = {"loss": "loss = CrossEntropyLoss()", "optimizer": "optimizer = SGD(lr=0.01)",
                           "data": 'data = load("train.csv", ...), data = FashionMNIST(root="data"), or '
                                   "data { x = ...; y = ... }"}[name]
                raise SpecArgError(f"the train section sets no {name}", t.span, hint=f"add {example}")
        if target is None:
            raise SpecArgError("the train section declares no target: the tensor the loss compares the output "
                               "with", t.span, hint="add `target y: Long[B]` (class indices) or `target y: [B, 1]`")
        if len(self.graph.outputs) != 1:
            raise SpecShapeError(f"{self.graph.name} returns {len(self.graph.outputs)} tensors; a train section's "
                                 f"loss takes one", t.span,
                                 hint="return the prediction alone, or train a model that wraps this one")
        inputs = self.graph.inputs
        for name, _ in inputs:
            self.script_name(name, "the model input", self.train.span)
        self.script_name(target.name, "the target", target.span)
        target_info = self.target_info(target, inputs)
        output = self.graph.outputs[0]
        plain = {k: self.value(s) for k, s in settings.items() if k not in ("loss", "optimizer", "scheduler",
                                                                             "data", "validation")}
        epochs = self.count(plain, settings, "epochs", 1)
        batch = self.count(plain, settings, "batch_size", 1)
        seed = self.count(plain, settings, "seed", 0)
        shuffle = self.flag(plain, settings, "shuffle")
        device = self.device(plain, settings)
        self.loss_name = getattr(self.el.static.eval_static(settings["loss"].value, self.scope, {},
                                                            allow_modules=True), "name", None)
        if "data" in settings and isinstance(settings["data"].value, ir.Call):  # a dataset's labels: class indices
            self.check_dataset_target(settings["data"].value, target, target_info)
        loss_name, loss_code, reduction, loss_node, classes = self.loss(settings["loss"], output, target_info,
                                                                        target.name)
        accuracy = accuracy_kind(loss_name, target_info, output)
        metrics = self.metrics(plain, settings, accuracy, loss_name)
        opt = self.optimizer(settings["optimizer"])
        sched = self.scheduler(settings.get("scheduler"), opt[0], epochs)
        names = [n for n, _ in inputs] + [target.name]
        expected = dict(inputs) | {target.name: target_info}
        data = self.data(settings.get("data") or blocks.get("data"), names, expected, "data")
        validation = None
        if "validation" in settings or "validation" in blocks:
            validation = self.validation(settings.get("validation") or blocks.get("validation"), names, expected,
                                         data)
        self.check_classes(data, classes, loss_name, settings.get("data") or blocks.get("data"))
        if isinstance(validation, DataSource):
            self.check_classes(validation, classes, loss_name, settings.get("validation") or blocks.get("validation"))
        plan = TrainPlan(
            model=self.graph.name, span=t.span, inputs=list(inputs), target_name=target.name, target=target_info,
            output=output, loss=loss_name, loss_code=loss_code, loss_reduction=reduction, loss_node=loss_node,
            optimizer=opt[0], optimizer_args=opt[1], optimizer_code=opt[2],
            scheduler=sched[0] if sched else None, scheduler_args=sched[1] if sched else {},
            scheduler_code=sched[2] if sched else None, epochs=epochs, batch_size=batch, shuffle=shuffle,
            seed=seed, device=device, metrics=metrics, accuracy=accuracy if "accuracy" in metrics else None,
            data=data, validation=validation, classes=classes,
            needs_closure=OPTIMIZERS[opt[0]].needs_closure,
            per_batch_scheduler=bool(sched) and SCHEDULERS[sched[0]].per_batch,
            scheduler_metric=bool(sched) and SCHEDULERS[sched[0]].needs_metric,
            path=self.el.state.spec.path,
        )
        if plan.scheduler_metric and validation is None:
            raise SpecArgError(f"{plan.scheduler} steps on the validation loss, and the train section has no "
                               "validation data", settings["scheduler"].value.span,
                               hint="add validation = 0.1 (a tenth of the data, split off), or use another scheduler")
        self.squash_warning(loss_name, settings["loss"])
        return plan

    @staticmethod
    def script_name(name: str, what: str, span: Span) -> None:
        if name in SCRIPT_NAMES:
            raise SpecNameError(f"{what} is named {name!r}, which the training script uses for its own", span,
                                hint=f"name it otherwise, e.g. {name}_in" if what != "the target" else
                                "name it otherwise, e.g. y or labels")

    def value(self, stmt: ir.TrainSetting):
        v = self.el.static.eval_static(stmt.value, self.scope, {})
        if not isinstance(v, Val):
            raise SpecArgError(f"{stmt.name} must be a value, not a module", stmt.value.span,
                               hint=f"e.g. {stmt.name} = {SETTINGS[stmt.name]!r}")
        return plain_value(v)

    @staticmethod
    def count(plain, settings, name: str, least: int) -> int:
        v = plain.get(name, SETTINGS[name])
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise SpecArgError(f"{name} must be an integer of at least {least}, not {v!r}", settings[name].value.span,
                               hint=f"e.g. {name} = {SETTINGS[name]}")
        return v

    @staticmethod
    def flag(plain, settings, name: str) -> bool:
        v = plain.get(name, SETTINGS[name])
        if not isinstance(v, bool):
            raise SpecArgError(f"{name} must be True or False, not {v!r}", settings[name].value.span,
                               hint=f"{name} = True")
        return v

    @staticmethod
    def device(plain, settings) -> str:
        v = plain.get("device", "auto")
        import re

        if not isinstance(v, str) or not re.fullmatch(DEVICES, v):
            raise SpecArgError(f"device must be \"auto\", \"cpu\", \"cuda\", \"cuda:N\" or \"mps\", not {v!r}",
                               settings["device"].value.span,
                               hint='"auto" takes a GPU where there is one, as the tutorials do')
        return v

    def metrics(self, plain, settings, accuracy: str | None, loss: str) -> list[str]:
        if "metrics" not in plain:
            return ["loss", "accuracy"] if accuracy == "classes" else ["loss"]
        v = plain["metrics"]
        span = settings["metrics"].value.span
        items = list(v) if isinstance(v, (tuple, list)) else [v]
        out = []
        for m in items:
            if m not in METRICS:
                close = did_you_mean(str(m), METRICS) or ("did you mean accuracy?" if str(m).startswith("acc") else "")
                raise SpecArgError(f"unknown metric {m!r}", span,
                                   hint=(close + " " if close else "") + 'the metrics: "loss", "accuracy"')
            if m == "accuracy" and accuracy is None:
                raise SpecArgError(f"accuracy needs class predictions, and {loss} on a {self.graph.outputs[0]} "
                                   "output makes none", span,
                                   hint="accuracy counts class-index targets (CrossEntropyLoss, NLLLoss) and 0/1 "
                                        "targets (BCEWithLogitsLoss, BCELoss)")
            if m not in out:
                out.append(m)
        return ["loss"] + [m for m in out if m != "loss"]

    # -- the target and the loss --------------------------------------------------
    def target_info(self, target: ir.TrainTarget, inputs) -> TensorInfo:
        self.el._check_name(target.name, target.span, "the target")
        if target.name in dict(inputs):
            raise SpecNameError(f"the target {target.name!r} has the name of a model input", target.span,
                                hint="name it otherwise, e.g. y or labels")
        info = self.el.tensor_type(target.type, self.scope, declare=True)
        batch = inputs[0][1].shape[0] if inputs and inputs[0][1].shape else None
        if not info.shape or batch is None or info.shape[0].value != batch.value:
            raise SpecShapeError(f"the target's first dim must be the batch, {batch}, as the model input's is; "
                                 f"it is {shape_str(info.shape)}", target.type.span,
                                 hint=f"e.g. target {target.name}: Long[{batch}]")
        info.source = target.name  # a tensor of the data: its class indices are drawn like an input's
        return info

    def loss(self, stmt: ir.TrainSetting, output: TensorInfo, target: TensorInfo, target_name: str):
        r = self.el.static.eval_static(stmt.value, self.scope, {}, allow_modules=True)
        if not isinstance(r, Recipe) or r.kind != "layer" or not isinstance(CATALOG.get(r.name), Loss):
            losses = ", ".join(n for n, layer in CATALOG.items() if isinstance(layer, Loss))
            what = r.name if isinstance(r, Recipe) else "a value"
            raise SpecArgError(f"loss must be one of torch's losses, not {what}", stmt.value.span,
                               hint=f"the losses: {losses}")
        layer = CATALOG[r.name]
        if layer.inputs != ("input", "target"):
            raise SpecArgError(f"{r.name} takes ({', '.join(layer.inputs)}); a train section's loss compares one "
                               "prediction with one target", stmt.value.span,
                               hint="compute it in the model's forward and return the prediction it needs")
        inst = self.el.modules.instantiate(r, [output, target], self.scope, "loss", stmt.value.span)
        out = inst.call([output, target], stmt.value.span)
        reduction = reduction_of(inst.bound)
        if reduction == "none" or not isinstance(out, TensorInfo) or out.shape != ():
            raise SpecArgError(f"{r.name} with reduction='none' gives a loss per element; training needs one "
                               "number", stmt.value.span, hint="use reduction='mean' (the default) or 'sum'")
        found = layer.classes(inst.bound, output.shape, target.shape) if layer.classes is not None else None
        classes = found[1] if found is not None else None
        return r.name, inst.expr, reduction, inst.node, classes

    def squash_warning(self, loss: str, stmt: ir.TrainSetting) -> None:
        """A CrossEntropyLoss after an activation or softmax, or an NLLLoss after a softmax: a model whose
        last step is not what its loss takes."""
        last = last_step(self.graph.root)
        if last is None or last[0] not in SQUASHERS:
            return
        layer, made = SQUASHERS[last[0]], f"{last[0]}{f' `{last[1]}`' if last[1] else ''}"
        if loss == "NLLLoss" and layer == "Softmax":
            self.el.state.warn(
                "activation-before-loss", f"NLLLoss takes log-probabilities, but the model's output comes from "
                f"{made}: probabilities, whose log it never takes", stmt.value.span,
                hint="use LogSoftmax(dim=1) as the model's last step, or CrossEntropyLoss on the scores before it")
            return
        if loss != "CrossEntropyLoss":
            return
        if layer == "LogSoftmax":
            message = (f"CrossEntropyLoss applies log-softmax itself, and the model's output comes from {made}: "
                       "applied twice it changes nothing, so the model's own is redundant")
            hint = "use NLLLoss, which takes log-probabilities, or remove the LogSoftmax and keep CrossEntropyLoss"
        else:
            message = (f"CrossEntropyLoss takes raw scores (logits) and applies log-softmax itself, but the model's "
                       f"output comes from {made}: the scores are squashed first, and training is slower or stalls")
            hint = (f"remove the last {layer}: the last Linear's raw scores are what CrossEntropyLoss takes"
                    + ("; for probabilities, apply softmax to the model's output after training" if layer == "Softmax"
                       else ""))
        self.el.state.warn("activation-before-loss", message, stmt.value.span, hint=hint)

    # -- optimizer and scheduler ---------------------------------------------------
    def call_parts(self, e: ir.Expr, what: str):
        if not isinstance(e, ir.Call):
            example = "SGD(lr=0.01)" if what == "optimizer" else "StepLR(step_size=30)"
            raise SpecArgError(f"{what} must be a call, e.g. {example}", e.span, hint=f"write {what} = Name(arguments)")
        from .static import StaticEvaluator

        name = StaticEvaluator.dotted(e.func)
        args, spans = [], []
        for a in e.args:
            if a.kind == "starred":
                raise SpecArgError("`*` is not taken here", a.span, hint="give each argument by name")
            args.append(plain_value(self.el.static.eval_static(a, self.scope, {})))
            spans.append(a.span)
        kwargs, kw_spans = {}, {}
        for kw in e.keywords:
            if kw.name in kwargs:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span, hint="keep one of them")
            kwargs[kw.name] = plain_value(self.el.static.eval_static(kw.value, self.scope, {}))
            kw_spans[kw.name] = kw.span
        return name, args, spans, kwargs, kw_spans

    def bound(self, e: ir.Call, what: str, normalize, bind, code):
        name, args, spans, kwargs, kw_spans = self.call_parts(e, what)
        cls = normalize(name or "")
        try:
            bound = bind(cls or name or "?", args, kwargs)  # an unknown name raises, with its did-you-mean
            given = set(list(bound)[:len(args)]) | set(kwargs)  # printed as the spec writes them, defaults too
            text = code(cls, bound, given)
        except OptimProblem as p:
            span = kw_spans.get(p.arg) if p.arg in kw_spans else spans[p.index] if p.index is not None \
                and p.index < len(spans) else e.func.span if cls is None else e.span
            hint = p.hint or self.default_hint(cls, p.arg, what)
            raise SpecArgError(p.message, span, hint=hint) from None
        return cls, bound, text

    @staticmethod
    def default_hint(cls: str | None, arg: str | None, what: str) -> str:
        from .layers.base import REQUIRED
        from .optim import literal

        entry = (OPTIMIZERS if what == "optimizer" else SCHEDULERS).get(cls or "")
        param = entry.param(arg) if entry is not None and arg else None
        if param is not None and param.default is not REQUIRED:
            return f"torch's default is {arg}={literal(param.default)}"
        return f"see torch.optim{'.lr_scheduler' if what == 'scheduler' else ''}.{cls}'s arguments"

    def optimizer(self, stmt: ir.TrainSetting):
        got = self.bound(stmt.value, "optimizer", optimizer_name, bind_optimizer,
                         lambda n, b, given: optimizer_code(n, b, given=given))
        entry = OPTIMIZERS[got[0]]
        why = entry.sparse_grads or entry.only_2d  # a step that refuses what model.parameters() holds
        if why:
            raise SpecArgError(f"{entry.name} cannot train this model from a train section: {why}", stmt.value.span,
                               hint="use Adam, AdamW or SGD; a model with sparse or only 2-d parameters can be "
                                    "trained by the printed script, edited")
        return got

    def scheduler(self, stmt: ir.TrainSetting | None, optimizer: str, epochs: int):
        if stmt is None:
            return None
        fills = {"epochs": str(epochs), "steps_per_epoch": "len(train_loader)"}
        return self.bound(stmt.value, "scheduler", scheduler_name,
                          lambda n, a, k: bind_scheduler(n, a, k, optimizer=optimizer),
                          lambda n, b, given: scheduler_code(n, b, fills=fills, given=given))

    # -- data --------------------------------------------------------------------
    def data(self, stmt, names: list[str], expected: dict, what: str) -> DataSource:
        if isinstance(stmt, ir.TrainData):
            return self.synthetic(stmt, names, expected)
        e = stmt.value
        if not isinstance(e, ir.Call):
            raise SpecArgError(f"{what} must be load(FILE, ...), a torchvision dataset or a data {{ ... }} block",
                               e.span, hint=f'e.g. {what} = load("train.csv", x=["a", "b"], y="label")')
        from .static import StaticEvaluator

        func = StaticEvaluator.dotted(e.func) or ""
        short = func.removeprefix("torchvision.").removeprefix("datasets.")
        if func == "load":
            return self.file(e, names, expected)
        if short in DATASETS:
            return self.dataset(e, short, names, expected)
        raise SpecNameError(f"unknown data source {func or 'call'!r}", e.func.span,
                            hint=did_you_mean(short, ["load", *DATASETS]) or
                            "load(FILE, ...) reads .pt, .npz or .csv; or name a torchvision dataset: " +
                            ", ".join(DATASETS))

    def synthetic(self, stmt: ir.TrainData, names: list[str], expected: dict) -> DataSource:
        assigned = set()
        for s in stmt.body:
            if isinstance(s, ir.Return):
                raise SpecArgError(f"a {stmt.name} {{ ... }} block returns nothing: it gives the tensors it assigns",
                                   s.span, hint=f"delete the return; assign {', '.join(names)}")
            if isinstance(s, ir.Assign):
                for n in _target_names(s.target):
                    self.script_name(n, f"a tensor of {stmt.name} {{ ... }}", s.span)
                assigned |= set(_target_names(s.target))
        missing = [n for n in names if n not in assigned]
        if missing:
            raise SpecNameError(f"{stmt.name} {{ ... }} computes no {', '.join(missing)}", stmt.span,
                                hint=f"assign every model input and the target: {', '.join(names)}")
        returns = ir.Return(values=[ir.Name(id=n, span=stmt.span) for n in names], span=stmt.span)
        fwd = ir.Forward(params=[], body=[*stmt.body, returns], span=stmt.span)
        model = ir.Model(name="MakeData", inputs=[], body=[fwd], span=stmt.span)
        state = self.el.state
        sub = type(self.el)(state.spec, state.limits)  # a fresh elaborator of the same spec, for a model of its own
        sub.state.blocks.update(state.blocks)
        sub.state.consts.update(state.consts)
        graph = sub.elaborate_model(model)
        state.steps += sub.state.steps  # the data's work counts as the model's does
        outs = graph.outputs
        sizes = set()
        samples = {}
        for n, info in zip(names, outs):
            if not info.shape or not isinstance(info.shape[0].value, int):
                raise SpecShapeError(f"{stmt.name} {{ ... }}: {n} is {shape_str(info.shape)}; its first dim must be "
                                     "a number of samples", stmt.span,
                                     hint="give the data fixed sizes, e.g. torch.randn(100, 3)")
            sizes.add(info.shape[0].value)
            samples[n] = TensorInfo(info.shape[1:], info.dtype)
        if len(sizes) > 1:
            shown = ", ".join(f"{n} {shape_str(i.shape)}" for n, i in zip(names, outs))
            raise SpecShapeError(f"{stmt.name} {{ ... }} gives tensors of different sample counts: {shown}",
                                 stmt.span, hint="every tensor needs one row per sample")
        src = DataSource("synthetic", stmt.span, names, samples, size=sizes.pop(),
                         lines=graph.classes[-1].forward_lines[:-1])
        for n in names:
            self.check_sample(src, n, expected[n], stmt.span)
        return src

    def check_sample(self, src: DataSource, name: str, want: TensorInfo, span: Span):
        """One sample of the data must be what the model input (or the target) declares without its batch dim."""
        got = src.samples[name]
        decl = want.shape[1:]
        bound: dict[str, int] = {}
        fits = len(got.shape) == len(decl)
        for g, d in zip(got.shape, decl) if fits else ():
            if isinstance(d.value, int):
                fits = fits and g.value == d.value
            elif isinstance(d.value, Sym) and len(d.value.symbols) == 1 and d.value == Sym.var(next(iter(
                    d.value.symbols))):
                sym = next(iter(d.value.symbols))
                fits = fits and bound.setdefault(sym, g.value) == g.value
        role = "the target" if name == src.names[-1] else "the model input"
        if not fits:
            raise SpecShapeError(f"the data's {name} is {shape_str((Val(Sym.var('N')), *got.shape))}, but {role} "
                                 f"{name} is {shape_str(want.shape)}: a sample is {shape_str(got.shape)}, not "
                                 f"{shape_str(decl)}", span,
                                 hint=f"reshape the data, or declare {name} as "
                                      f"{shape_str((want.shape[0], *got.shape))}")
        if got.dtype != want.dtype:
            cast = {"float": ".float()", "long": ".long()", "bool": ".bool()"}[want.dtype]
            words = {"float": "Float", "long": "Long", "bool": "Bool"}
            raise SpecShapeError(f"the data's {name} holds {got.dtype} values, but {role} {name} is declared "
                                 f"{words[want.dtype]}{shape_str(want.shape)}", span,
                                 hint=f"convert it with {cast}, or declare it "
                                      f"{words[got.dtype]}{shape_str(want.shape)}")

    def call_values(self, e: ir.Call):
        seen = set()
        for kw in e.keywords:
            if kw.name in seen:
                raise SpecArgError(f"argument {kw.name!r} is given twice", kw.span, hint="keep one of them")
            seen.add(kw.name)
        args = [plain_value(self.el.static.eval_static(a, self.scope, {})) for a in e.args if a.kind != "starred"]
        kwargs = {kw.name: plain_value(self.el.static.eval_static(kw.value, self.scope, {})) for kw in e.keywords}
        return args, kwargs, {kw.name: kw.value.span for kw in e.keywords}

    def file(self, e: ir.Call, names: list[str], expected: dict) -> DataSource:
        args, kwargs, spans = self.call_values(e)
        if len(args) != 1 or not isinstance(args[0], str):
            raise SpecArgError("load takes one file name, then the tensors it holds by name", e.span,
                               hint='load("houses.csv", x=["area", "rooms"], y="price")')
        path = args[0]
        src = DataSource("file", e.span, names, path=path, path_span=e.args[0].span)
        if src.suffix is None:
            raise SpecArgError(f"load reads .pt, .npz and .csv files, not {path!r}", e.args[0].span,
                               hint="save the tensors with torch.save({'x': x, 'y': y}, 'data.pt')")
        for k in kwargs:
            if k not in names:
                raise SpecNameError(f"load gives {k!r}, which is neither a model input nor the target", spans[k],
                                    hint=did_you_mean(k, names) or "load's keywords name the model inputs and the "
                                    f"target: {', '.join(n + '=...' for n in names)}")
        for n in names:
            col = kwargs.get(n, n)
            if src.suffix == ".csv":
                cols = list(col) if isinstance(col, (tuple, list)) else [col]
                if not cols or not all(isinstance(c, str) for c in cols):
                    raise SpecArgError(f"{n} must name a column or a list of columns", spans.get(n, e.span),
                                       hint=f'{n}=["a", "b"]')
                per_sample = 1
                for d in expected[n].shape[1:]:
                    if not isinstance(d.value, int):
                        raise SpecShapeError(f"{n} is {shape_str(expected[n].shape)}: a CSV row holds a fixed number "
                                             f"of values, and {d} is a symbolic size", spans.get(n, e.span),
                                             hint="give the input fixed sizes, or load the tensors from a .pt or "
                                                  ".npz file")
                    per_sample *= d.value
                if per_sample != len(cols):
                    raise SpecShapeError(f"{n} reads {len(cols)} column{'s' if len(cols) != 1 else ''}, but "
                                         f"{'the target' if n == names[-1] else 'the model input'} {n} is "
                                         f"{shape_str(expected[n].shape)}: {per_sample} value"
                                         f"{'s' if per_sample != 1 else ''} a sample", spans.get(n, e.span),
                                         hint="name one column per value of a sample")
                src.columns[n] = cols if isinstance(col, (tuple, list)) else col
            else:
                if not isinstance(col, str):
                    raise SpecArgError(f"{n} must name the tensor it is in the file", spans.get(n, e.span),
                                       hint=f'{n}="{n}"')
                src.columns[n] = col
            src.column_spans[n] = spans.get(n, e.span)
            src.samples[n] = TensorInfo(expected[n].shape[1:], expected[n].dtype)
        return src

    def dataset(self, e: ir.Call, name: str, names: list[str], expected: dict) -> DataSource:
        args, kwargs, spans = self.call_values(e)
        table = DATASET_ARGS[name]
        order = list(table)
        bound = dict(table)
        if len(args) > len(order):
            raise SpecArgError(f"{name} takes at most {len(order)} arguments", e.span,
                               hint=f"{name}({', '.join(order)})")
        for k, v in zip(order, args):
            bound[k] = v
        for k, v in kwargs.items():
            if k not in table:
                raise SpecArgError(f"{name} takes no argument {k!r}", spans[k],
                                   hint=did_you_mean(k, order) or f"its arguments: {', '.join(order)}")
            bound[k] = v
        if "root" in table and bound["root"] is None:
            raise SpecArgError(f"{name} needs root, the folder its files are (or are downloaded) in", e.span,
                               hint=f'{name}(root="data", download=True)')
        if "root" in table and not isinstance(bound["root"], str):
            raise SpecArgError(f"{name}'s root must be a folder name (a string), not {bound['root']!r}",
                               spans.get("root", e.span), hint=f'{name}(root="data", download=True)')
        for k in ("train", "download"):
            if k in table and not isinstance(bound[k], bool):
                raise SpecArgError(f"{name}'s {k} must be True or False", spans.get(k, e.span), hint=f"{k}=True")
        info = DATASETS[name]
        image, classes = info["image"], info["classes"]
        size = info["sizes"][0 if bound.get("train", True) else 1] if info["sizes"] else None
        if name == "FakeData":
            img = bound["image_size"]
            if not (isinstance(img, tuple) and len(img) == 3 and all(isinstance(d, int) and d > 0 for d in img)):
                raise SpecArgError("FakeData's image_size must be (channels, height, width)",
                                   spans.get("image_size", e.span), hint="image_size=(1, 28, 28)")
            for k in ("size", "num_classes"):
                if isinstance(bound[k], bool) or not isinstance(bound[k], int) or bound[k] < 1:
                    raise SpecArgError(f"FakeData's {k} must be a positive integer", spans.get(k, e.span),
                                       hint=f"{k}={table[k]}")
            image, classes, size = img, bound["num_classes"], bound["size"]
        if len(names) != 2:
            raise SpecArgError(f"{name} gives an image and a label, and the model takes {len(names) - 1} inputs",
                               e.span, hint="a model trained on it takes one input, the image")
        src = DataSource("dataset", e.span, names, dataset=name, args=bound, classes=classes, size=size)
        src.samples[names[0]] = TensorInfo(tuple(Val(d) for d in image), "float")
        src.samples[names[1]] = TensorInfo((), "long")
        self.refuse_label_target(name, expected[names[1]], names[1], e.span)
        for n in names:
            self.check_sample(src, n, expected[n], e.span)
        return src

    def check_dataset_target(self, e: ir.Call, target: ir.TrainTarget, info: TensorInfo) -> None:
        """A torchvision dataset's labels are class indices: a target declared otherwise is refused before the
        loss is checked against it (whose own message would take a float target for probabilities)."""
        from .static import StaticEvaluator

        func = (StaticEvaluator.dotted(e.func) or "").removeprefix("torchvision.").removeprefix("datasets.")
        if func in DATASETS:
            self.refuse_label_target(func, info, target.name, target.type.span)

    def refuse_label_target(self, dataset: str, info: TensorInfo, name: str, span: Span) -> None:
        if info.dtype == "long" and len(info.shape) == 1:
            return
        b = info.shape[0]
        said = (f"{self.loss_name} expects a class index target Long[{b}] for input {self.graph.outputs[0]}"
                if self.loss_name in ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss")
                else f"{dataset}'s labels are class indices, Long[{b}]")
        raise SpecShapeError(f"{said}, but the target is {shape_str(info.shape)} {info.dtype}", span,
                             hint=f"{dataset}'s labels are class indices: declare target {name}: Long[{b}]")

    def validation(self, stmt, names, expected, data: DataSource):
        if isinstance(stmt, ir.TrainSetting) and not isinstance(stmt.value, ir.Call):
            v = self.value(stmt)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise SpecArgError(f"validation must be a fraction between 0 and 1, or data, not {v!r}",
                                   stmt.value.span, hint="validation = 0.2 keeps a fifth of the data for it")
            if data.size is not None:  # random_split's lengths: each fraction's floor, then the rest one by one
                held, kept = int(data.size * v), int(data.size * (1 - v))
                held += (data.size - held - kept) > 1
                kept = data.size - held
                if held < 1 or kept < 1:
                    raise SpecArgError(f"validation = {v} of {data.size} samples keeps "
                                       f"{'no sample for validation' if held < 1 else 'none to train on'}",
                                       stmt.value.span, hint="choose a fraction that keeps samples on both sides")
            return float(v)
        return self.data(stmt, names, expected, "validation")

    def check_classes(self, data: DataSource, classes: int | None, loss: str, stmt):
        if classes is None or data.classes is None or not isinstance(classes, int):
            return
        if data.classes > classes:
            raise SpecShapeError(f"{data.dataset} has {data.classes} classes, but {loss} gets scores for "
                                 f"{classes}", stmt.value.span if isinstance(stmt, ir.TrainSetting) else stmt.span,
                                 hint=f"make the model's last layer give {data.classes} scores")


def accuracy_kind(loss: str, target: TensorInfo, output: TensorInfo) -> str | None:
    if loss in ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss") and target.dtype == "long":
        return "classes"
    if loss == "BCEWithLogitsLoss":
        return "logits"
    if loss == "BCELoss":
        return "probabilities"
    return None


def last_step(node: ModuleNode) -> tuple[str, str] | None:
    """What makes a module's output: (a layer's type or an op's name, its path), looking inside Sequentials and
    blocks; None where it is no single step."""
    flow = node.flow
    if node.kind == "sequential" and node.children:
        return last_step(node.children[-1])
    if node.kind == "layer":
        return node.type_name, node.path
    if not flow:
        return None
    out = next((f for f in reversed(flow) if f.kind == "output"), None)
    if out is None or len(out.inputs) != 1:
        return None
    step = flow[out.inputs[0]]
    if step.kind == "module":
        child = next((c for c in node.walk() if c.path == step.path), None)
        return last_step(child) if child is not None else None
    if step.kind == "op":
        return step.label, ""
    return None


def _target_names(t) -> list[str]:
    if isinstance(t, ir.NameTarget):
        return [t.id]
    return [n for item in t.items for n in _target_names(item)]


def elaborate_train(elaborator, graph: ModelGraph, train: ir.Train) -> TrainPlan:
    return TrainElaborator(elaborator, graph, train).plan()
