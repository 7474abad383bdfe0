"""The `recurrent` family: LSTM and GRU layers over a [batch, token, feature] sequence."""

from __future__ import annotations

from .registry import HyperParam, OpSpec, register


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
            depends="has an effect only when num_layers > 1",
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


register(
    OpSpec(
        name="lstm",
        doc="Long short-term memory over a sequence; gives the output sequence and the final hidden and cell states.",
        family="recurrent",
        torch_module="torch.nn.LSTM",
        outputs=("seq", "h_n", "c_n"),
        params=_rnn_params(),
        inferred=("input_size",),
        omitted={
            **_omitted(),
            "proj_size": "projected LSTMs are not supported (h_n would differ in width from c_n)",
        },
        example="seq, h_n, c_n = lstm(x, hidden=64)",
        has_weights=True,
    )
)

register(
    OpSpec(
        name="gru",
        doc="Gated recurrent unit over a sequence; gives the output sequence and the final hidden state.",
        family="recurrent",
        torch_module="torch.nn.GRU",
        outputs=("seq", "h_n"),
        params=_rnn_params(),
        inferred=("input_size",),
        omitted=_omitted(),
        example="seq, h_n = gru(x, hidden=64, layers=2)",
        has_weights=True,
    )
)
