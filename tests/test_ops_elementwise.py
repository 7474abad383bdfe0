"""The v0.4 activations (relu6 ... prelu, glu) and the `elementwise` family (exp ... normalize).

Shape rules on symbolic and run-time sizes are compared with what torch computes (the emitted
module runs, and re-parametrised where the rule asserts something), diagnostics for bad
arguments name the problem, and emitted calls read as hand-written PyTorch.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from tgc.compiler import emit, shapes
from tgc.compiler.diagnostics import CompileError
from tgc.compiler.pipeline import front_end
from tgc.compiler.summary import summarize
from tgc.runtime.compile_time.verify import verify


def _check(text: str):
    result = front_end("case.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    checked, _ = shapes.check(result.program)
    return checked


def compile_tg(text: str):
    """(flat emitted source, checked model, namespace); verified against torch (shapes and dtypes)."""
    checked = _check(text)
    source = emit.emit(checked, "case.tg")
    assert verify(checked, "case.tg", source) == []
    namespace: dict = {}
    exec(compile(source, "case.py", "exec"), namespace)
    flat = re.sub(r"\s+", " ", source).replace("( ", "(").replace(" )", ")")
    return flat, checked.models[0], namespace


def errors(text: str) -> list[tuple[str, str]]:
    result = front_end("case.tg", text=text)
    found = [d for d in result.diagnostics if d.is_error]
    if not found:
        try:
            shapes.check(result.program)
        except CompileError as exc:
            found = [d for d in exc.diagnostics if d.is_error]
    return [(d.code, d.message) for d in found]


def one_error(text: str, code: str, *words: str) -> str:
    found = errors(text)
    assert len(found) == 1, found
    assert found[0][0] == code, found
    for w in words:
        assert w in found[0][1], found
    return found[0][1]


def model(body: str, inputs: str = "input x: [batch, channel=4, token, feature=6]", params: str = "") -> str:
    header = f"model M({params})" if params else "model M"
    return f"{header} {{\n    {inputs}\n    {body}\n    output y\n}}\n"


# ------------------------------------------------------------------------------ glu


def test_glu_halves_a_doubled_parameter_exactly():
    flat, m, ns = compile_tg(model("y = x >> glu", "input x: [batch, token, feature=2 * d]", "d: int = 3"))
    assert "F.glu(x)" in flat
    assert m.types["y"].dims[-1].size.render() == "d"
    assert "assert" not in flat  # `2 * d` is even for every d
    out = ns["M"](d=5)(torch.zeros(2, 3, 10))
    assert list(out.shape) == [2, 3, 5]


def test_glu_on_a_parameter_asserts_evenness():
    flat, m, ns = compile_tg(model("y = x >> glu(dim=feature)", "input x: [batch, feature=d]", "d: int = 4"))
    assert "d % 2 == 0" in flat and "must be even" in flat
    assert m.types["y"].dims[-1].size.render() == "d // 2"
    with pytest.raises(AssertionError, match="must be even"):
        ns["M"](d=5)


def test_glu_on_a_runtime_size_is_a_requirement_and_matches_torch():
    flat, m, ns = compile_tg(model("y = x >> glu(dim=token)"))
    assert "F.glu(x, dim=2)" in flat
    d = m.types["y"].dims[2]
    assert d.name == "token" and d.size is None and d.extent.render() == "token // 2"
    assert [a.condition.render() for a in m.runtime_requires] == ["token % 2 == 0"]
    for token in (2, 6, 10):
        x = torch.randn(2, 4, token, 6)
        want = F.glu(x, dim=2)
        assert list(ns["M"]()(x).shape) == list(want.shape)
        assert want.shape[2] == d.extent.evaluate(dims={"token": token})


def test_glu_errors():
    one_error(model("y = x >> glu", "input x: [batch, feature=7]"), "E053", "`feature`", "7", "must be even")
    one_error(model("y = x >> glu(dim=0)"), "E052", "batch")
    one_error(model("y = x >> glu(dim=5)"), "E052", "out of range")
    one_error(model("y = x >> glu", "input x: long[batch, feature=4]"), "E054", "floating-point")


# ------------------------------------------------------------------------------ prelu


def test_prelu_applies_to_dimension_1_not_the_last():
    # torch's PReLU learns one slope per channel of dimension 1, whatever the last dimension is
    flat, m, ns = compile_tg(model("y = x >> prelu(4)"))
    assert "nn.PReLU(4)" in flat
    one_error(model("y = x >> prelu(6)"), "E053", "dimension `channel`", "(4)")
    with pytest.raises(RuntimeError):  # and torch agrees
        torch.nn.PReLU(6)(torch.zeros(2, 4, 3, 6))


def test_prelu_defaults_and_params_count():
    flat, m, ns = compile_tg(model("y = x >> prelu(init=0.1)"))
    assert "nn.PReLU(init=0.1)" in flat
    flat, m, ns = compile_tg(model("y = x >> prelu(channel_count)", params="channel_count: int = 4"))
    assert "nn.PReLU(channel_count)" in flat
    checked = _check(model("y = x >> prelu(4)"))
    assert summarize(checked, checked.models[0]).total == 4


def test_prelu_on_the_channel_parameter_needs_no_assertion():
    flat, m, ns = compile_tg(model("y = x >> prelu(c)", "input x: [batch, channel=c, height, width]",
                                   "c: int = 3"))
    assert "assert" not in flat
    assert list(ns["M"](c=7)(torch.zeros(2, 7, 4, 4)).shape) == [2, 7, 4, 4]


def test_prelu_count_parameter_may_be_1_or_the_channels():
    text = model("y = x >> prelu(n)", "input x: [batch, channel=8, token]", "n: int = 1")
    flat, m, ns = compile_tg(text)
    assert "(n - 1) * (n - 8) == 0" in flat
    for n in (1, 8):
        assert list(ns["M"](n=n)(torch.zeros(2, 8, 3)).shape) == [2, 8, 3]
    with pytest.raises(AssertionError, match="must be 1 or the number of channels"):
        ns["M"](n=3)


def test_prelu_on_a_runtime_channel_dimension():
    flat, m, ns = compile_tg(model("y = x >> prelu(5)", "input x: [batch, token, feature=2]"))
    assert [a.condition.render() for a in m.runtime_requires] == ["5 == token"]
    assert list(ns["M"]()(torch.zeros(2, 5, 2)).shape) == [2, 5, 2]


def test_prelu_errors():
    one_error(model("y = x >> prelu(2)", "input x: [batch]"), "E053", "must be 1", "has none")
    one_error(model("y = x >> prelu(n)", "input x: [batch]", "n: int = 2"), "E053", "must be 1")
    one_error(model("y = x >> prelu(0)"), "E055", "positive")
    one_error(model("y = x >> prelu(init=1e300)"), "E055", "`init`", "float32")
    one_error(model("y = x >> prelu", "input x: long[batch, feature=4]"), "E054")
    with pytest.raises(RuntimeError):  # torch's rank-1 channel count is 1
        torch.nn.PReLU(2)(torch.zeros(2))


def test_prelu_count_parameter_on_rank_1_is_asserted_to_be_1():
    flat, m, ns = compile_tg(model("y = x >> prelu(n)", "input x: [batch]", "n: int = 1"))
    assert "n == 1" in flat
    with pytest.raises(AssertionError):
        ns["M"](n=2)


# ------------------------------------------------------------------------------ scalar activations


def test_activation_emission_omits_defaults():
    flat, _, _ = compile_tg(model(
        "y = x >> relu6 >> elu >> elu(alpha=0.5) >> selu >> hardswish >> hardsigmoid >> mish "
        ">> hardtanh >> hardtanh(-2.0, max=3) >> softplus >> softplus(beta=2.0, threshold=10.0)"))
    for call in ("F.relu6(x)", "F.elu(F.relu6(x))", "alpha=0.5)", "F.selu(", "F.hardswish(", "F.hardsigmoid(",
                 "F.mish(", "min_val=-2.0, max_val=3)", "beta=2.0, threshold=10.0)"):
        assert call in flat, call
    assert "F.hardtanh(F.mish(" in flat
    assert "inplace" not in flat


def test_hardtanh_bounds():
    one_error(model("y = x >> hardtanh(2.0, -1.0)"), "E053", "`min_val` (2.0)", "`max_val` (-1.0)")
    flat, _, ns = compile_tg(model("y = x >> hardtanh(lo, hi)", params="lo: float = -1.0, hi: float = 2.0"))
    assert "hi >= lo" in flat and "min_val=self.lo, max_val=self.hi" in flat
    with pytest.raises(AssertionError, match="cannot be greater"):
        ns["M"](lo=3.0, hi=1.0)
    ns["M"](lo=1.0, hi=1.0)  # equal bounds: torch's F.hardtanh accepts them


def test_number_arguments_must_fit_the_computation_type():
    one_error(model("y = x >> elu(alpha=1e300)"), "E055", "`alpha`", "float32")
    model_half = "input x: float16[batch, feature=4]"
    one_error(model("y = x >> hardtanh(-1e10, 1e10)", model_half), "E055", "`min_val`", "float16")
    one_error(model("y = x >> clamp(max=1e10)", model_half), "E055", "`max`", "float16")
    one_error(model("y = x >> pow(1e10)", model_half), "E055", "`exponent`", "float16")
    one_error(model("y = x >> softplus(threshold=1e300)"), "E055", "`threshold`")
    # and torch refuses the same
    with pytest.raises(RuntimeError):
        torch.clamp(torch.zeros(2, dtype=torch.float16), max=1e10)
    # where torch takes the value, so does the checker
    compile_tg(model("y = x >> elu(alpha=1e300) >> pow(1e300)", "input x: double[batch, feature=4]"))
    compile_tg(model("y = x >> elu(alpha=1e10)", model_half))


# ------------------------------------------------------------------------------ elementwise


def test_math_functions_keep_shape_and_type():
    flat, m, _ = compile_tg(model("y = x >> exp >> log >> sqrt >> abs >> pow(2) >> pow(exponent=0.5)",
                                  "input x: double[batch, token, feature=d]", "d: int = 3"))
    assert "torch.abs(torch.sqrt(torch.log(torch.exp(x))))" in flat and "torch.pow(torch.pow(y, 2), 0.5)" in flat
    assert m.types["y"] == m.types["x"]


@pytest.mark.parametrize("op", ["exp", "log", "sqrt", "pow(2)", "normalize"])
def test_float_only_ops_refuse_integers(op):
    # torch.exp on an integer tensor gives float32: the op would not keep the input's type
    one_error(model(f"y = x >> {op}", "input x: long[batch, token]"), "E054", "floating-point")


def test_abs_and_clamp_keep_integer_types():
    flat, m, _ = compile_tg(model("y = x >> clamp(0, 99) >> abs", "input x: long[batch, token]"))
    assert "torch.abs(torch.clamp(x, min=0, max=99))" in flat
    assert m.types["y"].dtype == "int64"
    flat, m, _ = compile_tg(model("y = x >> clamp(max=200)", "input x: uint8[batch, token]"))
    assert m.types["y"].dtype == "uint8"
    one_error(model("y = x >> abs", "input x: bool[batch, token]"), "E054", "bool")
    one_error(model("y = x >> clamp(min=0)", "input x: bool[batch, token]"), "E054", "bool")


def test_clamp_arguments():
    flat, _, _ = compile_tg(model("y = x >> clamp(min=0.0) >> clamp(max=lo) >> clamp(lo, 1)",
                                  params="lo: float = 0.5"))
    assert "torch.clamp(torch.clamp(torch.clamp(x, min=0.0), max=self.lo), min=self.lo, max=1)" in flat
    one_error(model("y = x >> clamp"), "E055", "`min`, `max` or both")
    one_error(model("y = x >> clamp(min=0.5)", "input x: long[batch, token]"), "E054", "float32",
              "keeps the input's type")
    one_error(model("y = x >> clamp(max=1000)", "input x: int8[batch, token]"), "E055", "int8")
    with pytest.raises(RuntimeError):  # torch refuses the same
        torch.clamp(torch.zeros(2, dtype=torch.int8), max=1000)
    # torch wraps a small negative bound for uint8 around (-1 is 255): refused, never meant
    one_error(model("y = x >> clamp(min=-1)", "input x: uint8[batch, token]"), "E055", "uint8", "wrap")
    assert torch.clamp(torch.zeros(2, dtype=torch.uint8), min=-1).tolist() == [255, 255]


def test_clamp_parameter_bounds_on_narrow_integers_are_asserted():
    flat, _, ns = compile_tg(model("y = x >> clamp(min=lo)", "input x: uint8[batch, token]", "lo: int = 1"))
    assert "lo >= 0" in flat and "255 >= lo" in flat
    with pytest.raises(AssertionError, match="at least 0"):
        ns["M"](lo=-1)


def test_normalize_always_gives_dim():
    flat, m, _ = compile_tg(model("y = x >> normalize"))
    assert "F.normalize(x, dim=-1)" in flat  # torch's default would be dim=1
    flat, _, _ = compile_tg(model("y = x >> normalize(p=1.0, dim=channel, eps=1e-6)"))
    assert "F.normalize(x, p=1.0, dim=1, eps=1e-06)" in flat
    one_error(model("y = x >> normalize(dim=depth)"), "E052", "depth")
    one_error(model("y = x >> normalize(eps=1e10)", "input x: half[batch, feature=4]"), "E055", "`eps`")
