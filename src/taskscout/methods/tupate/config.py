"""TuPaTE's configuration (:class:`TuPaTEConfig`, stored per pool entry) and its tuned embeddings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from taskscout.configs import Config

if TYPE_CHECKING:
    from taskscout.pool.config import BuildConfig

VARIANTS: tuple[str, ...] = ("bitfit", "lora", "prefix")


STAGES: tuple[str, ...] = ("early", "late")


EMBEDDINGS_FILE = "tupate.safetensors"


# The paper's grids: BitFit {1e-4, 4e-4}, LoRA {5e-4, 2e-4}, prefix {1e-2, 1e-3}; with a short CPU budget
# the larger value of each grid.
DEFAULT_LEARNING_RATES: dict[str, float] = {"bitfit": 4e-4, "lora": 5e-4, "prefix": 1e-2}


@dataclass(frozen=True)
class TuPaTEConfig(Config):
    """How a task is tuned into an embedding; sources and targets must share it (it is stored per entry).

    ``seed``, ``max_length`` and ``pooling`` are taken from the pool's ``BuildConfig`` at build time, and
    ``max_rows`` is capped by its ``max_train_rows``; sources and targets are tuned on at most
    ``max_rows`` rows. TuPaTE keeps its own row budget (500) instead of the source models' 2,000: its
    embeddings are the parameters after a short early stage of tuning (the paper's finding), and its P1
    cost grows with the rows (2 epochs of 2,000 rows are 126 steps, ~7 min per variant and source on one
    core, against ~2 min for 500), which a pool of many sources pays three times (one per variant).

    Budget defaults are sized for a 2-core CPU: a PEFT step of MiniLM-L6 on 32 rows of up to 128 tokens
    takes ~3.5 s single-threaded (measured), so the early budget (2 epochs; 16 steps for 256 rows, 32 for
    500) costs ~1-2 minutes per variant and task, and the paper's 20-epoch late budget ten times that.
    Late embeddings are therefore off unless ``late_epochs`` is set.
    """

    early_epochs: float = 2.0
    late_epochs: float = 0.0  # 0: no late embedding (see the module docstring for the CPU budget)
    min_steps: int = 8
    batch_size: int = 32
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[variant]
    head_weight_decay: float = 0.01
    dropout: float = 0.1
    grad_clip: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 8
    lora_targets: tuple[str, ...] = ("query", "value")
    prefix_length: int = 20
    prefix_init_std: float = 1.0  # peft's PrefixEncoder default (nn.Embedding, N(0, 1)) without projection
    subtract_init: bool = True
    validation_fraction: float = 0.2
    max_validation_rows: int = 300
    seed: int = 0
    max_length: int = 128
    pooling: str = "mean"
    max_rows: int = 500

    def learning_rate_for(self, variant: str) -> float:
        return float(
            self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[variant]
        )

    def for_build(self, build: BuildConfig) -> TuPaTEConfig:
        """This config with the pool build's seed, tokenisation and pooling, and at most its row cap."""
        return dataclasses.replace(
            self,
            seed=build.seed,
            max_length=build.train.max_length,
            pooling=build.train.pooling,
            max_rows=min(self.max_rows, build.max_train_rows),
        )


@dataclass
class TunedEmbeddings:
    """The early (and, when computed, late) embedding of one task under one PEFT variant."""

    early: np.ndarray
    late: np.ndarray | None
    info: dict[str, Any]

    def stage(self, stage: str) -> np.ndarray | None:
        return self.early if stage == "early" else self.late
