"""A seeded generator of random, mostly well-typed tg programs (LANGUAGE.md sections 1-13).

`generate(seed)` returns a `Program` whose `text` is one `model` with typed parameters and
defaults, one or two inputs with named dimensions (symbolic or literal sizes, float, `long` ids
and `bool` masks), about 2-12 statements over every op family of the registry (chains, branches and
merges, destructuring of multi-output ops, blocks with parameters that feed sizes, dimensions and
hyper-parameters, called 1-3 times with other arguments and on inputs of other ranks, `repeat`
with literal and parameter counts) and an `output` line. About half the programs (`V04_SHARE`, drawn
from a stream of its own, so the other seeds keep the v0.3 generator's programs) also use section 13:
arithmetic on values (`a + b`, `x * 0.5`, `1 - x`, `-x`, `x + (x >> f)`), broadcasting at literal 1s
(`keepdim=true`, `unsqueeze`, `parameter([1, 1, feature=d])`, `arange(x, dim=token) >> embedding`),
`expand(like=)`, `squeeze`, chains as call arguments (`add(x, x >> relu)`, `sub`, `div`), indexing
(`x[token=-1]`, `x[:, 1:]`, `x[feature=:n]`, `x[token=a:b]`), `layer NAME` applied twice, `tie=`,
repeats with a context value, and new ops (relu6, hardswish, elu, softplus, exp, abs, clamp, sum,
logsumexp, groupnorm, conv_transpose1d/2d, upsample, pad, pixel_shuffle). The same seed always gives the same
text (a plain `random.Random(seed)`), so a failure is reproduced from its seed alone.

To keep most programs well-typed, the generator carries a small model of shapes of its own (not
the compiler's): every value it creates has a `Shape`, a tuple of `Dim`s whose `Size` is a value
under the scope's current parameter values plus, where it can be written in tg, an expression
(`width * 2`) or, for sizes known only when the model runs, an expression over input dimensions
(`token + token`). Each op has a rule here (`RULES`) that says what it makes of its inputs or
raises `Invalid`; proposals are drawn for the current shapes and kept only when the rules accept
them. Blocks are generated lazily, for the shape of the value they are first called on: a body
that needs a size, a dimension or a hyper-parameter creates a block parameter on the spot, and
the caller chooses its argument in its own scope. A later call of the block replays its body with
the rules (`run_block`) to know the shapes it gives for other arguments and inputs.

A program the checker rejects is fine (the harness counts it); this model only has to be good
enough that most programs are accepted. `strategy()` wraps `generate` as a hypothesis strategy.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# ------------------------------------------------------------------------------ expressions


class Expr:
    """An argument or size expression: literals, parameters, run-time dimensions, arithmetic."""

    def render(self) -> str:
        raise NotImplementedError

    def eval(self, env: dict[str, Any], dims: dict[str, int] | None = None) -> Any:
        raise NotImplementedError

    def subst(self, mapping: dict[str, Expr]) -> Expr:
        return self

    def writable(self) -> bool:
        """Whether the expression can be written in tg (it reads no run-time dimension)."""
        return True


@dataclass(frozen=True)
class Lit(Expr):
    value: Any

    def render(self) -> str:
        v = self.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)

    def eval(self, env, dims=None):
        return self.value


@dataclass(frozen=True)
class Name(Expr):
    """A parameter of the enclosing model or block."""

    id: str

    def render(self) -> str:
        return self.id

    def eval(self, env, dims=None):
        return env[self.id]

    def subst(self, mapping):
        return mapping.get(self.id, self)


@dataclass(frozen=True)
class DimVar(Expr):
    """The run-time size of an input dimension (`token`); never written in tg."""

    id: str

    def render(self) -> str:
        raise ValueError(f"the run-time size `{self.id}` cannot be written in tg")

    def eval(self, env, dims=None):
        return None if dims is None else dims[self.id]

    def writable(self) -> bool:
        return False


@dataclass(frozen=True)
class DimRef(Expr):
    """A dimension given by name in a `dim`-like argument (`dim=token`)."""

    id: str

    def render(self) -> str:
        return self.id

    def eval(self, env, dims=None):
        return DName(self.id)


_PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
}


@dataclass(frozen=True)
class Bin(Expr):
    op: str
    a: Expr
    b: Expr

    def render(self) -> str:
        def side(e: Expr, right: bool) -> str:
            text = e.render()
            if isinstance(e, Bin) and (_PREC[e.op] < _PREC[self.op] or (right and _PREC[e.op] == _PREC[self.op])):
                return f"({text})"
            if isinstance(e, Lit) and isinstance(e.value, (int, float)) and e.value < 0:
                return f"({text})"
            return text

        return f"{side(self.a, False)} {self.op} {side(self.b, True)}"

    def eval(self, env, dims=None):
        a, b = self.a.eval(env, dims), self.b.eval(env, dims)
        if a is None or b is None:
            return None
        if self.op == "//" and b == 0:
            return None
        return _PY_OPS[self.op](a, b)

    def subst(self, mapping):
        return binop(self.op, self.a.subst(mapping), self.b.subst(mapping))

    def writable(self) -> bool:
        return self.a.writable() and self.b.writable()


_PREC = {"+": 1, "-": 1, "*": 2, "//": 2}


@dataclass(frozen=True)
class NamedItem(Expr):
    """`name=size`, an item of a `parameter` shape."""

    name: str
    size: Expr

    def render(self) -> str:
        return f"{self.name}={self.size.render()}"

    def eval(self, env, dims=None):
        return self.size.eval(env, dims)

    def subst(self, mapping):
        return NamedItem(self.name, self.size.subst(mapping))

    def writable(self) -> bool:
        return self.size.writable()


@dataclass(frozen=True)
class LayerRef(Expr):
    """A named layer given as an argument (`tie=wte`)."""

    id: str

    def render(self) -> str:
        return self.id

    def eval(self, env, dims=None):
        return None


@dataclass(frozen=True)
class ListE(Expr):
    items: tuple[Expr, ...]

    def render(self) -> str:
        return "[" + ", ".join(i.render() for i in self.items) + "]"

    def eval(self, env, dims=None):
        return [i.eval(env, dims) for i in self.items]

    def subst(self, mapping):
        return ListE(tuple(i.subst(mapping) for i in self.items))

    def writable(self) -> bool:
        return all(i.writable() for i in self.items)


def binop(op: str, a: Expr, b: Expr) -> Expr:
    """`a op b`, folding constants and the identities `x + 0`, `x * 1`, `x // 1`."""
    if isinstance(a, Lit) and isinstance(b, Lit):
        if op == "//" and b.value == 0:
            return Bin(op, a, b)
        return Lit(_PY_OPS[op](a.value, b.value))
    if isinstance(b, Lit) and ((op in "+-" and b.value == 0) or (op in ("*", "//") and b.value == 1)):
        return a
    if isinstance(a, Lit) and ((op == "+" and a.value == 0) or (op == "*" and a.value == 1)):
        return b
    return Bin(op, a, b)


@dataclass(frozen=True)
class DName:
    """An evaluated `DimRef`."""

    name: str


# ------------------------------------------------------------------------------ the shape model


@dataclass(eq=False)
class Size:
    """A size (or any scalar argument): its value under the scope's parameter values (None when
    it is known only at run time) and, where one is known, its expression. Compared by identity:
    a dimension that an op passes through keeps its `Size` object."""

    value: Any
    expr: Expr | None


def lit(v: Any) -> Size:
    return Size(v, Lit(v))


def _arith(op: str, a: Size, b: Size) -> Size:
    value = None if a.value is None or b.value is None else (
        None if op == "//" and b.value == 0 else _PY_OPS[op](a.value, b.value))
    expr = None if a.expr is None or b.expr is None else binop(op, a.expr, b.expr)
    return Size(value, expr)


def s_add(a: Size, b: Size) -> Size:
    return _arith("+", a, b)


def s_sub(a: Size, b: Size) -> Size:
    return _arith("-", a, b)


def s_mul(a: Size, b: Size) -> Size:
    return _arith("*", a, b)


def s_div(a: Size, b: Size) -> Size:
    return _arith("//", a, b)


_PROBES = [{}, {}, {}]  # assignments of run-time dimensions used to compare run-time sizes


def _probe(i: int, name: str) -> int:
    table = _PROBES[i]
    if name not in table:
        table[name] = 7 + 13 * i + 5 * (sum(map(ord, name)) % 11)
    return table[name]


class _Probe(dict):
    """Probe values for every name (parameters and run-time dimensions alike)."""

    def __init__(self, i: int):
        super().__init__()
        self.i = i

    def __missing__(self, key: str) -> int:
        return _probe(self.i, key)


def size_eq(a: Size, b: Size) -> bool:
    """Whether two sizes are equal: by value when both are known now, else (sizes known only at run
    time, which the checker compares by expression) by evaluating both at a few assignments of
    every name they read."""
    if a is b:
        return True
    if a.value is not None or b.value is not None:
        return a.value is not None and a.value == b.value
    if a.expr is None or b.expr is None:
        return False
    try:
        return all(a.expr.eval(_Probe(i), _Probe(i)) == b.expr.eval(_Probe(i), _Probe(i)) for i in range(3))
    except Exception:
        return False


@dataclass(frozen=True)
class Dim:
    name: str | None
    size: Size
    batch: bool = False


@dataclass(frozen=True)
class Shape:
    dims: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.dims)

    def replace(self, i: int, d: Dim) -> Shape:
        dims = list(self.dims)
        dims[i] = d
        return Shape(tuple(dims), self.dtype)

    def show(self) -> str:
        def one(d: Dim) -> str:
            s = d.size
            text = str(s.value) if s.value is not None else (
                "?" if s.expr is None else _show_expr(s.expr))
            return f"{d.name}={text}" if d.name else text

        prefix = "" if self.dtype == "float32" else self.dtype
        return prefix + "[" + ", ".join(one(d) for d in self.dims) + "]"


def _show_expr(e: Expr) -> str:
    if isinstance(e, DimVar):
        return e.id
    if isinstance(e, Bin):
        return f"({_show_expr(e.a)} {e.op} {_show_expr(e.b)})"
    return e.render()


def shape_eq(a: Shape, b: Shape) -> bool:
    return (a.dtype == b.dtype and a.rank == b.rank
            and all(x.name == y.name and x.batch == y.batch and size_eq(x.size, y.size)
                    for x, y in zip(a.dims, b.dims)))


class Invalid(Exception):
    """The generator's shape model rejects an op application."""


def req(cond: Any, why: str = "") -> None:
    if not cond:
        raise Invalid(why)


# ------------------------------------------------------------------------------ op rules
#
# What the generator believes each op does (the registry's documented shapes). `a` holds the
# evaluated arguments: scalars as `Size`, lists as lists, dimension names as `DName`.

RULES: dict[str, Callable[[list[Shape], dict[str, Any]], list[Shape]]] = {}


def rule(*names: str):
    def register(fn):
        for n in names:
            RULES[n] = fn
        return fn

    return register


def _is_int(s: Any) -> bool:
    return isinstance(s, Size) and isinstance(s.value, int) and not isinstance(s.value, bool)


def _pos(s: Any, low: int = 1) -> None:
    req(_is_int(s) and s.value >= low, "not a positive integer")


def _float(x: Shape) -> None:
    req(x.dtype == "float32", "needs a float tensor")


def _last_known(x: Shape) -> Dim:
    req(x.rank >= 2, "rank")
    last = x.dims[-1]
    req(last.size.value is not None and not last.batch, "last dimension has no size")
    return last


def dim_index(x: Shape, ref: Any, allow_batch: bool = False) -> int:
    if isinstance(ref, DName):
        matches = [i for i, d in enumerate(x.dims) if d.name == ref.name]
        req(matches, f"no dimension {ref.name}")
        i = matches[0]
    else:
        req(_is_int(ref), "dim is not an index")
        i = ref.value
        req(-x.rank <= i < x.rank, "dim out of range")
        i %= x.rank
    req(allow_batch or not x.dims[i].batch, "the batch dimension")
    return i


def _ints(v: Any, n: int) -> list[Size]:
    """An `ints` argument (one integer or one per spatial dimension) as n Sizes."""
    if isinstance(v, list):
        req(len(v) == n, "wrong number of sizes")
        return v
    return [v] * n


@rule("linear")
def _linear(ins, a):
    (x,) = ins
    _float(x)
    last = _last_known(x)
    out = a.get("out_features")
    if out is None:
        return [x]
    _pos(out)
    return [x.replace(-1, Dim(last.name, out))]


@rule("mlp")
def _mlp(ins, a):
    (x,) = ins
    _float(x)
    last = _last_known(x)
    widths = a["widths"] if isinstance(a["widths"], list) else [a["widths"]]
    for w in widths:
        _pos(w)
    return [x.replace(-1, Dim(last.name, widths[-1]))]


@rule("relu", "gelu", "tanh", "sigmoid", "silu", "identity", "leaky_relu", "dropout")
def _elementwise(ins, a):
    (x,) = ins
    _float(x)
    if "p" in a:
        req(isinstance(a["p"].value, float) and 0 <= a["p"].value <= 1)
    return [x]


@rule("softmax", "log_softmax")
def _softmax(ins, a):
    (x,) = ins
    _float(x)
    dim_index(x, a.get("dim", lit(-1)), allow_batch=True)
    return [x]


@rule("layernorm")
def _layernorm(ins, a):
    (x,) = ins
    _float(x)
    _last_known(x)
    return [x]


@rule("batchnorm1d", "batchnorm2d")
def _batchnorm(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4 if a["_op"] == "batchnorm2d" else x.rank in (2, 3), "rank")
    req(x.dims[1].size.value is not None and not x.dims[1].batch, "channels have no size")
    return [x]


def _window(size: Size, k: Size, s: Size, p: Size, d: Size, ceil: bool = False) -> Size:
    """(size + 2 * p - d * (k - 1) - 1) // s + 1, as torch computes it (ceil_mode included)."""
    span = s_sub(s_sub(s_add(size, s_mul(lit(2), p)), s_mul(d, s_sub(k, lit(1)))), lit(1))
    if not ceil:
        out = s_add(s_div(span, s), lit(1))
    else:
        # ceil((span) / s) + 1, less one when the last window would start in the right padding
        out = s_add(s_sub(lit(0), s_div(s_sub(lit(0), span), s)), lit(1))
        if out.value is not None and size.value is not None and (out.value - 1) * s.value >= size.value + p.value:
            out = s_sub(out, lit(1))
    if out.value is not None:
        req(out.value >= 1, "the window does not fit")
    return out


@rule("conv1d", "conv2d")
def _conv(ins, a):
    (x,) = ins
    _float(x)
    n = 1 if a["_op"] == "conv1d" else 2
    req(x.rank == n + 2, "rank")
    cin = x.dims[1]
    req(cin.size.value is not None and not cin.batch, "channels have no size")
    out = a["out_channels"]
    _pos(out)
    groups = a.get("groups", lit(1))
    _pos(groups)
    req(cin.size.value % groups.value == 0 and out.value % groups.value == 0, "groups")
    ks = _ints(a["kernel_size"], n)
    stride = _ints(a.get("stride", lit(1)), n)
    dil = _ints(a.get("dilation", lit(1)), n)
    for v in (*ks, *stride, *dil):
        _pos(v)
    padding = a.get("padding", lit(0))
    dims = list(x.dims)
    dims[1] = Dim(cin.name, out)
    if isinstance(padding, Size) and padding.value == "same":
        req(all(s.value == 1 for s in stride), "same padding needs stride 1")
        return [Shape(tuple(dims), x.dtype)]
    if isinstance(padding, Size) and padding.value == "valid":
        padding = lit(0)
    pads = _ints(padding, n)
    for p in pads:
        _pos(p, 0)
    for j in range(n):
        d = x.dims[2 + j]
        req(not d.batch)
        dims[2 + j] = Dim(d.name, _window(d.size, ks[j], stride[j], pads[j], dil[j]))
    return [Shape(tuple(dims), x.dtype)]


@rule("maxpool2d", "avgpool2d")
def _pool(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4, "rank")
    ks = _ints(a["kernel_size"], 2)
    stride = a.get("stride")
    stride = ks if stride is None else _ints(stride, 2)
    pads = _ints(a.get("padding", lit(0)), 2)
    dil = _ints(a.get("dilation", lit(1)), 2)
    ceil = bool(a.get("ceil_mode", lit(False)).value)
    dims = list(x.dims)
    for j in range(2):
        _pos(ks[j])
        _pos(stride[j])
        _pos(pads[j], 0)
        req(pads[j].value <= ks[j].value // 2, "padding over half the window")
        d = x.dims[2 + j]
        req(not d.batch)
        dims[2 + j] = Dim(d.name, _window(d.size, ks[j], stride[j], pads[j], dil[j], ceil))
    return [Shape(tuple(dims), x.dtype)]


@rule("adaptive_avgpool2d")
def _adaptive(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4, "rank")
    sizes = _ints(a["output_size"], 2)
    for s in sizes:
        _pos(s)
    return [Shape((*x.dims[:2], Dim(x.dims[2].name, sizes[0]), Dim(x.dims[3].name, sizes[1])), x.dtype)]


@rule("flatten")
def _flatten(ins, a):
    (x,) = ins
    start = dim_index(x, a.get("start_dim", lit(1)))
    end = dim_index(x, a.get("end_dim", lit(-1)))
    req(start <= end, "start after end")
    size = lit(1)
    for d in x.dims[start:end + 1]:
        size = s_mul(size, d.size)
    return [Shape((*x.dims[:start], Dim("feature", size), *x.dims[end + 1:]), x.dtype)]


@rule("reshape")
def _reshape(ins, a):
    (x,) = ins
    req(x.rank >= 2)
    items = a["shape"]
    names = [d.name for d in x.dims]
    out: list[Dim | None] = []
    used: set[int] = set()
    for item in items:
        if isinstance(item, DName):
            req(item.name in names, "unknown name")
            j = names.index(item.name)
            req(j > 0 and j not in used, "name twice or the batch")
            used.add(j)
            out.append(x.dims[j])
        elif _is_int(item) and item.value == -1:
            req(None not in out, "-1 twice")
            out.append(None)
        else:
            _pos(item)
            out.append(Dim(None, item))
    rest = [d for j, d in enumerate(x.dims) if j > 0 and j not in used]
    req(all(d.size.value is not None for d in rest), "an unsized dimension is not accounted for")
    total = math.prod(d.size.value for d in rest)
    given = math.prod(d.size.value for d in out if d is not None and d.size.value is not None and d not in x.dims)
    if None in out:
        req(total % given == 0, "does not divide")
        out[out.index(None)] = Dim(None, Size(total // given, None))
    else:
        req(total == given, "element count")
    return [Shape((x.dims[0], *out), x.dtype)]


@rule("permute")
def _permute(ins, a):
    (x,) = ins
    order = [dim_index(x, r, allow_batch=True) for r in a["dims"]]
    if len(order) == x.rank - 1:
        req(0 not in order)
        order = [0, *order]
    req(sorted(order) == list(range(x.rank)) and order[0] == 0, "not a permutation keeping the batch")
    return [Shape(tuple(x.dims[i] for i in order), x.dtype)]


@rule("transpose")
def _transpose(ins, a):
    (x,) = ins
    i, j = dim_index(x, a["dim0"]), dim_index(x, a["dim1"])
    dims = list(x.dims)
    dims[i], dims[j] = dims[j], dims[i]
    return [Shape(tuple(dims), x.dtype)]


@rule("embedding")
def _embedding(ins, a):
    (x,) = ins
    req(x.dtype == "int64", "ids must be integers")
    _pos(a["num_embeddings"])
    _pos(a["embedding_dim"])
    name = "embedding" if any(d.name == "feature" for d in x.dims) else "feature"
    return [Shape((*x.dims, Dim(name, a["embedding_dim"])), "float32")]


@rule("attention")
def _attention(ins, a):
    req(len(ins) in (3, 4), "inputs")
    q, k, v = ins[:3]
    for t in (q, k, v):
        _float(t)
        req(t.rank == 3, "rank")
    e = _last_known(q)
    req(size_eq(k.dims[-1].size, e.size) and size_eq(v.dims[-1].size, e.size), "widths")
    req(size_eq(k.dims[1].size, v.dims[1].size) and k.dims[1].name == v.dims[1].name, "keys and values")
    heads = a["num_heads"]
    _pos(heads)
    req(e.size.value % heads.value == 0, "heads do not divide")
    if len(ins) == 4:
        m = ins[3]
        req(m.dtype == "bool" and m.rank == 2 and size_eq(m.dims[1].size, k.dims[1].size), "mask")
    if a.get("causal", lit(False)).value:
        req(size_eq(q.dims[1].size, k.dims[1].size), "causal needs as many queries as keys")
    weights = (q.dims[0], q.dims[1], k.dims[1])
    if not a.get("average_weights", lit(True)).value:
        weights = (q.dims[0], Dim("head", heads), q.dims[1], k.dims[1])
    return [q, Shape(weights, "float32")]


@rule("lstm", "gru")
def _rnn(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 3)
    last = _last_known(x)
    hidden = a["hidden_size"]
    layers = a.get("num_layers", lit(1))
    _pos(hidden)
    _pos(layers)
    bi = a.get("bidirectional", lit(False))
    dirs = lit(2 if bi.value else 1)
    dirs = Size(dirs.value, dirs.expr)
    drop = a.get("dropout", lit(0.0))
    req(not (drop.value and isinstance(layers.expr, Lit) and layers.value == 1), "dropout with one layer")
    seq = x.replace(-1, Dim(last.name, s_mul(hidden, dirs)))
    batch = Dim(x.dims[0].name, x.dims[0].size, True)
    state = Shape((Dim("layer", s_mul(layers, dirs)), batch, Dim(last.name, hidden)), x.dtype)
    return [seq, state] if a["_op"] == "gru" else [seq, state, state]


@rule("split", "chunk")
def _split(ins, a):
    (x,) = ins
    k = dim_index(x, a.get("dim", lit(-1)))
    d = x.dims[k]
    sections = a["chunks"] if a["_op"] == "chunk" else a["sections"]
    if isinstance(sections, list):
        for s in sections:
            _pos(s)
        req(d.size.value is not None and sum(s.value for s in sections) == d.size.value, "pieces do not add up")
        return [x.replace(k, Dim(d.name, s)) for s in sections]
    _pos(sections)
    n = sections.value
    if d.size.value is not None:
        req(d.size.value % n == 0, "does not divide")
    piece = s_div(d.size, sections)
    return [x.replace(k, Dim(d.name, piece)) for _ in range(n)]


def _same_all(ins: list[Shape]) -> None:
    for t in ins[1:]:
        req(shape_eq(t, ins[0]), "shapes differ")


@rule("sub", "div")
def _subdiv(ins, a):
    req(len(ins) >= 2)
    out = ins[0]
    for t in ins[1:]:
        out = broadcast(out, t)
    return [out]


@rule("add", "mul")
def _addmul(ins, a):
    req(len(ins) >= 2)
    _float(ins[0])
    _same_all(ins)
    return [ins[0]]


@rule("mean", "max")
def _meanmax(ins, a):
    if len(ins) >= 2:
        req("dim" not in a)
        _float(ins[0])
        _same_all(ins)
        return [ins[0]]
    (x,) = ins
    _float(x)
    req("dim" in a, "a reduction needs dim")
    k = dim_index(x, a["dim"])
    if a.get("keepdim", lit(False)).value:
        return [x.replace(k, Dim(x.dims[k].name, lit(1)))]
    return [Shape(x.dims[:k] + x.dims[k + 1:], x.dtype)]


@rule("cat")
def _cat(ins, a):
    req(len(ins) >= 2)
    x = ins[0]
    k = dim_index(x, a["dim"])
    total = x.dims[k].size
    for t in ins[1:]:
        req(t.rank == x.rank and t.dtype == x.dtype)
        for j, (d, e) in enumerate(zip(x.dims, t.dims)):
            req(d.name == e.name, "names differ")
            if j != k:
                req(size_eq(d.size, e.size), "sizes differ")
        total = s_add(total, t.dims[k].size)
    return [x.replace(k, Dim(x.dims[k].name, total))]


@rule("stack")
def _stack(ins, a):
    req(len(ins) >= 2)
    _same_all(ins)
    x = ins[0]
    ref = a["dim"]
    if isinstance(ref, DName):
        req(all(d.name != ref.name for d in x.dims), "the name exists")
        index, name = 1, ref.name
    else:
        req(_is_int(ref) and -(x.rank + 1) <= ref.value <= x.rank)
        index, name = ref.value % (x.rank + 1), None
    req(index != 0, "before the batch")
    dims = list(x.dims)
    dims.insert(index, Dim(name, lit(len(ins))))
    return [Shape(tuple(dims), x.dtype)]


@rule("conv_block")
def _conv_block(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4 and x.dims[1].size.value is not None and not x.dims[1].batch, "images with channels")
    _pos(a["channels"])
    _pos(a.get("kernel", lit(3)))
    return [x.replace(1, Dim(x.dims[1].name, a["channels"]))]


@rule("resnet_block")
def _resnet_block(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4 and not x.dims[1].batch and size_eq(x.dims[1].size, a["channels"]), "channels")
    return [x]


@rule("transformer_encoder_layer")
def _encoder_layer(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 3)
    e = _last_known(x)
    req(size_eq(e.size, a["d_model"]), "d_model")
    _pos(a["heads"])
    _pos(a["ff"])
    req(e.size.value % a["heads"].value == 0, "heads")
    return [x]


@rule("tabular_resnet_block")
def _tabular_block(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 2)
    e = _last_known(x)
    req(size_eq(e.size, a["d_main"]), "d_main")
    _pos(a["hidden"])
    return [x]


# ---- v0.4 ops (LANGUAGE.md section 13)


@rule("relu6", "hardswish", "elu", "softplus", "exp", "abs", "clamp")
def _elementwise_v4(ins, a):
    (x,) = ins
    _float(x)
    return [x]


@rule("sum", "logsumexp")
def _sum(ins, a):
    (x,) = ins
    _float(x)
    k = dim_index(x, a["dim"])
    if a.get("keepdim", lit(False)).value:
        return [x.replace(k, Dim(x.dims[k].name, lit(1)))]
    return [Shape(x.dims[:k] + x.dims[k + 1:], x.dtype)]


@rule("groupnorm")
def _groupnorm(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank in (3, 4) and x.dims[0].batch, "rank")
    c = x.dims[1].size
    req(c.value is not None and not x.dims[1].batch, "channels have no size")
    g = a["num_groups"]
    _pos(g)
    req(c.value % g.value == 0, "groups do not divide the channels")
    return [x]


@rule("conv_transpose1d", "conv_transpose2d")
def _conv_transpose(ins, a):
    (x,) = ins
    _float(x)
    n = 1 if a["_op"] == "conv_transpose1d" else 2
    req(x.rank == n + 2 and x.dims[0].batch, "rank")
    cin = x.dims[1]
    req(cin.size.value is not None and not cin.batch, "channels have no size")
    out = a["out_channels"]
    _pos(out)
    k, s = a["kernel_size"], a.get("stride", lit(1))
    p, op = a.get("padding", lit(0)), a.get("output_padding", lit(0))
    _pos(k)
    _pos(s)
    _pos(p, 0)
    _pos(op, 0)
    req(op.value < s.value, "output_padding must be smaller than stride")
    dims = list(x.dims)
    dims[1] = Dim(cin.name, out)
    for j in range(2, 2 + n):
        d = x.dims[j]
        # (size - 1) * stride - 2 * padding + (kernel_size - 1) + output_padding + 1
        size = s_add(s_add(s_sub(s_mul(s_sub(d.size, lit(1)), s), s_mul(lit(2), p)), s_sub(k, lit(1))),
                     s_add(op, lit(1)))
        if size.value is not None:
            req(size.value >= 1, "no output positions")
        else:
            req(p.value == 0, "padding of a run-time size")  # the output may be empty for short inputs
        dims[j] = Dim(d.name, size)
    return [Shape(tuple(dims), x.dtype)]


@rule("upsample")
def _upsample(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank in (3, 4) and x.dims[0].batch, "rank")
    f = a["scale_factor"]
    _pos(f)
    dims = list(x.dims)
    for j in range(2, x.rank):
        dims[j] = Dim(x.dims[j].name, s_mul(x.dims[j].size, f))
    return [Shape(tuple(dims), x.dtype)]


@rule("pad")
def _pad(ins, a):
    (x,) = ins
    _float(x)
    amounts = a["pad"] if isinstance(a["pad"], list) else [a["pad"]]
    req(len(amounts) % 2 == 0 and len(amounts) // 2 <= x.rank - 1, "pairs")
    dims = list(x.dims)
    for j in range(len(amounts) // 2):
        d = dims[-1 - j]
        req(not d.batch, "the batch")
        before, after = amounts[2 * j], amounts[2 * j + 1]
        req(_is_int(before) and _is_int(after) and before.value >= 0 and after.value >= 0, "crops")
        dims[-1 - j] = Dim(d.name, s_add(s_add(d.size, before), after))
    return [Shape(tuple(dims), x.dtype)]


@rule("pixel_shuffle")
def _pixel_shuffle(ins, a):
    (x,) = ins
    _float(x)
    req(x.rank == 4 and x.dims[0].batch, "rank")
    r = a["upscale_factor"]
    _pos(r)
    c = x.dims[1].size
    req(c.value is not None and c.value % (r.value * r.value) == 0, "channels")
    rr = s_mul(r, r)
    return [Shape((x.dims[0], Dim(x.dims[1].name, s_div(c, rr)), Dim(x.dims[2].name, s_mul(x.dims[2].size, r)),
                   Dim(x.dims[3].name, s_mul(x.dims[3].size, r))), x.dtype)]


@rule("unsqueeze")
def _unsqueeze(ins, a):
    (x,) = ins
    k = a["dim"]
    req(_is_int(k) and 1 <= k.value <= x.rank and x.dims[0].batch, "position")
    name = a.get("name")
    dims = list(x.dims)
    dims.insert(k.value, Dim(name.name if isinstance(name, DName) else None, lit(1)))
    req(name is None or all(d.name != name.name for d in x.dims), "the name exists")
    return [Shape(tuple(dims), x.dtype)]


@rule("squeeze")
def _squeeze(ins, a):
    (x,) = ins
    k = dim_index(x, a["dim"])
    req(_literal_one(x.dims[k].size), "not the literal 1")
    return [Shape(x.dims[:k] + x.dims[k + 1:], x.dtype)]


@rule("expand")
def _expand(ins, a):
    x, like = ins
    req(x.rank <= like.rank, "more dimensions than like")
    dims = list(like.dims)
    for j in range(1, x.rank + 1):
        d, e = x.dims[-j], like.dims[-j]
        if _literal_one(d.size):
            req(d.name is None or e.name is None or d.name == e.name, "names")
        else:
            req(size_eq(d.size, e.size) and d.name == e.name and d.batch == e.batch, "sizes")
    return [Shape(tuple(dims), x.dtype)]


@rule("arange")
def _arange(ins, a):
    (x,) = ins
    k = dim_index(x, a["dim"])
    d = x.dims[k]
    return [Shape((Dim(d.name, d.size),), "int64")]


@rule("parameter")
def _parameter(ins, a):
    req(not ins)
    dims = []
    for item in a["shape"]:
        _pos(item)
        named = isinstance(item.expr, NamedItem)
        dims.append(Dim(item.expr.name if named else None, Size(item.value, item.expr.size) if named else item))
    return [Shape(tuple(dims), "float32")]


def _literal_one(s: Size) -> bool:
    return isinstance(s.expr, Lit) and s.expr.value == 1


def broadcast(a: Shape, b: Shape) -> Shape:
    """PyTorch's broadcasting on named dimensions (LANGUAGE.md 13): aligned from the right, equal
    sizes or one the literal 1 (compiler/ops/arith.py), names equal where both are named."""
    _float(a)
    _float(b)
    out: list[Dim] = []
    for j in range(1, max(a.rank, b.rank) + 1):
        d = a.dims[-j] if j <= a.rank else None
        e = b.dims[-j] if j <= b.rank else None
        if d is None or e is None:
            out.append(d or e)
            continue
        req(d.name is None or e.name is None or d.name == e.name, "names differ")
        name = d.name or e.name
        batch = d.batch or e.batch
        if size_eq(d.size, e.size):
            out.append(Dim(name, d.size if not _literal_one(d.size) else e.size, batch))
        elif _literal_one(d.size):
            out.append(Dim(name, e.size, batch))
        elif _literal_one(e.size):
            out.append(Dim(name, d.size, batch))
        else:
            raise Invalid("sizes differ")
    return Shape(tuple(reversed(out)), "float32")


STD = {"mlp", "conv_block", "resnet_block", "transformer_encoder_layer", "tabular_resnet_block"}

# signature order of each op's hyper-parameters (positional arguments fill them in order)
SIGNATURES: dict[str, tuple[str, ...]] = {
    "linear": ("out_features", "bias"),
    "mlp": ("widths", "p"),
    "conv1d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "conv2d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "maxpool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avgpool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "adaptive_avgpool2d": ("output_size",),
    "flatten": ("start_dim", "end_dim"),
    "permute": ("dims",),
    "reshape": ("shape",),
    "transpose": ("dim0", "dim1"),
    "dropout": ("p",),
    "softmax": ("dim",),
    "log_softmax": ("dim",),
    "leaky_relu": ("negative_slope",),
    "batchnorm1d": ("eps", "momentum", "affine"),
    "batchnorm2d": ("eps", "momentum", "affine"),
    "layernorm": ("eps", "elementwise_affine", "bias"),
    "embedding": ("num_embeddings", "embedding_dim", "padding_idx"),
    "attention": ("num_heads", "dropout", "bias", "causal", "average_weights"),
    "lstm": ("hidden_size", "num_layers", "bias", "dropout", "bidirectional"),
    "gru": ("hidden_size", "num_layers", "bias", "dropout", "bidirectional"),
    "chunk": ("chunks", "dim"),
    "split": ("sections", "dim"),
    "conv_block": ("channels", "kernel"),
    "resnet_block": ("channels",),
    "transformer_encoder_layer": ("d_model", "heads", "ff", "p"),
    "tabular_resnet_block": ("d_main", "hidden", "dropout_first", "dropout_second"),
    "elu": ("alpha",),
    "softplus": ("beta", "threshold"),
    "clamp": ("min", "max"),
    "sum": ("dim", "keepdim"),
    "logsumexp": ("dim", "keepdim"),
    "groupnorm": ("num_groups", "eps", "affine"),
    "conv_transpose1d": ("out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias"),
    "conv_transpose2d": ("out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias"),
    "upsample": ("size", "scale_factor", "mode"),
    "pad": ("pad", "mode", "value"),
    "pixel_shuffle": ("upscale_factor",),
    "squeeze": ("dim",),
    "unsqueeze": ("dim", "name"),
    "arange": ("dim",),
    "parameter": ("shape", "init", "std"),
}
VARIADIC = {"add", "mul", "cat", "stack", "mean", "max", "sub", "div"}
ALIASES = {
    ("linear", "out_features"): "out", ("conv1d", "out_channels"): "channels",
    ("conv2d", "out_channels"): "out", ("conv1d", "kernel_size"): "kernel",
    ("conv2d", "kernel_size"): "kernel", ("maxpool2d", "kernel_size"): "kernel",
    ("avgpool2d", "kernel_size"): "kernel", ("adaptive_avgpool2d", "output_size"): "size",
    ("leaky_relu", "negative_slope"): "slope", ("layernorm", "elementwise_affine"): "affine",
    ("embedding", "num_embeddings"): "vocab", ("embedding", "embedding_dim"): "dim",
    ("attention", "num_heads"): "heads", ("lstm", "hidden_size"): "hidden", ("gru", "hidden_size"): "hidden",
    ("lstm", "num_layers"): "layers", ("gru", "num_layers"): "layers",
    ("groupnorm", "num_groups"): "groups", ("pixel_shuffle", "upscale_factor"): "factor",
    ("conv_transpose1d", "kernel_size"): "kernel", ("conv_transpose2d", "out_channels"): "out",
}
N_INPUTS = {"attention": 3}  # leading inputs of the ops that take several (others: 1, or variadic)
MULTI_OUTPUT = {"attention", "lstm", "gru", "split", "chunk"}


# ------------------------------------------------------------------------------ program IR


@dataclass
class OpEl:
    """One op in a chain. `extra` are further input values after the piped one (or, at the head
    of a call-form statement, after the statement's inputs)."""

    op: str
    args: dict[str, Expr]
    extra: list[str] = field(default_factory=list)
    positional: int = 0  # how many leading hyper-parameters are written positionally
    keyword: dict[str, str] = field(default_factory=dict)  # hyper-parameter -> the alias written
    frozen: bool = False
    like: str | None = None  # `expand(like=NAME)`: a further input given by keyword


@dataclass
class LayerEl:
    """The application of a named layer (`v >> NAME`, after `layer NAME = op(...)`)."""

    name: str
    extra: list[str] = field(default_factory=list)
    frozen: bool = False


@dataclass
class BlockEl:
    name: str
    args: dict[str, Expr]
    extra: list[str] = field(default_factory=list)
    positional: int = 0
    frozen: bool = False


@dataclass
class RepeatEl:
    count: Expr
    body: list[Any]


@dataclass
class Assign:
    """`targets = head >> e1 >> e2`, or with `call` the head element in call form
    (`targets = op(head..., args) >> e2`); `merge` writes `merge op(head...)`."""

    targets: list[str]
    head: list[str]
    chain: list[Any]
    call: bool = False
    merge: bool = False
    expr: Any = None  # `targets = EXPR` (arithmetic, indexing, calls with chains as arguments); `chain`
    # then lists the elements inside it (for the counts of block calls and uses), `head` its values
    layer: bool = False  # `layer NAME = op(...)`: defines the layer (targets[0]) without applying it


# value expressions of v0.4 (LANGUAGE.md 13): operands of arithmetic and arguments of calls


@dataclass
class VName:
    name: str


@dataclass
class VNum:
    value: Any


@dataclass
class VNeg:
    a: Any


@dataclass
class VBin:
    op: str  # + - * /
    a: Any
    b: Any


@dataclass
class VChain:
    """`head >> e1 >> e2` as a value (in parentheses inside arithmetic)."""

    head: Any
    chain: list[Any]


@dataclass
class VIndex:
    """`name[...]`: `items` are the index items as written, `ops` what they do: (position,
    "select", index, None) or (position, "slice", start, end), with `Expr`s or None."""

    name: str
    items: list[str]
    ops: list[tuple[int, str, Any, Any]]


@dataclass
class VCall:
    """`op(arg, ...)` with value expressions as inputs (`add(x, x >> relu)`, `arange(x, dim=token)`)."""

    el: OpEl
    args: list[Any]


_VPREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def render_vexpr(e: Any, blocks: dict[str, Block], prec: int = 0, in_call: bool = False) -> str:
    """A value expression as written; `prec` is the precedence of the operator around it."""
    if isinstance(e, VName):
        return e.name
    if isinstance(e, VNum):
        return repr(e.value)
    if isinstance(e, VIndex):
        return f"{e.name}[{', '.join(e.items)}]"
    if isinstance(e, VNeg):
        return "-" + render_vexpr(e.a, blocks, 3)
    if isinstance(e, VBin):
        p = _VPREC[e.op]
        text = f"{render_vexpr(e.a, blocks, p)} {e.op} {render_vexpr(e.b, blocks, p + 1)}"
        return f"({text})" if p < prec else text
    if isinstance(e, VChain):
        text = render_vexpr(e.head, blocks, 3) + "".join(" >> " + render_element(el, [], blocks) for el in e.chain)
        return text if in_call and prec == 0 else f"({text})"
    if isinstance(e, VCall):
        return render_element(e.el, [render_vexpr(a, blocks, 0, in_call=True) for a in e.args], blocks)
    raise TypeError(e)


def vexpr_parts(e: Any, names: list[str], elements: list[Any]) -> None:
    """The values an expression reads and the elements it holds."""
    if isinstance(e, VName):
        names.append(e.name)
    elif isinstance(e, VIndex):
        names.append(e.name)
    elif isinstance(e, VNeg):
        vexpr_parts(e.a, names, elements)
    elif isinstance(e, VBin):
        vexpr_parts(e.a, names, elements)
        vexpr_parts(e.b, names, elements)
    elif isinstance(e, VChain):
        vexpr_parts(e.head, names, elements)
        elements.extend(e.chain)
    elif isinstance(e, VCall):
        for a in e.args:
            vexpr_parts(a, names, elements)
        elements.append(e.el)
        if e.el.like:
            names.append(e.el.like)


@dataclass
class Param:
    name: str
    type: str
    default: Any  # None: no default (blocks only)
    role: str
    typed: bool = True


@dataclass
class Block:
    name: str
    params: list[Param]
    inputs: list[str]
    outputs: list[str]
    body: list[Assign]
    kinds: dict[str, tuple] = field(default_factory=dict)  # param -> how a caller chooses its argument
    calls: int = 0


@dataclass
class InputDecl:
    name: str
    dtype: str
    dims: list[tuple[str | None, Expr | None]]  # (name, size expression) per dimension
    declared: bool = True


@dataclass
class Program:
    seed: int
    text: str
    features: Counter  # what the program uses (ops, blocks, repeats, ...), for coverage counts


# ------------------------------------------------------------------------------ interpretation


def _evaluate(e: Expr, mapping: dict[str, Expr], env: dict[str, Any]) -> Any:
    e = e.subst(mapping)
    if isinstance(e, DimRef):
        return DName(e.id)
    if isinstance(e, ListE):
        return [_evaluate(i, {}, env) for i in e.items]
    return Size(e.eval(env), e)


def _slice_length(n: int, start: int | None, end: int | None) -> int:
    return len(range(n)[slice(start, end)])


def index_shape(x: Shape, k: int, kind: str, a: Size | None, b: Size | None) -> Shape:
    """`x[...]` at position k: a select (a: the index) or a slice (a: start, b: end), as the checker
    takes them (Python's clamping; a statically empty slice is an error)."""
    req(0 < k < x.rank, "the batch is never indexed")
    d = x.dims[k]
    n = d.size.value
    if kind == "select":
        req(_is_int(a), "index")
        i = a.value
        if n is not None:
            req(-n <= i < n, "index out of range")
        else:
            req(i in (0, -1), "an index of a run-time size")
        return Shape(x.dims[:k] + x.dims[k + 1:], x.dtype)
    for v in (a, b):
        req(v is None or _is_int(v), "bound")
    start, end = (None if a is None else a.value), (None if b is None else b.value)
    if n is not None:
        length = _slice_length(n, start, end)
        req(length >= 1, "an empty slice")
        clamped = any(v is not None and not -n <= v <= n for v in (start, end))
        if start is None and end is not None and end > 0 and not clamped:
            size = Size(length, b.expr)
        elif start is not None and start > 0 and end is None and not clamped:
            size = s_sub(d.size, a)
        elif start is not None and start < 0 and end is None and not clamped and isinstance(a.expr, Lit):
            size = lit(length)
        elif start is not None and end is not None and 0 < start < end and not clamped:
            size = s_sub(b, a)
        else:
            size = Size(length, None)
        return x.replace(k, Dim(d.name, size))
    # a run-time size: only the forms whose size is an expression of it (the checker requires the
    # size to be large enough at run time)
    if start is not None and start > 0 and end is None:
        size = s_sub(d.size, a)
    elif start is None and end is not None and end < 0:
        size = s_sub(d.size, lit(-end))
    elif start is None and end is not None and end > 0:
        size = Size(end, b.expr)
    elif start is not None and end is not None and 0 < start < end:
        size = s_sub(b, a)
    else:
        raise Invalid("a slice of a run-time size")
    return x.replace(k, Dim(d.name, size))


class Interp:
    """Runs the shape model over elements and statements: `mapping` takes the parameters of the
    graph being run to expressions in the names of `env`, the outermost scope's values."""

    def __init__(self, blocks: dict[str, Block], env: dict[str, Any]):
        self.blocks = blocks
        self.env = env
        self.layers: dict[str, OpEl] = {}  # `layer NAME = op(...)` of the scope
        self.layer_inputs: dict[str, Shape] = {}  # the input shape of a layer's first use

    def element(self, el: Any, ins: list[Shape], mapping: dict[str, Expr], values: dict[str, Shape]) -> list[Shape]:
        ins = ins + [values[n] for n in el.extra] if not isinstance(el, RepeatEl) else ins
        if isinstance(el, OpEl) and el.like is not None:
            ins = ins + [values[el.like]]
        if isinstance(el, LayerEl):
            req(el.name in self.layers, "no such layer")
            (x,) = ins
            first = self.layer_inputs.setdefault(el.name, x)
            req(shape_eq(first, x), "a layer has one input signature")
            return self.element(self.layers[el.name], [x], mapping, values)
        if isinstance(el, OpEl):
            args = {k: _evaluate(v, mapping, self.env) for k, v in el.args.items()}
            args["_op"] = el.op
            return RULES[el.op](ins, args)
        if isinstance(el, BlockEl):
            block = self.blocks[el.name]
            req(len(ins) == len(block.inputs), "block inputs")
            call: dict[str, Expr] = {}
            for p in block.params:
                if p.name in el.args:
                    call[p.name] = el.args[p.name].subst(mapping)
                else:
                    req(p.default is not None, "missing block argument")
                    call[p.name] = Lit(p.default)
            return self.block(block, ins, call)
        count = _evaluate(el.count, mapping, self.env)
        req(_is_int(count) and count.value >= 0, "repeat count")
        x = ins[0]
        if isinstance(count.expr, Lit):
            out = self.chain(el.body, [x], mapping, values)[0]  # the body must fit its input
            if count.value == 0:
                return [x]
            for _ in range(count.value - 1):
                out = self.chain(el.body, [out], mapping, values)[0]
            return [out]
        out = self.chain(el.body, [x], mapping, values)[0]
        req(shape_eq(out, x), "a repeat with a parameter count must keep the shape")
        return [x]

    def chain(self, elements: list[Any], ins: list[Shape], mapping, values) -> list[Shape]:
        cur = ins
        for i, el in enumerate(elements):
            cur = self.element(el, cur if i == 0 else [cur[0]], mapping, values)
            req(cur, "no output")
        return cur

    def value(self, e: Any, values: dict[str, Shape], mapping: dict[str, Expr]) -> Shape | None:
        """The shape of a value expression (None for a number)."""
        if isinstance(e, VName):
            return values[e.name]
        if isinstance(e, VNum):
            return None
        if isinstance(e, VNeg):
            x = self.value(e.a, values, mapping)
            req(x is not None)
            _float(x)
            return x
        if isinstance(e, VBin):
            a, b = self.value(e.a, values, mapping), self.value(e.b, values, mapping)
            req(a is not None or b is not None, "two numbers")
            if a is None or b is None:
                x = a or b
                _float(x)
                return x
            return broadcast(a, b)
        if isinstance(e, VChain):
            x = self.value(e.head, values, mapping)
            req(x is not None)
            return self.chain(e.chain, [x], mapping, values)[0]
        if isinstance(e, VCall):
            ins = [self.value(a, values, mapping) for a in e.args]
            req(all(t is not None for t in ins))
            return self.element(e.el, ins, mapping, values)[0]
        if isinstance(e, VIndex):
            x = values[e.name]
            for k, kind, a, b in sorted(e.ops, key=lambda o: -o[0]):
                x = index_shape(x, k, kind, *(None if v is None else _evaluate(v, mapping, self.env) for v in (a, b)))
            return x
        raise TypeError(e)

    def statement(self, st: Assign, values: dict[str, Shape], mapping: dict[str, Expr]) -> list[Shape]:
        if st.layer:
            (el,) = st.chain
            req(st.targets[0] not in self.layers)
            self.layers[st.targets[0]] = el
            return []
        if st.expr is not None:
            out = self.value(st.expr, values, mapping)
            req(out is not None)
            values[st.targets[0]] = out
            return [out]
        ins = [values[n] for n in st.head]
        outs = self.chain(st.chain, ins, mapping, values)
        if st.targets:
            req(len(outs) == len(st.targets) or (len(st.targets) == 1 and not _multi(st.chain[-1], self.blocks)),
                "destructuring")
            for t, s in zip(st.targets, outs):
                if t != "_":
                    values[t] = s
        return outs

    def block(self, block: Block, ins: list[Shape], call: dict[str, Expr]) -> list[Shape]:
        values = dict(zip(block.inputs, ins))
        for st in block.body:
            self.statement(st, values, call)
        return [values[o] for o in block.outputs]


def _all_elements(elements: Iterable[Any]) -> list[Any]:
    """The elements, with those of repeat bodies."""
    out = []
    for el in elements:
        out.append(el)
        if isinstance(el, RepeatEl):
            out += _all_elements(el.body)
    return out


def _multi(el: Any, blocks: dict[str, Block]) -> bool:
    if isinstance(el, OpEl):
        return el.op in MULTI_OUTPUT
    if isinstance(el, BlockEl):
        return len(blocks[el.name].outputs) > 1
    return False


# ------------------------------------------------------------------------------ rendering


def render_element(el: Any, inputs: list[str], blocks: dict[str, Block]) -> str:
    """An element as written in a chain; `inputs` are written before its hyper-parameters."""
    if isinstance(el, RepeatEl):
        body = " >> ".join(render_element(e, [], blocks) for e in el.body)
        return f"repeat({el.count.render()}) {{ {body} }}"
    if isinstance(el, LayerEl):
        return el.name
    parts = list(inputs) + list(el.extra)
    if isinstance(el, BlockEl):
        order = [p.name for p in blocks[el.name].params]
        name = el.name
    else:
        order = list(SIGNATURES.get(el.op, ()))
        name = el.op
    args = dict(el.args)
    if isinstance(el, OpEl) and el.op == "mlp":
        widths = args.pop("widths")
        parts += [w.render() for w in (widths.items if isinstance(widths, ListE) else (widths,))]
        order = [o for o in order if o != "widths"]
    elif not (isinstance(el, OpEl) and el.op in VARIADIC):
        for n in order[: el.positional]:
            if n not in args:
                break
            parts.append(args.pop(n).render())
    for n in order:
        if n in args:
            key = el.keyword.get(n, n) if isinstance(el, OpEl) else n
            parts.append(f"{key}={args.pop(n).render()}")
    for n, v in args.items():  # (not in the signature table)
        parts.append(f"{n}={v.render()}")
    if isinstance(el, OpEl) and el.like is not None:
        parts.append(f"like={el.like}")
    text = f"{name}({', '.join(parts)})" if parts or isinstance(el, BlockEl) or el.op in VARIADIC else name
    return ("frozen " if el.frozen else "") + text


def render_statement(st: Assign, blocks: dict[str, Block]) -> str:
    if st.layer:
        return f"layer {st.targets[0]} = {render_element(st.chain[0], [], blocks)}"
    if st.expr is not None:
        return f"{st.targets[0]} = {render_vexpr(st.expr, blocks)}"
    if st.call or st.merge:
        head = render_element(st.chain[0], st.head, blocks)
    else:
        head = st.head[0] + " >> " + render_element(st.chain[0], [], blocks)
    rest = "".join(" >> " + render_element(e, [], blocks) for e in st.chain[1:])
    if st.merge:
        return f"merge {head}{rest}"
    return f"{', '.join(st.targets)} = {head}{rest}"


def _render_param(p: Param) -> str:
    if p.default is None:
        return f"{p.name}: {p.type}"
    default = Lit(p.default).render()
    return f"{p.name}: {p.type} = {default}" if p.typed else f"{p.name} = {default}"


def render_block(b: Block, blocks: dict[str, Block]) -> str:
    params = ", ".join(_render_param(p) for p in b.params)
    outs = b.outputs[0] if len(b.outputs) == 1 else "(" + ", ".join(b.outputs) + ")"
    body = "\n".join("    " + render_statement(st, blocks) for st in b.body)
    return f"block {b.name}({params}) ({', '.join(b.inputs)}) -> {outs} {{\n{body}\n}}"


def render_input(i: InputDecl) -> str:
    dims = []
    for name, size in i.dims:
        if size is None:
            dims.append(name)
        elif name is None:
            dims.append(size.render())
        else:
            dims.append(f"{name}={size.render()}")
    prefix = {"float32": "", "int64": "long", "bool": "bool"}[i.dtype]
    return f"input {i.name}: {prefix}[{', '.join(dims)}]"


# ------------------------------------------------------------------------------ generation

SIZES = [2, 3, 4, 6, 8, 12, 16]
MODEL_NAMES = {
    "size": ["width", "hidden", "dm", "ch", "n_out", "emb"],
    "heads": ["heads", "nh"],
    "count": ["depth", "reps"],
    "kernel": ["k", "ks"],
    "stride": ["st"],
    "pad": ["pad"],
    "layers": ["layers"],
    "axis": ["axis"],
    "vocab": ["vocab"],
    "positions": ["block_size", "max_len"],
    "groups": ["groups"],
    "cut": ["n_keep", "lo", "hi"],
    "scale": ["scale"],
    "p": ["p", "drop"],
    "flag": ["flag", "bi", "keep"],
}
BLOCK_NAMES = {
    "size": ["d", "m", "w", "c"], "heads": ["h", "nh"], "count": ["n", "r"], "kernel": ["kk", "q"],
    "stride": ["s"], "pad": ["pd"], "layers": ["nl"], "axis": ["ax", "dd"], "vocab": ["nv"],
    "positions": ["npos"], "groups": ["g"], "p": ["pp", "rate"], "flag": ["f", "on"], "cut": ["nk", "lo"], "scale": ["sf"],
}
TYPES = {"p": "float", "flag": "bool"}
BLOCK_BASENAMES = ["ff", "res", "proj", "mix", "head", "unit", "cell", "stage"]
ELEMENTWISE = ["relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu", "identity"]
ELEMENTWISE_V4 = ["relu6", "hardswish", "elu", "softplus", "exp", "abs", "clamp"]
LAYER_NAMES = ["shared", "proj", "lin", "wte", "tok_emb", "head_l"]


V04_SHARE = 0.5


class Gen:
    """State of one program's generation: the random source, the blocks, the features used."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.blocks: dict[str, Block] = {}
        self.block_order: list[str] = []
        self.features: Counter = Counter()
        self.uses_std = False
        # v0.4 constructs (LANGUAGE.md 13) in about half the programs, drawn from a stream of their
        # own: the other seeds give exactly the programs of the v0.3 generator (the seeds reported
        # and pinned before, such as those of test_zero_step_repeat_bodies..., stay reproducible)
        self.v04 = random.Random(f"v0.4:{seed}").random() < V04_SHARE
        if self.v04:
            self.features["v0.4"] += 1

    def block_name(self) -> str:
        base = self.rng.choice(BLOCK_BASENAMES)
        name, n = base, 1
        while name in self.blocks:
            n += 1
            name = f"{base}{n}"
        return name


class Scope:
    """A model or block being generated: its parameters (created on demand), values and statements."""

    def __init__(self, gen: Gen, kind: str, parent: Scope | None = None, depth: int = 0):
        self.gen = gen
        self.rng = gen.rng
        self.kind = kind
        self.parent = parent
        self.depth = depth
        self.params: list[Param] = []
        self.env: dict[str, Any] = {}
        self.values: dict[str, Shape] = {}
        self.inputs: list[str] = []
        self.uses: Counter = Counter()
        self.stmts: list[Assign] = []
        self.counter = 0
        # blocks only
        self.first_args: dict[str, Expr] = {}
        self.omit: set[str] = set()
        self.kinds: dict[str, tuple] = {}
        self.opaque: dict[Size, tuple[Size, int]] = {}  # an input size -> (the caller's size, its index)
        self.opaque_params: dict[Size, Expr] = {}
        self._base: str | None = None
        self.interp = Interp(gen.blocks, self.env)

    # ---- names
    def fresh_value(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def taken(self) -> set[str]:
        return {p.name for p in self.params} | set(self.values) | {
            "batch", "token", "time", "feature", "channel", "height", "wd", "length", "layer", "head",
            "embedding", "x", "y", "img", "ids", "mask", "sig", "pair", "stk"}

    def _param_name(self, role: str) -> str:
        pool = (MODEL_NAMES if self.kind == "model" else BLOCK_NAMES)[role]
        taken = self.taken()
        for base in self.rng.sample(pool, len(pool)):
            if base not in taken:
                return base
        n = 2
        while f"{pool[0]}{n}" in taken:
            n += 1
        return f"{pool[0]}{n}"

    # ---- parameters
    def _existing(self, role: str, ok: Callable[[Any], bool]) -> list[Param]:
        return [p for p in self.params if p.role == role and ok(self.env[p.name])]

    def new_param(self, role: str, value_from: Callable[[Scope], Expr] | None, default: Any = None,
                  kind: tuple | None = None) -> Name:
        """A new parameter: in a model with `default`; in a block, its value is the argument the
        caller writes (`value_from(caller)`), and `kind` says how a later call chooses one."""
        name = self._param_name(role)
        type_ = TYPES.get(role, "int")
        if self.kind == "model":
            self.params.append(Param(name, type_, default, role))
            self.env[name] = default
        else:
            assert value_from is not None and self.parent is not None
            arg = value_from(self.parent)
            value = arg.eval(self.parent.env)
            has_default = self.rng.random() < 0.35
            p = Param(name, type_, value if has_default else None, role, typed=not has_default or self.rng.random() < 0.7)
            self.params.append(p)
            self.env[name] = value
            self.first_args[name] = arg
            if has_default and self.rng.random() < 0.5:
                self.omit.add(name)
            self.kinds[name] = kind or (role,)
        self.gen.features[f"param:{self.kind}:{role}"] += 1
        return Name(name)

    def int_expr(self, role: str, choices: list[int], ok: Callable[[Any], bool] = lambda v: True,
                 literal: float = 0.4) -> Expr:
        """An integer for `role` (a kernel size, a head count, ...): a literal, or a parameter."""
        good = [c for c in choices if ok(c)] or choices
        if self.rng.random() < literal:
            return Lit(self.rng.choice(good))
        existing = self._existing(role, ok)
        if existing and self.rng.random() < 0.6:
            return Name(self.rng.choice(existing).name)
        if self.kind == "model":
            return self.new_param(role, None, self.rng.choice(good))
        return self.new_param(role, lambda s: s.int_expr(role, choices, ok), kind=("int", role, tuple(choices)))

    def size_expr(self) -> Expr:
        """A width: a literal, a parameter, or (in a model) a small expression over one."""
        r = self.rng.random()
        if r < 0.3:
            return Lit(self.rng.choice(SIZES))
        if self.kind == "model":
            existing = self._existing("size", lambda v: True)
            p = (Name(self.rng.choice(existing).name) if existing and self.rng.random() < 0.6
                 else self.new_param("size", None, self.rng.choice([4, 6, 8, 12, 16])))
            if r > 0.88:
                return Bin("*", p, Lit(2))
            if r > 0.82:
                return Bin("+", p, Lit(self.rng.choice([1, 2, 4])))
            return p
        existing = self._existing("size", lambda v: True)
        if existing and self.rng.random() < 0.5:
            return Name(self.rng.choice(existing).name)
        return self.new_param("size", lambda s: s.size_expr(), kind=("size",))

    def equal_size(self, size: Size) -> Expr | None:
        """An expression of this scope for the same size (None when the size is known only at run
        time): its own expression, a block parameter the caller binds to it, or its value."""
        if size.value is None:
            return None
        if size.expr is not None and size.expr.writable() and self.rng.random() < 0.9:
            return size.expr
        if self.kind == "block" and size in self.opaque:
            if size not in self.opaque_params:
                caller_size, index = self.opaque[size]
                self.opaque_params[size] = self.new_param(
                    "size", lambda s: s.equal_size(caller_size) or Lit(caller_size.value), kind=("equal", index))
            return self.opaque_params[size]
        return Lit(size.value)

    def float_expr(self) -> Expr:
        if self.rng.random() < 0.5:
            return Lit(self.rng.choice([0.0, 0.1, 0.25]))
        existing = self._existing("p", lambda v: True)
        if existing and self.rng.random() < 0.5:
            return Name(self.rng.choice(existing).name)
        if self.kind == "model":
            return self.new_param("p", None, self.rng.choice([0.0, 0.1]))
        return self.new_param("p", lambda s: s.float_expr(), kind=("p",))

    def bool_expr(self, literal: float = 0.45) -> Expr:
        if self.rng.random() < literal:
            return Lit(self.rng.random() < 0.5)
        existing = self._existing("flag", lambda v: True)
        if existing and self.rng.random() < 0.4:
            return Name(self.rng.choice(existing).name)
        if self.kind == "model":
            return self.new_param("flag", None, self.rng.random() < 0.5)
        return self.new_param("flag", lambda s: s.bool_expr(literal), kind=("flag", literal))

    def dim_expr(self, shape: Shape, i: int) -> Expr:
        """A `dim` argument for dimension i: its name, an index (maybe negative), or a parameter."""
        d = shape.dims[i]
        r = self.rng.random()
        if d.name and r < 0.5 and [e.name for e in shape.dims].index(d.name) == i:
            return DimRef(d.name)
        if r < 0.9:
            return Lit(i if self.rng.random() < 0.6 else i - shape.rank)
        self.gen.features["dim-param"] += 1
        return self.int_expr("axis", [i], ok=lambda v, i=i: v == i, literal=0.0)

    def divisor_expr(self, role: str, *sizes: int) -> Expr:
        divs = [g for g in range(1, max(sizes) + 1) if all(s % g == 0 for s in sizes)]
        nice = [g for g in divs if g > 1] or divs
        return self.int_expr(role, nice, ok=lambda v: isinstance(v, int) and v >= 1 and all(s % v == 0 for s in sizes))

    # ---- values
    def add_value(self, name: str, shape: Shape) -> None:
        self.values[name] = shape

    def pick(self, pred: Callable[[Shape], bool] = lambda s: True, exclude: Iterable[str] = ()) -> str | None:
        names = [n for n in self.values if pred(self.values[n]) and n not in exclude]
        if not names:
            return None
        weights = [(3 if self.uses[n] == 0 else 1) * (1 + i / 2) for i, n in enumerate(names)]
        return self.rng.choices(names, weights)[0]

    def apply(self, el: Any, ins: list[Shape]) -> list[Shape]:
        return self.interp.element(el, ins, {}, self.values)

    def emit(self, st: Assign) -> list[Shape] | None:
        """Check `st` with the shape model and keep it; None (nothing kept) when it is invalid."""
        values = dict(self.values)
        try:
            outs = self.interp.statement(st, values, {})
        except Invalid:
            return None
        self.stmts.append(st)
        for n in st.head:
            self.uses[n] += 1
        for el in _all_elements(st.chain):
            for n in [*getattr(el, "extra", []), *([el.like] if getattr(el, "like", None) else [])]:
                self.uses[n] += 1
        for t in st.targets:
            if t != "_" and t in values:
                self.values[t] = values[t]
        return outs

    # ---- proposals for one element on a value of shape `x`
    def propose(self, x: Shape, preserve: bool = False, allow_repeat: bool = True,
                base: str | None = None) -> Any | None:
        """A random single-input element that the shape model accepts on `x`, or None. `base` is
        the name of the value when it is one (`x >> attention(x, x, heads=2)` names it again)."""
        self._base = base
        for _ in range(8):
            el = self._propose_once(x, preserve, allow_repeat)
            if el is None:
                continue
            try:
                out = self.apply(el, [x])
            except Invalid:
                continue
            if preserve and not shape_eq(out[0], x):
                continue
            return el
        return None

    def _candidates(self, x: Shape, preserve: bool, allow_repeat: bool) -> list[tuple[str, float]]:
        f = x.dtype == "float32"
        r = x.rank
        front = r >= 1 and x.dims[0].batch  # the batch comes first (not so in an LSTM's h_n)
        last = r >= 2 and x.dims[-1].size.value is not None and not x.dims[-1].batch
        ch = r >= 2 and x.dims[1].size.value is not None and not x.dims[1].batch
        c: list[tuple[str, float]] = []
        if f:
            c += [("act", 2.0), ("dropout", 0.7), ("softmax", 0.6 if r >= 2 else 0)]
            if last:
                c += [("linear", 4.0), ("layernorm", 1.0), ("mlp", 0.5)]
            if r in (2, 3) and ch and front:
                c.append(("bn1d", 0.7))
            if r == 3 and ch and front:
                c.append(("conv1d", 1.5))
            if r == 4 and ch and front:
                c += [("conv2d", 3.0), ("bn2d", 1.0)]
            if r == 4 and not preserve and front:
                c += [("pool", 1.5), ("apool", 0.8)]
            if r == 3 and last and front:
                c += [("attn", 0.8), ("rnn", 0.8 if not preserve else 0)]
            if not preserve:
                if r >= 3 and front:
                    c += [("flatten", 0.8), ("transpose", 0.8), ("permute", 0.5), ("reduce", 1.0)]
                elif r >= 3:
                    c.append(("reduce", 2.0))
                elif r == 2:
                    c.append(("reduce", 0.15))
                if last and r >= 2 and front:
                    c.append(("reshape", 0.6))
            if front and ((r == 4 and ch) or (r in (2, 3) and last)):
                c.append(("std", 0.5))
            if self.depth < 2:
                c.append(("block", 1.6))
            if allow_repeat and self.depth < 2:
                c.append(("repeat", 1.0))
            if self.gen.v04:  # v0.4 ops
                c.append(("act4", 0.8))
                if r in (3, 4) and ch and front:
                    c.append(("groupnorm", 0.5))
                if not preserve and front:
                    if r in (3, 4) and ch:
                        c += [("convt", 0.6), ("upsample", 0.35)]
                    if r == 4 and ch and x.dims[1].size.value % 4 == 0:
                        c.append(("pshuffle", 1.0))
                    if r >= 2:
                        c += [("pad", 0.35), ("unsqueeze", 0.25)]
        elif x.dtype == "int64":
            c.append(("embedding", 5.0))
        return [(k, w) for k, w in c if w > 0]

    def _propose_once(self, x: Shape, preserve: bool, allow_repeat: bool) -> Any | None:
        cands = self._candidates(x, preserve, allow_repeat)
        if not cands:
            return None
        kind = self.rng.choices([k for k, _ in cands], [w for _, w in cands])[0]
        return getattr(self, "_p_" + kind)(x, preserve)

    def _op(self, op: str, args: dict[str, Expr], positional: int | None = None) -> OpEl:
        order = SIGNATURES.get(op, ())
        if positional is None:
            positional = self.rng.choice([0, 0, 1, 1, 2])
        keyword = {n: ALIASES[(op, n)] for n in order if (op, n) in ALIASES and self.rng.random() < 0.4}
        frozen = self.rng.random() < 0.04 and op in ("linear", "conv2d", "conv1d", "layernorm", "embedding")
        self.gen.features[op] += 1
        return OpEl(op, args, positional=positional, keyword=keyword, frozen=frozen)

    def _p_act(self, x, preserve):
        op = self.rng.choice(ELEMENTWISE)
        args = {"negative_slope": Lit(0.2)} if op == "leaky_relu" and self.rng.random() < 0.5 else {}
        return self._op(op, args)

    def _p_dropout(self, x, preserve):
        return self._op("dropout", {"p": self.float_expr()} if self.rng.random() < 0.8 else {})

    def _p_softmax(self, x, preserve):
        op = self.rng.choice(["softmax", "log_softmax"])
        if self.rng.random() < 0.2:
            return self._op(op, {})
        return self._op(op, {"dim": self.dim_expr(x, self.rng.randrange(1, x.rank))})

    def _p_linear(self, x, preserve):
        args: dict[str, Expr] = {}
        if preserve:
            e = self.equal_size(x.dims[-1].size)
            if e is not None and self.rng.random() < 0.8:
                args["out_features"] = e
        elif self.rng.random() < 0.85:
            args["out_features"] = self.size_expr()
        if self.rng.random() < 0.1:
            args["bias"] = self.bool_expr()
        return self._op("linear", args)

    def _p_mlp(self, x, preserve):
        self.gen.uses_std = True
        widths = [self.size_expr() for _ in range(self.rng.randint(1, 2))]
        if preserve:
            e = self.equal_size(x.dims[-1].size)
            if e is None:
                return None
            widths[-1] = e
        args: dict[str, Expr] = {"widths": ListE(tuple(widths))}
        if self.rng.random() < 0.4:
            args["p"] = self.float_expr()
        return self._op("mlp", args)

    def _p_std(self, x, preserve):
        """A block of the std library (`import std`)."""
        self.gen.uses_std = True
        if x.rank == 4:
            channels = self.equal_size(x.dims[1].size)
            if self.rng.random() < 0.5:
                return self._op("resnet_block", {"channels": channels})
            args = {"channels": channels if preserve or self.rng.random() < 0.5 else self.size_expr()}
            if self.rng.random() < 0.5:
                args["kernel"] = self.rng.choice([Lit(1), Lit(3), self.int_expr("kernel", [1, 3, 5])])
            return self._op("conv_block", args)
        e = x.dims[-1].size
        if x.rank == 3:
            args = {"d_model": self.equal_size(e), "heads": self.divisor_expr("heads", e.value),
                    "ff": self.size_expr()}
            if self.rng.random() < 0.3:
                args["p"] = self.float_expr()
            return self._op("transformer_encoder_layer", args)
        return self._op("tabular_resnet_block", {"d_main": self.equal_size(e), "hidden": self.size_expr()})

    def _p_layernorm(self, x, preserve):
        args = {"elementwise_affine": self.bool_expr()} if self.rng.random() < 0.15 else {}
        return self._op("layernorm", args)

    def _p_bn1d(self, x, preserve):
        return self._op("batchnorm1d", {"affine": self.bool_expr()} if self.rng.random() < 0.15 else {}, 0)

    def _p_bn2d(self, x, preserve):
        return self._op("batchnorm2d", {"affine": self.bool_expr()} if self.rng.random() < 0.15 else {}, 0)

    def _conv_args(self, x: Shape, n: int, preserve: bool) -> dict[str, Expr]:
        cin = x.dims[1].size.value
        if preserve or self.rng.random() < 0.25:
            out = self.equal_size(x.dims[1].size) or Lit(cin)
        else:
            out = self.size_expr()
        args: dict[str, Expr] = {"out_channels": out}
        k = self.int_expr("kernel", [1, 2, 3, 3, 5])
        args["kernel_size"] = k
        kv = k.eval(self.env)
        if n == 2 and not preserve and self.rng.random() < 0.1:
            args["kernel_size"] = ListE((Lit(self.rng.choice([1, 3])), Lit(self.rng.choice([1, 2, 3]))))
        if preserve:
            if self.rng.random() < 0.5 or not isinstance(kv, int) or kv % 2 == 0:
                args["padding"] = Lit("same")
            else:
                args["padding"] = Lit(kv // 2)
        else:
            r = self.rng.random()
            if r < 0.25:
                args["padding"] = Lit("same")
            elif r < 0.55:
                args["padding"] = self.int_expr("pad", [0, 1, 2])
            elif r < 0.6:
                args["padding"] = Lit("valid")
            if "padding" not in args or args["padding"] != Lit("same"):
                if self.rng.random() < 0.4:
                    args["stride"] = self.int_expr("stride", [1, 2, 2])
                if self.rng.random() < 0.15:
                    args["dilation"] = Lit(2)
        if self.rng.random() < 0.25:
            outv = out.eval(self.env)
            if isinstance(outv, int) and outv > 0:
                args["groups"] = self.divisor_expr("groups", cin, outv)
        if self.rng.random() < 0.08:
            args["bias"] = self.bool_expr()
        return args

    def _p_conv1d(self, x, preserve):
        return self._op("conv1d", self._conv_args(x, 1, preserve))

    def _p_conv2d(self, x, preserve):
        return self._op("conv2d", self._conv_args(x, 2, preserve))

    def _p_pool(self, x, preserve):
        op = self.rng.choice(["maxpool2d", "avgpool2d"])
        k = self.int_expr("kernel", [2, 2, 3])
        args: dict[str, Expr] = {"kernel_size": k}
        kv = k.eval(self.env)
        if self.rng.random() < 0.4:
            args["stride"] = self.int_expr("stride", [1, 2])
        if self.rng.random() < 0.3 and isinstance(kv, int) and kv >= 2:
            args["padding"] = Lit(self.rng.randint(0, kv // 2))
        if self.rng.random() < 0.15:
            args["ceil_mode"] = self.bool_expr(0.9)
        if op == "maxpool2d" and self.rng.random() < 0.08:
            args["dilation"] = Lit(2)
        return self._op(op, args)

    def _p_apool(self, x, preserve):
        r = self.rng.random()
        size: Expr = (Lit(1) if r < 0.4 else ListE((Lit(self.rng.randint(1, 3)), Lit(self.rng.randint(1, 3))))
                      if r < 0.6 else self.int_expr("size", [1, 2, 3]))
        return self._op("adaptive_avgpool2d", {"output_size": size})

    def _p_flatten(self, x, preserve):
        args: dict[str, Expr] = {}
        if self.rng.random() < 0.4 and x.rank >= 3:
            start = self.rng.randrange(1, x.rank - 1)
            end = self.rng.randrange(start + 1, x.rank)
            args["start_dim"] = self.dim_expr(x, start)
            if end != x.rank - 1 or self.rng.random() < 0.5:
                args["end_dim"] = self.dim_expr(x, end)
        return self._op("flatten", args)

    def _p_transpose(self, x, preserve):
        i, j = self.rng.sample(range(1, x.rank), 2)
        return self._op("transpose", {"dim0": self.dim_expr(x, i), "dim1": self.dim_expr(x, j)}, 2)

    def _p_permute(self, x, preserve):
        order = list(range(1, x.rank))
        self.rng.shuffle(order)
        items = [self.dim_expr(x, i) for i in order]
        if self.rng.random() < 0.4:
            items = [Lit(0)] + items
        return self._op("permute", {"dims": ListE(tuple(items))}, 1)

    def _p_reduce(self, x, preserve):
        op = self.rng.choice(["mean", "max", "mean", "max", "sum", "logsumexp"] if self.gen.v04 else ["mean", "max"])
        axes = [i for i, d in enumerate(x.dims) if not d.batch]
        if not axes:  # only the batch (an h_n reduced to it): nothing to reduce
            return None
        args = {"dim": self.dim_expr(x, self.rng.choice(axes))}
        if self.rng.random() < 0.3:
            args["keepdim"] = self.bool_expr()
        return self._op(op, args)

    # ---- v0.4 single-input ops
    def _p_act4(self, x, preserve):
        op = self.rng.choice(ELEMENTWISE_V4)
        args: dict[str, Expr] = {}
        if op == "elu" and self.rng.random() < 0.5:
            args["alpha"] = Lit(0.5)
        elif op == "softplus" and self.rng.random() < 0.4:
            args["beta"] = Lit(2.0)
        elif op == "clamp":
            args = self.rng.choice([{"min": Lit(0)}, {"min": Lit(0.0), "max": Lit(6.0)}, {"max": Lit(1.0)}])
        return self._op(op, args, 0)

    def _p_groupnorm(self, x, preserve):
        return self._op("groupnorm", {"num_groups": self.divisor_expr("groups", x.dims[1].size.value)})

    def _p_convt(self, x, preserve):
        op = "conv_transpose1d" if x.rank == 3 else "conv_transpose2d"
        args: dict[str, Expr] = {"out_channels": self.size_expr(), "kernel_size": self.int_expr("kernel", [1, 2, 3, 4])}
        runtime = any(d.size.value is None for d in x.dims[2:])
        if self.rng.random() < 0.6:
            stride = self.int_expr("stride", [1, 2, 2])
            args["stride"] = stride
            if self.rng.random() < 0.4 and stride.eval(self.env) == 2:
                args["output_padding"] = Lit(1)
        if self.rng.random() < 0.4 and not runtime:
            args["padding"] = Lit(self.rng.choice([0, 1]))
        return self._op(op, args)

    def _p_upsample(self, x, preserve):
        factor = Lit(2) if self.rng.random() < 0.8 else self.int_expr("scale", [2, 3], literal=0.0)
        args: dict[str, Expr] = {"scale_factor": factor}
        if self.rng.random() < 0.2:
            args["mode"] = Lit("nearest")
        return self._op("upsample", args, 0)

    def _p_pad(self, x, preserve):
        pairs = self.rng.choice([1, 1, 2]) if x.rank >= 3 else 1
        amounts = [Lit(self.rng.choice([0, 1, 1, 2])) for _ in range(2 * pairs)]
        return self._op("pad", {"pad": ListE(tuple(amounts))}, self.rng.choice([0, 1]))

    def _p_pshuffle(self, x, preserve):
        return self._op("pixel_shuffle", {"upscale_factor": Lit(2)}, self.rng.choice([0, 1]))

    def _p_unsqueeze(self, x, preserve):
        k = self.rng.randint(1, x.rank)
        args: dict[str, Expr] = {"dim": Lit(k)}
        if self.rng.random() < 0.5:
            name = self.rng.choice(["head", "pair", "stk"])
            if all(d.name != name for d in x.dims):
                args["name"] = DimRef(name)
        return self._op("unsqueeze", args, 0)

    def _context_repeat(self) -> bool:
        """`v = h >> repeat(n) { b(m, ...) }`: a block with a second input, a value of the scope
        (LANGUAGE.md 13, repeat with context). The repeat is the statement's only element or one of
        a longer chain (`h >> repeat(1) { b(m) } >> linear(d)`, `h >> linear(d) >> repeat(2) { b(m) }`),
        its count may be 0 (a literal or a parameter), its body may have no weights (`y = x + m`),
        and the context may be named like the body's input or output (`x`, `y`)."""
        if self.depth >= 2:
            return False
        base = self.pick(lambda s: s.dtype == "float32" and s.rank >= 2 and s.dims[0].batch
                         and s.dims[-1].size.value is not None and not s.dims[-1].batch)
        if base is None:
            return False
        x = self.values[base]
        ctx = [n for n, s in self.values.items() if shape_eq(s, x)]
        if not ctx:
            return False
        named = [n for n in ctx if n in ("x", "y")]
        m = self.rng.choice(named) if named and self.rng.random() < 0.5 else self.rng.choice(ctx)
        el = self.new_context_block(x, m)
        if el is None:
            return False
        count: Expr = Lit(self.rng.choice([0, 1, 1, 2])) if self.rng.random() < 0.5 else self.int_expr(
            "count", [0, 1, 2, 3], ok=lambda v: isinstance(v, int) and v >= 0, literal=0.0)
        chain: list[Any] = [RepeatEl(count, [el])]
        r = self.rng.random()
        if r < 0.3:  # h >> e >> repeat(n) { b(m) }, the element keeping h's shape
            pre = self.propose(x, preserve=True, allow_repeat=False)
            if pre is not None:
                chain.insert(0, pre)
        if 0.2 <= r < 0.6:  # ... >> repeat(n) { b(m) } >> e
            post = self.propose(x, allow_repeat=False)
            if post is not None:
                chain.append(post)
        if self.emit(Assign([self.fresh_value()], [base], chain)) is None:
            return False
        self.gen.features["repeat:context"] += 1
        if len(chain) > 1:
            self.gen.features["repeat:context:chain"] += 1
        if isinstance(count, Lit):
            self.gen.features[f"repeat:context:{count.value}"] += 1
        else:
            self.gen.features["repeat:context:param"] += 1
        if m in ("x", "y"):
            self.gen.features[f"repeat:context:named-{m}"] += 1
        return True

    def _p_reshape(self, x, preserve):
        last = x.dims[-1].size.value
        items: list[Expr] = []
        for d in x.dims[1:-1]:
            if d.name and [e.name for e in x.dims].index(d.name) == x.dims.index(d):
                items.append(DimRef(d.name))
            else:
                e = self.equal_size(d.size)
                if e is None:
                    return None
                items.append(e)
        divs = [g for g in range(2, last + 1) if last % g == 0]
        if not divs:
            return None
        g = self.rng.choice(divs)
        if self.rng.random() < 0.5:
            items += [Lit(g), Lit(-1)]
        else:
            items += [Lit(-1), Lit(g)] if self.rng.random() < 0.5 else [Lit(g), Lit(last // g)]
        return self._op("reshape", {"shape": ListE(tuple(items))}, 1)

    def _p_attn(self, x, preserve):
        if self._base is None:
            return None
        e = x.dims[-1].size.value
        args = {"num_heads": self.divisor_expr("heads", e)}
        if self.rng.random() < 0.3:
            args["causal"] = self.bool_expr(0.9)
        if self.rng.random() < 0.1:
            args["dropout"] = Lit(0.0)
        el = self._op("attention", args, 0)
        el.extra = [self._base, self._base]
        self.gen.features["attention:chain"] += 1
        return el

    def _p_rnn(self, x, preserve):
        op = self.rng.choice(["lstm", "gru"])
        return self._op(op, self._rnn_args())

    def _rnn_args(self) -> dict[str, Expr]:
        args = {"hidden_size": self.size_expr()}
        if self.rng.random() < 0.4:
            args["num_layers"] = self.int_expr("layers", [1, 2])
        if self.rng.random() < 0.35:
            args["bidirectional"] = self.bool_expr()
        layers = args.get("num_layers", Lit(1))
        if self.rng.random() < 0.15 and not (isinstance(layers, Lit) and layers.value == 1):
            args["dropout"] = Lit(0.1)
        return args

    def _p_embedding(self, x, preserve):
        args = {"num_embeddings": self.int_expr("vocab", [5, 10, 50]), "embedding_dim": self.size_expr()}
        if self.rng.random() < 0.15:
            args["padding_idx"] = Lit(0)
        return self._op("embedding", args, self.rng.choice([0, 2, 2]))

    def _p_repeat(self, x, preserve):
        if self.rng.random() < 0.5:
            count: Expr = Lit(self.rng.choice([0, 1, 1, 2, 2, 3]))
        else:
            count = self.int_expr("count", [0, 1, 2, 3], literal=0.0)
        keep = preserve or not isinstance(count, Lit)
        body = []
        cur = x
        for _ in range(self.rng.choice([1, 1, 2])):
            el = self.propose(cur, preserve=keep, allow_repeat=False)
            if el is None:
                break
            body.append(el)
            cur = self.apply(el, [cur])[0]
        if not body:
            return None
        self.gen.features["repeat:" + ("literal" if isinstance(count, Lit) else "param")] += 1
        if isinstance(count, Lit) and count.value in (0, 1):
            self.gen.features[f"repeat:{count.value}"] += 1
        return RepeatEl(count, body)

    def _p_block(self, x, preserve):
        fits = [b for b in self.gen.blocks.values() if len(b.outputs) == 1 and len(b.inputs) == 1]
        if fits and self.rng.random() < 0.7:
            el = self.recall(self.rng.choice(fits), x)
            if el is not None:
                return el
        return self.new_block(x, 1)

    # ---- blocks
    def new_block(self, x: Shape, n_out: int) -> BlockEl | None:
        gen = self.gen
        bs = Scope(gen, "block", self, self.depth + 1)
        in_name = self.rng.choice(["x", "inp", "t"])
        dims = []
        for k, d in enumerate(x.dims):
            if d.size.value is None or d.batch:
                dims.append(d)  # run-time sizes are the caller's own
            else:
                s = Size(d.size.value, None)
                bs.opaque[s] = (d.size, k)
                dims.append(Dim(d.name, s, d.batch))
        bs.values[in_name] = Shape(tuple(dims), x.dtype)
        bs.inputs = [in_name]
        for _ in range(self.rng.randint(1, 3)):
            bs.statement()
        sinks = [n for n in bs.values if n not in bs.inputs and bs.uses[n] == 0]
        if not sinks:
            return None
        outputs = sinks[-n_out:] if len(sinks) >= n_out else sinks[-1:]
        if len(outputs) != n_out:
            return None
        name = gen.block_name()
        block = Block(name, bs.params, bs.inputs, outputs, bs.stmts, dict(bs.kinds))
        gen.blocks[name] = block
        gen.block_order.append(name)
        gen.features["block:new"] += 1
        if not block.params:
            gen.features["block:no-params"] += 1
        args = {n: e for n, e in bs.first_args.items() if n not in bs.omit}
        return BlockEl(name, args, positional=self.rng.choice([0, 1, 5]), frozen=self.rng.random() < 0.04)

    def new_context_block(self, x: Shape, m: str) -> BlockEl | None:
        """A block `(x, ctx) -> y` that keeps x's shape and combines it with `ctx` (the caller's value
        `m`), through a weighted op or without weights (`y = x + m`); its output is often named `y`."""
        gen = self.gen
        bs = Scope(gen, "block", self, self.depth + 1)
        in_name, ctx_name = self.rng.choice([("x", "m"), ("inp", "ctx"), ("t", "mem"), ("x", "mem")])
        for name, shape in ((in_name, x), (ctx_name, self.values[m])):
            dims = []
            for k, d in enumerate(shape.dims):
                if d.size.value is None or d.batch:
                    dims.append(d)
                else:
                    s = Size(d.size.value, None)
                    bs.opaque[s] = (d.size, k)
                    dims.append(Dim(d.name, s, d.batch))
            bs.values[name] = Shape(tuple(dims), shape.dtype)
        bs.inputs = [in_name, ctx_name]
        follow = self.rng.random() < 0.5
        y_out = self.rng.random() < 0.5
        v = "y" if y_out and not follow else bs.fresh_value()
        r = self.rng.random()
        X, C = VName(in_name), VName(ctx_name)
        if r < 0.6:
            e = bs.equal_size(bs.values[in_name].dims[-1].size)
            lin = bs._op("linear", {"out_features": e}, 1)
            if r < 0.25:
                st = Assign([v], [in_name, ctx_name], [lin], expr=VBin("+", X, VChain(C, [lin])))
            elif r < 0.42:
                st = Assign([v], [in_name, ctx_name], [bs._op("add", {}), lin], call=True)
            else:
                gate = bs._op("sigmoid", {})
                st = Assign([v], [in_name, ctx_name], [lin, gate], expr=VBin("*", X, VChain(C, [lin, gate])))
        else:  # no weights
            gen.features["block:context:no-weights"] += 1
            q = self.rng.random()
            if q < 0.35:
                st = Assign([v], [in_name, ctx_name], [], expr=VBin("+", X, C))
            elif q < 0.55:
                st = Assign([v], [in_name, ctx_name], [], expr=VBin(self.rng.choice(["*", "-"]), X, C))
            elif q < 0.75:
                st = Assign([v], [in_name, ctx_name], [bs._op(self.rng.choice(["add", "mul"]), {})], call=True)
            else:
                act = bs._op(self.rng.choice(["relu", "tanh", "sigmoid"]), {})
                st = Assign([v], [in_name, ctx_name], [act], expr=VBin("+", X, VChain(C, [act])))
        if bs.emit(st) is None:
            return None
        if follow:
            el = bs.propose(bs.values[v], preserve=True, allow_repeat=False)
            if el is not None and bs.emit(Assign(["y" if y_out else bs.fresh_value()], [v], [el])) is None:
                return None
        out = list(bs.values)[-1]
        if out == "y":
            gen.features["block:context:out-y"] += 1
        name = gen.block_name()
        block = Block(name, bs.params, bs.inputs, [out], bs.stmts, dict(bs.kinds))
        gen.blocks[name] = block
        gen.block_order.append(name)
        gen.features["block:context"] += 1
        args = {n: e for n, e in bs.first_args.items() if n not in bs.omit}
        return BlockEl(name, args, extra=[m], positional=self.rng.choice([0, 1, 5]))

    def recall(self, block: Block, x: Shape) -> BlockEl | None:
        """A later call of `block` on `x`, with arguments chosen afresh where the model accepts them."""
        for attempt in range(3):
            args: dict[str, Expr] = {}
            for p in block.params:
                kind = block.kinds.get(p.name, (p.role,))
                if p.default is not None and self.rng.random() < 0.3:
                    continue
                args[p.name] = self._argument(kind, x, p)
            el = BlockEl(block.name, args, positional=self.rng.choice([0, 1, 5]))
            try:
                self.apply(el, [x])
            except Invalid:
                if attempt == 2 and self.rng.random() < 0.1:
                    self.gen.features["block:recall-ill-typed"] += 1
                    return el  # an occasional ill-typed call: the checker must reject it
                continue
            self.gen.features["block:recall"] += 1
            if block.kinds and any(k[0] == "equal" for k in block.kinds.values()):
                self.gen.features["block:recall-equal"] += 1
            return el
        return None

    def _argument(self, kind: tuple, x: Shape, p: Param) -> Expr:
        role = kind[0]
        if role == "equal":
            index = kind[1]
            if index < x.rank:
                e = self.equal_size(x.dims[index].size)
                if e is not None:
                    return e
            return self.size_expr()
        if role == "size":
            return self.size_expr()
        if role == "int":
            return self.int_expr(kind[1], list(kind[2]))
        if role == "p":
            return self.float_expr()
        if role == "flag":
            return self.bool_expr(kind[1] if len(kind) > 1 else 0.45)
        return Lit(p.default if p.default is not None else 1)

    # ---- statements
    def statement(self) -> bool:
        """Generate one statement (or two: a branch and the merge that uses it); False if none
        fits. A block that the statement defines is often called once more right away, on
        another value (of another rank, where one fits), with other arguments."""
        for _ in range(6):
            before = set(self.gen.blocks)
            r = self.rng.random()
            if not self.gen.v04:  # the v0.3 generator
                ok = self._chain() if r < 0.5 else self._destructure() if r < 0.68 else self._merge()
            elif r < 0.45:
                ok = self._chain()
            elif r < 0.61:
                ok = self._destructure()
            elif r < 0.85:
                ok = self._merge()
            elif r < 0.94:
                ok = self._arith()
            elif self.kind == "model" and self.rng.random() < 0.5:
                ok = self._layer()
            else:
                ok = self._context_repeat()
            if ok:
                for name in [n for n in self.gen.blocks if n not in before]:
                    if self.rng.random() < 0.6:
                        self._call_again(self.gen.blocks[name])
                return True
        return False

    def _call_again(self, block: Block) -> None:
        if block.name not in self.called() or len(block.inputs) > 1:
            return
        ranks = {s.rank for s in self.values.values()}
        first = self.values[self.stmts[-1].head[0]].rank if self.stmts[-1].head else None
        other = [n for n, s in self.values.items() if s.dtype == "float32" and s.rank != first]
        base = self.rng.choice(other) if other and len(ranks) > 1 and self.rng.random() < 0.6 else self.pick(
            lambda s: s.dtype == "float32")
        if base is None:
            return
        el = self.recall(block, self.values[base])
        if el is None:
            return
        targets = [self.fresh_value() for _ in block.outputs]
        self.emit(Assign(targets, [base], [el], call=len(targets) > 1 or self.rng.random() < 0.3))

    def called(self) -> set[str]:
        """The blocks that this scope's statements call (directly)."""
        out: set[str] = set()

        def visit(elements: list[Any]) -> None:
            for el in elements:
                if isinstance(el, BlockEl):
                    out.add(el.name)
                elif isinstance(el, RepeatEl):
                    visit(el.body)

        for st in self.stmts:
            visit(st.chain)
        return out

    def _chain(self) -> bool:
        base = self.pick()
        if base is None:
            return False
        x = self.values[base]
        chain = []
        for _ in range(self.rng.choice([1, 1, 2, 2, 3])):
            el = self.propose(x, base=base if not chain else None)
            if el is None:
                break
            chain.append(el)
            x = self.apply(el, [x])[0]
        if not chain:
            return False
        call = isinstance(chain[0], (OpEl, BlockEl)) and not chain[0].frozen and self.rng.random() < 0.3
        return self.emit(Assign([self.fresh_value()], [base], chain, call=call)) is not None

    def _destructure(self) -> bool:
        base = self.pick(lambda s: s.dtype == "float32" and s.rank >= 2)
        if base is None:
            return False
        x = self.values[base]
        r = self.rng.random()
        if r < 0.4:
            el = self._split_el(x)
        elif r < 0.7 and x.rank == 3 and x.dims[-1].size.value is not None:
            op = self.rng.choice(["lstm", "gru"])
            el = self._op(op, self._rnn_args(), self.rng.choice([0, 1]))
        elif r < 0.85 and x.rank == 3 and x.dims[-1].size.value is not None:
            return self._attention(base)
        elif self.depth < 2:
            el = self.new_block(x, 2)
        else:
            return False
        if el is None:
            return False
        try:
            outs = self.apply(el, [x])
        except Invalid:
            return False
        targets = [self.fresh_value() for _ in outs]
        if len(targets) > 2 and self.rng.random() < 0.3:
            targets[self.rng.randrange(1, len(targets))] = "_"
        return self.emit(Assign(targets, [base], [el], call=True)) is not None

    # ---- v0.4 statements: arithmetic on values, indexing, calls with chains as arguments, layers
    def _emit_expr(self, e: Any, feature: str) -> bool:
        names: list[str] = []
        elements: list[Any] = []
        vexpr_parts(e, names, elements)
        if self.emit(Assign([self.fresh_value()], names, elements, expr=e)) is None:
            return False
        self.gen.features[feature] += 1
        return True

    def _preserving_chain(self, x: Shape, n: int = 2) -> list[Any]:
        chain: list[Any] = []
        for _ in range(self.rng.randint(1, n)):
            el = self.propose(x, preserve=True, allow_repeat=False)
            if el is None:
                break
            chain.append(el)
        return chain

    def _reduced(self, x: Shape, keep: bool = True) -> tuple[int, OpEl] | None:
        axes = [i for i, d in enumerate(x.dims) if not d.batch and i > 0]
        if not axes:
            return None
        k = self.rng.choice(axes)
        op = self.rng.choice(["mean", "mean", "sum", "max", "logsumexp"])
        args: dict[str, Expr] = {"dim": self.dim_expr(x, k)}
        if keep:
            args["keepdim"] = Lit(True)
        return k, self._op(op, args, 0)

    def _arith(self) -> bool:
        base = self.pick(lambda s: s.dtype == "float32" and s.rank >= 2 and s.dims[0].batch)
        if base is None:
            return False
        x = self.values[base]
        X = VName(base)
        op = self.rng.choice(["+", "+", "-", "*", "/"])
        r = self.rng.random()
        if r < 0.2:  # a residual: x + (x >> f)
            chain = self._preserving_chain(x)
            if not chain:
                return False
            e: Any = VBin(op if op != "/" else "+", X, VChain(X, chain))
            if self.rng.random() < 0.3:
                e = VBin(op, VChain(X, chain[:1]), X)
            return self._emit_expr(e, "arith:chain")
        if r < 0.35:  # two values of one shape
            partner = self._partner(base, lambda s: shape_eq(s, x))
            if partner is None:
                return False
            e = VBin(op, X, VName(partner))
            if self.rng.random() < 0.3:
                e = VBin(self.rng.choice(["+", "*"]), e, VNum(self.rng.choice([0.5, 2.0, 1])))
            return self._emit_expr(e, "arith:values")
        if r < 0.47:  # numbers
            k = self.rng.random()
            if k < 0.25:
                e = VBin("*", X, VNum(0.5))
            elif k < 0.45:
                e = VBin("-", VNum(1), X)
            elif k < 0.6:
                e = VNeg(X)
            elif k < 0.75:
                e = VBin("/", X, VNum(self.rng.choice([2.0, 4])))
            else:
                e = VBin("+", VBin("*", VNum(2), X), VNeg(VChain(X, [self._op("relu", {})])))
            return self._emit_expr(e, "arith:numbers")
        if r < 0.6:  # broadcasting a reduction kept as a literal 1
            red = self._reduced(x)
            if red is None:
                return False
            k, el = red
            chain: list[Any] = [el]
            if self.rng.random() < 0.3:
                chain.append(self._op(self.rng.choice(["sigmoid", "relu", "tanh"]), {}))
            t = self.rng.random()
            if t < 0.2:
                e = VCall(self._op(self.rng.choice(["sub", "mul", "add", "div"]), {}), [X, VChain(X, chain)])
                return self._emit_expr(e, "broadcast:call")
            if t < 0.35:  # expand(x >> mean(dim=k, keepdim=true), like=x)
                ex = self._op("expand", {})
                ex.like = base
                return self._emit_expr(VCall(ex, [VChain(X, chain)]), "broadcast:expand")
            if t < 0.5:  # the kept dimension squeezed away again
                sq = self._op("squeeze", {"dim": self.dim_expr(x, k) if self.rng.random() < 0.5 else Lit(k)}, 0)
                return self._emit_expr(VChain(X, chain + [sq]), "squeeze")
            e = VBin(op, X, VChain(X, chain)) if self.rng.random() < 0.7 else VBin(op, VChain(X, chain), X)
            return self._emit_expr(e, "broadcast:keepdim")
        if r < 0.67:  # a reduction unsqueezed back (named or not): broadcasts at the literal 1
            axes = [i for i, d in enumerate(x.dims) if i > 0 and not d.batch]
            if not axes:
                return False
            k = self.rng.choice(axes)
            args: dict[str, Expr] = {"dim": Lit(k)}
            if x.dims[k].name and self.rng.random() < 0.6:
                args["name"] = DimRef(x.dims[k].name)
            red = self._op("mean", {"dim": self.dim_expr(x, k)}, 0)
            e = VBin(op, X, VChain(X, [red, self._op("unsqueeze", args, 0)]))
            return self._emit_expr(e, "broadcast:unsqueeze")
        if r < 0.74:  # a learned tensor broadcast from the right
            last = x.dims[-1]
            if last.size.value is None or last.batch:
                return False
            size = self.equal_size(last.size)
            lead = self.rng.randint(0, x.rank - 1)
            item: Expr = NamedItem(last.name, size) if last.name else size
            shape = ListE(tuple([Lit(1)] * lead + [item]))
            args = {"shape": shape}
            if self.rng.random() < 0.4:
                args["init"] = Lit(self.rng.choice(["zeros", "ones", "normal", "uniform"]))
            p = VCall(self._op("parameter", args, self.rng.choice([0, 1])), [])
            e = VBin(self.rng.choice(["+", "*"]), X, p) if self.rng.random() < 0.7 else VBin("+", p, X)
            return self._emit_expr(e, "arith:parameter")
        if r < 0.8:  # positions: x + (arange(x, dim=token) >> embedding(k, d))
            def fits(s: Shape) -> bool:
                if s.dtype != "float32" or s.rank < 3 or not s.dims[0].batch or s.dims[-1].size.value is None \
                        or s.dims[-1].batch or not s.dims[-2].name:
                    return False
                emb = "embedding" if s.dims[-2].name == "feature" else "feature"
                return s.dims[-1].name in (None, emb) and [d.name for d in s.dims].count(s.dims[-2].name) == 1
            if not fits(x):  # another value that has positions, where there is one
                base = self.pick(fits)
                if base is None:
                    return False
                x, X = self.values[base], VName(base)
            pos = x.dims[-2]
            # num_embeddings may be smaller than the positions (run-time sizes up to 17, or a literal
            # or parameter size): the checker requires k >= the length, an error or a run-time requirement
            vocab = self.int_expr("positions", [4, 8, 12, 16, 32, 64], literal=0.5)
            emb = self._op("embedding", {"num_embeddings": vocab, "embedding_dim": self.equal_size(x.dims[-1].size)}, 2)
            ar = VCall(self._op("arange", {"dim": DimRef(pos.name)}, self.rng.choice([0, 1])), [X])
            return self._emit_expr(VBin("+", X, VChain(ar, [emb])), "arith:arange")
        if r < 0.9:  # indexing
            return self._index(base)
        # chains as call arguments
        chain = self._preserving_chain(x)
        if not chain:
            return False
        op = self.rng.choice(["add", "mul", "max", "mean", "sub", "div"])
        args = [X, VChain(X, chain)]
        if self.rng.random() < 0.25 and op not in ("sub", "div"):  # (binary)
            args.append(X)
        call = VCall(self._op(op, {}), args)
        if self.rng.random() < 0.2:
            return self._emit_expr(VBin("+", X, call), "call:chain-args")
        if self.rng.random() < 0.15 and x.dims[0].batch:
            k = self.rng.randrange(1, x.rank)
            call = VCall(self._op("cat", {"dim": self.dim_expr(x, k)}), [X, VChain(X, chain[:1])])
        return self._emit_expr(call, "call:chain-args")

    def _index(self, base: str) -> bool:
        x = self.values[base]
        k = self.rng.randrange(1, x.rank)
        d = x.dims[k]
        n = d.size.value
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            idx = rng.choice([-1, 0]) if n is None else rng.randint(-n, n - 1)
            op = (k, "select", Lit(idx), None)
            text = str(idx)
        else:
            forms = ["1:", ":-1"]
            if n is not None and n >= 2:
                forms += ["-2:", ":n", "n:", "a:b", ":n"]
            elif n is None:
                forms += [":n", "a:b"]
            form = rng.choice(forms)
            if form == "1:":
                op, text = (k, "slice", Lit(1), None), "1:"
            elif form == ":-1":
                op, text = (k, "slice", None, Lit(-1)), ":-1"
            elif form == "-2:":
                op, text = (k, "slice", Lit(-2), None), "-2:"
            elif form == ":n":
                top = n - 1 if n is not None else 4
                end = self.int_expr("cut", list(range(1, max(top, 1) + 1)), ok=lambda v: isinstance(v, int) and v >= 1
                                    and (n is None or v < n))
                op, text = (k, "slice", None, end), ":" + end.render()
            elif form == "n:":
                start = self.int_expr("cut", list(range(1, n)), ok=lambda v: isinstance(v, int) and 1 <= v < n)
                op, text = (k, "slice", start, None), start.render() + ":"
            else:
                top = n if n is not None else 5
                a = rng.randint(1, max(1, top - 2))
                b = rng.randint(a + 1, top if n is not None else 6)
                start = Lit(a) if rng.random() < 0.5 else self.int_expr("cut", [a], ok=lambda v, a=a: v == a)
                end = Lit(b) if rng.random() < 0.5 else self.int_expr("cut", [b], ok=lambda v, b=b: v == b)
                if isinstance(start, Name) and isinstance(end, Name) and start == end:
                    end = Lit(b)
                op, text = (k, "slice", start, end), f"{start.render()}:{end.render()}"
        names = [e.name for e in x.dims]
        if d.name and names.count(d.name) == 1 and rng.random() < 0.6:
            items = [f"{d.name}={text}"]
            self.gen.features["index:by-name"] += 1
        else:
            items = [":"] * k + [text]
            self.gen.features["index:positional"] += 1
        e: Any = VIndex(base, items, [op])
        try:
            out = self.interp.value(e, dict(self.values), {})
        except Invalid:
            return False
        if self.rng.random() < 0.25 and out.rank >= 2:
            e = VBin("+", e, VChain(e, [self._op("relu", {})])) if rng.random() < 0.5 else VBin("*", e, VNum(2))
        self.gen.features["index:" + op[1]] += 1
        return self._emit_expr(e, "index")

    def _layer_name(self) -> str:
        taken = self.taken() | set(self.interp.layers)
        for n in self.rng.sample(LAYER_NAMES, len(LAYER_NAMES)):
            if n not in taken:
                return n
        i = 2
        while f"shared{i}" in taken:
            i += 1
        return f"shared{i}"

    def _layer(self) -> bool:
        """`layer NAME = linear(...)` applied twice, or an embedding layer tied to a linear."""
        ids = [n for n, s in self.values.items() if s.dtype == "int64" and s.rank >= 2 and s.dims[0].batch]
        if ids and self.rng.random() < 0.6:
            return self._tied(self.rng.choice(ids))
        base = self.pick(lambda s: s.dtype == "float32" and s.rank >= 2 and s.dims[0].batch
                         and s.dims[-1].size.value is not None and not s.dims[-1].batch)
        if base is None:
            return False
        x = self.values[base]
        name = self._layer_name()
        same = self.rng.random() < 0.6
        out = self.equal_size(x.dims[-1].size) if same else self.size_expr()
        el = self._op("linear", {"out_features": out}, 1)
        if self.emit(Assign([name], [], [el], layer=True)) is None:
            return False
        first = self.fresh_value()
        chain: list[Any] = [LayerEl(name)]
        if self.rng.random() < 0.5:
            chain.append(self._op(self.rng.choice(ELEMENTWISE), {}))
        if self.emit(Assign([first], [base], chain)) is None:
            self.stmts.pop()
            del self.interp.layers[name]
            return False
        self.gen.features["layer:shared"] += 1
        y = self.values[first]
        if shape_eq(y, x) and self.rng.random() < 0.6:
            second = Assign([self.fresh_value()], [first], [LayerEl(name)])
        elif self.rng.random() < 0.5:
            second = Assign([self.fresh_value()], [], [], expr=VBin("+", VName(first), VChain(VName(base), [
                self._op("relu", {}), LayerEl(name)])))
            second.head, second.chain = [first, base], [second.expr.b.chain[0], second.expr.b.chain[1]]
        else:
            pre = self.propose(x, preserve=True, allow_repeat=False)
            second = Assign([self.fresh_value()], [base], ([pre] if pre is not None else []) + [LayerEl(name)])
        self.emit(second)
        return True

    def _tied(self, ids: str) -> bool:
        x = self.values[ids]
        name = self._layer_name()
        vocab = self.int_expr("vocab", [5, 10, 50])
        width = self.size_expr()
        if self.emit(Assign([name], [], [self._op("embedding", {"num_embeddings": vocab, "embedding_dim": width},
                                                      self.rng.choice([0, 2, 2]))], layer=True)) is None:
            return False
        h = self.fresh_value()
        if self.emit(Assign([h], [ids], [LayerEl(name)])) is None:
            return False
        y = self.values[h]
        chain = self._preserving_chain(y, 1) if self.rng.random() < 0.6 else []
        lin = self._op("linear", {"out_features": vocab, "tie": LayerRef(name)}, 1)
        if self.rng.random() < 0.1:
            lin.args["bias"] = Lit(False)
        self.emit(Assign([self.fresh_value()], [h], chain + [lin]))
        self.gen.features["layer:tie"] += 1
        return True

    def _split_el(self, x: Shape) -> OpEl | None:
        k = self.rng.randrange(1, x.rank)
        d = x.dims[k]
        ref = self.dim_expr(x, k)
        if d.size.value is None:
            if self.rng.random() < 0.6:
                return None
            self.gen.features["split:runtime"] += 1
            n = self.rng.choice([2, 3])
            op = self.rng.choice(["split", "chunk"])
            return self._op(op, {("chunks" if op == "chunk" else "sections"): Lit(n), "dim": ref}, 1)
        size = d.size.value
        divs = [g for g in (2, 3, 4) if size % g == 0 and g <= size]
        r = self.rng.random()
        if r < 0.35 and size >= 2:
            a = self.rng.randint(1, size - 1)
            return self._op("split", {"sections": ListE((Lit(a), Lit(size - a))), "dim": ref}, 1)
        if not divs:
            return None
        n = self.rng.choice(divs)
        op = self.rng.choice(["split", "chunk"])
        return self._op(op, {("chunks" if op == "chunk" else "sections"): Lit(n), "dim": ref}, 1)

    def _attention(self, base: str) -> bool:
        q = self.values[base]
        e = q.dims[-1].size
        kv = self.pick(lambda s: s.rank == 3 and s.dtype == "float32" and size_eq(s.dims[-1].size, e)) or base
        ins = [base, kv, kv]
        k = self.values[kv]
        masks = [n for n, s in self.values.items()
                 if s.dtype == "bool" and s.rank == 2 and size_eq(s.dims[1].size, k.dims[1].size)]
        if masks and self.rng.random() < 0.7:
            ins.append(self.rng.choice(masks))
            self.gen.features["attention:mask"] += 1
        args = {"num_heads": self.divisor_expr("heads", e.value)}
        if self.rng.random() < 0.3:
            args["average_weights"] = self.bool_expr(0.9)
        if self.rng.random() < 0.2 and kv == base:
            args["causal"] = self.bool_expr(0.9)
        el = self._op("attention", args, 0)
        return self.emit(Assign([self.fresh_value(), self.fresh_value()], ins, [el], call=True)) is not None

    def _partner(self, base: str, fits: Callable[[Shape], bool]) -> str | None:
        """A value that fits with `base`, or a new branch from it (emitted first) that does."""
        others = [n for n in self.values if n != base and fits(self.values[n])]
        if others and self.rng.random() < 0.8:
            return self.rng.choice(others)
        x = self.values[base]
        el = self.propose(x, preserve=True, allow_repeat=False)
        if el is None:
            return None
        name = self.fresh_value()
        if self.emit(Assign([name], [base], [el])) is None:
            return None
        return name if fits(self.values[name]) else None

    def _merge(self) -> bool:
        base = self.pick(lambda s: s.dtype == "float32")
        if base is None:
            return False
        x = self.values[base]
        r = self.rng.random()
        if r < 0.5:
            op = self.rng.choice(["add", "add", "mul", "mean", "max"])
            partner = self._partner(base, lambda s: shape_eq(s, x))
            if partner is None:
                return False
            ins = [base, partner]
            if self.rng.random() < 0.15:
                ins.append(base)
            el = self._op(op, {})
        elif r < 0.85 and x.rank >= 2:
            k = self.rng.randrange(1, x.rank)
            d = x.dims[k]

            def fits(s: Shape, k=k) -> bool:
                return (s.rank == x.rank and s.dtype == x.dtype and all(a.name == b.name for a, b in zip(s.dims, x.dims))
                        and all(size_eq(a.size, b.size) for j, (a, b) in enumerate(zip(s.dims, x.dims)) if j != k))

            others = [n for n in self.values if n != base and fits(self.values[n])]
            if others and self.rng.random() < 0.7:
                partner = self.rng.choice(others)
            elif k == x.rank - 1 and d.size.value is not None and self.rng.random() < 0.6:
                partner = self.fresh_value()
                lin = self._op("linear", {"out_features": self.size_expr()})
                if self.emit(Assign([partner], [base], [lin])) is None:
                    return False
            else:
                partner = base
            if d.size.value is None:
                self.gen.features["cat:runtime"] += 1
            ins = [base, partner]
            el = self._op("cat", {"dim": self.dim_expr(x, k)})
        else:
            partner = self._partner(base, lambda s: shape_eq(s, x))
            if partner is None:
                return False
            ins = [base, partner]
            if self.rng.random() < 0.3:
                ref: Expr = DimRef(self.rng.choice(["pair", "stk"]))
            else:
                i = self.rng.randint(1, x.rank)
                ref = Lit(i if self.rng.random() < 0.7 else i - x.rank - 1)
            el = self._op("stack", {"dim": ref})
        if self.rng.random() < 0.25:  # `a >> add(b)`: the piped value is the first input
            el.extra = ins[1:]
            st = Assign([self.fresh_value()], ins[:1], [el])
        else:
            st = Assign([self.fresh_value()], ins, [el], call=True)
        if self.rng.random() < 0.3:  # the merged value flows on in the same chain
            try:
                out = self.interp.statement(st, dict(self.values), {})[0]
            except Invalid:
                return False
            nxt = self.propose(out)
            if nxt is not None:
                st.chain.append(nxt)
        return self.emit(st) is not None


# ------------------------------------------------------------------------------ models and inputs


def _inputs(scope: Scope) -> list[InputDecl]:
    rng = scope.rng
    kinds = ["vec", "seq", "seq", "img", "img", "sig", "ids", "free"]
    first = rng.choice(kinds)
    if first == "free":
        return [InputDecl("x", "float32", [], declared=False)]
    decls = [_input(scope, first, _NAMES[first])]
    if first in ("seq", "ids") and rng.random() < 0.3:
        decls.append(_input(scope, "mask", "mask", like=decls[0]))  # a key-padding mask for attention
    elif rng.random() < 0.35:
        second = first if rng.random() < 0.5 else rng.choice(["vec", "seq", "img", "ids", "mask"])
        if second == "mask" and first not in ("seq", "ids"):
            second = "seq"
        name = _NAMES[second] if _NAMES[second] != decls[0].name else "y"
        decls.append(_input(scope, second, name, like=decls[0]))
    return decls


_NAMES = {"vec": "x", "seq": "x", "img": "img", "sig": "sig", "ids": "ids", "mask": "mask"}


def _input(scope: Scope, kind: str, name: str, like: InputDecl | None = None) -> InputDecl:
    rng = scope.rng

    def width() -> Expr:
        if rng.random() < 0.35:
            return Lit(rng.choice([3, 4, 8, 16]))
        return scope.size_expr() if rng.random() < 0.85 else Bin("*", scope.size_expr(), Lit(2))

    def symbolic(dim: str, sizes: list[int]) -> tuple[str, Expr | None]:
        if like is not None:
            for n, e in like.dims:
                if n == dim:
                    return (n, e)
        return (dim, None) if rng.random() < 0.7 else (dim, Lit(rng.choice(sizes)))

    token = "token" if rng.random() < 0.85 else "time"
    if like is not None:
        token = next((n for n, _ in like.dims if n in ("token", "time")), token)
    if kind == "vec":
        return InputDecl(name, "float32", [("batch", None), ("feature", width())])
    if kind == "seq":
        return InputDecl(name, "float32", [("batch", None), symbolic(token, [4, 5, 6]), ("feature", width())])
    if kind == "img":
        channels = Lit(3) if rng.random() < 0.5 else width()
        return InputDecl(name, "float32", [("batch", None), ("channel", channels), symbolic("height", [8, 9, 12, 16]),
                                           symbolic("wd", [8, 10, 12])])
    if kind == "sig":
        return InputDecl(name, "float32", [("batch", None), ("channel", width()), symbolic("length", [8, 11, 16])])
    if kind == "ids":
        return InputDecl(name, "int64", [("batch", None), symbolic(token, [4, 6])])
    if kind == "mask":
        return InputDecl(name, "bool", [("batch", None), symbolic(token, [4, 6])])
    raise ValueError(kind)


def _input_shape(scope: Scope, decl: InputDecl) -> Shape:
    if not decl.declared:
        return Shape((Dim("batch", Size(None, DimVar("batch")), True), Dim("feature", Size(16, None))))
    dims = []
    for k, (name, e) in enumerate(decl.dims):
        if e is None:
            dims.append(Dim(name, Size(None, DimVar(name)), k == 0))
        else:
            dims.append(Dim(name, Size(e.eval(scope.env), e), k == 0))
    return Shape(tuple(dims), decl.dtype)


def generate(seed: int) -> Program:
    """One random program; the same seed gives the same text."""
    gen = Gen(seed)
    rng = gen.rng
    model = Scope(gen, "model")
    decls = _inputs(model)
    for d in decls:
        model.values[d.name] = _input_shape(model, d)
        model.inputs.append(d.name)
    target = rng.randint(2, 12)
    while len(model.stmts) < target:
        if not model.statement():
            break
    if not model.stmts:  # nothing fitted: an op that takes any input
        x = model.inputs[0]
        op = OpEl("embedding", {"num_embeddings": Lit(5), "embedding_dim": Lit(4)}) if model.values[x].dtype != "float32" \
            else OpEl("identity", {})
        model.emit(Assign(["v1"], [x], [op]))
    sinks = [n for n in model.values if n not in model.inputs and model.uses[n] == 0]
    last = model.stmts[-1]
    if (last.call and len(last.targets) == 1 and len(last.chain) == 1 and isinstance(last.chain[0], OpEl) and last.chain[0].op in VARIADIC
            and last.targets[0] in sinks and rng.random() < 0.3):
        last.merge = True  # `merge add(a, b)`: the result is the model's one output
        gen.features["merge"] += 1
    lines: list[str] = []
    for d in decls:
        if d.declared:
            lines.append(render_input(d))
    lines += [render_statement(st, gen.blocks) for st in model.stmts]
    if sinks and not last.merge:
        outs = sinks[-4:]
        implicit = (outs == [t for t in last.targets if t != "_"] and len(last.targets) == len(outs)
                    and rng.random() < 0.3)
        if implicit:
            gen.features["implicit-output"] += 1
        else:
            lines.append(f"output {', '.join(outs)}")
    params = ", ".join(_render_param(p) for p in model.params)
    header = f"model M({params})" if model.params or rng.random() < 0.5 else "model M"
    body = "\n".join("    " + line for line in lines)
    parts = []
    if gen.uses_std:
        parts.append("import std")
    used = _used_blocks(model, gen)
    parts += [render_block(gen.blocks[n], gen.blocks) for n in gen.block_order if n in used]
    parts.append(f"{header} {{\n{body}\n}}")
    for d in decls:
        gen.features["input:" + (d.dtype if d.declared else "undeclared")] += 1
    for n in used:
        gen.features[f"block:calls:{min(_count_calls(model, gen, n), 3)}"] += 1
    text = "\n\n".join(parts) + "\n"
    if rng.random() < MUTATION_RATE:
        text = _mutate(text, rng)
        gen.features["mutated"] += 1
    return Program(seed, text, gen.features)


MUTATION_RATE = 0.15  # programs with one number of the model's body changed at random


def _mutate(text: str, rng: random.Random) -> str:
    """The text with one integer literal of the model (after `model M`) replaced: near-misses
    that the checker must either reject or get right."""
    start = text.index("model M")
    spots = [m for m in re.finditer(r"(?<![\w.])\d+(?![\w.])", text) if m.start() > start]
    if not spots:
        return text
    m = rng.choice(spots)
    new = str(rng.choice([0, 1, 2, 3, 5, 7, 13]))
    return text[: m.start()] + new + text[m.end():]


def _block_calls(gen: Gen, elements: Iterable[Any], out: Counter) -> None:
    for el in elements:
        if isinstance(el, BlockEl):
            out[el.name] += 1
        elif isinstance(el, RepeatEl):
            _block_calls(gen, el.body, out)


def _used_blocks(model: Scope, gen: Gen) -> set[str]:
    """The blocks the model calls, directly or through other blocks."""
    todo = [el for st in model.stmts for el in st.chain]
    used: set[str] = set()
    while todo:
        calls: Counter = Counter()
        _block_calls(gen, todo, calls)
        todo = []
        for name in calls:
            if name not in used:
                used.add(name)
                todo += [el for st in gen.blocks[name].body for el in st.chain]
    return used


def _count_calls(model: Scope, gen: Gen, name: str) -> int:
    calls: Counter = Counter()
    _block_calls(gen, [el for st in model.stmts for el in st.chain], calls)
    for b in _used_blocks(model, gen):
        _block_calls(gen, [el for st in gen.blocks[b].body for el in st.chain], calls)
    return calls[name]


def strategy():
    """The generator as a hypothesis strategy of programs (shrinking towards small seeds)."""
    from hypothesis import strategies as st

    return st.integers(min_value=0, max_value=2**32 - 1).map(generate)


if __name__ == "__main__":  # PYTHONPATH=tests python -m differential.generate SEED...
    import sys

    for arg in sys.argv[1:] or ["0"]:
        print(f"# seed {arg}")
        print(generate(int(arg)).text)
