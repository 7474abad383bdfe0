"""The `conv` family: 1-d and 2-d convolutions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..shapes import Dim, OpCtx, TType
from ..sym import Sym
from .registry import REGISTRY, Emission, HyperParam, OpSpec, register

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
        shape_doc=(
            "[batch, channel=in, length] -> [batch, channel=out_channels, length'] with "
            "length' = (length + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1; "
            'padding="same" keeps length'
        ),
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
        shape_doc=(
            "[batch, channel=in, height, width] -> [batch, channel=out_channels, height', width'], each "
            "with size' = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1; "
            'padding="same" keeps them'
        ),
    )
)


# ------------------------------------------------------------------------------ shapes and emission
# The helpers below are shared with the `pool` family (same window arithmetic, same rendering).


def is_default(value: Any, default: Any) -> bool:
    """Whether an evaluated argument is the constant `default` (so the emitted call may omit it)."""
    if value is None or default is None:
        return value is None and default is None
    items = value if isinstance(value, list) else [value]
    return all(isinstance(v, Sym) and v.is_const and type(v.value) is type(default) and v.value == default
               for v in items)


def render_ints(ctx, value: Any) -> str:
    """An `ints` argument as Python source: `3`, or a tuple `(3, 5)`; a one-item list is its item."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return ctx.r(value)


def keywords(ctx, defaults: dict[str, Any]) -> str:
    """`, name=value` for each argument that differs from its torch default, in the given order."""
    out = ""
    for name, default in defaults.items():
        value = ctx.arg(name)
        if not is_default(value, default):
            out += f", {name}={render_ints(ctx, value)}"
    return out


def spatial_ints(ctx: OpCtx, name: str, n: int, minimum: int) -> list[Sym]:
    """An `ints` argument as one Sym per spatial dimension (one integer is used for all)."""
    value = ctx.arg(name)
    items = value if isinstance(value, list) else [value]
    if len(items) not in (1, n):
        ctx.error(f"`{name}` has {len(items)} values, but this op takes one integer or {n}",
                  f"give one per spatial dimension: `{name}=[{', '.join(['3'] * n)}]`", code="E055")
    for s in items:
        if not isinstance(s, Sym) or not isinstance(s.value, int) or isinstance(s.value, bool):
            ctx.error(f"`{name}` must be an integer or a list of integers", code="E055")
        if s.value < minimum:
            want = "positive" if minimum == 1 else "at least 0"
            ctx.error(f"`{name}` must be {want}, not {s.value}", code="E055")
    return list(items) * n if len(items) == 1 else list(items)


def plus(a: Sym, b: Sym) -> Sym:
    """a + b, written `a - 2` rather than `a + (-2)` when b is a negative constant."""
    if b.is_const and b.value < 0:
        return a - (-b.value)
    return a + b


def tidy(size: Sym) -> Sym:
    """The same size with its sums collected: `(s - k + 4) // 2` for `(s + (2 - (k - 1) - 1 + 2)) // 2`."""
    return Sym(size.value, _tidy(size.tree), size.placeholder)


def _int_const(tree: tuple) -> bool:
    return tree[0] == "c" and isinstance(tree[1], int) and not isinstance(tree[1], bool)


def _tidy(tree: tuple) -> tuple:
    if tree[0] in ("+", "-", "neg") or (tree[0] == "*" and (_int_const(tree[1]) or _int_const(tree[2]))):
        terms: dict[tuple, int] = {}
        const = _collect_linear(tree, 1, terms)
        return _rebuild(terms, const)
    if tree[0] in ("//", "%", "*", "/", "=="):
        return (tree[0], _tidy(tree[1]), _tidy(tree[2]))
    return tree


def _collect_linear(tree: tuple, sign: int, terms: dict[tuple, int]) -> Any:
    """Adds sign * tree to `terms` (opaque sub-expression -> integer coefficient); returns the constant."""
    kind = tree[0]
    if _int_const(tree):
        return sign * tree[1]
    if kind == "+":
        return _collect_linear(tree[1], sign, terms) + _collect_linear(tree[2], sign, terms)
    if kind == "-":
        return _collect_linear(tree[1], sign, terms) + _collect_linear(tree[2], -sign, terms)
    if kind == "neg":
        return _collect_linear(tree[1], -sign, terms)
    if kind == "*" and _int_const(tree[1]):
        return _collect_linear(tree[2], sign * tree[1][1], terms)
    if kind == "*" and _int_const(tree[2]):
        return _collect_linear(tree[1], sign * tree[2][1], terms)
    key = _tidy(tree)
    terms[key] = terms.get(key, 0) + sign
    return 0


def _rebuild(terms: dict[tuple, int], const: int) -> tuple:
    items = [(t, k) for t, k in terms.items() if k != 0]
    items.sort(key=lambda item: item[1] < 0)  # a positive term first, so the sum does not start with `-`

    def scaled(t: tuple, k: int) -> tuple:
        return t if k == 1 else ("*", ("c", k), t)

    if not items:
        return ("c", const)
    if items[0][1] > 0:
        tree = scaled(*items[0])
    else:
        tree = ("-", ("c", const), scaled(items[0][0], -items[0][1])) if const else ("neg", scaled(items[0][0], -items[0][1]))
        const = 0
    for t, k in items[1:]:
        tree = ("+", tree, scaled(t, k)) if k > 0 else ("-", tree, scaled(t, -k))
    if const:
        tree = ("+", tree, ("c", const)) if const > 0 else ("-", tree, ("c", -const))
    return tree


def window_size(ctx: OpCtx, x: TType, index: int, kernel: Sym, stride: Sym, pad: Sym, dilation: Sym,
                ceil_mode: bool = False) -> Sym | None:
    """Output length of a sliding window over dimension `index` of `x` (torch's formula).

    floor((L + 2*pad - dilation*(kernel-1) - 1) / stride) + 1, or with ceil_mode rounded up
    unless the last window would start in the right padding. Sizes stay symbolic.
    """
    dim = x.dims[index]
    length = dim.size
    span = dilation * (kernel - 1) + 1
    if length is None:
        return None  # a dimension without a size (images of any size) stays without one
    label = f"`{dim.name}`" if dim.name else f"{index}"
    if not ceil_mode and length.value + 2 * pad.value < span.value:  # with ceil_mode torch allows it
        spans = f"kernel size {kernel.value}" + (
            f" with dilation {dilation.value} spans {span.value}," if dilation.value != 1 else " is")
        padded = f"{length.value}" + (f", padded to {length.value + 2 * pad.value}" if pad.value else "")
        ctx.error(f"{spans} larger than dimension {label} of `{ctx.input_names[0]}` ({padded})",
                  "use a smaller kernel, more padding, or a larger input", code="E055")
    rest = 2 * pad - dilation * (kernel - 1)  # L + rest: the number of window positions at stride 1
    if stride.is_const and stride.value == 1 and not ceil_mode:
        return tidy(plus(length, rest))
    # floor((L + rest - 1) / s) + 1 == (L + rest - 1 + s) // s, which folds to `height // 2` for a 2x2 pool
    out = plus(length, rest - 1 + stride + (stride - 1 if ceil_mode else 0)) // stride
    # with ceil_mode torch drops the last window when it would start inside the right padding,
    # which can only happen when the stride exceeds the kernel's span minus the padding
    fixed = all(v.is_const for v in (kernel, stride, pad, dilation))
    if ceil_mode and (not fixed or stride.value > span.value - pad.value):
        start = (out - 1) * stride
        limit = length + pad
        if start.value >= limit.value:
            out = out - 1
            holds = (Sym.const(1) // (start // limit + 1)).equals(0)  # start >= limit, in + - * // == only
        else:
            holds = (start // limit).equals(0)  # start < limit
        if not holds.is_const:
            ctx.require(tidy(holds), f"with ceil_mode, the output size of dimension {label} follows one "
                        "formula only for sizes like these")
    return tidy(out)


def _conv_shape(ctx: OpCtx):
    (x,) = ctx.inputs
    n = 1 if ctx.spec.name == "conv1d" else 2
    ctx.expect_rank(x, n + 2, n + 2)
    ctx.expect_float(x)
    channels = x.dims[1]
    if channels.size is None:
        ctx.error(f"the channel dimension `{channels.name}` of `{ctx.input_names[0]}` has no size",
                  "give the input a size: `[batch, channels=3, ...]`", code="E051")
    out = ctx.int_arg("out_channels")
    if out is None or not isinstance(out.value, int) or out.value < 1:
        ctx.error(f"`out_channels` must be a positive integer, not {getattr(out, 'value', out)}")
    kernel = spatial_ints(ctx, "kernel_size", n, 1)
    stride = spatial_ints(ctx, "stride", n, 1)
    dilation = spatial_ints(ctx, "dilation", n, 1)
    groups = ctx.int_arg("groups")
    if groups is None or groups.value < 1:
        ctx.error(f"`groups` must be positive, not {getattr(groups, 'value', groups)}")
    if not groups.is_const or groups.value != 1:
        ctx.require((channels.size % groups).equals(0),
                    f"`groups` ({groups.render()}) must divide the input channels ({channels.size.render()})")
        if not out.same_expr(channels.size):  # one assertion when both are the same expression
            ctx.require((out % groups).equals(0),
                        f"`groups` ({groups.render()}) must divide `out_channels` ({out.render()})")
    padding = ctx.arg("padding")
    dims = list(x.dims)
    dims[1] = Dim(channels.name, out)
    if isinstance(padding, Sym) and padding.value == "same":
        for s in stride:
            if s.value != 1:
                ctx.error(f'`padding="same"` needs stride 1, but stride is {s.value}',
                          "give the padding as a number instead: (kernel_size - 1) // 2 for odd kernels",
                          code="E055")
            if not s.is_const:
                ctx.require(s.equals(1), '`padding="same"` needs stride 1')
        return [x.with_dims(dims)]  # every spatial size is kept
    if isinstance(padding, Sym) and padding.value == "valid":
        pads = [Sym.const(0)] * n
    else:
        pads = spatial_ints(ctx, "padding", n, 0)
    for i in range(n):
        dims[2 + i] = Dim(x.dims[2 + i].name,
                          window_size(ctx, x, 2 + i, kernel[i], stride[i], pads[i], dilation[i]))
    return [x.with_dims(dims)]


def _conv_emit(ctx) -> Emission:
    x = ctx.in_types[0]
    cls = "nn.Conv1d" if ctx.spec.name == "conv1d" else "nn.Conv2d"
    padding = ctx.arg("padding")
    kw = keywords(ctx, {"stride": 1})
    if not (is_default(padding, 0) or (isinstance(padding, Sym) and padding.value == "valid")):
        kw += f", padding={render_ints(ctx, padding)}"
    kw += keywords(ctx, {"dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"})
    module = (f"{cls}({ctx.r(ctx.size(x, 1))}, {ctx.r(ctx.arg('out_channels'))}, "
              f"{render_ints(ctx, ctx.arg('kernel_size'))}{kw})")
    return Emission(call=f"{ctx.m}({ctx.inputs[0]})", module=module)


def _kernel_volume(ctx) -> int:
    n = 1 if ctx.spec.name == "conv1d" else 2
    kernel = ctx.value("kernel_size")
    sizes = kernel if isinstance(kernel, list) else [kernel]
    volume = 1
    for k in (sizes * n if len(sizes) == 1 else sizes):
        volume *= k
    return volume


def _conv_params(ctx) -> int:
    c_in, c_out = ctx.size(ctx.inputs[0], 1), ctx.size(ctx.outputs[0], 1)
    weight = c_out * (c_in // ctx.value("groups")) * _kernel_volume(ctx)
    return weight + (c_out if ctx.value("bias") else 0)


def _conv_macs(ctx) -> int:
    c_in = ctx.size(ctx.inputs[0], 1)
    return ctx.numel(ctx.outputs[0]) * (c_in // ctx.value("groups")) * _kernel_volume(ctx)


for _name in ("conv1d", "conv2d"):
    register(replace(REGISTRY[_name], shape=_conv_shape, emit=_conv_emit, params_count=_conv_params,
                     macs=_conv_macs), replace=True)
