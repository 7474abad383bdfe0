"""The `merge` family: variadic ops that combine several tensors (or reduce one)."""

from __future__ import annotations

from dataclasses import replace

from ..shapes import Dim, DimRef, OpCtx, TType
from ..sym import Sym
from .registry import REGISTRY, Emission, HyperParam, OpSpec, register

register(
    OpSpec(
        name="add",
        doc="Element-wise sum of two or more tensors of the same shape.",
        family="merge",
        variadic=True,
        min_inputs=2,
        example="y = add(x, h)",
        shape_doc="[*] + [*] + ... -> [*] (all inputs of one shape)",
    )
)

register(
    OpSpec(
        name="mul",
        doc="Element-wise product of two or more tensors of the same shape.",
        family="merge",
        variadic=True,
        min_inputs=2,
        example="gated = mul(h, gate)",
        shape_doc="[*] * [*] * ... -> [*] (all inputs of one shape)",
    )
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
    )
)


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


register(
    OpSpec(
        name="mean",
        doc="Element-wise mean of several tensors, or with one input and dim the mean over that dimension.",
        family="merge",
        variadic=True,
        min_inputs=1,
        params=_reduce_params("mean"),
        example="pooled = h >> mean(dim=token)",
        shape_doc=(
            "several [*] -> [*] (element-wise); one input: [..., d, ...] -> [..., ...] "
            "without dim (size 1 with keepdim)"
        ),
    )
)

register(
    OpSpec(
        name="max",
        doc="Element-wise maximum of several tensors, or with one input and dim the maximum over that dimension.",
        family="merge",
        variadic=True,
        min_inputs=1,
        params=_reduce_params("maximum"),
        example="pooled = h >> max(dim=token)",
        shape_doc=(
            "several [*] -> [*] (element-wise); one input: [..., d, ...] -> [..., ...] "
            "without dim (size 1 with keepdim)"
        ),
    )
)


# ------------------------------------------------------------------------------ shapes and emission


def _check_same(ctx: OpCtx, skip: int | None = None) -> None:
    """All inputs have the first one's rank and sizes (except dimension `skip`)."""
    first = ctx.inputs[0]
    for i, t in enumerate(ctx.inputs[1:], start=1):
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


def _elementwise(ctx: OpCtx):
    if ctx.arg("dim") is not None and len(ctx.inputs) > 1:
        ctx.error("`dim` is only for one input (a reduction); with several inputs the op is element-wise")
    _check_same(ctx)
    return [ctx.inputs[0]]


def _cat(ctx: OpCtx):
    first = ctx.inputs[0]
    k = ctx.dim_index(ctx.arg("dim"), first)
    _check_same(ctx, skip=k)
    sizes = [t.dims[k].size for t in ctx.inputs]
    total = None
    if all(s is not None for s in sizes):
        total = sizes[0]
        for s in sizes[1:]:
            total = total + s
    return [first.replace_dim(k, Dim(first.dims[k].name, total))]


def _stack_index(ctx: OpCtx, t: TType) -> tuple[int, str | None]:
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


def _stack(ctx: OpCtx):
    _check_same(ctx)
    first = ctx.inputs[0]
    index, name = _stack_index(ctx, first)
    dims = list(first.dims)
    dims.insert(index, Dim(name, Sym.const(len(ctx.inputs))))
    return [first.with_dims(dims)]


def _reduce(ctx: OpCtx):
    if len(ctx.inputs) > 1:
        return _elementwise(ctx)
    x = ctx.inputs[0]
    if ctx.arg("dim") is None:
        ctx.error(f"with one input, `{ctx.spec.name}` needs `dim=` (the dimension to reduce)",
                  f"for example `x >> {ctx.spec.name}(dim=token)`; with several inputs it is element-wise")
    if ctx.spec.name == "mean":
        ctx.expect_float(x)
    k = ctx.dim_index(ctx.arg("dim"), x)
    dims = list(x.dims)
    if ctx.arg("keepdim").value:
        dims[k] = Dim(dims[k].name, Sym.const(1))
    else:
        if k == 0:
            ctx.error("reducing the batch dimension is not supported: every value keeps its batch", code="E052")
        del dims[k]
    return [x.with_dims(dims)]


def _paren(expr: str) -> str:
    return f"({expr})" if " " in expr else expr


def _add(ctx) -> Emission:
    return Emission(call=" + ".join(ctx.inputs))


def _mul(ctx) -> Emission:
    return Emission(call=" * ".join(_paren(e) for e in ctx.inputs))


def _cat_emit(ctx) -> Emission:
    return Emission(call=f"torch.cat([{', '.join(ctx.inputs)}], dim={ctx.dim('dim')})")


def _stack_emit(ctx) -> Emission:
    index, _ = _stack_index(ctx.op, ctx.in_types[0])
    return Emission(call=f"torch.stack([{', '.join(ctx.inputs)}], dim={index})")


def _reduce_emit(ctx) -> Emission:
    name = ctx.spec.name
    if len(ctx.inputs) > 1:
        if name == "mean":
            return Emission(call=f"torch.stack([{', '.join(ctx.inputs)}]).mean(dim=0)")
        expr = ctx.inputs[0]
        for other in ctx.inputs[1:]:
            expr = f"torch.maximum({expr}, {other})"
        return Emission(call=expr)
    method = "mean" if name == "mean" else "amax"
    keep = ", keepdim=True" if ctx.arg("keepdim").value else ""
    return Emission(call=f"{_paren(ctx.inputs[0])}.{method}(dim={ctx.dim('dim')}{keep})")


_RULES = {
    "add": (_elementwise, _add),
    "mul": (_elementwise, _mul),
    "cat": (_cat, _cat_emit),
    "stack": (_stack, _stack_emit),
    "mean": (_reduce, _reduce_emit),
    "max": (_reduce, _reduce_emit),
}
for _name, (_shape, _emit) in _RULES.items():
    register(replace(REGISTRY[_name], shape=_shape, emit=_emit), replace=True)
