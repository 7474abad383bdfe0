"""What every zoo test needs: the emitted module of an `examples/zoo/*.tg`, weights copied from a
hand-written reference, batch-norm statistics randomised, outputs compared in eval mode."""

from __future__ import annotations

import os
import types

import torch

from tgc.compiler import pipeline
from tgc.compiler.emit import emit

ZOO = os.path.join(os.path.dirname(__file__), "..", "examples", "zoo")


def zoo_path(name: str) -> str:
    return os.path.join(ZOO, name)


def compile_zoo(name: str, model: str | None = None) -> tuple[type, str]:
    """The emitted class of `examples/zoo/<name>` (its first model, or `model`) and its source."""
    path = zoo_path(name)
    result = pipeline.check(path)
    errors = [d for d in result.diagnostics if d.is_error]
    assert result.ok, "\n".join(f"{d.span.line}:{d.span.column} {d.code} {d.message}" for d in errors)
    source = emit(result.checked, path)
    module = types.ModuleType(f"zoo_{os.path.splitext(name)[0]}")
    exec(compile(source, module.__name__ + ".py", "exec"), module.__dict__)
    graph_name = model or result.checked.models[0].graph.name
    return getattr(module, graph_name), source


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def copy_by_order(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Copy `src`'s state (parameters and buffers) into `dst` entry by entry, in registration order;
    every pair must have the same shape (a different architecture fails here, not later)."""
    a, b = list(src.state_dict().items()), list(dst.state_dict().items())
    assert len(a) == len(b), f"{len(a)} entries in the source, {len(b)} in the destination"
    state = {}
    for (ka, va), (kb, vb) in zip(a, b):
        assert va.shape == vb.shape, f"{ka} {tuple(va.shape)} vs {kb} {tuple(vb.shape)}"
        state[kb] = va.clone()
    dst.load_state_dict(state, strict=True)


def randomise_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Random running statistics and affine weights for every batch norm, so eval mode is not the
    identity and a wrong order of normalisation shows."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def assert_same_outputs(reference: torch.nn.Module, emitted: torch.nn.Module, *inputs, atol: float = 1e-5) -> None:
    """Copy the reference's weights into the emitted module; equal outputs in eval mode."""
    randomise_norms(reference)
    copy_by_order(reference, emitted)
    reference.eval()
    emitted.eval()
    with torch.no_grad():
        want, got = reference(*inputs), emitted(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert w.shape == g.shape, (w.shape, g.shape)
        torch.testing.assert_close(g, w, atol=atol, rtol=1e-5)


def assert_compiles_without_graph_breaks(module: torch.nn.Module, *inputs) -> None:
    """`torch.compile(fullgraph=True)` of the module runs (a graph break is an error there)."""
    import torch._dynamo

    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    with torch.no_grad():
        compiled(*inputs)
