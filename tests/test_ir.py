"""The IR's self-check: typed node classes, and a lint that raises `IRError` (not `assert`, which
`python -O` would drop) after resolve and after the shape check."""

from __future__ import annotations

import dataclasses

import pytest

from tgc.compiler import ir
from tgc.compiler import shapes
from tgc.compiler.pipeline import front_end

TEXT = ("block twice(w: int) (x) -> y { y = x >> linear(w) >> relu }\n"
        "model M {\n    input x: [batch, feature=4]\n"
        "    h = x >> twice(8) >> repeat(2) { linear(8) }\n}\n")


def _program() -> ir.Program:
    result = front_end("m.tg", text=TEXT)
    assert result.ok, result.diagnostics
    return result.program


def test_nodes_are_typed():
    (call, repeat) = _program().models[0].nodes
    assert isinstance(call, ir.BlockCall) and call.op == "twice"
    assert isinstance(repeat, ir.Repeat) and isinstance(repeat.body.nodes[0], ir.OpCall)


def test_lint_raises_on_a_value_used_before_it_exists():
    program = _program()
    model = program.models[0]
    broken = dataclasses.replace(model.nodes[0], inputs=("nowhere",))
    program = dataclasses.replace(program, models=(dataclasses.replace(model, nodes=(broken, *model.nodes[1:])),))
    with pytest.raises(ir.IRError, match="uses nowhere before it exists"):
        ir.lint(program)


def test_lint_after_shapes_raises_on_a_missing_type():
    checked, _ = shapes.check(_program())
    shapes.lint(checked)  # the real result passes
    model = checked.models[0]
    types = {k: v for k, v in model.types.items() if k != "h"}
    bad = dataclasses.replace(checked, models=[dataclasses.replace(model, types=types)])
    with pytest.raises(ir.IRError, match="no type for h"):
        shapes.lint(bad)
