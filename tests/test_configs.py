"""The typed config layer: every dict and hash that keys stored results is pinned here.

The values were recorded from the hand-written ``to_dict`` methods before the configs moved to
:mod:`taskscout.configs`; a change to any of them would orphan committed benchmark runs, fine-tuned model
caches, TuPaTE caches or pool entries, so these tests must never be updated to follow the code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import SimpleNamespace

import pytest

from taskscout.evaluate.transfer import V2, TransferProtocol, get_protocol
from taskscout.methods.esm import ESMConfig
from taskscout.methods.tupate.config import TuPaTEConfig
from taskscout.pool.config import SMALL_V1_SOURCES, BuildConfig
from taskscout.train.config import TrainConfig
from tests.conftest import make_task

# sha256 of json.dumps(config.to_dict(), sort_keys=True) before the refactor.
PINNED_DICT_SHA256 = {
    "TrainConfig()": "935ca7412d8ca01808b0cb060c2d29750b6ab8239c098b11f6eabd0b413f483b",
    "TrainConfig(head_init='probe')": "aba04b027bd6832b15885a4a5438038df622fbdd61e4b93b819a17af4634cba0",
    "BuildConfig()": "907d3f5776a3489a792f878f0a01a01d9e4c706129d17337c2fd8cab5d42aa20",
    "SMALL_V1_SOURCES": "44440ef816ce22662f6dd4107111934290384c0089b5e18265cc27a344519924",
    "small-v1": "e7d3c38e3dcfa014f5b31a79dc3f2ad7c1de3fbbbaf9579cc54721476f52bb71",
    "v2": "d9e8592c06f423ee55f21cb1a7082d29cc5b755d602e84af5e59e9a52ae26b50",
    "TuPaTEConfig()": "1064742fd34eeb0a57488d2f3c6f29fb51c3b661c48c6b41742fe91803b76f88",
    # ESMConfig had no to_dict: its config.json held dataclasses.asdict(config).
    "ESMConfig()": "94b3c2d9aeab8f3d43363092ffeaa4a435af8b375ac58e3e621aeb4a60e26b71",
}

CONFIGS = {
    "TrainConfig()": TrainConfig(),
    "TrainConfig(head_init='probe')": TrainConfig(head_init="probe"),
    "BuildConfig()": BuildConfig(),
    "SMALL_V1_SOURCES": SMALL_V1_SOURCES,
    "small-v1": get_protocol("small-v1"),
    "v2": V2,
    "TuPaTEConfig()": TuPaTEConfig(),
    "ESMConfig()": ESMConfig(),
}


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("name", list(PINNED_DICT_SHA256))
def test_config_dicts_are_pinned(name):
    assert _sha(CONFIGS[name].to_dict()) == PINNED_DICT_SHA256[name]


def test_protocol_hashes_are_pinned():
    assert get_protocol("small-v1").hash() == "e7d3c38e3dcf"
    assert get_protocol("v2").hash() == "d9e8592c06f4"


def test_later_fields_are_left_out_only_at_their_default():
    assert "head_init" not in TrainConfig().to_dict()
    assert TrainConfig(head_init="probe").to_dict()["head_init"] == "probe"
    assert "eval_at_most_half" not in TransferProtocol().to_dict()
    assert V2.to_dict()["eval_at_most_half"] is False
    assert V2.to_dict()["train"]["head_init"] == "probe"


def test_small_v1_dict_is_pinned_field_by_field():
    data = get_protocol("small-v1").to_dict()
    assert data["seeds"] == [0, 1, 2]
    assert data["train"] == {
        "batch_size": 16,
        "dropout": 0.1,
        "epochs": 3.0,
        "grad_clip": 1.0,
        "learning_rate": 1e-4,
        "max_length": 64,
        "optimizer": "AdamW",
        "pooling": "mean",
        "seed": 0,
        "warmup_ratio": 0.0,
        "weight_decay": 0.01,
    }
    assert data["source"]["max_train_rows"] == 500 and data["source"]["train"]["learning_rate"] == 1e-4


def test_tupate_and_esm_dicts_are_plain_json():
    assert TuPaTEConfig().to_dict()["lora_targets"] == ["query", "value"]
    esm = ESMConfig(lm_eval={"accuracy": 0.5})
    assert esm.to_dict() == dataclasses.asdict(esm)


@pytest.mark.parametrize("config", [TrainConfig(head_init="probe", seed=3), TuPaTEConfig(lora_r=4)])
def test_from_dict_round_trips_and_ignores_unknown_keys(config):
    data = {**config.to_dict(), "added_by_a_later_version": 1}
    assert type(config).from_dict(data) == config


def test_build_config_and_protocol_round_trip_through_json():
    for config in (BuildConfig(), SMALL_V1_SOURCES):
        assert BuildConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for protocol in (get_protocol("small-v1"), V2):
        back = TransferProtocol.from_dict(json.loads(json.dumps(protocol.to_dict())))
        assert back == protocol and back.hash() == protocol.hash()


def test_finetuned_model_cache_keys_are_pinned(monkeypatch):
    import taskscout.train.finetune as finetune

    resolved = SimpleNamespace(fingerprint="0123456789abcdef")
    monkeypatch.setattr(finetune, "resolve_model", lambda base: resolved)
    task = make_task(n=20)
    assert task.fingerprint() == "40ae899a92184bad"
    assert finetune.finetuned_model_dir(task, "x", TrainConfig()).name == "toy-90bbc3ba1e20"
    probe = TrainConfig(head_init="probe", warmup_ratio=0.1)
    assert finetune.finetuned_model_dir(task, "x", probe).name == "toy-4b5759e55d11"


def test_tupate_cache_keys_are_pinned():
    from taskscout.methods.tupate.cache import _cache_file

    task, validation = make_task(n=20), make_task("val", n=10, seed=1)
    fingerprint = "0123456789abcdef"
    assert _cache_file(task, fingerprint, "lora", TuPaTEConfig(), None).name == (
        "toy-lora-c19a6f27b5fd3894.safetensors"
    )
    one_target = TuPaTEConfig(lora_targets=("query",))
    assert _cache_file(task, fingerprint, "bitfit", one_target, validation).name == (
        "toy-bitfit-1a7796ec3c48cd79.safetensors"
    )
