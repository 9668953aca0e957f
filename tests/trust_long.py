"""The long trust run: many more valid, nasty specs than CI's, on every core; by hand.

    .venv/bin/python tests/trust_long.py --cases 200000 --jobs 2 --seed 1000000
    .venv/bin/python tests/trust_long.py --cases 1 --seed 20417          # one case, printed in full
    .venv/bin/python tests/trust_long.py --cases 3000 --shrink            # and a small spec per failure family
    .venv/bin/python tests/trust_long.py --budget --cases 20000 --jobs 1  # the budget generator instead

Each worker checks its share of the seeds (``tests/validgen.py``: generate,
then ``check_case``). Every failure is written to ``fuzz-failures/`` as
``trust-<seed>.nnspec`` with ``trust-<seed>.txt`` (its message) beside it;
``--shrink`` also writes ``trust-family-<n>.nnspec``, the first failure of
each family made small by ``validgen.shrink``. Progress goes to stderr; the
last line gives the counts. The exit status is 1 when anything failed.

``--budget`` checks the specs of ``tests/budgetgen.py`` instead: small specs
that ask for work near and past the budgets (nested blocks, broadcasts and
cats over symbols, unrolled depth), each of which `check` must accept within
the limits or refuse with a located error, within its time and memory
bounds; no torch module is built. Its failures are ``budget-<seed>.*``, and
the last lines give the outcomes of each of its families. ``--minutes M``
(either mode) stops after about M minutes and reports what was checked;
``--budget --quick`` draws CI's quick cases (no work in the slow middle).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import multiprocessing
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CHUNK = 500  # seeds per task
BUDGET_CHUNK = 20  # budget cases take up to seconds each: smaller tasks, for progress and --minutes


def generator(budget: bool):
    """The generator module and the failure its oracle raises: validgen's trust cases, or budgetgen's."""
    if budget:
        import budgetgen

        return budgetgen, budgetgen.BudgetFailure
    import validgen

    return validgen, validgen.TrustFailure


def _init(mem_gb: float = 0, budget: bool = False):
    import warnings

    warnings.filterwarnings("ignore")
    if mem_gb:  # an unbounded allocation fails as a case (torch raises) instead of taking the machine down
        try:
            import resource

            cap = int(mem_gb * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        except (ImportError, ValueError, OSError):
            pass
    if budget:  # the front end only: torch is never imported, as `modelspec check` never imports it
        return
    import torch

    torch.set_num_threads(1)


def work(task):
    first, n, *mode = task
    budget = bool(mode) and mode[0].startswith("budget")
    quick = mode == ["budget-quick"]
    gen, failure = generator(budget)
    acc = rej = 0
    failures = []
    outcomes = collections.Counter()  # budget mode: (family, outcome) -> cases
    for seed in range(first, first + n):
        text = gen.case_text(seed, quick) if budget else gen.case_text(seed)
        try:
            r = gen.check_case(text)
        except failure as f:
            failures.append((seed, f.family, str(f)))
            if budget:
                outcomes[(gen.family_tag(text), "failed")] += 1
            continue
        if budget:
            outcomes[(gen.family_tag(text), r)] += 1
        if r == "accepted":
            acc += 1
        else:
            rej += 1
    return first, n, acc, rej, failures, outcomes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", "-n", type=int, default=200_000, help="cases in all (default 200,000)")
    ap.add_argument("--seed", type=int, default=1_000_000, help="first seed (default 1,000,000; CI uses 20,000..)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="fuzz-failures", help="folder for failing cases (default fuzz-failures)")
    ap.add_argument("--shrink", action="store_true", help="write a shrunk spec for each failure family")
    ap.add_argument("--mem-gb", type=float, default=4.0, help="address-space cap per worker (default 4 GB; 0: none)")
    ap.add_argument("--budget", action="store_true",
                    help="check tests/budgetgen.py's specs (work near and past the budgets) instead of validgen's")
    ap.add_argument("--quick", action="store_true",
                    help="with --budget: CI's quick cases (budgetgen.Amount: no work in the slow middle)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="stop after about this many minutes, reporting the cases checked by then")
    args = ap.parse_args(argv)
    gen, failure = generator(args.budget)
    prefix = "budget" if args.budget else "trust"

    if args.cases == 1:  # one case in full: its spec and what happens to it
        _init(budget=args.budget)
        text = gen.case_text(args.seed, args.quick) if args.budget else gen.case_text(args.seed)
        print(text)
        try:
            print(gen.check_case(text))
        except failure as f:
            print(f"FAILED {f.family}\n{f.detail}")
            return 1
        return 0

    tasks = []
    left, nxt = args.cases, args.seed
    chunk = BUDGET_CHUNK if args.budget else CHUNK
    mode = "budget-quick" if args.quick else "budget"
    while left > 0:
        tasks.append((nxt, min(chunk, left)) + ((mode,) if args.budget else ()))
        nxt += tasks[-1][1]
        left -= tasks[-1][1]
    t0 = time.time()
    total = acc = rej = 0
    failed = []
    done = []  # (first seed, count) of the tasks finished
    outcomes = collections.Counter()
    out = Path(args.out)
    pool = multiprocessing.Pool(args.jobs, initializer=_init, initargs=(args.mem_gb, args.budget),
                                maxtasksperchild=20)
    try:
        for first, n, a, r, failures, counts in pool.imap_unordered(work, tasks):
            total, acc, rej = total + n, acc + a, rej + r
            done.append((first, n))
            outcomes.update(counts)
            for seed, family, message in failures:
                out.mkdir(exist_ok=True)
                text = message.split("\n--- spec ---\n", 1)[-1]
                (out / f"{prefix}-{seed}.nnspec").write_text(text)
                (out / f"{prefix}-{seed}.txt").write_text(f"seed {seed}\n{family}\n\n{message}\n")
                failed.append((seed, family, text))
            rate = total / max(time.time() - t0, 1e-9)
            print(f"\r{total:,}/{args.cases:,} cases, {len(failed)} failures, {time.time() - t0:.0f} s "
                  f"({rate:.{1 if args.budget else 0}f}/s)", end="", file=sys.stderr, flush=True)
            if args.minutes is not None and time.time() - t0 > args.minutes * 60:
                break
    finally:
        pool.terminate()  # after --minutes, the tasks under way are dropped; otherwise all are done
        pool.join()
    print(file=sys.stderr)
    took = time.time() - t0
    families = collections.Counter(f for _, f, _ in failed)
    if failed:
        print("failure families:")
        for fam, n in families.most_common():
            first = min(s for s, f, _ in failed if f == fam)
            print(f"  {n:6}  {fam}   (first: seed {first})")
        print(f"the failing cases are in {out}/ ({prefix}-<seed>.nnspec, {prefix}-<seed>.txt)")
    if failed and args.shrink:
        _init(budget=args.budget)
        for k, (fam, n) in enumerate(families.most_common(), 1):
            seed, _, text = min((x for x in failed if x[1] == fam), key=lambda x: len(x[2]))
            small = gen.shrink(text, gen.same_family(fam))
            (out / f"{prefix}-family-{k}.nnspec").write_text(f"# {fam}\n# {n} cases; shrunk from seed {seed}\n{small}")
            print(f"  family {k} ({n}): {fam}\n" + "\n".join("      " + ln for ln in small.splitlines()))
    if args.budget:
        print(gen.distribution(outcomes))
    day = datetime.date.today().isoformat()
    print(f"{day}: {total:,} cases ({_seeds(done)}) in {took:.0f} s on {args.jobs} "
          f"processes: {acc:,} accepted, {rej:,} rejected, {len(failed):,} failures")
    return 1 if failed else 0


def _seeds(done: list[tuple[int, int]]) -> str:
    """The seeds checked, as one range when they are (the whole run, or a prefix of it stopped by --minutes)."""
    if not done:
        return "no seeds"
    done = sorted(done)
    if all(a + n == b for (a, n), (b, _) in zip(done, done[1:])):
        return f"seeds {done[0][0]}..{done[-1][0] + done[-1][1] - 1}"
    return f"{len(done)} chunks of seeds from {done[0][0]} to {done[-1][0] + done[-1][1] - 1}"


if __name__ == "__main__":
    sys.exit(main())
