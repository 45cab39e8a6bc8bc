"""ESM-LogME (Schulte, Hamborg, Akbik): LogME of the target's base embeddings pushed through each ESM.

The target's statistics (Gram matrix of ``[F, 1]`` and its products with the label columns) are computed
once; each ESM then costs one D x D matrix product and eigendecomposition, whatever the number of target
rows, and ESMs are processed in chunks so memory stays O(chunk x D^2).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from taskscout.errors import PoolError
from taskscout.methods.base import MethodScores, SelectionMethod, Target
from taskscout.methods.esm import EmbeddingSpaceMap
from taskscout.methods.logme import esm_logme_from_statistics, target_statistics
from taskscout.pool.store import PoolEntry


class ESMLogME(SelectionMethod):
    name = "esm-logme"
    kind = "esm"
    description = "LogME of target embeddings mapped through each source's Embedding Space Map"
    p1_cost = "fine-tune the base encoder per source, fit a linear D x D map"
    p2_cost = "embed target once with the base encoder; O(D^3) per source"

    def __init__(self, chunk_size: int = 32) -> None:
        self.chunk_size = chunk_size

    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        out = MethodScores()
        usable = []
        for entry in entries:
            if entry.base_model != target.encoder.name:
                out.failed[entry.source] = (
                    f"built for base model {entry.base_model!r}, not {target.encoder.name!r}"
                )
            elif entry.dim != target.encoder.dim:
                out.failed[entry.source] = (
                    f"embedding size {entry.dim} does not match the encoder's {target.encoder.dim}"
                )
            else:
                usable.append(entry)
        if not usable:
            return out
        features = target.features(progress="embedding target" if progress else False)
        stats = target_statistics(features, target.task.labels, regression=not target.task.is_classification)
        bar = tqdm(
            total=len(usable), desc="scoring sources", unit="source", disable=not progress, leave=False
        )
        for start in range(0, len(usable), self.chunk_size):
            names, weights, biases = [], [], []
            for entry in usable[start : start + self.chunk_size]:
                try:
                    esm = EmbeddingSpaceMap.from_pretrained(entry.path)
                except PoolError as exc:
                    out.failed[entry.source] = str(exc)
                    continue
                names.append(entry.source)
                weights.append(esm.weight)
                biases.append(esm.bias)
            if names:
                values = esm_logme_from_statistics(stats, np.stack(weights), np.stack(biases))
                for name, value in zip(names, values, strict=True):
                    if np.isfinite(value):
                        out.scores[name] = float(value)
                    else:
                        out.failed[name] = "LogME is not finite for this map"
            bar.update(min(self.chunk_size, len(usable) - start))
        bar.close()
        return out
