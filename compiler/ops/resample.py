"""The `resample` family (LANGUAGE.md section 13): ops that change the spatial sizes of a
[batch, channel, *spatial] input without weights: `upsample`, `pixel_shuffle`,
`pixel_unshuffle`, and `pad` (F.pad) over any trailing dimensions.

Sizes stay symbolic where torch's own arithmetic is exact in integers: an upsampled `height` is
`height * 2` (or `height * 3 // 2` for a scale of 1.5), an unshuffled one `height // 2` (the run
requires it divisible), a padded one `height + 2`.
"""

from __future__ import annotations

from fractions import Fraction
from functools import partial
from typing import Any

from ..tensor_types import Dim, Sym, TType, plus, tidy
from .common import SPATIAL, at_least, keywords, padding_fits, show_size, spatial_ints
from .context import ShapeCtx
from .drawing import Case, Draw, maybe, put, run_time_sizes, sized_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ upsample

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
# the interpolating modes, each for one number of spatial dimensions; only they take align_corners
_INTERPOLATING = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
# a fractional scale factor a / b is exact in integers, (size * a) // b, when torch's double
# product size * scale is exact: b a power of two (every float's is) and a small numerator
_MAX_DENOMINATOR = 1024
_MAX_NUMERATOR = 1 << 20


def _label(x: TType, index: int) -> str:
    return f"`{x.dims[index].name}`" if x.dims[index].name else f"{index}"


def _literal(ctx: ShapeCtx, name: str) -> Any:
    """The value of a hyper-parameter the shape depends on: a literal, not a model parameter."""
    value = ctx.arg(name)
    if isinstance(value, Sym) and not value.is_const:
        ctx.error(f"`{name}` must be a literal here, not the parameter `{value.render()}`",
                  "the output's shape (or whether torch accepts it) depends on it", code="E056")
    return value.value if isinstance(value, Sym) else value


def _upsample_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 3, 5)
    ctx.expect_float(x)
    n = x.rank - 2
    mode = _literal(ctx, "mode")
    wants = _INTERPOLATING.get(mode)
    if wants is not None and wants != n:
        fits = [m for m, k in _INTERPOLATING.items() if k == n]
        ctx.error(f'mode "{mode}" needs {wants + 2} dimensions, but `{ctx.input_names[0]}` has {x.rank} '
                  f"{x.show()}", f'for {n} spatial dimension{"s" if n > 1 else ""} use "nearest"'
                  + "".join(f' or "{m}"' for m in fits), code="E055")
    if ctx.arg("align_corners") is not None and wants is None:
        ctx.error(f'`align_corners` applies only to the interpolating modes (linear, bilinear, bicubic, '
                  f'trilinear), not to "{mode}"', "leave it out", code="E055")
    size, scale = ctx.arg("size"), ctx.arg("scale_factor")
    if (size is None) == (scale is None):
        ctx.error("give exactly one of `size` and `scale_factor`" if size is None else
                  "give `size` or `scale_factor`, not both", code="E055")
    dims = list(x.dims)
    if size is not None:
        for i, s in enumerate(spatial_ints(ctx, "size", n, 1)):
            dims[2 + i] = Dim(x.dims[2 + i].name, s)
        return [x.with_dims(dims)]
    for i in range(n):
        out = _scaled(ctx, x, 2 + i, scale)
        dims[2 + i] = Dim.of(x.dims[2 + i].name, out) if out is not None else x.dims[2 + i]
    return [x.with_dims(dims)]


def _scaled(ctx: ShapeCtx, x: TType, index: int, scale: Sym) -> Sym | None:
    """floor(size * scale_factor), torch's output size, exactly: `height * 2`, `height * 3 // 2`."""
    value = scale.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        ctx.error(f"`scale_factor` must be a positive number, not {show_size(scale)}", code="E055")
    length = x.dims[index].extent
    label = _label(x, index)
    if not scale.is_const:
        if not isinstance(value, int):
            ctx.error(f"`scale_factor` must be a number or an integer parameter here, not the parameter "
                      f"`{scale.render()}` = {value}", "the output size floor(size * scale_factor) is exact "
                      "for integer factors; give a fractional one as a literal", code="E056")
        return None if length is None else tidy(length * scale)
    if float(value).is_integer():
        return None if length is None else tidy(length * int(value))
    exact = Fraction(value)
    if exact.denominator <= _MAX_DENOMINATOR and exact.numerator < _MAX_NUMERATOR:
        if length is None:
            return None
        out = tidy(length * exact.numerator) // exact.denominator
        if exact < 1:
            at_least(ctx, out, Sym.const(1), f"dimension {label} of `{ctx.input_names[0]}` "
                     f"({show_size(length)}) scaled by {value} would be empty",
                     "torch needs every output size to be at least 1")
        return out
    if length is not None and length.is_const:
        out = int(length.value * value)  # torch's double product, truncated
        if out < 1:
            ctx.error(f"dimension {label} of `{ctx.input_names[0]}` ({length.value}) scaled by {value} "
                      "would be empty", "torch needs every output size to be at least 1", code="E055")
        return Sym.const(out)
    ctx.error(f"`scale_factor` {value} gives sizes that are exact only for fixed input sizes, and "
              f"dimension {label} of `{ctx.input_names[0]}` is {show_size(length) if length else 'unknown'}",
              "use an integer factor, a fraction like 0.5 or 1.5 (a power of two below), or `size=`",
              code="E056")
    return None


def _upsample_emit(ctx) -> Emission:
    kw = keywords(ctx, {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None})
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.Upsample({kw[2:]})")


def _upsample_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from([m for m in _MODES if _INTERPOLATING.get(m, n) == n]))
    args: dict[str, Any] = {"mode": mode} if mode != "nearest" or draw(st.booleans()) else {}
    low = 1
    if draw(st.booleans()):
        out = [draw(st.integers(1, 6)) for _ in range(n)]
        args["size"] = out[0] if len(set(out)) == 1 and draw(st.booleans()) else out
    else:
        scale = draw(st.sampled_from([1, 2, 3, 2.0, 0.5, 1.5, 2.5, 0.75]))
        args["scale_factor"] = scale
        low = 2 if scale < 1 else 1
    if mode in _INTERPOLATING:
        put(args, "align_corners", maybe(draw, draw(st.booleans())))
    sizes = [draw(st.integers(low, 5)) for _ in range(n)]
    x = sized_input(draw, "x", ["chan", *SPATIAL[n]], sizes=[draw(st.integers(1, 3)), *sizes])
    return Case([run_time_sizes(draw, x, range(2, n + 2))], args)


# ------------------------------------------------------------------------------ pixel shuffle


def _factor(ctx: ShapeCtx, name: str) -> Sym:
    r = ctx.int_arg(name)
    if r is None or not isinstance(r.value, int) or isinstance(r.value, bool):
        ctx.error(f"`{name}` must be an integer")
    if r.value < 1:  # a parameter made 0 later fails loudly in torch, as other sizes do
        ctx.error(f"`{name}` must be positive, not {r.value}", code="E055")
    return r


def _multiple_of(size: Sym, by: Sym) -> bool:
    """Whether `size` is written as a product with `by` (`c * (r * r)`): divisible for any value."""
    return size.tree[0] == "*" and by.tree in (size.tree[1], size.tree[2])


def _divide(size: Sym, by: Sym) -> Sym:
    """size // by, cancelled when size is a product with `by` (`c * (r * r) // (r * r)` is `c`)."""
    if _multiple_of(size, by):
        rest = size.tree[1] if size.tree[2] == by.tree else size.tree[2]
        return Sym(size.value // by.value if size.value is not None else None, rest, size.placeholder)
    return tidy(size // by)


def _divisible(ctx: ShapeCtx, x: TType, index: int, by: Sym, what: str) -> None:
    """Dimension `index` of `x` must be divisible by `by`: an error now, an `__init__` assert over
    parameters, or a requirement on the run-time size."""
    size = x.dims[index].extent
    text = f"dimension {_label(x, index)} of `{ctx.input_names[0]}` ({show_size(size)}) must be divisible by {what}"
    if size.value is not None and by.value is not None and size.value % by.value:
        ctx.error(text, code="E055")
    if not (size.is_const and by.is_const) and not _multiple_of(size, by):
        ctx.require(tidy(size % by).equals(0), text)


def _sized(ctx: ShapeCtx, x: TType, indices) -> None:
    for k in indices:
        if x.dims[k].extent is None:
            ctx.error(f"dimension {k} of `{ctx.input_names[0]}` {x.show()} has neither a size nor a name",
                      "name it or give it a size", code="E051")


def _pixel_shuffle_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 4, 4)
    _sized(ctx, x, (1, 2, 3))
    r = _factor(ctx, "upscale_factor")
    square = tidy(r * r)
    _divisible(ctx, x, 1, square, f"`upscale_factor` squared ({show_size(square)})")
    dims = list(x.dims)
    dims[1] = Dim.of(x.dims[1].name, _divide(x.dims[1].extent, square))
    for k in (2, 3):
        dims[k] = Dim.of(x.dims[k].name, tidy(x.dims[k].extent * r))
    return [x.with_dims(dims)]


def _pixel_unshuffle_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 4, 4)
    _sized(ctx, x, (1, 2, 3))
    r = _factor(ctx, "downscale_factor")
    dims = list(x.dims)
    dims[1] = Dim.of(x.dims[1].name, tidy(x.dims[1].extent * (r * r)))
    for k in (2, 3):
        _divisible(ctx, x, k, r, f"`downscale_factor` ({show_size(r)})")
        dims[k] = Dim.of(x.dims[k].name, tidy(x.dims[k].extent // r))
    return [x.with_dims(dims)]


def _shuffle_emit(function: str, factor: str, ctx) -> Emission:
    return Emission(call=f"F.{function}({ctx.exprs[0]}, {ctx.rf(ctx.arg(factor))})")


def _shuffle_strategy(up: bool, draw: Draw, spec) -> Case:
    st = strategies()
    r = draw(st.integers(1, 3))
    c, h, w = (draw(st.integers(1, 3)) for _ in range(3))
    sizes = [c * r * r, h, w] if up else [c, h * r, w * r]
    x = run_time_sizes(draw, sized_input(draw, "x", ["chan", "height", "width"], sizes=sizes), (1, 2, 3))
    return Case([x], {"upscale_factor" if up else "downscale_factor": r})


# ------------------------------------------------------------------------------ pad

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    pads = ctx.arg("pad")
    if not isinstance(pads, list) or len(pads) % 2:
        count = len(pads) if isinstance(pads, list) else 1
        ctx.error(f"`pad` needs pairs (before, after) for the last dimensions, but has {count} value"
                  f"{'s' if count != 1 else ''}", "`pad=[1, 1]` pads the last dimension by one on each side, "
                  "`pad=[1, 1, 2, 2]` the one before it by two", code="E055")
    for p in pads:
        if not isinstance(p, Sym) or not isinstance(p.value, int) or isinstance(p.value, bool):
            ctx.error("`pad` must be a list of integers", code="E055")
    n = len(pads) // 2
    mode = _literal(ctx, "mode")
    if n > x.rank - 1 or any(x.dims[x.rank - 1 - j].batch for j in range(n)):
        ctx.error(f"`pad` has {n} pairs, but `{ctx.input_names[0]}` {x.show()} has only {x.rank - 1} "
                  "dimensions after the batch", "the batch dimension is never padded", code="E055")
    if mode != "constant":
        ctx.expect_float(x)
        if n > 3 or x.rank not in (n + 1, n + 2):
            ctx.error(f'mode "{mode}" pads the last 1, 2 or 3 dimensions of an input with one or two '
                      f"dimensions before them, but `pad` has {n} pairs for `{ctx.input_names[0]}` {x.show()}",
                      f"give {x.rank - 2} or {x.rank - 1} pairs" if x.rank > 2 else "give 1 pair", code="E055")
        value = ctx.arg("value")
        if value.value != 0:
            ctx.error(f'`value` fills only mode "constant", not "{mode}"', "leave it out", code="E055")
    dims = list(x.dims)
    for j in range(n):
        k = x.rank - 1 - j
        before, after = pads[2 * j], pads[2 * j + 1]
        length = x.dims[k].extent
        if length is None:
            ctx.error(f"dimension {k} of `{ctx.input_names[0]}` {x.show()} has neither a size nor a name",
                      "name it or give it a size", code="E051")
        if mode != "constant":  # negative pads (cropping) only with mode "constant"
            for side in (before, after):
                at_least(ctx, side, Sym.const(0), f'mode "{mode}" needs non-negative padding, not '
                         f"{show_size(side)}", 'crop with negative padding in mode "constant"')
            padding_fits(ctx, x, k, before, after, mode)
        out = tidy(plus(length, before + after) if (before + after).is_const else length + before + after)
        crop = _negative_part(before) + _negative_part(after)
        if mode == "constant" and not (crop.is_const and crop.value == 0):
            # torch crops first (narrow), then pads: what the crops leave must not be negative
            at_least(ctx, tidy(plus(length, crop) if crop.is_const else length + crop), Sym.const(0),
                     f"dimension {_label(x, k)} of `{ctx.input_names[0]}` ({show_size(length)}) is smaller than "
                     f"the negative padding that crops it ({show_size(before)} and {show_size(after)})",
                     "torch crops before it pads; crop less")
        if mode == "constant" and not ((before + after).is_const and (before + after).value >= 0):
            at_least(ctx, out, Sym.const(1), f"dimension {_label(x, k)} of `{ctx.input_names[0]}` "
                     f"({show_size(length)}) padded by {show_size(before)} and {show_size(after)} "
                     f"would be empty ({show_size(out)})", "negative padding crops; crop less")
        dims[k] = Dim.of(x.dims[k].name, out)
    return [x.with_dims(dims)]


def _negative_part(p: Sym) -> Sym:
    """min(p, 0): the crop of a negative pad (for a parameter, `p * (0 >= p + 1)`)."""
    if p.is_const:
        return Sym.const(min(p.value, 0))
    return p * Sym.const(0).at_least(p + 1)


def _pad_emit(ctx) -> Emission:
    kw = ""
    mode = ctx.arg("mode")
    if mode.value != "constant":
        kw += f", mode={ctx.rf(mode)}"
    value = ctx.arg("value")
    if mode.value == "constant" and not (value.is_const and value.value == 0):
        kw += f", value={ctx.rf(value)}"
    return Emission(call=f"F.pad({ctx.exprs[0]}, {ctx.rf(ctx.arg('pad'))}{kw})")


def _pad_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    mode = draw(st.sampled_from(_PAD_MODES))
    if mode == "constant":
        rank = draw(st.integers(2, 5))
        n = draw(st.integers(1, rank - 1))
    else:
        n = draw(st.integers(1, 3))
        rank = draw(st.sampled_from([n + 1, n + 2]))
    pads, sizes = [], [draw(st.integers(1, 3)) for _ in range(rank - 1)]
    for j in range(n):
        low = -2 if mode == "constant" else 0
        before, after = draw(st.integers(low, 3)), draw(st.integers(low, 3))
        need = {"constant": max(1 - before - after, -min(before, 0) - min(after, 0)), "reflect": max(before, after) + 1,
                "circular": max(before, after), "replicate": 1}[mode]
        k = rank - 2 - j  # index into sizes (which leave out the batch)
        sizes[k] = max(sizes[k], need, 1)
        pads += [before, after]
    labels = ["chan", "depth", "height", "width"][-(rank - 1):]
    x = run_time_sizes(draw, sized_input(draw, "x", labels, sizes=sizes), range(1, rank))
    args: dict[str, Any] = {"pad": pads}
    put(args, "mode", maybe(draw, mode, mode == "constant"))
    if mode == "constant":
        put(args, "value", maybe(draw, draw(st.sampled_from([1.5, 0.0, -1.0, 2]))))
    return Case([x], args)


# ------------------------------------------------------------------------------ the ops

register(
    OpSpec(
        name="upsample",
        doc="Resizes the spatial dimensions of a [batch, channel, *spatial] input (1 to 3 of them) by a "
        "scale factor or to a size.",
        family="resample",
        torch_module="torch.nn.Upsample",
        params=(
            HyperParam(
                "size",
                "ints",
                default=None,
                doc="Output size of the spatial dimensions, one integer or one per spatial dimension.",
                depends="give either size or scale_factor",
            ),
            HyperParam(
                "scale_factor",
                "float",
                default=None,
                doc="Multiplier of every spatial size; the output size is floor(size * scale_factor).",
                depends="give either size or scale_factor; an integer (or integer parameter), or a "
                "literal fraction with a power-of-two denominator (0.5, 1.5); other fractions only "
                "for inputs of fixed size",
            ),
            HyperParam(
                "mode",
                "str",
                default="nearest",
                doc="The interpolation algorithm.",
                choices=_MODES,
                depends="linear needs 1 spatial dimension, bilinear and bicubic 2, trilinear 3",
            ),
            HyperParam(
                "align_corners",
                "bool",
                default=None,
                doc="Align the corner pixels of input and output (torch's default, None, means false).",
                depends="only with mode linear, bilinear, bicubic or trilinear",
            ),
        ),
        omitted={
            "recompute_scale_factor": "it changes only the interpolation weights of fractional scale "
            "factors, never the output size; torch's default is kept",
        },
        example='h = x >> upsample(scale_factor=2, mode="bilinear")',
        shape_doc=(
            "[batch, channel, *spatial] -> [batch, channel, *spatial'] with 1 to 3 spatial "
            "dimensions, each size' = floor(size * scale_factor) (at least 1; one factor for every "
            "spatial dimension), or size' = size; floating-point inputs only"
        ),
        shape=_upsample_shape,
        emit=_upsample_emit,
        owns_module=True,  # `nn.Upsample(...)`, without weights
        autotest=_upsample_strategy,
    )
)

register(
    OpSpec(
        name="pixel_shuffle",
        doc="Moves channels into space: [batch, channel * r * r, height, width] to "
        "[batch, channel, height * r, width * r].",
        family="resample",
        torch_module="torch.nn.PixelShuffle",
        params=(
            HyperParam(
                "upscale_factor",
                "int",
                doc="The factor r by which height and width grow.",
                aliases=("factor",),
                depends="the input's channels must be divisible by upscale_factor squared",
            ),
        ),
        example="h = x >> conv2d(12, 3, padding=1) >> pixel_shuffle(2)",
        shape_doc="[batch, channel, height, width] -> [batch, channel // r**2, height * r, width * r], r = "
        "upscale_factor",
        shape=_pixel_shuffle_shape,
        emit=partial(_shuffle_emit, "pixel_shuffle", "upscale_factor"),
        autotest=partial(_shuffle_strategy, True),
    )
)

register(
    OpSpec(
        name="pixel_unshuffle",
        doc="Moves space into channels: [batch, channel, height * r, width * r] to "
        "[batch, channel * r * r, height, width].",
        family="resample",
        torch_module="torch.nn.PixelUnshuffle",
        params=(
            HyperParam(
                "downscale_factor",
                "int",
                doc="The factor r by which height and width shrink.",
                aliases=("factor",),
                depends="height and width must be divisible by downscale_factor (checked when the model "
                "runs for run-time sizes)",
            ),
        ),
        example="h = x >> pixel_unshuffle(2)",
        shape_doc="[batch, channel, height, width] -> [batch, channel * r**2, height // r, width // r], r = "
        "downscale_factor",
        shape=_pixel_unshuffle_shape,
        emit=partial(_shuffle_emit, "pixel_unshuffle", "downscale_factor"),
        autotest=partial(_shuffle_strategy, False),
    )
)

register(
    OpSpec(
        name="pad",
        doc="Pads (or, with negative amounts, crops) the last dimensions of the input, as F.pad.",
        family="resample",
        params=(
            HyperParam(
                "pad",
                "ints",
                doc="Pairs (before, after) for the last dimension, then the one before it, and so on.",
                depends='negative amounts crop, only with mode "constant"; the batch is never padded',
            ),
            HyperParam(
                "mode",
                "str",
                default="constant",
                doc="How padded values are filled: a constant, a reflection, the edge value, or wrapping around.",
                choices=_PAD_MODES,
                depends='the modes other than "constant" pad 1 to 3 trailing dimensions of an input with '
                "1 or 2 dimensions before them; reflect needs padding smaller than the size, circular at "
                "most the size",
            ),
            HyperParam(
                "value",
                "float",
                default=0.0,
                doc="The fill value of mode constant.",
                depends='only with mode "constant"',
            ),
        ),
        example="h = x >> pad([1, 1, 2, 2])",
        shape_doc="[*, ..., size] -> [*, ..., size + before + after] for each padded trailing dimension "
        "(at least 1; torch crops before it pads, so the negative amounts must fit in the size)",
        shape=_pad_shape,
        emit=_pad_emit,
        autotest=_pad_strategy,
    )
)
