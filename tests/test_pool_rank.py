"""Pool building, storage and ranking end to end on a tiny random BERT (no download)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from taskscout.devices import resolve_device
from taskscout.errors import DataError, PoolError
from taskscout.methods.esm import EmbeddingSpaceMap
from taskscout.methods.logme import logme
from taskscout.pool.build import build_pool
from taskscout.pool.config import BuildConfig
from taskscout.pool.context import source_samples
from taskscout.pool.store import Pool
from taskscout.ranking import rank
from taskscout.train.config import TrainConfig
from taskscout.train.finetune import FineTuned
from tests.conftest import make_task


def _tiny_config(model_dir):
    return BuildConfig(
        model=str(model_dir),
        max_train_rows=48,
        max_fit_texts=80,
        max_eval_rows=20,
        train=TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, max_length=32),
    )


@pytest.fixture
def tiny_config(tiny_model_dir):
    return _tiny_config(tiny_model_dir)


@pytest.fixture(scope="module")
def pool_template(tiny_model_dir, tmp_path_factory):
    """Three sources built once per module; tests get a copy they may change."""
    root = tmp_path_factory.mktemp("pool-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSCOUT_HOME", str(root / "home"))
        pool = Pool.create(root / "pool")
        sources = [
            make_task("src_a", n=150, seed=1),
            make_task("src_b", n=150, classes=3, seed=2),
            make_task("src_reg", n=150, seed=3, regression=True),
        ]
        results = build_pool(pool, sources, _tiny_config(tiny_model_dir), progress=False)
    assert [r.status for r in results] == ["built"] * 3, results
    return pool.path


@pytest.fixture
def built_pool(pool_template, tmp_path):
    return Pool(shutil.copytree(pool_template, tmp_path / "pool"))


def test_build_is_resumable_and_records_metadata(built_pool, tiny_config):
    again = build_pool(built_pool, [make_task("src_a", n=150, seed=1)], tiny_config, progress=False)
    assert again[0].status == "skipped"
    entry = built_pool.get("esm", "src_b")
    assert entry.meta["num_classes"] == 3 and entry.meta["esm_embedding_dim"] == 32
    assert entry.meta["num_train_rows"] == 48 and entry.meta["esm_num_fit_texts"] == 80
    assert 0 < entry.meta["esm_r2_heldout"] <= 1
    assert entry.meta["lm_eval"]["main"] >= 0
    auto = str(resolve_device("auto"))  # the CPU on a machine without a GPU
    assert entry.meta["build_device"] == auto
    entry.verify()
    info = json.loads((built_pool.path / "pool.json").read_text())
    assert info["build"]["history"][0]["built"] == ["src_a", "src_b", "src_reg"]
    assert info["build"]["history"][0]["device"] == auto


def test_trained_only_builds_just_the_sources_with_a_cached_model(tmp_path, tiny_config, monkeypatch):
    from taskscout.pool.context import BuildContext

    monkeypatch.setenv("TASKSCOUT_HOME", str(tmp_path / "home"))
    trained, untrained = make_task("src_a", n=150, seed=1), make_task("src_b", n=150, seed=2)
    build_pool(Pool.create(tmp_path / "first"), [trained], tiny_config, progress=False)  # trains src_a
    pool = Pool.create(tmp_path / "p")
    results = build_pool(pool, [untrained, trained], tiny_config, trained_only=True, progress=False)
    assert {r.source: r.status for r in results} == {"src_a": "built", "src_b": "skipped"}
    assert "no fine-tuned model" in next(r.message for r in results if r.source == "src_b")
    assert pool.has("esm", "src_a") and not pool.has("esm", "src_b")
    assert not BuildContext(tiny_config).has_source_model(untrained)  # nothing was trained for it


def test_failed_source_does_not_stop_build(tmp_path, tiny_config):
    pool = Pool.create(tmp_path / "p")

    def load(name):
        raise DataError(f"cannot read {name}")

    results = build_pool(
        pool, ["broken", make_task("fine", n=100)], tiny_config, load_task=load, progress=False
    )
    assert [r.status for r in results] == ["failed", "built"]
    assert "cannot read broken" in results[0].message


def test_rank_scores_equal_logme_of_mapped_features(built_pool, tiny_model_dir):
    from taskscout.encode.encoder import Encoder

    target = make_task("target", n=60, seed=9)
    ranking = rank(target, pool=built_pool, device="cpu")
    assert [s.rank for s in ranking.sources] == [1, 2, 3]
    assert ranking.device == "cpu" and type(ranking).from_json(ranking.to_json()).device == "cpu"
    scores = ranking.scores()
    features = Encoder(str(tiny_model_dir), max_length=32).encode_task(target)
    for source, score in scores.items():
        esm = EmbeddingSpaceMap.from_pretrained(built_pool.get("esm", source).path)
        assert score == pytest.approx(logme(esm.transform(features), target.labels), rel=1e-6)
    frame = ranking.to_pandas()
    assert list(frame.columns) == ["rank", "source", "score", "language", "task_type", "num_examples"]
    assert len(rank(target, pool=built_pool, top=2)) == 2
    some = rank(target, pool=built_pool, sources=["src_b", "not_in_pool"]).scores()
    assert some == {"src_b": scores["src_b"]}
    with pytest.raises(PoolError, match="no esm entries for the sources not_in_pool"):
        rank(target, pool=built_pool, sources=["not_in_pool"])


def test_duplicates_excluded_and_kept_on_request(built_pool):
    duplicate = make_task("src_a", n=150, seed=1).select(np.arange(100))
    duplicate.name = "my_copy"
    ranking = rank(duplicate, pool=built_pool)
    assert "src_a" in ranking.excluded and "src_a" not in ranking.scores()
    assert "src_a" in rank(duplicate, pool=built_pool, keep_duplicates=True).scores()


def test_broken_entry_is_skipped_not_fatal(built_pool):
    (built_pool.get("esm", "src_b").path / "esm.safetensors").write_bytes(b"corrupt")
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert "src_b" in ranking.failed and "checksum" in ranking.failed["src_b"]
    assert set(ranking.scores()) == {"src_a", "src_reg"}


def test_incompatible_entry_is_skipped(built_pool):
    entry = built_pool.get("esm", "src_a")
    meta = json.loads((entry.path / "config.json").read_text())
    meta["base_model_name"] = "someone/other-model"
    (entry.path / "config.json").write_text(json.dumps(meta))
    built_pool.reindex()
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert "base model 'someone/other-model'" in ranking.failed["src_a"]
    assert set(ranking.scores()) == {"src_b", "src_reg"}


def test_bad_targets(built_pool, tmp_path):
    with pytest.raises(DataError, match="single class"):
        rank(make_task("one", n=60, classes=1), pool=built_pool)
    with pytest.raises(DataError, match="at least 10"):
        rank(make_task("tiny", n=5), pool=built_pool)
    empty = Pool.create(tmp_path / "empty")
    with pytest.raises(PoolError, match="no esm entries"):
        rank(make_task("t", n=60), pool=empty)
    with pytest.raises(PoolError, match="not a taskscout pool"):
        rank(make_task("t", n=60), pool=tmp_path)


def test_regression_target_ranks(built_pool):
    ranking = rank(make_task("reg_target", n=60, seed=4, regression=True), pool=built_pool)
    assert len(ranking) == 3 and all(np.isfinite(s.score) for s in ranking.sources)


def test_export_import_remove(built_pool, tmp_path):
    archive = built_pool.export(tmp_path / "pool.tar.gz", sources=["src_a"])
    other = Pool.create(tmp_path / "other")
    assert other.import_archive(archive) == ["esm/src_a"]
    other.get("esm", "src_a").verify()
    assert other.remove("src_a") == 1 and other.entries() == []
    with pytest.raises(PoolError, match="no entry"):
        other.remove("src_a")
    shutil.rmtree(built_pool.path / "index.json", ignore_errors=True)
    (built_pool.path / "index.json").write_text("{broken")
    with pytest.raises(PoolError, match="verify --repair"):
        built_pool.entries()
    assert built_pool.reindex() == 3  # the index is rebuilt from the verified entries
    assert len(built_pool.entries()) == 3


def test_source_samples_and_finetuned_roundtrip(tiny_config, tmp_path):
    task = make_task("s", n=300, classes=3)
    train, fit, held = source_samples(task, tiny_config)
    assert len(train) == 48 and len(fit) == 80 and held is not None and len(held) == 20
    assert set(train.texts) <= set(fit.texts) and not set(held.texts) & set(fit.texts)
    from taskscout.train.finetune import load_or_finetune

    model = load_or_finetune(train, tiny_config.model, tiny_config.train)
    again = load_or_finetune(train, tiny_config.model, tiny_config.train)  # from the cache
    assert np.array_equal(model.predict(held), again.predict(held))
    assert isinstance(again, FineTuned) and again.info["task"] == "s"


def test_duplicate_target_rows_are_dropped(built_pool):
    # 20 distinct rows repeated 3 times: fewer rows than dimensions after de-duplication, and without
    # it LogME's evidence would be unbounded.
    base = make_task("dups", n=20, seed=11)
    target = base.select(list(range(20)) * 3)
    ranking = rank(target, pool=built_pool)
    assert ranking.target_rows == 20 and ranking.duplicate_rows_dropped == 40
    assert all(np.isfinite(s.score) for s in ranking.sources)


def test_rows_the_encoder_cannot_tell_apart_are_dropped(built_pool):
    # Upper-case copies are other texts but the same tokens to an uncased tokenizer, so their features
    # equal the originals' whatever their labels; 5 copies with the same label and 5 with the other label,
    # on 20 rows < 32 dimensions: LogME's evidence would be unbounded if they were kept.
    base = make_task("cased", n=20, seed=12)
    copies = list(range(10))
    labels = np.concatenate([base.labels, base.labels[:5], 1 - base.labels[5:10]])
    target = dataclasses.replace(
        base, texts=base.texts + [base.texts[i].upper() for i in copies], labels=labels
    )
    ranking = rank(target, pool=built_pool)
    assert ranking.target_rows == 20 and ranking.duplicate_rows_dropped == 10
    assert all(np.isfinite(s.score) for s in ranking.sources)


def test_esm_variants_build_and_rank(tmp_path, tiny_config):
    pool = Pool.create(tmp_path / "variants")
    sources = [make_task("v_a", n=120, seed=1), make_task("v_b", n=120, classes=3, seed=2)]
    methods = ["esm-logme", "esm-sgd-logme", "esm-mlp-logme"]
    results = build_pool(pool, sources, tiny_config, methods=methods, progress=False)
    assert [r.status for r in results] == ["built", "built"]
    assert {e.kind for e in pool.entries()} == {"esm", "esm-sgd", "esm-mlp"}
    target = make_task("t", n=60, seed=9)
    for method in methods:
        ranking = rank(target, pool=pool, method=method)
        assert set(ranking.scores()) == {"v_a", "v_b"}, method
    assert pool.get("esm-sgd", "v_a").meta["esm_fit"] == "sgd"


def test_reciprocal_rank_fusion_by_hand():
    from taskscout.methods.fusion import reciprocal_rank_fusion

    fused = reciprocal_rank_fusion([{"a": 3.0, "b": 2.0, "c": 1.0}, {"c": 0.9, "a": 0.5}])
    # a: 1/61 + 1/62; b: 1/62; c: 1/63 + 1/61
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)


def test_fusion_method_ranks_pool(built_pool):
    from taskscout.errors import TaskscoutError
    from taskscout.methods import get_method

    ranking = rank(make_task("t", n=60, seed=9), pool=built_pool, method="fusion:esm-logme+esm-logme")
    single = rank(make_task("t", n=60, seed=9), pool=built_pool)
    assert [s.source for s in ranking.sources] == [s.source for s in single.sources]
    with pytest.raises(TaskscoutError, match="at least two"):
        get_method("fusion:esm-logme")


def test_reindex_keeps_checksums(built_pool):
    built_pool.reindex()
    entry = built_pool.get("esm", "src_a")
    assert "esm.safetensors" in entry.meta["files"]
    (entry.path / "esm.safetensors").write_bytes(b"tampered")
    with pytest.raises(PoolError, match="checksum"):
        entry.verify()


def test_build_from_a_data_file(tmp_path, tiny_config):
    frame = make_task("from_file", n=80, seed=4).to_pandas()
    frame.to_csv(tmp_path / "my_source.csv", index=False)
    pool = Pool.create(tmp_path / "p")
    results = build_pool(pool, [str(tmp_path / "my_source.csv")], tiny_config, progress=False)
    assert results[0].status == "built", results[0].message
    assert pool.entries()[0].source == "my_source"
    again = build_pool(pool, [str(tmp_path / "my_source.csv")], tiny_config, progress=False)
    assert again[0].status == "skipped" and again[0].source == "my_source"
    # Any file name makes a valid entry name; rebuilding it is a skip, not a second entry.
    (tmp_path / "my source (2).csv").write_bytes((tmp_path / "my_source.csv").read_bytes())
    for expected in ("built", "skipped"):
        results = build_pool(pool, [str(tmp_path / "my source (2).csv")], tiny_config, progress=False)
        assert results[0].status == expected, results[0].message
    assert pool.has("esm", "my_source_2_")


def test_unknown_model_is_one_clear_error(built_pool):
    with pytest.raises(PoolError, match="no entries for base model 'someone/other'"):
        rank(make_task("t", n=60, seed=9), pool=built_pool, model="someone/other")


# ------------------------------------------------------------------------------------ broken entries
def _rewrite(pool, kind, source, name, data: bytes | None = None, array=None, resign: bool = True):
    """Replace an entry file (bytes or an .npy array) and, with ``resign``, record its new checksum, so
    only the content check (not the checksum) can catch it."""
    import hashlib

    entry = pool.get(kind, source)
    target = entry.path / name
    if array is not None:
        np.save(target, array, allow_pickle=True)
    else:
        target.write_bytes(data)
    if resign:
        meta = json.loads((entry.path / "config.json").read_text())
        meta["files"][name] = hashlib.sha256(target.read_bytes()).hexdigest()
        (entry.path / "config.json").write_text(json.dumps(meta))
        report = pool.verify(repair=True)
        assert report.reindexed == [f"{kind}/{source}"], report


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        ("text_hashes.npy", {"data": b"\x93NUMPY\x01\x00v\x00{'descr'"}, "unreadable text_hashes.npy"),
        ("text_hashes.npy", {"array": np.array([{"a": 1}], dtype=object)}, "unreadable text_hashes.npy"),
        ("text_hashes.npy", {"array": np.array([1.5, 2.5])}, "dtype float64"),
        ("esm.safetensors", {"data": b"corrupt", "resign": False}, "checksum mismatch"),
    ],
    ids=["truncated-hashes", "pickled-hashes", "float-hashes", "tampered-weights"],
)
def test_damaged_entry_is_skipped_with_its_name(built_pool, name, damage, expected):
    _rewrite(built_pool, "esm", "src_b", name, **damage)
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert expected in ranking.failed["src_b"]
    assert set(ranking.scores()) == {"src_a", "src_reg"}


def test_weight_shape_differing_from_metadata_is_skipped(built_pool, tmp_path):
    from safetensors.numpy import save_file

    weights = tmp_path / "w.safetensors"
    save_file({"weight": np.zeros((16, 32), np.float16), "bias": np.zeros(16, np.float16)}, str(weights))
    _rewrite(built_pool, "esm", "src_b", "esm.safetensors", weights.read_bytes())
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert "do not fit a 32 -> 32 map" in ranking.failed["src_b"]
    assert set(ranking.scores()) == {"src_a", "src_reg"}


def test_missing_text_hashes_warn_that_exclusion_is_off(built_pool):
    entry = built_pool.get("esm", "src_a")
    (entry.path / "text_hashes.npy").unlink()
    meta = json.loads((entry.path / "config.json").read_text())
    del meta["files"]["text_hashes.npy"]
    (entry.path / "config.json").write_text(json.dumps(meta))
    built_pool.reindex()
    duplicate = make_task("src_a", n=150, seed=1).select(np.arange(100))
    duplicate.name = "my_copy"
    ranking = rank(duplicate, pool=built_pool)
    assert "src_a" in ranking.scores()  # cannot be detected any more ...
    assert any("esm/src_a stores no text hashes: duplicate exclusion is off" in w for w in ranking.warnings)


def test_deleted_listed_file_and_bad_index_rows_are_named(built_pool):
    (built_pool.get("esm", "src_b").path / "text_hashes.npy").unlink()
    index = json.loads((built_pool.path / "index.json").read_text())
    index["entries"].append({"kind": "esm", "meta": {}})  # no source
    (built_pool.path / "index.json").write_text(json.dumps(index))
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert "text_hashes.npy is missing" in ranking.failed["src_b"]
    assert "source" in ranking.failed["index row 4"]
    assert set(ranking.scores()) == {"src_a", "src_reg"}


def test_encoder_fingerprint_is_checked(built_pool):
    index = json.loads((built_pool.path / "index.json").read_text())
    real = index["entries"][0]["meta"]["base_model_fingerprint"]
    for row in index["entries"]:
        row["meta"]["base_model_fingerprint"] = "feedfacefeedface"
    (built_pool.path / "index.json").write_text(json.dumps(index))
    # Every entry was built with other weights than the encoder that loads: the pool is refused ...
    with pytest.raises(PoolError, match="shadowing the model"):
        rank(make_task("target", n=60, seed=9), pool=built_pool)
    # ... and one entry built with other weights is skipped by name while the others rank.
    for row in index["entries"][1:]:
        row["meta"]["base_model_fingerprint"] = real
    (built_pool.path / "index.json").write_text(json.dumps(index))
    ranking = rank(make_task("target", n=60, seed=9), pool=built_pool)
    assert "other weights" in ranking.failed[index["entries"][0]["source"]]
    assert len(ranking) == 2


def test_entries_with_other_pooling_are_scored_on_their_own_embeddings(built_pool, tiny_model_dir):
    """A pool mixing mean-pooled entries with cls-pooled ones (say, imported from hfselect) of the same
    base model: each group is scored against the target embedded its way, the target once per group."""
    from taskscout.encode.encoder import Encoder

    original = built_pool.get("esm", "src_b")
    meta = {k: v for k, v in original.meta.items() if k != "files"}
    meta.update(base_model_pooling="cls", base_model_max_length=16, task_id="src_cls")
    built_pool.add_entry("esm", "src_cls", {"esm.safetensors": original.path / "esm.safetensors"}, meta)

    target = make_task("target", n=60, seed=9)
    scores = rank(target, pool=built_pool, progress=False).scores()
    assert set(scores) == {"src_a", "src_b", "src_reg", "src_cls"}
    mean = Encoder(str(tiny_model_dir), pooling="mean", max_length=32).encode_task(target)
    cls = Encoder(str(tiny_model_dir), pooling="cls", max_length=16).encode_task(target)
    esm = EmbeddingSpaceMap.from_pretrained(original.path)
    assert scores["src_b"] == pytest.approx(logme(esm.transform(mean), target.labels), rel=1e-6)
    assert scores["src_cls"] == pytest.approx(logme(esm.transform(cls), target.labels), rel=1e-6)
    assert abs(scores["src_cls"] - scores["src_b"]) > 1e-4  # the same map, other embeddings
