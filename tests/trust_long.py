"""The long trust run: many more valid, nasty specs than CI's, on every core; by hand.

    .venv/bin/python tests/trust_long.py --cases 200000 --jobs 2 --seed 1000000
    .venv/bin/python tests/trust_long.py --cases 1 --seed 20417          # one case, printed in full
    .venv/bin/python tests/trust_long.py --cases 3000 --shrink            # and a small spec per failure family

Each worker checks its share of the seeds (``tests/validgen.py``: generate,
then ``check_case``). Every failure is written to ``fuzz-failures/`` as
``trust-<seed>.nnspec`` with ``trust-<seed>.txt`` (its message) beside it;
``--shrink`` also writes ``trust-family-<n>.nnspec``, the first failure of
each family made small by ``validgen.shrink``. Progress goes to stderr; the
last line gives the counts. The exit status is 1 when anything failed.
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


def _init(mem_gb: float = 0):
    import warnings

    warnings.filterwarnings("ignore")
    if mem_gb:  # an unbounded allocation fails as a case (torch raises) instead of taking the machine down
        try:
            import resource

            cap = int(mem_gb * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        except (ImportError, ValueError, OSError):
            pass
    import torch

    torch.set_num_threads(1)


def work(task):
    import validgen

    first, n = task
    acc = rej = 0
    failures = []
    for seed in range(first, first + n):
        text = validgen.case_text(seed)
        try:
            r = validgen.check_case(text)
        except validgen.TrustFailure as f:
            failures.append((seed, f.family, str(f)))
            continue
        if r == "accepted":
            acc += 1
        else:
            rej += 1
    return n, acc, rej, failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", "-n", type=int, default=200_000, help="cases in all (default 200,000)")
    ap.add_argument("--seed", type=int, default=1_000_000, help="first seed (default 1,000,000; CI uses 20,000..)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="fuzz-failures", help="folder for failing cases (default fuzz-failures)")
    ap.add_argument("--shrink", action="store_true", help="write a shrunk spec for each failure family")
    ap.add_argument("--mem-gb", type=float, default=4.0, help="address-space cap per worker (default 4 GB; 0: none)")
    args = ap.parse_args(argv)

    if args.cases == 1:  # one case in full: its spec and what happens to it
        import validgen

        _init()
        text = validgen.case_text(args.seed)
        print(text)
        try:
            print(validgen.check_case(text))
        except validgen.TrustFailure as f:
            print(f"FAILED {f.family}\n{f.detail}")
            return 1
        return 0

    tasks = []
    left, nxt = args.cases, args.seed
    while left > 0:
        tasks.append((nxt, min(CHUNK, left)))
        nxt += tasks[-1][1]
        left -= tasks[-1][1]
    t0 = time.time()
    total = acc = rej = 0
    failed = []
    out = Path(args.out)
    with multiprocessing.Pool(args.jobs, initializer=_init, initargs=(args.mem_gb,), maxtasksperchild=20) as pool:
        for n, a, r, failures in pool.imap_unordered(work, tasks):
            total, acc, rej = total + n, acc + a, rej + r
            for seed, family, message in failures:
                out.mkdir(exist_ok=True)
                text = message.split("\n--- spec ---\n", 1)[-1]
                (out / f"trust-{seed}.nnspec").write_text(text)
                (out / f"trust-{seed}.txt").write_text(f"seed {seed}\n{family}\n\n{message}\n")
                failed.append((seed, family, text))
            rate = total / max(time.time() - t0, 1e-9)
            print(f"\r{total:,}/{args.cases:,} cases, {len(failed)} failures, {time.time() - t0:.0f} s "
                  f"({rate:.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    took = time.time() - t0
    families = collections.Counter(f for _, f, _ in failed)
    if failed:
        print("failure families:")
        for fam, n in families.most_common():
            first = min(s for s, f, _ in failed if f == fam)
            print(f"  {n:6}  {fam}   (first: seed {first})")
        print(f"the failing cases are in {out}/ (trust-<seed>.nnspec, trust-<seed>.txt)")
    if failed and args.shrink:
        import validgen

        _init()
        for k, (fam, n) in enumerate(families.most_common(), 1):
            seed, _, text = min((x for x in failed if x[1] == fam), key=lambda x: len(x[2]))
            small = validgen.shrink(text, validgen.same_family(fam))
            (out / f"trust-family-{k}.nnspec").write_text(f"# {fam}\n# {n} cases; shrunk from seed {seed}\n{small}")
            print(f"  family {k} ({n}): {fam}\n" + "\n".join("      " + ln for ln in small.splitlines()))
    day = datetime.date.today().isoformat()
    print(f"{day}: {total:,} cases (seeds {args.seed}..{args.seed + total - 1}) in {took:.0f} s on {args.jobs} "
          f"processes: {acc:,} accepted, {rej:,} rejected, {len(failed):,} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
