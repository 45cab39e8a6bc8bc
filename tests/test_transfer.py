"""Transfer experiments, ground truth and benchmark scoring on a tiny random BERT."""

import dataclasses

import numpy as np
import pytest

from taskscout.errors import PoolError, TaskscoutError
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.transfer import (
    BASELINE,
    ResultStore,
    TransferProtocol,
    aggregate_runs,
    get_protocol,
    plan_runs,
    run_transfer,
    target_samples,
)
from taskscout.io import file_lock
from taskscout.pool.config import BuildConfig
from taskscout.pool.context import source_samples
from taskscout.train.config import TrainConfig
from tests.conftest import make_task


@pytest.fixture
def protocol(tiny_model_dir):
    small = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, max_length=32)
    return TransferProtocol(
        name="tiny",
        target_train_rows=40,
        target_eval_rows=30,
        seeds=(0, 1),
        train=small,
        source=BuildConfig(model=str(tiny_model_dir), max_train_rows=40, max_fit_texts=60, train=small),
    )


def test_target_samples_are_disjoint_and_fixed(protocol):
    task = make_task("t", n=200)
    train, evaluation = target_samples(task, protocol)
    assert len(train) == 40 and len(evaluation) == 30
    assert not set(train.texts) & set(evaluation.texts)
    again, _ = target_samples(task, protocol)
    assert again.texts == train.texts


def test_plan_skips_done_and_duplicates(protocol):
    plan = plan_runs(["a", "b"], ["t", "b"], protocol, done={(BASELINE, "t", 0)})
    keys = {(r.source, r.target, r.seed) for r in plan}
    assert (BASELINE, "t", 0) not in keys and (BASELINE, "t", 1) in keys
    assert not any(r.source == "b" and r.target == "b" for r in plan)
    assert len(plan) == 3 + 2 * 3  # baselines t1, b0, b1 + a->t, a->b, b->t with 2 seeds


def test_run_transfer_is_resumable(protocol, tmp_path):
    tasks = {
        "src": make_task("src", n=150, seed=1),
        "tgt": make_task("tgt", n=150, seed=2),
        "reg": make_task("reg", n=150, seed=3, regression=True),
    }
    store = ResultStore(tmp_path / "runs.sqlite")
    seen = []
    done = run_transfer(
        ["src"],
        ["tgt", "reg"],
        protocol,
        store,
        tasks.__getitem__,
        on_run=lambda run, metrics, s, progress: seen.append((run.source, run.target, metrics)),
    )
    assert done == 8 and len(store.frame(protocol)) == 8
    pairs = {(BASELINE, "tgt"), (BASELINE, "reg"), ("src", "tgt"), ("src", "reg")}
    assert {(s, t) for s, t, _ in seen} == pairs
    assert all(0 <= m["accuracy"] <= 1 for s, t, m in seen if t == "tgt")
    assert all({"pearson", "spearman"} <= set(m) for s, t, m in seen if t == "reg")
    # Resuming does nothing; a different protocol is a different set of runs.
    assert run_transfer(["src"], ["tgt", "reg"], protocol, store, tasks.__getitem__) == 0
    other = dataclasses.replace(protocol, seeds=(5,))
    assert other.hash() != protocol.hash() and store.done(other) == set()

    agg = aggregate_runs(store.frame(protocol))
    assert set(agg["source"]) == {BASELINE, "src"} and (agg["n"] == 2).all()

    gt = GroundTruth(protocol={"name": "tiny"}, records=agg, meta={"runs": 8})
    gt.save(tmp_path / "gt.json")
    loaded = GroundTruth.load(tmp_path / "gt.json")
    assert loaded.targets == ["reg", "tgt"] and loaded.sources == ["src"]
    mean = agg[(agg.source == "src") & (agg.target == "tgt")]["mean"].iloc[0]
    assert loaded.truth("tgt") == {"src": pytest.approx(mean)}
    assert np.isfinite(loaded.baseline("reg"))


def test_ground_truth_errors(tmp_path):
    from taskscout.errors import DataError

    with pytest.raises(DataError, match="does not exist"):
        GroundTruth.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not valid"):
        GroundTruth.load(tmp_path / "bad.json")


def test_evaluate_method_and_report(tmp_path, protocol, tiny_model_dir):
    import pandas as pd

    from taskscout.evaluate.benchmark import evaluate_method
    from taskscout.evaluate.report import markdown_table, write_report
    from taskscout.pool.build import build_pool
    from taskscout.pool.store import Pool

    tasks = {name: make_task(name, n=120, seed=i) for i, name in enumerate(["s1", "s2", "s3", "tgt"])}
    pool = Pool.create(tmp_path / "pool")
    build_pool(pool, [tasks[n] for n in ("s1", "s2", "s3")], protocol.source, progress=False)
    records = pd.DataFrame(
        [
            {"source": "", "target": "tgt", "mean": 0.70, "std": 0.01, "n": 2},
            {"source": "s1", "target": "tgt", "mean": 0.80, "std": 0.01, "n": 2},
            {"source": "s2", "target": "tgt", "mean": 0.60, "std": 0.01, "n": 2},
            {"source": "s3", "target": "tgt", "mean": 0.75, "std": 0.01, "n": 2},
        ]
    )
    gt = GroundTruth(protocol={"name": "tiny"}, records=records, meta={})
    result = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__)
    row = result.per_target.iloc[0]
    assert row["target"] == "tgt" and row["sources_ranked"] == 3
    assert 0 <= row["regret@1"] <= (0.80 - 0.60) / 0.80 * 100 + 1e-9
    assert row["regret@3"] == pytest.approx(0.0)  # all three sources are in the top 3
    assert result.storage_bytes_per_source > 0 and result.p2_ms_per_source > 0
    md, page = write_report([result], gt, tmp_path / "report")
    assert markdown_table([result]).splitlines()[-1].endswith("| 1 |")  # targets ranked
    unrankable = dataclasses.replace(result, per_target=result.per_target.assign(**{"regret@1": np.nan}))
    assert markdown_table([unrankable]).splitlines()[-1].endswith("| 0 |")
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "Regret@k" in text
    assert "esm-logme" in md.read_text()


def test_bench_scores_are_stored_reused_and_fused(tmp_path, protocol, tiny_model_dir, monkeypatch):
    import pandas as pd

    from taskscout import ranking as rank_module
    from taskscout.evaluate.benchmark import ScoreCache, evaluate_method
    from taskscout.methods.fusion import reciprocal_rank_fusion
    from taskscout.pool.build import build_pool
    from taskscout.pool.store import Pool

    tasks = {name: make_task(name, n=120, seed=i) for i, name in enumerate(["s1", "s2", "tgt"])}
    pool = Pool.create(tmp_path / "pool")
    build_pool(
        pool, [tasks["s1"], tasks["s2"]], protocol.source, methods=["esm-logme", "textemb"], progress=False
    )
    records = pd.DataFrame(
        [
            {"source": "", "target": "tgt", "mean": 0.70, "std": 0.01, "n": 2},
            {"source": "s1", "target": "tgt", "mean": 0.80, "std": 0.01, "n": 2},
            {"source": "s2", "target": "tgt", "mean": 0.60, "std": 0.01, "n": 2},
        ]
    )
    gt = GroundTruth(protocol={"name": "tiny"}, records=records, meta={})
    cache = ScoreCache(tmp_path / "scores.json")
    first = {
        m: evaluate_method(m, gt, pool, protocol, tasks.__getitem__, cache=cache)
        for m in ("esm-logme", "textemb")
    }

    calls = []
    real_rank = rank_module.rank
    monkeypatch.setattr(rank_module, "rank", lambda *a, **k: calls.append(k["method"]) or real_rank(*a, **k))
    reloaded = ScoreCache(tmp_path / "scores.json")  # as a later `taskscout bench` run sees it
    other = ScoreCache(tmp_path / "scores.json")  # a second bench process sharing the file
    other.put("datasize", "tgt", "sig", {"scores": {}, "p2_seconds": 0.0, "ms_per_source": 0.0})
    assert ScoreCache(tmp_path / "scores.json").methods() == ["datasize", "esm-logme", "textemb"]
    again = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    fused = evaluate_method("fusion:esm-logme+textemb", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    assert calls == []  # nothing recomputed: the stored rankings were reused
    assert again.scores == first["esm-logme"].scores
    expected = reciprocal_rank_fusion([first["esm-logme"].scores["tgt"], first["textemb"].scores["tgt"]])
    assert fused.scores["tgt"] == pytest.approx(expected)
    assert fused.storage_bytes_per_source == pytest.approx(
        first["esm-logme"].storage_bytes_per_source + first["textemb"].storage_bytes_per_source
    )

    without_pool = evaluate_method(
        "fusion:esm-logme+textemb", gt, None, protocol, tasks.__getitem__, cache=reloaded
    )
    assert without_pool.scores == fused.scores
    with pytest.raises(PoolError, match="no stored ranking of vocab-overlap"):
        evaluate_method("vocab-overlap", gt, None, protocol, tasks.__getitem__, cache=reloaded)

    # Recomputing one method (as `bench --recompute -m esm-logme`) keeps every other stored ranking,
    # and recomputes the method once even when a fusion reads it again.
    refreshed = ScoreCache(tmp_path / "scores.json", refresh=["esm-logme"])
    evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=refreshed)
    evaluate_method("fusion:esm-logme+textemb", gt, pool, protocol, tasks.__getitem__, cache=refreshed)
    assert calls == ["esm-logme"]
    assert ScoreCache(tmp_path / "scores.json").methods() == ["datasize", "esm-logme", "textemb"]
    calls.clear()

    # The pool changed. Scores are per source: a removed source leaves the ranking without anything
    # recomputed, a new source is scored alone and merged, a rebuilt entry is scored again.
    full = first["esm-logme"].scores["tgt"]
    pool.remove("s2")
    removed = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    assert calls == [] and removed.scores["tgt"] == {"s1": full["s1"]}
    seen_sources = []
    monkeypatch.setattr(
        rank_module,
        "rank",
        lambda *a, **k: calls.append(k["method"]) or seen_sources.append(k["sources"]) or real_rank(*a, **k),
    )
    build_pool(pool, [tasks["s2"]], protocol.source, methods=["esm-logme"], progress=False)
    grown = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    assert calls == ["esm-logme"] and seen_sources == [["s2"]]
    assert grown.scores["tgt"] == pytest.approx(full)  # as if ranked in one go
    again = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    assert len(calls) == 1 and again.scores == grown.scores  # complete again: nothing to compute
    refit = dataclasses.replace(protocol.source, max_fit_texts=protocol.source.max_fit_texts // 2)
    build_pool(pool, [tasks["s1"]], refit, methods=["esm-logme"], force=True, progress=False)
    rebuilt = evaluate_method("esm-logme", gt, pool, protocol, tasks.__getitem__, cache=reloaded)
    assert seen_sources[1:] == [["s1"]] and set(rebuilt.scores["tgt"]) == {"s1", "s2"}


def test_workers_share_runs_by_claiming_groups(protocol, tmp_path):
    tasks = {"src": make_task("src", n=150, seed=1), "tgt": make_task("tgt", n=150, seed=2)}
    store = ResultStore(tmp_path / "runs.sqlite")
    # Another live worker holds seed 1 of "src": this worker does everything else, then stops
    # instead of waiting or duplicating it.
    with file_lock(store.claim_path(protocol, 1, "src"), wait=False) as held:
        assert held
        seen = []
        done = run_transfer(
            ["src"], ["tgt"], protocol, store, tasks.__getitem__, on_run=lambda *a: seen.append(a[-1])
        )
    assert done == 3
    assert store.done(protocol) == {(BASELINE, "tgt", 0), (BASELINE, "tgt", 1), ("src", "tgt", 0)}
    # "left" counts the other worker's run too; both workers are seen.
    assert [p.left for p in seen] == [3, 2, 1] and all(p.workers == 2 for p in seen)
    # The claim is gone (its worker died or finished without the run): a rerun picks the group up.
    assert run_transfer(["src"], ["tgt"], protocol, store, tasks.__getitem__) == 1
    assert ("src", "tgt", 1) in store.done(protocol)


def test_a_worker_that_loses_a_claim_takes_another_source(protocol, tmp_path, monkeypatch):
    import contextlib

    from taskscout.evaluate import transfer

    tasks = {name: make_task(name, n=150, seed=i) for i, name in enumerate(("a", "b", "tgt"))}
    store = ResultStore(tmp_path / "runs.sqlite")
    for seed in protocol.seeds:
        store.add(protocol, BASELINE, "tgt", seed, {"main": 0.5}, 1.0)
    # Another worker planned at the same moment and claims the first group ((0, "b")) just after this
    # worker made its plan, so the plan does not show it as busy.
    plan = transfer._group_order
    other_worker = contextlib.ExitStack()
    plans = []

    def plan_then_lose_the_first_group(groups, *args, **kwargs):
        plans.append(plan(groups, *args, **kwargs))
        if len(plans) == 1:
            assert plans[0][0] == (0, "b")
            assert other_worker.enter_context(file_lock(store.claim_path(protocol, 0, "b"), wait=False))
        return plans[-1]

    monkeypatch.setattr(transfer, "_group_order", plan_then_lose_the_first_group)
    seen = []
    with other_worker:
        run_transfer(
            ["a", "b"], ["tgt"], protocol, store, tasks.__getitem__, on_run=lambda r, *_: seen.append(r)
        )
    # It trains "a" instead of waiting for "b"'s model to take b's next seed; b's seed 1 comes last.
    assert [(r.source, r.seed) for r in seen] == [("a", 0), ("a", 1), ("b", 1)]


def test_runs_save_and_restore(tmp_path, protocol):
    store = ResultStore(tmp_path / "a.sqlite")
    store.add(protocol, BASELINE, "t", 0, {"main": 0.5, "accuracy": 0.5}, 1.0)
    store.add(protocol, "s", "t", 0, {"main": 0.6, "accuracy": 0.6}, 2.0)
    assert store.save_runs(tmp_path / "runs.csv", protocol) == 2
    other = ResultStore(tmp_path / "b.sqlite")
    assert other.restore(tmp_path / "runs.csv") == 2
    assert other.restore(tmp_path / "runs.csv") == 0  # idempotent
    assert other.done(protocol) == {(BASELINE, "t", 0), ("s", "t", 0)}
    frame = other.frame(protocol)
    assert sorted(frame["main"]) == [0.5, 0.6]
    # Checked against a protocol, a file of another one is refused and nothing is added.
    other_protocol = get_protocol("v2")
    third = ResultStore(tmp_path / "c.sqlite")
    with pytest.raises(TaskscoutError, match=f"holds no run of protocol '{other_protocol.name}'.*only of"):
        third.restore(tmp_path / "runs.csv", other_protocol)
    assert third.frame().empty
    assert third.restore(tmp_path / "runs.csv", protocol) == 2


def test_wins_table_names_the_best_method_per_target():
    import pandas as pd

    from taskscout.evaluate.benchmark import MethodResult
    from taskscout.evaluate.report import wins_table

    def result(name, regrets):
        frame = pd.DataFrame({"target": ["a", "b"], "regret@3": regrets})
        return MethodResult(name, frame, {}, 1.0, 0.0)

    wins = wins_table(
        [result("m1", [0.0, 5.0]), result("m2", [0.0, 2.5]), result("leep", [float("nan"), 1.0])]
    ).set_index("target")
    assert wins.loc["a", "best"] == "m1, m2"  # tie: both listed; a method that cannot rank is no winner
    assert wins.loc["b", "best"] == "leep" and wins.loc["b", "m1"] == "5.0"
    assert wins.loc["a", "leep"] == "–"  # cannot rank target a: a dash, never "nan"


def test_run_order_source_keeps_a_source_model_for_all_its_seeds(protocol):
    from taskscout.evaluate.transfer import PlannedRun, _group_order

    groups = {
        (seed, source): [PlannedRun(source, "t", seed)] for seed in (0, 1) for source in (BASELINE, "a", "b")
    }
    train = make_task("s", n=60)
    by_source = _group_order(groups, protocol, lambda name: train, "source")
    # Baselines first, then each source with all its seeds (uncached sources from the end of the list).
    assert by_source == [(0, BASELINE), (1, BASELINE), (0, "b"), (1, "b"), (0, "a"), (1, "a")]
    # The source whose model the worker holds is finished first, before another one is loaded.
    holding = _group_order(groups, protocol, lambda name: train, "source", loaded="a")
    assert holding == [(0, BASELINE), (1, BASELINE), (0, "a"), (1, "a"), (0, "b"), (1, "b")]
    # A source another worker is on goes last: a second worker takes another source, not its next seed.
    beside_b = _group_order(groups, protocol, lambda name: train, "source", busy={"b"})
    assert beside_b == [(0, BASELINE), (1, BASELINE), (0, "a"), (1, "a"), (0, "b"), (1, "b")]
    by_seed = _group_order(groups, protocol, lambda name: train, "seed")
    assert by_seed == [(0, BASELINE), (0, "b"), (0, "a"), (1, BASELINE), (1, "b"), (1, "a")]
    with pytest.raises(TaskscoutError, match="unknown run order"):
        _group_order(groups, protocol, lambda name: train, "random")


def test_small_v1_suite_is_the_committed_ground_truth():
    from taskscout.evaluate.groundtruth import default_ground_truth_path
    from taskscout.evaluate.suites import SMALL_V1, V2
    from taskscout.io import read_json

    records = read_json(default_ground_truth_path("small-v1"))["records"]
    assert {r["source"] for r in records} - {BASELINE} == set(SMALL_V1.sources)
    assert {r["target"] for r in records} == set(SMALL_V1.targets)
    assert len(V2.targets) >= 12 and len(set(V2.sources)) == len(V2.sources) >= 40
    assert set(V2.targets) <= set(V2.sources)  # every v2 target also serves the others


def test_source_models_are_evaluated_once_saved_and_restored(protocol, tmp_path):
    from taskscout.evaluate.transfer import sources_path

    tasks = {"src": make_task("src", n=150, seed=1), "tgt": make_task("tgt", n=150, seed=2)}
    store = ResultStore(tmp_path / "runs.sqlite")
    run_transfer(["src"], ["tgt"], protocol, store, tasks.__getitem__, device="cpu")
    recorded = store.source_models(protocol)
    assert list(recorded["source"]) == ["src"]
    row = recorded.iloc[0]
    # Held-out rows are the source's rows outside its fit sample (150 - 60 here), scored against the
    # majority class of its training sample.
    _, _, held = source_samples(tasks["src"], protocol.source)
    train, _, _ = source_samples(tasks["src"], protocol.source)
    assert row["rows"] == len(held) == 90
    assert row["constant"] == pytest.approx(np.mean(held.labels == np.bincount(train.labels).argmax()))
    assert 0.0 <= row["main"] <= 1.0

    assert store.save_runs(tmp_path / "gt.runs.csv", protocol) == 4
    assert sources_path(tmp_path / "gt.runs.csv") == tmp_path / "gt.sources.csv"
    other = ResultStore(tmp_path / "other.sqlite")
    assert other.restore(tmp_path / "gt.runs.csv") == 4
    assert other.source_models(protocol)["main"].tolist() == [row["main"]]


def test_missing_source_model_evaluations_are_filled_in(protocol, tmp_path):
    from taskscout.evaluate.transfer import evaluate_missing_source_models, evaluate_source_model
    from taskscout.train.finetune import load_or_finetune

    tasks = {name: make_task(name, n=150, seed=i) for i, name in enumerate(("a", "b", "tgt"))}
    store = ResultStore(tmp_path / "runs.sqlite")
    run_transfer(["a"], ["tgt"], protocol, store, tasks.__getitem__, device="cpu")  # evaluates "a"
    # "b" has no evaluation: it is trained and evaluated, "a" is left as it is; another worker holds
    # the claim of "c", so this one passes over it.
    seen = []
    with file_lock(store.claim_path(protocol, -1, "c"), wait=False):
        added = evaluate_missing_source_models(
            ["a", "b", "c"],
            protocol,
            store,
            tasks.__getitem__,
            device="cpu",
            on_source=lambda *a: seen.append(a),
        )
    assert added == 1 and [s for s, _, _ in seen] == ["b"]
    recorded = store.source_models(protocol).set_index("source")
    assert sorted(recorded.index) == ["a", "b"]
    # The same numbers as evaluating the cached model directly; a second pass does nothing.
    model = load_or_finetune(
        source_samples(tasks["b"], protocol.source)[0], protocol.source.model, protocol.source.train
    )
    metrics, constant, rows = evaluate_source_model(model, tasks["b"], protocol.source)
    assert recorded.loc["b", "main"] == pytest.approx(metrics["main"]) == pytest.approx(seen[0][1])
    assert recorded.loc["b", "constant"] == pytest.approx(constant) and recorded.loc["b", "rows"] == rows
    assert evaluate_missing_source_models(["a", "b"], protocol, store, tasks.__getitem__, device="cpu") == 0
