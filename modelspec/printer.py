"""The one expression printer: precedence, brackets and line breaking.

Both the spec formatter (`modelspec.fmt`, over the surface IR) and code
generation (`modelspec.codegen`, over `modelspec.expr` nodes) print
expressions with `ExprPrinter`: one ``<kind>_fmt`` method per expression
kind, one precedence table, one line width. An expression becomes a
*sequence* of strings and `Group`s (bracketed lists); `layout` lays a
sequence out flat when it fits, else explodes one group, one item per line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from . import expr as E
from .names import is_attribute_name

LINE_WIDTH = 100  # the longest line fmt and codegen print, indentation included
INDENT = "    "

# Python's binding strengths, loosest first; an operand looser than its place needs parentheses.
PREC_TEST, PREC_OR, PREC_AND, PREC_NOT, PREC_COMPARE = 1, 2, 3, 4, 5
PREC_BITOR, PREC_BITXOR, PREC_BITAND = 6, 7, 8
PREC_ARITH, PREC_TERM, PREC_FACTOR, PREC_POWER, PREC_PRIMARY = 10, 11, 12, 13, 14
BIN_PREC = {"|": PREC_BITOR, "^": PREC_BITXOR, "&": PREC_BITAND, "+": PREC_ARITH, "-": PREC_ARITH, "*": PREC_TERM,
            "/": PREC_TERM, "//": PREC_TERM, "%": PREC_TERM, "@": PREC_TERM, "**": PREC_POWER}
_PAIRS = {"(": ")", "[": "]", "{": "}"}


@dataclass
class Group:
    """A bracketed, comma-separated list that can be laid out flat or one item per line."""

    open: str
    items: list[list]  # each a sequence of str | Group
    close: str
    spans: list[tuple[int, int]]  # source offsets of each item, for comments (fmt)
    open_at: int
    close_at: int
    one_tuple: bool = False  # `(x,)`: the comma is syntax, not a request to explode
    hard: bool = False  # must explode: a magic trailing comma, a comment or a container, here or deeper
    comma: bool = True  # a comma after the last item when exploded; not in `x[i]`, where `x[i,]` is `x[(i,)]`

    def flat(self) -> str:
        body = ", ".join(flat(item) for item in self.items)
        return f"{self.open}{body}{',' if self.one_tuple else ''}{self.close}"


@dataclass
class Line:
    """One output line and the source offsets it stands for (comments go by those)."""

    depth: int
    text: str
    start: int = 0
    end: int = 0
    closer: bool = False  # starts with the bracket that ends a body: comments before it go inside
    blank: bool = False  # a blank line before it in the source, kept
    separate: bool = False  # a top-level item: always a blank line before it (and its comments)
    comment: bool = False
    trailing: str = ""  # a comment after the code


def flat(seq: list) -> str:
    return "".join(piece if isinstance(piece, str) else piece.flat() for piece in seq)


def hard(seq: list) -> bool:
    return any(isinstance(piece, Group) and piece.hard for piece in seq)


def fits(depth: int, text: str) -> bool:
    return len(INDENT) * depth + len(text) <= LINE_WIDTH


def layout(seq: list, depth: int, start: int = 0, end: int = 0, hug: bool = False) -> list[Line]:
    """A sequence as lines: flat if it fits and nothing forces a break, else with one group exploded.

    With ``hug``, a group whose only item is itself a group opens both brackets on one line
    (``nn.ModuleList([`` ... ``])``), as people write a container of modules; so does one whose only item
    is a call of one such group (``nn.Sequential(OrderedDict([`` ... ``]))``).
    """
    text = flat(seq)
    groups = [i for i, piece in enumerate(seq) if isinstance(piece, Group) and piece.items]
    if not groups or (not hard(seq) and fits(depth, text)):
        return [Line(depth, text, start, end)]
    forced = [i for i in groups if seq[i].hard]
    if forced:
        pick = forced[0]
    else:
        fitting = [i for i in groups if fits(depth, flat(seq[:i]) + seq[i].open)]
        pick = fitting[-1] if fitting else groups[0]
    group = seq[pick]
    inner = group.items[0] if len(group.items) == 1 else None
    if hug and inner is not None and len(inner) == 2 and isinstance(inner[0], str) and isinstance(inner[1], Group) \
            and inner[1].hard and len(inner[1].items) == 1 and len(inner[1].items[0]) == 1 \
            and isinstance(inner[1].items[0][0], Group):  # `(OrderedDict([`: the call's name goes inside
        inner = [Group(inner[0] + inner[1].open, inner[1].items, inner[1].close, inner[1].spans, inner[1].open_at,
                       inner[1].close_at, inner[1].one_tuple, True)]
    if hug and inner is not None and len(inner) == 1 and isinstance(inner[0], Group) and inner[0].hard:
        hugged = Group(group.open + inner[0].open, inner[0].items, inner[0].close + group.close, inner[0].spans,
                       group.open_at, group.close_at, inner[0].one_tuple, True)
        return layout([*seq[:pick], hugged, *seq[pick + 1:]], depth, start, end, hug)
    lines = [Line(depth, flat(seq[:pick]) + group.open, start, group.open_at)]
    for k, (item, (item_start, item_end)) in enumerate(zip(group.items, group.spans)):
        comma = [","] if group.comma or k < len(group.items) - 1 else []
        lines += layout([*item, *comma], depth + 1, item_start, item_end, hug)
    rest = layout([group.close, *seq[pick + 1:]], depth, group.close_at, end, hug)
    rest[0].closer = True
    return lines + rest


def string_literal(value: str) -> str:
    """A double-quoted literal, escapes included: always inert in Python and in a spec."""
    return json.dumps(value)


class ExprPrinter:
    """One ``<kind>_fmt`` method per expression kind, each returning a sequence.

    Subclasses say how a bracketed list becomes a `Group` (`brackets`) and how a
    constant is spelled (`constant_text`): fmt keeps the source's magic commas
    and number spellings, codegen explodes containers of modules.
    """

    SPEC_SUBSCRIPTS = False  # fmt prints a spec, where x[i,] is x[i]: its magic comma may stay

    def brackets(self, node, bracket: str, items: list, item_fmt, one_tuple: bool = False) -> Group:
        seqs = [item_fmt(i) for i in items]
        forced = bool(items) and (getattr(node, "explode", False) or any(hard(s) for s in seqs))
        return Group(bracket, seqs, _PAIRS[bracket], [(0, 0)] * len(seqs), 0, 0, one_tuple, forced)

    def constant_text(self, node) -> str:
        value = node.value
        if value is None or isinstance(value, (bool, int)):
            return str(value)
        if isinstance(value, str):
            return string_literal(value)
        if math.isinf(value) or math.isnan(value):
            return f'float("{value}")'
        return repr(value)

    def text(self, node, need: int = PREC_TEST) -> str:
        """The expression on one line."""
        return flat(self.expr(node, need))

    # -- expressions: a sequence, parenthesised when looser than `need`
    def expr(self, node, need: int = PREC_TEST) -> list:
        seq = getattr(self, f"{node.kind}_fmt")(node)
        return ["(", *seq, ")"] if precedence(node) < need else seq

    def name_fmt(self, node) -> list:
        return [node.id]

    def infer_fmt(self, node) -> list:
        return ["_"]

    def constant_fmt(self, node) -> list:
        return [self.constant_text(node)]

    def tuple_fmt(self, node) -> list:
        return [self.brackets(node, "(", list(node.items), self.expr, one_tuple=len(node.items) == 1)]

    def list_fmt(self, node) -> list:
        return [self.brackets(node, "[", list(node.items), self.expr)]

    def dict_fmt(self, node) -> list:
        return [self.brackets(node, "{", list(zip(node.keys, node.values)), self.pair_fmt)]

    def pair_fmt(self, pair) -> list:
        key, value = pair
        return [*self.expr(key), ": ", *self.expr(value)]

    def listcomp_fmt(self, node) -> list:
        return ["[", *self.expr(node.element), f" for {node.var} in ", *self.expr(node.iter, PREC_OR), "]"]

    def dictcomp_fmt(self, node) -> list:
        return ["{", *self.expr(node.key), ": ", *self.expr(node.value), f" for {node.var} in ",
                *self.expr(node.iter, PREC_OR), "}"]

    def binop_fmt(self, node) -> list:
        prec = BIN_PREC[node.op]
        if node.op == "**":  # right-associative, and binds tighter than a unary minus on its left
            left, right = self.expr(node.left, PREC_PRIMARY), self.expr(node.right, PREC_FACTOR)
        else:
            left, right = self.expr(node.left, prec), self.expr(node.right, prec + 1)
        return [*left, f" {node.op} ", *right]

    def unaryop_fmt(self, node) -> list:
        return [node.op, *self.expr(node.operand, PREC_FACTOR)]

    def boolop_fmt(self, node) -> list:
        prec = precedence(node)
        return [*self.expr(node.left, prec), f" {node.op} ", *self.expr(node.right, prec + 1)]

    def not_fmt(self, node) -> list:
        return ["not ", *self.expr(node.operand, PREC_NOT)]

    def compare_fmt(self, node) -> list:
        seq = self.expr(node.left, PREC_BITOR)
        for op, right in zip(node.ops, node.comparators):
            seq += [f" {op} ", *self.expr(right, PREC_BITOR)]
        return seq

    def ifexp_fmt(self, node) -> list:
        body, test = self.expr(node.body, PREC_OR), self.expr(node.test, PREC_OR)
        return [*body, " if ", *test, " else ", *self.expr(node.orelse)]

    def call_fmt(self, node) -> list:
        args = self.brackets(node, "(", [*node.args, *node.keywords], self.argument_fmt)
        return [*self.expr(node.func, PREC_PRIMARY), args]

    def argument_fmt(self, node) -> list:
        if node.kind == "keyword":
            return [f"{node.name}=", *self.expr(node.value)]
        if node.kind == "starred":  # `*(a if c else b)`: the same without brackets, but reads as `(*a) if ...`
            return ["*", *self.expr(node.value, PREC_OR)]
        return self.expr(node)

    def attribute_fmt(self, node) -> list:
        if not is_attribute_name(node.attr):  # a child named "block1-0": Python reads it with getattr
            return ["getattr", Group("(", [self.expr(node.value), [string_literal(node.attr)]], ")", [(0, 0)] * 2,
                                     0, 0)]
        value = self.expr(node.value, PREC_PRIMARY)
        if is_number(node.value) and value[0] != "(":
            value = ["(", *value, ")"]  # `1.real` would read as the number `1.` and a name
        return [*value, f".{node.attr}"]

    def subscript_fmt(self, node) -> list:
        index = self.brackets(node, "[", list(node.index), self.index_fmt)
        index.comma = len(node.index) > 1 or self.SPEC_SUBSCRIPTS  # Python reads x[i,] as the tuple index x[(i,)]
        return [*self.expr(node.value, PREC_PRIMARY), index]

    def index_fmt(self, node) -> list:
        if node.kind == "ellipsis":
            return ["..."]
        if node.kind != "slice":
            return self.expr(node)
        seq = [*(self.expr(node.lower) if node.lower else []), ":", *(self.expr(node.upper) if node.upper else [])]
        return seq + [":", *self.expr(node.step)] if node.step else seq


def precedence(node) -> int:
    if node.kind == "binop":
        return BIN_PREC[node.op]
    # copysign: -0.0 is negative too; an int may be too large for a float
    if is_number(node) and (node.value < 0 if isinstance(node.value, int) else math.copysign(1, node.value) < 0):
        return PREC_FACTOR  # `-3` is a unary minus to the reader
    return {"ifexp": PREC_TEST, "boolop": PREC_OR if getattr(node, "op", "") == "or" else PREC_AND,
            "not": PREC_NOT, "compare": PREC_COMPARE, "unaryop": PREC_FACTOR}.get(node.kind, PREC_PRIMARY)


def is_number(node) -> bool:
    return node.kind == "constant" and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


CODE = ExprPrinter()


# ---------------------------------------------------------------- statements of generated code
def statement_lines(ln) -> list[str]:
    """A `model.Line` of generated code (a statement of `modelspec.expr`) as physical lines."""
    return [INDENT * out.depth + out.text for out in layout(statement_seq(ln.stmt), ln.indent, hug=True)]


def statement_seq(stmt) -> list:
    """A statement as a printer sequence (strings and bracket groups)."""
    k = stmt.kind
    if k == "assign":
        return [f"{target_text(stmt.target, top=True)} = ", *CODE.expr(stmt.value)]
    if k == "setattr":
        if not is_attribute_name(stmt.name):  # a child named "block1-0", as torchvision sets one
            return CODE.expr(E.call(E.attr(E.SELF, "add_module"), E.Constant(stmt.name), stmt.value))
        return [f"self.{stmt.name} = ", *CODE.expr(stmt.value)]
    if k == "exprstmt":
        return CODE.expr(stmt.value)
    if k == "return":
        seq = ["return"]
        for i, v in enumerate(stmt.values):
            seq += [", " if i else " ", *CODE.expr(v, PREC_TEST)]
        return seq
    if k == "for":
        return [f"for {target_text(stmt.var, top=True)} in ", *CODE.expr(stmt.iter), ":"]
    if k == "if":
        return ["if ", *CODE.expr(stmt.test), ":"]
    if k == "else":
        return ["else:"]
    if k == "pass":
        return ["pass"]
    raise AssertionError(k)


def target_text(target, top: bool = False) -> str:
    if isinstance(target, str):
        return target
    names = ", ".join(target_text(t) for t in target) + ("," if len(target) == 1 else "")
    return names if top else f"({names})"



def source(node, need: int = PREC_TEST) -> str:
    """An expression as Python source on one line.

    >>> from modelspec.expr import BinOp, Name, Constant
    >>> source(BinOp("*", BinOp("+", Name("k"), Constant(1)), Constant(2)))
    '(k + 1) * 2'
    """
    return CODE.text(node, need)
