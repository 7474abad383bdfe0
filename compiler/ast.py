"""The syntax tree of a `.tg` file: frozen dataclasses, each with its source `Span` first.

Built by `compiler.parse`; read by `compiler.resolve`. No Lark object ever appears here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file; lines and columns are 1-based, the end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        """The span from the start of this one to the end of `other`."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


# ---------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Number:
    span: Span
    value: int | float
    text: str


@dataclass(frozen=True, slots=True)
class String:
    span: Span
    value: str


@dataclass(frozen=True, slots=True)
class Bool:
    span: Span
    value: bool


@dataclass(frozen=True, slots=True)
class Name:
    span: Span
    id: str


@dataclass(frozen=True, slots=True)
class ListExpr:
    span: Span
    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class BinOp:
    span: Span
    op: str  # one of + - * / // %
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Neg:
    span: Span
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Arg:
    span: Span
    name: str | None  # None for a positional argument
    name_span: Span | None
    value: "Expr"


@dataclass(frozen=True, slots=True)
class Call:
    """`name(args)`: an op or block call, or a call-shaped value in a `train` section."""

    span: Span
    name: str
    name_span: Span
    args: tuple[Arg, ...]


Expr = Union[Number, String, Bool, Name, ListExpr, BinOp, Neg, Call]


# ---------------------------------------------------------------------------- chains


@dataclass(frozen=True, slots=True)
class OpElement:
    """One element of a chain: `relu`, `linear(64)`, or a value name at the head (`x`)."""

    span: Span
    frozen: bool
    name: str
    name_span: Span
    args: tuple[Arg, ...]
    has_parens: bool


@dataclass(frozen=True, slots=True)
class RepeatElement:
    span: Span
    frozen: bool
    count: Expr
    body: "Chain"


Element = Union[OpElement, RepeatElement]


@dataclass(frozen=True, slots=True)
class Chain:
    span: Span
    elements: tuple[Element, ...]


# ---------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Dim:
    span: Span
    name: str | None
    size: Expr | None  # `feature=d_in` has both; `batch` is parsed as size=Name('batch')


@dataclass(frozen=True, slots=True)
class InputDecl:
    span: Span
    name: str
    name_span: Span
    dtype: str | None
    dtype_span: Span | None
    shape: tuple[Dim, ...] | None


@dataclass(frozen=True, slots=True)
class Assign:
    span: Span
    targets: tuple[Name, ...]
    value: Chain


@dataclass(frozen=True, slots=True)
class ExprStmt:
    span: Span
    value: Chain


@dataclass(frozen=True, slots=True)
class Output:
    span: Span
    names: tuple[Name, ...]


@dataclass(frozen=True, slots=True)
class Merge:
    span: Span
    call: Call


@dataclass(frozen=True, slots=True)
class Load:
    span: Span
    target: Name
    path: String


Statement = Union[InputDecl, Assign, ExprStmt, Output, Merge, Load]


# ---------------------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class Param:
    span: Span
    name: str
    type: Name | None
    default: Expr | None


@dataclass(frozen=True, slots=True)
class Model:
    span: Span
    name: str
    name_span: Span
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    doc: str | None


@dataclass(frozen=True, slots=True)
class Block:
    span: Span
    name: str
    name_span: Span
    params: tuple[Param, ...]
    inputs: tuple[Name, ...]
    outputs: tuple[Name, ...]
    body: tuple[Statement, ...]
    doc: str | None


@dataclass(frozen=True, slots=True)
class TrainItem:
    span: Span
    key: str
    key_span: Span
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Train:
    span: Span
    model: Name | None
    items: tuple[TrainItem, ...]


@dataclass(frozen=True, slots=True)
class Import:
    span: Span
    target: str
    is_path: bool  # `import "file.tg"` rather than `import std`


Item = Union[Model, Block, Train, Import, InputDecl, Assign, ExprStmt, Output, Merge, Load]


@dataclass(frozen=True, slots=True)
class Program:
    span: Span
    items: tuple[Item, ...]


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2}


def unparse(expr: Expr, outer: int = 0) -> str:
    """The tg source of an expression (for messages, hints and help pages)."""
    import json

    if isinstance(expr, Number):
        return expr.text
    if isinstance(expr, String):
        return json.dumps(expr.value, ensure_ascii=False)
    if isinstance(expr, Bool):
        return "true" if expr.value else "false"
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(unparse(i) for i in expr.items) + "]"
    if isinstance(expr, Neg):
        return "-" + unparse(expr.operand, 3)
    if isinstance(expr, BinOp):
        prec = _PRECEDENCE[expr.op]
        text = f"{unparse(expr.left, prec)} {expr.op} {unparse(expr.right, prec + 1)}"
        return f"({text})" if prec < outer else text
    args = ", ".join(unparse(a.value) if a.name is None else f"{a.name}={unparse(a.value)}" for a in expr.args)
    return f"{expr.name}({args})"
