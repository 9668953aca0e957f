"""The model graph: what elaboration produces and every later stage reads.

A `ModelGraph` holds the module tree of one model (`ModuleNode`s, every
argument concrete, every input and output shape known) and the classes
code generation prints (`ClassDef`s, one per model and per block, shared by
all instances of a block that print the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Span
from .shapes import shape_str


@dataclass
class TensorInfo:
    """A tensor value in forward: its shape (`Val` dims) and dtype."""

    shape: tuple
    dtype: str = "float"
    source: str | None = None  # the model input it is, if it is one (for example inputs' index ranges)
    contiguous: bool = True  # False: a view with other strides (transpose, permute), which `view` cannot take
    below: Any = None  # an integer tensor's values are known to lie in 0..below-1 (torch.arange(t)): int or Sym
    feature_map: str | None = None  # the conv or pool ("Conv2d `conv`") whose [B, C, *spatial] output this is

    def __str__(self):
        return shape_str(self.shape)


@dataclass
class FlowNode:
    """One step of a forward's dataflow, for diagrams.

    ``kind`` is "input", "param", "module" (a call of a child; ``path`` names
    it), "op" (a tensor operation or operator), or "output". ``inputs`` are
    the ids of the steps whose tensors it reads; ``shapes`` what it makes.
    """

    id: int
    kind: str
    label: str
    inputs: list[int] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)
    path: str | None = None


@dataclass
class ModuleNode:
    """One module instance in the tree, as ``print(model)`` would show it."""

    name: str  # attribute name in the parent: "conv1", "0"
    path: str  # dotted path from the model: "layer1.0.conv1"
    type_name: str  # "Conv2d", "BasicBlock", "Sequential"
    kind: str  # "layer" | "block" | "sequential" | "modulelist" | "moduledict" | "model"
    span: Span | None
    layer: Any = None  # the catalog entry, for layers
    args: dict[str, Any] = field(default_factory=dict)  # bound constructor arguments (layers)
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    children: list["ModuleNode"] = field(default_factory=list)
    params: int = 0  # own parameters, children excluded (and those tied to another module's: counted there)
    tied: dict[str, str] = field(default_factory=dict)  # own parameter -> the path of the one it is (weight tying)
    # the path of the module this one is: a child a container holds again (Sequential(flatten, fc)), as torch
    # holds the same object twice; its parameters, buffers and mult-adds are counted there, and it has no children
    shared: str | None = None
    trainable: int = 0
    buffers: int = 0
    macs: Any = 0  # own multiply-accumulates over all its calls, an int or a Sym in the batch/other symbols
    repeats: int = 1  # how often its parent runs it (a block or Sequential called again on the same shape)
    depth: int = 0
    explain: list[str] | None = None  # how the output shape follows from the input, for --explain
    imported: bool = False  # a block from another file: the spans of its children are in that file
    flow: list[FlowNode] | None = None  # the dataflow of its forward (models and blocks)

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.walk())

    @property
    def total_trainable(self) -> int:
        return sum(n.trainable for n in self.walk())


@dataclass(frozen=True)
class OpNote:
    """One operation of a forward statement as ``codegen --explain`` spells it out: what it read and made.

    ``kind`` is "matmul" (``@``, matmul, mm, bmm of the two ``operands``), "view" (view, reshape; ``inferred``
    the position of a -1 in the sizes asked for), "flatten" (dims ``dim``..``end_dim`` merged), "cat" and
    "stack" (along ``dim`` of the result), or "broadcast" (an elementwise op of two tensors of different
    shapes). Shapes are tuples of `Val` dims, as in `TensorInfo`.
    """

    kind: str
    label: str  # as the code spells the operation: "@", "torch.bmm", ".view", "+", "torch.add"
    operands: tuple[tuple, ...]  # the shapes of the tensors it read
    result: tuple  # the shape it made
    dim: int | None = None  # cat, stack: the dim joined along; flatten: the first dim merged
    end_dim: int | None = None  # flatten: the last dim merged
    inferred: int | None = None  # view, reshape: where the -1 stands


@dataclass
class Line:
    """One statement of a generated ``__init__`` or ``forward``, its indentation and the shapes it makes."""

    indent: int
    stmt: Any  # a statement node of modelspec.expr
    shapes: list[tuple] = field(default_factory=list)  # shapes of the assigned values, for the comment
    more: list[list[tuple]] = field(default_factory=list)  # the shapes of further passes (loops, instances)
    notes: list[OpNote] = field(default_factory=list)  # its operations, for --explain (a loop's first pass)
    more_notes: list[list[OpNote]] = field(default_factory=list)  # those of a loop's further passes
    span: Any = None  # the spec's statement it prints (a Span); None for a line of modelspec's own


@dataclass
class CtorParam:
    """A constructor parameter of a generated class: ``planes``, ``stride=1``, or an inferred ``in_channels``."""

    name: str
    default: Any = None  # an expression, or None when the argument is required
    inferred: bool = False


@dataclass
class ClassDef:
    """One generated ``nn.Module`` class: its constructor parameters and the statements of its methods."""

    name: str
    kind: str  # "model" | "block"
    ctor_params: list[CtorParam]
    init_lines: list[Line]  # __init__ after super().__init__(...)
    forward_params: list[str]
    forward_lines: list[Line]
    doc: list[str] = field(default_factory=list)
    span: Span | None = None
    used_by: list[str] = field(default_factory=list)  # paths of the instances
    instances: list[list[Line]] = field(default_factory=list)  # each instance's forward, for comments
    fixed: dict = field(default_factory=dict)  # block parameters whose values decide this class's structure
    block: str = ""  # the spec's block (or model) this class prints
    base: str = "nn.Module"  # or "nn.Sequential": no forward of its own, its children run in order
    super_init: Any = None  # `super().__init__(modules...)`, a block `= Sequential(...)`; None: no arguments

    def structure_key(self) -> tuple:
        """What must match for two instances to share one class (comments aside)."""
        return (
            tuple((p.name, p.default, p.inferred) for p in self.ctor_params),
            tuple((ln.indent, ln.stmt) for ln in self.init_lines),
            tuple(self.forward_params),
            tuple((ln.indent, ln.stmt) for ln in self.forward_lines),
            self.base,
            self.super_init,
        )


@dataclass
class ModelGraph:
    """A model, elaborated."""

    name: str
    root: ModuleNode
    classes: list[ClassDef]  # dependency order: blocks first, the model last
    inputs: list[tuple[str, TensorInfo]]
    outputs: list[TensorInfo]
    consts: list[tuple[str, Any]]  # module-level constants the code uses: (name, expression)
    symbols: dict[str, int | None]  # symbolic dims and their example sizes ("B": None)
    path: str | None = None
    index_bounds: dict[str, int] = field(default_factory=dict)  # input name -> exclusive upper bound (Embedding)
    steps: int = 0  # elaboration steps it took (Limits.max_steps bounds them)
    train: Any = None  # its train section, checked (modelspec.trainspec.TrainPlan), if the spec has one
    warnings: list = field(default_factory=list)  # SpecWarnings, in the order of the source
    unregistered: list = field(default_factory=list)  # (name, span): plain tensors model.to(device) leaves

    @property
    def total_params(self) -> int:
        return self.root.total_params
