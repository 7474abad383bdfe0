"""User-defined ops (`--plugin FILE.py`) and `tgc test-ops`.

The SwiGLU plugin of the README (examples/plugins/swiglu.py) must pass `tgc test-ops`, and a
model compiled with it must run after the plugin file is gone: its torch code is in the output.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from tgc.compiler.cli import EXIT_OK, EXIT_USAGE, EXIT_USER, main
from tgc.compiler.ops.registry import REGISTRY, lookup, unload_plugins

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "examples" / "plugins"
SWIGLU = PLUGINS / "swiglu.py"
FFN = PLUGINS / "swiglu_ffn.tg"


@pytest.fixture(autouse=True)
def _builtins_only():
    """Each test starts and ends with the built-in ops only, as a `main()` without --plugin does."""
    unload_plugins()
    yield
    unload_plugins()


def _plugin(tmp_path: Path, body: str, name: str = "myops.py") -> Path:
    header = ("from tgc.compiler.ops.registry import Emission, HyperParam, OpSpec, register\n"
              "from tgc.compiler.tensor_types import Dim\n\n")
    path = tmp_path / name
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_swiglu_passes_test_ops(capsys):
    assert main(["test-ops", "--plugin", str(SWIGLU), "--examples", "10", "--compile-examples", "1"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["op", "vs", "torch", "(10", "programs)", "torch.compile", "(1)",
                                           "docs", "result"]
    assert out.splitlines()[1].split() == ["swiglu", "pass", "pass", "pass", "ok"]
    assert "1 of 1 ops pass" in out


def test_model_with_a_plugin_op_runs_without_the_plugin(tmp_path, capsys):
    import torch

    plugin = Path(shutil.copy(SWIGLU, tmp_path / "swiglu.py"))
    src = Path(shutil.copy(FFN, tmp_path / "ffn.tg"))
    out = tmp_path / "ffn.py"
    assert main([str(src), "-o", str(out), "--plugin", str(plugin)]) == EXIT_OK, capsys.readouterr().err
    plugin.unlink()
    assert main(["ops"]) == EXIT_OK  # a new command line: the plugin's op is gone from the registry
    assert lookup("swiglu") is None
    assert main(["check", str(src)]) == EXIT_USER  # without the plugin, `swiglu` is unknown
    assert "unknown op `swiglu`" in capsys.readouterr().err
    source = out.read_text(encoding="utf-8")
    assert source.count("class SwiGLU(nn.Module):") == 1
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import torch", "from torch import nn"]
    module = _load(out, "tgc_test_ffn_model")
    model = module.SwiGLUFFN().eval()
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 16, 64)
    assert sum(p.numel() for p in model.parameters()) == 33_560  # what `tgc summary` says


def test_plugin_ops_in_summary_graph_and_ops(capsys):
    assert main(["summary", str(FFN), "--plugin", str(SWIGLU)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "h.1   swiglu" in out and "22,360" in out and "parameters: 33,560" in out
    assert main(["graph", str(FFN), "-o", "-", "--plugin", str(SWIGLU)]) == EXIT_OK
    assert "<b>swiglu</b>" in capsys.readouterr().out
    assert main(["ops", "--plugin", str(SWIGLU)]) == EXIT_OK
    assert "plugin:\n  swiglu" in capsys.readouterr().out
    assert main(["ops", "swiglu", "--plugin", str(SWIGLU)]) == EXIT_OK
    page = capsys.readouterr().out
    assert page.startswith("swiglu(x, hidden, bias=true) -> out")
    assert "self.h = nn.Sequential(SwiGLU(16, 256), nn.Linear(256, 64))" in page


def test_support_code_is_written_once_and_its_names_are_kept(tmp_path, capsys):
    src = tmp_path / "two.tg"
    src.write_text("model SwiGLU {\n    input x: [batch, feature=8]\n"
                   "    h = x >> swiglu(8) >> swiglu(4, bias=false)\n}\n", encoding="utf-8")
    out = tmp_path / "two.py"
    assert main([str(src), "-o", str(out), "--plugin", str(SWIGLU)]) == EXIT_OK, capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert text.count("class SwiGLU(nn.Module):") == 1  # the support class, once
    assert "class SwiGLU_(nn.Module):" in text  # the model, renamed around it
    assert "SwiGLU(8, 4, bias=False)" in text


def test_plugin_errors(tmp_path, capsys):
    assert main(["ops", "--plugin", str(tmp_path / "nope.py")]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err
    broken = _plugin(tmp_path, "raise RuntimeError('boom')\n", "broken.py")
    assert main(["ops", "--plugin", str(broken)]) == EXIT_USAGE
    assert "failed to load: RuntimeError: boom" in capsys.readouterr().err
    clash = _plugin(tmp_path, "register(OpSpec(name='relu', doc='Mine.'))\n", "clash.py")
    assert main(["ops", "--plugin", str(clash)]) == EXIT_USAGE
    assert "'relu' is already registered" in capsys.readouterr().err
    assert REGISTRY["relu"].torch_module == "torch.nn.ReLU"
    # the same file twice in one command line registers its op twice: an error naming the file
    assert main(["ops", "--plugin", str(SWIGLU), "--plugin", str(SWIGLU)]) == EXIT_USAGE
    assert "already registered (by swiglu.py)" in capsys.readouterr().err
    assert "swiglu" not in REGISTRY


def test_a_failed_plugin_leaves_no_op_behind(tmp_path):
    half = _plugin(tmp_path, """
        register(OpSpec(name="first_op", doc="One."))
        raise ValueError("then it fails")
    """)
    assert main(["ops", "--plugin", str(half)]) == EXIT_USAGE
    assert "first_op" not in REGISTRY


OFF_BY_ONE = """
    def shape(ctx):
        x = ctx.in_types[0]
        return [x.replace_dim(-1, Dim(x.dims[-1].name, x.dims[-1].size + 1))]

    def emit(ctx):
        return Emission(call=f"{ctx.exprs[0]} * 2")

    register(OpSpec(name="double", doc="Doubles every element.", example="y = x >> double",
                    shape_doc="[*] -> [*]", shape=shape, emit=emit))
"""


def test_test_ops_reports_a_wrong_shape_rule(tmp_path, capsys):
    plugin = _plugin(tmp_path, OFF_BY_ONE)
    assert main(["test-ops", "--plugin", str(plugin), "--examples", "2", "--compile-examples", "0"]) == EXIT_USER
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["double", "FAIL", "-", "pass", "FAIL"]
    assert "checker says" in out and "0 of 1 ops pass; 1 fail" in out


def test_test_ops_reports_missing_docs(tmp_path, capsys):
    plugin = _plugin(tmp_path, OFF_BY_ONE.replace("size + 1", "size").replace(
        'doc="Doubles every element.", ', 'doc="", '))
    assert main(["test-ops", "double", "--plugin", str(plugin), "--examples", "2",
                 "--compile-examples", "1"]) == EXIT_USER
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["double", "pass", "pass", "FAIL", "FAIL"]
    assert "double: docs: `doc` must be one non-empty line" in out


def test_test_ops_unknown_name(capsys):
    assert main(["test-ops", "lineer"]) == EXIT_USER
    assert "did you mean `linear`?" in capsys.readouterr().err


def test_compile_check_catches_a_graph_break():
    import torch

    from tgc.runtime.compile_time.autotest import compile_check

    class Breaks(torch.nn.Module):
        def forward(self, x):
            torch._dynamo.graph_break()
            return x + 1

    x = torch.zeros(2, 3)
    (message,) = compile_check(Breaks(), (x,), (x,))
    assert message.startswith('torch.compile(fullgraph=True, backend="eager") fails')
    assert compile_check(torch.nn.ReLU(), (x,), (x,)) == []


def test_plugins_do_not_leak_into_the_next_command(capsys):
    assert main(["ops", "swiglu", "--plugin", str(SWIGLU)]) == EXIT_OK
    assert "swiglu" in REGISTRY
    capsys.readouterr()
    assert main(["ops", "swiglu"]) == EXIT_USER
    assert "swiglu" not in REGISTRY and "swiglu" not in sys.modules


def test_a_plugin_cannot_end_tgc_with_a_success_status(tmp_path, capsys):
    # issue 13: "a plugin that raises SystemExit(0) makes tgc exit 0 with errors unreported"
    at_load = tmp_path / "exits.py"
    at_load.write_text("raise SystemExit(0)\n")
    assert main(["check", str(ROOT / "examples" / "card.tg"), "--plugin", str(at_load)]) == EXIT_USAGE
    assert "SystemExit" in capsys.readouterr().err
    swiglu = SWIGLU.read_text()
    assert "def _shape(" in swiglu
    in_shape = tmp_path / "shape_exits.py"
    in_shape.write_text(swiglu.replace("def _shape(", "def _exit(*a):\n    raise SystemExit(0)\n\n\ndef _shape(", 1)
                        .replace("shape=_shape", "shape=_exit"))
    assert main(["check", str(FFN), "--plugin", str(in_shape)]) == EXIT_USER
    assert "sys.exit(0)" in capsys.readouterr().err
