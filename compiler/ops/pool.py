"""The `pool` family: 1-, 2- and 3-d max and average pooling, 1- and 2-d adaptive pooling.

The windowed pools are built by one factory, `pool_op(kind, n)`, from the per-kind facts that
`_window_kind` derives for a rank (the class, the hyper-parameters, the keywords emitted when not
at their defaults); the adaptive pools, with their own shape rule, by `adaptive_pool_op(kind, n)`.
One shape rule serves every rank: the window arithmetic is `common.window_size`, as for conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from ..tensor_types import Dim, Sym, TType
from .common import SPATIAL, at_least, keywords, render_ints, show_size, spatial_ints, window_size
from .context import ShapeCtx
from .drawing import Case, Draw, generic_args, ints, maybe, put, run_time_sizes, sized_input, strategies
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


INT32_MAX = 2**31 - 1  # torch's max and average pooling convert their window to C ints


def _pool_input(n: int, ctx: ShapeCtx) -> TType:
    (x,) = ctx.in_types
    ctx.expect_rank(x, n + 2, n + 2)
    ctx.expect_float(x)
    return x


def _label(x: TType, index: int) -> str:
    return f"`{x.dims[index].name}`" if x.dims[index].name else f"{index}"


def _window_shape(facts: "_Kind", ctx: ShapeCtx):
    n = facts.n
    x = _pool_input(n, ctx)
    kernel = spatial_ints(ctx, "kernel_size", n, 1)
    stride = kernel if ctx.arg("stride") is None else spatial_ints(ctx, "stride", n, 1)
    pads = spatial_ints(ctx, "padding", n, 0)
    dilation = spatial_ints(ctx, "dilation", n, 1) if ctx.arg("dilation") is not None else [Sym.const(1)] * n
    for name, values in (("kernel_size", kernel), ("stride", stride), ("padding", pads), ("dilation", dilation)):
        if any(isinstance(v.value, int) and v.value > INT32_MAX for v in values):
            ctx.error(f"`{name}` {max(v.value for v in values)} is larger than torch's pooling allows "
                      f"({INT32_MAX})", "torch's pooling kernels take 32-bit window sizes", code="E057")
    ceil_mode = bool(ctx.arg("ceil_mode").value)
    if not ctx.arg("ceil_mode").is_const:
        ctx.error("`ceil_mode` must be `true` or `false` here, not a parameter",
                  "the output size depends on it", code="E056")
    divisor = ctx.arg("divisor_override")
    if divisor is not None and divisor.value < 1:
        ctx.error(f"`divisor_override` must be positive, not {divisor.value}")
    dims = list(x.dims)
    for i in range(n):
        k, p = kernel[i], pads[i]
        if p.value > k.value // 2:
            ctx.error(f"`padding` ({p.value}) must be at most half of `kernel_size` ({k.value})",
                      "torch pads only within half a window", code="E055")
        if not (p.is_const and k.is_const):
            ctx.require((p // (k // 2 + 1)).equals(0),  # padding <= kernel_size // 2
                        f"`padding` ({p.render()}) must be at most half of `kernel_size` ({k.render()})")
        length = x.dims[2 + i].extent
        if facts.window_inside and length is not None:
            at_least(ctx, length, k, f"dimension {_label(x, 2 + i)} of `{ctx.input_names[0]}` "
                     f"({show_size(length)}) must be at least `kernel_size` ({show_size(k)})",
                     f"torch's {facts.cls[3:]} needs the window to fit in the input itself, padding "
                     "aside")
        size = window_size(ctx, x, 2 + i, k, stride[i], p, dilation[i], ceil_mode)
        if size is not None and size.value is not None and size.value < 1:
            ctx.error(f"the output of dimension {_label(x, 2 + i)} would be empty ({size.value})", code="E055")
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


def _adaptive_shape(n: int, ctx: ShapeCtx):
    # any input size works: windows overlap or repeat when the output is larger
    x = _pool_input(n, ctx)
    sizes = spatial_ints(ctx, "output_size", n, 1)
    dims = list(x.dims)
    for i in range(n):
        dims[2 + i] = Dim(x.dims[2 + i].name, sizes[i])
    return [x.with_dims(dims)]


def _adaptive_emit(cls: str, ctx) -> Emission:
    size = ctx.arg("output_size")
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"{cls}({render_ints(ctx, size)})")


# ------------------------------------------------------------------------------ autotest


def _window_strategy(kind: "_Kind", draw: Draw, spec) -> Case:
    st = strategies()
    n = kind.n
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    stride = [draw(st.integers(1, 3)) for _ in range(n)]
    pads = [draw(st.integers(0, k // 2)) for k in kernel]
    dilation = [draw(st.integers(1, 2)) for _ in range(n)] if kind.dilation else [1] * n
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        low = max(1, d * (k - 1) + 1 - 2 * p, k if kind.window_inside else 1)
        sizes.append(draw(st.integers(low, max(low, 7 if n < 3 else 5))))
    labels = ["chan", *SPATIAL[n]]
    x = sized_input(draw, "x", labels, sizes=[draw(st.integers(1, 3)), *sizes])
    x = run_time_sizes(draw, x, range(2, n + 2))
    args: dict[str, Any] = {"kernel_size": ints(draw, kernel)}
    put(args, "stride", None if draw(st.booleans()) else ints(draw, stride))
    put(args, "padding", ints(draw, pads, omit_default=0))
    if kind.dilation:
        put(args, "dilation", ints(draw, dilation, omit_default=1))
    if kind.divisor_override:
        put(args, "divisor_override", maybe(draw, draw(st.integers(1, 3))))
    handled = ("kernel_size", "stride", "padding", "dilation", "divisor_override")
    return Case([x], generic_args(draw, spec, x, args, skip=handled))


def _adaptive_strategy(n: int, draw: Draw, spec) -> Case:
    st = strategies()
    x = run_time_sizes(draw, sized_input(draw, "x", ["chan", *SPATIAL[n]], high=6), range(2, n + 2))
    out = [draw(st.integers(1, 4 if n > 1 else 8)) for _ in range(n)]
    return Case([x], {"output_size": ints(draw, out)})


# ------------------------------------------------------------------------------ the family


@dataclass(frozen=True)
class _Kind:
    """What tells one windowed pool from another."""

    name: str
    n: int  # the number of spatial dimensions
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
    window_inside: bool  # every input size must be at least kernel_size (torch's avg_pool3d)


_EXAMPLES = {
    ("max", 1): "h = x >> conv1d(32, 3) >> relu >> maxpool1d(2)",
    ("max", 2): "h = x >> conv2d(32, 3) >> relu >> maxpool2d(2)",
    ("max", 3): "h = vol >> conv3d(16, 3) >> relu >> maxpool3d(2)",
    ("avg", 1): "h = x >> avgpool1d(4, stride=2)",
    ("avg", 2): "h = x >> avgpool2d(2)",
    ("avg", 3): "h = vol >> avgpool3d(2)",
}


def _shape_doc(n: int, span: str, extra: str = "") -> str:
    """`[batch, channel, height, width] -> [batch, channel, height', width'], each with size' = ...`"""
    spatial = SPATIAL[n]
    before = f"[batch, channel, {', '.join(spatial)}]"
    after = f"[batch, channel, {', '.join(d + chr(39) for d in spatial)}]"
    size = "length" if n == 1 else "size"
    each = " with" if n == 1 else ", each with"
    return (f"{before} -> {after}{each} {size}' = ({size} + 2 * padding - {span}) // stride + 1 "
            f"(rounded up with ceil_mode){extra}")


def _window_kind(kind: str, n: int) -> _Kind:
    """The facts of the windowed n-d pool of `kind` ("max" or "avg")."""
    spatial = ", ".join(SPATIAL[n])
    if kind == "max":
        return _Kind(
            name=f"maxpool{n}d",
            n=n,
            cls=f"nn.MaxPool{n}d",
            doc=f"Takes the maximum over {n}-d windows of a [batch, channel, {spatial}] input.",
            params=(
                _kernel(),
                _stride(),
                _padding(),
                HyperParam("dilation", "ints", default=1, doc="Spacing between window elements."),
                _ceil_mode(),
            ),
            defaults={"padding": 0, "dilation": 1, "ceil_mode": False},
            example=_EXAMPLES[kind, n],
            shape_doc=_shape_doc(n, "dilation * (kernel_size - 1) - 1"),
            omitted={
                "return_indices": "the op has one output; unpooling (which needs the indices) is not supported",
            },
            dilation=True,
            divisor_override=False,
            window_inside=False,
        )
    params = (
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
    )
    defaults: dict[str, Any] = {"padding": 0, "ceil_mode": False, "count_include_pad": True}
    if n > 1:  # torch's AvgPool1d has no divisor_override
        params += (
            HyperParam(
                "divisor_override",
                "int",
                default=None,
                doc="If given, divide by this instead of the window size.",
            ),
        )
        defaults["divisor_override"] = None
    return _Kind(
        name=f"avgpool{n}d",
        n=n,
        cls=f"nn.AvgPool{n}d",
        doc=f"Averages over {n}-d windows of a [batch, channel, {spatial}] input.",
        params=params,
        defaults=defaults,
        example=_EXAMPLES[kind, n],
        shape_doc=_shape_doc(n, "kernel_size", "; every input size must be at least kernel_size, padding "
                             "aside" if n == 3 else ""),
        omitted={},
        dilation=False,
        divisor_override=n > 1,
        window_inside=n == 3,
    )


def pool_op(kind: str, n: int = 2) -> OpSpec:
    """The windowed n-d pool of `kind` ("max" or "avg"): `maxpool2d`, `avgpool1d`, ..."""
    facts = _window_kind(kind, n)
    return OpSpec(
        name=facts.name,
        doc=facts.doc,
        family="pool",
        torch_module=f"torch.{facts.cls}",
        params=facts.params,
        omitted=dict(facts.omitted),
        example=facts.example,
        shape_doc=facts.shape_doc,
        shape=partial(_window_shape, facts),
        emit=partial(_window_emit, facts),
        owns_module=True,  # `nn.MaxPool2d(...)`, without weights
        autotest=partial(_window_strategy, facts),
    )


_ADAPTIVE_EXAMPLES = {
    ("avg", 1): "h = x >> adaptive_avgpool1d(1) >> flatten",
    ("avg", 2): "h = x >> adaptive_avgpool2d(1) >> flatten",
    ("max", 1): "h = x >> adaptive_maxpool1d(8)",
    ("max", 2): "h = x >> adaptive_maxpool2d([7, 7])",
}


def adaptive_pool_op(kind: str, n: int) -> OpSpec:
    """The adaptive n-d pool of `kind` ("avg" or "max"): `adaptive_avgpool2d`, ..."""
    spatial = SPATIAL[n]
    cls = f"nn.Adaptive{kind.capitalize()}Pool{n}d"
    before = f"[batch, channel, {', '.join(spatial)}]"
    if n == 1:
        target, doc = "a fixed output length", "Target length."
        shape_doc = f"{before} -> [batch, channel, output_size]"
    else:
        target = f"a fixed output {' and '.join(spatial)}"
        doc = "Target (height, width), or one integer for a square output."
        shape_doc = f"{before} -> [batch, channel, output_size, output_size] (or the two sizes given)"
    omitted = {}
    if kind == "max":
        omitted["return_indices"] = "the op has one output; unpooling (which needs the indices) is not supported"
    return OpSpec(
        name=f"adaptive_{kind}pool{n}d",
        doc=(f"Averages a {before} input down to {target}." if kind == "avg" else
             f"Takes the maximum over windows of a {before} input sized to give {target}."),
        family="pool",
        torch_module=f"torch.{cls}",
        params=(HyperParam("output_size", "ints", doc=doc, aliases=("size",)),),
        omitted=omitted,
        example=_ADAPTIVE_EXAMPLES[kind, n],
        shape_doc=shape_doc,
        shape=partial(_adaptive_shape, n),
        emit=partial(_adaptive_emit, cls),
        owns_module=True,  # `nn.AdaptiveAvgPool2d(...)`, without weights
        autotest=partial(_adaptive_strategy, n),
    )


for _n in (1, 2, 3):
    for _kind in ("max", "avg"):
        register(pool_op(_kind, _n))
for _n in (1, 2):
    for _kind in ("avg", "max"):
        register(adaptive_pool_op(_kind, _n))
