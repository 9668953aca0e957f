"""compile_spec's disk cache (modelspec/diskcache.py): a new process builds a spec compiled before from its
code alone, never from a stale entry, and never from a folder or file that someone else could have written.

The suite runs with the cache off (tests/conftest.py); each test here turns it on in a folder of its own.
What is counted is the front end's work (`modelspec.pipeline.parse_partial`, spied on), not time: how much
the cache saves is measured in benchmarks/ (the "first compile" table).
"""

from __future__ import annotations

import json
import os
import warnings
import stat
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS, count_calls, spec_ids
from modelspec import SpecError, api, compile_spec, diskcache, elaborate_spec, generate_code, pipeline
from modelspec.api import code_cache

SPEC = "model M(x: [B, 4]) { fc = Linear(_, 8)\n act = ReLU()\n out = Linear(_, 2) }\n"
MAIN = 'from "blocks.nnspec" import Stage\n\nmodel Net(x: [B, 4]) {\n    stage = Stage(4)\n    head = Linear(_, 2)\n}\n'


def blocks(width: int) -> str:
    return f"block Stage(n) {{\n    fc = Linear(_, {width})\n    act = ReLU()\n}}\n"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """The disk cache on, in tmp_path/cache; the in-memory cache cleared before and after."""
    where = tmp_path / "cache"
    monkeypatch.delenv("MODELSPEC_NO_CACHE", raising=False)
    monkeypatch.setenv("MODELSPEC_CACHE_DIR", str(where))
    code_cache.clear()
    yield where
    code_cache.clear()


@pytest.fixture
def parses(monkeypatch):
    """How often the front end parsed a spec."""
    return count_calls(monkeypatch, pipeline, "parse_partial")


def entries(where) -> list[str]:
    return sorted(n for n in os.listdir(where) if n.endswith(".json")) if where.exists() else []


def new_process():
    """What a new process meets: nothing in memory, the disk as it is."""
    code_cache.clear()


def test_a_new_process_builds_from_the_code_on_disk(cache_dir, parses, tmp_path, torch):
    spec = tmp_path / "m.nnspec"
    spec.write_text(SPEC)
    first = compile_spec(spec, seed=0)
    assert parses[0] == 1 and len(entries(cache_dir)) == 1
    new_process()
    again = compile_spec(spec, seed=0)
    assert parses[0] == 1  # no parse: the code came from disk
    assert list(again.state_dict()) == list(first.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(again(x), first(x))
    (entry,) = code_cache._entries.values()
    assert entry.graph is None and entry.code == generate_code(spec)  # the very code the spec prints


def test_the_folder_and_entries_are_private(cache_dir, tmp_path):
    compile_spec(SPEC)
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    (name,) = entries(cache_dir)
    assert stat.S_IMODE(os.stat(cache_dir / name).st_mode) == 0o600
    assert os.stat(cache_dir / name).st_uid == os.getuid()
    saved = json.loads((cache_dir / name).read_text())
    assert saved["key"] == name.removesuffix(".json") and "class M(nn.Sequential)" in saved["code"]


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_every_bundled_spec_builds_the_same_from_disk(cache_dir, parses, spec, torch):
    """The module from disk has the same state_dict and weights as one compiled afresh, and its spec's
    warnings are issued again, the same; a model with plain tensors still refuses a move to another dtype."""
    graph = elaborate_spec(spec)
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        fresh = compile_spec(spec, seed=0)
    assert len(entries(cache_dir)) == 1
    new_process()
    parsed = parses[0]
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        again = compile_spec(spec, seed=0)
    assert parses[0] == parsed  # no parse: the code, and the warnings, came from disk
    assert [str(w.message) for w in after] == [str(w.message) for w in before]
    assert len(after) == len(graph.warnings)
    assert {k: tuple(v.shape) for k, v in again.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    for a, b in zip(again.state_dict().values(), fresh.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b)  # same seed, same code: the same weights
    if graph.unregistered:
        with pytest.raises(SpecError, match="plain tensor that model.to"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile_spec(spec, dtype=torch.float64)


def test_a_changed_import_is_never_served_stale(cache_dir, parses, tmp_path):
    (tmp_path / "blocks.nnspec").write_text(blocks(8))
    main = tmp_path / "main.nnspec"
    main.write_text(MAIN)
    assert compile_spec(main).head.in_features == 8
    new_process()
    assert compile_spec(main).head.in_features == 8 and parses[0] == 1
    (tmp_path / "blocks.nnspec").write_text(blocks(6))  # the spec's own bytes, and so its key, are the same
    new_process()
    assert compile_spec(main).head.in_features == 6 and parses[0] == 2
    (tmp_path / "blocks.nnspec").unlink()
    new_process()
    with pytest.raises(SpecError, match="no such file"):
        compile_spec(main)


def test_a_changed_spec_is_another_entry(cache_dir, parses):
    compile_spec(SPEC)
    new_process()
    assert compile_spec(SPEC.replace("Linear(_, 2)", "Linear(_, 3)")).out.out_features == 3
    assert parses[0] == 2 and len(entries(cache_dir)) == 2


@pytest.mark.parametrize("change", ["version", "own sources", "model", "limits", "path"])
def test_the_key_holds_what_the_code_depends_on(change, monkeypatch):
    from modelspec import Limits

    args = dict(data=SPEC.encode(), path="/a/m.nnspec", where="/a", model=None, limits=None)
    key = diskcache.key(**args)
    if change == "version":
        monkeypatch.setattr(diskcache, "__version__", "0.0.0-other")
    elif change == "own sources":  # an edited checkout of modelspec: same version, other code
        monkeypatch.setattr(diskcache, "_own_sources", lambda: (("codegen.py", 1, 2),))
    elif change == "model":
        args["model"] = "N"
    elif change == "limits":
        args["limits"] = tuple(vars(Limits(max_params=10)).values())
    else:
        args["path"], args["where"] = "/b/m.nnspec", "/b"
    assert diskcache.key(**args) != key


def test_off_with_MODELSPEC_NO_CACHE(cache_dir, monkeypatch):
    monkeypatch.setenv("MODELSPEC_NO_CACHE", "1")
    compile_spec(SPEC)
    assert not cache_dir.exists()


def test_the_default_folder_follows_XDG(monkeypatch, tmp_path):
    monkeypatch.delenv("MODELSPEC_NO_CACHE", raising=False)
    monkeypatch.delenv("MODELSPEC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert diskcache.directory() == str(tmp_path / "modelspec" / "compiled")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert diskcache.directory() == os.path.join(os.path.expanduser("~"), ".cache", "modelspec", "compiled")


def poison(cache_dir) -> str:
    """Put code into the one entry on disk that would show if it ran: its model then has a `poisoned` layer."""
    (name,) = entries(cache_dir)
    path = cache_dir / name
    saved = json.loads(path.read_text())
    saved["code"] = saved["code"].replace("super().__init__()", "super().__init__()\n        self.poisoned = nn.ReLU()")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, 0o600)
    path.write_text(json.dumps(saved))
    os.chmod(path, mode)
    return name


def test_the_entry_is_what_is_run(cache_dir):
    """The control for the tests below: a poisoned entry in a private folder is run (it is the user's own)."""
    compile_spec(SPEC)
    poison(cache_dir)
    new_process()
    assert hasattr(compile_spec(SPEC), "poisoned")


@pytest.mark.parametrize("how", ["folder open to the group", "folder open to others", "entry writable by others",
                                 "folder a symlink", "entry a symlink"])
def test_an_entry_others_could_write_is_never_used(cache_dir, parses, how, tmp_path):
    compile_spec(SPEC)
    name = poison(cache_dir)
    if how == "folder open to the group":
        os.chmod(cache_dir, 0o770)
    elif how == "folder open to others":
        os.chmod(cache_dir, 0o705)
    elif how == "entry writable by others":
        os.chmod(cache_dir / name, 0o622)
    elif how == "folder a symlink":
        os.rename(cache_dir, tmp_path / "real")
        os.symlink(tmp_path / "real", cache_dir)
    else:
        os.rename(cache_dir / name, cache_dir / "elsewhere")
        os.symlink(cache_dir / "elsewhere", cache_dir / name)
    new_process()
    model = compile_spec(SPEC)
    assert not hasattr(model, "poisoned") and parses[0] == 2  # compiled as if there were no cache


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root, to give files away")
@pytest.mark.parametrize("what", ["folder", "entry"])
def test_a_folder_or_entry_of_another_user_is_never_used(cache_dir, parses, what):
    compile_spec(SPEC)
    name = poison(cache_dir)
    os.chown(cache_dir if what == "folder" else cache_dir / name, 12345, 12345)
    new_process()
    assert not hasattr(compile_spec(SPEC), "poisoned") and parses[0] == 2


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"format": 1}', "\xff"])
def test_a_damaged_entry_is_passed_by(cache_dir, parses, garbage):
    compile_spec(SPEC)
    (name,) = entries(cache_dir)
    (cache_dir / name).write_bytes(garbage.encode("latin-1"))
    new_process()
    assert compile_spec(SPEC).out.out_features == 2 and parses[0] == 2


def test_an_unusable_folder_is_passed_by(tmp_path, monkeypatch, parses):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("MODELSPEC_NO_CACHE", raising=False)
    monkeypatch.setenv("MODELSPEC_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be made
    code_cache.clear()
    try:
        assert compile_spec(SPEC).out.out_features == 2
    finally:
        code_cache.clear()


def test_the_cache_is_bounded(cache_dir, monkeypatch):
    monkeypatch.setattr(diskcache, "MAX_ENTRIES", 4)
    for n in range(2, 8):
        compile_spec(SPEC.replace("Linear(_, 2)", f"Linear(_, {n})"))
    assert 3 <= len(entries(cache_dir)) <= 4


def test_a_fresh_process_loads_no_front_end(tmp_path):
    """In a new process, a spec compiled before is built without importing lark, from code that the cache
    checked; the first process, which compiled it, parsed it (and neither needs pydantic)."""
    env = dict(os.environ, MODELSPEC_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    env.pop("MODELSPEC_NO_CACHE", None)
    script = ("import sys, modelspec; m = modelspec.compile_spec(sys.argv[1], seed=0); "
              "print(sum(p.numel() for p in m.parameters()), 'lark' in sys.modules, 'pydantic' in sys.modules)")
    spec = str(ROOT / "specs" / "resnet18.nnspec")
    runs = [subprocess.run([sys.executable, "-c", script, spec], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stdout.split() == ["11689512", "True", "False"]
    assert runs[1].stdout.split() == ["11689512", "False", "False"]


def test_api_module_imports_no_front_end():
    """`modelspec.api` itself imports only the standard library and the light modules its cache needs."""
    code = "import sys, modelspec.api; print(sorted(m for m in ('lark', 'pydantic', 'torch') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_api_keeps_entries_in_memory_too(cache_dir):
    assert api.code_cache is code_cache
    compile_spec(SPEC)
    compile_spec(SPEC)
    assert code_cache.hits == 1


def test_the_key_follows_every_file_of_modelspec():
    """The layer catalog and the grammar decide the code as much as codegen does: an edit of any is a new key."""
    names = {name for name, _, _ in diskcache._own_sources()}
    assert {"codegen.py", os.path.join("layers", "linear.py"), "nnspec.lark"} <= names


def test_torch_s_version_is_read_without_importing_torch():
    code = ("import sys; from modelspec import diskcache; v = diskcache._torch_version(); "
            "print(v, 'torch' in sys.modules); import torch; print(torch.__version__)")
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.split("\n")[:2]
    assert first.split() == [second, "False"]


def test_a_spec_reading_data_files_is_not_kept(cache_dir, tmp_path):
    """Elaboration checks a train section's data files (there, with their columns); an entry served from disk
    would skip that, so such a spec is compiled every time."""
    (tmp_path / "points.csv").write_text("x,y\n1,2\n3,4\n")
    spec = tmp_path / "m.nnspec"
    spec.write_text('model M(x: [B, 1]) { fc = Linear(_, 1) }\n'
                    'train M {\n    loss = MSELoss()\n    optimizer = SGD(lr=0.1)\n    target y: [B, 1]\n'
                    '    data = load("points.csv", x=["x"], y=["y"])\n}\n')
    compile_spec(spec)
    assert entries(cache_dir) == []
    (tmp_path / "points.csv").unlink()
    new_process()
    with pytest.raises(SpecError, match="no data file"):
        compile_spec(spec)


def test_pruning_touches_only_the_cache_s_own_files(cache_dir, monkeypatch):
    monkeypatch.setattr(diskcache, "MAX_ENTRIES", 1)
    compile_spec(SPEC)
    (cache_dir / "notes.json").write_text("{}")
    for n in range(3, 6):
        compile_spec(SPEC.replace("Linear(_, 2)", f"Linear(_, {n})"))
    assert (cache_dir / "notes.json").exists() and len(entries(cache_dir)) <= 2
