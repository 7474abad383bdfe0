"""Tests of the built-in op registry entries (signatures only)."""

from __future__ import annotations

import importlib
import inspect
import math

import pytest

from tgc.compiler.ops import registry
from tgc.compiler.ops.registry import PARAM_TYPES, REQUIRED, HyperParam, OpSpec, all_ops, lookup

# Derived from the registry, never listed by hand: every built-in op (plugins are unloaded
# between command lines), grouped by family.
CORE_OPS = sorted(n for n in all_ops() if n not in registry.PLUGIN_OPS)
FAMILIES: dict[str, list[str]] = {}
for _name in CORE_OPS:
    FAMILIES.setdefault(lookup(_name).family, []).append(_name)


# torch.nn.LSTM and torch.nn.GRU declare `__init__(self, *args, **kwargs)`, so
# `inspect.signature` says nothing; these are their documented constructor parameters
# (torch docs, "Args:" of LSTM/GRU; RNNBase.__init__ takes the same names).
DOCUMENTED_CTOR = {
    "torch.nn.LSTM": [
        "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
        "bidirectional", "proj_size", "device", "dtype",
    ],
    "torch.nn.GRU": [
        "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
        "bidirectional", "device", "dtype",
    ],
}
DOCUMENTED_DEFAULTS = {
    "torch.nn.LSTM": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                      "bidirectional": False, "proj_size": 0},
    "torch.nn.GRU": {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                     "bidirectional": False},
}

# Arguments of the torch module's `forward` that an op exposes as hyper-parameters.
FORWARD_ARGS = {"attention": {"average_attn_weights"}}

# Hyper-parameters with no torch counterpart at all (tg-only), with the reason.
TG_ONLY_PARAMS = {
    ("flatten", "name"): "names the merged dimension (LANGUAGE.md 13.1); names live in the checker only",
    ("linear", "tie"): "weight tying (LANGUAGE.md 13): the emitted __init__ assigns the tied layer's weight",
    ("embedding", "tie"): "weight tying (LANGUAGE.md 13): the emitted __init__ assigns the tied layer's weight",
    ("attention", "causal"): "builds the causal attn_mask in emitted code; torch's is_causal is only a hint",
    ("layernorm", "start_dim"): "picks the trailing dimensions whose sizes are torch's normalized_shape",
    ("rmsnorm", "start_dim"): "picks the trailing dimensions whose sizes are torch's normalized_shape",
}

# Names that only some supported torch versions have (torch>=2.2 is supported):
# they may be listed in `omitted` although the installed torch lacks them.
VERSION_DEPENDENT = {
    ("batchnorm1d", "bias"): "BatchNorm's keyword-only `bias` is new in recent torch",
    ("batchnorm2d", "bias"): "BatchNorm's keyword-only `bias` is new in recent torch",
    ("batchnorm3d", "bias"): "BatchNorm's keyword-only `bias` is new in recent torch",
    ("groupnorm", "bias"): "GroupNorm's keyword-only `bias` is new in recent torch",
    ("instancenorm1d", "bias"): "InstanceNorm's keyword-only `bias` is new in recent torch",
    ("instancenorm2d", "bias"): "InstanceNorm's keyword-only `bias` is new in recent torch",
}

# Defaults that differ from torch's on purpose.
DEFAULT_EXCEPTIONS = {
    ("linear", "out_features"): "optional in tg: None keeps the input's width (LANGUAGE.md section 1)",
    ("softmax", "dim"): "torch's None (implicit dim) is deprecated; tg normalises the last dimension",
    ("log_softmax", "dim"): "torch's None (implicit dim) is deprecated; tg normalises the last dimension",
}


def _torch_class(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _torch_params(spec: OpSpec) -> dict[str, object]:
    """Torch parameter name -> default (REQUIRED when none) for the op's torch module."""
    cls = _torch_class(spec.torch_module)
    if spec.torch_module in DOCUMENTED_CTOR:
        defaults = DOCUMENTED_DEFAULTS[spec.torch_module]
        out = {n: defaults.get(n, REQUIRED) for n in DOCUMENTED_CTOR[spec.torch_module]}
        out["device"] = out["dtype"] = None
    else:
        out = {}
        for p in list(inspect.signature(cls).parameters.values()):
            # Identity/Tanh/Sigmoid take (*args, **kwargs) and ignore them: no parameters
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = REQUIRED if p.default is p.empty else p.default
    for name in FORWARD_ARGS.get(spec.name, ()):
        p = inspect.signature(cls.forward).parameters[name]
        out[name] = REQUIRED if p.default is p.empty else p.default
    return out


def _torch_name(spec: OpSpec, param: HyperParam) -> str:
    inverse = {ours: theirs for theirs, ours in spec.renamed.items()}
    return inverse.get(param.name, param.name)


TORCH_OPS = [name for name in CORE_OPS if lookup(name) is not None and lookup(name).torch_module]


# ---------------------------------------------------------------- registration


def test_every_core_op_is_registered():
    ops = all_ops()
    missing = [name for name in CORE_OPS if name not in ops]
    assert not missing, f"not registered: {missing}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_modules_register_their_ops(family):
    importlib.import_module(f"tgc.compiler.ops.{family}")
    for name in FAMILIES[family]:
        spec = registry.REGISTRY[name]
        assert spec.family == family
        assert spec.name == name


def test_builtin_imports_every_family():
    builtin = importlib.import_module("tgc.compiler.ops.builtin")
    for family in FAMILIES:
        assert hasattr(builtin, family), f"builtin.py does not import {family}"


def test_registering_twice_is_an_error():
    spec = lookup("relu")
    with pytest.raises(ValueError):
        registry.register(spec)
    assert registry.register(spec, replace=True) is spec


# ---------------------------------------------------------------- documentation


@pytest.mark.parametrize("name", CORE_OPS)
def test_op_and_params_are_documented(name):
    spec = lookup(name)
    assert spec.doc.strip() and "\n" not in spec.doc
    assert spec.example.strip() and "\n" not in spec.example
    assert name in spec.example, f"{name}: example does not use the op"
    assert spec.family
    for p in spec.params:
        assert p.doc.strip() and "\n" not in p.doc, f"{name}.{p.name}: no one-line doc"
    for key, reason in {**spec.omitted, **spec.renamed}.items():
        assert key and reason.strip(), f"{name}: omitted/renamed {key!r} needs a reason"
    for key in spec.inferred:
        assert spec.omitted.get(key, "").strip(), f"{name}: inferred {key!r} needs a reason in omitted"


@pytest.mark.parametrize("name", CORE_OPS)
def test_every_op_has_a_shape_rule_and_emission(name):
    spec = lookup(name)
    assert callable(spec.shape) and callable(spec.emit)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("name", CORE_OPS)
def test_no_alias_collides(name):
    spec = lookup(name)
    seen: dict[str, str] = {}
    for p in spec.params:
        for n in (p.name, *p.aliases):
            assert n not in seen, f"{name}: {n!r} names both {seen[n]} and {p.name}"
            seen[n] = p.name
        assert spec.param(p.name) is p
        for alias in p.aliases:
            assert spec.param(alias) is p


@pytest.mark.parametrize("name", CORE_OPS)
def test_param_types_defaults_and_choices(name):
    spec = lookup(name)
    for p in spec.params:
        assert p.type in PARAM_TYPES
        if p.choices is not None:
            assert isinstance(p.choices, tuple)
            assert p.required or p.default in p.choices
        if p.required or p.default is None:
            continue
        expected = {
            "int": int, "float": (int, float), "bool": bool, "str": str, "dim": int,
            "ints": (int, list, tuple), "padding": (int, str, list, tuple),
        }.get(p.type)
        if expected is not None:
            assert isinstance(p.default, expected), f"{name}.{p.name}: default {p.default!r}"
        if p.type == "int":
            assert not isinstance(p.default, bool)


@pytest.mark.parametrize("name", CORE_OPS)
def test_has_weights(name):
    # an op with weights counts them for `tgc summary` and owns the submodule that holds them
    spec = lookup(name)
    assert spec.has_weights == (spec.params_count is not None)
    assert not spec.has_weights or spec.owns_module in (None, True)


def test_documented_aliases():
    expected = {
        "linear": {"out_features": {"out", "size"}},
        "conv1d": {"out_channels": {"out", "channels"}, "kernel_size": {"kernel"}},
        "conv2d": {"out_channels": {"out", "channels"}, "kernel_size": {"kernel"}},
        "maxpool2d": {"kernel_size": {"kernel"}},
        "avgpool2d": {"kernel_size": {"kernel"}},
        "attention": {"num_heads": {"heads"}},
        "lstm": {"hidden_size": {"hidden"}, "num_layers": {"layers"}},
        "gru": {"hidden_size": {"hidden"}, "num_layers": {"layers"}},
        "embedding": {"num_embeddings": {"vocab"}, "embedding_dim": {"dim"}},
    }
    for op, params in expected.items():
        spec = lookup(op)
        for pname, aliases in params.items():
            p = spec.param(pname)
            assert p is not None and p.name == pname
            assert aliases <= set(p.aliases), f"{op}.{pname}: aliases {p.aliases}"


def _positional(name):
    """The hyper-parameters positional arguments bind to, in order (keyword-only ones left out)."""
    return [p.name for p in lookup(name).params if not p.keyword_only]


def test_positional_order():
    assert _positional("linear")[0] == "out_features"
    assert _positional("dropout")[0] == "p"
    assert _positional("conv1d")[:2] == ["out_channels", "kernel_size"]
    assert _positional("conv2d")[:2] == ["out_channels", "kernel_size"]
    assert _positional("embedding")[:2] == ["num_embeddings", "embedding_dim"]
    assert _positional("maxpool2d")[0] == "kernel_size"
    assert _positional("split")[:2] == ["sections", "dim"]
    assert _positional("chunk")[:2] == ["chunks", "dim"]
    assert _positional("transpose") == ["dim0", "dim1"]
    assert _positional("flatten") == ["start_dim", "end_dim"]


def test_required_params():
    def required(name):
        return {p.name for p in lookup(name).params if p.required}

    assert required("linear") == set()
    assert lookup("linear").param("out_features").default is None
    assert required("layernorm") == set()
    assert required("batchnorm2d") == set()
    assert required("conv2d") == {"out_channels", "kernel_size"}
    assert required("maxpool2d") == {"kernel_size"}
    assert required("adaptive_avgpool2d") == {"output_size"}
    assert required("embedding") == {"num_embeddings", "embedding_dim"}
    assert required("attention") == {"num_heads"}
    assert required("lstm") == required("gru") == {"hidden_size"}
    assert required("split") == {"sections"}
    assert required("chunk") == {"chunks"}
    assert required("cat") == required("stack") == {"dim"}
    assert required("mean") == required("max") == set()
    assert required("reshape") == {"shape"}
    assert required("permute") == {"dims"}
    assert required("transpose") == {"dim0", "dim1"}


def test_specific_types_and_defaults():
    conv = lookup("conv2d")
    assert conv.param("padding").type == "padding" and conv.param("padding").default == 0
    assert "same" in conv.param("padding").depends
    assert conv.param("kernel").type == "ints"
    assert conv.param("padding_mode").choices == ("zeros", "reflect", "replicate", "circular")
    assert lookup("gelu").param("approximate").choices == ("none", "tanh")
    for pool in ("maxpool2d", "avgpool2d"):
        stride = lookup(pool).param("stride")
        assert stride.default is None and "kernel_size" in stride.depends
    assert lookup("adaptive_avgpool2d").param("output_size").type == "ints"
    assert lookup("softmax").param("dim").default == -1
    assert lookup("log_softmax").param("dim").type == "dim"
    assert lookup("split").param("sections").type == "sections"
    assert lookup("split").param("dim").default == -1
    assert lookup("chunk").param("chunks").type == "int"
    assert lookup("reshape").param("shape").type == "shape"
    assert lookup("permute").param("dims").type == "dims"
    assert lookup("dropout").param("p").default == 0.5
    att = lookup("attention")
    assert att.param("causal").default is False
    assert att.param("average_weights").default is True
    assert att.param("dropout").default == 0.0


# ---------------------------------------------------------------- inputs and outputs


def test_inputs_and_outputs():
    att = lookup("attention")
    assert att.inputs[:3] == ("q", "k", "v") and len(att.inputs) == 4
    assert att.optional_inputs == 1 and att.required_inputs == 3 and att.max_inputs == 4
    assert att.outputs == ("out", "weights")
    assert lookup("lstm").outputs == ("seq", "h_n", "c_n")
    assert lookup("gru").outputs == ("seq", "h_n")
    assert lookup("split").outputs_from == "sections"
    assert lookup("chunk").outputs_from == "chunks"
    for name in CORE_OPS:
        spec = lookup(name)
        if spec.outputs_from is not None:
            assert spec.param(spec.outputs_from) is not None


def test_variadic_merge_ops():
    for name in ("add", "mul", "cat", "stack", "mean", "max"):
        spec = lookup(name)
        assert spec.variadic and spec.max_inputs is None
        assert spec.min_inputs == (1 if name in ("mean", "max") else 2)
        assert spec.required_inputs == spec.min_inputs
    for name in ("mean", "max"):
        spec = lookup(name)
        assert spec.param("dim").default is None
        assert spec.param("keepdim").default is False
    non_variadic = [n for n in CORE_OPS if n not in FAMILIES["merge"]]
    assert not any(lookup(n).variadic for n in non_variadic)


# ---------------------------------------------------------------- against torch


def test_torch_modules_resolve():
    for name in TORCH_OPS:
        cls = _torch_class(lookup(name).torch_module)
        assert inspect.isclass(cls)
    for name in ("add", "mul", "cat", "stack", "mean", "max", "split", "chunk", "reshape",
                 "permute", "transpose"):
        assert lookup(name).torch_module is None


def test_documented_rnn_params_match_docstring():
    """The hard-coded LSTM/GRU lists agree with torch's own docstring, where it has one."""
    for dotted, names in DOCUMENTED_CTOR.items():
        doc = _torch_class(dotted).__doc__ or ""
        head = doc.lstrip().splitlines()[0] if doc.strip() else ""
        if head.startswith("__init__("):
            listed = [a.split("=")[0].strip() for a in head[len("__init__("):-1].split(",")]
            assert listed == names, dotted
        for name in names:
            if name not in ("device", "dtype"):
                assert name in doc, f"{dotted}: {name} not documented"


@pytest.mark.parametrize("name", TORCH_OPS)
def test_params_match_torch_signature(name):
    spec = lookup(name)
    theirs = set(_torch_params(spec))
    ours = {_torch_name(spec, p) for p in spec.params
            if (name, p.name) not in TG_ONLY_PARAMS}
    ours |= set(spec.renamed) | set(spec.omitted) | set(spec.inferred)
    ours -= {n for (op, n) in VERSION_DEPENDENT if op == name and n not in theirs}
    assert ours == theirs, (
        f"{name}: missing {sorted(theirs - ours)}, unknown to torch {sorted(ours - theirs)}"
    )
    # inferred widths are never hyper-parameters, omitted ones are not exposed
    names = {p.name for p in spec.params}
    assert not names & set(spec.inferred)
    assert not {_torch_name(spec, p) for p in spec.params} & set(spec.omitted)
    assert set(spec.renamed.values()) <= names


@pytest.mark.parametrize("name", TORCH_OPS)
def test_defaults_match_torch(name):
    spec = lookup(name)
    theirs = _torch_params(spec)
    for p in spec.params:
        tname = _torch_name(spec, p)
        if tname not in theirs:
            assert (name, p.name) in TG_ONLY_PARAMS
            continue
        if (name, p.name) in DEFAULT_EXCEPTIONS:
            assert p.default != theirs[tname], f"{name}.{p.name}: exception no longer needed"
            continue
        expected = theirs[tname]
        if isinstance(expected, float) and not isinstance(p.default, bool):
            assert isinstance(p.default, (int, float)) and math.isclose(p.default, expected), (
                f"{name}.{p.name}: {p.default!r} != torch {expected!r}"
            )
        else:
            assert p.default == expected and type(p.default) is type(expected), (
                f"{name}.{p.name}: {p.default!r} != torch {expected!r}"
            )


def test_exception_tables_are_live():
    ops = all_ops()
    for table in (TG_ONLY_PARAMS, DEFAULT_EXCEPTIONS):
        for op, pname in table:
            assert ops[op].param(pname) is not None and ops[op].param(pname).name == pname
    for op, pname in VERSION_DEPENDENT:
        assert pname in ops[op].omitted
