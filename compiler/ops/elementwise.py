"""The `elementwise` family (LANGUAGE.md section 13): math functions applied to every element.

`exp log sqrt abs pow clamp` and `normalize` keep the input's shape and type. They take
floating-point tensors; `abs` and `clamp` also integer ones (token ids, counts), which stay
integers: torch keeps an integer tensor's type for `abs`, and for `clamp` with integer bounds
(a float bound would make the result float32, so it is refused on an integer tensor).
"""

from __future__ import annotations

import math
from typing import Any

from ..tensor_types import FLOAT_DTYPES, INT_DTYPES, Sym
from .activation import INT_RANGE, scalar_fits
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, dim_ref, float_input, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register

_ELEMENTWISE = "[*] -> [*] (element-wise, same type)"


# ------------------------------------------------------------------------------ rules


def _float(ctx: ShapeCtx):
    ctx.expect_float(ctx.in_types[0])
    return [ctx.in_types[0]]


def _expect_numeric(ctx: ShapeCtx, t) -> None:
    if t.dtype not in FLOAT_DTYPES and t.dtype not in INT_DTYPES:
        ctx.error(f"`{ctx.input_names[0]}` is {t.dtype}, but a floating-point or integer tensor is needed",
                  code="E054")


def _numeric(ctx: ShapeCtx):
    _expect_numeric(ctx, ctx.in_types[0])
    return [ctx.in_types[0]]


def _pow_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_float(x)
    # the exponent is converted to a half-precision input's own type; float32/64 take any float
    scalar_fits(ctx, "exponent", x.dtype if x.dtype in ("float16", "bfloat16") else "float64")
    return [x]


def _clamp_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    _expect_numeric(ctx, x)
    bounds = [(n, ctx.arg(n)) for n in ("min", "max") if ctx.arg(n) is not None]
    if not bounds:
        ctx.error("give `min`, `max` or both", "`clamp(min=0.0)` clips from below, `clamp(-1.0, 1.0)` both ways")
    for name, s in bounds:
        if x.dtype in INT_DTYPES and isinstance(s.value, float):
            ctx.error(f"`{name}` ({_shown(s)}) is a float, but `{ctx.input_names[0]}` is {x.dtype}: torch would "
                      "give a float32 result, and clamp keeps the input's type",
                      f"give an integer bound, e.g. `{name}={_whole(s.value)}`", code="E054")
        scalar_fits(ctx, name, x.dtype)  # torch converts the bounds to the input's type
        if x.dtype in INT_RANGE and x.dtype != "int64" and not s.is_const:
            # a bound over parameters must fit a narrow integer type for any value they take
            low, high = INT_RANGE[x.dtype]
            ctx.require(s.at_least(low), f"`{name}` must be at least {low} for a {x.dtype} input")
            ctx.require(Sym.const(high).at_least(s), f"`{name}` must be at most {high} for a {x.dtype} input")
    return [x]


def _normalize_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    ctx.expect_float(x)
    ctx.dim_index(ctx.arg("dim"), x, from_param=True)
    scalar_fits(ctx, "eps", x.dtype)  # the norm is clamped to eps in the input's type
    return [x]


def _whole(v: float) -> int:
    return int(v) if math.isfinite(v) else 0


def _shown(s: Sym) -> str:
    return str(s.value) if s.is_const else f"{s.render()} = {s.value}"


# ------------------------------------------------------------------------------ emission


def _function(name: str):
    def emit(ctx) -> Emission:
        return Emission(call=f"{name}({ctx.exprs[0]})")

    return emit


def _pow_emit(ctx) -> Emission:
    return Emission(call=f"torch.pow({ctx.exprs[0]}, {ctx.rf(ctx.arg('exponent'))})")


def _clamp_emit(ctx) -> Emission:
    given = "".join(f", {n}={ctx.rf(ctx.arg(n))}" for n in ("min", "max") if ctx.arg(n) is not None)
    return Emission(call=f"torch.clamp({ctx.exprs[0]}{given})")


def _normalize_emit(ctx) -> Emission:
    p, eps = ctx.arg("p"), ctx.arg("eps")
    # dim is always written: torch's default is 1, tg's the last dimension
    parts = [ctx.exprs[0]]
    if not (p.is_const and p.value == 2.0):
        parts.append(f"p={ctx.rf(p)}")
    parts.append(f"dim={ctx.dim('dim')}")
    if not (eps.is_const and eps.value == 1e-12):
        parts.append(f"eps={ctx.rf(eps)}")
    return Emission(call=f"F.normalize({', '.join(parts)})")


# ------------------------------------------------------------------------------ autotest


def _any_input(draw: Draw) -> Tensor:
    """A float input, or now and then an integer one."""
    st = strategies()
    x = float_input(draw, "x")
    if draw(st.booleans()):
        x.dtype = draw(st.sampled_from(["int64", "int32", "uint8"]))
    return x


def _abs_strategy(draw: Draw, spec) -> Case:
    return Case([_any_input(draw)])


def _clamp_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = _any_input(draw)
    whole = x.dtype != "float32"
    lows = [0, 1, 2] if whole else [-1.0, 0.0, 0.5, 0]
    highs = [3, 6, 200] if whole else [1.0, 6.0, 2.5, 3]
    args: dict[str, Any] = {}
    which = draw(st.sampled_from(["min", "max", "both"]))
    if which in ("min", "both"):
        args["min"] = draw(st.sampled_from(lows))
    if which in ("max", "both"):
        args["max"] = draw(st.sampled_from(highs))
    return Case([x], args)


def _pow_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    return Case([float_input(draw, "x")], {"exponent": draw(st.sampled_from([2, 3, 0.5, -1.0, 1.5, 0]))})


def _normalize_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x")
    args: dict[str, Any] = {}
    put(args, "p", maybe(draw, draw(st.sampled_from([1.0, 3.0, 0.5, 1]))))
    k = draw(st.sampled_from(list(range(x.rank))))
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    put(args, "eps", maybe(draw, draw(st.sampled_from([1e-6, 1e-3, 0.1]))))
    return Case([x], args)


# ------------------------------------------------------------------------------ the ops

# The float functions without hyper-parameters: (name, doc, example, shape doc, shape rule, emission).
_PLAIN = (
    ('exp', "Exponential, e ** x, element-wise (floating-point inputs).", "scale = x >> linear(64) >> exp", _ELEMENTWISE, _float, _function("torch.exp")),
    ('log', "Natural logarithm, element-wise (floating-point inputs; NaN below 0, -inf at 0).", "logp = x >> softmax >> log", _ELEMENTWISE, _float, _function("torch.log")),
    ('sqrt', "Square root, element-wise (floating-point inputs; NaN below 0).", "std = x >> softplus >> sqrt", _ELEMENTWISE, _float, _function("torch.sqrt")),
)

for _name, _doc, _example, _shape_doc, _shape, _emit in _PLAIN:
    register(OpSpec(name=_name, doc=_doc, family="elementwise", example=_example, shape_doc=_shape_doc,
                    shape=_shape, emit=_emit))

register(
    OpSpec(
        name="abs",
        doc="Absolute value, element-wise (floating-point or integer inputs, which keep their type).",
        family="elementwise",
        example="magnitude = x >> abs",
        shape_doc=_ELEMENTWISE,
        shape=_numeric,
        emit=_function("torch.abs"),
        autotest=_abs_strategy,
    )
)

register(
    OpSpec(
        name="pow",
        doc="Raises every element to a fixed power, x ** exponent (floating-point inputs).",
        family="elementwise",
        params=(
            HyperParam("exponent", "float", doc="The power: a number (an integer or a float)."),
        ),
        example="sq = x >> pow(2)",
        shape_doc=_ELEMENTWISE,
        shape=_pow_shape,
        emit=_pow_emit,
        autotest=_pow_strategy,
    )
)

register(
    OpSpec(
        name="clamp",
        doc="Clips every element to [min, max] (floating-point inputs, or integer ones with integer bounds).",
        family="elementwise",
        params=(
            HyperParam("min", "float", default=None, doc="Lower bound; none when left out.",
                       depends="at least one of min and max is needed; integer inputs take integer bounds"),
            HyperParam("max", "float", default=None, doc="Upper bound; none when left out.",
                       depends="at least one of min and max is needed; integer inputs take integer bounds"),
        ),
        example="h = x >> linear(64) >> clamp(min=0.0, max=6.0)",
        shape_doc=_ELEMENTWISE,
        shape=_clamp_shape,
        emit=_clamp_emit,
        autotest=_clamp_strategy,
    )
)

register(
    OpSpec(
        name="normalize",
        doc="Divides by the p-norm along one dimension, x / max(norm_p(x), eps), as F.normalize.",
        family="elementwise",
        params=(
            HyperParam("p", "float", default=2.0, doc="Exponent of the norm (2 for the Euclidean length)."),
            HyperParam("dim", "dim", default=-1,
                       doc="Dimension the norm is taken over (a name or an index); the last one by default.",
                       depends="torch's own default is dim=1; the emitted call always gives dim"),
            HyperParam("eps", "float", default=1e-12,
                       doc="Lower bound of the norm, so a zero vector stays finite."),
        ),
        example="z = x >> linear(128) >> normalize(dim=-1)",
        shape_doc="[*] -> [*] (unit p-norm along dim)",
        shape=_normalize_shape,
        emit=_normalize_emit,
        autotest=_normalize_strategy,
    )
)
