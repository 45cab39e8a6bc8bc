"""hfselect interop: reading ESMs hfselect 0.2.1 wrote (fixtures), bad input, export it would load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from taskscout.errors import PoolError
from taskscout.pool.hfselect import export_hfselect, hfselect_pooling, read_hfselect_dir
from taskscout.pool.sources import add_hfselect
from taskscout.pool.store import Pool
from tests.test_cli import run

FIXTURES = Path(__file__).parent / "fixtures" / "hfselect"
ESMS = ["imdb-random", "legacy-v010", "sst2-fitted", "stsb-pair-random"]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# ESMConfig.to_dict() fields of hfselect 0.2.1 (fixtures' README): an export must carry all of them.
HFSELECT_FIELDS = [
    "base_model_name",
    "task_id",
    "task_subset",
    "text_column",
    "label_column",
    "task_split",
    "num_examples",
    "seed",
    "language",
    "esm_architecture",
    "esm_embedding_dim",
    "lm_num_epochs",
    "lm_batch_size",
    "lm_learning_rate",
    "lm_weight_decay",
    "lm_optimizer",
    "esm_num_epochs",
    "esm_batch_size",
    "esm_learning_rate",
    "esm_weight_decay",
    "esm_optimizer",
    "developers",
    "version",
]


def hfselect_load(directory: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """What hfselect 0.2.1's ``ESM.from_pretrained`` reads, by the format facts: the config, then the
    tensors under the names its version implies (strictly here: hfselect would silently use random ones)."""
    config = json.loads((directory / "config.json").read_text())
    prefix = "sequential.0." if config["version"] == "0.1.0" else "model."
    with safe_open(str(directory / "model.safetensors"), framework="np") as handle:
        assert sorted(handle.keys()) == [f"{prefix}bias", f"{prefix}weight"]
        assert (handle.metadata() or {}).get("format", "pt") == "pt"  # transformers' loader wants "pt"
        weight, bias = handle.get_tensor(f"{prefix}weight"), handle.get_tensor(f"{prefix}bias")
    dim = config["esm_embedding_dim"]
    assert weight.dtype == np.float32 and bias.dtype == np.float32
    assert weight.shape == (dim, dim) and bias.shape == (dim,)
    return config, weight, bias


def fixture_map(name: str) -> tuple[np.ndarray, np.ndarray]:
    tensors = load_file(str(FIXTURES / name / "model.safetensors"))
    prefix = "sequential.0." if name == "legacy-v010" else "model."
    return tensors[f"{prefix}weight"], tensors[f"{prefix}bias"]


def copy_esm(tmp_path: Path, name: str = "imdb-random", as_name: str | None = None) -> Path:
    out = tmp_path / (as_name or name)
    shutil.copytree(FIXTURES / name, out)
    for file in out.iterdir():
        file.chmod(0o644)
    return out


# ---------------------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("name", ESMS)
def test_reads_every_fixture_with_its_weights(name):
    esm = read_hfselect_dir(FIXTURES / name)
    weight, bias = fixture_map(name)
    np.testing.assert_array_equal(esm.weight, weight)
    np.testing.assert_array_equal(esm.bias, bias)
    assert esm.name == name
    config = json.loads((FIXTURES / name / "config.json").read_text())
    meta = esm.meta
    assert meta["num_examples"] == config["num_examples"]  # rows the ESM was trained on
    assert meta["hfselect_version"] == config["version"] and meta["version"] == ""
    assert meta["task_type"] == ""  # hfselect records none
    assert meta["base_model_pooling"] == "mean" and meta["base_model_max_length"] == 128
    assert meta["base_model_dim"] == 384 and meta["base_model_fingerprint"] == ""
    assert meta["task_id"] == config["task_id"] and meta["seed"] == config["seed"]
    assert meta["hfselect_tensor_layout"] == ("legacy" if name == "legacy-v010" else "current")


def test_metadata_mapping_details():
    pair = read_hfselect_dir(FIXTURES / "stsb-pair-random").meta
    assert pair["text_columns"] == ["sentence1", "sentence2"] and pair["text_join"] == " [SEP] "
    assert pair["label_column"] == "score" and pair["language"] == "en"
    fitted = read_hfselect_dir(FIXTURES / "sst2-fitted", task_type="classification").meta
    assert fitted["task_type"] == "classification"
    assert fitted["esm_num_epochs"] == 3 and fitted["esm_learning_rate"] == 0.01
    assert fitted["task_subset"] == "sst2" and fitted["language"] == ""  # null in hfselect's config
    assert read_hfselect_dir(FIXTURES / "legacy-v010").meta["hfselect_version"] == "0.1.0"


def test_pooling_rule():
    assert hfselect_pooling(MODEL) == "mean"
    assert hfselect_pooling("bert-base-multilingual-uncased") == "pooler"
    assert hfselect_pooling("distilbert-base-uncased") == "cls"
    assert hfselect_pooling("FacebookAI/roberta-base") == "cls"


# ---------------------------------------------------------------------------------------------- bad input
def _rewrite_tensors(directory: Path, tensors: dict[str, np.ndarray]) -> None:
    save_file(tensors, str(directory / "model.safetensors"))


def _bad_inputs(tmp_path: Path):
    weight, bias = fixture_map("imdb-random")
    renamed = copy_esm(tmp_path, as_name="renamed")
    _rewrite_tensors(renamed, {"linear.weight": weight, "linear.bias": bias})
    extra = copy_esm(tmp_path, as_name="extra")
    _rewrite_tensors(extra, {"model.weight": weight, "model.bias": bias, "model.scale": bias})
    pickled = copy_esm(tmp_path, as_name="pickled")
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not to be unpickled")
    shape = copy_esm(tmp_path, as_name="shape")
    _rewrite_tensors(shape, {"model.weight": weight[:, :32], "model.bias": bias})
    nan = copy_esm(tmp_path, as_name="nan")
    _rewrite_tensors(nan, {"model.weight": np.full_like(weight, np.nan), "model.bias": bias})
    truncated = copy_esm(tmp_path, as_name="truncated")
    (truncated / "model.safetensors").write_bytes((truncated / "model.safetensors").read_bytes()[:1000])
    not_esm = tmp_path / "not-esm"
    not_esm.mkdir()
    (not_esm / "config.json").write_text('{"model_type": "bert", "hidden_size": 384}')
    mlp = copy_esm(tmp_path, as_name="mlp")
    config = json.loads((mlp / "config.json").read_text())
    (mlp / "config.json").write_text(json.dumps({**config, "esm_architecture": "mlp"}))
    return {
        renamed: "expected exactly model.weight/bias",
        extra: "model.scale",
        pickled: "pytorch_model.bin, a pickle",
        shape: "has shape [384, 32], expected [384, 384]",
        nan: "NaN",
        truncated: "unreadable model.safetensors",
        not_esm: "not an hfselect ESM",
        mlp: "'mlp' is not supported",
        tmp_path / "missing": "not a directory",
    }


def test_bad_inputs_give_one_line_naming_the_directory_and_add_nothing(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    good = copy_esm(tmp_path, "sst2-fitted")
    for directory, expected in _bad_inputs(tmp_path).items():
        with pytest.raises(PoolError) as info:
            add_hfselect(pool, [str(good), str(directory)])  # the good one is not added either
        message = str(info.value)
        assert expected in message and str(directory) in message and "\n" not in message, message
        assert pool.entries() == []


def test_dimension_that_does_not_match_the_pool(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    add_hfselect(pool, [str(FIXTURES / "imdb-random")])
    small = copy_esm(tmp_path, as_name="small")
    config = json.loads((small / "config.json").read_text())
    (small / "config.json").write_text(json.dumps({**config, "esm_embedding_dim": 32}))
    rng = np.random.default_rng(0)
    _rewrite_tensors(
        small,
        {
            "model.weight": rng.normal(size=(32, 32)).astype(np.float32),
            "model.bias": np.zeros(32, np.float32),
        },
    )
    with pytest.raises(PoolError, match=r"small: a 32-dimensional map, but pool .* holds 384-dimensional"):
        add_hfselect(pool, [str(small)])
    assert [e.source for e in pool.entries()] == ["imdb-random"]


def test_existing_names_need_overwrite_and_names_are_sanitised(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    add_hfselect(pool, [str(FIXTURES / "imdb-random")])
    with pytest.raises(PoolError, match="already has an esm entry 'imdb-random'"):
        add_hfselect(pool, [str(FIXTURES / "imdb-random")])
    add_hfselect(pool, [str(FIXTURES / "imdb-random")], overwrite=True)
    add_hfselect(pool, [str(FIXTURES / "imdb-random")], name="imdb copy (2)")
    assert sorted(e.source for e in pool.entries()) == ["imdb-random", "imdb_copy_2_"]
    with pytest.raises(PoolError, match="task type"):
        add_hfselect(pool, [str(FIXTURES / "sst2-fitted")], task_type="ranking")


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_add_and_bad_input(tmp_path, monkeypatch, capsys):
    pool = tmp_path / "pool"
    code, out, err = run(
        monkeypatch, capsys, "pool", "add", *(str(FIXTURES / n) for n in ESMS), "--pool", str(pool)
    )
    assert code == 0, err
    assert "added 4 entries" in out and "duplicate exclusion is off" in err
    entries = Pool(pool).entries("esm")
    assert [e.source for e in entries] == sorted(ESMS)
    for entry in entries:
        entry.verify()
        assert set(entry.meta["files"]) == {"esm.safetensors"}  # no text hashes: hfselect has none
    pickled = copy_esm(tmp_path, as_name="pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    code, out, err = run(monkeypatch, capsys, "pool", "add", str(pickled), "--pool", str(pool))
    assert code != 0 and "pickle" in err and str(pickled) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- export
def test_export_loads_in_hfselect_with_the_right_weights(tmp_path, monkeypatch, capsys):
    pool = Pool.create(tmp_path / "pool")
    add_hfselect(pool, [str(FIXTURES / n) for n in ESMS])
    # A taskscout-built entry: fp16 tensors named weight/bias, a text pair task.
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(384, 384)).astype(np.float16)
    bias = rng.normal(size=384).astype(np.float16)
    save_file({"weight": weight, "bias": bias}, str(tmp_path / "w.safetensors"))
    pool.add_entry(
        "esm",
        "own-pair",
        {"esm.safetensors": tmp_path / "w.safetensors"},
        {
            "base_model_name": MODEL,
            "base_model_dim": 384,
            "esm_embedding_dim": 384,
            "task_id": "own pair",
            "task_type": "regression",
            "text_column": "text",
            "text_pair_column": "text_pair",
            "num_examples": 77,
            "esm_fit": "ridge",
            "base_model_pooling": "cls",
        },
    )
    out = tmp_path / "exported"
    code, stdout, err = run(
        monkeypatch, capsys, "pool", "export", str(out), "--format", "hfselect", "--pool", str(pool.path)
    )
    assert code == 0, err
    assert "wrote 5 hfselect ESMs" in stdout
    assert "esm/own-pair: built with cls pooling, but hfselect pools" in err  # its scores would differ
    for name in ESMS:
        config, got_weight, got_bias = hfselect_load(out / name)
        want_weight, want_bias = fixture_map(name)
        np.testing.assert_array_equal(got_weight, want_weight)
        np.testing.assert_array_equal(got_bias, want_bias)
        original = json.loads((FIXTURES / name / "config.json").read_text())
        assert set(HFSELECT_FIELDS) <= set(config)
        for field in HFSELECT_FIELDS:
            if field not in ("version", "developers", "language"):
                assert config[field] == original[field], (name, field)
        assert config["version"] == "0.2.1"  # the layout written, also for the legacy input
    config, got_weight, got_bias = hfselect_load(out / "own-pair")
    np.testing.assert_array_equal(got_weight, weight.astype(np.float32))
    np.testing.assert_array_equal(got_bias, bias.astype(np.float32))
    assert config["text_column"] == ["text", "text_pair"] and config["num_examples"] == 77
    assert config["taskscout"]["task_type"] == "regression"
    # And back: an exported directory reads as the same map.
    again = read_hfselect_dir(out / "sst2-fitted")
    np.testing.assert_array_equal(again.weight, fixture_map("sst2-fitted")[0])


def test_export_refuses_non_linear_maps_and_unknown_sources(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    add_hfselect(pool, [str(FIXTURES / "imdb-random")])
    with pytest.raises(PoolError, match="no esm entry for 'nope'"):
        export_hfselect(pool, tmp_path / "out", ["nope"])
    rng = np.random.default_rng(0)
    tensors = {
        k: rng.normal(size=s).astype(np.float32)
        for k, s in [("weight", (8, 8)), ("bias", (8,)), ("hidden_weight", (4, 8))]
    }
    save_file(tensors, str(tmp_path / "m.safetensors"))
    pool.add_entry(
        "esm-mlp", "mlp", {"esm.safetensors": tmp_path / "m.safetensors"}, {"base_model_name": MODEL}
    )
    with pytest.raises(PoolError, match="not a linear map"):
        export_hfselect(pool, tmp_path / "out", kind="esm-mlp")
    # Exporting again replaces the earlier export; a directory of something else is never replaced.
    export_hfselect(pool, tmp_path / "out")
    export_hfselect(pool, tmp_path / "out")
    mine = tmp_path / "mine" / "imdb-random"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(PoolError, match="exists and is not an hfselect ESM directory"):
        export_hfselect(pool, tmp_path / "mine")
    assert (mine / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------------------------------------- scores
@pytest.mark.integration
def test_pool_add_then_rank_reproduces_hfselect_scores(tmp_path, monkeypatch, capsys):
    """hfselect's compute_task_ranking scores (expected.json) through `pool add` + `rank`, within 1e-5."""
    pool = tmp_path / "pool"
    code, _, err = run(
        monkeypatch, capsys, "pool", "add", *(str(FIXTURES / n) for n in ESMS), "--pool", str(pool)
    )
    assert code == 0, err
    out = tmp_path / "ranking.json"
    code, _, err = run(
        monkeypatch, capsys, "rank", str(FIXTURES / "target.csv"), "--pool", str(pool), "--json", str(out)
    )
    assert code == 0, err
    ranking = json.loads(out.read_text())
    expected = json.loads((FIXTURES / "expected.json").read_text())["scores"]
    got = {row["source"]: row["score"] for row in ranking["ranking"]}
    assert set(got) == set(expected)
    for name, score in expected.items():
        assert abs(got[name] - score) < 1e-5, (name, got[name], score)
    assert [row["source"] for row in ranking["ranking"]] == sorted(expected, key=lambda n: -expected[n])
    assert ranking["target_rows"] == 500
    assert any("4 sources imported from hfselect store no text hashes" in w for w in ranking["warnings"])


def test_pair_targets_are_embedded_as_hfselect_joins_them(tmp_path, tiny_model_dir):
    """hfselect embeds a pair as one text joined with " [SEP] "; its ESMs are scored on that embedding."""
    from taskscout.encode.encoder import Encoder
    from taskscout.methods.logme import logme
    from taskscout.ranking import rank
    from tests.conftest import make_task

    directory = copy_esm(tmp_path, as_name="tiny-esm")
    config = json.loads((directory / "config.json").read_text())
    model = str(tiny_model_dir)
    (directory / "config.json").write_text(
        json.dumps({**config, "base_model_name": model, "esm_embedding_dim": 32})
    )
    rng = np.random.default_rng(0)
    weight = (np.eye(32) + rng.normal(scale=0.3, size=(32, 32))).astype(np.float32)
    bias = rng.normal(size=32).astype(np.float32)
    _rewrite_tensors(directory, {"model.weight": weight, "model.bias": bias})
    pool = Pool.create(tmp_path / "pool")
    add_hfselect(pool, [str(directory)])
    task = make_task("pairs", n=80, pair=True).deduplicate()
    score = rank(task, pool=pool, progress=False).scores()["tiny-esm"]

    encoder = Encoder(model, pooling="pooler", max_length=128)  # hfselect pools other BERTs' pooler output
    joined = encoder.encode([f"{a} [SEP] {b}" for a, b in zip(task.texts, task.text_pairs, strict=True)])
    expected = logme(joined.astype(np.float64) @ weight.T + bias, task.labels)
    assert score == pytest.approx(expected, rel=1e-6, abs=1e-9)
    paired = encoder.encode(task.texts, task.text_pairs)  # taskscout's own pair encoding differs
    assert abs(logme(paired.astype(np.float64) @ weight.T + bias, task.labels) - expected) > 1e-4
