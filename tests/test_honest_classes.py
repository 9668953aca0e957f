"""A printed block class takes exactly the parameters it uses, and honours every one of them.

For every printed block class of the bundled specs, and every block parameter the class takes, the class
is instantiated (from the code `generate_code` prints for the ORIGINAL spec, exec'd standalone) with other
values of that parameter. The result must be the module that compiling a spec which calls the block with
those values builds (`compile_spec` of the spec plus a one-child probe model): the same module tree (torch
layers by type and `extra_repr`, so that a stride or a kernel size that is ignored shows), the same
state_dict keys, shapes and dtypes, and, with the probe's weights loaded, the same forward output.

The original values of an instance are read from the printed code itself: the printed model is built on
the meta device with every generated class's ``__init__`` recording the arguments it receives. Parameters
fixed in a class (``Stage_depth2``) come from ``ClassDef.fixed``; inferred sizes (``in_channels``) from the
instance's input shape.
"""

from __future__ import annotations

import functools
import inspect
import json
import re

import pytest

import modelspec
from modelspec import SpecError, compile_spec, elaborate_spec, example_inputs, generate_code, parse_spec
from modelspec.shapes import Sym, evaluate

from conftest import SPECS, spec_name

PROBE = "Probe__"

# "spec-Class-param": reason, for a case that fails because of a known compiler bug (strict: it must fail).
XFAIL_HONOURS: dict[str, str] = {}
XFAIL_NUMBERED: dict[str, str] = {}


# ------------------------------------------------------------------------------------------- the cases
@functools.lru_cache(maxsize=None)
def _graph(stem: str):
    return elaborate_spec(str(_path(stem)))


def _path(stem: str):
    """The bundled spec of that name (`cnn`, `tutorials/cnn`: conftest.spec_name)."""
    return next(p for p in SPECS if spec_name(p) == stem)


def _block_ir(stem: str, block: str):
    return [b for b in parse_spec(str(_path(stem))).blocks() if b.name == block][0]


def _variable_params(cls) -> list[str]:
    """The block parameters a class takes (not inferred sizes)."""
    return [p.name for p in cls.ctor_params if not p.inferred]


def _block_classes():
    for path in SPECS:
        for cls in _graph(spec_name(path)).classes:
            if cls.kind == "block":
                yield spec_name(path), cls


def _honour_cases():
    out = []
    for stem, cls in _block_classes():
        names = _variable_params(cls)
        for name in names + (["all"] if len(names) > 1 else []):
            case = f"{stem}-{cls.name}-{name}"
            marks = [pytest.mark.xfail(strict=True, reason=XFAIL_HONOURS[case])] if case in XFAIL_HONOURS else []
            out.append(pytest.param(stem, cls.name, name, id=case, marks=marks))
    return out


def _class_cases(pred=lambda cls: True, xfail=None):
    out = []
    for stem, cls in _block_classes():
        if pred(cls):
            case = f"{stem}-{cls.name}"
            marks = [pytest.mark.xfail(strict=True, reason=xfail[case])] if xfail and case in xfail else []
            out.append(pytest.param(stem, cls.name, id=case, marks=marks))
    return out


HONOUR_CASES = _honour_cases()


def test_the_bundled_specs_have_block_classes_to_check():
    """The parametrization is not vacuous: these block classes take parameters."""
    classes = {c.values[0] + "-" + c.values[1] for c in HONOUR_CASES}
    assert {"vgg_blocks-ConvBN", "vgg_blocks-Stage_depth2", "vgg_blocks-Stage_depth3", "resnet18-BasicBlock",
            "unet-DoubleConv", "inception-Inception",
            # blocks `= Sequential(...)` (one of named modules), and one whose children are named "block2-0"
            "regnet-ConvNormAct_act", "regnet-BottleneckTransform", "regnet-Stage2"} <= classes


# ------------------------------------------------------------------------------------------- helpers
def _exec_printed(code: str, modname: str, torch) -> dict:
    """The printed code run standalone in a fresh namespace; every generated class records its arguments."""
    ns = {"__name__": modname}
    exec(compile(code, f"<{modname}>", "exec"), ns)
    records: dict[int, dict] = {}
    for value in list(ns.values()):
        if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == modname:
            value.__init__ = _recording(value.__init__, records)
    ns["__records__"] = records
    return ns


def _recording(init, records):
    sig = inspect.signature(init)

    @functools.wraps(init)
    def recorded(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        records[id(self)] = {k: v for k, v in bound.arguments.items() if k != "self"}

    return recorded


@functools.lru_cache(maxsize=None)
def _printed(stem: str):
    """The original spec's printed code, exec'd, and its model built on meta with every instance's arguments."""
    import torch

    graph = _graph(stem)
    ns = _exec_printed(generate_code(str(_path(stem))), f"honest_{stem}", torch)
    with torch.device("meta"):
        model = ns[graph.name]()
    records = ns["__records__"]
    args_at = {path: records[id(m)] for path, m in model.named_modules() if id(m) in records}
    return ns, args_at


def _sizes(graph) -> dict[str, int]:
    sizes = {s: (ex if ex is not None else 8) for s, ex in graph.symbols.items()}
    lead = graph.inputs[0][1].shape[0].value
    if isinstance(lead, Sym) and len(lead.terms) == 1:  # the batch
        (mono, coef), = lead.terms.items()
        if coef == 1 and len(mono) == 1 and isinstance(mono[0], str):
            sizes[mono[0]] = 1  # structure does not depend on it; forward is cheaper
    return sizes


def _spec_literal(v) -> str:
    if v is None or isinstance(v, (bool, int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (tuple, list)):
        items = [_spec_literal(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"no spec literal for {v!r}")


def _candidates(name: str, v, strings=()) -> list:
    """Other values for a parameter whose value is ``v``; for a string, the other ``strings`` the spec writes
    (a ModuleDict's keys, for ``acts[act]``)."""
    if isinstance(v, str):
        out = list(strings)
    elif isinstance(v, bool):
        out = [not v]
    elif isinstance(v, int):
        out = ([3 - v] if "stride" in name and v in (1, 2) else []) + [v * 2, v + 1]
    elif isinstance(v, float):
        out = [v * 2 if v else 0.5, v / 2]
    elif isinstance(v, tuple) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        out = [tuple(x * 2 for x in v), tuple(x + 1 for x in v)]
    else:
        out = []
    seen = []
    for c in out:
        if c != v and c not in seen:
            seen.append(c)
    return seen


class Instance:
    """The first instance of a printed block class: its spec, input shapes and original parameter values."""

    def __init__(self, stem: str, class_name: str):
        self.stem = stem
        self.graph = graph = _graph(stem)
        self.cls = next(c for c in graph.classes if c.name == class_name)
        self.block = _block_ir(stem, self.cls.block)
        self.path = self.cls.used_by[0]
        self.node = next(n for n in graph.root.walk() if n.path == self.path)
        sizes = _sizes(graph)
        self.inputs = [(tuple(evaluate(d, sizes) for d in t.shape), t.dtype) for t in self.node.inputs]
        ns, args_at = _printed(stem)
        self.printed_ns = ns
        recorded = args_at[self.path]
        self.original = {}
        for p in self.block.params:
            if p.name in recorded:
                self.original[p.name] = recorded[p.name]
            elif p.name in self.cls.fixed:
                self.original[p.name] = self.cls.fixed[p.name]
            elif p.default is not None and hasattr(p.default, "value"):
                self.original[p.name] = p.default.value
            else:
                pytest.fail(f"{stem}: no original value for {self.cls.block}'s parameter {p.name!r} at `{self.path}`")
        self.recorded_inferred = {p.name: recorded[p.name] for p in self.cls.ctor_params if p.inferred}

    def probe_text(self, values: dict) -> str:
        decls = []
        for i, (shape, dtype) in enumerate(self.inputs):
            prefix = {"float": "", "long": "Long", "bool": "Bool"}[dtype]
            decls.append(f"x{i}: {prefix}[{', '.join(map(str, shape))}]")
        args = ", ".join(f"{p.name}={_spec_literal(values[p.name])}" for p in self.block.params)
        names = ", ".join(f"x{i}" for i in range(len(self.inputs)))
        text = _path(self.stem).read_text(encoding="utf-8")
        return (f"{text}\n\nmodel {PROBE}({', '.join(decls)}) {{\n    b = {self.cls.block}({args})\n"
                f"    forward({names}) {{\n        return b({names})\n    }}\n}}\n")

    def inferred_values(self, probe_text: str, torch) -> dict:
        """Inferred sizes of the probe's instance: from its input shape where they are input dims."""
        out = {}
        needs_call = []
        for p in self.cls.ctor_params:
            if not p.inferred:
                continue
            slot = getattr(p, "slot", None)
            if slot is not None:
                out[p.name] = self.inputs[0][0][slot.index]
            else:
                needs_call.append(p.name)
        if needs_call:  # a size derived inside the block: as the probe's printed code passes it
            ns = _exec_printed(generate_code(probe_text, model=PROBE), "honest_probe", torch)
            with torch.device("meta"):
                probe = ns[PROBE]()
            rec = ns["__records__"][id(probe.b)]
            for name in needs_call:
                out[name] = rec[name]
        return out

    def printed(self, values: dict, inferred: dict):
        """The printed class of the original spec, instantiated with ``values`` (by keyword)."""
        cls = self.printed_ns[self.cls.name]
        taken = set(inspect.signature(cls).parameters)
        kwargs = dict(inferred) | {k: v for k, v in values.items() if k in taken}
        return cls(**kwargs)


def _tree(mod, torch) -> list[tuple]:
    out = []
    for name, m in mod.named_modules():
        t = type(m)
        if t.__module__.startswith("torch."):
            out.append((name, t.__name__, m.extra_repr()))
        else:
            out.append((name, "<generated>"))
    return out


def _state(mod) -> dict:
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in mod.state_dict().items()}


def _tensors(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return [out] if hasattr(out, "shape") else []


def _forward(mod, xs, torch):
    mod.eval()
    with torch.no_grad():
        return _tensors(mod(*[x.clone() for x in xs]))


def _mismatch(printed, probe, xs, torch) -> str | None:
    """Why the printed class's instance is not the probe's module, or None."""
    a, b = _tree(printed, torch), _tree(probe, torch)
    if a != b:
        diff = [f"  printed {x!r}\n  spec    {y!r}" for x, y in zip(a, b) if x != y]
        if len(a) != len(b):
            diff.append(f"  printed has {len(a)} modules, the spec's {len(b)}: "
                        f"only printed {sorted(set(n for n, *_ in a) - set(n for n, *_ in b))}, "
                        f"only spec {sorted(set(n for n, *_ in b) - set(n for n, *_ in a))}")
        return "module trees differ:\n" + "\n".join(diff)
    sa, sb = _state(printed), _state(probe)
    if sa != sb:
        diff = [f"  {k}: printed {sa.get(k)}, spec {sb.get(k)}" for k in sorted(set(sa) | set(sb))
                if sa.get(k) != sb.get(k)]
        return "state_dicts differ:\n" + "\n".join(diff)
    printed.load_state_dict(probe.state_dict())
    oa, ob = _forward(printed, xs, torch), _forward(probe, xs, torch)
    if [tuple(t.shape) for t in oa] != [tuple(t.shape) for t in ob]:
        return f"outputs differ in shape: printed {[tuple(t.shape) for t in oa]}, spec {[tuple(t.shape) for t in ob]}"
    if not all(torch.equal(x, y) or torch.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(oa, ob)):
        return "outputs differ in value with the same weights"
    return None


def _same_module(m1, m2, xs, torch) -> bool:
    """Whether two modules of the printed class are the same module (structure, state and forward)."""
    if _tree(m1, torch) != _tree(m2, torch) or _state(m1) != _state(m2):
        return False
    m2.load_state_dict(m1.state_dict())
    o1, o2 = _forward(m1, xs, torch), _forward(m2, xs, torch)
    return [t.shape for t in o1] == [t.shape for t in o2] and all(torch.equal(x, y) for x, y in zip(o1, o2))


# ------------------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("stem, class_name, param", HONOUR_CASES)
def test_printed_block_class_honours_its_parameter(stem, class_name, param, torch):
    inst = Instance(stem, class_name)
    names = _variable_params(inst.cls)
    varied = names if param == "all" else [param]

    # the harness first: the probe with the original values is the printed class with the original values
    base_text = inst.probe_text(inst.original)
    torch.manual_seed(0)
    xs = example_inputs(base_text, model=PROBE, batch=1)
    base_probe = compile_spec(base_text, model=PROBE, seed=0).b
    inferred = inst.inferred_values(base_text, torch)
    assert inferred == inst.recorded_inferred, (
        f"the printed model passes {inst.recorded_inferred} to `{inst.path}`, its input shape gives {inferred}")
    base_printed = inst.printed(inst.original, inferred)
    why = _mismatch(base_printed, base_probe, xs, torch)
    assert why is None, f"{class_name} at `{inst.path}` with its own values {inst.original}: {why}"

    # the choices of other values, one parameter at a time, or all at once
    strings = re.findall(r"\"([^\"\n]*)\"|'([^'\n]*)'", _path(stem).read_text(encoding="utf-8"))
    choices = {n: _candidates(n, inst.original[n], [a or b for a, b in strings]) for n in varied}
    empty = [n for n, c in choices.items() if not c]
    assert not empty, f"no other value to try for {empty} (values {[inst.original[n] for n in empty]})"
    if param == "all":
        depth = max(len(c) for c in choices.values())
        trials = [{n: c[min(i, len(c) - 1)] for n, c in choices.items()} for i in range(depth)]
    else:
        trials = [{param: c} for c in choices[param]]

    exercised, refused, failures = [], [], []
    for change in trials:
        values = inst.original | change
        text = inst.probe_text(values)
        try:
            probe = compile_spec(text, model=PROBE, seed=0).b
        except SpecError as err:
            refused.append(f"{change}: {str(err).splitlines()[0]}")
            continue
        torch.manual_seed(0)
        xs = example_inputs(text, model=PROBE, batch=1)
        try:
            printed = inst.printed(values, inst.inferred_values(text, torch))
        except Exception as err:  # the printed class refuses values the spec accepts
            failures.append(f"{change}: the printed class raises {type(err).__name__}: {err}")
            continue
        why = _mismatch(printed, probe, xs, torch)
        if why is not None:
            failures.append(f"{change}: {why}")
            continue
        if _same_module(base_printed, printed, xs, torch):
            failures.append(f"{change}: builds the same module as {inst.original}: "
                            f"the class takes a parameter it does not use")
            continue
        exercised.append(change)

    assert not failures, (f"{class_name} (`{inst.path}`, values {inst.original}) is not what the spec builds:\n"
                          + "\n".join(failures))
    assert exercised, (f"no other value of {varied} compiles for `{inst.path}` "
                       f"(values {inst.original}), so nothing was checked:\n" + "\n".join(refused))


@pytest.mark.parametrize("stem, class_name", _class_cases())
def test_printed_block_class_takes_exactly_its_parameters(stem, class_name, torch):
    """The signature is the ClassDef's; it takes block parameters, not fixed ones, and drops none it uses."""
    graph = _graph(stem)
    cls = next(c for c in graph.classes if c.name == class_name)
    block = _block_ir(stem, cls.block)
    ns, _ = _printed(stem)
    sig = inspect.signature(ns[class_name])
    assert list(sig.parameters) == [p.name for p in cls.ctor_params]
    block_params = [p.name for p in block.params]
    taken = _variable_params(cls)
    assert [n for n in block_params if n in taken] == taken, f"{taken} are not all parameters of {cls.block}"
    both = sorted(set(cls.fixed) & set(sig.parameters))
    assert not both, f"{class_name} takes {both}, which it fixes"
    assert set(cls.fixed) <= set(block_params)
    used = _names_in(block.body) | _names_in(block.value)  # a block `= Sequential(...)` has its value instead
    dropped = [n for n in block_params if n in used and n not in taken and n not in cls.fixed]
    assert not dropped, f"{class_name} neither takes nor fixes {dropped}, which block {cls.block} uses"
    for p in cls.ctor_params:  # a default of the spec's block stays the class's default
        spec_default = next((b.default for b in block.params if b.name == p.name), None)
        if not p.inferred and spec_default is not None and hasattr(spec_default, "value"):
            assert sig.parameters[p.name].default == spec_default.value, p.name


def _names_in(node) -> set[str]:
    out = set()
    if isinstance(node, list):
        for n in node:
            out |= _names_in(n)
    elif isinstance(node, modelspec.ir.Node):
        for field, value in node:
            if field == "id" and isinstance(value, str):
                out.add(value)
            elif isinstance(value, (list, modelspec.ir.Node)):
                out |= _names_in(value)
    return out


@pytest.mark.parametrize("stem, class_name", _class_cases(lambda c: bool(c.fixed)))
def test_fixed_parameters_are_not_constructor_arguments(stem, class_name, torch):
    cls = next(c for c in _graph(stem).classes if c.name == class_name)
    ns, _ = _printed(stem)
    sig = inspect.signature(ns[class_name])
    for name in cls.fixed:
        assert name not in sig.parameters, f"{class_name} fixes {name}={cls.fixed[name]} but still takes it"
        assert name not in [p.name for p in cls.ctor_params]


def _numbered_twins(names: list[str]) -> list[tuple[str, str]]:
    """``(in_channels, in_channels2)``: a name and the same name numbered by the namespace."""
    out = []
    for a in names:
        if re.fullmatch(r"in_dim\d+", a):  # in_dim2, in_dim3: different dims, not twins
            continue
        for b in names:
            if b != a and re.fullmatch(re.escape(a) + r"[2-9]\d*", b):
                out.append((a, b))
    return out


@pytest.mark.parametrize("stem, class_name",
                         _class_cases(lambda c: any(p.inferred for p in c.ctor_params), XFAIL_NUMBERED))
def test_no_numbered_twin_of_an_inferred_parameter(stem, class_name):
    cls = next(c for c in _graph(stem).classes if c.name == class_name)
    inferred = [p.name for p in cls.ctor_params if p.inferred]
    twins = _numbered_twins(inferred)
    assert not twins, f"{class_name} takes {twins}: the same inferred size twice ({inferred})"
