"""Compiling from many threads at once: one module and one class object per spec class, whatever the timing.

Eight threads start together behind a barrier, ten times over, each time with
the spec's module forgotten (and the code cache cleared) so that every trial
loads it afresh. Plain threads meet in the critical section only now and then,
so most tests also slow down the step inside it (`build._execute`, or seeding):
without the locks in `modelspec.build`, every thread would then be inside at
once, and the tests would fail in every trial, not one in a few.
"""

from __future__ import annotations

import copy
import linecache
import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelspec import api, build, compile_spec

# Two classes, so that identity is asked of a block's class as well as the model's. The model's name is
# used by no other test: `forget` drops its modules from sys.modules between trials.
SPEC = ("block B(n) { fc = Linear(_, n)  forward(x) { return fc(x) } }\n"
        "model ThreadsNet(x: [N, 4]) { b = B(3)  forward(x) { return b(x) } }")
THREADS = 8
TRIALS = 10
PAUSE = 0.02  # long enough for every other thread to reach the same step while one sleeps in it


def forget():
    """Drop the spec's registered modules and cached code, so that the next compile loads it afresh."""
    api.code_cache.clear()
    for name in [n for n in sys.modules if n.startswith("modelspec_generated_ThreadsNet_")]:
        linecache.cache.pop(sys.modules.pop(name).__file__, None)


def at_once(fn):
    """``fn()`` in `THREADS` threads released together; their results, or the first exception raised."""
    barrier = threading.Barrier(THREADS, timeout=60)

    def task():
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(task) for _ in range(THREADS)]
        return [f.result() for f in futures]


def slowed(monkeypatch, owner, name):
    """Make ``owner.name`` sleep before it runs, for the rest of the test."""
    real = getattr(owner, name)

    def slow(*args, **kwargs):
        time.sleep(PAUSE)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)


@pytest.fixture
def fresh():
    forget()
    yield
    forget()


@pytest.mark.parametrize("slow", [True, False], ids=["slowed", "plain"])
def test_threads_loading_the_same_code_get_one_module(slow, fresh, monkeypatch):
    code, graph = api.code_cache.compile(SPEC)
    if slow:
        slowed(monkeypatch, build, "_execute")
    for _ in range(TRIALS):
        forget()
        modules = at_once(lambda: build.load_source(code, graph))
        first = modules[0]
        assert len({id(m) for m in modules}) == 1, f"{len({id(m) for m in modules})} modules of one code"
        assert sys.modules[first.__name__] is first  # the module every thread got is the one pickle looks in


def test_threads_compiling_the_same_spec_get_one_class_and_models_that_pickle(fresh, monkeypatch, torch):
    slowed(monkeypatch, build, "_execute")
    x = torch.randn(2, 4)
    for _ in range(TRIALS):
        forget()  # every thread misses the cache, elaborates and loads the code itself
        models = at_once(lambda: compile_spec(SPEC, seed=0))
        first = models[0]
        classes = {(type(m), type(m.b)) for m in models}
        assert len(classes) == 1, f"{len(classes)} pairs of classes from one spec"
        assert type(first).__module__ == type(first.b).__module__
        assert sys.modules[type(first).__module__].ThreadsNet is type(first)
        for model in models:
            expected = model(x)
            for copied in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
                assert type(copied) is type(first) and type(copied.b) is type(first.b)
                state, copied_state = model.state_dict(), copied.state_dict()
                assert list(state) == list(copied_state)
                assert all(torch.equal(state[k], copied_state[k]) for k in state)
                assert torch.equal(copied(x), expected)


def test_threads_compiling_with_one_seed_get_the_same_weights(fresh, monkeypatch, torch):
    expected = compile_spec(SPEC, seed=0).state_dict()
    slowed(monkeypatch, torch, "manual_seed")  # every thread seeds before any draws, were builds not serialized
    for _ in range(TRIALS):
        for model in at_once(lambda: compile_spec(SPEC, seed=0)):
            state = model.state_dict()
            assert all(torch.equal(state[k], expected[k]) for k in expected), "seed 0 gave other weights"
