"""Fine-tuning hyper-parameters (kept free of torch imports so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from taskscout.configs import Config


@dataclass(frozen=True)
class TrainConfig(Config):
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
    # "random": a freshly initialised head; "probe": the head starts as a linear probe fitted on the
    # frozen starting encoder's pooled features (LP-FT, Kumar et al. 2022), so the first steps do not
    # push large random-head gradients into the encoder (the collapses of few-shot runs at high rates).
    head_init: str = "random"

    # Fields added after configs were first hashed: left out of the dict while at their default, so
    # the hashes of existing protocols, cached models and pools stay what they were.
    _LATER_FIELDS: ClassVar[dict[str, Any]] = {"head_init": "random"}

    def __post_init__(self) -> None:
        if self.head_init not in ("random", "probe"):
            raise ValueError(f"head_init must be 'random' or 'probe', not {self.head_init!r}")
