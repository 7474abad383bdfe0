"""Symbolic scalars: values that keep the expression they came from.

A size such as `hidden * 4` is checked by its value (the parameter defaults or `--param`) and
emitted as its expression (`nn.Linear(d_in, hidden * 4)`), so generated modules stay
re-parametrisable. Constants fold; `same_expr` tells two sizes that agree only by value apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# operator -> (precedence, python function)
_OPS: dict[str, tuple[int, Callable[[Any, Any], Any]]] = {
    "+": (1, lambda a, b: a + b),
    "-": (1, lambda a, b: a - b),
    "*": (2, lambda a, b: a * b),
    "/": (2, lambda a, b: a / b),
    "//": (2, lambda a, b: a // b),
    "%": (2, lambda a, b: a % b),
    "==": (0, lambda a, b: a == b),
}


@dataclass(frozen=True, slots=True)
class Sym:
    """A scalar with a known value and the expression that computes it.

    `tree` is ("c", value) for a constant, ("p", name) for a parameter, ("neg", t) or
    (op, left, right). `placeholder` marks a value that is only a stand-in (an input width that
    the user has not given), so a mismatch can say so.
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

    @property
    def is_const(self) -> bool:
        return self.tree[0] == "c"

    def params(self) -> set[str]:
        out: set[str] = set()
        _collect(self.tree, out)
        return out

    def _bin(self, op: str, other: Any, swap: bool = False) -> "Sym":
        o = other if isinstance(other, Sym) else Sym.const(other)
        a, b = (o, self) if swap else (self, o)
        value = _OPS[op][1](a.value, b.value)
        placeholder = a.placeholder or b.placeholder
        if a.is_const and b.is_const:
            return Sym(value, ("c", value), placeholder)
        # algebraic identities keep emitted expressions short
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
        return Sym(-self.value, ("neg", self.tree), self.placeholder)

    def equals(self, o: Any) -> "Sym":
        return self._bin("==", o)

    def same_expr(self, o: "Sym") -> bool:
        return self.tree == o.tree

    def render(self, name: Callable[[str], str] = lambda n: n) -> str:
        """Python source of the expression; `name` maps parameter names to emitted names."""
        return _render(self.tree, name, 0)

    def __str__(self) -> str:
        return self.render()


def _collect(tree: tuple, out: set[str]) -> None:
    kind = tree[0]
    if kind == "p":
        out.add(tree[1])
    elif kind == "neg":
        _collect(tree[1], out)
    elif kind != "c":
        _collect(tree[1], out)
        _collect(tree[2], out)


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
    if kind == "neg":
        return "-" + _render(tree[1], name, 3)
    prec = _OPS[kind][0]
    left = _render(tree[1], name, prec)
    right = _render(tree[2], name, prec + 1)  # left-associative
    text = f"{left} {kind} {right}"
    return f"({text})" if prec < outer else text
