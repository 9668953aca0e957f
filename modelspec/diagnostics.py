"""Diagnostics as data: every error and warning of a spec, located, with its stable code.

What `modelspec check --format json|sarif`, the language server and the web
page report. A `Diagnostic` is a `SpecError` or `SpecWarning` flattened into
plain values: the file, the range (1-based lines and columns, counted in
characters, the end exclusive), the severity, the stable code (`CODES`, and
docs/errors.md, say what each means), the message and the hint.

    >>> found = diagnose("model M(x: [B, 4]) {\\n  fc = Linear(3, 2)\\n}")
    >>> [(d.code, d.line, d.column, d.end_column, d.severity) for d in found]
    [('MS401', 2, 15, 16, 'error')]
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from .errors import CODES, MAX_ERRORS, SpecError, WarningPolicy
from .version import __version__

DOCS = "https://github.com/modelspec/modelspec/blob/main/docs/errors.md"


def doc_url(code: str) -> str:
    """Where docs/errors.md explains ``code`` (each heading there has its anchor, ``<a id="ms401">``)."""
    return f"{DOCS}#{code.lower()}"


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning, located in its file (``path`` None for spec text given without one)."""

    path: str | None
    line: int
    column: int
    end_line: int
    end_column: int
    severity: str  # "error" or "warning" (a warning that -W makes an error is an "error")
    code: str  # MS401, MS807, ...: one of CODES
    name: str  # what the code stands for: "shape", "unused-child", ...
    message: str
    hint: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def from_error(err: SpecError) -> Diagnostic:
    """The diagnostic of one error or warning; one without a place points at the start of its file."""
    span = err.span
    line, column = (span.line, span.column) if span is not None else (1, 1)
    end_line, end_column = (span.end_line, span.end_column) if span is not None else (1, 1)
    if (end_line, end_column) <= (line, column):
        end_line, end_column = line, column + 1  # at least one character, so that an editor shows it
    warning = err.kind == "warning"
    return Diagnostic(path=err.path, line=line, column=column, end_line=end_line, end_column=end_column,
                      severity="error" if not warning or getattr(err, "as_error", False) else "warning",
                      code=err.code, name=CODES[err.code][0],
                      message=err.message, hint=err.hint)


@dataclass(frozen=True)
class Checked:
    """What `check` finds in one spec: its diagnostics, and the models that elaborated (a file may have both:
    a model that fails beside one that passes)."""

    diagnostics: list[Diagnostic]
    models: list  # ModelGraph
    truncated: bool = False  # it stopped at errors.MAX_ERRORS errors: there may be more

    def models_json(self) -> list[dict]:
        return [{"name": g.name, "inputs": {name: str(t) for name, t in g.inputs},
                 "outputs": [str(t) for t in g.outputs], "params": g.total_params, "trains": g.train is not None}
                for g in self.models]


def diagnose(source_or_path, *, model: str | None = None, limits=None,
             policy: WarningPolicy | None = None) -> list[Diagnostic]:
    """Every error and warning `modelspec check` finds in a spec (text, a path or a `SpecText`): the errors
    of each model and, past a syntax error, of the rest of the file; the warnings of every model that
    elaborated, as ``policy`` (the ``-W`` options) shows them. In file order, the spec's own file first."""
    return check(source_or_path, model=model, limits=limits, policy=policy).diagnostics


def check(source_or_path, *, model: str | None = None, limits=None, policy: WarningPolicy | None = None) -> Checked:
    """`diagnose`, with the models that elaborated."""
    from .pipeline import SpecText, check_source, read_spec

    policy = policy or WarningPolicy()
    try:
        text, path = read_spec(source_or_path)
    except SpecError as err:  # no such file, over the size limit, ...
        return Checked([from_error(err)], [])
    found: list[SpecError] = []
    try:
        checked = check_source(SpecText(text, path), model=model, limits=limits)  # text, even one like a path
    except SpecError as err:
        checked = err.checked
        found += [err, *err.more]
    errors = len(found)
    for got in checked:
        found += policy.apply(got.graph.warnings)
    out, seen = [], set()
    for d in map(from_error, found):
        key = (d.path, d.line, d.column, d.code, d.message)
        if key not in seen:  # a block's warning, met by each model that uses it
            seen.add(key)
            out.append(d)
    out.sort(key=lambda d: (d.path != path, d.path or "", d.line, d.column))
    return Checked(out, [got.graph for got in checked], truncated=errors >= MAX_ERRORS)


def to_json(files: list[tuple[str, Checked]]) -> dict:
    """`check --format json`: what `check` found in each file named, as (path, `Checked`) pairs."""
    diagnostics = [d.to_dict() for _, got in files for d in got.diagnostics]
    return {
        "version": __version__,
        "files": [{"path": path, "ok": not any(d.severity == "error" for d in got.diagnostics),
                   "models": got.models_json(), "truncated": got.truncated} for path, got in files],
        "diagnostics": diagnostics,
        "errors": sum(d["severity"] == "error" for d in diagnostics),
        "warnings": sum(d["severity"] == "warning" for d in diagnostics),
    }


def to_sarif(found: list[Diagnostic]) -> dict:
    """The diagnostics as a SARIF 2.1.0 log, which GitHub code scanning and other CI systems read."""
    used = sorted({d.code for d in found})
    rules = [{"id": code, "name": CODES[code][0], "shortDescription": {"text": CODES[code][1]},
              "helpUri": doc_url(code)} for code in used]
    results = []
    for d in found:
        text = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        region = {"startLine": d.line, "startColumn": d.column, "endLine": d.end_line, "endColumn": d.end_column}
        artifact = _artifact(d.path)
        if artifact is None:  # spec text from stdin: no file to point at, so the place goes in the message
            text = f"line {d.line}, column {d.column}: {text}"
        results.append({
            "ruleId": d.code, "ruleIndex": used.index(d.code), "level": d.severity, "message": {"text": text},
            "locations": [] if artifact is None else [{"physicalLocation": {"artifactLocation": artifact,
                                                                            "region": region}}],
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "modelspec", "version": __version__,
                                      "informationUri": DOCS.rsplit("/blob/", 1)[0], "rules": rules}},
                  "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                  "columnKind": "unicodeCodePoints", "results": results}],
    }


def _artifact(path: str | None) -> dict | None:
    """A file as SARIF names it: a URI relative to the working directory (%SRCROOT%), or a file: URI."""
    if path is None or path == "<stdin>":
        return None
    if os.path.isabs(path):
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(Path(path).as_posix()), "uriBaseId": "%SRCROOT%"}
