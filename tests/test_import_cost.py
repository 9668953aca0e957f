"""What `import modelspec` and `modelspec check` load: the cost an editor's check pays on every run."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _loaded(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return {m.partition(".")[0] for m in json.loads(done.stdout.splitlines()[-1])}


def test_import_modelspec_loads_none_of_torch_lark_or_pydantic():
    assert not {"torch", "lark", "pydantic", "pydantic_core"} & _loaded("import modelspec")


def test_a_public_name_loads_on_first_use():
    loaded = _loaded("import modelspec\nassert modelspec.SpecError.__name__ == 'SpecError'\n"
                     "assert 'compile_spec' in dir(modelspec)")
    assert "pydantic" not in loaded and "torch" not in loaded  # an error's Span is a dataclass: no pydantic


def test_check_never_imports_pydantic_or_torch():
    code = ("import sys\nfrom modelspec.cli import main\n"
            f"assert main(['check', {str(ROOT / 'specs' / 'resnet18.nnspec')!r}]) == 0\n"
            "from modelspec import ir\n"
            "assert ir.adapter.cache_info().currsize == 0, 'the IR schema was built'\n")
    assert not {"torch", "pydantic"} & _loaded(code)


def test_the_ir_still_round_trips_through_json_and_has_a_schema():
    from modelspec import ir
    from modelspec.parse import parse

    tree = parse((ROOT / "specs" / "resnet18.nnspec").read_text(encoding="utf-8"))
    again = ir.SpecFile.model_validate_json(tree.model_dump_json())
    assert again == tree
    schema = ir.SpecFile.model_json_schema()
    assert "items" in schema["properties"] and "Model" in schema["$defs"]
