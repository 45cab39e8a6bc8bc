"""How sources become pool entries (kept free of torch imports so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskscout.configs import Config
from taskscout.encode.models import DEFAULT_MODEL
from taskscout.train.config import TrainConfig

# Caps of `pool import`: generous for real pools (the built-in one is 16 MB in 87 entries; a 1,000-source
# BERT-base ESM pool is ~1.3 GB), small enough that a hostile archive cannot fill a disk. All settable.
DEFAULT_IMPORT_MAX_BYTES = 4 * 1024**3
DEFAULT_IMPORT_MAX_FILES = 100_000
# Real entries (fp16 weights, hashes) compress by < 2x; 200x is a decompression bomb.
DEFAULT_IMPORT_MAX_RATIO = 200.0


@dataclass(frozen=True)
class BuildConfig(Config):
    """How sources become pool entries (the defaults are benchmark v2's source models).

    ``max_train_rows`` and ``train`` define the source model: 2,000 stratified rows, 2 epochs (126 steps
    of 32) at lr 5e-5 with 10 % warm-up, 128 tokens. The v2 pilot (benchmarks/README.md) measured what
    this buys against the first pool's 500 rows x 2 epochs at 1e-4 (32 steps, which barely moved the
    encoder) and against a longer 4,000 x 3 run; on this 2-core machine a source costs ~3-7 min
    depending on text length. ``max_fit_texts`` caps the texts the ESM is fitted on (a superset of the
    training rows: embedding is cheaper than training and a D x D map wants rows); ``max_eval_rows``
    caps the held-out rows each source model is scored on (recorded in the entry). ``max_hash_texts``
    caps the text hashes kept for duplicate detection.
    """

    model: str = DEFAULT_MODEL
    max_train_rows: int = 2000
    max_fit_texts: int = 4000
    max_eval_rows: int = 1000
    max_hash_texts: int = 20000
    esm_fit: str = "ridge"
    dtype: str = "float16"
    seed: int = 0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=2.0, batch_size=32, learning_rate=5e-5, warmup_ratio=0.1)
    )


# The first pool's and benchmark small-v1's source models (500 rows x 2 epochs = 32 steps at lr 1e-4,
# ESM fitted on 1,000 texts); kept so small-v1's protocol, and its hash, stay exactly what they were.
SMALL_V1_SOURCES = BuildConfig(
    max_train_rows=500,
    max_fit_texts=1000,
    max_eval_rows=300,
    train=TrainConfig(epochs=2.0, learning_rate=1e-4),
)
