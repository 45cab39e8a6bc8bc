"""Orange ``.tab`` files: tab-separated values with three header rows.

Row 1 holds the column names, row 2 the column types (``discrete``/``d``, ``continuous``/``c``,
``string``/``s``, ``time``), row 3 the flags (``class``, ``meta``, ``include=True``, ...). Values are quoted
CSV-style where needed. Every value is returned as a string; callers convert what they use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pandas as pd

from taskscout.errors import CatalogError


def read_orange_tab(data: bytes, name: str, require: Sequence[str] = ()) -> pd.DataFrame:
    """The table of an Orange ``.tab`` file as strings (missing values as ``""``).

    ``require`` lists columns that must be present; a file without them is a ``CatalogError`` naming
    the columns found, so a changed layout is reported instead of silently building a different task.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{name} is not UTF-8 text; expected an Orange .tab file") from exc
    lines = text.splitlines()
    if len(lines) < 3:
        raise CatalogError(f"{name} has {len(lines)} line(s); an Orange .tab file has 3 header rows")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            skiprows=[1, 2],
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_MINIMAL,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise CatalogError(f"cannot parse {name} as an Orange .tab file ({exc})") from exc
    missing = [c for c in require if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{name} has no column(s) {', '.join(map(repr, missing))} (found {', '.join(frame.columns)}); "
            "the package layout changed"
        )
    return frame
