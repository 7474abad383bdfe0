"""Evaluation metrics in torch, matching scikit-learn's definitions.

A library the compiler copies from (see support.py): a generated `train_utils.py` holds the
metrics its `train.py` reports and what they use, so it imports only the standard library and
torch, never tgc.

Every metric is `metric(pred, target) -> float`, computed on a whole epoch's concatenated
predictions (no streaming state) in float64:
  classification: `pred` is logits [n, C], or one score [n] / [n, 1] per sample for a binary
      model (a logit: > 0 means class 1); `target` int64 class indices [n].
  regression: `pred` and `target` are [n] or [n, k] (a [n, 1] prediction against an [n]
      target is fine); several outputs are averaged uniformly, like scikit-learn's default.
A metric that is undefined for the data (no samples; AUROC with one class only) is NaN rather
than an exception, so one odd validation batch cannot kill a training run.

`METRICS` maps each name to (fn, task, higher_is_better) for the training loop and callbacks.
"""

import math
from typing import Callable

import torch

NAN = float("nan")


def _classes(pred: torch.Tensor) -> torch.Tensor:
    """Predicted class per sample: argmax of logits (first on ties), or score > 0 for binary."""
    pred = pred.detach()
    if pred.dim() == 2 and pred.shape[1] > 1:
        return pred.argmax(dim=1)
    return (pred.reshape(-1) > 0).to(torch.int64)


def _targets(target: torch.Tensor, n: int) -> torch.Tensor:
    target = target.detach().reshape(-1).to(torch.int64)
    if target.shape[0] != n:
        raise ValueError(f"metric: {n} predictions but {target.shape[0]} targets")
    return target


def _counts(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(true positives, predicted count, true count) per class, over the classes that occur."""
    classes = _classes(pred)
    target = _targets(target, classes.shape[0])
    size = int(max(int(classes.max()), int(target.max()))) + 1
    hits = torch.bincount(target[classes == target], minlength=size)
    return hits.double(), torch.bincount(classes, minlength=size).double(), torch.bincount(target, minlength=size).double()


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of samples whose predicted class is the target."""
    classes = _classes(pred)
    target = _targets(target, classes.shape[0])
    if target.numel() == 0:
        return NAN
    return float((classes == target).double().mean())


def balanced_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean recall over the classes present in `target` (scikit-learn's balanced_accuracy_score).

    A class that is only predicted, never a target, has no recall and is left out, as there.
    """
    if pred.shape[0] == 0:
        return NAN
    hits, _, true = _counts(pred, target)
    present = true > 0
    return float((hits[present] / true[present]).mean())


def f1(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Macro F1 over the classes that occur in `target` or in the predictions.

    Per class 2TP / (2TP + FP + FN): a class never predicted scores 0, as with scikit-learn's
    f1_score(average="macro") and its zero_division default.
    """
    if pred.shape[0] == 0:
        return NAN
    hits, predicted, true = _counts(pred, target)
    present = (predicted + true) > 0
    scores = 2 * hits[present] / (predicted[present] + true[present])
    return float(scores.mean())


def _binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic with average ranks.

    Tied scores share the mean of their ranks, which counts a tied (positive, negative) pair
    as half right: exactly the trapezoid through ties that scikit-learn's roc_auc_score uses.
    """
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0 or bool(torch.isnan(scores).any()):
        return NAN
    sorted_scores, order = scores.sort()
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2  # 1-based ranks start..end of each tie group
    ranks = torch.empty_like(mean_rank[inverse]).scatter_(0, order, mean_rank[inverse])
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auroc(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Area under the ROC curve; ties handled like scikit-learn's roc_auc_score.

    Binary: `pred` is one score per sample ([n] or [n, 1]; logits or probabilities give the
    same result) or two logits [n, 2]; class 1 is the positive class. More classes: the
    one-vs-rest macro average over softmax probabilities (scikit-learn's multi_class="ovr"),
    over the classes that have both positive and negative samples. NaN when undefined (one
    class only).
    """
    pred = pred.detach().double()
    target = _targets(target, pred.shape[0])
    if pred.dim() == 2 and pred.shape[1] > 2:
        probabilities = torch.softmax(pred, dim=1)
        values = [
            _binary_auroc(probabilities[:, k], target == k) for k in range(pred.shape[1])
        ]
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else NAN
    if pred.dim() == 2 and pred.shape[1] == 2:
        # logit1 - logit0 is a monotone function of the softmax probability of class 1.
        scores = pred[:, 1] - pred[:, 0]
    else:
        scores = pred.reshape(-1)
    return _binary_auroc(scores, target == 1)


def _pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression prediction and target as float64 [n, k] of the same shape."""
    pred = pred.detach().double()
    target = target.detach().double()
    if pred.shape != target.shape:
        if pred.numel() != target.numel():
            raise ValueError(f"metric: prediction shape {list(pred.shape)} does not match target {list(target.shape)}")
        pred = pred.reshape(target.shape)
    columns = math.prod(target.shape[1:])
    return pred.reshape(pred.shape[0], columns), target.reshape(target.shape[0], columns)


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error."""
    pred, target = _pair(pred, target)
    if pred.shape[0] == 0:
        return NAN
    return float(((pred - target) ** 2).mean())


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error, per output and then averaged (scikit-learn's definition)."""
    pred, target = _pair(pred, target)
    if pred.shape[0] == 0:
        return NAN
    return float(((pred - target) ** 2).mean(dim=0).sqrt().mean())


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error."""
    pred, target = _pair(pred, target)
    if pred.shape[0] == 0:
        return NAN
    return float((pred - target).abs().mean())


def r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination, per output and then averaged.

    A constant target (zero variance) scores 1 when predicted exactly and 0 otherwise, like
    scikit-learn's r2_score(force_finite=True); fewer than two samples give NaN.
    """
    pred, target = _pair(pred, target)
    if pred.shape[0] < 2:
        return NAN
    residual = ((target - pred) ** 2).sum(dim=0)
    total = ((target - target.mean(dim=0)) ** 2).sum(dim=0)
    safe = torch.where(total != 0, total, torch.ones_like(total))
    scores = torch.where(
        total != 0,
        1 - residual / safe,
        torch.where(residual == 0, torch.ones_like(total), torch.zeros_like(total)),
    )
    return float(scores.mean())


# name -> (function, task, higher_is_better)
METRICS: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], float], str, bool]] = {
    "accuracy": (accuracy, "classification", True),
    "balanced_accuracy": (balanced_accuracy, "classification", True),
    "f1": (f1, "classification", True),
    "auroc": (auroc, "classification", True),
    "mse": (mse, "regression", False),
    "rmse": (rmse, "regression", False),
    "mae": (mae, "regression", False),
    "r2": (r2, "regression", True),
}
