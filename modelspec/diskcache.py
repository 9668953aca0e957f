"""The compiled-code cache on disk: a spec compiled once is, in a new process, its code read back.

`compile_spec` in a fresh process would otherwise import the front end
(lark, pydantic, the catalog: ~150 ms) and parse and elaborate again, only to
print the code it printed last time. Each entry is one JSON file holding that
code, named by a digest of everything the code depends on: the spec's bytes,
its path and folder, the model chosen, the limits, modelspec's version and
its own source files' sizes and times, torch's and Python's versions. Its
imports' digests are in the entry, and every imported file is read and
hashed again before the entry is used, so a stale entry is never used: a
changed spec has another name, a changed import fails its digest.

The folder must be the user's own: ``$MODELSPEC_CACHE_DIR``, else
``$XDG_CACHE_HOME/modelspec/compiled``, else ``~/.cache/modelspec/compiled``;
``MODELSPEC_NO_CACHE=1`` turns the cache off. The code it holds is run, so
whoever can write there could run code in the user's process: the folder is
made with mode 0700 and used only while it is a real folder (not a link),
owned by the user and closed to everyone else; an entry only while it is a
regular file owned by the user that no one else may write. Anything else,
and any error of the file system, and the cache is passed by: the spec is
compiled as if there were none. Nothing is unpickled: an entry is text.

An entry keeps the model's warnings (issued again on each compile, as they
are when the spec is compiled) and its plain tensors (which a move to
another device refuses) as data; the model graph itself is not kept.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import sys

from .files import max_file_bytes, read_file
from .version import __version__

FORMAT = 1  # the entries' layout; another number is another key
MAX_ENTRIES = 512  # more, and the least recently written quarter is removed
_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_ENTRY = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_ENTRY = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0))


def directory() -> str | None:
    """Where the cache is, from the environment (None: turned off)."""
    if os.environ.get("MODELSPEC_NO_CACHE"):
        return None
    where = os.environ.get("MODELSPEC_CACHE_DIR")
    if where:
        return os.path.abspath(where)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "modelspec", "compiled")


def spec_bytes(path: str) -> bytes:
    """The bytes of the spec file ``path``, read under the bound in force (a `SpecError` for what is refused)."""
    return read_file(path, None, max_file_bytes())


def key(data: bytes, path: str | None, where: str, model: str | None, limits: tuple | None) -> str | None:
    """The entry's name: a digest of the spec's bytes and everything else its code depends on (None: torch's
    version cannot be told, and the cache is passed by)."""
    torch_version = _torch_version()
    if torch_version is None:
        return None
    head = repr((FORMAT, __version__, _own_sources(), torch_version, sys.version_info[:3], path, where, model,
                 limits, max_file_bytes()))
    return hashlib.sha256(head.encode("utf-8", "surrogatepass") + b"\0" + data).hexdigest()


@functools.cache
def _own_sources() -> tuple:
    """modelspec's own files (every .py of the package, the layer catalog's too, the grammar and its tables, in
    the package or beside it in a checkout), each with its size and time: an edited checkout is another key, as
    a new version is. Read once per process, with `os.scandir` (a new process pays it before its first build:
    a walk joining and relativising each path took three times as long)."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = []

    def visit(folder: str, prefix: str):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        visit(entry.path, prefix + entry.name + "/")
                elif entry.name.endswith((".py", ".lark", ".json")):
                    st = entry.stat()
                    found.append((prefix + entry.name, st.st_size, st.st_mtime_ns))
            except OSError:
                continue

    visit(here, "")
    visit(os.path.join(os.path.dirname(here), "grammar"), "")
    return tuple(found)


def _torch_version() -> str | None:
    """torch's version, without importing torch (a spec with an error is told before torch loads): from
    torch/version.py where torch is installed. None: no torch, or no way to tell (the cache is then passed by)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return getattr(torch, "__version__", None)
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            with open(os.path.join(folder, "version.py"), encoding="utf-8") as f:
                text = f.read(4096)
        except OSError:
            continue
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if match:
            return match.group(1)
    return None


def load(digest: str) -> dict | None:
    """The entry named ``digest``, if the folder and the file pass the checks above and its imports are
    unchanged; else None (and None for a ``digest`` of None)."""
    if digest is None:
        return None
    fd = _private_dir(create=False)
    if fd is None:
        return None
    try:
        entry = _read_entry(fd, digest)
    finally:
        os.close(fd)
    if entry is None or not imports_unchanged(entry["imports"]):
        return None
    return entry


def store(digest: str, model: str, code: str, imports, warnings=(), unregistered=(), text: str = "") -> None:
    """Write an entry (whole or not at all: a new file renamed into place). ``warnings`` (`SpecWarning`s) and
    ``unregistered`` (the model graph's plain tensors) are kept as data; ``text`` is the spec's, which a warning
    located in it shows. A ``digest`` of None writes nothing."""
    if digest is None:
        return
    fd = _private_dir(create=True)
    if fd is None:
        return
    try:
        data = json.dumps({"format": FORMAT, "key": digest, "model": model, "code": code,
                           "imports": [list(pair) for pair in imports],
                           "warnings": [_warning_data(w, text) for w in warnings],
                           "unregistered": [[name, _span_data(span)] for name, span in unregistered]},
                          ).encode("utf-8", "surrogatepass")
        temp = f".{digest}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        out = os.open(temp, _CREATE_ENTRY, 0o600, dir_fd=fd)
        try:
            with os.fdopen(out, "wb", closefd=False) as f:
                f.write(data)
        finally:
            os.close(out)
        os.replace(temp, f"{digest}.json", src_dir_fd=fd, dst_dir_fd=fd)
        _prune(fd)
    except OSError:
        pass  # a full disk or a read-only folder: the cache is passed by
    finally:
        os.close(fd)


def warnings_of(entry: dict, text: str) -> tuple:
    """The `SpecWarning`s an entry keeps, as elaboration made them (loads modelspec.errors: only for a spec
    that has some)."""
    if not entry["warnings"]:
        return ()
    from .errors import SpecWarning

    return tuple(SpecWarning(w["message"], _span(w["span"]), name=w["name"], hint=w["hint"], path=w["path"],
                             source=text if w["source"] is True else w["source"]) for w in entry["warnings"])


def unregistered_of(entry: dict) -> tuple:
    """The (name, span) of each plain tensor of the entry's model."""
    return tuple((name, _span(span)) for name, span in entry["unregistered"])


def _warning_data(w, text: str) -> dict:
    return {"message": w.message, "name": w.name, "hint": w.hint, "path": w.path, "span": _span_data(w.span),
            "source": True if w.source == text else w.source}  # True: the spec's own text


def _span_data(span) -> list | None:
    return None if span is None else [span.line, span.column, span.end_line, span.end_column]


def _span(data):
    if data is None:
        return None
    from .errors import Span

    line, column, end_line, end_column = data
    return Span(line=line, column=column, end_line=end_line, end_column=end_column)


def _private_dir(*, create: bool) -> int | None:
    """An open descriptor of the cache folder if it is the user's own and closed to others, else None."""
    where = directory()
    if where is None:
        return None
    if create:
        try:
            os.makedirs(where, mode=0o700, exist_ok=True)
        except OSError:
            return None
    try:
        fd = os.open(where, _OPEN_DIR)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        st = None
    if st is None or not stat.S_ISDIR(st.st_mode) or st.st_uid != _uid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else -1


def _read_entry(fd: int, digest: str) -> dict | None:
    try:
        f = os.open(f"{digest}.json", _OPEN_ENTRY, dir_fd=fd)
    except OSError:
        return None
    try:
        st = os.fstat(f)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != _uid() or st.st_mode & 0o022:
            return None
        with os.fdopen(f, "rb", closefd=False) as file:
            data = file.read()
    except OSError:
        return None
    finally:
        os.close(f)
    try:
        entry = json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):  # not JSON, or nested past what the decoder recurses through
        return None
    if not (isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("key") == digest
            and isinstance(entry.get("model"), str) and entry["model"].isidentifier()
            and isinstance(entry.get("code"), str)
            and isinstance(entry.get("imports"), list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
                    for p in entry["imports"])
            and isinstance(entry.get("warnings"), list) and all(_is_warning(w) for w in entry["warnings"])
            and isinstance(entry.get("unregistered"), list)
            and all(isinstance(u, list) and len(u) == 2 and isinstance(u[0], str) and _is_span(u[1])
                    for u in entry["unregistered"])):
        return None
    return entry


def _is_warning(w) -> bool:
    from .errors import WARNINGS  # only for an entry that has warnings, which need modelspec.errors anyway

    return (isinstance(w, dict) and set(w) == {"message", "name", "hint", "path", "span", "source"}
            and isinstance(w["message"], str) and isinstance(w["name"], str) and w["name"] in WARNINGS
            and all(w[k] is None or isinstance(w[k], str) for k in ("hint", "path"))
            and (w["source"] is True or w["source"] is None or isinstance(w["source"], str)) and _is_span(w["span"]))


def _is_span(data) -> bool:
    return data is None or (isinstance(data, list) and len(data) == 4
                            and all(type(n) is int and n >= 0 for n in data))


def imports_unchanged(imports) -> bool:
    """Whether every imported file still reads as it did when the entry was written."""
    for path, digest in imports:
        try:
            data = spec_bytes(path)
        except Exception as exc:
            from .errors import SpecError  # loaded by now: read_file raises nothing else

            if not isinstance(exc, SpecError):
                raise
            return False  # a file gone or refused has changed: the compile that follows says how
        if hashlib.sha256(data).hexdigest() != digest:  # text_digest of the text these bytes are
            return False
    return True


_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
_TEMP = re.compile(r"\.[0-9a-f]{64}\.\d+\.[0-9a-f]{8}\.tmp")


def _prune(fd: int) -> None:
    """Keep at most MAX_ENTRIES entries, and drop what a crashed writer left; nothing but the cache's own names
    is touched (the folder may be one the user named)."""
    import time

    names = os.listdir(fd)
    entries = [n for n in names if _ENTRY.fullmatch(n)]
    old = time.time_ns() - 3600 * 10**9
    for name in (n for n in names if _TEMP.fullmatch(n)):
        try:
            if os.stat(name, dir_fd=fd, follow_symlinks=False).st_mtime_ns < old:
                os.unlink(name, dir_fd=fd)
        except OSError:
            pass
    if len(entries) <= MAX_ENTRIES:
        return
    aged = sorted(entries, key=lambda n: os.stat(n, dir_fd=fd, follow_symlinks=False).st_mtime_ns)
    for name in aged[: len(entries) - MAX_ENTRIES * 3 // 4]:
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass
