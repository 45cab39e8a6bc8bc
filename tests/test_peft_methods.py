"""TuPaTE (BitFit / LoRA / prefix / ensemble), TaskEmb and CurveGrad: pure parts, then a tiny pool end to end.

The toy pool has three sources for one target: the target's own rows under another name (the right
answer), the same texts with swapped labels, and an unrelated regression task with random targets.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from taskscout.data.task import Task
from taskscout.methods.base import cosine
from taskscout.methods.curvegrad import CurveGrad, curve_features, standardised_distances
from taskscout.methods.fusion import reciprocal_rank_fusion_matrix as reciprocal_rank_fusion
from taskscout.methods.taskemb import TaskEmb, layer_output_fisher
from taskscout.methods.tupate import (
    PrefixEncoder,
    TuPaTEBitFit,
    TuPaTEConfig,
    TuPaTEEnsemble,
    TuPaTELoRA,
    TuPaTEPrefix,
    layerwise_embedding,
    tune,
)
from taskscout.pool.build import BuildConfig, build_pool
from taskscout.pool.store import Pool
from taskscout.ranking import rank
from taskscout.train.finetune import TrainConfig, finetune
from tests.conftest import make_task

METHOD_CLASSES = (TuPaTEBitFit, TuPaTELoRA, TuPaTEPrefix, TuPaTEEnsemble, TaskEmb, CurveGrad)
BUILT = ("tupate-bitfit", "tupate-lora", "tupate-prefix", "taskemb", "curvegrad")


def _registry():
    from taskscout.methods.esm_logme import ESMLogME

    return {cls.name: cls for cls in (ESMLogME, *METHOD_CLASSES)}


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setattr("taskscout.methods.registry", _registry)


def _target() -> Task:
    return make_task("target", n=96, seed=5)


def _sources() -> list[Task]:
    target = _target()
    same = dataclasses.replace(target, name="src_same")
    swapped = dataclasses.replace(target, name="src_swapped", labels=1 - target.labels)
    unrelated = make_task("src_unrelated", n=96, seed=7, regression=True)
    noise = np.random.default_rng(3).normal(size=len(unrelated))
    return [same, swapped, dataclasses.replace(unrelated, labels=noise)]


def _config(model_dir) -> BuildConfig:
    return BuildConfig(
        model=str(model_dir),
        max_train_rows=64,
        max_fit_texts=80,
        max_eval_rows=20,
        train=TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3, max_length=32),
    )


@pytest.fixture(scope="module")
def pool_template(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("peft-pool")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSCOUT_HOME", str(root / "home"))
        mp.setattr("taskscout.methods.registry", _registry)
        pool = Pool.create(root / "pool")
        results = build_pool(pool, _sources(), _config(tiny_model_dir), methods=BUILT, progress=False)
    assert [r.status for r in results] == ["built"] * 3, results
    return pool.path


@pytest.fixture
def built_pool(pool_template, tmp_path):
    return Pool(shutil.copytree(pool_template, tmp_path / "pool"))


# ---------------------------------------------------------------------------------------------- pure parts
def test_layerwise_embedding_concatenates_within_and_averages_across_layers():
    params = {
        "encoder.layer.1.output.bias": torch.tensor([7.0]),
        "encoder.layer.0.attention.self.query.bias": torch.tensor([1.0, 2.0]),
        "encoder.layer.0.output.bias": torch.tensor([3.0]),
        "encoder.layer.1.attention.self.query.bias": torch.tensor([5.0, 6.0]),
        "embeddings.LayerNorm.bias": torch.tensor([100.0]),  # outside the layers: ignored
    }
    # layer 0: [1, 2, 3], layer 1: [5, 6, 7] (names sorted: attention... before output...) -> mean [3, 4, 5]
    assert np.allclose(layerwise_embedding(params, 2), [3.0, 4.0, 5.0])
    matrices = {"layer.0.key": np.ones((2, 2)), "layer.1.key": 3 * np.ones((2, 2))}
    assert np.allclose(layerwise_embedding(matrices, 2), [2.0] * 4)
    with pytest.raises(ValueError, match=r"layers 0\.\.2"):
        layerwise_embedding(params, 3)
    del params["encoder.layer.1.output.bias"]
    with pytest.raises(ValueError, match="other parameters"):
        layerwise_embedding(params, 2)


def test_reciprocal_rank_fusion_matches_hand_computation():
    sims = np.array([[0.9, 0.1], [0.5, 0.8], [0.1, 0.2]])
    # ranks per component: [1, 2, 3] and [3, 1, 2]
    expected = [1 / 61 + 1 / 63, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62]
    assert np.allclose(reciprocal_rank_fusion(sims), expected)
    tied = np.array([[0.5], [0.5], [0.1]])  # the tie shares ranks 1 and 2 -> 1.5
    assert np.allclose(reciprocal_rank_fusion(tied), [1 / 61.5, 1 / 61.5, 1 / 63])
    assert reciprocal_rank_fusion(np.zeros((0, 3))).shape == (0,)


def test_curve_features_are_slopes_of_the_relative_curve():
    t = np.linspace(0, 1, 51)
    linear = 2.0 - t  # relative curve 1 - t/2: slope -0.5 everywhere
    assert np.allclose(curve_features(linear, smoothing=0), -0.5)
    quadratic = 1.0 + t**2  # slope 2t, exact for second-order differences
    fractions = (0.1, 0.5, 1.0)
    assert np.allclose(curve_features(quadratic, fractions, smoothing=0), [0.2, 1.0, 2.0])
    noisy = 1.5 * np.exp(-3 * t) + np.random.default_rng(0).normal(0, 0.01, t.size)
    assert np.allclose(curve_features(noisy), curve_features(10 * noisy))  # loss scale does not matter
    with pytest.raises(ValueError):
        curve_features([1.0, 0.5])
    target, sources = np.array([0.0, 1.0]), np.array([[0.0, 1.0], [2.0, -1.0]])
    # z-scores over the 3 rows: column 0 mean 2/3 std 0.943, column 1 mean 1/3 std 0.943
    z = (np.vstack([target, sources]) - [2 / 3, 1 / 3]) / np.std([0.0, 0.0, 2.0])
    expected = [0.0, -np.linalg.norm(z[2] - z[0])]
    assert np.allclose(standardised_distances(target, sources), expected)


# ---------------------------------------------------------------------------------------------- internals
def test_prefix_encoder_keeps_the_encoder_exact_when_masked(tiny_model_dir):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = tokenizer(["great fun", "a dull waste of time"], ["x", "y z"], padding=True, return_tensors="pt")
    plain = model(**batch).last_hidden_state
    wrapped = PrefixEncoder(model, length=4)
    assert wrapped.prefix.shape == (2, 2, 2, 4, 16)
    valid = batch["attention_mask"].unsqueeze(-1)
    with torch.no_grad():
        on = wrapped(**batch).last_hidden_state
        # a prefix nobody attends to is invisible: the same positions and segment ids as without it
        wrapped.length = 4
        mask = torch.cat([torch.zeros(2, 4, dtype=torch.long), batch["attention_mask"]], dim=1)
        off = model(
            input_ids=batch["input_ids"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=mask,
            position_ids=torch.arange(batch["input_ids"].shape[1]).expand(2, -1),
            cache=_cache(wrapped, 2),
        ).last_hidden_state
    assert torch.allclose(off * valid, plain * valid, atol=1e-5)
    assert (on - plain).abs().max() > 1e-3


def _cache(wrapped, batch_size):
    from transformers import DynamicCache

    cache = DynamicCache(config=wrapped.config)
    for i in range(wrapped.prefix.shape[0]):
        cache.update(
            wrapped.prefix[i, 0].expand(batch_size, -1, -1, -1),
            wrapped.prefix[i, 1].expand(batch_size, -1, -1, -1),
            i,
        )
    return cache


def test_tuning_is_deterministic_and_init_subtraction_separates_tasks(tiny_model_dir):
    config = TuPaTEConfig(max_length=32, batch_size=16, max_rows=64)
    target = _target().subsample(64)
    unrelated = _sources()[2].subsample(64)
    first = tune(target, str(tiny_model_dir), "lora", config)
    again = tune(target, str(tiny_model_dir), "lora", config)
    assert np.array_equal(first.early, again.early)
    assert first.early.size == 2 * 2 * (8 * 32)  # query and value, A (8 x 32) and B (32 x 8) per layer
    assert first.info["early_steps"] == 8 and first.late is None  # 2 epochs of 4 steps
    delta = cosine(first.early, tune(unrelated, str(tiny_model_dir), "lora", config).early)
    raw_config = dataclasses.replace(config, subtract_init=False)
    raw = cosine(
        tune(target, str(tiny_model_dir), "lora", raw_config).early,
        tune(unrelated, str(tiny_model_dir), "lora", raw_config).early,
    )
    assert raw > 0.99 > 0.5 > delta  # raw LoRA parameters are the shared random A: every task looks alike


def test_late_embedding_is_the_best_validation_epoch(tiny_model_dir):
    config = TuPaTEConfig(max_length=32, batch_size=16, early_epochs=1, late_epochs=3, min_steps=1)
    result = tune(_target(), str(tiny_model_dir), "bitfit", config)
    assert result.late is not None and result.late.shape == result.early.shape
    assert result.info["total_steps"] == 15 and 1 <= result.info["late_epoch"] <= 3  # 77 rows / 16 x 3
    # BitFit per layer of the tiny BERT: q, k, v, o (4 x 32) + 2 LayerNorms (2 x 32) + FFN (64 + 32)
    assert result.early.size == 4 * 32 + 2 * 32 + 64 + 32


def test_fisher_is_per_example_and_padding_invariant(tiny_model_dir):
    task = make_task("fisher", n=24, seed=2)
    tuned = finetune(task, str(tiny_model_dir), TrainConfig(epochs=1, batch_size=8, max_length=32))
    one = layer_output_fisher(tuned, task, batch_size=1)
    many = layer_output_fisher(tuned, task, batch_size=8)
    assert list(one) == ["embeddings", "layer.0", "layer.1"]
    for name in one:
        assert one[name].shape == (32,) and np.all(one[name] > 0)
        assert np.allclose(one[name], many[name], rtol=1e-4)


# ---------------------------------------------------------------------------------------------- end to end
def test_entries_store_embeddings_and_protocol(built_pool):
    for kind, dim in (("tupate-bitfit", 288), ("tupate-lora", 1024), ("tupate-prefix", 2 * 20 * 32)):
        entry = built_pool.get(kind, "src_same")
        entry.verify()
        assert entry.meta["embedding_dim"] == dim and entry.meta["tupate_stages"] == ["early"]
        assert entry.meta["tupate"]["max_rows"] == 64 and entry.meta["tupate"]["max_length"] == 32
    taskemb = built_pool.get("taskemb", "src_unrelated")
    assert taskemb.meta["taskemb_components"] == ["embeddings", "layer.0", "layer.1"]
    assert taskemb.meta["embedding_dim"] == 32 and taskemb.meta["taskemb"]["max_train_rows"] == 64
    assert built_pool.get("curvegrad", "src_same").meta["embedding_dim"] == 10


@pytest.mark.parametrize(
    "method", ["tupate-bitfit", "tupate-lora", "tupate-prefix", "tupate-ensemble", "taskemb"]
)
def test_the_targets_own_data_ranks_first(built_pool, method):
    ranking = rank(_target(), pool=built_pool, method=method, keep_duplicates=True)
    assert not ranking.failed, ranking.failed
    assert ranking.sources[0].source == "src_same", ranking.scores()
    if method.startswith("tupate"):
        assert all(-1 <= s <= 1 for s in ranking.scores().values())
    # without keep_duplicates the copy of the target is excluded, as for every method
    assert "src_same" in rank(_target(), pool=built_pool, method=method).excluded


def test_curvegrad_scores_every_source(built_pool):
    ranking = rank(_target(), pool=built_pool, method="curvegrad", keep_duplicates=True)
    assert not ranking.failed and len(ranking) == 3
    assert all(s.score <= 0 and np.isfinite(s.score) for s in ranking.sources)


def test_ensemble_storage_counts_all_three_variants(built_pool):
    from taskscout.evaluate.benchmark import storage_per_source

    variants = [storage_per_source(f"tupate-{v}", built_pool) for v in ("bitfit", "lora", "prefix")]
    assert min(variants) > 0
    assert storage_per_source("tupate-ensemble", built_pool) == pytest.approx(sum(variants))


def test_ensemble_needs_all_three_siblings(built_pool):
    built_pool.remove("src_swapped", kind="tupate-prefix")
    ranking = rank(_target(), pool=built_pool, method="tupate-ensemble", keep_duplicates=True)
    assert "tupate-prefix" in ranking.failed["src_swapped"]
    assert set(ranking.scores()) == {"src_same", "src_unrelated"}


def test_broken_or_incompatible_entries_fail_alone(built_pool):
    entry = built_pool.get("taskemb", "src_unrelated")
    meta = json.loads((entry.path / "config.json").read_text())
    meta["base_model_fingerprint"] = "other-weights"
    (entry.path / "config.json").write_text(json.dumps(meta))
    built_pool.reindex()
    (built_pool.get("tupate-lora", "src_swapped").path / "tupate.safetensors").write_bytes(b"corrupt")
    lora = rank(_target(), pool=built_pool, method="tupate-lora", keep_duplicates=True)
    assert "checksum mismatch" in lora.failed["src_swapped"]
    assert set(lora.scores()) == {"src_same", "src_unrelated"}
    taskemb = rank(_target(), pool=built_pool, method="taskemb", keep_duplicates=True)
    assert "fingerprint" in taskemb.failed["src_unrelated"] and len(taskemb) == 2
    late = TuPaTELoRA(stage="late").score(
        _rank_target(built_pool), built_pool.entries("tupate-lora"), progress=False
    )
    assert not late.scores and "no late embedding" in late.failed["src_same"]


def _rank_target(pool):
    from taskscout.encode.encoder import Encoder
    from taskscout.methods.base import Target

    entry = pool.entries("tupate-lora")[0]
    return Target(_target(), Encoder(entry.base_model, max_length=32, cache=False))


def test_method_classes_are_described():
    for cls in METHOD_CLASSES:
        assert cls.name and cls.kind and cls.description and cls.p1_cost and cls.p2_cost


def test_tupate_keeps_its_own_row_budget_below_the_source_models(tiny_model_dir, tmp_path, monkeypatch):
    from taskscout.methods.tupate import TuPaTEConfig
    from taskscout.methods.tupate.methods import TuPaTELoRA

    # The default build (2,000-row source models) tunes TuPaTE on 500 rows; a smaller build caps it.
    assert TuPaTEConfig().for_build(BuildConfig()).max_rows == 500
    assert TuPaTEConfig().for_build(_config(tiny_model_dir)).max_rows == 64
    monkeypatch.setenv("TASKSCOUT_HOME", str(tmp_path / "home"))
    method = TuPaTELoRA(TuPaTEConfig(max_rows=40))
    monkeypatch.setattr("taskscout.methods.registry", lambda: {**_registry(), method.name: lambda: method})
    pool = Pool.create(tmp_path / "pool")
    [result] = build_pool(
        pool, _sources()[:1], _config(tiny_model_dir), methods=[method.name], progress=False
    )
    assert result.status == "built", result
    entry = pool.get("tupate-lora", "src_same")
    assert entry.meta["tupate"]["max_rows"] == 40 and entry.meta["tupate_info"]["rows"] == 40
