"""Registers every built-in op family; imported once by `registry._load_builtins()`."""

from __future__ import annotations

from . import (  # noqa: F401  (each module registers its ops at import time)
    activation,
    arith,
    attention,
    conv,
    elementwise,
    embedding,
    linear,
    merge,
    mlp,
    norm,
    pool,
    recurrent,
    reduce,
    resample,
    reshape,
    split,
    tensor_math,
    tensors,
    views,
)

FAMILIES = (
    "linear",
    "conv",
    "pool",
    "resample",
    "reshape",
    "activation",
    "elementwise",
    "norm",
    "reduce",
    "embedding",
    "attention",
    "recurrent",
    "split",
    "merge",
    "mlp",
)
