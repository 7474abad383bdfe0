"""The `split` family: ops that cut a tensor into several outputs."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register


def _dim() -> HyperParam:
    return HyperParam(
        "dim",
        "dim",
        default=-1,
        doc="Dimension to cut along (a name or an index); the last one by default.",
    )


register(
    OpSpec(
        name="split",
        doc="Cuts the input along one dimension into equal pieces or pieces of given sizes.",
        family="split",
        outputs_from="sections",
        params=(
            HyperParam(
                "sections",
                "sections",
                doc="A number of equal pieces, or a list of piece sizes; gives the number of outputs.",
                depends="a count must divide the dimension's size; sizes must add up to it",
            ),
            _dim(),
        ),
        example="a, b = split(x, 2, dim=feature)",
    )
)

register(
    OpSpec(
        name="chunk",
        doc="Cuts the input along one dimension into a number of pieces (the last may be smaller).",
        family="split",
        outputs_from="chunks",
        params=(
            HyperParam(
                "chunks",
                "int",
                doc="Number of pieces, which is the number of outputs.",
                depends="must not exceed the dimension's size",
            ),
            _dim(),
        ),
        example="q, k, v = chunk(x, 3, dim=feature)",
    )
)
