"""End-to-end tests of the sequence families' shape rules and emission: attention, lstm/gru,
split/chunk.

Each program is compiled in-process (front end, shapes, emission), the emitted source is
executed, the module is instantiated (constructor arguments without default get the
placeholder width) and run on zero tensors built from the checked input types (batch 2, every
unsized dimension a size of its own, the same for the same name); the real output shapes must
equal the checker's. The module must also trace with torch.fx.symbolic_trace and compile with
torch.compile(fullgraph=True, backend="eager").
"""

from __future__ import annotations

import pytest

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import torch.fx  # noqa: E402

from tgc.compiler.diagnostics import CompileError  # noqa: E402
from tgc.compiler.emit import emit  # noqa: E402
from tgc.compiler.pipeline import front_end  # noqa: E402
from tgc.compiler.shapes import PLACEHOLDER_WIDTH, check  # noqa: E402

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
    "bool": torch.bool,
}
# sizes of dimensions without one, by name (the batch is 2)
FREE_SIZES = {"batch": 2, "token": 6, "src": 9}


def compile_tg(text: str, params=(), inputs=()):
    result = front_end("m.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    checked, warnings = check(result.program, params, inputs)
    source = emit(checked, "m.tg")
    return checked, warnings, source


def compile_error(text: str):
    result = front_end("m.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    with pytest.raises(CompileError) as info:
        check(result.program)
    return [d for d in info.value.diagnostics if d.is_error]


def _size(dim, index, free):
    if dim.size is not None:
        return dim.size.value
    if index == 0:
        return FREE_SIZES["batch"]
    key = dim.name or f"#{index}"
    if key not in free:
        free[key] = FREE_SIZES.get(key, 5 + len(free))
    return free[key]


def run(text: str, params=(), inputs=(), compile_fullgraph: bool = True, rnn: bool = False):
    """Compile, execute, run, trace and compile a program; returns (source, outputs)."""
    checked, _, source = compile_tg(text, params, inputs)
    shapes = checked.models[0]
    namespace: dict = {}
    exec(compile(source, "m.py", "exec"), namespace)
    cls = namespace[shapes.graph.name]
    kwargs = {w: PLACEHOLDER_WIDTH for w in shapes.required}
    kwargs.update(params)
    model = cls(**kwargs).eval()
    free: dict = {}
    args = []
    for inp in shapes.graph.inputs:
        t = shapes.types[inp.name]
        sizes = [_size(d, i, free) for i, d in enumerate(t.dims)]
        args.append(torch.zeros(*sizes, dtype=DTYPES[t.dtype]))
    with torch.no_grad():
        outs = model(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert len(outs) == len(shapes.graph.outputs)
    for name, out in zip(shapes.graph.outputs, outs):
        t = shapes.types[name]
        want = tuple(_size(d, i, free) for i, d in enumerate(t.dims))
        assert tuple(out.shape) == want, f"{name}: torch {tuple(out.shape)}, checker {t.show()}"
        assert out.dtype == DTYPES[t.dtype], name

    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        again = traced(*args)
    again = again if isinstance(again, tuple) else (again,)
    for a, b in zip(outs, again):
        assert torch.equal(a, b)

    if compile_fullgraph:
        torch._dynamo.reset()
        saved = torch._dynamo.config.allow_rnn
        torch._dynamo.config.allow_rnn = rnn or saved
        try:
            compiled = torch.compile(model, fullgraph=True, backend="eager")
            with torch.no_grad():
                third = compiled(*args)
        finally:
            torch._dynamo.config.allow_rnn = saved
        third = third if isinstance(third, tuple) else (third,)
        for a, b in zip(outs, third):
            assert torch.equal(a, b)
    return source, outs


def _flat(source: str) -> str:
    """The source without whitespace (black may break a long call over lines)."""
    return "".join(source.split())


def shape_of(text: str, value: str, params=()) -> str:
    checked, _, _ = compile_tg(text, params)
    return checked.models[0].types[value].show()


# ------------------------------------------------------------------------------ attention

CROSS = """
model Cross(d: int = 32, h: int = 4) {
    input x: [batch, token=10, feature=d]
    input y: [batch, src=7, feature=d]
    input z: [batch, src=7, feature=d]
    q = x >> linear(d)
    k = y >> linear(d) >> relu
    v = z >> linear(d)
    out, weights = attention(q, k, v, heads=h, dropout=0.1)
    output out, weights
}
"""


def test_attention_three_branches():
    source, outs = run(CROSS)
    assert "nn.MultiheadAttention(d,h,dropout=0.1,batch_first=True)" in _flat(source)
    assert "out, weights = self.out(q, k, v)" in source
    assert "assert(d%h==0)" in _flat(source)
    assert shape_of(CROSS, "weights") == "[batch, token=10, src=7]"
    assert shape_of(CROSS, "out") == "[batch, token=10, feature=d]"


CAUSAL = """
model Causal(d: int = 32) {
    input x: [batch, token, feature=d]
    input pad: bool[batch, token]
    h = x >> linear(d)
    out, w = attention(h, h, h, pad, heads=4, causal=true, average_weights=false)
    y = x >> linear(d) >> attention(h, h, heads=2, causal=true) >> linear(d)
    output out, w, y
}
"""


def test_causal_self_attention_with_padding_mask():
    source, outs = run(CAUSAL)
    assert "key_padding_mask=pad" in source
    assert "attn_mask=h.new_ones(h.size(1),h.size(1),dtype=torch.bool).triu(1)" in _flat(source)
    assert "average_attn_weights=False" in source
    assert shape_of(CAUSAL, "w") == "[batch, head=4, token, token]"
    # the ops with weights of one statement are one nn.Sequential, named after it
    assert "self.y = nn.Sequential(" in source and _flat(source).count("nn.Linear(d,d)") == 3


def test_causal_mask_masks_future_keys():
    checked, _, source = compile_tg(
        "input x: [batch, token=4, feature=8]\nout, w = attention(x, x, x, heads=2, causal=true)\n")
    ns: dict = {}
    exec(source, ns)
    model = ns["Model"]().eval()
    with torch.no_grad():
        _, w = model(torch.randn(2, 4, 8))
    assert torch.all(w.triu(1) == 0) and torch.allclose(w.sum(-1), torch.ones(2, 4))


def test_padding_mask_true_ignores_the_key():
    _, _, source = compile_tg(
        "input x: [batch, token=4, feature=8]\ninput pad: bool[batch, token=4]\n"
        "out, w = attention(x, x, x, pad, heads=2)\n")
    ns: dict = {}
    exec(source, ns)
    model = ns["Model"]().eval()
    pad = torch.tensor([[False, False, False, True]] * 2)
    with torch.no_grad():
        _, w = model(torch.randn(2, 4, 8), pad)
    assert torch.all(w[..., 3] == 0) and torch.all(w[..., :3] > 0)


@pytest.mark.parametrize("text, code, fragment", [
    ("input q: [batch, token, feature=32]\ninput k: [batch, token, feature=16]\n"
     "out, w = attention(q, k, k, heads=4)\n", "E050", "dimension `feature` is 32 in `q` but 16 in `k`"),
    ("input q: [batch, token, feature=32]\ninput k: [batch, src=5, feature=32]\n"
     "input v: [batch, src=6, feature=32]\nout, w = attention(q, k, v, heads=4)\n",
     "E050", "dimension `src` is 5 in `k` but 6 in `v`"),
    ("model M(d: int = 30) {\n    input x: [batch, token, feature=d]\n"
     "    out, w = attention(x, x, x, heads=4)\n}\n", "E053", "must be divisible by `num_heads`"),
    ("input x: [batch, token=5, feature=32]\ninput m: [batch, token=5]\n"
     "out, w = attention(x, x, x, m, heads=4)\n", "E054", "a bool tensor is needed"),
    ("input x: [batch, token=5, feature=32]\ninput m: bool[batch, token=6]\n"
     "out, w = attention(x, x, x, m, heads=4)\n", "E050", "dimension `token` is 5 in `x` but 6 in `m`"),
    ("input q: [batch, token=5, feature=32]\ninput k: [batch, src=7, feature=32]\n"
     "out, w = attention(q, k, k, heads=4, causal=true)\n", "E053", "needs as many queries as keys"),
    ("input q: [batch, feature=32]\nout, w = attention(q, q, q, heads=4)\n", "E051", "3 are needed"),
    ("input q: long[batch, token, feature=32]\nout, w = attention(q, q, q, heads=4)\n",
     "E054", "floating-point"),
])
def test_attention_errors(text, code, fragment):
    errors = compile_error(text)
    assert [e.code for e in errors] == [code], [e.message for e in errors]
    assert fragment in errors[0].message, errors[0].message


def test_attention_divisibility_is_asserted_for_other_values():
    text = "model M(d: int = 32, h: int = 4) {\n    input x: [batch, token, feature=d]\n" \
           "    out, w = attention(x, x, x, heads=h)\n}\n"
    _, _, source = compile_tg(text)
    ns: dict = {}
    exec(source, ns)
    with pytest.raises(AssertionError, match="divisible"):
        ns["M"](d=30)


# ------------------------------------------------------------------------------ recurrent

RNN = """
model R(hid: int = 24) {
    input x: [batch, token=5, feature=8]
    seq, h_n, c_n = lstm(x, hidden=hid, layers=2, dropout=0.1)
    y = x >> lstm(16) >> linear(4)
    s2, g = gru(x, hidden=hid, bidirectional=true)
    z = x >> gru(12, bidirectional=true, layers=3) >> relu
    output seq, h_n, c_n, y, s2, g, z
}
"""


def test_lstm_and_gru():
    source, outs = run(RNN, rnn=True)
    assert "seq, (h_n, c_n) = self.seq(x)" in source
    assert "nn.LSTM(8,hid,batch_first=True,num_layers=2,dropout=0.1)" in _flat(source)
    assert "self.y[0](x)[0]" in source
    assert "s2, g = self.s2(x)" in source
    assert "nn.GRU(8,hid,batch_first=True,bidirectional=True)" in _flat(source)
    assert shape_of(RNN, "h_n") == "[layer=2, batch, feature=hid]"
    assert shape_of(RNN, "s2") == "[batch, token=5, feature=hid * 2]"
    assert shape_of(RNN, "g") == "[layer=2, batch, feature=hid]"
    assert shape_of(RNN, "z") == "[batch, token=5, feature=24]"


def test_bidirectional_parameter():
    text = "model B(bi: bool = true) {\n    input x: [batch, token, feature=8]\n" \
           "    seq, h = gru(x, hidden=6, bidirectional=bi)\n    y = seq >> linear(3)\n    output y, h\n}\n"
    source, _ = run(text, rnn=True)
    assert "nn.Linear(6 * (bi + 1), 3)" in source
    _, outs = run(text, params=[("bi", False)], rnn=True)
    assert tuple(outs[1].shape) == (1, 2, 6)


@pytest.mark.parametrize("text, code, fragment", [
    ("input x: [batch, feature=8]\nseq, h, c = lstm(x, hidden=4)\n", "E051", "3 are needed"),
    ("input x: [batch, token, feature]\nseq, h = gru(x, hidden=4)\n", "E051", "has no size"),
    ("input x: long[batch, token, feature=8]\nseq, h = gru(x, hidden=4)\n", "E054", "floating-point"),
    ("input x: [batch, token, feature=8]\nseq, h, c = lstm(x, hidden=4, dropout=0.2)\n",
     "E055", "no effect with one layer"),
    ("input x: [batch, token, feature=8]\nseq, h = gru(x, hidden=0)\n", "E055", "must be positive"),
])
def test_recurrent_errors(text, code, fragment):
    errors = compile_error(text)
    assert [e.code for e in errors] == [code], [e.message for e in errors]
    assert fragment in errors[0].message, errors[0].message


# ------------------------------------------------------------------------------ split and chunk

SPLIT = """
a, b = split(x, 2)
c, d, e = split(x, [4, 4, 8], dim=feature)
f = x >> split(4) >> relu
g, h2 = chunk(x, 2, dim=-1)
merge cat(a, b, c, d, e, f, g, h2, dim=feature)
"""


def test_split_and_chunk():
    source, outs = run(SPLIT)
    assert "c, d, e = torch.split(x, [4, 4, 8], dim=-1)" in source
    assert "g, h2 = torch.chunk(x, 2, dim=-1)" in source
    assert "assert(x_features%2==0)" in _flat(source)
    assert shape_of(SPLIT, "a") == "[batch, feature=x_features // 2]"
    assert shape_of(SPLIT, "e") == "[batch, feature=8]"


def test_split_constant_sizes_and_parameters():
    text = """
model S(a: int = 3, d: int = 10) {
    input x: [batch, token, feature=12]
    input y: [batch, token, feature=d]
    p, q = split(x, 2, dim=feature)
    r, s = split(y, [a, d - a])
    t = y >> split([a, d - a]) >> linear(4)
    u, v, w = chunk(x, 3, dim=token)
    output p, q, r, s, t
}
"""
    source, outs = run(text)
    assert "p, q = torch.split(x, 6, dim=-1)" in source
    assert "self.a = a" in source and "self.d = d" in source
    assert "torch.split(y, [self.a, self.d - self.a], dim=-1)" in source
    assert shape_of(text, "s") == "[batch, token, feature=d - a]"
    _, outs = run(text, params=[("a", 4)])
    assert tuple(outs[3].shape) == (2, 6, 6)


def test_split_one_piece_is_a_tensor():
    source, outs = run("input x: [batch, feature=8]\na = split(x, [8])\nb = chunk(x, 1)\nmerge add(a, b)\n")
    assert "a = torch.split(x, [8], dim=-1)[0]" in source


@pytest.mark.parametrize("text, code, fragment", [
    ("input x: [batch, feature=10]\na, b, c = split(x, 3)\n", "E053",
     "dimension `feature` of `x` (10) cannot be cut into 3 equal pieces"),
    ("input x: [batch, feature=10]\na, b = split(x, [4, 5])\n", "E053",
     "must add up to dimension `feature` of `x` (10)"),
    ("input x: [batch, feature=10]\na, b, c, d = chunk(x, 4)\n", "E053", "cannot be cut into 4 equal pieces"),
    ("input x: [batch, feature=10]\na, b = split(x, 2, dim=channel)\n", "E052",
     "no dimension named `channel`"),
    ("input x: [batch, feature=10]\na, b = split(x, 2, dim=0)\n", "E052", "batch"),
])
def test_split_errors(text, code, fragment):
    errors = compile_error(text)
    assert [e.code for e in errors] == [code], [e.message for e in errors]
    assert fragment in errors[0].message, errors[0].message


def test_split_assertion_for_other_widths():
    _, _, source = compile_tg("a, b = split(x, 2)\nmerge add(a, b)\n")
    ns: dict = {}
    exec(source, ns)
    with pytest.raises(AssertionError, match="equal pieces"):
        ns["Model"](x_features=15)


# ------------------------------------------------------------------------------ emission details


def test_verification_observes_bound_values_but_not_discarded_ones():
    """Verification reads `forward`'s locals by the naming pass's names; `_` is no value."""
    from tgc.compiler.naming import name_program
    from tgc.runtime.compile_time.verify import load_source, run_model

    text = "input x: [batch, token=5, feature=8]\ny = x >> lstm(8) >> linear(4)\n" \
           "a, _ = split(y, 2)\nmerge add(a, a)\n"
    result = front_end("m.tg", text=text)
    checked, _ = check(result.program)
    names = name_program(checked)
    namespace, error = load_source(emit(checked, "m.tg", names), "m.tg")
    assert error is None
    run = run_model(namespace, names.models[0].cls, checked.models[0], names.models[0])
    assert run.error is None
    assert tuple(run.observed["a"].shape) == (2, 5, 2)
    assert "_" not in run.observed and all(v in checked.models[0].types for v in run.observed)


def test_deep_chain_binds_multi_output_under_the_statement_name():
    _, _, source = compile_tg("input x: [batch, token=5, feature=8]\n"
                              "a = x >> linear >> relu >> linear >> lstm(8) >> linear\n")
    # at most one submodule call inside another: the chain is cut after the second linear
    assert "a = self.a[1](torch.relu(self.a[0](x)))" in source
    assert "a = self.a[3](self.a[2](a)[0])" in source  # the LSTM's first output, inside a chain
