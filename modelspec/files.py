"""Reading a spec file safely, with the standard library alone.

`read_file` is how every spec file is read, the first and every import: the
pipeline's `read_spec` calls it, and so does the compiled-code cache's
look-up in a fresh process (modelspec/diskcache.py), which must not import
the front end (lark, pydantic) to find that it needs none of it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys

MAX_FILE_BYTES = 5_000_000  # the default bound; modelspec.pipeline.MAX_FILE_BYTES is the one in force
SIZE_HINT = "split it into files that import one another, or raise modelspec.pipeline.MAX_FILE_BYTES"
# never blocks on open (a FIFO swapped in after the check); no O_NOFOLLOW: a link to a spec is allowed
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)



def max_file_bytes() -> int:
    """The bound in force: `modelspec.pipeline.MAX_FILE_BYTES` once the pipeline is loaded (a program, or a test,
    may change it there), else the default."""
    return getattr(sys.modules.get("modelspec.pipeline"), "MAX_FILE_BYTES", MAX_FILE_BYTES)


SYSTEM_DIRS = ("/proc", "/sys", "/dev")  # kernel views and devices: a spec is never there, a secret may be


def system_dir(real: str) -> str | None:
    """The folder of `SYSTEM_DIRS` that the real path ``real`` lies in, else None.

    /proc files report a regular file of size 0 (/proc/self/environ holds the
    environment), so their type does not tell them apart: their place does.

    >>> system_dir("/proc/self/environ"), system_dir("/home/me/proc/a.nnspec")
    ('/proc', None)
    """
    return next((d for d in SYSTEM_DIRS if real == d or real.startswith(d + "/")), None)


def not_a_spec_file(st: os.stat_result) -> str | None:
    """What a file that is not a regular file is ("a directory", "a FIFO (named pipe)", ...), else None.

    Only a regular file can hold a spec; anything else may never end (/dev/zero)
    or block the reader forever (a FIFO), so it is refused before it is opened.
    """
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):  # where a real path still ends in a link: a loop of links, or one swapped meanwhile
        return "a symlink that leads to no file"
    return "an unusual file"


def read_file(path: str, same_file: os.stat_result | None = None, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; `read_spec` (pipeline) says what is refused.

    The type is checked by name first, so that nothing else is ever opened
    (opening a device may do something); the open does not block (a FIFO
    swapped in meanwhile), and the type is checked again on what was opened.
    Symlinks are followed: a link to a spec is fine, and the caller has
    checked where an import's links lead.
    """
    try:
        kind = not_a_spec_file(os.stat(path))
        if kind is not None:
            raise _refused(f"this is {kind}, not a spec file", path, "name a .nnspec file")
        where = system_dir(os.path.realpath(path))
        if where is not None:
            raise _refused(f"this is a file under {where}, not a spec file", path,
                           f"{where} holds the system's files, never specs; name a .nnspec file")
        fd = os.open(path, READ_FLAGS)
        try:
            st = os.fstat(fd)
            kind = not_a_spec_file(st)
            if kind is not None:
                raise _refused(f"this is {kind}, not a spec file", path, "name a .nnspec file")
            if same_file is not None and not os.path.samestat(st, same_file):
                raise _refused("the file was replaced while it was being read", path,
                               "compile again once nothing is changing the spec's files")
            if st.st_size > max_bytes:  # the common case of a big file, told without reading it
                raise _too_big(f"the file is {st.st_size:,} bytes, over the limit of {max_bytes:,}", path)
            chunks, left = [], max_bytes + 1  # one byte more than allowed tells a file that grew
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        raise _refused("no such file", path, "check the path and its spelling") from None
    except OSError as exc:
        raise _refused(f"cannot read the file: {exc.strerror}", path, "check the file's permissions") from None
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise _too_big(f"the file is over the limit of {max_bytes:,} bytes", path)
    return data


def _refused(message: str, path: str, hint: str) -> Exception:
    from .errors import SpecImportError  # loaded only for an error: reading needs no pydantic

    return SpecImportError(message, path=path, hint=hint)


def _too_big(message: str, path: str) -> Exception:
    from .errors import SpecLimitError

    return SpecLimitError(message, path=path, hint=SIZE_HINT)


def text_digest(text: str) -> str:
    """sha256 of a spec's text, as UTF-8 (a lone surrogate in text handed in as a str passes through)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
