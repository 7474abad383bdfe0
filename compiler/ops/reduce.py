"""The `reduce` family (LANGUAGE.md section 13): reductions over named dimensions, `one_hot` and
`cosine_similarity`.

`sum` and `logsumexp` reduce one dimension or several (`dim=[height, width]`), `argmax` and
`argmin` one (as torch does); the reduced dimensions disappear, or with `keepdim=true` stay with
size 1 under their names. `min` is `max`'s twin (registered in the `merge` family with `max`'s
factory from merge.py): element-wise over several inputs, or over `dim` of one (`.amin`, values
only). `one_hot` adds a trailing dimension (named `class` unless `name=` says otherwise) and
`cosine_similarity` reduces the dimension it compares along.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..tensor_types import FLOAT_DTYPES, INT_DTYPES, Dim, DimRef, Sym, TType
from .context import ShapeCtx
from .drawing import Case, Draw, Name, Tensor, copies, dim_ref, float_input, maybe, put, strategies
from .merge import _Reduction, reduce_op
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ rules


def _paren(expr: str) -> str:
    return f"({expr})" if " " in expr else expr


def _reduced(ctx: ShapeCtx) -> list[int]:
    """The indices of the dimensions `dim` names (one, or a list), in the order given."""
    x = ctx.in_types[0]
    ref = ctx.arg("dim")
    refs = ref if isinstance(ref, list) else [ref]
    if not refs:  # torch reduces every dimension for an empty list
        ctx.error("`dim` must name at least one dimension", code="E055")
    out: list[int] = []
    for r in refs:
        k = ctx.dim_index(r, x, from_param=True)
        if k in out:
            label = f"`{x.dims[k].name}`" if x.dims[k].name else f"{k}"
            ctx.error(f"dimension {label} appears twice in `dim`", code="E055")
        out.append(k)
    return out


def _keepdim(ctx: ShapeCtx) -> bool:
    keepdim = ctx.arg("keepdim")
    if not keepdim.is_const:  # the shapes that follow were checked for this value
        ctx.require(keepdim.equals(keepdim.value), f"`keepdim` ({keepdim.render()}) must be "
                    f"{keepdim.value}, as it was when the module was compiled")
    return bool(keepdim.value)


def _reduce_dims(ctx: ShapeCtx, x: TType, reduced: list[int], dtype: str) -> TType:
    """`x` without the reduced dimensions, or with keepdim with them of size 1."""
    if _keepdim(ctx):
        dims = [Dim(d.name, Sym.const(1)) if k in reduced else d for k, d in enumerate(x.dims)]
    else:
        for k in reduced:
            if ctx.is_batch(x, k):
                ctx.error("reducing the batch dimension is not supported: every value keeps its batch",
                          "keep it with `keepdim=true`, or reduce the other dimensions", code="E052")
        dims = [d for k, d in enumerate(x.dims) if k not in reduced]
    return x.with_dims(dims, dtype)


def _sum_dtype(dtype: str) -> str:
    # torch sums integers and bools in int64
    return "int64" if dtype in INT_DTYPES or dtype == "bool" else dtype


def _sum_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    return [_reduce_dims(ctx, x, _reduced(ctx), _sum_dtype(x.dtype))]


def _logsumexp_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_float(x)
    return [_reduce_dims(ctx, x, _reduced(ctx), x.dtype)]


def _arg_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    if x.dtype == "bool":
        ctx.error(f"`{ctx.input_names[0]}` is bool, which torch's {ctx.spec.name} does not take",
                  "convert it first, or use `max`/`min` over the dimension", code="E054")
    (k,) = _reduced(ctx)
    if x.dims[k].size is not None and x.dims[k].size.value == 0:
        ctx.error(f"`{ctx.spec.name}` of an empty dimension is not defined", code="E055")
    return [_reduce_dims(ctx, x, [k], "int64")]


def _dim_source(ctx, ref: Any, x: TType, last: bool) -> str:
    """One `dim` item as Python source: a parameter reads `self.<param>`; with `last` the last
    dimension is -1 (as `EmitCtx.dim` writes one dimension)."""
    if isinstance(ref, DimRef) and ref.sym is not None:
        return ctx.rf(ref.sym)
    k = ctx.dim_index(ref, x, from_param=True)
    return str(-1 if last and k == x.rank - 1 and x.rank > 1 else k)


def _dims_source(ctx) -> str:
    """`dim` as Python source: `-1` for one dimension, a tuple `(2, 3)` for several."""
    x = ctx.in_types[0]
    ref = ctx.arg("dim")
    if isinstance(ref, list) and len(ref) > 1:
        return "(" + ", ".join(_dim_source(ctx, r, x, False) for r in ref) + ")"
    return _dim_source(ctx, ref[0] if isinstance(ref, list) else ref, x, True)


def _keep_source(ctx) -> str:
    keepdim = ctx.arg("keepdim")
    if not keepdim.is_const:  # a parameter: the module reads it, as the check did for its value
        return f", keepdim={ctx.rf(keepdim)}"
    return ", keepdim=True" if keepdim.value else ""


def _method_emit(method: str, ctx) -> Emission:
    return Emission(call=f"{_paren(ctx.exprs[0])}.{method}(dim={_dims_source(ctx)}{_keep_source(ctx)})")


def _keepdim_param() -> HyperParam:
    return HyperParam("keepdim", "bool", default=False,
                      doc="Keep the reduced dimensions, with size 1 (under the same names).")


# ------------------------------------------------------------------------------ autotest


def _input(draw: Draw, dtypes: tuple[str, ...]) -> Tensor:
    x = float_input(draw, "x")
    x.dtype = draw(strategies().sampled_from(list(dtypes)))
    return x


def _reduce_strategy(many: bool, dtypes: tuple[str, ...], draw: Draw, spec) -> Case:
    st = strategies()
    x = _input(draw, dtypes)
    keepdim = draw(st.booleans())
    allowed = list(range(0 if keepdim else 1, x.rank))
    if many and draw(st.booleans()):
        ks = draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=len(allowed), unique=True))
        dim: Any = [dim_ref(draw, x, [k]) for k in ks]
    else:
        dim = dim_ref(draw, x, allowed)
    args = {"dim": dim}
    put(args, "keepdim", keepdim if keepdim else maybe(draw, False))
    return Case([x], args)


# ------------------------------------------------------------------------------ sum, logsumexp, argmax, argmin


def _reduction_spec(name: str, doc: str, what: str, many: bool, shape, method: str, example: str,
                    shape_doc: str, dtypes: tuple[str, ...]) -> OpSpec:
    dim_doc = (f"The dimension to take the {what} over (a name or an index), or a list of them."
               if many else f"The dimension to take the {what} over (a name or an index).")
    return OpSpec(
        name=name,
        doc=doc,
        family="reduce",
        params=(HyperParam("dim", "dim_or_dims" if many else "dim", doc=dim_doc), _keepdim_param()),
        example=example,
        shape_doc=shape_doc,
        shape=shape,
        emit=partial(_method_emit, method),
        autotest=partial(_reduce_strategy, many, dtypes),
    )


_ALL = FLOAT_DTYPES[:2] + ("int64", "int32")
_SUMMABLE = _ALL + ("bool",)

register(_reduction_spec(
    "sum", "Sum over one dimension or several.", "sum", True, _sum_shape, "sum",
    "pooled = h >> sum(dim=token)",
    "[..., d, ...] -> [..., ...] without the dims (size 1 with keepdim); integers and bools sum to int64", _SUMMABLE))

register(_reduction_spec(
    "logsumexp", "Log of the sum of exponentials over one dimension or several, computed stably.",
    "log-sum-exp", True, _logsumexp_shape, "logsumexp",
    "scores = logits >> logsumexp(dim=-1)",
    "[..., d, ...] -> [..., ...] without the dims (size 1 with keepdim); a float input", FLOAT_DTYPES[:2]))

register(_reduction_spec(
    "argmax", "Index of the largest value along one dimension (a long tensor).", "index of the maximum",
    False, _arg_shape, "argmax", "pred = logits >> argmax(dim=-1)",
    "[..., d, ...] -> long[..., ...] without d (size 1 with keepdim)", _ALL))

register(_reduction_spec(
    "argmin", "Index of the smallest value along one dimension (a long tensor).", "index of the minimum",
    False, _arg_shape, "argmin", "nearest = distances >> argmin(dim=-1)",
    "[..., d, ...] -> long[..., ...] without d (size 1 with keepdim)", _ALL))


# ------------------------------------------------------------------------------ min (max's twin)


def _pairwise_minimum(exprs: list[str]) -> str:
    expr = exprs[0]
    for other in exprs[1:]:
        expr = f"torch.minimum({expr}, {other})"
    return expr


register(reduce_op(_Reduction(
    "min",
    what="minimum",
    doc="Element-wise minimum of several tensors, or with one input and dim the minimum over that dimension.",
    example="pooled = h >> min(dim=token)",
    float_only=False,
    method="amin",
    combine=_pairwise_minimum,
)))


# ------------------------------------------------------------------------------ one_hot


def _one_hot_name(ctx: ShapeCtx) -> str:
    ref = ctx.arg("name")
    if ref is None:
        return "class"
    if not isinstance(ref, DimRef) or ref.name is None:
        ctx.error("`name` must be a dimension name (an identifier), the new dimension's",
                  "for example `one_hot(10, name=label)`", code="E055", span=getattr(ref, "span", None))
    return ref.name


def _one_hot_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    if x.dtype != "int64":
        ctx.error(f"`{ctx.input_names[0]}` is {x.dtype}, but one_hot takes long class indices",
                  "declare the input as `long[...]`", code="E054")
    n = ctx.arg("num_classes")
    if n.is_const and n.value == -1:
        ctx.error("`num_classes=-1` (inferred from the data) is not supported: the size would be known "
                  "only when the model runs", "give the number of classes", code="E055")
    ctx.require(n.at_least(1), f"`num_classes` must be positive, not {n.value}" if n.is_const else
                f"`num_classes` ({n.render()}) must be positive")
    name = _one_hot_name(ctx)
    if any(d.name == name for d in x.dims):
        ctx.error(f"`{name}` already names a dimension of `{ctx.input_names[0]}` {x.show()}",
                  "give the new dimension another name with `name=`", code="E052")
    return [x.with_dims([*x.dims, Dim(name, n)], "int64")]


def _one_hot_emit(ctx) -> Emission:
    return Emission(call=f"F.one_hot({ctx.exprs[0]}, num_classes={ctx.rf(ctx.arg('num_classes'))})")


def _one_hot_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "labels", min_rank=1, max_rank=3)
    x.dtype = "int64"
    args: dict[str, Any] = {"num_classes": draw(st.integers(1, 6))}
    put(args, "name", maybe(draw, Name(draw(st.sampled_from(["label", "digit"])))))
    return Case([x], args)


register(
    OpSpec(
        name="one_hot",
        doc="One-hot encodes class indices: a long tensor with a new trailing dimension of num_classes.",
        family="reduce",
        inputs=("labels",),
        params=(
            HyperParam("num_classes", "int", doc="Number of classes: the size of the new dimension."),
            HyperParam("name", "dim", default=None,
                       doc="Name of the new trailing dimension (`class` when left out)."),
        ),
        example="targets = labels >> one_hot(10)",
        shape_doc="long[*] -> long[*, class=num_classes]",
        shape=_one_hot_shape,
        emit=_one_hot_emit,
        autotest=_one_hot_strategy,
    )
)


# ------------------------------------------------------------------------------ cosine_similarity


def _cosine_dim(ctx: ShapeCtx) -> int:
    return ctx.dim_index(ctx.arg("dim"), ctx.in_types[0], from_param=True)


def _cosine_shape(ctx: ShapeCtx):
    a, b = ctx.in_types
    ctx.expect_float(a, 0)
    ctx.expect_float(b, 1)
    if a.rank != b.rank:
        ctx.error(f"`{ctx.input_names[0]}` has {a.rank} dimensions {a.show()} but `{ctx.input_names[1]}` "
                  f"has {b.rank} {b.show()}", "cosine_similarity compares two tensors of one shape", code="E051")
    if a.dtype != b.dtype:
        ctx.error(f"`{ctx.input_names[0]}` is {a.dtype} but `{ctx.input_names[1]}` is {b.dtype}", code="E054")
    for k, (da, db) in enumerate(zip(a.dims, b.dims)):
        ctx.same_dim(da, db, k, ctx.input_names[0], ctx.input_names[1])
    k = _cosine_dim(ctx)
    if ctx.is_batch(a, k):
        ctx.error("comparing along the batch dimension is not supported: every value keeps its batch", code="E052")
    eps = ctx.arg("eps")
    if eps.value <= 0:
        ctx.error(f"`eps` must be positive, not {eps.value}", "the usual value is 1e-8", code="E055")
    return [a.with_dims([d for j, d in enumerate(a.dims) if j != k])]


def _cosine_emit(ctx) -> Emission:
    ref = ctx.arg("dim")
    parts = list(ctx.exprs)
    is_param = isinstance(ref, DimRef) and ref.sym is not None
    if is_param or _cosine_dim(ctx) != 1:
        parts.append(f"dim={ctx.dim('dim')}")
    eps = ctx.arg("eps")
    if not (eps.is_const and eps.value == 1e-8):
        parts.append(f"eps={ctx.rf(eps)}")
    return Emission(call=f"F.cosine_similarity({', '.join(parts)})")


def _cosine_macs(ctx) -> int:
    # the dot product and the two squared norms: three multiply-accumulates per element
    return 3 * ctx.numel(ctx.in_types[0])


def _cosine_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "a")
    inputs = copies(draw, x, 2, 2)
    args: dict[str, Any] = {}
    if draw(st.booleans()):  # else the default, dim=1
        args["dim"] = dim_ref(draw, x, range(1, x.rank))
    if draw(st.booleans()):
        args["eps"] = draw(st.sampled_from([1e-6, 1e-8, 1e-3]))
    return Case(inputs, args)


register(
    OpSpec(
        name="cosine_similarity",
        doc="Cosine similarity of two tensors of one shape along a dimension, which disappears.",
        family="reduce",
        inputs=("x1", "x2"),
        params=(
            HyperParam("dim", "dim", default=1, doc="The dimension to compare along (a name or an index)."),
            HyperParam("eps", "float", default=1e-8, doc="Lower bound of each norm, to avoid division by zero."),
        ),
        example="sim = cosine_similarity(q, k, dim=feature)",
        shape_doc="[..., d, ...], [..., d, ...] -> [..., ...] without d",
        shape=_cosine_shape,
        emit=_cosine_emit,
        macs=_cosine_macs,
        autotest=_cosine_strategy,
    )
)
