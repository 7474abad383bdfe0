"""Shape stage: propagates named, symbolic shapes and dtypes through every graph.

Sizes are `Sym`s: checked by value (parameter defaults, `--param`, `--input`) and kept as
expressions for emission. Each op's rule lives in its registry entry and receives an `OpCtx`;
the rules import no torch. Errors name the dimension and point at the offending op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error
from .ops.context import CostCtx, ShapeCtx, UnknownSize
from .ops.registry import REQUIRED, OpSpec, lookup, param_type
from .tensor_types import (  # noqa: F401  (Dim and TType are also the plugin API's)
    PLACEHOLDER_WIDTH,
    Assertion,
    Dim,
    DimRef,
    NamedSize,
    ShapeError,
    Sym,
    TType,
    tidy,
)

# ------------------------------------------------------------------------------ results


@dataclass
class GraphShapes:
    """Shapes of one graph: each value's type, each node's evaluated arguments."""

    graph: ir.Graph
    param_values: dict[str, Any]
    types: dict[str, TType] = field(default_factory=dict)
    args: dict[int, dict[str, Any]] = field(default_factory=dict)  # node index -> args
    asserts: list[Assertion] = field(default_factory=list)
    # what the inputs' run-time sizes must satisfy (`height >= 2` before a 2x2 pool): conditions
    # over dimension variables, which only the running model can check
    runtime_requires: list[Assertion] = field(default_factory=list)
    required: list[str] = field(default_factory=list)  # constructor arguments without default
    required_values: dict[str, int] = field(default_factory=dict)  # their checked values


@dataclass
class ClassShapes(GraphShapes):
    """A block or repeat body checked once symbolically, to be emitted as its own class.

    Its sizes are expressions over its own constructor arguments: the block's parameters (or,
    for a repeat body, the enclosing parameters it uses) and `size_params`, the sizes of its
    inputs that it needs (`x_feature`), each found at (input index, dimension index).
    """

    key: tuple = ()
    size_params: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Checked:
    program: ir.Program
    models: list[GraphShapes]
    classes: list[ClassShapes] = field(default_factory=list)  # callees before callers


def check(program: ir.Program, params: Sequence[tuple[str, Any]] = (),
          inputs: Sequence[tuple[str, tuple[int, ...]]] = ()) -> tuple[Checked, list[Diagnostic]]:
    """Check every model's shapes; raises `CompileError` (with warnings too) on any error."""
    diags: list[Diagnostic] = []
    classes: dict[tuple, ClassShapes] = {}
    models = [_check_model(program, g, dict(params), dict(inputs), diags, classes) for g in program.models]
    diags.sort(key=lambda d: (d.span.file, d.span.line, d.span.column, d.code))
    if any(d.is_error for d in diags):
        raise CompileError(diags)
    for shapes in models:
        if shapes is not None:  # its requirements, and computed run-time sizes within 1 .. int64
            _satisfiable(shapes, diags)
    if any(d.is_error for d in diags):
        raise CompileError(diags)
    checked = Checked(program, [m for m in models if m is not None], list(classes.values()))
    lint(checked)
    return checked, diags


def _satisfiable(shapes: GraphShapes, diags: list[Diagnostic]) -> None:
    """A model that no input sizes can run is an error: its run-time requirements must hold for
    some sizes of its run-time dimensions (the sizes verification then runs it with)."""
    from .sizes import SizeError, dim_sizes

    try:
        dim_sizes(shapes)
    except SizeError as exc:
        diags.append(error(shapes.graph.span, "E053", f"model `{shapes.graph.name}` cannot run on any input: "
                           f"{exc}", "the ops' requirements on the inputs' run-time sizes contradict "
                           "each other; give the dimensions sizes, or cut them differently"))


def lint(checked: Checked) -> None:
    """The IR's invariants once more, and the checker's own (run after every check): every node
    has evaluated arguments and typed outputs, every block call and repeat its class. Raises
    `ir.IRError`, a compiler bug."""
    ir.lint(checked.program)
    keys = {cls.key for cls in checked.classes}
    for shapes in (*checked.classes, *checked.models):
        for index, node in enumerate(shapes.graph.nodes):
            where = f"{shapes.graph.name}: {node.label}"
            if index not in shapes.args:
                raise ir.IRError(f"{where} has no evaluated arguments")
            missing = [v for v in (*node.inputs, *node.outputs) if v not in shapes.types]
            if missing:
                raise ir.IRError(f"{where}: no type for {', '.join(missing)}")
            if isinstance(node, ir.OpCall):
                continue
            args = shapes.args[index]
            used = [args["class"]] if isinstance(node, ir.BlockCall) else [key for key, _, _ in args["steps"]]
            for key in used:
                if key not in keys or key[:-1] != class_key(node):
                    raise ir.IRError(f"{where}: its class {key} was never checked")


def _check_model(program: ir.Program, graph: ir.Graph, overrides: dict[str, Any], input_sizes: dict[str, tuple[int, ...]],
                 diags: list[Diagnostic], classes: dict[tuple, "ClassShapes"]) -> GraphShapes | None:
    values: dict[str, Any] = {}
    syms: dict[str, Sym] = {}
    for p in graph.params:
        value = p.default
        if p.name in overrides:
            value = overrides[p.name]
            if p.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            ok = (p.type == "float" and isinstance(value, float)) or (
                p.type == "int" and isinstance(value, int) and not isinstance(value, bool)) or (
                p.type == "bool" and isinstance(value, bool)) or (p.type == "str" and isinstance(value, str))
            if not ok:
                diags.append(error(p.span, "E025", f"`--param {p.name}={overrides[p.name]}` does not fit "
                                   f"the {p.type} parameter `{p.name}`"))
                return None
        values[p.name] = value
        syms[p.name] = Sym.param(p.name, value)
    # An input without a declared size starts at the placeholder width; where a use fixes it
    # (`add(x, linear(x, 64))`), the check runs again with that width (a few rounds at most).
    inferred: dict[str, int] = {}
    for _ in range(4):
        run_diags: list[Diagnostic] = []
        run_classes = dict(classes)
        known = dict(inferred)
        shapes = GraphShapes(graph, values)
        for inp in graph.inputs:
            try:
                shapes.types[inp.name] = _input_type(inp, syms, input_sizes.get(inp.name), shapes, known)
                _check_size(shapes.types[inp.name], inp)  # an input torch cannot hold is no input either
            except ShapeError as exc:
                run_diags.append(error(exc.span or inp.span, exc.code, exc.message, exc.hint))
        if any(d.is_error for d in run_diags):
            break
        scope = _Scope(program, syms, run_diags, shapes.asserts, classes=run_classes, inferred=inferred,
                       requires=shapes.runtime_requires)
        _run(scope, graph, shapes.types, shapes.args)
        if inferred == known:
            break
    diags.extend(run_diags)
    if any(d.is_error for d in run_diags):
        return None
    classes.update(run_classes)
    shapes.required_values = {w: inferred.get(w, PLACEHOLDER_WIDTH) for w in shapes.required}
    return shapes


# Limits of the compiler (E057): each bounds work that would otherwise grow without bound.
MAX_NESTING = 64  # block calls and repeats inside one another (torch.fx traces recursively)
MAX_REPEAT = 10_000  # steps of one repeat: every step is a submodule of its own
MAX_DISTINCT_STEPS = 256  # steps of one repeat with a shape unlike any earlier step's
MAX_SIZE = 2**63 - 1  # torch's sizes and element counts are int64


@dataclass
class _Scope:
    """What checking a graph needs besides the graph: blocks, parameter values, sinks."""

    program: ir.Program
    syms: dict[str, Sym]
    diags: list[Diagnostic]
    asserts: list[Assertion]
    call: ir.Node | None = None  # the block call being checked, for hints
    classes: dict[tuple, "ClassShapes"] = field(default_factory=dict)
    inferred: dict[str, int] | None = None  # undeclared input widths fixed by their uses
    requires: list[Assertion] = field(default_factory=list)  # conditions on run-time sizes
    depth: int = 0  # block calls and repeats around this graph
    memo: dict = field(default_factory=dict)  # (class base key, parameters, input types) -> class key

    def within(self, syms: dict[str, Sym], call: ir.Node | None, asserts: list[Assertion] | None = None,
               diags: list[Diagnostic] | None = None, requires: list[Assertion] | None = None,
               own_class: bool = False) -> "_Scope":
        """The scope of a graph called from this one: a block's body or a repeat's step, or with
        `own_class` the check of a class on its own (which infers no input widths)."""
        return _Scope(self.program, syms, self.diags if diags is None else diags,
                      self.asserts if asserts is None else asserts, call, self.classes,
                      None if own_class else self.inferred,
                      self.requires if requires is None else requires, self.depth + 1, self.memo)


def _run(scope: _Scope, graph: ir.Graph, types: dict[str, TType], args_out: dict[int, dict] | None) -> None:
    """Propagate types through `graph`'s nodes; `types` holds its inputs' types on entry."""
    layers: dict[str, tuple[list[TType], ir.Node, Any]] = {}  # `layer NAME` -> its first use
    for index, node in enumerate(graph.nodes):
        if any(v not in types for v in node.inputs):
            continue  # an earlier error already explains this
        in_types = [types[v] for v in node.inputs]
        try:
            if not isinstance(node, ir.OpCall) and scope.depth >= MAX_NESTING:
                raise ShapeError("E057", f"blocks and repeats nest more than {MAX_NESTING} deep here",
                                 "tgc (and torch.fx, which verifies the emitted module) handles at most "
                                 f"{MAX_NESTING} levels; flatten some of the nesting", node.span)
            if isinstance(node, ir.BlockCall):
                outs, args = _apply_block(scope, node, in_types)
            elif isinstance(node, ir.Repeat):
                outs, args = _apply_repeat(scope, node, in_types)
            else:
                outs, args = _apply(node, in_types, scope)
            for t in outs:
                _check_size(t, node)
            _check_layer(scope, node, in_types, args, layers)
        except _Reported:
            continue
        except ShapeError as exc:
            hint = exc.hint
            if scope.call is not None:
                where = f"in the call of block `{scope.call.op}` on line {scope.call.span.line}"
                hint = f"{hint}; {where}" if hint else where
            d = error(exc.span or node.span, exc.code, exc.message, hint)
            if d not in scope.diags:
                scope.diags.append(d)
            continue
        if args_out is not None:
            args_out[index] = args
        for value, t in zip(node.outputs, outs):
            types[value] = t


def _check_layer(scope: _Scope, node: ir.Node, in_types: list[TType], args: dict[str, Any],
                 layers: dict[str, tuple[list[TType], ir.Node, Any]]) -> None:
    """A `layer` has one input signature, fixed by its first use (LANGUAGE.md 13.1); `tie=NAME`
    needs the tying op's weight shape to equal NAME's, checked at the `tie=` argument."""
    layer = node.arg(ir.LAYER_ARG)
    spec = lookup(node.op) if isinstance(node, ir.OpCall) else None
    ctx = None
    if spec is not None:
        ctx = ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types, args,
                       scope.diags, scope.asserts, scope.inferred, scope.requires)
    if layer is not None:
        first = layers.get(layer.id)
        if first is None:
            weight = spec.weight_shape(ctx) if spec is not None and spec.weight_shape is not None else None
            layers[layer.id] = (in_types, node, weight)
        elif [_shape_print(t) for t in first[0]] != [_shape_print(t) for t in in_types]:
            shown = ", ".join(t.show() for t in in_types)
            was = ", ".join(t.show() for t in first[0])
            raise ShapeError("E050", f"layer `{layer.id}` is applied to {shown} here, but to {was} on line "
                             f"{first[1].span.line}", "a layer has one input signature: its weights are "
                             "shared by every use", node.span)
    tie = node.arg("tie")
    if tie is None or ctx is None:
        return
    target = layers.get(tie.id)
    if target is None:
        raise ShapeError("E050", f"`tie={tie.id}`: the layer `{tie.id}` must be applied before the op that "
                         "ties to it", "apply the layer first; its weight is made where it is first used",
                         tie.span)
    if target[2] is None:
        raise ShapeError("E050", f"`tie={tie.id}`: the layer `{tie.id}` has no weight that can be tied",
                         "tie to a `linear` or an `embedding`", tie.span)
    mine, theirs = spec.weight_shape(ctx), target[2]
    if len(mine) != len(theirs) or any(a.value != b.value for a, b in zip(mine, theirs)):
        show = lambda ws: "[" + ", ".join(s.render() for s in ws) + "]"  # noqa: E731
        raise ShapeError("E050", f"`tie={tie.id}`: this `{node.op}`'s weight is {show(mine)}, but `{tie.id}`'s "
                         f"is {show(theirs)}", "tied weights must have the same shape", tie.span)
    for a, b in zip(mine, theirs):
        if not tidy(a).same_expr(tidy(b)):
            scope.asserts.append(Assertion(a.equals(b), f"`tie={tie.id}`: the weight size {a.render()} must "
                                           f"equal {b.render()}"))


def _check_size(t: TType, node: ir.Node) -> None:
    """Sizes torch can hold: every size and the element count of every sample within int64."""
    total = 1
    for d in t.dims:
        if d.size is None or not isinstance(d.size.value, int):
            continue
        if d.size.value > MAX_SIZE:
            raise ShapeError("E057", f"a size of {d.size.value} is larger than torch allows ({MAX_SIZE})",
                             span=node.span)
        total *= max(d.size.value, 1)
    if total > MAX_SIZE:
        raise ShapeError("E057", f"a tensor of {t.show()} would hold {total} elements per batch, more than "
                         f"torch allows ({MAX_SIZE})", span=node.span)


def _check_ints(spec: OpSpec, node: ir.Node, args: dict[str, Any]) -> None:
    """Every integer argument fits torch's int64: `conv2d(stride=10**30)` fails in torch's argument
    parsing, `leaky_relu(negative_slope=10**30)` converting it (a float is written `1e30`)."""
    def ints(value: Any):
        if isinstance(value, Sym):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from ints(item)
        elif isinstance(value, NamedSize):
            yield from ints(value.size)

    for p in spec.params:
        for s in ints(args.get(p.name)):
            value = s.value
            if isinstance(value, int) and not isinstance(value, bool) and not -MAX_SIZE - 1 <= value <= MAX_SIZE:
                expr = node.arg(p.name)
                raise ShapeError("E057", f"`{p.name}` is {value}, beyond torch's 64-bit integers "
                                 f"({-MAX_SIZE - 1} to {MAX_SIZE})",
                                 span=expr.span if expr is not None else node.span)


def _check_weights_size(spec: OpSpec, node: ir.Node, in_types: list[TType], outs: list[TType],
                        args: dict[str, Any]) -> None:
    """An op's weights must fit in torch's int64 element counts too (`linear(2**40)` on 2**40)."""
    try:
        count = spec.params_count(CostCtx(spec, node.span, in_types, outs, args))
    except UnknownSize:
        return
    except (TypeError, ValueError, ZeroDivisionError):  # a cost rule on odd arguments: no verdict
        return
    if isinstance(count, int) and count > MAX_SIZE:
        raise ShapeError("E057", f"`{spec.name}` would have {count} weights, more than torch allows "
                         f"({MAX_SIZE})", span=node.span)


def _apply_block(scope: _Scope, node: ir.Node, in_types: list[TType]) -> tuple[list[TType], dict[str, Any]]:
    """A block is checked per use, with the shapes and parameter values of this call."""
    block = scope.program.block(node.op)
    assert block is not None, node.op
    syms: dict[str, Sym] = {}
    for p in block.params:
        expr = node.arg(p.name)
        if expr is not None:
            syms[p.name] = _eval(expr, scope.syms)
        else:
            syms[p.name] = Sym.const(p.default)
    inner = scope.within(syms, scope.call or node)
    types = {inp.name: t for inp, t in zip(block.inputs, in_types)}
    before = sum(d.is_error for d in scope.diags)
    _run(inner, block, types, None)
    if sum(d.is_error for d in scope.diags) > before:
        raise _Reported()
    own = {p.name: Sym.param(p.name, syms[p.name].value) for p in block.params}
    key = _class_for(scope, class_key(node), block, own, in_types)
    cls = scope.classes.get(key) if key is not None else None
    args = {"params": syms, "sizes": _bind_sizes(cls, in_types) if cls else {}, "class": key}
    return [types[o] for o in block.outputs], args


def _size_name(graph: ir.Graph, i: int, k: int, dim: Dim) -> str:
    return f"{graph.inputs[i].name}_{dim.name}" if dim.name else f"{graph.inputs[i].name}_dim{k}"


def _class_inputs(graph: ir.Graph, in_types: list[TType]) -> tuple[list[TType], dict[str, tuple[int, int]]]:
    """A class's view of its inputs: sized dimensions become its constructor arguments (`x_feature`),
    and each distinct run-time size a variable of its own (named after its dimension)."""
    size_params: dict[str, tuple[int, int]] = {}
    variables: dict[tuple, Sym] = {}  # a run-time size's expression -> the class's variable for it
    taken: set[str] = set()
    out = []
    for i, t in enumerate(in_types):
        dims = []
        for k, d in enumerate(t.dims):
            if d.size is not None:
                name = _size_name(graph, i, k, d)
                if name in size_params:  # two dimensions of one name (attention weights' `token`s)
                    name = f"{graph.inputs[i].name}_dim{k}"
                size_params[name] = (i, k)
                dims.append(Dim(d.name, Sym.param(name, d.size.value, d.size.placeholder), None, d.batch))
                continue
            extent = d.extent
            if extent is None:
                dims.append(d)
                continue
            tree = tidy(extent).tree
            if tree not in variables:
                base = d.name or f"{graph.inputs[i].name}_dim{k}"
                name, n = base, 1
                while name in taken:
                    n += 1
                    name = f"{base}{n}"
                taken.add(name)
                variables[tree] = Sym.dim(name)
            dims.append(Dim.of(d.name, variables[tree], d.batch))
        out.append(t.with_dims(dims))
    return out, size_params


def _class_for(scope: _Scope, base: tuple, graph: ir.Graph, syms: dict[str, Sym],
               in_types: list[TType]) -> tuple | None:
    """The class a block call or repeat step is emitted as: `graph` checked once more with its
    parameters and input sizes as constructor arguments. Calls whose checks come out the same
    (the same emitted code) share a class; one that differs (a `dim` given by a parameter that
    picks another dimension, an input of another rank) gets a class of its own, so every use runs
    code that was checked for it. None while input widths are still being inferred."""
    class_types, size_params = _class_inputs(graph, in_types)
    memo_key = (base, tuple((n, s.value) for n, s in syms.items()), tuple(class_types))
    if memo_key in scope.memo:
        return scope.memo[memo_key]
    cls = ClassShapes(graph, {n: s.value for n, s in syms.items()}, size_params=size_params)
    cls.types = {inp.name: t for inp, t in zip(graph.inputs, class_types)}
    diags: list[Diagnostic] = []  # the per-use check has reported everything already
    inner = scope.within(syms, None, cls.asserts, diags, cls.runtime_requires, own_class=True)
    _run(inner, graph, cls.types, cls.args)
    if any(d.is_error for d in diags):
        if scope.inferred:  # a round whose input widths are still being inferred: the next decides
            return None
        # this use checks, but the class, which takes the parameters as arguments, does not hold
        # for all their values (a repeat whose count becomes a parameter, a literal-only argument)
        first = next(d for d in diags if d.is_error)
        what = f"block `{graph.name}`" if base[0] == "block" else "the repeat's body"
        raise ShapeError(first.code, f"{what} cannot be emitted as one class for any values of its "
                         f"parameters: {first.message}",
                         f"the class is checked with its parameters as arguments; {first.hint or 'give a literal'}"
                         f" (at {os.path.basename(first.span.file)}:{first.span.line})")
    mark = _fingerprint(cls)
    variants = [c for c in scope.classes.values() if c.key[:-1] == base]
    key = next((c.key for c in variants if _fingerprint(c) == mark), None)
    if key is None:
        key = (*base, len(variants))
        cls.key = key
        scope.classes[key] = cls
    scope.memo[memo_key] = key
    return key


def _fingerprint(cls: "ClassShapes") -> tuple:
    """What a class's emitted code is made of, without the checked values of its arguments."""
    cached = getattr(cls, "_print", None)
    if cached is None:
        cached = (
            tuple((v, _shape_print(t)) for v, t in cls.types.items()),
            tuple((i, _arg_print(a)) for i, a in sorted(cls.args.items())),
            tuple(a.condition.tree for a in cls.asserts),
            tuple(cls.size_params.items()),
        )
        object.__setattr__(cls, "_print", cached)
    return cached


def _shape_print(t: TType) -> tuple:
    return (t.dtype, tuple((d.name, None if d.size is None else d.size.tree,
                            None if d.rt is None else d.rt.tree, d.batch) for d in t.dims))


def _arg_print(value: Any) -> Any:
    if isinstance(value, Sym):
        # int and float arguments are emitted as their expressions; bools and strings may pick code
        return (value.tree, value.value if isinstance(value.value, (bool, str)) else None)
    if isinstance(value, DimRef):
        return ("dim", value.name, value.index, None if value.sym is None else value.sym.tree)
    if isinstance(value, dict):
        if "steps" in value and not value["count"].is_const:  # the count's value is not emitted
            value = {**value, "steps": [(key, sizes) for key, sizes, _ in value["steps"]]}
        return tuple((k, _arg_print(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_arg_print(v) for v in value)
    return value


def _bind_sizes(cls: ClassShapes, in_types: list[TType]) -> dict[str, Sym]:
    """The caller's sizes for a class's input-size arguments."""
    out = {}
    for name, (i, k) in cls.size_params.items():
        size = in_types[i].dims[k].size if k < in_types[i].rank else None
        if size is not None:
            out[name] = size
    return out


def _apply_repeat(scope: _Scope, node: ir.Repeat, in_types: list[TType]) -> tuple[list[TType], dict[str, Any]]:
    """`repeat(n)`: the body applied n times (0: the identity). A literal n checks each step whose
    input differs from every earlier step's (a body that keeps the shape is checked once); a
    parameter n needs a body that keeps the shape, and the emitted `__init__` asserts n >= 0."""
    t, context = in_types[0], in_types[1:]  # the value flowing through, and the context values
    count = _eval(node.count, scope.syms)
    if not isinstance(count, Sym) or not isinstance(count.value, int) or isinstance(count.value, bool):
        raise ShapeError("E055", f"`repeat` needs an integer count, not {getattr(count, 'value', count)!r}",
                         span=node.count.span)
    if count.value < 0:
        raise ShapeError("E055", f"`repeat({count.render()})` has a negative count ({count.value})",
                         "a count is 0 (the identity: the input passes through) or more", node.count.span)
    if count.value > MAX_REPEAT:
        raise ShapeError("E057", f"`repeat({count.render()})` has {count.value} steps; tgc builds at most "
                         f"{MAX_REPEAT}", "each step is a submodule with its own weights", node.count.span)
    if not count.is_const:
        scope.asserts.append(Assertion(count.at_least(0), f"repeat: the count ({count.render()}) must be "
                                       "at least 0"))
    outer = _outer_params(scope.syms)
    before = sum(d.is_error for d in scope.diags)
    seen: dict[TType, TType] = {}  # a step's input -> its output
    runs: list[list] = []  # [class key, sizes, number of steps] for consecutive steps alike
    current = t
    # a parameter count is checked on one step (its body must keep the shape), a literal one on
    # each; a count of 0 still checks (and emits) the body once, on the input
    steps = max(count.value, 1) if count.is_const else 1
    for _ in range(steps):
        if current not in seen:
            if len(seen) >= MAX_DISTINCT_STEPS:
                raise ShapeError("E057", f"the body of `repeat({count.render()})` changes the shape on each "
                                 f"step; tgc checks at most {MAX_DISTINCT_STEPS} distinct steps",
                                 "a body that keeps its input's shape can repeat any number of times",
                                 node.span)
            types = {inp.name: ty for inp, ty in zip(node.body.inputs, [current, *context])}
            _run(scope.within(scope.syms, scope.call), node.body, types, None)
            if sum(d.is_error for d in scope.diags) > before:
                raise _Reported()
            seen[current] = types[node.body.outputs[0]]
        key = _class_for(scope, class_key(node), node.body, outer, [current, *context])
        cls = scope.classes.get(key) if key is not None else None
        sizes = _bind_sizes(cls, [current, *context]) if cls else {}
        if runs and runs[-1][0] == key and runs[-1][1] == sizes:
            runs[-1][2] += 1
        else:
            runs.append([key, sizes, 1])
        current = seen[current]
    if not count.is_const:
        ok = current.rank == t.rank and all(
            (a.size is None) == (b.size is None) and (a.size is None or a.size.value == b.size.value)
            and (a.size is not None or a.extent == b.extent)
            for a, b in zip(t.dims, current.dims))
        if not ok:
            raise ShapeError("E050", f"the body of `repeat({count.render()})` changes its input {t.show()} "
                             f"into {current.show()}",
                             "with a parameter count the body must keep the shape; use a literal count "
                             "to check each step", node.span)
        current = t  # as many steps as the count, each keeping the shape
        runs[0][2] = count.value
    if count.value == 0:  # the identity
        runs[0][2] = 0
        current = t
    args = {"count": count, "steps": [tuple(r) for r in runs]}
    return [current], args


def class_key(node: ir.Node) -> tuple:
    """The base key of the classes a block call or repeat is emitted as: one per block, one per
    repeat; `_class_for` adds the variant (the key in the node's evaluated `args["class"]`, or for
    a repeat in each of its `args["steps"]`)."""
    if isinstance(node, ir.BlockCall):
        return ("block", node.op)
    return ("repeat", node.span.file, node.span.line, node.span.column)


def _outer_params(syms: dict[str, Sym]) -> dict[str, Sym]:
    """The enclosing parameters as the repeat body's own (its class takes them as arguments)."""
    return {n: Sym.param(n, s.value) for n, s in syms.items()}


class _Reported(ShapeError):
    """An error inside a block or repeat body, already reported at its own span."""

    def __init__(self) -> None:
        super().__init__("E056", "")


def _input_type(inp: ir.InputDef, syms: dict[str, Sym], given: tuple[int, ...] | None,
                shapes: GraphShapes, inferred: dict[str, int]) -> TType:
    batch = _batch_dim("batch", shapes)
    if inp.shape is None:
        if given is not None:
            if len(given) != 1:
                return TType((batch, *(Dim(None, Sym.const(s)) for s in given)), inp.dtype)
            return TType((batch, Dim("feature", Sym.const(given[0]))), inp.dtype)
        width = f"{inp.name}_features"
        shapes.required.append(width)
        value = inferred.get(width, PLACEHOLDER_WIDTH)
        return TType((batch, Dim("feature", Sym.param(width, value, True))), inp.dtype)
    dims: list[Dim] = []
    for d in inp.shape:
        size = _eval(d.size, syms) if d.size is not None else None
        if size is not None and (not isinstance(size, Sym) or not isinstance(size.value, int)
                                 or isinstance(size.value, bool) or size.value < 1):
            raise ShapeError("E055", f"input `{inp.name}`: a size must be a positive integer, "
                             f"not {getattr(size, 'value', size)!r}", span=d.span)
        dims.append(Dim(d.name, size))
    if dims:
        first = dims[0]
        dims[0] = _batch_dim(first.name, shapes) if first.size is None else Dim(first.name, first.size, None, True)
    if given is not None:
        if len(given) != len(dims) - 1:
            raise ShapeError("E033", f"`--input {inp.name}` gives {len(given)} sizes, but `{inp.name}` has "
                             f"{len(dims) - 1} non-batch dimensions", span=inp.span)
        dims = [dims[0]] + [Dim(d.name, Sym.const(s)) for d, s in zip(dims[1:], given)]
    return TType(tuple(dims), inp.dtype)


def _batch_dim(name: str | None, shapes: GraphShapes) -> Dim:
    """An input's first dimension: the batch, one run-time size for every input of the model
    (named after the first input's batch), whatever each input calls it."""
    first = next((t.dims[0] for t in shapes.types.values() if t.dims and t.dims[0].batch), None)
    variable = first.extent if first is not None else Sym.dim(name or "batch")
    return Dim.of(name, variable, batch=True)


def _eval(expr: A.Expr, syms: dict[str, Sym]) -> Any:
    """An argument expression -> Sym (scalars), list, or DimRef (a name that is no parameter)."""
    if isinstance(expr, (A.Number, A.String, A.Bool)):
        return Sym.const(expr.value)
    if isinstance(expr, A.Name):
        if expr.id in syms:
            return syms[expr.id]
        return DimRef(expr.id, None, expr.span)
    if isinstance(expr, A.ListExpr):
        return [_eval(i, syms) for i in expr.items]
    if isinstance(expr, A.NamedItem):
        return NamedSize(expr.name, _eval(expr.value, syms))
    if isinstance(expr, A.Neg):
        return -_eval(expr.operand, syms)
    if isinstance(expr, A.BinOp):
        left, right = _eval(expr.left, syms), _eval(expr.right, syms)
        if expr.op in ("//", "%", "/") and right.value == 0:
            raise ShapeError("E055", "division by zero in a size expression", span=expr.span)
        return {"+": Sym.__add__, "-": Sym.__sub__, "*": Sym.__mul__, "/": Sym.__truediv__,
                "//": Sym.__floordiv__, "%": Sym.__mod__}[expr.op](left, right)
    raise ShapeError("E055", "unsupported argument expression", span=getattr(expr, "span", None))


def evaluate_args(spec: OpSpec, node: ir.Node, syms: dict[str, Sym]) -> dict[str, Any]:
    """The op's arguments at this node, evaluated by their hyper-parameter types; defaults filled in."""
    args: dict[str, Any] = {}
    for p in spec.params:
        expr = node.arg(p.name)
        if expr is not None:
            args[p.name] = param_type(p.type).evaluate(expr, lambda e: _eval(e, syms), _index_ref)
        elif p.default is not REQUIRED:
            args[p.name] = None if p.default is None else Sym.const(p.default)
    return args


def _index_ref(value: Any, span: A.Span) -> Any:
    """A scalar `dim` argument as a reference to a dimension by index."""
    if not isinstance(value, Sym):
        return value
    return DimRef(None, value.value, span, None if value.is_const else value)


def _apply(node: ir.Node, in_types: list[TType], scope: _Scope) -> tuple[list[TType], dict[str, Any]]:
    spec = lookup(node.op)
    assert spec is not None
    if spec.shape is None:
        raise ShapeError("E056", f"op `{spec.name}` has no shape rule yet", None, node.span)
    args = evaluate_args(spec, node, scope.syms)
    _check_ints(spec, node, args)
    ctx = ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types, args, scope.diags,
                   scope.asserts, scope.inferred, scope.requires)
    outs = list(spec.shape(ctx))
    if spec.params_count is not None:
        _check_weights_size(spec, node, in_types, outs, args)
    if len(outs) < len(node.outputs):
        raise ShapeError("E056", f"`{spec.name}` gives {len(outs)} outputs here", None, node.span)
    return outs[: len(node.outputs)], args


# ------------------------------------------------------------------------------ instances


def model_syms(shapes: GraphShapes) -> dict[str, Sym]:
    """A checked model's parameters as the symbols its sizes are expressions over."""
    return {p.name: Sym.param(p.name, shapes.param_values[p.name]) for p in shapes.graph.params}


def instantiate(checked: Checked, graph: ir.Graph, syms: dict[str, Sym], in_types: Sequence[TType]) -> GraphShapes:
    """The types and arguments inside `graph` (a block or a repeat body) for one use of it.

    `syms` are the graph's parameters at that use (a block call's evaluated arguments, or for a
    repeat body the enclosing graph's symbols), `in_types` its inputs' types there. Sizes come out
    as expressions over the caller's parameters, as the caller's own types are. Used by the graph
    and summary views, which show each use of a block with its own shapes; the use was checked
    already, so an error here is a bug.
    """
    shapes = GraphShapes(graph, {n: s.value for n, s in syms.items()})
    shapes.types = {inp.name: t for inp, t in zip(graph.inputs, in_types)}
    diags: list[Diagnostic] = []
    classes = {cls.key: cls for cls in checked.classes}
    _run(_Scope(checked.program, dict(syms), diags, [], classes=classes), graph, shapes.types, shapes.args)
    if any(d.is_error for d in diags):
        raise AssertionError(f"re-checking {graph.name} failed: {[d.message for d in diags]}")
    return shapes
