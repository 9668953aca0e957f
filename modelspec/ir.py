"""The surface IR: what a .nnspec file says, validated, with source spans.

Every node is a frozen dataclass with a ``kind`` tag and a ``span`` (where
it stands in the file): the parser builds the tree, and importing this
module needs no pydantic. Pydantic validates it, dumps it and writes its
JSON Schema (``extra="forbid"``, unions discriminated on ``kind``) through a
TypeAdapter built on first use (`adapter`), so that
``SpecFile.model_validate_json(tree.model_dump_json())`` gives back the
same tree.

Top level (``SpecFile.items``):
  import     ``import "x.nnspec"`` (names=None) or ``from "x.nnspec" import A, B``
  const      ``const HIDDEN = 512``
  block      ``block Name(p, q = 1) { body }``, a reusable module with parameters; or
             ``block Name(p) = Sequential(...)``, a block that is an ``nn.Sequential`` of
             those modules (``value`` holds the call, the body is empty)
  model      ``model Name(x: [B, 3]) { body }``, a module with typed inputs
  train      ``train Name { loss = ...; optimizer = ...; target y: Long[B]; data = ... }``: how the
             model is trained (settings, the target's type, and data given as a file, a dataset or
             ``data { x = ...; y = ... }`` computed in the spec)

Body statements (``Block.body``, ``Model.body``):
  child      ``name = expr`` (a submodule, or a local value) with an
             optional ``if cond``: when false the child is absent; a child
             may be named by a string that is no identifier, ``"block1-0" = ...``
  param      ``param W: [3, 2] = randn``, an ``nn.Parameter``
  buffer     ``buffer mask: [T, T] = ones``, a registered buffer
  forward    ``forward(x, y) { statements }``; without one, children run
             in order like ``nn.Sequential``
  tie        ``lm_head.weight = wte.weight``: two modules share one parameter

Forward statements: ``assign`` (targets may be nested tuples), ``return``,
``for`` (over a ModuleList, a ModuleDict's items, keys or values, or a
compile-time list), ``if``, and ``call_stmt`` (``xs.append(x)``).

Expressions are Python's: ``name``, ``infer`` (``_``: an argument inferred
from the input shape), ``constant``, ``tuple``, ``list``, ``dict``,
``listcomp``, ``dictcomp``, ``binop``, ``unaryop``, ``boolop``, ``not``, ``compare``,
``ifexp``, ``call`` (with ``starred`` and ``keyword`` arguments),
``attribute``, ``subscript`` (with ``slice`` and ``ellipsis``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Literal, Union

from .errors import Span


class _ByKind:
    """Annotated metadata of a union told apart by ``kind``: pydantic's discriminated union, given to pydantic only
    when it builds a validator or a schema (`adapter`)."""

    def __get_pydantic_core_schema__(self, source, handler):
        from pydantic import Discriminator

        return Discriminator("kind").__get_pydantic_core_schema__(source, handler)


BY_KIND = _ByKind()


# Each node class is made a dataclass as it is defined: __init__ (keyword arguments only) and frozenness from
# dataclasses; equality, hash and repr, the same for every node, from Node (generating them again for each of
# the ~50 classes would cost `modelspec check` ~15 ms of its start).
_NODE = dict(frozen=True, kw_only=True, eq=False, repr=False)


@dataclasses.dataclass(**_NODE)
class Node:
    """Every node: a frozen dataclass with a ``span``; equal to another of its class with equal fields."""

    __pydantic_config__ = {"extra": "forbid"}
    span: Span

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(**_NODE)(cls)

    def __iter__(self):
        """(name, value) of each field, in order (as pydantic's models iterate)."""
        return iter(vars(self).items())

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), *vars(self).values()))  # a node holding a list has none, as a tuple would not

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


# ---------------------------------------------------------------- expressions
class Name(Node):
    kind: Literal["name"] = "name"
    id: str


class Infer(Node):
    kind: Literal["infer"] = "infer"


class Constant(Node):
    kind: Literal["constant"] = "constant"
    value: Union[bool, int, float, str, None]


class TupleExpr(Node):
    kind: Literal["tuple"] = "tuple"
    items: list[Expr]


class ListExpr(Node):
    kind: Literal["list"] = "list"
    items: list[Expr]


class DictExpr(Node):
    kind: Literal["dict"] = "dict"
    keys: list[Expr]
    values: list[Expr]


class ListComp(Node):
    kind: Literal["listcomp"] = "listcomp"
    element: Expr
    var: str
    iter: Expr


class DictComp(Node):
    kind: Literal["dictcomp"] = "dictcomp"
    key: Expr
    value: Expr
    var: str
    iter: Expr


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/", "//", "%", "@", "**", "&", "|", "^"]
    left: Expr
    right: Expr


class UnaryOp(Node):
    kind: Literal["unaryop"] = "unaryop"
    op: Literal["+", "-", "~"]
    operand: Expr


class BoolOp(Node):
    kind: Literal["boolop"] = "boolop"
    op: Literal["and", "or"]
    left: Expr
    right: Expr


class Not(Node):
    kind: Literal["not"] = "not"
    operand: Expr


class Compare(Node):
    kind: Literal["compare"] = "compare"
    left: Expr
    ops: list[Literal["<", ">", "==", ">=", "<=", "!=", "in", "not in", "is", "is not"]]
    comparators: list[Expr]


class IfExp(Node):
    kind: Literal["ifexp"] = "ifexp"
    test: Expr
    body: Expr
    orelse: Expr


class Starred(Node):
    kind: Literal["starred"] = "starred"
    value: Expr


class Keyword(Node):
    kind: Literal["keyword"] = "keyword"
    name: str
    value: Expr


class Call(Node):
    kind: Literal["call"] = "call"
    func: Expr
    args: list[Annotated[Union[Expr, Starred], BY_KIND]]
    keywords: list[Keyword]


class Attribute(Node):
    kind: Literal["attribute"] = "attribute"
    value: Expr
    attr: str


class SliceExpr(Node):
    kind: Literal["slice"] = "slice"
    lower: Expr | None
    upper: Expr | None
    step: Expr | None


class EllipsisExpr(Node):
    kind: Literal["ellipsis"] = "ellipsis"


class Subscript(Node):
    kind: Literal["subscript"] = "subscript"
    value: Expr
    index: list[Annotated[Union[Expr, SliceExpr, EllipsisExpr], BY_KIND]]


Expr = Annotated[
    Union[
        Name, Infer, Constant, TupleExpr, ListExpr, DictExpr, ListComp, DictComp, BinOp, UnaryOp,
        BoolOp, Not, Compare, IfExp, Call, Attribute, Subscript,
    ],
    BY_KIND,
]


# ---------------------------------------------------------------- types
class SymDim(Node):
    """A named dimension with an example size: ``T=128``."""

    kind: Literal["symdim"] = "symdim"
    name: str
    example: int


class TensorType(Node):
    kind: Literal["tensor_type"] = "tensor_type"
    dtype: str | None
    dims: list[Annotated[Union[Expr, SymDim], BY_KIND]]


# ---------------------------------------------------------------- forward
class NameTarget(Node):
    kind: Literal["name_target"] = "name_target"
    id: str


class TupleTarget(Node):
    kind: Literal["tuple_target"] = "tuple_target"
    items: list[Target]


Target = Annotated[Union[NameTarget, TupleTarget], BY_KIND]


class Assign(Node):
    kind: Literal["assign"] = "assign"
    target: Target
    value: Expr


class Return(Node):
    kind: Literal["return"] = "return"
    values: list[Expr]


class For(Node):
    kind: Literal["for"] = "for"
    target: Target
    iter: Expr
    body: list[FwdStmt]


class If(Node):
    kind: Literal["if"] = "if"
    test: Expr
    body: list[FwdStmt]
    orelse: list[FwdStmt]


class CallStmt(Node):
    """``features.append(x)``: a method of a list, run for its effect."""

    kind: Literal["call_stmt"] = "call_stmt"
    call: Call


FwdStmt = Annotated[Union[Assign, Return, For, If, CallStmt], BY_KIND]


# ---------------------------------------------------------------- bodies
class Child(Node):
    kind: Literal["child"] = "child"
    name: str
    value: Expr
    cond: Expr | None = None


class Param(Node):
    kind: Literal["param"] = "param"
    name: str
    type: TensorType
    init: Expr | None


class Buffer(Node):
    kind: Literal["buffer"] = "buffer"
    name: str
    type: TensorType
    init: Expr | None


class Forward(Node):
    kind: Literal["forward"] = "forward"
    params: list[str]
    body: list[FwdStmt]


class Tie(Node):
    """``lm_head.weight = transformer.wte.weight``: the parameter at ``target`` becomes the one ``value`` names."""

    kind: Literal["tie"] = "tie"
    target: list[str]
    value: Expr


BodyStmt = Annotated[Union[Child, Param, Buffer, Forward, Tie], BY_KIND]


# ---------------------------------------------------------------- top level
class Import(Node):
    kind: Literal["import"] = "import"
    path: str
    names: list[str] | None


class Const(Node):
    kind: Literal["const"] = "const"
    name: str
    value: Expr


class BlockParam(Node):
    kind: Literal["block_param"] = "block_param"
    name: str
    default: Expr | None


class Block(Node):
    kind: Literal["block"] = "block"
    name: str
    params: list[BlockParam]
    body: list[BodyStmt]
    value: Expr | None = None  # `block Name(p) = Sequential(...)`: the call; the body is then empty


class ModelInput(Node):
    kind: Literal["model_input"] = "model_input"
    name: str
    type: TensorType


class Model(Node):
    kind: Literal["model"] = "model"
    name: str
    inputs: list[ModelInput]
    body: list[BodyStmt]


class TrainSetting(Node):
    """``loss = CrossEntropyLoss()``, ``epochs = 5``, ``data = load("points.csv", ...)``: one setting."""

    kind: Literal["train_setting"] = "train_setting"
    name: str
    value: Expr


class TrainTarget(Node):
    """``target y: Long[B]``: the tensor the loss compares the model's output with, named as the data names it."""

    kind: Literal["train_target"] = "train_target"
    name: str
    type: TensorType


class TrainData(Node):
    """``data { x = ...; y = ... }``: tensors computed in the spec, one per model input and the target."""

    kind: Literal["train_data"] = "train_data"
    name: str  # "data" or "validation"
    body: list[FwdStmt]


TrainStmt = Annotated[Union[TrainSetting, TrainTarget, TrainData], BY_KIND]


class Train(Node):
    """``train Model { settings }``: the loss, optimizer, data and loop a model is trained with."""

    kind: Literal["train"] = "train"
    model: str | None  # None: the file's only model
    body: list[TrainStmt]


Item = Annotated[Union[Import, Const, Block, Model, Train], BY_KIND]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpecFile:
    """A whole .nnspec file."""

    __pydantic_config__ = {"extra": "forbid"}
    __iter__ = Node.__iter__

    kind: Literal["spec"] = "spec"
    path: str | None
    items: list[Item]

    # pydantic's spelling of JSON and the schema, as the IR's models had them: `adapter` does the work
    @classmethod
    def model_validate_json(cls, data: str | bytes) -> SpecFile:
        """The tree a JSON dump holds, validated (a pydantic ValidationError names what does not fit)."""
        return adapter().validate_json(data)

    def model_dump_json(self, *, indent: int | None = None) -> str:
        return adapter().dump_json(self, indent=indent).decode()

    def model_dump(self, **kwargs) -> dict:
        """As plain data (``exclude=``, as pydantic's ``dump_python`` takes it)."""
        return adapter().dump_python(self, **kwargs)

    @classmethod
    def model_json_schema(cls) -> dict:
        return adapter().json_schema()

    def models(self) -> list[Model]:
        return [i for i in self.items if isinstance(i, Model)]

    def blocks(self) -> list[Block]:
        return [i for i in self.items if isinstance(i, Block)]

    def trains(self) -> list[Train]:
        return [i for i in self.items if isinstance(i, Train)]



@functools.cache
def adapter():
    """pydantic's TypeAdapter of SpecFile: validation, JSON and the JSON Schema, built on first use."""
    from pydantic import TypeAdapter

    return TypeAdapter(SpecFile)
