"""Signal measures: checked against hand-computed values, brute force over all permutations and scipy."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from taskscout.evaluate.groundtruth import GroundTruth, read_runs
from taskscout.evaluate.metrics import evaluate_ranking
from taskscout.evaluate.signal import (
    detectable_gain,
    noise_ceiling,
    paired_gain_tests,
    paired_method_p_value,
    permutation_p_value,
    pooled_seed_noise,
    random_expectation,
    random_null,
    seed_splits,
    seed_table,
    split_half_reliability,
)

KS = (1, 3, 5)


def table(rows: dict[str, list[float]], seeds=None) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index", dtype=float)
    frame.columns = list(seeds) if seeds is not None else list(range(frame.shape[1]))
    return frame


def brute_force_expectation(truth, baseline, target=None):
    """Mean of every metric over all n! orders (scores = reversed position), with evaluate_ranking."""
    names = [s for s in truth if s != target]
    totals = None
    count = 0
    for order in itertools.permutations(names):
        scores = {s: float(len(order) - i) for i, s in enumerate(order)}
        values = evaluate_ranking(scores, truth, baseline, target=target, ks=KS)
        totals = values if totals is None else {m: totals[m] + values[m] for m in values}
        count += 1
    return {m: v / count for m, v in totals.items()}


@pytest.mark.parametrize(
    "truth, baseline",
    [
        ({"a": 0.80, "b": 0.75, "c": 0.71, "d": 0.70, "e": 0.60}, 0.72),
        ({"a": 0.80, "b": 0.80, "c": 0.70, "d": 0.70}, 0.75),  # ties, also for the best
        ({"a": 0.2, "b": -0.1, "c": 0.05, "d": 0.3, "t": 0.9}, 0.1),  # regression; target excluded
        ({"a": 0.5, "b": 0.4}, 0.45),  # too few for correlations
        ({"a": 0.6, "b": 0.6, "c": 0.6}, 0.7),  # constant: baseline wins; no gain anywhere
    ],
)
def test_random_expectation_is_the_mean_over_all_orders(truth, baseline):
    exact = random_expectation(truth, baseline, target="t", ks=KS)
    brute = brute_force_expectation(truth, baseline, target="t")
    assert set(exact) == set(brute)
    for metric, value in brute.items():
        if math.isnan(value):
            assert math.isnan(exact[metric]), metric
        else:
            assert exact[metric] == pytest.approx(value, abs=1e-9), metric


def test_random_expectation_hand_computed_and_single_source():
    # 3 sources 0.9, 0.8, 0.7 and baseline 0.75: Regret@1 = 100 * (0.9 - mean) / 0.9.
    exact = random_expectation({"a": 0.9, "b": 0.8, "c": 0.7}, 0.75, ks=(1, 2))
    assert exact["regret@1"] == pytest.approx(100 * (0.9 - 0.8) / 0.9)
    # best of two random picks: 0.9 with prob 2/3, 0.8 with prob 1/3
    assert exact["regret@2"] == pytest.approx(100 * (0.9 - (2 / 3 * 0.9 + 1 / 3 * 0.8)) / 0.9)
    assert exact["rho"] == pytest.approx(2.0) and exact["top1_gain"] == pytest.approx(0.05)
    one = random_expectation({"a": 0.9}, 0.75)
    assert one["rho"] == 1.0 and one["regret@1"] == 0.0 and one["ndcg"] == pytest.approx(100.0)
    assert math.isnan(one["spearman"])
    assert math.isnan(random_expectation({}, 0.5)["ndcg"])


def test_random_null_matches_evaluate_ranking_and_its_mean_converges():
    rng = np.random.default_rng(3)
    truth = {f"s{i}": float(v) for i, v in enumerate(np.round(rng.uniform(0.6, 0.8, 9), 2))}
    truth["s8"] = truth["s0"]  # a tie
    null = random_null(truth, 0.7, n_permutations=4000, random_state=1)
    # Every vectorised value is what evaluate_ranking gives for the same order.
    names = sorted(truth)
    orders = np.argsort(np.random.default_rng(1).random((4000, len(names))), axis=1)
    for i in (0, 1, 17, 3999):
        scores = {names[j]: float(len(names) - pos) for pos, j in enumerate(orders[i])}
        expected = evaluate_ranking(scores, truth, 0.7, ks=KS)
        for metric, values in null.items():
            assert values[i] == pytest.approx(expected[metric], abs=1e-9), (i, metric)
    exact = random_expectation(truth, 0.7, ks=KS)
    for metric, values in null.items():
        sd = values.std() / math.sqrt(len(values))
        assert abs(values.mean() - exact[metric]) < 5 * sd + 1e-12, metric
    again = random_null(truth, 0.7, n_permutations=4000, random_state=1)
    assert all(np.array_equal(again[m], null[m], equal_nan=True) for m in null)  # fixed seed


def test_permutation_p_value():
    null = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.0])]
    # null means 1, 2, 3, 4; observed mean 3.5: one null mean >= it -> (1 + 1) / 5
    assert permutation_p_value([3.0, 4.0], null, "ndcg") == pytest.approx(2 / 5)
    # lower is better for regret: null means <= 1.5 -> 1 of them
    assert permutation_p_value([1.0, 2.0], null, "regret@1") == pytest.approx(2 / 5)
    # equal means count as "as good": never below 1 / (n + 1)
    assert permutation_p_value([4.0, 4.0], null, "ndcg") == pytest.approx(2 / 5)
    assert permutation_p_value([9.0, 9.0], null, "ndcg") == pytest.approx(1 / 5)
    # a NaN target is left out together with its null
    assert permutation_p_value([np.nan, 4.0], [np.full(4, 100.0), null[1]], "ndcg") == pytest.approx(2 / 5)
    assert math.isnan(permutation_p_value([np.nan], [null[0]], "ndcg"))


def test_permutation_p_value_is_uniform_for_random_rankings():
    truth = {f"s{i}": 0.6 + 0.01 * i for i in range(8)}
    nulls = [random_null(truth, 0.62, n_permutations=500, random_state=s)["ndcg"] for s in range(2)]
    rng = np.random.default_rng(7)
    p_values = []
    for _ in range(200):
        observed = []
        for _target in range(2):
            order = rng.permutation(sorted(truth))
            scores = {s: float(len(order) - i) for i, s in enumerate(order)}
            observed.append(evaluate_ranking(scores, truth, 0.62)["ndcg"])
        p_values.append(permutation_p_value(observed, nulls, "ndcg"))
    assert np.mean(np.array(p_values) < 0.05) < 0.12 and 0.35 < np.mean(p_values) < 0.65


def test_paired_method_p_value_by_hand_and_brute_force():
    # Every target better: only the all-plus flip is as extreme -> 1 / 2^6.
    assert paired_method_p_value([80, 82, 90, 70, 75, 85], [79, 80, 88, 69, 70, 84], "ndcg") == 1 / 64
    # Differences +1 and -1 (mean 0): flips give means 0, 1, -1, 0 -> 3 of 4 at least 0.
    assert paired_method_p_value([2.0, 1.0], [1.0, 2.0], "ndcg") == 0.75
    # Identical methods are never "measurably worse"; lower-is-better metrics flip the direction.
    assert paired_method_p_value([3.0, 4.0], [3.0, 4.0], "ndcg") == 1.0
    assert paired_method_p_value([1.0, 1.0, 1.0], [2.0, 3.0, 2.5], "regret@1") == 1 / 8
    assert paired_method_p_value([2.0, 3.0, 2.5], [1.0, 1.0, 1.0], "regret@1") == 1.0
    # NaN targets are left out of both; nothing paired -> NaN; unequal lengths are a caller's bug.
    assert paired_method_p_value([np.nan, 5.0], [1.0, 4.0], "ndcg") == 0.5
    assert math.isnan(paired_method_p_value([np.nan], [1.0], "ndcg"))
    with pytest.raises(ValueError, match="differ in length"):
        paired_method_p_value([1.0, 2.0], [1.0], "ndcg")
    # Exact enumeration equals a brute-force count over all sign flips, and the sampled version
    # (above max_exact) agrees with it.
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 1, 12), rng.normal(0, 1, 12)
    d = a - b
    brute = np.mean(
        [np.mean(np.array(s) * d) >= d.mean() - 1e-12 for s in itertools.product((1, -1), repeat=12)]
    )
    assert paired_method_p_value(a, b, "ndcg") == pytest.approx(brute)
    assert paired_method_p_value(a, b, "ndcg", max_exact=0, n_permutations=40000) == pytest.approx(
        brute, abs=0.01
    )


def test_seed_splits():
    assert seed_splits([0]) == []
    assert seed_splits([1, 0]) == [((0,), (1,))]
    assert seed_splits([0, 1, 2]) == [((0,), (1, 2)), ((1,), (0, 2)), ((2,), (0, 1))]
    four = seed_splits([0, 1, 2, 3])
    assert len(four) == 3 and ((0, 1), (2, 3)) in four and ((2, 3), (0, 1)) not in four
    assert len(seed_splits(range(5))) == 10
    assert len(seed_splits(range(12), max_splits=50)) == 50


def test_reliability_equals_spearman_brown_for_equal_halves():
    # Two seeds whose columns have equal variance: R = 2 r / (1 + r) exactly.
    a = np.array([0.1, 0.4, 0.2, 0.9, 0.5])
    b = np.array([0.2, 0.1, 0.5, 0.8, 0.4])
    b = (b - b.mean()) / b.std() * a.std() + a.mean()
    r = stats.pearsonr(a, b).statistic
    t = table({f"s{i}": [a[i], b[i]] for i in range(5)})
    assert split_half_reliability(t) == pytest.approx(2 * r / (1 + r))


def test_reliability_hand_computed_three_seeds_and_awkward_cases():
    t = table({"": [0.5, 0.5, 0.5], "a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0], "c": [3.0, 4.0, 2.0]})
    full = np.array([2.0, 2.0, 3.0])
    expected = []
    for one in range(3):
        rest = [j for j in range(3) if j != one]
        x = t.loc[["a", "b", "c"]].to_numpy()
        expected.append(np.cov(x[:, one], x[:, rest].mean(axis=1))[0, 1] / np.var(full, ddof=1))
    assert split_half_reliability(t) == pytest.approx(np.mean(expected))
    # Identical seeds: perfectly reliable. Pure noise around equal means: about 0.
    same = table({f"s{i}": [i, i, i] for i in range(5)})
    assert split_half_reliability(same) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = table({f"s{i}": list(rng.normal(size=40)) for i in range(60)})  # 1,000 random splits
    assert abs(split_half_reliability(noise, max_splits=200)) < 0.15
    # Sources missing a seed are left out; too few sources or seeds give NaN.
    gappy = table({"a": [1.0, 2.0], "b": [2.0, np.nan], "c": [3.0, 4.0], "d": [5.0, 5.5]})
    assert split_half_reliability(gappy) == pytest.approx(split_half_reliability(gappy.drop("b")))
    assert math.isnan(split_half_reliability(table({"a": [1.0, 2.0], "b": [2.0, 3.0]})))
    assert math.isnan(split_half_reliability(table({"a": [1.0], "b": [2.0], "c": [3.0]})))
    assert math.isnan(split_half_reliability(table({s: [1.0, 1.0] for s in "abc"})))


def test_noise_ceiling_by_hand_and_perfect_when_seeds_agree():
    t = table({"": [0.5, 0.6], "a": [0.9, 0.7], "b": [0.8, 0.8], "c": [0.6, 0.65]})
    ceiling = noise_ceiling(t, ks=(1,))
    # seed 0 ranks a > b > c, scored on seed 1 (best b = 0.8, baseline 0.6): regret@1 = 12.5 %;
    # seed 1 ranks b > a > c, scored on seed 0 (best a = 0.9): regret@1 = 100 * 0.1 / 0.9.
    assert ceiling.metrics["regret@1"] == pytest.approx((12.5 + 100 * 0.1 / 0.9) / 2)
    assert ceiling.metrics["rho"] == pytest.approx(2.0) and ceiling.splits == 1
    half_random = (
        random_expectation({"a": 0.7, "b": 0.8, "c": 0.65}, 0.6, ks=(1,))["regret@1"]
        + random_expectation({"a": 0.9, "b": 0.8, "c": 0.6}, 0.5, ks=(1,))["regret@1"]
    ) / 2
    assert ceiling.random["regret@1"] == pytest.approx(half_random)
    agree = table({"": [0.1, 0.1, 0.1], **{f"s{i}": [0.2 + i / 10] * 3 for i in range(5)}})
    perfect = noise_ceiling(agree).metrics
    assert perfect["ndcg"] == pytest.approx(100.0) and perfect["regret@1"] == 0.0
    assert perfect["spearman"] == pytest.approx(1.0)
    assert noise_ceiling(table({"a": [0.5], "b": [0.6]})).metrics == {}
    # The target itself is never a source of itself.
    with_target = agree.copy()
    with_target.loc["t"] = [0.99, 0.99, 0.99]
    assert noise_ceiling(with_target, target="t").metrics == perfect


def test_pooled_seed_noise_is_the_two_way_residual_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)) + np.arange(6)[:, None] + np.array([0.0, 2.0, -1.0])
    t = table({f"s{i}": list(row) for i, row in enumerate(x)} | {"gap": [1.0, np.nan, 2.0], "me": [9, 9, 0]})
    sigma2, df = pooled_seed_noise(t, exclude="me")
    # Independent reference: least squares on a design of source and seed dummies.
    rows, seeds = np.indices(x.shape)
    design = np.column_stack([np.eye(6)[rows.ravel()], np.eye(3)[seeds.ravel()][:, 1:]])
    residual = x.ravel() - design @ np.linalg.lstsq(design, x.ravel(), rcond=None)[0]
    assert df == 18 - np.linalg.matrix_rank(design) == 10
    assert sigma2 == pytest.approx((residual**2).sum() / df)
    assert math.isnan(pooled_seed_noise(t[[0]])[0]) and pooled_seed_noise(t.iloc[:1])[1] == 0


def test_paired_gain_tests_pool_the_seed_noise_and_correct_with_bh():
    t = table(
        {
            "": [0.50, 0.60, 0.70],
            "up": [0.52, 0.63, 0.71],  # +2, +3, +1: consistent
            "noisy": [0.60, 0.55, 0.75],  # +10, -5, +5
            "flat": [0.55, 0.65, 0.75],  # +5 on every seed
            "down": [0.45, 0.55, 0.65],
            "one": [0.9, np.nan, np.nan],  # a single seed: tested with the pooled noise
        }
    )
    out = paired_gain_tests(t).set_index("source")
    sigma2, df = pooled_seed_noise(t)
    assert df == (5 - 1) * (3 - 1)
    expected = stats.t.sf(0.02 / math.sqrt(2 * sigma2 / 3), df)
    assert out.loc["up", "p"] == pytest.approx(expected) and out.loc["up", "gain"] == pytest.approx(0.02)
    assert out.loc["one", "p"] == pytest.approx(stats.t.sf(0.4 / math.sqrt(2 * sigma2), df))
    # The per-source paired t-test beside it.
    p_t = stats.ttest_rel([0.52, 0.63, 0.71], [0.50, 0.60, 0.70], alternative="greater").pvalue
    assert out.loc["up", "p_t"] == pytest.approx(p_t)
    assert out.loc["flat", "p_t"] == 0.0 and out.loc["down", "p_t"] == 1.0
    assert out.loc["one", "seeds"] == 1 and math.isnan(out.loc["one", "p_t"])
    q = stats.false_discovery_control(out["p"].to_numpy())
    assert np.allclose(out["q"], q)
    assert list(out.index[:2]) == ["one", "flat"]  # sorted by gain
    assert (out["significant"] == (out["q"] < 0.05)).all() and not bool(out.loc["down", "significant"])
    # Without the noisy source the pooled noise is small and the constant +5 is significant.
    assert bool(paired_gain_tests(t.drop("noisy")).set_index("source").loc["flat", "significant"])
    assert paired_gain_tests(t.drop("")).empty


def test_paired_gain_test_is_calibrated_and_more_powerful_than_per_source_t():
    # 20 sources + baseline, 3 seeds, seed effects and noise (sd 1). Under "no source helps" p is
    # uniform (5 % below 0.05); with a true gain of 1.5 sd it finds the gain far more often than a
    # t-test on each source's own three differences.
    rng = np.random.default_rng(1)

    def draw(gain: float) -> pd.DataFrame:
        x = rng.normal(size=(21, 3)) + rng.normal(0, 3, size=3)
        x[1:] += gain
        return table({"": list(x[0]), **{f"s{i:02d}": list(r) for i, r in enumerate(x[1:])}})

    null = pd.concat([paired_gain_tests(draw(0.0)) for _ in range(300)])
    assert 0.035 < (null["p"] < 0.05).mean() < 0.065
    assert 0.035 < (null["p_t"] < 0.05).mean() < 0.065
    helped = pd.concat([paired_gain_tests(draw(1.5)) for _ in range(100)])
    assert (helped["p"] < 0.05).mean() > 1.5 * (helped["p_t"] < 0.05).mean()


def test_paired_test_pairs_by_seed_not_by_position():
    # The same per-seed values in another column order give the same answer.
    t = table({"": [0.5, 0.6, 0.7], "a": [0.52, 0.63, 0.71]}, seeds=[3, 1, 2])
    shuffled = t[[1, 2, 3]]
    assert paired_gain_tests(t).equals(paired_gain_tests(shuffled))


def test_seed_table_and_runs_file(tmp_path):
    csv = tmp_path / "gt.runs.csv"
    csv.write_text(
        "protocol_hash,source,target,seed,main\n"
        "h,,t,0,0.5\nh,,t,1,0.6\nh,a,t,0,0.7\nh,a,t,1,0.8\nh,b,t,0,0.1\nh,a,other,0,0.3\n"
    )
    records = pd.DataFrame(
        {"source": ["", "a"], "target": ["t", "t"], "mean": [0.55, 0.75], "std": [0.0, 0.0], "n": [2, 2]}
    )
    runs = read_runs(csv, records)
    assert len(runs) == 4 and set(runs["source"]) == {"", "a"}  # pairs not in the ground truth dropped
    t = seed_table(runs, "t")
    assert list(t.index) == ["", "a"] and list(t.columns) == [0, 1] and t.loc["a", 1] == 0.8
    assert seed_table(runs, "missing").empty
    GroundTruth(protocol={"name": "x"}, records=records, meta={}).save(tmp_path / "gt.json")
    assert len(GroundTruth.load(tmp_path / "gt.json").runs) == 4
    (tmp_path / "gt.runs.csv").write_text("source,target\n")
    from taskscout.errors import DataError

    with pytest.raises(DataError, match="lacks columns seed, main"):
        GroundTruth.load(tmp_path / "gt.json")


def test_signal_by_target_summarises_each_target():
    from taskscout.evaluate.signal import signal_by_target

    rows = []
    for seed, (base, up, flat) in enumerate([(0.50, 0.60, 0.51), (0.52, 0.63, 0.52), (0.51, 0.61, 0.52)]):
        rows += [
            {"source": "", "target": "t", "seed": seed, "main": base},
            {"source": "up", "target": "t", "seed": seed, "main": up},
            {"source": "flat", "target": "t", "seed": seed, "main": flat},
            {"source": "t", "target": "t", "seed": seed, "main": 0.99},  # the target itself: left out
            {"source": "other", "target": "t", "seed": seed, "main": 0.40 + 0.01 * seed},
        ]
    out = signal_by_target(pd.DataFrame(rows)).set_index("target")
    row = out.loc["t"]
    assert row["seeds"] == 3 and row["sources"] == 3 and row["baseline"] == pytest.approx(0.51)
    assert row["best_source"] == "up" and row["best_gain"] == pytest.approx(0.1033333, abs=1e-6)
    assert row["beat_baseline"] == 2 and row["beat_p05"] == 1 and row["beat_fdr"] == 1
    assert row["reliability"] == pytest.approx(
        split_half_reliability(seed_table(pd.DataFrame(rows), "t"), exclude="t")
    )


def test_signal_measures_are_exported_from_the_package():
    import taskscout.evaluate as evaluate
    from taskscout.evaluate import signal

    for name in signal.__all__:
        if name != "lower_is_better":
            assert getattr(evaluate, name) is getattr(signal, name)
    assert evaluate.random_expectation is random_expectation  # twice: nothing rebinds the name
    assert evaluate.random_expectation is random_expectation
    assert "split_half_reliability" in dir(evaluate)
    with pytest.raises(AttributeError):
        _ = evaluate.no_such_measure


def test_detectable_gain_is_the_threshold_of_the_paired_gain_test():
    # A source that is the baseline shifted by g on every seed leaves the pooled noise unchanged (the
    # shift is its row effect), so the test's p crosses 0.05 exactly at the detectable gain.
    rng = np.random.default_rng(3)
    rows = {"": list(rng.normal(0.6, 0.01, 3))}
    rows.update({f"s{i}": list(rng.normal(0.6, 0.01, 3)) for i in range(8)})

    def p_at(gain: float) -> tuple[float, float]:
        frame = table({**rows, "x": [v + gain for v in rows[""]]})
        tests = paired_gain_tests(frame).set_index("source")
        return detectable_gain(frame), float(tests.loc["x", "p"])

    threshold, _ = p_at(0.0)
    assert 0 < threshold < 0.1
    assert p_at(threshold * 1.001)[1] < 0.05 < p_at(threshold * 0.999)[1]
    assert p_at(threshold * 1.001)[0] == pytest.approx(threshold)  # independent of the shift
    # Brute force: the formula t_{0.95, df} * sqrt(2 sigma2 / n).
    sigma2, df = pooled_seed_noise(table(rows))
    assert detectable_gain(table(rows)) == pytest.approx(stats.t.ppf(0.95, df) * math.sqrt(2 * sigma2 / 3))
    assert math.isnan(detectable_gain(table({"": [0.5], "a": [0.6]})))  # one seed: no noise estimate
