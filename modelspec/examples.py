"""The example specs installed with modelspec: `modelspec examples` lists them, `modelspec examples NAME`
prints one.

They are the top-level specs/ folder, specs/tutorials/ included: the specs the tests compile, run and
round-trip. pyproject.toml ships that folder in the wheel as modelspec/specs/, as it ships grammar/, and
`folder()` finds it there when installed, else beside the package in a checkout or an editable install, the
way `parse.grammar_text` finds the grammar. An example is named by its path under specs/ without the suffix:
``cnn``, ``tutorials/conv``.

Each example stands alone: it imports no other spec and reads no data file beside it, so the text that
`modelspec examples cnn > cnn.nnspec` writes is a whole spec wherever it lands (a spec importing its
neighbour would lose it there). tests/test_examples.py holds this, checking each one written by itself into
an empty folder.
"""

from __future__ import annotations

import re
import textwrap
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".nnspec"
WIDTH = 120  # a listing's lines at most, where no terminal says how wide it is
LEAST = 40  # a description's room at least, on a narrow terminal: past it, a line wraps


def folder() -> Traversable:
    """The folder of the examples: inside the package when installed from the wheel, else specs/ beside it.

    >>> folder().joinpath("cnn.nnspec").is_file()
    True
    """
    shipped = resources.files("modelspec").joinpath("specs")
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parent.parent / "specs"


def examples() -> dict[str, Traversable]:
    """Name -> file of every example: the folder's own first, then each subfolder's, by name.

    >>> names = list(examples())
    >>> names[:2], names.index("tutorials/conv") > names.index("yolov8_c2f")
    (['autoencoder', 'batched_matmul'], True)
    """
    return dict(_walk(folder(), ""))


def _walk(where: Traversable, prefix: str):
    entries = sorted(where.iterdir(), key=lambda e: e.name)
    for entry in entries:
        if entry.is_file() and entry.name.endswith(SUFFIX):
            yield prefix + entry.name.removesuffix(SUFFIX), entry
    for entry in entries:
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")


def describe(text: str) -> str:
    """What a spec is: the first sentence of the comment it opens with, up to a list ("" with no comment).

    >>> describe("# A small U-Net: an encoder, a decoder. Skips\\n# join by cat.\\nmodel U(x: [B, 1]) {}")
    'A small U-Net: an encoder, a decoder'
    >>> describe("# A DenseNet (Huang et al., 2017), named\\n# as torchvision's is.\\n")
    "A DenseNet (Huang et al., 2017), named as torchvision's is"
    >>> describe("# The convolutions, each on its input:\\n# - Conv1d on [B, C, T];\\n")
    'The convolutions, each on its input'
    """
    header = []
    for line in text.splitlines():
        words = line.removeprefix("#").strip()
        if not line.startswith("#") or words.startswith("- "):
            break
        header.append(words)
    first = re.split(r"(?<=\.)\s", " ".join(header), maxsplit=1)[0]
    return first.rstrip(".:")


def listing(found: dict[str, Traversable], width: int = WIDTH) -> str:
    """One line per example: its name, then what it is, shortened to fit ``width``.

    >>> print(listing({k: v for k, v in examples().items() if k in ("cnn", "tutorials/flatten")}, 80))
    cnn                The CNN of the tutorials: two convolutions, then a classifier
    tutorials/flatten  nn.Flatten as tutorial 003 shows it: on its three 28x28 ...
    """
    column = max(map(len, found), default=0) + 2
    room = max(width - column, LEAST)
    return "\n".join(f"{name:<{column}}{_shortened(file, room)}".rstrip() for name, file in found.items())


def _shortened(file: Traversable, room: int) -> str:
    return textwrap.shorten(describe(file.read_text(encoding="utf-8")), room, placeholder=" ...")
