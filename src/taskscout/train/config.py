"""Fine-tuning hyper-parameters (kept free of torch imports so the CLI starts fast)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning hyper-parameters; defaults follow the ESM-LogME paper (AdamW, lr 2e-5, wd 0.01,
    batch 32, 3 epochs, linear decay)."""

    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_length: int = 128
    pooling: str = "mean"
    grad_clip: float = 1.0
    dropout: float = 0.1
    seed: int = 0
    optimizer: str = "AdamW"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
