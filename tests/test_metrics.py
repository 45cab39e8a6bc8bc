"""Hand-computed checks of the ranking metrics in taskscout.evaluate.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskscout.evaluate.metrics import (
    aggregate,
    align_sources,
    bootstrap_ci,
    evaluate_ranking,
    kendall_tau,
    ndcg_schulte,
    ndcg_vu,
    rank_of_best,
    regret_at_k,
    spearman,
    top1_gain,
)

L3 = math.log2(3)  # discount denominator at position 2: log2(2 + 1)

# Running example: three sources with true transfer results A=0.8 > B=0.7 > C=0.6.
TRUTH = {"A": 0.8, "B": 0.7, "C": 0.6}
PERFECT = {"A": 3.0, "B": 2.0, "C": 1.0}  # predicted A, B, C
SWAP = {"A": 2.0, "B": 3.0, "C": 1.0}  # predicted B, A, C (top two swapped)
REVERSED = {"A": 1.0, "B": 2.0, "C": 3.0}  # predicted C, B, A


# ---------------------------------------------------------------------------------------- alignment


def test_align_orders_by_score_then_name_and_counts_drops():
    scores = {"zeta": 1.0, "alpha": 1.0, "mid": 0.5, "nan": float("nan"), "unmeasured": 9.0, "T": 99.0}
    truth = {
        "zeta": 0.1,
        "alpha": 0.2,
        "mid": 0.3,
        "nan": 0.4,
        "unscored": 0.9,
        "T": 1.0,
        "bad": float("nan"),
    }
    a = align_sources(scores, truth, target="T")
    # tie 1.0/1.0 broken by name (alpha < zeta); NaN score last.
    assert a.names == ("alpha", "zeta", "mid", "nan")
    assert a.truth.tolist() == [0.2, 0.1, 0.3, 0.4]
    assert a.n_missing_truth == 1  # "unmeasured" (the target T is excluded, not counted as missing)
    assert a.n_missing_score == 1  # "unscored" ("bad" has no finite truth, so it is not counted)
    assert a.n_excluded_target == 2  # T in scores and in truth


def test_score_ties_broken_by_name_independent_of_mapping_order():
    truth = {"b": 0.9, "a": 0.5, "c": 0.1}
    s1 = {"b": 1.0, "a": 1.0, "c": 0.0}
    s2 = {"c": 0.0, "a": 1.0, "b": 1.0}
    # Both rank a, b, c: a (0.5) is the top-1 pick, the best source b is at position 2.
    for s in (s1, s2):
        assert align_sources(s, truth).names == ("a", "b", "c")
        assert rank_of_best(s, truth) == 2
        assert top1_gain(s, truth, baseline=0.4) == pytest.approx(0.1)


# -------------------------------------------------------------------------------------- NDCG Schulte


def test_ndcg_schulte_perfect_is_100():
    assert ndcg_schulte(PERFECT, TRUTH) == 100.0


def test_ndcg_schulte_swap_by_hand():
    # gains: A 2^80-1, B 2^70-1, C 2^60-1
    # DCG(pred B,A,C) = (2^70-1) + (2^80-1)/log2(3) + (2^60-1)/2
    # DCG(ideal A,B,C) = (2^80-1) + (2^70-1)/log2(3) + (2^60-1)/2
    # divide by 2^80: (2^-10 + 0.630930 + 2^-21) / (1 + 2^-10 * 0.630930 + 2^-21) = 0.631907 / 1.000617
    dcg = (2**70 - 1) + (2**80 - 1) / L3 + (2**60 - 1) / 2
    idcg = (2**80 - 1) + (2**70 - 1) / L3 + (2**60 - 1) / 2
    assert ndcg_schulte(SWAP, TRUTH) == pytest.approx(100 * dcg / idcg, rel=1e-12)
    assert ndcg_schulte(SWAP, TRUTH) == pytest.approx(63.1517, abs=1e-4)


def test_ndcg_schulte_reversed_by_hand():
    # DCG(pred C,B,A) = (2^60-1) + (2^70-1)/log2(3) + (2^80-1)/2  ~ 2^79: NDCG ~ 50
    dcg = (2**60 - 1) + (2**70 - 1) / L3 + (2**80 - 1) / 2
    idcg = (2**80 - 1) + (2**70 - 1) / L3 + (2**60 - 1) / 2
    assert ndcg_schulte(REVERSED, TRUTH) == pytest.approx(100 * dcg / idcg, rel=1e-12)
    assert ndcg_schulte(REVERSED, TRUTH) == pytest.approx(50.0309, abs=1e-4)


def test_ndcg_schulte_keeps_the_minus_one_exactly():
    # P = 0.01, 0.02, 0.00 -> gains 2^1-1 = 1, 2^2-1 = 3, 2^0-1 = 0.
    # predicted x (0.01), y (0.02), z: DCG = 1 + 3/log2(3) = 2.892789; ideal = 3 + 1/log2(3) = 3.630930
    # NDCG = 79.6708 (without the -1 it would be (2 + 4/1.585 + 1/2)/(4 + 2/1.585 + 1/2) = 84.2)
    truth = {"x": 0.01, "y": 0.02, "z": 0.0}
    scores = {"x": 3.0, "y": 2.0, "z": 1.0}
    assert ndcg_schulte(scores, truth) == pytest.approx(100 * (1 + 3 / L3) / (3 + 1 / L3), rel=1e-12)
    assert ndcg_schulte(scores, truth) == pytest.approx(79.6708, abs=1e-4)


def test_ndcg_schulte_does_not_overflow():
    # P = 20 and 19 (2^2000 overflows float64). Swapped: (2^1900 + 2^2000/log2 3) / (2^2000 + 2^1900/log2 3)
    # = 1/log2(3) up to 2^-100 -> 63.0930
    v = ndcg_schulte({"a": 0.0, "b": 1.0}, {"a": 20.0, "b": 19.0})
    assert math.isfinite(v)
    assert v == pytest.approx(100 / L3, rel=1e-12)
    assert ndcg_schulte({"a": 1.0, "b": 0.0}, {"a": 20.0, "b": 19.0}) == 100.0


def test_ndcg_schulte_negative_metric_keeps_paper_formula():
    # Regression correlations: P = 0.05 -> gain 2^5-1 = 31; P = -0.1 -> gain 2^-10-1 = -0.9990234375.
    # Reversed: DCG = -0.9990234 + 31/log2(3) = 18.559810; ideal = 31 - 0.9990234/log2(3) = 30.369686
    g = 2**-10 - 1
    truth = {"good": 0.05, "bad": -0.1}
    assert ndcg_schulte({"good": 1.0, "bad": 0.0}, truth) == 100.0
    v = ndcg_schulte({"good": 0.0, "bad": 1.0}, truth)
    assert v == pytest.approx(100 * (g + 31 / L3) / (31 + g / L3), rel=1e-12)
    assert v == pytest.approx(61.1129, abs=1e-4)


def test_ndcg_schulte_nan_when_ideal_dcg_not_positive():
    assert math.isnan(ndcg_schulte({"a": 1.0, "b": 0.0}, {"a": -0.2, "b": -0.1}))
    assert math.isnan(ndcg_schulte({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 0.0}))
    assert math.isnan(ndcg_schulte({}, {}))


def test_ndcg_schulte_truth_ties_any_order_is_perfect():
    truth = {"a": 0.7, "b": 0.7, "c": 0.5}
    assert ndcg_schulte({"a": 2.0, "b": 3.0, "c": 1.0}, truth) == 100.0
    assert ndcg_schulte({"a": 3.0, "b": 2.0, "c": 1.0}, truth) == 100.0


# ------------------------------------------------------------------------------------------- NDCG Vu


def test_ndcg_vu_by_hand():
    # baseline 0.65: rel = 100 * max(P - 0.65, 0) -> A 15, B 5, C 0 -> gains 32767, 31, 0
    # pred B, A, C: DCG = 31 + 32767/log2(3) = 20704.71; ideal = 32767 + 31/log2(3) = 32786.56 -> 63.1499
    assert ndcg_vu(PERFECT, TRUTH, 0.65) == 100.0
    expected = 100 * (31 + 32767 / L3) / (32767 + 31 / L3)
    assert ndcg_vu(SWAP, TRUTH, 0.65) == pytest.approx(expected, rel=1e-12)
    assert ndcg_vu(SWAP, TRUTH, 0.65) == pytest.approx(63.1499, abs=1e-4)
    # @1: pred top is B (31), ideal top is A (32767) -> 100 * 31 / 32767 = 0.0946
    assert ndcg_vu(SWAP, TRUTH, 0.65, k=1) == pytest.approx(100 * 31 / 32767, rel=1e-12)
    # k beyond the list uses the whole list
    assert ndcg_vu(SWAP, TRUTH, 0.65, k=10) == pytest.approx(expected, rel=1e-12)


def test_ndcg_vu_sources_without_gain_are_interchangeable():
    # baseline 0.75: only A helps (rel 5); B and C have rel 0, so their order is irrelevant
    assert ndcg_vu({"A": 3.0, "B": 1.0, "C": 2.0}, TRUTH, 0.75) == 100.0
    # A last: DCG = 31/log2(4) = 15.5; ideal = 31 -> 50
    assert ndcg_vu(REVERSED, TRUTH, 0.75) == pytest.approx(50.0, rel=1e-12)


def test_ndcg_vu_nan_when_nothing_beats_baseline():
    assert math.isnan(ndcg_vu(PERFECT, TRUTH, 0.9))
    assert math.isnan(ndcg_vu(PERFECT, TRUTH, 0.8))  # equal is no gain
    assert math.isnan(ndcg_vu(PERFECT, TRUTH, float("nan")))


def test_ndcg_vu_rejects_bad_k():
    with pytest.raises(ValueError):
        ndcg_vu(PERFECT, TRUTH, 0.5, k=0)


# ------------------------------------------------------------------------------------------- Regret


def test_regret_by_hand():
    # baseline 0.65 < best source 0.8 -> M = 0.8. Reversed ranking C (0.6), B (0.7), A (0.8):
    # @1: (0.8 - 0.6)/0.8 * 100 = 25; @2: (0.8 - 0.7)/0.8 * 100 = 12.5; @3: 0
    assert regret_at_k(REVERSED, TRUTH, 0.65, 1) == pytest.approx(25.0)
    assert regret_at_k(REVERSED, TRUTH, 0.65, 2) == pytest.approx(12.5)
    assert regret_at_k(REVERSED, TRUTH, 0.65, 3) == 0.0
    assert regret_at_k(REVERSED, TRUTH, 0.65, 100) == 0.0
    for k in (1, 2, 3):
        assert regret_at_k(PERFECT, TRUTH, 0.65, k) == 0.0


def test_regret_relative_to_baseline_when_baseline_wins():
    # baseline 0.9 > every source: M = 0.9; best reachable source 0.8 -> (0.9 - 0.8)/0.9 * 100 = 11.11
    assert regret_at_k(PERFECT, TRUTH, 0.9, 1) == pytest.approx(100 * 0.1 / 0.9)
    assert regret_at_k(PERFECT, TRUTH, 0.9, 3) == pytest.approx(11.1111, abs=1e-4)
    # reversed @1: (0.9 - 0.6)/0.9 * 100 = 33.33
    assert regret_at_k(REVERSED, TRUTH, 0.9, 1) == pytest.approx(100 / 3)


def test_regret_nan_for_non_positive_reference():
    truth = {"a": -0.2, "b": -0.1}
    assert math.isnan(regret_at_k({"a": 1.0, "b": 0.0}, truth, -0.05, 1))
    assert math.isnan(regret_at_k({"a": 1.0, "b": 0.0}, truth, 0.0, 1))
    # a positive baseline makes it defined again: M = 0.1, best in top-1 = -0.2 -> 300 %
    assert regret_at_k({"a": 1.0, "b": 0.0}, truth, 0.1, 1) == pytest.approx(300.0)
    assert math.isnan(regret_at_k(PERFECT, TRUTH, float("nan"), 1))
    assert math.isnan(regret_at_k({}, {}, 0.5, 1))


def test_regret_rejects_bad_k():
    for k in (0, -1, None, 1.5, True):
        with pytest.raises(ValueError):
            regret_at_k(PERFECT, TRUTH, 0.5, k)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- rank of best, top-1


def test_rank_of_best():
    assert rank_of_best(PERFECT, TRUTH) == 1
    assert rank_of_best(SWAP, TRUTH) == 2
    assert rank_of_best(REVERSED, TRUTH) == 3


def test_rank_of_best_truth_ties_take_best_position():
    truth = {"A": 0.8, "B": 0.8, "C": 0.6}
    assert rank_of_best(REVERSED, truth) == 2  # C, B, A: B is a best source at position 2
    with pytest.raises(ValueError):
        rank_of_best({"x": 1.0}, {"y": 0.5})


def test_top1_gain():
    assert top1_gain(SWAP, TRUTH, 0.65) == pytest.approx(0.05)  # pick B: 0.7 - 0.65
    assert top1_gain(REVERSED, TRUTH, 0.65) == pytest.approx(-0.05)  # pick C: 0.6 - 0.65
    assert math.isnan(top1_gain(SWAP, TRUTH, float("nan")))


# ------------------------------------------------------------------------------------------ correlations


def test_correlations_by_hand():
    assert spearman(PERFECT, TRUTH) == pytest.approx(1.0)
    assert kendall_tau(PERFECT, TRUTH) == pytest.approx(1.0)
    assert spearman(REVERSED, TRUTH) == pytest.approx(-1.0)
    assert kendall_tau(REVERSED, TRUTH) == pytest.approx(-1.0)
    # one adjacent swap among 3: d = (1, 1, 0) -> rho_s = 1 - 6 * 2 / (3 * (9 - 1)) = 0.5
    # pairs: (A,B) discordant, (A,C), (B,C) concordant -> tau = (2 - 1)/3
    assert spearman(SWAP, TRUTH) == pytest.approx(0.5)
    assert kendall_tau(SWAP, TRUTH) == pytest.approx(1 / 3)


def test_correlations_nan_cases():
    two = {"A": 0.8, "B": 0.7}
    assert math.isnan(spearman({"A": 1.0, "B": 0.0}, two))
    assert math.isnan(kendall_tau({"A": 1.0, "B": 0.0}, two))
    const_scores = {"A": 1.0, "B": 1.0, "C": 1.0}
    assert math.isnan(spearman(const_scores, TRUTH))
    assert math.isnan(kendall_tau(const_scores, TRUTH))
    const_truth = {"A": 0.5, "B": 0.5, "C": 0.5}
    assert math.isnan(spearman(PERFECT, const_truth))
    assert math.isnan(kendall_tau(PERFECT, const_truth))


def test_nan_score_ranks_last():
    scores = {"A": float("nan"), "B": 2.0, "C": 1.0}  # predicted B, C, A
    assert align_sources(scores, TRUTH).names == ("B", "C", "A")
    assert rank_of_best(scores, TRUTH) == 3
    assert regret_at_k(scores, TRUTH, 0.5, 1) == pytest.approx(100 * 0.1 / 0.8)
    # as ranks: A lowest, B highest, C middle vs truth A > B > C -> d = (2, 1, 1) -> 1 - 6*6/24 = -0.5
    assert spearman(scores, TRUTH) == pytest.approx(-0.5)


# -------------------------------------------------------------------------------- target and dropped


def test_target_excluded_from_scores_and_truth():
    # The target T would be ranked first and be "best" (P = 0.99) if it counted as a source.
    scores = {**SWAP, "T": 100.0}
    truth = {**TRUTH, "T": 0.99}
    with_t = evaluate_ranking(scores, truth, 0.65, target="T")
    without = evaluate_ranking(SWAP, TRUTH, 0.65)
    assert with_t == pytest.approx(without, nan_ok=True)
    assert with_t["rho"] == 2.0
    # duplicates of the target can be excluded too
    dup = {**scores, "T_copy": 50.0}
    dup_truth = {**truth, "T_copy": 0.98}
    assert evaluate_ranking(dup, dup_truth, 0.65, target={"T", "T_copy"}) == pytest.approx(
        without, nan_ok=True
    )
    # without exclusion the target dominates
    assert rank_of_best(scores, truth) == 1


def test_sources_without_truth_are_dropped():
    scores = {**REVERSED, "unmeasured": 10.0}
    assert evaluate_ranking(scores, TRUTH, 0.65) == pytest.approx(
        evaluate_ranking(REVERSED, TRUTH, 0.65), nan_ok=True
    )


# -------------------------------------------------------------------------------------- evaluate_ranking


def test_evaluate_ranking_keys_and_values():
    out = evaluate_ranking(SWAP, TRUTH, 0.65)
    assert list(out) == [
        "ndcg", "ndcg_vu", "regret@1", "regret@3", "regret@5", "rho", "spearman", "kendall", "top1_gain",
    ]  # fmt: skip
    assert out["ndcg"] == pytest.approx(63.1517, abs=1e-4)
    assert out["ndcg_vu"] == pytest.approx(63.1499, abs=1e-4)
    assert out["regret@1"] == pytest.approx(12.5)  # (0.8 - 0.7)/0.8
    assert out["regret@3"] == 0.0
    assert out["regret@5"] == 0.0
    assert out["rho"] == 2.0
    assert out["spearman"] == pytest.approx(0.5)
    assert out["kendall"] == pytest.approx(1 / 3)
    assert out["top1_gain"] == pytest.approx(0.05)
    assert all(isinstance(v, float) for v in out.values())


def test_evaluate_ranking_perfect():
    out = evaluate_ranking(PERFECT, TRUTH, 0.65, ks=(1, 2))
    assert list(out)[2:4] == ["regret@1", "regret@2"]
    assert out["ndcg"] == 100.0
    assert out["ndcg_vu"] == 100.0
    assert out["regret@1"] == 0.0
    assert out["rho"] == 1.0
    assert out["spearman"] == pytest.approx(1.0)


def test_evaluate_ranking_empty_is_all_nan():
    out = evaluate_ranking({"x": 1.0}, {"y": 0.5}, 0.4)
    assert len(out) == 9
    assert all(math.isnan(v) for v in out.values())


# -------------------------------------------------------------------------------------- over targets


def test_bootstrap_deterministic_and_contains_mean():
    values = [0.1, 0.5, 0.3, 0.9, 0.4, 0.2, 0.7]
    a = bootstrap_ci(values, seed=0)
    assert a == bootstrap_ci(values, seed=0)
    assert a != bootstrap_ci(values, seed=1)
    mean, low, high = a
    assert mean == pytest.approx(np.mean(values))
    assert low < mean < high
    # wider confidence -> wider interval
    _, low99, high99 = bootstrap_ci(values, confidence=0.99, seed=0)
    assert low99 <= low and high99 >= high


def test_bootstrap_drops_nan_and_edge_cases():
    values = [0.1, 0.5, 0.3, 0.9]
    assert bootstrap_ci([*values, float("nan")], seed=3) == bootstrap_ci(values, seed=3)
    assert all(math.isnan(v) for v in bootstrap_ci([float("nan")]))
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    mean, low, high = bootstrap_ci([0.4])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        bootstrap_ci(values, confidence=1.0)


def test_aggregate():
    per_target = {
        "t2": {"ndcg": 80.0, "regret@1": float("nan")},
        "t1": {"ndcg": 60.0, "regret@1": 10.0},
        "t3": {"ndcg": 70.0, "regret@1": 20.0, "rho": 2.0},
    }
    out = aggregate(per_target)
    assert list(out) == ["ndcg", "regret@1", "rho"]
    assert out["ndcg"]["mean"] == pytest.approx(70.0)
    assert out["ndcg"]["n"] == 3 and out["ndcg"]["n_nan"] == 0
    assert out["ndcg"]["ci_low"] <= 70.0 <= out["ndcg"]["ci_high"]
    assert out["regret@1"]["mean"] == pytest.approx(15.0)
    assert out["regret@1"]["n"] == 2 and out["regret@1"]["n_nan"] == 1
    assert out["rho"]["mean"] == 2.0 and out["rho"]["n"] == 1 and out["rho"]["n_nan"] == 2
    # independent of mapping order
    reordered = dict(reversed(list(per_target.items())))
    assert aggregate(reordered)["ndcg"] == out["ndcg"]


def _naive_ndcg(order: list[str], truth: dict[str, float]) -> float:
    """Textbook loop: 100 * sum((2^(100P)-1)/log2(i+1)) / same over the ideal order (no rescaling)."""

    def dcg(names: list[str]) -> float:
        return sum((2 ** (100 * truth[s]) - 1) / math.log2(i + 1) for i, s in enumerate(names, start=1))

    return 100 * dcg(order) / dcg(sorted(truth, key=truth.__getitem__, reverse=True))


def test_ndcg_schulte_matches_naive_loop_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 15))
        names = [f"s{i}" for i in range(n)]
        truth = dict(zip(names, rng.uniform(0.3, 0.95, n).tolist(), strict=True))
        scores = dict(zip(names, rng.normal(size=n).tolist(), strict=True))
        order = sorted(names, key=lambda s: (-scores[s], s))
        assert ndcg_schulte(scores, truth) == pytest.approx(_naive_ndcg(order, truth), rel=1e-12)


def test_ndcg_schulte_rescaled_branch_is_exact():
    # Exponents 900, 850, 600 (P = 9, 8.5, 6): beyond float64 range, so compare with exact integers.
    # Predicted c, a, b: DCG = (2^600-1) + (2^900-1)/log2(3) + (2^850-1)/2
    from fractions import Fraction

    truth = {"a": 9.0, "b": 8.5, "c": 6.0}
    scores = {"a": 2.0, "b": 1.0, "c": 3.0}
    g = {s: 2 ** int(100 * p) - 1 for s, p in truth.items()}
    w2, w3 = Fraction(1 / L3), Fraction(1, 2)
    dcg = g["c"] + g["a"] * w2 + g["b"] * w3
    idcg = g["a"] + g["b"] * w2 + g["c"] * w3
    assert ndcg_schulte(scores, truth) == pytest.approx(float(100 * dcg / idcg), rel=1e-12)
