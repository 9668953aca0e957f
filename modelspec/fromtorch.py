"""From PyTorch back to a spec: `from_torch(module, inputs)` writes the .nnspec that compiles to ``module``.

How a module is read:

- a module whose class is in the layer catalog is a layer: its constructor arguments are read from the module
  by the catalog's argument names (`READERS` where torch keeps one elsewhere), and held to the module by building
  the layer again from them and comparing what torch stored, so an argument read wrong is an error, never a
  different layer;
- ``Sequential``, ``ModuleList`` and ``ModuleDict`` stay containers;
- any other class is a block: ``torch.fx`` traces its ``forward`` with every child a leaf, in training and in eval,
  and the graph is written back as statements, named as its Python source names them where that can be read;
- the instances of one class are one block: the numbers in which they differ are its parameters (named after an
  attribute or argument that holds them), and a child that only some instances have is a conditional child, on
  the simplest condition over the parameters and ``in_shape`` that tells them apart;
- an argument that follows from the input (a Conv2d's ``in_channels``) is ``_``, and every name is the module's,
  so the spec's state_dict has the module's keys.

What a spec cannot say (control flow on a tensor's values, an op without a spec form, a module outside the
catalog) is a `Problem` that names the Python line: a ``TODO(...)`` placeholder in the spec, which `check` refuses,
or with ``strict`` an error.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import keyword
import math
import operator
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .errors import FromTorchError, Problem
from .layers import CATALOG
from .layers.base import REQUIRED
from .names import BUILTINS, GENERATED, name_problem
from .ops import OPS
from .parse import _KEYWORDS
from .printer import BIN_PREC, PREC_COMPARE, PREC_FACTOR, PREC_PRIMARY
from .runner import flat

# the words a name of the spec cannot be: its keywords, Python's, the generated code's and the builtins
RESERVED = set(_KEYWORDS) | set(keyword.kwlist) | set(GENERATED) | set(BUILTINS) | {"training", "in_shape", "_"}
DTYPE_NAMES = {torch.float32: "float", torch.int64: "long", torch.bool: "bool"}
# what from-torch says where the spec it wrote fails its own check: the module does something the language
# cannot say there, or from-torch read it wrong
BUG = ("a construct of the module has no spec form there, or from-torch read it wrong: write that part of the "
       "spec by hand, and report the module if the language should take it")
TENSOR = object()  # a forward argument that is given a tensor
MISSING = object()  # a slot's value in an instance that lacks the child holding it
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


# ---------------------------------------------------------------- problems
def _fail(where: str, message: str, hint: str = ""):
    raise FromTorchError([Problem(where, message, hint)])


# ---------------------------------------------------------------- values as spec text
def literal(v) -> str:
    """A constant as the spec writes it.

    >>> literal((3, 3)), literal(1e-05), literal("same"), literal(torch.long), literal(slice(None, 2))
    ('(3, 3)', '1e-05', '"same"', 'torch.long', ':2')
    """
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return f'float("{v}")'
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, torch.dtype):
        return "torch." + DTYPE_NAMES.get(v, str(v).removeprefix("torch."))
    if isinstance(v, slice):
        parts = ["" if p is None else literal(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if v.step is not None else "")
    if v is Ellipsis:
        return "..."
    if isinstance(v, (tuple, torch.Size)):
        items = [literal(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    raise ValueError(f"no spec form for the value {v!r}")


def attribute(obj, name: str):
    """``obj``'s attribute ``name``, or None. The names come from the layer catalog and the op table (torch's
    classes and functions, a layer's arguments), or from the module being read and the TARGET the user named:
    never from a spec."""
    return getattr(obj, name, None)


def is_name(s: str) -> bool:
    return s.isidentifier() and not keyword.iskeyword(s)


# ---------------------------------------------------------------- reading a layer's constructor arguments
def _bias(m, name="bias"):
    return attribute(m, name) is not None


def _hardtanh(m):
    return {"min_val": m.min_val, "max_val": m.max_val}


def _mha(m):
    return {"embed_dim": m.embed_dim, "num_heads": m.num_heads, "dropout": m.dropout,
            "bias": m.in_proj_bias is not None, "add_bias_kv": m.bias_k is not None,
            "add_zero_attn": m.add_zero_attn, "kdim": m.kdim, "vdim": m.vdim, "batch_first": m.batch_first}


def _activation_of(m):
    act = m.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or isinstance(act, nn.GELU):
        return "gelu"
    return act  # refused by the check against torch


def _transformer_layer(m):
    return {"d_model": m.self_attn.embed_dim, "nhead": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": m.dropout.p, "activation": _activation_of(m),
            "layer_norm_eps": m.norm1.eps, "batch_first": m.self_attn.batch_first, "norm_first": m.norm_first,
            "bias": m.linear1.bias is not None}


def _transformer(m):
    layer = _transformer_layer(m.encoder.layers[0])
    return {"d_model": m.d_model, "nhead": m.nhead, "num_encoder_layers": len(m.encoder.layers),
            "num_decoder_layers": len(m.decoder.layers), "batch_first": m.batch_first,
            **{k: layer[k] for k in ("dim_feedforward", "dropout", "activation", "layer_norm_eps", "norm_first",
                                     "bias")}}


def _encoder(m):
    return {"encoder_layer": m.layers[0], "num_layers": len(m.layers), "norm": m.norm,
            "enable_nested_tensor": m.enable_nested_tensor, "mask_check": m.mask_check}


def _decoder(m):
    return {"decoder_layer": m.layers[0], "num_layers": len(m.layers), "norm": m.norm}


# Where torch keeps an argument under another name than the catalog's (the constructor's), or not at all.
READERS = {
    "Hardtanh": _hardtanh,
    "MultiheadAttention": _mha,
    "PairwiseDistance": lambda m: {"p": m.norm},
    "TransformerEncoderLayer": _transformer_layer,
    "TransformerDecoderLayer": _transformer_layer,
    "Transformer": _transformer,
    "TransformerEncoder": _encoder,
    "TransformerDecoder": _decoder,
}


def catalog_name(m: nn.Module) -> str | None:
    """The catalog entry a module is: its class's (or the torch.nn class it subclasses without a forward)."""
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ in CATALOG and attribute(nn, cls.__name__) is cls:
            return cls.__name__ if type(m).forward is cls.forward else None
        if "forward" in vars(cls):
            return None
    return None


def _plain_state(m: nn.Module) -> dict:
    """What a torch module and each module inside it store besides tensors (numbers, flags, strings), and its
    state_dict's shapes: what two equal layers agree on."""
    out = {}
    for path, sub in m.named_modules():
        for k, v in vars(sub).items():
            if k.startswith("_") or k == "training":
                continue
            if isinstance(v, (int, float, bool, str, tuple, list, type(None))):
                out[f"{path}.{k}" if path else k] = v
            elif callable(v) and not isinstance(v, nn.Module):  # TransformerEncoderLayer's activation function
                out[f"{path}.{k}" if path else k] = getattr(v, "__qualname__", repr(v))
    out["__state__"] = sorted((k, tuple(t.shape)) for k, t in m.state_dict().items())
    return out


def _plain_equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # values that do not compare (tensors in a list): not known to be equal
        return False


def _same_layer(again: nn.Module, m: nn.Module) -> bool:
    """Whether a layer built again stores what ``m`` does; what was set on ``m`` after (torchvision's
    ``fc.stddev``, read by its own init) is not torch's, and not compared."""
    ours, theirs = _plain_state(again), _plain_state(m)
    return ours == {k: v for k, v in theirs.items() if k in ours}


def read_args(m: nn.Module, name: str) -> dict:
    """The constructor arguments of a catalog layer ``m``, by the catalog's names."""
    layer = CATALOG[name]
    if name in READERS:
        values = READERS[name](m)
    else:
        values = {}
        for a in layer.args:
            if a.name in ("bias", "elementwise_affine") and isinstance(attribute(m, a.name), (torch.Tensor,
                                                                                                type(None))):
                values[a.name] = _bias(m, a.name)
            elif hasattr(m, a.name):
                values[a.name] = attribute(m, a.name)
    return values


# ---------------------------------------------------------------- terms: a child's expression, with slots
@dataclass
class Slot:
    """A number in a body that may differ between the instances of one class."""

    value: Any


@dataclass
class LayerT:
    name: str
    args: list  # LayerArg: a value may hold Slots and terms

    def sig(self):
        return ("layer", self.name, tuple((a.name, a.how, _sig(a.value)) for a in self.args))


class LayerArg(NamedTuple):
    """One constructor argument of a layer, as the spec writes it: ``how`` is "pos" (positional), "kw" (a keyword,
    left out at its ``default``) or "infer" (``_``)."""

    name: str
    value: Any
    how: str
    default: Any = REQUIRED


@dataclass
class ContainerT:
    kind: str  # Sequential, ModuleList, ModuleDict
    items: list  # (key, term)

    def sig(self):
        return ("container", self.kind, tuple((k, t.sig()) for k, t in self.items))


@dataclass
class BlockT:
    block: "BlockDef"
    args: list  # (param, value or Slot), every param of the block

    def sig(self):
        return ("block", id(self.block), tuple((n, _sig(v)) for n, v in self.args))


@dataclass
class HeldT:
    """A child of the body held again by a container: ``Sequential(flatten, layer1, ReLU())``."""

    name: str

    def sig(self):
        return ("held", self.name)


@dataclass
class TodoT:
    what: str

    def sig(self):
        return ("todo", self.what)


def _sig(v):
    if isinstance(v, Slot):
        return ("slot", type(v.value).__name__)
    if isinstance(v, (LayerT, ContainerT, BlockT, TodoT, HeldT)):
        return v.sig()
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(_sig(x) for x in v))
    return ("value", repr(v))


def _slots(v, key: str, out: list):
    """Each Slot inside ``v``, with a key that names where it stands, in a fixed order."""
    if isinstance(v, Slot):
        out.append((key, v))
    elif isinstance(v, LayerT):
        for a in v.args:
            _slots(a.value, f"{key}.{a.name}", out)
    elif isinstance(v, ContainerT):
        for k, t in v.items:
            _slots(t, f"{key}[{k}]", out)
    elif isinstance(v, BlockT):
        for n, x in v.args:
            _slots(x, f"{key}.{n}", out)
    elif isinstance(v, (tuple, list)):
        for i, x in enumerate(v):
            _slots(x, f"{key}.{i}", out)
    return out


def slotted(v):
    """Numbers and flags become Slots, inside tuples too: ``(3, 3)`` has two."""
    if v is None:
        return v
    if isinstance(v, (int, float)):
        return Slot(v)
    if isinstance(v, tuple):
        return tuple(slotted(x) for x in v)
    if isinstance(v, list):
        return [slotted(x) for x in v]
    return v


# ---------------------------------------------------------------- a block definition
@dataclass
class BlockDef:
    name: str
    cls: type
    instances: list  # _Info
    params: list = field(default_factory=list)  # (name, default or REQUIRED)
    values: dict = field(default_factory=dict)  # id(instance module) -> {param: value}
    text: str = ""


@dataclass
class _Info:
    module: nn.Module
    path: str
    where: str  # where the class is written: file.py:LINE
    calls: list = field(default_factory=list)  # the input shapes of each call
    given: dict = field(default_factory=dict)  # forward's arguments at the first call: TENSOR, or the value
    again: bool = False  # called again with other values than at the first call
    kind: str = ""  # layer, container, block, todo


def _where_class(cls) -> str:
    try:
        file = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
        return f"{_short(file)}:{line}"
    except (OSError, TypeError):
        return f"{cls.__module__}.{cls.__qualname__}"


def _where_set(cls, attr: str, in_forward: bool = False) -> str:
    """The line that sets ``self.attr`` in ``cls`` or a class it inherits from (in its forward alone, with
    ``in_forward``), or where the class is written."""
    name = re.escape(attr)
    pattern = re.compile(rf"self\.{name}\s*(//|[-+*/@%])?=(?!=)|(add_module|register_buffer|register_parameter)"
                         rf"\(\s*['\"]{name}['\"]")
    for klass in cls.__mro__:
        if klass.__module__.startswith("torch.") or klass is object:
            continue
        try:
            lines, first = inspect.getsourcelines(klass.forward if in_forward else klass)
            file = inspect.getsourcefile(klass)
        except (OSError, TypeError):
            continue
        for k, line in enumerate(lines):
            if pattern.search(line):
                return f"{_short(file)}:{first + k}"
    return _where_class(cls)


def _short(file: str | None) -> str:
    import os

    if not file:
        return "<unknown>"
    try:
        rel = os.path.relpath(file)
        return rel if not rel.startswith("..") else file
    except ValueError:
        return file


# ---------------------------------------------------------------- forward: source names
class _Source:
    """The Python source of a class's forward, and of the methods it calls (torchvision's ``_forward_impl``):
    which statement each line is part of, what it assigns, and which loop it is in."""

    SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)

    def __init__(self, cls):
        self.stmts: dict[tuple[str, int], ast.stmt] = {}
        self.loops: dict[tuple[str, int], ast.For] = {}
        if cls is None:
            return
        for klass in cls.__mro__:
            if klass.__module__.startswith("torch.") or klass is object:
                continue
            for fn in vars(klass).values():
                if inspect.isfunction(fn):
                    self._read(fn)

    def _read(self, fn):
        try:
            lines, first = inspect.getsourcelines(fn)
            file = inspect.getsourcefile(fn)
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except (OSError, TypeError, SyntaxError, IndentationError):
            return
        offset = first - 1
        starts = Counter(n.lineno for n in ast.walk(tree) if isinstance(n, self.SIMPLE))
        for node in ast.walk(tree):
            if isinstance(node, self.SIMPLE) and starts[node.lineno] == 1:  # one statement a line: known which
                for line in range(node.lineno, node.end_lineno + 1):
                    self.stmts.setdefault((file, line + offset), node)
            if isinstance(node, ast.For):
                for line in range(node.body[0].lineno, node.end_lineno + 1):
                    self.loops[(file, line + offset)] = node

    def line_of(self, node: fx.Node) -> tuple[str, int] | None:
        """The innermost line of the class's own code that made ``node``."""
        trace = node.stack_trace or node.meta.get("stack_trace") or ""
        found = None
        for m in re.finditer(r'File "([^"]+)", line (\d+)', trace):
            key = (m.group(1), int(m.group(2)))
            if key in self.stmts or key in self.loops:
                found = key
        return found

    def where(self, node: fx.Node) -> str:
        at = self.line_of(node)
        if at is not None:
            return f"{_short(at[0])}:{at[1]}"
        frames = [f for f in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
                  if "/torch/" not in f[0] and "modelspec" not in f[0]]
        return f"{_short(frames[-1][0])}:{frames[-1][1]}" if frames else ""


def _targets(stmt) -> list[str] | None:
    """The names a statement assigns: ["out"], ["q", "k", "v"]; None where it is no plain name."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        t = stmt.targets[0]
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        t = stmt.target
    else:
        return None
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name) for e in t.elts):
        return [e.id for e in t.elts]
    return None


# ---------------------------------------------------------------- tracing
class _Tracer(fx.Tracer):
    """Every child is a leaf: a block's graph calls its children, and each child class is read on its own."""

    def __init__(self):
        super().__init__(autowrap_modules=(math,))
        self.record_stack_traces = True
        self.trace_asserts = True
        self.proxy_buffer_attributes = True  # self.mask[:, :T]: a buffer is read as the graph's, sliced by sizes

    def is_leaf_module(self, m, qualname):
        return True

    def proxy(self, node):
        return _Proxy(node, self)

    def to_bool(self, obj):
        """A tensor's truth is known only when it runs, but an ``assert`` on it is a check, not control flow: it is
        recorded (and left out of the spec, with a note), as torch.fx does before Python 3.11."""
        import dis

        frame = inspect.currentframe().f_back.f_back  # to_bool <- Proxy.__bool__ <- forward
        insts = list(dis.get_instructions(frame.f_code))
        at = next((i for i, inst in enumerate(insts) if inst.offset == frame.f_lasti), None)
        if at is not None and insts[at].opname in ("TO_BOOL", "COMPARE_OP") and at + 1 < len(insts):
            at += 1  # Python 3.13 converts to bool first, then jumps
        if at is not None and "JUMP" in insts[at].opname and "IF_TRUE" in insts[at].opname \
                and at + 1 < len(insts) and insts[at + 1].opname == "LOAD_ASSERTION_ERROR":
            self.create_proxy("call_function", torch._assert, (obj, "assert"), {})
            return True
        return super().to_bool(obj)

    def iter(self, obj):
        """A chunk's pieces may be iterated (``list(x.chunk(2, 1))``): their number is its argument."""
        n = _chunks(obj.node)
        if n is None:
            return super().iter(obj)
        return iter([obj[i] for i in range(n)])


class _Proxy(fx.Proxy):
    def __len__(self):
        n = _chunks(self.node)
        if n is None:
            return super().__len__()
        return n


def _chunks(node) -> int | None:
    if (node.op == "call_method" and node.target == "chunk") or (node.op == "call_function"
                                                                   and node.target is torch.chunk):
        n = node.args[1] if len(node.args) > 1 else node.kwargs.get("chunks")
        if isinstance(n, int) and not isinstance(n, bool):
            return n
    return None


def _trace_error_where(exc: BaseException) -> str:
    """The line of the user's code (forward, or a method it calls) that was running when tracing failed."""
    import os

    ours = os.path.dirname(os.path.abspath(__file__))
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if f"{os.sep}torch{os.sep}" not in file and not os.path.abspath(file).startswith(ours):
            where = f"{_short(file)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _source_line(where: str) -> str:
    import linecache

    file, _, line = where.rpartition(":")
    if not line.isdigit():
        return ""
    import os

    for candidate in (file, os.path.abspath(file)):
        text = linecache.getline(candidate, int(line)).strip()
        if text:
            return text
    return ""


# torch's functions that make a tensor from sizes alone: torch.fx sees no tensor in ``torch.ones(T, T)`` and calls
# it with its proxies, which fails; while tracing, each records itself where a size is a proxy
CREATORS = ("zeros", "ones", "empty", "full", "arange", "randn", "rand", "randint", "eye", "tensor")


@contextlib.contextmanager
def _creators_traced(tracer):
    originals = {n: vars(torch)[n] for n in CREATORS if n in vars(torch)}

    def wrapped(fn):
        def call(*args, **kwargs):
            if arg_nodes_of((args, kwargs)) or any(isinstance(a, fx.Proxy) for a in _leaves((args, kwargs))):
                return tracer.create_proxy("call_function", fn, args, kwargs)
            return fn(*args, **kwargs)

        return call

    try:
        for n, fn in originals.items():
            setattr(torch, n, wrapped(fn))
        yield
    finally:
        for n, fn in originals.items():
            setattr(torch, n, fn)


def _leaves(value):
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def trace(m: nn.Module, concrete: dict) -> fx.Graph:
    tracer = _Tracer()
    try:
        with _creators_traced(tracer):
            return tracer.trace(m, concrete_args=concrete or None)
    except Exception as exc:  # what fx cannot follow, said with the user's line
        where = _trace_error_where(exc)
        text = _source_line(where)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, fx.proxy.TraceError) or "symbolically traced variables" in message:
            if re.search(r"\.shape\b|\.size\(|\.dim\(|\bndim\b|\blen\(", text):
                message = (f"forward's control flow depends on a size (`{text}`), which torch.fx does not know while "
                           "it traces")
                hint = "make the condition a constructor argument, so that each instance takes one branch"
            else:
                message = ("forward's control flow depends on a tensor's values" + (f" (`{text}`)" if text else "")
                           + ", which a spec cannot say: its conditions are decided when the spec is compiled")
                hint = "choose per element with torch.where(cond, a, b)"
        else:
            message = f"torch.fx cannot trace {type(m).__name__}.forward" + (f" at `{text}`" if text else "") + \
                      f": {message}"
            hint = "a spec's forward is what torch.fx can follow: no Python on a tensor's values"
        raise FromTorchError([Problem(where or _where_class(type(m)), message, hint)]) from None


# ---------------------------------------------------------------- a graph, pruned and compared
_ASSERTS = {torch._assert, fx._symbolic_trace._assert_is_none}
BINARY = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.floordiv: "//",
          operator.mod: "%", operator.pow: "**", operator.matmul: "@", operator.lt: "<", operator.le: "<=",
          operator.gt: ">", operator.ge: ">=", operator.eq: "==", operator.ne: "!=", operator.and_: "&",
          operator.or_: "|", operator.xor: "^"}
UNARY = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}
COMPARISONS = {"<", "<=", ">", ">=", "==", "!=", "is", "is not"}
PRECEDENCE = {**BIN_PREC, **{op: PREC_COMPARE for op in COMPARISONS}}
ATOM, UNARY_PREC = PREC_PRIMARY, PREC_FACTOR


def _functions() -> dict:
    """torch's callables as a spec spells them: {F.relu: "F.relu", torch.cat: "torch.cat", ...}."""
    out = {}
    for name, op in OPS.items():
        spaces = ([op.function] if op.function else []) + [ns for ns, _ in op.also]
        for ns in spaces:
            fn = attribute(F if ns == "F" else torch, name)
            if fn is not None and fn not in out:
                out[fn] = f"{ns}.{name}"
    return out


FUNCTIONS = _functions()


def _public_name(fn) -> str:
    """How torch's documentation names a function: torch.fft.fft, not torch._C._fft.fft_fft."""
    for space, prefix in ((torch, "torch"), (F, "F"), (torch.fft, "torch.fft"), (torch.linalg, "torch.linalg"),
                          (torch.special, "torch.special"), (operator, "operator"), (math, "math")):
        for n, v in vars(space).items():
            if v is fn and not n.startswith("_"):
                return f"{prefix}.{n}"
    module = getattr(fn, "__module__", "") or ""
    return (module + "." if module else "") + getattr(fn, "__qualname__", repr(fn))


def _defaults_unknown(fn) -> dict:
    """The keyword arguments of torch's ``fn`` that the spec's op does not take, with their defaults: given
    at their default (F.softmax's ``_stacklevel=3, dtype=None``), they say nothing and are left out."""
    from .ops import op_params

    name = FUNCTIONS[fn]
    ns, _, op = name.rpartition(".")
    known = {n.lstrip("*") for n, _ in op_params(OPS[op], ns=ns)}
    from .shapes import Val

    at_default = {n: d.value for n, d in op_params(OPS[op], ns=ns) if isinstance(d, Val)}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return at_default
    return {**{n: p.default for n, p in params.items() if n not in known and p.default is not p.empty},
            **at_default}


def _at(v, default) -> bool:
    """Whether an argument is given at ``default`` (a number shown as its literal, not a choice by training)."""
    if isinstance(v, _Num):
        if v.text != literal(v.value):
            return False
        v = v.value
    return type(v) is type(default) and v == default


METHODS = {name for name, op in OPS.items() if op.method}


def prune(graph: fx.Graph, tensor_args: set[str]) -> list[str]:
    """Drop what a spec has no use for: asserts (returned, as lines to note), the arguments fixed while tracing,
    and what nothing uses."""
    dropped = []
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in _ASSERTS:
            if node.target is torch._assert and not _is_specialization(node):
                dropped.append(node)
            graph.erase_node(node)
    for node in list(graph.nodes):
        if node.op == "placeholder" and node.target not in tensor_args:
            _erase_with_users(graph, node)
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph.nodes)):
            if node.op in ("call_function", "call_method", "get_attr", "call_module") and not node.users \
                    and not _effects(node):
                graph.erase_node(node)
                changed = True
    return dropped


def _is_specialization(node) -> bool:
    return len(node.args) > 1 and isinstance(node.args[1], str) and "has been specialized" in node.args[1]


def _erase_with_users(graph, node):
    for user in list(node.users):
        _erase_with_users(graph, user)
    graph.erase_node(node)


PURE_METHODS = {"size", "dim", "numel", "contiguous", "view", "reshape", "flatten", "transpose", "permute",
                "squeeze", "unsqueeze", "t", "float", "long", "bool", "to", "type_as", "expand", "expand_as"}


def _effects(node) -> bool:
    """A call whose result nothing reads, kept for what else it does: a module (BatchNorm's running statistics,
    Dropout's random numbers), an in-place method or ``inplace=True``, anything random. Only sizes, views and
    Python's operators go when unused."""
    if node.op == "call_module":
        return True
    if node.op == "call_method":
        return node.target not in PURE_METHODS
    if node.op == "call_function":
        return not (node.target in BINARY or node.target in UNARY or node.target in (operator.getitem,
                                                                                     builtins.getattr))
    return False


def _walk_args(value, fn):
    """``value`` with each node and constant replaced by ``fn(x)``, structure kept."""
    if isinstance(value, fx.Node):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_walk_args(v, fn) for v in value)
    if isinstance(value, list):
        return [_walk_args(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _walk_args(v, fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_walk_args(value.start, fn), _walk_args(value.stop, fn), _walk_args(value.step, fn))
    return fn(value)


def arg_nodes_of(value) -> list:
    """The nodes inside an argument value (a list of them, a slice, ...)."""
    out = []
    _walk_args(value, lambda v: out.append(v) if isinstance(v, fx.Node) else v)
    return out


def arg_nodes(node) -> list:
    """The nodes a call reads, in the order Python evaluates them."""
    out = []

    def take(v):
        if isinstance(v, fx.Node):
            out.append(v)
        return v

    _walk_args((node.args, node.kwargs), take)
    return out


def canonical(graph: fx.Graph, absent: frozenset = frozenset()):
    """The graph's structure (nodes as positions, numbers as slot marks) and its numbers, keyed by node name.

    A call of an ``absent`` child is the identity: its input stands for its result, as a spec's absent
    conditional child does."""
    index, stands = {}, {}
    structure, numbers = [], []
    for node in graph.nodes:
        if node.op == "call_module" and node.target.split(".")[0] in absent and len(node.args) == 1 \
                and isinstance(node.args[0], fx.Node) and not node.kwargs:
            stands[node] = stands.get(node.args[0], node.args[0])
            continue
        position = [0]

        def mark(v, node=node, position=position):
            if isinstance(v, fx.Node):
                v = stands.get(v, v)
                return ("ref", index.get(v, v.name))
            if isinstance(v, (int, float)):
                numbers.append((f"{node.name}.{position[0]}", v))
                position[0] += 1
                return ("bool",) if isinstance(v, bool) else ("num",)
            if isinstance(v, torch.dtype):
                return ("dtype", str(v))
            return ("value", repr(v))

        target = node.target if isinstance(node.target, str) else getattr(node.target, "__qualname__", repr(
            node.target)) + "@" + str(getattr(node.target, "__module__", ""))
        structure.append((node.op, target, _walk_args((node.args, node.kwargs), mark)))
        index[node] = len(index)
    return tuple(map(repr, structure)), numbers


# ---------------------------------------------------------------- a graph written as statements
class ForwardWriter:
    """One traced forward as a spec's statements.

    ``arrange(module, node)`` gives a block's call as the spec writes it (its tensors by position); ``taken``
    are the names of the body (children, params, buffers, block parameters), which no variable may take.
    """

    def __init__(self, graph: fx.Graph, module: nn.Module, source: _Source, arrange, taken: set[str],
                 problems: list):
        self.graph, self.module, self.source, self.arrange = graph, module, source, arrange
        self.taken, self.problems = taken, problems
        self.lines: list[str] = []
        self.names: dict[fx.Node, str] = {}
        self.exprs: dict[fx.Node, tuple[str, int]] = {}
        self.pending: list[fx.Node] = []
        self.holders: dict[str, fx.Node] = {}
        self.order = {n: i for i, n in enumerate(graph.nodes)}
        self.done: set = set()
        self.args: list[str] = []
        self.returns: list[str] = []  # the texts of what forward returns

    # ---- names
    def _last_use(self, node) -> int:
        return max((self.order[u] for u in node.users), default=self.order[node])

    def _free(self, name: str, node) -> bool:
        from .names import GENERATED, name_problem

        if not is_name(name) or name in RESERVED or name in self.taken or name in GENERATED \
                or name.startswith("__") or name_problem(name, "a value") is not None:
            return False
        holder = self.holders.get(name)
        return holder is None or holder is node or self._last_use(holder) <= self.order[node]

    def _name(self, node, wanted: str | None = None) -> str:
        for candidate in ([wanted] if wanted else []) + [node.name]:
            if candidate and self._free(candidate, node):
                break
        else:
            base, k = node.name, 1
            while not self._free(f"{base}_{k}", node):
                k += 1
            candidate = f"{base}_{k}"
        self.holders[candidate] = node
        self.names[node] = candidate
        return candidate

    # ---- expressions
    def text(self, v, prec: int = 0) -> str:
        if isinstance(v, fx.Node):
            if v in self.names:
                return self.names[v]
            text, p = self.exprs[v]
            return f"({text})" if p < prec else text
        if isinstance(v, tuple):
            items = [self.text(x) for x in v]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(v, list):
            return "[" + ", ".join(self.text(x) for x in v) + "]"
        if isinstance(v, _Num):
            return v.text
        return literal(v)

    def _index(self, v) -> str:
        items = v if isinstance(v, tuple) else (v,)
        parts = []
        for x in items:
            if isinstance(x, slice):
                s = [("" if p is None else self.text(p)) for p in (x.start, x.stop, x.step)]
                parts.append(":".join(s[:2]) + (f":{s[2]}" if x.step is not None else ""))
            else:
                parts.append(self.text(x))
        return ", ".join(parts) if parts else "()"

    def call_args(self, node, skip: int = 0, drop: dict | None = None) -> str:
        parts = [self.text(a) for a in node.args[skip:]]
        parts += [f"{k}={self.text(v)}" for k, v in node.kwargs.items()
                  if not (drop and k in drop and _at(v, drop[k]))]
        return ", ".join(parts)

    def todo(self, node, what: str, hint: str) -> tuple[str, int]:
        where = self.source.where(node)
        self.problems.append(Problem(where, what, hint))
        inputs = ", ".join(self.text(a) for a in arg_nodes(node))
        return f"TODO({literal(f'{where}: {what}')}" + (f", {inputs}" if inputs else "") + ")", ATOM

    def module_path(self, target: str) -> str | None:
        """``layer1.0.conv1`` as forward reaches it: layer1[0].conv1; None for a name forward cannot say."""
        return _path_text(self.module, target) if speakable(target.split(".")[0]) else None

    def expression(self, node) -> tuple[str, int]:
        op, target = node.op, node.target
        if op == "call_module":
            path = self.module_path(target)
            if path is None:
                return self.todo(node, f"calls the child '{target}', whose name forward cannot write (a word of "
                                 "the spec, or no identifier)", "rename the child in the Python class")
            arranged = self.arrange(self.module.get_submodule(target), node, self.source.where(node))
            if arranged is not None:
                return f"{path}({', '.join(self.text(a) for a in arranged)})", ATOM
            return f"{path}({self.call_args(node)})", ATOM
        if op == "get_attr":
            path = self.module_path(target)
            owner, _, attr = target.rpartition(".")
            holder = self.module.get_submodule(owner) if owner else self.module
            if path is None:
                return self.todo(node, f"reads '{target}', which a spec cannot name", "declare each parameter in "
                                 "the body: param w: [4, 2] = randn")
            if not (attr in holder._parameters or attr in holder._buffers
                    or isinstance(vars(holder).get(attr), torch.Tensor)):
                return self.todo(node, f"reads the tensor attribute '{target}', which is neither a parameter nor "
                                 "a buffer", "register it: nn.Parameter(...) or self.register_buffer(...)")
            return path, ATOM
        if op == "call_method":
            if target in METHODS:
                return f"{self.text(node.args[0], ATOM)}.{target}({self.call_args(node, 1)})", ATOM
            return self.todo(node, f"calls the tensor method .{target}(), which has no spec form",
                             "write it with the tensor operations in docs/language.md")
        if op == "call_function":
            if target in BINARY:
                sym = BINARY[target]
                p = PRECEDENCE[sym]
                left, right = node.args
                if sym == "**":
                    return f"{self.text(left, p + 1)} ** {self.text(right, p)}", p
                if sym in COMPARISONS:  # a comparison of comparisons is no chain: both sides in parentheses
                    return f"{self.text(left, p + 1)} {sym} {self.text(right, p + 1)}", p
                return f"{self.text(left, p)} {sym} {self.text(right, p + 1)}", p
            if target in UNARY:
                return f"{UNARY[target]}{self.text(node.args[0], UNARY_PREC)}", UNARY_PREC
            if target is operator.getitem:
                return f"{self.text(node.args[0], ATOM)}[{self._index(node.args[1])}]", ATOM
            if target is builtins.getattr:
                return f"{self.text(node.args[0], ATOM)}.{node.args[1]}", ATOM
            if target in FUNCTIONS:
                drop = _defaults_unknown(target)
                if OPS[FUNCTIONS[target].rpartition(".")[2]].training_arg:  # the spec passes training itself
                    training = node.kwargs.get("training", node.args[2] if len(node.args) > 2 else None)
                    if isinstance(training, _Num) and training.text == "training":
                        node.args, node.kwargs = node.args[:2], {k: v for k, v in node.kwargs.items()
                                                                  if k != "training"}
                return f"{FUNCTIONS[target]}({self.call_args(node, drop=drop)})", ATOM
            name = _public_name(target)
            return self.todo(node, f"calls {name}, which has no spec form",
                             "write it with the tensor operations in docs/language.md, or as a layer of the catalog")
        raise AssertionError(op)

    # ---- statements
    def _statement_of(self, node):
        line = self.source.line_of(node)
        return None if line is None else self.source.stmts.get(line)

    def _value_of_statement(self, node, nodes, i) -> ast.stmt | None:
        """The statement ``node`` is the value of: the last node of a run of one assignment."""
        stmt = self._statement_of(node)
        if stmt is None or _targets(stmt) is None:
            return None
        for later in nodes[i + 1:]:
            if later.op in ("placeholder",):
                continue
            unpacking = len(_targets(stmt)) > 1 and later.op == "call_function" \
                and later.target is operator.getitem and later.args[0] is node
            if self._statement_of(later) is stmt and not unpacking:
                return None
            break
        return stmt

    def flush(self):
        for p in self.pending:
            self.lines.append(f"{self._name(p)} = {self.exprs[p][0]}")
            self.exprs[p] = (self.names[p], ATOM)
        self.pending.clear()

    def reads(self, node) -> list:
        """The nodes a node's spec text reads, in the order it reads them: a block's call reads its tensors in
        forward's order, which is not always the call's (``pair(y=a(x), x=b(x))``)."""
        if node.op == "call_module":
            arranged = self.arrange(self.module.get_submodule(node.target), node, self.source.where(node))
            if arranged is not None:
                return [a for a in arranged if isinstance(a, fx.Node)]
        return arg_nodes(node)

    def chains(self) -> dict:
        """Runs ``P.0(x) -> P.1 -> ... -> P.{n-1}`` over a whole ModuleList, each output read only by the next:
        {last node: (first node, P)}, written as ``for layer in P { x = layer(x) }``."""
        out = {}
        nodes = list(self.graph.nodes)
        for i, node in enumerate(nodes):
            if node.op != "call_module" or not node.target.endswith(".0") or len(node.args) != 1 or node.kwargs:
                continue
            owner = node.target[:-2]
            try:
                holder = self.module.get_submodule(owner)
            except AttributeError:
                continue
            if type(holder) is not nn.ModuleList or len(holder) < 2 or self.module_path(owner) is None:
                continue
            run = nodes[i:i + len(holder)]
            if len(run) == len(holder) and all(
                    n.op == "call_module" and n.target == f"{owner}.{k}" and not n.kwargs and n.args == (prev,)
                    and len(prev.users) == 1 for k, (prev, n) in enumerate(zip(run, run[1:]), start=1)):
                out[run[-1]] = (node, owner)
                self.done.update(run[:-1])
        return out

    def loop(self, first, owner, last, nodes, i):
        """``x = ...; for layer in P { x = layer(x) }`` for a chain of calls over the ModuleList ``P``."""
        source = first.args[0]
        stmt = self._value_of_statement(last, nodes, i)
        targets = _targets(stmt) if stmt is not None else None
        loop = self.source.loops.get(self.source.line_of(first))
        var = loop.target.id if loop is not None and isinstance(loop.target, ast.Name) else "layer"
        if not self._free(var, last) or var == (targets or [None])[0]:
            var = "layer" if self._free("layer", last) else "layer_"
        self.flush()
        start = self.text(source)
        name = self._name(last, targets[0] if targets and len(targets) == 1 else
                          (start if source.op == "placeholder" or source in self.names else None))
        if name != start:
            self.lines.append(f"{name} = {start}")
        self.lines.append(f"for {var} in {self.module_path(owner)} {{\n    {name} = {var}({name})\n}}")
        self.exprs[last] = (name, ATOM)

    def write(self) -> list[str]:
        nodes = list(self.graph.nodes)
        chains = self.chains()
        for i, node in enumerate(nodes):
            if node in self.done:
                continue
            if node in chains:
                self.loop(*chains[node], node, nodes, i)
                continue
            if node.op == "placeholder":
                self.args.append(self._name(node, node.target))
                continue
            reads = self.reads(node)
            waiting = [a for a in reads if a in self.pending]
            # what this node reads of the pending expressions is inlined if it is their last, in their order
            while waiting and self.pending and self.pending[-1] is waiting[-1] and reads.count(waiting[-1]) == 1:
                self.pending.pop()
                waiting.pop()
            if waiting:
                self.flush()
            if node.op == "output":
                value = node.args[0]
                if not isinstance(value, (fx.Node, tuple)):
                    kind = "dict" if isinstance(value, dict) else "list" if isinstance(value, list) else \
                        type(value).__name__
                    _fail(_where_class(type(self.module)), f"{type(self.module).__name__}.forward returns a {kind}, "
                          "and a spec's forward returns tensors (or tuples of them)",
                          "return the values as a tuple: return logits, features")
                self.returns = [self.text(v) for v in value] if isinstance(value, tuple) else [self.text(value)]
                self.lines.append("return " + ", ".join(self.returns))
                continue
            try:
                self.exprs[node] = self.expression(node)
            except ValueError as exc:  # a constant with no spec form (a set, an object of the user's)
                self.exprs[node] = self.todo(node, f"uses a value with no spec form ({exc})",
                                             "give the value as a number, string, tuple or list")
            stmt = self._value_of_statement(node, nodes, i)
            targets = _targets(stmt) if stmt is not None else None
            unpack = self._unpacked(node, targets)
            if unpack is not None:
                self.flush()
                names = []
                for k, item in enumerate(unpack):
                    if item is None:
                        names.append(targets[k] if self._free(targets[k], node) else "_")
                        continue
                    names.append(self._name(item, targets[k]))
                    self.done.add(item)
                self.lines.append(", ".join(names) + ("," if len(names) == 1 else "") + f" = {self.exprs[node][0]}")
                continue
            if node.op == "get_attr":  # a parameter's name is as short as any variable's
                continue
            named = targets is not None and len(targets) == 1 and self._free(targets[0], node)
            if named or len(node.users) != 1:
                self.flush()
                wanted = targets[0] if named else None
                self.lines.append(f"{self._name(node, wanted)} = {self.exprs[node][0]}")
                self.exprs[node] = (self.names[node], ATOM)
            else:
                self.pending.append(node)
        return self.lines

    def _unpacked(self, node, targets):
        """The getitem nodes of ``a, b, c = node`` (None for a target nothing reads), when the source says so."""
        if targets is None or len(targets) < 2:
            return None
        items = [None] * len(targets)
        for user in node.users:
            k = getattr(user.args[1], "value", user.args[1]) if len(user.args) > 1 else None
            if not (user.op == "call_function" and user.target is operator.getitem and isinstance(k, int)
                    and not isinstance(k, bool) and 0 <= k < len(targets) and items[k] is None):
                return None
            items[k] = user
        return items


@dataclass
class _Num:
    """A number in forward, as its text: a literal, a block parameter, or ``a if training else b``."""

    text: str
    value: Any = None


def set_numbers(graph: fx.Graph, texts: dict[str, str]):
    """Put the text of each number (keyed as `canonical` keys them) in the graph's arguments."""
    for node in graph.nodes:
        position = [0]

        def put(v, node=node, position=position):
            if isinstance(v, (int, float)):
                key = f"{node.name}.{position[0]}"
                position[0] += 1
                return _Num(texts.get(key, literal(v)), v)
            return v

        node.args, node.kwargs = _walk_args((node.args, node.kwargs), put)


# ---------------------------------------------------------------- the converter
@dataclass
class _Body:
    """One block instance as read: its children's terms, params, buffers and traced forward."""

    info: _Info
    children: dict  # name -> term
    params: dict  # name -> (shape, init)
    buffers: dict  # name -> (shape, init)
    graphs: tuple | None  # (training, eval) graphs, None without a forward of its own
    source: _Source | None
    notes: list  # lines to say above forward
    plain: dict = field(default_factory=dict)  # name -> (shape, init): tensors neither parameter nor buffer
    ties: list = field(default_factory=list)  # (target, value): parameter paths shared
    dropped: frozenset = frozenset()  # children that do nothing here (Identity) and something elsewhere: absent

    def key(self, absent=frozenset()):
        children = tuple((n, t.sig()) for n, t in self.children.items() if n not in absent)
        params = tuple((n, _sig(s), i) for n, (s, i) in self.params.items())
        buffers = tuple((n, _sig(s), i) for n, (s, i) in self.buffers.items())
        buffers += tuple((n, _sig(s), i) for n, (s, i) in self.plain.items()) + tuple(self.ties)
        fwd = None if self.graphs is None else tuple(canonical(g, absent | self.dropped)[0] for g in self.graphs)
        return children, params, buffers, fwd

    def numbers(self, absent=frozenset(), keys_from=None):
        """Every number of the body, keyed: children's arguments, shapes, and forward's (a training/eval pair)."""
        out = {}
        for name, term in self.children.items():
            for key, slot in _slots(term, f"child:{name}", []):
                out[key] = slot.value
        for kind, table in (("param", self.params), ("buffer", self.buffers), ("plain", self.plain)):
            for name, (shape, _) in table.items():
                for key, slot in _slots(shape, f"{kind}:{name}", []):
                    out[key] = slot.value
        if self.graphs is not None:
            (ts, train), (es, evaluated) = (canonical(g, self.dropped) for g in self.graphs)
            tkeys, ekeys = ([k for k, _ in c[1]] for c in keys_from) if keys_from else \
                ([k for k, _ in train], [k for k, _ in evaluated])
            if ts == es:
                for k, (_, tv), (_, ev) in zip(tkeys, train, evaluated):
                    out["fwd:" + k] = tv if tv == ev and type(tv) is type(ev) else _Modes(tv, ev)
            else:  # forward takes another path in eval: each is written, in `if training`
                out.update({"fwd:t:" + k: v for k, (_, v) in zip(tkeys, train)})
                out.update({"fwd:e:" + k: v for k, (_, v) in zip(ekeys, evaluated)})
        return out

    def modal(self) -> bool:
        """Whether forward takes another path in training than in eval."""
        return self.graphs is not None and canonical(self.graphs[0])[0] != canonical(self.graphs[1])[0]


@dataclass(frozen=True)
class _Modes:
    train: Any
    eval: Any

    def text(self) -> str:
        if self.train is True and self.eval is False:
            return "training"
        if self.train is False and self.eval is True:
            return "(not training)"
        return f"({literal(self.train)} if training else {literal(self.eval)})"


def _init_of(t: torch.Tensor, kind: str) -> str:
    if t.numel() and bool((t == 0).all()):
        return "zeros"
    if t.numel() and bool((t == 1).all()):
        return "ones"
    return "zeros" if kind == "buffer" else "randn"  # a buffer's values come with the state_dict


class Converter:
    def __init__(self, root: nn.Module, inputs, *, name: str | None = None):
        self.root = root
        self.name = name or type(root).__name__
        if name is None and (self.name in CATALOG or type(root) in CONTAINERS or not is_name(self.name)):
            self.name = "Net"  # an nn.Sequential made by a factory: the model needs a name of its own
        problem = name_problem(self.name, "a model") if is_name(self.name) else ("no identifier", "")
        if problem is None and self.name in _KEYWORDS:
            problem = ("it is a word of the spec", "")
        elif problem is None and self.name in CATALOG:
            problem = ("it is the name of a layer", "")
        if problem is not None or self.name in RESERVED:
            _fail("--name", f"{self.name!r} cannot name the model" + (f": {problem[0]}" if problem else ""),
                  "give it a name of its own: --name Net")
        self.problems: list[Problem] = []
        self.infos: dict[int, _Info] = {}
        self.defs: list[BlockDef] = []
        self.def_of: dict[int, BlockDef] = {}
        self.decls, self.examples, self.others = parse_inputs(inputs, self.name)
        self.root_args: list[str] | None = None  # the model forward's own names for its inputs
        self.origins: dict[int, str] = {}  # a block parameter, while it has no name -> where it first stands
        self.held_twice: dict[int, str] = {}  # a module held in two places -> its first path
        self.ties: dict[str, list] = {}  # a body's path -> the parameters it ties, (target, value)

    # ---- reading the module
    def info(self, m) -> _Info:
        return self.infos[id(m)]

    def walk(self):
        seen = {}
        for path, m in self.root.named_modules(remove_duplicate=False):
            if id(m) in seen:
                self.held_twice[id(m)] = seen[id(m)]
                continue
            seen[id(m)] = path
            info = _Info(m, path, _where_class(type(m)))
            if type(m) in CONTAINERS:
                info.kind = "container"
            elif catalog_name(m):
                info.kind = "layer"
            elif type(m).__module__.startswith("torch.") and not isinstance(m, CONTAINERS):
                info.kind = "todo"
            else:
                info.kind = "block"
            self.infos[id(m)] = info

    def record(self):
        """Run the module once on example inputs, in eval (nothing it keeps changes), noting each call's input."""
        hooks, modes = [], {id(m): m.training for m in self.root.modules()}

        def hook(m, args, kwargs):
            info = self.infos[id(m)]
            info.calls.append(tuple(tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args))
            try:  # what forward was given, by name: a tensor, or a value it is traced with
                bound = inspect.signature(m.forward).bind(*args, **kwargs).arguments
            except (TypeError, ValueError):
                bound = {}
            given = {k: TENSOR if isinstance(v, torch.Tensor) else v for k, v in bound.items()}
            if len(info.calls) == 1:
                info.given = given
            elif given.keys() != info.given.keys() or any(
                    not (a is b or (type(a) is type(b) and _plain_equal(a, b)))
                    for a, b in zip(given.values(), info.given.values())):
                info.again = True

        for m in self.root.modules():
            hooks.append(m.register_forward_pre_hook(hook, with_kwargs=True))
        try:
            self.root.eval()
            with torch.no_grad():
                self.root(*self.examples)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise FromTorchError([Problem(_trace_error_where(exc) or self.info(self.root).where,
                                          f"{self.name} does not run on the inputs {self.shown_inputs()}: "
                                          f"{type(exc).__name__}: {first}", "declare the inputs forward takes, "
                                          "their count and shapes, as a model declares them")]) from None
        finally:
            for h in hooks:
                h.remove()
            for m in self.root.modules():
                m.training = modes[id(m)]

    def tensor_args(self, m) -> list[str]:
        """forward's parameters that its calls give tensors: the others keep their defaults while tracing."""
        sig = inspect.signature(type(m).forward)
        names = [p.name for p in list(sig.parameters.values())[1:]
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if m is self.root:
            return names[:len(self.examples)]
        if not self.info(m).calls:
            return [n for n in names if sig.parameters[n].default is inspect.Parameter.empty]
        return [n for n in names if self.info(m).given.get(n) is TENSOR]

    def arrange(self, m, node, where: str = "") -> tuple | None:
        """A call of the block ``m`` as the spec writes it: its tensors by position, in forward's order, and the
        values it was traced with left out (they are fixed in the block)."""
        if self.infos.get(id(m)) is None or self.info(m).kind != "block":
            return None
        keep = self.tensor_args(m)
        names = list(inspect.signature(type(m).forward).parameters)[1:]
        given = {**dict(zip(names, node.args)), **node.kwargs}
        for n, v in given.items():
            if n not in keep and arg_nodes_of(v):
                _fail(where or self.info(m).path, f"forward gives '{self.info(m).path}' its argument {n}, computed "
                      "while it runs and not a tensor (a size such as x.size(0), or a list of tensors), and a "
                      "block's forward takes tensors alone", "let the block compute it from its input tensors "
                      "(x.size(0) in its own forward), or pass the tensors one by one")
        if any(n not in given for n in keep):
            return None
        return tuple(given[n] for n in keep)

    def traced(self, m):
        """forward's graphs in training and in eval, pruned, and what was dropped from them."""
        fn = type(m).forward
        if self.info(m).again:
            _fail(self.info(m).path, f"'{self.info(m).path}' is called twice with other values besides its tensors, "
                  "and a block's forward takes tensors alone", "make the values constructor arguments, or two modules")
        keep = self.tensor_args(m)
        sig = inspect.signature(fn)
        given = self.info(m).given
        concrete = {p.name: given[p.name] if p.name in given else p.default for p in list(sig.parameters.values())[1:]
                    if p.name not in keep and (p.name in given or p.default is not inspect.Parameter.empty)
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        graphs, notes, modes = [], [], {id(x): x.training for x in m.modules()}
        source = _Source(type(m))
        state = {id(x): (x, dict(x._parameters), dict(x._buffers), dict(vars(x))) for x in m.modules()}
        try:
            for mode in (True, False):
                m.train(mode)
                g = trace(m, concrete)
                self.unchanged(state)
                dropped = prune(g, set(keep))
                if mode:
                    notes = list(dict.fromkeys(f"# from-torch: the assert at {source.where(d)} is not kept"
                                               for d in dropped))
                graphs.append(g)
        finally:
            for x in m.modules():
                x.training = modes[id(x)]
        return tuple(graphs), source, notes

    def unchanged(self, state):
        """Tracing ran forward on proxies: where forward assigns a module's attribute (``self.count += 1``), it
        holds a proxy now. Each is put back, and refused: a spec's modules do not change as they run."""
        changed = []
        for x, params, buffers, attrs in state.values():
            for n in [n for n in x._buffers if x._buffers[n] is not buffers.get(n)] + \
                     [n for n in x._parameters if x._parameters[n] is not params.get(n)] + \
                     [n for n, v in vars(x).items() if n not in ("_parameters", "_buffers") and v is not attrs.get(n)
                      and isinstance(v, fx.Proxy)]:
                changed.append((x, n))
            x._parameters.update(params)
            x._buffers.update(buffers)
            for n, v in list(vars(x).items()):
                if isinstance(v, fx.Proxy):
                    if n in attrs:
                        vars(x)[n] = attrs[n]
                    else:
                        del vars(x)[n]
        if changed:
            x, n = changed[0]
            _fail(_where_set(type(x), n, in_forward=True), f"forward assigns self.{n} of {type(x).__name__}: the "
                  "module changes as it runs, which a spec's modules do not",
                  "compute the value in forward and return it, or keep the count outside the model")

    # ---- terms
    def term(self, m, held: dict | None = None, place: str = ""):
        info = self.info(m)
        if held and id(m) in held:
            return HeldT(held[id(m)])
        if id(m) in self.held_twice:
            if place != info.path:
                _fail(place, f"the module at '{place}' is the one at '{info.path}' again, which a spec writes only "
                      "as a child held again by a container of the body that declares it above",
                      "declare it in the same body, above the container, or give each place its own module")
        if info.kind == "container":
            return ContainerT(type(m).__name__, [(k, self.term(c, held, _join(place, k)))
                                                 for k, c in m._modules.items() if c is not None])
        if info.kind == "layer":
            return self.layer_term(m, catalog_name(m))
        if info.kind == "block":
            block = self.def_of[id(m)]
            return BlockT(block, [(p, Slot(block.values[id(m)][p])) for p, _ in block.params])
        from .layers import NOT_LAYERS

        cls = type(m)
        what = f"nn.{cls.__name__}" if attribute(nn, cls.__name__) is cls else f"{cls.__module__}.{cls.__qualname__}"
        owner, _, attr = (place or info.path).rpartition(".")
        where = _where_set(type(self.root.get_submodule(owner)), attr)
        hint = NOT_LAYERS.get(cls.__name__, "write it with the layers of the catalog (docs/language.md, Layers), "
                                            "as a block of its own if need be")
        self.problems.append(Problem(where, f"'{place or info.path}' is a {what}, which is not in the layer catalog",
                                     hint))
        return TodoT(f"{where}: {what} is not in the layer catalog")

    def layer_term(self, m, name):
        layer = CATALOG[name]
        values = self.defaulted(m, name, read_args(m, name))
        called = bool(self.info(m).calls)
        kwargs = {}
        args = []
        for a in layer.args:
            if a.name not in values:
                if a.default is REQUIRED:
                    _fail(self.info(m).path, f"cannot read {name}'s argument {a.name} from the module")
                continue
            v = values[a.name]
            v = self.compressed(m, name, a.name, v, values)
            kwargs[a.name] = v
            how = "infer" if a.infer is not None and called and self.inferred(m, a, v) else (
                "pos" if a.default is REQUIRED and not a.kw_only else "kw")
            if how == "infer":
                shown = None
            elif isinstance(v, nn.Module):
                shown = self.term(v)
            else:
                shown = slotted(v)
            args.append((a.name, shown, how, a.default))
        self.check_layer(m, name, kwargs)
        return LayerT(name, [LayerArg(*a) for a in args])

    def inferred(self, m, arg, value) -> bool:
        """Whether ``_`` infers ``value`` from the input of the module's first call (LayerNorm's `_` is the last dim
        alone, so LayerNorm([8, 4, 4]) keeps its shape)."""
        from .shapes import Val

        shapes = [tuple(Val(d) for d in shape) for shape in self.info(m).calls[0] if shape is not None]
        try:
            got = arg.infer(*shapes)
        except Exception:
            return False
        plain = lambda v: tuple(plain(x) for x in v) if isinstance(v, (tuple, list)) else getattr(v, "value", v)
        return plain(got) == plain(value) and isinstance(plain(got), (int, tuple))

    def defaulted(self, m, name, values) -> dict:
        """An argument is its default where the default builds the same layer: MultiheadAttention keeps
        ``kdim=embed_dim`` for ``kdim=None``."""
        import warnings

        for a in CATALOG[name].args:
            if a.name not in values or a.default is REQUIRED or _same(values[a.name], a.default) \
                    or isinstance(values[a.name], nn.Module):
                continue
            try:
                with warnings.catch_warnings(), torch.device("meta"):
                    warnings.simplefilter("ignore")
                    again = attribute(nn, name)(**{**values, a.name: a.default})
            except Exception:
                continue
            if _same_layer(again, m):
                values = {**values, a.name: a.default}
        return values

    def compressed(self, m, name, arg, v, values):
        """``(3, 3)`` as ``3`` where torch stores the same for both."""
        if isinstance(v, tuple) and len(v) >= 1 and len(set(v)) == 1 and isinstance(v[0], int) \
                and not isinstance(v[0], bool):
            try:
                with torch.device("meta"):
                    again = attribute(nn, name)(**{**values, arg: v[0]})
                if attribute(again, arg) == attribute(m, arg):
                    return v[0]
            except Exception:
                return v
        return v

    def check_layer(self, m, name, kwargs):
        """Build the layer again from what was read; it must store what ``m`` stores."""
        import warnings

        try:
            with warnings.catch_warnings(), torch.device("meta"):
                warnings.simplefilter("ignore")
                again = attribute(nn, name)(**kwargs)
        except Exception as exc:
            _fail(self.info(m).path, f"{name} could not be built again from the arguments read from it ({exc})")
        if not _same_layer(again, m):
            ours, theirs = _plain_state(again), _plain_state(m)
            diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k) and k != "__state__")
            shown = ", ".join(diff[:4]) + (f" and {len(diff) - 4} more" if len(diff) > 4 else "")
            _fail(self.info(m).path, f"{name}'s arguments could not all be read from the module: built again from "
                  f"them, it differs in {shown or 'its state_dict'}",
                  "a module changed after it was made has no spec form: set it in the constructor, as a spec would")

    # ---- bodies and blocks
    def body(self, m) -> _Body:
        info = self.info(m)
        own_forward = type(m).forward not in (nn.Module.forward, nn.Sequential.forward) \
            and "_forward_unimplemented" not in getattr(type(m).forward, "__name__", "")
        children, held = {}, {}
        for n, c in m._modules.items():
            if c is None:
                continue
            problem = name_problem(n, "a child")
            if problem is not None and n not in _KEYWORDS:
                _fail(_where_set(type(m), n), f"the child '{n}' has no spec form: {problem[0]}",
                      "rename the attribute in the Python class (its state_dict keys change with it)")
            children[n] = self.term(c, held, _join(info.path, n))
            if type(c) not in (nn.ModuleList, nn.ModuleDict):
                held[id(c)] = n
        plain = {}
        for n, v in vars(m).items():
            if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
                self.need_float(v, info, n, "plain tensor")
                if v.dim() == 0:
                    _fail(_where_set(type(m), n), f"'{_join(info.path, n)}' is a 0-dim plain tensor, which a spec "
                          "cannot hold", "register it as a buffer (self.register_buffer(...)), or keep a number")
                plain[n] = (slotted(tuple(v.shape)), _init_of(v, "plain"))
                if _init_of(v, "plain") not in ("zeros", "ones"):
                    self.problems.append(Problem(
                        _where_set(type(m), n), f"'{_join(info.path, n)}' is a plain tensor (no parameter, no buffer): "
                        "its values are in no state_dict, and the spec's are random", "register it as a buffer, "
                        "whose values the state_dict keeps: self.register_buffer(...)", placeholder=False))
        for kind, table in (("parameter", m._parameters), ("buffer", m._buffers)):
            for n, t in table.items():
                if t is None:
                    continue
                problem = name_problem(n, "a child") if n not in _KEYWORDS else (f"{n!r} is a word of the spec", "")
                if problem is not None or not is_name(n):
                    _fail(_where_set(type(m), n), f"the {kind} '{n}' has no spec form: "
                          f"{problem[0] if problem else 'its name is no identifier'}",
                          "rename the attribute in the Python class (its state_dict keys change with it)")
        for n, p in m._parameters.items():
            if p is not None:
                self.need_float(p, info, n, "parameter")
        ties = self.ties.get(info.path, [])
        params = {n: (slotted(tuple(p.shape)), _init_of(p, "param")) for n, p in m._parameters.items()
                  if p is not None}
        buffers = {}
        for n, b in m._buffers.items():
            if b is None:
                continue
            if n in m._non_persistent_buffers_set:
                _fail(info.path or self.name, f"'{n}' is a buffer not saved in the state_dict (persistent=False), "
                      "which a spec has no form for")
            buffers[n] = (slotted(tuple(b.shape)), _init_of(b, "buffer"))
            if _init_of(b, "buffer") == "zeros" and bool(b.ne(0).any()):
                self.problems.append(Problem(
                    _where_set(type(m), n), f"the buffer '{_join(info.path, n)}' holds values no init of a spec makes: "
                    "the spec's are zeros until the module's state_dict is loaded", "load the module's weights "
                    "into the spec's model: model.load_state_dict(module.state_dict())", placeholder=False))
            self.need_float(b, info, n, "buffer")
        graphs, source, notes = self.traced(m) if own_forward else (None, None, [])
        return _Body(info, children, params, buffers, graphs, source, notes, plain, ties)

    def need_float(self, t, info, name, what):
        if t.dtype != torch.float32:
            _fail(_join(info.path, name) or self.name, f"the {what} '{name}' is {str(t.dtype).removeprefix('torch.')}"
                  ", and a spec's params, buffers and tensors are float32", "make it float32, or compute it in forward")

    def find_ties(self):
        """Parameters two modules share: {owner path: [(target, value)]}, each said in the body that holds both."""
        where, places = {}, set()
        for name, p in self.root.named_parameters(remove_duplicate=False):
            owner, _, attr = name.rpartition(".")
            place = (id(self.root.get_submodule(owner)), attr)
            if place not in places:  # a module held again holds its parameters again: no tie
                places.add(place)
                where.setdefault(id(p), []).append(name)
        for names in where.values():
            first = names[0]
            for other in names[1:]:
                a, b = first.split("."), other.split(".")
                k = 0
                while k < min(len(a), len(b)) - 1 and a[k] == b[k]:
                    k += 1
                while k and self.info(self.root.get_submodule(".".join(a[:k]))).kind == "container":
                    k -= 1  # a container has no body: the tie is said in the block that holds it
                owner = ".".join(a[:k])
                self.ties.setdefault(owner, []).append((".".join(a[k:]), ".".join(b[k:])))

    def class_order(self) -> list[type]:
        order, seen = [], set()

        def visit(m):
            for c in m._modules.values():
                if c is not None:
                    visit(c)
            if self.info(m).kind == "block" and m is not self.root and type(m) not in seen:
                seen.add(type(m))
                order.append(type(m))

        visit(self.root)
        return order

    def define(self, cls):
        members = [self.info(m) for m in self.root.modules() if type(m) is cls and m is not self.root
                   and self.info(m).kind == "block"]
        bodies = {id(i.module): self.body(i.module) for i in members}
        self.drop_identities(bodies.values())
        groups = []
        left = list(members)
        while left:
            ref = max(left, key=lambda i: len(bodies[id(i.module)].children))
            rb = bodies[id(ref.module)]
            group = []
            for i in left:
                b = bodies[id(i.module)]
                absent = frozenset(rb.children) - frozenset(b.children)
                if set(b.children) <= set(rb.children) and \
                        [n for n in rb.children if n in b.children] == list(b.children) and \
                        rb.key(absent) == b.key():
                    group.append((i, absent))
            groups.append((ref, group))
            done = {id(i.module) for i, _ in group}
            left = [i for i in left if id(i.module) not in done]
        groups.sort(key=lambda g: min(members.index(i) for i, _ in g[1]))  # named in the order they first appear
        for k, (ref, group) in enumerate(groups):
            name = self.block_name(cls, k)
            block = BlockDef(name, cls, [i for i, _ in group])
            self.make_block(block, ref, group, bodies)
            self.defs.append(block)
            for i, _ in group:
                self.def_of[id(i.module)] = block

    @staticmethod
    def drop_identities(bodies):
        """A child that is ``nn.Identity()`` or an empty ``nn.Sequential()`` in some instances (the pytorch-cifar
        ``shortcut``) and a real module in others is absent where it does nothing: a conditional child."""
        bodies = list(bodies)
        for name in {n for b in bodies for n in b.children}:
            idle = [b for b in bodies if name in b.children and _does_nothing(b.info.module._modules[name])]
            if idle and len(idle) < sum(name in b.children for b in bodies):
                for b in idle:
                    del b.children[name]
                    b.dropped = b.dropped | {name}

    def block_name(self, cls, k: int) -> str:
        base = re.sub(r"\W", "_", cls.__name__)
        if base in CATALOG or base in RESERVED:
            base += "Block"
        taken = {d.name for d in self.defs} | {self.name}
        name = base if k == 0 else f"{base}_{k + 1}" if base[-1].isdigit() else f"{base}{k + 1}"
        while name in taken:
            name += "_"
        return name

    def make_block(self, block: BlockDef, ref: _Info, group, bodies):
        rb = bodies[id(ref.module)]
        ref_keys = {absent: tuple(canonical(g, absent) for g in rb.graphs) for _, absent in group} \
            if rb.graphs else {}
        table = []  # per member: its numbers
        for i, absent in group:
            b = bodies[id(i.module)]
            table.append(b.numbers(keys_from=ref_keys.get(absent)) if b is not rb else b.numbers())
        keys = list(rb.numbers())
        texts, params, vectors = {}, [], {}
        for key in keys:
            vec = [t.get(key, MISSING) for t in table]
            texts[key] = self.number_text(block, key, vec, params, vectors, group)
        names = self.param_names(params, vectors, group)  # the vectors' names, an attribute's first
        params[:] = [names[p] for p in params]
        vectors = {names[p]: v for p, v in vectors.items()}
        token = re.compile("\x00(\\d+)\x00")
        texts = {k: token.sub(lambda m: names[int(m.group(1))], t) for k, t in texts.items()}
        conditional = {n for _, absent in group for n in absent}
        conditions = {n: self.condition(n, group, params, vectors) for n in sorted(conditional)}
        block.params = self.with_defaults(block, params)
        for idx, (i, _) in enumerate(group):
            block.values[id(i.module)] = {p: vectors[p][idx] for p in vectors}
        block.text = self.write_block(block, rb, texts, conditions)

    def number_text(self, block, key, vec, params, vectors, group) -> str:
        defined = [v for v in vec if v is not MISSING]
        if not defined:
            return "0"

        def fits(u, f):
            return all(a is MISSING or b is MISSING or (type(f(b)) is type(a) and f(b) == a) for a, b in zip(vec, u))

        if len(defined) < len(vec) and not isinstance(defined[0], _Modes):  # in a conditional child: a parameter
            for p, u in vectors.items():                                      # it agrees with says more
                if fits(u, lambda b: b) and len(set(map(repr, u))) > 1:
                    return f"\x00{p}\x00"
        if all(v == defined[0] and type(v) is type(defined[0]) for v in defined):
            v = defined[0]
            return v.text() if isinstance(v, _Modes) else literal(v)
        if any(isinstance(v, _Modes) for v in defined):  # each mode's number, a parameter where they differ
            train = [v.train if isinstance(v, _Modes) else v for v in vec]
            evaluated = [v.eval if isinstance(v, _Modes) else v for v in vec]
            t = self.number_text(block, key, train, params, vectors, group)
            e = self.number_text(block, key, evaluated, params, vectors, group)
            return f"({t} if training else {e})"

        for p, u in vectors.items():
            if fits(u, lambda b: b):
                return f"\x00{p}\x00"
        for p, u in vectors.items():
            if all(isinstance(b, int) and not isinstance(b, bool) for b in u if b is not MISSING) \
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in defined):
                for k in range(2, 65):
                    if fits(u, lambda b, k=k: b * k):
                        return f"{k} * \x00{p}\x00"
                    if all(b is MISSING or b % k == 0 for b in u) and fits(u, lambda b, k=k: b // k):
                        return f"\x00{p}\x00 // {k}"
        k = len(params)
        filled = [v if v is not MISSING else defined[0] for v in vec]
        vectors[k] = filled
        params.append(k)
        self.origins[k] = key
        return f"\x00{k}\x00"

    def param_names(self, params, vectors, group) -> dict:
        """A name for each parameter: an attribute every instance holds it in (torchvision's ``self.stride``), else
        what the number is where it first stands (a Conv2d's ``out_channels``)."""
        taken = set(RESERVED) | {n for i, _ in group for n in i.module._modules} \
            | {n for i, _ in group for n in i.module._parameters} | {n for i, _ in group for n in i.module._buffers}
        names = {}
        for p in params:
            for attr in vars(group[0][0].module):
                if attr.startswith("_") or attr in taken or attr == "training" or not is_name(attr):
                    continue
                values = [vars(i.module).get(attr, MISSING) for i, _ in group]
                if all(type(w) is type(v) and w == v for v, w in zip(vectors[p], values)):
                    names[p] = attr
                    taken.add(attr)
                    break
        for p in params:
            if p not in names:
                names[p] = self.param_name(self.origins[p], taken)
                taken.add(names[p])
        return names

    def param_name(self, key, taken) -> str:
        kind, _, rest = key.partition(":")
        parts = re.split(r"[.\[\]]+", rest)
        parts = [p for p in parts if p]
        if kind == "child":
            base = parts[-1] if not parts[-1].isdigit() else parts[-2]
            candidates = [base, f"{parts[0]}_{base}"]
        elif kind in ("param", "buffer"):
            candidates = [f"{parts[0]}_size", f"{parts[0]}_size{parts[-1]}"]
        else:
            candidates = ["n"]
        for c in candidates:
            c = re.sub(r"\W", "_", c)
            if is_name(c) and c not in taken:
                return c
        k = 2
        while f"{candidates[0]}{k}" in taken:
            k += 1
        return f"{candidates[0]}{k}"

    def with_defaults(self, block, params):
        try:
            sig = inspect.signature(block.cls.__init__)
        except (TypeError, ValueError):
            sig = None
        out = []
        for p in params:
            d = REQUIRED
            if sig is not None and p in sig.parameters:
                default = sig.parameters[p].default
                if isinstance(default, (int, float, bool, str)) or default is None:
                    d = default
            out.append((p, d))
        return [x for x in out if x[1] is REQUIRED] + [x for x in out if x[1] is not REQUIRED]

    def condition(self, child, group, params, vectors) -> str:
        has = [child not in absent for _, absent in group]
        shapes = [i.calls[0][0] if i.calls and i.calls[0] and i.calls[0][0] else None for i, _ in group]
        atoms = []
        for p in params:
            if all(isinstance(x, bool) for x in vectors[p]):  # a flag: `if bias`, `if not bias`
                atoms += [(p, list(vectors[p])), (f"not {p}", [not x for x in vectors[p]])]
                continue
            for v in sorted(set(vectors[p]), key=repr):
                atoms.append((f"{p} != {literal(v)}", [x != v for x in vectors[p]]))
        if all(s is not None for s in shapes) and len({len(s) for s in shapes}) == 1 and len(shapes[0]) > 1:
            for d in sorted({1, len(shapes[0]) - 1}):
                dims = [s[d] for s in shapes]
                shown = f"in_shape[{d if d == 1 else -1}]"
                for p in params:
                    if all(isinstance(b, int) and not isinstance(b, bool) for b in vectors[p]):
                        for k in (1, 2, 4, 6, 8):
                            times = p if k == 1 else f"{k} * {p}"
                            atoms.append((f"{shown} != {times}", [a != k * b for a, b in zip(dims, vectors[p])]))
        for p in params:
            if not all(isinstance(x, bool) for x in vectors[p]):
                for v in sorted(set(vectors[p]), key=repr):
                    atoms.append((f"{p} == {literal(v)}", [x == v for x in vectors[p]]))
        for text, value in atoms:
            if value == has:
                return text
        for i, (t1, v1) in enumerate(atoms):
            for t2, v2 in atoms[i + 1:]:
                if [a or b for a, b in zip(v1, v2)] == has:
                    return f"{t1} or {t2}"
        flag = f"has_{child}" if is_name(f"has_{child}") else "has_child"
        while flag in vectors:
            flag += "_"
        vectors[flag] = has
        params.append(flag)
        return flag

    # ---- writing
    def write_term(self, t, texts: dict, key: str) -> str:
        if isinstance(t, Slot):
            return texts.get(key, literal(t.value))
        if isinstance(t, LayerT):
            parts = []
            for n, v, how, default in t.args:
                k = f"{key}.{n}"
                if how == "infer":
                    parts.append("_")
                    continue
                text = self.write_value(v, texts, k)
                if how == "pos":
                    parts.append(text)
                else:
                    slots = _slots(v, k, [])
                    varies = any(texts.get(sk, literal(s.value)) != literal(s.value) for sk, s in slots)
                    if not varies and _same(v, default):
                        continue
                    parts.append(f"{n}={text}")
            # positional arguments after an omitted one must be keywords: the catalog's order is torch's
            return f"{t.name}({', '.join(parts)})"
        if isinstance(t, ContainerT):
            items = [(k, self.write_term(c, texts, f"{key}[{k}]")) for k, c in t.items]
            if t.kind == "ModuleDict":
                return "ModuleDict({" + ", ".join(f"{literal(k)}: {v}" for k, v in items) + "})"
            if t.kind == "ModuleList":
                if len(items) > 1 and len({v for _, v in items}) == 1:
                    return f"ModuleList([{items[0][1]} for _ in range({len(items)})])"
                return "ModuleList([" + ", ".join(v for _, v in items) + "])"
            if all(k == str(j) for j, (k, _) in enumerate(items)):
                return "Sequential(" + ", ".join(v for _, v in items) + ")"
            return "Sequential({" + ", ".join(f"{literal(k)}: {v}" for k, v in items) + "})"
        if isinstance(t, BlockT):
            parts = []
            defaults = dict(t.block.params)
            for n, v in t.args:
                text = self.write_value(v, texts, f"{key}.{n}")
                if defaults[n] is REQUIRED:
                    parts.append(text)
                elif text != literal(defaults[n]):
                    parts.append(f"{n}={text}")
            return f"{t.block.name}({', '.join(parts)})"
        if isinstance(t, TodoT):
            return f"TODO({literal(t.what)})"
        if isinstance(t, HeldT):
            return t.name
        raise AssertionError(t)

    def write_value(self, v, texts, key) -> str:
        if isinstance(v, (LayerT, ContainerT, BlockT, TodoT, HeldT, Slot)):
            return self.write_term(v, texts, key)
        if isinstance(v, tuple):
            items = [self.write_value(x, texts, f"{key}.{j}") for j, x in enumerate(v)]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(v, list):
            return "[" + ", ".join(self.write_value(x, texts, f"{key}.{j}") for j, x in enumerate(v)) + "]"
        return literal(v)

    def write_block(self, block: BlockDef | None, body: _Body, texts: dict, conditions: dict, header: str = "") -> str:
        lines = []
        for n, t in body.children.items():
            name = n if speakable(n) else literal(n)
            text = self.write_term(t, texts, f"child:{n}")
            if n in conditions:
                text += f" if {conditions[n]}"
            lines.append(f"{name} = {text}")
        for kind, table in (("param", body.params), ("buffer", body.buffers), ("plain", body.plain)):
            for n, (shape, init) in table.items():
                dims = ", ".join(self.write_value(s, texts, f"{kind}:{n}.{j}") for j, s in enumerate(shape))
                if kind == "plain":
                    lines.append(f"{n} = torch.{init}({dims})")
                else:
                    lines.append(f"{kind} {n}: [{dims}] = {init}")
        for target, value in body.ties:
            sides = [_path_text(body.info.module, p) for p in (target, value)]
            if None in sides or any("[" in side for side in sides):
                _fail(_join(body.info.path, target) or self.name, f"the parameters {target} and {value} are one "
                      "(tied), and a spec ties only parameters it names by children and ModuleDict keys, not by "
                      "a ModuleList's or Sequential's index", "tie children of the block itself, or of a ModuleDict")
            lines.append(f"{sides[0]} = {sides[1]}")
        if body.graphs is not None:
            lines.extend(self.write_forward(block, body, texts))
        if block is not None:
            params = ", ".join(p if d is REQUIRED else f"{p}={literal(d)}" for p, d in block.params)
            header = f"block {block.name}({params})"
        inner = "\n".join("    " + line for text in lines for line in text.split("\n"))
        return f"{header} {{\n{inner}\n}}\n"

    def write_forward(self, block, body: _Body, texts: dict) -> list[str]:
        m = body.info.module
        taken = set(m._modules) | set(m._parameters) | set(m._buffers) | set(body.plain) \
            | {p for p, _ in (block.params if block else [])}
        writers = []
        for graph, prefix in zip(body.graphs, ("t:", "e:") if body.modal() else ("", None)):
            if prefix is None:
                break
            set_numbers(graph, {k[4 + len(prefix):]: v for k, v in texts.items() if k.startswith("fwd:" + prefix)
                                and (prefix or not k.startswith(("fwd:t:", "fwd:e:")))})
            writer = ForwardWriter(graph, m, body.source or _Source(None), self.arrange, taken, self.problems)
            writer.write()
            writers.append(writer)
        statements = writers[0].lines if len(writers) == 1 else self.by_mode(*writers, where=body.info.where)
        if m is self.root:
            self.root_args = writers[0].args
        inner = "\n".join("    " + line for s in statements for line in s.split("\n"))
        return body.notes + [f"\nforward({', '.join(writers[0].args)}) {{\n{inner}\n}}"]

    @staticmethod
    def by_mode(train: ForwardWriter, evaluated: ForwardWriter, where: str = "") -> list[str]:
        """Two forwards as one: what they share, then ``if training { ... } else { ... }`` for the rest; values
        returned that differ are named in each branch and returned after it."""
        if len(train.returns) != len(evaluated.returns):
            raise FromTorchError([Problem(where, f"forward returns {len(train.returns)} values in training and "
                                          f"{len(evaluated.returns)} in eval, and a spec's forward returns the "
                                          "same in both", "return the same values in both modes")])
        t, e = train.lines[:-1], evaluated.lines[:-1]
        n = 0  # what they share before
        while n < min(len(t), len(e)) and t[n] == e[n]:
            n += 1
        t_rest, e_rest = t[n:], e[n:]
        differ = [a != b for a, b in zip(train.returns, evaluated.returns)]
        after = []
        if not any(differ):  # and what they share after, where the same values are returned
            k = 0
            while k < min(len(t_rest), len(e_rest)) and t_rest[-1 - k] == e_rest[-1 - k]:
                k += 1
            after = t_rest[len(t_rest) - k:]
            t_rest, e_rest = t_rest[:len(t_rest) - k], e_rest[:len(e_rest) - k]
        used = set(train.holders) | set(evaluated.holders)
        returns = []
        for i, (a, b) in enumerate(zip(train.returns, evaluated.returns)):
            if not differ[i]:
                returns.append(a)
                continue
            name = "out" if len(train.returns) == 1 else f"out{i}"
            while name in used or name in train.taken:
                name += "_"
            used.add(name)
            t_rest.append(f"{name} = {a}")
            e_rest.append(f"{name} = {b}")
            returns.append(name)
        indent = lambda lines: "\n".join("    " + x for line in lines for x in line.split("\n"))
        if not t_rest and not e_rest:
            branch = []
        elif not t_rest:
            branch = [f"if not training {{\n{indent(e_rest)}\n}}"]
        else:
            branch = [f"if training {{\n{indent(t_rest)}\n}}" + (f" else {{\n{indent(e_rest)}\n}}" if e_rest else "")]
        return t[:n] + branch + after + ["return " + ", ".join(returns)]

    # ---- the whole
    def run(self) -> str:
        self.walk()
        info = self.info(self.root)
        if info.kind == "layer":
            _fail(self.name, f"the module is one {catalog_name(self.root)}, and a spec's model holds children",
                  "wrap it in a module of your own, or write it in a Sequential")
        if info.kind == "container" and not isinstance(self.root, nn.Sequential):
            _fail(self.name, f"a {type(self.root).__name__} has no forward to run", "convert the module that uses it")
        if info.kind == "todo":
            _fail(info.where, f"{type(self.root).__qualname__} is not in the layer catalog")
        self.record()
        self.find_ties()
        for cls in self.class_order():
            self.define(cls)
        texts = []
        for block in self.defs:
            texts.append(block.text)
        root = self.body(self.root)
        numbers = root.numbers()
        model = self.write_block(None, root, {k: (v.text() if isinstance(v, _Modes) else literal(v))
                                              for k, v in numbers.items()}, {}, header=f"model {self.name}(\x01)")
        texts.append(model.replace("\x01", self.shown_inputs(self.root_args)))
        return "\n".join(texts)

    def shown_inputs(self, names: list[str] | None = None) -> str:
        """The model's declarations, each input named as forward names it (else as --input did)."""
        names = names or [n for n, _ in self.decls]
        return ", ".join(f"{n}: {t}" for n, (_, t) in zip(names, self.decls))


def _does_nothing(m: nn.Module) -> bool:
    return type(m) is nn.Identity or (type(m) is nn.Sequential and len(m) == 0)


def speakable(name: str) -> bool:
    """Whether a child's name is written bare, and forward can call it by that name."""
    return is_name(name) and name not in _KEYWORDS


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _path_text(m: nn.Module, path: str) -> str | None:
    """``h.0.attn.weight`` as a spec names it: h[0].attn.weight; None where a name cannot be said so."""
    out = ""
    for i, part in enumerate(path.split(".")):
        if isinstance(m, (nn.ModuleList, nn.Sequential)) and part.isdigit():
            out += f"[{part}]"
        elif isinstance(m, nn.ModuleDict) and not is_name(part):
            out += f"[{literal(part)}]"
        elif is_name(part):
            out += ("." if i else "") + part
        else:
            return None
        m = m._modules.get(part) if isinstance(m, nn.Module) else None
    return out


def _same(v, default) -> bool:
    if default is REQUIRED:
        return False
    if isinstance(v, Slot):
        v = v.value
    if isinstance(v, tuple) and any(isinstance(x, Slot) for x in v):
        v = tuple(x.value if isinstance(x, Slot) else x for x in v)
    return type(v) is type(default) and v == default or (v is None and default is None)


def parse_inputs(inputs, name: str):
    """``"x: [B, 3, 224, 224]"`` as the model's declarations [(name, type)], and example tensors of those shapes,
    at batch 2 and at batch 3 (a size baked in where it should follow the input shows at the second)."""
    from .build import make_inputs
    from .errors import SpecError
    from .pipeline import SpecText, load_graph, parse_source

    if not isinstance(inputs, str) or not inputs.strip():
        _fail("", "from-torch needs the shapes of forward's inputs, as a model declares them",
              'give them: --input "x: [B, 3, 224, 224]" (or inputs="x: [B, 3, 224, 224]" in Python)')
    given = inputs.strip()
    header = f"model Probe({given}) {{\n}}\n"
    try:  # the spec's own parser reads the declarations
        declared = parse_source(SpecText(header, "--input")).models()[0].inputs
    except SpecError as exc:
        _fail("--input", f"the inputs {given!r} are no model's declarations: {exc.message}",
              'declare each as a model does: "x: [B, 3, 224, 224]", "idx: Long[B, T=64]"')
    # a name the spec refuses (input, a builtin) is forward's to choose: the probe takes its own
    decls = [(d.name if d.name not in RESERVED else f"{d.name}_", _span_text(header, d.type.span)) for d in declared]
    listed = ", ".join(f"in{k}" for k in range(len(decls)))
    probe = (f"model Probe({', '.join(f'in{k}: {t}' for k, (_, t) in enumerate(decls))}) {{\n    forward({listed}) "
             f"{{\n        return {listed}\n    }}\n}}\n")
    try:
        graph = load_graph(SpecText(probe, "--input"))
    except SpecError as exc:
        _fail("--input", f"the inputs {inputs.strip()!r} are no model's declarations: {exc.message}",
              'declare each as a model does: "x: [B, 3, 224, 224]", "idx: Long[B, T=64]"')
    return decls, make_inputs(graph, batch=2), make_inputs(graph, batch=3)


def _span_text(text: str, span) -> str:
    """The source ``span`` covers (1-based lines and columns, the end exclusive)."""
    lines = text.split("\n")[span.line - 1:span.end_line]
    lines[-1] = lines[-1][:span.end_column - 1]
    lines[0] = lines[0][span.column - 1:]
    return "\n".join(lines)


def from_torch(module: nn.Module, inputs: str | None = None, *, strict: bool = False, name: str | None = None,
               problems: list | None = None) -> str:
    """The spec of ``module``, whose forward takes ``inputs`` (declared as a model declares them).

    What a spec cannot say is a ``TODO(...)`` placeholder that names the Python line, and a `Problem`: added to
    ``problems`` when given, else a warning; with ``strict`` it is a `FromTorchError` instead. A spec without
    placeholders is checked before it is returned: it builds a module with ``module``'s state_dict keys and
    shapes.
    """
    import warnings

    from .errors import ModelspecWarning, SpecError
    from .fmt import format_spec

    if not isinstance(module, nn.Module):
        made = "a class: make the module first, Net()" if isinstance(module, type) else type(module).__name__
        raise TypeError(f"from_torch reads an nn.Module, not {made}")
    if inputs is None:
        inputs = guess_inputs(module)
        if inputs is None:
            _fail("", "no layer of the module fixes the size of forward's input", 'give the inputs: '
                  'inputs="x: [B, 3, 224, 224]"')
    kept = {k: v.detach().clone() for k, v in module.state_dict().items()}  # running it moves buffers
    modes = {id(m): m.training for m in module.modules()}
    try:
        conv = Converter(module, inputs, name=name)
        text = conv.run()
        conv.problems[:] = list({(p.where, p.message): p for p in conv.problems}.values())  # once each
        todos = [p for p in conv.problems if p.placeholder]
        if todos and strict:
            raise FromTorchError(todos)
        try:
            text = format_spec(text)
        except SpecError as exc:
            raise FromTorchError([Problem(conv.name, f"the spec written for {conv.name} does not parse: {exc}",
                                          BUG)]) from None
        if not todos:
            verify(module, text, conv.name, (conv.examples, conv.others))
    finally:
        with torch.no_grad():
            module.load_state_dict(kept)
        for m in module.modules():
            m.training = modes[id(m)]
    if problems is not None:
        problems.extend(conv.problems)
    else:
        for p in conv.problems:
            warnings.warn(str(p), ModelspecWarning, stacklevel=3)  # the caller of modelspec.from_torch
    return text


def verify(module: nn.Module, text: str, name: str, examples=()):
    """The spec must check, build a module with ``module``'s state_dict keys and shapes, and, with its weights,
    compute what ``module`` computes on the example inputs, in eval."""
    import warnings

    from .build import build_module
    from .codegen import generate_code
    from .errors import SpecError
    from .pipeline import SpecText, load_graph

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = load_graph(SpecText(text, "<from-torch>"))
            built = build_module(generate_code(graph), graph)
    except SpecError as exc:
        raise FromTorchError([Problem(name, f"the spec written for {name} does not check: {exc}", BUG)]) from None
    ours = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))[:4]
        raise FromTorchError([Problem(name, f"the spec written for {name} builds another state_dict: "
                                      + ", ".join(f"{k} {list(v)}" for k, v in diff),
                                      BUG)])
    if any(not _computes_the_same(module, built, inputs) for inputs in examples):
        raise FromTorchError([Problem(name, f"the spec written for {name} computes another output than the module "
                                      "on the example inputs", BUG)])


def _computes_the_same(module: nn.Module, built: nn.Module, examples) -> bool:
    """Whether ``built``, with ``module``'s weights, computes ``module``'s outputs on ``examples``, in eval and in
    training, each from one random state. Plain tensors, in no state_dict, are copied: what they lose is said
    where they are written. The caller restores ``module``'s state (training moves BatchNorm's statistics)."""
    built.load_state_dict(module.state_dict())
    for path, m in module.named_modules():
        for k, v in vars(m).items():
            if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter):
                setattr(built.get_submodule(path), k, v)
    for training in (False, True):
        module.train(training)
        built.train(training)
        with torch.no_grad():
            state = torch.random.get_rng_state()
            a = module(*examples)
            torch.random.set_rng_state(state)
            b = built(*examples)
        if not _equal(a, b):
            return False
    return True


def _equal(a, b) -> bool:
    a, b = (list(flat(y if isinstance(y, (tuple, list)) else (y,))) for y in (a, b))
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if isinstance(u, torch.Tensor) != isinstance(v, torch.Tensor):
            return False
        if not isinstance(u, torch.Tensor):
            if u != v:
                return False
        elif u.shape != v.shape or u.dtype != v.dtype or not (torch.equal(u, v) or (
                u.is_floating_point() and torch.allclose(u, v, 1e-5, 1e-6))):
            return False
    return True


# ---------------------------------------------------------------- what the command line names
def load_target(target: str, kwargs: dict | None = None) -> nn.Module:
    """The module ``package.module:callable`` or ``path/file.py:Name`` names, made with ``kwargs``.

    Importing it runs the Python code it names, as any Python tool that imports it does: that is what the
    user asks for. (A spec, the other way, never runs code.)
    """
    import importlib
    import importlib.util
    import os

    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        _fail("TARGET", f"{target!r} names no module and callable", "write package.module:Class, or "
              "path/to/file.py:Class")
    if where.endswith(".py") or os.sep in where or "/" in where:
        if not os.path.isfile(where):
            _fail("TARGET", f"there is no file {where}", "name a Python file: path/to/model.py:Class")
        name = "_modelspec_target_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(where))[0])
        spec = importlib.util.spec_from_file_location(name, where)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look a class's module up by name
        folder = os.path.dirname(os.path.abspath(where))
        sys.path.insert(0, folder)  # the file's own imports of its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's own code failed: said with its line, as Python would
            _raised(exc, f"importing {where}")
        finally:
            sys.path.remove(folder)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            _fail("TARGET", f"cannot import {where}: {exc}", "install the package, or name a file: path/model.py:Class")
        except Exception as exc:
            _raised(exc, f"importing {where}")
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            near = [n for n in dir(obj) if not n.startswith("_")][:8]
            _fail("TARGET", f"{where} has no {attr!r}", "it has " + ", ".join(near) if near else "")
        obj = attribute(obj, part)
    if isinstance(obj, nn.Module):
        if kwargs:
            _fail("--args", f"{attr} is a module already made; --args are for a class or a factory")
        return obj
    if not callable(obj):
        _fail("TARGET", f"{attr} is a {type(obj).__name__}, not a class or a function that makes a module")
    try:
        made = obj(**(kwargs or {}))
    except Exception as exc:
        _raised(exc, f"{attr}(" + ", ".join(f"{k}={v!r}" for k, v in (kwargs or {}).items()) + ")")
    if not isinstance(made, nn.Module):
        _fail("TARGET", f"{attr}(...) made a {type(made).__name__}, not an nn.Module")
    return made


def _raised(exc: BaseException, doing: str):
    """The user's code raised while ``doing``: one error at the line of theirs that raised."""
    where = _trace_error_where(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{_short(exc.filename)}:{exc.lineno}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    hint = ('give its arguments: --args "name=value, ..." (Python literals)' if isinstance(exc, TypeError)
            and "argument" in first else "the module must be made without an error, as python -c 'import ...' "
            "makes it")
    raise FromTorchError([Problem(where or "TARGET", f"{doing} raised {type(exc).__name__}: {first}", hint)]) \
        from None


def parse_kwargs(texts: list[str]) -> dict:
    """``--args "num_classes=10, bias=False"`` as keyword arguments; the values are Python literals only."""
    out = {}
    for text in texts:
        try:
            call = ast.parse(f"f({text})", mode="eval").body
        except SyntaxError:
            _fail("--args", f"{text!r} is not NAME=VALUE, ...", 'write --args "num_classes=10, pretrained=False"')
        if call.args or any(k.arg is None for k in call.keywords):
            _fail("--args", f"{text!r}: each argument needs its name", 'write --args "num_classes=10"')
        for k in call.keywords:
            try:
                out[k.arg] = ast.literal_eval(k.value)
            except ValueError:
                _fail("--args", f"{k.arg}={ast.unparse(k.value)}: a value is a literal (a number, string, True, "
                      "None, a tuple, list or dict of them)", "compute it in Python and name the module instead")
    return out


def guess_inputs(module: nn.Module) -> str | None:
    """Declarations for forward's first input, from the first layer that fixes its size, where no --input is
    given: a Conv2d(3, ...) takes [B, 3, 224, 224], a Linear(784, ...) [B, 784], an Embedding Long[B, T=64]."""
    try:
        params = list(inspect.signature(type(module).forward).parameters)[1:]
    except (TypeError, ValueError):
        return None
    name = params[0] if params and is_name(params[0]) and params[0] not in RESERVED else "x"
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return f"{name}: [B, {m.in_channels}, 224, 224]"
        if isinstance(m, nn.Conv1d):
            return f"{name}: [B, {m.in_channels}, L=128]"
        if isinstance(m, nn.Conv3d):
            return f"{name}: [B, {m.in_channels}, 16, 112, 112]"
        if isinstance(m, nn.Linear):
            return f"{name}: [B, {m.in_features}]"
        if isinstance(m, nn.Embedding):
            return f"{name}: Long[B, T=64]"
    return None
