"""The `conv` family: 1-d and 2-d convolutions, one factory parametrised by the rank."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..tensor_types import Dim, Sym
from .common import is_default, keywords, render_ints, spatial_ints, window_size
from .context import ShapeCtx
from .drawing import Case, Draw, generic_args, ints, maybe, put, sized_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _conv_hyper_params() -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "out_channels",
            "int",
            doc="Number of output channels (filters).",
            aliases=("out", "channels"),
        ),
        HyperParam(
            "kernel_size",
            "ints",
            doc="Size of the convolution window, one integer or one per spatial dimension.",
            aliases=("kernel",),
        ),
        HyperParam("stride", "ints", default=1, doc="Step of the window, one integer or one per spatial dimension."),
        HyperParam(
            "padding",
            "padding",
            default=0,
            doc='Implicit padding on both sides: integer(s), "same" or "valid" (no padding).',
            depends='"same" pads so the output keeps the input\'s length; only with stride 1; '
            "the amount depends on kernel_size and dilation",
        ),
        HyperParam("dilation", "ints", default=1, doc="Spacing between kernel elements."),
        HyperParam(
            "groups",
            "int",
            default=1,
            doc="Number of blocked connections from input to output channels.",
            depends="in_channels (the input's channel count) and out_channels must both be divisible by groups",
        ),
        HyperParam("bias", "bool", default=True, doc="Whether to learn an additive bias per output channel."),
        HyperParam(
            "padding_mode",
            "str",
            default="zeros",
            doc="How padded values are filled.",
            choices=_PADDING_MODES,
            depends="only matters when padding is not 0",
        ),
    )


def _omitted() -> dict[str, str]:
    return {
        "in_channels": "inferred from the input's channel dimension (dimension 1)",
        "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
        "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
    }


# ------------------------------------------------------------------------------ rules


def _conv_shape(n: int, ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, n + 2, n + 2)
    ctx.expect_float(x)
    channels = x.dims[1]
    if channels.size is None:
        ctx.error(f"the channel dimension `{channels.name}` of `{ctx.input_names[0]}` has no size",
                  "give the input a size: `[batch, channels=3, ...]`", code="E051")
    out = ctx.int_arg("out_channels")
    if out is None or not isinstance(out.value, int) or out.value < 1:
        ctx.error(f"`out_channels` must be a positive integer, not {getattr(out, 'value', out)}")
    kernel = spatial_ints(ctx, "kernel_size", n, 1)
    stride = spatial_ints(ctx, "stride", n, 1)
    dilation = spatial_ints(ctx, "dilation", n, 1)
    groups = ctx.int_arg("groups")
    if groups is None or groups.value < 1:
        ctx.error(f"`groups` must be positive, not {getattr(groups, 'value', groups)}")
    if not groups.is_const or groups.value != 1:
        ctx.require((channels.size % groups).equals(0),
                    f"`groups` ({groups.render()}) must divide the input channels ({channels.size.render()})")
        if not out.same_expr(channels.size):  # one assertion when both are the same expression
            ctx.require((out % groups).equals(0),
                        f"`groups` ({groups.render()}) must divide `out_channels` ({out.render()})")
    padding = ctx.arg("padding")
    dims = list(x.dims)
    dims[1] = Dim(channels.name, out)
    if isinstance(padding, Sym) and padding.value == "same":
        for s in stride:
            if s.value != 1:
                ctx.error(f'`padding="same"` needs stride 1, but stride is {s.value}',
                          "give the padding as a number instead: (kernel_size - 1) // 2 for odd kernels",
                          code="E055")
            if not s.is_const:
                ctx.require(s.equals(1), '`padding="same"` needs stride 1')
        return [x.with_dims(dims)]  # every spatial size is kept
    if isinstance(padding, Sym) and padding.value == "valid":
        pads = [Sym.const(0)] * n
    else:
        pads = spatial_ints(ctx, "padding", n, 0)
    for i in range(n):
        size = window_size(ctx, x, 2 + i, kernel[i], stride[i], pads[i], dilation[i])
        dims[2 + i] = Dim.of(x.dims[2 + i].name, size) if size is not None else x.dims[2 + i]
    return [x.with_dims(dims)]


def _conv_emit(cls: str, ctx) -> Emission:
    x = ctx.in_types[0]
    padding = ctx.arg("padding")
    kw = keywords(ctx, {"stride": 1})
    if not (is_default(padding, 0) or (isinstance(padding, Sym) and padding.value == "valid")):
        kw += f", padding={render_ints(ctx, padding)}"
    kw += keywords(ctx, {"dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"})
    module = (f"{cls}({ctx.r(ctx.size(x, 1))}, {ctx.r(ctx.arg('out_channels'))}, "
              f"{render_ints(ctx, ctx.arg('kernel_size'))}{kw})")
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=module)


def _kernel_volume(n: int, ctx) -> int:
    kernel = ctx.value("kernel_size")
    sizes = kernel if isinstance(kernel, list) else [kernel]
    volume = 1
    for k in (sizes * n if len(sizes) == 1 else sizes):
        volume *= k
    return volume


def _conv_params_count(n: int, ctx) -> int:
    c_in, c_out = ctx.size(ctx.in_types[0], 1), ctx.size(ctx.out_types[0], 1)
    weight = c_out * (c_in // ctx.value("groups")) * _kernel_volume(n, ctx)
    return weight + (c_out if ctx.value("bias") else 0)


def _conv_macs(n: int, ctx) -> int:
    c_in = ctx.size(ctx.in_types[0], 1)
    return ctx.numel(ctx.out_types[0]) * (c_in // ctx.value("groups")) * _kernel_volume(n, ctx)


# ------------------------------------------------------------------------------ autotest


def _conv_strategy(nd: int, draw: Draw, spec) -> Case:
    st = strategies()
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    mode = draw(st.sampled_from(list(spec.param("padding_mode").choices)))
    form = draw(st.sampled_from(["int", "same", "valid"]))
    if form == "same":
        stride = [1] * nd
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        sides = [t - t // 2 for t in total]  # the larger side
        pads = [0] * nd
        padding: Any = "same"
    else:
        stride = [draw(st.integers(1, 3)) for _ in range(nd)]
        pads = [0] * nd if form == "valid" else [draw(st.integers(0, 2)) for _ in range(nd)]
        sides = pads
        padding = "valid" if form == "valid" else ints(draw, pads, omit_default=0)
    sizes = []
    for k, d, p, side in zip(kernel, dilation, pads, sides):
        low = max(1, d * (k - 1) + 1 - 2 * p, side + 1 if mode != "zeros" else 1)
        sizes.append(draw(st.integers(low, max(low, 8))))
    labels = ["chan", *_SPATIAL[nd]]
    x = sized_input(draw, "x", labels, sizes=[c_in, *sizes])
    args: dict[str, Any] = {"out_channels": c_out, "kernel_size": ints(draw, kernel)}
    put(args, "stride", ints(draw, stride, omit_default=1))
    put(args, "padding", padding)
    put(args, "dilation", ints(draw, dilation, omit_default=1))
    put(args, "groups", maybe(draw, groups, groups == 1))
    put(args, "padding_mode", maybe(draw, mode, mode == "zeros"))
    handled = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
    return Case([x], generic_args(draw, spec, x, args, skip=handled))


# ------------------------------------------------------------------------------ the family

# the spatial dimensions of an n-d convolution's input, after [batch, channel]
_SPATIAL = {1: ["length"], 2: ["height", "width"], 3: ["depth", "height", "width"]}

_EXAMPLES = {
    1: 'h = x >> conv1d(64, 5, padding="same") >> relu',
    2: "h = img >> conv2d(32, 3, padding=1) >> relu",
    3: "h = vol >> conv3d(16, 3, padding=1) >> relu",
}


def conv_op(n: int) -> OpSpec:
    """The n-d convolution `conv{n}d` (`nn.Conv{n}d`)."""
    spatial = _SPATIAL[n]
    dims = ", ".join(spatial)
    primed = ", ".join(f"{d}'" for d in spatial)
    size = "length" if n == 1 else "size"
    each = f"{size}'" if n == 1 else f"each with size'"
    return OpSpec(
        name=f"conv{n}d",
        doc=f"Applies a {n}-d convolution over a [batch, channel, {dims}] input.",
        family="conv",
        torch_module=f"torch.nn.Conv{n}d",
        params=_conv_hyper_params(),
        inferred=("in_channels",),
        omitted=_omitted(),
        example=_EXAMPLES[n],
        has_weights=True,
        shape_doc=(
            f"[batch, channel=in, {dims}] -> [batch, channel=out_channels, {primed}]"
            + (f" with {each}" if n == 1 else f", {each}")
            + f" = ({size} + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1; "
            f'padding="same" keeps {"length" if n == 1 else "them"}'
        ),
        shape=partial(_conv_shape, n),
        emit=partial(_conv_emit, f"nn.Conv{n}d"),
        params_count=partial(_conv_params_count, n),
        macs=partial(_conv_macs, n),
        autotest=partial(_conv_strategy, n),
    )


for _n in (1, 2):
    register(conv_op(_n))
