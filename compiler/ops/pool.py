"""The `pool` family: 2-d max, average and adaptive average pooling."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

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
    )
)
