"""The one interface every source-selection method implements.

A method may have a P1 step that stores a per-source representation in the pool under its ``kind``
(ESMs for ESM-LogME), and always has a P2 scorer that scores pool entries for one target. Scores are
"higher = better source"; the ranking, duplicate exclusion and reporting around them are shared
(:mod:`taskscout.rank`), so a method only says how to score.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from taskscout.data.task import Task
from taskscout.encode.encoder import Encoder
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.build import BuildContext


@dataclass
class Target:
    """A target task plus what P2 computes from it once and shares across methods (its base embeddings)."""

    task: Task
    encoder: Encoder
    embed_seconds: float = 0.0  # time spent embedding the target (0 if no method needed it)
    _features: np.ndarray | None = field(default=None, repr=False)

    def features(self, progress: bool | str = False) -> np.ndarray:
        """Base-model embeddings of the target's inputs, computed on first use."""
        if self._features is None:
            started = time.perf_counter()
            self._features = self.encoder.encode_task(self.task, progress=progress)
            self.embed_seconds = time.perf_counter() - started
        return self._features


@dataclass
class MethodScores:
    """Scores per source, plus the entries that could not be scored and why."""

    scores: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class SelectionMethod(ABC):
    """A source-selection method. Subclasses set the class attributes and implement :meth:`score`."""

    name: str = ""
    kind: str | None = None  # the pool entry kind this method reads; None if it needs no P1 artefact
    description: str = ""
    p1_cost: str = ""
    p2_cost: str = ""

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """P1: write this method's representation of source ``task`` into ``out_dir``.

        Write the files plus a ``config.json`` of method-specific metadata; the pool build adds the
        shared source metadata, text hashes and checksums. Only methods with a ``kind`` have a P1 step.
        """
        raise NotImplementedError(f"method {self.name!r} has no P1 step")

    @abstractmethod
    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        """Score every entry for ``target``; never raise for one bad entry: put it in ``failed``."""


def compatible_entries(entries: list[PoolEntry], encoder: Encoder, out: MethodScores) -> list[PoolEntry]:
    """Entries built for ``encoder`` (same base model and embedding size); the others go to ``out.failed``."""
    usable = []
    for entry in entries:
        if entry.base_model != encoder.name:
            out.failed[entry.source] = f"built for base model {entry.base_model!r}, not {encoder.name!r}"
        elif entry.dim and entry.dim != encoder.dim:
            out.failed[entry.source] = (
                f"embedding size {entry.dim} does not match the encoder's {encoder.dim}"
            )
        else:
            usable.append(entry)
    return usable


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in float64 (inputs flattened); NaN when either vector is zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else float("nan")
