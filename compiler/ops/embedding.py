"""The `embedding` family: lookup tables from integer ids to vectors."""

from __future__ import annotations

from typing import Any

from ..tensor_types import Dim
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register


# ------------------------------------------------------------------------------ shapes and emission

# The new trailing dimension is named `feature`, the name every op and every unshaped input uses
# for the vector width (so `linear`/`layernorm` after it read `[batch, token, feature=...]`).
# Ids that already have a `feature` dimension (categorical columns) get `embedding` instead, so
# names stay unique.
_NEW_NAMES = ("feature", "embedding")


def _shape(ctx: ShapeCtx):
    (ids,) = ctx.in_types
    ctx.expect_rank(ids, 1)
    ctx.expect_int(ids)
    num = ctx.int_arg("num_embeddings")
    width = ctx.int_arg("embedding_dim")
    if num.value < 1:
        ctx.error(f"`num_embeddings` must be positive, not {num.value}")
    if width.value < 1:
        ctx.error(f"`embedding_dim` must be positive, not {width.value}")
    pad = ctx.int_arg("padding_idx")
    if pad is not None:
        if not -num.value <= pad.value < num.value:
            ctx.error(f"`padding_idx` ({pad.value}) is out of range for {num.value} embeddings",
                      f"it must lie in [-{num.value}, {num.value}); 0 is the usual padding id")
        if not (pad.is_const and num.is_const):
            # -num <= pad < num, written with the operators sizes have: pad // num == 0 (pad >= 0)
            inside = (pad // num).equals(0) if pad.value >= 0 else ((-pad - 1) // num).equals(0)
            ctx.require(inside, "`padding_idx` must lie in [-num_embeddings, num_embeddings)")
    if ids.bound is not None:  # positions from `arange`: the table needs a row for each
        ctx.require(num.at_least(ids.bound), f"the positions 0 .. {ids.bound.render()} - 1 need `num_embeddings` "
                    f"({num.render()}) of at least {ids.bound.render()}", "make the table as long as the longest input")
    taken = {d.name for d in ids.dims}
    name = next((n for n in _NEW_NAMES if n not in taken), None)
    return [ids.with_dims([*ids.dims, Dim(name, width)], "float32")]


def _emit(ctx) -> Emission:
    pad = ctx.arg("padding_idx")
    extra = "" if pad is None else f", padding_idx={ctx.r(pad)}"
    module = f"nn.Embedding({ctx.r(ctx.arg('num_embeddings'))}, {ctx.r(ctx.arg('embedding_dim'))}{extra})"
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=module)


def _params(ctx) -> int:
    return ctx.value("num_embeddings") * ctx.value("embedding_dim")


# ------------------------------------------------------------------------------ autotest


def _strategy(draw: Draw, spec) -> Case:
    st = strategies()
    vocab = draw(st.integers(1, 20))
    dims: list[tuple[str | None, int | None]] = [("batch", None)]
    dims.append(("token", None) if draw(st.booleans()) else (draw(st.sampled_from(["token", None])),
                                                              draw(st.integers(1, 5))))
    if draw(st.booleans()):
        dims.append((None, draw(st.integers(1, 3))))
    ids = Tensor("ids", dims, draw(st.sampled_from(["int64", "int32"])))
    args: dict[str, Any] = {"num_embeddings": vocab, "embedding_dim": draw(st.integers(1, 8))}
    put(args, "padding_idx", maybe(draw, draw(st.integers(-vocab, vocab - 1))))
    return Case([ids], args)


# ------------------------------------------------------------------------------ the op

register(
    OpSpec(
        name="embedding",
        doc="Maps each integer id of the input to a learned vector, adding a trailing dimension "
        "named `feature` (`embedding` if the ids already have a `feature` dimension): "
        "long[batch, token] -> [batch, token, feature=embedding_dim].",
        family="embedding",
        torch_module="torch.nn.Embedding",
        inputs=("ids",),
        params=(
            HyperParam(
                "num_embeddings",
                "int",
                doc="Size of the vocabulary: ids must lie in [0, num_embeddings).",
                aliases=("vocab",),
            ),
            HyperParam(
                "embedding_dim",
                "int",
                doc="Width of each embedding vector.",
                aliases=("dim", "out"),
            ),
            HyperParam(
                "padding_idx",
                "int",
                default=None,
                doc="An id whose vector stays zero and gets no gradient.",
                depends="must lie in [-num_embeddings, num_embeddings)",
            ),
            HyperParam("tie", "dimname", default=None, keyword_only=True,
                       doc="A `layer` whose weight this embedding uses; the weight shapes must be equal."),
        ),
        omitted={
            "max_norm": "renormalisation on lookup modifies the weight in place; not exposed",
            "norm_type": "only used with max_norm, which is not exposed",
            "scale_grad_by_freq": "rarely used training detail; not exposed",
            "sparse": "sparse gradients need specific optimizers; emitted code uses dense gradients",
            "_weight": "initial weights are loaded with `load NAME from`, not passed to the constructor",
            "_freeze": "freezing is expressed with `frozen`",
            "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
            "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
        },
        example="h = tokens >> embedding(vocab=10000, dim=128)",
        has_weights=True,
        shape_doc="long[batch, *] -> [batch, *, feature=embedding_dim]",
        shape=_shape,
        emit=_emit,
        params_count=_params,
        autotest=_strategy,
        weight_shape=lambda ctx: (ctx.int_arg("num_embeddings"), ctx.int_arg("embedding_dim")),
    )
)
