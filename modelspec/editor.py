"""What an editor asks of a spec: what the text under the cursor is, what a name refers to, what may come next.

The language server (modelspec/lsp.py) is wiring; the language is known here,
as pure functions of a text and a place, with no protocol in them:

* `Analysis(text, path)`: one text of one document, read through the pipeline
  as `modelspec check` reads it: its diagnostics, its parse (what parsed, past
  a syntax error), its imports, and every model as far as it elaborated (the
  whole tree, or the modules built before its error). Each part is worked out
  once, when first asked, so a text is elaborated at most once however often
  the cursor hovers over it.
* `symbol_at` (the name under the cursor and what it stands for),
  `definition`, `completions` and `formatted`; what a hover says is
  modelspec/hover.py.

Places are the project's own, as in a `Span`: 1-based lines and columns
counted in code points. `TextIndex` turns them into the protocol's 0-based
positions counted in UTF-16 (or UTF-8, or UTF-32) code units, and back.

    >>> a = Analysis("const W = 4\\nmodel M(x: [B, W]) {\\n    fc = Linear(_, W)\\n}", "m.nnspec")
    >>> got = definition(a, 3, 20)
    >>> got.path, str(got.span)
    ('m.nnspec', '1:7')
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import SimpleNamespace
from typing import Any

from . import ir
from .budget import runs
from .diagnostics import Diagnostic, diagnose
from .elaborate import Elaborator
from .errors import Span, SpecError
from .fmt import format_spec
from .imports import resolve_imports
from .layers import CATALOG, REQUIRED
from .model import ClassDef, ModuleNode, TensorInfo
from .ops import F_NAMES, OPS, TORCH_NAMES, op_signature
from .parse import Parsed, parse_partial
from .pipeline import MAX_FILE_BYTES, SpecText, elaborate_parsed, read_spec, symbol_sizes
from .values import CONTAINERS

# ---------------------------------------------------------------- places
_LSP_BREAK = re.compile(r"\r\n|\r|\n")  # the protocol's line ends; the parser's are "\n" alone
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def units(text: str, encoding: str = "utf-16") -> int:
    """How many code units ``text`` takes in ``encoding`` ("utf-8", "utf-16" or "utf-32"), as positions count.

    >>> units("a😀b"), units("a😀b", "utf-8"), units("a😀b", "utf-32")
    (4, 6, 3)
    """
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # a lone surrogate, sent as \\ud800, is one unit


class TextIndex:
    """Where a text's lines start, as the parser counts them and as the protocol does.

    The two differ where a line ends in a lone ``\\r`` (the protocol ends the
    line there, the parser does not) and on the first line of a text that
    begins with a byte-order mark (the parser reads past it); going through
    offsets keeps every place exact in both.

    >>> ix = TextIndex("x = 1\\n\\"é😀\\" = Linear(3, 2)")
    >>> ix.lsp_position(ix.offset(2, 13), "utf-16")
    (1, 13)
    >>> ix.place(ix.lsp_offset(1, 13, "utf-16"))
    (2, 13)
    """

    def __init__(self, text: str):
        self.text = text
        self.skip = 1 if text.startswith("\ufeff") else 0
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.ends = [m.start() for m in re.finditer("\n", text)] + [len(text)]
        breaks = list(_LSP_BREAK.finditer(text))
        self.lsp_starts = [0] + [m.end() for m in breaks]
        self.lsp_ends = [m.start() for m in breaks] + [len(text)]

    def offset(self, line: int, column: int) -> int:
        """The offset of a 1-based place; a place past its line's end is that end."""
        i = min(max(line, 1), len(self.starts)) - 1
        start = self.starts[i] + (self.skip if i == 0 else 0)
        return max(start, min(start + column - 1, self.ends[i]))

    def place(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of an offset."""
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] - (self.skip if i == 0 else 0) + 1

    def span(self, start: int, end: int) -> Span:
        (line, column), (end_line, end_column) = self.place(start), self.place(end)
        return Span(line=line, column=column, end_line=end_line, end_column=end_column)

    def lsp_position(self, offset: int, encoding: str) -> tuple[int, int]:
        """The protocol's 0-based (line, character) of an offset."""
        i = bisect.bisect_right(self.lsp_starts, offset) - 1
        return i, units(self.text[self.lsp_starts[i]:min(offset, self.lsp_ends[i])], encoding)

    def lsp_offset(self, line: int, character: int, encoding: str) -> int:
        """The offset of the protocol's (line, character); past a line's end is its end, past the text its end."""
        if line >= len(self.lsp_starts):
            return len(self.text)
        at, used = self.lsp_starts[max(line, 0)], 0
        while at < self.lsp_ends[max(line, 0)] and used < character:
            used += units(self.text[at], encoding)
            at += 1
        return at

    def source(self, span: Span) -> str:
        return self.text[self.offset(span.line, span.column):self.offset(span.end_line, span.end_column)]


def contains(span: Span, line: int, column: int, end_inclusive: bool = False) -> bool:
    """Whether the place (line, column) lies in ``span`` (or, with ``end_inclusive``, just after it)."""
    end = (span.end_line, span.end_column)
    return (span.line, span.column) <= (line, column) and ((line, column) <= end if end_inclusive
                                                          else (line, column) < end)


def _key(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


# ---------------------------------------------------------------- one text, analysed
@dataclass
class Imports:
    """What a file's imports bring in, with where each name is defined, for go-to-definition and hover."""

    blocks: dict[str, ir.Block] = field(default_factory=dict)
    block_files: dict[str, str] = field(default_factory=dict)  # block name -> the file defining it
    consts: dict[str, tuple[str, ir.Const]] = field(default_factory=dict)  # const name -> (its file, the const)
    texts: dict[str, str] = field(default_factory=dict)  # every file read -> its text
    resolved: Any = None  # what modelspec.imports.resolve_imports found, as elaboration receives it


@dataclass
class ModelView:
    """One model of the file as far as it elaborated: the whole module tree, or the modules built before its
    error (``classes`` is then empty). Mult-adds are counted as `modelspec summary` counts them: at
    ``sizes`` (the batch at 1), each module's own times how often it runs (``runs``)."""

    name: str
    nodes: list[ModuleNode]  # parents first
    classes: list[ClassDef]
    inputs: list[tuple[str, TensorInfo]]
    sizes: dict[str, int]
    runs: dict[str, int]
    owners: dict[str, str]  # the path of a model or block instance -> the block (or model) whose body it runs
    failed: bool = False


class Analysis:
    """What the editor knows of one text of one document (``path``: its file, or a name standing for it)."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.index = TextIndex(text)

    @cached_property
    def too_big(self) -> bool:
        """Over the size every spec is held to: it gets its diagnostic, and nothing else is worked out."""
        return len(self.text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """What `modelspec check` says; a file of blocks and consts alone is a library, checked where it is
        imported (its own syntax errors are still said)."""
        if self.is_library:
            return []
        return diagnose(SpecText(self.text, self.path))

    @cached_property
    def parsed(self) -> Parsed | None:
        """The items that parsed (`parse_partial`), or None for a text over the size limit (or one the parser
        refuses whole: its diagnostic says why)."""
        if self.too_big:
            return None
        try:
            return parse_partial(self.text, self.path)
        except SpecError:
            return None

    @property
    def spec(self) -> ir.SpecFile | None:
        return self.parsed.spec if self.parsed is not None else None

    @cached_property
    def is_library(self) -> bool:
        """Blocks and consts, and no model: a file that others import."""
        p = self.parsed
        return p is not None and not p.errors and not p.spec.models() and any(
            not isinstance(i, ir.Import) for i in p.spec.items)

    @cached_property
    def imports(self) -> Imports:
        """The blocks and consts the imports bring in, each with its file; nothing where an import fails."""
        spec, out = self.spec, Imports()
        if spec is None or not any(isinstance(i, ir.Import) for i in spec.items):
            return out

        def read(source, *, same_file=None):
            got = read_spec(source, same_file=same_file)
            out.texts[os.fspath(source)] = got[0]
            return got

        try:
            found = resolve_imports(spec, self.text, read)
        except SpecError:
            return out
        out.resolved, out.blocks = found, dict(found.blocks)
        out.block_files = {name: where for name, (where, _) in found.sources.items()}
        for where, text in out.texts.items():
            for item in parse_partial(text, where).spec.items:
                if isinstance(item, ir.Const) and item.name in found.consts:
                    out.consts.setdefault(item.name, (where, item))
        return out

    @cached_property
    def models(self) -> list[ModelView]:
        """Every model that parsed, elaborated as far as it goes."""
        spec = self.spec
        if spec is None:
            return []
        views = []
        for m in spec.models():
            try:
                graph = elaborate_parsed(spec, self.text, self.path, model=m.name).graph
            except SpecError as err:
                built = list(getattr(err, "built", None) or [])
                if built:
                    inputs = [(t.source or f"input{i}", t) for i, t in enumerate(built[0].inputs)]
                    sizes = symbol_sizes(SimpleNamespace(inputs=inputs, symbols=getattr(err, "symbols", {})), 1)
                    views.append(_view(m.name, built, [], inputs, sizes, failed=True))
                continue
            views.append(_view(m.name, list(graph.root.walk()), graph.classes, list(graph.inputs),
                               symbol_sizes(graph, 1)))
        return views

    @cached_property
    def local_nodes(self) -> dict[tuple, list[tuple[ModelView, ModuleNode]]]:
        """The modules whose spans lie in this file, by span: one span, every instance made there."""
        local = {b.name for b in self.spec.blocks()} if self.spec is not None else set()
        out: dict[tuple, list] = {}
        for view in self.models:
            for node in view.nodes:
                owner = _owner(view, node.path)
                if node.span is not None and (owner == view.name or owner in local):
                    out.setdefault(_key(node.span), []).append((view, node))
        return out

    @cached_property
    def const_values(self) -> dict[str, Any]:
        """Every const's value, worked out as elaboration does (none where one of them fails)."""
        if self.spec is None:
            return {}
        try:
            consts = Elaborator(self.spec, imported=self.imports.resolved).state.consts
        except SpecError:
            return {}
        return {name: v.plain() for name, v in consts.items()}


def _view(name: str, nodes: list[ModuleNode], classes: list[ClassDef], inputs: list, sizes: dict,
          failed: bool = False) -> ModelView:
    """A model's view; a block instance's owner is its class's block (its type, before classes exist)."""
    owners = {n.path: n.type_name for n in nodes if n.kind == "block"}
    owners.update({path: c.block for c in classes if c.kind == "block" for path in c.used_by})
    owners[""] = name
    return ModelView(name, nodes, classes, inputs, sizes, runs(nodes), owners, failed)


def _owner(view: ModelView, path: str) -> str:
    """The block (or model) whose body made the module at ``path``: the file its span is in."""
    while path:
        path = path.rpartition(".")[0]
        if path in view.owners:
            return view.owners[path]
    return view.name


# ---------------------------------------------------------------- what is under the cursor
def word_at(analysis: Analysis, line: int, column: int) -> tuple[str, Span] | None:
    """The identifier at (or just before) the place, and its span."""
    text, at = analysis.text, analysis.index.offset(line, column)
    for m in _IDENT.finditer(text, max(0, at - 200), min(len(text), at + 200)):
        if m.start() <= at <= m.end():
            return m.group(), analysis.index.span(m.start(), m.end())
    return None


def chain_at(node, line: int, column: int) -> list:
    """The IR nodes around a place, outermost first: the item, its statement, ..., the innermost node."""
    out = []
    while True:
        inner = next((c for c in _children(node) if contains(c.span, line, column, end_inclusive=True)), None)
        if inner is None:
            return out
        out.append(inner)
        node = inner


def _children(node):
    for _, value in node:
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, ir.Node):
                yield v


def _walk(node):
    yield node
    for c in _children(node):
        yield from _walk(c)


@dataclass(frozen=True)
class Symbol:
    """What a name stands for, and where it is defined (``span`` None: in torch, not in a spec).

    ``kind``: layer, container, op, block, model, const, child, param, buffer, input (of a model or a
    forward), block_param, value (named in forward), loop (a loop's or comprehension's variable).
    """

    kind: str
    name: str
    node: Any = None  # the IR node that defines it, or the catalog entry (a Layer, an Op)
    path: str | None = None  # the file it is defined in
    span: Span | None = None  # the name's own span there
    owner: Any = None  # the block or model it belongs to
    use: Span | None = None  # the span of the name under the cursor


def symbol_at(analysis: Analysis, line: int, column: int) -> Symbol | None:
    """The name under the cursor and what it stands for, or None (nothing there, or an item that does not
    parse, where only a layer's name is still known)."""
    spec, word = analysis.spec, word_at(analysis, line, column)
    if spec is None or word is None:
        return None
    name, use = word
    chain = chain_at(spec, use.line, use.column)
    if not chain:  # outside every item that parsed: a layer is still known by its name
        return Symbol("layer", name, CATALOG[name], use=use) if name in CATALOG else None
    got = _declared(analysis, chain, name, use) or _attribute(chain, name, use) or _import_name(analysis, chain, name)
    if got is None and isinstance(chain[-1], ir.Name):
        got = resolve(analysis, chain, name, use)
    return None if got is None else replace(got, use=use)


def resolve(analysis: Analysis, chain: list, name: str, at: Span) -> Symbol | None:
    """What ``name``, read at ``at`` inside ``chain``, refers to: the innermost scope first, as elaboration
    looks it up (a comprehension's variable, forward's values and inputs, the body's children, the block's
    parameters or the model's inputs, the file's consts and blocks, the imported ones, the catalog)."""
    path, owner = analysis.path, chain[0]
    for node in reversed(chain):
        if isinstance(node, (ir.ListComp, ir.DictComp)) and node.var == name:
            return Symbol("loop", name, node, path, _name_span(analysis, node.span, name, after=" for "), owner)
    fwd = next((n for n in chain if isinstance(n, ir.Forward)), None)
    if fwd is not None:
        got = _in_forward(analysis, chain, fwd, name, at)
        if got is not None:
            return got
    for stmt in getattr(owner, "body", None) or []:
        if getattr(stmt, "name", None) == name and stmt.kind in ("child", "param", "buffer"):
            return Symbol(stmt.kind, name, stmt, path, _name_span(analysis, stmt.span, name), owner)
    for p in getattr(owner, "params", None) or getattr(owner, "inputs", None) or []:
        if p.name == name:
            kind = "block_param" if isinstance(p, ir.BlockParam) else "input"
            return Symbol(kind, name, p, path, _name_span(analysis, p.span, name), owner)
    return top_level(analysis, name)


def top_level(analysis: Analysis, name: str) -> Symbol | None:
    """A const, block or model of the file, an imported block or const, or a catalog entry."""
    for item in analysis.spec.items if analysis.spec is not None else []:
        if getattr(item, "name", None) == name and item.kind in ("const", "block", "model"):
            return Symbol(item.kind, name, item, analysis.path, _name_span(analysis, item.span, name), item)
    imports = analysis.imports
    if name in imports.blocks:
        where = imports.block_files.get(name)
        block = imports.blocks[name]
        return Symbol("block", name, block, where, _name_span_in(imports.texts.get(where), block.span, name), block)
    if name in imports.consts:
        where, const = imports.consts[name]
        return Symbol("const", name, const, where, _name_span_in(imports.texts.get(where), const.span, name), const)
    if name in CATALOG:
        return Symbol("layer", name, CATALOG[name])
    if name in CONTAINERS:
        return Symbol("container", name)
    return None


def _in_forward(analysis: Analysis, chain: list, fwd: ir.Forward, name: str, at: Span) -> Symbol | None:
    """A name forward binds: a loop's variable around the place, the last value assigned before it, or one
    of forward's inputs."""
    path, owner = analysis.path, chain[0]
    for node in reversed(chain):
        if isinstance(node, ir.For):
            target = next((t for t in _targets(node.target) if t.id == name), None)
            if target is not None:
                return Symbol("loop", name, node, path, target.span, owner)
    found = bindings_before(fwd, name, at)
    if found:
        return Symbol("value", name, found[-1][0], path, found[-1][1].span, owner)
    if name in fwd.params:
        return Symbol("input", name, fwd, path, _forward_param_span(analysis, fwd, name), owner)
    return None


def bindings_before(fwd: ir.Forward, name: str, at: Span) -> list[tuple[ir.Assign, ir.NameTarget]]:
    """The assignments of ``name`` that may give its value at ``at``, in source order: those that end before
    it (the last is the one a reader sees; a compile-time ``if`` may have run another), or the one whose
    target ``at`` is."""
    found = []
    for stmt, target in _bindings(fwd):
        if target.id != name:
            continue
        if contains(target.span, at.line, at.column):
            return [(stmt, target)]
        if (stmt.span.end_line, stmt.span.end_column) <= (at.line, at.column):
            found.append((stmt, target))
    return found


def _bindings(fwd: ir.Forward):
    """Every (assignment, name target) of a forward, loops' and ifs' bodies included, in source order."""
    for node in _walk(fwd):
        if isinstance(node, ir.Assign):
            for t in _targets(node.target):
                yield node, t


def _targets(target) -> list[ir.NameTarget]:
    if isinstance(target, ir.NameTarget):
        return [target]
    return [t for item in target.items for t in _targets(item)]


def _declared(analysis: Analysis, chain: list, name: str, use: Span) -> Symbol | None:
    """The place where a name is declared, when the cursor is on that name: a child's, a const's, a block's
    or model's own name, a parameter, an input, an assignment's target."""
    path, node, owner = analysis.path, chain[-1], chain[0]
    if isinstance(node, ir.NameTarget):
        fwd = next((n for n in chain if isinstance(n, ir.Forward)), None)
        stmt = next((n for n in reversed(chain) if isinstance(n, (ir.Assign, ir.For))), None)
        kind = "loop" if isinstance(stmt, ir.For) else "value"
        return Symbol(kind, name, stmt, path, node.span, owner) if fwd is not None and stmt is not None else None
    if isinstance(node, ir.Forward) and name in node.params and _forward_param_span(analysis, node, name) == use:
        return Symbol("input", name, node, path, use, owner)
    declares = getattr(node, "name", None) == name and node.kind in (
        "const", "block", "model", "child", "param", "buffer", "block_param", "model_input")
    if not declares or _name_span(analysis, node.span, name) != use:
        return None
    kind = {"block_param": "block_param", "model_input": "input"}.get(node.kind, node.kind)
    return Symbol(kind, name, node, path, use, owner)


def _attribute(chain: list, name: str, use: Span) -> Symbol | None:
    """``nn.Linear``, ``F.relu``, ``torch.cat``, ``x.view``: a layer or an operation named by an attribute."""
    node = chain[-1]
    if not isinstance(node, ir.Attribute) or node.attr != name or not contains(node.span, use.line, use.column,
                                                                               end_inclusive=True):
        return None
    if (use.end_line, use.end_column) != (node.span.end_line, node.span.end_column):
        return None  # the cursor is on the value before the dot
    dotted = _dotted(node.value)
    if dotted in ("nn", "torch.nn") and (name in CATALOG or name in CONTAINERS):
        return Symbol("layer", name, CATALOG[name]) if name in CATALOG else Symbol("container", name)
    if name in OPS:
        return Symbol("op", name, OPS[name], owner=dotted)
    return None


def _import_name(analysis: Analysis, chain: list, name: str) -> Symbol | None:
    """A name ``from "x.nnspec" import A, B`` brings in, with the cursor on it."""
    item = chain[0]
    if not isinstance(item, ir.Import) or name not in (item.names or []):
        return None
    return top_level(analysis, name)


def _dotted(node) -> str | None:
    if isinstance(node, ir.Name):
        return node.id
    if isinstance(node, ir.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _name_span(analysis: Analysis, span: Span, name: str, after: str = "") -> Span:
    """The span of the first ``name`` in ``span`` (after ``after``): where a statement names what it defines."""
    return _name_span_in(analysis.text, span, name, after, analysis.index) or span


def _name_span_in(text: str | None, span: Span, name: str, after: str = "", index: TextIndex | None = None):
    if text is None:
        return None
    index = index or TextIndex(text)
    start, end = index.offset(span.line, span.column), index.offset(span.end_line, span.end_column)
    if after:
        found = text.find(after, start, end)
        start = found + len(after) if found >= 0 else start
    m = re.compile(rf"(?<![\w\"']){re.escape(name)}(?![\w])").search(text, start, end)
    return index.span(m.start(), m.end()) if m else None


def _forward_param_span(analysis: Analysis, fwd: ir.Forward, name: str) -> Span:
    """Where ``forward(x, y)`` names an input: the IR keeps the names, the header's text their places."""
    ix = analysis.index
    start = ix.offset(fwd.span.line, fwd.span.column)
    close = analysis.text.find(")", start)
    header = Span(line=fwd.span.line, column=fwd.span.column, end_line=ix.place(close)[0],
                  end_column=ix.place(close)[1]) if close >= 0 else fwd.span
    return _name_span(analysis, header, name, after="(")


# ---------------------------------------------------------------- go to definition
@dataclass(frozen=True)
class Place:
    """A range in a file, in the project's places (1-based lines, code-point columns)."""

    path: str
    span: Span


START = Span(line=1, column=1, end_line=1, end_column=1)


def definition(analysis: Analysis, line: int, column: int) -> Place | None:
    """Where the name under the cursor is defined (a block, const, child, value, ... here or in an imported
    file), or the file an import's path names; None for a layer (it is torch's) or nothing known.

    >>> a = Analysis('block B(n) { fc = Linear(_, n) }\\nmodel M(x: [B, 4]) { b = B(2) }', "m.nnspec")
    >>> str(definition(a, 2, 26).span)
    '1:7'
    """
    if analysis.spec is None:
        return None
    target = _import_target(analysis, line, column)
    if target is not None:
        return Place(target, START)
    got = symbol_at(analysis, line, column)
    if got is None or got.span is None or got.path is None:
        return None
    return Place(got.path, got.span)


def _import_target(analysis: Analysis, line: int, column: int) -> str | None:
    """The file named by the import path under the cursor, when it exists."""
    item = next((i for i in analysis.spec.items if isinstance(i, ir.Import) and contains(i.span, line, column)), None)
    if item is None:
        return None
    ix = analysis.index
    start = ix.offset(item.span.line, item.span.column)
    m = re.compile(r"([\"'])(.*?)\1").search(analysis.text, start, ix.offset(item.span.end_line, item.span.end_column))
    if m is None or not m.start() <= ix.offset(line, column) <= m.end():
        return None
    here = os.path.dirname(analysis.path) if os.path.isabs(analysis.path) else os.path.dirname(
        os.path.abspath(analysis.path))
    target = os.path.normpath(os.path.join(here, item.path))
    return target if os.path.isfile(target) else None


# ---------------------------------------------------------------- completion
@dataclass(frozen=True)
class Completion:
    """One suggestion: ``kind`` is argument, value, child, layer, block, const, function or keyword."""

    label: str
    kind: str
    detail: str = ""
    doc: str = ""
    rank: int = 5  # lower first: the arguments of the call being written, then the names in scope, ...


_NAMESPACES = {
    "nn": sorted([*CATALOG, *CONTAINERS]), "torch.nn": sorted([*CATALOG, *CONTAINERS]),
    "F": sorted(F_NAMES), "nn.functional": sorted(F_NAMES), "torch.nn.functional": sorted(F_NAMES),
    "torch": sorted(TORCH_NAMES),
}
_KEYWORDS = {
    "top": ("model", "block", "const", "import", "from", "train"),
    "body": ("forward", "param", "buffer", "if", "True", "False", "None"),
    "forward": ("return", "for", "in", "if", "else", "and", "or", "not", "True", "False", "None"),
}
# A line that begins a top-level item, as parse.py resumes at one past a syntax error.
_ITEM = re.compile(r"^(model|block|const|import|from|train)\b", re.M)
_LEXEMES = re.compile(r""""(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|#[^\n]*|[()\[\]{}]""")
_CHILD = re.compile(r"^[ \t]*(?:param\s+|buffer\s+)?([A-Za-z_]\w*(?:\s*,\s*\(?\s*[A-Za-z_]\w*\s*\)?)*)\s*[:=](?!=)",
                    re.M)
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)\s*$")


def completions(analysis: Analysis, line: int, column: int) -> list[Completion]:
    """What may be written at the place, read from the text itself, so that a half-written line (which does
    not parse) still gets them: after ``nn.``, ``F.`` or ``torch.`` their layers and functions; inside a
    call of a layer, block or function, its argument names not given yet; elsewhere the names in scope,
    the file's and the imported blocks and consts, the layers and the keywords.

    >>> labels = [c.label for c in completions(Analysis("model M(x: [B, 4]) {\\n  fc = nn.Lin", "m"), 2, 14)]
    >>> "Linear" in labels
    True
    """
    if analysis.too_big:
        return []
    text, at = analysis.text, analysis.index.offset(line, column)
    start = at
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_") and text[start - 1].isascii():
        start -= 1
    item = _item_start(text, start)
    lexed = _lex(text, item, start)
    if lexed is None:
        return []  # in a string or a comment
    before = text[text.rfind("\n", 0, start) + 1:start]
    dotted = re.search(r"([A-Za-z_][\w.]*)\.\s*$", before)
    if dotted is not None:
        return [_named(n, dotted.group(1)) for n in _NAMESPACES.get(dotted.group(1), ())]
    out = []
    call = lexed[-1] if lexed and lexed[-1][0] == "(" else None
    if call is not None:
        out += _arguments(analysis, text, call[1], start)
    where = "top" if not lexed else "forward" if _in_forward_text(text, item, lexed) else "body"
    if where != "top":
        out += _scope_names(analysis, text, item, start)
        out += [_named(n, "") for n in sorted([*CATALOG, *CONTAINERS])]
        out += [Completion(n, "function", f"{n}.", rank=4) for n in ("nn", "F", "torch")]
    out += [Completion(k, "keyword", rank=6) for k in _KEYWORDS[where]]
    seen, unique = set(), []
    for c in out:
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique


def _item_start(text: str, at: int) -> int:
    """Where the top-level item around ``at`` begins: the last line before it that begins one."""
    found = 0
    for m in _ITEM.finditer(text, 0, at):
        found = m.start()
    return found


def _lex(text: str, start: int, end: int) -> list[tuple[str, int]] | None:
    """The brackets open at ``end`` (each with where it stands), lexing from ``start``; None inside a string
    or a comment."""
    stack: list[tuple[str, int]] = []
    for m in _LEXEMES.finditer(text, start, end):
        tok = m.group()
        if tok[0] in "\"'#":
            if m.end() >= end and (tok[0] == "#" or len(tok) < 2 or tok[-1] != tok[0]):
                return None
            continue
        if tok in "([{":
            stack.append((tok, m.start()))
        elif stack:
            stack.pop()
    return stack


def _in_forward_text(text: str, item: int, open_brackets: list) -> bool:
    return any(b == "{" and re.search(r"forward\s*\([^)]*\)\s*$", text[item:at]) for b, at in open_brackets)


def _named(name: str, namespace: str) -> Completion:
    """A layer, container or function, as a completion with its signature."""
    if name in CATALOG and namespace in ("", "nn", "torch.nn"):
        layer = CATALOG[name]
        return Completion(name, "layer", layer_signature(layer), layer.doc, rank=3)
    if name in CONTAINERS and namespace in ("", "nn", "torch.nn"):
        return Completion(name, "layer", f"nn.{name}", "a container of modules", rank=3)
    op = OPS[name]
    return Completion(name, "function", op_call(op, f"{namespace}.{name}"), op.doc, rank=3)


def _arguments(analysis: Analysis, text: str, paren: int, at: int) -> list[Completion]:
    """The arguments of the call whose ``(`` is at ``paren`` that are not given yet, as ``name=``; only where
    an argument begins."""
    m = _CALLEE.search(text, 0, paren)
    if m is None:
        return []
    callee = m.group(1).split(".")
    pieces = _top_level_pieces(text[paren + 1:at])
    if pieces[-1].strip():
        return []  # inside an argument's value
    given = {p.split("=", 1)[0].strip() for p in pieces[:-1] if re.match(r"\s*\w+\s*=(?!=)", p)}
    positional = sum(1 for p in pieces[:-1] if not re.match(r"\s*\w+\s*=(?!=)", p))
    params = _parameters(analysis, callee)
    out = []
    for i, (name, detail, keyword_only) in enumerate(params):
        if name in given or (i < positional and not keyword_only):
            continue
        out.append(Completion(f"{name}=", "argument", detail, rank=0))
    return out


def _parameters(analysis: Analysis, callee: list[str]) -> list[tuple[str, str, bool]]:
    """(name, what it takes, keyword-only) of each parameter of a layer, block or function."""
    name, namespace = callee[-1], ".".join(callee[:-1])
    if name in CATALOG and namespace in ("", "nn", "torch.nn"):
        return [(a.name, a.type.describe + ("" if a.default is REQUIRED else f", default {a.default!r}")
                 + (", or _ to infer it" if a.infer is not None else ""), a.kw_only) for a in CATALOG[name].args]
    got = top_level(analysis, name) if not namespace else None
    if got is not None and got.kind == "block":
        return [(p.name, "" if p.default is None else f"default {source_of(analysis, got, p.default)}", False)
                for p in got.node.params]
    if name in OPS and (namespace in _NAMESPACES or not namespace):
        star, out = False, []
        for n, default in OPS[name].params:
            star |= n.startswith("*")
            if not n.startswith("*") and n != "input":
                out.append((n, "" if default is None or not hasattr(default, "value") else
                            f"default {default.value!r}", star))
        return out
    return []


def source_of(analysis: Analysis, symbol: Symbol, node) -> str:
    """The text of ``node``, in the file ``symbol`` is defined in (this one, or an imported one)."""
    text = analysis.text if symbol.path in (None, analysis.path) else analysis.imports.texts.get(symbol.path)
    if text is None:
        return ""
    return (analysis.index if text is analysis.text else TextIndex(text)).source(node.span)


def _top_level_pieces(args: str) -> list[str]:
    """A call's argument text split at its own commas (not those inside brackets or strings)."""
    pieces, depth, last = [], 0, 0
    for m in re.finditer(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[()\[\]{},]""", args):
        tok = m.group()
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth -= 1
        elif tok == "," and depth == 0:
            pieces.append(args[last:m.start()])
            last = m.end()
    return pieces + [args[last:]]


def _scope_names(analysis: Analysis, text: str, item: int, at: int) -> list[Completion]:
    """The names written so far in the item around the place (children, values, parameters, inputs), then the
    file's consts and blocks and the imported ones; read from the text, which need not parse."""
    out = []
    header = re.match(r"(model|block)\s+\w+\s*\(([^)]*)\)", text[item:at])
    if header is not None:  # a block's parameters, a model's inputs (not the symbols of their shapes)
        for piece in _top_level_pieces(header.group(2)):
            m = _IDENT.match(piece.strip())
            if m is not None:
                out.append(Completion(m.group(), "value", "parameter" if header.group(1) == "block" else "input",
                                      rank=1))
    for m in _CHILD.finditer(text, item + (header.end() if header else 0), at):
        end = text.find("\n", m.end())
        rest = text[m.end():end if end >= 0 else len(text)].strip()
        callee = _IDENT.match(rest.removeprefix("nn."))
        module = callee is not None and (callee.group() in CATALOG or callee.group() in CONTAINERS)
        for name in _IDENT.findall(m.group(1)):
            if name not in ("param", "buffer"):
                out.append(Completion(name, "child" if module else "value", rest[:60], rank=1))
    for m in re.finditer(r"forward\s*\(([^)]*)\)|for\s+([\w\s,()]+?)\s+in\b", text[item:at]):
        for name in _IDENT.findall(m.group(1) or m.group(2) or ""):
            out.append(Completion(name, "value", "input" if m.group(1) is not None else "loop variable", rank=1))
    out.reverse()  # the nearest first, where a name is written twice
    for kind, name in re.findall(r"^(const|block)\s+([A-Za-z_]\w*)", text, re.M):
        out.append(Completion(name, kind, f"{kind} {name}", rank=2))
    imports = analysis.imports if analysis.spec is not None else Imports()
    out += [Completion(n, "block", f"block {n}", rank=2) for n in imports.blocks]
    out += [Completion(n, "const", f"const {n}", rank=2) for n in imports.consts]
    return out


# ---------------------------------------------------------------- signatures
def layer_signature(layer) -> str:
    """How a layer is called, as torch spells it.

    >>> layer_signature(CATALOG["Linear"])
    'nn.Linear(in_features, out_features, bias=True)'
    """
    parts, star = [], False
    for a in layer.args:
        if a.kw_only and not star:
            parts.append("*")
            star = True
        parts.append(a.name if a.default is REQUIRED else f"{a.name}={a.default!r}")
    return f"nn.{layer.name}({', '.join(parts)})"


def op_call(op, spelled: str, method: bool = False) -> str:
    """How an operation is called: ``F.relu(input, inplace=False)``."""
    return op_signature(op, spelled, method).removeprefix("the call is ")


# ---------------------------------------------------------------- formatting
def formatted(analysis: Analysis) -> str | None:
    """The text as `modelspec fmt` prints it, or None where it cannot (a syntax error, a text over the limit).

    >>> formatted(Analysis("model M(x:[B,3]){fc=Linear(_,2)}", "m.nnspec"))
    'model M(x: [B, 3]) {\\n    fc = Linear(_, 2)\\n}\\n'
    """
    if analysis.too_big:
        return None
    try:
        return format_spec(analysis.text, analysis.path)
    except SpecError:
        return None
