"""Hints that propose a name propose only a likely slip for it, and lists of names are short and near.

Every helper that proposes a name is held to the same rule (modelspec/errors.py: `close_names`): a typo finds
its name, a different name that shares letters, a prefix or a case-insensitive spelling does not.
"""

from __future__ import annotations

import re

import pytest

from modelspec import SpecError, elaborate_spec
from modelspec.errors import SHOWN, _edits, close_names, did_you_mean, nearest, suggest
from modelspec.layers import CATALOG, NOT_LAYERS
from modelspec.ops import OPS
from modelspec.optim import OPTIMIZERS
from modelspec.values import CONTAINERS


def proposals(name: str, candidates: list[str]) -> list[str | None]:
    """What each helper that proposes a name makes of ``name`` among ``candidates``: a "did you mean" or None."""
    made = [did_you_mean(name, candidates), did_you_mean(name, candidates, prefix="nn.")]
    for hint in (suggest(name, candidates), nearest(name, candidates, "functions", prefix="F.")):
        made.append(hint if hint.startswith("did you mean") else None)
    return made


# a name, and a name it must not be proposed for: each pair is two names, not a slip of the keys
DISSIMILAR = [
    # the module is not the function: capitals are typed on purpose
    ("ReLU", "relu"), ("GELU", "gelu"), ("ELU", "elu"), ("SiLU", "silu"), ("Tanh", "tanh"), ("Softmax", "softmax"),
    ("Sigmoid", "sigmoid"), ("Mish", "mish"), ("Hardswish", "hardswish"), ("nn.ReLU", "nn.relu"),
    # one letter: another letter is another name
    ("x", "y"), ("h", "x"), ("a", "b"), ("i", "j"), ("B", "T"), ("h", "fc"), ("h", "hidden"), ("z", "x2"),
    ("y", "x_"),
    # short names
    ("fc", "bn"), ("min", "max"), ("sum", "std"), ("exp", "expand"), ("expand", "exp"), ("abs", "add"),
    ("mul", "mm"), ("lr", "wd"), ("Swish", "Mish"), ("cat", "cos"),
    # shared prefixes and suffixes, another word between them
    ("encoder_out", "encoder_in"), ("in_proj", "out_proj"), ("train_loss", "test_loss"), ("conv_block", "conv_layer"),
    ("layer_norm", "layer_scale"), ("MinPool2d", "MaxPool2d"), ("encoder", "decoder"), ("upsample", "downsample"),
    ("MSELoss", "L1Loss"), ("repeat", "reshape"), ("float", "flatten"), ("repeat_interleave", "repeat"),
    ("cumsum", "sum"), ("OrderedDict", "ModuleDict"), ("Dense", "Identity"), ("Parameter", "PReLU"),
]


@pytest.mark.parametrize("name, other", DISSIMILAR, ids=[f"{a}-{b}" for a, b in DISSIMILAR])
def test_no_helper_proposes_a_dissimilar_name(name, other):
    assert proposals(name, [other]) == [None] * 4


# the same, against every name a spec may be proposed: the layers, containers, operations and optimizers
EVERY_NAME = sorted(set(CATALOG) | set(CONTAINERS) | set(OPS) | set(OPTIMIZERS))
ADVERSARIAL = ["x", "h", "y", "B", "q", "k", "v", "Dense", "Model", "Net", "Tensor", "Input", "Output", "Concat",
               "Attention", "Swish", "OrderedDict", "Parameter", "Variable", "DataLoader", "LayerNormalization",
               "GlobalAvgPool2d", "encoder", "decoder", "hidden", "logits", "feats", "out_proj", "classifier",
               "backbone", "stem", "head"]


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_no_helper_proposes_anything_for_a_name_far_from_all(name):
    assert proposals(name, EVERY_NAME) == [None] * 4


# slips of the keys, which find their name: a rule that never proposed anything would pass the tests above
SLIPS = [("sofmax", "softmax"), ("Maxpool2d", "MaxPool2d"), ("Linaer", "Linear"), ("Lineer", "Linear"),
         ("Embeding", "Embedding"), ("WIDHT", "WIDTH"), ("HIDEN", "HIDDEN"), ("hh", "h"), ("Conv2D", "Conv2d"),
         ("relu", "ReLU"), ("Relu", "ReLU"), ("LeakyRelu", "LeakyReLU"), ("Adamm", "Adam"), ("Cnov2d", "Conv2d"),
         ("weight_decy", "weight_decay"), ("fc3", "fc2"), ("batchnorm2d", "BatchNorm2d")]


@pytest.mark.parametrize("name, meant", SLIPS, ids=[a for a, _ in SLIPS])
def test_a_slip_of_the_keys_finds_its_name(name, meant):
    assert close_names(name, [meant, "Dropout", "x", "head"]) == [meant]
    assert did_you_mean(name, [meant]) == f"did you mean {meant}?"


def test_several_as_close_are_all_named():
    assert did_you_mean("MaxPool", EVERY_NAME) == "did you mean MaxPool1d, MaxPool2d or MaxPool3d?"
    assert did_you_mean("fc3", ["fc1", "fc2", "head"]) == "did you mean fc1 or fc2?"


def test_a_long_list_is_cut_to_the_nearest_or_says_where_it_is():
    hint = suggest("LinearLayer", EVERY_NAME, "layers", where="docs/language.md, section Layers")
    assert hint.startswith("the nearest layers: Linear")
    assert hint.endswith("; all of them: docs/language.md, section Layers")
    hint = suggest("Quux", EVERY_NAME, "layers", where="docs/language.md, section Layers")
    assert hint == f"none of the {len(EVERY_NAME)} layers is near 'Quux': they are listed in docs/language.md, " \
                   "section Layers"
    few = ["fc1", "fc2", "head"]
    assert suggest("zz", few, "children") == "the children here: fc1, fc2, head"  # a few: all of them
    assert len(few) <= SHOWN


def plainly_near(name: str, other: str) -> bool:
    """What a reader calls near, said without difflib: at most half the letters of the longer name changed
    (`sum` for `cumsum`), or the shorter spelled whole in the longer between word boundaries (`repeat` in
    `repeat_interleave`, `Linear` in `LinearLayer`), not as the tail of another word (`out` in `dropout`)."""
    a, b = sorted([name, other], key=len)
    if _edits(a.lower(), b.lower()) <= len(b) // 2:
        return True
    at = b.lower().find(a.lower())
    while len(a) >= 3 and at >= 0:
        end = at + len(a)
        starts = at == 0 or b[at - 1] == "_" or b[at].isupper() and b[at - 1].islower()
        ends = end == len(b) or b[end] in "_0123456789" or b[end].isupper() and b[end - 1].islower()
        if starts and ends:
            return True
        at = b.lower().find(a.lower(), at + 1)
    return False


FAR_OR_NEAR = ["out", "outt", "t", "h", "mm", "pool", "stem", "Net", "argsort", "logsumexp", "Quux", "xyzzy", "cumsum",
               "repeat_interleave", "LinearLayer", "attention", "GlobalAvgPool2d", "masked", "Concat", "Tensor"]


def listed(hint: str) -> list[str]:
    """The names a "the nearest ...: a, b" hint lists (less its prefix), none for any other hint."""
    found = re.match(r"the nearest [\w ]+: (.*?)(?:; all of them: .*| \(of \d+\))?$", hint)
    return [n.removeprefix("F.") for n in found.group(1).split(", ")] if found else []


@pytest.mark.parametrize("name", FAR_OR_NEAR)
def test_the_nearest_are_near(name):
    """No hint lists a name that shares only a few letters with the one written: `out` got "dropout, float, t"."""
    names = listed(nearest(name, EVERY_NAME, "functions", prefix="F.")) + listed(suggest(name, EVERY_NAME))
    far = [n for n in names if not plainly_near(name, n)]
    assert not far, f"{name!r}: listed as near: {far}"


def test_near_names_are_still_listed():
    # the rule above holds of an empty list too: the lists that help must stay
    assert listed(nearest("repeat_interleave", sorted(OPS), "functions")) == ["repeat"]
    assert listed(suggest("LinearLayer", EVERY_NAME, "layers", where="docs"))[:1] == ["Linear"]
    assert "scaled_dot_product_attention" in listed(nearest("attention", sorted(OPS), "functions"))
    assert listed(nearest("cumsum", sorted(OPS), "functions")) == ["sum"]
    assert not plainly_near("out", "dropout") and not plainly_near("out", "float") and not plainly_near("out", "t")
    assert "bool" not in listed(nearest("pool", sorted(OPS), "functions"))  # one letter apart, but the first


def test_an_unknown_function_lists_no_far_names():
    err = refusal("model Net(x: [B, 4]) {\n    drop = Dropout(0.1)\n    forward(x) {\n        return out(x)\n"
                  "    }\n}\n")
    assert (err.message, err.hint) == ("undefined function 'out'", "declare it as a child, out = Linear(...), to "
                                       "call it; the children here: drop; the functions are listed in docs/language.md")
    err = refusal("model Net(x: [B, 4, 4]) {\n    forward(x) {\n        return torch.mm(x[0], x[0])\n    }\n}\n")
    assert "bmm" not in err.hint  # torch.mm (2-d) is not torch.bmm (batched 3-d): another op
    assert err.hint.startswith("write torch.matmul(a, b), or a @ b")


def refusal(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        elaborate_spec(text)
    return info.value


def test_every_name_that_is_no_layer_says_what_to_write_instead():
    assert not set(NOT_LAYERS) & (set(CATALOG) | set(OPS)), "a layer or an operation is refused before"
    for name, hint in NOT_LAYERS.items():
        if name == "OrderedDict":  # refused before, where it stands outside a Sequential, with its own hint
            continue
        err = refusal(f"model Net(x: [B, 4]) {{\n    m = {name}(4)\n    fc = Linear(4, 2)\n}}\n")
        assert (err.message, err.hint) == (f"unknown layer or block {name!r}", hint.replace("{model}", "Net"))


@pytest.mark.parametrize("written, hint", [
    ("optim.Adam(lr=0.1)", "an optimizer is a setting of the model's train section: train Net { optimizer = Adam("
                           "lr=1e-3) }"),
    ("torch.optim.lr_scheduler.StepLR(10)", "a scheduler is a setting of the model's train section: train Net { "
                                            "scheduler = StepLR(...) }"),
    ("LazyLinear(10)", "write Linear(_, ...): `_` infers from the input what LazyLinear leaves to its first call"),
    ("torch.LongTensor(3)", NOT_LAYERS["LongTensor"]),
])
def test_torch_names_that_are_no_layer(written, hint):
    assert refusal(f"model Net(x: [B, 4]) {{\n    m = {written}\n}}\n").hint == hint


def test_an_undefined_name_in_forward_lists_forward_values_not_children():
    err = refusal("model Net(x: [B, 4], y: [B, 2]) {\n    flatten = Flatten()\n    fc = Linear(4, 2)\n"
                  "    forward(x, y) {\n        z = fc(x)\n        return h\n    }\n}\n")
    assert err.hint == "define it before this line: h = ...; the values defined here: x, y, z"
    err = refusal("model Net(x: [B, 4]) {\n    fc = Linear(4, 2)\n    forward(x) {\n        return fcc(x)\n    }\n}\n")
    assert err.hint == "did you mean fc?"


def test_an_undefined_name_in_the_body_lists_consts_not_children():
    err = refusal("const WIDTH = 8\nmodel Net(x: [B, 4]) {\n    act = ReLU()\n    fc = Linear(4, DEPTH)\n}\n")
    assert err.hint == "the consts and parameters here: WIDTH"


def test_an_option_written_out_in_full_finds_its_short_form():
    from modelspec.optim import _option_hint

    assert _option_hint("minimum", ["min", "max"]) == "did you mean min?"  # among a few options only
    for name, other in DISSIMILAR:
        if not name.lower().startswith(other.lower()):  # expand spells out exp: among options, that is a hint
            assert _option_hint(name, [other]) is None, (name, other)
