"""Golden files: every `tests/golden/models/*.tg` compiles to the `.py` beside it, and every
`tests/golden/errors/*.tg` gives exactly the diagnostics in the `.err` beside it.

A first line `# flags: --input x=16 --param hidden=8` passes command-line options.
`pytest --update-goldens` rewrites the expected files.
"""

from __future__ import annotations

import pathlib
import shlex

import pytest
from golden_util import GOLDEN, compare

from tgc.compiler.cli import _input_option, _param_option
from tgc.compiler.diagnostics import render, sort_key
from tgc.compiler.emit import emit, format_code
from tgc.compiler.pipeline import Options, check

MODELS = sorted((GOLDEN / "models").glob("*.tg"))
ERRORS = sorted((GOLDEN / "errors").glob("*.tg"))


def _options(path: pathlib.Path) -> Options:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if not first.startswith("# flags:"):
        return Options()
    words = shlex.split(first[len("# flags:") :])
    inputs, params = [], []
    for flag, value in zip(words[::2], words[1::2]):
        if flag == "--input":
            inputs.append(_input_option(value))
        elif flag == "--param":
            params.append(_param_option(value))
        else:
            raise AssertionError(f"{path}: unknown flag {flag}")
    return Options(inputs=tuple(inputs), params=tuple(params))


def _relative(path: pathlib.Path) -> str:
    return path.relative_to(GOLDEN).as_posix()


@pytest.fixture
def in_golden(monkeypatch):
    monkeypatch.chdir(GOLDEN)


@pytest.mark.parametrize("tg", MODELS, ids=lambda p: p.stem)
def test_model_golden(request, in_golden, tg: pathlib.Path) -> None:
    rel = _relative(tg)
    result = check(rel, _options(tg))
    assert result.ok and result.checked is not None, "\n".join(
        render(d, result.sources.get(d.span.file)) for d in result.diagnostics
    )
    code = emit(result.checked, rel)
    assert format_code(code) == code, "a second black pass changes the output"
    assert emit(result.checked, rel) == code, "emission is not deterministic"
    compare(request, tg.with_suffix(".py"), code)


@pytest.mark.parametrize("tg", ERRORS, ids=lambda p: p.stem)
def test_error_golden(request, in_golden, tg: pathlib.Path) -> None:
    rel = _relative(tg)
    result = check(rel, _options(tg))
    assert result.diagnostics, "an error case must produce diagnostics"
    text = "\n\n".join(
        render(d, result.sources.get(d.span.file)) for d in sorted(result.diagnostics, key=sort_key)
    )
    compare(request, tg.with_suffix(".err"), text + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("tg", MODELS, ids=lambda p: p.stem)
def test_model_golden_verifies_and_compiles(in_golden, tg: pathlib.Path) -> None:
    """Each golden passes the fx round trip and `torch.compile(fullgraph=True)` without breaks."""
    import torch

    from tgc.runtime.compile_time.verify import class_names, constructor_args, load_source, verify, zero_inputs

    rel = _relative(tg)
    result = check(rel, _options(tg))
    assert result.checked is not None
    assert verify(result.checked, rel) == []
    module, problem = load_source(tg.with_suffix(".py").read_text(encoding="utf-8"), rel)
    assert module is not None, problem
    if hasattr(module, "_load_weights"):  # `load` files are tested in test_frozen_load.py
        module._load_weights = lambda module, path, weights_dir: None
    torch._dynamo.config.allow_rnn = True  # LSTM/GRU goldens
    for shapes, name in zip(result.checked.models, class_names(result.checked)):
        model = getattr(module, name)(*constructor_args(shapes)).eval()
        inputs = zero_inputs(shapes)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        with torch.no_grad():
            expected, got = model(*inputs), compiled(*inputs)
        torch.testing.assert_close(got, expected)


def test_every_diagnostic_code_has_a_case() -> None:
    """Each stable code is asserted somewhere: front-end cases (tests/cases) or golden `.err`s."""
    import re

    from tgc.compiler.diagnostics import CODES

    tests = pathlib.Path(__file__).parent
    texts = [p.read_text(encoding="utf-8") for p in (GOLDEN / "errors").glob("*.err")]
    texts += [p.read_text(encoding="utf-8") for p in (tests / "cases").rglob("*.tg")]
    texts.append((tests / "test_frontend_cases.py").read_text(encoding="utf-8"))
    texts.append((tests / "test_frozen_load.py").read_text(encoding="utf-8"))  # E039 needs torch files
    seen = set(re.findall(r"\b[EW]0\d\d\b", "\n".join(texts)))
    assert sorted(set(CODES) - seen) == []
