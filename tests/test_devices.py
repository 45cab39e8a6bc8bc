"""Device selection: one rule for every command; CPU here (no GPU on the test machines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskscout.devices import amp_dtype, autocast, describe, grad_scaler, resolve_device
from taskscout.errors import TaskscoutError
from taskscout.train.config import TrainConfig
from taskscout.train.finetune import finetune
from tests.conftest import make_task


def test_auto_and_cpu_resolve_to_the_cpu_without_a_gpu():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    assert str(resolve_device(None)) == expected
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "tpu", "cpu:0"])
def test_unknown_device_names_are_one_clear_error(spec):
    with pytest.raises(TaskscoutError, match="unknown device"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_missing_gpu_is_one_clear_error(spec):
    with pytest.raises(TaskscoutError, match="no CUDA GPU"):
        resolve_device(spec)


def test_cpu_stays_float32():
    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None
    assert grad_scaler(cpu) is None
    with autocast(cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert describe(cpu) == {"device": "cpu"}


def test_finetune_records_its_device(tiny_model_dir):
    tuned = finetune(make_task(n=32), str(tiny_model_dir), TrainConfig(epochs=1, max_length=16), device="cpu")
    assert tuned.info["device"] == "cpu"
    assert next(tuned.model.parameters()).device == torch.device("cpu")


def test_peft_tuning_runs_on_the_device_asked_for_and_records_it(tiny_model_dir):
    from taskscout.methods.tupate.config import TuPaTEConfig
    from taskscout.methods.tupate.training import tune

    config = TuPaTEConfig(max_length=16, batch_size=16, max_rows=32)
    task = make_task(n=32)
    on_cpu = tune(task, str(tiny_model_dir), "bitfit", config, device="cpu")
    assert on_cpu.info["device"] == "cpu"
    default = tune(task, str(tiny_model_dir), "bitfit", config)  # None: where the base model is
    assert default.info["device"] == "cpu"
    assert np.array_equal(on_cpu.early, default.early)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_rank_and_build_name_a_missing_gpu_before_any_work(tmp_path, tiny_model_dir):
    from taskscout.pool.build import build_pool
    from taskscout.pool.store import Pool
    from taskscout.ranking import rank

    pool = Pool.create(tmp_path / "pool")
    with pytest.raises(TaskscoutError, match="no CUDA GPU"):
        build_pool(pool, [make_task("src", n=40)], device="cuda", progress=False)
    assert pool.entries() == []
    with pytest.raises(TaskscoutError, match="no CUDA GPU"):
        rank(make_task("target", n=40), pool=pool, device="cuda:0", progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_cli_device_options_give_one_line_for_a_missing_gpu(tmp_path, monkeypatch, capsys):
    from tests.test_cli import run

    code, _, err = run(monkeypatch, capsys, "rank", "catalog:nope", "--device", "cuda")
    assert code != 0 and "no CUDA GPU" in err and "Traceback" not in err
    code, _, err = run(
        monkeypatch, capsys, "pool", "build", "x", "--pool", str(tmp_path / "p"), "--device", "cuda:1"
    )
    assert code != 0 and "no CUDA GPU" in err and "Traceback" not in err
