"""Imports of other spec files: `import "blocks.nnspec"`, `from "blocks.nnspec" import BasicBlock`.

Paths are relative to the importing file. Only ``.nnspec`` files are read,
never Python; a cycle, a missing file or a missing name is a `SpecImportError`
at the import statement. Blocks and consts are imported (models are not).

An import reads nothing but a spec, and nothing outside the spec's own tree,
so that a spec from someone else cannot make modelspec show (in an error's
quoted line) or hang on a file it was never meant to read: the path must be
relative; after symlinks (`os.path.realpath`) it must name a regular
``.nnspec`` file, not under /proc, /sys or /dev, and inside one of the
*roots*: the real folder of the first file (the working directory for spec
text) and any folder given as ``Limits(import_roots=...)`` or
``--import-root``. Every file imported, however deep, answers to those same
roots, so a file may import a sibling through ``..`` while the target stays
inside the tree.

The pipeline resolves a spec's imports before it elaborates the spec, and
hands the result to `elaborate(..., imported=...)`: elaboration reads no file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .elaborate import Elaborator, spec_identifiers
from .errors import SpecError, SpecImportError, did_you_mean
from .files import not_a_spec_file, system_dir  # noqa: F401  (runner and exporting take them from here)
from .parse import parse
from .shapes import Val

OUTSIDE_HINT = ("paths are relative to the importing file, inside its folder's tree; to read specs in another "
                "folder, add it with --import-root DIR (Limits(import_roots=...) in Python)")


def import_roots(path: str | None, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The real folders imports may read under: the one ``path`` is in (the working directory without a
    path), then ``extra`` (relative ones to the working directory).

    The first is the real path of the folder the imports are resolved from
    (where a symlinked first file stands, not where it points), so that
    ``import "blocks.nnspec"`` beside it is inside.
    """
    own = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    return tuple(os.path.normcase(os.path.realpath(r)) for r in (own, *extra))


def _inside(real: str, roots: Sequence[str]) -> bool:
    real = os.path.normcase(real)
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _check_target(item: ir.Import, real: str, roots: Sequence[str]) -> os.stat_result:
    """Refuse an import whose real target is not a regular .nnspec file inside the roots; else its lstat.

    The lstat of the real path (no symlink left in it) is what the read must
    find when it opens the file: a link swapped in between is refused then.
    The place is checked before the file's existence, so that an import
    cannot tell which files exist outside the roots.
    """
    where = system_dir(real)
    if where is not None:
        raise SpecImportError(f"cannot import {item.path!r}: it leads into {where}, which holds no specs",
                              item.span, hint="import a .nnspec file beside the spec or below it")
    if not real.endswith(".nnspec"):
        raise SpecImportError(f"cannot import {item.path!r}: it is a link to a file that is not a .nnspec file",
                              item.span, hint="imports read only .nnspec files; link to the spec itself")
    if not _inside(real, roots):
        raise SpecImportError(f"cannot import {item.path!r}: it is outside the folder of the spec being compiled",
                              item.span, hint=OUTSIDE_HINT)
    try:
        st = os.stat(real, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        raise SpecImportError(f"cannot import {item.path!r}: no such file", item.span,
                              hint="paths are relative to the importing file") from None
    except OSError as exc:
        raise SpecImportError(f"cannot import {item.path!r}: cannot read the file: {exc.strerror}", item.span,
                              hint="check the file's permissions") from None
    kind = not_a_spec_file(st)
    if kind is not None:
        raise SpecImportError(f"cannot import {item.path!r}: it is {kind}, not a spec file", item.span,
                              hint='name a .nnspec file, e.g. import "blocks.nnspec"')
    return st


@dataclass
class Imported:
    """What a spec's imports bring in: blocks and consts, with where each block came from."""

    blocks: dict[str, ir.Block] = field(default_factory=dict)
    consts: dict[str, Val] = field(default_factory=dict)
    const_lines: list[tuple[str, object]] = field(default_factory=list)  # module-level constants: (name, expr)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # block name -> (path, text)
    identifiers: set[str] = field(default_factory=set)  # every name the imported files write


def resolve_imports(spec: ir.SpecFile, text: str | None, read: Callable[..., tuple[str, str | None]],
                    roots: Sequence[str] = (), *, _stack: tuple[str, ...] = ()) -> Imported:
    """Load every file ``spec`` imports (transitively) and collect what it names.

    ``read(path, same_file=st) -> (text, path)`` reads one file, refusing it
    unless it is the file whose `os.stat_result` is ``st`` (the one checked
    here); the pipeline passes its own `read_spec`, so an imported file is
    bounded and decoded as the first one was. ``roots`` are the folders
    imports may read under besides the first file's own (``Limits.import_roots``);
    nested calls get the whole list, already real.
    """
    out = Imported()
    here = os.path.dirname(os.path.abspath(spec.path)) if spec.path else os.getcwd()
    if not _stack:
        roots = import_roots(spec.path, roots)
    # real paths: a link (or a linked folder) back to a file being imported is still a cycle
    stack = _stack or ((os.path.realpath(spec.path),) if spec.path else ())
    for item in spec.items:
        if not isinstance(item, ir.Import):
            continue
        try:
            if not item.path.endswith(".nnspec"):
                raise SpecImportError(f"cannot import {item.path!r}: imports read only .nnspec files", item.span,
                                      hint='name a spec file, e.g. import "blocks.nnspec"')
            if os.path.isabs(item.path):
                raise SpecImportError(f"cannot import {item.path!r}: an import path must be relative", item.span,
                                      hint=OUTSIDE_HINT)
            target = os.path.normpath(os.path.join(here, item.path))
            real = os.path.realpath(target)
            if real in stack:
                chain = " -> ".join(os.path.basename(p) for p in stack + (real,))
                raise SpecImportError(f"import cycle: {chain}", item.span,
                                      hint="move the shared blocks to a third file")
            checked = _check_target(item, real, roots)
        except SpecError as err:
            raise err.locate(spec.path, text) from None
        # shown as the user would write it: beside the importing file's own path
        shown = os.path.normpath(os.path.join(os.path.dirname(spec.path), item.path)) if spec.path else target
        try:
            # a Path, so that a file name with a brace or newline is never taken for spec text
            sub_text, sub_path = read(Path(shown), same_file=checked)
        except SpecError as err:
            if err.span is not None:  # located in the imported file (a byte that is not UTF-8): a spec, shown
                raise
            # about the file as a whole (too big, unreadable, swapped): said at the import that named it
            raise type(err)(f"cannot import {item.path!r}: {err.message}", item.span,
                            hint=err.hint).locate(spec.path, text) from None
        sub_spec = parse(sub_text, sub_path)
        nested = resolve_imports(sub_spec, sub_text, read, roots, _stack=stack + (real,))
        try:
            sub = Elaborator(sub_spec, imported=nested)
        except SpecError as err:
            raise err.locate(sub_path, sub_text) from None
        own_blocks = {b.name: b for b in sub_spec.blocks()}
        own_consts = {c.name for c in sub_spec.items if isinstance(c, ir.Const)}
        wanted = item.names if item.names is not None else list(own_blocks) + sorted(own_consts)
        for name in item.names or []:
            if name not in own_blocks and name not in own_consts:
                models = [m.name for m in sub_spec.models()]
                why = "is a model; only blocks and consts can be imported" if name in models else "is not defined there"
                defined = ", ".join(list(own_blocks) + sorted(own_consts)) or "none"
                err = SpecImportError(f"cannot import {name!r} from {item.path!r}: it {why}", item.span,
                                      hint=did_you_mean(name, list(own_blocks) + sorted(own_consts))
                                      or (f"make {name} a block there to share its layers" if name in models
                                          else f"it defines {defined}"))
                raise err.locate(spec.path, text)
        # everything the imported file itself relies on comes along, so its blocks work here
        _merge(out, nested)
        out.identifiers |= spec_identifiers(sub_spec)
        for name, block in sub.state.blocks.items():
            if name in own_blocks and name not in wanted:
                continue
            out.blocks.setdefault(name, block)
            out.sources.setdefault(name, nested.sources.get(name, (sub_path, sub_text)))
        for name, val in sub.state.consts.items():
            if name in own_consts and name not in wanted:
                continue
            out.consts.setdefault(name, val)
        for line in sub.state.const_order:
            if line[0] in out.consts and line not in out.const_lines:
                out.const_lines.append(line)
    return out


def _merge(out: Imported, other: Imported):
    for name, block in other.blocks.items():
        out.blocks.setdefault(name, block)
    out.consts.update({k: v for k, v in other.consts.items() if k not in out.consts})
    out.sources.update({k: v for k, v in other.sources.items() if k not in out.sources})
    out.const_lines += [c for c in other.const_lines if c not in out.const_lines]
    out.identifiers |= other.identifiers


def import_of(spec: ir.SpecFile, importer: str | None, path: str) -> ir.Import | None:
    """The import of ``spec`` (the file ``importer``; None for text: the working directory) that reads ``path``
    itself, or else its first import, which may reach ``path`` through another file: where an error inside
    an imported file is pointed at from the importing one."""
    imports = [i for i in spec.items if isinstance(i, ir.Import)]
    here = os.path.dirname(os.path.abspath(importer)) if importer is not None else os.getcwd()
    exact = [i for i in imports if os.path.normpath(os.path.join(here, i.path)) == os.path.abspath(path)]
    return (exact or imports or [None])[0]
