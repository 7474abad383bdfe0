"""`tgc model.tg -o out/` with a `train` section: model.py, train.py and train_utils.py, run as a
user would run them, in a folder where tgc cannot be imported."""

from __future__ import annotations

import ast
import csv
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
GENERATED = ["model.py", "train.py", "train_utils.py"]

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
    assert sorted(p.name for p in out.iterdir()) == GENERATED


def _history(out: pathlib.Path, run: int = 1) -> list[dict]:
    return json.loads((out / "runs" / str(run) / "history.json").read_text())["epochs"]


@pytest.mark.slow
def test_digits_reaches_95_percent(tmp_path):
    out = tmp_path / "out"
    _compile("digits.tg", out)
    start = time.perf_counter()
    proc = _run(out / "train.py", "--epochs", "15", cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out / "runs")) == ["1"]
    best = max(row["valid_accuracy"] for row in _history(out))
    print(f"digits: best valid accuracy {best:.4f} in {seconds:.1f} s")
    assert "valid_accuracy" in proc.stdout
    assert best >= 0.95
    assert seconds < 60
    # prediction on new data, labels restored, still without tgc
    from sklearn.datasets import load_digits

    digits = load_digits()
    with open(tmp_path / "new.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(digits.feature_names)
        writer.writerows(digits.data[:20].tolist())
    proc = _run(out / "train.py", "predict", "--data", "new.csv", "--checkpoint",
                str(out / "runs" / "1" / "best.pt"), "--out", "pred.csv", cwd=tmp_path)
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


# Where the standalone rule allows imports at the top level of a generated file: the standard
# library, torch, and the generated files beside it. numpy, scikit-learn, tqdm, tensorboard live
# inside the functions that need them.
ALLOWED_TOP = {
    "torch", "os", "sys", "csv", "json", "math", "random", "signal", "time", "argparse", "dataclasses",
    "typing", "copy", "io", "contextlib", "collections", "itertools", "tempfile", "datetime", "warnings",
    "functools", "shutil", "inspect", "pathlib", "re", "numbers", "difflib", "textwrap", "traceback",
    "types", "platform", "socket", "zipfile", "struct", "string", "operator", "enum", "hashlib", "gc",
    "abc", "builtins", "weakref", "statistics", "glob", "__future__", "model", "train_utils",
}
OPTIONAL = {"numpy", "sklearn", "scipy", "pandas", "tqdm", "tensorboard"}


def _module_level_imports(tree: ast.AST):
    """Import nodes that run when the module is imported: everywhere but inside functions."""
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _roots(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    return {(node.module or "").split(".")[0]}


@pytest.mark.parametrize("example", ["train.tg", "digits.tg", "diabetes.tg"])
def test_generated_files_are_standalone_and_formatted(tmp_path, example):
    out = tmp_path / "out"
    _compile(example, out)
    for name in GENERATED:
        text = (out / name).read_text()
        assert format_code(text) == text, f"{name} is not black-formatted"
        tree = ast.parse(text)
        for node in _module_level_imports(tree):
            roots = _roots(node)
            assert roots <= ALLOWED_TOP, f"{name} imports {roots - ALLOWED_TOP} when it is imported"
        everywhere = set().union(*(_roots(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))))
        assert "tgc" not in everywhere, name
        assert everywhere <= ALLOWED_TOP | OPTIONAL, f"{name} imports {everywhere - ALLOWED_TOP - OPTIONAL}"


def test_train_section_with_unfreeze_emits_the_unfreeze_step(tmp_path):
    out = tmp_path / "out"
    _compile("train.tg", out)
    train = (out / "train.py").read_text()
    assert "def unfreeze(" in train and '"unfreeze.enc.epoch"' in train


def test_generated_files_import_without_tgc_numpy_or_sklearn(tmp_path):
    from standalone_util import run_blocked

    out = tmp_path / "out"
    _compile("digits.tg", out)
    code = f"import sys; sys.argv = ['train.py']; sys.path.insert(0, {str(out)!r}); import train, train_utils, model"
    proc = run_blocked(code)
    assert proc.returncode == 0, proc.stderr


def test_generated_training_code_for_digits_is_counted_and_headed(tmp_path):
    out = tmp_path / "out"
    _compile("digits.tg", out)
    counts = {name: len((out / name).read_text().splitlines()) for name in ("train.py", "train_utils.py")}
    print(f"digits.tg training code: train.py {counts['train.py']} lines, train_utils.py "
          f"{counts['train_utils.py']} lines, {sum(counts.values())} in all")
    for name in GENERATED[1:]:
        first = (out / name).read_text().splitlines()[0]
        assert first.startswith("# Generated by tgc"), (name, first)


def test_model_file_output_with_train_section_says_a_folder_is_needed(tmp_path, capsys):
    out = tmp_path / "model.py"
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out)]) == 0
    assert "needs a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


@pytest.mark.parametrize("changed", GENERATED)
def test_folder_check_covers_every_file(tmp_path, capsys, changed):
    out = tmp_path / "out"
    _compile("digits.tg", out)
    capsys.readouterr()
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out) + os.sep, "--check"]) == 0
    assert "up to date" in capsys.readouterr().err
    path = out / changed
    path.write_text(path.read_text() + "# edited\n")
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out) + os.sep, "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{changed} would be regenerated" in err
    assert [name for name in GENERATED if f"{name} would be regenerated" in err] == [changed]
    path.unlink()
    assert main([str(EXAMPLES / "digits.tg"), "-o", str(out) + os.sep, "--check"]) == 1
    assert "(it does not exist)" in capsys.readouterr().err
