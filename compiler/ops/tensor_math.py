"""Products and selections of values (LANGUAGE.md 13): `matmul where masked_fill
scaled_dot_product_attention`, with PyTorch's broadcasting on named dimensions (`arith.py`)."""

from __future__ import annotations

from ..tensor_types import FLOAT_DTYPES, Dim, TType
from .arith import broadcast_pair, operand, promote
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, strategies
from .registry import Emission, HyperParam, OpSpec, register
from .reshape import _method_target


def _leading(ctx: ShapeCtx, a: TType, b: TType, keep: int) -> list:
    """The broadcast of the dimensions before the last `keep` of `a` and `b`."""
    left = TType(a.dims[: a.rank - keep], a.dtype)
    right = TType(b.dims[: b.rank - keep], b.dtype)
    return list(broadcast_pair(ctx, left, right, ctx.input_names[0], ctx.input_names[1]).dims)


def _matmul_shape(ctx: ShapeCtx):
    a, b = ctx.in_types
    for t, n in ((a, ctx.input_names[0]), (b, ctx.input_names[1])):
        if t.rank < 2:
            ctx.error(f"`{n}` {t.show()} needs at least 2 dimensions: matrices, batched", code="E051")
        if t.dtype not in FLOAT_DTYPES:
            ctx.error(f"`{n}` is {t.dtype}; matmul takes floating-point tensors", code="E054")
    if a.dtype != b.dtype:
        ctx.error(f"`{ctx.input_names[0]}` is {a.dtype} but `{ctx.input_names[1]}` is {b.dtype}", code="E054")
    ctx.same_dim(a.dims[-1], b.dims[-2], a.rank - 1, ctx.input_names[0], ctx.input_names[1])
    return [TType(tuple([*_leading(ctx, a, b, 2), a.dims[-2], b.dims[-1]]), a.dtype)]


def _matmul_emit(ctx) -> Emission:
    left, right = ctx.exprs
    return Emission(call=f"{operand(left, '*', False)} @ {operand(right, '/', True)}")


def _where_shape(ctx: ShapeCtx):
    cond, a, b = ctx.in_types
    if cond.dtype != "bool":
        ctx.error(f"the condition `{ctx.input_names[0]}` is {cond.dtype}, not bool", code="E054")
    out = broadcast_pair(ctx, broadcast_pair(ctx, cond, a, ctx.input_names[0], ctx.input_names[1]), b,
                         "the broadcast of the condition and the first value", ctx.input_names[2])
    return [out.with_dims(out.dims, promote(a.dtype, b.dtype))]


def _where_emit(ctx) -> Emission:
    return Emission(call=f"torch.where({', '.join(ctx.exprs)})")


def _masked_fill_shape(ctx: ShapeCtx):
    x, mask = ctx.in_types
    if mask.dtype != "bool":
        ctx.error(f"the mask `{ctx.input_names[1]}` is {mask.dtype}, not bool", code="E054")
    out = broadcast_pair(ctx, x, mask, ctx.input_names[0], ctx.input_names[1])
    if out.rank != x.rank or any(d.extent != e.extent for d, e in zip(out.dims, x.dims)):
        ctx.error(f"the mask {mask.show()} must broadcast to the shape of `{ctx.input_names[0]}` {x.show()}",
                  code="E050")
    return [x]


def _masked_fill_emit(ctx) -> Emission:
    return Emission(call=f"{_method_target(ctx.exprs[0])}.masked_fill({ctx.exprs[1]}, {ctx.rf(ctx.arg('value'))})")


def _sdpa_shape(ctx: ShapeCtx):
    q, k, v = ctx.in_types[:3]
    for t, n in zip((q, k, v), ctx.input_names):
        if t.rank < 3:
            ctx.error(f"`{n}` {t.show()} needs at least 3 dimensions: [batch, ..., token, feature]", code="E051")
        if t.dtype not in FLOAT_DTYPES:
            ctx.error(f"`{n}` is {t.dtype}; attention takes floating-point tensors", code="E054")
    ctx.same_dim(q.dims[-1], k.dims[-1], q.rank - 1, ctx.input_names[0], ctx.input_names[1])
    ctx.same_dim(k.dims[-2], v.dims[-2], k.rank - 2, ctx.input_names[1], ctx.input_names[2])
    lead = _leading(ctx, q, k, 2)
    lead = list(broadcast_pair(ctx, TType(tuple(lead)), TType(v.dims[: v.rank - 2]), "q and k", ctx.input_names[2]).dims)
    if len(ctx.in_types) > 3:
        mask = ctx.in_types[3]
        scores = TType(tuple([*lead, q.dims[-2], k.dims[-2]]))
        shown = broadcast_pair(ctx, scores, mask, "the scores", ctx.input_names[3])
        if shown.rank != scores.rank or any(a.extent != b.extent for a, b in zip(shown.dims, scores.dims)):
            ctx.error(f"the mask {mask.show()} must broadcast to the scores {scores.show()}", code="E050")
        if ctx.arg("is_causal").value:
            ctx.error("`is_causal=true` and a mask: torch takes one or the other", code="E055")
    p = ctx.arg("dropout_p")
    ctx.require(p.at_least(0), "`dropout_p` must be between 0 and 1")
    return [TType(tuple([*lead, q.dims[-2], v.dims[-1]]), q.dtype)]


def _sdpa_emit(ctx) -> Emission:
    args = list(ctx.exprs[:3])
    if len(ctx.exprs) > 3:
        args.append(f"attn_mask={ctx.exprs[3]}")
    p = ctx.arg("dropout_p")
    if not (p.is_const and p.value == 0):
        args.append(f"dropout_p={ctx.rf(p)} if self.training else 0.0")  # dropout only in training
    if ctx.arg("is_causal").value:
        args.append("is_causal=True")
    scale = ctx.arg("scale")
    if scale is not None:
        args.append(f"scale={ctx.rf(scale)}")
    return Emission(call=f"F.scaled_dot_product_attention({', '.join(args)})")


def _einsum_plan(ctx: ShapeCtx):
    """`einsum(a, b, spec="token feature, key feature -> token key")`: each operand's dimensions
    after the batch, by name, then the result's; the batch is every operand's first and the
    result's first. Returns (torch's equation, the result's dimensions)."""
    spec = ctx.arg("spec").value
    if "->" not in spec:
        ctx.error('`spec` needs `->`: "token feature, key feature -> token key"')
    left, right = spec.split("->", 1)
    operands = [part.split() for part in left.split(",")]
    out_names = right.split()
    if len(operands) != len(ctx.in_types):
        ctx.error(f"`spec` lists {len(operands)} operands, but {len(ctx.in_types)} are given", code="E021")
    letters: dict[str, str] = {}
    dims: dict[str, Dim] = {}
    terms = []
    for names, t, label in zip(operands, ctx.in_types, ctx.input_names):
        if not t.dims or not t.dims[0].batch:
            ctx.error(f"`{label}` {t.show()} has no batch dimension first", code="E052")
        if len(names) != t.rank - 1:
            ctx.error(f"`spec` names {len(names)} dimensions of `{label}`, which has {t.rank - 1} after the batch "
                      f"{t.show()}", code="E051")
        for name, d in zip(names, t.dims[1:]):
            if not name.isidentifier():
                ctx.error(f"`{name}` in `spec` is no dimension name")
            if name in dims:
                ctx.same_dim(dims[name], d, 0, name, label)
            else:
                dims[name] = d
                letters[name] = "abcdefghijklmnopqrstuvwxyz"[len(letters) + 1]
        terms.append("a" + "".join(letters[n] for n in names))
    for name in out_names:
        if name not in dims:
            ctx.error(f"the result's `{name}` is no dimension of an operand", code="E052")
    if len(set(out_names)) != len(out_names):
        ctx.error("the result names a dimension twice", code="E052")
    equation = ",".join(terms) + "->a" + "".join(letters[n] for n in out_names)
    first = ctx.in_types[0]
    return equation, [first.dims[0], *(dims[n].renamed(n) for n in out_names)]


def _einsum_shape(ctx: ShapeCtx):
    for t, n in zip(ctx.in_types, ctx.input_names):
        if t.dtype not in FLOAT_DTYPES:
            ctx.error(f"`{n}` is {t.dtype}; einsum takes floating-point tensors", code="E054")
    _, dims = _einsum_plan(ctx)
    return [TType(tuple(dims), ctx.in_types[0].dtype)]


def _einsum_emit(ctx) -> Emission:
    equation, _ = _einsum_plan(ctx)
    return Emission(call=f"torch.einsum({equation!r}, {', '.join(ctx.exprs)})")


# ------------------------------------------------------------------------------ autotest


def _einsum_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    n, m, d = (draw(st.integers(1, 4)) for _ in range(3))
    a = Tensor("a", [("batch", None), ("token", n), ("feature", d)])
    b = Tensor("b", [("batch", None), ("key", m), ("feature", d)])
    return Case([a, b], {"spec": draw(st.sampled_from(["token feature, key feature -> token key",
                                                       "token feature, key feature -> key token",
                                                       "token feature, key feature -> token"]))})


def _matmul_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    heads = draw(st.integers(1, 3))
    a = Tensor("a", [("batch", None), ("head", heads), ("token", n), ("feature", k)])
    b = Tensor("b", [("batch", None), ("head", heads if draw(st.booleans()) else 1), ("feature", k), ("out", m)])
    return Case([a, b])


def _where_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    n, d = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cond = Tensor("c", [("batch", None), ("token", n), ("feature", 1 if draw(st.booleans()) else d)], "bool")
    return Case([cond, Tensor("a", [("batch", None), ("token", n), ("feature", d)]),
                 Tensor("b", [("batch", None), ("token", 1), ("feature", d)])])


def _masked_fill_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    n, d = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = Tensor("x", [("batch", None), ("token", n), ("feature", d)])
    mask = Tensor("m", [("batch", None), ("token", n), ("feature", 1 if draw(st.booleans()) else d)], "bool")
    return Case([x, mask], {"value": draw(st.sampled_from([0.0, -1e4, 1.5]))})


def _sdpa_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    heads, tq, tk, e, ev = (draw(st.integers(1, 3)) for _ in range(5))
    q = Tensor("q", [("batch", None), ("head", heads), ("token", tq), ("feature", e)])
    k = Tensor("k", [("batch", None), ("head", heads), ("key", tk), ("feature", e)])
    v = Tensor("v", [("batch", None), ("head", heads), ("key", tk), ("feature", ev)])
    args: dict = {}
    if draw(st.booleans()):
        args["is_causal"] = True
    if draw(st.booleans()):
        args["scale"] = 0.5
    if draw(st.booleans()):
        args["dropout_p"] = 0.1
    return Case([q, k, v], args)


# ------------------------------------------------------------------------------ the ops

register(
    OpSpec(
        name="matmul",
        doc="Matrix product over the last two dimensions, the others broadcast: `a @ b`.",
        family="merge",
        inputs=("a", "b"),
        example="scores = matmul(x, transpose(x, 1, 2))",
        shape_doc="[..., n, k] @ [..., k, m] -> [broadcast(...), n, m]",
        shape=_matmul_shape,
        emit=_matmul_emit,
        autotest=_matmul_strategy,
        macs=lambda ctx: ctx.numel(ctx.out_types[0]) * ctx.size(ctx.in_types[0], -1),
    )
)

register(
    OpSpec(
        name="where",
        doc="Element-wise choice: `a` where the bool condition holds, else `b`, all broadcast.",
        family="merge",
        inputs=("condition", "a", "b"),
        example="y = where(mask, x, x >> neg)",
        shape_doc="broadcast(condition, a, b)",
        shape=_where_shape,
        emit=_where_emit,
        autotest=_where_strategy,
    )
)

register(
    OpSpec(
        name="masked_fill",
        doc="x with `value` where the bool mask (broadcast to x) holds.",
        family="merge",
        inputs=("x", "mask"),
        params=(HyperParam("value", "float", doc="The value written where the mask holds."),),
        example="scores = masked_fill(x, mask, -10000.0)",
        shape_doc="[*], mask broadcastable to [*] -> [*]",
        shape=_masked_fill_shape,
        emit=_masked_fill_emit,
        autotest=_masked_fill_strategy,
    )
)

register(
    OpSpec(
        name="scaled_dot_product_attention",
        doc="softmax(q k^T * scale + mask) v over the last two dimensions (F.scaled_dot_product_attention).",
        family="attention",
        inputs=("q", "k", "v", "mask"),
        optional_inputs=1,
        params=(
            HyperParam("dropout_p", "float", default=0.0, doc="Dropout on the attention weights, in training only."),
            HyperParam("is_causal", "bool", default=False, doc="Mask the future positions (no mask input then)."),
            HyperParam("scale", "float", default=None, doc="The scores' scale; 1/sqrt(feature) if left out."),
        ),
        example="y = scaled_dot_product_attention(x, x, x, is_causal=true)",
        shape_doc="[..., L, E], [..., S, E], [..., S, Ev] -> [..., L, Ev]",
        shape=_sdpa_shape,
        emit=_sdpa_emit,
        autotest=_sdpa_strategy,
    )
)

register(
    OpSpec(
        name="einsum",
        doc="Sums of products over named dimensions: `einsum(q, k, spec=\"token feature, key feature -> token key\")`.",
        family="merge",
        variadic=True,
        min_inputs=1,
        params=(HyperParam("spec", "str", doc="Each operand's dimensions after the batch by name, `->`, the result's."),),
        example='s = einsum(x, x, spec="token feature, key feature -> token key")',
        shape_doc="names -> names (the batch is kept first)",
        shape=_einsum_shape,
        emit=_einsum_emit,
        autotest=_einsum_strategy,
    )
)
