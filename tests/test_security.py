"""No spec can run code: every name is checked, every string is a literal, imports read only spec files.

A spec is data. The code modelspec prints from it defines classes and
nothing else; building a module executes exactly that code. Here hostile
names and strings are put in every place a spec can hold one, and each spec
must either be refused with a located `SpecError` or print code that is inert
(``tests/inert.py``). The specs that compile are then built and run in a
separate Python with an audit hook (PEP 578) watching: the only code it may
compile and execute is modelspec's own generated module, it may open only
``.nnspec`` files, and it may start no process.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from inert import inert_problem
from modelspec import SpecError, elaborate_spec, generate_code
from modelspec.names import BUILTINS, GENERATED, MODULE_ATTRIBUTES, SEQUENTIAL_METHODS, name_problem

HOSTILE_NAMES = [
    "__import__", "__class__", "__builtins__", "__globals__", "__subclasses__", "__dict__", "__init__", "exec",
    "eval", "compile", "open", "getattr", "setattr", "globals", "os", "sys", "self", "torch", "nn", "F", "super",
    "lambda", "import", "training", "forward", "_modules", "_parameters", "input", "print", "breakpoint", "type",
    "object", "in_shape", "range", "None", "True", "x", "M",
]

# Every place a name stands in a spec; {N} is the name.
NAME_SLOTS = {
    "model": "model {N}(x: [B, 4]) {{ fc = Linear(_, 2) }}",
    "block": "block {N}(n) {{ fc = Linear(_, n) }}\nmodel M(x: [B, 4]) {{ b = {N}(2) }}",
    "block_param": "block Blk({N}) {{ fc = Linear(_, {N}) }}\nmodel M(x: [B, 4]) {{ b = Blk(2) }}",
    "block_keyword": "block Blk(n) {{ fc = Linear(_, n) }}\nmodel M(x: [B, 4]) {{ b = Blk({N}=2) }}",
    "const": "const {N} = 3\nmodel M(x: [B, 4]) {{ fc = Linear(_, {N}) }}",
    "child": "model M(x: [B, 4]) {{ {N} = Linear(_, 2) }}",
    "local_const": "model M(x: [B, 4]) {{ {N} = 3\n fc = Linear(_, {N}) }}",
    "param": "model M(x: [B, 4]) {{ param {N}: [4, 2] = randn\n forward(x) {{ return x @ {N} }} }}",
    "buffer": "model M(x: [B, 4]) {{ buffer {N}: [4] = ones\n forward(x) {{ return x * {N} }} }}",
    "input": "model M({N}: [B, 4]) {{ fc = Linear(_, 2) }}",
    "forward_param": "model M(x: [B, 4]) {{ fc = Linear(_, 2)\n forward({N}) {{ return fc({N}) }} }}",
    "local": "model M(x: [B, 4]) {{ fc = Linear(_, 2)\n forward(x) {{ {N} = fc(x)\n return {N} }} }}",
    "loop_variable": "model M(x: [B, 4]) {{ ls = ModuleList([Linear(4, 4)])\n"
                     " forward(x) {{ for {N} in ls {{ x = {N}(x) }}\n return x }} }}",
    "comprehension_variable": "model M(x: [B, 4]) {{ s = Sequential(*[Linear(4, 4) for {N} in range(2)]) }}",
    "dim_symbol": "model M(x: [{N}, 4]) {{ fc = Linear(_, 2) }}",
    "layer_keyword": "model M(x: [B, 4]) {{ fc = Linear(_, 2, {N}=True) }}",
    "op_keyword": "model M(x: [B, 4]) {{ forward(x) {{ return F.relu(x, {N}=True) }} }}",
    "call_keyword": "model M(x: [B, 4]) {{ fc = Linear(_, 2)\n forward(x) {{ return fc(x, {N}=True) }} }}",
    "method": "model M(x: [B, 4]) {{ forward(x) {{ return x.{N}() }} }}",
    "attribute": "model M(x: [B, 4]) {{ forward(x) {{ return x.{N} }} }}",
    "function": "model M(x: [B, 4]) {{ forward(x) {{ return F.{N}(x) }} }}",
    "torch_function": "model M(x: [B, 4]) {{ forward(x) {{ return torch.{N}(x) }} }}",
    "torch_attribute": "model M(x: [B, 4]) {{ forward(x) {{ return torch.{N}.system(x) }} }}",
    "layer": "model M(x: [B, 4]) {{ fc = nn.{N}(4, 2) }}",
    "bare_call": "model M(x: [B, 4]) {{ forward(x) {{ return {N}(x) }} }}",
    "static_call": "model M(x: [B, 4]) {{ fc = Linear(_, {N}(2)) }}",
    "moduledict_key": "model M(x: [B, 4]) {{ d = ModuleDict({{'{N}': Linear(4, 2)}})\n"
                      " forward(x) {{ return d['{N}'](x) }} }}",
    "import_name": 'from "lib/blocks.nnspec" import {N}\nmodel M(x: [B, 4]) {{ fc = Linear(_, 2) }}',
    "init": "model M(x: [B, 4]) {{ param W: [4, 2] = {N}\n forward(x) {{ return x @ W }} }}",
    "dtype": "model M(x: {N}[B, 4]) {{ fc = Linear(_, 2) }}",
}

# Strings a spec may hold, as the text inside them (written into the spec as escaped literals).
HOSTILE_STRINGS = [
    '"""; import os; os.system("touch PWNED") #',
    "'); __import__('os').system('touch PWNED'); ('",
    "\n__import__('os').system('touch PWNED')\n",
    "\\\"); exec('open(\"PWNED\", \"w\")') #",
    "{__import__('os').system('touch PWNED')}",
    "%(x)s %s {0}",
    "\u2028import os\u2029\x85\x0c",
    "\x00",
    "\r\nimport os",
    "#",
    "\\",
    "zeros",
    "../PWNED.nnspec",
]

# Every place a string stands; {S} is a string literal.
STRING_SLOTS = {
    "padding_mode": "model M(x: [B, 1, 8, 8]) {{ c = Conv2d(1, 2, 3, padding_mode={S}) }}",
    "padding": "model M(x: [B, 1, 8, 8]) {{ c = Conv2d(1, 2, 3, padding={S}) }}",
    "op_argument": "model M(x: [B, 4]) {{ forward(x) {{ return F.gelu(x, approximate={S}) }} }}",
    "const": "const NOTE = {S}\nmodel M(x: [B, 4]) {{ fc = Linear(_, 2) }}",
    "const_as_argument": "const MODE = {S}\nmodel M(x: [B, 1, 8, 8]) {{ c = Conv2d(1, 2, 3, padding_mode=MODE) }}",
    "block_default": "block Blk(note = {S}) {{ fc = Linear(_, 2) }}\nmodel M(x: [B, 4]) {{ b = Blk() }}",
    "block_argument": "block Blk(note) {{ fc = Linear(_, 2) }}\nmodel M(x: [B, 4]) {{ b = Blk({S}) }}",
    "local_value": "model M(x: [B, 4]) {{ note = {S}\n fc = Linear(_, 2) }}",
    "forward_value": "model M(x: [B, 4]) {{ forward(x) {{ note = {S}\n return x }} }}",
    "comparison": "const K = 2 if {S} == 'zeros' else 3\nmodel M(x: [B, 4]) {{ fc = Linear(_, K) }}",
    "moduledict_key": "model M(x: [B, 4]) {{ d = ModuleDict({{{S}: Linear(4, 2)}})\n"
                      " forward(x) {{ return d[{S}](x) }} }}",
    "index": "model M(x: [B, 4]) {{ forward(x) {{ return x[{S}] }} }}",
    "child_name": "block Blk(n) {{ fc = Linear(_, n)\n {S} = ReLU() if n > 1 }}\n"
                  "model M(x: [B, 4]) {{ {S} = Blk(2)\n b = Blk(4)\n c = Linear(_, 2) }}",
    "sequential_key": "model M(x: [B, 4]) {{ s = Sequential({{{S}: Linear(4, 2), 'act': ReLU()}}) }}",
    "import": "import {S}\nmodel M(x: [B, 4]) {{ fc = Linear(_, 2) }}",
    "from_import": "from {S} import Head\nmodel M(x: [B, 4]) {{ fc = Linear(_, 2) }}",
    "init_argument": "model M(x: [B, 4]) {{ param W: [4, 2] = normal({S}, 1)\n forward(x) {{ return x @ W }} }}",
}


def spec_string(text: str) -> str:
    """A spec string literal for ``text``: Python's escapes, so the spec holds exactly ``text``."""
    return json.dumps(text)  # \", \\, \n, \uXXXX: escapes the spec grammar reads as Python does


def injection_specs() -> dict[str, str]:
    specs = {}
    for slot, template in NAME_SLOTS.items():
        for name in HOSTILE_NAMES:
            specs[f"name-{slot}-{name}"] = template.format(N=name)
    for slot, template in STRING_SLOTS.items():
        for i, text in enumerate(HOSTILE_STRINGS):
            specs[f"string-{slot}-{i}"] = template.format(S=spec_string(text))
    for i, text in enumerate(HOSTILE_STRINGS):  # comments: never printed at all
        comment = text.replace("\n", " ").replace("\r", " ").replace("\u2028", " ").replace("\u2029", " ")
        comment = comment.replace("\x85", " ").replace("\x0c", " ")
        specs[f"comment-{i}"] = f"# {comment}\nmodel M(x: [B, 4]) {{ fc = Linear(_, 2) }}  # {comment}\n"
    return specs


SPECS = injection_specs()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("injection")
    (base / "lib").mkdir()
    (base / "lib" / "blocks.nnspec").write_text("block Head(n) { fc = Linear(_, n) }\n")
    return base


@pytest.fixture(scope="module")
def outcomes(folder):
    """Each injection spec's outcome: the SpecError, or the code it prints."""
    out = {}
    for name, text in SPECS.items():
        path = folder / f"{name}.nnspec"
        path.write_text(text, encoding="utf-8")
        try:
            out[name] = generate_code(elaborate_spec(path))
        except SpecError as err:
            out[name] = err
    return out


def test_there_are_many_injection_attempts():
    assert len(SPECS) >= len(NAME_SLOTS) * len(HOSTILE_NAMES) + len(STRING_SLOTS) * len(HOSTILE_STRINGS)


@pytest.mark.parametrize("slot", sorted(NAME_SLOTS))
def test_hostile_names_are_refused_or_inert(slot, outcomes, folder):
    for name in HOSTILE_NAMES:
        key = f"name-{slot}-{name}"
        got = outcomes[key]
        if isinstance(got, SpecError):
            lines = SPECS[key].split("\n")
            assert 1 <= got.line <= len(lines) and 1 <= got.column <= len(lines[got.line - 1]) + 1, (key, str(got))
            continue
        problem = inert_problem(got)
        assert problem is None, f"{key}: {problem}\n{got}"
        if name.startswith("__"):
            # a dunder never reaches the code as a variable: at most as a string key or in a comment
            tree = ast.parse(got)
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name], (key, got)


@pytest.mark.parametrize("slot", sorted(STRING_SLOTS))
def test_hostile_strings_stay_literals(slot, outcomes):
    for i in range(len(HOSTILE_STRINGS)):
        key = f"string-{slot}-{i}"
        got = outcomes[key]
        if isinstance(got, SpecError):
            continue
        assert inert_problem(got) is None, f"{key}: {inert_problem(got)}\n{got}"
        # the string is in the code only as a literal: no name or call of the payload appears
        for node in ast.walk(ast.parse(got)):
            if isinstance(node, ast.Name):
                assert node.id not in ("os", "exec", "__import__", "open", "system"), (key, got)


def test_hostile_child_names_stay_literals_in_explained_code(folder):
    """--explain shows module paths in docstrings and comments: a child named by a string cannot end them."""
    explained = 0
    for key in [k for k in SPECS if k.startswith(("string-child_name-", "string-sequential_key-"))]:
        try:
            code = generate_code(elaborate_spec(folder / f"{key}.nnspec"), explain=True)
        except SpecError:
            continue
        assert inert_problem(code) is None, f"{key}: {inert_problem(code)}\n{code}"
        explained += 1
    assert explained >= 8


def test_some_hostile_strings_do_reach_the_code(outcomes):
    """The string tests are meaningful only if hostile strings are printed somewhere: as literals."""
    printed = [k for k, v in outcomes.items() if k.startswith("string-") and isinstance(v, str)
               and any(spec_string(t)[1:-1] in v for t in HOSTILE_STRINGS[:5])]
    assert len(printed) >= 10, printed


def test_comments_never_reach_the_code(outcomes):
    for i in range(len(HOSTILE_STRINGS)):
        code = outcomes[f"comment-{i}"]
        assert isinstance(code, str), code
        assert "PWNED" not in code and "import os" not in code


def test_hostile_file_name_is_escaped_in_the_docstring(tmp_path):
    path = tmp_path / 'x"""; __import__("os").system("touch PWNED"); """\n#.nnspec'
    path.write_text("model M(x: [B, 4]) { fc = Linear(_, 2) }\n")
    code = generate_code(elaborate_spec(path))
    assert inert_problem(code) is None, code
    assert ast.get_docstring(ast.parse(code)).startswith("M, generated by modelspec from x\"\"\"")


def test_imports_read_only_spec_files(tmp_path):
    sentinel = tmp_path / "PWNED"
    (tmp_path / "evil.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    (tmp_path / "evil.nnspec").symlink_to(tmp_path / "evil.py")  # a .nnspec name on Python text: refused, unread
    cases = {
        'import "evil.py"': "imports read only .nnspec files",
        'from "evil.py" import Head': "imports read only .nnspec files",
        'import "os"': "imports read only .nnspec files",
        'import "evil.nnspec"': "not a .nnspec file",
        'import "/etc/passwd"': "imports read only .nnspec files",
        'import "missing.nnspec"': "no such file",
        'import "a{b.nnspec"': "no such file",
    }
    for line, message in cases.items():
        spec = tmp_path / "main.nnspec"
        spec.write_text(line + "\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }\n")
        with pytest.raises(SpecError) as info:
            elaborate_spec(spec)
        assert message in info.value.message, (line, str(info.value))
    assert not sentinel.exists()


# ------------------------------------------------------------------ the names the code may use
def test_module_attributes_cover_torch(torch):
    names = set(dir(torch.nn.Module()))
    missing = names - MODULE_ATTRIBUTES - {n for n in names if n.startswith("__")}
    assert not missing, f"nn.Module attributes a child could shadow, missing from MODULE_ATTRIBUTES: {sorted(missing)}"


def test_sequential_methods_cover_torch(torch):
    names = set(dir(torch.nn.Sequential())) - set(dir(torch.nn.Module()))
    assert {n for n in names if not n.startswith("__")} == SEQUENTIAL_METHODS
    for name in SEQUENTIAL_METHODS:  # torch refuses each as a key of nn.Sequential(OrderedDict(...))
        assert name_problem(name, "a Sequential key") is not None, name
    assert name_problem("block1-0", "a Sequential key") is None


@pytest.mark.parametrize("name", sorted(BUILTINS | GENERATED | {"__x", "lambda", "class"}))
def test_no_variable_can_shadow_a_builtin_or_the_code(name):
    for what in ("a model", "a block", "a const", "a block parameter", "an input", "a forward input", "a value",
                 "a loop variable"):
        assert name_problem(name, what) is not None, (name, what)


def test_children_may_not_shadow_module_attributes():
    for name in MODULE_ATTRIBUTES:
        assert name_problem(name, "a child") is not None, name
    assert name_problem("fc", "a child") is None
    # `self.exec` hides nothing, but `exec(x)` in the spec would read as the builtin: tests/test_names.py
    assert name_problem("exec", "a child") is not None


# ------------------------------------------------------------------ what modelspec's own code may do
DYNAMIC_GETATTR_ALLOWED = {
    # (file, the object): why the attribute's name cannot come from a spec
    ("build.py", "module"): "the class the generated module defines; graph.name is a checked identifier",
    ("values.py", "self._scope"): "_PathScope delegating to its scope",
    ("fmt.py", "self"): "dispatch on an IR node's kind, a Literal tag the parser sets",
    ("explain.py", "self"): "dispatch on an IR node's kind, a Literal tag the parser sets",
    ("printer.py", "self"): "dispatch on an expression's kind: an IR Literal tag or a modelspec.expr class constant",
    ("expr.py", "node"): "the declared fields of a modelspec.expr dataclass, walked to read or replace names",
    ("recurrent.py", "a"): "bound layer arguments, by the catalog's own argument names",
    ("transformer.py", "a"): "bound layer arguments, by the catalog's own argument names",
    ("fromtorch.py", "obj"): "from-torch reads a Python module: torch's classes and functions by the catalog's and "
                             "the op table's names, a layer's arguments, the TARGET the user named",
}
# from-torch imports the Python TARGET the user names: running the user's own code is what it is asked to do
# ... and the package loads its public names lazily, each from the module its fixed table names (__init__.py)
ALLOWED_IMPORTS = {("fromtorch.py", "load_target"), ("__init__.py", "__getattr__")}
ALLOWED_PROCESSES = {"graph.py": "runs Graphviz's dot on DOT text, for `modelspec graph --format svg|png|pdf` only",
                     "trainer.py": "starts torch's own launcher, python -m torch.distributed.run, with modelspec "
                                   "train's own arguments, for `modelspec train --nproc N` only"}


def _calls(tree):
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call):
                    yield fn.name, node


def test_modelspec_never_evaluates_or_imports_by_name():
    """eval/exec/compile/__import__/importlib in modelspec: only build.py, on the generated code."""
    found = []
    for path in sorted((ROOT / "modelspec").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "marshal", "subprocess", "ctypes", "runpy") for n in names) \
                        and path.name not in ALLOWED_PROCESSES:
                    found.append(f"{path.name}: imports {names}")
            if isinstance(node, ast.Attribute) and node.attr in ("import_module", "exec_module", "system", "popen",
                                                                 "spawn"):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        for fn in ast.walk(tree):  # the one function allowed to import by name, and only there
            if isinstance(fn, ast.FunctionDef) and (path.name, fn.name) in ALLOWED_IMPORTS:
                lines = range(fn.lineno, fn.end_lineno + 1)
                found = [f for f in found if not (f.startswith(f"{path.name}:") and f.endswith(("_module"))
                                                   and int(f.split(":")[1]) in lines)]
        for fn, call in _calls(tree):
            name = call.func.id if isinstance(call.func, ast.Name) else None
            if name in ("eval", "exec", "compile", "__import__") and not (path.name == "build.py" and
                                                                          name in ("exec", "compile")):
                found.append(f"{path.name}:{call.lineno}: {name}()")
            if name == "getattr" and len(call.args) >= 2 and not isinstance(call.args[1], ast.Constant):
                if (path.name, ast.unparse(call.args[0])) not in DYNAMIC_GETATTR_ALLOWED:
                    found.append(f"{path.name}:{call.lineno} in {fn}(): getattr with a computed name "
                                 f"{ast.unparse(call.args[1])}")
    assert not found, "\n".join(found)


def test_build_executes_only_the_generated_code():
    src = (ROOT / "modelspec" / "build.py").read_text()
    tree = ast.parse(src)
    execs = [c for _, c in _calls(tree) if isinstance(c.func, ast.Name) and c.func.id == "exec"]
    assert len(execs) == 1, "build.py holds exactly one exec: of the code generate_code printed"


# ------------------------------------------------------------------ building, watched by an audit hook
RUNNER = r'''
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import torch
import modelspec
from modelspec import compile_spec, example_inputs
from modelspec.build import build_module  # noqa: F401  (imported before watching)

WATCH = ("exec", "compile", "import", "open", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
         "subprocess.Popen", "socket.connect", "ctypes.dlopen", "pickle.find_class", "shutil.rmtree", "os.remove")
events, on = [], [False]

def hook(event, args):
    if on[0] and event in WATCH:
        arg = args[0] if args else None
        if event == "exec":
            arg = getattr(arg, "co_filename", repr(arg)[:80])
        elif event == "compile":  # (filename, the start of the source)
            src = args[0].decode("utf-8", "replace") if isinstance(args[0], bytes) else str(args[0])
            arg = [str(args[1]), src[:200]]
        elif event == "open":  # (path, mode)
            arg = [str(args[0]), str(args[1])]
        events.append((event, arg if isinstance(arg, list) else str(arg)[:200]))

sys.addaudithook(hook)
warm = compile_spec("model W(x: [B, 4]) { fc = Linear(_, 2) }")
warm(*example_inputs("model W(x: [B, 4]) { fc = Linear(_, 2) }"))
report = {}
for path in sys.argv[1:]:
    events.clear()
    on[0] = True
    try:
        model = compile_spec(path, seed=0)
        with torch.no_grad():
            model(*example_inputs(path))
        status = "ran"
    except Exception as exc:
        status = f"{type(exc).__name__}: {exc}"
    on[0] = False
    report[path] = {"status": status, "events": list(events)}
print(json.dumps(report))
'''


def test_compiled_injection_specs_build_and_run_inertly(outcomes, folder):
    compiled = [folder / f"{k}.nnspec" for k, v in outcomes.items() if isinstance(v, str)]
    assert len(compiled) >= 50, f"only {len(compiled)} injection specs compile: the test would see little"
    runner = folder / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, str(runner), *map(str, compiled)], capture_output=True, text=True,
                         cwd=folder, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    bad = []
    for path, r in report.items():
        name = Path(path).name
        if r["status"] != "ran":
            bad.append(f"{name}: {r['status']}")
        for event, arg in r["events"]:
            if event == "exec":
                if not arg.startswith("<modelspec:"):
                    bad.append(f"{name}: exec of {arg}")
            elif event == "compile":
                filename, source = arg
                # the generated module; or ast.literal_eval reading a spec's string literal (parsing, no code)
                if not (filename.startswith("<modelspec:") or (filename == "<unknown>" and source[:1] in "'\"")):
                    bad.append(f"{name}: compile of {filename}: {source[:60]!r}")
            elif event == "open":
                path, mode = arg
                if any(c in mode for c in "wax+"):
                    bad.append(f"{name}: opened {path} to write ({mode})")
                elif not path.endswith((".nnspec", ".py", ".pyc")) and not path.startswith("/proc/"):
                    bad.append(f"{name}: opened {path}")  # sources are read for warnings' and tracebacks' lines
            elif event == "import":
                if not arg.startswith(("torch", "modelspec_generated_")):
                    bad.append(f"{name}: imported {arg}")
            else:
                bad.append(f"{name}: {event} {arg}")
    assert not bad, "\n".join(bad[:30])
    assert not list(folder.glob("PWNED*")) and not (ROOT / "PWNED").exists()
