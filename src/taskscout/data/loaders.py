"""Load user data into a :class:`~taskscout.data.task.Task`, inferring which columns mean what.

This module is the entry point; the parts live apart: reading files and Hugging Face datasets in
:mod:`taskscout.data.readers` (``files``, ``hf``), column and task-type inference in
:mod:`taskscout.data.infer`, label cleaning and encoding in :mod:`taskscout.data.labels`.

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

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskscout.data.infer import ColumnChoice, infer_columns, join_parts
from taskscout.data.labels import encode_labels, label_missing_mask
from taskscout.data.readers.files import read_path
from taskscout.data.readers.hf import read_hf_spec
from taskscout.data.readers.table import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_READ_ROWS,
    RawTable,
    ReadLimits,
    check_frame,
)
from taskscout.data.task import Provenance, Task
from taskscout.errors import DataError

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
            warning); fewer when the table is wide, so at most
            :data:`~taskscout.data.readers.files.MAX_READ_CELLS` cells are read.
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
        loaded = RawTable(source, "the DataFrame", "dataframe", Provenance(registry="dataframe"))
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
        loaded = read_hf_spec(source, split=split, config=config)
    elif isinstance(source, str | os.PathLike):
        loaded = read_path(Path(source), split=split, encoding=encoding, limits=limits)
    else:
        raise DataError(
            f"cannot load a {type(source).__name__} as a task; pass a file path, a pandas DataFrame, "
            "'hf:ID' or 'catalog:NAME'"
        )
    return _build_task(loaded, overrides, name=name, language=language, max_rows=max_rows, seed=seed)


def _build_task(
    loaded: RawTable,
    overrides: dict[str, Any],
    *,
    name: str | None,
    language: str,
    max_rows: int | None,
    seed: int,
) -> tuple[Task, LoadReport]:
    source = loaded.source
    frame = check_frame(loaded.frame, source)
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
        label_missing |= label_missing_mask(frame[col], col in loaded.class_labels)
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

    labels, label_names, target_names = encode_labels(
        kept, choice.label_column, choice.task_type, loaded.class_labels, source, idx
    )
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
    parts = join_parts(frame, spec)
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
