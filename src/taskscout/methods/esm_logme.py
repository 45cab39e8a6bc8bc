"""ESM-LogME (Schulte, Hamborg, Akbik): LogME of the target's base embeddings pushed through each ESM.

The target's statistics (Gram matrix of ``[F, 1]`` and its products with the label columns) are computed
once; each ESM then costs one D x D matrix product and eigendecomposition, whatever the number of target
rows, and ESMs are processed in chunks so memory stays O(chunk x D^2).

Variants for comparison: ``esm-sgd-logme`` fits the maps with the paper's SGD trainer instead of the
closed form, and ``esm-mlp-logme`` uses a small residual MLP map (scored by mapping the target
explicitly, since the Gram identity holds only for linear maps).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from taskscout.data.task import Task
from taskscout.errors import DataError, PoolError
from taskscout.methods.base import MethodScores, SelectionMethod, Target, compatible_entries
from taskscout.methods.esm import EmbeddingSpaceMap, ESMConfig, ResidualMLPMap
from taskscout.methods.logme import (
    UnboundedEvidenceError,
    esm_logme_from_statistics,
    logme,
    target_statistics,
)
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.build import BuildContext


def paired_embeddings(
    task: Task, context: BuildContext, *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, ESMConfig]:
    """Base and fine-tuned embeddings of the source's fit texts, plus the ESM metadata describing them.

    Both encoders cache their embeddings by content, so fitting several map variants for one source
    embeds its texts once.
    """
    from taskscout.encode.models import resolve_model
    from taskscout.pool.build import source_samples

    config = context.config
    _, fit, held = source_samples(task, config)
    tuned = context.source_model(task, progress=progress)
    lm_eval = tuned.evaluate(held) if held is not None else {}
    name = task.name
    base = context.base_encoder.encode_task(fit, progress=f"{name}: base embeddings" if progress else False)
    mapped = tuned.encoder(cache=True).encode_task(
        fit, progress=f"{name}: tuned embeddings" if progress else False
    )
    resolved = resolve_model(config.model)
    esm_config = ESMConfig(
        base_model_name=resolved.name,
        base_model_fingerprint=resolved.fingerprint,
        base_model_pooling=config.train.pooling,
        base_model_max_length=config.train.max_length,
        task_id=task.name,
        text_pair_column="text_pair" if task.is_pair else None,
        task_type=task.task_type,
        num_classes=task.num_classes,
        num_examples=len(task),
        seed=config.seed,
        language=task.language,
        lm_num_epochs=config.train.epochs,
        lm_batch_size=config.train.batch_size,
        lm_learning_rate=config.train.learning_rate,
        lm_weight_decay=config.train.weight_decay,
        lm_optimizer=config.train.optimizer,
        lm_eval={k: round(float(v), 5) for k, v in lm_eval.items()},
    )
    return base, mapped, esm_config


def _target_statistics(target: Target, progress: bool):
    features = target.features(progress="embedding target" if progress else False)
    try:
        return target_statistics(features, target.task.labels, regression=not target.task.is_classification)
    except UnboundedEvidenceError as exc:
        raise DataError(f"target {target.task.name!r}: {exc}") from None


class ESMLogME(SelectionMethod):
    name = "esm-logme"
    kind = "esm"
    description = "LogME of target embeddings mapped through each source's Embedding Space Map"
    p1_cost = "fine-tune the base encoder per source, fit a linear D x D map (closed form)"
    p2_cost = "embed target once with the base encoder; O(D^3) per source, flat in target size"
    fit_method: str | None = None  # None: the build configuration's esm_fit

    def __init__(self, chunk_size: int = 32) -> None:
        self.chunk_size = chunk_size

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Fine-tune the base encoder on the source (cached), embed the source's texts with both
        encoders and fit the map."""
        base, mapped, esm_config = paired_embeddings(task, context, progress=progress)
        config = context.config
        esm = EmbeddingSpaceMap.fit(
            base, mapped, method=self.fit_method or config.esm_fit, config=esm_config, seed=config.seed
        )
        esm.save_pretrained(out_dir, dtype=config.dtype)

    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        out = MethodScores()
        usable = compatible_entries(entries, target.encoder, out)
        if not usable:
            return out
        stats = _target_statistics(target, progress)
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
                try:
                    values = esm_logme_from_statistics(stats, np.stack(weights), np.stack(biases))
                except UnboundedEvidenceError as exc:
                    raise DataError(f"target {target.task.name!r}: {exc}") from None
                for name, value in zip(names, values, strict=True):
                    if np.isfinite(value):
                        out.scores[name] = float(value)
                    else:
                        out.failed[name] = "LogME is not finite for this map"
            bar.update(min(self.chunk_size, len(usable) - start))
        bar.close()
        return out


class ESMSGDLogME(ESMLogME):
    name = "esm-sgd-logme"
    kind = "esm-sgd"
    description = "ESM-LogME with maps trained by the paper's SGD recipe (AdamW, 10 epochs) instead of ridge"
    p1_cost = "fine-tune per source (shared with esm-logme), 10 epochs of SGD for the map"
    fit_method = "sgd"


class ESMMLPLogME(SelectionMethod):
    name = "esm-mlp-logme"
    kind = "esm-mlp"
    description = "LogME of target embeddings through a small residual-MLP map per source (non-linear ESM)"
    p1_cost = "fine-tune per source (shared with esm-logme), ridge + a 128-unit MLP on the residuals"
    p2_cost = "embed target once; map the N target rows explicitly, O(N D h) + LogME per source"

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        base, mapped, esm_config = paired_embeddings(task, context, progress=progress)
        ResidualMLPMap.fit(base, mapped, config=esm_config, seed=context.config.seed).save_pretrained(
            out_dir, dtype=context.config.dtype
        )

    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        out = MethodScores()
        usable = compatible_entries(entries, target.encoder, out)
        if not usable:
            return out
        features = target.features(progress="embedding target" if progress else False)
        regression = not target.task.is_classification
        for entry in tqdm(usable, desc="scoring sources", unit="source", disable=not progress, leave=False):
            try:
                mapped = ResidualMLPMap.from_pretrained(entry.path).transform(features)
            except (PoolError, KeyError) as exc:
                out.failed[entry.source] = str(exc)
                continue
            try:
                out.scores[entry.source] = logme(mapped, target.task.labels, regression=regression)
            except UnboundedEvidenceError as exc:
                raise DataError(f"target {target.task.name!r}: {exc}") from None
        return out


METHODS = (ESMLogME, ESMSGDLogME, ESMMLPLogME)
