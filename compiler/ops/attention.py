"""The `attention` family: multi-head attention."""

from __future__ import annotations

from typing import Any

from ..tensor_types import Dim, Sym, TType
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, discarding, generic_args, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register


# ------------------------------------------------------------------------------ shapes and emission
#
# Mask convention: the optional fourth input is a key-padding mask as torch's `key_padding_mask`
# reads it: True marks a padded key that no query attends to, False a real one. It is passed
# through unchanged, so a mask built for PyTorch works as is.
#
# `causal=true` builds the (token, token) mask `q.new_ones(T, T, dtype=torch.bool).triu(1)` (True
# above the diagonal: masked) in forward from the run-time length `T = q.size(1)`, so it traces
# (torch.fx, torch.compile) without data-dependent control flow; `torch.ones(T, T)` with two traced
# sizes does not trace under torch.fx. Torch's `is_causal` is only a hint that needs the mask
# anyway (and is ignored while the weights are returned), so it is not passed. Queries and keys
# must have one length; it is checked here when both are known, else torch checks the mask's shape.


def _label(d: Dim, index: int) -> str:
    return f"`{d.name}`" if d.name else f"{index}"


def _same_dim(ctx: ShapeCtx, a: TType, ia: int, b: TType, ib: int, k: int, kb: int | None = None) -> None:
    """Dimension k of input ia and dimension kb (default k) of input ib must agree in size."""
    kb = k if kb is None else kb
    ctx.same_dim(a.dims[k], b.dims[kb], k, ctx.input_names[ia], ctx.input_names[ib])


def _shape(ctx: ShapeCtx):
    names = ctx.input_names
    q, k, v = ctx.in_types[:3]
    for i, t in enumerate((q, k, v)):
        if t.rank != 3:
            ctx.error(f"`{names[i]}` has {t.rank} dimension{'s' if t.rank != 1 else ''} {t.show()}, "
                      "but 3 are needed", "attention takes [batch, token, feature] sequences", code="E051")
        ctx.expect_float(t, i)
    for i, t in ((1, k), (2, v)):
        if t.dtype != q.dtype:
            ctx.error(f"`{names[0]}` is {q.dtype} but `{names[i]}` is {t.dtype}", code="E054")
    embed = q.dims[-1]
    for i, t in enumerate((q, k, v)):
        if t.dims[-1].size is None:
            ctx.error(f"the last dimension `{t.dims[-1].name}` of `{names[i]}` has no size",
                      "give the input a size: `[batch, token, feature=64]`", code="E051")
    # k and v: the query's width (kdim/vdim are not exposed), and as many keys as values
    for i, t in ((1, k), (2, v)):
        _same_dim(ctx, q, 0, t, i, 0)
        _same_dim(ctx, q, 0, t, i, 2)
    _same_dim(ctx, k, 1, v, 2, 1)
    heads = ctx.int_arg("num_heads")
    if heads is None or heads.value < 1:
        ctx.error(f"`num_heads` must be a positive integer, not {getattr(heads, 'value', heads)!r}")
    ctx.require((embed.size % heads).equals(0),
                f"the query width `{embed.name or 'embed'}` ({_show(embed.size)}) must be divisible by "
                f"`num_heads` ({_show(heads)})",
                "choose a number of heads that divides the width")
    for flag in ("causal", "average_weights"):
        if not ctx.arg(flag).is_const:
            ctx.error(f"`{flag}` must be `true` or `false`, not the parameter `{ctx.arg(flag).render()}`: "
                      "it changes the emitted forward", code="E056")
    p = ctx.arg("dropout")
    if not 0 <= p.value <= 1:
        ctx.error(f"`dropout` must be between 0 and 1, not {p.value}")
    if len(ctx.in_types) > 3:
        mask = ctx.in_types[3]
        ctx.expect_rank(mask, 2, 2, what=names[3])
        if mask.dtype != "bool":
            ctx.error(f"the key-padding mask `{names[3]}` is {mask.dtype}, but a bool tensor is needed",
                      f"declare it as `input {names[3]}: bool[batch, token]` (True marks a padded key)",
                      code="E054")
        _same_dim(ctx, k, 1, mask, 3, 0)
        _same_dim(ctx, k, 1, mask, 3, 1, 1)
    if ctx.arg("causal").value:
        tq, tk = q.dims[1], k.dims[1]
        if tq.size is not None and tk.size is not None and tq.size.value != tk.size.value:
            ctx.error(f"`causal=true` needs as many queries as keys, but `{names[0]}` has "
                      f"{_label(tq, 1)}={_show(tq.size)} and `{names[1]}` has "
                      f"{_label(tk, 1)}={_show(tk.size)}",
                      "causal masking is for self-attention over one sequence", code="E053")
    batch, token_q, token_k = q.dims[0], q.dims[1], k.dims[1]
    if ctx.arg("average_weights").value:
        weights = (batch, token_q, token_k)
    else:
        weights = (batch, Dim("head", heads), token_q, token_k)
    return [q, TType(weights, q.dtype)]


def _show(s: Sym) -> str:
    return str(s.value) if s.is_const else f"{s.render()} = {s.value}"


def _emit(ctx) -> Emission:
    q = ctx.in_types[0]
    embed = ctx.size(q, -1)
    extra = ""
    for name in ("dropout", "bias"):
        value = ctx.arg(name)
        if not value.is_const or value.value != ctx.spec.param(name).default:
            extra += f", {name}={ctx.r(value)}"
    module = f"nn.MultiheadAttention({ctx.r(embed)}, {ctx.r(ctx.arg('num_heads'))}{extra}, batch_first=True)"
    args = list(ctx.exprs[:3])
    if len(ctx.exprs) > 3:
        args.append(f"key_padding_mask={ctx.exprs[3]}")
    init: tuple[str, ...] = ()
    if ctx.arg("causal").value:
        size = q.dims[1].size
        if size is not None:
            # a length known when the module is built: the mask is made once, a buffer of the
            # attention module (not saved in the state dict)
            init = (f"{ctx.m}.register_buffer(\"causal_mask\", torch.ones({ctx.r(size)}, {ctx.r(size)}, "
                    "dtype=torch.bool).triu(1), persistent=False)",)
            args.append(f"attn_mask={ctx.m}.causal_mask")
        else:
            # Queries and keys have one length here, known when the model runs; read it from an
            # input that is a plain name, so an inlined expression is not evaluated twice.
            ref = next((e for e in ctx.exprs[:3] if e.isidentifier()), f"({ctx.exprs[0]})")
            length = f"{ref}.size(1)"
            args.append(f"attn_mask={ref}.new_ones({length}, {length}, dtype=torch.bool).triu(1)")
        args.append("is_causal=True")  # the mask is the causal one: torch may take its causal kernel
    if len(ctx.discarded) > 1 and ctx.discarded[1]:
        args.append("need_weights=False")  # the weights are discarded: torch takes its fused fast path
    elif not ctx.arg("average_weights").value:
        args.append("average_attn_weights=False")
    return Emission(call=f"{ctx.m}({', '.join(args)})", module=module, unpack="{}, {}", first="[0]", init=init)


def _params(ctx) -> int:
    embed = ctx.size(ctx.in_types[0])
    # in_proj (q, k, v) and out_proj, each embed x embed, with their biases
    return 4 * embed * embed + (4 * embed if ctx.value("bias") else 0)


def _macs(ctx) -> int:
    q, k = ctx.in_types[0], ctx.in_types[1]
    embed, tq, tk = ctx.size(q), ctx.size(q, 1), ctx.size(k, 1)
    projections = (2 * tq + 2 * tk) * embed * embed  # q and out over the queries; k and v over the keys
    return projections + 2 * tq * tk * embed  # scores q k^T, then weights times v


# ------------------------------------------------------------------------------ autotest


def _strategy(draw: Draw, spec) -> Case:
    st = strategies()
    heads = draw(st.integers(1, 3))
    width = heads * draw(st.integers(1, 3))
    causal = draw(st.booleans())
    feature = (draw(st.sampled_from(["feature", None])), width)
    query = ("token", None) if draw(st.booleans()) else ("token", draw(st.integers(1, 4)))
    if causal or draw(st.booleans()):
        key = query
    else:
        key = ("src", None) if draw(st.booleans()) else ("src", draw(st.integers(1, 4)))
    masked = draw(st.booleans())
    mask = Tensor("mask", [("batch", None), key], "bool")
    if key == query and draw(st.booleans()):  # self-attention: one tensor as q, k and v
        x = Tensor("x", [("batch", None), query, feature])
        inputs, call = [x], ["x", "x", "x"]
    else:
        q = Tensor("q", [("batch", None), query, feature])
        k = Tensor("k", [("batch", None), key, feature])
        inputs, call = [q, k, k.renamed("v")], ["q", "k", "v"]
    if masked:
        inputs.append(mask)
        call.append("mask")
    args: dict[str, Any] = {"num_heads": heads}
    put(args, "causal", maybe(draw, causal, not causal))
    args = generic_args(draw, spec, inputs[0], args, skip=("causal",))
    return discarding(draw, Case(inputs, args, call=call, outputs=len(spec.outputs)))


# ------------------------------------------------------------------------------ the op

register(
    OpSpec(
        name="attention",
        doc=(
            "Multi-head scaled dot-product attention of queries q over keys k and values v; an optional "
            "fourth input, a bool [batch, token] key-padding mask, is True at padded keys, which are ignored."
        ),
        family="attention",
        torch_module="torch.nn.MultiheadAttention",
        inputs=("q", "k", "v", "mask"),
        optional_inputs=1,
        outputs=("out", "weights"),
        params=(
            HyperParam(
                "num_heads",
                "int",
                doc="Number of parallel attention heads.",
                aliases=("heads",),
                depends="embed_dim (the query's last dimension) must be divisible by num_heads",
            ),
            HyperParam(
                "dropout",
                "float",
                default=0.0,
                doc="Dropout probability on the attention weights (training only).",
            ),
            HyperParam(
                "bias",
                "bool",
                default=True,
                doc="Whether the input and output projections learn a bias.",
            ),
            HyperParam(
                "causal",
                "bool",
                default=False,
                doc="Mask future positions: query i attends only to keys 0..i.",
                depends="needs as many queries as keys (the same token dimension)",
            ),
            HyperParam(
                "average_weights",
                "bool",
                default=True,
                doc="Return the attention weights averaged over heads (else one map per head).",
            ),
        ),
        inferred=("embed_dim",),
        # torch's forward argument `average_attn_weights` is exposed as `average_weights`
        renamed={"average_attn_weights": "average_weights"},
        omitted={
            "embed_dim": "inferred from the query's last dimension",
            "kdim": "k must have the query's width; separate key widths are not supported",
            "vdim": "v must have the query's width; separate value widths are not supported",
            "add_bias_kv": "rarely used; not exposed",
            "add_zero_attn": "rarely used; not exposed",
            "batch_first": "always True in emitted code (tg tensors are batch-first)",
            "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
            "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
        },
        example="out, weights = attention(q, k, v, heads=8)",
        has_weights=True,
        shape_doc=(
            "q [batch, token, feature=E], k and v [batch, src, feature=E] (mask bool[batch, src]) -> "
            "out [batch, token, feature=E], weights [batch, token, src] "
            "([batch, head=num_heads, token, src] with average_weights=false)"
        ),
        shape=_shape,
        emit=_emit,
        params_count=_params,
        macs=_macs,
        autotest=_strategy,
    )
)
