"""`tgc summary`: a table of a checked model's parts, shapes, parameters and costs.

Computed from the IR and the shape checker alone (never imports torch), like Keras's
`model.summary()` or torchinfo: one row per op application, block call and repeat, nested rows
for the parts of blocks, the output shape in the user's dimension names, the number of learned
parameters (trainable or frozen) and the multiply-accumulates per sample. The numbers are those
of the checked sizes: parameter defaults, `--param` and `--input`.

Each op counts its own parameters and MACs with the `params_count` and `macs` rules of its
registry entry, which receive a `CostCtx`; a block or repeat sums its parts. MACs count the
multiply-accumulates of matrix products and convolutions (what dominates compute); element-wise
ops, norms, pooling and reshapes count 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ir
from .naming import GraphNames, Names, name_program, single_block_body
from .ops.context import CostCtx, ShapeCtx, UnknownSize
from .ops.registry import lookup
from .shapes import Checked, GraphShapes, instantiate, model_syms
from .tensor_types import Sym


@dataclass
class Row:
    """One line of the table. `params`/`macs` are None when unknown; totals include children."""

    depth: int
    name: str  # the submodule's attribute where the row owns one (the naming pass's), else the label
    op: str
    shape: str
    params: int | None = 0
    frozen: bool = False
    macs: int | None = 0
    unknown: set[str] = field(default_factory=set)  # unsized dimensions that make `macs` unknown
    module: str | None = None  # the submodule's path in the emitted model (`layer1.0.conv1`), if any


@dataclass
class Summary:
    model: str
    rows: list[Row]
    total: int | None
    trainable: int | None
    frozen: int | None
    macs: int | None
    unsized: list[str]  # dimension names that left some MACs unknown
    problems: list[str]  # ops with weights but no `params_count` rule


def summarize(checked: Checked, shapes: GraphShapes, depth: int | None = None,
              names: Names | None = None) -> Summary:
    """The summary of one checked model; rows nested deeper than `depth` are left out. Rows
    are named as the naming pass names the emitted module's submodules (`names`)."""
    names = names or name_program(checked)
    rows: list[Row] = []
    problems: list[str] = []
    for inp in shapes.graph.inputs:
        rows.append(Row(0, inp.name, "input", shapes.types[inp.name].show()))
    totals = _Totals()
    where = _Where(names, names.of(checked, shapes), "")
    _graph_rows(checked, shapes, model_syms(shapes), 0, False, rows, totals, problems, where)
    if depth is not None:
        rows = [r for r in rows if r.depth <= depth]
    unsized = sorted(totals.unknown)
    return Summary(shapes.graph.name, rows, totals.params, totals.trainable, totals.frozen, totals.macs,
                   unsized, problems)


@dataclass
class _Totals:
    params: int | None = 0
    trainable: int | None = 0
    frozen: int | None = 0
    macs: int | None = 0  # known MACs (the sum of every known row)
    unknown: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)  # modules of `layer`s counted already


@dataclass(frozen=True)
class _Where:
    """The emitted class a graph's rows belong to, and its submodule's path in the model."""

    names: Names
    graph: GraphNames
    prefix: str  # `layer1.0.` for the first step of repeat `layer1`; "" for the model

    collapse: bool = False  # a repeat step that is one block call: the step is the block's module

    def row(self, index: int, label: str) -> tuple[str, str | None]:
        attr = self.graph.attrs.get(index)
        if attr is not None and self.collapse:
            return attr, self.prefix[:-1]
        return (label, None) if attr is None else (attr, self.prefix + attr)

    def inner(self, key: tuple, path: str | None, collapse: bool = False) -> "_Where":
        return _Where(self.names, self.names.classes[key], f"{path}.", collapse)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _graph_rows(checked: Checked, shapes: GraphShapes, syms: dict[str, Sym], depth: int, frozen: bool,
                rows: list[Row], totals: _Totals, problems: list[str],
                where: _Where) -> tuple[int | None, int | None]:
    """Rows for every node of `shapes.graph`; returns its (parameters, MACs)."""
    graph_params: int | None = 0
    graph_macs: int | None = 0
    for index, node in enumerate(shapes.graph.nodes):
        in_types = [shapes.types[v] for v in node.inputs]
        out_types = [shapes.types[v] for v in node.outputs]
        shape = out_types[0].show() if out_types else ""
        if len(out_types) > 1:
            shape += f" (+{len(out_types) - 1})"
        is_frozen = frozen or node.frozen
        args = shapes.args.get(index, {})
        name, module = where.row(index, node.label)
        if isinstance(node, ir.OpCall):
            spec = lookup(node.op)
            assert spec is not None
            row = Row(depth, name, node.op, shape, frozen=is_frozen, module=module)
            rows.append(row)
            ctx = CostCtx(spec, node.span, in_types, out_types, args)
            row.params = _cost(spec.params_count, ctx, row, problems if spec.has_weights else None, spec.name)
            row.macs = _cost(spec.macs, ctx, row, None, spec.name)
            if node.arg(ir.LAYER_ARG) is not None and module is not None:
                if module in totals.shared:  # a layer applied again: its weights are counted once
                    row.params, row.op = 0, f"{row.op} (shared)"
                totals.shared.add(module)
            if node.arg("tie") is not None and row.params is not None and spec.weight_shape is not None:
                tied = 1  # the tied weight is the layer's, counted there
                for size in spec.weight_shape(ShapeCtx(spec, node.span, [ir.display_name(v) for v in node.inputs], in_types, args)):
                    tied *= int(size.value)
                row.params, row.op = row.params - tied, f"{row.op} (tied)"
            if row.params is not None:
                totals.params = _add(totals.params, row.params)
                if is_frozen:
                    totals.frozen = _add(totals.frozen, row.params)
                else:
                    totals.trainable = _add(totals.trainable, row.params)
            else:
                totals.params = totals.trainable = totals.frozen = None
            if row.macs is not None:
                totals.macs = (totals.macs or 0) + row.macs
            totals.unknown |= row.unknown
        elif isinstance(node, ir.BlockCall):
            block = checked.program.block(node.op)
            assert block is not None
            row = Row(depth, name, f"{node.op} (block)", shape, frozen=is_frozen, module=module)
            rows.append(row)
            inner = instantiate(checked, block, args["params"], in_types)
            row.params, row.macs = _graph_rows(checked, inner, args["params"], depth + 1, is_frozen, rows,
                                               totals, problems, where.inner(args["class"], module))
        else:
            count: Sym = args["count"]
            op = f"repeat({count.render()})" + ("" if count.is_const else f" x{count.value}")
            row = Row(depth, name, op, shape, frozen=is_frozen, module=module)
            rows.append(row)
            params: int | None = 0
            macs: int | None = 0
            current = in_types[0]
            step = 0
            for key, _sizes, n in args["steps"]:
                body = instantiate(checked, node.body, syms, [current, *in_types[1:]])  # once for steps alike
                for _ in range(n):
                    step_rows: list[Row] = []
                    p, m = _graph_rows(checked, body, syms, depth + 1, is_frozen, step_rows, totals, problems,
                                       where.inner(key, f"{module}.{step}", single_block_body(node.body)))
                    if count.value > 1:
                        for r in step_rows:
                            if r.depth == depth + 1:
                                r.name = f"{r.name} #{step + 1}"
                    rows.extend(step_rows)
                    params, macs = _add(params, p), _add(macs, m)
                    step += 1
                current = body.types[node.body.outputs[0]]
            row.params, row.macs = params, macs
        graph_params = _add(graph_params, row.params)
        graph_macs = _add(graph_macs, row.macs)
    return graph_params, graph_macs


def _cost(rule, ctx: CostCtx, row: Row, problems: list[str] | None, name: str) -> int | None:
    if rule is None:
        if problems is not None:
            problem = f"op `{name}` has weights but no `params_count` rule: its parameters are not counted"
            if problem not in problems:
                problems.append(problem)
            return None
        return 0
    try:
        value = rule(ctx)
    except UnknownSize as exc:
        row.unknown.add(str(exc))
        return None
    return int(value.value if isinstance(value, Sym) else value)


# ------------------------------------------------------------------------------ rendering


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _short(n: int | None) -> str:
    """12,345,678 -> `12.35 M`."""
    if n is None:
        return "?"
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def render(summary: Summary, source: str | None = None) -> str:
    """The table as text: a header, one line per row, the totals."""
    head = ("name", "op", "output shape", "params", "trainable", "MACs")
    table = [head]
    for r in summary.rows:
        if r.op == "input":
            table.append(("  " * r.depth + r.name, "input", r.shape, "", "", ""))
            continue
        trainable = "" if not r.params else ("frozen" if r.frozen else "yes")
        table.append(("  " * r.depth + r.name, r.op, r.shape, _count(r.params), trainable,
                      _count(r.macs) if r.macs != 0 else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    right = {3, 5}

    def line(row) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(head))
    title = f"model {summary.model}" + (f" ({source})" if source else "")
    out = [title, rule, line(head), rule, *(line(r) for r in table[1:]), rule]
    out.append(f"parameters: {_count(summary.total)} (trainable {_count(summary.trainable)}, "
               f"frozen {_count(summary.frozen)})")
    macs = f"multiply-accumulates per sample: {'at least ' if summary.unsized else ''}{_short(summary.macs)}"
    if summary.macs is not None and summary.macs >= 1000:
        macs += f" ({summary.macs:,})"
    if summary.unsized:
        names = ", ".join(f"`{n}`" for n in summary.unsized)
        macs += (f"; ops over dimensions without a size ({names}) are not counted (`?`): "
                 "give them sizes with `--input`")
    out.append(macs)
    for p in summary.problems:
        out.append(f"note: {p}")
    return "\n".join(out) + "\n"
