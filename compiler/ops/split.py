"""The `split` family: ops that cut a tensor into several outputs."""

from __future__ import annotations

from typing import Any

from ..tensor_types import Dim, Sym, tidy
from .context import ShapeCtx
from .drawing import (
    Case,
    Draw,
    Tensor,
    chained,
    dim_ref,
    divisors,
    float_input,
    maybe,
    output_count,
    put,
    strategies,
)
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ rules
#
# Pieces keep the input's dimension names. A count must divide a sized dimension (checked now,
# asserted in __init__ when the size is symbolic); along a dimension without a size (a sequence
# length) the pieces' sizes are unknown and the division is torch.chunk's at run time. The batch
# dimension is never cut: every value keeps its batch.
#
# forward cannot see constructor arguments, so a count is emitted as `torch.split(x, piece)` only
# when the piece size is a constant, else as `torch.chunk(x, count)` (equal pieces, by the
# __init__ assertion); a list of sizes over constructor arguments is kept on the module
# (`self.h_split = [a, d - a]`) and forward reads it from there.


def _axis(ctx: ShapeCtx) -> int:
    x = ctx.in_types[0]
    k = ctx.dim_index(ctx.arg("dim"), x, from_param=True)
    if ctx.is_batch(x, k):
        ctx.error("cutting the batch dimension is not supported: every value keeps its batch", code="E052")
    return k


def _label(ctx: ShapeCtx, k: int) -> str:
    d = ctx.in_types[0].dims[k]
    return f"`{d.name}`" if d.name else f"{k}"


def _show(s: Sym) -> str:
    return str(s.value) if s.is_const else f"{s.render()} = {s.value}"


def _exact_quotient(size: Sym, n: Sym) -> Sym | None:
    """`size // n` without a remainder by construction (`hidden * 2` cut in 2 is `hidden`), else None."""
    tree = size.tree
    if not n.is_const or tree[0] != "*":
        return None
    for factor, other in ((tree[2], tree[1]), (tree[1], tree[2])):
        if factor[0] == "c" and isinstance(factor[1], int) and factor[1] % n.value == 0:
            m = factor[1] // n.value
            return Sym(size.value // n.value, other if m == 1 else ("*", other, ("c", m)), size.placeholder)
    return None


def _equal_pieces(ctx: ShapeCtx, n: Sym) -> list:
    x = ctx.in_types[0]
    k = _axis(ctx)
    size = x.dims[k].size
    if n.value < 1:
        ctx.error(f"the number of pieces must be positive, not {n.value}")
    piece = None
    length = x.dims[k].extent
    if size is None and length is not None:
        # torch.chunk makes n equal pieces only when n divides the length (else fewer, or unequal)
        ctx.require((length % n).equals(0), f"dimension {_label(ctx, k)} of `{ctx.input_names[0]}` must be "
                    f"divisible by {n.render()} to cut it into equal pieces")
        piece = tidy(length // n)
    elif size is not None:
        piece = _exact_quotient(size, n)
        divides = Sym.const(True) if piece is not None else (size % n).equals(0)
        ctx.require(divides,
                    f"dimension {_label(ctx, k)} of `{ctx.input_names[0]}` ({_show(size)}) cannot be cut "
                    f"into {n.value} equal pieces",
                    "give a count that divides the size, or a list of piece sizes: `split(x, [a, b])`")
        if piece is None:
            piece = size // n
    return [x.replace_dim(k, Dim.of(x.dims[k].name, piece)) for _ in range(n.value)]


def _split_shape(ctx: ShapeCtx):
    sections = ctx.arg("sections")
    if isinstance(sections, Sym):
        return _equal_pieces(ctx, sections)
    x = ctx.in_types[0]
    k = _axis(ctx)
    for s in sections:
        if s.value < 1:
            ctx.error(f"piece sizes must be positive, not {s.value}")
    total = sections[0]
    for s in sections[1:]:
        total = total + s
    size = x.dims[k].size
    listed = ", ".join(s.render() for s in sections)
    if size is None:
        ctx.error(f"dimension {_label(ctx, k)} of `{ctx.input_names[0]}` has no size, so the piece sizes "
                  f"[{listed}] cannot be known to add up to it",
                  "give the dimension a size in the input, or cut it into equal pieces with a count: "
                  f"`split(x, {len(sections)}, dim=...)`", code="E051")
    else:
        ctx.require(total.equals(size),
                    f"the piece sizes [{listed}] (together {total.value}) must add up to dimension "
                    f"{_label(ctx, k)} of `{ctx.input_names[0]}` ({_show(size)})")
    return [x.replace_dim(k, Dim(x.dims[k].name, s)) for s in sections]


def _chunk_shape(ctx: ShapeCtx):
    return _equal_pieces(ctx, ctx.arg("chunks"))


def _unpack(n: int) -> str:
    return ", ".join("{}" for _ in range(n))


def _split_emit(ctx) -> Emission:
    sections = ctx.arg("sections")
    dim = ctx.dim("dim")
    n = len(ctx.out_types)
    if isinstance(sections, list):
        # sizes over constructor arguments read them from `self` (ctx.rf): forward cannot see them
        sizes = "[" + ", ".join(ctx.rf(s) for s in sections) + "]"
        call = f"torch.split({ctx.exprs[0]}, {sizes}, dim={dim})"
    else:
        piece = ctx.out_types[0].dims[ctx.dim_index(ctx.arg("dim"), ctx.in_types[0], from_param=True)].size
        if piece is not None and piece.is_const:
            call = f"torch.split({ctx.exprs[0]}, {ctx.r(piece)}, dim={dim})"
        else:
            # a symbolic piece size: chunk into the count (equal pieces, asserted in __init__)
            call = f"torch.chunk({ctx.exprs[0]}, {ctx.r(sections)}, dim={dim})"
    return Emission(call=call, unpack=_unpack(n), first="[0]")


def _chunk_emit(ctx) -> Emission:
    call = f"torch.chunk({ctx.exprs[0]}, {ctx.r(ctx.arg('chunks'))}, dim={ctx.dim('dim')})"
    return Emission(call=call, unpack=_unpack(len(ctx.out_types)), first="[0]")


# ------------------------------------------------------------------------------ autotest


def _cut_axis(draw: Draw) -> tuple[Tensor, int, int]:
    """An input, a sized dimension after the batch to cut along, and its size."""
    st = strategies()
    x = float_input(draw, "x", high=8)
    k = draw(st.sampled_from([i for i in range(1, x.rank) if x.size(i) is not None]))
    size = x.size(k)
    assert size is not None
    return x, k, size


def _split_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x, k, size = _cut_axis(draw)
    if draw(st.booleans()):
        sections: Any = draw(st.sampled_from(divisors(size)))
    else:  # piece sizes that add up to the dimension
        cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=min(3, size - 1)))) if size > 1 else []
        bounds = [0, *cuts, size]
        sections = [b - a for a, b in zip(bounds, bounds[1:])]
    args: dict[str, Any] = {"sections": sections}
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    return chained(draw, Case([x], args, outputs=output_count(spec, args)))


def _chunk_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x, k, size = _cut_axis(draw)
    args: dict[str, Any] = {"chunks": draw(st.sampled_from([d for d in divisors(size) if d <= 4]))}
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    return chained(draw, Case([x], args, outputs=output_count(spec, args)))


# ------------------------------------------------------------------------------ the family


def _dim() -> HyperParam:
    return HyperParam(
        "dim",
        "dim",
        default=-1,
        doc="Dimension to cut along (a name or an index); the last one by default.",
    )


register(
    OpSpec(
        name="split",
        doc="Cuts the input along one dimension into equal pieces or pieces of given sizes.",
        family="split",
        outputs_from="sections",
        params=(
            HyperParam(
                "sections",
                "sections",
                doc="A number of equal pieces, or a list of piece sizes; gives the number of outputs.",
                depends="a count must divide the dimension's size; sizes must add up to it",
            ),
            _dim(),
        ),
        example="a, b = split(x, 2, dim=feature)",
        shape_doc=(
            "[..., d, ...] -> n outputs [..., d / n, ...] along dim (or [..., s_i, ...] for "
            "listed sizes s_i)"
        ),
        shape=_split_shape,
        emit=_split_emit,
        autotest=_split_strategy,
    )
)

register(
    OpSpec(
        name="chunk",
        doc="Cuts the input along one dimension into a number of equal pieces.",
        family="split",
        outputs_from="chunks",
        params=(
            HyperParam(
                "chunks",
                "int",
                doc="Number of pieces, which is the number of outputs.",
                depends="must divide the dimension's size (as for split with a count)",
            ),
            _dim(),
        ),
        example="q, k, v = chunk(x, 3, dim=feature)",
        shape_doc="[..., d, ...] -> chunks outputs [..., d / chunks, ...] along dim",
        shape=_chunk_shape,
        emit=_chunk_emit,
        autotest=_chunk_strategy,
    )
)
