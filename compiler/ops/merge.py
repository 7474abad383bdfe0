"""The `merge` family: variadic ops that combine several tensors (or reduce one)."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

register(
    OpSpec(
        name="add",
        doc="Element-wise sum of two or more tensors of the same shape.",
        family="merge",
        variadic=True,
        min_inputs=2,
        example="y = add(x, h)",
    )
)

register(
    OpSpec(
        name="mul",
        doc="Element-wise product of two or more tensors of the same shape.",
        family="merge",
        variadic=True,
        min_inputs=2,
        example="gated = mul(h, gate)",
    )
)

register(
    OpSpec(
        name="cat",
        doc="Concatenates two or more tensors along an existing dimension.",
        family="merge",
        variadic=True,
        min_inputs=2,
        params=(
            HyperParam(
                "dim",
                "dim",
                doc="Dimension to concatenate along (a name or an index); other dimensions must match.",
            ),
        ),
        example="h = cat(a, b, dim=feature)",
    )
)

register(
    OpSpec(
        name="stack",
        doc="Stacks two or more tensors of the same shape along a new dimension.",
        family="merge",
        variadic=True,
        min_inputs=2,
        params=(
            HyperParam(
                "dim",
                "dim",
                doc="Position of the new dimension (an index, or a name for the new dimension).",
            ),
        ),
        example="h = stack(a, b, dim=1)",
    )
)


def _reduce_params(what: str) -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "dim",
            "dim",
            default=None,
            doc=f"With one input, the dimension to take the {what} over (a name or an index).",
            depends="only with one input; with several the op is element-wise and dim must be left out",
        ),
        HyperParam(
            "keepdim",
            "bool",
            default=False,
            doc="With one input and dim, keep the reduced dimension with size 1.",
            depends="only with one input and dim",
        ),
    )


register(
    OpSpec(
        name="mean",
        doc="Element-wise mean of several tensors, or with one input and dim the mean over that dimension.",
        family="merge",
        variadic=True,
        min_inputs=1,
        params=_reduce_params("mean"),
        example="pooled = h >> mean(dim=token)",
    )
)

register(
    OpSpec(
        name="max",
        doc="Element-wise maximum of several tensors, or with one input and dim the maximum over that dimension.",
        family="merge",
        variadic=True,
        min_inputs=1,
        params=_reduce_params("maximum"),
        example="pooled = h >> max(dim=token)",
    )
)
