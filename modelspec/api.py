"""The Python API, modelspec's public face: compile a spec, print its code, make example inputs.

    >>> from modelspec import compile_spec
    >>> model = compile_spec("specs/mnist_mlp.nnspec", seed=0)      # doctest: +SKIP

Nothing inside the package imports this module; the stages it calls are in
`modelspec.pipeline`, imported where they run: a spec served from a cache
needs none of the front end (lark, pydantic, the catalog).

`compile_spec`, `generate_code` and `example_inputs` keep what the front end
made of a spec (its code and model graph) in `code_cache`, in this process,
so that compiling the same spec again costs a hash, a look-up and the
construction of the module; a spec compiled again by the same call, whose
file and imports have not changed (by their sizes, times and inodes),
skips even the read and the hash. `compile_spec` also keeps the code on
disk, in a folder of the user's own (modelspec/diskcache.py), so that a new
process compiles a spec compiled before at the cost of a read, a hash and
an exec. `elaborate_spec` hands its graph to the caller and always
elaborates afresh.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from . import diskcache
from .build import construct, model_class, stays_put  # light: the standard library alone until a model is built
from .files import max_file_bytes, text_digest
from .version import __version__

if TYPE_CHECKING:
    from . import ir
    from .elaborate import Limits
    from .model import ModelGraph
    from .pipeline import Elaborated

# A file's size, times and inode stand for its text only once they are older than this when the text is read:
# a change within the same tick of the file system's clock (coarse: up to 2 s on some) leaves them as they were,
# so a file changed that recently is read and hashed again, as git does with its index. (A network file system
# whose server's clock lags this machine's by more than this could make a fresh change look settled.)
SETTLED_NS = 2_000_000_000


class CachedCode:
    """What the front end made of one spec: the code it prints and the graph behind it.

    The graph is shared by every compile of the spec, so it must not change:
    codegen and build only read a graph, and none of the functions that use
    the cache hands it to the caller (`elaborate_spec` makes a new one).
    An entry read back from the disk cache has no graph (``elaborated`` is
    None): it serves `compile_spec`, which needs the code alone. (A plain
    class: a dataclass costs a new process ~1 ms to define.)
    """

    def __init__(self, code: str, elaborated: Elaborated | None, chars: int, model: str,
                 imports: tuple[tuple[str, str], ...] = (), warnings: tuple = (), unregistered: tuple = (),
                 path: str | None = None):
        self.code = code
        self.elaborated = elaborated
        self.chars = chars  # the spec's text and its imports', what the entry counts for against the bound
        self.model = model  # the class that compile_spec builds
        self.imports = imports  # (path, digest) of every file its imports read
        self.warnings = warnings  # the model's SpecWarnings, which compile_spec issues on every call
        self.unregistered = unregistered  # (name, span) of each plain tensor, which a move elsewhere refuses
        self.path = path  # the spec's file

    @property
    def graph(self) -> ModelGraph | None:
        return None if self.elaborated is None else self.elaborated.graph

    @functools.cached_property
    def model_class(self) -> type:
        """The generated model class, its code loaded once (`modelspec.build.load_code`)."""
        return model_class(self.code, self.model)

    def imports_unchanged(self) -> bool:
        """Whether every imported file still reads as it did (a file gone or unreadable has changed)."""
        return diskcache.imports_unchanged(self.imports)


class CodeCache:
    """A least-recently-used table of `CachedCode`, keyed by a spec's text and everything else it depends on.

    Bounded by entries and by the characters of spec text behind them (a
    graph holds ~140–490 bytes per character of its spec: a 10,000-layer
    spec's ~30–120 MB), and safe to share between threads. An entry whose
    imported files no longer read as they did is compiled again.

    In front of it, a table from the arguments of a call (the path or text,
    the working directory where it matters, the model, the limits) to the
    entry and the stat of each file behind it: a call repeated with nothing
    changed finds its entry without reading a file (see `SETTLED_NS`).

    >>> cache = CodeCache(max_entries=2)
    >>> code, graph = cache.compile("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> cache.compile("model M(x: [B, 4]) { fc = Linear(_, 2) }")[0] is code, cache.hits, cache.misses
    (True, 1, 1)
    """

    def __init__(self, max_entries: int = 64, max_chars: int = 256 * 1024):
        self.max_entries = max_entries
        self.max_chars = max_chars  # a spec bigger than this is compiled every time, not kept
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, CachedCode] = OrderedDict()
        self._recent: dict[tuple, tuple[tuple, tuple]] = {}  # call -> (key of its entry, stat of its files)
        self._chars = 0
        self._lock = threading.Lock()

    def compile(self, source_or_path, *, model: str | None = None,
                limits: Limits | None = None) -> tuple[str, ModelGraph]:
        """(code, graph) of a spec (text or path), from the cache when its text and imports are unchanged."""
        entry = self.entry(source_or_path, model=model, limits=limits, graph=True)
        return entry.code, entry.graph

    def entry(self, source_or_path, *, model: str | None = None, limits: Limits | None = None,
              graph: bool = True, disk: bool = False) -> CachedCode:
        """The entry of a spec, compiled if need be. ``graph``: one with its model graph (an entry from disk
        has none, and is compiled again). ``disk``: look in the disk cache, and keep there what is compiled."""
        call = _call_key(source_or_path, model, limits)
        if call is not None:
            found = self._recent.get(call)
            if found is not None and _unchanged(found[1]):
                entry = self._entries.get(found[0])
                if entry is not None and (entry.elaborated is not None or not graph):
                    with self._lock:
                        self.hits += 1
                        if found[0] in self._entries:
                            self._entries.move_to_end(found[0])
                    return entry
        started = time.time_ns()
        text, path, data = _read(source_or_path)
        key = self.key(text, path, model, limits)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        fresh = (entry is not None and (entry.elaborated is not None or not graph)
                 and entry.imports_unchanged())  # files read outside the lock
        with self._lock:
            if fresh:
                self.hits += 1
            else:
                self.misses += 1
        if not fresh:
            entry = self._from_disk(data, key, text, path, model, limits) if disk else None
            if entry is None:
                entry = self._compile(text, path, model, limits)
                if disk:
                    _keep_on_disk(entry, data, key, path, model, text)
            self._put(key, entry)
        if call is not None:
            self._remember(call, key, path, entry, started)
        return entry

    @staticmethod
    def key(text: str, path: str | None, model: str | None, limits: Limits | None) -> tuple:
        """Everything the code and graph of a spec depend on but its imported files' contents."""
        # imports resolve relative to the spec's directory (the working directory for spec text), and the
        # printed code names the file
        where = os.path.dirname(os.path.abspath(path)) if path is not None else os.getcwd()
        return (text_digest(text), path, where, model, _limits_key(limits), __version__, max_file_bytes())

    @staticmethod
    def _compile(text: str, path: str | None, model: str | None, limits: Limits | None) -> CachedCode:
        from .codegen import generate_code as generate
        from .pipeline import elaborate_source

        elaborated = elaborate_source(text, path, model=model, limits=limits)
        graph = elaborated.graph
        return CachedCode(generate(graph), elaborated, len(text) + elaborated.imported_chars, graph.name,
                          elaborated.imports, tuple(graph.warnings), tuple(graph.unregistered), graph.path)

    def _from_disk(self, data: bytes, key: tuple, text: str, path: str | None, model: str | None,
                   limits: Limits | None) -> CachedCode | None:
        found = diskcache.load(diskcache.key(data, path, key[2], model, key[4]))
        if found is None:
            return None
        imports = tuple((p, d) for p, d in found["imports"])
        return CachedCode(found["code"], None, len(text), found["model"], imports,
                          diskcache.warnings_of(found, text), diskcache.unregistered_of(found), path)

    def _remember(self, call: tuple, key: tuple, path: str | None, entry: CachedCode, started: int):
        """Note the stat of the files behind ``entry`` for `entry` to find it by ``call`` alone, if every one
        is settled: unchanged since well before ``started``, when their reading began. Not if the working
        directory the call was keyed with is not the one the spec was read from (another thread's chdir)."""
        cwd = call[2]
        spec = None if path is None else os.path.abspath(os.path.join(cwd, path) if cwd else path)
        if key[2] != (cwd if spec is None else os.path.dirname(spec)):
            return
        files = [p for p, _ in entry.imports] if spec is None else [spec, *(p for p, _ in entry.imports)]
        stamps = []
        for name in files:
            try:
                st = os.stat(name)
            except OSError:
                return
            if max(st.st_mtime_ns, st.st_ctime_ns) >= started - SETTLED_NS:
                return
            stamps.append((name, _stamp(st)))
        with self._lock:
            if key in self._entries:
                if len(self._recent) >= 4 * self.max_entries:
                    self._recent.clear()
                self._recent[call] = (key, tuple(stamps))

    def _put(self, key: tuple, entry: CachedCode):
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._chars -= old.chars
            if entry.chars > self.max_chars:
                return
            self._entries[key] = entry
            self._chars += entry.chars
            dropped = False
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, gone = self._entries.popitem(last=False)
                self._chars -= gone.chars
                dropped = True
            if dropped:  # calls that led to a dropped entry: forgotten with it (they may hold its text)
                self._recent = {c: v for c, v in self._recent.items() if v[0] in self._entries}

    def clear(self):
        """Forget every entry (and the hit and miss counts)."""
        with self._lock:
            self._entries.clear()
            self._recent.clear()
            self._chars = self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


code_cache = CodeCache()


def _call_key(source_or_path, model: str | None, limits: Limits | None) -> tuple | None:
    """What a call names, as given: a path (relative ones with the working directory) or text (with it too,
    as its imports are read from there), and the bounds in force. None for what is not kept so (a `SpecText`,
    bytes paths, a working directory that is gone)."""
    if isinstance(source_or_path, str):
        name = str(source_or_path)  # a subclass of str as the text it holds
        text = "{" in name or "\n" in name
    elif isinstance(source_or_path, os.PathLike):
        name, text = os.fspath(source_or_path), False
        if not isinstance(name, str):
            return None
    else:
        return None
    try:
        where = None if not text and name.startswith("/") else os.getcwd()
    except OSError:
        return None
    return (text, name, where, model, None if limits is None else _limits_key(limits), max_file_bytes())


def _stamp(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _unchanged(stamps: tuple) -> bool:
    for name, stamp in stamps:
        try:
            st = os.stat(name)
        except OSError:
            return False
        if (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != stamp:
            return False
    return True


def _read(source_or_path) -> tuple[str, str | None, bytes]:
    """(text, path, its UTF-8 bytes): `read_spec`'s result, without loading the pipeline for a readable path or
    for plain text (which `read_spec` then refuses, or not, exactly as before)."""
    if isinstance(source_or_path, str) and ("{" in source_or_path or "\n" in source_or_path):
        if len(source_or_path) * 4 <= max_file_bytes():  # surely within the bound: no need to count its bytes
            text = str(source_or_path)
            return text, None, text.encode("utf-8", "surrogatepass")
    elif isinstance(source_or_path, (str, os.PathLike)) and isinstance(os.fspath(source_or_path), str):
        path = os.fspath(source_or_path)
        data = diskcache.spec_bytes(path)
        try:
            return data.decode("utf-8"), path, data
        except UnicodeDecodeError:
            pass  # read_spec's error says where
    from .pipeline import read_spec

    text, path = read_spec(source_or_path)
    return text, path, text.encode("utf-8", "surrogatepass")


def _limits_key(limits: Limits | None) -> tuple | None:
    """The limits as a key: None for the defaults, however given (a caller that gives limits has loaded them);
    the import roots as the real folders they name now (a relative one names another from another folder)."""
    if limits is None:
        return None
    from .values import Limits

    if limits.import_roots:
        limits = dataclasses.replace(limits, import_roots=tuple(os.path.realpath(r) for r in limits.import_roots))
    spelled = dataclasses.astuple(limits)
    return None if spelled == dataclasses.astuple(Limits()) else spelled


def _keep_on_disk(entry: CachedCode, data: bytes, key: tuple, path: str | None, model: str | None,
                  text: str) -> None:
    """Write ``entry`` to the disk cache; not a spec whose train section reads data files, which elaboration
    checks (there, with their columns) and a served entry would not."""
    train = entry.graph.train if entry.graph is not None else None
    if train is not None:
        from .data import sources

        if any(src.kind == "file" for src in sources(train)):
            return
    diskcache.store(diskcache.key(data, path, key[2], model, key[4]), entry.model, entry.code, entry.imports,
                    entry.warnings, entry.unregistered, text)


def parse_spec(source_or_path) -> ir.SpecFile:
    """Parse a spec (text or path) into the validated surface IR.

    >>> parse_spec("model M(x: [B, 3]) { fc = Linear(_, 2) }").models()[0].name
    'M'
    """
    from .pipeline import parse_source

    return parse_source(source_or_path)


def elaborate_spec(source_or_path, *, model: str | None = None, limits: Limits | None = None) -> ModelGraph:
    """The model graph of a spec: every module, argument and shape, before any code or tensor exists.

    >>> elaborate_spec("model M(x: [B, 784]) { fc = Linear(_, 10) }").root.children[0].args["in_features"]
    784
    """
    from .pipeline import load_graph

    return load_graph(source_or_path, model=model, limits=limits)


def generate_code(source_or_path, *, model: str | None = None, explain: bool = False,
                  limits: Limits | None = None) -> str:
    """The PyTorch source a spec stands for.

    >>> code = generate_code("model M(x: [B, 4]) { fc = Linear(_, 2) }")
    >>> print(next(line for line in code.splitlines() if "nn.Linear" in line))
            self.fc = nn.Linear(4, 2)  # [B, 2]
    """
    from .codegen import generate_code as generate
    from .errors import issue
    from .model import ModelGraph

    if isinstance(source_or_path, ModelGraph):
        return generate(source_or_path, explain=explain)
    code, graph = code_cache.compile(source_or_path, model=model, limits=limits)
    issue(graph.warnings)
    return generate(graph, explain=True) if explain else code


def generate_training_script(source_or_path, *, model: str | None = None, distributed: bool = False,
                             limits: Limits | None = None) -> str:
    """The standalone training script of a spec's train section (what ``codegen --train`` prints): the model,
    its data, loss, optimizer and loop, needing torch alone. ``distributed=True``: one that also trains under
    torchrun with DistributedDataParallel.

    >>> print(generate_training_script("specs/linear_regression.nnspec").splitlines()[-1])  # doctest: +SKIP
        main()
    """
    from .pipeline import pausing_gc

    return pausing_gc(_training_script)(source_or_path, model=model, distributed=distributed, limits=limits)


def _training_script(source_or_path, *, model: str | None, distributed: bool, limits: Limits | None) -> str:
    from .errors import SpecError, issue
    from .pipeline import load_graph
    from .trainscript import training_script

    graph = load_graph(source_or_path, model=model, limits=limits)
    if graph.train is None:
        raise SpecError(f"{graph.name} has no train section", path=graph.path,
                        hint=f"add `train {graph.name} {{ loss = ...; optimizer = ...; data = ... }}`")
    issue(graph.warnings)
    return training_script(graph, distributed=distributed)


def compile_spec(source_or_path, *, model: str | None = None, device=None, dtype=None, seed: int | None = None,
                 limits: Limits | None = None):
    """Compile a spec into a ready ``torch.nn.Module``.

    The module is an instance of the very class `generate_code` prints. A
    spec compiled before (same text, path, model, limits, unchanged imports)
    skips the front end: its code comes from `code_cache`, or in a new
    process from the disk cache (modelspec/diskcache.py; ``MODELSPEC_NO_CACHE=1``
    turns it off), and its class is the one made the first time.

    >>> net = compile_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }", seed=0)
    >>> net
    M(
      (fc): Linear(in_features=4, out_features=2, bias=True)
    )
    """
    if not isinstance(source_or_path, (str, os.PathLike)):
        from .model import ModelGraph

        if isinstance(source_or_path, ModelGraph):
            from .build import build_module
            from .codegen import generate_code as generate

            return build_module(generate(source_or_path), source_or_path, device=device, dtype=dtype, seed=seed)
    entry = code_cache.entry(source_or_path, model=model, limits=limits, graph=False, disk=True)
    if entry.warnings:
        from .errors import issue

        issue(entry.warnings)
    if entry.unregistered:
        stays_put(entry.model, entry.unregistered, entry.path, device, dtype)
    return construct(entry.model_class, device=device, dtype=dtype, seed=seed)


def example_inputs(source_or_path, *, batch: int = 2, model: str | None = None, device=None, dtype=None,
                   limits: Limits | None = None):
    """Random tensors of the declared input shapes (a tuple, one per input).

    The first input's leading symbolic dim is ``batch``; other symbols take
    their declared example size (``T=128``) or 8. Inputs and forward
    activations larger than ``limits.max_activation_bytes`` at ``batch`` are
    refused (`SpecLimitError`) before any tensor is made.

    >>> [tuple(t.shape) for t in example_inputs("model M(x: [B, 4]) { fc = Linear(_, 2) }", batch=3)]
    [(3, 4)]
    """
    from .build import make_inputs
    from .model import ModelGraph
    from .pipeline import check_batch_memory

    if isinstance(source_or_path, ModelGraph):
        graph = source_or_path
    else:
        _, graph = code_cache.compile(source_or_path, model=model, limits=limits)
    spec_text = source_or_path if isinstance(source_or_path, str) and graph.path is None else None
    check_batch_memory(graph, batch, limits, spec_text)  # refused before any tensor is made
    return make_inputs(graph, batch=batch, device=device, dtype=dtype)


def from_torch(module, inputs: str | None = None, *, strict: bool = False, name: str | None = None,
               problems: list | None = None) -> str:
    """The spec of an ``nn.Module``, as ``modelspec from-torch`` writes it: one block per class, the module's
    names (so its state_dict loads into the spec's model), ``_`` for sizes that follow from the input.
    ``inputs`` declares forward's inputs as a model does (None: from the first layer that fixes the input's
    size, as the command does).

    What a spec cannot say is a ``TODO(...)`` placeholder naming the Python line (a warning, or added to
    ``problems``); with ``strict``, a `modelspec.fromtorch.FromTorchError`.

    >>> import torch.nn as nn
    >>> print(from_torch(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), "x: [B, 4]", name="Net"), end="")
    model Net(x: [B, 4]) {
        "0" = Linear(_, 8)
        "1" = ReLU()
    }
    """
    from .fromtorch import from_torch as convert

    return convert(module, inputs, strict=strict, name=name, problems=problems)
