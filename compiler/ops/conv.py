"""The `conv` family: 1-d and 2-d convolutions."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _conv_params() -> tuple[HyperParam, ...]:
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


register(
    OpSpec(
        name="conv1d",
        doc="Applies a 1-d convolution over a [batch, channel, length] input.",
        family="conv",
        torch_module="torch.nn.Conv1d",
        params=_conv_params(),
        inferred=("in_channels",),
        omitted=_omitted(),
        example='h = x >> conv1d(64, 5, padding="same") >> relu',
        has_weights=True,
    )
)

register(
    OpSpec(
        name="conv2d",
        doc="Applies a 2-d convolution over a [batch, channel, height, width] input.",
        family="conv",
        torch_module="torch.nn.Conv2d",
        params=_conv_params(),
        inferred=("in_channels",),
        omitted=_omitted(),
        example="h = img >> conv2d(32, 3, padding=1) >> relu",
        has_weights=True,
    )
)
