"""Python expressions as data: what the model graph holds where code will be.

Elaboration decides every constructor call, argument and forward
expression as one of these nodes and writes no Python text; `printer`
(shared with `fmt`) is the only place that turns them into source. The
kinds and field names are those of the surface IR's expressions
(`modelspec.ir`), so one printer reads both:

  name        ``x``, ``planes``, ``nn``           constant   ``3``, ``"zeros"``, ``None``
  tuple/list  ``(a, b)`` / ``[a, b]``             dict       ``{"a": m}``
  listcomp    ``[e for v in it]``                 binop      ``a + b`` (and ``@``, ``//``, ``**``)
  unaryop     ``-a``                              boolop     ``a and b``
  not         ``not a``                           compare    ``a != b``, ``m is not None``
  ifexp       ``a if t else b``                   call       ``f(a, k=v)`` with starred and keyword
  attribute   ``self.fc``                         subscript  ``x[:, 0]`` with slice and ellipsis

``explode`` on a call, list or dict asks for one item per line, as a
container of modules reads best.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Union


@dataclass(frozen=True, slots=True)
class Name:
    kind: ClassVar[str] = "name"
    id: str


@dataclass(frozen=True, slots=True)
class Constant:
    kind: ClassVar[str] = "constant"
    value: Union[bool, int, float, str, None]


@dataclass(frozen=True, slots=True)
class TupleExpr:
    kind: ClassVar[str] = "tuple"
    items: tuple


@dataclass(frozen=True, slots=True)
class ListExpr:
    kind: ClassVar[str] = "list"
    items: tuple
    explode: bool = False


@dataclass(frozen=True, slots=True)
class DictExpr:
    kind: ClassVar[str] = "dict"
    keys: tuple
    values: tuple
    explode: bool = False


@dataclass(frozen=True, slots=True)
class ListComp:
    kind: ClassVar[str] = "listcomp"
    element: object
    var: str
    iter: object


@dataclass(frozen=True, slots=True)
class BinOp:
    kind: ClassVar[str] = "binop"
    op: str
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class UnaryOp:
    kind: ClassVar[str] = "unaryop"
    op: str
    operand: object


@dataclass(frozen=True, slots=True)
class BoolOp:
    kind: ClassVar[str] = "boolop"
    op: str
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Not:
    kind: ClassVar[str] = "not"
    operand: object


@dataclass(frozen=True, slots=True)
class Compare:
    kind: ClassVar[str] = "compare"
    left: object
    ops: tuple
    comparators: tuple


@dataclass(frozen=True, slots=True)
class IfExp:
    kind: ClassVar[str] = "ifexp"
    test: object
    body: object
    orelse: object


@dataclass(frozen=True, slots=True)
class Starred:
    kind: ClassVar[str] = "starred"
    value: object


@dataclass(frozen=True, slots=True)
class Keyword:
    kind: ClassVar[str] = "keyword"
    name: str
    value: object


@dataclass(frozen=True, slots=True)
class Call:
    kind: ClassVar[str] = "call"
    func: object
    args: tuple = ()
    keywords: tuple = ()
    explode: bool = False


@dataclass(frozen=True, slots=True)
class Attribute:
    kind: ClassVar[str] = "attribute"
    value: object
    attr: str


@dataclass(frozen=True, slots=True)
class SliceExpr:
    kind: ClassVar[str] = "slice"
    lower: object = None
    upper: object = None
    step: object = None


@dataclass(frozen=True, slots=True)
class EllipsisExpr:
    kind: ClassVar[str] = "ellipsis"


@dataclass(frozen=True, slots=True)
class Subscript:
    kind: ClassVar[str] = "subscript"
    value: object
    index: tuple


Expr = Union[Name, Constant, TupleExpr, ListExpr, DictExpr, ListComp, BinOp, UnaryOp, BoolOp, Not, Compare, IfExp,
             Call, Attribute, Subscript]

SELF = Name("self")


def attr(base: str | object, *names: str):
    """``attr("nn", "Linear")`` is ``nn.Linear``; ``attr(SELF, "fc")`` is ``self.fc``."""
    node = Name(base) if isinstance(base, str) else base
    for n in names:
        node = Attribute(node, n)
    return node


def call(func, *args, explode: bool = False, **kwargs):
    """A call node; ``func`` may be a dotted name such as ``"nn.Linear"``."""
    if isinstance(func, str):
        func = attr(*func.split("."))
    return Call(func, tuple(args), tuple(Keyword(k, v) for k, v in kwargs.items()), explode)


def _fields(node) -> tuple[str, ...]:
    """A node's own fields (its ``kind`` is a class constant, not one of them)."""
    return tuple(f.name for f in dataclasses.fields(node))


def names_in(node) -> set[str]:
    """Every bare name an expression reads (``self.fc`` reads ``self``)."""
    out: set[str] = set()
    _names(node, out)
    return out


def _names(node, out: set):
    if node is None or isinstance(node, (str, int, float, bool)):
        return
    if isinstance(node, Name):
        out.add(node.id)
        return
    if isinstance(node, tuple):
        for n in node:
            _names(n, out)
        return
    if isinstance(node, ListComp):
        inner: set[str] = set()
        _names(node.element, inner)
        out |= inner - {node.var}
        _names(node.iter, out)
        return
    for f in _fields(node):
        if f not in ("explode",):
            _names(getattr(node, f), out)


def params_in(node, params) -> set[str]:
    """The constructor parameters an expression reads, bare (``depth``) or kept on self (``self.depth``)."""
    out = names_in(node) & set(params)
    _self_attrs(node, set(params), out)
    return out


def _self_attrs(node, params: set, out: set):
    if node is None or isinstance(node, (str, int, float, bool)):
        return
    if isinstance(node, tuple):
        for n in node:
            _self_attrs(n, params, out)
        return
    if isinstance(node, Attribute) and node.value == SELF and node.attr in params:
        out.add(node.attr)
        return
    for f in _fields(node):
        _self_attrs(getattr(node, f), params, out)


def fix_params(node, values: dict, children=frozenset()):
    """The expression or statement with parameters fixed to values: ``depth`` and ``self.depth`` become ``3``;
    ``self.dropout`` stays where a child is named ``dropout`` (nanoGPT's MLP has both)."""
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    if isinstance(node, tuple):
        return tuple(fix_params(n, values, children) for n in node)
    if isinstance(node, Name):
        return values.get(node.id, node)
    if isinstance(node, Attribute) and node.value == SELF and node.attr in values and node.attr not in children:
        return values[node.attr]
    if isinstance(node, ListComp) and node.var in values:
        inner = {k: v for k, v in values.items() if k != node.var}
        return ListComp(fix_params(node.element, inner, children), node.var, fix_params(node.iter, values, children))
    return type(node)(**{f: fix_params(getattr(node, f), values, children) for f in _fields(node)})


def replace_names(node, values: dict):
    """The expression with each name in ``values`` replaced by that expression."""
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    if isinstance(node, Name):
        return values.get(node.id, node)
    if isinstance(node, tuple):
        return tuple(replace_names(n, values) for n in node)
    if isinstance(node, ListComp):
        inner = {k: v for k, v in values.items() if k != node.var}
        return ListComp(replace_names(node.element, inner), node.var, replace_names(node.iter, values))
    fields = {f: replace_names(getattr(node, f), values) for f in _fields(node)}
    return type(node)(**fields)


# ---------------------------------------------------------------- statements
# The lines of a generated ``__init__`` and ``forward``; `model.Line` gives each its indentation and shapes.
@dataclass(frozen=True, slots=True)
class Assign:
    """``target = value``; a target is a name or a (nested) tuple of names: ``out, (h, c)``."""

    kind: ClassVar[str] = "assign"
    target: object  # str | tuple
    value: object


@dataclass(frozen=True, slots=True)
class SetAttr:
    """``self.name = value``: a child, a parameter or a kept constructor argument."""

    kind: ClassVar[str] = "setattr"
    name: str
    value: object


@dataclass(frozen=True, slots=True)
class ExprStmt:
    """An expression run for its effect: ``self.register_buffer("mask", ...)``."""

    kind: ClassVar[str] = "exprstmt"
    value: object


@dataclass(frozen=True, slots=True)
class Return:
    kind: ClassVar[str] = "return"
    values: tuple


@dataclass(frozen=True, slots=True)
class ForHead:
    """``for var in iter:``; the body is the lines indented under it."""

    kind: ClassVar[str] = "for"
    var: object  # str | tuple: ``for name, layer in ...``
    iter: object


@dataclass(frozen=True, slots=True)
class IfHead:
    kind: ClassVar[str] = "if"
    test: object


@dataclass(frozen=True, slots=True)
class ElseHead:
    kind: ClassVar[str] = "else"


@dataclass(frozen=True, slots=True)
class Pass:
    kind: ClassVar[str] = "pass"
