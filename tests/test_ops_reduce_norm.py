"""The reductions (`sum logsumexp argmax argmin min`, `one_hot`, `cosine_similarity`) and the
norms (`groupnorm instancenorm1d/2d rmsnorm batchnorm3d`, `layernorm(start_dim=)`).

Each case compiles a small `.tg` model in-process and runs the emitted module on real tensors,
for several run-time sizes and parameter values, comparing every output's shape and dtype with
the checker's type; error cases assert the diagnostic code and message; emission cases the code.
"""

from __future__ import annotations

import pytest

import torch

from tgc.compiler import emit, shapes
from tgc.compiler.diagnostics import CompileError, Diagnostic
from tgc.compiler.pipeline import front_end
from tgc.runtime.compile_time.verify import expected_shape

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.long, "int32": torch.int32,
          "bool": torch.bool}


def compile_tg(text: str, params: dict | None = None):
    """(source, checked model shapes) of a one-model program; fails on any diagnostic error."""
    result = front_end("case.tg", text=text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, [d.message for d in errors]
    checked, _ = shapes.check(result.program, list((params or {}).items()))
    return emit.emit(checked, "case.tg"), checked.models[0]


def diagnostics(text: str, params: dict | None = None) -> list[Diagnostic]:
    result = front_end("case.tg", text=text)
    if any(d.is_error for d in result.diagnostics):
        return [d for d in result.diagnostics if d.is_error]
    try:
        shapes.check(result.program, list((params or {}).items()))
    except CompileError as exc:
        return [d for d in exc.diagnostics if d.is_error]
    return []


def error(text: str, code: str, fragment: str, params: dict | None = None) -> Diagnostic:
    diags = diagnostics(text, params)
    assert diags, "expected an error"
    assert diags[0].code == code and fragment in diags[0].message, [(d.code, d.message) for d in diags]
    return diags[0]


def module_of(source: str, name: str, **params):
    namespace: dict = {}
    exec(compile(source, "case.py", "exec"), namespace)
    return namespace[name](**params)


def check_runs(text: str, sizes: list[dict[str, int]], params: list[dict] | None = None) -> str:
    """Compile `text`, then for each parameter override and each set of run-time sizes run the
    module and compare every output with its checked type; the source (of the first override)."""
    first = None
    for override in params or [{}]:
        source, model = compile_tg(text, override)
        first = first or source
        values = dict(model.param_values)
        module = module_of(source, model.graph.name, **override)
        module.train()
        for dims in sizes:
            dims = {"batch": 2, **dims}
            inputs = []
            for inp in model.graph.inputs:
                t = model.types[inp.name]
                shape = expected_shape(t, dims, values)
                if t.dtype == "int64":
                    inputs.append(torch.zeros(shape, dtype=torch.long))
                else:
                    inputs.append(torch.randn(shape).to(DTYPES[t.dtype]))
            with torch.no_grad():
                outs = module(*inputs)
            outs = outs if isinstance(outs, tuple) else (outs,)
            for name, real in zip(model.graph.outputs, outs):
                t = model.types[name]
                assert list(real.shape) == expected_shape(t, dims, values), (name, override, dims, t.show())
                assert real.dtype == DTYPES[t.dtype], (name, t.dtype, real.dtype)
    return first


def has(source: str, snippet: str) -> bool:
    """Whether the emitted `source` holds `snippet`, however black wrapped it."""
    return "".join(snippet.split()) in "".join(source.split())


def types_of(text: str, params: dict | None = None) -> dict[str, str]:
    _, model = compile_tg(text, params)
    return {name: model.types[name].show() for name in model.graph.outputs}


# ------------------------------------------------------------------------------ sum, logsumexp


SUMS = """
model M(d: int = 4) {
    input x: [batch, chan=d, height, width=5]
    input n: int32[batch, token, feature=3]
    input m: bool[batch, token]
    a = x >> sum(dim=[height, width])
    b = x >> sum(dim=[-1, chan], keepdim=true)
    c = x >> logsumexp(dim=height)
    e = x >> logsumexp(dim=[1, 2, 3])
    f = n >> sum(dim=token)
    g = m >> sum(dim=-1)
    output a, b, c, e, f, g
}
"""


def test_sum_and_logsumexp_shapes_and_dtypes():
    assert types_of(SUMS) == {
        "a": "[batch, chan=d]",
        "b": "[batch, chan=1, height, width=1]",
        "c": "[batch, chan=d, width=5]",
        "e": "[batch]",
        "f": "int64[batch, feature=3]",  # torch sums integers in int64
        "g": "int64[batch]",
    }
    source = check_runs(SUMS, [{"height": 3, "token": 2}, {"height": 1, "token": 7}], [{}, {"d": 2}])
    assert has(source, "a = x.sum(dim=(2, 3))")
    assert has(source, "x.sum(dim=(3, 1), keepdim=True)")
    assert has(source, "x.logsumexp(dim=2)")
    assert has(source, "g = m.sum(dim=-1)")


def test_sum_dim_from_a_parameter_reads_it():
    text = """
model M(k: int = 1, keep: bool = false) {
    input x: [batch, token, feature=4]
    y = x >> sum(dim=k, keepdim=keep)
    output y
}
"""
    assert types_of(text) == {"y": "[batch, feature=4]"}
    source = check_runs(text, [{"token": 3}])
    assert has(source, "x.sum(dim=self.k, keepdim=self.keep)")
    # the shapes were checked for k=1: another dimension is refused when the module is built
    with pytest.raises(AssertionError):
        module_of(source, "M", k=2)
    assert types_of(text, {"k": -1, "keep": True}) == {"y": "[batch, token, feature=1]"}


@pytest.mark.parametrize("call, code, fragment", [
    ("sum(dim=[token, 1])", "E055", "appears twice in `dim`"),
    ("sum(dim=[feature, -1])", "E055", "appears twice in `dim`"),
    ("sum(dim=[])", "E025", "non-empty list"),
    ("sum(dim=batch)", "E052", "reducing the batch dimension"),
    ("sum(dim=[token, 0])", "E052", "reducing the batch dimension"),
    ("sum(dim=3)", "E052", "out of range"),
    ("sum(dim=height)", "E052", "no dimension named `height`"),
    ("sum", "E", ""),
    ("logsumexp(dim=1)", "E054", "floating-point"),
    ("argmax(dim=[1, 2])", "E025", ""),
    ("argmin(dim=batch)", "E052", "reducing the batch dimension"),
    ("cosine_similarity(dim=feature)", "E0", ""),  # one input of two
])
def test_reduction_errors(call, code, fragment):
    dtype = "long" if call.startswith("logsumexp") else ""
    text = f"""
model M {{
    input x: {dtype}[batch, token, feature=4]
    y = x >> {call}
    output y
}}
"""
    diags = diagnostics(text)
    assert diags and diags[0].code.startswith(code) and fragment in diags[0].message, \
        [(d.code, d.message) for d in diags]


def test_sum_keeps_the_batch_with_keepdim():
    text = """
model M {
    input x: [batch, feature=4]
    y = x >> sum(dim=[0, 1], keepdim=true)
    output y
}
"""
    check_runs(text, [{}])
    assert types_of(text)["y"] == "[batch=1, feature=1]"


# ------------------------------------------------------------------------------ argmax, argmin, min


ARGS = """
model M {
    input x: [batch, token, feature=6]
    input n: int32[batch, feature=3]
    a = x >> argmax(dim=-1)
    b = x >> argmin(dim=token, keepdim=true)
    c = n >> argmax(dim=1)
    d = x >> min(dim=feature)
    e = min(x, x >> relu, x)
    f = n >> min(dim=-1, keepdim=true)
    output a, b, c, d, e, f
}
"""


def test_argmax_argmin_min():
    assert types_of(ARGS) == {
        "a": "int64[batch, token]",
        "b": "int64[batch, token=1, feature=6]",
        "c": "int64[batch]",
        "d": "[batch, token]",
        "e": "[batch, token, feature=6]",
        "f": "int32[batch, feature=1]",
    }
    source = check_runs(ARGS, [{"token": 1}, {"token": 4}])
    assert has(source, "a = x.argmax(dim=-1)")
    assert has(source, "b = x.argmin(dim=1, keepdim=True)")
    assert has(source, "d = x.amin(dim=-1)")  # values only, as `max` gives `.amax`
    assert has(source, "torch.minimum(torch.minimum(x, torch.relu(x)), x)")


def test_argmax_of_bool_is_refused():
    error("""
model M {
    input m: bool[batch, token]
    y = m >> argmax(dim=token)
    output y
}
""", "E054", "bool")


def test_min_needs_dim_with_one_input():
    error("""
model M {
    input x: [batch, feature=4]
    y = x >> min
    output y
}
""", "E055", "needs `dim=`")


# ------------------------------------------------------------------------------ one_hot


ONE_HOT = """
model M(n: int = 5) {
    input labels: long[batch, token]
    a = labels >> one_hot(n)
    b = labels >> one_hot(num_classes=3, name=digit)
    output a, b
}
"""


def test_one_hot():
    assert types_of(ONE_HOT) == {"a": "int64[batch, token, class=n]", "b": "int64[batch, token, digit=3]"}
    source = check_runs(ONE_HOT, [{"token": 1}, {"token": 6}], [{}, {"n": 2}])
    assert has(source, "a = F.one_hot(labels, num_classes=self.n)")
    assert has(source, "b = F.one_hot(labels, num_classes=3)")


@pytest.mark.parametrize("dtype, call, code, fragment", [
    ("int32", "one_hot(4)", "E054", "long class indices"),
    ("", "one_hot(4)", "E054", "long class indices"),
    ("long", "one_hot(0)", "E053", "`num_classes` must be positive, not 0"),
    ("long", "one_hot(-1)", "E055", "not supported"),
    ("long", "one_hot(4, name=token)", "E052", "already names a dimension"),
    ("long", "one_hot(4, name=2)", "E055", "must be a dimension name"),
])
def test_one_hot_errors(dtype, call, code, fragment):
    error(f"""
model M {{
    input labels: {dtype}[batch, token]
    y = labels >> {call}
    output y
}}
""", code, fragment)


def test_one_hot_num_classes_parameter_is_asserted():
    text = """
model M(n: int = 3) {
    input labels: long[batch]
    y = labels >> one_hot(n)
    output y
}
"""
    error(text, "E053", "`num_classes` (n) must be positive", {"n": 0})
    source, _ = compile_tg(text)
    with pytest.raises(AssertionError):
        module_of(source, "M", n=0)


# ------------------------------------------------------------------------------ cosine_similarity


COSINE = """
model M {
    input a: [batch, token, feature=8]
    input b: [batch, token, feature=8]
    s = cosine_similarity(a, b)
    t = cosine_similarity(a, b, dim=feature, eps=1e-6)
    u = cosine_similarity(a, b, dim=1)
    output s, t, u
}
"""


def test_cosine_similarity():
    assert types_of(COSINE) == {"s": "[batch, feature=8]", "t": "[batch, token]", "u": "[batch, feature=8]"}
    source = check_runs(COSINE, [{"token": 1}, {"token": 5}])
    assert has(source, "s = F.cosine_similarity(a, b)")
    assert has(source, "t = F.cosine_similarity(a, b, dim=-1, eps=1e-06)")
    assert has(source, "u = F.cosine_similarity(a, b)")  # dim=1 is torch's default


@pytest.mark.parametrize("b, call, code, fragment", [
    ("[batch, token, feature=4]", "cosine_similarity(a, b)", "E050", "dimension `feature`"),
    ("[batch, feature=8]", "cosine_similarity(a, b)", "E051", "dimensions"),
    ("double[batch, token, feature=8]", "cosine_similarity(a, b)", "E054", "float64"),
    ("long[batch, token, feature=8]", "cosine_similarity(a, b)", "E054", "floating-point"),
    ("[batch, token, feature=8]", "cosine_similarity(a, b, dim=0)", "E052", "batch"),
    ("[batch, token, feature=8]", "cosine_similarity(a, b, eps=0)", "E055", "positive"),
])
def test_cosine_similarity_errors(b, call, code, fragment):
    error(f"""
model M {{
    input a: [batch, token, feature=8]
    input b: {b}
    y = {call}
    output y
}}
""", code, fragment)


# ------------------------------------------------------------------------------ groupnorm


GROUPNORM = """
model M(c: int = 6, g: int = 3) {
    input x: [batch, chan=c, height, width]
    input v: [batch, feature=8]
    a = x >> groupnorm(g)
    b = v >> groupnorm(num_groups=2, eps=1e-3, affine=false)
    output a, b
}
"""


def test_groupnorm():
    assert types_of(GROUPNORM) == {"a": "[batch, chan=c, height, width]", "b": "[batch, feature=8]"}
    source = check_runs(GROUPNORM, [{"height": 1, "width": 1}, {"height": 3, "width": 2}],
                        [{}, {"c": 4, "g": 2}, {"c": 5, "g": 5}])
    assert has(source, "nn.GroupNorm(g, c)")
    assert has(source, "nn.GroupNorm(2, 8, eps=0.001, affine=False)")
    assert has(source, "c % g == 0")  # asserted in __init__ for other values
    with pytest.raises(AssertionError):
        module_of(source, "M", c=6, g=4)


def test_groupnorm_errors():
    base = """
model M {
    input x: [batch, chan=6, height=4]
    y = x >> %s
    output y
}
"""
    error(base % "groupnorm(4)", "E053", "must divide into `num_groups` (4) groups")
    error(base % "groupnorm(0)", "E053", "`num_groups` must be positive, not 0")
    error(base % "groupnorm(2, eps=0)", "E055", "`eps` must be positive")
    error("""
model M {
    input x: [batch, token, feature=4]
    y = x >> groupnorm(2)
    output y
}
""", "E051", "has no size")
    error("""
model M {
    input x: long[batch, chan=4]
    y = x >> groupnorm(2)
    output y
}
""", "E054", "floating-point")


def test_groupnorm_of_single_values_needs_a_batch_of_two():
    # torch refuses groups of one value in a batch of one (in `group_norm`, always): a requirement
    # on the batch, which verification's batch of 2 meets
    text = """
model M {
    input x: [batch, chan=4]
    y = x >> groupnorm(4)
    output y
}
"""
    _, model = compile_tg(text)
    assert [a.condition.render() for a in model.runtime_requires] == ["batch >= 2"]
    check_runs(text, [{}])
    _, model = compile_tg(text.replace("groupnorm(4)", "groupnorm(2)"))
    assert model.runtime_requires == []


# ------------------------------------------------------------------------------ instance norms


def test_instancenorm():
    text = """
model M(p: float = 0.2) {
    input x: [batch, chan=3, token]
    input y: [batch, chan=3, height=2, width=1]
    a = x >> instancenorm1d
    b = y >> instancenorm2d(affine=true, track_running_stats=true, momentum=p)
    output a, b
}
"""
    source = check_runs(text, [{"token": 2}, {"token": 5}])
    assert has(source, "nn.InstanceNorm1d(3)")
    assert has(source, "nn.InstanceNorm2d(3, momentum=p, affine=True, track_running_stats=True)")
    _, model = compile_tg(text)
    assert [a.condition.render() for a in model.runtime_requires] == ["token >= 2"]


@pytest.mark.parametrize("op, shape, code, fragment", [
    ("instancenorm1d", "[batch, chan=3]", "E051", "3 are needed"),
    ("instancenorm1d", "[batch, chan=3, length=1]", "E053", "must be at least 2"),
    ("instancenorm2d", "[batch, chan=3, height=1, width=1]", "E053", "must be at least 2"),
    ("instancenorm2d", "[batch, chan=3, length=4]", "E051", "4 are needed"),
    ("instancenorm2d", "[batch, chan, height=2, width=2]", "E051", "has no size"),
    ("instancenorm1d(momentum=2)", "[batch, chan=3, length=4]", "E055", "between 0 and 1"),
])
def test_instancenorm_errors(op, shape, code, fragment):
    error(f"""
model M {{
    input x: {shape}
    y = x >> {op}
    output y
}}
""", code, fragment)


def test_batchnorm3d():
    text = """
model M {
    input x: [batch, chan=2, depth, height=3, width=3]
    y = x >> batchnorm3d(affine=false)
    output y
}
"""
    source = check_runs(text, [{"depth": 1}, {"depth": 4}])
    assert has(source, "nn.BatchNorm3d(2, affine=False)")
    error(text.replace("depth, ", ""), "E051", "5 are needed")


# ------------------------------------------------------------------------------ layernorm, rmsnorm: start_dim


TRAILING = """
model M(h: int = 3, w: int = 4) {
    input x: [batch, token, height=h, width=w]
    a = x >> layernorm
    b = x >> layernorm(start_dim=height, bias=false)
    c = x >> rmsnorm(start_dim=-2)
    d = x >> rmsnorm(eps=1e-6, affine=false)
    output a, b, c, d
}
"""


def test_layernorm_and_rmsnorm_over_trailing_dimensions():
    source = check_runs(TRAILING, [{"token": 1}, {"token": 3}], [{}, {"h": 2, "w": 1}])
    assert has(source, "nn.LayerNorm(w)")
    assert has(source, "nn.LayerNorm((h, w), bias=False)")
    assert has(source, "nn.RMSNorm((h, w))")
    assert has(source, "nn.RMSNorm(w, eps=1e-06, elementwise_affine=False)")
    module = module_of(source, "M")
    a, b = [m for m in module.modules() if isinstance(m, torch.nn.LayerNorm)]
    c, d = [m for m in module.modules() if isinstance(m, torch.nn.RMSNorm)]
    assert tuple(b.weight.shape) == (3, 4) and b.bias is None
    assert tuple(c.weight.shape) == (3, 4) and d.weight is None


def test_layernorm_weights_are_counted_over_every_normalised_dimension():
    from tgc.compiler.ops.context import CostCtx
    from tgc.compiler.ops.registry import lookup

    _, model = compile_tg(TRAILING)
    counts = {}
    for index, node in enumerate(model.graph.nodes):
        spec = lookup(node.op)
        ctx = CostCtx(spec, node.span, [model.types[v] for v in node.inputs],
                      [model.types[v] for v in node.outputs], model.args[index])
        counts[node.outputs[0]] = spec.params_count(ctx)
    assert counts == {"a": 8, "b": 12, "c": 12, "d": 0}


@pytest.mark.parametrize("call, code, fragment", [
    ("layernorm(start_dim=token)", "E051", "dimension `token`"),
    ("layernorm(start_dim=1)", "E051", "dimension `token`"),
    ("rmsnorm(start_dim=0)", "E052", "batch dimension"),
    ("layernorm(start_dim=k)", "E056", "parameter"),
    ("rmsnorm(eps=0)", "E055", "`eps` must be positive"),
    ("layernorm(start_dim=4)", "E052", "out of range"),
])
def test_layernorm_start_dim_errors(call, code, fragment):
    error(f"""
model M(k: int = 2) {{
    input x: [batch, token, height=3, width=4]
    y = x >> {call}
    output y
}}
""", code, fragment)


def test_layernorm_default_is_unchanged():
    source, _ = compile_tg("""
model M {
    input x: [batch, token, feature=16]
    y = x >> layernorm(1e-6)
    output y
}
""")
    assert has(source, "nn.LayerNorm(16, eps=1e-06)")
