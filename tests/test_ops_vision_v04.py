"""The v0.4 vision ops (LANGUAGE.md section 13): conv3d, transposed convolutions, 1-d and 3-d
pools, adaptive max pools, upsample, pixel_shuffle/unshuffle and pad.

Each case compiles a small `.tg` model, runs the emitted module with torch and compares every
output's shape with the checker's type, also at several run-time sizes for dimensions the model
leaves unsized (the symbolic floor-division expressions must be exactly torch's). Error cases
assert the diagnostic; the random cases at the end check, for fixed sizes, that the checker
accepts a call exactly when torch runs it (apart from the restrictions the ops document).
"""

from __future__ import annotations

import random
import re

import pytest

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from tgc.compiler import emit, shapes
from tgc.compiler.diagnostics import CompileError, Diagnostic
from tgc.compiler.pipeline import front_end
from tgc.compiler.summary import summarize

BATCH = 2


def model(body: str, params: str = "") -> str:
    return f"model M({params}) {{\n{body}\n}}\n"


def compile_tg(text: str):
    result = front_end("case.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    checked, _ = shapes.check(result.program)
    return emit.emit(checked, "case.tg"), checked


def diagnostics(text: str) -> list[Diagnostic]:
    result = front_end("case.tg", text=text)
    if any(d.is_error for d in result.diagnostics):
        return [d for d in result.diagnostics if d.is_error]
    try:
        shapes.check(result.program)
    except CompileError as exc:
        return [d for d in exc.diagnostics if d.is_error]
    return []


def flat(source: str) -> str:
    text = re.sub(r"\s+", " ", source)
    return text.replace("( ", "(").replace(", )", ")").replace(" )", ")")


def run(text: str, *sizes: dict[str, int]) -> str:
    """Compile, run at each assignment of the run-time sizes (one empty one by default), compare
    every output's shape with the checker's; the module must trace with torch.fx. The flat source."""
    source, checked = compile_tg(text)
    m = checked.models[0]
    namespace: dict = {}
    exec(compile(source, "case.py", "exec"), namespace)
    module = namespace[m.graph.name]().eval()
    traced = torch.fx.symbolic_trace(module)
    for dims in sizes or ({},):
        inputs = []
        for inp in m.graph.inputs:
            t = m.types[inp.name]
            shape = [BATCH] + [d.size.value if d.size is not None else dims[d.name] for d in t.dims[1:]]
            inputs.append(torch.randn(shape))
        with torch.no_grad():
            outs = module(*inputs)
            again = traced(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        again = again if isinstance(again, tuple) else (again,)
        for out, back, name in zip(outs, again, m.graph.outputs):
            t = m.types[name]
            want = [BATCH] + [d.extent.evaluate(m.param_values, dims) for d in t.dims[1:]]
            assert list(out.shape) == want, (dims, list(out.shape), t.show(), source)
            assert back.shape == out.shape
    return flat(source)


def fails(text: str, code: str, message: str) -> None:
    errors = diagnostics(text)
    assert errors, f"expected {code}, got no error"
    assert any(d.code == code and message in d.message for d in errors), [(d.code, d.message) for d in errors]


def requires(text: str) -> list[str]:
    """The rendered run-time requirements of the (only) model."""
    _, checked = compile_tg(text)
    return [a.condition.render() for a in checked.models[0].runtime_requires]


SEQ = "    input seq: [batch, channels=4, length=9]\n"
IMG = "    input img: [batch, channels=4, height=8, width=6]\n"
VOL = "    input vol: [batch, channels=4, depth=5, height=6, width=7]\n"


# ------------------------------------------------------------------------------ conv3d, groups


@pytest.mark.parametrize("call", [
    "conv3d(8, 3)",
    "conv3d(8, [1, 3, 5], stride=[1, 2, 3], padding=[0, 1, 2], dilation=[2, 1, 1])",
    'conv3d(4, 3, padding="same", padding_mode="replicate")',
    'conv3d(4, 2, padding="same")',
    "conv3d(6, 3, groups=2, bias=false)",
    "conv3d(8, 3, groups=4)",  # depthwise: groups == in_channels
    'conv3d(4, 3, padding=2, padding_mode="circular")',
])
def test_conv3d(call):
    run(model(VOL + f"    y = vol >> {call}"))


def test_conv3d_emission_and_params():
    text = model(VOL + "    y = vol >> conv3d(8, [1, 3, 3], stride=2, groups=4, bias=false)")
    source = run(text)
    assert "nn.Conv3d(4, 8, (1, 3, 3), stride=2, groups=4, bias=False)" in source
    assert "[batch, channels=8, depth=3, height=2, width=3]" in source
    _, checked = compile_tg(text)
    assert summarize(checked, checked.models[0]).total == nn.Conv3d(4, 8, (1, 3, 3), groups=4, bias=False).weight.numel()


def test_depthwise_convs():
    for op, body in (("conv1d", SEQ + "    y = seq >> conv1d(4, 3, groups=4)"),
                     ("conv2d", IMG + "    y = img >> conv2d(8, 3, groups=4)"),
                     ("conv_transpose1d", SEQ + "    y = seq >> conv_transpose1d(8, 3, groups=4)"),
                     ("conv_transpose2d", IMG + "    y = img >> conv_transpose2d(4, 3, groups=4)")):
        source = run(model(body))
        assert "groups=4" in source, op


def test_conv_run_time_sizes_3d():
    text = model("    input vol: [batch, channels=2, depth, height, width]\n"
                 "    y = vol >> conv3d(4, 3, stride=2, padding=1)")
    source = run(text, {"depth": 5, "height": 6, "width": 9}, {"depth": 1, "height": 2, "width": 3})
    assert "depth=(depth + 1) // 2" in source


def test_conv_padding_modes_read_the_input():
    # torch's reflection reads `padding` values from inside the input: it must be smaller than it
    fails(model("    input x: [batch, channels=1, length=3]\n"
                '    y = x >> conv1d(1, 1, padding=3, padding_mode="reflect")'), "E055",
          '"reflect" padding (3) must be smaller than dimension `length` of `x` (3)')
    run(model("    input x: [batch, channels=1, length=3]\n"
              '    y = x >> conv1d(1, 1, padding=2, padding_mode="reflect")'))
    run(model("    input x: [batch, channels=1, length=3]\n"
              '    y = x >> conv1d(1, 1, padding=3, padding_mode="circular")'))
    fails(model("    input x: [batch, channels=1, length=3]\n"
                '    y = x >> conv1d(1, 1, padding=4, padding_mode="circular")'), "E055",
          '"circular" padding (4) must be at most dimension `length`')
    # "same" pads total // 2 before and the rest after: kernel 6 needs 3 after
    fails(model("    input x: [batch, channels=1, length=3]\n"
                '    y = x >> conv1d(1, 6, padding="same", padding_mode="reflect")'), "E055",
          '"reflect" padding (3)')
    run(model("    input x: [batch, channels=1, length=3]\n"
              '    y = x >> conv1d(1, 5, padding="same", padding_mode="reflect")'))
    fails(model("    input x: [batch, channels=1, height=4, width=2]\n"
                '    y = x >> conv2d(1, 1, padding=2, padding_mode="reflect")'), "E055", "dimension `width`")
    # run-time sizes: a requirement
    assert "length >= 4" in requires(model("    input x: [batch, channels=1, length]\n"
                                           '    y = x >> conv1d(1, 1, padding=3, padding_mode="reflect")'))
    # a mode given by a parameter is checked by the strictest rule
    fails(model("    input x: [batch, channels=1, length=3]\n    y = x >> conv1d(1, 1, padding=3, padding_mode=m)",
                'm: str = "zeros"'), "E055", '"reflect" padding')


def test_conv3d_errors():
    fails(model(VOL + "    y = vol >> conv3d(8, 6)"), "E055", "kernel size 6 is larger than dimension `depth`")
    fails(model(VOL + "    y = vol >> conv3d(8, [3, 3])"), "E055", "`kernel_size` has 2 values")
    fails(model(IMG + "    y = img >> conv3d(8, 3)"), "E051", "but 5 are needed")
    fails(model(VOL + "    y = vol >> conv3d(8, 3, groups=3)"), "E053", "must divide the input channels")
    fails(model(VOL + "    y = vol >> conv3d(6, 3, groups=4)"), "E053", "must divide `out_channels`")


# ------------------------------------------------------------------------------ transposed convolution


def _transposed(length: int, k: int, s: int = 1, p: int = 0, op: int = 0, d: int = 1) -> int:
    return (length - 1) * s - 2 * p + d * (k - 1) + op + 1


@pytest.mark.parametrize("call", [
    "conv_transpose1d(8, 3)",
    "conv_transpose1d(8, 4, stride=2, padding=1)",
    "conv_transpose1d(8, 3, stride=3, padding=2, output_padding=2, dilation=2, groups=2, bias=false)",
    "conv_transpose1d(2, 1, stride=1, dilation=3, output_padding=2)",  # op < dilation suffices
    "conv_transpose1d(out_channels=6, kernel_size=[5], stride=[2], padding=[2], output_padding=[1])",
])
def test_conv_transpose1d(call):
    run(model(SEQ + f"    y = seq >> {call}"))


@pytest.mark.parametrize("call", [
    "conv_transpose2d(8, 2, stride=2)",
    "conv_transpose2d(8, [3, 5], stride=[2, 1], padding=[1, 2], output_padding=[1, 0], dilation=[1, 2])",
    "conv_transpose2d(4, 3, stride=2, padding=1, output_padding=1)",
    "conv_transpose2d(6, 3, groups=2)",
])
def test_conv_transpose2d(call):
    run(model(IMG + f"    y = img >> {call}"))


def test_conv_transpose_emission_and_costs():
    text = model(IMG + "    y = img >> conv_transpose2d(6, 3, stride=2, padding=1, output_padding=1, groups=2, "
                 "bias=false, dilation=2)")
    source = run(text)
    assert ("nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False, "
            "dilation=2)") in source
    h, w = _transposed(8, 3, 2, 1, 1, 2), _transposed(6, 3, 2, 1, 1, 2)
    assert f"[batch, channels=6, height={h}, width={w}]" in source
    _, checked = compile_tg(text)
    summary = summarize(checked, checked.models[0])
    torch_module = nn.ConvTranspose2d(4, 6, 3, groups=2, bias=False)
    assert summary.total == sum(p.numel() for p in torch_module.parameters())
    assert summary.macs == 4 * 8 * 6 * (6 // 2) * 9  # each input element meets out/groups kernels
    plain = run(model(SEQ + "    y = seq >> conv_transpose1d(8, 3)"))
    assert "nn.ConvTranspose1d(4, 8, 3)" in plain


def test_conv_transpose_symbolic_sizes():
    # the classic 2x upsampling: (height - 1) * 2 - 2 + 2 + 1 + 1 == height * 2
    text = model("    input img: [batch, channels=4, height, width]\n"
                 "    y = img >> conv_transpose2d(8, 3, stride=2, padding=1, output_padding=1)")
    source = run(text, {"height": 1, "width": 1}, {"height": 5, "width": 7})
    assert "[batch, channels=8, height=height * 2, width=width * 2]" in source
    text = model("    input seq: [batch, channels=c, length]\n"
                 "    y = seq >> conv_transpose1d(c, k, stride=s, padding=p)", "c: int = 2, k: int = 4, s: int = 3, "
                 "p: int = 1")
    source = run(text, {"length": 1}, {"length": 6})
    assert "nn.ConvTranspose1d(c, c, k, stride=s, padding=p)" in source
    assert "length=(length - 1) * s + k - p * 2" in source
    # over parameters only: the size is an expression, the module re-parametrisable
    text = model("    input seq: [batch, channels=4, length=n]\n    y = seq >> conv_transpose1d(4, 3, stride=s)",
                 "n: int = 5, s: int = 2")
    _, checked = compile_tg(text)
    out = checked.models[0].types["y"].dims[2].size
    assert out.value == _transposed(5, 3, 2) and out.params() == {"n", "s"}


def test_conv_transpose_empty_output():
    # torch would give an empty (or no) tensor: the checker wants at least 1
    fails(model("    input seq: [batch, channels=4, length=1]\n    y = seq >> conv_transpose1d(4, 1, padding=1)"),
          "E055", "the output of dimension `length` would be empty (-1)")
    reqs = requires(model("    input seq: [batch, channels=4, length]\n"
                          "    y = seq >> conv_transpose1d(4, 1, padding=1)"))
    assert reqs == ["length - 2 >= 1"]
    # a kernel that covers the padding at L = 1 needs no requirement
    assert requires(model("    input seq: [batch, channels=4, length]\n"
                          "    y = seq >> conv_transpose1d(4, 3, stride=2, padding=1)")) == []


def test_conv_transpose_errors():
    fails(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, stride=2, output_padding=2)"), "E055",
          "`output_padding` (2) must be smaller than `stride` (2) or than `dilation` (1)")
    fails(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, output_padding=1)"), "E055", "`output_padding` (1)")
    fails(model(IMG + "    y = img >> conv_transpose2d(8, 3, stride=[2, 1], output_padding=[1, 1])"), "E055",
          "`output_padding` (1) must be smaller than `stride` (1)")
    fails(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, padding=-1)"), "E055", "`padding` must be at least 0")
    fails(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, groups=3)"), "E053", "must divide the input channels")
    fails(model(SEQ + "    y = seq >> conv_transpose1d(6, 3, groups=4)"), "E053", "must divide `out_channels`")
    fails(model(SEQ + '    y = seq >> conv_transpose1d(6, 3, padding="same")'), "E025", "")
    fails(model(SEQ + '    y = seq >> conv_transpose1d(6, 3, padding_mode="zeros")'), "E020", "")
    fails(model(IMG + "    y = img >> conv_transpose1d(8, 3)"), "E051", "but 3 are needed")


def test_conv_transpose_symbolic_output_padding_asserts():
    source = run(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, stride=s, output_padding=e)", "s: int = 2, e: int = 1"))
    assert "assert (s >= e + 1)" in source and "e + 3 >= 1" not in source  # no padding: never empty
    source = run(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, stride=s, dilation=d, output_padding=1)",
                       "s: int = 2, d: int = 1"))
    assert "(s >= 2) + (d >= 2) >= 1" in source
    fails(model(SEQ + "    y = seq >> conv_transpose1d(8, 3, stride=s, output_padding=e)", "s: int = 2, e: int = 2"),
          "E055", "`output_padding` (2)")


# ------------------------------------------------------------------------------ pools


@pytest.mark.parametrize("call", [
    "maxpool1d(2)",
    "maxpool1d(3, stride=2, padding=1)",
    "maxpool1d(2, stride=2, ceil_mode=true)",
    "maxpool1d(2, stride=3, padding=1, dilation=2, ceil_mode=true)",
    "avgpool1d(3)",
    "avgpool1d(4, stride=2, padding=2, ceil_mode=true, count_include_pad=false)",
    "adaptive_avgpool1d(1)",
    "adaptive_avgpool1d(20)",  # larger than the input: torch repeats windows
    "adaptive_maxpool1d(4)",
    "adaptive_maxpool1d(size=[13])",
])
def test_pool1d(call):
    run(model(SEQ + f"    y = seq >> {call}"))


@pytest.mark.parametrize("call", [
    "maxpool3d(2)",
    "maxpool3d([1, 2, 3], stride=[1, 2, 1], padding=[0, 1, 1], dilation=[1, 1, 2])",
    "maxpool3d(3, stride=2, ceil_mode=true)",
    "avgpool3d(2)",
    "avgpool3d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false, divisor_override=2)",
    "avgpool3d([5, 6, 7])",
])
def test_pool3d(call):
    run(model(VOL + f"    y = vol >> {call}"))


@pytest.mark.parametrize("call", ["adaptive_maxpool2d(1)", "adaptive_maxpool2d([3, 20])", "adaptive_maxpool2d(size=2)"])
def test_adaptive_maxpool2d(call):
    run(model(IMG + f"    y = img >> {call}"))


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
def test_pool_run_time_sizes(length):
    text = model("    input seq: [batch, channels=2, length]\n"
                 "    a = seq >> maxpool1d(2, stride=2, ceil_mode=true)\n"
                 "    b = seq >> avgpool1d(3, stride=2, padding=1)\n"
                 "    c = seq >> adaptive_maxpool1d(3)\n"
                 "    output a, b, c")
    source = run(text, {"length": length})
    assert "length=(length + 1) // 2" in source


def test_pool3d_run_time_sizes():
    text = model("    input vol: [batch, channels=2, depth, height, width]\n    y = vol >> maxpool3d(2) >> avgpool3d(2)")
    source = run(text, {"depth": 4, "height": 5, "width": 9})
    assert "depth=depth // 2 // 2" in source


def test_pool_emission():
    source = run(model(SEQ + "    y = seq >> maxpool1d(3, stride=1, padding=1, dilation=2) >> avgpool1d(2, ceil_mode=true)"
                       " >> adaptive_maxpool1d(2)"))
    assert "nn.MaxPool1d(3, stride=1, padding=1, dilation=2)" in source
    assert "nn.AvgPool1d(2, ceil_mode=True)" in source and "nn.AdaptiveMaxPool1d(2)" in source
    source = run(model(VOL + "    y = vol >> avgpool3d(2, divisor_override=3) >> maxpool3d([1, 2, 2])"))
    assert "nn.AvgPool3d(2, divisor_override=3)" in source and "nn.MaxPool3d((1, 2, 2))" in source
    source = run(model(IMG + "    y = img >> adaptive_maxpool2d([2, 3])"))
    assert "nn.AdaptiveMaxPool2d((2, 3))" in source


def test_avgpool3d_window_inside_the_input():
    # torch's avg_pool3d wants every input size >= kernel_size even where padding would cover it
    with pytest.raises(RuntimeError):
        nn.AvgPool3d(7, padding=3)(torch.zeros(1, 1, 6, 6, 6))
    nn.MaxPool3d(7, padding=3)(torch.zeros(1, 1, 6, 6, 6))
    small = "    input vol: [batch, channels=1, depth=6, height=6, width=6]\n"
    fails(model(small + "    y = vol >> avgpool3d(7, padding=3)"), "E055",
          "dimension `depth` of `vol` (6) must be at least `kernel_size` (7)")
    fails(model(small + "    y = vol >> avgpool3d([6, 7, 6], padding=3, ceil_mode=true)"), "E055", "`height`")
    run(model(small + "    y = vol >> maxpool3d(7, padding=3)"))
    assert "depth >= 3" in requires(model("    input vol: [batch, channels=1, depth, height=6, width=6]\n"
                                          "    y = vol >> avgpool3d(3, padding=1)"))


def test_pool_errors():
    fails(model(SEQ + "    y = seq >> maxpool1d(3, padding=2)"), "E055", "at most half of `kernel_size`")
    fails(model(SEQ + "    y = seq >> maxpool1d(3, dilation=2, padding=2)"), "E055", "at most half")
    fails(model(SEQ + "    y = seq >> avgpool1d(10)"), "E055", "larger than dimension `length`")
    fails(model(SEQ + "    y = seq >> avgpool1d(2, divisor_override=2)"), "E020", "")
    fails(model(VOL + "    y = vol >> maxpool3d([2, 2])"), "E055", "`kernel_size` has 2 values")
    fails(model(IMG + "    y = img >> maxpool1d(2)"), "E051", "`img` has 4 dimensions")
    fails(model(SEQ + "    y = seq >> maxpool3d(2)"), "E051", "but 5 are needed")
    fails(model(SEQ + "    y = seq >> adaptive_maxpool1d(0)"), "E055", "`output_size` must be positive")
    fails(model(IMG + "    y = img >> adaptive_maxpool2d([1, 2, 3])"), "E055", "`output_size` has 3 values")
    fails(model(SEQ + "    y = seq >> maxpool1d(2, ceil_mode=c)", "c: bool = true"), "E056", "ceil_mode")


# ------------------------------------------------------------------------------ upsample


@pytest.mark.parametrize("decl,call", [
    (SEQ, "upsample(scale_factor=2)"),
    (SEQ, 'upsample(scale_factor=1.5, mode="linear", align_corners=true)'),
    (SEQ, "upsample(size=20)"),
    (SEQ, 'upsample(scale_factor=0.75, mode="area")'),
    (IMG, 'upsample(scale_factor=2, mode="bilinear")'),
    (IMG, 'upsample(scale_factor=2.0, mode="bicubic", align_corners=false)'),
    (IMG, 'upsample(size=[3, 20], mode="nearest-exact")'),
    (IMG, "upsample(scale_factor=0.2)"),  # fixed sizes: any factor
    (IMG, "upsample(scale_factor=0.3333)"),
    (VOL, 'upsample(scale_factor=3, mode="trilinear")'),
    (VOL, "upsample(scale_factor=0.5)"),
])
def test_upsample(decl, call):
    run(model(decl + f"    y = {decl.split()[1][:-1]} >> {call}"))


def test_upsample_symbolic_sizes():
    text = model("    input img: [batch, channels=3, height, width]\n"
                 "    a = img >> upsample(scale_factor=2)\n"
                 "    b = img >> upsample(scale_factor=1.5)\n"
                 "    c = img >> upsample(scale_factor=f)\n"
                 "    output a, b, c", "f: int = 3")
    sizes = [{"height": h, "width": w} for h, w in ((1, 1), (3, 5), (7, 8), (13, 2))]
    source = run(text, *sizes)
    assert "[batch, channels=3, height=height * 2, width=width * 2]" in source
    assert "height=height * 3 // 2" in source and "height=height * f" in source
    assert "nn.Upsample(scale_factor=f)" in source
    half = model("    input img: [batch, channels=3, height, width]\n    y = img >> upsample(scale_factor=0.5)")
    assert requires(half) == ["height // 2 >= 1", "width // 2 >= 1"]
    run(half, {"height": 2, "width": 3}, {"height": 9, "width": 4})


def test_upsample_emission():
    source = run(model(IMG + '    y = img >> upsample(scale_factor=2, mode="bilinear", align_corners=true)'))
    assert 'nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)' in source
    source = run(model(IMG + "    y = img >> upsample(size=[4, 5])"))
    assert "nn.Upsample(size=(4, 5))" in source


def test_upsample_errors():
    fails(model(IMG + "    y = img >> upsample"), "E055", "give exactly one of `size` and `scale_factor`")
    fails(model(IMG + "    y = img >> upsample(size=3, scale_factor=2)"), "E055", "not both")
    fails(model(SEQ + '    y = seq >> upsample(scale_factor=2, mode="bilinear")'), "E055",
          'mode "bilinear" needs 4 dimensions')
    fails(model(IMG + '    y = img >> upsample(scale_factor=2, mode="trilinear")'), "E055", "needs 5 dimensions")
    fails(model(IMG + "    y = img >> upsample(scale_factor=2, align_corners=false)"), "E055",
          "`align_corners` applies only to the interpolating modes")
    fails(model(IMG + "    y = img >> upsample(scale_factor=0)"), "E055", "must be a positive number")
    fails(model(IMG + "    y = img >> upsample(size=[2, 2, 2])"), "E055", "`size` has 3 values")
    fails(model("    input x: [batch, channels=1, length=1]\n    y = x >> upsample(scale_factor=0.5)"), "E055",
          "would be empty")
    fails(model("    input x: [batch, channels=1, length]\n    y = x >> upsample(scale_factor=0.1)"), "E056",
          "exact only for fixed input sizes")
    fails(model(IMG + "    y = img >> upsample(scale_factor=f)", "f: float = 1.5"), "E056", "`scale_factor`")
    fails(model(IMG + "    y = img >> upsample(scale_factor=2, mode=m)", 'm: str = "nearest"'), "E056", "`mode`")
    fails(model("    input ids: long[batch, channels=1, length=4]\n    y = ids >> upsample(scale_factor=2)"), "E054",
          "floating-point")
    fails(model("    input x: [batch, feature=4]\n    y = x >> upsample(scale_factor=2)"), "E051", "3 to 5")


# ------------------------------------------------------------------------------ pixel shuffle


def test_pixel_shuffle():
    source = run(model(IMG.replace("channels=4", "channels=12") + "    y = img >> pixel_shuffle(2)"))
    assert "F.pixel_shuffle(img, 2)" in source and "[batch, channels=3, height=16, width=12]" in source
    source = run(model(IMG + "    y = img >> pixel_unshuffle(2)"))
    assert "F.pixel_unshuffle(img, 2)" in source and "[batch, channels=16, height=4, width=3]" in source
    run(model(IMG + "    y = img >> pixel_unshuffle(2) >> pixel_shuffle(factor=2)"))


def test_pixel_shuffle_symbolic():
    text = model("    input img: [batch, channels=c, height, width]\n"
                 "    y = img >> pixel_unshuffle(r) >> conv2d(c * r * r, 1) >> pixel_shuffle(r)", "c: int = 3, r: int = 2")
    source = run(text, {"height": 4, "width": 6}, {"height": 2, "width": 10})
    assert "F.pixel_unshuffle(img, self.r)" in source and "F.pixel_shuffle(" in source
    assert "height=height // r * r" in source
    assert {"height % r == 0", "width % r == 0"} <= set(requires(text))
    # a run-time channel count must be divisible when it runs
    reqs = requires(model("    input img: [batch, channels, height=4, width=4]\n    y = img >> pixel_shuffle(2)"))
    assert reqs == ["channels % 4 == 0"]
    # over parameters: an assertion in __init__
    source = run(model("    input img: [batch, channels=c, height=2, width=2]\n    y = img >> pixel_shuffle(2)",
                       "c: int = 8"))
    assert "assert (c % 4 == 0)" in source


def test_pixel_shuffle_errors():
    fails(model(IMG + "    y = img >> pixel_shuffle(3)"), "E055",
          "dimension `channels` of `img` (4) must be divisible by `upscale_factor` squared (9)")
    fails(model(IMG + "    y = img >> pixel_unshuffle(4)"), "E055",
          "dimension `width` of `img` (6) must be divisible by `downscale_factor` (4)")
    fails(model(IMG + "    y = img >> pixel_shuffle(0)"), "E055", "`upscale_factor` must be positive")
    fails(model(SEQ + "    y = seq >> pixel_shuffle(2)"), "E051", "but 4 are needed")
    fails(model("    input img: [batch, channels=c, height=2, width=2]\n    y = img >> pixel_shuffle(2)", "c: int = 6"),
          "E055", "must be divisible")


# ------------------------------------------------------------------------------ pad


@pytest.mark.parametrize("decl,call,shown,emitted", [
    (SEQ, "pad([1, 2])", "[batch, channels=4, length=12]", "F.pad(seq, (1, 2))"),
    (IMG, "pad([1, 1, 2, 2])", "[batch, channels=4, height=12, width=8]", "F.pad(img, (1, 1, 2, 2))"),
    (IMG, "pad([0, 0, 0, 0, 1, 0])", "[batch, channels=5, height=8, width=6]", "F.pad(img, (0, 0, 0, 0, 1, 0))"),
    (IMG, "pad([-1, -2], value=1.5)", "[batch, channels=4, height=8, width=3]", "F.pad(img, (-1, -2), value=1.5)"),
    (IMG, "pad([-6, 2])", "[batch, channels=4, height=8, width=2]", "F.pad(img, (-6, 2))"),
    (IMG, 'pad([5, 5, 7, 7], mode="reflect")', "height=22, width=16", 'F.pad(img, (5, 5, 7, 7), mode="reflect")'),
    (SEQ, 'pad([9, 9], mode="circular")', "length=27", 'F.pad(seq, (9, 9), mode="circular")'),
    (IMG, 'pad([9, 0, 1, 1, 3, 3], mode="replicate")', "channels=10, height=10, width=15", 'mode="replicate"'),
    (VOL, 'pad([1, 1, 1, 1, 1, 1], mode="reflect")', "depth=7, height=8, width=9", "F.pad(vol, (1, 1, 1, 1, 1, 1)"),
    ("    input x: [batch, feature=3]\n", 'pad([2, 2], mode="reflect")', "[batch, feature=7]", "F.pad(x"),
])
def test_pad(decl, call, shown, emitted):
    name = decl.split()[1][:-1]
    source = run(model(decl + f"    y = {name} >> {call}"))
    assert shown in source and emitted in source


def test_pad_symbolic():
    text = model("    input img: [batch, channels=3, height, width]\n"
                 "    y = img >> pad([p, p, 1, 0], value=v)", "p: int = 2, v: float = 0.5")
    source = run(text, {"height": 1, "width": 1}, {"height": 4, "width": 3})
    assert "F.pad(img, (self.p, self.p, 1, 0), value=self.v)" in source
    assert "height=height + 1, width=width + p * 2" in source
    crop = model("    input img: [batch, channels=3, height, width]\n    y = img >> pad([-2, -1])")
    assert requires(crop) == ["width - 3 >= 0", "width - 3 >= 1"]
    run(crop, {"height": 2, "width": 4})
    assert requires(model("    input x: [batch, channels=3, length]\n    y = x >> pad([2, 3], mode=\"reflect\")")) \
        == ["length >= 3", "length >= 4"]


def test_pad_errors():
    fails(model(SEQ + "    y = seq >> pad([1, 2, 3])"), "E055", "`pad` needs pairs (before, after)")
    fails(model(SEQ + "    y = seq >> pad(1)"), "E055", "`pad` needs pairs")
    fails(model(SEQ + "    y = seq >> pad([1, 1, 1, 1, 1, 1])"), "E055", "has only 2 dimensions after the batch")
    fails(model(SEQ + '    y = seq >> pad([9, 0], mode="reflect")'), "E055",
          '"reflect" padding (9) must be smaller than dimension `length` of `seq` (9)')
    fails(model(SEQ + '    y = seq >> pad([10, 0], mode="circular")'), "E055", '"circular" padding (10)')
    fails(model(SEQ + '    y = seq >> pad([-1, 0], mode="replicate")'), "E055", "needs non-negative padding")
    fails(model(SEQ + '    y = seq >> pad([1, 1], mode="reflect", value=1.0)'), "E055", '`value` fills only mode "constant"')
    fails(model(IMG + '    y = img >> pad([1, 1], mode="reflect")'), "E055", 'mode "reflect" pads the last 1, 2 or 3')
    fails(model(SEQ + "    y = seq >> pad([-5, -4])"), "E055", "would be empty (0)")
    # torch crops before it pads: 1 - 2 < 0 fails although 1 + 2 - 2 = 1
    with pytest.raises(RuntimeError):
        F.pad(torch.zeros(1, 1, 1), (2, -2))
    fails(model("    input x: [batch, channels=1, length=1]\n    y = x >> pad([2, -2])"), "E055",
          "smaller than the negative padding that crops it")
    fails(model(SEQ + '    y = seq >> pad([1, 1], mode=m)', 'm: str = "constant"'), "E056", "`mode`")


def test_pad_parameter_crop_is_asserted():
    source = run(model(SEQ + "    y = seq >> pad([p, 0])", "p: int = -2"))
    assert "p * (0 >= p + 1)" in source  # min(p, 0), whatever sign p takes


# ------------------------------------------------------------------------------ accept exactly what torch runs


def _agree(tg_call: str, decl: str, reference, allowed=lambda: False) -> None:
    """The checker accepts `tg_call` on `decl` exactly when torch runs `reference()` (with a
    non-empty result); `allowed()` names the documented restrictions a rejection may come from."""
    text = model(decl + f"    y = x >> {tg_call}")
    errors = diagnostics(text)
    try:
        out = reference()
        torch_ok = out.numel() > 0 or all(s > 0 for s in out.shape[1:])
    except (RuntimeError, ValueError, NotImplementedError, TypeError):
        torch_ok = False
    if errors:
        assert not torch_ok or allowed(), (text, [(d.code, d.message) for d in errors])
    else:
        assert torch_ok, text
        run(text)


def _x(*sizes: int) -> str:
    labels = {1: ["length"], 2: ["height", "width"], 3: ["depth", "height", "width"]}[len(sizes) - 1]
    dims = ", ".join(f"{n}={s}" for n, s in zip(["channels", *labels], sizes))
    return f"    input x: [batch, {dims}]\n"


def test_random_conv_transpose_agrees_with_torch():
    rng = random.Random(4)
    for _ in range(60):
        c, length = rng.randint(1, 4), rng.randint(1, 5)
        out, k, s, p, e, d, g = (rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 3), rng.randint(0, 3),
                                 rng.randint(0, 2), rng.randint(1, 2), rng.randint(1, 2))
        call = (f"conv_transpose1d({out}, {k}, stride={s}, padding={p}, output_padding={e}, dilation={d}, "
                f"groups={g})")

        def reference():
            return nn.ConvTranspose1d(c, out, k, stride=s, padding=p, output_padding=e, dilation=d, groups=g)(
                torch.zeros(1, c, length))
        _agree(call, _x(c, length), reference)


def test_random_pools_agree_with_torch():
    rng = random.Random(5)
    for _ in range(80):
        n = rng.choice([1, 3])
        sizes = [rng.randint(1, 5) for _ in range(n)]
        kind = rng.choice(["max", "avg"])
        k, s, p, ceil = rng.randint(1, 4), rng.randint(1, 3), rng.randint(0, 2), rng.random() < 0.5
        cls = getattr(nn, f"{kind.capitalize()}Pool{n}d")
        call = f"{kind}pool{n}d({k}, stride={s}, padding={p}, ceil_mode={str(ceil).lower()})"

        def reference():
            return cls(k, stride=s, padding=p, ceil_mode=ceil)(torch.zeros(1, 2, *sizes))
        _agree(call, _x(2, *sizes), reference)


def test_random_upsample_agrees_with_torch():
    rng = random.Random(6)
    modes = ["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"]
    for _ in range(60):
        n = rng.randint(1, 3)
        sizes = [rng.randint(1, 6) for _ in range(n)]
        mode = rng.choice(modes)
        scale = rng.choice([1, 2, 0.5, 1.5, 0.3, 0.75, 2.5])
        align = rng.choice([None, True, False])
        call = f'upsample(scale_factor={scale}, mode="{mode}"' + (
            "" if align is None else f", align_corners={str(align).lower()}") + ")"

        def reference():
            return nn.Upsample(scale_factor=scale, mode=mode, align_corners=align)(torch.zeros(1, 2, *sizes))
        _agree(call, _x(2, *sizes), reference)


def test_random_pad_agrees_with_torch():
    rng = random.Random(7)
    for _ in range(120):
        rank = rng.randint(2, 5)  # with the batch
        sizes = [rng.randint(1, 4) for _ in range(rank - 1)]
        mode = rng.choice(["constant", "reflect", "replicate", "circular"])
        pads = [rng.randint(-3, 4) for _ in range(2 * rng.randint(1, 3))]
        labels = ["a", "b", "c", "d"][: rank - 1]
        decl = "    input x: [batch, " + ", ".join(f"{n}={s}" for n, s in zip(labels, sizes)) + "]\n"
        call = f'pad({pads}, mode="{mode}")'

        def reference():
            return F.pad(torch.zeros(2, *sizes), tuple(pads), mode=mode)
        # documented: modes other than "constant" take no negative padding, and the batch is never padded
        _agree(call, decl, reference, allowed=lambda: (mode != "constant" and min(pads) < 0)
               or len(pads) // 2 > rank - 1)


def test_random_pixel_shuffle_agrees_with_torch():
    rng = random.Random(8)
    for _ in range(40):
        c, h, w, r = rng.randint(1, 9), rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 3)
        up = rng.random() < 0.5
        call = f"pixel_shuffle({r})" if up else f"pixel_unshuffle({r})"

        def reference():
            return (nn.PixelShuffle(r) if up else nn.PixelUnshuffle(r))(torch.zeros(1, c, h, w))
        _agree(call, _x(c, h, w), reference)
