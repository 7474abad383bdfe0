"""Small helpers the resolver's modules share."""

from __future__ import annotations

from .. import ast as A

# The types a model or block parameter may be declared with (`hidden: int = 64`).
PARAM_TYPE_NAMES = ("int", "float", "bool", "str")


def expr_kind(expr: A.Expr) -> str:
    """What kind of expression `expr` is, in words for a diagnostic: "a number", "a call"."""
    return {
        A.Number: "a number",
        A.String: "a string",
        A.Bool: "a boolean",
        A.ListExpr: "a list",
        A.BinOp: "an expression",
        A.Neg: "an expression",
        A.Call: "a call",
        A.Name: "a name",
        A.NamedItem: "a named size",
        A.Index: "an index",
        A.ChainExpr: "a chain",
    }[type(expr)]
