"""Is a piece of generated code inert? The shape every printed class has, checked on its Python AST.

Generated code may only: hold a docstring, import torch / torch.nn as nn /
torch.nn.functional as F (after ``from collections import OrderedDict``, which
a Sequential of named modules takes), bind module-level constants to literals,
and define ``nn.Module`` classes with ``__init__`` and ``forward``. Inside those,
it may not name anything that reaches outside the model (``eval``, ``exec``,
``open``, ``__import__``, ``getattr``, ``os``, ...; only ``getattr(self, "block1-0")``,
a child whose name is no identifier), touch a dunder attribute other than
``super().__init__()``, or hold a statement a spec cannot produce (``import``,
``global``, ``lambda``, ``with``, ``try``, ``while``, ``del``, ``yield``, f-strings).
Strings are plain literals. The text is ASCII: every string a spec gives is
escaped, so no character can end a comment or a line early.

`inert_problem(code)` returns what breaks these rules, or None.
"""

from __future__ import annotations

import ast

HEADER_IMPORTS = [("torch", None), ("torch.nn", "nn"), ("torch.nn.functional", "F")]
FORBIDDEN_NAMES = {
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "breakpoint", "input", "memoryview", "help", "exit", "quit", "os", "sys", "subprocess",
    "builtins", "importlib", "shutil", "socket", "pickle", "marshal", "ctypes", "type", "object", "__builtins__",
}
FORBIDDEN_NODES = (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Lambda, ast.With, ast.AsyncWith,
                   ast.Try, ast.While, ast.Delete, ast.Yield, ast.YieldFrom, ast.Await, ast.JoinedStr,
                   ast.AsyncFunctionDef, ast.NamedExpr, ast.Raise, ast.Assert)


def inert_problem(code: str) -> str | None:
    """What makes ``code`` more than an inert model definition, or None."""
    if not code.isascii():
        return "the code is not plain ASCII"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"the code does not parse: {exc}"
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    ordered_dict = None
    if body and isinstance(body[0], ast.ImportFrom) and body[0].module == "collections" and body[0].level == 0 \
            and [(a.name, a.asname) for a in body[0].names] == [("OrderedDict", None)]:
        ordered_dict, body = body[0], body[1:]
    # torch and torch.nn always; torch.nn.functional only where forward uses F
    n = 3 if len(body) > 2 and isinstance(body[2], ast.Import) else 2
    imports = body[:n]
    got = [(a.name, a.asname) for imp in imports if isinstance(imp, ast.Import) for a in imp.names]
    if got != HEADER_IMPORTS[:n] or not all(isinstance(i, ast.Import) and len(i.names) == 1 for i in imports):
        return f"the code does not start with the torch imports: {ast.unparse(imports[0]) if imports else ''}"
    for stmt in body[n:]:
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                return f"a module-level assignment that is not a constant: {ast.unparse(stmt)[:80]}"
            try:
                ast.literal_eval(stmt.value)
            except ValueError:
                return f"a module-level constant that is not a literal: {ast.unparse(stmt)[:80]}"
        elif isinstance(stmt, ast.ClassDef):
            problem = _class_problem(stmt)
            if problem:
                return f"class {stmt.name}: {problem}"
        else:
            return f"a module-level statement that is neither a constant nor a class: {ast.unparse(stmt)[:80]}"
    bound = _bound_names(tree)  # a class or a local called `os` is a name like any other, not the module
    child_getattrs = {id(n.func) for n in ast.walk(tree) if _is_child_getattr(n)}
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN_NODES) and not (isinstance(node, ast.Import) and node in imports) \
                and node is not ordered_dict:
            return f"a {type(node).__name__} statement or expression: {ast.unparse(node)[:80]}"
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES and node.id not in bound \
                and id(node) not in child_getattrs:
            return f"it names {node.id!r}"
        if isinstance(node, ast.Attribute) and node.attr.startswith("__") and not _is_super_init(node):
            return f"it touches the attribute {node.attr!r}"
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return "it holds a bytes literal"
    return None


def _bound_names(tree) -> set[str]:
    """Names the code itself binds: classes, constants, parameters, assigned and loop variables."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return out


def _is_child_getattr(node) -> bool:
    """``getattr(self, "block1-0")``: a child whose name is no identifier, so ``self.block1-0`` cannot read it."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"):
        return False
    args = node.args
    return (len(args) == 2 and not node.keywords and isinstance(args[0], ast.Name) and args[0].id == "self"
            and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)
            and not args[1].value.isidentifier())


def _is_super_init(node: ast.Attribute) -> bool:
    v = node.value
    return (node.attr == "__init__" and isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
            and v.func.id == "super" and not v.args)


def _class_problem(cls: ast.ClassDef) -> str | None:
    if cls.decorator_list or cls.keywords:
        return "decorated, or with class keywords"
    if [ast.unparse(b) for b in cls.bases] not in (["nn.Module"], ["nn.Sequential"]):
        return f"its bases are {[ast.unparse(b) for b in cls.bases]}, not nn.Module or nn.Sequential"
    body = cls.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    names = [f.name for f in body if isinstance(f, ast.FunctionDef)]
    wanted = ["__init__"] if [ast.unparse(b) for b in cls.bases] == ["nn.Sequential"] else ["__init__", "forward"]
    if names != wanted or len(body) != len(wanted):
        return f"it defines {names} (and {len(body) - len(names)} other statements), not {' and '.join(wanted)}"
    for f in body:
        if f.decorator_list:
            return f"{f.name} is decorated"
        if f.args.args[0].arg != "self" or f.args.vararg or f.args.kwarg:
            return f"{f.name} has unusual parameters"
    return None
