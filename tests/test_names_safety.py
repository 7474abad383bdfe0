"""Names from the source never break the emitted module (issue 13, first cases)."""

from __future__ import annotations

import types

import torch

from tgc.compiler import pipeline
from tgc.compiler.emit import emit
from tgc.runtime.compile_time.verify import verify


def _build(text: str, **params):
    checked = pipeline.check("n.tg", pipeline.Options(), text=text)
    assert checked.ok, [d.message for d in checked.diagnostics]
    source = emit(checked.checked, "n.tg")
    assert verify(checked.checked, "n.tg", source=source) == []
    mod = types.ModuleType("n_generated")
    exec(compile(source, "n_generated.py", "exec"), mod.__dict__)
    return getattr(mod, checked.checked.models[0].graph.name)(**params), source


def test_a_dunder_parameter_and_a_mangled_value_name_are_renamed():
    module, source = _build("model M(__class__: int = 3) {\n    input x: [batch, feature=4]\n"
                            "    __h = x >> linear(__class__)\n}\n")
    code = [line.split("#")[0] for line in source.splitlines()]  # comments may quote the source
    assert not any("__class__" in line or "self.__h" in line for line in code)
    assert module(torch.randn(2, 4)).shape == (2, 3)


def test_block_parameters_named_like_keywords_are_passed_by_their_python_names():
    module, source = _build("block b(class: int) (x) -> y {\n    y = x >> linear(class)\n}\nmodel M {\n"
                            "    input x: [batch, feature=4]\n    y = x >> b(3) >> repeat(2) { b(class=4) }\n}\n")
    assert "class_=3" in source and "class=" not in source
    assert module(torch.randn(2, 4)).shape == (2, 4)
