"""The `norm` family: layer and batch normalisation."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

_DEVICE = {
    "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
    "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
}

_EPS = HyperParam("eps", "float", default=1e-5, doc="Added to the variance for numerical stability.")

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
    )
)


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

register(
    OpSpec(
        name="batchnorm1d",
        doc="Normalises each channel over the batch (and length) of a [batch, channel] or [batch, channel, length] input.",
        family="norm",
        torch_module="torch.nn.BatchNorm1d",
        params=_bn_params(),
        inferred=("num_features",),
        omitted=dict(_BN_OMITTED),
        example="h = x >> linear(128) >> batchnorm1d >> relu",
        has_weights=True,
    )
)

register(
    OpSpec(
        name="batchnorm2d",
        doc="Normalises each channel over the batch, height and width of a [batch, channel, height, width] input.",
        family="norm",
        torch_module="torch.nn.BatchNorm2d",
        params=_bn_params(),
        inferred=("num_features",),
        omitted=dict(_BN_OMITTED),
        example="h = x >> conv2d(32, 3, padding=1) >> batchnorm2d >> relu",
        has_weights=True,
    )
)
