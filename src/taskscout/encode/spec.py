"""What determines an embedding (:class:`EncoderSpec`), apart from the encoder that computes it, so the
embedding cache can key vectors without importing the encoder (and the encoder can use the cache)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

__all__ = ["POOLINGS", "EncoderSpec", "Pooling"]

Pooling = Literal["mean", "cls", "pooler"]
POOLINGS: tuple[str, ...] = ("mean", "cls", "pooler")


@dataclass(frozen=True)
class EncoderSpec:
    """What determines an embedding: the exact weights, the pooling rule and the truncation length."""

    name: str
    fingerprint: str
    pooling: str = "mean"
    max_length: int = 128

    def key(self) -> str:
        """A short hash of the fingerprint, pooling and truncation length."""
        return hashlib.sha256(f"{self.fingerprint}|{self.pooling}|{self.max_length}".encode()).hexdigest()[
            :16
        ]
