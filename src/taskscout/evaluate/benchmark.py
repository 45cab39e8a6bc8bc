"""The benchmark: which catalog tasks are targets and sources, and scoring methods against ground truth.

Targets were chosen before any ranking was computed, for variety and cost: small-data problems of
different kinds (sentiment of reviews and of drug reviews, speaker party, news outlet, chat topic, verb
semantics) plus two regression targets (word pleasantness; year of a State of the Union passage). Every
other catalog task is a source. Rankings see exactly the target sample the transfer runs train on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taskscout.data.dedup import overlap_fraction, text_hashes
from taskscout.data.task import Task
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.metrics import aggregate, evaluate_ranking
from taskscout.evaluate.transfer import TransferProtocol, target_samples
from taskscout.pool.store import Pool
from taskscout.rank import DUPLICATE_OVERLAP

BENCHMARK_TARGETS: tuple[str, ...] = (
    "rt_sentiment",
    "drugreview_sentiment",
    "debates2016_party",
    "newsarticles_source",
    "chatterbot_topic_en",
    "wordnet_verb_supersense",
    "whissell_pleasantness",
    "sotu_year",
)


def benchmark_sources() -> list[str]:
    """Every catalog task that is not a benchmark target."""
    from taskscout.data import catalog

    return [e.name for e in catalog.list_tasks() if e.name not in BENCHMARK_TARGETS]


def catalog_loader() -> Callable[[str], Task]:
    """``name -> Task`` for catalog tasks, memoised (a benchmark loads each task many times)."""
    from taskscout.data import catalog

    cache: dict[str, Task] = {}

    def load(name: str) -> Task:
        if name not in cache:
            cache[name] = catalog.load(name, auto_fetch=True)
        return cache[name]

    return load


def duplicate_checker(load: Callable[[str], Task]) -> Callable[[str, str], bool]:
    """``(source, target) -> bool``: same task, or the source holds most of the target's texts."""
    hashes: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in hashes:
            task = load(name)
            hashes[name] = text_hashes(task.texts, task.text_pairs)
        return hashes[name]

    def is_duplicate(source: str, target: str) -> bool:
        return source == target or overlap_fraction(get(target), get(source)) >= DUPLICATE_OVERLAP

    return is_duplicate


@dataclass
class MethodResult:
    method: str
    per_target: pd.DataFrame  # one row per target: metric columns + p2 seconds
    summary: dict[str, dict[str, float]]
    p2_ms_per_source: float
    storage_bytes_per_source: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_method(
    method: str,
    ground_truth: GroundTruth,
    pool: Pool,
    protocol: TransferProtocol,
    load: Callable[[str], Task],
    *,
    targets: list[str] | None = None,
    progress: bool = False,
) -> MethodResult:
    """Rank the pool for every ground-truth target with ``method`` and score the rankings."""
    from taskscout.methods import get_method
    from taskscout.rank import rank

    rows, all_scores, ms = [], {}, []
    for target in targets or ground_truth.complete_targets():
        train, _ = target_samples(load(target), protocol)
        started = time.perf_counter()
        ranking = rank(train, pool, method=method, max_target_rows=len(train), progress=progress)
        elapsed = time.perf_counter() - started
        scores = ranking.scores()
        all_scores[target] = scores
        metrics = evaluate_ranking(
            scores, ground_truth.truth(target), ground_truth.baseline(target), target=target
        )
        ms.append(ranking.timings.get("score_per_source_ms", float("nan")))
        rows.append({"target": target, **metrics, "p2_seconds": elapsed, "sources_ranked": len(scores)})
    per_target = pd.DataFrame(rows)
    metric_columns = [c for c in per_target.columns if c not in ("target", "p2_seconds", "sources_ranked")]
    summary = aggregate({r["target"]: {m: r[m] for m in metric_columns} for r in rows})
    selector = get_method(method)
    entries = pool.entries(selector.kind) if selector.kind else []
    storage = [sum((e.path / f).stat().st_size for f in e.meta.get("files", {})) for e in entries]
    return MethodResult(
        method=method,
        per_target=per_target,
        summary=summary,
        p2_ms_per_source=float(np.nanmean(ms)) if ms else float("nan"),
        storage_bytes_per_source=float(np.mean(storage)) if storage else 0.0,
        scores=all_scores,
    )
