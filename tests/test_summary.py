"""`tgc summary`: parameter counts equal the emitted module's, MACs equal torch's FLOP counter / 2,
and the command never imports torch."""

from __future__ import annotations

import pathlib
import shlex
import subprocess
import sys

import pytest
from golden_util import GOLDEN

from tgc.compiler.cli import EXIT_OK, _input_option, _param_option, main
from tgc.compiler.emit import emit
from tgc.compiler.pipeline import Options, check
from tgc.compiler.summary import render, summarize

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = sorted((GOLDEN / "models").glob("*.tg"))
# models whose ops torch's FLOP counter sees in full (it counts no LSTM/GRU) and whose sizes are known
FLOP_MODELS = ["attention_branches", "cnn", "conv1d", "std_ft_transformer", "std_transformer_encoder",
               "two_tower"]


def _options(path: pathlib.Path) -> Options:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    inputs, params = [], []
    if first.startswith("# flags:"):
        words = shlex.split(first[len("# flags:"):])
        for flag, value in zip(words[::2], words[1::2]):
            (inputs if flag == "--input" else params).append(
                (_input_option if flag == "--input" else _param_option)(value))
    return Options(tuple(inputs), tuple(params))


def _modules(tg: pathlib.Path, monkeypatch):
    """(checked model, instantiated emitted module) for each model of a golden file."""
    from tgc.runtime.compile_time.verify import class_names, constructor_args, load_source

    monkeypatch.chdir(GOLDEN / "models")
    result = check(tg.name, _options(tg))
    assert result.ok, result.diagnostics
    namespace, error = load_source(emit(result.checked, tg.name), tg.name)
    assert error is None, error
    if hasattr(namespace, "_load_weights"):  # fresh weights: the counts are the same
        namespace._load_weights = lambda module, path, weights_dir: None
    for shapes, cls in zip(result.checked.models, class_names(result.checked)):
        yield result.checked, shapes, getattr(namespace, cls)(*constructor_args(shapes))


@pytest.mark.parametrize("tg", MODELS, ids=lambda p: p.stem)
def test_parameter_totals_equal_the_emitted_module(tg, monkeypatch):
    for checked, shapes, module in _modules(tg, monkeypatch):
        s = summarize(checked, shapes)
        assert s.problems == []
        assert s.total == sum(p.numel() for p in module.parameters())
        assert s.trainable == sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert s.frozen == s.total - s.trainable


@pytest.mark.parametrize("tg", MODELS, ids=lambda p: p.stem)
def test_row_names_are_the_emitted_modules_names(tg, monkeypatch):
    """The submodules `tgc summary` names are exactly the emitted module's `named_modules()`:
    every tg-level submodule (ops' own children, such as an `nn.Sequential`'s layers or
    attention's `out_proj`, and a repeat's step containers `h_repeat.0`, have no row)."""
    for checked, shapes, module in _modules(tg, monkeypatch):
        s = summarize(checked, shapes)
        paths = [r.module for r in s.rows if r.module is not None]
        assert len(paths) == len(set(paths)), paths
        by_path = dict(module.named_modules())
        assert [p for p in paths if p not in by_path] == []
        repeats = {r.module for r in s.rows if r.op.startswith("repeat")}
        rows = set(paths)

        def covered(name: str) -> bool:  # a row's own module or inside an op's own module
            parts = name.split(".")
            prefixes = [".".join(parts[:k]) for k in range(1, len(parts))]
            if any(p in rows and p not in repeats and not _is_class(s, p) for p in prefixes):
                return True  # a child of an op's module (nn.Sequential of `mlp`, `out_proj`)
            if any(r.startswith(name + ".") for r in rows) and not _is_class(s, name):
                return True  # the nn.Sequential of a statement's ops with weights (`h` of `h.0`)
            return name in rows or (parts[-1].isdigit() and ".".join(parts[:-1]) in repeats)

        assert [n for n in by_path if n and not covered(n)] == []


def _is_class(summary, path: str) -> bool:
    """Whether the row at `path` is a block call (a class of tgc's whose children have rows)."""
    return any(r.module == path and r.op.endswith("(block)") for r in summary.rows)


@pytest.mark.parametrize("name", FLOP_MODELS)
def test_macs_equal_half_of_torch_flops(name, monkeypatch):
    from torch.utils.flop_counter import FlopCounterMode

    from tgc.runtime.compile_time.verify import zero_inputs

    for checked, shapes, module in _modules(GOLDEN / "models" / f"{name}.tg", monkeypatch):
        s = summarize(checked, shapes)
        assert not s.unsized
        inputs = zero_inputs(shapes)
        # with gradients on, nn.MultiheadAttention takes its plain path, whose matrix products the
        # counter sees (its fused inference path is one opaque kernel); scaled_dot_product_attention
        # (`need_weights=False`) is counted on its math backend (the CPU flash kernel is not counted)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            module.eval()(*inputs)
        assert s.macs * 2 * inputs[0].shape[0] == counter.get_total_flops()


def test_summary_table(capsys):
    src = GOLDEN / "models" / "frozen_load.tg"
    assert main(["summary", str(src)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("model Finetune (frozen_load.tg)")
    assert "parameters: 219 (trainable 27, frozen 192)" in out
    assert "  y.0" in out  # the parts of a block, indented under it
    row = next(line for line in out.splitlines() if line.startswith("enc "))
    assert "encoder (block)" in row and "[batch, feature=width]" in row and "frozen" in row
    assert main(["summary", str(src), "--depth", "0"]) == EXIT_OK
    assert "y.0" not in capsys.readouterr().out


def test_parameters_and_inputs_change_the_counts(capsys):
    src = GOLDEN / "models" / "two_tower.tg"
    assert main(["summary", str(src), "--param", "hidden=10"]) == EXIT_OK
    # a: 784*10+10, b: 784*10+10, logits: 10*10+10
    assert "parameters: 15,810 (trainable 15,810, frozen 0)" in capsys.readouterr().out
    lstm = GOLDEN / "models" / "lstm.tg"
    assert main(["summary", str(lstm)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "at least" in out and "`token`" in out and "--input" in out
    assert main(["summary", str(lstm), "--input", "x=5,32"]) == EXIT_OK
    assert "at least" not in capsys.readouterr().out


def test_repeat_rows_sum_their_steps(monkeypatch):
    monkeypatch.chdir(GOLDEN / "models")
    result = check("std_transformer_encoder.tg")
    s = summarize(result.checked, result.checked.models[0])
    by_name = {r.name: r for r in s.rows}
    step1, step2 = by_name["transformer_encoder_layer #1"], by_name["transformer_encoder_layer #2"]
    assert by_name["encoded"].params == step1.params + step2.params
    top = next(r for r in s.rows if r.name == "h" and r.depth == 0)
    assert top.params == by_name["encoded"].params
    text = render(s, "std_transformer_encoder.tg")
    assert "repeat(layers) x2" in text


def test_summary_never_imports_torch():
    src = GOLDEN / "models" / "std_transformer_encoder.tg"
    code = ("import sys\nfrom tgc.compiler.cli import main\n"
            f"assert main(['summary', {str(src)!r}]) == 0\n"
            f"assert main(['graph', {str(src)!r}, '-o', '-']) == 0\n"
            "assert main(['ops', 'attention']) == 0\n"
            "assert 'torch' not in sys.modules, 'imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_sizes_given_on_the_command_line_show_as_values(capsys):
    # issue 13: "symbolic sizes even with --param/--input"
    two_tower = str(ROOT / "examples" / "two_tower.tg")
    assert main(["summary", two_tower]) == 0
    assert "[batch, feature=hidden]" in capsys.readouterr().out
    assert main(["summary", two_tower, "--param", "hidden=64"]) == 0
    out = capsys.readouterr().out
    assert "[batch, feature=64]" in out and "feature=hidden" not in out


def test_memory_columns_and_totals(capsys):
    two_tower = str(ROOT / "examples" / "two_tower.tg")
    assert main(["summary", two_tower, "--batch", "32"]) == 0
    out = capsys.readouterr().out
    # x [784] and six [128]-or-[10] outputs, float32, 32 samples
    assert "activations for a batch of 32: " + f"{(784 + 5 * 128 + 10) * 4 * 32 / 1024:.1f} KB" in out
    assert "parameters: 202,250 (trainable 202,250, frozen 0); 790.0 KB as float32" in out
    assert main(["summary", two_tower, "--batch", "0"]) == 2


def test_summary_as_json(capsys):
    import json

    two_tower = str(ROOT / "examples" / "two_tower.tg")
    assert main(["summary", two_tower, "--format", "json", "--batch", "2"]) == 0
    out, err = capsys.readouterr()
    (summary,) = json.loads(out)
    assert json.loads(err) == []  # the diagnostics, on stderr
    assert summary["model"] == "TwoTower" and summary["parameters"]["total"] == 202250
    assert summary["activations"] == sum(r["activations"] for r in summary["rows"] if r["op"] != "input") + 784 * 4 * 2
    assert [r["name"] for r in summary["rows"]][:2] == ["x", "a"]
