import json

import numpy as np
import pytest

from taskscout.errors import PoolError, TaskscoutError
from taskscout.methods.esm import EmbeddingSpaceMap, ESMConfig, fit_ridge, r2_score


def _pairs(n=400, d=16, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d)
    weight = rng.normal(size=(d, d))
    bias = rng.normal(size=d)
    return base, base @ weight.T + bias + noise * rng.normal(size=(n, d)), weight, bias


def test_ridge_recovers_exact_linear_map():
    base, tuned, weight, bias = _pairs()
    w, b, lam = fit_ridge(base, tuned, ridge=0.0)
    assert np.allclose(w, weight, atol=1e-8) and np.allclose(b, bias, atol=1e-8)
    assert lam == 0.0


def test_ridge_matches_lstsq_with_intercept():
    base, tuned, _, _ = _pairs(noise=0.5, seed=2)
    w, b, _ = fit_ridge(base, tuned, ridge=0.0)
    design = np.hstack([base, np.ones((len(base), 1))])
    solution = np.linalg.lstsq(design, tuned, rcond=None)[0]
    assert np.allclose(w, solution[:-1].T, atol=1e-8) and np.allclose(b, solution[-1], atol=1e-8)


def test_ridge_handles_fewer_rows_than_dimensions():
    base, tuned, _, _ = _pairs(n=8, d=32)
    w, b, lam = fit_ridge(base, tuned)
    assert np.all(np.isfinite(w)) and lam > 0
    assert r2_score(base @ w.T + b, tuned) > 0.99  # interpolates the training rows


def test_fit_reports_heldout_r2_and_sgd_agrees():
    base, tuned, _, _ = _pairs(n=600, d=8, noise=0.1, seed=3)
    ridge = EmbeddingSpaceMap.fit(base, tuned)
    assert ridge.config.esm_r2_heldout > 0.99 and ridge.config.esm_fit == "ridge"
    sgd = EmbeddingSpaceMap.fit(base / 3, tuned / 3, method="sgd", epochs=30, learning_rate=1e-2)
    assert sgd.config.esm_r2_heldout > 0.9 and sgd.config.esm_num_epochs == 30
    with pytest.raises(TaskscoutError, match="unknown ESM fit"):
        EmbeddingSpaceMap.fit(base, tuned, method="adam")


def test_save_load_roundtrip_and_corruption(tmp_path):
    base, tuned, _, _ = _pairs(d=8)
    esm = EmbeddingSpaceMap.fit(base, tuned, config=ESMConfig(task_id="toy", base_model_name="m"))
    esm.save_pretrained(tmp_path / "e", dtype="float32")
    again = EmbeddingSpaceMap.from_pretrained(tmp_path / "e")
    assert np.array_equal(again.weight, esm.weight) and again.config.task_id == "toy"
    meta = json.loads((tmp_path / "e" / "config.json").read_text())
    assert meta["esm_embedding_dim"] == 8 and meta["base_model_name"] == "m"
    half = EmbeddingSpaceMap.from_pretrained(esm.save_pretrained(tmp_path / "h"))
    assert half.weight.dtype == np.float16
    (tmp_path / "e" / "esm.safetensors").write_bytes(b"garbage")
    with pytest.raises(PoolError, match="checksum mismatch"):
        EmbeddingSpaceMap.from_pretrained(tmp_path / "e")
    (tmp_path / "h" / "config.json").write_text("{not json")
    with pytest.raises(PoolError, match=r"cannot read config\.json"):
        EmbeddingSpaceMap.from_pretrained(tmp_path / "h")


def test_residual_mlp_map_improves_on_nonlinear_relation(tmp_path):
    from taskscout.methods.esm import ResidualMLPMap

    rng = np.random.default_rng(0)
    base = rng.normal(size=(800, 6))
    tuned = base @ rng.normal(size=(6, 6)) + np.maximum(base, 0) ** 2
    linear = EmbeddingSpaceMap.fit(base, tuned)
    mlp = ResidualMLPMap.fit(base, tuned, hidden=64, epochs=60, learning_rate=3e-3)
    fit_linear = r2_score(linear.transform(base), tuned)
    fit_mlp = r2_score(mlp.transform(base), tuned)
    assert fit_mlp > fit_linear + 0.02
    mlp.save_pretrained(tmp_path / "m", dtype="float32")
    again = ResidualMLPMap.from_pretrained(tmp_path / "m")
    assert np.allclose(again.transform(base[:5]), mlp.transform(base[:5]), atol=1e-5)
    assert again.config.esm_architecture == "residual-mlp"


def test_fp16_storage_moves_scores_less_than_1e3(tmp_path):
    """The shipped pool stores fp16 maps; LogME scores must move by < 1e-3 against fp32."""
    from taskscout.methods.logme import esm_logme

    rng = np.random.default_rng(5)
    features = rng.normal(size=(300, 64)) / 8  # sentence-embedding-like magnitudes
    labels = rng.integers(0, 3, size=300)
    maps = [
        EmbeddingSpaceMap.fit(
            features,
            features @ (np.eye(64) + 0.3 * rng.normal(size=(64, 64)) / 8) + 0.05 * rng.normal(size=(300, 64)),
        )
        for _ in range(3)
    ]
    full = [
        EmbeddingSpaceMap.from_pretrained(m.save_pretrained(tmp_path / f"f{i}", dtype="float32"))
        for i, m in enumerate(maps)
    ]
    half = [
        EmbeddingSpaceMap.from_pretrained(m.save_pretrained(tmp_path / f"h{i}")) for i, m in enumerate(maps)
    ]

    def score(ms):
        return esm_logme(
            features,
            labels,
            np.stack([m.weight for m in ms]),
            np.stack([m.bias for m in ms]),
        )

    assert np.max(np.abs(score(full) - score(half))) < 1e-3
