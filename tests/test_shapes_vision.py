"""End-to-end checks of the conv, pool, reshape, norm and embedding shape rules and emission.

Each case compiles a small `.tg` model in-process, runs the emitted module on zero tensors of the
checked input shapes (batch 2), and compares every output's real shape with the checker's type;
the module must also trace with torch.fx. Error cases assert the diagnostic code and message.
"""

from __future__ import annotations

import re

import pytest

import torch  # noqa: E402
import torch.fx  # noqa: E402

from tgc.compiler import emit, shapes  # noqa: E402
from tgc.compiler.diagnostics import CompileError, Diagnostic  # noqa: E402
from tgc.compiler.pipeline import front_end  # noqa: E402

BATCH = 2
UNSIZED = 5  # the run-time size of dimensions the checker leaves without one (`token`)
DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.long, "int32": torch.int32,
          "bool": torch.bool}


def compile_tg(text: str):
    """(source, checked graph shapes) of a one-model program; fails on any diagnostic error."""
    result = front_end("case.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    checked, _ = shapes.check(result.program)
    return emit.emit(checked, "case.tg"), checked.models[0]


def diagnostics(text: str) -> list[Diagnostic]:
    result = front_end("case.tg", text=text)
    if any(d.is_error for d in result.diagnostics):
        return result.diagnostics
    try:
        shapes.check(result.program)
    except CompileError as exc:
        return list(exc.diagnostics)
    return []


def build(text: str):
    """Compile, exec and instantiate; returns (module, inputs, expected output types, source)."""
    source, model = compile_tg(text)
    namespace: dict = {}
    exec(compile(source, "case.py", "exec"), namespace)
    cls = namespace[model.graph.name]
    module = cls(*[shapes.PLACEHOLDER_WIDTH] * len(model.required))
    inputs = []
    for inp in model.graph.inputs:
        t = model.types[inp.name]
        size = [BATCH] + [UNSIZED if d.size is None else d.size.value for d in t.dims[1:]]
        inputs.append(torch.zeros(size, dtype=DTYPES[t.dtype]))
    expected = [model.types[v] for v in model.graph.outputs]
    return module, inputs, expected, source


def flat(source: str) -> str:
    """The source with black's line breaks undone, so asserts can look for whole calls."""
    text = re.sub(r"\s+", " ", source)
    return text.replace("( ", "(").replace(", )", ")").replace(" )", ")")


def run(text: str) -> str:
    """Check the real output shapes against the checker's, and that the module traces; the flat source."""
    module, inputs, expected, source = build(text)
    module.eval()
    with torch.no_grad():
        outs = module(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert len(outs) == len(expected)
    for out, t in zip(outs, expected):
        want = [BATCH] + [UNSIZED if d.size is None else d.size.value for d in t.dims[1:]]
        got = list(out.shape)
        assert len(got) == len(want), (got, t.show(), source)
        for g, w, d in zip(got[1:], want[1:], t.dims[1:]):
            if d.size is not None:  # an unsized dimension's run-time size depends on the input's
                assert g == w, (got, t.show(), source)
        assert got[0] == BATCH
    traced = torch.fx.symbolic_trace(module)
    with torch.no_grad():
        again = traced(*inputs)
    again = again if isinstance(again, tuple) else (again,)
    assert [list(a.shape) for a in again] == [list(o.shape) for o in outs]
    return flat(source)


def fails(text: str, code: str, message: str) -> None:
    found = diagnostics(text)
    errors = [d for d in found if d.is_error]
    assert errors, f"expected {code}, got no error"
    assert any(d.code == code and message in d.message for d in errors), \
        [(d.code, d.message) for d in errors]


def model(body: str, params: str = "") -> str:
    return f"model M({params}) {{\n{body}\n}}\n"


IMG = "    input img: [batch, channels=3, height=16, width=12]\n"
SEQ = "    input seq: [batch, channels=4, length=20]\n"


# ------------------------------------------------------------------------------ conv


@pytest.mark.parametrize("call", [
    "conv1d(8, 3)",
    "conv1d(8, 5, stride=2, padding=2, dilation=2, groups=2, bias=false)",
    'conv1d(8, 5, padding="same")',
    'conv1d(6, 3, padding="valid", stride=3)',
    'conv1d(4, 3, padding=1, padding_mode="reflect")',
    "conv1d(out_channels=8, kernel_size=[7], stride=[2], padding=[3])",
])
def test_conv1d(call):
    run(model(SEQ + f"    y = seq >> {call}"))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("call", [
    "conv2d(8, 3, padding=1)",
    "conv2d(6, [3, 5], stride=[2, 1], padding=[1, 2], dilation=[2, 1])",
    'conv2d(4, [4, 3], padding="same")',
    "conv2d(9, 1, groups=3)",
    "conv2d(5, 16, padding=2)",
    "conv2d(8, 3, stride=2) >> conv2d(8, 3, stride=2)",
])
def test_conv2d(call):
    run(model(IMG + f"    y = img >> {call}"))


def test_conv2d_emission_reads_like_torch():
    source = run("model M() {\n    input img: [batch, channels=1, height=28, width=28]\n"
                 "    y = img >> conv2d(32, 3, padding=1) >> conv2d(64, [3, 5], stride=2, bias=false)\n}\n")
    assert "nn.Conv2d(1, 32, 3, padding=1)" in source
    assert "nn.Conv2d(32, 64, (3, 5), stride=2, bias=False)" in source
    assert "[batch, channels=64, height=13, width=12]" in source


def test_conv_symbolic_sizes_stay_symbolic():
    text = model("    input img: [batch, channels=c, height=s, width=s]\n"
                 "    y = img >> conv2d(out, k, stride=2, padding=1) >> conv2d(out, 3, padding=p) >> maxpool2d(k, stride=1)",
                 "c: int = 3, out: int = 8, s: int = 32, k: int = 3, p: int = 1")
    source = run(text)
    assert "nn.Conv2d(c, out, k, stride=2, padding=1)" in source
    assert "nn.Conv2d(out, out, 3, padding=p)" in source
    # sums are collected, so sizes read as formulas rather than as the steps that built them
    assert "[batch, channels=out, height=(s - k + 4) // 2 + p * 2 - k - 1, width=" in source
    _, m = compile_tg(text)
    out = m.types[m.graph.outputs[0]]
    assert out.dims[2].size.params() == {"s", "k", "p"}
    assert out.dims[2].size.value == 14


def test_conv_unsized_spatial_dims():
    text = model("    input img: [batch, channels=3, height, width]\n    y = img >> conv2d(8, 3)")
    source = run(text)
    # a 3x3 window takes 2 from each run-time size: the sizes stay expressions over the input's
    assert "[batch, channels=8, height=height - 2, width=width - 2]" in source


def test_conv_keeps_channel_name():
    source = run(model("    input img: [batch, maps=3, height=8, width=8]\n    y = img >> conv2d(4, 3)"))
    assert "[batch, maps=4, height=6, width=6]" in source


def test_conv_errors():
    fails(model(SEQ + "    y = seq >> conv1d(8, 25)"), "E055", "kernel size 25 is larger than dimension `length`")
    fails(model(SEQ + "    y = seq >> conv1d(8, 9, dilation=3)"), "E055", "with dilation 3 spans 25")
    fails(model(SEQ + "    y = seq >> conv1d(6, 3, groups=3)"), "E053", "must divide the input channels")
    fails(model(SEQ + "    y = seq >> conv1d(5, 3, groups=2)"), "E053", "must divide `out_channels`")
    fails(model(SEQ + '    y = seq >> conv1d(8, 3, stride=2, padding="same")'), "E055", 'needs stride 1')
    fails(model(IMG + "    y = img >> conv2d(8, [3, 3, 3])"), "E055", "`kernel_size` has 3 values")
    fails(model(IMG + "    y = img >> conv1d(8, 3)"), "E051", "`img` has 4 dimensions")
    fails(model(SEQ + "    y = seq >> conv2d(8, 3)"), "E051", "but 4 are needed")
    fails(model("    input ids: long[batch, channels=3, length=9]\n    y = ids >> conv1d(8, 3)"), "E054",
          "floating-point")
    fails(model("    input img: [batch, channels, height=8, width=8]\n    y = img >> conv2d(8, 3)"), "E051",
          "channel dimension `channels`")


def test_conv_symbolic_groups_assert():
    source = run(model(SEQ.replace("channels=4", "channels=c") + "    y = seq >> conv1d(8, 3, groups=g)",
                       "c: int = 4, g: int = 2"))
    flat = " ".join(source.split())
    assert "c % g == 0" in flat and "8 % g == 0" in flat and "got c={c}, g={g}" in flat


# ------------------------------------------------------------------------------ pool


@pytest.mark.parametrize("call", [
    "maxpool2d(2)",
    "maxpool2d(3, stride=2, padding=1)",
    "maxpool2d(3, stride=2, ceil_mode=true)",
    "maxpool2d([2, 3], stride=[1, 2], dilation=2)",
    "maxpool2d(2, stride=3, padding=1, ceil_mode=true)",
    "avgpool2d(2)",
    "avgpool2d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)",
    "avgpool2d(5, stride=3, divisor_override=3)",
    "adaptive_avgpool2d(1)",
    "adaptive_avgpool2d([2, 3])",
    "adaptive_avgpool2d(output_size=[7, 20])",
])
def test_pool(call):
    run(model(IMG + f"    y = img >> {call}"))


@pytest.mark.parametrize("size", [4, 5, 6, 7, 8, 9])
def test_pool_ceil_mode_matches_torch(size):
    for call in ("maxpool2d(2, stride=3, padding=1, ceil_mode=true)", "avgpool2d(3, stride=2, ceil_mode=true)",
                 "maxpool2d(3, stride=4, padding=1, ceil_mode=true)"):
        run(model(f"    input img: [batch, channels=2, height={size}, width={size + 1}]\n    y = img >> {call}"))


def test_pool_symbolic_ceil_mode_asserts_formula():
    text = model("    input img: [batch, channels=2, height=s, width=s]\n"
                 "    y = img >> maxpool2d(2, stride=3, padding=1, ceil_mode=true)", "s: int = 4")
    source = run(text)
    assert "assert" in source and "ceil_mode" in source
    plain = run(model("    input img: [batch, channels=2, height=s, width=s]\n"
                      "    y = img >> maxpool2d(2) >> avgpool2d(3, stride=2, ceil_mode=true)", "s: int = 32"))
    assert "assert" not in plain
    assert "height=s // 2 // 2" in plain


def test_pool_emission():
    source = run(model(IMG + "    y = img >> maxpool2d(2) >> avgpool2d(3, stride=1, padding=1, count_include_pad=false)"
                       " >> adaptive_avgpool2d([2, 3])"))
    assert "nn.MaxPool2d(2)" in source
    assert "nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)" in source
    assert "nn.AdaptiveAvgPool2d((2, 3))" in source


def test_pool_errors():
    fails(model(IMG + "    y = img >> maxpool2d(2, padding=2)"), "E055", "at most half of `kernel_size`")
    fails(model(IMG + "    y = img >> avgpool2d(20)"), "E055", "larger than dimension `height`")
    fails(model(SEQ + "    y = seq >> maxpool2d(2)"), "E051", "`seq` has 3 dimensions")
    fails(model(IMG + "    y = img >> avgpool2d(2, divisor_override=0)"), "E055", "`divisor_override` must be positive")
    fails(model(IMG + "    y = img >> adaptive_avgpool2d(0)"), "E055", "`output_size` must be positive")
    fails(model(IMG + "    y = img >> adaptive_avgpool2d([1, 2, 3])"), "E055", "`output_size` has 3 values")


# ------------------------------------------------------------------------------ reshape family


@pytest.mark.parametrize("call,shown", [
    ("flatten", "[batch, feature=576]"),
    ("flatten(2)", "[batch, channels=3, feature=192]"),
    ("flatten(1, 2)", "[batch, feature=48, width=12]"),
    ("flatten(start_dim=channels, end_dim=height)", "[batch, feature=48, width=12]"),
    ("flatten(-1)", "[batch, channels=3, height=16, width=12]"),
    ("flatten >> linear(10)", "[batch, feature=10]"),
])
def test_flatten(call, shown):
    source = run(model(IMG + f"    y = img >> {call}"))
    assert shown in source


def test_flatten_unsized_and_name_clash():
    source = run(model("    input x: [batch, token, feature=8, head=2]\n    y = x >> flatten(1, 2)"))
    assert "x.flatten(1, 2)" in source and "[batch, feature=token * 8, head=2]" in source
    source = run(model("    input x: [batch, token=2, head=3, feature=8]\n    y = x >> flatten(1, 2)"))
    assert "[batch, 6, feature=8]" in source
    source = run(model("    input x: [batch, token, feature=8]\n    y = x >> flatten"))
    assert "[batch, feature=token * 8]" in source


def test_flatten_errors():
    fails(model(IMG + "    y = img >> flatten(0)"), "E052", "would merge the batch dimension `batch`")
    fails(model(IMG + "    y = img >> flatten(3, 1)"), "E055", "comes after `end_dim`")
    fails(model(IMG + "    y = img >> flatten(start_dim=hieght)"), "E052", "no dimension named `hieght`")
    fails(model(IMG + "    y = img >> flatten(7)"), "E052", "out of range")


@pytest.mark.parametrize("call,shown,emitted", [
    ("reshape([3, 192])", "[batch, 3, 192]", "img.flatten(1).unflatten(1, (3, 192))"),
    ("flatten >> reshape([3, 16, 12])", "[batch, 3, 16, 12]", "img.flatten(1).unflatten(1, (3, 16, 12))"),
    ("reshape([batch, -1])", "[batch, 576]", "img.flatten(1)"),
    ("reshape([channels, -1])", "[batch, channels=3, 192]", "img.flatten(2)"),
    ("reshape([channels, height, 3, 4])", "[batch, channels=3, height=16, 3, 4]", "img.unflatten(3, (3, 4))"),
    ("reshape([channels, height, width, 1])", "[batch, channels=3, height=16, width=12, 1]",
     "img.unflatten(3, (12, 1))"),
    ("reshape([height, channels, width])", "[batch, height=16, channels=3, width=12]",
     "img.flatten(1, 2).unflatten(1, (16, 3))"),
])
def test_reshape_images(call, shown, emitted):
    source = run(model(IMG + f"    y = img >> {call}"))
    assert shown in source and emitted in source


def test_reshape_heads():
    text = model("    input x: [batch, token, feature=d]\n"
                 "    a = x >> reshape([token, heads, -1])\n"
                 "    b = a >> reshape([token, d])\n"
                 "    c = x >> reshape([-1, 4, 16])\n"
                 "    e = x >> reshape([token, 1, d])\n"
                 "    output a, b, c, e", "d: int = 64, heads: int = 4")
    source = run(text)
    assert "nn.Unflatten(2, (heads, -1))" in source and "d % heads == 0" in source
    assert "b = a.flatten(2)" in source
    # -1 takes `token` and d // 64 more: no name, no size, and no assertion pinning d to 64
    assert "# [batch, token * d // 64, 4, 16] c = x.flatten(1).unflatten(1, (-1, 4, 16))" in source
    assert "d == 64" not in source
    source = run(model("    input x: [batch, token, feature=64]\n    y = x >> reshape([-1, 4, 16])"))
    assert "# [batch, token, 4, 16] y = x.unflatten(2, (4, 16))" in source


def test_reshape_moves_unsized_dim():
    text = model("    input x: [batch, token, a=4, b=16]\n    input y: [batch, token, feature=d]\n"
                 "    p = x >> reshape([4, token, -1])\n    q = y >> reshape([h, token, -1])\n"
                 "    r = y >> reshape([token, h, -1, 2])\n    output p, q, r", "d: int = 64, h: int = 4")
    source = run(text)
    assert "# [batch, 4, token, 16] p = x.flatten(1).unflatten(1, (4, -1, 16))" in source
    assert "nn.Unflatten(1, (h, -1, d // h))" in source and "nn.Unflatten(2, (h, -1, 2))" in source
    fails(model("    input x: [batch, token, a=4, b]\n    y = x >> reshape([b, 4, token])"), "E056",
          "several dimensions without a size")


def test_reshape_size_one_dims():
    run(model("    input x: [batch, feature=8]\n    y = x >> reshape([1, feature, 1]) >> reshape([feature])"))
    run(model("    input x: [batch, 1, feature=8]\n    y = x >> reshape([feature])"))
    run(model("    input x: [batch, feature=8]\n    y = x >> reshape([8])"))


def test_reshape_errors():
    fails(model(IMG + "    y = img >> reshape([3, 100])"), "E050", "has 576 elements per sample, but `shape` holds 300")
    fails(model(IMG + "    y = img >> reshape([-1, 7])"), "E050", "(7) do not divide")
    fails(model(IMG + "    y = img >> reshape([-1, -1])"), "E055", "-1 appears twice")
    fails(model(IMG + "    y = img >> reshape([channels, batch, -1])"), "E052", "cannot move the batch dimension")
    fails(model(IMG + "    y = img >> reshape([chanels, -1])"), "E052", "no dimension named `chanels`")
    fails(model(IMG + "    y = img >> reshape([0, -1])"), "E055", "must be positive")
    fails(model("    input x: [batch, token, feature=8]\n    y = x >> reshape([2, 4])"), "E050",
          "`token` of `x` [batch, token, feature=8] has no size")


@pytest.mark.parametrize("call,shown,emitted", [
    ("permute([0, 2, 3, 1])", "[batch, height=16, width=12, channels=3]", "img.permute(0, 2, 3, 1)"),
    ("permute([batch, width, height, channels])", "[batch, width=12, height=16, channels=3]",
     "img.permute(0, 3, 2, 1)"),
    ("permute([width, channels, height])", "[batch, width=12, channels=3, height=16]", "img.permute(0, 3, 1, 2)"),
    ("permute([-1, 1, 2])", "[batch, width=12, channels=3, height=16]", "img.permute(0, 3, 1, 2)"),
    ("transpose(1, 2)", "[batch, height=16, channels=3, width=12]", "img.transpose(1, 2)"),
    ("transpose(width, channels)", "[batch, width=12, height=16, channels=3]", "img.transpose(3, 1)"),
    ("transpose(-1, -2)", "[batch, channels=3, width=12, height=16]", "img.transpose(3, 2)"),
])
def test_permute_transpose(call, shown, emitted):
    source = run(model(IMG + f"    y = img >> {call}"))
    assert shown in source and emitted in source


def test_method_on_expression_is_parenthesised():
    source = run(model("    input a: [batch, token=3, feature=4]\n    input b: [batch, token=3, feature=4]\n"
                       "    y = add(a, b) >> transpose(1, 2) >> flatten"))
    assert "(a + b).transpose(1, 2).flatten(1)" in source


def test_permute_transpose_errors():
    fails(model(IMG + "    y = img >> permute([0, 2, 1])"), "E055", "`width` is missing")
    fails(model(IMG + "    y = img >> permute([1, 0, 2, 3])"), "E052", "moves the batch dimension `batch`")
    fails(model(IMG + "    y = img >> permute([1, 1, 2])"), "E055", "appears twice")
    fails(model(IMG + "    y = img >> permute([1, 2, 3, 4])"), "E052", "out of range")
    fails(model(IMG + "    y = img >> transpose(batch, 1)"), "E052", "would move the batch dimension")
    fails(model(IMG + "    y = img >> transpose(1, depth)"), "E052", "no dimension named `depth`")


# ------------------------------------------------------------------------------ norm


@pytest.mark.parametrize("call,emitted", [
    ("layernorm", "nn.LayerNorm(12)"),
    ("layernorm(eps=1e-6, affine=false)", "nn.LayerNorm(12, eps=1e-06, elementwise_affine=False)"),
    ("layernorm(bias=false)", "nn.LayerNorm(12, bias=False)"),
    ("batchnorm2d", "nn.BatchNorm2d(3)"),
    ("batchnorm2d(momentum=0.2, affine=false, track_running_stats=false)",
     "nn.BatchNorm2d(3, momentum=0.2, affine=False, track_running_stats=False)"),
    ("flatten >> batchnorm1d", "nn.BatchNorm1d(576)"),
    ("flatten(2) >> batchnorm1d(eps=0.001)", "nn.BatchNorm1d(3, eps=0.001)"),
])
def test_norm(call, emitted):
    source = run(model(IMG + f"    y = img >> {call}"))
    assert emitted in source


def test_norm_symbolic_width():
    source = run(model("    input x: [batch, token, feature=d]\n    y = x >> layernorm >> transpose(1, 2) >> batchnorm1d",
                       "d: int = 32"))
    assert "nn.LayerNorm(d)" in source and "nn.BatchNorm1d(d)" in source


def test_norm_errors():
    fails(model("    input x: [batch, token, feature]\n    y = x >> layernorm"), "E051",
          "dimension `feature` of `x` [batch, token, feature] has no size")
    fails(model("    input ids: long[batch, feature=4]\n    y = ids >> layernorm"), "E054", "floating-point")
    fails(model(IMG + "    y = img >> batchnorm1d"), "E051", "batchnorm1d takes [batch, features]")
    fails(model(SEQ + "    y = seq >> batchnorm2d"), "E051", "`seq` has 3 dimensions")
    fails(model(IMG + "    y = img >> batchnorm2d(momentum=2.0)"), "E055", "`momentum` must be between 0 and 1")
    fails(model(IMG + "    y = img >> layernorm(eps=0.0)"), "E055", "`eps` must be positive")


# ------------------------------------------------------------------------------ embedding


@pytest.mark.parametrize("decl,call,shown,emitted", [
    ("long[batch, token=7]", "embedding(100, 16)", "[batch, token=7, feature=16]", "nn.Embedding(100, 16)"),
    ("long[batch, token]", "embedding(vocab=50, dim=8, padding_idx=0)", "[batch, token, feature=8]",
     "nn.Embedding(50, 8, padding_idx=0)"),
    ("int32[batch]", "embedding(10, 4, padding_idx=-1)", "[batch, feature=4]", "nn.Embedding(10, 4, padding_idx=-1)"),
    ("long[batch, feature=3]", "embedding(10, 4)", "[batch, feature=3, embedding=4]", "nn.Embedding(10, 4)"),
    ("long[batch, token=7]", "embedding(100, 16) >> layernorm >> linear(4)", "[batch, token=7, feature=4]",
     "nn.LayerNorm(16)"),
])
def test_embedding(decl, call, shown, emitted):
    source = run(model(f"    input ids: {decl}\n    y = ids >> {call}"))
    assert shown in source and emitted in source


def test_embedding_symbolic():
    source = run(model("    input ids: long[batch, token]\n    y = ids >> embedding(vocab, width, padding_idx=pad)",
                       "vocab: int = 100, width: int = 8, pad: int = 1"))
    assert "nn.Embedding(vocab, width, padding_idx=pad)" in source
    assert "pad // vocab == 0" in source


def test_embedding_errors():
    fails(model("    input x: [batch, token=4]\n    y = x >> embedding(10, 4)"), "E054", "integer tensor")
    fails(model("    input ids: long[batch, token=4]\n    y = ids >> embedding(10, 4, padding_idx=10)"), "E055",
          "`padding_idx` (10) is out of range for 10 embeddings")
    fails(model("    input ids: long[batch, token=4]\n    y = ids >> embedding(10, 4, padding_idx=-11)"), "E055",
          "out of range")
    fails(model("    input ids: long[batch, token=4]\n    y = ids >> embedding(0, 4)"), "E055",
          "`num_embeddings` must be positive")


# ------------------------------------------------------------------------------ torch.compile


def test_vision_model_compiles_fullgraph():
    text = model(
        "    input img: [batch, channels=3, height=s, width=s]\n"
        + SEQ
        + "    input ids: long[batch, token=t]\n"
        "    h = img >> conv2d(c, 3, padding=1) >> batchnorm2d >> relu >> maxpool2d(2)\n"
        "    h2 = h >> conv2d(c, 3, stride=2, groups=g) >> avgpool2d(2, ceil_mode=true) >> adaptive_avgpool2d(2)\n"
        "    v = h2 >> flatten >> linear(32) >> layernorm\n"
        "    e = ids >> embedding(100, 32, padding_idx=0) >> reshape([token, 4, -1]) >> transpose(1, 2)\n"
        "    q = e >> permute([token, 1, 3]) >> reshape([token, 32]) >> mean(dim=token)\n"
        "    r = seq >> conv1d(8, 3, padding=\"same\") >> batchnorm1d >> flatten\n"
        "    output v, q, r",
        "s: int = 32, t: int = 6, c: int = 8, g: int = 2",
    )
    module, inputs, expected, _ = build(text)
    run(text)
    module.eval()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    with torch.no_grad():
        outs = compiled(*inputs)
        eager = module(*inputs)
    for a, b in zip(outs, eager):
        assert a.shape == b.shape
