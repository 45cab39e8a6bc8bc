"""Label cleaning and encoding: missing-label detection, class names in natural order, class ids,
regression values (multi-output included), and finiteness checks with messages naming the row."""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

import numpy as np
import pandas as pd

from taskscout.errors import DataError


def is_missing_label(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if is_listlike(value):
        if len(value) == 0:
            return True
        try:
            return bool(np.any(pd.isna(np.asarray(value, dtype=object))))
        except (TypeError, ValueError):
            return False
    return False


def label_missing_mask(series: pd.Series, class_label: bool) -> np.ndarray:
    values = series.tolist()
    mask = np.array([is_missing_label(v) for v in values], dtype=bool)
    if class_label:
        mask |= np.array(
            [isinstance(v, numbers.Number) and not mask[i] and v < 0 for i, v in enumerate(values)]
        )
    return mask


def label_str(value: Any) -> str:
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


def encode_labels(
    kept: pd.DataFrame,
    label_column: str | list[str],
    task_type: str,
    class_labels: dict[str, list[str]],
    source: str,
    row_numbers: np.ndarray,
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """Labels as class ids + names (classification) or floats + target names (regression)."""
    if isinstance(label_column, list):
        columns = [to_regression_values(kept[c], c, source, row_numbers) for c in label_column]
        return np.stack(columns, axis=1), None, list(label_column)
    col = label_column
    series = kept[col]
    if task_type == "regression":
        values = to_regression_values(series, col, source, row_numbers)
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
            names = [label_str(c) for c in series.cat.categories if c in used]
        else:
            names = []
        strings = [label_str(v) for v in series.tolist()]
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


def to_regression_values(
    series: pd.Series, col: str, source: str, row_numbers: np.ndarray | None = None
) -> np.ndarray:
    """Float targets of a (non-missing) label column: ``(n,)`` or ``(n, k)`` for list-valued cells."""

    def row(i: int) -> int:
        return int(row_numbers[i]) + 1 if row_numbers is not None else i + 1

    values = series.tolist()
    present = [(i, v) for i, v in enumerate(values) if not is_missing_label(v)]
    parsed_lists = None
    if present and all(isinstance(v, str) for _, v in present):
        parsed_lists = parse_list_strings(pd.Series([v for _, v in present], dtype=object))
    if parsed_lists is not None or (present and all(is_listlike(v) for _, v in present)):
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

    missing = np.array([is_missing_label(v) for v in values], dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        result = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = [float(v) if isinstance(v, bool | np.bool_) else label_str(v) for v in values]
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


def is_listlike(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def parse_list_strings(values: pd.Series) -> list[Any] | None:
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
