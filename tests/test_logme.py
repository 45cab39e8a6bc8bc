"""LogME / ESM-LogME: exactness against reference values and brute force, the Gram trick, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from taskscout.methods.logme import (
    UnboundedEvidenceError,
    _esm_spectrum,
    _symmetric_spectrum,
    esm_logme,
    esm_logme_from_statistics,
    evidence_from_spectrum,
    logme,
    target_matrix,
    target_statistics,
)

FIXTURES = Path(__file__).parent / "fixtures" / "logme"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


# --------------------------------------------------------------------------------------------- helpers


def dense_log_evidence(f: np.ndarray, y: np.ndarray, log_alpha: float, log_beta: float) -> float:
    """L(alpha, beta) straight from its definition with dense matrices (no spectral shortcuts).

    For N < D the determinant and solves use the N x N form (Sylvester / push-through identities), which is
    the same quantity but stays accurate when beta / alpha is huge.
    """
    alpha, beta = math.exp(log_alpha), math.exp(log_beta)
    n, d = f.shape
    if n < d:
        k = alpha * np.eye(n) + beta * f @ f.T
        chol = np.linalg.cholesky(k)
        log_det_a = (d - n) * log_alpha + 2.0 * np.log(np.diag(chol)).sum()
        u = np.linalg.solve(k, y)
        m = beta * f.T @ u
        residual = alpha * u
    else:
        a = alpha * np.eye(d) + beta * f.T @ f
        chol = np.linalg.cholesky(a)
        log_det_a = 2.0 * np.log(np.diag(chol)).sum()
        m = beta * np.linalg.solve(a, f.T @ y)
        residual = y - f @ m
    return float(
        d / 2 * log_alpha
        + n / 2 * log_beta
        - log_det_a / 2
        - beta / 2 * residual @ residual
        - alpha / 2 * m @ m
        - n / 2 * math.log(2 * math.pi)
    )


def brute_force_logme(f: np.ndarray, labels: np.ndarray, *, regression: bool = False) -> float:
    """Mean over columns of max L / N, maximised by Nelder-Mead over (log alpha, log beta), multi-start."""
    n, d = f.shape
    y_all = target_matrix(labels, n, regression=regression)
    scale = np.trace(f.T @ f) / d
    values = []
    for y in y_all.T:

        def negative(p: np.ndarray, y: np.ndarray = y) -> float:
            try:
                return -dense_log_evidence(f, y, p[0], p[1])
            except np.linalg.LinAlgError:
                return np.inf

        best = -np.inf
        for ca in (1e-3, 1.0):
            for cb in (1.0, 1e3):
                start = np.array([math.log(scale * ca), math.log(n / (y @ y) * cb)])
                res = scipy.optimize.minimize(
                    negative,
                    start,
                    method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 3000, "maxfev": 6000},
                )
                best = max(best, -res.fun)
        values.append(best / n)
    return float(np.mean(values))


def make_case(rng: np.random.Generator, n: int, d: int, target: str, scale: float = 1.0):
    """Features with a shared offset (like embeddings) and a classification or regression target."""
    f = rng.standard_normal((n, d)) + 0.5 * (np.arange(d) < 3)
    f *= scale
    if target.startswith("cls"):
        return f, rng.integers(0, int(target[3:]), n), False
    k = int(target[3:])
    y = f[:, :4] @ rng.standard_normal((4, k)) / scale + rng.standard_normal((n, k))
    return f, y if k > 1 else y[:, 0], True


def sentence_like(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Unit-norm rows with a common mean direction and a decaying spectrum (float32, like an encoder)."""
    z = (
        (rng.standard_normal((n, d)) * np.exp(-np.arange(d) / 40.0))
        @ rng.standard_normal((d, d))
        / np.sqrt(d)
    )
    z += 2.0 * rng.standard_normal(d) / np.sqrt(d)
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def dropped_term_fixed_point(f: np.ndarray, labels: np.ndarray, iterations: int = 11) -> float:
    """The widely copied variant, written from its description: MacKay fixed point, 11 iterations from
    alpha = beta = 1, evidence evaluated WITHOUT the (D - k) log alpha term of log|A|."""
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s * s
    values = []
    for y in target_matrix(labels, n).T:
        x = u.T @ y
        r0 = y @ y - x @ x
        alpha = beta = 1.0
        for _ in range(iterations):
            gamma = np.sum(beta * sigma / (alpha + beta * sigma))
            m2 = np.sum(beta**2 * sigma * x**2 / (alpha + beta * sigma) ** 2)
            res2 = r0 + np.sum(alpha**2 * x**2 / (alpha + beta * sigma) ** 2)
            alpha, beta = gamma / m2, (n - gamma) / res2
        m2 = np.sum(beta**2 * sigma * x**2 / (alpha + beta * sigma) ** 2)
        res2 = r0 + np.sum(alpha**2 * x**2 / (alpha + beta * sigma) ** 2)
        evidence = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))  # missing: - (d - k) / 2 * log(alpha)
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * math.log(2 * math.pi)
        )
        values.append(evidence / n)
    return float(np.mean(values))


# ----------------------------------------------------------------------------------- reference values


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_reference_cases(case: str) -> None:
    data = np.load(FIXTURES / f"{case}.npz")
    spec = EXPECTED[case]
    assert data["features"].shape == (spec["n"], spec["d"])
    value = logme(data["features"], data["labels"], regression=spec["task"] == "regression")
    assert value == pytest.approx(spec["logme"], abs=1e-3)
    assert value == pytest.approx(spec["logme"], abs=1e-9)  # we are in fact exact to rounding


# ------------------------------------------------------------------------------------------ brute force


@pytest.mark.parametrize(
    ("n", "d", "target", "scale"),
    [
        (60, 20, "cls2", 1.0),  # N > D
        (30, 40, "cls2", 1.0),  # N < D
        (25, 25, "cls5", 1.0),  # N = D
        (40, 15, "reg3", 1e-4),  # multi-output regression, tiny features
        (40, 15, "cls5", 1e4),  # huge features
        (15, 30, "reg2", 1.0),  # N < D regression: supremum at beta -> inf (noise-free interpolation)
        (12, 30, "cls3", 1e-4),  # N < D, tiny features
        (50, 10, "reg1", 1.0),
    ],
)
def test_matches_brute_force(n: int, d: int, target: str, scale: float) -> None:
    f, labels, regression = make_case(np.random.default_rng(n * 1000 + d), n, d, target, scale)
    expected = brute_force_logme(f, labels, regression=regression)
    assert logme(f, labels, regression=regression) == pytest.approx(expected, abs=1e-8)


def test_effectively_one_class_matches_brute_force() -> None:
    """Heavily imbalanced (one stray label): still exact."""
    rng = np.random.default_rng(7)
    f = rng.standard_normal((40, 12))
    labels = np.zeros(40, dtype=int)
    labels[5] = 1
    assert logme(f, labels) == pytest.approx(brute_force_logme(f, labels), abs=1e-8)


def test_maximiser_on_random_spectra() -> None:
    """evidence_from_spectrum vs a fine scan + bounded scalar refinement of the profiled evidence."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        p = int(rng.integers(1, 40))
        n = int(rng.integers(p // 2 + 1, 3 * p + 5))
        sigma = np.exp(rng.uniform(-20, 5, p)) * (rng.random(p) > 0.1)
        sigma[n:] = 0.0
        x_sq = np.exp(rng.uniform(-8, 3, p)) * (sigma > 0)
        r0 = math.exp(rng.uniform(-10, 3))
        y_sq = x_sq.sum() + r0
        value = float(evidence_from_spectrum(sigma, sigma * x_sq, y_sq, n))

        s, x = sigma[sigma > 0], x_sq[sigma > 0]

        def profile(t: float, s: np.ndarray = s, x: np.ndarray = x, r0: float = r0, n: int = n) -> float:
            lam = math.exp(t)
            energy = r0 + np.sum(x * lam / (lam + s))
            return (-n / 2 * math.log(energy) - 0.5 * np.sum(np.log1p(s / lam))) / n

        grid = np.linspace(-60, 40, 2001)
        values = np.array([profile(t) for t in grid])
        i = int(values.argmax())
        res = scipy.optimize.minimize_scalar(
            lambda t, profile=profile: -profile(t),
            bounds=(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]),
            method="bounded",
            options={"xatol": 1e-12},
        )
        best = max(values[i], -res.fun, -0.5 * math.log(y_sq))
        assert value == pytest.approx(best + 0.5 * (math.log(n) - 1 - math.log(2 * math.pi)), abs=1e-9)


# ---------------------------------------------------------------------------------------- properties


@pytest.mark.parametrize(("n", "d"), [(80, 20), (20, 80)])
@pytest.mark.parametrize("c", [1e-4, 1e4])
def test_scale_invariance(n: int, d: int, c: float) -> None:
    """Scaling F by c is the same model with alpha rescaled by c^2: the maximum is unchanged."""
    f, labels, _ = make_case(np.random.default_rng(3), n, d, "cls3")
    assert logme(c * f, labels) == pytest.approx(logme(f, labels), abs=1e-10)


def test_dropping_the_log_alpha_term_is_wrong_for_n_below_d() -> None:
    """For N < D the copied formula (without (D - k) log alpha) is wrong, scale-dependent and positive."""
    rng = np.random.default_rng(3)
    f = rng.standard_normal((30, 200))
    labels = rng.integers(0, 2, 30)
    ours = logme(f, labels)
    assert ours == pytest.approx(brute_force_logme(f, labels), abs=1e-8)
    assert ours < 0  # an average log density of binary indicators under a fitted Gaussian
    for c in (1e-2, 1.0, 1e2):
        buggy = dropped_term_fixed_point(c * f, labels)
        assert buggy > 0  # impossible for a correct score here
        assert abs(buggy - ours) > 1.0
        assert logme(c * f, labels) == pytest.approx(ours, abs=1e-10)
    # ...and the copied value moves with the feature scale, ours does not
    assert abs(dropped_term_fixed_point(1e2 * f, labels) - dropped_term_fixed_point(f, labels)) > 1.0


def test_zero_eigenvalues_contribute_nothing() -> None:
    """All D eigenvalues (with zeros) or only the non-zero ones give the same evidence."""
    rng = np.random.default_rng(5)
    f = rng.standard_normal((10, 25))
    y = target_matrix(rng.integers(0, 2, 10), 10)
    sigma_full, v = np.linalg.eigh(f.T @ f)  # 25 eigenvalues, 15 of them ~0
    z_sq = ((v.T @ (f.T @ y)) ** 2).T
    y_sq = (y * y).sum(axis=0)
    full = evidence_from_spectrum(sigma_full, z_sq, y_sq, 10)
    top = np.argsort(sigma_full)[-10:]
    nonzero = evidence_from_spectrum(sigma_full[top], z_sq[:, top], y_sq, 10)
    np.testing.assert_allclose(full, nonzero, atol=1e-9)
    assert full.mean() == pytest.approx(logme(f, np.argmax(y, axis=1)), abs=1e-9)
    single = evidence_from_spectrum(sigma_full, z_sq[0], y_sq[0], 10)
    assert single.shape == () and float(single) == pytest.approx(full[0], abs=1e-12)


def test_uninformative_features_give_the_pure_noise_limit() -> None:
    """y orthogonal to every feature direction: sup at alpha -> inf, -1/2 (log(2 pi |y|^2 / N) + 1)."""
    f = np.zeros((6, 2))
    f[0, 0], f[1, 1] = 1.0, 1.0
    y = np.array([0.0, 0.0, 1.0, -1.0, 2.0, -2.0])
    expected = -0.5 * (math.log(2 * math.pi * (y @ y) / 6) + 1)
    assert logme(f, y, regression=True) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------- ESM-LogME


def _maps(rng: np.random.Generator, s: int, d_out: int, d_in: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.eye(d_out, d_in) + 0.3 * rng.standard_normal((s, d_out, d_in)) / np.sqrt(d_in)
    return w, 0.1 * rng.standard_normal((s, d_out))


@pytest.mark.parametrize(
    ("n", "d_in", "d_out", "target"),
    [
        (300, 64, 64, "cls3"),  # N > D
        (40, 64, 64, "cls2"),  # N < D
        (60, 24, 40, "reg2"),  # N > D_in, D_out > D_in, regression
        (30, 50, 20, "cls4"),  # N > D_out, N < D_in
        (65, 64, 64, "cls2"),  # N = D + 1
    ],
)
def test_esm_logme_equals_logme_of_mapped_features(n: int, d_in: int, d_out: int, target: str) -> None:
    rng = np.random.default_rng(n + d_in + d_out)
    f, labels, regression = make_case(rng, n, d_in, target)
    w, b = _maps(rng, 5, d_out, d_in)
    scores = esm_logme(f, labels, w, b, regression=regression)
    direct = np.array([logme(f @ w[s].T + b[s], labels, regression=regression) for s in range(5)])
    np.testing.assert_allclose(scores, direct, rtol=1e-6)
    np.testing.assert_allclose(scores, direct, rtol=1e-10)  # in fact: the factor keeps full accuracy


@pytest.mark.parametrize("n", [1000, 100])
def test_esm_logme_on_sentence_like_embeddings(n: int) -> None:
    rng = np.random.default_rng(n)
    f = sentence_like(rng, n, 384)
    labels = rng.integers(0, 3, n)
    w, b = _maps(rng, 2, 384, 384)
    w, b = w.astype(np.float32), b.astype(np.float32)
    scores = esm_logme(f, labels, w, b)
    f64 = f.astype(np.float64)
    direct = [logme(f64 @ w[s].astype(np.float64).T + b[s].astype(np.float64), labels) for s in range(2)]
    np.testing.assert_allclose(scores, direct, rtol=1e-6)


def _eigh_spectrum(r: np.ndarray, q: np.ndarray, w_aug: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: ``eigh`` of the full Gram matrix of ``B = R W'^T``, then ``x = U^T q``."""
    b = r @ w_aug.T
    u, s, _ = np.linalg.svd(b, full_matrices=False)  # F' = Q B, so x = (left singular vectors)^T q
    sigma = s * s
    x = u.T @ q
    return sigma, (x * x).T


def _matched(sigma: np.ndarray, x_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descending, with zero eigenvalues and their coordinates dropped (both solvers keep only P of them)."""
    order = np.argsort(-sigma)
    keep = sigma[order] > 1e-9 * sigma.max()
    return sigma[order][keep], x_sq[:, order][:, keep]


@pytest.mark.parametrize(
    ("n", "d_in", "d_out", "c", "scale"),
    [
        (500, 48, 48, 3, 1.0),  # N > D
        (20, 48, 48, 2, 1.0),  # N < D: the N x N Gram of B B^T
        (500, 48, 48, 1, 1.0),  # a single target column
        (500, 48, 48, 4, 1e-6),  # tiny features
        (500, 48, 48, 4, 1e6),  # huge features
        (200, 30, 60, 2, 1.0),  # D_out > D_in: rank-deficient Gram with many zero eigenvalues
        (200, 2, 2, 2, 1.0),  # P = 2: no reduction needed
        (200, 1, 1, 2, 1.0),  # P = 1
    ],
)
def test_esm_spectrum_matches_eigh(n: int, d_in: int, d_out: int, c: int, scale: float) -> None:
    rng = np.random.default_rng(n + d_in + c)
    f = scale * rng.standard_normal((n, d_in))
    y = rng.standard_normal((n, c))
    qq, r = np.linalg.qr(np.hstack([f, np.ones((n, 1))]))
    q = qq.T @ y
    w, b = _maps(rng, 1, d_out, d_in)
    w_aug = np.hstack([w[0], b[0][:, None]])
    sigma, x_sq = _matched(*_esm_spectrum(np.asfortranarray(r), q, w_aug))
    ref_sigma, ref_x = _matched(*_eigh_spectrum(r, q, w_aug))
    assert sigma.shape == ref_sigma.shape
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-10, atol=1e-12 * ref_sigma.max())
    np.testing.assert_allclose(x_sq, ref_x, rtol=1e-8, atol=1e-12 * (q * q).sum())


def test_symmetric_spectrum_with_repeated_eigenvalues() -> None:
    """Repeated eigenvalues: the eigenvectors are not unique, but the eigenvalues and the squared norms of
    the coordinates within each eigenspace are, and those are what the evidence depends on."""
    rng = np.random.default_rng(7)
    p = 40
    basis = np.linalg.qr(rng.standard_normal((p, p)))[0]
    values = np.repeat([5.0, 2.0, 1.0, 1e-3], p // 4)
    gram = (basis * values) @ basis.T
    vectors = rng.standard_normal((p, 3))
    sigma, coords = _symmetric_spectrum(np.asfortranarray(np.tril(gram)), vectors)
    np.testing.assert_allclose(sigma, np.sort(values), rtol=1e-12, atol=1e-13 * values.max())
    for value in np.unique(values):
        inside = np.isclose(sigma, value, rtol=1e-8)
        expected = ((basis[:, values == value].T @ vectors) ** 2).sum(axis=0)
        np.testing.assert_allclose((coords[inside] ** 2).sum(axis=0), expected, rtol=1e-10)
    # the evidence computed from either decomposition is the same
    ref_sigma, ref_v = np.linalg.eigh(gram)
    n = 100
    y_sq = 3.0 * (coords**2 / sigma[:, None]).sum(axis=0)  # leaves a residual r0 > 0
    ours = evidence_from_spectrum(sigma, (coords**2).T, y_sq, n)
    ref = evidence_from_spectrum(ref_sigma, ((ref_v.T @ vectors) ** 2).T, y_sq, n)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_esm_batching_and_threads_do_not_change_results() -> None:
    rng = np.random.default_rng(1)
    f, labels, _ = make_case(rng, 120, 32, "cls3")
    w, b = _maps(rng, 7, 32, 32)
    stats = target_statistics(f, labels)
    reference = esm_logme_from_statistics(stats, w, b, batch_size=64, n_threads=1)
    for batch_size, threads in [(2, 1), (2, 2), (3, 2), (64, 2)]:
        got = esm_logme_from_statistics(stats, w, b, batch_size=batch_size, n_threads=threads)
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-13)


def test_esm_accepts_fp16_and_no_bias() -> None:
    rng = np.random.default_rng(2)
    f, labels, _ = make_case(rng, 80, 16, "cls2")
    w, b = _maps(rng, 3, 16, 16)
    w16, b16 = w.astype(np.float16), b.astype(np.float16)
    scores = esm_logme(f, labels, w16, b16)
    direct = [logme(f @ w16[s].astype(np.float64).T + b16[s].astype(np.float64), labels) for s in range(3)]
    np.testing.assert_allclose(scores, direct, rtol=1e-10)
    no_bias = esm_logme(f, labels, w, None)
    np.testing.assert_allclose(no_bias, [logme(f @ w[s].T, labels) for s in range(3)], rtol=1e-10)


def test_target_statistics_hold_the_gram_identities() -> None:
    rng = np.random.default_rng(4)
    f, labels, _ = make_case(rng, 50, 8, "cls3")
    stats = target_statistics(f, labels)
    f1 = np.hstack([f, np.ones((50, 1))])
    y = target_matrix(labels, 50)
    np.testing.assert_allclose(stats.gram, f1.T @ f1, atol=1e-10)
    np.testing.assert_allclose(stats.cross, f1.T @ y, atol=1e-10)
    np.testing.assert_allclose(stats.y_sq, (y * y).sum(axis=0))
    assert (stats.n, stats.dim, stats.num_columns) == (50, 8, 3)


def test_esm_bad_maps_get_nan_not_a_crash() -> None:
    rng = np.random.default_rng(6)
    f, labels, _ = make_case(rng, 50, 8, "cls2")
    w, b = _maps(rng, 3, 8, 8)
    w[1, 0, 0] = np.nan
    scores = esm_logme(f, labels, w, b)
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()
    assert scores[0] == pytest.approx(logme(f @ w[0].T + b[0], labels), rel=1e-10)


def test_esm_shape_errors() -> None:
    rng = np.random.default_rng(6)
    f, labels, _ = make_case(rng, 50, 8, "cls2")
    w, b = _maps(rng, 2, 8, 8)
    with pytest.raises(ValueError, match="inputs"):
        esm_logme(f, labels, w[:, :, :7], b)
    with pytest.raises(ValueError, match="biases"):
        esm_logme(f, labels, w, b[:, :7])
    with pytest.raises(ValueError, match="weights"):
        esm_logme(f, labels, w[0], b)


# ----------------------------------------------------------------------------------------------- errors


def test_single_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="single class"):
        logme(np.random.default_rng(0).standard_normal((10, 3)), np.full(10, 4))


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="one row per feature row"):
        logme(np.zeros((10, 3)), np.arange(9) % 2)


def test_non_finite_features_are_an_error() -> None:
    f = np.random.default_rng(0).standard_normal((10, 3))
    f[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        logme(f, np.arange(10) % 2)
    with pytest.raises(ValueError, match="NaN"):
        esm_logme(f, np.arange(10) % 2, np.ones((1, 3, 3)), np.zeros((1, 3)))


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        logme(np.zeros(10), np.arange(10) % 2)
    with pytest.raises(ValueError, match="1-D"):
        logme(np.zeros((10, 2)), np.zeros((10, 2), dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        logme(np.ones((4, 2)), np.array([0.0, 1.0, np.nan, 2.0]), regression=True)


def test_constant_regression_target_is_an_error() -> None:
    f = np.random.default_rng(0).standard_normal((20, 3))
    y = np.column_stack([np.arange(20.0), np.full(20, 3.0)])
    with pytest.raises(ValueError, match="constant regression target"):
        logme(f, y, regression=True)


def test_exactly_reproduced_target_is_unbounded() -> None:
    """Duplicate rows with equal labels and N <= D: y is fitted exactly by a rank-deficient F, beta -> inf."""
    rng = np.random.default_rng(0)
    f = rng.standard_normal((10, 30))
    f[9] = f[8]
    labels = np.arange(10) % 2
    labels[9] = labels[8]
    with pytest.raises(UnboundedEvidenceError, match="duplicate"):
        logme(f, labels)
    # different labels on the duplicates: bounded again
    labels[9] = 1 - labels[8]
    assert np.isfinite(logme(f, labels))
