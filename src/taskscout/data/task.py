"""The labelled text task: the one object every part of taskscout passes around.

A :class:`Task` holds inputs (single texts, or text pairs), labels and what they mean. Labels are stored
as numbers: class ids (``int64``, with ``label_names``) for classification, ``float64`` of shape ``(n,)`` or
``(n, k)`` for (multi-output) regression. Splits and subsamples are deterministic functions of a seed, so
two runs of an experiment see the same rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from taskscout.errors import DataError

TaskType = Literal["classification", "regression"]


@dataclass(frozen=True)
class Provenance:
    """Where a task's data came from: enough to fetch the same bytes again and check them."""

    registry: str = ""  # "pypi", "npm", "debian", "file", "dataframe", "huggingface"
    package: str = ""
    version: str = ""
    sha256: str = ""
    file: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass
class Task:
    """A labelled text task.

    Attributes:
        name: short identifier (``rt_sentiment``, or the file stem for user files).
        texts: the first (or only) text of every example.
        labels: class ids (classification) or float targets (regression, ``(n,)`` or ``(n, k)``).
        task_type: ``"classification"`` or ``"regression"``.
        text_pairs: the second text of every example for pair tasks, else ``None``.
        label_names: class names, indexed by class id (classification only).
        language: ISO 639-1 code, ``"multi"`` for mixed-language tasks, ``""`` if unknown.
        provenance: where the data came from.
        licence: a short note on the licence of the data.
        target_names: names of the regression outputs.
    """

    name: str
    texts: list[str]
    labels: np.ndarray
    task_type: TaskType
    text_pairs: list[str] | None = None
    label_names: list[str] | None = None
    language: str = ""
    provenance: Provenance = field(default_factory=Provenance)
    licence: str = ""
    target_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.texts = [str(t) for t in self.texts]
        if self.text_pairs is not None:
            self.text_pairs = [str(t) for t in self.text_pairs]
            if len(self.text_pairs) != len(self.texts):
                raise DataError(
                    f"task {self.name!r}: {len(self.texts)} texts but {len(self.text_pairs)} text pairs"
                )
        if self.task_type not in ("classification", "regression"):
            raise DataError(f"task {self.name!r}: unknown task type {self.task_type!r}")
        labels = np.asarray(self.labels)
        if self.task_type == "classification":
            if labels.ndim != 1:
                raise DataError(f"task {self.name!r}: classification labels must be one column")
            labels = labels.astype(np.int64)
            if self.label_names is None:
                self.label_names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.label_names)):
                raise DataError(f"task {self.name!r}: label ids outside 0..{len(self.label_names) - 1}")
        else:
            labels = labels.astype(np.float64)
            if labels.ndim not in (1, 2):
                raise DataError(f"task {self.name!r}: regression labels must be (n,) or (n, k)")
            if not np.all(np.isfinite(labels)):
                raise DataError(f"task {self.name!r}: regression labels contain NaN or infinite values")
        if len(labels) != len(self.texts):
            raise DataError(f"task {self.name!r}: {len(self.texts)} texts but {len(labels)} labels")
        self.labels = labels

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pair(self) -> bool:
        """Whether every example is a pair of texts."""
        return self.text_pairs is not None

    @property
    def is_classification(self) -> bool:
        """Whether the labels are class ids (else regression values)."""
        return self.task_type == "classification"

    @property
    def num_classes(self) -> int:
        """Number of classes (classification) or number of regression outputs."""
        if self.is_classification:
            return len(self.label_names or [])
        return 1 if self.labels.ndim == 1 else int(self.labels.shape[1])

    def fingerprint(self) -> str:
        """A content hash of inputs and labels (used for caching and duplicate detection)."""
        digest = hashlib.sha256()
        digest.update(self.task_type.encode())
        for i, text in enumerate(self.texts):
            digest.update(text.encode("utf-8", "replace"))
            digest.update(b"\x1f")
            if self.text_pairs is not None:
                digest.update(self.text_pairs[i].encode("utf-8", "replace"))
            digest.update(b"\x1e")
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ selection
    def select(self, indices: np.ndarray | list[int], name: str | None = None) -> Task:
        """A new task holding the rows at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(
            self,
            name=name or self.name,
            texts=[self.texts[i] for i in idx],
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in idx],
            labels=self.labels[idx],
        )

    def deduplicate(self) -> Task:
        """The task without repeated (input, label) rows; the first occurrence is kept."""
        seen: set[tuple] = set()
        keep = []
        for i, text in enumerate(self.texts):
            key = (text, None if self.text_pairs is None else self.text_pairs[i], self.labels[i].tobytes())
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self if len(keep) == len(self) else self.select(keep)

    def split(self, test_size: float | int = 0.2, seed: int = 0, stratify: bool = True) -> tuple[Task, Task]:
        """Deterministic train/test split; stratified by class for classification.

        ``test_size`` is a fraction (0 < x < 1) or a number of rows.
        """
        n = len(self)
        n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
        if not 0 < n_test < n:
            raise DataError(f"task {self.name!r}: cannot split {n} rows into a test set of {n_test}")
        order = (
            self._stratified_order(seed) if (stratify and self.is_classification) else _permutation(n, seed)
        )
        test_idx = np.sort(order[:n_test])
        train_idx = np.sort(order[n_test:])
        return self.select(train_idx, f"{self.name}"), self.select(test_idx, f"{self.name}")

    def subsample(self, max_rows: int | None, seed: int = 0, stratify: bool = True) -> Task:
        """At most ``max_rows`` rows, chosen deterministically; class proportions kept when stratified.

        Returns ``self`` unchanged when the task already has at most ``max_rows`` rows.
        """
        if max_rows is None or len(self) <= max_rows:
            return self
        if max_rows < 1:
            raise DataError(f"task {self.name!r}: max_rows must be positive, got {max_rows}")
        order = (
            self._stratified_order(seed)
            if (stratify and self.is_classification)
            else _permutation(len(self), seed)
        )
        return self.select(np.sort(order[:max_rows]))

    def _stratified_order(self, seed: int) -> np.ndarray:
        """A permutation whose every prefix has (close to) the class proportions of the whole task.

        Each row gets a key ``(rank within its class + u) / class size`` with ``u`` uniform in [0, 1);
        sorting by the key interleaves the classes proportionally, so any prefix is a stratified sample.
        """
        rng = np.random.default_rng(seed)
        keys = np.empty(len(self), dtype=np.float64)
        for cls in np.unique(self.labels):
            members = np.flatnonzero(self.labels == cls)
            members = members[rng.permutation(len(members))]
            keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
        return np.argsort(keys, kind="stable")

    # ------------------------------------------------------------------ description
    def label_counts(self) -> dict[str, int]:
        """Rows per class name (classification only)."""
        if not self.is_classification:
            raise DataError(f"task {self.name!r} is a regression task; it has no classes")
        counts = np.bincount(self.labels, minlength=len(self.label_names or []))
        return {name: int(c) for name, c in zip(self.label_names or [], counts, strict=True)}

    def summary(self) -> dict[str, Any]:
        """Size, label distribution and text length quantiles (in characters and whitespace words)."""
        lengths = np.array([len(t) for t in self.texts], dtype=np.int64)
        words = np.array([len(t.split()) for t in self.texts], dtype=np.int64)
        quantiles = [0.0, 0.05, 0.5, 0.95, 1.0]
        out: dict[str, Any] = {
            "name": self.name,
            "rows": len(self),
            "task_type": self.task_type,
            "pair": self.is_pair,
            "language": self.language,
            "chars": {
                f"q{int(q * 100)}": float(np.quantile(lengths, q)) if len(self) else 0.0 for q in quantiles
            },
            "words": {
                f"q{int(q * 100)}": float(np.quantile(words, q)) if len(self) else 0.0 for q in quantiles
            },
        }
        if self.is_classification:
            out["num_classes"] = self.num_classes
            out["label_counts"] = self.label_counts()
        else:
            labels = self.labels.reshape(len(self), -1)
            out["num_outputs"] = labels.shape[1]
            out["target_names"] = self.target_names
            out["label_stats"] = {
                "mean": labels.mean(axis=0).tolist() if len(self) else [],
                "std": labels.std(axis=0).tolist() if len(self) else [],
                "min": labels.min(axis=0).tolist() if len(self) else [],
                "max": labels.max(axis=0).tolist() if len(self) else [],
            }
        return out

    def warnings(self, min_class_rows: int = 10) -> list[str]:
        """Things a user should know before using this task (tiny classes, constant targets, ...)."""
        notes: list[str] = []
        if len(self) < 10:
            notes.append(f"only {len(self)} rows; rankings need at least 10")
        if self.is_classification:
            for name, count in self.label_counts().items():
                if count == 0:
                    notes.append(f"class {name!r} has no rows")
                elif count < min_class_rows:
                    notes.append(f"class {name!r} has {count} row{'s' if count != 1 else ''}")
            if sum(1 for c in self.label_counts().values() if c > 0) < 2:
                notes.append("fewer than 2 classes have rows; a classification target needs at least 2")
        else:
            labels = self.labels.reshape(len(self), -1)
            if len(self) and np.any(labels.std(axis=0) == 0):
                notes.append("a regression target is constant")
        empty = sum(1 for t in self.texts if not t.strip())
        if empty:
            notes.append(f"{empty} empty texts")
        return notes

    # ------------------------------------------------------------------ tables
    def to_pandas(self) -> pd.DataFrame:
        """Columns ``text`` (and ``text_pair``) and ``label`` (class id, float, or list of floats)."""
        data: dict[str, Any] = {"text": self.texts}
        if self.text_pairs is not None:
            data["text_pair"] = self.text_pairs
        if self.is_classification or self.labels.ndim == 1:
            data["label"] = self.labels
        else:
            data["label"] = list(self.labels)
        return pd.DataFrame(data)

    def metadata(self) -> dict[str, Any]:
        """Everything but the rows, as plain JSON values (stored beside the Parquet file of a task)."""
        return {
            "name": self.name,
            "task_type": self.task_type,
            "pair": self.is_pair,
            "label_names": self.label_names,
            "target_names": self.target_names,
            "language": self.language,
            "provenance": self.provenance.to_dict(),
            "licence": self.licence,
        }

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, metadata: dict[str, Any]) -> Task:
        """Inverse of :meth:`to_pandas` + :meth:`metadata`."""
        labels = frame["label"].to_numpy()
        if metadata["task_type"] == "regression" and labels.dtype == object:
            labels = np.stack([np.asarray(v, dtype=np.float64) for v in labels])
        return cls(
            name=metadata["name"],
            texts=frame["text"].tolist(),
            text_pairs=frame["text_pair"].tolist() if "text_pair" in frame.columns else None,
            labels=labels,
            task_type=metadata["task_type"],
            label_names=metadata.get("label_names"),
            target_names=metadata.get("target_names"),
            language=metadata.get("language", ""),
            provenance=Provenance(**metadata.get("provenance", {})),
            licence=metadata.get("licence", ""),
        )


def _permutation(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)
