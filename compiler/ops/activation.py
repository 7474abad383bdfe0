"""The `activation` family: element-wise non-linearities, softmax, dropout and identity."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

_INPLACE = "emitted code never modifies its input in place (branches may share it)"

register(
    OpSpec(
        name="relu",
        doc="Rectified linear unit, max(x, 0), element-wise.",
        family="activation",
        torch_module="torch.nn.ReLU",
        omitted={"inplace": _INPLACE},
        example="h = x >> linear(128) >> relu",
    )
)

register(
    OpSpec(
        name="gelu",
        doc="Gaussian error linear unit, x * Phi(x), element-wise.",
        family="activation",
        torch_module="torch.nn.GELU",
        params=(
            HyperParam(
                "approximate",
                "str",
                default="none",
                doc='"none" for the exact erf form, "tanh" for the tanh approximation.',
                choices=("none", "tanh"),
            ),
        ),
        example="h = x >> linear(512) >> gelu",
    )
)

register(
    OpSpec(
        name="silu",
        doc="Sigmoid linear unit (swish), x * sigmoid(x), element-wise.",
        family="activation",
        torch_module="torch.nn.SiLU",
        omitted={"inplace": _INPLACE},
        example="h = x >> linear(256) >> silu",
    )
)

register(
    OpSpec(
        name="tanh",
        doc="Hyperbolic tangent, element-wise.",
        family="activation",
        torch_module="torch.nn.Tanh",
        example="h = x >> linear(64) >> tanh",
    )
)

register(
    OpSpec(
        name="sigmoid",
        doc="Logistic sigmoid, 1 / (1 + exp(-x)), element-wise.",
        family="activation",
        torch_module="torch.nn.Sigmoid",
        example="p = x >> linear(1) >> sigmoid",
    )
)


def _softmax_dim() -> HyperParam:
    return HyperParam(
        "dim",
        "dim",
        default=-1,
        doc="Dimension the values are normalised over (a name or an index).",
    )


register(
    OpSpec(
        name="softmax",
        doc="Normalises values along one dimension into probabilities that sum to 1.",
        family="activation",
        torch_module="torch.nn.Softmax",
        params=(_softmax_dim(),),
        example="probs = logits >> softmax(dim=-1)",
    )
)

register(
    OpSpec(
        name="log_softmax",
        doc="Logarithm of softmax along one dimension, computed stably.",
        family="activation",
        torch_module="torch.nn.LogSoftmax",
        params=(_softmax_dim(),),
        example="logp = logits >> log_softmax",
    )
)

register(
    OpSpec(
        name="dropout",
        doc="In training, zeroes each element with probability p and scales the rest by 1/(1-p).",
        family="activation",
        torch_module="torch.nn.Dropout",
        params=(
            HyperParam(
                "p",
                "float",
                default=0.5,
                doc="Probability of an element being zeroed, in [0, 1].",
            ),
        ),
        omitted={"inplace": _INPLACE},
        example="h = x >> linear(128) >> relu >> dropout(0.1)",
    )
)

register(
    OpSpec(
        name="identity",
        doc="Passes its input through unchanged.",
        family="activation",
        torch_module="torch.nn.Identity",
        example="skip = x >> identity",
    )
)
