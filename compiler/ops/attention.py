"""The `attention` family: multi-head attention."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register

register(
    OpSpec(
        name="attention",
        doc="Multi-head scaled dot-product attention of queries q over keys k and values v.",
        family="attention",
        torch_module="torch.nn.MultiheadAttention",
        inputs=("q", "k", "v", "mask"),
        optional_inputs=1,
        outputs=("out", "weights"),
        params=(
            HyperParam(
                "num_heads",
                "int",
                doc="Number of parallel attention heads.",
                aliases=("heads",),
                depends="embed_dim (the query's last dimension) must be divisible by num_heads",
            ),
            HyperParam(
                "dropout",
                "float",
                default=0.0,
                doc="Dropout probability on the attention weights (training only).",
            ),
            HyperParam(
                "bias",
                "bool",
                default=True,
                doc="Whether the input and output projections learn a bias.",
            ),
            HyperParam(
                "causal",
                "bool",
                default=False,
                doc="Mask future positions: query i attends only to keys 0..i.",
                depends="needs as many queries as keys (the same token dimension)",
            ),
            HyperParam(
                "average_weights",
                "bool",
                default=True,
                doc="Return the attention weights averaged over heads (else one map per head).",
            ),
        ),
        inferred=("embed_dim",),
        # torch's forward argument `average_attn_weights` is exposed as `average_weights`
        renamed={"average_attn_weights": "average_weights"},
        omitted={
            "embed_dim": "inferred from the query's last dimension",
            "kdim": "k must have the query's width; separate key widths are not supported",
            "vdim": "v must have the query's width; separate value widths are not supported",
            "add_bias_kv": "rarely used; not exposed",
            "add_zero_attn": "rarely used; not exposed",
            "batch_first": "always True in emitted code (tg tensors are batch-first)",
            "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
            "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
        },
        example="out, weights = attention(q, k, v, heads=8)",
        has_weights=True,
    )
)
