"""Indexing and views (LANGUAGE.md 13): `select slice squeeze unsqueeze expand`.

`x[token=-1]` is `select(x, dim=token, index=-1)` and `x[token=1:]` is `slice(x, dim=token,
start=1)` (the resolver writes one node per subscript). Slices follow Python's clamping, without
steps; the checker derives the size for the case the current values are in (`end` within the
dimension, say) and the emitted `__init__` asserts that case, so a re-parametrised module never
computes another shape than the one checked. A slice that is empty is an error. On a dimension
sized when the model runs (`token`), a slice's bounds are a requirement on the input (`token >=
n` for `[:n]`). The batch dimension is never indexed, squeezed or renamed.
"""

from __future__ import annotations

from ..tensor_types import Dim, Sym, TType, tidy
from .arith import broadcast_pair
from .context import ShapeCtx
from .drawing import Case, Draw, Name, Tensor, dim_ref, float_input, strategies
from .registry import Emission, HyperParam, OpSpec, register
from .reshape import _method_target


def _dim(ctx: ShapeCtx, x: TType, name: str = "dim") -> int:
    k = ctx.dim_index(ctx.arg(name), x)
    if ctx.is_batch(x, k):
        ctx.error(f"`{name}` picks the batch dimension, which is never indexed", code="E052")
    return k


def _extent(ctx: ShapeCtx, x: TType, k: int) -> Sym:
    n = x.dims[k].extent
    if n is None:
        ctx.error(f"dimension {k} of `{ctx.input_names[0]}` {x.show()} has no size", code="E051")
    return n


def _prefix(k: int) -> str:
    return ":, " * k


# ------------------------------------------------------------------------------ select


def _select_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    k = _dim(ctx, x)
    n = _extent(ctx, x, k)
    i = ctx.arg("index")
    ctx.require(n.at_least(i + 1), f"index {i.render()} must be less than the size {n.render()} of "
                f"dimension {x.dims[k].name or k}")
    ctx.require(i.at_least(-n), f"index {i.render()} must be at least -{n.render()} (the size of "
                f"dimension {x.dims[k].name or k})")
    dims = list(x.dims)
    del dims[k]
    return [x.with_dims(dims)]


def _select_emit(ctx) -> Emission:
    k = _dim(ctx, ctx.in_types[0])
    return Emission(call=f"{_method_target(ctx.exprs[0])}[{_prefix(k)}{ctx.rf(ctx.arg('index'))}]")


# ------------------------------------------------------------------------------ slice


def _bound(ctx: ShapeCtx, value: Sym | None, n: Sym, what: str, default: Sym) -> Sym:
    """The clamped position of a slice bound, as an expression valid in the current case (asserted)."""
    if value is None:
        return default
    if value.value is None:  # not known now: cannot happen for an int argument
        ctx.error(f"`{what}` must be known when the module is built")
    if value.value < 0:
        if not value.is_const:
            ctx.require(Sym.const(-1).at_least(value), f"`{what}` ({value.render()}) must stay negative, as it "
                        "was when the module was compiled")
        ctx.require((n + value).at_least(0), f"`{what}` ({value.render()}) must not reach before the start of a "
                    f"dimension of size {n.render()}")
        return tidy(n + value)
    if not value.is_const:
        ctx.require(value.at_least(0), f"`{what}` ({value.render()}) must stay 0 or more, as it was when the "
                    "module was compiled")
    ctx.require(n.at_least(value), f"`{what}` ({value.render()}) must be within the dimension's size "
                f"{n.render()}")
    return value


def _slice_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    k = _dim(ctx, x)
    n = _extent(ctx, x, k)
    start = _bound(ctx, ctx.arg("start"), n, "start", Sym.const(0))
    end = _bound(ctx, ctx.arg("end"), n, "end", n)
    size = tidy(end - start)
    if size.value is not None and size.value <= 0:
        ctx.error(f"the slice is empty: it keeps {max(size.value, 0)} of the {n.render()} positions of "
                  f"dimension {x.dims[k].name or k}", code="E053")
    ctx.require(size.at_least(1), "the slice must keep at least one position")
    return [x.replace_dim(k, Dim.of(x.dims[k].name, size, x.dims[k].batch))]


def _slice_emit(ctx) -> Emission:
    k = _dim(ctx, ctx.in_types[0])
    start, end = ctx.arg("start"), ctx.arg("end")
    text = f"{'' if start is None else ctx.rf(start)}:{'' if end is None else ctx.rf(end)}"
    return Emission(call=f"{_method_target(ctx.exprs[0])}[{_prefix(k)}{text}]")


# ------------------------------------------------------------------------------ squeeze, unsqueeze


def _squeeze_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    k = _dim(ctx, x)
    size = x.dims[k].size
    if size is None or not size.is_const or size.value != 1:
        ctx.error(f"dimension {x.dims[k].show()} of `{ctx.input_names[0]}` {x.show()} must have the literal size "
                  "1 to be squeezed", "only a dimension of size 1 (for every parameter value) can be removed",
                  code="E056")
    dims = list(x.dims)
    del dims[k]
    return [x.with_dims(dims)]


def _squeeze_emit(ctx) -> Emission:
    return Emission(call=f"{_method_target(ctx.exprs[0])}.squeeze({_dim(ctx, ctx.in_types[0])})")


def _unsqueeze_index(ctx: ShapeCtx, x: TType) -> int:
    ref = ctx.arg("dim")
    if not ref.is_const:
        ctx.error("`dim` must be an integer literal: the position of the new dimension", code="E056")
    index = ref.value
    if not -(x.rank + 1) <= index <= x.rank:
        ctx.error(f"`dim={index}` is out of range for a tensor of {x.rank} dimensions", code="E052")
    k = index % (x.rank + 1)
    batch = next((i for i, d in enumerate(x.dims) if d.batch), None)
    if batch is not None and k <= batch:
        ctx.error(f"`dim={index}` would put the new dimension before the batch", "the batch stays first: "
                  "use a position after it", code="E052")
    return k


def _unsqueeze_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    k = _unsqueeze_index(ctx, x)
    name = ctx.arg("name")
    if name is not None and any(d.name == name for d in x.dims):
        ctx.error(f"`{name}` already names a dimension of `{ctx.input_names[0]}` {x.show()}", code="E052")
    dims = list(x.dims)
    dims.insert(k, Dim(name, Sym.const(1)))
    return [x.with_dims(dims)]


def _unsqueeze_emit(ctx) -> Emission:
    return Emission(call=f"{_method_target(ctx.exprs[0])}.unsqueeze({_unsqueeze_index(ctx, ctx.in_types[0])})")


# ------------------------------------------------------------------------------ expand


def _expand_shape(ctx: ShapeCtx):
    x, like = ctx.in_types
    if x.rank > like.rank:
        ctx.error(f"`{ctx.input_names[0]}` {x.show()} has more dimensions than `{ctx.input_names[1]}` "
                  f"{like.show()}", code="E050")
    out = broadcast_pair(ctx, x, like, ctx.input_names[0], ctx.input_names[1])
    for k, (a, b) in enumerate(zip(out.dims, like.dims)):
        if a.extent is None or b.extent is None or not tidy(a.extent).same_expr(tidy(b.extent)):
            ctx.error(f"dimension {k} of `{ctx.input_names[1]}` {like.show()} is smaller than that of "
                      f"`{ctx.input_names[0]}` {x.show()}: expand only grows size-1 dimensions", code="E050")
    return [out.with_dims(out.dims, x.dtype)]


def _expand_emit(ctx) -> Emission:
    return Emission(call=f"{_method_target(ctx.exprs[0])}.expand_as({ctx.exprs[1]})")


def _rename_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    dims = list(x.dims)
    for old, new in ctx.arg("names") or []:
        k = next((i for i, d in enumerate(dims) if d.name == old), None)
        if k is None:
            ctx.error(f"`{ctx.input_names[0]}` {x.show()} has no dimension named `{old}`",
                      f"its dimensions are {', '.join(d.name or str(i) for i, d in enumerate(x.dims))}", code="E052")
        if dims[k].batch:
            ctx.error("the batch dimension keeps its name", code="E052")
        if any(d.name == new for i, d in enumerate(dims) if i != k):
            ctx.error(f"`{new}` already names a dimension of `{ctx.input_names[0]}` {x.show()}", code="E052")
        dims[k] = dims[k].renamed(new)
    return [x.with_dims(dims)]


def _rename_emit(ctx) -> Emission:
    return Emission(call=ctx.exprs[0])  # names live in the checker only: nothing to compute


# ------------------------------------------------------------------------------ autotest


def _select_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", unsized=False)
    k = draw(st.integers(1, x.rank - 1))
    n = x.size(k)
    return Case([x], {"dim": dim_ref(draw, x, [k]), "index": draw(st.integers(-n, n - 1))})


def _slice_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", unsized=False)
    k = draw(st.integers(1, x.rank - 1))
    n = x.size(k)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start + 1, n))
    args = {"dim": dim_ref(draw, x, [k])}
    if draw(st.booleans()):
        args["start"] = start if draw(st.booleans()) else start - n
    if draw(st.booleans()):
        args["end"] = end
    return Case([x], args)


def _unsqueeze_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    args = {"dim": draw(st.integers(1, x.rank))}
    if draw(st.booleans()):
        args["name"] = Name("new")
    return Case([x], args)


def _squeeze_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    k = draw(st.integers(1, x.rank - 1))
    dims = list(x.dims)
    dims[k] = (dims[k][0], 1)
    return Case([Tensor(x.name, dims)], {"dim": draw(st.sampled_from([k, k - x.rank]))})


# ------------------------------------------------------------------------------ the ops

register(
    OpSpec(
        name="select",
        doc="Takes one position of a dimension, which disappears: `x[token=-1]`.",
        family="reshape",
        params=(
            HyperParam("dim", "dim", doc="The dimension to index (a name or an index; never the batch)."),
            HyperParam("index", "int", doc="The position taken; negative counts from the end."),
        ),
        example="last = select(x, dim=1, index=-1)",
        shape_doc="[..., d, ...] -> [..., ...] (d removed)",
        shape=_select_shape,
        emit=_select_emit,
        autotest=_select_strategy,
    )
)

register(
    OpSpec(
        name="slice",
        doc="Keeps the positions start..end of a dimension, clamped as Python's slices: `x[token=1:]`.",
        family="reshape",
        params=(
            HyperParam("dim", "dim", doc="The dimension to slice (a name or an index; never the batch)."),
            HyperParam("start", "int", default=None, doc="First position kept (negative: from the end)."),
            HyperParam("end", "int", default=None, doc="Position after the last one kept (negative: from the end)."),
        ),
        example="rest = slice(x, dim=1, start=1)",
        shape_doc="[..., d, ...] -> [..., end - start, ...]",
        shape=_slice_shape,
        emit=_slice_emit,
        autotest=_slice_strategy,
    )
)

register(
    OpSpec(
        name="squeeze",
        doc="Removes a dimension of size 1.",
        family="reshape",
        params=(HyperParam("dim", "dim", doc="The dimension to remove; its size must be the literal 1."),),
        example="v = x >> unsqueeze(dim=1) >> squeeze(dim=1)",
        shape_doc="[..., 1, ...] -> [..., ...]",
        shape=_squeeze_shape,
        emit=_squeeze_emit,
        autotest=_squeeze_strategy,
    )
)

register(
    OpSpec(
        name="unsqueeze",
        doc="Inserts a dimension of size 1 (after the batch), optionally named.",
        family="reshape",
        params=(
            HyperParam("dim", "int", doc="Position of the new dimension in the result (after the batch)."),
            HyperParam("name", "dimname", default=None, doc="The new dimension's name (none by default)."),
        ),
        example="m = mask >> unsqueeze(dim=1, name=token)",
        shape_doc="[..., ...] -> [..., 1, ...]",
        shape=_unsqueeze_shape,
        emit=_unsqueeze_emit,
        autotest=_unsqueeze_strategy,
    )
)

def _rename_strategy(draw: Draw, spec) -> Case:
    x = float_input(draw, "x")
    dims = list(x.dims)
    dims[-1] = ("feature", dims[-1][1])  # at least one named dimension
    named = [k for k in range(1, len(dims)) if dims[k][0]]
    k = draw(strategies().sampled_from(named))
    # `names=[feature=renamed]`: the list spelling of the keywords `rename(x, feature=renamed)`
    return Case([Tensor(x.name, dims)], {"names": [Name(f"{dims[k][0]}=renamed")]})


register(
    OpSpec(
        name="rename",
        doc="Renames dimensions: `rename(feature=channel)` (the values are unchanged).",
        family="reshape",
        params=(HyperParam("names", "renames", doc="The renames, as keywords `old=new`."),),
        varkw="names",
        example="y = x >> rename(feature=channel)",
        shape_doc="[..., old, ...] -> [..., new, ...]",
        shape=_rename_shape,
        emit=_rename_emit,
        autotest=_rename_strategy,
    )
)

register(
    OpSpec(
        name="expand",
        doc="Gives the size-1 dimensions of x the sizes of `like`, aligned from the right (no copy).",
        family="reshape",
        inputs=("x", "like"),
        example="e = expand(x >> mean(dim=1, keepdim=true), like=x)",
        shape_doc="[1, d], like [batch, n, d] -> [batch, n, d]",
        shape=_expand_shape,
        emit=_expand_emit,
    )
)
