"""The `norm` family: layer, RMS, group, batch and instance normalisation.

`layernorm` and `rmsnorm` normalise the trailing dimensions from `start_dim` on (the last by
default; torch's `normalized_shape` is their sizes) and `groupnorm` groups of channels; the batch
norms and the instance norms are each built by one factory (`batchnorm_op(n)`,
`instancenorm_op(n)`), parametrised by the number of spatial dimensions (1, 2 or 3).

`rmsnorm` emits `nn.RMSNorm`, which torch has from 2.4 on: a module that uses it needs torch>=2.4.
"""

from __future__ import annotations

import math
from functools import partial

from ..tensor_types import Sym
from .common import keywords
from .context import ShapeCtx
from .drawing import Case, Draw, dim_ref, float_input, generic_args, sized_input, strategies
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


# ------------------------------------------------------------------------------ layernorm, rmsnorm

_START_DIM = HyperParam(
    "start_dim",
    "dim",
    default=-1,
    doc="First dimension normalised over (a name or an index): it and every dimension after it; "
        "the last alone by default.",
)


def _normalized_shape(ctx: ShapeCtx) -> list:
    """The sizes of the dimensions from `start_dim` to the last (torch's `normalized_shape`)."""
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    ctx.expect_float(x)
    # not `from_param`: the sizes are the module's weight shape, fixed when it is built
    k = ctx.dim_index(ctx.arg("start_dim"), x, "start_dim")
    sizes = []
    for j in range(k, x.rank):
        d = x.dims[j]
        if d.batch:
            ctx.error(f"`start_dim` includes the batch dimension of `{ctx.input_names[0]}` {x.show()}",
                      "normalise over the dimensions after the batch: `start_dim=1` or a later one", code="E052")
        if d.size is None:
            label = f"`{d.name}`" if d.name else f"{j}"
            ctx.error(f"dimension {label} of `{ctx.input_names[0]}` {x.show()} has no size",
                      f"`{ctx.spec.name}` learns one scale per normalised element; give it a size, or start "
                      "after it with `start_dim`", code="E051")
        sizes.append(d.size)
    return sizes


def _layernorm_shape(ctx: ShapeCtx):
    _normalized_shape(ctx)
    _check_eps(ctx)
    return [ctx.in_types[0]]


def _shape_source(ctx, sizes: list) -> str:
    """`normalized_shape` as Python source: `d` for one dimension, `(h, w)` for several."""
    return ctx.r(sizes[0]) if len(sizes) == 1 else ctx.r(sizes)


def _layernorm_emit(ctx) -> Emission:
    shape = _shape_source(ctx, _normalized_shape(ctx))
    kw = keywords(ctx, {"eps": 1e-5, "elementwise_affine": True, "bias": True})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.LayerNorm({shape}{kw})")


def _normalized_numel(ctx) -> int:
    """The number of normalised elements (of `normalized_shape`), for the costs."""
    x = ctx.in_types[0]
    start = ctx.value("start_dim")  # a name or an index
    k = next(j for j, d in enumerate(x.dims) if d.name == start) if isinstance(start, str) else start % x.rank
    total = 1
    for j in range(k, x.rank):
        total *= ctx.size(x, j)
    return total


def _layernorm_params(ctx) -> int:
    if not ctx.value("elementwise_affine"):
        return 0
    return _normalized_numel(ctx) * (2 if ctx.value("bias") else 1)  # weight (and bias)


def _trailing_strategy(draw: Draw, spec) -> Case:
    """A float input and a `start_dim` over its sized trailing dimensions (never the batch)."""
    st = strategies()
    x = float_input(draw, "x")
    sized = [k for k in range(1, x.rank) if all(x.size(j) is not None for j in range(k, x.rank))]
    k = draw(st.sampled_from(sized))
    args: dict = {}
    if k != x.rank - 1 or draw(st.booleans()):
        args["start_dim"] = dim_ref(draw, x, [k])
    return Case([x], generic_args(draw, spec, x, args, skip=("start_dim",)))


def _affine(doc: str) -> HyperParam:
    return HyperParam("elementwise_affine", "bool", default=True, doc=doc, aliases=("affine",))


register(
    OpSpec(
        name="layernorm",
        doc="Normalises each position over its last dimension (or its last few), then scales and shifts.",
        family="norm",
        torch_module="torch.nn.LayerNorm",
        params=(
            _EPS,
            _affine("Whether to learn a per-element scale (and shift, see bias)."),
            HyperParam(
                "bias",
                "bool",
                default=True,
                doc="Whether to learn a per-element shift.",
                depends="only matters when elementwise_affine is true",
            ),
            _START_DIM,
        ),
        inferred=("normalized_shape",),
        omitted={
            "normalized_shape": "inferred: the sizes of the input's dimensions from `start_dim` to the last",
            **_DEVICE,
        },
        example="h = x >> linear(256) >> layernorm >> gelu",
        has_weights=True,
        shape_doc="[*, feature] -> [*, feature] (normalised over the last dimension; with start_dim over "
                  "that dimension and all after it, `layernorm(start_dim=-2)` on [batch, height, width])",
        shape=_layernorm_shape,
        emit=_layernorm_emit,
        # `nn.LayerNorm(...)` also with elementwise_affine=false, when it has no weights
        owns_module=True,
        params_count=_layernorm_params,
        autotest=_trailing_strategy,
    )
)


def _rmsnorm_shape(ctx: ShapeCtx):
    _normalized_shape(ctx)
    if ctx.arg("eps") is not None:
        _check_eps(ctx)
    return [ctx.in_types[0]]


def _rmsnorm_emit(ctx) -> Emission:
    shape = _shape_source(ctx, _normalized_shape(ctx))
    kw = keywords(ctx, {"eps": None, "elementwise_affine": True})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.RMSNorm({shape}{kw})")


def _rmsnorm_params(ctx) -> int:
    return _normalized_numel(ctx) if ctx.value("elementwise_affine") else 0  # weight only


register(
    OpSpec(
        name="rmsnorm",
        doc="Divides each position by its root mean square over the last dimension (or its last few), then scales; "
            "emits nn.RMSNorm, so the module needs torch>=2.4.",
        family="norm",
        torch_module="torch.nn.RMSNorm",
        params=(
            HyperParam(
                "eps",
                "float",
                default=None,
                doc="Added to the mean square for numerical stability; by default the input dtype's machine epsilon.",
            ),
            _affine("Whether to learn a per-element scale."),
            _START_DIM,
        ),
        inferred=("normalized_shape",),
        omitted={
            "normalized_shape": "inferred: the sizes of the input's dimensions from `start_dim` to the last",
            **_DEVICE,
        },
        example="h = x >> rmsnorm >> linear(256)",
        has_weights=True,
        shape_doc="[*, feature] -> [*, feature] (normalised over the last dimension; with start_dim over "
                  "that dimension and all after it)",
        shape=_rmsnorm_shape,
        emit=_rmsnorm_emit,
        owns_module=True,  # `nn.RMSNorm(...)` also with elementwise_affine=false, when it has no weights
        params_count=_rmsnorm_params,
        autotest=_trailing_strategy,
    )
)


# ------------------------------------------------------------------------------ groupnorm


def _channels(ctx: ShapeCtx, what: str):
    """The size of the channel dimension (dimension 1) of the input, which must have one."""
    x = ctx.in_types[0]
    channels = x.dims[1]
    if channels.size is None:
        ctx.error(f"the channel dimension `{channels.show()}` (dimension 1) of `{ctx.input_names[0]}` has no size",
                  f"{what} learns one scale per channel; give it a size", code="E051")
    return channels.size


def _spatial_count(x) -> Sym | None:
    """The number of positions per channel of one sample (the product of dimensions 2 and on), or
    None when a dimension's size is not known at all."""
    count = Sym.const(1)
    for d in x.dims[2:]:
        if d.extent is None:
            return None
        count = count * d.extent
    return count


def _groupnorm_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    ctx.expect_float(x)
    channels = _channels(ctx, "groupnorm")
    groups = ctx.arg("num_groups")
    ctx.require(groups.at_least(1), f"`num_groups` must be positive, not {groups.value}" if groups.is_const else
                f"`num_groups` ({groups.render()}) must be positive")
    ctx.require((channels % groups).equals(0), f"the {channels.render()} channels of `{ctx.input_names[0]}` "
                f"must divide into `num_groups` ({groups.render()}) groups",
                f"use a num_groups that divides {channels.value}")
    _check_eps(ctx)
    # torch refuses a batch whose groups hold one value each in all (`group_norm` checks it always)
    per_group = _spatial_count(x)
    batch = x.dims[0].extent
    if per_group is not None and batch is not None:
        per_group = channels // groups * per_group
        if not (per_group.value is not None and per_group.value >= 2 and per_group.is_const):
            ctx.require((batch * per_group).at_least(2), "torch needs more than one value per group in a batch")
    return [x]


def _groupnorm_emit(ctx) -> Emission:
    channels = ctx.size(ctx.in_types[0], 1)
    kw = keywords(ctx, {"eps": 1e-5, "affine": True})
    groups = ctx.r(ctx.arg("num_groups"))
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.GroupNorm({groups}, {ctx.r(channels)}{kw})")


def _per_channel_params(ctx) -> int:
    # weight and bias when affine; running statistics (instance norm) are buffers, not parameters
    return 2 * ctx.size(ctx.in_types[0], 1) if ctx.value("affine") else 0


def _groupnorm_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    rank = draw(st.integers(0, 2))
    groups = draw(st.integers(1, 4))
    x = sized_input(draw, "x", ["chan", "height", "width"][: rank + 1], high=3)
    x.dims[1] = (x.dims[1][0], groups * draw(st.integers(1, 3)))
    if rank >= 1 and draw(st.booleans()):
        x.dims[2] = ("token" if rank == 1 else "height", None)
    return Case([x], generic_args(draw, spec, x, {"num_groups": groups}))


register(
    OpSpec(
        name="groupnorm",
        doc="Normalises each sample over groups of its channels (and all positions), then scales and "
            "shifts per channel.",
        family="norm",
        torch_module="torch.nn.GroupNorm",
        params=(
            HyperParam("num_groups", "int", doc="Number of groups the channels are divided into; must divide them.",
                       aliases=("groups",)),
            _EPS,
            HyperParam("affine", "bool", default=True, doc="Whether to learn a per-channel scale and shift."),
        ),
        inferred=("num_channels",),
        omitted={
            "num_channels": "inferred from the input's channel dimension (dimension 1)",
            "bias": "keyword-only and only in recent torch (not in 2.2, the minimum supported); `affine` covers it",
            **_DEVICE,
        },
        example="h = x >> conv2d(64, 3, padding=1) >> groupnorm(8) >> relu",
        has_weights=True,
        shape_doc="[batch, channel, *] -> the same shape (channel divisible by num_groups)",
        shape=_groupnorm_shape,
        emit=_groupnorm_emit,
        owns_module=True,  # `nn.GroupNorm(...)` also with affine=false, when it has no weights
        params_count=_per_channel_params,
        autotest=_groupnorm_strategy,
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
    if nd >= 2:
        x = sized_input(draw, "x", ["chan", "depth", "height", "width"][-nd - 1:], high=4 if nd == 2 else 3)
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
    3: (
        "Normalises each channel over the batch, depth, height and width of a "
        "[batch, channel, depth, height, width] input.",
        "[batch, channel, depth, height, width] -> the same shape",
        "h = x >> conv3d(16, 3, padding=1) >> batchnorm3d >> relu",
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


for _n in (1, 2, 3):
    register(batchnorm_op(_n))


# ------------------------------------------------------------------------------ instance norms


def _instancenorm_shape(n: int, ctx: ShapeCtx):
    (x,) = ctx.in_types
    # exactly [batch, channel, *spatial]: torch takes one dimension fewer as an unbatched input
    ctx.expect_rank(x, n + 2, n + 2)
    ctx.expect_float(x)
    _channels(ctx, f"instancenorm{n}d")
    _check_eps(ctx)
    momentum = ctx.arg("momentum")
    if not 0 <= momentum.value <= 1:
        ctx.error(f"`momentum` must be between 0 and 1, not {momentum.value}", code="E055")
    # torch normalises each channel of each sample over its positions, and refuses a single one
    # (whenever it uses the input's statistics: always in training)
    count = _spatial_count(x)
    if count is not None and not (count.is_const and count.value >= 2):
        where = "length" if n == 1 else "height times width"
        ctx.require(count.at_least(2), f"the {where} of `{ctx.input_names[0]}` must be at least 2: "
                    "torch normalises over more than one position")
    return [x]


def _instancenorm_strategy(nd: int, draw: Draw, spec) -> Case:
    st = strategies()
    labels = ["chan", "length"] if nd == 1 else ["chan", "height", "width"]
    x = sized_input(draw, "x", labels, high=4)
    if draw(st.booleans()):
        x.dims[2] = ("token" if nd == 1 else "height", None)
    sizes = [s for _, s in x.dims[2:]]
    if None not in sizes and math.prod(sizes) < 2:  # a single position: torch refuses it
        x.dims[-1] = (x.dims[-1][0], 2)
    return Case([x], generic_args(draw, spec, x, {}))


_IN_FACTS = {
    1: (
        "Normalises each channel of each sample over its length, for a [batch, channel, length] input.",
        "[batch, channel, length] -> the same shape (length at least 2)",
        "h = x >> conv1d(32, 3, padding=1) >> instancenorm1d >> relu",
    ),
    2: (
        "Normalises each channel of each sample over its height and width, for a "
        "[batch, channel, height, width] input.",
        "[batch, channel, height, width] -> the same shape (at least 2 positions)",
        "h = x >> conv2d(32, 3, padding=1) >> instancenorm2d(affine=true) >> relu",
    ),
}


def instancenorm_op(n: int) -> OpSpec:
    """The instance norm over n spatial dimensions `instancenorm{n}d` (`nn.InstanceNorm{n}d`)."""
    doc, shape_doc, example = _IN_FACTS[n]
    eps, momentum, affine, track = _bn_params()
    return OpSpec(
        name=f"instancenorm{n}d",
        doc=doc,
        family="norm",
        torch_module=f"torch.nn.InstanceNorm{n}d",
        params=(
            eps,
            momentum,
            HyperParam("affine", "bool", default=False, doc="Whether to learn a per-channel scale and shift."),
            HyperParam(
                "track_running_stats",
                "bool",
                default=False,
                doc="Whether to keep running statistics and use them in evaluation (else each sample's own).",
            ),
        ),
        inferred=("num_features",),
        omitted=dict(_BN_OMITTED),
        example=example,
        has_weights=True,
        shape_doc=shape_doc,
        shape=partial(_instancenorm_shape, n),
        emit=partial(_instancenorm_emit, f"nn.InstanceNorm{n}d"),
        owns_module=True,  # `nn.InstanceNorm{n}d(...)`, with or without weights (the default)
        params_count=_per_channel_params,
        autotest=partial(_instancenorm_strategy, n),
    )


def _instancenorm_emit(cls: str, ctx) -> Emission:
    channels = ctx.size(ctx.in_types[0], 1)
    kw = keywords(ctx, {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"{cls}({ctx.r(channels)}{kw})")


for _n in (1, 2):
    register(instancenorm_op(_n))
