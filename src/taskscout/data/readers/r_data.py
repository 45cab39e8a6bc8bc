"""R data files: ``.rda`` / ``.RData`` and lazy-load databases (``<name>.rdb`` + ``<name>.rdx``).

Both hold objects in R's serialization format, which the ``rdata`` package parses without R (it only
reads the format; nothing is evaluated). A lazy-load database is how R packages ship their data sets:
``.rdx`` is a gzip-compressed serialized list whose ``variables`` element maps each object name to an
``(offset, length)`` pair in ``.rdb``; each ``.rdb`` record is a 4-byte big-endian uncompressed length
followed by zlib data, or, when the ``.rdx`` ``compressed`` flag is 2 or 3, by one type byte (``Z`` xz,
``2`` bzip2, ``0`` stored) and then the data.

Objects are converted to plain Python: character vectors to lists of ``str`` (``None`` for ``NA``),
numeric and logical vectors to lists of numbers, lists to lists, and anything with a ``names`` attribute
to a ``dict`` in R's order.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import warnings
import zlib
from typing import Any

from taskscout.errors import CatalogError


def _parse(data: bytes, label: str) -> Any:
    from rdata.parser import parse_data

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS" for bare serializations
            return parse_data(data)
    except Exception as exc:  # rdata raises assorted errors (ValueError, NotImplementedError, ...)
        detail = " ".join(str(exc).split())[:120]
        raise CatalogError(
            f"{label} is not readable R serialized data ({type(exc).__name__}: {detail})"
        ) from exc


def _symbol(obj: Any) -> str:
    from rdata.parser import RObjectType

    if obj.info.type == RObjectType.REF:
        obj = obj.referenced_object
    if obj.info.type == RObjectType.SYM:
        obj = obj.value
    return obj.value.decode("utf-8", "replace") if obj.value is not None else ""


def _attributes(obj: Any) -> dict[str, Any]:
    from rdata.parser import RObjectType

    out: dict[str, Any] = {}
    node = obj.attributes
    while node is not None and node.info.type == RObjectType.LIST:
        out[_symbol(node.tag)] = node.value[0]
        node = node.value[1]
    return out


def _char(obj: Any) -> str | None:
    if obj.value is None:  # NA_character_
        return None
    return obj.value.decode("latin-1" if obj.info.gp & 4 else "utf-8", "replace")


def to_python(obj: Any) -> Any:
    """A parsed R object as plain Python (see the module docstring)."""
    from rdata.parser import RObjectType

    kind = obj.info.type
    if kind == RObjectType.STR:
        values: Any = [_char(c) for c in obj.value]
    elif kind in (RObjectType.INT, RObjectType.REAL, RObjectType.LGL):
        values = [v.item() if hasattr(v, "item") else v for v in obj.value]
    elif kind == RObjectType.VEC:
        values = [to_python(v) for v in obj.value]
    elif kind == RObjectType.CHAR:
        return _char(obj)
    elif kind == RObjectType.NILVALUE:
        return None
    elif kind == RObjectType.LIST:  # a pairlist, e.g. the top level of an .rda file
        out = {}
        node = obj
        while node is not None and node.info.type == RObjectType.LIST:
            out[_symbol(node.tag)] = to_python(node.value[0])
            node = node.value[1]
        return out
    else:
        raise CatalogError(f"R objects of type {kind.name} are not supported by this reader")
    names = _attributes(obj).get("names")
    if names is not None and isinstance(values, list):
        keys = [_char(c) or "" for c in names.value]
        if len(keys) == len(values):
            return dict(zip(keys, values, strict=True))
    return values


def read_rda(data: bytes, label: str) -> dict[str, Any]:
    """The objects saved in an ``.rda`` / ``.RData`` file (gzip, bzip2, xz or uncompressed), by name."""
    parsed = _parse(data, label)
    objects = to_python(parsed.object)
    if not isinstance(objects, dict):
        raise CatalogError(f"{label} holds no named objects; expected an .rda file made by save()")
    return objects


def read_lazyload(rdx: bytes, rdb: bytes, label: str, names: list[str] | None = None) -> dict[str, Any]:
    """Objects of an R lazy-load database (all of them, or ``names``), by name."""
    try:
        index = to_python(_parse(gzip.decompress(rdx), f"{label}.rdx").object)
    except (OSError, EOFError) as exc:
        raise CatalogError(f"{label}.rdx is not gzip data; expected an R lazy-load index") from exc
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise CatalogError(f"{label}.rdx has no 'variables' table; expected an R lazy-load index")
    flag = index.get("compressed")
    compression = int(flag[0]) if isinstance(flag, list) and flag else 1
    variables: dict[str, Any] = index["variables"]
    wanted = list(variables) if names is None else names
    out = {}
    for name in wanted:
        if name not in variables:
            raise CatalogError(f"{label} has no object {name!r} (it holds {', '.join(variables)})")
        offset, length = (int(v) for v in variables[name])
        record = rdb[offset : offset + length]
        if offset < 0 or length < 5 or len(record) != length:
            raise CatalogError(f"{label}.rdb is shorter than its index says; the file is damaged")
        out[name] = to_python(_parse(_lazyload_record(record, compression, label), f"{label}:{name}").object)
    return out


def _lazyload_record(record: bytes, compression: int, label: str) -> bytes:
    size = int.from_bytes(record[:4], "big")
    try:
        if compression in (2, 3):
            kind, body = record[4:5], record[5:]
            data = {
                b"Z": lzma.decompress,
                b"2": bz2.decompress,
                b"0": bytes,
            }.get(kind, lambda _b: b"")(body)
            if kind not in (b"Z", b"2", b"0"):
                raise CatalogError(f"{label}.rdb has a record of unknown compression type {kind!r}")
        else:
            data = zlib.decompress(record[4:])
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        raise CatalogError(f"{label}.rdb has a record that does not decompress ({exc})") from exc
    if len(data) != size:
        raise CatalogError(f"{label}.rdb has a record of {len(data)} bytes where the header says {size}")
    return data
