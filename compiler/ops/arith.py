"""Arithmetic on values (LANGUAGE.md 13): `add sub mul div neg`, named broadcasting, dtype promotion.

`a + b`, `x * 0.5`, `1 - g` and `-x` in a chain are these ops (the resolver turns the operators
into them); `add(x, h)`, `div(y, 4.0)` are the same ops written as calls. A number operand is the
hyper-parameter `scalar` (`scalar_first` when it is written first, `1 - g`); at most one per
application, as in the infix form.

Broadcasting is PyTorch's, applied to named dimensions: aligned from the right, sizes equal or
one of them the literal 1; two named dimensions that meet must have the same name; an unnamed
dimension takes the other's name. A size that is 1 only for the current parameter values does not
broadcast (the module would compute another shape for other values): it must equal the other.
"""

from __future__ import annotations

from ..tensor_types import FLOAT_DTYPES, Dim, Sym, TType
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, copies, float_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ broadcasting


def _is_one(d: Dim) -> bool:
    return d.size is not None and d.size.is_const and d.size.value == 1


def broadcast_pair(ctx: ShapeCtx, a: TType, b: TType, na: str, nb: str) -> TType:
    """The broadcast of two types (dims only; the dtype is `a`'s), or a diagnostic naming both dims."""
    rank = max(a.rank, b.rank)
    dims: list[Dim] = []
    for k in range(1, rank + 1):
        da = a.dims[-k] if k <= a.rank else None
        db = b.dims[-k] if k <= b.rank else None
        if da is None or db is None:
            only = da or db  # the longer type's dimension, where the shorter has none
            assert only is not None
            dims.append(only)
            continue
        index = rank - k
        if da.batch != db.batch and not (_is_one(da) or _is_one(db)):
            short, other, d_other = (nb, na, da) if db.batch else (na, nb, db)
            ctx.error(f"the batch of `{short}` meets dimension `{d_other.show()}` of `{other}` ({a.show()} and "
                      f"{b.show()}, aligned from the right)",
                      f"give `{short}` the missing dimension first: `unsqueeze(dim=1, name={d_other.name or 'dim'})`",
                      code="E050")
        if da.name and db.name and da.name != db.name and not (da.batch and db.batch):
            ctx.error(f"dimension `{da.name}` of `{na}` {a.show()} meets dimension `{db.name}` of `{nb}` "
                      f"{b.show()}", "dimensions that meet (aligned from the right) must have the same name; "
                      "rename one with `rename(...)`, or `unsqueeze` to align them", code="E050")
        name = da.name or db.name
        if _is_one(da) and not _is_one(db):
            dims.append(db.renamed(name) if db.name != name else db)
            continue
        if _is_one(db):
            dims.append(da.renamed(name) if da.name != name else da)
            continue
        for d, n in ((da, na), (db, nb)):
            other = db if d is da else da
            if d.size is not None and d.size.value == 1 and (other.size is None or other.size.value != 1):
                ctx.error(f"dimension {index} of `{n}` is {d.size.render()} = 1 only for these parameter values, "
                          f"and meets `{other.show()}`",
                          "broadcasting needs the literal size 1 (a parameter that is 1 now may not be later)",
                          code="E056")
        ctx.same_dim(da, db, index, na, nb)
        kept = da if da.size is not None or db.size is None else db
        dims.append(Dim(name, kept.size, kept.rt, da.batch or db.batch) if kept.name != name or
                    kept.batch != (da.batch or db.batch) else kept)
    return TType(tuple(reversed(dims)), a.dtype)


# ------------------------------------------------------------------------------ dtypes

_FLOAT_ORDER = ("float16", "bfloat16", "float32", "float64")
_INT_BITS = {"uint8": 8, "int8": 8, "int16": 16, "int32": 32, "int64": 64}


def promote(a: str, b: str) -> str:
    """torch.promote_types for the dtypes tg knows."""
    if a == b:
        return a
    if a == "bool":
        return b
    if b == "bool":
        return a
    fa, fb = a in FLOAT_DTYPES, b in FLOAT_DTYPES
    if fa and fb:
        if {a, b} == {"float16", "bfloat16"}:
            return "float32"
        return max(a, b, key=_FLOAT_ORDER.index)
    if fa or fb:
        return a if fa else b
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    return max(a, b, key=lambda t: _INT_BITS.get(t, 64))


def promote_scalar(dtype: str, scalar: Sym) -> str:
    """The dtype of `tensor op number`: a number never widens a tensor of its own kind."""
    if isinstance(scalar.value, bool):
        return dtype
    if isinstance(scalar.value, float) and dtype not in FLOAT_DTYPES:
        return "float32"
    if isinstance(scalar.value, int) and dtype == "bool":
        return "int64"
    return dtype


# ------------------------------------------------------------------------------ rules

_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_TWO_OPERANDS = ("sub", "div")


def elementwise_type(ctx: ShapeCtx) -> TType:
    """The broadcast type of all the inputs, with their promoted dtype."""
    out = ctx.in_types[0]
    dtype = out.dtype
    for i, t in enumerate(ctx.in_types[1:], start=1):
        left = ctx.input_names[0] if i == 1 else "the result so far"
        out = broadcast_pair(ctx, out, t, left, ctx.input_names[i])
        dtype = promote(dtype, t.dtype)
    return out.with_dims(out.dims, dtype)


def _arith_shape(ctx: ShapeCtx):
    op = ctx.spec.name
    scalar = ctx.arg("scalar")
    operands = len(ctx.in_types) + (scalar is not None)
    if op in _TWO_OPERANDS and operands != 2:
        ctx.error(f"takes exactly two operands (tensors or one number), got {operands}", code="E021")
    if operands < 2:
        ctx.error("needs two or more operands (tensors, or a tensor and a number)",
                  f"for example `{op}(a, b)` or `a {_SYMBOL[op]} b`", code="E021")
    out = elementwise_type(ctx)
    dtype = out.dtype
    if scalar is not None:
        dtype = promote_scalar(dtype, scalar)
    if op == "div" and dtype not in FLOAT_DTYPES:
        dtype = "float32"  # true division, as torch's `/`
    return [out.with_dims(out.dims, dtype)]


def _neg_shape(ctx: ShapeCtx):
    t = ctx.in_types[0]
    if t.dtype == "bool":
        ctx.error("cannot negate a bool tensor", "use `logical_not`-style ops or arithmetic on numbers",
                  code="E054")
    return [t]


# ------------------------------------------------------------------------------ emission

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _top_level_precedence(expr: str) -> int:
    """The lowest precedence of a binary operator outside brackets in `expr` (3: none)."""
    depth, low = 0, 3
    for i, c in enumerate(expr):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and c in "+-*/" and expr[i - 1:i] == " " and expr[i + 1:i + 2] in (" ", "/"):
            low = min(low, _PRECEDENCE[c])
    return low


def operand(expr: str, symbol: str, right: bool) -> str:
    """`expr` as an operand of `symbol`, parenthesised only where Python's precedence needs it."""
    prec, inner = _PRECEDENCE[symbol], _top_level_precedence(expr)
    if inner < prec or (right and inner == prec and symbol in "-/"):
        return f"({expr})"
    return expr


def _arith_emit(ctx) -> Emission:
    symbol = _SYMBOL[ctx.spec.name]
    terms = list(ctx.exprs)
    scalar = ctx.arg("scalar")
    if scalar is not None:
        text = ctx.rf(scalar)
        first = ctx.arg("scalar_first")
        if first is not None and first.value:
            terms.insert(0, text)
        else:
            terms.append(text)
    parts = [operand(t, symbol, right=i > 0) for i, t in enumerate(terms)]
    return Emission(call=f" {symbol} ".join(parts))


def _neg_emit(ctx) -> Emission:
    expr = ctx.exprs[0]
    return Emission(call=f"-{expr}" if _top_level_precedence(expr) == 3 and not expr.startswith("-")
                    else f"-({expr})")


# ------------------------------------------------------------------------------ autotest


def _arith_strategy(draw: Draw, spec) -> Case:
    """Two operands that broadcast (some dimensions of the last the literal 1, keeping their
    names), or one tensor and a number on either side; add and mul also take three tensors."""
    st = strategies()
    x = float_input(draw, "a")
    if draw(st.booleans()):
        args = {"scalar": draw(st.sampled_from([0.5, 2, -1.5, 3]))}
        if draw(st.booleans()):
            args["scalar_first"] = True
        return Case([x], args)
    n = 2 if spec.max_operands == 2 else draw(st.integers(2, 3))
    inputs = copies(draw, x, n, n)
    dims = list(inputs[-1].dims)
    for k in range(1, len(dims)):
        if draw(st.booleans()):
            dims[k] = (dims[k][0], 1)  # a size-1 dimension of the same name broadcasts
    inputs[-1] = Tensor(inputs[-1].name, dims)
    return Case(inputs)


# ------------------------------------------------------------------------------ the ops


def _scalar_params() -> tuple[HyperParam, ...]:
    return (
        HyperParam("scalar", "float", default=None,
                   doc="A number operand (a literal or a parameter): `x * 0.5` is `mul(x, 0.5)`."),
        HyperParam("scalar_first", "bool", default=False,
                   doc="The number comes first (`1 - g`); it matters for sub and div only."),
    )


_DOCS = {
    "add": ("Element-wise sum of tensors (and a number), broadcast by named dimensions: `a + b`.",
            "y = add(x, x >> linear(16))"),
    "sub": ("Element-wise difference of two operands, broadcast by named dimensions: `a - b`.",
            "gate = sub(1, x >> sigmoid)"),
    "mul": ("Element-wise product of tensors (and a number), broadcast by named dimensions: `a * b`.",
            "scaled = mul(x, 0.5)"),
    "div": ("Element-wise true division of two operands, broadcast by named dimensions: `a / b`.",
            "y = div(x, 4.0)"),
}

for _op, (_doc, _example) in _DOCS.items():
    register(
        OpSpec(
            name=_op,
            doc=_doc,
            family="merge",
            variadic=True,
            min_inputs=2,
            max_operands=2 if _op in _TWO_OPERANDS else None,
            params=_scalar_params(),
            example=_example,
            shape_doc="[*a] op [*b] -> broadcast([*a], [*b]) (aligned from the right; sizes equal or 1)",
            shape=_arith_shape,
            emit=_arith_emit,
            autotest=_arith_strategy,
        )
    )

register(
    OpSpec(
        name="neg",
        doc="Element-wise negation: `-x`.",
        family="merge",
        example="y = neg(x)",
        shape_doc="[*] -> [*]",
        shape=_neg_shape,
        emit=_neg_emit,
    )
)

__all__ = ["broadcast_pair", "elementwise_type", "promote", "promote_scalar", "operand"]
