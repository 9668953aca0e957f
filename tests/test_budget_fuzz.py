"""Budgets you can trust: small specs that ask for too much work, or nearly, are accepted or refused, in bounds.

``tests/budgetgen.py`` writes specs of three families (nested blocks;
broadcasts and cats over symbols; unrolled depth), each asking for an amount
of work drawn around the limits of `modelspec.Limits`. For each, `check`
(``elaborate_spec``) must accept it within the limits or refuse it with a
located `SpecError` (a budget's refusal a `SpecLimitError`), never raise
anything else, finish within 20 s and keep its peak Python memory
(tracemalloc) at or under 100 MB: ``budgetgen.check_case`` says which promise
a case broke. No torch module is built: ``tests/test_trust.py`` holds what
is accepted to torch.

CI checks the quick cases of fixed seeds (``budgetgen.Amount``: no work in
the slow middle, where a check of thousands of modules takes seconds, and
several times that under tracemalloc); ``MODELSPEC_BUDGET_CASES`` changes how
many, ``MODELSPEC_BUDGET_SEED`` the first seed. A failure lists the first
failing seeds; ``budgetgen.case_text(seed, quick=True)`` gives the spec. The
long run, with the middle too, is ``python tests/trust_long.py --budget``.
There is no timing assertion: the watchdog's 20 s is a bound on "did not
finish", not a measurement.
"""

from __future__ import annotations

import collections
import os
import time

import pytest

import budgetgen
from conftest import fail_with_cases

CASES = int(os.environ.get("MODELSPEC_BUDGET_CASES", "200"))
FIRST_SEED = int(os.environ.get("MODELSPEC_BUDGET_SEED", "50000"))
SHOWN = 5  # failures shown in full


def test_generated_specs_stay_in_budget():
    seeds = range(FIRST_SEED, FIRST_SEED + CASES)
    t0 = time.perf_counter()
    outcomes, failures = budgetgen.run_seeds(seeds, quick=True)
    took = time.perf_counter() - t0
    report = (f"{CASES:,} cases (seeds {FIRST_SEED}..{FIRST_SEED + CASES - 1}, quick) in {took:.0f} s, "
              f"{len(failures):,} broke a promise; by family:\n{budgetgen.distribution(outcomes)}")
    print(report)
    if failures:
        fail_with_cases(report, failures, "budgetgen.case_text(seed, quick=True)", SHOWN, width=3000)
    # the generator must stay meaningful: each family meets both sides of the budgets
    by = collections.Counter()
    for (fam, outcome), n in outcomes.items():
        by[fam, "accepted" if outcome == "accepted" else
                "budget" if outcome == "refused:SpecLimitError" else "other"] += n
    for fam in budgetgen.FAMILIES:
        assert by[fam, "accepted"] >= CASES // 30, f"{fam}: too few accepted\n{report}"
        assert by[fam, "budget"] >= CASES // 60, f"{fam}: too few refused for a budget\n{report}"
    assert sum(by[f, "budget"] for f in budgetgen.FAMILIES) >= CASES // 10, report


def test_generator_is_deterministic_and_small():
    for seed in (0, 1, 12345):
        for quick in (False, True):
            assert budgetgen.case_text(seed, quick) == budgetgen.case_text(seed, quick)
    texts = [budgetgen.case_text(s, quick=True) for s in range(300)]
    assert len(set(texts)) == 300
    assert {budgetgen.family_tag(t) for t in texts} == set(budgetgen.FAMILIES)
    assert max(map(len, texts)) < 3000  # small specs: the work they ask for is out of proportion to their size


def test_the_oracle_accepts_and_refuses():
    assert budgetgen.check_case("model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n}\n") == "accepted"
    assert budgetgen.check_case("model M(x: [B, 4]) {\n    fc = Linear(5, 2)\n}\n") == "refused:SpecShapeError"
    assert budgetgen.check_case("model M(x: [B, 4]) {\n    fc = Linear(_, 10 ** 12)\n}\n") == "refused:SpecLimitError"
    assert budgetgen.check_case("model M(x: [B, T=2147483647]) {\n    forward(x) { return x * 2.0 }\n}\n") \
        == "refused:SpecLimitError"


LONG = "model M(x: [B, 8]) {\n    s = Sequential(*[Linear(8, 8) for _ in range(4000)])\n}\n"  # ~0.5 s to check


def test_the_oracle_stops_what_runs_too_long_or_too_large():
    """The watchdog stops a check where it passes its bound (tiny ones here), as a failure of its own kind."""
    with pytest.raises(budgetgen.BudgetFailure) as exc:
        budgetgen.check_case(LONG, timeout=0.05)
    assert exc.value.stage == "did-not-finish"
    with pytest.raises(budgetgen.BudgetFailure) as exc:
        budgetgen.check_case(LONG, bound=2_000_000)
    assert exc.value.stage == "memory"
    assert exc.value.family.startswith("other: memory: ")
    assert exc.value.__context__ is None  # what the stopped check built is not kept alive by the failure


@pytest.mark.parametrize("raised, stage", [
    (ValueError("boom"), "crash"),
    (RecursionError(), "crash"),
    ("no hint", "refused-unlocated"),
    ("no line", "refused-unlocated"),
    ("misfiled limit", "refused-budget-class"),
])
def test_the_oracle_catches_a_broken_promise(monkeypatch, raised, stage):
    import modelspec
    from modelspec.errors import SpecArgError, Span

    at = Span(line=1, column=1, end_line=1, end_column=2)
    if raised == "no hint":
        raised = SpecArgError("wrong", at)
    elif raised == "no line":
        raised = SpecArgError("wrong", None, hint="fix it")
    elif raised == "misfiled limit":
        raised = SpecArgError("the model would have more than 100,000 modules", at, hint="fewer")

    def elaborate_spec(text, **kw):
        raise raised

    monkeypatch.setattr(modelspec, "elaborate_spec", elaborate_spec)
    with pytest.raises(budgetgen.BudgetFailure) as exc:
        budgetgen.check_case("# budgetgen: nested\nmodel M(x: [B, 4]) { }\n")
    assert exc.value.stage == stage
    assert exc.value.family.startswith(f"nested: {stage}: ")
    assert "model M" in str(exc.value)
