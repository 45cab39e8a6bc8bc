r"""TextEmb (Vu et al., EMNLP 2020, "Exploring and Predicting Transferability across NLP Tasks").

A task's TextEmb is the average, over the task's examples, of the masked mean of the BASE model's
final-layer token states:

.. math::

    e(T) = \frac{1}{N}\sum_{i=1}^{N} \frac{\sum_t m_{it} h_{it}}{\sum_t m_{it}}

(``h_it`` the last hidden state of token ``t`` of input ``i``, ``m`` the attention mask), i.e. the mean of
the base encoder's mean-pooled embeddings. Sources are ranked by ``cos(e(source), e(target))``. The
labels play no part: TextEmb measures domain similarity only.

P1 stores ``e(source)`` over the source's capped fit sample (``max_fit_texts`` rows, the texts the ESM
is fitted on, so when both are built the base embeddings come from the embedding cache). P2 reuses the
target's cached base features when the pool's pooling is ``mean`` (the default); otherwise it embeds the
target once more with mean pooling, since TextEmb is defined on mean-pooled token states.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from taskscout.data.task import Task
from taskscout.encode.encoder import Encoder
from taskscout.io import write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target, cosine
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext

TEXTEMB_FILE = "textemb.npy"


def mean_pooling_view(encoder: Encoder) -> Encoder:
    """``encoder`` itself if it mean-pools, else the same weights with mean pooling (same cache policy)."""
    if encoder.spec.pooling == "mean":
        return encoder
    return Encoder.from_module(
        encoder.model,
        encoder.tokenizer,
        name=encoder.name,
        fingerprint=encoder.spec.fingerprint,
        pooling="mean",
        max_length=encoder.spec.max_length,
        batch_size=encoder.batch_size,
        cache=encoder.use_cache,
    )


def task_embedding(features: np.ndarray) -> np.ndarray:
    """TextEmb of a task from its mean-pooled embeddings ``(N, D)``: their mean, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"need a non-empty (N, D) feature matrix, got shape {features.shape}")
    return features.mean(axis=0)


class TextEmb(SelectionMethod):
    """Cosine similarity of the mean base-model embeddings of source and target (Vu et al. 2020)."""

    name = "textemb"
    kind = "textemb"
    description = "Cosine of the mean mean-pooled base-model embeddings of source and target (Vu et al. 2020)"
    p1_cost = "embed up to max_fit_texts source rows with the base encoder (shared cache with ESM P1)"
    p2_cost = "target's base embeddings (cached, shared with ESM-LogME); one D-dim cosine per source"

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Average the base encoder's mean-pooled embeddings of the source's fit sample."""
        from taskscout.pool.context import source_samples

        _, fit, _ = source_samples(task, context.config)
        encoder = mean_pooling_view(context.base_encoder)
        features = encoder.encode_task(fit, progress=f"{task.name}: base embeddings" if progress else False)
        vector = task_embedding(features)
        np.save(out_dir / TEXTEMB_FILE, vector, allow_pickle=False)
        write_json(
            out_dir / "config.json",
            {"embedding_dim": int(vector.size), "textemb_num_texts": len(fit), "textemb_pooling": "mean"},
        )

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> np.ndarray:
        return entry.load_array(TEXTEMB_FILE, dtype_kinds="f", shape=(target.encoder.dim,))

    def prepare_target(self, target: Target, protocol: None, *, progress: bool = False) -> np.ndarray:
        return task_embedding(self._target_features(target, progress))

    def score_group(
        self, target: Target, reference: np.ndarray, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        scores = {}
        for loaded in group:
            value = cosine(loaded.data, reference)
            if np.isfinite(value):
                scores[loaded.source] = value
            else:
                out.failed[loaded.source] = "the source's mean embedding is zero"
        return scores

    @staticmethod
    def _target_features(target: Target, progress: bool) -> np.ndarray:
        desc = "embedding target" if progress else False
        if target.encoder.spec.pooling == "mean":
            return target.features(progress=desc)
        return mean_pooling_view(target.encoder).encode_task(target.task, progress=desc)


METHODS = (TextEmb,)
