"""The types every stage shares: symbolic sizes, dimensions, tensor types.

A size such as `hidden * 4` is a `Sym`: checked by its value (the parameter defaults or
`--param`) and emitted as its expression (`nn.Linear(d_in, hidden * 4)`), so generated modules
stay re-parametrisable. Constants fold; `same_expr` tells two sizes that agree only by value
apart; `tidy` collects sums so window arithmetic reads `(height - k + 4) // 2`. A tensor type
(`TType`) is a tuple of `Dim`s (named, sized or both) and a dtype. The op rules, the shape
checker, the emitter and the summary all speak these types; this module imports nothing of tgc
but the AST's `Span`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .ast import Span

# operator -> (precedence, python function)
_OPS: dict[str, tuple[int, Callable[[Any, Any], Any]]] = {
    "+": (1, lambda a, b: a + b),
    "-": (1, lambda a, b: a - b),
    "*": (2, lambda a, b: a * b),
    "/": (2, lambda a, b: a / b),
    "//": (2, lambda a, b: a // b),
    "%": (2, lambda a, b: a % b),
    "==": (0, lambda a, b: a == b),
    ">=": (0, lambda a, b: a >= b),
}


@dataclass(frozen=True, slots=True)
class Sym:
    """A scalar with a known value and the expression that computes it.

    `tree` is ("c", value) for a constant, ("p", name) for a parameter, ("d", name) for the run-time
    size of the input dimension `name` (`height` in `[batch, channel=3, height, width]`), ("neg", t)
    or (op, left, right). A size over a dimension is known only when the model runs: its `value` is
    None. `placeholder` marks a value that is only a stand-in (an input width that the user has not
    given), so a mismatch can say so.
    """

    value: Any
    tree: tuple
    placeholder: bool = False

    @staticmethod
    def const(value: Any) -> "Sym":
        return Sym(value, ("c", value))

    @staticmethod
    def param(name: str, value: Any, placeholder: bool = False) -> "Sym":
        return Sym(value, ("p", name), placeholder)

    @staticmethod
    def dim(name: str) -> "Sym":
        """The run-time size of the input dimension `name` (unknown until the model runs)."""
        return Sym(None, ("d", name))

    @property
    def is_const(self) -> bool:
        return self.tree[0] == "c"

    @property
    def is_runtime(self) -> bool:
        """Whether the value depends on an input's run-time size (and so is unknown here)."""
        return self.value is None

    def dims(self) -> set[str]:
        """The input dimensions whose run-time sizes the expression reads."""
        out: set[str] = set()
        _collect(self.tree, out, "d")
        return out

    def params(self) -> set[str]:
        out: set[str] = set()
        _collect(self.tree, out, "p")
        return out

    def _bin(self, op: str, other: Any, swap: bool = False) -> "Sym":
        o = other if isinstance(other, Sym) else Sym.const(other)
        a, b = (o, self) if swap else (self, o)
        value = None if a.value is None or b.value is None else _OPS[op][1](a.value, b.value)
        placeholder = a.placeholder or b.placeholder
        if a.is_const and b.is_const:
            return Sym(value, ("c", value), placeholder)
        # algebraic identities keep emitted expressions short (and spare asserts that always hold:
        # `c % c == 0` for a divisibility the same size meets by itself)
        if op == "%" and a.tree == b.tree and b.value:
            return Sym(0, ("c", 0), placeholder)
        if op == "//" and a.tree[0] == "*" and b.tree in (a.tree[1], a.tree[2]) and b.value:
            # (k * d) // d is k: the product of sizes divided by one of them
            return Sym(value, a.tree[1] if a.tree[2] == b.tree else a.tree[2], placeholder)
        if op in ("*", "//", "/") and b.is_const and b.value == 1:
            return Sym(value, a.tree, placeholder)
        if op == "*" and a.is_const and a.value == 1:
            return Sym(value, b.tree, placeholder)
        if op in ("+", "-") and b.is_const and b.value == 0:
            return Sym(value, a.tree, placeholder)
        if op == "+" and a.is_const and a.value == 0:
            return Sym(value, b.tree, placeholder)
        return Sym(value, (op, a.tree, b.tree), placeholder)

    def __add__(self, o: Any) -> "Sym":
        return self._bin("+", o)

    def __radd__(self, o: Any) -> "Sym":
        return self._bin("+", o, True)

    def __sub__(self, o: Any) -> "Sym":
        return self._bin("-", o)

    def __rsub__(self, o: Any) -> "Sym":
        return self._bin("-", o, True)

    def __mul__(self, o: Any) -> "Sym":
        return self._bin("*", o)

    def __rmul__(self, o: Any) -> "Sym":
        return self._bin("*", o, True)

    def __floordiv__(self, o: Any) -> "Sym":
        return self._bin("//", o)

    def __truediv__(self, o: Any) -> "Sym":
        return self._bin("/", o)

    def __mod__(self, o: Any) -> "Sym":
        return self._bin("%", o)

    def __neg__(self) -> "Sym":
        if self.is_const:
            return Sym.const(-self.value)
        return Sym(None if self.value is None else -self.value, ("neg", self.tree), self.placeholder)

    def equals(self, o: Any) -> "Sym":
        return self._bin("==", o)

    def at_least(self, o: Any) -> "Sym":
        return self._bin(">=", o)

    def evaluate(self, params: dict[str, Any] | None = None, dims: dict[str, int] | None = None) -> Any:
        """The value for the given parameter values and run-time dimension sizes (a name not given
        raises KeyError)."""
        return _evaluate(self.tree, params or {}, dims or {})

    def same_expr(self, o: "Sym") -> bool:
        return self.tree == o.tree

    def render(self, name: Callable[[str], str] = lambda n: n) -> str:
        """Python source of the expression; `name` maps parameter names to emitted names."""
        return _render(self.tree, name, 0)

    def __str__(self) -> str:
        return self.render()


def _collect(tree: tuple, out: set[str], leaf: str) -> None:
    kind = tree[0]
    if kind in ("p", "d"):
        if kind == leaf:
            out.add(tree[1])
    elif kind == "neg":
        _collect(tree[1], out, leaf)
    elif kind != "c":
        _collect(tree[1], out, leaf)
        _collect(tree[2], out, leaf)


def _evaluate(tree: tuple, params: dict[str, Any], dims: dict[str, int]) -> Any:
    kind = tree[0]
    if kind == "c":
        return tree[1]
    if kind == "p":
        return params[tree[1]]
    if kind == "d":
        return dims[tree[1]]
    if kind == "neg":
        return -_evaluate(tree[1], params, dims)
    return _OPS[kind][1](_evaluate(tree[1], params, dims), _evaluate(tree[2], params, dims))


def _render(tree: tuple, name: Callable[[str], str], outer: int) -> str:
    kind = tree[0]
    if kind == "c":
        v = tree[1]
        if isinstance(v, bool):
            return "True" if v else "False"
        if isinstance(v, float):
            text = repr(v)
            return text if v >= 0 or outer == 0 else f"({text})"
        if isinstance(v, int):
            return str(v) if v >= 0 or outer == 0 else f"({v})"
        return repr(v)
    if kind == "p":
        return name(tree[1])
    if kind == "d":
        return tree[1]
    if kind == "neg":
        return "-" + _render(tree[1], name, 3)
    prec = _OPS[kind][0]
    left = _render(tree[1], name, prec)
    right = _render(tree[2], name, prec + 1)  # left-associative
    text = f"{left} {kind} {right}"
    return f"({text})" if prec < outer else text


# ------------------------------------------------------------------------------ simplification


def plus(a: Sym, b: Sym) -> Sym:
    """a + b, written `a - 2` rather than `a + (-2)` when b is a negative constant."""
    if b.is_const and b.value < 0:
        return a - (-b.value)
    return a + b


def tidy(size: Sym) -> Sym:
    """The same size with its sums collected: `(s - k + 4) // 2` for `(s + (2 - (k - 1) - 1 + 2)) // 2`."""
    tree = _tidy(size.tree)
    # a run-time size that cancels out (`token - (token - 2)`) is a constant, known now
    value = tree[1] if tree[0] == "c" else size.value
    return Sym(value, tree, size.placeholder)


def _int_const(tree: tuple) -> bool:
    return tree[0] == "c" and isinstance(tree[1], int) and not isinstance(tree[1], bool)


def _tidy(tree: tuple) -> tuple:
    if tree[0] in ("+", "-", "neg") or (tree[0] == "*" and (_int_const(tree[1]) or _int_const(tree[2]))):
        terms: dict[tuple, int] = {}
        const = _collect_linear(tree, 1, terms)
        return _rebuild(terms, const)
    if tree[0] in ("//", "%", "*", "/", "==", ">="):
        return (tree[0], _tidy(tree[1]), _tidy(tree[2]))
    return tree


def _collect_linear(tree: tuple, sign: int, terms: dict[tuple, int]) -> Any:
    """Adds sign * tree to `terms` (opaque sub-expression -> integer coefficient); returns the constant."""
    kind = tree[0]
    if _int_const(tree):
        return sign * tree[1]
    if kind == "+":
        return _collect_linear(tree[1], sign, terms) + _collect_linear(tree[2], sign, terms)
    if kind == "-":
        return _collect_linear(tree[1], sign, terms) + _collect_linear(tree[2], -sign, terms)
    if kind == "neg":
        return _collect_linear(tree[1], -sign, terms)
    if kind == "*" and _int_const(tree[1]):
        return _collect_linear(tree[2], sign * tree[1][1], terms)
    if kind == "*" and _int_const(tree[2]):
        return _collect_linear(tree[1], sign * tree[2][1], terms)
    key = _tidy(tree)
    terms[key] = terms.get(key, 0) + sign
    return 0


def _rebuild(terms: dict[tuple, int], const: int) -> tuple:
    items = [(t, k) for t, k in terms.items() if k != 0]
    items.sort(key=lambda item: item[1] < 0)  # a positive term first, so the sum does not start with `-`

    def scaled(t: tuple, k: int) -> tuple:
        return t if k == 1 else ("*", t, ("c", k))  # `hidden * 2`, as people write it

    if not items:
        return ("c", const)
    if items[0][1] > 0:
        tree = scaled(*items[0])
    else:
        tree = ("-", ("c", const), scaled(items[0][0], -items[0][1])) if const else ("neg", scaled(items[0][0], -items[0][1]))
        const = 0
    for t, k in items[1:]:
        tree = ("+", tree, scaled(t, k)) if k > 0 else ("-", tree, scaled(t, -k))
    if const:
        tree = ("+", tree, ("c", const)) if const > 0 else ("-", tree, ("c", -const))
    return tree


# ------------------------------------------------------------------------------ tensor types

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")

# Stand-in width of an input whose size the user has not given (`x_features`); verification
# instantiates the module with the same value.
PLACEHOLDER_WIDTH = 16


@dataclass(frozen=True, slots=True)
class Dim:
    """One dimension of a tensor type.

    `size` is its size when known at construction (a constant or an expression over parameters);
    a dimension without one is sized when the model runs: an input's own (`token`, `height`) is
    the run-time variable of its name, and a size computed from such dimensions (a pooled
    `height // 2`, a concatenated `token + token`) is kept in `rt`, an expression over those
    variables. `batch` marks the batch dimension, which need not be first (an LSTM's `h_n` is
    `[layer, batch, feature]`).
    """

    name: str | None
    size: Sym | None  # None: sized only when the model runs (batch, token, height)
    rt: Sym | None = None  # that run-time size, when it is not simply the variable `name`
    batch: bool = False

    def __post_init__(self) -> None:
        if self.rt is not None and self.rt.tree == ("d", self.name):
            object.__setattr__(self, "rt", None)  # one form for the variable of its own name

    @staticmethod
    def of(name: str | None, extent: Sym | None, batch: bool = False) -> "Dim":
        """The dimension `name` of size `extent`: known now, or (a value of None) when it runs."""
        if extent is not None and extent.value is None:
            return Dim(name, None, extent, batch)
        return Dim(name, extent, None, batch)

    @property
    def extent(self) -> Sym | None:
        """The size as an expression: `size`, or the run-time one (None: not known at all)."""
        if self.size is not None:
            return self.size
        if self.rt is not None:
            return self.rt
        return Sym.dim(self.name) if self.name else None

    def renamed(self, name: str | None) -> "Dim":
        """The same dimension (and run-time size) under another name."""
        return Dim.of(name, self.extent, self.batch) if self.extent is not None else Dim(name, None, None, self.batch)

    def show(self, name: Callable[[str], str] = lambda n: n) -> str:
        """`token`, `feature=d`, `height=height // 2`; `name` renders the parameters in sizes."""
        if self.size is None:
            if self.rt is not None:
                return f"{self.name}={self.rt.render(name)}" if self.name else self.rt.render(name)
            return self.name or "?"
        size = self.size.render(name)
        return f"{self.name}={size}" if self.name else size


@dataclass(frozen=True, slots=True)
class TType:
    """A tensor type: dimensions (named, sized or both) and a dtype. `bound`, where an op knows
    it, is a size every value lies below (`arange` gives ids below the length it counts), which
    an op that looks values up checks its table against; any other op's result has none."""

    dims: tuple[Dim, ...]
    dtype: str = "float32"
    bound: "Sym | None" = None

    @property
    def rank(self) -> int:
        return len(self.dims)

    def show(self, name: Callable[[str], str] = lambda n: n) -> str:
        prefix = "" if self.dtype == "float32" else self.dtype
        return prefix + "[" + ", ".join(d.show(name) for d in self.dims) + "]"

    def replace_dim(self, index: int, dim: Dim) -> "TType":
        dims = list(self.dims)
        dims[index] = dim
        return TType(tuple(dims), self.dtype)

    def with_dims(self, dims: Sequence[Dim], dtype: str | None = None) -> "TType":
        return TType(tuple(dims), dtype or self.dtype)


@dataclass(frozen=True, slots=True)
class NamedSize:
    """An item `token=n` of a shape argument: a size with the name of its dimension."""

    name: str
    size: Any


@dataclass(frozen=True, slots=True)
class DimRef:
    """A `dim` hyper-parameter: a dimension name or an index, resolved against a tensor. An index
    given by a parameter keeps it in `sym` (the emitted code reads the parameter)."""

    name: str | None
    index: int | None
    span: Span
    sym: Sym | None = None


class ShapeError(Exception):
    """A user error found by a shape rule: a diagnostic code, message, hint and span."""

    def __init__(self, code: str, message: str, hint: str | None = None, span: Span | None = None):
        super().__init__(message)
        self.code, self.message, self.hint, self.span = code, message, hint, span


@dataclass
class Assertion:
    """A constraint an op needs that holds for the checked values but not for every value."""

    condition: Sym
    message: str
