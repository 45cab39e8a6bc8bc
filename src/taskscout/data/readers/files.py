"""Readers of user data files: CSV/TSV, JSON, JSON Lines and Parquet, optionally compressed, read within
:class:`~taskscout.data.readers.table.ReadLimits` (bytes after decompression, rows, cells)."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from taskscout.data.readers.hf import HF_DISK_MARKERS, is_saved_dataset, read_hf_disk
from taskscout.data.readers.table import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_FORMATS,
    RawTable,
    ReadLimits,
    one_line,
)
from taskscout.data.task import Provenance
from taskscout.errors import DataError
from taskscout.io import sha256_file

#: A wide, sparse file (mostly separators) must not explode into a float matrix of rows x columns.
MAX_READ_CELLS = 50_000_000

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


def read_path(path: Path, *, split: str | None, encoding: str, limits: ReadLimits | None = None) -> RawTable:
    given = str(path)
    if not path.exists():
        hint = " (for a named dataset use 'catalog:NAME' or 'hf:ID')" if not path.suffix else ""
        raise DataError(f"{given} does not exist; check the path{hint}")
    if path.is_dir():
        if is_saved_dataset(path):
            return read_hf_disk(path, split=split)
        raise DataError(
            f"{given} is a directory but not a saved Hugging Face dataset (no "
            f"{'/'.join(HF_DISK_MARKERS)}); pass a data file ({SUPPORTED_FORMATS})"
        )
    fmt, compression = _detect_format(path)
    frame, notes = _read_file(path, fmt, compression, encoding, limits or ReadLimits())
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise DataError(f"cannot read {given}: {exc.strerror or exc}") from exc
    return RawTable(
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
            f"{path} is not a valid {compression} file ({one_line(exc)}); re-compress it or pass the "
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
                f"{path} is not a readable Parquet file ({one_line(exc)}); re-export it, e.g. with "
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
                f"{path} could not be parsed as {kind} ({one_line(exc)}); check quoting and that the "
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
                    f"{path} could not be parsed as {kind} ({one_line(exc)}); check that fields are "
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
