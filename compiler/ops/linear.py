"""The `linear` family: fully connected layers."""

from __future__ import annotations

from ..tensor_types import Dim
from .context import ShapeCtx
from .registry import Emission, HyperParam, OpSpec, register


def _shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    width = ctx.feature_width()
    out = ctx.int_arg("out_features")
    if out is None:
        out = width
    elif out.value < 1:
        ctx.error(f"`out_features` must be positive, not {out.value}")
    return [x.replace_dim(-1, Dim(x.dims[-1].name, out))]


def _weight_shape(ctx: ShapeCtx):
    width = ctx.feature_width()
    out = ctx.int_arg("out_features")
    return (width if out is None else out, width)


_TIE = HyperParam("tie", "dimname", default=None, keyword_only=True,
                  doc="A `layer` whose weight this op uses (`self.lm_head.weight = self.wte.weight`); the "
                  "weight shapes must be equal. The op keeps its own bias.")


def _params(ctx) -> int:
    width, out = ctx.size(ctx.in_types[0]), ctx.size(ctx.out_types[0])
    return width * out + (out if ctx.value("bias") else 0)


def _macs(ctx) -> int:
    x = ctx.in_types[0]
    return ctx.positions(x) * ctx.size(x) * ctx.size(ctx.out_types[0])


def _emit(ctx) -> Emission:
    x = ctx.in_types[0]
    in_features = ctx.size(x, -1)
    out = ctx.arg("out_features") or in_features
    bias = ctx.arg("bias")
    extra = "" if bias.value is True else f", bias={ctx.r(bias)}"
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})",
                    module=f"nn.Linear({ctx.r(in_features)}, {ctx.r(out)}{extra})")


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
            _TIE,
        ),
        inferred=("in_features",),
        omitted={
            "in_features": "inferred from the input's last dimension",
            **_DEVICE,
        },
        example="h = x >> linear(128) >> relu",
        has_weights=True,
        shape_doc="[*, in] -> [*, out_features]: only the last dimension changes (its name is kept)",
        shape=_shape,
        emit=_emit,
        params_count=_params,
        macs=_macs,
        weight_shape=_weight_shape,
    )
)
