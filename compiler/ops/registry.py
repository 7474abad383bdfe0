"""The op registry: one declarative `OpSpec` per op, looked up by name.

An op is one declaration in one file: signature, hyper-parameters with docs, shape rule,
emission, cost and autotest strategy. Every stage reads ops from here instead of branching on op
names: the resolver checks calls against `inputs`/`params`, the shape checker runs `shape`, the
emitter runs `emit`, `tgc summary` runs `params_count`/`macs`, `tgc test-ops` draws cases with
`autotest`, `tgc ops` prints the docs. Plugins register ops through `register`, the same API as
the built-ins. The built-in families are registered when `tgc.compiler.ops` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# The hyper-parameter types (int, ints, padding, dim, dims, shape, sections, ...): one object each,
# which checks an argument (resolve), evaluates it (shapes) and describes it (help, diagnostics).
from .paramtypes import PARAM_TYPES, ParamType, param_type  # noqa: F401


class _Required:
    """Marker for a hyper-parameter without a default."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

@dataclass(frozen=True)
class HyperParam:
    """One hyper-parameter of an op, named as in PyTorch, with short aliases."""

    name: str
    type: str
    default: Any = REQUIRED
    doc: str = ""
    aliases: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    # how this parameter's meaning depends on others, for `tgc ops NAME`
    depends: str | None = None
    # given by name only (`tie=wte`): positional arguments never bind to it
    keyword_only: bool = False

    def __post_init__(self) -> None:
        assert self.type in PARAM_TYPES, f"{self.name}: unknown parameter type {self.type!r}"

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class OpSpec:
    """An op: its inputs, outputs and hyper-parameters, and (from the shape stage on) its rules.

    `inputs` names the tensor inputs in order; the last `optional_inputs` of them may be left
    out (attention's key-padding mask). A `variadic` op takes any number (at least
    `min_inputs`) of tensor inputs and its hyper-parameters only by keyword. `outputs` names the
    outputs; `outputs_from` names the hyper-parameter that gives their count instead (split).
    `varargs` names an "ints" hyper-parameter that collects every positional argument after the
    inputs (and after the hyper-parameters before it) as a list: `mlp(128, 64)` binds
    `widths=[128, 64]`. `library` names the library an op belongs to (`"std"`): such an op is
    available only in a file that imports it (`import std`).
    """

    name: str
    doc: str
    inputs: tuple[str, ...] = ("x",)
    outputs: tuple[str, ...] = ("out",)
    params: tuple[HyperParam, ...] = ()
    variadic: bool = False
    min_inputs: int = 1
    # a variadic op's most operands (tensors and a number operand): `sub` and `div` take two
    max_operands: int | None = None
    optional_inputs: int = 0
    outputs_from: str | None = None
    varargs: str | None = None
    # a "renames" hyper-parameter that collects every keyword argument the op has no parameter for,
    # as `old=new` pairs: `rename(feature=channel)`
    varkw: str | None = None
    library: str | None = None
    family: str = ""
    # the PyTorch class this op wraps (for the signature test and help pages), if any
    torch_module: str | None = None
    # constructor arguments of `torch_module` deliberately not exposed, with the reason
    omitted: dict[str, str] = field(default_factory=dict)
    # torch parameter name -> our parameter name, where they differ on purpose
    renamed: dict[str, str] = field(default_factory=dict)
    # the input the op's width is inferred from, so it is not a hyper-parameter
    inferred: tuple[str, ...] = ()
    example: str = ""
    has_weights: bool = False
    # the shape rule in words for `tgc ops NAME`: "[*, in] -> [*, out_features]"
    shape_doc: str = ""
    # the PyTorch the op emits, in words or code, where compiling `example` cannot show it
    emits: str = ""
    # Python source (imports `torch` and `nn` available) of the classes or functions the emitted
    # code of this op calls: written once into every generated module that uses the op, after the
    # imports, so the module runs without the file that registered the op (plugins)
    support: str = ""
    # shape rule, given a `context.ShapeCtx`: the output types
    shape: Callable[..., Any] | None = None
    # emission, given a `context.EmitCtx`: an `Emission`
    emit: Callable[..., Any] | None = None
    # whether an application owns a submodule (`self.<name> = nn.Linear(...)`): a bool, or a rule
    # given the `ShapeCtx` of the application; None: the op owns one exactly when it has weights.
    # The naming pass reads it before anything is emitted; the emitter checks that `emit` agrees.
    owns_module: bool | Callable[..., bool] | None = None
    # costs for `tgc summary`, each given a `context.CostCtx`: the number of learned parameters
    # (an op with weights needs one) and the multiply-accumulates per sample (default 0)
    params_count: Callable[..., Any] | None = None
    macs: Callable[..., Any] | None = None
    # the shape of the op's `weight` (a tuple of sizes), given the `ShapeCtx` of an application:
    # what `tie=` compares (LANGUAGE.md 13.1); None for an op whose weight cannot be tied
    weight_shape: Callable[..., Any] | None = None
    # autotest strategy `(draw, spec) -> drawing.Case` for the ops whose valid values depend on
    # each other or on the input; None: every hyper-parameter is drawn by its type
    autotest: Callable[..., Any] | None = None

    def param(self, name: str) -> HyperParam | None:
        """The hyper-parameter called `name` or one of its aliases."""
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        return None

    def owns_module_in(self, ctx: Any) -> bool:
        """Whether the application that `ctx` (a `ShapeCtx`) describes owns a submodule."""
        if self.owns_module is None:
            return self.has_weights
        if isinstance(self.owns_module, bool):
            return self.owns_module
        return bool(self.owns_module(ctx))

    @property
    def max_inputs(self) -> int | None:
        return None if self.variadic else len(self.inputs)

    @property
    def required_inputs(self) -> int:
        return self.min_inputs if self.variadic else len(self.inputs) - self.optional_inputs


@dataclass(frozen=True)
class Emission:
    """How one op application reads in the emitted module.

    `call` is the forward expression (inputs already substituted); `module` the constructor of
    the submodule the call refers to as `ctx.m`, if any. An op with several outputs binds them
    with `unpack`, a pattern with one `{}` per output (`"{}, ({}, {})"` for an LSTM); `first`
    is the suffix that selects its first output inside a chain.
    """

    call: str
    module: str | None = None
    unpack: str | None = None
    first: str = "[0]"
    # lines for `__init__` after the submodule is made (`{m}` is its attribute): a buffer, say
    init: tuple[str, ...] = ()


REGISTRY: dict[str, OpSpec] = {}

# Ops registered while a plugin file was loading (name -> the file), so a new command line
# (`cli.main`, called many times in one process by tests) starts again from the built-ins.
PLUGIN_OPS: dict[str, str] = {}
_SHADOWED: dict[str, OpSpec] = {}  # built-ins a plugin replaced (`replace=True`), to restore
_loading: list[str] = []  # the plugin file being loaded, if any
_MODULES: list[str] = []  # the plugins' module names in sys.modules


def register(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    """Add an op to the registry; the public API for built-ins and plugins alike."""
    if spec.name in REGISTRY and not replace:
        where = f" (by {PLUGIN_OPS[spec.name]})" if spec.name in PLUGIN_OPS else ""
        raise ValueError(f"op {spec.name!r} is already registered{where}")
    names = set()
    for p in spec.params:
        for n in (p.name, *p.aliases):
            if n in names:
                raise ValueError(f"op {spec.name!r}: parameter name {n!r} is used twice")
            names.add(n)
    if spec.varargs is not None:
        collector = spec.param(spec.varargs)
        if collector is None or collector.name != spec.varargs or collector.type != "ints":
            raise ValueError(f"op {spec.name!r}: varargs {spec.varargs!r} must name an \"ints\" parameter")
        if spec.variadic:
            raise ValueError(f"op {spec.name!r}: a variadic op takes its hyper-parameters by keyword only")
    if _loading and spec.name in REGISTRY and spec.name not in PLUGIN_OPS:
        _SHADOWED.setdefault(spec.name, REGISTRY[spec.name])
    REGISTRY[spec.name] = spec
    if _loading:
        PLUGIN_OPS[spec.name] = _loading[-1]
    return spec


def load_plugin(path: str) -> list[str]:
    """Execute a plugin file (which calls `register`); the names of the ops it registered.

    Raises whatever the file raises; a failed file leaves none of its ops registered.
    """
    import importlib.util
    import os
    import sys

    spec = importlib.util.spec_from_file_location(f"tgc_plugin_{len(PLUGIN_OPS)}_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    already = dict(PLUGIN_OPS)
    _loading.append(os.path.basename(path))
    sys.modules[spec.name] = module  # as an import does (dataclasses, pickling look it up)
    _MODULES.append(spec.name)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in PLUGIN_OPS if n not in already]:
            del PLUGIN_OPS[name]
            if name in _SHADOWED:
                REGISTRY[name] = _SHADOWED.pop(name)
            else:
                REGISTRY.pop(name, None)
        raise
    finally:
        _loading.pop()
    return [n for n in PLUGIN_OPS if n not in already]


def unload_plugins() -> None:
    """Forget every op a plugin registered: back to the built-ins."""
    for name in PLUGIN_OPS:
        REGISTRY.pop(name, None)
    REGISTRY.update(_SHADOWED)
    PLUGIN_OPS.clear()
    _SHADOWED.clear()
    import sys

    for name in _MODULES:
        sys.modules.pop(name, None)
    _MODULES.clear()


def lookup(name: str) -> OpSpec | None:
    return REGISTRY.get(name)


def all_ops() -> dict[str, OpSpec]:
    return dict(sorted(REGISTRY.items()))
