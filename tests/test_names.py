"""One reserved-name list and one builtin list (modelspec/names.py), and one refusal for each kind of clash.

Two copies of a list drift: `str` as a child was refused (a hand list in
values.py named it) while `filter` was accepted (names.py's did not check
children). Now names.py is the only home, and every builtin gets the same
located refusal wherever a spec names a child.
"""

from __future__ import annotations

import builtins

import pytest

from modelspec import values
from modelspec.errors import SpecNameError
from modelspec.layers import CATALOG
from modelspec.names import BUILTINS, GENERATED, name_problem
from modelspec.pipeline import load_graph

CHILD = "model M(x: [B, 4]) {{\n    {name} = Linear(_, 2)\n}}\n"


@pytest.mark.parametrize("name", ["filter", "str", "map", "round"])
def test_a_builtin_child_gets_one_located_refusal(name):
    with pytest.raises(SpecNameError) as info:
        load_graph(CHILD.format(name=name))
    err = info.value
    assert (err.span.line, err.span.column) == (2, 5)
    assert err.message == f"{name!r} cannot name a child: it is the name of Python's builtin {name!r}"
    assert err.hint == f"choose another name, e.g. {name}_"
    line = f"{name} = Linear(_, 2)"
    assert str(err) == (f"<spec>:2:5: {err.message}\n"
                        f"        {line}\n"
                        f"        {'^' * len(line)}\n"
                        f"hint: {err.hint}")


def test_the_builtin_list_is_the_builtins_module():
    assert {"filter", "str", "map", "round", "range", "input", "print", "exec"} <= BUILTINS
    assert BUILTINS == {n for n in dir(builtins) if not n.startswith("_")}


def test_every_builtin_is_refused_as_every_kind_of_name():
    kinds = ("a child", "a model", "a block", "a const", "a block parameter", "an input", "a forward input",
             "a value", "a loop variable")
    accepted = [(name, what) for name in sorted(BUILTINS) for what in kinds if name_problem(name, what) is None]
    assert not accepted, accepted[:10]


def test_the_elaborator_reads_the_one_reserved_list():
    from modelspec import elaborate

    assert elaborate.GENERATED is GENERATED and not hasattr(values, "RESERVED")


def test_names_the_printer_makes_up_are_clear_of_builtins():
    """The generated code's own names (names.GENERATED, kept out of made-up names) hold no builtin: made-up
    names start from the catalog's argument names, so those must not be builtins either."""
    made_from = {arg.name for layer in CATALOG.values() for arg in layer.args} | set(values.DIM_NAMES.values())
    made_from |= {"in_channels", "in_features", "in_dim1"}
    assert not made_from & BUILTINS, sorted(made_from & BUILTINS)
