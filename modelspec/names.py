"""Which names a spec may use.

Every name in a spec becomes a Python identifier in the generated code: a
class (models, blocks), a module-level constant, a constructor or forward
parameter, a local variable, or an attribute of a module (``self.fc``). A
name is refused when it could change what that code means:

* Python keywords and dunder names (``lambda``, ``__class__``);
* the names the generated code itself relies on (`GENERATED`: ``self``,
  ``torch``, ``nn``, ``F``, ``super``, ``in_shape``);
* every Python builtin (`BUILTINS`, read from the `builtins` module:
  ``range``, ``input``, ``str``, ``filter``): as a variable it would hide
  the builtin from the code around it; as a child, ``filter(x)`` in the
  spec would read as Python's ``filter`` (and ``round(...)`` as the round
  that consts may call), whichever was meant;
* for children, parameters and buffers (attributes of an ``nn.Module``), the
  attributes every module already has (``training``, ``forward``, ``to``,
  ``_modules``), which assigning a child would break;
* for variables, the names of the classes the code defines (a block
  parameter ``ConvBN`` would hide the class ``ConvBN`` in ``__init__``), and
  for forward's local values the module-level consts (Python would make the
  const a local of the whole ``forward``).

A child may also be named by a string that is no identifier (``"block1-0"``,
as torchvision names RegNet's blocks; `is_attribute_name` tells them apart):
the code sets it with ``add_module`` and reads it with ``getattr``, and only
torch's own rules for such names hold: not empty, no ``.``. The keys of a
``Sequential({...})`` follow the same rules, and may not be an attribute
nn.Sequential already has (``append``).

`name_problem(...)` says what is wrong with a name, or None. This module is
the one home of these lists: the elaborator reads `GENERATED` from here.
"""

from __future__ import annotations

import builtins
import keyword

# Names the generated code spells itself; a spec may not rebind them.
GENERATED = frozenset({"self", "torch", "nn", "F", "super", "in_shape", "OrderedDict"})

# Python's builtins as this interpreter has them (with `exit`, `help` and the like when `site` ran).
BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))

# Attributes of every nn.Module instance (torch 2.x); tests/test_security.py holds this against torch.
MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
    _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
    _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name _is_full_backward_hook
    _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
    _modules _named_members _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward _state_dict_hooks
    _state_dict_pre_hooks _version _wrapped_call_impl add_module apply bfloat16 buffers call_super_init children
    compile cpu cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children named_modules
    named_parameters parameters register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule
    share_memory state_dict to to_empty train training type xpu zero_grad
""".split())

MODULEDICT_METHODS = frozenset({"clear", "items", "keys", "pop", "update", "values"})

# What nn.Sequential has beyond nn.Module, dunders aside (torch 2.x); its add_module refuses them as keys.
SEQUENTIAL_METHODS = frozenset({"_get_item_by_idx", "append", "extend", "insert", "pop"})

# The name a child made from a module written in forward gets (`nn.ReLU()(h)` -> `self.relu`), and the one an
# error suggests for a layer that must be declared (`fc = Linear(4, 2)`): the names PyTorch's tutorials and
# torchvision give these modules; any other type is named in lower case (`softmax`, `flatten`, `leakyrelu`)
CHILD_NAMES = {
    "Linear": "fc", "Conv1d": "conv", "Conv2d": "conv", "Conv3d": "conv", "BatchNorm1d": "bn", "BatchNorm2d": "bn",
    "BatchNorm3d": "bn", "LayerNorm": "norm", "MaxPool1d": "maxpool", "MaxPool2d": "maxpool", "MaxPool3d": "maxpool",
    "AvgPool1d": "avgpool", "AvgPool2d": "avgpool", "AvgPool3d": "avgpool", "AdaptiveAvgPool1d": "avgpool",
    "AdaptiveAvgPool2d": "avgpool", "AdaptiveAvgPool3d": "avgpool", "Dropout": "dropout", "Embedding": "embedding",
}


def child_name(type_name: str) -> str:
    """The usual name of a child of this type, before it is made unique.

    >>> child_name("Linear"), child_name("Softmax"), child_name("MaxPool2d")
    ('fc', 'softmax', 'maxpool')
    """
    return CHILD_NAMES.get(type_name, type_name.lower())


ATTRIBUTE_KINDS = ("a child",)  # children, params and buffers: `self.NAME`
LOCAL_KINDS = ("a value", "a loop variable")  # assigned inside forward


def is_attribute_name(name: str) -> bool:
    """Whether ``name`` can follow ``self.`` in the generated code: an ASCII identifier, not a keyword.
    A child named otherwise (``"block1-0"``) is set with ``add_module`` and read with ``getattr``.

    >>> is_attribute_name("conv1"), is_attribute_name("block1-0"), is_attribute_name("for")
    (True, False, False)
    """
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def name_problem(name: str, what: str, classes=(), consts=()) -> tuple[str, str] | None:
    """(message, hint) when ``name`` cannot name ``what`` ("a child", "a block", ...); None when it can.

    >>> name_problem("fc", "a child") is None
    True
    >>> name_problem("training", "a child")[0]
    "'training' cannot name a child: every nn.Module has an attribute 'training'"
    >>> print(name_problem("layer1.0", "a child")[1])
    a child's name holds no '.': write "layer1-0", or nest the modules in a Sequential
    """
    if what in ATTRIBUTE_KINDS + ("a Sequential key",):  # torch's add_module takes any other string
        noun = "a child's name" if what == "a child" else what
        if not name:
            return f"an empty string cannot be {noun}: torch's add_module refuses it", 'give it one, e.g. "block1-0"'
        if not name.isprintable():  # a newline or a control character: no name means that
            return (f"{name!r} cannot be {noun}: it holds a character that does not print",
                    'a name is one line of text, e.g. "block1-0"')
        if "." in name:
            dashed = name.replace(".", "-")
            return (f"{name!r} cannot be {noun}: a '.' separates the names in a module's path, as in the "
                    f"state_dict key {name}.weight",
                    f"{noun} holds no '.': write \"{dashed}\", or nest the modules in a Sequential")
    if what == "a Sequential key":  # a string: only torch's own attributes of an nn.Sequential get in the way
        if name.startswith("__") or name in MODULE_ATTRIBUTES or name in SEQUENTIAL_METHODS:
            return (f"{name!r} cannot be {what}: every nn.Sequential has an attribute {name!r}",
                    f"choose another key, e.g. {name.strip('_')}_")
        return None
    if what == "a ModuleDict key":  # a string: only torch's own attributes of a ModuleDict get in the way
        if name.startswith("__") or name in MODULE_ATTRIBUTES or name in MODULEDICT_METHODS:
            return (f"{name!r} cannot be {what}: every nn.ModuleDict has an attribute {name!r}",
                    f"choose another key, e.g. {name.strip('_')}_")
        return None
    if name.startswith("__") or keyword.iskeyword(name) or name in GENERATED:  # keywords: None, True, False too
        return (f"{name!r} cannot name {what}: it is reserved in the generated Python code",
                f"choose another name, e.g. {name.strip('_') or 'name'}_")
    if what in ATTRIBUTE_KINDS:
        if name in MODULE_ATTRIBUTES:
            return (f"{name!r} cannot name {what}: every nn.Module has an attribute {name!r}",
                    f"choose another name, e.g. {name.strip('_')}_")
        if name in BUILTINS:  # `self.filter` hides nothing, but `filter(x)` in the spec reads as the builtin
            return (f"{name!r} cannot name {what}: it is the name of Python's builtin {name!r}",
                    f"choose another name, e.g. {name}_")
        return None
    if name in BUILTINS:
        return (f"{name!r} cannot name {what}: it would hide Python's builtin {name!r} in the generated code",
                f"choose another name, e.g. {name}_")
    if name in classes and what not in ("a model", "a block"):
        return (f"{name!r} cannot name {what}: the generated code defines a class {name!r}",
                f"choose another name, e.g. {name.lower()}")
    if name in consts and what in LOCAL_KINDS:
        return (f"{name!r} cannot name {what}: it is a const of the spec", "choose another name for the value")
    return None
