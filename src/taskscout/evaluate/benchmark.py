"""The benchmark: which catalog tasks are targets and sources, and scoring methods against ground truth.

Targets were chosen before any ranking was computed, for variety and cost: small-data problems of
different kinds (sentiment of reviews and of drug reviews, speaker party, news outlet, chat topic, verb
semantics) plus two regression targets (word pleasantness; year of a State of the Union passage). Every
other catalog task is a source. Rankings see exactly the target sample the transfer runs train on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskscout.configs import json_key
from taskscout.data.catalog import same_text_group
from taskscout.data.dedup import overlap_fraction, text_hashes
from taskscout.data.task import Task
from taskscout.errors import PoolError, TaskscoutError
from taskscout.evaluate.groundtruth import GroundTruth
from taskscout.evaluate.metrics import aggregate, evaluate_ranking
from taskscout.evaluate.suites import SMALL_V1
from taskscout.evaluate.transfer import TransferProtocol, target_samples
from taskscout.io import file_lock, read_json, write_json
from taskscout.pool.store import Pool
from taskscout.ranking import DUPLICATE_OVERLAP

BENCHMARK_TARGETS: tuple[str, ...] = SMALL_V1.targets


def benchmark_sources() -> list[str]:
    """small-v1's sources (the first catalog's tasks that are not its targets); see :mod:`.suites`."""
    return list(SMALL_V1.sources)


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
        if source == target or same_text_group(source, target):
            return True
        return overlap_fraction(get(target), get(source)) >= DUPLICATE_OVERLAP

    return is_duplicate


@dataclass
class MethodResult:
    method: str
    per_target: pd.DataFrame  # one row per target: metric columns + p2 seconds
    summary: dict[str, dict[str, float]]
    p2_ms_per_source: float  # measured; see with_reused_costs
    storage_bytes_per_source: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    p2_reused: tuple[str, ...] = ()  # methods whose P2 time is included in p2_ms_per_source


def with_reused_costs(results: Sequence[MethodResult]) -> list[MethodResult]:
    """The results with each method's P2 time as if it ran alone: its measured time plus that of the
    methods whose cached work it reused (``SelectionMethod.p2_reuses``), when they are among ``results``.

    Run after ``logme-full``, frozen transfer measures a few ms per source because the target's features
    under every source model are already cached; on its own it pays the seconds of embedding them, and
    that is the cost a user would see. Idempotent: a result already charged is kept as it is, so every
    report entry point can apply it.
    """
    from taskscout.methods import get_method

    measured = {r.method: r.p2_ms_per_source for r in results if not r.p2_reused}
    out = []
    for r in results:
        if r.p2_reused:  # already charged
            out.append(r)
            continue
        try:
            reuses = tuple(get_method(r.method).p2_reuses)
        except TaskscoutError:  # a plug-in method that is not installed here: its cost as measured
            reuses = ()
        added = tuple(m for m in reuses if m in measured and math.isfinite(measured[m]))
        if not added:
            out.append(r)
            continue
        total = r.p2_ms_per_source + sum(measured[m] for m in added)
        out.append(replace(r, p2_ms_per_source=total, p2_reused=added))
    return out


class ScoreCache:
    """The scores each method gave each benchmark target, kept on disk (JSON) by ``taskscout bench``.

    Rankings do not depend on the ground truth, and P2 of the expensive methods takes minutes per target
    (TuPaTE and TaskEmb tune on the target; the source-model methods embed it with every fine-tuned source
    model, which exists only on the machine that built them). So when the ground truth grows (more seeds,
    more runs), bench re-scores the stored rankings instead of recomputing them, and fusions of stored
    methods cost nothing. A stored ranking is reused only while the protocol and the pool entries it was
    computed from (names and file checksums) are unchanged. Without a pool (``taskscout bench --stored``)
    the stored rankings are re-scored as they are, e.g. on a machine without the source models.

    Every method scores each source independently of the others, so a ranking is also stored per
    source (each source's entry signature): when the pool grows or some entries are rebuilt, only those
    sources are scored and merged with the stored scores of the unchanged ones, and a source whose
    score could not be computed (e.g. its fine-tuned model is not on this machine) is tried again next
    time. This lets the source-model methods be scored source by source while each model exists.
    """

    FORMAT = 1

    def __init__(self, path: str | Path, refresh: Iterable[str] = ()) -> None:
        """``refresh``: methods whose stored rankings are ignored (recomputed and overwritten); the
        members of a fusion named there are refreshed too. Every other stored ranking is kept."""
        from taskscout.methods import get_method
        from taskscout.methods.fusion import RankFusion

        self.path = Path(path)
        self._records = self._read()
        self._refresh: set[str] = set()
        self._put_here: set[str] = set()  # keys computed by this process (fresh even when refreshed)
        for name in refresh:
            self._refresh.add(name)
            selector = get_method(name)
            if isinstance(selector, RankFusion):
                self._refresh.update(m.name for m in selector.members)

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = read_json(self.path)
        except (OSError, ValueError) as exc:
            raise TaskscoutError(
                f"cannot read stored scores {self.path}: {exc}; delete it to recompute"
            ) from None
        return data.get("records", {}) if data.get("format") == self.FORMAT else {}

    @staticmethod
    def signature(method: str, pool: Pool, protocol: TransferProtocol) -> str:
        """What a ranking depends on besides the target: the protocol and the method's pool entries."""
        from taskscout.methods import get_method

        kind = get_method(method).kind
        entries = sorted(pool.entries(kind) if kind else pool.entries(), key=lambda e: (e.kind, e.source))
        parts = [protocol.hash(), method] + [[e.kind, e.source, e.meta.get("files", {})] for e in entries]
        return json_key(parts, 16)

    @staticmethod
    def source_signatures(method: str, pool: Pool, protocol: TransferProtocol) -> dict[str, str]:
        """Per source, what its score depends on: the protocol, the method and that source's entries."""
        from taskscout.methods import get_method

        kind = get_method(method).kind
        entries = sorted(pool.entries(kind) if kind else pool.entries(), key=lambda e: (e.kind, e.source))
        by_source: dict[str, list[Any]] = {}
        for e in entries:
            by_source.setdefault(e.source, []).append([e.kind, e.meta.get("files", {})])
        return {
            source: json_key([protocol.hash(), method, source, parts], 16)
            for source, parts in by_source.items()
        }

    def get(self, method: str, target: str, signature: str | None) -> dict[str, Any] | None:
        """The stored ranking if computed from ``signature`` (``None``: whatever it was computed from)."""
        record = self._records.get(f"{method}|{target}")
        if record is None or signature not in (None, record.get("signature")):
            return None
        if method in self._refresh and f"{method}|{target}" not in self._put_here:
            return None  # stored before this run: recompute it
        return record

    def reusable(self, method: str, target: str, source_signatures: dict[str, str]) -> dict[str, Any] | None:
        """The stored ranking cut to the sources whose entry signature is unchanged (its ``sources``);
        ``None`` when there are none, or when the record predates per-source signatures."""
        record = self.get(method, target, None)
        if record is None or "sources" not in record:
            return None
        kept = {s: sig for s, sig in record["sources"].items() if source_signatures.get(s) == sig}
        if not kept:
            return None
        return {**record, "sources": kept, "scores": {s: v for s, v in record["scores"].items() if s in kept}}

    def methods(self) -> list[str]:
        """Methods with stored rankings, sorted."""
        return sorted({key.split("|", 1)[0] for key in self._records})

    def put(self, method: str, target: str, signature: str, record: dict[str, Any]) -> None:
        # Several bench processes may share the file: merge with what is on disk under a lock.
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            self._records = {**self._read(), f"{method}|{target}": {"signature": signature, **record}}
            self._put_here.add(f"{method}|{target}")
            write_json(self.path, {"format": self.FORMAT, "records": self._records})


def score_target(
    method: str,
    target: str,
    pool: Pool | None,
    protocol: TransferProtocol,
    load: Callable[[str], Task],
    *,
    cache: ScoreCache | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``method``'s ranking of the pool for a benchmark target: scores, P2 seconds and ms per source.

    A fusion is computed from its members' (possibly stored) scores: reciprocal rank fusion needs only
    their rankings, and its cost is the sum of theirs.
    """
    from taskscout.methods import get_method
    from taskscout.methods.fusion import RankFusion, reciprocal_rank_fusion
    from taskscout.ranking import rank

    selector = get_method(method)
    if isinstance(selector, RankFusion):
        members = [
            score_target(m.name, target, pool, protocol, load, cache=cache, progress=progress)
            for m in selector.members
        ]
        shared_kinds = {m.kind: i for i, m in enumerate(selector.members)}  # members of a kind share entries
        return {
            "scores": reciprocal_rank_fusion([m["scores"] for m in members]),
            "p2_seconds": sum(m["p2_seconds"] for m in members),
            "ms_per_source": sum(m["ms_per_source"] for m in members),
            "storage_bytes_per_source": sum(
                members[i]["storage_bytes_per_source"] for i in shared_kinds.values()
            ),
        }
    if pool is None:
        stored = cache.get(method, target, None) if cache is not None else None
        if stored is None:
            raise PoolError(f"no stored ranking of {method} for {target}; run `taskscout bench` with a pool")
        return stored
    signature = ScoreCache.signature(method, pool, protocol) if cache is not None else ""
    if cache is not None and (stored := cache.get(method, target, signature)) is not None:
        return stored
    per_source = ScoreCache.source_signatures(method, pool, protocol)
    earlier = cache.reusable(method, target, per_source) if cache is not None else None
    parts = [earlier] if earlier is not None else []
    todo = [s for s in per_source if earlier is None or s not in earlier["sources"]]
    if todo or not parts:
        train, _ = target_samples(load(target), protocol)
        started = time.perf_counter()
        ranking = rank(
            train,
            pool=pool,
            method=method,
            max_target_rows=len(train),
            progress=progress,
            sources=todo if parts else None,
        )
        parts.append(
            {
                "scores": ranking.scores(),
                "p2_seconds": time.perf_counter() - started,
                "ms_per_source": 1000 * ranking.timings.get("score_per_source", float("nan")),
                # Sources that failed (e.g. a source model not on this machine) are tried again next time.
                "sources": {s: per_source[s] for s in todo if s not in ranking.failed},
            }
        )
    record = {**_merge_parts(parts), "storage_bytes_per_source": storage_per_source(method, pool)}
    if cache is not None:
        cache.put(method, target, signature, record)
    return record


def _merge_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One ranking record from rankings of disjoint sets of sources.

    Scores are per source, so they merge as they are; P2 seconds add up (the target's preparation is
    counted once per part); the cost per source is the mean weighted by the sources each part scored.
    """
    scored = [(len(p["scores"]), p["ms_per_source"]) for p in parts]
    weighted = [(n, ms) for n, ms in scored if n and np.isfinite(ms)]
    total = sum(n for n, _ in weighted)
    return {
        "scores": {s: v for p in parts for s, v in p["scores"].items()},
        "p2_seconds": sum(p["p2_seconds"] for p in parts),
        "ms_per_source": sum(n * ms for n, ms in weighted) / total if total else float("nan"),
        "sources": {s: sig for p in parts for s, sig in p["sources"].items()},
    }


def storage_per_source(method: str, pool: Pool) -> float:
    """Mean bytes of a source's P1 entry files for ``method`` (summed over the kinds an ensemble reads)."""
    from taskscout.methods import get_method

    selector = get_method(method)
    kinds = {m.kind for m in getattr(selector, "members", ())} or {selector.kind}
    total = 0.0
    for kind in sorted(k for k in kinds if k):
        entries = pool.entries(kind)
        sizes = [sum((e.path / f).stat().st_size for f in e.meta.get("files", {})) for e in entries]
        total += float(np.mean(sizes)) if sizes else 0.0
    return total


def evaluate_method(
    method: str,
    ground_truth: GroundTruth,
    pool: Pool | None,
    protocol: TransferProtocol,
    load: Callable[[str], Task],
    *,
    targets: list[str] | None = None,
    cache: ScoreCache | None = None,
    progress: bool = False,
) -> MethodResult:
    """Rank the pool for every ground-truth target with ``method`` and score the rankings.

    With ``pool=None`` the rankings stored in ``cache`` are scored as they are.
    """
    rows, all_scores, ms, storage = [], {}, [], []
    for target in targets or ground_truth.complete_targets():
        record = score_target(method, target, pool, protocol, load, cache=cache, progress=progress)
        scores = record["scores"]
        all_scores[target] = scores
        metrics = evaluate_ranking(
            scores, ground_truth.truth(target), ground_truth.baseline(target), target=target
        )
        ms.append(record["ms_per_source"])
        storage.append(record["storage_bytes_per_source"])
        rows.append(
            {"target": target, **metrics, "p2_seconds": record["p2_seconds"], "sources_ranked": len(scores)}
        )
    per_target = pd.DataFrame(rows)
    metric_columns = [c for c in per_target.columns if c not in ("target", "p2_seconds", "sources_ranked")]
    summary = aggregate({r["target"]: {m: r[m] for m in metric_columns} for r in rows})
    return MethodResult(
        method=method,
        per_target=per_target,
        summary=summary,
        p2_ms_per_source=float(np.nanmean(ms)) if ms else float("nan"),
        storage_bytes_per_source=float(np.mean(storage)) if storage else 0.0,
        scores=all_scores,
    )
