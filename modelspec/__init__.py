"""modelspec: a declarative model-spec compiler for PyTorch.

    >>> from modelspec import compile_spec, generate_code
    >>> net = compile_spec("model M(x: [B, 784]) { fc = Linear(_, 10) }", seed=0)
    >>> net.fc
    Linear(in_features=784, out_features=10, bias=True)
"""

from .version import __version__
from .api import (compile_spec, elaborate_spec, example_inputs, from_torch, generate_code, generate_training_script,
                  parse_spec)
from .elaborate import Limits
from .errors import FromTorchError, ModelspecWarning, SpecError, SpecWarning
from .exporting import Exported, dynamic_shapes, export
from .fmt import format_spec
from .graph import draw, to_dot, to_html, to_mermaid, to_svg
from .summary import Summary, summarize
from .trainer import TrainResult, train

__all__ = ["compile_spec", "draw", "dynamic_shapes", "elaborate_spec", "example_inputs", "export", "Exported",
           "format_spec", "from_torch", "FromTorchError", "generate_code", "generate_training_script", "parse_spec",
           "Limits", "ModelspecWarning",
           "SpecError", "SpecWarning", "Summary", "summarize", "to_dot", "to_html", "to_mermaid", "to_svg", "train",
           "TrainResult", "__version__"]
