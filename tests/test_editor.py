"""What the language server knows of a spec, asked without a server: modelspec/editor.py and hover.py.

Places here are the project's (1-based lines, columns in code points), as
`Analysis` takes them; tests/test_lsp.py holds the protocol's conversions over
a real connection.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from conftest import ROOT
from modelspec import editor, ir
from modelspec.editor import Analysis, TextIndex, completions, definition, formatted, symbol_at
from modelspec.fmt import format_spec
from modelspec.hover import hover, macs
from modelspec.summary import summarize

SPECS = sorted(glob.glob(str(ROOT / "specs" / "**" / "*.nnspec"), recursive=True))


def _at(text: str, marker: str, nth: int = 0) -> tuple[int, int]:
    """The place of the ``nth`` occurrence of ``marker`` in ``text`` (its first character)."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(marker, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _hover(text: str, marker: str, nth: int = 0, path: str = "m.nnspec") -> str:
    got = hover(Analysis(text, path), *_at(text, marker, nth))
    assert got is not None, f"no hover at {marker!r}"
    return got.markdown


# ---------------------------------------------------------------- places
@pytest.mark.parametrize("encoding, character", [("utf-16", 9), ("utf-8", 12), ("utf-32", 8)])
def test_positions_count_code_units_of_the_encoding(encoding, character):
    ix = TextIndex("a\n'é😀' = 3x")  # the x is code point 9 of line 2: é is 2 UTF-8 units, 😀 4, and 2 UTF-16 ones
    offset = ix.offset(2, 9)
    assert ix.text[offset] == "x"
    assert ix.lsp_position(offset, encoding) == (1, character)
    assert ix.lsp_offset(1, character, encoding) == offset


def test_a_lone_carriage_return_ends_a_line_for_the_protocol_not_for_the_parser():
    ix = TextIndex("a\rb\nc")
    assert ix.place(ix.text.index("c")) == (2, 1)
    assert ix.lsp_position(ix.text.index("b"), "utf-16") == (1, 0)
    assert ix.lsp_position(ix.text.index("c"), "utf-16") == (2, 0)


def test_the_first_line_of_a_text_with_a_byte_order_mark_is_placed_as_the_parser_places_it():
    text = "\ufeffmodel M(x: [B, 4]) { fc = Linear(3, 2) }"
    (d,) = Analysis(text, "m.nnspec").diagnostics
    ix = TextIndex(text)
    assert text[ix.offset(d.line, d.column)] == "3"


def test_places_past_the_end_are_held_to_the_text():
    ix = TextIndex("ab\ncd")
    assert ix.offset(1, 99) == 2 and ix.offset(99, 1) == 3
    assert ix.lsp_offset(0, 99, "utf-16") == 2 and ix.lsp_offset(7, 0, "utf-16") == 5


# ---------------------------------------------------------------- what a name refers to
SPEC = '''const W = 4
block Res(n, k = 3) {
    fc = Linear(_, n)
    forward(x) {
        h = fc(x)
        return h + x
    }
}
model M(x: [B, 8]) {
    layers = ModuleList([Linear(8, 8) for i in range(3)])
    r = Res(8)
    s = Res(W)
    forward(x) {
        for l in layers {
            x = l(x)
        }
        y = r(x)
        return s(y[:, :W])
    }
}
'''


@pytest.mark.parametrize("marker, nth, kind, defined", [
    ("fc(x)", 0, "child", "fc ="),
    ("h + x", 0, "value", "h = fc"),
    ("x)\n        return h", 0, "input", "x) {\n        h"),
    ("l(x)", 0, "loop", "l in"),
    ("layers {", 0, "child", "layers ="),
    ("W)", 0, "const", "W = 4"),
    ("Res(8)", 0, "block", "Res(n"),
    ("n)\n    forward", 0, "block_param", "n, k"),
    ("y[", 0, "value", "y = r"),
    ("x)\n        return s", 0, "value", "x = l(x)"),
])
def test_a_name_refers_to_its_definition(marker, nth, kind, defined):
    a = Analysis(SPEC, "m.nnspec")
    got = symbol_at(a, *_at(SPEC, marker, nth))
    assert got is not None and got.kind == kind
    assert (got.span.line, got.span.column) == _at(SPEC, defined)
    assert definition(a, *_at(SPEC, marker, nth)).span == got.span


def test_a_layer_is_torchs_and_has_no_definition_in_the_spec():
    a = Analysis(SPEC, "m.nnspec")
    got = symbol_at(a, *_at(SPEC, "Linear(_"))
    assert (got.kind, got.name, got.span) == ("layer", "Linear", None)
    assert definition(a, *_at(SPEC, "Linear(_")) is None


def test_an_imported_block_and_const_are_found_in_their_file(tmp_path):
    (tmp_path / "lib.nnspec").write_text("const K = 2\nblock Head(n) {\n    fc = Linear(_, n * K)\n}\n",
                                         encoding="utf-8")
    text = 'from "lib.nnspec" import Head, K\nmodel M(x: [B, 4]) {\n    h = Head(K)\n}\n'
    a = Analysis(text, str(tmp_path / "m.nnspec"))
    lib = str(tmp_path / "lib.nnspec")
    head, const = definition(a, *_at(text, "Head(K")), definition(a, *_at(text, "K)"))
    assert (head.path, str(head.span), const.path, str(const.span)) == (lib, "2:7", lib, "1:7")
    assert definition(a, *_at(text, "Head,")).span == head.span  # the name the import brings in
    assert definition(a, *_at(text, "lib.nnspec")).path == lib  # the import's path: the file
    shown = _hover(text, "Head(K", path=str(tmp_path / "m.nnspec"))
    assert "`Head(n=2)`" in shown and "[B, 4] → [B, 4] · 20 params" in shown and "block Head(n)" in shown


# ---------------------------------------------------------------- hover
def test_a_child_of_a_block_shows_each_instance_with_its_own_sizes():
    shown = _hover(SPEC, "fc =")
    assert "**fc**, 2 instances:" in shown
    assert "- `r.fc`: `nn.Linear(in_features=8, out_features=8, bias=True)` [B, 8] → [B, 8] · 72 params · 64 MACs" \
        in shown
    assert "- `s.fc`: `nn.Linear(in_features=4, out_features=4, bias=True)` [B, 4] → [B, 4] · 20 params · 16 MACs" \
        in shown


def test_a_layer_shows_its_signature_and_what_it_infers():
    shown = _hover(SPEC, "Linear(_")
    assert "nn.Linear(in_features, out_features, bias=True)" in shown
    assert "`_` infers in_features from the input's shape." in shown


def test_a_block_and_a_model_show_their_totals():
    res = _hover(SPEC, "Res(n")
    assert "block Res(n, k = 3)" in res and "2 uses:" in res and "- `s`: `Res(n=4, k=3)`" in res
    model = _hover(SPEC, "M(x")
    s = summarize(SPEC)
    assert f"{s.total_params:,} params · {s.total_mult_adds:,} MACs" in model and "model M(x: [B, 8])" in model


def test_forward_values_show_their_shapes_per_instance_and_per_loop_pass():
    assert _hover(SPEC, "h = fc").startswith("**h**:\n- `r`: [B, 8]\n- `s`: [B, 4]")
    assert _hover(SPEC, "x = l(x)") == "**x**: [B, 8] (each of 3 passes)"
    assert _hover(SPEC, "y[") == "**y**: [B, 8]"


def test_a_const_and_a_block_parameter_show_their_values():
    assert "`s`: n = 4" in _hover(SPEC, "n)\n    forward")
    text = "const W = 4 * 8\nmodel M(x: [B, W]) { fc = Linear(_, W) }\n"
    assert _hover(text, "W)") == "```nnspec\nconst W = 4 * 8\n```\n\n= 32"


BRANCHES = '''block Act(kind = "relu") {
    forward(x) {
        if kind == "relu" {
            y = F.relu(x)
        } else {
            y = F.gelu(x[:, :2])
        }
        return y
    }
}
block Basic(planes) {
    down = Linear(_, planes) if in_shape[1] != planes
    forward(x) {
        skip = down(x)
        return skip
    }
}
model Net(x: [B, 8], s: [B, T=6, 8]) {
    a = Act()
    b = Act("gelu")
    c = Basic(8)
    d = Basic(4)
    lstm = LSTM(8, 8, batch_first=True)
    drop = Dropout(0.1)
    forward(x, s) {
        out, (h, c2) = lstm(s)
        if training {
            z = drop(out)
        } else {
            z = out * 1.0
        }
        return a(z), b(z), c(x), d(x), h
    }
}
'''


def test_each_instance_shows_the_branch_it_took_of_a_compile_time_if():
    assert _hover(BRANCHES, "y = F.relu") == "**y**:\n- `a`: [B, T, 8]"
    assert _hover(BRANCHES, "y = F.gelu") == "**y**:\n- `b`: [B, 2, 8]"
    assert _hover(BRANCHES, "y\n") == "**y**:\n- `a`: [B, T, 8]\n- `b`: [B, 2, 8]"  # whichever ran


def test_a_value_is_found_by_its_statements_span_where_both_branches_print_alike():
    text = BRANCHES.replace("F.gelu(x[:, :2])", "F.relu(x)")  # the same printed line, from either branch
    assert _hover(text, "y = F.relu", 0) == "**y**:\n- `a`: [B, T, 8]"
    assert _hover(text, "y = F.relu", 1) == "**y**:\n- `b`: [B, T, 8]"


def test_values_past_a_conditional_child_an_if_training_and_a_tuple_target():
    assert _hover(BRANCHES, "skip =") == "**skip**:\n- `c`: [B, 8]\n- `d`: [B, 4]"
    assert _hover(BRANCHES, "z = drop") == "**z**: [B, T, 8]"
    assert _hover(BRANCHES, "z = out") == "**z**: [B, T, 8]"
    assert _hover(BRANCHES, "h, c2") == "**h**: [1, B, 8]"
    assert _hover(BRANCHES, "s) {\n        out") == "**s**: [B, T, 8]"


def test_a_model_that_fails_part_way_still_shows_the_modules_built_before_its_error():
    text = "model M(x: [B, 4]) {\n    fc = Linear(_, 8)\n    bad = Linear(3, 2)\n}\n"
    assert "[B, 4] → [B, 8] · 40 params" in _hover(text, "fc")
    assert "stopped at an error" in _hover(text, "M(")


def test_past_a_syntax_error_the_models_that_parsed_still_show_their_modules():
    text = "model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\nmodel C(x: [B, 4]) {\n    fc = Linear(_, 3)\n}\n"
    assert "[B, 4] → [B, 3] · 15 params" in _hover(text, "fc", 1)
    assert hover(Analysis(text, "m.nnspec"), *_at(text, "fc")) is None  # the broken model has no IR,
    assert "nn.Linear(in_features, out_features, bias=True)" in _hover(text, "Linear")  # but a layer is known


def test_a_text_is_elaborated_once_however_often_it_is_hovered(monkeypatch):
    calls = []
    real = editor.elaborate_parsed
    monkeypatch.setattr(editor, "elaborate_parsed", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = Analysis(SPEC, "m.nnspec")
    for marker in ("fc =", "h = fc", "Res(8)", "fc =", "y["):
        hover(a, *_at(SPEC, marker))
    assert len(calls) == 1  # one model


@pytest.mark.parametrize("path", SPECS, ids=lambda p: Path(p).relative_to(ROOT / "specs").as_posix())
def test_mult_adds_are_the_summarys(path):
    a = Analysis(Path(path).read_text(encoding="utf-8"), path)
    for view in a.models:
        s = summarize(path, model=view.name)
        rows = {r.path: r for r in s.rows}
        assert macs(view, view.nodes[0]) == s.total_mult_adds
        assert all(macs(view, n) == rows[n.path].macs for n in view.nodes if n.kind == "layer")


NO_TENSOR = {"B, T, C = x.size()", "b, t = idx.size()", "b, n, c = x.size()"}


def test_every_value_of_the_example_specs_forward_is_shown_or_is_no_tensor():
    """Every assignment of every example finds the line printed for it by its span: each value gets its
    shape but the sizes, which hold no tensor."""
    missing = set()
    for path in SPECS:
        a = Analysis(Path(path).read_text(encoding="utf-8"), path)
        for fwd in (s for item in a.spec.items for s in getattr(item, "body", None) or []
                    if isinstance(s, ir.Forward)):
            for stmt, target in editor._bindings(fwd):
                if hover(a, target.span.line, target.span.column) is None:
                    missing.add(a.index.source(stmt.span))
    assert missing == NO_TENSOR


# ---------------------------------------------------------------- completion
def _labels(text: str, marker: str, after: int = 0) -> dict:
    line, column = _at(text, marker)
    return {c.label: c for c in completions(Analysis(text, "m.nnspec"), line, column + after)}


def test_after_a_namespace_its_layers_or_functions():
    assert "Conv2d" in _labels("model M(x: [B, 4]) {\n    c = nn.Co\n}", "Co", 2)
    assert "relu" in _labels("model M(x: [B, 4]) {\n    forward(x) { return F.re }\n}", "re }", 2)
    assert "cat" in _labels("model M(x: [B, 4]) {\n    forward(x) { return torch. }\n}", " }")


def test_inside_a_call_the_arguments_not_given_yet():
    text = "model M(x: [B, 1, 8, 8]) {\n    c = Conv2d(_, 4, 3, bias=False, )\n}"
    got = _labels(text, ")\n")
    assert {"stride=", "padding=", "groups="} <= set(got)
    assert not {"in_channels=", "out_channels=", "kernel_size=", "bias="} & set(got)
    assert got["stride="].detail == "a positive integer or a tuple of 2, default 1"
    block = _labels("block B(n, k = 3) { fc = Linear(_, n) }\nmodel M(x: [B, 4]) {\n    b = B(\n}", "(\n", 1)
    assert {"n=", "k="} <= set(block) and block["k="].detail == "default 3"


def test_names_in_scope_in_a_half_written_body():
    text = "const WIDTH = 8\nmodel M(x: [B, 4]) {\n    fc = Linear(_, WIDTH)\n    forward(x) {\n        h = fc(x)\n" \
           "        return \n"
    got = _labels(text, "return ", 7)
    assert got["fc"].kind == "child" and got["h"].kind == "value" and got["x"].kind == "value"
    assert got["WIDTH"].kind == "const" and "B" not in got  # a dim's symbol is no name
    assert "return" in got and "Linear" in got


def test_no_completion_inside_a_comment_or_a_string():
    assert completions(Analysis("model M(x: [B, 4]) { # Lin", "m"), 1, 27) == []
    assert completions(Analysis('model M(x: [B, 4]) { c = "Lin', "m"), 1, 30) == []


def test_top_level_keywords_outside_any_item():
    assert {"model", "block", "const", "import"} <= set(_labels("mo", "mo", 2))


# ---------------------------------------------------------------- formatting, diagnostics, bad input
def test_formatting_is_fmts_and_nothing_for_a_syntax_error():
    text = "model M(x:[B,3]){fc=Linear(_,2) # out\n}"
    assert formatted(Analysis(text, "m.nnspec")) == format_spec(text)
    assert formatted(Analysis("model M(x: [B, 3]) { fc = Linear(_ 2) }", "m.nnspec")) is None


def test_a_library_gets_no_model_error_but_its_syntax_errors():
    assert Analysis("block B(n) { fc = Linear(_, n) }\n", "lib.nnspec").diagnostics == []
    (d,) = Analysis("block B(n) { fc = Linear(_ n) }\n", "lib.nnspec").diagnostics
    assert d.code == "MS101"
    (d,) = Analysis("", "empty.nnspec").diagnostics  # nothing at all is no library
    assert (d.code, d.message) == ("MS900", "the spec defines nothing: no model, block or const")


@pytest.mark.parametrize("path", [ROOT / "specs" / "cnn.nnspec", ROOT / "specs" / "tutorials" / "conv.nnspec"],
                         ids=lambda p: p.name)
def test_every_prefix_of_a_spec_as_it_is_typed_gets_answers_without_an_error(path):
    """Half-written text is what an editor holds most of the time: no request may fail on it."""
    full = path.read_text(encoding="utf-8")
    for end in range(0, len(full), 23):
        text = full[:end]
        a = Analysis(text, str(path))
        line, column = a.index.place(len(text))
        assert a.diagnostics is not None
        completions(a, line, column)
        for back in (0, 3, 9):
            place = a.index.place(max(0, len(text) - back))
            hover(a, *place)
            definition(a, *place)
