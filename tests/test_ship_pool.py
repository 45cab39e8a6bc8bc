"""benchmarks/ship_pool.py: the built-in pool is made from a built pool with only the shipped kinds."""

import importlib.util
import sys
from pathlib import Path

import pytest

from taskscout.errors import TaskscoutError
from taskscout.pool.store import Pool, default_pool_path

ROOT = Path(__file__).resolve().parent.parent


def _ship_module():
    spec = importlib.util.spec_from_file_location("ship_pool", ROOT / "benchmarks" / "ship_pool.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ship_pool"] = module
    spec.loader.exec_module(module)
    return module


def test_ship_keeps_only_the_chosen_kinds_verified_and_replaces_the_old_pool(tmp_path):
    ship = _ship_module().ship
    source = Pool(default_pool_path())
    before = {(e.kind, e.source) for e in source.entries()}
    to = tmp_path / "default"
    to.mkdir()
    (to / "stale.txt").write_text("the old pool")
    shipped = ship(source.path, to, ("esm", "vocab"))
    kept = {(e.kind, e.source) for e in shipped.entries()}
    assert kept == {(k, s) for k, s in before if k in ("esm", "vocab")} and kept
    assert sorted(p.name for p in (to / "entries").iterdir()) == ["esm", "vocab"]
    assert shipped.verify().clean and not (to / "stale.txt").exists()
    n_sources = len({s for k, s in kept})
    assert shipped.info["description"].startswith(
        f"taskscout built-in pool: esm, vocab entries of {n_sources} catalog"
    )
    assert shipped.info["build"] == source.info["build"]  # how the entries were built travels with them
    assert {(e.kind, e.source) for e in Pool(default_pool_path()).entries()} == before  # source untouched
    assert not list(tmp_path.glob("default.*"))  # no staging or old copy left behind
    with pytest.raises(TaskscoutError, match="no entries of kind tupate-lora"):
        ship(source.path, tmp_path / "other", ("esm", "tupate-lora"))
