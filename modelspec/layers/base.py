"""What a catalog entry is: a layer's signature, inference, shape rule and costs.

Shape rules receive the bound arguments ``a`` (attribute access by torch's
argument names, every value a `Val` or plain Python value) and the input
shape(s) as tuples of `Val` dims, and return the output shape (or a tuple of
shapes for layers with several outputs). A rule that finds the input
unfit raises `ShapeProblem` with a message in the spec's terms; the
elaborator adds the place and the layer's name.

Dtypes are part of a value's type, as shapes are: an entry says which input
dtypes its torch module runs on (``dtypes``) and what dtype its output has
(``out_dtype``); ``tests/test_dtypes.py`` holds both against torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..shapes import Sym, Val, is_dim, shape_str

REQUIRED = object()  # marks an argument without a default


class ShapeProblem(Exception):
    """A rule's complaint about its input, before a place is attached.

    ``hint``: what to do about it, where the rule knows better than the
    call's signature (a dtype refusal says how to get the dtype it takes).
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


MAX_ELEMENTS = 2 ** 63 - 1  # torch counts a tensor's elements in an int64


def check_elements(shapes) -> None:
    """Refuse a result with more elements than torch can count: its fixed dims alone multiply past
    MAX_ELEMENTS (a flatten of outer products of wide tensors). ``shapes``: a shape, a TensorInfo, or a list."""
    if hasattr(shapes, "shape"):
        shapes = shapes.shape
    if isinstance(shapes, list):
        for s in shapes:
            check_elements(s)
        return
    if not isinstance(shapes, tuple):
        return
    n = 1
    for d in shapes:
        d = d.value if isinstance(d, Val) else d
        if isinstance(d, int) and not isinstance(d, bool) and d > 0:
            n *= d
    if n > MAX_ELEMENTS:
        raise ShapeProblem(f"would make a tensor of at least 2**{n.bit_length() - 1} elements: torch counts "
                           f"elements in 64 bits, up to 2**63 - 1", hint="use smaller sizes")


class ArgProblem(Exception):
    """An argument value of the wrong type or out of range."""


# ---------------------------------------------------------------- argument types
@dataclass(frozen=True)
class ArgType:
    """Checks and normalises one argument value (plain Python, dims as int/Sym)."""

    describe: str
    check: Callable[[Any], Any]

    def __call__(self, value):
        return self.check(value)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_check(lo: int | None, what: str):
    def check(v):
        if not _is_int(v):
            raise ArgProblem(f"must be {what}, not {_show(v)}")
        if lo is not None and v < lo:
            raise ArgProblem(f"must be {what}, not {v}")
        return v

    return check


def _show(v) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"the float {v}"
    if isinstance(v, (tuple, list)):
        return f"the {type(v).__name__} {v!r}"
    return repr(v)


INT = ArgType("an integer", _int_check(None, "an integer"))
POSITIVE = ArgType("a positive integer", _int_check(1, "a positive integer"))
NONNEG = ArgType("a non-negative integer", _int_check(0, "a non-negative integer"))


def _bool(v):
    if not isinstance(v, bool):
        raise ArgProblem(f"must be True or False, not {_show(v)}")
    return v


BOOL = ArgType("True or False", _bool)


def _float(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgProblem(f"must be a number, not {_show(v)}")
    return float(v) if isinstance(v, float) else v


FLOAT = ArgType("a number", _float)


def _positive_float(v):
    v = _float(v)
    if not v > 0:
        raise ArgProblem(f"must be a positive number, not {_show(v)}")
    return v


POSITIVE_FLOAT = ArgType("a positive number", _positive_float)  # BatchNorm's eps: torch refuses eps <= 0 in training


def probability(v):
    v = _float(v)
    if not 0 <= v <= 1:
        raise ArgProblem(f"must be a probability between 0 and 1, not {v}")
    return v


PROB = ArgType("a probability between 0 and 1", probability)


def optional(t: ArgType) -> ArgType:
    return ArgType(f"{t.describe} or None", lambda v: None if v is None else t(v))


def choice(*options: str) -> ArgType:
    def check(v):
        if v not in options:
            raise ArgProblem(f"must be one of {', '.join(repr(o) for o in options)}, not {_show(v)}")
        return v

    return ArgType("one of " + ", ".join(repr(o) for o in options), check)


def sizes(n: int, lo: int = 1, what: str = "positive") -> ArgType:
    """An int or a tuple of ``n`` ints, each >= lo (kernel_size, stride, ...)."""

    word = {1: "a positive integer", 0: "a non-negative integer"}.get(lo, f"an integer >= {lo}")

    def check(v):
        items = v if isinstance(v, (tuple, list)) else (v,) * n
        if isinstance(v, (tuple, list)) and len(v) != n:
            raise ArgProblem(f"must be {word} or a tuple of {n}, not a tuple of {len(v)}")
        for x in items:
            if not _is_int(x):
                raise ArgProblem(f"must be {word} or a tuple of {n}, not {_show(v)}")
            if x < lo:
                raise ArgProblem(f"must be {word} or a tuple of {n}, not {_show(v)}")
        return tuple(items)

    return ArgType(f"{word} or a tuple of {n}", check)


def conv_padding(n: int) -> ArgType:
    base = sizes(n, 0)

    def check(v):
        if isinstance(v, str):
            if v not in ("same", "valid"):
                raise ArgProblem(f"must be 'same', 'valid', or non-negative integers, not {v!r}")
            return v
        return base(v)

    return ArgType("'same', 'valid', a non-negative integer or a tuple", check)


def _shape_arg(v):
    items = v if isinstance(v, (tuple, list)) else (v,)
    for x in items:
        if not is_dim(x) or (_is_int(x) and x < 1):
            raise ArgProblem(f"must be a positive integer or a tuple of them, not {_show(v)}")
    return tuple(items)


SHAPE = ArgType("a positive integer or a tuple of them", _shape_arg)


def output_size(n: int) -> ArgType:
    """AdaptivePool output_size: int, None, or a tuple of n (int or None)."""

    def check(v):
        if v is None:  # torch takes None for one dim (keep its size), not for the whole output_size
            raise ArgProblem(f"must be a positive integer or a tuple of {n}; None may stand only inside the tuple")
        items = v if isinstance(v, (tuple, list)) else (v,) * n
        if len(items) != n:
            raise ArgProblem(f"must be a positive integer or a tuple of {n}, not a tuple of {len(items)}")
        for x in items:
            if x is not None and (not _is_int(x) or x < 1):
                raise ArgProblem(f"must be a positive integer (or None) or a tuple of {n}, not {_show(v)}")
        return tuple(items)

    return ArgType(f"a positive integer or a tuple of {n}", check)


ANY = ArgType("any value", lambda v: v)


# ---------------------------------------------------------------- dtypes
DTYPES = ("bool", "long", "float")  # every dtype a value has, in the order torch promotes them
FLOAT_ONLY = ("float",)
NUMERIC = ("float", "long")  # torch's kernels for integers and floats, not bool: relu, max pooling
ANY_DTYPE = DTYPES
DECLARED = {"float": "Float", "long": "Long", "bool": "Bool"}  # how a spec declares each: x: Long[B, T]


def dtype_problem(takes: tuple[str, ...], got: str, what: str = "input") -> ShapeProblem:
    """The refusal of a layer or op that takes ``takes`` tensors, given a ``got`` one as ``what``.

    >>> str(dtype_problem(("float",), "long"))
    'takes float input, but its input is a long tensor'
    """
    words = " or ".join(d for d in reversed(DTYPES) if d in takes)
    if "float" in takes:
        hint = "declare the input as Float[...] (the default), or make the tensor float: x * 1.0"
    else:
        hint = "declare the input as " + " or ".join(f"{DECLARED[d]}[...]" for d in takes)
    return ShapeProblem(f"takes {words} input, but its {what} is a {got} tensor", hint=hint)


def keep_dtype(a, dtype: str) -> str:
    """An output of the input's dtype (Identity, ReLU on long, Linear on float)."""
    return dtype


def float_out(a, dtype: str) -> str:
    """A float output whatever the input (Embedding's vectors; Sigmoid of a long tensor)."""
    return "float"


def with_indices(a, dtype: str):
    """MaxPool's values keep the input's dtype; with ``return_indices`` a long tensor of indices follows."""
    return (dtype, "long") if a.return_indices else dtype


# ---------------------------------------------------------------- entries
@dataclass(frozen=True)
class Arg:
    """One constructor argument, named and defaulted exactly as in torch."""

    name: str
    type: ArgType = ANY
    default: Any = REQUIRED
    infer: Callable[[tuple], Val] | None = None  # from the input shape, for `_`
    kw_only: bool = False
    compare: str = "equal"  # how an explicit value is checked: "equal" to the inferred, or against "trailing" dims


def no_state(a) -> int:
    """The parameters (or buffer elements) of a layer that has none, whatever its arguments: ReLU, Flatten."""
    return 0


@dataclass(frozen=True)
class Layer:
    """One catalog entry: a torch.nn class as modelspec knows it.

    ``rule(a, *inputs)`` gives the output shape; ``params(a)`` the number of
    parameters; ``weights(a)``, where given, their names and shapes, so that
    forward can read ``fc.weight``; ``macs(a, out, *inputs)`` the
    multiply-accumulates of one forward pass; ``ranks`` the input ranks
    accepted (unbatched included). ``dtypes`` are the dtypes every input may
    have, those torch's module runs on in training and in eval (a callable of
    ``a`` where its arguments decide); ``out_dtype(a, dtype)`` the dtype of
    the output (a tuple: of each output) for an input of ``dtype``.
    """

    name: str
    args: tuple[Arg, ...]
    rule: Callable
    doc: str
    params: Callable[[Any], Any] = no_state
    buffers: Callable[[Any], int] = no_state  # elements of its buffers (running statistics): max_params counts them
    macs: Callable = lambda a, out, *inputs: 0
    ranks: tuple[int, ...] | None = None
    n_inputs: int | tuple[int, ...] = 1  # how many tensors forward takes (a tuple: each count allowed)
    check: Callable | None = None  # argument cross-checks, raising ArgProblem
    family: str = ""
    explain: Callable | None = None  # how the output shape follows, for --explain
    # how the output lies in memory: "new" (a fresh contiguous tensor: Linear, Conv), "strided" (attention and
    # batch_first RNNs return transposed views), or "keep" the input's order (elementwise layers, pooling, norms:
    # torch's kernels follow the input's strides; the safe default, since a wrong "new" lets a bad view pass)
    layout: str = "keep"
    rearranges: bool = False  # its output holds the input's values, moved (Flatten): the input's index range holds
    call_args: tuple[Arg, ...] = ()  # forward's non-tensor keyword arguments (need_weights=...), bound into `a`
    weights: Callable | None = None  # (a) -> {"weight": shape, "bias": shape}: the module's own parameters
    dtypes: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = FLOAT_ONLY  # float weights take float inputs
    out_dtype: Callable[[Any, str], str | tuple[str, ...]] = keep_dtype
    index_bound: Callable[[Any], int] | None = None  # (a) -> the bound an index input stays below: Embedding's size
    doc_of: Callable[[Any], str] | None = None  # (a) -> the doc, where the arguments change it (no + b without bias)

    def doc_for(self, a) -> str:
        """What the layer computes with the arguments ``a``, as --explain says it: Linear(4, 2, bias=False)
        is ``y = x W^T``, without ``+ b``."""
        return self.doc if self.doc_of is None else self.doc_of(a)

    @property
    def stateless(self) -> bool:
        """No arguments give it parameters or buffers (ReLU, Dropout, MaxPool2d), as some give Linear, BatchNorm
        and PReLU theirs."""
        return self.params is no_state and self.buffers is no_state

    def input_counts(self) -> tuple[int, ...]:
        return self.n_inputs if isinstance(self.n_inputs, tuple) else (self.n_inputs,)

    def input_dtypes(self, a) -> tuple[str, ...]:
        return self.dtypes(a) if callable(self.dtypes) else self.dtypes

    def output_dtypes(self, a, out, dtype: str):
        """The dtype of each output in the rule's result ``out``, nested as it is (None where it is None)."""

        def pair(s, d):
            if s is None:
                return None
            if isinstance(s, list):  # several outputs: a dtype for each, or one for all
                each = d if isinstance(d, tuple) else (d,) * len(s)
                return [pair(x, e) for x, e in zip(s, each, strict=True)]
            return d

        return pair(out, self.out_dtype(a, dtype))

    def check_dtypes(self, a, dtypes, shapes=()) -> None:
        """Raise `ShapeProblem` (with a hint) where an input has a dtype torch's module refuses. ``shapes``, the
        inputs' shapes, for entries whose dtypes follow them (a loss's class index or probability target)."""
        takes = self.input_dtypes(a)
        for d in dtypes:
            if d not in takes:
                raise dtype_problem(takes, d)

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)


@dataclass(frozen=True)
class ModuleArg:
    """A module given as a constructor argument (TransformerEncoder's encoder_layer)."""

    type_name: str  # "TransformerEncoderLayer"
    params: int  # its parameter count
    args: dict  # its bound constructor arguments, plain values


def affine(shape, bias: bool) -> dict:
    """``weight`` and, with ``bias``, ``bias`` of one shape: the parameters of a norm layer."""
    return {"weight": tuple(shape), **({"bias": tuple(shape)} if bias else {})}


def _module_arg(v):
    if not isinstance(v, ModuleArg):
        raise ArgProblem(f"must be a module such as TransformerEncoderLayer(...), not {_show(v)}")
    return v


MODULE = ArgType("a module", _module_arg)


@dataclass
class Bound:
    """Bound arguments: ``a.kernel_size`` is the plain value (dims int/Sym);
    ``a.val("out_channels")`` the `Val`, keeping how the spec spells it, for
    rules whose output dim is an argument (so ``_`` after it reads ``planes``).
    """

    values: dict[str, Any] = field(default_factory=dict)
    vals: dict[str, Val] = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def val(self, name: str) -> Val:
        v = self.vals.get(name)
        return v if isinstance(v, Val) else Val(self.values[name])


# ---------------------------------------------------------------- rule helpers
def dim(shape, i) -> Any:
    """The plain value of dim ``i`` (int or Sym)."""
    v = shape[i]
    return v.value if isinstance(v, Val) else v


def need_rank(shape, ranks: tuple[int, ...], what: str):
    if len(shape) not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ShapeProblem(f"expects a {want} input {_axes(ranks)}, got {len(shape)}-d {shape_str(shape)}")


def _axes(ranks) -> str:
    names = {2: "[B, F]", 3: "[B, C, L]", 4: "[B, C, H, W]", 5: "[B, C, D, H, W]"}
    return "(" + " or ".join(names.get(r, f"{r}-d") for r in ranks) + ")" if all(r in names for r in ranks) else ""


def channel_dim(shape, batched_rank: int) -> int:
    """Index of the channel dim: 1 when batched, 0 when unbatched."""
    return 1 if len(shape) == batched_rank else 0


def concrete(v, what: str) -> int:
    """An int, or a ShapeProblem naming the symbolic size it depends on."""
    v = v.value if isinstance(v, Val) else v
    if isinstance(v, Sym):
        raise ShapeProblem(f"{what} would depend on the symbolic size {v}; it must be a fixed number")
    return v


def pos(v) -> bool:
    """True when a dim is known to be < 1 (so the output would be empty)."""
    return not (isinstance(v, int) and v < 1)


def prod(xs):
    out = 1
    for x in xs:
        out = out * x
    return out


def same_shape(a, x):
    return tuple(x)


def sym_or_int(v):
    return v


# ---------------------------------------------------------------- binding
class _Infer:
    """The ``_`` of a spec: an argument to infer from the input shape."""

    def __repr__(self):
        return "_"


INFER = _Infer()


class ArgError(Exception):
    """A binding problem naming the argument (or None for the whole call)."""

    def __init__(self, message: str, arg: str | None = None, index: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.index, self.hint = message, arg, index, hint


class InferMismatch(Exception):
    """An explicit argument that disagrees with what the input shape says."""

    def __init__(self, arg: str, given, inferred):
        super().__init__(arg)
        self.arg, self.given, self.inferred = arg, given, inferred


def bind(layer: Layer, args: list, kwargs: dict, inputs: tuple) -> Bound:
    """Bind call arguments to a catalog entry, inferring ``_`` from ``inputs``.

    ``args``/``kwargs`` hold `Val`s (or `INFER`); ``inputs`` the input shapes.
    Raises `ArgError` for a bad call, `InferMismatch` for an explicit
    argument the input contradicts, `ShapeProblem` for an unfit input.
    """
    names = [a.name for a in layer.args]
    positional = [a for a in layer.args if not a.kw_only]
    given: dict[str, Any] = {}
    if len(args) > len(positional):
        raise ArgError(
            f"takes at most {len(positional)} positional argument{'s' if len(positional) != 1 else ''} "
            f"({', '.join(a.name for a in positional) or 'none'}) but {len(args)} were given",
            index=len(positional),
        )
    for a, v in zip(positional, args):
        given[a.name] = v
    for k, v in kwargs.items():
        if k not in names:
            from ..errors import did_you_mean

            raise ArgError(f"has no argument {k!r}", arg=k, hint=did_you_mean(k, names) or _arg_list(layer))
        if k in given:
            raise ArgError(f"got {k!r} twice, by position and by keyword", arg=k)
        given[k] = v
    values: dict[str, Any] = {}
    vals: dict[str, Val] = {}
    inferred: dict[str, Any] = {}
    for a in layer.args:
        v = given.get(a.name, REQUIRED)
        if v is INFER or (v is REQUIRED and a.infer is not None):
            if a.infer is None:
                raise ArgError(f"cannot infer {a.name!r} from the input shape; give it explicitly", arg=a.name)
            got = _infer(a, inputs)
            if got is None:
                shown = f" from its input {shape_str(inputs[0])}" if inputs else ""
                raise ArgError(f"cannot infer {a.name!r}{shown}; give it explicitly", arg=a.name,
                               hint=f"{layer.name} infers it from an input with more dims" if inputs else None)
            inferred[a.name] = got
            v = got
        elif v is REQUIRED:
            if a.default is REQUIRED:
                raise ArgError(f"is missing the argument {a.name!r}", arg=None, hint=_arg_list(layer))
            v = Val(a.default)
        vals[a.name] = v if isinstance(v, Val) else tuple(v) if isinstance(v, tuple) else Val(v)
        plain = plain_value(v)
        try:
            values[a.name] = a.type(plain)
        except ArgProblem as exc:
            if a.name in inferred and inputs:  # Linear(_, 2) on [B, T]: the input has no fixed size there
                raise ArgError(f"infers {a.name}={_show(plain)} from its input {shape_str(inputs[0])}, but "
                               f"{a.name} {exc}", arg=a.name if a.name in given else None,
                               hint="a layer is sized by fixed dims: give that dim of the input a number") from None
            raise ArgError(f"argument {a.name!r} {exc}", arg=a.name if a.name in given else None) from None
    bound = Bound(values, vals)
    for a in layer.args:
        if a.infer is not None and a.name in given and given[a.name] is not INFER and inputs:  # never called: no input
            want = _infer(a, inputs)
            if a.compare == "trailing" and inputs:  # LayerNorm((5, 64)) on [B, 5, 64]
                n = len(values[a.name])
                want = tuple(inputs[0][-n:]) if n <= len(inputs[0]) else want
            # compare normalised values: LayerNorm(64) and the inferred (64,) agree
            try:
                agrees = want is None or a.type(plain_value(want)) == values[a.name]
            except ArgProblem:  # the input has no valid value there: a symbol, say
                raise ShapeProblem(f"expects {a.name}={_show(plain_value(given[a.name]))}, but its input "
                                   f"{shape_str(inputs[0])} has {_show(plain_value(want))} there") from None
            if not agrees:
                raise InferMismatch(a.name, plain_value(given[a.name]), plain_value(want))
    if layer.check is not None:
        try:
            layer.check(bound)
        except ArgProblem as exc:
            raise ArgError(str(exc)) from None
    bound.inferred = inferred  # type: ignore[attr-defined]
    return bound


def _infer(a, inputs):
    """What an inferable argument would be for these inputs; None where they have too few dims for it."""
    try:
        return a.infer(*inputs)
    except (IndexError, TypeError):  # x[-1] of a 0-d tensor; no input at all
        return None


def plain_value(v):
    """A bound or inferred argument's bare value: Vals unwrapped, tuples of them as tuples."""
    if isinstance(v, Val):
        return v.plain()
    if isinstance(v, (tuple, list)):
        return tuple(plain_value(x) for x in v)
    return v


def _arg_list(layer: Layer) -> str:
    parts = []
    for a in layer.args:
        parts.append(a.name if a.default is REQUIRED else f"{a.name}={a.default!r}")
    return f"{layer.name}({', '.join(parts)})"


def signature_hint(layer: Layer) -> str:
    """The hint of an argument or shape error that has no better one: how the layer is called."""
    return f"the call is {_arg_list(layer)}"


def _unwrap_result(out):
    """Plain shapes from a rule's result: lists nest (LSTM), None stays None."""
    if out is None:
        return None
    if isinstance(out, list):
        return [_unwrap_result(s) for s in out]
    return tuple(d.value if isinstance(d, Val) else d for d in out)
