"""LANGUAGE.md 13: arithmetic on values, chains as values, indexing, and their shapes against torch."""

from __future__ import annotations

import types

import pytest
import torch

from tgc.compiler import pipeline
from tgc.compiler.parse import parse


def _check(text: str):
    return pipeline.check("v.tg", pipeline.Options(), text=text)


def _errors(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in _check(text).diagnostics if d.is_error]


def _module(text: str, **params):
    """The emitted module of `text`'s model, constructed with `params`, and its source."""
    from tgc.compiler.emit import emit

    checked = _check(text)
    assert checked.ok, [d.message for d in checked.diagnostics]
    source = emit(checked.checked, "v.tg")
    mod = types.ModuleType("v_generated")
    exec(compile(source, "v_generated.py", "exec"), mod.__dict__)
    return getattr(mod, checked.checked.models[0].graph.name)(**params), source


def _types(text: str) -> dict[str, str]:
    shapes = _check(text).checked.models[0]
    return {n: t.show() for n, t in shapes.types.items()}


# ------------------------------------------------------------------------------ parsing


def test_arithmetic_binds_tighter_than_the_pipe():
    (stmt,) = parse("y = a + b >> relu\n", "p.tg").items
    first, second = stmt.value.elements
    assert type(first).__name__ == "ExprElement" and first.expr.op == "+"
    assert second.name == "relu"


def test_layer_is_a_keyword_only_where_it_starts_a_definition():
    program = parse("model M {\n    layer fc = linear(4)\n    y = h >> mean(dim=layer)\n    layer = y\n}\n", "p.tg")
    body = program.items[0].body
    assert [type(s).__name__ for s in body] == ["LayerDef", "Assign", "Assign"]


def test_a_parenthesised_chain_is_a_value_and_plain_parentheses_are_not():
    (stmt,) = parse("y = (x >> relu) * (2 + 1)\n", "p.tg").items
    expr = stmt.value.elements[0].expr
    assert type(expr.left).__name__ == "ChainExpr" and type(expr.right).__name__ == "BinOp"


# ------------------------------------------------------------------------------ arithmetic


ARITH = """
model M(d: int = 8, scale: float = 0.5) {
    input x: [batch, token, feature=d]
    input g: [batch, 1, feature=d]
    h = x + (x >> linear(d) >> relu)
    s = h * scale + 1 - -h
    y = (1 - g) * s / 2 + div(s, 4.0)
}
"""


def test_arithmetic_broadcasts_like_torch_and_reads_as_python():
    module, source = _module(ARITH, d=8, scale=0.25)
    assert "y = (1 - g) * s / 2 + s / 4.0" in source
    assert "s = h * self.scale + 1 - -h" in source
    x, g = torch.randn(3, 5, 8), torch.randn(3, 1, 8)
    y = module(x, g)
    h = x + torch.relu(module.h_linear(x))
    s = h * 0.25 + 1 - -h
    assert torch.allclose(y, (1 - g) * s / 2 + s / 4.0)
    assert _types(ARITH)["y"] == "[batch, token, feature=d]"


@pytest.mark.parametrize("left, right, shown", [
    ("[batch, token=4, feature=8]", "[batch, 1, feature=8]", "[batch, token=4, feature=8]"),
    ("[batch, token=4, feature=8]", "[batch, token=1, feature=1]", "[batch, token=4, feature=8]"),
    ("[batch, 1, feature=8]", "[batch, token=4, 1]", "[batch, token=4, feature=8]"),
    ("[batch, token, feature=8]", "[batch, 1, feature=8]", "[batch, token, feature=8]"),
])
def test_broadcast_shapes_equal_torch(left, right, shown):
    text = f"model M {{\n    input a: {left}\n    input b: {right}\n    y = a * b\n}}\n"
    assert _types(text)["y"] == shown
    module, _ = _module(text)

    def sample(decl):
        sizes = [3] + [int(p.split("=")[1]) if "=" in p else (1 if p.strip() == "1" else 5)
                       for p in decl.strip("[]").split(", ")[1:]]
        return torch.randn(*sizes)

    a, b = sample(left), sample(right)
    assert module(a, b).shape == torch.broadcast_shapes(a.shape, b.shape)


@pytest.mark.parametrize("left, right, message", [
    ("[batch, token=4, feature=8]", "[batch, channel=4, feature=8]", "meets dimension `channel`"),
    ("[batch, token=4, feature=8]", "[batch, feature=8]", "the batch of `b` meets"),
    ("[batch, token=4, feature=8]", "[batch, token=3, feature=8]", "4 in `a` but 3 in `b`"),
])
def test_broadcast_mismatch_names_both_dimensions(left, right, message):
    errors = _errors(f"model M {{\n    input a: {left}\n    input b: {right}\n    y = a + b\n}}\n")
    assert [c for c, _ in errors] == ["E050"] and message in errors[0][1], errors


def test_a_size_that_is_one_only_for_these_values_does_not_broadcast():
    errors = _errors("model M(k: int = 1) {\n    input a: [batch, token=4]\n    input b: [batch, token=k]\n"
                     "    y = a + b\n}\n")
    assert [c for c, _ in errors] == ["E056"]


@pytest.mark.parametrize("decl, expr, dtype", [
    ("long[batch, token=4]", "x + 1", "int64"),
    ("long[batch, token=4]", "x * 0.5", "float32"),
    ("long[batch, token=4]", "x / 2", "float32"),
    ("float16[batch, token=4]", "x * 2.5", "float16"),
    ("bool[batch, token=4]", "x + 1", "int64"),
])
def test_numbers_follow_torch_type_promotion(decl, expr, dtype):
    text = f"model M {{\n    input x: {decl}\n    y = {expr}\n}}\n"
    shapes = _check(text).checked.models[0]
    assert shapes.types["y"].dtype == dtype
    module, _ = _module(text)
    torch_dtype = {"long": torch.int64, "float16": torch.float16, "bool": torch.bool}[decl.split("[")[0]]
    x = torch.ones(2, 4, dtype=torch_dtype)
    assert module(x).dtype == getattr(torch, dtype)


def test_tensors_of_two_dtypes_promote():
    text = "model M {\n    input a: [batch, feature=4]\n    input b: float64[batch, feature=4]\n    y = a * b\n}\n"
    assert _check(text).checked.models[0].types["y"].dtype == "float64"


def test_floor_division_of_values_is_an_error():
    errors = _errors("model M {\n    input x: [batch, feature=4]\n    y = x // 2\n}\n")
    assert [c for c, _ in errors] == ["E019"] and "for sizes" in errors[0][1]


def test_arithmetic_ops_count_their_operands():
    assert [c for c, _ in _errors("model M {\n    input x: [batch, feature=4]\n    y = sub(x, x, x)\n}\n")] == ["E021"]
    assert [c for c, _ in _errors("model M {\n    input x: [batch, feature=4]\n    y = add(x)\n}\n")] == ["E021"]


def test_a_chain_is_a_call_argument():
    text = "model M {\n    input x: [batch, feature=4]\n    y = add(x, x >> relu) >> linear(3)\n}\n"
    module, source = _module(text)
    assert "x + torch.relu(x)" in source
    assert module(torch.randn(2, 4)).shape == (2, 3)


# ------------------------------------------------------------------------------ indexing

INDEX = """
model M(d: int = 8, n: int = 3) {
    input x: [batch, token, feature=d]
    input y: [batch, token=6, feature=d]
    last = x[token=-1]
    rest = x[token=1:]
    first = y[:, :n]
    mid = y[token=-4:-1, feature=2:]
    u = last >> unsqueeze(dim=1, name=token)
    s = u >> squeeze(dim=token)
    e = expand(u, like=x)
    output last, rest, first, mid, s, e
}
"""


def test_indexing_shapes_and_values_equal_torch():
    shown = _types(INDEX)
    assert shown["last"] == "[batch, feature=d]"
    assert shown["rest"] == "[batch, token=token - 1, feature=d]"
    assert shown["first"] == "[batch, token=n, feature=d]"
    assert shown["mid"] == "[batch, token=3, feature=d - 2]"
    assert shown["u"] == "[batch, token=1, feature=d]"
    assert shown["e"] == "[batch, token, feature=d]"
    for d, n, t in ((8, 3, 5), (4, 6, 2)):
        module, _ = _module(INDEX, d=d, n=n)
        x, y = torch.randn(2, t, d), torch.randn(2, 6, d)
        last, rest, first, mid, s, e = module(x, y)
        assert torch.equal(last, x[:, -1]) and torch.equal(rest, x[:, 1:])
        assert torch.equal(first, y[:, :n]) and torch.equal(mid, y[:, -4:-1, 2:])
        assert torch.equal(s, x[:, -1]) and e.shape == x.shape


def test_a_slice_bound_beyond_the_size_is_refused_by_the_module():
    module_type = None
    _, source = _module(INDEX)
    assert "6 >= n" in " ".join(source.split())
    with pytest.raises(AssertionError):
        module_type = _module(INDEX, n=7)
    assert module_type is None


@pytest.mark.parametrize("expr, code, message", [
    ("x[0, -1]", "E052", "never indexed"),
    ("x[token=5]", "E053", "must be less than the size 4"),
    ("x[token=3:1]", "E053", "empty"),
    ("x[height=1]", "E052", "no dimension named `height`"),
])
def test_index_errors(expr, code, message):
    errors = _errors(f"model M {{\n    input x: [batch, token=4, feature=8]\n    y = {expr}\n}}\n")
    assert errors and errors[0][0] == code and message in errors[0][1], errors


# ------------------------------------------------------------------------------ layers and tying

GPT = """
block decoder_layer(d: int, heads: int) (x) -> y {
    n = x >> layernorm
    a, _ = attention(n, n, n, heads=heads, causal=true)
    h = x + a
    y = h + (h >> layernorm >> linear(4 * d) >> gelu >> linear(d))
}
model GPT(vocab: int = 50, block_size: int = 16, d: int = 32, heads: int = 4, layers: int = 2) {
    input idx: long[batch, token]
    layer wte = embedding(vocab, d)
    pos = arange(idx, dim=token)
    e = (idx >> wte) + (pos >> embedding(block_size, d))
    h = e >> repeat(layers) { decoder_layer(d, heads) } >> layernorm
    logits = h >> linear(vocab, bias=false, tie=wte)
}
"""


def test_the_language_md_decoder_ties_its_output_to_its_embedding():
    module, source = _module(GPT)
    assert "self.logits.weight = self.wte.weight" in source
    assert module.logits.weight is module.wte.weight
    idx = torch.randint(0, 50, (2, 7))
    assert module(idx).shape == (2, 7, 50)
    # one weight, counted once by torch and by `tgc summary`
    from tgc.compiler.summary import summarize

    checked = _check(GPT).checked
    assert summarize(checked, checked.models[0]).total == sum(p.numel() for p in module.parameters())


def test_a_layer_applied_twice_shares_its_weights():
    text = ("model M {\n    input x: [batch, feature=8]\n    layer fc = linear(8)\n"
            "    a = x >> fc >> relu >> fc\n    b = a >> fc\n    output a, b\n}\n")
    module, source = _module(text)
    assert source.count("nn.Linear(8, 8)") == 1
    x = torch.randn(3, 8)
    a, b = module(x)
    torch.testing.assert_close(b, module.fc(a))
    torch.testing.assert_close(a, module.fc(torch.relu(module.fc(x))))


@pytest.mark.parametrize("body, code, message", [
    ("    layer fc = linear(8)\n    a = x >> fc\n    b = x >> linear(4) >> fc\n    output a, b\n", "E050",
     "layer `fc` is applied to [batch, feature=4] here, but to [batch, feature=8] on line 4"),
    ("    layer e = embedding(10, 8)\n    y = x >> linear(11, tie=e)\n", "E050", "must be applied before"),
    ("    y = x >> linear(11, tie=nothing)\n", "E010", "`tie` needs a layer"),
])
def test_layer_and_tie_errors(body, code, message):
    errors = _errors("model M {\n    input x: [batch, feature=8]\n" + body + "}\n")
    assert errors and errors[0][0] == code and message in errors[0][1], errors


def test_a_tie_of_another_shape_is_reported_at_the_tie_argument():
    text = GPT.replace("linear(vocab, bias=false, tie=wte)", "linear(vocab + 1, bias=false, tie=wte)")
    (d,) = [d for d in _check(text).diagnostics if d.is_error]
    assert d.code == "E050" and "[vocab + 1, d]" in d.message and d.span.column == text.splitlines()[-2].index("wte") + 1


# ------------------------------------------------------------------------------ repeat with context

ENCODER = """
block encoder_layer(d: int, heads: int) (x, mask) -> y {
    a, _ = attention(x, x, x, mask, heads=heads)
    h = x + a >> layernorm
    y = h + (h >> linear(4 * d) >> gelu >> linear(d)) >> layernorm
}
model Encoder(vocab: int = 40, d: int = 16, heads: int = 2, layers: int = 3) {
    input ids: long[batch, token]
    input pad: bool[batch, token]
    e = ids >> embedding(vocab, d)
    h = e >> repeat(layers) { encoder_layer(pad, d, heads) }
}
"""


def test_a_repeat_body_receives_a_context_value_on_every_step():
    module, source = _module(ENCODER)
    assert "for layer in self.h:" in source and "h = layer(h, pad)" in source
    assert "nn.ModuleList(" in source
    ids = torch.randint(0, 40, (2, 6))
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 4:] = True
    module.eval()
    with torch.no_grad():
        want = module.e(ids)
        for layer in module.h:
            want = layer(want, pad)
        torch.testing.assert_close(module(ids, pad), want)
    assert len(module.h) == 3


def test_a_repeat_of_one_block_has_no_wrapper_class():
    _, source = _module(ENCODER)
    assert "class HRepeat" not in source
    module, _ = _module(GPT)
    keys = set(module.state_dict())
    assert "h.0.0.a.in_proj_weight" in keys, sorted(keys)[:8]  # h = e >> repeat(...) >> layernorm


# ------------------------------------------------------------------------------ dimension names


def test_reshape_names_its_new_dimensions_and_flatten_and_rename_name_theirs():
    text = ("model M(d: int = 16) {\n    input x: [batch, token=8, feature=d]\n"
            "    y = x >> reshape([token=8, head=4, feature=d // 4])\n"
            "    z = x >> flatten(start_dim=1, name=all)\n"
            "    w = x >> reshape([token=-1, feature=d])\n"
            "    r = x >> rename(feature=channel, token=time) >> mean(dim=time)\n"
            "    output y, z, w, r\n}\n")
    shown = _types(text)
    assert shown["y"] == "[batch, token=8, head=4, feature=d // 4]"
    assert shown["z"] == "[batch, all=d * 8]"
    assert shown["w"] == "[batch, token=8, feature=d]"  # (8 * d) // d is 8
    assert shown["r"] == "[batch, channel=d]"
    module, _ = _module(text, d=8)
    y, z, w, r = module(torch.randn(2, 8, 8))
    assert y.shape == (2, 8, 4, 2) and z.shape == (2, 64) and w.shape == (2, 8, 8) and r.shape == (2, 8)


@pytest.mark.parametrize("stmt, code", [
    ("y = x >> rename(height=h)", "E052"),
    ("y = x >> rename(token=feature)", "E052"),
    ("y = x >> reshape([token=4, token=2])", "E055"),
])
def test_naming_errors(stmt, code):
    errors = _errors(f"model M {{\n    input x: [batch, token=8, feature=16]\n    {stmt}\n}}\n")
    assert errors and errors[0][0] == code, errors


def test_causal_attention_hints_torch_and_skips_discarded_weights():
    _, source = _module(GPT)
    flat = " ".join(source.split())
    assert "is_causal=True" in flat and "need_weights=False" in flat


def test_a_causal_mask_of_a_known_length_is_a_buffer_made_once():
    text = "model C(t: int = 6) {\n    input x: [batch, token=t, feature=8]\n    a, _ = attention(x, x, x, heads=2, causal=true)\n}\n"
    module, source = _module(text)
    assert "register_buffer" in source and "attn_mask=self.a.causal_mask" in " ".join(source.split())
    assert "causal_mask" not in " ".join(module.state_dict())  # not saved: made by the constructor
    x = torch.randn(2, 6, 8)
    want, _ = module.a(x, x, x, attn_mask=torch.ones(6, 6, dtype=torch.bool).triu(1), need_weights=False)
    torch.testing.assert_close(module.eval()(x), want)


def test_a_slice_from_the_end_of_a_run_time_dimension_has_a_known_size():
    # `token - (token - 2)` is 2: the tidied size is a constant known now, not a run-time one
    shown = _types("model M {\n    input x: [batch, token, feature=8]\n    j = x[token=-2:]\n}\n")
    assert shown["j"] == "[batch, token=2, feature=8]"


# ------------------------------------------------------------------------------ found by the v0.4 differential generator


def test_a_context_value_named_like_the_step_input_is_the_outer_value():
    text = ("block b() (x, m) -> y { y = add(x, m) }\nmodel M(d: int = 8) {\n"
            "    input x: [batch, token, feature=d]\n    u = x >> repeat(2) { b(x) >> linear }\n    output u\n}\n")
    module, _ = _module(text)
    x = torch.randn(2, 3, 8)
    want = x
    for step in module.u:
        want = step.linear(want + x)  # every step adds the model's input, not its own
    torch.testing.assert_close(module(x), want)


def test_a_context_value_named_like_the_step_output_checks():
    text = ("block b() (x, m) -> y { y = x + (m >> linear) }\nmodel M(d: int = 8) {\n"
            "    input y: [batch, token, feature=d]\n    v2 = y >> repeat(1) { b(y) }\n    output v2\n}\n")
    module, _ = _module(text)
    assert module(torch.randn(2, 3, 8)).shape == (2, 3, 8)


def test_repeats_with_context_verify_in_chains_with_zero_steps_and_without_weights():
    from tgc.compiler.emit import emit
    from tgc.runtime.compile_time.verify import verify

    text = ("block b() (x, m) -> y { y = x + (m >> linear) }\nblock c() (x, m) -> y { y = x + m }\n"
            "model M(d: int = 8, n: int = 0) {\n    input inp: [batch, token, feature=d]\n    v = inp >> relu\n"
            "    u = inp >> repeat(1) { b(v) } >> linear(d)\n    w = inp >> linear(d) >> repeat(2) { b(v) }\n"
            "    z = inp >> repeat(n) { b(v) }\n    q = inp >> repeat(2) { c(v) }\n    output u, w, z, q\n}\n")
    checked = _check(text).checked
    assert verify(checked, "v.tg", source=emit(checked, "v.tg")) == []


def test_positions_need_an_embedding_table_as_long_as_the_input():
    text = ("model M(d: int = 8) {\n    input x: [batch, token=6, feature=d]\n"
            "    a = x + (arange(x, dim=token) >> embedding(5, d))\n    output a\n}\n")
    assert [c for c, _ in _errors(text)] == ["E053"]
    shapes = _check(text.replace("token=6", "token")).checked.models[0]
    assert any(r.condition.render() == "5 >= token" for r in shapes.runtime_requires)


def test_a_size_computed_from_an_undeclared_width_is_fixed_when_compiled():
    # found by the long differential run (seed 2764): the module was compiled for the width the
    # checker took; given another one, its refusal says so (a documented rule of the harness)
    text = ("model M {\n    v3, v4, v5, v6 = split(x, 4, dim=feature)\n"
            "    v7 = parameter([feature=4]) + v6\n    output v3, v4, v5, v7\n}\n")
    module, source = _module(text, x_features=16)
    assert "as it did when the module was compiled" in source
    with pytest.raises(AssertionError, match="as it did when the module was compiled"):
        type(module)(x_features=4)


# ------------------------------------------------------------------------------ products and selections


def test_matmul_where_masked_fill_and_sdpa_equal_torch():
    text = ("model M(d: int = 8) {\n    input q: [batch, head=2, token=5, feature=d]\n"
            "    input k: [batch, head=2, key=7, feature=d]\n    input mask: bool[batch, 1, 1, key=7]\n"
            "    s = matmul(q, transpose(k, 2, 3)) * 0.5\n    f = masked_fill(s, mask, -10000.0)\n"
            "    w = where(mask, s, 0.0 * s)\n    output s, f, w\n}\n")
    assert _types(text)["s"] == "[batch, head=2, token=5, key=7]"
    module, source = _module(text)
    assert "q @ k.transpose(2, 3) * 0.5" in source
    q, k = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 7, 8)
    mask = torch.rand(2, 1, 1, 7) > 0.5
    s, f, w = module(q, k, mask)
    torch.testing.assert_close(s, q @ k.transpose(2, 3) * 0.5)
    torch.testing.assert_close(f, s.masked_fill(mask, -10000.0))
    torch.testing.assert_close(w, torch.where(mask, s, 0.0 * s))
    text = ("model A {\n    input x: [batch, head=2, token=6, feature=4]\n"
            "    y = scaled_dot_product_attention(x, x, x, is_causal=true, dropout_p=0.1)\n}\n")
    module, source = _module(text)
    assert "dropout_p=0.1 if self.training else 0.0" in source
    x = torch.randn(2, 2, 6, 4)
    torch.testing.assert_close(module.eval()(x), torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True))


def test_matmul_inner_sizes_must_agree():
    errors = _errors("model M {\n    input a: [batch, token=3, feature=4]\n    input b: [batch, feature=5, out=2]\n"
                     "    y = matmul(a, b)\n}\n")
    assert [c for c, _ in errors] == ["E050"]


def test_einsum_by_dimension_names_equals_torch():
    text = ('model M {\n    input q: [batch, token=5, feature=8]\n    input k: [batch, key=7, feature=8]\n'
            '    s = einsum(q, k, spec="token feature, key feature -> token key")\n}\n')
    assert _types(text)["s"] == "[batch, token=5, key=7]"
    module, _ = _module(text)
    q, k = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    torch.testing.assert_close(module(q, k), q @ k.transpose(1, 2))
    bad = text.replace("key=7, feature=8", "key=7, feature=9")
    assert [c for c, _ in _errors(bad)] == ["E050"]
