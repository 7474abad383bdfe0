"""Verification at scale: big models on the meta device, long programs in linear time, run-time
dimension sizes chosen to satisfy the checker's requirements, empty repeats.

Timings are not asserted here (benchmarks/compile_scaling.py and benchmarks/big_models.py print
them); what is asserted is where a model runs, what it allocates, and the messages."""

from __future__ import annotations

import dataclasses
import pathlib
import resource
import shutil

import pytest
import torch

from tgc.compiler import pipeline
from tgc.compiler.emit import emit
from tgc.compiler.naming import attr_expr, name_program
from tgc.compiler.ops.registry import REGISTRY, Emission
from tgc.compiler.shapes import Dim, TType
from tgc.compiler.tensor_types import Assertion, Sym
from tgc.runtime.compile_time import verify as V
from tgc.runtime.compile_time.verify import (
    CANDIDATE_SIZES,
    SizeError,
    check_weights,
    choose_device,
    dim_sizes,
    expected_shape,
    load_source,
    run_model,
    verify,
)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "models"

# goldens that cover the ops whose meta kernels differ most from their CPU ones
META_GOLDENS = ["lstm", "gru_split", "attention_branches", "causal_attention", "cnn", "conv1d",
                "embedding", "shape_ops", "merge_ops", "std_transformer_encoder", "std_ft_transformer",
                "frozen_load", "repeat"]


def checked_text(text: str, path: str = "t.tg", params=()):
    result = pipeline.check(path, pipeline.Options(params=tuple(params)), text=text)
    assert result.checked is not None, [d.message for d in result.diagnostics]
    return result.checked


def with_model(checked, **changes):
    """A copy of `checked` whose first model has `changes` (types, runtime_requires)."""
    shapes = dataclasses.replace(checked.models[0], **changes)
    return dataclasses.replace(checked, models=[shapes, *checked.models[1:]]), shapes


def loaded(checked, path: str = "t.tg"):
    names = name_program(checked)
    namespace, error = load_source(emit(checked, path, names), path)
    assert error is None, error
    if hasattr(namespace, "_load_weights"):
        namespace._load_weights = lambda module, path, weights_dir: None
    return namespace, names


# ------------------------------------------------------------------------------ meta device


@pytest.mark.parametrize("name", META_GOLDENS)
def test_meta_run_observes_what_the_cpu_run_does(name, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    checked = pipeline.check(f"{name}.tg").checked
    assert verify(checked, f"{name}.tg", device="meta") == []
    namespace, names = loaded(checked, f"{name}.tg")
    for shapes, graph_names in zip(checked.models, names.models):
        meta = run_model(namespace, graph_names.cls, shapes, graph_names, device="meta")
        cpu = run_model(namespace, graph_names.cls, shapes, graph_names, device="cpu")
        assert meta.error is None and cpu.error is None
        assert meta.device == "meta" and meta.meta_error is None  # no fallback for tgc's own ops
        assert all(p.is_meta for p in meta.module.parameters())
        assert meta.observed.keys() == cpu.observed.keys() and meta.observed
        for value, real in cpu.observed.items():
            got = meta.observed[value]
            if isinstance(real, torch.Tensor):
                assert got.is_meta and (got.shape, got.dtype) == (real.shape, real.dtype), value


def test_a_difference_reads_the_same_on_meta():
    checked = checked_text("model M {\n    input x: [batch, feature=4]\n    y = x >> linear(6) >> relu\n}\n")
    t = checked.models[0].types["y"]
    five = t.replace_dim(-1, Dim("feature", Sym.const(5)))
    bad, _ = with_model(checked, types={**checked.models[0].types, "y": five})
    expected = ["M: `y` (relu, t.tg:3): checker says [2, 5], torch gives [2, 6]"]
    assert verify(bad, "t.tg", device="meta") == expected
    assert verify(bad, "t.tg", device="cpu") == expected


def test_big_model_runs_on_meta_and_allocates_nothing():
    # 2 x 10^10 weights: 80 GB of float32 if anything were real
    text = ("model Wide {\n    input x: [batch, feature=100000]\n"
            "    y = x >> linear(100000) >> linear(100000)\n    output y\n}\n")
    checked = checked_text(text, "wide.tg")
    shapes = checked.models[0]
    assert choose_device(checked, shapes, dim_sizes(shapes)) == ("meta", 2 * (10**10 + 10**5))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    assert verify(checked, "wide.tg") == []
    t = shapes.types["y"]
    narrower = t.replace_dim(-1, Dim("feature", Sym.const(99999)))
    bad, _ = with_model(checked, types={**shapes.types, "y": narrower})
    assert verify(bad, "wide.tg") == [
        "Wide: `y` (linear, wide.tg:3): checker says [2, 99999], torch gives [2, 100000]"
    ]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1024 * 1024  # under 1 GB more


def test_small_model_runs_for_real():
    checked = checked_text("model M {\n    input x: [batch, token, feature=4]\n    y = x >> linear(8)\n}\n")
    shapes = checked.models[0]
    assert choose_device(checked, shapes, dim_sizes(shapes)) == ("cpu", 40)


def test_many_values_run_on_meta_although_the_weights_are_few():
    # 2 x 3 x 4,000,000 elements per value: the values, not the weights, are what would be big
    checked = checked_text("model M {\n    input x: [batch, token, feature=4000000]\n"
                           "    y = x >> relu >> sigmoid\n}\n")
    shapes = checked.models[0]
    assert choose_device(checked, shapes, dim_sizes(shapes)) == ("meta", None)


def _reads_a_value(monkeypatch):
    """relu emitted with an `.item()`: traceable and runnable for real, not on meta."""
    spec = REGISTRY["relu"]

    def emit_relu(ctx):
        return Emission(call=f"torch.relu({ctx.exprs[0]}) + {ctx.exprs[0]}.sum().item() * 0")

    monkeypatch.setitem(REGISTRY, "relu", dataclasses.replace(spec, emit=emit_relu))


def test_what_meta_cannot_run_falls_back_to_cpu(monkeypatch):
    _reads_a_value(monkeypatch)
    checked = checked_text("model M {\n    input x: [batch, feature=4]\n    y = x >> linear(6) >> relu\n}\n")
    assert verify(checked, "t.tg", device="meta") == []
    namespace, names = loaded(checked)
    run = run_model(namespace, names.models[0].cls, checked.models[0], names.models[0], device="meta")
    assert run.error is None and run.device == "cpu"
    assert "item() cannot be called on meta tensors" in run.meta_error
    assert tuple(run.observed["y"].shape) == (2, 6) and not run.observed["y"].is_meta


def test_a_model_too_big_for_the_fallback_reports_the_meta_error(monkeypatch):
    _reads_a_value(monkeypatch)
    monkeypatch.setattr(V, "REAL_FALLBACK_LIMIT", 10)
    checked = checked_text("model M {\n    input x: [batch, feature=4]\n    y = x >> linear(6) >> relu\n}\n")
    (message,) = verify(checked, "t.tg", device="meta")
    assert message.startswith("M: the emitted forward fails on zero inputs (x: [2, 4]): RuntimeError: ")
    assert message.endswith("(on the meta device; not rerun with real tensors: "
                            "the model has 30 weight elements)")


def test_check_weights_reads_the_shapes_from_a_meta_module(tmp_path):
    src = tmp_path / "model.tg"
    shutil.copy(GOLDEN / "frozen_load.tg", src)
    checked = pipeline.check(str(src)).checked
    namespace, names = loaded(checked, str(src))
    shapes = checked.models[0]
    model = V.construct(getattr(namespace, names.models[0].cls), V.constructor_args(shapes))
    (load,) = shapes.graph.loads
    attr = next(a for i, a in names.models[0].attrs.items() if shapes.graph.nodes[i].label == load.node_label)
    state = getattr(model, attr).state_dict()
    assert "y.1.num_batches_tracked" in state  # an int64 buffer, compared by shape too
    (tmp_path / "weights").mkdir()
    torch.save(state, tmp_path / "weights" / "encoder.pt")
    assert check_weights(checked, str(src)) == []
    state["y.0.weight"] = torch.zeros(8, 5)
    torch.save(state, tmp_path / "weights" / "encoder.pt")
    (diag,) = check_weights(checked, str(src))
    assert diag.code == "E039" and "`y.0.weight` [8, 5] (needs [8, 12])" in diag.message


# ------------------------------------------------------------------------------ long programs


def chain(n_ops: int, per_statement: int = 8) -> str:
    """`x >> relu >> linear(8) >> relu >> ...`, `per_statement` ops to a statement."""
    lines = ["model Long {", "    input x: [batch, feature=8]"]
    prev, count, k = "x", 0, 0
    while count < n_ops:
        m = min(per_statement, n_ops - count)
        ops = " >> ".join("relu" if (count + i) % 2 == 0 else "linear(8)" for i in range(m))
        lines.append(f"    h{k} = {prev} >> {ops}")
        prev, count, k = f"h{k}", count + m, k + 1
    lines += [f"    output {prev}", "}"]
    return "\n".join(lines) + "\n"


def test_one_wrong_call_in_a_long_chain_is_one_message():
    # the common prefix and suffix of the call order are not handed to difflib
    checked = checked_text(chain(400))
    names = name_program(checked)
    source = emit(checked, "t.tg", names)
    attr = names.models[0].attrs[101]
    call = attr_expr(attr) + "("
    assert call in source
    changed = source.replace(call, "(")
    messages = verify(checked, "t.tg", source=changed)
    node = checked.models[0].graph.nodes[101]
    assert messages == [f"Long: `{node.target}` (linear, t.tg:{node.span.line}): the IR expects a call of "
                        f"submodule `{attr_expr(attr)}` here, torch calls none"]


def test_values_are_compared_in_graph_order():
    checked = checked_text(chain(40))
    shapes = checked.models[0]
    types = dict(shapes.types)
    for value in ("h4", "h1.9"):  # tampered out of order: reported in the order the graph gives them
        types[value] = types[value].replace_dim(-1, Dim("feature", Sym.const(9)))
    bad, _ = with_model(checked, types=types)
    messages = verify(bad, "t.tg", source=emit(checked, "t.tg"))  # the module of the true types
    assert [m.split("`")[1] for m in messages] == ["h1.9", "h4"]


@pytest.mark.slow
def test_a_chain_of_10000_ops_verifies():
    checked = checked_text(chain(10_000))
    shapes = checked.models[0]
    assert choose_device(checked, shapes, dim_sizes(shapes))[0] == "cpu"
    assert verify(checked, "t.tg") == []


# ------------------------------------------------------------------------------ run-time sizes


POOL = ("model Pool {\n    input img: [batch, channel=3, height, width]\n"
        "    y = img >> maxpool2d(2)\n    output y\n}\n")
H, W = Sym.dim("height"), Sym.dim("width")


def pooled(requires: list[Assertion], rt_height: Sym | None = None):
    """The pool program with `y`'s type and the run-time requirements written by hand, so that
    these tests do not depend on how far the checker computes run-time sizes."""
    checked = checked_text(POOL, "p.tg")
    shapes = checked.models[0]
    img = shapes.types["img"]
    y = TType((img.dims[0], img.dims[1], Dim.of("height", rt_height or H // 2), Dim.of("width", W // 2)))
    return with_model(checked, types={**shapes.types, "y": y}, runtime_requires=requires)


def test_expected_shape_evaluates_run_time_sizes():
    t = TType((Dim("batch", None, batch=True), Dim.of("token", Sym.dim("token") * 2 + 1),
               Dim("feature", Sym.param("d", 7)), Dim("other", None), Dim(None, Sym.const(4))))
    assert expected_shape(t, {"batch": 2, "token": 3}) == [2, 7, 7, None, 4]
    t = TType((Dim.of("height", Sym.dim("height") - Sym.param("k", 3) + 1),))
    assert expected_shape(t, {"height": 8}, {"k": 3}) == [6]
    assert expected_shape(t, {"height": 8}) == [None]  # `k` unknown: a wildcard, not a crash


def test_one_common_size_when_it_fits():
    _, shapes = pooled([Assertion((H % 4).equals(0), "h"), Assertion(W.at_least(5), "w")])
    assert dim_sizes(shapes) == {"batch": 2, "height": 8, "width": 8}


def test_sizes_name_by_name_when_no_common_one_fits():
    checked, shapes = pooled([Assertion(H.at_least(7), "h"), Assertion(W.equals(3), "w")])
    assert dim_sizes(shapes) == {"batch": 2, "height": 7, "width": 3}
    assert verify(checked, "p.tg") == []
    wrong, _ = pooled([Assertion(H.at_least(7), "h"), Assertion(W.equals(3), "w")], rt_height=H // 3)
    assert verify(wrong, "p.tg") == [
        "Pool: `y` (maxpool2d, p.tg:3): checker says [2, 3, 2, 1], torch gives [2, 3, 3, 1]"
    ]


def test_computed_sizes_must_come_out_positive():
    # no requirement is written, but `height // 2` of a 1-row image would be empty
    _, shapes = pooled([], rt_height=(H - 4) // 2)
    assert dim_sizes(shapes) == {"batch": 2, "height": 6, "width": 6}


def test_unsatisfiable_requirements_are_a_message():
    requires = [Assertion(H.at_least(5000), "maxpool2d: too few rows"), Assertion(W.at_least(2), "w")]
    checked, shapes = pooled(requires)
    with pytest.raises(SizeError):
        dim_sizes(shapes)
    assert verify(checked, "p.tg") == [
        "Pool: no sizes of the run-time dimensions height, width satisfy `height >= 5000` "
        f"(maxpool2d: too few rows): tried {', '.join(map(str, CANDIDATE_SIZES))} and every size up to 2048"
    ]


def test_zero_inputs_use_the_chosen_sizes():
    _, shapes = pooled([Assertion(H.at_least(7), "h"), Assertion(W.equals(3), "w")])
    (img,) = V.zero_inputs(shapes, "meta")
    assert img.is_meta and tuple(img.shape) == (2, 3, 7, 3)


def _checker_gives_run_time_sizes(checked, value: str) -> bool:
    return any(d.rt is not None for d in checked.models[0].types[value].dims)


def test_pool_program_verifies_with_the_checkers_run_time_sizes():
    checked = checked_text(POOL, "p.tg")
    assert _checker_gives_run_time_sizes(checked, "y")
    assert verify(checked, "p.tg") == []
    assert verify(checked, "p.tg", device="meta") == []


def test_conv_pool_chain_gets_sizes_its_windows_fit():
    checked = checked_text("model C {\n    input img: [batch, channel=3, height, width]\n"
                           "    y = img >> conv2d(8, 5) >> maxpool2d(3) >> conv2d(4, 3, stride=2)\n"
                           "    output y\n}\n")
    assert _checker_gives_run_time_sizes(checked, "y")
    shapes = checked.models[0]
    assert shapes.runtime_requires  # the windows need more rows than the first candidates give
    sizes = dim_sizes(shapes)
    assert sizes["height"] == sizes["width"] > 3
    assert verify(checked, "c.tg") == []


# ------------------------------------------------------------------------------ empty repeats


REPEAT = ("model Deep(depth: int = 2) {\n    input x: [batch, feature=4]\n"
          "    h = x >> linear(8)\n    y = h >> repeat(depth) { linear(8) >> relu } >> dropout(0.5)\n"
          "    output y\n}\n")


def test_an_empty_repeat_is_not_a_missing_call():
    checked = checked_text(REPEAT, params=[("depth", 0)])
    namespace, names = loaded(checked)
    run = run_model(namespace, names.models[0].cls, checked.models[0], names.models[0])
    assert any(isinstance(m, torch.nn.Sequential) and len(m) == 0 for m in run.module.children())
    assert verify(checked, "t.tg") == []
    assert verify(checked_text(REPEAT, params=[("depth", 2)]), "t.tg") == []


def test_a_missing_call_next_to_an_empty_repeat_is_still_reported(monkeypatch):
    spec = REGISTRY["dropout"]
    skip = dataclasses.replace(spec, emit=lambda ctx: Emission(call=ctx.exprs[0], module="nn.Dropout(0.5)"))
    monkeypatch.setitem(REGISTRY, "dropout", skip)
    (message,) = verify(checked_text(REPEAT, params=[("depth", 0)]), "t.tg")
    assert "(dropout, t.tg:4): the IR expects a call of submodule" in message
