"""Symbolic dimensions and the values shape rules compute with.

A dimension is an ``int`` or a `Sym`: an integer polynomial over named
symbols (``B``, ``T``) and opaque floor-divisions, kept in canonical form so
that equal sizes compare equal (``(T + 2 - 3) // 1 + 1 == T``).

`Val` wraps every compile-time value (dims, ints, floats, strings, tuples)
with an optional *expression* (a `modelspec.expr` node) that computes it
inside the class being generated (``planes``, ``k // 2``). Shape rules pass dims through
unchanged, so a channel count set by ``Conv2d(_, planes, 3)`` reaches the
next ``BatchNorm2d(_)`` still spelled ``planes``.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import total_ordering
import math
from typing import Union

from . import expr as E

Atom = Union[str, "FloorDiv"]

# The most terms one symbolic size may have (Limits.max_expr_terms, set while a spec is elaborated): sizes
# such as the product of ten sums of symbols would otherwise grow without bound, in time and in memory.
MAX_TERMS: ContextVar[int] = ContextVar("MAX_TERMS", default=10_000)


class ExprTooLarge(ArithmeticError):
    """A symbolic size grew past MAX_TERMS terms; the elaborator reports it where it happened."""

    def __init__(self, size: int):
        super().__init__(f"a symbolic size with {size:,} terms, over the limit of {MAX_TERMS.get():,}")
        self.size = size


@total_ordering
class FloorDiv:
    """An opaque ``num // den`` that could not be simplified."""

    __slots__ = ("num", "den", "_k")

    def __init__(self, num: "Sym", den: int):
        self.num, self.den = num, den
        self._k = (num._key(), den)  # structural, made once: sorting and hashing never print the numerator

    def _key(self):
        return self._k

    def __eq__(self, other):
        return isinstance(other, FloorDiv) and self._key() == other._key()

    def __lt__(self, other):
        return _atom_key(self) < _atom_key(other)

    def __hash__(self):
        return hash(self._key())

    def __str__(self):
        return f"({self.num}) // {self.den}" if len(self.num.terms) > 1 else f"{self.num} // {self.den}"


def _atom_key(a) -> tuple:
    return (0, a) if isinstance(a, str) else (1, a._k)


Monomial = tuple  # sorted tuple of atoms; () is the constant term


class Sym:
    """An integer polynomial over symbols: ``Sym.var("T") * 2 + 1``."""

    __slots__ = ("terms", "_k", "size")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms = {m: c for m, c in terms.items() if c != 0}
        self._k = None  # the canonical key, made when first compared or hashed
        # terms in all, those inside a floor division's numerator included: the budget max_expr_terms bounds it
        self.size = sum(1 + sum(a.num.size for a in m if not isinstance(a, str)) for m in self.terms)
        if self.size > MAX_TERMS.get():
            raise ExprTooLarge(self.size)

    @staticmethod
    def var(name: str) -> "Sym":
        return Sym({(name,): 1})

    # -- construction helpers -------------------------------------------------
    @staticmethod
    def lift(x) -> "Sym":
        if isinstance(x, Sym):
            return x
        if isinstance(x, bool) or not isinstance(x, int):
            raise TypeError(f"not a dimension: {x!r}")
        return Sym({(): x})

    def simplify(self) -> "int | Sym":
        """An ``int`` when no symbol is left, else self."""
        if not self.terms:
            return 0
        if list(self.terms) == [()]:
            return self.terms[()]
        return self

    @property
    def symbols(self) -> set[str]:
        out = set()
        for mono in self.terms:
            for a in mono:
                out |= {a} if isinstance(a, str) else a.num.symbols
        return out

    # -- arithmetic -------------------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        o = Sym.lift(other)
        terms = dict(self.terms)
        for m, c in o.terms.items():
            terms[m] = terms.get(m, 0) + c
        return Sym(terms).simplify()

    __radd__ = __add__

    def __neg__(self):
        return Sym({m: -c for m, c in self.terms.items()})

    def __sub__(self, other):
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        return self + (-Sym.lift(other))

    def __rsub__(self, other):
        return Sym.lift(other) - self

    def __mul__(self, other):
        if not isinstance(other, (int, Sym)) or isinstance(other, bool):
            return NotImplemented
        o = Sym.lift(other)
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in o.terms.items():
                m = tuple(sorted(m1 + m2, key=_atom_key))
                terms[m] = terms.get(m, 0) + c1 * c2
        return Sym(terms).simplify()

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, Sym):
            q = self._exact_div(other)
            if q is not None:
                return q
            raise TypeError(f"cannot divide {self} by symbolic {other}")
        if not isinstance(other, int) or isinstance(other, bool) or other == 0:
            return NotImplemented
        if other == 1:
            return self
        # move whole multiples of `other` out of the constant: (T - 2) // 2 + 1 == T // 2
        q, r = divmod(self.terms.get((), 0), other)
        rest = {m: c for m, c in self.terms.items() if m != ()}
        if all(c % other == 0 for c in rest.values()):
            return Sym({m: c // other for m, c in rest.items()}) + q  # r < other adds nothing
        if r:
            rest[()] = r
        return Sym({(FloorDiv(Sym(rest), other),): 1}) + q

    def __rfloordiv__(self, other):
        q = Sym.lift(other)._exact_div(self)
        if q is not None:
            return q
        raise TypeError(f"cannot divide {other} by symbolic {self}")

    def _exact_div(self, other: "Sym"):
        """``self / other`` when other is a single monomial dividing every term."""
        if len(other.terms) != 1:
            return _ratio(self, other)
        (mono, coef), = other.terms.items()
        out: dict[Monomial, int] = {}
        for m, c in self.terms.items():
            rest = list(m)
            for a in mono:
                if a not in rest:
                    return None
                rest.remove(a)
            if c % coef:
                return None
            out[tuple(rest)] = c // coef
        return Sym(out).simplify()

    def __mod__(self, other):
        return NotImplemented

    # -- comparison -----------------------------------------------------------
    def _key(self):
        if self._k is None:
            self._k = tuple(sorted(((tuple(_atom_key(a) for a in m), c) for m, c in self.terms.items())))
        return self._k

    def __eq__(self, other):
        if isinstance(other, Sym):
            return self._key() == other._key()
        return False

    def __hash__(self):
        return hash(self._key())

    # -- printing ----------------------------------------------------------
    def __str__(self):
        def mono_str(m, c):
            wrap = len(m) > 1 or abs(c) != 1  # 4 * ((T + 1) // 2), not 4 * (T + 1) // 2
            atoms = " * ".join(f"({a})" if wrap and isinstance(a, FloorDiv) else str(a) for a in m)
            if not m:
                return str(abs(c))
            return atoms if abs(c) == 1 else f"{abs(c)} * {atoms}"

        # highest degree first, constant last: "B * T", "T - 4"
        ordered = sorted(self.terms.items(), key=lambda mc: (-len(mc[0]), [_atom_key(a) for a in mc[0]]))
        out = ""
        for i, (m, c) in enumerate(ordered):
            s = mono_str(m, c)
            if i == 0:
                out = f"-{s}" if c < 0 else s
            else:
                out += f" - {s}" if c < 0 else f" + {s}"
        return out

    __repr__ = __str__


def _ratio(a: Sym, b: Sym):
    """``a / b`` for a polynomial ``b`` of several terms: an integer ``k`` when ``a == k * b``, else None."""
    mono, coef = max(b.terms.items(), key=lambda mc: (len(mc[0]), [_atom_key(x) for x in mc[0]]))
    k, r = divmod(a.terms.get(mono, 0), coef)
    if r or k == 0:
        return None
    return k if a == b * k else None


Dim = Union[int, Sym]


def is_dim(x) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or isinstance(x, Sym)


def dim_str(d) -> str:
    """A dim as it reads in a shape: ``784``, ``B``, ``(T - 4) // 2``."""
    return str(d)


def shape_str(shape) -> str:
    """``[B, 1, 28, 28]``."""
    return "[" + ", ".join(dim_str(v.value if isinstance(v, Val) else v) for v in shape) + "]"


class Val:
    """A compile-time value and the expression that computes it in the current class.

    ``value`` is an int, `Sym`, float, bool, str, None, or a tuple/list of
    `Val`. ``expr`` is a `modelspec.expr` node valid inside the class being
    generated (``planes``, ``k // 2``), or None when the value can only be
    spelled as a literal. Arithmetic on a Val gives a Val without one (a
    derived quantity).
    """

    __slots__ = ("value", "_expr", "slot")

    def __init__(self, value, expr=None, slot: "InputSlot | None" = None):
        self.value = value
        self._expr = expr
        self.slot = slot

    @property
    def expr(self):
        if self._expr is not None:
            return self._expr
        if self.slot is not None and self.slot.name is not None:
            return E.Name(self.slot.name)
        return None

    def plain(self):
        """The bare Python value, tuples and lists unwrapped."""
        v = self.value
        if isinstance(v, (tuple, list)):
            return type(v)(x.plain() if isinstance(x, Val) else x for x in v)
        return v

    def __repr__(self):
        return f"Val({self.value!r}, {self.expr!r})"

    # arithmetic used by shape rules; results are derived (no code)
    def _bin(self, other, op):
        o = other.value if isinstance(other, Val) else other
        return Val(op(self.value, o))

    def _rbin(self, other, op):
        o = other.value if isinstance(other, Val) else other
        return Val(op(o, self.value))

    def __add__(self, o):
        return self._bin(o, lambda a, b: a + b)

    def __radd__(self, o):
        return self._rbin(o, lambda a, b: a + b)

    def __sub__(self, o):
        return self._bin(o, lambda a, b: a - b)

    def __rsub__(self, o):
        return self._rbin(o, lambda a, b: a - b)

    def __mul__(self, o):
        return self._bin(o, lambda a, b: a * b)

    def __rmul__(self, o):
        return self._rbin(o, lambda a, b: a * b)

    def __floordiv__(self, o):
        return self._bin(o, lambda a, b: a // b)

    def __rfloordiv__(self, o):
        return self._rbin(o, lambda a, b: a // b)

    def __eq__(self, o):
        return self.value == (o.value if isinstance(o, Val) else o)

    def __hash__(self):
        return hash(self.value) if not isinstance(self.value, list) else id(self)

    def __str__(self):
        return str(self.value)


class InputSlot:
    """A dimension of a block's input, named when first used as an argument.

    Dims of a block's input have no spelling inside the block's class until
    an inferred argument (``Conv2d(_, ...)``) needs one; then the slot takes
    the name of that argument (``in_channels``) and becomes a constructor
    parameter of the block's class.
    """

    __slots__ = ("index", "name", "value", "owner", "outer")

    def __init__(self, index: int, value, owner, outer: "Val"):
        self.index, self.value, self.name = index, value, None
        self.owner = owner  # the scope (block instance) whose input this is
        self.outer = outer  # the dim as the caller sees it


def evaluate(v, sizes: dict[str, int]) -> int:
    """A dim at concrete symbol sizes: ``evaluate(B * T, {"B": 2, "T": 8}) == 16``."""
    if isinstance(v, Val):
        v = v.value
    if isinstance(v, int):
        return v
    total = 0
    for mono, coef in v.terms.items():
        term = coef
        for atom in mono:
            term *= sizes[atom] if isinstance(atom, str) else evaluate(atom.num, sizes) // atom.den
        total += term
    return total


# ---------------------------------------------------------------- values as expressions
def const_expr(value):
    """The expression of a compile-time value: numbers, strings, None, tuples and lists of them.

    >>> const_expr((3, 3))
    TupleExpr(items=(Constant(value=3), Constant(value=3)))
    """
    if isinstance(value, Val):
        return value.expr if value.expr is not None else const_expr(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return E.Constant(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return E.call("float", E.Constant(str(value)))
        return E.Constant(value)
    if isinstance(value, tuple):
        return E.TupleExpr(tuple(const_expr(v) for v in value))
    if isinstance(value, list):
        return E.ListExpr(tuple(const_expr(v) for v in value))
    if isinstance(value, Sym):
        return sym_expr(value)
    raise TypeError(f"no expression for {value!r}")


def sym_expr(s):
    """A symbolic size as an expression over its symbols: ``B * T - 1``."""

    def atom(a):
        return E.Name(a) if isinstance(a, str) else E.BinOp("//", sym_expr(a.num), E.Constant(a.den))

    out = None
    ordered = sorted(s.terms.items(), key=lambda mc: (-len(mc[0]), [_atom_key(a) for a in mc[0]]))
    for mono, coef in ordered:
        term = None
        for a in mono:
            term = atom(a) if term is None else E.BinOp("*", term, atom(a))
        if term is None:
            term = E.Constant(abs(coef))
        elif abs(coef) != 1:
            term = E.BinOp("*", E.Constant(abs(coef)), term)
        if out is None:
            out = E.UnaryOp("-", term) if coef < 0 else term
        else:
            out = E.BinOp("-" if coef < 0 else "+", out, term)
    return out if out is not None else E.Constant(0)
