"""Hyper-parameter types: one object per type, looked up by name in `PARAM_TYPES`.

An op's `HyperParam.type` names one of these. Each type knows how it reads in words
(`describe`, for diagnostics and help pages), which declared model/block parameter types may
stand for it (`accepts`), how the resolver checks an argument expression (`check`) and how the
shape stage turns one into a value (`evaluate`). Both stages hand in what the type needs from
them (a `Checker`, an evaluation function), so this module imports only the AST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from .. import ast as A


class Checker(Protocol):
    """What `ParamType.check` needs from the resolver, for one hyper-parameter of one call."""

    where: str  # "`kernel_size` of `conv2d`": the subject of the messages
    choices: tuple[Any, ...] | None  # the values a `str` hyper-parameter is limited to, if any

    def error(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        """Report an error."""
        ...

    def mismatch(self, expr: A.Expr, what: str) -> None:
        """Report (E025) that the argument must be `what`, not the kind of expression `expr` is."""
        ...

    def suggest(self, word: str, known: Sequence[str]) -> str | None:
        """A "did you mean" hint for `word` among `known`, or None."""
        ...

    def is_param(self, name: str) -> bool:
        """Whether `name` is a parameter of the model or block the call is in."""
        ...

    def is_value(self, name: str) -> bool:
        """Whether `name` is a value (a tensor) defined before the call."""
        ...

    def param_ref(self, name: A.Name, want: str) -> None:
        """Check a name standing for a scalar of the type named `want`: a parameter that fits."""
        ...

    def size_expr(self, expr: A.Expr) -> None:
        """Check an integer expression over parameters (`2 * hidden`, `-1`)."""
        ...


# What `evaluate` needs from the shape stage: the value of an argument expression (a scalar
# symbol, a list of values, or a dimension reference for a name that is no parameter), and the
# dimension reference by index for an evaluated scalar (any other value passes unchanged).
EvalExpr = Callable[[A.Expr], Any]
AsIndex = Callable[[Any, A.Span], Any]


@dataclass(frozen=True)
class ParamType:
    """A hyper-parameter type: its name, its description and its rules."""

    name: str
    describe: str  # what the type accepts, in words: "an integer"
    accepts: tuple[str, ...] = ("int",)  # the declared parameter types that may stand for it

    def check(self, expr: A.Expr, checker: Checker) -> None:
        """Check an argument expression at resolve time, reporting through `checker`."""
        raise NotImplementedError

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        """The shape-stage value of a (checked) argument expression."""
        return eval_expr(expr)


# ------------------------------------------------------------------------------ scalars


@dataclass(frozen=True)
class _Scalar(ParamType):
    """One value: a literal, a parameter, or (for numbers) an expression over parameters."""

    literal = A.Number  # the literal the type takes
    arithmetic = False  # whether an expression over parameters is allowed

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if isinstance(expr, A.ListExpr):
            checker.mismatch(expr, self.describe)
        else:
            self.check_item(expr, checker)

    def check_item(self, expr: A.Expr, checker: Checker) -> None:
        """Check one scalar: the whole argument, or an item of a list argument."""
        if isinstance(expr, A.Name):
            self._check_name(expr, checker)
        elif self.arithmetic and isinstance(expr, (A.BinOp, A.Neg)):
            checker.size_expr(expr)
        elif isinstance(expr, self.literal):
            self._check_literal(expr, checker)
        else:
            checker.mismatch(expr, self.describe)

    def _check_name(self, name: A.Name, checker: Checker) -> None:
        checker.param_ref(name, self.name)

    def _check_literal(self, expr: A.Expr, checker: Checker) -> None:
        pass


@dataclass(frozen=True)
class _Int(_Scalar):
    arithmetic = True

    def _check_literal(self, expr: A.Expr, checker: Checker) -> None:
        assert isinstance(expr, A.Number)
        if not isinstance(expr.value, int):
            checker.mismatch(expr, self.describe)


@dataclass(frozen=True)
class _Float(_Scalar):
    arithmetic = True


@dataclass(frozen=True)
class _Bool(_Scalar):
    literal = A.Bool


@dataclass(frozen=True)
class _Str(_Scalar):
    literal = A.String

    def _check_literal(self, expr: A.Expr, checker: Checker) -> None:
        assert isinstance(expr, A.String)
        choices = checker.choices
        if choices and expr.value not in choices:
            checker.error(expr.span, "E025", f"{checker.where} must be one of {', '.join(repr(c) for c in choices)}",
                          checker.suggest(expr.value, [str(c) for c in choices]))


@dataclass(frozen=True)
class _Dim(_Scalar):
    """A dimension: its name (any name that is no parameter) or an integer index."""

    arithmetic = True

    def _check_name(self, name: A.Name, checker: Checker) -> None:
        if checker.is_param(name.id):
            checker.param_ref(name, self.name)
        elif checker.is_value(name.id):
            checker.error(name.span, "E019", f"`{name.id}` is a value (a tensor), not a dimension",
                          f"{checker.where} takes a dimension name or an index")
        # else a dimension name: the shape stage knows the dimensions

    def _check_literal(self, expr: A.Expr, checker: Checker) -> None:
        assert isinstance(expr, A.Number)
        if not isinstance(expr.value, int):
            checker.mismatch(expr, "an integer index or a dimension name")

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        return as_index(eval_expr(expr), expr.span)


@dataclass(frozen=True)
class _DimName(ParamType):
    """The name of a new dimension: a bare name (`name=token`) that is no parameter or value."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if isinstance(expr, A.Name):
            if checker.is_param(expr.id) or checker.is_value(expr.id):
                checker.error(expr.span, "E025", f"{checker.where} names a new dimension; `{expr.id}` is "
                              f"already a {'parameter' if checker.is_param(expr.id) else 'value'}")
        elif not isinstance(expr, A.String):
            checker.mismatch(expr, self.describe)

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        if isinstance(expr, A.Name):
            return expr.id
        assert isinstance(expr, A.String)
        return expr.value


DIMNAME = _DimName("dimname", "a dimension name", accepts=())


@dataclass(frozen=True)
class _Renames(ParamType):
    """Pairs `old=new` of dimension names (the keywords of `rename`)."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        items = expr.items if isinstance(expr, A.ListExpr) else ()
        if not items or not all(isinstance(i, A.NamedItem) for i in items):
            checker.mismatch(expr, self.describe)
            return
        for item in items:
            if isinstance(item, A.NamedItem):
                DIMNAME.check(item.value, checker)

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        assert isinstance(expr, A.ListExpr)
        return [(i.name, DIMNAME.evaluate(i.value, eval_expr, as_index)) for i in expr.items
                if isinstance(i, A.NamedItem)]


RENAMES = _Renames("renames", "dimension renames, `old=new`", accepts=())
INT = _Int("int", "an integer")
FLOAT = _Float("float", "a number", accepts=("int", "float"))
BOOL = _Bool("bool", "`true` or `false`", accepts=("bool",))
STR = _Str("str", "a string", accepts=("str",))
DIM = _Dim("dim", "a dimension name or an index")


# ------------------------------------------------------------------------------ lists


@dataclass(frozen=True)
class _Ints(ParamType):
    """An integer, or a non-empty list of them."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if isinstance(expr, A.ListExpr):
            if not expr.items:
                checker.mismatch(expr, "a non-empty list")
            for item in expr.items:
                INT.check_item(item, checker)
        else:
            INT.check_item(expr, checker)


@dataclass(frozen=True)
class _Padding(ParamType):
    """An integer, a list of integers, or one of the words "same" and "valid"."""

    words = ("same", "valid")

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if isinstance(expr, A.String):
            if expr.value not in self.words:
                checker.error(expr.span, "E025", f'{checker.where} must be an integer, "same" or "valid"',
                              checker.suggest(expr.value, list(self.words)))
        elif isinstance(expr, A.ListExpr):
            for item in expr.items:
                INT.check_item(item, checker)
        else:
            INT.check_item(expr, checker)


@dataclass(frozen=True)
class _Dims(ParamType):
    """A list of dimensions (names or indices); a `shape` takes sizes in the same spelling."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if not isinstance(expr, A.ListExpr):
            checker.mismatch(expr, self.describe)
        else:
            for item in expr.items:
                DIM.check_item(item, checker)

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        value = eval_expr(expr)
        if isinstance(value, list):
            value = [as_index(v, expr.span) for v in value]
        return value


@dataclass(frozen=True)
class _Shape(_Dims):
    """A list of sizes: its items keep their values (an index of `dims` is a size here); an item
    may name its dimension (`[token=n, feature=d]`)."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if not isinstance(expr, A.ListExpr):
            checker.mismatch(expr, self.describe)
            return
        for item in expr.items:
            if isinstance(item, A.NamedItem):
                checker.size_expr(item.value)
            else:
                DIM.check_item(item, checker)

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        return eval_expr(expr)


@dataclass(frozen=True)
class _DimOrDims(ParamType):
    """One dimension (a name or an index), or a non-empty list of them (a reduction's `dim`)."""

    def check(self, expr: A.Expr, checker: Checker) -> None:
        if isinstance(expr, A.ListExpr):
            if not expr.items:
                checker.mismatch(expr, "a non-empty list")
            for item in expr.items:
                DIM.check_item(item, checker)
        else:
            DIM.check_item(expr, checker)

    def evaluate(self, expr: A.Expr, eval_expr: EvalExpr, as_index: AsIndex) -> Any:
        value = eval_expr(expr)
        if isinstance(value, list):
            return [as_index(v, expr.span) for v in value]
        return as_index(value, expr.span)


INTS = _Ints("ints", "an integer or a list of integers")
SECTIONS = _Ints("sections", "a number of equal pieces, or a list of piece sizes")
DIMS = _Dims("dims", "a list of dimension names or indices")
SHAPE = _Shape("shape", "a list of sizes (integers, parameters or dimension names; -1 once)")
PADDING = _Padding("padding", 'an integer, a list of integers, "same" or "valid"')
DIM_OR_DIMS = _DimOrDims("dim_or_dims", "a dimension name or an index, or a list of them")

# Every hyper-parameter type, by name, in the order the help pages list them.
PARAM_TYPES: dict[str, ParamType] = {
    t.name: t for t in (INT, FLOAT, BOOL, STR, DIM, DIMS, DIM_OR_DIMS, INTS, SHAPE, PADDING, SECTIONS, DIMNAME, RENAMES)
}


def param_type(name: str) -> ParamType:
    """The hyper-parameter type called `name`; KeyError for an unknown one."""
    try:
        return PARAM_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown hyper-parameter type {name!r}; known: {', '.join(PARAM_TYPES)}") from None
