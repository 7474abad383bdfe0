"""Shape stage: propagates named, symbolic shapes and dtypes through every graph.

Sizes are `Sym`s: checked by value (parameter defaults, `--param`, `--input`) and kept as
expressions for emission. Each op's rule lives in its registry entry and receives an `OpCtx`;
the rules import no torch. Errors name the dimension and point at the offending op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error
from .ops.context import ShapeCtx
from .ops.registry import REQUIRED, OpSpec, lookup, param_type
from .tensor_types import (  # noqa: F401  (Dim and TType are also the plugin API's)
    PLACEHOLDER_WIDTH,
    Assertion,
    Dim,
    DimRef,
    ShapeError,
    Sym,
    TType,
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
    checked = Checked(program, [m for m in models if m is not None], list(classes.values()))
    lint(checked)
    return checked, diags


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
            if not isinstance(node, ir.OpCall) and class_key(node) not in keys:
                raise ir.IRError(f"{where}: its class {class_key(node)} was never checked")


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
            except ShapeError as exc:
                run_diags.append(error(exc.span or inp.span, exc.code, exc.message, exc.hint))
        if any(d.is_error for d in run_diags):
            break
        scope = _Scope(program, syms, run_diags, shapes.asserts, classes=run_classes, inferred=inferred)
        _run(scope, graph, shapes.types, shapes.args)
        if inferred == known:
            break
    diags.extend(run_diags)
    if any(d.is_error for d in run_diags):
        return None
    classes.update(run_classes)
    shapes.required_values = {w: inferred.get(w, PLACEHOLDER_WIDTH) for w in shapes.required}
    return shapes


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


def _run(scope: _Scope, graph: ir.Graph, types: dict[str, TType], args_out: dict[int, dict] | None) -> None:
    """Propagate types through `graph`'s nodes; `types` holds its inputs' types on entry."""
    for index, node in enumerate(graph.nodes):
        if any(v not in types for v in node.inputs):
            continue  # an earlier error already explains this
        in_types = [types[v] for v in node.inputs]
        try:
            if isinstance(node, ir.BlockCall):
                outs, args = _apply_block(scope, node, in_types)
            elif isinstance(node, ir.Repeat):
                outs, args = _apply_repeat(scope, node, in_types[0])
            else:
                outs, args = _apply(node, in_types, scope.syms, scope.diags, scope.asserts, scope.inferred)
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


def _apply_block(scope: _Scope, node: ir.Node, in_types: list[TType]) -> list[TType]:
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
    inner = _Scope(scope.program, syms, scope.diags, scope.asserts, scope.call or node, scope.classes,
                   scope.inferred)
    types = {inp.name: t for inp, t in zip(block.inputs, in_types)}
    before = sum(d.is_error for d in scope.diags)
    _run(inner, block, types, None)
    if sum(d.is_error for d in scope.diags) > before:
        raise _Reported()
    key = class_key(node)
    if key not in scope.classes:
        own = {p.name: Sym.param(p.name, syms[p.name].value) for p in block.params}
        _check_class(scope, key, block, own, in_types)
    cls = scope.classes.get(key)
    args = {"params": syms, "sizes": _bind_sizes(cls, in_types) if cls else {}}
    return [types[o] for o in block.outputs], args


def _size_name(graph: ir.Graph, i: int, k: int, dim: Dim) -> str:
    return f"{graph.inputs[i].name}_{dim.name}" if dim.name else f"{graph.inputs[i].name}_dim{k}"


def _check_class(scope: _Scope, key: tuple, graph: ir.Graph, syms: dict[str, Sym], in_types: list[TType]) -> None:
    """Check `graph` once more with its input sizes as constructor arguments, for its class."""
    cls = ClassShapes(graph, {n: s.value for n, s in syms.items()}, key=key)
    types: dict[str, TType] = {}
    for i, (inp, t) in enumerate(zip(graph.inputs, in_types)):
        dims = []
        for k, d in enumerate(t.dims):
            if d.size is None or k == 0:
                dims.append(d)
                continue
            name = _size_name(graph, i, k, d)
            cls.size_params[name] = (i, k)
            dims.append(Dim(d.name, Sym.param(name, d.size.value, d.size.placeholder)))
        types[inp.name] = t.with_dims(dims)
    cls.types = types
    diags: list[Diagnostic] = []  # the per-use check has reported everything already
    inner = _Scope(scope.program, syms, diags, cls.asserts, None, scope.classes)
    _run(inner, graph, types, cls.args)
    if any(d.is_error for d in diags):
        if scope.inferred:  # a round whose input widths are still being inferred: the next decides
            return
        raise AssertionError(f"symbolic check of {key} failed: {[d.message for d in diags]}")
    scope.classes[key] = cls


def _bind_sizes(cls: ClassShapes, in_types: list[TType]) -> dict[str, Sym]:
    """The caller's sizes for a class's input-size arguments."""
    out = {}
    for name, (i, k) in cls.size_params.items():
        size = in_types[i].dims[k].size if k < in_types[i].rank else None
        if size is not None:
            out[name] = size
    return out


def _apply_repeat(scope: _Scope, node: ir.Repeat, t: TType) -> list[TType]:
    """`repeat(n)`: a literal n checks every step; a parameter n needs a shape-preserving body."""
    count = _eval(node.count, scope.syms)
    steps = count.value if count.is_const else 1
    current = t
    before = sum(d.is_error for d in scope.diags)
    step_inputs: list[TType] = []
    for _ in range(steps):
        step_inputs.append(current)
        types = {node.body.inputs[0].name: current}
        _run(scope, node.body, types, None)
        if sum(d.is_error for d in scope.diags) > before:
            raise _Reported()
        current = types[node.body.outputs[0]]
    if not count.is_const:
        ok = current.rank == t.rank and all(
            (a.size is None) == (b.size is None) and (a.size is None or a.size.value == b.size.value)
            for a, b in zip(t.dims, current.dims))
        if not ok:
            raise ShapeError("E050", f"the body of `repeat({count.render()})` changes its input {t.show()} "
                             f"into {current.show()}",
                             "with a parameter count the body must keep the shape; use a literal count "
                             "to check each step", node.span)
    key = class_key(node)
    if key not in scope.classes:
        _check_class(scope, key, node.body, _outer_params(scope.syms), [t])
    cls = scope.classes.get(key)
    args = {"count": count, "steps": [_bind_sizes(cls, [s]) if cls else {} for s in step_inputs]}
    return [current], args


def class_key(node: ir.Node) -> tuple:
    """The key of the class a block call or repeat is emitted as: one per block, one per repeat."""
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
    if inp.shape is None:
        if given is not None:
            if len(given) != 1:
                return TType((Dim("batch", None), *(Dim(None, Sym.const(s)) for s in given)), inp.dtype)
            return TType((Dim("batch", None), Dim("feature", Sym.const(given[0]))), inp.dtype)
        width = f"{inp.name}_features"
        shapes.required.append(width)
        value = inferred.get(width, PLACEHOLDER_WIDTH)
        return TType((Dim("batch", None), Dim("feature", Sym.param(width, value, True))), inp.dtype)
    dims: list[Dim] = []
    for d in inp.shape:
        size = _eval(d.size, syms) if d.size is not None else None
        if size is not None and (not isinstance(size, Sym) or not isinstance(size.value, int)
                                 or isinstance(size.value, bool) or size.value < 1):
            raise ShapeError("E055", f"input `{inp.name}`: a size must be a positive integer, "
                             f"not {getattr(size, 'value', size)!r}", span=d.span)
        dims.append(Dim(d.name, size))
    if given is not None:
        if len(given) != len(dims) - 1:
            raise ShapeError("E033", f"`--input {inp.name}` gives {len(given)} sizes, but `{inp.name}` has "
                             f"{len(dims) - 1} non-batch dimensions", span=inp.span)
        dims = [dims[0]] + [Dim(d.name, Sym.const(s)) for d, s in zip(dims[1:], given)]
    return TType(tuple(dims), inp.dtype)


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
    return DimRef(None, value.value, span) if isinstance(value, Sym) else value


def _apply(node: ir.Node, in_types: list[TType], syms: dict[str, Sym], diags: list[Diagnostic],
           asserts: list[Assertion], inferred: dict[str, int] | None = None) -> tuple[list[TType], dict[str, Any]]:
    spec = lookup(node.op)
    assert spec is not None
    if spec.shape is None:
        raise ShapeError("E056", f"op `{spec.name}` has no shape rule yet", None, node.span)
    args = evaluate_args(spec, node, syms)
    ctx = ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types, args, diags, asserts, inferred)
    outs = list(spec.shape(ctx))
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
