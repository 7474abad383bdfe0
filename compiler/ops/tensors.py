"""Values that are not computed from the inputs (LANGUAGE.md 13): `parameter` and `arange`.

Neither has a batch dimension: they broadcast against batched values from the right
(`e = (idx >> wte) + (pos >> embedding(block_size, d))`, `x + cls`). A parameter is an
`nn.Parameter` attribute named after its value (`self.cls`); `init="normal"` draws with
`std=0.02` unless told, as GPT-2 and ViT initialise their learned positions and tokens.
"""

from __future__ import annotations

from ..tensor_types import Dim, DimRef, NamedSize, Sym
from .context import ShapeCtx
from .drawing import Case, Draw, Name, dim_ref, float_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

_INITS = ("zeros", "ones", "normal", "uniform")


def _parameter_dims(ctx: ShapeCtx) -> list[Dim]:
    shape = ctx.arg("shape")
    if not isinstance(shape, list) or not shape:
        ctx.error("`shape` must be a non-empty list of sizes: `[1, 1, feature=d]`")
    dims: list[Dim] = []
    for item in shape:
        name, size = (item.name, item.size) if isinstance(item, NamedSize) else (None, item)
        if isinstance(size, DimRef) or not isinstance(size, Sym) or size.value is None:
            ctx.error("every size of a parameter must be known when the module is built (an integer "
                      "or a model parameter)", "write the size: `[1, 1, feature=d]`", code="E051")
        if not isinstance(size.value, int) or isinstance(size.value, bool):
            ctx.error(f"a size must be an integer, not {size.render()}", code="E025")
        ctx.require(size.at_least(1), f"size {size.render()} of the parameter must be positive")
        if name is not None and any(d.name == name for d in dims):
            ctx.error(f"dimension name `{name}` is used twice in the parameter's shape", code="E052")
        dims.append(Dim(name, size))
    return dims


def _parameter_shape(ctx: ShapeCtx):
    dims = _parameter_dims(ctx)
    std = ctx.arg("std")
    if std is not None and ctx.arg("init").value != "normal":
        ctx.error('`std` is only for init="normal"')
    if std is not None and std.value < 0:
        ctx.error(f"`std` must be 0 or more, not {std.value}")
    from ..tensor_types import TType

    return [TType(tuple(dims), "float32")]


def _parameter_emit(ctx) -> Emission:
    sizes = ", ".join(ctx.r(d.size) for d in ctx.out_types[0].dims)
    init = ctx.arg("init").value
    if init == "normal":
        std = ctx.arg("std")
        std_text = "0.02" if std is None else ctx.r(std)
        value = f"torch.randn({sizes}) * {std_text}"
    elif init == "uniform":
        value = f"torch.rand({sizes})"
    else:
        value = f"torch.{init}({sizes})"
    return Emission(call=ctx.m, module=f"nn.Parameter({value})")


def _parameter_count(ctx) -> int:
    total = 1
    for d in ctx.out_types[0].dims:
        total *= int(d.size.value)
    return total


def _arange_shape(ctx: ShapeCtx):
    x = ctx.in_types[0]
    k = ctx.dim_index(ctx.arg("dim"), x)
    if ctx.is_batch(x, k):
        ctx.error("`arange` over the batch is not supported: positions count along a sequence", code="E052")
    dim = x.dims[k]
    extent = dim.extent
    if extent is None:
        ctx.error(f"dimension {dim.name or k} of `{ctx.input_names[0]}` has no size", code="E051")
    from ..tensor_types import TType

    return [TType((Dim.of(dim.name, extent),), "int64", bound=extent)]  # the ids 0 .. n-1


def _arange_emit(ctx) -> Emission:
    x = ctx.in_types[0]
    k = ctx.dim_index(ctx.arg("dim"), x)
    size = x.dims[k].size
    length = ctx.rf(size) if size is not None else f"{ctx.exprs[0]}.size({k})"
    return Emission(call=f"torch.arange({length}, device={ctx.exprs[0]}.device)")


def _parameter_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    shape = [f"feature={s}" if k == len(sizes) - 1 and draw(st.booleans()) else s for k, s in enumerate(sizes)]
    args: dict = {"shape": [Name(s) if isinstance(s, str) else s for s in shape]}
    init = draw(st.sampled_from(["zeros", "ones", "normal", "uniform", None]))
    if init is not None:
        args["init"] = init
    if init == "normal":
        args["std"] = draw(st.sampled_from([0.1, 0.02, None]))
        if args["std"] is None:
            del args["std"]
    return Case([], args, call=[])


def _arange_strategy(draw: Draw, spec) -> Case:
    x = float_input(draw, "x")
    return Case([x], {"dim": dim_ref(draw, x, range(1, x.rank))})


register(
    OpSpec(
        name="parameter",
        doc="A learned tensor of the given shape (an nn.Parameter), without a batch dimension.",
        family="reshape",
        inputs=(),
        has_weights=True,
        params=(
            HyperParam("shape", "shape", doc="The sizes, each optionally named: `[1, 1, feature=d]`."),
            HyperParam("init", "str", default="zeros", choices=_INITS,
                       doc='How it starts: "zeros", "ones", "normal" (with `std`) or "uniform" on [0, 1).'),
            HyperParam("std", "float", default=None, doc='The standard deviation of init="normal" (0.02 if left out).'),
        ),
        example="cls = parameter([1, 1, feature=16], init=\"normal\")",
        shape_doc="() -> [shape] (no batch dimension)",
        shape=_parameter_shape,
        emit=_parameter_emit,
        params_count=_parameter_count,
        autotest=_parameter_strategy,
    )
)

register(
    OpSpec(
        name="arange",
        doc="The positions 0 .. n-1 of a dimension of x, as a long tensor without a batch dimension.",
        family="reshape",
        params=(HyperParam("dim", "dim", doc="The dimension whose positions are counted (a name or an index)."),),
        example="pos = arange(x, dim=1)",
        shape_doc="[batch, ..., n, ...] -> long[n]",
        shape=_arange_shape,
        emit=_arange_emit,
        autotest=_arange_strategy,
    )
)
