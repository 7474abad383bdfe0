"""Registers every built-in op family; imported once by `registry._load_builtins()`."""

from __future__ import annotations

from . import (  # noqa: F401  (each module registers its ops at import time)
    activation,
    attention,
    conv,
    embedding,
    linear,
    merge,
    mlp,
    norm,
    pool,
    recurrent,
    reshape,
    split,
)

FAMILIES = (
    "linear",
    "conv",
    "pool",
    "reshape",
    "activation",
    "norm",
    "embedding",
    "attention",
    "recurrent",
    "split",
    "merge",
    "mlp",
)
