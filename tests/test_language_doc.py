"""docs/language.md is true, and complete.

Every example in it runs: a ```nnspec block is a whole spec, compiled, built,
run on its example inputs and round-tripped through its printed code; a
```nnspec-error block must be refused with exactly the message in the
```error block after it (or warned with exactly that warning); a ```python block must be part of the code printed
for the spec before it; a ```nnspec file=NAME block is a file the other
examples import.

And the reference cannot fall behind the tables it documents: every grammar
rule has its section (`SECTIONS`) and is used by an example there, every
operator of the IR is used by some example, every op of `OPS` and every layer
of `CATALOG` has its row (with the spellings the table allows), and so does
every init, `_`-inferred argument and limit. A construct, op, layer, init or
limit added without its documentation fails here until the doc has it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
import warnings
from pathlib import Path

import pytest
from lark import Tree

from conftest import BLESS, ROOT
from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code, ir, parse_spec
from modelspec.elaborate import MAX_DIM, Elaborator
from modelspec.errors import ModelspecWarning
from modelspec.forward import MAX_LOOP_NESTING
from modelspec.layers import CATALOG
from modelspec.layers.base import MAX_ELEMENTS
from modelspec.ops import F_NAMES, MAX_PIECES, OPS, TORCH_NAMES
from modelspec.parse import MAX_NESTING, _parser, grammar_text
from modelspec.pipeline import MAX_FILE_BYTES, symbol_sizes
from modelspec.shapes import evaluate
from modelspec.values import Limits
from test_specs import _flat, exec_printed

DOC_PATH = ROOT / "docs" / "language.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

# Each grammar rule and alias -> the heading of the section that documents it. Adding a rule to
# grammar/nnspec.lark fails test_every_grammar_rule_has_a_section until it is here, with a section in the doc
# whose examples use it (test_every_construct_is_shown_in_its_section). Pass-through rules (`?rule`, the
# precedence levels) build no node of their own; the section named for them is checked to exist.
SECTIONS = {
    "start": "Files",
    "train_def": "`train`",
    "train_setting": "`train`",
    "train_target": "The target",
    "train_data": "Data computed in the spec",
    "import_all": "`import`",
    "import_names": "`import`",
    "const_def": "`const`",
    "block_def": "`block`",
    "sequential_block_def": "A block that is a Sequential",
    "block_param": "`block`",
    "model_def": "`model`",
    "model_input": "`model`",
    "tensor_type": "Input types",
    "dim_decl": "Input types",
    "sym_dim": "Input types",
    "child_def": "Children",
    "cond_child_def": "Conditional children",
    "param_def": "`param`",
    "buffer_def": "`buffer`",
    "forward_def": "`forward`",
    "assign": "Assignment",
    "target_list": "Assignment",
    "target": "Assignment",
    "name_target": "Assignment",
    "return_stmt": "`return`",
    "for_stmt": "`for`",
    "fwd_block": "`for`",
    "if_stmt": "`if`",
    "test": "Precedence",
    "or_test": "Precedence",
    "and_test": "Precedence",
    "not_test": "Precedence",
    "comparison": "Precedence",
    "bitwise_or": "Precedence",
    "bitwise_xor": "Precedence",
    "bitwise_and": "Precedence",
    "arith": "Precedence",
    "term": "Precedence",
    "factor": "Precedence",
    "power": "Precedence",
    "primary": "Precedence",
    "atom": "Precedence",
    "ternary": "Conditional expressions",
    "or_op": "Boolean logic",
    "and_op": "Boolean logic",
    "not_op": "Boolean logic",
    "compare": "Comparisons",
    "comp_op": "Comparisons",
    "binop": "Arithmetic",
    "unary": "Arithmetic",
    "pow_op": "Arithmetic",
    "call": "Calls",
    "arguments": "Calls",
    "argument": "Calls",
    "keyword": "Calls",
    "starred": "Calls",
    "subscript": "Subscripts and slices",
    "subscripts": "Subscripts and slices",
    "subscript_item": "Subscripts and slices",
    "slice": "Subscripts and slices",
    "ellipsis": "Subscripts and slices",
    "attribute": "Attributes",
    "name": "Names",
    "infer": "`_`",
    "int_lit": "Literals",
    "float_lit": "Literals",
    "str_lit": "Literals",
    "true_lit": "Literals",
    "false_lit": "Literals",
    "none_lit": "Literals",
    "tuple_lit": "Tuples and lists",
    "list_lit": "Tuples and lists",
    "list_comp": "List comprehensions",
    "loop_var": "List comprehensions",
    "dict_lit": "Dicts",
    "dict_item": "Dicts",
    "dict_comp": "Dict comprehensions",
    "call_stmt": "Lists in forward",
    "tie_def": "Weight tying",
}

# the limits that are constants of the code, not fields of Limits: the name the doc's row gives -> the value
FIXED_LIMITS = {
    "MAX_FILE_BYTES": MAX_FILE_BYTES,
    "MAX_NESTING": MAX_NESTING,
    "MAX_LOOP_NESTING": MAX_LOOP_NESTING,
    "MAX_DIM": MAX_DIM,
    "MAX_ELEMENTS": MAX_ELEMENTS,
    "MAX_PIECES": MAX_PIECES,
}

TORCH_DTYPES = {"float": "float32", "long": "int64", "bool": "bool"}


# ---------------------------------------------------------------- reading the doc
@dataclasses.dataclass(frozen=True)
class Heading:
    level: int
    title: str
    line: int  # 1-based
    end: int  # the line where the next heading of the same or a higher level starts (or the end)


@dataclasses.dataclass(frozen=True)
class Block:
    lang: str  # nnspec | nnspec-error | error | python | ...
    info: str  # what follows the language on the fence line: file=NAME
    text: str
    line: int  # of the fence
    heading: str  # the title of the nearest heading above it

    @property
    def file(self) -> str | None:
        m = re.fullmatch(r"file=(\S+)", self.info.strip())
        return m.group(1) if m else None

    @property
    def id(self) -> str:
        return f"line{self.line}"


def read_doc(text: str) -> tuple[list[Heading], list[Block]]:
    lines = text.split("\n")
    raw, blocks, fence, heading = [], [], None, ""
    for i, line in enumerate(lines, 1):
        if fence is not None:
            if line.rstrip() == "```":
                lang, info, start, body = fence
                blocks.append(Block(lang, info, "\n".join(body) + "\n", start, heading))
                fence = None
            else:
                fence[3].append(line)
            continue
        m = re.match(r"```(\S*)\s*(.*)$", line)
        if m:
            fence = (m.group(1), m.group(2), i, [])
            continue
        m = re.match(r"(#{1,6}) (.+?)\s*$", line)
        if m:
            raw.append((len(m.group(1)), m.group(2), i))
            heading = m.group(2)
    assert fence is None, f"docs/language.md: the fence opened at line {fence[2]} is never closed"
    headings = []
    for k, (level, title, line) in enumerate(raw):
        end = next((ln for lv, _, ln in raw[k + 1:] if lv <= level), len(lines) + 1)
        headings.append(Heading(level, title, line, end))
    return headings, blocks


HEADINGS, BLOCKS = read_doc(DOC)
SPECS = [b for b in BLOCKS if b.lang == "nnspec" and b.file is None]
ERRORS = [b for b in BLOCKS if b.lang == "nnspec-error"]
FILES = [b for b in BLOCKS if b.lang == "nnspec" and b.file is not None]
SPEC_TEXTS = [b for b in BLOCKS if b.lang in ("nnspec", "nnspec-error")]


def heading(title: str) -> Heading:
    found = [h for h in HEADINGS if h.title == title]
    assert len(found) == 1, f"docs/language.md has {len(found)} headings {title!r}; the tests need exactly one"
    return found[0]


def section_text(title: str) -> str:
    h = heading(title)
    return "\n".join(DOC.split("\n")[h.line - 1:h.end - 1])


def blocks_in(title: str) -> list[Block]:
    h = heading(title)
    return [b for b in SPEC_TEXTS if h.line < b.line < h.end]


def table_rows(text: str) -> list[list[str]]:
    """The rows of the Markdown tables in ``text`` (header and rule lines left out), each as its cells."""
    rows = []
    for line in text.split("\n"):
        if not line.startswith("|") or re.fullmatch(r"\|[\s|:-]+\|", line.strip()):
            continue
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return [r for r in rows if r and r[0].startswith("`")]  # header rows are words, not code


def code_items(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def prose(text: str) -> str:
    """``text`` without its fenced blocks."""
    return re.sub(r"^```.*?^```$", "", text, flags=re.M | re.S)


def write_files(where: Path) -> None:
    for b in FILES:
        (where / b.file).write_text(b.text, encoding="utf-8")


def model_names(text: str) -> list[str]:
    return [m.name for m in parse_spec(text).models()]


# ---------------------------------------------------------------- every example runs
@pytest.mark.parametrize("block", SPECS, ids=[b.id for b in SPECS])
def test_example_compiles_runs_and_round_trips(block, tmp_path, torch):
    write_files(tmp_path)
    path = tmp_path / "example.nnspec"
    path.write_text(block.text, encoding="utf-8")
    names = model_names(block.text)
    assert names, f"the example at line {block.line} defines no model (mark a file others import `file=NAME`)"
    for name in names:
        graph = elaborate_spec(path, model=name)
        compiled = compile_spec(path, model=name, seed=0).eval()
        printed = exec_printed(generate_code(path, model=name), graph.name)()
        assert list(printed.state_dict()) == list(compiled.state_dict())
        printed.load_state_dict(compiled.state_dict(), strict=True)
        printed.eval()
        inputs = example_inputs(path, model=name, batch=3)
        with torch.no_grad():
            torch.manual_seed(1)  # a forward that draws random numbers draws the same ones in both
            got = list(_flat(compiled(*inputs)))
            torch.manual_seed(1)
            again = list(_flat(printed(*inputs)))
        sizes = symbol_sizes(graph, 3)
        assert [tuple(t.shape) for t in got] == [tuple(evaluate(d.value, sizes) for d in o.shape)
                                                 for o in graph.outputs]
        assert [str(t.dtype) for t in got] == [f"torch.{TORCH_DTYPES[o.dtype]}" for o in graph.outputs]
        for a, b in zip(got, again, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def refusal(block: Block, where: Path) -> str | None:
    """The message compiling ``block`` (in the folder ``where``) is refused with, as `SpecError.render` prints
    it for a file named as in the doc; None if it compiles."""
    write_files(where)
    path = where / "example.nnspec"
    path.write_text(block.text, encoding="utf-8")
    try:
        names = model_names(block.text) or [None]
    except SpecError:  # a syntax error: compiling the file says it with its place
        names = [None]
    try:
        with warnings.catch_warnings():  # a warning example shows its warning as an error example its error
            warnings.simplefilter("error", ModelspecWarning)
            for name in names:
                compile_spec(path, model=name)
    except ModelspecWarning as issued:
        err = issued.warning
        err.path = os.path.basename(err.path) if err.path else err.path
        return err.render()
    except SpecError as err:
        err.path = os.path.basename(err.path) if err.path else err.path
        return err.render()
    return None


def shown_refusal(block: Block) -> Block:
    after = [b for b in BLOCKS if b.line > block.line]
    assert after and after[0].lang == "error", f"the error example at line {block.line} needs an ```error block"
    return after[0]


def bless_refusals(tmp: Path) -> None:
    """With MODELSPEC_BLESS=1, write each error example's message as modelspec prints it now, for review as a
    diff of docs/language.md (tests/golden/ and tests/errors/ are re-blessed the same way)."""
    lines = DOC.split("\n")
    for block in reversed(ERRORS):  # from the end, so the lines above keep their numbers
        shown = shown_refusal(block)
        folder = tmp / block.id
        folder.mkdir()
        got = refusal(block, folder)
        if got is not None:
            end = shown.line + shown.text.count("\n")  # the closing fence
            lines[shown.line:end] = got.split("\n")
    DOC_PATH.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("block", ERRORS, ids=[b.id for b in ERRORS])
def test_error_example_is_refused_as_shown(block, tmp_path):
    shown = shown_refusal(block)
    got = refusal(block, tmp_path)
    assert got is not None, f"the error example at line {block.line} compiles"
    assert got == shown.text.rstrip("\n"), (f"the message at line {shown.line} is not what modelspec prints; if the "
                                            f"change is intended, re-bless with MODELSPEC_BLESS=1 and review the diff")


def test_bless(tmp_path):
    if not BLESS:
        pytest.skip("MODELSPEC_BLESS=1 rewrites the error messages of docs/language.md")
    bless_refusals(tmp_path)


# a ```python from-torch block is a module `from-torch` reads, and the ```nnspec block after it what it writes:
# tests/test_from_torch.py holds them to each other
PRINTED = [b for b in BLOCKS if b.lang == "python" and b.info.strip() != "from-torch"]


@pytest.mark.parametrize("block", PRINTED, ids=[b.id for b in PRINTED])
def test_printed_code_is_what_codegen_prints(block, tmp_path):
    spec = [b for b in SPECS if b.line < block.line][-1]
    write_files(tmp_path)
    path = tmp_path / "example.nnspec"
    path.write_text(spec.text, encoding="utf-8")
    code = generate_code(path)
    if elaborate_spec(path).train is not None:  # the lines may be the training script's (codegen --train)
        from modelspec import generate_training_script

        code += generate_training_script(path)
    code = "\n".join(line.rstrip() for line in code.split("\n"))
    assert block.text.strip("\n") in code, f"the code at line {block.line} is not what line {spec.line} prints"


def test_there_are_examples():
    assert len(SPECS) >= 40 and len(ERRORS) >= 10 and FILES


# ---------------------------------------------------------------- every construct of the grammar
def grammar_rules() -> dict[str, bool]:
    """Every rule and alias of the grammar -> whether it builds a node of its own (not a `?` pass-through)."""
    out = {}
    for m in re.finditer(r"^([?!]?)([a-z][a-z0-9_]*)\s*:", grammar_text(), flags=re.M):
        out[m.group(2)] = m.group(1) != "?"
    for alias in re.findall(r"->\s*([a-z][a-z0-9_]*)", grammar_text()):
        out[alias] = True
    return out


def parsed_trees(blocks) -> list[Tree]:
    trees = []
    for b in blocks:
        try:
            trees.append(_parser().parse(b.text))
        except Exception:  # an error example may be a syntax error on purpose
            pass
    return trees


def test_every_grammar_rule_has_a_section():
    rules = set(grammar_rules())
    missing, stale = sorted(rules - set(SECTIONS)), sorted(set(SECTIONS) - rules)
    assert not missing, (f"grammar rules without a section: {missing}; write the section in docs/language.md, "
                         f"with an example that uses the rule, and name it in SECTIONS of this file")
    assert not stale, f"SECTIONS names rules the grammar no longer has: {stale}"
    for title in set(SECTIONS.values()):
        heading(title)


def test_every_construct_is_shown_in_its_section():
    for rule, builds in grammar_rules().items():
        assert rule in SECTIONS, f"grammar rule `{rule}` has no section in SECTIONS of this file"
        if not builds:
            continue
        used = {t.data for tree in parsed_trees(blocks_in(SECTIONS[rule])) for t in tree.iter_subtrees()}
        assert rule in used, f"no example in the section {SECTIONS[rule]!r} of docs/language.md uses `{rule}`"


def ir_nodes(blocks):
    for b in blocks:
        try:
            spec = parse_spec(b.text)
        except SpecError:
            continue
        stack = list(spec.items)
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, ir.Node):
                yield node
                stack.extend(v for _, v in node if isinstance(v, (list, ir.Node)))


def test_every_operator_is_used_by_an_example():
    ops = {(cls.__name__, op) for cls in (ir.BinOp, ir.UnaryOp, ir.BoolOp)
           for op in typing.get_args(typing.get_type_hints(cls)["op"])}
    ops |= {("Compare", op) for op in typing.get_args(typing.get_args(typing.get_type_hints(ir.Compare)["ops"])[0])}
    used = set()
    for node in ir_nodes(SPEC_TEXTS):
        if isinstance(node, (ir.BinOp, ir.UnaryOp, ir.BoolOp)):
            used.add((type(node).__name__, node.op))
        elif isinstance(node, ir.Compare):
            used |= {("Compare", op) for op in node.ops}
    assert not ops - used, f"operators no example uses: {sorted(ops - used)}"


# ---------------------------------------------------------------- every op, layer, init and limit
def op_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for row in table_rows(section_text("Tensor operations")):
        name = code_items(row[0])[0]
        assert name not in rows, f"the op {name!r} has two rows in docs/language.md"
        rows[name] = row
    return rows


def test_every_op_has_a_row_with_its_spellings():
    rows = op_rows()
    assert not set(OPS) - set(rows), f"ops without a row in 'Tensor operations': {sorted(set(OPS) - set(rows))}"
    assert not set(rows) - set(OPS), f"rows for ops the table does not have: {sorted(set(rows) - set(OPS))}"
    for name, op in OPS.items():
        row = rows[name]
        home = [op.function] if op.function else []
        spaces = home + [ns for ns in ("F", "torch") if ns not in home and name in (F_NAMES if ns == "F" else
                                                                                      TORCH_NAMES)]
        assert code_items(row[1]) == [f"{ns}.{name}" for ns in spaces], f"the functions of {name!r}"
        assert code_items(row[2]) == ([f"x.{name}"] if op.method else []), f"the method of {name!r}"
        assert row[3], f"the op {name!r} needs a description"


def test_every_op_is_called_by_an_example():
    called = set()
    for node in ir_nodes(SPECS):
        if isinstance(node, ir.Call):
            f = node.func
            if isinstance(f, ir.Name):
                called.add(("bare", f.id))
            elif isinstance(f, ir.Attribute):
                head = f.value.id if isinstance(f.value, ir.Name) else None
                called.add(("function" if head in ("F", "torch") else "method", f.attr))
    missing = [n for n, op in OPS.items()
               if not ((op.function and (("bare", n) in called or ("function", n) in called))
                       or (op.method and ("method", n) in called))]
    assert not missing, f"ops no example calls: {missing}"


def test_every_layer_is_listed_in_its_family():
    families: dict[str, set[str]] = {}
    for name, layer in CATALOG.items():
        families.setdefault(layer.family, set()).add(name)
    layers = heading("Layers")
    found = {}
    for h in HEADINGS:
        m = re.search(r"\(`(\w+)`\)$", h.title)
        if h.level == layers.level + 1 and layers.line < h.line < layers.end and m:
            found[m.group(1)] = {n for n in code_items(prose(section_text(h.title)))
                                 if re.fullmatch(r"[A-Z][A-Za-z0-9]*", n)}
    assert set(found) == set(families), f"layer families: the doc has {sorted(found)}, CATALOG {sorted(families)}"
    for family, names in families.items():
        assert found[family] == names, (f"family {family!r}: missing {sorted(names - found[family])}, "
                                        f"not in it {sorted(found[family] - names)}")


def test_every_inferred_argument_is_in_its_row():
    expected: dict[str, set[str]] = {}
    for name, layer in CATALOG.items():
        for a in layer.args:
            if a.infer is not None:
                expected.setdefault(a.name, set()).add(name)
    rows = {code_items(r[0])[0]: set(code_items(r[2])) for r in table_rows(section_text("What `_` infers"))}
    assert rows == expected


def test_every_init_has_a_row():
    rows = {code_items(r[0])[0].split("(")[0]: r for r in table_rows(section_text("Initializers"))}
    assert set(rows) == set(Elaborator.INITS), (f"inits without a row: {sorted(set(Elaborator.INITS) - set(rows))}, "
                                                f"rows for no init: {sorted(set(rows) - set(Elaborator.INITS))}")
    for name, (func, _) in Elaborator.INITS.items():
        assert func in rows[name][1], f"init {name!r} prints as {func}"


def number(cell: str) -> int:
    m = re.match(r"`?([0-9][0-9,]*)", cell)
    assert m, f"no number at the start of {cell!r}"
    return int(m.group(1).replace(",", ""))


def test_every_limit_has_its_default():
    rows = {code_items(r[0])[0]: r for r in table_rows(section_text("Limits"))}
    for f in dataclasses.fields(Limits):
        assert f.name in rows, f"Limits.{f.name} has no row"
        if isinstance(f.default, int):
            assert number(rows[f.name][1]) == f.default, f"the default of Limits.{f.name}"
    for name, value in FIXED_LIMITS.items():
        assert name in rows, f"{name} has no row"
        assert number(rows[name][1]) == value, f"the value of {name}"


def test_it_ends_with_the_pytorch_table():
    top = [h for h in HEADINGS if h.level == 2]
    assert top[-1].title == "PyTorch → nnspec"
    assert len(table_rows(section_text("PyTorch → nnspec"))) >= 25


def test_the_readme_links_here():
    assert "(docs/language.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_block_is_of_a_kind_the_tests_run():
    """A misspelled fence (```nnspecc) would leave an example untested."""
    langs = {b.lang for b in BLOCKS}
    assert langs <= {"nnspec", "nnspec-error", "error", "python"}, langs
    specs = SPECS + [f for f in FILES if f.file.endswith(".nnspec")]  # the others are data files (houses.csv)
    assert len(parsed_trees(specs)) == len(specs)
