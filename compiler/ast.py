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


@dataclass(frozen=True, slots=True)
class NamedItem:
    """`token=n` inside a list: a named size of a shape (`reshape([token=n, feature=d])`)."""

    span: Span
    name: str
    name_span: Span
    value: "Expr"


@dataclass(frozen=True, slots=True)
class Subscript:
    """One position of an index: `-1`, `1:`, `:n`, `a:b`, each optionally named (`token=-1`)."""

    span: Span
    name: str | None
    name_span: Span | None
    value: "Expr | None"  # the position taken; None for a slice
    start: "Expr | None" = None
    stop: "Expr | None" = None
    is_slice: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    """`x[token=-1]`, `x[:, 1:]`: positions taken or sliced from a value."""

    span: Span
    value: "Expr"
    items: tuple[Subscript, ...]


@dataclass(frozen=True, slots=True)
class ChainExpr:
    """A chain used as a value: `(x >> relu)` in arithmetic, `x >> relu` as a call argument."""

    span: Span
    chain: "Chain"


Expr = Union[Number, String, Bool, Name, ListExpr, BinOp, Neg, Call, NamedItem, Index, ChainExpr]


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


@dataclass(frozen=True, slots=True)
class ExprElement:
    """The head of a chain that is an expression over values: `a + b`, `x[token=-1]`, `-x`."""

    span: Span
    expr: Expr


Element = Union[OpElement, RepeatElement, ExprElement]


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
class LayerDef:
    """`layer NAME = op(...)`: a layer defined without being applied (LANGUAGE.md 13)."""

    span: Span
    target: Name
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


Statement = Union[InputDecl, Assign, LayerDef, ExprStmt, Output, Merge, Load]


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


Item = Union[Model, Block, Train, Import, InputDecl, Assign, LayerDef, ExprStmt, Output, Merge, Load]


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
    if isinstance(expr, NamedItem):
        return f"{expr.name}={unparse(expr.value)}"
    if isinstance(expr, Index):
        return f"{unparse(expr.value, 4)}[{', '.join(_unparse_subscript(s) for s in expr.items)}]"
    if isinstance(expr, ChainExpr):
        return f"({unparse_chain(expr.chain)})"
    args = ", ".join(unparse(a.value) if a.name is None else f"{a.name}={unparse(a.value)}" for a in expr.args)
    return f"{expr.name}({args})"


def _unparse_subscript(s: Subscript) -> str:
    if s.is_slice:
        text = f"{'' if s.start is None else unparse(s.start)}:{'' if s.stop is None else unparse(s.stop)}"
    else:
        text = unparse(s.value) if s.value is not None else ""
    return text if s.name is None else f"{s.name}={text}"


def unparse_chain(chain: Chain) -> str:
    """The tg source of a chain (for messages)."""
    parts = []
    for el in chain.elements:
        if isinstance(el, ExprElement):
            parts.append(unparse(el.expr, 1))
        elif isinstance(el, RepeatElement):
            parts.append(f"repeat({unparse(el.count)}) {{ {unparse_chain(el.body)} }}")
        else:
            text = el.name if not el.has_parens else unparse(Call(el.span, el.name, el.name_span, el.args))
            parts.append(("frozen " if el.frozen else "") + text)
    return " >> ".join(parts)
