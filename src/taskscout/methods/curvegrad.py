"""CurveGrad (Bingel & Søgaard, EACL 2017, as a task embedding in Vu et al., EMNLP 2020): loss-curve slopes.

A task is described by the shape of the training-loss curve of the base encoder fine-tuned on it. With the
recorded (sub-sampled) losses ``l_0 .. l_{n-1}`` at training fractions ``t_j = j / (n - 1)``:

1. smooth with a centred moving average over ``smoothing * n`` steps (edge values repeated);
2. divide by the smoothed initial loss, so cross-entropy over K classes (~ln K) and MSE on standardised
   targets (~1) are on one scale: the curve is relative to where training started;
3. take the slope ``d l / d t`` (second-order finite differences) at 10%, 20%, ..., 100% of training.

Similarity: every feature is standardised (z-score) over the target and the sources being scored, and a
source scores ``-|| z_source - z_target ||`` (higher = closer).

This is a weak baseline, honestly: with the default pool budget a source's curve has ~32 optimisation
steps of batch 32, so its slopes are dominated by mini-batch noise; the curve says how fast a task is
learnt, not what is learnt, so unrelated tasks of similar difficulty look alike; and the standardisation
makes scores depend on which sources are in the pool. It is here to be beaten.

P1 reads the curve stored with the cached fine-tuned source model (``info["losses"]``), so it costs no
training beyond what the pool build does anyway; P2 fine-tunes the base encoder on the target exactly as
the sources were (same cached model TaskEmb's P2 uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskscout.data.task import Task
from taskscout.errors import PoolError, TaskscoutError
from taskscout.io import write_json
from taskscout.methods.base import LoadedEntry, MethodScores, SelectionMethod, Target
from taskscout.methods.taskemb import finetune_protocol, target_finetuned
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext

CURVE_FILE = "curvegrad.safetensors"
FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SMOOTHING = 0.1


def curve_features(
    losses: Sequence[float] | np.ndarray,
    fractions: Sequence[float] = FRACTIONS,
    smoothing: float = SMOOTHING,
) -> np.ndarray:
    """Slopes of the smoothed, initial-loss-relative loss curve at ``fractions`` of training.

    Raises ``ValueError`` for curves with fewer than 3 points or non-finite values.
    """
    y = np.asarray(losses, dtype=np.float64).ravel()
    if y.size < 3 or not np.all(np.isfinite(y)):
        raise ValueError("a loss curve needs at least 3 finite values")
    width = max(1, int(round(smoothing * y.size)))
    padded = np.pad(y, (width // 2, width - 1 - width // 2), mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")
    scale = smooth[0] if smooth[0] > 0 else (np.max(np.abs(smooth)) or 1.0)
    relative = smooth / scale
    t = np.linspace(0.0, 1.0, y.size)
    slope = np.gradient(relative, t, edge_order=2)
    return np.interp(np.asarray(fractions, dtype=np.float64), t, slope)


def standardised_distances(target: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """``-|| z_s - z_t ||`` per source row, z-scoring each feature over the target and all sources."""
    features = np.vstack([np.asarray(target, dtype=np.float64)[None, :], np.asarray(sources, np.float64)])
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (features - mean) / std
    return -np.linalg.norm(z[1:] - z[0], axis=1)


class CurveGrad(SelectionMethod):
    """CurveGrad: negative distance between standardised slopes of the fine-tuning loss curves."""

    name = "curvegrad"
    kind = "curvegrad"
    description = "similarity of fine-tuning loss-curve slopes (weak baseline; Bingel & Søgaard 2017)"
    p1_cost = "none beyond the (cached) source fine-tuning: reads its loss curve"
    p2_cost = "fine-tune the base encoder on the target (as the sources); O(10) per source"
    p2_reuses = ("taskemb",)  # the same cached target fine-tuning

    def __init__(self, fractions: Sequence[float] = FRACTIONS, smoothing: float = SMOOTHING) -> None:
        self.fractions = tuple(float(f) for f in fractions)
        self.smoothing = float(smoothing)

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """Curve features of the cached fine-tuned source model's recorded losses."""
        from safetensors.numpy import save_file

        tuned = context.source_model(task, progress=progress)
        losses = np.asarray(tuned.info.get("losses") or [], dtype=np.float64)
        try:
            features = curve_features(losses, self.fractions, self.smoothing)
        except ValueError as exc:
            raise TaskscoutError(f"source {task.name!r}: no usable loss curve ({exc})") from None
        save_file(
            {"losses": losses.astype(np.float32), "features": features.astype(np.float32)},
            str(out_dir / CURVE_FILE),
        )
        protocol = {
            **finetune_protocol(context.config),
            "fractions": list(self.fractions),
            "smoothing": self.smoothing,
        }
        meta = {
            "curvegrad": protocol,
            "curvegrad_steps": int(tuned.info.get("steps", 0)),
            "embedding_dim": int(features.size),
        }
        write_json(out_dir / "config.json", meta)

    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        return None if isinstance(entry.meta.get("curvegrad"), dict) else "not a CurveGrad entry"

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> np.ndarray:
        tensors = entry.load_tensors(CURVE_FILE)  # non-finite values are rejected there
        if "features" not in tensors or tensors["features"].ndim != 1:
            raise PoolError(f"pool entry {entry.label}: {CURVE_FILE} has no 1-D 'features' tensor")
        return tensors["features"].astype(np.float64)

    def protocol(self, entry: PoolEntry) -> dict[str, Any]:
        return entry.meta["curvegrad"]

    def prepare_target(
        self, target: Target, protocol: dict[str, Any], *, progress: bool = False
    ) -> np.ndarray:
        tuned, _ = target_finetuned(target, protocol, progress=progress)
        return curve_features(
            tuned.info.get("losses") or [], protocol["fractions"], float(protocol["smoothing"])
        )

    def score_group(
        self, target: Target, reference: np.ndarray, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, float]:
        usable = [loaded for loaded in group if loaded.data.shape == reference.shape]
        for loaded in group:
            if loaded.data.shape != reference.shape:
                out.failed[loaded.source] = "curve features differ in length from the target's"
        if not usable:
            return {}
        scores = standardised_distances(reference, np.stack([loaded.data for loaded in usable]))
        return {loaded.source: float(s) for loaded, s in zip(usable, scores, strict=True)}


METHODS = (CurveGrad,)
