"""ESM-LogME (Schulte, Hamborg, Akbik): LogME of the target's base embeddings pushed through each ESM.

The target's statistics (Gram matrix of ``[F, 1]`` and its products with the label columns) are computed
once; each ESM then costs one D x D matrix product and eigendecomposition, whatever the number of target
rows, and ESMs are processed in chunks so memory stays O(chunk x D^2).

Variants for comparison: ``esm-sgd-logme`` fits the maps with the paper's SGD trainer instead of the
closed form, and ``esm-mlp-logme`` uses a small residual MLP map (scored by mapping the target
explicitly, since the Gram identity holds only for linear maps).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from taskscout.data.task import Task
from taskscout.errors import DataError, PoolError
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target
from taskscout.methods.esm import ESM_WEIGHTS, EmbeddingSpaceMap, ESMConfig, ResidualMLPMap
from taskscout.methods.logme import (
    UnboundedEvidenceError,
    esm_logme_from_statistics,
    logme,
    target_statistics,
)
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext


def paired_embeddings(
    task: Task, context: BuildContext, *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, ESMConfig]:
    """Base and fine-tuned embeddings of the source's fit texts, plus the ESM metadata describing them.

    Both encoders cache their embeddings by content, so fitting several map variants for one source
    embeds its texts once.
    """
    from taskscout.encode.models import resolve_model
    from taskscout.pool.context import source_samples

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


def _target_statistics(target: Target, progress: bool, text_join: str | None = None):
    if text_join is not None and target.task.is_pair:
        # hfselect embeds a pair as one text, joined with a literal separator: its ESMs were fitted on that.
        joined = [
            f"{a}{text_join}{b}" for a, b in zip(target.task.texts, target.task.text_pairs, strict=True)
        ]
        features = target.encoder.encode(joined, progress="embedding target (joined)" if progress else False)
    else:
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

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> None:
        """Verify the entry and the shapes of its map; the weights are read chunk by chunk when scoring."""
        check_map_shapes(entry, target.encoder.dim)

    def protocol(self, entry: PoolEntry) -> dict[str, str] | None:
        """Entries imported from hfselect see pair targets as hfselect does (one joined text)."""
        join = entry.meta.get("text_join_targets")
        return {"text_join": join} if isinstance(join, str) and join else None

    def prepare_target(self, target: Target, protocol: dict[str, str] | None, *, progress: bool = False):
        return _target_statistics(target, progress, (protocol or {}).get("text_join"))

    def score_group(
        self, target: Target, reference, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        # Chunks keep memory at O(chunk x D^2) whatever the number of sources. The next chunk's maps are
        # read (file I/O, checksums, fp16 -> array) by a reader thread while this one is scored, so
        # reading 10,000 maps overlaps the arithmetic instead of leaving the cores idle in between.
        chunks = [group[start : start + self.chunk_size] for start in range(0, len(group), self.chunk_size)]
        scores: dict[str, float] = {}
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(_read_maps, chunks[0]) if chunks else None
            for index in range(len(chunks)):
                assert pending is not None
                names, weights, biases, failed = pending.result()
                if index + 1 < len(chunks):
                    pending = reader.submit(_read_maps, chunks[index + 1])
                out.failed.update(failed)
                if not names:
                    continue
                try:
                    values = esm_logme_from_statistics(reference, np.stack(weights), np.stack(biases))
                except UnboundedEvidenceError as exc:
                    raise DataError(f"target {target.task.name!r}: {exc}") from None
                scores.update({name: float(v) for name, v in zip(names, values, strict=True)})
        return scores


def _read_maps(
    chunk: list[LoadedEntry],
) -> tuple[list[str], list[np.ndarray], list[np.ndarray], dict[str, str]]:
    """Names, weights and biases of a chunk of ESM entries, and the entries that could not be read."""
    names, weights, biases, failed = [], [], [], {}
    for loaded in chunk:
        try:
            tensors = loaded.entry.load_tensors(ESM_WEIGHTS)
        except PoolError as exc:
            failed[loaded.source] = str(exc)
            continue
        names.append(loaded.source)
        weights.append(tensors["weight"])
        biases.append(tensors["bias"])
    return names, weights, biases, failed


def check_map_shapes(entry: PoolEntry, input_dim: int, extra: tuple[str, ...] = ()) -> None:
    """Verify an ESM entry's checksums and that its tensors have the shapes a map from ``input_dim`` has.

    Reads only the safetensors header (no weights), so checking a thousand entries stays cheap.
    """
    from safetensors import safe_open

    entry.verify()
    try:
        with safe_open(str(entry.path / ESM_WEIGHTS), framework="np") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise PoolError(
            f"pool entry {entry.label}: unreadable {ESM_WEIGHTS} ({type(exc).__name__})"
        ) from None
    needed = ("weight", "bias", *extra)
    missing = [key for key in needed if key not in shapes]
    if missing:
        raise PoolError(f"pool entry {entry.label}: {ESM_WEIGHTS} has no {missing[0]!r} tensor; rebuild it")
    out_dim = int(entry.meta.get("esm_embedding_dim") or shapes["weight"][0])
    if shapes["weight"] != (out_dim, input_dim) or shapes["bias"] != (out_dim,):
        raise PoolError(
            f"pool entry {entry.label}: map weight {shapes['weight']} and bias {shapes['bias']} do not fit "
            f"a {input_dim} -> {out_dim} map (metadata); rebuild the entry"
        )


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

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> ResidualMLPMap:
        check_map_shapes(
            entry, target.encoder.dim, extra=("hidden_weight", "hidden_bias", "out_weight", "out_bias")
        )
        return ResidualMLPMap(entry.load_tensors(ESM_WEIGHTS), ESMConfig.from_dict(entry.meta))

    def prepare_target(self, target: Target, protocol: None, *, progress: bool = False) -> np.ndarray:
        return target.features(progress="embedding target" if progress else False)

    def score_group(
        self, target: Target, reference: np.ndarray, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        regression = not target.task.is_classification
        scores = {}
        for loaded in group:
            try:
                mapped = loaded.data.transform(reference)
            except ValueError as exc:  # hidden layer shapes that do not chain
                out.failed[loaded.source] = f"the map's layers do not fit together ({exc})"
                continue
            try:
                scores[loaded.source] = logme(mapped, target.task.labels, regression=regression)
            except UnboundedEvidenceError as exc:
                raise DataError(f"target {target.task.name!r}: {exc}") from None
        return scores


METHODS = (ESMLogME, ESMSGDLogME, ESMMLPLogME)
