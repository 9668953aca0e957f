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

import copy
import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of source text: 1-based line and column, end exclusive."""

    # A dataclass, not a Pydantic model, so that an error or a warning needs no pydantic; the IR's models hold
    # it as a field, validated and in the JSON Schema as they are, with this config (ConfigDict is a TypedDict)
    __pydantic_config__ = {"extra": "forbid"}

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
    ``hint`` and ``source`` (the text, used to print the caret line); and
    ``more``, the errors found after this one in the rest of the file
    (past a syntax error, in the models a check goes on to), in file order:
    what ``modelspec check`` prints after it.
    """

    kind = "error"
    CODE = "MS900"  # the stable code of each kind of problem: CODES, and docs/errors.md, say what each means

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
        self.more: list[SpecError] = []
        self.checked: list = []  # set by `modelspec.pipeline.check_source`: the models that did elaborate

    @property
    def code(self) -> str:
        """The stable code of this kind of problem (``MS401``: a shape), as ``check --format json`` reports it."""
        return self.CODE

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
    CrossEntropyLoss). Located and rendered as errors are, with its name (one of `WARNINGS`) after the
    message: ``cnn.nnspec:4:5: warning: ... [unused-child]``; its stable ``code`` is an MS8xx.
    Elaboration collects them on the model graph (``graph.warnings``) and never raises one; `WarningPolicy`
    makes some of them errors, or drops them; the API issues them through Python's `warnings` module as
    `ModelspecWarning`s.
    """

    kind = "warning"

    def __init__(self, message: str, span: Span | None = None, *, name: str, hint: str | None = None,
                 path: str | None = None, source: str | None = None):
        if name not in WARNINGS:
            raise ValueError(f"unknown warning {name!r}")
        super().__init__(message, span, hint=hint, path=path, source=source)
        self.name = name  # what -W and `# nowarn:` call it
        self.as_error = False  # set by WarningPolicy.apply: rendered as an error

    @property
    def code(self) -> str:
        return WARNING_CODES[self.name]

    def __reduce__(self):  # copy and pickle: the keyword-only name is no argument Exception keeps
        return _warning, (self.message, self.name), dict(self.__dict__)

    def render(self) -> str:
        first, _, rest = super().render().partition("\n")
        if self.as_error:
            first = first.replace(": warning: ", ": error: ", 1)
        return f"{first} [{self.name}]" + (f"\n{rest}" if rest else "")


def _warning(message: str, name: str) -> SpecWarning:
    return SpecWarning(message, name=name)


# every warning there is, by the name -W takes, with what it catches (`modelspec check --help` lists them)
WARNINGS = {
    "forgotten-flatten": "a Linear given a feature map of a conv or pool: it works on the last dim only",
    "softmax-dim": "Softmax or LogSoftmax without dim, or over dim 0 (the batch)",
    "activation-before-loss": "an activation or softmax on the scores a CrossEntropyLoss takes",
    "param-no-init": "a param without an init, which starts as zeros",
    "empty-init": "an `empty` init: whatever the memory held, as torch.FloatTensor(in, out) leaves it",
    "unregistered-tensor": "a plain tensor attribute: not a parameter, not trained, not saved, not moved",
    "unused-child": "a child declared but never used in forward",
    "unbatched-input": "a conv or pool given an input without a batch dim, which reads the batch as channels",
}

# each warning's stable code, in the order of WARNINGS: a new warning takes the next number, none is reused
WARNING_CODES = {name: f"MS8{n:02d}" for n, name in enumerate(WARNINGS, 1)}

# every stable code an error or warning has: its name and what it means. `check --format json|sarif` reports
# them, and docs/errors.md shows an example of each (its tests run them)
CODES = {
    "MS101": ("syntax", "the text does not follow the grammar"),
    "MS201": ("name", "an undefined, duplicate or reserved name"),
    "MS301": ("argument", "a layer, op or setting given arguments it does not take"),
    "MS401": ("shape", "a tensor shape that does not fit where it is used"),
    "MS501": ("import", "an import, or a file named, that cannot be read or does not hold the name"),
    "MS601": ("limit", "a model over a limit (parameters, activations, depth, file size)"),
    "MS701": ("train", "a problem found while training (a checkpoint that does not fit)"),
    "MS702": ("data", "data that does not fit the spec (a missing file, a wrong column)"),
    "MS900": ("spec", "a spec with nothing in it, or several models and none chosen; a model that cannot be built "
                      "as asked"),
    **{code: (name, WARNINGS[name]) for name, code in WARNING_CODES.items()},
}


class WarningPolicy:
    """Which warnings are shown, which are errors: what ``-W`` says on the command line.

    ``-W error`` makes every warning an error, ``-W error=NAME`` one of them, ``-W no-NAME`` turns one off
    (and ``-W no-error=NAME`` keeps one a warning under ``-W error``), as gcc's ``-W`` options do.

    >>> policy = WarningPolicy.parse(["error", "no-unused-child"])
    >>> policy.shown("unused-child"), policy.fails("empty-init")
    (False, True)
    """

    def __init__(self, off=(), errors=(), all_errors: bool = False, not_errors=()):
        self.off, self.errors, self.all_errors = frozenset(off), frozenset(errors), all_errors
        self.not_errors = frozenset(not_errors)

    @classmethod
    def parse(cls, options) -> "WarningPolicy":
        """The policy of ``-W`` options (``error``, ``error=NAME``, ``no-NAME``, ``no-error=NAME``); a name that
        is no warning is a ValueError saying which there are."""
        off, errors, not_errors, all_errors = set(), set(), set(), False
        for option in options:
            if option == "error":
                all_errors = True
                continue
            found = next(((option[len(prefix):], into) for prefix, into in
                          (("error=", errors), ("no-error=", not_errors), ("no-", off)) if option.startswith(prefix)),
                         None)
            if found is None:
                raise ValueError(f"-W {option}: say error, error=NAME, no-NAME or no-error=NAME")
            name, into = found
            if name not in WARNINGS:
                raise ValueError(f"-W {option}: there is no warning {name!r}; "
                                 f"{did_you_mean(name, WARNINGS) or 'the warnings: ' + ', '.join(WARNINGS)}")
            into.add(name)
        return cls(off, errors, all_errors, not_errors)

    def shown(self, code: str) -> bool:
        return code not in self.off

    def fails(self, code: str) -> bool:
        return self.shown(code) and (code in self.errors or (self.all_errors and code not in self.not_errors))

    def apply(self, warnings) -> list[SpecWarning]:
        """The warnings shown, each marked an error where the policy says so."""
        shown = []
        for w in warnings:
            if self.shown(w.name):
                w = copy.copy(w)  # a graph's own warnings stay as they are: a cached graph is shared
                w.as_error = self.fails(w.name)
                shown.append(w)
        return shown


# errors one check reports at most, the first with the rest in its `more`: past these, more are rarely news
MAX_ERRORS = 20


class SpecSyntaxError(SpecError):
    """The text does not follow the grammar."""

    CODE = "MS101"


class SpecNameError(SpecError):
    """An undefined, duplicate or reserved name."""

    CODE = "MS201"


class SpecArgError(SpecError):
    """A constructor or function call with wrong arguments."""

    CODE = "MS301"


class SpecShapeError(SpecError):
    """A tensor shape that does not fit where it is used."""

    CODE = "MS401"


class SpecImportError(SpecError):
    """An import that cannot be resolved."""

    CODE = "MS501"


class SpecLimitError(SpecError):
    """A spec that would exceed a configured limit."""

    CODE = "MS601"


class ModelspecWarning(UserWarning):
    """A `SpecWarning` as Python's `warnings` module carries it (``.warning``): the API issues each one, so
    ``warnings.simplefilter("error", modelspec.ModelspecWarning)`` makes them raise, and
    ``warnings.simplefilter("ignore", modelspec.ModelspecWarning)`` hides them."""

    def __init__(self, warning: SpecWarning):
        super().__init__(warning)  # its one argument, so that it copies and pickles; str() renders it
        self.warning = warning


def issue(found, stacklevel: int = 3) -> None:
    """Hand a spec's warnings to Python's `warnings` module, as the API does (shown once per place, by
    Python's default filter)."""
    import warnings

    for w in found:
        warnings.warn(ModelspecWarning(w), stacklevel=stacklevel)


SHOWN = 8  # candidates a hint lists in full, when there are no more
NEAR = 0.7  # difflib's ratio of a name listed among the nearest, at least: at 0.5, `out` listed dropout and t


def suggest(name: str, candidates, what: str = "names", where: str | None = None) -> str:
    """A hint for an unknown name: the candidates it is a slip for; else the ones there are, when they are
    few; else the few nearest, and ``where`` the full list is.

    >>> suggest("fc3", ["fc1", "fc2", "relu"])
    'did you mean fc1 or fc2?'
    >>> suggest("zz", ["fc1", "fc2"], "children")
    'the children here: fc1, fc2'
    >>> layers = ["Conv1d", "Conv2d", "Dropout", "Embedding", "GRU", "Identity", "LSTM", "Linear", "ReLU"]
    >>> suggest("LinearLayer", layers, "layers", where="docs/language.md")
    'the nearest layers: Linear; all of them: docs/language.md'
    >>> suggest("Dense", layers, "layers", where="docs/language.md")
    "none of the 9 layers is near 'Dense': they are listed in docs/language.md"
    """
    close = did_you_mean(name, candidates)
    if close is not None:
        return close
    known = sorted(set(candidates))
    if not known:
        return f"no {what} are defined here; check the spelling"
    if len(known) <= SHOWN:
        return f"the {what} here: {', '.join(known)}"
    near = _near(name, known, 5)
    if where is not None:
        return (f"the nearest {what}: {', '.join(near)}; all of them: {where}" if near else
                f"none of the {len(known)} {what} is near {name!r}: they are listed in {where}")
    if near:
        return f"the nearest {what}: {', '.join(near)} (of {len(known)})"
    return f"the {what} here: {', '.join(known[:SHOWN])} and {len(known) - SHOWN} more"


def nearest(name: str, candidates, what: str, prefix: str = "", n: int = 5, where: str = "docs/language.md") -> str:
    """A hint for an unknown function or method: the candidate it is a slip for, else the few nearest ones,
    else where the list is.

    >>> nearest("repeat_interleave", ["repeat", "reshape", "relu", "abs"], "tensor methods")
    'the nearest tensor methods: repeat'
    >>> nearest("sofmax", ["softmax", "sum"], "functions", prefix="F.")
    'did you mean F.softmax?'
    >>> nearest("cumprod", ["softmax", "sum"], "functions", prefix="F.")
    "none of the functions is near 'F.cumprod': they are listed in docs/language.md"
    """
    close = did_you_mean(name, candidates, prefix)
    if close is not None:
        return close
    known = sorted(set(candidates))
    if not known:
        return f"no {what} are defined here; check the spelling"
    near = _near(name, known, n)
    if not near:
        return f"none of the {what} is near {prefix + name!r}: they are listed in {where}"
    return f"the nearest {what}: " + ", ".join(prefix + c for c in near)


def _near(name: str, known: list[str], n: int) -> list[str]:
    """The ``n`` candidates nearest ``name`` by difflib's ratio (of their lower case), of those `is_near` it.

    >>> _near("out", ["dropout", "float", "t", "output"], 5), _near("repeat_interleave", ["repeat", "relu"], 5)
    (['output'], ['repeat'])
    """
    scored = [(difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio(), c) for c in known]
    return [c for r, c in sorted(scored, key=lambda t: -t[0]) if is_near(name, c, r)][:n]


def is_near(name: str, other: str, ratio: float | None = None) -> bool:
    """Whether ``other`` is near enough ``name`` to be listed among the nearest: close by difflib's ratio
    (NEAR), or holding it as whole words (``repeat`` in ``repeat_interleave``, ``Linear`` in ``LinearLayer``),
    or as its first or last half at least (``sum`` in ``cumsum``). A few letters in common is not near:
    ``out`` is not ``dropout``, nor ``t``.

    >>> is_near("out", "dropout"), is_near("cumsum", "sum"), is_near("attention", "scaled_dot_product_attention")
    (False, True, True)
    """
    a, b = name.lower(), other.lower()
    if ratio is None:
        ratio = difflib.SequenceMatcher(None, a, b).ratio()
    if ratio >= NEAR and _same_start(a, b):  # `pool` is not near `bool`, nor `mm` `bmm`
        return True
    (short, short_words), (long_, long_words) = sorted([(a, _words(name)), (b, _words(other))], key=lambda t: len(t[0]))
    if len(short) < 3:
        return False
    if all(w in long_words for w in short_words):
        return True
    return 2 * len(short) >= len(long_) and (long_.startswith(short) or long_.endswith(short))


def _words(name: str) -> list[str]:
    """The words of a name, in lower case: ``LinearLayer`` -> linear, layer; ``repeat_interleave`` -> repeat,
    interleave."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)]


def did_you_mean(name: str, candidates, prefix: str = "") -> str | None:
    """A hint naming the candidates ``name`` is a likely slip for (`close_names`), or None.

    >>> did_you_mean("sofmax", ["softmax", "sum"]), did_you_mean("Maxpool2d", ["MaxPool2d"])
    ('did you mean softmax?', 'did you mean MaxPool2d?')
    >>> did_you_mean("MaxPool", ["MaxPool1d", "MaxPool2d", "MaxPool3d", "Linear"], prefix="nn.")
    'did you mean nn.MaxPool1d, nn.MaxPool2d or nn.MaxPool3d?'
    """
    close = [prefix + c for c in close_names(name, candidates)]
    if not close:
        return None
    return "did you mean " + (close[0] if len(close) == 1 else ", ".join(close[:-1]) + " or " + close[-1]) + "?"


def close_names(name: str, candidates) -> list[str]:
    """The candidates ``name`` is a likely slip for: the same name in another case, else the closest (all of
    them where several are as close, three at most).

    A candidate must be close by difflib's ratio and a likely slip of the keys: at most a third of the
    name's letters (and at least 2) inserted, deleted, changed or swapped. So a typo finds its name, but a
    different word that shares letters does not: ``expand`` is not ``exp``, nor ``repeat`` ``reshape``.
    Capitals are typed on purpose: a name written with them is no slip for one without (the module ``ReLU``
    is not the function ``relu``), though ``relu`` may be one for ``ReLU``. And a name whose differing part
    is another word, not a slip in it, is another name: ``encoder_out`` is not ``encoder_in``, nor ``Swish``
    ``Mish``. A slip keeps the first letter, which the typist sees, or swaps it with the second: a letter more
    or another one in front makes another name (``mm`` is not ``bmm``, nor ``elu`` ``gelu``).

    >>> close_names("repeat", ["reshape", "relu"]), close_names("float", ["flatten"]), close_names("ReLU", ["relu"])
    ([], [], [])
    >>> close_names("mm", ["bmm", "matmul"]), close_names("elu", ["gelu", "selu"]), close_names("ilnear", ["linear"])
    ([], [], ['linear'])
    >>> close_names("relu", ["ReLU", "GELU"]), close_names("fc3", ["fc1", "fc2", "relu"])
    (['ReLU'], ['fc1', 'fc2'])
    """
    candidates = [c for c in dict.fromkeys(candidates) if isinstance(c, str) and c != name]
    if name.lower() != name:
        candidates = [c for c in candidates if c.lower() != c]
    same = [c for c in candidates if c.lower() == name.lower()]
    if same:
        return [min(same, key=lambda c: _edits(name, c))]
    if len(name) < 2:
        return []  # one letter tells no slip: `q` is not `eq`, nor `x` `xs`
    bound = max(2, len(name) // 3)
    scored = []
    for c in difflib.get_close_matches(name, candidates, n=max(3, len(candidates)), cutoff=0.6):
        edits = _edits(name.lower(), c.lower())
        if edits <= bound and _same_start(name.lower(), c.lower()) and not _rewritten(name.lower(), c.lower()):
            scored.append((edits, -difflib.SequenceMatcher(None, name, c).ratio(), c))
    scored.sort()
    best = [c for e, r, c in scored if (e, r) == scored[0][:2]] if scored else []
    return sorted(best[:3])


def _same_start(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` begin with the same letter, or with the same two letters swapped."""
    return a[:1] == b[:1] or a[:2] == b[1::-1]


def _rewritten(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ, between what they begin and end with alike, by parts (one of two letters
    or more) that have nothing left in common: a word for another (``in`` and ``out``), not a slip of the keys."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    core_a, core_b = a[start:len(a) - end], b[start:len(b) - end]
    return min(len(core_a), len(core_b)) >= 1 and _edits(core_a, core_b) >= max(len(core_a), len(core_b), 2)


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


# ---------------------------------------------------------------- from-torch's: about Python, not a spec
@dataclass
class Problem:
    """What a spec cannot say, and where the Python says it: ``where`` is ``file.py:LINE`` (or the module's path)."""

    where: str
    message: str
    hint: str = ""
    placeholder: bool = True  # a TODO in the spec; False: a warning about a spec that is whole (values lost)

    def __str__(self):
        return self.render()

    def render(self, severity: str = "") -> str:
        """As a compiler says it: ``model.py:22: warning: calls torch.fft.fft, ...`` and its hint."""
        head = ": ".join(x for x in (self.where, severity, self.message) if x)
        return head + (f"\nhint: {self.hint}" if self.hint else "")


class FromTorchError(Exception):
    """The module could not be written as a spec; ``problems`` says each reason with its place."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
