"""The `pool` family: 2-d max, average and adaptive average pooling."""

from __future__ import annotations

from dataclasses import replace

from ..shapes import Dim, OpCtx
from ..sym import Sym
from .conv import keywords, render_ints, spatial_ints, window_size
from .registry import REGISTRY, Emission, HyperParam, OpSpec, register

_STRIDE_DEPENDS = "None (left out) means the same as kernel_size (non-overlapping windows)"


def _kernel() -> HyperParam:
    return HyperParam(
        "kernel_size",
        "ints",
        doc="Size of the pooling window, one integer or one per spatial dimension.",
        aliases=("kernel",),
    )


def _stride() -> HyperParam:
    return HyperParam(
        "stride",
        "ints",
        default=None,
        doc="Step of the window, one integer or one per spatial dimension.",
        depends=_STRIDE_DEPENDS,
    )


def _padding() -> HyperParam:
    return HyperParam(
        "padding",
        "ints",
        default=0,
        doc="Implicit padding on both sides, at most half of kernel_size.",
        depends="must be at most half of kernel_size",
    )


def _ceil_mode() -> HyperParam:
    return HyperParam(
        "ceil_mode", "bool", default=False, doc="Round the output size up instead of down."
    )


register(
    OpSpec(
        name="maxpool2d",
        doc="Takes the maximum over 2-d windows of a [batch, channel, height, width] input.",
        family="pool",
        torch_module="torch.nn.MaxPool2d",
        params=(
            _kernel(),
            _stride(),
            _padding(),
            HyperParam("dilation", "ints", default=1, doc="Spacing between window elements."),
            _ceil_mode(),
        ),
        omitted={
            "return_indices": "the op has one output; unpooling (which needs the indices) is not supported",
        },
        example="h = x >> conv2d(32, 3) >> relu >> maxpool2d(2)",
        shape_doc=(
            "[batch, channel, height, width] -> [batch, channel, height', width'], each with "
            "size' = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1 "
            "(rounded up with ceil_mode)"
        ),
    )
)

register(
    OpSpec(
        name="avgpool2d",
        doc="Averages over 2-d windows of a [batch, channel, height, width] input.",
        family="pool",
        torch_module="torch.nn.AvgPool2d",
        params=(
            _kernel(),
            _stride(),
            _padding(),
            _ceil_mode(),
            HyperParam(
                "count_include_pad",
                "bool",
                default=True,
                doc="Whether zero padding counts in the average's denominator.",
                depends="only matters when padding is not 0",
            ),
            HyperParam(
                "divisor_override",
                "int",
                default=None,
                doc="If given, divide by this instead of the window size.",
            ),
        ),
        example="h = x >> avgpool2d(2)",
        shape_doc=(
            "[batch, channel, height, width] -> [batch, channel, height', width'], each with "
            "size' = (size + 2 * padding - kernel_size) // stride + 1 (rounded up with "
            "ceil_mode)"
        ),
    )
)

register(
    OpSpec(
        name="adaptive_avgpool2d",
        doc="Averages a [batch, channel, height, width] input down to a fixed output height and width.",
        family="pool",
        torch_module="torch.nn.AdaptiveAvgPool2d",
        params=(
            HyperParam(
                "output_size",
                "ints",
                doc="Target (height, width), or one integer for a square output.",
                aliases=("size",),
            ),
        ),
        example="h = x >> adaptive_avgpool2d(1) >> flatten",
        shape_doc=(
            "[batch, channel, height, width] -> [batch, channel, output_size, output_size] "
            "(or the two sizes given)"
        ),
    )
)


# ------------------------------------------------------------------------------ shapes and emission


def _pool_input(ctx: OpCtx):
    (x,) = ctx.inputs
    ctx.expect_rank(x, 4, 4)
    ctx.expect_float(x)
    return x


def _window_shape(ctx: OpCtx):
    x = _pool_input(ctx)
    kernel = spatial_ints(ctx, "kernel_size", 2, 1)
    stride = kernel if ctx.arg("stride") is None else spatial_ints(ctx, "stride", 2, 1)
    pads = spatial_ints(ctx, "padding", 2, 0)
    dilation = spatial_ints(ctx, "dilation", 2, 1) if ctx.arg("dilation") is not None else [Sym.const(1)] * 2
    ceil_mode = bool(ctx.arg("ceil_mode").value)
    if not ctx.arg("ceil_mode").is_const:
        ctx.error("`ceil_mode` must be `true` or `false` here, not a parameter",
                  "the output size depends on it", code="E056")
    divisor = ctx.arg("divisor_override")
    if divisor is not None and divisor.value < 1:
        ctx.error(f"`divisor_override` must be positive, not {divisor.value}")
    dims = list(x.dims)
    for i in range(2):
        k, p = kernel[i], pads[i]
        if p.value > k.value // 2:
            ctx.error(f"`padding` ({p.value}) must be at most half of `kernel_size` ({k.value})",
                      "torch pads only within half a window", code="E055")
        if not (p.is_const and k.is_const):
            ctx.require((p // (k // 2 + 1)).equals(0),  # padding <= kernel_size // 2
                        f"`padding` ({p.render()}) must be at most half of `kernel_size` ({k.render()})")
        size = window_size(ctx, x, 2 + i, k, stride[i], p, dilation[i], ceil_mode)
        if size is not None and size.value < 1:
            label = x.dims[2 + i].name or f"{2 + i}"
            ctx.error(f"the output of dimension `{label}` would be empty ({size.value})", code="E055")
        dims[2 + i] = Dim(x.dims[2 + i].name, size)
    return [x.with_dims(dims)]


def _adaptive_shape(ctx: OpCtx):
    x = _pool_input(ctx)
    sizes = spatial_ints(ctx, "output_size", 2, 1)
    dims = list(x.dims)
    for i in range(2):
        dims[2 + i] = Dim(x.dims[2 + i].name, sizes[i])
    return [x.with_dims(dims)]


def _window_emit(ctx) -> Emission:
    cls = "nn.MaxPool2d" if ctx.spec.name == "maxpool2d" else "nn.AvgPool2d"
    stride = ctx.arg("stride")
    kw = "" if stride is None else f", stride={render_ints(ctx, stride)}"
    defaults = {"padding": 0, "dilation": 1, "ceil_mode": False}
    if ctx.spec.name == "avgpool2d":
        defaults = {"padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None}
    kw += keywords(ctx, defaults)
    module = f"{cls}({render_ints(ctx, ctx.arg('kernel_size'))}{kw})"
    return Emission(call=f"{ctx.m}({ctx.inputs[0]})", module=module)


def _adaptive_emit(ctx) -> Emission:
    size = ctx.arg("output_size")
    return Emission(call=f"{ctx.m}({ctx.inputs[0]})", module=f"nn.AdaptiveAvgPool2d({render_ints(ctx, size)})")


_RULES = {
    "maxpool2d": (_window_shape, _window_emit),
    "avgpool2d": (_window_shape, _window_emit),
    "adaptive_avgpool2d": (_adaptive_shape, _adaptive_emit),
}
for _name, (_shape, _emit) in _RULES.items():
    register(replace(REGISTRY[_name], shape=_shape, emit=_emit), replace=True)
