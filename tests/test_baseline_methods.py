"""Baseline selection methods: pure scores against hand / brute-force values; end to end on a tiny pool."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from taskscout.methods.base import Target, cosine
from taskscout.methods.logme import logme
from taskscout.methods.source_model import (
    METHODS as SOURCE_MODEL_METHODS,
)
from taskscout.methods.source_model import (
    SOURCE_MODEL_KIND,
    fold_ids,
    frozen_transfer_score,
    h_score,
    leep_score,
    nce_score,
    regularized_h_score,
)
from taskscout.methods.text_stats import METHODS as TEXT_STATS_METHODS
from taskscout.methods.text_stats import DataSize, jaccard, token_id_set
from taskscout.methods.textemb import METHODS as TEXTEMB_METHODS
from taskscout.methods.textemb import task_embedding
from taskscout.pool.build import BuildConfig, build_pool
from taskscout.pool.store import Pool, PoolEntry
from taskscout.ranking import rank
from taskscout.train.finetune import FineTuned, TrainConfig
from tests.conftest import make_task


def _registry() -> dict[str, type]:
    from taskscout.methods.esm_logme import ESMLogME

    classes = (ESMLogME, *TEXT_STATS_METHODS, *TEXTEMB_METHODS, *SOURCE_MODEL_METHODS)
    return {cls.name: cls for cls in classes}


# ------------------------------------------------------------------------------------------ pure scores


def test_jaccard_and_token_sets(tiny_model_dir):
    assert jaccard(np.array([1, 2, 3]), np.array([2, 3, 4])) == pytest.approx(2 / 4)
    assert jaccard(np.array([5]), np.array([5])) == 1.0
    assert jaccard(np.zeros(0), np.zeros(0)) == 0.0
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = token_id_set(tokenizer, ["good movie", "bad movie [SEP]"], ["the plot"])
    expected = set(tokenizer.convert_tokens_to_ids(tokenizer.tokenize("good movie bad movie the plot")))
    assert ids.dtype == np.uint32 and list(ids) == sorted(expected)  # special tokens removed


def test_leep_hand_computed_and_brute_force():
    # P(y,z): (0,0)=.25 (0,1)=.25 (1,0)=.5 -> P(0|0)=1/3, P(0|1)=1, P(1|0)=2/3; both rows expect 2/3.
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert leep_score(probs, np.array([0, 1])) == pytest.approx(np.log(2 / 3))
    assert leep_score(np.eye(2)[[0, 0, 1, 1]], np.array([3, 3, 7, 7])) == pytest.approx(0.0)

    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(4), size=50)
    labels = rng.integers(0, 3, size=50)
    total = 0.0
    for i in range(50):
        inner = 0.0
        for z in range(4):
            p_yz = sum(theta[j, z] for j in range(50) if labels[j] == labels[i])
            p_z = sum(theta[j, z] for j in range(50))
            inner += p_yz / p_z * theta[i, z]
        total += np.log(inner)
    assert leep_score(theta, labels) == pytest.approx(total / 50, rel=1e-12)
    with pytest.raises(ValueError):
        leep_score(np.array([[0.7, 0.7]]), np.array([0]))


def test_nce_hand_computed_and_brute_force():
    # P(y,z): (0,0)=.25 (1,0)=.25 (1,1)=.5; P(z)=.5,.5 -> -H(Y|Z) = .5 log .5
    assert nce_score(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5 * np.log(0.5))
    assert nce_score(np.array([4, 4, 9]), np.array([1, 1, 0])) == pytest.approx(0.0)

    rng = np.random.default_rng(1)
    z, y = rng.integers(0, 4, 80), rng.integers(0, 3, 80)
    expected = 0.0
    for a in range(3):
        for b in range(4):
            p_yz = np.mean((y == a) & (z == b))
            if p_yz > 0:
                expected += p_yz * np.log(p_yz / np.mean(z == b))
    assert nce_score(z, y) == pytest.approx(expected, rel=1e-12)


def _class_mean_rows(features, labels):
    means = {c: features[labels == c].mean(axis=0) for c in np.unique(labels)}
    return np.stack([means[c] for c in labels])


def test_h_score_matches_explicit_formula():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 200)
    features = rng.normal(size=(200, 6)) + labels[:, None] * np.array([1.0, 0, 0, 0.5, 0, 0])
    cov_f = np.cov(features, rowvar=False, bias=True)
    cov_g = np.cov(_class_mean_rows(features, labels), rowvar=False, bias=True)
    assert h_score(features, labels) == pytest.approx(np.trace(np.linalg.pinv(cov_f) @ cov_g), rel=1e-9)
    # Invariant to invertible linear maps of the features, and 0 for label-independent features.
    mixed = features @ rng.normal(size=(6, 6))
    assert h_score(mixed, labels) == pytest.approx(h_score(features, labels), rel=1e-6)
    with pytest.raises(ValueError):
        h_score(features, np.zeros(200, dtype=int))


def test_h_score_is_k_minus_one_when_rows_do_not_exceed_dimensions():
    # The small-target case the benchmark hits (256 rows, 384 dims): any features score K - 1, so
    # plain H-score cannot rank sources there, while the shrinkage version still separates them.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 10)
    informative = rng.normal(size=(40, 60)) + 3.0 * labels[:, None] * (np.arange(60) < 5)
    noise = rng.normal(size=(40, 60))
    assert h_score(informative, labels) == pytest.approx(3.0, rel=1e-6)
    assert h_score(noise, labels) == pytest.approx(3.0, rel=1e-6)
    assert regularized_h_score(informative, labels) > regularized_h_score(noise, labels)


def test_ledoit_wolf_and_regularized_h_score_against_independent_formulas():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 40)
    features = rng.normal(size=(40, 60)) @ rng.normal(size=(60, 60)) + labels[:, None]  # N < D
    sklearn_cov = pytest.importorskip("sklearn.covariance")
    shrunk, alpha = sklearn_cov.ledoit_wolf(features)  # what regularized_h_score uses
    # Independent: the Ledoit-Wolf (2004) formulas written with explicit per-row outer products.
    x = features - features.mean(axis=0)
    s = x.T @ x / 40
    mu = np.trace(s) / 60
    d2 = np.sum((s - mu * np.eye(60)) ** 2)
    b2 = min(d2, sum(np.sum((np.outer(r, r) - s) ** 2) for r in x) / 40**2)
    assert alpha == pytest.approx(b2 / d2, rel=1e-10)
    assert np.allclose(shrunk, (1 - b2 / d2) * s + b2 / d2 * mu * np.eye(60), rtol=1e-10, atol=1e-12)
    reference, reference_alpha = shrunk, alpha

    cov_g = np.cov(_class_mean_rows(features, labels), rowvar=False, bias=True)
    expected = (1 - reference_alpha) * np.trace(np.linalg.inv(reference) @ cov_g)
    assert regularized_h_score(features, labels) == pytest.approx(expected, rel=1e-6)
    # With N < D the plain H-score saturates at C - 1 (perfect in-sample separation); shrinkage does not.
    assert h_score(features, labels) == pytest.approx(3.0, rel=1e-6)
    assert 0 < regularized_h_score(features, labels) < 3.0


def test_frozen_transfer_separable_and_random():
    rng = np.random.default_rng(4)
    task = make_task("sep", n=150, classes=3)
    separable = np.hstack(
        [np.eye(3)[task.labels] * 4 + rng.normal(0, 0.3, (150, 3)), rng.normal(size=(150, 8))]
    )
    assert frozen_transfer_score(separable, task) >= 0.97
    assert frozen_transfer_score(rng.normal(size=(150, 8)), task) < 0.6
    reg = make_task("reg", n=150, regression=True)
    informative = np.hstack(
        [reg.labels[:, None] * 2 + rng.normal(0, 0.05, (150, 1)), rng.normal(size=(150, 5))]
    )
    assert frozen_transfer_score(informative, reg) >= 0.8
    folds = fold_ids(task, 5, seed=0)
    assert set(folds) == set(range(5)) and np.array_equal(folds, fold_ids(task, 5, seed=0))
    for cls in range(3):  # stratified: every fold gets its share of each class (+-1)
        counts = np.bincount(folds[task.labels == cls], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_textemb_and_datasize_parts(tmp_path):
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert np.allclose(task_embedding(features), [2 / 3, 2 / 3])
    assert cosine([1, 0], [1, 1]) == pytest.approx(1 / np.sqrt(2))
    assert np.isnan(cosine([0, 0], [1, 1]))
    entries = [
        PoolEntry(tmp_path, "esm", "big", {"num_examples": 900}),
        PoolEntry(tmp_path, "vocab", "big", {"num_examples": 900}),
        PoolEntry(tmp_path, "esm", "small", {"num_examples": 12}),
        PoolEntry(tmp_path, "esm", "unknown", {}),
    ]
    result = DataSize().score(Target(make_task(), encoder=None), entries)  # type: ignore[arg-type]
    assert result.scores == {"big": 900.0, "small": 12.0}
    assert "num_examples" in result.failed["unknown"]


# ------------------------------------------------------------------------------------------ tiny pool

SOURCE_SIZES = {"src_a": 150, "src_b": 120, "src_reg": 100}


def _tiny_config(model_dir) -> BuildConfig:
    return BuildConfig(
        model=str(model_dir),
        max_train_rows=48,
        max_fit_texts=200,  # every source fits whole: its TextEmb and vocabulary cover all its rows
        max_eval_rows=20,
        train=TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, max_length=32),
    )


def _sources():
    return [
        make_task("src_a", n=SOURCE_SIZES["src_a"], seed=1),
        make_task("src_b", n=SOURCE_SIZES["src_b"], classes=3, seed=2),
        make_task("src_reg", n=SOURCE_SIZES["src_reg"], seed=3, regression=True),
    ]


@pytest.fixture(scope="module")
def tiny_pool(tiny_model_dir, tmp_path_factory):
    """Three sources with source-model, TextEmb and vocabulary entries, built once; (pool, home)."""
    root = tmp_path_factory.mktemp("baseline-pool")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSCOUT_HOME", str(root / "home"))
        mp.setattr("taskscout.methods.registry", _registry)
        pool = Pool.create(root / "pool")
        methods = ["logme-full", "leep", "textemb", "vocab-overlap", "datasize"]
        results = build_pool(pool, _sources(), _tiny_config(tiny_model_dir), methods=methods, progress=False)
    assert [r.status for r in results] == ["built"] * 3, results
    return pool, root / "home"


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr("taskscout.methods.registry", _registry)


@pytest.fixture
def with_models(tiny_pool, registered, monkeypatch):
    """The home the pool was built in, so source-model entries find their fine-tuned models."""
    pool, home = tiny_pool
    monkeypatch.setenv("TASKSCOUT_HOME", str(home))
    return pool


TARGET = make_task("target", n=60, seed=9)


def _finetuned(pool: Pool, source: str) -> FineTuned:
    from taskscout import paths

    return FineTuned.from_pretrained(
        paths.subdir("models") / pool.get(SOURCE_MODEL_KIND, source).meta["source_model_dir"]
    )


def test_source_model_entry_is_a_pointer(with_models):
    pool = with_models
    kinds = {(e.kind, e.source) for e in pool.entries()}
    assert kinds == {(k, s) for k in (SOURCE_MODEL_KIND, "textemb", "vocab") for s in SOURCE_SIZES}
    entry = pool.get(SOURCE_MODEL_KIND, "src_b")
    assert sorted(p.name for p in entry.path.iterdir()) == ["config.json", "text_hashes.npy"]
    tuned = _finetuned(pool, "src_b")
    assert entry.meta["source_model_sha256"][:16] == tuned.info["fingerprint"]
    assert entry.meta["embedding_dim"] == 32 and entry.meta["source_model_outputs"] == 3
    assert entry.meta["num_examples"] == 120 and entry.meta["task_type"] == "classification"


def test_logme_full_equals_logme_of_finetuned_features(with_models):
    pool = with_models
    ranking = rank(TARGET, pool=pool, method="logme-full")
    assert set(ranking.scores()) == set(SOURCE_SIZES) and not ranking.failed
    for source, score in ranking.scores().items():
        features = _finetuned(pool, source).encoder().encode_task(TARGET)
        assert score == pytest.approx(logme(features, TARGET.labels), rel=1e-6)


def test_leep_nce_hscore_frozen_through_rank(with_models):
    import torch

    pool = with_models
    scores = {m: rank(TARGET, pool=pool, method=m) for m in ("leep", "nce", "hscore", "hscore-reg", "frozen")}
    for method in ("leep", "nce"):
        assert "classification source" in scores[method].failed["src_reg"]
        assert set(scores[method].scores()) == {"src_a", "src_b"}
    for method in ("hscore", "hscore-reg", "frozen"):
        assert set(scores[method].scores()) == set(SOURCE_SIZES), scores[method].failed
    for source in ("src_a", "src_b"):
        tuned = _finetuned(pool, source)
        encoder = tuned.encoder()
        with torch.inference_mode():  # the head through the model's own forward pass, not our logits
            logits = tuned.model(encoder.tokenize(TARGET.texts)).double().numpy()
        probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
        assert scores["leep"].scores()[source] == pytest.approx(leep_score(probs, TARGET.labels), rel=1e-5)
        assert scores["nce"].scores()[source] == pytest.approx(
            nce_score(tuned.predict(TARGET), TARGET.labels)
        )
        features = encoder.encode_task(TARGET)
        assert scores["hscore"].scores()[source] == pytest.approx(h_score(features, TARGET.labels), rel=1e-5)
        assert 0 <= scores["frozen"].scores()[source] <= 1


def test_regression_target(with_models):
    pool = with_models
    target = make_task("reg_target", n=60, seed=4, regression=True)
    for method in ("leep", "nce", "hscore", "hscore-reg"):
        ranking = rank(target, pool=pool, method=method)
        assert len(ranking) == 0 and set(ranking.failed) == set(SOURCE_SIZES)
        assert all("classification target" in reason for reason in ranking.failed.values())
    for method in ("logme-full", "frozen"):
        ranking = rank(target, pool=pool, method=method)
        assert set(ranking.scores()) == set(SOURCE_SIZES)
        assert all(np.isfinite(s.score) for s in ranking.sources)


def test_missing_or_changed_source_model_fails_cleanly(tiny_pool, registered, isolated_home):
    pool, home = tiny_pool
    ranking = rank(TARGET, pool=pool, method="logme-full")  # this test's empty home holds no models
    assert len(ranking) == 0 and set(ranking.failed) == set(SOURCE_SIZES)
    assert all("--method logme-full" in r and "\n" not in r for r in ranking.failed.values())
    # A model that is there but differs from the one the entry was built with.
    shutil.copytree(home / "models", isolated_home / "models", dirs_exist_ok=True)
    name = pool.get(SOURCE_MODEL_KIND, "src_a").meta["source_model_dir"]
    meta_file = isolated_home / "models" / name / "finetuned.json"
    meta = json.loads(meta_file.read_text())
    meta["encoder_sha256"] = "0" * 64
    meta_file.write_text(json.dumps(meta))
    weights = isolated_home / "models" / pool.get(SOURCE_MODEL_KIND, "src_b").meta["source_model_dir"]
    (weights / "encoder" / "model.safetensors").write_bytes(b"corrupt")
    ranking = rank(make_task("fresh_target", n=40, seed=11), pool=pool, method="nce")
    assert "checksum mismatch" in ranking.failed["src_a"] and "pool build" in ranking.failed["src_a"]
    assert "corrupt" in ranking.failed["src_b"] and "pool build" in ranking.failed["src_b"]
    assert "classification source" in ranking.failed["src_reg"]


def test_textemb_and_vocab_overlap_rank_the_source_of_the_target_first(with_models):
    pool = with_models
    copy = make_task("src_a", n=SOURCE_SIZES["src_a"], seed=1)
    copy.name = "my_copy"
    ranking = rank(copy, pool=pool, method="textemb", keep_duplicates=True)
    assert ranking.sources[0].source == "src_a", ranking.scores()
    assert ranking.sources[0].score == pytest.approx(1.0, abs=1e-6)
    assert all(s.score < 1.0 - 1e-6 for s in ranking.sources[1:])
    # src_reg draws from the same word lists as src_a, so its token set may tie; src_b adds sport words.
    overlap = rank(copy, pool=pool, method="vocab-overlap", keep_duplicates=True).scores()
    assert overlap["src_a"] == 1.0 and overlap["src_b"] < 1.0
    assert "src_a" in rank(copy, pool=pool, method="textemb").excluded  # duplicates still excluded by default
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pool.get("vocab", "src_b").meta["base_model_name"])
    src_b = _sources()[1]
    expected = jaccard(token_id_set(tok, src_b.texts), token_id_set(tok, TARGET.texts))
    assert rank(TARGET, pool=pool, method="vocab-overlap").scores()["src_b"] == pytest.approx(expected)


def test_datasize_through_rank(with_models):
    ranking = rank(TARGET, pool=with_models, method="datasize")
    assert [s.source for s in ranking.sources] == ["src_a", "src_b", "src_reg"]
    assert [s.score for s in ranking.sources] == [150.0, 120.0, 100.0]
