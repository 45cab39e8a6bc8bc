"""How much signal a ground truth holds, and how a method compares with chance and with the noise.

A ranking figure means nothing without two reference points beside it: what a random ranking of the
same sources scores (:func:`random_expectation`, :func:`random_null`, :func:`permutation_p_value`), and
what the experiment itself can resolve given its seed noise (:func:`split_half_reliability`,
:func:`noise_ceiling`). :func:`paired_gain_tests` says which sources beat the no-transfer baseline by
more than seed noise.

Per-seed inputs are "seed tables": one target's results as a DataFrame with one row per source (the
no-transfer baseline is the row ``""``) and one column per seed (:func:`seed_table` builds it from the
runs CSV). A seed is the same target split, data order and initialisation for every source, so results
are paired across sources by seed. Missing runs are NaN.

Everything works for any protocol: any number of seeds >= 2 (fewer gives NaN where a measure needs two),
any number of sources, classification or regression targets (the main metric is whatever the runs hold).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from taskscout.evaluate.metrics import _scaled_exp2m1, align_sources, evaluate_ranking

__all__ = [
    "NoiseCeiling",
    "detectable_gain",
    "lower_is_better",
    "noise_ceiling",
    "paired_gain_tests",
    "paired_method_p_value",
    "permutation_p_value",
    "pooled_seed_noise",
    "random_expectation",
    "random_null",
    "seed_splits",
    "seed_table",
    "signal_by_target",
    "split_half_reliability",
]

BASELINE = ""  # the no-transfer row of a seed table (same convention as the runs CSV)
RANDOM_METRICS = ("ndcg", "ndcg_vu", "rho", "spearman", "top1_gain")  # plus regret@k for each k


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (Regret@k and the rank of the best source)."""
    return metric.startswith("regret") or metric == "rho"


# --------------------------------------------------------------------------------------------------
# Seed tables
# --------------------------------------------------------------------------------------------------


def seed_table(runs: pd.DataFrame, target: str) -> pd.DataFrame:
    """One target's runs as a source x seed table of the main metric (baseline row ``""``).

    ``runs`` has columns ``source, target, seed, main`` (the runs CSV). Repeated runs of the same
    (source, seed) are averaged. Rows and columns are sorted; missing runs are NaN.
    """
    rows = runs[runs["target"] == target]
    if rows.empty:
        return pd.DataFrame(dtype=float)
    table = rows.pivot_table(index="source", columns="seed", values="main", aggfunc="mean")
    table.columns = [int(c) for c in table.columns]
    return table.sort_index().sort_index(axis=1).astype(float)


def _source_rows(table: pd.DataFrame, exclude: str | Collection[str] | None = None) -> pd.DataFrame:
    """The source rows (baseline and excluded names removed) that have every seed of the table."""
    drop = {BASELINE} | ({exclude} if isinstance(exclude, str) else set(exclude or ()))
    sources = table.loc[[s for s in table.index if s not in drop]]
    return sources.dropna(axis=0, how="any")


def seed_splits(
    seeds: Sequence[int], *, max_splits: int = 1000, random_state: int = 0
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every way to split ``seeds`` into two halves (sizes ``floor(n/2)`` and ``ceil(n/2)``).

    A split and its mirror image are the same split (listed once). 2 seeds give 1 split, 3 seeds 3
    (one seed against the other two), 4 seeds 3, 5 seeds 10. Above ``max_splits`` a fixed-seed random
    subset of that size is returned (drawn without listing them all). Fewer than two seeds give no split.
    """
    seeds = tuple(sorted(seeds))
    n = len(seeds)
    if n < 2:
        return []
    half = n // 2
    count = math.comb(n, half) // (2 if half == n - half else 1)
    if count > max_splits:
        # Too many to list (40 seeds: 7e10): draw distinct random halves with a fixed seed instead.
        rng = np.random.default_rng(random_state)
        drawn: dict[tuple[int, ...], tuple[int, ...]] = {}
        while len(drawn) < max_splits:
            first = tuple(sorted(rng.choice(seeds, size=half, replace=False).tolist()))
            second = tuple(s for s in seeds if s not in first)
            if half == n - half and first > second:
                first, second = second, first
            drawn.setdefault(first, second)
        return sorted(drawn.items())
    splits = []
    for first in itertools.combinations(seeds, half):
        second = tuple(s for s in seeds if s not in first)
        if half == n - half and first > second:
            continue  # the mirror of a split already listed
        splits.append((first, second))
    return splits


# --------------------------------------------------------------------------------------------------
# Reliability of the ground truth
# --------------------------------------------------------------------------------------------------


def split_half_reliability(
    table: pd.DataFrame, *, exclude: str | Collection[str] | None = None, max_splits: int = 1000
) -> float:
    """Split-half reliability of the source ordering, corrected to the mean over all seeds.

    Definition. Let ``X[s, j]`` be source ``s``'s result with seed ``j`` (the baseline row and sources
    missing any seed are left out) and ``n`` the number of seeds. For each split of the seeds into halves
    ``A`` and ``B`` (:func:`seed_splits`), with ``a[s]``, ``b[s]`` and ``m[s]`` the per-source means over
    ``A``, ``B`` and all seeds::

        R(A, B) = cov_s(a, b) / var_s(m)

    and the reliability is the mean of ``R`` over the splits. Under the usual model ``X[s, j] = T[s] +
    e[s, j]`` (independent seed noise of equal variance), ``cov(a, b)`` estimates the variance of the true
    source effects ``T`` and ``var(m)`` that of the n-seed means, so ``R`` estimates the share of the
    spread of the reported per-source means that is real rather than seed noise: 1 = the ordering would
    not change with more seeds, 0 = it is noise. For two halves of equal size and variance this is
    exactly the Spearman-Brown corrected split-half correlation ``2 r / (1 + r)`` (Flanagan-Rulon form);
    unlike the correction formula it also holds for the unequal halves of an odd number of seeds (with 3
    seeds: one seed against the mean of the other two, averaged over the 3 choices). It can be negative
    when the halves disagree more than chance.

    NaN with fewer than 2 seeds or 3 complete sources, or when the source means are all equal.
    """
    x = _source_rows(table, exclude)
    if x.shape[0] < 3 or x.shape[1] < 2:
        return float("nan")
    full = x.mean(axis=1).to_numpy()
    var_full = float(np.var(full, ddof=1))
    if not var_full > 0.0:
        return float("nan")
    values = []
    for first, second in seed_splits(list(x.columns), max_splits=max_splits):
        a = x[list(first)].mean(axis=1).to_numpy()
        b = x[list(second)].mean(axis=1).to_numpy()
        values.append(float(np.cov(a, b, ddof=1)[0, 1]) / var_full)
    return float(np.mean(values))


# --------------------------------------------------------------------------------------------------
# Random rankings
# --------------------------------------------------------------------------------------------------


def _average_ranks(truth: np.ndarray) -> np.ndarray:
    return stats.rankdata(truth)


def random_expectation(
    truth: Mapping[str, float],
    baseline: float,
    target: str | Collection[str] | None = None,
    ks: Iterable[int] = (1, 3, 5),
) -> dict[str, float]:
    """Exact expectation of each metric of :func:`~taskscout.evaluate.metrics.evaluate_ranking` under a
    uniformly random ranking of the sources in ``truth`` (every order equally likely).

    Closed forms, with ``n`` sources and true values sorted ``v_1 >= ... >= v_n``:

    * NDCG (both kinds, whole ranking): ``E[DCG] = mean(gain) * sum_i 1/log2(i + 1)`` and the ideal DCG
      is fixed, so ``E[NDCG] = 100 * E[DCG] / IDCG``;
    * Regret@k: the best of a random k-subset is ``v_i`` with probability ``C(n - i, k - 1) / C(n, k)``;
    * rho (rank of the best): with ``m`` sources tied for best, the first of them in a random order is
      at position ``(n + 1) / (m + 1)`` on average;
    * Spearman and Kendall: 0 (a random order is unrelated to the truth);
    * top-1 gain: ``mean(truth) - baseline``.

    Keys as :func:`evaluate_ranking`; NaN wherever that function would give NaN for every ranking.
    """
    ks = tuple(ks)
    aligned = align_sources(dict.fromkeys(truth, 0.0), truth, target)
    t = np.sort(aligned.truth)[::-1]
    n = len(t)
    out: dict[str, float] = {}
    nan = float("nan")
    if n == 0:
        return {
            m: nan
            for m in (
                "ndcg",
                "ndcg_vu",
                *(f"regret@{k}" for k in ks),
                "rho",
                "spearman",
                "kendall",
                "top1_gain",
            )
        }
    base_ok = baseline is not None and math.isfinite(baseline)
    discounts = 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))

    def expected_ndcg(exponents: np.ndarray) -> float:
        gains = _scaled_exp2m1(exponents)
        idcg = math.fsum(np.sort(gains)[::-1] * discounts)
        if not idcg > 0.0:
            return nan
        return 100.0 * float(np.mean(gains)) * math.fsum(discounts) / idcg

    out["ndcg"] = expected_ndcg(100.0 * t)
    out["ndcg_vu"] = expected_ndcg(100.0 * np.maximum(t - baseline, 0.0)) if base_ok else nan
    best = max(float(t[0]), float(baseline)) if base_ok else nan
    for k in ks:
        if not base_ok or not best > 0.0:
            out[f"regret@{k}"] = nan
            continue
        kk = min(k, n)
        # P(best of the k picked is the i-th best) = C(n - i, k - 1) / C(n, k), i = 1..n
        probs = np.array([math.comb(n - i, kk - 1) for i in range(1, n + 1)], dtype=np.float64)
        probs /= math.comb(n, kk)
        out[f"regret@{k}"] = 100.0 * (best - float(np.dot(probs, t))) / best
    m = int(np.count_nonzero(t == t[0]))
    out["rho"] = (n + 1) / (m + 1)
    constant = n < 3 or bool(np.all(t == t[0]))
    out["spearman"] = nan if constant else 0.0
    out["kendall"] = nan if constant else 0.0
    out["top1_gain"] = float(np.mean(t)) - float(baseline) if base_ok else nan
    return out


def _order_metrics(
    t: np.ndarray, baseline: float, orders: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """The metrics of many rankings at once: row ``r`` of ``orders`` lists indices into ``t``, best first.

    Same definitions as :mod:`taskscout.evaluate.metrics` (checked against it in the tests); Kendall's
    tau is left out (not shown in reports).
    """
    n_rank, n = orders.shape
    nan = np.full(n_rank, np.nan)
    out: dict[str, np.ndarray] = {}
    discounts = 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))
    base_ok = baseline is not None and math.isfinite(baseline)

    def ndcg(exponents: np.ndarray) -> np.ndarray:
        gains = _scaled_exp2m1(exponents)
        idcg = float(np.sort(gains)[::-1] @ discounts)
        return 100.0 * (gains[orders] @ discounts) / idcg if idcg > 0.0 else nan.copy()

    out["ndcg"] = ndcg(100.0 * t)
    out["ndcg_vu"] = ndcg(100.0 * np.maximum(t - baseline, 0.0)) if base_ok else nan.copy()
    ranked = t[orders]
    best = max(float(t.max()), float(baseline)) if base_ok else float("nan")
    for k in ks:
        if base_ok and best > 0.0:
            out[f"regret@{k}"] = 100.0 * (best - ranked[:, :k].max(axis=1)) / best
        else:
            out[f"regret@{k}"] = nan.copy()
    out["rho"] = np.argmax(ranked == t.max(), axis=1).astype(np.float64) + 1.0
    if n >= 3 and not np.all(t == t[0]):
        # Spearman = Pearson correlation of the predicted ranks (distinct) with the average truth ranks.
        predicted = np.empty_like(orders, dtype=np.float64)
        np.put_along_axis(predicted, orders, np.arange(n, 0, -1, dtype=np.float64)[None, :], axis=1)
        y = _average_ranks(t)
        y = (y - y.mean()) / np.linalg.norm(y - y.mean())
        xc = predicted - predicted.mean(axis=1, keepdims=True)
        out["spearman"] = (xc @ y) / np.linalg.norm(xc, axis=1)
    else:
        out["spearman"] = nan.copy()
    out["top1_gain"] = ranked[:, 0] - baseline if base_ok else nan.copy()
    return out


def random_null(
    truth: Mapping[str, float],
    baseline: float,
    target: str | Collection[str] | None = None,
    ks: Iterable[int] = (1, 3, 5),
    *,
    n_permutations: int = 2000,
    random_state: int | Sequence[int] = 0,
) -> dict[str, np.ndarray]:
    """Each metric of ``n_permutations`` uniformly random rankings of the sources in ``truth``.

    Returns ``{metric: array of n_permutations values}`` for ``ndcg, ndcg_vu, regret@k..., rho,
    spearman, top1_gain`` (the same definitions as :func:`evaluate_ranking`). Deterministic for a given
    ``random_state`` (anything :func:`numpy.random.default_rng` takes); the i-th permutation depends
    only on the number of sources and the seed, so the nulls of different targets, which
    :func:`permutation_p_value` pairs, must come from different seeds.
    """
    aligned = align_sources(dict.fromkeys(truth, 0.0), truth, target)
    n = len(aligned)
    if n == 0:
        metrics = ["ndcg", "ndcg_vu", *(f"regret@{k}" for k in ks), "rho", "spearman", "top1_gain"]
        return {m: np.full(n_permutations, np.nan) for m in metrics}
    rng = np.random.default_rng(random_state)
    orders = np.argsort(rng.random((n_permutations, n)), axis=1)
    return _order_metrics(aligned.truth, baseline, orders, tuple(ks))


def permutation_p_value(observed: Sequence[float], null: Sequence[np.ndarray], metric: str) -> float:
    """One-sided p-value of a method's mean metric over targets against random rankings.

    ``observed[j]`` is the method's value on target ``j`` and ``null[j]`` that metric for many random
    rankings of the same sources on the same target (:func:`random_null`, the same number of
    permutations for every target). Targets where the observed value is NaN are left out. The statistic
    is the mean over targets; its null distribution pairs the ``i``-th random ranking of every target
    (so the targets' nulls must be drawn independently, e.g. with a seed per target), and
    ::

        p = (1 + #{i: null_mean_i at least as good as the observed mean}) / (1 + n_permutations)

    ("as good" = ``<=`` for Regret@k and rho, ``>=`` otherwise; the +1 counts the observed ranking as
    one of the permutations, so p is never 0). NaN when no target is left.
    """
    obs = np.asarray(observed, dtype=np.float64)
    keep = ~np.isnan(obs)
    if not keep.any():
        return float("nan")
    matrix = np.vstack([np.asarray(null[j], dtype=np.float64) for j in np.flatnonzero(keep)])
    null_mean = np.nanmean(matrix, axis=0) if np.isnan(matrix).any() else matrix.mean(axis=0)
    mean = float(obs[keep].mean())
    tolerance = 1e-9 * max(1.0, abs(mean))  # equal means (e.g. the same ranking) count as "as good"
    if lower_is_better(metric):
        hits = np.count_nonzero(null_mean <= mean + tolerance)
    else:
        hits = np.count_nonzero(null_mean >= mean - tolerance)
    return (1.0 + hits) / (1.0 + len(null_mean))


def paired_method_p_value(
    better: Sequence[float],
    worse: Sequence[float],
    metric: str,
    *,
    max_exact: int = 16,
    n_permutations: int = 20000,
    random_state: int = 0,
) -> float:
    """One-sided p-value that one method (``better``) outranks another (``worse``) on the same targets.

    ``better[j]`` and ``worse[j]`` are the two methods' values of ``metric`` on target ``j``; targets
    where either is NaN are left out. Comparing two methods by whether their confidence intervals over
    targets overlap ignores that both rank the same targets (hard targets are hard for both); this is
    the paired sign-flip permutation test of the mean per-target difference: under "no difference"
    each difference is as likely negative as positive, so

        p = #{sign flips s: mean(s * d) at least the observed mean(d)} / #{sign flips}

    over all 2^n flips (exact) for ``n <= max_exact`` targets, else over ``n_permutations`` random flips
    plus the observed one. Direction follows :func:`lower_is_better`. NaN with no paired target.
    """
    a, b = np.asarray(better, dtype=np.float64), np.asarray(worse, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} vs {b.shape}")
    diff = a - b
    diff = diff[~np.isnan(diff)]
    if lower_is_better(metric):
        diff = -diff
    n = len(diff)
    if n == 0:
        return float("nan")
    observed = diff.mean()
    tolerance = 1e-12 * max(1.0, float(np.abs(diff).max()))
    if n <= max_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(np.mean(signs @ diff / n >= observed - tolerance))
    rng = np.random.default_rng(random_state)
    signs = rng.choice((1.0, -1.0), size=(n_permutations, n))
    hits = np.count_nonzero(signs @ diff / n >= observed - tolerance)
    return (1.0 + hits) / (1.0 + n_permutations)


# --------------------------------------------------------------------------------------------------
# Noise ceiling
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseCeiling:
    """:func:`noise_ceiling`'s result: metric -> mean value, for the half-seed ranking and for chance.

    ``random`` is the exact random-ranking expectation (:func:`random_expectation`) against the same
    half-seed truths, the chance level the ceiling must be compared with: a half-seed truth is noisier
    than the full-seed one, which changes what a random ranking scores on it (NDCG in particular).
    """

    metrics: dict[str, float]
    random: dict[str, float]
    splits: int


def noise_ceiling(
    table: pd.DataFrame,
    target: str | Collection[str] | None = None,
    ks: Iterable[int] = (1, 3, 5),
    *,
    max_splits: int = 1000,
) -> NoiseCeiling:
    """What ranking by an independent half of the seeds scores against the other half.

    For every split of the seeds into halves ``A`` and ``B`` (:func:`seed_splits`) and both directions,
    the sources are ranked by their mean over ``A`` and that ranking is scored with
    :func:`evaluate_ranking` against the means over ``B`` (baseline: the no-transfer mean over ``B``).
    Returns the mean of each metric over splits and directions (NaN-aware), and beside it the random
    expectation against the same half-seed truths.

    Relation to the full-seed ground truth: a method is scored against the mean over all ``n`` seeds. A
    perfect method (one that knew every source's expected result) would score against that truth better
    than this ceiling, because here both the ranking and the truth are noisy and each has only half of
    the seeds; and worse than a perfect score (100 NDCG, 0 regret), because the n-seed truth is still
    noisy. The ceiling is therefore a conservative reference: a method at or above it ranks as well as
    re-running the experiment does, and differences between methods well below it are not resolvable
    by this ground truth. Sources missing any seed are left out. Empty metrics with fewer than 2 seeds.
    """
    ks = tuple(ks)
    x = _source_rows(table, target)
    if x.shape[1] < 2 or x.shape[0] == 0:
        return NoiseCeiling({}, {}, 0)
    base = table.loc[BASELINE] if BASELINE in table.index else None
    scored: list[dict[str, float]] = []
    chance: list[dict[str, float]] = []
    for first, second in seed_splits(list(x.columns), max_splits=max_splits):
        for rank_by, score_on in ((first, second), (second, first)):
            scores = x[list(rank_by)].mean(axis=1).to_dict()
            truth = x[list(score_on)].mean(axis=1).to_dict()
            b = float(base[list(score_on)].mean()) if base is not None else float("nan")
            scored.append(evaluate_ranking(scores, truth, b, ks=ks))
            chance.append(random_expectation(truth, b, ks=ks))

    def mean(rows: list[dict[str, float]]) -> dict[str, float]:
        frame = pd.DataFrame(rows)
        return {m: float(frame[m].mean()) if frame[m].notna().any() else float("nan") for m in frame.columns}

    return NoiseCeiling(mean(scored), mean(chance), len(scored) // 2)


# --------------------------------------------------------------------------------------------------
# Which sources beat the baseline
# --------------------------------------------------------------------------------------------------


def pooled_seed_noise(
    table: pd.DataFrame, *, exclude: str | Collection[str] | None = None
) -> tuple[float, int]:
    """The variance of one run's seed noise on a target, pooled over its sources, and its degrees of
    freedom: ``(sigma2, df)``.

    Model: ``X[s, j] = mu[s] + beta[j] + e[s, j]`` with source effects ``mu``, seed effects ``beta`` (a
    seed is the same split, data order and initialisation for every source, so it shifts them all) and
    independent noise of variance ``sigma2``. On the rows with every seed (the baseline included;
    ``exclude`` left out) it is the residual mean square of the additive two-way fit,
    ``sum((X - row mean - column mean + grand mean)^2) / ((R - 1)(J - 1))``. ``(nan, 0)`` with fewer
    than 2 such rows or 2 seeds.
    """
    drop = {exclude} if isinstance(exclude, str) else set(exclude or ())
    x = table.loc[[s for s in table.index if s not in drop]].dropna(axis=0, how="any").to_numpy(float)
    rows, seeds = x.shape
    if rows < 2 or seeds < 2:
        return float("nan"), 0
    df = (rows - 1) * (seeds - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float((resid**2).sum() / df), df


def detectable_gain(
    table: pd.DataFrame, *, exclude: str | Collection[str] | None = None, alpha: float = 0.05
) -> float:
    """The smallest mean gain over no transfer that :func:`paired_gain_tests` calls significant
    (``p < alpha``, before the FDR correction) for a source with all of the table's seeds:
    ``t_{1-alpha, df} sqrt(2 sigma2 / n)`` with the pooled seed noise ``(sigma2, df)`` and ``n`` seeds.
    In the metric's units; NaN when the noise cannot be estimated. What separates "no source helps"
    from "the test cannot see it"."""
    sigma2, df = pooled_seed_noise(table, exclude=exclude)
    n = table.shape[1]
    if not (math.isfinite(sigma2) and df > 0 and n > 0):
        return float("nan")
    return float(stats.t.ppf(1 - alpha, df) * math.sqrt(2 * sigma2 / n))


def paired_gain_tests(
    table: pd.DataFrame, *, exclude: str | Collection[str] | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Per source: does it beat the no-transfer baseline by more than seed noise? (paired test)

    Seeds pair the runs (the same target split, data order and initialisation with and without the
    source), so the test is on the per-seed differences ``d_j = X[s, j] - X[baseline, j]`` over the
    ``n`` seeds both have. A source's own ``n`` differences (3 in the benchmark) say little about the
    noise: a per-source paired t-test has ``n - 1 = 2`` degrees of freedom and needs a t of 2.9 for
    p < 0.05. The noise comes from training on the target, which is the same for every source, so it
    is estimated once per target from all its sources (:func:`pooled_seed_noise`, the additive two-way
    model of source and seed effects) and each source is tested with it::

        t = mean(d) / sqrt(2 sigma2 / n),   p = P(T_df >= t)   (one-sided, df of the pooled estimate)

    which is exact under that model for sources with every seed (the residuals are independent of the
    differences of their means) and close to it for the others.
    ``p_t`` is the per-source paired t-test (``scipy.stats.ttest_rel``, alternative "greater"; NaN
    below 2 seeds; 0 or 1 when all differences are equal) for comparison. ``q`` is the
    Benjamini-Hochberg adjusted ``p`` over the sources of this target (``scipy.stats
    .false_discovery_control``): with ~40 sources about two reach ``p < 0.05`` by chance, so
    ``significant`` (``q < alpha``) is the count to trust.

    Returns one row per source (sorted by mean gain, best first) with columns ``source, seeds,
    gain`` (mean difference in the metric's units), ``gain_sd`` (standard deviation of the differences),
    ``p, p_t, q, significant``. Empty when there is no baseline row.
    """
    columns = ["source", "seeds", "gain", "gain_sd", "p", "p_t", "q", "significant"]
    if BASELINE not in table.index:
        return pd.DataFrame(columns=columns)
    base = table.loc[BASELINE]
    excluded = {exclude} if isinstance(exclude, str) else set(exclude or ())
    sigma2, df = pooled_seed_noise(table, exclude=excluded)
    rows = []
    for source in table.index:
        if source == BASELINE or source in excluded:
            continue
        both = table.loc[source].notna() & base.notna()
        x, y = table.loc[source][both].to_numpy(), base[both].to_numpy()
        d = x - y
        p = p_t = float("nan")
        if len(d) >= 1 and df > 0 and sigma2 > 0:
            p = float(stats.t.sf(d.mean() / math.sqrt(2.0 * sigma2 / len(d)), df))
        if len(d) >= 2:
            if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # equal up to rounding
                p_t = 0.0 if d[0] > 0 else 1.0
            else:
                p_t = float(stats.ttest_rel(x, y, alternative="greater").pvalue)
        rows.append(
            {
                "source": source,
                "seeds": len(d),
                "gain": float(d.mean()) if len(d) else float("nan"),
                "gain_sd": float(d.std(ddof=1)) if len(d) >= 2 else float("nan"),
                "p": p,
                "p_t": p_t,
            }
        )
    frame = pd.DataFrame(rows, columns=columns[:6])
    frame["q"] = np.nan
    tested = frame["p"].notna()
    if tested.any():
        frame.loc[tested, "q"] = stats.false_discovery_control(frame.loc[tested, "p"].to_numpy())
    frame["significant"] = frame["q"] < alpha
    return frame.sort_values(["gain", "source"], ascending=[False, True]).reset_index(drop=True)


def signal_by_target(runs: pd.DataFrame, exclude_self: bool = True) -> pd.DataFrame:
    """One row per target of a runs table (columns ``source, target, seed, main``): how much the ground
    truth says about it.

    Columns: ``target, seeds, sources, baseline`` (mean no-transfer result), ``reliability``
    (:func:`split_half_reliability`), ``beat_baseline`` (sources with a higher mean than no transfer),
    ``beat_p05`` (paired test p < 0.05, uncorrected) and ``beat_fdr`` (significant after
    Benjamini-Hochberg correction over the target's sources; :func:`paired_gain_tests`), ``best_source``
    and ``best_gain`` (mean difference to no transfer, in the metric's units). ``exclude_self`` leaves
    the target out of its own sources.
    """
    rows = []
    for target in sorted(runs["target"].unique()):
        table = seed_table(runs, target)
        exclude = target if exclude_self else None
        tests = paired_gain_tests(table, exclude=exclude)
        has_base = BASELINE in table.index
        rows.append(
            {
                "target": target,
                "seeds": int(table.shape[1]),
                "sources": int(sum(1 for s in table.index if s not in (BASELINE, exclude))),
                "baseline": float(table.loc[BASELINE].mean()) if has_base else float("nan"),
                "reliability": split_half_reliability(table, exclude=exclude),
                "beat_baseline": int((tests["gain"] > 0).sum()),
                "beat_p05": int((tests["p"] < 0.05).sum()),
                "beat_fdr": int(tests["significant"].sum()),
                "best_source": str(tests["source"].iloc[0]) if len(tests) else "",
                "best_gain": float(tests["gain"].iloc[0]) if len(tests) else float("nan"),
            }
        )
    return pd.DataFrame(rows)
