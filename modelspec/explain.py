"""Teaching comments for ``modelspec codegen --explain``.

Each module built in ``__init__`` gets a comment saying what it computes and
how its output shape follows from its input (``# Conv2d: H_out = (28 + 2*0 -
1*(5-1) - 1) // 1 + 1 = 24``), and each class a docstring line with its
parameter count. Each line of ``forward`` gets one above it for each
operation whose shapes take working out: a matrix product (``@``, matmul,
bmm), a view or reshape (``-1 = 64*4*4 = 1024``), a flatten, a cat or
stack, and two tensors of different shapes broadcast by an elementwise op;
elaboration records what they read and made (`modelspec.model.OpNote`).
Without ``--explain`` none of this is printed.

A class shared by several instances (a block used in many places) is one
piece of code: its comments show the sizes of its first use, and its
docstring says so when other uses have other sizes.
"""

from __future__ import annotations

import math
import re

from . import expr as E
from .layers.base import Bound
from .model import ClassDef, Line, ModelGraph, ModuleNode, OpNote
from .names import is_attribute_name
from .printer import CODE, INDENT, LINE_WIDTH as WIDTH, layout, statement_lines, string_literal
from .shapes import dim_str, shape_str


def explain_doc(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """Docstring lines for a class: parameters (and mult-adds for the model).

    >>> from modelspec.pipeline import load_graph
    >>> g = load_graph("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> explain_doc(g.classes[-1], g)
    ['M: 10 parameters (10 trainable).', '8 mult-adds (MACs) for one example; FLOPs = 2 x MACs.']
    """
    if cls.kind == "model":
        from .summary import summarize

        s = summarize(graph, batch=1)
        doc = [f"{graph.name}: {s.total_params:,} parameters ({s.trainable_params:,} trainable)."]
        if s.total_mult_adds is not None:
            doc.append(f"{s.total_mult_adds:,} mult-adds (MACs) for one example; FLOPs = 2 x MACs.")
        return doc
    nodes = _instances(cls, graph)
    counts = sorted({n.total_params for n in nodes})
    if not counts:
        return []
    params = f"{counts[0]:,} parameters" if len(counts) == 1 else \
        f"{counts[0]:,} to {counts[-1]:,} parameters, by use"
    uses = f"; {len(nodes)} uses ({_paths(nodes)})" if len(nodes) > 1 else f"; used as {_shown(nodes[0].path)}"
    doc = [f"{cls.name}: {params}{uses}."]
    if len(nodes) > 1 and _varies(cls, graph):
        doc.append(f"The comments give the sizes of its first use, {_shown(nodes[0].path)}; other uses differ.")
    return doc


def explain_init(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """The lines of ``__init__`` with a comment before each module, parameter and buffer."""
    by_path = {n.path: n for n in graph.root.walk()}
    out: list[str] = []
    for ln in cls.init_lines:
        out.extend(_annotate_line(ln, cls, by_path) or statement_lines(ln))
    return out


def _annotate_line(ln: Line, cls: ClassDef, by_path: dict) -> list[str] | None:
    """One init statement with its comments, in the sizes of the class's first use (None: no comment)."""
    pad = INDENT * ln.indent
    stmt = ln.stmt
    if stmt.kind == "exprstmt" and getattr(stmt.value.func, "attr", None) == "register_buffer":
        return [f"{pad}# a buffer: saved in the state_dict and moved by .to(), but not trained"] + _lines(ln)
    if stmt.kind != "setattr" or stmt.value == E.Constant(None):
        return None
    if stmt.value.kind == "call" and CODE.text(stmt.value.func) == "nn.Parameter":
        return [f"{pad}# nn.Parameter: a tensor the optimizer trains (it is in .parameters())"] + _lines(ln)
    if stmt.value.kind == "call" and CODE.text(stmt.value.func).startswith("torch."):  # W = torch.FloatTensor(3, 2)
        maker = CODE.text(stmt.value.func).removeprefix("torch.")
        return [f"{pad}# {maker}: a plain tensor, not in .parameters() (never trained), not in the state_dict, "
                "not moved by .to()"] + _lines(ln)
    nodes = [by_path[p] for p in (_child_path(path, stmt.name) for path in _instance_paths(cls)) if p in by_path]
    if not nodes:
        return None
    if is_attribute_name(stmt.name):
        out = _annotate(f"self.{stmt.name} = ", stmt.value, nodes[0], ln.indent)
    else:  # a child named "block1-0"
        out = _annotate(f"self.add_module({string_literal(stmt.name)}, ", stmt.value, nodes[0], ln.indent, ")")
    first = _child_path(_instance_paths(cls)[0], stmt.name)
    if nodes[0].path != first:  # absent from the first use: say whose sizes these are
        out.insert(0, f"{pad}# (as built at {_shown(nodes[0].path)})")
    return out


def _lines(ln: Line) -> list[str]:
    return statement_lines(ln)


def _annotate(head: str, value, node: ModuleNode, depth: int, tail: str = "") -> list[str]:
    """Comment lines for ``node`` above its constructor call; inside an exploded container, one per element."""
    pad = INDENT * depth
    return [pad + "# " + c for c in describe(node, width=WIDTH - len(pad) - 2)] + _elements(
        head, value, node, depth, tail)


def _elements(head: str, value, node: ModuleNode, depth: int, tail: str = "") -> list[str]:
    """``head``, the call ``value`` and ``tail``; a container exploded one module a line (``node``'s children)
    with each element's comment above it."""
    items = _container_items(value)
    if items is None or len(items[2]) != len(node.children):
        made = [INDENT * line.depth + line.text for line in layout([head, *CODE.expr(value), tail], depth, hug=True)]
        if node.children and _repeats(value):  # [Block(...) for _ in range(n)]: what each of them is
            pad = INDENT * depth
            first = describe(node.children[0], width=WIDTH - len(pad) - 2)
            first[-1] += f" (each of the {len(node.children)})"
            return [pad + "# " + c for c in first] + made
        return made
    opener, closer, entries = items
    out = [INDENT * depth + head + opener]
    for (before, item, after), child in zip(entries, node.children):
        out += _annotate(before, item, child, depth + 1, after)
    out.append(INDENT * depth + closer + tail)
    return out


def _repeats(value) -> bool:
    """Whether a container's call holds its modules as a comprehension: ``nn.Sequential(*[m for _ in ...])``."""
    args = [a.value if a.kind == "starred" else a for a in getattr(value, "args", ())]
    return value.kind == "call" and len(args) == 1 and args[0].kind == "listcomp"


def _container_items(value):
    """(opener, closer, [(text before, item, text after)]) of a container exploded one module a line, else None:
    ``nn.Sequential(`` and ``)``, ``nn.ModuleDict({`` and ``})`` with ``"key": `` before an item, or
    ``nn.Sequential(OrderedDict([`` and ``]))`` with ``("key", `` before one and ``),`` after it."""
    if value.kind != "call" or value.keywords:
        return None
    func = CODE.text(value.func)
    if value.explode:
        return f"{func}(", ")", [("", a, ",") for a in value.args]
    if len(value.args) == 1 and getattr(value.args[0], "explode", False):
        inner = value.args[0]
        if inner.kind == "list":
            return f"{func}([", "])", [("", a, ",") for a in inner.items]
        if inner.kind == "dict":
            return f"{func}({{", "})", [(f"{CODE.text(k)}: ", v, ",") for k, v in zip(inner.keys, inner.values)]
    named = value.args[0] if len(value.args) == 1 else None  # OrderedDict([("conv", m), ...])
    if named is not None and named.kind == "call" and named.func == E.Name("OrderedDict") and len(named.args) == 1 \
            and getattr(named.args[0], "explode", False):
        pairs = named.args[0].items
        return f"{func}(OrderedDict([", "]))", [(f"({CODE.text(k)}, ", m, "),") for k, m in (p.items for p in pairs)]
    return None


def explain_super_init(cls: ClassDef, graph: ModelGraph) -> list[str]:
    """``super().__init__(modules...)`` of a block ``= Sequential(...)``, a comment before each module, in
    the sizes of the class's first use."""
    nodes = _instances(cls, graph)
    if not nodes:
        return statement_lines(Line(2, E.ExprStmt(cls.super_init)))
    return _elements("", cls.super_init, nodes[0], 2)


def describe(node: ModuleNode, width: int | None = None) -> list[str]:
    """What a module computes and how its output shape follows, as comment lines (without ``#``).

    >>> from modelspec.pipeline import load_graph
    >>> conv = load_graph("model M(x: [B, 1, 28, 28]) { c = Conv2d(1, 20, 5) }").root.children[0]
    >>> for line in describe(conv): print(line)
    Conv2d: H_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24
            W_out = (28 + 2*0 - 1*(5-1) - 1) // 1 + 1 = 24
            2-d convolution: slides out_channels kernels over the input; [B, 1, 28, 28] -> [B, 20, 24, 24]
    """
    flow = _flow(node)
    head = f"{node.type_name}: "
    indent = " " * len(head)
    if node.kind == "layer":
        doc = node.layer.doc_for(Bound(dict(node.args))) if node.layer is not None else ""
        what = [f"{doc}; {flow}" if flow and doc else doc or flow]
        if width is not None and flow and doc and len(indent + what[0]) > width:
            what = [doc + ";", flow]  # too long for one line
        formulas = list(node.explain or [])
        lines = formulas + what
        return [head + lines[0]] + [indent + line for line in lines[1:]]
    n = len(node.children)
    plural = "s" if n != 1 else ""
    if node.kind == "sequential":
        return [head + f"runs its {n} module{plural} in order" + (f"; {flow}" if flow else "")]
    if node.kind == "modulelist":
        return [head + f"holds {n} module{plural}, registered by index; forward calls them"]
    if node.kind == "moduledict":
        return [head + f"holds {n} module{plural}, registered by key; forward calls them"]
    params = f"{node.total_params:,} parameter{'s' if node.total_params != 1 else ''}"
    return [head + f"the block class above, {params}" + (f"; {flow}" if flow else "")]


def explain_forward(cls: ClassDef, graph: ModelGraph) -> list[list[str]]:
    """For each line of ``forward``, the comment lines above it: how each of its operations' shapes follow,
    in the sizes of the class's first use. A loop whose passes differ gets each pass (the first and the last
    of a longer loop).

    >>> from modelspec.pipeline import load_graph
    >>> g = load_graph("model M(x: [B, 4, 8], y: [B, 8, 5]) { forward(x, y) { return torch.bmm(x, y) } }")
    >>> for line in explain_forward(g.classes[-1], g)[0]: print(line)
            # bmm: [B, 4, 8] @ [B, 8, 5] = [B, 4, 5]: [4, 8] @ [8, 5] for each of batch [B],
            #      summing over 8
    """
    batch = _batch(graph)
    out = []
    for ln in cls.forward_lines:
        pad = INDENT * ln.indent
        width = WIDTH - len(pad) - 2
        passes = [ln.notes] + ln.more_notes
        said = [[note_text(n, batch) for n in notes] for notes in passes]
        if all(s == said[0] for s in said):
            shown = [("", said[0])]
        else:  # a loop's passes: each of a short loop, the first and the last of a long one
            n = len(said)
            shown = [(f"(pass {i + 1} of {n}) ", said[i]) for i in (range(n) if n <= 3 else (0, n - 1))]
        out.append([pad + "# " + line for before, texts in shown for text in texts
                    for line in _wrapped(before + text, width)])
    return out


def note_text(note: OpNote, batch=None) -> str:
    """What an operation of forward computes, and how its shape follows (``batch``: the model's batch size,
    so that a view can say "per sample").

    >>> from modelspec.shapes import Sym, Val
    >>> B = Val(Sym.var("B"))
    >>> note_text(OpNote("view", ".view", ((B, Val(64), Val(4), Val(4)),), (B, Val(1024)), inferred=1), B.value)
    'view: [B, 64, 4, 4] -> [B, 1024]: -1 = 64*4*4 = 1024 elements per sample'
    """
    return NOTE_TEXTS[note.kind](note, batch)


def matmul_explain(note: OpNote, batch=None) -> str:
    """``@``, matmul and bmm as torch defines them: a 1-d side taken as a matrix, batch dims broadcast."""
    a, b = note.operands
    name = "matmul" if note.label == "@" else note.label.rsplit(".", 1)[-1]
    head = f"{name}: {shape_str(a)} @ {shape_str(b)} = {shape_str(note.result)}"
    if len(a) == 1 and len(b) == 1:
        return f"{head}: a dot product, summing over {_dim(a[0])}"
    k = _dim(a[-1])
    ma = shape_str(a[-2:] if len(a) > 1 else (1, a[0].value))
    mb = shape_str(b[-2:] if len(b) > 1 else (b[0].value, 1))
    parts = [f"the {shape_str(s)} acts as {m}, that 1 removed after" for s, m in ((a, ma), (b, mb)) if len(s) == 1]
    ba, bb = a[:-2], b[:-2]
    batch_dims = note.result[:len(note.result) - 2 + (len(a) == 1) + (len(b) == 1)]
    if not batch_dims:
        if not parts:
            return f"{head}, summing over {k}"
        parts.append(f"{ma} @ {mb}, summing over {k}")
    else:
        each = f"{ma} @ {mb} for each of batch {shape_str(batch_dims)}"
        if [d.value for d in ba] == [d.value for d in bb]:
            parts.append(f"{each}, summing over {k}")
        elif not ba or not bb:
            parts.append(f"{each}, the {mb if not bb else ma} shared by all, summing over {k}")
        else:
            parts.append(f"{each} (batch dims {shape_str(ba)} and {shape_str(bb)} broadcast), summing over {k}")
    return f"{head}: " + "; ".join(parts)


def view_explain(note: OpNote, batch=None) -> str:
    """view and reshape: the elements kept, the sizes multiplied out on both sides, and what a -1 stands for."""
    (x,), out, j = note.operands, note.result, note.inferred
    head = f"{note.label.rsplit('.', 1)[-1]}: {shape_str(x)} -> {shape_str(out)}"
    if [d.value for d in x] == [d.value for d in out]:
        return f"{head}, the same shape"
    k = 0  # the leading dims kept as they are: the product is of the others
    while k < min(len(x), len(out)) - 1 and (j is None or k < j) and x[k].value == out[k].value:
        k += 1
    left, right = x[k:], out[k:]
    per = " elements" if k == 0 else " elements per sample" if k == 1 and x[0].value == batch else \
        f" elements per {shape_str(x[:k])} position"
    total = math.prod(d.value for d in left)
    if j is None:
        same = f" = {total}" if len(left) > 1 and len(right) > 1 else ""
        return f"{head}: {_product(left)} = {_product(right)}{same}{per}"
    others = right[:j - k] + right[j - k + 1:]
    inferred = out[j].value
    if not others:
        same = f" = {inferred}" if _product(left) != str(inferred) else ""
        return f"{head}: -1 = {_product(left)}{same}{per}"
    by = _product(others) if len(others) == 1 else f"({_product(others)})"
    return f"{head}: -1 = {_product(left)} / {by} = {inferred} ({total}{per})"


def flatten_explain(note: OpNote, batch=None) -> str:
    (x,), s, e = note.operands, note.dim, note.end_dim
    head = f"flatten dims {s}..{e}: {shape_str(x)} -> {shape_str(note.result)}"
    if s >= e:
        return f"{head}: one dim, nothing merged"
    return f"{head}: {_product(x[s:e + 1])} = {_dim(note.result[s])}"


def cat_explain(note: OpNote, batch=None) -> str:
    d, out = note.dim, note.result
    sizes = [_dim(s[d]) for s in note.operands]
    if len(sizes) == 1:
        return f"cat on dim {d}: {sizes[0]} (one tensor) -> {shape_str(out)}"
    return f"cat on dim {d}: {' + '.join(sizes)} = {_dim(out[d])} -> {shape_str(out)}"


def stack_explain(note: OpNote, batch=None) -> str:
    n = len(note.operands)
    return f"stack on new dim {note.dim}: {n} tensor{'s' if n != 1 else ''} of {shape_str(note.operands[0])} -> " \
           f"{shape_str(note.result)}"


def broadcast_explain(note: OpNote, batch=None) -> str:
    """Two shapes aligned on the right, a missing dim read as 1, and each dim where one side's 1 stretches."""
    (a, b), out, label = note.operands, note.result, note.label
    sa, sb = shape_str(a), shape_str(b)
    said = f"{sa}{label}({sb})" if label.startswith(".") else f"{label}({sa}, {sb})" if label[0].isalpha() \
        else f"{sa} {label} {sb}"
    n = len(out)
    padded = [[1] * (n - len(s)) + [d.value for d in s] for s in (a, b)]
    parts = [f"{shape_str(s)} acts as {shape_str(p)}" for s, p in zip((a, b), padded) if len(s) < n]
    dims = [f"dim {i}: {dim_str(x)} vs {dim_str(y)} -> {_dim(out[i])}"
            for i, (x, y) in enumerate(zip(*padded)) if x != y]
    if dims:
        parts.append(", ".join(dims))
    return f"broadcast: {said} -> {shape_str(out)} ({'; '.join(parts)})"


NOTE_TEXTS = {"matmul": matmul_explain, "view": view_explain, "flatten": flatten_explain, "cat": cat_explain,
              "stack": stack_explain, "broadcast": broadcast_explain}  # OpNote.kind -> its words


def _dim(d) -> str:
    return dim_str(d.value)


def _product(dims) -> str:
    """``64*4*4``; a dim of several terms in parentheses: ``B*(T // 2)``."""
    if len(dims) == 1:
        return _dim(dims[0])
    return "*".join(t if re.fullmatch(r"\w+", t) else f"({t})" for t in map(_dim, dims)) or "1"


def _batch(graph: ModelGraph):
    """The model's batch size: its first input's leading dim (a symbol such as B, or a number)."""
    first = graph.inputs[0][1].shape if graph.inputs else ()
    return first[0].value if first else None


def _wrapped(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``, continued under the text after its first ``: ``, broken after
    a clause (``,``, ``;``, ``:``) where one ends late enough in the line; a shape is never split."""
    head = text.index(": ") + 2 if ": " in text else 0
    words = re.findall(r"(?:[^\s\[]*\[[^\]]*\])+[^\s\[]*|\S+", text)
    lines, line = [], [words[0]]
    for w in words[1:]:
        if len(" ".join(line)) + 1 + len(w) <= width - (head if lines else 0):
            line.append(w)
            continue
        cut = max((i for i in range(1, len(line) + 1) if line[i - 1][-1] in ",;:"), default=len(line))
        if len(" ".join(line[:cut])) < width // 2:
            cut = len(line)  # no clause ends late enough: break between words
        lines.append(line[:cut])
        line = line[cut:] + [w]
    lines.append(line)
    return [(" " * head if i else "") + " ".join(words) for i, words in enumerate(lines)]


def _flow(node: ModuleNode) -> str:
    if not node.inputs and not node.outputs:
        return ""
    ins = ", ".join(shape_str(t.shape) for t in node.inputs)
    outs = ", ".join(shape_str(t.shape) for t in node.outputs)
    return f"{ins} -> {outs}"


def _instance_paths(cls: ClassDef) -> list[str]:
    return [""] if cls.kind == "model" else list(cls.used_by)


def _child_path(instance: str, name: str) -> str:
    return f"{instance}.{name}" if instance else name


def _instances(cls: ClassDef, graph: ModelGraph) -> list[ModuleNode]:
    by_path = {n.path: n for n in graph.root.walk()}
    return [by_path[p] for p in _instance_paths(cls) if p in by_path]


def _paths(nodes: list[ModuleNode]) -> str:
    paths = [n.path for n in nodes]
    paths = [_shown(p) for p in paths]
    return ", ".join(paths) if len(paths) <= 4 else f"{paths[0]}, {paths[1]}, ..., {paths[-1]}"


def _shown(path: str) -> str:
    """A module path as a docstring or comment may hold it: a child named by a string ("block1-0") may hold
    a quote, a backslash or a letter beyond ASCII, which are escaped as in a string literal, so that no name
    can end the docstring it is shown in."""
    return string_literal(path)[1:-1]


def _varies(cls: ClassDef, graph: ModelGraph) -> bool:
    """Whether the comments would differ between the class's uses."""
    by_path = {n.path: n for n in graph.root.walk()}
    batch = _batch(graph)
    seen = set()
    for k, path in enumerate(_instance_paths(cls)):
        lines = cls.instances[k] if k < len(cls.instances) else []
        texts = [note_text(n, batch) for ln in lines for notes in [ln.notes] + ln.more_notes for n in notes]
        for ln in cls.init_lines:
            if ln.stmt.kind == "setattr":
                node = by_path.get(_child_path(path, ln.stmt.name))
                if node is not None:
                    texts.extend(_all_descriptions(node))
        if cls.super_init is not None and path in by_path:  # a block `= Sequential(...)`: its own children
            for child in by_path[path].children:
                texts.extend(_all_descriptions(child))
        seen.add(tuple(texts))
    return len(seen) > 1


def _all_descriptions(node: ModuleNode) -> list[str]:
    out = list(describe(node))
    if node.kind in ("sequential", "modulelist", "moduledict"):
        for c in node.children:
            out.extend(_all_descriptions(c))
    return out
