import difflib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the bundled specs: specs/*.nnspec, then one spec per topic of the tutorials, specs/tutorials/*.nnspec
SPECS = sorted((ROOT / "specs").glob("*.nnspec")) + sorted((ROOT / "specs" / "tutorials").glob("*.nnspec"))
BLESS = os.environ.get("MODELSPEC_BLESS") == "1"
# compile_spec's disk cache off: a spec compiled by one test would be served to the next, and the tests that
# count the front end's work would count nothing; tests/test_disk_cache.py turns it on, in a folder of its own.
# (The processes the tests start inherit it.)
os.environ["MODELSPEC_NO_CACHE"] = "1"


def spec_name(path: Path) -> str:
    """A bundled spec's name, its path under specs/ without the suffix, which names its golden files::

        spec_name(ROOT / "specs" / "cnn.nnspec") == "cnn"
        spec_name(ROOT / "specs" / "tutorials" / "cnn.nnspec") == "tutorials/cnn"

    Any other file is named by its stem."""
    try:
        return path.relative_to(ROOT / "specs").with_suffix("").as_posix()
    except ValueError:
        return path.stem


def count_calls(monkeypatch, owner, name: str) -> list[int]:
    """Replace ``owner.name`` with a spy that counts its calls, for the test's length: the count, as ``[n]``."""
    count = [0]
    real = getattr(owner, name)

    def spy(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return count


def spec_ids(paths):
    return [spec_name(p) for p in paths]


def fail_with_cases(report: str, failures, how: str, shown: int = 5, width: int = 4000) -> None:
    """Fail a fuzz test with its report, its failures counted by family, and the first ``shown`` in full.

    ``failures``: (seed, failure) pairs, each failure with a ``family``; ``how``: how to get a seed's spec."""
    import collections

    families = collections.Counter(f.family for _, f in failures)
    lines = [report, "", "failure families:"] + [f"  {n:5}  {fam}" for fam, n in families.most_common()]
    lines += ["", f"the first {min(shown, len(failures))} ({how} gives the spec):"]
    for seed, f in failures[:shown]:
        msg = str(f)
        lines += [f"--- seed {seed}: {f.family}", msg if len(msg) < width else msg[:width] + "\n[...]"]
    pytest.fail("\n".join(lines), pytrace=False)


def assert_golden(path: Path, text: str) -> None:
    """``text`` must be the golden file ``path`` byte for byte; with MODELSPEC_BLESS=1 it is (re)written instead.

    A difference fails with a unified diff from the golden file to ``text``, so that a reviewer sees what
    changed before re-blessing::

        assert_golden(ROOT / "tests" / "views" / "graph" / "cnn.dot", to_dot(graph))
    """
    where = path.relative_to(ROOT)
    if BLESS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    if not path.exists():
        pytest.fail(f"no golden file {where}; run with MODELSPEC_BLESS=1 to write it", pytrace=False)
    expected = path.read_bytes().decode("utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), text.splitlines(keepends=True),
                                            fromfile=f"{where} (golden)", tofile=f"{where} (now)"))
        pytest.fail(f"{where} is not what modelspec prints now; if the change is intended, re-bless with "
                    f"MODELSPEC_BLESS=1 and review the diff:\n{diff}", pytrace=False)


@pytest.fixture(scope="session")
def torch():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch
