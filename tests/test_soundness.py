"""Regression tests of the issue "Soundness": what `tgc check` accepts compiles, verifies, and
computes the shapes the checker derives, for any values of its parameters and run-time sizes.

One test (or a few) per defect class of the issue, each on the smallest program that showed it.
Programs are compiled through the command line (`tgc FILE -o`, which verifies), and the written
module is run with torch and compared with the checker's types evaluated at the sizes used.
"""

from __future__ import annotations

import time
import types

import pytest
import torch

from tgc.compiler import pipeline
from tgc.compiler.cli import main

# ------------------------------------------------------------------------------ helpers


def compile_ok(tmp_path, text: str, *flags: str) -> types.ModuleType:
    """Compile `text` with `tgc FILE -o` (exit 0 required) and import the written module."""
    src = tmp_path / "m.tg"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "m.py"
    assert main([str(src), "-o", str(out), *flags]) == 0
    module = types.ModuleType("m")
    exec(compile(out.read_text(encoding="utf-8"), str(out), "exec"), module.__dict__)
    return module


def checked(text: str, **params):
    result = pipeline.check("m.tg", pipeline.Options(params=tuple(params.items())), text=text)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.checked.models[0]


def diagnostics(text: str) -> list:
    result = pipeline.check("m.tg", text=text)
    return [d for d in result.diagnostics if d.is_error]


def expected(shapes, value: str, dims: dict[str, int]) -> list[int]:
    """The checker's type of `value` at the given run-time sizes."""
    t = shapes.types[value]
    return [d.size.value if d.size is not None else d.extent.evaluate(dims=dims) for d in t.dims]


# ------------------------------------------------------------------------------ 1. parameters as dims


RED = """
block red(d: int) (x) -> y { y = x >> mean(dim=d) }
block join(d: int) (x) -> y { y = cat(x, x, dim=d) }
model M() {
  input x: [batch, token=4, feature=8]
  a = x >> red(1)
  b = x >> red(2)
  c = x >> join(1)
  e = x >> join(2)
  output a, b, c, e
}
"""


def test_block_parameter_as_dim_is_not_fixed_to_the_first_call(tmp_path):
    module = compile_ok(tmp_path, RED, "--no-verify")  # the module as written, unverified
    a, b, c, e = module.M()(torch.zeros(2, 4, 8))
    assert list(a.shape) == [2, 8] and list(b.shape) == [2, 4]
    assert list(c.shape) == [2, 8, 8] and list(e.shape) == [2, 4, 16]
    compile_ok(tmp_path, RED)  # and verification agrees


def test_model_parameter_as_dim_is_read_from_the_module(tmp_path):
    text = "model M(d: int = 1) {\n  input x: [batch, token=4, feature=8]\n  y = x >> mean(dim=d)\n}\n"
    module = compile_ok(tmp_path, text)
    # the module reads d: -2 picks the same dimension as 1 and computes what the checker says
    assert list(module.M(d=-2)(torch.zeros(2, 4, 8)).shape) == expected(checked(text, d=-2), "y", {"batch": 2})
    # another dimension would change the shapes after it, which were checked for d=1: refused
    with pytest.raises(AssertionError, match="must pick dimension `token`"):
        module.M(d=2)


def test_layout_ops_need_a_literal_dim():
    errors = diagnostics("model M(a: int = 1) {\n  input x: [batch, token=4, feature=8]\n"
                         "  y = x >> transpose(a, 2)\n}\n")
    assert [d.code for d in errors] == ["E056"]


# ------------------------------------------------------------------------------ 2. blocks without submodules


def test_blocks_without_submodules_verify(tmp_path):
    text = ("block reglu() (x) -> y { a, b = split(x, 2); y = mul(a, relu(b)) }\n"
            "block blk() (x) -> y { y = x >> relu }\n"
            "model M() {\n  input x: [batch, feature=8]\n  y = x >> reglu >> blk\n}\n")
    module = compile_ok(tmp_path, text)
    assert list(module.M()(torch.zeros(3, 8)).shape) == [3, 4]


# ------------------------------------------------------------------------------ 3. run-time spatial sizes


CNN = """
model M() {
  input img: [batch, channel=3, height, width]
  y = img >> maxpool2d(2) >> conv2d(8, 3, stride=2, padding=1) >> relu
      >> maxpool2d(3, stride=2, ceil_mode=true) >> conv2d(4, 3, dilation=2, padding=2)
}
"""


def test_pooling_and_strides_on_run_time_sizes(tmp_path):
    module = compile_ok(tmp_path, CNN)
    shapes = checked(CNN)
    model = module.M().eval()
    for height, width in ((8, 8), (17, 9), (32, 45), (64, 31)):
        sizes = {"batch": 2, "height": height, "width": width}
        assert all(r.condition.evaluate(dims=sizes) for r in shapes.runtime_requires)
        got = list(model(torch.zeros(2, 3, height, width)).shape)
        assert got == expected(shapes, shapes.graph.outputs[0], sizes), (height, width)


def test_pooled_size_is_not_the_input_size():
    errors = diagnostics("model M() {\n  input x: [batch, channel=3, height, width]\n"
                         "  y = x >> maxpool2d(2)\n  z = add(y, x)\n}\n")
    assert [d.code for d in errors] == ["E050"] and "width=width // 2" in errors[0].message


def test_run_time_requirements_say_what_the_input_needs():
    shapes = checked("model M() {\n  input x: [batch, channel=3, height, width]\n  y = x >> conv2d(4, 5)\n}\n")
    conditions = {r.condition.render() for r in shapes.runtime_requires}
    assert "height >= 5" in conditions and "width >= 5" in conditions


# ------------------------------------------------------------------------------ 4. cat and split on run-time sizes


def test_cat_along_a_run_time_dimension_adds_the_sizes(tmp_path):
    assert [d.code for d in diagnostics(
        "model M() {\n  input x: [batch, channel=3, height, width]\n  y = cat(x, x, dim=height)\n"
        "  z = add(y, x)\n}\n")] == ["E050"]
    text = "model M() {\n  input x: [batch, token, feature=4]\n  y = cat(x, x, dim=token)\n}\n"
    module = compile_ok(tmp_path, text)
    assert list(module.M()(torch.zeros(2, 5, 4)).shape) == expected(checked(text), "y", {"batch": 2, "token": 5})


def test_split_of_a_run_time_dimension():
    errors = diagnostics("model M() {\n  input x: [batch, token, feature=4]\n"
                         "  a, b = split(x, [3, 1], dim=token)\n  output a, b\n}\n")
    assert [d.code for d in errors] == ["E051"] and "has no size" in errors[0].message
    shapes = checked("model M() {\n  input x: [batch, token, feature=4]\n  a, b = chunk(x, 2, dim=token)\n"
                     "  output a, b\n}\n")
    assert expected(shapes, "a", {"batch": 2, "token": 6}) == [2, 3, 4]
    assert {r.condition.render() for r in shapes.runtime_requires} == {"token % 2 == 0"}


# ------------------------------------------------------------------------------ 5. repeat counts


def test_repeat_zero_is_the_identity(tmp_path):
    text = ("model M(n: int = 0) {\n  input x: [batch, feature=4]\n  y = x >> repeat(n) { linear(4) }\n"
            "  z = y >> repeat(0) { linear(6) }\n}\n")
    module = compile_ok(tmp_path, text)
    assert list(module.M()(torch.zeros(2, 4)).shape) == [2, 4]
    assert list(module.M(n=3)(torch.zeros(2, 4)).shape) == [2, 4]
    with pytest.raises(AssertionError, match="at least 0"):
        module.M(n=-1)


def test_negative_repeat_counts_are_diagnostics():
    assert [d.code for d in diagnostics("y = x >> repeat(-1) { relu }\n")] == ["E036"]
    assert [d.code for d in diagnostics(
        "model M(n: int = -1) {\n  input x: [batch, feature=4]\n  y = x >> repeat(n) { relu }\n}\n")] == ["E055"]


# ------------------------------------------------------------------------------ 6. recurrent states


def test_recurrent_state_is_layer_batch_feature(tmp_path):
    text = ("model M() {\n  input x: [batch, token, feature=4]\n  seq, h_n, c_n = lstm(x, hidden=8, layers=2)\n"
            "  m = h_n >> mean(dim=layer)\n  t = h_n >> transpose(layer, batch) >> flatten\n"
            "  p = h_n >> permute(dims=[batch, layer, feature])\n  output m, t, p\n}\n")
    module = compile_ok(tmp_path, text)
    m, t, p = module.M()(torch.zeros(3, 5, 4))
    assert list(m.shape) == [3, 8] and list(t.shape) == [3, 16] and list(p.shape) == [3, 2, 8]


def test_recurrent_state_batch_is_never_merged():
    errors = diagnostics("model M() {\n  input x: [batch, token, feature=4]\n  seq, h_n = gru(x, hidden=8)\n"
                         "  y = h_n >> flatten\n}\n")
    assert [d.code for d in errors] == ["E052"] and "permute(dims=[batch, layer, feature])" in errors[0].hint


# ------------------------------------------------------------------------------ 7. blocks on inputs of several ranks


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_block_called_on_inputs_of_different_rank(tmp_path, order):
    calls = {"a": "  p = a >> r(16)\n", "b": "  q = b >> r(16)\n"}
    text = ("block r(width: int) (x) -> y { h = x >> linear(width); y = add(x, h) }\n"
            "model M() {\n  input a: [batch, feature=16]\n  input b: [batch, token=5, feature=16]\n"
            + "".join(calls[c] for c in order) + "  output p, q\n}\n")
    module = compile_ok(tmp_path, text, "--no-verify")
    p, q = module.M()(torch.zeros(2, 16), torch.zeros(2, 5, 16))
    assert list(p.shape) == [2, 16] and list(q.shape) == [2, 5, 16]
    compile_ok(tmp_path, text)


# ------------------------------------------------------------------------------ 8. bounded work


def test_repeat_is_checked_once_per_distinct_step():
    text = "model M() {\n  input x: [batch, feature=8]\n  y = x >> repeat(10000) { linear(8) >> relu }\n}\n"
    start = time.perf_counter()
    result = pipeline.check("m.tg", text=text)
    assert result.ok and time.perf_counter() - start < 5  # 10,000 steps of one shape: one check
    args = result.checked.models[0].args[0]
    assert [n for _, _, n in args["steps"]] == [10000]


def test_counts_beyond_the_limits_are_diagnostics():
    for text in ("y = x >> repeat(2147483648) { relu }\n",
                 "a, b = chunk(x, 10000000)\n",
                 "model M() {\n  input x: [batch, feature=8]\n  y = x >> linear(99999999999999999999)\n}\n"):
        errors = diagnostics(text)
        assert [d.code for d in errors] == ["E057"], text
        assert len(errors[0].message) < 200


def test_destructuring_error_does_not_list_every_piece():
    errors = diagnostics("a, b = chunk(x, 4000)\n")
    assert [d.code for d in errors] == ["E027"] and len(errors[0].message) < 200


def _nested(depth: int) -> str:
    lines = ["block b0() (x) -> y { y = x >> relu }"]
    lines += [f"block b{i}() (x) -> y {{ y = x >> b{i - 1} }}" for i in range(1, depth)]
    lines.append(f"model M() {{\n  input x: [batch, feature=4]\n  y = x >> b{depth - 1}\n}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth", [150, 500])
def test_deep_nesting_is_a_diagnostic(depth):
    errors = diagnostics(_nested(depth))
    assert errors and {d.code for d in errors} == {"E057"}


def test_nesting_within_the_limit_compiles(tmp_path):
    module = compile_ok(tmp_path, _nested(40))
    assert list(module.M()(torch.zeros(2, 4)).shape) == [2, 4]


def test_verification_finds_sizes_for_nested_divisions(tmp_path):
    # token // 3 // 3 // 3 % 3 == 0: only multiples of 81 fit, beyond the sizes tried first
    text = ("block third() (x) -> y { a, b, c = chunk(x, 3, dim=token); y = a }\n"
            "model M() {\n  input x: [batch, token, feature=4]\n  y = x >> repeat(4) { third }\n}\n")
    module = compile_ok(tmp_path, text)
    assert list(module.M()(torch.zeros(2, 162, 4)).shape) == [2, 2, 4]


def test_a_model_no_input_size_can_run_is_an_error():
    # token % 2 == 0 (the first chunk) and (token - 1) % 2 == 0 (the second): never both
    errors = diagnostics("model M() {\n  input x: [batch, channel=4, token]\n  y = x >> conv1d(4, 2)\n"
                         "  a, b = chunk(x, 2, dim=token)\n  c, e = chunk(y, 2, dim=token)\n  output a, c\n}\n")
    assert [d.code for d in errors] == ["E053"] and "cannot run on any input" in errors[0].message
