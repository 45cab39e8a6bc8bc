"""Column inference: which columns of a table hold the text, the text pair and the label, and
whether the task is classification or regression (the rules are described in :mod:`taskscout.data.loaders`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from taskscout.data.labels import (
    is_listlike,
    is_missing_label,
    label_str,
    parse_list_strings,
    to_regression_values,
)
from taskscout.data.readers.table import check_frame
from taskscout.data.task import TaskType
from taskscout.errors import DataError

#: Integer-valued labels with at most this many distinct values may be class ids.
MAX_INTEGER_CLASSES = 20
#: Rows looked at to measure string lengths during inference.
_INFERENCE_SAMPLE_ROWS = 20_000
_TEXTUAL_MIN_MEAN_LEN = 15.0


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
    frame = check_frame(frame, source)
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
    used = set(join_parts(frame, text_col))

    # ---------------------------------------------------------------- pair
    if text_pair_column is not None:
        pair_col: str | None = _resolve_column(
            frame, text_pair_column, "text_pair_column", source, reasons, allow_join=True
        )
        reasons.append(f"text pair: {pair_col!r} (given)")
    else:
        pair_col = _infer_pair(columns, used, profile, reasons, warnings)
    if pair_col is not None:
        overlap = used & set(join_parts(frame, pair_col))
        if overlap:
            raise DataError(
                f"{source}: column {sorted(overlap)[0]!r} is both the text and the text pair; "
                "pass different text_column and text_pair_column"
            )
        used |= set(join_parts(frame, pair_col))

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
            to_regression_values(frame[label_col], label_col, source)
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
    if kind == "mixed" and all(is_listlike(v) for v in values):
        kind = "list"
    if kind == "string" and parse_list_strings(values) is not None:
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


def join_parts(frame: pd.DataFrame, spec: str) -> list[str]:
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
        present = [v for v in series.tolist() if not is_missing_label(v)]
        numbers = pd.to_numeric(pd.Series([label_str(v) for v in present], dtype=object), errors="coerce")
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
                f"label column {col!r} in {source} mixes numbers (e.g. {label_str(numeric[0])}) with "
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
