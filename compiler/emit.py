"""Emit stage: checked graphs -> PyTorch source, through Jinja templates and black.

The templates hold only layout; this module computes their view data: Python-safe names
(keywords, builtins, `self`, `torch`, `nn` renamed; `_1` suffixes), constructor arguments,
submodules with the `.tg` line they come from, and one forward line per source statement with a
shape comment in the user's dimension names. Output is byte-identical for the same input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tgc import __version__

from . import ir
from .naming import (GraphNames, Names, attr_expr, name_program, one_run, sequences, single_block_body,
                     step_local, support_code)
from .ops.context import EmitCtx, ShapeCtx
from .ops.registry import Emission, lookup
from .shapes import Checked, ClassShapes, GraphShapes
from .tensor_types import Sym

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
    emitted: bool = True  # False for a repeat body that is one block call: its steps are the block's class
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


def emit(checked: Checked, source_name: str, names: Names | None = None) -> str:
    """The model file for a checked program."""
    source = os.path.basename(source_name)
    views = emit_views(checked, source, names)
    text = _environment().get_template("model.py.j2").render(
        header=_header(source, [v.name for v in views[len(checked.classes):]]),
        uses_functional=any("F." in line for v in views for line in v.forward_lines),
        loads=any(v.loads for v in views),
        support=support_code(checked),
        classes=[v for v in views if v.emitted],
    )
    return format_code(text)


def emit_views(checked: Checked, source: str, names: Names | None = None) -> list[ClassView]:
    """The view data of every class: block and repeat classes first, then one per model.

    The names are the naming pass's (`names`, or computed here); the views are what the template
    renders, and what the training emitter and verification read.
    """
    names = names or name_program(checked)
    class_names = {key: ClassInfo(n.cls) for key, n in names.classes.items()}
    views = []
    emitted: dict[tuple, str] = {}  # a class's text without its name and comments -> its name
    for cls in checked.classes:  # blocks and repeat bodies, callees first
        view = _model_view(cls, source, names.classes[cls.key], class_names)
        same = _class_text(view)
        if same in emitted and not single_block_body(cls.graph):
            # the same class as one emitted already (another variant or repeat, equal but for
            # comments): emitted once, and its uses construct that one
            class_names[cls.key].name = emitted[same]
            class_names[cls.key].outer = view.outer
            class_names[cls.key].sizes = view.sizes
            class_names[cls.key].init = view.init_names
            view.emitted = False
            views.append(view)
            continue
        if not single_block_body(cls.graph):  # that one is not emitted: nothing may reuse it
            emitted.setdefault(same, view.name)
        class_names[cls.key].outer = view.outer  # the enclosing parameters a repeat body uses
        class_names[cls.key].sizes = view.sizes  # the input sizes its constructor takes
        class_names[cls.key].init = view.init_names
        if single_block_body(cls.graph):
            class_names[cls.key].single = (cls.args[0], cls.graph.nodes[0])
            view.emitted = False
        views.append(view)
    for shapes, graph_names in zip(checked.models, names.models):
        views.append(_model_view(shapes, source, graph_names, class_names))
    return views


@dataclass
class ClassInfo:
    """What a call site needs of a block or repeat-body class, once the class is emitted."""

    name: str
    outer: list[str] = field(default_factory=list)  # enclosing parameters, passed by name
    sizes: list[str] = field(default_factory=list)  # input sizes the constructor takes
    single: tuple | None = None  # a body that is one block call: (that call's args, its node)
    init: dict[str, str] = field(default_factory=dict)  # source name -> its constructor argument

    def arg(self, name: str) -> str:
        """The keyword a call site passes `name` by (`class_` for a parameter named `class`)."""
        return self.init.get(name, name)


def _class_text(view: ClassView) -> tuple:
    """A class's code without its name and its comments, to find classes emitted twice."""
    def code(lines: list[str]) -> tuple:
        return tuple(line.split("  # ")[0] for line in lines if not line.lstrip().startswith("#"))

    return (tuple(view.init_args), code(view.init_lines), tuple(view.forward_args), code(view.forward_lines),
            view.returns, tuple(view.outer), tuple(view.sizes), tuple(view.frozen), view.loads)


def format_code(text: str) -> str:
    import black

    mode = black.Mode(target_versions={black.TargetVersion.PY310})
    return black.format_str(text, mode=mode)


HEADER_PREFIX = "# Generated by tgc"


def header_line(source: str) -> str:
    """The first line of every generated file: tgc overwrites only files that start with it,
    so a user who deletes it has taken the file over."""
    return f"{HEADER_PREFIX} {__version__} from {_comment_text(source)}; delete this line to take the file over."


def _header(source: str, names: list[str]) -> str:
    what = ", ".join(names) if names else "model"
    return (f'{header_line(source)}\n"""{_doc_text(what)}, generated by tgc from {_doc_text(source)}.\n\n'
            f'Change {_doc_text(source)} and recompile rather than editing this file."""')


def _comment_text(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _doc_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: backslashes escaped, and the quotes of a run of
    three or more, or of a run that ends the text (it would end the docstring), escaped each."""
    def escape(m: re.Match) -> str:
        return "\\\\" if m.group() == "\\" else '\\"' * len(m.group())

    return re.sub(r'\\|"{3,}|"+$', escape, _comment_text(text))


def _where(span) -> str:
    """`file.tg:LINE` for a comment: the file the line is in (a library block's own file)."""
    return f"{_comment_text(os.path.basename(span.file))}:{span.line}"


def _model_view(shapes: GraphShapes, source: str, names: GraphNames,
                class_names: dict[tuple, ClassInfo]) -> ClassView:
    graph = shapes.graph
    view = ClassView(names.cls, _docstring(graph.doc))
    is_class = isinstance(shapes, ClassShapes)
    view.node_attrs = dict(names.attrs)

    used: list[str] = []  # the constructor arguments the class body reads, in order
    # an input size the class asserts equal to its parameters (`x_feature == d`) is that expression:
    # no constructor argument, no assert that the class's only callers meet by construction
    derived, kept_asserts = _derived_sizes(shapes) if is_class else ({}, list(shapes.asserts))

    def shown(name: str) -> str:  # a parameter in a shape comment: its source name, or what it is
        if name in derived:
            text = derived[name].render(shown)
            return f"({text})" if " " in text else text
        return name

    def pyname(name: str) -> str:
        if name in derived:
            text = derived[name].render(pyname)
            return f"({text})" if " " in text else text
        if name not in used:
            used.append(name)
        return names.init[name]

    stored: dict[str, str] = {}  # parameters that forward reads, stored as `self.<name>`

    def stored_param(param: str) -> str:
        stored[param] = names.stored[param]
        return stored[param]

    local = names.local
    for inp in graph.inputs:
        view.forward_args.append(f"{local(inp.name)}: torch.Tensor")
    for inp in graph.inputs:
        view.forward_lines.append(f"# {local(inp.name)}: {_comment_text(shapes.types[inp.name].show(shown))}")
    if graph.inputs:
        view.forward_lines.append("")  # the inputs' shapes, then one shape comment per statement

    pending: dict[str, str] = {}  # inlined value -> its expression

    def emission(index: int, node: ir.Node, in_exprs: list[str], m: str) -> tuple[Emission, bool]:
        out_types = [shapes.types[v] for v in node.outputs]
        if not isinstance(node, ir.OpCall):
            em = _class_call(node, shapes.args[index], class_names, m, in_exprs, pyname)
            return em, len(node.outputs) > 1  # the resolver binds every output of a block
        spec = lookup(node.op)
        assert spec is not None and spec.emit is not None, node.op
        in_types = [shapes.types[v] for v in node.inputs]
        op_ctx = ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types,
                          shapes.args[index])
        ectx = EmitCtx(op_ctx, in_exprs, out_types, m, pyname, stored_param)
        ectx.discarded = [names.locals.get(o, "_") == "_" and o not in graph.outputs for o in node.outputs]
        em = spec.emit(ectx)
        # an op with several outputs returns a tuple, even where only one output is bound
        return em, len(spec.outputs) > 1 or spec.outputs_from is not None

    runs = sequences(names.attrs)
    whole = {base for base, members in runs.items()
             if _called_whole(graph, names, members, lambda i, m: emission(i, graph.nodes[i], ["x"], m)[0])}
    sequential_line: dict[str, int] = {}  # nn.Sequential attribute -> its line in init_lines
    layer_attrs = _layer_attrs(graph, names)  # `layer NAME` -> its attribute
    built: set[str] = set()  # attributes constructed so far (a layer's second use shares the first's)
    for index, node in enumerate(graph.nodes):
        in_exprs = [pending.pop(v) if v in pending else local(v) for v in node.inputs]
        out_types = [shapes.types[v] for v in node.outputs]
        attr = names.attrs.get(index)
        m = attr_expr(attr) if attr is not None else "self._"
        em, tuple_valued = emission(index, node, in_exprs, m)
        if (em.module is not None) != (attr is not None):
            raise AssertionError(f"`{node.op}` on line {node.span.line}: its emission "
                                 f"{'has' if em.module is not None else 'has no'} submodule, but its "
                                 "`owns_module` says otherwise")
        base = attr.split(".")[0] if attr is not None and "." in attr else None
        if em.module is not None and attr in built:
            pass  # a layer applied again: the same submodule, its weights shared
        elif em.module is not None:
            built.add(attr)
            if base is None:
                view.init_lines.append(f"self.{attr} = {em.module}  # {_where(node.span)}")
            elif base not in sequential_line:
                sequential_line[base] = len(view.init_lines)
                view.init_lines.append(f"self.{base} = nn.Sequential({em.module}  # {_where(node.span)}")
            else:
                line = view.init_lines[sequential_line[base]]
                head, where = line.rsplit("  # ", 1)
                view.init_lines[sequential_line[base]] = f"{head}, {em.module}  # {where}"
            view.init_lines.extend(em.init)
            tie = node.arg("tie")
            if tie is not None:
                view.init_lines.append(f"{m}.weight = {attr_expr(layer_attrs[tie.id])}.weight  # tied to `{tie.id}`")
            if node.frozen:
                # no gradients, and eval mode for good (batch-norm statistics stay fixed): see train()
                view.init_lines.append(f"{m}.requires_grad_(False)  # frozen")
                view.frozen.append(attr)
            for ld in graph.loads:
                if ld.node_label == node.label and ld.target in (node.target, *node.outputs):
                    view.init_lines.append(f"_load_weights({m}, {ld.path!r}, weights_dir)"
                                           f"  # {_where(ld.span)}")
                    view.loads = True
        first = node.outputs[0]
        if isinstance(node, ir.Repeat) and len(node.inputs) > 1:
            # context values go to every step: a loop, as nanoGPT's `for block in self.h`
            step, out = local(step_local(node)), local(first)
            view.forward_lines.append(f"# {_comment_text(out_types[0].show(shown))}")
            if out != in_exprs[0]:
                view.forward_lines.append(f"{out} = {in_exprs[0]}")
            view.forward_lines.append(f"for {step} in {m}:")
            view.forward_lines.append(f"    {out} = {step}({', '.join([out, *in_exprs[1:]])})")
            continue
        if base in whole:
            members = runs[base]
            if index != members[-1]:
                pending[first] = in_exprs[0]  # the sequential is called once, by its last member
                continue
            em = Emission(call=f"self.{base}({in_exprs[0]})", module=em.module)
        if first in names.inline:
            pending[first] = f"{em.call}{em.first}" if tuple_valued else em.call
            continue
        call = f"{em.call}{em.first}" if tuple_valued and len(node.outputs) == 1 else em.call
        view.forward_lines.append(f"# {_comment_text(out_types[0].show(shown))}")
        if len(node.outputs) == 1:
            view.forward_lines.append(f"{local(first)} = {call}")
        else:
            pattern = em.unpack or ", ".join("{}" for _ in node.outputs)
            view.forward_lines.append(f"{pattern.format(*(local(o) for o in node.outputs))} = {em.call}")
    for base, line in sequential_line.items():
        head, where = view.init_lines[line].rsplit("  # ", 1)
        view.init_lines[line] = f"{head})  # {where}"

    keep = [f"self.{attr} = {pyname(param)}" for param, attr in stored.items()]
    asserts = [f"assert {a.condition.render(pyname)}, {_assert_message(a, pyname)}" for a in kept_asserts]
    if view.frozen:
        # frozen submodules, by name: train() keeps them in eval mode; unfreezing removes a name
        keep.append("self.frozen_modules = {" + ", ".join(repr(a) for a in view.frozen) + "}")
        view.init_lines.append("self.train()  # puts the frozen submodules in eval mode")
    view.init_lines[0:0] = asserts + keep

    # constructor arguments, now that the body has named what it uses
    required = list(shapes.required)
    if is_class:
        view.sizes = [n for n in shapes.size_params if n in used]
        required += view.sizes
    for name in required:
        view.init_args.append(f"{names.init[name]}: int")
    view.init_names = {n: names.init[n] for n in (*required, *(p.name for p in graph.params))}
    if is_class and shapes.key[0] == "repeat":
        for name in used:
            if name not in required and name in shapes.param_values:
                view.init_args.append(f"{names.init[name]}: {_type_name(shapes.param_values[name])}")
                view.outer.append(name)
                view.init_names[name] = names.init[name]  # its callers pass it by that name
    else:
        params = sorted(graph.params, key=lambda p: p.default is not None)  # no default first
        for p in params:
            default = "" if p.default is None else f" = {Sym.const(p.default).render()}"
            view.init_args.append(f"{names.init[p.name]}: {p.type}{default}")
    if view.loads:
        view.init_args.append("weights_dir: str | None = None")
    outs = [local(o) for o in graph.outputs]
    if len(outs) == 1:
        view.forward_lines.append(f"return {outs[0]}")
    else:
        view.forward_lines.append("return " + ", ".join(outs))
        view.returns = "tuple[" + ", ".join("torch.Tensor" for _ in outs) + "]"
    return view


def _layer_attrs(graph: ir.Graph, names: GraphNames) -> dict[str, str]:
    """Each `layer NAME` applied in the graph -> the attribute of its submodule."""
    out: dict[str, str] = {}
    for index, node in enumerate(graph.nodes):
        layer = node.arg(ir.LAYER_ARG)
        if layer is not None and index in names.attrs:
            out.setdefault(layer.id, names.attrs[index])
    return out


def _called_whole(graph: ir.Graph, names: GraphNames, members: list[int], emission) -> bool:
    """Whether a sequential is called whole (`self.downsample(x)` instead of
    `self.downsample[1](...[0](x))`): one run of the chain (`naming.one_run`) whose members compute
    nothing else, their values inlined into the next."""
    if not one_run(graph, members):
        return False
    for k, index in enumerate(members):
        node = graph.nodes[index]
        if k < len(members) - 1 and node.outputs[0] not in names.inline:
            return False
        m = attr_expr(names.attrs[index])
        if emission(index, m).call != f"{m}(x)":
            return False
    return True


def _derived_sizes(shapes: GraphShapes) -> tuple[dict[str, Sym], list]:
    """The input sizes of a class that its asserts make equal to an expression over its declared
    parameters (`x_feature == d`), and the asserts left. Every call site the compiler emits was
    checked with that equality (or asserts it itself), so the class computes the size instead of
    taking it: `nn.Linear(d, d)`, not `nn.Linear(x_feature, d)` and `assert x_feature == d`."""
    sizes = set(shapes.size_params)
    derived: dict[str, Sym] = {}
    kept = []
    for a in shapes.asserts:
        tree = a.condition.tree
        pair = None
        if tree[0] == "==":
            for side, other in ((tree[1], tree[2]), (tree[2], tree[1])):
                if side[0] == "p" and side[1] in sizes and side[1] not in derived:
                    rhs = Sym(None, other)
                    if not (rhs.params() & sizes):
                        pair = (side[1], rhs)
                        break
        if pair is None:
            kept.append(a)
        else:
            derived[pair[0]] = pair[1]
    return derived, kept


def _assert_message(a, pyname) -> str:
    """The message of an `__init__` assert: what must hold, then the values it was given
    (`f"...: got x_feature={x_feature}, d={d}"`), so a failure says which argument is off."""
    names = [pyname(p) for p in sorted(a.condition.params())]
    if not names:
        return repr(a.message)
    # the values the check was made with (`(d = 128)`) are not the ones the module is given
    message = re.sub(r" = -?\d+(\.\d+)?(?=\))", "", a.message)
    text = message.replace("{", "{{").replace("}", "}}") + "; got " + ", ".join(f"{n}={{{n}}}" for n in names)
    return "f" + repr(text)


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), "int")


def _class_call(node: ir.Node, args: dict[str, Any], class_names: dict[tuple, ClassInfo], m: str,
                inputs: list[str], pyname) -> Emission:
    """A block call or a repeat: a submodule of the block's (or body's) own class."""
    if isinstance(node, ir.BlockCall):
        info = class_names[args["class"]]
        given = {name for name, _ in node.args}
        kwargs = [f"{info.arg(k)}={v.render(pyname)}" for k, v in args["params"].items() if k in given]
        kwargs += [f"{info.arg(k)}={v.render(pyname)}" for k, v in args["sizes"].items() if k in info.sizes]
        n_out = len(node.outputs)
        unpack = ", ".join("{}" for _ in range(n_out)) if n_out > 1 else None
        return Emission(call=f"{m}({', '.join(inputs)})", module=f"{info.name}({', '.join(kwargs)})",
                        unpack=unpack)
    count: Sym = args["count"]

    def step(key: tuple, sizes: dict[str, Sym]) -> str:
        info = class_names[key]
        if info.single is not None:  # the block's own class, its arguments in the caller's terms
            inner, call = info.single
            block = class_names[inner["class"]]

            def name(param: str) -> str:
                if param in sizes:
                    text = sizes[param].render(pyname)
                    return f"({text})" if " " in text else text
                return pyname(param)

            given = {k for k, _ in call.args}
            kwargs = [f"{block.arg(k)}={v.render(name)}" for k, v in inner["params"].items() if k in given]
            kwargs += [f"{block.arg(k)}={v.render(name)}" for k, v in inner["sizes"].items() if k in block.sizes]
            return f"{block.name}({', '.join(kwargs)})"
        given = [f"{info.arg(k)}={v.render(pyname)}" for k, v in sizes.items() if k in info.sizes]
        outer = [f"{info.arg(k)}={pyname(k)}" for k in info.outer]
        return f"{info.name}({', '.join([*given, *outer])})"

    runs = args["steps"]  # (class key, sizes, number of steps) for consecutive steps alike
    # with context values each step takes several inputs: a list of steps, called in a loop
    container = "nn.ModuleList" if len(inputs) > 1 else "nn.Sequential"
    if len(runs) == 1:
        key, sizes, n = runs[0]
        times = count.render(pyname) if not count.is_const else str(n)
        module = (f"{container}([{step(key, sizes)} for _ in range({times})])" if len(inputs) > 1 else
                  f"nn.Sequential(*[{step(key, sizes)} for _ in range({times})])")
    else:  # a literal count whose steps see different shapes: the steps one by one
        steps = ", ".join(step(key, sizes) for key, sizes, n in runs for _ in range(n))
        module = f"nn.ModuleList([{steps}])" if len(inputs) > 1 else f"nn.Sequential({steps})"
    return Emission(call=f"{m}({inputs[0]})", module=module)


def _docstring(doc: str | None) -> str | None:
    if not doc:
        return None
    lines = [_doc_text(line) for line in doc.split("\n")]
    return '"""' + "\n    ".join(lines) + '"""'
