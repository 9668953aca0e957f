"""`modelspec lsp` driven as an editor drives it: a real client on the server's stdin and stdout.

One server runs for the whole module (`python -m modelspec lsp --stdio`, as
an editor's language client starts it; pytest-lsp starts it here): it is
initialized once, and each test opens documents of its own under their own
URIs. What a hover or completion says in detail is held in
tests/test_editor.py, without a server; here, that the protocol carries it:
ranges in UTF-16 units, diagnostics published and withdrawn, edits that apply.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as T  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from modelspec import editor, lsp  # noqa: E402
from modelspec.cli import main  # noqa: E402
from modelspec.fmt import format_spec  # noqa: E402
from modelspec.summary import summarize  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")
WAIT = 60  # seconds to wait for a message before the test fails (never reached unless the server hangs)

BAD = "model M(x: [B, 4]) {\n    fc = Linear(3, 2)\n}\n"
FIXED = "model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n}\n"


SERVER: dict = {}  # what the server said when initialized: its capabilities


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "modelspec", "lsp", "--stdio"]),
                    scope="module")
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(T.InitializeParams(capabilities=T.ClientCapabilities()))
    SERVER["capabilities"] = result.capabilities
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lsp")


def _uri(folder: Path, name: str) -> str:
    return (folder / name).as_uri()


async def _published(client: LanguageClient, uri: str, send) -> list[T.Diagnostic]:
    """Send a notification, then wait for the diagnostics the server publishes for ``uri`` after it (read off
    the client's record of every publication: waiting for the next notification could miss one that comes
    right behind another)."""
    client.diagnostics.pop(uri, None)
    send()
    await asyncio.wait_for(_arrived(client, uri), WAIT)
    return list(client.diagnostics[uri])


async def _arrived(client: LanguageClient, uri: str) -> None:
    while uri not in client.diagnostics:
        await asyncio.sleep(0.01)


def _open(client: LanguageClient, uri: str, text: str):
    return lambda: client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri=uri, language_id="nnspec", version=1, text=text)))


def _change(client: LanguageClient, uri: str, text: str, version: int = 2):
    return lambda: client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [T.TextDocumentContentChangeWholeDocument(text=text)]))


def _range(start: tuple[int, int], end: tuple[int, int]) -> T.Range:
    return T.Range(T.Position(*start), T.Position(*end))


async def test_stdio_is_taken_as_language_clients_pass_it_and_said_to_be_the_only_transport(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["lsp", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--stdio speak on stdin and stdout: the only transport, and the default" in shown


async def test_the_server_says_what_it_offers(client):
    offers = SERVER["capabilities"]
    assert offers.hover_provider and offers.definition_provider and offers.document_formatting_provider
    assert set(offers.completion_provider.trigger_characters) == {".", "(", ","}
    sync = offers.text_document_sync
    assert sync.change == T.TextDocumentSyncKind.Full and sync.open_close and sync.save
    assert offers.position_encoding == T.PositionEncodingKind.Utf16  # the default, as the client offered none


async def test_a_bad_spec_gets_its_diagnostic_at_its_range_and_a_fixed_one_an_empty_list(client, folder):
    uri = _uri(folder, "bad.nnspec")
    found = await _published(client, uri, _open(client, uri, BAD))
    assert len(found) == 1
    d = found[0]
    assert d.range == _range((1, 16), (1, 17))  # the 3 of Linear(3, 2), 0-based
    assert (d.code, d.source, d.severity) == ("MS401", "modelspec", T.DiagnosticSeverity.Error)
    assert d.message.startswith("Linear `fc` expects in_features=3 but its input is [B, 4]")
    assert "\nhint: use Linear(4, 2), or Linear(_, 2) to infer it" in d.message
    assert d.code_description.href.endswith("#ms401")
    assert await _published(client, uri, _change(client, uri, FIXED)) == []


async def test_ranges_count_utf16_code_units(client, folder):
    uri = _uri(folder, "unicode.nnspec")
    text = 'model M(x: [B, 4]) {\n    "é😀" = Linear(3, 2)\n}\n'  # the 3 is code point 18, UTF-16 unit 19
    (d,) = await _published(client, uri, _open(client, uri, text))
    assert d.range == _range((1, 19), (1, 20))


async def test_warnings_and_syntax_errors_are_published_with_their_codes(client, folder):
    uri = _uri(folder, "warned.nnspec")
    text = ("model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n    extra = Linear(4, 2)\n"
            "    forward(x) { return fc(x) }\n}\n")
    (d,) = await _published(client, uri, _open(client, uri, text))
    assert (d.severity, d.code, d.range.start) == (T.DiagnosticSeverity.Warning, "MS807", T.Position(2, 4))
    (d,) = await _published(client, uri, _change(client, uri, "model M(x: [B, 4]) {\n    fc = Linear(_ 2)\n}\n"))
    assert (d.severity, d.code, d.range) == (T.DiagnosticSeverity.Error, "MS101", _range((1, 18), (1, 19)))


async def test_an_error_in_an_imported_block_is_published_on_that_file_and_pointed_at_from_the_import(
        client, folder):
    lib = folder / "lib.nnspec"
    lib.write_text("block Head(n) {\n    fc = Linear(3, n)\n}\n", encoding="utf-8")
    uri, lib_uri = _uri(folder, "uses_lib.nnspec"), lib.as_uri()
    text = 'import "lib.nnspec"\nmodel M(x: [B, 8]) {\n    h = Head(2)\n}\n'
    await _published(client, lib_uri, _open(client, uri, text))  # published after the importer's own
    (there,) = client.diagnostics[lib_uri]
    assert there.range == _range((1, 16), (1, 17)) and there.code == "MS401"
    (pointer,) = client.diagnostics[uri]
    assert pointer.range == _range((0, 0), (0, 19))  # the import line
    assert pointer.message.startswith("lib.nnspec:2:17: Linear `h.fc` expects in_features=3")
    assert pointer.related_information[0].location == T.Location(lib_uri, there.range)
    lib.write_text("block Head(n) {\n    fc = Linear(_, n)\n}\n", encoding="utf-8")
    saved = T.DidSaveTextDocumentParams(T.TextDocumentIdentifier(uri=lib_uri))  # as an editor says it saved lib
    assert await _published(client, lib_uri, lambda: client.text_document_did_save(saved)) == []  # withdrawn
    assert list(client.diagnostics[uri]) == []


async def test_hover_gives_a_layers_shapes_parameters_mult_adds_and_signature(client, folder):
    uri = _uri(folder, "hover.nnspec")
    text = "model M(x: [B, 784]) {\n    fc = Linear(_, 10)\n}\n"
    await _published(client, uri, _open(client, uri, text))
    got = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(1, 11)))
    shown = got.contents.value
    row = next(r for r in summarize(text).rows if r.name == "fc")
    assert got.contents.kind == T.MarkupKind.Markdown and got.range == _range((1, 9), (1, 15))
    assert "`nn.Linear(in_features=784, out_features=10, bias=True)`" in shown
    assert f"[B, 784] → [B, 10] · {row.params:,} params · {row.macs:,} MACs" in shown
    assert "nn.Linear(in_features, out_features, bias=True)" in shown  # the signature


async def test_completion_offers_layers_arguments_and_names_in_scope(client, folder):
    uri = _uri(folder, "complete.nnspec")
    text = "const WIDTH = 8\nmodel M(x: [B, 4]) {\n    fc = Linear(_, 2, )\n    g = Lin\n}\n"
    await _published(client, uri, _open(client, uri, text))

    async def labels(line, character):
        got = await client.text_document_completion_async(
            T.CompletionParams(T.TextDocumentIdentifier(uri), T.Position(line, character)))
        return {item.label: item for item in got.items}

    arguments = await labels(2, 22)
    assert "bias=" in arguments and "in_features=" not in arguments
    assert arguments["bias="].kind == T.CompletionItemKind.Property
    names = await labels(3, 11)
    assert names["Linear"].detail == "nn.Linear(in_features, out_features, bias=True)"
    assert {"fc", "WIDTH"} <= set(names)


async def test_definition_finds_blocks_consts_and_imported_files(client, folder):
    (folder / "defs_lib.nnspec").write_text("const K = 3\nblock Far(n) {\n    fc = Linear(_, n)\n}\n",
                                            encoding="utf-8")
    uri = _uri(folder, "defs.nnspec")
    text = ('import "defs_lib.nnspec"\nconst W = 4\nblock Near(n) {\n    fc = Linear(_, n)\n}\n'
            "model M(x: [B, W]) {\n    a = Near(W)\n    b = Far(K)\n}\n")
    await _published(client, uri, _open(client, uri, text))

    async def target(line, character):
        return await client.text_document_definition_async(
            T.DefinitionParams(T.TextDocumentIdentifier(uri), T.Position(line, character)))

    lib_uri = _uri(folder, "defs_lib.nnspec")
    assert await target(6, 9) == T.Location(uri, _range((2, 6), (2, 10)))  # Near
    assert await target(6, 14) == T.Location(uri, _range((1, 6), (1, 7)))  # W
    assert await target(7, 9) == T.Location(lib_uri, _range((1, 6), (1, 9)))  # Far, imported
    assert await target(7, 13) == T.Location(lib_uri, _range((0, 6), (0, 7)))  # K, imported
    assert await target(0, 12) == T.Location(lib_uri, _range((0, 0), (0, 0)))  # the import's path
    assert await target(7, 4) == T.Location(uri, _range((7, 4), (7, 5)))  # b itself


async def test_formatting_edits_give_what_fmt_prints(client, folder):
    uri = _uri(folder, "messy.nnspec")
    text = "model M(x:[B,3]){fc=Linear(_,2) # out\nact=ReLU()}"
    await _published(client, uri, _open(client, uri, text))
    formatting = T.DocumentFormattingParams(T.TextDocumentIdentifier(uri), T.FormattingOptions(4, True))
    edits = await client.text_document_formatting_async(formatting)
    assert _apply(text, edits) == format_spec(text)
    await _published(client, uri, _change(client, uri, format_spec(text)))
    unchanged = await client.text_document_formatting_async(formatting)
    assert unchanged is not None and len(unchanged) == 0  # formatted already: no edits (None: cannot format)
    await _published(client, uri, _change(client, uri, "model M(x: [B, 4]) {\n    fc = Linear(_ 2)\n}\n", 3))
    assert await client.text_document_formatting_async(formatting) is None  # a syntax error: its diagnostic says


def _apply(text: str, edits: list[T.TextEdit]) -> str:
    """The text after the edits (ASCII text: UTF-16 units are characters)."""
    lines = text.split("\n")
    offset = lambda p: sum(len(x) + 1 for x in lines[:p.line]) + p.character
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


NASTY = {
    "empty": ("", "MS900"),
    "binary": ("\x00\x01\xff\ufffd\x7f junk {{{ ((( \ud800", "MS101"),
    "huge_numbers": ("model M(x: [B, 99999999999999999999999]) {\n    fc = Linear(_, 10 ** 100)\n}\n", "MS601"),
    "deep_brackets": ("model M(x: [B, 4]) {\n    fc = Linear(_, " + "[" * 3000 + "1" + "]" * 3000 + ")\n}\n", "MS601"),
    "unclosed": ("model M(x: [B, 4]) {\n    fc = Linear(_, " + "(" * 5000 + "\n", "MS101"),
    "over_the_size_limit": ("# " + "x" * 5_000_001 + "\n", "MS601"),
}


@pytest.mark.parametrize("name", NASTY)
async def test_nasty_buffers_get_diagnostics_and_the_server_goes_on(client, folder, name):
    text, code = NASTY[name]
    uri = _uri(folder, f"nasty_{name}.nnspec")
    found = await _published(client, uri, _open(client, uri, text))
    assert found and all(d.source == "modelspec" for d in found)
    assert found[0].code == code, found[0]
    assert "internal error" not in found[0].message
    for request in (client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(0, 3))),
                    client.text_document_completion_async(
                        T.CompletionParams(T.TextDocumentIdentifier(uri), T.Position(0, 3))),
                    client.text_document_definition_async(
                        T.DefinitionParams(T.TextDocumentIdentifier(uri), T.Position(0, 3)))):
        await asyncio.wait_for(request, WAIT)  # answered, whatever the answer
    assert await _published(client, uri, _change(client, uri, FIXED)) == []  # and still checking


async def test_a_file_of_blocks_alone_is_a_library_not_a_spec_without_a_model(client, folder):
    uri = _uri(folder, "only_blocks.nnspec")
    assert await _published(client, uri, _open(client, uri, "block B(n) {\n    fc = Linear(_, n)\n}\n")) == []


async def test_a_request_about_a_document_neither_open_nor_on_disk_answers_nothing_and_logs_nothing(client, folder):
    document, at = T.TextDocumentIdentifier(_uri(folder, "never_written.nnspec")), T.Position(0, 0)
    logged = len(client.log_messages)
    assert await client.text_document_hover_async(T.HoverParams(document, at)) is None
    assert await client.text_document_completion_async(T.CompletionParams(document, at)) is None
    assert await client.text_document_definition_async(T.DefinitionParams(document, at)) is None
    assert await client.text_document_formatting_async(
        T.DocumentFormattingParams(document, T.FormattingOptions(4, True))) is None
    assert client.log_messages[logged:] == []  # not an internal error: other servers answer so too


async def test_a_bug_in_modelspec_is_published_as_its_own_without_a_code(monkeypatch):
    """In this process, with a check made to fail: what the editor shows says whose the bug is, and names no
    code of docs/errors.md (those are a spec's problems)."""
    def broken(analysis):
        raise ZeroDivisionError("division by zero")

    server, published = lsp.SpecServer(), []
    monkeypatch.setattr(editor.Analysis, "diagnostics", property(broken))
    monkeypatch.setattr(server, "analysis", lambda uri: editor.Analysis(FIXED, "fixed.nnspec"))
    monkeypatch.setattr(server, "text_document_publish_diagnostics", published.append)
    lsp.check(server, "file:///fixed.nnspec")
    (params,) = published
    (d,) = params.diagnostics
    assert (d.code, d.code_description, d.source, d.severity) == (None, None, "modelspec", T.DiagnosticSeverity.Error)
    assert d.message.startswith("internal error in modelspec, not a problem in this spec: ZeroDivisionError")
