"""scikit-learn in place of hand-written numerics: the same numbers as the code it replaced.

The ``PINNED`` values were computed by the hand-written implementations (macro-F1 loop, Ledoit-Wolf
formula, SVD ridge with exact leave-one-out) before they were replaced; the references below are those
implementations, kept here as independent checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from taskscout.methods.source_model import frozen_transfer_score, regularized_h_score
from taskscout.train.scoring import macro_f1
from tests.conftest import make_task


def _reference_macro_f1(labels, predictions, num_classes):
    scores = []
    for cls in range(num_classes):
        tp = np.sum((predictions == cls) & (labels == cls))
        fp = np.sum((predictions == cls) & (labels != cls))
        fn = np.sum((predictions != cls) & (labels == cls))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def _reference_ridge_loo(x, y, grid):
    """Ridge with an unpenalised intercept, lambda (multiples of N) chosen by exact LOO squared error."""
    n = x.shape[0]
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    uty, s2 = u.T @ yc, s * s
    best, best_err = grid[0] * n, np.inf
    for lam in grid * n:
        shrink = s2 / (s2 + lam)
        leverage = np.minimum((u * u) @ shrink + 1.0 / n, 1.0 - 1e-12)
        err = float(np.mean(((yc - u @ (shrink[:, None] * uty)) / (1.0 - leverage)[:, None]) ** 2))
        if err < best_err:
            best, best_err = lam, err
    coef = vt.T @ ((s / (s2 + best))[:, None] * uty)
    return best, coef, y_mean - x_mean @ coef


def test_macro_f1_matches_the_per_class_formula():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    predictions = np.array([0, 1, 4, 1, 1, 2, 0, 2, 4, 3])
    # per class F1: 0: 2*1/(2+1+2)=0.4, 1: 2*2/(4+1)=0.8, 2: 2*2/(4+0+1)=0.8, 3: 2*1/(2+0+1)=2/3
    assert macro_f1(labels, predictions, 4) == pytest.approx((0.4 + 0.8 + 0.8 + 2 / 3) / 4, abs=1e-15)
    # class 4 (only predicted) counts with F1 0 once it is one of the task's classes
    assert macro_f1(labels, predictions, 5) == pytest.approx((0.4 + 0.8 + 0.8 + 2 / 3) / 5, abs=1e-15)
    # a class only predicted counts with F1 0; a class outside 0..K-1 is ignored; nothing -> NaN
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 0]), 3) == pytest.approx(0.4)
    assert macro_f1(np.array([0, 0]), np.array([0, 2]), 2) == pytest.approx(2 / 3)
    assert np.isnan(macro_f1(np.array([], int), np.array([], int), 2))
    for seed in range(20):
        r = np.random.default_rng(seed)
        k = int(r.integers(2, 6))
        y, p = r.integers(0, k, 30), r.integers(0, k + 1, 30)
        assert macro_f1(y, p, k) == pytest.approx(_reference_macro_f1(y, p, k), abs=1e-12)


@pytest.mark.parametrize(("n", "d", "k"), [(40, 10, 1), (30, 60, 3), (8, 3, 2), (120, 200, 4)])
def test_ridge_cv_is_the_exact_leave_one_out_ridge(n, d, k):
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(n + d + k)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, d)
    y = x[:, :2] @ rng.normal(size=(2, k)) + 2 * rng.normal(size=(n, k))
    x, y = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    grid = 10.0 ** np.arange(-4.0, 2.01, 0.5)
    lam, coef, intercept = _reference_ridge_loo(x, y, grid)
    head = RidgeCV(alphas=grid * n).fit(x, y)
    assert head.alpha_ == pytest.approx(lam, rel=1e-12)
    assert np.allclose(head.coef_.reshape(k, d).T, coef, atol=1e-10)
    assert np.allclose(np.ravel(head.intercept_), intercept, atol=1e-10)


def test_frozen_transfer_and_regularized_h_score_are_unchanged():
    rng = np.random.default_rng(11)
    task = make_task("c", n=90, classes=3)
    reg = make_task("r", n=80, regression=True)
    fc = rng.normal(size=(90, 40)) + 0.8 * np.eye(3)[task.labels] @ rng.normal(size=(3, 40))
    fr = rng.normal(size=(80, 100)) + 0.5 * reg.labels[:, None] * rng.normal(size=(1, 100))
    assert frozen_transfer_score(fc, task) == pytest.approx(0.9777777777777777, abs=1e-12)
    assert frozen_transfer_score(fr, reg) == pytest.approx(0.8811746490639778, abs=1e-9)
    assert frozen_transfer_score(fc[:, :5], task, folds=3, seed=2) == pytest.approx(0.5777777777777777)
    assert regularized_h_score(fc, task.labels) == pytest.approx(1.7272118177714075, rel=1e-12)
    assert regularized_h_score(fc[:, :5], task.labels) == pytest.approx(0.3709067888849957, rel=1e-12)
