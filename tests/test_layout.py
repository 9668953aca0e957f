"""The package's shape: data flows one way through its stages.

Every module of ``modelspec`` is read with ``ast`` (nothing is imported), and
each import of another module of the package is an edge, whether it stands at
module level or inside a function: a lazy import still ties the two modules
together, and a cycle of them is a stage calling back up into the one that
called it. ``from . import x`` is an edge to the module ``x`` when there is
one, else to the package itself (``from . import __version__``); importing
``modelspec.a.b`` is an edge to ``modelspec.a.b`` only, not to the packages
Python runs first on the way.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "modelspec"


def module_names() -> dict[str, Path]:
    """Dotted name -> path of every module of the package (``modelspec.layers`` for layers/__init__.py)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "modelspec":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def knots(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of two or more modules (Tarjan): each module of one reaches every other."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each knot, shortest first."""
    return sorted((_one_cycle(graph, g) for g in knots(graph)), key=lambda c: (len(c), c))


def _one_cycle(graph, group) -> list[str]:
    """A shortest cycle through the group's first module, as a path that ends where it starts."""
    start = min(group)
    paths, frontier = {start: [start]}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def _reaches(graph, start, goal) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w == goal:
                return True
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return False


def test_the_graph_is_read():
    """A guard for the test below: it must see the edges that are known to exist."""
    graph = import_graph()
    assert "modelspec.parse" in graph["modelspec.pipeline"]
    assert "modelspec.layers.base" in graph["modelspec.layers"]
    assert "modelspec.shapes" in graph["modelspec.layers.base"]
    assert "modelspec.api" in graph["modelspec"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# Imports that still close a cycle, each awaiting its fix in a file of its own: the test below ignores these
# edges, and fails when one of them no longer closes a cycle, so that it leaves this list the day it is fixed.
AWAITED: dict = {}  # import edges known to close a cycle, each with why; none today


def test_no_import_cycles():
    graph = import_graph()
    stale = [edge for edge in AWAITED if edge[1] not in graph.get(edge[0], ()) or
             not _reaches(graph, edge[1], edge[0])]
    assert not stale, f"these imports no longer close a cycle: remove them from AWAITED: {stale}"
    graph = {name: deps - {b for a, b in AWAITED if a == name} for name, deps in graph.items()}
    found = [(_one_cycle(graph, g), g) for g in knots(graph)]
    assert not found, "import cycles inside modelspec/ (lazy imports count):\n" + "\n".join(
        f"  {' -> '.join(c)}" + (f"\n    (and more: {len(g)} modules reach one another: {', '.join(sorted(g))})"
                                 if len(g) > len(c) - 1 else "")
        for c, g in sorted(found, key=lambda f: (len(f[0]), f[0])))


def test_nothing_inside_the_package_imports_the_api():
    """api.py is the public face: only the package's __init__ uses it, so no stage calls back up into it."""
    users = sorted(name for name, deps in import_graph().items() if "modelspec.api" in deps and name != "modelspec")
    assert not users, f"modules importing modelspec.api: {users}"


def test_nothing_inside_the_package_imports_the_package_itself():
    """``from . import __version__`` runs __init__, and with it the whole API: a cycle through every stage."""
    users = sorted(name for name, deps in import_graph().items() if "modelspec" in deps)
    assert not users, f"modules importing modelspec/__init__.py: {users}"


def test_elaboration_calls_no_stage_above_it():
    """Imports are resolved by the pipeline and handed to elaboration as data (DESIGN.md, "Infer first")."""
    graph, above = import_graph(), {"modelspec", "modelspec.api", "modelspec.pipeline", "modelspec.imports",
                                    "modelspec.cli"}
    reached = {m for m in graph if _reaches(graph, "modelspec.elaborate", m)}
    assert not reached & above, f"modelspec.elaborate reaches {sorted(reached & above)}"


def test_the_readme_layout_names_every_module_and_only_real_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"\w[\w/]*\.(?:py|lark)\b|\w[\w/]*/(?=\s)", layout))
    paths = {n if "/" in n else f"modelspec/{n}" for n in named}  # a bare `static.py` is one of modelspec/
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"the README's Layout names files that do not exist: {missing}"
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.glob("*.py")} - {"modelspec/__init__.py",
                                                                                "modelspec/__main__.py"}
    unnamed = sorted(m for m in modules if m not in paths)
    assert not unnamed, f"modules the README's Layout does not name: {unnamed}"


def test_stages_compose_rather_than_inherit():
    """No class of the package mixes several bases: stages hold one another and a declared state."""
    found = []
    for path in sorted((ROOT / "modelspec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and len(node.bases) > 1:
                found.append(f"{path.relative_to(ROOT)}: class {node.name}({', '.join(map(ast.unparse, node.bases))})")
    assert not found, "\n".join(found)
