"""Text -> surface IR: the Lark LALR front end.

`parse(text, path)` returns an `ir.SpecFile` or raises `SpecSyntaxError`
pointing at the offending character, with the syntax errors found past it,
where parsing resumes at the next top-level item, in its ``more``;
`parse_partial` also returns the items that parsed. No Lark type leaks out
of this module.
"""

from __future__ import annotations

import ast
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
from .errors import MAX_ERRORS, Span, SpecError, SpecLimitError, SpecSyntaxError, did_you_mean
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
    return Parsed(ir.SpecFile(path=path, items=_untouched(items, broken, text)), errors, frozenset(broken))


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
              "'>='", "'.'", "'['", "'('", "'if'", "'and'", "'or'", "'not'", "'in'", "'is'"}
_EXPR_START = {"a name", "an integer", "a number", "a string", "_", "'('", "'['", "'{'", "'-'", "'+'", "'not'",
               "'True'", "'False'", "'None'", "'*'"}


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
    listed = sorted(words) + summary
    if len(listed) > 8:
        listed = listed[:8] + ["..."]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _bracket_problem(text: str, at: tuple[int, int]) -> SpecSyntaxError | None:
    """A bracket that does not match, closes nothing or is never closed, as CPython's tokenizer says it, where
    it explains a syntax error at ``at`` (line, column): a closer up to there, or an opener before it. Strings
    and comments are skipped."""
    stack: list[tuple[str, int, int]] = []
    line, col, i, n = 1, 1, 0, len(text)
    found = None
    while i < n:
        ch = text[i]
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] not in (ch, "\n"):
                j += 2 if text[j] == "\\" else 1
            col += j + 1 - i
            i = j + 1
            continue
        if ch == "\n":
            line, col, i = line + 1, 1, i + 1
            continue
        if ch in _PAIRS:
            stack.append((ch, line, col))
        elif ch in ")]}":
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
        i, col = i + 1, col + 1
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
    last = text.split("\n")[bl - 1].rstrip()
    end = f"; perhaps at the end of line {bl}: {last.strip()}{_PAIRS[ch]}" \
        if ch != "{" and at[0] > bl and len(last) < 60 else ""
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
    elif isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.split("\n")  # as Lark counts lines; the end of the last line that has text
        if len(lines) > 1 and not lines[-1]:
            lines.pop()
        line, column = len(lines), len(lines[-1].rstrip("\r")) + 1
        expected = _describe(exc.expected)
        msg = f"unexpected end of file; expected {expected}"
        hint = "a '(', '[' or '{' may be left open" if any(t in expected for t in ("')'", "']'", "'}'")) else \
            "the file ends in the middle of a statement: finish it"
        width = 1
    else:
        tok = exc.token
        expected = _describe(getattr(exc, "accepts", None) or exc.expected)
        shown = str(tok) if len(str(tok)) <= 30 else str(tok)[:27] + "..."
        msg = f"unexpected {shown!r}; expected {expected}"
        hint = None
        if tok.type == "NAME" and tok in ("if", "else", "for", "in", "and", "or", "not", "is"):
            hint = f"'{tok}' cannot stand here"
        before = text[: tok.start_pos].rstrip()
        comment = before.find("#", before.rfind("\n") + 1)  # less a comment at the end of the line (no regex:
        before = (before[:comment] if comment >= 0 else before).rstrip()  # a long run of blanks would be slow)
        ends_value = bool(before) and (before[-1].isalnum() or before[-1] in "_)]\"'")
        if "','" in expected and ends_value and tok.type in (
                "NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB", "INFER"):
            msg = f"unexpected {shown!r}: perhaps you forgot a comma?"
            end = before.count("\n") + 1
            hint = f"put a ',' before {shown!r}" if end == tok.line else f"put a ',' at the end of line {end}"
        elif tok == "=" and "':'" in expected:
            name = re.search(r"(\w+)$", before)
            msg = "unexpected '=': an input is declared with ':'"
            hint = f"write {name.group(1) if name else 'x'}: [B, ...]"
        hint = hint or _token_hint(text, tok, expected) or f"here the grammar expects {expected}"
        width = max(len(str(tok)), 1)
    if line is None or line < 1:
        line, column = 1, 1
    span = Span(line=line, column=column, end_line=line, end_column=column + width)
    return SpecSyntaxError(msg, span, hint=hint)


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
    if tok in (")", "]", "}") and f"'{tok}'" not in expected:
        return f"this '{tok}' closes nothing: remove it, or add the bracket that opens it"
    if tok == "{" and "'block'" in expected and re.search(r"\bblock\s+\w+\s*\([^{}]*\)\s*=[^{}]*$", before):
        return "a block written `= Sequential(...)` has no body: give it either that value or a body in braces"
    if tok == ":" and "'{'" in expected:
        return "a body goes in braces, not after a colon: model M(x: [B, 4]) { ... }"
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
        return ir.Train(model=str(model) if model is not None else None, body=list(body), span=_span(meta))

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
        if is_attribute_name(name):
            raise SpecSyntaxError(f"the child name {name!r} needs no quotes", _tok_span(tok),
                                  hint=f"write it as a name: {name} = ...; quotes are for names that are no "
                                       f"identifier, such as \"block1-0\"")
        if name.isidentifier() and name.isascii():  # a keyword: reserved in the generated code, quoted or not
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
