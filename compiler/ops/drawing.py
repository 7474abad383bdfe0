"""The autotest's drawing kit: how a random valid application of an op is described and drawn.

A `Case` is one drawn application (declared inputs, arguments, outputs); an op's `autotest`
strategy `(draw, spec) -> Case` builds one with these helpers, where `draw` is hypothesis's
`data.draw`. Ops without a strategy are drawn by `generic`, every hyper-parameter by its type.
`runtime/compile_time/autotest.py` renders each case as a `.tg` program and checks it against
torch. Hypothesis (a development dependency) is imported only when something is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Name:
    """A bare identifier argument: a dimension name (`dim=token`, `reshape([batch, -1])`)."""

    id: str

    def __repr__(self) -> str:
        return self.id


@dataclass
class Tensor:
    """A declared input: dims are (name, size) pairs, the batch (`("batch", None)`) first."""

    name: str
    dims: list[tuple[str | None, int | None]]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.dims)

    def size(self, k: int) -> int | None:
        return self.dims[k][1]

    def renamed(self, name: str) -> "Tensor":
        return Tensor(name, list(self.dims), self.dtype)


@dataclass
class Case:
    """One drawn application of an op: the model's inputs, the call and its arguments."""

    inputs: list[Tensor]
    args: dict[str, Any] = field(default_factory=dict)  # canonical name -> value; absent = default
    call: list[str] | None = None  # tensor arguments of the call (default: every input, in order)
    outputs: int = 1
    discard: tuple[int, ...] = ()  # outputs written `_`
    chain: bool = False  # `out = x >> op(...) >> identity`: a multi-output op inside a chain
    spell: dict[str, str] = field(default_factory=dict)  # keyword used for an argument (an alias)
    hoist: set[str] = field(default_factory=set)  # arguments passed as model parameters
    hoist_sizes: bool = False  # input sizes written as model parameters (`n4`)


Draw = Callable[[Any], Any]


_NAMES = ("token", "chan", "height", "width")


def strategies():
    from hypothesis import strategies as st

    return st


def float_input(draw: Draw, name: str = "x", min_rank: int = 2, max_rank: int = 4, unsized: bool = True,
                low: int = 1, high: int = 5) -> Tensor:
    """A float input [batch, ...]: middle dims may be unsized names (`token`), the last is sized."""
    st = strategies()
    rank = draw(st.integers(min_rank, max_rank))
    dims: list[tuple[str | None, int | None]] = [("batch", None)]
    for k in range(1, rank):
        label = "feature" if k == rank - 1 else _NAMES[k - 1]
        named = draw(st.booleans())
        if named and unsized and k < rank - 1 and draw(st.booleans()):
            dims.append((label, None))
        else:
            dims.append((label if named else None, draw(st.integers(low, high))))
    return Tensor(name, dims)


def sized_input(draw: Draw, name: str, labels: list[str], low: int = 1, high: int = 5,
                sizes: list[int] | None = None) -> Tensor:
    """[batch, *labels] with every non-batch dim sized (`sizes` or drawn); names are optional."""
    st = strategies()
    dims: list[tuple[str | None, int | None]] = [("batch", None)]
    for i, label in enumerate(labels):
        s = sizes[i] if sizes is not None else draw(st.integers(low, high))
        dims.append((label if draw(st.booleans()) else None, s))
    return Tensor(name, dims)


def run_time_sizes(draw: Draw, t: Tensor, indices) -> Tensor:
    """`t` with some of its named dimensions among `indices` left to run time (`height` without a
    size), so a shape rule's expressions over run-time sizes are checked against torch as well;
    verification then runs the module at sizes that meet the rule's requirements."""
    st = strategies()
    dims = list(t.dims)
    for k in indices:
        name, _ = dims[k]
        if name is not None and draw(st.booleans()):
            dims[k] = (name, None)
    return Tensor(t.name, dims, t.dtype)


def dim_ref(draw: Draw, t: Tensor, indices) -> Any:
    """A reference to one of `indices` of `t`: a non-negative index, a negative one, or its name."""
    st = strategies()
    k = draw(st.sampled_from(list(indices)))
    forms = ["index", "negative"] + (["name"] if t.dims[k][0] else [])
    form = draw(st.sampled_from(forms))
    if form == "name":
        return Name(t.dims[k][0])
    return k if form == "index" else k - t.rank


def generic_value(draw: Draw, p, x: Tensor) -> Any:
    st = strategies()
    if p.type == "int":
        return draw(st.integers(1, 6))
    if p.type == "float":
        if p.name == "eps":  # a stabiliser: positive
            return draw(st.sampled_from([1e-6, 1e-5, 1e-3, 0.1]))
        return round(draw(st.floats(0.0, 0.5, allow_nan=False)), 3)
    if p.type == "bool":
        return draw(st.booleans())
    if p.type == "str":
        if p.choices:
            return draw(st.sampled_from(list(p.choices)))
        return p.default if isinstance(p.default, str) else "a"
    if p.type == "dim":
        return dim_ref(draw, x, range(x.rank))
    if p.type == "dims":
        order = draw(st.permutations(list(range(x.rank))))
        return [dim_ref(draw, x, [k]) for k in order]
    if p.type == "dim_or_dims":
        return dim_ref(draw, x, range(x.rank))
    if p.type == "ints":
        return draw(st.integers(1, 3))
    if p.type == "padding":
        return draw(st.integers(0, 1))
    if p.type == "shape":
        return [Name("batch"), -1]
    if p.type == "sections":
        return 1
    raise ValueError(f"no generic values for parameter type {p.type!r}")


def maybe(draw: Draw, value: Any, default: bool = True) -> Any:
    """`value`, or None (leave the argument out) when `default` allows it and a coin says so."""
    return None if default and draw(strategies().booleans()) else value


def put(args: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        args[name] = value


def generic_args(draw: Draw, spec, x: Tensor, args: dict[str, Any], skip=()) -> dict[str, Any]:
    """Generic values for the parameters not in `args` or `skip`; optional ones may be left out."""
    for p in spec.params:
        if p.name in args or p.name in skip:
            continue
        if p.type == "dimname" and not p.required:
            continue  # a name (a new dimension's, a layer's to tie to): left to its default
        value = generic_value(draw, p, x)
        put(args, p.name, value if p.required else maybe(draw, value))
    return args


def output_count(spec, args: dict[str, Any]) -> int:
    if spec.outputs_from is None:
        return len(spec.outputs)
    n = args.get(spec.outputs_from)
    return len(n) if isinstance(n, list) else int(n)


def generic(draw: Draw, spec) -> Case:
    """Inputs of one drawn float type, every parameter drawn by its type."""
    st = strategies()
    x = float_input(draw, "a" if spec.variadic else spec.inputs[0])
    if spec.variadic:
        n = draw(st.integers(max(spec.min_inputs, 1), max(spec.min_inputs, 1) + 1))
        inputs = [x.renamed(c) for c in "abcdefgh"[:n]]
    else:
        inputs = [x.renamed(nm) for nm in spec.inputs[: spec.required_inputs]]
    args = generic_args(draw, spec, x, {})
    return Case(inputs, args, outputs=output_count(spec, args))


def copies(draw: Draw, x: Tensor, low: int = 2, high: int = 3) -> list[Tensor]:
    n = draw(strategies().integers(low, high))
    return [x.renamed(c) for c in "abcdefgh"[:n]]


def ints(draw: Draw, values: list[int], omit_default: int | None = None) -> Any:
    """One int when all are equal (or a list of them), else the list; None to leave it out."""
    st = strategies()
    if omit_default is not None and all(v == omit_default for v in values) and draw(st.booleans()):
        return None
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def discarding(draw: Draw, case: Case) -> Case:
    """Write some outputs of a multi-output op as `_` (never all of them)."""
    st = strategies()
    if case.outputs > 1:
        keep = draw(st.integers(0, case.outputs - 1))
        case.discard = tuple(i for i in range(case.outputs) if i != keep and draw(st.booleans()))
    return case


def chained(draw: Draw, case: Case) -> Case:
    """A single-input multi-output op: destructured, or inside a chain (its first output)."""
    if case.outputs > 1 and draw(strategies().booleans()):
        case.chain = True
        return case
    return discarding(draw, case)
