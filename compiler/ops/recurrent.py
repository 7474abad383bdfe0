"""The `recurrent` family: LSTM and GRU layers over a [batch, token, feature] sequence.

Both are built by one factory, `recurrent_op(kind)`, from a small table of per-kind facts
(`_KINDS`: the class, the number of gates, the final states and how the call's result unpacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from ..tensor_types import Dim
from .context import ShapeCtx
from .drawing import Case, Draw, Tensor, chained, generic_args, maybe, put, strategies
from .registry import Emission, HyperParam, OpSpec, register


def _rnn_params() -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "hidden_size",
            "int",
            doc="Width of the hidden state (per direction).",
            aliases=("hidden",),
        ),
        HyperParam(
            "num_layers",
            "int",
            default=1,
            doc="Number of stacked recurrent layers.",
            aliases=("layers",),
        ),
        HyperParam("bias", "bool", default=True, doc="Whether the gates learn biases."),
        HyperParam(
            "dropout",
            "float",
            default=0.0,
            doc="Dropout probability on the outputs of every layer but the last (training only).",
            depends=(
                "acts only between layers: a non-zero dropout with a literal num_layers=1 is an error "
                "(E055) rather than torch's run-time warning"
            ),
        ),
        HyperParam(
            "bidirectional",
            "bool",
            default=False,
            doc="Run a second layer backwards; the sequence output's width doubles.",
        ),
    )


def _omitted() -> dict[str, str]:
    return {
        "input_size": "inferred from the input's last dimension",
        "batch_first": "always True in emitted code (tg tensors are batch-first)",
        "device": "the emitted module is moved as a whole (`.to(device)`), not per layer",
        "dtype": "the emitted module is converted as a whole (`.to(dtype)`), not per layer",
    }


@dataclass(frozen=True)
class _Kind:
    """What tells one recurrent layer from the other."""

    name: str
    cls: str  # the torch class in `nn`, `LSTM`
    gates: int  # weight blocks per layer: 4 for an LSTM (i, f, g, o), 3 for a GRU (r, z, n)
    outputs: tuple[str, ...]  # the sequence, then the final states
    unpack: str  # how the module's result unpacks into the outputs
    doc: str
    omitted: dict[str, str]
    example: str
    shape_doc: str


_KINDS = {
    "lstm": _Kind(
        name="lstm",
        cls="LSTM",
        gates=4,
        outputs=("seq", "h_n", "c_n"),
        unpack="{}, ({}, {})",
        doc="Long short-term memory over a sequence; gives the output sequence and the final hidden and cell states.",
        omitted={
            **_omitted(),
            "proj_size": "projected LSTMs are not supported (h_n would differ in width from c_n)",
        },
        example="seq, h_n, c_n = lstm(x, hidden=64)",
        shape_doc=(
            "[batch, token, feature] -> seq [batch, token, feature=hidden_size * directions], "
            "h_n and c_n [layer=num_layers * directions, batch, feature=hidden_size]"
        ),
    ),
    "gru": _Kind(
        name="gru",
        cls="GRU",
        gates=3,
        outputs=("seq", "h_n"),
        unpack="{}, {}",
        doc="Gated recurrent unit over a sequence; gives the output sequence and the final hidden state.",
        omitted=_omitted(),
        example="seq, h_n = gru(x, hidden=64, layers=2)",
        shape_doc=(
            "[batch, token, feature] -> seq [batch, token, feature=hidden_size * directions], "
            "h_n [layer=num_layers * directions, batch, feature=hidden_size]"
        ),
    ),
}


# ------------------------------------------------------------------------------ shapes and emission
#
# Outputs: seq [batch, token, feature=hidden * directions] and the final states h_n (and c_n)
MAX_LAYERS = 10_000  # stacked layers of one lstm/gru, as many as the steps of one `repeat` (E057)

# [layer=num_layers * directions, batch, feature=hidden], as torch gives them with batch_first.
# torch only warns about dropout with one layer; here it is an error when num_layers is a literal
# (the dropout can never act), and left to torch's warning when num_layers is a parameter that a
# caller may raise.


def _shape(kind: _Kind, ctx: ShapeCtx):
    (x,) = ctx.in_types
    if x.rank != 3:
        ctx.error(f"`{ctx.input_names[0]}` has {x.rank} dimension{'s' if x.rank != 1 else ''} "
                  f"{x.show()}, but 3 are needed", f"{kind.name} takes a [batch, token, feature] sequence",
                  code="E051")
    ctx.expect_float(x)
    feature = x.dims[-1]
    if feature.size is None:
        ctx.error(f"the last dimension `{feature.name}` of `{ctx.input_names[0]}` has no size",
                  "give the input a size: `[batch, token, feature=32]`", code="E051")
    hidden, layers = ctx.arg("hidden_size"), ctx.arg("num_layers")
    for name, value in (("hidden_size", hidden), ("num_layers", layers)):
        if value.value < 1:
            ctx.error(f"`{name}` must be positive, not {value.value}")
    if layers.value > MAX_LAYERS:
        ctx.error(f"`num_layers` is {layers.value}; tgc builds at most {MAX_LAYERS} stacked layers",
                  "torch makes each layer's weights in a Python loop (as many as a `repeat`'s steps)",
                  code="E057")
    p = ctx.arg("dropout")
    if not 0 <= p.value <= 1:
        ctx.error(f"`dropout` must be between 0 and 1, not {p.value}")
    if p.value > 0 and layers.is_const and layers.value == 1:
        ctx.error(f"`dropout={p.render()}` has no effect with one layer: it acts between stacked layers",
                  "remove it, or stack layers with `num_layers=2` (or more)")
    directions = _directions(ctx)
    seq = x.replace_dim(-1, Dim(feature.name, hidden * directions))
    state = x.with_dims((Dim("layer", layers * directions), x.dims[0], Dim(feature.name, hidden)))
    return [seq] + [state] * (len(kind.outputs) - 1)


def _directions(ctx: ShapeCtx):
    bi = ctx.arg("bidirectional")
    if bi.is_const:
        return 2 if bi.value else 1
    return bi + 1  # a bool parameter: `bidirectional + 1` directions


def _emit(kind: _Kind, ctx) -> Emission:
    x = ctx.in_types[0]
    extra = ""
    for name in ("num_layers", "bias", "dropout", "bidirectional"):
        value = ctx.arg(name)
        if not value.is_const or value.value != ctx.spec.param(name).default:
            extra += f", {name}={ctx.r(value)}"
    module = f"nn.{kind.cls}({ctx.r(ctx.size(x, -1))}, {ctx.r(ctx.arg('hidden_size'))}, batch_first=True{extra})"
    return Emission(call=f"{ctx.m}({ctx.exprs[0]})", module=module, unpack=kind.unpack, first="[0]")


def _layer_sizes(ctx) -> tuple[int, list[tuple[int, int]]]:
    """(directions, [(an input width, the number of layers taking it)]): the first layer takes
    the input's width, the others the output of the one before (counted, not listed)."""
    hidden, layers = ctx.value("hidden_size"), ctx.value("num_layers")
    directions = 2 if ctx.value("bidirectional") else 1
    return directions, [(ctx.size(ctx.in_types[0]), 1), (hidden * directions, layers - 1)]


def _params(kind: _Kind, ctx) -> int:
    gates = kind.gates
    directions, widths = _layer_sizes(ctx)
    hidden = ctx.value("hidden_size")
    biases = 2 * gates * hidden if ctx.value("bias") else 0  # bias_ih and bias_hh
    return directions * sum(n * (gates * hidden * (w + hidden) + biases) for w, n in widths)


def _macs(kind: _Kind, ctx) -> int:
    gates = kind.gates
    directions, widths = _layer_sizes(ctx)
    hidden = ctx.value("hidden_size")
    steps = ctx.size(ctx.in_types[0], 1)
    return steps * directions * sum(n * gates * hidden * (w + hidden) for w, n in widths)


# ------------------------------------------------------------------------------ autotest


def _strategy(draw: Draw, spec) -> Case:
    st = strategies()
    token = ("token", None) if draw(st.booleans()) else ("token", draw(st.integers(1, 4)))
    feature = (draw(st.sampled_from(["feature", None])), draw(st.integers(1, 4)))
    x = Tensor("x", [("batch", None), token, feature])
    args: dict[str, Any] = {"hidden_size": draw(st.integers(1, 4))}
    layers = draw(st.integers(1, 3))
    put(args, "num_layers", maybe(draw, layers, layers == 1))
    if layers == 1:  # dropout acts between stacked layers; with one layer only 0 is allowed
        put(args, "dropout", maybe(draw, 0.0))
    skip = ("num_layers", "dropout") if layers == 1 else ("num_layers",)
    args = generic_args(draw, spec, x, args, skip=skip)
    return chained(draw, Case([x], args, outputs=len(spec.outputs)))


# ------------------------------------------------------------------------------ the family


def recurrent_op(kind: str) -> OpSpec:
    """The recurrent layer `kind` ("lstm" or "gru", `nn.LSTM`/`nn.GRU`, always batch-first)."""
    facts = _KINDS[kind]
    return OpSpec(
        name=facts.name,
        doc=facts.doc,
        family="recurrent",
        torch_module=f"torch.nn.{facts.cls}",
        outputs=facts.outputs,
        params=_rnn_params(),
        inferred=("input_size",),
        omitted=dict(facts.omitted),
        example=facts.example,
        has_weights=True,
        shape_doc=facts.shape_doc,
        shape=partial(_shape, facts),
        emit=partial(_emit, facts),
        params_count=partial(_params, facts),
        macs=partial(_macs, facts),
        autotest=_strategy,
    )


for _kind in _KINDS:
    register(recurrent_op(_kind))
