"""`tgc model.tg -o out/` with a `train` section: model.py, train.py and the vendored runtime,
run as a user would run them, in a folder where tgc cannot be imported."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from tgc.compiler.cli import main
from tgc.compiler.emit import format_code

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Runs a script with `tgc` made unimportable, so a generated file that needs it fails loudly.
RUN_WITHOUT_TGC = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tgc" or name.startswith("tgc."):
                raise ImportError("generated code must not import tgc")
            return None

    sys.meta_path.insert(0, Block())
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
    """
)


def _run(script: pathlib.Path, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TGC, str(script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def _compile(example: str, out: pathlib.Path) -> None:
    assert main([str(EXAMPLES / example), "-o", str(out) + os.sep]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "tgc_runtime.py", "train.py"]


def _history(out: pathlib.Path) -> list[dict]:
    return json.loads((out / "runs" / "history.json").read_text())["epochs"]


@pytest.mark.slow
def test_digits_reaches_95_percent(tmp_path):
    out = tmp_path / "out"
    _compile("digits.tg", out)
    start = time.perf_counter()
    proc = _run(out / "train.py", "--epochs", "15", cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    best = max(row["valid_accuracy"] for row in _history(out))
    print(f"digits: best valid accuracy {best:.4f} in {seconds:.1f} s")
    assert "valid_accuracy" in proc.stdout + proc.stderr
    assert best >= 0.95
    assert seconds < 60
    # prediction on new data, labels restored, still without tgc
    import csv

    from sklearn.datasets import load_digits

    digits = load_digits()
    with open(tmp_path / "new.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"pixel_{i // 8}_{i % 8}" for i in range(64)])
        writer.writerows(digits.data[:20].tolist())
    proc = _run(out / "train.py", "predict", "--data", "new.csv", "--checkpoint",
                str(out / "runs" / "best.pt"), "--out", "pred.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(tmp_path / "pred.csv")))
    assert len(rows) == 20
    correct = sum(int(r["prediction"]) == t for r, t in zip(rows, digits.target[:20]))
    assert correct >= 17


@pytest.mark.slow
def test_diabetes_regression_r2(tmp_path):
    out = tmp_path / "out"
    _compile("diabetes.tg", out)
    proc = _run(out / "train.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    best = max(row["valid_r2"] for row in _history(out))
    print(f"diabetes: best valid r2 {best:.3f}")
    assert best > 0.3


@pytest.mark.slow
def test_generated_files_are_standalone_and_formatted(tmp_path):
    out = tmp_path / "out"
    _compile("train.tg", out)
    allowed_top = {"torch", "os", "sys", "csv", "json", "math", "random", "signal", "time", "argparse",
                   "dataclasses", "typing", "copy", "io", "contextlib", "collections", "itertools",
                   "tempfile", "datetime", "warnings", "functools", "shutil", "inspect", "pathlib",
                   "model", "tgc_runtime", "re", "numbers", "difflib", "textwrap", "traceback", "types",
                   "platform", "socket", "zipfile", "struct", "string", "operator", "enum", "hashlib",
                   "gc", "abc", "builtins", "weakref", "statistics"}
    for name in ("model.py", "train.py", "tgc_runtime.py"):
        text = (out / name).read_text()
        assert format_code(text) == text, f"{name} is not black-formatted"
        tree = ast.parse(text)
        for node in tree.body:  # top-level imports only: optional ones live inside functions
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed_top, f"{name} imports {roots - allowed_top} at top level"
            assert "tgc" not in roots
    train = (out / "train.py").read_text()
    assert '"unfreeze", "target": ["enc"]' in train


def test_model_file_output_with_train_section_says_a_folder_is_needed(tmp_path, capsys):
    out = tmp_path / "model.py"
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out)]) == 0
    assert "needs a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


@pytest.mark.slow
def test_folder_check_covers_every_file(tmp_path, capsys):
    out = tmp_path / "out"
    _compile("digits.tg", out)
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out) + os.sep, "--check"]) == 0
    (out / "train.py").write_text((out / "train.py").read_text().replace('"epochs": 15', '"epochs": 3'))
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out) + os.sep, "--check"]) == 1
    assert "train.py would be regenerated" in capsys.readouterr().err
