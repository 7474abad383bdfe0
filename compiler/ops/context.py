"""The contexts an op's rules receive: one protocol for shape, emission and cost.

`ShapeCtx` is what a shape rule sees (types of the inputs, evaluated arguments, reporting and
constraint helpers); `EmitCtx` extends it with the rendered inputs and the owned submodule's
attribute; `CostCtx` gives the same names with plain integers for `tgc summary`. The shape
checker, the emitter and the summary build these; the op declarations only read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..ast import Span
from ..diagnostics import Diagnostic, suggest, warning
from ..tensor_types import FLOAT_DTYPES, INT_DTYPES, Assertion, Dim, DimRef, ShapeError, Sym, TType, tidy

if TYPE_CHECKING:
    from .registry import OpSpec


class ShapeCtx:
    """What an op's shape rule sees of one application (and, through its subclasses, what its
    emission and cost rules see): the op, its evaluated arguments, its inputs' types and names.

    The same names in all three contexts: `spec`, `args`/`arg()`, `in_types`, `input_names`,
    `span`; emission and cost rules also see `out_types`.
    """

    def __init__(self, spec: "OpSpec", span: Span, input_names: Sequence[str], in_types: list[TType],
                 args: dict[str, Any], diags: list[Diagnostic] | None = None,
                 asserts: list[Assertion] | None = None, inferred: dict[str, int] | None = None,
                 requires: list[Assertion] | None = None):
        self.spec = spec
        self.span = span
        self._inferred = inferred
        self.in_types = in_types
        self.args = args
        self.input_names = list(input_names)
        self._diags = diags if diags is not None else []
        self._asserts = asserts if asserts is not None else []
        self._requires = requires if requires is not None else []

    # ---- arguments
    def arg(self, name: str) -> Any:
        return self.args.get(name)

    def int_arg(self, name: str) -> Sym | None:
        v = self.args.get(name)
        return v if isinstance(v, Sym) else None

    # ---- reporting
    def error(self, message: str, hint: str | None = None, code: str = "E055", span: Span | None = None):
        raise ShapeError(code, f"`{self.spec.name}`: {message}", hint, span)

    def warn(self, message: str, hint: str | None = None, code: str = "W010") -> None:
        self._diags.append(warning(self.span, code, f"`{self.spec.name}`: {message}", hint))

    # ---- helpers for rules
    def expect_rank(self, t: TType, low: int, high: int | None = None, what: str | None = None) -> None:
        name = what or self.input_names[self.in_types.index(t)] if t in self.in_types else "input"
        if t.rank < low or (high is not None and t.rank > high):
            want = f"{low}" if high == low else (f"at least {low}" if high is None else f"{low} to {high}")
            self.error(
                f"`{name}` has {t.rank} dimension{'s' if t.rank != 1 else ''} {t.show()}, "
                f"but {want} are needed",
                f"`{self.spec.name}`: {self.spec.shape_doc}" if self.spec.shape_doc else None,
                code="E051",
            )

    def expect_float(self, t: TType, i: int = 0) -> None:
        if t.dtype not in FLOAT_DTYPES:
            self.error(f"`{self.input_names[i]}` is {t.dtype}, but a floating-point tensor is needed",
                       "integer tensors (token ids) go through `embedding` first", code="E054")

    def expect_int(self, t: TType, i: int = 0) -> None:
        if t.dtype not in INT_DTYPES:
            self.error(f"`{self.input_names[i]}` is {t.dtype}, but an integer tensor (token ids) is needed",
                       "declare the input as `input tokens: long[batch, token=128]`", code="E054")

    def feature_width(self, i: int = 0, hint: str = "give the input a size: `[batch, feature=16]`") -> Sym:
        """The size of input `i`'s last dimension, for ops that work on features (linear, mlp,
        layernorm): a floating-point input whose last dimension has a size."""
        x = self.in_types[i]
        self.expect_rank(x, 1)
        self.expect_float(x, i)
        last = x.dims[-1]
        if last.size is None:
            self.error(f"the last dimension `{last.name}` of `{self.input_names[i]}` has no size",
                       hint, code="E051")
        return last.size

    def dim_index(self, ref: Any, t: TType, what: str = "dim", from_param: bool = False) -> int:
        """The non-negative index of a `dim` argument (name or index) in tensor `t`.

        An index given by a parameter is allowed only where the op says so (`from_param`: its
        emission reads the parameter, through `EmitCtx.dim`); elsewhere the emitted code would
        fix the checked value, so it is an error."""
        if isinstance(ref, DimRef) and ref.sym is not None and not from_param:
            self.error(f"`{what}` must be a dimension name or an integer here, not the parameter "
                       f"`{ref.sym.render()}`", "the emitted code fixes which dimensions it rearranges; "
                       "give the dimension by name", code="E056", span=ref.span)
        if isinstance(ref, DimRef) and ref.name is not None:
            for i, d in enumerate(t.dims):
                if d.name == ref.name:
                    return i
            names = [d.name for d in t.dims if d.name]
            self.error(f"`{self.input_names[0]}` {t.show()} has no dimension named `{ref.name}`",
                       suggest(ref.name, names) or (f"its dimensions are {', '.join(names)}" if names else
                                                    "its dimensions have no names; use an index"),
                       code="E052", span=ref.span)
        index = ref.index if isinstance(ref, DimRef) else (ref.value if isinstance(ref, Sym) else ref)
        if not isinstance(index, int) or isinstance(index, bool):
            self.error(f"`{what}` must be a dimension name or an integer index")
        if not -t.rank <= index < t.rank:
            self.error(f"`{what}={index}` is out of range for {t.rank} dimensions {t.show()}",
                       code="E052", span=getattr(ref, "span", None))
        if isinstance(ref, DimRef) and ref.sym is not None:
            # the module reads the parameter, but what follows was checked for this dimension
            k = index % t.rank
            picked = f"`{t.dims[k].name}`" if t.dims[k].name else f"{k}"
            self.require((ref.sym % t.rank).equals(k), f"`{what}` ({ref.sym.render()}) must pick dimension "
                         f"{picked} of {t.rank}, as it did when the module was compiled")
        return index % t.rank

    def same_size(self, a: Sym | None, b: Sym | None, dim: str, na: str, nb: str) -> None:
        """Two sizes must agree: an error when their values differ, a warning when only values do."""
        if a is None or b is None:
            return
        if a.value != b.value and self._infer(a, b):
            return  # an input width the user did not give takes the size its use needs
        if a.value != b.value:
            hint = None
            if a.placeholder or b.placeholder:
                hint = ("an input without a declared width takes the first size a use needs; give it with "
                        "`--input NAME=SIZE` or an `input` declaration")
            self.error(f"dimension {dim} is {_size_text(a)} in `{na}` but {_size_text(b)} in `{nb}`",
                       hint, code="E050")
        if not a.same_expr(b):
            # holds for these values; the emitted __init__ asserts it for any others
            width = next((x for x in (a, b) if _is_width(x)), None)
            message = f"dimension {dim} of `{na}` ({a.render()}) must equal that of `{nb}` ({b.render()})"
            if width is not None or a.placeholder or b.placeholder:
                # an undeclared input width (or a size computed from one) is part of what was compiled
                message += ", as it did when the module was compiled"
            self._asserts.append(Assertion(a.equals(b), f"{self.spec.name}: {message}"))
            if width is not None:
                mine, theirs = (na, nb) if width is a else (nb, na)
                self.warn(f"`{mine}` has no declared width, so `{width.render()}` is taken as {width.value} "
                          f"here, the size of dimension {dim} in `{theirs}`",
                          "the emitted module asserts it; declare the input's size to make it explicit",
                          code="W011")
                return
            self.warn(f"dimension {dim} is `{a.render()}` in `{na}` and `{b.render()}` in `{nb}`: "
                      f"equal ({a.value}) only for these parameter values",
                      "use the same parameter for both if they must always agree")

    def same_dim(self, a: Dim, b: Dim, index: int, na: str, nb: str) -> None:
        """Dimension `index` of two inputs must be the same: equal sizes, or for dimensions sized
        only at run time the same size expression (`height // 2` is not `height`). Two batch
        dimensions are the batch, whatever their names."""
        label = f"`{a.name}`" if a.name else f"{index}"
        if a.size is not None and b.size is not None:
            self.same_size(a.size, b.size, label, na, nb)
            return
        if a.batch and b.batch and a.rt is None and b.rt is None:
            return
        ea, eb = a.extent, b.extent
        if a.size is None and b.size is None and ea is not None and eb is not None and \
                tidy(ea).same_expr(tidy(eb)) and a.batch == b.batch:
            return
        if a.size is None and b.size is None and (ea is None or eb is None) and a.name == b.name:
            return  # neither size is known at all: the names say they are the same
        hint = ("a dimension without a size is known only by its name; these are different dimensions"
                if a.rt is None and b.rt is None else
                "their sizes are known only when the model runs, and they are not the same expression")
        self.error(f"dimension {index} is `{a.show()}` in `{na}` but `{b.show()}` in `{nb}`", hint,
                   code="E050")

    def _infer(self, a: Sym, b: Sym) -> bool:
        """Bind an undeclared input width (`x_features`) to the size it must match, once."""
        if self._inferred is None:
            return False
        for width, other in ((a, b), (b, a)):
            if _is_width(width) and not other.placeholder and isinstance(other.value, int):
                name = width.tree[1]
                if name not in self._inferred:
                    self._inferred[name] = other.value
                    return True
        return False

    def require(self, condition: Sym, message: str, hint: str | None = None) -> None:
        """A constraint such as `hidden % heads == 0`: checked now and asserted in the emitted
        `__init__`; one over run-time sizes (`height >= 2`) is a requirement on the inputs,
        which only the running model can check (`GraphShapes.runtime_requires`). One that holds
        for every value (`hidden * 2 == hidden + hidden`) is no constraint."""
        tidied = tidy(condition)
        if tidied.tree[0] == "==" and tidied.tree[1] == tidied.tree[2]:
            return
        if condition.value is None:
            self._requires.append(Assertion(tidy(condition), f"{self.spec.name}: {message}"))
            return
        if not condition.value:
            self.error(message, hint, code="E053")
        if not condition.is_const:
            self._asserts.append(Assertion(condition, f"{self.spec.name}: {message}"))

    def is_batch(self, t: TType, k: int) -> bool:
        """Whether dimension k of `t` is the batch (by its mark, not its position)."""
        return t.dims[k].batch


def _is_width(s: Sym) -> bool:
    """An undeclared input's width itself (`x_features`), not an expression over it."""
    return s.placeholder and s.tree[0] == "p"


def _size_text(s: Sym) -> str:
    return str(s.value) if s.is_const else f"{s.render()} = {s.value}"


class EmitCtx(ShapeCtx):
    """What an op's `emit` rule sees: besides the shape context, `exprs` (the Python source of
    each input), `out_types`, `m` (the attribute of the submodule the op owns, `self.h_linear`)
    and renderers of argument values for `__init__` (`r`) and `forward` (`rf`)."""

    def __init__(self, shape: ShapeCtx, exprs: list[str], out_types: list[TType], m: str,
                 pyname: Callable[[str], str], stored: Callable[[str], str] | None = None):
        super().__init__(shape.spec, shape.span, shape.input_names, shape.in_types, shape.args)
        self.exprs = exprs
        self.out_types = out_types
        self.m = m
        self._pyname = pyname
        self._stored = stored or (lambda p: p)
        # which outputs the emitted forward discards (`a, _ = attention(...)`): an op may then skip
        # computing them (`need_weights=False`); set by the emitter
        self.discarded: list[bool] = [False] * len(out_types)

    def r(self, value: Any, _name=None) -> str:
        """Python source of an argument value (a Sym, list, None, or plain value) for `__init__`."""
        name = _name or self._pyname
        if isinstance(value, Sym):
            return value.render(name)
        if isinstance(value, (list, tuple)):
            items = [self.r(v, name) for v in value]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if value is None:
            return "None"
        if isinstance(value, DimRef):
            raise TypeError("resolve a dimension with ctx.dim() before rendering it")
        return repr(value)

    def rf(self, value: Any) -> str:
        """Like `r`, for `forward`: a model parameter there is read from `self.<param>`, which the
        constructor stores, so the module stays re-parametrisable without recompiling."""
        return self.r(value, self._forward_name)

    def _forward_name(self, param: str) -> str:
        return f"self.{self._stored(param)}"

    def dim(self, name: str, t: TType | None = None, what: str = "dim") -> str:
        """A `dim` argument as Python source of an index into `t` (the first input by default): -1
        for the last; one given by a parameter reads the parameter (`self.d`), so a class made for
        one use computes the same for another value."""
        t = t or self.in_types[0]
        ref = self.args.get(name)
        if isinstance(ref, DimRef) and ref.sym is not None:
            return self.rf(ref.sym)
        index = self.dim_index(ref, t, what, from_param=True)
        return str(-1 if index == t.rank - 1 and t.rank > 1 else index)

    def size(self, t: TType, index: int = -1) -> Sym:
        s = t.dims[index].size
        assert s is not None, "emission needs a sized dimension; the shape rule must check it"
        return s


class UnknownSize(Exception):
    """A cost depends on a dimension without a size (a sequence length): it is shown as `?`."""


class CostCtx:
    """What an op's `params_count` and `macs` rules see of one application: plain integers.

    `in_types` and `out_types` are the checked types; `value(name)` is a hyper-parameter's value
    (lists as lists); `size(t, k)` the size of dimension k of `t`; `numel(t)` the elements per
    sample (every dimension but the batch); `positions(t, k)` = numel / size(t, k), the number of
    vectors along dimension k (the tokens a linear layer is applied to). A size that is not known
    raises `UnknownSize`.
    """

    def __init__(self, spec: "OpSpec", span: Span, in_types: list[TType], out_types: list[TType],
                 args: dict[str, Any]):
        self.spec, self.span, self.in_types, self.out_types, self.args = spec, span, in_types, out_types, args

    def arg(self, name: str) -> Any:
        return self.args.get(name)

    def value(self, name: str) -> Any:
        return _plain(self.args.get(name))

    def size(self, t: TType, k: int = -1) -> int:
        dim = t.dims[k]
        if dim.size is None:
            raise UnknownSize(dim.name or str(k % t.rank))
        return int(dim.size.value)

    def numel(self, t: TType) -> int:
        total = 1
        for k in range(1, t.rank):
            total *= self.size(t, k)
        return total

    def positions(self, t: TType, k: int = -1) -> int:
        total = 1
        for j in range(1, t.rank):
            if j != k % t.rank:
                total *= self.size(t, j)
        return total


def _plain(value: Any) -> Any:
    if isinstance(value, Sym):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, DimRef):
        return value.name if value.name is not None else value.index
    return value
