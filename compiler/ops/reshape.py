"""The `reshape` family: ops that rearrange a tensor's dimensions without computing."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

register(
    OpSpec(
        name="flatten",
        doc="Merges the dimensions start_dim..end_dim into one.",
        family="reshape",
        torch_module="torch.nn.Flatten",
        params=(
            HyperParam(
                "start_dim",
                "dim",
                default=1,
                doc="First dimension to flatten (the default keeps the batch dimension).",
            ),
            HyperParam("end_dim", "dim", default=-1, doc="Last dimension to flatten (inclusive)."),
        ),
        example="h = x >> conv2d(16, 3) >> flatten >> linear(10)",
    )
)

register(
    OpSpec(
        name="reshape",
        doc="Gives the tensor a new shape with the same number of elements (the batch dimension included).",
        family="reshape",
        params=(
            HyperParam(
                "shape",
                "shape",
                doc="The new shape, batch dimension included; one size may be -1 (inferred).",
            ),
        ),
        example="h = x >> reshape([batch, heads, -1])",
    )
)

register(
    OpSpec(
        name="permute",
        doc="Reorders all dimensions of the tensor.",
        family="reshape",
        params=(
            HyperParam(
                "dims",
                "dims",
                doc="Every dimension of the input once, in the new order (names or indices).",
            ),
        ),
        example="h = x >> permute([0, 2, 1])",
    )
)

register(
    OpSpec(
        name="transpose",
        doc="Swaps two dimensions of the tensor.",
        family="reshape",
        params=(
            HyperParam("dim0", "dim", doc="First dimension to swap (a name or an index)."),
            HyperParam("dim1", "dim", doc="Second dimension to swap (a name or an index)."),
        ),
        example="h = x >> transpose(1, 2)",
    )
)
