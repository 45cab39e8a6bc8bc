r"""LogME and ESM-LogME: the exact maximum log evidence of Bayesian linear regression.

The model
---------
For features ``F`` (``N x D``) and one target column ``y`` (``N``), Bayesian linear regression with prior
``w ~ N(0, I / alpha)`` and noise ``N(0, 1 / beta)`` has log evidence

.. math::

    L(\alpha, \beta) = \tfrac{D}{2}\log\alpha + \tfrac{N}{2}\log\beta - \tfrac12\log|A|
        - \tfrac{\beta}{2}\lVert y - Fm\rVert^2 - \tfrac{\alpha}{2}\lVert m\rVert^2 - \tfrac{N}{2}\log 2\pi,
    \qquad A = \alpha I_D + \beta F^\top F,\quad m = \beta A^{-1}F^\top y .

LogME is the mean over target columns (one-hot class indicators, or regression outputs) of
``max_{alpha, beta} L / N``.

Reduction to one dimension (why the maximum here is exact)
----------------------------------------------------------
Let ``F^T F = V diag(sigma) V^T`` with ``k`` eigenvalues ``sigma_i > 0`` and ``D - k`` zeros, and
``x_i = u_i^T y`` the coordinates of ``y`` on the left singular vectors (``x_i^2 = z_i^2 / sigma_i`` with
``z = V^T F^T y``); ``r0 = |y|^2 - sum_i x_i^2`` is the part of ``y`` outside the column space of ``F``.
Write ``lambda = alpha / beta``. Then (``log|A| = sum_i log(alpha + beta sigma_i) + (D - k) log alpha``)

* the ``D/2 log alpha`` and ``-(D - k)/2 log alpha`` terms cancel down to ``k/2 log alpha``, so directions
  with ``sigma_i = 0`` contribute nothing at all. (The widely copied fixed-point code drops the
  ``(D - k) log alpha`` term, which for ``N < D`` inflates the score by ``(D - N)/2 log alpha``, often to a
  positive value. Here the term is kept, by construction.)
* ``beta/2 |y - Fm|^2 + alpha/2 |m|^2 = beta/2 E(lambda)`` with
  ``E(lambda) = r0 + sum_i x_i^2 lambda / (lambda + sigma_i)``,

so ``L = N/2 log beta - beta/2 E(lambda) + 1/2 sum_i log(lambda / (lambda + sigma_i)) - N/2 log 2 pi``.
For fixed ``lambda`` the optimal noise precision is ``beta = N / E(lambda)``, which leaves the profile

.. math::

    \frac{1}{N}\max_\beta L = \frac{f(\lambda)}{N} + \tfrac12(\log N - 1 - \log 2\pi), \qquad
    f(\lambda) = -\tfrac{N}{2}\log E(\lambda) + \tfrac12\sum_{i \le k}\log\frac{\lambda}{\lambda + \sigma_i}.

``f`` depends on ``lambda`` only through ``lambda / sigma_i``, so the result is invariant to rescaling the
features. It is maximised over ``t = log(lambda / sigma_max)`` by :func:`_max_evidence`:

1. evaluate ``f`` on a grid of step 0.5 in ``t`` that provably contains every stationary point: below
   ``lambda_lb = min(sigma_min, k r0 / (2 N sum_i x_i^2 / sigma_i))`` the derivative is positive, and above
   ``e^25 sigma_max`` ``f`` is within ``1e-10`` (per row) of its limit ``-N/2 log |y|^2``;
2. refine the best two local maxima of the grid by safeguarded Newton on ``f'(t)`` (analytic first and
   second derivatives, bisection fallback inside the bracket ``[t_{g-1}, t_{g+1}]``), to ``|dt| < 1e-10``;
3. take the largest of the refined values, the grid values and the two limits: ``lambda -> inf``
   (``alpha -> inf``, all weights zero: ``f = -N/2 log |y|^2``) and, when ``y`` lies exactly in the column
   space of a rank-``N`` ``F`` (``r0 = 0, k = N``, only possible for ``N <= D``), ``lambda -> 0``
   (``beta -> inf``, noise-free interpolation: ``f = -N/2 log sum_i x_i^2/sigma_i - 1/2 sum_i log sigma_i``).

If ``r0 = 0`` and ``k < N`` (``y`` is reproduced exactly by a rank-deficient ``F``, e.g. duplicate rows with
equal labels when ``N <= D``) the evidence is unbounded (``beta -> inf``) and
:class:`UnboundedEvidenceError` is raised rather than returning a number set by rounding noise.

Eigenvalues below ``SIGMA_RTOL * sigma_max`` are treated as exact zeros (they are rounding noise of the
eigensolver), and ``r0`` below ``RESIDUAL_RTOL * |y|^2`` as an exact zero.

ESM-LogME (the Gram trick)
--------------------------
An Embedding Space Map maps the target's base embeddings ``F`` to ``F' = F W^T + b = F_1 W'^T`` with
``F_1 = [F, 1]`` and ``W' = [W, b]``. LogME of ``F'`` needs only the spectrum of ``F'^T F'`` and the
projections of ``F'^T y``. :func:`target_statistics` computes once per target a QR factorisation
``[F_1, Y] -> F_1 = Q R``, ``q = Q^T Y`` (so ``G = F_1^T F_1 = R^T R`` and ``F_1^T Y = R^T q``). For each
ESM, ``B = R W'^T`` (``r x D_out`` with ``r = min(N, D + 1)``) satisfies ``F' = Q B``: the eigenvalues of
``B^T B = W' G W'^T`` (or of ``B B^T`` when ``r < D_out``) are those of ``F'^T F'`` and ``x = U^T q``.
The cost per ESM is ``O(D^3)`` whatever ``N``, and no ``N x D`` matrix is ever formed per ESM. The
spectrum is obtained without multiplying ``D x D`` eigenvector matrices back
(:func:`_symmetric_spectrum`): tridiagonal reduction, reflectors applied to the ``C`` projection columns
only, divide and conquer on the tridiagonal matrix; the same numbers as ``eigh`` to rounding, in about
60 % of its time. Working from the triangular factor instead of ``G`` keeps the accuracy of forming
``F'`` directly (``logme(F W^T + b)`` agrees to about ``1e-10`` relative).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack
from numpy.typing import ArrayLike

__all__ = [
    "RESIDUAL_RTOL",
    "SIGMA_RTOL",
    "TargetStatistics",
    "UnboundedEvidenceError",
    "esm_logme",
    "esm_logme_from_statistics",
    "evidence_from_spectrum",
    "logme",
    "target_matrix",
    "target_statistics",
]

#: Eigenvalues of ``F^T F`` at or below ``SIGMA_RTOL * max(sigma)`` are treated as exact zeros.
SIGMA_RTOL = 1e-11
#: A residual ``r0 = |y|^2 - sum x_i^2`` at or below ``RESIDUAL_RTOL * |y|^2`` is treated as exact zero.
RESIDUAL_RTOL = 1e-12

_GRID_STEP = 0.5  # grid spacing in t = log(lambda / sigma_max)
_T_MAX = 25.0  # above e^25 sigma_max, f is within ~1e-10 per row of its lambda -> inf limit
_T_MIN = -200.0  # hard floor for the grid (never reached for sane inputs)
_GRID_BLOCK = 1 << 17  # elements per block when evaluating the grid (bounds memory to ~1 MB per array)
_NEWTON_TOL = 1e-10
_NEWTON_MAX_ITER = 100
_N_REFINE = 2  # local maxima of the grid refined per column


class UnboundedEvidenceError(ValueError):
    """The evidence has no finite maximum: the target is reproduced exactly by rank-deficient features."""


# ----------------------------------------------------------------------------------------------- inputs


def _as_features(features: ArrayLike, name: str = "features") -> np.ndarray:
    """Validate a 2-D, finite, non-empty real feature matrix (returned as is; callers copy to float64)."""
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x dimensions), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} contain NaN or infinite values (in {int((~finite).sum())} rows)")
    return arr


def target_matrix(labels: ArrayLike, n: int, *, regression: bool = False) -> np.ndarray:
    """The ``(n, C)`` float64 target columns LogME averages over.

    Classification: one one-hot indicator column per distinct label value (``np.unique`` order); a class
    that does not occur has no column (its indicator would be all zeros, which carries no evidence).
    Regression: ``(n,)`` or ``(n, k)`` floats, one column per output.

    Raises:
        ValueError: wrong length or shape, non-finite values, a single class, or a constant regression
            column (a constant target carries no information about the features, and a zero target makes
            the evidence unbounded).
    """
    arr = np.asarray(labels)
    if arr.ndim == 0 or arr.shape[0] != n:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
        raise ValueError(f"labels must have one row per feature row: expected {n}, got {got}")
    if regression:
        if arr.ndim not in (1, 2):
            raise ValueError(f"regression labels must have shape (n,) or (n, k), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"regression labels must be real numbers, got dtype {arr.dtype}")
        y = arr.astype(np.float64, copy=False).reshape(n, -1)
        if y.shape[1] == 0:
            raise ValueError("regression labels have no output columns")
        if not np.isfinite(y).all():
            raise ValueError("regression labels contain NaN or infinite values")
        constant = np.flatnonzero(np.ptp(y, axis=0) == 0)
        if constant.size:
            raise ValueError(
                f"constant regression target (output column {int(constant[0])} has zero variance); "
                "LogME is undefined for a target that does not vary"
            )
        return np.ascontiguousarray(y)
    if arr.ndim != 1:
        raise ValueError(f"classification labels must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("classification labels contain NaN or infinite values")
    classes, inverse = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"classification target has a single class ({classes[0]!r}); LogME needs at least two classes"
        )
    y = np.zeros((n, classes.size), dtype=np.float64)
    y[np.arange(n), inverse.reshape(-1)] = 1.0
    return y


def _compress(features: np.ndarray, y: np.ndarray, *, ones: bool) -> tuple[np.ndarray, np.ndarray]:
    """QR-compress ``[A, Y]`` with ``A = [F, 1]`` (``ones``) or ``A = F``: return ``R`` and ``q = Q^T Y``.

    ``A = Q R`` with orthonormal ``Q`` (``N x r``, ``r = min(N, P)``, ``P`` columns of ``A``). Everything
    LogME needs about ``A`` and ``Y`` besides ``|y|^2`` is in ``R`` (``r x P``) and ``q`` (``r x C``):
    ``A^T A = R^T R`` and ``A^T Y = R^T q``. The float64 matrix ``[A, Y]`` is assembled once, in the
    column-major order LAPACK wants, and factorised in place (peak memory ~ one ``N x (P + C)`` copy).
    """
    n, d = features.shape
    p = d + 1 if ones else d
    block = np.empty((n, p + y.shape[1]), dtype=np.float64, order="F")
    block[:, :d] = features
    if ones:
        block[:, d] = 1.0
    block[:, p:] = y
    m = block.shape[1]
    lwork, info = scipy.linalg.lapack.dgeqrf_lwork(n, m)
    packed, _, _, info = scipy.linalg.lapack.dgeqrf(block, lwork=max(int(lwork), 1), overwrite_a=True)
    if info != 0:  # pragma: no cover - only on invalid arguments
        raise np.linalg.LinAlgError(f"QR factorisation failed (LAPACK dgeqrf info={info})")
    r = min(n, p)
    r_full = np.triu(packed[: min(n, m)])  # R of [A, Y]; below the diagonal are Householder vectors
    return np.ascontiguousarray(r_full[:r, :p]), np.ascontiguousarray(r_full[:r, p:])


_BLAS_CONTROLLER: Any = None  # threadpoolctl.ThreadpoolController, created on first use


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run BLAS/LAPACK single-threaded inside the block (process-wide, restored on exit).

    Two reasons. Our own threads score one ESM each, which beats nesting BLAS threads. And the
    panel factorisations of QR/eigh are synchronisation-heavy: with multi-threaded OpenBLAS on a busy
    2-core machine, ``np.linalg.qr`` of a 2,000 x 387 matrix was measured at 3.4 s instead of 0.02 s.
    Without ``threadpoolctl`` this is a no-op.
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional
        yield
        return
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def _available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count, inside containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _threads_available() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:  # pragma: no cover - optional
        return False
    return True


# -------------------------------------------------------------------------------------------- maximiser


def _grid_bounds(sig: np.ndarray, kept: np.ndarray, xs: np.ndarray, r0: np.ndarray, n: int) -> float:
    """Lower end of the ``t`` grid: below it every column's ``f`` is increasing (see module notes)."""
    sig_min = np.where(kept, sig, np.inf).min(axis=-1)  # (S,)
    k = kept.sum(axis=-1)  # (S,)
    lo = np.where(np.isfinite(sig_min), sig_min, 1.0) * math.exp(-4.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c0 = (xs / np.where(kept, sig, np.inf)[:, None, :]).sum(axis=-1)  # (S, C)
        lb = k[:, None] * r0 / (2.0 * n * c0)
    lb = np.where((r0 > 0) & (c0 > 0) & (k[:, None] > 0), lb, np.inf)
    t_lo = float(np.log(min(lo.min(), lb.min()))) - 1.0
    return max(_T_MIN, min(t_lo, _T_MAX - 2.0))


def _profile_on_grid(t: np.ndarray, sig: np.ndarray, xs: np.ndarray, r0: np.ndarray, n: int) -> np.ndarray:
    """``f(t)`` for every grid point: returns ``(S, C, G)``; ``sig`` is ``(S, P)`` scaled to max 1."""
    s, p = sig.shape
    out = np.empty((s, xs.shape[1], t.size))
    block = max(1, _GRID_BLOCK // max(1, s * p))
    for g0 in range(0, t.size, block):
        lam = np.exp(t[g0 : g0 + block])  # (g,)
        ratio = sig[:, :, None] / lam  # (S, P, g): sigma_i / lambda
        a = 1.0 / (1.0 + ratio)  # lambda / (lambda + sigma_i)
        energy = r0[:, :, None] + np.matmul(xs, a)  # (S, C, g)
        logdet = -np.log1p(ratio).sum(axis=1)  # (S, g): sum_i log(lambda / (lambda + sigma_i))
        out[:, :, g0 : g0 + block] = -0.5 * n * np.log(energy) + 0.5 * logdet[:, None, :]
    return out


def _profile_at(
    t: np.ndarray, sig: np.ndarray, xs: np.ndarray, r0: np.ndarray, n: int, derivatives: bool
) -> tuple[np.ndarray, ...]:
    """``f(t)`` (or ``f'(t), f''(t)``) at one ``t`` per column and candidate: ``t`` is ``(S, C, K)``.

    With ``a_i = lambda/(lambda+sigma_i)``, ``b_i = 1 - a_i``: ``dE/dt = sum x_i^2 a_i b_i``,
    ``d2E/dt2 = sum x_i^2 a_i b_i (b_i - a_i)``, ``d/dt sum log a_i = sum b_i``,
    ``d2/dt2 sum log a_i = -sum a_i b_i``.
    """
    lam = np.exp(t)[..., None]  # (S, C, K, 1)
    s = sig[:, None, None, :]  # (S, 1, 1, P)
    x = xs[:, :, None, :]  # (S, C, 1, P)
    denom = lam + s
    a = lam / denom
    energy = r0[:, :, None] + (x * a).sum(axis=-1)
    if not derivatives:
        logdet = -np.log1p(s / lam).sum(axis=-1)
        return (-0.5 * n * np.log(energy) + 0.5 * logdet,)
    b = s / denom
    ab = a * b
    xab = x * ab
    e1 = xab.sum(axis=-1) / energy
    e2 = (xab * (b - a)).sum(axis=-1) / energy
    grad = 0.5 * b.sum(axis=-1) - 0.5 * n * e1
    hess = -0.5 * n * (e2 - e1 * e1) - 0.5 * ab.sum(axis=-1)
    return grad, hess


def _newton(
    t: np.ndarray, lo: np.ndarray, hi: np.ndarray, sig: np.ndarray, xs: np.ndarray, r0: np.ndarray, n: int
) -> np.ndarray:
    """Safeguarded Newton on ``f'(t) = 0`` inside ``[lo, hi]``, vectorised over ``(S, C, K)``."""
    active = np.ones(t.shape, dtype=bool)
    for _ in range(_NEWTON_MAX_ITER):
        grad, hess = _profile_at(t, sig, xs, r0, n, derivatives=True)
        rising = grad > 0
        lo = np.where(active & rising, t, lo)
        hi = np.where(active & ~rising, t, hi)
        stationary = grad == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(stationary, t, t - grad / hess)
        ok = stationary | ((hess < 0) & (step >= lo) & (step <= hi))
        new = np.where(active, np.where(ok, step, 0.5 * (lo + hi)), t)
        active &= (np.abs(new - t) > _NEWTON_TOL) & (hi - lo > _NEWTON_TOL)
        t = new
        if not active.any():
            break
    return t


def _max_evidence(sigma: np.ndarray, x_sq: np.ndarray, y_sq: np.ndarray, n: int) -> np.ndarray:
    """``max_{alpha, beta} L / N`` for every (spectrum, column): the one evidence maximiser.

    Args:
        sigma: ``(S, P)`` eigenvalues of ``F^T F`` (any subset containing all non-zero ones; zeros, tiny
            and slightly negative rounding values are allowed and treated as zero).
        x_sq: ``(S, C, P)`` squared coordinates ``x_i^2 = (u_i^T y)^2`` of each column on the left singular
            vector of each eigenvalue (ignored where the eigenvalue is treated as zero).
        y_sq: ``(S, C)`` or ``(C,)`` squared norms ``|y|^2``.
        n: number of rows ``N``.

    Returns:
        ``(S, C)`` float64 LogME values per column.

    Raises:
        UnboundedEvidenceError: a column is reproduced exactly by a rank-deficient ``F`` (``r0 = 0, k < N``).
        ValueError: a column is zero (``|y|^2 = 0``).
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    x_sq = np.asarray(x_sq, dtype=np.float64)
    s_count, c_count = x_sq.shape[0], x_sq.shape[1]
    y_sq = np.broadcast_to(np.asarray(y_sq, dtype=np.float64), (s_count, c_count))
    if not (y_sq > 0).all():
        raise ValueError("a target column is identically zero; LogME is undefined for it")

    # Scale eigenvalues to max 1 (f depends only on lambda / sigma_i); drop numerically-zero ones.
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)
    smax = sigma.max(axis=-1, keepdims=True)
    kept = (sigma > SIGMA_RTOL * smax) & (smax > 0)
    sig = np.where(kept, sigma / np.where(smax > 0, smax, 1.0), 0.0)
    xs = np.where(kept[:, None, :], np.nan_to_num(x_sq, nan=0.0, posinf=0.0), 0.0)
    k = kept.sum(axis=-1)
    r0 = y_sq - xs.sum(axis=-1)
    r0 = np.where(r0 <= RESIDUAL_RTOL * y_sq, 0.0, r0)

    exact = r0 == 0
    unbounded = exact & (k[:, None] < n)
    if unbounded.any():
        s_bad, c_bad = (int(i) for i in np.argwhere(unbounded)[0])
        raise UnboundedEvidenceError(
            f"LogME evidence is unbounded: target column {c_bad} is reproduced exactly by features of rank "
            f"{int(k[s_bad])} < {n} rows (e.g. duplicate rows with equal labels when rows <= dimensions); "
            "remove duplicate rows or use more rows than feature dimensions"
        )

    # 1. grid over t = log(lambda / sigma_max)
    t_lo = _grid_bounds(sig, kept, xs, r0, n)
    grid = np.arange(_T_MAX, t_lo - _GRID_STEP, -_GRID_STEP)[::-1]
    f_grid = _profile_on_grid(grid, sig, xs, r0, n)  # (S, C, G)
    best = f_grid.max(axis=-1)

    # 2. refine the best local maxima of the grid
    g_count = grid.size
    left = np.concatenate([np.full((*f_grid.shape[:2], 1), -np.inf), f_grid[..., :-1]], axis=-1)
    right = np.concatenate([f_grid[..., 1:], np.full((*f_grid.shape[:2], 1), -np.inf)], axis=-1)
    peaks = np.where((f_grid >= left) & (f_grid >= right), f_grid, -np.inf)
    n_peaks = int(np.isfinite(peaks).sum(axis=-1).max())
    k_ref = max(1, min(_N_REFINE, n_peaks, g_count))
    idx = np.argsort(-peaks, axis=-1, kind="stable")[..., :k_ref]  # (S, C, K)
    t0 = grid[idx]
    lo = grid[np.maximum(idx - 1, 0)]
    hi = grid[np.minimum(idx + 1, g_count - 1)]
    f_ref = np.empty(t0.shape)
    rows = max(1, _GRID_BLOCK // max(1, t0[0].size * sig.shape[1]))  # bound the (rows, C, K, P) temporaries
    for s0 in range(0, s_count, rows):
        part = slice(s0, s0 + rows)
        t_ref = _newton(t0[part], lo[part], hi[part], sig[part], xs[part], r0[part], n)
        (f_ref[part],) = _profile_at(t_ref, sig[part], xs[part], r0[part], n, derivatives=False)
    best = np.maximum(best, np.nan_to_num(f_ref, nan=-np.inf).max(axis=-1))

    # 3. the two limits
    best = np.maximum(best, -0.5 * n * np.log(y_sq))  # lambda -> inf: w = 0, pure noise
    plateau = exact & (k[:, None] == n)
    if plateau.any():  # lambda -> 0 with y in the column space of a rank-N F: noise-free interpolation
        with np.errstate(divide="ignore"):
            inv_sig = np.where(kept, 1.0 / np.where(kept, sig, 1.0), 0.0)
            c0 = (xs * inv_sig[:, None, :]).sum(axis=-1)
            logsig = np.where(kept, np.log(np.where(kept, sig, 1.0)), 0.0).sum(axis=-1)
            f0 = -0.5 * n * np.log(c0) - 0.5 * logsig[:, None]
        best = np.where(plateau, np.maximum(best, f0), best)

    return best / n + 0.5 * (math.log(n) - 1.0 - math.log(2.0 * math.pi))


def evidence_from_spectrum(sigma: ArrayLike, proj_sq: ArrayLike, y_sq: ArrayLike, n: int) -> np.ndarray:
    """Maximum log evidence per row, ``max_{alpha, beta} L / N``, from spectral quantities alone.

    With ``F^T F = V diag(sigma) V^T`` and ``z = V^T F^T y``, everything LogME needs is ``sigma``,
    ``z_i^2``, ``|y|^2`` and ``N``: ``x_i^2 = z_i^2 / sigma_i`` and ``r0 = |y|^2 - sum x_i^2``. The dimension
    ``D`` is not needed: with the ``(D - k) log alpha`` term of ``log|A|`` kept, eigenvalues that are zero
    contribute exactly nothing (module notes), so ``sigma`` may hold all ``D`` eigenvalues or only the
    non-zero ones. Eigenvalues at or below ``SIGMA_RTOL * max(sigma)`` are treated as exact zeros.

    Args:
        sigma: ``(..., P)`` eigenvalues of ``F^T F``.
        proj_sq: ``(..., P)`` for one target column, or ``(..., C, P)`` for ``C`` columns: ``z_i^2``.
        y_sq: ``|y|^2``: shape ``(...)`` for one column, ``(..., C)`` for ``C`` columns.
        n: number of rows ``N``.

    Returns:
        LogME per column, shape ``(...)`` or ``(..., C)`` (a 0-d array for a single spectrum and column).
    """
    sig = np.asarray(sigma, dtype=np.float64)
    z2 = np.asarray(proj_sq, dtype=np.float64)
    if sig.ndim < 1:
        raise ValueError("sigma must have at least one dimension")
    batch = sig.shape[:-1]
    single = z2.ndim == sig.ndim
    if single:
        z2 = z2[..., None, :]
    if z2.shape[:-2] != batch or z2.shape[-1] != sig.shape[-1]:
        raise ValueError(f"proj_sq shape {np.shape(proj_sq)} does not match sigma shape {sig.shape}")
    c = z2.shape[-2]
    ysq = np.asarray(y_sq, dtype=np.float64)
    ysq = ysq[..., None] if single else ysq
    ysq = np.broadcast_to(ysq, (*batch, c))
    if n < 1:
        raise ValueError(f"n must be a positive number of rows, got {n}")
    sig2 = sig.reshape(-1, sig.shape[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x2 = np.where(sig2[:, None, :] > 0, z2.reshape(-1, c, sig.shape[-1]) / sig2[:, None, :], 0.0)
    out = _max_evidence(sig2, x2, ysq.reshape(-1, c), int(n)).reshape(*batch, c)
    return out[..., 0] if single else out


# ------------------------------------------------------------------------------------------------ LogME


def logme(features: ArrayLike, labels: ArrayLike, *, regression: bool = False) -> float:
    """LogME of ``features`` for ``labels``: mean over target columns of ``max_{alpha, beta} L / N``.

    Exact (see the module notes): correct for ``N < D`` (the ``(D - k) log alpha`` term is kept), invariant
    to rescaling the features, and maximised to ``|dt| < 1e-10`` in ``log(alpha / beta)`` rather than by a
    capped fixed-point iteration. Computed in float64 from a QR compression of ``[F, Y]`` and the SVD of the
    small triangular factor.

    Args:
        features: ``(N, D)`` features (any real dtype; computed in float64).
        labels: classification: ``(N,)`` class ids (one one-hot column per distinct value); regression:
            ``(N,)`` or ``(N, k)`` floats (one column per output).
        regression: treat ``labels`` as regression targets.

    Raises:
        ValueError: bad shapes, non-finite values, a single class, a constant regression column.
        UnboundedEvidenceError: (a ``ValueError``) a target column is reproduced exactly by rank-deficient
            features, so the evidence has no finite maximum.
    """
    f = _as_features(features)
    y = target_matrix(labels, f.shape[0], regression=regression)
    with _single_threaded_blas():
        r, q = _compress(f, y, ones=False)
        u, s, _ = np.linalg.svd(r, full_matrices=False)
    x_sq = (u.T @ q) ** 2  # (k, C)
    y_sq = np.einsum("ij,ij->j", y, y)
    return float(_max_evidence((s * s)[None, :], x_sq.T[None], y_sq[None], f.shape[0]).mean())


# -------------------------------------------------------------------------------------------- ESM-LogME


@dataclass(frozen=True)
class TargetStatistics:
    """Everything ESM-LogME needs about a target, computed once: O((D + 1) x (D + 1 + C)) numbers.

    ``F_1 = [F, 1] = Q R`` (thin QR, ``Q`` orthonormal ``N x r``, ``r = min(N, D + 1)``).

    Attributes:
        factor: ``R``, ``(r, D + 1)`` upper triangular (trapezoidal if ``N < D + 1``); ``G = R^T R``.
        projection: ``q = Q^T Y``, ``(r, C)``; ``F_1^T Y = R^T q``.
        y_sq: ``(C,)`` squared norms of the target columns.
        n: number of target rows ``N``.
    """

    factor: np.ndarray
    projection: np.ndarray
    y_sq: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        """Input dimension ``D`` of the features (the factor has ``D + 1`` columns)."""
        return self.factor.shape[1] - 1

    @property
    def num_columns(self) -> int:
        """Number of target columns ``C``."""
        return self.projection.shape[1]

    @property
    def gram(self) -> np.ndarray:
        """``G = F_1^T F_1`` (``(D + 1) x (D + 1)``), for reference; the computation uses ``R``."""
        return self.factor.T @ self.factor

    @property
    def cross(self) -> np.ndarray:
        """``H = F_1^T Y`` (``(D + 1) x C``), for reference."""
        return self.factor.T @ self.projection


def target_statistics(
    features: ArrayLike, labels: ArrayLike, *, regression: bool = False
) -> TargetStatistics:
    """Per-target statistics for :func:`esm_logme_from_statistics` (validates inputs like :func:`logme`).

    Costs one QR factorisation of the ``N x (D + 1 + C)`` matrix ``[F, 1, Y]``: ``O(N D^2)``, once.
    """
    f = _as_features(features)
    y = target_matrix(labels, f.shape[0], regression=regression)
    with _single_threaded_blas():
        r, q = _compress(f, y, ones=True)
    return TargetStatistics(factor=r, projection=q, y_sq=np.einsum("ij,ij->j", y, y), n=f.shape[0])


def _symmetric_spectrum(gram: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of a symmetric matrix and the coordinates ``S^T c`` of ``vectors`` on its eigenvectors.

    ``gram`` is ``(P, P)``, Fortran-ordered, with its lower triangle filled (it is overwritten);
    ``vectors`` is ``(P, C)``. Returns ascending eigenvalues ``(P,)`` and ``(P, C)`` coordinates, the same
    as ``sigma, v = eigh(gram); v.T @ vectors`` (to ~1e-12), about twice as fast for ``C << P``: the
    matrix is reduced to tridiagonal form ``T = Q^T G Q`` (LAPACK ``dsytrd``), the reflectors ``Q`` are
    applied to the ``C`` vectors only (``dormqr``) instead of being accumulated into a ``P x P`` matrix and
    multiplied back onto the eigenvectors, and ``T``'s eigenvalues and eigenvectors come from divide and
    conquer on the tridiagonal matrix (``dstevd``, the solver ``eigh`` itself uses after the reduction).
    """
    p = gram.shape[0]
    if p < 3:  # nothing to reduce (and LAPACK's wrappers reject the empty off-diagonal of P = 1)
        sigma, v = np.linalg.eigh(gram, UPLO="L")
        return sigma, v.T @ vectors
    lwork = _SYTRD_LWORK.get(p)
    if lwork is None:
        lwork = _SYTRD_LWORK[p] = max(1, int(scipy.linalg.lapack.dsytrd_lwork(p, lower=1)[0]))
    packed, diag, off, tau, info = scipy.linalg.lapack.dsytrd(gram, lower=1, lwork=lwork, overwrite_a=1)
    if info != 0:  # pragma: no cover - only on invalid arguments
        raise np.linalg.LinAlgError(f"tridiagonal reduction failed (LAPACK dsytrd info={info})")
    # Q = H(1) ... H(P-1); H(i) acts on rows i+1.. and is stored below the subdiagonal like a QR of
    # packed[1:, :P-1], so Q^T c leaves row 0 alone and is a QR-style product on rows 1..
    coords = np.array(vectors, dtype=np.float64, order="F")
    coords[1:], _, info = scipy.linalg.lapack.dormqr(
        "L", "T", packed[1:, : p - 1], tau, coords[1:], lwork=max(1, 64 * coords.shape[1]), overwrite_c=1
    )
    if info != 0:  # pragma: no cover - only on invalid arguments
        raise np.linalg.LinAlgError(f"applying the reflectors failed (LAPACK dormqr info={info})")
    sigma, s_vec, info = scipy.linalg.lapack.dstevd(diag, off, compute_v=1, overwrite_d=1, overwrite_e=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"tridiagonal eigensolver did not converge (LAPACK dstevd info={info})")
    return sigma, s_vec.T @ coords


_SYTRD_LWORK: dict[int, int] = {}  # optimal dsytrd workspace per matrix size (a LAPACK query costs ~10 us)


def _esm_spectrum(r: np.ndarray, q: np.ndarray, w_aug: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of ``F'^T F'`` and squared coordinates ``x^2`` (``C x P``) for one ESM ``W' = [W, b]``.

    ``r`` is the factor ``R``; when it is square (``N > D``) it must be Fortran-ordered and is applied as
    a triangular matrix (BLAS ``trmm``: half the work of a general product). Only the lower triangle of
    the Gram matrix is formed (``syrk``) and its spectrum comes from :func:`_symmetric_spectrum`.
    """
    # B = R W'^T, so that F' = Q B: (D + 1, D_out) when R is square, else (N, D_out) with N < D + 1
    b = scipy.linalg.blas.dtrmm(1.0, r, w_aug.T) if r.shape[0] == r.shape[1] else r @ w_aug.T
    b = np.asfortranarray(b)
    if b.shape[0] < b.shape[1]:  # few rows: the r x r Gram B B^T has the same non-zero spectrum
        gram = scipy.linalg.blas.dsyrk(1.0, b, lower=1)
        sigma, x = _symmetric_spectrum(gram, q)
    else:
        gram = scipy.linalg.blas.dsyrk(1.0, b, trans=1, lower=1)
        sigma, z = _symmetric_spectrum(gram, b.T @ q)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(sigma[:, None] > 0, z / np.sqrt(np.where(sigma > 0, sigma, 1.0))[:, None], 0.0)
    return sigma, (x * x).T


def _esm_chunk(stats: TargetStatistics, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """ESM-LogME for one chunk of maps; NaN for maps that cannot be scored (non-finite, eigensolver failure).

    Maps are converted to float64 one at a time, so the memory held is ``O(D^2 + chunk x C x D)``.
    """
    s_count, d_out, d_in = weights.shape
    p = min(stats.factor.shape[0], d_out)
    sigma = np.zeros((s_count, p))
    x_sq = np.zeros((s_count, stats.num_columns, p))
    ok = np.zeros(s_count, dtype=bool)
    w_aug = np.empty((d_out, d_in + 1))
    factor = np.asfortranarray(stats.factor) if stats.factor.shape[0] == d_in + 1 else stats.factor
    for i in range(s_count):
        w_aug[:, :d_in] = weights[i]
        w_aug[:, d_in] = biases[i]
        if not np.isfinite(w_aug).all():
            continue
        try:
            sigma[i], x_sq[i] = _esm_spectrum(factor, stats.projection, w_aug)
        except np.linalg.LinAlgError:
            continue
        ok[i] = True
    out = np.full(s_count, np.nan)
    if ok.any():
        out[ok] = _max_evidence(sigma[ok], x_sq[ok], stats.y_sq, stats.n).mean(axis=-1)
    return out


def esm_logme_from_statistics(
    stats: TargetStatistics,
    weights: ArrayLike,
    biases: ArrayLike | None,
    *,
    batch_size: int = 32,
    n_threads: int | None = None,
) -> np.ndarray:
    """ESM-LogME of each map ``(weights[s], biases[s])`` for the target summarised by ``stats``.

    ``result[s] == logme(F @ weights[s].T + biases[s], labels)`` (to ~1e-10 relative), computed from ``R``
    and ``q`` only: per ESM one ``(D + 1) x D_out`` product, one ``D_out x D_out`` (or ``N x N`` when
    ``N <= D``) Gram matrix and its eigendecomposition. Memory: ``O(n_threads x D^2 + batch_size x C x D)``.

    Args:
        stats: from :func:`target_statistics`.
        weights: ``(S, D_out, D)`` map weights (fp16/fp32/fp64; computed in float64).
        biases: ``(S, D_out)`` map biases, or ``None`` for maps without bias.
        batch_size: ESMs whose evidence maximisation is vectorised together.
        n_threads: threads that score ESMs in parallel (BLAS runs single-threaded meanwhile); default: the
            CPUs available to this process.

    Returns:
        ``(S,)`` float64 scores; NaN for a map with non-finite parameters or a failed eigensolver.

    Raises:
        ValueError: shape mismatch.
        UnboundedEvidenceError: the target is reproduced exactly (see :func:`logme`).
    """
    w = np.asarray(weights)
    if w.ndim != 3:
        raise ValueError(f"weights must have shape (S, D_out, D_in), got {w.shape}")
    s_count, d_out, d_in = w.shape
    if d_in != stats.dim:
        raise ValueError(
            f"weights take {d_in}-dimensional inputs but the features have {stats.dim} dimensions"
        )
    bias = np.zeros((s_count, d_out)) if biases is None else np.asarray(biases)
    if bias.shape != (s_count, d_out):
        raise ValueError(f"biases must have shape {(s_count, d_out)}, got {bias.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if s_count == 0:
        return np.zeros(0)
    threads = n_threads if n_threads is not None else _available_cpus()
    threads = max(1, min(threads, s_count)) if _threads_available() else 1
    chunk = max(1, min(batch_size, -(-s_count // threads)))
    starts = range(0, s_count, chunk)

    def run(start: int) -> np.ndarray:
        return _esm_chunk(stats, w[start : start + chunk], bias[start : start + chunk])

    with _single_threaded_blas():
        if threads == 1:
            parts = [run(start) for start in starts]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                parts = list(pool.map(run, starts))
    return np.concatenate(parts)


def esm_logme(
    features: ArrayLike,
    labels: ArrayLike,
    weights: ArrayLike,
    biases: ArrayLike | None,
    *,
    regression: bool = False,
    batch_size: int = 32,
    n_threads: int | None = None,
) -> np.ndarray:
    """ESM-LogME: ``result[s] = logme(features @ weights[s].T + biases[s], labels)`` for every map ``s``.

    Computed with the Gram trick (module notes): the target is summarised once by
    :func:`target_statistics`, then each map costs ``O(D^3)`` independent of ``N``; no ``N x D`` matrix is
    formed per map. See :func:`esm_logme_from_statistics` for the arguments and return value.
    """
    stats = target_statistics(features, labels, regression=regression)
    return esm_logme_from_statistics(stats, weights, biases, batch_size=batch_size, n_threads=n_threads)
