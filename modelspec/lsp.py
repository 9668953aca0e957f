"""`modelspec lsp`: the language server an editor starts, speaking the Language Server Protocol on stdio.

Wiring only, on pygls: what the spec means (the diagnostics, what is under
the cursor, what a name refers to, what may come next) is modelspec/editor.py
and modelspec/hover.py, which know nothing of the protocol.

* Diagnostics are published when a document opens, once typing pauses for
  ``DEBOUNCE`` seconds after a change, and when it is saved; each says its
  code (``MS401``, linked to docs/errors.md), ``source="modelspec"``, and its
  hint after the message.
* A diagnostic inside an imported file (an error in an imported block) is
  published on that file's URI, at its exact place, and pointed at from the
  line of the document that imports it (with the exact place as related
  information), so it shows both where it is and where it bites. What several
  open documents find in one imported file is merged, and each withdraws its
  own when it is fixed or closed. Imports are read from disk, as `modelspec
  check` reads them: saving a file checks again the open documents that import.
* Every answer comes from one `Analysis` per text, cached until the text
  changes: hovering twice elaborates once.
* Documents are synced whole (``TextDocumentSyncKind.Full``): positions are
  then converted in one place, `editor.TextIndex`, which counts lines as the
  protocol does and code units in the encoding the client chose (UTF-16
  unless it offers another).
* A request about a document that is neither open nor on disk (a file
  deleted since) answers nothing, as other servers do.
* A bug in modelspec never stops the server: a request answers nothing and
  logs the error, a check publishes it as a diagnostic that says it is
  modelspec's own, with no code (the codes name problems in a spec).
"""

from __future__ import annotations

import asyncio
import functools
import os
import traceback
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from . import ir
from .diagnostics import Diagnostic, doc_url
from .editor import START, Analysis, TextIndex, completions, definition, formatted
from .errors import SpecError
from .hover import hover
from .imports import import_of
from .pipeline import read_spec
from .version import __version__

DEBOUNCE = 0.25  # seconds of quiet after a change before the spec is checked again: not on every keystroke

SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning}
KINDS = {"argument": T.CompletionItemKind.Property, "value": T.CompletionItemKind.Variable,
         "child": T.CompletionItemKind.Field, "layer": T.CompletionItemKind.Class,
         "block": T.CompletionItemKind.Class, "const": T.CompletionItemKind.Constant,
         "function": T.CompletionItemKind.Function, "keyword": T.CompletionItemKind.Keyword}


class SpecServer(LanguageServer):
    """The server, and what it keeps between messages."""

    def __init__(self):
        super().__init__("modelspec", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Full)
        self.analyses: dict[str, Analysis] = {}  # uri -> the analysis of its latest text
        self.changes: dict[str, int] = {}  # uri -> changes received, so that a pending check sees a newer one
        # uri published to -> (uri of the document whose check found them -> its diagnostics there)
        self.found: dict[str, dict[str, list[T.Diagnostic]]] = {}

    @property
    def encoding(self) -> str:
        chosen = self.workspace.position_encoding
        return getattr(chosen, "value", chosen) or "utf-16"

    def analysis(self, uri: str) -> Analysis | None:
        """The analysis of the document's current text: the cached one while the text is unchanged; None for a
        document that is neither open nor readable on disk."""
        try:
            text = self.workspace.get_text_document(uri).source
        except (OSError, UnicodeDecodeError):  # not open: pygls reads it from disk
            return None
        cached = self.analyses.get(uri)
        if cached is None or cached.text != text:
            cached = self.analyses[uri] = Analysis(text, to_fs_path(uri) or uri)
        return cached


SERVER = SpecServer()


def serve() -> int:
    """Run the server on stdin and stdout until the editor says exit."""
    SERVER.start_io()
    return 0


def answers(fn):
    """A request handler about one document, given its analysis: it answers nothing for a document that is
    neither open nor on disk, and nothing, logging why, should modelspec fail inside it."""

    @functools.wraps(fn)
    def guarded(ls: SpecServer, params):
        try:
            a = ls.analysis(params.text_document.uri)
            return None if a is None else fn(ls, a, params)
        except Exception as exc:  # a bug in modelspec: the editor keeps its server
            ls.window_log_message(T.LogMessageParams(T.MessageType.Error, _internal(exc)))
            return None

    return guarded


def _internal(exc: Exception) -> str:
    said = (f"internal error in modelspec, not a problem in this spec: {type(exc).__name__}: {exc}; "
            "please report this bug in modelspec")
    if os.environ.get("MODELSPEC_DEBUG"):
        return f"{said}\n{traceback.format_exc()}"
    return f"{said} (a server started with MODELSPEC_DEBUG=1 adds the traceback)"


# ---------------------------------------------------------------- diagnostics
@SERVER.feature(T.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SpecServer, params: T.DidOpenTextDocumentParams):
    check(ls, params.text_document.uri)


@SERVER.feature(T.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: SpecServer, params: T.DidChangeTextDocumentParams):
    uri = params.text_document.uri
    ls.changes[uri] = seen = ls.changes.get(uri, 0) + 1
    await asyncio.sleep(DEBOUNCE)
    if ls.changes.get(uri) == seen and uri in ls.workspace.text_documents:
        check(ls, uri)


@SERVER.feature(T.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SpecServer, params: T.DidSaveTextDocumentParams):
    saved = params.text_document.uri
    for uri in list(ls.workspace.text_documents):
        cached = ls.analyses.get(uri)
        if cached is not None and cached.spec is not None and any(isinstance(i, ir.Import)
                                                                   for i in cached.spec.items):
            ls.analyses.pop(uri)  # its text is the same, but what it imports may not be
            if uri != saved:
                check(ls, uri)
    check(ls, saved)


@SERVER.feature(T.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SpecServer, params: T.DidCloseTextDocumentParams):
    uri = params.text_document.uri
    ls.analyses.pop(uri, None)
    ls.changes.pop(uri, None)
    for target in [t for t, by in ls.found.items() if uri in by]:
        publish(ls, target, uri, [])


def check(ls: SpecServer, uri: str) -> None:
    """Check the document and publish what is found: here, and in the imported files it reaches."""
    a = ls.analysis(uri)
    if a is None:
        return  # neither open nor on disk: nothing to check
    try:
        here, elsewhere = _found(ls, a)
    except Exception as exc:  # a bug in modelspec: said where the user looks, and the server goes on
        here, elsewhere = [_failure(exc)], {}
    publish(ls, uri, uri, here)
    for target, diagnostics in elsewhere.items():
        publish(ls, target, uri, diagnostics)
    for target in [t for t, by in ls.found.items() if uri in by and t != uri and t not in elsewhere]:
        publish(ls, target, uri, [])  # fixed since the last check


def _found(ls: SpecServer, a: Analysis) -> tuple[list[T.Diagnostic], dict[str, list[T.Diagnostic]]]:
    """What the check finds, as the protocol's: in the document, and in each imported file (by its URI), each of
    those also pointed at from the document's import."""
    here, elsewhere = [], {}
    for d in a.diagnostics:
        if d.path in (None, a.path):
            here.append(to_lsp(d, a.index, ls.encoding))
        else:
            target = from_fs_path(d.path) or d.path
            elsewhere.setdefault(target, []).append(to_lsp(d, _index_of(a, d.path), ls.encoding))
            here.append(_pointer(ls, a, d))
    return here, elsewhere


def _failure(exc: Exception) -> T.Diagnostic:
    """A bug in modelspec, said at the start of the document: without a code, as the codes name a spec's
    problems (a character past the end of the line stands for its end, so the range fits any document)."""
    return T.Diagnostic(range=T.Range(start=T.Position(0, 0), end=T.Position(0, 1)), message=_internal(exc),
                        severity=T.DiagnosticSeverity.Error, source="modelspec")


def publish(ls: SpecServer, target: str, origin: str, diagnostics: list[T.Diagnostic]) -> None:
    """Set what ``origin``'s check found in ``target`` and publish everything found there, once each."""
    by = ls.found.setdefault(target, {})
    by[origin] = diagnostics
    if not diagnostics:
        del by[origin]
    merged, seen = [], set()
    for ds in by.values():
        for d in ds:
            key = (d.range.start.line, d.range.start.character, d.code, d.message)
            if key not in seen:
                seen.add(key)
                merged.append(d)
    if not by:
        del ls.found[target]
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=target, diagnostics=merged))


def to_lsp(d: Diagnostic, index: TextIndex, encoding: str) -> T.Diagnostic:
    """A modelspec diagnostic as the protocol's: its range in the client's units, the hint after the message."""
    return T.Diagnostic(
        range=_range(index, d.line, d.column, d.end_line, d.end_column, encoding),
        message=d.message + (f"\nhint: {d.hint}" if d.hint else ""),
        severity=SEVERITY[d.severity], code=d.code, source="modelspec",
        code_description=T.CodeDescription(href=doc_url(d.code)),
    )


def _pointer(ls: SpecServer, a: Analysis, d: Diagnostic) -> T.Diagnostic:
    """A diagnostic inside an imported file, said at the import that brings it in."""
    item = import_of(a.spec, a.path, d.path) if a.spec is not None else None
    span = item.span if item is not None else START
    shown = os.path.relpath(d.path, os.path.dirname(a.path)) if os.path.isabs(a.path) else d.path
    where = T.Location(uri=from_fs_path(d.path) or d.path,
                       range=_range(_index_of(a, d.path), d.line, d.column, d.end_line, d.end_column, ls.encoding))
    return T.Diagnostic(
        range=_range(a.index, span.line, span.column, span.end_line, span.end_column, ls.encoding),
        message=f"{shown}:{d.line}:{d.column}: {d.message}" + (f"\nhint: {d.hint}" if d.hint else ""),
        severity=SEVERITY[d.severity], code=d.code, source="modelspec",
        code_description=T.CodeDescription(href=doc_url(d.code)),
        related_information=[T.DiagnosticRelatedInformation(location=where, message=d.message)],
    )


def _index_of(a: Analysis, path: str) -> TextIndex:
    """The text of an imported file, to place a range in it: as the imports read it, or read again."""
    text = a.imports.texts.get(path)
    if text is None:
        try:
            text, _ = read_spec(Path(path))
        except SpecError:
            text = ""
    return TextIndex(text)


def _range(index: TextIndex, line: int, column: int, end_line: int, end_column: int, encoding: str) -> T.Range:
    start = index.lsp_position(index.offset(line, column), encoding)
    end = index.lsp_position(index.offset(end_line, end_column), encoding)
    return T.Range(start=T.Position(*start), end=T.Position(*end))


def _span_range(index: TextIndex, span, encoding: str) -> T.Range:
    return _range(index, span.line, span.column, span.end_line, span.end_column, encoding)


def _place(ls: SpecServer, a: Analysis, position: T.Position) -> tuple[int, int]:
    return a.index.place(a.index.lsp_offset(position.line, position.character, ls.encoding))


# ---------------------------------------------------------------- requests
@SERVER.feature(T.TEXT_DOCUMENT_HOVER)
@answers
def on_hover(ls: SpecServer, a: Analysis, params: T.HoverParams):
    got = hover(a, *_place(ls, a, params.position))
    if got is None:
        return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=got.markdown),
                   range=_span_range(a.index, got.span, ls.encoding))


@SERVER.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "(", ","]))
@answers
def on_completion(ls: SpecServer, a: Analysis, params: T.CompletionParams):
    items = [T.CompletionItem(label=c.label, kind=KINDS[c.kind], detail=c.detail or None,
                              documentation=c.doc or None, sort_text=f"{c.rank}{c.label}")
             for c in completions(a, *_place(ls, a, params.position))]
    return T.CompletionList(is_incomplete=False, items=items)


@SERVER.feature(T.TEXT_DOCUMENT_DEFINITION)
@answers
def on_definition(ls: SpecServer, a: Analysis, params: T.DefinitionParams):
    got = definition(a, *_place(ls, a, params.position))
    if got is None:
        return None
    index = a.index if got.path == a.path else _index_of(a, got.path)
    return T.Location(uri=from_fs_path(got.path) or got.path, range=_span_range(index, got.span, ls.encoding))


@SERVER.feature(T.TEXT_DOCUMENT_FORMATTING)
@answers
def on_formatting(ls: SpecServer, a: Analysis, params: T.DocumentFormattingParams):
    """The whole text replaced by `modelspec fmt`'s; nothing where it does not parse (its errors say why)."""
    text = formatted(a)
    if text is None:
        return None
    if text == a.text:
        return []
    end = a.index.lsp_position(len(a.text), ls.encoding)
    return [T.TextEdit(range=T.Range(start=T.Position(0, 0), end=T.Position(*end)), new_text=text)]
