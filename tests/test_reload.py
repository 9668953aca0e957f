"""A whole module saved with ``torch.save`` loads wherever modelspec is installed: its pickle carries its code.

Every bundled spec's module is saved here, and one fresh Python, which never
compiles a spec and cannot see the spec files, loads them all and runs them:
the outputs must be bitwise those of the saving process. The same file also
holds a module whose spec was renamed after saving, and the fresh Python
saves one of its loaded modules again and deep-copies it. The rest runs in
this process: what a pickle holds (the code, once), what deepcopy costs (no
code runs), and what ``weights_only=True`` says.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, spec_name
from modelspec import build, compile_spec, example_inputs, generate_code
from test_module_behaviour import same

RESNET = ROOT / "specs" / "resnet18.nnspec"

CHILD = r'''
import copy, json, sys, warnings
warnings.filterwarnings("ignore")
import torch
import modelspec

folder, names = sys.argv[1], sys.argv[2:]
report = {"generated_before": [k for k in sys.modules if k.startswith("modelspec_generated_")]}


def run(model, inputs):
    torch.manual_seed(0)
    with torch.no_grad():
        return model(*inputs)


for name in names:
    saved = torch.load(f"{folder}/{name}.pt", weights_only=False)
    torch.save(run(saved["model"], saved["inputs"]), f"{folder}/{name}.out.pt")
first = torch.load(f"{folder}/resnet18.pt", weights_only=False)
second = torch.load(f"{folder}/resnet18.pt", weights_only=False)
a, b = first["model"], second["model"]
report["block"] = type(a.layer1[0]).__name__
report["one_class"] = type(a) is type(b) and type(a.layer1[0]) is type(b.layer1[0])
torch.save(a, f"{folder}/resaved.pt")
torch.save(run(copy.deepcopy(a), first["inputs"]), f"{folder}/deepcopied.out.pt")
report["compiled"] = modelspec.api.code_cache.misses
print(json.dumps(report))
'''


@dataclass(frozen=True)
class Reloaded:
    """What the fresh Python made of the saved modules."""

    folder: Path
    expected: dict  # file name -> the outputs of the saving process
    report: dict  # what the fresh Python saw, from CHILD

    def outputs(self, name: str):
        import torch

        return torch.load(self.folder / f"{name}.out.pt", weights_only=True)


def run(model, inputs, torch):
    torch.manual_seed(0)  # the same draws in both processes, should a forward take any
    with torch.no_grad():
        return model(*inputs)


def save(path: Path, spec: Path, seed: int, torch):
    """Save ``spec``'s module (eval mode) with example inputs to ``path``; return its outputs on them."""
    model, inputs = compile_spec(spec, seed=seed).eval(), example_inputs(spec)
    torch.save({"model": model, "inputs": inputs}, path)
    return run(model, inputs, torch)


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory, torch):
    folder = tmp_path_factory.mktemp("reload")
    expected = {}
    for spec in SPECS:
        name = spec_name(spec).replace("/", "-")
        expected[name] = save(folder / f"{name}.pt", spec, 0, torch)
    before = folder / "before.nnspec"
    shutil.copy(ROOT / "specs" / "cnn.nnspec", before)
    expected["renamed"] = save(folder / "renamed.pt", before, 1, torch)
    before.rename(folder / "after.nnspec")
    res = subprocess.run([sys.executable, "-c", CHILD, str(folder), *expected], capture_output=True, text=True,
                         cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return Reloaded(folder, expected, json.loads(res.stdout.splitlines()[-1]))


def test_every_bundled_spec_reloads_in_a_process_that_never_compiled_it(reloaded, torch):
    assert reloaded.report["generated_before"] == [] and reloaded.report["compiled"] == 0
    differ = [name for name in reloaded.expected if not same(reloaded.outputs(name), reloaded.expected[name], torch)]
    assert not differ, f"these run differently once reloaded: {differ}"
    assert len(reloaded.expected) == len(SPECS) + 1


def test_a_module_reloads_after_its_spec_file_is_renamed(reloaded, torch):
    assert not (reloaded.folder / "before.nnspec").exists()
    assert same(reloaded.outputs("renamed"), reloaded.expected["renamed"], torch)


def test_blocks_reload_as_one_class_per_code(reloaded):
    assert reloaded.report["block"] == "BasicBlock"
    assert reloaded.report["one_class"], "two loads of the same code gave two classes"


def test_a_reloaded_module_saves_again_and_deep_copies(reloaded, torch):
    resaved = (reloaded.folder / "resaved.pt").read_bytes()
    assert resaved.count(generate_code(RESNET).encode()) == 1, "the saved-again file does not carry the code"
    model = torch.load(io.BytesIO(resaved), weights_only=False)
    assert type(model) is type(compile_spec(RESNET))  # the same code here: the same class
    assert same(run(model, example_inputs(RESNET), torch), reloaded.expected["resnet18"], torch)
    assert same(reloaded.outputs("deepcopied"), reloaded.expected["resnet18"], torch)


# ------------------------------------------------------------------ in this process
@pytest.fixture
def executed(monkeypatch):
    """The generated code executed from here on (build._execute, spied on)."""
    runs = []
    real = build._execute

    def spy(code, filename, module):
        runs.append(filename)
        real(code, filename, module)

    monkeypatch.setattr(build, "_execute", spy)
    return runs


def test_the_code_is_stored_once_per_file(torch):
    model = compile_spec(RESNET)
    generated = [m for m in model.modules() if type(m).__module__ == type(model).__module__]
    assert len(generated) == 9  # the model and its eight BasicBlocks, each pickled with the code
    buffer = io.BytesIO()
    torch.save(model, buffer)
    assert buffer.getvalue().count(generate_code(RESNET).encode()) == 1
    assert pickle.dumps(model).count(generate_code(RESNET).encode()) == 1


def test_deepcopy_runs_no_code_and_keeps_the_classes(executed, torch):
    model = compile_spec(RESNET)
    clone = copy.deepcopy(model)
    assert executed == []
    assert [type(m) for m in clone.modules()] == [type(m) for m in model.modules()]
    assert clone.fc.weight.data_ptr() != model.fc.weight.data_ptr()


def test_weights_only_says_how_to_load_and_runs_nothing(executed, torch):
    spec = "model Refused(x: [B, 4]) { fc = Linear(_, 2) }"
    model = compile_spec(spec)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    executed.clear()
    sys.modules.pop(type(model).__module__)  # as in a fresh process: loading this file would have to run code
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(io.BytesIO(buffer.getvalue()))  # weights_only=True, torch's default
    assert "modelspec.build.load_with_weights_only_False" in str(info.value)
    assert executed == []
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert len(executed) == 1 and torch.equal(loaded.fc.weight, model.fc.weight)


def test_a_subclass_of_a_generated_class_pickles_by_its_own_name(monkeypatch, torch):
    base = type(compile_spec("model Base(x: [B, 4]) { fc = Linear(_, 2) }"))
    tuned = type("Tuned", (base,), {"__module__": __name__})
    monkeypatch.setattr(sys.modules[__name__], "Tuned", tuned, raising=False)
    assert type(pickle.loads(pickle.dumps(tuned()))) is tuned


def test_the_printed_code_holds_no_pickling_machinery():
    for spec in SPECS:
        code = generate_code(spec)
        assert "__reduce" not in code and "weights_only" not in code, spec_name(spec)
