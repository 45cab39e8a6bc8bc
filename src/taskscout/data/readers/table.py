"""What every reader of user data returns (:class:`RawTable`) and the bounds it reads within."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from taskscout.data.task import Provenance
from taskscout.errors import DataError

# Reading bounds (settable per call): a 100 MB CSV takes ~850 MB in memory once parsed, so 512 MB of file
# stays within a few GB.
DEFAULT_MAX_BYTES = 512 * 1024**2
DEFAULT_MAX_READ_ROWS = 1_000_000

SUPPORTED_FORMATS = (
    ".csv, .tsv, .json, .jsonl, .parquet (optionally compressed: .gz, .bz2, .xz, .zip), "
    "a directory saved with datasets' save_to_disk, 'hf:ID[:CONFIG]' or 'catalog:NAME'"
)


@dataclass
class RawTable:
    """A table as a reader returns it, before column inference: the rows plus where they came from."""

    frame: pd.DataFrame
    source: str  # used in messages
    default_name: str
    provenance: Provenance
    class_labels: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    given: str = ""  # the source as the user gave it


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading a data file: bytes (after decompression) and rows (``None``: all rows)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int | None = DEFAULT_MAX_READ_ROWS


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line, at most 300 characters (for errors naming a library's failure)."""
    text = " ".join(str(exc).split())
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with string column names and a fresh index; a DataError for no rows or bad columns."""
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
