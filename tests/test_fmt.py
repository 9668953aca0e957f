"""`modelspec fmt`: canonical text, the same meaning, comments kept, stable.

Checked as *black* checks itself: each case's expected output (CASES), then
`assert_equivalent` (the IR of the output is the IR of the input, spans
aside) and `assert_stable` (formatting the output changes nothing) over every
bundled spec, every parseable spec in tests/errors, the README's specs, the
cases, the bundled specs with comments put between random tokens, and
seeded random expressions.
"""

from __future__ import annotations

import io
import random
import re
import sys

import pytest

from conftest import ROOT, SPECS, spec_ids
from modelspec import SpecError, format_spec
from modelspec.pipeline import read_spec
from modelspec.cli import main
from modelspec.parse import parse, parse_with_comments

ERROR_SPECS = sorted((ROOT / "tests" / "errors").glob("*.nnspec"))
README_SPECS = re.findall(r"```nnspec\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)

# (name, source, canonical form)
CASES = [
    ("spacing", "model M(x:[B,3]){fc=Linear(_,2,bias=True);act=ReLU()}",
     "model M(x: [B, 3]) {\n    fc = Linear(_, 2, bias=True)\n    act = ReLU()\n}\n"),
    ("operators", "const A = 64*4*4\nconst B = k//2+1\nconst C = -x**2\nconst D = a@b",
     "const A = 64 * 4 * 4\nconst B = k // 2 + 1\nconst C = -x ** 2\nconst D = a @ b\n"),
    ("parentheses-kept", "const A = (a + b) * c\nconst B = a - (b - c)\nconst C = (a ** b) ** c\n"
     "const D = (-2) ** 2\nconst E = not (a and b)\nconst F = (a if b else c) if d else e\nconst G = (a < b) < c",
     "const A = (a + b) * c\nconst B = a - (b - c)\nconst C = (a ** b) ** c\nconst D = (-2) ** 2\n"
     "const E = not (a and b)\nconst F = (a if b else c) if d else e\nconst G = (a < b) < c\n"),
    ("parentheses-dropped", "const A = (a * b) + (c)\nconst B = (a - b) - c\nconst C = a ** (b ** c)\n"
     "const D = 2 ** (-1)\nconst E = (not a) or (b and c)\nconst F = (f)(x)[(0)].y\nconst G = -(3)",
     "const A = a * b + c\nconst B = a - b - c\nconst C = a ** b ** c\nconst D = 2 ** -1\n"
     "const E = not a or b and c\nconst F = f(x)[0].y\nconst G = -3\n"),
    ("literals", "const A = 'it' + \"s\" + 'say \"hi\"'\nconst B = 0XFF + 1_000 + 1E-5 + 2.\nconst C = (1).real\n"
     "const D = (True, None, (1,), ())\nconst E = {'k': [1, 2], 2: x[1:, ::2, ...]}",
     "const A = \"it\" + \"s\" + \"say \\\"hi\\\"\"\nconst B = 0xFF + 1_000 + 1e-5 + 2.\nconst C = (1).real\n"
     "const D = (True, None, (1,), ())\nconst E = {\"k\": [1, 2], 2: x[1:, ::2, ...]}\n"),
    ("magic-trailing-comma", "model M(x: [B, 3]) {\n  s = Sequential(Linear(3, 4), ReLU(),)\n"
     "  t = Sequential(Linear(3, 4), ReLU())\n}",
     "model M(x: [B, 3]) {\n    s = Sequential(\n        Linear(3, 4),\n        ReLU(),\n    )\n"
     "    t = Sequential(Linear(3, 4), ReLU())\n}\n"),
    ("too-long", "model M(x: [B, 1, 28, 28]) {\n    encoder = Sequential(Conv2d(in_channels=1, out_channels=16, "
     "kernel_size=3, stride=2, padding=1), ReLU())\n}",
     "model M(x: [B, 1, 28, 28]) {\n    encoder = Sequential(\n"
     "        Conv2d(in_channels=1, out_channels=16, kernel_size=3, stride=2, padding=1),\n"
     "        ReLU(),\n    )\n}\n"),
    ("comments", "# about M\nmodel M(x: [B, 3]) {   # inputs\n  # the head\n  fc = Linear(_, 2) # 2 classes\n"
     "  # nothing after\n}\n# the end",
     "# about M\nmodel M(x: [B, 3]) {  # inputs\n    # the head\n    fc = Linear(_, 2)  # 2 classes\n"
     "    # nothing after\n}\n# the end\n"),
    ("comments-in-a-call", "model M(x: [B, 3]) {\n  s = Sequential(  # layers\n    # first\n"
     "    Linear(3, 4),   # hidden\n    ReLU()  # last\n    # done\n  )  # after\n}",
     "model M(x: [B, 3]) {\n    s = Sequential(  # layers\n        # first\n        Linear(3, 4),  # hidden\n"
     "        ReLU(),  # last\n        # done\n    )  # after\n}\n"),
    ("blank-lines", "const A = 1\nconst B = 2\n\n\n\nconst C = 3\nblock K(n) {\n\n  a = ReLU()\n\n\n  b = ReLU()\n\n}"
     "\n# about M\n\nmodel M(x: [B, 3]) {}",
     "const A = 1\nconst B = 2\n\nconst C = 3\n\nblock K(n) {\n    a = ReLU()\n\n    b = ReLU()\n}\n\n"
     "# about M\n\nmodel M(x: [B, 3]) {}\n"),
    ("blocks-and-forward", "block B(out,k = 3,) { c = Conv2d(_, out, k) if k > 1 }\n"
     "model M(x: [B, 3, T=8], y: Long[B, T]) { param W: [3, 2] = randn\n buffer m: [T, T] = ones\n"
     " forward(x, y) { a, (b, c) = (x, (y, y)); for i in range(2) { a = a + i }\n"
     " if a { return } else { return a, b } } }",
     "block B(\n    out,\n    k=3,\n) {\n    c = Conv2d(_, out, k) if k > 1\n}\n\n"
     "model M(x: [B, 3, T=8], y: Long[B, T]) {\n    param W: [3, 2] = randn\n    buffer m: [T, T] = ones\n"
     "    forward(x, y) {\n        a, (b, c) = (x, (y, y))\n        for i in range(2) {\n            a = a + i\n"
     "        }\n        if a {\n            return\n        } else {\n            return a, b\n        }\n    }\n}\n"),
    ("semicolons-that-matter", "model M(x: [B, 3]) { forward(x) { y = x; if y { y = x } return; z = y } }",
     "model M(x: [B, 3]) {\n    forward(x) {\n        y = x;\n        if y {\n            y = x\n        }\n"
     "        return;\n        z = y\n    }\n}\n"),
    ("imports", "import 'a.nnspec'\nfrom \"b.nnspec\" import X, Y,\nconst N = 1",
     "import \"a.nnspec\"\nfrom \"b.nnspec\" import X, Y\n\nconst N = 1\n"),
    ("bom-and-crlf", "\ufeffconst N = 1  # one\r\nconst M = 2\r\n", "const N = 1  # one\nconst M = 2\n"),
    ("string-child-names", "model M(x: [B, 3]) { 'ß-1' = ReLU(); 'say \"hi\"' = ReLU() if True }",
     "model M(x: [B, 3]) {\n    \"ß-1\" = ReLU()\n    \"say \\\"hi\\\"\" = ReLU() if True\n}\n"),
    ("sequential-block", "block C(o, a=True)=Sequential(Linear(_,o), *([ReLU()] if a else []),)",
     "block C(o, a=True) = Sequential(\n    Linear(_, o),\n    *([ReLU()] if a else []),\n)\n"),
    ("tutorial-idioms", "model M(x: [B, 28, 28]) { flatten=Flatten(); fc=Linear(784,10)\n"
     " stack=Sequential( flatten,fc )\n named=Sequential(OrderedDict([('fc',Linear(10,10)),('act',ReLU( ))]))\n"
     " forward(x) { return nn.Softmax(dim = 1)( nn.ReLU()(named(stack(x))) ) } }",
     "model M(x: [B, 28, 28]) {\n    flatten = Flatten()\n    fc = Linear(784, 10)\n"
     "    stack = Sequential(flatten, fc)\n"
     "    named = Sequential(OrderedDict([(\"fc\", Linear(10, 10)), (\"act\", ReLU())]))\n    forward(x) {\n"
     "        return nn.Softmax(dim=1)(nn.ReLU()(named(stack(x))))\n    }\n}\n"),
    ("empty", "", ""),
]


def _no_spans(node):
    if isinstance(node, dict):
        return {k: _no_spans(v) for k, v in node.items() if k != "span"}
    if isinstance(node, list):
        return [_no_spans(v) for v in node]
    return node


def assert_equivalent(src: str, dst: str) -> None:
    assert _no_spans(parse(dst).model_dump(exclude={"path"})) == _no_spans(parse(src).model_dump(exclude={"path"}))


def assert_stable(dst: str) -> None:
    assert format_spec(dst) == dst


def assert_comments_kept(src: str, dst: str) -> None:
    assert sorted(c[2] for c in parse_with_comments(dst)[1]) == sorted(c[2] for c in parse_with_comments(src)[1])


def check(src: str, *, width: bool = False) -> str:
    dst = format_spec(src)
    assert_equivalent(src, dst)
    assert_stable(dst)
    assert_comments_kept(src, dst)
    if width:  # a line can stay long only where there is no bracket to break it at
        assert all(len(line.split("  #")[0]) <= 100 for line in dst.splitlines()), "a line over 100 columns"
    return dst


def _parses(path) -> bool:
    try:
        parse(*read_spec(path))
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("name, src, expected", CASES, ids=[c[0] for c in CASES])
def test_case(name, src, expected):
    assert check(src, width=True) == expected


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_bundled_spec_is_canonical(spec):
    text = spec.read_text()
    assert check(text, width=True) == text, f"run `modelspec fmt {spec.relative_to(ROOT)}`"


PARSEABLE_ERRORS = [p for p in ERROR_SPECS if _parses(p)]


@pytest.mark.parametrize("spec", PARSEABLE_ERRORS, ids=spec_ids(PARSEABLE_ERRORS))
def test_error_spec_keeps_its_meaning(spec):
    check(read_spec(spec)[0])


@pytest.mark.parametrize("i", range(len(README_SPECS)))
def test_readme_spec_keeps_its_meaning(i):
    check(README_SPECS[i], width=True)


def test_syntax_error_is_located():
    with pytest.raises(SpecError) as info:
        format_spec("model M(x: [B, 3]) {\n    fc = Linear(4, 2\n}")
    assert (info.value.line, info.value.column) == (2, 16)  # the '(' never closed, as CPython points at it


def test_parse_is_unchanged_by_comment_collection():
    text = (ROOT / "specs" / "autoencoder.nnspec").read_text()
    spec, comments = parse_with_comments(text, "a.nnspec")
    assert spec == parse(text, "a.nnspec")
    assert comments[:2] == [(1, 1, "# A small convolutional autoencoder for 28x28 images: strided convolutions"),
                            (2, 1, "# down to 7x7, transposed convolutions back up to 28x28.")]
    assert all(text.splitlines()[line - 1][col - 1:] == body for line, col, body in comments)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_comments_between_any_tokens_are_kept(spec):
    text = spec.read_text()
    rng = random.Random(spec.stem)
    taken = [m.span() for m in re.finditer(r"\"[^\"\n]*\"|'[^'\n]*'|#[^\n]*", text)]  # strings and comments
    gaps = [m.start() for m in re.finditer(r"(?<=[\w)\]},=(\[{:+*/-]) ", text)
            if not any(a <= m.start() < b for a, b in taken)]
    for i, gap in enumerate(sorted(rng.sample(gaps, min(len(gaps), 12)), reverse=True)):
        text = f"{text[:gap]}  # c{i}\n{text[gap + 1:]}"
    check(text)


# ---------------------------------------------------------------- random expressions
class _Exprs:
    """Random expressions written with every child in parentheses, trailing commas and comments here and there:
    the formatter must drop the parentheses precedence does not need and keep the rest."""

    ATOMS = ["a", "b", "_", "0", "7", "1_000", "0xFF", "1.5e-3", "2.", "True", "None", "'it\\'s'", '"say \\"hi\\""',
             "-3", "-2.5", "-0", "-0.0"]

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.comments = 0

    def sep(self) -> str:
        if self.rng.random() < 0.1:
            self.comments += 1
            return f",  # c{self.comments}\n"
        return ","

    def listing(self, items: list[str]) -> str:
        body = "".join(item + self.sep() for item in items)
        return body if items and self.rng.random() < 0.3 else body.rstrip(",")

    def sub(self, depth: int) -> str:
        text = self.expr(depth - 1)
        return text if text in self.ATOMS[:3] and self.rng.random() < 0.5 else f"({text})"

    def expr(self, depth: int) -> str:
        r = self.rng
        if depth <= 0:
            return r.choice(self.ATOMS)
        kind = r.choice(["binop", "binop", "unary", "bool", "not", "compare", "ifexp", "call", "call", "attribute",
                         "subscript", "tuple", "list", "dict", "listcomp", "atom"])
        s = lambda: self.sub(depth)  # noqa: E731
        if kind == "binop":
            return f"{s()} {r.choice(['+', '-', '*', '/', '//', '%', '@', '**'])} {s()}"
        if kind == "unary":
            return f"{r.choice('+-')}{s()}"
        if kind == "bool":
            return f"{s()} {r.choice(['and', 'or'])} {s()}"
        if kind == "not":
            return f"not {s()}"
        if kind == "compare":
            return " ".join([s()] + [f"{r.choice(['<', '==', 'not in', 'is not', '>='])} {s()}"
                                     for _ in range(r.randint(1, 2))])
        if kind == "ifexp":
            return f"{s()} if {s()} else {s()}"
        if kind == "call":
            args = [s() for _ in range(r.randint(0, 3))]
            args += [f"*{s()}"] * (r.random() < 0.2) + [f"k{i}={s()}" for i in range(r.randint(0, 2))]
            return f"{s()}({self.listing(args)})"
        if kind == "attribute":
            return f"{s()}.attr"
        if kind == "subscript":
            index = [r.choice([s(), f"{s()}:", f":{s()}", f"{s()}:{s()}:{s()}", "::2", "..."])
                     for _ in range(r.randint(1, 2))]
            return f"{s()}[{self.listing(index)}]"
        if kind == "tuple":
            items = [s() for _ in range(r.randint(0, 3))]
            return f"({items[0]},)" if len(items) == 1 else f"({self.listing(items)})"
        if kind == "list":
            return f"[{self.listing([s() for _ in range(r.randint(0, 3))])}]"
        if kind == "dict":
            return "{" + self.listing([f"{s()}: {s()}" for _ in range(r.randint(0, 2))]) + "}"
        if kind == "listcomp":
            return f"[{s()} for v in {s()}]"
        return r.choice(self.ATOMS)


@pytest.mark.parametrize("seed", range(20))
def test_random_expressions_keep_their_meaning(seed):
    exprs = _Exprs(seed)
    consts = "\n".join(f"const C{i} = {exprs.expr(4)}" for i in range(6))
    forward = "\n".join(f"        y{i} = {exprs.expr(3)}" for i in range(3))
    spec = f"{consts}\n\nmodel M(x: [B, 3]) {{\n    forward(x) {{\n{forward}\n        return x\n    }}\n}}\n"
    check(spec)  # random operator chains can be too long with no bracket to break them at


# ---------------------------------------------------------------- the command
MESSY = "model M(x:[B,3]){fc=Linear(_,2) # out\n}"
TIDY = "model M(x: [B, 3]) {\n    fc = Linear(_, 2)  # out\n}\n"


def test_fmt_rewrites_in_place(tmp_path, capsys):
    messy, tidy = tmp_path / "messy.nnspec", tmp_path / "tidy.nnspec"
    messy.write_text(MESSY)
    tidy.write_text(TIDY)
    assert main(["fmt", str(messy), str(tidy)]) == 0
    assert messy.read_text() == TIDY
    assert tidy.read_text() == TIDY
    err = capsys.readouterr().err
    assert f"reformatted {messy}" in err
    assert str(tidy) not in err
    assert "1 file reformatted, 1 file left unchanged." in err


def test_fmt_check_lists_what_would_change(tmp_path, capsys):
    messy, tidy = tmp_path / "messy.nnspec", tmp_path / "tidy.nnspec"
    messy.write_text(MESSY)
    tidy.write_text(TIDY)
    assert main(["fmt", "--check", str(messy), str(tidy)]) == 1
    assert messy.read_text() == MESSY
    out, err = capsys.readouterr()
    assert out == ""
    assert f"would reformat {messy}" in err
    assert str(tidy) not in err
    assert main(["fmt", "--check", str(tidy)]) == 0


def test_fmt_check_sees_a_byte_order_mark(tmp_path):
    spec = tmp_path / "bom.nnspec"
    spec.write_bytes(b"\xef\xbb\xbf" + TIDY.encode())
    assert main(["fmt", "--check", str(spec)]) == 1
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_bytes() == TIDY.encode()


def test_fmt_stdin_to_stdout(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(MESSY))
    assert main(["fmt", "-"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (TIDY, "")
    monkeypatch.setattr(sys, "stdin", io.StringIO(MESSY))
    assert main(["fmt", "--check", "-"]) == 1
    assert capsys.readouterr().out == ""


def test_fmt_reports_errors_and_goes_on(tmp_path, capsys):
    bad, messy = tmp_path / "bad.nnspec", tmp_path / "messy.nnspec"
    bad.write_text("model M(x: [B, 3]) {\n    fc = Linear(4, 2\n}\n")
    messy.write_text(MESSY)
    assert main(["fmt", str(bad), str(messy), str(tmp_path / "nope.nnspec")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:16: '(' opened at 2:16 was never closed" in err
    assert "nope.nnspec: no such file" in err
    assert messy.read_text() == TIDY
    assert bad.read_text().startswith("model M(x: [B, 3]) {\n    fc = Linear(4, 2")
    assert "1 file reformatted, 2 files failed." in err
