"""Surface IR + comments -> canonical spec text: `modelspec fmt`.

`format_spec(text)` parses the text, prints the IR back in one canonical
style and puts every comment back beside the code it was beside. Like
*black*, the output is idempotent and means what the input meant:
`parse(format_spec(x))` is `parse(x)` but for spans. `format_file(path)`
does the same to a file, in place.

The style: 4-space indentation, one statement per line, a blank line between
top-level items (blank lines inside a body are kept, one at most), spaces
around `=` and binary operators but not in `k=v`, double-quoted strings, only
the parentheses precedence needs. A bracketed list that does not fit in
`LINE_WIDTH` columns, holds a comment, or ends with a comma in the source
(black's "magic trailing comma") is exploded one item per line, each item
followed by a comma.

Layout works on *sequences*: a list of text pieces and `Group`s (a bracketed,
comma-separated list). A sequence that fits goes on one line; otherwise its
first group that must explode, or else its last group whose opening line
fits, is exploded (black's right-hand split), recursively.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from pathlib import Path

from . import ir
from .pipeline import read_spec
from .parse import _KEYWORDS, parse_with_comments
from .printer import _PAIRS, INDENT, PREC_ARITH, PREC_OR, ExprPrinter, Group, Line, hard, layout

# The grammar's FLOAT and INT.
_NUMBER = (r"(?:[0-9][0-9_]*)?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*\.(?:[eE][-+]?[0-9]+)?"
           r"|[0-9][0-9_]*[eE][-+]?[0-9]+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*")
_SIGNED_NUMBER = re.compile(rf"[-+\s]*({_NUMBER})")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the grammar's NAME
# What may hold a bracket without being one: strings and comments.
_LEXEMES = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[()\[\]{}]""")


def format_spec(text: str, path: str | None = None) -> str:
    """Spec text in canonical form, its comments kept; raises `SpecSyntaxError` if it does not parse.

    >>> print(format_spec("model M(x:[B,3]){fc=Linear(_,2) # out\\n}"), end="")
    model M(x: [B, 3]) {
        fc = Linear(_, 2)  # out
    }
    """
    text = text.removeprefix("\ufeff")
    spec, comments = parse_with_comments(text, path)
    source = _Source(text, comments)
    lines = _Printer(source).spec_fmt(spec)
    return _render(_place_comments(lines, source))


def format_file(path: str, *, write: bool = True) -> bool:
    """Format a spec file in place (or, with `write=False`, only look); whether its text changes.

    >>> format_file("specs/cnn.nnspec", write=False)
    False
    """
    text, _ = read_spec(Path(path))
    formatted = format_spec(text, path).encode("utf-8")
    changed = formatted != Path(path).read_bytes()  # bytes: a byte-order mark or CRLF lines are changes too
    if changed and write:
        Path(path).write_bytes(formatted)
    return changed


# ---------------------------------------------------------------- the source
class _Source:
    """The text being formatted: offsets of lines, brackets and comments, and its magic trailing commas."""

    def __init__(self, text: str, comments: list[tuple[int, int, str]]):
        self.text = text
        self.lines = text.split("\n")
        self.line_starts = [0]
        for line in self.lines[:-1]:
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        self.comments = [(self.offset(line, col), body, self.first_on_line(line, col)) for line, col, body in comments]
        self.comment_offsets = [c[0] for c in self.comments]
        self.match: dict[int, int] = {}  # offset of an opening bracket -> offset of its closing one
        self.code = list(text)  # the text with comments and the insides of strings blanked
        stack = []
        for m in _LEXEMES.finditer(text):
            token = m.group()
            if token[0] == "#":
                self.code[m.start():m.end()] = " " * len(token)
            elif token[0] in "\"'":
                self.code[m.start() + 1:m.end() - 1] = " " * (len(token) - 2)
            elif token in _PAIRS:
                stack.append(m.start())
            else:
                self.match[stack.pop()] = m.start()
        self.code = "".join(self.code)

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column - 1

    def start(self, node) -> int:
        return self.offset(node.span.line, node.span.column)

    def end(self, node) -> int:
        return self.offset(node.span.end_line, node.span.end_column)

    def first_on_line(self, line: int, column: int) -> bool:
        return not self.lines[line - 1][: column - 1].strip()

    def blank_before(self, offset: int) -> bool:
        """Whether what starts at `offset` opens its line and follows a blank line."""
        line = bisect.bisect_right(self.line_starts, offset)
        column = offset - self.line_starts[line - 1] + 1
        return line > 1 and self.first_on_line(line, column) and not self.lines[line - 2].strip()

    def opener(self, bracket: str, at: int) -> int:
        """The first `bracket` at or after offset `at`: where a list's items begin."""
        return self.code.index(bracket, at)

    def magic_comma(self, open_at: int) -> bool:
        """Whether the list that opens at `open_at` ends with a comma."""
        i = self.match[open_at] - 1
        while self.code[i].isspace():
            i -= 1
        return self.code[i] == ","

    def has_comment(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.comment_offsets, start)
        return i < len(self.comment_offsets) and self.comment_offsets[i] < end

    def slice(self, node) -> str:
        return self.text[self.start(node): self.end(node)]


# ---------------------------------------------------------------- IR -> lines
class _Printer(ExprPrinter):
    """One `<kind>_fmt` method per IR node kind: statements return lines, expressions sequences
    (those are `ExprPrinter`'s, the same codegen prints with)."""

    def __init__(self, source: _Source):
        self.src = source

    def group(self, open_at: int, items: list[list], spans: list[tuple[int, int]], one_tuple: bool = False) -> Group:
        close_at = self.src.match[open_at]
        bracket = self.src.text[open_at]
        # a one-tuple's comma is syntax, so only one already exploded in the source stays so
        magic = "\n" in self.src.text[open_at:close_at] if one_tuple else self.src.magic_comma(open_at)
        forced = bool(items) and (
            magic
            or self.src.has_comment(open_at, close_at)
            or any(hard(item) for item in items)
        )
        return Group(bracket, items, _PAIRS[bracket], spans, open_at, close_at, one_tuple, forced)

    def node_group(self, open_at: int, nodes: list, item_fmt, one_tuple: bool = False) -> Group:
        spans = [(self.src.start(n), self.src.end(n)) for n in nodes]
        return self.group(open_at, [item_fmt(n) for n in nodes], spans, one_tuple)

    # -- top level
    def spec_fmt(self, spec: ir.SpecFile) -> list[Line]:
        lines = []
        for before, item in zip([None, *spec.items], spec.items):
            item_lines = self.stmt_lines(item, 0)
            # a blank line between items; a run of imports or of consts may stay together
            item_lines[0].separate = before is not None and not (before.kind == item.kind in ("import", "const"))
            lines += item_lines
        return lines

    def stmt_lines(self, node, depth: int) -> list[Line]:
        lines = getattr(self, f"{node.kind}_fmt")(node, depth)
        lines[0].blank = self.src.blank_before(self.src.start(node))
        return lines

    def body_lines(self, head: list, node, depth: int, open_at: int, stmts: list) -> list[Line]:
        """`head { stmts }`; `head {}` when there is nothing inside, comments included."""
        start, close_at = self.src.start(node), self.src.match[open_at]
        if not stmts and not self.src.has_comment(open_at, close_at):
            return layout([*head, " {}"], depth, start, close_at + 1)
        lines = layout([*head, " {"], depth, start, open_at)
        lines += self.stmts_lines(stmts, depth + 1)
        lines.append(Line(depth, "}", close_at, close_at + 1, closer=True))
        return lines

    def stmts_lines(self, stmts: list, depth: int) -> list[Line]:
        lines = []
        for stmt, after in zip(stmts, [*stmts[1:], None]):
            stmt_lines = self.stmt_lines(stmt, depth)
            if after is not None and _needs_semicolon(stmt, after):
                stmt_lines[-1].text += ";"
            lines += stmt_lines
        return lines

    def import_fmt(self, node: ir.Import, depth: int) -> list[Line]:
        text = f"import {_string(node.path)}"
        if node.names is not None:
            text = f"from {_string(node.path)} import {', '.join(node.names)}"
        return [Line(depth, text, self.src.start(node), self.src.end(node))]

    def const_fmt(self, node: ir.Const, depth: int) -> list[Line]:
        return self.seq_lines([f"const {node.name} = ", *self.expr(node.value)], node, depth)

    def block_fmt(self, node: ir.Block, depth: int) -> list[Line]:
        params = self.src.opener("(", self.src.start(node))
        head = [f"block {node.name}", self.node_group(params, node.params, self.block_param_fmt)]
        if node.value is not None:  # block Name(p) = Sequential(...)
            return self.seq_lines([*head, " = ", *self.expr(node.value)], node, depth)
        return self.body_lines(head, node, depth, self.src.opener("{", self.src.match[params]), node.body)

    def block_param_fmt(self, node: ir.BlockParam) -> list:
        return [node.name] if node.default is None else [f"{node.name}=", *self.expr(node.default)]

    def model_fmt(self, node: ir.Model, depth: int) -> list[Line]:
        inputs = self.src.opener("(", self.src.start(node))
        head = [f"model {node.name}", self.node_group(inputs, node.inputs, self.model_input_fmt)]
        return self.body_lines(head, node, depth, self.src.opener("{", self.src.match[inputs]), node.body)

    def train_fmt(self, node: ir.Train, depth: int) -> list[Line]:
        head = ["train" if node.model is None else f"train {node.model}"]
        return self.body_lines(head, node, depth, self.src.opener("{", self.src.start(node)), node.body)

    def train_setting_fmt(self, node: ir.TrainSetting, depth: int) -> list[Line]:
        return self.seq_lines([f"{node.name} = ", *self.expr(node.value)], node, depth)

    def train_target_fmt(self, node: ir.TrainTarget, depth: int) -> list[Line]:
        return self.seq_lines([f"target {node.name}: ", *self.tensor_type_fmt(node.type)], node, depth)

    def train_data_fmt(self, node: ir.TrainData, depth: int) -> list[Line]:
        return self.body_lines([node.name], node, depth, self.src.opener("{", self.src.start(node)), node.body)

    def model_input_fmt(self, node: ir.ModelInput) -> list:
        return [f"{node.name}: ", *self.tensor_type_fmt(node.type)]

    def tensor_type_fmt(self, node: ir.TensorType) -> list:
        return [node.dtype or "", self.node_group(self.src.opener("[", self.src.start(node)), node.dims, self.dim_fmt)]

    def dim_fmt(self, node) -> list:
        if isinstance(node, ir.SymDim):
            return [f"{node.name}={node.example}"]
        return self.expr(node, PREC_ARITH)

    # -- body
    def child_fmt(self, node: ir.Child, depth: int) -> list[Line]:
        # a name that is no identifier was written as a string ("block1-0"); the parser takes no other in quotes
        name = node.name if _NAME.fullmatch(node.name) and node.name not in _KEYWORDS else _string(node.name)
        if node.cond is None:
            return self.seq_lines([f"{name} = ", *self.expr(node.value)], node, depth)
        seq = [f"{name} = ", *self.expr(node.value, PREC_OR), " if ", *self.expr(node.cond, PREC_OR)]
        return self.seq_lines(seq, node, depth)

    def tie_fmt(self, node: ir.Tie, depth: int) -> list[Line]:
        return self.seq_lines([".".join(node.target) + " = ", *self.expr(node.value)], node, depth)

    def param_fmt(self, node: ir.Param | ir.Buffer, depth: int) -> list[Line]:
        seq = [f"{node.kind} {node.name}: ", *self.tensor_type_fmt(node.type)]
        if node.init is not None:
            seq += [" = ", *self.expr(node.init)]
        return self.seq_lines(seq, node, depth)

    buffer_fmt = param_fmt

    def forward_fmt(self, node: ir.Forward, depth: int) -> list[Line]:
        params = self.src.opener("(", self.src.start(node))
        close = self.src.match[params]
        spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", self.src.code[params:close])]
        spans = [(params + s, params + e) for s, e in spans]
        head = ["forward", self.group(params, [[p] for p in node.params], spans)]
        return self.body_lines(head, node, depth, self.src.opener("{", close), node.body)

    # -- forward
    def assign_fmt(self, node: ir.Assign, depth: int) -> list[Line]:
        target = _target(node.target, top=True)
        return self.seq_lines([f"{target} = ", *self.expr(node.value)], node, depth)

    def return_fmt(self, node: ir.Return, depth: int) -> list[Line]:
        seq = ["return"]
        for i, value in enumerate(node.values):
            seq += [", " if i else " ", *self.expr(value)]
        return self.seq_lines(seq, node, depth)

    def for_fmt(self, node: ir.For, depth: int) -> list[Line]:
        head = [f"for {_target(node.target, top=True)} in ", *self.expr(node.iter)]
        return self.body_lines(head, node, depth, self.src.opener("{", self.src.end(node.iter)), node.body)

    def call_stmt_fmt(self, node: ir.CallStmt, depth: int) -> list[Line]:
        return self.seq_lines(self.expr(node.call), node, depth)

    def if_fmt(self, node: ir.If, depth: int) -> list[Line]:
        head = ["if ", *self.expr(node.test)]
        body_open = self.src.opener("{", self.src.end(node.test))
        if not node.orelse:
            return self.body_lines(head, node, depth, body_open, node.body)
        body_close = self.src.match[body_open]
        else_open = self.src.opener("{", body_close + 1)
        else_close = self.src.match[else_open]
        lines = layout([*head, " {"], depth, self.src.start(node), body_open)
        lines += self.stmts_lines(node.body, depth + 1)
        lines.append(Line(depth, "} else {", body_close, else_open, closer=True))
        lines += self.stmts_lines(node.orelse, depth + 1)
        lines.append(Line(depth, "}", else_close, else_close + 1, closer=True))
        return lines

    def seq_lines(self, seq: list, node, depth: int) -> list[Line]:
        return layout(seq, depth, self.src.start(node), self.src.end(node))

    SPEC_SUBSCRIPTS = True

    # -- expressions: `ExprPrinter`'s methods, with the source's brackets and spellings
    def brackets(self, node, bracket: str, items: list, item_fmt, one_tuple: bool = False) -> Group:
        if node.kind == "call":
            open_at = self.src.opener("(", self.src.end(node.func))
        elif node.kind == "subscript":
            open_at = self.src.opener("[", self.src.end(node.value))
        else:
            open_at = self.src.start(node)
        if node.kind == "dict":
            spans = [(self.src.start(k), self.src.end(v)) for k, v in items]
        else:
            spans = [(self.src.start(n), self.src.end(n)) for n in items]
        return self.group(open_at, [item_fmt(n) for n in items], spans, one_tuple)

    def constant_text(self, node) -> str:
        return _constant(node.value, self.src.slice(node))


def _needs_semicolon(stmt, after) -> bool:
    """Whether two forward statements would run together without a `;` (newlines mean nothing)."""
    ends_in_expr = isinstance(stmt, ir.Assign) or (isinstance(stmt, ir.Return) and stmt.values)
    if ends_in_expr and isinstance(after, ir.If):
        return True  # `x = a` then `if c {` reads as the start of `a if c else ...`
    return isinstance(stmt, ir.Return) and not stmt.values and isinstance(after, ir.Assign)


def _target(node, top: bool = False) -> str:
    if isinstance(node, ir.NameTarget):
        return node.id
    names = ", ".join(_target(t) for t in node.items) + ("," if len(node.items) == 1 else "")
    return names if top else f"({names})"


def _constant(value, source: str) -> str:
    """A literal as the source wrote it when that was a plain number (`1e-5`, `0xFF`, `1_000`), else Python's."""
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    m = _SIGNED_NUMBER.fullmatch(source)
    if m:  # the same token, so the same magnitude; the sign is the value's (`-0` is 0)
        number = m.group(1)
        number = number[:2].lower() + number[2:] if number[:2] in ("0X", "0x") else number.lower()
        return ("-" if math.copysign(1, value) < 0 else "") + number
    if isinstance(value, float) and math.isinf(value):
        return "-1e999" if value < 0 else "1e999"  # the only literal spelling of infinity
    return repr(value)


def _string(value: str) -> str:
    """A double-quoted literal: Python's repr with its quotes swapped when it chose single ones."""
    text = repr(value)
    if text[0] == '"':
        return text
    swap = {'"': '\\"', "\\'": "'"}
    return '"' + re.sub(r"\\.|\"", lambda m: swap.get(m.group(), m.group()), text[1:-1]) + '"'


# ---------------------------------------------------------------- comments and the final text
def _place_comments(lines: list[Line], src: _Source) -> list[Line]:
    """Put each comment back: after the code on its line, or on its own line before what follows it."""
    # Lines are in source order but for a few reorderings (keywords print after positional arguments), so
    # search the running maximum of ends and the running minimum of starts from the right, both sorted.
    max_end = list(itertools.accumulate((ln.end for ln in lines), max))
    min_start = list(itertools.accumulate((ln.start for ln in reversed(lines)), min))[::-1]
    before: dict[int, list[Line]] = {}
    for offset, text, own_line in src.comments:
        blank = own_line and src.blank_before(offset)
        if own_line:
            i = bisect.bisect_left(max_end, offset)
        else:  # the code before it on its line is on the last line that starts before it
            i = bisect.bisect_right(min_start, offset) - 1
            if not lines[i].trailing:
                lines[i].trailing = text
                continue
            i += 1  # two comments would run together as one: the second goes on its own line below
        follower = lines[i] if i < len(lines) else None
        depth = follower.depth + follower.closer if follower else 0
        comment = Line(depth, text, offset, offset, comment=True, blank=blank)
        if follower is not None and follower.separate:
            comment.separate, follower.separate = True, False
        before.setdefault(i, []).append(comment)
    placed = []
    for i, line in enumerate([*lines, None]):
        placed += before.get(i, [])
        if line is not None:
            placed.append(line)
    return placed


def _render(lines: list[Line]) -> str:
    out: list[str] = []
    opens = False  # the previous line opens a body or a bracket: no blank line after it
    for ln in lines:
        if out and (ln.separate or (ln.blank and not opens)):
            out.append("")
        text = INDENT * ln.depth + ln.text
        if ln.trailing:
            text += "  " + ln.trailing
        out.append(text)
        opens = not ln.comment and ln.text.endswith(("{", "(", "["))
    return "\n".join(out) + "\n" if out else ""

