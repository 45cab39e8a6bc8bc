"""The Ray engine: the same runs as the local engine, written by the driver, on a local Ray runtime."""

from __future__ import annotations

import dataclasses
import sys

import pandas as pd
import pytest

from taskscout.cluster import RayOptions, ray_session
from taskscout.errors import TaskscoutError
from taskscout.evaluate.transfer import BASELINE, ResultStore, run_transfer, run_transfer_ray
from tests.conftest import make_task
from tests.test_transfer import protocol  # noqa: F401  (fixture)

OPTIONS = RayOptions(local_cpus=2)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray runtime for the module: its workers (and their imports) are reused by every test."""
    pytest.importorskip("ray")
    with ray_session(OPTIONS) as ray:
        yield ray


def test_ray_engine_reproduces_the_local_engine(local_ray, protocol, tmp_path):  # noqa: F811
    protocol = dataclasses.replace(protocol, seeds=(0,))
    tasks = {"src": make_task("src", n=150, seed=1), "tgt": make_task("tgt", n=150, seed=2)}
    local = ResultStore(tmp_path / "local.sqlite")
    run_transfer(["src"], ["tgt"], protocol, local, tasks.__getitem__, device="cpu")

    store = ResultStore(tmp_path / "ray.sqlite")
    seen = []
    done = run_transfer_ray(
        ["src"],
        ["tgt"],
        protocol,
        store,
        tasks.__getitem__,
        OPTIONS,
        device="cpu",
        on_run=lambda run, metrics, seconds, progress: seen.append(progress),
    )
    assert done == 2 and [p.done for p in seen] == [1, 2] and seen[-1].left == 0
    expected = local.frame(protocol).set_index(["source", "target", "seed"])["main"]
    got = store.frame(protocol).set_index(["source", "target", "seed"])["main"]
    assert set(got.index) == {(BASELINE, "tgt", 0), ("src", "tgt", 0)}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert '"device": "cpu"' in store.frame(protocol)["versions"].iloc[-1]
    # The source model is evaluated on its held-out rows as the local engine does.
    pd.testing.assert_frame_equal(
        store.source_models(protocol)[["source", "main", "constant", "rows"]],
        local.source_models(protocol)[["source", "main", "constant", "rows"]],
    )
    # Finished runs are not run again: the driver plans from the store.
    assert run_transfer_ray(["src"], ["tgt"], protocol, store, tasks.__getitem__, OPTIONS) == 0


def test_a_failing_ray_job_fails_the_command_with_its_own_error(local_ray, protocol, tmp_path):  # noqa: F811
    tasks = {"src": make_task("src", n=150, seed=1), "tgt": make_task("tgt", n=150, seed=2)}
    broken = dataclasses.replace(
        protocol, seeds=(0,), source=dataclasses.replace(protocol.source, model="/nonexistent")
    )
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(TaskscoutError, match="nonexistent"):
        run_transfer_ray(["src"], ["tgt"], broken, store, tasks.__getitem__, OPTIONS)


def test_missing_ray_is_one_clear_error(protocol, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    tasks = {"tgt": make_task("tgt", n=150, seed=2)}
    with pytest.raises(TaskscoutError, match=r"pip install 'taskscout\[ray\]'"):
        run_transfer_ray(
            [], ["tgt"], protocol, ResultStore(tmp_path / "r.sqlite"), tasks.__getitem__, OPTIONS
        )


def test_ray_pool_build_writes_the_same_entries_as_a_local_build(local_ray, tiny_model_dir, tmp_path):
    import numpy as np

    from taskscout.pool.build import build_pool
    from taskscout.pool.store import Pool
    from tests.test_pool_rank import _tiny_config

    config = _tiny_config(tiny_model_dir)
    sources = [make_task("src_a", n=120, seed=1), make_task("src_b", n=120, classes=3, seed=2)]
    local = Pool.create(tmp_path / "local")
    assert [r.status for r in build_pool(local, sources, config, progress=False, device="cpu")] == [
        "built"
    ] * 2

    def load(name):
        raise TaskscoutError(f"cannot read {name}")

    pool = Pool.create(tmp_path / "ray")
    seen = []
    results = build_pool(
        pool,
        [sources[0], "missing", sources[1]],
        config,
        load_task=load,
        progress=False,
        device="cpu",
        ray=OPTIONS,
        on_result=seen.append,
    )
    assert [(r.source, r.status) for r in results] == [
        ("src_a", "built"),
        ("missing", "failed"),
        ("src_b", "built"),
    ]
    assert "cannot read missing" in results[1].message and len(seen) == 3
    for source in ("src_a", "src_b"):
        ours, theirs = pool.get("esm", source), local.get("esm", source)
        ours.verify()
        assert ours.meta["build_device"] == "cpu"
        volatile = {"files", "esm_fit_seconds", "lm_train_seconds", "seconds"}
        assert {k: v for k, v in ours.meta.items() if k not in volatile and "seconds" not in k} == {
            k: v for k, v in theirs.meta.items() if k not in volatile and "seconds" not in k
        }
        got, want = ours.load_tensors("esm.safetensors"), theirs.load_tensors("esm.safetensors")
        for name in ("weight", "bias"):
            np.testing.assert_allclose(got[name], want[name], atol=2e-3)
    info = pool.info["build"]["history"][-1]
    assert info["built"] == ["src_a", "src_b"] and info["device"] == "cpu"
    # Resumable: entries in the pool are not built again, and no Ray task is sent for them.
    again = build_pool(pool, sources, config, progress=False, ray=OPTIONS)
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_cli_pool_build_with_ray(local_ray, tiny_model_dir, tmp_path, monkeypatch, capsys):
    from taskscout.pool.store import Pool
    from tests.test_cli import run

    data = tmp_path / "src_csv.csv"
    task = make_task("src_csv", n=80, seed=4)
    data.write_text(
        "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in zip(task.texts, task.labels, strict=True))
    )
    args = ["pool", "build", str(data), "--pool", str(tmp_path / "p"), "--model", str(tiny_model_dir)]
    args += ["--max-train-rows", "40", "--max-fit-texts", "60", "--epochs", "1", "--device", "cpu", "--ray"]
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "1 built" in out
    entry = Pool(tmp_path / "p").get("esm", "src_csv")
    entry.verify()
    assert entry.meta["build_device"] == "cpu"
    code, out, _ = run(monkeypatch, capsys, *args)
    assert code == 0 and "1 skipped" in out
