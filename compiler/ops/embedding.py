"""The `embedding` family: lookup tables from integer ids to vectors."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

register(
    OpSpec(
        name="embedding",
        doc="Maps each integer id of the input to a learned vector, adding a trailing dimension.",
        family="embedding",
        torch_module="torch.nn.Embedding",
        inputs=("ids",),
        params=(
            HyperParam(
                "num_embeddings",
                "int",
                doc="Size of the vocabulary: ids must lie in [0, num_embeddings).",
                aliases=("vocab",),
            ),
            HyperParam(
                "embedding_dim",
                "int",
                doc="Width of each embedding vector.",
                aliases=("dim", "out"),
            ),
            HyperParam(
                "padding_idx",
                "int",
                default=None,
                doc="An id whose vector stays zero and gets no gradient.",
                depends="must lie in [-num_embeddings, num_embeddings)",
            ),
        ),
        omitted={
            "max_norm": "renormalisation on lookup modifies the weight in place; not exposed",
            "norm_type": "only used with max_norm, which is not exposed",
            "scale_grad_by_freq": "rarely used training detail; not exposed",
            "sparse": "sparse gradients need specific optimizers; emitted code uses dense gradients",
            "_weight": "initial weights are loaded with `load NAME from`, not passed to the constructor",
            "_freeze": "freezing is expressed with `frozen`",
            "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
            "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
        },
        example="h = tokens >> embedding(vocab=10000, dim=128)",
        has_weights=True,
    )
)
