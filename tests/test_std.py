"""The standard library (LANGUAGE.md section 7): `import std` blocks written in tg, and `mlp`.

Every std block checks and compiles (with torch.fx verification) inside a small model; `mlp`
needs `import std`; the std transformer encoder computes what torch.nn.TransformerEncoder does
with the same weights; the LANGUAGE.md section 8 model (`frozen mlp(128, 128, p=0.1)`) checks.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tgc.compiler.cli import main
from tgc.compiler.pipeline import STD_PREFIX, front_end, std_library

ROOT = Path(__file__).resolve().parent.parent

# A small model for each std block (and `mlp`): what a user would write.
_TOKENS = "input x: [batch, token, feature=32]"
_ROWS = "input x: [batch, feature=10]"
_IMAGES = "input img: [batch, c=3, h=16, w=16]"
STD_MODELS = {
    "conv_block": (_IMAGES, "y = img >> conv_block(8, 3)"),
    "resnet_block": (_IMAGES, "y = img >> conv_block(8) >> resnet_block(8)"),
    "transformer_encoder_layer": (_TOKENS, "y = x >> transformer_encoder_layer(32, 4, 64)"),
    "transformer_encoder": (_TOKENS, "y = x >> transformer_encoder(32, 4, 64, 2, p=0.0)"),
    "tabular_resnet_block": (_ROWS, "y = x >> linear(32) >> tabular_resnet_block(32, 64)"),
    "tabular_resnet": (_ROWS, "y = x >> tabular_resnet(3, d_main=32, hidden=64, blocks=2)"),
    "feature_tokenizer": (_ROWS, "y = x >> feature_tokenizer(10, 16)"),
    "ft_transformer_layer": (_TOKENS, "y = x >> ft_transformer_layer(32, 4, 48)"),
    "ft_transformer": (_ROWS, "y = x >> ft_transformer(10, 2, d_model=32, heads=4, ff=48, layers=2)"),
}
REQUIRED_BLOCKS = {
    "resnet_block", "conv_block", "transformer_encoder_layer", "transformer_encoder",
    "tabular_resnet", "ft_transformer",
}


def _model(name: str, header: str = "import std\n") -> str:
    """The small model of STD_MODELS that uses std block `name`."""
    decl, line = STD_MODELS[name]
    return f"{header}model UsesStd {{\n    {decl}\n    {line}\n}}\n"


def _write(tmp_path: Path, text: str, name: str = "model.tg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _std_blocks() -> dict:
    return {b.name: (f.name, b) for f in std_library() for b in f.blocks}


# ------------------------------------------------------------------ the library itself


def test_std_is_package_data():
    folder = importlib.resources.files("tgc.compiler") / "std"
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tg"))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"tgc.compiler.std" = ["*.tg"]' in pyproject and '"tgc.compiler.std",' in pyproject


def test_std_is_parsed_once():
    assert std_library() is std_library()


def test_std_has_the_blocks_of_language_md_each_documented():
    blocks = _std_blocks()
    assert REQUIRED_BLOCKS <= set(blocks)
    assert set(blocks) == set(STD_MODELS), "every std block needs a model in STD_MODELS"
    for name, (_, block) in blocks.items():
        assert block.doc and len(block.doc.split()) >= 8, f"{name}: no doc comment above the block"


def test_std_blocks_do_not_shadow_ops():
    from tgc.compiler.ops.registry import all_ops

    assert not set(_std_blocks()) & set(all_ops())


# ------------------------------------------------------------------ each block, in a model


@pytest.mark.parametrize("name", sorted(STD_MODELS))
def test_std_block_checks_and_compiles(name, tmp_path, capsys):
    src = _write(tmp_path, _model(name))
    assert main(["check", str(src), "--format", "json"]) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out) == [], "a std block used as documented should not warn"
    out = tmp_path / "model.py"
    assert main([str(src), "-o", str(out)]) == 0, capsys.readouterr()
    assert "class UsesStd(nn.Module)" in out.read_text(encoding="utf-8")


def test_std_block_docs_become_docstrings(tmp_path):
    src = _write(tmp_path, _model("conv_block"))
    out = tmp_path / "model.py"
    assert main([str(src), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "class ConvBlock(nn.Module):" in text
    assert "Convolution, batch normalisation and ReLU" in text


def test_std_is_loaded_only_on_import(tmp_path):
    with_std = front_end(str(_write(tmp_path, _model("conv_block"), "a.tg")))
    assert with_std.ok and any(k.startswith(STD_PREFIX) for k in with_std.sources)
    without = front_end(str(_write(tmp_path, "y = x >> relu\n", "b.tg")))
    assert without.ok and not any(k.startswith(STD_PREFIX) for k in without.sources)
    # std blocks are not there without `import std`
    result = front_end(str(_write(tmp_path, _model("conv_block", header=""), "c.tg")))
    assert [d.code for d in result.diagnostics] == ["E012"]


def test_error_inside_a_std_block_names_the_call(tmp_path, capsys):
    text = "import std\nmodel E(d: int = 64) {\n    input x: [batch, token, feature=d]\n" \
           "    y = x >> transformer_encoder(d, 5, 128, 2)\n}\n"
    src = _write(tmp_path, text)
    assert main(["check", str(src)]) == 1
    err = capsys.readouterr().err
    assert "must be divisible by `num_heads` (5)" in err
    assert "in the call of block `transformer_encoder` on line 4" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ names


def test_user_block_named_like_a_std_block_is_an_error(tmp_path):
    text = "import std\nblock resnet_block(c: int) (x) -> y {\n    y = x >> relu\n}\n" \
           "model M {\n    input img: [batch, c=3, h=8, w=8]\n    y = img >> resnet_block(3)\n}\n"
    result = front_end(str(_write(tmp_path, text)))
    (d,) = result.diagnostics
    assert d.code == "E011" and "std block" in d.message and d.span.line == 2
    assert "rename" in d.hint


def test_imported_block_named_like_a_std_block_is_an_error(tmp_path):
    _write(tmp_path, "block conv_block(c: int) (x) -> y {\n    y = x >> relu\n}\n", "lib.tg")
    result = front_end(str(_write(tmp_path, 'import std\nimport "lib.tg"\ny = x >> relu\n')))
    (d,) = result.diagnostics
    assert d.code == "E011" and d.span.file.endswith("lib.tg")


def test_without_std_the_names_are_free(tmp_path):
    text = "block mlp(w: int) (x) -> y {\n    y = x >> linear(w)\n}\n" \
           "block resnet_block(w: int) (x) -> y {\n    y = x >> linear(w) >> relu\n}\n" \
           "h = x >> mlp(8) >> resnet_block(8)\n"
    result = front_end(str(_write(tmp_path, text)))
    assert result.ok and result.diagnostics == []


def test_an_imported_file_may_import_std(tmp_path):
    _write(tmp_path, "import std\nblock enc(w: int) (x) -> y {\n    y = x >> mlp(w, w)\n}\n", "lib.tg")
    src = _write(tmp_path, 'import "lib.tg"\nh = x >> enc(8)\n')
    assert main([str(src), "-o", str(tmp_path / "out.py")]) == 0


# ------------------------------------------------------------------ mlp


def test_mlp_needs_import_std(tmp_path, capsys):
    src = _write(tmp_path, "model M(d_in: int = 16) {\n    input x: [batch, feature=d_in]\n"
                           "    h = x >> mlp(32, 8)\n}\n")
    assert main(["check", str(src)]) == 1
    err = capsys.readouterr().err
    assert "error[E012]" in err and "standard library" in err
    assert "add `import std`" in err


@pytest.mark.parametrize("call, widths", [
    ("x >> mlp(32, 8)", [32, 8]),
    ("mlp(x, 32, 8)", [32, 8]),
    ("x >> mlp([32, 8])", [32, 8]),
    ("x >> mlp(widths=[32, 8], p=0.2)", [32, 8]),
    ("x >> mlp(d_in * 2)", [32]),
])
def test_mlp_varargs_bind_to_widths(tmp_path, call, widths):
    src = _write(tmp_path, f"import std\nmodel M(d_in: int = 16) {{\n    input x: [batch, feature=d_in]\n"
                           f"    h = {call}\n}}\n")
    from tgc.compiler.pipeline import check

    result = check(str(src))
    assert result.ok, result.diagnostics
    (shapes,) = result.checked.models
    node = shapes.graph.nodes[0]
    assert node.op == "mlp"
    assert [w.value for w in shapes.args[0]["widths"]] == widths
    assert shapes.types["h"].show() == f"[batch, feature={'d_in * 2' if call.endswith('(d_in * 2)') else widths[-1]}]"


@pytest.mark.parametrize("call, code", [
    ("x >> mlp", "E023"),
    ("x >> mlp(p=0.1)", "E023"),
    ("x >> mlp(1.5)", "E025"),
    ("x >> mlp(8, widths=[4])", "E024"),
    ("x >> mlp(8, 0)", "E055"),
    ("x >> mlp(8, p=2.0)", "E055"),
])
def test_mlp_mistakes(tmp_path, call, code):
    from tgc.compiler.pipeline import check

    src = _write(tmp_path, f"import std\nmodel M {{\n    input x: [batch, feature=16]\n    h = {call}\n}}\n")
    result = check(str(src))
    assert [d.code for d in result.diagnostics] == [code]


def test_mlp_is_a_stock_sequential(tmp_path):
    import torch

    src = _write(tmp_path, "import std\nmodel M(d_in: int = 16, p: float = 0.1) {\n"
                           "    input x: [batch, feature=d_in]\n    a = x >> mlp(32, 8, p=0.2)\n"
                           "    b = x >> mlp(4)\n    c = x >> mlp(4, p=p)\n    output a, b, c\n}\n")
    out = tmp_path / "mlp_std.py"
    assert main([str(src), "-o", str(out)]) == 0
    model = _load(out, "mlp_std").M()
    types = lambda seq: [type(m).__name__ for m in seq]  # noqa: E731
    assert types(model.a) == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout"]
    assert [m.p for m in model.a if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]
    assert types(model.b) == ["Linear", "ReLU"]  # p=0: no dropout layers
    assert types(model.c) == ["Linear", "ReLU", "Dropout"]  # a parameter p keeps them
    assert model.a[0].in_features == 16 and model.a[3].out_features == 8
    # re-parametrisable without recompiling: sizes are symbolic
    assert _load(out, "mlp_std").M(d_in=5).a[0].in_features == 5


def test_language_md_section_8_model_checks(capsys):
    path = ROOT / "examples" / "train.tg"
    assert "frozen mlp(128, 128, p=0.1)" in path.read_text(encoding="utf-8")
    assert main(["check", str(path)]) == 0, capsys.readouterr()
    (model,) = front_end(str(path)).program.models
    (node,) = [n for n in model.nodes if n.op == "mlp"]
    assert node.frozen


def test_std_mlp_example_checks(capsys):
    assert main(["check", str(ROOT / "examples" / "std_mlp.tg"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# ------------------------------------------------------------------ numerics


# torch.nn.TransformerEncoder key (per layer, after `layers.{i}.`) -> the emitted module's key
# (after the prefix below): the std layer is torch's, renamed.
TORCH_TO_TG_LAYER_KEYS = {
    key: key.replace("norm2.", "y.")
    for key in (
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    )
}
# `enc = x >> transformer_encoder(...)` in the model below: the block is `enc`, its repeat
# `encoded` (an nn.Sequential of the std layers: a repeat of one block has no wrapper class).
TG_LAYER_PREFIX = "enc.encoded.{i}."


def _key_map(layers: int) -> dict[str, str]:
    return {
        f"layers.{i}.{theirs}": TG_LAYER_PREFIX.format(i=i) + ours
        for i in range(layers)
        for theirs, ours in TORCH_TO_TG_LAYER_KEYS.items()
    }


def test_transformer_encoder_matches_torch(tmp_path):
    import torch

    d_model, heads, ff, layers = 32, 4, 64, 2
    src = _write(tmp_path, "import std\nmodel Enc(d_model: int = 32, heads: int = 4, ff: int = 64, "
                           "layers: int = 2) {\n    input x: [batch, token, feature=d_model]\n"
                           "    enc = x >> transformer_encoder(d_model, heads, ff, layers)\n}\n")
    out = tmp_path / "std_encoder.py"
    assert main([str(src), "-o", str(out)]) == 0
    torch.manual_seed(0)
    ours = _load(out, "std_encoder").Enc()
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.1, batch_first=True)
    theirs = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    key_map = _key_map(layers)
    assert set(key_map) == set(theirs.state_dict())
    assert set(key_map.values()) == set(ours.state_dict())
    ours.load_state_dict({key_map[k]: v for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    x = torch.randn(3, 7, d_model)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_feature_tokenizer_gives_each_feature_its_own_token(tmp_path):
    import torch

    src = _write(tmp_path, _model("feature_tokenizer"))
    out = tmp_path / "tokenizer.py"
    assert main([str(src), "-o", str(out)]) == 0
    model = _load(out, "tokenizer").UsesStd()
    torch.manual_seed(0)
    x = torch.randn(4, 10)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (4, 10, 16)
        x2 = x.clone()
        x2[:, 3] += 1.0
        changed = (model(x2) - y).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [j == 3 for j in range(10)]
