"""Every registered op against PyTorch, from random valid programs (runtime/compile_time/autotest.py).

A new op is tested here without writing a test: the parametrisation is the registry. Ops whose
valid values need more than their parameter types declare an `autotest` strategy in their registry entry.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tgc.compiler.ops.registry import REGISTRY, Emission, HyperParam, OpSpec, all_ops
from tgc.compiler.tensor_types import Dim
from tgc.runtime.compile_time.autotest import Case, Tensor, autotest_op, render

EXAMPLES = 20  # per op; the whole registry stays well under a minute


@pytest.mark.slow
@pytest.mark.parametrize("name", list(all_ops()))
def test_op(name):
    failures = autotest_op(name, max_examples=EXAMPLES)
    assert not failures, "\n\n".join(failures)


# ------------------------------------------------------------------------------ the harness itself


def test_wrong_shape_rule_is_caught(monkeypatch):
    spec = REGISTRY["linear"]

    def off_by_one(ctx):
        (t,) = spec.shape(ctx)
        return [t.replace_dim(-1, Dim(t.dims[-1].name, t.dims[-1].size + 1))]

    monkeypatch.setitem(REGISTRY, "linear", replace(spec, shape=off_by_one))
    failures = autotest_op("linear", max_examples=3)
    assert failures and "checker says" in failures[0] and "torch gives" in failures[0]
    assert "program:" in failures[0] and "linear(" in failures[0]


def test_untraceable_emission_is_caught(monkeypatch):
    spec = REGISTRY["relu"]
    def branch(ctx):  # Python control flow on a tensor: not traceable
        v = ctx.exprs[0]
        return Emission(call=f"({v} if {v}.sum() > 0 else -{v})")

    python_branch = replace(spec, emit=branch)
    monkeypatch.setitem(REGISTRY, "relu", python_branch)
    failures = autotest_op("relu", max_examples=2)
    assert failures and "torch.fx cannot trace" in failures[0]


def test_missing_rule_fails():
    spec = OpSpec(name="autotest_unfinished", doc="An op without rules.")
    REGISTRY[spec.name] = spec
    try:
        assert autotest_op(spec.name) == ["`autotest_unfinished` has no shape rule and emission yet"]
    finally:
        del REGISTRY[spec.name]


def test_new_op_is_tested_generically():
    """A plugin op with no strategy entry: drawn from its parameter types alone."""

    def shape(ctx):
        ctx.expect_float(ctx.in_types[0])
        ctx.dim_index(ctx.arg("dim"), ctx.in_types[0])
        return [ctx.in_types[0]]

    def emit(ctx):
        scale = ctx.arg("scale").value
        return Emission(call=f"torch.cumsum({ctx.exprs[0]}, dim={ctx.dim('dim')}) * {scale!r}")

    spec = OpSpec(
        name="autotest_cumsum",
        doc="Cumulative sum along a dimension, scaled.",
        params=(HyperParam("dim", "dim", default=-1), HyperParam("scale", "float", default=1.0)),
        shape=shape,
        emit=emit,
    )
    REGISTRY[spec.name] = spec
    try:
        assert autotest_op(spec.name, max_examples=12) == []
    finally:
        del REGISTRY[spec.name]


def test_pinned_parameter_is_reported(monkeypatch):
    def pinned(draw, spec):
        from hypothesis import strategies as st

        width = draw(st.integers(1, 50))
        return Case([Tensor("x", [("batch", None), ("feature", width)])], {"p": 0.25})

    monkeypatch.setitem(REGISTRY, "dropout", replace(REGISTRY["dropout"], autotest=pinned))
    assert autotest_op("dropout", max_examples=10) == [
        "dropout: hyper-parameter `p` took only ['0.25'] in 10 examples; "
        "its strategy must draw at least two values"
    ]


def test_render():
    spec = REGISTRY["attention"]
    case = Case(
        [Tensor("x", [("batch", None), ("token", None), ("feature", 4)])],
        {"num_heads": 2, "causal": True},
        call=["x", "x", "x"],
        outputs=2,
        discard=(1,),
        spell={"num_heads": "heads"},
        hoist={"num_heads"},
        hoist_sizes=True,
    )
    assert render(spec, case) == (
        "model Autotest(n4: int = 4, p_num_heads: int = 2) {\n"
        "    input x: [batch, token, feature=n4]\n"
        "    res_out, _ = attention(x, x, x, heads=p_num_heads, causal=true)\n"
        "    output res_out\n"
        "}\n"
    )
