"""The one interface every source-selection method implements.

A method may have a P1 step that stores a per-source representation in the pool under its ``kind``
(ESMs for ESM-LogME), and always has a P2 scorer that scores pool entries for one target. Scores are
"higher = better source"; the ranking, duplicate exclusion and reporting around them are shared
(:mod:`taskscout.ranking`), so a method only says how to score.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from taskscout.data.task import Task
from taskscout.encode.encoder import Encoder
from taskscout.errors import DataError, TaskscoutError
from taskscout.pool.store import PoolEntry

if TYPE_CHECKING:
    from taskscout.pool.context import BuildContext


@dataclass
class Target:
    """A target task plus what P2 computes from it once and shares across methods (its base embeddings).

    Entries built with another pooling or truncation of the same base model see the target through
    :meth:`with_encoding`: a view with the same weights and its own embeddings, computed once per view.
    """

    task: Task
    encoder: Encoder
    embed_seconds: float = 0.0  # time spent embedding the target (0 if no method needed it); all views
    _features: np.ndarray | None = field(default=None, repr=False)
    _root: Target | None = field(default=None, repr=False)
    _views: dict[tuple[str, int], Target] = field(default_factory=dict, repr=False)

    def features(self, progress: bool | str = False) -> np.ndarray:
        """Base-model embeddings of the target's inputs, computed on first use."""
        if self._features is None:
            started = time.perf_counter()
            self._features = self.encoder.encode_task(self.task, progress=progress)
            (self._root or self).embed_seconds += time.perf_counter() - started
        return self._features

    @property
    def device(self) -> Any:
        """The torch device the target's encoder runs on; methods that tune or embed for P2 use it too."""
        return "auto" if self.encoder is None else self.encoder.device

    @property
    def encoding(self) -> tuple[str, int] | None:
        """How the target's texts become vectors besides the weights: ``(pooling, max_length)``."""
        if self.encoder is None:  # metadata-only methods rank without loading a model
            return None
        return (self.encoder.spec.pooling, int(self.encoder.spec.max_length))

    def with_encoding(self, pooling: str, max_length: int) -> Target:
        """This target embedded with ``pooling`` and ``max_length`` (same model weights and device).

        ``self`` when they are already this target's; otherwise a view created once and shared, whose
        embedding time counts towards this target's ``embed_seconds``.
        """
        root = self._root or self
        key = (str(pooling), int(max_length))
        if key == root.encoding:
            return root
        if key not in root._views:
            base = root.encoder
            encoder = Encoder.from_module(
                base.model,
                base.tokenizer,
                name=base.name,
                fingerprint=base.spec.fingerprint,
                pooling=key[0],
                max_length=key[1],
                batch_size=base.batch_size,
                cache=base.use_cache,
            )
            root._views[key] = Target(root.task, encoder, _root=root)
        return root._views[key]


def entry_encoding(entry: PoolEntry, default: tuple[str, int]) -> tuple[str, int]:
    """``(pooling, max_length)`` the entry's base embeddings were made with (``default`` where unrecorded).

    Part of the protocol of every entry: a map fitted on pooler outputs says nothing about mean-pooled
    embeddings of the same model, so entries are scored against the target embedded their way.
    """
    pooling = entry.meta.get("base_model_pooling")
    max_length = entry.meta.get("base_model_max_length")
    return (
        str(pooling) if isinstance(pooling, str) and pooling else default[0],
        int(max_length) if isinstance(max_length, int) and max_length > 0 else default[1],
    )


@dataclass
class MethodScores:
    """Scores per source, plus the entries that could not be scored and why."""

    scores: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadedEntry:
    """A pool entry that passed the compatibility check, with what :meth:`SelectionMethod.load_entry` read."""

    entry: PoolEntry
    data: Any = None

    @property
    def source(self) -> str:
        return self.entry.source


def entry_compatibility(entry: PoolEntry, encoder: Encoder) -> str | None:
    """Why ``entry`` cannot be compared with what ``encoder`` produces, or None if it can.

    The one compatibility check of every method: same base model name, same weights (fingerprint) and
    same embedding width, as far as the entry records them.
    """
    if entry.base_model != encoder.name:
        return f"built for base model {entry.base_model!r}, not {encoder.name!r}"
    if entry.fingerprint and entry.fingerprint != encoder.spec.fingerprint:
        return (
            f"built for other weights of {entry.base_model} (fingerprint {entry.fingerprint}, the loaded "
            f"encoder has {encoder.spec.fingerprint})"
        )
    if entry.dim and entry.dim != encoder.dim:
        return f"built for a {entry.dim}-dimensional encoder; the loaded one has {encoder.dim} dimensions"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SelectionMethod:
    """A source-selection method.

    The base class owns the per-entry loop of P2 (:meth:`score`): progress, the compatibility check
    (:func:`entry_compatibility`), loading and validating each entry's arrays, grouping entries by the
    protocol the target must be processed with, the failure list and the finiteness of scores. A method
    implements only what is specific to it:

    - :meth:`check_entry` (optional): a method-specific reason to skip an entry;
    - :meth:`load_entry` (optional): read the entry's files (through :meth:`PoolEntry.load_array` /
      :meth:`PoolEntry.load_tensors`, which verify checksums, dtypes and shapes);
    - :meth:`protocol` (optional): what else (besides the base model, its weights, pooling and
      truncation, which group entries for every method) the target must be processed with;
    - :meth:`prepare_target` (optional): what is computed from the target once per protocol;
    - :meth:`score_group`: the scores of a group of loaded entries;
    - :meth:`combine` (optional): turn raw per-source values into scores across all groups.

    A bad entry never ends a ranking: it goes to ``failed`` with a one-line reason.
    """

    name: str = ""
    kind: str | None = None  # the pool entry kind this method reads; None if it needs no P1 artefact
    description: str = ""
    p1_cost: str = ""
    p2_cost: str = ""
    # Methods whose cached P2 work this one reuses (e.g. the target embedded by every source model): run
    # after them its measured P2 time leaves that work out, so reports add theirs to its cost.
    p2_reuses: tuple[str, ...] = ()
    needs_base_model: bool = True  # compare entries with the target's encoder (False: metadata only)

    def build(self, task: Task, context: BuildContext, out_dir: Path, *, progress: bool = False) -> None:
        """P1: write this method's representation of source ``task`` into ``out_dir``.

        Write the files plus a ``config.json`` of method-specific metadata; the pool build adds the
        shared source metadata, text hashes and checksums. Only methods with a ``kind`` have a P1 step.
        """
        raise NotImplementedError(f"method {self.name!r} has no P1 step")

    # ------------------------------------------------------------------ what a method implements
    def check_entry(self, entry: PoolEntry, target: Target) -> str | None:
        """A method-specific reason why ``entry`` cannot be scored for ``target`` (None: it can)."""
        return None

    def load_entry(self, entry: PoolEntry, target: Target, *, progress: bool = False) -> Any:
        """What scoring needs from ``entry``; raise :class:`PoolError` (or ``ValueError``) for a bad one."""
        return None

    def protocol(self, entry: PoolEntry) -> Any:
        """How the target must be processed to be compared with ``entry`` (JSON-able; None: one group)."""
        return None

    def prepare_target(self, target: Target, protocol: Any, *, progress: bool = False) -> Any:
        """What is computed from the target once per protocol group (e.g. its embedding)."""
        return None

    def score_group(
        self, target: Target, reference: Any, group: list[LoadedEntry], out: MethodScores
    ) -> dict[str, Any]:
        """Raw values of a group's sources (one protocol); per-entry problems may go to ``out.failed``.

        Every method implements it, except combinations of other methods (fusion, ensembles), which
        override :meth:`score` to call their members' loops.
        """
        raise NotImplementedError(f"method {self.name!r} does not score entries itself")

    def combine(self, raw: dict[str, Any]) -> dict[str, float]:
        """Scores from the raw values of all groups (default: the values are the scores)."""
        return raw

    # ------------------------------------------------------------------ the shared loop
    def score(self, target: Target, entries: list[PoolEntry], *, progress: bool = False) -> MethodScores:
        """Score every entry for ``target``; a bad entry goes to ``failed``, the others are scored."""
        out = MethodScores()
        groups: dict[str, tuple[Any, list[LoadedEntry]]] = {}
        seen: set[str] = set()
        bar = tqdm(entries, desc="loading sources", unit="source", disable=not progress, leave=False)
        for entry in bar:
            if entry.source in seen:
                continue  # the same source through another kind of entry: scored once
            seen.add(entry.source)
            problem = entry_compatibility(entry, target.encoder) if self.needs_base_model else None
            problem = problem or self.check_entry(entry, target)
            if problem is not None:
                out.failed[entry.source] = problem
                continue
            # The group: same base model and weights (checked above), same pooling and truncation (the
            # target is embedded once per group) and the same method-specific protocol.
            view = target
            if self.needs_base_model and target.encoder is not None:
                view = target.with_encoding(*entry_encoding(entry, target.encoding))
            try:
                data = self.load_entry(entry, view, progress=progress)
                protocol = self.protocol(entry)
                grouping = [entry.base_model, entry.fingerprint, view.encoding, protocol]
                key = json.dumps(grouping, sort_keys=True, default=str)
            except DataError:
                raise  # a problem of the target, not of this entry
            except (TaskscoutError, ValueError, KeyError, TypeError) as exc:
                out.failed[entry.source] = _one_line(exc)
                continue
            groups.setdefault(key, (view, protocol, []))[2].append(LoadedEntry(entry, data))
        raw: dict[str, Any] = {}
        for view, protocol, group in groups.values():
            try:
                reference = self.prepare_target(view, protocol, progress=progress)
            except DataError:
                raise
            except (TaskscoutError, ValueError, KeyError, TypeError) as exc:
                for loaded in group:
                    out.failed[loaded.source] = f"cannot prepare the target: {_one_line(exc)}"
                continue
            raw.update(self.score_group(view, reference, group, out))
        for source, value in self.combine(raw).items():
            if source in out.failed:
                continue
            if isinstance(value, (int, float, np.floating, np.integer)) and np.isfinite(value):
                out.scores[source] = float(value)
            else:
                out.failed[source] = f"{self.name} score is not finite for this source"
        return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in float64 (inputs flattened); NaN when either vector is zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else float("nan")
