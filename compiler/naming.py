"""Naming pass: every Python name of the emitted module, decided once.

For each emitted class (block and repeat-body classes, then the models) it assigns the class
name, the constructor argument of each parameter and input size, the submodule attribute of
each node that owns a submodule, the attribute a parameter read in `forward` is stored in, and
the local of each value `forward` binds (or that it inlines into its single use). The emitter,
`tgc summary`, `tgc graph`, verification and the training emitter all read these names, so they
can never disagree. Names come from the source and are made safe and unique the way torch.fx's
`_Namespace` does it: keywords, builtins, the emitted file's own imports and helpers get a `_`
suffix, repeats a `_1` suffix.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from . import ir
from .ops.context import ShapeCtx
from .ops.registry import lookup
from .shapes import Checked, ClassShapes, GraphShapes

# Names no emitted identifier may take: Python's keywords, soft keywords and builtins, and what
# the emitted model file defines or imports itself (`torch`, `nn`, `F`, `os` and the
# `_load_weights` helper with its `weights_dir` constructor argument, for a `load`).
RESERVED = (
    set(keyword.kwlist)
    | set(getattr(keyword, "softkwlist", ()))
    | {"_", "case", "match", "type"}  # the soft keywords of every Python the emitted code targets
    | set(dir(builtins))
    | {"self", "torch", "nn", "F", "super", "typing", "Tensor", "os", "_load_weights", "weights_dir"}
)

# Attributes of nn.Module (methods, and the state its __init__ sets) that a submodule or a stored
# parameter must not take: `self.compile` is the method, `self._modules = ...` breaks the module.
# The generated classes add `frozen_modules`. A test compares this with torch's nn.Module.
MODULE_ATTRS = {
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl",
    "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks",
    "_get_name", "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks",
    "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules", "_named_members",
    "_non_persistent_buffers_set", "_parameters", "_register_load_state_dict_pre_hook",
    "_register_state_dict_hook", "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "apply",
    "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches",
    "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad", "frozen_modules",
}

# What a training script (train.py) binds at the top level, or reads where it constructs the
# model (`build`): a model class there would be shadowed (`from model import main`, then
# `def main`) or shadow it. With them, every top-level name of the helpers train_utils.py copies
# from (`runtime/vendored/`, `training_names()`). A test compares both with the scripts the
# examples compile to.
TRAINING_NAMES = {
    "AMP", "COMMANDS", "DistributedDataParallel", "HERE", "HIGHER_IS_BETTER", "INPUTS", "MONITOR", "PATHS",
    "SETTINGS", "argparse", "build", "cfg", "check_fit", "contextlib", "device", "difflib", "evaluate",
    "evaluate_command", "first_rows", "info", "load_data", "loss_of", "lr_find", "main", "make_loss", "math",
    "metrics", "model", "optimizer", "order_of", "outputs", "parse_command_line", "predict", "read_data",
    "read_inputs", "report", "sample", "scale", "shown", "sys", "time", "train", "train_utils", "unfreeze",
    "wrap",
}


@lru_cache(maxsize=1)
def training_names() -> frozenset[str]:
    """`TRAINING_NAMES` and the top-level names of the vendored helpers and their imports (read as
    text: the helpers import torch, the naming pass never does)."""
    import ast
    from importlib import resources

    names = set(TRAINING_NAMES)
    for entry in resources.files("tgc.runtime.vendored").iterdir():
        if not entry.name.endswith(".py"):
            continue
        for node in ast.parse(entry.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


# A value used once, inside the statement that produces it, is inlined into its use; at most this
# many calls nest in one expression, and at most one submodule call is nested inside another
# (`self.b(torch.relu(self.a(x)))`, as nanoGPT writes it; a third is bound to a local first).
MAX_NESTING = 3
MAX_NESTED_MODULES = 1


class Namespace:
    """Unique, Python-safe names from source names, as torch.fx's `_Namespace` makes them."""

    def __init__(self, reserved: set[str] = RESERVED):
        self.reserved = set(reserved)
        self.used: set[str] = set()
        self.map: dict[str, str] = {}

    def name(self, source: str) -> str:
        if source in self.map:
            return self.map[source]
        base = re.sub(r"[^0-9A-Za-z_]", "_", source) or "_"
        if base[0].isdigit():
            base = "_" + base
        if base.startswith("__"):
            # a dunder (`__class__` breaks super()) or a name Python mangles in a class (`self.__h`)
            base = (base.strip("_") or "u") + "_"
        if base in self.reserved:
            base += "_"
        candidate, n = base, 1
        while candidate in self.used or candidate in self.reserved:
            candidate = f"{base}_{n}"
            n += 1
        self.used.add(candidate)
        self.map[source] = candidate
        return candidate

    def fresh(self, source: str) -> str:
        """A new name for `source`, even where the same source name was named before."""
        self.map.pop(source, None)
        return self.name(source)


@dataclass(frozen=True)
class GraphNames:
    """The names inside one emitted class.

    `init`: parameter or input size -> constructor argument; `attrs`: node index -> submodule
    attribute (only for nodes that own one); `stored`: parameter -> the attribute `forward` reads it
    from; `locals`: value -> the local `forward` binds it to (`_` where it is discarded); `inline`:
    the values written into their single use instead of being bound.
    """

    cls: str
    init: Mapping[str, str]
    attrs: Mapping[int, str]
    stored: Mapping[str, str]
    locals: Mapping[str, str]
    inline: frozenset[str]

    def local(self, value: str) -> str:
        return self.locals[value]


@dataclass(frozen=True)
class Names:
    """Every name of an emitted program: its block/repeat classes by key, then its models."""

    classes: Mapping[tuple, GraphNames]
    models: tuple[GraphNames, ...]

    def of(self, checked: Checked, shapes: GraphShapes) -> GraphNames:
        if isinstance(shapes, ClassShapes):
            return self.classes[shapes.key]
        return self.models[checked.models.index(shapes)]


def name_program(checked: Checked) -> Names:
    """The naming pass: names of every class of `checked`, in emission order.

    Classes are named first: a model class is imported by the training script (so it takes no
    name of that script's, `training_names()`), and a constructor argument takes no class's name
    (`__init__` constructs the block classes)."""
    support = defined_names(support_code(checked))
    classes = Namespace(RESERVED | support | training_names())
    class_names = [classes.fresh(camel(_class_base(cls.graph))) for cls in checked.classes]
    model_names = [classes.fresh(shapes.graph.name) for shapes in checked.models]
    taken = RESERVED | support | classes.used
    by_key = {cls.key: _graph_names(cls, name, taken) for cls, name in zip(checked.classes, class_names)}
    models = tuple(_graph_names(shapes, name, taken) for shapes, name in zip(checked.models, model_names))
    return Names(by_key, models)


def owns_module(shapes: GraphShapes, index: int, node: ir.Node) -> bool:
    """Whether node `index` of `shapes.graph` is emitted as a submodule of its class."""
    if not isinstance(node, ir.OpCall):
        return True  # a block call or a repeat is a submodule of its own class
    spec = lookup(node.op)
    assert spec is not None, node.op
    in_types = [shapes.types[v] for v in node.inputs]
    ctx = ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types, shapes.args[index])
    return spec.owns_module_in(ctx)


def _graph_names(shapes: GraphShapes, cls: str, module_names: set[str] = RESERVED) -> GraphNames:
    graph = shapes.graph
    # constructor arguments: required input widths and declared parameters keep their spelling
    # first come first served, then the input sizes and enclosing parameters a class may take;
    # none takes a name `__init__` reads from the module (`module_names`: its classes, helpers)
    init = Namespace(module_names)
    sizes = shapes.size_params if isinstance(shapes, ClassShapes) else {}
    for name in (*shapes.required, *(p.name for p in graph.params), *sizes, *shapes.param_values):
        init.name(name)

    node_attrs = _submodule_attrs(shapes)
    attrs = Namespace(RESERVED | MODULE_ATTRS)
    attrs.used |= {a.split(".")[0] for a in node_attrs.values()}
    stored = {name: attrs.name(name) for name in init.map}
    local_names, inline = _forward_locals(graph, node_attrs)
    return GraphNames(cls, dict(init.map), node_attrs, stored, local_names, frozenset(inline))


def _submodule_attrs(shapes: GraphShapes) -> dict[int, str]:
    """The attribute of each node that owns a submodule (LANGUAGE.md 13, "Names in the emitted
    module"): a statement `v = ...` whose own chain holds one op with weights (a block call and a
    repeat count as such) emits it as `self.v`, one holding several as `self.v = nn.Sequential(...)`
    of those ops in order (attributes `v.0`, `v.1`); a node inside a call argument or arithmetic,
    and one that owns a module without weights (`dropout`), keeps its derived label (`v_linear`,
    `v_dropout`). Where two would take one name, the later gets a numbered suffix."""
    graph = shapes.graph
    owning = [(index, node) for index, node in enumerate(graph.nodes) if owns_module(shapes, index, node)]
    groups: dict[tuple[int, str], list[int]] = {}
    owners: dict[tuple[int, str], list[int]] = {}  # every op of the statement's chain with a module
    for index, node in owning:
        if node.label == node.target and _has_weights(node):
            groups.setdefault((node.statement, node.target), []).append(index)
        if node.label == node.target:
            owners.setdefault((node.statement, node.target), []).append(index)
    for key, members in owners.items():
        if key not in groups and len(members) == 1:
            groups[key] = members  # the one module of a statement without weights: `self.maxpool`
    attrs = Namespace(RESERVED | MODULE_ATTRS)
    out: dict[int, str] = {}
    layers: dict[str, str] = {}  # `layer NAME` -> its attribute: every use shares it
    for index, node in owning:
        layer = node.arg(ir.LAYER_ARG)
        if layer is not None:
            if layer.id not in layers:
                layers[layer.id] = attrs.fresh(layer.id)
            out[index] = layers[layer.id]
            continue
        group = groups.get((node.statement, node.target)) if node.label == node.target else None
        if group is not None and index not in group:
            group = None
        if group is None:
            out[index] = attrs.fresh(node.label if node.label != node.target else f"{node.target}_{node.op}")
        elif len(group) == 1:
            out[index] = attrs.fresh(node.target)
        elif index == group[0]:
            base = attrs.fresh(node.target)
            for k, member in enumerate(group):
                out[member] = f"{base}.{k}"
    return dict(sorted(out.items()))  # in node order


def _has_weights(node: ir.Node) -> bool:
    """An op with weights, a block call or a repeat (LANGUAGE.md 13.1: these count as ops with
    weights); a `dropout` owns a module but has none, and keeps a derived name (`h_dropout`)."""
    if not isinstance(node, ir.OpCall):
        return True
    spec = lookup(node.op)
    return bool(spec and spec.has_weights)


def attr_expr(attr: str) -> str:
    """`self.<attr>` as Python: `h.1` (a member of an nn.Sequential) is `self.h[1]`."""
    head, *rest = attr.split(".")
    return f"self.{head}" + "".join(f"[{k}]" for k in rest)


def sequences(attrs: Mapping[int, str]) -> dict[str, list[int]]:
    """Each statement's `nn.Sequential` attribute -> the nodes that are its members, in order."""
    members: dict[str, list[int]] = {}
    for index, attr in sorted(attrs.items()):
        if "." in attr:
            members.setdefault(attr.split(".")[0], []).append(index)
    return members


def one_run(graph: ir.Graph, run: list[int]) -> bool:
    """Whether a sequential's members are one run of the chain, each applied to the one before
    (one input and one output each): what the emitter may call whole, `self.v(x)`."""
    nodes = [graph.nodes[i] for i in run]
    return all(len(n.inputs) == 1 and len(n.outputs) == 1 for n in nodes) and all(
        b == a + 1 and graph.nodes[b].inputs[0] == graph.nodes[a].outputs[0] for a, b in zip(run, run[1:]))


def _whole_sequences(graph: ir.Graph, attrs: Mapping[int, str]) -> set[int]:
    """The members after the first of each sequential that is one run (it nests as one call)."""
    return {i for run in sequences(attrs).values() if one_run(graph, run) for i in run[1:]}


def _forward_locals(graph: ir.Graph, attrs: Mapping[int, str] = {}) -> tuple[dict[str, str], set[str]]:
    """The locals of `forward`, in the order it binds them, and the values it inlines."""
    ns = Namespace(RESERVED)
    for inp in graph.inputs:
        ns.name(inp.name)
    uses: dict[str, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 1
        if "." in v:  # an unnamed output (`merge`, a final bare chain) reads as its statement
            node = graph.producer(v)
            ns.map[v] = ns.name(node.target if node else "out")
    locals_: dict[str, str] = {inp.name: ns.name(inp.name) for inp in graph.inputs}
    depth_of: dict[str, int] = {}  # inlined value -> the depth of calls its expression nests
    modules_of: dict[str, int] = {}  # inlined value -> the submodule calls in its expression
    inline: set[str] = set()
    whole = _whole_sequences(graph, attrs)
    for index, node in enumerate(graph.nodes):
        depth = max((depth_of.pop(v) for v in node.inputs if v in depth_of), default=0)
        modules = sum(modules_of.pop(v) for v in node.inputs if v in modules_of)
        if index in whole:
            depth -= 1  # the next member of an nn.Sequential called whole (`self.h(x)`): nests nothing
        elif index in attrs:
            modules += 1
        first = node.outputs[0]
        looped = isinstance(node, ir.Repeat) and len(node.inputs) > 1  # `for layer in self.h:` lines
        if looped:
            locals_[step_local(node)] = ns.name("layer")
        if (not looped and "." in first and first not in graph.outputs and uses.get(first, 0) == 1
                and all(uses.get(o, 0) == 0 for o in node.outputs[1:]) and depth < MAX_NESTING
                and modules <= MAX_NESTED_MODULES):
            depth_of[first] = depth + 1
            modules_of[first] = modules
            inline.add(first)
            continue
        if len(node.outputs) == 1:
            if "." in first:
                ns.map[first] = ns.name(node.target)
            locals_[first] = ns.name(first)
            continue
        if "." in first and uses.get(first, 0):  # a chain's first output reads as its statement
            ns.map[first] = ns.name(node.target)
        for o in node.outputs:
            discarded = o.startswith("_.") or ("." in o and not uses.get(o))
            locals_[o] = "_" if discarded else ns.name(o)
    for v in graph.outputs:
        locals_.setdefault(v, ns.name(v))
    return locals_, inline


# ------------------------------------------------------------------------------ class names


def single_block_body(graph: ir.Graph) -> bool:
    """A repeat body that is one block call on the body's inputs: its steps are emitted as the
    block's own class (`nn.Sequential(*[ResidualConv(...) for _ in range(depth)])`), no wrapper."""
    if graph.kind != "repeat" or len(graph.nodes) != 1:
        return False
    node = graph.nodes[0]
    return (isinstance(node, ir.BlockCall) and node.inputs == tuple(i.name for i in graph.inputs)
            and node.outputs == graph.outputs and not node.frozen)


def step_local(node: ir.Node) -> str:
    """The key in `GraphNames.locals` of the loop variable of a repeat with context values."""
    return f"{node.outputs[0]}#step"


def support_code(checked: Checked) -> list[str]:
    """The `support` source of every op the program uses (plugins' classes), once each, in order."""
    out: list[str] = []

    def visit(graph: ir.Graph) -> None:
        for node in graph.nodes:
            if isinstance(node, ir.OpCall):
                spec = lookup(node.op)
                code = spec.support.strip("\n") if spec is not None else ""
                if code and code not in out:
                    out.append(code)
            elif isinstance(node, ir.Repeat):
                visit(node.body)

    for shapes in (*checked.classes, *checked.models):
        visit(shapes.graph)
    return out


def defined_names(sources: list[str]) -> set[str]:
    """The top-level names that support code defines (emitted classes must not take them)."""
    import ast

    names: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # reported when the generated module is imported
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _class_base(graph: ir.Graph) -> str:
    """What a class is called: a block by its name, a repeat body by what it applies
    (`linear >> relu` is `LinearRelu`, not the statement's `HRepeat`)."""
    if graph.kind != "repeat" or not graph.nodes:
        return graph.name
    ops = list(dict.fromkeys(n.op for n in graph.nodes))
    # one op alone would read as torch's own class (`Linear`): `LinearStep`
    return "_".join(ops[:3]) + ("_step" if len(ops) > 3 or len(ops) == 1 else "")


def camel(name: str) -> str:
    """`residual` -> `Residual`, `h_repeat` -> `HRepeat`: class names for blocks and repeat bodies."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"
