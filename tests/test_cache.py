"""The API's code cache: a spec compiled again skips the front end, and is never served stale.

What is counted is calls of the front end's stages (`modelspec.pipeline.parse_partial`
and `elaborate`, spied on), not time: how much the cache saves is measured in
benchmarks/compile_time.py.
"""

from __future__ import annotations

import os
import threading

import pytest

from conftest import count_calls
from modelspec import Limits, SpecError, api, compile_spec, elaborate_spec, example_inputs, generate_code, pipeline
from modelspec.api import CodeCache, code_cache

SPEC = "model M(x: [B, 4]) { fc = Linear(_, 8)\n act = ReLU()\n out = Linear(_, 2) }"

MAIN = """\
from "blocks.nnspec" import Stage

model Net(x: [B, 4]) {
    stage = Stage(4)
    head = Linear(_, 2)
}
"""


def blocks(width: int) -> str:
    return f"block Stage(n) {{\n    fc = Linear(_, {width})\n    act = ReLU()\n}}\n"


@pytest.fixture
def calls(monkeypatch):
    """How often the front end parsed and elaborated a spec, counted from a cleared cache."""
    counts = {"parse": 0, "elaborate": 0}
    for name, stage in (("parse", "parse_partial"), ("elaborate", "elaborate")):  # parse_partial: parse, recovering
        real = getattr(pipeline, stage)

        def spy(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(pipeline, stage, spy)
    code_cache.clear()
    yield counts
    code_cache.clear()


def state_keys(model) -> list[str]:
    return list(model.state_dict())


def test_a_second_compile_skips_the_front_end(calls, torch):
    first = compile_spec(SPEC, seed=0)
    assert calls == {"parse": 1, "elaborate": 1}
    second = compile_spec(SPEC, seed=0)
    assert calls == {"parse": 1, "elaborate": 1}
    assert (code_cache.hits, code_cache.misses) == (1, 1)
    assert first is not second and type(first) is type(second)
    assert state_keys(first) == state_keys(second) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    x = example_inputs(SPEC, batch=3)[0]
    assert calls["parse"] == 1  # example_inputs is served from the same entry
    assert second(x).shape == (3, 2)
    torch.testing.assert_close(first(x), second(x))  # same seed, same weights


def test_a_path_is_cached_by_its_text(calls, tmp_path):
    spec = tmp_path / "m.nnspec"
    spec.write_text(SPEC)
    compile_spec(spec)
    compile_spec(str(spec))
    assert calls["parse"] == 1
    spec.write_text(SPEC.replace("Linear(_, 8)", "Linear(_, 16)"))
    assert compile_spec(spec).fc.out_features == 16
    assert calls["parse"] == 2


def test_the_printed_file_name_is_part_of_the_key(calls, tmp_path):
    (tmp_path / "a.nnspec").write_text(SPEC)
    (tmp_path / "b.nnspec").write_text(SPEC)
    assert "from a.nnspec" in generate_code(tmp_path / "a.nnspec")
    assert "from b.nnspec" in generate_code(tmp_path / "b.nnspec")
    assert calls["parse"] == 2


def test_changed_text_recompiles(calls):
    compile_spec(SPEC)
    changed = compile_spec(SPEC.replace("Linear(_, 2)", "Linear(_, 3)"))
    assert calls["parse"] == 2
    assert changed.out.out_features == 3
    assert compile_spec(SPEC).out.out_features == 2  # the first entry is still there
    assert calls["parse"] == 2


def test_changed_limits_recompile(calls):
    compile_spec(SPEC)
    compile_spec(SPEC, limits=Limits(max_params=10_000))
    assert calls["parse"] == 2
    with pytest.raises(SpecError, match="over the limit of 10"):  # a cached spec is still refused by lower limits
        compile_spec(SPEC, limits=Limits(max_params=10))
    compile_spec(SPEC, limits=Limits())  # the defaults, spelled out: the same entry as limits=None
    assert calls["parse"] == 3


def test_the_model_name_is_part_of_the_key(calls):
    two = SPEC + "\nmodel N(x: [B, 4]) { fc = Linear(_, 5) }"
    assert type(compile_spec(two, model="M")).__name__ == "M"
    assert type(compile_spec(two, model="N")).__name__ == "N"
    assert calls["parse"] == 2


def test_a_changed_imported_file_recompiles(calls, tmp_path):
    (tmp_path / "blocks.nnspec").write_text(blocks(8))
    main = tmp_path / "main.nnspec"
    main.write_text(MAIN)
    assert compile_spec(main).head.in_features == 8
    assert compile_spec(main).head.in_features == 8
    assert calls["parse"] == 1
    (tmp_path / "blocks.nnspec").write_text(blocks(6))
    model = compile_spec(main)
    assert calls["parse"] == 2
    assert model.stage.fc.out_features == 6 and model.head.in_features == 6
    assert state_keys(model) == ["stage.fc.weight", "stage.fc.bias", "head.weight", "head.bias"]
    compile_spec(main)
    assert calls["parse"] == 2


def test_a_file_imported_by_an_import_is_checked_too(calls, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "widths.nnspec").write_text("const W = 8\n")
    (tmp_path / "blocks.nnspec").write_text('from "lib/widths.nnspec" import W\n' + blocks(8).replace("8", "W"))
    main = tmp_path / "main.nnspec"
    main.write_text(MAIN)
    assert compile_spec(main).head.in_features == 8
    (tmp_path / "lib" / "widths.nnspec").write_text("const W = 12\n")
    assert compile_spec(main).head.in_features == 12
    assert calls["parse"] == 2


def test_a_removed_imported_file_is_an_error_not_a_stale_module(calls, tmp_path):
    (tmp_path / "blocks.nnspec").write_text(blocks(8))
    main = tmp_path / "main.nnspec"
    main.write_text(MAIN)
    compile_spec(main)
    (tmp_path / "blocks.nnspec").unlink()
    with pytest.raises(SpecError, match="no such file"):
        compile_spec(main)


def test_spec_text_imports_from_the_working_directory(calls, tmp_path, monkeypatch):
    for width, folder in ((8, "one"), (6, "two")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "blocks.nnspec").write_text(blocks(width))
    monkeypatch.chdir(tmp_path / "one")
    assert compile_spec(MAIN).head.in_features == 8
    monkeypatch.chdir(tmp_path / "two")
    assert compile_spec(MAIN).head.in_features == 6
    assert calls["parse"] == 2


def test_errors_are_not_cached(calls):
    bad = "model M(x: [B, 4]) { fc = Linear(_, 2)\n out = Conv2d(_, 3, 3) }"
    for _ in range(2):
        with pytest.raises(SpecError):
            compile_spec(bad)
    assert calls["parse"] == 2 and len(code_cache) == 0


def test_generate_code_is_served_and_explains_from_the_cache(calls):
    code = generate_code(SPEC)
    assert generate_code(SPEC) == code and calls["parse"] == 1
    explained = generate_code(SPEC, explain=True)
    assert calls["parse"] == 1
    assert explained != code and explained == generate_code(elaborate_spec(SPEC), explain=True)


def test_the_cached_graph_is_not_changed_by_its_users(calls):
    compile_spec(SPEC)
    (entry,) = code_cache._entries.values()
    before = repr(entry.graph)
    compile_spec(SPEC, dtype=None, seed=1)
    generate_code(SPEC, explain=True)
    example_inputs(SPEC, batch=5)
    assert repr(entry.graph) == before


def test_elaborate_spec_hands_out_a_graph_of_its_own(calls):
    compile_spec(SPEC)
    (entry,) = code_cache._entries.values()
    graph = elaborate_spec(SPEC)
    assert graph is not entry.graph and elaborate_spec(SPEC) is not graph


def test_the_cache_is_bounded_least_recently_used_first():
    cache = CodeCache(max_entries=2)
    specs = [SPEC.replace("Linear(_, 2)", f"Linear(_, {n})") for n in (2, 3, 4)]
    cache.compile(specs[0])
    cache.compile(specs[1])
    cache.compile(specs[0])  # now the most recently used
    cache.compile(specs[2])  # drops specs[1]
    assert len(cache) == 2 and (cache.hits, cache.misses) == (1, 3)
    cache.compile(specs[0])
    cache.compile(specs[1])
    assert (cache.hits, cache.misses) == (2, 4)


def test_the_cache_is_bounded_by_spec_text():
    cache = CodeCache(max_chars=2 * len(SPEC) + 3)
    big = SPEC + "\n" + "#" * (3 * len(SPEC))
    cache.compile(big)
    assert len(cache) == 0  # bigger than the whole cache: compiled, not kept
    cache.compile(SPEC)
    cache.compile(SPEC + " ")
    cache.compile(SPEC + "  ")  # three entries do not fit in the characters of two
    assert len(cache) == 2


def test_the_cache_is_shared_safely_between_threads(calls):
    specs = [SPEC.replace("Linear(_, 2)", f"Linear(_, {n})") for n in range(2, 6)]
    got, failed = {}, []

    def work(i):
        try:
            for _ in range(5):
                n = i % len(specs)
                got.setdefault(i, []).append(compile_spec(specs[n]).out.out_features == n + 2)
        except Exception as exc:  # reported below: an exception in a thread would not fail the test
            failed.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failed
    assert all(all(v) for v in got.values()) and len(got) == 8
    assert len(code_cache) == len(specs)
    assert code_cache.hits + code_cache.misses == 40 and code_cache.misses >= len(specs)


def test_the_key_holds_the_version(monkeypatch):
    key = CodeCache.key(SPEC, None, None, None)
    monkeypatch.setattr(api, "__version__", "0.0.0-other")
    assert CodeCache.key(SPEC, None, None, None) != key


@pytest.fixture
def reads(monkeypatch):
    """How often a call read its spec (`modelspec.api._read`), from a cleared cache."""
    count = count_calls(monkeypatch, api, "_read")
    code_cache.clear()
    yield count
    code_cache.clear()


def settle(monkeypatch):
    """Count every file as settled (see `modelspec.api.SETTLED_NS`), as files an hour old are."""
    monkeypatch.setattr(api, "SETTLED_NS", -3600 * 10**9)


def rewrite(path, text: str):
    """Write ``text`` to ``path`` a tick of the file system's clock after its last change (ext4's is ~4 ms)."""
    import time

    before = path.stat().st_mtime_ns
    while True:
        time.sleep(0.01)
        path.write_text(text)
        if path.stat().st_mtime_ns != before:
            return


def test_a_repeated_call_reads_no_file_once_its_files_are_settled(reads, monkeypatch, tmp_path):
    settle(monkeypatch)
    spec = tmp_path / "m.nnspec"
    spec.write_text(SPEC)
    for _ in range(3):
        assert compile_spec(spec).fc.out_features == 8
    assert reads[0] == 1 and code_cache.hits == 2
    rewrite(spec, SPEC.replace("Linear(_, 8)", "Linear(_, 9)"))  # the same size: its time tells
    assert compile_spec(spec).fc.out_features == 9 and reads[0] == 2
    other = tmp_path / "other.nnspec"
    other.write_text(SPEC.replace("Linear(_, 8)", "Linear(_, 7)"))
    os.replace(other, spec)  # another file under the same name: its inode tells
    assert compile_spec(spec).fc.out_features == 7 and reads[0] == 3
    assert compile_spec(spec).fc.out_features == 7 and reads[0] == 3


def test_a_settled_import_changed_is_noticed_without_a_read_of_the_spec(reads, calls, monkeypatch, tmp_path):
    settle(monkeypatch)
    (tmp_path / "blocks.nnspec").write_text(blocks(8))
    main = tmp_path / "main.nnspec"
    main.write_text(MAIN)
    assert compile_spec(main).head.in_features == 8
    assert compile_spec(main).head.in_features == 8 and reads[0] == 1
    rewrite(tmp_path / "blocks.nnspec", blocks(6))
    assert compile_spec(main).head.in_features == 6 and calls["parse"] == 2
    (tmp_path / "blocks.nnspec").unlink()
    with pytest.raises(SpecError, match="no such file"):
        compile_spec(main)


def test_files_changed_just_now_are_read_every_time(reads, tmp_path):
    """Within SETTLED_NS of a change a file's stat may not show the next change yet: such a file is read and
    hashed on every call, as the cache did before it kept stats."""
    spec = tmp_path / "m.nnspec"
    spec.write_text(SPEC)
    compile_spec(spec)
    compile_spec(spec)
    assert reads[0] == 2 and code_cache.hits == 1


def test_a_relative_path_is_a_call_of_its_working_directory(reads, monkeypatch, tmp_path):
    settle(monkeypatch)
    for width, folder in ((8, "one"), (6, "two")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.nnspec").write_text(SPEC.replace("Linear(_, 8)", f"Linear(_, {width})"))
    monkeypatch.chdir(tmp_path / "one")
    assert compile_spec("m.nnspec").fc.out_features == 8
    monkeypatch.chdir(tmp_path / "two")
    assert compile_spec("m.nnspec").fc.out_features == 6
    monkeypatch.chdir(tmp_path / "one")
    assert compile_spec("m.nnspec").fc.out_features == 8 and reads[0] == 2


def test_text_in_a_subclass_of_str_is_text(reads):
    class Text(str):
        pass

    assert compile_spec(Text(SPEC)).out.out_features == 2
    assert "nn.Linear(8, 2)" in generate_code(Text(SPEC))


def test_a_lowered_file_bound_is_not_skipped_by_a_repeated_call(reads, monkeypatch):
    settle(monkeypatch)
    compile_spec(SPEC)
    compile_spec(SPEC)
    monkeypatch.setattr(pipeline, "MAX_FILE_BYTES", 10)
    with pytest.raises(SpecError, match="over the limit"):
        compile_spec(SPEC)


def test_relative_import_roots_are_the_folders_they_name_now(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    here = api._limits_key(Limits(import_roots=("shared",)))
    monkeypatch.chdir(tmp_path / "b")
    assert api._limits_key(Limits(import_roots=("shared",))) != here
