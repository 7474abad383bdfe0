"""Helpers shared by op families: rendering of optional keywords, per-dimension integer
arguments, and the sliding-window size arithmetic of convolutions and pools."""

from __future__ import annotations

from typing import Any

from ..tensor_types import Sym, TType, plus, tidy
from .context import ShapeCtx


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


def spatial_ints(ctx: ShapeCtx, name: str, n: int, minimum: int) -> list[Sym]:
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


def window_size(ctx: ShapeCtx, x: TType, index: int, kernel: Sym, stride: Sym, pad: Sym, dilation: Sym,
                ceil_mode: bool = False) -> Sym | None:
    """Output length of a sliding window over dimension `index` of `x` (torch's formula).

    floor((L + 2*pad - dilation*(kernel-1) - 1) / stride) + 1, or with ceil_mode rounded up
    unless the last window would start in the right padding. Sizes stay symbolic: over parameters
    (checked now, asserted in `__init__`) or over the input's run-time sizes (`height`), whose
    window must fit when the model runs (a requirement on the inputs). None only for a dimension
    whose size is not known at all.
    """
    dim = x.dims[index]
    length = dim.extent
    span = dilation * (kernel - 1) + 1
    if length is None:
        return None
    label = f"`{dim.name}`" if dim.name else f"{index}"
    if length.value is None:
        if not ceil_mode:  # with ceil_mode the pool's own check (an output of at least 1) decides
            ctx.require((length + 2 * pad).at_least(span),
                        f"dimension {label} of `{ctx.input_names[0]}` must be at least "
                        f"{show_size(span - 2 * pad)} for the window to fit")
    elif not ceil_mode and length.value + 2 * pad.value < span.value:  # with ceil_mode torch allows it
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
        if start.value is not None and start.value >= limit.value:
            out = out - 1
            holds = (Sym.const(1) // (start // limit + 1)).equals(0)  # start >= limit, in + - * // == only
        else:
            holds = (start // limit).equals(0)  # start < limit
        if not holds.is_const:
            ctx.require(tidy(holds), f"with ceil_mode, the output size of dimension {label} follows one "
                        "formula only for sizes like these")
    return tidy(out)


def show_size(s: Sym) -> str:
    """A size for a message: its value when constant, else its expression (`height - 2`)."""
    return s.render() if not s.is_const else str(s.value)


def at_least(ctx: ShapeCtx, value: Sym, bound: Sym, message: str, hint: str | None = None) -> None:
    """`value >= bound` must hold: an error (E055) when both are known now and it fails; else a
    check in the emitted `__init__` (over parameters) or a requirement on the inputs' run-time
    sizes (over `height`, ...). No check when it holds for every value."""
    if value.value is not None and bound.value is not None and value.value < bound.value:
        ctx.error(message, hint, code="E055")
    if not (value.is_const and bound.is_const):
        ctx.require(tidy(value.at_least(bound)), message)


def padding_fits(ctx: ShapeCtx, x: TType, index: int, before: Sym, after: Sym, mode: str) -> None:
    """The non-zero padding modes read the input itself: "reflect" needs each side's padding
    smaller than dimension `index` of `x`, "circular" at most that size (torch wraps around at
    most once); "zeros"/"constant" and "replicate" fit any size."""
    if mode not in ("reflect", "circular"):
        return
    dim = x.dims[index]
    length = dim.extent
    if length is None:
        return
    label = f"`{dim.name}`" if dim.name else f"{index}"
    for side in (before, after) if not before.same_expr(after) else (before,):
        if mode == "reflect":
            at_least(ctx, length, side + 1, f'"reflect" padding ({show_size(side)}) must be smaller than dimension '
                     f"{label} of `{ctx.input_names[0]}` ({show_size(length)})",
                     "reflection reads that many values from inside the input; use less padding or "
                     '"replicate"')
        else:
            at_least(ctx, length, side, f'"circular" padding ({show_size(side)}) must be at most dimension '
                     f"{label} of `{ctx.input_names[0]}` ({show_size(length)})",
                     "torch wraps around the input at most once")


# the spatial dimensions of an n-d convolution's or pool's input, after [batch, channel]
SPATIAL = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
