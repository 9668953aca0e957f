import difflib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.nnspec"))
BLESS = os.environ.get("MODELSPEC_BLESS") == "1"


def spec_ids(paths):
    return [p.stem for p in paths]


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
