"""The long fuzz run: many more cases than CI's, on every core; by hand, reported in the README.

    .venv/bin/python tests/fuzz_long.py                   # 200,000 cases, seeds 1000.., all cores
    .venv/bin/python tests/fuzz_long.py -n 50000 --seed 7 --jobs 2

Each worker checks its own seeds' cases (``tests/fuzzing.py``) in a folder of
its own. Every failure is written to ``fuzz-failures/`` (the case's bytes, and
what went wrong beside it) and summarised at the end; turn each into a case of
the error catalog (``tests/errors/``) once it is fixed. The exit status is 1
when anything failed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CHUNK = 2_000  # cases per task: one seed each


def work(task):
    import warnings

    warnings.filterwarnings("ignore")
    import fuzzing

    seed, n, base = task
    count, failures = fuzzing.run(seed, n, Path(base) / f"w{os.getpid()}")
    return seed, count, [(kind, data, problem) for kind, data, problem in failures]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200_000, help="cases in all (default 200,000)")
    ap.add_argument("--seed", type=int, default=1000, help="first seed; each chunk of 2,000 cases takes the next")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="fuzz-failures", help="folder for failing cases")
    args = ap.parse_args(argv)

    tasks = []
    base = tempfile.mkdtemp(prefix="modelspec-fuzz-")
    left, last = args.n, args.seed
    while left > 0:
        tasks.append((last, min(CHUNK, left), base))
        left -= CHUNK
        last += 1
    t0 = time.time()
    total, failed = 0, []
    with multiprocessing.Pool(args.jobs) as pool:
        for seed, count, failures in pool.imap_unordered(work, tasks):
            total += count
            failed += [(seed, *f) for f in failures]
            print(f"\r{total:,} cases, {len(failed)} failures, {time.time() - t0:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    out = Path(args.out)
    if failed:
        out.mkdir(exist_ok=True)
    kinds: dict[str, int] = {}
    for seed, kind, data, problem in failed:
        name = hashlib.sha1(data).hexdigest()[:12]
        (out / f"{name}.nnspec").write_bytes(data)
        (out / f"{name}.txt").write_text(f"seed {seed}, {kind}\n{problem}\n")
        key = problem.strip().splitlines()[-1][:120]
        kinds[key] = kinds.get(key, 0) + 1
    day = datetime.date.today().isoformat()
    print(f"{day}: {total:,} cases (seeds {args.seed}..{last - 1}) in {time.time() - t0:.0f} s on {args.jobs} "
          f"processes: {len(failed)} failures")
    for key, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6}  {key}")
    if failed:
        print(f"the failing cases are in {out}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
