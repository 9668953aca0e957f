"""modelspec: a declarative model-spec compiler for PyTorch.

    >>> from modelspec import compile_spec, generate_code
    >>> net = compile_spec("model M(x: [B, 784]) { fc = Linear(_, 10) }", seed=0)
    >>> net.fc
    Linear(in_features=784, out_features=10, bias=True)

Importing the package imports none of torch, lark or pydantic: each name below is loaded from its module when
first used, so that `modelspec check` and an editor's checks pay only for what they run.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from .version import __version__

# name -> the module that defines it
_WHERE = {
    "compile_spec": "api", "elaborate_spec": "api", "example_inputs": "api", "from_torch": "api",
    "generate_code": "api", "generate_training_script": "api", "parse_spec": "api",
    "Limits": "elaborate",
    "FromTorchError": "errors", "ModelspecWarning": "errors", "SpecError": "errors", "SpecWarning": "errors",
    "Exported": "exporting", "dynamic_shapes": "exporting", "export": "exporting",
    "format_spec": "fmt",
    "draw": "graph", "to_dot": "graph", "to_html": "graph", "to_mermaid": "graph", "to_svg": "graph",
    "Summary": "summary", "summarize": "summary",
    "TrainResult": "trainer", "train": "trainer",
}

# the package's own modules, read from its folder (never from anything a spec says)
_HERE = os.path.dirname(__file__)
_SUBMODULES = frozenset(n.removesuffix(".py") for n in os.listdir(_HERE) if n != "__init__.py" and
                        (n.endswith(".py") or os.path.isfile(os.path.join(_HERE, n, "__init__.py"))))

__all__ = ["compile_spec", "draw", "dynamic_shapes", "elaborate_spec", "example_inputs", "export", "Exported",
           "format_spec", "from_torch", "FromTorchError", "generate_code", "generate_training_script", "parse_spec",
           "Limits", "ModelspecWarning",
           "SpecError", "SpecWarning", "Summary", "summarize", "to_dot", "to_html", "to_mermaid", "to_svg", "train",
           "TrainResult", "__version__"]
assert set(__all__) == {*_WHERE, "__version__"}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported as usual
    from .api import (compile_spec, elaborate_spec, example_inputs, from_torch, generate_code,
                      generate_training_script, parse_spec)
    from .elaborate import Limits
    from .errors import FromTorchError, ModelspecWarning, SpecError, SpecWarning
    from .exporting import Exported, dynamic_shapes, export
    from .fmt import format_spec
    from .graph import draw, to_dot, to_html, to_mermaid, to_svg
    from .summary import Summary, summarize
    from .trainer import TrainResult, train


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        if name.isidentifier() and name in _SUBMODULES:  # modelspec.api and the like, as an eager package had them
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'modelspec' has no attribute {name!r}")
    # the module and the name come from the table above, never from outside: an unknown name is refused first
    value = vars(importlib.import_module(f".{where}", __name__))[name]
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
