"""The verification harness: emitted PyTorch against the shape checker, value by value."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import replace

import pytest

from tgc.compiler.ops.registry import REGISTRY, Emission
from tgc.compiler.pipeline import front_end
from tgc.compiler.shapes import Dim, TType, check
from tgc.compiler.tensor_types import Sym
from tgc.compiler.emit import emit
from tgc.runtime.compile_time.verify import verify

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def compile_file(name: str):
    path = os.path.join(EXAMPLES, name)
    result = front_end(path)
    assert result.ok, result.diagnostics
    checked, _ = check(result.program)
    return checked, path


def compile_text(text: str, path: str = "t.tg"):
    result = front_end(path, text=text)
    assert result.ok, result.diagnostics
    checked, _ = check(result.program)
    return checked


def tampered(checked, value: str, t: TType, model: int = 0):
    """A copy of `checked` whose checker type for `value` is `t`."""
    shapes = checked.models[model]
    types = dict(shapes.types)
    types[value] = t
    models = list(checked.models)
    models[model] = dataclasses.replace(shapes, types=types)
    return dataclasses.replace(checked, models=models)


@pytest.mark.parametrize("name", ["two_tower.tg", "card.tg"])
def test_examples_verify(name):
    checked, path = compile_file(name)
    assert verify(checked, path) == []


def test_wrong_size_is_reported():
    checked, path = compile_file("two_tower.tg")
    t = checked.models[0].types["a.1"]
    bad = tampered(checked, "a.1", t.replace_dim(-1, Dim("feature", Sym.const(64))))
    assert verify(bad, path) == [
        "TwoTower: `a.1` (linear, two_tower.tg:4): checker says [2, 64], torch gives [2, 128]"
    ]


def test_wrong_rank_and_dtype_are_reported():
    checked, path = compile_file("card.tg")
    t = checked.models[0].types["b"]
    bad = tampered(checked, "b", TType(t.dims + (Dim(None, Sym.const(1)),), "int64"))
    messages = verify(bad, path)
    assert messages == [
        "Model: `b` (linear, card.tg:1): checker says [2, 16, 1], torch gives [2, 16]",
        "Model: `b` (linear, card.tg:1): checker says int64, torch gives float32",
    ]


def test_symbolic_dimensions_get_consistent_sizes():
    checked = compile_text(
        "model M {\n"
        "    input x: [batch, token, feature=4]\n"
        "    input ids: long[batch, token]\n"
        "    h = x >> linear(8) >> softmax(dim=token)\n"
        "    output h\n"
        "}\n"
    )
    assert verify(checked, "t.tg") == []
    t = checked.models[0].types["h"]
    bad = tampered(checked, "h", t.replace_dim(1, Dim("other", None)))
    assert verify(bad, "t.tg") == []  # an unsized dimension the inputs do not name: a wildcard
    bad = tampered(checked, "h", t.replace_dim(1, Dim("token", Sym.const(5))))
    assert verify(bad, "t.tg") == [
        "M: `h` (softmax, t.tg:4): checker says [2, 5, 8], torch gives [2, 3, 8]"
    ]


def test_parameters_use_checked_values():
    text = "model P(h: int = 4) {\n    input x: [batch, feature=3]\n    y = x >> linear(h)\n}\n"
    result = front_end("p.tg", text=text)
    checked, _ = check(result.program, params=[("h", 7)])
    assert checked.models[0].types["y"].dims[-1].size.value == 7
    assert verify(checked, "p.tg") == []


def test_several_models():
    checked = compile_text(
        "model A {\n    input x: [batch, feature=3]\n    y = x >> linear(5)\n}\n"
        "model B {\n    input x: [batch, token, feature=2]\n    y = x >> linear(6) >> relu\n}\n"
    )
    assert verify(checked, "t.tg") == []
    t = checked.models[1].types["y"]
    bad = tampered(checked, "y", t.replace_dim(-1, Dim("feature", Sym.const(7))), model=1)
    assert verify(bad, "t.tg") == ["B: `y` (relu, t.tg:7): checker says [2, 3, 7], torch gives [2, 3, 6]"]


def test_submodule_not_called_is_reported(monkeypatch):
    spec = REGISTRY["dropout"]
    skip = replace(spec, emit=lambda ctx: Emission(call=ctx.exprs[0], module="nn.Dropout(0.5)"))
    monkeypatch.setitem(REGISTRY, "dropout", skip)
    checked, path = compile_file("two_tower.tg")
    messages = verify(checked, path)
    assert len(messages) == 1
    assert messages[0].startswith("TwoTower: `a` (dropout, two_tower.tg:4): the IR expects a call of "
                                  "submodule `self.a_dropout` here")


def test_broken_forward_is_reported(monkeypatch):
    spec = REGISTRY["relu"]
    broken = replace(spec, emit=lambda ctx: Emission(call=f"{ctx.exprs[0]}.view(-1, 7)"))
    monkeypatch.setitem(REGISTRY, "relu", broken)
    checked, path = compile_file("card.tg")
    (message,) = verify(checked, path)
    assert message.startswith("Model: the emitted forward fails on zero inputs (x: [2, 16]): RuntimeError")


def test_the_written_source_is_what_is_verified():
    # verification runs the very text that is written: a change to it shows, value by value
    checked, path = compile_file("two_tower.tg")
    source = emit(checked, path)
    assert verify(checked, path, source=source) == []
    line = next(x for x in source.splitlines() if x.strip().startswith("logits = "))
    changed = source.replace(line, f"{line}[:, :3]")
    assert verify(checked, path, source=changed) == [
        "TwoTower: `logits` (linear, two_tower.tg:7): checker says [2, 10], torch gives [2, 3]"
    ]


def test_inlined_values_are_observed_through_their_submodules():
    # `a.1` (the linear inside `a = x >> linear >> relu >> dropout`) has no local of its own
    checked, path = compile_file("two_tower.tg")
    source = emit(checked, path)
    assert "a = self.a_dropout(torch.relu(self.a(x)))" in source
    t = checked.models[0].types["a.1"]
    bad = tampered(checked, "a.1", t.replace_dim(-1, Dim("feature", Sym.const(5))))
    assert verify(bad, path) == [
        "TwoTower: `a.1` (linear, two_tower.tg:4): checker says [2, 5], torch gives [2, 128]"
    ]


def test_verify_is_deterministic():
    checked, path = compile_file("two_tower.tg")
    t = checked.models[0].types["logits"]
    bad = tampered(checked, "logits", t.replace_dim(-1, Dim("feature", Sym.const(3))))
    assert verify(bad, path) == verify(bad, path)
