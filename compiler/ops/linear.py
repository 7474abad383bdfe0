"""The `linear` family: fully connected layers."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

_DEVICE = {
    "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
    "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
}

register(
    OpSpec(
        name="linear",
        doc="Applies an affine map y = x W^T + b over the last dimension.",
        family="linear",
        torch_module="torch.nn.Linear",
        params=(
            HyperParam(
                "out_features",
                "int",
                default=None,
                doc="Width of the output's last dimension.",
                aliases=("out", "size"),
                depends="None (left out) keeps the input's width: linear(x) on 16 features is Linear(16, 16)",
            ),
            HyperParam("bias", "bool", default=True, doc="Whether to learn an additive bias."),
        ),
        inferred=("in_features",),
        omitted={
            "in_features": "inferred from the input's last dimension",
            **_DEVICE,
        },
        example="h = x >> linear(128) >> relu",
        has_weights=True,
    )
)
