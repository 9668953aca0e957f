"""Syntax errors as CPython 3.12 words them: brackets checked as its tokenizer checks them, a missing comma
named as such, and only where they explain the error the parser met."""

import pytest

from modelspec import SpecError, elaborate_spec, parse_spec
from modelspec.cli import main
from modelspec.errors import MAX_ERRORS


def refusal(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return info.value


def test_a_bracket_never_closed_is_named_where_it_opens():
    err = refusal("model M(x: [B, 4]) {\n    fc = Linear(4, 2\n    act = ReLU()\n}\n")
    assert err.message == "'(' opened at 2:16 was never closed" and (err.line, err.column) == (2, 16)
    assert "at the end of line 2: fc = Linear(4, 2)" in err.hint


def test_a_closer_of_another_kind_does_not_match():
    err = refusal("model M(x: [B, 4]) {\n    fc = Linear(4, [2)\n}\n")
    assert err.message == "')' does not match '[' opened at 2:20" and (err.line, err.column) == (2, 22)


def test_a_closer_with_nothing_open_is_unmatched():
    assert refusal("model M(x: [B, 4]) {\n    fc = Linear(4, 2))\n}\n").message == "unmatched ')'"


def test_brackets_in_strings_and_comments_do_not_count():
    err = refusal('model M(x: [B, 4]) {  # a ( in a comment\n    "a(b" = Linear(4, 2\n}\n')
    assert err.message == "'(' opened at 2:19 was never closed"


@pytest.mark.parametrize("text, hint", [
    ("model M(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n", "put a ',' before '2'"),
    ("model M(x: [B, 4]) {\n    s = Sequential(\n        Linear(4, 2)  # one\n        ReLU(),\n    )\n}\n",
     "put a ',' at the end of line 3"),
])
def test_a_missing_comma_is_named(text, hint):
    err = refusal(text)
    assert err.message.endswith("perhaps you forgot a comma?") and err.hint == hint


def forward_with(*lines: str) -> str:
    body = "".join(f"        {line}\n" for line in lines)
    return f"model M(x: [B, 4]) {{\n    fc = Linear(4, 4)\n    forward(x) {{\n{body}    }}\n}}\n"


# (text, (line, column), message, hint): each as CPython 3.12 says it where it has a word for it, else what
# the grammar expects said as a reader needs it, never a list that begins with '~' nor "here the grammar expects"
SAID = [
    # a misspelt keyword at the start of a statement is named, not read as a comma missing before the next word
    (forward_with("retrun fc(x)"), (4, 9), "'retrun' is not a keyword: did you mean 'return'?",
     "write return fc(x)"),
    (forward_with("h = fc(x)", "retur h"), (5, 9), "'retur' is not a keyword: did you mean 'return'?",
     "write return h"),
    (forward_with("h = fc(x)", "retur"), (5, 9), "'retur' is not a keyword: did you mean 'return'?", "write return"),
    (forward_with("fro i in range(3) {", "    x = fc(x)", "}", "return x"), (4, 9),
     "'fro' is not a keyword: did you mean 'for'?", "write for i in range(3) {"),
    (forward_with("fi x.shape[0] > 1 {", "    x = fc(x)", "}", "return x"), (4, 9),
     "'fi' is not a keyword: did you mean 'if'?", "write if x.shape[0] > 1 {"),
    (forward_with("if x.shape[0] > 1 {", "    x = fc(x)", "} els {", "    x = x", "}", "return x"), (6, 11),
     "'els' is not a keyword: did you mean 'else'?", "write } else {"),
    ("model M(x: [B, 4]) {\n    foward(x) {\n        return x\n    }\n}\n", (2, 5),
     "'foward' is not a keyword: did you mean 'forward'?", "write forward(x) {"),
    # elif, else if: an else takes a body, and the if goes inside it
    (forward_with("if x.shape[0] > 1 {", "    x = fc(x)", "} elif x.shape[0] > 2 {", "    x = x", "}", "return x"),
     (6, 11), "modelspec has no elif: an else takes a body in braces",
     "nest the if in the else's body: else { if x.shape[0] > 2 { ... } }"),
    (forward_with("if x.shape[0] > 1 {", "    x = fc(x)", "} else if x.shape[0] > 2 {", "    x = x", "}",
                  "return x"), (6, 11), "modelspec has no `else if`: an else takes a body in braces",
     "nest the if in the else's body: else { if x.shape[0] > 2 { ... } }"),
    # a call assigned to, a call or a comparison alone
    (forward_with("fc(x) = h", "return h"), (4, 9), "cannot assign to a function call",
     "the name assigned goes on the left of '=': h = fc(x)"),
    (forward_with("fc(x)", "return x"), (4, 9), "a call alone is no statement here",
     "assign its value to a name: out = fc(x); only a list's methods are called alone, as in xs.append(x)"),
    (forward_with("h = fc(x)", "h == F.relu(h)", "return h"), (5, 11),
     "unexpected '==': a comparison alone does nothing here", "to assign, use =: h = F.relu(h)"),
    # an operator with no operand: the '}' after it closes forward's '{', and is no stray brace
    ("model M(x: [B, 4]) {\n    fc = Linear(4, 2)\n    forward(x) { return fc(x) + }\n}\n", (3, 31),
     "expected an expression after '+'", "write the operand after '+', or remove the '+'"),
    ("const N = 4 +\n", (1, 13), "expected an expression after '+'", "write the operand after '+', or remove the '+'"),
    ("const N = 4 +\nmodel M(x: [B, 4]) {\n    fc = Linear(4, N)\n}\n", (1, 13), "expected an expression after '+'",
     "write the operand after '+', or remove the '+'"),
    ("model M(x: [B, 4]) {\n    fc = \n}\n", (2, 8), "expected an expression after '='", "write the value after '='"),
    # two values outside brackets: what may follow the first (inside brackets, a comma is missing)
    (forward_with("h = fc(x)", "return h h"), (5, 18),
     "unexpected 'h'; expected an operator, a comma or the end of the statement",
     "join the two values with an operator, return h + h, or return both: return h, h"),
    (forward_with("h = fc(x) fc(x)", "return h"), (4, 19),
     "unexpected 'fc'; expected an operator or the end of the statement",
     "join the two values with an operator: h = fc(x) + fc(x)"),
    ("const N = 4 5\n", (1, 13), "unexpected '5'; expected an operator or the end of the statement",
     "join the two values with an operator: const N = 4 + 5"),
    (forward_with("return (x x)"), (4, 19), "unexpected 'x': perhaps you forgot a comma?", "put a ',' before 'x'"),
    # Python's colon, and a body's '{' left out: the example is the construct at hand
    (forward_with("h = fc(x)", "if n > 1:", "    h = h", "return h"), (5, 17), "unexpected ':'; expected '{'",
     "a body goes in braces, not after a colon: if n > 1 { ... }"),
    (forward_with("for i in range(3):", "    x = fc(x)", "return x"), (4, 26), "unexpected ':'; expected '{'",
     "a body goes in braces, not after a colon: for i in range(3) { ... }"),
    ("model M(x: [B, 4]) {\n    forward(x):\n        return x\n}\n", (2, 15), "unexpected ':'; expected '{'",
     "a body goes in braces, not after a colon: forward(x) { ... }"),
    (forward_with("for i in range(3)", "    x = fc(x)", "}", "return x"), (4, 26), "expected '{'",
     "a loop's body goes in braces: for i in range(3) { ... }"),
    # '=' that compares, a comma after a statement, ';' between dims, an input without its ':'
    (forward_with("if n = 2 {", "    x = x", "}", "return x"), (4, 14),
     "unexpected '=': maybe you meant '==' instead of '='?", "use == to compare: if n == 2 {"),
    ("model M(x: [B, 4]) {\n    fc = Linear(4, 2),\n    act = ReLU()\n}\n", (2, 22), "unexpected ',' after a statement",
     "remove it: statements need no separator (a ';' may end one)"),
    (forward_with("h = fc(x), fc(x)", "return h"), (4, 18), "unexpected ',' after a statement",
     "remove it: statements need no separator (a ';' may end one); a tuple is written in parentheses: t = (a, b)"),
    ("model M(x: [B; 4]) {\n    fc = Linear(4, 2)\n}\n", (1, 14), "unexpected ';': dims are separated by ','",
     "write [B, 4]"),
    ("model M(x: [B, 4], y [B, 2]) {\n    fc = Linear(4, 2)\n}\n", (1, 22), "unexpected '['; expected ':'",
     "an input is declared as name: [dims]; write y: [B, 2]"),
    ("model M(x: [B, 4]) {\n    param w [4]\n}\n", (2, 13), "unexpected '['; expected ':'",
     "a param is declared as name: [dims]; write w: [4]"),
    ("model M(x: [B, 4]) {\n    fc h\n}\n", (2, 8), "unexpected 'h'; expected '.' or '='",
     "a statement here assigns, fc = ..., or begins with forward, param or buffer"),
]


@pytest.mark.parametrize("text, at, message, hint", SAID, ids=[m for _, _, m, _ in SAID])
def test_what_a_syntax_error_says(text, at, message, hint):
    err = refusal(text)
    assert ((err.line, err.column), err.message, err.hint) == (at, message, hint)


def test_the_comma_hint_is_given_inside_brackets_only():
    # CPython's "Perhaps you forgot a comma?" comes only where a bracket is open: a stray word put at each place
    # of a forward gets it there, and elsewhere a message about what may stand there
    good = forward_with("h = fc(x)", "h = F.relu(h) + fc(h[:, 0:4])", "return h, x")
    start = good.index("forward(x) {") + len("forward(x) {")
    said = []
    for at in range(start, good.rindex("}")):
        if good[at - 1] not in " ([,":
            continue
        text = good[:at] + "zz " + good[at:]
        try:
            parse_spec(text)
            continue
        except SpecError as err:
            message = err.message
        before = text[:at]
        inside = sum(map(before.count, "([")) > sum(map(before.count, ")]"))
        said.append((inside, "forgot a comma" in message))
        assert inside or "forgot a comma" not in message, (text, message)
    assert (True, True) in said and (False, False) in said  # both kinds of place were tried


def test_expected_tokens_are_listed_in_a_readers_order():
    from modelspec.parse import _describe

    assert _describe({"NAME", "INT", "TILDE", "MINUS", "LPAR"}) == "an expression"  # '~' begins one too
    assert _describe({"NAME", "SEMICOLON", "RBRACE", "BUFFER", "FORWARD"}) == \
        "a name, 'buffer', 'forward', ';' or '}'"
    assert _describe({"BLOCK", "MODEL", "SEMICOLON", "$END"}) == "'block', 'model', ';' or end of file"
    assert _describe({"AMP", "CARET", "PIPE", "PLUS", "MINUS", "STAR", "LBRACE"}) == "'{' or an operator"


def test_an_equals_sign_in_an_input_declaration():
    err = refusal("model M(x = [B, 4]) { fc = Linear(4, 2) }\n")
    assert err.message == "unexpected '=': an input is declared with ':'" and err.hint == "write x: [B, ...]"


def test_an_open_bracket_later_in_the_file_is_not_blamed_for_an_earlier_error():
    err = refusal("modle M(x: [B, 4]) {\n    fc = Linear(4, 2)\n}\nmodel N(x: [B, 4]) {\n    fc = Linear(4, 2\n}\n")
    assert err.message.startswith("unexpected 'modle'") and err.hint == "did you mean model?"


# ---------------------------------------------------------------- past the first syntax error
# A syntax error skips the item that holds it; parsing resumes at the next top-level item, and what parsed and
# uses nothing broken is checked too. The API raises the first error, the rest in its `more`.
def every_error(text: str) -> list[SpecError]:
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    return [info.value, *info.value.more]


GOOD = "model Good(x: [B, 4]) {\n    fc = Linear(4, 2)\n}\n"
SHAPE_ERROR = "model Wrong(x: [B, 4]) {\n    fc = Linear(5, 2)\n}\n"


def test_two_broken_models_are_both_reported():
    text = "model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n\nmodel C(x: [B, 4]) {\n    fc = Linear(4, 2\n}\n" + GOOD
    found = every_error(text)
    assert [(e.line, e.message) for e in found] == [
        (2, "unexpected '2': perhaps you forgot a comma?"), (6, "'(' opened at 6:16 was never closed")]
    assert [e.render() for e in refusal(text).more] == [e.render() for e in found[1:]]  # parse_spec: the same


def test_a_model_after_a_syntax_error_is_elaborated():
    found = every_error("model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n" + GOOD + SHAPE_ERROR)
    assert [(type(e).__name__, e.line) for e in found] == [("SpecSyntaxError", 2), ("SpecShapeError", 8)]
    assert found[1].message == "Linear `fc` expects in_features=5 but its input is [B, 4]"


def test_an_undefined_name_in_a_later_model_is_reported():
    later = "model C(x: [B, 4]) {\n    fc = Linear(4, 2)\n    forward(x) {\n        return fc(hh)\n    }\n}\n"
    found = every_error("modle A(x: [B, 4]) {\n    fc = Linear(4, 2)\n}\n" + later)
    assert [(e.line, e.hint if e.line == 1 else e.message) for e in found] == [
        (1, "did you mean model?"), (7, "undefined name 'hh'")]


def test_a_brace_never_closed_ends_its_item_where_the_next_begins():
    found = every_error("model A(x: [B, 4]) {\n    fc = Linear(4, 2)\n\n" + SHAPE_ERROR)
    assert [(e.line, e.message) for e in found] == [
        (1, "'{' opened at 1:20 was never closed"), (5, "Linear `fc` expects in_features=5 but its input is [B, 4]")]


@pytest.mark.parametrize("text", [
    GOOD + "model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n",  # in the last item: nothing after it to resume at
    # nothing begins at column 1 after it
    "model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n  " + SHAPE_ERROR.replace("\n", "\n  "),
    "model A(x: [B, 4]) {\n    fc = Linear(4, 2\n",  # the end of the file
])
def test_an_error_that_cannot_be_recovered_is_reported_alone(text):
    assert len(every_error(text)) == 1


def test_a_cascade_is_not_reported():
    # a block written inside a model: parsing resumes at it, and after it meets the model's own statements
    # outside any item, "unexpected 'fc'", only a consequence of the first error: it stops there
    text = ("model A(x: [B, 4]) {\nblock Inner(n) {\n    fc = Linear(_, n)\n}\n    fc = Linear(4, 2)\n}\n"
            + SHAPE_ERROR)
    found = every_error(text)
    assert [(e.line, e.message.split(";")[0]) for e in found] == [(2, "unexpected 'block'")]


@pytest.mark.parametrize("broken, user", [
    ("block Stage(n) {\n    fc = Linear(_, n\n}\n", "model User(x: [B, 4]) {\n    s = Stage(3)\n}\n"),
    ("const WIDTH = (4\n", "model User(x: [B, 4]) {\n    fc = Linear(4, WIDTH)\n}\n"),
    ("model User(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n", "train User {\n    epochs = 1\n}\n"),
    ("modle Stage(n) {\n    fc = Linear(_, n)\n}\n", "model User(x: [B, 4]) {\n    s = Stage(3)\n}\n"),
    # the user of a user of a broken block
    ("block Stage(n) {\n    fc = Linear(_, n\n}\n",
     "block Outer(n) {\n    s = Stage(n)\n}\nmodel User(x: [B, 4]) {\n    o = Outer(3)\n}\n"),
    # a broken import: what it imports cannot be told, so nothing is elaborated
    ('import "blocks.nnspec\n', "model User(x: [B, 4]) {\n    s = Stage(3)\n}\n" + SHAPE_ERROR),
])
def test_what_uses_a_broken_item_is_not_checked(broken, user):
    found = every_error(broken + user)
    assert len(found) == 1 and found[0].line <= broken.count("\n"), [e.message for e in found]


def test_each_kind_of_item_recovers():
    # a train section, a const, a string never closed and a stray character: four syntax errors; model C, which
    # uses nothing broken, is checked, model D, which uses the broken const N, is not
    text = ("model A(x: [B, 4]) {\n    fc = Linear(4, 2)\n}\ntrain A {\n    epochs = = 3\n}\nconst N = (3\n"
            "block S(n) {\n    s = \"abc\n}\nmodel C(x: [B, 4]) {\n    fc = Linear(5, 2) $\n    g = Linear(5, 2)\n}\n"
            "model D(x: [B, 4]) {\n    fc = Linear(N, 2)\n}\n")
    assert [(e.line, e.message) for e in every_error(text)] == [
        (5, "unexpected '='; expected an expression"), (7, "'(' opened at 7:11 was never closed"),
        (9, "unterminated string"), (12, "unexpected character '$'")]
    text = text.replace(" $", "")
    assert [e.line for e in every_error(text)][-1] == 12  # C's Linear(5, 2): its input is [B, 4]


def test_what_uses_nothing_broken_is_checked_beside_what_does():
    text = ("block Stage(n) {\n    fc = Linear(_, n\n}\n" + "model User(x: [B, 4]) {\n    s = Stage(3)\n}\n"
            + SHAPE_ERROR)
    assert [e.line for e in every_error(text)] == [2, 8]


def test_at_most_max_errors_are_reported():
    text = "".join(f"model A{i}(x: [B, 4]) {{\n    fc = Linear(4 2)\n}}\n" for i in range(MAX_ERRORS + 5))
    found = every_error(text)
    assert len(found) == MAX_ERRORS and [e.line for e in found] == [2 + 3 * i for i in range(MAX_ERRORS)]


def test_check_prints_every_error_and_their_count(tmp_path, capsys):
    spec = tmp_path / "two.nnspec"
    spec.write_text("model A(x: [B, 4]) {\n    fc = Linear(4 2)\n}\n" + SHAPE_ERROR, encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert [line.split(": ", 1)[0] for line in err.splitlines() if line.startswith(str(spec))] == [
        f"{spec}:2:19", f"{spec}:5:17", str(spec)]
    assert err.endswith(f"{spec}: 2 errors\n")


def test_check_reports_each_failing_model_of_a_file(tmp_path, capsys):
    spec = tmp_path / "models.nnspec"
    spec.write_text(SHAPE_ERROR + GOOD + SHAPE_ERROR.replace("Wrong", "Worse"), encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    _, err = capsys.readouterr()
    assert f"{spec}:2:17: " in err and f"{spec}:8:17: " in err and err.endswith("2 errors\n")
