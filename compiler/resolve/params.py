"""The parameters a model or block declares (`(hidden: int = 64, p = 0.1)`), and their checks."""

from __future__ import annotations

from typing import Any, Sequence

from .. import ast as A
from .. import ir
from ..diagnostics import Diagnostic, error, suggest
from ..ops.paramtypes import PARAM_TYPES
from .common import PARAM_TYPE_NAMES


def declared_params(
    params: Sequence[A.Param], *, is_model: bool
) -> tuple[tuple[ir.ParamDef, ...], list[Diagnostic]]:
    """Check a model's or block's parameter list; returns their definitions and the diagnostics.

    Every parameter gets a definition, with `int` for a type that cannot be known, so that the
    body can still be checked.
    """
    out: list[ir.ParamDef] = []
    seen: set[str] = set()
    diags: list[Diagnostic] = []
    for p in params:
        if p.name in seen:
            diags.append(error(p.span, "E011", f"parameter `{p.name}` is declared twice"))
            continue
        seen.add(p.name)
        default = _default(p, diags)
        ptype = _declared_type(p, diags)
        if ptype is None and default is not None:
            ptype = _type_of(default)
        if p.type is None and p.default is None and not is_model:  # a model's: E016 below says it
            diags.append(
                error(
                    p.span,
                    "E016",
                    f"parameter `{p.name}` needs a type or a default",
                    f"for example `{p.name}: int` or `{p.name}: int = 64`",
                )
            )
        if p.type is None and p.default is None:
            ptype = "int"
        if is_model and p.default is None and ptype is not None:
            diags.append(
                error(
                    p.span,
                    "E016",
                    f"model parameter `{p.name}` needs a default",
                    f"every model parameter has a default, for example `{p.name}: {ptype} = ...`",
                )
            )
        if ptype is not None and p.default is not None and default is not None and not _fits(default, ptype):
            diags.append(
                error(
                    p.default.span,
                    "E025",
                    f"the default of `{p.name}` is {_describe(default)}, not {PARAM_TYPES[ptype].describe}",
                )
            )
        if ptype == "float" and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        out.append(ir.ParamDef(p.span, p.name, ptype or "int", default))
    return tuple(out), diags


def _default(p: A.Param, diags: list[Diagnostic]) -> Any:
    """The literal default of `p`; None when it has none, or none that is a literal (E017)."""
    if p.default is None:
        return None
    default = _literal(p.default)
    if default is _NOT_LITERAL:
        diags.append(
            error(
                p.default.span,
                "E017",
                f"the default of `{p.name}` must be a literal (a number, string, `true` or `false`)",
            )
        )
        return None
    return default


def _declared_type(p: A.Param, diags: list[Diagnostic]) -> str | None:
    """The type written for `p`; None when none is written or it is unknown (E016)."""
    if p.type is None:
        return None
    if p.type.id not in PARAM_TYPE_NAMES:
        hint = suggest(p.type.id, PARAM_TYPE_NAMES) or "parameter types are int, float, bool and str"
        diags.append(error(p.type.span, "E016", f"unknown parameter type `{p.type.id}`", hint))
        return None
    return p.type.id


# ------------------------------------------------------------------------------ literals

_NOT_LITERAL = object()


def _literal(expr: A.Expr) -> Any:
    if isinstance(expr, (A.Number, A.String, A.Bool)):
        return expr.value
    return _NOT_LITERAL


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _fits(value: Any, ptype: str) -> bool:
    if ptype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _type_of(value) == ptype


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return f"the integer `{value}`"
    return f"the number `{value}`"
