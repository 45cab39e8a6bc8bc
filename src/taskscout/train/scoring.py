"""How well predictions match a task's labels: the target metric of a transfer experiment.

Classification: accuracy (the papers' main metric) and macro-F1. Regression: Pearson, Spearman and their
mean (the papers' main metric), averaged over outputs for multi-output targets.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from taskscout.data.task import Task


def macro_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes ``0..num_classes-1`` that occur in labels or
    predictions (a class only predicted scores 0); NaN when there are none."""
    from sklearn.metrics import f1_score

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    present = np.intersect1d(np.union1d(labels, predictions), np.arange(num_classes))
    if present.size == 0:
        return float("nan")
    return float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0.0))


def _correlation(kind: str, a: np.ndarray, b: np.ndarray) -> float:
    # A constant prediction has no correlation; report 0 (no signal) rather than NaN so averages work.
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    result = stats.pearsonr(a, b) if kind == "pearson" else stats.spearmanr(a, b)
    return float(result[0])


def score_predictions(task: Task, predictions: np.ndarray) -> dict[str, float]:
    """Metrics of ``predictions`` against ``task.labels``; ``main`` is the one rankings are judged by."""
    if task.is_classification:
        labels = task.labels
        accuracy = float(np.mean(predictions == labels))
        return {
            "main": accuracy,
            "accuracy": accuracy,
            "macro_f1": macro_f1(labels, predictions, task.num_classes),
        }
    labels = task.labels.reshape(len(task), -1)
    preds = np.asarray(predictions, dtype=np.float64).reshape(len(task), -1)
    pearson = float(
        np.mean([_correlation("pearson", preds[:, j], labels[:, j]) for j in range(labels.shape[1])])
    )
    spearman = float(
        np.mean([_correlation("spearman", preds[:, j], labels[:, j]) for j in range(labels.shape[1])])
    )
    return {"main": (pearson + spearman) / 2, "pearson": pearson, "spearman": spearman}
