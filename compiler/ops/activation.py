"""The `activation` family: element-wise non-linearities, softmax, dropout and identity."""

from __future__ import annotations

from ..tensor_types import Sym
from .context import ShapeCtx
from .registry import Emission, HyperParam, OpSpec, register

_INPLACE = "emitted code never modifies its input in place (branches may share it)"


# ------------------------------------------------------------------------------ rules



def _same(ctx: ShapeCtx):
    ctx.expect_float(ctx.in_types[0])
    return [ctx.in_types[0]]


def _keep(ctx: ShapeCtx):
    return [ctx.in_types[0]]


def _dim_rule(ctx: ShapeCtx):
    ctx.expect_float(ctx.in_types[0])
    ctx.dim_index(ctx.arg("dim"), ctx.in_types[0], from_param=True)
    return [ctx.in_types[0]]


def _dropout_rule(ctx: ShapeCtx):
    p = ctx.arg("p")
    ctx.require(_in_unit(p), "`p` must be between 0 and 1")
    return [ctx.in_types[0]]


def _in_unit(p: Sym) -> Sym:
    value = 0 <= p.value <= 1
    return Sym.const(value) if p.is_const else Sym(value, ("c", value))


def _function(name: str):
    def emit(ctx) -> Emission:
        return Emission(call=f"{name}({ctx.exprs[0]})")

    return emit


def _gelu(ctx) -> Emission:
    approx = ctx.arg("approximate")
    extra = "" if approx.is_const and approx.value == "none" else f", approximate={ctx.rf(approx)}"
    return Emission(call=f"F.gelu({ctx.exprs[0]}{extra})")


def _leaky_relu(ctx) -> Emission:
    slope = ctx.arg("negative_slope")
    extra = "" if slope.is_const and slope.value == 0.01 else f", negative_slope={ctx.rf(slope)}"
    return Emission(call=f"F.leaky_relu({ctx.exprs[0]}{extra})")


def _softmax(name: str):
    def emit(ctx) -> Emission:
        return Emission(call=f"torch.{name}({ctx.exprs[0]}, dim={ctx.dim('dim')})")

    return emit


def _dropout(ctx) -> Emission:
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.Dropout({ctx.r(ctx.arg('p'))})")


def _identity(ctx) -> Emission:
    return Emission(call=ctx.exprs[0])


# ------------------------------------------------------------------------------ the ops

register(
    OpSpec(
        name="relu",
        doc="Rectified linear unit, max(x, 0), element-wise.",
        family="activation",
        torch_module="torch.nn.ReLU",
        omitted={"inplace": _INPLACE},
        example="h = x >> linear(128) >> relu",
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_function("torch.relu"),
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
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_gelu,
    )
)

register(
    OpSpec(
        name="leaky_relu",
        doc="Leaky rectified linear unit, max(x, 0) + negative_slope * min(x, 0), element-wise.",
        family="activation",
        torch_module="torch.nn.LeakyReLU",
        params=(
            HyperParam(
                "negative_slope",
                "float",
                default=0.01,
                doc="Slope of the function for negative inputs.",
                aliases=("slope",),
            ),
        ),
        omitted={"inplace": _INPLACE},
        example="h = x >> conv2d(64, 3, padding=1) >> leaky_relu(0.2)",
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_leaky_relu,
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
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_function("F.silu"),
    )
)

register(
    OpSpec(
        name="tanh",
        doc="Hyperbolic tangent, element-wise.",
        family="activation",
        torch_module="torch.nn.Tanh",
        example="h = x >> linear(64) >> tanh",
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_function("torch.tanh"),
    )
)

register(
    OpSpec(
        name="sigmoid",
        doc="Logistic sigmoid, 1 / (1 + exp(-x)), element-wise.",
        family="activation",
        torch_module="torch.nn.Sigmoid",
        example="p = x >> linear(1) >> sigmoid",
        shape_doc="[*] -> [*] (element-wise)",
        shape=_same,
        emit=_function("torch.sigmoid"),
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
        shape_doc="[*] -> [*] (values along dim sum to 1)",
        shape=_dim_rule,
        emit=_softmax("softmax"),
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
        shape_doc="[*] -> [*] (normalised along dim)",
        shape=_dim_rule,
        emit=_softmax("log_softmax"),
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
        shape_doc="[*] -> [*] (element-wise)",
        shape=_dropout_rule,
        emit=_dropout,
        owns_module=True,
    )
)

register(
    OpSpec(
        name="identity",
        doc="Passes its input through unchanged.",
        family="activation",
        torch_module="torch.nn.Identity",
        example="skip = x >> identity",
        shape_doc="[*] -> [*] (unchanged)",
        shape=_keep,
        emit=_identity,
    )
)
