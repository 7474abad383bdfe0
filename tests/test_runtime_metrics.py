"""runtime/vendored/metrics.py: every metric equals scikit-learn's on seeded random data and edge cases."""

import ast
import math
import pathlib
import sys

import pytest
import torch

from sklearn import metrics as sklearn_metrics  # noqa: E402

from standalone_util import run_blocked

from tgc.compiler.vendor import vendor
from tgc.runtime.vendored import metrics as M  # noqa: E402

# scikit-learn warns when a class is predicted but never a target; that case is tested on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")

RUNTIME = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "vendored"

CLASSIFICATION = {
    "accuracy": lambda y, p: sklearn_metrics.accuracy_score(y, p),
    "balanced_accuracy": lambda y, p: sklearn_metrics.balanced_accuracy_score(y, p),
    "f1": lambda y, p: sklearn_metrics.f1_score(y, p, average="macro", zero_division=0),
}


def _random_logits(generator: torch.Generator, n: int, classes: int) -> torch.Tensor:
    return torch.randn(n, classes, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classification_metrics_match_sklearn(name):
    fn = M.METRICS[name][0]
    generator = torch.Generator().manual_seed(1)
    for trial in range(60):
        n = int(torch.randint(1, 40, (1,), generator=generator))
        classes = int(torch.randint(2, 6, (1,), generator=generator))
        logits = _random_logits(generator, n, classes)
        target = torch.randint(0, classes, (n,), generator=generator)
        expected = CLASSIFICATION[name](target.numpy(), logits.argmax(1).numpy())
        assert fn(logits, target) == pytest.approx(expected, abs=1e-12), (trial, n, classes)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_class_absent_from_predictions(name):
    # Class 2 is a target but never predicted; class 3 is predicted but never a target.
    target = torch.tensor([0, 0, 1, 1, 2, 2, 1])
    predicted = torch.tensor([0, 1, 1, 1, 0, 3, 1])
    logits = torch.nn.functional.one_hot(predicted, 5).double()
    expected = CLASSIFICATION[name](target.numpy(), predicted.numpy())
    assert M.METRICS[name][0](logits, target) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_binary_single_score_is_a_logit(name):
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(50, generator=generator)
    target = torch.randint(0, 2, (50,), generator=generator)
    expected = CLASSIFICATION[name](target.numpy(), (scores > 0).long().numpy())
    assert M.METRICS[name][0](scores, target) == pytest.approx(expected, abs=1e-12)
    assert M.METRICS[name][0](scores[:, None], target) == pytest.approx(expected, abs=1e-12)


def test_auroc_matches_sklearn_random_and_ties():
    generator = torch.Generator().manual_seed(3)
    for trial in range(80):
        n = int(torch.randint(2, 60, (1,), generator=generator))
        target = torch.randint(0, 2, (n,), generator=generator)
        target[0], target[1] = 0, 1  # both classes present
        if trial % 2:
            # Few distinct values: many ties, within and across classes.
            scores = torch.randint(0, 4, (n,), generator=generator).double() / 4
        else:
            scores = torch.randn(n, generator=generator, dtype=torch.float64)
        expected = sklearn_metrics.roc_auc_score(target.numpy(), scores.numpy())
        assert M.auroc(scores, target) == pytest.approx(expected, abs=1e-12), trial
        assert M.auroc(scores[:, None], target) == pytest.approx(expected, abs=1e-12)


def test_auroc_all_tied_is_half_and_perfect_is_one():
    target = torch.tensor([0, 1, 0, 1])
    assert M.auroc(torch.zeros(4), target) == 0.5
    assert M.auroc(torch.tensor([0.1, 0.9, 0.2, 0.8]), target) == 1.0
    assert M.auroc(torch.tensor([0.9, 0.1, 0.8, 0.2]), target) == 0.0


def test_auroc_two_logits_and_probabilities():
    generator = torch.Generator().manual_seed(4)
    logits = _random_logits(generator, 40, 2)
    target = torch.randint(0, 2, (40,), generator=generator)
    probabilities = torch.softmax(logits, 1)[:, 1]
    expected = sklearn_metrics.roc_auc_score(target.numpy(), probabilities.numpy())
    assert M.auroc(logits, target) == pytest.approx(expected, abs=1e-12)
    assert M.auroc(probabilities, target) == pytest.approx(expected, abs=1e-12)


def test_auroc_multiclass_ovr():
    generator = torch.Generator().manual_seed(5)
    logits = _random_logits(generator, 60, 4)
    target = torch.arange(60) % 4
    probabilities = torch.softmax(logits, 1).numpy()
    expected = sklearn_metrics.roc_auc_score(target.numpy(), probabilities, multi_class="ovr")
    assert M.auroc(logits, target) == pytest.approx(expected, abs=1e-12)


def test_undefined_metrics_are_nan():
    assert math.isnan(M.auroc(torch.tensor([0.2, 0.4]), torch.tensor([1, 1])))
    assert math.isnan(M.auroc(torch.tensor([float("nan"), 0.4]), torch.tensor([0, 1])))
    empty = torch.zeros(0, 3)
    for name in ("accuracy", "balanced_accuracy", "f1"):
        assert math.isnan(M.METRICS[name][0](empty, torch.zeros(0, dtype=torch.int64)))
    for name in ("mse", "rmse", "mae", "r2"):
        assert math.isnan(M.METRICS[name][0](torch.zeros(0), torch.zeros(0)))
    assert math.isnan(M.r2(torch.ones(1), torch.ones(1)))


REGRESSION = {
    "mse": lambda y, p: sklearn_metrics.mean_squared_error(y, p),
    "rmse": lambda y, p: sklearn_metrics.root_mean_squared_error(y, p),
    "mae": lambda y, p: sklearn_metrics.mean_absolute_error(y, p),
    "r2": lambda y, p: sklearn_metrics.r2_score(y, p),
}


@pytest.mark.parametrize("name", sorted(REGRESSION))
def test_regression_metrics_match_sklearn(name):
    fn = M.METRICS[name][0]
    generator = torch.Generator().manual_seed(6)
    for trial in range(40):
        n = int(torch.randint(2, 50, (1,), generator=generator))
        shape = (n,) if trial % 2 else (n, int(torch.randint(1, 4, (1,), generator=generator)))
        target = torch.randn(shape, generator=generator, dtype=torch.float64) * 3
        pred = target + torch.randn(shape, generator=generator, dtype=torch.float64)
        expected = REGRESSION[name](target.numpy(), pred.numpy())
        assert fn(pred, target) == pytest.approx(expected, rel=1e-9, abs=1e-12), (trial, shape)
        # float32 model output works too
        assert fn(pred.float(), target.float()) == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("name", sorted(REGRESSION))
def test_regression_column_prediction_against_flat_target(name):
    target = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    pred = torch.tensor([[1.5], [2.0], [3.0], [9.0]], dtype=torch.float64)
    expected = REGRESSION[name](target.numpy(), pred[:, 0].numpy())
    assert M.METRICS[name][0](pred, target) == pytest.approx(expected, rel=1e-9)


def test_r2_constant_target_like_sklearn():
    target = torch.full((5,), 2.0, dtype=torch.float64)
    for pred in (target.clone(), target + torch.arange(5.0, dtype=torch.float64)):
        expected = sklearn_metrics.r2_score(target.numpy(), pred.numpy())
        assert M.r2(pred, target) == expected
    two = torch.stack([target, torch.arange(5.0, dtype=torch.float64)], 1)
    pred = two + 0.5
    assert M.r2(pred, two) == pytest.approx(sklearn_metrics.r2_score(two.numpy(), pred.numpy()))


def test_registry():
    assert set(M.METRICS) == {"accuracy", "balanced_accuracy", "f1", "auroc", "mse", "rmse", "mae", "r2"}
    for name, (fn, task, higher) in M.METRICS.items():
        assert callable(fn) and task in ("classification", "regression")
        assert higher == (name not in ("mse", "rmse", "mae"))
        assert isinstance(fn(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])) if task == "classification"
                          else fn(torch.randn(6), torch.randn(6)), float)


def test_metrics_ignore_autograd():
    logits = torch.randn(8, 3, requires_grad=True)
    assert isinstance(M.accuracy(logits, torch.zeros(8, dtype=torch.int64)), float)
    assert isinstance(M.auroc(logits[:, 0], torch.arange(8) % 2), float)
    assert isinstance(M.mse(logits[:, 0], torch.zeros(8)), float)


# ------------------------------------------------------------------ standalone (vendoring) rules

def load_file_code(path: pathlib.Path, name: str) -> str:
    return (
        f"spec = importlib.util.spec_from_file_location({name!r}, {str(path)!r})\n"
        f"module = importlib.util.module_from_spec(spec)\n"
        f"spec.loader.exec_module(module)\n"
    )


def test_metrics_module_imports_only_stdlib_and_torch():
    result = run_blocked(
        load_file_code(RUNTIME / "metrics.py", "metrics")
        + "import torch\n"
        + "print(module.accuracy(torch.tensor([[0.0, 1.0]]), torch.tensor([1])))\n"
        + "print(module.auroc(torch.tensor([0.1, 0.7, 0.7]), torch.tensor([0, 1, 0])))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.0", "0.75"]


def top_level_imports(path: pathlib.Path) -> set[str]:
    """Modules imported by statements at module level (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # vendor() copies definitions into one new module: a relative import has no target there.
            assert not node.level, f"{path.name}: relative import at line {node.lineno}"
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["data.py", "metrics.py", "support.py"])
def test_top_level_imports_are_stdlib_or_torch(module):
    path = RUNTIME / module
    allowed = set(sys.stdlib_module_names) | {"torch"}
    assert top_level_imports(path) <= allowed
    tree = ast.parse(path.read_text())
    # vendor() keeps an import only when a copied definition names it: a `from __future__`
    # import would be dropped silently, changing how the copied code is compiled.
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    # No import of tgc anywhere, not even inside a function.
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("tgc") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith("tgc")


def test_vendored_metrics_work_without_numpy(tmp_path):
    names, body = vendor(set(M.METRICS) | {"METRICS"})
    assert names == sorted(set(M.METRICS) | {"METRICS"})
    (tmp_path / "train_utils.py").write_text(body)
    result = run_blocked(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "import torch, train_utils\n"
        "print(sorted(train_utils.METRICS))\n"
        "print(train_utils.auroc(torch.tensor([0.1, 0.7, 0.7]), torch.tensor([0, 1, 0])))\n"
        "print(train_utils.r2(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(sorted(M.METRICS)), "0.75", "1.0"]


def test_one_vendored_metric_brings_only_its_helpers():
    _, body = vendor({"accuracy"})
    defined = {n.name for n in ast.parse(body).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"accuracy", "_classes", "_targets"} <= defined
    assert not defined & {"f1", "auroc", "_binary_auroc", "mse", "_pair", "r2"}
    assert "METRICS" not in body


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="3 predictions but 2 targets"):
        M.accuracy(torch.randn(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"prediction shape \[3\] does not match target \[2\]"):
        M.mse(torch.randn(3), torch.randn(2))
    assert math.isnan(M.NAN)
