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

from dataclasses import asdict, dataclass, field
from typing import Callable

from . import ir
from .naming import GraphNames, Names, name_program, single_block_body
from .ops.context import CostCtx, ShapeCtx, UnknownSize
from .ops.registry import lookup
from .shapes import Checked, GraphShapes, instantiate, model_syms
from .tensor_types import Sym, TType


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
    activations: int | None = 0  # bytes of its outputs per sample (None: a dimension has no size)


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
    activations: int | None = None  # bytes of every row's outputs per sample (what backward keeps)


# bytes per element of each dtype the checker knows
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}


def summarize(checked: Checked, shapes: GraphShapes, depth: int | None = None,
              names: Names | None = None, concrete: bool = False) -> Summary:
    """The summary of one checked model; rows nested deeper than `depth` are left out. Rows
    are named as the naming pass names the emitted module's submodules (`names`). `concrete`:
    shapes show the sizes' values (`feature=64`) rather than their expressions (`feature=d`)."""
    names = names or name_program(checked)
    rows: list[Row] = []
    problems: list[str] = []
    show = _concrete if concrete else TType.show
    for inp in shapes.graph.inputs:
        t = shapes.types[inp.name]
        rows.append(Row(0, inp.name, "input", show(t), activations=_bytes([t])))
    totals = _Totals()
    where = _Where(names, names.of(checked, shapes), "", show=show)
    _graph_rows(checked, shapes, model_syms(shapes), 0, False, rows, totals, problems, where)
    # a forward pass keeps every op's output for backward: the leaves of the table (a block's
    # or repeat's own row repeats its parts' last output)
    leaves = [r for i, r in enumerate(rows) if not (i + 1 < len(rows) and rows[i + 1].depth > r.depth)]
    activations = None if any(r.activations is None for r in leaves) else sum(r.activations for r in leaves)
    if depth is not None:
        rows = [r for r in rows if r.depth <= depth]
    unsized = sorted(totals.unknown)
    return Summary(shapes.graph.name, rows, totals.params, totals.trainable, totals.frozen, totals.macs,
                   unsized, problems, activations)


def _concrete(t: TType) -> str:
    """`[batch, feature=64]`: a size's value where the checker knows it."""
    dims = []
    for d in t.dims:
        if d.size is not None and isinstance(d.size.value, int) and not d.size.placeholder:
            dims.append(f"{d.name}={d.size.value}" if d.name else str(d.size.value))
        else:
            dims.append(d.show())
    return ("" if t.dtype == "float32" else t.dtype) + "[" + ", ".join(dims) + "]"


def _bytes(types: list[TType]) -> int | None:
    """Bytes per sample of tensors of these types (the batch dimension left out)."""
    total = 0
    for t in types:
        n = ITEMSIZE.get(t.dtype, 4)
        for d in t.dims:
            if d.batch:
                continue
            if d.size is None or not isinstance(d.size.value, int) or d.size.placeholder:
                return None
            n *= d.size.value
        total += n
    return total


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
    show: Callable[[TType], str] = TType.show  # how output shapes are written

    def row(self, index: int, label: str) -> tuple[str, str | None]:
        attr = self.graph.attrs.get(index)
        if attr is not None and self.collapse:
            return attr, self.prefix[:-1]
        return (label, None) if attr is None else (attr, self.prefix + attr)

    def inner(self, key: tuple, path: str | None, collapse: bool = False) -> "_Where":
        return _Where(self.names, self.names.classes[key], f"{path}.", collapse, self.show)


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
        shape = where.show(out_types[0]) if out_types else ""
        if len(out_types) > 1:
            shape += f" (+{len(out_types) - 1})"
        is_frozen = frozen or node.frozen
        args = shapes.args.get(index, {})
        name, module = where.row(index, node.label)
        if isinstance(node, ir.OpCall):
            spec = lookup(node.op)
            assert spec is not None
            row = Row(depth, name, node.op, shape, frozen=is_frozen, module=module,
                      activations=_bytes(out_types))
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
            row = Row(depth, name, f"{node.op} (block)", shape, frozen=is_frozen, module=module,
                      activations=_bytes(out_types))
            rows.append(row)
            inner = instantiate(checked, block, args["params"], in_types)
            row.params, row.macs = _graph_rows(checked, inner, args["params"], depth + 1, is_frozen, rows,
                                               totals, problems, where.inner(args["class"], module))
        else:
            count: Sym = args["count"]
            op = f"repeat({count.render()})" + ("" if count.is_const else f" x{count.value}")
            row = Row(depth, name, op, shape, frozen=is_frozen, module=module, activations=_bytes(out_types))
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


def _bytes_text(n: int | None) -> str:
    """3136 -> `3.1 KB`."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def render(summary: Summary, source: str | None = None, batch: int = 1) -> str:
    """The table as text: a header, one line per row, the totals. Activations are for `batch`
    samples."""
    head = ("name", "op", "output shape", "params", "trainable", "MACs", "activations")

    def act(r: Row) -> str:
        return _bytes_text(None if r.activations is None else r.activations * batch)

    table = [head]
    for r in summary.rows:
        if r.op == "input":
            table.append(("  " * r.depth + r.name, "input", r.shape, "", "", "", act(r)))
            continue
        trainable = "" if not r.params else ("frozen" if r.frozen else "yes")
        table.append(("  " * r.depth + r.name, r.op, r.shape, _count(r.params), trainable,
                      _count(r.macs) if r.macs != 0 else "-", act(r)))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    right = {3, 5, 6}

    def line(row) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(head))
    title = f"model {summary.model}" + (f" ({source})" if source else "")
    out = [title, rule, line(head), rule, *(line(r) for r in table[1:]), rule]
    weights = "" if summary.total is None else f"; {_bytes_text(4 * summary.total)} as float32"
    out.append(f"parameters: {_count(summary.total)} (trainable {_count(summary.trainable)}, "
               f"frozen {_count(summary.frozen)}){weights}")
    total = None if summary.activations is None else summary.activations * batch
    out.append(f"activations for a batch of {batch}: {_bytes_text(total)} (every op's output, which "
               "training keeps for the backward pass)"
               + ("; give the unsized dimensions sizes with `--input`" if total is None else ""))
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


def to_dict(summary: Summary, batch: int = 1) -> dict:
    """The summary as plain data (`tgc summary --format json`): sizes in bytes for `batch`."""
    rows = [{**asdict(r), "activations": None if r.activations is None else r.activations * batch,
             "unknown": sorted(r.unknown)} for r in summary.rows]
    return {"model": summary.model, "batch": batch, "rows": rows,
            "parameters": {"total": summary.total, "trainable": summary.trainable, "frozen": summary.frozen,
                           "bytes": None if summary.total is None else 4 * summary.total},
            "macs": summary.macs, "unsized": summary.unsized,
            "activations": None if summary.activations is None else summary.activations * batch,
            "notes": summary.problems}
