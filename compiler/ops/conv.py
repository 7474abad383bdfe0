"""The `conv` family: 1-, 2- and 3-d convolutions and 1- and 2-d transposed convolutions, two
factories parametrised by the rank that share the channel, group and window checks."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..tensor_types import Dim, Sym, TType, plus, tidy
from .common import (
    SPATIAL,
    at_least,
    is_default,
    keywords,
    padding_fits,
    render_ints,
    show_size,
    spatial_ints,
    window_size,
)
from .context import ShapeCtx
from .drawing import Case, Draw, generic_args, ints, maybe, put, run_time_sizes, sized_input, strategies
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


def _conv_transpose_hyper_params() -> tuple[HyperParam, ...]:
    conv = {p.name: p for p in _conv_hyper_params()}
    return (
        conv["out_channels"],
        conv["kernel_size"],
        conv["stride"],
        HyperParam(
            "padding",
            "ints",
            default=0,
            doc="Positions removed from both sides of the output, one integer or one per spatial dimension.",
            depends="torch pads the (dilated, strided) input by dilation * (kernel_size - 1) - padding",
        ),
        HyperParam(
            "output_padding",
            "ints",
            default=0,
            doc="Extra positions added to one side of the output, one integer or one per spatial dimension.",
            depends="must be smaller than stride or than dilation, in each dimension; it picks one of the "
            "output sizes that a convolution with this stride maps to the input's size",
        ),
        conv["groups"],
        conv["bias"],
        conv["dilation"],
    )


# ------------------------------------------------------------------------------ rules


def _conv_input(n: int, ctx: ShapeCtx) -> tuple[TType, Sym, Sym]:
    """The input of an n-d (transposed) convolution, its channel count and `out_channels`, with
    the channel counts checked against `groups`."""
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
    groups = ctx.int_arg("groups")
    if groups is None or groups.value < 1:
        ctx.error(f"`groups` must be positive, not {getattr(groups, 'value', groups)}")
    if not groups.is_const or groups.value != 1:  # depthwise: groups == in_channels
        ctx.require((channels.size % groups).equals(0),
                    f"`groups` ({groups.render()}) must divide the input channels ({channels.size.render()})")
        if not out.same_expr(channels.size):  # one assertion when both are the same expression
            ctx.require((out % groups).equals(0),
                        f"`groups` ({groups.render()}) must divide `out_channels` ({out.render()})")
    return x, channels.size, out


def _conv_shape(n: int, ctx: ShapeCtx):
    x, _, out = _conv_input(n, ctx)
    channels = x.dims[1]
    kernel = spatial_ints(ctx, "kernel_size", n, 1)
    stride = spatial_ints(ctx, "stride", n, 1)
    dilation = spatial_ints(ctx, "dilation", n, 1)
    mode = ctx.arg("padding_mode")
    # a mode given by a parameter may become any of them: the strictest one's rule is checked
    mode = mode.value if mode.is_const else "reflect"
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
        for i in range(n):  # torch pads total // 2 before and the rest after
            total = dilation[i] * (kernel[i] - 1)
            padding_fits(ctx, x, 2 + i, total // 2, tidy(total - total // 2), mode)
        return [x.with_dims(dims)]  # every spatial size is kept
    if isinstance(padding, Sym) and padding.value == "valid":
        pads = [Sym.const(0)] * n
    else:
        pads = spatial_ints(ctx, "padding", n, 0)
    for i in range(n):
        padding_fits(ctx, x, 2 + i, pads[i], pads[i], mode)
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


def _conv_transpose_shape(n: int, ctx: ShapeCtx):
    x, _, out = _conv_input(n, ctx)
    kernel = spatial_ints(ctx, "kernel_size", n, 1)
    stride = spatial_ints(ctx, "stride", n, 1)
    dilation = spatial_ints(ctx, "dilation", n, 1)
    pads = spatial_ints(ctx, "padding", n, 0)
    extra = spatial_ints(ctx, "output_padding", n, 0)
    dims = list(x.dims)
    dims[1] = Dim(x.dims[1].name, out)
    for i in range(n):
        k, s, d, p, e = kernel[i], stride[i], dilation[i], pads[i], extra[i]
        _output_padding_fits(ctx, e, s, d)
        dim = x.dims[2 + i]
        length = dim.extent
        if length is None:  # a dimension without a name or a size: nothing to compute
            continue
        # (L - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
        size = tidy(plus((length - 1) * s, d * (k - 1) + e + 1 - 2 * p))
        label = f"`{dim.name}`" if dim.name else f"{2 + i}"
        # at the smallest input (L = 1) the output is d * (k - 1) + e + 1 - 2 * p: when that is
        # positive for every value (as it is without padding), so is the output for every L
        smallest = d * (k - 1) + e + 1 - 2 * p
        if not (smallest.is_const and smallest.value >= 1) and not (p.is_const and p.value == 0):
            at_least(ctx, size, Sym.const(1), f"the output of dimension {label} would be empty "
                     f"({show_size(size)})", "use less `padding`, a larger kernel or a larger input")
        dims[2 + i] = Dim.of(dim.name, size)
    return [x.with_dims(dims)]


def _output_padding_fits(ctx: ShapeCtx, extra: Sym, stride: Sym, dilation: Sym) -> None:
    """torch's rule: output_padding < stride or output_padding < dilation."""
    if extra.is_const and extra.value == 0:
        return
    below_stride, below_dilation = stride.at_least(extra + 1), dilation.at_least(extra + 1)
    if not below_stride.value and not below_dilation.value:
        ctx.error(f"`output_padding` ({extra.value}) must be smaller than `stride` ({stride.value}) or than "
                  f"`dilation` ({dilation.value})", "output_padding only picks among the output sizes that "
                  "a stride larger than 1 makes ambiguous", code="E055")
    if (below_stride.is_const and below_stride.value) or (below_dilation.is_const and below_dilation.value):
        return
    message = (f"`output_padding` ({extra.render()}) must be smaller than `stride` ({stride.render()}) "
               f"or than `dilation` ({dilation.render()})")
    # a constant that is false, or 1 (then output_padding < 1 holds only when it is 0, and then
    # so does the other), leaves the other comparison
    if below_stride.is_const or (stride.is_const and stride.value == 1):
        ctx.require(below_dilation, message)
    elif below_dilation.is_const or (dilation.is_const and dilation.value == 1):
        ctx.require(below_stride, message)
    else:
        ctx.require((below_stride + below_dilation).at_least(1), message)


def _conv_transpose_emit(cls: str, ctx) -> Emission:
    x = ctx.in_types[0]
    kw = keywords(ctx, {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
                        "dilation": 1})
    module = (f"{cls}({ctx.r(ctx.size(x, 1))}, {ctx.r(ctx.arg('out_channels'))}, "
              f"{render_ints(ctx, ctx.arg('kernel_size'))}{kw})")
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=module)


def _conv_transpose_params_count(n: int, ctx) -> int:
    # the weight is [in_channels, out_channels // groups, *kernel_size]
    c_in, c_out = ctx.size(ctx.in_types[0], 1), ctx.size(ctx.out_types[0], 1)
    weight = c_in * (c_out // ctx.value("groups")) * _kernel_volume(n, ctx)
    return weight + (c_out if ctx.value("bias") else 0)


def _conv_transpose_macs(n: int, ctx) -> int:
    # every input element is scattered onto out_channels // groups kernel windows
    c_out = ctx.size(ctx.out_types[0], 1)
    return ctx.numel(ctx.in_types[0]) * (c_out // ctx.value("groups")) * _kernel_volume(n, ctx)


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
    labels = ["chan", *SPATIAL[nd]]
    x = run_time_sizes(draw, sized_input(draw, "x", labels, sizes=[c_in, *sizes]), range(2, nd + 2))
    args: dict[str, Any] = {"out_channels": c_out, "kernel_size": ints(draw, kernel)}
    put(args, "stride", ints(draw, stride, omit_default=1))
    put(args, "padding", padding)
    put(args, "dilation", ints(draw, dilation, omit_default=1))
    put(args, "groups", maybe(draw, groups, groups == 1))
    put(args, "padding_mode", maybe(draw, mode, mode == "zeros"))
    handled = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
    return Case([x], generic_args(draw, spec, x, args, skip=handled))


def _conv_transpose_strategy(nd: int, draw: Draw, spec) -> Case:
    st = strategies()
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [draw(st.integers(0, 2)) for _ in range(nd)]
    extra = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    sizes = []
    for k, s, d, p, e in zip(kernel, stride, dilation, pads, extra):
        short = max(0, 2 * p - d * (k - 1) - e)  # (L - 1) * s must make up for this
        low = 1 + -(-short // s)
        sizes.append(draw(st.integers(low, low + 4)))
    labels = ["chan", *SPATIAL[nd]]
    x = run_time_sizes(draw, sized_input(draw, "x", labels, sizes=[c_in, *sizes]), range(2, nd + 2))
    args: dict[str, Any] = {"out_channels": c_out, "kernel_size": ints(draw, kernel)}
    put(args, "stride", ints(draw, stride, omit_default=1))
    put(args, "padding", ints(draw, pads, omit_default=0))
    put(args, "output_padding", ints(draw, extra, omit_default=0))
    put(args, "dilation", ints(draw, dilation, omit_default=1))
    put(args, "groups", maybe(draw, groups, groups == 1))
    handled = ("out_channels", "kernel_size", "stride", "padding", "output_padding", "dilation", "groups")
    return Case([x], generic_args(draw, spec, x, args, skip=handled))


# ------------------------------------------------------------------------------ the family


_EXAMPLES = {
    1: 'h = x >> conv1d(64, 5, padding="same") >> relu',
    2: "h = img >> conv2d(32, 3, padding=1) >> relu",
    3: "h = vol >> conv3d(16, 3, padding=1) >> relu",
}


def conv_op(n: int) -> OpSpec:
    """The n-d convolution `conv{n}d` (`nn.Conv{n}d`)."""
    spatial = SPATIAL[n]
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


def conv_transpose_op(n: int) -> OpSpec:
    """The n-d transposed convolution `conv_transpose{n}d` (`nn.ConvTranspose{n}d`)."""
    spatial = SPATIAL[n]
    dims = ", ".join(spatial)
    primed = ", ".join(f"{d}'" for d in spatial)
    size = "length" if n == 1 else "size"
    each = f"with {size}'" if n == 1 else f", each with size'"
    return OpSpec(
        name=f"conv_transpose{n}d",
        doc=f"Applies a {n}-d transposed convolution (the gradient of conv{n}d) over a [batch, channel, {dims}] input.",
        family="conv",
        torch_module=f"torch.nn.ConvTranspose{n}d",
        params=_conv_transpose_hyper_params(),
        inferred=("in_channels",),
        omitted={
            **_omitted(),
            "padding_mode": 'torch supports only "zeros" for transposed convolutions',
        },
        example=_TRANSPOSE_EXAMPLES[n],
        has_weights=True,
        shape_doc=(
            f"[batch, channel=in, {dims}] -> [batch, channel=out_channels, {primed}]"
            + (" " if n == 1 else "") + each
            + f" = ({size} - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1"
            " (at least 1)"
        ),
        shape=partial(_conv_transpose_shape, n),
        emit=partial(_conv_transpose_emit, f"nn.ConvTranspose{n}d"),
        params_count=partial(_conv_transpose_params_count, n),
        macs=partial(_conv_transpose_macs, n),
        autotest=partial(_conv_transpose_strategy, n),
    )


_TRANSPOSE_EXAMPLES = {
    1: "h = x >> conv_transpose1d(32, 4, stride=2, padding=1) >> relu",
    2: "up = x >> conv_transpose2d(64, 2, stride=2)",
}

for _n in (1, 2, 3):
    register(conv_op(_n))
for _n in (1, 2):
    register(conv_transpose_op(_n))
