"""Ranking metrics: score a predicted ranking of source tasks against real transfer results.

Everything here is about ONE target ``t`` at a time (except :func:`bootstrap_ci` and :func:`aggregate`,
which summarise per-target values over targets). Pure numpy/scipy.

Conventions shared by every function
------------------------------------
``scores: Mapping[str, float]``
    The method's score per source; higher = ranked higher.
``truth: Mapping[str, float]``
    ``P[s, t]``: the target's metric after intermediate training on source ``s`` (accuracy for
    classification; mean of Pearson and Spearman for regression), typically in ``[0, 1]``
    (0.83 = 83 % accuracy). Regression correlations can be negative; every metric says what it does then.
``baseline: float``
    ``P[none, t]``: the target's metric after target-only fine-tuning (no intermediate task).
``target: str | Collection[str] | None``
    Name(s) excluded from both mappings before anything is computed: the target never counts as a
    source of itself. Pass a collection to also exclude known duplicates of the target.

Which sources are evaluated (see :func:`align_sources`):

* sources with a score but no (finite) true result are dropped: the method scored something nobody
  measured, so it can be neither rewarded nor punished for it;
* sources with a true result but no score are dropped too: every metric is computed over the sources
  present in both mappings. The counts of both kinds of drops are reported by :func:`align_sources`
  (``n_missing_truth``, ``n_missing_score``); the metric functions themselves ignore them silently.

Predicted ranking: sources sorted by score, descending. Ties in scores are broken deterministically by
source name (ascending, plain ``str`` order), so the same inputs always give the same ranking regardless
of mapping order. A NaN score ranks below every other score (a method that failed on a source is
treated as putting it last); NaN-scored sources are again ordered by name.

Percentages: NDCG and Regret@k are returned on a 0-100 scale, as the papers report them. ``top1_gain``
is in the metric's own units (0.05 = 5 accuracy points).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "AlignedSources",
    "aggregate",
    "align_sources",
    "bootstrap_ci",
    "evaluate_ranking",
    "kendall_tau",
    "ndcg_schulte",
    "ndcg_vu",
    "rank_of_best",
    "regret_at_k",
    "spearman",
    "top1_gain",
]

_LN2 = math.log(2.0)
# Below this natural-log magnitude, expm1 of every gain is far from float64 overflow (e^600 ~ 1e260),
# even summed over millions of sources; above it we rescale by the largest gain.
_DIRECT_EXP_LIMIT = 600.0


# --------------------------------------------------------------------------------------------------
# Alignment of scores and truth
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedSources:
    """Sources present in both ``scores`` and ``truth``, in predicted order (best first).

    Attributes:
        names: source names in predicted order (score descending, ties by name, NaN scores last).
        scores: the method's scores in that order (may contain NaN).
        truth: ``P[s, t]`` in that order (always finite).
        n_missing_truth: sources with a score but no finite true result (dropped).
        n_missing_score: sources with a finite true result but no score (dropped).
        n_excluded_target: entries removed because their name is the target (counted once per mapping).
    """

    names: tuple[str, ...]
    scores: np.ndarray
    truth: np.ndarray
    n_missing_truth: int = 0
    n_missing_score: int = 0
    n_excluded_target: int = 0

    def __len__(self) -> int:
        return len(self.names)


def _excluded(target: str | Collection[str] | None) -> frozenset[str]:
    if target is None:
        return frozenset()
    if isinstance(target, str):
        return frozenset((target,))
    return frozenset(target)


def align_sources(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    target: str | Collection[str] | None = None,
) -> AlignedSources:
    """Intersect ``scores`` and ``truth``, drop the target, and order the sources as predicted.

    Sources whose true result is missing or not finite are dropped (``n_missing_truth`` counts the scored
    ones); sources with a true result but no score are dropped (``n_missing_score``). The predicted order
    sorts by score descending, breaks ties by source name ascending, and puts NaN scores last.
    """
    excluded = _excluded(target)
    n_excluded = sum(1 for s in scores if s in excluded) + sum(1 for s in truth if s in excluded)
    valid_truth = {
        s: float(p) for s, p in truth.items() if s not in excluded and p is not None and math.isfinite(p)
    }
    scored = {s: float("nan") if v is None else float(v) for s, v in scores.items() if s not in excluded}
    common = [s for s in scored if s in valid_truth]
    n_missing_truth = len(scored) - len(common)
    n_missing_score = sum(1 for s in valid_truth if s not in scored)

    def key(s: str) -> tuple[int, float, str]:
        v = scored[s]
        if math.isnan(v):
            return (1, 0.0, s)
        return (0, -v, s)

    order = sorted(common, key=key)
    return AlignedSources(
        names=tuple(order),
        scores=np.array([scored[s] for s in order], dtype=np.float64),
        truth=np.array([valid_truth[s] for s in order], dtype=np.float64),
        n_missing_truth=n_missing_truth,
        n_missing_score=n_missing_score,
        n_excluded_target=n_excluded,
    )


# --------------------------------------------------------------------------------------------------
# NDCG
# --------------------------------------------------------------------------------------------------


def _scaled_exp2m1(x: np.ndarray) -> np.ndarray:
    """``c * (2**x - 1)`` elementwise for one positive constant ``c``, without overflow.

    With ``a = x ln 2`` and ``m = max(a)``: if ``m`` is moderate, return ``expm1(a)`` (``c = 1``, exact
    also for tiny ``x`` where ``2**x - 1`` would cancel); otherwise return ``exp(a - m) - exp(-m)``
    (``c = e^-m``), which is ``2**x - 1`` divided by ``2**max(x)``: the ``-1`` is kept exactly (it
    underflows to 0 only where it is below float64 resolution relative to the largest gain). Ratios of
    weighted sums of these values (NDCG) are therefore unchanged by the scaling.
    """
    a = np.asarray(x, dtype=np.float64) * _LN2
    if a.size == 0:
        return a
    m = float(np.max(a))
    if m <= _DIRECT_EXP_LIMIT:
        return np.expm1(a)
    return np.exp(a - m) - math.exp(-m)


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(i + 1)`` for positions ``i = 1..n``."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _ndcg_from_exponents(pred_exponents: np.ndarray, k: int | None = None) -> float:
    """100 * DCG(pred)/DCG(ideal) with gains ``2**e - 1``; ``pred_exponents`` in predicted order."""
    n = len(pred_exponents)
    if n == 0:
        return float("nan")
    gains = _scaled_exp2m1(pred_exponents)  # one common scale for pred and ideal
    ideal = -np.sort(-gains)  # descending
    cut = n if k is None else min(k, n)
    w = _discounts(cut)
    # fsum: exactly rounded and order-independent, so equal gain vectors give exactly equal DCGs
    # (a ranking that matches the ideal one up to ties in truth scores exactly 100).
    dcg = math.fsum(gains[:cut] * w)
    idcg = math.fsum(ideal[:cut] * w)
    if not idcg > 0.0:
        return float("nan")
    return 100.0 * (dcg / idcg)


def _check_k(k: int | None, *, allow_none: bool) -> None:
    if k is None:
        if not allow_none:
            raise ValueError("k must be a positive integer, got None")
        return
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def ndcg_schulte(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    target: str | Collection[str] | None = None,
) -> float:
    """NDCG of the predicted ranking, as defined by Schulte, Hamborg & Akbik (ESM-LogME paper).

    With ``R_1, R_2, ...`` the predicted ranking over ALL evaluated sources (no cut-off)::

        gain(s) = 2^(100 * P[s,t]) - 1
        DCG(R)  = sum_{i>=1} gain(R_i) / log2(i + 1)
        NDCG    = 100 * DCG(predicted) / DCG(ideal)

    where the ideal ranking sorts sources by ``P[s,t]`` descending.

    Note the ``x100`` inside the exponent: with P in [0, 1] one accuracy point doubles the gain, so the
    score is dominated by where the few best sources land.

    Numerics: ``2^(100 P)`` overflows float64 for ``P > ~10.2``; gains are computed with a common rescaling
    by the largest gain (see ``_scaled_exp2m1``), which leaves the ratio unchanged and keeps the ``-1``
    exactly, so any finite ``P`` works.

    Negative ``P`` (regression correlations) keeps the paper's formula: ``gain`` lies in ``(-1, 0)``,
    i.e. a slightly negative contribution, and NDCG can then drop below 0 for bad rankings. If
    ``DCG(ideal) <= 0`` (e.g. all ``P <= 0``) the ratio is meaningless and NaN is returned; NaN also
    when no source is left to evaluate.
    """
    aligned = align_sources(scores, truth, target)
    return _ndcg_from_exponents(100.0 * aligned.truth)


def ndcg_vu(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    baseline: float,
    target: str | Collection[str] | None = None,
    k: int | None = None,
) -> float:
    """NDCG with relevance derived from the transfer gain over the no-transfer baseline.

    Vu et al. (2020, "Exploring and Predicting Transferability across NLP Tasks", EMNLP) evaluate source
    rankings with NDCG (Järvelin & Kekäläinen 2002) in the ``(2^rel - 1) / log2(i + 1)`` form, with
    relevance derived from transfer results. This function implements the following gain-based
    definition (which is this project's, stated here exactly; it was not checked word for word against
    the paper)::

        rel(s)  = 100 * max(P[s,t] - P[none,t], 0)      # transfer gain in points, 0 if no gain
        DCG@k   = sum_{i=1}^{k} (2^rel(R_i) - 1) / log2(i + 1)
        NDCG@k  = 100 * DCG@k(predicted) / DCG@k(ideal)

    ``k=None`` uses the whole ranking. Differences from :func:`ndcg_schulte`: relevance is the *gain over
    the baseline* (not the raw score), sources that hurt or do not help the target all have relevance 0
    (so their order does not matter), and a cut-off ``k`` is allowed. Both are on a 0-100 scale.

    Returns NaN when no source beats the baseline (all relevances 0: every ranking is equally good and
    the ratio is 0/0), when ``baseline`` is NaN, or when no source is left to evaluate.
    """
    _check_k(k, allow_none=True)
    if baseline is None or not math.isfinite(baseline):
        return float("nan")
    aligned = align_sources(scores, truth, target)
    rel = 100.0 * np.maximum(aligned.truth - float(baseline), 0.0)
    return _ndcg_from_exponents(rel, k)


# --------------------------------------------------------------------------------------------------
# Regret, rank of the best source, top-1 gain
# --------------------------------------------------------------------------------------------------


def regret_at_k(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    baseline: float,
    k: int,
    target: str | Collection[str] | None = None,
) -> float:
    """Relative Regret@k in percent (Schulte et al., ESM-LogME; after Poth et al. 2021).

    ::

        M        = max(max_s P[s,t], P[none,t])        # best achievable, no-transfer included
        Regret@k = 100 * (M - max_{s in top-k predicted} P[s,t]) / M

    A relative percentage, not percentage points: ``M = 0.80`` and best-in-top-k ``0.78`` give 2.5.
    If the baseline beats every source, regret is measured against the baseline and is > 0 even for the
    perfect ranking. ``k`` larger than the number of sources uses all of them.

    Returns NaN when ``M <= 0`` (possible for regression correlations): a relative regret against a
    non-positive reference is undefined, and mixing in a different unit (absolute points) would silently
    corrupt means over targets; :func:`aggregate` drops NaNs and reports how many targets were used.
    Also NaN when ``baseline`` is NaN or no source is left.
    """
    _check_k(k, allow_none=False)
    if baseline is None or not math.isfinite(baseline):
        return float("nan")
    aligned = align_sources(scores, truth, target)
    if len(aligned) == 0:
        return float("nan")
    best = max(float(np.max(aligned.truth)), float(baseline))
    if best <= 0.0:
        return float("nan")
    best_in_top_k = float(np.max(aligned.truth[:k]))
    return 100.0 * (best - best_in_top_k) / best


def rank_of_best(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    target: str | Collection[str] | None = None,
) -> int:
    """1-based position of the truly best source in the predicted ranking (rho in Vu et al. 2020, TuPaTE).

    Averaged over targets this is the papers' ``rho`` (lower is better, 1 is perfect). Ties in truth
    (several sources share the maximum ``P[s,t]`` exactly): the best position among them is returned,
    so picking any of equally good sources counts as finding the best one.

    Raises:
        ValueError: no source is present in both ``scores`` and ``truth``.
    """
    aligned = align_sources(scores, truth, target)
    if len(aligned) == 0:
        raise ValueError("rank_of_best: no source has both a score and a true result")
    best = np.max(aligned.truth)
    return int(np.flatnonzero(aligned.truth == best)[0]) + 1


def top1_gain(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    baseline: float,
    target: str | Collection[str] | None = None,
) -> float:
    """``P[top-1 predicted, t] - P[none, t]``: what the user gains by trusting the method's first pick.

    In the metric's own units (0.05 = +5 accuracy points); negative when the pick hurts the target.
    NaN when ``baseline`` is NaN or no source is left.
    """
    if baseline is None or not math.isfinite(baseline):
        return float("nan")
    aligned = align_sources(scores, truth, target)
    if len(aligned) == 0:
        return float("nan")
    return float(aligned.truth[0]) - float(baseline)


# --------------------------------------------------------------------------------------------------
# Correlations
# --------------------------------------------------------------------------------------------------


def _correlation_inputs(
    scores: Mapping[str, float], truth: Mapping[str, float], target: str | Collection[str] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    aligned = align_sources(scores, truth, target)
    if len(aligned) < 3:
        return None
    # NaN scores rank last (tied among themselves), consistently with the predicted ranking.
    x = np.where(np.isnan(aligned.scores), -np.inf, aligned.scores)
    y = aligned.truth
    if np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return x, y


def spearman(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    target: str | Collection[str] | None = None,
) -> float:
    """Spearman rank correlation between the method's scores and ``P[s,t]`` over the common sources.

    ``scipy.stats.spearmanr`` (ties get average ranks; NaN scores are treated as tied lowest). NaN if fewer
    than 3 sources or either side is constant.
    """
    xy = _correlation_inputs(scores, truth, target)
    if xy is None:
        return float("nan")
    return float(stats.spearmanr(xy[0], xy[1]).statistic)


def kendall_tau(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    target: str | Collection[str] | None = None,
) -> float:
    """Kendall's tau-b between the method's scores and ``P[s,t]`` over the common sources.

    ``scipy.stats.kendalltau`` (variant ``b``, which corrects for ties; NaN scores are treated as tied
    lowest). NaN if fewer than 3 sources or either side is constant.
    """
    xy = _correlation_inputs(scores, truth, target)
    if xy is None:
        return float("nan")
    return float(stats.kendalltau(xy[0], xy[1]).statistic)


# --------------------------------------------------------------------------------------------------
# All metrics for one target
# --------------------------------------------------------------------------------------------------


def evaluate_ranking(
    scores: Mapping[str, float],
    truth: Mapping[str, float],
    baseline: float,
    target: str | Collection[str] | None = None,
    ks: Iterable[int] = (1, 3, 5),
) -> dict[str, float]:
    """Every metric of this module for one target, in one dict with stable keys.

    Keys, in this order: ``"ndcg"`` (:func:`ndcg_schulte`), ``"ndcg_vu"`` (:func:`ndcg_vu`, whole
    ranking), ``"regret@{k}"`` for each ``k`` in ``ks`` (:func:`regret_at_k`), ``"rho"``
    (:func:`rank_of_best`, as float), ``"spearman"``, ``"kendall"``, ``"top1_gain"``. With the default
    ``ks`` these are ``ndcg, ndcg_vu, regret@1, regret@3, regret@5, rho, spearman, kendall, top1_gain``.
    When no source has both a score and a true result every value is NaN.
    """
    ks = tuple(ks)
    for k in ks:
        _check_k(k, allow_none=False)
    if len(align_sources(scores, truth, target)) == 0:
        rho = float("nan")
    else:
        rho = float(rank_of_best(scores, truth, target))
    out: dict[str, float] = {
        "ndcg": ndcg_schulte(scores, truth, target),
        "ndcg_vu": ndcg_vu(scores, truth, baseline, target),
    }
    for k in ks:
        out[f"regret@{k}"] = regret_at_k(scores, truth, baseline, k, target)
    out["rho"] = rho
    out["spearman"] = spearman(scores, truth, target)
    out["kendall"] = kendall_tau(scores, truth, target)
    out["top1_gain"] = top1_gain(scores, truth, baseline, target)
    return out


# --------------------------------------------------------------------------------------------------
# Over targets
# --------------------------------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean over targets and its percentile-bootstrap confidence interval: ``(mean, low, high)``.

    NaNs are dropped first. ``scipy.stats.bootstrap`` of the mean with ``method="percentile"`` (Efron's
    percentile interval: the ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of the means of
    ``n_resamples`` resamples with replacement), seeded with ``numpy.random.default_rng(seed)`` so the
    result is deterministic. With no value left returns ``(nan, nan, nan)``; with one value
    ``(value, nan, nan)`` (a single target says nothing about spread); with all values equal the
    interval is that value.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.mean(x))
    if n == 1:
        return mean, float("nan"), float("nan")
    if np.all(x == x[0]):  # scipy warns about a degenerate distribution; the interval is the point
        return mean, mean, mean
    result = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def aggregate(
    per_target: Mapping[str, Mapping[str, float]],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | int]]:
    """Summarise per-target metrics: for each metric its mean over targets with a bootstrap CI.

    ``per_target`` maps target name -> metric dict (e.g. :func:`evaluate_ranking` output). Returns
    ``{metric: {"mean", "ci_low", "ci_high", "n", "n_nan"}}`` with metrics in first-seen order. ``n`` is
    the number of targets with a non-NaN value (the ones averaged); ``n_nan`` the number of targets whose
    value is NaN or missing. Targets are visited in sorted name order so the bootstrap does not depend on
    mapping order. CI as in :func:`bootstrap_ci` (same ``seed`` for every metric).
    """
    metrics: list[str] = []
    for row in per_target.values():
        for m in row:
            if m not in metrics:
                metrics.append(m)
    targets = sorted(per_target)
    out: dict[str, dict[str, float | int]] = {}
    for m in metrics:
        vals = np.array([float(per_target[t].get(m, float("nan"))) for t in targets], dtype=np.float64)
        mean, low, high = bootstrap_ci(vals, n_resamples=n_resamples, confidence=confidence, seed=seed)
        n = int(np.count_nonzero(~np.isnan(vals)))
        out[m] = {"mean": mean, "ci_low": low, "ci_high": high, "n": n, "n_nan": len(targets) - n}
    return out
