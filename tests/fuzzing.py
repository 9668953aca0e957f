"""A fuzzer for modelspec's front end: mutants of the bundled specs, and random programs from the grammar.

Used by ``tests/test_fuzz.py`` (a few thousand cases in every CI run) and by
``tests/fuzz_long.py`` (a long run, by hand, reported in the README).

A case is a spec file's bytes. It passes when checking it (parse, elaborate,
generate code, compile that code as Python without running it)

* raises nothing but `SpecError`,
* and every `SpecError` has a hint, a line and column inside the file it names, and
  its rendering shows that very line under the message,
* and, when it compiles, the generated code is valid Python that passes the
  inertness check of ``tests/test_security.py``,
* all within ``TIMEOUT`` seconds.

Cases come from `cases(seed, n)`, deterministic for a seed: each is
``(kind, data)`` where ``kind`` names the mutation that made it.
"""

from __future__ import annotations

import random
import signal
import traceback
from contextlib import contextmanager
from pathlib import Path

from modelspec import SpecError
from modelspec.api import elaborate_spec
from modelspec.codegen import generate_code
from modelspec.errors import SHOWN_WIDTH
from modelspec.layers import CATALOG
from modelspec.ops import OPS
from modelspec.parse import _parser

ROOT = Path(__file__).resolve().parent.parent
CORPUS_PATHS = sorted((ROOT / "specs").glob("*.nnspec")) + sorted((ROOT / "tests" / "errors").glob("*.nnspec"))
TIMEOUT = 5  # seconds for one case; the slowest bundled spec checks in about 0.03 s

# ------------------------------------------------------------------ ingredients
NAMES = sorted(set(
    ["x", "y", "h", "out", "fc", "conv", "layers", "B", "T", "C", "H", "W", "N", "planes", "stride", "k", "i", "_",
     "in_shape", "self", "torch", "nn", "F", "Sequential", "ModuleList", "ModuleDict", "range", "len", "min", "max",
     "randn", "zeros", "ones", "normal", "Long", "Float", "Bool", "training", "forward", "eval", "input", "exec",
     "__import__", "__class__", "__builtins__", "lambda", "import", "os", "sys", "getattr", "open", "print"]
    + list(CATALOG) + list(OPS)
))
NUMBERS = ["0", "1", "2", "3", "-1", "-0", "00", "0x0", "0xff", "1_000", "7", "16", "64", "1024", "2147483648",
           "9223372036854775807", "9223372036854775808", "10 ** 12", "10**18", "10 ** 19", "2 ** 64",
           "1" + "0" * 40, "9" * 5000, "1e308", "1e309", "1e-320", "0.0", "-0.0", ".5", "5.", "1e3", "-1e308",
           "0.1", "3.5", "1e999999", "(0, 0)", "(10**12,)", "()", "None", "True", "-True", "_", "(-8) ** 0.5",
           "2.0 ** 1000", "int(1e308)", "float('nan')", "1 / 0", "7 // 0", "-(2 ** 63)", "range(10 ** 9)",
           "len(range(10 ** 20))", "round(1e308, -400)", "int('9' * 5000)", "[0] * 3", "(1,) + (2,)"]
STRINGS = ['"zeros"', "'reflect'", '"tanh"', '""', "'\\n'", "'\\x00'", "'\\u2028'", '"\\"\\"\\"; import os; #"',
           "'\\'); __import__(\"os\").system(\"id\"); (\\''", '"{x}"', "'%s'", '"a{b.nnspec"',
           '"../../../../etc/passwd.nnspec"', '"/dev/zero.nnspec"', '"lib/blocks.nnspec"', '"cnn.nnspec"',
           '"blocks.py"', '"fuzz.nnspec"', "'\\N{BOM}'", "'\\ud800'", "'\\q'", '"' + "a" * 300 + '"']
CHARS = list("(){}[]<>,;:.=+-*/%@!~^&|?$`'\"#\\_ \n") + ["\t", "\r", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x85",
                                                           "\ufeff", "\u2028", "\u00e9", "\u03a3", "\U0001f600",
                                                           "\u200b", "x", "0", "9"]
BAD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf",
             b"\x80", b"\xef\xbb\xbf", b"\xff\xfe"]
SNIPPETS = ["model M(x: [B, 4]) { }", "block Q(n) { }", "const K = 3", "forward(x) { return x }",
            'import "fuzz.nnspec"', 'from "lib/blocks.nnspec" import Head', "param W: [3, 2] = randn",
            "buffer m: [2] = ones", "return", "for l in layers { x = l(x) }", "if True { }", "x = x.view(-1)",
            "Sequential(*[ReLU() for _ in range(3)])", "[i for i in range(10000)]", "range(10001)",
            "ModuleDict({'a': ReLU()})", "Linear(_, 10 ** 12)", "in_shape[1]", "x @ x", "torch.cat([x, x], dim=1)"]


def _corpus():
    texts = []
    for p in CORPUS_PATHS:
        text = p.read_bytes().decode("utf-8", "surrogateescape")  # a case that is not UTF-8 stays so
        try:
            tokens = [(t.type, str(t), t.start_pos, t.end_pos) for t in _parser().lex(text)]
        except Exception:  # a lexing error case of the catalog: mutate it as characters only
            tokens = []
        texts.append((p.name, text, tokens))
    return texts


CORPUS = _corpus()
SPEC_CORPUS = [c for c, p in zip(CORPUS, CORPUS_PATHS) if p.parent.name == "specs"]
TOKEN_POOL = sorted({t[1] for _, _, toks in CORPUS for t in toks})


# ------------------------------------------------------------------ mutations of a spec text
def _pos(rng, text):
    return rng.randrange(len(text) + 1)


def char_insert(rng, text, tokens):
    i = _pos(rng, text)
    return text[:i] + rng.choice(CHARS) + text[i:]


def char_delete(rng, text, tokens):
    i = _pos(rng, text)
    return text[:i] + text[i + rng.choice([1, 1, 1, 2, 5, 20]):]


def char_duplicate(rng, text, tokens):
    i = _pos(rng, text)
    j = min(len(text), i + rng.choice([1, 2, 5, 20, 80]))
    return text[:j] + text[i:j] * rng.choice([1, 1, 2, 10]) + text[j:]


def char_swap(rng, text, tokens):
    if len(text) < 2:
        return text
    i, j = sorted(rng.sample(range(len(text)), 2))
    if rng.random() < 0.5:
        j = min(i + 1, len(text) - 1)
    chars = list(text)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _splice_token(text, tok, new):
    return text[: tok[2]] + new + text[tok[3]:]


def token_insert(rng, text, tokens):
    if not tokens:
        return char_insert(rng, text, tokens)
    tok = rng.choice(tokens)
    new = rng.choice(TOKEN_POOL + SNIPPETS + NAMES)
    at = tok[2] if rng.random() < 0.5 else tok[3]
    return text[:at] + " " + new + " " + text[at:]


def token_delete(rng, text, tokens):
    if not tokens:
        return char_delete(rng, text, tokens)
    i = rng.randrange(len(tokens))
    j = min(len(tokens) - 1, i + rng.choice([0, 0, 0, 1, 3]))
    return text[: tokens[i][2]] + text[tokens[j][3]:]


def token_duplicate(rng, text, tokens):
    if not tokens:
        return char_duplicate(rng, text, tokens)
    i = rng.randrange(len(tokens))
    j = min(len(tokens) - 1, i + rng.choice([0, 0, 2, 6, 15]))
    chunk = text[tokens[i][2]: tokens[j][3]]
    return text[: tokens[j][3]] + (" " + chunk) * rng.choice([1, 1, 2, 30]) + text[tokens[j][3]:]


def token_swap(rng, text, tokens):
    if len(tokens) < 2:
        return char_swap(rng, text, tokens)
    i = rng.randrange(len(tokens) - 1)
    j = i + 1 if rng.random() < 0.6 else rng.randrange(i + 1, len(tokens))
    a, b = tokens[i], tokens[j]
    return text[: a[2]] + b[1] + text[a[3]: b[2]] + a[1] + text[b[3]:]


def extreme_number(rng, text, tokens):
    nums = [t for t in tokens if t[0] in ("INT", "FLOAT")]
    if not nums:
        return token_insert(rng, text, tokens)
    return _splice_token(text, rng.choice(nums), rng.choice(NUMBERS))


def replace_name(rng, text, tokens):
    names = [t for t in tokens if t[0] == "NAME"]
    if not names:
        return token_insert(rng, text, tokens)
    return _splice_token(text, rng.choice(names), rng.choice(NAMES))


def replace_string(rng, text, tokens):
    spots = [t for t in tokens if t[0] in ("STRING", "INT", "NAME")]
    if not spots:
        return token_insert(rng, text, tokens)
    return _splice_token(text, rng.choice(spots), rng.choice(STRINGS))


def line_edit(rng, text, tokens):
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.choice(["dup", "del", "swap", "move"])
    if op == "dup":
        lines.insert(i, lines[j])
    elif op == "del":
        del lines[i]
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(j, lines.pop(i))
    return "\n".join(lines)


def splice(rng, text, tokens):
    _, other, _ = rng.choice(CORPUS)
    a = rng.randrange(len(other) + 1)
    b = min(len(other), a + rng.choice([10, 40, 200]))
    i = _pos(rng, text)
    return text[:i] + other[a:b] + text[i:]


MUTATIONS = [char_insert, char_delete, char_duplicate, char_swap, token_insert, token_delete, token_duplicate,
             token_swap, extreme_number, replace_name, replace_string, line_edit, splice]
# the mutations that keep the syntax (numbers, names, strings) more often: their mutants reach elaboration
WEIGHTS = [1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 2, 1, 1]


def mutate(rng: random.Random) -> tuple[str, bytes]:
    """A bundled spec with one to four mutations (and sometimes a bad byte)."""
    # three in four from the bundled specs, whose mutants get far into elaboration; the rest from the error cases
    name, text, tokens = rng.choice(SPEC_CORPUS if rng.random() < 0.75 else CORPUS)
    kinds = []
    for k in range(rng.choice([1, 1, 1, 2, 2, 4])):
        m = rng.choices(MUTATIONS, WEIGHTS)[0]
        text = m(rng, text, tokens if k == 0 else [])  # token positions hold for the first mutation only
        kinds.append(m.__name__)
    data = text.encode("utf-8", "surrogateescape")
    if rng.random() < 0.04:
        i = rng.randrange(len(data) + 1)
        data = data[:i] + rng.choice(BAD_BYTES) + data[i:]
        kinds.append("bad_bytes")
    return "+".join(kinds), data


# ------------------------------------------------------------------ programs from the grammar
class GrammarGen:
    """Random derivations of the nnspec grammar: syntactically valid programs, semantically anything."""

    def __init__(self):
        parser = _parser()
        self.rules: dict[str, list[list]] = {}
        for r in parser.rules:
            self.rules.setdefault(r.origin.name, []).append(r.expansion)
        self.patterns = {t.name: t.pattern for t in parser.terminals}
        self.patterns["IF_STMT"] = self.patterns["IF"]  # declared in the grammar, made by the lexer step
        self.cost = self._costs()

    def _costs(self) -> dict[str, int]:
        """Fewest derivation levels to a terminal string, per nonterminal: where to go when deep."""
        cost = {n: 10**9 for n in self.rules}
        changed = True
        while changed:
            changed = False
            for n, alts in self.rules.items():
                for exp in alts:
                    c = 1 + max([cost[s.name] if not s.is_term else 0 for s in exp], default=0)
                    if c < cost[n]:
                        cost[n], changed = c, True
        return cost

    def terminal(self, rng, name: str) -> str:
        if name == "NAME":
            return rng.choice(NAMES if rng.random() < 0.7 else ["x", "x", "B", "fc", "y", "n"]).strip("_") or "x"
        if name == "INT":
            return rng.choice(["0", "1", "2", "3", "4", "8", "16", "64", "128", "10", "1000", "9" * 25])
        if name == "FLOAT":
            return rng.choice(["0.5", "1.0", "1e-5", "0.1", "2.5e3"])
        if name == "STRING":
            return rng.choice(STRINGS)
        if name == "IF_STMT":  # an `if` statement opens its line, which ends with `{` (modelspec.parse.StatementIf)
            return "\nif"
        if name == "TRAIN":  # `train` opening a top-level item (modelspec.parse.StatementIf), on its own line
            return "\ntrain"
        if name == "LBRACE":
            return "{\n"
        pattern = self.patterns[name]
        return pattern.value if pattern.type == "str" else name.lower()

    def expand(self, rng, symbol: str, depth: int, out: list[str], budget: list[int]):
        alts = self.rules[symbol]
        if depth > 12 or budget[0] <= 0:
            best = min(self.cost_of(a) for a in alts)
            alts = [a for a in alts if self.cost_of(a) == best]
        exp = rng.choice(alts)
        budget[0] -= 1
        # the word a train section's statement begins with, which the grammar leaves a NAME (parse.py checks it)
        first = {"train_target": "target", "train_data": rng.choice(["data", "validation"])}.get(symbol)
        for i, s in enumerate(exp):
            if s.is_term and i == 0 and first is not None and s.name == "NAME":
                out.append(first)
            elif s.is_term:
                out.append(self.terminal(rng, s.name))
            else:
                self.expand(rng, s.name, depth + 1, out, budget)

    def cost_of(self, exp) -> int:
        return max([self.cost[s.name] if not s.is_term else 0 for s in exp], default=0)

    def program(self, rng) -> str:
        out: list[str] = []
        budget = [rng.choice([20, 60, 150, 400])]
        self.expand(rng, "start", 0, out, budget)
        if rng.random() < 0.7:  # a model to elaborate, after whatever blocks and consts came first
            budget[0] = rng.choice([20, 60, 150])
            self.expand(rng, "model_def", 1, out, budget)
        seps = [" ", " ", " ", "\n", "\n    ", "  "]
        return "".join(tok + rng.choice(seps) for tok in out)

    def token_stream(self, rng) -> str:
        """Terminals of the grammar in random order: mostly syntax errors, some far into the file."""
        names = [n for n in self.patterns if n not in ("WS", "COMMENT")]
        return " ".join(self.terminal(rng, rng.choice(names)) for _ in range(rng.randrange(1, 40)))


_GEN = None


def grammar_case(rng: random.Random) -> tuple[str, bytes]:
    global _GEN
    _GEN = _GEN or GrammarGen()
    if rng.random() < 0.75:
        return "grammar", _GEN.program(rng).encode("utf-8", "surrogateescape")
    return "tokens", _GEN.token_stream(rng).encode("utf-8", "surrogateescape")


def cases(seed: int, n: int):
    """``n`` cases for ``seed``: four in five mutants of bundled specs, one in five from the grammar."""
    rng = random.Random(seed)
    for _ in range(n):
        yield mutate(rng) if rng.random() < 0.8 else grammar_case(rng)


# ------------------------------------------------------------------ checking one case
class Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int | None):
    if not hasattr(signal, "SIGALRM") or seconds is None:
        yield
        return

    def on_alarm(signum, frame):
        raise Timeout(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _lines(text: str) -> list[str]:
    return text.split("\n")  # lines as the parser counts them: only "\n" ends one


def located_problem(err: SpecError, path: Path, data: bytes) -> str | None:
    """What is wrong with where ``err`` points, or None."""
    if err.line is None or err.column is None:
        return "the error has no line and column"
    if not err.hint:
        return f"the error has no hint: {err.message if hasattr(err, 'message') else err}"
    where = Path(err.path) if err.path else None
    if where is None:
        return "the error names no file"
    if where.resolve() == path.resolve():
        text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    elif where.is_file():
        text = where.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
    else:
        return f"the error names {err.path}, which is not a file"
    lines = _lines(text)
    if not 1 <= err.line <= len(lines):
        return f"line {err.line} is outside the file ({len(lines)} lines)"
    line = lines[err.line - 1]
    if not 1 <= err.column <= len(line) + 1:
        return f"column {err.column} is outside line {err.line} ({len(line)} characters)"
    rendered = err.render().split("\n")
    if err.source is not None:
        shown = "".join(c if c.isprintable() else " " for c in line.rstrip("\r"))
        got = rendered[1][4:] if len(rendered) >= 3 else None
        if got is not None and len(shown) > SHOWN_WIDTH:  # a window of a long line, cut with "..."
            got = got.removeprefix("...").removesuffix("...") if got not in shown else got
            ok = got in shown and len(got) >= SHOWN_WIDTH - 6
        else:
            ok = got == shown
        if not ok:
            return f"the rendering does not show line {err.line}: {rendered[1:2]!r} instead of {shown!r}"
    return None


def check_file(path: Path, data: bytes, *, inert=None) -> str | None:
    """Check one spec file (already holding ``data``); None when modelspec behaved, else what went wrong."""
    try:
        with time_limit(TIMEOUT):
            try:
                graph = elaborate_spec(path)
                code = generate_code(graph)
                compiled = compile(code, "<generated>", "exec", dont_inherit=True)
            except SpecError as err:
                return located_problem(err, path, data)
        if inert is not None:
            problem = inert(code)
            if problem:
                return f"the generated code is not inert: {problem}"
        del compiled
        return None
    except Timeout as exc:
        return f"timeout: {exc}"
    except RecursionError:
        return "RecursionError:\n" + "".join(traceback.format_exc(limit=-8))
    except Exception:
        return traceback.format_exc(limit=-12)


def workdir(base: Path) -> Path:
    """A folder to write cases in, with the files the error catalog's imports name."""
    import shutil

    base.mkdir(parents=True, exist_ok=True)
    lib = base / "lib"
    if not lib.exists():
        shutil.copytree(ROOT / "tests" / "errors" / "lib", lib)
    for p in (ROOT / "specs").glob("*.nnspec"):  # what `import "cnn.nnspec"` would find
        target = base / p.name
        if not target.exists():
            shutil.copy(p, target)
    return base


def run(seed: int, n: int, base: Path, *, inert=None, on_failure=None) -> tuple[int, list[tuple[str, bytes, str]]]:
    """Check ``n`` cases of ``seed`` in ``base``; (cases run, failures as (kind, data, problem))."""
    path = workdir(base) / "fuzz.nnspec"
    failures = []
    count = 0
    for kind, data in cases(seed, n):
        path.write_bytes(data)
        problem = check_file(path, data, inert=inert)
        count += 1
        if problem is not None:
            failures.append((kind, data, problem))
            if on_failure is not None:
                on_failure(kind, data, problem)
    return count, failures
