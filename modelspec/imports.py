"""Imports of other spec files: `import "blocks.nnspec"`, `from "blocks.nnspec" import BasicBlock`.

Paths are relative to the importing file. Only ``.nnspec`` files are read,
never Python; a cycle, a missing file or a missing name is a `SpecImportError`
at the import statement. Blocks and consts are imported (models are not).

The pipeline resolves a spec's imports before it elaborates the spec, and
hands the result to `elaborate(..., imported=...)`: elaboration reads no file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .elaborate import Elaborator, spec_identifiers
from .errors import SpecError, SpecImportError, did_you_mean
from .parse import parse
from .shapes import Val


@dataclass
class Imported:
    """What a spec's imports bring in: blocks and consts, with where each block came from."""

    blocks: dict[str, ir.Block] = field(default_factory=dict)
    consts: dict[str, Val] = field(default_factory=dict)
    const_lines: list[tuple[str, object]] = field(default_factory=list)  # module-level constants: (name, expr)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # block name -> (path, text)
    identifiers: set[str] = field(default_factory=set)  # every name the imported files write


def resolve_imports(spec: ir.SpecFile, text: str | None, read: Callable[[Path], tuple[str, str | None]],
                    _stack: tuple[str, ...] = ()) -> Imported:
    """Load every file ``spec`` imports (transitively) and collect what it names.

    ``read(path) -> (text, path)`` reads one file; the pipeline passes its own
    `read_spec`, so an imported file is bounded and decoded as the first one was.
    """
    out = Imported()
    here = os.path.dirname(os.path.abspath(spec.path)) if spec.path else os.getcwd()
    stack = _stack or ((os.path.abspath(spec.path),) if spec.path else ())
    for item in spec.items:
        if not isinstance(item, ir.Import):
            continue
        try:
            if not item.path.endswith(".nnspec"):
                raise SpecImportError(f"cannot import {item.path!r}: imports read only .nnspec files", item.span,
                                      hint='name a spec file, e.g. import "blocks.nnspec"')
            target = os.path.normpath(os.path.join(here, item.path))
            if target in stack:
                chain = " -> ".join(os.path.basename(p) for p in stack + (target,))
                raise SpecImportError(f"import cycle: {chain}", item.span,
                                      hint="move the shared blocks to a third file")
            if not os.path.isfile(target):
                raise SpecImportError(f"cannot import {item.path!r}: no such file", item.span,
                                      hint="paths are relative to the importing file")
        except SpecError as err:
            raise err.locate(spec.path, text) from None
        # shown as the user would write it: beside the importing file's own path
        shown = os.path.normpath(os.path.join(os.path.dirname(spec.path), item.path)) if spec.path else target
        # a Path, so that a file name with a brace or newline is never taken for spec text
        sub_text, sub_path = read(Path(shown if not os.path.isabs(item.path) else target))
        sub_spec = parse(sub_text, sub_path)
        nested = resolve_imports(sub_spec, sub_text, read, stack + (target,))
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
