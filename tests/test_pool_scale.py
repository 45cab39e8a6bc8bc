"""Large pools: bulk adds and the listing fast path (the scale itself: benchmarks/bench_pool_scale.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from taskscout.errors import PoolError
from taskscout.pool.store import Pool


def _items(tmp_path: Path, count: int, start: int = 0):
    items = []
    for i in range(start, start + count):
        file = tmp_path / f"w{i}.safetensors"
        save_file({"weight": np.eye(4, dtype=np.float32) * i, "bias": np.zeros(4, np.float32)}, str(file))
        meta = {"base_model_name": "m", "base_model_dim": 4, "language": "en", "lm_eval": {"main": 0.5}}
        items.append(("esm", f"s{i:03d}", {"esm.safetensors": file}, meta))
    return items


def test_add_entries_publishes_all_at_once(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    added = pool.add_entries(_items(tmp_path, 30))
    assert [e.source for e in added] == [f"s{i:03d}" for i in range(30)]
    assert len(pool.entries()) == 30 and pool.verify().clean
    # One bad item (a missing file) adds nothing, not even the good ones before it.
    bad = _items(tmp_path, 3, start=30)
    bad[2] = ("esm", "s032", {"esm.safetensors": tmp_path / "missing"}, bad[2][3])
    with pytest.raises(PoolError, match="cannot read entry file"):
        pool.add_entries(bad)
    with pytest.raises(PoolError, match="added twice"):
        pool.add_entries(_items(tmp_path, 1) + _items(tmp_path, 1))
    assert len(pool.entries()) == 30 and not list((pool.path / ".staging").glob("add-*"))


def test_listed_metadata_is_the_validated_config_and_not_shared(tmp_path):
    pool = Pool.create(tmp_path / "pool")
    pool.add_entries(_items(tmp_path, 2))
    rows, _ = pool._rows()
    first = pool.entries()[0]
    assert first.meta == rows[0].meta.to_json_dict()  # defaults filled, extras kept
    first.meta["lm_eval"]["main"] = 99.0  # a caller changing an entry's metadata ...
    first.meta["files"].clear()
    again = pool.entries()[0]
    assert again.meta["lm_eval"] == {"main": 0.5} and again.meta["files"]  # ... never changes the index
