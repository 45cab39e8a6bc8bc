"""P2: rank a pool's sources for a target task.

``rank`` loads and validates the target, caps it (the ESM-LogME protocol uses at most 1,000 target
rows), embeds it once, lets the chosen method score every compatible pool entry, excludes sources that
are near-duplicates of the target, and returns a :class:`Ranking`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from taskscout.data.catalog import same_text_group
from taskscout.data.dedup import overlap_fraction, text_hashes
from taskscout.data.loaders import LoadOptions, load_task_with_report
from taskscout.data.task import Task
from taskscout.errors import DataError, PoolError, TaskscoutError
from taskscout.pool.schema import entry_name
from taskscout.pool.store import Pool, PoolEntry, open_pool

if TYPE_CHECKING:
    from taskscout.methods.base import SelectionMethod

__all__ = ["DUPLICATE_OVERLAP", "RankedSource", "Ranking", "find_duplicates", "rank", "validate_target"]

DUPLICATE_OVERLAP = 0.5  # a source holding at least half of the target's texts is a duplicate of it
MIN_TARGET_ROWS = 10


@dataclass
class RankedSource:
    """One source in a :class:`Ranking`.

    Attributes:
        rank: 1 for the best source.
        source: the source task's name (its pool entry name).
        score: the method's score; higher means a better source. Scores of different methods are on
            different scales; compare ranks, not scores, across methods.
        language: ISO 639-1 code of the source's texts (``""`` if unknown).
        task_type: ``"classification"`` or ``"regression"``.
        num_examples: rows of the source task.
    """

    rank: int
    source: str
    score: float
    language: str
    task_type: str
    num_examples: int


_SOURCE_FIELDS = ("rank", "source", "score", "language", "task_type", "num_examples")


@dataclass
class Ranking:
    """A ranked list of sources for one target, plus what was left out and why.

    Attributes:
        target: the target task's name.
        method: the selection method's name.
        model: the base encoder the pool entries and the target were compared with.
        pool: the pool directory.
        sources: the ranked sources, best first.
        excluded: near-duplicates of the target, by name, with the reason (not ranked).
        failed: pool entries that could not be scored, by name, with a one-line reason.
        target_rows: target rows used (after dropping repeated rows and the stratified cap).
        duplicate_rows_dropped: target rows dropped before ranking as repeats (same input and label, or
            inputs the encoder cannot tell apart, whatever their labels).
        timings: seconds spent per phase (``load_target``, ``load_model``, ``embed_target``, ``score``,
            ``score_per_source``, ``total``).
        warnings: notes about the target and the pool (the CLI prints them).
        device: where the models ran (``cpu``, ``cuda:0``, ...; empty in rankings from older versions).
    """

    target: str
    method: str
    model: str
    pool: str
    sources: list[RankedSource]
    excluded: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    target_rows: int = 0
    duplicate_rows_dropped: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    device: str = ""

    def __len__(self) -> int:
        return len(self.sources)

    def top(self, k: int) -> list[RankedSource]:
        """The best ``k`` sources."""
        return self.sources[:k]

    def scores(self) -> dict[str, float]:
        """Score per source name."""
        return {s.source: s.score for s in self.sources}

    def to_pandas(self) -> pd.DataFrame:
        """The ranked sources as a DataFrame, one row per source, best first."""
        return pd.DataFrame([vars(s) for s in self.sources], columns=list(_SOURCE_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "target": self.target,
            "method": self.method,
            "model": self.model,
            "pool": self.pool,
            "target_rows": self.target_rows,
            "duplicate_rows_dropped": self.duplicate_rows_dropped,
            "ranking": [vars(s) for s in self.sources],
            "excluded": self.excluded,
            "failed": self.failed,
            "warnings": self.warnings,
            "timings": self.timings,
            "device": self.device,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The ranking as JSON text; with ``path``, also written there (atomically).

        Args:
            path: a file to write the JSON to, or ``None``.

        Returns:
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        if path is not None:
            from taskscout.io import write_bytes

            write_bytes(Path(path), text.encode("utf-8"))
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ranking:
        """The ranking a :meth:`to_dict` dict describes.

        Raises:
            DataError: a field is missing or has the wrong type (named in the message).
        """
        if not isinstance(data, dict):
            raise DataError(f"a ranking must be a JSON object, got {type(data).__name__}")
        try:
            sources = [
                RankedSource(
                    rank=int(row["rank"]),
                    source=str(row["source"]),
                    score=float(row["score"]),
                    language=str(row["language"]),
                    task_type=str(row["task_type"]),
                    num_examples=int(row["num_examples"]),
                )
                for row in data["ranking"]
            ]
            out = cls(
                target=str(data["target"]),
                method=str(data["method"]),
                model=str(data["model"]),
                pool=str(data["pool"]),
                sources=sources,
                excluded={str(k): str(v) for k, v in data.get("excluded", {}).items()},
                failed={str(k): str(v) for k, v in data.get("failed", {}).items()},
                target_rows=int(data.get("target_rows", 0)),
                duplicate_rows_dropped=int(data.get("duplicate_rows_dropped", 0)),
                timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
                warnings=[str(w) for w in data.get("warnings", [])],
                device=str(data.get("device", "")),
            )
        except KeyError as exc:
            raise DataError(f"ranking JSON lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"ranking JSON has a field of the wrong type: {exc}") from None
        return out

    @classmethod
    def from_json(cls, source: str | Path) -> Ranking:
        """The ranking in JSON text or in a JSON file written by :meth:`to_json`.

        Args:
            source: JSON text, or the path of a file holding it.

        Raises:
            DataError: the file cannot be read, is not JSON, or is not a ranking.
        """
        text = str(source)
        if isinstance(source, Path) or not text.lstrip().startswith("{"):
            try:
                text = Path(source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read ranking {source}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"ranking JSON is not valid JSON: {exc}") from None
        return cls.from_dict(data)


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
    imported: list[str] = []
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
            if entry.meta.get("origin_format") == "hfselect":
                imported.append(entry.source)  # hfselect stores none; summarised in one line below
                continue
            notes.append(
                f"{entry.label} stores no text hashes: duplicate exclusion is off for it (rebuild the entry)"
            )
            continue
        overlap = overlap_fraction(target_hashes, hashes, float(entry.meta.get("hash_sample_fraction", 1.0)))
        if overlap >= threshold:
            found[entry.source] = f"shares {overlap:.0%} of the target's texts"
    if imported:
        shown = ", ".join(imported[:3]) + (f", ... ({len(imported) - 3} more)" if len(imported) > 3 else "")
        notes.append(
            f"{len(imported)} sources imported from hfselect store no text hashes (hfselect keeps none): "
            f"duplicate exclusion is off for them ({shown})"
        )
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
    *,
    pool: str | Path | Pool | None = None,
    method: str | SelectionMethod = "esm-logme",
    model: str | None = None,
    top: int | None = None,
    load: LoadOptions | dict[str, Any] | None = None,
    keep_duplicates: bool = False,
    max_target_rows: int = 1000,
    seed: int = 0,
    progress: bool = True,
    device: str = "auto",
    sources: Collection[str] | None = None,
) -> Ranking:
    """Rank the pool's sources for ``target``: which dataset to fine-tune on first.

    Loads and validates the target (a catalog target is fetched on first use), drops repeated rows,
    caps it, embeds it once, lets the method score every compatible pool entry, excludes sources that
    are near-duplicates of the target and returns the sources best first.

    Args:
        target: a :class:`~taskscout.data.task.Task`, a DataFrame, a file path, ``"catalog:NAME"`` or
            ``"hf:ID"``.
        pool: a pool directory or :class:`~taskscout.pool.store.Pool`; default: the built-in pool.
        method: a method name (see :func:`taskscout.list_methods`, ``fusion:A+B`` fuses methods) or a
            configured :class:`~taskscout.methods.base.SelectionMethod` instance.
        model: the base encoder; default: the one the pool was built with.
        top: keep only the best ``top`` sources.
        load: how to read ``target`` (columns, task type, split, size limits): a
            :class:`~taskscout.data.loaders.LoadOptions` or a dict of its fields.
        keep_duplicates: keep sources that are near-duplicates of the target.
        max_target_rows: stratified cap on target rows (the ESM-LogME protocol uses 1,000).
        seed: seed of the stratified cap.
        progress: show progress bars on stderr; ``False`` is silent, also for the libraries below
            (transformers' weight-loading bars and warnings, download bars).
        device: where the target is embedded and where methods that tune or embed run (``auto``,
            ``cpu``, ``cuda[:i]``, ``mps``; see :mod:`taskscout.devices`); recorded in the ranking.
        sources: rank only these of the pool's sources (default: all of them).

    Returns:
        The :class:`Ranking`.

    Raises:
        DataError: the target cannot be read or cannot be ranked (one class, too few rows, ...).
        PoolError: the pool has no usable entries, or none for the chosen base model.
        TaskscoutError: an unknown method name, or another problem the message names.
    """
    from taskscout.progress import library_output

    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise DataError(f"top must be a positive number of sources, got {top!r}")
    options = LoadOptions.coerce(load)
    with library_output(progress):
        return _rank(
            target,
            pool,
            method,
            model,
            top,
            options,
            keep_duplicates,
            max_target_rows,
            seed,
            progress,
            device,
            None if sources is None else frozenset(sources),
        )


def _rank(
    target: str | Path | Task | pd.DataFrame,
    pool: str | Path | Pool | None,
    method: str | SelectionMethod,
    model: str | None,
    top: int | None,
    options: LoadOptions,
    keep_duplicates: bool,
    max_target_rows: int,
    seed: int,
    progress: bool,
    device: str = "auto",
    sources: frozenset[str] | None = None,
) -> Ranking:
    from taskscout.devices import resolve_device
    from taskscout.encode.encoder import Encoder
    from taskscout.methods import get_method
    from taskscout.methods.base import SelectionMethod, Target

    resolve_device(device)  # a device this machine lacks fails before the target is read
    timings: dict[str, float] = {}
    started = time.perf_counter()
    notes: list[str] = []
    if isinstance(target, Task):
        task = target
    else:
        task, report = load_task_with_report(target, **options.as_kwargs(), fetch=True, progress=progress)
        notes += report.warnings
    validate_target(task)
    notes = target_warnings(task, notes)
    # Repeated rows add no information and, with fewer rows than dimensions, make LogME's evidence
    # unbounded (the labels become exactly reproducible by rank-deficient features).
    deduplicated = task.deduplicate()
    duplicate_rows = len(task) - len(deduplicated)
    task = deduplicated.subsample(max_target_rows, seed=seed)
    validate_target(task)
    timings["load_target"] = time.perf_counter() - started

    pool_obj = pool if isinstance(pool, Pool) else open_pool(pool)
    if isinstance(method, SelectionMethod):
        selector = method
    elif isinstance(method, str):
        selector = get_method(method)
    else:
        raise TaskscoutError(
            f"method must be a method name or a SelectionMethod, got {type(method).__name__}"
        )
    entries = pool_obj.entries(selector.kind) if selector.kind else pool_obj.entries()
    failed = dict(pool_obj.problems)  # index rows that failed validation, by name
    if sources is not None:
        entries = [e for e in entries if e.source in sources]
    if not entries:
        chosen = f" for the sources {', '.join(sorted(sources))}" if sources is not None else ""
        raise PoolError(
            f"pool {pool_obj.path} has no {selector.kind or ''} entries{chosen}; build them with "
            "`taskscout pool build`"
        )
    model = _choose_model(pool_obj, entries, model)
    for entry in entries:
        if entry.base_model != model:
            failed.setdefault(entry.source, f"built for base model {entry.base_model!r}, not {model!r}")
    entries = [e for e in entries if e.base_model == model]
    first = time.perf_counter()
    # The encoder of the first entry; entries embedded another way (pooling, truncation) are scored
    # against views of the same weights (methods.base: Target.with_encoding).
    pooling = str(entries[0].meta.get("base_model_pooling", "mean"))
    max_length = int(entries[0].meta.get("base_model_max_length", 128))
    encoder = Encoder(model, pooling=pooling, max_length=max_length, device=device)
    timings["load_model"] = time.perf_counter() - first
    built_for = sorted({e.fingerprint for e in entries if e.fingerprint})
    if built_for and encoder.spec.fingerprint not in built_for:
        raise PoolError(
            f"the encoder loaded for {model!r} has fingerprint {encoder.spec.fingerprint}, but the pool was "
            f"built with {', '.join(built_for)}: other weights (is a local directory named {model!r} "
            "shadowing the model?); rank from another directory or rebuild the pool"
        )

    # Rows the encoder cannot tell apart (same tokens; see Encoder.distinct_rows) have equal features
    # whatever their labels; with fewer rows than dimensions they too leave LogME's evidence unbounded.
    distinct = encoder.distinct_rows(task.texts, task.text_pairs)
    if len(distinct) < len(task):
        duplicate_rows += len(task) - len(distinct)
        task = task.select(distinct)
        validate_target(task)

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
    timings["score_per_source"] = timings["score"] / max(1, len(result.scores))

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
        duplicate_rows_dropped=duplicate_rows,
        timings={k: round(v, 6) for k, v in timings.items()},
        warnings=notes,
        device=str(encoder.device),
    )
