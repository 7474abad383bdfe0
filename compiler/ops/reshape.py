"""The `reshape` family: ops that rearrange a tensor's dimensions without computing."""

from __future__ import annotations

import ast
from typing import Any

from ..diagnostics import suggest
from ..tensor_types import Dim, DimRef, NamedSize, Sym, TType, tidy
from .context import ShapeCtx
from .drawing import Case, Draw, Name, dim_ref, divisors, float_input, maybe, put, sized_input, strategies
from .registry import Emission, HyperParam, OpSpec, register

# ------------------------------------------------------------------------------ rules
# Every op here keeps the batch dimension where it is, or brings it first (a permute of an LSTM's
# `h_n`, `[layer, batch, feature]`, to `[batch, layer, feature]`); none merges or cuts it. Emitted code uses flatten/unflatten/permute/transpose on the non-batch dimensions, so it never
# needs the batch size (`x.shape[0]`) or a parameter at run time, and reads without arithmetic.

# `flatten` names the merged dimension `feature`: the name an unshaped input's vector width has,
# and the one `linear` keeps, so `conv2d >> flatten >> linear(10)` reads `[batch, feature=10]`.
# If another dimension is already called `feature`, the merged one has no name.
FLAT_NAME = "feature"


def _method_target(expr: str) -> str:
    """`expr` ready for `.method(...)`: parenthesised unless it is a name, call, attribute or subscript."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return f"({expr})"
    return expr if isinstance(node, (ast.Name, ast.Call, ast.Attribute, ast.Subscript)) else f"({expr})"


def _product(sizes: list[Sym]) -> Sym:
    total = Sym.const(1)
    for s in sizes:
        total = total * s
    return total


def _batch_index(x: TType) -> int | None:
    """Where the batch dimension is (first, but second in an LSTM's `h_n`); None without one."""
    return next((i for i, d in enumerate(x.dims) if d.batch), None)


def _keep_batch(ctx: ShapeCtx, what: str) -> None:
    """An error for an op that would move the batch; `what` says how, `{batch}` names it."""
    x = ctx.in_types[0]
    b = _batch_index(x)
    batch = f"the batch dimension `{x.dims[b].name or b}` of `{ctx.input_names[0]}`"
    hint = "the batch dimension always stays first; these ops rearrange the dimensions after it"
    if b:
        order = ", ".join(d.name or str(i) for i, d in enumerate([x.dims[b], *x.dims[:b], *x.dims[b + 1:]]))
        hint = (f"the batch is dimension {b} of `{ctx.input_names[0]}` {x.show()}; bring it first with "
                f"`permute(dims=[{order}])`")
    ctx.error(what.format(batch=batch), hint, code="E052")


def _batch_first(ctx: ShapeCtx) -> None:
    """Ops that lay out the dimensions after the batch need it first."""
    b = _batch_index(ctx.in_types[0])
    if b:
        _keep_batch(ctx, f"`{ctx.spec.name}` needs {{batch}} first, but it is dimension {b}")


# ---- flatten


def _flatten_range(ctx: ShapeCtx) -> tuple[int, int]:
    (x,) = ctx.in_types
    start = ctx.dim_index(ctx.arg("start_dim"), x, "start_dim")
    end = ctx.dim_index(ctx.arg("end_dim"), x, "end_dim")
    b = _batch_index(x)
    if b is not None and start <= b <= end and start != end:
        _keep_batch(ctx, f"`start_dim={start}` .. `end_dim={end}` would merge {{batch}} into the others")
    if start > end:
        ctx.error(f"`start_dim` (dimension {start}) comes after `end_dim` (dimension {end}) in "
                  f"`{ctx.input_names[0]}` {x.show()}", code="E055")
    return start, end


def _flatten_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    start, end = _flatten_range(ctx)
    if start == end:
        return [x]
    merged = x.dims[start : end + 1]
    extents = [d.extent for d in merged]
    size = tidy(_product(extents)) if None not in extents else None  # `3 * height * width` at run time
    others = {d.name for i, d in enumerate(x.dims) if not start <= i <= end}
    name = ctx.arg("name") or (FLAT_NAME if FLAT_NAME not in others else None)
    if name in others:
        ctx.error(f"`{name}` already names a dimension of `{ctx.input_names[0]}` {x.show()}", code="E052")
    return [x.with_dims([*x.dims[:start], Dim.of(name, size), *x.dims[end + 1 :]])]


def _flatten_emit(ctx) -> Emission:
    x = ctx.in_types[0]
    start, end = _flatten_range(ctx)
    if start == end:
        return Emission(call=ctx.exprs[0])
    args = f"{start}" if end == x.rank - 1 else f"{start}, {end}"
    return Emission(call=f"{_method_target(ctx.exprs[0])}.flatten({args})")


# ---- reshape


# plain classes: a dataclass costs import time that every `tgc check` pays


class _Entry:
    """One output dimension of `reshape`: a named input dimension (`source`), a size, or -1."""

    __slots__ = ("dim", "source", "infer", "rename")

    def __init__(self, dim: Dim, source: int | None = None, infer: bool = False, rename: str | None = None):
        self.dim, self.source, self.infer = dim, source, infer
        self.rename = rename  # the name written in `shape` (`[token=n, feature=d]`)


class _Plan:
    """A reshape as flatten(start..stop) then unflatten(start, sizes of `group`)."""

    __slots__ = ("out", "start", "stop", "group")

    def __init__(self, out: TType, start: int, stop: int, group: tuple[_Entry, ...]):
        self.out, self.start, self.stop, self.group = out, start, stop, group


def _reshape_entries(ctx: ShapeCtx, x: TType) -> list[_Entry]:
    _batch_first(ctx)
    items = list(ctx.arg("shape"))
    batch = x.dims[0].name
    if items and isinstance(items[0], DimRef) and items[0].name is not None and items[0].name == batch:
        items = items[1:]  # `reshape([batch, ...])` writes out the batch, which is kept either way
    if not items:
        ctx.error("`shape` lists no dimensions", "list the dimensions after the batch: `reshape([token, 4, 16])`",
                  code="E055")
    names = [d.name for d in x.dims]
    entries: list[_Entry] = []
    for item in items:
        rename = None
        if isinstance(item, NamedSize):  # `token=n`: a size, named
            rename, item = item.name, item.size
            if rename in [e.rename for e in entries]:
                ctx.error(f"`{rename}` names two dimensions of `shape`", code="E055")
        if isinstance(item, DimRef) and item.name is not None and rename is None:
            if item.name not in names:
                ctx.error(f"`{ctx.input_names[0]}` {x.show()} has no dimension named `{item.name}`",
                          suggest(item.name, [n for n in names if n])
                          or "a name in `shape` takes that dimension of the input; give new dimensions as sizes",
                          code="E052", span=item.span)
            j = names.index(item.name)
            if j == 0:
                _keep_batch(ctx, "`shape` cannot move {batch}: it is kept first (and may be written first)")
            if any(e.source == j for e in entries):
                ctx.error(f"`{item.name}` appears twice in `shape`", code="E055", span=item.span)
            entries.append(_Entry(x.dims[j], j))
        elif isinstance(item, Sym) and isinstance(item.value, int) and not isinstance(item.value, bool):
            if item.is_const and item.value == -1:
                if any(e.infer for e in entries):
                    ctx.error("-1 appears twice in `shape`; only one size can be inferred", code="E055")
                entries.append(_Entry(Dim(None, None), infer=True, rename=rename))
            elif item.value < 1:
                ctx.error(f"sizes in `shape` must be positive (or -1 once), not {item.value}", code="E055")
            else:
                entries.append(_Entry(Dim(None, item), rename=rename))
        else:
            ctx.error("`shape` lists sizes (integers or parameters), -1, and names of the input's dimensions",
                      code="E055")
    return entries


def _reshape_plan(ctx: ShapeCtx) -> _Plan:
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    entries = _reshape_entries(ctx, x)
    named = {e.source for e in entries}
    in_total = _product([d.size for d in x.dims[1:] if d.size is not None])
    out_total = _product([e.dim.size for e in entries if e.dim.size is not None])
    missing = [j for j, d in enumerate(x.dims) if j > 0 and d.size is None and j not in named]
    infer = next((i for i, e in enumerate(entries) if e.infer), None)
    src = f"`{ctx.input_names[0]}` {x.show()}"
    if missing:
        unsized = ", ".join(f"`{x.dims[j].name or j}`" for j in missing)
        if infer is None:
            ctx.error(f"{unsized} of {src} has no size, so `shape` cannot account for its elements",
                      f"name it in `shape` (`reshape([{x.dims[missing[0]].name or 'token'}, ...])`) or let -1 take it",
                      code="E050")
        # -1 is exactly the one unsized dimension when the sized ones match up: it keeps its name
        if len(missing) == 1 and in_total.same_expr(out_total):
            entries[infer] = _Entry(x.dims[missing[0]], missing[0], infer=True)
        else:  # the elements of the unsized dimensions, divided among the others at run time
            extents = [d.extent for d in x.dims[1:]]
            if None in extents:
                entries[infer] = _Entry(Dim(None, None), infer=True)
            else:
                every = _product(extents)
                ctx.require((every % out_total).equals(0), f"the other sizes of `shape` ({out_total.render()}) "
                            f"must divide the elements of each sample ({tidy(every).render()})")
                entries[infer] = _Entry(Dim.of(None, tidy(every // out_total)), infer=True)
    elif infer is not None:
        if in_total.value % out_total.value:
            ctx.error(f"{src} has {in_total.value} elements per sample, which the other sizes of `shape` "
                      f"({out_total.value}) do not divide", code="E050")
        if not (in_total.is_const and out_total.is_const):
            ctx.require((in_total % out_total).equals(0),
                        f"the other sizes of `shape` ({out_total.render()}) must divide {in_total.render()}")
        entries[infer] = _Entry(Dim(None, in_total // out_total), infer=True)
    else:
        if in_total.value != out_total.value:
            ctx.error(f"{src} has {in_total.value} elements per sample, but `shape` holds {out_total.value}",
                      "use -1 for one size to have it inferred", code="E050")
        if not in_total.same_expr(out_total):
            ctx.require(in_total.equals(out_total),
                        f"`shape` must hold as many elements ({out_total.render()}) as the input ({in_total.render()})")
    renames = {i: e.rename for i, e in enumerate(_reshape_entries(ctx, x)) if e.rename}
    for i, name in renames.items():
        entries[i] = _Entry(entries[i].dim.renamed(name), entries[i].source, entries[i].infer, name)
    taken = [e.dim.name for e in entries if e.dim.name]
    if len(taken) != len(set(taken)) and renames:
        ctx.error(f"`shape` gives two dimensions one name ({', '.join(sorted(set(n for n in taken if taken.count(n) > 1)))})",
                  code="E055")
    out = x.with_dims([x.dims[0], *(e.dim for e in entries)])

    # the dimensions that change: leading and trailing input dimensions named in place stay out
    r, m = x.rank, len(entries)
    lead = 0
    while lead < min(r - 1, m) and entries[lead].source == lead + 1:
        lead += 1
    trail = 0
    while trail < min(r - 1 - lead, m - lead) and entries[m - 1 - trail].source == r - 1 - trail:
        trail += 1
    if (lead + trail == r - 1) != (lead + trail == m):  # only size-1 dimensions come or go: widen by one
        if trail:
            trail -= 1
        else:
            lead -= 1
    group = tuple(entries[lead : m - trail])
    unknown = [e for e in group if e.dim.size is None]
    if len(unknown) > 1:
        ctx.error("`shape` moves several dimensions without a size; the emitted reshape could infer only one",
                  "give the input sizes, or use `permute` to reorder dimensions", code="E056")
    return _Plan(out, 1 + lead, r - 1 - trail, group)


def _reshape_shape(ctx: ShapeCtx):
    return [_reshape_plan(ctx).out]


def _unflatten_sizes(plan: _Plan) -> list[Sym | None] | None:
    """The sizes the emitted `unflatten` of `plan` gets (None is written -1); None: no unflatten."""
    if len(plan.group) < 2:
        return None
    sizes = [e.dim.size for e in plan.group]  # None (at most one, the rule checks) renders as -1
    if None not in sizes:
        symbolic = [i for i, s in enumerate(sizes) if s is not None and not s.is_const]
        inferred = [i for i, e in enumerate(plan.group) if e.infer]
        if inferred:
            sizes[inferred[0]] = None  # the -1 the user wrote
        elif len(symbolic) == 1:
            sizes[symbolic[0]] = None  # torch infers it, so the forward needs no parameter
    return sizes


def _unflatten_module(sizes: list[Sym | None] | None) -> bool:
    """Whether the unflatten is a submodule: sizes from parameters live in __init__."""
    return sizes is not None and not all(s is None or s.is_const for s in sizes)


def _reshape_owns_module(ctx: ShapeCtx) -> bool:
    """Whether `_reshape_emit` emits an `nn.Unflatten` submodule: the same plan decides both."""
    return _unflatten_module(_unflatten_sizes(_reshape_plan(ctx)))


def _reshape_emit(ctx) -> Emission:
    plan = _reshape_plan(ctx)
    rank = ctx.in_types[0].rank
    expr = _method_target(ctx.exprs[0])
    if plan.stop > plan.start:
        args = f"{plan.start}" if plan.stop == rank - 1 else f"{plan.start}, {plan.stop}"
        expr = f"{expr}.flatten({args})"
    sizes = _unflatten_sizes(plan)
    if sizes is None:
        return Emission(call=expr)
    tup = "(" + ", ".join("-1" if s is None else ctx.r(s) for s in sizes) + ")"
    if not _unflatten_module(sizes):
        return Emission(call=f"{expr}.unflatten({plan.start}, {tup})")
    # sizes from parameters live in __init__, so the unflatten becomes a submodule
    return Emission(call=f"{ctx.m}({expr})", module=f"nn.Unflatten({plan.start}, {tup})")


# ---- permute and transpose


def _permutation(ctx: ShapeCtx) -> list[int]:
    (x,) = ctx.in_types
    refs = ctx.arg("dims")
    order = [ctx.dim_index(ref, x, "dims") for ref in refs]
    b = _batch_index(x)
    if b is not None and len(order) == x.rank - 1 and b not in order:
        order = [b, *order]  # the batch left out goes first
    for i, k in enumerate(order):
        if k in order[:i]:
            ctx.error(f"dimension `{x.dims[k].name or k}` appears twice in `dims`", code="E055")
    if len(order) != x.rank:
        lost = ", ".join(f"`{x.dims[k].name or k}`" for k in range(x.rank) if k not in order)
        ctx.error(f"`dims` must list every dimension of `{ctx.input_names[0]}` {x.show()} once; "
                  f"{lost} {'is' if ', ' not in lost else 'are'} missing", code="E055")
    if b is not None and order[0] != b and order.index(b) != b:
        _keep_batch(ctx, "`dims` moves {batch} away from the front")
    return order


def _permute_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    return [x.with_dims([x.dims[k] for k in _permutation(ctx)])]


def _permute_emit(ctx) -> Emission:
    order = _permutation(ctx)
    return Emission(call=f"{_method_target(ctx.exprs[0])}.permute({', '.join(map(str, order))})")


def _pair(ctx: ShapeCtx) -> tuple[int, int]:
    (x,) = ctx.in_types
    i = ctx.dim_index(ctx.arg("dim0"), x, "dim0")
    j = ctx.dim_index(ctx.arg("dim1"), x, "dim1")
    b = _batch_index(x)
    if b is not None and b in (i, j) and i != j and (j if b == i else i) != 0:
        _keep_batch(ctx, "`transpose` would move {batch}")  # it may only come to the front
    return i, j


def _transpose_shape(ctx: ShapeCtx):
    (x,) = ctx.in_types
    ctx.expect_rank(x, 2)
    i, j = _pair(ctx)
    dims = list(x.dims)
    dims[i], dims[j] = dims[j], dims[i]
    return [x.with_dims(dims)]


def _transpose_emit(ctx) -> Emission:
    i, j = _pair(ctx)
    return Emission(call=f"{_method_target(ctx.exprs[0])}.transpose({i}, {j})")


# ------------------------------------------------------------------------------ autotest


def _flatten_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", min_rank=3, max_rank=5, unsized=False, high=4)
    start = draw(st.integers(1, x.rank - 1))
    end = draw(st.integers(start, x.rank - 1))
    args: dict[str, Any] = {}
    put(args, "start_dim", maybe(draw, dim_ref(draw, x, [start]), start == 1))
    put(args, "end_dim", maybe(draw, dim_ref(draw, x, [end]), end == x.rank - 1))
    return Case([x], args)


def _reshape_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    token = draw(st.booleans())
    rest = draw(st.integers(1, 3))
    labels = (["token"] if token else []) + ["chan", "height", "width"][: rest - 1] + ["feature"]
    x = sized_input(draw, "x", labels, high=4)
    if token:
        x.dims[1] = ("token", None)
    total = 1
    for _, s in x.dims[1:]:
        total *= s or 1
    factors = []
    remaining = total
    for _ in range(draw(st.integers(1, 3)) - 1):
        f = draw(st.sampled_from(divisors(remaining)))
        factors.append(f)
        remaining //= f
    factors.append(remaining)
    if draw(st.booleans()):
        factors[draw(st.integers(0, len(factors) - 1))] = -1
    shape = [Name("batch"), *([Name("token")] if token else []), *factors]
    return Case([x], {"shape": shape})


def _permute_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", min_rank=3, max_rank=4)
    order = [0, *draw(st.permutations(list(range(1, x.rank))))]
    return Case([x], {"dims": [dim_ref(draw, x, [k]) for k in order]})


def _transpose_strategy(draw: Draw, spec) -> Case:
    st = strategies()
    x = float_input(draw, "x", min_rank=3, max_rank=4)
    a, b = draw(st.lists(st.integers(1, x.rank - 1), min_size=2, max_size=2, unique=True))
    return Case([x], {"dim0": dim_ref(draw, x, [a]), "dim1": dim_ref(draw, x, [b])})


# ------------------------------------------------------------------------------ the family

register(
    OpSpec(
        name="flatten",
        doc="Merges the dimensions start_dim..end_dim into one, named `feature` (the batch is never merged).",
        family="reshape",
        torch_module="torch.nn.Flatten",
        params=(
            HyperParam(
                "start_dim",
                "dim",
                default=1,
                doc="First dimension to flatten (the default keeps the batch dimension).",
            ),
            HyperParam("end_dim", "dim", default=-1, doc="Last dimension to flatten (inclusive)."),
            HyperParam("name", "dimname", default=None, keyword_only=True,
                       doc="The merged dimension's name (`feature` unless another dimension has it)."),
        ),
        example="h = x >> conv2d(16, 3) >> flatten >> linear(10)",
        shape_doc="[batch, d1, ..., dn] -> [batch, ..., feature=d_start * ... * d_end, ...]",
        shape=_flatten_shape,
        emit=_flatten_emit,
        autotest=_flatten_strategy,
    )
)

register(
    OpSpec(
        name="reshape",
        doc="Gives each sample a new shape with the same number of elements; the batch dimension is kept.",
        family="reshape",
        params=(
            HyperParam(
                "shape",
                "shape",
                doc="The new dimensions after the batch (which is always kept and may be written first as "
                "`batch`): sizes, parameters, or names of the input's dimensions (which keep their name "
                "and size); one size may be -1 (inferred).",
            ),
        ),
        example="h = x >> reshape([token, 4, -1])",
        shape_doc="[batch, *dims] -> [batch, *shape] with as many elements per sample",
        shape=_reshape_shape,
        emit=_reshape_emit,
        owns_module=_reshape_owns_module,
        autotest=_reshape_strategy,
    )
)

register(
    OpSpec(
        name="permute",
        doc="Reorders the dimensions of the tensor; the batch dimension stays first.",
        family="reshape",
        params=(
            HyperParam(
                "dims",
                "dims",
                doc="Every dimension of the input once, in the new order (names or indices); the batch "
                "(index 0) comes first and may be left out.",
            ),
        ),
        example="h = x >> permute([0, 2, 1])",
        shape_doc="[batch, d1, ..., dn] -> [batch, the dimensions in the order of dims]",
        shape=_permute_shape,
        emit=_permute_emit,
        autotest=_permute_strategy,
    )
)

register(
    OpSpec(
        name="transpose",
        doc="Swaps two dimensions of the tensor (neither may be the batch dimension).",
        family="reshape",
        params=(
            HyperParam("dim0", "dim", doc="First dimension to swap (a name or an index)."),
            HyperParam("dim1", "dim", doc="Second dimension to swap (a name or an index)."),
        ),
        example="h = x >> transpose(1, 2)",
        shape_doc="[..., a, ..., b, ...] -> [..., b, ..., a, ...]",
        shape=_transpose_shape,
        emit=_transpose_emit,
        autotest=_transpose_strategy,
    )
)
