"""How sources become pool entries (kept free of torch imports so the CLI starts fast)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from taskscout.encode.models import DEFAULT_MODEL
from taskscout.train.config import TrainConfig

# Caps of `pool import`: generous for real pools (the built-in one is 16 MB in 87 entries; a 1,000-source
# BERT-base ESM pool is ~1.3 GB), small enough that a hostile archive cannot fill a disk. All settable.
DEFAULT_IMPORT_MAX_BYTES = 4 * 1024**3
DEFAULT_IMPORT_MAX_FILES = 100_000
# Real entries (fp16 weights, hashes) compress by < 2x; 200x is a decompression bomb.
DEFAULT_IMPORT_MAX_RATIO = 200.0


@dataclass(frozen=True)
class BuildConfig:
    """How sources become pool entries.

    ``max_train_rows`` and ``train.epochs`` cap fine-tuning (the paper used 10,000 rows and 3 epochs;
    500 rows x 2 epochs keeps a 30-source pool near an hour on 2 CPU cores, where one 128-token
    training step of MiniLM-L6 on 32 rows takes ~3 s); ``max_fit_texts`` caps the texts the ESM is fitted
    on (more than the fine-tuning rows: embedding is cheaper than training and a D x D map wants rows).
    The paper's lr 2e-5 assumes ~900 steps; at 32 steps the loss stays at chance level (measured on
    bbc_topic: 1.58 vs ln 5 = 1.61 after 10 steps), so the default is 1e-4, which lets the encoder move.
    ``max_hash_texts`` caps the text hashes kept for duplicate detection.
    """

    model: str = DEFAULT_MODEL
    max_train_rows: int = 500
    max_fit_texts: int = 1000
    max_eval_rows: int = 300
    max_hash_texts: int = 20000
    esm_fit: str = "ridge"
    dtype: str = "float16"
    seed: int = 0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2.0, learning_rate=1e-4))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "train": self.train.to_dict()}
