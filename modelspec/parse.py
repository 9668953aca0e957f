"""Text -> surface IR: the Lark LALR front end.

`parse(text, path)` returns an `ir.SpecFile` or raises `SpecSyntaxError`
pointing at the offending character, with the syntax errors found past it,
where parsing resumes at the next top-level item, in its ``more``;
`parse_partial` also returns the items that parsed. No Lark type leaks out
of this module.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import keyword
import json
import re
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ir
from .errors import MAX_ERRORS, Span, SpecError, SpecLimitError, SpecSyntaxError, close_names, did_you_mean
from .names import is_attribute_name, name_problem

# How expected terminals read in a message.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "INFER": "_",
    "IF_STMT": "'if'",
    "TRAIN": "'train'",
    "$END": "end of file",
}


def grammar_text() -> str:
    """The grammar, grammar/nnspec.lark: inside the package when installed from the wheel (pyproject.toml maps
    grammar/ to modelspec/grammar/ there), else beside the package in a checkout or an editable install.

    >>> grammar_text().startswith("// nnspec.lark")
    True
    """
    shipped = resources.files("modelspec").joinpath("grammar", "nnspec.lark")
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammar" / "nnspec.lark").read_text(encoding="utf-8")


class StatementIf:
    """Tells an `if` statement in forward from a conditional expression on the line before.

    Newlines mean nothing to the grammar, so after ``y = fc(x)`` an ``if flag {``
    would read as the start of ``fc(x) if flag else ...``. An `if` opens a
    statement (it becomes ``IF_STMT``) right after ``;``, after the ``{`` or
    ``}`` of a body (not of a dict), or when it is the first token on its line
    and that line ends with ``{``. (A conditional child, ``down = Conv2d(...)``
    then ``if stride != 1`` on the next line, does not end in ``{``.)

    It also gives the name ``train`` the type ``TRAIN`` where it begins a top-level item, outside every
    brace: a train section, without making ``train`` a reserved word (a child may be named train).
    """

    always_accept = ()
    # after these a `{` opens a dict, not a body
    DICT_AFTER = {"LPAR", "LSQB", "COMMA", "EQUAL", "COLON", "PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT",
                  "AT", "AMP", "PIPE", "CARET", "TILDE", "RETURN", "IN", "NOT", "AND", "OR", "IF", "IF_STMT",
                  "LESSTHAN", "MORETHAN", "IS"}

    def process(self, stream):
        previous = before = None
        braces: list[bool] = []  # for each open `{`: whether it opens a body
        closed_body = False  # the previous token is a `}` that closed a body
        pending: list[Token] = []
        for tok in stream:
            if pending and tok.line != pending[0].line:
                yield from self._decide(pending)
                pending = []
            if tok.type == "LBRACE":
                kind = previous.type if previous is not None else None
                dict_else = kind == "ELSE" and (before is None or before.type != "RBRACE")
                operator = kind is not None and kind.startswith("__ANON")  # ==, **, ... (unnamed in the grammar)
                braces.append(not (kind in self.DICT_AFTER or operator or kind is None or dict_else))
            after_body = previous is not None and (
                previous.type == "SEMICOLON" or (previous.type == "LBRACE" and braces[-1:] == [True])
                or (previous.type == "RBRACE" and closed_body))
            if tok.type == "RBRACE":
                closed_body = braces.pop() if braces else False
            if pending:
                pending.append(tok)
            elif tok.type == "IF" and after_body:
                yield Token.new_borrow_pos("IF_STMT", tok, tok)
            elif tok.type == "IF" and (previous is None or previous.end_line < tok.line):
                pending = [tok]
            elif tok.type == "NAME" and tok == "train" and not braces and (
                    previous is None or previous.type in ("RBRACE", "SEMICOLON") or previous.end_line < tok.line):
                yield Token.new_borrow_pos("TRAIN", tok, tok)  # a train section: no reserved word elsewhere
            else:
                yield tok
            previous, before = tok, previous
        yield from self._decide(pending)

    @staticmethod
    def _decide(line: list[Token]):
        if line and line[-1].type == "LBRACE":
            line[0] = Token.new_borrow_pos("IF_STMT", line[0], line[0])
        yield from line


# ---------------------------------------------------------------- the parser and its tables
# How the LALR tables are built. Lark keeps these in the tables; the options it takes when it loads them
# (postlex, propagate_positions, lexer_callbacks, ...) are given to each parser instead: see _new_parser().
_TABLE_OPTIONS = {"parser": "lalr", "lexer": "basic", "maybe_placeholders": True}
TABLES_NAME = "nnspec.tables.json"


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return _new_parser()


@lru_cache(maxsize=1)
def _comment_parser() -> Lark:
    # the same tables as _parser(), plus a COMMENT hook (lexer callbacks are given at load time)
    return _new_parser(lexer_callbacks={"COMMENT": lambda tok: _COMMENTS.get().append(tok)})


def _new_parser(**options) -> Lark:
    """A parser loaded from the shipped tables (grammar/nnspec.tables.json, ~25 ms); built from the grammar
    (~0.2 s) where they are missing, stale or do not load.

    Nothing is cached at run time: lark's own cache is a pickle, and a pickle read from a folder that another
    user can write (the temporary folder, where a cache would fall back) runs their code. The tables are JSON,
    which holds data and nothing else, generated ahead of time (`make tables`) and shipped with the grammar.
    """
    options = {"postlex": StatementIf(), "propagate_positions": True, **options}
    tables = _shipped_tables()
    if tables is not None:
        try:
            # _load_from_dict is how lark's standalone tool loads tables it serialized: the same dicts lark's
            # cache pickles, here from JSON; it takes only the options that may change at load time
            return Lark._load_from_dict(tables["data"], tables["memo"], **options)
        except Exception:  # tables that this lark reads otherwise: the grammar still builds the parser
            pass
    return Lark(grammar_text(), **_TABLE_OPTIONS, **options)


def _tables_file():
    """grammar/nnspec.tables.json, where grammar_text() finds the grammar: in the package, else beside it."""
    shipped = resources.files("modelspec").joinpath("grammar", TABLES_NAME)
    if shipped.is_file():
        return shipped
    return Path(__file__).resolve().parent.parent / "grammar" / TABLES_NAME


def _grammar_sha256() -> str:
    return hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()


def _shipped_tables() -> dict | None:
    """The shipped tables; None where they are missing or unreadable, or were made from another grammar (one
    edited in a checkout since `make tables`) or by another version of lark."""
    try:
        tables = json.loads(_tables_file().read_text(encoding="utf-8"), object_hook=_from_json)
    except (OSError, ValueError):
        return None
    if not isinstance(tables, dict) or tables.get("grammar_sha256") != _grammar_sha256() \
            or tables.get("lark") != lark.__version__:
        return None
    return tables


def write_tables(path: str | Path | None = None) -> Path:
    """Generate the LALR tables of grammar/nnspec.lark into `path` (default: grammar/nnspec.tables.json
    beside the package, in the checkout); `make tables` runs this after an edit of the grammar."""
    from lark.grammar import Rule
    from lark.lark import _LOAD_ALLOWED_OPTIONS  # what lark's own cache leaves out too
    from lark.lexer import TerminalDef

    parser = Lark(grammar_text(), **_TABLE_OPTIONS, postlex=StatementIf(), propagate_positions=True)  # as loaded
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    data["options"] = {n: v for n, v in data["options"].items() if n not in _LOAD_ALLOWED_OPTIONS}
    tables = {"grammar_sha256": _grammar_sha256(), "lark": lark.__version__,
              "data": _to_json(data), "memo": _to_json(memo)}
    target = Path(path) if path is not None else Path(__file__).resolve().parent.parent / "grammar" / TABLES_NAME
    target.write_text(json.dumps(tables, separators=(",", ":")) + "\n", encoding="utf-8")
    return target


def _to_json(value):
    """Lark's serialized tables as JSON holds them: JSON keys are strings, and the parse states, their
    actions and the memo are dicts keyed by ints, so such a dict becomes {"__int_keys__": [[key, value], ...]}.
    Tuples become lists, which lark reads the same."""
    if isinstance(value, dict):
        if value and all(type(k) is int for k in value):
            return {"__int_keys__": [[k, _to_json(v)] for k, v in value.items()]}
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot keep the keys of {value!r:.80} in JSON")
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(obj: dict) -> dict:
    return dict(obj["__int_keys__"]) if obj.keys() == {"__int_keys__"} else obj


def decode_source(data: bytes, path: str | None = None) -> str:
    """Bytes of a spec file -> text, with a located error for bad UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        start = before[before.rfind(b"\n") + 1:].decode("utf-8")
        column = len(start.removeprefix("\ufeff") if line == 1 else start) + 1  # in characters, as elsewhere
        raise SpecSyntaxError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            Span(line=line, column=column, end_line=line, end_column=column + 1),
            hint="save the spec as UTF-8",
            path=path,
            source=data.decode("utf-8", "replace"),  # to show the line, the byte as \ufffd
        ) from None
    return text  # a byte-order mark stays: parse() skips it, and so does an error's rendering


def parse(text: str, path: str | None = None) -> ir.SpecFile:
    """Parse spec text into the surface IR.

    >>> parse("model M(x: [B, 3]) { fc = Linear(_, 2) }").models()[0].name
    'M'
    """
    return _parse_with(_parser(), text, path)


def parse_with_comments(text: str, path: str | None = None) -> tuple[ir.SpecFile, list[tuple[int, int, str]]]:
    """`parse`, and the comments it skipped as (line, column, text), in file order; for `modelspec fmt`.

    >>> parse_with_comments("const N = 3  # rows")[1]
    [(1, 14, '# rows')]
    """
    found: list[Token] = []
    token = _COMMENTS.set(found)
    try:
        spec = _parse_with(_comment_parser(), text, path)
    finally:
        _COMMENTS.reset(token)
    return spec, [(t.line, t.column, str(t).rstrip()) for t in found]


def comments_of(text: str) -> list[tuple[int, int, str]]:
    """The comments of ``text`` as (line, column, text), as the lexer finds them; in a text that does not
    parse, those before its first syntax error (the error is `parse`'s to report).

    >>> comments_of('const S = "# not one"  # one')
    [(1, 24, '# one')]
    """
    found: list[Token] = []
    token = _COMMENTS.set(found)
    try:
        _parse_with(_comment_parser(), text, None)
    except SpecError:
        pass
    finally:
        _COMMENTS.reset(token)
    return [(t.line, t.column, str(t).rstrip()) for t in found]


# Where the comment parser's lexer callback puts the comments of the parse in progress.
_COMMENTS: ContextVar[list[Token]] = ContextVar("modelspec_comments")


def _parse_with(parser: Lark, text: str, path: str | None) -> ir.SpecFile:
    parsed = _parse_recovering(parser, text, path)
    if parsed.errors:
        first = parsed.errors[0]
        first.more = parsed.errors[1:]
        raise first
    return parsed.spec


@dataclass(frozen=True)
class Parsed:
    """What `parse_partial` made of a file: its syntax errors, the first first, in file order (none: the whole
    file parsed); ``spec``, the items safe to elaborate; ``broken``, the names of the items that did not parse
    and of those that use one of them, which ``spec`` leaves out."""

    spec: ir.SpecFile
    errors: list[SpecError]
    broken: frozenset[str] = frozenset()


def parse_partial(text: str, path: str | None = None) -> Parsed:
    """`parse` that goes on past a syntax error, as a compiler does: the item that holds it is skipped, parsing
    resumes at the next top-level item (a line that begins with ``model``, ``block``, ``const``, ``import``,
    ``from`` or ``train``), and every item that parsed and uses nothing broken is kept, for elaboration to
    check. Where an error may be only a consequence of the one before, it stops, and keeps nothing.

    >>> got = parse_partial("model A(x: [B, 4]) { fc = Linear(4 2) }\\nmodel C(x: [B, 4]) { fc = Linear(4, 2) }")
    >>> [str(e.span) for e in got.errors], [m.name for m in got.spec.models()], sorted(got.broken)
    (['1:36'], ['C'], ['A'])
    """
    return _parse_recovering(_parser(), text, path)


# A line that begins a top-level item, where parsing may resume after a syntax error; strict, so that no
# line inside a broken body passes for one (``block = ...`` is a misnamed child, not a block).
_ITEM_START = re.compile(r"(model|block)\s+[A-Za-z_]\w*\s*\(|const\s+[A-Za-z_]\w*\s*=|(import|from)\s*[\"']"
                         r"|train\b(?!\s*[=.(\[:,;])")
# What a skipped line defines: a model, block or const; an import (names that cannot be told); the name
# after a misspelt keyword (``modle M(``).
_DEFINES = re.compile(r"\s*(?:(model|block|const)\s+([A-Za-z_]\w*)|(import|from)\b|[A-Za-z_]\w*\s+([A-Za-z_]\w*))")


def _parse_recovering(parser: Lark, text: str, path: str | None) -> Parsed:
    source = text  # errors keep the text as given: their rendering skips one byte-order mark, as here
    text = text.removeprefix("\ufeff")
    items, failure = _parse_once(parser, text, path, source)
    if failure is None:
        return Parsed(ir.SpecFile(path=path, items=items), [])
    lines = text.split("\n")
    starts = [n for n, line in enumerate(lines, 1) if _ITEM_START.match(line)]
    errors: list[SpecError] = []
    skipped: list[tuple[int, int]] = []  # [first line, line parsing resumed at) of each item skipped
    broken: set[str] | None = set()  # None: something skipped defines names that cannot be told
    floor = (0, 0)  # where parsing last resumed: an error there or before it follows from the one before
    while failure is not None:
        err, stopped, between = failure
        at = min((err.line or 1, err.column or 1), stopped)
        if errors and (at <= floor or len(errors) == MAX_ERRORS or between):
            # before the item parsing resumed at, or its first word; or past its end, between items, where what is
            # left of the item skipped may stand: a cascade, maybe. Nor can what the rest defines be told
            broken = None
            break
        errors.append(err)
        begin = max((n for n in starts if floor[0] <= n and (n, 1) < at), default=max(floor[0], 1))
        resume = min((n for n in starts if (n, 1) >= max(at, stopped) and n > begin), default=len(lines) + 1)
        skipped.append((begin, resume))
        defined = _defined(lines[begin - 1:resume - 1])
        broken = None if broken is None or defined is None else broken | defined
        if resume > len(lines):
            break
        floor = (resume, 1)
        # the rest of the file, on its own lines (the lines before it empty): it begins a top-level item
        items, failure = _parse_once(parser, "\n" * (resume - 1) + "\n".join(lines[resume - 1:]), path, source)
    if broken is None:
        return Parsed(ir.SpecFile(path=path, items=[]), errors)
    for begin, resume in skipped:
        lines[begin - 1:resume - 1] = [""] * (resume - begin)
    items, failure = _parse_once(parser, "\n".join(lines), path, source)  # the file less what was skipped
    if failure is not None:  # a skipped item began before the line it seemed to begin at: keep nothing
        return Parsed(ir.SpecFile(path=path, items=[]), errors)
    return Parsed(ir.SpecFile(path=path, items=_untouched(items, broken, text)), errors,
                  frozenset(broken))


def _parse_once(parser: Lark, text: str, path: str | None, source: str):
    """(items, None), or (None, (the first error, the line and column where the parser stopped, whether it
    stopped between items: where a top-level item may begin, outside every bracket))."""
    between = False
    try:
        tree = parser.parse(text)
        _check_nesting(tree)
        return _ToIR().transform(tree), None
    except UnexpectedInput as exc:
        err = _syntax_error(exc, text)
        end = isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", None) == "$END"
        stopped = (text.count("\n") + 2, 1) if end or not exc.line or exc.line < 1 else (exc.line, exc.column)
        if isinstance(exc, UnexpectedToken):
            between = "TRAIN" in (exc.accepts or exc.expected)  # accepted only where an item may begin
        elif isinstance(exc, UnexpectedCharacters):
            code = _NOT_CODE.sub("", text[:exc.pos_in_stream])
            between = sum(map(code.count, "([{")) <= sum(map(code.count, ")]}"))
    except VisitError as exc:
        if not isinstance(exc.orig_exc, SpecError):
            raise
        err = exc.orig_exc
        stopped = (err.line or 1, err.column or 1)
    except SpecLimitError as exc:
        err, stopped = exc, (exc.line or 1, exc.column or 1)
    return None, (err.locate(path, source), stopped, between)


# strings and comments, whose brackets do not count
_NOT_CODE = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*")


def _defined(lines: list[str]) -> set[str] | None:
    """The names that skipped lines define: of the items they begin, and of the first, which may be the one
    whose keyword is misspelt (``modle M(...)``); None where one is an import or the first line begins no
    item, so that what they define cannot be told."""
    names = set()
    first = True
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _DEFINES.match(line)
        if found is not None and found.group(3):
            return None
        if found is not None and found.group(1):
            names.add(found.group(2))
        elif first and re.match(r"train\b", line) is None:
            if found is None:
                return None
            names.add(found.group(4))
        first = False
    return names


def _untouched(items: list, broken: set[str], text: str) -> list:
    """The items that name nothing broken (by the words of their text), and nothing that names something
    broken, and so on; a train section that names no model goes too, as it may have trained a broken one.
    Adds the names of the items left out to ``broken``."""
    lines = text.split("\n")
    kept = list(items)
    while broken:
        uses = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(broken))) + r")\b")
        dropped = [i for i in kept if (isinstance(i, ir.Train) and i.model is None)
                   or uses.search("\n".join(lines[i.span.line - 1:i.span.end_line]))]
        if not dropped:
            break
        kept = [i for i in kept if not any(i is d for d in dropped)]
        broken |= {i.name for i in dropped if isinstance(i, (ir.Model, ir.Block, ir.Const))}
    return kept


# Levels of the syntax tree. The transformer, the elaborator and Python's own compiler (200 brackets
# at most) all recurse on nesting: bounded here, deep input is a located error, never a RecursionError.
MAX_NESTING = 100


def _check_nesting(tree: Tree) -> None:
    stack = [(tree, 1)]
    while stack:  # iterative: the check itself must not recurse
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SpecLimitError(
                f"the spec nests more than {MAX_NESTING} levels deep here", _span(node.meta),
                hint="split the expression: name intermediate values in forward, or use consts",
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


# ---------------------------------------------------------------- errors
_OPERATORS = {"'+'", "'-'", "'*'", "'/'", "'//'", "'%'", "'@'", "'**'", "'=='", "'!='", "'<'", "'>'", "'<='",
              "'>='", "'&'", "'|'", "'^'", "'.'", "'['", "'('", "'if'", "'and'", "'or'", "'not'", "'in'", "'is'"}
_EXPR_START = {"a name", "an integer", "a number", "a string", "_", "'('", "'['", "'{'", "'-'", "'+'", "'~'",
               "'not'", "'True'", "'False'", "'None'", "'*'"}


def _describe(names) -> str:
    """Expected terminals in words: "',' or ')'", "an expression"."""
    parser = _parser()
    words = set()
    for name in set(names):
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            words.add(name)
            continue
        words.add(f"'{pattern.value}'" if pattern.type == "str" else name.lower())
    summary = []
    if {"a name", "a string"} <= words and "an integer" not in words:
        words.discard("a string")  # where a statement may begin: a child's name, bare or quoted ("block1-0")
    if {"a name", "an integer"} <= words:
        words -= _EXPR_START
        summary.append("an expression")
    if len(words & _OPERATORS) >= 4:
        words -= _OPERATORS
        summary.append("an operator")
    listed = sorted(words | set(summary), key=_listing_order)
    if len(listed) > 8:
        listed = listed[:8] + ["..."]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]


def _listing_order(word: str) -> tuple[int, str]:
    """Expected things in the order a reader takes them in: what a value or name is (a name, an expression),
    then keywords, then punctuation, then "an operator", then the end of the file."""
    if word.startswith("'") or word == "_":
        return (1 if word[1:2].isalpha() or word == "_" else 2), word
    return {"an operator": 3, "end of file": 4}.get(word, 0), word


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _brackets(text: str, start: int = 0):
    """(offset, bracket) for each bracket of ``text`` from ``start`` on; strings and comments skipped."""
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            if i < 0:
                return
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] not in (ch, "\n"):
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            if ch in "()[]{}":
                yield i, ch
            i += 1


def _closing(text: str, opened: int) -> int | None:
    """The offset of the bracket that closes the one at offset ``opened``; None where none does."""
    depth = 0
    for i, ch in _brackets(text, opened):
        depth += 1 if ch in _PAIRS else -1
        if depth == 0:
            return i
    return None


def _code(line: str) -> str:
    """A line less its comment."""
    return re.match(r"(?:[^#\"']|\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)*", line).group(0)


# The last characters of a line that the next line continues: a bracket opened, an item or an operand to come.
_CONTINUED = "([{,+-*/%@&|^=<>"


def _last_line_inside(lines: list[str], opened: int, limit: int) -> int:
    """The last line of what a bracket opened on line ``opened`` holds, before line ``limit``: each line after
    it that continues one that ends in an opener, a ',' or an operator (blank and comment lines between)."""
    last = opened
    for k in range(opened + 1, limit):
        code = _code(lines[last - 1]).rstrip()
        if not code or code[-1] not in _CONTINUED:
            break
        if _code(lines[k - 1]).strip():
            last = k
    return last


def _bracket_problem(text: str, at: tuple[int, int]) -> SpecSyntaxError | None:
    """A bracket that does not match, closes nothing or is never closed, as CPython's tokenizer says it, where
    it explains a syntax error at ``at`` (line, column): a closer up to there, or an opener before it. Strings
    and comments are skipped."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def place(i: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, i)
        return line, i - starts[line - 1] + 1

    stack: list[tuple[str, int, int]] = []
    found = None
    for i, ch in _brackets(text):
        line, col = place(i)
        if ch in _PAIRS:
            stack.append((ch, line, col))
            continue
        if not stack:
            found = ("unmatched", ch, line, col, None)
            break
        opener, ol, oc = stack.pop()
        if _PAIRS[opener] != ch:
            if ch == "}" and opener in "([":  # a body closes around a call left open: that one is the fault
                found = ("open", opener, ol, oc, (line, col))
            elif opener == "{":  # a ')' or ']' in a body, with nothing of its kind open: one too many
                found = ("unmatched", ch, line, col, None)
            else:
                found = ("mismatch", ch, line, col, (opener, ol, oc))
            break
    if found is None and stack:
        opener, ol, oc = stack[-1]
        found = ("open", opener, ol, oc, None)
    if found is None:
        return None
    kind, ch, bl, bc, more = found
    if kind == "open" and (bl, bc) >= at or kind != "open" and (bl, bc) > at:
        return None  # a bracket later in the file than the error: not its cause
    span = Span(line=bl, column=bc, end_line=bl, end_column=bc + 1)
    if kind == "unmatched":
        opener = {v: k for k, v in _PAIRS.items()}[ch]
        return SpecSyntaxError(f"unmatched '{ch}'", span, hint=f"remove it, or add the '{opener}' it closes")
    if kind == "mismatch":
        opener, ol, oc = more
        return SpecSyntaxError(f"'{ch}' does not match '{opener}' opened at {ol}:{oc}", span,
                               hint=f"close the '{opener}' with '{_PAIRS[opener]}'")
    where = f" before line {more[0]}" if more is not None and more[0] > bl else ""
    lines = text.split("\n")
    # a call written over several lines ends on the last line of its arguments, not on the line it opens
    last = _last_line_inside(lines, bl, more[0] if more is not None else at[0])
    code = _code(lines[last - 1]).strip()
    end = f"; perhaps at the end of line {last}: {code}{_PAIRS[ch]}" \
        if ch != "{" and at[0] > last and len(code) < 60 else ""
    return SpecSyntaxError(f"'{ch}' opened at {bl}:{bc} was never closed", span,
                           hint=f"add the '{_PAIRS[ch]}' that closes it{where}{end}")


def _syntax_error(exc: UnexpectedInput, text: str) -> SpecSyntaxError:
    if not isinstance(exc, UnexpectedCharacters):
        at = (exc.line, exc.column) if exc.line is not None and exc.line > 0 else (text.count("\n") + 2, 1)
        if isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", None) == "$END":
            at = (text.count("\n") + 2, 1)
        problem = _bracket_problem(text, at)
        if problem is not None:
            return problem
        stop = _Stop.of(exc, text)
        for rule in _STOP_RULES:
            found = rule(stop)
            if found is not None:
                return found
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        msg, hint = f"unexpected character {ch!r}", None
        if ch in "\"'":
            msg, hint = "unterminated string", "close the string on the same line"
        elif ch == "\t":
            msg = "unexpected tab"
        elif not ch.isprintable() or ch.isspace():
            msg = f"unexpected character {ch!r} (U+{ord(ch):04X})"
            hint = "delete this invisible character (pasted text often carries one)"
        elif ch in "\u2018\u2019\u201c\u201d":
            msg = f"unexpected character {ch!r} (U+{ord(ch):04X}), a typographic quote"
            hint = "use straight quotes: \"...\" or '...'"
        elif ord(ch) > 127:
            msg = f"unexpected character {ch!r} (U+{ord(ch):04X}); names and operators are ASCII"
            hint = "names are ASCII letters, digits and _; other text belongs in strings and comments"
        else:
            hint = "delete it; a spec uses Python's operators and brackets"
        width = 1
    elif stop.tok is None:
        lines = text.split("\n")  # as Lark counts lines; the end of the last line that has text
        if len(lines) > 1 and not lines[-1]:
            lines.pop()
        line, column = len(lines), len(lines[-1].rstrip("\r")) + 1
        expected = _describe(stop.accepts)
        msg = f"unexpected end of file; expected {expected}"
        hint = "a '(', '[' or '{' may be left open" if any(t in expected for t in ("')'", "']'", "'}'")) else \
            "the file ends in the middle of a statement: finish it"
        width = 1
    else:
        tok = stop.tok
        expected = _describe(stop.accepts)
        msg = f"unexpected {_shown(tok)!r}; expected {expected}"
        hint = _token_hint(text, tok, expected) or f"here the grammar expects {expected}"
        width = max(len(str(tok)), 1)
    if line is None or line < 1:
        line, column = 1, 1
    span = Span(line=line, column=column, end_line=line, end_column=column + width)
    return SpecSyntaxError(msg, span, hint=hint)


def _shown(tok: Token) -> str:
    return str(tok) if len(str(tok)) <= 30 else str(tok)[:27] + "..."


# Token types that end a value, and those that begin one.
_VALUE_END = {"NAME", "INT", "FLOAT", "STRING", "INFER", "RPAR", "RSQB", "TRUE", "FALSE", "NONE"}
_VALUE_START = {"NAME", "INT", "FLOAT", "STRING", "INFER", "TRUE", "FALSE", "NONE"}
# What an operand must follow (after `=`, a value).
_NEEDS_OPERAND = {"+", "-", "*", "/", "//", "%", "@", "**", "&", "|", "^", "~", "==", "!=", "<", ">", "<=", ">=",
                  "=", "and", "or", "not", "in", "is"}
_COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")
# The first words of the statements that have a body in braces, and what a hint calls it.
_BODIES = {"model": "a model's body", "block": "a block's body", "forward": "forward's body", "for": "a loop's body",
           "if": "the body of an if", "else": "the body of an else"}
# The keywords a statement begins with: in forward, and in a model's or a block's body.
_FORWARD_WORDS = ("return", "for", "if", "else")
_BODY_WORDS = ("forward", "param", "buffer")
_SHORT = 60  # characters of a line a hint rewrites whole, at most


@dataclass(frozen=True)
class _Stop:
    """Where the parser stopped: the token it could not take (None at the end of the file), the tokens before
    it, and the terminals it would have taken there."""

    text: str
    tok: Token | None
    before: list[Token]
    accepts: frozenset[str]

    @classmethod
    def of(cls, exc: UnexpectedInput, text: str) -> "_Stop":
        tok = getattr(exc, "token", None)
        if isinstance(exc, UnexpectedEOF) or tok is None or tok.type == "$END":
            tok = None
        try:  # the text before the token lexed once already, so it lexes again
            before = list(_parser().lex(text if tok is None else text[:tok.start_pos]))
        except UnexpectedInput:
            before = []
        return cls(text, tok, before, frozenset(getattr(exc, "accepts", None) or exc.expected))

    def back(self, n: int) -> Token | None:
        """The ``n``-th token before the one the parser stopped at."""
        return self.before[-n] if len(self.before) >= n else None

    def line(self, number: int) -> str:
        return self.text.split("\n")[number - 1]

    def opener(self) -> int | None:
        """The index in ``before`` of the innermost bracket still open that holds items (a call's arguments,
        a list, a subscript, a dict), not statements (a body); None where there is none."""
        stack: list[int] = []
        for i, t in enumerate(self.before):
            if t.type in ("LPAR", "LSQB", "LBRACE"):
                stack.append(i)
            elif t.type in ("RPAR", "RSQB", "RBRACE") and stack:
                stack.pop()
        if not stack:
            return None
        i = stack[-1]
        if self.before[i].type != "LBRACE":
            return i
        kind = self.before[i - 1].type if i else None
        return i if kind is not None and (kind in StatementIf.DICT_AFTER or kind.startswith("__ANON")) else None

    def head(self, ref: Token, through: bool = False) -> str:
        """The text of ``ref``'s line up to it (and through it), less a `}` that closes the body before."""
        first = next((t for t in self.before if t.line == ref.line), ref)
        end = ref.end_pos if through else ref.start_pos
        return _code(self.text[first.start_pos:end]).strip().removeprefix("}").strip()

    def terminals(self) -> set[str]:
        """What the parser accepts, as text: '==', 'return', ..."""
        parser = _parser()
        found = set()
        for name in self.accepts:
            try:
                pattern = parser.get_terminal(name).pattern
            except KeyError:
                continue
            if pattern.type == "str":
                found.add(pattern.value)
        return found


def _between(first: Token, last: Token) -> Span:
    if first.line != last.end_line:
        return _tok_span(first)
    return Span(line=first.line, column=first.column, end_line=first.line, end_column=last.end_column)


def _missing_operand(stop: _Stop) -> SpecSyntaxError | None:
    """`return fc(x) + }`, `const N = 4 +` at the end of the file: an operator with nothing after it."""
    op, tok = stop.back(1), stop.tok
    if op is None or op.type == "STRING" or str(op) not in _NEEDS_OPERAND or not {"NAME", "INT"} <= stop.accepts:
        return None
    if tok is None or tok.type in ("RPAR", "RSQB", "RBRACE", "COMMA", "SEMICOLON") or tok.line > op.end_line:
        hint = "write the value after '='" if op == "=" else f"write the operand after '{op}', or remove the '{op}'"
        return SpecSyntaxError(f"expected an expression after '{op}'", _tok_span(op), hint=hint)
    return SpecSyntaxError(f"unexpected {_shown(tok)!r}; expected an expression", _tok_span(tok),
                           hint=f"write a value after '{op}': a name, a number, a call, ...")


def _nested_else(stop: _Stop, test: Token) -> str:
    """How a test that `elif` or `else if` begins is written: in the else's body."""
    rest = _code(stop.line(test.line)[test.end_column - 1:]).strip()
    cond = rest.removesuffix("{").strip() if rest.endswith("{") else ""
    cond = cond if cond and len(cond) <= 40 else "..."
    return f"nest the if in the else's body: else {{ if {cond} {{ ... }} }}"


def _else_if(stop: _Stop) -> SpecSyntaxError | None:
    """`} else if c {`: an else takes a body, no other test."""
    tok, word = stop.tok, stop.back(1)
    if tok is None or tok.type not in ("IF", "IF_STMT") or word is None or word.type != "ELSE":
        return None
    return SpecSyntaxError("modelspec has no `else if`: an else takes a body in braces", _between(word, tok),
                           hint=_nested_else(stop, tok))


def _statement_name(stop: _Stop) -> SpecSyntaxError | None:
    """A name that begins a statement, and what follows it makes none: a misspelt keyword (`retrun x`), `elif`,
    a second value after a first (`return h h`), a call assigned to (`fc(x) = h`), a call or a comparison
    standing alone (`h == F.relu(h)`)."""
    tok, before = stop.tok, stop.before
    if not before or before[-1].type != "NAME" or "EQUAL" not in stop.accepts \
            or not stop.accepts <= {"COMMA", "DOT", "EQUAL"} or tok is None:
        return None
    first = len(before) - 1  # the statement's first name: of `a, b, c` (forward's targets), a
    while first >= 2 and before[first - 1].type == "COMMA" and before[first - 2].type in ("NAME", "INFER"):
        first -= 2
    name, prior = before[first], before[first - 1] if first else None
    if prior is not None and prior.type in ("COMMA", "DOT"):
        return None  # inside a target list or a dotted name: not the statement's first word
    in_forward = "COMMA" in stop.accepts  # only forward's assignments take a list of targets
    word, line = str(name), _code(stop.line(name.line))
    if prior is not None and prior.type in _VALUE_END and prior.end_line == name.line \
            and (tok.type not in _VALUE_START or tok.line > name.line):
        return _second_value(stop, name)
    # where a keyword may stand: first on its line, or after a body's brace or a ';'
    first_word = prior is None or prior.end_line < name.line or prior.type in ("LBRACE", "RBRACE", "SEMICOLON")
    if word == "elif":
        return SpecSyntaxError("modelspec has no elif: an else takes a body in braces", _tok_span(name),
                               hint=_nested_else(stop, name))
    if word == "def":
        return None  # _token_hint says what to write
    keywords = _FORWARD_WORDS if in_forward else _BODY_WORDS
    close = (close_names(word, keywords) or [k for k in keywords if _swapped(word, k)]) if first_word else []
    if close:
        fixed = (line[:name.column - 1] + close[0] + line[name.end_column - 1:]).strip()
        meant = " or ".join(f"'{k}'" for k in close)
        clean = len(fixed) <= _SHORT and line[name.end_column - 1:name.end_column] in ("", " ", "(")
        return SpecSyntaxError(f"{word!r} is not a keyword: did you mean {meant}?", _tok_span(name),
                               hint=f"write {fixed}" if clean else f"spell the keyword {close[0]}")
    if tok.type == "LPAR":
        closed = _closing(stop.text, tok.start_pos)
        call = stop.text[name.start_pos:closed + 1] if closed is not None else ""
        after = stop.text[closed + 1:] if closed is not None else ""
        short = call if call and "\n" not in call and len(call) <= 40 else f"{word}(...)"
        span = _tok_span(name) if closed is None or "\n" in call else \
            Span(line=name.line, column=name.column, end_line=name.line,
                                 end_column=name.column + len(call))
        if re.match(r"[ \t]*=(?!=)", after):
            value = re.match(r"[ \t]*=[ \t]*([A-Za-z_]\w*)[ \t]*(?:[;#\n]|$)", after)
            return SpecSyntaxError("cannot assign to a function call", span,
                                   hint=f"the name assigned goes on the left of '=': "
                                        f"{value.group(1) if value else 'name'} = {short}")
        return SpecSyntaxError("a call alone is no statement here", span,
                               hint=f"assign its value to a name: out = {short}; only a list's methods are called "
                                    "alone, as in xs.append(x)" if in_forward else f"name the child: name = {short}")
    if str(tok) in _COMPARISONS:
        fixed = (line[:tok.column - 1] + "=" + line[tok.end_column - 1:]).strip()
        hint = f"to assign, use =: {fixed}" if tok == "==" and len(fixed) <= _SHORT else \
            "to assign, use =; a comparison's value is assigned to a name: name = a < b"
        return SpecSyntaxError(f"unexpected '{tok}': a comparison alone does nothing here", _tok_span(tok),
                               hint=hint)
    return SpecSyntaxError(f"unexpected {_shown(tok)!r}; expected {_describe(stop.accepts)}", _tok_span(tok),
                           hint=f"a statement here assigns, {word} = ..., or begins with "
                                f"{', '.join(keywords[:-1])} or {keywords[-1]}")


def _swapped(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with two letters side by side swapped: `fi` for `if`, too short for close_names."""
    return len(a) == len(b) and any(a == b[:i] + b[i + 1] + b[i] + b[i + 2:] for i in range(len(b) - 1))


def _second_value(stop: _Stop, value: Token) -> SpecSyntaxError:
    """`return h h`, `const N = 4 5`: a value after a value, outside brackets (inside, a comma is missing)."""
    line = _code(stop.line(value.line))
    left, right = line[:value.column - 1].strip(), line[value.column - 1:].strip()
    returns = left.removeprefix("}").strip().startswith("return ")
    joined = f"{left} + {right}"
    msg = f"unexpected {_shown(value)!r}; expected an operator{', a comma' if returns else ''} or the end of the " \
          "statement"
    if len(joined) > _SHORT:
        hint = "join the two values with an operator, or delete one"
    elif returns:
        hint = f"join the two values with an operator, {joined}, or return both: {left}, {right}"
    else:
        hint = f"join the two values with an operator: {joined}"
    return SpecSyntaxError(msg, _tok_span(value), hint=hint)


def _two_values(stop: _Stop) -> SpecSyntaxError | None:
    """A value after a value on one line, outside brackets, where no statement may begin (`return h 5`)."""
    tok, last = stop.tok, stop.back(1)
    if tok is None or tok.type not in _VALUE_START or last is None or last.type not in _VALUE_END \
            or last.end_line != tok.line or stop.opener() is not None or "PLUS" not in stop.accepts:
        return None  # (where no operator may follow, the value is no expression's: `target y Long[B]`)
    return _second_value(stop, tok)


def _missing_comma(stop: _Stop) -> SpecSyntaxError | None:
    """`Linear(4 2)`: two items with no comma between them, inside brackets (as CPython says it)."""
    tok, last = stop.tok, stop.back(1)
    if tok is None or "COMMA" not in stop.accepts or last is None or last.type not in _VALUE_END \
            or tok.type not in _VALUE_START | {"LPAR", "LSQB"} or stop.opener() is None:
        return None
    shown = _shown(tok)
    hint = f"put a ',' before {shown!r}" if last.end_line == tok.line else f"put a ',' at the end of line " \
                                                                            f"{last.end_line}"
    return SpecSyntaxError(f"unexpected {shown!r}: perhaps you forgot a comma?", _tok_span(tok), hint=hint)


def _colon_body(stop: _Stop) -> SpecSyntaxError | None:
    """`model M(x: [B, 4]):`, `for i in range(3):`: Python's colon where a body in braces begins."""
    tok = stop.tok
    if tok is None or tok.type != "COLON":
        return None
    head = stop.head(tok)
    if "LBRACE" not in stop.accepts and (re.match(r"\w+", head) or [None])[0] not in _BODIES \
            or _code(stop.line(tok.line)[tok.end_column - 1:]).strip():
        return None  # no body begins here, or something follows the colon on its line
    return SpecSyntaxError("unexpected ':'; expected '{'", _tok_span(tok),
                           hint=f"a body goes in braces, not after a colon: {head} {{ ... }}")


def _missing_brace(stop: _Stop) -> SpecSyntaxError | None:
    """`for i in range(3)` and then the loop's statements: the `{` of the body is missing."""
    last = stop.back(1)
    if stop.accepts != {"LBRACE"} or last is None:
        return None
    head = stop.head(last, through=True)
    word = (re.match(r"\w+", head) or [None])[0]
    if word not in _BODIES:
        return None
    end = Span(line=last.end_line, column=last.end_column, end_line=last.end_line,
                               end_column=last.end_column + 1)
    return SpecSyntaxError("expected '{'", end, hint=f"{_BODIES[word]} goes in braces: {head} {{ ... }}")


def _assigns_in_a_test(stop: _Stop) -> SpecSyntaxError | None:
    """`if n = 2 {`: '=' where '==' compares (CPython: "Maybe you meant '==' or ':=' instead of '='?")."""
    tok = stop.tok
    if tok is None or tok.type != "EQUAL" or "EQUAL" in stop.accepts or "==" not in stop.terminals():
        return None
    line = _code(stop.line(tok.line))
    fixed = (line[:tok.column - 1] + "==" + line[tok.end_column - 1:]).strip()
    return SpecSyntaxError("unexpected '=': maybe you meant '==' instead of '='?", _tok_span(tok),
                           hint=f"use == to compare: {fixed}" if len(fixed) <= _SHORT else
                           "use == to compare; = assigns, and only at the start of a statement")


def _comma_after_statement(stop: _Stop) -> SpecSyntaxError | None:
    """`fc = Linear(4, 2),`: a comma after a statement, as if statements were items."""
    tok = stop.tok
    if tok is None or tok.type != "COMMA" or "COMMA" in stop.accepts or "RBRACE" not in stop.accepts \
            or stop.opener() is not None:
        return None
    tuple_note = "; a tuple is written in parentheses: t = (a, b)" if "RETURN" in stop.accepts else ""
    return SpecSyntaxError("unexpected ',' after a statement", _tok_span(tok),
                           hint=f"remove it: statements need no separator (a ';' may end one){tuple_note}")


def _double_comma(stop: _Stop) -> SpecSyntaxError | None:
    """`Linear(_,, 8)`: two commas with no item between them."""
    tok, last = stop.tok, stop.back(1)
    if tok is None or tok.type != "COMMA" or last is None or last.type != "COMMA":
        return None
    return SpecSyntaxError("unexpected ',': two commas with no item between them", _between(last, tok),
                           hint="remove one, or write the item that goes between them")


def _semicolon_in_brackets(stop: _Stop) -> SpecSyntaxError | None:
    """`x: [B; 4]`: a ';' between the items of brackets."""
    tok, at = stop.tok, stop.opener()
    if tok is None or tok.type != "SEMICOLON" or at is None:
        return None
    opener = stop.before[at]
    before = [t.type for t in stop.before[max(at - 2, 0):at]]
    dims = opener.type == "LSQB" and (before[-1:] == ["COLON"] or before[-2:] == ["COLON", "NAME"])
    closed = _closing(stop.text, opener.start_pos)
    items = stop.text[opener.start_pos:closed + 1] if closed is not None else ""
    fixed = re.sub(r"\s*[;,]\s*", ", ", items) if items and "\n" not in items else ""
    return SpecSyntaxError(f"unexpected ';': {'dims' if dims else 'items in brackets'} are separated by ','",
                           _tok_span(tok), hint=f"write {fixed}" if fixed else "write ',' in place of ';'")


def _declared_with_colon(stop: _Stop) -> SpecSyntaxError | None:
    """`model M(x = [B, 4])`, `y [B, 2]`, `param w [4]`: a tensor declared without its ':'."""
    tok, name, prior = stop.tok, stop.back(1), stop.back(2)
    if tok is None or "COLON" not in stop.accepts or name is None or name.type != "NAME":
        return None
    kind = {"PARAM": "a param", "BUFFER": "a buffer"}.get(prior.type if prior is not None else "") or \
        ("a target" if prior is not None and prior == "target" else "an input")
    if tok.type == "EQUAL":
        return SpecSyntaxError(f"unexpected '=': {kind} is declared with ':'", _tok_span(tok),
                               hint=f"write {name}: [B, ...]")
    if tok.type not in ("LSQB", "NAME"):
        return None
    opened = stop.text.find("[", tok.start_pos)
    closed = _closing(stop.text, opened) if opened >= 0 else None
    dims = stop.text[tok.start_pos:closed + 1] if closed is not None else ""
    example = f"{name}: {dims}" if dims and "\n" not in dims and len(dims) <= 40 else f"{name}: [...]"
    return SpecSyntaxError(f"unexpected {_shown(tok)!r}; expected ':'", _tok_span(tok),
                           hint=f"{kind} is declared as name: [dims]; write {example}")


# What explains where the parser stopped, tried in this order; the first that knows says it.
_STOP_RULES = (_missing_operand, _else_if, _statement_name, _two_values, _missing_comma, _colon_body,
               _missing_brace, _assigns_in_a_test, _comma_after_statement, _double_comma, _semicolon_in_brackets,
               _declared_with_colon)


_KEYWORDS = ("model", "block", "const", "import", "from", "forward", "return", "param", "buffer", "for", "if", "else")


def _token_hint(text: str, tok: Token, expected: str) -> str | None:
    """A likely cause of an unexpected token: a misspelt keyword, or a bracket left open on an earlier line."""
    if expected == "a string":  # only an import's path
        return 'write the path in quotes: import "blocks.nnspec"'
    if str(tok) in _KEYWORDS and "a name" in expected:
        return f"'{tok}' is a word of the spec language and cannot name anything: choose another name, e.g. {tok}_"
    if tok.type == "NAME":
        hint = did_you_mean(str(tok), [k for k in _KEYWORDS if f"'{k}'" in expected])
        if hint:
            return hint
    before = text[: tok.start_pos]
    words = before[before.rfind("\n") + 1:].split()
    if len(words) == 1 and words[0].isidentifier():
        # the line opens with a word, and what follows it makes no sense
        word = words[0]
        if word == "def":
            return "no 'def' is needed: write forward(x) { ... }"
        if word not in _KEYWORDS and (hint := did_you_mean(word, _KEYWORDS)):
            return hint
    if tok == "{" and "'block'" in expected and re.search(r"\bblock\s+\w+\s*\([^{}]*\)\s*=[^{}]*$", before):
        return "a block written `= Sequential(...)` has no body: give it either that value or a body in braces"
    closers = [c for c in ("')'", "']'") if c in expected]
    last = before.rstrip()
    if closers and last.count("\n") + 1 < tok.line:
        return f"a {closers[0]} may be missing at the end of line {last.count(chr(10)) + 1}"
    return None


# ---------------------------------------------------------------- tree -> IR
def _span(meta) -> Span:
    if getattr(meta, "empty", True):
        return Span(line=1, column=1, end_line=1, end_column=1)
    return Span(line=meta.line, column=meta.column, end_line=meta.end_line, end_column=meta.end_column)


def _tok_span(tok: Token) -> Span:
    return Span(line=tok.line, column=tok.column, end_line=tok.end_line, end_column=tok.end_column)


def _int(tok: Token) -> int:
    s = str(tok).replace("_", "")
    try:
        if s[:2].lower() == "0x":
            return int(s, 16)
        if len(s) > 1 and s[0] == "0" and s.strip("0"):
            raise SpecSyntaxError(
                f"leading zeros in {s!r} are not allowed", _tok_span(tok), hint="write the number without leading zeros"
            )
        return int(s, 10)
    except ValueError:
        if len(s) < 1000:  # "0x_": no digits
            raise SpecSyntaxError(f"{str(tok)!r} is not a number", _tok_span(tok),
                                  hint="write digits after 0x") from None
        raise SpecSyntaxError(f"the number {s[:20]}... is too long", _tok_span(tok),
                              hint="sizes and counts go up to 10**18") from None


def _target(node) -> ir.NameTarget | ir.TupleTarget:
    if isinstance(node, Token):
        return ir.NameTarget(id=str(node), span=_tok_span(node))
    return node


@v_args(inline=True, meta=True)
class _ToIR(Transformer):
    """One method per grammar rule, building IR nodes and nothing else."""

    # -- top level
    def start(self, meta, *items):
        return list(items)

    def import_all(self, meta, path):
        return ir.Import(path=self._str(path), names=None, span=_span(meta))

    def import_names(self, meta, path, *names):
        return ir.Import(path=self._str(path), names=[str(n) for n in names], span=_span(meta))

    def const_def(self, meta, name, value):
        return ir.Const(name=str(name), value=value, span=_span(meta))

    def block_def(self, meta, name, *rest):
        params = [p for p in rest if isinstance(p, ir.BlockParam)]
        body = [s for s in rest if s is not None and not isinstance(s, ir.BlockParam)]
        return ir.Block(name=str(name), params=params, body=body, span=_span(meta))

    def sequential_block_def(self, meta, name, *rest):
        params = [p for p in rest if isinstance(p, ir.BlockParam)]
        return ir.Block(name=str(name), params=params, body=[], value=rest[-1], span=_span(meta))

    def block_param(self, meta, name, default):
        return ir.BlockParam(name=str(name), default=default, span=_span(meta))

    def model_def(self, meta, name, *rest):
        inputs = [p for p in rest if isinstance(p, ir.ModelInput)]
        body = [s for s in rest if s is not None and not isinstance(s, ir.ModelInput)]
        return ir.Model(name=str(name), inputs=inputs, body=body, span=_span(meta))

    def model_input(self, meta, name, type_):
        return ir.ModelInput(name=str(name), type=type_, span=_span(meta))

    def tensor_type(self, meta, dtype, *dims):
        return ir.TensorType(
            dtype=str(dtype) if dtype is not None else None, dims=[d for d in dims if d is not None], span=_span(meta)
        )

    def sym_dim(self, meta, name, example):
        return ir.SymDim(name=str(name), example=_int(example), span=_span(meta))

    # -- train
    def train_def(self, meta, _train, model, *body):
        return ir.Train(model=str(model) if model is not None else None, body=list(body),
                                        span=_span(meta))

    def train_setting(self, meta, name, value):
        return ir.TrainSetting(name=str(name), value=value, span=_span(meta))

    def train_target(self, meta, word, name, type_):
        if str(word) != "target":
            raise SpecSyntaxError(f"unexpected {str(word)!r}: a train section declares its target as "
                                  f"`target {name}: [...]`", _tok_span(word),
                                  hint=f"write target {name}: Long[B] (class indices) or target {name}: [B, 1]")
        return ir.TrainTarget(name=str(name), type=type_, span=_span(meta))

    def train_data(self, meta, name, *body):
        if str(name) not in ("data", "validation"):
            raise SpecSyntaxError(f"unexpected `{name} {{`: a train section computes only `data {{ ... }}` and "
                                  f"`validation {{ ... }}`", _tok_span(name),
                                  hint="write data { x = ...; y = ... }, or a setting: name = value")
        return ir.TrainData(name=str(name), body=list(body), span=_span(meta))

    # -- body
    def child_def(self, meta, name, value):
        return ir.Child(name=self._child_name(name), value=value, span=_span(meta))

    def cond_child_def(self, meta, name, value, cond):
        return ir.Child(name=self._child_name(name), value=value, cond=cond, span=_span(meta))

    def tie_def(self, meta, *parts):
        *names, value = parts
        return ir.Tie(target=[str(n) for n in names], value=value, span=_span(meta))

    def param_def(self, meta, name, type_, init):
        return ir.Param(name=str(name), type=type_, init=init, span=_span(meta))

    def buffer_def(self, meta, name, type_, init):
        return ir.Buffer(name=str(name), type=type_, init=init, span=_span(meta))

    def forward_def(self, meta, *rest):
        params = [str(t) for t in rest if isinstance(t, Token)]
        body = [s for s in rest if s is not None and not isinstance(s, Token)]
        return ir.Forward(params=params, body=body, span=_span(meta))

    # -- forward
    def assign(self, meta, targets, value):
        return ir.Assign(target=targets, value=value, span=_span(meta))

    def target_list(self, meta, *items):
        targets = [t for t in items if not (isinstance(t, Token) and t.type == "COMMA")]
        if len(targets) == 1 and len(items) == 1:  # `a = ...`; `a, = ...` unpacks a one-item tuple
            return _target(targets[0])
        return ir.TupleTarget(items=[_target(t) for t in targets], span=_span(meta))

    def name_target(self, meta, name):
        return ir.NameTarget(id=str(name), span=_span(meta))

    def return_stmt(self, meta, *values):
        return ir.Return(values=[v for v in values if v is not None], span=_span(meta))

    def for_stmt(self, meta, target, iter_, body):
        return ir.For(target=_target(target), iter=iter_, body=body, span=_span(meta))

    def call_stmt(self, meta, obj, method, arguments):
        start, end = _tok_span(obj), _tok_span(method)
        func = ir.Attribute(value=ir.Name(id=str(obj), span=start), attr=str(method),
                            span=Span(line=start.line, column=start.column, end_line=end.end_line,
                                      end_column=end.end_column))
        call = self.call(meta, func, arguments)
        return ir.CallStmt(call=call, span=call.span)

    def if_stmt(self, meta, _if, test, body, orelse):
        return ir.If(test=test, body=body, orelse=orelse or [], span=_span(meta))

    def fwd_block(self, meta, *stmts):
        return list(stmts)

    # -- expressions
    def ternary(self, meta, body, test, orelse):
        return ir.IfExp(test=test, body=body, orelse=orelse, span=_span(meta))

    def or_op(self, meta, left, right):
        return ir.BoolOp(op="or", left=left, right=right, span=_span(meta))

    def and_op(self, meta, left, right):
        return ir.BoolOp(op="and", left=left, right=right, span=_span(meta))

    def not_op(self, meta, operand):
        return ir.Not(operand=operand, span=_span(meta))

    def compare(self, meta, left, *rest):
        ops = [rest[i] for i in range(0, len(rest), 2)]
        comparators = [rest[i] for i in range(1, len(rest), 2)]
        return ir.Compare(left=left, ops=ops, comparators=comparators, span=_span(meta))

    def comp_op(self, meta, *toks):
        return " ".join(str(t) for t in toks)

    def binop(self, meta, left, op, right):
        return ir.BinOp(op=str(op), left=left, right=right, span=_span(meta))

    def pow_op(self, meta, left, right):
        return ir.BinOp(op="**", left=left, right=right, span=_span(meta))

    def unary(self, meta, op, operand):
        if str(op) != "~" and isinstance(operand, ir.Constant) and isinstance(operand.value, (int, float)) and not \
                isinstance(operand.value, bool):  # `-3` is a number; `~3` stays an operation (refused outside forward)
            value = -operand.value if op == "-" else operand.value
            return ir.Constant(value=value, span=_span(meta))
        return ir.UnaryOp(op=str(op), operand=operand, span=_span(meta))

    def call(self, meta, func, arguments):
        args, keywords = [], []
        for a in arguments or []:
            (keywords if isinstance(a, ir.Keyword) else args).append(a)
        return ir.Call(func=func, args=args, keywords=keywords, span=_span(meta))

    def arguments(self, meta, *args):
        return list(args)

    def keyword(self, meta, name, value):
        return ir.Keyword(name=str(name), value=value, span=_span(meta))

    def starred(self, meta, _star, value):
        return ir.Starred(value=value, span=_span(meta))

    def subscript(self, meta, value, index):
        return ir.Subscript(value=value, index=index, span=_span(meta))

    def subscripts(self, meta, *items):
        return list(items)

    def slice(self, meta, lower, upper, step):
        return ir.SliceExpr(lower=lower, upper=upper, step=step, span=_span(meta))

    def ellipsis(self, meta):
        return ir.EllipsisExpr(span=_span(meta))

    def attribute(self, meta, value, attr):
        return ir.Attribute(value=value, attr=str(attr), span=_span(meta))

    def name(self, meta, tok):
        return ir.Name(id=str(tok), span=_span(meta))

    def infer(self, meta, _tok=None):
        return ir.Infer(span=_span(meta))

    def int_lit(self, meta, tok):
        return ir.Constant(value=_int(tok), span=_span(meta))

    def float_lit(self, meta, tok):
        return ir.Constant(value=float(str(tok).replace("_", "")), span=_span(meta))

    def str_lit(self, meta, tok):
        return ir.Constant(value=self._str(tok), span=_span(meta))

    def true_lit(self, meta):
        return ir.Constant(value=True, span=_span(meta))

    def false_lit(self, meta):
        return ir.Constant(value=False, span=_span(meta))

    def none_lit(self, meta):
        return ir.Constant(value=None, span=_span(meta))

    def tuple_lit(self, meta, *items):
        return ir.TupleExpr(items=[i for i in items if i is not None], span=_span(meta))

    def list_lit(self, meta, *items):
        return ir.ListExpr(items=[i for i in items if i is not None], span=_span(meta))

    def list_comp(self, meta, element, var, iter_):
        return ir.ListComp(element=element, var=str(var), iter=iter_, span=_span(meta))

    def dict_comp(self, meta, item, var, iter_):
        key, value = item
        return ir.DictComp(key=key, value=value, var=str(var), iter=iter_, span=_span(meta))

    def dict_lit(self, meta, *items):
        items = [i for i in items if i is not None]
        return ir.DictExpr(keys=[k for k, _ in items], values=[v for _, v in items], span=_span(meta))

    def dict_item(self, meta, key, value):
        return (key, value)

    @classmethod
    def _child_name(cls, tok: Token) -> str:
        """A child's name: a NAME, or a string for one that is no identifier (``"block1-0"``). A name that
        could be written bare is refused in quotes, so that each child has one spelling: the reader of a
        quoted one knows forward cannot call it by name, and fmt prints what the source wrote."""
        if tok.type == "NAME":
            return str(tok)
        name = cls._str(tok)
        problem = name_problem(name, "a child")
        if problem is not None and name.isidentifier() and not keyword.iskeyword(name):
            raise SpecSyntaxError(problem[0], _tok_span(tok), hint=problem[1])  # "self", "training": why not
        if is_attribute_name(name) and name not in _KEYWORDS:  # `"block" = ...`: a keyword of the spec, not Python's
            raise SpecSyntaxError(f"the child name {name!r} needs no quotes", _tok_span(tok),
                                  hint=f"write it as a name: {name} = ...; quotes are for names that are no "
                                       f"identifier, such as \"block1-0\"")
        if keyword.iskeyword(name):  # reserved in the generated code, quoted or not
            raise SpecSyntaxError(f"{name!r} cannot name a child: it is a Python keyword", _tok_span(tok),
                                  hint=f"choose another name, e.g. {name}_")
        return name

    @staticmethod
    def _str(tok: Token) -> str:
        # the grammar admits only a quoted literal here, which literal_eval reads safely
        if "\x00" in tok:
            raise SpecSyntaxError("a string cannot hold a NUL character", _tok_span(tok), hint="delete it")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "\q": an error here, whatever the warning settings
                return ast.literal_eval(str(tok))
        except (ValueError, SyntaxError, Warning):
            raise SpecSyntaxError("invalid escape in string", _tok_span(tok),
                                  hint="escapes are Python's (\\n, \\t, \\xhh, \\uhhhh); write a backslash as \\\\"
                                  ) from None
