"""The `merge` family: variadic ops that combine several tensors (or reduce one).

`cat` and `stack` join along a dimension (`add`, `mul` and the other arithmetic are in
`arith.py`), and the reductions
`mean` and `max` (one factory, parametrised by a `_Reduction`) are element-wise over several
inputs or reduce one input over `dim`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from ..tensor_types import Dim, DimRef, Sym, TType, tidy
from .arith import elementwise_type
from .context import ShapeCtx
from .drawing import Case, Draw, Name, Tensor, copies, dim_ref, float_input, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ rules


def _check_same(ctx: ShapeCtx, skip: int | None = None) -> None:
    """All inputs have the first one's rank and sizes (except dimension `skip`)."""
    first = ctx.in_types[0]
    for i, t in enumerate(ctx.in_types[1:], start=1):
        if t.rank != first.rank:
            ctx.error(f"`{ctx.input_names[0]}` has {first.rank} dimensions {first.show()} but "
                      f"`{ctx.input_names[i]}` has {t.rank} {t.show()}", code="E051")
        if t.dtype != first.dtype:
            ctx.error(f"`{ctx.input_names[0]}` is {first.dtype} but `{ctx.input_names[i]}` is {t.dtype}",
                      code="E054")
        for k, (a, b) in enumerate(zip(first.dims, t.dims)):
            if k == skip:
                continue
            ctx.same_dim(a, b, k, ctx.input_names[0], ctx.input_names[i])


def _elementwise(ctx: ShapeCtx):
    """Several inputs combined element-wise: broadcast by named dimensions (`arith`)."""
    if ctx.arg("dim") is not None and len(ctx.in_types) > 1:
        ctx.error("`dim` is only for one input (a reduction); with several inputs the op is element-wise")
    return [elementwise_type(ctx)]


def _paren(expr: str) -> str:
    return f"({expr})" if " " in expr else expr


# ---- cat and stack


def _cat_shape(ctx: ShapeCtx):
    first = ctx.in_types[0]
    k = ctx.dim_index(ctx.arg("dim"), first, from_param=True)
    if ctx.is_batch(first, k):
        ctx.error("joining along the batch dimension is not supported: every value keeps its batch",
                  "stack the values into a new dimension instead: `stack(a, b, dim=1)`", code="E052")
    _check_same(ctx, skip=k)
    sizes = [t.dims[k].extent for t in ctx.in_types]
    if any(s is None for s in sizes):
        ctx.error(f"dimension {k} of an input has no size, so the joined size is unknown", code="E051")
    total = sizes[0]
    for s in sizes[1:]:
        total = total + s
    # sizes known only at run time add up to a run-time size (`token + token` is `2 * token`)
    return [first.replace_dim(k, Dim.of(first.dims[k].name, tidy(total)))]


def _cat_emit(ctx) -> Emission:
    return Emission(call=f"torch.cat([{', '.join(ctx.exprs)}], dim={ctx.dim('dim')})")


def _stack_index(ctx: ShapeCtx, t: TType) -> tuple[int, str | None]:
    ref = ctx.arg("dim")
    if isinstance(ref, DimRef) and ref.name is not None:
        if any(d.name == ref.name for d in t.dims):
            ctx.error(f"`{ref.name}` already names a dimension of `{ctx.input_names[0]}` {t.show()}",
                      "stack makes a new dimension; give it a new name or an index", code="E052")
        return 1, ref.name  # a named new dimension goes right after the batch
    index = ref.index if isinstance(ref, DimRef) else None
    if index is None or not -(t.rank + 1) <= index <= t.rank:
        ctx.error(f"`dim={index}` is out of range for stacking tensors of {t.rank} dimensions", code="E052")
    return index % (t.rank + 1), None


def _stack_shape(ctx: ShapeCtx):
    _check_same(ctx)
    first = ctx.in_types[0]
    index, name = _stack_index(ctx, first)
    dims = list(first.dims)
    dims.insert(index, Dim(name, Sym.const(len(ctx.in_types))))
    return [first.with_dims(dims)]


def _stack_emit(ctx) -> Emission:
    index, _ = _stack_index(ctx, ctx.in_types[0])
    return Emission(call=f"torch.stack([{', '.join(ctx.exprs)}], dim={index})")


# ---- reductions


class _Reduction:
    """What differs between the reductions: the words, the input dtypes, the emitted torch."""

    __slots__ = ("name", "what", "doc", "example", "float_only", "method", "combine")

    def __init__(self, name: str, what: str, doc: str, example: str, float_only: bool, method: str,
                 combine: Callable[[list[str]], str]):
        self.name, self.what, self.doc, self.example = name, what, doc, example
        self.float_only = float_only  # a mean of integers is not defined in torch
        self.method = method  # the tensor method that reduces one input over `dim`
        self.combine = combine  # the expression that combines several inputs element-wise


def _stacked_mean(exprs: list[str]) -> str:
    return f"torch.stack([{', '.join(exprs)}]).mean(dim=0)"


def _pairwise_maximum(exprs: list[str]) -> str:
    expr = exprs[0]
    for other in exprs[1:]:
        expr = f"torch.maximum({expr}, {other})"
    return expr


def _reduce_shape(kind: _Reduction, ctx: ShapeCtx):
    if len(ctx.in_types) > 1:
        return _elementwise(ctx)
    x = ctx.in_types[0]
    if ctx.arg("dim") is None:
        ctx.error(f"with one input, `{ctx.spec.name}` needs `dim=` (the dimension to reduce)",
                  f"for example `x >> {ctx.spec.name}(dim=token)`; with several inputs it is element-wise")
    if kind.float_only:
        ctx.expect_float(x)
    k = ctx.dim_index(ctx.arg("dim"), x, from_param=True)
    dims = list(x.dims)
    keepdim = ctx.arg("keepdim")
    if not keepdim.is_const:  # the shapes that follow were checked for this value
        ctx.require(keepdim.equals(keepdim.value), f"`keepdim` ({keepdim.render()}) must be "
                    f"{keepdim.value}, as it was when the module was compiled")
    if keepdim.value:
        dims[k] = Dim(dims[k].name, Sym.const(1))
    else:
        if ctx.is_batch(x, k):
            ctx.error("reducing the batch dimension is not supported: every value keeps its batch", code="E052")
        del dims[k]
    return [x.with_dims(dims)]


def _reduce_emit(kind: _Reduction, ctx) -> Emission:
    if len(ctx.exprs) > 1:
        if kind.name == "mean" and len({t.dims for t in ctx.in_types}) > 1:  # broadcast first
            return Emission(call=f"torch.stack(torch.broadcast_tensors({', '.join(ctx.exprs)})).mean(dim=0)")
        return Emission(call=kind.combine(ctx.exprs))
    keepdim = ctx.arg("keepdim")
    keep = ", keepdim=True" if keepdim.value else ""
    if not keepdim.is_const:  # a parameter: the module reads it, as the check did for its value
        keep = f", keepdim={ctx.rf(keepdim)}"
    return Emission(call=f"{_paren(ctx.exprs[0])}.{kind.method}(dim={ctx.dim('dim')}{keep})")


def _reduce_params(what: str) -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "dim",
            "dim",
            default=None,
            doc=f"With one input, the dimension to take the {what} over (a name or an index).",
            depends="only with one input; with several the op is element-wise and dim must be left out",
        ),
        HyperParam(
            "keepdim",
            "bool",
            default=False,
            doc="With one input and dim, keep the reduced dimension with size 1.",
            depends="only with one input and dim",
        ),
    )


# ------------------------------------------------------------------------------ autotest


def _cat_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "a")
    k = draw(st.sampled_from([i for i in range(1, x.rank) if x.size(i) is not None]))
    inputs = []
    for t in copies(draw, x):
        dims = list(t.dims)
        dims[k] = (dims[k][0], draw(st.integers(1, 5)))
        inputs.append(Tensor(t.name, dims))
    return Case(inputs, {"dim": dim_ref(draw, x, [k])})


def _stack_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "a")
    if draw(st.booleans()):
        dim: Any = Name("stacked")
    else:
        dim = draw(st.integers(-(x.rank + 1), x.rank))
    return Case(copies(draw, x), {"dim": dim})


def _reduce_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "a")
    if draw(st.booleans()):
        return Case(copies(draw, x))  # element-wise over several inputs
    keepdim = draw(st.booleans())
    args = {"dim": dim_ref(draw, x, range(0 if keepdim else 1, x.rank))}
    put(args, "keepdim", keepdim if keepdim else maybe(draw, False))
    return Case([x], args)


# ------------------------------------------------------------------------------ the family

_REDUCE_SHAPE_DOC = (
    "several [*] -> [*] (element-wise); one input: [..., d, ...] -> [..., ...] "
    "without dim (size 1 with keepdim)"
)

_REDUCTIONS = (
    _Reduction(
        "mean",
        what="mean",
        doc="Element-wise mean of several tensors, or with one input and dim the mean over that dimension.",
        example="pooled = h >> mean(dim=token)",
        float_only=True,
        method="mean",
        combine=_stacked_mean,
    ),
    _Reduction(
        "max",
        what="maximum",
        doc="Element-wise maximum of several tensors, or with one input and dim the maximum over that dimension.",
        example="pooled = h >> max(dim=token)",
        float_only=False,
        method="amax",
        combine=_pairwise_maximum,
    ),
)


def reduce_op(kind: _Reduction) -> OpSpec:
    """The reduction `kind.name`: element-wise over several inputs, or over `dim` of one."""
    return OpSpec(
        name=kind.name,
        doc=kind.doc,
        family="merge",
        variadic=True,
        min_inputs=1,
        params=_reduce_params(kind.what),
        example=kind.example,
        shape_doc=_REDUCE_SHAPE_DOC,
        shape=partial(_reduce_shape, kind),
        emit=partial(_reduce_emit, kind),
        autotest=_reduce_strategy,
    )


register(
    OpSpec(
        name="cat",
        doc="Concatenates two or more tensors along an existing dimension.",
        family="merge",
        variadic=True,
        min_inputs=2,
        params=(
            HyperParam(
                "dim",
                "dim",
                doc="Dimension to concatenate along (a name or an index); other dimensions must match.",
            ),
        ),
        example="h = cat(a, b, dim=feature)",
        shape_doc="[..., d1, ...], [..., d2, ...], ... -> [..., d1 + d2 + ..., ...] along dim",
        shape=_cat_shape,
        emit=_cat_emit,
        autotest=_cat_strategy,
    )
)

register(
    OpSpec(
        name="stack",
        doc="Stacks two or more tensors of the same shape along a new dimension.",
        family="merge",
        variadic=True,
        min_inputs=2,
        params=(
            HyperParam(
                "dim",
                "dim",
                doc="Position of the new dimension (an index, or a name for the new dimension).",
            ),
        ),
        example="h = stack(a, b, dim=1)",
        shape_doc="n inputs [*] -> [*] with a new dimension of size n at dim",
        shape=_stack_shape,
        emit=_stack_emit,
        autotest=_stack_strategy,
    )
)

for _kind in _REDUCTIONS:
    register(reduce_op(_kind))
