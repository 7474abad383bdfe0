"""The `mlp` built-in of the standard library: a stack of linear layers of given widths.

It is the one std entry that tg cannot write as a block (a block has a fixed number of
parameters; `mlp(128, 64, 32)` has as many widths as the call gives), so it is registered like an
op, with `varargs` collecting the widths and `library="std"` making it need `import std`.
"""

from __future__ import annotations

from ..tensor_types import Dim, Sym
from .context import ShapeCtx
from .registry import Emission, HyperParam, OpSpec, register


def _widths(ctx: ShapeCtx) -> list[Sym]:
    value = ctx.arg("widths")
    widths = value if isinstance(value, list) else [value]
    for i, w in enumerate(widths, start=1):
        if not isinstance(w, Sym) or not isinstance(w.value, int) or isinstance(w.value, bool):
            ctx.error(f"width {i} must be an integer size, not {getattr(w, 'name', w)!r}")
        if w.value < 1:
            ctx.error(f"width {i} must be positive, not {w.value}", "widths are the layers' output sizes")
    return widths


def _shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    ctx.feature_width()
    widths = _widths(ctx)
    p = ctx.arg("p")
    if not 0 <= p.value <= 1:
        ctx.error(f"`p` must be between 0 and 1, not {p.value}")
    return [x.replace_dim(-1, Dim(x.dims[-1].name, widths[-1]))]


def _layers(ctx) -> list[tuple[int, int]]:
    value = ctx.value("widths")
    sizes = [ctx.size(ctx.in_types[0]), *(value if isinstance(value, list) else [value])]
    return list(zip(sizes, sizes[1:]))


def _params(ctx) -> int:
    return sum(a * b + b for a, b in _layers(ctx))


def _macs(ctx) -> int:
    return ctx.positions(ctx.in_types[0]) * sum(a * b for a, b in _layers(ctx))


def _emit(ctx) -> Emission:
    x = ctx.in_types[0]
    sizes = [ctx.size(x, -1), *_widths(ctx)]
    p = ctx.arg("p")
    # a literal 0 leaves the dropout layers out; a parameter keeps them (Dropout(0) is the identity)
    dropout = f"nn.Dropout({ctx.r(p)})" if not (p.is_const and p.value == 0) else None
    layers: list[str] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [f"nn.Linear({ctx.r(a)}, {ctx.r(b)})", "nn.ReLU()"]
        if dropout:
            layers.append(dropout)
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=f"nn.Sequential({', '.join(layers)})")


register(
    OpSpec(
        name="mlp",
        doc=(
            "A multi-layer perceptron (std library, needs `import std`): for each width in turn "
            "linear(width) >> relu >> dropout(p), the dropout left out when p is the literal 0."
        ),
        family="mlp",
        params=(
            HyperParam(
                "widths",
                "ints",
                doc="The output width of each layer, in order, given positionally: mlp(128, 64).",
            ),
            HyperParam(
                "p",
                "float",
                default=0.0,
                doc="Dropout probability after each layer's relu (training only).",
            ),
        ),
        varargs="widths",
        library="std",
        example="h = x >> mlp(128, 64, p=0.1)",
        has_weights=True,
        shape_doc="[batch, in] -> [batch, widths[-1]]",
        shape=_shape,
        emit=_emit,
        params_count=_params,
        macs=_macs,
    )
)
