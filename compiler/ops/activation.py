"""The `activation` family: element-wise non-linearities, softmax, dropout and identity.

Also `prelu` (one learned slope, or one per channel) and `glu` (a gate that halves a dimension).
`scalar_fits` is the check, shared with the `elementwise` family, that a number argument is one
torch can convert to the type it computes in.
"""

from __future__ import annotations

import math
from typing import Any

from ..tensor_types import Dim, Sym, tidy
from .common import is_default
from .context import ShapeCtx
from .drawing import Case, Draw, dim_ref, float_input, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register

_INPLACE = "emitted code never modifies its input in place (branches may share it)"
_ELEMENTWISE = "[*] -> [*] (element-wise)"


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

# The element-wise functions without hyper-parameters: one row each (name, doc, torch module,
# whether that module takes `inplace`, example, shape doc, shape rule, emission).
_PLAIN = (
    ('relu', "Rectified linear unit, max(x, 0), element-wise.", "torch.nn.ReLU", True, "h = x >> linear(128) >> relu", _ELEMENTWISE, _same, _function("torch.relu")),
    ('silu', "Sigmoid linear unit (swish), x * sigmoid(x), element-wise.", "torch.nn.SiLU", True, "h = x >> linear(256) >> silu", _ELEMENTWISE, _same, _function("F.silu")),
    ('tanh', "Hyperbolic tangent, element-wise.", "torch.nn.Tanh", False, "h = x >> linear(64) >> tanh", _ELEMENTWISE, _same, _function("torch.tanh")),
    ('sigmoid', "Logistic sigmoid, 1 / (1 + exp(-x)), element-wise.", "torch.nn.Sigmoid", False, "p = x >> linear(1) >> sigmoid", _ELEMENTWISE, _same, _function("torch.sigmoid")),
    ('relu6', "ReLU capped at 6, min(max(x, 0), 6), element-wise.", "torch.nn.ReLU6", True, "h = x >> conv2d(32, 3, padding=1) >> relu6", _ELEMENTWISE, _same, _function("F.relu6")),
    ('selu', "Scaled exponential linear unit, scale * elu(x, alpha) with torch's fixed constants, element-wise.", "torch.nn.SELU", True, "h = x >> linear(128) >> selu", _ELEMENTWISE, _same, _function("F.selu")),
    ('hardswish', "Hard swish, x * relu6(x + 3) / 6, element-wise (MobileNetV3).", "torch.nn.Hardswish", True, "h = x >> conv2d(16, 3, padding=1) >> hardswish", _ELEMENTWISE, _same, _function("F.hardswish")),
    ('hardsigmoid', "Hard sigmoid, relu6(x + 3) / 6, element-wise.", "torch.nn.Hardsigmoid", True, "g = x >> linear(64) >> hardsigmoid", _ELEMENTWISE, _same, _function("F.hardsigmoid")),
    ('mish', "Mish, x * tanh(softplus(x)), element-wise.", "torch.nn.Mish", True, "h = x >> linear(128) >> mish", _ELEMENTWISE, _same, _function("F.mish")),
)

for _name, _doc, _module, _inplace, _example, _shape_doc, _shape, _emit in _PLAIN:
    register(
        OpSpec(
            name=_name,
            doc=_doc,
            family="activation",
            torch_module=_module,
            omitted={"inplace": _INPLACE} if _inplace else {},
            example=_example,
            shape_doc=_shape_doc,
            shape=_shape,
            emit=_emit,
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


# ------------------------------------------------------------------------------ number arguments
#
# torch converts a number argument to the type it computes in before using it, and refuses one
# that overflows that type ("value cannot be converted to type c10::Half without overflow"):
# `clamp(max=1e10)` on a float16 input, `elu(alpha=1e300)` on any but float64. Infinities and
# NaN convert; a Python int outside int64 never does. For uint8 torch wraps -255..-1 around
# instead (-1 is 255), which `clamp(min=-1)` never means: refused too. Only the checked value
# is tested (clamp also asserts narrow integer bounds over parameters): a re-parametrised module
# that passes such a number gets torch's own error when it runs.

_FLOAT_MAX = {
    "float64": 1.7976931348623157e308,
    "float32": 3.4028234663852886e38,
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
}
INT_RANGE = {
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int8": (-128, 127),
    "uint8": (0, 255),
}


def scalar_fits(ctx: ShapeCtx, name: str, dtype: str) -> None:
    """The number argument `name` (if given) must convert to `dtype` without overflow."""
    s = ctx.arg(name)
    if not isinstance(s, Sym) or s.value is None or isinstance(s.value, bool):
        return
    v = s.value
    low64, high64 = INT_RANGE["int64"]
    if isinstance(v, int) and not low64 <= v <= high64:
        ctx.error(f"`{name}` ({v}) does not fit in a 64-bit integer, which torch converts it to",
                  "write it as a float, e.g. `1e30`", code="E055")
    if dtype in INT_RANGE:
        low, high = INT_RANGE[dtype]
    else:
        if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
            return
        high = _FLOAT_MAX[dtype]
        low = -high
    if not low <= v <= high:
        # torch refuses it, except a small negative number for uint8, which it wraps (-1 is 255)
        wraps = " (torch would wrap it around)" if dtype == "uint8" and v >= -high else ""
        ctx.error(f"`{name}` ({v}) is outside the range of {dtype} [{low:g}, {high:g}], the type torch "
                  f"computes it in{wraps}", code="E055")


def _opmath(dtype: str) -> str:
    """The type torch computes a float activation's own number arguments in."""
    return "float64" if dtype == "float64" else "float32"


def _scalars_rule(*names: str, within=_opmath):
    """A float element-wise rule whose number arguments `names` must fit `within(dtype)`."""

    def rule(ctx: ShapeCtx):
        x = ctx.in_types[0]
        ctx.expect_float(x)
        for name in names:
            scalar_fits(ctx, name, within(x.dtype))
        return [x]

    return rule


def _forward_keywords(ctx, defaults: dict[str, Any]) -> str:
    """`, name=value` for each argument that differs from torch's default, rendered for forward."""
    return "".join(f", {n}={ctx.rf(ctx.arg(n))}" for n, d in defaults.items() if not is_default(ctx.arg(n), d))


def _function_kw(name: str, defaults: dict[str, Any]):
    def emit(ctx) -> Emission:
        return Emission(call=f"{name}({ctx.exprs[0]}{_forward_keywords(ctx, defaults)})")

    return emit


def _hardtanh_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_float(x)
    for name in ("min_val", "max_val"):
        scalar_fits(ctx, name, x.dtype)  # hardtanh converts its bounds to the input's type
    low, high = ctx.arg("min_val"), ctx.arg("max_val")
    ctx.require(high.at_least(low), f"`min_val` ({_shown(low)}) cannot be greater than `max_val` ({_shown(high)})")
    return [x]


def _shown(s: Sym) -> str:
    return str(s.value) if s.is_const else f"{s.render()} = {s.value}"


# ------------------------------------------------------------------------------ prelu


def _prelu_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_rank(x, 1)
    ctx.expect_float(x)
    num = ctx.arg("num_parameters")
    if num.value < 1:
        ctx.error(f"`num_parameters` must be positive, not {num.value}",
                  "1 learns one slope for every element; the channel count learns one per channel")
    scalar_fits(ctx, "init", "float32")  # nn.PReLU fills its float32 weight with it
    if num.is_const and num.value == 1:
        return [x]
    # torch applies one slope per channel: the size of dimension 1 (1 for an input of rank 1)
    given = f"`num_parameters` ({_shown(num)})"
    hint = "use `prelu` (one slope) or `prelu(C)` with C the size of dimension 1"
    # where there is no channel count to match, the only valid count is 1 (asserted in __init__
    # when it is a parameter)
    channel = x.dims[1] if x.rank >= 2 else None
    size = None if channel is None or channel.batch else channel.extent
    if size is None:
        why = ("this input has none" if channel is None else "which is the batch here" if channel.batch else
               "which has no size here")
        ctx.require(num.equals(1), f"{given} must be 1 for `{ctx.input_names[0]}` {x.show()}: PReLU learns "
                    f"one slope per channel, dimension 1, {why}", hint)
        return [x]
    label = f"`{channel.name}`" if channel.name else "1"
    shown = size.render() if size.value is None else _shown(size)
    message = (f"{given} must be 1 or the number of channels, the size of dimension {label} of "
               f"`{ctx.input_names[0]}` ({shown})")
    if num.same_expr(size):
        return [x]  # `prelu(c)` on `c` channels: equal for every value
    if num.is_const:
        ctx.require(num.equals(size), message, hint)
    else:  # a parameter may be re-set to 1 or to the channel count: (n - 1) * (n - C) == 0
        ctx.require(((num - 1) * (num - size)).equals(0), message, hint)
    return [x]


def _prelu_emit(ctx) -> Emission:
    num, init = ctx.arg("num_parameters"), ctx.arg("init")
    args = [] if is_default(num, 1) else [ctx.r(num)]
    if not is_default(init, 0.25):
        args.append(f"init={ctx.r(init)}")
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.PReLU({', '.join(args)})")


def _prelu_params(ctx) -> int:
    return ctx.value("num_parameters")


def _prelu_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", min_rank=1)
    args: dict[str, Any] = {}
    channels = x.size(1) if x.rank >= 2 else None
    if channels is not None and draw(st.booleans()):
        args["num_parameters"] = channels
    elif draw(st.booleans()):
        args["num_parameters"] = 1
    put(args, "init", maybe(draw, draw(st.sampled_from([0.1, 0.0, -0.5, 1]))))
    return Case([x], args)


# ------------------------------------------------------------------------------ glu


def _half(size: Sym) -> Sym | None:
    """`size // 2` without a remainder by construction (`hidden * 2` halves to `hidden`), else None."""
    tree = size.tree
    if tree[0] == "c" and isinstance(tree[1], int) and tree[1] % 2 == 0:
        return Sym.const(tree[1] // 2)
    if tree[0] != "*":
        return None
    for factor, other in ((tree[2], tree[1]), (tree[1], tree[2])):
        if factor[0] == "c" and isinstance(factor[1], int) and not isinstance(factor[1], bool) \
                and factor[1] % 2 == 0:
            m = factor[1] // 2
            return Sym(size.value // 2, other if m == 1 else ("*", other, ("c", m)), size.placeholder)
    return None


def _glu_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_float(x)
    k = ctx.dim_index(ctx.arg("dim"), x, from_param=True)
    d = x.dims[k]
    if d.batch:
        ctx.error("halving the batch dimension is not supported: every value keeps its batch", code="E052")
    label = f"`{d.name}`" if d.name else f"{k}"
    length = d.extent
    half = None
    if d.size is not None:
        half = _half(d.size)
        ctx.require(Sym.const(True) if half is not None else (d.size % 2).equals(0),
                    f"dimension {label} of `{ctx.input_names[0]}` ({_shown(d.size)}) must be even: glu halves it "
                    "into the values and their gates",
                    "give the dimension an even size, e.g. with `linear(2 * d)` before `glu`")
        if half is None:
            half = d.size // 2
    elif length is not None:
        # a run-time size: a requirement on the inputs, like chunk's
        ctx.require((length % 2).equals(0), f"dimension {label} of `{ctx.input_names[0]}` must be even: "
                    "glu halves it into the values and their gates")
        half = tidy(length // 2)
    return [x.replace_dim(k, Dim.of(d.name, half))]


def _glu_emit(ctx) -> Emission:
    dim = ctx.dim("dim")
    extra = "" if dim == "-1" else f", dim={dim}"
    return Emission(call=f"F.glu({ctx.exprs[0]}{extra})")


def _glu_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", low=1, high=4)
    # every sized dimension after the batch an even size, so any of them can be halved
    x.dims = [(n, s if s is None else 2 * s) for n, s in x.dims]
    k = draw(st.sampled_from(list(range(1, x.rank))))
    args: dict[str, Any] = {}
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    return Case([x], args)


# ------------------------------------------------------------------------------ strategies


def _hardtanh_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    args: dict[str, Any] = {}
    put(args, "min_val", maybe(draw, draw(st.sampled_from([-2.0, -0.5, 0.0, -3]))))
    put(args, "max_val", maybe(draw, draw(st.sampled_from([0.5, 2.0, 6.0, 3]))))
    return Case([x], args)


def _softplus_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    args: dict[str, Any] = {}
    put(args, "beta", maybe(draw, draw(st.sampled_from([0.5, 2.0, 10.0, 3]))))
    put(args, "threshold", maybe(draw, draw(st.sampled_from([1.0, 5.0, 40.0, 10]))))
    return Case([x], args)


def _elu_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    args: dict[str, Any] = {}
    put(args, "alpha", maybe(draw, draw(st.sampled_from([0.5, 2.0, 1.5, 2]))))
    return Case([x], args)


# ------------------------------------------------------------------------------ more ops (v0.4)


register(
    OpSpec(
        name="elu",
        doc="Exponential linear unit, x for x > 0 and alpha * (exp(x) - 1) otherwise, element-wise.",
        family="activation",
        torch_module="torch.nn.ELU",
        params=(
            HyperParam(
                "alpha",
                "float",
                default=1.0,
                doc="Scale of the negative part, alpha * (exp(x) - 1): the output tends to -alpha.",
            ),
        ),
        omitted={"inplace": _INPLACE},
        example="h = x >> linear(128) >> elu(alpha=0.5)",
        shape_doc=_ELEMENTWISE,
        shape=_scalars_rule("alpha"),
        emit=_function_kw("F.elu", {"alpha": 1.0}),
        autotest=_elu_strategy,
    )
)

register(
    OpSpec(
        name="hardtanh",
        doc="Clips values to [min_val, max_val], element-wise.",
        family="activation",
        torch_module="torch.nn.Hardtanh",
        params=(
            HyperParam("min_val", "float", default=-1.0, doc="Lower end of the output range.",
                       aliases=("min",), depends="must not exceed max_val"),
            HyperParam("max_val", "float", default=1.0, doc="Upper end of the output range.",
                       aliases=("max",), depends="must not be below min_val"),
        ),
        omitted={
            "inplace": _INPLACE,
            "min_value": "deprecated spelling of min_val",
            "max_value": "deprecated spelling of max_val",
        },
        example="h = x >> linear(64) >> hardtanh(-2.0, 2.0)",
        shape_doc=_ELEMENTWISE,
        shape=_hardtanh_shape,
        emit=_function_kw("F.hardtanh", {"min_val": -1.0, "max_val": 1.0}),
        autotest=_hardtanh_strategy,
    )
)

register(
    OpSpec(
        name="softplus",
        doc="Smooth ReLU, log(1 + exp(beta * x)) / beta, element-wise.",
        family="activation",
        torch_module="torch.nn.Softplus",
        params=(
            HyperParam("beta", "float", default=1.0, doc="Sharpness: larger values are closer to relu."),
            HyperParam("threshold", "float", default=20.0,
                       doc="Above beta * x > threshold the function is the identity, for numerical stability."),
        ),
        example="sigma = x >> linear(1) >> softplus",
        shape_doc=_ELEMENTWISE,
        shape=_scalars_rule("beta", "threshold"),
        emit=_function_kw("F.softplus", {"beta": 1.0, "threshold": 20.0}),
        autotest=_softplus_strategy,
    )
)

register(
    OpSpec(
        name="prelu",
        doc="Leaky ReLU with a learned negative slope: one for all elements, or one per channel (dimension 1).",
        family="activation",
        torch_module="torch.nn.PReLU",
        params=(
            HyperParam(
                "num_parameters",
                "int",
                default=1,
                doc="Number of learned slopes: 1, or the number of channels (the size of dimension 1).",
                depends="more than 1 must equal the size of the input's dimension 1, where torch applies it",
            ),
            HyperParam("init", "float", default=0.25, doc="Initial value of every slope."),
        ),
        omitted={
            "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
            "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
        },
        example="h = x >> conv2d(32, 3, padding=1) >> prelu(32)",
        has_weights=True,
        shape_doc="[batch, C, *] -> [batch, C, *] (element-wise; num_parameters is 1 or C)",
        shape=_prelu_shape,
        emit=_prelu_emit,
        params_count=_prelu_params,
        autotest=_prelu_strategy,
    )
)

register(
    OpSpec(
        name="glu",
        doc="Gated linear unit: splits dim in halves a and b and gives a * sigmoid(b).",
        family="activation",
        torch_module="torch.nn.GLU",
        params=(
            HyperParam(
                "dim",
                "dim",
                default=-1,
                doc="Dimension to halve (a name or an index); the last one by default.",
                depends="its size must be even",
            ),
        ),
        example="h = x >> linear(256) >> glu",
        shape_doc="[..., 2 * n, ...] -> [..., n, ...] along dim",
        shape=_glu_shape,
        emit=_glu_emit,
        autotest=_glu_strategy,
    )
)
