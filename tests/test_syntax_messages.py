"""Syntax errors as CPython 3.12 words them: brackets checked as its tokenizer checks them, a missing comma
named as such, and only where they explain the error the parser met."""

import pytest

from modelspec import SpecError, parse_spec


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


def test_an_equals_sign_in_an_input_declaration():
    err = refusal("model M(x = [B, 4]) { fc = Linear(4, 2) }\n")
    assert err.message == "unexpected '=': an input is declared with ':'" and err.hint == "write x: [B, ...]"


def test_an_open_bracket_later_in_the_file_is_not_blamed_for_an_earlier_error():
    err = refusal("modle M(x: [B, 4]) {\n    fc = Linear(4, 2)\n}\nmodel N(x: [B, 4]) {\n    fc = Linear(4, 2\n}\n")
    assert err.message.startswith("unexpected 'modle'") and err.hint == "did you mean model?"
