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

import math
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


def const(value):
    """The expression of a compile-time value: numbers, strings, None, tuples and lists of them.

    >>> const((3, 3))
    TupleExpr(items=(Constant(value=3), Constant(value=3)))
    """
    from .shapes import Sym, Val

    if isinstance(value, Val):
        return value.expr if value.expr is not None else const(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return Constant(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return call("float", Constant(str(value)))
        return Constant(value)
    if isinstance(value, tuple):
        return TupleExpr(tuple(const(v) for v in value))
    if isinstance(value, list):
        return ListExpr(tuple(const(v) for v in value))
    if isinstance(value, Sym):
        return sym_expr(value)
    raise TypeError(f"no expression for {value!r}")


def sym_expr(s):
    """A symbolic size as an expression over its symbols: ``B * T - 1``."""
    from .shapes import _atom_key

    def atom(a):
        return Name(a) if isinstance(a, str) else BinOp("//", sym_expr(a.num), Constant(a.den))

    out = None
    ordered = sorted(s.terms.items(), key=lambda mc: (-len(mc[0]), [_atom_key(a) for a in mc[0]]))
    for mono, coef in ordered:
        term = None
        for a in mono:
            term = atom(a) if term is None else BinOp("*", term, atom(a))
        if term is None:
            term = Constant(abs(coef))
        elif abs(coef) != 1:
            term = BinOp("*", Constant(abs(coef)), term)
        if out is None:
            out = UnaryOp("-", term) if coef < 0 else term
        else:
            out = BinOp("-" if coef < 0 else "+", out, term)
    return out if out is not None else Constant(0)


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
    for f in node.__dataclass_fields__:
        if f not in ("explode",):
            _names(getattr(node, f), out)


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
    fields = {f: replace_names(getattr(node, f), values) for f in node.__dataclass_fields__}
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
    var: str
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
