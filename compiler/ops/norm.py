"""The `norm` family: layer and batch normalisation.

`layernorm` is declared on its own; the batch norms are built by one factory, `batchnorm_op(n)`,
parametrised by the number of dimensions the channel is normalised over (1 or 2).
"""

from __future__ import annotations

from functools import partial

from .common import keywords
from .context import ShapeCtx
from .drawing import Case, Draw, generic_args, sized_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

_DEVICE = {
    "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
    "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
}

_EPS = HyperParam("eps", "float", default=1e-5, doc="Added to the variance for numerical stability.")


def _check_eps(ctx: ShapeCtx) -> None:
    eps = ctx.arg("eps")
    if eps.value <= 0:
        ctx.error(f"`eps` must be positive, not {eps.value}", "the usual value is 1e-5", code="E055")


# ------------------------------------------------------------------------------ layernorm


def _layernorm_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    ctx.feature_width(hint="layernorm learns one scale per feature; give the input a size: `[batch, feature=16]`")
    _check_eps(ctx)
    return [x]


def _layernorm_emit(ctx) -> Emission:
    width = ctx.size(ctx.in_types[0], -1)
    kw = keywords(ctx, {"eps": 1e-5, "elementwise_affine": True, "bias": True})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.LayerNorm({ctx.r(width)}{kw})")


def _layernorm_params(ctx) -> int:
    if not ctx.value("elementwise_affine"):
        return 0
    return ctx.size(ctx.in_types[0]) * (2 if ctx.value("bias") else 1)  # weight (and bias)


register(
    OpSpec(
        name="layernorm",
        doc="Normalises each position over its last dimension, then scales and shifts.",
        family="norm",
        torch_module="torch.nn.LayerNorm",
        params=(
            _EPS,
            HyperParam(
                "elementwise_affine",
                "bool",
                default=True,
                doc="Whether to learn a per-feature scale (and shift, see bias).",
                aliases=("affine",),
            ),
            HyperParam(
                "bias",
                "bool",
                default=True,
                doc="Whether to learn a per-feature shift.",
                depends="only matters when elementwise_affine is true",
            ),
        ),
        inferred=("normalized_shape",),
        omitted={
            "normalized_shape": "inferred: the input's last dimension (normalising over several is not supported)",
            **_DEVICE,
        },
        example="h = x >> linear(256) >> layernorm >> gelu",
        has_weights=True,
        shape_doc="[*, feature] -> [*, feature] (normalised over the last dimension)",
        shape=_layernorm_shape,
        emit=_layernorm_emit,
        # `nn.LayerNorm(...)` also with elementwise_affine=false, when it has no weights
        owns_module=True,
        params_count=_layernorm_params,
    )
)


# ------------------------------------------------------------------------------ batch norms


def _bn_params() -> tuple[HyperParam, ...]:
    return (
        _EPS,
        HyperParam(
            "momentum",
            "float",
            default=0.1,
            doc="Weight of the current batch in the running mean and variance.",
            depends="only matters when track_running_stats is true",
        ),
        HyperParam(
            "affine",
            "bool",
            default=True,
            doc="Whether to learn a per-channel scale and shift.",
        ),
        HyperParam(
            "track_running_stats",
            "bool",
            default=True,
            doc="Whether to keep running statistics for evaluation (else batch statistics are always used).",
        ),
    )


_BN_OMITTED = {
    "num_features": "inferred from the input's channel dimension (dimension 1)",
    "bias": "keyword-only and only in recent torch (not in 2.2, the minimum supported); `affine` covers it",
    **_DEVICE,
}


def _batchnorm_shape(n: int, ctx: ShapeCtx):
    (x,) = ctx.in_types
    if n == 1:  # [batch, channel] or [batch, channel, length]
        if x.rank not in (2, 3):
            ctx.error(f"`{ctx.input_names[0]}` has {x.rank} dimensions {x.show()}, but batchnorm1d takes "
                      "[batch, features] or [batch, channels, length]",
                      "use batchnorm2d for [batch, channels, height, width]; layernorm normalises the last "
                      "dimension of any tensor", code="E051")
    else:
        ctx.expect_rank(x, n + 2, n + 2)
    ctx.expect_float(x)
    channels = x.dims[1]
    if channels.size is None:
        ctx.error(f"the channel dimension `{channels.name}` (dimension 1) of `{ctx.input_names[0]}` has no size",
                  "batch normalisation learns one scale per channel; give it a size", code="E051")
    _check_eps(ctx)
    momentum = ctx.arg("momentum")
    if not 0 <= momentum.value <= 1:
        ctx.error(f"`momentum` must be between 0 and 1, not {momentum.value}", code="E055")
    return [x]


def _batchnorm_emit(cls: str, ctx) -> Emission:
    channels = ctx.size(ctx.in_types[0], 1)
    kw = keywords(ctx, {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"{cls}({ctx.r(channels)}{kw})")


def _batchnorm_params(ctx) -> int:
    # weight and bias when affine; the running statistics are buffers, not parameters
    return 2 * ctx.size(ctx.in_types[0], 1) if ctx.value("affine") else 0


def _batchnorm_strategy(nd: int, draw: Draw, spec) -> Case:
    st = strategies()
    if nd == 2:
        x = sized_input(draw, "x", ["chan", "height", "width"], high=4)
    else:
        x = sized_input(draw, "x", ["chan", "length"][: draw(st.integers(1, 2))], high=4)
        if x.rank == 3 and draw(st.booleans()):
            x.dims[2] = ("token", None)
    return Case([x], generic_args(draw, spec, x, {}))


# per rank: the op's doc, shape rule in words and example
_BN_FACTS = {
    1: (
        "Normalises each channel over the batch (and length) of a [batch, channel] or [batch, channel, length] input.",
        "[batch, channel] or [batch, channel, length] -> the same shape",
        "h = x >> linear(128) >> batchnorm1d >> relu",
    ),
    2: (
        "Normalises each channel over the batch, height and width of a [batch, channel, height, width] input.",
        "[batch, channel, height, width] -> the same shape",
        "h = x >> conv2d(32, 3, padding=1) >> batchnorm2d >> relu",
    ),
}


def batchnorm_op(n: int) -> OpSpec:
    """The batch norm over n spatial dimensions `batchnorm{n}d` (`nn.BatchNorm{n}d`)."""
    doc, shape_doc, example = _BN_FACTS[n]
    return OpSpec(
        name=f"batchnorm{n}d",
        doc=doc,
        family="norm",
        torch_module=f"torch.nn.BatchNorm{n}d",
        params=_bn_params(),
        inferred=("num_features",),
        omitted=dict(_BN_OMITTED),
        example=example,
        has_weights=True,
        shape_doc=shape_doc,
        shape=partial(_batchnorm_shape, n),
        emit=partial(_batchnorm_emit, f"nn.BatchNorm{n}d"),
        owns_module=True,  # `nn.BatchNorm{n}d(...)` also with affine=false, when it has no weights
        params_count=_batchnorm_params,
        autotest=partial(_batchnorm_strategy, n),
    )


for _n in (1, 2):
    register(batchnorm_op(_n))
