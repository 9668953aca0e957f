"""modelspec: a declarative model-spec compiler for PyTorch.

    >>> from modelspec import compile_spec, generate_code
    >>> net = compile_spec("model M(x: [B, 784]) { fc = Linear(_, 10) }", seed=0)
    >>> net.fc
    Linear(in_features=784, out_features=10, bias=True)
"""

__version__ = "0.1.0"

from .api import compile_spec, elaborate_spec, example_inputs, generate_code, parse_spec  # noqa: E402
from .elaborate import Limits  # noqa: E402
from .errors import SpecError  # noqa: E402
from .fmt import format_spec  # noqa: E402
from .graph import to_dot, to_mermaid, to_svg  # noqa: E402
from .summary import Summary, summarize  # noqa: E402

__all__ = ["compile_spec", "elaborate_spec", "example_inputs", "format_spec", "generate_code", "parse_spec", "Limits",
           "SpecError", "Summary", "summarize", "to_dot", "to_mermaid", "to_svg", "__version__"]
