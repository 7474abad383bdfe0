"""The `pool` family: 2-d max, average and adaptive average pooling.

The two windowed pools are built by one factory, `pool_op(kind)`, from a small table of per-kind
facts (`_KINDS`: the class, the hyper-parameters, the keywords emitted when not at their
defaults); the adaptive pool, with its own shape rule, is declared on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from ..tensor_types import Dim, Sym
from .common import keywords, render_ints, spatial_ints, window_size
from .context import ShapeCtx
from .drawing import Case, Draw, generic_args, ints, maybe, put, sized_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

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


# ------------------------------------------------------------------------------ rules


def _pool_input(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 4, 4)
    ctx.expect_float(x)
    return x


def _window_shape(ctx: ShapeCtx):
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
        if size is not None and size.value is not None and size.value < 1:
            label = x.dims[2 + i].name or f"{2 + i}"
            ctx.error(f"the output of dimension `{label}` would be empty ({size.value})", code="E055")
        if size is not None and size.value is None:
            ctx.require(size.at_least(1), f"the output of dimension `{x.dims[2 + i].name or 2 + i}` must "
                        "not be empty")
        dims[2 + i] = Dim.of(x.dims[2 + i].name, size) if size is not None else x.dims[2 + i]
    return [x.with_dims(dims)]


def _window_emit(kind: "_Kind", ctx) -> Emission:
    stride = ctx.arg("stride")
    kw = "" if stride is None else f", stride={render_ints(ctx, stride)}"
    kw += keywords(ctx, kind.defaults)
    module = f"{kind.cls}({render_ints(ctx, ctx.arg('kernel_size'))}{kw})"
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=module)


def _adaptive_shape(ctx: ShapeCtx):
    x = _pool_input(ctx)
    sizes = spatial_ints(ctx, "output_size", 2, 1)
    dims = list(x.dims)
    for i in range(2):
        dims[2 + i] = Dim(x.dims[2 + i].name, sizes[i])
    return [x.with_dims(dims)]


def _adaptive_emit(ctx) -> Emission:
    size = ctx.arg("output_size")
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.AdaptiveAvgPool2d({render_ints(ctx, size)})")


# ------------------------------------------------------------------------------ autotest


def _window_strategy(kind: "_Kind", draw: Draw, spec) -> Case:
    st = strategies()
    kernel = [draw(st.integers(1, 3)) for _ in range(2)]
    stride = [draw(st.integers(1, 3)) for _ in range(2)]
    pads = [draw(st.integers(0, k // 2)) for k in kernel]
    dilation = [draw(st.integers(1, 2)) for _ in range(2)] if kind.dilation else [1, 1]
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        low = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(low, max(low, 7))))
    x = sized_input(draw, "x", ["chan", "height", "width"], sizes=[draw(st.integers(1, 3)), *sizes])
    args: dict[str, Any] = {"kernel_size": ints(draw, kernel)}
    put(args, "stride", None if draw(st.booleans()) else ints(draw, stride))
    put(args, "padding", ints(draw, pads, omit_default=0))
    if kind.dilation:
        put(args, "dilation", ints(draw, dilation, omit_default=1))
    if kind.divisor_override:
        put(args, "divisor_override", maybe(draw, draw(st.integers(1, 3))))
    handled = ("kernel_size", "stride", "padding", "dilation", "divisor_override")
    return Case([x], generic_args(draw, spec, x, args, skip=handled))


def _adaptive_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = sized_input(draw, "x", ["chan", "height", "width"], high=6)
    out = [draw(st.integers(1, 4)) for _ in range(2)]
    return Case([x], {"output_size": ints(draw, out)})


# ------------------------------------------------------------------------------ the family


@dataclass(frozen=True)
class _Kind:
    """What tells one windowed pool from the other."""

    name: str
    cls: str  # the emitted class, `nn.MaxPool2d`
    doc: str
    params: tuple[HyperParam, ...]
    # the keywords emitted after kernel_size and stride, each when not at this (torch's) default
    defaults: dict[str, Any]
    example: str
    shape_doc: str
    omitted: dict[str, str]
    dilation: bool  # has a `dilation` hyper-parameter
    divisor_override: bool  # has a `divisor_override` hyper-parameter


_KINDS = {
    "max": _Kind(
        name="maxpool2d",
        cls="nn.MaxPool2d",
        doc="Takes the maximum over 2-d windows of a [batch, channel, height, width] input.",
        params=(
            _kernel(),
            _stride(),
            _padding(),
            HyperParam("dilation", "ints", default=1, doc="Spacing between window elements."),
            _ceil_mode(),
        ),
        defaults={"padding": 0, "dilation": 1, "ceil_mode": False},
        example="h = x >> conv2d(32, 3) >> relu >> maxpool2d(2)",
        shape_doc=(
            "[batch, channel, height, width] -> [batch, channel, height', width'], each with "
            "size' = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1 "
            "(rounded up with ceil_mode)"
        ),
        omitted={
            "return_indices": "the op has one output; unpooling (which needs the indices) is not supported",
        },
        dilation=True,
        divisor_override=False,
    ),
    "avg": _Kind(
        name="avgpool2d",
        cls="nn.AvgPool2d",
        doc="Averages over 2-d windows of a [batch, channel, height, width] input.",
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
        defaults={"padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None},
        example="h = x >> avgpool2d(2)",
        shape_doc=(
            "[batch, channel, height, width] -> [batch, channel, height', width'], each with "
            "size' = (size + 2 * padding - kernel_size) // stride + 1 (rounded up with "
            "ceil_mode)"
        ),
        omitted={},
        dilation=False,
        divisor_override=True,
    ),
}


def pool_op(kind: str) -> OpSpec:
    """The windowed 2-d pool of `kind` ("max" or "avg"): `maxpool2d`, `avgpool2d`."""
    facts = _KINDS[kind]
    return OpSpec(
        name=facts.name,
        doc=facts.doc,
        family="pool",
        torch_module=f"torch.{facts.cls}",
        params=facts.params,
        omitted=dict(facts.omitted),
        example=facts.example,
        shape_doc=facts.shape_doc,
        shape=_window_shape,
        emit=partial(_window_emit, facts),
        owns_module=True,  # `nn.MaxPool2d(...)`, without weights
        autotest=partial(_window_strategy, facts),
    )


for _kind in _KINDS:
    register(pool_op(_kind))

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
        shape=_adaptive_shape,
        emit=_adaptive_emit,
        owns_module=True,  # `nn.AdaptiveAvgPool2d(...)`, without weights
        autotest=_adaptive_strategy,
    )
)
