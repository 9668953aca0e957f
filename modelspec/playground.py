"""What the playground shows for a spec, as data: the answers of `modelspec serve`'s API, and its static export.

`analyse` is POST /api/check: a spec's diagnostics (the dicts of `check --format
json`), the printed PyTorch code (with or without ``--explain``), the summary (the
dict of `summary --json`; a spec that fails part-way has the rows built before
its error, as the CLI shows them) and the diagram (its DOT text, which the page
draws with Viz.js). None of it builds a module, so none of it needs torch.
`run_once` is POST /api/run: one forward pass on random input, which does.
`export_site` writes the read-only pages of `modelspec serve --export DIR`.

    >>> got = analyse("model M(x: [B, 4]) {\\n  fc = Linear(3, 2)\\n}")
    >>> [(d["code"], d["line"], d["column"]) for d in got["diagnostics"]], got["code"] is None
    ([('MS401', 2, 15)], True)
    >>> [(r["path"], r["line"], r["failed"]) for r in got["summary"]["rows"]]
    [('', 1, False), ('fc', 2, True)]
"""

from __future__ import annotations

import html
import re
import shutil
import string
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .diagnostics import check
from .errors import SpecError
from .pipeline import SpecText

ASSETS = ("editor.js", "viz-global.js", "playground.js", "playground.css")  # what a page loads, from assets/
BATCH = 2  # the batch of /api/run's random input, unless the request says


def assets() -> Path:
    """The folder of the page's files: modelspec/assets, inside the installed package."""
    return Path(str(resources.files("modelspec") / "assets"))


def analyse(text: str, *, path: str | None = None, model: str | None = None, explain: bool = False,
            limits=None, policy=None) -> dict:
    """Everything the page shows for spec ``text`` (read from ``path``, if it has a file: imports resolve from
    its folder). ``model`` picks one of several models (default: the first). Diagnostics of the spec's own
    file have ``path`` null, as in `summary --json`; those of an imported file name it, and ``at`` is the range
    of the import that brings it in, where the page shows it. ``policy``: the -W options
    (`errors.WarningPolicy`). Besides `summary --json`'s dict, ``table`` has the cells of `summary`'s table,
    as the CLI prints them, which the page shows."""
    checked = check(SpecText(text, path), model=None, limits=limits, policy=policy)
    spec = _parsed(text, path)
    names = [m.name for m in spec.models()] if spec is not None else []
    chosen = model if model in names else (names[0] if names else None)
    graph = next((g for g in checked.models if g.name == chosen), None)
    summary = _summary(text, path, chosen, graph, limits)
    return {
        "diagnostics": [_own(d.to_dict(), path, spec) for d in checked.diagnostics],
        "truncated": checked.truncated,
        "models": names,
        "model": chosen,
        "code": None if graph is None else _code(graph, explain),
        "summary": None if summary is None else summary.to_dict(),
        "table": None if summary is None else _table(summary),
        "graph": None if graph is None else _diagram(graph),
    }


def _own(found: dict, path: str | None, spec=None) -> dict:
    """A diagnostic of the spec's own file with its path null; one of an imported file with ``at``."""
    if found["path"] == path:
        found["path"] = None
    elif spec is not None:
        from .imports import import_of

        item = import_of(spec, path, found["path"])
        if item is not None:
            s = item.span
            found["at"] = {"line": s.line, "column": s.column, "end_line": s.end_line, "end_column": s.end_column}
    return found


def _parsed(text: str, path: str | None):
    from .pipeline import parse_source

    try:
        return parse_source(SpecText(text, path))
    except SpecError:  # a syntax error: no model to show, and the diagnostics say why
        return None


def _code(graph, explain: bool) -> str:
    from .codegen import generate_code

    return generate_code(graph, explain=explain)


def _summary(text: str, path: str | None, model: str | None, graph, limits):
    """The summary of the model shown: of its graph when it elaborated, else the rows built before its error."""
    from .summary import summarize

    if model is None:
        return None
    try:
        found = summarize(graph if graph is not None else SpecText(text, path), model=model, partial=True,
                          limits=limits)
    except SpecError:  # it failed before any module was built: the diagnostics alone say it
        return None
    found.path = path
    return found


def _table(summary) -> dict:
    """`summary`'s table as cells: its header, and each row's (the rows of ``summary.to_dict()``, in order)."""
    from .summary import HEADER, table_cells

    return {"header": list(HEADER), "rows": [list(table_cells(r)) for r in summary.rows]}


def _diagram(graph) -> dict:
    from .graph import build_diagram, diagram_dot

    drawn = build_diagram(graph, "auto")
    return {"format": "dot", "model": graph.name, "nodes": len(drawn.nodes), "dot": diagram_dot(drawn)}


def run_once(text: str, *, path: str | None = None, model: str | None = None, batch: int = BATCH,
             limits=None) -> dict:
    """POST /api/run: build the model and run one forward pass on random input of ``batch``, on the CPU.

    The spec is held to ``limits`` before anything is built: its parameters when it elaborates, its
    activations at ``batch`` before the input exists. A spec with an error gives its diagnostics instead."""
    from .pipeline import check_batch_memory, load_graph

    try:
        graph = load_graph(SpecText(text, path), model=model, limits=limits)
        check_batch_memory(graph, batch, limits)
    except SpecError as err:
        from .diagnostics import from_error

        return {"ok": False, "diagnostics": [_own(from_error(e).to_dict(), path) for e in (err, *err.more)]}
    import torch

    from .build import build_module, make_inputs
    from .codegen import generate_code
    from .runner import flat

    t0 = time.perf_counter()
    net = build_module(generate_code(graph), graph, seed=0)
    built = time.perf_counter() - t0
    net.eval()
    inputs = make_inputs(graph, batch=batch, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        t0 = time.perf_counter()
        out = net(*inputs)
        took = time.perf_counter() - t0
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return {
        "ok": True, "model": graph.name, "device": "cpu", "batch": batch,
        "inputs": [_tensor(t, name) for (name, _), t in zip(graph.inputs, inputs)],
        "outputs": [_tensor(t) for t in flat(outs)],
        "params": sum(p.numel() for p in net.parameters()),
        "build_ms": round(built * 1000, 3), "forward_ms": round(took * 1000, 3),
    }


def _tensor(t, name: str | None = None) -> dict:
    return {"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}


# ---------------------------------------------------------------- the page
def page(*, title: str, state: dict) -> str:
    """The playground's HTML: the live page (``state`` says where it starts) or, with ``state["static"]``, one
    read-only page of the export. ``state`` travels as JSON in a script, every <, > and & escaped, so no spec
    text can end the script or open a tag."""
    from .graph import script_json

    return PAGE.substitute(title=html.escape(title), state=script_json(state), assets=state.get("assets", "assets"))


PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="$assets/playground.css">
</head>
<body>
<header>
  <h1>$title</h1>
  <nav id="specs"></nav>
  <span id="file"></span>
  <button id="save" type="button" hidden>Save</button>
  <select id="model" hidden aria-label="model"></select>
  <span id="status" role="status"></span>
</header>
<main>
  <section id="left">
    <div id="editor"></div>
    <ul id="problems" aria-label="errors and warnings"></ul>
  </section>
  <section id="middle">
    <h2>PyTorch <label><input id="explain" type="checkbox"> explain</label>
        <button id="run" type="button" hidden>Run one forward pass</button>
        <span class="stale-note">the spec has an error: this is the code of its last good version</span></h2>
    <div id="ran" hidden></div>
    <div id="code"></div>
  </section>
  <section id="right">
    <div class="half">
      <h2>Summary</h2>
      <div id="summary"></div>
    </div>
    <div class="half" id="drawing">
      <h2>Diagram <button id="fit" type="button">actual size</button>
          <span class="stale-note">the spec has an error: this is its last good diagram</span></h2>
      <div id="diagram" class="fit"></div>
    </div>
  </section>
</main>
<noscript>This page needs JavaScript, which is off.</noscript>
<script>window.MODELSPEC = $state;</script>
<script src="$assets/editor.js"></script>
<script src="$assets/viz-global.js"></script>
<script src="$assets/playground.js"></script>
</body>
</html>
""")


# ---------------------------------------------------------------- the static export
@dataclass
class Exported:
    """What `export_site` wrote: the index, then one page per spec; and the errors each spec has, by name."""

    pages: list[Path]
    errors: dict[str, list[dict]]


def export_site(folder: str | Path, specs: list[tuple[str, str, str | None]], *, limits=None,
                policy=None) -> Exported:
    """`modelspec serve --export DIR`: one read-only page for each spec of ``specs`` ((name, text, path)
    triples) and an index.html that lists them, each with what it is, with the page's files in DIR/assets: a
    folder that any web host serves as it is, with no server of modelspec's behind it. A spec with errors
    gets its page too, showing them."""
    from .examples import describe

    folder = Path(folder)
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        shutil.copyfile(assets() / name, folder / "assets" / name)
    pages = list(zip([name for name, _, _ in specs], page_names([name for name, _, _ in specs])))
    menu = [{"name": name, "href": href} for name, href in pages]
    written, errors = [], {}
    for (name, text, path), (_, href) in zip(specs, pages):
        shown = analyse(text, path=path, limits=limits, policy=policy)
        state = {"static": True, "name": name, "source": text, "examples": menu, "assets": "assets",
                 "analysis": shown, "explained": analyse(text, path=path, explain=True, limits=limits)["code"]}
        out = folder / href
        out.write_text(page(title=f"{name} — modelspec", state=state), encoding="utf-8")
        written.append(out)
        errors[name] = [d for d in shown["diagnostics"] if d["severity"] == "error"]
    index = folder / "index.html"
    index.write_text(INDEX.substitute(items="\n".join(
        f'  <li><a href="./{html.escape(href)}">{html.escape(name)}</a> {html.escape(describe(text))}</li>'
        for (name, href), (_, text, _) in zip(pages, specs))), encoding="utf-8")
    return Exported([index, *written], {name: found for name, found in errors.items() if found})


def page_names(names: list[str]) -> list[str]:
    """The file of each spec's page: its name with anything but letters, digits, ``.``, ``_`` and ``-`` made
    ``-`` (no name can make a link that runs script, or leave the folder), never index.html or assets, and
    each once: a name taken gets -2, -3, ...

    >>> page_names(["tutorials/conv", "javascript:alert(1)", "index", "a", "a"])
    ['tutorials-conv.html', 'javascript-alert-1-.html', 'index-2.html', 'a.html', 'a-2.html']
    """
    taken, out = {"index", "assets"}, []
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9._-]", "-", name).strip(".") or "spec"
        unique, n = stem, 1
        while unique.lower() in taken:
            n += 1
            unique = f"{stem}-{n}"
        taken.add(unique.lower())
        out.append(unique + ".html")
    return out


INDEX = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelspec: the specs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/playground.css">
</head>
<body class="index">
<h1>The specs</h1>
<p>Each page shows a spec, its PyTorch code, its shapes and its diagram, as modelspec infers them.</p>
<ul>
$items
</ul>
</body>
</html>
""")
