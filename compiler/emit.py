"""Emit stage: checked graphs -> PyTorch source, through Jinja templates and black.

The templates hold only layout; this module computes their view data: Python-safe names
(keywords, builtins, `self`, `torch`, `nn` renamed; `_1` suffixes), constructor arguments,
submodules with the `.tg` line they come from, and one forward line per source statement with a
shape comment in the user's dimension names. Output is byte-identical for the same input.
"""

from __future__ import annotations

import builtins
import keyword
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tgc import __version__

from . import ir
from .ops.registry import Emission, lookup
from .shapes import Checked, ClassShapes, DimRef, GraphShapes, OpCtx, TType
from .sym import Sym

RESERVED = (
    set(keyword.kwlist)
    | set(getattr(keyword, "softkwlist", ()))
    | set(dir(builtins))
    | {"self", "torch", "nn", "F", "super", "typing", "Tensor"}
)

# Attributes of nn.Module that a submodule must not shadow.
MODULE_ATTRS = {
    "training", "forward", "to", "cuda", "cpu", "eval", "train", "parameters", "modules",
    "children", "buffers", "state_dict", "load_state_dict", "apply", "float", "double", "half",
    "type", "zero_grad", "named_parameters", "named_modules", "named_children", "named_buffers",
    "register_buffer", "register_parameter", "add_module", "requires_grad_", "extra_repr",
    "get_submodule", "get_parameter", "get_buffer", "share_memory", "dump_patches", "call_super_init",
    "frozen_modules",
}


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
        if base in self.reserved:
            base += "_"
        candidate, n = base, 1
        while candidate in self.used or candidate in self.reserved:
            candidate = f"{base}_{n}"
            n += 1
        self.used.add(candidate)
        self.map[source] = candidate
        return candidate


class EmitCtx:
    """What an op's `emit` function sees: rendered inputs, types, arguments, its submodule."""

    def __init__(self, op: OpCtx, inputs: list[str], out_types: list[TType], m: str,
                 pyname, stored=None):
        self.op = op
        self.spec = op.spec
        self.node = op.node
        self.inputs = inputs
        self.in_types = op.inputs
        self.out_types = out_types
        self.args = op.args
        self.m = m
        self._pyname = pyname
        self._stored = stored or (lambda p: p)

    def r(self, value: Any, _name=None) -> str:
        """Python source of an argument value (a Sym, list, None, or plain value) for `__init__`."""
        name = _name or self._pyname
        if isinstance(value, Sym):
            return value.render(name)
        if isinstance(value, (list, tuple)):
            items = [self.r(v, name) for v in value]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if value is None:
            return "None"
        if isinstance(value, DimRef):
            raise TypeError("resolve a dimension with ctx.dim() before rendering it")
        return repr(value)

    def rf(self, value: Any) -> str:
        """Like `r`, for `forward`: a model parameter there is read from `self.<param>`, which the
        constructor stores, so the module stays re-parametrisable without recompiling."""
        return self.r(value, self._forward_name)

    def _forward_name(self, param: str) -> str:
        return f"self.{self._stored(param)}"

    def arg(self, name: str) -> Any:
        return self.args.get(name)

    def dim(self, name: str, t: TType | None = None, what: str = "dim") -> int:
        """A `dim` argument as an index into `t` (the first input by default): -1 for the last."""
        t = t or self.in_types[0]
        index = self.op.dim_index(self.args.get(name), t, what)
        return -1 if index == t.rank - 1 and t.rank > 1 else index

    def size(self, t: TType, index: int) -> Sym:
        s = t.dims[index].size
        assert s is not None, "emission needs a sized dimension; the shape rule must check it"
        return s


@dataclass
class ClassView:
    name: str
    doc: str | None
    init_args: list[str] = field(default_factory=list)
    init_lines: list[str] = field(default_factory=list)
    forward_args: list[str] = field(default_factory=list)
    forward_lines: list[str] = field(default_factory=list)
    returns: str = "torch.Tensor"
    outer: list[str] = field(default_factory=list)  # a repeat body's enclosing parameters
    sizes: list[str] = field(default_factory=list)  # the input sizes a block class takes
    frozen: list[str] = field(default_factory=list)  # submodules kept in eval mode by train()
    loads: bool = False  # takes `weights_dir` and loads state dicts
    node_attrs: dict[int, str] = field(default_factory=dict)  # node index -> submodule attribute
    init_names: dict[str, str] = field(default_factory=dict)  # constructor argument names


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("tgc.compiler", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def emit(checked: Checked, source_name: str, probes: bool = False) -> str:
    """The model file for a checked program. `probes` adds verification hooks (never shipped)."""
    source = os.path.basename(source_name)
    views = emit_views(checked, source, probes)
    text = _environment().get_template("model.py.j2").render(
        header=_header(source, [v.name for v in views[len(checked.classes):]]),
        uses_functional=any("F." in line for v in views for line in v.forward_lines),
        loads=any(v.loads for v in views),
        probes=probes,
        support=support_code(checked),
        classes=views,
    )
    return format_code(text)


def emit_views(checked: Checked, source: str, probes: bool = False) -> list[ClassView]:
    """The view data of every class: block and repeat classes first, then one per model."""
    class_names, model_names = emitted_class_names(checked)
    views = []
    for cls in checked.classes:  # blocks and repeat bodies, callees first
        view = _model_view(cls, source, class_names[cls.key].name, class_names, False)
        class_names[cls.key].outer = view.outer  # the enclosing parameters a repeat body uses
        class_names[cls.key].sizes = view.sizes  # the input sizes its constructor takes
        views.append(view)
    for shapes, name in zip(checked.models, model_names):
        views.append(_model_view(shapes, source, name, class_names, probes))
    return views


def support_code(checked: Checked) -> list[str]:
    """The `support` source of every op the program uses (plugins' classes), once each, in order."""
    out: list[str] = []

    def visit(graph: ir.Graph) -> None:
        for node in graph.nodes:
            if node.kind == "op":
                spec = lookup(node.op)
                code = spec.support.strip("\n") if spec is not None else ""
                if code and code not in out:
                    out.append(code)
            elif node.body is not None:
                visit(node.body)

    for shapes in (*checked.classes, *checked.models):
        visit(shapes.graph)
    return out


def _defined_names(sources: list[str]) -> set[str]:
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


@dataclass
class ClassInfo:
    """What a call site needs of a block or repeat-body class, once the class is emitted."""

    name: str
    outer: list[str] = field(default_factory=list)  # enclosing parameters, passed by name
    sizes: list[str] = field(default_factory=list)  # input sizes the constructor takes


def emitted_class_names(checked: Checked) -> tuple[dict[tuple, ClassInfo], list[str]]:
    """Python class names: of each block/repeat class (by key), then of each model, in order."""
    classes = Namespace(RESERVED | _defined_names(support_code(checked)))

    def fresh(name: str) -> str:
        classes.map.pop(name, None)  # two repeat bodies may share a source name: one class each
        return classes.name(name)

    by_key = {cls.key: ClassInfo(fresh(_camel(cls.graph.name))) for cls in checked.classes}
    return by_key, [fresh(shapes.graph.name) for shapes in checked.models]


def format_code(text: str) -> str:
    import black

    mode = black.Mode(target_versions={black.TargetVersion.PY310})
    return black.format_str(text, mode=mode)


def _header(source: str, names: list[str]) -> str:
    what = ", ".join(names) if names else "model"
    return f'"""{_doc_text(what)}, generated by tgc {__version__} from {_doc_text(source)}.\n\nDo not edit: change {_doc_text(source)} and recompile."""'


def _comment_text(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _doc_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring."""
    text = _comment_text(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'
    return text


def _where(span) -> str:
    """`file.tg:LINE` for a comment: the file the line is in (a library block's own file)."""
    return f"{_comment_text(os.path.basename(span.file))}:{span.line}"


def _camel(name: str) -> str:
    """`residual` -> `Residual`, `h_repeat` -> `HRepeat`: class names for blocks and repeat bodies."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


def _model_view(shapes: GraphShapes, source: str, class_name: str, class_names: dict[tuple, ClassInfo],
                probes: bool) -> ClassView:
    graph = shapes.graph
    view = ClassView(class_name, _docstring(graph.doc))
    is_class = isinstance(shapes, ClassShapes)

    # ---- constructor arguments: required ones first (input widths, parameters without default),
    # then parameters with defaults. A repeat body takes just the enclosing parameters it uses.
    init_ns = Namespace(RESERVED)
    used: list[str] = []

    def pyname(name: str) -> str:
        if name not in used:
            used.append(name)
        return init_ns.name(name)

    declared = {p.name: p for p in graph.params}
    for name in (*shapes.required, *declared):
        init_ns.name(name)  # declared names keep their spelling, first come first served


    # ---- forward
    fwd_ns = Namespace(RESERVED)
    attrs = Namespace(RESERVED | MODULE_ATTRS)
    stored: dict[str, str] = {}  # parameters that forward reads, stored as `self.<name>`

    def stored_param(param: str) -> str:
        if param not in stored:
            stored[param] = attrs.name(param)
        return stored[param]
    for inp in graph.inputs:
        name = fwd_ns.name(inp.name)
        view.forward_args.append(f"{name}: torch.Tensor")
    for inp in graph.inputs:
        view.forward_lines.append(f"# {fwd_ns.name(inp.name)}: {_comment_text(shapes.types[inp.name].show())}")
    uses: dict[str, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 1
        if "." in v:  # an unnamed output (`merge`, a final bare chain) reads as its statement
            node = graph.producer(v)
            fwd_ns.map[v] = fwd_ns.name(node.target if node else "out")

    pending: dict[str, tuple[str, int]] = {}  # internal value -> (expression, nesting depth)

    for index, node in enumerate(graph.nodes):
        spec = lookup(node.op) if node.kind == "op" else None
        assert node.kind != "op" or (spec is not None and spec.emit is not None), node.op
        in_exprs: list[str] = []
        depth = 0
        for v in node.inputs:
            if v in pending:
                expr, d = pending.pop(v)
                in_exprs.append(expr)
                depth = max(depth, d)
            else:
                in_exprs.append(fwd_ns.name(v))
        in_types = [shapes.types[v] for v in node.inputs]
        out_types = [shapes.types[v] for v in node.outputs]
        attrs.map.pop(node.label, None)  # one attribute per node, even where labels repeat
        attr = attrs.name(node.label)
        view.node_attrs[index] = attr
        if spec is None:
            em = _class_call(node, shapes.args[index], class_names, f"self.{attr}", in_exprs, pyname)
            tuple_valued = len(node.outputs) > 1  # the resolver binds every output of a block
        else:
            op_ctx = OpCtx(spec, node, in_types, shapes.args[index], [], [])
            ctx = EmitCtx(op_ctx, in_exprs, out_types, f"self.{attr}", pyname, stored_param)
            em = spec.emit(ctx)
            # an op with several outputs returns a tuple, even where only one output is bound
            tuple_valued = len(spec.outputs) > 1 or spec.outputs_from is not None
        if em.module is not None:
            view.init_lines.append(f"self.{attr} = {em.module}  # {_where(node.span)}")
            if node.frozen:
                # no gradients, and eval mode for good (batch-norm statistics stay fixed): see train()
                view.init_lines.append(f"self.{attr}.requires_grad_(False)  # frozen")
                view.frozen.append(attr)
            for ld in graph.loads:
                if ld.node_label == node.label and ld.target in (node.target, *node.outputs):
                    view.init_lines.append(f"_load_weights(self.{attr}, {ld.path!r}, weights_dir)"
                                           f"  # {_where(ld.span)}")
                    view.loads = True
        else:
            attrs.used.discard(attr)
            attrs.map.pop(node.label, None)
        first = node.outputs[0]
        call = f"{em.call}{em.first}" if tuple_valued and len(node.outputs) == 1 else em.call
        single_use_internal = (
            "." in first
            and first not in graph.outputs
            and uses.get(first, 0) == 1
            and all(uses.get(o, 0) == 0 for o in node.outputs[1:])
            and depth < 3
            and not probes
        )
        if single_use_internal:
            expr = f"{em.call}{em.first}" if tuple_valued else em.call
            pending[first] = (expr, depth + 1)
            continue
        comment = f"  # {_comment_text(out_types[0].show())}"
        if len(node.outputs) == 1:
            target = fwd_ns.name(first) if "." not in first else fwd_ns.name(node.target)
            if "." in first:
                fwd_ns.map[first] = target
            view.forward_lines.append(f"{target} = {call}{comment}")
            names = [target]
        else:
            if "." in first and uses.get(first, 0):  # a chain's first output reads as its statement
                fwd_ns.map[first] = fwd_ns.name(node.target)
            names = [_target_name(fwd_ns, o, uses) for o in node.outputs]
            pattern = em.unpack or ", ".join("{}" for _ in names)
            view.forward_lines.append(f"{pattern.format(*names)} = {em.call}{comment}")
        if probes:
            for o, bound in zip(node.outputs, names):
                if (uses.get(o, 0) or not o.startswith("_.")) and bound != "_":
                    view.forward_lines.append(f"_tgc_probe({o!r}, {fwd_ns.name(o)})")

    keep = [f"self.{attr} = {pyname(param)}" for param, attr in stored.items()]
    asserts = [f"assert {a.condition.render(pyname)}, {a.message!r}" for a in shapes.asserts]
    if view.frozen:
        # frozen submodules, by name: train() keeps them in eval mode; unfreezing removes a name
        keep.append("self.frozen_modules = {" + ", ".join(repr(a) for a in view.frozen) + "}")
        view.init_lines.append("self.train()  # puts the frozen submodules in eval mode")
    view.init_lines[0:0] = asserts + keep

    # constructor arguments, now that the body has named what it uses
    required = [w for w in shapes.required]
    if is_class:
        view.sizes = [n for n in shapes.size_params if n in used]
        required += view.sizes
    for name in required:
        view.init_args.append(f"{init_ns.name(name)}: int")
    view.init_names = {n: init_ns.name(n) for n in (*required, *(p.name for p in graph.params))}
    if is_class and shapes.key[0] == "repeat":
        for name in used:
            if name not in required and name in shapes.param_values:
                view.init_args.append(f"{init_ns.name(name)}: {_type_name(shapes.param_values[name])}")
                view.outer.append(name)
    else:
        params = sorted(graph.params, key=lambda p: p.default is not None)  # no default first
        for p in params:
            default = "" if p.default is None else f" = {Sym.const(p.default).render()}"
            view.init_args.append(f"{init_ns.name(p.name)}: {p.type}{default}")
    if view.loads:
        view.init_args.append("weights_dir: str | None = None")
    outs = [fwd_ns.name(o) for o in graph.outputs]
    if len(outs) == 1:
        view.forward_lines.append(f"return {outs[0]}")
    else:
        view.forward_lines.append("return " + ", ".join(outs))
        view.returns = "tuple[" + ", ".join("torch.Tensor" for _ in outs) + "]"
    return view


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), "int")


def _class_call(node: ir.Node, args: dict[str, Any], class_names: dict[tuple, ClassInfo], m: str,
                inputs: list[str], pyname) -> Emission:
    """A block call or a repeat: a submodule of the block's (or body's) own class."""
    if node.kind == "block":
        info = class_names[("block", node.op)]
        given = {name for name, _ in node.args}
        kwargs = [f"{k}={v.render(pyname)}" for k, v in args["params"].items() if k in given]
        kwargs += [f"{k}={v.render(pyname)}" for k, v in args["sizes"].items() if k in info.sizes]
        n_out = len(node.outputs)
        unpack = ", ".join("{}" for _ in range(n_out)) if n_out > 1 else None
        return Emission(call=f"{m}({', '.join(inputs)})", module=f"{info.name}({', '.join(kwargs)})",
                        unpack=unpack)
    info = class_names[("repeat", node.span.file, node.span.line, node.span.column)]
    count: Sym = args["count"]
    outer = [f"{k}={pyname(k)}" for k in info.outer]
    wanted = info.sizes

    def step(sizes: dict[str, Sym]) -> str:
        given = [f"{k}={v.render(pyname)}" for k, v in sizes.items()]
        return f"{info.name}({', '.join([*given, *outer])})"

    steps = [{k: v for k, v in st.items() if k in wanted} for st in args["steps"]]

    if all(st == steps[0] for st in steps):
        module = f"nn.Sequential(*[{step(steps[0])} for _ in range({count.render(pyname)})])"
    else:  # a literal count whose steps see different sizes: one constructor call per step
        module = f"nn.Sequential({', '.join(step(st) for st in steps)})"
    return Emission(call=f"{m}({inputs[0]})", module=module)


def _target_name(ns: Namespace, value: str, uses: dict[str, int]) -> str:
    if value.startswith("_.") or ("." in value and not uses.get(value)):
        return "_"
    return ns.name(value)


def _docstring(doc: str | None) -> str | None:
    if not doc:
        return None
    lines = [_doc_text(line) for line in doc.split("\n")]
    return '"""' + "\n    ".join(lines) + '"""'
