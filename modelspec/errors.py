"""One error family for everything a spec can get wrong.

Every problem in a spec is a `SpecError` (or a subclass) carrying the file,
line, column and span it points at, plus an optional hint. `str(err)` prints
it the way compilers do::

    cnn.nnspec:7:11: Linear `fc1` expects in_features=1024 but its input is [B, 25600]
        fc1 = Linear(64 * 4 * 4, 128)
              ^^^^^^^^^^^^^^^^^^^^^^^
    hint: use Linear(25600, 128), or Linear(_, 128) to infer it
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A region of source text: 1-based line and column, end exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


SHOWN_WIDTH = 100  # characters of a source line an error shows at most


class SpecError(Exception):
    """A problem in a spec, located in its source.

    Attributes: ``message``, ``path``, ``line``, ``column``, ``span``,
    ``hint`` and ``source`` (the text, used to print the caret line).
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        path: str | None = None,
        source: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.path = path
        self.source = source

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def locate(self, path: str | None, source: str | None) -> "SpecError":
        """Fill in the file and text if nobody did yet; returns self."""
        if self.path is None:
            self.path = path
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        where = self.path or "<spec>"
        if self.span is not None:
            where = f"{where}:{self.span.line}:{self.span.column}"
        lines = [f"{where}: {'warning: ' if self.kind == 'warning' else ''}{self.message}"]
        caret = self._caret()
        if caret:
            lines.extend(caret)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def _caret(self) -> list[str]:
        if self.span is None or self.source is None:
            return []
        # lines as the parser counts them (splitlines would also split at \f, \x85...), after one byte-order mark
        src_lines = self.source.removeprefix("\ufeff").split("\n")
        if not 1 <= self.span.line <= len(src_lines):
            return []
        # one column per character, shown as itself where printable: a tab, a form feed or a stray \r as a space
        text = "".join(c if c.isprintable() else " " for c in src_lines[self.span.line - 1].rstrip("\r"))
        start = max(self.span.column - 1, 0)
        if self.span.end_line == self.span.line:
            width = max(self.span.end_column - self.span.column, 1)
        else:
            width = max(len(text.rstrip()) - start, 1)
        width = min(width, max(len(text) - start, 1))
        if len(text) > SHOWN_WIDTH:  # a very long line: the part around the column, cut with "..."
            left = max(0, min(start - 20, len(text) - SHOWN_WIDTH))
            more = "..." if left + SHOWN_WIDTH < len(text) else ""
            cut = ("..." if left else "") + text[left:left + SHOWN_WIDTH] + more
            start = start - left + (3 if left else 0)
            width = max(1, min(width, len(cut) - start))
            text = cut
        return [f"    {text}", "    " + " " * start + "^" * width]


class SpecWarning(SpecError):
    """Not an error: something a spec may mean, but most likely does not (a softmax before
    CrossEntropyLoss). Located and rendered as errors are, and never raised."""

    kind = "warning"


class SpecSyntaxError(SpecError):
    """The text does not follow the grammar."""


class SpecNameError(SpecError):
    """An undefined, duplicate or reserved name."""


class SpecArgError(SpecError):
    """A constructor or function call with wrong arguments."""


class SpecShapeError(SpecError):
    """A tensor shape that does not fit where it is used."""


class SpecImportError(SpecError):
    """An import that cannot be resolved."""


class SpecLimitError(SpecError):
    """A spec that would exceed a configured limit."""


def suggest(name: str, candidates, what: str = "names") -> str:
    """A hint for an unknown name: the closest candidate, else the ones there are.

    >>> suggest("fc3", ["fc1", "fc2", "relu"])
    'did you mean fc2?'
    >>> suggest("zz", ["fc1", "fc2"], "children")
    'the children here: fc1, fc2'
    """
    close = did_you_mean(name, candidates)
    if close is not None:
        return close
    known = sorted(set(candidates))
    if not known:
        return f"no {what} are defined here; check the spelling"
    shown = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
    return f"the {what} here: {shown}"


def nearest(name: str, candidates, what: str, prefix: str = "", n: int = 5) -> str:
    """A hint for an unknown function or method: the candidate it is a slip for, else the few nearest ones.

    >>> nearest("repeat_interleave", ["repeat", "reshape", "relu", "abs"], "tensor methods")
    'the nearest tensor methods: repeat, reshape, relu, abs'
    >>> nearest("sofmax", ["softmax", "sum"], "functions", prefix="F.")
    'did you mean F.softmax?'
    """
    close = did_you_mean(name, candidates)
    if close is not None:
        return close.replace("did you mean ", f"did you mean {prefix}")
    known = sorted(set(candidates))
    if not known:
        return f"no {what} are defined here; check the spelling"
    ranked = sorted(known, key=lambda c: -difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio())[:n]
    return f"the nearest {what}: " + ", ".join(prefix + c for c in ranked)


def did_you_mean(name: str, candidates) -> str | None:
    """A hint naming the closest candidate, or None.

    A candidate must be close by difflib's ratio and a likely slip of the keys: at most a third of the
    name's letters (and at least 2) inserted, deleted, changed or swapped. So a typo finds its name, but a
    different word that shares letters does not: ``expand`` is not ``exp``, nor ``repeat`` ``reshape``.

    >>> did_you_mean("sofmax", ["softmax", "sum"]), did_you_mean("Maxpool2d", ["MaxPool2d"])
    ('did you mean softmax?', 'did you mean MaxPool2d?')
    >>> did_you_mean("repeat", ["reshape", "relu"]) is None, did_you_mean("float", ["flatten"]) is None
    (True, True)
    """
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f"did you mean {lowered[name.lower()]}?"
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    close = [c for c in close if _edits(name.lower(), c.lower()) <= max(2, len(name) // 3)]
    return f"did you mean {close[0]}?" if close else None


def _edits(a: str, b: str) -> int:
    """The optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    if abs(len(a) - len(b)) > 8:
        return abs(len(a) - len(b))
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]
