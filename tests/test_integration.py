"""End to end with the real default encoder, the shipped pool and a real catalog task (fetched)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_rank_real_target_with_shipped_pool():
    from taskscout.data import catalog
    from taskscout.pool.store import open_pool
    from taskscout.ranking import rank

    catalog.fetch(["pyjokes_language"], progress=False)
    task = catalog.load("pyjokes_language").subsample(200, seed=0)
    pool = open_pool()
    entries = pool.entries("esm")
    assert entries, "the package ships a pool"
    ranking = rank(task, pool=pool)
    assert len(ranking) + len(ranking.excluded) + len(ranking.failed) == len(entries)
    assert not ranking.failed
    scores = [s.score for s in ranking.sources]
    assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))
    assert ranking.timings["embed_target"] > 0
    if any(e.source == "pyjokes_language" for e in entries):
        assert "pyjokes_language" in ranking.excluded


def test_shipped_pool_entries_are_intact_and_documented():
    from taskscout.pool.store import open_pool

    pool = open_pool()
    for entry in pool.entries():
        entry.verify()
        assert entry.meta["base_model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert entry.meta["licence"] and entry.meta["provenance"]["package"]
    assert pool.info["build"]["config"]["max_train_rows"] > 0
