import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.nnspec"))
BLESS = os.environ.get("MODELSPEC_BLESS") == "1"


def spec_ids(paths):
    return [p.stem for p in paths]


@pytest.fixture(scope="session")
def torch():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch
