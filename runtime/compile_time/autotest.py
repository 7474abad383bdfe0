"""Per-op property test: random valid programs for one op, compiled and checked against PyTorch.

`autotest_op(name)` uses hypothesis to draw hyper-parameters and input shapes for op `name` from
its registry entry, writes a one-statement `.tg` model for each draw, compiles it in-process
(front end -> shape check -> emission) and checks with `verify` that every value's shape and dtype
in the real module equal the checker's, that both the probed and the plain emitted source trace
under `torch.fx`, and that the plain module's outputs have the checked shapes. A new op is tested
without writing a test.

How values are drawn. Each hyper-parameter gets a value by its registry type (`_generic_value`:
small positive ints, floats in [0, 0.5], bools, one of `choices` for strings, a valid index or
name of the first input for `dim`, ...), or is left out when it has a default. Ops whose valid
values depend on each other or on the input (a kernel no larger than the padded input, an embed
width divisible by the heads, split sections that add up to the size) have an entry in
`STRATEGIES`, keyed by op name: a function `(draw, spec) -> Case` that draws the inputs and the
arguments it knows about (and may call `_generic_args` for the rest). After either, `_finish`
draws the spelling of each keyword (its name or an alias) and which scalar arguments and input
sizes become model parameters (`model Autotest(n4: int = 4)`), so symbolic emission is exercised.

Every drawn case must be valid: a diagnostic from the front end or the checker is a failure (of
the op or of its strategy). One exception: an op may refuse a model parameter where it needs a
literal (E056, "not supported", e.g. a bool that changes the emitted forward); the arguments the
error names are then written as literals and the case is compiled again. Every hyper-parameter
must take at least two different values over the examples (from `MIN_VARIED` examples on), so a
strategy cannot silently pin one.

Imports torch and hypothesis; `tgc check` never imports it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_REPORTED = 3  # failing examples reported per op (the rest are counted)
MIN_VARIED = 10  # from this many examples on, every hyper-parameter must have taken two values


# ------------------------------------------------------------------------------ cases


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


# ------------------------------------------------------------------------------ rendering


def literal(value: Any) -> str:
    """tg source of an argument value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Name):
        return value.id
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a tg literal")


_PY_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def output_names(spec, case: Case) -> list[str]:
    if case.chain or case.outputs == 1:
        return ["out"]
    base = list(spec.outputs) if spec.outputs_from is None and len(spec.outputs) == case.outputs else [
        f"o{i}" for i in range(case.outputs)]
    return ["_" if i in case.discard else f"res_{n}" for i, n in enumerate(base)]


def render(spec, case: Case) -> str:
    """The `.tg` program for one case: one model, declared inputs, one statement, the outputs."""
    params: dict[str, str] = {}

    def size(value: int) -> str:
        if not case.hoist_sizes:
            return str(value)
        params[f"n{value}"] = f"n{value}: int = {value}"
        return f"n{value}"

    lines = []
    for t in case.inputs:
        dims = []
        for name, s in t.dims:
            if s is None:
                dims.append(name or "?")
            else:
                dims.append(f"{name}={size(s)}" if name else size(s))
        prefix = {"float32": "", "int64": "long"}.get(t.dtype, t.dtype)
        lines.append(f"    input {t.name}: {prefix}[{', '.join(dims)}]")

    keywords = []
    for p in spec.params:
        if p.name not in case.args:
            continue
        value = case.args[p.name]
        text = literal(value)
        if p.name in case.hoist:
            pname = f"p_{p.name}"
            params[pname] = f"{pname}: {_PY_TYPES[type(value)]} = {text}"
            text = pname
        keywords.append(f"{case.spell.get(p.name, p.name)}={text}")

    tensors = case.call or [t.name for t in case.inputs]
    outs = output_names(spec, case)
    if case.chain:
        args = ", ".join([*tensors[1:], *keywords])
        lines.append(f"    out = {tensors[0]} >> {spec.name}({args}) >> identity")
    else:
        lines.append(f"    {', '.join(outs)} = {spec.name}({', '.join([*tensors, *keywords])})")
    lines.append(f"    output {', '.join(o for o in outs if o != '_')}")
    header = "model Autotest" + (f"({', '.join(params[k] for k in sorted(params))})" if params else "")
    if getattr(spec, "library", None):  # a library op (`mlp`) needs its `import std`
        header = f"import {spec.library}\n{header}"
    return header + " {\n" + "\n".join(lines) + "\n}\n"


# ------------------------------------------------------------------------------ generic drawing


_NAMES = ("token", "chan", "height", "width")


def _st():
    from hypothesis import strategies as st

    return st


def float_input(draw: Draw, name: str = "x", min_rank: int = 2, max_rank: int = 4, unsized: bool = True,
                low: int = 1, high: int = 5) -> Tensor:
    """A float input [batch, ...]: middle dims may be unsized names (`token`), the last is sized."""
    st = _st()
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
    st = _st()
    dims: list[tuple[str | None, int | None]] = [("batch", None)]
    for i, label in enumerate(labels):
        s = sizes[i] if sizes is not None else draw(st.integers(low, high))
        dims.append((label if draw(st.booleans()) else None, s))
    return Tensor(name, dims)


def dim_ref(draw: Draw, t: Tensor, indices) -> Any:
    """A reference to one of `indices` of `t`: a non-negative index, a negative one, or its name."""
    st = _st()
    k = draw(st.sampled_from(list(indices)))
    forms = ["index", "negative"] + (["name"] if t.dims[k][0] else [])
    form = draw(st.sampled_from(forms))
    if form == "name":
        return Name(t.dims[k][0])
    return k if form == "index" else k - t.rank


def _generic_value(draw: Draw, p, x: Tensor) -> Any:
    st = _st()
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
    return None if default and draw(_st().booleans()) else value


def put(args: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        args[name] = value


def _generic_args(draw: Draw, spec, x: Tensor, args: dict[str, Any], skip=()) -> dict[str, Any]:
    """Generic values for the parameters not in `args` or `skip`; optional ones may be left out."""
    for p in spec.params:
        if p.name in args or p.name in skip:
            continue
        value = _generic_value(draw, p, x)
        put(args, p.name, value if p.required else maybe(draw, value))
    return args


def _outputs(spec, args: dict[str, Any]) -> int:
    if spec.outputs_from is None:
        return len(spec.outputs)
    n = args.get(spec.outputs_from)
    return len(n) if isinstance(n, list) else int(n)


def generic(draw: Draw, spec) -> Case:
    """Inputs of one drawn float type, every parameter drawn by its type."""
    st = _st()
    x = float_input(draw, "a" if spec.variadic else spec.inputs[0])
    if spec.variadic:
        n = draw(st.integers(max(spec.min_inputs, 1), max(spec.min_inputs, 1) + 1))
        inputs = [x.renamed(c) for c in "abcdefgh"[:n]]
    else:
        inputs = [x.renamed(nm) for nm in spec.inputs[: spec.required_inputs]]
    args = _generic_args(draw, spec, x, {})
    return Case(inputs, args, outputs=_outputs(spec, args))


# ------------------------------------------------------------------------------ per-op strategies


def _copies(draw: Draw, x: Tensor, low: int = 2, high: int = 3) -> list[Tensor]:
    n = draw(_st().integers(low, high))
    return [x.renamed(c) for c in "abcdefgh"[:n]]


def _cat(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "a")
    k = draw(st.sampled_from([i for i in range(1, x.rank) if x.size(i) is not None]))
    inputs = []
    for t in _copies(draw, x):
        dims = list(t.dims)
        dims[k] = (dims[k][0], draw(st.integers(1, 5)))
        inputs.append(Tensor(t.name, dims))
    return Case(inputs, {"dim": dim_ref(draw, x, [k])})


def _stack(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "a")
    if draw(st.booleans()):
        dim: Any = Name("stacked")
    else:
        dim = draw(st.integers(-(x.rank + 1), x.rank))
    return Case(_copies(draw, x), {"dim": dim})


def _reduce(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "a")
    if draw(st.booleans()):
        return Case(_copies(draw, x))  # element-wise over several inputs
    keepdim = draw(st.booleans())
    args = {"dim": dim_ref(draw, x, range(0 if keepdim else 1, x.rank))}
    put(args, "keepdim", keepdim if keepdim else maybe(draw, False))
    return Case([x], args)


def _ints(draw: Draw, values: list[int], omit_default: int | None = None) -> Any:
    """One int when all are equal (or a list of them), else the list; None to leave it out."""
    st = _st()
    if omit_default is not None and all(v == omit_default for v in values) and draw(st.booleans()):
        return None
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values)


def _conv(nd: int):
    def strategy(draw: Draw, spec) -> Case:
        st = _st()
        groups = draw(st.integers(1, 3))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
        kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
        dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
        mode = draw(st.sampled_from(list(spec.param("padding_mode").choices)))
        form = draw(st.sampled_from(["int", "same", "valid"]))
        if form == "same":
            stride = [1] * nd
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            sides = [t - t // 2 for t in total]  # the larger side
            pads = [0] * nd
            padding: Any = "same"
        else:
            stride = [draw(st.integers(1, 3)) for _ in range(nd)]
            pads = [0] * nd if form == "valid" else [draw(st.integers(0, 2)) for _ in range(nd)]
            sides = pads
            padding = "valid" if form == "valid" else _ints(draw, pads, omit_default=0)
        sizes = []
        for k, d, p, side in zip(kernel, dilation, pads, sides):
            low = max(1, d * (k - 1) + 1 - 2 * p, side + 1 if mode != "zeros" else 1)
            sizes.append(draw(st.integers(low, max(low, 8))))
        labels = ["chan", "length"] if nd == 1 else ["chan", "height", "width"]
        x = sized_input(draw, "x", labels, sizes=[c_in, *sizes])
        args: dict[str, Any] = {"out_channels": c_out, "kernel_size": _ints(draw, kernel)}
        put(args, "stride", _ints(draw, stride, omit_default=1))
        put(args, "padding", padding)
        put(args, "dilation", _ints(draw, dilation, omit_default=1))
        put(args, "groups", maybe(draw, groups, groups == 1))
        put(args, "padding_mode", maybe(draw, mode, mode == "zeros"))
        handled = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
        return Case([x], _generic_args(draw, spec, x, args, skip=handled))

    return strategy


def _pool(kind: str):
    def strategy(draw: Draw, spec) -> Case:
        st = _st()
        kernel = [draw(st.integers(1, 3)) for _ in range(2)]
        stride = [draw(st.integers(1, 3)) for _ in range(2)]
        pads = [draw(st.integers(0, k // 2)) for k in kernel]
        dilation = [draw(st.integers(1, 2)) for _ in range(2)] if kind == "max" else [1, 1]
        sizes = []
        for k, d, p in zip(kernel, dilation, pads):
            low = max(1, d * (k - 1) + 1 - 2 * p)
            sizes.append(draw(st.integers(low, max(low, 7))))
        x = sized_input(draw, "x", ["chan", "height", "width"], sizes=[draw(st.integers(1, 3)), *sizes])
        args: dict[str, Any] = {"kernel_size": _ints(draw, kernel)}
        put(args, "stride", None if draw(st.booleans()) else _ints(draw, stride))
        put(args, "padding", _ints(draw, pads, omit_default=0))
        if kind == "max":
            put(args, "dilation", _ints(draw, dilation, omit_default=1))
        if kind == "avg":
            put(args, "divisor_override", maybe(draw, draw(st.integers(1, 3))))
        handled = ("kernel_size", "stride", "padding", "dilation", "divisor_override")
        return Case([x], _generic_args(draw, spec, x, args, skip=handled))

    return strategy


def _adaptive(draw: Draw, spec) -> Case:
    st = _st()
    x = sized_input(draw, "x", ["chan", "height", "width"], high=6)
    out = [draw(st.integers(1, 4)) for _ in range(2)]
    return Case([x], {"output_size": _ints(draw, out)})


def _flatten(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "x", min_rank=3, max_rank=5, unsized=False, high=4)
    start = draw(st.integers(1, x.rank - 1))
    end = draw(st.integers(start, x.rank - 1))
    args: dict[str, Any] = {}
    put(args, "start_dim", maybe(draw, dim_ref(draw, x, [start]), start == 1))
    put(args, "end_dim", maybe(draw, dim_ref(draw, x, [end]), end == x.rank - 1))
    return Case([x], args)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _reshape(draw: Draw, spec) -> Case:
    st = _st()
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
        f = draw(st.sampled_from(_divisors(remaining)))
        factors.append(f)
        remaining //= f
    factors.append(remaining)
    if draw(st.booleans()):
        factors[draw(st.integers(0, len(factors) - 1))] = -1
    shape = [Name("batch"), *([Name("token")] if token else []), *factors]
    return Case([x], {"shape": shape})


def _permute(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "x", min_rank=3, max_rank=4)
    order = [0, *draw(st.permutations(list(range(1, x.rank))))]
    return Case([x], {"dims": [dim_ref(draw, x, [k]) for k in order]})


def _transpose(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "x", min_rank=3, max_rank=4)
    a, b = draw(st.lists(st.integers(1, x.rank - 1), min_size=2, max_size=2, unique=True))
    return Case([x], {"dim0": dim_ref(draw, x, [a]), "dim1": dim_ref(draw, x, [b])})


def _batchnorm(nd: int):
    def strategy(draw: Draw, spec) -> Case:
        st = _st()
        if nd == 2:
            x = sized_input(draw, "x", ["chan", "height", "width"], high=4)
        else:
            x = sized_input(draw, "x", ["chan", "length"][: draw(st.integers(1, 2))], high=4)
            if x.rank == 3 and draw(st.booleans()):
                x.dims[2] = ("token", None)
        return Case([x], _generic_args(draw, spec, x, {}))

    return strategy


def _embedding(draw: Draw, spec) -> Case:
    st = _st()
    vocab = draw(st.integers(1, 20))
    dims: list[tuple[str | None, int | None]] = [("batch", None)]
    dims.append(("token", None) if draw(st.booleans()) else (draw(st.sampled_from(["token", None])),
                                                              draw(st.integers(1, 5))))
    if draw(st.booleans()):
        dims.append((None, draw(st.integers(1, 3))))
    ids = Tensor("ids", dims, draw(st.sampled_from(["int64", "int32"])))
    args: dict[str, Any] = {"num_embeddings": vocab, "embedding_dim": draw(st.integers(1, 8))}
    put(args, "padding_idx", maybe(draw, draw(st.integers(-vocab, vocab - 1))))
    return Case([ids], args)


def _attention(draw: Draw, spec) -> Case:
    st = _st()
    heads = draw(st.integers(1, 3))
    width = heads * draw(st.integers(1, 3))
    causal = draw(st.booleans())
    feature = (draw(st.sampled_from(["feature", None])), width)
    query = ("token", None) if draw(st.booleans()) else ("token", draw(st.integers(1, 4)))
    if causal or draw(st.booleans()):
        key = query
    else:
        key = ("src", None) if draw(st.booleans()) else ("src", draw(st.integers(1, 4)))
    masked = draw(st.booleans())
    mask = Tensor("mask", [("batch", None), key], "bool")
    if key == query and draw(st.booleans()):  # self-attention: one tensor as q, k and v
        x = Tensor("x", [("batch", None), query, feature])
        inputs, call = [x], ["x", "x", "x"]
    else:
        q = Tensor("q", [("batch", None), query, feature])
        k = Tensor("k", [("batch", None), key, feature])
        inputs, call = [q, k, k.renamed("v")], ["q", "k", "v"]
    if masked:
        inputs.append(mask)
        call.append("mask")
    args: dict[str, Any] = {"num_heads": heads}
    put(args, "causal", maybe(draw, causal, not causal))
    args = _generic_args(draw, spec, inputs[0], args, skip=("causal",))
    return _discarding(draw, Case(inputs, args, call=call, outputs=len(spec.outputs)))


def _discarding(draw: Draw, case: Case) -> Case:
    """Write some outputs of a multi-output op as `_` (never all of them)."""
    st = _st()
    if case.outputs > 1:
        keep = draw(st.integers(0, case.outputs - 1))
        case.discard = tuple(i for i in range(case.outputs) if i != keep and draw(st.booleans()))
    return case


def _chained(draw: Draw, case: Case) -> Case:
    """A single-input multi-output op: destructured, or inside a chain (its first output)."""
    if case.outputs > 1 and draw(_st().booleans()):
        case.chain = True
        return case
    return _discarding(draw, case)


def _recurrent(draw: Draw, spec) -> Case:
    st = _st()
    token = ("token", None) if draw(st.booleans()) else ("token", draw(st.integers(1, 4)))
    feature = (draw(st.sampled_from(["feature", None])), draw(st.integers(1, 4)))
    x = Tensor("x", [("batch", None), token, feature])
    args: dict[str, Any] = {"hidden_size": draw(st.integers(1, 4))}
    layers = draw(st.integers(1, 3))
    put(args, "num_layers", maybe(draw, layers, layers == 1))
    if layers == 1:  # dropout acts between stacked layers; with one layer only 0 is allowed
        put(args, "dropout", maybe(draw, 0.0))
    skip = ("num_layers", "dropout") if layers == 1 else ("num_layers",)
    args = _generic_args(draw, spec, x, args, skip=skip)
    return _chained(draw, Case([x], args, outputs=len(spec.outputs)))


def _split(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "x", high=8)
    k = draw(st.sampled_from([i for i in range(1, x.rank) if x.size(i) is not None]))
    size = x.size(k)
    assert size is not None
    if draw(st.booleans()):
        sections: Any = draw(st.sampled_from(_divisors(size)))
    else:  # piece sizes that add up to the dimension
        cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=min(3, size - 1)))) if size > 1 else []
        bounds = [0, *cuts, size]
        sections = [b - a for a, b in zip(bounds, bounds[1:])]
    args: dict[str, Any] = {"sections": sections}
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    return _chained(draw, Case([x], args, outputs=_outputs(spec, args)))


def _chunk(draw: Draw, spec) -> Case:
    st = _st()
    x = float_input(draw, "x", high=8)
    k = draw(st.sampled_from([i for i in range(1, x.rank) if x.size(i) is not None]))
    size = x.size(k)
    assert size is not None
    args: dict[str, Any] = {"chunks": draw(st.sampled_from([d for d in _divisors(size) if d <= 4]))}
    put(args, "dim", maybe(draw, dim_ref(draw, x, [k]), k == x.rank - 1))
    return _chained(draw, Case([x], args, outputs=_outputs(spec, args)))


# Ops whose valid values the generic drawing does not know. One entry per op; a new op without an
# entry is drawn generically, from its parameters' types.
STRATEGIES: dict[str, Callable[[Draw, Any], Case]] = {
    "cat": _cat,
    "stack": _stack,
    "mean": _reduce,
    "max": _reduce,
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "maxpool2d": _pool("max"),
    "avgpool2d": _pool("avg"),
    "adaptive_avgpool2d": _adaptive,
    "flatten": _flatten,
    "reshape": _reshape,
    "permute": _permute,
    "transpose": _transpose,
    "batchnorm1d": _batchnorm(1),
    "batchnorm2d": _batchnorm(2),
    "embedding": _embedding,
    "attention": _attention,
    "lstm": _recurrent,
    "gru": _recurrent,
    "split": _split,
    "chunk": _chunk,
}


def _finish(draw: Draw, spec, case: Case) -> Case:
    """Draw keyword spellings (aliases) and which scalars become model parameters."""
    st = _st()
    for name, value in case.args.items():
        p = spec.param(name)
        if p.aliases:
            case.spell[name] = draw(st.sampled_from([p.name, *p.aliases]))
        scalar = type(value) in _PY_TYPES and not isinstance(value, Name)
        hoistable = scalar and p.type in ("int", "float", "bool", "str") and name != spec.outputs_from
        if hoistable and draw(st.booleans()):
            case.hoist.add(name)
    case.hoist_sizes = draw(st.booleans())
    return case


def draw_case(draw: Draw, spec) -> Case:
    return _finish(draw, spec, STRATEGIES.get(spec.name, generic)(draw, spec))


# ------------------------------------------------------------------------------ running


def check_case(spec, case: Case, compile: bool = False) -> list[str]:
    """Compile one case and compare it with PyTorch; the differences (empty when none).

    With `compile`, the plain module must also run under `torch.compile(fullgraph=True,
    backend="eager")` (TorchDynamo's capture with no code generation: a graph break or an
    unsupported construct in the emitted forward fails) and give the outputs' shapes again.
    """
    from tgc.compiler.diagnostics import CompileError
    from tgc.compiler.emit import emit
    from tgc.compiler.pipeline import front_end
    from tgc.compiler.shapes import check

    from .verify import class_names, expected_shape, dim_sizes, load_source, run_model, verify

    path = f"autotest_{spec.name}.tg"
    while True:
        text = render(spec, case)
        try:
            result = front_end(path, text=text)
            errors = [d for d in result.diagnostics if d.is_error]
            if errors or result.program is None:
                return [f"the front end rejects it: {_diags(errors)}"]
            try:
                checked, _ = check(result.program)
                break
            except CompileError as exc:
                errors = [d for d in exc.diagnostics if d.is_error]
                if _literal_only(spec, case, errors):
                    continue  # retry with those arguments written as literals
                return [f"the checker rejects it: {_diags(errors)}"]
        except Exception as exc:
            return [f"internal error in the compiler: {type(exc).__name__}: {exc}"]
    try:
        messages = verify(checked, path)
        source = emit(checked, path)
    except Exception as exc:
        return [f"internal error in emission or verification: {type(exc).__name__}: {exc}"]
    # the plain (unprobed) emission must trace too, with outputs of the checked shapes
    namespace, error = load_source(source, path, "plain")
    if error is not None:
        return [*messages, f"plain emission: {error}"]
    for shapes, cls in zip(checked.models, class_names(checked)):
        run = run_model(namespace, cls, shapes)
        if run.error is not None:
            messages.append(f"plain emission: {run.error}")
            continue
        outs = run.outputs if isinstance(run.outputs, tuple) else (run.outputs,)
        sizes = dim_sizes(shapes)
        for value, real in zip(shapes.graph.outputs, outs):
            want = expected_shape(shapes.types[value], sizes)
            got = list(getattr(real, "shape", []))
            if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
                show = "[" + ", ".join("?" if w is None else str(w) for w in want) + "]"
                messages.append(f"plain emission: output `{value}`: checker says {show}, torch gives {got}")
            dtype = str(getattr(real, "dtype", "?")).replace("torch.", "")
            if dtype != shapes.types[value].dtype:
                messages.append(f"plain emission: output `{value}`: checker says "
                                f"{shapes.types[value].dtype}, torch gives {dtype}")
        if len(outs) != len(shapes.graph.outputs):
            messages.append(f"plain emission: forward returns {len(outs)} values, "
                            f"the model has {len(shapes.graph.outputs)} outputs")
        if compile and not messages:
            messages.extend(compile_check(run.module, run.inputs, outs))
    return messages


def compile_check(module, inputs, expected) -> list[str]:
    """`module` under `torch.compile(fullgraph=True, backend="eager")`: [] when it captures whole
    and gives outputs of the shapes of `expected` (the eager outputs)."""
    import torch

    torch._dynamo.reset()  # every example is a new class: keep dynamo's caches small
    try:
        # Dynamo refuses nn.LSTM/nn.GRU unless its `allow_rnn` flag is set (off by default: a
        # model with lstm compiles with a graph break there, and fails only with fullgraph=True).
        # The check is about the code tgc emits around such modules, so the flag is set here.
        with torch._dynamo.config.patch(allow_rnn=True):
            compiled = torch.compile(module, fullgraph=True, backend="eager")
            with torch.no_grad():
                got = compiled(*inputs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return [f"torch.compile(fullgraph=True, backend=\"eager\") fails: {type(exc).__name__}: {first}"]
    finally:
        torch._dynamo.reset()
    got = got if isinstance(got, tuple) else (got,)
    shapes = [list(getattr(t, "shape", [])) for t in got]
    want = [list(getattr(t, "shape", [])) for t in expected]
    if shapes != want:
        return [f"torch.compile: outputs have shapes {shapes}, eager gives {want}"]
    return []


def _literal_only(spec, case: Case, errors) -> bool:
    """An op may refuse a model parameter where it needs a literal (E056, "not supported"): the
    arguments such errors name stop being parameters. False when nothing is left to change."""
    unsupported = [d.message for d in errors if d.code == "E056"]
    if not unsupported or len(unsupported) != len(errors) or not (case.hoist or case.hoist_sizes):
        return False
    named = {n for n in case.hoist for m in unsupported
             if any(f"`{w}`" in m for w in (f"p_{n}", n, case.spell.get(n, n)))}
    if named:
        case.hoist -= named
    else:
        case.hoist.clear()
        case.hoist_sizes = False
    return True


def _diags(diags) -> str:
    return "; ".join(f"{d.code} line {d.span.line}: {d.message}" for d in diags)


def autotest_op(name: str, max_examples: int = 10, compile_examples: int = 0) -> list[str]:
    """Failures of op `name` over `max_examples` random valid programs; [] when it passes.

    The first `compile_examples` examples are also run under `torch.compile` (`check_case`).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    from tgc.compiler.ops.registry import lookup

    spec = lookup(name)
    if spec is None:
        return [f"`{name}` is not a registered op"]
    if spec.shape is None or spec.emit is None:
        parts = (("shape rule", spec.shape), ("emission", spec.emit))
        missing = " and ".join(what for what, f in parts if f is None)
        return [f"`{name}` has no {missing} yet"]

    failures: list[str] = []
    failing = 0
    seen: dict[str, set[str]] = {p.name: set() for p in spec.params}
    examples = 0

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate),
              verbosity=Verbosity.quiet)
    @given(st.data())
    def run(data) -> None:
        nonlocal examples, failing
        examples += 1
        try:
            case = draw_case(data.draw, spec)
        except Exception as exc:
            failures.append(f"example {examples}: the strategy fails: {type(exc).__name__}: {exc}")
            failing += 1
            return
        for p in spec.params:
            value = case.args.get(p.name, None if p.required else p.default)
            seen[p.name].add(repr(value))
        messages = check_case(spec, case, compile=examples <= compile_examples)
        if messages:
            failing += 1
            if failing <= MAX_REPORTED:
                program = "\n".join("    " + line for line in render(spec, case).splitlines())
                failures.append(f"{name} example {examples}:\n" + "\n".join("  " + m for m in messages)
                                + "\n  program:\n" + program)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run()
        except Exception as exc:  # hypothesis itself gave up; the examples so far still count
            failures.append(f"{name}: hypothesis stopped: {type(exc).__name__}: {exc}")
    if failing > MAX_REPORTED:
        failures.append(f"{name}: {failing - MAX_REPORTED} more failing examples of {examples}")
    for p in spec.params:
        if examples >= MIN_VARIED and len(seen[p.name]) < 2:
            failures.append(f"{name}: hyper-parameter `{p.name}` took only {sorted(seen[p.name])} in "
                            f"{examples} examples; its strategy must draw at least two values")
    return failures


def autotest_all(max_examples: int = 10) -> dict[str, list[str]]:
    """`autotest_op` for every registered op, by name."""
    from tgc.compiler.ops.registry import all_ops

    return {name: autotest_op(name, max_examples) for name in all_ops()}
