"""A tgc plugin: the SwiGLU feed-forward unit (Shazeer 2020, "GLU Variants Improve Transformer").

    swiglu(hidden) = linear(2 * hidden) >> split in halves a, b >> silu(a) * b

Load it with `--plugin`:

    tgc model.tg -o model.py --plugin examples/plugins/swiglu.py
    tgc ops swiglu --plugin examples/plugins/swiglu.py
    tgc test-ops swiglu --plugin examples/plugins/swiglu.py

The op is registered through the same public API as tgc's built-in ops: an `OpSpec` with its
hyper-parameters, a shape rule, an emission, and parameter / compute counts for `tgc summary`.
Its PyTorch code is the `SwiGLU` class in `SUPPORT`, which tgc writes into every generated module
that uses the op, so the compiled model runs without this file.
"""

from __future__ import annotations

from tgc.compiler.ops.registry import Emission, HyperParam, OpSpec, register
from tgc.compiler.tensor_types import Dim

# Written once into each generated module that uses `swiglu`, after its imports (`torch`, `nn`).
SUPPORT = '''
class SwiGLU(nn.Module):
    """SwiGLU feed-forward unit: one linear layer to 2 * hidden, then silu(a) * b of its halves."""

    def __init__(self, in_features: int, hidden: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(x).chunk(2, dim=-1)
        return nn.functional.silu(a) * b
'''


def _shape(ctx):
    """[*, in] -> [*, hidden]: the last dimension keeps its name and takes the size `hidden`."""
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    ctx.feature_width()  # a float input whose last dimension has a size
    hidden = ctx.int_arg("hidden")
    if hidden is None or hidden.value < 1:
        ctx.error(f"`hidden` must be a positive integer, not {getattr(hidden, 'value', hidden)!r}")
    return [x.replace_dim(-1, Dim(x.dims[-1].name, hidden))]


def _emit(ctx) -> Emission:
    # ctx.r renders a size or argument as Python (a literal, or a constructor argument's name)
    width = ctx.size(ctx.in_types[0], -1)
    bias = ctx.arg("bias")
    extra = "" if bias.is_const and bias.value is True else f", bias={ctx.r(bias)}"
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})",
                    module=f"SwiGLU({ctx.r(width)}, {ctx.r(ctx.arg('hidden'))}{extra})")


def _params(ctx) -> int:
    width, hidden = ctx.size(ctx.in_types[0]), ctx.value("hidden")
    return width * 2 * hidden + (2 * hidden if ctx.value("bias") else 0)


def _macs(ctx) -> int:
    x = ctx.in_types[0]
    return ctx.positions(x) * ctx.size(x) * 2 * ctx.value("hidden")


register(
    OpSpec(
        name="swiglu",
        doc="SwiGLU feed-forward unit: linear(2 * hidden), split in halves a and b, then silu(a) * b.",
        family="plugin",
        params=(
            HyperParam("hidden", "int", doc="Width of the output (each half of the projection).",
                       aliases=("out",)),
            HyperParam("bias", "bool", default=True, doc="Whether the projection learns a bias."),
        ),
        example="h = x >> swiglu(256) >> linear(64)",
        has_weights=True,
        shape_doc="[*, in] -> [*, hidden]",
        support=SUPPORT,
        shape=_shape,
        emit=_emit,
        params_count=_params,
        macs=_macs,
    )
)
