"""P2: rank a pool's sources for a target task.

``rank`` loads and validates the target, caps it (the ESM-LogME protocol uses at most 1,000 target
rows), embeds it once, lets the chosen method score every compatible pool entry, excludes sources that
are near-duplicates of the target, and returns a :class:`Ranking`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskscout.data.catalog import same_text_group
from taskscout.data.dedup import overlap_fraction, text_hashes
from taskscout.data.task import Task
from taskscout.errors import DataError, PoolError
from taskscout.pool.schema import entry_name
from taskscout.pool.store import Pool, PoolEntry, open_pool

DUPLICATE_OVERLAP = 0.5  # a source holding at least half of the target's texts is a duplicate of it
MIN_TARGET_ROWS = 10


@dataclass
class RankedSource:
    rank: int
    source: str
    score: float
    language: str
    task_type: str
    num_examples: int


@dataclass
class Ranking:
    """A ranked list of sources for one target, plus what was left out and why."""

    target: str
    method: str
    model: str
    pool: str
    sources: list[RankedSource]
    excluded: dict[str, str] = field(default_factory=dict)  # near-duplicates of the target
    failed: dict[str, str] = field(default_factory=dict)  # entries that could not be scored
    target_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # about the target and the pool (shown by the CLI)

    def __len__(self) -> int:
        return len(self.sources)

    def top(self, k: int) -> list[RankedSource]:
        return self.sources[:k]

    def scores(self) -> dict[str, float]:
        return {s.source: s.score for s in self.sources}

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame(
            [vars(s) for s in self.sources],
            columns=["rank", "source", "score", "language", "task_type", "num_examples"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "method": self.method,
            "model": self.model,
            "pool": self.pool,
            "target_rows": self.target_rows,
            "ranking": [vars(s) for s in self.sources],
            "excluded": self.excluded,
            "failed": self.failed,
            "warnings": self.warnings,
            "timings": self.timings,
        }


def validate_target(task: Task) -> None:
    """Reject targets no ranking can be computed for, with a message that says what to do."""
    if len(task) < MIN_TARGET_ROWS:
        raise DataError(f"target {task.name!r} has {len(task)} rows; at least {MIN_TARGET_ROWS} are needed")
    if task.is_classification:
        present = np.unique(task.labels)
        if len(present) < 2:
            only = (task.label_names or ["?"])[int(present[0])] if len(present) else "none"
            raise DataError(
                f"target {task.name!r} has a single class ({only!r}); a classification target "
                "needs at least 2 classes"
            )
        counts = np.bincount(np.asarray(task.labels, dtype=np.int64))
        counts = counts[counts > 0]
        singletons = int(np.sum(counts == 1))
        if singletons * 2 > len(counts):
            raise DataError(
                f"target {task.name!r}: {singletons} of its {len(counts)} classes have a single row, so the "
                "label looks like an id or free text; pick the label column with --label-column"
            )
    elif np.any(task.labels.reshape(len(task), -1).std(axis=0) == 0):
        raise DataError(f"target {task.name!r} has a constant regression label; nothing can be ranked for it")


def target_warnings(task: Task, loader_warnings: list[str] = ()) -> list[str]:
    """The loader's warnings plus the task's own, with per-class notes summarised in one line."""
    notes = list(loader_warnings)
    small = []
    for note in task.warnings():
        if note.startswith("class ") and " has " in note:
            small.append(note)
        else:
            notes.append(note)
    if small:
        shown = "; ".join(small[:3]) + (f"; ... ({len(small) - 3} more)" if len(small) > 3 else "")
        notes.append(f"{len(small)} classes have fewer than 10 rows, so their scores are noisy: {shown}")
    return notes


def find_duplicates(
    task: Task, entries: list[PoolEntry], threshold: float = DUPLICATE_OVERLAP
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Sources whose texts cover at least ``threshold`` of the target's texts (or that are the target).

    Returns ``(duplicates, broken, warnings)``: entries whose stored hashes cannot be read are broken
    (they cannot be checked, so they are not ranked); entries without hashes are kept with a warning that
    duplicate exclusion is off for them.
    """
    target_hashes = text_hashes(task.texts, task.text_pairs)
    try:
        own_names = {task.name, entry_name(task.name)}
    except PoolError:
        own_names = {task.name}
    found: dict[str, str] = {}
    broken: dict[str, str] = {}
    notes: list[str] = []
    for entry in entries:
        if entry.source in own_names:
            found[entry.source] = "is the target task"
            continue
        if same_text_group(entry.source, task.name):
            found[entry.source] = "is built from the same texts as the target (catalog text group)"
            continue
        try:
            hashes = entry.text_hashes()
        except PoolError as exc:
            broken[entry.source] = f"cannot check it for duplicates of the target: {exc}"
            continue
        if hashes is None:
            notes.append(
                f"{entry.label} stores no text hashes: duplicate exclusion is off for it (rebuild the entry)"
            )
            continue
        overlap = overlap_fraction(target_hashes, hashes, float(entry.meta.get("hash_sample_fraction", 1.0)))
        if overlap >= threshold:
            found[entry.source] = f"shares {overlap:.0%} of the target's texts"
    return found, broken, notes


def _choose_model(pool: Pool, entries: list[PoolEntry], model: str | None) -> str:
    """The base model to rank with: ``model``, or the pool's build model, or the most common one."""
    models = sorted({e.base_model for e in entries})
    if model is not None:
        if model not in models:
            raise PoolError(
                f"pool {pool.path} has no entries for base model {model!r} (it holds {', '.join(models)}); "
                "build a pool for that model with `taskscout pool build --model`"
            )
        return model
    built_with = (pool.info.get("build") or {}).get("config", {}).get("model")
    if built_with in models:
        return str(built_with)
    counts = {m: sum(e.base_model == m for e in entries) for m in models}
    return max(models, key=lambda m: (counts[m], m == models[0]))


def rank(
    target: str | Path | Task | pd.DataFrame,
    pool: str | Path | Pool | None = None,
    *,
    method: str = "esm-logme",
    model: str | None = None,
    top: int | None = None,
    keep_duplicates: bool = False,
    max_target_rows: int = 1000,
    seed: int = 0,
    progress: bool = False,
    **load_options: Any,
) -> Ranking:
    """Rank the pool's sources for ``target`` (a Task, DataFrame, file path, ``catalog:NAME`` or ``hf:ID``).

    Args:
        pool: pool directory or :class:`Pool`; default: the built-in pool.
        method: selection method name (see ``taskscout methods``).
        model: base encoder; default: the one the pool was built with.
        top: keep only the best ``top`` sources.
        keep_duplicates: keep sources that are near-duplicates of the target.
        max_target_rows: stratified cap on target rows (the ESM-LogME protocol uses 1,000).
        load_options: column choices etc. passed to :func:`taskscout.data.loaders.load_task`.
    """
    from taskscout.encode.encoder import Encoder
    from taskscout.methods import get_method
    from taskscout.methods.base import Target

    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise DataError(f"top must be a positive number of sources, got {top!r}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    notes: list[str] = []
    if isinstance(target, Task):
        task = target
    else:
        from taskscout.data.loaders import load_task_with_report

        task, report = load_task_with_report(target, **load_options)
        notes += report.warnings
    validate_target(task)
    notes = target_warnings(task, notes)
    # Repeated rows add no information and, with fewer rows than dimensions, make LogME's evidence
    # unbounded (the labels become exactly reproducible by rank-deficient features).
    deduplicated = task.deduplicate()
    timings["duplicate_rows_dropped"] = len(task) - len(deduplicated)
    task = deduplicated.subsample(max_target_rows, seed=seed)
    validate_target(task)
    timings["load_target"] = time.perf_counter() - started

    pool_obj = pool if isinstance(pool, Pool) else open_pool(pool)
    selector = get_method(method)
    entries = pool_obj.entries(selector.kind) if selector.kind else pool_obj.entries()
    failed = dict(pool_obj.problems)  # index rows that failed validation, by name
    if not entries:
        raise PoolError(
            f"pool {pool_obj.path} has no {selector.kind or ''} entries; build it with `taskscout pool build`"
        )
    model = _choose_model(pool_obj, entries, model)
    for entry in entries:
        if entry.base_model != model:
            failed.setdefault(entry.source, f"built for base model {entry.base_model!r}, not {model!r}")
    entries = [e for e in entries if e.base_model == model]
    first = time.perf_counter()
    pooling = str(entries[0].meta.get("base_model_pooling", "mean"))
    max_length = int(entries[0].meta.get("base_model_max_length", 128))
    encoder = Encoder(model, pooling=pooling, max_length=max_length)
    timings["load_model"] = time.perf_counter() - first
    built_for = sorted({e.fingerprint for e in entries if e.fingerprint})
    if built_for and encoder.spec.fingerprint not in built_for:
        raise PoolError(
            f"the encoder loaded for {model!r} has fingerprint {encoder.spec.fingerprint}, but the pool was "
            f"built with {', '.join(built_for)}: other weights (is a local directory named {model!r} "
            "shadowing the model?); rank from another directory or rebuild the pool"
        )

    if keep_duplicates:
        excluded: dict[str, str] = {}
    else:
        excluded, broken, hash_notes = find_duplicates(task, entries)
        failed.update(broken)
        notes += hash_notes
    candidates = [e for e in entries if e.source not in excluded and e.source not in failed]
    context = Target(task, encoder)
    first = time.perf_counter()
    result = selector.score(context, candidates, progress=progress)
    failed.update(result.failed)
    for name in result.scores:
        failed.pop(name, None)  # scored through another of its entries
    # Methods embed the target lazily (some need no embeddings); report embedding and scoring apart.
    timings["embed_target"] = context.embed_seconds
    timings["score"] = time.perf_counter() - first - context.embed_seconds
    timings["score_per_source_ms"] = 1000 * timings["score"] / max(1, len(result.scores))

    by_name = {e.source: e for e in candidates}
    order = sorted(result.scores.items(), key=lambda kv: (-kv[1], kv[0]))
    if top is not None:
        order = order[:top]
    ranked = [
        RankedSource(
            rank=i + 1,
            source=name,
            score=score,
            language=str(by_name[name].meta.get("language", "")),
            task_type=str(by_name[name].meta.get("task_type", "")),
            num_examples=int(by_name[name].meta.get("num_examples", 0)),
        )
        for i, (name, score) in enumerate(order)
    ]
    timings["total"] = time.perf_counter() - started
    return Ranking(
        target=task.name,
        method=selector.name,
        model=encoder.name,
        pool=str(pool_obj.path),
        sources=ranked,
        excluded=excluded,
        failed=failed,
        target_rows=len(task),
        timings={k: round(v, 4) for k, v in timings.items()},
        warnings=notes,
    )
