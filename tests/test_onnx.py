"""`tgc FILE --onnx OUT.onnx`: every golden model exported and run by onnxruntime, its outputs
compared with the emitted PyTorch module's on a batch size other than the one exported with."""

from __future__ import annotations

import pathlib
import shlex

import pytest
import torch
from golden_util import GOLDEN

from tgc.compiler.cli import _input_option, _param_option, main
from tgc.compiler.naming import name_program
from tgc.compiler.pipeline import Options, check
from tgc.compiler.emit import emit
from tgc.runtime.compile_time.onnx_export import onnx_paths
from tgc.runtime.compile_time.verify import construct, constructor_args, load_source, zero_inputs

ort = pytest.importorskip("onnxruntime", reason="the onnx extra: pip install -e '.[onnx]'")

MODELS = sorted((GOLDEN / "models").glob("*.tg"))


def _flags(tg: pathlib.Path) -> list[str]:
    first = tg.read_text(encoding="utf-8").split("\n", 1)[0]
    return shlex.split(first[len("# flags:"):]) if first.startswith("# flags:") else []


def _inputs(shapes, batch: int) -> tuple[torch.Tensor, ...]:
    """Inputs of the checked shapes with another batch size: floats random, ids 0, masks False."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for t in zero_inputs(shapes):
        t = torch.zeros((batch, *t.shape[1:]), dtype=t.dtype)
        out.append(torch.randn(t.shape, generator=generator) if t.is_floating_point() else t)
    return tuple(out)


@pytest.mark.slow
@pytest.mark.parametrize("tg", MODELS, ids=[p.stem for p in MODELS])
def test_golden_model_runs_in_onnxruntime_like_torch(tg, tmp_path, monkeypatch):
    monkeypatch.chdir(tg.parent)  # `load ... from "weights/..."` paths are relative to the .tg file
    flags = _flags(tg)
    out = tmp_path / "model.onnx"
    if "load " in tg.read_text() and not (tg.parent / "weights").exists():
        # the exported graph holds the loaded weights: without the file, a clean error
        assert main([tg.name, "--onnx", str(out), *flags]) == 1
        assert not out.exists()
        return
    assert main([tg.name, "--onnx", str(out), *flags]) == 0
    pairs = list(zip(flags[::2], flags[1::2]))
    options = Options(tuple(_input_option(v) for f, v in pairs if f == "--input"),
                      tuple(_param_option(v) for f, v in pairs if f == "--param"))
    result = check(tg.name, options)
    names = name_program(result.checked)
    namespace, problem = load_source(emit(result.checked, tg.name, names), tg.name, "onnx test")
    assert problem is None
    classes = [n.cls for n in names.models]
    for shapes, cls, path in zip(result.checked.models, classes, onnx_paths(str(out), classes)):
        model = construct(getattr(namespace, cls), constructor_args(shapes))
        inputs = _inputs(shapes, batch=3)
        with torch.no_grad():
            expected = model(*inputs)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        session = ort.InferenceSession(path)
        got = session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)})
        assert len(got) == len(expected), cls
        for g, e in zip(got, expected):
            assert tuple(g.shape) == tuple(e.shape), cls
            assert torch.allclose(torch.from_numpy(g).to(e.dtype), e, atol=1e-4, rtol=1e-4), cls


def test_onnx_needs_an_onnx_file_name(tmp_path, capsys):
    assert main([str(GOLDEN / "models" / "mlp.tg"), "--onnx", str(tmp_path / "model.bin")]) == 2
    assert "ends with .onnx" in capsys.readouterr().err
