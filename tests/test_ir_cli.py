"""`modelspec ir --json`, `modelspec schema`, and what fmt, ir and schema share: no torch, examples in --help.

The IR printed as JSON loads back into the same tree; the schema is a JSON
Schema every bundled spec's IR satisfies. The `jsonschema` package checks
that where it is installed; the structural checks here run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS, spec_ids
from modelspec import ir
from modelspec.cli import main
from modelspec.parse import parse


def run_main(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.fixture(scope="module")
def schema() -> dict:
    return ir.SpecFile.model_json_schema()


# ---------------------------------------------------------------- ir
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_ir_json_loads_back_unchanged(spec, capsys):
    out = run_main(capsys, "ir", str(spec), "--json")
    loaded = ir.SpecFile.model_validate_json(out)
    assert loaded == parse(spec.read_text(), str(spec))
    assert loaded.model_dump_json(indent=2) == out.rstrip("\n")


def test_ir_reports_a_syntax_error_with_its_place(capsys):
    bad = ROOT / "tests" / "errors" / "syntax_missing_paren.nnspec"
    assert main(["ir", str(bad), "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{bad}:2:19: '(' opened at 2:19 was never closed" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- schema
def test_schema_prints_the_ir_schema(capsys, schema):
    assert json.loads(run_main(capsys, "schema")) == schema


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_schema_is_well_formed(schema):
    assert schema["type"] == "object"
    assert set(schema["required"]) >= {"items"}
    defs = schema["$defs"]
    assert all(ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs for ref in _refs(schema))
    # every node kind is in it, tagged: the discriminated unions can tell them apart
    kinds = {d["properties"]["kind"]["const"] for d in defs.values() if "kind" in d.get("properties", {})}
    nodes = [c for c in vars(ir).values() if isinstance(c, type) and issubclass(c, ir.Node) and c is not ir.Node]
    assert kinds == {c.__dataclass_fields__["kind"].default for c in nodes}
    assert all(d.get("additionalProperties") is False for d in defs.values() if "kind" in d.get("properties", {}))


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_every_bundled_ir_satisfies_the_schema(spec, schema):
    import jsonschema
    jsonschema.Draft202012Validator.check_schema(schema)
    instance = json.loads(parse(spec.read_text(), str(spec)).model_dump_json())
    jsonschema.Draft202012Validator(schema).validate(instance)


# ---------------------------------------------------------------- shared
@pytest.mark.parametrize("command", ["fmt", "ir", "schema"])
def test_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"modelspec {command}" in out.split("examples:")[1]


def test_fmt_ir_schema_do_not_import_torch(tmp_path):
    spec = tmp_path / "cnn.nnspec"
    spec.write_text((ROOT / "specs" / "cnn.nnspec").read_text())
    code = f"""
import contextlib, io, sys
from modelspec.cli import main
for args in (["fmt", {str(spec)!r}], ["fmt", "--check", "specs/vgg_blocks.nnspec"],
             ["ir", "specs/cnn.nnspec", "--json"], ["schema"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(args) == 0, args
    assert "torch" not in sys.modules, f"{{args[0]}} imported torch"
print("no torch")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no torch"
