"""Load user data into a :class:`~taskscout.data.task.Task`, inferring which columns mean what.

Sources (:func:`load_task`):

* a file: ``.csv``, ``.tsv``/``.tab``, ``.json`` (an array of records or an object of equal-length column
  lists), ``.jsonl``/``.ndjson``, ``.parquet``/``.pq``; any of them may be compressed
  (``.gz``, ``.bz2``, ``.xz``, ``.zip`` with one member), e.g. ``data.csv.gz``;
* a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (pick one with ``split``);
* a :class:`pandas.DataFrame`;
* ``"hf:ID"``, ``"hf:ID:CONFIG"`` or ``"hf:ID@REVISION:CONFIG"``: ``datasets.load_dataset`` (Hub or local);
* ``"catalog:NAME"``: a task of the built-in catalog (:func:`taskscout.data.catalog.load`).

Column inference (:func:`infer_columns`), in the spirit of the heuristic parsing of Hub datasets in the
ESM-LogME paper; every choice can be overridden by a keyword argument, and every inferred choice comes
with a reason in :attr:`ColumnChoice.reasons`. Column names are compared case-insensitively with every
non-alphanumeric character removed (``"Sentence 1"`` matches ``sentence1``, ``"LABEL"`` matches ``label``).

* **Text**: the first column with a known text name (``text``, ``sentence``, ``sentence1``, ``premise``,
  ``question``, ``review``, ``content``, ``document``, ``tweet``, ``comment``, ...) that holds strings.
  With none of the strong names but both a title-like and a body-like column (``title``/``headline`` and
  ``body``/``description``), the two are joined: text column ``"title+body"``. (A ``"a+b"`` spec is also
  accepted from users: it joins the parts with a space.) Otherwise, by content: among string columns with
  many distinct values (at least half of the rows distinct, or 1,000 distinct values) the one whose
  values most often contain spaces and, after that, with the longest mean length. Label-named columns
  take part only if they look like free text (mostly distinct, mean length >= 15 characters).
* **Text pair**: only a column with a known pair name (``sentence2``, ``hypothesis``, ``text_pair``,
  ``text_b``, ``question2``, ``answer``, ``passage``, ``context``, ...) that holds strings and does not look
  like a label. Pairs are never guessed from content alone: two free-text columns may just as well be
  a text and an unrelated field (a title, a URL, a translation), and a wrong pair silently changes the
  task, while a missed pair is one keyword argument away.
* **Label**: a ``datasets`` ``ClassLabel`` column first, then the first column with a known label name
  (``label``, ``labels``, ``target``, ``class``, ``category``, ``gold_label``, ``score``, ``rating``,
  ``stars``, ``sentiment``, ``y``, ...) unless it looks like free text (then it is skipped with a
  warning). Otherwise the remaining columns that are not id-like (named ``id``/``idx``/``index``/
  ``guid``/``*_id``/``Unnamed: 0``, or integers that are all distinct and increasing) and are numeric,
  boolean, categorical, list-valued or strings with few distinct values; with several, the last one in
  table order (labels conventionally come last) and a warning naming the others.
* **Task type**: ``ClassLabel``, string, boolean and categorical labels are classification. Numbers
  (including numbers stored as text, like JSON ``"1"``, ``"2"``) are classification when every value is
  an integer and there are at most 20 distinct values and at most one distinct value per two rows (or
  at most 2 distinct values): class ids such as 0/1, 0..4 or star ratings ``1.0 .. 5.0`` (use
  ``task_type="regression"`` for a rating regression). Non-integer values, or many distinct values, are
  regression. List-valued cells (numbers, or JSON lists stored as text in a CSV) and several label
  columns (``label_column=["valence", "arousal"]``) are multi-output regression.
* **Mixed labels** (numbers and text in one column): if the numbers alone would be a regression target,
  this is an error naming the text values; otherwise every value is treated as a class name (its string
  form: ``1``, ``1.0`` -> ``"1"``) with a warning.

CSV/TSV cells use pandas' missing-value markers (empty, ``NA``, ``N/A``, ``null``, ``None``, ``nan``, ...).
TSV files are read with standard quoting first and, if that fails or swallows lines (a cell holding a tab),
again with quote characters kept literally (GLUE-style files), with a warning.

Rows are cleaned, not rejected: rows whose text (or text pair) is missing or blank are dropped, then
rows whose label is missing (NaN/None, a blank string, an empty list or one holding NaN, a negative
``ClassLabel`` id); each dropped row is counted once, under the first reason, in :class:`LoadReport`.
String labels are stripped of surrounding whitespace. Class names are sorted in natural order
(``"2"`` < ``"10"``, ``"item2"`` < ``"item10"``), except ``ClassLabel`` names and pandas categoricals,
which keep their own order. Texts longer than :data:`MAX_TEXT_CHARS` characters are truncated, with a
warning counting them. Everything a user can get wrong raises :class:`~taskscout.errors.DataError` with
a one-line message naming the file, column and value, and what to do.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import math
import numbers
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from taskscout.data.task import Provenance, Task, TaskType
from taskscout.errors import DataError
from taskscout.io import sha256_file

__all__ = [
    "MAX_TEXT_CHARS",
    "ColumnChoice",
    "LoadOptions",
    "LoadReport",
    "infer_columns",
    "load_task",
    "load_task_with_report",
]

#: Texts longer than this many characters are truncated (with a warning) so one huge cell cannot
#: exhaust memory or the encoder.
MAX_TEXT_CHARS = 100_000
# Reading bounds (settable per call): a 100 MB CSV takes ~850 MB in memory once parsed, so 512 MB of file
# stays within a few GB; the cell cap keeps a wide, sparse file (mostly separators) from exploding into
# a float matrix of rows x columns.
DEFAULT_MAX_BYTES = 512 * 1024**2
DEFAULT_MAX_READ_ROWS = 1_000_000
MAX_READ_CELLS = 50_000_000
#: Integer-valued labels with at most this many distinct values may be class ids.
MAX_INTEGER_CLASSES = 20
#: Rows looked at to measure string lengths during inference.
_INFERENCE_SAMPLE_ROWS = 20_000
_TEXTUAL_MIN_MEAN_LEN = 15.0

SUPPORTED_FORMATS = (
    ".csv, .tsv, .json, .jsonl, .parquet (optionally compressed: .gz, .bz2, .xz, .zip), "
    "a directory saved with datasets' save_to_disk, 'hf:ID[:CONFIG]' or 'catalog:NAME'"
)
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_HF_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")

# Known column names, normalised (lower case, alphanumerics only), in order of preference.
_STRONG_TEXT_NAMES = (
    "text",
    "sentence",
    "sentence1",
    "sentencea",
    "texta",
    "text1",
    "premise",
    "question",
    "question1",
    "query",
    "review",
    "reviewtext",
    "content",
    "document",
    "tweet",
    "comment",
    "utterance",
)
_TITLE_NAMES = ("title", "headline", "subject", "reviewtitle")
_BODY_NAMES = ("body", "description", "reviewbody", "article")
_WEAK_TEXT_NAMES = (
    *_BODY_NAMES,
    *_TITLE_NAMES,
    "input",
    "inputtext",
    "prompt",
    "abstract",
    "message",
    "post",
)
_PAIR_NAMES = (
    "sentence2",
    "sentenceb",
    "textb",
    "text2",
    "textpair",
    "hypothesis",
    "question2",
    "answer",
    "passage",
    "context",
    "response",
)
_LABEL_NAMES = (
    "label",
    "labels",
    "target",
    "targets",
    "class",
    "classlabel",
    "category",
    "goldlabel",
    "labelid",
    "score",
    "rating",
    "stars",
    "sentiment",
    "polarity",
    "emotion",
    "topic",
    "intent",
    "relevance",
    "similarity",
    "y",
    "output",
)
_ID_NAMES = {"id", "idx", "index", "guid", "uid", "uuid", "rowid", "key", "unnamed0"}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


# ---------------------------------------------------------------------------------------------- results
@dataclass
class ColumnChoice:
    """Which columns hold the text, the text pair and the label, and what kind of task this is.

    Attributes:
        text_column: the text column, or ``"a+b"`` for columns joined with a space.
        text_pair_column: the second text of pair tasks, else ``None``.
        label_column: the label column, or a list of columns (multi-output regression).
        task_type: ``"classification"`` or ``"regression"``.
        reasons: one line per choice saying why it was made (given, by name, by content).
        warnings: things the user should check (skipped candidates, ambiguities, mixed labels).
    """

    text_column: str
    text_pair_column: str | None
    label_column: str | list[str]
    task_type: TaskType
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LoadReport:
    """What :func:`load_task_with_report` did: the column choice and what happened to the rows.

    Attributes:
        source: the source as given (a path, ``hf:...``, ``catalog:...`` or ``"DataFrame"``).
        choice: the column choice, with reasons.
        rows_read: rows in the table.
        rows_kept: rows left after dropping incomplete ones.
        rows_returned: rows in the returned task (after ``max_rows`` subsampling).
        dropped_missing_text: rows dropped for a missing or blank text (or text pair).
        dropped_missing_label: rows (with a text) dropped for a missing label.
        truncated_texts: texts (or text pairs) cut to :data:`MAX_TEXT_CHARS` characters.
        warnings: the choice's warnings plus those from reading and cleaning the rows.
    """

    source: str
    choice: ColumnChoice
    rows_read: int = 0
    rows_kept: int = 0
    rows_returned: int = 0
    dropped_missing_text: int = 0
    dropped_missing_label: int = 0
    truncated_texts: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """All dropped rows."""
        return self.dropped_missing_text + self.dropped_missing_label

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["dropped"] = self.dropped
        return out


# ---------------------------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class LoadOptions:
    """How to read a task: the loader arguments of :func:`load_task`, grouped so that callers such as
    :func:`taskscout.rank` take them as one ``load=`` argument.

    Attributes:
        text_column: the text column (inferred if ``None``); ``"a+b"`` joins columns with a space.
        text_pair_column: the second text of pair tasks (never inferred from content).
        label_column: the label column, or several for multi-output regression (inferred if ``None``).
        task_type: ``"classification"`` or ``"regression"`` (inferred if ``None``).
        split: the split of a saved ``DatasetDict`` or an ``hf:`` dataset.
        config: the ``hf:`` dataset configuration when the spec does not name one.
        encoding: text encoding of CSV/TSV/JSON/JSONL files.
        max_bytes: refuse data files larger than this many bytes (after decompression).
        max_read_rows: read at most this many rows of a file (``None``: every row).
    """

    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | tuple[str, ...] | None = None
    task_type: str | None = None
    split: str | None = None
    config: str | None = None
    encoding: str = "utf-8"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_read_rows: int | None = DEFAULT_MAX_READ_ROWS

    @classmethod
    def coerce(cls, value: LoadOptions | dict[str, Any] | None) -> LoadOptions:
        """``value`` as LoadOptions: itself, the defaults for ``None``, or built from a dict.

        Raises:
            DataError: a dict names an option that does not exist, or ``value`` is of another type.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise DataError(f"load options must be a LoadOptions or a dict, got {type(value).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise DataError(
                f"unknown load option {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        label = value.get("label_column")
        if isinstance(label, list):
            value = {**value, "label_column": tuple(label)}
        return cls(**value)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`load_task` / :func:`load_task_with_report`."""
        out = dataclasses.asdict(self)
        if isinstance(self.label_column, tuple):
            out["label_column"] = list(self.label_column)
        return out


def load_task(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | Sequence[str] | None = None,
    task_type: str | None = None,
    name: str | None = None,
    split: str | None = None,
    config: str | None = None,
    language: str = "",
    max_rows: int | None = None,
    seed: int = 0,
    encoding: str = "utf-8",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_read_rows: int | None = DEFAULT_MAX_READ_ROWS,
    fetch: bool = True,
    progress: bool = False,
) -> Task:
    """Load ``source`` as a :class:`Task`.

    Args:
        source: a file or saved-dataset directory path, a DataFrame, ``"hf:ID[@REV][:CONFIG]"`` or
            ``"catalog:NAME"``; the other arguments are those of :func:`load_task_with_report`.

    Returns:
        The task.

    Raises:
        DataError: for every problem with the source, its columns, labels or the arguments.
    """
    task, _ = load_task_with_report(
        source,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        task_type=task_type,
        name=name,
        split=split,
        config=config,
        language=language,
        max_rows=max_rows,
        seed=seed,
        encoding=encoding,
        max_bytes=max_bytes,
        max_read_rows=max_read_rows,
        fetch=fetch,
        progress=progress,
    )
    return task


def load_task_with_report(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | Sequence[str] | None = None,
    task_type: str | None = None,
    name: str | None = None,
    split: str | None = None,
    config: str | None = None,
    language: str = "",
    max_rows: int | None = None,
    seed: int = 0,
    encoding: str = "utf-8",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_read_rows: int | None = DEFAULT_MAX_READ_ROWS,
    fetch: bool = True,
    progress: bool = False,
) -> tuple[Task, LoadReport]:
    """Load ``source`` as a :class:`Task` and report the column choice and dropped rows.

    Args:
        source: a file or saved-dataset directory path, a DataFrame, ``"hf:ID[@REV][:CONFIG]"`` or
            ``"catalog:NAME"`` (see the module docstring).
        text_column, text_pair_column, label_column, task_type: override the inferred choice
            (``label_column`` may list several columns for multi-output regression).
        name: task name; default: the file name without extensions, the HF dataset name, ``"dataframe"``.
        split: the split of a ``DatasetDict`` directory or an ``hf:`` dataset (default ``"train"``, or the
            only split).
        config: the ``hf:`` dataset configuration when the spec does not name one.
        language: ISO 639-1 code of the texts (``""`` if unknown).
        max_rows: keep at most this many rows (a deterministic, stratified subsample).
        seed: seed of the subsample.
        encoding: text encoding of CSV/TSV/JSON/JSONL files.
        max_bytes: refuse data files larger than this many bytes (after decompression), checked while
            reading, so a huge file costs at most this much memory before the error.
        max_read_rows: read at most this many rows of a CSV/TSV/JSON Lines file (the first ones, with a
            warning); fewer when the table is wide, so at most :data:`MAX_READ_CELLS` cells are read.
            ``None`` reads every row.
        fetch: fetch a ``catalog:NAME`` task that is not fetched yet (the one policy of the API, the CLI
            and the benchmark: a catalog task is fetched on first use); ``False`` makes that an error.
        progress: show the progress of such a fetch (on stderr).

    Returns:
        The task and the :class:`LoadReport` of how it was read.

    Raises:
        DataError: for every problem with the source, its columns, labels or the arguments.
    """
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise DataError(f"max_rows must be a positive integer, got {max_rows!r}")
    for option, value in (("max_bytes", max_bytes), ("max_read_rows", max_read_rows)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DataError(f"{option} must be a positive integer, got {value!r}")
    limits = ReadLimits(max_bytes=max_bytes, max_rows=max_read_rows)
    overrides = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
        "task_type": task_type,
    }

    if isinstance(source, pd.DataFrame):
        loaded = _Loaded(source, "the DataFrame", "dataframe", Provenance(registry="dataframe"))
    elif isinstance(source, str) and source.startswith("catalog:"):
        return _load_catalog(
            source,
            overrides,
            name=name,
            language=language,
            max_rows=max_rows,
            seed=seed,
            fetch=fetch,
            progress=progress,
        )
    elif isinstance(source, str) and source.startswith("hf:"):
        loaded = _read_hf_spec(source, split=split, config=config)
    elif isinstance(source, str | os.PathLike):
        loaded = _read_path(Path(source), split=split, encoding=encoding, limits=limits)
    else:
        raise DataError(
            f"cannot load a {type(source).__name__} as a task; pass a file path, a pandas DataFrame, "
            "'hf:ID' or 'catalog:NAME'"
        )
    return _build_task(loaded, overrides, name=name, language=language, max_rows=max_rows, seed=seed)


def infer_columns(
    frame: pd.DataFrame,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | Sequence[str] | None = None,
    task_type: str | None = None,
    source: str = "the table",
    class_labels: dict[str, list[str]] | None = None,
) -> ColumnChoice:
    """Choose the text, text-pair and label columns and the task type of ``frame``.

    Given arguments win; the rest is inferred (heuristics in the module docstring). ``source`` names the
    table in error messages; ``class_labels`` maps columns holding ``datasets`` ``ClassLabel`` ids to
    their class names (such columns are preferred labels and always classification).

    Raises:
        DataError: empty table, a named column that does not exist, no usable text or label column,
            an unknown task type, or labels that cannot be the requested kind of target.
    """
    frame = _check_frame(frame, source)
    class_labels = class_labels or {}
    columns = [str(c) for c in frame.columns]
    reasons: list[str] = []
    warnings: list[str] = []
    profiles: dict[str, _Profile] = {}

    def profile(col: str) -> _Profile:
        if col not in profiles:
            profiles[col] = _profile(frame[col], col, col in class_labels)
        return profiles[col]

    if task_type is not None and task_type not in ("classification", "regression"):
        raise DataError(f"unknown task_type {task_type!r}; use 'classification' or 'regression'")

    # ---------------------------------------------------------------- text
    if text_column is not None:
        text_col = _resolve_column(frame, text_column, "text_column", source, reasons, allow_join=True)
        reasons.append(f"text: {text_col!r} (given)")
    else:
        text_col = _infer_text(frame, columns, profile, source, reasons, warnings)
    used = set(_join_parts(frame, text_col))

    # ---------------------------------------------------------------- pair
    if text_pair_column is not None:
        pair_col: str | None = _resolve_column(
            frame, text_pair_column, "text_pair_column", source, reasons, allow_join=True
        )
        reasons.append(f"text pair: {pair_col!r} (given)")
    else:
        pair_col = _infer_pair(columns, used, profile, reasons, warnings)
    if pair_col is not None:
        overlap = used & set(_join_parts(frame, pair_col))
        if overlap:
            raise DataError(
                f"{source}: column {sorted(overlap)[0]!r} is both the text and the text pair; "
                "pass different text_column and text_pair_column"
            )
        used |= set(_join_parts(frame, pair_col))

    # ---------------------------------------------------------------- label
    label_col: str | list[str]
    if label_column is not None:
        given = [label_column] if isinstance(label_column, str) else list(label_column)
        if not given:
            raise DataError("label_column is an empty list; name at least one label column")
        resolved = [_resolve_column(frame, c, "label_column", source, reasons) for c in given]
        for col in resolved:
            if col in used:
                raise DataError(
                    f"{source}: column {col!r} is both a text column and the label; pass a different "
                    "label_column or text_column"
                )
        if len(set(resolved)) != len(resolved):
            raise DataError(f"{source}: label_column lists a column twice: {given!r}")
        for col in resolved:
            if profile(col).kind == "empty":
                raise DataError(
                    f"label column {col!r} in {source} has no values; fill it in or pass label_column=... "
                    "naming the column with the labels"
                )
        label_col = resolved[0] if len(resolved) == 1 else resolved
        reasons.append(f"label: {label_col!r} (given)")
    else:
        label_col = _infer_label(frame, columns, used, profile, source, reasons, warnings)

    # ---------------------------------------------------------------- task type
    if isinstance(label_col, list):
        if task_type == "classification":
            raise DataError(
                f"{source}: several label columns ({', '.join(map(repr, label_col))}) make a multi-output "
                "regression target; classification takes one label_column"
            )
        for col in label_col:
            p = profile(col)
            if p.kind not in ("integer", "float", "bool"):
                raise DataError(
                    f"label column {col!r} in {source} holds {p.kind} values, but several label columns "
                    "make a multi-output regression target and need numbers; fix the column or pass one "
                    "label_column"
                )
        chosen_type: TaskType = "regression"
        reasons.append(f"task type: regression ({len(label_col)} label columns: multi-output)")
    elif task_type is not None:
        chosen_type = cast(TaskType, task_type)
        reasons.append(f"task type: {task_type} (given)")
        p = profile(label_col)
        if chosen_type == "regression" and p.kind in ("string", "mixed", "categorical"):
            # Fail now, with the offending values, rather than in the Task.
            _to_regression_values(frame[label_col], label_col, source)
        if chosen_type == "classification" and p.kind == "list":
            raise DataError(
                f"label column {label_col!r} in {source} holds lists (a multi-output regression target); "
                "classification needs one value per row: pass task_type='regression'"
            )
        if chosen_type == "classification" and p.n_unique > 50:
            warnings.append(
                f"label column {label_col!r} has {p.n_unique} distinct values; each becomes a class"
            )
    else:
        chosen_type = _infer_task_type(
            frame[label_col], label_col, profile(label_col), source, reasons, warnings
        )

    return ColumnChoice(
        text_column=text_col,
        text_pair_column=pair_col,
        label_column=label_col,
        task_type=chosen_type,
        reasons=reasons,
        warnings=list(dict.fromkeys(warnings)),
    )


# ---------------------------------------------------------------------------------------------- profiles
@dataclass
class _Profile:
    """What a column holds, as far as inference cares."""

    name: str
    kind: str  # string, integer, float, bool, list, mixed, categorical, empty, other
    non_null: int
    n_unique: int
    mean_len: float = 0.0
    space_frac: float = 0.0
    str_frac: float = 0.0
    class_label: bool = False

    @property
    def unique_ratio(self) -> float:
        return self.n_unique / self.non_null if self.non_null else 0.0

    @property
    def stringy(self) -> bool:
        """Holds (mostly) strings."""
        return self.kind == "string" or (self.kind == "mixed" and self.str_frac >= 0.9)

    @property
    def many_distinct(self) -> bool:
        return self.unique_ratio >= 0.5 or self.n_unique >= 1000

    @property
    def textual(self) -> bool:
        """Looks like free text rather than a class name."""
        return (
            self.stringy
            and self.many_distinct
            and self.mean_len >= _TEXTUAL_MIN_MEAN_LEN
            and (not self.class_label)
        )

    def describe(self) -> str:
        if self.kind == "list":
            return f"list-valued, {self.non_null} rows"
        if self.stringy:
            return f"{self.kind}, {self.n_unique} distinct of {self.non_null}, mean {self.mean_len:.0f} chars"
        return f"{self.kind}, {self.n_unique} distinct of {self.non_null}"


def _profile(series: pd.Series, name: str, class_label: bool = False) -> _Profile:
    values = series[series.notna()]
    n = len(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _Profile(name, "categorical", n, int(values.nunique()), class_label=class_label)
    if n == 0:
        return _Profile(name, "empty", 0, 0, class_label=class_label)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    kind = {
        "string": "string",
        "integer": "integer",
        "floating": "float",
        "mixed-integer-float": "float",
        "decimal": "float",
        "boolean": "bool",
    }.get(inferred, "mixed" if inferred.startswith("mixed") else "other")
    if kind == "mixed" and all(_is_listlike(v) for v in values):
        kind = "list"
    if kind == "string" and _parse_list_strings(values) is not None:
        kind = "list"
    if kind == "float" and class_label:
        kind = "integer"
    if kind == "list":
        return _Profile(name, "list", n, n, class_label=class_label)
    try:
        n_unique = int(values.nunique())
    except TypeError:  # unhashable cells (dicts) in a mixed column
        n_unique = int(values.astype(str).nunique())
    prof = _Profile(name, kind, n, n_unique, class_label=class_label)
    if kind in ("string", "mixed"):
        sample = (
            values if n <= _INFERENCE_SAMPLE_ROWS else values.sample(_INFERENCE_SAMPLE_ROWS, random_state=0)
        )
        strings = [v for v in sample.tolist() if isinstance(v, str)]
        prof.str_frac = len(strings) / len(sample)
        if strings:
            prof.mean_len = float(np.mean([len(s) for s in strings]))
            prof.space_frac = sum(1 for s in strings if " " in s.strip()) / len(strings)
    return prof


def _is_listlike(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _parse_list_strings(values: pd.Series) -> list[Any] | None:
    """JSON lists stored as text (a CSV holding ``"[0.1, 0.2]"``), parsed; ``None`` if not all are."""
    head = values.iloc[: min(len(values), 50)].tolist()
    if not all(isinstance(v, str) and v.strip().startswith("[") and v.strip().endswith("]") for v in head):
        return None
    parsed = []
    for v in values.tolist():
        if not isinstance(v, str):
            return None
        try:
            item = json.loads(v)
        except ValueError:
            return None
        if not isinstance(item, list):
            return None
        parsed.append(item)
    return parsed


def _is_id_like(col: str, prof: _Profile, series: pd.Series) -> bool:
    norm = _norm(col)
    if norm in _LABEL_NAMES or norm.startswith("label"):
        return False
    lower = col.lower().strip()
    if norm in _ID_NAMES or lower.startswith("unnamed:") or re.search(r"(^|[_\s.\-])id$", lower):
        return True
    if prof.kind == "integer" and prof.non_null >= 3 and prof.n_unique == prof.non_null:
        return bool(series.dropna().is_monotonic_increasing)
    return False


# ---------------------------------------------------------------------------------------------- inference
def _resolve_column(
    frame: pd.DataFrame,
    name: str,
    role: str,
    source: str,
    reasons: list[str],
    allow_join: bool = False,
) -> str:
    """The column ``name`` of ``frame`` (exact, else a unique case-insensitive match, else an error)."""
    if not isinstance(name, str):
        raise DataError(f"{role} must be a column name (a string), got {name!r}")
    columns = [str(c) for c in frame.columns]
    if name in columns:
        return name
    if allow_join and "+" in name:
        parts = name.split("+")
        if all(p in columns for p in parts) and len(set(parts)) == len(parts):
            return name
    folded = [c for c in columns if c.casefold() == name.casefold()]
    if len(folded) == 1:
        reasons.append(f"{role}={name!r} matched column {folded[0]!r} ignoring case")
        return folded[0]
    available = ", ".join(repr(c) for c in columns)
    raise DataError(f"column {name!r} ({role}) not found in {source}; available columns: {available}")


def _join_parts(frame: pd.DataFrame, spec: str) -> list[str]:
    if spec in frame.columns or "+" not in spec:
        return [spec]
    return spec.split("+")


def _infer_text(
    frame: pd.DataFrame,
    columns: list[str],
    profile: Any,
    source: str,
    reasons: list[str],
    warnings: list[str],
) -> str:
    by_norm: dict[str, list[str]] = {}
    for col in columns:
        by_norm.setdefault(_norm(col), []).append(col)

    def named(names: Sequence[str]) -> str | None:
        for key in names:
            for col in by_norm.get(key, []):
                prof = profile(col)
                if prof.stringy:
                    return col
                warnings.append(
                    f"column {col!r} has a text name but holds {prof.kind} values; not used as text"
                )
        return None

    col = named(_STRONG_TEXT_NAMES)
    if col is not None:
        reasons.append(f"text: {col!r} (known text column name)")
        return col
    title = named(_TITLE_NAMES)
    body = named(_BODY_NAMES)
    if title is not None and body is not None:
        reasons.append(f"text: {title!r} and {body!r} joined as '{title}+{body}' (title and body columns)")
        return f"{title}+{body}"
    col = named(_WEAK_TEXT_NAMES)
    if col is not None:
        reasons.append(f"text: {col!r} (known text column name)")
        return col

    candidates = [
        c
        for c in columns
        if profile(c).stringy
        and not profile(c).class_label
        and (_norm(c) not in _LABEL_NAMES or profile(c).textual)
        and not _is_id_like(c, profile(c), frame[c])
    ]
    if not candidates:
        kinds = ", ".join(f"{c!r} ({profile(c).kind})" for c in columns)
        raise DataError(
            f"no usable text column in {source}: no column holds strings (columns: {kinds}); "
            "pass text_column=... naming the column with the texts"
        )
    not_pair = [c for c in candidates if _norm(c) not in _PAIR_NAMES] or candidates
    distinct = [c for c in not_pair if profile(c).many_distinct]
    pool = distinct or not_pair
    best = max(pool, key=lambda c: (profile(c).space_frac >= 0.5, profile(c).mean_len))
    prof = profile(best)
    reasons.append(
        f"text: {best!r} (by content: longest string column with many distinct values; {prof.describe()})"
    )
    if _norm(best) in _LABEL_NAMES:
        warnings.append(
            f"column {best!r} has a label name but holds free text; used as the text (pass text_column=... "
            "and label_column=... if that is wrong)"
        )
    if not distinct:
        warnings.append(
            f"text column {best!r} has only {prof.n_unique} distinct values in {prof.non_null} rows; "
            "check it really holds the texts or pass text_column=..."
        )
    others = [c for c in distinct if c != best and profile(c).textual]
    if others:
        warnings.append(
            f"other columns also look like text: {', '.join(map(repr, others))}; pass text_column=... "
            f"(and text_pair_column=... for a pair task) if {best!r} is not the one"
        )
    return best


def _infer_pair(
    columns: list[str],
    used: set[str],
    profile: Any,
    reasons: list[str],
    warnings: list[str],
) -> str | None:
    by_norm: dict[str, list[str]] = {}
    for col in columns:
        if col not in used:
            by_norm.setdefault(_norm(col), []).append(col)
    for key in _PAIR_NAMES:
        for col in by_norm.get(key, []):
            prof = profile(col)
            if not prof.stringy:
                continue
            if not prof.many_distinct and prof.n_unique <= MAX_INTEGER_CLASSES:
                warnings.append(
                    f"column {col!r} has a pair name but only {prof.n_unique} distinct values; "
                    "not used as the text pair"
                )
                continue
            reasons.append(f"text pair: {col!r} (known pair column name)")
            return col
    reasons.append(
        "text pair: none (no string column with a pair name; pairs are never guessed from content)"
    )
    return None


def _infer_label(
    frame: pd.DataFrame,
    columns: list[str],
    used: set[str],
    profile: Any,
    source: str,
    reasons: list[str],
    warnings: list[str],
) -> str:
    rest = [c for c in columns if c not in used]
    class_label_cols = [c for c in rest if profile(c).class_label]
    if class_label_cols:
        col = class_label_cols[0]
        reasons.append(f"label: {col!r} (ClassLabel feature)")
        return col

    by_norm: dict[str, list[str]] = {}
    for col in rest:
        by_norm.setdefault(_norm(col), []).append(col)
    skipped: list[str] = []
    for key in _LABEL_NAMES:
        for col in by_norm.get(key, []):
            prof = profile(col)
            if prof.kind == "empty":
                warnings.append(f"column {col!r} has a label name but no values; not used as the label")
                skipped.append(f"{col!r} has no values")
                continue
            if prof.textual:
                warnings.append(
                    f"column {col!r} has a label name but looks like free text ({prof.describe()}); "
                    "not used as the label"
                )
                skipped.append(f"{col!r} looks like free text")
                continue
            reasons.append(f"label: {col!r} (known label column name)")
            return col

    candidates = []
    for col in rest:
        prof = profile(col)
        if prof.kind in ("empty", "other") or _is_id_like(col, prof, frame[col]):
            continue
        if prof.stringy and prof.textual:
            continue
        candidates.append(col)
    if not candidates:
        available = ", ".join(repr(c) for c in columns)
        why = f"; {', '.join(skipped)}" if skipped else ""
        raise DataError(
            f"no label column found in {source} (columns: {available}; used as text: "
            f"{', '.join(map(repr, sorted(used)))}{why}); pass label_column=... naming the label column"
        )
    col = candidates[-1]
    reasons.append(f"label: {col!r} (by content: last non-id, non-text column; {profile(col).describe()})")
    if len(candidates) > 1:
        others = ", ".join(repr(c) for c in candidates[:-1])
        warnings.append(
            f"columns {others} could also be the label; chose {col!r}; pass label_column=... to choose"
        )
    return col


def _infer_task_type(
    series: pd.Series,
    col: str,
    prof: _Profile,
    source: str,
    reasons: list[str],
    warnings: list[str],
) -> TaskType:
    if prof.kind == "empty":
        raise DataError(
            f"label column {col!r} in {source} has no values; fill it in or pass label_column=... naming "
            "the column with the labels"
        )
    if prof.class_label:
        reasons.append("task type: classification (ClassLabel feature)")
        return "classification"
    if prof.kind == "list":
        reasons.append("task type: regression (list-valued labels: multi-output)")
        return "regression"
    if prof.kind in ("bool", "categorical"):
        reasons.append(f"task type: classification ({prof.kind} labels)")
        return "classification"
    if prof.kind in ("integer", "float"):
        values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=np.float64)
        return _numeric_task_type(values, "", reasons)
    if prof.kind in ("string", "mixed"):
        present = [v for v in series.tolist() if not _is_missing_label(v)]
        numbers = pd.to_numeric(pd.Series([_label_str(v) for v in present], dtype=object), errors="coerce")
        n_numeric = int(numbers.notna().sum())
        if n_numeric == 0:
            reasons.append(f"task type: classification (string labels, {prof.n_unique} distinct)")
            if prof.n_unique > 50:
                warnings.append(
                    f"label column {col!r} has {prof.n_unique} distinct values; each becomes a class"
                )
            return "classification"
        if n_numeric == len(present):
            return _numeric_task_type(numbers.to_numpy(dtype=np.float64), " stored as text", reasons)
        numeric = numbers.dropna().to_numpy(dtype=np.float64)
        if _numeric_kind(numeric) == "regression":
            bad = [(i, v) for i, (v, x) in enumerate(zip(present, numbers, strict=True)) if pd.isna(x)]
            examples = ", ".join(f"{v!r}" for _, v in bad[:3]) + (
                f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            )
            raise DataError(
                f"label column {col!r} in {source} mixes numbers (e.g. {_label_str(numeric[0])}) with "
                f"non-numeric values {examples}; fix or remove those values, or pass "
                "task_type='classification' to treat every value as a class name"
            )
        text_example = next(v for v, x in zip(present, numbers, strict=True) if pd.isna(x))
        num_example = next(v for v, x in zip(present, numbers, strict=True) if not pd.isna(x))
        warnings.append(
            f"label column {col!r} mixes numbers and text (e.g. {num_example!r} and {text_example!r}); "
            "treating every value as a class name"
        )
        reasons.append("task type: classification (mixed number and text labels, as class names)")
        return "classification"
    raise DataError(
        f"label column {col!r} in {source} holds {prof.kind} values that are neither classes nor numbers; "
        "pass label_column=... naming the label column"
    )


def _numeric_kind(values: np.ndarray) -> TaskType:
    if values.size == 0:
        return "classification"
    finite = values[np.isfinite(values)]
    integral = bool(np.all(finite == np.floor(finite)))
    n_unique = len(np.unique(finite))
    few = n_unique <= 2 or (n_unique <= MAX_INTEGER_CLASSES and 2 * n_unique <= len(values))
    return "classification" if integral and few else "regression"


def _numeric_task_type(values: np.ndarray, note: str, reasons: list[str]) -> TaskType:
    kind = _numeric_kind(values)
    finite = values[np.isfinite(values)]
    n_unique = len(np.unique(finite))
    if kind == "classification":
        reasons.append(
            f"task type: classification ({n_unique} distinct integer values{note}: at most "
            f"{MAX_INTEGER_CLASSES} and at most one per two rows)"
        )
    elif finite.size and not np.all(finite == np.floor(finite)):
        reasons.append(f"task type: regression (non-integer numbers{note})")
    else:
        reasons.append(
            f"task type: regression ({n_unique} distinct integer values{note} in {len(values)} rows)"
        )
    return kind


# ---------------------------------------------------------------------------------------------- building
@dataclass
class _Loaded:
    frame: pd.DataFrame
    source: str  # used in messages
    default_name: str
    provenance: Provenance
    class_labels: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    given: str = ""  # the source as the user gave it


def _check_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source} is a {type(frame).__name__}, not a table; pass a pandas DataFrame")
    if frame.shape[1] == 0:
        raise DataError(f"{source} has no columns; it needs a text column and a label column")
    names = [str(c) for c in frame.columns]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DataError(f"{source} has duplicate column names {', '.join(map(repr, dupes))}; rename them")
    if frame.shape[0] == 0:
        cols = ", ".join(repr(c) for c in names)
        raise DataError(f"{source} has no rows (columns: {cols}); add data rows")
    if names != list(frame.columns) or not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.set_axis(names, axis=1).reset_index(drop=True)
    return frame


def _build_task(
    loaded: _Loaded,
    overrides: dict[str, Any],
    *,
    name: str | None,
    language: str,
    max_rows: int | None,
    seed: int,
) -> tuple[Task, LoadReport]:
    source = loaded.source
    frame = _check_frame(loaded.frame, source)
    choice = infer_columns(frame, **overrides, source=source, class_labels=loaded.class_labels)
    warnings = [*loaded.notes, *choice.warnings]
    n_rows = len(frame)

    texts, text_missing = _text_values(frame, choice.text_column)
    pairs: list[str] | None = None
    if choice.text_pair_column is not None:
        pairs, pair_missing = _text_values(frame, choice.text_pair_column)
        text_missing |= pair_missing
    label_cols = choice.label_column if isinstance(choice.label_column, list) else [choice.label_column]
    label_missing = np.zeros(n_rows, dtype=bool)
    for col in label_cols:
        label_missing |= _label_missing_mask(frame[col], col in loaded.class_labels)
    keep = ~text_missing & ~label_missing
    dropped_text = int(text_missing.sum())
    dropped_label = int((label_missing & ~text_missing).sum())
    where = f"'{choice.text_column}'" + (f"/'{choice.text_pair_column}'" if pairs is not None else "")
    if not keep.any():
        raise DataError(
            f"no usable rows in {source}: all {n_rows} rows lack a text in {where} ({dropped_text}) or a "
            f"label in {', '.join(map(repr, label_cols))} ({dropped_label}); check the columns or pass "
            "text_column=/label_column="
        )
    if dropped_text or dropped_label:
        parts = []
        if dropped_text:
            parts.append(f"{dropped_text} with a missing or blank text in {where}")
        if dropped_label:
            parts.append(f"{dropped_label} with a missing label in {', '.join(map(repr, label_cols))}")
        warnings.append(f"dropped {dropped_text + dropped_label} of {n_rows} rows: {'; '.join(parts)}")

    idx = np.flatnonzero(keep)
    kept = frame.iloc[idx].reset_index(drop=True)
    texts = [texts[i] for i in idx]
    truncated = 0
    texts, n = _truncate(texts)
    truncated += n
    if pairs is not None:
        pairs, n = _truncate([pairs[i] for i in idx])
        truncated += n
    if truncated:
        warnings.append(f"truncated {truncated} texts longer than {MAX_TEXT_CHARS:,} characters")

    labels, label_names, target_names = _encode_labels(kept, choice, loaded.class_labels, source, idx)
    task_name = name or loaded.default_name
    task = Task(
        name=task_name,
        texts=texts,
        labels=labels,
        task_type=choice.task_type,
        text_pairs=pairs,
        label_names=label_names,
        language=language,
        provenance=loaded.provenance,
        target_names=target_names,
    )
    rows_kept = len(task)
    task = task.subsample(max_rows, seed)
    report = LoadReport(
        source=loaded.given or source,
        choice=choice,
        rows_read=n_rows,
        rows_kept=rows_kept,
        rows_returned=len(task),
        dropped_missing_text=dropped_text,
        dropped_missing_label=dropped_label,
        truncated_texts=truncated,
        warnings=warnings,
    )
    return task, report


def _text_values(frame: pd.DataFrame, spec: str) -> tuple[list[str], np.ndarray]:
    """The texts of column ``spec`` (or ``"a+b"`` joined with a space) and a mask of missing ones."""
    parts = _join_parts(frame, spec)
    columns = [frame[p].tolist() for p in parts]
    texts: list[str] = []
    missing = np.zeros(len(frame), dtype=bool)
    for i, row in enumerate(zip(*columns, strict=True)):
        pieces = [_text_str(v) for v in row]
        joined = " ".join(p for p in pieces if p)
        texts.append(joined)
        missing[i] = not joined
    return texts, missing


def _text_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if value.strip() else ""
    if isinstance(value, float | np.floating) and math.isnan(value):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _truncate(texts: list[str]) -> tuple[list[str], int]:
    count = 0
    out = texts
    for i, t in enumerate(texts):
        if len(t) > MAX_TEXT_CHARS:
            if out is texts:
                out = list(texts)
            out[i] = t[:MAX_TEXT_CHARS]
            count += 1
    return out, count


def _is_missing_label(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if _is_listlike(value):
        if len(value) == 0:
            return True
        try:
            return bool(np.any(pd.isna(np.asarray(value, dtype=object))))
        except (TypeError, ValueError):
            return False
    return False


def _label_missing_mask(series: pd.Series, class_label: bool) -> np.ndarray:
    values = series.tolist()
    mask = np.array([_is_missing_label(v) for v in values], dtype=bool)
    if class_label:
        mask |= np.array(
            [isinstance(v, numbers.Number) and not mask[i] and v < 0 for i, v in enumerate(values)]
        )
    return mask


def _label_str(value: Any) -> str:
    """The class name of one label value: ``1``, ``1.0`` and ``"1"`` all give ``"1"``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    if isinstance(value, str):
        return value.strip()
    return str(value)


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort key: numbers numerically first, then strings with digit runs compared as numbers."""
    try:
        number = float(name)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        return (0, number, name)
    chunks = tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in re.split(r"(\d+)", name) if c)
    return (1, chunks, name)


def _encode_labels(
    kept: pd.DataFrame,
    choice: ColumnChoice,
    class_labels: dict[str, list[str]],
    source: str,
    row_numbers: np.ndarray,
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """Labels as class ids + names (classification) or floats + target names (regression)."""
    if isinstance(choice.label_column, list):
        columns = [_to_regression_values(kept[c], c, source, row_numbers) for c in choice.label_column]
        return np.stack(columns, axis=1), None, list(choice.label_column)
    col = choice.label_column
    series = kept[col]
    if choice.task_type == "regression":
        values = _to_regression_values(series, col, source, row_numbers)
        if values.ndim == 2:
            return values, None, [f"{col}_{i}" for i in range(values.shape[1])]
        return values, None, [col]

    if col in class_labels:
        names = list(class_labels[col])
        ids = np.asarray(series.tolist(), dtype=np.int64)
        too_big = ids >= len(names)
        if too_big.any():
            bad = int(ids[too_big][0])
            raise DataError(
                f"label column {col!r} in {source} has class id {bad} but its ClassLabel has only "
                f"{len(names)} names; fix the dataset features"
            )
        present = sorted({names[i] for i in ids})
    else:
        if isinstance(series.dtype, pd.CategoricalDtype):
            used = set(series.astype(object).tolist())
            names = [_label_str(c) for c in series.cat.categories if c in used]
        else:
            names = []
        strings = [_label_str(v) for v in series.tolist()]
        if not names:
            names = sorted(set(strings), key=_natural_key)
        index = {n: i for i, n in enumerate(names)}
        ids = np.array([index[s] for s in strings], dtype=np.int64)
        present = names
    if len(present) < 2:
        only = present[0] if present else ""
        raise DataError(
            f"label column {col!r} in {source} has a single class {only!r}; a target needs at least 2 "
            "classes (check label_column, or pass task_type='regression' for a numeric target)"
        )
    return ids, names, None


def _to_regression_values(
    series: pd.Series, col: str, source: str, row_numbers: np.ndarray | None = None
) -> np.ndarray:
    """Float targets of a (non-missing) label column: ``(n,)`` or ``(n, k)`` for list-valued cells."""

    def row(i: int) -> int:
        return int(row_numbers[i]) + 1 if row_numbers is not None else i + 1

    values = series.tolist()
    present = [(i, v) for i, v in enumerate(values) if not _is_missing_label(v)]
    parsed_lists = None
    if present and all(isinstance(v, str) for _, v in present):
        parsed_lists = _parse_list_strings(pd.Series([v for _, v in present], dtype=object))
    if parsed_lists is not None or (present and all(_is_listlike(v) for _, v in present)):
        rows = parsed_lists if parsed_lists is not None else [v for _, v in present]
        out: list[np.ndarray] = []
        width = None
        for (i, _), cell in zip(present, rows, strict=True):
            try:
                arr = np.asarray(cell, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise DataError(
                    f"label column {col!r} in {source} has a non-numeric list {cell!r} in row {row(i)}; "
                    "every target must be a number"
                ) from None
            if width is None:
                width = arr.size
            elif arr.size != width:
                raise DataError(
                    f"label column {col!r} in {source} has lists of different lengths ({width} in row "
                    f"{row(present[0][0])}, {arr.size} in row {row(i)}); every row needs the same number "
                    "of targets"
                )
            out.append(arr)
        result = np.stack(out) if len(present) == len(values) else None
        if result is None:  # callers pass non-missing rows only; keep the shape honest anyway
            raise DataError(f"label column {col!r} in {source} has missing targets; drop those rows")
        _check_finite(result, col, source, row)
        return result

    missing = np.array([_is_missing_label(v) for v in values], dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        result = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = [float(v) if isinstance(v, bool | np.bool_) else _label_str(v) for v in values]
        numbers_ = pd.to_numeric(pd.Series(converted, dtype=object), errors="coerce")
        bad = [(i, v) for i, v in enumerate(values) if not missing[i] and pd.isna(numbers_.iloc[i])]
        if bad:
            examples = ", ".join(f"{v!r} (row {row(i)})" for i, v in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise DataError(
                f"label column {col!r} in {source} has non-numeric values for a regression target: "
                f"{examples}{more}; fix or remove them, or pass task_type='classification'"
            )
        result = numbers_.to_numpy(dtype=np.float64)
    bad_rows = np.flatnonzero(~missing & ~np.isfinite(result))
    if bad_rows.size:
        i = int(bad_rows[0])
        raise DataError(
            f"label column {col!r} in {source} has a non-finite value {values[i]!r} in row {row(i)}; "
            "fix or remove that row"
        )
    return result


def _check_finite(values: np.ndarray, col: str, source: str, row: Any) -> None:
    flat = values.reshape(len(values), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"label column {col!r} in {source} has a non-finite value {flat[i].tolist()!r} in row {row(i)}; "
            "fix or remove that row"
        )


# ---------------------------------------------------------------------------------------------- catalog
def _load_catalog(
    source: str,
    overrides: dict[str, Any],
    *,
    name: str | None,
    language: str,
    max_rows: int | None,
    seed: int,
    fetch: bool,
    progress: bool,
) -> tuple[Task, LoadReport]:
    catalog_name = source[len("catalog:") :].strip()
    if not catalog_name:
        raise DataError("'catalog:' needs a task name, e.g. 'catalog:rt_sentiment'")
    given = [k for k, v in overrides.items() if v is not None]
    if given:
        raise DataError(
            f"{', '.join(given)} cannot be used with catalog task {catalog_name!r}: its columns are fixed; "
            "drop those options or load the data file directly"
        )
    from taskscout.data import catalog  # lazy: the catalog pulls in fetching code

    task = catalog.load(catalog_name, auto_fetch=fetch, progress=progress)
    if name or language:
        task = dataclasses.replace(task, name=name or task.name, language=language or task.language)
    rows = len(task)
    task = task.subsample(max_rows, seed)
    choice = ColumnChoice(
        text_column="text",
        text_pair_column="text_pair" if task.is_pair else None,
        label_column="label",
        task_type=task.task_type,
        reasons=[f"catalog task {catalog_name!r}: columns and task type fixed by the catalog"],
    )
    report = LoadReport(source=source, choice=choice, rows_read=rows, rows_kept=rows, rows_returned=len(task))
    return task, report


# ---------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading a data file: bytes (after decompression) and rows (``None``: all rows)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int | None = DEFAULT_MAX_READ_ROWS


def _read_path(path: Path, *, split: str | None, encoding: str, limits: ReadLimits | None = None) -> _Loaded:
    given = str(path)
    if not path.exists():
        hint = " (for a named dataset use 'catalog:NAME' or 'hf:ID')" if not path.suffix else ""
        raise DataError(f"{given} does not exist; check the path{hint}")
    if path.is_dir():
        if _is_saved_dataset(path):
            return _read_hf_disk(path, split=split)
        raise DataError(
            f"{given} is a directory but not a saved Hugging Face dataset (no "
            f"{'/'.join(_HF_DISK_MARKERS)}); pass a data file ({SUPPORTED_FORMATS})"
        )
    fmt, compression = _detect_format(path)
    frame, notes = _read_file(path, fmt, compression, encoding, limits or ReadLimits())
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise DataError(f"cannot read {given}: {exc.strerror or exc}") from exc
    return _Loaded(
        frame=frame,
        source=given,
        default_name=_stem(path),
        provenance=Provenance(registry="file", file=given, sha256=digest),
        notes=notes,
    )


def _stem(path: Path) -> str:
    """The file name without its format and compression extensions: ``data.csv.gz`` -> ``data``."""
    name = path.name
    for table in (_COMPRESSIONS, _FORMATS):
        suffix = Path(name).suffix
        if suffix.lower() in table:
            name = name[: -len(suffix)]
    return name or path.name


def _detect_format(path: Path) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    if suffixes and suffixes[-1] in _FORMATS:
        return _FORMATS[suffixes[-1]], compression
    shown = "".join(path.suffixes) or "(no extension)"
    raise DataError(f"{path}: unknown data format {shown}; supported: {SUPPORTED_FORMATS}")


def _read_raw(path: Path, compression: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, decompressed, read in chunks and refused past ``max_bytes``."""
    try:
        if compression is None:
            if path.stat().st_size > max_bytes:
                _too_big(path, max_bytes, compressed=False)
            with open(path, "rb") as fh:
                return _read_bounded(fh, path, max_bytes, compressed=False)
        if compression == "gzip":
            with gzip.open(path, "rb") as fh:
                return _read_bounded(fh, path, max_bytes, compressed=True)
        if compression == "bz2":
            with bz2.open(path, "rb") as fh:
                return _read_bounded(fh, path, max_bytes, compressed=True)
        if compression == "xz":
            with lzma.open(path, "rb") as fh:
                return _read_bounded(fh, path, max_bytes, compressed=True)
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise DataError(f"{path} holds {len(members)} files; a .zip data file must hold exactly one")
            with zf.open(members[0]) as fh:
                return _read_bounded(fh, path, max_bytes, compressed=True)
    except DataError:
        raise
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        if isinstance(exc, OSError) and compression is None:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
        raise DataError(
            f"{path} is not a valid {compression} file ({_one_line(exc)}); re-compress it or pass the "
            "uncompressed file"
        ) from exc


def _read_bounded(handle: Any, path: Path, max_bytes: int, *, compressed: bool) -> bytes:
    chunks, total = [], 0
    while block := handle.read(min(1 << 24, max_bytes + 1 - total)):
        chunks.append(block)
        total += len(block)
        if total > max_bytes:
            _too_big(path, max_bytes, compressed=compressed)
    return b"".join(chunks)


def _too_big(path: Path, max_bytes: int, *, compressed: bool) -> None:
    what = "decompresses to more than" if compressed else "is larger than"
    raise DataError(
        f"{path} {what} {max_bytes:,} bytes (the read limit); sample it, or raise the limit with "
        "--max-bytes (max_bytes=... in Python)"
    )


def _decode(raw: bytes, path: Path, encoding: str, compressed: bool) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r} for {path}; pass a Python codec name such as 'utf-8' or 'latin-1'"
        ) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        label = "UTF-8" if codec == "utf-8" else encoding
        where = " of the decompressed data" if compressed else ""
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path} is not {label} (byte 0x{raw[exc.start]:02x} at position {exc.start}{where}, "
            f"line {line}); re-save it as UTF-8 or pass encoding=... (e.g. 'latin-1', 'cp1252')"
        ) from None
    return text.removeprefix("\ufeff")


def _read_file(
    path: Path, fmt: str, compression: str | None, encoding: str, limits: ReadLimits
) -> tuple[pd.DataFrame, list[str]]:
    raw = _read_raw(path, compression, limits.max_bytes)
    if fmt == "parquet":
        try:
            return pd.read_parquet(io.BytesIO(raw)), []
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(
                f"{path} is not a readable Parquet file ({_one_line(exc)}); re-export it, e.g. with "
                "DataFrame.to_parquet"
            ) from exc
    text = _decode(raw, path, encoding, compression is not None)
    del raw
    if fmt in ("csv", "tsv"):
        return _parse_csv(text, path, "\t" if fmt == "tsv" else ",", limits.max_rows)
    if fmt == "json":
        frame, notes = _parse_json(text, path)
    else:
        frame, notes = _parse_jsonl(text, path, limits.max_rows), []
    return _cap_rows(frame, path, limits.max_rows, notes)


def _cap_rows(
    frame: pd.DataFrame, path: Path, max_rows: int | None, notes: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Keep the first rows within the row and cell caps; the reader read at most one row more."""
    if max_rows is None:
        return frame, notes
    cap = max(1, min(max_rows, MAX_READ_CELLS // max(1, frame.shape[1])))
    if len(frame) > cap:
        notes = [*notes, f"{path}: read only the first {cap:,} rows (raise --max-read-rows to read more)"]
        frame = frame.iloc[:cap].reset_index(drop=True)
    return frame, notes


def _parse_csv(
    text: str, path: Path, sep: str, max_rows: int | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Parse CSV/TSV text.

    TSV files (GLUE-style) often hold texts with unbalanced quote characters and no quoting at all. They
    are first read with standard quoting (which round-trips files written by pandas or spreadsheets); if
    that fails, or a parsed cell contains a tab (a sign that a stray quote swallowed whole lines), they
    are read again with quote characters kept literally.
    """
    kind = "TSV" if sep == "\t" else "CSV"
    notes: list[str] = []
    literal_note = f"{path}: read with quote characters kept literally (the file is not consistently quoted)"
    frame: pd.DataFrame | None = None
    nrows = None
    if max_rows is not None:
        # Parse one row more than the caps allow (the cell cap bounds memory for very wide files), so
        # _cap_rows can tell whether rows were left out.
        try:
            width = len(pd.read_csv(io.StringIO(text), sep=sep, nrows=0).columns)
        except (ValueError, pd.errors.EmptyDataError):
            width = 1
        nrows = max(1, min(max_rows, MAX_READ_CELLS // max(1, width))) + 1
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, low_memory=False, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty (no header row); add a header line naming the columns") from None
    except ValueError as exc:
        if sep != "\t":
            raise DataError(
                f"{path} could not be parsed as {kind} ({_one_line(exc)}); check quoting and that the "
                "delimiter is ','"
            ) from exc
    if sep == "\t" and (frame is None or _has_tab_in_cells(frame)):
        try:
            literal = pd.read_csv(
                io.StringIO(text), sep=sep, quoting=csv.QUOTE_NONE, low_memory=False, nrows=nrows
            )
        except ValueError as exc:
            if frame is None:
                raise DataError(
                    f"{path} could not be parsed as {kind} ({_one_line(exc)}); check that fields are "
                    "tab-separated and rows have the same number of fields"
                ) from exc
        else:
            frame = literal
            notes.append(literal_note)
    assert frame is not None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        other = next((d for d in (";", "\t", "|", ",") if d in header and d != sep), None)
        if other is not None:
            raise DataError(
                f"{path} has a single column {header!r}; it looks {other!r}-separated: re-save it with "
                f"{'tabs' if sep == chr(9) else 'commas'} or use the matching extension (.csv/.tsv)"
            )
    return _cap_rows(frame, path, max_rows, notes)


def _has_tab_in_cells(frame: pd.DataFrame) -> bool:
    for col in frame.columns:
        series = frame[col]
        stringy = pd.api.types.is_string_dtype(series.dtype) or series.dtype == object
        if stringy and any(isinstance(v, str) and "\t" in v for v in series.tolist()):
            return True
    return False


def _parse_json(text: str, path: Path) -> tuple[pd.DataFrame, list[str]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            try:
                frame = _parse_jsonl(text, path)
            except DataError:
                pass
            else:
                return frame, [f"{path} holds JSON Lines (one object per line); read it as .jsonl"]
        raise DataError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); fix the file "
            "(or name it .jsonl if it has one JSON object per line)"
        ) from None
    expected = (
        'expected an array of records ([{"text": ..., "label": ...}, ...]) or an object of '
        'equal-length columns ({"text": [...], "label": [...]})'
    )
    if isinstance(obj, list):
        bad = next(((i, v) for i, v in enumerate(obj) if not isinstance(v, dict)), None)
        if bad is not None:
            raise DataError(
                f"{path} is not a table of records: item {bad[0]} is {_json_type(bad[1])}; {expected}"
            )
        return pd.DataFrame.from_records(obj) if obj else pd.DataFrame(), []
    if isinstance(obj, dict):
        if obj and all(isinstance(v, list) for v in obj.values()):
            lengths = {k: len(v) for k, v in obj.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{k!r}: {n}" for k, n in lengths.items())
                raise DataError(
                    f"{path} has columns of different lengths ({shown}); every column needs one value per row"
                )
            return pd.DataFrame(obj), []
        lists = [
            k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)
        ]
        if len(obj) == 1 and lists:
            return pd.DataFrame.from_records(obj[lists[0]]), [
                f"{path}: read the records under key {lists[0]!r}"
            ]
        keys = ", ".join(repr(k) for k in list(obj)[:5])
        raise DataError(f"{path} is not a table: got an object with keys {keys}; {expected}")
    raise DataError(f"{path} is not a table: got {_json_type(obj)}; {expected}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _parse_jsonl(text: str, path: Path, max_rows: int | None = None) -> pd.DataFrame:
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if max_rows is not None and len(records) > max_rows:
            break  # one record more than the cap, so _cap_rows can warn
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}); every line of a "
                "JSON Lines file must be one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path} line {lineno} is {_json_type(obj)}, not an object; every line of a JSON Lines file "
                'must be one record like {"text": ..., "label": ...}'
            )
        records.append(obj)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------------------------------------- Hugging Face
def _is_saved_dataset(path: Path) -> bool:
    return any((path / marker).is_file() for marker in _HF_DISK_MARKERS)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "reading Hugging Face datasets needs the 'datasets' package; pip install datasets"
        ) from None
    return datasets


def _dir_digest(path: Path) -> str:
    """A sha256 over the relative names and sha256s of every file in a directory."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _class_labels(datasets: Any, features: Any) -> dict[str, list[str]]:
    return {
        str(name): list(feature.names)
        for name, feature in (features or {}).items()
        if isinstance(feature, datasets.ClassLabel)
    }


def _pick_split(splits: list[str], split: str | None, where: str) -> str:
    if split is not None:
        if split not in splits:
            raise DataError(
                f"{where} has no split {split!r}; available splits: {', '.join(map(repr, splits))}; "
                "pass split=... with one of them"
            )
        return split
    if "train" in splits:
        return "train"
    if len(splits) == 1:
        return splits[0]
    raise DataError(f"{where} has splits {', '.join(map(repr, splits))}; pass split=... to choose one")


def _read_hf_disk(path: Path, *, split: str | None) -> _Loaded:
    datasets = _import_datasets()
    given = str(path)
    try:
        obj = datasets.load_from_disk(given)
    except Exception as exc:  # corrupt or foreign directory: datasets raises many types
        raise DataError(
            f"{given} could not be loaded as a saved Hugging Face dataset ({_one_line(exc)}); "
            "re-save it with Dataset.save_to_disk"
        ) from exc
    notes: list[str] = []
    if isinstance(obj, datasets.DatasetDict):
        chosen = _pick_split(list(obj.keys()), split, given)
        ds = obj[chosen]
        source = f"{given} (split {chosen!r})"
    else:
        ds = obj
        source = given
        if split is not None:
            notes.append(f"{given} holds a single dataset; split={split!r} ignored")
    return _Loaded(
        frame=ds.to_pandas(),
        source=source,
        default_name=path.resolve().name,
        provenance=Provenance(registry="huggingface", file=given, sha256=_dir_digest(path)),
        class_labels=_class_labels(datasets, ds.features),
        notes=notes,
        given=given,
    )


def _read_hf_spec(spec: str, *, split: str | None, config: str | None) -> _Loaded:
    body = spec[len("hf:") :].strip()
    ident, _, spec_config = body.partition(":")
    ident, _, revision = ident.partition("@")
    if not ident:
        raise DataError(f"{spec!r} names no dataset; use 'hf:ID', 'hf:ID:CONFIG' or 'hf:ID@REVISION:CONFIG'")
    local = Path(ident)
    if local.is_dir() and _is_saved_dataset(local):
        loaded = _read_hf_disk(local, split=split)
        loaded.given = spec
        return loaded
    cfg = spec_config or config or None
    datasets = _import_datasets()
    split_name = split or "train"
    where = f"Hugging Face dataset {ident!r}" + (f" (config {cfg!r})" if cfg else "")
    try:
        ds = datasets.load_dataset(ident, cfg, split=split_name, revision=revision or None)
    except Exception as exc:  # network, missing dataset/config/split: many exception types
        raise DataError(
            f"could not load {where} split {split_name!r}: {_one_line(exc)}; check the ID, config and split, "
            "and that the Hub is reachable (or the dataset is cached when HF_DATASETS_OFFLINE=1)"
        ) from exc
    if isinstance(ds, datasets.DatasetDict):  # defensive: load_dataset with a split returns a Dataset
        ds = ds[_pick_split(list(ds.keys()), split, where)]
    version = cfg or ""
    if revision:
        version = f"{cfg}@{revision}" if cfg else revision
    default_name = Path(ident.rstrip("/")).name + (f"_{cfg}" if cfg else "")
    return _Loaded(
        frame=ds.to_pandas(),
        source=f"{where} split {split_name!r}",
        default_name=default_name,
        provenance=Provenance(registry="huggingface", package=ident, version=version),
        class_labels=_class_labels(datasets, ds.features),
        given=spec,
    )
